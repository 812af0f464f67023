//! The job queue end to end: gnt-debug, gnt-job, gnt-cluster queue/watcher/
//! modify/tags, all through masterd's LUXI socket and its job workers.

use crate::harness::TestCluster;
use std::time::Duration;

fn started(c: &TestCluster) {
    c.init(&[]).ok();
    c.wait_for("masterd", Duration::from_secs(10), || {
        c.daemon_pid("node1", "ganeti-masterd").is_some()
    });
}

#[test]
fn jobs_run_and_are_listed() {
    let c = TestCluster::new(1);
    started(&c);
    c.run("node1", "gnt-debug", &["delay", "0.01"]).ok();
    let out = c
        .run("node1", "gnt-debug", &["delay", "-r", "2", "0.01"])
        .ok()
        .stdout;
    assert!(
        out.contains("Test delay iteration 0/1") && out.contains("Test delay iteration 1/1"),
        "{out}"
    );
    let r = c.run("node1", "gnt-debug", &["delay", "0"]).failed();
    assert!(r.stderr.contains("greater than zero"), "{}", r.stderr);

    // --submit: "JobID: N" on stderr; --print-jobid: the id on stdout.
    let r = c
        .run(
            "node1",
            "gnt-debug",
            &["delay", "--submit", "--print-jobid", "0.01"],
        )
        .ok();
    let id = r.stdout.trim().to_string();
    assert!(r.stderr.contains(&format!("JobID: {id}")), "{}", r.stderr);
    c.run("node1", "gnt-job", &["wait", &id]).ok();
    let list = c
        .run(
            "node1",
            "gnt-job",
            &["list", "--no-headers", "-o", "id,status,summary", &id],
        )
        .ok()
        .stdout;
    assert_eq!(
        list.split_whitespace().collect::<Vec<_>>(),
        vec![id.as_str(), "success", "TEST_DELAY(0.01)"]
    );
    let info = c.run("node1", "gnt-job", &["info", &id]).ok().stdout;
    assert!(
        info.contains(&format!("Job ID: {id}")) && info.contains("Opcode: OP_TEST_DELAY"),
        "{info}"
    );
    let watch = c.run("node1", "gnt-job", &["watch", &id]).ok().stdout;
    assert!(
        watch.starts_with(&format!("Output from job {id} follows")),
        "{watch}"
    );
    c.run("node1", "gnt-job", &["archive", &id]).ok();
    let r = c.run("node1", "gnt-job", &["cancel", &id]).failed();
    assert!(!r.stdout.is_empty(), "cancel of a finished job says why");

    // A job file with two opcodes.
    let file = c.base.join("ops.json");
    std::fs::write(
        &file,
        r#"[{"OP_ID": "OP_TEST_DELAY", "duration": 0.01}, {"OP_ID": "OP_CLUSTER_QUERY"}]"#,
    )
    .unwrap();
    let out = c
        .run(
            "node1",
            "gnt-debug",
            &["submit-job", file.to_str().unwrap()],
        )
        .ok()
        .stdout;
    assert!(out.starts_with("Submitted jobs "), "{out}");
    std::fs::write(
        &file,
        r#"[{"OP_ID": "OP_TEST_DELAY", "duration": 1, "frobnicate": 2}]"#,
    )
    .unwrap();
    let r = c
        .run(
            "node1",
            "gnt-debug",
            &["submit-job", file.to_str().unwrap()],
        )
        .failed();
    assert!(r.stderr.contains("frobnicate"), "{}", r.stderr);

    // Jobs survive a masterd restart, and ids keep growing.
    let before = c
        .run("node1", "gnt-job", &["list", "--no-headers", "-o", "id"])
        .ok()
        .stdout;
    c.run(
        "node1",
        "ganeti",
        &["daemon-util", "stop", "ganeti-masterd"],
    )
    .ok();
    c.run(
        "node1",
        "ganeti",
        &["daemon-util", "start", "ganeti-masterd"],
    )
    .ok();
    let after = c
        .run("node1", "gnt-job", &["list", "--no-headers", "-o", "id"])
        .ok()
        .stdout;
    assert_eq!(before, after);
    let r = c
        .run(
            "node1",
            "gnt-debug",
            &["delay", "--submit", "--print-jobid", "0.01"],
        )
        .ok();
    let last: u64 = before
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .max()
        .unwrap();
    assert!(r.stdout.trim().parse::<u64>().unwrap() > last);
}

#[test]
fn cluster_queue_watcher_modify_and_tags() {
    let c = TestCluster::new(1);
    started(&c);
    c.run("node1", "gnt-cluster", &["queue", "drain"]).ok();
    assert_eq!(
        c.run("node1", "gnt-cluster", &["queue", "info"])
            .ok()
            .stdout,
        "The drain flag is set\n"
    );
    let r = c.run("node1", "gnt-debug", &["delay", "0.01"]).failed();
    assert!(r.stderr.contains("marked for drain"), "{}", r.stderr);
    c.run("node1", "gnt-cluster", &["queue", "undrain"]).ok();
    c.run("node1", "gnt-debug", &["delay", "0.01"]).ok();

    let out = c
        .run("node1", "gnt-cluster", &["watcher", "pause", "1h"])
        .ok()
        .stdout;
    assert!(out.starts_with("The watcher is paused until"), "{out}");
    c.run("node1", "gnt-cluster", &["watcher", "continue"]).ok();
    assert_eq!(
        c.run("node1", "gnt-cluster", &["watcher", "info"])
            .ok()
            .stdout,
        "The watcher is not paused.\n"
    );

    c.run(
        "node1",
        "gnt-cluster",
        &["modify", "--uid-pool", "1000-1009", "--add-uids", "2000"],
    )
    .ok();
    let info = c.run("node1", "gnt-cluster", &["info"]).ok().stdout;
    assert!(info.contains("uid pool: 1000-1009, 2000"), "{info}");
    let r = c
        .run("node1", "gnt-cluster", &["modify", "-H", "kvm:bogus=1"])
        .failed();
    assert!(r.stderr.contains("bogus"), "{}", r.stderr);
    c.run(
        "node1",
        "gnt-cluster",
        &["modify", "-H", "kvm:migration_port=8200"],
    )
    .ok();
    let config = std::fs::read_to_string(c.path("node1", "/var/lib/ganeti/config.data")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(v["cluster"]["hvparams"]["kvm"]["migration_port"], 8200);

    c.run("node1", "gnt-cluster", &["add-tags", "env:prod", "web"])
        .ok();
    assert_eq!(
        c.run("node1", "gnt-cluster", &["list-tags"]).ok().stdout,
        "env:prod\nweb\n"
    );
    assert_eq!(
        c.run("node1", "gnt-cluster", &["search-tags", "^env"])
            .ok()
            .stdout,
        "/cluster env:prod\n"
    );
    let r = c
        .run("node1", "gnt-cluster", &["remove-tags", "web", "nope"])
        .failed();
    assert!(r.stderr.contains("'nope'"), "{}", r.stderr);
    c.run("node1", "gnt-cluster", &["remove-tags", "web"]).ok();
    assert_eq!(
        c.run("node1", "gnt-cluster", &["list-tags"]).ok().stdout,
        "env:prod\n"
    );
    let r = c
        .run("node1", "gnt-cluster", &["add-tags", "bad tag"])
        .failed();
    assert!(r.stderr.contains("bad tag"), "{}", r.stderr);
}
