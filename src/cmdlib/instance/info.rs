//! `OP_INSTANCE_QUERY_DATA` (`gnt-instance info`): Ganeti's
//! `LUInstanceQueryData` result, name → dict, with per-disk status from
//! `blockdev_status` on the primary and secondaries unless `static`.

use super::{expand_instance_name, instance_nodes, live_info, spec, target_of, QUICK_TIMEOUT};
use crate::cmdlib::{LockNeed, LogicalUnit, LuContext, LuError};
use crate::config::objects::{AdminState, ConfigData, Instance, Uuid};
use crate::locking::{Level, LockMode};
use crate::opcodes::OpInstanceQueryData;
use crate::rpc::proto::{self, BlockdevsArgs, DiskStatus};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// `OP_INSTANCE_QUERY_DATA`.
pub struct LuInstanceQueryData {
    op: OpInstanceQueryData,
}

impl LuInstanceQueryData {
    /// The LU for `op`.
    pub fn new(op: OpInstanceQueryData) -> Self {
        LuInstanceQueryData { op }
    }
}

fn admin_state_str(s: AdminState) -> &'static str {
    match s {
        AdminState::Up => "up",
        AdminState::Down => "down",
        AdminState::Offline => "offline",
    }
}

/// Ganeti's `blockdev_find` tuple shape for `pstatus`/`sstatus`.
fn status_tuple(s: &DiskStatus) -> Value {
    if !s.present {
        return Value::Null;
    }
    json!([
        s.path,
        Value::Null,
        Value::Null,
        s.sync_percent,
        s.estimated_time_secs,
        s.is_degraded,
        s.ldisk_status
    ])
}

impl LuInstanceQueryData {
    fn node_name(cfg: &ConfigData, u: &Uuid) -> String {
        cfg.nodes
            .get(u)
            .map_or_else(|| u.to_string(), |n| n.name.as_str().to_string())
    }

    /// `blockdev_status` of every disk on `node`, by disk UUID.
    fn statuses(
        ctx: &mut LuContext<'_>,
        cfg: &ConfigData,
        inst: &Instance,
        node: &Uuid,
    ) -> BTreeMap<String, DiskStatus> {
        let Ok(tgt) = target_of(cfg, node) else {
            return BTreeMap::new();
        };
        if tgt.offline {
            return BTreeMap::new();
        }
        let Ok(disks) = spec::disk_specs(cfg, inst) else {
            return BTreeMap::new();
        };
        let disks = disks
            .iter()
            .map(|d| spec::disk_for_node(cfg, d, node))
            .collect();
        let args = BlockdevsArgs { disks };
        match super::call_typed::<_, Vec<DiskStatus>>(
            ctx,
            proto::BLOCKDEV_STATUS,
            &tgt,
            &args,
            QUICK_TIMEOUT,
        ) {
            Ok(list) => list.into_iter().map(|s| (s.uuid.clone(), s)).collect(),
            Err(e) => {
                ctx.log(format!(
                    "WARNING: could not get disk status from node {}: {}",
                    tgt.name,
                    super::rpc_msg(&e)
                ));
                BTreeMap::new()
            }
        }
    }

    fn one(&self, ctx: &mut LuContext<'_>, cfg: &ConfigData, inst: &Instance) -> Value {
        let nodes = instance_nodes(cfg, inst);
        let snodes: Vec<&Uuid> = nodes.iter().skip(1).collect();
        let group_of = |u: &Uuid| cfg.nodes.get(u).map(|n| n.group.clone());
        let group_name = |g: &Option<Uuid>| {
            g.as_ref()
                .and_then(|g| cfg.nodegroups.get(g))
                .map(|g| g.name.clone())
        };
        let (run_state, pstat, sstat) = if self.op.static_ {
            (Value::Null, BTreeMap::new(), BTreeMap::new())
        } else {
            let run = match live_info(ctx, cfg, inst) {
                Ok(Some(_)) => json!("up"),
                Ok(None) => json!("down"),
                Err(_) => Value::Null,
            };
            let p = Self::statuses(ctx, cfg, inst, &inst.primary_node);
            let s = snodes
                .first()
                .map(|s| Self::statuses(ctx, cfg, inst, s))
                .unwrap_or_default();
            (run, p, s)
        };
        let disks: Vec<Value> = spec::disk_specs(cfg, inst)
            .unwrap_or_default()
            .iter()
            .map(|d| {
                let cd = cfg.disks.get(&Uuid(d.uuid.clone()));
                json!({
                    "iv_name": d.iv_name,
                    "dev_type": d.dev_type,
                    "logical_id": d.logical_id,
                    "drbd_info": Value::Null,
                    "pstatus": pstat.get(&d.uuid).map_or(Value::Null, status_tuple),
                    "sstatus": sstat.get(&d.uuid).map_or(Value::Null, status_tuple),
                    "children": [],
                    "mode": d.mode,
                    "size": d.size_mib,
                    "spindles": cd.and_then(|c| c.spindles),
                    "name": d.name,
                    "uuid": d.uuid,
                })
            })
            .collect();
        let nics: Vec<Value> = inst
            .nics
            .iter()
            .map(|n| {
                let s = spec::nic_spec(cfg, n);
                json!([
                    // Ganeti's NICToTuple order: name, uuid, ip, mac, …
                    s.name,
                    s.uuid,
                    s.ip,
                    s.mac,
                    s.mode,
                    s.link,
                    s.vlan,
                    n.network.as_ref().map(|u| u.to_string()),
                    // Ganeti sends the network object; its name is what is shown.
                    s.network.as_ref().map(|name| json!({ "name": name }))
                ])
            })
            .collect();
        let pgroup = group_of(&inst.primary_node);
        let sgroups: Vec<Option<Uuid>> = snodes.iter().map(|s| group_of(s)).collect();
        let to_obj = |m: &BTreeMap<String, Value>| {
            Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<Map<_, _>>(),
            )
        };
        let os_actual =
            crate::config::params::fill_osparams(&cfg.cluster, &inst.os, &inst.osparams);
        json!({
            "name": inst.name,
            "config_state": admin_state_str(inst.admin_state),
            "run_state": run_state,
            "pnode": Self::node_name(cfg, &inst.primary_node),
            "pnode_group_uuid": pgroup,
            "pnode_group_name": group_name(&pgroup),
            "snodes": snodes.iter().map(|s| Self::node_name(cfg, s)).collect::<Vec<_>>(),
            "snodes_group_uuids": sgroups,
            "snodes_group_names": sgroups.iter().map(group_name).collect::<Vec<_>>(),
            "os": inst.os,
            "nics": nics,
            "disk_template": super::disk_template(cfg, inst),
            "disks": disks,
            "hypervisor": inst.hypervisor,
            "network_port": inst.network_port,
            "hv_instance": to_obj(&inst.hvparams),
            "hv_actual": to_obj(&spec::hvparams(cfg, inst)),
            "be_instance": to_obj(&inst.beparams),
            "be_actual": to_obj(&spec::beparams(cfg, inst)),
            "os_instance": to_obj(&inst.osparams),
            "os_actual": to_obj(&os_actual),
            "serial_no": inst.serial_no,
            "mtime": inst.mtime,
            "ctime": inst.ctime,
            "uuid": inst.uuid,
        })
    }
}

impl LogicalUnit for LuInstanceQueryData {
    fn expand_names(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        self.op.instances = self
            .op
            .instances
            .iter()
            .map(|n| expand_instance_name(cfg, n))
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    fn declare_locks(&self, _cfg: &ConfigData) -> Vec<LockNeed> {
        if !self.op.use_locking {
            return Vec::new();
        }
        vec![LockNeed {
            level: Level::Instance,
            names: self.op.instances.clone(),
            mode: LockMode::Shared,
        }]
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), LuError> {
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let cfg = ctx.store.snapshot();
        let wanted: Vec<Instance> = if self.op.instances.is_empty() {
            cfg.instances.values().cloned().collect()
        } else {
            self.op
                .instances
                .iter()
                .map(|n| super::instance_named(&cfg, n).cloned())
                .collect::<Result<_, _>>()?
        };
        let mut out = Map::new();
        for inst in &wanted {
            out.insert(inst.name.as_str().to_string(), self.one(ctx, &cfg, inst));
        }
        Ok(Value::Object(out))
    }
}
