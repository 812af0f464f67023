//! Field tables: what a resource's fields are called, their titles, kinds
//! and docs, and the getter computing each value; plus the pieces several
//! resources share (timestamps, tags, parameter fields).
//!
//! Names, titles and kinds are Ganeti 3.0's (`query.py`), checked by
//! `tests/golden/query/fields_*.json`; the docs are our own words.

use std::collections::HashMap;

use serde_json::Value;

use super::filter::FieldFlag;
use super::{FieldDefinition, FieldKind, ResultCell, ResultStatus};
use crate::config::objects::{ParamMap, Tags};
use crate::config::params::{ParamKind, ParamSpec};

/// One field of a resource: its definition, comparison rules, and getter
/// (`G` is the resource's getter type, a `dyn Fn` over its row type).
pub struct Field<G: ?Sized> {
    /// Name, title, kind and doc.
    pub def: FieldDefinition,
    /// How filters compare its values.
    pub flag: FieldFlag,
    /// Computes the value for one row.
    pub get: Box<G>,
}

/// All fields of a resource, with an index by name.
pub struct Table<G: ?Sized> {
    /// The fields, in definition order.
    pub fields: Vec<Field<G>>,
    by_name: HashMap<String, usize>,
}

impl<G: ?Sized> Table<G> {
    /// Builds the table and its name index (aliases are ordinary entries,
    /// made with [`alias`]).
    pub fn new(fields: Vec<Field<G>>) -> Table<G> {
        let by_name = fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.def.name.clone(), i))
            .collect();
        Table { fields, by_name }
    }

    /// The field called `name`, with its index.
    pub fn lookup(&self, name: &str) -> Option<(usize, &Field<G>)> {
        self.by_name.get(name).map(|&i| (i, &self.fields[i]))
    }

    /// Definitions of `selected`, unknown names included as kind "unknown".
    pub fn definitions(&self, selected: &[String]) -> Vec<FieldDefinition> {
        selected
            .iter()
            .map(|n| match self.lookup(n) {
                Some((_, f)) => f.def.clone(),
                None => unknown_definition(n),
            })
            .collect()
    }
}

/// The definition Ganeti gives a field name the resource does not have.
pub fn unknown_definition(name: &str) -> FieldDefinition {
    FieldDefinition {
        name: name.to_string(),
        title: name.to_string(),
        kind: FieldKind::Unknown,
        doc: format!("Unknown field '{name}'"),
    }
}

/// `QueryFields`: every definition sorted by name (NiceSort), or the
/// selected ones in order.
pub fn list_fields<G: ?Sized>(
    table: &Table<G>,
    selected: Option<&[String]>,
) -> Vec<FieldDefinition> {
    match selected {
        Some(names) => table.definitions(names),
        None => {
            let mut defs: Vec<FieldDefinition> =
                table.fields.iter().map(|f| f.def.clone()).collect();
            defs.sort_by_cached_key(|d| super::nice_key(&d.name));
            defs
        }
    }
}

/// A field definition.
pub fn def(name: &str, title: &str, kind: FieldKind, doc: &str) -> FieldDefinition {
    FieldDefinition {
        name: name.to_string(),
        title: title.to_string(),
        kind,
        doc: doc.to_string(),
    }
}

/// A field with plain comparisons.
pub fn field<G: ?Sized>(
    name: &str,
    title: &str,
    kind: FieldKind,
    doc: &str,
    get: Box<G>,
) -> Field<G> {
    Field {
        def: def(name, title, kind, doc),
        flag: FieldFlag::None,
        get,
    }
}

/// The same field under another name (Ganeti's field aliases).
pub fn alias<G: ?Sized>(alias: &str, target: &FieldDefinition, get: Box<G>) -> Field<G> {
    Field {
        def: FieldDefinition {
            name: alias.to_string(),
            ..target.clone()
        },
        flag: FieldFlag::None,
        get,
    }
}

/// The query kind of a parameter's values (Ganeti's `_VTToQFT`): strings
/// may be empty or null, so they are "other".
pub fn param_kind(kind: ParamKind) -> FieldKind {
    match kind {
        ParamKind::Bool => FieldKind::Bool,
        ParamKind::Int => FieldKind::Number,
        ParamKind::Float => FieldKind::Float,
        ParamKind::Size => FieldKind::Unit,
        ParamKind::String | ParamKind::MaybeString | ParamKind::List => FieldKind::Other,
    }
}

/// Column titles Ganeti gives some node parameters (`NDS_PARAMETER_TITLES`);
/// the others are titled by their field name.
pub fn nd_param_title(name: &str) -> Option<&'static str> {
    Some(match name {
        "exclusive_storage" => "ExclusiveStorage",
        "oob_program" => "OutOfBandProgram",
        "ovs" => "OpenvSwitch",
        "ovs_link" => "OpenvSwitchLink",
        "ovs_name" => "OpenvSwitchName",
        "spindle_count" => "SpindleCount",
        _ => return None,
    })
}

/// `(field name, title, kind, param key)` of the `ndp/*` fields.
pub fn nd_param_fields(specs: &[ParamSpec]) -> Vec<(String, String, FieldKind, &'static str)> {
    specs
        .iter()
        .map(|s| {
            let name = format!("ndp/{}", s.name);
            let title = nd_param_title(s.name).map_or_else(|| name.clone(), str::to_string);
            (name, title, param_kind(s.kind), s.name)
        })
        .collect()
}

/// One parameter out of a filled dictionary: null when the key is missing
/// (as Ganeti's `dict.get`).
pub fn param_value(params: &ParamMap, key: &str) -> ResultCell {
    ResultCell::normal(params.get(key).cloned().unwrap_or(Value::Null))
}

/// A parameter dictionary as a JSON object.
pub fn param_map(params: &ParamMap) -> ResultCell {
    ResultCell::normal(Value::Object(
        params.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    ))
}

/// Tags as a JSON list (sorted, as they are stored).
pub fn tags(tags: &Tags) -> ResultCell {
    ResultCell::normal(Value::Array(
        tags.iter().map(|t| Value::from(t.as_str())).collect(),
    ))
}

/// A creation/modification time; "unavailable" when the config has none
/// (old configs lack some timestamps).
pub fn timestamp(secs: f64) -> ResultCell {
    if secs == 0.0 {
        ResultCell::abnormal(ResultStatus::Unavail)
    } else {
        ResultCell::normal(secs)
    }
}

/// A value that needs data from a node, which the configuration alone
/// cannot give. Until node RPC exists (issue 4) every such value is
/// "no data", except on offline nodes ("offline") and nodes that host no
/// instances ("unavailable"), as Ganeti reports them.
pub fn live_node_value(offline: bool, vm_capable: bool) -> ResultCell {
    if offline {
        ResultCell::abnormal(ResultStatus::Offline)
    } else if !vm_capable {
        ResultCell::abnormal(ResultStatus::Unavail)
    } else {
        ResultCell::abnormal(ResultStatus::NoData)
    }
}

/// Names sorted in NiceSort order, as a JSON list.
pub fn sorted_names(mut names: Vec<String>) -> Value {
    super::nice_sort(&mut names);
    Value::Array(names.into_iter().map(Value::from).collect())
}
