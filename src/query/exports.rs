//! Export fields (`gnt-backup list`, `/2/query/export`): Ganeti 3.0's
//! `EXPORT_FIELDS`. Rows come from the nodes (their export directories,
//! gathered by masterd into [`LiveData`]): one row per export, and one row
//! whose export is "no data" for a node that did not answer.

use std::sync::OnceLock;

use serde_json::Value;

use super::fields::{field, Table};
use super::filter::FieldFlag;
use super::live::LiveData;
use super::{FieldKind, QueryError, QueryResponse, ResultCell, ResultStatus};
use crate::config::objects::ConfigData;

/// One row: a node's name and one of its exports (`None`: the node did
/// not answer).
pub struct ExportRow<'a> {
    /// Node name.
    pub node: &'a str,
    /// Export name.
    pub export: Option<&'a str>,
}

/// The getter type of export fields.
pub type ExportGetter = dyn Fn(&ExportRow<'_>) -> ResultCell + Send + Sync;

/// The export field table.
pub fn table() -> &'static Table<ExportGetter> {
    static TABLE: OnceLock<Table<ExportGetter>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let node_name: Box<ExportGetter> = Box::new(|r| ResultCell::normal(r.node));
        let mut node = field(
            "node",
            "Node",
            FieldKind::Text,
            "Node holding the export",
            node_name,
        );
        node.flag = FieldFlag::Hostname;
        let export_name: Box<ExportGetter> = Box::new(|r| match r.export {
            Some(e) => ResultCell::normal(e),
            None => ResultCell::abnormal(ResultStatus::NoData),
        });
        let export = field(
            "export",
            "Export",
            FieldKind::Text,
            "Export name (the exported instance's name)",
            export_name,
        );
        Table::new(vec![node, export])
    })
}

/// Answers an export query: every node of the config, in name order, with
/// the exports it reported in `live` (a node missing there, e.g. offline
/// or unreachable, gives one "no data" row).
pub fn query(
    config: &ConfigData,
    selected: &[String],
    filter: Option<&Value>,
    live: Option<&LiveData>,
) -> Result<QueryResponse, QueryError> {
    let mut rows = Vec::new();
    for n in config.nodes.values() {
        match live
            .and_then(|l| l.nodes.get(n.uuid.as_str()))
            .and_then(|l| l.exports.as_ref())
        {
            Some(list) => rows.extend(list.iter().map(|e| ExportRow {
                node: n.name.as_str(),
                export: Some(e.as_str()),
            })),
            None => rows.push(ExportRow {
                node: n.name.as_str(),
                export: None,
            }),
        }
    }
    super::run(
        table(),
        rows.into_iter(),
        selected,
        filter,
        |r| format!("{}/{}", r.node, r.export.unwrap_or_default()),
        |f, r| (f.get)(r),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::generated;
    use crate::query::live::NodeLive;

    #[test]
    fn one_row_per_export_and_no_data_for_silent_nodes() {
        let config = generated(2, 0);
        let mut nodes: Vec<_> = config.nodes.values().collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        let mut live = LiveData::default();
        live.nodes.insert(
            nodes[0].uuid.to_string(),
            NodeLive {
                exports: Some(vec!["web2".into(), "web1".into()]),
                ..NodeLive::default()
            },
        );
        let fields = vec!["node".to_string(), "export".to_string()];
        let r = query(&config, &fields, None, Some(&live)).unwrap();
        let rows: Vec<Value> = r
            .data
            .iter()
            .map(|row| serde_json::to_value(row).unwrap())
            .collect();
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!(rows[0][1][1], "web1");
        assert_eq!(rows[1][1][1], "web2");
        assert_eq!(rows[0][0][1], nodes[0].name.as_str());
        // The silent node: status 2 (no data).
        assert_eq!(rows[2][0][1], nodes[1].name.as_str());
        assert_eq!(rows[2][1][0], 2);
        // A filter on the node.
        let only = serde_json::json!(["=", "node", nodes[1].name.as_str()]);
        let r = query(&config, &fields, Some(&only), Some(&live)).unwrap();
        assert_eq!(r.data.len(), 1);
    }
}
