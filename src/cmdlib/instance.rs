//! Instance LUs: the master side of an instance's life cycle (Ganeti 3.0's
//! `cmdlib/instance*.py`).
//!
//! - [`spec`]: turns config objects into the fully resolved
//!   [`proto::InstanceSpec`] a node receives (parameters filled cluster →
//!   OS → instance, disk parameters per template and group);
//! - [`create`]: `OP_INSTANCE_CREATE` (create mode);
//! - [`lifecycle`]: remove, startup, shutdown, reboot, console;
//! - [`disks`]: activate, deactivate and grow disks;
//! - [`info`]: `OP_INSTANCE_QUERY_DATA` (`gnt-instance info`);
//! - [`migrate`]: failover and migration (shared-storage templates);
//! - [`modify`]: rename, reinstall, parameter changes;
//! - [`recreate`]: recreating lost disks (`OP_INSTANCE_RECREATE_DISKS`);
//! - [`transfer`]: move (disk copy between nodes) and the copy step `gnt-backup` uses;
//!
//! Run by masterd's job workers. Like every LU these never touch a
//! hypervisor, block device or OS script: each step is a node RPC
//! ([`crate::rpc::proto`]'s instance procedures), even on the master. What
//! the nodes must be asked before anything changes (OS validation, free
//! memory) is asked at the start of `exec` and still fails as a
//! prerequisite error.

pub mod create;
pub mod disks;
pub mod info;
pub mod lifecycle;
pub mod migrate;
pub mod modify;
pub mod recreate;
pub mod spec;
pub mod transfer;

use super::{LockNeed, LuContext, LuError};
use crate::config::objects::{ConfigData, Instance, Node, Uuid};
use crate::error::ErrorKind;
use crate::locking::{Level, LockMode};
use crate::rpc::proto::{self, AssembledDisk, BlockdevArgs};
use crate::rpc::{RpcError, Target};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// Timeout of quick node calls (status, info, assemble).
pub const QUICK_TIMEOUT: Duration = Duration::from_secs(60);
/// Timeout of slow node calls (OS installs, disk creation, migration).
pub const SLOW_TIMEOUT: Duration = Duration::from_secs(3600);

/// The full name of an instance given by full or short name, like
/// Ganeti's `ExpandInstanceName`.
pub fn expand_instance_name(cfg: &ConfigData, name: &str) -> Result<String, LuError> {
    if cfg.instance_by_name(name).is_some() {
        return Ok(name.to_string());
    }
    let prefix = format!("{name}.");
    let found: Vec<&str> = cfg
        .instances
        .values()
        .map(|i| i.name.as_str())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    match found.as_slice() {
        [one] => Ok((*one).to_string()),
        _ => Err(not_known(name)),
    }
}

fn not_known(name: &str) -> LuError {
    LuError::prereq(ErrorKind::NoEnt, format!("Instance '{name}' not known"))
}

/// The instance called `name`.
pub fn instance_named<'a>(cfg: &'a ConfigData, name: &str) -> Result<&'a Instance, LuError> {
    cfg.instance_by_name(name)
        .map(|(_, i)| i)
        .ok_or_else(|| not_known(name))
}

/// The node with `uuid`, or a prerequisite error naming it.
pub fn node_by_uuid<'a>(cfg: &'a ConfigData, uuid: &Uuid) -> Result<&'a Node, LuError> {
    cfg.nodes.get(uuid).ok_or_else(|| {
        LuError::prereq(
            ErrorKind::NoEnt,
            format!("Node with UUID '{uuid}' not known"),
        )
    })
}

/// Every node of an instance: the primary first, then the other nodes
/// its disks live on (Ganeti's `all_nodes`).
pub fn instance_nodes(cfg: &ConfigData, inst: &Instance) -> Vec<Uuid> {
    let mut out = vec![inst.primary_node.clone()];
    for d in inst.disks.iter().filter_map(|u| cfg.disks.get(u)) {
        for n in d.all_nodes() {
            if !out.contains(n) {
                out.push(n.clone());
            }
        }
    }
    out
}

/// The secondary nodes of an instance.
pub fn secondary_nodes(cfg: &ConfigData, inst: &Instance) -> Vec<Uuid> {
    instance_nodes(cfg, inst).into_iter().skip(1).collect()
}

/// The disk template of an instance (3.0 derives it from its disks).
pub fn disk_template(cfg: &ConfigData, inst: &Instance) -> String {
    inst.disks
        .first()
        .and_then(|u| cfg.disks.get(u))
        .map(|d| d.dev_type.clone())
        .or_else(|| inst.disk_template.clone())
        .unwrap_or_else(|| "diskless".to_string())
}

/// The locks of one existing instance: its own lock and its nodes (node
/// and node-resource levels), all exclusive or all shared.
pub fn instance_locks(cfg: &ConfigData, name: &str, mode: LockMode) -> Vec<LockNeed> {
    let mut out = vec![LockNeed {
        level: Level::Instance,
        names: vec![name.to_string()],
        mode,
    }];
    if let Some((_, inst)) = cfg.instance_by_name(name) {
        let nodes: Vec<String> = instance_nodes(cfg, inst)
            .iter()
            .filter_map(|u| cfg.nodes.get(u))
            .map(|n| n.name.as_str().to_string())
            .collect();
        for level in [Level::Node, Level::NodeRes] {
            out.push(LockNeed {
                level,
                names: nodes.clone(),
                mode,
            });
        }
    }
    out
}

/// Adds node locks for `extra` node names to `needs` (e.g. a failover target).
pub fn add_node_locks(needs: &mut [LockNeed], extra: &str) {
    for n in needs
        .iter_mut()
        .filter(|n| matches!(n.level, Level::Node | Level::NodeRes))
    {
        if !n.names.iter().any(|x| x == extra) {
            n.names.push(extra.to_string());
        }
    }
}

/// The RPC target of the node with `uuid`.
pub fn target_of(cfg: &ConfigData, uuid: &Uuid) -> Result<Target, LuError> {
    node_by_uuid(cfg, uuid).map(super::node::target)
}

/// Calls `procedure` on one node with typed arguments.
pub fn call<A: Serialize>(
    ctx: &LuContext<'_>,
    procedure: &str,
    target: &Target,
    args: &A,
    timeout: Duration,
) -> Result<Value, RpcError> {
    let args = serde_json::to_value(args).map_err(|e| RpcError::Protocol {
        node: target.name.clone(),
        message: format!("encoding the arguments of {procedure}: {e}"),
    })?;
    ctx.rpc.call_one(procedure, target, &args, timeout)
}

/// Decodes a node's answer to `procedure`.
pub fn decode<T: DeserializeOwned>(
    procedure: &str,
    node: &str,
    value: Value,
) -> Result<T, RpcError> {
    serde_json::from_value(value).map_err(|e| RpcError::Protocol {
        node: node.to_string(),
        message: format!("unexpected answer to {procedure}: {e}"),
    })
}

/// Calls `procedure` on one node and decodes the answer.
pub fn call_typed<A: Serialize, T: DeserializeOwned>(
    ctx: &LuContext<'_>,
    procedure: &str,
    target: &Target,
    args: &A,
    timeout: Duration,
) -> Result<T, RpcError> {
    let v = call(ctx, procedure, target, args, timeout)?;
    decode(procedure, &target.name, v)
}

/// The message of an RPC error, for an LU's own message.
pub fn rpc_msg(e: &RpcError) -> String {
    crate::error::chain(e)
}

/// Assembles every disk of `inst` on its nodes (secondaries first, then
/// the primary, as Ganeti's `AssembleInstanceDisks`) and returns the
/// primary's device paths in disk order.
pub fn assemble_disks(
    ctx: &mut LuContext<'_>,
    cfg: &ConfigData,
    inst: &Instance,
) -> Result<Vec<AssembledDisk>, LuError> {
    let specs = spec::disk_specs(cfg, inst)?;
    let nodes = instance_nodes(cfg, inst);
    let mut out = Vec::with_capacity(specs.len());
    for (idx, disk) in specs.into_iter().enumerate() {
        let config_disk = inst.disks.get(idx).and_then(|u| cfg.disks.get(u));
        let on: Vec<&Uuid> = nodes
            .iter()
            .filter(|n| {
                **n == inst.primary_node || config_disk.is_some_and(|d| d.all_nodes().contains(n))
            })
            .collect();
        for node in on.iter().rev() {
            let tgt = target_of(cfg, node)?;
            let on_primary = **node == inst.primary_node;
            let args = BlockdevArgs {
                disk: spec::disk_for_node(cfg, &disk, node),
                instance_name: inst.name.as_str().to_string(),
                on_primary,
                exclusive_storage: false,
            };
            match call_typed::<_, AssembledDisk>(
                ctx,
                proto::BLOCKDEV_ASSEMBLE,
                &tgt,
                &args,
                QUICK_TIMEOUT,
            ) {
                Ok(a) if on_primary => out.push(a),
                Ok(_) => {}
                Err(e) => {
                    return Err(LuError::Exec(format!(
                        "Cannot activate block device {} of instance {} on node {}: {}",
                        disk.iv_name,
                        inst.name,
                        tgt.name,
                        rpc_msg(&e)
                    )))
                }
            }
        }
    }
    Ok(out)
}

/// Shuts the disks of `inst` down on all its nodes (Ganeti's
/// `ShutdownInstanceDisks`); returns the failures as messages. Failures on
/// offline nodes are not reported.
pub fn shutdown_disks(ctx: &mut LuContext<'_>, cfg: &ConfigData, inst: &Instance) -> Vec<String> {
    let mut errors = Vec::new();
    let specs = match spec::disk_specs(cfg, inst) {
        Ok(s) => s,
        Err(e) => return vec![e.to_string()],
    };
    for node in instance_nodes(cfg, inst) {
        let Ok(tgt) = target_of(cfg, &node) else {
            continue;
        };
        if tgt.offline {
            continue;
        }
        for disk in &specs {
            let args = BlockdevArgs {
                disk: spec::disk_for_node(cfg, disk, &node),
                instance_name: inst.name.as_str().to_string(),
                on_primary: node == inst.primary_node,
                exclusive_storage: false,
            };
            if let Err(e) = call(ctx, proto::BLOCKDEV_SHUTDOWN, &tgt, &args, QUICK_TIMEOUT) {
                errors.push(format!(
                    "Could not shutdown block device {} on node {}: {}",
                    disk.iv_name,
                    tgt.name,
                    rpc_msg(&e)
                ));
            }
        }
    }
    errors
}

/// Ganeti's message for a failed `blockdev_create` of disk `iv_name` of
/// instance `instance` on node `node`.
pub fn create_failed(
    iv_name: &str,
    node: &str,
    instance: &str,
    e: &crate::rpc::RpcError,
) -> String {
    format!(
        "Can't create block device {iv_name} on node {node} for instance {instance}: {}",
        rpc_msg(e)
    )
}

/// Starts instance `name` on its (new) primary `target` after a failover
/// or move: assembles its disks, marks them active and starts it. On a
/// failure the disks are shut down again and marked inactive, and the
/// error says what failed. With `progress`, logs Ganeti's failover steps.
pub fn start_on_new_primary(
    ctx: &mut LuContext<'_>,
    name: &str,
    target: &Target,
    progress: bool,
) -> Result<(), LuError> {
    let cfg = ctx.store.snapshot();
    let inst = instance_named(&cfg, name)?.clone();
    if progress {
        ctx.log(format!(
            "* activating the instance's disks on target node {}",
            target.name
        ));
    }
    let disks = match assemble_disks(ctx, &cfg, &inst) {
        Ok(d) => d,
        Err(e) => {
            ctx.log(format!("WARNING: {e}"));
            for w in shutdown_disks(ctx, &cfg, &inst) {
                ctx.log(format!("WARNING: {w}"));
            }
            return Err(LuError::Exec("Can't activate the instance's disks".into()));
        }
    };
    update_instance(ctx, &inst.uuid, |i| {
        i.disks_active = true;
        Ok(())
    })?;
    if progress {
        ctx.log(format!(
            "* starting the instance on the target node {}",
            target.name
        ));
    }
    let args = proto::InstanceStartArgs {
        instance: instance_spec_of(&cfg, &inst.uuid)?,
        disks,
        startup_paused: false,
    };
    if let Err(e) = call(ctx, proto::INSTANCE_START, target, &args, SLOW_TIMEOUT) {
        for w in shutdown_disks(ctx, &cfg, &inst) {
            ctx.log(format!("WARNING: {w}"));
        }
        let _ = update_instance(ctx, &inst.uuid, |i| {
            i.disks_active = false;
            Ok(())
        });
        return Err(LuError::Exec(format!(
            "Could not start instance {} on node {}: {}",
            inst.name,
            target.name,
            rpc_msg(&e)
        )));
    }
    Ok(())
}

/// Removes the given disks of `inst` from every node they live on (and
/// the primary); returns the failures as messages.
pub fn remove_disks(
    ctx: &mut LuContext<'_>,
    cfg: &ConfigData,
    inst: &Instance,
    disks: &[(proto::DiskSpec, Vec<Uuid>)],
) -> Vec<String> {
    let mut errors = Vec::new();
    for (disk, nodes) in disks {
        for node in nodes {
            let tgt = match target_of(cfg, node) {
                Ok(t) => t,
                Err(e) => {
                    errors.push(e.to_string());
                    continue;
                }
            };
            let args = BlockdevArgs {
                disk: spec::disk_for_node(cfg, disk, node),
                instance_name: inst.name.as_str().to_string(),
                on_primary: *node == inst.primary_node,
                exclusive_storage: false,
            };
            if let Err(e) = call(ctx, proto::BLOCKDEV_REMOVE, &tgt, &args, SLOW_TIMEOUT) {
                errors.push(format!(
                    "Could not remove disk {} on node {}: {}",
                    disk.iv_name,
                    tgt.name,
                    rpc_msg(&e)
                ));
            }
        }
    }
    errors
}

/// The disks of `inst` with the nodes each one must be created on or
/// removed from (its own nodes, or the primary for templates that keep
/// no node list, like `sharedfile`, `blockdev` and `ext`).
pub fn disks_with_nodes(
    cfg: &ConfigData,
    inst: &Instance,
) -> Result<Vec<(proto::DiskSpec, Vec<Uuid>)>, LuError> {
    let specs = spec::disk_specs(cfg, inst)?;
    Ok(specs
        .into_iter()
        .zip(&inst.disks)
        .map(|(s, u)| {
            let mut nodes: Vec<Uuid> = cfg
                .disks
                .get(u)
                .map(|d| d.all_nodes().into_iter().cloned().collect())
                .unwrap_or_default();
            if nodes.is_empty() {
                nodes.push(inst.primary_node.clone());
            }
            // Secondaries first, the primary last (Ganeti creates the
            // primary's side last so a DRBD device finds its peer).
            nodes.sort_by_key(|n| *n == inst.primary_node);
            (s, nodes)
        })
        .collect())
}

/// Live state of `inst` on its primary (`instance_info`); `None` when it
/// does not run.
pub fn live_info(
    ctx: &mut LuContext<'_>,
    cfg: &ConfigData,
    inst: &Instance,
) -> Result<Option<proto::HvInstanceInfo>, RpcError> {
    live_info_on(ctx, cfg, inst, &inst.primary_node)
}

/// Live state of `inst` as `node`'s hypervisor reports it (`None` when it
/// does not run there); migration asks both of its nodes.
pub fn live_info_on(
    ctx: &mut LuContext<'_>,
    cfg: &ConfigData,
    inst: &Instance,
    node: &Uuid,
) -> Result<Option<proto::HvInstanceInfo>, RpcError> {
    let tgt = target_of(cfg, node).map_err(|e| RpcError::Protocol {
        node: node.to_string(),
        message: e.to_string(),
    })?;
    let args = proto::InstanceInfoArgs {
        name: inst.name.as_str().to_string(),
        hypervisor: inst.hypervisor.clone(),
        hvparams: cfg
            .cluster
            .hvparams
            .get(&inst.hypervisor)
            .cloned()
            .unwrap_or_default(),
    };
    call_typed(ctx, proto::INSTANCE_INFO, &tgt, &args, QUICK_TIMEOUT)
}

/// Free memory of a node for `hypervisor` (`node_hv_info`), refusing when
/// `needed_mib` does not fit (Ganeti's `CheckNodeFreeMemory`).
pub fn check_free_memory(
    ctx: &mut LuContext<'_>,
    cfg: &ConfigData,
    node: &Uuid,
    reason: &str,
    needed_mib: u64,
    hypervisor: &str,
) -> Result<u64, LuError> {
    let tgt = target_of(cfg, node)?;
    let args = proto::HypervisorsArgs {
        hypervisors: [(
            hypervisor.to_string(),
            cfg.cluster
                .hvparams
                .get(hypervisor)
                .cloned()
                .unwrap_or_default(),
        )]
        .into(),
    };
    let infos: Vec<proto::NodeHvInfo> =
        call_typed(ctx, proto::NODE_HV_INFO, &tgt, &args, QUICK_TIMEOUT).map_err(|e| {
            LuError::prereq(
                ErrorKind::Environ,
                format!(
                    "Can't compute free memory on node {}, result was '{}'",
                    tgt.name,
                    rpc_msg(&e)
                ),
            )
        })?;
    let free = infos
        .iter()
        .find(|i| i.hypervisor == hypervisor)
        .map(|i| i.memory_free_mib)
        .ok_or_else(|| {
            LuError::prereq(
                ErrorKind::Environ,
                format!(
                    "Can't compute free memory on node {}, result was 'no data for hypervisor {hypervisor}'",
                    tgt.name
                ),
            )
        })?;
    if needed_mib > free {
        return Err(LuError::prereq(
            ErrorKind::NoRes,
            format!(
                "Not enough memory on node {} for {reason}: needed {needed_mib} MiB, available {free} MiB",
                tgt.name
            ),
        ));
    }
    Ok(free)
}

/// A backend parameter as a number of MiB/CPUs (filled beparams hold
/// numbers; a missing one counts as 0).
pub fn be_u64(be: &crate::config::objects::ParamMap, key: &str) -> u64 {
    be.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// Sets the admin state of the instance with `uuid` through the writer.
pub fn set_admin_state(
    ctx: &mut LuContext<'_>,
    uuid: &Uuid,
    state: crate::config::objects::AdminState,
    source: &str,
) -> Result<(), LuError> {
    let source = source.to_string();
    update_instance(ctx, uuid, move |i| {
        i.admin_state = state;
        i.admin_state_source = source;
        Ok(())
    })
}

/// Changes the instance with `uuid` through the writer, bumping its serial
/// number and mtime.
pub fn update_instance(
    ctx: &mut LuContext<'_>,
    uuid: &Uuid,
    f: impl FnOnce(&mut Instance) -> Result<(), crate::config::ConfigError>,
) -> Result<(), LuError> {
    let uuid = uuid.clone();
    ctx.update_config(move |c| {
        let inst =
            c.instances
                .get_mut(&uuid)
                .ok_or_else(|| crate::config::ConfigError::Update {
                    reason: format!("Instance with UUID '{uuid}' disappeared from the cluster"),
                })?;
        f(inst)?;
        inst.serial_no += 1;
        inst.mtime = now();
        Ok(())
    })
}

/// Seconds since the epoch.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Ganeti's `CheckInstanceState`/`_CheckInstanceDown`: the prerequisite
/// error when the instance is marked offline for an operation that needs
/// it online.
pub fn check_not_offline(inst: &Instance, what: &str) -> Result<(), LuError> {
    if inst.admin_state == crate::config::objects::AdminState::Offline {
        return Err(LuError::prereq(
            ErrorKind::State,
            format!("Instance '{}' is marked to be offline, {what}", inst.name),
        ));
    }
    Ok(())
}

/// The resolved spec of the instance with `uuid`.
pub fn instance_spec_of(cfg: &ConfigData, uuid: &Uuid) -> Result<proto::InstanceSpec, LuError> {
    let inst = cfg.instances.get(uuid).ok_or_else(|| {
        LuError::prereq(
            ErrorKind::NoEnt,
            format!("Instance with UUID '{uuid}' not known"),
        )
    })?;
    spec::instance_spec(cfg, inst)
}

/// A size the way Ganeti's `FormatUnit(…, "h")` shows it: `512M`, `1.0G`, `2.0T`.
pub fn format_size(mib: u64) -> String {
    // Display only: precision loss above 2^52 MiB does not matter.
    #[allow(clippy::cast_precision_loss)]
    let v = mib as f64;
    if mib < 1024 {
        format!("{mib}M")
    } else if mib < 1024 * 1024 {
        format!("{:.1}G", v / 1024.0)
    } else {
        format!("{:.1}T", v / 1024.0 / 1024.0)
    }
}

#[cfg(test)]
mod tests;
