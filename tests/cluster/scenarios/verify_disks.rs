//! `gnt-cluster verify-disks` and `repair-disk-sizes` against real node
//! daemons: file disks changed behind the cluster's back are found (a
//! deleted backing file, a dead node) and sizes corrected.

use crate::harness::TestCluster;
use std::path::PathBuf;

fn add_file_instance(c: &TestCluster, node: &str, name: &str, extra: &[&str]) {
    let mut args = vec![
        "add",
        "-t",
        "file",
        "--disk",
        "0:size=16M",
        "-o",
        "image+default",
        "-O",
        "size=8",
        "-H",
        "fake",
        "-B",
        "maxmem=128M,minmem=128M,vcpus=1",
        "--no-name-check",
        "--no-ip-check",
        "-n",
        node,
    ];
    args.extend_from_slice(extra);
    args.push(name);
    c.run("node1", "gnt-instance", &args).ok();
}

/// The one disk file of `name` on `node`.
fn disk_file(c: &TestCluster, node: &str, name: &str) -> PathBuf {
    let dir = c.path(node, &format!("/srv/ganeti/file-storage/{name}"));
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().unwrap()
}

#[test]
fn verify_disks_reports_a_deleted_disk_file_and_a_dead_node() {
    let c = TestCluster::two_nodes_with_os();
    add_file_instance(&c, "node2", "web1", &[]);
    // Down, disks not active: not looked at even when its file is gone.
    add_file_instance(&c, "node1", "db1", &["--no-start"]);
    std::fs::remove_file(disk_file(&c, "node1", "db1")).unwrap();

    let clean = c.run("node1", "gnt-cluster", &["verify-disks"]).ok();
    assert!(
        clean.stdout.contains("No disks need to be activated."),
        "{clean:?}"
    );

    let file = disk_file(&c, "node2", "web1");
    std::fs::remove_file(&file).unwrap();
    let bad = c.run("node1", "gnt-cluster", &["verify-disks"]).failed();
    assert!(
        bad.stdout
            .contains("Instance web1 has missing logical volumes:"),
        "{bad:?}"
    );
    let file_name = file.file_name().unwrap().to_str().unwrap();
    assert!(
        bad.stdout.lines().any(|l| l.starts_with("\tnode2 ")
            && l.contains("/srv/ganeti/file-storage/web1/")
            && l.ends_with(file_name)),
        "{bad:?}"
    );
    assert!(
        bad.stdout
            .contains("You need to replace or recreate disks for all the above instances"),
        "{bad:?}"
    );
    assert!(!bad.stdout.contains("Activating disks"), "{bad:?}");

    // node2 stops answering: its instance cannot be checked.
    c.kill_daemon("node2", "ganeti-noded");
    let dead = c
        .run("node1", "gnt-cluster", &["verify-disks", "-g", "default"])
        .failed();
    assert!(
        dead.stdout.contains("Error gathering data on node node2"),
        "{dead:?}"
    );
    assert!(
        dead.stdout
            .contains("You need to fix these nodes first before fixing instances"),
        "{dead:?}"
    );
    let nogroup = c
        .run("node1", "gnt-cluster", &["verify-disks", "-g", "nosuch"])
        .failed();
    assert!(nogroup.stderr.contains("nosuch"), "{nogroup:?}");
}

#[test]
fn repair_disk_sizes_corrects_a_disk_grown_behind_the_clusters_back() {
    let c = TestCluster::two_nodes_with_os();
    add_file_instance(&c, "node1", "db1", &["--no-start"]);
    add_file_instance(&c, "node2", "web1", &["--no-start"]);
    let sizes = |c: &TestCluster| {
        c.run(
            "node1",
            "gnt-instance",
            &[
                "list",
                "--no-headers",
                "--separator=|",
                "--units=m",
                "-o",
                "name,disk.size/0",
            ],
        )
        .ok()
        .stdout
    };
    assert_eq!(sizes(&c), "db1|16\nweb1|16\n");

    let nothing = c.run("node1", "gnt-cluster", &["repair-disk-sizes"]).ok();
    assert!(!nothing.stdout.contains("mismatched"), "{nothing:?}");

    // What `truncate -s 40M` does to the backing file.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(disk_file(&c, "node1", "db1"))
        .unwrap();
    f.set_len(40 << 20).unwrap();
    drop(f);

    // --dry-run changes nothing.
    c.run("node1", "gnt-cluster", &["repair-disk-sizes", "--dry-run"])
        .ok();
    assert_eq!(sizes(&c), "db1|16\nweb1|16\n");

    let fixed = c
        .run(
            "node1",
            "gnt-cluster",
            &["repair-disk-sizes", "db1", "web1"],
        )
        .ok();
    assert!(
        fixed.stdout.contains(
            " - INFO: Disk 0 of instance db1 has mismatched size, correcting: recorded 16, actual 40"
        ),
        "{fixed:?}"
    );
    assert!(!fixed.stdout.contains("web1"), "{fixed:?}");
    assert_eq!(sizes(&c), "db1|40\nweb1|16\n");

    let again = c.run("node1", "gnt-cluster", &["repair-disk-sizes"]).ok();
    assert!(!again.stdout.contains("mismatched"), "{again:?}");
    let ghost = c
        .run("node1", "gnt-cluster", &["repair-disk-sizes", "ghost"])
        .failed();
    assert!(ghost.stderr.contains("ghost"), "{ghost:?}");
}
