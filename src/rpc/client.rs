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

impl RpcClient {
    /// Sends each body to its node, all at once; one result per node, in
    /// order. Offline nodes are not contacted.
    fn send_all(
        &self,
        procedure: &str,
        sends: &[(&Target, &[u8])],
        timeout: Duration,
    ) -> Vec<(String, NodeResult)> {
        let ex = smol::LocalExecutor::new();
        let tasks: Vec<_> = sends
            .iter()
            .map(|&(target, body)| {
                ex.spawn(async move {
                    if target.offline {
                        return Err(RpcError::Offline {
                            node: target.name.clone(),
                        });
                    }
                    with_timeout(target, timeout, self.call_node(procedure, target, body)).await
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
        sends
            .iter()
            .map(|(t, _)| t.name.clone())
            .zip(results)
            .collect()
    }
}

impl NodeRpc for RpcClient {
    fn call_each(
        &self,
        procedure: &str,
        calls: &[(Target, Value)],
        timeout: Duration,
    ) -> Vec<(String, NodeResult)> {
        let bodies: Vec<Vec<u8>> = calls.iter().map(|(_, args)| encode_args(args)).collect();
        let sends: Vec<(&Target, &[u8])> = calls
            .iter()
            .zip(&bodies)
            .map(|((t, _), b)| (t, b.as_slice()))
            .collect();
        self.send_all(procedure, &sends, timeout)
    }

    /// Same arguments everywhere: encoded once, however many nodes (a
    /// config.data upload to the candidates is megabytes).
    fn call(
        &self,
        procedure: &str,
        targets: &[Target],
        args: &Value,
        timeout: Duration,
    ) -> Vec<(String, NodeResult)> {
        let body = encode_args(args);
        let sends: Vec<(&Target, &[u8])> = targets.iter().map(|t| (t, body.as_slice())).collect();
        self.send_all(procedure, &sends, timeout)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::server::tests::{localhost, TestServer};
    use crate::rpc::tls::tests::new_identity;
    use crate::rpc::DEFAULT_TIMEOUT;
    use serde_json::json;
    use std::net::{IpAddr, SocketAddr};
    use std::time::Instant;

    fn target(name: &str, addr: SocketAddr) -> Target {
        Target::new(name, addr.ip().to_string())
    }

    /// Binds one pinned server per address in 127.0.0.`first`.., all on the
    /// same port (a client calls every node on one port).
    fn servers_on_one_port(first: u8, n: u8, id: &crate::rpc::tls::Identity) -> Vec<TestServer> {
        for _attempt in 0..20 {
            let a = TestServer::pinned(SocketAddr::new([127, 0, 0, first].into(), 0), id);
            let port = a.addr.port();
            let mut all = vec![a];
            for i in 1..n {
                let ip: IpAddr = [127, 0, 0, first + i].into();
                if std::net::TcpListener::bind((ip, port)).is_err() {
                    break;
                }
                all.push(TestServer::pinned(SocketAddr::new(ip, port), id));
            }
            if all.len() == usize::from(n) {
                return all;
            }
        }
        panic!("no common free port found");
    }

    fn client(path: &Path, port: u16) -> RpcClient {
        RpcClient::new(path, port).unwrap()
    }

    #[test]
    fn calls_over_mutual_tls_and_reuses_the_connection() {
        let (_d, path, id) = new_identity();
        let srv = TestServer::pinned(localhost(), &id);
        let c = client(&path, srv.addr.port());
        let t = target("node1", srv.addr);
        for i in 0..10 {
            let r = c.call_one("echo", &t, &json!({ "i": i }), DEFAULT_TIMEOUT);
            assert_eq!(r, Ok(json!({ "i": i })));
        }
        assert_eq!(
            c.stats(),
            ClientStats {
                handshakes: 1,
                reused: 9
            }
        );
        assert_eq!(c.own_cert_sha256(), id.cert_sha256());
        let r = c.call_one("peer", &t, &json!({}), DEFAULT_TIMEOUT);
        assert_eq!(r, Ok(Value::String(id.cert_sha256())));
    }

    #[test]
    fn a_remote_failure_is_remote_with_the_nodes_message() {
        let (_d, path, id) = new_identity();
        let srv = TestServer::pinned(localhost(), &id);
        let c = client(&path, srv.addr.port());
        let r = c.call_one("fail", &target("n", srv.addr), &json!({}), DEFAULT_TIMEOUT);
        assert_eq!(
            r,
            Err(RpcError::Remote {
                node: "n".into(),
                message: "it failed on purpose".into()
            })
        );
    }

    #[test]
    fn a_server_with_another_certificate_is_refused() {
        let (_d, path, _id) = new_identity();
        let (_d2, _p2, other) = new_identity();
        let srv = TestServer::pinned(localhost(), &other);
        let c = client(&path, srv.addr.port());
        let r = c.call_one("echo", &target("n", srv.addr), &json!({}), DEFAULT_TIMEOUT);
        assert!(matches!(r, Err(RpcError::Tls { .. })), "{r:?}");
        assert_eq!(srv.calls(), 0);
    }

    #[test]
    fn a_client_with_another_certificate_gets_a_tls_error() {
        let (_d, _path, id) = new_identity();
        let (_d2, other_path, _other) = new_identity();
        // join_call does not pin the server, so the only thing wrong here
        // is the client's certificate, which the pinned server refuses.
        let srv = TestServer::pinned(localhost(), &id);
        let c = client(&other_path, srv.addr.port());
        let r = c.join_call("echo", &target("n", srv.addr), &json!({}), DEFAULT_TIMEOUT);
        assert!(matches!(r, Err(RpcError::Tls { .. })), "{r:?}");
        assert_eq!(srv.calls(), 0);
    }

    #[test]
    fn join_call_reports_the_nodes_certificate() {
        let (_d, path, id) = new_identity();
        let (_d2, _p2, node) = new_identity();
        let srv = TestServer::start(
            localhost(),
            crate::rpc::tls::server_config_join(&node).unwrap(),
        );
        let c = client(&path, srv.addr.port());
        let (v, fp) = c
            .join_call("peer", &target("n", srv.addr), &json!({}), DEFAULT_TIMEOUT)
            .unwrap();
        assert_eq!(fp, node.cert_sha256());
        assert_eq!(v, Value::String(id.cert_sha256()));
        assert_eq!(c.stats().reused, 0);
    }

    #[test]
    fn fans_out_to_three_nodes_in_order() {
        let (_d, path, id) = new_identity();
        let srvs = servers_on_one_port(11, 3, &id);
        let c = client(&path, srvs[0].addr.port());
        let calls: Vec<(Target, Value)> = srvs
            .iter()
            .enumerate()
            .map(|(i, s)| (target(&format!("node{i}"), s.addr), json!({ "n": i })))
            .collect();
        let out = c.call_each("echo", &calls, DEFAULT_TIMEOUT);
        let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["node0", "node1", "node2"]);
        for (i, (_, r)) in out.iter().enumerate() {
            assert_eq!(r, &Ok(json!({ "n": i })));
        }
        assert!(srvs.iter().all(|s| s.calls() == 1));
    }

    #[test]
    fn dead_nodes_time_out_together_while_others_answer() {
        let (_d, path, id) = new_identity();
        let srvs = servers_on_one_port(21, 2, &id);
        let port = srvs[0].addr.port();
        // Three "dead" nodes: they accept TCP and never say anything.
        let mut dead = Vec::new();
        for last in 23..=25u8 {
            let l =
                std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, last], port))).unwrap();
            let (keep_tx, keep_rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                while let Ok((s, _)) = l.accept() {
                    if keep_tx.send(s).is_err() {
                        break;
                    }
                }
            });
            dead.push(keep_rx);
        }
        let c = client(&path, port);
        let mut targets: Vec<Target> = vec![target("ok1", srvs[0].addr)];
        for last in 23..=25u8 {
            targets.push(Target::new(
                format!("dead{last}"),
                format!("127.0.0.{last}"),
            ));
        }
        targets.push(target("ok2", srvs[1].addr));
        let timeout = Duration::from_secs(2);
        let started = Instant::now();
        let out = c.call("echo", &targets, &json!({}), timeout);
        let took = started.elapsed();
        assert_eq!(out[0].1, Ok(json!({})));
        assert_eq!(out[4].1, Ok(json!({})));
        for (name, r) in &out[1..4] {
            assert_eq!(
                r,
                &Err(RpcError::Timeout {
                    node: name.clone(),
                    secs: 2.0
                })
            );
        }
        // Serially the three dead nodes would take 3 × 2 s.
        assert!(took < 3 * timeout, "took {took:?}");
        drop(dead);
    }

    #[test]
    fn offline_nodes_are_not_contacted() {
        let (_d, path, _id) = new_identity();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let c = client(&path, addr.port());
        let mut t = target("off", addr);
        t.offline = true;
        let r = c.call_one("echo", &t, &json!({}), DEFAULT_TIMEOUT);
        assert_eq!(r, Err(RpcError::Offline { node: "off".into() }));
        let e = l.accept().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
        assert_eq!(c.stats(), ClientStats::default());
    }

    #[test]
    fn nothing_listening_is_a_connect_error() {
        let (_d, path, _id) = new_identity();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let c = client(&path, port);
        let r = c.call_one(
            "echo",
            &Target::new("n", "127.0.0.1"),
            &json!({}),
            DEFAULT_TIMEOUT,
        );
        assert!(matches!(r, Err(RpcError::Connect { .. })), "{r:?}");
    }

    #[test]
    fn a_pooled_connection_closed_by_the_node_is_replaced_once() {
        let (_d, path, id) = new_identity();
        let srv = TestServer::pinned(localhost(), &id);
        let addr = srv.addr;
        let c = client(&path, addr.port());
        let t = target("n", addr);
        assert_eq!(
            c.call_one("echo", &t, &json!({}), DEFAULT_TIMEOUT),
            Ok(json!({}))
        );
        drop(srv); // closes the pooled connection's other end
        let srv = TestServer::pinned(addr, &id);
        assert_eq!(
            c.call_one("echo", &t, &json!({"again": 1}), DEFAULT_TIMEOUT),
            Ok(json!({"again": 1}))
        );
        assert_eq!(
            c.stats(),
            ClientStats {
                handshakes: 2,
                reused: 1
            }
        );
        assert_eq!(srv.calls(), 1);
    }

    #[test]
    fn ipv6_literals_are_bracketed() {
        let (_d, path, _id) = new_identity();
        let c = client(&path, 1811);
        assert_eq!(c.endpoint("::1"), "[::1]:1811");
        assert_eq!(c.endpoint("[::1]"), "[::1]:1811");
        assert_eq!(c.endpoint("192.0.2.1"), "192.0.2.1:1811");
    }
}
