//! Cluster fields (`/2/query/cluster`, `gnt-cluster info` internals):
//! Ganeti 3.0's `CLUSTER_FIELDS`. One row, the cluster.

use std::sync::OnceLock;

use serde_json::{json, Value};

use super::fields::{self, field, Field, Table};
use super::filter::FieldFlag;
use super::{FieldKind, QueryError, QueryResponse, ResultCell, ResultStatus};
use crate::config::objects::ConfigData;
use crate::constants;

/// The getter type of cluster fields.
pub type ClusterGetter = dyn Fn(&ConfigData) -> ResultCell + Send + Sync;

type F = Field<ClusterGetter>;

fn simple(
    name: &str,
    title: &str,
    kind: FieldKind,
    doc: &str,
    get: impl Fn(&ConfigData) -> ResultCell + Send + Sync + 'static,
) -> F {
    field(name, title, kind, doc, Box::new(get))
}

fn master_name(c: &ConfigData) -> ResultCell {
    ResultCell::normal(c.master_node().map(|n| n.name.as_str()))
}

/// The cluster field table.
pub fn table() -> &'static Table<ClusterGetter> {
    static TABLE: OnceLock<Table<ClusterGetter>> = OnceLock::new();
    TABLE.get_or_init(build)
}

fn build() -> Table<ClusterGetter> {
    use FieldKind::*;
    let hostname = |mut f: F| {
        f.flag = FieldFlag::Hostname;
        f
    };
    let f: Vec<F> = vec![
        simple("tags", "Tags", Other, "Tags", |c| {
            fields::tags(&c.cluster.tags)
        }),
        simple(
            "architecture",
            "ArchInfo",
            Other,
            "Architecture of the master daemon: pointer width and machine",
            |_| {
                let bits = format!("{}bit", usize::BITS);
                ResultCell::normal(json!([bits, std::env::consts::ARCH]))
            },
        ),
        // The drain flag and watcher pause live in files next to the job
        // queue, not in the configuration; masterd will fill them in.
        simple(
            "drain_flag",
            "QueueDrained",
            Bool,
            "Whether the job queue is drained",
            |_| ResultCell::abnormal(ResultStatus::NoData),
        ),
        simple(
            "watcher_pause",
            "WatcherPause",
            Timestamp,
            "Until when the watcher is paused",
            |_| ResultCell::abnormal(ResultStatus::NoData),
        ),
        hostname(simple(
            "master_node",
            "Master",
            Text,
            "Master node name",
            master_name,
        )),
        hostname(simple("cluster_name", "Name", Text, "Cluster name", |c| {
            ResultCell::normal(c.cluster.cluster_name.as_str())
        })),
        simple(
            "volume_group_name",
            "VgName",
            Text,
            "LVM volume group for instance disks",
            |c| ResultCell::normal(c.cluster.volume_group_name.as_deref()),
        ),
        simple(
            "software_version",
            "SoftwareVersion",
            Text,
            "Ganeti version the cluster software is compatible with",
            |_| ResultCell::normal(constants::GANETI_COMPAT_VERSION),
        ),
        simple(
            "protocol_version",
            "ProtocolVersion",
            Number,
            "RPC protocol version",
            |_| ResultCell::normal(constants::PROTOCOL_VERSION),
        ),
        simple(
            "config_version",
            "ConfigVersion",
            Number,
            "Configuration format version",
            |_| ResultCell::normal(constants::CONFIG_VERSION),
        ),
        simple(
            "os_api_version",
            "OsApiVersion",
            Number,
            "Highest supported OS API version",
            |_| {
                ResultCell::normal(
                    constants::OS_API_VERSIONS
                        .iter()
                        .copied()
                        .max()
                        .unwrap_or(0),
                )
            },
        ),
        simple(
            "export_version",
            "ExportVersion",
            Number,
            "Instance export format version",
            |_| ResultCell::normal(constants::EXPORT_VERSION),
        ),
        simple(
            "vcs_version",
            "VCSVersion",
            Text,
            "Version of the software build",
            |_| ResultCell::normal(format!("ganeti-rs {}", constants::RELEASE_VERSION)),
        ),
        simple("ctime", "CTime", Timestamp, "Creation time", |c| {
            fields::timestamp(c.cluster.ctime)
        }),
        simple("mtime", "MTime", Timestamp, "Last modification time", |c| {
            fields::timestamp(c.cluster.mtime)
        }),
        hostname(simple("name", "Name", Text, "Cluster name", |c| {
            ResultCell::normal(c.cluster.cluster_name.as_str())
        })),
    ];
    Table::new(f)
}

/// Queries the cluster (one row); see [`super::query`].
pub fn query(
    config: &ConfigData,
    selected: &[String],
    filter: Option<&Value>,
) -> Result<QueryResponse, QueryError> {
    super::run(
        table(),
        std::iter::once(config),
        selected,
        filter,
        |c| c.cluster.cluster_name.clone(),
        |f, c| (f.get)(c),
    )
}
