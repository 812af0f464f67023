//! Node daemon benchmark: `cargo bench --bench noded`.
//!
//! Prints medians and 90th percentiles, never asserts. Real processes of
//! the built binary (release build) on loopback (see
//! `support/real_nodes.rs`):
//!
//! 4. Memory of one `ganeti-noded` with `mlockall` on (the production
//!    default; the benchmark runs as root): `VmRSS` and `VmLck` from
//!    `/proc/PID/status` idle, while 4 threads call it with
//!    `version`/`node_info` as fast as it answers, and after a 13 MB
//!    `upload_files` (the 1000-node / 10,000-instance `config.data`).
//!    Issue 4's goal: at most 16 MB locked.
//! 5. `gnt-cluster verify` end to end (a cold CLI process; masterd runs the
//!    job and calls the nodeds) on a 1-node and a 3-node cluster made with
//!    `gnt-cluster init` and `gnt-node add` with join tokens. Real Ganeti
//!    3.0.2 takes 1.36 s on one node (quiet machine, BASELINE.md).
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::expect_used)]
#![allow(clippy::disallowed_methods)] // spawns the built binary

#[path = "support/real_nodes.rs"]
mod real_nodes;

use ganeti::rpc::client::RpcClient;
use ganeti::rpc::proto::{FileUpload, NodeInfoArgs, UploadFilesArgs};
use ganeti::rpc::{NodeRpc, DEFAULT_TIMEOUT};
use real_nodes::{
    memory_kb, network, time_figure, timed, Figure, Memory, RealNodes, VirtualCluster, PORT,
};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Samples the memory of `pid` every 20 ms until `stop`.
fn sample_until(pid: u32, stop: &AtomicBool) -> Vec<Memory> {
    let mut out = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        out.push(memory_kb(pid));
        std::thread::sleep(Duration::from_millis(20));
    }
    out.push(memory_kb(pid));
    out
}

/// Three figures (RSS, VmLck, locked resident) in MB from samples.
fn memory_figures(what: &str, samples: &[Memory], figures: &mut Vec<Figure>) {
    type Pick = fn(&Memory) -> u64;
    let fields: [(&str, Pick); 3] = [
        ("VmRSS", |m| m.rss),
        ("VmLck", |m| m.vm_lck),
        ("locked resident", |m| m.locked_resident),
    ];
    for (label, pick) in fields {
        let mut v: Vec<u64> = samples.iter().map(pick).collect();
        v.sort_unstable();
        let at = |p: usize| v[(v.len() * p / 100).min(v.len() - 1)] as f64 / 1024.0;
        figures.push(Figure {
            name: format!("noded {label}, {what} ({} samples)", v.len()),
            median: at(50),
            p90: at(90),
            unit: "MB",
            ganeti: None,
        });
    }
}

/// Figure 4.
fn memory(figures: &mut Vec<Figure>) {
    let nodes = RealNodes::start("noded-mem", network(242), 1, true);
    let pid = nodes.pid(0);
    let target = nodes.targets[0].clone();
    std::thread::sleep(Duration::from_millis(500));
    let idle: Vec<Memory> = (0..10)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(20));
            memory_kb(pid)
        })
        .collect();
    memory_figures("idle", &idle, figures);

    let info = serde_json::to_value(NodeInfoArgs {
        checksum_paths: vec!["/var/lib/ganeti/server.pem".into()],
    })
    .unwrap();
    let stop = AtomicBool::new(false);
    let calls = AtomicU64::new(0);
    let started = Instant::now();
    let under_load = std::thread::scope(|s| {
        for t in 0..4 {
            let (stop, calls, info, target, cert) = (&stop, &calls, &info, &target, &nodes.cert);
            s.spawn(move || {
                let client = RpcClient::new(cert, PORT).unwrap();
                let one = std::slice::from_ref(target);
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let (proc_name, args) = if i % 2 == 0 {
                        ("version", json!({}))
                    } else {
                        ("node_info", info.clone())
                    };
                    for (name, r) in client.call(proc_name, one, &args, DEFAULT_TIMEOUT) {
                        r.unwrap_or_else(|e| panic!("{name}: {e}"));
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            });
        }
        let sampler = s.spawn(|| sample_until(pid, &stop));
        std::thread::sleep(Duration::from_secs(3));
        stop.store(true, Ordering::Relaxed);
        sampler.join().unwrap()
    });
    println!(
        "noded under load: {} calls in {:.1} s from 4 threads",
        calls.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    memory_figures("4 threads calling", &under_load, figures);

    // The 1000-node / 10,000-instance config.data (9.7 MB), padded with
    // trailing whitespace (still valid JSON) to 13 MB.
    let mut json = ganeti::config::test_support::generated(1000, 10_000).to_json();
    json.resize(json.len().max(13 * 1024 * 1024), b' ');
    let upload = serde_json::to_value(UploadFilesArgs {
        files: vec![FileUpload {
            path: ganeti::cmdlib::redist::CONFIG_DATA.into(),
            data: ganeti::rpc::b64::encode(&json),
            mode: 0o640,
        }],
    })
    .unwrap();
    let client = RpcClient::new(&nodes.cert, PORT).unwrap();
    let stop = AtomicBool::new(false);
    let during = std::thread::scope(|s| {
        let sampler = s.spawn(|| sample_until(pid, &stop));
        for (name, r) in client.call(
            "upload_files",
            std::slice::from_ref(&target),
            &upload,
            Duration::from_secs(60),
        ) {
            r.unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        stop.store(true, Ordering::Relaxed);
        sampler.join().unwrap()
    });
    println!(
        "uploaded config.data of {:.1} MiB ({:.1} MiB of base64 in the request)",
        json.len() as f64 / 1048576.0,
        ganeti::rpc::b64::encode(&json).len() as f64 / 1048576.0
    );
    memory_figures("during a 13 MB upload", &during, figures);
    std::thread::sleep(Duration::from_secs(1));
    let after: Vec<Memory> = (0..10)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(20));
            memory_kb(pid)
        })
        .collect();
    memory_figures("1 s after a 13 MB upload", &after, figures);
}

/// Runs `gnt-cluster verify` `n` times on node1.
fn verify_runs(c: &VirtualCluster, n: usize) -> Vec<Duration> {
    let (code, out) = c.run("node1", "gnt-cluster", &["verify"], true);
    if code != 0 {
        println!("gnt-cluster verify exited {code} (timed all the same):\n{out}");
    }
    timed(n, || {
        c.run("node1", "gnt-cluster", &["verify"], true);
    })
}

/// Figure 5.
fn verify(figures: &mut Vec<Figure>) {
    let c = VirtualCluster::new("verify", network(243), 3);
    for n in ["node1", "node2", "node3"] {
        c.prepare_node(n);
    }
    c.init();
    figures.push(time_figure(
        "gnt-cluster verify, 1 node (cold CLI)",
        verify_runs(&c, 9),
        Some(1360.0),
    ));
    for n in ["node2", "node3"] {
        c.run(
            n,
            "ganeti",
            &["daemon-util", "start", "ganeti-noded"],
            false,
        );
        real_nodes::wait_for("noded", || c.daemon_pid(n, "ganeti-noded").is_some());
        let out = c
            .command("node1", "gnt-cluster")
            .args(["join-token", "--ttl", "600"])
            .output()
            .unwrap();
        assert!(out.status.success(), "join-token: {out:?}");
        let token = String::from_utf8(out.stdout).unwrap();
        let file = c.root(n).join("var/lib/ganeti/join-token");
        ganeti::sys::fs::atomic_write(&file, format!("{}\n", token.trim()).as_bytes(), 0o600)
            .unwrap();
        c.run("node1", "gnt-node", &["add", n], false);
    }
    figures.push(time_figure(
        "gnt-cluster verify, 3 nodes (cold CLI)",
        verify_runs(&c, 9),
        None,
    ));
}

fn main() {
    let mut figures = Vec::new();
    println!("binary: {}", real_nodes::binary().display());
    memory(&mut figures);
    verify(&mut figures);
    real_nodes::print_table("noded: medians and 90th percentiles", &figures);
    println!("(issue 4's goal for noded: at most 16 MB locked)");
}
