//! Live data for queries: what each online node's hypervisors run and how
//! much memory and CPU the node has, fetched with one fan-out per kind
//! ([`proto::ALL_INSTANCES_INFO`], [`proto::NODE_HV_INFO`]). masterd calls
//! this for `gnt-instance list` / `gnt-node list` when a live field is
//! asked for; a node that does not answer is simply absent, and its rows
//! say "no data" (Ganeti's behaviour).

use crate::config::objects::ConfigData;
use crate::query::live::{LiveData, LiveInstance, NodeLive, NodeResources};
use crate::rpc::proto::{self, HvInstanceInfo, HypervisorsArgs, NodeHvInfo};
use crate::rpc::{NodeRpc, Target};
use std::time::Duration;

/// How long a query waits for its nodes.
pub const LIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Asks every online node for its running instances (`instances`) and/or
/// its resources (`resources`, as the cluster's first enabled hypervisor
/// reports them).
pub fn gather(rpc: &dyn NodeRpc, cfg: &ConfigData, instances: bool, resources: bool) -> LiveData {
    let targets = online_targets(cfg);
    let args = HypervisorsArgs {
        hypervisors: cfg
            .cluster
            .enabled_hypervisors
            .iter()
            .map(|h| {
                (
                    h.clone(),
                    cfg.cluster.hvparams.get(h).cloned().unwrap_or_default(),
                )
            })
            .collect(),
    };
    let args = serde_json::to_value(&args).unwrap_or_default();
    let only: Vec<Target> = targets.iter().map(|(_, t)| t.clone()).collect();
    let mut live = LiveData::default();
    let answered = |procedure: &str| -> Vec<(String, serde_json::Value)> {
        rpc.call(procedure, &only, &args, LIVE_TIMEOUT)
            .into_iter()
            .zip(&targets)
            .filter_map(|((_, result), (uuid, _))| result.ok().map(|v| (uuid.clone(), v)))
            .collect()
    };
    if instances {
        for (uuid, v) in answered(proto::ALL_INSTANCES_INFO) {
            let Ok(list) = serde_json::from_value::<Vec<HvInstanceInfo>>(v) else {
                continue;
            };
            let node = live.nodes.entry(uuid).or_default();
            for i in list {
                node.instances.insert(
                    i.name,
                    LiveInstance {
                        state: i.state,
                        memory_mib: i.memory_mib,
                        vcpus: i.vcpus,
                    },
                );
            }
        }
    }
    if resources {
        let default_hv = cfg
            .cluster
            .enabled_hypervisors
            .first()
            .cloned()
            .unwrap_or_default();
        for (uuid, v) in answered(proto::NODE_HV_INFO) {
            let Ok(list) = serde_json::from_value::<Vec<NodeHvInfo>>(v) else {
                continue;
            };
            let Some(r) = list
                .iter()
                .find(|r| r.hypervisor == default_hv)
                .or(list.first())
            else {
                continue;
            };
            live.nodes
                .entry(uuid)
                .or_insert_with(NodeLive::default)
                .resources = Some(NodeResources {
                memory_total_mib: r.memory_total_mib,
                memory_free_mib: r.memory_free_mib,
                memory_dom0_mib: r.memory_dom0_mib,
                cpu_total: r.cpu_total,
                cpu_nodes: r.cpu_nodes,
                cpu_sockets: r.cpu_sockets,
            });
        }
    }
    live
}

/// Every online node: its UUID and how to reach it.
fn online_targets(cfg: &ConfigData) -> Vec<(String, Target)> {
    cfg.nodes
        .values()
        .filter(|n| !n.offline)
        .map(|n| (n.uuid.to_string(), super::node::target(n)))
        .collect()
}

/// Asks every online node for the exports in its export directory
/// ([`proto::EXPORT_LIST`]); a node that does not answer is absent.
pub fn gather_exports(rpc: &dyn NodeRpc, cfg: &ConfigData) -> LiveData {
    let targets = online_targets(cfg);
    let only: Vec<Target> = targets.iter().map(|(_, t)| t.clone()).collect();
    let mut live = LiveData::default();
    let answers = rpc.call(
        proto::EXPORT_LIST,
        &only,
        &serde_json::json!({}),
        LIVE_TIMEOUT,
    );
    for ((_, result), (uuid, _)) in answers.into_iter().zip(&targets) {
        if let Some(list) = result
            .ok()
            .and_then(|v| serde_json::from_value::<Vec<String>>(v).ok())
        {
            live.nodes.entry(uuid.clone()).or_default().exports = Some(list);
        }
    }
    live
}
