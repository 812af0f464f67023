//! Real `ganeti-noded` processes of the built binary for the benchmarks.
//!
//! A virtual cluster as the cluster tests make it (`BASE/hosts`, node roots
//! `BASE/node<i>`, programs through symlinks named like the installed
//! programs, `GANETI_ROOTDIR` and `GANETI_HOSTNAME`), but the nodes start
//! straight in the configured mode: every root gets the same cluster
//! `server.pem` (0600) before its noded starts, so no join is needed.
//! Each noded runs in the foreground as a child of the benchmark, listening
//! on its own `127.X.Y.i:1811`; dropping [`RealNodes`] kills them all and
//! removes the directory, also when the benchmark panics.
#![allow(dead_code)] // each bench uses part of it

use ganeti::rpc::Target;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Noded's port; every node has its own address, so all share it.
pub const PORT: u16 = ganeti::constants::DEFAULT_NODED_PORT;

/// The installed program names the benchmarks run.
const PROGRAMS: &[&str] = &[
    "ganeti",
    "ganeti-noded",
    "ganeti-masterd",
    "gnt-cluster",
    "gnt-node",
    "gnt-instance",
    "gnt-os",
];

/// The binary under test: `GANETI_BENCH_BIN` if set (e.g. the static
/// musl build of `make build`, which is what ships), else the release
/// build cargo made for this benchmark.
pub fn binary() -> PathBuf {
    std::env::var_os("GANETI_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ganeti")))
}

/// A directory of node roots with a hosts file; removed on drop.
pub struct VirtualCluster {
    pub base: PathBuf,
    pub bin: PathBuf,
    /// `(name, address)` of each node, `node1` first.
    pub nodes: Vec<(String, String)>,
}

impl VirtualCluster {
    /// `count` node roots on `127.net.0.1 ..= 127.net.0.count`, where
    /// `tag` makes the directory name unique.
    pub fn new(tag: &str, net: (u8, u8), count: u8) -> VirtualCluster {
        let base = std::env::temp_dir().join(format!("ganeti-bench-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let bin = base.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let exe = binary();
        for p in PROGRAMS {
            symlink(&exe, bin.join(p)).unwrap();
        }
        let mut hosts = String::new();
        let mut nodes = Vec::new();
        for i in 1..=count {
            let name = format!("node{i}");
            let address = format!("127.{}.{}.{i}", net.0, net.1);
            std::fs::create_dir_all(base.join(&name)).unwrap();
            hosts.push_str(&format!("{address}\t{name}\n"));
            nodes.push((name, address));
        }
        hosts.push_str(&format!("127.{}.{}.200\tcluster.bench\n", net.0, net.1));
        std::fs::write(base.join("hosts"), hosts).unwrap();
        VirtualCluster { base, bin, nodes }
    }

    pub fn root(&self, node: &str) -> PathBuf {
        self.base.join(node)
    }

    /// A command running `program` as `node`.
    pub fn command(&self, node: &str, program: &str) -> Command {
        let mut c = Command::new(self.bin.join(program));
        c.env("GANETI_ROOTDIR", self.root(node))
            .env("GANETI_HOSTNAME", node)
            .stdin(Stdio::null());
        c
    }

    /// Runs `program args…` as `node`; panics with its output on failure
    /// unless `may_fail`. Returns (exit code, stdout + stderr).
    pub fn run(&self, node: &str, program: &str, args: &[&str], may_fail: bool) -> (i32, String) {
        let out = self.command(node, program).args(args).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let code = out.status.code().unwrap_or(-1);
        assert!(
            may_fail || code == 0,
            "{program} {args:?} on {node}: {text}"
        );
        (code, text)
    }

    /// Writes `/etc/default/ganeti` (noded keeps `mlockall`; a recording
    /// powercycle action) and a recording `master-ip-setup` script, as the
    /// cluster tests do, so nothing touches the host's interfaces.
    pub fn prepare_node(&self, node: &str) {
        use std::os::unix::fs::PermissionsExt;
        let root = self.root(node);
        std::fs::create_dir_all(root.join("etc/default")).unwrap();
        std::fs::write(
            root.join("etc/default/ganeti"),
            format!(
                "NODED_ARGS=\"--powercycle-action record:{}\"\nMASTERD_ARGS=\"--no-mlock\"\n",
                root.join("powercycle.log").display()
            ),
        )
        .unwrap();
        let scripts = root.join("etc/ganeti/scripts");
        std::fs::create_dir_all(&scripts).unwrap();
        let script = scripts.join("master-ip-setup");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$1 $MASTER_IP\" >> {}\n",
                root.join("master-ip.log").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// `gnt-cluster init` on node1 (fake hypervisor, diskless template,
    /// recording master-IP script: nothing touches the host's interfaces),
    /// then waits for its noded.
    pub fn init(&self) {
        self.prepare_node("node1");
        self.run(
            "node1",
            "gnt-cluster",
            &[
                "init",
                "--enabled-hypervisors",
                "fake",
                "--enabled-disk-templates",
                "diskless",
                "--master-netdev",
                "lo",
                "--no-etc-hosts",
                "--use-external-mip-script",
                "yes",
                "cluster.bench",
            ],
            false,
        );
        wait_for("noded on node1", || {
            self.daemon_pid("node1", "ganeti-noded").is_some()
        });
    }

    /// The pid in a daemon's pid file on `node`, if that process lives.
    pub fn daemon_pid(&self, node: &str, daemon: &str) -> Option<u32> {
        let f = self.root(node).join(format!("var/run/ganeti/{daemon}.pid"));
        let pid: u32 = std::fs::read_to_string(f).ok()?.trim().parse().ok()?;
        Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
    }
}

impl Drop for VirtualCluster {
    fn drop(&mut self) {
        // Daemons started through daemon-util (the verify cluster).
        for (node, _) in &self.nodes {
            let _ = self
                .command(node, "ganeti")
                .args(["daemon-util", "stop-all"])
                .output();
            for d in [
                "ganeti-masterd",
                "ganeti-noded",
                "ganeti-confd",
                "ganeti-rapi",
            ] {
                if let Some(pid) = self.daemon_pid(node, d) {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                }
            }
        }
        if std::env::var_os("GANETI_BENCH_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }
}

/// Configured nodeds, one child process per node.
pub struct RealNodes {
    children: Vec<Child>,
    /// The nodes to call, `node1` first.
    pub targets: Vec<Target>,
    /// The cluster certificate every node holds (callers present it too).
    pub cert: PathBuf,
    /// Declared last: its directory goes after the processes are gone.
    pub cluster: VirtualCluster,
}

impl RealNodes {
    /// Starts `count` configured nodeds on `127.net.0.1..` and waits until
    /// each answers `version`. `mlock`: whether noded locks its memory
    /// (`mlockall`, the production default) or runs with `--no-mlock`.
    pub fn start(tag: &str, net: (u8, u8), count: u8, mlock: bool) -> RealNodes {
        let cluster = VirtualCluster::new(tag, net, count);
        let cert = cluster.base.join("server.pem");
        ganeti::crypto::generate_cert(&cert, ganeti::crypto::CERT_COMMON_NAME).unwrap();
        let pem = std::fs::read(&cert).unwrap();
        let mut nodes = RealNodes {
            children: Vec::new(),
            targets: Vec::new(),
            cert,
            cluster,
        };
        let list = nodes.cluster.nodes.clone();
        for (name, address) in &list {
            let data = nodes.cluster.root(name).join("var/lib/ganeti");
            std::fs::create_dir_all(&data).unwrap();
            ganeti::sys::fs::atomic_write(&data.join("server.pem"), &pem, 0o600).unwrap();
            let mut cmd = nodes.cluster.command(name, "ganeti-noded");
            cmd.arg("-f").stdout(Stdio::null()).stderr(Stdio::null());
            if !mlock {
                cmd.arg("--no-mlock");
            }
            nodes.children.push(cmd.spawn().unwrap());
            nodes
                .targets
                .push(Target::new(name.clone(), address.clone()));
        }
        let client = ganeti::rpc::client::RpcClient::new(&nodes.cert, PORT).unwrap();
        for t in &nodes.targets {
            wait_answers(&client, t);
        }
        nodes
    }

    /// The pid of node *i*'s noded (0-based, `node1` is 0).
    pub fn pid(&self, i: usize) -> u32 {
        self.children[i].id()
    }
}

impl Drop for RealNodes {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
        }
        for c in &mut self.children {
            let _ = c.wait();
        }
    }
}

/// Polls `version` on `target` until it answers (10 s at most).
pub fn wait_answers(client: &ganeti::rpc::client::RpcClient, target: &Target) {
    use ganeti::rpc::NodeRpc;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = client.call(
            "version",
            std::slice::from_ref(target),
            &serde_json::json!({}),
            Duration::from_secs(1),
        );
        match r.into_iter().next() {
            Some((_, Ok(_))) => return,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "{} never answered: {other:?}",
                    target.name
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Polls `cond` every 20 ms until it holds (15 s at most).
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A loopback network `127.X.Y.0/24` for this run: X from `kind`
/// (distinct per benchmark), Y from the process id, away from the
/// networks the cluster tests use (`127.20–219.*`).
pub fn network(kind: u8) -> (u8, u8) {
    (kind, (std::process::id() % 250) as u8)
}

/// Memory of a process in kB.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// `VmRSS` of `/proc/PID/status`: resident.
    pub rss: u64,
    /// `VmLck` of `/proc/PID/status`: the size of all locked mappings,
    /// including reserved address space never touched (e.g. glibc's
    /// 64 MB per-thread malloc arenas, `PROT_NONE`).
    pub vm_lck: u64,
    /// `Locked` of `/proc/PID/smaps_rollup`: pages actually resident and
    /// locked, the RAM the kernel can never reclaim.
    pub locked_resident: u64,
}

/// The `name` field (kB) of a `/proc` key-value text.
fn kb_field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// [`Memory`] of `pid` now.
pub fn memory_kb(pid: u32) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    Memory {
        rss: kb_field(&status, "VmRSS:"),
        vm_lck: kb_field(&status, "VmLck:"),
        locked_resident: kb_field(&rollup, "Locked:"),
    }
}

/// One row of the summary table.
pub struct Figure {
    pub name: String,
    /// Median and 90th percentile, in `unit`.
    pub median: f64,
    pub p90: f64,
    pub unit: &'static str,
    /// Real Ganeti 3.0.2's figure in the same unit (quiet machine), if
    /// BASELINE.md has one.
    pub ganeti: Option<f64>,
}

/// Median and 90th percentile of `samples`.
pub fn median_p90(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let at = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
    (at(50), at(90))
}

/// `op` timed `n` times.
pub fn timed(n: usize, mut op: impl FnMut()) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            op();
            t.elapsed()
        })
        .collect()
}

/// A figure from timings, in milliseconds or microseconds.
pub fn time_figure(name: &str, mut samples: Vec<Duration>, ganeti_ms: Option<f64>) -> Figure {
    let (m, p) = median_p90(&mut samples);
    let ms = m.as_secs_f64() * 1e3;
    let (scale, unit) = if ms < 1.0 { (1e6, "µs") } else { (1e3, "ms") };
    Figure {
        name: format!("{name} ({} runs)", samples.len()),
        median: m.as_secs_f64() * scale,
        p90: p.as_secs_f64() * scale,
        unit,
        ganeti: ganeti_ms.map(|g| g / 1e3 * scale),
    }
}

/// Prints the summary table.
pub fn print_table(title: &str, figures: &[Figure]) {
    println!("\n{title}");
    let w = figures
        .iter()
        .map(|f| f.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(58);
    println!(
        "{:<w$} {:>12} {:>12}  real Ganeti 3.0.2",
        "figure", "median", "p90"
    );
    for f in figures {
        let ganeti = match f.ganeti {
            Some(g) => format!("{g:.0} {} → {:.0}x faster", f.unit, g / f.median),
            None => "-".to_string(),
        };
        println!(
            "{:<w$} {:>9.1} {:<2} {:>9.1} {:<2}  {ganeti}",
            f.name, f.median, f.unit, f.p90, f.unit
        );
    }
}
