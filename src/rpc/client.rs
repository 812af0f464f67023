//! The caller side of RPC: [`RpcClient`], the real [`NodeRpc`].
//!
//! Used by masterd's job workers (through `cmdlib`) and by the few CLI
//! commands that talk to nodes directly; both call from plain threads, so
//! each fan-out drives its own small event loop with `smol::block_on`. All
//! targets of one call run concurrently, each raced against the call's
//! timeout (connect, handshake and request together), so dead nodes cost the
//! timeout once, not once each. Offline nodes are never contacted.
//!
//! Connections are mutual TLS pinned to the cluster certificate and kept
//! alive in a per-`address:port` pool; a pooled connection the node closed
//! meanwhile is replaced once, transparently. Join calls use an unpinned,
//! unpooled connection and report the node's certificate fingerprint.

use super::http::{self, Connection, HttpError};
use super::tls::{self, TlsError};
use super::{NodeResult, NodeRpc, RpcError, Target};
use futures_rustls::client::TlsStream;
use futures_rustls::TlsConnector;
use serde_json::Value;
use smol::io::{AsyncWriteExt, BufReader};
use smol::net::TcpStream;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Idle connections kept per node; more are closed after use.
const MAX_IDLE_PER_NODE: usize = 8;

type Conn = BufReader<TlsStream<TcpStream>>;

/// Connection counters, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// TLS handshakes made (new connections).
    pub handshakes: u64,
    /// Calls sent over a pooled connection.
    pub reused: u64,
}

/// [`NodeRpc`] over mutual TLS with a pool of keep-alive connections.
pub struct RpcClient {
    port: u16,
    cert_sha256: String,
    pinned: TlsConnector,
    unpinned: TlsConnector,
    pool: Mutex<HashMap<String, Vec<Conn>>>,
    handshakes: AtomicU64,
    reused: AtomicU64,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient")
            .field("port", &self.port)
            .field("cert_sha256", &self.cert_sha256)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// How one attempt on one connection failed.
enum Failure {
    /// The connection ended before any byte of the reply: safe to retry
    /// once on a fresh connection when it was a pooled one.
    ClosedEarly(String),
    /// Anything else; final.
    Final(RpcError),
}

impl RpcClient {
    /// A client presenting (and pinning servers to) the certificate in
    /// `cert_pem` (key + certificate), calling nodes on `port`.
    pub fn new(cert_pem: &Path, port: u16) -> Result<RpcClient, TlsError> {
        let id = tls::load_identity(cert_pem)?;
        Ok(RpcClient {
            port,
            cert_sha256: id.cert_sha256(),
            pinned: TlsConnector::from(tls::client_config_pinned(&id)?),
            unpinned: TlsConnector::from(tls::client_config_unpinned(&id)?),
            pool: Mutex::new(HashMap::new()),
            handshakes: AtomicU64::new(0),
            reused: AtomicU64::new(0),
        })
    }

    /// The port nodes are called on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connection counters since this client was made.
    pub fn stats(&self) -> ClientStats {
        ClientStats {
            handshakes: self.handshakes.load(Ordering::Relaxed),
            reused: self.reused.load(Ordering::Relaxed),
        }
    }

    /// `address:port`, bracketing IPv6 literals.
    fn endpoint(&self, address: &str) -> String {
        if address.contains(':') && !address.starts_with('[') {
            format!("[{address}]:{}", self.port)
        } else {
            format!("{address}:{}", self.port)
        }
    }

    fn take_pooled(&self, endpoint: &str) -> Option<Conn> {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        pool.get_mut(endpoint).and_then(Vec::pop)
    }

    fn put_pooled(&self, endpoint: String, conn: Conn) {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let idle = pool.entry(endpoint).or_default();
        if idle.len() < MAX_IDLE_PER_NODE {
            idle.push(conn);
        }
    }

    /// A new TCP + TLS connection to `endpoint` with `connector`.
    async fn connect(
        &self,
        target: &Target,
        endpoint: &str,
        connector: &TlsConnector,
    ) -> Result<Conn, RpcError> {
        let tcp = TcpStream::connect(endpoint)
            .await
            .map_err(|e| RpcError::Connect {
                node: target.name.clone(),
                address: endpoint.to_string(),
                message: e.to_string(),
            })?;
        let _ = tcp.set_nodelay(true);
        let tls = connector
            .connect(tls::server_name(&target.address), tcp)
            .await
            .map_err(|e| RpcError::Tls {
                node: target.name.clone(),
                message: e.to_string(),
            })?;
        self.handshakes.fetch_add(1, Ordering::Relaxed);
        Ok(BufReader::new(tls))
    }

    /// One call on one node, reusing a pooled connection when there is one.
    async fn call_node(&self, procedure: &str, target: &Target, body: &[u8]) -> NodeResult {
        let endpoint = self.endpoint(&target.address);
        let request = http::encode_request(procedure, &endpoint, body);
        if let Some(mut conn) = self.take_pooled(&endpoint) {
            self.reused.fetch_add(1, Ordering::Relaxed);
            match exchange(&mut conn, &request, target).await {
                Ok((result, Connection::KeepAlive)) => {
                    self.put_pooled(endpoint, conn);
                    return result;
                }
                Ok((result, Connection::Close)) => return result,
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::ClosedEarly(why)) => {
                    log::debug!(
                        "rpc pooled connection was closed, reconnecting node={} reason={why}",
                        target.name
                    );
                }
            }
        }
        let mut conn = self.connect(target, &endpoint, &self.pinned).await?;
        match exchange(&mut conn, &request, target).await {
            Ok((result, Connection::KeepAlive)) => {
                self.put_pooled(endpoint, conn);
                result
            }
            Ok((result, Connection::Close)) => result,
            Err(Failure::Final(e)) => Err(e),
            Err(Failure::ClosedEarly(why)) => Err(RpcError::Protocol {
                node: target.name.clone(),
                message: format!("connection closed before the reply: {why}"),
            }),
        }
    }

    async fn join_node(
        &self,
        procedure: &str,
        target: &Target,
        body: &[u8],
    ) -> Result<(Value, String), RpcError> {
        let endpoint = self.endpoint(&target.address);
        let mut conn = self.connect(target, &endpoint, &self.unpinned).await?;
        let fingerprint = conn
            .get_ref()
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| tls::cert_sha256(c))
            .ok_or_else(|| RpcError::Tls {
                node: target.name.clone(),
                message: "the node presented no certificate".into(),
            })?;
        let request = http::encode_request(procedure, &endpoint, body);
        match exchange(&mut conn, &request, target).await {
            Ok((result, _)) => result.map(|v| (v, fingerprint)),
            Err(Failure::Final(e)) => Err(e),
            Err(Failure::ClosedEarly(why)) => Err(RpcError::Protocol {
                node: target.name.clone(),
                message: format!("connection closed before the reply: {why}"),
            }),
        }
    }
}

/// Maps an I/O error on an established connection: TLS alerts (a refused
/// client certificate shows up here under TLS 1.3) are [`RpcError::Tls`].
fn io_failure(target: &Target, doing: &str, e: &std::io::Error) -> Failure {
    if let Some(tls_err) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return Failure::Final(RpcError::Tls {
            node: target.name.clone(),
            message: tls_err.to_string(),
        });
    }
    if http::is_disconnect(e) {
        return Failure::ClosedEarly(format!("{doing}: {e}"));
    }
    Failure::Final(RpcError::Protocol {
        node: target.name.clone(),
        message: format!("{doing}: {e}"),
    })
}

/// Sends `request` and reads the reply on `conn`. The outer error says
/// whether the exchange may be retried; the inner result is the node's.
async fn exchange(
    conn: &mut Conn,
    request: &[u8],
    target: &Target,
) -> Result<(NodeResult, Connection), Failure> {
    let protocol = |message: String| RpcError::Protocol {
        node: target.name.clone(),
        message,
    };
    let sent = async {
        conn.get_mut().write_all(request).await?;
        conn.get_mut().flush().await
    };
    sent.await
        .map_err(|e| io_failure(target, "sending the request", &e))?;
    let resp = match http::read_response(conn).await {
        Ok(r) => r,
        Err(HttpError::Closed) => {
            return Err(Failure::ClosedEarly("closed by the node".into()));
        }
        Err(HttpError::Io { doing, source }) => {
            return Err(match io_failure(target, doing, &source) {
                // Part of the reply arrived: not safe to resend.
                Failure::ClosedEarly(m) => Failure::Final(protocol(m)),
                f => f,
            });
        }
        Err(e) => return Err(Failure::Final(protocol(e.to_string()))),
    };
    let result = match http::parse_reply_body(&resp.body) {
        Ok(Ok(v)) if resp.head.code == 200 => Ok(v),
        Ok(Err(message)) if resp.head.code == 200 => Err(RpcError::Remote {
            node: target.name.clone(),
            message,
        }),
        Ok(Err(message)) => Err(protocol(format!("HTTP {}: {message}", resp.head.code))),
        Ok(Ok(_)) => Err(protocol(format!(
            "HTTP {} with a success body",
            resp.head.code
        ))),
        Err(m) => Err(protocol(format!("HTTP {}: {m}", resp.head.code))),
    };
    Ok((result, resp.head.connection))
}

/// Runs `fut`, or yields [`RpcError::Timeout`] after `timeout`.
async fn with_timeout<T>(
    target: &Target,
    timeout: Duration,
    fut: impl std::future::Future<Output = Result<T, RpcError>>,
) -> Result<T, RpcError> {
    smol::future::or(fut, async {
        smol::Timer::after(timeout).await;
        Err(RpcError::Timeout {
            node: target.name.clone(),
            secs: timeout.as_secs_f64(),
        })
    })
    .await
}

fn encode_args(args: &Value) -> Vec<u8> {
    serde_json::to_vec(args).expect("serializing a JSON value cannot fail")
}

impl NodeRpc for RpcClient {
    fn call_each(
        &self,
        procedure: &str,
        calls: &[(Target, Value)],
        timeout: Duration,
    ) -> Vec<(String, NodeResult)> {
        let ex = smol::LocalExecutor::new();
        let tasks: Vec<_> = calls
            .iter()
            .map(|(target, args)| {
                ex.spawn(async move {
                    if target.offline {
                        return Err(RpcError::Offline {
                            node: target.name.clone(),
                        });
                    }
                    let body = encode_args(args);
                    with_timeout(target, timeout, self.call_node(procedure, target, &body)).await
                })
            })
            .collect();
        let results = smol::block_on(ex.run(async {
            let mut out = Vec::with_capacity(tasks.len());
            for t in tasks {
                out.push(t.await);
            }
            out
        }));
        calls
            .iter()
            .map(|(t, _)| t.name.clone())
            .zip(results)
            .collect()
    }

    fn join_call(
        &self,
        procedure: &str,
        target: &Target,
        args: &Value,
        timeout: Duration,
    ) -> Result<(Value, String), RpcError> {
        if target.offline {
            return Err(RpcError::Offline {
                node: target.name.clone(),
            });
        }
        let body = encode_args(args);
        smol::block_on(with_timeout(
            target,
            timeout,
            self.join_node(procedure, target, &body),
        ))
    }

    fn own_cert_sha256(&self) -> String {
        self.cert_sha256.clone()
    }
}
