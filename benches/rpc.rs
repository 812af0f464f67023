//! Node RPC transport benchmark: `cargo bench --bench rpc`.
//!
//! Prints median and 90th percentile, never asserts: timings depend on the
//! machine and its load.
//!
//! 1. Round trip of a `version`-style ping over a kept-alive connection.
//! 2. The same with a cold start each time: a new `RpcClient` (reads the
//!    PEM, builds the TLS configurations), TCP connect, full handshake.
//! 3. One call fanned out to 3 and to 20 nodes, each its own server on
//!    its own 127.0.0.x address, connections kept alive.
//!
//! The nodes come from a [`StartNodes`] function: [`in_process_nodes`]
//! serves a tiny service with `rpc::server::serve` on threads of this
//! process; a function starting real `ganeti-noded` processes can replace it
//! without touching the measurements.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::expect_used)]

use ganeti::rpc::client::RpcClient;
use ganeti::rpc::server::{serve, TlsSource};
use ganeti::rpc::{NodeRpc, Peer, RemoteError, Service, Target, DEFAULT_TIMEOUT};
use serde_json::{json, Value};
use std::any::Any;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Nodes to call: all listen on `port`; `_guard` keeps them running.
struct Nodes {
    port: u16,
    targets: Vec<Target>,
    _guard: Box<dyn Any>,
}

/// Starts `count` nodes trusting the cluster certificate at `cert`, each
/// on its own loopback address from 127.0.0.`first_octet` up.
type StartNodes = fn(count: u8, first_octet: u8, cert: &Path) -> Nodes;

/// Answers `version` like noded would, and nothing else.
struct Ping;

impl Service for Ping {
    fn handle(&self, procedure: &str, _args: Value, _peer: &Peer) -> Result<Value, RemoteError> {
        match procedure {
            "version" => Ok(json!({
                "protocol": 1, "software": "bench", "name": "node", "configured": true
            })),
            other => Err(RemoteError::new(format!("unknown procedure {other}"))),
        }
    }
}

/// In-process servers, one thread each. Dropping the guard stops them.
fn in_process_nodes(count: u8, first_octet: u8, cert: &Path) -> Nodes {
    let id = ganeti::rpc::tls::load_identity(cert).unwrap();
    let config = ganeti::rpc::tls::server_config_pinned(&id).unwrap();
    'attempt: for _ in 0..20 {
        let mut listeners = Vec::new();
        let mut port = 0;
        for i in 0..count {
            let ip: IpAddr = [127, 0, 0, first_octet + i].into();
            match std::net::TcpListener::bind(SocketAddr::new(ip, port)) {
                Ok(l) => {
                    port = l.local_addr().unwrap().port();
                    listeners.push(l);
                }
                Err(_) => continue 'attempt,
            }
        }
        let (stop, stopped) = smol::channel::bounded::<()>(1);
        let mut targets = Vec::new();
        for (i, l) in listeners.into_iter().enumerate() {
            let addr = l.local_addr().unwrap();
            targets.push(Target::new(format!("node{i}"), addr.ip().to_string()));
            let listener = smol::net::TcpListener::try_from(l).unwrap();
            let config = config.clone();
            let source: TlsSource = Arc::new(move || config.clone());
            let stopped = stopped.clone();
            std::thread::spawn(move || {
                smol::block_on(smol::future::or(
                    async {
                        let _ = serve(listener, source, Arc::new(Ping)).await;
                    },
                    async {
                        let _ = stopped.recv().await;
                    },
                ));
            });
        }
        return Nodes {
            port,
            targets,
            _guard: Box::new(stop),
        };
    }
    panic!("no port free on all of 127.0.0.{first_octet}..+{count}");
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{what:<44} median {:>9.1} µs   p90 {:>9.1} µs   ({} runs)",
        percentile(&samples, 50).as_secs_f64() * 1e6,
        percentile(&samples, 90).as_secs_f64() * 1e6,
        samples.len()
    );
}

fn timed(n: usize, mut op: impl FnMut()) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            op();
            t.elapsed()
        })
        .collect()
}

fn ping_all(client: &RpcClient, targets: &[Target]) {
    for (name, r) in client.call("version", targets, &json!({}), DEFAULT_TIMEOUT) {
        r.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

fn main() {
    let start_nodes: StartNodes = in_process_nodes;
    let dir = std::env::temp_dir().join(format!("ganeti-bench-rpc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert: PathBuf = dir.join("server.pem");
    ganeti::crypto::generate_cert(&cert, ganeti::crypto::CERT_COMMON_NAME).unwrap();

    let one = start_nodes(1, 1, &cert);
    let client = RpcClient::new(&cert, one.port).unwrap();
    ping_all(&client, &one.targets); // warm the pool
    let warm = timed(2000, || ping_all(&client, &one.targets));
    report("ping, kept-alive connection", warm);
    let stats = client.stats();
    println!(
        "{:<44} handshakes {}, reused {}",
        "  (connections)", stats.handshakes, stats.reused
    );

    let cold = timed(200, || {
        let c = RpcClient::new(&cert, one.port).unwrap();
        ping_all(&c, &one.targets);
    });
    report("ping, new client + TLS handshake", cold);

    for (n, first) in [(3u8, 101u8), (20, 131)] {
        let nodes = start_nodes(n, first, &cert);
        let client = RpcClient::new(&cert, nodes.port).unwrap();
        ping_all(&client, &nodes.targets);
        let fan = timed(500, || ping_all(&client, &nodes.targets));
        report(&format!("fan-out to {n} nodes, kept-alive"), fan);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
