//! Cross-object checks of a parsed configuration (the "validate" half of
//! parse-then-validate): dangling references, duplicate names, UUIDs, MACs
//! and IPs, and master-node sanity. Every problem is collected, not just the
//! first, so one run of `gnt-cluster verify` or one failed load shows them all.
//!
//! Pure: takes a `&ConfigData`, touches nothing else. Called by the store on
//! every load and every update, so it must stay fast on 10,000 instances
//! (hash sets, one pass per kind).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;

use super::objects::{ConfigData, LogicalId, Uuid};
use crate::constants::CONFIG_VERSION;

/// The kind of object a problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// The whole document.
    Config,
    /// The cluster object.
    Cluster,
    /// A node.
    Node,
    /// A node group.
    NodeGroup,
    /// An instance.
    Instance,
    /// A disk.
    Disk,
    /// A NIC of an instance.
    Nic,
    /// A network.
    Network,
    /// A job filter rule.
    Filter,
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ObjectKind::Config => "config",
            ObjectKind::Cluster => "cluster",
            ObjectKind::Node => "node",
            ObjectKind::NodeGroup => "node group",
            ObjectKind::Instance => "instance",
            ObjectKind::Disk => "disk",
            ObjectKind::Nic => "nic",
            ObjectKind::Network => "network",
            ObjectKind::Filter => "filter",
        })
    }
}

/// Where a NIC's IP must be unique.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum IpScope<'a> {
    /// Within a Ganeti network (by UUID).
    Network(&'a str),
    /// Within a link (bridge, routing table) when no network is set.
    Link(&'a str),
}

impl fmt::Display for IpScope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpScope::Network(n) => write!(f, "network {n}"),
            IpScope::Link(l) => write!(f, "link {l}"),
        }
    }
}

/// One inconsistency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The kind of object.
    pub kind: ObjectKind,
    /// Its name (empty when it has none).
    pub name: String,
    /// Its UUID (or map key).
    pub uuid: String,
    /// The field concerned.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if !self.name.is_empty() {
            write!(f, " {:?}", self.name)?;
        }
        if !self.uuid.is_empty() {
            write!(f, " ({})", self.uuid)?;
        }
        write!(f, " {}: {}", self.field, self.message)
    }
}

/// All problems found; displays one line per problem.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<Problem>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

struct Collector(Vec<Problem>);

impl Collector {
    fn add(
        &mut self,
        kind: ObjectKind,
        name: &str,
        uuid: &str,
        field: &str,
        message: impl Into<String>,
    ) {
        self.0.push(Problem {
            kind,
            name: name.to_string(),
            uuid: uuid.to_string(),
            field: field.to_string(),
            message: message.into(),
        });
    }
}

/// Checks the whole configuration; `Err` lists every problem.
pub fn validate(data: &ConfigData) -> Result<(), ValidationErrors> {
    let mut c = Collector(Vec::new());
    let cl = &data.cluster;

    if data.version != CONFIG_VERSION {
        c.add(
            ObjectKind::Config,
            "",
            "",
            "version",
            format!("is {}, expected {CONFIG_VERSION}", data.version),
        );
    }

    // Map keys must match the objects' own UUIDs, and UUIDs are unique
    // across all kinds (Ganeti's TemporaryReservationManager guarantees it).
    let nics: usize = data.instances.values().map(|i| i.nics.len()).sum();
    let mut all_uuids: HashMap<&str, ObjectKind> = HashMap::with_capacity(
        1 + data.nodes.len()
            + data.nodegroups.len()
            + data.instances.len()
            + data.disks.len()
            + data.networks.len()
            + data.filters.len()
            + nics,
    );
    fn claim<'a>(
        c: &mut Collector,
        all: &mut HashMap<&'a str, ObjectKind>,
        kind: ObjectKind,
        name: &str,
        key: &'a Uuid,
        own: &Uuid,
    ) {
        if key != own {
            c.add(
                kind,
                name,
                key.as_str(),
                "uuid",
                format!("{own:?} differs from its key"),
            );
        }
        if !key.is_well_formed() {
            c.add(
                kind,
                name,
                key.as_str(),
                "uuid",
                "is not a well-formed UUID",
            );
        }
        if let Some(prev) = all.insert(key.as_str(), kind) {
            c.add(
                kind,
                name,
                key.as_str(),
                "uuid",
                format!("is also used by a {prev}"),
            );
        }
    }
    claim(
        &mut c,
        &mut all_uuids,
        ObjectKind::Cluster,
        &cl.cluster_name,
        &cl.uuid,
        &cl.uuid,
    );
    for (k, n) in &data.nodes {
        claim(
            &mut c,
            &mut all_uuids,
            ObjectKind::Node,
            n.name.as_str(),
            k,
            &n.uuid,
        );
    }
    for (k, g) in &data.nodegroups {
        claim(
            &mut c,
            &mut all_uuids,
            ObjectKind::NodeGroup,
            g.name.as_str(),
            k,
            &g.uuid,
        );
    }
    for (k, i) in &data.instances {
        claim(
            &mut c,
            &mut all_uuids,
            ObjectKind::Instance,
            i.name.as_str(),
            k,
            &i.uuid,
        );
    }
    for (k, d) in &data.disks {
        claim(
            &mut c,
            &mut all_uuids,
            ObjectKind::Disk,
            d.name.as_deref().unwrap_or(""),
            k,
            &d.uuid,
        );
    }
    for (k, n) in &data.networks {
        claim(
            &mut c,
            &mut all_uuids,
            ObjectKind::Network,
            &n.name,
            k,
            &n.uuid,
        );
    }
    for (k, f) in &data.filters {
        claim(&mut c, &mut all_uuids, ObjectKind::Filter, "", k, &f.uuid);
    }
    for inst in data.instances.values() {
        for nic in &inst.nics {
            if nic.uuid.as_str().is_empty() {
                continue;
            }
            claim(
                &mut c,
                &mut all_uuids,
                ObjectKind::Nic,
                nic.name.as_deref().unwrap_or(""),
                &nic.uuid,
                &nic.uuid,
            );
        }
    }

    // Duplicate names.
    fn dup_names<'a>(
        c: &mut Collector,
        kind: ObjectKind,
        items: impl Iterator<Item = (&'a Uuid, &'a str)>,
    ) {
        let mut seen: HashMap<&str, &Uuid> = HashMap::with_capacity(items.size_hint().0);
        for (uuid, name) in items {
            if name.is_empty() {
                c.add(kind, name, uuid.as_str(), "name", "is empty");
            } else if let Some(prev) = seen.insert(name, uuid) {
                c.add(
                    kind,
                    name,
                    uuid.as_str(),
                    "name",
                    format!("is also the name of {prev}"),
                );
            }
        }
    }
    dup_names(
        &mut c,
        ObjectKind::Node,
        data.nodes.iter().map(|(k, n)| (k, n.name.as_str())),
    );
    dup_names(
        &mut c,
        ObjectKind::Instance,
        data.instances.iter().map(|(k, i)| (k, i.name.as_str())),
    );
    dup_names(
        &mut c,
        ObjectKind::NodeGroup,
        data.nodegroups.iter().map(|(k, g)| (k, g.name.as_str())),
    );
    dup_names(
        &mut c,
        ObjectKind::Network,
        data.networks.iter().map(|(k, n)| (k, n.name.as_str())),
    );

    // Cluster.
    match data.nodes.get(&cl.master_node) {
        None => c.add(
            ObjectKind::Cluster,
            &cl.cluster_name,
            cl.uuid.as_str(),
            "master_node",
            format!("refers to unknown node {}", cl.master_node),
        ),
        Some(m) => {
            if !m.master_candidate {
                c.add(
                    ObjectKind::Node,
                    m.name.as_str(),
                    m.uuid.as_str(),
                    "master_candidate",
                    "is false but the node is the master",
                );
            }
            if m.offline {
                c.add(
                    ObjectKind::Node,
                    m.name.as_str(),
                    m.uuid.as_str(),
                    "offline",
                    "is true but the node is the master",
                );
            }
        }
    }
    if cl.enabled_hypervisors.is_empty() {
        c.add(
            ObjectKind::Cluster,
            &cl.cluster_name,
            cl.uuid.as_str(),
            "enabled_hypervisors",
            "is empty",
        );
    }
    for hv in &cl.enabled_hypervisors {
        if !super::params::hypervisors().any(|h| h == hv) {
            c.add(
                ObjectKind::Cluster,
                &cl.cluster_name,
                cl.uuid.as_str(),
                "enabled_hypervisors",
                format!("contains unknown hypervisor {hv:?}"),
            );
        }
    }
    for dt in &cl.enabled_disk_templates {
        if !super::params::disk_templates().any(|d| d == dt) {
            c.add(
                ObjectKind::Cluster,
                &cl.cluster_name,
                cl.uuid.as_str(),
                "enabled_disk_templates",
                format!("contains unknown disk template {dt:?}"),
            );
        }
    }
    for (lo, hi) in &cl.uid_pool {
        if lo > hi {
            c.add(
                ObjectKind::Cluster,
                &cl.cluster_name,
                cl.uuid.as_str(),
                "uid_pool",
                format!("range {lo}-{hi} is reversed"),
            );
        }
    }

    // Nodes.
    for (k, n) in &data.nodes {
        if !data.nodegroups.contains_key(&n.group) {
            c.add(
                ObjectKind::Node,
                n.name.as_str(),
                k.as_str(),
                "group",
                format!("refers to unknown node group {}", n.group),
            );
        }
        if n.master_candidate && (n.offline || n.drained) {
            c.add(
                ObjectKind::Node,
                n.name.as_str(),
                k.as_str(),
                "master_candidate",
                "is true but the node is offline or drained",
            );
        }
        if n.master_candidate && !n.master_capable {
            c.add(
                ObjectKind::Node,
                n.name.as_str(),
                k.as_str(),
                "master_candidate",
                "is true but the node is not master_capable",
            );
        }
    }
    let mut primary_ips: HashMap<&str, &str> = HashMap::new();
    for n in data.nodes.values() {
        if let Some(prev) = primary_ips.insert(&n.primary_ip, n.name.as_str()) {
            c.add(
                ObjectKind::Node,
                n.name.as_str(),
                n.uuid.as_str(),
                "primary_ip",
                format!("{} is also the primary IP of node {prev}", n.primary_ip),
            );
        }
    }

    // Node groups.
    for (k, g) in &data.nodegroups {
        for net in g.networks.keys() {
            if !data.networks.contains_key(net) {
                c.add(
                    ObjectKind::NodeGroup,
                    g.name.as_str(),
                    k.as_str(),
                    "networks",
                    format!("refers to unknown network {net}"),
                );
            }
        }
    }

    // Disks: references to nodes.
    for (k, d) in &data.disks {
        let name = d.name.as_deref().unwrap_or(&d.iv_name);
        let mut unknown: Vec<&Uuid> = Vec::new();
        d.for_each_node(&mut |n| {
            if !data.nodes.contains_key(n) && !unknown.contains(&n) {
                unknown.push(n);
            }
        });
        for n in unknown {
            c.add(
                ObjectKind::Disk,
                name,
                k.as_str(),
                "nodes",
                format!("refers to unknown node {n}"),
            );
        }
        if d.dev_type == "drbd" && !matches!(d.logical_id, LogicalId::Drbd { .. }) {
            c.add(
                ObjectKind::Disk,
                name,
                k.as_str(),
                "logical_id",
                "is not [node_a, node_b, port, minor_a, minor_b, secret]",
            );
        }
        if !super::params::disk_templates().any(|t| t == d.dev_type) {
            c.add(
                ObjectKind::Disk,
                name,
                k.as_str(),
                "dev_type",
                format!("{:?} is not a known disk type", d.dev_type),
            );
        }
    }

    // Instances: node, disk and network references; MACs and IPs.
    let mut disk_owner: HashMap<&Uuid, &str> = HashMap::with_capacity(data.disks.len());
    let mut macs: HashMap<Cow<str>, &str> = HashMap::with_capacity(nics);
    let mut ips: HashSet<(IpScope, &str)> = HashSet::with_capacity(nics);
    let default_link = cl
        .nicparams
        .get(super::params::PP_DEFAULT)
        .and_then(|p| p.get("link"))
        .and_then(|v| v.as_str())
        .unwrap_or("");
    for (k, inst) in &data.instances {
        let iname = inst.name.as_str();
        if !data.nodes.contains_key(&inst.primary_node) {
            c.add(
                ObjectKind::Instance,
                iname,
                k.as_str(),
                "primary_node",
                format!("refers to unknown node {}", inst.primary_node),
            );
        }
        for s in &inst.secondary_nodes {
            if !data.nodes.contains_key(s) {
                c.add(
                    ObjectKind::Instance,
                    iname,
                    k.as_str(),
                    "secondary_nodes",
                    format!("refers to unknown node {s}"),
                );
            }
        }
        if !cl.enabled_hypervisors.is_empty()
            && !inst.hypervisor.is_empty()
            && !super::params::hypervisors().any(|h| h == inst.hypervisor)
        {
            c.add(
                ObjectKind::Instance,
                iname,
                k.as_str(),
                "hypervisor",
                format!("{:?} is not a known hypervisor", inst.hypervisor),
            );
        }
        for d in &inst.disks {
            if !data.disks.contains_key(d) {
                c.add(
                    ObjectKind::Instance,
                    iname,
                    k.as_str(),
                    "disks",
                    format!("refers to unknown disk {d}"),
                );
            } else if let Some(prev) = disk_owner.insert(d, iname) {
                c.add(
                    ObjectKind::Instance,
                    iname,
                    k.as_str(),
                    "disks",
                    format!("disk {d} also belongs to instance {prev}"),
                );
            }
        }
        for (idx, nic) in inst.nics.iter().enumerate() {
            let field = |f: &str| format!("nics[{idx}].{f}");
            if let Some(net) = &nic.network {
                if !data.networks.contains_key(net) {
                    c.add(
                        ObjectKind::Instance,
                        iname,
                        k.as_str(),
                        &field("network"),
                        format!("refers to unknown network {net}"),
                    );
                }
            }
            let mac = if nic.mac.bytes().any(|b| b.is_ascii_uppercase()) {
                Cow::Owned(nic.mac.to_ascii_lowercase())
            } else {
                Cow::Borrowed(nic.mac.as_str())
            };
            if !mac.is_empty() {
                if let Some(prev) = macs.insert(mac, iname) {
                    c.add(
                        ObjectKind::Instance,
                        iname,
                        k.as_str(),
                        &field("mac"),
                        format!("{} is also used by instance {prev}", nic.mac),
                    );
                }
            }
            if let Some(ip) = &nic.ip {
                // Ganeti allows the same IP on different networks/links; the
                // scope is the network if any, else the NIC's link.
                let scope = match &nic.network {
                    Some(n) => IpScope::Network(n.as_str()),
                    None => IpScope::Link(
                        nic.nicparams
                            .get("link")
                            .and_then(|v| v.as_str())
                            .unwrap_or(default_link),
                    ),
                };
                if !ips.insert((scope, ip.as_str())) {
                    c.add(
                        ObjectKind::Instance,
                        iname,
                        k.as_str(),
                        &field("ip"),
                        format!("{ip} is used more than once on {scope}"),
                    );
                }
            }
        }
    }

    if c.0.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors(c.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::objects::Nic;
    use crate::config::test_support::generated;

    fn problems(data: &ConfigData) -> Vec<Problem> {
        validate(data).err().map(|e| e.0).unwrap_or_default()
    }

    fn has(ps: &[Problem], kind: ObjectKind, field: &str, needle: &str) -> bool {
        ps.iter()
            .any(|p| p.kind == kind && p.field == field && p.to_string().contains(needle))
    }

    #[test]
    fn generated_config_is_valid() {
        validate(&generated(5, 20)).unwrap();
    }

    #[test]
    fn dangling_references_are_named() {
        let mut d = generated(2, 2);
        let ghost = Uuid::from("00000000-0000-4000-8000-00000000dead");
        let (ik, _) = d
            .instances
            .iter()
            .next()
            .map(|(k, v)| (k.clone(), v.clone()))
            .unwrap();
        {
            let inst = d.instances.get_mut(&ik).unwrap();
            inst.primary_node = ghost.clone();
            inst.disks.push(ghost.clone());
            inst.nics[0].network = Some(ghost.clone());
        }
        let nk = d.nodes.keys().nth(1).unwrap().clone();
        d.nodes.get_mut(&nk).unwrap().group = ghost.clone();
        d.cluster.master_node = ghost.clone();
        let ps = problems(&d);
        let iname = d.instances[&ik].name.to_string();
        assert!(
            has(&ps, ObjectKind::Instance, "primary_node", &iname),
            "{ps:#?}"
        );
        assert!(has(&ps, ObjectKind::Instance, "disks", "unknown disk"));
        assert!(has(
            &ps,
            ObjectKind::Instance,
            "nics[0].network",
            "unknown network"
        ));
        assert!(has(&ps, ObjectKind::Node, "group", "unknown node group"));
        assert!(has(&ps, ObjectKind::Cluster, "master_node", "unknown node"));
        let text = ValidationErrors(ps.clone()).to_string();
        assert_eq!(text.lines().count(), ps.len());
    }

    #[test]
    fn duplicates_are_named() {
        let mut d = generated(3, 3);
        let keys: Vec<Uuid> = d.instances.keys().cloned().collect();
        let first = d.instances[&keys[0]].clone();
        {
            let second = d.instances.get_mut(&keys[1]).unwrap();
            second.name = first.name.clone();
            second.nics[0].mac = first.nics[0].mac.to_uppercase();
            second.nics[0].ip = first.nics[0].ip.clone();
        }
        let nkeys: Vec<Uuid> = d.nodes.keys().cloned().collect();
        let n0 = d.nodes[&nkeys[0]].name.clone();
        d.nodes.get_mut(&nkeys[1]).unwrap().name = n0;
        let g = d.nodegroups.values().next().unwrap().clone();
        let mut g2 = g.clone();
        g2.uuid = d.instances[&keys[2]].uuid.clone();
        d.nodegroups.insert(g2.uuid.clone(), g2);
        let ps = problems(&d);
        assert!(
            has(&ps, ObjectKind::Instance, "name", "also the name"),
            "{ps:#?}"
        );
        assert!(has(&ps, ObjectKind::Node, "name", "also the name"));
        assert!(has(&ps, ObjectKind::NodeGroup, "name", "also the name"));
        assert!(has(&ps, ObjectKind::Instance, "nics[0].mac", "also used"));
        assert!(has(
            &ps,
            ObjectKind::Instance,
            "nics[0].ip",
            "more than once"
        ));
        assert!(ps
            .iter()
            .any(|p| p.field == "uuid" && p.message.contains("also used")));
    }

    #[test]
    fn same_ip_on_different_links_is_fine() {
        let mut d = generated(1, 2);
        let keys: Vec<Uuid> = d.instances.keys().cloned().collect();
        let ip = d.instances[&keys[0]].nics[0].ip.clone();
        let second = d.instances.get_mut(&keys[1]).unwrap();
        second.nics[0] = Nic {
            ip,
            nicparams: [("link".to_string(), serde_json::json!("br-other"))].into(),
            ..second.nics[0].clone()
        };
        validate(&d).unwrap();
    }

    #[test]
    fn master_must_be_candidate() {
        let mut d = generated(1, 0);
        let m = d.cluster.master_node.clone();
        d.nodes.get_mut(&m).unwrap().master_candidate = false;
        let ps = problems(&d);
        assert!(has(
            &ps,
            ObjectKind::Node,
            "master_candidate",
            "is the master"
        ));
    }
}
