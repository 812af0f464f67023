//! `ganeti-masterd`: the master daemon.
//!
//! Owns the cluster config (through [`ConfigStore`], its only writer) and
//! serves LUXI on two unix sockets under the root: `ganeti-master` and
//! `ganeti-query` (the one Ganeti 3.0's own clients use). It starts only on
//! the node the config names as master.
//!
//! What it answers today: the read-only calls `gnt-cluster info`,
//! `version` and Ganeti's clients need (`QueryClusterInfo`,
//! `QueryConfigValues`, `QueryTags` for the cluster). The job queue, and
//! with it every call that submits or follows jobs, comes with issue 3;
//! until then those calls get an explicit "not implemented yet" error.

use crate::config::objects::ConfigData;
use crate::config::store::ConfigStore;
use crate::daemons::{Daemon, DaemonError};
use crate::error::ErrorKind;
use crate::luxi::server::{serve, Handler};
use crate::luxi::{LuxiFailure, Method};
use serde_json::{json, Map, Value};
use smol::net::unix::UnixListener;
use std::path::Path;
use std::sync::Arc;

/// Mode of the LUXI sockets: root and the admin group only.
const SOCKET_MODE: u32 = 0o660;

/// Entry point.
pub fn main(_program: &str, args: &[String]) -> u8 {
    crate::daemons::run("ganeti-masterd", args, run)
}

fn run(daemon: &Daemon) -> Result<(), DaemonError> {
    let paths = daemon.paths.clone();
    let store = ConfigStore::open(&paths)
        .map_err(|e| DaemonError::body("loading the cluster configuration", e))?;
    let snapshot = store.snapshot();
    let me = paths.hostname();
    let master = master_node_name(&snapshot);
    if master.as_deref() != Some(me.as_str()) {
        return Err(DaemonError::body(
            "checking the master role",
            format!(
                "this node ({me}) is not the master node ({}) of the cluster; refusing to start",
                master.unwrap_or_else(|| "unknown".into())
            ),
        ));
    }
    crate::sys::fs::ensure_dir(&paths.socket_dir(), 0o750)
        .map_err(|e| DaemonError::body("creating the socket directory", e))?;
    let handler = Arc::new(MasterHandler {
        store: Arc::new(store),
        paths: paths.clone(),
    });
    let ex = Arc::new(smol::Executor::new());
    let sockets = [paths.master_socket(), paths.query_socket()];
    let mut listeners = Vec::new();
    for sock in &sockets {
        listeners.push(bind_socket(sock)?);
    }
    for l in listeners {
        ex.spawn(serve(l, Arc::clone(&handler), Arc::clone(&ex)))
            .detach();
    }
    log::info!(
        "masterd serving LUXI on {} and {}",
        sockets[0].display(),
        sockets[1].display()
    );
    daemon.ready();
    let shutdown = daemon.wait_for_shutdown();
    smol::block_on(ex.run(shutdown));
    for sock in &sockets {
        let _ = std::fs::remove_file(sock);
    }
    Ok(())
}

fn bind_socket(path: &Path) -> Result<UnixListener, DaemonError> {
    // A socket left by a crashed masterd would make bind fail; our pid
    // file lock guarantees no live masterd owns it.
    let _ = std::fs::remove_file(path);
    let l =
        UnixListener::bind(path).map_err(|e| DaemonError::body("binding the LUXI socket", e))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
        .map_err(|e| DaemonError::body("setting the LUXI socket mode", e))?;
    Ok(l)
}

/// Answers LUXI calls from the config snapshot.
struct MasterHandler {
    store: Arc<ConfigStore>,
    paths: crate::paths::Paths,
}

impl Handler for MasterHandler {
    async fn call(&self, method: Method, args: Value) -> Result<Value, LuxiFailure> {
        let config = self.store.snapshot();
        match method {
            Method::QueryClusterInfo => Ok(cluster_info(&config)),
            Method::QueryConfigValues => query_config_values(&config, &self.paths, &args),
            Method::QueryTags => query_tags(&config, &args),
            other => Err(LuxiFailure::protocol(format!(
                "LUXI method {} is not implemented yet in ganeti-rs {}; it comes with the job queue",
                other.name(),
                crate::constants::RELEASE_VERSION
            ))),
        }
    }
}

fn master_node_name(config: &ConfigData) -> Option<String> {
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
fn cluster_info(config: &ConfigData) -> Value {
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

/// `QueryConfigValues(fields)`: the few cluster-wide values Ganeti's clients ask for.
fn query_config_values(
    config: &ConfigData,
    paths: &crate::paths::Paths,
    args: &Value,
) -> Result<Value, LuxiFailure> {
    let fields = args
        .get(0)
        .and_then(Value::as_array)
        .ok_or_else(|| LuxiFailure::protocol("QueryConfigValues takes a list of field names"))?;
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
                return Err(LuxiFailure::prereq(
                    format!("unknown config value field {f}"),
                    ErrorKind::Inval,
                ));
            }
        };
        out.push(v);
    }
    Ok(Value::Array(out))
}

fn watcher_pause(paths: &crate::paths::Paths) -> Value {
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

/// `QueryTags(kind, name)`: the tags of the cluster or of one named object.
fn query_tags(config: &ConfigData, args: &Value) -> Result<Value, LuxiFailure> {
    let kind = args.get(0).and_then(Value::as_str);
    let name = args.get(1).and_then(Value::as_str).unwrap_or_default();
    let tags = match kind {
        Some("cluster") => Some(&config.cluster.tags),
        Some("node") => config.node_by_name(name).map(|(_, n)| &n.tags),
        Some("instance") => config.instance_by_name(name).map(|(_, i)| &i.tags),
        Some("nodegroup") => config.group_by_name(name).map(|(_, g)| &g.tags),
        Some("network") => config
            .networks
            .values()
            .find(|n| n.name == name)
            .map(|n| &n.tags),
        _ => {
            return Err(LuxiFailure::prereq(
                format!("invalid tag kind {}", args.get(0).unwrap_or(&Value::Null)),
                ErrorKind::Inval,
            ))
        }
    };
    match tags {
        Some(t) => Ok(serde_json::to_value(t).unwrap_or(Value::Null)),
        None => Err(LuxiFailure::prereq(
            format!("{} {name:?} not known", kind.unwrap_or_default()),
            ErrorKind::NoEnt,
        )),
    }
}
