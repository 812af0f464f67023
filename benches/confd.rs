//! Benchmark of `ganeti-confd` as a real process on loopback, with a
//! 1000-node, 10,000-instance config:
//!
//! - round trip of a node-role query (median, p99), one query at a time;
//! - queries per second one serving thread (one core) answers, from bursts
//!   of pipelined queries, and confd CPU time per query (from /proc);
//! - reload of the 10,000-instance config: time to load and index it (the
//!   daemon's own `ms=` log field), while a client keeps asking; queries
//!   without an answer within 1 s are counted as dropped;
//! - the daemon's VmRSS with that config loaded.
//!
//! When Ganeti's Haskell confd is installed (/usr/sbin/ganeti-confd) the
//! same round-trip and burst measurements run against it on a copy of the
//! node root, best effort. Figures go to docs/confd.md.
//!
//! Run with `cargo bench --bench confd` (optimised), or for a debug build
//! `cargo build --bench confd` and run the binary from target/debug/deps.

#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::expect_used)]
#![allow(clippy::disallowed_methods)] // spawns the built binary and writes fixture files
#![allow(clippy::cast_possible_truncation)]

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ganeti::confd::codec::{self, HmacKey, Query, Request};
use ganeti::confd::RequestType;
use ganeti::config::test_support::generated;

const NODES: usize = 1000;
const INSTANCES: usize = 10_000;
const RTT_QUERIES: usize = 5000;
const BURST: usize = 32;
const BURST_ROUNDS: usize = 1000;
const KEY: &[u8] = b"0123456789abcdef0123456789abcdef01234567";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn role_query(i: usize) -> Request {
    Request {
        protocol: 1,
        kind: RequestType::NodeRoleByName,
        query: Query::Plain(format!("node{}.example.com", i % NODES + 1)),
        rsalt: format!("bench-{i}"),
    }
}

/// Sends pings until one is answered (the daemon is up).
fn wait_ready(addr: SocketAddr, key: &HmacKey, child: &mut Child) -> bool {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut buf = vec![0u8; 65536];
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let ping = Request {
            protocol: 1,
            kind: RequestType::Ping,
            query: Query::Empty,
            rsalt: "ready".into(),
        };
        sock.send_to(&codec::pack_request(key, &ping, now()), addr)
            .unwrap();
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            if codec::parse_reply(key, &buf[..n]).is_some() {
                return true;
            }
        }
    }
    false
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are 11 and 12 after the command.
    f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn vm_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

struct Figures {
    median_us: f64,
    p99_us: f64,
    qps: f64,
    cpu_us_per_query: f64,
    lost: usize,
}

fn measure(addr: SocketAddr, key: &HmacKey, pid: u32) -> Figures {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut buf = vec![0u8; 65536];
    let ts = now();
    // Packets are signed up front: the figure is the server's round trip.
    let packets: Vec<Vec<u8>> = (0..RTT_QUERIES)
        .map(|i| codec::pack_request(key, &role_query(i), ts))
        .collect();
    let mut rtts = Vec::with_capacity(RTT_QUERIES);
    let mut lost = 0;
    for p in &packets {
        let start = Instant::now();
        sock.send_to(p, addr).unwrap();
        match sock.recv_from(&mut buf) {
            Ok(_) => rtts.push(start.elapsed()),
            Err(_) => lost += 1,
        }
    }
    rtts.sort();
    let pct = |q: f64| rtts[((rtts.len() as f64 * q) as usize).min(rtts.len() - 1)];
    // Bursts: BURST queries in flight, then their replies.
    let bursts: Vec<Vec<u8>> = (0..BURST)
        .map(|i| codec::pack_request(key, &role_query(i), ts))
        .collect();
    let cpu0 = cpu_ticks(pid);
    let start = Instant::now();
    let mut answered = 0usize;
    for _ in 0..BURST_ROUNDS {
        for p in &bursts {
            sock.send_to(p, addr).unwrap();
        }
        for _ in 0..BURST {
            match sock.recv_from(&mut buf) {
                Ok(_) => answered += 1,
                Err(_) => {
                    lost += 1;
                    break;
                }
            }
        }
    }
    let wall = start.elapsed();
    let ticks = cpu_ticks(pid) - cpu0;
    let tick_us = 1e6 / 100.0; // USER_HZ
    Figures {
        median_us: pct(0.5).as_secs_f64() * 1e6,
        p99_us: pct(0.99).as_secs_f64() * 1e6,
        qps: answered as f64 / wall.as_secs_f64(),
        cpu_us_per_query: ticks as f64 * tick_us / answered.max(1) as f64,
        lost,
    }
}

fn print_figures(who: &str, f: &Figures) {
    println!(
        "{who}: node-role round trip median {:.1} µs, p99 {:.1} µs; {:.0} queries/s in bursts of {BURST}; {:.1} µs confd CPU/query; {} unanswered",
        f.median_us, f.p99_us, f.qps, f.cpu_us_per_query, f.lost
    );
}

fn write(path: &Path, data: &[u8], mode: u32) {
    ganeti::sys::fs::atomic_write(path, data, mode).unwrap();
}

fn setup_root(base: &Path) -> PathBuf {
    let root = base.join("node1.example.com");
    for d in ["var/lib/ganeti", "var/run/ganeti", "var/log/ganeti"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(base.join("hosts"), "127.0.0.1\tnode1.example.com node1\n").unwrap();
    write(&root.join("var/lib/ganeti/hmac.key"), KEY, 0o600);
    root
}

fn main() {
    let base = std::env::temp_dir().join(format!("ganeti-bench-confd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let root = setup_root(&base);
    let mut cfg = generated(NODES, INSTANCES);
    let json = cfg.to_json();
    write(&root.join("var/lib/ganeti/config.data"), &json, 0o640);
    println!(
        "config: {NODES} nodes, {INSTANCES} instances, {} KiB",
        json.len() / 1024
    );
    let key = HmacKey::new(KEY);
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // The binary under test: `GANETI_BENCH_BIN` (e.g. the static musl build
    // that ships), else the release build cargo made for this benchmark.
    let bin = std::env::var_os("GANETI_BENCH_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_ganeti")),
        PathBuf::from,
    );
    println!("binary: {}", bin.display());
    let mut child = Command::new(&bin)
        .args(["ganeti-confd", "-f", "--no-mlock", "-b", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .env("GANETI_ROOTDIR", &root)
        .env("GANETI_HOSTNAME", "node1.example.com")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_ready(addr, &key, &mut child),
        "ganeti-confd did not answer"
    );
    let pid = child.id();
    let f = measure(addr, &key, pid);
    print_figures("ganeti-rs confd", &f);
    println!(
        "ganeti-rs confd VmRSS with the config: {} KiB",
        vm_rss_kib(pid)
    );

    // Reload under load: a client asks continuously while the config
    // changes; every query gets 1 s to be answered.
    let stop = Arc::new(AtomicBool::new(false));
    let (asked, dropped, newest) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let asker = {
        let (stop, asked, dropped, newest) = (
            Arc::clone(&stop),
            Arc::clone(&asked),
            Arc::clone(&dropped),
            Arc::clone(&newest),
        );
        std::thread::spawn(move || {
            let key = HmacKey::new(KEY);
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            let mut buf = vec![0u8; 65536];
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let p = codec::pack_request(&key, &role_query(i), now());
                i += 1;
                sock.send_to(&p, addr).unwrap();
                asked.fetch_add(1, Ordering::Relaxed);
                match sock.recv_from(&mut buf) {
                    Ok((n, _)) => {
                        if let Some((_, r)) = codec::parse_reply(&key, &buf[..n]) {
                            newest.fetch_max(r.serial, Ordering::Relaxed);
                        }
                    }
                    Err(_) => {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    let log_path = root.join("var/log/ganeti/conf-daemon.log");
    let mut reload_ms = Vec::new();
    let mut visible = Vec::new();
    for round in 0..5 {
        cfg.serial_no += 1;
        let bytes = cfg.to_json();
        let start = Instant::now();
        write(&root.join("var/lib/ganeti/config.data"), &bytes, 0o640);
        while newest.load(Ordering::Relaxed) < cfg.serial_no {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "reload {round} never seen"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        visible.push(start.elapsed());
        // The daemon logs the load right after installing the snapshot.
        let want = format!("serial={} ", cfg.serial_no);
        let ms = loop {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let ms = log.lines().rfind(|l| l.contains(&want)).and_then(|l| {
                l.split_whitespace()
                    .find_map(|f| f.strip_prefix("ms=")?.parse::<u64>().ok())
            });
            if let Some(ms) = ms {
                break ms;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "no log line for {want}"
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        reload_ms.push(ms);
    }
    stop.store(true, Ordering::Relaxed);
    asker.join().unwrap();
    reload_ms.sort_unstable();
    visible.sort();
    println!(
        "reload of the {INSTANCES}-instance config: load+index median {} ms (daemon log); new serial answered {:.0} ms after the write (median, includes the 250 ms stat period); {} queries asked meanwhile, {} unanswered",
        reload_ms[reload_ms.len() / 2],
        visible[visible.len() / 2].as_secs_f64() * 1e3,
        asked.load(Ordering::Relaxed),
        dropped.load(Ordering::Relaxed)
    );
    println!(
        "ganeti-rs confd VmRSS after the reloads: {} KiB",
        vm_rss_kib(pid)
    );
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let _ = child.wait();

    haskell_side_by_side(&base, &json);
    let _ = std::fs::remove_dir_all(&base);
}

/// Best effort: Ganeti's Haskell confd on a copy of the node root.
fn haskell_side_by_side(base: &Path, json: &[u8]) {
    let exe = Path::new("/usr/sbin/ganeti-confd");
    if !exe.exists() {
        println!("Haskell confd: not installed, not measured");
        return;
    }
    let hbase = base.join("haskell");
    let root = setup_root(&hbase);
    write(&root.join("var/lib/ganeti/config.data"), json, 0o640);
    for d in ["var/run/ganeti/socket", "var/log/ganeti"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let key = HmacKey::new(KEY);
    let mut child = match Command::new(exe)
        .args(["-f", "--no-user-checks", "-b", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .env("GANETI_ROOTDIR", &root)
        .env("GANETI_HOSTNAME", "node1.example.com")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            println!("Haskell confd: cannot start ({e}), not measured");
            return;
        }
    };
    if !wait_ready(addr, &key, &mut child) {
        let _ = child.kill();
        let out = child
            .wait_with_output()
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned());
        println!(
            "Haskell confd: did not answer, not measured ({})",
            out.unwrap_or_default()
                .lines()
                .last()
                .unwrap_or("no message")
        );
        return;
    }
    let pid = child.id();
    let f = measure(addr, &key, pid);
    print_figures("Haskell confd (Ganeti 3.0.2)", &f);
    println!(
        "Haskell confd VmRSS with the config: {} KiB",
        vm_rss_kib(pid)
    );
    let _ = child.kill();
    let _ = child.wait();
}
