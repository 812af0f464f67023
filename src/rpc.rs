//! Node RPC: how the master (and `gnt-cluster command/copyfile`) talks to
//! `ganeti-noded` on every node.
//!
//! HTTPS on port 1811 with **mutual TLS** pinned to the cluster certificate
//! (`server.pem`): every node presents it as server and the caller presents
//! it as client; a peer without it is refused before any request is read.
//! One procedure per path (`POST /<procedure>`), a JSON object as body, the
//! protocol version in a header; the reply body is Ganeti's `[success,
//! payload]` pair. `docs/rpc.md` is the reference.
//!
//! - [`proto`]: the procedures' names, argument and result types (the
//!   contract between [`client`] callers and `daemons::noded`);
//! - [`tls`]: rustls configurations: the pinning verifiers for Ganeti's
//!   certificates (X.509 v1 included), the unpinned join mode;
//! - [`http`]: the small HTTP/1.1 subset both sides speak (keep-alive);
//! - [`client`]: [`NodeRpc`] over a pool of keep-alive connections, fanning
//!   one call out to many nodes with per-call timeouts;
//! - [`server`]: the accept loop that serves a [`Service`];
//! - [`b64`]: base64 for file contents in JSON.

pub mod b64;
pub mod client;
pub mod http;
pub mod proto;
pub mod server;
pub mod tls;

use serde_json::Value;
use std::time::Duration;

/// The RPC protocol version this build speaks; a request carrying another
/// version is refused with a message naming both.
pub const PROTOCOL_VERSION: u32 = 1;

/// The request header carrying [`PROTOCOL_VERSION`].
pub const VERSION_HEADER: &str = "Ganeti-Rpc-Version";

/// Default per-call timeout for quick procedures.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// One node to call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The node's name (results are keyed by it).
    pub name: String,
    /// Its primary IP address, as a literal.
    pub address: String,
    /// Offline nodes are never contacted; they yield [`RpcError::Offline`].
    pub offline: bool,
}

impl Target {
    /// An online node.
    pub fn new(name: impl Into<String>, address: impl Into<String>) -> Self {
        Target {
            name: name.into(),
            address: address.into(),
            offline: false,
        }
    }
}

/// Why one node's call did not return a result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RpcError {
    /// The node is marked offline; it was not contacted.
    #[error("node {node} is offline; not contacted")]
    Offline {
        /// The node.
        node: String,
    },
    /// No answer within the call's timeout.
    #[error("node {node}: no answer within {secs:.1} s")]
    Timeout {
        /// The node.
        node: String,
        /// The timeout that expired.
        secs: f64,
    },
    /// The TCP connection could not be made.
    #[error("node {node}: cannot connect to {address}: {message}")]
    Connect {
        /// The node.
        node: String,
        /// The address and port tried.
        address: String,
        /// The system's reason.
        message: String,
    },
    /// The TLS handshake failed (wrong certificate, no certificate, …).
    #[error("node {node}: TLS: {message}")]
    Tls {
        /// The node.
        node: String,
        /// What failed.
        message: String,
    },
    /// The peer did not speak the protocol (bad HTTP, bad JSON, version).
    #[error("node {node}: protocol error: {message}")]
    Protocol {
        /// The node.
        node: String,
        /// What was wrong.
        message: String,
    },
    /// The node ran the procedure and it failed; `message` is the node's.
    #[error("node {node}: {message}")]
    Remote {
        /// The node.
        node: String,
        /// The node's error message.
        message: String,
    },
}

impl RpcError {
    /// The node this error is about.
    pub fn node(&self) -> &str {
        match self {
            RpcError::Offline { node }
            | RpcError::Timeout { node, .. }
            | RpcError::Connect { node, .. }
            | RpcError::Tls { node, .. }
            | RpcError::Protocol { node, .. }
            | RpcError::Remote { node, .. } => node,
        }
    }
}

/// One node's outcome.
pub type NodeResult = Result<Value, RpcError>;

/// Calls procedures on nodes. The real implementation is
/// [`client::RpcClient`]; logical units take `&dyn NodeRpc` so their tests
/// can use a fake.
pub trait NodeRpc: Send + Sync {
    /// Calls `procedure` on every target with its own arguments, all
    /// concurrently; returns one `(node name, result)` per target in the
    /// order given. Offline targets are not contacted. Never blocks longer
    /// than about `timeout` however many nodes are dead.
    fn call_each(
        &self,
        procedure: &str,
        calls: &[(Target, Value)],
        timeout: Duration,
    ) -> Vec<(String, NodeResult)>;

    /// Calls a join procedure on one node **without** pinning its
    /// certificate; returns the result and the SHA-256 (hex) of the
    /// certificate the node presented, for the join protocol to check.
    fn join_call(
        &self,
        procedure: &str,
        target: &Target,
        args: &Value,
        timeout: Duration,
    ) -> Result<(Value, String), RpcError> {
        let _ = (procedure, args, timeout);
        Err(RpcError::Protocol {
            node: target.name.clone(),
            message: "this RPC client cannot join nodes".into(),
        })
    }

    /// SHA-256 (hex) of the client certificate this caller presents.
    fn own_cert_sha256(&self) -> String {
        String::new()
    }

    /// Calls `procedure` with the same arguments on every target.
    fn call(
        &self,
        procedure: &str,
        targets: &[Target],
        args: &Value,
        timeout: Duration,
    ) -> Vec<(String, NodeResult)> {
        let calls: Vec<(Target, Value)> =
            targets.iter().map(|t| (t.clone(), args.clone())).collect();
        self.call_each(procedure, &calls, timeout)
    }

    /// Calls `procedure` on one node.
    fn call_one(
        &self,
        procedure: &str,
        target: &Target,
        args: &Value,
        timeout: Duration,
    ) -> NodeResult {
        self.call(procedure, std::slice::from_ref(target), args, timeout)
            .pop()
            .map(|(_, r)| r)
            .unwrap_or_else(|| {
                Err(RpcError::Protocol {
                    node: target.name.clone(),
                    message: "no result returned".into(),
                })
            })
    }
}

/// What the server knows about the caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The caller's address and port.
    pub address: String,
    /// SHA-256 of the DER client certificate the caller presented
    /// (lowercase hex, no separators).
    pub cert_sha256: String,
}

/// A procedure's failure as the node reports it: the message travels back
/// as the payload of a `[false, message]` reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RemoteError(pub String);

impl RemoteError {
    /// A failure with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        RemoteError(message.into())
    }
}

/// The node side: answers one procedure call. `daemons::noded` implements it.
/// Calls run on a small blocking pool, so a slow procedure (a command, a
/// file write) does not stall other connections.
pub trait Service: Send + Sync + 'static {
    /// Runs `procedure` with `args` (already parsed JSON) for `peer`.
    /// Unknown procedures return an error naming them.
    fn handle(&self, procedure: &str, args: Value, peer: &Peer) -> Result<Value, RemoteError>;
}
