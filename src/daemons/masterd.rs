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

use crate::cmdlib::cluster::{cluster_info, query_config_values};
use crate::config::objects::ConfigData;
use crate::config::store::ConfigStore;
use crate::daemons::{Daemon, DaemonError};
use crate::error::ErrorKind;
use crate::luxi::server::{serve, Handler};
use crate::luxi::{LuxiFailure, Method};
use serde_json::Value;
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
    let master = crate::cmdlib::cluster::master_node_name(&snapshot);
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
            Method::QueryConfigValues => query_config_values(&config, &self.paths, &args)
                .map_err(|e| LuxiFailure { class: "OpPrereqError".into(), args: lu_error_args(&e) }),
            Method::QueryTags => query_tags(&config, &args),
            Method::Query => run_query(&config, &args),
            Method::QueryFields => query_fields(&args),
            other => Err(LuxiFailure::protocol(format!(
                "LUXI method {} is not implemented yet in ganeti-rs {}; it comes with the job queue",
                other.name(),
                crate::constants::RELEASE_VERSION
            ))),
        }
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

/// The arguments of an LU error's encoded exception.
fn lu_error_args(e: &crate::cmdlib::LuError) -> Vec<Value> {
    e.encode()
        .get(1)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn resource_arg(args: &Value) -> Result<crate::query::Resource, LuxiFailure> {
    let what = args.get(0).and_then(Value::as_str).unwrap_or_default();
    what.parse()
        .map_err(|e: crate::query::QueryError| LuxiFailure::prereq(e.to_string(), ErrorKind::Inval))
}

fn string_list(v: Option<&Value>, what: &str) -> Result<Option<Vec<String>>, LuxiFailure> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| {
                LuxiFailure::prereq(
                    format!("{what} must be a list of strings"),
                    ErrorKind::Inval,
                )
            }),
        Some(_) => Err(LuxiFailure::prereq(
            format!("{what} must be a list of strings"),
            ErrorKind::Inval,
        )),
    }
}

/// LUXI `Query(what, fields, filter)`: Query2 over the config snapshot.
fn run_query(config: &ConfigData, args: &Value) -> Result<Value, LuxiFailure> {
    let resource = resource_arg(args)?;
    let fields = string_list(args.get(1), "the field list")?.unwrap_or_default();
    let filter = args.get(2).filter(|f| !f.is_null());
    let response = crate::query::query(resource, &fields, filter, config)
        .map_err(|e| LuxiFailure::prereq(crate::error::chain(&e), e.kind()))?;
    serde_json::to_value(response)
        .map_err(|e| LuxiFailure::protocol(format!("encoding the query result: {e}")))
}

/// LUXI `QueryFields(what, fields)`.
fn query_fields(args: &Value) -> Result<Value, LuxiFailure> {
    let resource = resource_arg(args)?;
    let fields = string_list(args.get(1), "the field list")?;
    let response = crate::query::query_fields(resource, fields.as_deref());
    serde_json::to_value(response)
        .map_err(|e| LuxiFailure::protocol(format!("encoding the field list: {e}")))
}
