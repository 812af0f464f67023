//! `ganeti-confd`: answers confd queries over UDP on master candidates.
//!
//! One thread serves the socket: it receives a packet, checks it with
//! [`crate::confd::codec`], answers from the current
//! [`Snapshot`] and sends the signed reply.
//! The main thread watches `config.data` (a `stat` every
//! [`CONFIG_RELOAD_CHECK_MS`] ms: mtime, size, inode), builds a new
//! snapshot off the query path and swaps it in; the serving thread only
//! ever clones an `Arc`, so a reload never blocks or drops a query.
//!
//! Which nodes run it: `daemon-util` starts confd on the master and the
//! master candidates only (they are the nodes that receive `config.data`).
//! Started elsewhere, or before the config exists, it serves nothing and
//! counts the requests as `no_config` until a config appears.
//!
//! Packets that fail a check are dropped without an answer (as Ganeti's
//! server does), so an unauthenticated sender never gets a byte back: no
//! amplification. Counters of answers and of drops by reason go to the log
//! every [`STATS_INTERVAL_SECS`] s, on `SIGHUP` and at exit.

use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::confd::codec::{self, DropReason, HmacKey, Reply};
use crate::confd::query::Snapshot;
use crate::confd::{ErrorCode, ReplyStatus, CONFIG_RELOAD_CHECK_MS, MAX_PACKET_BYTES};
use crate::config::objects::{ConfigData, IpFamily};
use crate::daemons::{Daemon, DaemonError};
use crate::error::chain;

/// How often the stats line is logged.
pub const STATS_INTERVAL_SECS: u64 = 300;
/// How long the serving thread blocks in `recv` before it looks at the
/// stop flag.
const RECV_POLL: Duration = Duration::from_millis(200);

/// Entry point.
pub fn main(_program: &str, args: &[String]) -> u8 {
    crate::daemons::run("ganeti-confd", args, run)
}

/// Counters of the stats line.
#[derive(Debug, Default)]
pub struct Stats {
    /// Packets received.
    pub received: AtomicU64,
    /// Replies sent.
    pub answered: AtomicU64,
    /// Dropped packets, by [`DropReason::index`].
    pub dropped: [AtomicU64; DropReason::ALL.len()],
    /// Valid requests dropped because no config is loaded.
    pub no_config: AtomicU64,
    /// Answers replaced by an internal error because they did not fit in
    /// one packet.
    pub too_big: AtomicU64,
    /// Replies the kernel refused to send.
    pub send_errors: AtomicU64,
    /// Config snapshots installed.
    pub reloads: AtomicU64,
    /// Config files that could not be loaded.
    pub reload_failures: AtomicU64,
}

impl Stats {
    /// `key=value` fields of every counter.
    pub fn line(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut s = format!(
            "received={} answered={} no_config={} too_big={} send_errors={} reloads={} reload_failures={}",
            get(&self.received),
            get(&self.answered),
            get(&self.no_config),
            get(&self.too_big),
            get(&self.send_errors),
            get(&self.reloads),
            get(&self.reload_failures),
        );
        for r in DropReason::ALL {
            s.push_str(&format!(
                " dropped_{}={}",
                r.key(),
                get(&self.dropped[r.index()])
            ));
        }
        s
    }

    /// Packets dropped for `reason` so far.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()].load(Ordering::Relaxed)
    }
}

/// The shared state of a confd server: key, current snapshot, counters.
#[derive(Debug)]
pub struct ConfdServer {
    key: HmacKey,
    snapshot: RwLock<Option<Arc<Snapshot>>>,
    /// The counters.
    pub stats: Stats,
}

impl ConfdServer {
    /// A server with `key` and no config yet.
    pub fn new(key: HmacKey) -> ConfdServer {
        ConfdServer {
            key,
            snapshot: RwLock::new(None),
            stats: Stats::default(),
        }
    }

    /// Makes `snap` the snapshot new queries see.
    pub fn install(&self, snap: Arc<Snapshot>) {
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Some(snap);
        self.stats.reloads.fetch_add(1, Ordering::Relaxed);
    }

    /// The current snapshot.
    pub fn current(&self) -> Option<Arc<Snapshot>> {
        self.snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Handles one packet received at `now_secs`; returns the reply packet,
    /// or `None` when the packet is dropped (and counted).
    pub fn handle(&self, packet: &[u8], now_secs: i64) -> Option<Vec<u8>> {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        let req = match codec::parse_request(&self.key, packet, now_secs) {
            Ok(r) => r,
            Err(reason) => {
                self.stats.dropped[reason.index()].fetch_add(1, Ordering::Relaxed);
                log::debug!("dropped a confd packet: {reason}");
                return None;
            }
        };
        let Some(snap) = self.current() else {
            self.stats.no_config.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let reply = snap.answer(&req);
        let mut out = codec::pack_reply(&self.key, &req.rsalt, &reply);
        if out.len() > MAX_PACKET_BYTES {
            self.stats.too_big.fetch_add(1, Ordering::Relaxed);
            let small = Reply {
                status: ReplyStatus::Error,
                answer: ErrorCode::Internal.answer(),
                ..reply
            };
            out = codec::pack_reply(&self.key, &req.rsalt, &small);
            if out.len() > MAX_PACKET_BYTES {
                // Only an absurd rsalt gets here; it was authenticated, but
                // a reply cannot be sent.
                return None;
            }
        }
        self.stats.answered.fetch_add(1, Ordering::Relaxed);
        Some(out)
    }
}

/// Seconds since the epoch.
fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Serves `sock` until `stop` is set.
pub fn serve_udp(server: &ConfdServer, sock: &UdpSocket, stop: &AtomicBool) -> std::io::Result<()> {
    sock.set_read_timeout(Some(RECV_POLL))?;
    // One byte more than the limit, so an oversize datagram is seen as such.
    let mut buf = vec![0u8; MAX_PACKET_BYTES + 1];
    while !stop.load(Ordering::Relaxed) {
        let (n, peer) = match sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                        | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        if let Some(reply) = server.handle(&buf[..n], now_secs()) {
            if let Err(e) = sock.send_to(&reply, peer) {
                server.stats.send_errors.fetch_add(1, Ordering::Relaxed);
                log::debug!("confd reply to {peer} not sent: {e}");
            }
        }
    }
    Ok(())
}

/// Reads `config.data` and builds its snapshot. The file is parsed, not
/// validated again: masterd validated it before writing, and confd must
/// answer from whatever the master distributed.
pub fn load_snapshot(path: &Path) -> Result<Snapshot, crate::config::ConfigError> {
    let bytes =
        crate::sys::fs::read(path).map_err(|source| crate::config::ConfigError::Read { source })?;
    let data = ConfigData::from_json(&bytes, path)?;
    Ok(Snapshot::new(Arc::new(data)))
}

/// Watches `config.data` for changes by `stat` (mtime, size, inode: the
/// atomic rename of a new copy always changes the inode).
#[derive(Debug)]
pub struct ConfigWatcher {
    path: PathBuf,
    seen: Option<(i64, i64, u64, u64)>,
}

impl ConfigWatcher {
    /// A watcher of `path` that has seen nothing yet.
    pub fn new(path: PathBuf) -> ConfigWatcher {
        ConfigWatcher { path, seen: None }
    }

    /// Loads the file into `server` when it changed since the last call;
    /// returns the new serial when it did.
    pub fn check(&mut self, server: &ConfdServer) -> Option<u64> {
        let meta = std::fs::metadata(&self.path).ok()?;
        let id = (meta.mtime(), meta.mtime_nsec(), meta.size(), meta.ino());
        if self.seen == Some(id) {
            return None;
        }
        self.seen = Some(id);
        let started = Instant::now();
        match load_snapshot(&self.path) {
            Ok(snap) => {
                let serial = snap.serial();
                server.install(Arc::new(snap));
                log::info!(
                    "loaded config path={} serial={serial} ms={}",
                    self.path.display(),
                    started.elapsed().as_millis()
                );
                Some(serial)
            }
            Err(e) => {
                server.stats.reload_failures.fetch_add(1, Ordering::Relaxed);
                log::warn!("cannot load {}: {}", self.path.display(), chain(&e));
                None
            }
        }
    }
}

fn run(daemon: &Daemon) -> Result<(), DaemonError> {
    let paths = daemon.paths.clone();
    let key_path = paths.confd_hmac_key();
    let key = std::fs::read(&key_path).map_err(|e| {
        DaemonError::body(format!("reading the confd key {}", key_path.display()), e)
    })?;
    let server = Arc::new(ConfdServer::new(HmacKey::new(&key)));
    let mut watcher = ConfigWatcher::new(paths.config_file());
    if watcher.check(&server).is_none() {
        log::warn!(
            "no usable config at {}: answering nothing until one arrives",
            paths.config_file().display()
        );
    }
    let family = match server.current() {
        Some(s) => s.config().cluster.primary_ip_family,
        None => match crate::ssconf::read(&paths, "primary_ip_family") {
            Ok(f) if f.trim() == "10" => IpFamily::V6,
            _ => IpFamily::V4,
        },
    };
    let ip = super::bind_address(daemon.args.bind.as_deref(), &paths, family)
        .map_err(|e| DaemonError::body("choosing the address to listen on", e))?;
    let port = daemon.args.port.unwrap_or_else(|| {
        crate::net::service_port(&paths, "ganeti-confd", crate::constants::DEFAULT_CONFD_PORT)
    });
    let addr = SocketAddr::new(ip, port);
    let sock =
        UdpSocket::bind(addr).map_err(|e| DaemonError::body(format!("binding UDP {addr}"), e))?;
    let bound = sock.local_addr().unwrap_or(addr);
    log::info!("confd listening on udp {bound}");

    let stop = Arc::new(AtomicBool::new(false));
    let serving = {
        let (server, stop) = (Arc::clone(&server), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("confd-udp".into())
            .spawn(move || serve_udp(&server, &sock, &stop))
            .map_err(|e| DaemonError::body("starting the serving thread", e))?
    };
    {
        // SIGHUP also reopens the log (the common handler); this one adds
        // the stats line.
        let server = Arc::clone(&server);
        crate::sys::signal::spawn_handler(move |sig| {
            if sig == crate::sys::signal::DaemonSignal::ReopenLogs {
                log::info!("stats {}", server.stats.line());
            }
        })
        .map_err(|e| DaemonError::body("installing the SIGHUP stats handler", e))?;
    }
    daemon.ready();

    let shutdown = daemon.wait_for_shutdown();
    smol::block_on(async {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut last_stats = Instant::now();
        loop {
            let tick = async {
                smol::Timer::after(Duration::from_millis(CONFIG_RELOAD_CHECK_MS)).await;
                false
            };
            let stopped = async {
                (&mut shutdown).await;
                true
            };
            if smol::future::or(stopped, tick).await {
                break;
            }
            if serving.is_finished() {
                break;
            }
            watcher.check(&server);
            if last_stats.elapsed() >= Duration::from_secs(STATS_INTERVAL_SECS) {
                log::info!("stats {}", server.stats.line());
                last_stats = Instant::now();
            }
        }
    });
    stop.store(true, Ordering::Relaxed);
    let served = serving
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the serving thread panicked")));
    log::info!("stats {}", server.stats.line());
    served.map_err(|e| DaemonError::body(format!("serving UDP {bound}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confd::codec::{DictQuery, Query, Request};
    use crate::confd::{NodeRole, RequestType};
    use crate::config::test_support::generated;
    use serde_json::{json, Value};

    const NOW: i64 = 1_700_000_000;

    fn server() -> ConfdServer {
        let s = ConfdServer::new(HmacKey::new(b"cluster-key"));
        s.install(Arc::new(Snapshot::new(Arc::new(generated(3, 6)))));
        s
    }

    fn req(kind: RequestType, query: Query) -> Request {
        Request {
            protocol: 1,
            kind,
            query,
            rsalt: "salt-1".into(),
        }
    }

    fn ask(s: &ConfdServer, r: &Request) -> Reply {
        let key = HmacKey::new(b"cluster-key");
        let out = s
            .handle(&codec::pack_request(&key, r, NOW), NOW)
            .expect("answered");
        let (salt, reply) = codec::parse_reply(&key, &out).expect("signed reply");
        assert_eq!(salt, r.rsalt);
        reply
    }

    #[test]
    fn answers_are_signed_with_the_rsalt_and_carry_the_serial() {
        let s = server();
        let r = ask(&s, &req(RequestType::Ping, Query::Empty));
        assert_eq!(r.status, ReplyStatus::Ok);
        assert_eq!(r.answer, json!(3_000_000));
        assert_eq!(r.serial, s.current().unwrap().serial());
        assert_eq!(s.stats.answered.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn node_roles_and_unknown_nodes() {
        let s = server();
        let cfg = Arc::clone(s.current().unwrap().config());
        let role = |name: &str| {
            ask(
                &s,
                &req(RequestType::NodeRoleByName, Query::Plain(name.into())),
            )
        };
        let r = role("node1.example.com");
        assert_eq!(
            (r.status, r.answer),
            (ReplyStatus::Ok, json!(NodeRole::Master as u64))
        );
        // Short names resolve; as in Ganeti, only the master's full name
        // reports "master", its short name the role of its flags.
        assert_eq!(role("node1").answer, json!(NodeRole::Candidate as u64));
        let other = cfg
            .nodes
            .values()
            .find(|n| n.name.0 == "node2.example.com")
            .unwrap();
        let want = if other.master_candidate {
            NodeRole::Candidate
        } else {
            NodeRole::Regular
        };
        assert_eq!(role("node2.example.com").answer, json!(want as u64));
        let r = role("nosuch.example.com");
        assert_eq!(r.status, ReplyStatus::Error);
        assert!(r
            .answer
            .as_str()
            .unwrap()
            .contains("Node name nosuch.example.com not found"));
        let r = ask(&s, &req(RequestType::NodeRoleByName, Query::Empty));
        assert_eq!(r.status, ReplyStatus::Error);
        assert!(r.answer.is_string(), "{}", r.answer);
    }

    #[test]
    fn master_ip_lists_and_instance_ips() {
        let s = server();
        let snap = s.current().unwrap();
        let cfg = snap.config();
        let r = ask(&s, &req(RequestType::ClusterMaster, Query::Empty));
        assert_eq!(r.answer, json!("node1.example.com"));
        let fields = Query::Dict(DictQuery {
            fields: vec![
                crate::confd::ReqField::Name,
                crate::confd::ReqField::Ip,
                crate::confd::ReqField::MnodePip,
            ],
            ..Default::default()
        });
        let r = ask(&s, &req(RequestType::ClusterMaster, fields));
        let master = cfg.master_node().unwrap();
        assert_eq!(
            r.answer,
            json!([
                "node1.example.com",
                cfg.cluster.master_ip,
                master.primary_ip
            ])
        );
        let r = ask(
            &s,
            &req(RequestType::ClusterMaster, Query::Plain("x".into())),
        );
        assert_eq!((r.status, r.answer), (ReplyStatus::Error, json!(2)));

        let pips = ask(&s, &req(RequestType::NodePipList, Query::Empty)).answer;
        let mut want: Vec<Value> = cfg.nodes.values().map(|n| json!(n.primary_ip)).collect();
        want.reverse();
        assert_eq!(pips, Value::Array(want));
        let mcs = ask(&s, &req(RequestType::McPipList, Query::Empty)).answer;
        let n_mc = cfg.nodes.values().filter(|n| n.master_candidate).count();
        assert_eq!(mcs.as_array().unwrap().len(), n_mc);

        // Every instance IP is on the default link and maps to its
        // primary node's IP.
        let ips = ask(&s, &req(RequestType::InstancesIpsList, Query::Empty)).answer;
        let ips: Vec<String> = serde_json::from_value(ips).unwrap();
        assert_eq!(ips.len(), 6);
        let inst = cfg
            .instances
            .values()
            .find(|i| i.nics[0].ip.as_deref() == Some(ips[0].as_str()))
            .unwrap();
        let pnode = &cfg.nodes[&inst.primary_node];
        let one = Query::Dict(DictQuery {
            ip: Some(ips[0].clone()),
            ..Default::default()
        });
        let r = ask(&s, &req(RequestType::NodePipByInstanceIp, one));
        assert_eq!(
            (r.status, r.answer),
            (ReplyStatus::Ok, json!(pnode.primary_ip))
        );
        let list = Query::Dict(DictQuery {
            ip_list: vec![ips[0].clone(), "203.0.113.9".into()],
            ..Default::default()
        });
        let r = ask(&s, &req(RequestType::NodePipByInstanceIp, list));
        assert_eq!(r.answer, json!([[0, pnode.primary_ip, 1], [1, 0, 0]]));
        let other_link = Query::Dict(DictQuery {
            link: Some("nosuchlink".into()),
            ip: Some(ips[0].clone()),
            ..Default::default()
        });
        let r = ask(&s, &req(RequestType::NodePipByInstanceIp, other_link));
        assert_eq!((r.status, r.answer), (ReplyStatus::Error, json!(0)));
        let r = ask(&s, &req(RequestType::NodePipByInstanceIp, Query::Empty));
        assert_eq!((r.status, r.answer), (ReplyStatus::Error, json!(2)));

        let r = ask(
            &s,
            &req(
                RequestType::NodeInstances,
                Query::Plain(pnode.name.0.clone()),
            ),
        );
        assert_eq!(r.status, ReplyStatus::Ok);
        let pri = r.answer[0].as_array().unwrap();
        assert!(pri.iter().any(|i| i["name"] == json!(inst.name.0)));
        assert_eq!(r.answer[1], json!([]));
        let r = ask(
            &s,
            &req(RequestType::NodeDrbd, Query::Plain(pnode.name.0.clone())),
        );
        assert_eq!((r.status, r.answer), (ReplyStatus::Ok, json!([])));
        let r = ask(
            &s,
            &req(
                RequestType::InstanceDisks,
                Query::Plain(inst.name.0.clone()),
            ),
        );
        assert_eq!(r.answer.as_array().unwrap().len(), inst.disks.len());
        let r = ask(
            &s,
            &req(
                RequestType::ConfigQuery,
                Query::Plain("/cluster/cluster_name".into()),
            ),
        );
        assert_eq!(r.answer, json!("cluster.example.com"));
        let r = ask(
            &s,
            &req(RequestType::ConfigQuery, Query::Plain("/nope".into())),
        );
        assert_eq!((r.status, r.answer), (ReplyStatus::Error, json!(0)));
    }

    #[test]
    fn drbd_minors_name_both_ends() {
        use crate::config::objects::LogicalId;
        let mut cfg = generated(2, 1);
        let n1: Vec<_> = cfg.nodes.keys().cloned().collect();
        let (a, b) = (n1[0].clone(), n1[1].clone());
        let inst = cfg.instances.values_mut().next().unwrap();
        inst.primary_node = a.clone();
        let name = inst.name.0.clone();
        let duuid = inst.disks[0].clone();
        let disk = cfg.disks.get_mut(&duuid).unwrap();
        disk.dev_type = "drbd".into();
        disk.logical_id = LogicalId::Drbd {
            node_a: a.clone(),
            node_b: b.clone(),
            port: 11000,
            minor_a: 3,
            minor_b: 7,
            secret: "s".into(),
        };
        let (an, bn) = (cfg.nodes[&a].name.0.clone(), cfg.nodes[&b].name.0.clone());
        let s = ConfdServer::new(HmacKey::new(b"cluster-key"));
        s.install(Arc::new(Snapshot::new(Arc::new(cfg))));
        let r = ask(&s, &req(RequestType::NodeDrbd, Query::Plain(bn.clone())));
        assert_eq!(r.answer, json!([[bn, 7, name, "disk/0", "secondary", an]]));
        let r = ask(
            &s,
            &req(RequestType::NodeInstances, Query::Plain(bn.clone())),
        );
        assert_eq!(r.answer[0], json!([]));
        assert_eq!(r.answer[1][0]["name"], json!(name));
        let r = ask(
            &s,
            &req(RequestType::NodeDrbd, Query::Plain("nosuch".into())),
        );
        assert_eq!(r.status, ReplyStatus::Error);
    }

    #[test]
    fn bad_packets_are_dropped_and_counted() {
        let s = server();
        let key = HmacKey::new(b"cluster-key");
        let good = codec::pack_request(&key, &req(RequestType::Ping, Query::Empty), NOW);
        assert!(s.handle(&good, NOW + 301).is_none());
        assert!(s.handle(&good, NOW - 301).is_none());
        assert_eq!(s.stats.dropped(DropReason::ClockSkew), 2);
        let wrong = codec::pack_request(
            &HmacKey::new(b"other"),
            &req(RequestType::Ping, Query::Empty),
            NOW,
        );
        assert!(s.handle(&wrong, NOW).is_none());
        assert_eq!(s.stats.dropped(DropReason::BadHmac), 1);
        assert!(s.handle(b"plj0{not json", NOW).is_none());
        assert_eq!(s.stats.dropped(DropReason::BadEnvelope), 1);
        assert!(s.handle(&vec![b'x'; MAX_PACKET_BYTES + 1], NOW).is_none());
        assert_eq!(s.stats.dropped(DropReason::Oversize), 1);
        let unknown = codec::pack(
            &key,
            &NOW.to_string(),
            r#"{"protocol":1,"type":42,"rsalt":"x"}"#,
        );
        assert!(s.handle(&unknown, NOW).is_none());
        assert_eq!(s.stats.dropped(DropReason::UnknownType), 1);
        let line = s.stats.line();
        assert!(
            line.contains("received=6") && line.contains("dropped_clock_skew=2"),
            "{line}"
        );
        assert!(line.contains("answered=0"), "{line}");
        // Without a config nothing is answered, even to a good request.
        let empty = ConfdServer::new(HmacKey::new(b"cluster-key"));
        assert!(empty.handle(&good, NOW).is_none());
        assert_eq!(empty.stats.no_config.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn oversize_answers_become_internal_errors() {
        // 400 instances' objects do not fit in one packet.
        let s = ConfdServer::new(HmacKey::new(b"cluster-key"));
        s.install(Arc::new(Snapshot::new(Arc::new(generated(1, 400)))));
        let r = ask(
            &s,
            &req(RequestType::NodeInstances, Query::Plain("node1".into())),
        );
        assert_eq!((r.status, r.answer), (ReplyStatus::Error, json!(1)));
        assert_eq!(s.stats.too_big.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn watcher_reloads_on_change_and_keeps_the_old_snapshot_on_garbage() {
        let p = crate::paths::test_support::temp_node("confd-watch", "node1", &["/var/lib/ganeti"]);
        let s = ConfdServer::new(HmacKey::new(b"k"));
        let mut w = ConfigWatcher::new(p.config_file());
        assert_eq!(w.check(&s), None, "no file yet");
        let mut cfg = generated(2, 2);
        cfg.serial_no = 5;
        crate::sys::fs::atomic_write(&p.config_file(), &cfg.to_json(), 0o640).unwrap();
        assert_eq!(w.check(&s), Some(5));
        assert_eq!(w.check(&s), None, "unchanged");
        crate::sys::fs::atomic_write(&p.config_file(), b"{garbage", 0o640).unwrap();
        assert_eq!(w.check(&s), None);
        assert_eq!(s.current().unwrap().serial(), 5, "old snapshot kept");
        assert_eq!(s.stats.reload_failures.load(Ordering::Relaxed), 1);
        cfg.serial_no = 6;
        crate::sys::fs::atomic_write(&p.config_file(), &cfg.to_json(), 0o640).unwrap();
        assert_eq!(w.check(&s), Some(6));
        crate::paths::test_support::remove_temp_node(&p);
    }

    #[test]
    fn serves_udp_until_stopped() {
        let s = Arc::new(server());
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let t = {
            let (s, stop) = (Arc::clone(&s), Arc::clone(&stop));
            std::thread::spawn(move || serve_udp(&s, &sock, &stop))
        };
        let client =
            crate::confd::client::ConfdClient::new(HmacKey::new(b"cluster-key"), vec![addr])
                .unwrap();
        let out = client
            .query(RequestType::ClusterMaster, Query::Empty)
            .unwrap();
        assert_eq!(out.best.answer, json!("node1.example.com"));
        assert!(!out.timed_out);
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap().unwrap();
    }
}
