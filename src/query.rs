//! Query2: Ganeti's generic query interface over the cluster configuration
//! (the LUXI `Query`/`QueryFields` calls, RAPI `/2/query/*`, and every
//! `gnt-* list`).
//!
//! - [`fields`]: field tables (name, title, kind, doc, getter) and the
//!   shared field machinery; one module per resource: [`nodes`],
//!   [`instances`], [`groups`], [`cluster`], [`jobs`].
//! - [`filter`]: the filter language (text and JSON forms) and its evaluator.
//! - this file: the wire types ([`QueryResponse`], [`FieldDefinition`]) and
//!   the engine, [`query`] and [`query_fields`].
//!
//! Runs in masterd, which answers from its config snapshot; pure functions
//! of a [`ConfigData`], so the CLI's renderer and tests can use them too.
//! It does not talk to nodes: fields that need live data from a node
//! (free memory, whether an instance runs) answer "no data" until node RPC
//! exists (issue 4), and it never writes anything.

pub mod cluster;
pub mod exports;
pub mod fields;
pub mod filter;
pub mod groups;
pub mod instances;
pub mod jobs;
pub mod live;
pub mod nodes;

use serde::ser::SerializeSeq;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::config::ConfigData;
use fields::Field;
use filter::{CompiledFilter, FieldRef, FilterError};

/// The type of a field's values (Ganeti's `QFT_*`), as sent on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FieldKind {
    /// A field the resource does not have (`"unknown"`).
    #[serde(rename = "unknown")]
    Unknown,
    /// Text (`"text"`).
    #[serde(rename = "text")]
    Text,
    /// A boolean (`"bool"`).
    #[serde(rename = "bool")]
    Bool,
    /// A whole number (`"number"`).
    #[serde(rename = "number")]
    Number,
    /// A floating-point number (`"float"`).
    #[serde(rename = "float")]
    Float,
    /// A size in MiB (`"unit"`), printed with units by the CLI.
    #[serde(rename = "unit")]
    Unit,
    /// Seconds since the epoch (`"timestamp"`).
    #[serde(rename = "timestamp")]
    Timestamp,
    /// Anything else: lists, dictionaries, maybe-null values (`"other"`).
    #[serde(rename = "other")]
    Other,
}

impl FieldKind {
    /// The wire name (`"text"`, `"unit"`, …).
    pub fn wire_name(self) -> &'static str {
        match self {
            FieldKind::Unknown => "unknown",
            FieldKind::Text => "text",
            FieldKind::Bool => "bool",
            FieldKind::Number => "number",
            FieldKind::Float => "float",
            FieldKind::Unit => "unit",
            FieldKind::Timestamp => "timestamp",
            FieldKind::Other => "other",
        }
    }
}

/// Status of one value in a result row (Ganeti's `RS_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultStatus {
    /// The value is there (`RS_NORMAL`, 0).
    Normal,
    /// The field is unknown (`RS_UNKNOWN`, 1).
    Unknown,
    /// The data could not be collected, e.g. the node did not answer
    /// (`RS_NODATA`, 2).
    NoData,
    /// The value does not exist for this item (`RS_UNAVAIL`, 3).
    Unavail,
    /// The item's node is marked offline (`RS_OFFLINE`, 4).
    Offline,
}

impl ResultStatus {
    /// The number sent on the wire.
    pub fn code(self) -> u8 {
        match self {
            ResultStatus::Normal => 0,
            ResultStatus::Unknown => 1,
            ResultStatus::NoData => 2,
            ResultStatus::Unavail => 3,
            ResultStatus::Offline => 4,
        }
    }

    /// The status for a wire number.
    pub fn from_code(code: u64) -> Option<ResultStatus> {
        Some(match code {
            0 => ResultStatus::Normal,
            1 => ResultStatus::Unknown,
            2 => ResultStatus::NoData,
            3 => ResultStatus::Unavail,
            4 => ResultStatus::Offline,
            _ => return None,
        })
    }
}

/// One value of a result row: `[status, value]` on the wire; the value is
/// null unless the status is normal.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultCell {
    /// Whether the value is there.
    pub status: ResultStatus,
    /// The value (null for any status but normal).
    pub value: Value,
}

impl ResultCell {
    /// A present value.
    pub fn normal(value: impl Into<Value>) -> ResultCell {
        ResultCell {
            status: ResultStatus::Normal,
            value: value.into(),
        }
    }

    /// A missing value with the given reason.
    pub fn abnormal(status: ResultStatus) -> ResultCell {
        ResultCell {
            status,
            value: Value::Null,
        }
    }
}

impl Serialize for ResultCell {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(2))?;
        seq.serialize_element(&self.status.code())?;
        seq.serialize_element(&self.value)?;
        seq.end()
    }
}

impl<'de> Deserialize<'de> for ResultCell {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (code, value): (u64, Value) = Deserialize::deserialize(d)?;
        let status = ResultStatus::from_code(code)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown result status {code}")))?;
        Ok(ResultCell { status, value })
    }
}

/// A field's description (Ganeti's `QueryFieldDefinition`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDefinition {
    /// The field name used in `-o` and filters (`be/maxmem`).
    pub name: String,
    /// The column title (`ConfigMaxMem`).
    pub title: String,
    /// The type of its values.
    pub kind: FieldKind,
    /// One line describing it.
    pub doc: String,
}

/// The answer to a query (Ganeti's `QueryResponse`): the selected fields'
/// definitions, and one row per item with one cell per field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryResponse {
    /// Definitions of the selected fields, in the order asked.
    pub fields: Vec<FieldDefinition>,
    /// Rows sorted by item name (NiceSort order).
    pub data: Vec<Vec<ResultCell>>,
}

/// The answer to a field listing (Ganeti's `QueryFieldsResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryFieldsResponse {
    /// The field definitions.
    pub fields: Vec<FieldDefinition>,
}

/// What can be queried (Ganeti's `QR_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resource {
    /// `"node"`.
    Node,
    /// `"instance"`.
    Instance,
    /// `"group"`.
    Group,
    /// `"cluster"`: one row.
    Cluster,
    /// `"job"`: rows come from the job queue, see [`jobs::query_jobs`].
    Job,
    /// `"export"`: rows come from the nodes' export directories.
    Export,
}

impl Resource {
    /// The wire name.
    pub fn wire_name(self) -> &'static str {
        match self {
            Resource::Node => "node",
            Resource::Instance => "instance",
            Resource::Group => "group",
            Resource::Cluster => "cluster",
            Resource::Job => "job",
            Resource::Export => "export",
        }
    }
}

impl std::str::FromStr for Resource {
    type Err = QueryError;

    fn from_str(s: &str) -> Result<Resource, QueryError> {
        Ok(match s {
            "node" => Resource::Node,
            "instance" => Resource::Instance,
            "group" => Resource::Group,
            "cluster" => Resource::Cluster,
            "job" => Resource::Job,
            "export" => Resource::Export,
            other => return Err(QueryError::UnknownResource(other.to_string())),
        })
    }
}

/// Why a query was refused.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The resource name is not one we answer.
    #[error("Resource type '{0}' unknown")]
    UnknownResource(String),
    /// Job rows come from the job queue, not from the config.
    #[error("jobs are queried through the job queue, not the configuration")]
    JobsNeedQueue,
    /// The filter is invalid.
    #[error("invalid query filter")]
    Filter {
        /// What is wrong with it.
        #[source]
        source: FilterError,
    },
}

impl QueryError {
    /// The error kind crossing the LUXI boundary: every refusal is bad
    /// input (Ganeti raises `ParameterError`/`OpPrereqError` with
    /// `ECODE_INVAL`).
    pub fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::Inval
    }
}

/// Runs a query on the configuration: the rows of `resource` that pass
/// `filter`, with the `fields` asked for, sorted by name.
///
/// Unknown field names do not fail the query (as in Ganeti): their
/// definition has kind "unknown" and every cell has status "unknown". A
/// filter naming an unknown field or operator does fail.
pub fn query(
    resource: Resource,
    fields: &[String],
    filter: Option<&Value>,
    config: &ConfigData,
) -> Result<QueryResponse, QueryError> {
    query_live(resource, fields, filter, config, None)
}

/// [`query`] with data gathered from the nodes for the live fields
/// (`None`: every live field answers "no data").
pub fn query_live(
    resource: Resource,
    fields: &[String],
    filter: Option<&Value>,
    config: &ConfigData,
    live: Option<&live::LiveData>,
) -> Result<QueryResponse, QueryError> {
    match resource {
        Resource::Node => nodes::query(config, fields, filter, live),
        Resource::Instance => instances::query(config, fields, filter, live),
        Resource::Group => groups::query(config, fields, filter),
        Resource::Cluster => cluster::query(config, fields, filter),
        Resource::Job => Err(QueryError::JobsNeedQueue),
        Resource::Export => exports::query(config, fields, filter, live),
    }
}

/// Lists field definitions of `resource`: all of them sorted by name
/// (NiceSort) when `fields` is None, else the ones asked for in that order
/// (unknown names get kind "unknown").
pub fn query_fields(resource: Resource, fields: Option<&[String]>) -> QueryFieldsResponse {
    let defs = match resource {
        Resource::Node => fields::list_fields(nodes::table(), fields),
        Resource::Instance => fields::list_fields(instances::table(), fields),
        Resource::Group => fields::list_fields(groups::table(), fields),
        Resource::Cluster => fields::list_fields(cluster::table(), fields),
        Resource::Job => fields::list_fields(jobs::table(), fields),
        Resource::Export => fields::list_fields(exports::table(), fields),
    };
    QueryFieldsResponse { fields: defs }
}

/// Evaluates a query over `rows` with the table of their resource: the
/// generic part of every resource's `query`. `name_of` gives a row's name
/// (for sorting) and `get` computes a field's value for a row.
pub(crate) fn run<R, G: ?Sized>(
    table: &fields::Table<G>,
    rows: impl Iterator<Item = R>,
    selected: &[String],
    filter: Option<&Value>,
    name_of: impl Fn(&R) -> String,
    get: impl Fn(&Field<G>, &R) -> ResultCell,
) -> Result<QueryResponse, QueryError> {
    let compiled = match filter {
        Some(f) => Some(
            CompiledFilter::compile(f, &|name| {
                table.lookup(name).map(|(index, field)| FieldRef {
                    index,
                    kind: field.def.kind,
                    flag: field.flag,
                })
            })
            .map_err(|source| QueryError::Filter { source })?,
        ),
        None => None,
    };
    let columns: Vec<Option<&Field<G>>> = selected
        .iter()
        .map(|n| table.lookup(n).map(|(_, f)| f))
        .collect();
    let mut out: Vec<(NiceKey, Vec<ResultCell>)> = Vec::new();
    for row in rows {
        if let Some(c) = &compiled {
            let keep = c.matches(&mut |i| get(&table.fields[i], &row));
            if !keep {
                continue;
            }
        }
        let cells = columns
            .iter()
            .map(|c| match c {
                Some(f) => get(f, &row),
                None => ResultCell::abnormal(ResultStatus::Unknown),
            })
            .collect();
        out.push((nice_key(&name_of(&row)), cells));
    }
    // Stable: equal keys keep the input order, as Ganeti's (key, index) sort.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(QueryResponse {
        fields: table.definitions(selected),
        data: out.into_iter().map(|(_, r)| r).collect(),
    })
}

/// A sort key in Ganeti's NiceSort order.
pub type NiceKey = Vec<NiceAtom>;

/// One group of a NiceSort key: absent, a digit run, or a non-digit run.
/// Absent sorts first, numbers before text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum NiceAtom {
    /// The name had fewer groups.
    Absent,
    /// A run of digits, compared by value (leading zeros dropped; shorter
    /// is smaller).
    Number(usize, String),
    /// A run of non-digits (or the unsplit rest of the name).
    Text(String),
}

/// Ganeti's `NiceSortKey`: the first eight runs of digits or non-digits,
/// digits compared as numbers, then the rest of the name as text; so
/// `node2` sorts before `node10`.
pub fn nice_key(name: &str) -> NiceKey {
    const GROUPS: usize = 8;
    let mut key = Vec::with_capacity(GROUPS + 1);
    let mut rest = name;
    for _ in 0..GROUPS {
        let Some(first) = rest.chars().next() else {
            key.push(NiceAtom::Absent);
            continue;
        };
        let digit = first.is_ascii_digit();
        let end = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() != digit)
            .map_or(rest.len(), |(i, _)| i);
        let (run, tail) = rest.split_at(end);
        key.push(if digit {
            let trimmed = run.trim_start_matches('0');
            NiceAtom::Number(trimmed.len(), trimmed.to_string())
        } else {
            NiceAtom::Text(run.to_string())
        });
        rest = tail;
    }
    key.push(NiceAtom::Text(rest.to_string()));
    key
}

/// Sorts names in NiceSort order.
pub fn nice_sort(names: &mut [String]) {
    names.sort_by_cached_key(|n| nice_key(n));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_sort_orders_numbers_by_value() {
        let mut v: Vec<String> = ["a10", "a2", "a1", "b", "a", "a02x", "10", "9", ""]
            .iter()
            .map(|s| s.to_string())
            .collect();
        nice_sort(&mut v);
        // Checked against Ganeti's utils.NiceSort.
        assert_eq!(v, ["", "9", "10", "a", "a1", "a2", "a02x", "a10", "b"]);
    }

    #[test]
    fn result_cells_are_pairs_on_the_wire() {
        let c = ResultCell::normal(5);
        assert_eq!(serde_json::to_string(&c).unwrap(), "[0,5]");
        let c = ResultCell::abnormal(ResultStatus::Offline);
        assert_eq!(serde_json::to_string(&c).unwrap(), "[4,null]");
        let back: ResultCell = serde_json::from_str("[2,null]").unwrap();
        assert_eq!(back.status, ResultStatus::NoData);
    }

    /// Field names, titles and kinds are exactly Ganeti 3.0's
    /// (`tests/golden/query/fields.json`, from its `query.py`).
    #[test]
    fn field_tables_match_ganeti() {
        let golden: std::collections::BTreeMap<String, Vec<(String, String, String)>> =
            serde_json::from_str(include_str!("../tests/golden/query/fields.json")).unwrap();
        for (name, resource) in [
            ("node", Resource::Node),
            ("instance", Resource::Instance),
            ("group", Resource::Group),
            ("cluster", Resource::Cluster),
            ("job", Resource::Job),
        ] {
            let mut ours: Vec<(String, String, String)> = query_fields(resource, None)
                .fields
                .into_iter()
                .map(|d| (d.name, d.title, d.kind.wire_name().to_string()))
                .collect();
            ours.sort();
            let theirs = &golden[name];
            let missing: Vec<_> = theirs.iter().filter(|f| !ours.contains(f)).collect();
            let extra: Vec<_> = ours.iter().filter(|f| !theirs.contains(f)).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{name}: missing {missing:?}, extra {extra:?}"
            );
        }
    }

    #[test]
    fn query_wire_shape_and_errors() {
        let cfg = crate::config::test_support::generated(2, 3);
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let r = query(
            Resource::Node,
            &f(&["name", "pinst_cnt", "bogus"]),
            None,
            &cfg,
        )
        .unwrap();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v["fields"][2],
            serde_json::json!({"name": "bogus", "title": "bogus", "kind": "unknown",
                               "doc": "Unknown field 'bogus'"})
        );
        assert_eq!(
            v["data"][0],
            serde_json::json!([[0, "node1.example.com"], [0, 2], [1, null]])
        );
        let bad = serde_json::json!(["==", "bogus", 1]);
        let err = query(Resource::Node, &f(&["name"]), Some(&bad), &cfg).unwrap_err();
        assert_eq!(
            crate::error::chain(&err),
            "invalid query filter: Unknown field 'bogus'"
        );
        let by_name = serde_json::json!(["|", ["==", "name", "inst2"]]);
        let r = query(
            Resource::Instance,
            &f(&["name", "be/memory", "hv/kernel_path"]),
            Some(&by_name),
            &cfg,
        )
        .unwrap();
        assert_eq!(r.data.len(), 1);
        assert_eq!(r.data[0][1], ResultCell::normal(512));
        // The fake hypervisor has no kernel_path.
        assert_eq!(r.data[0][2].status, ResultStatus::Unavail);
        assert!(matches!(
            query(Resource::Job, &[], None, &cfg),
            Err(QueryError::JobsNeedQueue)
        ));
        let c = query(Resource::Cluster, &f(&["name", "master_node"]), None, &cfg).unwrap();
        assert_eq!(c.data[0][1], ResultCell::normal("node1.example.com"));
    }
}
