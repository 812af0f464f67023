//! Changing an existing instance: rename, reinstall and parameter changes
//! (Ganeti's `LUInstanceRename`, `LUInstanceReinstall`,
//! `LUInstanceSetParams`). Move is in [`super::transfer`].
//!
//! NIC and disk changes of `gnt-instance modify` are planned and applied
//! by [`devices`]. What is not built yet is refused by name, before
//! anything changes: hotplug, disk attach/detach, disk template
//! conversion, a new primary node and runtime memory changes in
//! `gnt-instance modify`. A renamed file-based instance keeps
//! its storage directory under the old name (there is no directory-rename
//! procedure either); its disks' paths stay valid because the config holds
//! them in full.

use super::{
    assemble_disks, call, check_free_memory, expand_instance_name, instance_locks, instance_named,
    instance_spec_of, live_info, node_by_uuid, rpc_msg, shutdown_disks, spec, target_of,
    update_instance, QUICK_TIMEOUT, SLOW_TIMEOUT,
};
use crate::cmdlib::{LockNeed, LogicalUnit, LuContext, LuError};
use crate::config::objects::{AdminState, ConfigData, Instance, ParamMap};
use crate::config::params::{self, ParamFamily};
use crate::config::ConfigError;
use crate::error::ErrorKind;
use crate::locking::{Level, LockMode, LockName};
use crate::opcodes::{OpInstanceReinstall, OpInstanceRename, OpInstanceSetParams};
use crate::rpc::proto::{self, InstanceOsArgs, OsValidateArgs};
use serde_json::{json, Value};

pub mod devices;

fn inval(msg: impl Into<String>) -> LuError {
    LuError::prereq(ErrorKind::Inval, msg)
}

fn checked(inst: &Option<Instance>) -> Result<Instance, LuError> {
    inst.clone()
        .ok_or_else(|| LuError::Exec("instance LU ran without its prerequisites".into()))
}

/// Ganeti's `GetUpdatedParams`: `changes` over `old`, where the value
/// `"default"` removes the key (back to the inherited value).
pub fn updated_params(old: &ParamMap, changes: &ParamMap) -> ParamMap {
    let mut out = old.clone();
    for (k, v) in changes {
        if v.as_str() == Some(params::PP_DEFAULT) || v.is_null() {
            out.remove(k);
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

fn to_params(d: &crate::opcodes::Dict) -> ParamMap {
    d.clone().into_iter().collect()
}

/// The name of an admin state as Ganeti prints it.
fn admin_state_name(s: AdminState) -> &'static str {
    match s {
        AdminState::Up => "up",
        AdminState::Down => "down",
        AdminState::Offline => "offline",
    }
}

/// Ganeti's `CheckInstanceState` for operations that need the instance
/// marked down (`allowed` lists the admin states that are fine).
pub(super) fn check_admin_state(
    inst: &Instance,
    allowed: &[AdminState],
    what: &str,
) -> Result<(), LuError> {
    if allowed.contains(&inst.admin_state) {
        return Ok(());
    }
    Err(LuError::prereq(
        ErrorKind::State,
        format!(
            "Instance '{}' is marked to be {}, {what}",
            inst.name,
            admin_state_name(inst.admin_state)
        ),
    ))
}

/// The second half of `CheckInstanceState`: the instance must not run on
/// its primary node (asked at the start of `exec`, still a prerequisite).
pub(super) fn check_not_running(
    ctx: &mut LuContext<'_>,
    cfg: &ConfigData,
    inst: &Instance,
    what: &str,
) -> Result<(), LuError> {
    match live_info(ctx, cfg, inst) {
        Ok(None) => Ok(()),
        Ok(Some(_)) => Err(LuError::prereq(
            ErrorKind::State,
            format!("Instance '{}' is running, {what}", inst.name),
        )),
        Err(e) => Err(LuError::prereq(
            ErrorKind::Environ,
            format!(
                "Can't contact node {} for instance information: {}",
                target_of(cfg, &inst.primary_node)?.name,
                rpc_msg(&e)
            ),
        )),
    }
}

/// Ganeti's `CheckNodeOnline` for the primary node.
fn check_primary_online(cfg: &ConfigData, inst: &Instance, msg: &str) -> Result<(), LuError> {
    let node = node_by_uuid(cfg, &inst.primary_node)?;
    if node.offline {
        return Err(LuError::prereq(
            ErrorKind::State,
            format!("{msg}: node {} is offline", node.name),
        ));
    }
    Ok(())
}

/// Validates `os` with the filled `osparams` on the primary node
/// (`os_validate`, Ganeti's `CheckOSParams` + `CheckNodeHasOS`).
fn validate_os(
    ctx: &mut LuContext<'_>,
    cfg: &ConfigData,
    inst: &Instance,
    os: &str,
    osparams: std::collections::BTreeMap<String, String>,
) -> Result<(), LuError> {
    let tgt = target_of(cfg, &inst.primary_node)?;
    let args = OsValidateArgs {
        required: true,
        name: os.to_string(),
        checks: vec!["parameters".into()],
        osparams,
    };
    call(ctx, proto::OS_VALIDATE, &tgt, &args, QUICK_TIMEOUT)
        .map(|_| ())
        .map_err(|e| {
            inval(format!(
                "OS '{os}' validation failed on node {}: {}",
                tgt.name,
                rpc_msg(&e)
            ))
        })
}

/// Runs `f` with the disks of `inst` assembled on its primary, shutting
/// them down afterwards whatever happened (Ganeti's `StartInstanceDisks`
/// … `finally: ShutdownInstanceDisks`).
fn with_disks<T>(
    ctx: &mut LuContext<'_>,
    cfg: &ConfigData,
    inst: &Instance,
    f: impl FnOnce(&mut LuContext<'_>, Vec<proto::AssembledDisk>) -> Result<T, LuError>,
) -> Result<T, LuError> {
    let out = match assemble_disks(ctx, cfg, inst) {
        Ok(disks) => f(ctx, disks),
        Err(e) => Err(e),
    };
    for w in shutdown_disks(ctx, cfg, inst) {
        ctx.log(format!("WARNING: {w}"));
    }
    out
}

/// `OP_INSTANCE_RENAME` (`gnt-instance rename`).
pub struct LuInstanceRename {
    op: OpInstanceRename,
    inst: Option<Instance>,
}

impl LuInstanceRename {
    /// The LU for `op`.
    pub fn new(op: OpInstanceRename) -> Self {
        LuInstanceRename { op, inst: None }
    }
}

impl LogicalUnit for LuInstanceRename {
    fn expand_names(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        if self.op.ip_check && !self.op.name_check {
            return Err(inval("IP address check requires a name check"));
        }
        self.op.instance_name = expand_instance_name(cfg, &self.op.instance_name)?;
        if self.op.new_name != self.op.instance_name
            && cfg.instance_by_name(&self.op.new_name).is_some()
        {
            return Err(LuError::prereq(
                ErrorKind::Exists,
                format!("Instance '{}' is already in the cluster", self.op.new_name),
            ));
        }
        Ok(())
    }

    /// Only the instance (as Ganeti): the new name's lock is added at
    /// this level during `exec`, which no lower level held may precede.
    fn declare_locks(&self, _cfg: &ConfigData) -> Vec<LockNeed> {
        vec![LockNeed {
            level: Level::Instance,
            names: vec![self.op.instance_name.clone()],
            mode: LockMode::Exclusive,
        }]
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        let inst = instance_named(cfg, &self.op.instance_name)?;
        check_primary_online(cfg, inst, "Can't use offline node")?;
        check_admin_state(
            inst,
            &[AdminState::Down, AdminState::Offline],
            "cannot rename",
        )?;
        if self.op.new_name != inst.name.as_str()
            && cfg.instance_by_name(&self.op.new_name).is_some()
        {
            return Err(LuError::prereq(
                ErrorKind::Exists,
                format!("Instance '{}' is already in the cluster", self.op.new_name),
            ));
        }
        self.inst = Some(inst.clone());
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let inst = checked(&self.inst)?;
        let cfg = ctx.store.snapshot();
        check_not_running(ctx, &cfg, &inst, "cannot rename")?;
        if self.op.name_check {
            let family = cfg.cluster.primary_ip_family;
            let host = crate::net::hostname::resolve(ctx.store.paths(), &self.op.new_name, family)
                .map_err(|e| LuError::prereq(ErrorKind::Resolver, crate::error::chain(&e)))?;
            if host.name != self.op.new_name {
                // Ganeti renames to the resolved full name; the lock we hold
                // is for the name as given, so ask for the full one.
                return Err(inval(format!(
                    "New name '{}' resolves to '{}'; give the full name",
                    self.op.new_name, host.name
                )));
            }
            if self.op.ip_check {
                let port = crate::net::noded_port(ctx.store.paths());
                if crate::net::hostname::tcp_ping(host.ip, port, std::time::Duration::from_secs(1))
                {
                    return Err(LuError::prereq(
                        ErrorKind::NotUnique,
                        format!(
                            "IP {} of instance {} already in use",
                            host.ip, self.op.new_name
                        ),
                    ));
                }
            }
        }
        let old_name = inst.name.as_str().to_string();
        let new_name = self.op.new_name.clone();
        if new_name == old_name {
            return Ok(json!(new_name));
        }
        // Take the new name's lock so nobody creates an instance of that
        // name meanwhile (Ganeti's `add_locks`); adding at a level already
        // held cannot deadlock.
        let new_lock = [LockName::from(new_name.as_str())];
        // Blocking: the answer is always "held".
        let _held = ctx
            .locks
            .add(
                ctx.owner,
                Level::Instance,
                &new_lock,
                crate::locking::NewLocks::HeldAs(LockMode::Exclusive),
                crate::locking::Timeout::Blocking,
                ctx.priority,
            )
            .map_err(|e| {
                LuError::prereq(
                    ErrorKind::Exists,
                    format!("Instance name '{new_name}' is in use: {e}"),
                )
            })?;
        let n = new_name.clone();
        let taken = new_name.clone();
        let renamed = ctx.update_config(move |c| {
            if c.instance_by_name(&taken).is_some() {
                return Err(crate::config::ConfigError::Update {
                    reason: format!("Instance '{taken}' is already in the cluster"),
                });
            }
            let i = c.instances.get_mut(&inst.uuid).ok_or_else(|| {
                crate::config::ConfigError::Update {
                    reason: format!("Instance '{}' disappeared from the cluster", inst.name),
                }
            })?;
            i.name = n.as_str().into();
            i.serial_no += 1;
            i.mtime = super::now();
            Ok(())
        });
        if let Err(e) = renamed {
            if let Err(le) = ctx.locks.remove(ctx.owner, Level::Instance, &new_lock) {
                log::error!("dropping the lock of unused name {new_name}: {le}");
            }
            return Err(e);
        }
        if let Err(e) = ctx.locks.remove(
            ctx.owner,
            Level::Instance,
            &[LockName::from(old_name.as_str())],
        ) {
            log::error!("removing the lock of renamed instance {old_name}: {e}");
        }
        let cfg = ctx.store.snapshot();
        let renamed = instance_named(&cfg, &new_name)?.clone();
        if renamed
            .disks
            .iter()
            .filter_map(|u| cfg.disks.get(u))
            .any(|d| matches!(d.dev_type.as_str(), "file" | "sharedfile"))
        {
            ctx.log(format!(
                "The storage directory of the disks keeps the old name '{old_name}' (renaming it is not supported yet)"
            ));
        }
        let tgt = target_of(&cfg, &renamed.primary_node)?;
        let spec = instance_spec_of(&cfg, &renamed.uuid)?;
        let result = with_disks(ctx, &cfg, &renamed, |ctx, disks| {
            let args = InstanceOsArgs {
                instance: spec,
                disks,
                reinstall: false,
                old_name: Some(old_name.clone()),
                debug: 0,
            };
            call(ctx, proto::INSTANCE_OS_RENAME, &tgt, &args, SLOW_TIMEOUT)
                .map(|_| ())
                .map_err(|e| LuError::Exec(rpc_msg(&e)))
        });
        if let Err(e) = result {
            ctx.log(format!(
                "WARNING: Could not run OS rename script for instance {new_name} on node {} (but the instance has been renamed in Ganeti): {e}",
                tgt.name
            ));
        }
        Ok(json!(new_name))
    }
}

/// `OP_INSTANCE_REINSTALL` (`gnt-instance reinstall`).
pub struct LuInstanceReinstall {
    op: OpInstanceReinstall,
    inst: Option<Instance>,
    /// Merged public and private OS parameters.
    osparams: (ParamMap, ParamMap),
}

impl LuInstanceReinstall {
    /// The LU for `op`.
    pub fn new(op: OpInstanceReinstall) -> Self {
        LuInstanceReinstall {
            op,
            inst: None,
            osparams: Default::default(),
        }
    }
}

impl LogicalUnit for LuInstanceReinstall {
    fn expand_names(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        self.op.instance_name = expand_instance_name(cfg, &self.op.instance_name)?;
        Ok(())
    }

    fn declare_locks(&self, cfg: &ConfigData) -> Vec<LockNeed> {
        instance_locks(cfg, &self.op.instance_name, LockMode::Exclusive)
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        let inst = instance_named(cfg, &self.op.instance_name)?;
        check_primary_online(cfg, inst, "Instance primary node offline, cannot reinstall")?;
        if inst.disks.is_empty() {
            return Err(inval(format!("Instance '{}' has no disks", inst.name)));
        }
        check_admin_state(inst, &[AdminState::Down], "cannot reinstall")?;
        let public = updated_params(
            &inst.osparams,
            &to_params(&self.op.osparams.clone().unwrap_or_default()),
        );
        let private = updated_params(
            &inst.osparams_private,
            &to_params(&self.op.osparams_private.clone().unwrap_or_default()),
        );
        self.osparams = (public, private);
        self.inst = Some(inst.clone());
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let inst = checked(&self.inst)?;
        let cfg = ctx.store.snapshot();
        check_not_running(ctx, &cfg, &inst, "cannot reinstall")?;
        let os = self.op.os_type.clone().unwrap_or_else(|| inst.os.clone());
        let (public, private) = self.osparams.clone();
        let mut filled = spec::osparams_text(&params::fill_osparams(&cfg.cluster, &os, &public));
        filled.extend(spec::osparams_text(&private));
        if let Some(secret) = &self.op.osparams_secret {
            filled.extend(spec::osparams_text(&to_params(secret)));
        }
        validate_os(ctx, &cfg, &inst, &os, filled)?;
        if self.op.os_type.is_some() {
            ctx.log(format!("Changing OS scripts to '{os}'..."));
        }
        let (new_os, p, q) = (os.clone(), public, private);
        update_instance(ctx, &inst.uuid, move |i| {
            i.os = new_os;
            i.osparams = p;
            i.osparams_private = q;
            Ok(())
        })?;
        let cfg = ctx.store.snapshot();
        let inst = instance_named(&cfg, inst.name.as_str())?.clone();
        let tgt = target_of(&cfg, &inst.primary_node)?;
        let mut spec = instance_spec_of(&cfg, &inst.uuid)?;
        if let Some(secret) = &self.op.osparams_secret {
            // Secret parameters reach the script, never the config.
            spec.osparams_private
                .extend(spec::osparams_text(&to_params(secret)));
        }
        ctx.log("Running instance OS create scripts...");
        with_disks(ctx, &cfg, &inst, |ctx, disks| {
            let args = InstanceOsArgs {
                instance: spec,
                disks,
                reinstall: true,
                old_name: None,
                debug: 0,
            };
            call(ctx, proto::INSTANCE_OS_ADD, &tgt, &args, SLOW_TIMEOUT)
                .map(|_| ())
                .map_err(|e| {
                    LuError::Exec(format!(
                        "Could not install OS for instance '{}' on node '{}': {}",
                        inst.name,
                        tgt.name,
                        rpc_msg(&e)
                    ))
                })
        })?;
        Ok(Value::Null)
    }
}

/// `OP_INSTANCE_SET_PARAMS` (`gnt-instance modify`): backend, hypervisor
/// and OS parameters, the OS name, and offline/online.
pub struct LuInstanceSetParams {
    op: OpInstanceSetParams,
    inst: Option<Instance>,
    be: Option<ParamMap>,
    hv: Option<ParamMap>,
    os: Option<(ParamMap, ParamMap)>,
    /// The instance's NICs after the `nics` changes, if any.
    nics: Option<devices::NicPlan>,
    /// The `disks` changes, in order.
    disk_steps: Vec<devices::DiskStep>,
}

impl LuInstanceSetParams {
    /// The LU for `op`.
    pub fn new(op: OpInstanceSetParams) -> Self {
        LuInstanceSetParams {
            op,
            inst: None,
            be: None,
            hv: None,
            os: None,
            nics: None,
            disk_steps: Vec::new(),
        }
    }

    /// Refuses the parts of the opcode not built yet, by name.
    fn check_supported(&self) -> Result<(), LuError> {
        let op = &self.op;
        if op.hotplug {
            // Ganeti asks the node (`hotplug_supported`); no hypervisor
            // of ours can, so say so before anything changes.
            return Err(LuError::prereq(
                ErrorKind::State,
                "Hotplug is not possible: hotplug is not supported by ganeti-rs",
            ));
        }
        let unsupported = [
            (op.disk_template.is_some(), "disk template conversion (-t)"),
            (
                op.pnode.is_some(),
                "changing the primary node (--new-primary)",
            ),
            (op.runtime_mem.is_some(), "runtime memory changes (-m)"),
            (
                op.instance_communication.is_some(),
                "instance communication",
            ),
        ];
        if let Some((_, what)) = unsupported.iter().find(|(used, _)| *used) {
            return Err(inval(format!(
                "gnt-instance modify: {what} is not supported yet in ganeti-rs"
            )));
        }
        Ok(())
    }
}

impl LogicalUnit for LuInstanceSetParams {
    fn expand_names(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        let op = &self.op;
        if op.nics.is_empty()
            && op.disks.is_empty()
            && op.disk_template.is_none()
            && op.hvparams.is_empty()
            && op.beparams.is_empty()
            && op.os_name.is_none()
            && op.osparams.is_empty()
            && op.offline.is_none()
            && op.runtime_mem.is_none()
            && op.pnode.is_none()
            && op.osparams_private.is_none()
            && op.instance_communication.is_none()
        {
            return Err(inval("No changes submitted"));
        }
        self.check_supported()?;
        self.op.instance_name = expand_instance_name(cfg, &self.op.instance_name)?;
        Ok(())
    }

    fn declare_locks(&self, cfg: &ConfigData) -> Vec<LockNeed> {
        instance_locks(cfg, &self.op.instance_name, LockMode::Exclusive)
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        let inst = instance_named(cfg, &self.op.instance_name)?.clone();
        if !self.op.hvparams.is_empty() {
            let globals: Vec<&str> = params::hv_globals(&inst.hypervisor)
                .into_iter()
                .filter(|g| self.op.hvparams.contains_key(*g))
                .collect();
            if !globals.is_empty() {
                return Err(inval(format!(
                    "The following hypervisor parameters are global and cannot be customized at instance level, please modify them at cluster level: {}",
                    globals.join(", ")
                )));
            }
            let new = updated_params(&inst.hvparams, &to_params(&self.op.hvparams));
            params::check_params(ParamFamily::Hv, Some(&inst.hypervisor), &new)
                .map_err(|e| inval(e.to_string()))?;
            self.hv = Some(new);
        }
        if !self.op.beparams.is_empty() {
            let new = updated_params(&inst.beparams, &to_params(&self.op.beparams));
            params::check_params(ParamFamily::Be, None, &new).map_err(|e| inval(e.to_string()))?;
            let filled = params::fill_beparams(&cfg.cluster, &new);
            let (min, max) = (
                super::be_u64(&filled, "minmem"),
                super::be_u64(&filled, "maxmem"),
            );
            if min > max {
                return Err(inval(format!(
                    "Minimum memory ({min} MiB) cannot be larger than maximum memory ({max} MiB)"
                )));
            }
            self.be = Some(new);
        }
        let private = self.op.osparams_private.clone().unwrap_or_default();
        if !self.op.osparams.is_empty() || !private.is_empty() {
            let mut dupes: Vec<&String> = self
                .op
                .osparams
                .keys()
                .filter(|k| private.contains_key(*k))
                .collect();
            dupes.sort();
            if !dupes.is_empty() {
                return Err(inval(format!(
                    "OS parameters repeated multiple times: {}",
                    dupes
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            self.os = Some((
                updated_params(&inst.osparams, &to_params(&self.op.osparams)),
                updated_params(&inst.osparams_private, &to_params(&private)),
            ));
        }
        match self.op.offline {
            Some(true) => check_admin_state(
                &inst,
                &[AdminState::Down, AdminState::Offline],
                "cannot change instance state to offline",
            )?,
            Some(false) => check_admin_state(
                &inst,
                &[AdminState::Down, AdminState::Offline],
                "cannot change instance state to online",
            )?,
            None => {}
        }
        if !self.op.nics.is_empty() {
            let mods = devices::parse_mods("NIC", &self.op.nics)?;
            self.nics = Some(devices::plan_nics(
                cfg,
                &inst,
                &mods,
                self.op.conflicts_check,
            )?);
        }
        if !self.op.disks.is_empty() {
            let mods = devices::parse_mods("disk", &self.op.disks)?;
            let opts = devices::DiskOptions {
                file_driver: self.op.file_driver.map(|f| f.as_str().to_string()),
                file_storage_dir: self.op.file_storage_dir.clone(),
                wait_for_sync: self.op.wait_for_sync,
            };
            self.disk_steps = devices::plan_disks(cfg, &inst, &mods, &opts)?;
            if devices::removes_disks(&self.disk_steps) {
                check_admin_state(
                    &inst,
                    &[AdminState::Down, AdminState::Offline],
                    "can't remove volume from a running instance without using hotplug",
                )?;
            }
        }
        self.inst = Some(inst);
        Ok(())
    }

    /// Returns Ganeti's `[[parameter, new value], …]`.
    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let inst = checked(&self.inst)?;
        let cfg = ctx.store.snapshot();
        let mut result: Vec<Value> = Vec::new();
        let os_name = self.op.os_name.clone();
        if !self.op.force && (os_name.is_some() || self.os.is_some()) {
            let os = os_name.clone().unwrap_or_else(|| inst.os.clone());
            let (public, private) = self
                .os
                .clone()
                .unwrap_or_else(|| (inst.osparams.clone(), inst.osparams_private.clone()));
            let mut filled =
                spec::osparams_text(&params::fill_osparams(&cfg.cluster, &os, &public));
            filled.extend(spec::osparams_text(&private));
            validate_os(ctx, &cfg, &inst, &os, filled)?;
        }
        if let Some(be) = &self.be {
            // Ganeti: growing maxmem of a running instance must still fit
            // its node, unless forced.
            let new_max = super::be_u64(&params::fill_beparams(&cfg.cluster, be), "maxmem");
            let old_max = super::be_u64(&spec::beparams(&cfg, &inst), "maxmem");
            if !self.op.force && new_max > old_max && inst.admin_state == AdminState::Up {
                let current = live_info(ctx, &cfg, &inst)
                    .ok()
                    .flatten()
                    .map_or(0, |i| i.memory_mib);
                if current > 0 && new_max > current {
                    check_free_memory(
                        ctx,
                        &cfg,
                        &inst.primary_node,
                        &format!("growing the memory of instance {}", inst.name),
                        new_max - current,
                        &inst.hypervisor,
                    )
                    .map_err(|_| {
                        LuError::prereq(
                            ErrorKind::NoRes,
                            "This change will prevent the instance from starting, due to lack of memory on its primary node".to_string(),
                        )
                    })?;
                }
            }
        }
        let device_changes = self.nics.is_some() || !self.disk_steps.is_empty();
        if device_changes && self.op.hotplug_if_possible {
            ctx.log("WARNING: hotplug is not supported by ganeti-rs");
            ctx.log("Modification will take place without hotplugging.");
        }
        if devices::removes_disks(&self.disk_steps) {
            check_not_running(
                ctx,
                &cfg,
                &inst,
                "can't remove volume from a running instance without using hotplug",
            )?;
        }
        devices::apply_disk_steps(ctx, &inst.uuid, &self.disk_steps, &mut result)?;
        if let Some(plan) = &self.nics {
            result.extend(plan.changes.iter().map(|(k, v)| json!([k, v])));
        }
        if device_changes && inst.admin_state == AdminState::Up {
            ctx.log(format!(
                "Instance {} is running: the NIC and disk changes take effect at its next restart (hotplug is not supported by ganeti-rs)",
                inst.name
            ));
        }
        let hv_changes: Vec<(String, Value)> = self
            .op
            .hvparams
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let be_changes: Vec<(String, Value)> = self
            .op
            .beparams
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in &hv_changes {
            result.push(json!([format!("hv/{k}"), v]));
        }
        for (k, v) in &be_changes {
            result.push(json!([format!("be/{k}"), v]));
        }
        if let Some(os) = &os_name {
            result.push(json!(["os_name", os]));
        }
        for (k, v) in &self.op.osparams {
            result.push(json!([format!("os/{k}"), v]));
        }
        for k in self.op.osparams_private.iter().flat_map(|m| m.keys()) {
            result.push(json!([format!("os_private/{k}"), "<redacted>"]));
        }
        let new_state = match self.op.offline {
            Some(true) => Some(AdminState::Offline),
            Some(false) => Some(AdminState::Down),
            None => None,
        };
        if let Some(s) = new_state {
            result.push(json!(["admin_state", admin_state_name(s)]));
        }
        let (be, hv, os) = (self.be.clone(), self.hv.clone(), self.os.clone());
        let nics = self.nics.clone();
        let iu = inst.uuid.clone();
        ctx.update_config(move |c| {
            if let Some(plan) = &nics {
                devices::commit_nics(c, &iu, plan)?;
            }
            let i = c
                .instances
                .get_mut(&iu)
                .ok_or_else(|| ConfigError::Update {
                    reason: format!("Instance with UUID '{iu}' disappeared from the cluster"),
                })?;
            if let Some(plan) = nics {
                i.nics = plan.nics;
            }
            i.serial_no += 1;
            i.mtime = super::now();
            if let Some(be) = be {
                i.beparams = be;
            }
            if let Some(hv) = hv {
                i.hvparams = hv;
            }
            if let Some((p, q)) = os {
                i.osparams = p;
                i.osparams_private = q;
            }
            if let Some(os) = os_name {
                i.os = os;
            }
            if let Some(s) = new_state {
                i.admin_state = s;
                i.admin_state_source = "admin".into();
            }
            Ok(())
        })?;
        Ok(Value::Array(result))
    }
}

#[cfg(test)]
mod tests {
    use super::updated_params;
    use crate::cmdlib::fake_rpc::{prereq, TestCluster};
    use crate::cmdlib::{LuError, OpOutcome};
    use crate::config::objects::AdminState;
    use crate::error::ErrorKind;
    use crate::opcodes::*;
    use crate::rpc::proto;
    use serde_json::{json, Value};

    const INST: &str = "inst1.example.com";

    fn dict(v: Value) -> Dict {
        v.as_object().unwrap().clone()
    }

    /// inst1 on node1, stopped.
    fn cluster(tag: &str) -> TestCluster {
        let mut cfg = crate::config::test_support::generated(2, 1);
        let inst = cfg.instances.values_mut().next().unwrap();
        inst.admin_state = AdminState::Down;
        inst.disks_active = false;
        let c = TestCluster::with_config(tag, cfg);
        c.rpc.answer(
            proto::BLOCKDEV_ASSEMBLE,
            "node1.example.com",
            Ok(json!(proto::AssembledDisk {
                uuid: "d".into(),
                path: "/dev/xenvg/d".into(),
                uri: None,
            })),
        );
        c
    }

    fn steps(c: &TestCluster) -> Vec<String> {
        c.rpc
            .calls()
            .into_iter()
            .map(|c| c.procedure)
            .filter(|p| proto::INSTANCE_PROCEDURES.contains(&p.as_str()))
            .collect()
    }

    #[test]
    fn default_resets_a_parameter() {
        let old = [("a".to_string(), json!(1)), ("b".to_string(), json!(2))].into();
        let new = updated_params(
            &old,
            &[
                ("a".to_string(), json!("default")),
                ("c".to_string(), json!(3)),
            ]
            .into(),
        );
        assert_eq!(
            new,
            [("b".to_string(), json!(2)), ("c".to_string(), json!(3))].into()
        );
    }

    #[test]
    fn rename_changes_config_lock_and_runs_the_os_script() {
        let c = cluster("rename");
        let op = OpInstanceRename {
            instance_name: "inst1".into(),
            new_name: "web9.example.com".into(),
            name_check: false,
            ip_check: false,
            ..Default::default()
        };
        let (out, log) = c.run(op.clone());
        assert_eq!(
            out,
            OpOutcome::Success(json!("web9.example.com")),
            "{log:?}"
        );
        assert!(c.config().instance_by_name("web9.example.com").is_some());
        assert!(c.config().instance_by_name(INST).is_none());
        assert!(c.has_instance_lock("web9.example.com") && !c.has_instance_lock(INST));
        assert_eq!(
            steps(&c),
            [
                proto::INSTANCE_INFO,
                proto::BLOCKDEV_ASSEMBLE,
                proto::INSTANCE_OS_RENAME,
                proto::BLOCKDEV_SHUTDOWN
            ]
        );
        let args = &c.rpc.calls_of(proto::INSTANCE_OS_RENAME)[0].1;
        assert_eq!(args["old_name"], INST);
        assert_eq!(args["instance"]["name"], "web9.example.com");
        // The old name is free again; the new one is taken.
        let (kind, m) = prereq(
            c.run(OpInstanceRename {
                instance_name: "inst1.example.com".into(),
                ..op.clone()
            })
            .0,
        );
        assert_eq!(kind, ErrorKind::NoEnt, "{m}");
        let (_, m) = prereq(
            c.run(OpInstanceRename {
                ip_check: true,
                ..op
            })
            .0,
        );
        assert_eq!(m, "IP address check requires a name check");
    }

    #[test]
    fn rename_refuses_a_running_or_taken_name() {
        let mut cfg = crate::config::test_support::generated(2, 2);
        for i in cfg.instances.values_mut() {
            i.admin_state = AdminState::Down;
        }
        let c = TestCluster::with_config("rename-refuse", cfg);
        let op = OpInstanceRename {
            instance_name: "inst1".into(),
            new_name: "inst2.example.com".into(),
            name_check: false,
            ip_check: false,
            ..Default::default()
        };
        let (kind, m) = prereq(c.run(op.clone()).0);
        assert_eq!(kind, ErrorKind::Exists);
        assert_eq!(m, "Instance 'inst2.example.com' is already in the cluster");
        c.rpc.answer(
            proto::INSTANCE_INFO,
            "node1.example.com",
            Ok(
                json!({"name": INST, "state": "running", "memory_mib": 1, "vcpus": 1,
                      "cpu_time_secs": null}),
            ),
        );
        let (_, m) = prereq(
            c.run(OpInstanceRename {
                new_name: "new.example.com".into(),
                ..op
            })
            .0,
        );
        assert_eq!(m, "Instance 'inst1.example.com' is running, cannot rename");
        assert!(c.config().instance_by_name(INST).is_some());
        assert!(
            !c.has_instance_lock("new.example.com"),
            "added lock dropped on failure"
        );
    }

    #[test]
    fn reinstall_merges_osparams_and_runs_create_with_reinstall() {
        let c = cluster("reinstall");
        let (out, log) = c.run(OpInstanceReinstall {
            instance_name: "inst1".into(),
            os_type: Some("image+default".into()),
            osparams: Some(dict(json!({"size": "8"}))),
            osparams_secret: Some(dict(json!({"pw": "s3cret"}))),
            ..Default::default()
        });
        assert_eq!(out, OpOutcome::Success(Value::Null), "{log:?}");
        assert_eq!(
            steps(&c),
            [
                proto::INSTANCE_INFO,
                proto::OS_VALIDATE,
                proto::BLOCKDEV_ASSEMBLE,
                proto::INSTANCE_OS_ADD,
                proto::BLOCKDEV_SHUTDOWN
            ]
        );
        let args = &c.rpc.calls_of(proto::INSTANCE_OS_ADD)[0].1;
        assert_eq!(args["reinstall"], true);
        assert_eq!(args["instance"]["os"], "image+default");
        assert_eq!(args["instance"]["osparams"]["size"], "8");
        assert_eq!(args["instance"]["osparams_private"]["pw"], "s3cret");
        let cfg = c.config();
        let (_, i) = cfg.instance_by_name(INST).unwrap();
        assert_eq!(i.os, "image+default");
        assert_eq!(i.osparams["size"], json!("8"));
        assert!(!serde_json::to_string(&*cfg).unwrap().contains("s3cret"));
        // A failing create script is an execution error; disks are shut down.
        c.rpc.clear();
        c.rpc.answer(
            proto::INSTANCE_OS_ADD,
            "node1.example.com",
            Err("create failed".into()),
        );
        let out = c.run(OpInstanceReinstall {
            instance_name: "inst1".into(),
            ..Default::default()
        });
        match out.0 {
            OpOutcome::Failed(LuError::Exec(m)) => assert!(
                m.starts_with("Could not install OS for instance 'inst1.example.com'"),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(steps(&c).last().unwrap(), proto::BLOCKDEV_SHUTDOWN);
    }

    #[test]
    fn reinstall_needs_a_stopped_instance_with_disks() {
        let mut cfg = crate::config::test_support::generated(2, 1);
        cfg.instances.values_mut().next().unwrap().admin_state = AdminState::Up;
        let c = TestCluster::with_config("reinstall-up", cfg);
        let (kind, m) = prereq(
            c.run(OpInstanceReinstall {
                instance_name: "inst1".into(),
                ..Default::default()
            })
            .0,
        );
        assert_eq!(kind, ErrorKind::State);
        assert_eq!(
            m,
            "Instance 'inst1.example.com' is marked to be up, cannot reinstall"
        );
    }

    #[test]
    fn set_params_changes_and_validates_parameters() {
        let c = cluster("setparams");
        let (out, log) = c.run(OpInstanceSetParams {
            instance_name: "inst1".into(),
            beparams: dict(json!({"maxmem": 256, "minmem": 128})),
            offline: Some(true),
            ..Default::default()
        });
        assert_eq!(
            out,
            OpOutcome::Success(json!([
                ["be/maxmem", 256],
                ["be/minmem", 128],
                ["admin_state", "offline"]
            ])),
            "{log:?}"
        );
        let cfg = c.config();
        let (_, i) = cfg.instance_by_name(INST).unwrap();
        assert_eq!(i.beparams["maxmem"], json!(256));
        assert_eq!(i.admin_state, AdminState::Offline);
        // "default" drops the instance's own value.
        c.run(OpInstanceSetParams {
            instance_name: "inst1".into(),
            beparams: dict(json!({"maxmem": "default"})),
            offline: Some(false),
            ..Default::default()
        });
        let cfg = c.config();
        let (_, i) = cfg.instance_by_name(INST).unwrap();
        assert!(!i.beparams.contains_key("maxmem"));
        assert_eq!(i.admin_state, AdminState::Down);
        let serial = c.config().serial_no;
        for (op, want) in [
            (OpInstanceSetParams::default(), "No changes submitted"),
            (
                OpInstanceSetParams {
                    beparams: dict(json!({"maxmem": 64, "minmem": 128})),
                    ..Default::default()
                },
                "Minimum memory (128 MiB) cannot be larger than maximum memory (64 MiB)",
            ),
            (
                OpInstanceSetParams {
                    beparams: dict(json!({"no_such": 1})),
                    ..Default::default()
                },
                "no_such",
            ),
            (
                OpInstanceSetParams {
                    nics: vec![json!(["add", 5, {}])],
                    ..Default::default()
                },
                "Got NIC index 5, but there are only 1",
            ),
        ] {
            let (kind, m) = prereq(
                c.run(OpInstanceSetParams {
                    instance_name: "inst1".into(),
                    ..op
                })
                .0,
            );
            assert_eq!(kind, ErrorKind::Inval, "{m}");
            assert!(m.contains(want), "{want}: {m}");
        }
        assert_eq!(c.config().serial_no, serial);
    }

    #[test]
    fn set_params_refuses_global_hv_params_and_offline_while_up() {
        let mut cfg = crate::config::test_support::generated(2, 1);
        cfg.instances.values_mut().next().unwrap().admin_state = AdminState::Up;
        let c = TestCluster::with_config("setparams-up", cfg);
        let globals = crate::config::params::hv_globals("fake");
        if let Some(g) = globals.first() {
            let (_, m) = prereq(
                c.run(OpInstanceSetParams {
                    instance_name: "inst1".into(),
                    hvparams: dict(json!({ *g: "x" })),
                    ..Default::default()
                })
                .0,
            );
            assert!(
                m.starts_with("The following hypervisor parameters are global"),
                "{m}"
            );
        }
        let (kind, m) = prereq(
            c.run(OpInstanceSetParams {
                instance_name: "inst1".into(),
                offline: Some(true),
                ..Default::default()
            })
            .0,
        );
        assert_eq!(kind, ErrorKind::State);
        assert_eq!(
            m,
            "Instance 'inst1.example.com' is marked to be up, cannot change instance state to offline"
        );
    }
}
