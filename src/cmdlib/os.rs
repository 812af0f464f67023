//! `OP_OS_DIAGNOSE` (`gnt-os list|diagnose|info`): asks every online
//! vm_capable node which OS definitions it has (`os_diagnose`) and merges
//! the answers like Ganeti's `OsQuery` (`cmdlib/operating_system.py`): an OS
//! is valid only when its first definition is valid on every node that
//! answered; variants, parameters and API versions are what all those nodes
//! agree on; hidden/blacklisted and the per-OS parameters come from the
//! cluster config. Nodes whose call failed are left out rather than making
//! every OS invalid.

use crate::cmdlib::{LogicalUnit, LuContext, LuError};
use crate::config::objects::ConfigData;
use crate::error::ErrorKind;
use crate::opcodes::os::OpOsDiagnose;
use crate::rpc::proto::{self, OsInfo};
use crate::rpc::Target;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How long a node may take to scan its OS search path.
const DIAGNOSE_TIMEOUT: Duration = Duration::from_secs(60);

/// The fields of the `os` query (Ganeti's `_BuildOsFields`).
pub const OS_FIELDS: &[&str] = &[
    "name",
    "valid",
    "hidden",
    "blacklisted",
    "variants",
    "api_versions",
    "parameters",
    "node_status",
    "os_hvp",
    "osparams",
    "trusted",
];

/// One OS as the cluster sees it (Ganeti's `query.OsInfo`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterOs {
    /// Name, without variant.
    pub name: String,
    /// Valid on every node that answered.
    pub valid: bool,
    /// In the cluster's `hidden_os`.
    pub hidden: bool,
    /// In the cluster's `blacklisted_os`.
    pub blacklisted: bool,
    /// Variants every node has (nice-sorted).
    pub variants: Vec<String>,
    /// API versions every node speaks (sorted).
    pub api_versions: Vec<u32>,
    /// Parameters every node declares (sorted by name).
    pub parameters: Vec<(String, String)>,
    /// Node name → every definition of that name on it, the used one first.
    pub node_status: BTreeMap<String, Vec<OsInfo>>,
    /// Per-OS hypervisor parameters from the cluster (`os+variant` → hv → params).
    pub os_hvp: Map<String, Value>,
    /// Per-OS parameters from the cluster (`os+variant` → params).
    pub osparams: Map<String, Value>,
    /// No node needs the OS sandboxed.
    pub trusted: bool,
}

impl ClusterOs {
    /// The value of query field `field` (one of [`OS_FIELDS`]).
    pub fn field(&self, field: &str) -> Value {
        match field {
            "name" => json!(self.name),
            "valid" => json!(self.valid),
            "hidden" => json!(self.hidden),
            "blacklisted" => json!(self.blacklisted),
            "variants" => json!(self.variants),
            "api_versions" => json!(self.api_versions),
            "parameters" => json!(self.parameters),
            "node_status" => Value::Object(
                self.node_status
                    .iter()
                    .map(|(node, defs)| {
                        let rows: Vec<Value> = defs
                            .iter()
                            .map(|d| {
                                json!([
                                    d.path,
                                    d.valid,
                                    d.diagnose,
                                    d.variants,
                                    d.parameters,
                                    d.api_versions,
                                    d.trusted
                                ])
                            })
                            .collect();
                        (node.clone(), Value::Array(rows))
                    })
                    .collect(),
            ),
            "os_hvp" => Value::Object(self.os_hvp.clone()),
            "osparams" => Value::Object(self.osparams.clone()),
            "trusted" => json!(self.trusted),
            _ => Value::Null,
        }
    }
}

/// Merges per-node `os_diagnose` answers (in node order; failed nodes
/// already dropped) with the cluster's OS settings.
pub fn merge(cfg: &ConfigData, answers: &[(String, Vec<OsInfo>)]) -> Vec<ClusterOs> {
    // OS name → node → definitions, every answering node present.
    let mut by_os: BTreeMap<String, Vec<(String, Vec<OsInfo>)>> = BTreeMap::new();
    for (_, list) in answers {
        for info in list {
            by_os.entry(info.name.clone()).or_insert_with(|| {
                answers
                    .iter()
                    .map(|(n, _)| (n.clone(), Vec::new()))
                    .collect()
            });
        }
    }
    for (node, list) in answers {
        for info in list {
            if let Some(nodes) = by_os.get_mut(&info.name) {
                if let Some((_, defs)) = nodes.iter_mut().find(|(n, _)| n == node) {
                    defs.push(info.clone());
                }
            }
        }
    }
    let cluster = &cfg.cluster;
    let mut out = Vec::new();
    for (name, nodes) in by_os {
        let mut valid = true;
        let mut variants: BTreeSet<String> = BTreeSet::new();
        let mut parameters: BTreeSet<(String, String)> = BTreeSet::new();
        let mut api_versions: BTreeSet<u32> = BTreeSet::new();
        let mut trusted = true;
        for (idx, (_, defs)) in nodes.iter().enumerate() {
            let Some(first) = defs.first().filter(|d| d.valid) else {
                valid = false;
                break;
            };
            let (v, p, a): (BTreeSet<_>, BTreeSet<_>, BTreeSet<_>) = (
                first.variants.iter().cloned().collect(),
                first.parameters.iter().cloned().collect(),
                first.api_versions.iter().copied().collect(),
            );
            if idx == 0 {
                (variants, parameters, api_versions) = (v, p, a);
            } else {
                variants = variants.intersection(&v).cloned().collect();
                parameters = parameters.intersection(&p).cloned().collect();
                api_versions = api_versions.intersection(&a).copied().collect();
            }
            trusted &= first.trusted;
        }
        let mut variants: Vec<String> = variants.into_iter().collect();
        crate::query::nice_sort(&mut variants);
        // Ganeti looks up `os+variant`; the bare name is where settings
        // for OSes without variants live, so it is shown too.
        let mut keys: Vec<String> = vec![name.clone()];
        keys.extend(variants.iter().map(|v| format!("{name}+{v}")));
        let mut os_hvp = Map::new();
        let mut osparams = Map::new();
        for k in &keys {
            if let Some(h) = cluster.os_hvp.get(k) {
                os_hvp.insert(k.clone(), json!(h));
            }
            if let Some(p) = cluster.osparams.get(k) {
                osparams.insert(k.clone(), json!(p));
            }
        }
        out.push(ClusterOs {
            hidden: cluster.hidden_os.contains(&name),
            blacklisted: cluster.blacklisted_os.contains(&name),
            valid,
            variants,
            api_versions: api_versions.into_iter().collect(),
            parameters: parameters.into_iter().collect(),
            node_status: nodes.into_iter().collect(),
            os_hvp,
            osparams,
            trusted,
            name,
        });
    }
    let mut names: Vec<String> = out.iter().map(|o| o.name.clone()).collect();
    crate::query::nice_sort(&mut names);
    names
        .iter()
        .filter_map(|n| out.iter().find(|o| &o.name == n).cloned())
        .collect()
}

/// `OP_OS_DIAGNOSE`: the old-style query (a row of values per OS, in the
/// order of `output_fields`). Like Ganeti, hidden, blacklisted and invalid
/// OSes are left out unless the matching field is asked for.
pub struct LuOsDiagnose {
    op: OpOsDiagnose,
}

impl LuOsDiagnose {
    /// The LU for `op`.
    pub fn new(op: OpOsDiagnose) -> Self {
        LuOsDiagnose { op }
    }

    fn shown(&self, os: &ClusterOs) -> bool {
        let asked = |f: &str| self.op.output_fields.iter().any(|x| x == f);
        (self.op.names.is_empty() || self.op.names.contains(&os.name))
            && (asked("hidden") || !os.hidden)
            && (asked("blacklisted") || !os.blacklisted)
            && (asked("valid") || os.valid)
    }
}

impl LogicalUnit for LuOsDiagnose {
    fn requires_bgl(&self) -> bool {
        false
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), LuError> {
        let unknown: Vec<&str> = self
            .op
            .output_fields
            .iter()
            .map(String::as_str)
            .filter(|f| !OS_FIELDS.contains(f))
            .collect();
        if !unknown.is_empty() {
            return Err(LuError::prereq(
                ErrorKind::Inval,
                format!("Unknown output fields selected: {}", unknown.join(", ")),
            ));
        }
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let cfg = ctx.store.snapshot();
        let calls: Vec<(Target, Value)> = cfg
            .nodes
            .values()
            .filter(|n| !n.offline && n.vm_capable)
            .map(|n| {
                (
                    Target::new(n.name.as_str(), n.primary_ip.clone()),
                    // The contract's body is a JSON object (docs/rpc.md);
                    // noded answers 400 to `null`.
                    Value::Object(serde_json::Map::new()),
                )
            })
            .collect();
        let mut answers = Vec::new();
        for (node, result) in ctx
            .rpc
            .call_each(proto::OS_DIAGNOSE, &calls, DIAGNOSE_TIMEOUT)
        {
            let parsed = result.map_err(|e| crate::error::chain(&e)).and_then(|v| {
                if v.is_null() {
                    return Ok(Vec::new());
                }
                serde_json::from_value::<Vec<OsInfo>>(v)
                    .map_err(|e| format!("malformed os_diagnose answer: {e}"))
            });
            match parsed {
                Ok(list) => answers.push((node, list)),
                Err(e) => ctx.log(format!("Warning: node {node}: cannot diagnose OSes: {e}")),
            }
        }
        let merged = merge(&cfg, &answers);
        let missing: Vec<&str> = self
            .op
            .names
            .iter()
            .filter(|n| !merged.iter().any(|o| &o.name == *n))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(LuError::Exec(format!(
                "OS not found on any node: {}",
                missing.join(", ")
            )));
        }
        let rows: Vec<Value> = merged
            .iter()
            .filter(|os| self.shown(os))
            .map(|os| Value::Array(self.op.output_fields.iter().map(|f| os.field(f)).collect()))
            .collect();
        Ok(Value::Array(rows))
    }
}

/// Applies `gnt-os modify`'s part of `OP_CLUSTER_SET_PARAMS` to the
/// cluster (Ganeti's `LUClusterSetParams`): per-OS hypervisor parameters are
/// merged per hypervisor (a `null` hypervisor entry drops it), OS parameters
/// are merged with `null` removing a key (an OS left with none is dropped),
/// and `hidden_os`/`blacklisted_os` add or remove names (re-adding or
/// removing an absent name changes nothing).
pub fn apply_cluster_os_changes(
    c: &mut crate::config::objects::Cluster,
    op: &crate::opcodes::cluster::OpClusterSetParams,
) -> Result<(), String> {
    use crate::config::objects::ParamMap;
    use crate::opcodes::params::DdmAction;
    fn to_params(os: &str, what: &str, v: &Value) -> Result<ParamMap, String> {
        match v {
            Value::Object(m) => Ok(m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            other => Err(format!(
                "{what} for {os}: expected a dictionary, got {other}"
            )),
        }
    }
    fn merge_into(base: &mut ParamMap, changes: ParamMap) {
        for (k, v) in changes {
            if v.is_null() {
                base.remove(&k);
            } else {
                base.insert(k, v);
            }
        }
    }
    if let Some(os_hvp) = &op.os_hvp {
        for (os, hvs) in os_hvp {
            let entry = c.os_hvp.entry(os.clone()).or_default();
            for (hv, dict) in hvs {
                if dict.is_null() {
                    entry.remove(hv);
                    continue;
                }
                let changes = to_params(os, &format!("os_hvp {hv}"), dict)?;
                merge_into(entry.entry(hv.clone()).or_default(), changes);
            }
            if entry.is_empty() {
                c.os_hvp.remove(os);
            }
        }
    }
    for (field, target) in [
        (&op.osparams, &mut c.osparams),
        (
            &op.osparams_private_cluster,
            &mut c.osparams_private_cluster,
        ),
    ] {
        let Some(per_os) = field else { continue };
        for (os, dict) in per_os {
            let changes = to_params(os, "osparams", &Value::Object(dict.clone()))?;
            let entry = target.entry(os.clone()).or_default();
            merge_into(entry, changes);
            if entry.is_empty() {
                target.remove(os);
            }
        }
    }
    for (field, list, what) in [
        (&op.hidden_os, &mut c.hidden_os, "hidden_os"),
        (&op.blacklisted_os, &mut c.blacklisted_os, "blacklisted_os"),
    ] {
        for (action, os) in field.iter().flatten() {
            match action {
                DdmAction::Add => {
                    if !list.contains(os) {
                        list.push(os.clone());
                    }
                }
                DdmAction::Remove => list.retain(|x| x != os),
                other => {
                    return Err(format!(
                        "{what}: invalid action {} for OS {os}; use add or remove",
                        serde_json::to_value(other).unwrap_or(Value::Null)
                    ))
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdlib::fake_rpc::TestCluster;
    use crate::cmdlib::OpOutcome;

    fn def(name: &str, valid: bool, variants: &[&str], params: &[&str]) -> OsInfo {
        OsInfo {
            name: name.into(),
            path: format!("/srv/ganeti/os/{name}"),
            valid,
            diagnose: if valid {
                String::new()
            } else {
                "broken".into()
            },
            variants: variants.iter().map(|s| s.to_string()).collect(),
            parameters: params
                .iter()
                .map(|p| (p.to_string(), format!("{p} help")))
                .collect(),
            api_versions: vec![20],
            trusted: true,
        }
    }

    fn op(fields: &[&str], names: &[&str]) -> OpOsDiagnose {
        OpOsDiagnose {
            output_fields: fields.iter().map(|s| s.to_string()).collect(),
            names: names.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn rows(out: OpOutcome) -> Vec<Value> {
        match out {
            OpOutcome::Success(Value::Array(r)) => r,
            other => panic!("unexpected outcome {other:?}"),
        }
    }

    #[test]
    fn merges_nodes_like_ganeti() {
        let c = TestCluster::new("os-merge", 3, 0);
        let nodes: Vec<String> = c
            .config()
            .nodes
            .values()
            .map(|n| n.name.as_str().to_string())
            .collect();
        for (i, n) in nodes.iter().enumerate() {
            let deb = if i == 2 {
                def("deb", true, &["buster"], &["dhcp"])
            } else {
                def("deb", true, &["buster", "wheezy"], &["dhcp", "size"])
            };
            let mut list = vec![deb, def("noop", true, &[], &[])];
            if i == 0 {
                list.push(def("half", true, &[], &[]));
            }
            if i == 1 {
                list.push(def("bad", false, &[], &[]));
            }
            c.rpc.answer(proto::OS_DIAGNOSE, n, Ok(json!(list)));
        }
        let (out, _) = c.run(op(&["name", "variants", "parameters"], &[]));
        // Invalid ones (bad: invalid on node 2; half: missing on 2 and 3) are
        // left out when "valid" is not asked for.
        assert_eq!(
            rows(out),
            vec![
                json!(["deb", ["buster"], [["dhcp", "dhcp help"]]]),
                json!(["noop", [], []]),
            ]
        );
        let (out, _) = c.run(op(&["name", "valid"], &[]));
        assert_eq!(
            rows(out),
            vec![
                json!(["bad", false]),
                json!(["deb", true]),
                json!(["half", false]),
                json!(["noop", true]),
            ]
        );
        c.rpc.clear();
        let (out, _) = c.run(op(&["name", "valid", "node_status"], &["half"]));
        let r = rows(out);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0][1], json!(false));
        let status = r[0][2].as_object().unwrap();
        assert_eq!(status.len(), 3);
        assert_eq!(status[&nodes[0]][0][0], json!("/srv/ganeti/os/half"));
        assert_eq!(status[&nodes[1]], json!([]));
        // Every online vm_capable node was asked.
        assert_eq!(c.rpc.calls_of(proto::OS_DIAGNOSE).len(), 3);
    }

    #[test]
    fn dead_node_is_left_out_and_flags_come_from_the_config() {
        let c = TestCluster::new("os-dead", 2, 0);
        let nodes: Vec<String> = c
            .config()
            .nodes
            .values()
            .map(|n| n.name.as_str().to_string())
            .collect();
        c.rpc.answer(
            proto::OS_DIAGNOSE,
            &nodes[0],
            Ok(json!([def("noop", true, &[], &[])])),
        );
        c.rpc.kill(&nodes[1]);
        c.processor
            .store()
            .update(|cfg| {
                cfg.cluster.hidden_os.push("noop".into());
                Ok(())
            })
            .unwrap();
        let (out, log) = c.run(op(&["name"], &[]));
        assert_eq!(rows(out), Vec::<Value>::new(), "hidden OS shown");
        assert!(log.iter().any(|l| l.contains(&nodes[1])), "{log:?}");
        let (out, _) = c.run(op(&["name", "hidden", "blacklisted", "valid"], &[]));
        assert_eq!(rows(out), vec![json!(["noop", true, false, true])]);
    }

    #[test]
    fn bad_fields_and_unknown_names_are_refused_by_name() {
        let c = TestCluster::new("os-bad", 1, 0);
        let (out, _) = c.run(op(&["name", "colour"], &[]));
        match out {
            OpOutcome::Failed(e) => assert!(e.to_string().contains("colour"), "{e}"),
            other => panic!("{other:?}"),
        }
        let (out, _) = c.run(op(&["name"], &["ghost"]));
        match out {
            OpOutcome::Failed(e) => assert!(e.to_string().contains("ghost"), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn gnt_os_modify_changes_the_cluster() {
        use crate::opcodes::cluster::OpClusterSetParams;
        use crate::opcodes::params::DdmAction;
        let c = TestCluster::new("os-modify", 1, 0);
        let mut hvp = BTreeMap::new();
        hvp.insert(
            "deb+buster".to_string(),
            json!({"kvm": {"kernel_path": "/vmlinuz"}})
                .as_object()
                .unwrap()
                .clone(),
        );
        let mut osp = BTreeMap::new();
        osp.insert(
            "deb+buster".to_string(),
            json!({"dhcp": "no"}).as_object().unwrap().clone(),
        );
        let set = OpClusterSetParams {
            os_hvp: Some(hvp),
            osparams: Some(osp),
            hidden_os: Some(vec![(DdmAction::Add, "deb".into())]),
            blacklisted_os: Some(vec![(DdmAction::Add, "old".into())]),
            ..Default::default()
        };
        // Twice: the second run changes nothing and still succeeds.
        for _ in 0..2 {
            let (out, _) = c.run(set.clone());
            assert!(matches!(out, OpOutcome::Success(_)), "{out:?}");
        }
        let cfg = c.config();
        assert_eq!(
            cfg.cluster.os_hvp["deb+buster"]["kvm"]["kernel_path"],
            json!("/vmlinuz")
        );
        assert_eq!(cfg.cluster.osparams["deb+buster"]["dhcp"], json!("no"));
        assert_eq!(cfg.cluster.hidden_os, vec!["deb".to_string()]);
        assert_eq!(cfg.cluster.blacklisted_os, vec!["old".to_string()]);
        // null removes a parameter; an OS left without any is dropped.
        let mut osp = BTreeMap::new();
        osp.insert(
            "deb+buster".to_string(),
            json!({"dhcp": null}).as_object().unwrap().clone(),
        );
        let (out, _) = c.run(OpClusterSetParams {
            osparams: Some(osp),
            hidden_os: Some(vec![(DdmAction::Remove, "deb".into())]),
            ..Default::default()
        });
        assert!(matches!(out, OpOutcome::Success(_)), "{out:?}");
        let cfg = c.config();
        assert!(!cfg.cluster.osparams.contains_key("deb+buster"));
        assert!(cfg.cluster.hidden_os.is_empty());
    }
}
