//! Parameter families of Ganeti 3.0: their keys, kinds, defaults and allowed
//! values, the checks of a parameter dictionary, the parsing of CLI strings,
//! and inheritance (cluster → group → node/instance) as pure functions.
//!
//! The tables (in `params/table.rs`) are generated from Ganeti's constants
//! (`HVC_DEFAULTS`, `HVS_PARAMETER_TYPES`, `BEC_DEFAULTS`, `NICC_DEFAULTS`,
//! `NDC_DEFAULTS`, `DISK_DT_DEFAULTS`, `IPOLICY_DEFAULTS`, and the allowed
//! sets the hypervisors check). Filling follows `objects.FillDict`: a copy of
//! the defaults, updated with the overrides, minus skipped keys.
//!
//! Used by masterd (opcode checks, config bootstrap) and by the CLI to turn
//! `-H kvm:boot_order=cdrom` strings into typed values.

use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use super::objects::{Cluster, Node, NodeGroup, ParamMap};

mod table;

/// The type of a parameter's value (Ganeti's `VTYPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// `true`/`false`; the CLI accepts yes/no/true/false/on/off/1/0.
    Bool,
    /// A whole number.
    Int,
    /// A number.
    Float,
    /// A size in MiB; the CLI accepts `512`, `512M`, `2G`, `1T` (`ParseUnit`).
    Size,
    /// A string.
    String,
    /// A string or null (the CLI maps `none` to null).
    MaybeString,
    /// A list of strings.
    List,
}

impl ParamKind {
    /// Ganeti's name of the kind (`VTYPE_*` value).
    pub fn name(self) -> &'static str {
        match self {
            ParamKind::Bool => "bool",
            ParamKind::Int => "int",
            ParamKind::Float => "float",
            ParamKind::Size => "size",
            ParamKind::String => "string",
            ParamKind::MaybeString => "maybe-string",
            ParamKind::List => "list",
        }
    }
}

/// One parameter of a family.
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    /// The key.
    pub name: &'static str,
    /// Its value type.
    pub kind: ParamKind,
    /// Ganeti's default, as JSON text.
    pub default: &'static str,
    /// Allowed values when Ganeti restricts them (empty: any value of the kind).
    pub allowed: &'static [&'static str],
    /// Whether an empty value is refused (hypervisor parameters only).
    pub required: bool,
}

/// A parameter family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamFamily {
    /// Hypervisor parameters; needs the hypervisor name.
    Hv,
    /// Backend parameters (memory, vcpus, …).
    Be,
    /// NIC parameters (mode, link, vlan).
    Nic,
    /// Node parameters.
    Nd,
    /// Disk parameters; needs the disk template.
    Disk,
    /// Static hypervisor state.
    HvState,
}

impl ParamFamily {
    /// The family's usual dictionary name.
    pub fn name(self) -> &'static str {
        match self {
            ParamFamily::Hv => "hvparams",
            ParamFamily::Be => "beparams",
            ParamFamily::Nic => "nicparams",
            ParamFamily::Nd => "ndparams",
            ParamFamily::Disk => "diskparams",
            ParamFamily::HvState => "hv_state",
        }
    }
}

/// A bad parameter, naming the key and the value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamError {
    /// The hypervisor or disk template is unknown.
    #[error("unknown {what} {name:?}")]
    UnknownName {
        /// "hypervisor" or "disk template".
        what: &'static str,
        /// The name given.
        name: String,
    },
    /// The family needs a hypervisor or disk template name and got none.
    #[error("{family} need a {what} name")]
    MissingName {
        /// The family.
        family: &'static str,
        /// "hypervisor" or "disk template".
        what: &'static str,
    },
    /// The key does not exist in the family.
    #[error("unknown parameter {key:?} in {family}")]
    UnknownKey {
        /// The family (e.g. "hvparams for kvm").
        family: String,
        /// The key.
        key: String,
    },
    /// The value has the wrong type or cannot be parsed.
    #[error("invalid value {value} for parameter {key:?}: expected {expected}")]
    BadValue {
        /// The key (empty when parsing a lone value).
        key: String,
        /// The value as given.
        value: String,
        /// What was expected.
        expected: String,
    },
    /// The value is not among the allowed ones.
    #[error("invalid value {value} for parameter {key:?}: must be one of {allowed}")]
    NotAllowed {
        /// The key.
        key: String,
        /// The value as given.
        value: String,
        /// The allowed values, comma-separated.
        allowed: String,
    },
    /// A cluster-wide-only parameter was set on an instance or node.
    #[error("parameter {key:?} is cluster-wide and cannot be set per {level}")]
    Global {
        /// The key.
        key: String,
        /// "instance" or "node".
        level: &'static str,
    },
}

/// The hypervisors Ganeti 3.0 knows (`HYPER_TYPES`).
pub fn hypervisors() -> impl Iterator<Item = &'static str> {
    table::HV.iter().map(|(n, _)| *n)
}

/// The disk templates Ganeti 3.0 knows (`DISK_TEMPLATES`).
pub fn disk_templates() -> impl Iterator<Item = &'static str> {
    table::DISK.iter().map(|(n, _)| *n)
}

/// Disk templates in Ganeti's order of preference (`DISK_TEMPLATE_PREFERENCE`).
pub const DISK_TEMPLATE_PREFERENCE: &[&str] = &[
    "blockdev",
    "diskless",
    "drbd",
    "ext",
    "file",
    "plain",
    "rbd",
    "sharedfile",
    "gluster",
];

/// The specs of a family; `sub` is the hypervisor or disk template.
pub fn specs(family: ParamFamily, sub: Option<&str>) -> Result<&'static [ParamSpec], ParamError> {
    let keyed = |tbl: &'static [(&'static str, &'static [ParamSpec])], what: &'static str| {
        let name = sub.ok_or(ParamError::MissingName {
            family: family.name(),
            what,
        })?;
        tbl.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| *s)
            .ok_or_else(|| ParamError::UnknownName {
                what,
                name: name.to_string(),
            })
    };
    match family {
        ParamFamily::Hv => keyed(table::HV, "hypervisor"),
        ParamFamily::Disk => keyed(table::DISK, "disk template"),
        ParamFamily::Be => Ok(table::BE),
        ParamFamily::Nic => Ok(table::NIC),
        ParamFamily::Nd => Ok(table::ND),
        ParamFamily::HvState => Ok(table::HV_STATE),
    }
}

/// The spec of one key.
pub fn spec(family: ParamFamily, sub: Option<&str>, key: &str) -> Result<ParamSpec, ParamError> {
    specs(family, sub)?
        .iter()
        .find(|s| s.name == key)
        .copied()
        .ok_or_else(|| ParamError::UnknownKey {
            family: family_label(family, sub),
            key: key.to_string(),
        })
}

fn family_label(family: ParamFamily, sub: Option<&str>) -> String {
    match sub {
        Some(s) => format!("{} for {s}", family.name()),
        None => family.name().to_string(),
    }
}

/// Ganeti's defaults of a family (a fresh map each call).
pub fn defaults(family: ParamFamily, sub: Option<&str>) -> Result<ParamMap, ParamError> {
    Ok(specs(family, sub)?
        .iter()
        .map(|s| {
            let v = serde_json::from_str(s.default)
                .expect("generated parameter defaults are valid JSON");
            (s.name.to_string(), v)
        })
        .collect())
}

/// Ganeti's default instance policy (`IPOLICY_DEFAULTS`).
pub fn ipolicy_defaults() -> ParamMap {
    static IPOLICY: OnceLock<ParamMap> = OnceLock::new();
    IPOLICY
        .get_or_init(|| {
            serde_json::from_str(table::IPOLICY_DEFAULTS_JSON)
                .expect("generated ipolicy defaults are valid JSON")
        })
        .clone()
}

/// Hypervisor parameters that only exist cluster-wide (`HVC_GLOBALS`, design
/// 2.1), restricted to those `hv` has: e.g. kvm's `migration_port` and
/// `migration_bandwidth`. Unknown hypervisors have none.
pub fn hv_globals(hv: &str) -> Vec<&'static str> {
    match specs(ParamFamily::Hv, Some(hv)) {
        Ok(specs) => table::HV_GLOBALS
            .iter()
            .copied()
            .filter(|g| specs.iter().any(|s| s.name == *g))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Node parameters that only exist cluster-wide (`NDC_GLOBALS`).
pub fn nd_globals() -> &'static [&'static str] {
    table::ND_GLOBALS
}

/// Checks every key and value of `params` against the family: unknown keys,
/// wrong types and values outside an allowed set are errors naming the key
/// and value. Partial dictionaries (overrides) are fine.
pub fn check_params(
    family: ParamFamily,
    sub: Option<&str>,
    params: &ParamMap,
) -> Result<(), ParamError> {
    let specs = specs(family, sub)?;
    for (key, value) in params {
        let spec = specs
            .iter()
            .find(|s| s.name == key)
            .ok_or_else(|| ParamError::UnknownKey {
                family: family_label(family, sub),
                key: key.clone(),
            })?;
        check_value(spec, value)?;
    }
    Ok(())
}

/// Checks one value against its spec.
pub fn check_value(spec: &ParamSpec, value: &Value) -> Result<(), ParamError> {
    let bad = || ParamError::BadValue {
        key: spec.name.to_string(),
        value: value.to_string(),
        expected: spec.kind.name().to_string(),
    };
    let ok = match spec.kind {
        ParamKind::Bool => value.is_boolean(),
        ParamKind::Int => value.is_i64() || value.is_u64(),
        ParamKind::Size => value.is_u64(),
        ParamKind::Float => value.is_number(),
        ParamKind::String => value.is_string(),
        ParamKind::MaybeString => value.is_string() || value.is_null(),
        ParamKind::List => value
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string)),
    };
    if !ok {
        return Err(bad());
    }
    if let (false, Some(s)) = (spec.allowed.is_empty(), value.as_str()) {
        // Ganeti skips the check of an empty, non-required hypervisor value.
        let skip = s.is_empty() && !spec.required;
        if !skip && !spec.allowed.contains(&s) {
            return Err(ParamError::NotAllowed {
                key: spec.name.to_string(),
                value: value.to_string(),
                allowed: spec.allowed.join(", "),
            });
        }
    }
    Ok(())
}

/// Typed values from `key=value` text an administrator typed (`-H`, `-B`,
/// `-N`, `--node-parameters`): each key is checked against the family and
/// each value parsed to its kind. A `None` value (`-key`: back to the
/// inherited default) becomes JSON null. Ganeti's pre-2.6 backend parameter
/// `memory` becomes `maxmem` and `minmem` (as `UpgradeBeParams` does).
pub fn params_from_text(
    family: ParamFamily,
    sub: Option<&str>,
    items: &[(String, Option<String>)],
) -> Result<ParamMap, ParamError> {
    let mut out = ParamMap::new();
    for (key, text) in items {
        let legacy_memory = family == ParamFamily::Be && key == "memory";
        let lookup = if legacy_memory {
            "maxmem"
        } else {
            key.as_str()
        };
        let spec = spec(family, sub, lookup)?;
        let value = match text {
            None => Value::Null,
            Some(t) => parse_param_value(spec.kind, t).map_err(|e| match e {
                ParamError::BadValue {
                    key: k,
                    value,
                    expected,
                } if k.is_empty() => ParamError::BadValue {
                    key: key.clone(),
                    value,
                    expected,
                },
                other => other,
            })?,
        };
        if legacy_memory {
            out.entry("maxmem".to_string())
                .or_insert_with(|| value.clone());
            out.entry("minmem".to_string()).or_insert(value);
        } else {
            out.insert(key.clone(), value);
        }
    }
    Ok(out)
}

/// Parses a CLI string into a value of `kind` (Ganeti's `ForceDictType`
/// conversions): booleans from yes/no/true/false/on/off/1/0, sizes with
/// unit suffixes, numbers; `none` gives null for maybe-strings; lists are
/// comma-separated.
pub fn parse_param_value(kind: ParamKind, s: &str) -> Result<Value, ParamError> {
    let bad = |expected: &str| ParamError::BadValue {
        key: String::new(),
        value: format!("{s:?}"),
        expected: expected.to_string(),
    };
    match kind {
        ParamKind::Bool => match s.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" => Ok(Value::Bool(true)),
            "no" | "false" | "off" | "0" => Ok(Value::Bool(false)),
            _ => Err(bad("a boolean (yes/no/true/false)")),
        },
        ParamKind::Int => s
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| bad("an integer")),
        ParamKind::Float => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Value::from)
            .ok_or_else(|| bad("a number")),
        ParamKind::Size => parse_unit(s).map(Value::from),
        ParamKind::String => Ok(Value::String(s.to_string())),
        ParamKind::MaybeString => {
            if s.eq_ignore_ascii_case("none") {
                Ok(Value::Null)
            } else {
                Ok(Value::String(s.to_string()))
            }
        }
        ParamKind::List => Ok(Value::Array(
            s.split(',')
                .filter(|x| !x.is_empty())
                .map(|x| Value::String(x.to_string()))
                .collect(),
        )),
    }
}

/// Parses a size into MiB like Ganeti's `ParseUnit`: a number with an
/// optional unit `m`/`mb`/`mib`, `g`/`gb`/`gib`, `t`/`tb`/`tib` (case
/// ignored; no unit means MiB); fractions are rounded up to whole MiB.
pub fn parse_unit(s: &str) -> Result<u64, ParamError> {
    let bad = || ParamError::BadValue {
        key: String::new(),
        value: format!("{s:?}"),
        expected: "a size such as 512, 512M, 2G or 1T".to_string(),
    };
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num.parse().map_err(|_| bad())?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "m" | "mb" | "mib" => 1.0,
        "g" | "gb" | "gib" => 1024.0,
        "t" | "tb" | "tib" => 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    let mib = (num * mult).ceil();
    if !mib.is_finite() || !(0.0..=9.0e15).contains(&mib) {
        return Err(bad());
    }
    // In range and whole: checked just above.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(mib as u64)
}

/// `objects.FillDict`: a copy of `defaults`, updated with `custom`, minus `skip`.
pub fn fill_dict(defaults: &ParamMap, custom: &ParamMap, skip: &[&str]) -> ParamMap {
    let mut out = defaults.clone();
    out.extend(custom.iter().map(|(k, v)| (k.clone(), v.clone())));
    for k in skip {
        out.remove(*k);
    }
    out
}

/// The effective hypervisor parameters of an instance (`Cluster.FillHV`):
/// cluster defaults for `hv`, then the OS-specific ones (`os_hvp[os][hv]`),
/// then the instance's own.
pub fn fill_hvparams(
    cluster: &Cluster,
    os_name: &str,
    hv: &str,
    instance_hvparams: &ParamMap,
) -> ParamMap {
    let empty = ParamMap::new();
    let base = cluster.hvparams.get(hv).unwrap_or(&empty);
    let os = cluster
        .os_hvp
        .get(os_name)
        .and_then(|m| m.get(hv))
        .unwrap_or(&empty);
    fill_dict(&fill_dict(base, os, &[]), instance_hvparams, &[])
}

/// The effective backend parameters of an instance (`Cluster.FillBE`):
/// the cluster's `default` profile, then the instance's own. Node groups
/// have no backend parameters in Ganeti 3.0.
pub fn fill_beparams(cluster: &Cluster, instance_beparams: &ParamMap) -> ParamMap {
    let empty = ParamMap::new();
    let base = cluster.beparams.get(PP_DEFAULT).unwrap_or(&empty);
    fill_dict(base, instance_beparams, &[])
}

/// The effective NIC parameters (`Cluster.SimpleFillNIC`).
pub fn fill_nicparams(cluster: &Cluster, nicparams: &ParamMap) -> ParamMap {
    let empty = ParamMap::new();
    let base = cluster.nicparams.get(PP_DEFAULT).unwrap_or(&empty);
    fill_dict(base, nicparams, &[])
}

/// The effective node parameters (`Cluster.FillND`): cluster, then the
/// group, then the node.
pub fn fill_ndparams(cluster: &Cluster, group: &NodeGroup, node: &Node) -> ParamMap {
    let g = fill_dict(&group.ndparams, &node.ndparams, &[]);
    fill_dict(&cluster.ndparams, &g, &[])
}

/// The effective disk parameters of a group, per disk template
/// (`FillDiskParams`): cluster, then group, for every template.
pub fn fill_diskparams(cluster: &Cluster, group: &NodeGroup) -> BTreeMap<String, ParamMap> {
    let empty = ParamMap::new();
    disk_templates()
        .map(|dt| {
            let base = cluster.diskparams.get(dt).unwrap_or(&empty);
            let over = group.diskparams.get(dt).unwrap_or(&empty);
            (dt.to_string(), fill_dict(base, over, &[]))
        })
        .collect()
}

/// The effective OS parameters of an instance (`Cluster.SimpleFillOS`,
/// public part): the cluster's for the OS without variant, then for
/// `name+variant`, then the instance's own.
pub fn fill_osparams(cluster: &Cluster, os_name: &str, instance_osparams: &ParamMap) -> ParamMap {
    let empty = ParamMap::new();
    let base_name = os_name.split('+').next().unwrap_or(os_name);
    let base = cluster.osparams.get(base_name).unwrap_or(&empty);
    let variant = cluster.osparams.get(os_name).unwrap_or(&empty);
    fill_dict(&fill_dict(base, variant, &[]), instance_osparams, &[])
}

/// The effective instance policy of a group (`FillIPolicy`): keys missing
/// from the group come from the cluster; `std` is filled key by key.
pub fn fill_ipolicy(cluster: &Cluster, group: &NodeGroup) -> ParamMap {
    let mut out = group.ipolicy.clone();
    for (k, v) in &cluster.ipolicy {
        match (out.get_mut(k), v) {
            (None, _) => {
                out.insert(k.clone(), v.clone());
            }
            (Some(Value::Object(g)), Value::Object(c)) if k == "std" => {
                for (ck, cv) in c {
                    g.entry(ck.clone()).or_insert_with(|| cv.clone());
                }
            }
            _ => {}
        }
    }
    out
}

/// The profile name of cluster-level be/nic parameters (`PP_DEFAULT`).
pub const PP_DEFAULT: &str = "default";

/// Keys of an instance policy (`IPOLICY_ALL_KEYS`).
pub const IPOLICY_KEYS: &[&str] = &[
    "minmax",
    "std",
    "disk-templates",
    "vcpu-ratio",
    "spindle-ratio",
    "memory-ratio",
];

/// Keys of an instance spec (`ISPECS_PARAMETERS`).
pub const ISPEC_KEYS: &[&str] = &[
    "memory-size",
    "cpu-count",
    "disk-count",
    "disk-size",
    "nic-count",
    "spindle-use",
];

/// Checks an (override or full) instance policy: known keys, integer specs,
/// numeric ratios, known disk templates.
pub fn check_ipolicy(ipolicy: &ParamMap) -> Result<(), ParamError> {
    let bad = |key: &str, value: &Value, expected: &str| ParamError::BadValue {
        key: key.to_string(),
        value: value.to_string(),
        expected: expected.to_string(),
    };
    let check_spec = |key: &str, v: &Value| -> Result<(), ParamError> {
        let obj = v
            .as_object()
            .ok_or_else(|| bad(key, v, "an ispec object"))?;
        for (k, n) in obj {
            if !ISPEC_KEYS.contains(&k.as_str()) {
                return Err(ParamError::UnknownKey {
                    family: format!("ipolicy {key}"),
                    key: k.clone(),
                });
            }
            if !n.is_u64() {
                return Err(bad(k, n, "a non-negative integer"));
            }
        }
        Ok(())
    };
    for (k, v) in ipolicy {
        match k.as_str() {
            "std" => check_spec("std", v)?,
            "minmax" => {
                let list = v
                    .as_array()
                    .ok_or_else(|| bad(k, v, "a list of {min, max} objects"))?;
                for mm in list {
                    let obj = mm
                        .as_object()
                        .filter(|o| o.len() == 2 && o.contains_key("min") && o.contains_key("max"))
                        .ok_or_else(|| bad(k, mm, "an object with min and max"))?;
                    for (side, spec) in obj {
                        check_spec(side, spec)?;
                    }
                }
            }
            "disk-templates" => {
                let list = v
                    .as_array()
                    .ok_or_else(|| bad(k, v, "a list of disk templates"))?;
                for t in list {
                    let name = t.as_str().unwrap_or_default();
                    if !disk_templates().any(|d| d == name) {
                        return Err(bad(k, t, "a known disk template"));
                    }
                }
            }
            "vcpu-ratio" | "spindle-ratio" | "memory-ratio" => {
                if !v.is_number() {
                    return Err(bad(k, v, "a number"));
                }
            }
            _ => {
                return Err(ParamError::UnknownKey {
                    family: "ipolicy".to_string(),
                    key: k.clone(),
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> ParamMap {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn every_family_has_defaults_that_pass_their_own_checks() {
        for hv in hypervisors() {
            let d = defaults(ParamFamily::Hv, Some(hv)).unwrap();
            check_params(ParamFamily::Hv, Some(hv), &d).unwrap();
        }
        for dt in disk_templates() {
            let d = defaults(ParamFamily::Disk, Some(dt)).unwrap();
            check_params(ParamFamily::Disk, Some(dt), &d).unwrap();
        }
        for f in [ParamFamily::Be, ParamFamily::Nic, ParamFamily::Nd] {
            check_params(f, None, &defaults(f, None).unwrap()).unwrap();
        }
        check_ipolicy(&ipolicy_defaults()).unwrap();
        let kvm = defaults(ParamFamily::Hv, Some("kvm")).unwrap();
        assert_eq!(kvm["migration_port"], json!(8102));
        assert_eq!(
            defaults(ParamFamily::Be, None).unwrap()["maxmem"],
            json!(128)
        );
    }

    #[test]
    fn bad_params_are_named() {
        let e = check_params(
            ParamFamily::Hv,
            Some("kvm"),
            &map(json!({"boot_order": "usb"})),
        )
        .unwrap_err();
        assert!(matches!(&e, ParamError::NotAllowed { key, .. } if key == "boot_order"));
        assert!(e.to_string().contains("\"usb\""), "{e}");
        let e = check_params(ParamFamily::Be, None, &map(json!({"vcpus": "two"}))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid value \"two\" for parameter \"vcpus\": expected int"
        );
        let e = check_params(ParamFamily::Nd, None, &map(json!({"nope": 1}))).unwrap_err();
        assert!(matches!(e, ParamError::UnknownKey { ref key, .. } if key == "nope"));
        let e = check_params(ParamFamily::Hv, Some("vmware"), &ParamMap::new()).unwrap_err();
        assert!(matches!(e, ParamError::UnknownName { ref name, .. } if name == "vmware"));
        // An empty, non-required enum value is accepted as in Ganeti.
        check_params(
            ParamFamily::Hv,
            Some("kvm"),
            &map(json!({"cdrom_disk_type": ""})),
        )
        .unwrap();
    }

    #[test]
    fn parse_values_from_cli_strings() {
        assert_eq!(
            parse_param_value(ParamKind::Bool, "yes").unwrap(),
            json!(true)
        );
        assert_eq!(
            parse_param_value(ParamKind::Bool, "False").unwrap(),
            json!(false)
        );
        assert!(parse_param_value(ParamKind::Bool, "maybe").is_err());
        assert_eq!(parse_param_value(ParamKind::Int, "42").unwrap(), json!(42));
        let e = parse_param_value(ParamKind::Int, "4x").unwrap_err();
        assert!(e.to_string().contains("\"4x\""), "{e}");
        assert_eq!(
            parse_param_value(ParamKind::Size, "2G").unwrap(),
            json!(2048)
        );
        assert_eq!(
            parse_param_value(ParamKind::MaybeString, "none").unwrap(),
            Value::Null
        );
        assert_eq!(parse_unit("512").unwrap(), 512);
        assert_eq!(parse_unit("512M").unwrap(), 512);
        assert_eq!(parse_unit("1t").unwrap(), 1024 * 1024);
        assert_eq!(parse_unit("1.5g").unwrap(), 1536);
        assert_eq!(parse_unit("0.5").unwrap(), 1);
        assert!(parse_unit("12Q").is_err());
        assert!(parse_unit("").is_err());
    }

    #[test]
    fn globals_per_hypervisor() {
        let kvm = hv_globals("kvm");
        assert!(kvm.contains(&"migration_port") && kvm.contains(&"migration_bandwidth"));
        assert!(!kvm.contains(&"xen_cmd"));
        assert!(hv_globals("xen-pvm").contains(&"xen_cmd"));
        assert_eq!(hv_globals("chroot"), Vec::<&str>::new());
        assert_eq!(nd_globals(), &["exclusive_storage"]);
    }

    fn cluster() -> Cluster {
        let mut c = Cluster::default();
        c.hvparams.insert(
            "kvm".into(),
            map(json!({"acpi": true, "kernel_path": "/k", "boot_order": "disk"})),
        );
        c.os_hvp.insert(
            "debian+min".into(),
            [("kvm".to_string(), map(json!({"kernel_path": "/os"})))].into(),
        );
        c.beparams
            .insert("default".into(), map(json!({"maxmem": 128, "vcpus": 1})));
        c.nicparams.insert(
            "default".into(),
            map(json!({"mode": "bridged", "link": "br0"})),
        );
        c.ndparams = map(json!({"ssh_port": 22, "spindle_count": 1}));
        c.diskparams
            .insert("plain".into(), map(json!({"stripes": 1})));
        c.osparams
            .insert("debian".into(), map(json!({"a": 1, "b": 1})));
        c.osparams.insert("debian+min".into(), map(json!({"b": 2})));
        c.ipolicy = map(json!({"std": {"cpu-count": 1, "memory-size": 128}, "vcpu-ratio": 4.0}));
        c
    }

    #[test]
    fn inheritance_follows_ganeti_order() {
        let c = cluster();
        let hv = fill_hvparams(&c, "debian+min", "kvm", &map(json!({"acpi": false})));
        assert_eq!(hv["kernel_path"], json!("/os"));
        assert_eq!(hv["acpi"], json!(false));
        assert_eq!(hv["boot_order"], json!("disk"));
        let hv = fill_hvparams(&c, "other", "kvm", &ParamMap::new());
        assert_eq!(hv["kernel_path"], json!("/k"));

        let be = fill_beparams(&c, &map(json!({"vcpus": 4})));
        assert_eq!(be, map(json!({"maxmem": 128, "vcpus": 4})));
        let nic = fill_nicparams(&c, &map(json!({"link": "br1"})));
        assert_eq!(nic, map(json!({"mode": "bridged", "link": "br1"})));

        let mut g = NodeGroup {
            ndparams: map(json!({"ssh_port": 2222, "spindle_count": 2})),
            ..NodeGroup::default()
        };
        let n = Node {
            ndparams: map(json!({"spindle_count": 3})),
            ..Node::default()
        };
        let nd = fill_ndparams(&c, &g, &n);
        assert_eq!(nd, map(json!({"ssh_port": 2222, "spindle_count": 3})));

        g.diskparams
            .insert("plain".into(), map(json!({"stripes": 2})));
        let dp = fill_diskparams(&c, &g);
        assert_eq!(dp["plain"]["stripes"], json!(2));
        assert!(dp.contains_key("drbd"));

        let os = fill_osparams(&c, "debian+min", &map(json!({"c": 3})));
        assert_eq!(os, map(json!({"a": 1, "b": 2, "c": 3})));

        g.ipolicy = map(json!({"std": {"cpu-count": 2}}));
        let ip = fill_ipolicy(&c, &g);
        assert_eq!(ip["std"], json!({"cpu-count": 2, "memory-size": 128}));
        assert_eq!(ip["vcpu-ratio"], json!(4.0));
    }

    #[test]
    fn ipolicy_checks_name_the_key() {
        let e = check_ipolicy(&map(json!({"std": {"cpu-count": "x"}}))).unwrap_err();
        assert!(e.to_string().contains("cpu-count"), "{e}");
        let e = check_ipolicy(&map(json!({"disk-templates": ["tape"]}))).unwrap_err();
        assert!(e.to_string().contains("tape"), "{e}");
        assert!(check_ipolicy(&map(json!({"bogus": 1}))).is_err());
    }
}
