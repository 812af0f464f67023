//! Remove, startup, shutdown, reboot and console of an existing instance
//! (Ganeti's `instance_operation.py` and `LUInstanceRemove`).

use super::{
    assemble_disks, call, check_free_memory, check_not_offline, disks_with_nodes,
    expand_instance_name, instance_locks, instance_named, instance_spec_of, live_info,
    remove_disks, rpc_msg, set_admin_state, shutdown_disks, target_of, QUICK_TIMEOUT, SLOW_TIMEOUT,
};
use crate::cmdlib::{LockNeed, LogicalUnit, LuContext, LuError};
use crate::config::objects::{AdminState, ConfigData, Instance};
use crate::error::ErrorKind;
use crate::locking::{Level, LockMode, LockName};
use crate::opcodes::params::RebootType;
use crate::opcodes::{
    OpInstanceConsole, OpInstanceReboot, OpInstanceRemove, OpInstanceShutdown, OpInstanceStartup,
};
use crate::rpc::proto::{self, InstanceShutdownArgs, InstanceStartArgs};
use serde_json::Value;

/// The instance a prerequisite check found, for `exec`.
fn checked(inst: &Option<Instance>) -> Result<Instance, LuError> {
    inst.clone()
        .ok_or_else(|| LuError::Exec("instance LU ran without its prerequisites".into()))
}

/// Stops `inst` on its primary; the error message on failure.
fn shutdown_instance(
    ctx: &mut LuContext<'_>,
    cfg: &ConfigData,
    inst: &Instance,
    timeout_secs: u64,
) -> Result<(), String> {
    let tgt = target_of(cfg, &inst.primary_node).map_err(|e| e.to_string())?;
    let args = InstanceShutdownArgs {
        instance: instance_spec_of(cfg, &inst.uuid).map_err(|e| e.to_string())?,
        timeout_secs,
    };
    call(ctx, proto::INSTANCE_SHUTDOWN, &tgt, &args, SLOW_TIMEOUT)
        .map(|_| ())
        .map_err(|e| rpc_msg(&e))
}

/// Assembles the disks of `inst` and starts it; on failure the disks are
/// shut down again (Ganeti's `StartInstanceDisks` + `instance_start`).
fn start_instance(ctx: &mut LuContext<'_>, inst: &Instance, paused: bool) -> Result<(), LuError> {
    let cfg = ctx.store.snapshot();
    let disks = assemble_disks(ctx, &cfg, inst).inspect_err(|_| {
        for w in shutdown_disks(ctx, &cfg, inst) {
            log::warn!("{w}");
        }
    })?;
    super::update_instance(ctx, &inst.uuid, |i| {
        i.disks_active = true;
        Ok(())
    })?;
    let cfg = ctx.store.snapshot();
    let tgt = target_of(&cfg, &inst.primary_node)?;
    let args = InstanceStartArgs {
        instance: instance_spec_of(&cfg, &inst.uuid)?,
        disks,
        startup_paused: paused,
    };
    if let Err(e) = call(ctx, proto::INSTANCE_START, &tgt, &args, SLOW_TIMEOUT) {
        for w in shutdown_disks(ctx, &cfg, inst) {
            ctx.log(format!("WARNING: {w}"));
        }
        let _ = super::update_instance(ctx, &inst.uuid, |i| {
            i.disks_active = false;
            Ok(())
        });
        return Err(LuError::Exec(format!(
            "Could not start instance: {}",
            rpc_msg(&e)
        )));
    }
    Ok(())
}

macro_rules! instance_lu {
    ($(#[$doc:meta])* $lu:ident, $op:ty) => {
        $(#[$doc])*
        pub struct $lu {
            op: $op,
            inst: Option<Instance>,
        }

        impl $lu {
            /// The LU for `op`.
            pub fn new(op: $op) -> Self {
                $lu { op, inst: None }
            }
        }
    };
}

instance_lu!(
    /// `OP_INSTANCE_REMOVE` (`gnt-instance remove`).
    LuInstanceRemove,
    OpInstanceRemove
);
instance_lu!(
    /// `OP_INSTANCE_STARTUP` (`gnt-instance startup`).
    LuInstanceStartup,
    OpInstanceStartup
);
instance_lu!(
    /// `OP_INSTANCE_SHUTDOWN` (`gnt-instance shutdown`).
    LuInstanceShutdown,
    OpInstanceShutdown
);
instance_lu!(
    /// `OP_INSTANCE_REBOOT` (`gnt-instance reboot`).
    LuInstanceReboot,
    OpInstanceReboot
);
instance_lu!(
    /// `OP_INSTANCE_CONSOLE` (`gnt-instance console`).
    LuInstanceConsole,
    OpInstanceConsole
);

/// The common phases of LUs on one existing instance.
macro_rules! common_phases {
    ($mode:expr) => {
        fn expand_names(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
            self.op.instance_name = expand_instance_name(cfg, &self.op.instance_name)?;
            Ok(())
        }

        fn declare_locks(&self, cfg: &ConfigData) -> Vec<LockNeed> {
            instance_locks(cfg, &self.op.instance_name, $mode)
        }
    };
}

impl LogicalUnit for LuInstanceRemove {
    common_phases!(LockMode::Exclusive);

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        self.inst = Some(instance_named(cfg, &self.op.instance_name)?.clone());
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let inst = checked(&self.inst)?;
        let cfg = ctx.store.snapshot();
        let pnode = target_of(&cfg, &inst.primary_node)?;
        ctx.log(format!(
            "Shutting down instance {} on node {}",
            inst.name, pnode.name
        ));
        if !pnode.offline {
            if let Err(m) = shutdown_instance(ctx, &cfg, &inst, self.op.shutdown_timeout) {
                let msg = format!(
                    "Could not shutdown instance {} on node {}: {m}",
                    inst.name, pnode.name
                );
                if !self.op.ignore_failures {
                    return Err(LuError::Exec(msg));
                }
                ctx.log(format!("WARNING: {msg}"));
            }
        }
        for w in shutdown_disks(ctx, &cfg, &inst) {
            ctx.log(format!("WARNING: {w}"));
        }
        ctx.log(format!("Removing block devices for instance {}", inst.name));
        let disks = disks_with_nodes(&cfg, &inst)?;
        let errors = remove_disks(ctx, &cfg, &inst, &disks);
        if !errors.is_empty() {
            for e in &errors {
                ctx.log(format!("WARNING: {e}"));
            }
            if !self.op.ignore_failures {
                return Err(LuError::Exec("Can't remove instance's disks".into()));
            }
            ctx.log("WARNING: Ignoring errors removing the instance's disks".to_string());
        }
        ctx.log(format!(
            "Removing instance {} out of cluster config",
            inst.name
        ));
        let (uuid, disk_uuids) = (inst.uuid.clone(), inst.disks.clone());
        ctx.update_config(move |c| {
            c.instances.remove(&uuid);
            for d in &disk_uuids {
                if let Some(disk) = c.disks.remove(d) {
                    // Ganeti's RemoveInstance: DRBD ports go back to the pool.
                    crate::config::drbd::release_disk_ports(&mut c.cluster, &disk);
                }
            }
            c.cluster.serial_no += 1;
            Ok(())
        })?;
        if let Err(e) = ctx.locks.remove(
            ctx.owner,
            Level::Instance,
            &[LockName::from(inst.name.as_str())],
        ) {
            log::error!("removing the lock of removed instance {}: {e}", inst.name);
        }
        Ok(Value::Null)
    }
}

impl LogicalUnit for LuInstanceStartup {
    common_phases!(LockMode::Exclusive);

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        let inst = instance_named(cfg, &self.op.instance_name)?;
        check_not_offline(inst, "cannot start it")?;
        let be: crate::config::objects::ParamMap = self.op.beparams.clone().into_iter().collect();
        crate::config::params::check_params(crate::config::params::ParamFamily::Be, None, &be)
            .map_err(|e| LuError::prereq(ErrorKind::Inval, e.to_string()))?;
        let hv: crate::config::objects::ParamMap = self.op.hvparams.clone().into_iter().collect();
        crate::config::params::check_params(
            crate::config::params::ParamFamily::Hv,
            Some(&inst.hypervisor),
            &hv,
        )
        .map_err(|e| LuError::prereq(ErrorKind::Inval, e.to_string()))?;
        let pnode = super::node_by_uuid(cfg, &inst.primary_node)?;
        if pnode.offline && !self.op.ignore_offline_nodes {
            return Err(LuError::prereq(
                ErrorKind::State,
                format!(
                    "Cannot start instance {} on offline node {}",
                    inst.name, pnode.name
                ),
            ));
        }
        self.inst = Some(inst.clone());
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let mut inst = checked(&self.inst)?;
        let cfg = ctx.store.snapshot();
        if target_of(&cfg, &inst.primary_node)?.offline {
            if !self.op.no_remember {
                set_admin_state(ctx, &inst.uuid, AdminState::Up, "admin")?;
            }
            ctx.log("Primary node offline, marked instance as started".to_string());
            return Ok(Value::Null);
        }
        let running = live_info(ctx, &cfg, &inst).map_err(|e| {
            LuError::prereq(
                ErrorKind::Environ,
                format!("Error checking node {}: {}", inst.primary_node, rpc_msg(&e)),
            )
        })?;
        if running.is_some() {
            ctx.log(format!("Instance {} is already running", inst.name));
            if !self.op.no_remember {
                set_admin_state(ctx, &inst.uuid, AdminState::Up, "admin")?;
            }
            return Ok(Value::Null);
        }
        // One-off parameters for this start only (not stored).
        inst.beparams.extend(self.op.beparams.clone());
        inst.hvparams.extend(self.op.hvparams.clone());
        let be = super::spec::beparams(&cfg, &inst);
        check_free_memory(
            ctx,
            &cfg,
            &inst.primary_node,
            &format!("starting instance {}", inst.name),
            super::be_u64(&be, "maxmem"),
            &inst.hypervisor,
        )?;
        if !self.op.no_remember {
            set_admin_state(ctx, &inst.uuid, AdminState::Up, "admin")?;
        }
        let mut view = (*ctx.store.snapshot()).clone();
        view.instances.insert(inst.uuid.clone(), inst.clone());
        start_with_view(ctx, &view, &inst, self.op.startup_paused)?;
        Ok(Value::Null)
    }
}

/// [`start_instance`] with one-off parameters: the spec comes from `view`.
fn start_with_view(
    ctx: &mut LuContext<'_>,
    view: &ConfigData,
    inst: &Instance,
    paused: bool,
) -> Result<(), LuError> {
    if view.instances.get(&inst.uuid) == ctx.store.snapshot().instances.get(&inst.uuid) {
        return start_instance(ctx, inst, paused);
    }
    let disks = assemble_disks(ctx, view, inst)?;
    super::update_instance(ctx, &inst.uuid, |i| {
        i.disks_active = true;
        Ok(())
    })?;
    let tgt = target_of(view, &inst.primary_node)?;
    let args = InstanceStartArgs {
        instance: instance_spec_of(view, &inst.uuid)?,
        disks,
        startup_paused: paused,
    };
    if let Err(e) = call(ctx, proto::INSTANCE_START, &tgt, &args, SLOW_TIMEOUT) {
        for w in shutdown_disks(ctx, view, inst) {
            ctx.log(format!("WARNING: {w}"));
        }
        return Err(LuError::Exec(format!(
            "Could not start instance: {}",
            rpc_msg(&e)
        )));
    }
    Ok(())
}

impl LogicalUnit for LuInstanceShutdown {
    common_phases!(LockMode::Exclusive);

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        let inst = instance_named(cfg, &self.op.instance_name)?;
        if !self.op.force {
            check_not_offline(inst, "cannot shut it down")?;
        }
        let pnode = super::node_by_uuid(cfg, &inst.primary_node)?;
        if pnode.offline && !self.op.ignore_offline_nodes {
            return Err(LuError::prereq(
                ErrorKind::State,
                format!(
                    "Cannot shutdown instance {} on offline node {}",
                    inst.name, pnode.name
                ),
            ));
        }
        self.inst = Some(inst.clone());
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let inst = checked(&self.inst)?;
        let source = self
            .op
            .admin_state_source
            .map_or("admin", |s| s.as_str())
            .to_string();
        if !self.op.no_remember && inst.admin_state != AdminState::Offline {
            set_admin_state(ctx, &inst.uuid, AdminState::Down, &source)?;
        }
        let cfg = ctx.store.snapshot();
        if target_of(&cfg, &inst.primary_node)?.offline {
            ctx.log("Primary node offline, marked instance as stopped".to_string());
            return Ok(Value::Null);
        }
        if let Err(m) = shutdown_instance(ctx, &cfg, &inst, self.op.timeout) {
            ctx.log(format!("WARNING: Could not shutdown instance: {m}"));
        }
        for w in shutdown_disks(ctx, &cfg, &inst) {
            ctx.log(format!("WARNING: {w}"));
        }
        super::update_instance(ctx, &inst.uuid, |i| {
            i.disks_active = false;
            Ok(())
        })?;
        Ok(Value::Null)
    }
}

impl LogicalUnit for LuInstanceReboot {
    common_phases!(LockMode::Exclusive);

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        let inst = instance_named(cfg, &self.op.instance_name)?;
        check_not_offline(inst, "cannot reboot it")?;
        let pnode = super::node_by_uuid(cfg, &inst.primary_node)?;
        if pnode.offline {
            return Err(LuError::prereq(
                ErrorKind::State,
                format!(
                    "Can't reboot instance {}: primary node {} is offline",
                    inst.name, pnode.name
                ),
            ));
        }
        self.inst = Some(inst.clone());
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let inst = checked(&self.inst)?;
        let cfg = ctx.store.snapshot();
        let running = live_info(ctx, &cfg, &inst)
            .map_err(|e| {
                LuError::Exec(format!(
                    "Error checking instance {}: {}",
                    inst.name,
                    rpc_msg(&e)
                ))
            })?
            .is_some();
        let kind = self.op.reboot_type;
        if running && matches!(kind, RebootType::Soft | RebootType::Hard) {
            let tgt = target_of(&cfg, &inst.primary_node)?;
            let args = proto::InstanceRebootArgs {
                instance: instance_spec_of(&cfg, &inst.uuid)?,
                reboot_type: kind.as_str().to_string(),
                shutdown_timeout_secs: self.op.shutdown_timeout,
                disks: Vec::new(),
            };
            call(ctx, proto::INSTANCE_REBOOT, &tgt, &args, SLOW_TIMEOUT).map_err(|e| {
                LuError::Exec(format!("Could not reboot instance: {}", rpc_msg(&e)))
            })?;
        } else {
            if running {
                shutdown_instance(ctx, &cfg, &inst, self.op.shutdown_timeout).map_err(|m| {
                    LuError::Exec(format!("Could not shutdown instance for full reboot: {m}"))
                })?;
                for w in shutdown_disks(ctx, &cfg, &inst) {
                    ctx.log(format!("WARNING: {w}"));
                }
            } else {
                ctx.log(format!(
                    "Instance {} was already stopped, starting now",
                    inst.name
                ));
            }
            start_instance(ctx, &inst, false)?;
        }
        set_admin_state(ctx, &inst.uuid, AdminState::Up, "admin")?;
        Ok(Value::Null)
    }
}

impl LogicalUnit for LuInstanceConsole {
    common_phases!(LockMode::Shared);

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        let inst = instance_named(cfg, &self.op.instance_name)?;
        super::node_by_uuid(cfg, &inst.primary_node)?;
        self.inst = Some(inst.clone());
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let inst = checked(&self.inst)?;
        let cfg = ctx.store.snapshot();
        let pnode = super::node_by_uuid(&cfg, &inst.primary_node)?.clone();
        let running = live_info(ctx, &cfg, &inst).map_err(|e| {
            LuError::Exec(format!(
                "Error checking node {}: {}",
                pnode.name,
                rpc_msg(&e)
            ))
        })?;
        if running.is_none() {
            let msg = if inst.admin_state == AdminState::Up {
                format!(
                    "Instance {} is marked to be up, but is not running",
                    inst.name
                )
            } else {
                format!("Instance {} is down", inst.name)
            };
            return Err(LuError::Exec(msg));
        }
        let tgt = target_of(&cfg, &inst.primary_node)?;
        let args = proto::InstanceConsoleArgs {
            instance: instance_spec_of(&cfg, &inst.uuid)?,
            node_name: pnode.name.as_str().to_string(),
            node_address: pnode.primary_ip.clone(),
        };
        let console: proto::ConsoleInfo =
            super::call_typed(ctx, proto::INSTANCE_CONSOLE, &tgt, &args, QUICK_TIMEOUT).map_err(
                |e| {
                    LuError::Exec(format!(
                        "Could not get the console of {}: {}",
                        inst.name,
                        rpc_msg(&e)
                    ))
                },
            )?;
        Ok(console_dict(&console))
    }
}

/// Ganeti's `InstanceConsole.ToDict()`: only the keys that are set.
pub fn console_dict(c: &proto::ConsoleInfo) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("instance".into(), Value::from(c.instance.clone()));
    m.insert("kind".into(), Value::from(c.kind.clone()));
    if let Some(msg) = &c.message {
        m.insert("message".into(), Value::from(msg.clone()));
    }
    if let Some(h) = &c.host {
        m.insert("host".into(), Value::from(h.clone()));
    }
    if let Some(p) = c.port {
        m.insert("port".into(), Value::from(p));
    }
    if let Some(u) = &c.user {
        m.insert("user".into(), Value::from(u.clone()));
    }
    if !c.command.is_empty() {
        m.insert("command".into(), Value::from(c.command.clone()));
    }
    Value::Object(m)
}
