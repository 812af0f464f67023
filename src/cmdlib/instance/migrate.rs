//! Failover and migration of an instance to another node (Ganeti's
//! `cmdlib/instance_migration.py`: `LUInstanceFailover`,
//! `LUInstanceMigrate` and their shared `TLMigrateInstance`).
//!
//! Only templates whose disks are reachable from any node are moved here:
//! `diskless`, `sharedfile`, `blockdev` and `ext` (Ganeti's
//! `DTS_EXT_MIRROR`); the target node must be given, as iallocators are
//! not available. `drbd` (internally mirrored) fails over to its secondary
//! node only (no other target may be named), the nodes swapping roles;
//! its live migration (dual-primary DRBD) is refused as not built yet;
//! `plain` and `file` cannot be failed over or
//! migrated at all (their disks live on one node: use `gnt-instance move`).
//!
//! - failover: stop on the source, shut the disks down there, switch the
//!   primary node in the config, then (if the instance is marked up)
//!   assemble the disks on the target and start it there;
//! - migration: `migration_info` (source) → disks assembled on the target
//!   → `accept_instance` (target) → `instance_migrate` (source) → poll
//!   `migration_status` → `finalize_migration_dst` then
//!   `finalize_migration_src` → the config's primary node switches only
//!   after both finalized. Any failure before that aborts on both sides and
//!   leaves the config as it was;
//! - cleanup (`--cleanup`): asks both nodes where the instance runs and
//!   fixes the config to match.
//!
//! Run by masterd's job workers; every step is a node RPC.

use super::{
    assemble_disks, be_u64, call, call_typed, check_free_memory, disk_template,
    expand_instance_name, instance_locks, instance_named, instance_spec_of, node_by_uuid, rpc_msg,
    shutdown_disks, spec, target_of, update_instance, QUICK_TIMEOUT, SLOW_TIMEOUT,
};
use crate::cmdlib::node::expand_node_name;
use crate::cmdlib::{LockNeed, LogicalUnit, LuContext, LuError};
use crate::config::objects::{AdminState, ConfigData, Instance, Uuid};
use crate::error::ErrorKind;
use crate::locking::LockMode;
use crate::opcodes::params::MigrationMode;
use crate::opcodes::{OpInstanceFailover, OpInstanceMigrate};
use crate::rpc::proto::{self, AssembledDisk, MigrationArgs, MigrationStatus};
use crate::rpc::RpcError;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Templates whose disks any node can reach (Ganeti's `DTS_EXT_MIRROR`).
const EXT_MIRRORED: &[&str] = &[
    "diskless",
    "sharedfile",
    "blockdev",
    "ext",
    "rbd",
    "gluster",
];

/// Pause between two `migration_status` polls (Ganeti's
/// `_MIGRATION_POLL_INTERVAL`).
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How often the transfer progress is reported (Ganeti's
/// `_MIGRATION_FEEDBACK_INTERVAL`).
const FEEDBACK_INTERVAL: Duration = Duration::from_secs(10);

/// How long a migration's fallback failover waits for the instance to
/// stop (Ganeti's `DEFAULT_SHUTDOWN_TIMEOUT`).
const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 120;

/// What the operation will do, decided by the prerequisite checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Stop on the source, start on the target.
    Failover,
    /// Move the running instance.
    Migrate,
    /// Repair the config after a failed migration.
    Cleanup,
}

/// The inputs shared by the failover and migrate opcodes.
#[derive(Debug, Clone)]
struct Request {
    instance_name: String,
    target_node: Option<String>,
    iallocator: Option<String>,
    cleanup: bool,
    /// `OP_INSTANCE_FAILOVER` (true) or `OP_INSTANCE_MIGRATE`.
    failover: bool,
    /// Migrate only: fall back to failover when migration is impossible.
    fallback: bool,
    ignore_consistency: bool,
    shutdown_timeout_secs: u64,
    allow_runtime_changes: bool,
    mode: Option<MigrationMode>,
    live: Option<bool>,
}

/// The checked plan, for `exec`.
#[derive(Debug, Clone)]
struct Plan {
    inst: Instance,
    source: Uuid,
    target: Uuid,
    action: Action,
    live: bool,
    /// Lines to report once execution starts (the prerequisite phase has no
    /// job log).
    notes: Vec<String>,
}

/// The shared tasklet (Ganeti's `TLMigrateInstance`).
struct Migrater {
    req: Request,
    /// The primary node seen when the locks were declared.
    locked_primary: Option<Uuid>,
    plan: Option<Plan>,
}

fn inval(msg: impl Into<String>) -> LuError {
    LuError::prereq(ErrorKind::Inval, msg)
}

fn state(msg: impl Into<String>) -> LuError {
    LuError::prereq(ErrorKind::State, msg)
}

impl Migrater {
    fn new(req: Request) -> Self {
        Migrater {
            req,
            locked_primary: None,
            plan: None,
        }
    }

    fn expand_names(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        self.req.instance_name = expand_instance_name(cfg, &self.req.instance_name)?;
        if let Some(t) = &self.req.target_node {
            self.req.target_node = Some(expand_node_name(cfg, t)?);
        }
        self.locked_primary = cfg
            .instance_by_name(&self.req.instance_name)
            .map(|(_, i)| i.primary_node.clone());
        Ok(())
    }

    /// The instance, its nodes and the target node, all exclusive.
    fn declare_locks(&self, cfg: &ConfigData) -> Vec<LockNeed> {
        let mut needs = instance_locks(cfg, &self.req.instance_name, LockMode::Exclusive);
        if let Some(t) = &self.req.target_node {
            super::add_node_locks(&mut needs, t);
        }
        needs
    }

    /// The target node for an externally mirrored template (Ganeti's
    /// `CheckIAllocatorOrNode`, without iallocators).
    fn target_node<'a>(
        &self,
        cfg: &'a ConfigData,
    ) -> Result<&'a crate::config::objects::Node, LuError> {
        let verb = if self.req.failover {
            "failover"
        } else {
            "migration"
        };
        match (&self.req.target_node, &self.req.iallocator) {
            (Some(_), Some(_)) => Err(inval("Do not specify both, iallocator and node")),
            (None, Some(ia)) => Err(inval(format!(
                "Iallocator '{ia}' is not available in ganeti-rs yet; give the {verb} target with -n/--target-node"
            ))),
            (None, None) => {
                let default = &cfg.cluster.default_iallocator;
                Err(inval(if default.is_empty() {
                    format!("No iallocator or node given and no cluster-wide default iallocator found; give the {verb} target with -n/--target-node (iallocators are not available in ganeti-rs yet)")
                } else {
                    format!("No target node given and the cluster-wide default iallocator '{default}' is not available in ganeti-rs yet; give the {verb} target with -n/--target-node")
                }))
            }
            (Some(name), None) => cfg.node_by_name(name).map(|(_, n)| n).ok_or_else(|| {
                LuError::prereq(ErrorKind::NoEnt, format!("Node '{name}' not known"))
            }),
        }
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        let inst = instance_named(cfg, &self.req.instance_name)?.clone();
        if self.locked_primary.as_ref() != Some(&inst.primary_node) {
            return Err(LuError::prereq(
                ErrorKind::TempNoRes,
                format!(
                    "The primary node of instance {} changed while waiting for its locks; please retry",
                    inst.name
                ),
            ));
        }
        let mut notes = Vec::new();
        if self.req.failover && self.req.cleanup {
            return Err(inval(
                "Cleanup is only done for migrations; use 'gnt-instance migrate --cleanup'",
            ));
        }
        let mut failover = self.req.failover;
        if !self.req.cleanup && inst.admin_state != AdminState::Up && !failover && self.req.fallback
        {
            notes.push(
                "Instance is marked down or offline, fallback allowed, switching to failover"
                    .to_string(),
            );
            failover = true;
        }
        let text = if failover { "failovers" } else { "migrations" };
        let mut templates: Vec<String> = inst
            .disks
            .iter()
            .filter_map(|u| cfg.disks.get(u))
            .map(|d| d.dev_type.clone())
            .collect();
        if templates.is_empty() {
            templates.push(disk_template(cfg, &inst));
        }
        templates.sort();
        templates.dedup();
        let drbd = templates.iter().any(|t| t == "drbd");
        if drbd && !failover {
            return Err(inval(format!(
                "Instance {} uses drbd disks; live migration of drbd instances is not supported yet in ganeti-rs, use 'gnt-instance failover'",
                inst.name
            )));
        }
        let bad: Vec<&str> = templates
            .iter()
            .map(String::as_str)
            .filter(|t| !EXT_MIRRORED.contains(t) && *t != "drbd")
            .collect();
        if !bad.is_empty() {
            return Err(state(format!(
                "Instance's disk layout '{}' does not allow {text}; use 'gnt-instance move' to copy its disks to another node",
                bad.join(", ")
            )));
        }
        let target = if drbd {
            drbd_target(cfg, &inst, &self.req, &templates)?
        } else {
            self.target_node(cfg)?
        };
        let pnode = node_by_uuid(cfg, &inst.primary_node)?;
        if target.uuid == inst.primary_node {
            return Err(state(format!(
                "Cannot migrate instance {} to its primary ({})",
                inst.name, pnode.name
            )));
        }
        if target.offline {
            return Err(state(format!("Can't use offline node {}", target.name)));
        }
        if !self.req.cleanup && target.drained {
            return Err(state(format!("Can't use drained node {}", target.name)));
        }
        let be = spec::beparams(cfg, &inst);
        if !self.req.cleanup
            && !failover
            && be.get("always_failover").and_then(Value::as_bool) == Some(true)
        {
            notes.push("Instance configured to always failover; fallback to failover".into());
            failover = true;
        }
        let live = if failover {
            false
        } else {
            if self.req.live.is_some() && self.req.mode.is_some() {
                return Err(inval(
                    "Only one of the 'live' and 'mode' parameters are accepted",
                ));
            }
            match (self.req.live, self.req.mode) {
                (Some(l), _) => l,
                (None, Some(m)) => m == MigrationMode::Live,
                (None, None) => {
                    spec::hvparams(cfg, &inst)
                        .get("migration_mode")
                        .and_then(Value::as_str)
                        .unwrap_or("live")
                        == "live"
                }
            }
        };
        let action = if failover {
            Action::Failover
        } else if self.req.cleanup {
            Action::Cleanup
        } else {
            Action::Migrate
        };
        self.plan = Some(Plan {
            source: inst.primary_node.clone(),
            target: target.uuid.clone(),
            inst,
            action,
            live,
            notes,
        });
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let mut plan = self
            .plan
            .clone()
            .ok_or_else(|| LuError::Exec("migration ran without its prerequisites".into()))?;
        for n in std::mem::take(&mut plan.notes) {
            ctx.log(n);
        }
        let cfg = ctx.store.snapshot();
        let mut current_mem = None;
        let mut target_free = 0;
        if plan.action == Action::Migrate {
            // Ganeti checks `instance_migratable` here; a running instance
            // is what migration needs.
            match super::live_info_on(ctx, &cfg, &plan.inst, &plan.source) {
                Ok(Some(i)) => current_mem = Some(i.memory_mib),
                Ok(None) if self.req.fallback => {
                    ctx.log("Can't migrate, instance offline, fallback to failover");
                    plan.action = Action::Failover;
                    plan.live = false;
                }
                Ok(None) => {
                    return Err(state(format!(
                        "Can't migrate, please use failover: Instance {} is not running",
                        plan.inst.name
                    )))
                }
                Err(e) => {
                    return Err(LuError::prereq(
                        ErrorKind::Environ,
                        format!(
                            "Error checking instance on node {}: {}",
                            target_of(&cfg, &plan.source)?.name,
                            rpc_msg(&e)
                        ),
                    ))
                }
            }
        }
        let be = spec::beparams(&cfg, &plan.inst);
        if plan.action != Action::Cleanup
            && (plan.action == Action::Migrate || plan.inst.admin_state == AdminState::Up)
        {
            target_free = check_free_memory(
                ctx,
                &cfg,
                &plan.target,
                &format!("migrating instance {}", plan.inst.name),
                be_u64(&be, "minmem"),
                &plan.inst.hypervisor,
            )?;
        } else {
            ctx.log("Not checking memory on the secondary node as instance will not be started");
        }
        match plan.action {
            Action::Failover => {
                ctx.log(format!("Failover instance {}", plan.inst.name));
                self.failover(ctx, &plan)?;
            }
            Action::Migrate => {
                ctx.log(format!("Migrating instance {}", plan.inst.name));
                self.migrate(ctx, &plan, current_mem.unwrap_or(0), target_free)?;
            }
            Action::Cleanup => {
                ctx.log(format!("Migrating instance {}", plan.inst.name));
                cleanup(ctx, &plan)?;
            }
        }
        Ok(Value::Null)
    }

    /// Ganeti's `_ExecFailover`.
    fn failover(&self, ctx: &mut LuContext<'_>, plan: &Plan) -> Result<(), LuError> {
        let cfg = ctx.store.snapshot();
        let inst = &plan.inst;
        let source = target_of(&cfg, &plan.source)?;
        let target = target_of(&cfg, &plan.target)?;
        if !inst.disks_active {
            ctx.log("* not checking disk consistency as instance is not running");
        }
        ctx.log("* shutting down instance on source node");
        let args = proto::InstanceShutdownArgs {
            instance: instance_spec_of(&cfg, &inst.uuid)?,
            timeout_secs: self.req.shutdown_timeout_secs,
        };
        if let Err(e) = call(ctx, proto::INSTANCE_SHUTDOWN, &source, &args, SLOW_TIMEOUT) {
            if self.req.ignore_consistency || source.offline {
                ctx.log(format!(
                    "WARNING: Could not shutdown instance {} on node {}, proceeding anyway; please make sure node {} is down; error details: {}",
                    inst.name, source.name, source.name, rpc_msg(&e)
                ));
            } else {
                return Err(LuError::Exec(format!(
                    "Could not shutdown instance {} on node {}: {}",
                    inst.name,
                    source.name,
                    rpc_msg(&e)
                )));
            }
        }
        ctx.log("* deactivating the instance's disks on source node");
        // Errors on the old primary are ignored (Ganeti's
        // `ShutdownInstanceDisks(ignore_primary=True)`): it may be dead.
        for w in shutdown_disks(ctx, &cfg, inst) {
            ctx.log(format!("WARNING: {w}"));
        }
        let new_primary = plan.target.clone();
        update_instance(ctx, &inst.uuid, move |i| {
            i.primary_node = new_primary;
            i.disks_active = false;
            Ok(())
        })?;
        if inst.admin_state != AdminState::Up {
            return Ok(());
        }
        super::start_on_new_primary(ctx, inst.name.as_str(), &target, true)
    }

    /// Ganeti's `_ExecMigration`.
    fn migrate(
        &self,
        ctx: &mut LuContext<'_>,
        plan: &Plan,
        current_mem: u64,
        target_free: u64,
    ) -> Result<(), LuError> {
        let cfg = ctx.store.snapshot();
        let inst = &plan.inst;
        let source = target_of(&cfg, &plan.source)?;
        let target = target_of(&cfg, &plan.target)?;
        let target_address = node_by_uuid(&cfg, &plan.target)?.secondary_ip.clone();
        let spec = instance_spec_of(&cfg, &inst.uuid)?;
        if current_mem > target_free {
            if !self.req.allow_runtime_changes {
                return Err(LuError::Exec(format!(
                    "Memory ballooning not allowed and not enough free memory to fit instance {} on target node {} (have {target_free}MB, need {current_mem}MB)",
                    inst.name, target.name
                )));
            }
            ctx.log(format!("* setting instance memory to {target_free}"));
            let args = proto::BalloonArgs {
                instance: spec.clone(),
                memory_mib: target_free,
            };
            call(
                ctx,
                proto::INSTANCE_BALLOON_MEMORY,
                &source,
                &args,
                QUICK_TIMEOUT,
            )
            .map_err(|e| {
                LuError::Exec(format!(
                    "Cannot modify instance runtime memory: {}",
                    rpc_msg(&e)
                ))
            })?;
        }
        let mut args = MigrationArgs {
            instance: spec,
            info: Value::Null,
            target_address,
            live: plan.live,
            success: false,
            disks: Vec::new(),
        };
        let info =
            call(ctx, proto::MIGRATION_INFO, &source, &args, QUICK_TIMEOUT).map_err(|e| {
                LuError::Exec(format!(
                    "Failed fetching source migration information from {}: {}",
                    source.name,
                    rpc_msg(&e)
                ))
            })?;
        args.info = info;
        // The disks must be usable on the target before it accepts.
        let on_target = with_primary(inst, &plan.target);
        let disks: Vec<AssembledDisk> = match assemble_disks(ctx, &cfg, &on_target) {
            Ok(d) => d,
            Err(e) => {
                ctx.log("Pre-migration failed, aborting");
                abort(ctx, plan, &args);
                revert_disks(ctx, &cfg, plan);
                return Err(LuError::Exec(format!(
                    "Could not pre-migrate instance {}: {e}",
                    inst.name
                )));
            }
        };
        args.disks = disks;
        ctx.log(format!(
            "* preparing {} to accept the instance",
            target.name
        ));
        if let Err(e) = call(ctx, proto::ACCEPT_INSTANCE, &target, &args, SLOW_TIMEOUT) {
            ctx.log("Pre-migration failed, aborting");
            abort(ctx, plan, &args);
            revert_disks(ctx, &cfg, plan);
            return Err(LuError::Exec(format!(
                "Could not pre-migrate instance {}: {}",
                inst.name,
                rpc_msg(&e)
            )));
        }
        ctx.log(format!("* migrating instance to {}", target.name));
        let mut source_args = args.clone();
        source_args.disks = Vec::new();
        if let Err(e) = call(
            ctx,
            proto::INSTANCE_MIGRATE,
            &source,
            &source_args,
            SLOW_TIMEOUT,
        ) {
            ctx.log("Migration failed, aborting");
            abort(ctx, plan, &args);
            revert_disks(ctx, &cfg, plan);
            return Err(LuError::Exec(format!(
                "Could not migrate instance {}: {}",
                inst.name,
                rpc_msg(&e)
            )));
        }
        ctx.log("* starting memory transfer");
        let mut last_feedback = Instant::now();
        loop {
            let status: Result<MigrationStatus, RpcError> = call_typed(
                ctx,
                proto::MIGRATION_STATUS,
                &source,
                &source_args,
                QUICK_TIMEOUT,
            );
            let s = match status {
                Ok(s) if !matches!(s.status.as_str(), "failed" | "cancelled") => s,
                failed => {
                    let msg = match failed {
                        Err(e) => rpc_msg(&e),
                        Ok(s) => s
                            .message
                            .unwrap_or_else(|| "hypervisor returned failure".into()),
                    };
                    ctx.log("Migration failed, aborting");
                    abort(ctx, plan, &args);
                    revert_disks(ctx, &cfg, plan);
                    return Err(LuError::Exec(format!(
                        "Could not migrate instance {}: {msg}",
                        inst.name
                    )));
                }
            };
            if s.status == "completed" {
                ctx.log("* memory transfer complete");
                break;
            }
            if last_feedback.elapsed() >= FEEDBACK_INTERVAL && s.total_bytes > 0 {
                // Display only.
                #[allow(clippy::cast_precision_loss)]
                let pct = 100.0 * s.transferred_bytes as f64 / s.total_bytes as f64;
                ctx.log(format!("* memory transfer progress: {pct:.2} %"));
                last_feedback = Instant::now();
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        // Both finalize steps are attempted; the config keeps the old
        // primary unless both succeeded, so a manual cleanup knows where to
        // look.
        let mut dst_args = args.clone();
        dst_args.success = true;
        let mut src_args = source_args;
        src_args.success = true;
        let mut errors = Vec::new();
        if let Err(e) = call(
            ctx,
            proto::FINALIZE_MIGRATION_DST,
            &target,
            &dst_args,
            SLOW_TIMEOUT,
        ) {
            errors.push(format!("{}: {}", target.name, rpc_msg(&e)));
        }
        if let Err(e) = call(
            ctx,
            proto::FINALIZE_MIGRATION_SRC,
            &source,
            &src_args,
            SLOW_TIMEOUT,
        ) {
            errors.push(format!("{}: {}", source.name, rpc_msg(&e)));
        }
        if !errors.is_empty() {
            return Err(LuError::Exec(format!(
                "Could not finalize instance migration: {}",
                errors.join(" ")
            )));
        }
        let new_primary = plan.target.clone();
        update_instance(ctx, &inst.uuid, move |i| {
            i.primary_node = new_primary;
            Ok(())
        })?;
        // The source no longer needs the disks.
        for w in shutdown_disks(ctx, &cfg, inst) {
            ctx.log(format!("WARNING: {w}"));
        }
        ctx.log("* done");
        Ok(())
    }
}

/// `inst` as if `node` were its primary (for calls on the target).
/// The failover target of a DRBD instance: its secondary, the other side
/// of the mirror (Ganeti's `TLMigrateInstance.CheckPrereq` for
/// internally mirrored templates); no other node may be asked for.
fn drbd_target<'a>(
    cfg: &'a ConfigData,
    inst: &Instance,
    req: &Request,
    templates: &[String],
) -> Result<&'a crate::config::objects::Node, LuError> {
    let secondary = super::secondary_nodes(cfg, inst)
        .into_iter()
        .next()
        .ok_or_else(|| {
            LuError::Exec(format!(
                "No secondary node but using {} disk types",
                templates.join(", ")
            ))
        })?;
    let snode = node_by_uuid(cfg, &secondary)?;
    let asked_other = req
        .target_node
        .as_deref()
        .is_some_and(|t| t != snode.name.as_str());
    if req.iallocator.is_some() || asked_other {
        let text = if req.failover {
            "failed over"
        } else {
            "migrated"
        };
        return Err(inval(format!(
            "Instances with disk types {} cannot be {text} to arbitrary nodes (neither an iallocator nor a target node can be passed)",
            templates.join(", ")
        )));
    }
    Ok(snode)
}

fn with_primary(inst: &Instance, node: &Uuid) -> Instance {
    let mut moved = inst.clone();
    moved.primary_node = node.clone();
    moved
}

/// Ganeti's `_AbortMigration`: both finalize steps with failure; errors
/// are logged, the caller raises its own.
fn abort(ctx: &mut LuContext<'_>, plan: &Plan, args: &MigrationArgs) -> Vec<String> {
    let cfg = ctx.store.snapshot();
    let mut errors = Vec::new();
    let mut a = args.clone();
    a.success = false;
    for (proc_, node, side) in [
        (proto::FINALIZE_MIGRATION_DST, &plan.target, "target"),
        (proto::FINALIZE_MIGRATION_SRC, &plan.source, "source"),
    ] {
        let Ok(tgt) = target_of(&cfg, node) else {
            continue;
        };
        if proc_ == proto::FINALIZE_MIGRATION_SRC {
            a.disks = Vec::new();
        }
        if let Err(e) = call(ctx, proc_, &tgt, &a, SLOW_TIMEOUT) {
            let msg = format!(
                "Aborting migration failed on {side} node {}: {}",
                tgt.name,
                rpc_msg(&e)
            );
            log::error!("{msg}");
            ctx.log(format!("WARNING: {msg}"));
            errors.push(msg);
        }
    }
    errors
}

/// Ganeti's `_RevertDiskStatus` for shared storage: the target lets go of
/// the disks again.
fn revert_disks(ctx: &mut LuContext<'_>, cfg: &ConfigData, plan: &Plan) {
    let on_target = with_primary(&plan.inst, &plan.target);
    for w in shutdown_disks(ctx, cfg, &on_target) {
        ctx.log(format!("WARNING: {w}"));
    }
}

/// Ganeti's `_ExecCleanup`: find where the instance runs and make the
/// config say so.
fn cleanup(ctx: &mut LuContext<'_>, plan: &Plan) -> Result<(), LuError> {
    let cfg = ctx.store.snapshot();
    let inst = &plan.inst;
    let source = target_of(&cfg, &plan.source)?;
    let target = target_of(&cfg, &plan.target)?;
    let locate = |ctx: &mut LuContext<'_>| -> Result<(bool, bool), LuError> {
        ctx.log(
            "* checking where the instance actually runs (if this hangs, the hypervisor might be in a bad state)",
        );
        let mut found = Vec::new();
        for (node, tgt) in [(&plan.source, &source), (&plan.target, &target)] {
            let running = super::live_info_on(ctx, &cfg, inst, node).map_err(|e| {
                LuError::Exec(format!("Can't contact node {}: {}", tgt.name, rpc_msg(&e)))
            })?;
            if running.is_some() {
                found.push(tgt.name.clone());
            }
        }
        ctx.log(format!("* instance running on: {}", found.join(",")));
        Ok((found.contains(&source.name), found.contains(&target.name)))
    };
    let (mut on_source, mut on_target) = locate(ctx)?;
    if on_source && on_target {
        ctx.log("Trying to cleanup after failed migration");
        let mut args = MigrationArgs {
            instance: instance_spec_of(&cfg, &inst.uuid)?,
            info: Value::Null,
            target_address: node_by_uuid(&cfg, &plan.target)?.secondary_ip.clone(),
            live: plan.live,
            success: false,
            disks: Vec::new(),
        };
        args.info =
            call(ctx, proto::MIGRATION_INFO, &source, &args, QUICK_TIMEOUT).map_err(|e| {
                LuError::Exec(format!(
                    "Failed fetching source migration information from {}: {}",
                    source.name,
                    rpc_msg(&e)
                ))
            })?;
        let errors = abort(ctx, plan, &args);
        if !errors.is_empty() {
            return Err(LuError::Exec(format!(
                "Instance migration cleanup failed: {}",
                errors.join(",")
            )));
        }
        (on_source, on_target) = locate(ctx)?;
    }
    if on_source && on_target {
        return Err(LuError::Exec(
            "Instance seems to be running on two nodes, or the hypervisor is confused; you will have to ensure manually that it runs only on one and restart this operation".into(),
        ));
    }
    if !on_source && !on_target {
        return Err(LuError::Exec(
            "Instance does not seem to be running at all; in this case it's safer to repair by running 'gnt-instance stop' to ensure disk shutdown, and then restarting it".into(),
        ));
    }
    let demoted = if on_target {
        ctx.log(format!(
            "* instance running on secondary node ({}), updating config",
            target.name
        ));
        let new_primary = plan.target.clone();
        update_instance(ctx, &inst.uuid, move |i| {
            i.primary_node = new_primary;
            Ok(())
        })?;
        plan.source.clone()
    } else {
        ctx.log(format!(
            "* instance confirmed to be running on its primary node ({})",
            source.name
        ));
        plan.target.clone()
    };
    // The node that does not run it lets go of the disks.
    for w in shutdown_disks(ctx, &cfg, &with_primary(inst, &demoted)) {
        ctx.log(format!("WARNING: {w}"));
    }
    ctx.log("* done");
    Ok(())
}

/// `OP_INSTANCE_FAILOVER` (`gnt-instance failover`).
pub struct LuInstanceFailover {
    migrater: Migrater,
}

impl LuInstanceFailover {
    /// The LU for `op`.
    pub fn new(op: OpInstanceFailover) -> Self {
        LuInstanceFailover {
            migrater: Migrater::new(Request {
                instance_name: op.instance_name,
                target_node: op.target_node,
                iallocator: op.iallocator,
                cleanup: op.cleanup,
                failover: true,
                fallback: false,
                ignore_consistency: op.ignore_consistency,
                shutdown_timeout_secs: op.shutdown_timeout,
                allow_runtime_changes: true,
                mode: None,
                live: None,
            }),
        }
    }
}

/// `OP_INSTANCE_MIGRATE` (`gnt-instance migrate`).
pub struct LuInstanceMigrate {
    migrater: Migrater,
}

impl LuInstanceMigrate {
    /// The LU for `op`.
    pub fn new(op: OpInstanceMigrate) -> Self {
        LuInstanceMigrate {
            migrater: Migrater::new(Request {
                instance_name: op.instance_name,
                target_node: op.target_node,
                iallocator: op.iallocator,
                cleanup: op.cleanup,
                failover: false,
                fallback: op.allow_failover,
                ignore_consistency: false,
                shutdown_timeout_secs: DEFAULT_SHUTDOWN_TIMEOUT_SECS,
                allow_runtime_changes: op.allow_runtime_changes,
                mode: op.mode,
                live: op.live,
            }),
        }
    }
}

macro_rules! migrater_lu {
    ($lu:ty) => {
        impl LogicalUnit for $lu {
            fn expand_names(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
                self.migrater.expand_names(cfg)
            }

            fn declare_locks(&self, cfg: &ConfigData) -> Vec<LockNeed> {
                self.migrater.declare_locks(cfg)
            }

            fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
                self.migrater.check_prereq(cfg)
            }

            fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
                self.migrater.exec(ctx)
            }
        }
    };
}

migrater_lu!(LuInstanceFailover);
migrater_lu!(LuInstanceMigrate);

#[cfg(test)]
mod tests {
    use crate::cmdlib::fake_rpc::{exec_err, prereq, TestCluster};
    use crate::cmdlib::OpOutcome;
    use crate::config::objects::{AdminState, LogicalId};
    use crate::error::ErrorKind;
    use crate::opcodes::params::MigrationMode;
    use crate::opcodes::{OpInstanceFailover, OpInstanceMigrate};
    use crate::rpc::proto;
    use serde_json::{json, Value};

    const INST: &str = "inst1.example.com";
    const N1: &str = "node1.example.com";
    const N2: &str = "node2.example.com";

    /// Three nodes; inst1 on node1 with one disk of `template`, running.
    fn cluster(tag: &str, template: &str) -> TestCluster {
        let mut cfg = crate::config::test_support::generated(3, 1);
        cfg.cluster.enabled_disk_templates.push(template.into());
        let inst = cfg.instances.values_mut().next().unwrap();
        if template == "diskless" {
            let d = inst.disks.remove(0);
            cfg.disks.remove(&d);
        } else {
            let disk = cfg.disks.get_mut(&inst.disks[0]).unwrap();
            disk.dev_type = template.into();
            if template == "drbd" {
                let node_a = inst.primary_node.clone();
                let node_b = crate::config::test_support::uuid_for(3, 2);
                disk.logical_id = LogicalId::Drbd {
                    node_a,
                    node_b,
                    port: 11000,
                    minor_a: 0,
                    minor_b: 0,
                    secret: "s".into(),
                };
            }
            if template == "sharedfile" {
                disk.logical_id =
                    LogicalId::Pair("loop".into(), "/srv/ganeti/shared/inst1/disk0".into());
                disk.nodes.clear();
            }
        }
        let c = TestCluster::with_config(tag, cfg);
        for n in [N1, N2, "node3.example.com"] {
            c.rpc.answer_fake_host(n, 2048);
            c.rpc
                .answer_assembled(n, "d", "/srv/ganeti/shared/inst1/disk0");
            c.rpc.answer(
                proto::MIGRATION_STATUS,
                n,
                Ok(json!(proto::MigrationStatus {
                    status: "completed".into(),
                    transferred_bytes: 1,
                    total_bytes: 1,
                    message: None,
                })),
            );
            c.rpc
                .answer(proto::MIGRATION_INFO, n, Ok(json!({"memory": 512})));
        }
        running_on(&c, N1);
        c
    }

    fn running_on(c: &TestCluster, node: &str) {
        c.rpc.answer(
            proto::INSTANCE_INFO,
            node,
            Ok(json!(proto::HvInstanceInfo {
                name: INST.into(),
                state: "running".into(),
                memory_mib: 512,
                vcpus: 1,
                cpu_time_secs: None,
            })),
        );
    }

    fn primary(c: &TestCluster) -> String {
        let cfg = c.config();
        let (_, i) = cfg.instance_by_name(INST).unwrap();
        cfg.nodes[&i.primary_node].name.as_str().to_string()
    }

    fn steps(c: &TestCluster) -> Vec<(String, String)> {
        c.rpc
            .calls()
            .into_iter()
            .filter(|x| proto::INSTANCE_PROCEDURES.contains(&x.procedure.as_str()))
            .map(|x| (x.procedure, x.node.replace(".example.com", "")))
            .collect()
    }

    fn s(p: &str, n: &str) -> (String, String) {
        (p.to_string(), n.to_string())
    }

    fn failover_op(target: Option<&str>) -> OpInstanceFailover {
        OpInstanceFailover {
            instance_name: "inst1".into(),
            target_node: target.map(str::to_string),
            ..Default::default()
        }
    }

    fn migrate_op(target: Option<&str>) -> OpInstanceMigrate {
        OpInstanceMigrate {
            instance_name: "inst1".into(),
            target_node: target.map(str::to_string),
            allow_runtime_changes: true,
            ..Default::default()
        }
    }

    #[test]
    fn failover_stops_switches_and_starts_on_the_target() {
        let c = cluster("fo-ok", "sharedfile");
        let (out, log) = c.run(failover_op(Some("node2")));
        assert_eq!(out, OpOutcome::Success(Value::Null), "{log:?}");
        assert_eq!(
            steps(&c),
            vec![
                s(proto::NODE_HV_INFO, "node2"),
                s(proto::INSTANCE_SHUTDOWN, "node1"),
                s(proto::BLOCKDEV_SHUTDOWN, "node1"),
                s(proto::BLOCKDEV_ASSEMBLE, "node2"),
                s(proto::INSTANCE_START, "node2"),
            ]
        );
        assert_eq!(primary(&c), N2);
        let cfg = c.config();
        let (_, i) = cfg.instance_by_name(INST).unwrap();
        assert!(i.disks_active);
        assert_eq!(i.admin_state, AdminState::Up);
        let start = c.rpc.calls_of(proto::INSTANCE_START);
        assert_eq!(
            start[0].1["disks"][0]["path"],
            "/srv/ganeti/shared/inst1/disk0"
        );
        assert!(log
            .iter()
            .any(|l| l == "* shutting down instance on source node"));
    }

    #[test]
    fn failover_of_a_stopped_instance_only_switches_the_config() {
        let c = cluster("fo-down", "diskless");
        c.run(crate::opcodes::OpInstanceShutdown {
            instance_name: INST.into(),
            ..Default::default()
        });
        c.rpc.clear();
        let (out, log) = c.run(failover_op(Some("node2")));
        assert_eq!(out, OpOutcome::Success(Value::Null), "{log:?}");
        assert_eq!(steps(&c), vec![s(proto::INSTANCE_SHUTDOWN, "node1")]);
        assert_eq!(primary(&c), N2);
        assert!(log.iter().any(|l| l.contains("Not checking memory")));
    }

    #[test]
    fn failover_shutdown_failure_changes_nothing_unless_ignored() {
        let c = cluster("fo-shut", "sharedfile");
        c.rpc
            .answer(proto::INSTANCE_SHUTDOWN, N1, Err("hypervisor stuck".into()));
        let m = exec_err(c.run(failover_op(Some("node2"))).0);
        assert!(
            m.starts_with(
                "Could not shutdown instance inst1.example.com on node node1.example.com: "
            ) && m.ends_with("hypervisor stuck"),
            "{m}"
        );
        assert_eq!(primary(&c), N1);
        let (out, log) = c.run(OpInstanceFailover {
            ignore_consistency: true,
            ..failover_op(Some("node2"))
        });
        assert_eq!(out, OpOutcome::Success(Value::Null), "{log:?}");
        assert!(
            log.iter().any(|l| l.contains("proceeding anyway")),
            "{log:?}"
        );
        assert_eq!(primary(&c), N2);
    }

    #[test]
    fn migrate_runs_the_protocol_then_switches_the_primary() {
        let c = cluster("mig-ok", "sharedfile");
        let (out, log) = c.run(migrate_op(Some("node2")));
        assert_eq!(out, OpOutcome::Success(Value::Null), "{log:?}");
        assert_eq!(
            steps(&c),
            vec![
                s(proto::INSTANCE_INFO, "node1"),
                s(proto::NODE_HV_INFO, "node2"),
                s(proto::MIGRATION_INFO, "node1"),
                s(proto::BLOCKDEV_ASSEMBLE, "node2"),
                s(proto::ACCEPT_INSTANCE, "node2"),
                s(proto::INSTANCE_MIGRATE, "node1"),
                s(proto::MIGRATION_STATUS, "node1"),
                s(proto::FINALIZE_MIGRATION_DST, "node2"),
                s(proto::FINALIZE_MIGRATION_SRC, "node1"),
                s(proto::BLOCKDEV_SHUTDOWN, "node1"),
            ]
        );
        assert_eq!(primary(&c), N2);
        let accept = &c.rpc.calls_of(proto::ACCEPT_INSTANCE)[0].1;
        assert_eq!(accept["info"], json!({"memory": 512}));
        assert_eq!(accept["live"], true);
        assert_eq!(accept["disks"].as_array().unwrap().len(), 1);
        let fin = &c.rpc.calls_of(proto::FINALIZE_MIGRATION_DST)[0].1;
        assert_eq!(fin["success"], true);
        assert!(log.iter().any(|l| l == "* done"), "{log:?}");
        // Non-live back to node1.
        running_on(&c, N2);
        c.rpc.clear();
        let (out, log) = c.run(OpInstanceMigrate {
            mode: Some(MigrationMode::NonLive),
            ..migrate_op(Some("node1"))
        });
        assert_eq!(out, OpOutcome::Success(Value::Null), "{log:?}");
        assert_eq!(c.rpc.calls_of(proto::INSTANCE_MIGRATE)[0].1["live"], false);
        assert_eq!(primary(&c), N1);
    }

    #[test]
    fn migrate_failure_at_each_step_aborts_and_keeps_the_config() {
        for (step, answer) in [
            (proto::MIGRATION_INFO, Err("no info".to_string())),
            (proto::ACCEPT_INSTANCE, Err("target busy".to_string())),
            (proto::INSTANCE_MIGRATE, Err("socket closed".to_string())),
            (
                proto::MIGRATION_STATUS,
                Ok(json!({"status": "failed", "transferred_bytes": 0,
                          "total_bytes": 1, "message": "qemu said no"})),
            ),
            (
                proto::FINALIZE_MIGRATION_DST,
                Err("cannot resume".to_string()),
            ),
        ] {
            let c = cluster(&format!("mig-fail-{step}"), "sharedfile");
            let node = if matches!(step, proto::ACCEPT_INSTANCE | proto::FINALIZE_MIGRATION_DST) {
                N2
            } else {
                N1
            };
            c.rpc.answer(step, node, answer);
            let m = exec_err(c.run(migrate_op(Some("node2"))).0);
            let expected = match step {
                proto::MIGRATION_INFO => "Failed fetching source migration information from node1",
                proto::ACCEPT_INSTANCE => "Could not pre-migrate instance inst1.example.com",
                proto::FINALIZE_MIGRATION_DST => "Could not finalize instance migration: node2",
                proto::MIGRATION_STATUS => {
                    "Could not migrate instance inst1.example.com: qemu said no"
                }
                _ => "Could not migrate instance inst1.example.com",
            };
            assert!(m.starts_with(expected), "{step}: {m}");
            assert_eq!(primary(&c), N1, "{step}");
            let aborts: Vec<Value> = c
                .rpc
                .calls_of(proto::FINALIZE_MIGRATION_SRC)
                .into_iter()
                .map(|(_, a)| a["success"].clone())
                .collect();
            let expected = match step {
                proto::MIGRATION_INFO => vec![],
                proto::FINALIZE_MIGRATION_DST => vec![json!(true)],
                _ => vec![json!(false)],
            };
            assert_eq!(aborts, expected, "{step}");
            // Fixed node: the operation runs again.
            let fixed = match step {
                proto::MIGRATION_STATUS => Ok(json!({"status": "completed",
                    "transferred_bytes": 1, "total_bytes": 1, "message": null})),
                proto::MIGRATION_INFO => Ok(json!({})),
                _ => Ok(Value::Null),
            };
            c.rpc.answer(step, node, fixed);
            let (out, log) = c.run(migrate_op(Some("node2")));
            assert_eq!(out, OpOutcome::Success(Value::Null), "{step}: {log:?}");
            assert_eq!(primary(&c), N2, "{step}");
        }
    }

    #[test]
    fn migrate_to_a_dead_target_fails_cleanly() {
        let c = cluster("mig-dead", "sharedfile");
        c.rpc.kill(N2);
        let out = c.run(migrate_op(Some("node2"))).0;
        let (kind, m) = prereq(out);
        assert_eq!(kind, ErrorKind::Environ);
        assert!(m.contains("Can't compute free memory on node node2"), "{m}");
        assert_eq!(primary(&c), N1);
        assert!(c.rpc.calls_of(proto::MIGRATION_INFO).is_empty());
    }

    #[test]
    fn drbd_fails_over_to_its_secondary_only() {
        let c = cluster("fo-drbd", "drbd");
        let (_, m) = prereq(c.run(failover_op(Some("node3"))).0);
        assert!(
            m.starts_with(
                "Instances with disk types drbd cannot be failed over to arbitrary nodes"
            ),
            "{m}"
        );
        let (out, log) = c.run(failover_op(None));
        assert!(matches!(out, OpOutcome::Success(_)), "{log:?}");
        assert_eq!(primary(&c), N2);
        // Disks shut down on both nodes, then assembled with node1 now the
        // secondary (first) and node2 the primary (last, opened).
        let asm = c.rpc.calls_of(proto::BLOCKDEV_ASSEMBLE);
        let order: Vec<(&str, bool)> = asm
            .iter()
            .map(|(n, a)| (n.as_str(), a["on_primary"].as_bool().unwrap()))
            .collect();
        assert_eq!(order, vec![(N1, false), (N2, true)]);
        let n2_ip = c.config().node_by_name(N2).unwrap().1.secondary_ip.clone();
        assert_eq!(asm[1].1["disk"]["params"]["local-ip"], json!(n2_ip));
        assert_eq!(asm[0].1["disk"]["params"]["remote-ip"], json!(n2_ip));
        let downs: Vec<String> = c
            .rpc
            .calls_of(proto::BLOCKDEV_SHUTDOWN)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert!(
            downs.contains(&N1.to_string()) && downs.contains(&N2.to_string()),
            "{downs:?}"
        );
        let starts = c.rpc.calls_of(proto::INSTANCE_START);
        assert_eq!(starts.len(), 1);
        assert_eq!(starts[0].0, N2);
        // And back: node1 is the secondary now.
        let (out, log) = c.run(failover_op(Some("node1")));
        assert!(matches!(out, OpOutcome::Success(_)), "{log:?}");
        assert_eq!(primary(&c), N1);
    }

    #[test]
    fn refusals_name_the_reason() {
        let plain = cluster("mig-plain", "plain");
        let (kind, m) = prereq(plain.run(migrate_op(Some("node2"))).0);
        assert_eq!(kind, ErrorKind::State);
        assert!(
            m.starts_with("Instance's disk layout 'plain' does not allow migrations")
                && m.contains("gnt-instance move"),
            "{m}"
        );
        let (_, m) = prereq(plain.run(failover_op(Some("node2"))).0);
        assert!(m.contains("does not allow failovers"), "{m}");
        let drbd = cluster("mig-drbd", "drbd");
        let (_, m) = prereq(drbd.run(migrate_op(None)).0);
        assert!(m.contains("not supported yet"), "{m}");
        let c = cluster("mig-args", "sharedfile");
        let (_, m) = prereq(c.run(migrate_op(None)).0);
        assert!(m.contains("-n/--target-node"), "{m}");
        let (_, m) = prereq(
            c.run(OpInstanceMigrate {
                iallocator: Some("hail".into()),
                ..migrate_op(None)
            })
            .0,
        );
        assert!(m.contains("'hail' is not available"), "{m}");
        let (_, m) = prereq(c.run(migrate_op(Some("node1"))).0);
        assert_eq!(
            m,
            "Cannot migrate instance inst1.example.com to its primary (node1.example.com)"
        );
        let (_, m) = prereq(
            c.run(OpInstanceMigrate {
                live: Some(true),
                mode: Some(MigrationMode::Live),
                ..migrate_op(Some("node2"))
            })
            .0,
        );
        assert!(m.starts_with("Only one of the 'live' and 'mode'"), "{m}");
        let (kind, _) = prereq(c.run(migrate_op(Some("node9"))).0);
        assert_eq!(kind, ErrorKind::NoEnt);
        // Not running: migration refused unless falling back is allowed.
        c.rpc.answer(proto::INSTANCE_INFO, N1, Ok(Value::Null));
        let (_, m) = prereq(c.run(migrate_op(Some("node2"))).0);
        assert!(m.starts_with("Can't migrate, please use failover"), "{m}");
        assert_eq!(primary(&c), N1);
        let (out, log) = c.run(OpInstanceMigrate {
            allow_failover: true,
            ..migrate_op(Some("node2"))
        });
        assert_eq!(out, OpOutcome::Success(Value::Null), "{log:?}");
        assert!(
            log.iter().any(|l| l.contains("fallback to failover")),
            "{log:?}"
        );
        assert_eq!(primary(&c), N2);
        assert!(c.rpc.calls_of(proto::MIGRATION_INFO).is_empty());
    }

    #[test]
    fn cleanup_follows_where_the_instance_runs() {
        // Running on the target only: the config follows.
        let c = cluster("mig-clean", "sharedfile");
        c.rpc.answer(proto::INSTANCE_INFO, N1, Ok(Value::Null));
        running_on(&c, N2);
        let op = OpInstanceMigrate {
            cleanup: true,
            ..migrate_op(Some("node2"))
        };
        let (out, log) = c.run(op.clone());
        assert_eq!(out, OpOutcome::Success(Value::Null), "{log:?}");
        assert_eq!(primary(&c), N2);
        assert!(log
            .iter()
            .any(|l| l
                == "* instance running on secondary node (node2.example.com), updating config"));
        assert_eq!(
            c.rpc.calls_of(proto::BLOCKDEV_SHUTDOWN)[0].0,
            N1,
            "the demoted node lets go of the disks"
        );
        // Running on its primary: nothing changes.
        let serial = c.config().serial_no;
        let (out, log) = c.run(OpInstanceMigrate {
            cleanup: true,
            ..migrate_op(Some("node1"))
        });
        assert_eq!(out, OpOutcome::Success(Value::Null), "{log:?}");
        assert!(log
            .iter()
            .any(|l| l.contains("confirmed to be running on its primary")));
        assert_eq!(c.config().serial_no, serial);
        // Running on both and the abort does not help: manual work.
        running_on(&c, N1);
        let m = exec_err(
            c.run(OpInstanceMigrate {
                cleanup: true,
                ..migrate_op(Some("node1"))
            })
            .0,
        );
        assert!(
            m.starts_with("Instance seems to be running on two nodes"),
            "{m}"
        );
        assert!(!c.rpc.calls_of(proto::FINALIZE_MIGRATION_DST).is_empty());
        // Running nowhere.
        for n in [N1, N2] {
            c.rpc.answer(proto::INSTANCE_INFO, n, Ok(Value::Null));
        }
        let m = exec_err(
            c.run(OpInstanceMigrate {
                cleanup: true,
                ..migrate_op(Some("node1"))
            })
            .0,
        );
        assert!(
            m.starts_with("Instance does not seem to be running at all"),
            "{m}"
        );
    }
}
