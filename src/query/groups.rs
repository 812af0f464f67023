//! Node group fields (`gnt-group list`, `/2/query/group`): Ganeti 3.0's
//! `GROUP_FIELDS`. All come from the configuration.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

use super::fields::{self, field, Field, Table};
use super::{FieldKind, QueryError, QueryResponse, ResultCell};
use crate::config::objects::{AllocPolicy, ConfigData, NodeGroup, Uuid};
use crate::config::params::{self, ParamFamily};

/// What every group getter sees besides the group: the configuration and
/// member nodes and primary instances per group, computed once per query.
pub struct GroupContext<'a> {
    /// The configuration snapshot.
    pub config: &'a ConfigData,
    /// Names of the group's nodes.
    pub nodes: HashMap<&'a Uuid, Vec<&'a str>>,
    /// Names of instances whose primary node is in the group.
    pub instances: HashMap<&'a Uuid, Vec<&'a str>>,
}

impl<'a> GroupContext<'a> {
    /// Indexes `config`'s nodes and instances by group.
    pub fn new(config: &'a ConfigData) -> GroupContext<'a> {
        let mut nodes: HashMap<&Uuid, Vec<&str>> = HashMap::new();
        for n in config.nodes.values() {
            nodes.entry(&n.group).or_default().push(n.name.as_str());
        }
        let mut instances: HashMap<&Uuid, Vec<&str>> = HashMap::new();
        for i in config.instances.values() {
            if let Some(n) = config.nodes.get(&i.primary_node) {
                instances.entry(&n.group).or_default().push(i.name.as_str());
            }
        }
        GroupContext {
            config,
            nodes,
            instances,
        }
    }
}

/// The getter type of group fields.
pub type GroupGetter = dyn Fn(&GroupContext<'_>, &NodeGroup) -> ResultCell + Send + Sync;

type F = Field<GroupGetter>;

fn simple(
    name: &str,
    title: &str,
    kind: FieldKind,
    doc: &str,
    get: impl Fn(&GroupContext<'_>, &NodeGroup) -> ResultCell + Send + Sync + 'static,
) -> F {
    field(name, title, kind, doc, Box::new(get))
}

/// Ganeti's name of an allocation policy.
pub fn alloc_policy_name(p: AllocPolicy) -> &'static str {
    match p {
        AllocPolicy::Preferred => "preferred",
        AllocPolicy::LastResort => "last_resort",
        AllocPolicy::Unallocable => "unallocable",
    }
}

fn filled_ndparams(c: &ConfigData, g: &NodeGroup) -> crate::config::objects::ParamMap {
    params::fill_dict(&c.cluster.ndparams, &g.ndparams, &[])
}

fn names(v: Option<&Vec<&str>>) -> Value {
    fields::sorted_names(v.map_or_else(Vec::new, |v| v.iter().map(|s| s.to_string()).collect()))
}

/// The group field table.
pub fn table() -> &'static Table<GroupGetter> {
    static TABLE: OnceLock<Table<GroupGetter>> = OnceLock::new();
    TABLE.get_or_init(build)
}

fn build() -> Table<GroupGetter> {
    use FieldKind::*;
    let mut f: Vec<F> = vec![
        simple(
            "alloc_policy",
            "AllocPolicy",
            Text,
            "Allocation policy: preferred, last_resort or unallocable",
            |_, g| ResultCell::normal(alloc_policy_name(g.alloc_policy)),
        ),
        simple("name", "Group", Text, "Group name", |_, g| {
            ResultCell::normal(g.name.as_str())
        }),
        simple(
            "serial_no",
            "SerialNo",
            Number,
            "Group serial number, bumped by every change",
            |_, g| ResultCell::normal(g.serial_no),
        ),
        simple("uuid", "UUID", Text, "Group UUID", |_, g| {
            ResultCell::normal(g.uuid.as_str())
        }),
        simple(
            "node_cnt",
            "Nodes",
            Number,
            "Number of nodes in the group",
            |c, g| ResultCell::normal(c.nodes.get(&g.uuid).map_or(0, Vec::len)),
        ),
        simple(
            "node_list",
            "NodeList",
            Other,
            "Nodes in the group",
            |c, g| ResultCell::normal(names(c.nodes.get(&g.uuid))),
        ),
        simple(
            "pinst_cnt",
            "Instances",
            Number,
            "Number of instances whose primary node is in the group",
            |c, g| ResultCell::normal(c.instances.get(&g.uuid).map_or(0, Vec::len)),
        ),
        simple(
            "pinst_list",
            "InstanceList",
            Other,
            "Instances whose primary node is in the group",
            |c, g| ResultCell::normal(names(c.instances.get(&g.uuid))),
        ),
        simple("tags", "Tags", Other, "Tags", |_, g| fields::tags(&g.tags)),
        simple(
            "ipolicy",
            "InstancePolicy",
            Other,
            "Effective instance policy (cluster and group merged)",
            |c, g| fields::param_map(&params::fill_ipolicy(&c.config.cluster, g)),
        ),
        simple(
            "custom_ipolicy",
            "CustomInstancePolicy",
            Other,
            "Instance policy set on the group",
            |_, g| fields::param_map(&g.ipolicy),
        ),
        simple(
            "custom_ndparams",
            "CustomNDParams",
            Other,
            "Node parameters set on the group",
            |_, g| fields::param_map(&g.ndparams),
        ),
        simple(
            "ndparams",
            "NDParams",
            Other,
            "Effective node parameters (cluster and group merged)",
            |c, g| fields::param_map(&filled_ndparams(c.config, g)),
        ),
        simple(
            "diskparams",
            "DiskParameters",
            Other,
            "Effective disk parameters per disk template",
            |c, g| {
                let filled = params::fill_diskparams(&c.config.cluster, g);
                ResultCell::normal(serde_json::to_value(filled).unwrap_or(Value::Null))
            },
        ),
        simple(
            "custom_diskparams",
            "CustomDiskParameters",
            Other,
            "Disk parameters set on the group",
            |_, g| ResultCell::normal(serde_json::to_value(&g.diskparams).unwrap_or(Value::Null)),
        ),
    ];
    let nd_specs = params::specs(ParamFamily::Nd, None).unwrap_or(&[]);
    for (name, title, kind, key) in fields::nd_param_fields(nd_specs) {
        let doc = format!("Node parameter {key}");
        f.push(simple(&name, &title, kind, &doc, move |c, g| {
            fields::param_value(&filled_ndparams(c.config, g), key)
        }));
    }
    f.push(simple(
        "ctime",
        "CTime",
        Timestamp,
        "Creation time",
        |_, g| fields::timestamp(g.ctime),
    ));
    f.push(simple(
        "mtime",
        "MTime",
        Timestamp,
        "Last modification time",
        |_, g| fields::timestamp(g.mtime),
    ));
    Table::new(f)
}

/// Queries node groups; see [`super::query`].
pub fn query(
    config: &ConfigData,
    selected: &[String],
    filter: Option<&Value>,
) -> Result<QueryResponse, QueryError> {
    let ctx = GroupContext::new(config);
    super::run(
        table(),
        config.nodegroups.values(),
        selected,
        filter,
        |g| g.name.to_string(),
        |f, g| (f.get)(&ctx, g),
    )
}
