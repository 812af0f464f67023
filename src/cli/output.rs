//! Output shapes scripts depend on.
//!
//! [`Info`] is the hierarchical "generic info" format of `gnt-* info`
//! (Ganeti's `PrintGenericInfo`: valid YAML, two-space indents, ordered
//! sections, sorted dictionaries, `- ` list items).

use std::collections::BTreeMap;
use std::fmt::Write as _;

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
}
