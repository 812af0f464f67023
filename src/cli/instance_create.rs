//! Building `OP_INSTANCE_CREATE` from command-line options, shared by
//! `gnt-instance add` and `gnt-backup import` (Ganeti's
//! `GenericInstanceCreate` in `cli.py`), plus the option parsers both use:
//! `--disk`, `--net`, `-H hv:params`, `-B`, `-O`, `-n pnode[:snode]` and
//! sizes with units (Ganeti's `ParseUnit`).
//!
//! Only text is turned into opcode JSON here; whether the cluster accepts
//! it (template enabled, OS known, nodes online) is the master's check.

use super::kv::{parse_ident_keyval, parse_keyval, IdentKv, KvValue};
use crate::config::params::{self, ParamFamily};
use crate::opcodes::params::NIC_PARAM_KEYS;
use serde_json::{json, Map, Value};

/// Disk parameters Ganeti's `--disk` knows (`IDISK_PARAMS`).
pub const DISK_KEYS: &[&str] = &[
    "size", "spindles", "mode", "adopt", "vg", "metavg", "provider", "name", "access",
];

/// The `key=value` items of one option value, as [`parse_keyval`] splits them.
type KvItems = Vec<(String, KvValue)>;

/// Parses a size into MiB exactly as Ganeti's `ParseUnit`: a number with an
/// optional unit (M, G, T; MiB when none), rounded up to whole MiB and then
/// up to a multiple of 4 MiB.
pub fn parse_size_mib(text: &str) -> Result<u64, String> {
    let mib = params::parse_unit(text).map_err(|_| format!("Invalid size {text:?}"))?;
    Ok(mib.div_ceil(4) * 4)
}

/// `-n pnode[:snode]` (Ganeti's `SplitNodeOption`).
pub fn split_node_option(value: &str) -> (String, Option<String>) {
    match value.split_once(':') {
        Some((p, s)) => (p.to_string(), Some(s.to_string())),
        None => (value.to_string(), None),
    }
}

/// One `ID:key=val,…` option: the index and its parameters as given.
fn indexed_item(option: &str, text: &str) -> Result<(String, Vec<(String, KvValue)>), String> {
    match parse_ident_keyval(text).map_err(|e| format!("{option}: {e}"))? {
        IdentKv::Set(id, kv) => Ok((id, kv)),
        IdentKv::Remove(id) | IdentKv::Reset(id) => Err(format!(
            "{option} {text:?}: item {id:?} cannot be removed or reset here"
        )),
    }
}

fn index_of(option: &str, what: &str, id: &str) -> Result<usize, String> {
    id.parse::<usize>()
        .map_err(|_| format!("Invalid {what} index passed: {id:?} ({option})"))
}

/// A string value for a disk or NIC key (`key=value`; a bare `key` has none).
fn text_value(what: &str, key: &str, v: &KvValue) -> Result<Option<String>, String> {
    match v {
        KvValue::Str(s) => Ok(Some(s.clone())),
        KvValue::Reset => Ok(None),
        KvValue::Bool(_) => Err(format!("{what}: parameter {key:?} needs a value ({key}=…)")),
    }
}

/// Typed disk parameters of one `--disk` item: `size` through
/// [`parse_size_mib`], `spindles` as an integer, the rest as text.
pub fn disk_params(idx: &str, kv: &[(String, KvValue)]) -> Result<Map<String, Value>, String> {
    let what = format!("disk/{idx}");
    let mut out = Map::new();
    for (k, v) in kv {
        if !DISK_KEYS.contains(&k.as_str()) {
            return Err(format!(
                "Unknown parameter {k:?} for {what} (known: {})",
                DISK_KEYS.join(", ")
            ));
        }
        let Some(text) = text_value(&what, k, v)? else {
            continue;
        };
        let value = match k.as_str() {
            "size" => json!(parse_size_mib(&text)
                .map_err(|e| format!("Invalid disk size for disk {idx}: {e}"))?),
            "spindles" => json!(text
                .parse::<u64>()
                .map_err(|_| format!("Invalid spindles for disk {idx}: {text:?}"))?),
            _ => json!(text),
        };
        out.insert(k.clone(), value);
    }
    Ok(out)
}

/// Whether disks are being created or imported from an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskSource {
    /// `gnt-instance add`: size or adoption needed.
    Create,
    /// `gnt-backup import`: sizes may come from the export; no adoption.
    Import,
}

/// The `disks` list of `OP_INSTANCE_CREATE` from `--disk` items and `-s`
/// (Ganeti's checks: diskless takes none, `-s` and `--disk` exclude each
/// other, each disk has `size` or `adopt`, indices have no gaps).
pub fn create_disks(
    items: &[String],
    os_size: Option<&str>,
    template: Option<&str>,
    source: DiskSource,
) -> Result<Vec<Value>, String> {
    if template == Some("diskless") {
        if !items.is_empty() || os_size.is_some() {
            return Err("Diskless instance but disk information passed".into());
        }
        return Ok(Vec::new());
    }
    if items.is_empty() && os_size.is_none() && source == DiskSource::Create {
        return Err("No disk information specified".into());
    }
    if !items.is_empty() && os_size.is_some() {
        return Err("Please use either the '--disk' or '-s' option".into());
    }
    let mut parsed: Vec<(usize, String, KvItems)> = Vec::new();
    if let Some(size) = os_size {
        parsed.push((
            0,
            "0".into(),
            vec![("size".into(), KvValue::Str(size.into()))],
        ));
    }
    for text in items {
        let (id, kv) = indexed_item("--disk", text)?;
        parsed.push((index_of("--disk", "disk", &id)?, id, kv));
    }
    let count = parsed.iter().map(|(i, _, _)| i + 1).max().unwrap_or(0);
    let mut disks: Vec<Option<Value>> = vec![None; count];
    for (idx, id, kv) in parsed {
        let mut d = disk_params(&id, &kv)?;
        match (d.contains_key("size"), d.contains_key("adopt")) {
            (true, true) => {
                return Err(format!(
                    "Only one of 'size' and 'adopt' allowed (disk {idx})"
                ))
            }
            (false, true) => {
                if d.contains_key("spindles") {
                    return Err("spindles is not a valid option when adopting a disk".into());
                }
                if source == DiskSource::Import {
                    return Err("Disk adoption not allowed for instance import".into());
                }
                d.insert("size".into(), json!(0));
            }
            (false, false) if source == DiskSource::Create => {
                return Err(format!("Missing size or adoption source for disk {idx}"))
            }
            _ => {}
        }
        if disks[idx].is_some() {
            return Err(format!("disk {idx} given more than once"));
        }
        disks[idx] = Some(Value::Object(d));
    }
    disks
        .into_iter()
        .enumerate()
        .map(|(i, d)| d.ok_or_else(|| format!("Missing parameters for disk {i}")))
        .collect()
}

/// Typed NIC parameters of one `--net` item (all text; keys checked).
pub fn nic_params(idx: &str, kv: &[(String, KvValue)]) -> Result<Map<String, Value>, String> {
    let what = format!("nic/{idx}");
    let mut out = Map::new();
    for (k, v) in kv {
        if !NIC_PARAM_KEYS.contains(&k.as_str()) {
            return Err(format!(
                "Unknown parameter {k:?} for {what} (known: {})",
                NIC_PARAM_KEYS.join(", ")
            ));
        }
        let value = text_value(&what, k, v)?.map_or(Value::Null, Value::String);
        out.insert(k.clone(), value);
    }
    Ok(out)
}

/// The `nics` list from `--net N:key=val` items (Ganeti's `ParseNicOption`):
/// indices without an item get an all-default NIC, as in Ganeti.
pub fn create_nics(items: &[String]) -> Result<Vec<Value>, String> {
    let mut nics: Vec<Value> = Vec::new();
    for text in items {
        let (id, kv) = indexed_item("--net", text)?;
        let idx = index_of("--net", "NIC", &id)?;
        if nics.len() <= idx {
            nics.resize(idx + 1, json!({}));
        }
        nics[idx] = Value::Object(nic_params(&id, &kv)?);
    }
    Ok(nics)
}

fn kv_items(option: &str, text: &str) -> Result<Vec<(String, Option<String>)>, String> {
    Ok(parse_keyval(text)
        .map_err(|e| format!("{option}: {e}"))?
        .into_iter()
        .map(|(k, v)| (k, v.as_text()))
        .collect())
}

fn to_object(m: std::collections::BTreeMap<String, Value>) -> Map<String, Value> {
    m.into_iter().collect()
}

/// `-H hypervisor[:key=val,…]` of `add`: the hypervisor and its typed
/// parameters.
pub fn hypervisor_option(text: &str) -> Result<(String, Map<String, Value>), String> {
    let (hv, kv) = match parse_ident_keyval(text).map_err(|e| format!("-H: {e}"))? {
        IdentKv::Set(hv, kv) => (hv, kv),
        IdentKv::Remove(hv) | IdentKv::Reset(hv) => {
            return Err(format!(
                "-H: hypervisor {hv:?} cannot be removed or reset here"
            ))
        }
    };
    let items: Vec<(String, Option<String>)> =
        kv.into_iter().map(|(k, v)| (k, v.as_text())).collect();
    let typed = params::params_from_text(ParamFamily::Hv, Some(&hv), &items)
        .map_err(|e| format!("-H: {}", crate::error::chain(&e)))?;
    Ok((hv, to_object(typed)))
}

/// Ganeti's value meaning "back to the inherited default" in `modify`.
pub const VALUE_DEFAULT: &str = "default";

/// How `-B`/`-H` treat the value `default`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    /// `add`, `startup`: `default` is an ordinary (usually invalid) value.
    Plain,
    /// `modify`: `default` resets the parameter to the inherited value.
    Reset,
}

/// Splits out `key=default` items (kept as the string `default`).
fn take_defaults(
    items: Vec<(String, Option<String>)>,
    mode: DefaultValue,
) -> (Vec<(String, Option<String>)>, Vec<String>) {
    if mode == DefaultValue::Plain {
        return (items, Vec::new());
    }
    let (defaults, rest): (Vec<_>, Vec<_>) = items.into_iter().partition(|(_, v)| {
        v.as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case(VALUE_DEFAULT))
    });
    (rest, defaults.into_iter().map(|(k, _)| k).collect())
}

/// `-B key=val,…`: typed backend parameters; the pre-2.6 `memory` becomes
/// `maxmem` and `minmem`.
pub fn be_params(text: &str, mode: DefaultValue) -> Result<Map<String, Value>, String> {
    let (items, defaults) = take_defaults(kv_items("-B", text)?, mode);
    let mut out = to_object(
        params::params_from_text(ParamFamily::Be, None, &items)
            .map_err(|e| format!("-B: {}", crate::error::chain(&e)))?,
    );
    for key in defaults {
        let spec_key = if key == "memory" { "maxmem" } else { &key };
        params::spec(ParamFamily::Be, None, spec_key)
            .map_err(|e| format!("-B: {}", crate::error::chain(&e)))?;
        out.insert(key, json!(VALUE_DEFAULT));
    }
    Ok(out)
}

/// `-H key=val,…` without a hypervisor name (`startup`, `modify`): each key
/// is typed by the first hypervisor that has it (Ganeti checks against the
/// union of all hypervisors' parameters, `HVS_PARAMETER_TYPES`).
pub fn hv_params_any(text: &str, mode: DefaultValue) -> Result<Map<String, Value>, String> {
    let (items, defaults) = take_defaults(kv_items("-H", text)?, mode);
    let mut out = Map::new();
    let find = |key: &str| {
        params::hypervisors()
            .find(|hv| params::spec(ParamFamily::Hv, Some(hv), key).is_ok())
            .ok_or_else(|| format!("-H: unknown hypervisor parameter {key:?}"))
    };
    for (key, text) in items {
        let hv = find(&key)?;
        let typed = params::params_from_text(ParamFamily::Hv, Some(hv), &[(key, text)])
            .map_err(|e| format!("-H: {}", crate::error::chain(&e)))?;
        out.extend(typed);
    }
    for key in defaults {
        find(&key)?;
        out.insert(key, json!(VALUE_DEFAULT));
    }
    Ok(out)
}

/// `-O key=val,…`: OS parameters are free text, checked by the OS's
/// `verify` script on the node; a bare `key` is true, `no_key` false and
/// `-key` null, as Ganeti's option parser has them.
pub fn os_params(option: &str, text: &str) -> Result<Map<String, Value>, String> {
    Ok(parse_keyval(text)
        .map_err(|e| format!("{option}: {e}"))?
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                KvValue::Str(s) => Value::String(s),
                KvValue::Bool(b) => Value::Bool(b),
                KvValue::Reset => Value::Null,
            };
            (k, v)
        })
        .collect())
}

/// Everything `add`/`import` read from the command line, before it
/// becomes an opcode.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// `-t`.
    pub disk_template: Option<String>,
    /// `--disk` items.
    pub disks: Vec<String>,
    /// `-s`.
    pub os_size: Option<String>,
    /// `--net` items.
    pub nics: Vec<String>,
    /// `--no-nics`.
    pub no_nics: bool,
    /// `-o`.
    pub os: Option<String>,
    /// `-O`.
    pub osparams: Option<String>,
    /// `--os-parameters-private`.
    pub osparams_private: Option<String>,
    /// `--os-parameters-secret`.
    pub osparams_secret: Option<String>,
    /// `-H hv:params`.
    pub hypervisor: Option<String>,
    /// `-B`.
    pub beparams: Option<String>,
    /// `-n pnode[:snode]`.
    pub node: Option<String>,
    /// `-g`.
    pub nodegroup: Option<String>,
    /// `-I`.
    pub iallocator: Option<String>,
    /// `--no-start` (given: do not start).
    pub no_start: bool,
    /// `--no-install`.
    pub no_install: bool,
    /// `--no-ip-check`.
    pub no_ip_check: bool,
    /// `--no-name-check`.
    pub no_name_check: bool,
    /// `--no-conflicts-check`.
    pub no_conflicts_check: bool,
    /// `--no-wait-for-sync`.
    pub no_wait_for_sync: bool,
    /// `--file-storage-dir`.
    pub file_storage_dir: Option<String>,
    /// `--file-driver`.
    pub file_driver: Option<String>,
    /// `--tags a,b`.
    pub tags: Option<String>,
    /// `--force-variant`.
    pub force_variant: bool,
    /// `--ignore-ipolicy`.
    pub ignore_ipolicy: bool,
    /// `--opportunistic-locking`.
    pub opportunistic_locking: bool,
    /// `--forthcoming`.
    pub forthcoming: bool,
    /// `--commit`.
    pub commit: bool,
}

/// What is being created, with the import-only options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateMode {
    /// `gnt-instance add`.
    Create,
    /// `gnt-backup import`.
    Import {
        /// `--src-node`.
        src_node: Option<String>,
        /// `--src-dir`.
        src_dir: Option<String>,
        /// `--identify-defaults`.
        identify_defaults: bool,
        /// `--compress`.
        compress: String,
    },
}

/// `OP_INSTANCE_CREATE` for `name` (Ganeti's `GenericInstanceCreate`).
pub fn create_op(name: &str, o: &CreateOptions, mode: &CreateMode) -> Result<Value, String> {
    if o.forthcoming && o.commit {
        return Err(
            "Creating an instance only forthcoming and commiting it are \
                    mutally exclusive"
                .into(),
        );
    }
    let importing = matches!(mode, CreateMode::Import { .. });
    if importing && o.forthcoming {
        return Err("forthcoming instances can only be created, not imported".into());
    }
    if let Some(t) = &o.disk_template {
        if !params::disk_templates().any(|k| k == t) {
            return Err(format!(
                "-t: unknown disk template {t:?} (one of {})",
                params::disk_templates().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    if let Some(d) = &o.file_driver {
        if !["loop", "blktap", "blktap2"].contains(&d.as_str()) {
            return Err(format!(
                "--file-driver: unknown driver {d:?} (loop, blktap or blktap2)"
            ));
        }
    }
    let nics = if !o.nics.is_empty() {
        if o.no_nics {
            return Err("Please use either the '--net' or '--no-nics' option".into());
        }
        create_nics(&o.nics)?
    } else if o.no_nics || importing {
        Vec::new()
    } else {
        vec![json!({})]
    };
    let source = if importing {
        DiskSource::Import
    } else {
        DiskSource::Create
    };
    let disks = create_disks(
        &o.disks,
        o.os_size.as_deref(),
        o.disk_template.as_deref(),
        source,
    )?;
    let (hypervisor, hvparams) = match &o.hypervisor {
        Some(t) => {
            let (hv, p) = hypervisor_option(t)?;
            (Some(hv), p)
        }
        None => (None, Map::new()),
    };
    let beparams = match &o.beparams {
        Some(t) => be_params(t, DefaultValue::Plain)?,
        None => Map::new(),
    };
    let osparams = match &o.osparams {
        Some(t) => os_params("-O", t)?,
        None => Map::new(),
    };
    let (pnode, snode) = match &o.node {
        Some(n) => {
            let (p, s) = split_node_option(n);
            (Some(p), s)
        }
        None => (None, None),
    };
    if o.iallocator.is_some() && pnode.is_some() {
        return Err("Specify either an iallocator (-I) or nodes (-n), not both".into());
    }
    let tags: Vec<String> = o
        .tags
        .as_deref()
        .map(|t| t.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let mut op = Map::new();
    let mut put = |k: &str, v: Value| {
        op.insert(k.to_string(), v);
    };
    put("OP_ID", json!("OP_INSTANCE_CREATE"));
    put("instance_name", json!(name));
    put("forthcoming", json!(o.forthcoming));
    put("commit", json!(o.commit));
    put("disks", Value::Array(disks));
    put("nics", Value::Array(nics));
    put("conflicts_check", json!(!o.no_conflicts_check));
    put("ip_check", json!(!o.no_ip_check));
    put("name_check", json!(!o.no_name_check));
    put("wait_for_sync", json!(!o.no_wait_for_sync));
    put("hvparams", Value::Object(hvparams));
    put("beparams", Value::Object(beparams));
    put("osparams", Value::Object(osparams));
    put("opportunistic_locking", json!(o.opportunistic_locking));
    put("ignore_ipolicy", json!(o.ignore_ipolicy));
    put("tags", json!(tags));
    let optional = [
        ("disk_template", o.disk_template.clone()),
        ("group_name", o.nodegroup.clone()),
        ("pnode", pnode),
        ("snode", snode),
        ("file_storage_dir", o.file_storage_dir.clone()),
        ("file_driver", o.file_driver.clone()),
        ("iallocator", o.iallocator.clone()),
        ("hypervisor", hypervisor),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            put(k, json!(v));
        }
    }
    if let Some(t) = &o.osparams_private {
        put(
            "osparams_private",
            Value::Object(os_params("--os-parameters-private", t)?),
        );
    }
    if let Some(t) = &o.osparams_secret {
        put(
            "osparams_secret",
            Value::Object(os_params("--os-parameters-secret", t)?),
        );
    }
    match mode {
        CreateMode::Create => {
            put("mode", json!("create"));
            // --no-install implies --no-start, as Ganeti's help says.
            put("start", json!(!o.no_start && !o.no_install));
            put("no_install", json!(o.no_install));
            put("force_variant", json!(o.force_variant));
            put("identify_defaults", json!(false));
            put("compress", json!("none"));
            if let Some(os) = &o.os {
                put("os_type", json!(os));
            }
        }
        CreateMode::Import {
            src_node,
            src_dir,
            identify_defaults,
            compress,
        } => {
            put("mode", json!("import"));
            put("start", json!(false));
            put("force_variant", json!(false));
            put("identify_defaults", json!(identify_defaults));
            put("compress", json!(compress));
            if let Some(n) = src_node {
                put("src_node", json!(n));
            }
            if let Some(d) = src_dir {
                put("src_path", json!(d));
            }
        }
    }
    Ok(Value::Object(op))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opcodes::OpCode;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn sizes_follow_parse_unit() {
        assert_eq!(parse_size_mib("1G").unwrap(), 1024);
        assert_eq!(parse_size_mib("10").unwrap(), 12);
        assert_eq!(parse_size_mib("1.5g").unwrap(), 1536);
        assert_eq!(parse_size_mib("0.1").unwrap(), 4);
        assert_eq!(parse_size_mib("2T").unwrap(), 2 * 1024 * 1024);
        assert!(parse_size_mib("12X").unwrap_err().contains("12X"));
        assert!(parse_size_mib("").is_err());
    }

    #[test]
    fn disks_like_ganeti() {
        let d = create_disks(
            &s(&["0:size=1G,mode=ro,name=root", "1:size=512M,vg=xenvg"]),
            None,
            Some("plain"),
            DiskSource::Create,
        )
        .unwrap();
        assert_eq!(d[0], json!({"size": 1024, "mode": "ro", "name": "root"}));
        assert_eq!(d[1], json!({"size": 512, "vg": "xenvg"}));
        let d = create_disks(&[], Some("2G"), None, DiskSource::Create).unwrap();
        assert_eq!(d, vec![json!({"size": 2048})]);
        let d = create_disks(&s(&["0:adopt=lv0"]), None, None, DiskSource::Create).unwrap();
        assert_eq!(d, vec![json!({"adopt": "lv0", "size": 0})]);
        let err = |items: &[&str], size: Option<&str>, t: Option<&str>| {
            create_disks(&s(items), size, t, DiskSource::Create).unwrap_err()
        };
        assert_eq!(err(&[], None, None), "No disk information specified");
        assert_eq!(
            err(&["0:size=1G"], Some("1G"), None),
            "Please use either the '--disk' or '-s' option"
        );
        assert_eq!(
            err(&["0:size=1G"], None, Some("diskless")),
            "Diskless instance but disk information passed"
        );
        assert_eq!(
            err(&["0:size=1G,adopt=x"], None, None),
            "Only one of 'size' and 'adopt' allowed (disk 0)"
        );
        assert_eq!(
            err(&["0:mode=rw"], None, None),
            "Missing size or adoption source for disk 0"
        );
        assert!(err(&["0:size=huge"], None, None).contains("Invalid disk size for disk 0"));
        assert!(err(&["x:size=1G"], None, None).contains("Invalid disk index"));
        assert!(err(&["0:colour=red"], None, None).contains("\"colour\""));
        assert!(err(&["1:size=1G"], None, None).contains("disk 0"));
        assert!(
            create_disks(&s(&["0:adopt=a"]), None, None, DiskSource::Import)
                .unwrap_err()
                .contains("adoption not allowed")
        );
        assert_eq!(
            create_disks(&[], None, None, DiskSource::Import).unwrap(),
            Vec::<Value>::new()
        );
    }

    #[test]
    fn nics_like_ganeti() {
        let n = create_nics(&s(&[
            "0:mode=bridged,link=br0,mac=aa:00:00:11:22:33",
            "2:ip=192.0.2.5,name=eth2",
        ]))
        .unwrap();
        assert_eq!(
            n,
            vec![
                json!({"mode": "bridged", "link": "br0", "mac": "aa:00:00:11:22:33"}),
                json!({}),
                json!({"ip": "192.0.2.5", "name": "eth2"}),
            ]
        );
        assert!(create_nics(&s(&["0:speed=fast"]))
            .unwrap_err()
            .contains("\"speed\""));
        assert!(create_nics(&s(&["a:mode=routed"]))
            .unwrap_err()
            .contains("Invalid NIC index"));
    }

    #[test]
    fn params_are_typed() {
        let (hv, p) = hypervisor_option("kvm:kernel_path=/boot/vmlinuz,acpi=no").unwrap();
        assert_eq!(hv, "kvm");
        assert_eq!(p["acpi"], false);
        assert!(hypervisor_option("kvm:warp_drive=1")
            .unwrap_err()
            .contains("warp_drive"));
        let b = be_params("memory=1G,vcpus=2", DefaultValue::Plain).unwrap();
        assert_eq!(b["maxmem"], 1024);
        assert_eq!(b["minmem"], 1024);
        assert_eq!(b["vcpus"], 2);
        assert!(b.get("memory").is_none());
        let b = be_params("vcpus=default", DefaultValue::Reset).unwrap();
        assert_eq!(b["vcpus"], "default");
        assert!(be_params("vcpus=default", DefaultValue::Plain).is_err());
        let h = hv_params_any("boot_order=cdrom,acpi=yes", DefaultValue::Plain).unwrap();
        assert_eq!(h["acpi"], true);
        assert!(hv_params_any("nonsense=1", DefaultValue::Plain).is_err());
        let o = os_params("-O", "dhcp,no_swap,size=5").unwrap();
        assert_eq!(
            o,
            json!({"dhcp": true, "swap": false, "size": "5"})
                .as_object()
                .unwrap()
                .clone()
        );
    }

    #[test]
    fn create_op_is_accepted_by_the_opcode_definitions() {
        let o = CreateOptions {
            disk_template: Some("plain".into()),
            disks: s(&["0:size=10G"]),
            nics: s(&["0:link=br0"]),
            os: Some("debootstrap+default".into()),
            osparams: Some("dhcp=yes".into()),
            hypervisor: Some("kvm:acpi=no".into()),
            beparams: Some("memory=512M".into()),
            node: Some("node1:node2".into()),
            no_start: true,
            no_ip_check: true,
            no_name_check: true,
            tags: Some("a,b".into()),
            ..Default::default()
        };
        let op = create_op("inst1.example.com", &o, &CreateMode::Create).unwrap();
        let parsed = OpCode::from_json(&op).unwrap();
        parsed.validate().unwrap();
        let op = parsed.to_json();
        assert_eq!(op["mode"], "create");
        assert_eq!(op["disks"], json!([{"size": 10240}]));
        assert_eq!(op["pnode"], "node1");
        assert_eq!(op["snode"], "node2");
        assert_eq!(op["hypervisor"], "kvm");
        assert_eq!(op["beparams"]["maxmem"], 512);
        assert_eq!(op["start"], false);
        assert_eq!(op["ip_check"], false);
        assert_eq!(op["name_check"], false);
        assert_eq!(op["tags"], json!(["a", "b"]));
        assert_eq!(op["os_type"], "debootstrap+default");
        let plain = CreateOptions {
            disk_template: Some("diskless".into()),
            no_install: true,
            ..Default::default()
        };
        let op = create_op("i2", &plain, &CreateMode::Create).unwrap();
        assert_eq!(op["nics"], json!([{}]));
        assert_eq!(op["start"], false);
        assert_eq!(op["no_install"], true);
        OpCode::from_json(&op).unwrap().validate().unwrap();
        let bad = CreateOptions {
            disk_template: Some("floppy".into()),
            ..Default::default()
        };
        assert!(create_op("i3", &bad, &CreateMode::Create)
            .unwrap_err()
            .contains("floppy"));
    }

    #[test]
    fn import_op() {
        let o = CreateOptions {
            disk_template: Some("file".into()),
            node: Some("node1".into()),
            ..Default::default()
        };
        let mode = CreateMode::Import {
            src_node: Some("node2".into()),
            src_dir: Some("/srv/ganeti/export/inst1".into()),
            identify_defaults: true,
            compress: "none".into(),
        };
        let op = create_op("inst1", &o, &mode).unwrap();
        OpCode::from_json(&op).unwrap().validate().unwrap();
        assert_eq!(op["mode"], "import");
        assert_eq!(op["nics"], json!([]));
        assert_eq!(op["disks"], json!([]));
        assert_eq!(op["src_path"], "/srv/ganeti/export/inst1");
        assert_eq!(op["identify_defaults"], true);
        assert_eq!(op["start"], false);
    }
}
