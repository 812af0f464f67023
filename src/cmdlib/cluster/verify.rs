//! `gnt-cluster verify`: `OP_CLUSTER_VERIFY` and `OP_CLUSTER_VERIFY_GROUP`.
//!
//! Ganeti 3.0's `LUClusterVerify` only submits follow-up jobs (one
//! config check, one per group) and returns `{"jobs": [...]}`; our job
//! queue does not run jobs an LU hands back, so `OP_CLUSTER_VERIFY` does
//! the config check and every group's node checks itself, and the CLI
//! waits on that one job. The lines follow Ganeti's `_ErrorMsg` format
//! (`  - ERROR: node NAME: message`, or with `error_codes`
//! `  - ERROR:ECODE:node:NAME:message`); the result is `false` when an
//! error (not a warning) was reported.
//!
//! Each node is asked over RPC ([`proto::NODE_INFO`]) for its versions,
//! clock, certificate expiry and the SHA-1 of its `config.data` and
//! ssconf files; the master's own SHA-1s are computed here from its data
//! directory.

use crate::cmdlib::redist::CONFIG_DATA;
use crate::cmdlib::{LogicalUnit, LuContext, LuError};
use crate::config::objects::{ConfigData, Node, Uuid};
use crate::error::ErrorKind;
use crate::opcodes::{OpClusterVerify, OpClusterVerifyGroup};
use crate::paths::Paths;
use crate::rpc::proto::{self, NodeInfo, NodeInfoArgs};
use crate::rpc::NodeRpc;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Largest clock difference between a node and the master before verify
/// reports it (Ganeti's `NODE_MAX_CLOCK_SKEW`), in seconds.
pub const NODE_MAX_CLOCK_SKEW_SECS: f64 = 150.0;
/// A node certificate expiring within this many days is warned about.
pub const CERT_EXPIRY_WARN_DAYS: f64 = 30.0;
/// Time allowed for the node-info fan-out.
const NODE_INFO_TIMEOUT: Duration = Duration::from_secs(30);

/// Ganeti's verify error descriptors: (object type, code).
type Ecode = (&'static str, &'static str);
const ECLUSTERCFG: Ecode = ("cluster", "ECLUSTERCFG");
const ECLUSTERCERT: Ecode = ("node", "ECLUSTERCERT");
const ENODERPC: Ecode = ("node", "ENODERPC");
const ENODEVERSION: Ecode = ("node", "ENODEVERSION");
const ENODETIME: Ecode = ("node", "ENODETIME");
const ENODEFILECHECK: Ecode = ("node", "ENODEFILECHECK");

/// How problems are reported, and whether any was an error.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Report `ERROR:ECODE:type:name:msg` lines (`--error-codes`).
    pub error_codes: bool,
    /// Codes demoted to warnings (`--ignore-errors`).
    pub ignore: Vec<String>,
    /// Lines so far.
    pub lines: Vec<String>,
    /// Whether an error (not a warning) was reported.
    pub failed: bool,
}

impl Report {
    fn emit(&mut self, warning: bool, (itype, code): Ecode, name: &str, msg: &str) {
        let warning = warning || self.ignore.iter().any(|c| c == code);
        let ltype = if warning { "WARNING" } else { "ERROR" };
        self.failed |= !warning;
        self.lines.push(if self.error_codes {
            format!("  - {ltype}:{code}:{itype}:{name}:{msg}")
        } else if name.is_empty() {
            format!("  - {ltype}: {itype}: {msg}")
        } else {
            format!("  - {ltype}: {itype} {name}: {msg}")
        });
    }

    /// An error about `name`.
    fn error(&mut self, code: Ecode, name: &str, msg: impl AsRef<str>) {
        self.emit(false, code, name, msg.as_ref());
    }

    /// A warning about `name`.
    fn warning(&mut self, code: Ecode, name: &str, msg: impl AsRef<str>) {
        self.emit(true, code, name, msg.as_ref());
    }

    fn note(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }
}

/// SHA-1 (hex) of `data`.
pub fn sha1_hex(data: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The master's reference checksums: its `config.data` and every
/// `ssconf_*` file in its data directory (by key).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MasterFiles {
    /// SHA-1 of `config.data`, if readable.
    pub config_data: Option<String>,
    /// Ssconf key → SHA-1.
    pub ssconf: BTreeMap<String, String>,
}

impl MasterFiles {
    /// Reads the master's files under `paths`.
    pub fn read(paths: &Paths) -> MasterFiles {
        let config_data = std::fs::read(paths.config_file())
            .ok()
            .map(|d| sha1_hex(&d));
        let mut ssconf = BTreeMap::new();
        if let Ok(dir) = std::fs::read_dir(paths.data_dir()) {
            for entry in dir.flatten() {
                let name = entry.file_name();
                let Some(key) = name.to_str().and_then(|n| n.strip_prefix("ssconf_")) else {
                    continue;
                };
                if let Ok(data) = std::fs::read(entry.path()) {
                    ssconf.insert(key.to_string(), sha1_hex(&data));
                }
            }
        }
        MasterFiles {
            config_data,
            ssconf,
        }
    }
}

fn now_secs() -> f64 {
    crate::config::store::now_secs()
}

/// Checks one node's answer against the master's view.
fn check_node(
    report: &mut Report,
    node: &Node,
    info: &NodeInfo,
    master: &MasterFiles,
    window: (f64, f64),
) {
    let name = node.name.as_str();
    if info.protocol != crate::rpc::PROTOCOL_VERSION {
        report.error(
            ENODEVERSION,
            name,
            format!(
                "incompatible protocol versions: master {}, node {}",
                crate::rpc::PROTOCOL_VERSION,
                info.protocol
            ),
        );
    }
    if info.software != crate::constants::RELEASE_VERSION {
        report.warning(
            ENODEVERSION,
            name,
            format!(
                "software version mismatch: master {}, node {}",
                crate::constants::RELEASE_VERSION,
                info.software
            ),
        );
    }
    let (start, end) = window;
    let skew = if info.time < start - NODE_MAX_CLOCK_SKEW_SECS {
        Some(start - info.time)
    } else if info.time > end + NODE_MAX_CLOCK_SKEW_SECS {
        Some(info.time - end)
    } else {
        None
    };
    if let Some(diff) = skew {
        report.error(
            ENODETIME,
            name,
            format!("Node time diverges by at least {diff:.1}s from master node time"),
        );
    }
    match info.cert_not_after {
        Some(t) if t <= end => report.error(
            ECLUSTERCERT,
            name,
            "the node certificate (server.pem) has expired",
        ),
        Some(t) if t - end < CERT_EXPIRY_WARN_DAYS * 86400.0 => report.warning(
            ECLUSTERCERT,
            name,
            format!(
                "the node certificate (server.pem) expires in {:.0} days",
                ((t - end) / 86400.0).floor()
            ),
        ),
        Some(_) => {}
        None => report.warning(
            ECLUSTERCERT,
            name,
            "the node did not report its certificate's expiry",
        ),
    }
    let node_cfg = info.checksums.get(CONFIG_DATA).cloned().flatten();
    if node.master_candidate {
        match (&node_cfg, &master.config_data) {
            (None, _) => report.error(
                ENODEFILECHECK,
                name,
                format!("file {CONFIG_DATA} is missing"),
            ),
            (Some(n), Some(m)) if n != m => report.error(
                ENODEFILECHECK,
                name,
                format!("file {CONFIG_DATA} differs from the master's"),
            ),
            _ => {}
        }
    } else if node_cfg.is_some() {
        report.error(
            ENODEFILECHECK,
            name,
            format!("file {CONFIG_DATA} should not exist on a node that is not a master candidate"),
        );
    }
    for (key, sum) in &master.ssconf {
        match info.ssconf.get(key) {
            None => report.error(
                ENODEFILECHECK,
                name,
                format!("ssconf file ssconf_{key} is missing"),
            ),
            Some(s) if s != sum => report.error(
                ENODEFILECHECK,
                name,
                format!("ssconf file ssconf_{key} differs from the master's"),
            ),
            Some(_) => {}
        }
    }
}

/// Verifies the nodes of `group`: offline ones are skipped with a notice,
/// the others asked for their node info in one fan-out.
pub fn verify_group_nodes(
    rpc: &dyn NodeRpc,
    paths: &Paths,
    cfg: &ConfigData,
    group: &Uuid,
    report: &mut Report,
) {
    let mut nodes: Vec<&Node> = cfg.nodes.values().filter(|n| &n.group == group).collect();
    nodes.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
    let offline = nodes.iter().filter(|n| n.offline).count();
    let drained = nodes.iter().filter(|n| n.drained).count();
    let online: Vec<&Node> = nodes.into_iter().filter(|n| !n.offline).collect();
    report.note(format!("* Gathering data ({} nodes)", online.len()));
    let master = MasterFiles::read(paths);
    let args = serde_json::to_value(NodeInfoArgs {
        checksum_paths: vec![CONFIG_DATA.to_string()],
    })
    .unwrap_or(Value::Null);
    let targets: Vec<_> = online
        .iter()
        .map(|n| crate::cmdlib::node::target(n))
        .collect();
    let start = now_secs();
    let answers = if targets.is_empty() {
        Vec::new()
    } else {
        rpc.call(proto::NODE_INFO, &targets, &args, NODE_INFO_TIMEOUT)
    };
    let end = now_secs();
    report.note("* Verifying node status");
    for node in &online {
        let name = node.name.as_str();
        let Some((_, answer)) = answers.iter().find(|(n, _)| n == name) else {
            report.error(ENODERPC, name, "unable to verify node: no data returned");
            continue;
        };
        match answer {
            Err(e) => report.error(ENODERPC, name, format!("while contacting node: {e}")),
            Ok(v) => match serde_json::from_value::<NodeInfo>(v.clone()) {
                Ok(info) => check_node(report, node, &info, &master, (start, end)),
                Err(e) => report.error(
                    ENODERPC,
                    name,
                    format!("unable to verify node: invalid data returned: {e}"),
                ),
            },
        }
    }
    if offline > 0 {
        report.note(format!("  - NOTICE: {offline} offline node(s) found."));
    }
    if drained > 0 {
        report.note(format!("  - NOTICE: {drained} drained node(s) found."));
    }
}

/// The config-consistency part (`OP_CLUSTER_VERIFY_CONFIG`'s checks).
pub fn verify_config(cfg: &ConfigData, report: &mut Report) {
    report.note("* Verifying cluster config");
    if let Err(errors) = crate::config::validate::validate(cfg) {
        for line in errors.to_string().lines() {
            report.error(ECLUSTERCFG, "", line);
        }
    }
}

/// `OP_CLUSTER_VERIFY`: config check plus every group's node checks (or
/// only `group_name`'s).
pub struct LuClusterVerify {
    op: OpClusterVerify,
}

impl LuClusterVerify {
    /// The LU for `op`.
    pub fn new(op: OpClusterVerify) -> Self {
        LuClusterVerify { op }
    }
}

fn groups_in_order(cfg: &ConfigData) -> Vec<(String, Uuid)> {
    let mut g: Vec<(String, Uuid)> = cfg
        .nodegroups
        .iter()
        .map(|(u, g)| (g.name.as_str().to_string(), u.clone()))
        .collect();
    g.sort();
    g
}

fn flush(ctx: &mut LuContext<'_>, report: &mut Report) {
    for line in std::mem::take(&mut report.lines) {
        ctx.log(line);
    }
}

impl LogicalUnit for LuClusterVerify {
    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        if let Some(g) = &self.op.group_name {
            crate::cmdlib::node::lookup_group(cfg, Some(g))?;
        }
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let cfg = ctx.store.snapshot();
        let mut report = Report {
            error_codes: self.op.error_codes,
            ignore: self.op.ignore_errors.clone(),
            ..Report::default()
        };
        verify_config(&cfg, &mut report);
        if self.op.debug_simulate_errors {
            report.error(ECLUSTERCFG, "", "simulated error (debug_simulate_errors)");
        }
        flush(ctx, &mut report);
        for (name, uuid) in groups_in_order(&cfg) {
            if self
                .op
                .group_name
                .as_deref()
                .is_some_and(|g| g != name && g != uuid.as_str())
            {
                continue;
            }
            report.note(format!("* Verifying group {name}"));
            verify_group_nodes(ctx.rpc, ctx.store.paths(), &cfg, &uuid, &mut report);
            flush(ctx, &mut report);
        }
        Ok(Value::Bool(!report.failed))
    }
}

/// `OP_CLUSTER_VERIFY_GROUP`: one group's node checks.
pub struct LuClusterVerifyGroup {
    op: OpClusterVerifyGroup,
    group: Option<Uuid>,
}

impl LuClusterVerifyGroup {
    /// The LU for `op`.
    pub fn new(op: OpClusterVerifyGroup) -> Self {
        LuClusterVerifyGroup { op, group: None }
    }
}

impl LogicalUnit for LuClusterVerifyGroup {
    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        let g =
            crate::cmdlib::node::lookup_group(cfg, Some(&self.op.group_name)).map_err(|_| {
                LuError::prereq(
                    ErrorKind::NoEnt,
                    format!("Node group '{}' not found", self.op.group_name),
                )
            })?;
        self.group = Some(g);
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let cfg = ctx.store.snapshot();
        let group = self
            .group
            .clone()
            .ok_or_else(|| LuError::Exec("group verify ran without its prerequisites".into()))?;
        let mut report = Report {
            error_codes: self.op.error_codes,
            ignore: self.op.ignore_errors.clone(),
            ..Report::default()
        };
        report.note(format!("* Verifying group {}", self.op.group_name));
        verify_group_nodes(ctx.rpc, ctx.store.paths(), &cfg, &group, &mut report);
        if self.op.debug_simulate_errors {
            report.error(ECLUSTERCFG, "", "simulated error (debug_simulate_errors)");
        }
        flush(ctx, &mut report);
        Ok(Value::Bool(!report.failed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdlib::fake_rpc::TestCluster;
    use crate::cmdlib::OpOutcome;
    use crate::opcodes::{OpClusterVerify, OpClusterVerifyGroup};

    /// Scripts every node's node info as a healthy copy of the master.
    fn healthy(c: &TestCluster) {
        let master = MasterFiles::read(&c.paths);
        for n in c.config().nodes.values() {
            let info = NodeInfo {
                name: n.name.as_str().into(),
                protocol: crate::rpc::PROTOCOL_VERSION,
                software: crate::constants::RELEASE_VERSION.into(),
                time: now_secs(),
                cert_not_after: Some(now_secs() + 365.0 * 86400.0),
                checksums: [(
                    CONFIG_DATA.to_string(),
                    n.master_candidate
                        .then(|| master.config_data.clone())
                        .flatten(),
                )]
                .into(),
                ssconf: master.ssconf.clone(),
            };
            set(c, n.name.as_str(), &info);
        }
    }

    fn set(c: &TestCluster, node: &str, info: &NodeInfo) {
        c.rpc.answer(
            proto::NODE_INFO,
            node,
            Ok(serde_json::to_value(info).unwrap()),
        );
    }

    fn info_of(c: &TestCluster, node: &str) -> NodeInfo {
        let master = MasterFiles::read(&c.paths);
        NodeInfo {
            name: node.into(),
            protocol: crate::rpc::PROTOCOL_VERSION,
            software: crate::constants::RELEASE_VERSION.into(),
            time: now_secs(),
            cert_not_after: Some(now_secs() + 365.0 * 86400.0),
            checksums: [(CONFIG_DATA.to_string(), master.config_data.clone())].into(),
            ssconf: master.ssconf.clone(),
        }
    }

    #[test]
    fn healthy_cluster_verifies() {
        let c = TestCluster::new("verify-ok", 3, 1);
        healthy(&c);
        let (out, log) = c.run(OpClusterVerify::default());
        assert_eq!(out, OpOutcome::Success(Value::Bool(true)), "{log:?}");
        assert!(!log.iter().any(|l| l.contains("ERROR")), "{log:?}");
        assert_eq!(c.rpc.calls_of(proto::NODE_INFO).len(), 3);
    }

    #[test]
    fn finds_ssconf_clock_and_unreachable_problems() {
        let c = TestCluster::new("verify-bad", 5, 0);
        healthy(&c);
        let mut node2 = info_of(&c, "node2.example.com");
        node2
            .ssconf
            .insert("master_node".into(), sha1_hex(b"node9.example.com\n"));
        set(&c, "node2.example.com", &node2);
        let mut node3 = info_of(&c, "node3.example.com");
        node3.time -= 1000.0;
        node3.cert_not_after = Some(now_secs() - 10.0);
        set(&c, "node3.example.com", &node3);
        c.rpc.kill("node4.example.com");
        let mut node5 = info_of(&c, "node5.example.com");
        node5.cert_not_after = Some(now_secs() + 5.0 * 86400.0);
        node5
            .checksums
            .insert(CONFIG_DATA.into(), Some(sha1_hex(b"old")));
        set(&c, "node5.example.com", &node5);
        let (out, log) = c.run(OpClusterVerify::default());
        assert_eq!(out, OpOutcome::Success(Value::Bool(false)), "{log:?}");
        let has = |s: &str| log.iter().any(|l| l == s);
        assert!(
            has("  - ERROR: node node2.example.com: ssconf file ssconf_master_node differs from the master's"),
            "{log:?}"
        );
        assert!(
            log.iter().any(|l| l.starts_with(
                "  - ERROR: node node3.example.com: Node time diverges by at least 1000"
            )),
            "{log:?}"
        );
        assert!(
            has("  - ERROR: node node3.example.com: the node certificate (server.pem) has expired"),
            "{log:?}"
        );
        assert!(
            log.iter().any(|l| l
                .starts_with("  - ERROR: node node4.example.com: while contacting node:")),
            "{log:?}"
        );
        assert!(
            log.iter()
                .any(|l| l.starts_with("  - WARNING: node node5.example.com: the node certificate")),
            "{log:?}"
        );
        assert!(
            has(&format!(
                "  - ERROR: node node5.example.com: file {CONFIG_DATA} differs from the master's"
            )),
            "{log:?}"
        );
        // Machine-readable codes, and ignored codes become warnings.
        let (out, log) = c.run(OpClusterVerifyGroup {
            group_name: "default".into(),
            error_codes: true,
            ignore_errors: vec!["ENODETIME".into()],
            ..Default::default()
        });
        assert_eq!(out, OpOutcome::Success(Value::Bool(false)));
        assert!(
            log.iter().any(|l| l
                .starts_with("  - WARNING:ENODETIME:node:node3.example.com:Node time diverges")),
            "{log:?}"
        );
        assert!(
            log.contains(&"  - ERROR:ENODEFILECHECK:node:node2.example.com:ssconf file ssconf_master_node differs from the master's".to_string()),
            "{log:?}"
        );
    }

    #[test]
    fn offline_nodes_are_skipped_and_unknown_group_refused() {
        let mut cfg = crate::config::test_support::generated(3, 0);
        for n in cfg.nodes.values_mut() {
            if n.name.as_str() == "node3.example.com" {
                n.offline = true;
                n.master_candidate = false;
            }
        }
        let c = TestCluster::with_config("verify-offline", cfg);
        healthy(&c);
        let (out, log) = c.run(OpClusterVerify::default());
        assert_eq!(out, OpOutcome::Success(Value::Bool(true)), "{log:?}");
        assert!(log.contains(&"  - NOTICE: 1 offline node(s) found.".to_string()));
        assert!(!c.rpc.calls().iter().any(|x| x.node == "node3.example.com"));
        let (out, _) = c.run(OpClusterVerifyGroup {
            group_name: "nope".into(),
            ..Default::default()
        });
        assert!(
            matches!(
                out,
                OpOutcome::Failed(crate::cmdlib::LuError::Prereq {
                    kind: ErrorKind::NoEnt,
                    ..
                })
            ),
            "{out:?}"
        );
    }
}
