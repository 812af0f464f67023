//! Activate, deactivate and grow an instance's disks (Ganeti's
//! `LUInstanceActivateDisks`, `LUInstanceDeactivateDisks`,
//! `LUInstanceGrowDisk`).

use super::{
    assemble_disks, call, check_not_offline, expand_instance_name, instance_locks, instance_named,
    live_info, rpc_msg, shutdown_disks, spec, target_of, SLOW_TIMEOUT,
};
use crate::cmdlib::{LockNeed, LogicalUnit, LuContext, LuError};
use crate::config::objects::{ConfigData, Instance};
use crate::error::ErrorKind;
use crate::locking::LockMode;
use crate::opcodes::{OpInstanceActivateDisks, OpInstanceDeactivateDisks, OpInstanceGrowDisk};
use crate::rpc::proto::{self, BlockdevGrowArgs};
use serde_json::{json, Value};

fn checked(inst: &Option<Instance>) -> Result<Instance, LuError> {
    inst.clone()
        .ok_or_else(|| LuError::Exec("instance LU ran without its prerequisites".into()))
}

/// `OP_INSTANCE_ACTIVATE_DISKS` (`gnt-instance activate-disks`).
pub struct LuInstanceActivateDisks {
    op: OpInstanceActivateDisks,
    inst: Option<Instance>,
}

impl LuInstanceActivateDisks {
    /// The LU for `op`.
    pub fn new(op: OpInstanceActivateDisks) -> Self {
        LuInstanceActivateDisks { op, inst: None }
    }
}

impl LogicalUnit for LuInstanceActivateDisks {
    fn expand_names(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        self.op.instance_name = expand_instance_name(cfg, &self.op.instance_name)?;
        Ok(())
    }

    fn declare_locks(&self, cfg: &ConfigData) -> Vec<LockNeed> {
        instance_locks(cfg, &self.op.instance_name, LockMode::Exclusive)
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        let inst = instance_named(cfg, &self.op.instance_name)?;
        check_not_offline(inst, "cannot activate its disks")?;
        self.inst = Some(inst.clone());
        Ok(())
    }

    /// Returns Ganeti's `[[node, iv_name, device path], …]` (primary's paths).
    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let inst = checked(&self.inst)?;
        let cfg = ctx.store.snapshot();
        super::update_instance(ctx, &inst.uuid, |i| {
            i.disks_active = true;
            Ok(())
        })?;
        let devices = match assemble_disks(ctx, &cfg, &inst) {
            Ok(d) => d,
            Err(e) => {
                for w in shutdown_disks(ctx, &cfg, &inst) {
                    ctx.log(format!("WARNING: {w}"));
                }
                let _ = super::update_instance(ctx, &inst.uuid, |i| {
                    i.disks_active = false;
                    Ok(())
                });
                return Err(LuError::Exec(format!("Cannot activate block devices: {e}")));
            }
        };
        let pnode = target_of(&cfg, &inst.primary_node)?.name;
        let specs = spec::disk_specs(&cfg, &inst)?;
        Ok(json!(specs
            .iter()
            .zip(devices)
            .map(|(s, d)| json!([pnode, s.iv_name, d.path]))
            .collect::<Vec<_>>()))
    }
}

/// `OP_INSTANCE_DEACTIVATE_DISKS` (`gnt-instance deactivate-disks`).
pub struct LuInstanceDeactivateDisks {
    op: OpInstanceDeactivateDisks,
    inst: Option<Instance>,
}

impl LuInstanceDeactivateDisks {
    /// The LU for `op`.
    pub fn new(op: OpInstanceDeactivateDisks) -> Self {
        LuInstanceDeactivateDisks { op, inst: None }
    }
}

impl LogicalUnit for LuInstanceDeactivateDisks {
    fn expand_names(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        self.op.instance_name = expand_instance_name(cfg, &self.op.instance_name)?;
        Ok(())
    }

    fn declare_locks(&self, cfg: &ConfigData) -> Vec<LockNeed> {
        instance_locks(cfg, &self.op.instance_name, LockMode::Exclusive)
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        self.inst = Some(instance_named(cfg, &self.op.instance_name)?.clone());
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let inst = checked(&self.inst)?;
        let cfg = ctx.store.snapshot();
        if !self.op.force {
            // Ganeti's `_SafeShutdownInstanceDisks`: not under a running instance.
            let running = live_info(ctx, &cfg, &inst).map_err(|e| {
                LuError::Exec(format!(
                    "Can't contact node {}: {}",
                    inst.primary_node,
                    rpc_msg(&e)
                ))
            })?;
            if running.is_some() {
                return Err(LuError::Exec(format!(
                    "Instance {} is running, can't shutdown block devices.",
                    inst.name
                )));
            }
        }
        let errors = shutdown_disks(ctx, &cfg, &inst);
        super::update_instance(ctx, &inst.uuid, |i| {
            i.disks_active = false;
            Ok(())
        })?;
        if !errors.is_empty() && !self.op.force {
            return Err(LuError::Exec(errors.join("; ")));
        }
        for w in errors {
            ctx.log(format!("WARNING: {w}"));
        }
        Ok(Value::Null)
    }
}

/// `OP_INSTANCE_GROW_DISK` (`gnt-instance grow-disk`).
pub struct LuInstanceGrowDisk {
    op: OpInstanceGrowDisk,
    inst: Option<Instance>,
    delta_mib: u64,
}

impl LuInstanceGrowDisk {
    /// The LU for `op`.
    pub fn new(op: OpInstanceGrowDisk) -> Self {
        LuInstanceGrowDisk {
            op,
            inst: None,
            delta_mib: 0,
        }
    }
}

impl LogicalUnit for LuInstanceGrowDisk {
    fn expand_names(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        self.op.instance_name = expand_instance_name(cfg, &self.op.instance_name)?;
        Ok(())
    }

    fn declare_locks(&self, cfg: &ConfigData) -> Vec<LockNeed> {
        instance_locks(cfg, &self.op.instance_name, LockMode::Exclusive)
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        let inst = instance_named(cfg, &self.op.instance_name)?;
        let template = super::disk_template(cfg, inst);
        if matches!(template.as_str(), "diskless" | "blockdev") {
            return Err(LuError::prereq(
                ErrorKind::Inval,
                format!("Instance's disk layout '{template}' does not support growing"),
            ));
        }
        let idx = usize::try_from(self.op.disk).unwrap_or(usize::MAX);
        let disk = inst
            .disks
            .get(idx)
            .and_then(|u| cfg.disks.get(u))
            .ok_or_else(|| {
                LuError::prereq(
                    ErrorKind::Inval,
                    format!("Invalid disk index: {}", self.op.disk),
                )
            })?;
        self.delta_mib = if self.op.absolute {
            if self.op.amount < disk.size {
                return Err(LuError::prereq(
                    ErrorKind::Inval,
                    format!(
                        "Requested size ({}) is smaller than current disk size ({})",
                        super::format_size(self.op.amount),
                        super::format_size(disk.size)
                    ),
                ));
            }
            self.op.amount - disk.size
        } else {
            self.op.amount
        };
        self.inst = Some(inst.clone());
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let inst = checked(&self.inst)?;
        let cfg = ctx.store.snapshot();
        let idx = usize::try_from(self.op.disk).unwrap_or(usize::MAX);
        let disks = super::disks_with_nodes(&cfg, &inst)?;
        let (disk, nodes) = disks
            .get(idx)
            .cloned()
            .ok_or_else(|| LuError::Exec(format!("Invalid disk index: {}", self.op.disk)))?;
        if self.delta_mib == 0 {
            ctx.log("Disk is already of the requested size".to_string());
            return Ok(Value::Null);
        }
        // Ganeti's order: a dry run of the backing storage on every node,
        // the real growth of the backing storage on every node, then the
        // device on top (DRBD) on the primary only.
        let primary = inst.primary_node.clone();
        for (dry_run, backing_only) in [(true, true), (false, true), (false, false)] {
            for node in &nodes {
                if !backing_only && *node != primary {
                    continue;
                }
                let tgt = target_of(&cfg, node)?;
                let args = BlockdevGrowArgs {
                    disk: spec::disk_for_node(&cfg, &disk, node),
                    amount_mib: self.delta_mib,
                    dry_run,
                    backing_only,
                };
                if let Err(e) = call(ctx, proto::BLOCKDEV_GROW, &tgt, &args, SLOW_TIMEOUT) {
                    let msg = format!("Grow request failed to node {}: {}", tgt.name, rpc_msg(&e));
                    return Err(if dry_run {
                        LuError::prereq(ErrorKind::Environ, msg)
                    } else {
                        LuError::Exec(msg)
                    });
                }
            }
        }
        let (duuid, delta) = (inst.disks[idx].clone(), self.delta_mib);
        ctx.update_config(move |c| {
            if let Some(d) = c.disks.get_mut(&duuid) {
                d.size += delta;
                d.serial_no += 1;
            }
            Ok(())
        })?;
        ctx.log(format!(
            "Growing disk {} of instance {} by {} done",
            self.op.disk,
            inst.name,
            super::format_size(delta)
        ));
        Ok(Value::Null)
    }
}
