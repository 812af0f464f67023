//! NIC and disk changes of `gnt-instance modify` (`OP_INSTANCE_SET_PARAMS`
//! `nics`/`disks`): Ganeti's container modifications
//! (`ApplyContainerMods`, `_PrepareNicModification`,
//! `_VerifyDiskModification`, `_CreateNewDisk`, `_RemoveDisk`).
//!
//! Each change is `[action, identifier, params]` (or Ganeti's older
//! `[action-or-index, params]`). The identifier of `add` is the position
//! the new item takes (`-1` appends); for `modify` and `remove` it is an
//! index (`-1`: the last one), a name or a UUID. Changes apply in order,
//! each to the list the previous ones left.
//!
//! Everything is planned in `check_prereq` on copies: NIC changes only
//! touch the config and are committed with the other parameters; disk
//! changes become [`DiskStep`]s that `exec` carries out one at a time,
//! node first (create or remove the block device), config second, with a
//! created disk removed again when its config update fails. Hotplug is
//! not supported; `attach`/`detach` of disks are not built yet. Like
//! every LU this never touches a block device itself: it asks the nodes.

use super::super::create::{
    file_storage_dir, generate_mac, ip_user, name_prefix, normalize_mac, used_macs,
};
use super::super::{call, rpc_msg, spec, target_of, QUICK_TIMEOUT, SLOW_TIMEOUT};
use super::updated_params;
use crate::cmdlib::{LuContext, LuError};
use crate::config::objects::{
    ConfigData, Disk, DiskMode, Instance, LogicalId, Nic, ParamMap, Uuid,
};
use crate::config::params::{self, ParamFamily};
use crate::config::ConfigError;
use crate::error::ErrorKind;
use crate::opcodes::Dict;
use crate::rpc::proto::{self, BlockdevArgs};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Most NICs an instance may have (Ganeti's `MAX_NICS`).
pub const MAX_NICS: usize = 8;
/// Most disks an instance may have (Ganeti's `MAX_DISKS`).
pub const MAX_DISKS: usize = 16;

fn inval(msg: impl Into<String>) -> LuError {
    LuError::prereq(ErrorKind::Inval, msg)
}

/// What one change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Create a new item.
    Add,
    /// Attach an existing (detached) disk.
    Attach,
    /// Delete an item.
    Remove,
    /// Detach a disk, keeping it.
    Detach,
    /// Change an item's parameters.
    Modify,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "add" => Action::Add,
            "attach" => Action::Attach,
            "remove" => Action::Remove,
            "detach" => Action::Detach,
            "modify" => Action::Modify,
            _ => return None,
        })
    }
}

/// One change of the `nics` or `disks` list.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceMod {
    /// What to do.
    pub action: Action,
    /// Index (`-1`: append / the last one), name or UUID.
    pub ident: Value,
    /// The parameters of the change.
    pub params: Dict,
}

/// Parses the opcode's `nics`/`disks` list (`kind`: `NIC` or `disk`),
/// upgrading Ganeti's two-element form (`_UpgradeDiskNicMods`).
pub fn parse_mods(kind: &str, mods: &[Value]) -> Result<Vec<DeviceMod>, LuError> {
    let mut out = Vec::with_capacity(mods.len());
    let mut add_remove = 0;
    for m in mods {
        let items = m.as_array().map(Vec::as_slice).unwrap_or_default();
        let bad = || inval(format!("Invalid {kind} modification {m}"));
        let (action, ident, params) = match items {
            [Value::String(a), ident, Value::Object(p)] => {
                (Action::parse(a).ok_or_else(bad)?, ident.clone(), p.clone())
            }
            [first, Value::Object(p)] => match first.as_str().and_then(Action::parse) {
                Some(Action::Modify) | None => (Action::Modify, first.clone(), p.clone()),
                Some(a) => {
                    add_remove += 1;
                    if add_remove > 1 {
                        return Err(inval(format!(
                            "Only one {kind} add/attach/remove/detach operation is supported at a time"
                        )));
                    }
                    (a, json!(-1), p.clone())
                }
            },
            _ => return Err(bad()),
        };
        if matches!(action, Action::Remove | Action::Detach) && !params.is_empty() {
            return Err(inval(format!(
                "No settings should be passed when removing or detaching a {kind}"
            )));
        }
        out.push(DeviceMod {
            action,
            ident,
            params,
        });
    }
    Ok(out)
}

/// An identifier as an integer index, if it is one (numbers, or strings
/// of digits as Ganeti's `int(identifier)` accepts).
fn as_index(ident: &Value) -> Option<i64> {
    match ident {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn ident_text(ident: &Value) -> String {
    ident
        .as_str()
        .map_or_else(|| ident.to_string(), str::to_string)
}

/// Where an `add` puts its item (Ganeti's `GetIndexFromIdentifier`).
fn add_index(kind: &str, ident: &Value, len: usize) -> Result<usize, LuError> {
    let idx = as_index(ident).ok_or_else(|| inval("Only positive integer or -1 is accepted"))?;
    match idx {
        -1 => Ok(len),
        i if i < 0 => Err(inval("Not accepting negative indices other than -1")),
        i => {
            let i = usize::try_from(i).map_err(|_| inval(format!("Invalid {kind} index {i}")))?;
            if i > len {
                return Err(inval(format!(
                    "Got {kind} index {i}, but there are only {len}"
                )));
            }
            Ok(i)
        }
    }
}

/// The position of an existing NIC among `nics` (see [`find_index`]).
fn nic_index(nics: &[Nic], ident: &Value) -> Result<usize, LuError> {
    find_index(
        "NIC",
        ident,
        nics.iter().map(|n| (n.name.as_deref(), n.uuid.as_str())),
        nics.len(),
    )
}

/// The position of an existing disk among `disks` (see [`find_index`]).
fn disk_index(disks: &[Disk], ident: &Value) -> Result<usize, LuError> {
    find_index(
        "disk",
        ident,
        disks.iter().map(|d| (d.name.as_deref(), d.uuid.as_str())),
        disks.len(),
    )
}

/// The position of an existing item (Ganeti's `GetItemFromContainer`):
/// an index (`-1`: the last), a name or a UUID.
fn find_index<'a>(
    kind: &str,
    ident: &Value,
    items: impl Iterator<Item = (Option<&'a str>, &'a str)>,
    len: usize,
) -> Result<usize, LuError> {
    if let Some(idx) = as_index(ident) {
        return match idx {
            -1 if len > 0 => Ok(len - 1),
            i if i < 0 && i != -1 => Err(inval("Not accepting negative indices other than -1")),
            i => usize::try_from(i)
                .ok()
                .filter(|i| *i < len)
                .ok_or_else(|| inval(format!("Got {kind} index {i}, but there are only {len}"))),
        };
    }
    let want = ident_text(ident);
    items
        .enumerate()
        .find(|(_, (name, uuid))| *uuid == want || *name == Some(want.as_str()))
        .map(|(i, _)| i)
        .ok_or_else(|| {
            LuError::prereq(
                ErrorKind::NoEnt,
                format!("Cannot find {kind} with identifier {want}"),
            )
        })
}

/// A parameter as text; `None` when absent or null.
fn text(d: &Dict, key: &str) -> Option<String> {
    match d.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    }
}

/// `name=none` clears a name (Ganeti's `VALUE_NONE`).
fn name_param(d: &Dict) -> Option<Option<String>> {
    if !d.contains_key("name") {
        return None;
    }
    Some(text(d, "name").filter(|n| !n.eq_ignore_ascii_case("none")))
}

/// Ganeti's `ValidateDeviceNames`: names are not numbers, and unique
/// among the item names and UUIDs.
fn validate_names<'a>(
    kind: &str,
    items: impl Iterator<Item = (Option<&'a str>, &'a str)>,
) -> Result<(), LuError> {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let items: Vec<_> = items.collect();
    seen.extend(items.iter().map(|(_, u)| *u));
    for (name, _) in items {
        let Some(name) = name else { continue };
        if name.parse::<i64>().is_ok() {
            return Err(inval(format!(
                "Invalid name '{name}'. Purely numeric {kind} names are not allowed"
            )));
        }
        if !seen.insert(name) {
            return Err(LuError::prereq(
                ErrorKind::NotUnique,
                format!("{kind} name '{name}' already used"),
            ));
        }
    }
    Ok(())
}

/// The NIC list after the changes, with Ganeti's change descriptions.
#[derive(Debug, Clone, Default)]
pub struct NicPlan {
    /// The instance's NICs after every change.
    pub nics: Vec<Nic>,
    /// `[name, value]` lines for the opcode result.
    pub changes: Vec<(String, Value)>,
    /// MACs this plan introduces (checked again when committing).
    pub new_macs: BTreeSet<String>,
}

const NIC_KEYS: &[&str] = &["ip", "mac", "mode", "link", "vlan", "name", "network"];

/// Plans the NIC changes `mods` of `inst` (Ganeti's
/// `_PrepareNicModification`, `_CreateNewNic`, `_ApplyNicMods`).
/// `conflicts_check`: refuse an IP another NIC in the cluster uses.
pub fn plan_nics(
    cfg: &ConfigData,
    inst: &Instance,
    mods: &[DeviceMod],
    conflicts_check: bool,
) -> Result<NicPlan, LuError> {
    let mut plan = NicPlan {
        nics: inst.nics.clone(),
        ..NicPlan::default()
    };
    let mut used = used_macs(cfg);
    for m in mods {
        if let Some(k) = m.params.keys().find(|k| !NIC_KEYS.contains(&k.as_str())) {
            return Err(inval(format!("Unknown parameter '{k}'")));
        }
        if let Some(net) = text(&m.params, "network") {
            if !net.eq_ignore_ascii_case("none") {
                return Err(inval(format!(
                    "Networks are not supported yet by ganeti-rs (network '{net}')"
                )));
            }
        }
        match m.action {
            Action::Attach => {
                return Err(inval("Attach operation is not supported for NICs"));
            }
            Action::Detach => {
                return Err(inval("Detach operation is not supported for NICs"));
            }
            Action::Add => {
                let idx = add_index("NIC", &m.ident, plan.nics.len())?;
                let nic = new_nic(cfg, &m.params, &mut used, conflicts_check)?;
                let filled = params::fill_nicparams(&cfg.cluster, &nic.nicparams);
                let show = |k: &str| filled.get(k).map(value_text).unwrap_or_default();
                plan.changes.push((
                    format!("nic.{idx}"),
                    json!(format!(
                        "add:mac={},ip={},mode={},link={},network=None",
                        nic.mac,
                        nic.ip.as_deref().unwrap_or("None"),
                        show("mode"),
                        show("link"),
                    )),
                ));
                plan.new_macs.insert(nic.mac.clone());
                plan.nics.insert(idx, nic);
            }
            Action::Remove => {
                let idx = nic_index(&plan.nics, &m.ident)?;
                plan.nics.remove(idx);
                plan.changes.push((format!("nic/{idx}"), json!("remove")));
            }
            Action::Modify => {
                let idx = nic_index(&plan.nics, &m.ident)?;
                let mut changes = Vec::new();
                let nic = &mut plan.nics[idx];
                modify_nic(
                    cfg,
                    nic,
                    idx,
                    &m.params,
                    &mut used,
                    conflicts_check,
                    &mut changes,
                )?;
                if m.params.contains_key("mac") {
                    plan.new_macs.insert(nic.mac.clone());
                }
                plan.changes.extend(changes);
            }
        }
    }
    if plan.nics.len() > MAX_NICS {
        return Err(LuError::prereq(
            ErrorKind::State,
            format!("Instance has too many network interfaces ({MAX_NICS}), cannot add more"),
        ));
    }
    validate_names(
        "NIC",
        plan.nics
            .iter()
            .map(|n| (n.name.as_deref(), n.uuid.as_str())),
    )?;
    Ok(plan)
}

fn value_text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// An IP given in a NIC change: `None` for `none`, refused for `pool`
/// (no networks) and for what is not an address.
fn parse_ip(text: &str) -> Result<Option<String>, LuError> {
    if text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    if text.eq_ignore_ascii_case("pool") {
        return Err(inval("If ip=pool, parameter network cannot be none"));
    }
    if text.parse::<std::net::IpAddr>().is_err() {
        return Err(inval(format!("Invalid IP address '{text}'")));
    }
    Ok(Some(text.to_string()))
}

/// A MAC given in a NIC change, or a generated one (`auto`/`generate`),
/// not used anywhere in the cluster.
fn take_mac(cfg: &ConfigData, given: &str, used: &mut BTreeSet<String>) -> Result<String, LuError> {
    let mac = if given == "auto" || given == "generate" {
        generate_mac(&cfg.cluster.mac_prefix, used)?
    } else {
        let mac =
            normalize_mac(given).ok_or_else(|| inval(format!("Invalid MAC address '{given}'")))?;
        if used.contains(&mac) {
            return Err(LuError::prereq(
                ErrorKind::NotUnique,
                format!("MAC address '{mac}' already in use in cluster"),
            ));
        }
        mac
    };
    used.insert(mac.clone());
    Ok(mac)
}

/// The NIC parameter overrides after a change: `mode`, `link`, `vlan`
/// over `old` (`default` resets one), checked and filled.
fn nicparams_after(
    cfg: &ConfigData,
    old: &ParamMap,
    d: &Dict,
) -> Result<(ParamMap, ParamMap), LuError> {
    let changes: ParamMap = ["mode", "link", "vlan"]
        .iter()
        .filter_map(|k| d.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    let new = updated_params(old, &changes);
    params::check_params(ParamFamily::Nic, None, &new).map_err(|e| inval(e.to_string()))?;
    let filled = params::fill_nicparams(&cfg.cluster, &new);
    let mode = filled.get("mode").map(value_text).unwrap_or_default();
    if !["bridged", "routed", "openvswitch"].contains(&mode.as_str()) {
        return Err(inval(format!("Invalid NIC mode '{mode}'")));
    }
    let vlan = filled.get("vlan").map(value_text).unwrap_or_default();
    if mode != "openvswitch" && !vlan.is_empty() {
        return Err(inval("Specified VLAN parameter is invalid"));
    }
    Ok((new, filled))
}

fn check_ip_conflict(cfg: &ConfigData, ip: &str, conflicts_check: bool) -> Result<(), LuError> {
    if !conflicts_check {
        return Ok(());
    }
    if let Some(user) = ip_user(cfg, ip) {
        return Err(LuError::prereq(
            ErrorKind::NotUnique,
            format!("IP address {ip} already in use by instance {user}"),
        ));
    }
    Ok(())
}

fn routed_needs_ip(filled: &ParamMap, ip: &Option<String>) -> Result<(), LuError> {
    if filled.get("mode").and_then(Value::as_str) == Some("routed") && ip.is_none() {
        return Err(inval(
            "Cannot set the NIC IP address to None on a routed NIC if not attached to a network",
        ));
    }
    Ok(())
}

fn new_nic(
    cfg: &ConfigData,
    d: &Dict,
    used: &mut BTreeSet<String>,
    conflicts_check: bool,
) -> Result<Nic, LuError> {
    let ip = text(d, "ip").map(|s| parse_ip(&s)).transpose()?.flatten();
    let (nicparams, filled) = nicparams_after(cfg, &ParamMap::new(), d)?;
    routed_needs_ip(&filled, &ip)?;
    if let Some(ip) = &ip {
        check_ip_conflict(cfg, ip, conflicts_check)?;
    }
    let mac = take_mac(cfg, &text(d, "mac").unwrap_or_else(|| "auto".into()), used)?;
    Ok(Nic {
        name: name_param(d).flatten(),
        mac,
        ip,
        nicparams,
        uuid: Uuid::generate(),
        ..Nic::default()
    })
}

fn modify_nic(
    cfg: &ConfigData,
    nic: &mut Nic,
    idx: usize,
    d: &Dict,
    used: &mut BTreeSet<String>,
    conflicts_check: bool,
    changes: &mut Vec<(String, Value)>,
) -> Result<(), LuError> {
    if d.contains_key("mac") {
        let mac = text(d, "mac").ok_or_else(|| inval("Cannot unset the NIC MAC address"))?;
        if mac == "auto" {
            return Err(inval(
                "'auto' is not a valid MAC address when modifying an existing NIC",
            ));
        }
        nic.mac = take_mac(cfg, &mac, used)?;
        changes.push((format!("nic.mac/{idx}"), json!(nic.mac)));
    }
    if d.contains_key("ip") {
        let ip = text(d, "ip").map(|s| parse_ip(&s)).transpose()?.flatten();
        if ip != nic.ip {
            if let Some(ip) = &ip {
                check_ip_conflict(cfg, ip, conflicts_check)?;
            }
        }
        nic.ip = ip;
        changes.push((format!("nic.ip/{idx}"), json!(nic.ip)));
    }
    if let Some(name) = name_param(d) {
        nic.name = name;
        changes.push((format!("nic.name/{idx}"), json!(nic.name)));
    }
    let (new, filled) = nicparams_after(cfg, &nic.nicparams, d)?;
    routed_needs_ip(&filled, &nic.ip)?;
    if ["mode", "link", "vlan"].iter().any(|k| d.contains_key(*k)) {
        nic.nicparams = new;
        for (k, v) in &filled {
            changes.push((format!("nic.{k}/{idx}"), v.clone()));
        }
    }
    Ok(())
}

/// One disk change as `exec` carries it out.
#[derive(Debug, Clone)]
pub enum DiskStep {
    /// Create `disk` on its nodes and insert it at `idx`.
    Add {
        /// Position in the instance's disk list.
        idx: usize,
        /// The new disk (UUID, logical id, nodes chosen).
        disk: Box<Disk>,
    },
    /// Remove the disk with `uuid` (at `idx` when planned) from its
    /// nodes and the instance.
    Remove {
        /// Position when planned (for the change description).
        idx: usize,
        /// The disk.
        uuid: Uuid,
    },
    /// Change the access mode, name or (ext) parameters of a disk.
    Modify {
        /// Position when planned.
        idx: usize,
        /// The disk.
        uuid: Uuid,
        /// New access mode.
        mode: Option<DiskMode>,
        /// New name (`Some(None)` clears it).
        name: Option<Option<String>>,
        /// Provider parameter changes of an `ext` disk (`default` resets).
        params: ParamMap,
    },
}

/// Disk parameters `modify` may change on non-`ext` disks.
const MODIFIABLE_DISK_KEYS: &[&str] = &["mode", "name"];
/// Disk parameters of an `add` (Ganeti's `IDISK_PARAMS`).
const ADD_DISK_KEYS: &[&str] = &[
    "size", "spindles", "mode", "vg", "metavg", "adopt", "name", "provider", "access", "type",
];

fn disk_mode(d: &Dict) -> Result<Option<DiskMode>, LuError> {
    match text(d, "mode").as_deref() {
        None => Ok(None),
        Some("rw") => Ok(Some(DiskMode::ReadWrite)),
        Some("ro") => Ok(Some(DiskMode::ReadOnly)),
        Some(other) => Err(inval(format!("Invalid disk access mode '{other}'"))),
    }
}

/// Ganeti's text for an access mode.
pub fn mode_text(m: DiskMode) -> &'static str {
    match m {
        DiskMode::ReadWrite => "rw",
        DiskMode::ReadOnly => "ro",
    }
}

/// Options of the opcode that shape new disks.
#[derive(Debug, Clone, Default)]
pub struct DiskOptions {
    /// `file_driver` (default: the instance's, else `loop`).
    pub file_driver: Option<String>,
    /// `file_storage_dir`, below the cluster's file storage directory.
    pub file_storage_dir: Option<String>,
    /// `wait_for_sync`.
    pub wait_for_sync: bool,
}

/// Plans the disk changes `mods` of `inst` (Ganeti's
/// `_VerifyDiskModification` and the disk half of `ApplyContainerMods`).
pub fn plan_disks(
    cfg: &ConfigData,
    inst: &Instance,
    mods: &[DeviceMod],
    opts: &DiskOptions,
) -> Result<Vec<DiskStep>, LuError> {
    let template = super::super::disk_template(cfg, inst);
    let mut disks: Vec<Disk> = inst
        .disks
        .iter()
        .map(|u| {
            cfg.disks.get(u).cloned().ok_or_else(|| {
                LuError::prereq(
                    ErrorKind::NoEnt,
                    format!("Disk '{u}' of instance {} not known", inst.name),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    let mut steps = Vec::new();
    for m in mods {
        match m.action {
            Action::Attach | Action::Detach => {
                return Err(inval(format!(
                    "gnt-instance modify: disk {} is not supported yet in ganeti-rs",
                    if m.action == Action::Attach {
                        "attach"
                    } else {
                        "detach"
                    }
                )));
            }
            Action::Add => {
                let idx = add_index("disk", &m.ident, disks.len())?;
                if !opts.wait_for_sync && !inst.disks_active {
                    return Err(inval(
                        "Can't add a disk to an instance with deactivated disks and --no-wait-for-sync given",
                    ));
                }
                let disk = new_disk(cfg, inst, &template, &disks, idx, &m.params, opts)?;
                disks.insert(idx, disk.clone());
                steps.push(DiskStep::Add {
                    idx,
                    disk: Box::new(disk),
                });
            }
            Action::Remove => {
                let idx = disk_index(&disks, &m.ident)?;
                let d = disks.remove(idx);
                steps.push(DiskStep::Remove { idx, uuid: d.uuid });
            }
            Action::Modify => {
                let idx = disk_index(&disks, &m.ident)?;
                if m.params.contains_key("size") {
                    return Err(inval("Disk size change not possible, use grow-disk"));
                }
                let d = &mut disks[idx];
                let mut ext_params = ParamMap::new();
                if d.dev_type == "ext" {
                    for p in ["access", "provider"] {
                        if m.params.contains_key(p) {
                            return Err(inval(format!(
                                "Disk '{p}' parameter change is not possible"
                            )));
                        }
                    }
                    ext_params = m
                        .params
                        .iter()
                        .filter(|(k, _)| !MODIFIABLE_DISK_KEYS.contains(&k.as_str()))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                } else if let Some(k) = m
                    .params
                    .keys()
                    .find(|k| !MODIFIABLE_DISK_KEYS.contains(&k.as_str()))
                {
                    return Err(inval(format!("Unknown parameter '{k}'")));
                }
                let mode = disk_mode(&m.params)?;
                let name = name_param(&m.params);
                if let Some(mode) = mode {
                    d.mode = mode;
                }
                if let Some(name) = &name {
                    d.name.clone_from(name);
                }
                steps.push(DiskStep::Modify {
                    idx,
                    uuid: d.uuid.clone(),
                    mode,
                    name,
                    params: ext_params,
                });
            }
        }
    }
    if disks.len() > MAX_DISKS {
        return Err(LuError::prereq(
            ErrorKind::State,
            format!("Instance has too many disks ({MAX_DISKS}), cannot add more"),
        ));
    }
    validate_names(
        "disk",
        disks.iter().map(|d| (d.name.as_deref(), d.uuid.as_str())),
    )?;
    Ok(steps)
}

/// Whether the changes remove a disk (the instance must not run).
pub fn removes_disks(steps: &[DiskStep]) -> bool {
    steps.iter().any(|s| matches!(s, DiskStep::Remove { .. }))
}

/// The config object of a disk added at `idx` (Ganeti's
/// `GenerateDiskTemplate` for one disk): same template as the instance,
/// file disks next to the existing ones.
fn new_disk(
    cfg: &ConfigData,
    inst: &Instance,
    template: &str,
    existing: &[Disk],
    idx: usize,
    d: &Dict,
    opts: &DiskOptions,
) -> Result<Disk, LuError> {
    let dev_type = match text(d, "type") {
        None if template == "diskless" => {
            return Err(inval("Must specify disk type on diskless instance"))
        }
        None => template.to_string(),
        Some(t) if t == template => t,
        Some(t) => {
            return Err(inval(format!(
                "Adding a '{t}' disk to a '{template}' instance is not supported yet in ganeti-rs (mixed disk templates)"
            )))
        }
    };
    if !["plain", "file", "sharedfile", "blockdev", "ext"].contains(&dev_type.as_str()) {
        return Err(inval(format!(
            "Adding disks to '{dev_type}' instances is not supported yet in ganeti-rs"
        )));
    }
    if dev_type != "ext" {
        if let Some(k) = d.keys().find(|k| !ADD_DISK_KEYS.contains(&k.as_str())) {
            return Err(inval(format!("Unknown parameter '{k}'")));
        }
    }
    let mode = disk_mode(d)?.unwrap_or_default();
    let size_mib = match d.get("size") {
        None | Some(Value::Null) if dev_type == "blockdev" => 0,
        None | Some(Value::Null) => {
            return Err(inval("Required disk parameter 'size' missing"));
        }
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| inval(format!("Invalid disk size '{n}'")))?,
        Some(Value::String(s)) => {
            params::parse_unit(s).map_err(|_| inval(format!("Invalid disk size '{s}'")))?
        }
        Some(other) => return Err(inval(format!("Invalid disk size '{other}'"))),
    };
    if size_mib == 0 && dev_type != "blockdev" {
        return Err(inval(format!("Invalid disk size '0' for disk {idx}")));
    }
    let provider = text(d, "provider");
    match (&provider, dev_type.as_str()) {
        (None, "ext") => {
            return Err(inval(format!("Missing provider for template '{dev_type}'")));
        }
        (Some(_), t) if t != "ext" => {
            return Err(inval(format!(
                "The 'provider' option is only valid for the ext disk template, not {t}"
            )));
        }
        _ => {}
    }
    let adopt = text(d, "adopt");
    if adopt.is_some() && dev_type != "blockdev" {
        return Err(inval(format!(
            "Disk adoption is not supported for the '{dev_type}' disk template"
        )));
    }
    let gen_name = format!(
        "{}{}.disk{idx}",
        Uuid::generate(),
        name_prefix(&dev_type).unwrap_or_default()
    );
    let logical_id = match dev_type.as_str() {
        "plain" => LogicalId::Pair(
            text(d, "vg")
                .or_else(|| cfg.cluster.volume_group_name.clone())
                .unwrap_or_default(),
            gen_name,
        ),
        "file" | "sharedfile" => {
            let same = existing.iter().find_map(|x| match &x.logical_id {
                LogicalId::Pair(driver, path) if x.dev_type == dev_type => {
                    Some((driver.clone(), path.clone()))
                }
                _ => None,
            });
            let dir = match (&same, &opts.file_storage_dir) {
                (Some((_, path)), None) => std::path::Path::new(path)
                    .parent()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                _ => file_storage_dir(
                    cfg,
                    &dev_type,
                    opts.file_storage_dir.as_deref(),
                    inst.name.as_str(),
                )?
                .unwrap_or_default(),
            };
            let driver = opts
                .file_driver
                .clone()
                .or_else(|| same.map(|(driver, _)| driver))
                .unwrap_or_else(|| "loop".into());
            LogicalId::Pair(driver, format!("{dir}/{gen_name}"))
        }
        "blockdev" => LogicalId::Pair(
            "manual".into(),
            adopt.ok_or_else(|| {
                inval(
                    "Disk template blockdev requires disk adoption, but no 'adopt' parameter given",
                )
            })?,
        ),
        _ => LogicalId::Pair(provider.clone().unwrap_or_default(), gen_name),
    };
    let mut disk_params = ParamMap::new();
    if dev_type == "ext" {
        if let Some(p) = &provider {
            disk_params.insert("provider".into(), json!(p));
        }
        disk_params.extend(
            d.iter()
                .filter(|(k, _)| !ADD_DISK_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone())),
        );
    }
    let nodes = if matches!(dev_type.as_str(), "plain" | "file") {
        vec![inst.primary_node.clone()]
    } else {
        Vec::new()
    };
    let now = super::super::now();
    Ok(Disk {
        name: name_param(d).flatten(),
        dev_type,
        logical_id,
        nodes,
        iv_name: format!("disk/{idx}"),
        size: size_mib,
        mode,
        params: disk_params,
        serial_no: 1,
        uuid: Uuid::generate(),
        ctime: now,
        mtime: now,
        ..Disk::default()
    })
}

/// Gives the instance's disks the `disk/N` names of their positions (as
/// Ganeti's config does after a disk is added or removed).
fn renumber(c: &mut ConfigData, inst_uuid: &Uuid) {
    let Some(order) = c.instances.get(inst_uuid).map(|i| i.disks.clone()) else {
        return;
    };
    for (i, u) in order.iter().enumerate() {
        if let Some(d) = c.disks.get_mut(u) {
            let want = format!("disk/{i}");
            if d.iv_name != want {
                d.iv_name = want;
                d.serial_no += 1;
            }
        }
    }
}

fn disappeared(inst: &str) -> ConfigError {
    ConfigError::Update {
        reason: format!("Instance '{inst}' disappeared from the cluster"),
    }
}

/// The nodes a disk lives on (the primary for templates keeping no list).
pub(in crate::cmdlib::instance) fn disk_nodes(disk: &Disk, inst: &Instance) -> Vec<Uuid> {
    let mut nodes: Vec<Uuid> = disk.all_nodes().into_iter().cloned().collect();
    if nodes.is_empty() {
        nodes.push(inst.primary_node.clone());
    }
    nodes.sort_by_key(|n| *n == inst.primary_node);
    nodes
}

pub(in crate::cmdlib::instance) fn blockdev_args(
    cfg: &ConfigData,
    inst: &Instance,
    disk: &Disk,
    node: &Uuid,
) -> BlockdevArgs {
    BlockdevArgs {
        disk: spec::disk_spec(disk, &spec::template_diskparams(cfg, inst, &disk.dev_type)),
        instance_name: inst.name.as_str().to_string(),
        on_primary: *node == inst.primary_node,
        exclusive_storage: false,
    }
}

/// Removes `disk` from `nodes`, returning the failures as messages.
pub(in crate::cmdlib::instance) fn remove_from(
    ctx: &mut LuContext<'_>,
    cfg: &ConfigData,
    inst: &Instance,
    disk: &Disk,
    nodes: &[Uuid],
) -> Vec<String> {
    let mut out = Vec::new();
    for node in nodes {
        let tgt = match target_of(cfg, node) {
            Ok(t) => t,
            Err(e) => {
                out.push(e.to_string());
                continue;
            }
        };
        let args = blockdev_args(cfg, inst, disk, node);
        if let Err(e) = call(ctx, proto::BLOCKDEV_REMOVE, &tgt, &args, SLOW_TIMEOUT) {
            out.push(format!(
                "Could not remove disk {} on node {}: {}",
                disk.iv_name,
                tgt.name,
                rpc_msg(&e)
            ));
        }
    }
    out
}

/// Carries out `steps` for the instance with `inst_uuid`, appending
/// Ganeti's change descriptions to `result`.
pub fn apply_disk_steps(
    ctx: &mut LuContext<'_>,
    inst_uuid: &Uuid,
    steps: &[DiskStep],
    result: &mut Vec<Value>,
) -> Result<(), LuError> {
    for step in steps {
        let cfg = ctx.store.snapshot();
        let inst = cfg
            .instances
            .get(inst_uuid)
            .cloned()
            .ok_or_else(|| LuError::Exec(format!("Instance {inst_uuid} disappeared")))?;
        match step {
            DiskStep::Add { idx, disk } => {
                add_disk(ctx, &cfg, &inst, *idx, disk)?;
                result.push(json!([
                    format!("disk/{idx}"),
                    format!("add:size={},mode={}", disk.size, mode_text(disk.mode))
                ]));
            }
            DiskStep::Remove { idx, uuid } => {
                remove_disk(ctx, &cfg, &inst, uuid)?;
                result.push(json!([format!("disk/{idx}"), "remove"]));
            }
            DiskStep::Modify {
                idx,
                uuid,
                mode,
                name,
                params,
            } => {
                let (u, mode2, name2, params2) =
                    (uuid.clone(), *mode, name.clone(), params.clone());
                ctx.update_config(move |c| {
                    let d = c.disks.get_mut(&u).ok_or_else(|| ConfigError::Update {
                        reason: format!("Disk '{u}' disappeared from the cluster"),
                    })?;
                    if let Some(m) = mode2 {
                        d.mode = m;
                    }
                    if let Some(n) = name2 {
                        d.name = n;
                    }
                    d.params = updated_params(&d.params, &params2);
                    d.serial_no += 1;
                    d.mtime = super::super::now();
                    Ok(())
                })?;
                if let Some(m) = mode {
                    result.push(json!([format!("disk.mode/{idx}"), mode_text(*m)]));
                }
                if let Some(n) = name {
                    result.push(json!([format!("disk.name/{idx}"), n]));
                }
                for (k, v) in params {
                    result.push(json!([format!("disk.params:{k}/{idx}"), v]));
                }
            }
        }
    }
    Ok(())
}

fn add_disk(
    ctx: &mut LuContext<'_>,
    cfg: &ConfigData,
    inst: &Instance,
    idx: usize,
    disk: &Disk,
) -> Result<(), LuError> {
    let nodes = disk_nodes(disk, inst);
    let mut created: Vec<Uuid> = Vec::new();
    for node in &nodes {
        let tgt = target_of(cfg, node)?;
        let args = blockdev_args(cfg, inst, disk, node);
        if let Err(e) = call(ctx, proto::BLOCKDEV_CREATE, &tgt, &args, SLOW_TIMEOUT) {
            for w in remove_from(ctx, cfg, inst, disk, &created) {
                ctx.log(format!("WARNING: {w}"));
            }
            return Err(LuError::Exec(crate::cmdlib::instance::create_failed(
                &disk.iv_name,
                &tgt.name,
                inst.name.as_str(),
                &e,
            )));
        }
        created.push(node.clone());
    }
    let (d, iu, name) = (disk.clone(), inst.uuid.clone(), inst.name.to_string());
    let added = ctx.update_config(move |c| {
        let i = c.instances.get_mut(&iu).ok_or_else(|| disappeared(&name))?;
        let at = idx.min(i.disks.len());
        i.disks.insert(at, d.uuid.clone());
        i.serial_no += 1;
        i.mtime = super::super::now();
        c.disks.insert(d.uuid.clone(), d);
        renumber(c, &iu);
        Ok(())
    });
    if let Err(e) = added {
        for w in remove_from(ctx, cfg, inst, disk, &created) {
            ctx.log(format!("WARNING: {w}"));
        }
        return Err(e);
    }
    if inst.disks_active {
        // The instance's disks are in use: bring the new one up too
        // (Ganeti's `_PostAddDisk` leaves it assembled).
        let tgt = target_of(cfg, &inst.primary_node)?;
        let args = blockdev_args(cfg, inst, disk, &inst.primary_node);
        if let Err(e) = call(ctx, proto::BLOCKDEV_ASSEMBLE, &tgt, &args, QUICK_TIMEOUT) {
            ctx.log(format!(
                "WARNING: Can't assemble newly created disk {idx}: {}",
                rpc_msg(&e)
            ));
        }
    }
    Ok(())
}

fn remove_disk(
    ctx: &mut LuContext<'_>,
    cfg: &ConfigData,
    inst: &Instance,
    uuid: &Uuid,
) -> Result<(), LuError> {
    let disk = cfg
        .disks
        .get(uuid)
        .cloned()
        .ok_or_else(|| LuError::Exec(format!("Disk '{uuid}' disappeared from the cluster")))?;
    let nodes = disk_nodes(&disk, inst);
    for node in &nodes {
        let Ok(tgt) = target_of(cfg, node) else {
            continue;
        };
        let args = blockdev_args(cfg, inst, &disk, node);
        if let Err(e) = call(ctx, proto::BLOCKDEV_SHUTDOWN, &tgt, &args, QUICK_TIMEOUT) {
            ctx.log(format!(
                "WARNING: Could not shutdown block device {} on node {}: {}",
                disk.iv_name,
                tgt.name,
                rpc_msg(&e)
            ));
        }
    }
    // As Ganeti's `RemoveDisks`: a failure to remove is reported, the
    // disk leaves the config anyway (the admin cleans up the node).
    for w in remove_from(ctx, cfg, inst, &disk, &nodes) {
        ctx.log(format!("WARNING: {w}"));
    }
    let (u, iu, name) = (uuid.clone(), inst.uuid.clone(), inst.name.to_string());
    ctx.update_config(move |c| {
        let i = c.instances.get_mut(&iu).ok_or_else(|| disappeared(&name))?;
        i.disks.retain(|d| *d != u);
        i.serial_no += 1;
        i.mtime = super::super::now();
        c.disks.remove(&u);
        renumber(c, &iu);
        Ok(())
    })
}

/// Commits a [`NicPlan`] inside a config update: refuses when a MAC it
/// introduces was taken meanwhile by another instance.
pub fn commit_nics(c: &ConfigData, inst_uuid: &Uuid, plan: &NicPlan) -> Result<(), ConfigError> {
    for (u, i) in &c.instances {
        if u == inst_uuid {
            continue;
        }
        if let Some(n) = i
            .nics
            .iter()
            .find(|n| plan.new_macs.contains(&n.mac.to_lowercase()))
        {
            return Err(ConfigError::Update {
                reason: format!("MAC address '{}' already in use in cluster", n.mac),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cmdlib::fake_rpc::{exec_err, prereq, TestCluster};
    use crate::cmdlib::OpOutcome;
    use crate::config::objects::{AdminState, DiskMode, LogicalId};
    use crate::error::ErrorKind;
    use crate::opcodes::OpInstanceSetParams;
    use crate::rpc::proto;
    use serde_json::{json, Value};

    const INST: &str = "inst1.example.com";
    const NODE1: &str = "node1.example.com";

    /// inst1 (one plain disk, one NIC) on node1, stopped.
    fn cluster(tag: &str) -> TestCluster {
        TestCluster::with_stopped_instance(tag)
    }

    fn nics(changes: Value) -> OpInstanceSetParams {
        OpInstanceSetParams {
            instance_name: "inst1".into(),
            nics: changes.as_array().unwrap().clone(),
            ..Default::default()
        }
    }

    fn disks(changes: Value) -> OpInstanceSetParams {
        OpInstanceSetParams {
            instance_name: "inst1".into(),
            disks: changes.as_array().unwrap().clone(),
            ..Default::default()
        }
    }

    fn success(out: (OpOutcome, Vec<String>)) -> Vec<Value> {
        match out.0 {
            OpOutcome::Success(Value::Array(r)) => r,
            other => panic!("{other:?} {:?}", out.1),
        }
    }

    fn instance(c: &TestCluster) -> crate::config::objects::Instance {
        c.config().instance_by_name(INST).unwrap().1.clone()
    }

    fn iv_names(c: &TestCluster) -> Vec<(String, Option<String>)> {
        let cfg = c.config();
        instance(c)
            .disks
            .iter()
            .map(|u| (cfg.disks[u].iv_name.clone(), cfg.disks[u].name.clone()))
            .collect()
    }

    #[test]
    fn nic_add_modify_remove() {
        let c = cluster("nic-mods");
        let old_mac = instance(&c).nics[0].mac.clone();
        // Refusals first: nothing may change.
        let serial = c.config().serial_no;
        for (change, kind, want) in [
            (
                json!([["add", -1, {"mode": "routed"}]]),
                ErrorKind::Inval,
                "Cannot set the NIC IP address to None on a routed NIC if not attached to a network".to_string(),
            ),
            (
                json!([["add", -1, {"mac": old_mac}]]),
                ErrorKind::NotUnique,
                format!("MAC address '{old_mac}' already in use in cluster"),
            ),
            (
                json!([["add", -1, {"ip": "300.1.1.1"}]]),
                ErrorKind::Inval,
                "Invalid IP address '300.1.1.1'".to_string(),
            ),
            (
                json!([["add", 3, {}]]),
                ErrorKind::Inval,
                "Got NIC index 3, but there are only 1".to_string(),
            ),
            (
                json!([["modify", "nope", {"link": "br1"}]]),
                ErrorKind::NoEnt,
                "Cannot find NIC with identifier nope".to_string(),
            ),
            (
                json!([["modify", 0, {"mac": "auto"}]]),
                ErrorKind::Inval,
                "'auto' is not a valid MAC address when modifying an existing NIC".to_string(),
            ),
            (
                json!([["attach", -1, {}]]),
                ErrorKind::Inval,
                "Attach operation is not supported for NICs".to_string(),
            ),
            (
                json!([["add", -1, {"name": "12"}]]),
                ErrorKind::Inval,
                "Invalid name '12'. Purely numeric NIC names are not allowed".to_string(),
            ),
        ] {
            let (k, m) = prereq(c.run(nics(change)).0);
            assert_eq!((k, m.as_str()), (kind, want.as_str()));
        }
        assert_eq!(c.config().serial_no, serial);

        let r = success(c.run(nics(
            json!([["add", -1, {"ip": "192.0.2.50", "name": "eth1", "link": "br1"}]]),
        )));
        let i = instance(&c);
        assert_eq!(i.nics.len(), 2);
        let new = &i.nics[1];
        assert_eq!(new.name.as_deref(), Some("eth1"));
        assert_eq!(new.ip.as_deref(), Some("192.0.2.50"));
        assert_eq!(new.nicparams["link"], json!("br1"));
        assert!(
            new.mac.starts_with(&c.config().cluster.mac_prefix),
            "{}",
            new.mac
        );
        assert_ne!(new.mac, old_mac);
        assert_eq!(
            r,
            vec![json!([
                "nic.1",
                format!(
                    "add:mac={},ip=192.0.2.50,mode=bridged,link=br1,network=None",
                    new.mac
                )
            ])]
        );
        // The IP is taken now, unless conflicts are not checked; the
        // name too.
        let (k, m) = prereq(c.run(nics(json!([["add", 0, {"ip": "192.0.2.50"}]]))).0);
        assert_eq!(k, ErrorKind::NotUnique);
        assert_eq!(
            m,
            format!("IP address 192.0.2.50 already in use by instance {INST}")
        );
        let (k, m) = prereq(c.run(nics(json!([["add", 0, {"name": "eth1"}]]))).0);
        assert_eq!(
            (k, m.as_str()),
            (ErrorKind::NotUnique, "NIC name 'eth1' already used")
        );
        success(c.run(OpInstanceSetParams {
            conflicts_check: false,
            ..nics(json!([["add", 0, {"ip": "192.0.2.50", "name": "first"}]]))
        }));
        let i = instance(&c);
        assert_eq!(i.nics.len(), 3);
        assert_eq!(i.nics[0].name.as_deref(), Some("first"));
        assert_eq!(i.nics[1].mac, old_mac);

        // Modify by name; remove by name, by index and the last (-1).
        let r = success(c.run(nics(
            json!([["modify", "eth1", {"mac": "generate", "link": "br2", "ip": "none"}]]),
        )));
        let i = instance(&c);
        assert_eq!(i.nics[2].ip, None);
        assert_eq!(i.nics[2].nicparams["link"], json!("br2"));
        assert_ne!(i.nics[2].mac, new.mac);
        assert!(r.contains(&json!(["nic.mac/2", i.nics[2].mac])), "{r:?}");
        assert!(r.contains(&json!(["nic.link/2", "br2"])), "{r:?}");
        let r = success(c.run(nics(json!([["remove", "first", {}], ["remove", -1, {}]]))));
        assert_eq!(
            r,
            vec![json!(["nic/0", "remove"]), json!(["nic/1", "remove"])]
        );
        let i = instance(&c);
        assert_eq!(i.nics.len(), 1);
        assert_eq!(i.nics[0].mac, old_mac);
        // Ganeti's older two-element form.
        success(c.run(nics(json!([["add", {}]]))));
        assert_eq!(instance(&c).nics.len(), 2);
        // Config-only changes: no node was asked anything.
        assert!(c.rpc.calls_of(proto::BLOCKDEV_CREATE).is_empty());
    }

    #[test]
    fn hotplug_is_refused_and_running_instances_get_a_note() {
        let c = cluster("nic-hotplug");
        let (k, m) = prereq(
            c.run(OpInstanceSetParams {
                hotplug: true,
                ..nics(json!([["add", -1, {}]]))
            })
            .0,
        );
        assert_eq!(k, ErrorKind::State);
        assert_eq!(
            m,
            "Hotplug is not possible: hotplug is not supported by ganeti-rs"
        );
        c.set_admin_state(AdminState::Up);
        let (out, log) = c.run(OpInstanceSetParams {
            hotplug_if_possible: true,
            ..nics(json!([["add", -1, {}]]))
        });
        assert!(matches!(out, OpOutcome::Success(_)), "{out:?}");
        assert!(
            log.iter()
                .any(|l| l == "Modification will take place without hotplugging."),
            "{log:?}"
        );
        assert!(
            log.iter()
                .any(|l| l.contains("take effect at its next restart")),
            "{log:?}"
        );
        // Removing a disk needs the instance down.
        let (k, m) = prereq(c.run(disks(json!([["remove", 0, {}]]))).0);
        assert_eq!(k, ErrorKind::State);
        assert_eq!(
            m,
            format!("Instance '{INST}' is marked to be up, can't remove volume from a running instance without using hotplug")
        );
    }

    #[test]
    fn disk_add_modify_remove_renumbers() {
        let c = cluster("disk-mods");
        let old = instance(&c).disks[0].clone();
        let r = success(c.run(disks(json!([["add", -1, {"size": "1G", "name": "data"}]]))));
        assert_eq!(r, vec![json!(["disk/1", "add:size=1024,mode=rw"])]);
        let creates = c.rpc.calls_of(proto::BLOCKDEV_CREATE);
        assert_eq!(creates.len(), 1);
        assert_eq!(creates[0].0, NODE1);
        assert_eq!(creates[0].1["disk"]["iv_name"], "disk/1");
        assert_eq!(creates[0].1["disk"]["size_mib"], 1024);
        assert_eq!(creates[0].1["disk"]["dev_type"], "plain");
        assert_eq!(
            iv_names(&c),
            [
                ("disk/0".into(), None),
                ("disk/1".into(), Some("data".into()))
            ]
        );
        // A new first disk pushes the others down.
        success(c.run(disks(json!([["add", 0, {"size": 512, "mode": "ro"}]]))));
        assert_eq!(
            iv_names(&c),
            [
                ("disk/0".into(), None),
                ("disk/1".into(), None),
                ("disk/2".into(), Some("data".into()))
            ]
        );
        assert_eq!(instance(&c).disks[1], old);
        let cfg = c.config();
        let first = &cfg.disks[&instance(&c).disks[0]];
        assert_eq!((first.size, first.mode), (512, DiskMode::ReadOnly));
        match &first.logical_id {
            LogicalId::Pair(vg, lv) => {
                assert_eq!(vg, "xenvg");
                assert!(lv.ends_with(".disk0"), "{lv}");
            }
            other => panic!("{other:?}"),
        }
        // Modify mode and name by name; size is grow-disk's job.
        let r = success(c.run(disks(
            json!([["modify", "data", {"mode": "ro", "name": "logs"}]]),
        )));
        assert_eq!(
            r,
            vec![json!(["disk.mode/2", "ro"]), json!(["disk.name/2", "logs"])]
        );
        let (_, m) = prereq(c.run(disks(json!([["modify", 0, {"size": 2048}]]))).0);
        assert_eq!(m, "Disk size change not possible, use grow-disk");
        let (_, m) = prereq(c.run(disks(json!([["add", -1, {"mode": "rw"}]]))).0);
        assert_eq!(m, "Required disk parameter 'size' missing");
        // Remove the first: shut down, removed on the node, renumbered.
        c.rpc.clear();
        let r = success(c.run(disks(json!([["remove", 0, {}]]))));
        assert_eq!(r, vec![json!(["disk/0", "remove"])]);
        let procs: Vec<String> = c
            .rpc
            .calls()
            .into_iter()
            .map(|c| c.procedure)
            .filter(|p| p.starts_with("blockdev"))
            .collect();
        assert_eq!(procs, [proto::BLOCKDEV_SHUTDOWN, proto::BLOCKDEV_REMOVE]);
        assert_eq!(
            iv_names(&c),
            [
                ("disk/0".into(), None),
                ("disk/1".into(), Some("logs".into()))
            ]
        );
        assert_eq!(
            c.config().disks.len(),
            2,
            "the removed disk left the config"
        );
        crate::config::validate::validate(&c.config()).unwrap();
    }

    #[test]
    fn active_disks_get_the_new_one_assembled_and_removal_failures_warn() {
        let mut cfg = crate::config::test_support::generated(2, 1);
        let inst = cfg.instances.values_mut().next().unwrap();
        inst.admin_state = AdminState::Down;
        inst.disks_active = true;
        let c = TestCluster::with_config("disk-active", cfg);
        let (out, log) = c.run(disks(json!([["add", -1, {"size": 64}]])));
        assert!(matches!(out, OpOutcome::Success(_)), "{out:?} {log:?}");
        let assembled = c.rpc.calls_of(proto::BLOCKDEV_ASSEMBLE);
        assert_eq!(assembled.len(), 1);
        assert_eq!(assembled[0].1["disk"]["iv_name"], "disk/1");
        // A node that cannot remove the disk: reported, and the disk
        // still leaves the config (Ganeti's RemoveDisks).
        c.rpc
            .answer(proto::BLOCKDEV_REMOVE, NODE1, Err("device busy".into()));
        let (out, log) = c.run(disks(json!([["remove", 1, {}]])));
        assert!(matches!(out, OpOutcome::Success(_)), "{out:?}");
        assert!(
            log.iter()
                .any(|l| l.starts_with("WARNING: Could not remove disk disk/1")
                    && l.ends_with("device busy")),
            "{log:?}"
        );
        assert_eq!(instance(&c).disks.len(), 1);
    }

    #[test]
    fn failed_disk_creation_changes_nothing() {
        let c = cluster("disk-fail");
        let before = c.config();
        c.rpc
            .answer(proto::BLOCKDEV_CREATE, NODE1, Err("no space left".into()));
        let m = exec_err(c.run(disks(json!([["add", -1, {"size": 128}]]))).0);
        assert!(
            m.starts_with(&format!(
                "Can't create block device disk/1 on node {NODE1} for instance {INST}"
            )),
            "{m}"
        );
        assert!(m.ends_with("no space left"), "{m}");
        assert_eq!(c.config().disks, before.disks);
        assert_eq!(
            instance(&c).disks,
            before.instance_by_name(INST).unwrap().1.disks
        );
    }

    #[test]
    fn file_disks_join_the_instance_directory() {
        let mut cfg = crate::config::test_support::generated(2, 1);
        cfg.cluster.enabled_disk_templates.push("file".into());
        cfg.cluster.file_storage_dir = "/srv/ganeti/file-storage".into();
        let inst = cfg.instances.values_mut().next().unwrap();
        inst.admin_state = AdminState::Down;
        let disk = cfg.disks.values_mut().next().unwrap();
        disk.dev_type = "file".into();
        disk.logical_id = LogicalId::Pair(
            "loop".into(),
            "/srv/ganeti/file-storage/old-name/abc.file.disk0".into(),
        );
        let c = TestCluster::with_config("disk-file", cfg);
        success(c.run(disks(json!([["add", -1, {"size": 64}]]))));
        let cfg = c.config();
        let new = &cfg.disks[&instance(&c).disks[1]];
        assert_eq!(new.dev_type, "file");
        match &new.logical_id {
            LogicalId::Pair(driver, path) => {
                assert_eq!(driver, "loop");
                assert!(
                    path.starts_with("/srv/ganeti/file-storage/old-name/")
                        && path.ends_with(".file.disk1"),
                    "{path}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(new.nodes, vec![instance(&c).primary_node]);
        // Diskless instances need a disk type; ext needs a provider.
        let (_, m) = prereq(
            c.run(disks(json!([["add", -1, {"size": 64, "provider": "x"}]])))
                .0,
        );
        assert_eq!(
            m,
            "The 'provider' option is only valid for the ext disk template, not file"
        );
    }
}
