//! `ganeti-noded`: the node daemon, on every node.
//!
//! Serves node RPC ([`crate::rpc`]) on port 1811 and turns each call into a
//! [`crate::backend`] function; [`NodeService`] is the dispatcher. It runs
//! in one of two modes, chosen by whether the cluster certificate
//! (`/var/lib/ganeti/server.pem`) exists:
//!
//! - **configured**: TLS pinned to `server.pem` both ways; serves
//!   [`proto::CONFIGURED_PROCEDURES`]. At start, `server.pem` and
//!   `hmac.key` must be mode 0600 or 0400, or noded refuses to start.
//! - **unconfigured** (a node waiting to join): presents its own join
//!   certificate (`/var/lib/ganeti/node-join.pem`, made once) and logs its
//!   SHA-256 so the operator can compare it with what `gnt-node add`
//!   shows; serves only [`proto::UNCONFIGURED_PROCEDURES`] (the join
//!   protocol of [`crate::join`]). After a successful `join_complete` it
//!   switches to the configured mode in place, without a restart: the TLS
//!   configuration for new connections is read from a shared slot.
//!
//! Like Ganeti's noded it locks its memory and keeps logging (to the
//! console) when the log disk fails, through [`crate::daemons::run`]. It
//! never reads `config.data` except for the `serial_no` it reports as its
//! vote in a master election (`master_info`).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::backend::{self, BackendError, PowercycleAction};
use crate::daemons::{Daemon, DaemonError};
use crate::error::chain;
use crate::join::JoinResponder;
use crate::net::hostname::IpFamily;
use crate::paths::Paths;
use crate::rpc::proto;
use crate::rpc::{Peer, RemoteError, Service};
use crate::sys::cmd::{RealRunner, Runner};

/// How long noded waits after replying before it powercycles the node or
/// leaves the cluster, so the reply reaches the master first.
pub const AFTER_REPLY_DELAY: Duration = Duration::from_secs(1);

/// The node's join certificate, used while unconfigured.
pub fn join_cert_file(paths: &Paths) -> PathBuf {
    paths.data_dir().join("node-join.pem")
}

/// Entry point.
pub fn main(_program: &str, args: &[String]) -> u8 {
    crate::daemons::run("ganeti-noded", args, run)
}

/// Switches the server to the configured mode once the cluster files are
/// installed; returns why it could not.
pub type Reconfigure = Box<dyn Fn(&Paths) -> Result<(), String> + Send + Sync>;

/// What a [`NodeService`] needs besides the node's paths.
pub struct NodeServiceOptions {
    /// This program, for `daemon-util` (the `daemons` procedure).
    pub exe: PathBuf,
    /// Runs `ip`, `reboot`, `daemon-util`, the master IP script.
    pub runner: Arc<dyn Runner>,
    /// What `powercycle` does.
    pub powercycle: PowercycleAction,
    /// Joined or waiting to join.
    pub state: NodeState,
    /// Called after the join files are installed.
    pub reconfigure: Reconfigure,
}

/// Whether the node is part of a cluster.
#[derive(Debug, Clone)]
pub enum NodeState {
    /// Waiting to join: only the join procedures are served.
    Joining(Arc<JoinResponder>),
    /// Part of a cluster: every caller must present the cluster
    /// certificate, whose SHA-256 (hex) this is.
    Configured {
        /// SHA-256 of the certificate in `server.pem`.
        cluster_cert_sha256: String,
    },
}

/// Answers node RPC calls: checks the procedure is served in the current
/// mode, parses its arguments and runs the backend function.
pub struct NodeService {
    paths: Paths,
    name: String,
    exe: PathBuf,
    runner: Arc<dyn Runner>,
    powercycle: PowercycleAction,
    state: RwLock<NodeState>,
    reconfigure: Reconfigure,
    stop: smol::channel::Sender<()>,
}

impl std::fmt::Debug for NodeService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeService")
            .field("name", &self.name)
            .field("configured", &self.is_configured())
            .finish_non_exhaustive()
    }
}

/// A procedure that takes no arguments.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

/// Only `serial_no` of `config.data` (the vote in a master election).
#[derive(serde::Deserialize)]
struct ConfigSerial {
    serial_no: u64,
}

impl NodeService {
    /// A service for the node under `paths`; the receiver closes when the
    /// service wants the daemon to stop (after `leave_cluster`).
    pub fn new(
        paths: &Paths,
        options: NodeServiceOptions,
    ) -> (NodeService, smol::channel::Receiver<()>) {
        let (stop, stopped) = smol::channel::bounded(1);
        let service = NodeService {
            paths: paths.clone(),
            name: paths.hostname(),
            exe: options.exe,
            runner: options.runner,
            powercycle: options.powercycle,
            state: RwLock::new(options.state),
            reconfigure: options.reconfigure,
            stop,
        };
        (service, stopped)
    }

    /// Whether the node is part of a cluster (serves the configured set).
    pub fn is_configured(&self) -> bool {
        matches!(self.state_now(), NodeState::Configured { .. })
    }

    fn state_now(&self) -> NodeState {
        self.state.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn dispatch(&self, procedure: &str, args: Value, peer: &Peer) -> Result<Value, RemoteError> {
        let (joining, served) = match self.state_now() {
            NodeState::Joining(r) => (Some(r), proto::UNCONFIGURED_PROCEDURES),
            NodeState::Configured {
                cluster_cert_sha256,
            } => {
                // New connections are pinned by TLS; this also shuts out a
                // connection opened while the node was still joining.
                if peer.cert_sha256 != cluster_cert_sha256 {
                    return Err(RemoteError::new(format!(
                        "procedure {procedure:?} refused: the caller did not present the cluster certificate (reconnect)"
                    )));
                }
                (None, proto::CONFIGURED_PROCEDURES)
            }
        };
        let instance_proc = proto::INSTANCE_PROCEDURES.contains(&procedure);
        let known = proto::CONFIGURED_PROCEDURES.contains(&procedure)
            || proto::UNCONFIGURED_PROCEDURES.contains(&procedure)
            || instance_proc;
        if !known {
            return Err(RemoteError::new(format!("unknown procedure {procedure:?}")));
        }
        if !(served.contains(&procedure) || (instance_proc && joining.is_none())) {
            let state = if joining.is_some() {
                "is not part of a cluster yet (join it first)"
            } else {
                "is already part of a cluster"
            };
            return Err(RemoteError::new(format!(
                "procedure {procedure:?} refused: node {} {state}",
                self.name
            )));
        }
        let failed = |e: BackendError| RemoteError::new(format!("{procedure}: {}", chain(&e)));
        match procedure {
            proto::VERSION => {
                parse_args::<NoArgs>(procedure, args)?;
                to_value(&proto::VersionInfo {
                    protocol: crate::rpc::PROTOCOL_VERSION,
                    software: crate::constants::RELEASE_VERSION.to_string(),
                    name: self.name.clone(),
                    configured: joining.is_none(),
                })
            }
            proto::NODE_INFO => {
                let a: proto::NodeInfoArgs = parse_args(procedure, args)?;
                to_value(
                    &backend::node_info(&self.paths, &self.name, &a.checksum_paths)
                        .map_err(failed)?,
                )
            }
            proto::UPLOAD_FILES => {
                let a: proto::UploadFilesArgs = parse_args(procedure, args)?;
                backend::upload_files(&self.paths, &a.files).map_err(failed)?;
                Ok(Value::Null)
            }
            proto::REMOVE_FILES => {
                let a: proto::RemoveFilesArgs = parse_args(procedure, args)?;
                backend::remove_files(&self.paths, &a.paths).map_err(failed)?;
                Ok(Value::Null)
            }
            proto::WRITE_SSCONF => {
                let a: proto::WriteSsconfArgs = parse_args(procedure, args)?;
                let known =
                    |k: &str| crate::ssconf::KEYS.contains(&k) || k.starts_with("hvparams_");
                backend::write_ssconf(&self.paths, &a.files, &known).map_err(failed)?;
                Ok(Value::Null)
            }
            proto::RUN_COMMAND => {
                let a: proto::RunCommandArgs = parse_args(procedure, args)?;
                log::info!("run_command from={} command={:?}", peer.address, a.command);
                to_value(&backend::run_command(&a.command, a.timeout_secs).map_err(failed)?)
            }
            proto::POWERCYCLE => {
                let a: proto::PowercycleArgs = parse_args(procedure, args)?;
                self.powercycle_soon(&a.hypervisor, peer);
                Ok(Value::String(format!(
                    "powercycle of {} scheduled in {} s",
                    self.name,
                    AFTER_REPLY_DELAY.as_secs()
                )))
            }
            proto::MASTER_INFO => {
                parse_args::<NoArgs>(procedure, args)?;
                to_value(&self.master_info())
            }
            proto::MASTER_IP => {
                let a: proto::MasterIpArgs = parse_args(procedure, args)?;
                backend::master_ip(&self.paths, &a, self.runner.as_ref()).map_err(failed)?;
                Ok(Value::Null)
            }
            proto::DAEMONS => {
                let a: proto::DaemonsArgs = parse_args(procedure, args)?;
                backend::daemons(&self.exe, &a.action, &a.daemons, self.runner.as_ref())
                    .map_err(failed)?;
                Ok(Value::Null)
            }
            proto::LEAVE_CLUSTER => {
                parse_args::<NoArgs>(procedure, args)?;
                self.leave_soon(peer);
                Ok(Value::Null)
            }
            proto::JOIN_HELLO => {
                let a: proto::JoinHello = parse_args(procedure, args)?;
                let responder = joining.ok_or_else(|| RemoteError::new("not joining"))?;
                let reply = responder
                    .hello(&a, peer)
                    .map_err(|e| RemoteError::new(format!("{procedure}: {e}")))?;
                to_value(&reply)
            }
            proto::JOIN_COMPLETE => {
                let a: proto::JoinComplete = parse_args(procedure, args)?;
                let responder = joining.ok_or_else(|| RemoteError::new("not joining"))?;
                let mut cluster_cert_sha256 = String::new();
                responder
                    .complete(&a, peer, |files| {
                        cluster_cert_sha256 = self.install_join_files(files, peer)?;
                        Ok(())
                    })
                    .map_err(|e| RemoteError::new(format!("{procedure}: {e}")))?;
                *self.state.write().unwrap_or_else(|p| p.into_inner()) = NodeState::Configured {
                    cluster_cert_sha256,
                };
                log::info!("now configured; serving the cluster procedures");
                Ok(Value::Null)
            }
            other => match backend::dispatch_instance_procedure(&self.paths, other, args) {
                Some(result) => result.map_err(|e| RemoteError::new(format!("{other}: {e}"))),
                None => Err(RemoteError::new(format!(
                    "procedure {other:?} is not implemented by this node"
                ))),
            },
        }
    }

    /// Installs the join files; the cluster certificate among them must be
    /// the one the master presented on this connection. Returns its SHA-256.
    fn install_join_files(
        &self,
        files: &[proto::FileUpload],
        peer: &Peer,
    ) -> Result<String, String> {
        let cert = files
            .iter()
            .find(|f| self.paths.under_root(&f.path) == self.paths.noded_cert())
            .ok_or("the files do not include server.pem")?;
        let pem = crate::rpc::b64::decode(&cert.data)
            .map_err(|e| format!("server.pem is not valid base64: {e}"))?;
        let fingerprint = cert_fingerprint(&String::from_utf8_lossy(&pem))
            .ok_or("server.pem holds no certificate")?;
        if fingerprint != peer.cert_sha256 {
            return Err(format!(
                "server.pem (sha256 {fingerprint}) is not the certificate the master presented ({})",
                peer.cert_sha256
            ));
        }
        backend::upload_files(&self.paths, files).map_err(|e| chain(&e))?;
        (self.reconfigure)(&self.paths)?;
        Ok(fingerprint)
    }

    fn master_info(&self) -> proto::MasterInfo {
        let master = crate::ssconf::master_node(&self.paths).ok();
        let config = self.paths.config_file();
        let config_serial = match std::fs::read(&config) {
            Ok(raw) => match serde_json::from_slice::<ConfigSerial>(&raw) {
                Ok(c) => Some(c.serial_no),
                Err(e) => {
                    log::warn!("master_info: no serial_no in {}: {e}", config.display());
                    None
                }
            },
            Err(_) => None,
        };
        proto::MasterInfo {
            name: self.name.clone(),
            master,
            config_serial,
        }
    }

    fn powercycle_soon(&self, hypervisor: &str, peer: &Peer) {
        log::warn!(
            "powercycle requested from={} hypervisor={hypervisor} action={:?}",
            peer.address,
            self.powercycle
        );
        let action = self.powercycle.clone();
        let paths = self.paths.clone();
        let runner = Arc::clone(&self.runner);
        std::thread::spawn(move || {
            std::thread::sleep(AFTER_REPLY_DELAY);
            if let Err(e) = action.perform(&paths, runner.as_ref()) {
                log::error!("powercycle failed: {}", chain(&e));
            }
        });
    }

    fn leave_soon(&self, peer: &Peer) {
        log::warn!("leaving the cluster, requested from={}", peer.address);
        let paths = self.paths.clone();
        let stop = self.stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(AFTER_REPLY_DELAY);
            if let Err(e) = backend::leave_cluster(&paths) {
                log::error!("leaving the cluster: {}", chain(&e));
            }
            log::info!("left the cluster; stopping");
            stop.close();
        });
    }
}

impl Service for NodeService {
    fn handle(&self, procedure: &str, args: Value, peer: &Peer) -> Result<Value, RemoteError> {
        let result = self.dispatch(procedure, args, peer);
        if let Err(e) = &result {
            log::warn!(
                "rpc failed procedure={procedure} from={} error={e}",
                peer.address
            );
        }
        result
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, RemoteError> {
    serde_json::to_value(v).map_err(|e| RemoteError::new(format!("encoding the result: {e}")))
}

/// Parses a procedure's arguments (a JSON object, `null` meaning none),
/// naming the procedure and the offending field on failure.
fn parse_args<T: DeserializeOwned>(procedure: &str, args: Value) -> Result<T, RemoteError> {
    let args = match args {
        Value::Null => Value::Object(serde_json::Map::new()),
        Value::Object(_) => args,
        other => {
            return Err(RemoteError::new(format!(
                "{procedure}: arguments must be a JSON object, got {}",
                json_type(&other)
            )))
        }
    };
    // Parsed from pretty text so the error's line number tells which
    // top-level field was wrong (serde_json's messages for a bad type do
    // not name the field).
    let text = serde_json::to_string_pretty(&args)
        .map_err(|e| RemoteError::new(format!("{procedure}: {e}")))?;
    serde_json::from_str(&text).map_err(|e| {
        let message = e.to_string();
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_string();
        match field_at_line(&text, e.line()) {
            Some(field) if !message.contains(&format!("`{field}`")) => RemoteError::new(format!(
                "{procedure}: invalid argument `{field}`: {message}"
            )),
            _ => RemoteError::new(format!("{procedure}: invalid arguments: {message}")),
        }
    })
}

/// The top-level key whose value spans `line` (1-based) of pretty JSON.
fn field_at_line(text: &str, line: usize) -> Option<String> {
    text.lines()
        .take(line)
        .filter_map(|l| {
            let key = l.strip_prefix("  \"")?;
            if key.starts_with(' ') {
                return None;
            }
            let end = key.find("\": ")?;
            Some(key[..end].to_string())
        })
        .last()
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// SHA-256 of the first certificate in PEM text.
fn cert_fingerprint(pem: &str) -> Option<String> {
    backend::pem_certificates(pem)
        .first()
        .map(|der| crate::rpc::tls::cert_sha256(der))
}

/// Refuses a key file readable or writable by others: it must be 0600 or 0400.
fn check_key_file(path: &Path) -> Result<(), String> {
    let mode = crate::sys::fs::mode_of(path).map_err(|e| chain(&e))?;
    if mode != 0o600 && mode != 0o400 {
        return Err(format!(
            "{} has mode {mode:04o}; it must be 0600 or 0400 (chmod 600 {})",
            path.display(),
            path.display()
        ));
    }
    Ok(())
}

/// The address noded listens on: `-b` if given; in a virtual cluster the
/// node's own address; else the wildcard of the cluster's address family.
fn bind_address(arg: Option<&str>, paths: &Paths) -> Result<IpAddr, String> {
    // ssconf_primary_ip_family holds the socket family number: 10 is AF_INET6.
    let family = match crate::ssconf::read(paths, "primary_ip_family") {
        Ok(f) if f.trim() == IpFamily::V6.af_number().to_string() => IpFamily::V6,
        _ => IpFamily::V4,
    };
    super::bind_address(arg, paths, family)
}

/// The TLS configuration new connections get; swapped when the node joins.
type TlsSlot = Arc<RwLock<Arc<rustls::ServerConfig>>>;

fn pinned_config(paths: &Paths) -> Result<(Arc<rustls::ServerConfig>, String), String> {
    let cert = paths.noded_cert();
    check_key_file(&cert)?;
    let hmac = paths.confd_hmac_key();
    if hmac.exists() {
        check_key_file(&hmac)?;
    }
    let text =
        std::fs::read_to_string(&cert).map_err(|e| format!("reading {}: {e}", cert.display()))?;
    let fingerprint = cert_fingerprint(&text)
        .ok_or_else(|| format!("{} holds no certificate", cert.display()))?;
    let id = crate::rpc::tls::load_identity(&cert).map_err(|e| chain(&e))?;
    let config = crate::rpc::tls::server_config_pinned(&id).map_err(|e| chain(&e))?;
    Ok((config, fingerprint))
}

/// The join certificate (made once) and its TLS configuration.
fn join_setup(paths: &Paths) -> Result<(Arc<rustls::ServerConfig>, JoinResponder), String> {
    let pem = join_cert_file(paths);
    if !pem.exists() {
        crate::sys::fs::ensure_dir(&paths.data_dir(), 0o700).map_err(|e| chain(&e))?;
        crate::crypto::generate_cert(&pem, &paths.hostname()).map_err(|e| chain(&e))?;
        log::info!("generated the node join certificate {}", pem.display());
    }
    check_key_file(&pem)?;
    let text =
        std::fs::read_to_string(&pem).map_err(|e| format!("reading {}: {e}", pem.display()))?;
    let fingerprint =
        cert_fingerprint(&text).ok_or_else(|| format!("{} holds no certificate", pem.display()))?;
    log::info!(
        "not part of a cluster yet; waiting to join with certificate sha256={fingerprint} token_file={}",
        JoinResponder::token_file(paths).display()
    );
    let id = crate::rpc::tls::load_identity(&pem).map_err(|e| chain(&e))?;
    let config = crate::rpc::tls::server_config_join(&id).map_err(|e| chain(&e))?;
    Ok((config, JoinResponder::new(paths, &fingerprint)))
}

fn run(daemon: &Daemon) -> Result<(), DaemonError> {
    let paths = daemon.paths.clone();
    let action_text = daemon.args.powercycle_action.as_deref().unwrap_or("reboot");
    let powercycle = PowercycleAction::parse(action_text)
        .map_err(|e| DaemonError::body("checking --powercycle-action", e))?;
    let exe =
        std::env::current_exe().map_err(|e| DaemonError::body("finding this program's path", e))?;
    let configured = paths.noded_cert().exists();
    let (initial, state) = if configured {
        let (config, cluster_cert_sha256) = pinned_config(&paths)
            .map_err(|e| DaemonError::body("loading the cluster certificate", e))?;
        (
            config,
            NodeState::Configured {
                cluster_cert_sha256,
            },
        )
    } else {
        let (config, responder) =
            join_setup(&paths).map_err(|e| DaemonError::body("preparing to join a cluster", e))?;
        (config, NodeState::Joining(Arc::new(responder)))
    };
    let slot: TlsSlot = Arc::new(RwLock::new(initial));
    let reconfigure_slot = Arc::clone(&slot);
    let reconfigure: Reconfigure = Box::new(move |paths: &Paths| {
        let (config, _) = pinned_config(paths)?;
        *reconfigure_slot.write().unwrap_or_else(|p| p.into_inner()) = config;
        Ok(())
    });
    let (service, stopped) = NodeService::new(
        &paths,
        NodeServiceOptions {
            exe,
            runner: Arc::new(RealRunner),
            powercycle,
            state,
            reconfigure,
        },
    );
    let ip = bind_address(daemon.args.bind.as_deref(), &paths)
        .map_err(|e| DaemonError::body("choosing the address to listen on", e))?;
    let addr = SocketAddr::new(
        ip,
        daemon
            .args
            .port
            .unwrap_or_else(|| crate::net::noded_port(&daemon.paths)),
    );
    let listener = smol::block_on(smol::net::TcpListener::bind(addr))
        .map_err(|e| DaemonError::body(format!("binding {addr}"), e))?;
    let bound = listener.local_addr().map_or(addr, |a| a);
    log::info!(
        "noded listening on {bound} mode={}",
        if configured {
            "configured"
        } else {
            "unconfigured"
        }
    );
    let tls: crate::rpc::server::TlsSource =
        Arc::new(move || Arc::clone(&slot.read().unwrap_or_else(|p| p.into_inner())));
    daemon.ready();
    let shutdown = daemon.wait_for_shutdown();
    let served = smol::block_on(async move {
        let serve = async {
            crate::rpc::server::serve(listener, tls, Arc::new(service))
                .await
                .err()
        };
        let stop = async {
            shutdown.await;
            None
        };
        let left = async {
            let _ = stopped.recv().await;
            None
        };
        smol::future::or(serve, smol::future::or(stop, left)).await
    });
    match served {
        Some(e) => Err(DaemonError::body(format!("serving RPC on {bound}"), e)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::b64;
    use crate::sys::cmd::RecordingRunner;
    use serde_json::json;

    fn node(tag: &str) -> Paths {
        crate::paths::test_support::temp_node(
            &format!("noded-{tag}"),
            "node1",
            &["/var/lib/ganeti", "/etc/ganeti"],
        )
    }

    fn cleanup(p: &Paths) {
        crate::paths::test_support::remove_temp_node(p);
    }

    fn peer() -> Peer {
        Peer {
            address: "127.0.0.1:5555".into(),
            cert_sha256: "ab".repeat(32),
        }
    }

    struct Fixture {
        service: NodeService,
        stopped: smol::channel::Receiver<()>,
        runner: Arc<RecordingRunner>,
        reconfigured: Arc<std::sync::atomic::AtomicUsize>,
    }

    fn configured() -> NodeState {
        NodeState::Configured {
            cluster_cert_sha256: peer().cert_sha256,
        }
    }

    fn joining(p: &Paths, node_cert: &str) -> NodeState {
        NodeState::Joining(Arc::new(JoinResponder::new(p, node_cert)))
    }

    fn service(p: &Paths, state: NodeState) -> Fixture {
        let runner = Arc::new(RecordingRunner::new());
        let reconfigured = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = Arc::clone(&reconfigured);
        let record = p.root().join("powercycle.log");
        let (service, stopped) = NodeService::new(
            p,
            NodeServiceOptions {
                exe: PathBuf::from("/usr/lib/ganeti-rs/ganeti"),
                runner: runner.clone(),
                powercycle: PowercycleAction::Record(record),
                state,
                reconfigure: Box::new(move |_| {
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Ok(())
                }),
            },
        );
        Fixture {
            service,
            stopped,
            runner,
            reconfigured,
        }
    }

    fn call(f: &Fixture, procedure: &str, args: Value) -> Result<Value, RemoteError> {
        f.service.handle(procedure, args, &peer())
    }

    /// Polls `cond` until it holds or a generous deadline passes.
    fn eventually(what: &str, cond: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !cond() {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn unknown_and_wrong_mode_procedures_are_named() {
        let p = node("unknown");
        let f = service(&p, configured());
        let e = call(&f, "frobnicate", json!({})).unwrap_err();
        assert!(e.0.contains("frobnicate"), "{e}");
        let e = call(&f, proto::JOIN_HELLO, json!({})).unwrap_err();
        assert!(e.0.contains("already part of a cluster"), "{e}");
        let v = call(&f, proto::VERSION, Value::Null).unwrap();
        assert_eq!(v["configured"], json!(true));
        assert_eq!(v["name"], json!("node1"));

        let j = service(&p, joining(&p, &"cd".repeat(32)));
        let e = call(
            &j,
            proto::RUN_COMMAND,
            json!({"command": "id", "timeout_secs": 5}),
        )
        .unwrap_err();
        assert!(e.0.contains("not part of a cluster"), "{e}");
        assert_eq!(
            call(&j, proto::VERSION, json!({})).unwrap()["configured"],
            json!(false)
        );
        cleanup(&p);
    }

    #[test]
    fn malformed_arguments_name_procedure_and_field() {
        let p = node("malformed");
        let f = service(&p, configured());
        let e = call(
            &f,
            proto::RUN_COMMAND,
            json!({"command": "true", "timeout_secs": "soon"}),
        )
        .unwrap_err();
        assert!(
            e.0.contains("run_command") && e.0.contains("timeout_secs"),
            "{e}"
        );
        let e = call(&f, proto::RUN_COMMAND, json!({"command": "true"})).unwrap_err();
        assert!(e.0.contains("timeout_secs"), "{e}");
        let e = call(
            &f,
            proto::MASTER_IP,
            json!({"action": "start", "ip": "1.2.3.4", "netmask": 300,
            "netdev": "br0", "family": 4, "external_script": false}),
        )
        .unwrap_err();
        assert!(e.0.contains("netmask"), "{e}");
        let e = call(&f, proto::UPLOAD_FILES, json!({"files": [], "extra": 1})).unwrap_err();
        assert!(e.0.contains("extra"), "{e}");
        let e = call(&f, proto::NODE_INFO, json!([1, 2])).unwrap_err();
        assert!(e.0.contains("must be a JSON object"), "{e}");
        assert!(call(&f, proto::NODE_INFO, json!({})).is_ok());
        cleanup(&p);
    }

    #[test]
    fn upload_through_the_service_refuses_traversal_before_writing() {
        let p = node("upload");
        let f = service(&p, configured());
        let files = json!({"files": [
            {"path": "/var/lib/ganeti/config.data", "data": b64::encode(b"{}"), "mode": 0o640},
            {"path": "/var/lib/ganeti/../../etc/shadow", "data": b64::encode(b"x"), "mode": 0o600},
        ]});
        let e = call(&f, proto::UPLOAD_FILES, files).unwrap_err();
        assert!(e.0.contains("/etc/shadow"), "{e}");
        assert!(!p.config_file().exists());
        let ok = json!({"files": [
            {"path": "/var/lib/ganeti/config.data", "data": b64::encode(b"{\"serial_no\": 7}"), "mode": 0o640},
        ]});
        call(&f, proto::UPLOAD_FILES, ok).unwrap();
        let ss = json!({"files": {"master_node": "node1\n", "cluster_name": "c\n"}});
        call(&f, proto::WRITE_SSCONF, ss).unwrap();
        let bad = json!({"files": {"not_a_key": "x"}});
        assert!(call(&f, proto::WRITE_SSCONF, bad)
            .unwrap_err()
            .0
            .contains("not_a_key"));
        let info = call(&f, proto::MASTER_INFO, json!({})).unwrap();
        assert_eq!(
            info,
            json!({"name": "node1", "master": "node1", "config_serial": 7})
        );
        cleanup(&p);
    }

    #[test]
    fn run_command_master_ip_and_daemons_go_to_the_backend() {
        let p = node("cmd");
        let f = service(&p, configured());
        let out = call(
            &f,
            proto::RUN_COMMAND,
            json!({"command": "echo hi; exit 2", "timeout_secs": 30}),
        )
        .unwrap();
        assert_eq!(out, json!({"exit_code": 2, "output": "hi\n"}));
        call(
            &f,
            proto::MASTER_IP,
            json!({"action": "start", "ip": "192.0.2.1", "netmask": 24,
            "netdev": "eth0", "family": 4, "external_script": false}),
        )
        .unwrap();
        call(
            &f,
            proto::DAEMONS,
            json!({"action": "stop", "daemons": ["ganeti-masterd"]}),
        )
        .unwrap();
        let calls = f.runner.calls();
        assert_eq!(calls[0].argv[..3], ["ip", "address", "add"]);
        assert_eq!(
            calls[1].argv,
            [
                "/usr/lib/ganeti-rs/ganeti",
                "daemon-util",
                "stop",
                "ganeti-masterd"
            ]
        );
        assert!(call(
            &f,
            proto::DAEMONS,
            json!({"action": "stop", "daemons": ["ganeti-noded"]})
        )
        .is_err());
        cleanup(&p);
    }

    #[test]
    fn powercycle_replies_then_records() {
        let p = node("powercycle");
        let f = service(&p, configured());
        let record = p.root().join("powercycle.log");
        let reply = call(&f, proto::POWERCYCLE, json!({"hypervisor": "fake"})).unwrap();
        assert!(reply.as_str().unwrap().contains("scheduled"));
        eventually("the powercycle record", || {
            std::fs::read_to_string(&record).is_ok_and(|t| t.starts_with("powercycle "))
        });
        cleanup(&p);
    }

    #[test]
    fn leave_cluster_removes_files_then_stops() {
        let p = node("leave");
        let f = service(&p, configured());
        for file in [
            p.noded_cert(),
            p.confd_hmac_key(),
            p.config_file(),
            p.ssconf_file("master_node"),
        ] {
            crate::sys::fs::atomic_write(&file, b"x", 0o600).unwrap();
        }
        call(&f, proto::LEAVE_CLUSTER, json!({})).unwrap();
        eventually("noded to stop", || f.stopped.is_closed());
        assert!(!p.noded_cert().exists() && !p.confd_hmac_key().exists());
        assert!(!p.config_file().exists() && !p.ssconf_file("master_node").exists());
        cleanup(&p);
    }

    #[test]
    fn join_switches_to_configured_in_place() {
        use crate::join::{join_node, TokenStore};
        use crate::rpc::{NodeResult, NodeRpc, RpcError, Target};
        let master = node("join-master");
        let p = node("join-node");
        let token = TokenStore::new(&master)
            .issue(Duration::from_secs(60))
            .unwrap();
        crate::sys::fs::atomic_write(&JoinResponder::token_file(&p), token.as_bytes(), 0o600)
            .unwrap();
        let node_cert = "cd".repeat(32);
        let f = service(&p, joining(&p, &node_cert));
        // The cluster certificate the master presents as TLS client.
        let pem_of = |paths: &Paths| {
            crate::crypto::generate_cert(&paths.noded_cert(), "ganeti.example.com").unwrap();
            std::fs::read_to_string(paths.noded_cert()).unwrap()
        };
        let cluster_pem = pem_of(&master);
        let master_peer = Peer {
            address: "127.0.0.1:4444".into(),
            cert_sha256: cert_fingerprint(&cluster_pem).unwrap(),
        };

        /// Hands join calls straight to the service, as the transport would.
        struct Loop<'a>(&'a Fixture, String, Peer);
        impl NodeRpc for Loop<'_> {
            fn call_each(
                &self,
                _: &str,
                c: &[(Target, Value)],
                _: Duration,
            ) -> Vec<(String, NodeResult)> {
                c.iter()
                    .map(|(t, _)| {
                        let node = t.name.clone();
                        (t.name.clone(), Err(RpcError::Offline { node }))
                    })
                    .collect()
            }
            fn join_call(
                &self,
                procedure: &str,
                t: &Target,
                args: &Value,
                _: Duration,
            ) -> Result<(Value, String), RpcError> {
                self.0
                    .service
                    .handle(procedure, args.clone(), &self.2)
                    .map(|v| (v, self.1.clone()))
                    .map_err(|e| RpcError::Remote {
                        node: t.name.clone(),
                        message: e.0,
                    })
            }
            fn own_cert_sha256(&self) -> String {
                self.2.cert_sha256.clone()
            }
        }
        let files = |pem: &str| {
            vec![
                proto::FileUpload {
                    path: "/var/lib/ganeti/server.pem".into(),
                    data: b64::encode(pem.as_bytes()),
                    mode: 0o600,
                },
                proto::FileUpload {
                    path: "/var/lib/ganeti/hmac.key".into(),
                    data: b64::encode(b"key"),
                    mode: 0o600,
                },
            ]
        };
        let rpc = Loop(&f, node_cert.clone(), master_peer.clone());
        let store = TokenStore::new(&master);
        let join = |files| {
            let target = Target::new("node1", "127.0.0.1");
            join_node(&rpc, &target, &store, "c", files, Duration::from_secs(5))
        };
        // A server.pem other than the one the master presents is refused,
        // and the token survives for another try.
        let other = node("join-other");
        let err = join(files(&pem_of(&other))).unwrap_err().to_string();
        assert!(
            err.contains("not the certificate the master presented"),
            "{err}"
        );
        assert!(!p.noded_cert().exists() && !f.service.is_configured());

        assert_eq!(join(files(&cluster_pem)).unwrap(), node_cert);
        assert!(f.service.is_configured());
        assert_eq!(f.reconfigured.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(
            std::fs::read_to_string(p.noded_cert()).unwrap(),
            cluster_pem
        );
        let hello = json!({"master_nonce": "ab".repeat(16), "cluster_name": "c"});
        let e = f
            .service
            .handle(proto::JOIN_HELLO, hello, &master_peer)
            .unwrap_err();
        assert!(e.0.contains("already part of a cluster"), "{e}");
        assert!(f
            .service
            .handle(proto::NODE_INFO, json!({}), &master_peer)
            .is_ok());
        // A connection that did not present the cluster certificate (one
        // opened in join mode) is shut out now.
        let e = call(&f, proto::NODE_INFO, json!({})).unwrap_err();
        assert!(e.0.contains("cluster certificate"), "{e}");
        cleanup(&master);
        cleanup(&other);
        cleanup(&p);
    }

    #[test]
    fn loose_key_modes_refuse_the_configured_mode() {
        let p = node("modes");
        crate::sys::fs::atomic_write(&p.noded_cert(), b"pem", 0o644).unwrap();
        let e = pinned_config(&p).unwrap_err();
        assert!(e.contains("server.pem") && e.contains("0644"), "{e}");
        crate::sys::fs::atomic_write(&p.noded_cert(), b"pem", 0o400).unwrap();
        crate::sys::fs::atomic_write(&p.confd_hmac_key(), b"k", 0o640).unwrap();
        let e = pinned_config(&p).unwrap_err();
        assert!(e.contains("hmac.key") && e.contains("0640"), "{e}");
        cleanup(&p);
    }

    #[test]
    fn bind_address_follows_flag_then_virtual_hosts_and_family() {
        let p = node("bind");
        assert_eq!(
            bind_address(Some("127.0.0.9"), &p).unwrap(),
            "127.0.0.9".parse::<IpAddr>().unwrap()
        );
        assert!(bind_address(Some("node1"), &p).is_err());
        let hosts = p.root().parent().unwrap().join("hosts");
        crate::sys::fs::atomic_write(&hosts, b"127.0.0.5 node1\n::1 node1\n", 0o644).unwrap();
        assert_eq!(
            bind_address(None, &p).unwrap(),
            "127.0.0.5".parse::<IpAddr>().unwrap()
        );
        crate::sys::fs::atomic_write(&p.ssconf_file("primary_ip_family"), b"10\n", 0o444).unwrap();
        assert_eq!(
            bind_address(None, &p).unwrap(),
            "::1".parse::<IpAddr>().unwrap()
        );
        cleanup(&p);
    }

    /// A tiny deterministic generator (xorshift) so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn value(&mut self, depth: u32) -> Value {
            let pick = if depth > 2 {
                self.below(5)
            } else {
                self.below(7)
            };
            match pick {
                0 => Value::Null,
                1 => Value::Bool(self.below(2) == 0),
                2 => json!(self.next() as i64 >> self.below(64)),
                3 => json!(f64::from(u32::try_from(self.below(1000)).unwrap()) / 7.0 - 50.0),
                4 => {
                    let words = [
                        "",
                        "start",
                        "stop",
                        "/etc/shadow",
                        "../..",
                        "ganeti-rapi",
                        "1.2.3.4",
                        "zz",
                        "\u{0}",
                    ];
                    json!(words[usize::try_from(self.below(words.len() as u64)).unwrap()])
                }
                5 => Value::Array((0..self.below(4)).map(|_| self.value(depth + 1)).collect()),
                _ => {
                    let keys = [
                        "files",
                        "path",
                        "data",
                        "mode",
                        "command",
                        "timeout_secs",
                        "action",
                        "ip",
                        "netmask",
                        "netdev",
                        "family",
                        "external_script",
                        "daemons",
                        "paths",
                        "checksum_paths",
                        "hypervisor",
                        "master_nonce",
                        "cluster_name",
                        "node_nonce",
                        "mac",
                        "junk",
                    ];
                    let mut m = serde_json::Map::new();
                    for _ in 0..self.below(6) {
                        let k = keys[usize::try_from(self.below(keys.len() as u64)).unwrap()];
                        m.insert(k.to_string(), self.value(depth + 1));
                    }
                    Value::Object(m)
                }
            }
        }
    }

    #[test]
    fn junk_arguments_never_panic() {
        let p = node("junk");
        let configured = service(&p, configured());
        let joining = service(&p, joining(&p, &"cd".repeat(32)));
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let all: Vec<&str> = proto::CONFIGURED_PROCEDURES
            .iter()
            .chain(proto::UNCONFIGURED_PROCEDURES)
            .copied()
            .filter(|p| *p != proto::POWERCYCLE && *p != proto::LEAVE_CLUSTER)
            .collect();
        for _ in 0..3000 {
            let procedure = all[usize::try_from(rng.below(all.len() as u64)).unwrap()];
            let args = rng.value(0);
            // Junk only: a well-formed run_command would run a command.
            if procedure == proto::RUN_COMMAND && args.get("command").is_some_and(Value::is_string)
            {
                continue;
            }
            let _ = call(&configured, procedure, args.clone());
            let _ = call(&joining, procedure, args);
        }
        cleanup(&p);
    }
}
