//! confd: Ganeti's fast, authenticated, read-only configuration queries
//! (design 2.1, "Redundant and distributed configuration access").
//!
//! Every master candidate runs `ganeti-confd` ([`crate::daemons::confd`]),
//! which answers small UDP queries from a read-only snapshot of its copy of
//! `config.data`. Clients ask several candidates at once and keep the
//! answer with the highest config serial, so a candidate with a stale copy
//! never wins against a fresh one.
//!
//! - [`codec`]: the wire format: `plj0` + a JSON envelope `{"msg", "salt",
//!   "hmac"}`, HMAC-SHA1 over salt+msg with the cluster's `hmac.key`, the
//!   timestamp window, size limits. Pure functions, no I/O.
//! - [`query`]: the answers, computed over an immutable [`query::Snapshot`]
//!   of the config with its indexes built once per config version.
//! - [`client`]: the client library (fan-out to candidates, quorum,
//!   highest serial), used by `gnt-cluster confd-query` and the watcher.
//!
//! This module never writes the config and knows no daemon; the daemon
//! owns the socket, the reload loop and the counters.

pub mod client;
pub mod codec;
pub mod query;

use serde_json::Value;

/// `CONFD_PROTOCOL_VERSION`.
pub const PROTOCOL_VERSION: u64 = 1;
/// `CONFD_MAGIC_FOURCC`: every packet starts with these bytes.
pub const MAGIC_FOURCC: &[u8; 4] = b"plj0";
/// `MAX_UDP_DATA_SIZE`: the largest packet we send or accept (bytes).
pub const MAX_PACKET_BYTES: usize = 61_440;
/// `CONFD_MAX_CLOCK_SKEW` (2 × `NODE_MAX_CLOCK_SKEW` = 2 × 150 s): a
/// request whose timestamp salt is further than this from our clock is
/// dropped.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;
/// `CONFD_DEFAULT_REQ_COVERAGE`: how many candidates a client asks by default.
pub const DEFAULT_REQ_COVERAGE: usize = 6;
/// `CONFD_CLIENT_EXPIRE_TIMEOUT`: the longest a client waits for replies.
pub const CLIENT_EXPIRE_TIMEOUT_SECS: u64 = 10;
/// `CONFD_CONFIG_RELOAD_RATELIMIT` (250,000 µs): how often the daemon looks
/// at `config.data` for a change.
pub const CONFIG_RELOAD_CHECK_MS: u64 = 250;

/// A request type (`CONFD_REQ_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RequestType {
    /// `CONFD_REQ_PING` (0): is the daemon alive; answers the config version.
    Ping,
    /// `CONFD_REQ_NODE_ROLE_BYNAME` (1): a node's role.
    NodeRoleByName,
    /// `CONFD_REQ_NODE_PIP_BY_INSTANCE_IP` (2): the primary IP of the node
    /// running the instance with this IP (or each IP of a list).
    NodePipByInstanceIp,
    /// `CONFD_REQ_CLUSTER_MASTER` (3): the master's name, or chosen fields.
    ClusterMaster,
    /// `CONFD_REQ_NODE_PIP_LIST` (4): every node's primary IP.
    NodePipList,
    /// `CONFD_REQ_MC_PIP_LIST` (5): the master candidates' primary IPs.
    McPipList,
    /// `CONFD_REQ_INSTANCES_IPS_LIST` (6): instance IPs on a link.
    InstancesIpsList,
    /// `CONFD_REQ_NODE_DRBD` (7): a node's DRBD minors.
    NodeDrbd,
    /// `CONFD_REQ_NODE_INSTANCES` (8): a node's primary and secondary instances.
    NodeInstances,
    /// `CONFD_REQ_INSTANCE_DISKS` (9): an instance's disk objects.
    InstanceDisks,
    /// `CONFD_REQ_CONFIG_QUERY` (10): a value of the config by path.
    ConfigQuery,
    /// `CONFD_REQ_DATA_COLLECTORS` (11): the data collectors' settings.
    DataCollectors,
}

impl RequestType {
    /// Every type, in number order.
    pub const ALL: [RequestType; 12] = [
        RequestType::Ping,
        RequestType::NodeRoleByName,
        RequestType::NodePipByInstanceIp,
        RequestType::ClusterMaster,
        RequestType::NodePipList,
        RequestType::McPipList,
        RequestType::InstancesIpsList,
        RequestType::NodeDrbd,
        RequestType::NodeInstances,
        RequestType::InstanceDisks,
        RequestType::ConfigQuery,
        RequestType::DataCollectors,
    ];

    /// The wire number.
    pub fn number(self) -> u64 {
        self as u64
    }

    /// The type with wire number `n`.
    pub fn from_number(n: u64) -> Option<RequestType> {
        usize::try_from(n)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// The name used on the command line (`node-role-byname`), derived from
    /// Ganeti's constant name without its `CONFD_REQ_` prefix.
    pub fn cli_name(self) -> &'static str {
        match self {
            RequestType::Ping => "ping",
            RequestType::NodeRoleByName => "node-role-byname",
            RequestType::NodePipByInstanceIp => "node-pip-by-instance-ip",
            RequestType::ClusterMaster => "cluster-master",
            RequestType::NodePipList => "node-pip-list",
            RequestType::McPipList => "mc-pip-list",
            RequestType::InstancesIpsList => "instances-ips-list",
            RequestType::NodeDrbd => "node-drbd",
            RequestType::NodeInstances => "node-instances",
            RequestType::InstanceDisks => "instance-disks",
            RequestType::ConfigQuery => "config-query",
            RequestType::DataCollectors => "data-collectors",
        }
    }

    /// Parses a command-line name (as [`RequestType::cli_name`], with `_`
    /// accepted for `-`, any case) or a wire number.
    pub fn parse(text: &str) -> Option<RequestType> {
        if let Ok(n) = text.parse::<u64>() {
            return Self::from_number(n);
        }
        let norm = text.to_ascii_lowercase().replace('_', "-");
        Self::ALL.into_iter().find(|t| t.cli_name() == norm)
    }
}

/// A reply status (`CONFD_REPL_STATUS_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyStatus {
    /// 0: the answer is the result.
    Ok,
    /// 1: the answer says what was wrong (an [`ErrorCode`] or a message).
    Error,
    /// 2: the server does not implement this request.
    NotImplemented,
}

impl ReplyStatus {
    /// The wire number.
    pub fn number(self) -> u64 {
        match self {
            ReplyStatus::Ok => 0,
            ReplyStatus::Error => 1,
            ReplyStatus::NotImplemented => 2,
        }
    }

    /// The status with wire number `n`.
    pub fn from_number(n: u64) -> Option<ReplyStatus> {
        match n {
            0 => Some(ReplyStatus::Ok),
            1 => Some(ReplyStatus::Error),
            2 => Some(ReplyStatus::NotImplemented),
            _ => None,
        }
    }
}

/// The answer of an error reply about an entry or argument
/// (`CONFD_ERROR_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 0: no such node, instance or IP.
    UnknownEntry = 0,
    /// 1: the server could not compute the answer.
    Internal = 1,
    /// 2: the query has the wrong shape for this request type.
    Argument = 2,
}

impl ErrorCode {
    /// The answer value of the error reply.
    pub fn answer(self) -> Value {
        Value::from(self as u64)
    }
}

/// A node's role as confd reports it (`CONFD_NODE_ROLE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRole {
    /// 0: the master.
    Master = 0,
    /// 1: a master candidate.
    Candidate = 1,
    /// 2: offline.
    Offline = 2,
    /// 3: drained.
    Drained = 3,
    /// 4: none of the above.
    Regular = 4,
}

/// A field of a cluster-master dictionary query (`CONFD_REQFIELD_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReqField {
    /// 0: the master node's name.
    Name,
    /// 1: the cluster's master IP.
    Ip,
    /// 2: the master node's primary IP.
    MnodePip,
}

impl ReqField {
    /// The field with wire number `n`.
    pub fn from_number(n: u64) -> Option<ReqField> {
        match n {
            0 => Some(ReqField::Name),
            1 => Some(ReqField::Ip),
            2 => Some(ReqField::MnodePip),
            _ => None,
        }
    }

    /// The wire number.
    pub fn number(self) -> u64 {
        match self {
            ReqField::Name => 0,
            ReqField::Ip => 1,
            ReqField::MnodePip => 2,
        }
    }
}
