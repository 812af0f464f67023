//! `OP_INSTANCE_RECREATE_DISKS` (`gnt-instance recreate-disks`): creates
//! an instance's disks again, empty, where they were lost (Ganeti's
//! `LUInstanceRecreateDisks`): all disks or the chosen ones, optionally
//! with a new size or access mode, optionally on new nodes.
//!
//! The instance must be down (unless it moves away from an offline
//! primary). The config is updated first (sizes, modes, nodes), then each
//! chosen disk is created on its nodes; when a creation fails, the disks
//! created by this run are removed again and the opcode can be re-run.
//! Choosing nodes with an iallocator and moving DRBD disks (new minors)
//! are not built yet and are refused by name. Like every LU this asks the
//! nodes (`blockdev_create`); it never touches a block device itself.

use super::modify::devices::{blockdev_args, disk_nodes, remove_from};
use super::modify::{check_admin_state, check_not_running};
use super::{
    add_node_locks, call, disk_template, expand_instance_name, instance_locks, instance_named,
    instance_nodes, node_by_uuid, target_of, SLOW_TIMEOUT,
};
use crate::cmdlib::node::expand_node_name;
use crate::cmdlib::{LockNeed, LogicalUnit, LuContext, LuError};
use crate::config::objects::{AdminState, ConfigData, Disk, DiskMode, Instance, Uuid};
use crate::config::params;
use crate::config::ConfigError;
use crate::error::ErrorKind;
use crate::locking::LockMode;
use crate::opcodes::OpInstanceRecreateDisks;
use serde_json::Value;
use std::collections::BTreeMap;

fn inval(msg: impl Into<String>) -> LuError {
    LuError::prereq(ErrorKind::Inval, msg)
}

/// Changes asked for one disk (Ganeti's `_MODIFYABLE`: size, mode, spindles).
#[derive(Debug, Clone, Default, PartialEq)]
struct DiskChange {
    size_mib: Option<u64>,
    mode: Option<DiskMode>,
    spindles: Option<u32>,
}

/// What the prerequisites established.
#[derive(Debug, Clone)]
struct Plan {
    inst: Instance,
    /// Disk index → changes; the disks to recreate.
    disks: BTreeMap<usize, DiskChange>,
    /// New node UUIDs (primary first), if the nodes change.
    nodes: Option<Vec<Uuid>>,
    /// Whether the old primary is offline and the nodes change (then
    /// nobody can tell whether the instance runs).
    old_primary_offline: bool,
}

/// `OP_INSTANCE_RECREATE_DISKS`.
pub struct LuInstanceRecreateDisks {
    op: OpInstanceRecreateDisks,
    /// Index → changes, from the opcode (empty: all disks).
    wanted: BTreeMap<usize, DiskChange>,
    plan: Option<Plan>,
}

impl LuInstanceRecreateDisks {
    /// The LU for `op`.
    pub fn new(op: OpInstanceRecreateDisks) -> Self {
        LuInstanceRecreateDisks {
            op,
            wanted: BTreeMap::new(),
            plan: None,
        }
    }
}

fn parse_change(idx: usize, p: &serde_json::Map<String, Value>) -> Result<DiskChange, LuError> {
    let mut bad: Vec<&str> = p
        .keys()
        .map(String::as_str)
        .filter(|k| !["size", "mode", "spindles"].contains(k))
        .collect();
    if !bad.is_empty() {
        bad.sort_unstable();
        return Err(inval(format!(
            "Parameters for disk {idx} try to change unmodifyable parameter(s): {}",
            bad.join(", ")
        )));
    }
    let size_mib = match p.get("size") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.as_u64()
                .filter(|s| *s > 0)
                .ok_or_else(|| inval(format!("Invalid disk size '{n}' for disk {idx}")))?,
        ),
        Some(Value::String(s)) => Some(
            params::parse_unit(s)
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| inval(format!("Invalid disk size '{s}' for disk {idx}")))?,
        ),
        Some(other) => return Err(inval(format!("Invalid disk size '{other}' for disk {idx}"))),
    };
    let mode = match p.get("mode").and_then(Value::as_str) {
        None => None,
        Some("rw") => Some(DiskMode::ReadWrite),
        Some("ro") => Some(DiskMode::ReadOnly),
        Some(other) => return Err(inval(format!("Invalid disk access mode '{other}'"))),
    };
    let spindles = match p.get("spindles") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|s| u32::try_from(s).ok())
                .ok_or_else(|| inval(format!("Invalid spindles '{v}' for disk {idx}")))?,
        ),
    };
    Ok(DiskChange {
        size_mib,
        mode,
        spindles,
    })
}

impl LogicalUnit for LuInstanceRecreateDisks {
    fn expand_names(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        // Ganeti's CheckArguments: indices (the older form) or
        // [index, params] pairs, each disk once.
        let mut seen = BTreeMap::new();
        let mut dupes = Vec::new();
        for d in &self.op.disks {
            let (idx, change) = match d {
                Value::Number(n) => (n.as_u64(), DiskChange::default()),
                Value::Array(pair) => match pair.as_slice() {
                    [Value::Number(n), Value::Object(p)] => {
                        let idx = n.as_u64().unwrap_or(u64::MAX);
                        (
                            n.as_u64(),
                            parse_change(usize::try_from(idx).unwrap_or(usize::MAX), p)?,
                        )
                    }
                    _ => (None, DiskChange::default()),
                },
                _ => (None, DiskChange::default()),
            };
            let idx = idx
                .and_then(|i| usize::try_from(i).ok())
                .ok_or_else(|| inval(format!("Invalid disk specification {d}")))?;
            if seen.insert(idx, change).is_some() {
                dupes.push(idx.to_string());
            }
        }
        if !dupes.is_empty() {
            return Err(inval(format!(
                "Some disks have been specified more than once: {}",
                dupes.join(", ")
            )));
        }
        self.wanted = seen;
        if let Some(ia) = &self.op.iallocator {
            if !self.op.nodes.is_empty() {
                return Err(inval(
                    "Only one of the options 'iallocator' and 'nodes' may be given",
                ));
            }
            return Err(inval(format!(
                "Choosing new nodes with an iallocator ('{ia}') is not supported yet in ganeti-rs; give the nodes with -n"
            )));
        }
        self.op.instance_name = expand_instance_name(cfg, &self.op.instance_name)?;
        self.op.nodes = self
            .op
            .nodes
            .iter()
            .map(|n| expand_node_name(cfg, n))
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    fn declare_locks(&self, cfg: &ConfigData) -> Vec<LockNeed> {
        let mut needs = instance_locks(cfg, &self.op.instance_name, LockMode::Exclusive);
        for n in &self.op.nodes {
            add_node_locks(&mut needs, n);
        }
        needs
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        let inst = instance_named(cfg, &self.op.instance_name)?.clone();
        let old_nodes = instance_nodes(cfg, &inst);
        let nodes = if self.op.nodes.is_empty() {
            None
        } else {
            if self.op.nodes.len() != old_nodes.len() {
                return Err(inval(format!(
                    "Instance {} currently has {} nodes, but {} replacement nodes were specified",
                    inst.name,
                    old_nodes.len(),
                    self.op.nodes.len()
                )));
            }
            let uuids: Vec<Uuid> = self
                .op
                .nodes
                .iter()
                .map(|n| {
                    cfg.node_by_name(n).map(|(u, _)| u.clone()).ok_or_else(|| {
                        LuError::prereq(ErrorKind::NoEnt, format!("Node '{n}' not known"))
                    })
                })
                .collect::<Result<_, _>>()?;
            Some(uuids)
        };
        let primary = nodes
            .as_ref()
            .and_then(|n| n.first())
            .unwrap_or(&inst.primary_node);
        let pnode = node_by_uuid(cfg, primary)?;
        if pnode.offline {
            return Err(LuError::prereq(
                ErrorKind::State,
                format!("Can't use offline node: {}", pnode.name),
            ));
        }
        if inst.disks.is_empty() {
            return Err(inval(format!(
                "Instance '{}' has no disks",
                self.op.instance_name
            )));
        }
        let template = disk_template(cfg, &inst);
        if nodes.is_some() && template == "drbd" {
            return Err(inval(
                "Recreating drbd disks on new nodes is not supported yet in ganeti-rs (new DRBD minors)",
            ));
        }
        let old_primary_offline = node_by_uuid(cfg, &inst.primary_node)?.offline;
        let skip_state = nodes.is_some() && old_primary_offline;
        if !skip_state {
            check_admin_state(
                &inst,
                &[AdminState::Down, AdminState::Offline],
                "cannot recreate disks",
            )?;
        }
        let disks: BTreeMap<usize, DiskChange> = if self.wanted.is_empty() {
            (0..inst.disks.len())
                .map(|i| (i, DiskChange::default()))
                .collect()
        } else {
            self.wanted.clone()
        };
        if let Some(max) = disks.keys().next_back() {
            if *max >= inst.disks.len() {
                return Err(inval(format!("Invalid disk index '{max}'")));
            }
        }
        if nodes.is_some() && disks.len() != inst.disks.len() {
            return Err(inval(
                "Can't recreate disks partially and change the nodes at the same time",
            ));
        }
        self.plan = Some(Plan {
            inst,
            disks,
            nodes,
            old_primary_offline,
        });
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let plan = self
            .plan
            .clone()
            .ok_or_else(|| LuError::Exec("recreate-disks ran without its prerequisites".into()))?;
        let cfg = ctx.store.snapshot();
        if !(plan.nodes.is_some() && plan.old_primary_offline) {
            check_not_running(ctx, &cfg, &plan.inst, "cannot recreate disks")?;
        }
        if plan.nodes.is_some() {
            ctx.log(
                "WARNING: Changing the instance's nodes, you will have to remove any disks left on the older nodes manually",
            );
        }
        // Config first (sizes, modes, nodes), in one update.
        let (p, iu, name) = (
            plan.clone(),
            plan.inst.uuid.clone(),
            plan.inst.name.to_string(),
        );
        ctx.update_config(move |c| {
            let disk_uuids = c
                .instances
                .get(&iu)
                .map(|i| i.disks.clone())
                .ok_or_else(|| ConfigError::Update {
                    reason: format!("Instance '{name}' disappeared from the cluster"),
                })?;
            for (idx, change) in &p.disks {
                let Some(d) = disk_uuids.get(*idx).and_then(|u| c.disks.get_mut(u)) else {
                    continue;
                };
                if let Some(s) = change.size_mib {
                    d.size = s;
                }
                if let Some(m) = change.mode {
                    d.mode = m;
                }
                if change.spindles.is_some() {
                    d.spindles = change.spindles;
                }
                d.serial_no += 1;
                d.mtime = super::now();
            }
            if let Some(nodes) = &p.nodes {
                for u in &disk_uuids {
                    if let Some(d) = c.disks.get_mut(u) {
                        if !d.nodes.is_empty() {
                            d.nodes = nodes.clone();
                        }
                    }
                }
                if let Some(i) = c.instances.get_mut(&iu) {
                    i.primary_node = nodes[0].clone();
                }
            }
            if let Some(i) = c.instances.get_mut(&iu) {
                i.serial_no += 1;
                i.mtime = super::now();
            }
            Ok(())
        })?;
        let cfg = ctx.store.snapshot();
        let inst = cfg
            .instances
            .get(&plan.inst.uuid)
            .cloned()
            .ok_or_else(|| LuError::Exec(format!("Instance {} disappeared", plan.inst.name)))?;
        let mut created: Vec<(Disk, Vec<Uuid>)> = Vec::new();
        for idx in plan.disks.keys() {
            let Some(disk) = inst.disks.get(*idx).and_then(|u| cfg.disks.get(u)).cloned() else {
                continue;
            };
            let mut done = Vec::new();
            for node in disk_nodes(&disk, &inst) {
                let tgt = target_of(&cfg, &node)?;
                ctx.log(format!("* creating {} on node {}", disk.iv_name, tgt.name));
                let args = blockdev_args(&cfg, &inst, &disk, &node);
                if let Err(e) = call(
                    ctx,
                    crate::rpc::proto::BLOCKDEV_CREATE,
                    &tgt,
                    &args,
                    SLOW_TIMEOUT,
                ) {
                    created.push((disk.clone(), done));
                    for (d, nodes) in &created {
                        for w in remove_from(ctx, &cfg, &inst, d, nodes) {
                            ctx.log(format!("WARNING: {w}"));
                        }
                    }
                    return Err(LuError::Exec(super::create_failed(
                        &disk.iv_name,
                        &tgt.name,
                        inst.name.as_str(),
                        &e,
                    )));
                }
                done.push(node);
            }
            created.push((disk, done));
        }
        Ok(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use crate::cmdlib::fake_rpc::{exec_err, prereq, TestCluster};
    use crate::cmdlib::OpOutcome;
    use crate::config::objects::{AdminState, DiskMode};
    use crate::error::ErrorKind;
    use crate::opcodes::{OpInstanceRecreateDisks, OpInstanceSetParams};
    use crate::rpc::proto;
    use serde_json::{json, Value};

    const INST: &str = "inst1.example.com";

    fn cluster(tag: &str) -> TestCluster {
        TestCluster::with_stopped_instance(tag)
    }

    fn op(disks: Value, nodes: &[&str]) -> OpInstanceRecreateDisks {
        OpInstanceRecreateDisks {
            instance_name: "inst1".into(),
            disks: disks.as_array().unwrap().clone(),
            nodes: nodes.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn instance(c: &TestCluster) -> crate::config::objects::Instance {
        c.config().instance_by_name(INST).unwrap().1.clone()
    }

    #[test]
    fn recreates_all_or_chosen_disks_with_changes() {
        let c = cluster("recreate");
        let (out, log) = c.run(op(json!([]), &[]));
        assert_eq!(out, OpOutcome::Success(Value::Null), "{log:?}");
        let creates = c.rpc.calls_of(proto::BLOCKDEV_CREATE);
        assert_eq!(creates.len(), 1);
        assert_eq!(creates[0].0, "node1.example.com");
        assert_eq!(creates[0].1["disk"]["iv_name"], "disk/0");
        assert_eq!(creates[0].1["on_primary"], true);
        // Twice is fine too (the node decides whether the disk exists).
        assert!(matches!(
            c.run(op(json!([0]), &[])).0,
            OpOutcome::Success(_)
        ));
        c.rpc.clear();
        let (out, _) = c.run(op(json!([[0, {"size": 2048, "mode": "ro"}]]), &[]));
        assert_eq!(out, OpOutcome::Success(Value::Null));
        let creates = c.rpc.calls_of(proto::BLOCKDEV_CREATE);
        assert_eq!(creates[0].1["disk"]["size_mib"], 2048);
        let cfg = c.config();
        let d = &cfg.disks[&instance(&c).disks[0]];
        assert_eq!((d.size, d.mode), (2048, DiskMode::ReadOnly));
    }

    #[test]
    fn new_nodes_move_the_instance() {
        let c = cluster("recreate-nodes");
        let (out, log) = c.run(op(json!([]), &["node2"]));
        assert_eq!(out, OpOutcome::Success(Value::Null), "{log:?}");
        assert!(
            log.iter()
                .any(|l| l.contains("remove any disks left on the older nodes manually")),
            "{log:?}"
        );
        let cfg = c.config();
        let i = instance(&c);
        let (n2, _) = cfg.node_by_name("node2.example.com").unwrap();
        assert_eq!(&i.primary_node, n2);
        assert_eq!(&cfg.disks[&i.disks[0]].nodes, &vec![n2.clone()]);
        let creates = c.rpc.calls_of(proto::BLOCKDEV_CREATE);
        assert_eq!(creates.len(), 1);
        assert_eq!(creates[0].0, "node2.example.com");
        crate::config::validate::validate(&cfg).unwrap();
    }

    #[test]
    fn refusals_name_the_problem() {
        let c = cluster("recreate-refuse");
        for (o, kind, want) in [
            (
                op(json!([3]), &[]),
                ErrorKind::Inval,
                "Invalid disk index '3'".to_string(),
            ),
            (
                op(json!([0, 0]), &[]),
                ErrorKind::Inval,
                "Some disks have been specified more than once: 0".to_string(),
            ),
            (
                op(json!([[0, {"vg": "other", "adopt": "x"}]]), &[]),
                ErrorKind::Inval,
                "Parameters for disk 0 try to change unmodifyable parameter(s): adopt, vg"
                    .to_string(),
            ),
            (
                op(json!([]), &["node1", "node2"]),
                ErrorKind::Inval,
                format!(
                    "Instance {INST} currently has 1 nodes, but 2 replacement nodes were specified"
                ),
            ),
            (
                op(json!([]), &["node9"]),
                ErrorKind::NoEnt,
                "Node 'node9' not known".to_string(),
            ),
        ] {
            let (k, m) = prereq(c.run(o).0);
            assert_eq!((k, m.as_str()), (kind, want.as_str()));
        }
        let (_, m) = prereq(
            c.run(OpInstanceRecreateDisks {
                iallocator: Some("hail".into()),
                ..op(json!([]), &[])
            })
            .0,
        );
        assert!(m.contains("not supported yet"), "{m}");
        // A second disk: partial recreation cannot move the instance.
        let out = c.run(OpInstanceSetParams {
            instance_name: "inst1".into(),
            disks: vec![json!(["add", -1, {"size": 64}])],
            ..Default::default()
        });
        assert!(matches!(out.0, OpOutcome::Success(_)), "{out:?}");
        let (_, m) = prereq(c.run(op(json!([1]), &["node2"])).0);
        assert_eq!(
            m,
            "Can't recreate disks partially and change the nodes at the same time"
        );
        c.set_admin_state(AdminState::Up);
        let (k, m) = prereq(c.run(op(json!([]), &[])).0);
        assert_eq!(k, ErrorKind::State);
        assert_eq!(
            m,
            format!("Instance '{INST}' is marked to be up, cannot recreate disks")
        );
        assert!(
            c.rpc.calls_of(proto::BLOCKDEV_CREATE).len() == 1,
            "only the added disk was created"
        );
    }

    #[test]
    fn a_failed_creation_removes_what_this_run_created() {
        // A second disk that lives on node2, so its creation can fail
        // after the first one's succeeded.
        let mut cfg = crate::config::test_support::generated(2, 1);
        let n2 = cfg.node_by_name("node2.example.com").unwrap().0.clone();
        let inst = cfg.instances.values_mut().next().unwrap();
        inst.admin_state = AdminState::Down;
        let mut second = cfg.disks[&inst.disks[0]].clone();
        second.uuid = crate::config::objects::Uuid::generate();
        second.iv_name = "disk/1".into();
        second.nodes = vec![n2];
        inst.disks.push(second.uuid.clone());
        cfg.disks.insert(second.uuid.clone(), second);
        let c = TestCluster::with_config("recreate-fail", cfg);
        c.rpc.answer(
            proto::BLOCKDEV_CREATE,
            "node2.example.com",
            Err("disk full".into()),
        );
        let m = exec_err(c.run(op(json!([]), &[])).0);
        assert!(
            m.starts_with(&format!(
                "Can't create block device disk/1 on node node2.example.com for instance {INST}"
            )),
            "{m}"
        );
        assert!(m.ends_with("disk full"), "{m}");
        let removed = c.rpc.calls_of(proto::BLOCKDEV_REMOVE);
        assert_eq!(removed.len(), 1, "{removed:?}");
        assert_eq!(removed[0].0, "node1.example.com");
        assert_eq!(removed[0].1["disk"]["iv_name"], "disk/0");
    }
}
