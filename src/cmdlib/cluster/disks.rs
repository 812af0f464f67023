//! Cluster-wide disk checks: `gnt-cluster verify-disks`
//! (`OP_CLUSTER_VERIFY_DISKS`, `OP_GROUP_VERIFY_DISKS`) and
//! `gnt-cluster repair-disk-sizes` (`OP_CLUSTER_REPAIR_DISK_SIZES`);
//! Ganeti 3.0's `LUClusterVerifyDisks`, `LUGroupVerifyDisks` and
//! `LUClusterRepairDiskSizes`.
//!
//! Run by masterd's job workers; every look at a disk is a node RPC
//! ([`proto::BLOCKDEV_STATUS`], [`proto::BLOCKDEV_GETSIZE`]), each disk
//! sent with the per-node DRBD parameters of
//! [`crate::cmdlib::instance::spec::disk_for_node`].
//!
//! **Verify.** Ganeti asks each node for its LVs (`lv_list`) and for the
//! DRBD devices that need activation. We ask each node for the status of
//! every disk of the group's instances that should be usable (disks
//! active, or the instance marked up) together with its leaf devices (a
//! DRBD disk's data and metadata volumes; any other disk is its own
//! leaf). That covers every disk template, not only LVM: a missing leaf
//! is a *missing volume*, a present leaf under a device that is absent,
//! faulty or disconnected means the instance *needs activate-disks*.
//! The result keeps Ganeti's 3-tuple `[node errors {node: message},
//! [instances needing activate-disks], {instance: [[node, volume], …]}]`,
//! with node names where Ganeti 3.0 puts node UUIDs. A volume is
//! `vg/lv` for LVM (the CLI prints `/dev/vg/lv`, as Ganeti) and the path
//! for file-based disks.
//!
//! Ganeti's `OP_CLUSTER_VERIFY_DISKS` submits one `OP_GROUP_VERIFY_DISKS`
//! job per group and returns `{"jobs": …}`; our job queue does not run
//! jobs an LU hands back (as for `OP_CLUSTER_VERIFY`), so it checks every
//! group (or the one named) itself and returns the merged 3-tuple. The
//! CLI accepts both forms.
//!
//! **Repair sizes.** Each primary node measures its instances' disks; a
//! size that differs from the config is corrected (and logged), and a
//! DRBD disk whose data child is recorded smaller than the disk is fixed
//! too. The result is Ganeti's list of `[instance, disk index, "size",
//! new size in MiB]`. Spindles (exclusive storage) are not measured.

use crate::cmdlib::instance::{self, spec};
use crate::cmdlib::{LockNeed, LogicalUnit, LuContext, LuError};
use crate::config::objects::{AdminState, ConfigData, Disk, Instance, Uuid};
use crate::error::ErrorKind;
use crate::locking::{Level, LockMode};
use crate::opcodes::{OpClusterRepairDiskSizes, OpClusterVerifyDisks, OpGroupVerifyDisks};
use crate::rpc::proto::{self, BlockdevsArgs, DiskSpec, DiskStatus};
use crate::rpc::Target;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// What a verify-disks run found (Ganeti's `LUGroupVerifyDisks` result).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiskReport {
    /// Node name → why its disks could not be checked.
    pub node_errors: BTreeMap<String, String>,
    /// Instances whose disks exist but are not (fully) active.
    pub need_activation: BTreeSet<String>,
    /// Instance name → `(node name, volume)` of each missing volume.
    pub missing: BTreeMap<String, Vec<(String, String)>>,
}

impl DiskReport {
    /// Ganeti's wire form: `[{node: msg}, [instance…], {instance: [[node, vol]…]}]`.
    pub fn to_json(&self) -> Value {
        json!([
            self.node_errors,
            self.need_activation.iter().collect::<Vec<_>>(),
            self.missing
                .iter()
                .map(|(i, v)| (i.clone(), v.iter().map(|(n, d)| json!([n, d])).collect()))
                .collect::<BTreeMap<String, Vec<Value>>>(),
        ])
    }

    fn merge(&mut self, other: DiskReport) {
        self.node_errors.extend(other.node_errors);
        self.need_activation.extend(other.need_activation);
        for (i, mut v) in other.missing {
            self.missing.entry(i).or_default().append(&mut v);
        }
    }
}

/// How a leaf volume is named in the report: `vg/lv` for LVM, the path
/// for file-based disks, the `logical_id` text otherwise.
pub fn volume_name(disk: &DiskSpec) -> String {
    let item = |i: usize| {
        disk.logical_id
            .get(i)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    match (disk.dev_type.as_str(), item(0), item(1)) {
        ("plain", Some(vg), Some(lv)) => format!("{vg}/{lv}"),
        ("file" | "sharedfile" | "blockdev" | "gluster", _, Some(path)) => path,
        _ => disk.logical_id.to_string(),
    }
}

/// The leaf devices of `disk`: its children, recursively, or itself.
fn leaves(disk: &DiskSpec) -> Vec<DiskSpec> {
    if disk.children.is_empty() {
        vec![disk.clone()]
    } else {
        disk.children.iter().flat_map(leaves).collect()
    }
}

/// Whether an instance's disks should be usable, so verify-disks looks
/// at them: Ganeti looks at `disks_active`; an instance marked up should
/// have them active too.
fn should_be_active(inst: &Instance) -> bool {
    inst.disks_active || inst.admin_state == AdminState::Up
}

/// The instances having a node in `group`, by name.
pub fn group_instances<'a>(cfg: &'a ConfigData, group: &Uuid) -> Vec<&'a Instance> {
    let mut out: Vec<&Instance> = cfg
        .instances
        .values()
        .filter(|i| {
            instance::instance_nodes(cfg, i)
                .iter()
                .any(|n| cfg.nodes.get(n).is_some_and(|n| n.group == *group))
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// One disk asked about on one node: the instance, the device, and the
/// index of its status and its leaves' in the node's answer.
struct Probe {
    instance: String,
    first: usize,
    /// The device has no children: its status is its leaf's.
    own_leaf: bool,
    leaf_names: Vec<String>,
}

/// Checks the disks of `instances` on their nodes (one
/// [`proto::BLOCKDEV_STATUS`] call per node, all nodes at once).
pub fn check_disks(
    ctx: &mut LuContext<'_>,
    cfg: &ConfigData,
    instances: &[&Instance],
) -> Result<DiskReport, LuError> {
    // node → (specs to ask about, what they mean)
    let mut per_node: BTreeMap<Uuid, (Vec<DiskSpec>, Vec<Probe>)> = BTreeMap::new();
    for inst in instances.iter().filter(|i| should_be_active(i)) {
        for (disk, nodes) in instance::disks_with_nodes(cfg, inst)? {
            for node in nodes {
                let d = spec::disk_for_node(cfg, &disk, &node);
                let (specs, probes) = per_node.entry(node).or_default();
                let first = specs.len();
                let lv = if d.children.is_empty() {
                    Vec::new()
                } else {
                    leaves(&d)
                };
                let own_leaf = lv.is_empty();
                let leaf_names: Vec<String> = if own_leaf {
                    vec![volume_name(&d)]
                } else {
                    lv.iter().map(volume_name).collect()
                };
                specs.push(d);
                specs.extend(lv);
                probes.push(Probe {
                    instance: inst.name.as_str().to_string(),
                    first,
                    own_leaf,
                    leaf_names,
                });
            }
        }
    }
    let mut calls: Vec<(Target, Value)> = Vec::new();
    let mut meta: Vec<Vec<Probe>> = Vec::new();
    for (node, (specs, probes)) in per_node {
        let tgt = instance::target_of(cfg, &node)?;
        if tgt.offline {
            continue;
        }
        let args = serde_json::to_value(BlockdevsArgs { disks: specs })
            .map_err(|e| LuError::Exec(format!("encoding blockdev_status arguments: {e}")))?;
        calls.push((tgt, args));
        meta.push(probes);
    }
    let answers = ctx
        .rpc
        .call_each(proto::BLOCKDEV_STATUS, &calls, instance::QUICK_TIMEOUT);
    let mut report = DiskReport::default();
    for ((node, answer), probes) in answers.into_iter().zip(meta) {
        let statuses: Vec<DiskStatus> =
            match answer.and_then(|v| instance::decode(proto::BLOCKDEV_STATUS, &node, v)) {
                Ok(s) => s,
                Err(e) => {
                    log::warn!("verify-disks: node={node} error getting disk status: {e}");
                    report.node_errors.insert(node, instance::rpc_msg(&e));
                    continue;
                }
            };
        for p in probes {
            judge(&mut report, &node, &p, &statuses);
        }
    }
    Ok(report)
}

/// Reads one disk's answer: missing leaves, or a device needing activation.
fn judge(report: &mut DiskReport, node: &str, p: &Probe, statuses: &[DiskStatus]) {
    let Some(top) = statuses.get(p.first) else {
        report
            .node_errors
            .insert(node.to_string(), "short answer to blockdev_status".into());
        return;
    };
    // A disk without children is its own leaf; otherwise its leaves'
    // answers follow its own.
    let leaf_status: Vec<Option<&DiskStatus>> = if p.own_leaf {
        vec![Some(top)]
    } else {
        (0..p.leaf_names.len())
            .map(|i| statuses.get(p.first + 1 + i))
            .collect()
    };
    let mut all_present = true;
    for (name, st) in p.leaf_names.iter().zip(leaf_status) {
        if !st.is_some_and(|s| s.present) {
            all_present = false;
            report
                .missing
                .entry(p.instance.clone())
                .or_default()
                .push((node.to_string(), name.clone()));
        }
    }
    // The volumes are there but the device on top is not usable:
    // activate-disks brings it up (Ganeti's `DrbdNeedsActivation`:
    // unattached, diskless or standalone).
    let not_syncing_but_degraded = top.is_degraded && top.sync_percent.is_none();
    if all_present && (!top.present || top.ldisk_status == "faulty" || not_syncing_but_degraded) {
        report.need_activation.insert(p.instance.clone());
    }
}

fn shared_locks(level: Level, names: Vec<String>) -> LockNeed {
    LockNeed {
        level,
        names,
        mode: LockMode::Shared,
    }
}

/// Shared instance and node locks over `instances` and `nodes`.
fn verify_locks(cfg: &ConfigData, groups: &[Uuid]) -> Vec<LockNeed> {
    let mut inames = Vec::new();
    let mut nodes = BTreeSet::new();
    for g in groups {
        for i in group_instances(cfg, g) {
            inames.push(i.name.as_str().to_string());
            for n in instance::instance_nodes(cfg, i) {
                if let Some(node) = cfg.nodes.get(&n) {
                    nodes.insert(node.name.as_str().to_string());
                }
            }
        }
        for n in cfg.nodes.values().filter(|n| n.group == *g) {
            nodes.insert(n.name.as_str().to_string());
        }
    }
    inames.sort();
    inames.dedup();
    vec![
        shared_locks(Level::Instance, inames),
        shared_locks(Level::Node, nodes.into_iter().collect()),
    ]
}

fn group_not_found(name: &str) -> LuError {
    LuError::prereq(ErrorKind::NoEnt, format!("Node group '{name}' not found"))
}

fn lookup_group(cfg: &ConfigData, name: &str) -> Option<Uuid> {
    cfg.group_by_name(name)
        .map(|(u, _)| u.clone())
        .or_else(|| cfg.nodegroups.keys().find(|u| u.as_str() == name).cloned())
}

/// `OP_GROUP_VERIFY_DISKS`: one group's disks.
pub struct LuGroupVerifyDisks {
    op: OpGroupVerifyDisks,
    group: Option<Uuid>,
}

impl LuGroupVerifyDisks {
    /// The LU for `op`.
    pub fn new(op: OpGroupVerifyDisks) -> Self {
        LuGroupVerifyDisks { op, group: None }
    }
}

impl LogicalUnit for LuGroupVerifyDisks {
    fn expand_names(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        self.group = Some(
            lookup_group(cfg, &self.op.group_name)
                .ok_or_else(|| group_not_found(&self.op.group_name))?,
        );
        Ok(())
    }

    fn declare_locks(&self, cfg: &ConfigData) -> Vec<LockNeed> {
        verify_locks(cfg, self.group.as_slice())
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        match &self.group {
            Some(g) if cfg.nodegroups.contains_key(g) => Ok(()),
            _ => Err(group_not_found(&self.op.group_name)),
        }
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let cfg = ctx.store.snapshot();
        let group = self
            .group
            .clone()
            .ok_or_else(|| LuError::Exec("verify-disks ran without its prerequisites".into()))?;
        let insts = group_instances(&cfg, &group);
        Ok(check_disks(ctx, &cfg, &insts)?.to_json())
    }
}

/// `OP_CLUSTER_VERIFY_DISKS`: every group's disks (or `group_name`'s), in
/// this one job.
pub struct LuClusterVerifyDisks {
    op: OpClusterVerifyDisks,
    groups: Vec<Uuid>,
}

impl LuClusterVerifyDisks {
    /// The LU for `op`.
    pub fn new(op: OpClusterVerifyDisks) -> Self {
        LuClusterVerifyDisks {
            op,
            groups: Vec::new(),
        }
    }
}

impl LogicalUnit for LuClusterVerifyDisks {
    fn expand_names(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        self.groups = match &self.op.group_name {
            Some(g) => vec![lookup_group(cfg, g).ok_or_else(|| group_not_found(g))?],
            None => cfg.nodegroups.keys().cloned().collect(),
        };
        Ok(())
    }

    fn declare_locks(&self, cfg: &ConfigData) -> Vec<LockNeed> {
        verify_locks(cfg, &self.groups)
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        self.groups.retain(|g| cfg.nodegroups.contains_key(g));
        if let (Some(name), true) = (&self.op.group_name, self.groups.is_empty()) {
            return Err(group_not_found(name));
        }
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let cfg = ctx.store.snapshot();
        let mut seen = BTreeSet::new();
        let mut report = DiskReport::default();
        for g in &self.groups {
            // An instance spanning two groups is checked once.
            let insts: Vec<&Instance> = group_instances(&cfg, g)
                .into_iter()
                .filter(|i| seen.insert(i.uuid.clone()))
                .collect();
            report.merge(check_disks(ctx, &cfg, &insts)?);
        }
        Ok(report.to_json())
    }
}

/// `OP_CLUSTER_REPAIR_DISK_SIZES`.
pub struct LuClusterRepairDiskSizes {
    op: OpClusterRepairDiskSizes,
    wanted: Vec<String>,
}

impl LuClusterRepairDiskSizes {
    /// The LU for `op`.
    pub fn new(op: OpClusterRepairDiskSizes) -> Self {
        LuClusterRepairDiskSizes {
            op,
            wanted: Vec::new(),
        }
    }
}

/// Ganeti's `_EnsureChildSizes`: a DRBD disk's data child must be at
/// least as large as the disk; returns whether something was changed
/// (and logs it).
fn ensure_child_sizes(disk: &mut Disk, log: &mut Vec<String>) -> bool {
    if disk.dev_type != "drbd" {
        return false;
    }
    let size = disk.size;
    let Some(child) = disk.children.first_mut() else {
        return false;
    };
    let mismatch = child.size < size;
    if mismatch {
        log.push(format!(
            " - INFO: Child disk has size {}, parent {size}, fixing",
            child.size
        ));
        child.size = size;
    }
    ensure_child_sizes(child, log) || mismatch
}

impl LogicalUnit for LuClusterRepairDiskSizes {
    fn expand_names(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        self.wanted = if self.op.instances.is_empty() {
            let mut all: Vec<String> = cfg
                .instances
                .values()
                .map(|i| i.name.as_str().to_string())
                .collect();
            all.sort();
            all
        } else {
            self.op
                .instances
                .iter()
                .map(|n| instance::expand_instance_name(cfg, n))
                .collect::<Result<_, _>>()?
        };
        Ok(())
    }

    fn declare_locks(&self, cfg: &ConfigData) -> Vec<LockNeed> {
        let mut nodes = BTreeSet::new();
        for name in &self.wanted {
            if let Some((_, i)) = cfg.instance_by_name(name) {
                if let Some(n) = cfg.nodes.get(&i.primary_node) {
                    nodes.insert(n.name.as_str().to_string());
                }
            }
        }
        vec![
            LockNeed {
                level: Level::Instance,
                names: self.wanted.clone(),
                mode: LockMode::Exclusive,
            },
            shared_locks(Level::NodeRes, nodes.into_iter().collect()),
        ]
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        for name in &self.wanted {
            instance::instance_named(cfg, name)?;
        }
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let cfg = ctx.store.snapshot();
        // primary node → [(instance name, disk index, disk uuid, spec)]
        let mut per_node: BTreeMap<Uuid, Vec<(String, usize, Uuid, DiskSpec)>> = BTreeMap::new();
        for name in &self.wanted {
            let inst = instance::instance_named(&cfg, name)?;
            let specs = spec::disk_specs(&cfg, inst)?;
            let entry = per_node.entry(inst.primary_node.clone()).or_default();
            for (idx, (s, u)) in specs.into_iter().zip(&inst.disks).enumerate() {
                let s = spec::disk_for_node(&cfg, &s, &inst.primary_node);
                entry.push((name.clone(), idx, u.clone(), s));
            }
        }
        let mut calls = Vec::new();
        let mut meta = Vec::new();
        for (node, disks) in per_node {
            if disks.is_empty() {
                continue;
            }
            let tgt = instance::target_of(&cfg, &node)?;
            let args = serde_json::to_value(BlockdevsArgs {
                disks: disks.iter().map(|d| d.3.clone()).collect(),
            })
            .map_err(|e| LuError::Exec(format!("encoding blockdev_getsize arguments: {e}")))?;
            calls.push((tgt, args));
            meta.push(disks);
        }
        let answers = ctx
            .rpc
            .call_each(proto::BLOCKDEV_GETSIZE, &calls, instance::QUICK_TIMEOUT);
        let mut changed = Vec::new();
        let mut fixes: Vec<(Uuid, u64)> = Vec::new();
        for ((node, answer), disks) in answers.into_iter().zip(meta) {
            let sizes: Vec<Option<u64>> = match answer
                .and_then(|v| instance::decode(proto::BLOCKDEV_GETSIZE, &node, v))
            {
                Ok(s) => s,
                Err(_) => {
                    ctx.log(format!(
                        " - WARNING: Failure in blockdev_getdimensions call to node {node}, ignoring"
                    ));
                    continue;
                }
            };
            if sizes.len() != disks.len() {
                ctx.log(format!(
                    " - WARNING: Invalid result from node {node}, ignoring node results"
                ));
                continue;
            }
            for ((iname, idx, duuid, spec), size) in disks.into_iter().zip(sizes) {
                let Some(size) = size else {
                    ctx.log(format!(
                        " - WARNING: Disk {idx} of instance {iname} did not return size information, ignoring"
                    ));
                    continue;
                };
                let mut new_size = spec.size_mib;
                if size != spec.size_mib {
                    ctx.log(format!(
                        " - INFO: Disk {idx} of instance {iname} has mismatched size, correcting: recorded {}, actual {size}",
                        spec.size_mib
                    ));
                    new_size = size;
                    changed.push(json!([iname, idx, "size", size]));
                }
                let mut probe = cfg.disks.get(&duuid).cloned().unwrap_or_default();
                probe.size = new_size;
                let mut lines = Vec::new();
                let child_fixed = ensure_child_sizes(&mut probe, &mut lines);
                for l in lines {
                    ctx.log(l);
                }
                if child_fixed {
                    changed.push(json!([iname, idx, "size", new_size]));
                }
                if new_size != spec.size_mib || child_fixed {
                    fixes.push((duuid, new_size));
                }
            }
        }
        if !fixes.is_empty() {
            ctx.update_config(move |c| {
                for (u, size) in fixes {
                    if let Some(d) = c.disks.get_mut(&u) {
                        d.size = size;
                        ensure_child_sizes(d, &mut Vec::new());
                        d.serial_no += 1;
                        d.mtime = instance::now();
                    }
                }
                Ok(())
            })?;
        }
        Ok(Value::Array(changed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdlib::fake_rpc::{prereq, TestCluster};
    use crate::cmdlib::OpOutcome;
    use crate::config::objects::LogicalId;

    fn ok_status(uuid: &str) -> DiskStatus {
        DiskStatus {
            uuid: uuid.into(),
            present: true,
            path: Some("/dev/x".into()),
            sync_percent: None,
            estimated_time_secs: None,
            is_degraded: false,
            ldisk_status: "ok".into(),
        }
    }

    fn missing_status(uuid: &str) -> DiskStatus {
        DiskStatus {
            present: false,
            path: None,
            is_degraded: true,
            ldisk_status: "unknown".into(),
            ..ok_status(uuid)
        }
    }

    fn success(out: OpOutcome) -> Value {
        match out {
            OpOutcome::Success(v) => v,
            other => panic!("expected success, got {other:?}"),
        }
    }

    fn disk_lv(c: &TestCluster, inst: &str) -> String {
        let cfg = c.config();
        let (_, i) = cfg.instance_by_name(inst).unwrap();
        match &cfg.disks[&i.disks[0]].logical_id {
            LogicalId::Pair(vg, lv) => format!("{vg}/{lv}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn verify_disks_reports_missing_volumes_and_dead_nodes() {
        // inst1, inst3 on node1; inst2 on node2; inst4 on node2 but down
        // with inactive disks, so not looked at.
        let mut cfg = crate::config::test_support::generated(2, 4);
        for i in cfg.instances.values_mut() {
            if i.name.as_str() == "inst4.example.com" {
                i.admin_state = AdminState::Down;
                i.disks_active = false;
            }
        }
        let c = TestCluster::with_config("verify-disks", cfg);
        c.rpc.answer(
            proto::BLOCKDEV_STATUS,
            "node1.example.com",
            Ok(json!([ok_status("a"), missing_status("b")])),
        );
        c.rpc.kill("node2.example.com");
        let (out, _) = c.run(OpClusterVerifyDisks::default());
        let v = success(out);
        assert!(
            v[0]["node2.example.com"]
                .as_str()
                .unwrap()
                .contains("Connection refused"),
            "{v}"
        );
        assert_eq!(v[1], json!([]));
        assert_eq!(
            v[2],
            json!({"inst3.example.com": [["node1.example.com", disk_lv(&c, "inst3.example.com")]]})
        );
        let calls = c.rpc.calls_of(proto::BLOCKDEV_STATUS);
        let on1 = &calls
            .iter()
            .find(|(n, _)| n == "node1.example.com")
            .unwrap()
            .1;
        assert_eq!(on1["disks"].as_array().unwrap().len(), 2, "{on1}");
        let on2 = &calls
            .iter()
            .find(|(n, _)| n == "node2.example.com")
            .unwrap()
            .1;
        assert_eq!(
            on2["disks"].as_array().unwrap().len(),
            1,
            "inst4 is skipped"
        );
    }

    #[test]
    fn group_verify_disks_finds_inactive_devices() {
        let c = TestCluster::new("group-verify-disks", 1, 1);
        // A degraded device that is not resyncing needs activation.
        let mut degraded = ok_status("a");
        degraded.is_degraded = true;
        c.rpc.answer(
            proto::BLOCKDEV_STATUS,
            "node1.example.com",
            Ok(json!([degraded])),
        );
        let group = c.config().nodegroups.values().next().unwrap().name.clone();
        let op = OpGroupVerifyDisks {
            group_name: group.as_str().to_string(),
            ..Default::default()
        };
        let v = success(c.run(op).0);
        assert_eq!(v, json!([{}, ["inst1.example.com"], {}]));
        let (kind, msg) = prereq(
            c.run(OpGroupVerifyDisks {
                group_name: "nosuch".into(),
                ..Default::default()
            })
            .0,
        );
        assert_eq!(kind, ErrorKind::NoEnt);
        assert!(msg.contains("nosuch"), "{msg}");
        let (kind, _) = prereq(
            c.run(OpClusterVerifyDisks {
                group_name: Some("nosuch".into()),
                ..Default::default()
            })
            .0,
        );
        assert_eq!(kind, ErrorKind::NoEnt);
    }

    #[test]
    fn drbd_leaves_tell_missing_from_inactive() {
        let p = Probe {
            instance: "i".into(),
            first: 0,
            own_leaf: false,
            leaf_names: vec!["vg/data".into(), "vg/meta".into()],
        };
        // Device down, both volumes there: activate-disks.
        let mut r = DiskReport::default();
        judge(
            &mut r,
            "n1",
            &p,
            &[missing_status("d"), ok_status("l1"), ok_status("l2")],
        );
        assert_eq!(r.need_activation, ["i".to_string()].into());
        assert!(r.missing.is_empty());
        // Meta volume gone: missing, and no activation (it cannot help).
        let mut r = DiskReport::default();
        judge(
            &mut r,
            "n1",
            &p,
            &[missing_status("d"), ok_status("l1"), missing_status("l2")],
        );
        assert!(r.need_activation.is_empty());
        assert_eq!(
            r.missing["i"],
            vec![("n1".to_string(), "vg/meta".to_string())]
        );
        // A resyncing device is fine.
        let mut syncing = ok_status("d");
        syncing.is_degraded = true;
        syncing.sync_percent = Some(10.0);
        let mut r = DiskReport::default();
        judge(
            &mut r,
            "n1",
            &p,
            &[syncing, ok_status("l1"), ok_status("l2")],
        );
        assert_eq!(r, DiskReport::default());
        // A short answer is the node's error.
        let mut r = DiskReport::default();
        judge(&mut r, "n1", &p, &[]);
        assert!(r.node_errors.contains_key("n1"));
    }

    #[test]
    fn volume_names() {
        let mut d = DiskSpec {
            uuid: "u".into(),
            name: None,
            iv_name: "disk/0".into(),
            dev_type: "plain".into(),
            logical_id: json!(["xenvg", "lv0"]),
            size_mib: 1,
            mode: "rw".into(),
            params: Default::default(),
            children: vec![],
        };
        assert_eq!(volume_name(&d), "xenvg/lv0");
        d.dev_type = "file".into();
        d.logical_id = json!(["loop", "/srv/ganeti/file-storage/i/disk0"]);
        assert_eq!(volume_name(&d), "/srv/ganeti/file-storage/i/disk0");
        d.dev_type = "ext".into();
        d.logical_id = json!(["prov", "vol"]);
        assert_eq!(volume_name(&d), r#"["prov","vol"]"#);
    }

    #[test]
    fn repair_disk_sizes_fixes_config_and_is_rerunnable() {
        let c = TestCluster::new("repair-sizes", 2, 3);
        c.rpc.answer(
            proto::BLOCKDEV_GETSIZE,
            "node1.example.com",
            Ok(json!([10240, 20480])),
        );
        c.rpc.answer(
            proto::BLOCKDEV_GETSIZE,
            "node2.example.com",
            Ok(json!([null])),
        );
        let serial = c.config().serial_no;
        let (out, log) = c.run(OpClusterRepairDiskSizes::default());
        assert_eq!(
            success(out),
            json!([["inst3.example.com", 0, "size", 20480]])
        );
        assert!(
            log.contains(&" - INFO: Disk 0 of instance inst3.example.com has mismatched size, correcting: recorded 10240, actual 20480".to_string()),
            "{log:?}"
        );
        assert!(
            log.contains(&" - WARNING: Disk 0 of instance inst2.example.com did not return size information, ignoring".to_string()),
            "{log:?}"
        );
        let cfg = c.config();
        assert_eq!(cfg.serial_no, serial + 1);
        let (_, i3) = cfg.instance_by_name("inst3.example.com").unwrap();
        assert_eq!(cfg.disks[&i3.disks[0]].size, 20480);
        // Run again: nothing left to fix, config untouched.
        c.rpc.answer(
            proto::BLOCKDEV_GETSIZE,
            "node1.example.com",
            Ok(json!([10240, 20480])),
        );
        let (out, _) = c.run(OpClusterRepairDiskSizes::default());
        assert_eq!(success(out), json!([]));
        assert_eq!(c.config().serial_no, serial + 1);
        // Only the named instance's primary is asked.
        c.rpc.clear();
        let (out, _) = c.run(OpClusterRepairDiskSizes {
            instances: vec!["inst2".into()],
            ..Default::default()
        });
        assert_eq!(success(out), json!([]));
        let calls = c.rpc.calls_of(proto::BLOCKDEV_GETSIZE);
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].0, "node2.example.com");
        // A bad answer is a warning, not a failure.
        c.rpc.answer(
            proto::BLOCKDEV_GETSIZE,
            "node2.example.com",
            Ok(json!([1, 2])),
        );
        let (out, log) = c.run(OpClusterRepairDiskSizes {
            instances: vec!["inst2".into()],
            ..Default::default()
        });
        assert_eq!(success(out), json!([]));
        assert!(
            log.iter()
                .any(|l| l.contains("Invalid result from node node2.example.com")),
            "{log:?}"
        );
        let (kind, _) = prereq(
            c.run(OpClusterRepairDiskSizes {
                instances: vec!["ghost".into()],
                ..Default::default()
            })
            .0,
        );
        assert_eq!(kind, ErrorKind::NoEnt);
    }

    #[test]
    fn drbd_data_child_follows_the_disk_size() {
        let child = |size| Disk {
            dev_type: "plain".into(),
            size,
            ..Disk::default()
        };
        let mut d = Disk {
            dev_type: "drbd".into(),
            size: 2048,
            children: vec![child(1024), child(128)],
            ..Disk::default()
        };
        let mut log = Vec::new();
        assert!(ensure_child_sizes(&mut d, &mut log));
        assert_eq!(d.children[0].size, 2048);
        assert_eq!(
            d.children[1].size, 128,
            "the metadata volume keeps its size"
        );
        assert_eq!(
            log,
            vec![" - INFO: Child disk has size 1024, parent 2048, fixing"]
        );
        assert!(!ensure_child_sizes(&mut d, &mut log));
    }
}
