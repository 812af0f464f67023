//! Node fields (`gnt-node list`, `/2/query/node`): Ganeti 3.0's
//! `NODE_FIELDS`.
//!
//! Everything but the "live" fields (memory, disk, CPUs) comes from the
//! configuration; the live ones need node RPC (issue 4) and answer "no
//! data" until then.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

use super::fields::{self, field, Field, Table};
use super::filter::FieldFlag;
use super::{FieldKind, QueryError, QueryResponse, ResultCell, ResultStatus};
use crate::config::objects::{ConfigData, Node, Uuid};
use crate::config::params::{self, ParamFamily};

/// What every node getter sees besides the node: the configuration and
/// the instance lists per node, computed once per query.
pub struct NodeContext<'a> {
    /// The configuration snapshot.
    pub config: &'a ConfigData,
    /// Names of instances whose primary node is the key.
    pub primaries: HashMap<&'a Uuid, Vec<&'a str>>,
    /// Names of instances that have the key as a secondary node.
    pub secondaries: HashMap<&'a Uuid, Vec<&'a str>>,
    /// What the nodes reported, when the query asked for live fields.
    pub live: Option<&'a super::live::LiveData>,
}

impl<'a> NodeContext<'a> {
    /// Indexes `config`'s instances by node.
    pub fn new(config: &'a ConfigData) -> NodeContext<'a> {
        let mut primaries: HashMap<&Uuid, Vec<&str>> = HashMap::new();
        let mut secondaries: HashMap<&Uuid, Vec<&str>> = HashMap::new();
        for inst in config.instances.values() {
            primaries
                .entry(&inst.primary_node)
                .or_default()
                .push(inst.name.as_str());
            for s in super::instances::secondary_nodes(config, inst) {
                secondaries.entry(s).or_default().push(inst.name.as_str());
            }
        }
        NodeContext {
            config,
            primaries,
            secondaries,
            live: None,
        }
    }
}

/// The getter type of node fields.
pub type NodeGetter = dyn Fn(&NodeContext<'_>, &Node) -> ResultCell + Send + Sync;

type F = Field<NodeGetter>;

fn simple(
    name: &str,
    title: &str,
    kind: FieldKind,
    doc: &str,
    get: impl Fn(&NodeContext<'_>, &Node) -> ResultCell + Send + Sync + 'static,
) -> F {
    field(name, title, kind, doc, Box::new(get))
}

/// The node role letter (`M`aster, master `C`andidate, `D`rained,
/// `O`ffline, `R`egular), in Ganeti's order of precedence.
pub fn node_role(config: &ConfigData, node: &Node) -> &'static str {
    if node.uuid == config.cluster.master_node {
        "M"
    } else if node.master_candidate {
        "C"
    } else if node.drained {
        "D"
    } else if node.offline {
        "O"
    } else {
        "R"
    }
}

fn filled_ndparams(config: &ConfigData, node: &Node) -> Option<crate::config::objects::ParamMap> {
    config
        .nodegroups
        .get(&node.group)
        .map(|g| params::fill_ndparams(&config.cluster, g, node))
}

/// The node field table.
pub fn table() -> &'static Table<NodeGetter> {
    static TABLE: OnceLock<Table<NodeGetter>> = OnceLock::new();
    TABLE.get_or_init(build)
}

fn build() -> Table<NodeGetter> {
    use FieldKind::*;
    let mut f: Vec<F> = vec![
        simple("pip", "PrimaryIP", Text, "Primary IP address", |_, n| {
            ResultCell::normal(n.primary_ip.as_str())
        }),
        simple(
            "sip",
            "SecondaryIP",
            Text,
            "Secondary IP address",
            |_, n| ResultCell::normal(n.secondary_ip.as_str()),
        ),
        simple("tags", "Tags", Other, "Tags", |_, n| fields::tags(&n.tags)),
        simple(
            "master",
            "IsMaster",
            Bool,
            "Whether the node is the master",
            |c, n| ResultCell::normal(n.uuid == c.config.cluster.master_node),
        ),
        simple("group", "Group", Text, "Node group name", |c, n| {
            match c.config.nodegroups.get(&n.group) {
                Some(g) => ResultCell::normal(g.name.as_str()),
                None => ResultCell::abnormal(ResultStatus::Unavail),
            }
        }),
        simple(
            "group.uuid",
            "GroupUUID",
            Text,
            "Node group UUID",
            |_, n| ResultCell::normal(n.group.as_str()),
        ),
        simple(
            "powered",
            "Powered",
            Bool,
            "Whether the node is believed powered on (needs out-of-band support)",
            |c, n| {
                let oob = filled_ndparams(c.config, n)
                    .and_then(|p| p.get("oob_program").cloned())
                    .is_some_and(|v| v.as_str().is_some_and(|s| !s.is_empty()));
                if oob {
                    ResultCell::normal(n.powered)
                } else {
                    ResultCell::abnormal(ResultStatus::Unavail)
                }
            },
        ),
        simple(
            "ndparams",
            "NodeParameters",
            Other,
            "Effective node parameters (cluster, group and node merged)",
            |c, n| match filled_ndparams(c.config, n) {
                Some(p) => fields::param_map(&p),
                None => ResultCell::abnormal(ResultStatus::Unavail),
            },
        ),
        simple(
            "custom_ndparams",
            "CustomNodeParameters",
            Other,
            "Node parameters set on the node itself",
            |_, n| fields::param_map(&n.ndparams),
        ),
        simple(
            "hv_state",
            "HypervisorState",
            Other,
            "Hypervisor state",
            |_, n| match &n.hv_state {
                Some(v) => ResultCell::normal(v.clone()),
                None => ResultCell::abnormal(ResultStatus::Unavail),
            },
        ),
        simple(
            "disk_state",
            "DiskState",
            Other,
            "Disk state",
            |_, n| match &n.disk_state {
                Some(v) => ResultCell::normal(v.clone()),
                None => ResultCell::abnormal(ResultStatus::Unavail),
            },
        ),
    ];
    let nd_specs = params::specs(ParamFamily::Nd, None).unwrap_or(&[]);
    for (name, title, kind, key) in fields::nd_param_fields(nd_specs) {
        let doc = format!("Node parameter {key}");
        f.push(simple(
            &name,
            &title,
            kind,
            &doc,
            move |c, n| match filled_ndparams(c.config, n) {
                Some(p) => fields::param_value(&p, key),
                None => ResultCell::abnormal(ResultStatus::Unavail),
            },
        ));
    }
    f.push(simple(
        "role",
        "Role",
        Text,
        "Node role: M (master), C (master candidate), R (regular), D (drained), O (offline)",
        |c, n| ResultCell::normal(node_role(c.config, n)),
    ));
    f.push(simple(
        "pinst_cnt",
        "Pinst",
        Number,
        "Number of instances with this primary node",
        |c, n| ResultCell::normal(c.primaries.get(&n.uuid).map_or(0, Vec::len)),
    ));
    f.push(simple(
        "pinst_list",
        "PriInstances",
        Other,
        "Instances with this primary node",
        |c, n| ResultCell::normal(instance_list(c.primaries.get(&n.uuid))),
    ));
    f.push(simple(
        "sinst_cnt",
        "Sinst",
        Number,
        "Number of instances with this secondary node",
        |c, n| ResultCell::normal(c.secondaries.get(&n.uuid).map_or(0, Vec::len)),
    ));
    f.push(simple(
        "sinst_list",
        "SecInstances",
        Other,
        "Instances with this secondary node",
        |c, n| ResultCell::normal(instance_list(c.secondaries.get(&n.uuid))),
    ));
    f.push(simple(
        "drained",
        "Drained",
        Bool,
        "Whether the node is drained",
        |_, n| ResultCell::normal(n.drained),
    ));
    f.push(simple(
        "master_candidate",
        "MasterC",
        Bool,
        "Whether the node is a master candidate",
        |_, n| ResultCell::normal(n.master_candidate),
    ));
    f.push(simple(
        "master_capable",
        "MasterCapable",
        Bool,
        "Whether the node may become a master candidate",
        |_, n| ResultCell::normal(n.master_capable),
    ));
    let mut name = simple("name", "Node", Text, "Node name", |_, n| {
        ResultCell::normal(n.name.as_str())
    });
    name.flag = FieldFlag::Hostname;
    f.push(name);
    f.push(simple(
        "offline",
        "Offline",
        Bool,
        "Whether the node is offline",
        |_, n| ResultCell::normal(n.offline),
    ));
    f.push(simple(
        "serial_no",
        "SerialNo",
        Number,
        "Node serial number, bumped by every change",
        |_, n| ResultCell::normal(n.serial_no),
    ));
    f.push(simple("uuid", "UUID", Text, "Node UUID", |_, n| {
        ResultCell::normal(n.uuid.as_str())
    }));
    f.push(simple(
        "vm_capable",
        "VMCapable",
        Bool,
        "Whether the node may host instances",
        |_, n| ResultCell::normal(n.vm_capable),
    ));
    // Live fields: need the node's own report (node RPC, issue 4).
    for (name, title, kind, doc) in [
        (
            "bootid",
            "BootID",
            Text,
            "Random id renewed at each boot of the node",
        ),
        ("cnodes", "CNodes", Number, "Number of NUMA nodes"),
        ("cnos", "CNOs", Number, "Logical CPUs used by the node OS"),
        ("csockets", "CSockets", Number, "Number of CPU sockets"),
        ("ctotal", "CTotal", Number, "Number of logical CPUs"),
        (
            "dfree",
            "DFree",
            Unit,
            "Free space in the default storage unit",
        ),
        (
            "dtotal",
            "DTotal",
            Unit,
            "Total space in the default storage unit",
        ),
        (
            "spfree",
            "SpFree",
            Number,
            "Free spindles (exclusive storage only)",
        ),
        (
            "sptotal",
            "SpTotal",
            Number,
            "Total spindles (exclusive storage only)",
        ),
        ("mfree", "MFree", Unit, "Memory free for instances"),
        ("mnode", "MNode", Unit, "Memory used by the node itself"),
        ("mtotal", "MTotal", Unit, "Total physical memory"),
    ] {
        let resource = name;
        f.push(simple(name, title, kind, doc, move |ctx, n| {
            live_resource(ctx, n, resource)
        }));
    }
    f.push(simple(
        "ctime",
        "CTime",
        Timestamp,
        "Creation time",
        |_, n| fields::timestamp(n.ctime),
    ));
    f.push(simple(
        "mtime",
        "MTime",
        Timestamp,
        "Last modification time",
        |_, n| fields::timestamp(n.mtime),
    ));
    Table::new(f)
}

fn instance_list(names: Option<&Vec<&str>>) -> Value {
    fields::sorted_names(names.map_or_else(Vec::new, |v| v.iter().map(|s| s.to_string()).collect()))
}

/// A live node field: the hypervisor's report when the node answered;
/// otherwise, and for storage (no storage report yet), Ganeti's abnormal
/// statuses (offline, unavailable for non-vm_capable nodes, no data).
fn live_resource(ctx: &NodeContext<'_>, n: &Node, field: &str) -> ResultCell {
    let report = ctx
        .live
        .and_then(|l| l.nodes.get(n.uuid.as_str()))
        .and_then(|l| l.resources.as_ref());
    let Some(r) = report.filter(|_| !n.offline && n.vm_capable) else {
        return fields::live_node_value(n.offline, n.vm_capable);
    };
    match field {
        "mtotal" => ResultCell::normal(r.memory_total_mib),
        "mfree" => ResultCell::normal(r.memory_free_mib),
        "mnode" => ResultCell::normal(r.memory_dom0_mib),
        "ctotal" => ResultCell::normal(r.cpu_total),
        "cnodes" => ResultCell::normal(r.cpu_nodes),
        "csockets" => ResultCell::normal(r.cpu_sockets),
        _ => fields::live_node_value(n.offline, n.vm_capable),
    }
}

/// Queries nodes; see [`super::query`].
pub fn query(
    config: &ConfigData,
    selected: &[String],
    filter: Option<&Value>,
    live: Option<&super::live::LiveData>,
) -> Result<QueryResponse, QueryError> {
    let mut ctx = NodeContext::new(config);
    ctx.live = live;
    super::run(
        table(),
        config.nodes.values(),
        selected,
        filter,
        |n| n.name.to_string(),
        |f, n| (f.get)(&ctx, n),
    )
}
