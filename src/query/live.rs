//! Data only the nodes have: what is running where, and how much memory
//! and CPU each node has. masterd gathers it over RPC when a query asks
//! for a live field and hands it to the engine; without it (or for a node
//! that did not answer) live fields answer "no data", as Ganeti's do.

use std::collections::{BTreeMap, HashMap};

/// One running instance as its node's hypervisor reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveInstance {
    /// Hypervisor state (`running`, `paused`, `shutdown`, …).
    pub state: String,
    /// Memory in use, MiB.
    pub memory_mib: u64,
    /// vCPUs in use.
    pub vcpus: u32,
}

/// A node's hypervisor report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeResources {
    /// Total memory, MiB.
    pub memory_total_mib: u64,
    /// Memory free for instances, MiB.
    pub memory_free_mib: u64,
    /// Memory used by the node itself, MiB.
    pub memory_dom0_mib: u64,
    /// Logical CPUs.
    pub cpu_total: u32,
    /// NUMA nodes.
    pub cpu_nodes: u32,
    /// CPU sockets.
    pub cpu_sockets: u32,
}

/// What one node answered.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeLive {
    /// Instance name → its live state, for the instances running there.
    pub instances: BTreeMap<String, LiveInstance>,
    /// The node's resources, when asked for.
    pub resources: Option<NodeResources>,
    /// The node's exports, when asked for.
    pub exports: Option<Vec<String>>,
}

/// Live data of a query: node UUID → its answer. A node that is missing
/// did not answer (or was not asked because it is offline).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LiveData {
    /// Per node UUID.
    pub nodes: HashMap<String, NodeLive>,
}

impl LiveData {
    /// Where `instance` runs, and how, if any node reported it.
    pub fn find_instance(&self, instance: &str) -> Option<(&str, &LiveInstance)> {
        self.nodes
            .iter()
            .find_map(|(node, live)| live.instances.get(instance).map(|i| (node.as_str(), i)))
    }
}

/// Instance fields that need [`LiveData`] (their node's instance list).
pub const INSTANCE_LIVE_FIELDS: &[&str] = &["oper_state", "oper_ram", "oper_vcpus", "status"];

/// Node fields that need [`LiveData`] (their hypervisor report).
pub const NODE_LIVE_FIELDS: &[&str] = &["mtotal", "mfree", "mnode", "ctotal", "cnodes", "csockets"];

/// Whether answering `fields` needs
/// instance lists or node resources from the nodes.
pub fn wanted(fields: &[String], live: &[&str]) -> bool {
    fields.iter().any(|f| live.contains(&f.as_str()))
}
