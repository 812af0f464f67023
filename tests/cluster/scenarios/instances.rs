//! Instances on the fake hypervisor, end to end: `gnt-instance add` with
//! the packaged noop OS and with our image-writing OS on file disks, the
//! life cycle, `info`, and bad input that must leave nothing behind.

use crate::harness::TestCluster;
use std::time::Duration;

fn fake_state(c: &TestCluster, node: &str, inst: &str) -> Option<String> {
    std::fs::read_to_string(c.path(node, &format!("/var/run/ganeti/fake-hypervisor/{inst}"))).ok()
}

fn instance_names(c: &TestCluster) -> Vec<String> {
    c.run(
        "node1",
        "gnt-instance",
        &["list", "--no-headers", "-o", "name"],
    )
    .ok()
    .stdout
    .lines()
    .map(str::to_string)
    .collect()
}

#[test]
fn diskless_instance_life_cycle_on_the_fake_hypervisor() {
    let c = TestCluster::two_nodes_with_os();
    let os = if TestCluster::noop_os().is_some() {
        "noop"
    } else {
        eprintln!("ganeti-os-noop not installed; using the test image OS");
        "image+default"
    };
    // image needs a disk; noop does not.
    let template: &[&str] = if os == "noop" {
        &["-t", "diskless"]
    } else {
        &["-t", "file", "--disk", "0:size=16M"]
    };
    let mut args = vec!["add"];
    args.extend_from_slice(template);
    args.extend_from_slice(&[
        "-o",
        os,
        "-H",
        "fake",
        "-B",
        "maxmem=128M,minmem=128M,vcpus=1",
        "--no-name-check",
        "--no-ip-check",
        "-n",
        "node2",
        "web1",
    ]);
    c.run("node1", "gnt-instance", &args).ok();
    assert_eq!(instance_names(&c), ["web1"]);
    assert!(
        fake_state(&c, "node2", "web1").is_some(),
        "running on node2"
    );
    let status = |c: &TestCluster| {
        c.run(
            "node1",
            "gnt-instance",
            &[
                "list",
                "--no-headers",
                "--separator=|",
                "-o",
                "name,status,oper_state,oper_ram",
            ],
        )
        .ok()
        .stdout
    };
    assert_eq!(status(&c), "web1|running|Y|128\n");
    let nodes = c
        .run(
            "node1",
            "gnt-node",
            &[
                "list",
                "--no-headers",
                "--separator=|",
                "-o",
                "name,mtotal,mfree",
            ],
        )
        .ok()
        .stdout;
    for line in nodes.lines() {
        let f: Vec<&str> = line.split('|').collect();
        let total: f64 = f[1]
            .trim_end_matches(['M', 'G', 'T'])
            .parse()
            .unwrap_or_else(|_| panic!("{nodes}"));
        assert!(total > 0.0, "{nodes}");
    }

    let info = c
        .run("node1", "gnt-instance", &["info", "web1"])
        .ok()
        .stdout;
    assert!(info.contains("Instance name: web1"), "{info}");
    assert!(info.contains("primary: node2"), "{info}");
    assert!(
        info.contains("actual state is up") || info.contains("running"),
        "{info}"
    );

    c.run("node1", "gnt-instance", &["shutdown", "web1"]).ok();
    assert!(fake_state(&c, "node2", "web1").is_none(), "stopped");
    assert_eq!(status(&c), "web1|ADMIN_down|N|-\n");
    // noded of the primary down: Ganeti's ERROR_nodedown, no data.
    c.kill_daemon("node2", "ganeti-noded");
    assert_eq!(status(&c), "web1|ERROR_nodedown|?|?\n");
    c.start_noded("node2");
    c.run("node1", "gnt-instance", &["startup", "web1"]).ok();
    assert!(fake_state(&c, "node2", "web1").is_some(), "started again");
    c.run("node1", "gnt-instance", &["reboot", "web1"]).ok();
    assert!(
        fake_state(&c, "node2", "web1").is_some(),
        "running after reboot"
    );
    let console = c.run("node1", "gnt-instance", &["console", "--show-cmd", "web1"]);
    assert!(
        console.stdout.contains("console") || console.stderr.contains("console"),
        "{console:?}"
    );

    c.run("node1", "gnt-instance", &["remove", "-f", "web1"])
        .ok();
    assert!(instance_names(&c).is_empty());
    assert!(fake_state(&c, "node2", "web1").is_none());
}

#[test]
fn file_disk_gets_a_real_file_system_from_the_os_create_script() {
    let c = TestCluster::two_nodes_with_os();
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
            "-n",
            "node1",
            "--no-start",
        ],
        "db1",
    )
    .ok();
    let dir = c.path("node1", "/srv/ganeti/file-storage/db1");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let data = std::fs::read(&files[0]).unwrap();
    assert_eq!(data.len(), 16 << 20, "the disk has its size");
    // ext4's magic 0xEF53 at offset 1024 + 56, or the fallback header.
    let ext4 = data.get(1080..1082) == Some(&[0x53, 0xef][..]);
    assert!(
        ext4 || data.starts_with(b"GANETI-RS-TEST-IMAGE"),
        "no file system written"
    );
    let logs = c.path("node1", "/var/log/ganeti/os");
    assert!(
        std::fs::read_dir(&logs).map(|d| d.count()).unwrap_or(0) > 0,
        "OS log kept"
    );
    // The instance is down (--no-start); grow its disk, then remove it:
    // the disk file goes with it.
    c.run("node1", "gnt-instance", &["grow-disk", "db1", "0", "8M"])
        .ok();
    assert_eq!(std::fs::metadata(&files[0]).unwrap().len(), 24 << 20);
    c.run("node1", "gnt-instance", &["remove", "-f", "db1"])
        .ok();
    assert!(!files[0].exists());
}

#[test]
fn bad_input_is_refused_and_leaves_nothing_behind() {
    let c = TestCluster::two_nodes_with_os();
    let add = |extra: &[&str]| {
        let mut args = vec![
            "add",
            "--no-name-check",
            "--no-ip-check",
            "-n",
            "node1",
            "-H",
            "fake",
        ];
        args.extend_from_slice(extra);
        args.push("bad1");
        c.run("node1", "gnt-instance", &args)
    };
    let out = add(&["-t", "diskless", "-o", "nosuchos"]).failed();
    assert!(out.stderr.contains("nosuchos"), "{}", out.stderr);
    let out = add(&[
        "-t",
        "file",
        "--disk",
        "0:size=16M",
        "-o",
        "image+nosuchvariant",
    ])
    .failed();
    assert!(out.stderr.contains("nosuchvariant"), "{}", out.stderr);
    let out = add(&[
        "-t",
        "file",
        "--disk",
        "0:size=16M",
        "-o",
        "image+default",
        "-O",
        "colour=red",
    ])
    .failed();
    assert!(out.stderr.contains("colour"), "{}", out.stderr);
    let out = add(&["-t", "plain", "--disk", "0:size=16M", "-o", "image+default"]).failed();
    assert!(out.stderr.contains("plain"), "{}", out.stderr);
    let out = add(&["-t", "file", "--disk", "0:size=12Q", "-o", "image+default"]).failed();
    assert!(
        out.stderr.contains("12Q") || out.stderr.contains("size"),
        "{}",
        out.stderr
    );
    // More memory than the node has: refused with the numbers.
    let out = add(&[
        "-t",
        "diskless",
        "-o",
        "image+default",
        "-B",
        "maxmem=64T,minmem=64T",
    ])
    .failed();
    assert!(out.stderr.contains("MiB"), "{}", out.stderr);
    // A create script that fails: its log is in the error, and the disk is gone.
    let out = add(&[
        "-t",
        "file",
        "--disk",
        "0:size=16M",
        "-o",
        "image+default",
        "-O",
        "size=99999",
    ])
    .failed();
    assert!(out.stderr.contains("size"), "{}", out.stderr);
    assert!(instance_names(&c).is_empty(), "no half-created instance");
    let dir = c.path("node1", "/srv/ganeti/file-storage/bad1");
    let left = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "created disks cleaned up");

    // The primary's noded dies: the create fails cleanly; rerun succeeds.
    c.kill_daemon("node2", "ganeti-noded");
    let out = c
        .run(
            "node1",
            "gnt-instance",
            &[
                "add",
                "-t",
                "file",
                "--disk",
                "0:size=16M",
                "-o",
                "image+default",
                "-H",
                "fake",
                "--no-name-check",
                "--no-ip-check",
                "-n",
                "node2",
                "late1",
            ],
        )
        .failed();
    assert!(out.stderr.contains("node2"), "{}", out.stderr);
    assert!(instance_names(&c).is_empty());
    c.start_noded("node2");
    c.wait_for("node2 back", Duration::from_secs(5), || true);
    c.add_instance(
        &[
            "-t",
            "file",
            "--disk",
            "0:size=16M",
            "-o",
            "image+default",
            "-n",
            "node2",
        ],
        "late1",
    )
    .ok();
    assert_eq!(instance_names(&c), ["late1"]);
}

#[test]
fn kvm_instance_under_tcg_starts_and_live_migrates() {
    if std::process::Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("qemu-system-x86_64 not installed; skipping the kvm scenario");
        return;
    }
    let Some(_) = TestCluster::noop_os() else {
        eprintln!("ganeti-os-noop not installed; skipping the kvm scenario");
        return;
    };
    let c = TestCluster::two_nodes_with_os();
    // A BIOS-only VM: no kernel, no disk, no NIC; TCG (no /dev/kvm needed).
    c.run(
        "node1",
        "gnt-instance",
        &[
            "add",
            "-t",
            "diskless",
            "-o",
            "noop",
            "-H",
            "kvm:kernel_path=,kvm_flag=disabled",
            "--no-nics",
            "-B",
            "maxmem=128M",
            "--no-name-check",
            "--no-ip-check",
            "-n",
            "node1",
            "vm1",
        ],
    )
    .ok();
    let list = |c: &TestCluster| {
        c.run(
            "node1",
            "gnt-instance",
            &[
                "list",
                "--no-headers",
                "--separator=|",
                "-o",
                "name,pnode,status",
            ],
        )
        .ok()
        .stdout
    };
    assert_eq!(list(&c), "vm1|node1|running\n");
    let qmp = |node: &str| c.path(node, "/var/run/ganeti/kvm-hypervisor/ctrl/vm1.qmp");
    assert!(qmp("node1").exists(), "QMP socket on node1");
    c.run(
        "node1",
        "gnt-instance",
        &["migrate", "-f", "-n", "node2", "vm1"],
    )
    .ok();
    assert_eq!(list(&c), "vm1|node2|running\n");
    c.run(
        "node1",
        "gnt-instance",
        &["remove", "-f", "--shutdown-timeout", "1", "vm1"],
    )
    .ok();
    assert!(instance_names(&c).is_empty());
    let pid_file = c.path("node2", "/var/run/ganeti/kvm-hypervisor/pid/vm1");
    if let Ok(pid) = std::fs::read_to_string(&pid_file) {
        let alive = std::path::Path::new(&format!("/proc/{}", pid.trim())).exists();
        assert!(!alive, "QEMU stopped on remove");
    }
}
