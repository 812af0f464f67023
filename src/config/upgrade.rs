//! Upgrades of `config.data` documents written by Ganeti 2.7 … 2.16 to the
//! Ganeti 3.0 schema (format version 3000000).
//!
//! Everything here works on an untyped [`serde_json::Value`]: an old document
//! does not fit the 3.0 types in [`crate::config::objects`], so it is reshaped
//! first and parsed afterwards. The functions do no I/O, read no clock and
//! draw no random numbers, so the same input always gives the same output;
//! `cfgupgrade` ([`crate::cli::cfgupgrade`]) owns the file handling.
//!
//! There is one function per release, `upgrade_vA_B_to_vC_D`, holding the
//! format changes that release brought. Ganeti's own `cfgupgrade` applies
//! *all* of its transformations to every 2.x file, whatever its version says
//! (tools/cfgupgrade.py, `UpgradeAll`), and fixtures written by real clusters
//! do not always match their version number; so [`upgrade`] runs every step
//! on every 2.x document, and each step is written as "ensure state X": it
//! changes nothing that is already in the newer shape. The last step,
//! [`upgrade_v2_16_to_v3_0`], also fills the defaults that Ganeti 3.0 fills
//! when it loads a configuration (`objects.py`, the `UpgradeConfig` methods,
//! and `config/__init__.py`, `_UpgradeConfig`), so the result carries every
//! key the 3.0 loader would have set.
//!
//! Nothing may be lost on the way: [`upgrade`] compares an [`Inventory`] of
//! nodes, instances, disks, NICs, tags and parameters before and after, and
//! fails rather than return a document that dropped any of them.

use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashMap, HashSet};

/// The configuration format version of Ganeti 3.0, which this crate speaks.
pub const CONFIG_VERSION: u64 = 3_000_000;
/// The oldest format version [`upgrade`] accepts (Ganeti 2.7).
pub const OLDEST_SUPPORTED_VERSION: u64 = 2_070_000;
/// The newest 2.x format version [`upgrade`] accepts (Ganeti 2.16).
pub const LAST_V2_VERSION: u64 = 2_160_000;
/// Prefix of log lines that report something the administrator should check.
pub const WARNING_PREFIX: &str = "WARNING: ";

/// Why a document could not be upgraded or failed verification.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// The document has no top-level `version`.
    #[error("cannot determine the configuration version: no \"version\" field")]
    MissingVersion,
    /// `version` is not a non-negative integer.
    #[error("cannot determine the configuration version: \"version\" is {found}, not an integer")]
    BadVersion {
        /// The JSON text of the value found.
        found: String,
    },
    /// The version predates 2.7.
    #[error(
        "configuration version {found} ({}) is too old; this tool upgrades {} to {} \
         (use Ganeti 2.x's cfgupgrade first)",
        config_version_string(*found),
        supported_range_start(),
        supported_range_end()
    )]
    TooOld {
        /// The version number found.
        found: u64,
    },
    /// The version is newer than 3.0.
    #[error(
        "configuration version {found} ({}) is newer than this tool knows; it upgrades {} to {}",
        config_version_string(*found),
        supported_range_start(),
        supported_range_end()
    )]
    TooNew {
        /// The version number found.
        found: u64,
    },
    /// A 2.x version past 2.16 (2.17 was only ever a beta).
    #[error(
        "configuration version {found} ({}) is not supported; this tool upgrades {} to {}",
        config_version_string(*found),
        supported_range_start(),
        supported_range_end()
    )]
    Unsupported {
        /// The version number found.
        found: u64,
    },
    /// A part of the document has the wrong JSON type or content.
    #[error("malformed configuration: {what}: {problem}")]
    Malformed {
        /// Which object, e.g. `instance "web1"` or `cluster`.
        what: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The upgrade would have dropped data; nothing is returned.
    #[error("the upgrade would lose data, refusing: {}", lost.join("; "))]
    LostData {
        /// The inventory items missing after the upgrade.
        lost: Vec<String>,
    },
    /// The upgraded document failed the structural checks.
    #[error("the upgraded configuration is inconsistent: {}", problems.join("; "))]
    Verify {
        /// One line per problem.
        problems: Vec<String>,
    },
}

fn supported_range_start() -> String {
    format!(
        "{} ({OLDEST_SUPPORTED_VERSION})",
        config_version_string(OLDEST_SUPPORTED_VERSION)
    )
}

fn supported_range_end() -> String {
    format!(
        "{} ({CONFIG_VERSION})",
        config_version_string(CONFIG_VERSION)
    )
}

/// Splits Ganeti's encoded version (`major*1000000 + minor*10000 + revision`)
/// into its three parts.
pub fn split_version(v: u64) -> (u64, u64, u64) {
    (v / 1_000_000, (v / 10_000) % 100, v % 10_000)
}

/// Builds Ganeti's encoded version from its parts.
pub fn build_version(major: u64, minor: u64, revision: u64) -> u64 {
    major * 1_000_000 + minor * 10_000 + revision
}

/// The dotted form of an encoded version: `2160000` → `"2.16.0"`.
pub fn config_version_string(v: u64) -> String {
    let (major, minor, revision) = split_version(v);
    format!("{major}.{minor}.{revision}")
}

/// Reads and range-checks the `version` of a document.
///
/// Accepted are 2.7.x … 2.16.x and exactly 3.0.0.
pub fn config_version(cfg: &Value) -> Result<u64, UpgradeError> {
    let raw = cfg.get("version").ok_or(UpgradeError::MissingVersion)?;
    let found = raw.as_u64().ok_or_else(|| UpgradeError::BadVersion {
        found: raw.to_string(),
    })?;
    let (major, minor, _) = split_version(found);
    if found > CONFIG_VERSION {
        return Err(UpgradeError::TooNew { found });
    }
    if found < OLDEST_SUPPORTED_VERSION {
        return Err(UpgradeError::TooOld { found });
    }
    if found == CONFIG_VERSION || (major == 2 && minor <= 16) {
        Ok(found)
    } else {
        Err(UpgradeError::Unsupported { found })
    }
}

/// One release's format changes.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// The version the step starts from.
    pub from: u64,
    /// The version the step produces.
    pub to: u64,
    /// The transformation; it appends what it did to the log.
    pub apply: fn(&mut Value, &mut Vec<String>) -> Result<(), UpgradeError>,
}

/// Every step, oldest first.
pub const STEPS: [Step; 10] = [
    Step {
        from: 2_070_000,
        to: 2_080_000,
        apply: upgrade_v2_7_to_v2_8,
    },
    Step {
        from: 2_080_000,
        to: 2_090_000,
        apply: upgrade_v2_8_to_v2_9,
    },
    Step {
        from: 2_090_000,
        to: 2_100_000,
        apply: upgrade_v2_9_to_v2_10,
    },
    Step {
        from: 2_100_000,
        to: 2_110_000,
        apply: upgrade_v2_10_to_v2_11,
    },
    Step {
        from: 2_110_000,
        to: 2_120_000,
        apply: upgrade_v2_11_to_v2_12,
    },
    Step {
        from: 2_120_000,
        to: 2_130_000,
        apply: upgrade_v2_12_to_v2_13,
    },
    Step {
        from: 2_130_000,
        to: 2_140_000,
        apply: upgrade_v2_13_to_v2_14,
    },
    Step {
        from: 2_140_000,
        to: 2_150_000,
        apply: upgrade_v2_14_to_v2_15,
    },
    Step {
        from: 2_150_000,
        to: 2_160_000,
        apply: upgrade_v2_15_to_v2_16,
    },
    Step {
        from: 2_160_000,
        to: CONFIG_VERSION,
        apply: upgrade_v2_16_to_v3_0,
    },
];

/// Upgrades a document of any supported version to 3.0.
///
/// Returns the new document and a log of what was done (lines starting with
/// [`WARNING_PREFIX`] deserve the administrator's attention). A 3.0 document
/// comes back unchanged. Fails on unsupported versions, on documents too
/// malformed to reshape, and when the result would miss any item of the
/// input's [`Inventory`].
pub fn upgrade(mut cfg: Value) -> Result<(Value, Vec<String>), UpgradeError> {
    let version = config_version(&cfg)?;
    let mut log = vec![format!(
        "Found configuration version {version} ({})",
        config_version_string(version)
    )];
    if cfg
        .get("cluster")
        .and_then(|c| c.get("config_version"))
        .is_some()
    {
        return Err(malformed(
            "cluster",
            "found \"config_version\" inside the cluster object",
        ));
    }
    if version == CONFIG_VERSION {
        log.push("No changes necessary".to_string());
        return Ok((cfg, log));
    }
    let (_, _, revision) = split_version(version);
    if revision != 0 {
        log.push(format!(
            "{WARNING_PREFIX}configuration revision is {revision}, not 0"
        ));
    }
    let before = inventory(&cfg);
    for step in &STEPS {
        if step.to > version {
            log.push(format!(
                "Upgrading from {} to {}",
                config_version_string(step.from.max(version)),
                config_version_string(step.to)
            ));
        }
        (step.apply)(&mut cfg, &mut log)?;
    }
    let lost = before.missing_from(&inventory(&cfg));
    if !lost.is_empty() {
        return Err(UpgradeError::LostData { lost });
    }
    Ok((cfg, log))
}

// ---------------------------------------------------------------------------
// The steps
// ---------------------------------------------------------------------------

/// 2.7 → 2.8: instance policies hold a list of min/max pairs (`minmax`)
/// instead of single `min` and `max` specs, and groups no longer carry a
/// `std` spec; disks and NICs get UUIDs; the cluster lists its enabled disk
/// templates; NICs name their network by UUID.
pub fn upgrade_v2_7_to_v2_8(cfg: &mut Value, log: &mut Vec<String>) -> Result<(), UpgradeError> {
    ensure_top_map(cfg, "networks")?;
    {
        let cluster = obj_mut(cfg, "cluster", "the configuration")?;
        if let Some(ipolicy) = cluster.get_mut("ipolicy").and_then(Value::as_object_mut) {
            let defaults = ipolicy_defaults();
            upgrade_ipolicy_specs(ipolicy, &defaults, PolicyOwner::Cluster);
        }
    }
    let cluster_ipolicy = cfg
        .get("cluster")
        .and_then(|c| c.get("ipolicy"))
        .filter(|p| !p.is_null())
        .cloned();
    for (key, group) in top_map_mut(cfg, "nodegroups")?.iter_mut() {
        let group = as_obj_mut(group, || format!("node group {key:?}"))?;
        let Some(ipolicy) = group.get_mut("ipolicy").and_then(Value::as_object_mut) else {
            continue;
        };
        if ipolicy.is_empty() {
            continue;
        }
        let Some(defaults) = &cluster_ipolicy else {
            return Err(malformed(
                format!("node group {key:?}"),
                "defines an instance policy but the cluster has none",
            ));
        };
        upgrade_ipolicy_specs(ipolicy, defaults, PolicyOwner::Group);
    }

    let mut ids = UuidGen::new(cfg);
    let network_uuids: HashMap<String, String> = top_map(cfg, "networks")?
        .values()
        .filter_map(|n| {
            Some((
                str_of(n, "name")?.to_string(),
                str_of(n, "uuid")?.to_string(),
            ))
        })
        .collect();
    for (key, inst) in top_map_mut(cfg, "instances")?.iter_mut() {
        let what = format!("instance {key:?}");
        let inst = as_obj_mut(inst, || what.clone())?;
        let owner = inst
            .get("uuid")
            .and_then(Value::as_str)
            .unwrap_or(key)
            .to_string();
        if let Some(nics) = inst.get_mut("nics").and_then(Value::as_array_mut) {
            for (idx, nic) in nics.iter_mut().enumerate() {
                let nic = as_obj_mut(nic, || format!("{what}, NIC {idx}"))?;
                if !has_str(nic, "uuid") {
                    nic.insert(
                        "uuid".into(),
                        ids.fresh(&[&owner, "nic", &idx.to_string()]).into(),
                    );
                }
                if let Some(name) = nic.get("network").and_then(Value::as_str) {
                    if let Some(uuid) = network_uuids.get(name) {
                        log.push(format!(
                            "{what}: NIC {idx} names network {name:?}, using its UUID {uuid}"
                        ));
                        nic.insert("network".into(), uuid.clone().into());
                    }
                }
            }
        }
        if let Some(disks) = inst.get_mut("disks").and_then(Value::as_array_mut) {
            for (idx, disk) in disks.iter_mut().enumerate() {
                if disk.is_object() {
                    assign_disk_uuids(disk, &mut ids, &[&owner, "disk", &idx.to_string()]);
                }
            }
        }
    }
    infer_enabled_disk_templates(cfg, log)?;
    set_version(cfg, 2_080_000);
    Ok(())
}

/// 2.8 → 2.9: nodes and instances are keyed by UUID instead of name, and
/// every reference to a node (master, primary node, DRBD ends) uses its UUID;
/// the logical disk types `lvm` and `drbd8` become the disk templates `plain`
/// and `drbd`.
pub fn upgrade_v2_8_to_v2_9(cfg: &mut Value, log: &mut Vec<String>) -> Result<(), UpgradeError> {
    let mut ids = UuidGen::new(cfg);
    for_each_disk(cfg, &mut |disk| {
        if let Some(new) = disk
            .get("dev_type")
            .and_then(Value::as_str)
            .and_then(legacy_dev_type)
        {
            disk.insert("dev_type".into(), new.into());
        }
    })?;

    // Nodes by UUID.
    let mut name_to_uuid: HashMap<String, String> = HashMap::new();
    let nodes = std::mem::take(top_map_mut(cfg, "nodes")?);
    let mut rekeyed = Map::new();
    for (key, mut node) in nodes {
        let obj = as_obj_mut(&mut node, || format!("node {key:?}"))?;
        let name = obj
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(&key)
            .to_string();
        if !has_str(obj, "uuid") {
            obj.insert("uuid".into(), ids.fresh(&["node", &name]).into());
            log.push(format!("node {name:?}: assigned a UUID"));
        }
        let uuid = str_of_obj(obj, "uuid").unwrap_or_default().to_string();
        if key != uuid {
            name_to_uuid.insert(key.clone(), uuid.clone());
        }
        name_to_uuid.insert(name, uuid.clone());
        rekeyed.insert(uuid, node);
    }
    let node_uuids: HashSet<String> = rekeyed.keys().cloned().collect();
    cfg["nodes"] = Value::Object(rekeyed);
    let to_uuid = |value: &mut Value, what: &str, log: &mut Vec<String>| {
        let Some(current) = value.as_str() else {
            return;
        };
        if node_uuids.contains(current) {
            return;
        }
        match name_to_uuid.get(current) {
            Some(uuid) => *value = uuid.clone().into(),
            None => log.push(format!(
                "{WARNING_PREFIX}{what}: node {current:?} is not in the configuration; left as is"
            )),
        }
    };
    if let Some(master) = obj_mut(cfg, "cluster", "the configuration")?.get_mut("master_node") {
        to_uuid(master, "cluster master", log);
    }
    for (key, inst) in top_map_mut(cfg, "instances")?.iter_mut() {
        if let Some(primary) = inst.get_mut("primary_node") {
            to_uuid(primary, &format!("instance {key:?}"), log);
        }
    }
    let mut drbd_log = Vec::new();
    for_each_disk(cfg, &mut |disk| {
        if !is_drbd(disk) {
            return;
        }
        if let Some(ends) = disk.get_mut("logical_id").and_then(Value::as_array_mut) {
            for end in ends.iter_mut().take(2) {
                to_uuid(end, "DRBD disk", &mut drbd_log);
            }
        }
    })?;
    log.append(&mut drbd_log);

    // Instances by UUID.
    let instances = std::mem::take(top_map_mut(cfg, "instances")?);
    let mut rekeyed = Map::new();
    for (key, mut inst) in instances {
        let obj = as_obj_mut(&mut inst, || format!("instance {key:?}"))?;
        let name = obj
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(&key)
            .to_string();
        if !has_str(obj, "uuid") {
            obj.insert("uuid".into(), ids.fresh(&["instance", &name]).into());
            log.push(format!("instance {name:?}: assigned a UUID"));
        }
        let uuid = str_of_obj(obj, "uuid").unwrap_or_default().to_string();
        rekeyed.insert(uuid, inst);
    }
    cfg["instances"] = Value::Object(rekeyed);
    set_version(cfg, 2_090_000);
    Ok(())
}

/// 2.9 → 2.10: disks no longer store a `physical_id` (it is computed when
/// needed), and each disk's `iv_name` is `disk/<index>`.
pub fn upgrade_v2_9_to_v2_10(cfg: &mut Value, log: &mut Vec<String>) -> Result<(), UpgradeError> {
    for_each_disk(cfg, &mut |disk| {
        disk.remove("physical_id");
    })?;
    // The index is only known from the instance's list.
    let mut renames = Vec::new();
    {
        let (instances, mut disks) = instances_and_disks_mut(cfg)?;
        for (key, inst) in instances.iter_mut() {
            let name = str_of(inst, "name").unwrap_or(key).to_string();
            let Some(list) = inst.get_mut("disks").and_then(Value::as_array_mut) else {
                continue;
            };
            for (idx, entry) in list.iter_mut().enumerate() {
                let disk = match entry {
                    Value::Object(d) => Some(d),
                    Value::String(uuid) => disks
                        .as_mut()
                        .and_then(|m| m.get_mut(uuid.as_str()))
                        .and_then(Value::as_object_mut),
                    _ => None,
                };
                let Some(disk) = disk else { continue };
                let expected = format!("disk/{idx}");
                let current = str_of_obj(disk, "iv_name").unwrap_or("").to_string();
                if current != expected {
                    renames.push(format!(
                        "{WARNING_PREFIX}instance {name:?}, disk {idx}: iv_name {current:?} \
                         changed to {expected:?}"
                    ));
                    disk.insert("iv_name".into(), expected.into());
                }
            }
        }
    }
    log.append(&mut renames);
    set_version(cfg, 2_100_000);
    Ok(())
}

/// 2.10 → 2.11: the cluster keeps master candidates' certificate digests,
/// default iallocator parameters and the user-shutdown switch; instances
/// record who set their admin state.
pub fn upgrade_v2_10_to_v2_11(cfg: &mut Value, _log: &mut Vec<String>) -> Result<(), UpgradeError> {
    let cluster = obj_mut(cfg, "cluster", "the configuration")?;
    set_default(cluster, "candidate_certs", json!({}));
    if !is_truthy(cluster.get("default_iallocator_params")) {
        cluster.insert("default_iallocator_params".into(), json!({}));
    }
    set_default(cluster, "enabled_user_shutdown", json!(false));
    for (key, inst) in top_map_mut(cfg, "instances")?.iter_mut() {
        let inst = as_obj_mut(inst, || format!("instance {key:?}"))?;
        set_default(inst, "admin_state_source", json!("admin"));
    }
    set_version(cfg, 2_110_000);
    Ok(())
}

/// 2.11 → 2.12: disks become top-level objects in a `disks` map keyed by
/// UUID, and an instance's `disks` becomes the list of its disks' UUIDs; the
/// cluster gains the install and zeroing images, the instance communication
/// network and the list of compression tools.
pub fn upgrade_v2_11_to_v2_12(cfg: &mut Value, log: &mut Vec<String>) -> Result<(), UpgradeError> {
    ensure_top_map(cfg, "disks")?;
    let mut ids = UuidGen::new(cfg);
    let mut moved = Vec::new();
    let mut missing_spindles = false;
    for (key, inst) in top_map_mut(cfg, "instances")?.iter_mut() {
        let what = format!("instance {key:?}");
        let inst = as_obj_mut(inst, || what.clone())?;
        let owner = str_of_obj(inst, "uuid").unwrap_or(key).to_string();
        let ctime = match inst.get("ctime") {
            Some(t) if t.is_number() => t.clone(),
            _ => json!(0),
        };
        let list = match inst.get_mut("disks") {
            Some(Value::Array(list)) => list,
            Some(Value::Null) | None => {
                inst.insert("disks".into(), json!([]));
                continue;
            }
            Some(_) => return Err(malformed(what, "\"disks\" is not a list")),
        };
        for (idx, entry) in list.iter_mut().enumerate() {
            if entry.is_string() {
                continue;
            }
            if !entry.is_object() {
                return Err(malformed(&what, format!("disk {idx} is not an object")));
            }
            assign_disk_uuids(entry, &mut ids, &[&owner, "disk", &idx.to_string()]);
            let mut disk = std::mem::take(entry);
            let obj = disk.as_object_mut().expect("checked to be an object above");
            missing_spindles |= !obj.contains_key("spindles");
            obj.insert("serial_no".into(), json!(1));
            obj.insert("ctime".into(), ctime.clone());
            obj.insert("mtime".into(), ctime.clone());
            let uuid = str_of_obj(obj, "uuid").unwrap_or_default().to_string();
            *entry = uuid.clone().into();
            moved.push((uuid, disk));
        }
    }
    if !moved.is_empty() {
        log.push(format!(
            "Moved {} instance disks into the top-level disks map",
            moved.len()
        ));
    }
    let disks = top_map_mut(cfg, "disks")?;
    for (uuid, disk) in moved {
        disks.insert(uuid, disk);
    }
    if missing_spindles && exclusive_storage_anywhere(cfg) {
        log.push(format!(
            "{WARNING_PREFIX}some disks may need their spindles set; check with \
             'gnt-cluster verify' and fix with 'gnt-cluster repair-disk-sizes'"
        ));
    }
    let cluster = obj_mut(cfg, "cluster", "the configuration")?;
    set_default(cluster, "install_image", json!(""));
    set_default(cluster, "zeroing_image", json!(""));
    set_default(cluster, "instance_communication_network", json!(""));
    set_default(cluster, "compression_tools", compression_tools_default());
    set_version(cfg, 2_120_000);
    Ok(())
}

/// 2.12 → 2.13: job filter rules (`filters`) and the monitoring data
/// collectors' settings.
pub fn upgrade_v2_12_to_v2_13(cfg: &mut Value, _log: &mut Vec<String>) -> Result<(), UpgradeError> {
    ensure_top_map(cfg, "filters")?;
    let cluster = obj_mut(cfg, "cluster", "the configuration")?;
    set_default(cluster, "data_collectors", json!({}));
    let collectors = cluster
        .get_mut("data_collectors")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| malformed("cluster", "\"data_collectors\" is not an object"))?;
    for name in DATA_COLLECTOR_NAMES {
        if !collectors.contains_key(*name) {
            collectors.insert(
                (*name).to_string(),
                json!({"active": true, "interval": DATA_COLLECTOR_INTERVAL_USEC}),
            );
        }
    }
    set_version(cfg, 2_130_000);
    Ok(())
}

/// 2.13 → 2.14: job limits, the Gluster storage directory and private OS
/// parameters on the cluster; instances record whether their disks are
/// active and hold private OS parameters, and lose `disk_template` (it
/// follows from their disks); every disk lists the nodes it lives on.
pub fn upgrade_v2_13_to_v2_14(cfg: &mut Value, _log: &mut Vec<String>) -> Result<(), UpgradeError> {
    let cluster = obj_mut(cfg, "cluster", "the configuration")?;
    set_default(cluster, "max_running_jobs", json!(MAX_RUNNING_JOBS_DEFAULT));
    set_default(cluster, "max_tracked_jobs", json!(MAX_TRACKED_JOBS_DEFAULT));
    set_default(cluster, "gluster_storage_dir", json!(""));
    set_default(cluster, "osparams_private_cluster", json!({}));
    for (key, inst) in top_map_mut(cfg, "instances")?.iter_mut() {
        let inst = as_obj_mut(inst, || format!("instance {key:?}"))?;
        set_default(inst, "osparams_private", json!({}));
        let up = inst.get("admin_state").and_then(Value::as_str) == Some("up");
        set_default(inst, "disks_active", json!(up));
        inst.remove("disk_template");
    }
    fill_disk_nodes(cfg)?;
    set_version(cfg, 2_140_000);
    Ok(())
}

/// 2.14 → 2.15: no format change.
pub fn upgrade_v2_14_to_v2_15(cfg: &mut Value, _log: &mut Vec<String>) -> Result<(), UpgradeError> {
    set_version(cfg, 2_150_000);
    Ok(())
}

/// 2.15 → 2.16: the cluster records its SSH key type and size; a cluster
/// from before 2.16 has DSA keys of 1024 bits.
pub fn upgrade_v2_15_to_v2_16(cfg: &mut Value, _log: &mut Vec<String>) -> Result<(), UpgradeError> {
    let cluster = obj_mut(cfg, "cluster", "the configuration")?;
    set_default(cluster, "ssh_key_type", json!("dsa"));
    set_default(cluster, "ssh_key_bits", json!(1024));
    set_version(cfg, 2_160_000);
    Ok(())
}

/// 2.16 → 3.0: fills every default Ganeti 3.0 fills when it loads a
/// configuration, drops keys 3.0 no longer stores (`disk_template`,
/// `admin_up`, `physical_id`, `default_bridge`, `default_hypervisor`, a
/// network's `network_type` and `family`, global parameters set per object),
/// gives every object that needs one a UUID, and sets version 3000000.
pub fn upgrade_v2_16_to_v3_0(cfg: &mut Value, log: &mut Vec<String>) -> Result<(), UpgradeError> {
    for key in [
        "nodes",
        "instances",
        "nodegroups",
        "networks",
        "disks",
        "filters",
    ] {
        ensure_top_map(cfg, key)?;
    }
    let doc_time = match cfg.get("mtime") {
        Some(t) if t.is_number() => t.clone(),
        _ => json!(0),
    };
    fill_cluster(obj_mut(cfg, "cluster", "the configuration")?, log)?;
    for (key, node) in top_map_mut(cfg, "nodes")?.iter_mut() {
        fill_node(as_obj_mut(node, || format!("node {key:?}"))?, log);
    }
    for (key, inst) in top_map_mut(cfg, "instances")?.iter_mut() {
        fill_instance(as_obj_mut(inst, || format!("instance {key:?}"))?);
    }
    infer_enabled_disk_templates(cfg, log)?;
    let enabled: Vec<String> = cfg["cluster"]
        .get("enabled_disk_templates")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if let Some(ipolicy) = cfg["cluster"]
        .get_mut("ipolicy")
        .and_then(Value::as_object_mut)
    {
        restrict_policy_templates(ipolicy, &enabled);
    }
    for (key, group) in top_map_mut(cfg, "nodegroups")?.iter_mut() {
        let group = as_obj_mut(group, || format!("node group {key:?}"))?;
        fill_group(group, &doc_time);
        if let Some(ipolicy) = group.get_mut("ipolicy").and_then(Value::as_object_mut) {
            restrict_policy_templates(ipolicy, &enabled);
        }
    }
    {
        let cluster = obj_mut(cfg, "cluster", "the configuration")?;
        if cluster
            .get("drbd_usermode_helper")
            .is_none_or(Value::is_null)
            && enabled.iter().any(|t| t == "drbd")
        {
            cluster.insert("drbd_usermode_helper".into(), json!(DEFAULT_DRBD_HELPER));
        }
    }
    for (key, net) in top_map_mut(cfg, "networks")?.iter_mut() {
        let net = as_obj_mut(net, || format!("network {key:?}"))?;
        net.remove("network_type");
        net.remove("family");
    }
    for (key, disk) in top_map_mut(cfg, "disks")?.iter_mut() {
        fill_disk(disk, &doc_time, || format!("disk {key:?}"))?;
    }
    ensure_default_group(cfg, log)?;
    assign_all_uuids(cfg, log)?;
    set_version(cfg, CONFIG_VERSION);
    Ok(())
}

// ---------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------

/// Structural checks on an upgraded (3.0) document: version, object keys
/// equal to UUIDs, unique names, and every reference (master, primary node,
/// disks, DRBD ends, node groups) pointing at an existing object.
///
/// This is cheaper and looser than parsing into the typed configuration and
/// running `config::validate`, which `cfgupgrade` adds on top.
pub fn verify_upgraded(cfg: &Value) -> Result<(), UpgradeError> {
    let mut problems = Vec::new();
    if cfg.get("version").and_then(Value::as_u64) != Some(CONFIG_VERSION) {
        problems.push(format!(
            "version is {}, expected {CONFIG_VERSION}",
            cfg.get("version").unwrap_or(&Value::Null)
        ));
    }
    let empty = Map::new();
    let section = |key: &str, problems: &mut Vec<String>| -> Map<String, Value> {
        match cfg.get(key) {
            Some(Value::Object(m)) => m.clone(),
            _ => {
                problems.push(format!("\"{key}\" is missing or not an object"));
                empty.clone()
            }
        }
    };
    let nodes = section("nodes", &mut problems);
    let instances = section("instances", &mut problems);
    let groups = section("nodegroups", &mut problems);
    let networks = section("networks", &mut problems);
    let disks = section("disks", &mut problems);
    section("filters", &mut problems);

    for (kind, map) in [
        ("node", &nodes),
        ("instance", &instances),
        ("node group", &groups),
        ("network", &networks),
    ] {
        let mut seen = HashSet::new();
        for (key, obj) in map.iter() {
            if str_of(obj, "uuid") != Some(key.as_str()) {
                problems.push(format!("{kind} {key:?} is not keyed by its UUID"));
            }
            match str_of(obj, "name") {
                Some(name) if !seen.insert(name.to_string()) => {
                    problems.push(format!("{kind} name {name:?} is used twice"));
                }
                Some(_) => {}
                None => problems.push(format!("{kind} {key:?} has no name")),
            }
        }
    }
    for (key, disk) in &disks {
        if str_of(disk, "uuid") != Some(key.as_str()) {
            problems.push(format!("disk {key:?} is not keyed by its UUID"));
        }
    }
    match cfg
        .get("cluster")
        .and_then(|c| c.get("master_node"))
        .and_then(Value::as_str)
    {
        Some(m) if nodes.contains_key(m) => {}
        other => problems.push(format!("cluster master node {other:?} is not a node")),
    }
    for (key, node) in &nodes {
        match str_of(node, "group") {
            Some(g) if groups.contains_key(g) => {}
            other => problems.push(format!("node {key:?}: group {other:?} does not exist")),
        }
    }
    let mut disk_owner: HashMap<&str, &str> = HashMap::new();
    for (key, inst) in &instances {
        match str_of(inst, "primary_node") {
            Some(p) if nodes.contains_key(p) => {}
            other => problems.push(format!(
                "instance {key:?}: primary node {other:?} is not a node"
            )),
        }
        let Some(list) = inst.get("disks").and_then(Value::as_array) else {
            problems.push(format!("instance {key:?}: \"disks\" is not a list"));
            continue;
        };
        for entry in list {
            let Some(uuid) = entry.as_str() else {
                problems.push(format!("instance {key:?}: a disk is not a UUID"));
                continue;
            };
            if !disks.contains_key(uuid) {
                problems.push(format!("instance {key:?}: disk {uuid} does not exist"));
            }
            if let Some(other) = disk_owner.insert(uuid, key.as_str()) {
                problems.push(format!(
                    "disk {uuid} belongs to both instance {other:?} and {key:?}"
                ));
            }
        }
    }
    for (key, disk) in &disks {
        let mut bad = Vec::new();
        visit_disk(disk, &mut |d| {
            if !is_drbd_value(d) {
                return;
            }
            if let Some(ends) = d.get("logical_id").and_then(Value::as_array) {
                for end in ends.iter().take(2) {
                    if !end.as_str().is_some_and(|n| nodes.contains_key(n)) {
                        bad.push(format!("disk {key:?}: DRBD end {end} is not a node"));
                    }
                }
            }
        });
        problems.append(&mut bad);
    }
    if problems.is_empty() {
        // The structure holds; now the strict 3.0 schema and every
        // cross-object rule the config writer enforces.
        problems.extend(schema_problems(cfg));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(UpgradeError::Verify { problems })
    }
}

/// Parses `cfg` with the 3.0 object types and runs [`crate::config::validate`].
fn schema_problems(cfg: &Value) -> Vec<String> {
    let bytes = match serde_json::to_vec(cfg) {
        Ok(b) => b,
        Err(e) => return vec![format!("cannot serialise the upgraded configuration: {e}")],
    };
    let source = std::path::Path::new("upgraded config.data");
    match crate::config::ConfigData::from_json(&bytes, source) {
        Err(e) => vec![crate::error::chain(&e)],
        Ok(data) => match crate::config::validate::validate(&data) {
            Ok(()) => Vec::new(),
            Err(errors) => errors.to_string().lines().map(str::to_string).collect(),
        },
    }
}

// ---------------------------------------------------------------------------
// Inventory
// ---------------------------------------------------------------------------

/// Everything an upgrade must keep, as a set of readable facts such as
/// `instance "web1": nic 0 mac=aa:00:00:00:00:01`.
///
/// Objects are named by name (not key), node references are resolved to
/// node names, and the renames Ganeti's upgrade does on purpose (`memory` →
/// `maxmem`/`minmem`, global parameters dropped from nodes and instances) are
/// applied before recording, so an old and a new document of the same
/// cluster give comparable facts. New documents have more facts (filled
/// defaults, new UUIDs); an upgrade is lossless when the old facts are a
/// subset of the new ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// The facts, sorted.
    pub facts: BTreeSet<String>,
}

impl Inventory {
    /// The facts of `self` that `newer` lacks.
    pub fn missing_from(&self, newer: &Inventory) -> Vec<String> {
        self.facts.difference(&newer.facts).cloned().collect()
    }
}

/// Records the inventory of a document of any supported version.
pub fn inventory(cfg: &Value) -> Inventory {
    let mut facts = BTreeSet::new();
    let empty = Map::new();
    let map = |key: &str| cfg.get(key).and_then(Value::as_object).unwrap_or(&empty);
    let node_name = |reference: &str| -> String {
        let nodes = map("nodes");
        nodes
            .get(reference)
            .or_else(|| {
                nodes
                    .values()
                    .find(|n| str_of(n, "uuid") == Some(reference))
            })
            .and_then(|n| str_of(n, "name"))
            .unwrap_or(reference)
            .to_string()
    };
    let network_name = |reference: &str| -> String {
        map("networks")
            .values()
            .find(|n| str_of(n, "uuid") == Some(reference))
            .and_then(|n| str_of(n, "name"))
            .unwrap_or(reference)
            .to_string()
    };
    let name_of = |key: &str, obj: &Value| str_of(obj, "name").unwrap_or(key).to_string();

    if let Some(cluster) = cfg.get("cluster") {
        let who = "cluster";
        tags(&mut facts, who, cluster);
        for key in ["hvparams", "beparams", "nicparams", "osparams", "os_hvp"] {
            nested_params(&mut facts, who, key, cluster.get(key));
        }
        params(&mut facts, who, "ndparams", cluster.get("ndparams"), &[]);
        nested_params(&mut facts, who, "diskparams", cluster.get("diskparams"));
        for key in [
            "cluster_name",
            "master_ip",
            "master_netdev",
            "volume_group_name",
        ] {
            if let Some(v) = cluster.get(key).filter(|v| !v.is_null()) {
                facts.insert(format!("{who}: {key}={v}"));
            }
        }
        if let Some(m) = str_of(cluster, "master_node") {
            facts.insert(format!("{who}: master={}", node_name(m)));
        }
    }
    for (key, node) in map("nodes") {
        let who = format!("node {:?}", name_of(key, node));
        facts.insert(who.clone());
        tags(&mut facts, &who, node);
        params(
            &mut facts,
            &who,
            "ndparams",
            node.get("ndparams"),
            NODE_GLOBAL_PARAMS,
        );
        for k in ["primary_ip", "secondary_ip"] {
            if let Some(v) = node.get(k) {
                facts.insert(format!("{who}: {k}={v}"));
            }
        }
    }
    for (key, group) in map("nodegroups") {
        let who = format!("node group {:?}", name_of(key, group));
        facts.insert(who.clone());
        tags(&mut facts, &who, group);
        params(&mut facts, &who, "ndparams", group.get("ndparams"), &[]);
        nested_params(&mut facts, &who, "diskparams", group.get("diskparams"));
        if let Some(nets) = group.get("networks").and_then(Value::as_object) {
            for (net, p) in nets {
                let net = network_name(net);
                params(&mut facts, &who, &format!("networks.{net}"), Some(p), &[]);
            }
        }
    }
    for (key, net) in map("networks") {
        let who = format!("network {:?}", name_of(key, net));
        facts.insert(who.clone());
        tags(&mut facts, &who, net);
        for k in ["network", "gateway", "network6", "gateway6", "mac_prefix"] {
            if let Some(v) = net.get(k).filter(|v| !v.is_null()) {
                facts.insert(format!("{who}: {k}={v}"));
            }
        }
    }
    let top_disks = map("disks");
    for (key, inst) in map("instances") {
        let who = format!("instance {:?}", name_of(key, inst));
        facts.insert(who.clone());
        tags(&mut facts, &who, inst);
        if let Some(p) = str_of(inst, "primary_node") {
            facts.insert(format!("{who}: primary={}", node_name(p)));
        }
        for k in ["os", "hypervisor", "admin_state", "network_port"] {
            if let Some(v) = inst.get(k).filter(|v| !v.is_null()) {
                facts.insert(format!("{who}: {k}={v}"));
            }
        }
        params(
            &mut facts,
            &who,
            "hvparams",
            inst.get("hvparams"),
            HV_GLOBAL_PARAMS,
        );
        let be = inst.get("beparams").cloned().map(|mut b| {
            if let Some(o) = b.as_object_mut() {
                split_memory(o);
            }
            b
        });
        params(&mut facts, &who, "beparams", be.as_ref(), &[]);
        params(&mut facts, &who, "osparams", inst.get("osparams"), &[]);
        for (idx, nic) in inst
            .get("nics")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let nic_who = format!("{who}: nic {idx}");
            for k in ["mac", "ip", "name", "uuid"] {
                if let Some(v) = nic.get(k).filter(|v| !v.is_null()) {
                    facts.insert(format!("{nic_who} {k}={v}"));
                }
            }
            if let Some(n) = str_of(nic, "network") {
                facts.insert(format!("{nic_who} network={}", network_name(n)));
            }
            params(&mut facts, &nic_who, "nicparams", nic.get("nicparams"), &[]);
        }
        for (idx, entry) in inst
            .get("disks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let disk = match entry {
                Value::String(uuid) => top_disks.get(uuid.as_str()),
                other => Some(other),
            };
            let Some(disk) = disk else {
                facts.insert(format!("{who}: disk {idx} dangling={entry}"));
                continue;
            };
            disk_facts(&mut facts, &format!("{who}: disk {idx}"), disk);
        }
    }
    Inventory { facts }
}

fn disk_facts(facts: &mut BTreeSet<String>, who: &str, disk: &Value) {
    for k in ["size", "mode", "uuid", "name", "spindles"] {
        if let Some(v) = disk.get(k).filter(|v| !v.is_null()) {
            facts.insert(format!("{who} {k}={v}"));
        }
    }
    params(facts, who, "params", disk.get("params"), &[]);
    for (idx, child) in disk
        .get("children")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        disk_facts(facts, &format!("{who} child {idx}"), child);
    }
}

fn tags(facts: &mut BTreeSet<String>, who: &str, obj: &Value) {
    for tag in obj
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        facts.insert(format!("{who}: tag {tag}"));
    }
}

fn params(
    facts: &mut BTreeSet<String>,
    who: &str,
    kind: &str,
    value: Option<&Value>,
    skip: &[&str],
) {
    for (k, v) in value.and_then(Value::as_object).into_iter().flatten() {
        if !skip.contains(&k.as_str()) && !v.is_null() {
            facts.insert(format!("{who}: {kind}.{k}={v}"));
        }
    }
}

fn nested_params(facts: &mut BTreeSet<String>, who: &str, kind: &str, value: Option<&Value>) {
    for (group, inner) in value.and_then(Value::as_object).into_iter().flatten() {
        let mut inner = inner.clone();
        if kind == "beparams" {
            if let Some(o) = inner.as_object_mut() {
                split_memory(o);
            }
        }
        params(facts, who, &format!("{kind}.{group}"), Some(&inner), &[]);
    }
}

// ---------------------------------------------------------------------------
// Ganeti 3.0's defaults (facts from Ganeti's constants, 3.0)
// ---------------------------------------------------------------------------

/// Monitoring data collectors known to 3.0.
const DATA_COLLECTOR_NAMES: &[&str] = &[
    "cpu-avg-load",
    "diskstats",
    "drbd",
    "inst-status-xen",
    "lv",
    "xen-cpu-avg-load",
];
/// Collection interval Ganeti stores for each collector, in microseconds (a
/// float in Ganeti's files).
const DATA_COLLECTOR_INTERVAL_USEC: f64 = 5_000_000.0;
const MAX_RUNNING_JOBS_DEFAULT: u64 = 20;
const MAX_TRACKED_JOBS_DEFAULT: u64 = 25;
const DEFAULT_DRBD_HELPER: &str = "/bin/true";
/// Node parameters that are cluster-wide only; Ganeti drops them from nodes.
const NODE_GLOBAL_PARAMS: &[&str] = &["exclusive_storage"];
/// Hypervisor parameters that are cluster-wide only; dropped from instances.
const HV_GLOBAL_PARAMS: &[&str] = &[
    "migration_bandwidth",
    "migration_mode",
    "migration_port",
    "xen_cmd",
];
const IPOLICY_KEYS: &[&str] = &[
    "disk-templates",
    "minmax",
    "spindle-ratio",
    "std",
    "vcpu-ratio",
];
/// `AF_INET` as Ganeti stores `primary_ip_family`.
const AF_INET: u64 = 2;
/// `AF_INET6` as Ganeti stores `primary_ip_family`.
const AF_INET6: u64 = 10;

fn compression_tools_default() -> Value {
    json!(["gzip", "gzip-fast", "gzip-slow"])
}

fn ispecs_min() -> Value {
    json!({"cpu-count": 1, "disk-count": 1, "disk-size": 1024, "memory-size": 128,
           "nic-count": 1, "spindle-use": 1})
}

fn ipolicy_defaults() -> Value {
    json!({
        "disk-templates": crate::constants::DISK_TEMPLATES,
        "minmax": [{
            "max": {"cpu-count": 8, "disk-count": 16, "disk-size": 1048576,
                    "memory-size": 32768, "nic-count": 8, "spindle-use": 12},
            "min": ispecs_min(),
        }],
        "spindle-ratio": 32.0,
        "std": ispecs_min(),
        "vcpu-ratio": 4.0,
    })
}

fn nd_defaults() -> Value {
    json!({"cpu_speed": 1.0, "exclusive_storage": false, "oob_program": "", "ovs": false,
           "ovs_link": "", "ovs_name": "switch1", "spindle_count": 1, "ssh_port": 22})
}

fn nic_defaults() -> Value {
    json!({"link": "xen-br0", "mode": "bridged", "vlan": ""})
}

fn be_defaults() -> Value {
    json!({"always_failover": false, "auto_balance": true, "maxmem": 128, "minmem": 128,
           "spindle_use": 1, "vcpus": 1})
}

fn disk_dt_defaults() -> Value {
    json!({
        "blockdev": {},
        "diskless": {},
        "drbd": {"c-delay-target": 1, "c-fill-target": 0, "c-max-rate": 61440,
                 "c-min-rate": 4096, "c-plan-ahead": 20, "data-stripes": 1,
                 "disk-barriers": "n", "disk-custom": "", "dynamic-resync": false,
                 "meta-barriers": false, "meta-stripes": 1, "metavg": "xenvg",
                 "net-custom": "", "protocol": "C", "resync-rate": 61440},
        "ext": {"access": "kernelspace"},
        "file": {},
        "gluster": {"access": "kernelspace", "host": "127.0.0.1", "port": 24007,
                    "volume": "gv0"},
        "plain": {"stripes": 1},
        "rbd": {"access": "kernelspace", "pool": "rbd"},
        "sharedfile": {},
    })
}

// ---------------------------------------------------------------------------
// Pieces of the steps
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum PolicyOwner {
    Cluster,
    Group,
}

/// `min`/`max` → `minmax: [{min, max}]`, group `std` dropped, and the specs
/// of the first pair completed from `defaults`.
fn upgrade_ipolicy_specs(ipolicy: &mut Map<String, Value>, defaults: &Value, owner: PolicyOwner) {
    if ipolicy.contains_key("min") || ipolicy.contains_key("max") {
        let mut pair = Map::new();
        for key in ["min", "max"] {
            if let Some(spec) = ipolicy.remove(key) {
                if is_truthy(Some(&spec)) {
                    pair.insert(key.into(), spec);
                }
            }
        }
        if !pair.is_empty() {
            ipolicy.insert("minmax".into(), json!([pair]));
        }
    }
    if owner == PolicyOwner::Group {
        ipolicy.remove("std");
    }
    let Some(first) = ipolicy
        .get_mut("minmax")
        .and_then(Value::as_array_mut)
        .and_then(|l| l.first_mut())
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (key, spec) in first.iter_mut() {
        let (Some(spec), Some(default)) = (
            spec.as_object_mut(),
            defaults
                .get("minmax")
                .and_then(|m| m.get(0))
                .and_then(|p| p.get(key))
                .and_then(Value::as_object),
        ) else {
            continue;
        };
        for (par, val) in default {
            if !spec.contains_key(par) {
                spec.insert(par.clone(), val.clone());
            }
        }
    }
}

/// Drops disk templates that the cluster does not enable from a policy.
fn restrict_policy_templates(ipolicy: &mut Map<String, Value>, enabled: &[String]) {
    let Some(list) = ipolicy
        .get_mut("disk-templates")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    list.retain(|t| t.as_str().is_some_and(|t| enabled.iter().any(|e| e == t)));
}

/// Sets `enabled_disk_templates` from the templates in use when it is unset
/// or empty (Ganeti 3.0, `ConfigData._UpgradeEnabledDiskTemplates`).
fn infer_enabled_disk_templates(
    cfg: &mut Value,
    log: &mut Vec<String>,
) -> Result<(), UpgradeError> {
    let cluster = cfg
        .get("cluster")
        .ok_or_else(|| malformed("the configuration", "no \"cluster\" object"))?;
    if is_truthy(cluster.get("enabled_disk_templates")) {
        return Ok(());
    }
    let mut in_use: BTreeSet<String> = BTreeSet::new();
    let top_disks = cfg.get("disks").and_then(Value::as_object);
    for disk in top_disks.into_iter().flat_map(|m| m.values()) {
        if let Some(t) = str_of(disk, "dev_type") {
            in_use.insert(legacy_dev_type(t).unwrap_or(t).to_string());
        }
    }
    for inst in cfg
        .get("instances")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| m.values())
    {
        let list = inst.get("disks").and_then(Value::as_array);
        if list.is_none_or(|l| l.is_empty()) {
            in_use.insert("diskless".into());
        }
        for disk in list.into_iter().flatten().filter(|d| d.is_object()) {
            if let Some(t) = str_of(disk, "dev_type") {
                in_use.insert(legacy_dev_type(t).unwrap_or(t).to_string());
            }
        }
    }
    if is_truthy(cluster.get("volume_group_name")) {
        in_use.insert("drbd".into());
        in_use.insert("plain".into());
    }
    let mut enabled: Vec<String> = Vec::new();
    for t in crate::config::params::DISK_TEMPLATE_PREFERENCE {
        if in_use.remove(*t) {
            enabled.push((*t).to_string());
        }
    }
    enabled.extend(in_use);
    log.push(format!(
        "Enabled disk templates set to those in use: {}",
        enabled.join(", ")
    ));
    cfg["cluster"]["enabled_disk_templates"] = json!(enabled);
    Ok(())
}

/// Sets each instance disk's `nodes` (Ganeti 3.0's cfgupgrade,
/// `UpgradeDiskNodes`): DRBD disks and their children live on the instance's
/// nodes, plain and file disks on its primary, shared ones anywhere (`[]`).
fn fill_disk_nodes(cfg: &mut Value) -> Result<(), UpgradeError> {
    let (instances, disks) = instances_and_disks_mut(cfg)?;
    let Some(disks) = disks else { return Ok(()) };
    for inst in instances.values() {
        let mut all_nodes: Vec<Value> = Vec::new();
        let mut add = |n: &Value| {
            if !all_nodes.contains(n) {
                all_nodes.push(n.clone());
            }
        };
        if let Some(p) = inst.get("primary_node").filter(|p| p.is_string()) {
            add(p);
        }
        let uuids: Vec<&str> = inst
            .get("disks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for uuid in &uuids {
            if let Some(disk) = disks.get(*uuid) {
                visit_disk(disk, &mut |d| {
                    if is_drbd_value(d) {
                        for end in d
                            .get("logical_id")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .take(2)
                        {
                            add(end);
                        }
                    }
                });
            }
        }
        for uuid in &uuids {
            let Some(disk) = disks.get_mut(*uuid).and_then(Value::as_object_mut) else {
                continue;
            };
            if disk.contains_key("nodes") {
                continue;
            }
            match str_of_obj(disk, "dev_type") {
                Some("drbd" | "drbd8") => set_nodes_recursively(disk, &all_nodes),
                Some("plain" | "lvm" | "file") => {
                    disk.insert("nodes".into(), Value::Array(all_nodes.clone()));
                }
                _ => {
                    disk.insert("nodes".into(), json!([]));
                }
            }
        }
    }
    Ok(())
}

fn set_nodes_recursively(disk: &mut Map<String, Value>, nodes: &[Value]) {
    disk.insert("nodes".into(), Value::Array(nodes.to_vec()));
    if let Some(children) = disk.get_mut("children").and_then(Value::as_array_mut) {
        for child in children.iter_mut().filter_map(Value::as_object_mut) {
            set_nodes_recursively(child, nodes);
        }
    }
}

/// Ganeti 3.0's `Cluster.UpgradeConfig`, plus the keys cfgupgrade sets.
fn fill_cluster(c: &mut Map<String, Value>, log: &mut Vec<String>) -> Result<(), UpgradeError> {
    set_default(c, "hvparams", json!({}));
    set_default(c, "os_hvp", json!({}));
    set_default(c, "osparams", json!({}));
    set_default(c, "osparams_private_cluster", json!({}));

    let mut nd = match c.remove("ndparams") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    if nd.get("oob_program").is_some_and(Value::is_null) {
        nd.remove("oob_program");
    }
    fill_dict(&mut nd, &nd_defaults());
    c.insert("ndparams".into(), Value::Object(nd));

    fill_grouped(c, "beparams", &be_defaults());
    if let Some(groups) = c.get_mut("beparams").and_then(Value::as_object_mut) {
        for group in groups.values_mut().filter_map(Value::as_object_mut) {
            split_memory(group);
        }
    }
    let migrate_bridge = !is_truthy(c.get("nicparams"));
    fill_grouped(c, "nicparams", &nic_defaults());
    if migrate_bridge {
        // Ganeti copies even an unset bridge (null); we keep the default link then.
        if let Some(bridge) = c.get("default_bridge").filter(|b| b.is_string()).cloned() {
            c["nicparams"]["default"]["link"] = bridge;
        }
    }
    set_default(c, "modify_etc_hosts", json!(true));
    set_default(c, "modify_ssh_setup", json!(true));
    c.remove("default_bridge");
    if let Some(Value::String(first)) = c.remove("default_hypervisor") {
        let mut list = vec![Value::String(first.clone())];
        for hv in c
            .get("enabled_hypervisors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if hv.as_str() != Some(first.as_str()) {
                list.push(hv.clone());
            }
        }
        c.insert("enabled_hypervisors".into(), Value::Array(list));
    }
    set_default(c, "maintain_node_health", json!(false));
    set_default(c, "uid_pool", json!([]));
    set_default(c, "default_iallocator", json!(""));
    set_default(c, "default_iallocator_params", json!({}));
    set_default(c, "reserved_lvs", json!([]));
    set_default(c, "hidden_os", json!([]));
    set_default(c, "blacklisted_os", json!([]));
    set_default(c, "primary_ip_family", json!(AF_INET));
    let netmask = if c.get("primary_ip_family").and_then(Value::as_u64) == Some(AF_INET6) {
        128
    } else {
        32
    };
    set_default(c, "master_netmask", json!(netmask));
    set_default(c, "prealloc_wipe_disks", json!(false));
    set_default(c, "shared_file_storage_dir", json!(""));
    set_default(c, "gluster_storage_dir", json!(""));
    set_default(c, "use_external_mip_script", json!(false));
    let diskparams = match c.remove("diskparams") {
        Some(Value::Object(custom)) if !custom.is_empty() => {
            let defaults = disk_dt_defaults();
            let mut out = Map::new();
            for dt in crate::constants::DISK_TEMPLATES {
                let mut filled = custom
                    .get(*dt)
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                fill_dict(&mut filled, &defaults[*dt]);
                out.insert((*dt).to_string(), Value::Object(filled));
            }
            // Keep templates unknown to 3.0 rather than silently drop them.
            for (k, v) in custom {
                out.entry(k).or_insert(v);
            }
            Value::Object(out)
        }
        _ => disk_dt_defaults(),
    };
    c.insert("diskparams".into(), diskparams);
    match c.get_mut("ipolicy") {
        Some(Value::Object(policy)) => {
            let spurious: Vec<&String> = policy
                .keys()
                .filter(|k| !IPOLICY_KEYS.contains(&k.as_str()))
                .collect();
            if !spurious.is_empty() {
                return Err(malformed(
                    "cluster instance policy",
                    format!(
                        "unknown keys {}",
                        spurious
                            .iter()
                            .map(|k| format!("{k:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            let defaults = ipolicy_defaults();
            for key in IPOLICY_KEYS {
                match policy.get_mut(*key) {
                    None => {
                        policy.insert((*key).to_string(), defaults[*key].clone());
                    }
                    Some(Value::Object(std)) if *key == "std" => fill_dict(std, &defaults["std"]),
                    Some(_) => {}
                }
            }
        }
        _ => {
            c.insert("ipolicy".into(), ipolicy_defaults());
            log.push("Cluster instance policy set to the defaults".to_string());
        }
    }
    set_default(c, "hv_state_static", json!({}));
    set_default(c, "disk_state_static", json!({}));
    set_default(c, "candidate_certs", json!({}));
    set_default(c, "max_running_jobs", json!(MAX_RUNNING_JOBS_DEFAULT));
    set_default(c, "max_tracked_jobs", json!(MAX_TRACKED_JOBS_DEFAULT));
    set_default(c, "instance_communication_network", json!(""));
    set_default(c, "install_image", json!(""));
    set_default(c, "zeroing_image", json!(""));
    set_default(c, "compression_tools", compression_tools_default());
    set_default(c, "enabled_user_shutdown", json!(false));
    set_default(c, "ssh_key_type", json!("rsa"));
    set_default(c, "ssh_key_bits", json!(2048));
    set_default(c, "tcpudp_port_pool", json!([]));
    Ok(())
}

/// Ganeti 3.0's `Node.UpgradeConfig`.
fn fill_node(n: &mut Map<String, Value>, log: &mut Vec<String>) {
    set_default(n, "master_capable", json!(true));
    set_default(n, "vm_capable", json!(true));
    set_default(n, "ndparams", json!({}));
    set_default(n, "powered", json!(true));
    let name = str_of_obj(n, "name").unwrap_or("?").to_string();
    if let Some(nd) = n.get_mut("ndparams").and_then(Value::as_object_mut) {
        for key in NODE_GLOBAL_PARAMS {
            if nd.remove(*key).is_some() {
                log.push(format!(
                    "{WARNING_PREFIX}node {name:?}: ignoring the cluster-wide parameter {key}"
                ));
            }
        }
    }
}

/// Ganeti 3.0's `Instance.FromDict`, `UpgradeConfig` and `ToDict`.
fn fill_instance(i: &mut Map<String, Value>) {
    if !i.contains_key("admin_state") {
        let up = i.get("admin_up").and_then(Value::as_bool).unwrap_or(false);
        i.insert("admin_state".into(), json!(if up { "up" } else { "down" }));
    }
    i.remove("admin_up");
    i.remove("disk_template");
    set_default(i, "admin_state_source", json!("admin"));
    set_default(i, "disks", json!([]));
    set_default(i, "nics", json!([]));
    if let Some(hv) = i.get_mut("hvparams").and_then(Value::as_object_mut) {
        for key in HV_GLOBAL_PARAMS {
            hv.remove(*key);
        }
    }
    set_default(i, "hvparams", json!({}));
    set_default(i, "osparams", json!({}));
    set_default(i, "osparams_private", json!({}));
    set_default(i, "beparams", json!({}));
    if let Some(be) = i.get_mut("beparams").and_then(Value::as_object_mut) {
        split_memory(be);
    }
    let up = i.get("admin_state").and_then(Value::as_str) == Some("up");
    set_default(i, "disks_active", json!(up));
}

/// Ganeti 3.0's `NodeGroup.UpgradeConfig` and `ToDict`.
fn fill_group(g: &mut Map<String, Value>, now: &Value) {
    g.remove("members");
    set_default(g, "ndparams", json!({}));
    set_default(g, "serial_no", json!(1));
    set_default(g, "alloc_policy", json!("preferred"));
    set_default(g, "mtime", now.clone());
    set_default(g, "diskparams", json!({}));
    set_default(g, "ipolicy", json!({}));
    set_default(g, "networks", json!({}));
    if let Some(nets) = g.get_mut("networks").and_then(Value::as_object_mut) {
        for p in nets.values_mut() {
            if let Some(p) = p.as_object_mut() {
                fill_dict(p, &nic_defaults());
            }
        }
    }
}

/// Ganeti 3.0's `Disk.UpgradeConfig`, recursively.
fn fill_disk(
    disk: &mut Value,
    now: &Value,
    what: impl Fn() -> String + Copy,
) -> Result<(), UpgradeError> {
    let d = as_obj_mut(disk, what)?;
    if let Some(children) = d.get_mut("children").and_then(Value::as_array_mut) {
        for child in children.iter_mut() {
            fill_disk(child, now, what)?;
        }
    }
    if !d.get("params").is_some_and(Value::is_object) {
        d.insert("params".into(), json!({}));
    }
    set_default(d, "serial_no", json!(1));
    set_default(d, "mtime", now.clone());
    set_default(d, "ctime", now.clone());
    if let Some(new) = d
        .get("dev_type")
        .and_then(Value::as_str)
        .and_then(legacy_dev_type)
    {
        d.insert("dev_type".into(), new.into());
    }
    d.remove("physical_id");
    d.remove("dynamic_params");
    Ok(())
}

/// Every node needs a group: with no groups at all, Ganeti creates
/// `default`; a node without a group joins the only group there is.
fn ensure_default_group(cfg: &mut Value, log: &mut Vec<String>) -> Result<(), UpgradeError> {
    let mut ids = UuidGen::new(cfg);
    let groups = top_map_mut(cfg, "nodegroups")?;
    if groups.is_empty() {
        let uuid = ids.fresh(&["nodegroup", "default"]);
        let mut group = Map::new();
        group.insert("name".into(), json!("default"));
        group.insert("uuid".into(), json!(uuid));
        group.insert("tags".into(), json!([]));
        fill_group(&mut group, &json!(0));
        groups.insert(uuid.clone(), Value::Object(group));
        log.push(format!("Created node group \"default\" ({uuid})"));
    }
    let only_group = if groups.len() == 1 {
        groups.keys().next().cloned()
    } else {
        None
    };
    let group_by_name: HashMap<String, String> = groups
        .iter()
        .filter_map(|(k, g)| Some((str_of(g, "name")?.to_string(), k.clone())))
        .collect();
    for (key, node) in top_map_mut(cfg, "nodes")?.iter_mut() {
        let node = as_obj_mut(node, || format!("node {key:?}"))?;
        match node.get("group").and_then(Value::as_str) {
            Some(g) if !g.is_empty() => {
                if let Some(uuid) = group_by_name.get(g) {
                    node.insert("group".into(), json!(uuid));
                }
            }
            _ => {
                if let Some(g) = &only_group {
                    node.insert("group".into(), json!(g));
                    log.push(format!("node {key:?}: placed in the only node group"));
                }
            }
        }
    }
    Ok(())
}

/// Gives every object Ganeti expects a UUID on one (`_AllUUIDObjects`).
fn assign_all_uuids(cfg: &mut Value, log: &mut Vec<String>) -> Result<(), UpgradeError> {
    let mut ids = UuidGen::new(cfg);
    let cluster = obj_mut(cfg, "cluster", "the configuration")?;
    if !has_str(cluster, "uuid") {
        cluster.insert("uuid".into(), ids.fresh(&["cluster"]).into());
        log.push("cluster: assigned a UUID".to_string());
    }
    for section in ["nodegroups", "networks"] {
        let map = std::mem::take(top_map_mut(cfg, section)?);
        let mut rekeyed = Map::new();
        for (key, mut obj) in map {
            let o = as_obj_mut(&mut obj, || format!("{section} entry {key:?}"))?;
            if !has_str(o, "uuid") {
                o.insert("uuid".into(), ids.fresh(&[section, &key]).into());
                log.push(format!("{section} entry {key:?}: assigned a UUID"));
            }
            let uuid = str_of_obj(o, "uuid").unwrap_or_default().to_string();
            rekeyed.insert(uuid, obj);
        }
        cfg[section] = Value::Object(rekeyed);
    }
    for (key, inst) in top_map_mut(cfg, "instances")?.iter_mut() {
        for (idx, nic) in inst
            .get_mut("nics")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(nic) = nic.as_object_mut() {
                if !has_str(nic, "uuid") {
                    nic.insert(
                        "uuid".into(),
                        ids.fresh(&[key, "nic", &idx.to_string()]).into(),
                    );
                }
            }
        }
    }
    Ok(())
}

fn assign_disk_uuids(disk: &mut Value, ids: &mut UuidGen, path: &[&str]) {
    let Some(d) = disk.as_object_mut() else {
        return;
    };
    if !has_str(d, "uuid") {
        d.insert("uuid".into(), ids.fresh(path).into());
    }
    if let Some(children) = d.get_mut("children").and_then(Value::as_array_mut) {
        for (idx, child) in children.iter_mut().enumerate() {
            let idx = idx.to_string();
            let mut child_path = path.to_vec();
            child_path.push("child");
            child_path.push(&idx);
            assign_disk_uuids(child, ids, &child_path);
        }
    }
}

fn exclusive_storage_anywhere(cfg: &Value) -> bool {
    let flag = |o: &Value| {
        o.get("ndparams")
            .and_then(|p| p.get("exclusive_storage"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    cfg.get("cluster").is_some_and(flag)
        || cfg
            .get("nodegroups")
            .and_then(Value::as_object)
            .is_some_and(|g| g.values().any(flag))
}

/// `memory` → `maxmem` and `minmem` (Ganeti's `UpgradeBeParams`).
fn split_memory(be: &mut Map<String, Value>) {
    if let Some(mem) = be.remove("memory") {
        be.insert("maxmem".into(), mem.clone());
        be.insert("minmem".into(), mem);
    }
}

fn legacy_dev_type(t: &str) -> Option<&'static str> {
    match t {
        "lvm" => Some("plain"),
        "drbd8" => Some("drbd"),
        _ => None,
    }
}

fn is_drbd(disk: &Map<String, Value>) -> bool {
    matches!(str_of_obj(disk, "dev_type"), Some("drbd" | "drbd8"))
}

fn is_drbd_value(disk: &Value) -> bool {
    disk.as_object().is_some_and(is_drbd)
}

// ---------------------------------------------------------------------------
// Deterministic UUIDs
// ---------------------------------------------------------------------------

/// Makes UUIDs for objects that lack one, derived from the cluster and the
/// object's place in the document, so an upgrade is reproducible (Ganeti
/// draws random ones). They are RFC 9562 version 8 ("custom") UUIDs, checked
/// against every UUID already in the document.
struct UuidGen {
    seed: String,
    taken: HashSet<String>,
}

impl UuidGen {
    fn new(cfg: &Value) -> Self {
        let mut taken = HashSet::new();
        collect_uuids(cfg, &mut taken);
        let seed = cfg
            .get("cluster")
            .and_then(|c| str_of(c, "uuid").or_else(|| str_of(c, "cluster_name")))
            .unwrap_or("")
            .to_string();
        UuidGen { seed, taken }
    }

    fn fresh(&mut self, path: &[&str]) -> String {
        let mut attempt: u64 = 0;
        loop {
            let hi = fnv1a64(&self.seed, path, attempt, 0);
            let lo = fnv1a64(&self.seed, path, attempt, 1);
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&hi.to_be_bytes());
            b[8..].copy_from_slice(&lo.to_be_bytes());
            b[6] = (b[6] & 0x0f) | 0x80; // version 8
            b[8] = (b[8] & 0x3f) | 0x80; // RFC variant
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            let uuid = format!(
                "{}-{}-{}-{}-{}",
                &hex[0..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..32]
            );
            if self.taken.insert(uuid.clone()) {
                return uuid;
            }
            attempt += 1;
        }
    }
}

fn fnv1a64(seed: &str, path: &[&str], attempt: u64, lane: u8) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(lane).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    eat(seed.as_bytes());
    for p in path {
        eat(p.as_bytes());
    }
    eat(&attempt.to_le_bytes());
    eat(&[lane]);
    // Final avalanche (splitmix64) so nearby inputs spread over all bits.
    let mut z = h;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn collect_uuids(v: &Value, out: &mut HashSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "uuid" {
                    if let Some(s) = x.as_str() {
                        out.insert(s.to_string());
                    }
                }
                collect_uuids(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_uuids(x, out)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// JSON plumbing
// ---------------------------------------------------------------------------

fn malformed(what: impl Into<String>, problem: impl Into<String>) -> UpgradeError {
    UpgradeError::Malformed {
        what: what.into(),
        problem: problem.into(),
    }
}

fn set_version(cfg: &mut Value, v: u64) {
    cfg["version"] = json!(v);
}

/// Inserts `key` when it is missing or null; Ganeti treats both as unset.
fn set_default(obj: &mut Map<String, Value>, key: &str, value: Value) {
    if obj.get(key).is_none_or(Value::is_null) {
        obj.insert(key.to_string(), value);
    }
}

/// Ganeti's `FillDict(defaults, custom)`, in place on `custom`.
fn fill_dict(custom: &mut Map<String, Value>, defaults: &Value) {
    for (k, v) in defaults.as_object().into_iter().flatten() {
        if !custom.contains_key(k) {
            custom.insert(k.clone(), v.clone());
        }
    }
}

/// Ganeti's `UpgradeGroupedParams`: every group completed from `defaults`,
/// or a single `default` group when there are none.
fn fill_grouped(obj: &mut Map<String, Value>, key: &str, defaults: &Value) {
    match obj.get_mut(key) {
        Some(Value::Object(groups)) if !groups.is_empty() => {
            for group in groups.values_mut() {
                if let Some(g) = group.as_object_mut() {
                    fill_dict(g, defaults);
                }
            }
        }
        _ => {
            obj.insert(key.to_string(), json!({ "default": defaults }));
        }
    }
}

/// Python truthiness of an optional JSON value.
fn is_truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn str_of_obj<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    o.get(key).and_then(Value::as_str)
}

fn has_str(o: &Map<String, Value>, key: &str) -> bool {
    str_of_obj(o, key).is_some_and(|s| !s.is_empty())
}

fn as_obj_mut(
    v: &mut Value,
    what: impl FnOnce() -> String,
) -> Result<&mut Map<String, Value>, UpgradeError> {
    v.as_object_mut()
        .ok_or_else(|| malformed(what(), "not a JSON object"))
}

fn obj_mut<'a>(
    cfg: &'a mut Value,
    key: &str,
    parent: &str,
) -> Result<&'a mut Map<String, Value>, UpgradeError> {
    if !cfg.is_object() {
        return Err(malformed("the configuration", "not a JSON object"));
    }
    cfg.get_mut(key)
        .and_then(Value::as_object_mut)
        .ok_or_else(|| malformed(parent, format!("no {key:?} object")))
}

/// Creates a missing or null top-level map; fails if it is something else.
fn ensure_top_map(cfg: &mut Value, key: &str) -> Result<(), UpgradeError> {
    let doc = cfg
        .as_object_mut()
        .ok_or_else(|| malformed("the configuration", "not a JSON object"))?;
    set_default(doc, key, json!({}));
    if doc.get(key).is_some_and(Value::is_object) {
        Ok(())
    } else {
        Err(malformed(format!("{key:?}"), "not a JSON object"))
    }
}

fn top_map<'a>(cfg: &'a Value, key: &str) -> Result<&'a Map<String, Value>, UpgradeError> {
    cfg.get(key)
        .and_then(Value::as_object)
        .ok_or_else(|| malformed("the configuration", format!("no {key:?} object")))
}

fn top_map_mut<'a>(
    cfg: &'a mut Value,
    key: &str,
) -> Result<&'a mut Map<String, Value>, UpgradeError> {
    obj_mut(cfg, key, "the configuration")
}

type InstancesAndDisks<'a> = (
    &'a mut Map<String, Value>,
    Option<&'a mut Map<String, Value>>,
);

/// The instances map and, when present, the top-level disks map, both
/// mutable at once.
fn instances_and_disks_mut(cfg: &mut Value) -> Result<InstancesAndDisks<'_>, UpgradeError> {
    let doc = cfg
        .as_object_mut()
        .ok_or_else(|| malformed("the configuration", "not a JSON object"))?;
    let mut instances = None;
    let mut disks = None;
    for (k, v) in doc.iter_mut() {
        match k.as_str() {
            "instances" => instances = v.as_object_mut(),
            "disks" => disks = v.as_object_mut(),
            _ => {}
        }
    }
    let instances =
        instances.ok_or_else(|| malformed("the configuration", "no \"instances\" object"))?;
    Ok((instances, disks))
}

/// Calls `f` on every disk object, inline in instances or top-level, and on
/// all their children.
fn for_each_disk(
    cfg: &mut Value,
    f: &mut dyn FnMut(&mut Map<String, Value>),
) -> Result<(), UpgradeError> {
    let (instances, disks) = instances_and_disks_mut(cfg)?;
    for inst in instances.values_mut() {
        for disk in inst
            .get_mut("disks")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            visit_disk_mut(disk, f);
        }
    }
    for disk in disks.into_iter().flat_map(|m| m.values_mut()) {
        visit_disk_mut(disk, f);
    }
    Ok(())
}

fn visit_disk_mut(disk: &mut Value, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    let Some(d) = disk.as_object_mut() else {
        return;
    };
    f(d);
    if let Some(children) = d.get_mut("children").and_then(Value::as_array_mut) {
        for child in children.iter_mut() {
            visit_disk_mut(child, f);
        }
    }
}

fn visit_disk(disk: &Value, f: &mut dyn FnMut(&Value)) {
    f(disk);
    for child in disk
        .get("children")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        visit_disk(child, f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    const FIXTURE_DIR: &str = "/usr/share/ganeti/testsuite/test/data";
    const FIXTURE_VERSIONS: &[&str] = &[
        "2.7", "2.8", "2.9", "2.10", "2.11", "2.12", "2.13", "2.14", "2.15", "2.16",
    ];

    /// A small 2.7-shaped cluster: two nodes keyed by name, one DRBD
    /// instance with inline disks, one diskless instance.
    fn minimal_v2_7() -> Value {
        json!({
            "version": 2_070_000,
            "serial_no": 7,
            "ctime": 100.5,
            "mtime": 200.5,
            "cluster": {
                "cluster_name": "cluster.example.com",
                "uuid": "c0000000-0000-0000-0000-000000000000",
                "master_node": "node1",
                "volume_group_name": "xenvg",
                "enabled_hypervisors": ["kvm"],
                "hvparams": {"kvm": {"kernel_path": "/boot/vmlinuz"}},
                "beparams": {"default": {"memory": 256, "vcpus": 2}},
                "nicparams": {"default": {"mode": "bridged", "link": "br0"}},
                "ndparams": {"exclusive_storage": false},
                "ipolicy": {
                    "min": {"cpu-count": 1},
                    "max": {"cpu-count": 8},
                    "std": {"cpu-count": 1},
                    "disk-templates": ["plain", "drbd", "file"],
                    "vcpu-ratio": 1.0,
                    "spindle-ratio": 32.0
                },
                "tags": ["ctag"],
                "tcpudp_port_pool": []
            },
            "nodes": {
                "node1": {"name": "node1", "uuid": "11111111-0000-0000-0000-000000000001",
                          "group": "a0000000-0000-0000-0000-000000000000",
                          "primary_ip": "192.0.2.1", "tags": ["ntag"], "master_candidate": true,
                          "ndparams": {"exclusive_storage": true, "spindle_count": 2}},
                "node2": {"name": "node2", "uuid": "22222222-0000-0000-0000-000000000002",
                          "group": "a0000000-0000-0000-0000-000000000000",
                          "primary_ip": "192.0.2.2"}
            },
            "nodegroups": {
                "a0000000-0000-0000-0000-000000000000": {
                    "name": "default", "uuid": "a0000000-0000-0000-0000-000000000000",
                    "ipolicy": {"min": {"cpu-count": 2}, "max": {}, "std": {"cpu-count": 3}}
                }
            },
            "networks": {
                "b0000000-0000-0000-0000-000000000000": {
                    "name": "net1", "uuid": "b0000000-0000-0000-0000-000000000000",
                    "network": "198.51.100.0/24", "network_type": "private", "family": 4
                }
            },
            "instances": {
                "web1": {
                    "name": "web1", "uuid": "c1111111-0000-0000-0000-000000000001",
                    "primary_node": "node1", "os": "debian", "hypervisor": "kvm",
                    "admin_up": true, "disk_template": "drbd", "ctime": 50,
                    "beparams": {"memory": 512},
                    "hvparams": {"migration_port": 1234, "boot_order": "disk"},
                    "osparams": {"variant": "bookworm"},
                    "tags": ["itag"],
                    "nics": [{"mac": "aa:00:00:00:00:01", "network": "net1",
                              "nicparams": {"link": "br1"}}],
                    "disks": [{
                        "dev_type": "drbd8", "size": 1024, "mode": "rw", "iv_name": "sda",
                        "logical_id": ["node1", "node2", 11000, 0, 1, "secret"],
                        "physical_id": ["192.0.2.1", 11000, "192.0.2.2", 11000, 0, "secret"],
                        "children": [
                            {"dev_type": "lvm", "size": 1024, "logical_id": ["xenvg", "d"],
                             "physical_id": ["xenvg", "d"]},
                            {"dev_type": "lvm", "size": 128, "logical_id": ["xenvg", "m"]}
                        ]
                    }]
                },
                "empty1": {
                    "name": "empty1", "uuid": "c2222222-0000-0000-0000-000000000002",
                    "primary_node": "node2", "os": "debian", "hypervisor": "kvm",
                    "admin_state": "down", "disk_template": "diskless",
                    "nics": [], "disks": []
                }
            }
        })
    }

    fn run_steps_until(cfg: &mut Value, to: u64) -> Vec<String> {
        let mut log = Vec::new();
        for step in STEPS.iter().filter(|s| s.to <= to) {
            (step.apply)(cfg, &mut log).unwrap();
        }
        log
    }

    fn fixture_dir() -> Option<PathBuf> {
        let dir = Path::new(FIXTURE_DIR);
        if dir.is_dir() {
            Some(dir.to_path_buf())
        } else {
            eprintln!("skipping: {FIXTURE_DIR} not installed (apt-get install ganeti-testsuite)");
            None
        }
    }

    fn load_fixture(dir: &Path, version: &str) -> Value {
        let path = dir.join(format!("cluster_config_{version}.json"));
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
    }

    #[test]
    fn version_strings() {
        assert_eq!(config_version_string(2_160_000), "2.16.0");
        assert_eq!(config_version_string(3_000_000), "3.0.0");
        assert_eq!(config_version_string(2_070_003), "2.7.3");
        assert_eq!(split_version(2_110_000), (2, 11, 0));
        assert_eq!(build_version(2, 11, 0), 2_110_000);
    }

    #[test]
    fn refuses_versions_outside_the_range() {
        let err = upgrade(json!({"version": 3_010_000})).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, UpgradeError::TooNew { found: 3_010_000 }));
        assert!(
            msg.contains("3.1.0") && msg.contains("2.7.0") && msg.contains("3.0.0"),
            "{msg}"
        );
        let err = upgrade(json!({"version": 2_060_000})).unwrap_err();
        assert!(matches!(err, UpgradeError::TooOld { found: 2_060_000 }));
        assert!(err.to_string().contains("2.6.0"), "{err}");
        assert!(matches!(
            upgrade(json!({"version": 2_170_000})).unwrap_err(),
            UpgradeError::Unsupported { .. }
        ));
        assert!(matches!(
            upgrade(json!({"cluster": {}})).unwrap_err(),
            UpgradeError::MissingVersion
        ));
        assert!(matches!(
            upgrade(json!({"version": "2.16"})).unwrap_err(),
            UpgradeError::BadVersion { .. }
        ));
    }

    #[test]
    fn current_version_is_returned_unchanged() {
        let doc = json!({"version": CONFIG_VERSION, "cluster": {"x": 1}});
        let (out, log) = upgrade(doc.clone()).unwrap();
        assert_eq!(out, doc);
        assert!(log.iter().any(|l| l.contains("No changes")));
    }

    #[test]
    fn config_version_inside_cluster_is_refused() {
        let mut doc = minimal_v2_7();
        doc["cluster"]["config_version"] = json!(2_070_000);
        assert!(matches!(
            upgrade(doc).unwrap_err(),
            UpgradeError::Malformed { .. }
        ));
    }

    #[test]
    fn v2_7_to_v2_8_reshapes_policies_and_assigns_uuids() {
        let mut cfg = minimal_v2_7();
        let mut log = Vec::new();
        upgrade_v2_7_to_v2_8(&mut cfg, &mut log).unwrap();
        let policy = &cfg["cluster"]["ipolicy"];
        assert!(policy.get("min").is_none() && policy.get("max").is_none());
        assert_eq!(policy["minmax"][0]["min"]["cpu-count"], 1);
        // Missing spec parameters come from Ganeti's defaults.
        assert_eq!(policy["minmax"][0]["max"]["disk-size"], 1_048_576);
        assert_eq!(policy["std"]["cpu-count"], 1);
        let group = &cfg["nodegroups"]["a0000000-0000-0000-0000-000000000000"]["ipolicy"];
        assert!(group.get("std").is_none(), "{group}");
        // Only the non-empty spec is kept, completed from the cluster's.
        assert_eq!(group["minmax"][0]["min"]["cpu-count"], 2);
        assert!(group["minmax"][0].get("max").is_none());
        assert_eq!(group["minmax"][0]["min"]["disk-size"], 1024);
        let web = &cfg["instances"]["web1"];
        assert_eq!(
            web["nics"][0]["network"],
            "b0000000-0000-0000-0000-000000000000"
        );
        assert!(web["nics"][0]["uuid"].is_string());
        let disk = &web["disks"][0];
        assert!(disk["uuid"].is_string());
        assert!(disk["children"][0]["uuid"].is_string());
        assert_ne!(disk["uuid"], disk["children"][0]["uuid"]);
        assert_eq!(
            cfg["cluster"]["enabled_disk_templates"],
            json!(["diskless", "drbd", "plain"])
        );
        assert_eq!(cfg["version"], 2_080_000);
    }

    #[test]
    fn v2_8_to_v2_9_keys_by_uuid_and_renames_disk_types() {
        let mut cfg = minimal_v2_7();
        run_steps_until(&mut cfg, 2_080_000);
        let mut log = Vec::new();
        upgrade_v2_8_to_v2_9(&mut cfg, &mut log).unwrap();
        let n1 = "11111111-0000-0000-0000-000000000001";
        let n2 = "22222222-0000-0000-0000-000000000002";
        assert!(cfg["nodes"].get(n1).is_some() && cfg["nodes"].get("node1").is_none());
        assert_eq!(cfg["cluster"]["master_node"], n1);
        let web = &cfg["instances"]["c1111111-0000-0000-0000-000000000001"];
        assert_eq!(web["primary_node"], n1);
        let disk = &web["disks"][0];
        assert_eq!(disk["dev_type"], "drbd");
        assert_eq!(disk["logical_id"][0], n1);
        assert_eq!(disk["logical_id"][1], n2);
        assert_eq!(disk["children"][1]["dev_type"], "plain");
        // Running it again changes nothing.
        let again = cfg.clone();
        upgrade_v2_8_to_v2_9(&mut cfg, &mut log).unwrap();
        assert_eq!(cfg, again);
    }

    #[test]
    fn v2_9_to_v2_10_drops_physical_ids_and_fixes_iv_names() {
        let mut cfg = minimal_v2_7();
        run_steps_until(&mut cfg, 2_090_000);
        let mut log = Vec::new();
        upgrade_v2_9_to_v2_10(&mut cfg, &mut log).unwrap();
        let disk = &cfg["instances"]["c1111111-0000-0000-0000-000000000001"]["disks"][0];
        assert!(disk.get("physical_id").is_none());
        assert!(disk["children"][0].get("physical_id").is_none());
        assert_eq!(disk["iv_name"], "disk/0");
        assert!(log
            .iter()
            .any(|l| l.starts_with(WARNING_PREFIX) && l.contains("sda")));
    }

    #[test]
    fn v2_10_to_v2_11_adds_certs_and_admin_source() {
        let mut cfg = minimal_v2_7();
        run_steps_until(&mut cfg, 2_100_000);
        upgrade_v2_10_to_v2_11(&mut cfg, &mut Vec::new()).unwrap();
        assert_eq!(cfg["cluster"]["candidate_certs"], json!({}));
        assert_eq!(cfg["cluster"]["default_iallocator_params"], json!({}));
        assert_eq!(cfg["cluster"]["enabled_user_shutdown"], false);
        for inst in cfg["instances"].as_object().unwrap().values() {
            assert_eq!(inst["admin_state_source"], "admin");
        }
    }

    #[test]
    fn v2_11_to_v2_12_moves_disks_to_the_top_level() {
        let mut cfg = minimal_v2_7();
        run_steps_until(&mut cfg, 2_110_000);
        let inline = cfg["instances"]["c1111111-0000-0000-0000-000000000001"]["disks"][0].clone();
        upgrade_v2_11_to_v2_12(&mut cfg, &mut Vec::new()).unwrap();
        let web = &cfg["instances"]["c1111111-0000-0000-0000-000000000001"];
        let uuid = web["disks"][0].as_str().unwrap();
        assert_eq!(uuid, inline["uuid"]);
        let disk = &cfg["disks"][uuid];
        assert_eq!(disk["size"], 1024);
        assert_eq!(disk["serial_no"], 1);
        assert_eq!(disk["ctime"], 50);
        assert_eq!(disk["children"], inline["children"]);
        assert_eq!(cfg["cluster"]["install_image"], "");
        assert_eq!(cfg["cluster"]["zeroing_image"], "");
        assert_eq!(cfg["cluster"]["instance_communication_network"], "");
        assert_eq!(
            cfg["cluster"]["compression_tools"],
            json!(["gzip", "gzip-fast", "gzip-slow"])
        );
    }

    #[test]
    fn v2_12_to_v2_13_adds_filters_and_collectors() {
        let mut cfg = minimal_v2_7();
        run_steps_until(&mut cfg, 2_120_000);
        cfg["cluster"]["data_collectors"] = json!({"lv": {"active": false, "interval": 1.0}});
        upgrade_v2_12_to_v2_13(&mut cfg, &mut Vec::new()).unwrap();
        assert_eq!(cfg["filters"], json!({}));
        let dc = &cfg["cluster"]["data_collectors"];
        assert_eq!(dc["lv"]["active"], false, "existing settings are kept");
        assert_eq!(dc["drbd"], json!({"active": true, "interval": 5_000_000.0}));
        assert_eq!(dc.as_object().unwrap().len(), DATA_COLLECTOR_NAMES.len());
    }

    #[test]
    fn v2_13_to_v2_14_sets_disk_nodes_and_drops_disk_template() {
        let mut cfg = minimal_v2_7();
        run_steps_until(&mut cfg, 2_130_000);
        upgrade_v2_13_to_v2_14(&mut cfg, &mut Vec::new()).unwrap();
        let web = &cfg["instances"]["c1111111-0000-0000-0000-000000000001"];
        assert!(web.get("disk_template").is_none());
        assert_eq!(web["disks_active"], false, "admin_up is only read in 3.0");
        assert_eq!(web["osparams_private"], json!({}));
        let uuid = web["disks"][0].as_str().unwrap();
        let nodes = json!([
            "11111111-0000-0000-0000-000000000001",
            "22222222-0000-0000-0000-000000000002"
        ]);
        assert_eq!(cfg["disks"][uuid]["nodes"], nodes);
        assert_eq!(cfg["disks"][uuid]["children"][1]["nodes"], nodes);
        assert_eq!(cfg["cluster"]["max_running_jobs"], 20);
        assert_eq!(cfg["cluster"]["max_tracked_jobs"], 25);
        assert_eq!(cfg["cluster"]["gluster_storage_dir"], "");
    }

    #[test]
    fn v2_14_to_v2_16_bump_and_keep_dsa_keys() {
        let mut cfg = minimal_v2_7();
        run_steps_until(&mut cfg, 2_140_000);
        let before = cfg.clone();
        upgrade_v2_14_to_v2_15(&mut cfg, &mut Vec::new()).unwrap();
        assert_eq!(cfg["version"], 2_150_000);
        cfg["version"] = before["version"].clone();
        assert_eq!(cfg, before);
        upgrade_v2_15_to_v2_16(&mut cfg, &mut Vec::new()).unwrap();
        assert_eq!(cfg["cluster"]["ssh_key_type"], "dsa");
        assert_eq!(cfg["cluster"]["ssh_key_bits"], 1024);
    }

    #[test]
    fn v2_16_to_v3_0_fills_defaults_and_drops_old_keys() {
        let mut cfg = minimal_v2_7();
        run_steps_until(&mut cfg, 2_160_000);
        upgrade_v2_16_to_v3_0(&mut cfg, &mut Vec::new()).unwrap();
        assert_eq!(cfg["version"], CONFIG_VERSION);
        let web = &cfg["instances"]["c1111111-0000-0000-0000-000000000001"];
        assert_eq!(web["admin_state"], "up");
        assert!(web.get("admin_up").is_none());
        assert_eq!(web["beparams"], json!({"maxmem": 512, "minmem": 512}));
        assert_eq!(web["hvparams"], json!({"boot_order": "disk"}));
        let c = &cfg["cluster"];
        assert_eq!(c["beparams"]["default"]["maxmem"], 256);
        assert_eq!(c["beparams"]["default"]["auto_balance"], true);
        assert_eq!(c["nicparams"]["default"]["link"], "br0");
        assert_eq!(c["ndparams"]["ssh_port"], 22);
        assert_eq!(c["diskparams"]["drbd"]["protocol"], "C");
        assert_eq!(c["drbd_usermode_helper"], "/bin/true");
        assert_eq!(c["ssh_key_type"], "dsa", "2.16's setting is kept");
        assert_eq!(c["ipolicy"]["disk-templates"], json!(["plain", "drbd"]));
        let node1 = &cfg["nodes"]["11111111-0000-0000-0000-000000000001"];
        assert_eq!(node1["ndparams"], json!({"spindle_count": 2}));
        assert_eq!(node1["powered"], true);
        let net = &cfg["networks"]["b0000000-0000-0000-0000-000000000000"];
        assert!(net.get("network_type").is_none() && net.get("family").is_none());
        let group = &cfg["nodegroups"]["a0000000-0000-0000-0000-000000000000"];
        assert_eq!(group["alloc_policy"], "preferred");
        assert_eq!(group["mtime"], 200.5);
        verify_upgraded(&cfg).unwrap();
    }

    #[test]
    fn full_upgrade_is_deterministic_and_idempotent() {
        let (a, log) = upgrade(minimal_v2_7()).unwrap();
        let (b, _) = upgrade(minimal_v2_7()).unwrap();
        assert_eq!(a, b, "same input, same output (UUIDs included)");
        assert!(log
            .iter()
            .any(|l| l.contains("Upgrading from 2.7.0 to 2.8.0")));
        let (c, _) = upgrade(a.clone()).unwrap();
        assert_eq!(a, c);
        verify_upgraded(&a).unwrap();
    }

    #[test]
    fn missing_groups_get_the_default_group() {
        let mut doc = minimal_v2_7();
        doc["nodegroups"] = json!({});
        for node in doc["nodes"].as_object_mut().unwrap().values_mut() {
            node.as_object_mut().unwrap().remove("group");
        }
        let (out, _) = upgrade(doc).unwrap();
        let groups = out["nodegroups"].as_object().unwrap();
        assert_eq!(groups.len(), 1);
        let (uuid, group) = groups.iter().next().unwrap();
        assert_eq!(group["name"], "default");
        for node in out["nodes"].as_object().unwrap().values() {
            assert_eq!(node["group"], json!(uuid));
        }
        verify_upgraded(&out).unwrap();
    }

    #[test]
    fn verification_reports_dangling_references() {
        let (mut cfg, _) = upgrade(minimal_v2_7()).unwrap();
        cfg["instances"]["c1111111-0000-0000-0000-000000000001"]["primary_node"] = json!("nope");
        cfg["instances"]["c2222222-0000-0000-0000-000000000002"]["disks"] = json!(["gone"]);
        let err = verify_upgraded(&cfg).unwrap_err();
        let UpgradeError::Verify { problems } = &err else {
            panic!("{err}")
        };
        assert!(
            problems.iter().any(|p| p.contains("\"nope\"")),
            "{problems:?}"
        );
        assert!(problems.iter().any(|p| p.contains("gone")), "{problems:?}");
    }

    #[test]
    fn inventory_notices_a_lost_nic() {
        let old = minimal_v2_7();
        let mut new = old.clone();
        new["instances"]["web1"]["nics"] = json!([]);
        let lost = inventory(&old).missing_from(&inventory(&new));
        assert!(
            lost.iter().any(|f| f.contains("aa:00:00:00:00:01")),
            "{lost:?}"
        );
        assert!(inventory(&old).missing_from(&inventory(&old)).is_empty());
    }

    #[test]
    fn malformed_documents_are_errors_not_panics() {
        for doc in [
            json!({"version": 2_070_000}),
            json!({"version": 2_070_000, "cluster": 5, "nodes": {}, "instances": {}, "nodegroups": {}}),
            json!({"version": 2_070_000, "cluster": {}, "nodes": [], "instances": {}, "nodegroups": {}}),
            json!({"version": 2_070_000, "cluster": {}, "nodes": {}, "instances": {"a": 1}, "nodegroups": {}}),
        ] {
            assert!(upgrade(doc.clone()).is_err(), "{doc}");
        }
    }

    #[test]
    fn every_fixture_upgrades_without_loss() {
        let Some(dir) = fixture_dir() else { return };
        for version in FIXTURE_VERSIONS {
            let old = load_fixture(&dir, version);
            let (new, _log) = upgrade(old.clone()).unwrap_or_else(|e| panic!("{version}: {e}"));
            let lost = inventory(&old).missing_from(&inventory(&new));
            assert!(lost.is_empty(), "{version} lost {lost:?}");
            verify_upgraded(&new).unwrap_or_else(|e| panic!("{version}: {e}"));
            assert_eq!(new["version"], CONFIG_VERSION);

            // The counts of everything, checked apart from the facts.
            for key in ["nodes", "instances", "nodegroups", "networks"] {
                assert_eq!(
                    old[key].as_object().unwrap().len(),
                    new[key].as_object().unwrap().len(),
                    "{version}: {key}"
                );
            }
            // 3.0 shape: no inline disks, no per-instance template.
            for inst in new["instances"].as_object().unwrap().values() {
                assert!(inst.get("disk_template").is_none(), "{version}");
                for key in ["admin_state_source", "disks_active", "osparams_private"] {
                    assert!(inst.get(key).is_some(), "{version}: instance lacks {key}");
                }
                assert!(inst["disks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(Value::is_string));
            }
            let cluster = new["cluster"].as_object().unwrap();
            for key in [
                "candidate_certs",
                "compression_tools",
                "data_collectors",
                "default_iallocator_params",
                "enabled_disk_templates",
                "enabled_user_shutdown",
                "gluster_storage_dir",
                "install_image",
                "instance_communication_network",
                "max_running_jobs",
                "max_tracked_jobs",
                "osparams_private_cluster",
                "ssh_key_bits",
                "ssh_key_type",
                "zeroing_image",
            ] {
                assert!(cluster.contains_key(key), "{version}: cluster lacks {key}");
            }
            assert!(new["filters"].is_object() && new["disks"].is_object());

            let (again, _) = upgrade(new.clone()).unwrap();
            assert_eq!(again, new, "{version}: second upgrade changed something");
        }
    }
}
