//! `gnt-cluster init`, `info`, `getmaster`, `version`, `destroy` on one node.

use crate::harness::{mode, TestCluster};
use std::time::Duration;

#[test]
fn init_info_getmaster_version_destroy() {
    let c = TestCluster::new(1);
    c.init(&[
        "-B",
        "memory=256M,vcpus=2",
        "-H",
        "kvm:kernel_path=/boot/vmlinuz",
        "--uid-pool",
        "1000-1009",
    ])
    .ok();

    let config = std::fs::read_to_string(c.path("node1", "/var/lib/ganeti/config.data")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(v["version"], 3000000);
    assert_eq!(v["cluster"]["cluster_name"], "cluster.test");
    assert_eq!(v["cluster"]["beparams"]["default"]["vcpus"], 2);
    assert_eq!(v["cluster"]["beparams"]["default"]["maxmem"], 256);
    assert_eq!(
        v["cluster"]["hvparams"]["kvm"]["kernel_path"],
        "/boot/vmlinuz"
    );
    let ssconf = |k: &str| {
        std::fs::read_to_string(c.path("node1", &format!("/var/lib/ganeti/ssconf_{k}"))).unwrap()
    };
    assert_eq!(ssconf("master_node").trim(), "node1");
    assert_eq!(ssconf("cluster_name").trim(), "cluster.test");
    for secret in [
        "hmac.key",
        "server.pem",
        "rapi.pem",
        "cluster-domain-secret",
    ] {
        assert_eq!(
            mode(&c.path("node1", &format!("/var/lib/ganeti/{secret}"))),
            0o600,
            "{secret}"
        );
    }

    // masterd was started and answers LUXI.
    c.wait_for("masterd", Duration::from_secs(10), || {
        c.daemon_pid("node1", "ganeti-masterd").is_some()
    });
    let info = c.run("node1", "gnt-cluster", &["info"]).ok().stdout;
    assert!(info.contains("Cluster name: cluster.test"), "{info}");
    assert!(info.contains("Master node: node1"), "{info}");
    assert!(info.contains("Enabled hypervisors: fake, kvm"), "{info}");
    assert!(info.contains("uid pool: 1000-1009"), "{info}");
    let master = c.run("node1", "gnt-cluster", &["getmaster"]).ok().stdout;
    assert_eq!(master, "node1\n");
    let version = c.run("node1", "gnt-cluster", &["version"]).ok().stdout;
    assert!(
        version.contains("Configuration format: 3000000"),
        "{version}"
    );

    // A second init refuses and leaves the config alone.
    let again = c.init(&[]).failed();
    assert!(
        again.stderr.contains("already initialised"),
        "{}",
        again.stderr
    );
    assert_eq!(
        std::fs::read_to_string(c.path("node1", "/var/lib/ganeti/config.data")).unwrap(),
        config
    );

    // destroy needs --yes-do-it, then stops masterd and removes the cluster files.
    c.run("node1", "gnt-cluster", &["destroy"]).failed();
    c.run("node1", "gnt-cluster", &["destroy", "--yes-do-it"])
        .ok();
    assert!(!c.path("node1", "/var/lib/ganeti/config.data").exists());
    assert!(!c
        .path("node1", "/var/lib/ganeti/ssconf_master_node")
        .exists());
    assert!(c.daemon_pid("node1", "ganeti-masterd").is_none());
    c.run("node1", "gnt-cluster", &["info"]).failed();
}

#[test]
fn bad_init_input_is_named_and_writes_nothing() {
    let c = TestCluster::new(1);
    let cases: &[(&[&str], &str)] = &[
        (&["-B", "memory=lots"], "memory"),
        (&["-H", "kvm:no_such_param=1"], "no_such_param"),
        (&["--mac-prefix", "zz:00:00"], "zz:00:00"),
        (&["--enabled-hypervisors", "vmware"], "vmware"),
        (
            &["--file-storage-dir", "/etc/ganeti-disks"],
            "/etc/ganeti-disks",
        ),
        (&["--uid-pool", "20-10"], "20-10"),
        (&["--primary-ip-version", "5"], "5"),
    ];
    for (args, needle) in cases {
        let r = c.init(args).failed();
        assert!(
            r.stderr.contains(needle),
            "{args:?}: error does not name {needle:?}:\n{}",
            r.stderr
        );
        assert!(
            !c.path("node1", "/var/lib/ganeti/config.data").exists(),
            "{args:?} left a config behind"
        );
        assert!(
            !c.path("node1", "/var/lib/ganeti/hmac.key").exists(),
            "{args:?} left a key behind"
        );
    }
}
