//! Getting the master's files to the other nodes: the config writer's
//! replication ([`RpcReplicator`]: `config.data` to master candidates,
//! ssconf to every node, after each config update), the ancillary files of
//! `gnt-cluster redist-conf` (design 2.1) and [`LuClusterRedistConf`].
//!
//! Runs in masterd. Reads files under the master's own data and config
//! directories; every other node is reached over [`NodeRpc`], one fan-out
//! call per procedure, and a node that fails yields a warning, never an
//! error: the change is already committed on the master.

use super::node::{online_candidates_except_master, online_nodes_except_master, target};
use super::{LogicalUnit, LuContext, LuError};
use crate::config::objects::{ConfigData, Node};
use crate::config::store::Replicator;
use crate::error::ErrorKind;
use crate::opcodes::OpClusterRedistConf;
use crate::paths::Paths;
use crate::rpc::proto::{self, FileUpload, UploadFilesArgs, WriteSsconfArgs};
use crate::rpc::{b64, NodeRpc, Target};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// `config.data` as every node names it.
pub const CONFIG_DATA: &str = "/var/lib/ganeti/config.data";
/// The cluster certificate (key and certificate).
pub const SERVER_PEM: &str = "/var/lib/ganeti/server.pem";
/// The confd HMAC key.
pub const HMAC_KEY: &str = "/var/lib/ganeti/hmac.key";
/// The cluster domain secret (instance moves between clusters).
pub const CLUSTER_DOMAIN_SECRET: &str = "/var/lib/ganeti/cluster-domain-secret";
/// The RAPI certificate.
pub const RAPI_PEM: &str = "/var/lib/ganeti/rapi.pem";
/// The RAPI users file.
pub const RAPI_USERS: &str = "/var/lib/ganeti/rapi/users";
/// The admin's list of extra files to keep equal on all nodes.
pub const REDIST_FILES_LIST: &str = "/etc/ganeti/redist-files";

/// Mode of `config.data` on candidates (as on the master).
const CONFIG_DATA_MODE: u32 = 0o640;
/// Mode of the secrets a joining node receives.
const SECRET_MODE: u32 = 0o600;
/// Time allowed for pushing files (config.data can be megabytes).
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// The [`Replicator`] masterd installs: after every config update,
/// `config.data` to the online candidates and ssconf to the online nodes
/// (neither to the master, which wrote its own), the two fan-outs running
/// at once.
pub struct RpcReplicator {
    rpc: Arc<dyn NodeRpc>,
}

impl RpcReplicator {
    /// A replicator calling nodes through `rpc`.
    pub fn new(rpc: Arc<dyn NodeRpc>) -> Self {
        RpcReplicator { rpc }
    }
}

impl Replicator for RpcReplicator {
    fn replicate(&self, cfg: &ConfigData, config_json: &[u8]) -> Vec<String> {
        let candidates = online_candidates_except_master(cfg);
        let nodes = online_nodes_except_master(cfg);
        let upload = encode(&UploadFilesArgs {
            files: vec![FileUpload {
                path: CONFIG_DATA.into(),
                data: b64::encode(config_json),
                mode: CONFIG_DATA_MODE,
            }],
        });
        let ssconf = encode(&WriteSsconfArgs {
            files: crate::ssconf::render(cfg),
        });
        let rpc = self.rpc.as_ref();
        let (uploaded, written) = std::thread::scope(|s| {
            let up = s.spawn(|| {
                if candidates.is_empty() {
                    Vec::new()
                } else {
                    rpc.call(proto::UPLOAD_FILES, &candidates, &upload, UPLOAD_TIMEOUT)
                }
            });
            let written = if nodes.is_empty() {
                Vec::new()
            } else {
                rpc.call(
                    proto::WRITE_SSCONF,
                    &nodes,
                    &ssconf,
                    crate::rpc::DEFAULT_TIMEOUT,
                )
            };
            (up.join().unwrap_or_default(), written)
        });
        let mut warnings = Vec::new();
        for (_, r) in uploaded {
            if let Err(e) = r {
                warnings.push(format!("copy of {CONFIG_DATA} failed: {e}"));
            }
        }
        for (_, r) in written {
            if let Err(e) = r {
                warnings.push(format!("writing the ssconf files failed: {e}"));
            }
        }
        warnings
    }
}

/// JSON of a procedure's arguments; these types always serialize.
fn encode<T: serde::Serialize>(args: &T) -> Value {
    serde_json::to_value(args).unwrap_or(Value::Null)
}

/// The ancillary files, sorted by who receives them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ancillary {
    /// For every node: `hmac.key`, `cluster-domain-secret`, the
    /// redist-files list and the files it names.
    pub to_all: Vec<FileUpload>,
    /// For master candidates: `rapi.pem`, `rapi/users`.
    pub to_candidates: Vec<FileUpload>,
    /// For VM-capable nodes: the enabled hypervisors' VNC password files.
    pub to_vm_capable: Vec<FileUpload>,
    /// Lines for the job's log: files skipped and why.
    pub notes: Vec<String>,
}

impl Ancillary {
    /// Files `node` should hold: everyone's, plus the candidates' if it is
    /// one, plus the VM-capable nodes' if it is one.
    pub fn for_node(&self, node: &Node) -> Vec<FileUpload> {
        let mut out = self.to_all.clone();
        if node.master_candidate {
            out.extend(self.to_candidates.iter().cloned());
        }
        if node.vm_capable {
            out.extend(self.to_vm_capable.iter().cloned());
        }
        out
    }
}

/// Reads `production` (a path as on a real node) under the master's root,
/// keeping its permission bits unless `mode` is given.
fn read_file(paths: &Paths, production: &str, mode: Option<u32>) -> Result<FileUpload, String> {
    let local = paths.under_root(production);
    let data = std::fs::read(&local).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("Skipping missing optional file {production}")
        } else {
            format!(
                "Skipping file {production}: cannot read {}: {e}",
                local.display()
            )
        }
    })?;
    let mode = match mode {
        Some(m) => m,
        None => crate::sys::fs::mode_of(&local)
            .map(|m| m & 0o7777)
            .unwrap_or(0o644),
    };
    Ok(FileUpload {
        path: production.to_string(),
        data: b64::encode(&data),
        mode,
    })
}

/// The paths the admin's redist-files list names (one absolute path per
/// line, `#` comments, blank lines ignored); the list itself comes first.
pub fn parse_redist_list(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The ancillary files of the master, read now (design 2.1's
/// `gnt-cluster redist-conf` set). Missing files are skipped with a note.
pub fn ancillary_files(paths: &Paths, cfg: &ConfigData) -> Ancillary {
    let mut out = Ancillary::default();
    let add = |list: &mut Vec<FileUpload>, notes: &mut Vec<String>, p: &str| match read_file(
        paths, p, None,
    ) {
        Ok(f) => {
            if !list.iter().any(|x| x.path == f.path) {
                list.push(f);
            }
        }
        Err(note) => notes.push(note),
    };
    for p in [HMAC_KEY, CLUSTER_DOMAIN_SECRET] {
        add(&mut out.to_all, &mut out.notes, p);
    }
    for p in [RAPI_PEM, RAPI_USERS] {
        add(&mut out.to_candidates, &mut out.notes, p);
    }
    for hv in &cfg.cluster.enabled_hypervisors {
        let vnc = cfg
            .cluster
            .hvparams
            .get(hv)
            .and_then(|p| p.get("vnc_password_file"))
            .and_then(Value::as_str)
            .filter(|s| s.starts_with('/'));
        if let Some(p) = vnc {
            add(&mut out.to_vm_capable, &mut out.notes, p);
        }
    }
    let list = paths.under_root(REDIST_FILES_LIST);
    match std::fs::read_to_string(&list) {
        Ok(text) => {
            add(&mut out.to_all, &mut out.notes, REDIST_FILES_LIST);
            for p in parse_redist_list(&text) {
                if p.starts_with('/') {
                    add(&mut out.to_all, &mut out.notes, &p);
                } else {
                    out.notes.push(format!(
                        "Skipping {p} in {REDIST_FILES_LIST}: not an absolute path"
                    ));
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => out
            .notes
            .push(format!("Skipping {REDIST_FILES_LIST}: cannot read it: {e}")),
    }
    out
}

/// The secrets a joining node receives: `server.pem` (required),
/// `hmac.key` and `cluster-domain-secret`, all mode 0600.
pub fn join_files(paths: &Paths) -> Result<Vec<FileUpload>, LuError> {
    let mut out = Vec::new();
    for p in [SERVER_PEM, HMAC_KEY, CLUSTER_DOMAIN_SECRET] {
        match read_file(paths, p, Some(SECRET_MODE)) {
            Ok(f) => out.push(f),
            Err(why) => {
                return Err(LuError::prereq(
                    ErrorKind::Environ,
                    format!("the master's cluster files are incomplete: {why}"),
                ))
            }
        }
    }
    Ok(out)
}

/// Uploads each node's files in one fan-out; returns one warning per
/// failed node. Nodes with nothing to receive are not called.
pub fn upload(rpc: &dyn NodeRpc, per_node: &[(Target, Vec<FileUpload>)]) -> Vec<String> {
    let calls: Vec<(Target, Value)> = per_node
        .iter()
        .filter(|(_, files)| !files.is_empty())
        .map(|(t, files)| {
            (
                t.clone(),
                encode(&UploadFilesArgs {
                    files: files.clone(),
                }),
            )
        })
        .collect();
    if calls.is_empty() {
        return Vec::new();
    }
    rpc.call_each(proto::UPLOAD_FILES, &calls, UPLOAD_TIMEOUT)
        .into_iter()
        .filter_map(|(_, r)| r.err())
        .map(|e| format!("copying files failed: {e}"))
        .collect()
}

/// `OP_CLUSTER_REDIST_CONF` (`gnt-cluster redist-conf`): pushes
/// `config.data`, ssconf and the ancillary files again.
pub struct LuClusterRedistConf {
    _op: OpClusterRedistConf,
}

impl LuClusterRedistConf {
    /// The LU for `op`.
    pub fn new(op: OpClusterRedistConf) -> Self {
        LuClusterRedistConf { _op: op }
    }
}

impl LogicalUnit for LuClusterRedistConf {
    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), LuError> {
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        ctx.log("Redistributing the configuration to all nodes");
        for w in ctx.store.replicate_now() {
            ctx.log(format!("WARNING: {w}"));
        }
        let cfg = ctx.store.snapshot();
        let files = ancillary_files(ctx.store.paths(), &cfg);
        for note in &files.notes {
            ctx.log(note.clone());
        }
        let per_node: Vec<(Target, Vec<FileUpload>)> = cfg
            .nodes
            .values()
            .filter(|n| !n.offline && n.uuid != cfg.cluster.master_node)
            .map(|n| (target(n), files.for_node(n)))
            .collect();
        for w in upload(ctx.rpc, &per_node) {
            ctx.log(format!("WARNING: {w}"));
        }
        Ok(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdlib::fake_rpc::TestCluster;
    use crate::cmdlib::OpOutcome;

    #[test]
    fn redist_list_parsing() {
        assert_eq!(
            parse_redist_list("# extra files\n/etc/a.conf\n\n  /etc/b # trailing\n#/etc/c\n"),
            vec!["/etc/a.conf", "/etc/b"]
        );
    }

    #[test]
    fn redist_conf_sends_each_role_its_files() {
        let mut cfg = crate::config::test_support::generated(3, 0);
        cfg.cluster.enabled_hypervisors = vec!["kvm".into(), "fake".into()];
        cfg.cluster
            .hvparams
            .entry("kvm".into())
            .or_default()
            .insert(
                "vnc_password_file".into(),
                "/etc/ganeti/vnc-cluster-password".into(),
            );
        for n in cfg.nodes.values_mut() {
            if n.name.as_str() == "node3.example.com" {
                n.master_candidate = false;
                n.vm_capable = false;
            }
        }
        let c = TestCluster::with_config("redist", cfg);
        c.write_file(HMAC_KEY, b"hmac", 0o440);
        c.write_file(RAPI_PEM, b"rapi", 0o440);
        c.write_file(RAPI_USERS, b"users", 0o640);
        c.write_file("/etc/ganeti/vnc-cluster-password", b"vnc", 0o640);
        c.write_file("/etc/extra.conf", b"extra", 0o644);
        c.write_file(
            REDIST_FILES_LIST,
            b"# files to keep equal\n/etc/extra.conf\n/etc/missing.conf\n",
            0o644,
        );
        c.rpc.kill("node3.example.com");
        let (out, log) = c.run(OpClusterRedistConf::default());
        assert_eq!(out, OpOutcome::Success(Value::Null), "{log:?}");
        // Missing optional files are skipped with a note; the dead node is a warning.
        assert!(log.contains(&format!(
            "Skipping missing optional file {CLUSTER_DOMAIN_SECRET}"
        )));
        assert!(log.contains(&"Skipping missing optional file /etc/missing.conf".to_string()));
        assert!(
            log.iter()
                .any(|l| l.starts_with("WARNING:") && l.contains("node3.example.com")),
            "{log:?}"
        );
        let uploads = c.rpc.calls_of(proto::UPLOAD_FILES);
        let of = |node: &str, first: &str| -> Vec<Vec<String>> {
            uploads
                .iter()
                .filter(|(n, a)| {
                    n == node && crate::cmdlib::fake_rpc::uploaded_paths(a)[0] == first
                })
                .map(|(_, a)| crate::cmdlib::fake_rpc::uploaded_paths(a))
                .collect()
        };
        // config.data: candidates only (the master excluded).
        assert_eq!(of("node2.example.com", CONFIG_DATA).len(), 1);
        assert!(of("node3.example.com", CONFIG_DATA).is_empty());
        assert!(!uploads.iter().any(|(n, _)| n == "node1.example.com"));
        let all = vec![
            HMAC_KEY.to_string(),
            REDIST_FILES_LIST.into(),
            "/etc/extra.conf".into(),
        ];
        let mut node2 = all.clone();
        node2.extend([
            RAPI_PEM.to_string(),
            RAPI_USERS.into(),
            "/etc/ganeti/vnc-cluster-password".into(),
        ]);
        assert_eq!(of("node2.example.com", HMAC_KEY), vec![node2]);
        assert_eq!(of("node3.example.com", HMAC_KEY), vec![all]);
        // ssconf to every node but the master.
        let mut ss: Vec<String> = c
            .rpc
            .calls_of(proto::WRITE_SSCONF)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        ss.sort();
        assert_eq!(ss, vec!["node2.example.com", "node3.example.com"]);
        // File modes travel with the files.
        let (_, a) = uploads
            .iter()
            .find(|(n, a)| {
                n == "node2.example.com"
                    && crate::cmdlib::fake_rpc::uploaded_paths(a)[0] == HMAC_KEY
            })
            .unwrap();
        assert_eq!(a["files"][0]["mode"], 0o440);
        assert_eq!(
            crate::rpc::b64::decode(a["files"][0]["data"].as_str().unwrap()).unwrap(),
            b"hmac"
        );
    }

    #[test]
    fn join_files_need_the_certificate() {
        let c = TestCluster::new("joinfiles", 1, 0);
        assert!(join_files(&c.paths).is_err());
        c.write_file(SERVER_PEM, b"pem", 0o600);
        c.write_file(HMAC_KEY, b"hmac", 0o440);
        c.write_file(CLUSTER_DOMAIN_SECRET, b"cds", 0o400);
        let files = join_files(&c.paths).unwrap();
        assert_eq!(files.len(), 3);
        assert!(files.iter().all(|f| f.mode == 0o600));
    }
}
