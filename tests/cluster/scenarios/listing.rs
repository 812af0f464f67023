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
    // Tags of named objects.
    c.run(
        "node1",
        "gnt-node",
        &["add-tags", "node1", "rack:a1", "ssd"],
    )
    .ok();
    assert_eq!(
        c.run("node1", "gnt-node", &["list-tags", "node1"])
            .ok()
            .stdout,
        "rack:a1\nssd\n"
    );
    c.run("node1", "gnt-node", &["remove-tags", "node1", "ssd"])
        .ok();
    assert_eq!(
        c.run("node1", "gnt-node", &["list-tags", "node1"])
            .ok()
            .stdout,
        "rack:a1\n"
    );
    c.run("node1", "gnt-group", &["add-tags", "default", "dc1"])
        .ok();
    assert_eq!(
        c.run("node1", "gnt-group", &["list-tags", "default"])
            .ok()
            .stdout,
        "dc1\n"
    );
    let r = c
        .run("node1", "gnt-node", &["add-tags", "ghost", "x"])
        .failed();
    assert!(r.stderr.contains("ghost"), "{}", r.stderr);
    let out = c
        .run(
            "node1",
            "gnt-node",
            &["list", "--no-headers", "-o", "name,tags"],
        )
        .ok()
        .stdout;
    assert_eq!(out, "node1 rack:a1\n");

    // Commands not built yet say so.
    let r = c.run("node1", "gnt-node", &["evacuate", "node2"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not implemented yet"), "{}", r.stderr);
}
