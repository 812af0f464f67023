//! The procedures of RPC protocol version 1: names, arguments and results.
//!
//! Paths are `"/" + name`. Arguments are a JSON object (the structs below,
//! unknown keys refused); a successful reply's payload is the result type.
//! Paths of files are the production paths (`/var/lib/ganeti/…`); a node
//! maps them under its own root (`GANETI_ROOTDIR`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `version`: protocol and software version; served configured or not.
pub const VERSION: &str = "version";
/// `node_info`: facts for `gnt-cluster verify` (clock, certificate expiry,
/// checksums of the files the master names).
pub const NODE_INFO: &str = "node_info";
/// `upload_files`: write files (allow-listed paths only), atomically.
pub const UPLOAD_FILES: &str = "upload_files";
/// `remove_files`: remove files (allow-listed paths only); missing is fine.
pub const REMOVE_FILES: &str = "remove_files";
/// `write_ssconf`: replace the node's `ssconf_*` files with the given set.
pub const WRITE_SSCONF: &str = "write_ssconf";
/// `run_command`: run a shell command (`gnt-cluster command`).
pub const RUN_COMMAND: &str = "run_command";
/// `powercycle`: reboot the node, after replying.
pub const POWERCYCLE: &str = "powercycle";
/// `master_info`: the node's vote in a master election.
pub const MASTER_INFO: &str = "master_info";
/// `master_ip`: add or remove the cluster's master IP on this node.
pub const MASTER_IP: &str = "master_ip";
/// `daemons`: start or stop Ganeti daemons on this node.
pub const DAEMONS: &str = "daemons";
/// `leave_cluster`: remove the cluster's files and stop noded (node removal).
pub const LEAVE_CLUSTER: &str = "leave_cluster";
/// `join_hello`: first step of the join protocol (unconfigured node only).
pub const JOIN_HELLO: &str = "join_hello";
/// `join_complete`: second step of the join protocol (unconfigured node only).
pub const JOIN_COMPLETE: &str = "join_complete";

/// Procedures a configured node serves.
pub const CONFIGURED_PROCEDURES: &[&str] = &[
    VERSION,
    NODE_INFO,
    UPLOAD_FILES,
    REMOVE_FILES,
    WRITE_SSCONF,
    RUN_COMMAND,
    POWERCYCLE,
    MASTER_INFO,
    MASTER_IP,
    DAEMONS,
    LEAVE_CLUSTER,
];

/// Procedures an unconfigured node (no `server.pem` yet) serves.
pub const UNCONFIGURED_PROCEDURES: &[&str] = &[VERSION, JOIN_HELLO, JOIN_COMPLETE];

/// Result of [`VERSION`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionInfo {
    /// The node's RPC protocol version.
    pub protocol: u32,
    /// The node's software version (`CARGO_PKG_VERSION`).
    pub software: String,
    /// The node's name as it knows itself.
    pub name: String,
    /// Whether the node is part of a cluster (has the cluster certificate).
    pub configured: bool,
}

/// Arguments of [`NODE_INFO`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeInfoArgs {
    /// Production paths whose SHA-1 the node should report.
    #[serde(default)]
    pub checksum_paths: Vec<String>,
}

/// Result of [`NODE_INFO`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeInfo {
    /// The node's name as it knows itself.
    pub name: String,
    /// RPC protocol version.
    pub protocol: u32,
    /// Software version.
    pub software: String,
    /// The node's clock, seconds since the epoch, taken while answering.
    pub time: f64,
    /// `notAfter` of the node's `server.pem`, seconds since the epoch.
    pub cert_not_after: Option<f64>,
    /// SHA-1 (hex) of each requested file; `None` when it does not exist.
    pub checksums: BTreeMap<String, Option<String>>,
    /// SHA-1 (hex) of every `ssconf_*` file the node has, by key.
    pub ssconf: BTreeMap<String, String>,
}

/// One file to write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileUpload {
    /// Production path.
    pub path: String,
    /// Content, base64 ([`super::b64`]).
    pub data: String,
    /// Permission bits (e.g. `0o600`).
    pub mode: u32,
}

/// Arguments of [`UPLOAD_FILES`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadFilesArgs {
    /// The files; all are checked against the allow-list before any is written.
    pub files: Vec<FileUpload>,
}

/// Arguments of [`REMOVE_FILES`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveFilesArgs {
    /// Production paths.
    pub paths: Vec<String>,
}

/// Arguments of [`WRITE_SSCONF`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteSsconfArgs {
    /// Ssconf key (`cluster_name`, `master_node`, …) → file content.
    /// Keys are checked against Ganeti's ssconf key list.
    pub files: BTreeMap<String, String>,
}

/// Arguments of [`RUN_COMMAND`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunCommandArgs {
    /// Run with `/bin/sh -c`.
    pub command: String,
    /// Killed after this many seconds.
    pub timeout_secs: f64,
}

/// Result of [`RUN_COMMAND`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandOutput {
    /// Exit status (128+signal when killed by a signal).
    pub exit_code: i32,
    /// Standard output and error, interleaved as written.
    pub output: String,
}

/// Arguments of [`POWERCYCLE`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowercycleArgs {
    /// The hypervisor the node runs (Ganeti passes it; informative).
    pub hypervisor: String,
}

/// Result of [`MASTER_INFO`]: the node's vote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterInfo {
    /// The node's name.
    pub name: String,
    /// The master according to the node's `ssconf_master_node`.
    pub master: Option<String>,
    /// `serial_no` of the node's copy of `config.data` (candidates only).
    pub config_serial: Option<u64>,
}

/// Arguments of [`MASTER_IP`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterIpArgs {
    /// `"start"` (add the address) or `"stop"` (remove it).
    pub action: String,
    /// The cluster's master IP.
    pub ip: String,
    /// Prefix length.
    pub netmask: u8,
    /// The master network device.
    pub netdev: String,
    /// 4 or 6.
    pub family: u8,
    /// Run `/etc/ganeti/scripts/master-ip-setup` instead of the built-in
    /// `ip address add/del` (the cluster's `use_external_mip_script`).
    pub external_script: bool,
}

/// Arguments of [`DAEMONS`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonsArgs {
    /// `"start"` or `"stop"`.
    pub action: String,
    /// Daemon names (`ganeti-masterd`, `ganeti-confd`, `ganeti-rapi`).
    pub daemons: Vec<String>,
}

/// Arguments of [`JOIN_HELLO`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinHello {
    /// Random, hex; chosen by the master.
    pub master_nonce: String,
    /// The cluster's name (shown in the node's log).
    pub cluster_name: String,
}

/// Result of [`JOIN_HELLO`]: the node proves it holds the token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinHelloReply {
    /// Random, hex; chosen by the node, valid for one `join_complete`.
    pub node_nonce: String,
    /// The public part of the token the node holds (`id.expiry`).
    pub token_id: String,
    /// SHA-256 of the node's TLS certificate as the node sees it.
    pub node_cert_sha256: String,
    /// HMAC over the transcript with the token's secret (`docs/rpc.md`).
    pub mac: String,
}

/// Arguments of [`JOIN_COMPLETE`]: the master proves it holds the token and
/// hands over the cluster's secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinComplete {
    /// The nonce of the node's hello reply.
    pub node_nonce: String,
    /// HMAC over the transcript with the token's secret (`docs/rpc.md`).
    pub mac: String,
    /// The cluster files to install (`server.pem`, `hmac.key`, …).
    pub files: Vec<FileUpload>,
}
