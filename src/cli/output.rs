//! Output shapes scripts depend on.
//!
//! [`Info`] is the hierarchical "generic info" format of `gnt-* info`
//! (Ganeti's `PrintGenericInfo`: valid YAML, two-space indents, ordered
//! sections, sorted dictionaries, `- ` list items).
//!
//! [`format_query_result`] renders a Query2 answer as the `gnt-* list` table
//! (Ganeti's `FormatQueryResult`/`FormatTable`: titles as headers, padded
//! columns or a separator, sizes with units, `Y`/`N` booleans, `?`/`-`/`*`
//! for missing values), and [`format_list_fields`] the `list-fields` table.
//! Both are golden-tested against Ganeti's own renderer
//! (`tests/golden/query/`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::query::{
    FieldDefinition, FieldKind, QueryFieldsResponse, QueryResponse, Resource, ResultCell,
    ResultStatus,
};

/// A node of generic-info output.
#[derive(Debug, Clone, PartialEq)]
pub enum Info {
    /// A scalar, printed as is.
    Text(String),
    /// Keys in the given order.
    Section(Vec<(String, Info)>),
    /// Keys sorted by name.
    Dict(BTreeMap<String, Info>),
    /// `- item` entries.
    List(Vec<Info>),
}

impl Info {
    /// A scalar from anything printable.
    pub fn text(s: impl ToString) -> Info {
        Info::Text(s.to_string())
    }

    /// A sorted dictionary from a JSON object (nested objects become nested
    /// dictionaries; other values print as Ganeti prints Python values).
    pub fn from_json_dict(v: &serde_json::Value) -> Info {
        match v {
            serde_json::Value::Object(m) => Info::Dict(
                m.iter()
                    .map(|(k, v)| (k.clone(), Info::from_json_dict(v)))
                    .collect(),
            ),
            other => Info::Text(python_repr(other)),
        }
    }

    /// Renders the tree (no trailing newline).
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0, false);
        out.trim_end_matches('\n').to_string()
    }

    fn write(&self, out: &mut String, level: usize, after_key: bool) {
        let indent = "  ".repeat(level);
        let write_entries =
            |out: &mut String, entries: &mut dyn Iterator<Item = (&String, &Info)>| {
                let mut first = true;
                if after_key {
                    out.push('\n');
                }
                for (k, v) in entries {
                    if after_key || !first {
                        out.push_str(&indent);
                    }
                    first = false;
                    let _ = write!(out, "{k}: ");
                    v.write(out, level + 1, true);
                }
            };
        match self {
            Info::Text(s) => {
                out.push_str(s);
                out.push('\n');
            }
            Info::Section(v) if v.is_empty() => out.push('\n'),
            Info::Dict(m) if m.is_empty() => out.push('\n'),
            Info::List(v) if v.is_empty() => out.push('\n'),
            Info::Section(v) => write_entries(out, &mut v.iter().map(|(k, v)| (k, v))),
            Info::Dict(m) => write_entries(out, &mut m.iter()),
            Info::List(items) => {
                if after_key {
                    out.push('\n');
                }
                for (i, item) in items.iter().enumerate() {
                    if after_key || i > 0 {
                        out.push_str(&indent);
                    }
                    out.push_str("- ");
                    item.write(out, level + 1, false);
                }
            }
        }
    }
}

/// Prints a JSON scalar the way Ganeti's Python `str()` would.
pub fn python_repr(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "None".into(),
        serde_json::Value::Bool(true) => "True".into(),
        serde_json::Value::Bool(false) => "False".into(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::Array(a) => {
            let items: Vec<String> = a
                .iter()
                .map(|x| match x {
                    serde_json::Value::String(s) => format!("'{s}'"),
                    other => python_repr(other),
                })
                .collect();
            format!("[{}]", items.join(", "))
        }
        serde_json::Value::Object(_) => v.to_string(),
    }
}

/// How sizes (fields of kind "unit", in MiB) are printed: `--units`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Units {
    /// `h`: the largest unit that keeps the number at least 1, with a
    /// suffix (`512M`, `1.5G`, `2.0T`).
    Human,
    /// `m`: MiB, no suffix.
    Mebi,
    /// `g`: GiB with one decimal, no suffix.
    Gibi,
    /// `t`: TiB with one decimal, no suffix.
    Tebi,
}

impl std::str::FromStr for Units {
    type Err = String;

    fn from_str(s: &str) -> Result<Units, String> {
        match s {
            "h" => Ok(Units::Human),
            "m" => Ok(Units::Mebi),
            "g" => Ok(Units::Gibi),
            "t" => Ok(Units::Tebi),
            other => Err(format!("Invalid unit specified '{other}'")),
        }
    }
}

/// A size in MiB with units (Ganeti's `FormatUnit`).
pub fn format_unit(mib: f64, units: Units) -> String {
    const K: f64 = 1024.0;
    match units {
        Units::Mebi => format!("{mib:.0}"),
        Units::Human if mib < K => format!("{mib:.0}M"),
        Units::Gibi => format!("{:.1}", mib / K),
        Units::Human if mib < K * K => format!("{:.1}G", mib / K),
        Units::Tebi => format!("{:.1}", mib / K / K),
        Units::Human => format!("{:.1}T", mib / K / K),
    }
}

/// A per-command way of printing a column, replacing the default for its
/// kind (the `format_override` of Ganeti's list commands).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueFormat {
    /// A list printed as its items joined by commas (`a,b`).
    CommaJoin,
    /// A dictionary printed as `key=value, key=value`, or `(empty)`.
    KeyValues,
}

/// The column overrides of a resource's `gnt-* list` command.
pub fn list_overrides(resource: Resource) -> Vec<(String, ValueFormat)> {
    let names: &[&str] = match resource {
        Resource::Node => &["pinst_list", "sinst_list", "tags"],
        Resource::Instance => &[
            "tags",
            "disk.sizes",
            "nic.macs",
            "nic.ips",
            "nic.modes",
            "nic.links",
            "nic.bridges",
            "nic.networks",
            "snodes",
            "snodes.group",
            "snodes.group.uuid",
        ],
        Resource::Group => &["node_list", "pinst_list"],
        // gnt-job list joins a job's opcode summaries with commas.
        Resource::Job => &["summary"],
        Resource::Cluster | Resource::Export => &[],
    };
    let mut out: Vec<(String, ValueFormat)> = names
        .iter()
        .map(|n| (n.to_string(), ValueFormat::CommaJoin))
        .collect();
    if resource == Resource::Group {
        out.push(("ndparams".into(), ValueFormat::KeyValues));
    }
    out
}

/// Options of a `gnt-* list` rendering.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// `--separator`: join cells with it, without padding (None: aligned
    /// columns).
    pub separator: Option<String>,
    /// Whether to print the header row (off with `--no-headers`).
    pub header: bool,
    /// `--units`; None picks `h` for aligned output and `m` with a separator.
    pub units: Option<Units>,
    /// `--verbose`: long texts for missing values (`(nodata)` for `?`).
    pub verbose: bool,
    /// Column overrides, usually [`list_overrides`].
    pub overrides: Vec<(String, ValueFormat)>,
}

/// Overall state of a listing (Ganeti's `QR_*`), which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStatus {
    /// Every value was there.
    Normal,
    /// Some values were missing (no data, unavailable, offline).
    Incomplete,
    /// Some fields were unknown: the command exits with
    /// [`EXIT_UNKNOWN_FIELD`].
    Unknown,
}

/// Exit code of a listing that asked for unknown fields.
pub const EXIT_UNKNOWN_FIELD: u8 = 14;

/// A rendered listing.
#[derive(Debug, Clone, PartialEq)]
pub struct ListOutput {
    /// The lines, without newlines.
    pub lines: Vec<String>,
    /// Whether values or fields were missing.
    pub status: ListStatus,
}

/// The warning `gnt-* list` prints on stderr for unknown fields, if any.
pub fn unknown_fields_warning(fields: &[FieldDefinition]) -> Option<String> {
    let unknown: Vec<&str> = fields
        .iter()
        .filter(|f| f.kind == FieldKind::Unknown)
        .map(|f| f.name.as_str())
        .collect();
    (!unknown.is_empty())
        .then(|| format!("Warning: Queried for unknown fields {}", unknown.join(", ")))
}

/// Renders a query answer as `gnt-* list` prints it.
pub fn format_query_result(resp: &QueryResponse, opts: &ListOptions) -> ListOutput {
    let units = opts.units.unwrap_or(match opts.separator.as_deref() {
        Some(s) if !s.is_empty() => Units::Mebi,
        _ => Units::Human,
    });
    let mut abnormal = false;
    let mut unknown = false;
    let columns: Vec<(String, bool)> = resp
        .fields
        .iter()
        .map(|f| {
            let right = opts.overrides.iter().all(|(n, _)| *n != f.name)
                && matches!(
                    f.kind,
                    FieldKind::Number | FieldKind::Float | FieldKind::Unit
                );
            (f.title.clone(), right)
        })
        .collect();
    let rows: Vec<Vec<String>> = resp
        .data
        .iter()
        .map(|row| {
            row.iter()
                .zip(&resp.fields)
                .map(|(cell, def)| {
                    match cell.status {
                        ResultStatus::Normal => {}
                        ResultStatus::Unknown => unknown = true,
                        _ => abnormal = true,
                    }
                    format_cell(cell, def, opts, units)
                })
                .collect()
        })
        .collect();
    let lines = format_table(&rows, &columns, opts.header, opts.separator.as_deref());
    let no_data_unknown =
        resp.data.is_empty() && resp.fields.iter().any(|f| f.kind == FieldKind::Unknown);
    let status = if unknown || no_data_unknown {
        ListStatus::Unknown
    } else if abnormal {
        ListStatus::Incomplete
    } else {
        ListStatus::Normal
    };
    ListOutput { lines, status }
}

fn format_cell(
    cell: &ResultCell,
    def: &FieldDefinition,
    opts: &ListOptions,
    units: Units,
) -> String {
    if cell.status != ResultStatus::Normal {
        return status_text(cell.status, opts.verbose).to_string();
    }
    let v = &cell.value;
    if let Some((_, fmt)) = opts.overrides.iter().find(|(n, _)| *n == def.name) {
        return match (fmt, v) {
            (ValueFormat::CommaJoin, Value::Array(items)) => {
                items.iter().map(python_str).collect::<Vec<_>>().join(",")
            }
            (ValueFormat::KeyValues, Value::Object(m)) if m.is_empty() => "(empty)".into(),
            (ValueFormat::KeyValues, Value::Object(m)) => m
                .iter()
                .map(|(k, v)| format!("{k}={}", python_str(v)))
                .collect::<Vec<_>>()
                .join(", "),
            _ => python_str(v),
        };
    }
    match def.kind {
        FieldKind::Bool => if python_truth(v) { "Y" } else { "N" }.into(),
        FieldKind::Unit => match v.as_f64() {
            Some(n) => format_unit(n, units),
            None => python_str(v),
        },
        FieldKind::Timestamp => match v.as_f64() {
            Some(t) => crate::sys::time::format_local(t),
            None => "N/A".into(),
        },
        _ => python_str(v),
    }
}

/// The short (or verbose) text of a missing value (Ganeti's
/// `RSS_DESCRIPTION`): `??` unknown field, `?` no data, `-` unavailable,
/// `*` offline.
pub fn status_text(status: ResultStatus, verbose: bool) -> &'static str {
    match (status, verbose) {
        (ResultStatus::Normal, _) => "",
        (ResultStatus::Unknown, false) => "??",
        (ResultStatus::Unknown, true) => "(unknown)",
        (ResultStatus::NoData, false) => "?",
        (ResultStatus::NoData, true) => "(nodata)",
        (ResultStatus::Unavail, false) => "-",
        (ResultStatus::Unavail, true) => "(unavail)",
        (ResultStatus::Offline, false) => "*",
        (ResultStatus::Offline, true) => "(offline)",
    }
}

/// Lays out a table as Ganeti's `FormatTable`: with a separator, cells
/// joined by it; otherwise columns padded to their widest cell, joined by
/// one space, numbers right-aligned, and no padding after a left-aligned
/// last column. `columns` are (title, right-aligned).
pub fn format_table(
    rows: &[Vec<String>],
    columns: &[(String, bool)],
    header: bool,
    separator: Option<&str>,
) -> Vec<String> {
    let mut all: Vec<Vec<&str>> = Vec::with_capacity(rows.len() + 1);
    if header {
        all.push(columns.iter().map(|(t, _)| t.as_str()).collect());
    }
    all.extend(rows.iter().map(|r| r.iter().map(String::as_str).collect()));
    if let Some(sep) = separator {
        return all.iter().map(|r| r.join(sep)).collect();
    }
    let mut widths = vec![0usize; columns.len()];
    for r in &all {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    if let (Some(last), Some((_, false))) = (widths.last_mut(), columns.last()) {
        *last = 0;
    }
    all.iter()
        .map(|r| {
            let mut line = String::new();
            for (i, ((c, w), (_, right))) in r.iter().zip(&widths).zip(columns).enumerate() {
                if i > 0 {
                    line.push(' ');
                }
                let pad = w.saturating_sub(c.chars().count());
                if *right {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(c);
                } else {
                    line.push_str(c);
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            line
        })
        .collect()
}

/// The human name of a field kind in `list-fields` (Ganeti's `_QFT_NAMES`).
pub fn kind_title(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Unknown => "Unknown",
        FieldKind::Text => "Text",
        FieldKind::Bool => "Boolean",
        FieldKind::Number => "Number",
        FieldKind::Float => "Floating-point number",
        FieldKind::Unit => "Storage size",
        FieldKind::Timestamp => "Timestamp",
        FieldKind::Other => "Custom",
    }
}

/// Renders `gnt-* list-fields`: Name, Type, Title and Description columns.
pub fn format_list_fields(
    resp: &QueryFieldsResponse,
    header: bool,
    separator: Option<&str>,
) -> Vec<String> {
    let columns: Vec<(String, bool)> = ["Name", "Type", "Title", "Description"]
        .iter()
        .map(|t| (t.to_string(), false))
        .collect();
    let rows: Vec<Vec<String>> = resp
        .fields
        .iter()
        .map(|f| {
            vec![
                f.name.clone(),
                kind_title(f.kind).to_string(),
                f.title.clone(),
                f.doc.clone(),
            ]
        })
        .collect();
    format_table(&rows, &columns, header, separator)
}

/// Python's truth value of a JSON value (for `Y`/`N`).
fn python_truth(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// Prints a JSON value as Python's `str()` prints the decoded value:
/// strings bare, `None`/`True`/`False`, lists and dictionaries with
/// `repr()` items (`['a', 1]`, `{'k': None}`).
pub fn python_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => python_repr_full(other),
    }
}

fn python_repr_full(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => python_float(f),
            _ => n.to_string(),
        },
        Value::String(s) => python_str_repr(s),
        Value::Array(a) => format!(
            "[{}]",
            a.iter()
                .map(python_repr_full)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", python_str_repr(k), python_repr_full(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Python's `repr(float)`: shortest round-trip digits, always with a
/// decimal point or exponent.
fn python_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    let s = format!("{f}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

/// Python's `repr(str)`: single quotes unless the text has one and no
/// double quote; backslash escapes for the quote, backslash and control
/// characters.
fn python_str_repr(s: &str) -> String {
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

/// Ganeti's `FormatParamsDictInfo`: own values as they are, inherited
/// ones as `default (VALUE)`; nested non-empty dictionaries recurse.
pub fn params_info(own: &Value, actual: &Value) -> Info {
    let Some(actual) = actual.as_object() else {
        return Info::Dict(Default::default());
    };
    Info::Dict(
        actual
            .iter()
            .map(|(k, v)| {
                let mine = own.get(k);
                let shown = match (v, mine) {
                    (Value::Object(m), _) if !m.is_empty() => {
                        params_info(mine.unwrap_or(&Value::Null), v)
                    }
                    (_, Some(o)) => Info::text(python_repr(o)),
                    (_, None) => Info::Text(format!("default ({})", python_repr(v))),
                };
                (k.clone(), shown)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_ganeti_generic_info() {
        let mut hv = BTreeMap::new();
        hv.insert("migration_port".to_string(), Info::text(8102));
        hv.insert("acpi".to_string(), Info::text("True"));
        let tree = Info::Section(vec![
            ("Cluster name".into(), Info::text("c1")),
            (
                "Hypervisor parameters".into(),
                Info::Dict([("kvm".to_string(), Info::Dict(hv))].into()),
            ),
            ("Tags".into(), Info::text("(none)")),
            (
                "Specs".into(),
                Info::List(vec![Info::Section(vec![("min".into(), Info::text(1))])]),
            ),
        ]);
        let expected = "Cluster name: c1\nHypervisor parameters: \n  kvm: \n    acpi: True\n    migration_port: 8102\nTags: (none)\nSpecs: \n  - min: 1";
        assert_eq!(tree.render(), expected);
    }

    #[test]
    fn python_values() {
        assert_eq!(python_repr(&serde_json::json!(["a", 1])), "['a', 1]");
        assert_eq!(python_repr(&serde_json::json!(null)), "None");
    }

    mod golden {
        use super::super::*;
        use crate::config::objects::{AdminState, ConfigData, Disk};
        use crate::config::test_support::{generated, uuid_for};
        use crate::query::{self, filter};
        use serde_json::json;
        use std::path::PathBuf;

        /// Three nodes (node3 offline, node2 drained), twelve instances;
        /// inst3 has tags, two disks and more memory, inst5 is down and has
        /// no IP.
        fn config() -> ConfigData {
            let mut d = generated(3, 12);
            for n in d.nodes.values_mut() {
                match n.name.as_str() {
                    "node3.example.com" => {
                        n.offline = true;
                        n.master_candidate = false;
                    }
                    "node2.example.com" => {
                        n.drained = true;
                        n.master_candidate = false;
                    }
                    _ => {}
                }
            }
            let extra = uuid_for(5, 1000);
            let (_, i3) = d.instance_by_name("inst3.example.com").unwrap();
            let first = d.disks[&i3.disks[0]].clone();
            d.disks.insert(
                extra.clone(),
                Disk {
                    size: 1536,
                    iv_name: "disk/1".into(),
                    uuid: extra.clone(),
                    ..first
                },
            );
            for i in d.instances.values_mut() {
                match i.name.as_str() {
                    "inst3.example.com" => {
                        i.tags = ["prod".to_string(), "db".to_string()].into();
                        i.disks.push(extra.clone());
                        i.beparams.insert("maxmem".into(), json!(2048));
                    }
                    "inst5.example.com" => {
                        i.admin_state = AdminState::Down;
                        i.nics[0].ip = None;
                    }
                    _ => {}
                }
            }
            d
        }

        fn strings(v: &[&str]) -> Vec<String> {
            v.iter().map(|s| s.to_string()).collect()
        }

        /// Compares `text` with `tests/golden/query/NAME.txt` (rewritten
        /// when GOLDEN_UPDATE is set), and writes the query answer next to
        /// it so `check_format.py` can render it with Ganeti's code.
        fn check(name: &str, text: &str, response: Option<&Value>, opts: Option<Value>) {
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/query");
            let path = dir.join(format!("{name}.txt"));
            if std::env::var_os("GOLDEN_UPDATE").is_some() {
                crate::sys::fs::atomic_write(&path, text.as_bytes(), 0o644).unwrap();
                if let Some(r) = response {
                    let case = json!({"response": r, "options": opts});
                    let mut body = serde_json::to_string_pretty(&case).unwrap();
                    body.push('\n');
                    let p = dir.join(format!("{name}.json"));
                    crate::sys::fs::atomic_write(&p, body.as_bytes(), 0o644).unwrap();
                }
                return;
            }
            let want = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (run with GOLDEN_UPDATE=1)", path.display()));
            assert_eq!(text, want, "{name} differs from {}", path.display());
        }

        fn list(
            name: &str,
            resource: Resource,
            fields: &[&str],
            filter: Option<Value>,
            opts: ListOptions,
        ) -> ListOutput {
            let resp =
                query::query(resource, &strings(fields), filter.as_ref(), &config()).unwrap();
            let out = format_query_result(
                &resp,
                &ListOptions {
                    overrides: list_overrides(resource),
                    ..opts.clone()
                },
            );
            let mut text = out.lines.join("\n");
            text.push('\n');
            let o = json!({
                "resource": resource.wire_name(),
                "separator": opts.separator,
                "header": opts.header,
                "units": opts.units.map(|u| match u {
                    Units::Human => "h", Units::Mebi => "m", Units::Gibi => "g", Units::Tebi => "t",
                }),
                "verbose": opts.verbose,
            });
            check(
                name,
                &text,
                Some(&serde_json::to_value(&resp).unwrap()),
                Some(o),
            );
            out
        }

        const CUSTOM: &[&str] = &[
            "name",
            "be/maxmem",
            "disk.sizes",
            "disk.size/1",
            "nic.ips",
            "tags",
            "admin_up",
            "ctime",
            "nosuch",
        ];

        #[test]
        fn gnt_instance_list() {
            let header = ListOptions {
                header: true,
                ..ListOptions::default()
            };
            let default = ["name", "hypervisor", "os", "pnode", "status", "oper_ram"];
            let out = list(
                "instance_list_default",
                Resource::Instance,
                &default,
                None,
                header.clone(),
            );
            assert_eq!(out.status, ListStatus::Incomplete);
            let out = list(
                "instance_list_custom",
                Resource::Instance,
                CUSTOM,
                None,
                header.clone(),
            );
            assert_eq!(out.status, ListStatus::Unknown);
            list(
                "instance_list_separator",
                Resource::Instance,
                CUSTOM,
                None,
                ListOptions {
                    separator: Some("|".into()),
                    ..ListOptions::default()
                },
            );
            list(
                "instance_list_units_g_verbose",
                Resource::Instance,
                &["name", "be/maxmem", "disk_usage", "oper_ram", "pnode.group"],
                None,
                ListOptions {
                    header: true,
                    units: Some(Units::Gibi),
                    verbose: true,
                    ..ListOptions::default()
                },
            );
            let f =
                filter::parse_filter(r#"be/maxmem > 512 or name == "inst1" or name =* "inst1?""#)
                    .unwrap();
            let out = list(
                "instance_list_filter",
                Resource::Instance,
                &default,
                Some(f),
                header,
            );
            assert_eq!(out.lines.len(), 1 + 5);
        }

        #[test]
        fn gnt_node_and_group_list() {
            let header = ListOptions {
                header: true,
                ..ListOptions::default()
            };
            list(
                "node_list_default",
                Resource::Node,
                &[
                    "name",
                    "dtotal",
                    "dfree",
                    "mtotal",
                    "mnode",
                    "mfree",
                    "pinst_cnt",
                    "sinst_cnt",
                    "role",
                    "master_candidate",
                    "pinst_list",
                ],
                None,
                header.clone(),
            );
            list(
                "group_list_default",
                Resource::Group,
                &["name", "node_cnt", "pinst_cnt", "alloc_policy", "ndparams"],
                None,
                header,
            );
        }

        #[test]
        fn list_fields() {
            let all = query::query_fields(Resource::Group, None);
            let text = format_list_fields(&all, true, None).join("\n") + "\n";
            check("group_list_fields", &text, None, None);
            let some = query::query_fields(
                Resource::Instance,
                Some(&strings(&["name", "be/maxmem", "nosuch"])),
            );
            let text = format_list_fields(&some, false, Some(";")).join("\n") + "\n";
            check("instance_list_fields_subset", &text, None, None);
            assert_eq!(
                unknown_fields_warning(&some.fields).as_deref(),
                Some("Warning: Queried for unknown fields nosuch")
            );
        }

        #[test]
        fn units_and_python_values() {
            assert_eq!(format_unit(512.0, Units::Human), "512M");
            assert_eq!(format_unit(1024.0, Units::Human), "1.0G");
            assert_eq!(format_unit(1536.0, Units::Human), "1.5G");
            assert_eq!(format_unit(3.0 * 1024.0 * 1024.0, Units::Human), "3.0T");
            assert_eq!(format_unit(10240.0, Units::Tebi), "0.0");
            assert_eq!(
                python_str(&json!({"a": [1, "x's", null]})),
                r#"{'a': [1, "x's", None]}"#
            );
            assert_eq!(python_str(&json!(1.0)), "1.0");
            assert_eq!(python_str(&json!(1e20)), "1e+20");
        }
    }
}
