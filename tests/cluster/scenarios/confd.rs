//! confd: daemons on the master candidates answer signed UDP queries; the
//! client keeps the newest answer when a candidate has a stale config;
//! Ganeti's own Python confd client works against our daemon; bad packets
//! are dropped and counted.

use crate::harness::TestCluster;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const GANETI_PY: &str = "/usr/share/ganeti/3.0";

fn confd_query(c: &TestCluster, node: &str, args: &[&str]) -> Value {
    let mut all = vec!["confd-query", "--json"];
    all.extend_from_slice(args);
    let out = c.run(node, "gnt-cluster", &all).ok();
    serde_json::from_str(out.stdout.trim()).unwrap()
}

/// Waits for confd on `node`: init starts it on the master, and
/// `gnt-node add` on a new master candidate.
fn ensure_confd(c: &TestCluster, node: &str) {
    c.wait_for("confd", Duration::from_secs(10), || {
        c.daemon_pid(node, "ganeti-confd").is_some()
    });
}

fn config_serial(c: &TestCluster, node: &str) -> u64 {
    let v: Value = serde_json::from_str(&c.data_file(node, "config.data").unwrap()).unwrap();
    v["serial_no"].as_u64().unwrap()
}

/// The serial of the last config confd loaded, from its log.
fn loaded_serial(c: &TestCluster, node: &str) -> Option<u64> {
    let log = std::fs::read_to_string(c.path(node, "/var/log/ganeti/conf-daemon.log"))
        .unwrap_or_default();
    log.lines()
        .rfind(|l| l.contains("loaded config"))?
        .split_whitespace()
        .find_map(|f| f.strip_prefix("serial=")?.parse().ok())
}

#[test]
fn stale_candidate_loses_to_the_newest_serial() {
    let c = TestCluster::new(2);
    c.init_multi(&[]).ok();
    ensure_confd(&c, "node1");
    c.add_node("node2", &[]).ok();
    ensure_confd(&c, "node2");
    let serial = config_serial(&c, "node1");
    c.wait_for("node2 has the config", Duration::from_secs(10), || {
        config_serial(&c, "node2") == serial && loaded_serial(&c, "node2") == Some(serial)
    });

    let r = confd_query(&c, "node2", &["cluster-master"]);
    assert_eq!(r["status"], json!(0), "{r}");
    assert_eq!(r["answer"], json!("node1"));
    assert_eq!(r["replies"], json!(2), "both candidates answer: {r}");
    let r = confd_query(&c, "node1", &["node-role-byname", "node2"]);
    assert_eq!(r["answer"], json!(1), "node2 is a candidate: {r}");
    let r = confd_query(&c, "node1", &["mc-pip-list"]);
    assert_eq!(r["answer"].as_array().unwrap().len(), 2);

    // node2 keeps the old copy while the master moves on.
    let stale = c.data_file("node2", "config.data").unwrap();
    c.run("node1", "gnt-cluster", &["add-tags", "fresh"]).ok();
    let fresh = config_serial(&c, "node1");
    assert!(fresh > serial);
    c.wait_for("the new config on node2", Duration::from_secs(10), || {
        config_serial(&c, "node2") == fresh
    });
    let path = c.path("node2", "/var/lib/ganeti/config.data");
    let tmp = path.with_extension("stale");
    std::fs::write(&tmp, &stale).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    c.wait_for(
        "node2's confd to load the stale copy",
        Duration::from_secs(10),
        || loaded_serial(&c, "node2") == Some(serial),
    );
    // confd looks at config.data every 250 ms: wait until node1's has
    // loaded the new one.
    c.wait_for(
        "node1's confd to load the new config",
        Duration::from_secs(10),
        || loaded_serial(&c, "node1") == Some(fresh),
    );

    for asker in ["node1", "node2"] {
        let r = confd_query(&c, asker, &["config-query", "/cluster/tags"]);
        assert_eq!(r["status"], json!(0), "{r}");
        assert_eq!(r["serial"], json!(fresh), "newest serial wins: {r}");
        assert_eq!(r["answer"], json!(["fresh"]), "{r}");
        let mut serials: Vec<u64> = serde_json::from_value(r["serials"].clone()).unwrap();
        serials.sort_unstable();
        assert_eq!(serials, vec![serial, fresh], "both answered: {r}");
    }

    // Plain output for shell scripts; errors exit non-zero.
    let out = c
        .run("node1", "gnt-cluster", &["confd-query", "node-pip-list"])
        .ok();
    assert_eq!(out.stdout.lines().count(), 2, "{}", out.stdout);
    let out = c
        .run(
            "node1",
            "gnt-cluster",
            &["confd-query", "node-role-byname", "nosuch"],
        )
        .failed();
    assert!(out.stderr.contains("status 1"), "{}", out.stderr);
    c.run("node1", "gnt-cluster", &["confd-query", "no-such-type"])
        .failed();
}

/// Sends raw packets from the test to node1's confd and checks the drop
/// counters in the stats line written on SIGHUP.
fn send_bad_packets_and_check_stats(c: &TestCluster) {
    use ganeti::confd::codec::{self, HmacKey, Query, Request};
    use ganeti::confd::RequestType;
    let addr = format!("{}:1814", c.address("node1"));
    let key = std::fs::read(c.path("node1", "/var/lib/ganeti/hmac.key")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let ping = Request {
        protocol: 1,
        kind: RequestType::Ping,
        query: Query::Empty,
        rsalt: "x".into(),
    };
    let packets: Vec<Vec<u8>> = vec![
        codec::pack_request(&HmacKey::new(b"wrong key"), &ping, now),
        codec::pack_request(&HmacKey::new(&key), &ping, now - 3600),
        codec::pack_request(&HmacKey::new(&key), &ping, now + 3600),
        b"plj0{\"msg\": ".to_vec(),
        b"GET / HTTP/1.0\r\n\r\n".to_vec(),
        vec![b' '; 62_000],
        codec::pack(
            &HmacKey::new(&key),
            &now.to_string(),
            r#"{"protocol": 1, "type": 77, "rsalt": "x"}"#,
        ),
    ];
    let sock = std::net::UdpSocket::bind(format!("{}:0", c.address("node1"))).unwrap();
    for p in &packets {
        sock.send_to(p, &addr).unwrap();
    }
    // A good request after them: once it is answered, the bad ones (sent
    // earlier on the same path) have been handled.
    sock.send_to(&codec::pack_request(&HmacKey::new(&key), &ping, now), &addr)
        .unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 65536];
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    let (salt, reply) = codec::parse_reply(&HmacKey::new(&key), &buf[..n]).unwrap();
    assert_eq!((salt.as_str(), reply.answer), ("x", json!(3_000_000)));

    let pid = c.daemon_pid("node1", "ganeti-confd").unwrap();
    std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    let log_path = c.path("node1", "/var/log/ganeti/conf-daemon.log");
    c.wait_for("the stats line", Duration::from_secs(10), || {
        std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains("stats ") && l.contains("dropped_bad_hmac=1"))
    });
    let log = std::fs::read_to_string(&log_path).unwrap();
    let line = log.lines().rfind(|l| l.contains("stats ")).unwrap();
    for want in [
        "dropped_bad_hmac=1",
        "dropped_clock_skew=2",
        "dropped_bad_envelope=1",
        "dropped_bad_magic=1",
        "dropped_oversize=1",
        "dropped_unknown_type=1",
    ] {
        assert!(line.contains(want), "{want} missing in {line}");
    }
}

#[test]
fn ganeti_python_confd_client_and_bad_packets() {
    let c = TestCluster::new(1);
    c.init(&[]).ok();
    ensure_confd(&c, "node1");
    c.wait_for("confd loaded the config", Duration::from_secs(10), || {
        loaded_serial(&c, "node1").is_some()
    });
    send_bad_packets_and_check_stats(&c);

    if !Path::new(GANETI_PY).join("ganeti/confd/client.py").exists()
        || !Path::new("/usr/bin/python3").exists()
    {
        eprintln!(
            "skipping the Python half: Ganeti's Python library is not installed (apt-get install ganeti-3.0)"
        );
        return;
    }
    let key = c.path("node1", "/var/lib/ganeti/hmac.key");
    let ip = c.address("node1");
    let script = format!(
        "import sys, json\nsys.path.insert(0, {GANETI_PY:?})\n\
         from ganeti.confd import client as cc\nfrom ganeti import constants as C\n\
         key = open({key:?}).read()\n\
         store = cc.StoreResultCallback()\n\
         cl = cc.ConfdClient(key, [{ip:?}], cc.ConfdFilterCallback(store), port=1814)\n\
         out = {{}}\n\
         for name, t, q in [('ping', C.CONFD_REQ_PING, None), ('master', C.CONFD_REQ_CLUSTER_MASTER, None),\n\
         \x20   ('role', C.CONFD_REQ_NODE_ROLE_BYNAME, 'node1'), ('nosuch', C.CONFD_REQ_NODE_ROLE_BYNAME, 'nosuch'),\n\
         \x20   ('mcs', C.CONFD_REQ_MC_PIP_LIST, None),\n\
         \x20   ('fields', C.CONFD_REQ_CLUSTER_MASTER, {{C.CONFD_REQQ_FIELDS: [C.CONFD_REQFIELD_NAME, C.CONFD_REQFIELD_MNODE_PIP]}}),\n\
         \x20   ('ips', C.CONFD_REQ_INSTANCES_IPS_LIST, None)]:\n\
         \x20   req = cc.ConfdClientRequest(type=t, query=q)\n\
         \x20   cl.SendRequest(req, async_=False)\n\
         \x20   timed_out, sent, rcvd = cl.WaitForReply(req.rsalt, timeout=10)\n\
         \x20   ok, up = store.GetResponse(req.rsalt)\n\
         \x20   r = up.server_reply\n\
         \x20   out[name] = [timed_out, rcvd, r.status, r.answer, r.serial > 0] if ok else None\n\
         print(json.dumps(out))\n"
    );
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python confd client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        got,
        json!({
            "ping": [false, 1, 0, 3000000, true],
            "master": [false, 1, 0, "node1", true],
            "role": [false, 1, 0, 0, true],
            "nosuch": [false, 1, 1, "Failure: prerequisites not met for this operation:\nerror type: ECodeNoEnt, error details:\nNode name nosuch not found", true],
            "mcs": [false, 1, 0, [ip], true],
            "fields": [false, 1, 0, ["node1", ip], true],
            "ips": [false, 1, 0, [], true],
        })
    );
}

/// Every request type asked of our confd and of Ganeti's Haskell confd
/// (when installed) over the same config.data: the status and answer must
/// be the same.
#[test]
fn same_answers_as_ganeti_haskell_confd() {
    use ganeti::confd::codec::{self, DictQuery, HmacKey, Query, Request};
    use ganeti::confd::{ReqField, RequestType};
    let exe = Path::new("/usr/sbin/ganeti-confd");
    if !exe.exists() {
        eprintln!("skipping: Ganeti's Haskell confd is not installed (apt-get install ganeti-haskell-3.0)");
        return;
    }
    let c = TestCluster::new(1);
    c.init(&[]).ok();
    ensure_confd(&c, "node1");
    c.wait_for("confd loaded the config", Duration::from_secs(10), || {
        loaded_serial(&c, "node1").is_some()
    });
    // A config with instances, IPs and DRBD-free disks, served by both.
    let mut cfg = ganeti::config::test_support::generated(3, 6);
    cfg.serial_no = 999;
    let cfg_path = c.path("node1", "/var/lib/ganeti/config.data");
    let tmp = cfg_path.with_extension("new");
    std::fs::write(&tmp, cfg.to_json()).unwrap();
    std::fs::rename(&tmp, &cfg_path).unwrap();
    c.wait_for(
        "confd loaded the generated config",
        Duration::from_secs(10),
        || loaded_serial(&c, "node1") == Some(999),
    );
    let inst_ip = cfg.instances.values().next().unwrap().nics[0]
        .ip
        .clone()
        .unwrap();
    // The Haskell daemon gets a copy of the node's data in a root of its own.
    let hroot = c.base.join("haskell").join("node1");
    std::fs::create_dir_all(hroot.join("var/lib/ganeti")).unwrap();
    for d in ["var/run/ganeti/socket", "var/log/ganeti"] {
        std::fs::create_dir_all(hroot.join(d)).unwrap();
    }
    for f in ["config.data", "hmac.key"] {
        std::fs::copy(
            c.path("node1", &format!("/var/lib/ganeti/{f}")),
            hroot.join("var/lib/ganeti").join(f),
        )
        .unwrap();
    }
    let ip = c.address("node1");
    let hport = std::net::UdpSocket::bind(format!("{ip}:0"))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(exe)
        .args([
            "-f",
            "--no-user-checks",
            "-b",
            &ip,
            "-p",
            &hport.to_string(),
        ])
        .env("GANETI_ROOTDIR", &hroot)
        .env("GANETI_HOSTNAME", "node1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let key = HmacKey::new(&std::fs::read(c.path("node1", "/var/lib/ganeti/hmac.key")).unwrap());
    let sock = std::net::UdpSocket::bind(format!("{ip}:0")).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let ask = |port: u16, kind: RequestType, query: &Query| -> Option<(u64, Value, u64)> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let req = Request {
            protocol: 1,
            kind,
            query: query.clone(),
            rsalt: format!("cmp-{}", kind.number()),
        };
        let mut buf = [0u8; 65536];
        for _ in 0..50 {
            sock.send_to(
                &codec::pack_request(&key, &req, now),
                format!("{ip}:{port}"),
            )
            .unwrap();
            if let Ok((n, _)) = sock.recv_from(&mut buf) {
                let (_, r) = codec::parse_reply(&key, &buf[..n])?;
                return Some((r.status.number(), r.answer, r.serial));
            }
        }
        None
    };
    let cases: Vec<(RequestType, Query)> = vec![
        (RequestType::Ping, Query::Empty),
        (RequestType::ClusterMaster, Query::Empty),
        (
            RequestType::ClusterMaster,
            Query::Dict(DictQuery {
                fields: vec![ReqField::Name, ReqField::Ip, ReqField::MnodePip],
                ..Default::default()
            }),
        ),
        (RequestType::NodeRoleByName, Query::Plain("node1".into())),
        (
            RequestType::NodeRoleByName,
            Query::Plain("node2.example.com".into()),
        ),
        (RequestType::NodeRoleByName, Query::Plain("nosuch".into())),
        (RequestType::NodeRoleByName, Query::Empty),
        (RequestType::NodePipList, Query::Empty),
        (RequestType::McPipList, Query::Empty),
        (RequestType::InstancesIpsList, Query::Empty),
        (
            RequestType::NodePipByInstanceIp,
            Query::Dict(DictQuery {
                ip: Some(inst_ip.clone()),
                ..Default::default()
            }),
        ),
        (
            RequestType::NodePipByInstanceIp,
            Query::Dict(DictQuery {
                ip_list: vec![inst_ip.clone(), "192.0.2.78".into()],
                ..Default::default()
            }),
        ),
        (
            RequestType::NodePipByInstanceIp,
            Query::Dict(DictQuery {
                ip: Some("192.0.2.77".into()),
                ..Default::default()
            }),
        ),
        (RequestType::NodePipByInstanceIp, Query::Empty),
        (
            RequestType::InstancesIpsList,
            Query::Plain("nosuchlink".into()),
        ),
        (RequestType::NodeDrbd, Query::Plain("node1".into())),
        (RequestType::NodeDrbd, Query::Plain("nosuch".into())),
        (RequestType::NodeInstances, Query::Plain("node2".into())),
        (RequestType::NodeInstances, Query::Plain("nosuch".into())),
        (
            RequestType::InstanceDisks,
            Query::Plain(cfg.instances.values().next().unwrap().name.0.clone()),
        ),
        (
            RequestType::ConfigQuery,
            Query::Plain("/cluster/cluster_name".into()),
        ),
        (RequestType::DataCollectors, Query::Empty),
    ];
    let mut diffs = Vec::new();
    let hs_up = ask(hport, RequestType::Ping, &Query::Empty).is_some();
    assert!(hs_up, "the Haskell confd did not answer");
    for (kind, q) in &cases {
        let ours = ask(1814, *kind, q).expect("our confd answers");
        let theirs = ask(hport, *kind, q).expect("Haskell confd answers");
        // Objects (instances, disks) are each side's serialisation of the
        // same config object; compare what identifies them.
        let ids = |v: &Value| -> Value {
            match kind {
                RequestType::NodeInstances => json!(v.as_array().map(|l| l
                    .iter()
                    .map(|side| side
                        .as_array()
                        .map(|is| is.iter().map(|i| i["name"].clone()).collect::<Vec<_>>()))
                    .collect::<Vec<_>>())),
                RequestType::InstanceDisks => json!(v.as_array().map(|l| l
                    .iter()
                    .map(|d| (d["uuid"].clone(), d["size"].clone()))
                    .collect::<Vec<_>>())),
                _ => v.clone(),
            }
        };
        if (ours.0, ids(&ours.1)) != (theirs.0, ids(&theirs.1)) {
            diffs.push(format!(
                "{} {}: ours {} {} / Ganeti {} {}",
                kind.cli_name(),
                q.to_json(),
                ours.0,
                ours.1,
                theirs.0,
                theirs.1
            ));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(diffs.is_empty(), "answers differ:\n{}", diffs.join("\n"));
}
