//! The node-join protocol: one-time tokens and the mutual proof between
//! master and a new node before any secret moves (`docs/rpc.md`).
//! (Contract stub; the noded helper replaces the bodies.)

use crate::paths::Paths;
use crate::rpc::proto::FileUpload;
use crate::rpc::{NodeRpc, Target};
use std::time::Duration;

/// Why a join failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// Placeholder until built.
    #[error("joining nodes is not built yet")]
    NotBuilt,
}

/// The master's join tokens (`/var/lib/ganeti/join-tokens`, 0600).
#[derive(Debug, Clone)]
pub struct TokenStore {
    paths: Paths,
}

impl TokenStore {
    /// The store of the cluster whose data dir is under `paths`.
    pub fn new(paths: &Paths) -> TokenStore {
        TokenStore {
            paths: paths.clone(),
        }
    }

    /// Issues a new token valid for `ttl`; returns the token text to give
    /// to the new node's operator.
    pub fn issue(&self, ttl: Duration) -> Result<String, JoinError> {
        let _ = (&self.paths, ttl);
        Err(JoinError::NotBuilt)
    }
}

/// Runs the join protocol against `target` (an unconfigured noded) and, once
/// both sides are proven, installs `files` on it. Returns the SHA-256 of the
/// node's join certificate.
pub fn join_node(
    rpc: &dyn NodeRpc,
    target: &Target,
    tokens: &TokenStore,
    cluster_name: &str,
    files: Vec<FileUpload>,
    timeout: Duration,
) -> Result<String, JoinError> {
    let _ = (rpc, target, tokens, cluster_name, files, timeout);
    Err(JoinError::NotBuilt)
}
