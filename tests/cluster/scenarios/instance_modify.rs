//! `gnt-instance modify` with NIC and disk changes, and `recreate-disks`,
//! against real node daemons: the disk files appear and disappear on the
//! node, the listing counts NICs and disks, and a lost disk file comes
//! back.

use crate::harness::TestCluster;
use std::path::PathBuf;

fn disk_files(c: &TestCluster, inst: &str) -> Vec<PathBuf> {
    let dir = c.path("node1", &format!("/srv/ganeti/file-storage/{inst}"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

fn counts(c: &TestCluster) -> String {
    c.run(
        "node1",
        "gnt-instance",
        &[
            "list",
            "--no-headers",
            "--separator=|",
            "-o",
            "name,nic.count,disk.count",
        ],
    )
    .ok()
    .stdout
}

#[test]
fn nics_and_file_disks_are_added_removed_and_recreated() {
    let c = TestCluster::new(1);
    c.init_multi(&[]).ok();
    c.install_os("node1", "image", &TestCluster::image_os());
    c.add_instance(
        &[
            "-t",
            "file",
            "--disk",
            "0:size=16M",
            "-o",
            "image+default",
            "-O",
            "size=8",
            "-B",
            "maxmem=64M,minmem=64M,vcpus=1",
            "-n",
            "node1",
            "--no-start",
        ],
        "m1",
    )
    .ok();
    assert_eq!(counts(&c), "m1|1|1\n");
    let first = disk_files(&c, "m1");
    assert_eq!(first.len(), 1, "{first:?}");

    // Add a NIC and a file disk to the stopped instance.
    let out = c
        .run(
            "node1",
            "gnt-instance",
            &[
                "modify",
                "--net",
                "add:name=eth1",
                "--disk",
                "add:size=8M,name=scratch",
                "m1",
            ],
        )
        .ok();
    assert!(
        out.stdout.contains("Modified instance m1"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(" - disk/1 -> add:size=8,mode=rw"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(" - nic.1 -> add:mac="),
        "{}",
        out.stdout
    );
    let files = disk_files(&c, "m1");
    assert_eq!(files.len(), 2, "{files:?}");
    let new = files.iter().find(|f| !first.contains(f)).unwrap().clone();
    assert_eq!(std::fs::metadata(&new).unwrap().len(), 8 << 20);

    // Started, it has both.
    c.run("node1", "gnt-instance", &["startup", "m1"]).ok();
    assert_eq!(counts(&c), "m1|2|2\n");
    // Hotplug is refused; a running instance keeps its disks.
    let out = c
        .run(
            "node1",
            "gnt-instance",
            &["modify", "--hotplug", "--net", "add", "m1"],
        )
        .failed();
    assert!(
        out.stderr.contains("hotplug is not supported by ganeti-rs"),
        "{}",
        out.stderr
    );
    let out = c
        .run(
            "node1",
            "gnt-instance",
            &["modify", "--disk", "1:remove", "m1"],
        )
        .failed();
    assert!(
        out.stderr
            .contains("can't remove volume from a running instance"),
        "{}",
        out.stderr
    );

    // Stopped again: remove both, by index and by name.
    c.run("node1", "gnt-instance", &["shutdown", "m1"]).ok();
    c.run(
        "node1",
        "gnt-instance",
        &[
            "modify",
            "--net",
            "1:remove",
            "--disk",
            "scratch:remove",
            "m1",
        ],
    )
    .ok();
    assert_eq!(counts(&c), "m1|1|1\n");
    assert!(!new.exists(), "the removed disk's file is gone");
    assert_eq!(disk_files(&c, "m1"), first);

    // The disk file is lost: recreate-disks makes it again, empty.
    std::fs::remove_file(&first[0]).unwrap();
    c.run("node1", "gnt-instance", &["recreate-disks", "m1"])
        .ok();
    assert_eq!(std::fs::metadata(&first[0]).unwrap().len(), 16 << 20);
    // And with a new size for disk 0.
    std::fs::remove_file(&first[0]).unwrap();
    c.run(
        "node1",
        "gnt-instance",
        &["recreate-disks", "--disk", "0:size=20M", "m1"],
    )
    .ok();
    assert_eq!(std::fs::metadata(&first[0]).unwrap().len(), 20 << 20);
    c.run("node1", "gnt-instance", &["startup", "m1"]).ok();
}

/// A copy of the image OS that also declares `label`.
fn image_with_label(c: &TestCluster) -> PathBuf {
    let dir = c.base.join("os-imgx");
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(TestCluster::image_os()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    let mut list = std::fs::read_to_string(dir.join("parameters.list")).unwrap();
    list.push_str("label A label the new OS does not know\n");
    std::fs::write(dir.join("parameters.list"), list).unwrap();
    dir
}

#[test]
fn reinstall_keeps_only_the_os_parameters_the_new_os_knows() {
    let c = TestCluster::new(1);
    c.init_multi(&[]).ok();
    c.install_os("node1", "image", &TestCluster::image_os());
    let imgx = image_with_label(&c);
    c.install_os("node1", "imgx", &imgx);
    c.add_instance(
        &[
            "-t",
            "file",
            "--disk",
            "0:size=16M",
            "-o",
            "imgx+default",
            "-O",
            "size=8,label=old",
            "-n",
            "node1",
            "--no-start",
        ],
        "k1",
    )
    .ok();
    let osparams = |c: &TestCluster| {
        c.run(
            "node1",
            "gnt-instance",
            &["list", "--no-headers", "-o", "os,custom_osparams", "k1"],
        )
        .ok()
        .stdout
    };
    assert!(osparams(&c).contains("label"), "{}", osparams(&c));
    // Without the option the old parameter goes along and the new OS
    // refuses it.
    let out = c
        .run(
            "node1",
            "gnt-instance",
            &["reinstall", "-f", "-o", "image+default", "k1"],
        )
        .failed();
    assert!(out.stderr.contains("label"), "{}", out.stderr);
    // With it, only what image knows (size) stays.
    c.run(
        "node1",
        "gnt-instance",
        &[
            "reinstall",
            "-f",
            "-o",
            "image+default",
            "--keep-known-os-parameters",
            "k1",
        ],
    )
    .ok();
    let now = osparams(&c);
    assert!(now.starts_with("image+default"), "{now}");
    assert!(now.contains("size") && !now.contains("label"), "{now}");
}
