//! The caller side of RPC. (Contract stub.)

use super::tls::TlsError;
use super::{NodeResult, NodeRpc, RpcError, Target};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// [`NodeRpc`] over mutual TLS with a pool of keep-alive connections.
#[derive(Debug)]
pub struct RpcClient {
    port: u16,
}

impl RpcClient {
    /// A client presenting (and pinning servers to) the certificate in
    /// `cert_pem` (key + certificate), calling nodes on `port`.
    pub fn new(cert_pem: &Path, port: u16) -> Result<RpcClient, TlsError> {
        let _ = cert_pem;
        Ok(RpcClient { port })
    }

    /// The port nodes are called on.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl NodeRpc for RpcClient {
    fn call_each(
        &self,
        _procedure: &str,
        calls: &[(Target, Value)],
        _timeout: Duration,
    ) -> Vec<(String, NodeResult)> {
        calls
            .iter()
            .map(|(t, _)| {
                (
                    t.name.clone(),
                    Err(RpcError::Protocol {
                        node: t.name.clone(),
                        message: "rpc::client not built yet".into(),
                    }),
                )
            })
            .collect()
    }
}
