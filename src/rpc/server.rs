//! The noded side of RPC: accept, TLS, HTTP, dispatch.
//!
//! [`serve`] runs the accept loop for `daemons::noded`. Each connection is
//! a task: the TLS handshake (with the configuration fetched from the
//! [`TlsSource`] at that moment, so a node that just joined switches to the
//! cluster certificate without a restart), then a keep-alive loop of
//! requests. A peer without an acceptable client certificate is refused
//! during the handshake and logged; no request of it is read. Procedures run
//! on smol's blocking pool, so a slow one does not hold up other
//! connections. This module knows nothing about what procedures do.

use super::http::{self, Connection, HttpError, Request};
use super::{Peer, Service, PROTOCOL_VERSION};
use serde_json::Value;
use smol::io::{AsyncWriteExt, BufReader};
use smol::net::{TcpListener, TcpStream};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Where the server gets its TLS configuration for each new connection, so
/// a node can switch from join mode to the cluster certificate in place.
pub type TlsSource = Arc<dyn Fn() -> Arc<rustls::ServerConfig> + Send + Sync>;

/// Most connections served at once; further clients wait in the listen
/// backlog until one closes.
pub const MAX_CONNECTIONS: usize = 512;
/// A kept-alive connection with no new request for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Limit for the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Limit for reading one request once its first byte arrived (64 MiB at
/// LAN speed takes well under this).
pub const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(120);

/// Serves `service` on `listener` until the returned future is dropped.
/// Connections without an acceptable client certificate are refused and
/// logged; malformed requests get an error reply.
pub async fn serve(
    listener: TcpListener,
    tls: TlsSource,
    service: Arc<dyn Service>,
) -> std::io::Result<()> {
    // Connection tasks live in an executor owned by this future: dropping
    // the future cancels them all, and no global executor is assumed.
    let ex = Arc::new(smol::Executor::new());
    let slots = Arc::new(smol::lock::Semaphore::new(MAX_CONNECTIONS));
    let accept_loop = {
        let ex = ex.clone();
        async move {
            loop {
                let permit = slots.acquire_arc().await;
                let (stream, addr) = match listener.accept().await {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of descriptors and similar: back off instead
                        // of spinning; the listener itself stays usable.
                        log::warn!("rpc accept failed error={e}");
                        smol::Timer::after(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let config = tls();
                let service = service.clone();
                ex.spawn(async move {
                    connection(stream, addr, config, service).await;
                    drop(permit);
                })
                .detach();
            }
        }
    };
    ex.run(accept_loop).await
}

/// Races `fut` against a timer; `None` when the timer wins.
async fn within<T>(limit: Duration, fut: impl std::future::Future<Output = T>) -> Option<T> {
    smol::future::or(async { Some(fut.await) }, async {
        smol::Timer::after(limit).await;
        None
    })
    .await
}

async fn connection(
    stream: TcpStream,
    addr: SocketAddr,
    config: Arc<rustls::ServerConfig>,
    service: Arc<dyn Service>,
) {
    let _ = stream.set_nodelay(true);
    let acceptor = futures_rustls::TlsAcceptor::from(config);
    let tls = match within(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            log::warn!("rpc connection refused peer={addr} reason=\"TLS: {e}\"");
            return;
        }
        None => {
            log::warn!("rpc connection refused peer={addr} reason=\"TLS handshake timed out\"");
            return;
        }
    };
    let cert_sha256 = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| super::tls::cert_sha256(c))
        .unwrap_or_default();
    if cert_sha256.is_empty() {
        // The verifiers make a certificate mandatory; this is a backstop.
        log::warn!("rpc connection refused peer={addr} reason=\"no client certificate\"");
        return;
    }
    let peer = Peer {
        address: addr.to_string(),
        cert_sha256,
    };
    let mut conn = BufReader::new(tls);
    loop {
        // Idle wait for the first byte of the next request.
        let ready = within(IDLE_TIMEOUT, async {
            smol::io::AsyncBufReadExt::fill_buf(&mut conn)
                .await
                .map(|b| !b.is_empty())
        })
        .await;
        match ready {
            Some(Ok(true)) => {}
            Some(Ok(false)) | None => break, // closed by the peer, or idle
            Some(Err(e)) => {
                if !http::is_disconnect(&e) {
                    log::info!("rpc connection error peer={} error={e}", peer.address);
                }
                break;
            }
        }
        let reply = match within(REQUEST_READ_TIMEOUT, http::read_request(&mut conn)).await {
            Some(Ok(req)) => answer(req, &service, &peer).await,
            Some(Err(HttpError::Closed)) => break,
            Some(Err(HttpError::Io { source, .. })) if http::is_disconnect(&source) => break,
            Some(Err(e)) => {
                log::warn!("rpc bad request peer={} error=\"{e}\"", peer.address);
                Reply::error(400, &e.to_string(), Connection::Close)
            }
            None => {
                log::warn!("rpc request read timed out peer={}", peer.address);
                break;
            }
        };
        let bytes = http::encode_response(reply.code, &reply.body, reply.connection);
        let sent = async {
            conn.get_mut().write_all(&bytes).await?;
            conn.get_mut().flush().await
        };
        if let Err(e) = sent.await {
            log::info!("rpc reply not sent peer={} error={e}", peer.address);
            break;
        }
        if reply.connection == Connection::Close {
            let _ = conn.get_mut().close().await;
            break;
        }
    }
}

struct Reply {
    code: u16,
    body: Vec<u8>,
    connection: Connection,
}

impl Reply {
    fn error(code: u16, message: &str, connection: Connection) -> Reply {
        Reply {
            code,
            body: http::reply_body(Err(message)),
            connection,
        }
    }
}

/// Checks one well-framed request and runs its procedure. Errors of the
/// request itself are HTTP 400; a procedure's failure is a 200 carrying
/// `[false, message]`, as Ganeti's noded does.
async fn answer(req: Request, service: &Arc<dyn Service>, peer: &Peer) -> Reply {
    let keep = req.head.connection;
    if req.head.method != "POST" {
        return Reply::error(
            405,
            &format!("method {} not allowed; use POST", req.head.method),
            keep,
        );
    }
    let ours = PROTOCOL_VERSION.to_string();
    match req.head.version.as_deref() {
        Some(v) if v == ours => {}
        other => {
            let theirs = other.unwrap_or("(none)");
            log::warn!(
                "rpc refused peer={} procedure={} reason=\"protocol version {theirs}\"",
                peer.address,
                req.head.procedure
            );
            return Reply::error(
                400,
                &format!(
                    "RPC protocol version {theirs} not supported; this node speaks {PROTOCOL_VERSION}"
                ),
                keep,
            );
        }
    }
    let args = match serde_json::from_slice::<Value>(&req.body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return Reply::error(400, "request body must be a JSON object", keep),
        Err(e) => return Reply::error(400, &format!("request body is not JSON: {e}"), keep),
    };
    let service = service.clone();
    let procedure = req.head.procedure;
    let peer = peer.clone();
    let result = smol::unblock(move || service.handle(&procedure, args, &peer)).await;
    let body = match &result {
        Ok(v) => http::reply_body(Ok(v)),
        Err(e) => http::reply_body(Err(&e.0)),
    };
    Reply {
        code: 200,
        body,
        connection: keep,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rpc::tls::tests::{client_config_without_cert, new_identity, TempDir};
    use crate::rpc::tls::{self, Identity};
    use crate::rpc::RemoteError;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Procedures: `echo` returns its arguments, `fail` fails, `peer`
    /// returns the caller's certificate fingerprint. Counts calls.
    #[derive(Default)]
    pub(crate) struct TestService {
        pub(crate) calls: AtomicUsize,
    }

    impl Service for TestService {
        fn handle(&self, procedure: &str, args: Value, peer: &Peer) -> Result<Value, RemoteError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            match procedure {
                "echo" => Ok(args),
                "fail" => Err(RemoteError::new("it failed on purpose")),
                "peer" => Ok(Value::String(peer.cert_sha256.clone())),
                other => Err(RemoteError::new(format!("unknown procedure {other}"))),
            }
        }
    }

    /// A server on its own thread; stopped (connections closed) on drop.
    pub(crate) struct TestServer {
        pub(crate) addr: SocketAddr,
        pub(crate) service: Arc<TestService>,
        stop: Option<smol::channel::Sender<()>>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl TestServer {
        pub(crate) fn start(bind: SocketAddr, config: Arc<rustls::ServerConfig>) -> TestServer {
            let listener = smol::block_on(TcpListener::bind(bind)).unwrap();
            let addr = listener.local_addr().unwrap();
            let service = Arc::new(TestService::default());
            let (stop, stopped) = smol::channel::bounded::<()>(1);
            let svc: Arc<dyn Service> = service.clone();
            let source: TlsSource = Arc::new(move || config.clone());
            let thread = std::thread::spawn(move || {
                smol::block_on(smol::future::or(
                    async {
                        let _ = serve(listener, source, svc).await;
                    },
                    async {
                        let _ = stopped.recv().await;
                    },
                ));
            });
            TestServer {
                addr,
                service,
                stop: Some(stop),
                thread: Some(thread),
            }
        }

        pub(crate) fn pinned(bind: SocketAddr, id: &Identity) -> TestServer {
            TestServer::start(bind, tls::server_config_pinned(id).unwrap())
        }

        pub(crate) fn calls(&self) -> usize {
            self.service.calls.load(Ordering::SeqCst)
        }
    }

    impl Drop for TestServer {
        fn drop(&mut self) {
            drop(self.stop.take());
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    pub(crate) fn localhost() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    /// Sends raw bytes over TLS with `config`; returns the reply, or the
    /// error that ended the exchange.
    pub(crate) fn raw_exchange(
        addr: SocketAddr,
        config: Arc<rustls::ClientConfig>,
        requests: &[Vec<u8>],
    ) -> Vec<Result<(u16, Vec<u8>), String>> {
        smol::block_on(async {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let conn = futures_rustls::TlsConnector::from(config)
                .connect(tls::server_name("127.0.0.1"), tcp)
                .await;
            let mut conn = match conn {
                Ok(c) => BufReader::new(c),
                Err(e) => return vec![Err(format!("handshake: {e}"))],
            };
            let mut out = Vec::new();
            for r in requests {
                let sent = async {
                    conn.get_mut().write_all(r).await?;
                    conn.get_mut().flush().await
                };
                if let Err(e) = sent.await {
                    out.push(Err(format!("write: {e}")));
                    break;
                }
                match http::read_response(&mut conn).await {
                    Ok(resp) => out.push(Ok((resp.head.code, resp.body))),
                    Err(e) => {
                        out.push(Err(crate::error::chain(&e)));
                        break;
                    }
                }
            }
            out
        })
    }

    fn pinned_client(id: &Identity) -> Arc<rustls::ClientConfig> {
        tls::client_config_pinned(id).unwrap()
    }

    fn body_text(body: &[u8]) -> String {
        String::from_utf8_lossy(body).into_owned()
    }

    #[test]
    fn serves_a_client_with_the_cluster_certificate() {
        let (_d, _p, id) = new_identity();
        let srv = TestServer::pinned(localhost(), &id);
        let req = http::encode_request("peer", "x", b"{}");
        let out = raw_exchange(srv.addr, pinned_client(&id), &[req]);
        let (code, body) = out[0].clone().unwrap();
        assert_eq!(code, 200);
        assert_eq!(
            http::parse_reply_body(&body).unwrap(),
            Ok(Value::String(id.cert_sha256()))
        );
    }

    #[test]
    fn a_client_without_certificate_is_refused_before_any_request() {
        let (_d, _p, id) = new_identity();
        let srv = TestServer::pinned(localhost(), &id);
        let req = http::encode_request("echo", "x", b"{}");
        let out = raw_exchange(srv.addr, client_config_without_cert(), &[req]);
        assert!(out[0].is_err(), "{out:?}");
        assert_eq!(srv.calls(), 0);
        // join mode requires a certificate too
        let join = TestServer::start(localhost(), tls::server_config_join(&id).unwrap());
        let req = http::encode_request("echo", "x", b"{}");
        let out = raw_exchange(join.addr, client_config_without_cert(), &[req]);
        assert!(out[0].is_err(), "{out:?}");
        assert_eq!(join.calls(), 0);
    }

    #[test]
    fn a_client_with_another_certificate_is_refused() {
        let (_d, _p, id) = new_identity();
        let (_d2, _p2, other) = new_identity();
        let srv = TestServer::pinned(localhost(), &id);
        let req = http::encode_request("echo", "x", b"{}");
        // `other` pins its own certificate, so accept the server's too
        let cfg = tls::client_config_unpinned(&other).unwrap();
        let out = raw_exchange(srv.addr, cfg, &[req]);
        assert!(out[0].is_err(), "{out:?}");
        assert_eq!(srv.calls(), 0);
    }

    #[test]
    fn join_mode_accepts_any_client_certificate_and_records_it() {
        let (_d, _p, id) = new_identity();
        let (_d2, _p2, other) = new_identity();
        let srv = TestServer::start(localhost(), tls::server_config_join(&id).unwrap());
        let req = http::encode_request("peer", "x", b"{}");
        let out = raw_exchange(
            srv.addr,
            tls::client_config_unpinned(&other).unwrap(),
            &[req],
        );
        let (code, body) = out[0].clone().unwrap();
        assert_eq!(code, 200);
        assert_eq!(
            http::parse_reply_body(&body).unwrap(),
            Ok(Value::String(other.cert_sha256()))
        );
    }

    #[test]
    fn bad_requests_get_400_and_the_server_keeps_serving() {
        let (_d, _p, id) = new_identity();
        let srv = TestServer::pinned(localhost(), &id);
        let cfg = pinned_client(&id);
        // well-framed but wrong bodies: 400, connection stays usable
        let out = raw_exchange(
            srv.addr,
            cfg.clone(),
            &[
                http::encode_request("echo", "x", b"not json"),
                http::encode_request("echo", "x", b"[1, 2]"),
                http::encode_request("echo", "x", br#"{"ok": 1}"#),
            ],
        );
        let texts: Vec<(u16, String)> = out
            .into_iter()
            .map(|r| r.map(|(c, b)| (c, body_text(&b))).unwrap())
            .collect();
        assert_eq!(texts[0].0, 400);
        assert!(texts[0].1.contains("not JSON"), "{texts:?}");
        assert_eq!(texts[1].0, 400);
        assert!(texts[1].1.contains("JSON object"), "{texts:?}");
        assert_eq!(texts[2], (200, r#"[true,{"ok":1}]"#.to_string()));
        // garbled framing and a huge head: 400, then the connection closes
        let mut huge = b"POST /echo HTTP/1.1\r\n".to_vec();
        while huge.len() < 2 * http::MAX_HEAD_BYTES {
            huge.extend_from_slice(b"X-Pad: 0123456789012345678901234567890123456789\r\n");
        }
        huge.extend_from_slice(b"Content-Length: 2\r\n\r\n{}");
        for bad in [
            huge,
            b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
            b"GARBAGE\r\n\r\n".to_vec(),
        ] {
            let out = raw_exchange(
                srv.addr,
                cfg.clone(),
                &[bad, http::encode_request("echo", "x", b"{}")],
            );
            let (code, body) = out[0].clone().unwrap();
            assert_eq!(code, 400);
            assert!(matches!(
                http::parse_reply_body(&body).unwrap(),
                Err(ref m) if m.contains("HTTP") || m.contains("exceeds")
            ));
            assert!(out[1].is_err(), "connection should be closed: {out:?}");
        }
        // a fresh connection is served
        let out = raw_exchange(srv.addr, cfg, &[http::encode_request("echo", "x", b"{}")]);
        assert_eq!(out[0].clone().unwrap().0, 200);
        assert_eq!(srv.calls(), 2);
    }

    #[test]
    fn other_protocol_versions_are_refused() {
        let (_d, _p, id) = new_identity();
        let srv = TestServer::pinned(localhost(), &id);
        let req = b"POST /echo HTTP/1.1\r\nContent-Length: 2\r\nGaneti-Rpc-Version: 2\r\n\r\n{}";
        let missing = b"POST /echo HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
        let out = raw_exchange(
            srv.addr,
            pinned_client(&id),
            &[req.to_vec(), missing.to_vec()],
        );
        let (code, body) = out[0].clone().unwrap();
        assert_eq!(code, 400);
        assert_eq!(
            http::parse_reply_body(&body).unwrap(),
            Err("RPC protocol version 2 not supported; this node speaks 1".to_string())
        );
        let (code, body) = out[1].clone().unwrap();
        assert_eq!(code, 400);
        assert!(body_text(&body).contains("version (none) not supported"));
        assert_eq!(srv.calls(), 0);
    }

    #[test]
    fn ganeti_style_rsa_v1_certificates_work_with_tls13_and_tls12() {
        let dir = TempDir::new("v1srv");
        let Some(path) = tls::tests::openssl_v1_identity(&dir.0) else {
            return;
        };
        let id = tls::load_identity(&path).unwrap();
        let srv = TestServer::pinned(localhost(), &id);
        for cfg in [pinned_client(&id), tls::tests::client_config_tls12(&id)] {
            let out = raw_exchange(
                srv.addr,
                cfg,
                &[http::encode_request("echo", "x", br#"{"v1": true}"#)],
            );
            assert_eq!(
                out[0].clone().unwrap(),
                (200, br#"[true,{"v1":true}]"#.to_vec())
            );
        }
        // and our own P-256 certificate over TLS 1.2
        let (_d, _p, ours) = new_identity();
        let srv = TestServer::pinned(localhost(), &ours);
        let out = raw_exchange(
            srv.addr,
            tls::tests::client_config_tls12(&ours),
            &[http::encode_request("echo", "x", b"{}")],
        );
        assert_eq!(out[0].clone().unwrap().0, 200);
    }
}
