//! The confd client library (Ganeti's `ganeti.confd.client`, synchronous).
//!
//! [`ConfdClient::query`] signs one request, sends it to several master
//! candidates at once, and collects replies until a quorum has answered
//! ([`needed_replies`], Ganeti's rule) or the timeout passes. Replies whose
//! HMAC, salt or sender do not match are ignored; of the rest the one with
//! the highest config serial wins, so a candidate with a stale config copy
//! cannot hide a newer answer. Used by `gnt-cluster confd-query` and meant
//! for the watcher.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::codec::{self, HmacKey, Query, Reply, Request};
use super::{RequestType, DEFAULT_REQ_COVERAGE, MAX_PACKET_BYTES, PROTOCOL_VERSION};
use crate::paths::Paths;

/// Why a confd query got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ConfdClientError {
    /// `hmac.key` could not be read.
    #[error("reading the confd key {path}")]
    ReadKey {
        /// The key file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The candidates' addresses could not be read.
    #[error("reading the master candidates' addresses (ssconf_master_candidates_ips)")]
    ReadPeers(#[source] crate::ssconf::SsconfError),
    /// An address in the peer list is not an IP address.
    #[error("master candidate address {0:?} is not an IP address")]
    BadPeer(String),
    /// No candidate to ask.
    #[error("no master candidates to ask")]
    NoPeers,
    /// The peers mix IPv4 and IPv6 (Ganeti refuses this too).
    #[error("master candidate addresses mix IPv4 and IPv6")]
    MixedFamilies,
    /// The UDP socket failed.
    #[error("{what}")]
    Socket {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The request does not fit in one packet.
    #[error("request of {0} bytes is larger than a confd packet ({MAX_PACKET_BYTES} bytes)")]
    TooBig(usize),
    /// No valid reply arrived in time.
    #[error("no valid reply from {asked} master candidate(s) within {timeout_ms} ms")]
    Timeout {
        /// How many candidates were asked.
        asked: usize,
        /// The timeout.
        timeout_ms: u128,
    },
}

/// The outcome of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryOutcome {
    /// The reply with the highest serial.
    pub best: Reply,
    /// Who sent it.
    pub from: SocketAddr,
    /// Every valid reply, in arrival order.
    pub replies: Vec<(SocketAddr, Reply)>,
    /// How many candidates were asked.
    pub asked: usize,
    /// Whether the quorum was not reached before the timeout.
    pub timed_out: bool,
}

/// Ganeti's `_NeededReplies`: all of one or two peers, all but one of
/// three or four, then a majority.
pub fn needed_replies(asked: usize) -> usize {
    match asked {
        0..=2 => asked,
        3..=4 => asked - 1,
        n => n / 2 + 1,
    }
}

/// A confd client for one cluster.
#[derive(Debug, Clone)]
pub struct ConfdClient {
    key: HmacKey,
    peers: Vec<SocketAddr>,
    /// How long [`ConfdClient::query`] waits for the quorum.
    pub timeout: Duration,
    /// How many peers to ask (0: Ganeti's default of 6, capped at the
    /// number of peers).
    pub coverage: usize,
}

impl ConfdClient {
    /// A client with `key` asking `peers`.
    pub fn new(key: HmacKey, peers: Vec<SocketAddr>) -> Result<ConfdClient, ConfdClientError> {
        let first = peers.first().ok_or(ConfdClientError::NoPeers)?;
        if peers.iter().any(|p| p.is_ipv4() != first.is_ipv4()) {
            return Err(ConfdClientError::MixedFamilies);
        }
        Ok(ConfdClient {
            key,
            peers,
            timeout: Duration::from_secs(super::CLIENT_EXPIRE_TIMEOUT_SECS),
            coverage: 0,
        })
    }

    /// The client of this node's cluster, as Ganeti's `GetConfdClient`:
    /// key from `hmac.key`, peers from `ssconf_master_candidates_ips`,
    /// port from `/etc/services` (`ganeti-confd`) or 1814 (or `port`).
    pub fn from_cluster(paths: &Paths, port: Option<u16>) -> Result<ConfdClient, ConfdClientError> {
        let key_path = paths.confd_hmac_key();
        let key = std::fs::read(&key_path).map_err(|source| ConfdClientError::ReadKey {
            path: key_path.clone(),
            source,
        })?;
        let text = crate::ssconf::read(paths, "master_candidates_ips")
            .map_err(ConfdClientError::ReadPeers)?;
        let port = port.unwrap_or_else(|| {
            crate::net::service_port(paths, "ganeti-confd", crate::constants::DEFAULT_CONFD_PORT)
        });
        let peers = peers_from_lines(&text, port)?;
        ConfdClient::new(HmacKey::new(&key), peers)
    }

    /// The peers this client knows.
    pub fn peers(&self) -> &[SocketAddr] {
        &self.peers
    }

    /// Asks `kind`/`query` and returns the freshest answer once a quorum
    /// replied, or what arrived by the timeout.
    pub fn query(&self, kind: RequestType, query: Query) -> Result<QueryOutcome, ConfdClientError> {
        let rsalt = crate::config::objects::Uuid::generate().0;
        let req = Request {
            protocol: PROTOCOL_VERSION,
            kind,
            query,
            rsalt: rsalt.clone(),
        };
        let packet = codec::pack_request(&self.key, &req, now_secs());
        if packet.len() > MAX_PACKET_BYTES {
            return Err(ConfdClientError::TooBig(packet.len()));
        }
        let coverage = match self.coverage {
            0 => DEFAULT_REQ_COVERAGE.min(self.peers.len()),
            n => n.min(self.peers.len()),
        };
        // Start at a different candidate each time (Ganeti shuffles), so
        // load spreads when there are more candidates than the coverage.
        let start = rsalt
            .bytes()
            .fold(0usize, |a, b| a.wrapping_add(usize::from(b)));
        let targets: Vec<SocketAddr> = (0..coverage)
            .map(|i| self.peers[(start + i) % self.peers.len()])
            .collect();
        let local: IpAddr = if targets[0].is_ipv4() {
            Ipv4Addr::UNSPECIFIED.into()
        } else {
            Ipv6Addr::UNSPECIFIED.into()
        };
        let sock_err = |what: &str| {
            let what = what.to_string();
            move |source| ConfdClientError::Socket { what, source }
        };
        let sock = UdpSocket::bind((local, 0)).map_err(sock_err("opening a UDP socket"))?;
        for t in &targets {
            // One unreachable candidate must not stop the others.
            if let Err(e) = sock.send_to(&packet, t) {
                log::debug!("confd request to {t} not sent: {e}");
            }
        }
        let needed = needed_replies(targets.len());
        let deadline = Instant::now() + self.timeout;
        let mut replies: Vec<(SocketAddr, Reply)> = Vec::new();
        let mut buf = vec![0u8; MAX_PACKET_BYTES + 1];
        while replies.len() < needed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            sock.set_read_timeout(Some(left))
                .map_err(sock_err("setting the UDP read timeout"))?;
            let (n, from) = match sock.recv_from(&mut buf) {
                Ok(r) => r,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                // ICMP port unreachable from a dead candidate: keep waiting
                // for the others.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(sock_err("receiving confd replies")(e)),
            };
            if !targets.contains(&from) || replies.iter().any(|(a, _)| *a == from) {
                continue;
            }
            match codec::parse_reply(&self.key, &buf[..n]) {
                Some((salt, reply)) if salt == rsalt => replies.push((from, reply)),
                _ => log::debug!("discarding a confd packet from {from}: bad signature or salt"),
            }
        }
        let timed_out = replies.len() < needed;
        let Some((from, best)) = best_of(&replies) else {
            return Err(ConfdClientError::Timeout {
                asked: targets.len(),
                timeout_ms: self.timeout.as_millis(),
            });
        };
        Ok(QueryOutcome {
            best,
            from,
            replies,
            asked: targets.len(),
            timed_out,
        })
    }
}

/// The reply with the highest serial (the first of equals).
fn best_of(replies: &[(SocketAddr, Reply)]) -> Option<(SocketAddr, Reply)> {
    let mut best: Option<&(SocketAddr, Reply)> = None;
    for r in replies {
        if best.is_none_or(|b| r.1.serial > b.1.serial) {
            best = Some(r);
        }
    }
    best.cloned()
}

/// Peer addresses from `ssconf_master_candidates_ips` text (one IP a line).
pub fn peers_from_lines(text: &str, port: u16) -> Result<Vec<SocketAddr>, ConfdClientError> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.parse::<IpAddr>()
                .map(|ip| SocketAddr::new(ip, port))
                .map_err(|_| ConfdClientError::BadPeer(l.to_string()))
        })
        .collect()
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confd::codec::Reply;
    use crate::confd::ReplyStatus;
    use serde_json::json;

    #[test]
    fn quorum_follows_ganeti() {
        let got: Vec<usize> = (0..=8).map(needed_replies).collect();
        assert_eq!(got, vec![0, 1, 2, 2, 3, 3, 4, 4, 5]);
    }

    #[test]
    fn peers_parse_and_refuse_garbage_or_mixed_families() {
        let p = peers_from_lines("192.0.2.1\n\n 192.0.2.2 \n", 1814).unwrap();
        assert_eq!(
            p,
            vec![
                "192.0.2.1:1814".parse().unwrap(),
                "192.0.2.2:1814".parse().unwrap()
            ]
        );
        assert!(matches!(
            peers_from_lines("node1\n", 1814),
            Err(ConfdClientError::BadPeer(s)) if s == "node1"
        ));
        let key = HmacKey::new(b"k");
        let mixed = peers_from_lines("192.0.2.1\n::1\n", 1814).unwrap();
        assert!(matches!(
            ConfdClient::new(key.clone(), mixed),
            Err(ConfdClientError::MixedFamilies)
        ));
        assert!(matches!(
            ConfdClient::new(key, vec![]),
            Err(ConfdClientError::NoPeers)
        ));
    }

    /// A fake candidate: answers every request once with `serial`, signed
    /// with `key` (a wrong key makes it a forger the client must ignore).
    fn candidate(key: &'static [u8], serial: u64, answer: serde_json::Value) -> SocketAddr {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; MAX_PACKET_BYTES + 1];
            let (n, from) = sock.recv_from(&mut buf).unwrap();
            // The request verifies with the cluster key whatever we sign with.
            let req =
                codec::parse_request(&HmacKey::new(b"cluster"), &buf[..n], now_secs()).unwrap();
            let reply = Reply {
                protocol: 1,
                status: ReplyStatus::Ok,
                answer,
                serial,
            };
            let out = codec::pack_reply(&HmacKey::new(key), &req.rsalt, &reply);
            sock.send_to(&out, from).unwrap();
        });
        addr
    }

    #[test]
    fn highest_serial_wins_and_forged_replies_are_ignored() {
        let peers = vec![
            candidate(b"cluster", 7, json!("old")),
            candidate(b"cluster", 9, json!("new")),
            candidate(b"cluster", 8, json!("middle")),
            // A forger answering with a huge serial under another key.
            candidate(b"forger", 1000, json!("forged")),
        ];
        let mut c = ConfdClient::new(HmacKey::new(b"cluster"), peers).unwrap();
        c.timeout = Duration::from_secs(10);
        let out = c.query(RequestType::ClusterMaster, Query::Empty).unwrap();
        // Four asked: three replies make the quorum; the forgery never counts.
        assert_eq!(out.asked, 4);
        assert_eq!(out.replies.len(), 3);
        assert!(!out.timed_out);
        assert_eq!((out.best.serial, out.best.answer), (9, json!("new")));
    }

    #[test]
    fn no_valid_reply_is_a_timeout_error() {
        let peers = vec![candidate(b"forger", 5, json!("x"))];
        let mut c = ConfdClient::new(HmacKey::new(b"cluster"), peers).unwrap();
        c.timeout = Duration::from_millis(300);
        let e = c.query(RequestType::Ping, Query::Empty).unwrap_err();
        assert!(
            matches!(e, ConfdClientError::Timeout { asked: 1, .. }),
            "{e}"
        );
    }
}
