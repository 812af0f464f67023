//! Long random run over confd's packet parser and query answering.
//!
//! Ignored by default; run with `make fuzz-confd` (or
//! `FUZZ_CONFD_SECS=600 cargo test --test fuzz_confd -- --ignored --nocapture`).
//! Each iteration feeds one packet to `ConfdServer::handle`, the daemon's
//! whole per-packet path (size, fourcc, envelope, HMAC, timestamp, request
//! parse, answer, reply signing), over a generated 20-node config. Packets
//! are (a) mutations of valid signed requests (bit flips, truncation,
//! splices, inserted bytes), which exercise the checks before the HMAC, and
//! (b) random JSON messages signed with the right key and a current
//! timestamp, which reach the request parser and every query. A panic is a
//! crash: it is caught, counted, its packet printed, and the test fails.
//! Deterministic per seed (`FUZZ_CONFD_SEED`), so a crash reproduces.

#![allow(
    clippy::tests_outside_test_module,
    clippy::unwrap_used,
    clippy::cast_possible_truncation
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ganeti::confd::codec::{self, HmacKey, Query, Request};
use ganeti::confd::query::Snapshot;
use ganeti::confd::RequestType;
use ganeti::daemons::confd::ConfdServer;
use serde_json::{json, Value};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % (n.max(1) as u64)) as usize
    }
    fn text(&mut self) -> String {
        const WORDS: &[&str] = &[
            "node1",
            "node2.example.com",
            "inst3.example.com",
            "10.0.0.4",
            "br0",
            "",
            "/cluster",
            "/cluster/cluster_name",
            "/nodes",
            "\u{0}",
            "é",
            "192.0.2.1",
            "/",
            "~1",
            "xenbr0",
        ];
        if self.below(3) == 0 {
            let n = self.below(40);
            (0..n)
                .map(|_| char::from(32 + self.below(95) as u8))
                .collect()
        } else {
            WORDS[self.below(WORDS.len())].to_string()
        }
    }
    fn value(&mut self, depth: u32) -> Value {
        match self.below(if depth > 3 { 5 } else { 8 }) {
            0 => Value::Null,
            1 => json!(self.below(2) == 0),
            2 => json!(self.below(20) as i64 - 3),
            3 => json!(self.next()),
            4 => json!(self.text()),
            5 => Value::Array((0..self.below(5)).map(|_| self.value(depth + 1)).collect()),
            6 => {
                let mut m = serde_json::Map::new();
                for _ in 0..self.below(5) {
                    let k = if self.below(2) == 0 {
                        self.below(5).to_string()
                    } else {
                        self.text()
                    };
                    m.insert(k, self.value(depth + 1));
                }
                Value::Object(m)
            }
            _ => json!(-1.5e300),
        }
    }
}

#[test]
#[ignore = "long random run: make fuzz-confd"]
fn fuzz_confd_packets() {
    let secs: u64 = std::env::var("FUZZ_CONFD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let seed: u64 = std::env::var("FUZZ_CONFD_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c0fd);
    let key = HmacKey::new(b"fuzz-key");
    let server = ConfdServer::new(HmacKey::new(b"fuzz-key"));
    server.install(Arc::new(Snapshot::new(Arc::new(
        ganeti::config::test_support::generated(20, 200),
    ))));
    let now = 1_700_000_000i64;
    let mut rng = Rng(seed | 1);
    let seeds: Vec<Vec<u8>> = RequestType::ALL
        .iter()
        .map(|t| {
            let q = match rng.below(3) {
                0 => Query::Empty,
                1 => Query::Plain("node1.example.com".into()),
                _ => Query::Plain("10.0.0.1".into()),
            };
            codec::pack_request(
                &key,
                &Request {
                    protocol: 1,
                    kind: *t,
                    query: q,
                    rsalt: "r".into(),
                },
                now,
            )
        })
        .collect();
    // The panic message goes to stderr once per crash; keep the default hook.
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (mut execs, mut crashes, mut answered) = (0u64, 0u64, 0u64);
    while Instant::now() < deadline {
        for _ in 0..256 {
            let packet: Vec<u8> = if rng.below(2) == 0 {
                let mut p = seeds[rng.below(seeds.len())].clone();
                for _ in 0..=rng.below(4) {
                    match rng.below(5) {
                        0 if !p.is_empty() => {
                            let i = rng.below(p.len());
                            p[i] ^= 1 << rng.below(8);
                        }
                        1 => p.truncate(rng.below(p.len() + 1)),
                        2 => {
                            let i = rng.below(p.len() + 1);
                            let b = rng.next() as u8;
                            p.insert(i, b);
                        }
                        3 => {
                            let other = &seeds[rng.below(seeds.len())];
                            let cut = rng.below(other.len());
                            let at = rng.below(p.len() + 1);
                            p.truncate(at);
                            p.extend_from_slice(&other[cut..]);
                        }
                        _ => {
                            let n = rng.below(70_000);
                            p.resize(n, b' ');
                        }
                    }
                }
                p
            } else {
                let mut m = serde_json::Map::new();
                if rng.below(8) != 0 {
                    m.insert("protocol".into(), json!(1));
                }
                let t = if rng.below(6) == 0 {
                    rng.value(0)
                } else {
                    json!(rng.below(13))
                };
                m.insert("type".into(), t);
                if rng.below(4) != 0 {
                    m.insert("query".into(), rng.value(0));
                }
                if rng.below(10) != 0 {
                    m.insert("rsalt".into(), json!(rng.text()));
                }
                let skew = [0i64, 300, -300, 301, -301][rng.below(5)];
                codec::pack(
                    &key,
                    &(now + skew).to_string(),
                    &Value::Object(m).to_string(),
                )
            };
            execs += 1;
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                server.handle(&packet, now)
            }));
            match result {
                Ok(Some(reply)) => {
                    answered += 1;
                    assert!(reply.len() <= ganeti::confd::MAX_PACKET_BYTES);
                }
                Ok(None) => {}
                Err(_) => {
                    crashes += 1;
                    eprintln!("CRASH on packet: {:?}", String::from_utf8_lossy(&packet));
                }
            }
        }
    }
    eprintln!(
        "fuzz_confd: seed={seed} secs={secs} executions={execs} answered={answered} crashes={crashes}\nstats {}",
        server.stats.line()
    );
    assert_eq!(crashes, 0);
}
