//! Wall time of cold CLI processes against a one-node virtual cluster:
//! `gnt-cluster init` (Ganeti 3.0.2 here: 7.7–8.7 s), `gnt-cluster info`
//! and `gnt-debug delay 0.001` (Ganeti: 0.60–1.09 s), each run a fresh
//! process as an admin's shell would start it; and LUXI job throughput:
//! 200 `OP_TEST_DELAY(0.001)` jobs, one `SubmitJob` call each, until all
//! finished, every job durable (Ganeti: 1.1–3.7 jobs/s).
//!
//! Run with `cargo bench --bench cluster_cli` (or `make bench`). Prints
//! medians; timings are never asserted anywhere.
#![allow(clippy::disallowed_methods)] // spawns the built binary
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn run(bin: &Path, root: &Path, args: &[&str]) -> Duration {
    let t = Instant::now();
    let out = Command::new(bin)
        .args(args)
        .env("GANETI_ROOTDIR", root)
        .env("GANETI_HOSTNAME", "node1")
        .output()
        .unwrap();
    let d = t.elapsed();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    d
}

fn main() {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_ganeti"));
    let base = std::env::temp_dir().join(format!("ganeti-bench-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let root = base.join("node1");
    std::fs::create_dir_all(root.join("etc/ganeti")).unwrap();
    std::fs::create_dir_all(base.join("bin")).unwrap();
    let gnt_cluster = base.join("bin/gnt-cluster");
    symlink(&exe, &gnt_cluster).unwrap();
    std::fs::write(
        base.join("hosts"),
        "127.0.0.11\tnode1\n127.0.0.10\tbench-cluster\n",
    )
    .unwrap();
    let init = [
        "init",
        "--enabled-hypervisors",
        "fake",
        "--enabled-disk-templates",
        "diskless",
        "--master-netdev",
        "lo",
        "--no-etc-hosts",
        "bench-cluster",
    ];
    let debug = base.join("bin/gnt-debug");
    symlink(&exe, &debug).unwrap();
    let mut inits = Vec::new();
    let mut infos = Vec::new();
    let mut delays = Vec::new();
    let mut rates = Vec::new();
    for round in 0..5 {
        inits.push(run(&gnt_cluster, &root, &init));
        // masterd signals readiness before init returns; info talks to it.
        for _ in 0..10 {
            infos.push(run(&gnt_cluster, &root, &["info"]));
            delays.push(run(&debug, &root, &["delay", "0.001"]));
        }
        rates.push(luxi_throughput(
            &root.join("var/run/ganeti/socket/ganeti-master"),
            200,
        ));
        run(&gnt_cluster, &root, &["destroy", "--yes-do-it"]);
        if round == 0 {
            println!("binary: {}", exe.display());
        }
    }
    let _ = std::fs::remove_dir_all(&base);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("gnt-cluster init  (cold, starts masterd): median {:8.2} ms over {} runs; Ganeti 3.0.2: 7690 ms quiet -> {:.0}x", ms(median(inits.clone())), inits.len(), 7690.0 / ms(median(inits)));
    println!(
        "gnt-cluster info  (cold process, LUXI):   median {:8.2} ms over {} runs",
        ms(median(infos.clone())),
        infos.len()
    );
    println!(
        "gnt-debug delay 0.001 (cold, job end to end): median {:8.2} ms over {} runs; Ganeti 3.0.2: 600 ms quiet -> {:.0}x",
        ms(median(delays.clone())),
        delays.len(),
        600.0 / ms(median(delays))
    );
    rates.sort_by(f64::total_cmp);
    println!(
        "LUXI throughput: 200 x OP_TEST_DELAY(0.001), one SubmitJob each, durable: median {:.0} jobs/s over {} runs (min {:.0}, max {:.0}); Ganeti 3.0.2: 3.7 jobs/s quiet",
        rates[rates.len() / 2],
        rates.len(),
        rates[0],
        rates[rates.len() - 1]
    );
}

/// Submits `n` jobs over one LUXI connection per submitter thread (4
/// threads), then waits until all are final; returns jobs per second.
fn luxi_throughput(socket: &Path, n: usize) -> f64 {
    use ganeti::luxi::client::Client;
    use ganeti::luxi::Method;
    use serde_json::json;
    let start = Instant::now();
    let threads = 4;
    let ids: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut c = Client::connect(socket).unwrap();
                    (0..n / threads + usize::from(t < n % threads))
                        .map(|_| {
                            c.call(
                                Method::SubmitJob,
                                json!([[{"OP_ID": "OP_TEST_DELAY", "duration": 0.001}]]),
                            )
                            .unwrap()
                            .as_u64()
                            .unwrap()
                        })
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut c = Client::connect(socket).unwrap();
    loop {
        let r = c.call(Method::QueryJobs, json!([ids, ["status"]])).unwrap();
        let done = r
            .as_array()
            .unwrap()
            .iter()
            .all(|j| matches!(j[0].as_str(), Some("success" | "error")));
        if done {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    n as f64 / start.elapsed().as_secs_f64()
}
