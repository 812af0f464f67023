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

/// kill -9 masterd at a seed-chosen moment while 200 jobs run; after the
/// restart every acknowledged job is there, final or resumable, none is
/// corrupt, the config still loads, and the resumed jobs finish.
#[test]
fn masterd_killed_mid_flight_loses_no_job() {
    use ganeti::luxi::client::Client;
    use ganeti::luxi::Method;
    use serde_json::json;

    for seed in [3u64, 17, 29] {
        let c = TestCluster::new(1);
        started(&c);
        let socket = c.path("node1", "/var/run/ganeti/socket/ganeti-master");
        let mut client = Client::connect(&socket).unwrap();
        let mut ids = Vec::new();
        // Kill after a seed-dependent number of acknowledged submissions.
        let kill_after = 40 + (seed * 37 % 150) as usize;
        for i in 0..200 {
            if i == kill_after {
                let pid = c.daemon_pid("node1", "ganeti-masterd").unwrap();
                std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status()
                    .unwrap();
                break;
            }
            let op = json!([[{"OP_ID": "OP_TEST_DELAY", "duration": 0.002}]]);
            match client.call(Method::SubmitJob, op) {
                Ok(id) => ids.push(id.as_u64().unwrap()),
                Err(e) => panic!("submit {i}: {e}"),
            }
        }
        c.wait_for("masterd to die", Duration::from_secs(10), || {
            c.daemon_pid("node1", "ganeti-masterd").is_none()
        });
        c.run(
            "node1",
            "ganeti",
            &["daemon-util", "start", "ganeti-masterd"],
        )
        .ok();
        let mut client = Client::connect(&socket).unwrap();
        let statuses = client
            .call(Method::QueryJobs, json!([ids, ["status"]]))
            .unwrap();
        for (id, s) in ids.iter().zip(statuses.as_array().unwrap()) {
            let status = s[0]
                .as_str()
                .unwrap_or_else(|| panic!("seed {seed}: job {id} lost"));
            assert!(
                ["queued", "waiting", "running", "success", "error"].contains(&status),
                "seed {seed}: job {id} is {status}"
            );
        }
        // Nothing was moved aside as corrupt, and the config still loads.
        let queue = c.path("node1", "/var/lib/ganeti/queue");
        let corrupt: Vec<_> = std::fs::read_dir(&queue)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".corrupt"))
            .collect();
        assert!(
            corrupt.is_empty(),
            "seed {seed}: corrupt job files {corrupt:?}"
        );
        c.run("node1", "gnt-cluster", &["info"]).ok();
        // Resumed jobs run to the end; interrupted ones ended in error.
        c.wait_for("all jobs final", Duration::from_secs(60), || {
            let s = client
                .call(Method::QueryJobs, json!([ids, ["status"]]))
                .unwrap();
            s.as_array()
                .unwrap()
                .iter()
                .all(|j| matches!(j[0].as_str(), Some("success" | "error")))
        });
    }
}

/// A job blocked on its locks is "waiting" (Ganeti's state) and shows in
/// `gnt-debug locks` as pending; it runs once the holder is done.
#[test]
fn jobs_wait_for_locks() {
    let c = TestCluster::new(1);
    started(&c);
    let holder = c
        .run(
            "node1",
            "gnt-debug",
            &["delay", "--submit", "--print-jobid", "1"],
        )
        .ok()
        .stdout
        .trim()
        .to_string();
    c.wait_for("the delay to run", Duration::from_secs(10), || {
        c.run(
            "node1",
            "gnt-job",
            &["list", "--no-headers", "-o", "status", &holder],
        )
        .stdout
        .trim()
            == "running"
    });
    let waiter = c
        .run(
            "node1",
            "gnt-cluster",
            &[
                "modify",
                "--submit",
                "--print-jobid",
                "--mac-prefix",
                "aa:00:01",
            ],
        )
        .ok()
        .stdout
        .trim()
        .to_string();
    c.wait_for("the modify to wait", Duration::from_secs(10), || {
        c.run(
            "node1",
            "gnt-job",
            &["list", "--no-headers", "-o", "status", &waiter],
        )
        .stdout
        .trim()
            == "waiting"
    });
    let locks = c
        .run(
            "node1",
            "gnt-debug",
            &["locks", "--separator", "|", "--no-headers"],
        )
        .ok()
        .stdout;
    assert!(
        locks
            .lines()
            .any(|l| l == format!("cluster/BGL|shared|job/{holder}|exclusive:job/{waiter}")),
        "{locks}"
    );
    c.run("node1", "gnt-job", &["wait", &waiter]).ok();
    let status = c
        .run(
            "node1",
            "gnt-job",
            &["list", "--no-headers", "-o", "status", &holder, &waiter],
        )
        .ok()
        .stdout;
    assert_eq!(status, "success\nsuccess\n");
}
