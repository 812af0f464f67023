//! Node RPC benchmark: `cargo bench --bench rpc`.
//!
//! Prints medians and 90th percentiles, never asserts: timings depend on
//! the machine and its load. The figures of issue 4 come from real
//! `ganeti-noded` processes of the built binary (release build), each on
//! its own `127.X.Y.i:1811` (see `support/real_nodes.rs`), with `mlockall`
//! on as in production:
//!
//! 1. Round trip of `version` to one noded: over a kept-alive connection,
//!    and cold (a new `RpcClient`, which reads the PEM and builds the TLS
//!    configurations, then TCP connect and a full mutual-TLS handshake).
//! 2. One call fanned out to 3 and to 20 nodeds, connections kept alive:
//!    `version`, and `node_info` with three checksum paths (what verify
//!    asks every node).
//! 3. Config distribution: a 1000-node / 10,000-instance `config.data`
//!    pushed to 3 master candidates by masterd's own
//!    [`RpcReplicator`](ganeti::cmdlib::redist::RpcReplicator)
//!    (`upload_files` to the candidates and `write_ssconf` to the online
//!    nodes, at once), and the `upload_files` fan-out alone.
//!
//! For comparison, the same round trip and fan-out against in-process
//! servers answering `version` from a tiny [`Service`] (the transport
//! alone, no daemon).
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::expect_used)]
#![allow(clippy::disallowed_methods)] // spawns the built binary

#[path = "support/real_nodes.rs"]
mod real_nodes;

use ganeti::rpc::client::RpcClient;
use ganeti::rpc::server::{serve, TlsSource};
use ganeti::rpc::{NodeRpc, Peer, RemoteError, Service, Target, DEFAULT_TIMEOUT};
use serde_json::{json, Value};
use std::any::Any;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ganeti::cmdlib::redist::RpcReplicator;
use ganeti::config::store::Replicator;
use ganeti::rpc::proto::{FileUpload, NodeInfoArgs, UploadFilesArgs, UPLOAD_FILES};
use real_nodes::{network, time_figure, timed, Figure, RealNodes, PORT};

/// Nodes to call: all listen on `port`; `_guard` keeps them running.
struct Nodes {
    port: u16,
    targets: Vec<Target>,
    _guard: Box<dyn Any>,
}

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

fn ping_all(client: &RpcClient, targets: &[Target]) {
    for (name, r) in client.call("version", targets, &json!({}), DEFAULT_TIMEOUT) {
        r.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

fn node_info_all(client: &RpcClient, targets: &[Target], args: &Value) {
    for (name, r) in client.call("node_info", targets, args, DEFAULT_TIMEOUT) {
        r.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// The transport alone: in-process servers.
fn in_process(figures: &mut Vec<Figure>) {
    let dir = std::env::temp_dir().join(format!("ganeti-bench-rpc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert: PathBuf = dir.join("server.pem");
    ganeti::crypto::generate_cert(&cert, ganeti::crypto::CERT_COMMON_NAME).unwrap();

    let one = in_process_nodes(1, 1, &cert);
    let client = RpcClient::new(&cert, one.port).unwrap();
    ping_all(&client, &one.targets); // warm the pool
    let warm = timed(2000, || ping_all(&client, &one.targets));
    figures.push(time_figure("in-process: version, kept-alive", warm, None));
    let cold = timed(200, || {
        let c = RpcClient::new(&cert, one.port).unwrap();
        ping_all(&c, &one.targets);
    });
    figures.push(time_figure(
        "in-process: version, new client + TLS",
        cold,
        None,
    ));
    for (n, first) in [(3u8, 101u8), (20, 131)] {
        let nodes = in_process_nodes(n, first, &cert);
        let client = RpcClient::new(&cert, nodes.port).unwrap();
        ping_all(&client, &nodes.targets);
        let fan = timed(500, || ping_all(&client, &nodes.targets));
        figures.push(time_figure(
            &format!("in-process: version fan-out to {n}, kept-alive"),
            fan,
            None,
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Figures 1 and 2: real nodeds.
fn real_round_trips(nodes: &RealNodes, figures: &mut Vec<Figure>) {
    let one = &nodes.targets[..1];
    let client = RpcClient::new(&nodes.cert, PORT).unwrap();
    ping_all(&client, one);
    let before = client.stats();
    let warm = timed(2000, || ping_all(&client, one));
    let after = client.stats();
    println!(
        "version to noded, kept alive: {} handshakes, {} reused connections over 2000 calls",
        after.handshakes - before.handshakes,
        after.reused - before.reused
    );
    figures.push(time_figure(
        "noded: version, kept-alive connection",
        warm,
        None,
    ));
    let cold = timed(200, || {
        let c = RpcClient::new(&nodes.cert, PORT).unwrap();
        ping_all(&c, one);
    });
    figures.push(time_figure(
        "noded: version, new client + TLS handshake",
        cold,
        None,
    ));

    let info = serde_json::to_value(NodeInfoArgs {
        checksum_paths: vec![
            "/var/lib/ganeti/server.pem".into(),
            "/var/lib/ganeti/config.data".into(),
            "/etc/ganeti/redist-files".into(),
        ],
    })
    .unwrap();
    for n in [3usize, 20] {
        let targets = &nodes.targets[..n];
        let client = RpcClient::new(&nodes.cert, PORT).unwrap();
        ping_all(&client, targets);
        let fan = timed(500, || ping_all(&client, targets));
        figures.push(time_figure(
            &format!("noded: version fan-out to {n}, kept-alive"),
            fan,
            None,
        ));
        node_info_all(&client, targets, &info);
        let fan = timed(300, || node_info_all(&client, targets, &info));
        figures.push(time_figure(
            &format!("noded: node_info (3 checksums) fan-out to {n}"),
            fan,
            None,
        ));
    }
}

/// Figure 3: `config.data` of 1000 nodes / 10,000 instances to 3
/// candidates (node2..node4; node1 plays the master, which writes its own).
fn config_distribution(nodes: &RealNodes, figures: &mut Vec<Figure>) {
    let mut cfg = ganeti::config::test_support::generated(1000, 10_000);
    let master = cfg.cluster.master_node.clone();
    for node in cfg.nodes.values_mut() {
        // node<number>.example.com; pick by name, not by map position.
        let number: usize = node.name.as_str()["node".len()..]
            .split('.')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        if node.uuid == master {
            node.primary_ip = nodes.targets[0].address.clone();
        } else if (2..=4).contains(&number) {
            node.master_candidate = true;
            node.offline = false;
            node.primary_ip = nodes.targets[number - 1].address.clone();
        } else {
            // Not reachable here: offline nodes are never contacted.
            node.master_candidate = false;
            node.offline = true;
        }
    }
    let json = cfg.to_json();
    println!(
        "config.data: 1000 nodes, 10,000 instances, {:.1} MB",
        json.len() as f64 / 1e6
    );
    let client = Arc::new(RpcClient::new(&nodes.cert, PORT).unwrap());
    let replicator = RpcReplicator::new(client.clone());
    // At 10,000 instances ssconf_instance_list is over Ganeti's 128 KiB
    // ssconf limit, so the nodes refuse write_ssconf (as Ganeti's would);
    // the config.data upload must still have worked.
    let warnings = replicator.replicate(&cfg, &json);
    for w in &warnings {
        println!("replicator warning: {w}");
    }
    let config_ok = |w: &[String]| w.iter().all(|w| !w.contains("config.data"));
    assert!(config_ok(&warnings), "{warnings:?}");
    for t in &nodes.targets[1..4] {
        let data = nodes
            .cluster
            .root(&t.name)
            .join("var/lib/ganeti/config.data");
        assert_eq!(
            std::fs::read(&data).unwrap().len(),
            json.len(),
            "{}",
            t.name
        );
    }
    let runs = timed(15, || {
        let w = replicator.replicate(&cfg, &json);
        assert!(config_ok(&w), "{w:?}");
    });
    let mb = json.len() as f64 / 1e6;
    figures.push(time_figure(
        &format!("config.data {mb:.1} MB to 3 candidates: RpcReplicator"),
        runs,
        None,
    ));
    let upload = serde_json::to_value(UploadFilesArgs {
        files: vec![FileUpload {
            path: ganeti::cmdlib::redist::CONFIG_DATA.into(),
            data: ganeti::rpc::b64::encode(&json),
            mode: 0o640,
        }],
    })
    .unwrap();
    for (n, label) in [(3, "3 candidates"), (1, "1 node")] {
        let targets = &nodes.targets[1..1 + n];
        let runs = timed(15, || {
            for (name, r) in client.call(UPLOAD_FILES, targets, &upload, Duration::from_secs(30)) {
                r.unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        });
        figures.push(time_figure(
            &format!("config.data {mb:.1} MB to {label}: upload_files"),
            runs,
            None,
        ));
    }
}

fn main() {
    let mut figures = Vec::new();
    in_process(&mut figures);
    println!("binary: {}", real_nodes::binary().display());
    let nodes = RealNodes::start("rpc", network(241), 20, true);
    println!(
        "20 nodeds (mlockall on) on {}..{}",
        nodes.targets[0].address, nodes.targets[19].address
    );
    real_round_trips(&nodes, &mut figures);
    config_distribution(&nodes, &mut figures);
    drop(nodes);
    real_nodes::print_table("rpc: medians and 90th percentiles", &figures);
}
