//! Several nodes: noded on every node, joining with a token, node flags and
//! the candidate pool, removal, file distribution, verify, master failover,
//! and nodes dying in the middle of operations.

use crate::harness::{mode, TestCluster};
use std::time::Duration;

/// `gnt-node list` as name → (master_candidate, drained, offline).
fn node_flags(c: &TestCluster, on: &str) -> Vec<(String, String)> {
    let out = c
        .run(
            on,
            "gnt-node",
            &[
                "list",
                "--no-headers",
                "--separator=|",
                "-o",
                "name,master_candidate,drained,offline,master_capable,vm_capable",
            ],
        )
        .ok()
        .stdout;
    out.lines()
        .map(|l| {
            let (name, rest) = l.split_once('|').unwrap();
            (name.to_string(), rest.to_string())
        })
        .collect()
}

fn candidates(c: &TestCluster) -> Vec<String> {
    node_flags(c, "node1")
        .into_iter()
        .filter(|(_, f)| f.starts_with('Y'))
        .map(|(n, _)| n)
        .collect()
}

fn serial(c: &TestCluster, node: &str) -> u64 {
    let v: serde_json::Value =
        serde_json::from_str(&c.data_file(node, "config.data").unwrap()).unwrap();
    v["serial_no"].as_u64().unwrap()
}

#[test]
fn add_nodes_flags_pool_distribution_remove() {
    let c = TestCluster::new(4);
    c.init_multi(&["-C", "3"]).ok();
    c.wait_for("noded on the master", Duration::from_secs(10), || {
        c.daemon_pid("node1", "ganeti-noded").is_some()
    });
    assert!(
        c.master_ip_log("node1").starts_with("start 127."),
        "master IP activated through the script: {:?}",
        c.master_ip_log("node1")
    );

    for n in ["node2", "node3", "node4"] {
        let out = c.add_node(n, &[]).ok();
        assert!(
            out.stderr.is_empty() || !out.stderr.contains("ERROR"),
            "{}",
            out.stderr
        );
        // The token is single-use: it is gone from the node.
        assert!(c.data_file(n, "join-token").is_none(), "{n} token consumed");
        for secret in ["server.pem", "hmac.key", "cluster-domain-secret"] {
            let p = c.path(n, &format!("/var/lib/ganeti/{secret}"));
            assert_eq!(mode(&p), 0o600, "{n}: {secret}");
        }
        assert_eq!(
            c.data_file(n, "server.pem"),
            c.data_file("node1", "server.pem"),
            "{n} got the cluster certificate"
        );
    }
    // Pool of 3: the master and the first two nodes added.
    assert_eq!(candidates(&c), ["node1", "node2", "node3"]);
    let master_serial = serial(&c, "node1");
    for n in ["node2", "node3"] {
        assert_eq!(serial(&c, n), master_serial, "config.data on candidate {n}");
    }
    assert!(
        c.data_file("node4", "config.data").is_none(),
        "no config on node4"
    );
    for n in c.nodes() {
        let list = c.data_file(n, "ssconf_node_list").unwrap();
        assert_eq!(list.lines().count(), 4, "{n}: {list}");
        assert_eq!(
            c.data_file(n, "ssconf_master_node").unwrap().trim(),
            "node1"
        );
    }

    // Demoting a candidate below the pool size needs --auto-promote.
    let refused = c
        .run(
            "node1",
            "gnt-node",
            &["modify", "--master-candidate=no", "node2"],
        )
        .failed();
    assert!(
        refused.stderr.contains("auto-promote") || refused.stderr.contains("auto_promote"),
        "{}",
        refused.stderr
    );
    c.run(
        "node1",
        "gnt-node",
        &["modify", "--master-candidate=no", "--auto-promote", "node2"],
    )
    .ok();
    assert_eq!(candidates(&c), ["node1", "node3", "node4"]);
    assert!(
        c.data_file("node2", "config.data").is_none(),
        "demoted node2 lost config.data"
    );
    assert_eq!(
        serial(&c, "node4"),
        serial(&c, "node1"),
        "promoted node4 has the config"
    );
    // confd follows the role: stopped on the demoted node, started on the
    // promoted one.
    c.wait_for(
        "confd follows the candidate role",
        Duration::from_secs(10),
        || {
            c.daemon_pid("node2", "ganeti-confd").is_none()
                && c.daemon_pid("node4", "ganeti-confd").is_some()
        },
    );

    // Drained and offline; offline nodes are not contacted.
    c.run("node1", "gnt-node", &["modify", "--drained=yes", "node2"])
        .ok();
    let flags = node_flags(&c, "node1");
    assert_eq!(flags[1], ("node2".into(), "N|Y|N|Y|Y".into()), "{flags:?}");
    c.run("node1", "gnt-node", &["modify", "--offline=yes", "node2"])
        .ok();
    let out = c
        .run("node1", "gnt-cluster", &["command", "echo", "hello"])
        .ok()
        .stdout;
    assert_eq!(out.matches("hello").count(), 3, "{out}");
    assert!(
        !out.contains("node: node2"),
        "offline node2 not contacted: {out}"
    );
    c.run(
        "node1",
        "gnt-node",
        &["modify", "--offline=no", "--force", "node2"],
    )
    .ok();

    // Info.
    let info = c.run("node1", "gnt-node", &["info", "node3"]).ok().stdout;
    assert!(info.contains("Node name: node3"), "{info}");
    assert!(
        info.contains(&format!("primary ip: {}", c.address("node3"))),
        "{info}"
    );
    assert!(info.contains("master candidate: True"), "{info}");

    // Command and copyfile over RPC.
    let out = c.run(
        "node1",
        "gnt-cluster",
        &["command", "-n", "node3", "exit 3"],
    );
    assert_ne!(out.code, 0);
    assert!(out.stdout.contains("return code = 3"), "{}", out.stdout);
    let extra = c.path("node1", "/etc/ganeti/extra.conf");
    std::fs::write(&extra, "shipped\n").unwrap();
    c.run(
        "node1",
        "gnt-cluster",
        &["copyfile", "/etc/ganeti/extra.conf"],
    )
    .ok();
    for n in ["node2", "node3", "node4"] {
        let got = std::fs::read_to_string(c.path(n, "/etc/ganeti/extra.conf")).unwrap();
        assert_eq!(got, "shipped\n", "{n}");
    }
    let shadow = c.path("node1", "/etc/shadow-copy");
    std::fs::write(&shadow, "x").unwrap();
    let refused = c
        .run("node1", "gnt-cluster", &["copyfile", "/etc/shadow-copy"])
        .failed();
    assert!(
        refused
            .stderr
            .contains("not a file the cluster distributes"),
        "{refused:?}"
    );

    // Powercycle goes through noded's configured action.
    c.run("node1", "gnt-node", &["powercycle", "--yes", "node3"])
        .ok();
    c.wait_for("powercycle recorded", Duration::from_secs(10), || {
        c.powercycle_log("node3").contains("powercycle")
    });

    // Verify is clean; a tampered ssconf file is found; redist-conf repairs it.
    c.run("node1", "gnt-cluster", &["verify"]).ok();
    std::fs::write(
        c.path("node3", "/var/lib/ganeti/ssconf_cluster_tags"),
        "bogus\n",
    )
    .unwrap();
    let bad = c.run("node1", "gnt-cluster", &["verify"]).failed();
    assert!(
        bad.stdout.contains("node3") && bad.stdout.contains("ERROR"),
        "{}",
        bad.stdout
    );
    let admin_list = c.path("node1", "/etc/ganeti/redist-files");
    let admin_file = c.path("node1", "/etc/ganeti/site.conf");
    std::fs::write(&admin_file, "site\n").unwrap();
    std::fs::write(&admin_list, "# ours\n/etc/ganeti/site.conf\n").unwrap();
    c.run("node1", "gnt-cluster", &["redist-conf"]).ok();
    c.run("node1", "gnt-cluster", &["verify"]).ok();
    for n in ["node2", "node3", "node4"] {
        assert_eq!(
            std::fs::read_to_string(c.path(n, "/etc/ganeti/site.conf")).unwrap(),
            "site\n",
            "{n}"
        );
    }
    for n in ["node3", "node4"] {
        assert_eq!(
            c.data_file(n, "rapi.pem"),
            c.data_file("node1", "rapi.pem"),
            "{n}"
        );
    }

    // Remove a node: it leaves the cluster and its noded stops.
    c.run("node1", "gnt-node", &["remove", "node4"]).ok();
    let names: Vec<String> = node_flags(&c, "node1")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["node1", "node2", "node3"]);
    c.wait_for("node4 left", Duration::from_secs(10), || {
        c.data_file("node4", "server.pem").is_none()
            && c.daemon_pid("node4", "ganeti-noded").is_none()
    });
    // The pool was refilled from the remaining nodes.
    assert_eq!(candidates(&c), ["node1", "node2", "node3"]);
    c.run("node1", "gnt-node", &["remove", "node1"]).failed();
}

#[test]
fn join_tokens_are_single_use_and_expire() {
    let c = TestCluster::new(3);
    c.init_multi(&[]).ok();
    c.start_noded("node2");
    // Expired.
    c.give_token("node1", "node2", "1");
    std::thread::sleep(Duration::from_millis(2100));
    let out = c.run("node1", "gnt-node", &["add", "node2"]).failed();
    assert!(out.stderr.contains("expired"), "{}", out.stderr);
    assert!(c.data_file("node2", "server.pem").is_none());
    // Valid once, then replayed against another node: refused.
    let token = c.give_token("node1", "node2", "600");
    c.run("node1", "gnt-node", &["add", "node2"]).ok();
    c.start_noded("node3");
    c.install_token("node3", &token);
    let out = c.run("node1", "gnt-node", &["add", "node3"]).failed();
    assert!(
        out.stderr.contains("unknown") || out.stderr.contains("used"),
        "{}",
        out.stderr
    );
    assert!(
        c.data_file("node3", "server.pem").is_none(),
        "no secret moved"
    );
    let names: Vec<String> = node_flags(&c, "node1")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["node1", "node2"]);
    // A wrong token (right format, unknown secret) is refused too.
    c.install_token("node3", "00000000.99999999999.00");
    c.run("node1", "gnt-node", &["add", "node3"]).failed();
}

#[test]
fn master_failover_and_back() {
    let c = TestCluster::new(3);
    c.init_multi(&[]).ok();
    c.add_node("node2", &[]).ok();
    c.add_node("node3", &[]).ok();
    c.run("node1", "gnt-cluster", &["master-ping"]).ok();

    // Only a candidate with the newest config may take over; node2 is one.
    c.run("node2", "gnt-cluster", &["master-failover"]).ok();
    c.wait_for("masterd on node2", Duration::from_secs(15), || {
        c.daemon_pid("node2", "ganeti-masterd").is_some()
    });
    c.wait_for("masterd gone on node1", Duration::from_secs(15), || {
        c.daemon_pid("node1", "ganeti-masterd").is_none()
    });
    for n in c.nodes() {
        assert_eq!(
            c.data_file(n, "ssconf_master_node").unwrap().trim(),
            "node2",
            "{n}"
        );
    }
    assert_eq!(
        c.run("node3", "gnt-cluster", &["getmaster"]).ok().stdout,
        "node2\n"
    );
    assert!(
        c.master_ip_log("node1").contains("stop "),
        "{}",
        c.master_ip_log("node1")
    );
    assert!(
        c.master_ip_log("node2").contains("start "),
        "{}",
        c.master_ip_log("node2")
    );
    c.run("node2", "gnt-cluster", &["master-ping"]).ok();
    c.run("node1", "gnt-cluster", &["master-ping"]).failed();
    c.run("node2", "gnt-cluster", &["verify"]).ok();

    // The old master's masterd refuses to start: the majority says node2.
    let out = c.run("node1", "ganeti-masterd", &["-f", "--no-mlock"]);
    assert_ne!(out.code, 0, "{out:?}");

    // And back.
    c.run("node1", "gnt-cluster", &["master-failover"]).ok();
    c.wait_for("masterd on node1", Duration::from_secs(15), || {
        c.daemon_pid("node1", "ganeti-masterd").is_some()
    });
    assert_eq!(
        c.run("node3", "gnt-cluster", &["getmaster"]).ok().stdout,
        "node1\n"
    );
    // A non-candidate cannot take over.
    c.run(
        "node1",
        "gnt-node",
        &["modify", "--master-candidate=no", "--auto-promote", "node3"],
    )
    .ok();
    let out = c.run("node3", "gnt-cluster", &["master-failover"]).failed();
    assert!(out.stderr.contains("candidate"), "{}", out.stderr);
}

#[test]
fn node_killed_mid_operation() {
    let c = TestCluster::new(3);
    c.init_multi(&[]).ok();
    c.add_node("node2", &[]).ok();

    // noded of the joining node dies after it got its token: the add fails
    // cleanly, nothing is in the config, the token is not spent.
    c.start_noded("node3");
    c.give_token("node1", "node3", "600");
    c.kill_daemon("node3", "ganeti-noded");
    let before = serial(&c, "node1");
    let out = c.run("node1", "gnt-node", &["add", "node3"]).failed();
    assert!(out.stderr.contains("node3"), "{}", out.stderr);
    assert_eq!(serial(&c, "node1"), before, "config untouched");
    c.start_noded("node3");
    c.run("node1", "gnt-node", &["add", "node3"]).ok();

    // A node dies: operations that need it fail with a clear error and
    // leave the config consistent; once it is back they succeed.
    c.kill_daemon("node2", "ganeti-noded");
    let before = serial(&c, "node1");
    let out = c
        .run("node1", "gnt-node", &["powercycle", "--yes", "node2"])
        .failed();
    assert!(out.stderr.contains("node2"), "{}", out.stderr);
    assert_eq!(serial(&c, "node1"), before);
    let out = c.run("node1", "gnt-cluster", &["verify"]).failed();
    assert!(out.stdout.contains("node2"), "{}", out.stdout);
    // Config changes still commit; the dead node only misses the push.
    let out = c
        .run(
            "node1",
            "gnt-cluster",
            &["modify", "--candidate-pool-size", "9"],
        )
        .ok();
    assert!(
        out.stdout.contains("node2") || out.stderr.contains("node2"),
        "the missed push is reported: {out:?}"
    );
    assert_eq!(serial(&c, "node3"), serial(&c, "node1"));
    c.start_noded("node2");
    c.run("node1", "gnt-cluster", &["redist-conf"]).ok();
    c.run("node1", "gnt-node", &["powercycle", "--yes", "node2"])
        .ok();
    c.run("node1", "gnt-cluster", &["verify"]).ok();
}

#[test]
fn rpc_refuses_callers_without_the_cluster_certificate() {
    use ganeti::rpc::{client::RpcClient, proto, NodeRpc, RpcError, Target};
    let c = TestCluster::new(2);
    c.init_multi(&[]).ok();
    c.add_node("node2", &[]).ok();
    let target = Target::new("node2", c.address("node2"));
    let port = ganeti::constants::DEFAULT_NODED_PORT;

    // The cluster certificate works.
    let good = RpcClient::new(&c.path("node1", "/var/lib/ganeti/server.pem"), port).unwrap();
    let v = good
        .call_one(
            proto::VERSION,
            &target,
            &serde_json::json!({}),
            Duration::from_secs(5),
        )
        .unwrap();
    assert_eq!(v["name"], "node2");

    // Another certificate does not.
    let other = c.base.join("other.pem");
    ganeti::crypto::generate_cert(&other, "intruder").unwrap();
    let bad = RpcClient::new(&other, port).unwrap();
    let err = bad
        .call_one(
            proto::VERSION,
            &target,
            &serde_json::json!({}),
            Duration::from_secs(5),
        )
        .unwrap_err();
    assert!(matches!(err, RpcError::Tls { .. }), "{err}");

    // No certificate at all: curl gets no answer.
    let url = format!("https://{}:{port}/version", c.address("node2"));
    if let Ok(out) = std::process::Command::new("curl")
        .args(["-sk", "-X", "POST", "-d", "{}", "--max-time", "5", &url])
        .output()
    {
        assert!(
            !out.status.success(),
            "curl without a client certificate was served"
        );
        assert!(out.stdout.is_empty());
    } else {
        eprintln!("curl not installed; skipping the no-certificate probe");
    }
    let log = std::fs::read_to_string(c.path("node2", "/var/log/ganeti/node-daemon.log"))
        .unwrap_or_default();
    assert!(
        log.to_lowercase().contains("certificate"),
        "refusals are logged: {log}"
    );
}

#[test]
fn noded_keeps_serving_when_its_log_cannot_be_written() {
    use ganeti::rpc::{client::RpcClient, proto, NodeRpc, Target};
    let c = TestCluster::new(2);
    c.init_multi(&[]).ok();
    // node2's log file is a full disk.
    let logdir = c.path("node2", "/var/log/ganeti");
    std::fs::create_dir_all(&logdir).unwrap();
    std::os::unix::fs::symlink("/dev/full", logdir.join("node-daemon.log")).unwrap();
    let noded = std::process::Command::new(c.base.join("bin/ganeti-noded"))
        .args(["-f", "--no-mlock"])
        .env("GANETI_ROOTDIR", c.root("node2"))
        .env("GANETI_HOSTNAME", "node2")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = RpcClient::new(
        &c.path("node1", "/var/lib/ganeti/server.pem"),
        ganeti::constants::DEFAULT_NODED_PORT,
    )
    .unwrap();
    let target = Target::new("node2", c.address("node2"));
    let mut answer = None;
    c.wait_for("noded answering", Duration::from_secs(10), || {
        answer = client
            .join_call(
                proto::VERSION,
                &target,
                &serde_json::json!({}),
                Duration::from_secs(2),
            )
            .ok();
        answer.is_some()
    });
    let (version, _) = answer.unwrap();
    assert_eq!(version["configured"], false, "{version}");
    // A second request after the log failed: still served.
    client
        .join_call(
            proto::VERSION,
            &target,
            &serde_json::json!({}),
            Duration::from_secs(2),
        )
        .unwrap();
    let _ = std::process::Command::new("kill")
        .arg(noded.id().to_string())
        .status();
    let out = noded.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ganeti-noded") && stderr.to_lowercase().contains("join"),
        "log lines went to stderr: {stderr}"
    );
}

#[test]
fn two_node_failover_needs_no_voting_when_the_master_is_dead() {
    let c = TestCluster::new(2);
    c.init_multi(&[]).ok();
    c.add_node("node2", &[]).ok();
    // The master host dies.
    c.kill_daemon("node1", "ganeti-masterd");
    c.kill_daemon("node1", "ganeti-noded");
    // One of two nodes is no majority: voting refuses.
    let out = c.run("node2", "gnt-cluster", &["master-failover"]).failed();
    assert!(out.stderr.contains("did not respond"), "{}", out.stderr);
    assert_eq!(
        c.data_file("node2", "ssconf_master_node").unwrap().trim(),
        "node1"
    );
    // --no-voting needs the confirmation, then takes over.
    c.run("node2", "gnt-cluster", &["master-failover", "--no-voting"])
        .failed();
    c.run(
        "node2",
        "gnt-cluster",
        &["master-failover", "--no-voting", "--yes-do-it"],
    )
    .ok();
    c.wait_for("masterd on node2", Duration::from_secs(15), || {
        c.daemon_pid("node2", "ganeti-masterd").is_some()
    });
    assert_eq!(
        c.run("node2", "gnt-cluster", &["getmaster"]).ok().stdout,
        "node2\n"
    );
    c.run("node2", "gnt-node", &["list"]).ok();
}
