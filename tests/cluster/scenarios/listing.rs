//! `gnt-node`/`gnt-group`/`gnt-instance` `list` and `list-fields` against
//! masterd (Query2 over LUXI).

use crate::harness::TestCluster;
use std::time::Duration;

#[test]
fn list_commands_follow_ganeti() {
    let c = TestCluster::new(1);
    c.init(&[]).ok();
    c.wait_for("masterd", Duration::from_secs(10), || {
        c.daemon_pid("node1", "ganeti-masterd").is_some()
    });

    let out = c
        .run(
            "node1",
            "gnt-node",
            &[
                "list",
                "-o",
                "name,role,master_candidate",
                "--separator",
                "|",
            ],
        )
        .ok()
        .stdout;
    assert_eq!(out, "Node|Role|MasterC\nnode1|M|Y\n");
    let out = c
        .run("node1", "gnt-node", &["list", "--no-headers", "-o", "name"])
        .ok()
        .stdout;
    assert_eq!(out, "node1\n");
    let out = c
        .run("node1", "gnt-group", &["list", "-o", "name,node_cnt"])
        .ok()
        .stdout;
    assert!(out.contains("default") && out.contains('1'), "{out}");
    let out = c.run("node1", "gnt-instance", &["list"]).ok().stdout;
    assert!(out.starts_with("Instance"), "{out}");
    // A filter that matches nothing prints only the header.
    let out = c
        .run(
            "node1",
            "gnt-node",
            &["list", "-o", "name", "name == \"other\""],
        )
        .ok()
        .stdout;
    assert_eq!(out, "Node\n");

    let fields = c
        .run("node1", "gnt-node", &["list-fields", "name", "pinst_cnt"])
        .ok()
        .stdout;
    assert!(
        fields.lines().next().unwrap().starts_with("Name"),
        "{fields}"
    );
    assert_eq!(fields.lines().count(), 3, "{fields}");

    // Unknown fields: Ganeti's exit code 14 and a warning.
    let r = c.run("node1", "gnt-node", &["list", "-o", "name,bogus"]);
    assert_eq!(r.code, 14);
    assert!(r.stderr.contains("unknown fields bogus"), "{}", r.stderr);
    // A malformed filter is an error naming the problem, not a crash.
    let r = c
        .run("node1", "gnt-node", &["list", "-F", "name == "])
        .failed();
    assert!(r.stderr.contains("Error"), "{}", r.stderr);
    // Commands not built yet say so.
    let r = c.run("node1", "gnt-node", &["add", "node2"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not implemented yet"), "{}", r.stderr);
}
