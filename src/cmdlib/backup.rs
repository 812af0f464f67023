//! Instance exports (`gnt-backup`): `OP_BACKUP_EXPORT` and
//! `OP_BACKUP_REMOVE` (Ganeti's `LUBackupExport`, `LUBackupRemove`), local
//! mode only.
//!
//! An export puts one dump per disk of the instance into
//! `<export dir>/<instance>.new/<disk uuid>` on the target node, then has
//! the target write Ganeti's `config.ini` and rename the directory to
//! `<instance>` ([`export_config_ini`], `export_finalize`); older exports
//! of the instance on other nodes are removed afterwards, as Ganeti does.
//! Remote exports (to another cluster) are refused by name.
//!
//! A dump is made as Ganeti makes it ([`DumpMode::for_os`]): an instance
//! with an OS goes through the OS `export` script, which the primary runs
//! with its stdout into `<export dir>/<instance>.stage/disk<N>.dump`
//! before the target pulls that file
//! ([`instance::transfer::export_disk_by_script`]); the staging directory
//! is removed afterwards whatever happened. An instance without an OS is
//! copied raw (the target pulls the disk itself:
//! [`instance::transfer::pull`]). `config.ini` records which it was
//! (`os_dump` in `[export]`), so an import knows how to read the dumps.
//!
//! Run by masterd's job workers; every file step is a node RPC.

use super::instance::{
    self, call, call_typed, expand_instance_name, instance_locks, instance_named, rpc_msg,
    target_of, transfer, QUICK_TIMEOUT, SLOW_TIMEOUT,
};
use super::node::expand_node_name;
use super::{LockNeed, LogicalUnit, LuContext, LuError};
use crate::config::objects::{AdminState, ConfigData, Instance, Uuid};
use crate::config::params;
use crate::error::ErrorKind;
use crate::locking::LockMode;
use crate::opcodes::params::ExportMode;
use crate::opcodes::{OpBackupExport, OpBackupRemove, OpInstanceRemove};
use crate::rpc::proto::{self, ExportArgs, ExportFinalizeArgs, InstanceSpec, TransferEnd};
use instance::transfer::{DumpMode, OS_DUMP_KEY};
use serde_json::{json, Value};

/// Ganeti's `EXPORT_VERSION`.
pub const EXPORT_VERSION: u32 = 0;
/// Suffix of an export being written (Ganeti's `<name>.new`).
const NEW_SUFFIX: &str = ".new";
const MIB: u64 = 1024 * 1024;

fn inval(msg: impl Into<String>) -> LuError {
    LuError::prereq(ErrorKind::Inval, msg)
}

/// A parameter value as Python's `str()` writes it into `config.ini`.
fn py_str(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One disk as it is recorded in an export.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedDisk {
    /// `disk/0`, …
    pub iv_name: String,
    /// The dump file's name in the export directory (the disk's UUID).
    pub dump: String,
    /// Size, MiB.
    pub size_mib: u64,
    /// The disk's name, if any.
    pub name: Option<String>,
}

/// The text of Ganeti's `config.ini` for an export of `spec` (filled
/// parameters, as Ganeti's `FinalizeExport` receives them), taken on node
/// `source` at `timestamp` (seconds), its dumps made as `mode` says.
pub fn export_config_ini(
    spec: &InstanceSpec,
    template: &str,
    tags: &[String],
    disks: &[ExportedDisk],
    source: &str,
    timestamp: u64,
    mode: DumpMode,
) -> String {
    let mut out = String::new();
    let mut section = |name: &str, items: &[(String, String)]| {
        out.push_str(&format!("[{name}]\n"));
        for (k, v) in items {
            out.push_str(&format!("{k} = {v}\n"));
        }
        out.push('\n');
    };
    let be = |k: &str| spec.beparams.get(k).map(py_str).unwrap_or_default();
    section(
        "export",
        &[
            ("version".into(), EXPORT_VERSION.to_string()),
            ("timestamp".into(), timestamp.to_string()),
            ("source".into(), source.to_string()),
            ("os".into(), spec.os.clone()),
            ("compression".into(), "none".into()),
            (OS_DUMP_KEY.into(), mode.ini_value().into()),
        ],
    );
    let mut ins: Vec<(String, String)> = vec![
        ("name".into(), spec.name.clone()),
        ("maxmem".into(), be("maxmem")),
        ("minmem".into(), be("minmem")),
        ("memory".into(), be("maxmem")),
        ("vcpus".into(), be("vcpus")),
        ("disk_template".into(), template.to_string()),
        ("hypervisor".into(), spec.hypervisor.clone()),
        ("tags".into(), tags.join(" ")),
    ];
    let none = |o: &Option<String>| o.clone().unwrap_or_else(|| "None".into());
    for (i, nic) in spec.nics.iter().enumerate() {
        ins.push((format!("nic{i}_mac"), nic.mac.clone()));
        ins.push((format!("nic{i}_ip"), none(&nic.ip)));
        ins.push((format!("nic{i}_network"), none(&nic.network)));
        ins.push((format!("nic{i}_name"), none(&nic.name)));
        ins.push((format!("nic{i}_mode"), nic.mode.clone()));
        ins.push((format!("nic{i}_link"), nic.link.clone()));
        ins.push((format!("nic{i}_vlan"), nic.vlan.clone()));
    }
    ins.push(("nic_count".into(), spec.nics.len().to_string()));
    for (i, d) in disks.iter().enumerate() {
        ins.push((format!("disk{i}_ivname"), d.iv_name.clone()));
        ins.push((format!("disk{i}_dump"), d.dump.clone()));
        ins.push((format!("disk{i}_size"), d.size_mib.to_string()));
        ins.push((format!("disk{i}_name"), none(&d.name)));
    }
    ins.push(("disk_count".into(), disks.len().to_string()));
    section("instance", &ins);
    let globals = params::hv_globals(&spec.hypervisor);
    let hv: Vec<(String, String)> = spec
        .hvparams
        .iter()
        .filter(|(k, _)| !globals.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), py_str(v)))
        .collect();
    section("hypervisor", &hv);
    let bep: Vec<(String, String)> = spec
        .beparams
        .iter()
        .map(|(k, v)| (k.clone(), py_str(v)))
        .collect();
    section("backend", &bep);
    let osp: Vec<(String, String)> = spec
        .osparams
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    section("os", &osp);
    let osp_private: Vec<(String, String)> = spec
        .osparams_private
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    section("os_private", &osp_private);
    out
}

/// `OP_BACKUP_EXPORT`, local mode.
pub struct LuBackupExport {
    op: OpBackupExport,
    target: Option<String>,
    inst: Option<Instance>,
}

impl LuBackupExport {
    /// The LU for `op`.
    pub fn new(op: OpBackupExport) -> Self {
        LuBackupExport {
            op,
            target: None,
            inst: None,
        }
    }
}

impl LogicalUnit for LuBackupExport {
    fn expand_names(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        if self.op.mode != ExportMode::Local {
            return Err(inval(
                "Remote exports (to another cluster) are not supported by ganeti-rs; export to a node of this cluster (mode 'local')",
            ));
        }
        self.op.instance_name = expand_instance_name(cfg, &self.op.instance_name)?;
        let node = self
            .op
            .target_node
            .as_str()
            .ok_or_else(|| inval("A local export needs the target node's name"))?;
        self.target = Some(expand_node_name(cfg, node)?);
        Ok(())
    }

    fn declare_locks(&self, cfg: &ConfigData) -> Vec<LockNeed> {
        let mut needs = instance_locks(cfg, &self.op.instance_name, LockMode::Exclusive);
        if let Some(t) = &self.target {
            instance::add_node_locks(&mut needs, t);
        }
        needs
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        transfer::check_compress(&self.op.compress)?;
        let inst = instance_named(cfg, &self.op.instance_name)?.clone();
        let state = |m: String| LuError::prereq(ErrorKind::State, m);
        let pnode = instance::node_by_uuid(cfg, &inst.primary_node)?;
        if pnode.offline {
            return Err(state(format!("Can't use offline node {}", pnode.name)));
        }
        if self.op.remove_instance && inst.admin_state == AdminState::Up && !self.op.shutdown {
            return Err(state(
                "Can not remove instance without shutting it down before".into(),
            ));
        }
        if self.op.zero_free_space {
            return Err(inval(
                "Zeroing free space before an export is not supported by ganeti-rs",
            ));
        }
        let name = self.target.clone().unwrap_or_default();
        let (_, target) = cfg
            .node_by_name(&name)
            .ok_or_else(|| LuError::prereq(ErrorKind::NoEnt, format!("Node '{name}' not known")))?;
        if target.offline {
            return Err(state(format!("Can't use offline node {}", target.name)));
        }
        if target.drained {
            return Err(state(format!("Can't use drained node {}", target.name)));
        }
        for (idx, u) in inst.disks.iter().enumerate() {
            let t = cfg.disks.get(u).map(|d| d.dev_type.as_str()).unwrap_or("");
            if !matches!(t, "file" | "sharedfile" | "plain" | "blockdev") {
                return Err(state(format!(
                    "Instance disk {idx} has disk type {t}, whose data ganeti-rs cannot export yet"
                )));
            }
        }
        self.inst = Some(inst);
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let inst = self
            .inst
            .clone()
            .ok_or_else(|| LuError::Exec("export ran without its prerequisites".into()))?;
        let cfg = ctx.store.snapshot();
        let (_, dst) = cfg
            .node_by_name(self.target.as_deref().unwrap_or_default())
            .ok_or_else(|| LuError::Exec("the export's target node disappeared".into()))?;
        let dst_uuid = dst.uuid.clone();
        let dst_t = target_of(&cfg, &dst_uuid)?;
        let src = target_of(&cfg, &inst.primary_node)?;
        let name = inst.name.as_str().to_string();
        let staging = format!("{name}{NEW_SUFFIX}");
        let was_up = inst.admin_state == AdminState::Up;

        if self.op.shutdown {
            ctx.log(format!("Shutting down instance {name}"));
            let args = proto::InstanceShutdownArgs {
                instance: instance::instance_spec_of(&cfg, &inst.uuid)?,
                timeout_secs: self.op.shutdown_timeout,
            };
            call(ctx, proto::INSTANCE_SHUTDOWN, &src, &args, SLOW_TIMEOUT).map_err(|e| {
                LuError::Exec(format!(
                    "Could not shutdown instance {name} on node {}: {}",
                    src.name,
                    rpc_msg(&e)
                ))
            })?;
        }

        let specs = instance::spec::disk_specs(&cfg, &inst)?;
        let mode = DumpMode::for_os(&inst.os);
        let spec = instance::instance_spec_of(&cfg, &inst.uuid)?;
        let stale = ExportArgs {
            export: staging.clone(),
        };
        let _ = call(ctx, proto::EXPORT_REMOVE, &dst_t, &stale, QUICK_TIMEOUT);
        let stage = transfer::stage_dir(&name);
        if mode == DumpMode::Script {
            transfer::remove_stage(ctx, &cfg, &inst.primary_node, &stage);
        }
        let mut failed = Vec::new();
        let mut exported = Vec::new();
        for (idx, d) in specs.iter().enumerate() {
            ctx.log(format!(
                "Exporting {} ({}) to node {}{}",
                d.iv_name,
                instance::format_size(d.size_mib),
                dst_t.name,
                match mode {
                    DumpMode::Script => " through the OS export script",
                    DumpMode::Raw => "",
                }
            ));
            let dest = TransferEnd::ExportFile {
                export: staging.clone(),
                file: d.uuid.clone(),
            };
            let done = match mode {
                DumpMode::Script => transfer::export_disk_by_script(
                    ctx, &cfg, &inst, &spec, idx, &stage, &dst_uuid, dest,
                ),
                DumpMode::Raw => transfer::pull(
                    ctx,
                    &cfg,
                    &inst.primary_node,
                    &dst_uuid,
                    TransferEnd::Disk(d.clone()),
                    dest,
                    Some(d.size_mib * MIB),
                ),
            };
            match done {
                Ok(done) => {
                    ctx.log(format!(
                        "{}: exported {} bytes (sha1 {})",
                        d.iv_name, done.bytes, done.sha1
                    ));
                    exported.push(ExportedDisk {
                        iv_name: d.iv_name.clone(),
                        dump: d.uuid.clone(),
                        size_mib: d.size_mib,
                        name: d.name.clone(),
                    });
                }
                Err(e) => {
                    ctx.log(format!("WARNING: could not export {}: {e}", d.iv_name));
                    failed.push(idx.to_string());
                }
            }
        }
        if mode == DumpMode::Script {
            transfer::remove_stage(ctx, &cfg, &inst.primary_node, &stage);
        }

        if self.op.shutdown && was_up && !self.op.remove_instance {
            ctx.log(format!("Starting instance {name}"));
            if let Err(e) = transfer::start_instance(ctx, &cfg, &inst) {
                let _ = call(ctx, proto::EXPORT_REMOVE, &dst_t, &stale, QUICK_TIMEOUT);
                return Err(LuError::Exec(format!("Could not start instance: {e}")));
            }
        }
        if !failed.is_empty() {
            let _ = call(ctx, proto::EXPORT_REMOVE, &dst_t, &stale, QUICK_TIMEOUT);
            return Err(LuError::Exec(format!(
                "Export failed, errors in disk export: disk(s) {}",
                failed.join(", ")
            )));
        }

        let tags: Vec<String> = inst.tags.iter().cloned().collect();
        let ini = export_config_ini(
            &spec,
            &instance::disk_template(&cfg, &inst),
            &tags,
            &exported,
            &src.name,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            mode,
        );
        let fin = ExportFinalizeArgs {
            export: name.clone(),
            config: ini,
        };
        if let Err(e) = call(ctx, proto::EXPORT_FINALIZE, &dst_t, &fin, QUICK_TIMEOUT) {
            let _ = call(ctx, proto::EXPORT_REMOVE, &dst_t, &stale, QUICK_TIMEOUT);
            return Err(LuError::Exec(format!(
                "Export failed, errors in export finalization: {}",
                rpc_msg(&e)
            )));
        }

        if self.op.remove_instance {
            ctx.log(format!("Removing instance {name}"));
            let mut rm = super::instance::lifecycle::LuInstanceRemove::new(OpInstanceRemove {
                instance_name: name.clone(),
                shutdown_timeout: self.op.shutdown_timeout,
                ignore_failures: self.op.ignore_remove_failures,
                ..Default::default()
            });
            rm.check_prereq(&ctx.store.snapshot())?;
            rm.exec(ctx)?;
        }
        remove_other_exports(ctx, &cfg, &name, &dst_uuid);
        Ok(json!([true, vec![true; exported.len()]]))
    }
}

/// Removes the exports of `name` from every node but `keep` (Ganeti's
/// `_CleanupExports`).
fn remove_other_exports(ctx: &mut LuContext<'_>, cfg: &ConfigData, name: &str, keep: &Uuid) {
    let others: Vec<_> = cfg
        .nodes
        .values()
        .filter(|n| &n.uuid != keep && !n.offline)
        .map(super::node::target)
        .collect();
    if others.is_empty() {
        return;
    }
    ctx.log(format!("Removing old exports for instance {name}"));
    for t in others {
        let listed: Result<Vec<String>, _> =
            call_typed(ctx, proto::EXPORT_LIST, &t, &json!({}), QUICK_TIMEOUT);
        if !listed.is_ok_and(|l| l.iter().any(|e| e == name)) {
            continue;
        }
        let args = ExportArgs {
            export: name.to_string(),
        };
        if let Err(e) = call(ctx, proto::EXPORT_REMOVE, &t, &args, QUICK_TIMEOUT) {
            ctx.log(format!(
                "WARNING: Could not remove older export for instance {name} on node {}: {}",
                t.name,
                rpc_msg(&e)
            ));
        }
    }
}

/// `OP_BACKUP_REMOVE`: removes the instance's exports from every online
/// node. Works for removed instances too (by full name).
pub struct LuBackupRemove {
    op: OpBackupRemove,
}

impl LuBackupRemove {
    /// The LU for `op`.
    pub fn new(op: OpBackupRemove) -> Self {
        LuBackupRemove { op }
    }
}

impl LogicalUnit for LuBackupRemove {
    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), LuError> {
        let n = &self.op.instance_name;
        if n.is_empty() || n.starts_with('.') || n.contains('/') || n.contains('\0') {
            return Err(inval(format!("Invalid export name {n:?}")));
        }
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let cfg = ctx.store.snapshot();
        let (name, known) = match expand_instance_name(&cfg, &self.op.instance_name) {
            Ok(n) => (n, true),
            Err(_) => (self.op.instance_name.clone(), false),
        };
        let mut found = false;
        let targets: Vec<_> = cfg
            .nodes
            .values()
            .filter(|n| !n.offline)
            .map(super::node::target)
            .collect();
        for t in targets {
            let listed: Vec<String> =
                match call_typed(ctx, proto::EXPORT_LIST, &t, &json!({}), QUICK_TIMEOUT) {
                    Ok(l) => l,
                    Err(e) => {
                        ctx.log(format!(
                            "WARNING: Failed to query node {} (continuing): {}",
                            t.name,
                            rpc_msg(&e)
                        ));
                        continue;
                    }
                };
            if !listed.contains(&name) {
                continue;
            }
            found = true;
            let args = ExportArgs {
                export: name.clone(),
            };
            if let Err(e) = call(ctx, proto::EXPORT_REMOVE, &t, &args, QUICK_TIMEOUT) {
                log::error!(
                    "Could not remove export for instance {name} on node {}: {}",
                    t.name,
                    rpc_msg(&e)
                );
            }
        }
        if !known && !found {
            ctx.log(
                "Export not found. If trying to remove an export belonging to a deleted instance please use its Fully Qualified Domain Name.",
            );
        }
        Ok(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::proto::NicSpec;

    #[test]
    fn config_ini_has_ganetis_sections_and_keys() {
        let spec = InstanceSpec {
            name: "inst1.example.com".into(),
            uuid: "u".into(),
            hypervisor: "kvm".into(),
            hvparams: [
                ("acpi".to_string(), json!(true)),
                ("kernel_path".to_string(), json!("")),
                ("migration_port".to_string(), json!(8102)),
            ]
            .into(),
            beparams: [
                ("maxmem".to_string(), json!(512)),
                ("minmem".to_string(), json!(256)),
                ("vcpus".to_string(), json!(2)),
                ("auto_balance".to_string(), json!(false)),
            ]
            .into(),
            os: "image+default".into(),
            osparams: [("size".to_string(), "8".to_string())].into(),
            osparams_private: Default::default(),
            nics: vec![NicSpec {
                uuid: "n".into(),
                name: None,
                mac: "aa:00:00:00:00:01".into(),
                ip: Some("192.0.2.5".into()),
                mode: "bridged".into(),
                link: "br0".into(),
                vlan: "".into(),
                network: None,
            }],
            disks: vec![],
            network_port: None,
        };
        let disks = [ExportedDisk {
            iv_name: "disk/0".into(),
            dump: "d-uuid".into(),
            size_mib: 1024,
            name: None,
        }];
        let ini = export_config_ini(
            &spec,
            "file",
            &["a".into(), "b".into()],
            &disks,
            "node1.example.com",
            1700000000,
            DumpMode::Script,
        );
        let expected_start = "[export]\nversion = 0\ntimestamp = 1700000000\nsource = node1.example.com\nos = image+default\ncompression = none\nos_dump = True\n\n[instance]\nname = inst1.example.com\nmaxmem = 512\nminmem = 256\nmemory = 512\nvcpus = 2\ndisk_template = file\nhypervisor = kvm\ntags = a b\nnic0_mac = aa:00:00:00:00:01\nnic0_ip = 192.0.2.5\nnic0_network = None\nnic0_name = None\nnic0_mode = bridged\nnic0_link = br0\nnic0_vlan = \nnic_count = 1\ndisk0_ivname = disk/0\ndisk0_dump = d-uuid\ndisk0_size = 1024\ndisk0_name = None\ndisk_count = 1\n\n[hypervisor]\n";
        assert!(ini.starts_with(expected_start), "{ini}");
        // Cluster-global hypervisor parameters are not exported.
        assert!(
            ini.contains("acpi = True\n") && !ini.contains("migration_port"),
            "{ini}"
        );
        assert!(
            ini.contains("[backend]\nauto_balance = False\nmaxmem = 512\n"),
            "{ini}"
        );
        assert!(ini.contains("[os]\nsize = 8\n\n[os_private]\n"), "{ini}");
    }

    mod lu {
        use crate::cmdlib::fake_rpc::{exec_err, TestCluster};
        use crate::cmdlib::OpOutcome;
        use crate::config::objects::LogicalId;
        use crate::opcodes::OpBackupExport;
        use crate::rpc::proto::{self, TransferDone};
        use serde_json::json;

        const N1: &str = "node1.example.com";
        const N2: &str = "node2.example.com";

        fn done(sha1: &str) -> serde_json::Value {
            json!(TransferDone {
                bytes: 4096,
                sha1: sha1.into()
            })
        }

        /// Three nodes; inst1 (OS `os`) on node1 with one `file` disk,
        /// running; dumps staged and pulled alike.
        fn cluster(tag: &str, os: &str) -> TestCluster {
            let mut cfg = crate::config::test_support::generated(3, 1);
            cfg.cluster.enabled_disk_templates.push("file".into());
            let inst = cfg.instances.values_mut().next().unwrap();
            inst.os = os.into();
            let disk = cfg.disks.get_mut(&inst.disks[0]).unwrap();
            disk.dev_type = "file".into();
            disk.logical_id =
                LogicalId::Pair("loop".into(), "/srv/ganeti/file-storage/inst1/disk0".into());
            let c = TestCluster::with_config(tag, cfg);
            for n in [N1, N2] {
                c.rpc.answer_fake_host(n, 2048);
                c.rpc
                    .answer_assembled(n, "d", "/srv/ganeti/file-storage/inst1/disk0");
                c.rpc.answer(proto::TRANSFER_PULL, n, Ok(done("ab")));
                c.rpc.answer(proto::EXPORT_LIST, n, Ok(json!([])));
            }
            c.rpc.answer(proto::INSTANCE_OS_EXPORT, N1, Ok(done("ab")));
            c
        }

        fn op() -> OpBackupExport {
            OpBackupExport {
                instance_name: "inst1".into(),
                target_node: json!("node2"),
                ..Default::default()
            }
        }

        /// (procedure, node, export/stage argument) of the export steps.
        fn steps(c: &TestCluster) -> Vec<(String, String, String)> {
            c.rpc
                .calls()
                .into_iter()
                .filter(|x| {
                    [
                        proto::INSTANCE_OS_EXPORT,
                        proto::TRANSFER_PULL,
                        proto::EXPORT_REMOVE,
                        proto::EXPORT_FINALIZE,
                    ]
                    .contains(&x.procedure.as_str())
                })
                .map(|x| {
                    let what = match x.procedure.as_str() {
                        proto::INSTANCE_OS_EXPORT => x.args["stage"].to_string(),
                        proto::TRANSFER_PULL => x.args["source"].to_string(),
                        _ => x.args["export"].to_string(),
                    };
                    (x.procedure, x.node.replace(".example.com", ""), what)
                })
                .collect()
        }

        fn st(p: &str, n: &str, what: &str) -> (String, String, String) {
            (p.to_string(), n.to_string(), what.to_string())
        }

        #[test]
        fn an_instance_with_an_os_is_exported_through_its_script() {
            let c = cluster("bexp-script", "debootstrap+default");
            let (out, log) = c.run(op());
            assert!(matches!(out, OpOutcome::Success(_)), "{out:?} {log:?}");
            let stage = r#""inst1.example.com.stage""#;
            let staged =
                r#"{"export_file":{"export":"inst1.example.com.stage","file":"disk0.dump"}}"#;
            assert_eq!(
                steps(&c),
                vec![
                    st(proto::EXPORT_REMOVE, "node2", r#""inst1.example.com.new""#),
                    st(proto::EXPORT_REMOVE, "node1", stage),
                    st(proto::INSTANCE_OS_EXPORT, "node1", stage),
                    st(proto::TRANSFER_PULL, "node2", staged),
                    st(proto::EXPORT_REMOVE, "node1", stage),
                    st(proto::EXPORT_FINALIZE, "node2", r#""inst1.example.com""#),
                ]
            );
            let export = &c.rpc.calls_of(proto::INSTANCE_OS_EXPORT)[0].1;
            assert_eq!(export["disk_index"], 0);
            assert_eq!(export["file"], "disk0.dump");
            assert_eq!(export["instance"]["os"], "debootstrap+default");
            let pull = &c.rpc.calls_of(proto::TRANSFER_PULL)[0].1;
            assert_eq!(
                pull["size_bytes"],
                json!(null),
                "a dump's size is the script's"
            );
            let fin = &c.rpc.calls_of(proto::EXPORT_FINALIZE)[0].1;
            let ini = fin["config"].as_str().unwrap();
            assert!(ini.contains("\nos_dump = True\n"), "{ini}");
            assert!(
                log.iter()
                    .any(|l| l.contains("through the OS export script")),
                "{log:?}"
            );
        }

        #[test]
        fn a_copy_that_differs_from_the_staged_dump_fails_and_cleans_up() {
            let c = cluster("bexp-differs", "debootstrap+default");
            c.rpc.answer(proto::TRANSFER_PULL, N2, Ok(done("cd")));
            let (out, log) = c.run(op());
            let m = exec_err(out);
            assert!(m.contains("errors in disk export: disk(s) 0"), "{m}");
            assert!(
                log.iter()
                    .any(|l| l.contains("were staged but") && l.contains("sha1 cd")),
                "{log:?}"
            );
            let s = steps(&c);
            assert_eq!(
                s[s.len() - 2..],
                [
                    st(
                        proto::EXPORT_REMOVE,
                        "node1",
                        r#""inst1.example.com.stage""#
                    ),
                    st(proto::EXPORT_REMOVE, "node2", r#""inst1.example.com.new""#),
                ]
            );
            assert!(c.rpc.calls_of(proto::EXPORT_FINALIZE).is_empty());

            // A failing script: no pull, the stage is still removed.
            let c = cluster("bexp-script-fails", "debootstrap+default");
            c.rpc.answer(
                proto::INSTANCE_OS_EXPORT,
                N1,
                Err("OS export script failed (exited with exit code 2)".into()),
            );
            let (out, log) = c.run(op());
            exec_err(out);
            assert!(log.iter().any(|l| l.contains("exit code 2")), "{log:?}");
            assert!(c.rpc.calls_of(proto::TRANSFER_PULL).is_empty());
            let s = steps(&c);
            assert_eq!(
                s[s.len() - 2].clone(),
                st(
                    proto::EXPORT_REMOVE,
                    "node1",
                    r#""inst1.example.com.stage""#
                )
            );
        }

        #[test]
        fn an_instance_without_an_os_is_copied_raw() {
            let c = cluster("bexp-raw", "");
            let (out, log) = c.run(op());
            assert!(matches!(out, OpOutcome::Success(_)), "{out:?} {log:?}");
            assert!(c.rpc.calls_of(proto::INSTANCE_OS_EXPORT).is_empty());
            let pull = &c.rpc.calls_of(proto::TRANSFER_PULL)[0].1;
            assert!(pull["source"]["disk"].is_object(), "{pull}");
            let fin = &c.rpc.calls_of(proto::EXPORT_FINALIZE)[0].1;
            assert!(fin["config"]
                .as_str()
                .unwrap()
                .contains("\nos_dump = False\n"));
            assert!(!steps(&c).iter().any(|(_, _, w)| w.contains(".stage")));
        }
    }
}
