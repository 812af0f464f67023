//! Instance life-cycle benchmark: `cargo bench --bench instances`.
//!
//! Prints medians and 90th percentiles, never asserts. A one-node virtual
//! cluster of real processes of the built binary (release build, or
//! `GANETI_BENCH_BIN`), made with `gnt-cluster init` as an admin would
//! (fake hypervisor, diskless template, the `noop` OS: Debian's
//! `ganeti-os-noop` when installed, else a minimal OS API 20 definition
//! written here with the same behaviour). Every figure is a cold CLI
//! process end to end, as the admin's shell runs it, against real Ganeti
//! 3.0.2's quiet-machine figures from BASELINE.md:
//!
//! 1. `gnt-instance add -t diskless -o noop -H fake` (Ganeti: 1.08 s;
//!    issue 5's goal ≥ 20× faster);
//! 2. `gnt-instance shutdown` / `startup` / `reboot` (0.72 / 0.82 / 0.79 s);
//! 3. `gnt-instance list` (default fields, live status from the node) with
//!    100 and 1000 running instances (issue 5's goal ≤ 20 ms / ≤ 50 ms;
//!    Ganeti: 0.29 s with 20 instances);
//! 4. resident memory of the daemons (masterd, noded, confd) with 100 and
//!    1000 instances
//!    (Ganeti's daemons: 208 MB with 20 instances, 261 MB with 100).
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::expect_used)]
#![allow(clippy::disallowed_methods)] // spawns the built binary

#[path = "support/real_nodes.rs"]
mod real_nodes;

use real_nodes::{memory_kb, network, time_figure, timed, Figure, VirtualCluster};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Instances are created this many at a time (separate CLI processes).
const PARALLEL_ADDS: usize = 4;

/// The `noop` OS definition to install: Debian's, or one written under
/// `dir` that does nothing, successfully, for every script.
fn noop_os(dir: &Path) -> PathBuf {
    let debian = PathBuf::from("/usr/share/ganeti/os/noop");
    if debian.join("create").exists() {
        return debian;
    }
    let os = dir.join("noop-os");
    std::fs::create_dir_all(&os).unwrap();
    std::fs::write(os.join("ganeti_api_version"), "20\n").unwrap();
    for script in ["create", "import", "export", "rename", "verify"] {
        let p = os.join(script);
        std::fs::write(&p, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    os
}

fn add_args(name: &str) -> Vec<String> {
    [
        "add",
        "-t",
        "diskless",
        "-o",
        "noop",
        "-H",
        "fake",
        "-B",
        "maxmem=16,minmem=16,vcpus=1",
        "-n",
        "node1",
        "--no-name-check",
        "--no-ip-check",
        name,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Adds instances `from..to` (names `bulkN`), [`PARALLEL_ADDS`] at a time.
fn add_many(c: &VirtualCluster, from: usize, to: usize) {
    let names: Vec<String> = (from..to).map(|i| format!("bulk{i}")).collect();
    for chunk in names.chunks(PARALLEL_ADDS) {
        let children: Vec<_> = chunk
            .iter()
            .map(|n| {
                c.command("node1", "gnt-instance")
                    .args(add_args(n))
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for (child, n) in children.into_iter().zip(chunk) {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "adding {n}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// RSS (MB) of each daemon a one-node cluster runs.
fn daemons_rss_mb(c: &VirtualCluster) -> Vec<(&'static str, f64)> {
    ["ganeti-masterd", "ganeti-noded", "ganeti-confd"]
        .into_iter()
        .filter_map(|d| c.daemon_pid("node1", d).map(|pid| (d, pid)))
        .map(|(d, pid)| (d, memory_kb(pid).rss as f64 / 1024.0))
        .collect()
}

fn list_figure(c: &VirtualCluster, count: usize, goal: &str) -> Figure {
    // Check once that every instance is listed as running.
    let (_, out) = c.run(
        "node1",
        "gnt-instance",
        &["list", "--no-headers", "-o", "name,status"],
        false,
    );
    let running = out.lines().filter(|l| l.ends_with("running")).count();
    assert!(
        running >= count,
        "{running} of {count} instances running:\n{out}"
    );
    time_figure(
        &format!("gnt-instance list, {count} running instances ({goal})"),
        timed(21, || {
            c.run("node1", "gnt-instance", &["list"], false);
        }),
        (count == 100).then_some(290.0),
    )
}

fn main() {
    let mut figures = Vec::new();
    println!("binary: {}", real_nodes::binary().display());
    let c = VirtualCluster::new("instances", network(244), 1);
    let os = noop_os(&c.base);
    let os_dir = c.root("node1").join("srv/ganeti/os");
    std::fs::create_dir_all(&os_dir).unwrap();
    std::os::unix::fs::symlink(&os, os_dir.join("noop")).unwrap();
    c.init();

    // 1. add, each a new instance; removed afterwards so the later
    // figures see exactly the counts they name.
    let mut i = 0;
    let adds = timed(15, || {
        i += 1;
        let name = format!("timed{i}");
        let args = add_args(&name);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        c.run("node1", "gnt-instance", &args, false);
    });
    figures.push(time_figure(
        "gnt-instance add -t diskless -o noop -H fake",
        adds,
        Some(1080.0),
    ));

    // 2. the life cycle of one instance.
    for (op, ganeti) in [("shutdown", 720.0), ("startup", 820.0), ("reboot", 790.0)] {
        // shutdown and startup change the state; each timed run starts
        // from the state its operation needs.
        let mut own = Vec::new();
        for _ in 0..15 {
            if op == "startup" {
                c.run("node1", "gnt-instance", &["shutdown", "timed1"], false);
            }
            let t = std::time::Instant::now();
            c.run("node1", "gnt-instance", &[op, "timed1"], false);
            own.push(t.elapsed());
            if op == "shutdown" {
                c.run("node1", "gnt-instance", &["startup", "timed1"], false);
            }
        }
        figures.push(time_figure(
            &format!("gnt-instance {op} (fake)"),
            own,
            Some(ganeti),
        ));
    }
    for j in 1..=i {
        c.run(
            "node1",
            "gnt-instance",
            &["remove", "-f", &format!("timed{j}")],
            false,
        );
    }

    // 3 and 4. list and memory at 100 and 1000 instances.
    let mut memory = Vec::new();
    add_many(&c, 0, 100);
    figures.push(list_figure(&c, 100, "goal ≤ 20 ms"));
    memory.push((100, daemons_rss_mb(&c)));
    add_many(&c, 100, 1000);
    figures.push(list_figure(&c, 1000, "goal ≤ 50 ms"));
    memory.push((1000, daemons_rss_mb(&c)));

    real_nodes::print_table("instances: medians and 90th percentiles", &figures);
    for (count, daemons) in memory {
        let total: f64 = daemons.iter().map(|(_, mb)| mb).sum();
        let each: Vec<String> = daemons
            .iter()
            .map(|(d, mb)| format!("{d} {mb:.1}"))
            .collect();
        println!(
            "RSS of the daemons with {count} instances: {total:.1} MB ({}); Ganeti 3.0.2's: 261 MB with 100",
            each.join(", ")
        );
    }
}
