//! Moving disk data between nodes: `OP_INSTANCE_MOVE` (`gnt-instance
//! move`, Ganeti's `LUInstanceMove`) and the disk-copy steps that
//! `gnt-backup` export and import share ([`pull`], [`DumpMode`],
//! [`import_disks`]).
//!
//! The copy itself is one `transfer_pull` call to the receiving node,
//! which reads from the sending node chunk by chunk over the cluster's
//! mutual-TLS RPC (`backend::transfer`); the master only names both ends.
//! A move shuts the instance down, creates and fills the disks on the
//! target, then switches the config; until that switch nothing of the
//! instance has changed, so on any copy failure the new disks are removed
//! and the instance is restarted where it was if it was running.

use super::{
    add_node_locks, assemble_disks, call, call_typed, check_free_memory, expand_instance_name,
    instance_locks, instance_named, instance_spec_of, node_by_uuid, rpc_msg, spec, target_of,
    update_instance, SLOW_TIMEOUT,
};
use crate::cmdlib::node::expand_node_name;
use crate::cmdlib::{LockNeed, LogicalUnit, LuContext, LuError};
use crate::config::objects::{AdminState, ConfigData, Instance, Uuid};
use crate::error::ErrorKind;
use crate::locking::LockMode;
use crate::opcodes::OpInstanceMove;
use crate::rpc::proto::{
    self, BlockdevArgs, DiskSpec, ExportArgs, InstanceOsDumpArgs, TransferDone, TransferEnd,
    TransferPullArgs,
};
use serde_json::Value;

/// Disk templates whose data can be copied to another node (Ganeti's
/// `DTS_COPYABLE`).
pub const COPYABLE_TEMPLATES: &[&str] = &["file", "plain"];

/// Bytes in a MiB.
const MIB: u64 = 1024 * 1024;

/// Copies `source` on node `from` into `dest` on node `to` (the receiving
/// node pulls); `size_bytes` `None` copies until the source ends. Returns
/// what the receiving node wrote.
pub fn pull(
    ctx: &LuContext<'_>,
    cfg: &ConfigData,
    from: &Uuid,
    to: &Uuid,
    source: TransferEnd,
    dest: TransferEnd,
    size_bytes: Option<u64>,
) -> Result<TransferDone, String> {
    let src = target_of(cfg, from).map_err(|e| e.to_string())?;
    let dst = target_of(cfg, to).map_err(|e| e.to_string())?;
    let args = TransferPullArgs {
        source_node: src.name.clone(),
        source_address: src.address.clone(),
        source_port: 0,
        source,
        dest,
        size_bytes,
    };
    call_typed(ctx, proto::TRANSFER_PULL, &dst, &args, SLOW_TIMEOUT).map_err(|e| rpc_msg(&e))
}

/// Refuses a compression tool other than `none`: our transfers go over
/// the RPC connection uncompressed.
pub fn check_compress(compress: &str) -> Result<(), LuError> {
    if compress != "none" {
        return Err(LuError::prereq(
            ErrorKind::Inval,
            format!(
                "Compression tool '{compress}' is not supported by ganeti-rs transfers; only 'none' is"
            ),
        ));
    }
    Ok(())
}

/// `OP_INSTANCE_MOVE`.
pub struct LuInstanceMove {
    op: OpInstanceMove,
    plan: Option<MovePlan>,
}

#[derive(Debug, Clone)]
struct MovePlan {
    inst: Instance,
    source: Uuid,
    target: Uuid,
}

impl LuInstanceMove {
    /// The LU for `op`.
    pub fn new(op: OpInstanceMove) -> Self {
        LuInstanceMove { op, plan: None }
    }
}

fn state(msg: impl Into<String>) -> LuError {
    LuError::prereq(ErrorKind::State, msg)
}

impl LogicalUnit for LuInstanceMove {
    fn expand_names(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        self.op.instance_name = expand_instance_name(cfg, &self.op.instance_name)?;
        self.op.target_node = expand_node_name(cfg, &self.op.target_node)?;
        Ok(())
    }

    fn declare_locks(&self, cfg: &ConfigData) -> Vec<LockNeed> {
        let mut needs = instance_locks(cfg, &self.op.instance_name, LockMode::Exclusive);
        add_node_locks(&mut needs, &self.op.target_node);
        needs
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        check_compress(&self.op.compress)?;
        let inst = instance_named(cfg, &self.op.instance_name)?.clone();
        for (idx, u) in inst.disks.iter().enumerate() {
            let t = cfg.disks.get(u).map(|d| d.dev_type.as_str()).unwrap_or("");
            if !COPYABLE_TEMPLATES.contains(&t) {
                return Err(state(format!(
                    "Instance disk {idx} has disk type {t} and is not suitable for copying"
                )));
            }
        }
        let (_, target) = cfg.node_by_name(&self.op.target_node).ok_or_else(|| {
            LuError::prereq(
                ErrorKind::NoEnt,
                format!("Node '{}' not known", self.op.target_node),
            )
        })?;
        if target.uuid == inst.primary_node {
            return Err(state(format!(
                "Instance {} is already on the node {}",
                inst.name, target.name
            )));
        }
        if target.offline {
            return Err(state(format!("Can't use offline node {}", target.name)));
        }
        if target.drained {
            return Err(state(format!("Can't use drained node {}", target.name)));
        }
        if !target.vm_capable {
            return Err(state(format!(
                "Can't use non-vm_capable node {}",
                target.name
            )));
        }
        node_by_uuid(cfg, &inst.primary_node)?;
        self.plan = Some(MovePlan {
            source: inst.primary_node.clone(),
            target: target.uuid.clone(),
            inst,
        });
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let plan = self
            .plan
            .clone()
            .ok_or_else(|| LuError::Exec("instance move ran without its prerequisites".into()))?;
        let cfg = ctx.store.snapshot();
        let inst = &plan.inst;
        let was_up = inst.admin_state == AdminState::Up;
        if was_up {
            let be = spec::beparams(&cfg, inst);
            check_free_memory(
                ctx,
                &cfg,
                &plan.target,
                &format!("failing over instance {}", inst.name),
                super::be_u64(&be, "maxmem"),
                &inst.hypervisor,
            )?;
        } else {
            ctx.log("Not checking memory on the secondary node as instance will not be started");
        }
        let source = target_of(&cfg, &plan.source)?;
        let target = target_of(&cfg, &plan.target)?;

        ctx.log(format!(
            "Shutting down instance {} on source node {}",
            inst.name, source.name
        ));
        let args = proto::InstanceShutdownArgs {
            instance: instance_spec_of(&cfg, &inst.uuid)?,
            timeout_secs: self.op.shutdown_timeout,
        };
        if let Err(e) = call(ctx, proto::INSTANCE_SHUTDOWN, &source, &args, SLOW_TIMEOUT) {
            let msg = format!(
                "Could not shutdown instance {} on node {}: {}",
                inst.name,
                source.name,
                rpc_msg(&e)
            );
            if !self.op.ignore_consistency {
                return Err(LuError::Exec(msg));
            }
            ctx.log(format!(
                "WARNING: {msg}; proceeding anyway, please make sure node {} is down",
                source.name
            ));
        }

        let specs = spec::disk_specs(&cfg, inst)?;
        if let Err(e) = self.copy_disks(ctx, &cfg, &plan, &specs) {
            ctx.log("WARNING: Some disks failed to copy, aborting");
            if was_up {
                restart_on_source(ctx, &cfg, inst);
            }
            return Err(LuError::Exec(format!("Errors during disk copy: {e}")));
        }

        // The switch: from here on the instance lives on the target.
        let new_primary = plan.target.clone();
        let disk_uuids = inst.disks.clone();
        let moved_to = plan.target.clone();
        ctx.update_config(move |c| {
            for u in &disk_uuids {
                if let Some(d) = c.disks.get_mut(u) {
                    if !d.nodes.is_empty() {
                        d.nodes = vec![moved_to.clone()];
                    }
                    d.serial_no += 1;
                }
            }
            Ok(())
        })?;
        update_instance(ctx, &inst.uuid, move |i| {
            i.primary_node = new_primary;
            i.disks_active = false;
            Ok(())
        })?;

        ctx.log("Removing the disks on the original node");
        for d in &specs {
            let args = BlockdevArgs {
                disk: d.clone(),
                instance_name: inst.name.as_str().to_string(),
                on_primary: false,
                exclusive_storage: false,
            };
            if let Err(e) = call(ctx, proto::BLOCKDEV_REMOVE, &source, &args, SLOW_TIMEOUT) {
                ctx.log(format!(
                    "WARNING: Could not remove disk {} on node {}: {}",
                    d.iv_name,
                    source.name,
                    rpc_msg(&e)
                ));
            }
        }

        if was_up {
            ctx.log(format!(
                "Starting instance {} on node {}",
                inst.name, target.name
            ));
            super::start_on_new_primary(ctx, inst.name.as_str(), &target, false)?;
        }
        Ok(Value::Null)
    }
}

impl LuInstanceMove {
    /// Creates every disk on the target and fills it from the source; on
    /// failure removes what it created and returns the error.
    fn copy_disks(
        &self,
        ctx: &mut LuContext<'_>,
        cfg: &ConfigData,
        plan: &MovePlan,
        specs: &[DiskSpec],
    ) -> Result<(), String> {
        let target = target_of(cfg, &plan.target).map_err(|e| e.to_string())?;
        let name = plan.inst.name.as_str().to_string();
        let mut created: Vec<&DiskSpec> = Vec::new();
        let mut run = |ctx: &mut LuContext<'_>| -> Result<(), String> {
            for d in specs {
                let args = BlockdevArgs {
                    disk: d.clone(),
                    instance_name: name.clone(),
                    on_primary: true,
                    exclusive_storage: false,
                };
                call(ctx, proto::BLOCKDEV_CREATE, &target, &args, SLOW_TIMEOUT).map_err(|e| {
                    format!(
                        "Can't create block device {} on node {}: {}",
                        d.iv_name,
                        target.name,
                        rpc_msg(&e)
                    )
                })?;
                created.push(d);
            }
            for d in specs {
                ctx.log(format!(
                    "Copying {} ({}) to node {}",
                    d.iv_name,
                    super::format_size(d.size_mib),
                    target.name
                ));
                let done = pull(
                    ctx,
                    cfg,
                    &plan.source,
                    &plan.target,
                    TransferEnd::Disk(d.clone()),
                    TransferEnd::Disk(d.clone()),
                    Some(d.size_mib * MIB),
                )
                .map_err(|e| format!("{}: {e}", d.iv_name))?;
                ctx.log(format!(
                    "{}: copied {} bytes (sha1 {})",
                    d.iv_name, done.bytes, done.sha1
                ));
            }
            Ok(())
        };
        let result = run(ctx);
        if result.is_err() {
            for d in created {
                let args = BlockdevArgs {
                    disk: d.clone(),
                    instance_name: name.clone(),
                    on_primary: true,
                    exclusive_storage: false,
                };
                let _ = call(ctx, proto::BLOCKDEV_SHUTDOWN, &target, &args, SLOW_TIMEOUT);
                if let Err(e) = call(ctx, proto::BLOCKDEV_REMOVE, &target, &args, SLOW_TIMEOUT) {
                    ctx.log(format!(
                        "WARNING: Could not remove disk {} on node {}: {}",
                        d.iv_name,
                        target.name,
                        rpc_msg(&e)
                    ));
                }
            }
        }
        result
    }
}

/// Assembles the disks of `inst` on its primary and starts it there
/// (after a failed move, or after an export shut it down).
pub fn start_instance(
    ctx: &mut LuContext<'_>,
    cfg: &ConfigData,
    inst: &Instance,
) -> Result<(), String> {
    let disks = assemble_disks(ctx, cfg, inst).map_err(|e| e.to_string())?;
    let pnode = target_of(cfg, &inst.primary_node).map_err(|e| e.to_string())?;
    let args = proto::InstanceStartArgs {
        instance: instance_spec_of(cfg, &inst.uuid).map_err(|e| e.to_string())?,
        disks,
        startup_paused: false,
    };
    call(ctx, proto::INSTANCE_START, &pnode, &args, SLOW_TIMEOUT)
        .map(|_| ())
        .map_err(|e| rpc_msg(&e))
}

/// Best effort after a failed move: the instance runs again where it was.
fn restart_on_source(ctx: &mut LuContext<'_>, cfg: &ConfigData, inst: &Instance) {
    match start_instance(ctx, cfg, inst) {
        Ok(()) => ctx.log(format!(
            "Instance {} restarted on its original node",
            inst.name
        )),
        Err(e) => ctx.log(format!(
            "WARNING: could not restart instance {} on its original node: {e}",
            inst.name
        )),
    }
}

/// Ganeti's export directory (production path).
pub const EXPORT_DIR: &str = "/srv/ganeti/export";

/// The `[export]` key of `config.ini` recording how the dumps were made
/// (ours; Ganeti's readers ignore keys they do not know).
pub const OS_DUMP_KEY: &str = "os_dump";

/// How an export's disk dumps are made and read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpMode {
    /// Through the OS definition's `export` and `import` scripts (Ganeti's
    /// `IEIO_SCRIPT`); the dump is in whatever format the OS chose.
    Script,
    /// The disk's bytes as they are (Ganeti's `IEIO_RAW_DISK`).
    Raw,
}

impl DumpMode {
    /// Ganeti's rule (`masterd/instance.py`, `instance_create.py`): an
    /// instance with an OS goes through its scripts, one without raw.
    /// Every valid OS definition has both scripts (they are required
    /// files, `crate::os::load`), so this is "the OS has the script".
    pub fn for_os(os: &str) -> DumpMode {
        if os.is_empty() {
            DumpMode::Raw
        } else {
            DumpMode::Script
        }
    }

    /// The [`OS_DUMP_KEY`] value, Python's `str()` of a bool.
    pub fn ini_value(self) -> &'static str {
        match self {
            DumpMode::Script => "True",
            DumpMode::Raw => "False",
        }
    }
}

/// What the OS export/import procedures get for disk `index` staged in
/// export directory `stage`.
fn dump_args(spec: &proto::InstanceSpec, index: usize, stage: &str) -> InstanceOsDumpArgs {
    InstanceOsDumpArgs {
        instance: spec.clone(),
        disk_index: index,
        stage: stage.to_string(),
        file: stage_file(index),
        debug: 0,
    }
}

/// The name of disk `index`'s dump in a staging directory.
pub fn stage_file(index: usize) -> String {
    format!("disk{index}.dump")
}

/// The staging directory's name for `instance` (`<instance>.stage`).
pub fn stage_dir(instance: &str) -> String {
    format!("{instance}{}", proto::EXPORT_STAGE_SUFFIX)
}

/// Removes the staging directory `stage` on `node`; a failure is only
/// logged (it holds nothing anyone needs).
pub fn remove_stage(ctx: &mut LuContext<'_>, cfg: &ConfigData, node: &Uuid, stage: &str) {
    let Ok(t) = target_of(cfg, node) else {
        return;
    };
    let args = ExportArgs {
        export: stage.to_string(),
    };
    if let Err(e) = call(ctx, proto::EXPORT_REMOVE, &t, &args, super::QUICK_TIMEOUT) {
        ctx.log(format!(
            "WARNING: could not remove the staging directory {stage} on node {}: {}",
            t.name,
            rpc_msg(&e)
        ));
    }
}

/// Checks that what a node read or wrote is what the other end had.
fn same_dump(what: &str, had: &TransferDone, got: &TransferDone) -> Result<(), String> {
    if had == got {
        return Ok(());
    }
    Err(format!(
        "{what}: {} bytes (sha1 {}) were staged but {} bytes (sha1 {}) arrived",
        had.bytes, had.sha1, got.bytes, got.sha1
    ))
}

/// Exports disk `index` of `inst` (`spec` its resolved form) through the
/// OS `export` script: the primary writes the dump into `stage`, the node
/// `to` pulls it into `dest`, and the copy is checked against what was
/// staged. The caller removes `stage` on the primary.
#[allow(clippy::too_many_arguments)]
pub fn export_disk_by_script(
    ctx: &LuContext<'_>,
    cfg: &ConfigData,
    inst: &Instance,
    spec: &proto::InstanceSpec,
    index: usize,
    stage: &str,
    to: &Uuid,
    dest: TransferEnd,
) -> Result<TransferDone, String> {
    let src = target_of(cfg, &inst.primary_node).map_err(|e| e.to_string())?;
    let args = dump_args(spec, index, stage);
    let staged: TransferDone =
        call_typed(ctx, proto::INSTANCE_OS_EXPORT, &src, &args, SLOW_TIMEOUT)
            .map_err(|e| format!("the OS export script failed: {}", rpc_msg(&e)))?;
    let source = TransferEnd::ExportFile {
        export: stage.to_string(),
        file: stage_file(index),
    };
    let done = pull(ctx, cfg, &inst.primary_node, to, source, dest, None)?;
    same_dump("copying the dump", &staged, &done)?;
    Ok(done)
}

/// An export read for an import (`OP_INSTANCE_CREATE`, mode `import`).
#[derive(Debug, Clone, PartialEq)]
pub struct ImportSource {
    /// The node holding the export.
    pub node: Uuid,
    /// The export's directory name.
    pub export: String,
    /// `config.ini`, section → key → value.
    pub ini: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
}

impl ImportSource {
    /// A value of `config.ini`.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.ini
            .get(section)
            .and_then(|s| s.get(key))
            .map(String::as_str)
    }

    /// `(dump file, size MiB)` of each exported disk, in order.
    pub fn disks(&self) -> Result<Vec<(String, u64)>, String> {
        let count: usize = self
            .get("instance", "disk_count")
            .unwrap_or("0")
            .parse()
            .map_err(|e| format!("disk_count in the export: {e}"))?;
        (0..count)
            .map(|i| {
                let dump = self
                    .get("instance", &format!("disk{i}_dump"))
                    .ok_or_else(|| format!("the export has no disk{i}_dump"))?;
                let size = self
                    .get("instance", &format!("disk{i}_size"))
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| format!("the export has no valid disk{i}_size"))?;
                Ok((dump.to_string(), size))
            })
            .collect()
    }

    /// How the dumps were made: as [`OS_DUMP_KEY`] says (`True`/`False`);
    /// without it (an export written by Ganeti itself) by Ganeti's rule,
    /// [`DumpMode::for_os`] of the exported OS.
    pub fn dump_mode(&self) -> Result<DumpMode, String> {
        match self.get("export", OS_DUMP_KEY) {
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(DumpMode::Script),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(DumpMode::Raw),
            Some(v) => Err(format!(
                "{OS_DUMP_KEY} in the export is {v:?}, neither True nor False"
            )),
            None => Ok(DumpMode::for_os(self.get("export", "os").unwrap_or(""))),
        }
    }
}

/// Parses Ganeti's `config.ini` (Python `ConfigParser` text: `[section]`,
/// `key = value`; `#`/`;` comments).
pub fn parse_ini(
    text: &str,
) -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> {
    let mut out: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> =
        Default::default();
    let mut section = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            section = name.to_string();
            out.entry(section.clone()).or_default();
        } else if let Some((k, v)) = t.split_once('=').or_else(|| t.split_once(':')) {
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    out
}

/// The export name an import's `src_path` names: a name, or a path
/// directly inside the export directory; `None` means the instance's name.
pub fn export_name(src_path: Option<&str>, instance: &str) -> Result<String, LuError> {
    let inval = |m: String| LuError::prereq(ErrorKind::Inval, m);
    let name = match src_path {
        None => instance,
        Some(p) if p.starts_with('/') => p
            .trim_end_matches('/')
            .strip_prefix(EXPORT_DIR)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(|| {
                inval(format!(
                    "Import source path {p} is not inside the export directory {EXPORT_DIR}"
                ))
            })?,
        Some(p) => p,
    };
    if name.is_empty() || name.starts_with('.') || name.contains('/') {
        return Err(inval(format!("Invalid export name {name:?}")));
    }
    Ok(name.to_string())
}

/// The node holding export `export` when an import names no source node:
/// every online node is asked for its exports (Ganeti's search), the first
/// in name order that has it wins.
fn find_export(ctx: &LuContext<'_>, cfg: &ConfigData, export: &str) -> Result<String, LuError> {
    let live = crate::cmdlib::live::gather_exports(ctx.rpc, cfg);
    let mut holders: Vec<&str> = cfg
        .nodes
        .values()
        .filter(|n| {
            live.nodes
                .get(n.uuid.as_str())
                .and_then(|l| l.exports.as_ref())
                .is_some_and(|list| list.iter().any(|e| e == export))
        })
        .map(|n| n.name.as_str())
        .collect();
    holders.sort_unstable();
    holders.first().map(|n| n.to_string()).ok_or_else(|| {
        LuError::prereq(
            ErrorKind::NoEnt,
            format!("No export found for relative path {export}"),
        )
    })
}

/// Reads the export an import names (`export_info` on its node) and fills
/// what the opcode leaves open from it, as Ganeti's `_ReadExportParams`
/// does: OS, disk template, disks (sizes), NICs (mode and link; new MACs,
/// since the exported instance may still exist), memory and vCPUs, OS
/// parameters. Hypervisor parameters are not taken over.
pub fn read_import_source(
    ctx: &LuContext<'_>,
    cfg: &ConfigData,
    op: &mut crate::opcodes::OpInstanceCreate,
) -> Result<ImportSource, LuError> {
    let inval = |m: String| LuError::prereq(ErrorKind::Inval, m);
    let export = export_name(op.src_path.as_deref(), &op.instance_name)?;
    let src = match op.src_node.clone() {
        Some(n) => n,
        None => find_export(ctx, cfg, &export)?,
    };
    op.src_node = Some(src.clone());
    let (_, node) = cfg
        .node_by_name(&src)
        .ok_or_else(|| LuError::prereq(ErrorKind::NoEnt, format!("Node '{src}' not known")))?;
    let tgt = crate::cmdlib::node::target(node);
    let text: String = call_typed(
        ctx,
        proto::EXPORT_INFO,
        &tgt,
        &proto::ExportArgs {
            export: export.clone(),
        },
        super::QUICK_TIMEOUT,
    )
    .map_err(|e| {
        LuError::prereq(
            ErrorKind::Inval,
            format!(
                "No export or invalid export found in dir {EXPORT_DIR}/{export} on node {}: {}",
                node.name,
                rpc_msg(&e)
            ),
        )
    })?;
    let source = ImportSource {
        node: node.uuid.clone(),
        export,
        ini: parse_ini(&text),
    };
    let version = source.get("export", "version").unwrap_or("");
    if version != "0" {
        return Err(inval(format!("Wrong export version {version} (wanted 0)")));
    }
    if op.os_type.is_none() {
        op.os_type = source.get("export", "os").map(str::to_string);
    }
    if op.disk_template.is_none() {
        if let Some(t) = source.get("instance", "disk_template") {
            op.disk_template = serde_json::from_value(serde_json::json!(t)).ok();
        }
    }
    let disks = source.disks().map_err(inval)?;
    if op.disks.is_empty() {
        op.disks = disks
            .iter()
            .map(|(_, size)| {
                [("size".to_string(), serde_json::json!(size))]
                    .into_iter()
                    .collect()
            })
            .collect();
    } else if op.disks.len() != disks.len() {
        return Err(inval(format!(
            "Wrong number of disks: the export has {}, {} given",
            disks.len(),
            op.disks.len()
        )));
    }
    if op.nics.is_empty() {
        let count: usize = source
            .get("instance", "nic_count")
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        op.nics = (0..count)
            .map(|i| {
                let mut d = crate::opcodes::Dict::new();
                for key in ["mode", "link"] {
                    if let Some(v) = source
                        .get("instance", &format!("nic{i}_{key}"))
                        .filter(|v| !v.is_empty() && *v != "None")
                    {
                        d.insert(key.to_string(), serde_json::json!(v));
                    }
                }
                d
            })
            .collect();
    }
    for (key, from) in [
        ("maxmem", "maxmem"),
        ("minmem", "minmem"),
        ("vcpus", "vcpus"),
    ] {
        if !op.beparams.contains_key(key) {
            if let Some(n) = source
                .get("instance", from)
                .and_then(|v| v.parse::<u64>().ok())
            {
                op.beparams.insert(key.to_string(), serde_json::json!(n));
            }
        }
    }
    if let Some(osp) = source.ini.get("os") {
        for (k, v) in osp {
            op.osparams
                .entry(k.clone())
                .or_insert_with(|| serde_json::json!(v));
        }
    }
    Ok(source)
}

/// Fills the new instance's disks from the export's dumps. A raw dump is
/// pulled straight into the disk; an OS script dump ([`DumpMode::Script`])
/// is pulled into a staging file on the new primary and fed to the new
/// instance's OS `import` script there, then the staging directory is
/// removed whatever happened.
pub fn import_disks(
    ctx: &mut LuContext<'_>,
    cfg: &ConfigData,
    inst: &Instance,
    source: &ImportSource,
) -> Result<(), LuError> {
    let dumps = source.disks().map_err(LuError::Exec)?;
    let mode = source.dump_mode().map_err(LuError::Exec)?;
    let specs = spec::disk_specs(cfg, inst)?;
    for (d, (_, size_mib)) in specs.iter().zip(&dumps) {
        if d.size_mib < *size_mib {
            return Err(LuError::Exec(format!(
                "{} is {} MiB, smaller than the exported {size_mib} MiB",
                d.iv_name, d.size_mib
            )));
        }
    }
    let stage = stage_dir(inst.name.as_str());
    if mode == DumpMode::Script {
        remove_stage(ctx, cfg, &inst.primary_node, &stage);
    }
    let result = (|| {
        let spec = match mode {
            DumpMode::Script => Some(instance_spec_of(cfg, &inst.uuid)?),
            DumpMode::Raw => None,
        };
        for (idx, (d, (dump, size_mib))) in specs.iter().zip(dumps).enumerate() {
            let from = TransferEnd::ExportFile {
                export: source.export.clone(),
                file: dump,
            };
            let failed =
                |e: String| LuError::Exec(format!("Disk import of {} failed: {e}", d.iv_name));
            let done = match &spec {
                None => {
                    ctx.log(format!(
                        "Importing {} from export {}",
                        d.iv_name, source.export
                    ));
                    let dest = TransferEnd::Disk(d.clone());
                    pull(
                        ctx,
                        cfg,
                        &source.node,
                        &inst.primary_node,
                        from,
                        dest,
                        Some(size_mib * MIB),
                    )
                    .map_err(failed)?
                }
                Some(spec) => {
                    ctx.log(format!(
                        "Importing {} from export {} through the OS import script",
                        d.iv_name, source.export
                    ));
                    import_disk_by_script(ctx, cfg, inst, spec, idx, &stage, &source.node, from)
                        .map_err(failed)?
                }
            };
            ctx.log(format!(
                "{}: imported {} bytes (sha1 {})",
                d.iv_name, done.bytes, done.sha1
            ));
        }
        Ok(())
    })();
    if mode == DumpMode::Script {
        remove_stage(ctx, cfg, &inst.primary_node, &stage);
    }
    result
}

/// Pulls one script dump from `from` on node `src` into `stage` on the
/// new primary and runs the OS `import` script on it for disk `index`.
#[allow(clippy::too_many_arguments)]
fn import_disk_by_script(
    ctx: &LuContext<'_>,
    cfg: &ConfigData,
    inst: &Instance,
    spec: &proto::InstanceSpec,
    index: usize,
    stage: &str,
    src: &Uuid,
    from: TransferEnd,
) -> Result<TransferDone, String> {
    let staged_at = TransferEnd::ExportFile {
        export: stage.to_string(),
        file: stage_file(index),
    };
    let pulled = pull(ctx, cfg, src, &inst.primary_node, from, staged_at, None)?;
    let pnode = target_of(cfg, &inst.primary_node).map_err(|e| e.to_string())?;
    let args = dump_args(spec, index, stage);
    let read: TransferDone =
        call_typed(ctx, proto::INSTANCE_OS_IMPORT, &pnode, &args, SLOW_TIMEOUT)
            .map_err(|e| format!("the OS import script failed: {}", rpc_msg(&e)))?;
    same_dump("feeding the dump to the import script", &pulled, &read)?;
    Ok(read)
}

#[cfg(test)]
mod tests {
    use crate::cmdlib::fake_rpc::{exec_err, prereq, TestCluster};
    use crate::cmdlib::OpOutcome;
    use crate::config::objects::{AdminState, LogicalId};
    use crate::error::ErrorKind;
    use crate::opcodes::OpInstanceMove;
    use crate::rpc::proto;
    use serde_json::{json, Value};

    const INST: &str = "inst1.example.com";
    const N1: &str = "node1.example.com";
    const N2: &str = "node2.example.com";

    /// Three nodes; inst1 on node1 with one `file` disk, running.
    fn cluster(tag: &str) -> TestCluster {
        cluster_with(tag, |_| {})
    }

    /// [`cluster`], with `change` applied to the config first.
    fn cluster_with(
        tag: &str,
        change: impl FnOnce(&mut crate::config::objects::ConfigData),
    ) -> TestCluster {
        let mut cfg = crate::config::test_support::generated(3, 1);
        cfg.cluster.enabled_disk_templates.push("file".into());
        let inst = cfg.instances.values_mut().next().unwrap();
        let disk = cfg.disks.get_mut(&inst.disks[0]).unwrap();
        disk.dev_type = "file".into();
        disk.logical_id =
            LogicalId::Pair("loop".into(), "/srv/ganeti/file-storage/inst1/disk0".into());
        change(&mut cfg);
        let c = TestCluster::with_config(tag, cfg);
        for n in [N1, N2, "node3.example.com"] {
            c.rpc.answer_fake_host(n, 2048);
            c.rpc
                .answer_assembled(n, "d", "/srv/ganeti/file-storage/inst1/disk0");
            c.rpc.answer(
                proto::TRANSFER_PULL,
                n,
                Ok(json!(proto::TransferDone {
                    bytes: 1024,
                    sha1: "ab".into()
                })),
            );
        }
        c
    }

    fn op(target: &str) -> OpInstanceMove {
        OpInstanceMove {
            instance_name: "inst1".into(),
            target_node: target.into(),
            ..Default::default()
        }
    }

    fn steps(c: &TestCluster) -> Vec<(String, String)> {
        c.rpc
            .calls()
            .into_iter()
            .filter(|x| {
                proto::INSTANCE_PROCEDURES.contains(&x.procedure.as_str())
                    && x.procedure != proto::NODE_HV_INFO
            })
            .map(|x| (x.procedure, x.node.replace(".example.com", "")))
            .collect()
    }

    fn s(p: &str, n: &str) -> (String, String) {
        (p.to_string(), n.to_string())
    }

    fn primary_and_disk_nodes(c: &TestCluster) -> (String, Vec<String>) {
        let cfg = c.config();
        let (_, i) = cfg.instance_by_name(INST).unwrap();
        let d = &cfg.disks[&i.disks[0]];
        let name = |u| cfg.nodes[u].name.as_str().to_string();
        (name(&i.primary_node), d.nodes.iter().map(name).collect())
    }

    #[test]
    fn move_copies_switches_removes_and_starts() {
        let c = cluster("move-ok");
        let (out, log) = c.run(op("node2"));
        assert_eq!(out, OpOutcome::Success(Value::Null), "{log:?}");
        assert_eq!(
            steps(&c),
            vec![
                s(proto::INSTANCE_SHUTDOWN, "node1"),
                s(proto::BLOCKDEV_CREATE, "node2"),
                s(proto::TRANSFER_PULL, "node2"),
                s(proto::BLOCKDEV_REMOVE, "node1"),
                s(proto::BLOCKDEV_ASSEMBLE, "node2"),
                s(proto::INSTANCE_START, "node2"),
            ]
        );
        let pull = &c.rpc.calls_of(proto::TRANSFER_PULL)[0].1;
        assert_eq!(pull["source_node"], N1);
        assert_eq!(pull["size_bytes"], json!(10u64 << 30));
        assert!(pull["source"]["disk"]["logical_id"].is_array(), "{pull}");
        assert_eq!(pull["source"], pull["dest"]);
        assert_eq!(
            primary_and_disk_nodes(&c),
            (N2.to_string(), vec![N2.to_string()])
        );
        let cfg = c.config();
        let (_, i) = cfg.instance_by_name(INST).unwrap();
        assert!(i.disks_active);
        assert!(
            log.iter().any(|l| l.contains("copied 1024 bytes")),
            "{log:?}"
        );
    }

    #[test]
    fn failed_copy_removes_new_disks_and_restarts_on_the_source() {
        let c = cluster("move-fail");
        c.rpc
            .answer(proto::TRANSFER_PULL, N2, Err("disk full".into()));
        let (out, log) = c.run(op("node2"));
        let m = exec_err(out);
        assert!(
            m.contains("Errors during disk copy") && m.contains("disk full"),
            "{m}"
        );
        assert_eq!(
            steps(&c),
            vec![
                s(proto::INSTANCE_SHUTDOWN, "node1"),
                s(proto::BLOCKDEV_CREATE, "node2"),
                s(proto::TRANSFER_PULL, "node2"),
                s(proto::BLOCKDEV_SHUTDOWN, "node2"),
                s(proto::BLOCKDEV_REMOVE, "node2"),
                s(proto::BLOCKDEV_ASSEMBLE, "node1"),
                s(proto::INSTANCE_START, "node1"),
            ]
        );
        assert_eq!(
            primary_and_disk_nodes(&c),
            (N1.to_string(), vec![N1.to_string()])
        );
        assert!(log.iter().any(|l| l.contains("restarted")), "{log:?}");
    }

    #[test]
    fn stopped_instance_is_moved_without_start_and_shutdown_failure_stops_all() {
        let c = cluster_with("move-down", |cfg| {
            cfg.instances.values_mut().next().unwrap().admin_state = AdminState::Down;
        });
        let (out, log) = c.run(op("node2"));
        assert_eq!(out, OpOutcome::Success(Value::Null), "{log:?}");
        assert!(!steps(&c).iter().any(|(p, _)| p == proto::INSTANCE_START));
        assert_eq!(primary_and_disk_nodes(&c).0, N2);

        let c = cluster("move-stuck");
        c.rpc
            .answer(proto::INSTANCE_SHUTDOWN, N1, Err("stuck".into()));
        let m = exec_err(c.run(op("node2")).0);
        assert!(m.starts_with("Could not shutdown instance"), "{m}");
        assert_eq!(steps(&c), vec![s(proto::INSTANCE_SHUTDOWN, "node1")]);
    }

    #[test]
    fn refusals_name_the_reason() {
        let c = cluster("move-refuse");
        let (kind, m) = prereq(c.run(op("node1")).0);
        assert_eq!(kind, ErrorKind::State);
        assert_eq!(
            m,
            "Instance inst1.example.com is already on the node node1.example.com"
        );
        let (kind, m) = prereq(
            c.run(OpInstanceMove {
                compress: "gzip".into(),
                ..op("node2")
            })
            .0,
        );
        assert_eq!(kind, ErrorKind::Inval);
        assert!(m.contains("'gzip' is not supported"), "{m}");
        let (kind, m) = prereq(c.run(op("nosuch")).0);
        assert_eq!(kind, ErrorKind::NoEnt, "{m}");
        assert!(c.rpc.calls().is_empty());
        let c = cluster_with("move-refuse-shared", |cfg| {
            for d in cfg.disks.values_mut() {
                d.dev_type = "sharedfile".into();
            }
        });
        let (_, m) = prereq(c.run(op("node2")).0);
        assert_eq!(
            m,
            "Instance disk 0 has disk type sharedfile and is not suitable for copying"
        );
        assert!(c.rpc.calls().is_empty());
    }

    #[test]
    fn export_names_and_ini_parse_as_ganeti_writes_them() {
        use super::{export_name, parse_ini, ImportSource};
        assert_eq!(export_name(None, "vm1").unwrap(), "vm1");
        assert_eq!(export_name(Some("vm2"), "vm1").unwrap(), "vm2");
        assert_eq!(
            export_name(Some("/srv/ganeti/export/vm2/"), "vm1").unwrap(),
            "vm2"
        );
        for bad in ["/etc/ganeti", "/srv/ganeti/export/a/b", "..", "a/b", ".x"] {
            let (kind, m) = match export_name(Some(bad), "vm1") {
                Err(crate::cmdlib::LuError::Prereq { kind, message }) => (kind, message),
                other => panic!("{bad}: {other:?}"),
            };
            assert_eq!(kind, ErrorKind::Inval, "{bad}: {m}");
        }
        let ini = parse_ini(
            "[export]\nversion = 0\nos = image+default\n\n[instance]\nname = vm1\n\
             disk_count = 2\ndisk0_dump = u0\ndisk0_size = 8\ndisk1_dump = u1\n\
             disk1_size = 16\n# comment\nnic0_vlan = \n",
        );
        assert_eq!(ini["export"]["os"], "image+default");
        assert_eq!(ini["instance"]["nic0_vlan"], "");
        let src = ImportSource {
            node: crate::config::objects::Uuid::generate(),
            export: "vm1".into(),
            ini,
        };
        assert_eq!(
            src.disks().unwrap(),
            vec![("u0".to_string(), 8), ("u1".to_string(), 16)]
        );
        let mut broken = src.clone();
        broken.ini.get_mut("instance").unwrap().remove("disk1_size");
        assert!(broken.disks().unwrap_err().contains("disk1_size"));

        // How the dumps are read back: our key, else Ganeti's rule.
        use super::DumpMode;
        assert_eq!(
            src.dump_mode(),
            Ok(DumpMode::Script),
            "Ganeti export with an OS"
        );
        let mut m = src.clone();
        let set = |m: &mut ImportSource, k: &str, v: &str| {
            m.ini.get_mut("export").unwrap().insert(k.into(), v.into());
        };
        set(&mut m, "os", "");
        assert_eq!(
            m.dump_mode(),
            Ok(DumpMode::Raw),
            "Ganeti export without an OS"
        );
        set(&mut m, "os_dump", "True");
        assert_eq!(m.dump_mode(), Ok(DumpMode::Script));
        set(&mut m, "os_dump", "false");
        assert_eq!(m.dump_mode(), Ok(DumpMode::Raw));
        set(&mut m, "os_dump", "maybe");
        assert!(m.dump_mode().unwrap_err().contains("\"maybe\""));
        assert_eq!(DumpMode::for_os("image+default"), DumpMode::Script);
        assert_eq!(DumpMode::Script.ini_value(), "True");
        assert_eq!(DumpMode::Raw.ini_value(), "False");
    }
}
