//! confd's answers, computed over an immutable [`Snapshot`] of the config.
//!
//! A snapshot is built once per config version (by the daemon's reload
//! loop, never on the query path) and holds the indexes the queries need:
//! node name → role and primary IP, instance IP per link → instance →
//! primary node, DRBD minors per node, instances per node. Answering is
//! then a hash lookup and the serialisation of a small value.
//!
//! The shapes and statuses follow Ganeti 3.0's confd server (design 2.1 and
//! `ganeti.confd.client`'s expectations): unknown nodes, instances and IPs
//! give status ERROR with answer `CONFD_ERROR_UNKNOWN_ENTRY` (0); a query of
//! the wrong shape gives ERROR with a message or `CONFD_ERROR_ARGUMENT`
//! (2), as Ganeti's server does for each type.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use serde_json::{json, Value};

use super::codec::{Query, Reply, Request};
use super::{ErrorCode, NodeRole, ReplyStatus, ReqField, RequestType, PROTOCOL_VERSION};
use crate::config::objects::{ConfigData, Disk, LogicalId, Node, Uuid};

/// `PP_DEFAULT`: the cluster's default NIC parameter group.
const DEFAULT_NIC_GROUP: &str = "default";

/// An immutable view of one config version with confd's indexes.
#[derive(Debug)]
pub struct Snapshot {
    config: Arc<ConfigData>,
    roles: HashMap<Uuid, NodeRole>,
    /// Exact node name → UUID.
    node_names: HashMap<String, Uuid>,
    /// First label of a node name → UUID; `None` when two nodes share it.
    node_short_names: HashMap<String, Option<Uuid>>,
    node_pips: Vec<Value>,
    mc_pips: Vec<Value>,
    default_link: String,
    /// link → instance IP → instance UUID.
    link_ips: HashMap<String, BTreeMap<String, Uuid>>,
    instance_names: HashMap<String, Uuid>,
    /// node UUID → (primary instances, secondary instances), in UUID order.
    node_instances: HashMap<Uuid, (Vec<Uuid>, Vec<Uuid>)>,
    /// node UUID → its DRBD minors, in Ganeti's six-item form.
    drbd: HashMap<Uuid, Vec<Value>>,
    /// The whole config as JSON, made on the first config query.
    json: OnceLock<Value>,
}

impl Snapshot {
    /// Builds the indexes of `config`.
    pub fn new(config: Arc<ConfigData>) -> Snapshot {
        let c = &*config;
        let mut roles = HashMap::with_capacity(c.nodes.len());
        let mut node_names = HashMap::with_capacity(c.nodes.len());
        let mut node_short_names: HashMap<String, Option<Uuid>> = HashMap::new();
        // Ganeti folds over the node map (by UUID) prepending each IP, so
        // its lists come out in descending UUID order.
        let mut node_pips = Vec::with_capacity(c.nodes.len());
        let mut mc_pips = Vec::new();
        for (uuid, n) in c.nodes.iter().rev() {
            let role = if *uuid == c.cluster.master_node {
                NodeRole::Master
            } else {
                flags_role(n)
            };
            roles.insert(uuid.clone(), role);
            node_names.insert(n.name.0.clone(), uuid.clone());
            if let Some((short, _)) = n.name.0.split_once('.') {
                node_short_names
                    .entry(short.to_string())
                    .and_modify(|e| *e = None)
                    .or_insert_with(|| Some(uuid.clone()));
            }
            node_pips.push(Value::String(n.primary_ip.clone()));
            if n.master_candidate {
                mc_pips.push(Value::String(n.primary_ip.clone()));
            }
        }
        let default_link = c
            .cluster
            .nicparams
            .get(DEFAULT_NIC_GROUP)
            .and_then(|p| p.get("link"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let mut link_ips: HashMap<String, BTreeMap<String, Uuid>> = HashMap::new();
        let mut instance_names = HashMap::with_capacity(c.instances.len());
        let mut node_instances: HashMap<Uuid, (Vec<Uuid>, Vec<Uuid>)> = HashMap::new();
        let mut drbd: HashMap<Uuid, Vec<Value>> = HashMap::new();
        let node_name = |u: &Uuid| {
            c.nodes
                .get(u)
                .map_or_else(|| u.0.clone(), |n| n.name.0.clone())
        };
        for (iuuid, inst) in &c.instances {
            instance_names.insert(inst.name.0.clone(), iuuid.clone());
            for nic in &inst.nics {
                if let Some(ip) = &nic.ip {
                    let link = nic
                        .nicparams
                        .get("link")
                        .and_then(Value::as_str)
                        .unwrap_or(&default_link);
                    link_ips
                        .entry(link.to_string())
                        .or_default()
                        .insert(ip.clone(), iuuid.clone());
                }
            }
            node_instances
                .entry(inst.primary_node.clone())
                .or_default()
                .0
                .push(iuuid.clone());
            let mut secondaries: Vec<&Uuid> = Vec::new();
            for (idx, duuid) in inst.disks.iter().enumerate() {
                let Some(disk) = c.disks.get(duuid) else {
                    continue;
                };
                disk.for_each_node(&mut |n| {
                    if *n != inst.primary_node && !secondaries.contains(&n) {
                        secondaries.push(n);
                    }
                });
                let mut links = Vec::new();
                drbd_links(disk, &mut links);
                for (a, b, minor_a, minor_b) in links {
                    for (node, minor, peer) in [(a, minor_a, b), (b, minor_b, a)] {
                        let role = if *node == inst.primary_node {
                            "primary"
                        } else {
                            "secondary"
                        };
                        drbd.entry(node.clone()).or_default().push(json!([
                            node_name(node),
                            minor,
                            inst.name.0,
                            format!("disk/{idx}"),
                            role,
                            node_name(peer),
                        ]));
                    }
                }
            }
            for s in inst.secondary_nodes.iter() {
                if !secondaries.contains(&s) && *s != inst.primary_node {
                    secondaries.push(s);
                }
            }
            for s in secondaries {
                node_instances
                    .entry(s.clone())
                    .or_default()
                    .1
                    .push(iuuid.clone());
            }
        }
        Snapshot {
            roles,
            node_names,
            node_short_names,
            node_pips,
            mc_pips,
            default_link,
            link_ips,
            instance_names,
            node_instances,
            drbd,
            json: OnceLock::new(),
            config,
        }
    }

    /// The config's `serial_no`, sent in every reply.
    pub fn serial(&self) -> u64 {
        self.config.serial_no
    }

    /// The config this snapshot indexes.
    pub fn config(&self) -> &Arc<ConfigData> {
        &self.config
    }

    /// A node by UUID, full name, or unique short name (`node1` for
    /// `node1.example.com`).
    fn node(&self, name: &str) -> Option<&Uuid> {
        if let Some((u, _)) = self.config.nodes.get_key_value(name) {
            return Some(u);
        }
        self.node_names
            .get(name)
            .or_else(|| self.node_short_names.get(name).and_then(Option::as_ref))
    }

    fn instance(&self, name: &str) -> Option<&Uuid> {
        if let Some((u, _)) = self.config.instances.get_key_value(name) {
            return Some(u);
        }
        self.instance_names.get(name)
    }

    /// The answer to `req`, with this snapshot's serial.
    pub fn answer(&self, req: &Request) -> Reply {
        let (status, answer) = self.compute(req);
        Reply {
            protocol: PROTOCOL_VERSION,
            status,
            answer,
            serial: self.serial(),
        }
    }

    fn compute(&self, req: &Request) -> (ReplyStatus, Value) {
        let c = &*self.config;
        let invalid = || {
            (
                ReplyStatus::Error,
                Value::String(format!("Invalid query type {}", haskell_show(&req.query))),
            )
        };
        let unknown = (ReplyStatus::Error, ErrorCode::UnknownEntry.answer());
        let argument = (ReplyStatus::Error, ErrorCode::Argument.answer());
        match req.kind {
            RequestType::Ping => (ReplyStatus::Ok, Value::from(c.version)),
            RequestType::ClusterMaster => {
                let master = c.master_node();
                match &req.query {
                    Query::Empty => match master {
                        Some(m) => (ReplyStatus::Ok, Value::String(m.name.0.clone())),
                        None => (ReplyStatus::Error, ErrorCode::Internal.answer()),
                    },
                    Query::Plain(_) => argument,
                    Query::Dict(d) => {
                        let Some(m) = master else {
                            return (ReplyStatus::Error, ErrorCode::Internal.answer());
                        };
                        let vals: Vec<Value> = d
                            .fields
                            .iter()
                            .map(|f| match f {
                                ReqField::Name => Value::String(m.name.0.clone()),
                                ReqField::Ip => Value::String(c.cluster.master_ip.clone()),
                                ReqField::MnodePip => Value::String(m.primary_ip.clone()),
                            })
                            .collect();
                        (ReplyStatus::Ok, Value::Array(vals))
                    }
                }
            }
            RequestType::NodeRoleByName => {
                let Query::Plain(name) = &req.query else {
                    return invalid();
                };
                let Some(uuid) = self.node(name) else {
                    return (ReplyStatus::Error, Value::String(no_node_failure(name)));
                };
                // Ganeti compares the query text itself with the master's
                // name: the master asked by short name or UUID reports the
                // role its flags give (a candidate).
                let by_master_name =
                    c.master_node().map(|m| m.name.as_str()) == Some(name.as_str());
                let role = match (self.roles.get(uuid), c.nodes.get(uuid)) {
                    (Some(NodeRole::Master), Some(n)) if !by_master_name => flags_role(n),
                    (Some(r), _) => *r,
                    _ => NodeRole::Regular,
                };
                (ReplyStatus::Ok, Value::from(role as u64))
            }
            RequestType::NodePipList => (ReplyStatus::Ok, Value::Array(self.node_pips.clone())),
            RequestType::McPipList => (ReplyStatus::Ok, Value::Array(self.mc_pips.clone())),
            RequestType::InstancesIpsList => {
                let link = match &req.query {
                    Query::Plain(l) => l.as_str(),
                    Query::Empty => self.default_link.as_str(),
                    Query::Dict(_) => return invalid(),
                };
                let ips: Vec<Value> = self
                    .link_ips
                    .get(link)
                    .map(|m| m.keys().map(|ip| Value::String(ip.clone())).collect())
                    .unwrap_or_default();
                (ReplyStatus::Ok, Value::Array(ips))
            }
            RequestType::NodePipByInstanceIp => {
                let Query::Dict(d) = &req.query else {
                    return argument;
                };
                let link = d.link.as_deref().unwrap_or(&self.default_link);
                match &d.ip {
                    Some(ip) => self.pip_by_instance_ip(link, ip),
                    None => {
                        let each: Vec<Value> = d
                            .ip_list
                            .iter()
                            .map(|ip| {
                                // Ganeti 3.0's server sends a third item:
                                // 1 when the IP was found, 0 when not.
                                let (s, a) = self.pip_by_instance_ip(link, ip);
                                json!([s.number(), a, u64::from(s == ReplyStatus::Ok)])
                            })
                            .collect();
                        (ReplyStatus::Ok, Value::Array(each))
                    }
                }
            }
            RequestType::NodeDrbd => {
                let Query::Plain(name) = &req.query else {
                    return invalid();
                };
                match self.node(name) {
                    Some(u) => (
                        ReplyStatus::Ok,
                        Value::Array(self.drbd.get(u).cloned().unwrap_or_default()),
                    ),
                    None => (ReplyStatus::Error, Value::String(no_node_error(name))),
                }
            }
            RequestType::NodeInstances => {
                let Query::Plain(name) = &req.query else {
                    return invalid();
                };
                let Some(u) = self.node(name) else {
                    return (
                        ReplyStatus::Error,
                        Value::String(format!(
                            "Node not found in the configuration: {}",
                            no_node_error(name)
                        )),
                    );
                };
                let objects = |ids: &[Uuid]| -> Value {
                    Value::Array(
                        ids.iter()
                            .filter_map(|i| c.instances.get(i))
                            .filter_map(|i| serde_json::to_value(i).ok())
                            .collect(),
                    )
                };
                let (pri, sec) = self
                    .node_instances
                    .get(u)
                    .map(|(p, s)| (objects(p), objects(s)))
                    .unwrap_or_else(|| (json!([]), json!([])));
                (ReplyStatus::Ok, json!([pri, sec]))
            }
            RequestType::InstanceDisks => {
                let Query::Plain(name) = &req.query else {
                    return invalid();
                };
                let Some(inst) = self.instance(name).and_then(|u| c.instances.get(u)) else {
                    return (
                        ReplyStatus::Error,
                        Value::String(format!("Instance {name} not found in the configuration")),
                    );
                };
                let disks: Option<Vec<Value>> = inst
                    .disks
                    .iter()
                    .map(|d| c.disks.get(d).and_then(|d| serde_json::to_value(d).ok()))
                    .collect();
                match disks {
                    Some(d) => (ReplyStatus::Ok, Value::Array(d)),
                    None => (
                        ReplyStatus::Error,
                        Value::String(format!("Could not retrieve the disks of instance {name}")),
                    ),
                }
            }
            RequestType::ConfigQuery => {
                let Query::Plain(path) = &req.query else {
                    return invalid();
                };
                let whole = self
                    .json
                    .get_or_init(|| serde_json::to_value(c).unwrap_or(Value::Null));
                // A JSON pointer (`/cluster/cluster_name`); `/` or empty is
                // the whole config.
                let pointer = if path == "/" { "" } else { path.as_str() };
                match whole.pointer(pointer) {
                    Some(v) => (ReplyStatus::Ok, v.clone()),
                    None => unknown,
                }
            }
            RequestType::DataCollectors => {
                // Ganeti reports the Xen instance-status collector inactive
                // unless a Xen hypervisor is enabled.
                let xen = c
                    .cluster
                    .enabled_hypervisors
                    .iter()
                    .any(|h| h.starts_with("xen"));
                let mut m = serde_json::Map::new();
                for (name, dc) in &c.cluster.data_collectors {
                    let active = dc.active && (xen || name != "inst-status-xen");
                    m.insert(
                        name.clone(),
                        json!({"active": active, "interval": dc.interval}),
                    );
                }
                (ReplyStatus::Ok, Value::Object(m))
            }
        }
    }

    fn pip_by_instance_ip(&self, link: &str, ip: &str) -> (ReplyStatus, Value) {
        let c = &*self.config;
        self.link_ips
            .get(link)
            .and_then(|m| m.get(ip))
            .and_then(|i| c.instances.get(i))
            .and_then(|i| c.nodes.get(&i.primary_node))
            .map_or(
                (ReplyStatus::Error, ErrorCode::UnknownEntry.answer()),
                |n| (ReplyStatus::Ok, Value::String(n.primary_ip.clone())),
            )
    }
}

/// A node's role from its flags, in Ganeti's order of precedence.
fn flags_role(n: &Node) -> NodeRole {
    if n.drained {
        NodeRole::Drained
    } else if n.offline {
        NodeRole::Offline
    } else if n.master_candidate {
        NodeRole::Candidate
    } else {
        NodeRole::Regular
    }
}

/// Ganeti's error text for an unknown node name (as its server shows a
/// `OpPrereqError`).
fn no_node_error(name: &str) -> String {
    format!("OpPrereqError \"Node name {name} not found\" ECodeNoEnt")
}

/// Ganeti's formatted failure for an unknown node (node role query).
fn no_node_failure(name: &str) -> String {
    format!(
        "Failure: prerequisites not met for this operation:\nerror type: ECodeNoEnt, error details:\nNode name {name} not found"
    )
}

/// A query as Ganeti's server names it in errors (Haskell `show`).
fn haskell_show(q: &Query) -> String {
    match q {
        Query::Empty => "EmptyQuery".into(),
        Query::Plain(s) => format!("PlainQuery {}", Value::String(s.clone())),
        Query::Dict(_) => format!("DictQuery {}", q.to_json()),
    }
}

/// Every DRBD link in `disk` and its children: (node A, node B, minor A,
/// minor B).
fn drbd_links<'a>(disk: &'a Disk, out: &mut Vec<(&'a Uuid, &'a Uuid, u32, u32)>) {
    if let LogicalId::Drbd {
        node_a,
        node_b,
        minor_a,
        minor_b,
        ..
    } = &disk.logical_id
    {
        out.push((node_a, node_b, *minor_a, *minor_b));
    }
    for c in &disk.children {
        drbd_links(c, out);
    }
}
