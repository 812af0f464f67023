//! Cluster-level LUs: query, config query, verify-config, set-params; and
//! the cluster answers masterd gives over LUXI without a job
//! (`QueryClusterInfo`, `QueryConfigValues`), computed here once for both.
//! [`verify`] holds `gnt-cluster verify`; [`disks`] `verify-disks` and
//! `repair-disk-sizes`.

pub mod disks;
pub mod verify;

use super::{LockNeed, LogicalUnit, LuContext, LuError};
use crate::config::objects::ConfigData;
use crate::config::params::{self, ParamFamily};
use crate::config::ConfigError;
use crate::error::ErrorKind;
use crate::locking::LockMode;
use crate::opcodes::{OpClusterConfigQuery, OpClusterSetParams, OpClusterVerifyConfig};
use serde_json::{json, Map, Value};

/// The master node's name.
pub fn master_node_name(config: &ConfigData) -> Option<String> {
    config.master_node().map(|n| n.name.as_str().to_string())
}

fn enabled_only(map: &Value, enabled: &[Value]) -> Value {
    let mut out = Map::new();
    if let Some(m) = map.as_object() {
        for (k, v) in m {
            if enabled.iter().any(|e| e.as_str() == Some(k)) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// The `QueryClusterInfo` answer, with the keys of Ganeti 3.0. Only the
/// cluster object is turned into JSON (its keys are the ones clients know),
/// so the cost does not grow with the number of nodes and instances.
pub fn cluster_info(config: &ConfigData) -> Value {
    let cluster = serde_json::to_value(&config.cluster).unwrap_or(Value::Null);
    let c = &cluster;
    let enabled_hvs = c["enabled_hypervisors"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut os_hvp = Map::new();
    if let Some(m) = c["os_hvp"].as_object() {
        for (os, hvs) in m {
            os_hvp.insert(os.clone(), enabled_only(hvs, &enabled_hvs));
        }
    }
    let ip_version = match c["primary_ip_family"].as_u64() {
        Some(10) => 6,
        _ => 4,
    };
    let field = |k: &str| c.get(k).cloned().unwrap_or(Value::Null);
    let pairs: Vec<(&str, Value)> = vec![
        (
            "software_version",
            json!(crate::constants::GANETI_COMPAT_VERSION),
        ),
        (
            "protocol_version",
            json!(crate::constants::PROTOCOL_VERSION),
        ),
        ("config_version", json!(crate::constants::CONFIG_VERSION)),
        (
            "os_api_version",
            json!(crate::constants::OS_API_VERSIONS.iter().max()),
        ),
        ("export_version", json!(crate::constants::EXPORT_VERSION)),
        (
            "vcs_version",
            json!(format!("ganeti-rs {}", crate::constants::RELEASE_VERSION)),
        ),
        ("architecture", json!(["64bit", std::env::consts::ARCH])),
        ("name", json!(field("cluster_name"))),
        ("master", json!(master_node_name(config))),
        (
            "default_hypervisor",
            json!(enabled_hvs.first().cloned().unwrap_or(Value::Null)),
        ),
        ("enabled_hypervisors", json!(enabled_hvs)),
        (
            "hvparams",
            json!(enabled_only(
                &c["hvparams"],
                c["enabled_hypervisors"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
            )),
        ),
        ("os_hvp", json!(os_hvp)),
        ("beparams", json!(field("beparams"))),
        ("osparams", json!(field("osparams"))),
        ("ipolicy", json!(field("ipolicy"))),
        ("nicparams", json!(field("nicparams"))),
        ("ndparams", json!(field("ndparams"))),
        ("diskparams", json!(field("diskparams"))),
        ("candidate_pool_size", json!(field("candidate_pool_size"))),
        ("max_running_jobs", json!(field("max_running_jobs"))),
        ("max_tracked_jobs", json!(field("max_tracked_jobs"))),
        ("mac_prefix", json!(field("mac_prefix"))),
        ("master_netdev", json!(field("master_netdev"))),
        ("master_netmask", json!(field("master_netmask"))),
        (
            "use_external_mip_script",
            json!(field("use_external_mip_script")),
        ),
        ("volume_group_name", json!(field("volume_group_name"))),
        ("drbd_usermode_helper", json!(field("drbd_usermode_helper"))),
        ("file_storage_dir", json!(field("file_storage_dir"))),
        (
            "shared_file_storage_dir",
            json!(field("shared_file_storage_dir")),
        ),
        ("gluster_storage_dir", json!(field("gluster_storage_dir"))),
        ("maintain_node_health", json!(field("maintain_node_health"))),
        ("ctime", json!(field("ctime"))),
        ("mtime", json!(field("mtime"))),
        ("uuid", json!(field("uuid"))),
        ("tags", json!(field("tags"))),
        ("uid_pool", json!(field("uid_pool"))),
        ("default_iallocator", json!(field("default_iallocator"))),
        (
            "default_iallocator_params",
            json!(field("default_iallocator_params")),
        ),
        ("reserved_lvs", json!(field("reserved_lvs"))),
        ("primary_ip_version", json!(ip_version)),
        ("prealloc_wipe_disks", json!(field("prealloc_wipe_disks"))),
        ("hidden_os", json!(field("hidden_os"))),
        ("blacklisted_os", json!(field("blacklisted_os"))),
        (
            "enabled_disk_templates",
            json!(field("enabled_disk_templates")),
        ),
        ("install_image", json!(field("install_image"))),
        (
            "instance_communication_network",
            json!(field("instance_communication_network")),
        ),
        ("zeroing_image", json!(field("zeroing_image"))),
        ("compression_tools", json!(field("compression_tools"))),
        (
            "enabled_user_shutdown",
            json!(field("enabled_user_shutdown")),
        ),
        ("modify_ssh_setup", json!(field("modify_ssh_setup"))),
        ("ssh_key_type", json!(field("ssh_key_type"))),
        ("ssh_key_bits", json!(field("ssh_key_bits"))),
        (
            "enabled_data_collectors",
            json!(field("data_collectors").as_object().map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v["active"].clone()))
                    .collect::<Map<_, _>>()
            })),
        ),
        (
            "data_collector_interval",
            json!(field("data_collectors").as_object().map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v["interval"].clone()))
                    .collect::<Map<_, _>>()
            })),
        ),
    ];
    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// `QueryConfigValues(fields)`: the cluster-wide values Ganeti's clients ask for
/// (`cluster_name`, `master_node`, `drain_flag`, `watcher_pause`).
pub fn query_config_values(
    config: &ConfigData,
    paths: &crate::paths::Paths,
    args: &Value,
) -> Result<Value, LuError> {
    let fields = args.get(0).and_then(Value::as_array).ok_or_else(|| {
        LuError::prereq(
            ErrorKind::Inval,
            "the config value query takes a list of field names",
        )
    })?;
    let mut out = Vec::with_capacity(fields.len());
    for f in fields {
        let name = f.as_str().unwrap_or_default();
        let v = match name {
            "cluster_name" => Value::String(config.cluster.cluster_name.clone()),
            "master_node" => master_node_name(config)
                .map(Value::String)
                .unwrap_or(Value::Null),
            "drain_flag" => Value::Bool(paths.queue_dir().join("drain").exists()),
            "watcher_pause" => watcher_pause(paths),
            _ => {
                return Err(LuError::prereq(
                    ErrorKind::Inval,
                    format!("unknown config value field {f}"),
                ));
            }
        };
        out.push(v);
    }
    Ok(Value::Array(out))
}

/// The end of the watcher pause, if the watcher is paused now (`null` otherwise).
pub fn watcher_pause(paths: &crate::paths::Paths) -> Value {
    let until = std::fs::read_to_string(paths.watcher_pause_file())
        .ok()
        .and_then(|t| t.trim().parse::<f64>().ok());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    match until {
        Some(t) if t > now => json!(t),
        _ => Value::Null,
    }
}

/// `OP_CLUSTER_QUERY`: the same answer as LUXI's `QueryClusterInfo`.
pub struct LuClusterQuery;

impl LogicalUnit for LuClusterQuery {
    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), LuError> {
        Ok(())
    }
    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        Ok(cluster_info(&ctx.store.snapshot()))
    }
}

/// `OP_CLUSTER_CONFIG_QUERY`: selected cluster values.
pub struct LuClusterConfigQuery {
    op: OpClusterConfigQuery,
}

impl LuClusterConfigQuery {
    /// The LU for `op`.
    pub fn new(op: OpClusterConfigQuery) -> Self {
        LuClusterConfigQuery { op }
    }
}

impl LogicalUnit for LuClusterConfigQuery {
    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), LuError> {
        Ok(())
    }
    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let fields = Value::Array(
            self.op
                .output_fields
                .iter()
                .cloned()
                .map(Value::String)
                .collect(),
        );
        query_config_values(
            &ctx.store.snapshot(),
            ctx.store.paths(),
            &Value::Array(vec![fields]),
        )
    }
}

/// `OP_CLUSTER_VERIFY_CONFIG`: checks the configuration's consistency.
pub struct LuClusterVerifyConfig {
    op: OpClusterVerifyConfig,
}

impl LuClusterVerifyConfig {
    /// The LU for `op`.
    pub fn new(op: OpClusterVerifyConfig) -> Self {
        LuClusterVerifyConfig { op }
    }
}

impl LogicalUnit for LuClusterVerifyConfig {
    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), LuError> {
        Ok(())
    }
    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        (ctx.feedback)("* Verifying cluster config".into());
        let cfg = ctx.store.snapshot();
        let mut ok = true;
        if let Err(errors) = crate::config::validate::validate(&cfg) {
            for line in errors.to_string().lines() {
                let ignored = self
                    .op
                    .ignore_errors
                    .iter()
                    .any(|e| line.contains(e.as_str()));
                (ctx.feedback)(format!("  - ERROR: cluster: {line}"));
                ok &= ignored;
            }
        }
        if self.op.debug_simulate_errors {
            (ctx.feedback)("  - ERROR: cluster: simulated error (debug_simulate_errors)".into());
            ok = false;
        }
        Ok(Value::Bool(ok))
    }
}

/// `OP_CLUSTER_SET_PARAMS` (`gnt-cluster modify`): the cluster-wide
/// parameters ganeti-rs can change today; the others are refused by name.
pub struct LuClusterSetParams {
    op: OpClusterSetParams,
}

impl LuClusterSetParams {
    /// The LU for `op`.
    pub fn new(op: OpClusterSetParams) -> Self {
        LuClusterSetParams { op }
    }

    /// Parameters the opcode carries that this LU does not handle yet.
    fn unsupported(&self) -> Vec<&'static str> {
        let o = &self.op;
        let mut out = Vec::new();
        let mut check = |set: bool, name: &'static str| {
            if set {
                out.push(name);
            }
        };
        check(o.hv_state.is_some(), "hv_state");
        check(o.disk_state.is_some(), "disk_state");
        check(o.vg_name.is_some(), "vg_name");
        check(o.diskparams.is_some(), "diskparams");
        check(o.ipolicy.is_some(), "ipolicy");
        check(o.drbd_helper.is_some(), "drbd_helper");
        check(o.master_netdev.is_some(), "master_netdev");
        check(o.master_netmask.is_some(), "master_netmask");
        check(o.enabled_disk_templates.is_some(), "enabled_disk_templates");
        check(o.file_storage_dir.is_some(), "file_storage_dir");
        check(
            o.shared_file_storage_dir.is_some(),
            "shared_file_storage_dir",
        );
        check(o.gluster_storage_dir.is_some(), "gluster_storage_dir");
        check(
            o.instance_communication_network.is_some(),
            "instance_communication_network",
        );
        check(
            o.enabled_data_collectors.is_some(),
            "enabled_data_collectors",
        );
        check(
            o.data_collector_interval.is_some(),
            "data_collector_interval",
        );
        out
    }
}

fn to_ranges(v: &[(i64, i64)], what: &str) -> Result<Vec<(u32, u32)>, LuError> {
    v.iter()
        .map(|&(lo, hi)| match (u32::try_from(lo), u32::try_from(hi)) {
            (Ok(l), Ok(h)) if l <= h => Ok((l, h)),
            _ => Err(LuError::prereq(
                ErrorKind::Inval,
                format!("{what}: invalid user-id range {lo}-{hi}"),
            )),
        })
        .collect()
}

/// Merges `changes` into `base` (a `null` value resets the key), checking the result.
fn merge_params(
    base: &crate::config::objects::ParamMap,
    changes: &Map<String, Value>,
    family: ParamFamily,
    sub: Option<&str>,
    what: &str,
) -> Result<crate::config::objects::ParamMap, LuError> {
    let mut out = base.clone();
    for (k, v) in changes {
        if v.is_null() {
            out.remove(k);
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    params::check_params(family, sub, &out).map_err(|e| {
        LuError::prereq(
            ErrorKind::Inval,
            format!("{what}: {}", crate::error::chain(&e)),
        )
    })?;
    Ok(out)
}

impl LogicalUnit for LuClusterSetParams {
    fn bgl_mode(&self) -> LockMode {
        LockMode::Exclusive
    }

    fn declare_locks(&self, _cfg: &ConfigData) -> Vec<LockNeed> {
        Vec::new()
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        let unsupported = self.unsupported();
        if !unsupported.is_empty() {
            return Err(LuError::prereq(
                ErrorKind::Inval,
                format!(
                    "changing {} is not supported by ganeti-rs yet",
                    unsupported.join(", ")
                ),
            ));
        }
        if let Some(p) = &self.op.mac_prefix {
            if !crate::config::bootstrap::is_valid_mac_prefix(p) {
                return Err(LuError::prereq(
                    ErrorKind::Inval,
                    format!("Invalid mac prefix given '{p}'"),
                ));
            }
        }
        if let Some(hvs) = &self.op.enabled_hypervisors {
            if hvs.is_empty() {
                return Err(LuError::prereq(
                    ErrorKind::Inval,
                    "at least one hypervisor must stay enabled",
                ));
            }
        }
        if let Some(n) = self.op.candidate_pool_size {
            if n < 1 {
                return Err(LuError::prereq(
                    ErrorKind::Inval,
                    "candidate_pool_size must be at least 1",
                ));
            }
        }
        if let Some(remove) = &self.op.remove_uids {
            let remove = to_ranges(remove, "remove_uids")?;
            for r in &remove {
                if !cfg.cluster.uid_pool.contains(r) {
                    return Err(LuError::prereq(
                        ErrorKind::Inval,
                        format!("user-id range {}-{} is not in the uid pool", r.0, r.1),
                    ));
                }
            }
        }
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let op = self.op.clone();
        let result = ctx.update_config(|cfg| {
            let c = &mut cfg.cluster;
            let fail = |e: LuError| ConfigError::Update {
                reason: e.to_string(),
            };
            if let Some(pool) = &op.uid_pool {
                c.uid_pool = to_ranges(pool, "uid_pool").map_err(fail)?;
            }
            if let Some(add) = &op.add_uids {
                for r in to_ranges(add, "add_uids").map_err(fail)? {
                    if !c.uid_pool.contains(&r) {
                        c.uid_pool.push(r);
                    }
                }
            }
            if let Some(remove) = &op.remove_uids {
                let remove = to_ranges(remove, "remove_uids").map_err(fail)?;
                c.uid_pool.retain(|r| !remove.contains(r));
            }
            if let Some(hvs) = &op.hvparams {
                for (hv, changes) in hvs {
                    let base = c.hvparams.get(hv).cloned().unwrap_or_default();
                    let merged = merge_params(
                        &base,
                        changes,
                        ParamFamily::Hv,
                        Some(hv),
                        &format!("hvparams for {hv}"),
                    )
                    .map_err(fail)?;
                    c.hvparams.insert(hv.clone(), merged);
                }
            }
            if let Some(be) = &op.beparams {
                let base = c.beparams.get("default").cloned().unwrap_or_default();
                let merged =
                    merge_params(&base, be, ParamFamily::Be, None, "beparams").map_err(fail)?;
                c.beparams.insert("default".into(), merged);
            }
            if let Some(nic) = &op.nicparams {
                let base = c.nicparams.get("default").cloned().unwrap_or_default();
                let merged =
                    merge_params(&base, nic, ParamFamily::Nic, None, "nicparams").map_err(fail)?;
                c.nicparams.insert("default".into(), merged);
            }
            if let Some(nd) = &op.ndparams {
                c.ndparams = merge_params(&c.ndparams, nd, ParamFamily::Nd, None, "ndparams")
                    .map_err(fail)?;
            }
            if let Some(hvs) = &op.enabled_hypervisors {
                c.enabled_hypervisors = hvs
                    .iter()
                    .map(|h| {
                        serde_json::to_value(h)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default()
                    })
                    .collect();
            }
            if let Some(v) = op.candidate_pool_size {
                c.candidate_pool_size = u32::try_from(v).unwrap_or(u32::MAX);
            }
            if let Some(v) = op.max_running_jobs {
                c.max_running_jobs = u32::try_from(v).unwrap_or(u32::MAX);
            }
            if let Some(v) = op.max_tracked_jobs {
                c.max_tracked_jobs = u32::try_from(v).unwrap_or(u32::MAX);
            }
            if let Some(v) = op.maintain_node_health {
                c.maintain_node_health = v;
            }
            if let Some(v) = op.prealloc_wipe_disks {
                c.prealloc_wipe_disks = v;
            }
            if let Some(v) = &op.default_iallocator {
                c.default_iallocator = v.clone();
            }
            if let Some(v) = &op.default_iallocator_params {
                c.default_iallocator_params = v.clone().into_iter().collect();
            }
            if let Some(v) = &op.mac_prefix {
                c.mac_prefix = v.clone();
            }
            if let Some(v) = &op.reserved_lvs {
                c.reserved_lvs = v.clone();
            }
            if let Some(v) = op.use_external_mip_script {
                c.use_external_mip_script = v;
            }
            if let Some(v) = op.modify_etc_hosts {
                c.modify_etc_hosts = v;
            }
            if let Some(v) = &op.install_image {
                c.install_image = v.clone();
            }
            if let Some(v) = &op.zeroing_image {
                c.zeroing_image = v.clone();
            }
            if let Some(v) = &op.compression_tools {
                c.compression_tools = v.clone();
            }
            if let Some(v) = op.enabled_user_shutdown {
                c.enabled_user_shutdown = v;
            }
            super::os::apply_cluster_os_changes(c, &op)
                .map_err(|reason| ConfigError::Update { reason })?;
            Ok(())
        });
        result?;
        (ctx.feedback)("Cluster parameters changed".into());
        if op.candidate_pool_size.is_some() {
            // A larger pool is filled at once (Ganeti's AdjustCandidatePool).
            super::node::adjust_candidate_pool(ctx)?;
        }
        Ok(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_ranges_are_checked() {
        assert_eq!(to_ranges(&[(1000, 1009)], "x").unwrap(), vec![(1000, 1009)]);
        assert!(to_ranges(&[(10, 5)], "x").is_err());
        assert!(to_ranges(&[(-1, 5)], "x").is_err());
    }

    #[test]
    fn cluster_info_has_ganeti_keys() {
        let cfg = crate::config::test_support::generated(2, 3);
        let info = cluster_info(&cfg);
        for key in [
            "software_version",
            "name",
            "master",
            "enabled_hypervisors",
            "hvparams",
            "ipolicy",
            "uid_pool",
        ] {
            assert!(info.get(key).is_some(), "missing {key}");
        }
        assert_eq!(
            info["master"],
            json!(cfg.master_node().map(|n| n.name.as_str().to_string()))
        );
    }
}
