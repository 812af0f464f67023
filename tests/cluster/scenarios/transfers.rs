//! Moving disk data between real node daemons: `gnt-instance move` of a
//! `file` instance whose disk holds the image OS's ext4 file system; the
//! disk arrives byte for byte on the target, the source copy is gone, the
//! instance runs on the target and the file system checks clean.
//! `gnt-backup export`/`import` go through the image OS's `export` and
//! `import` scripts (its dumps are gzip streams); raw exports still import.

use crate::harness::TestCluster;
use std::path::{Path, PathBuf};

fn field(c: &TestCluster, inst: &str, f: &str) -> String {
    c.run(
        "node1",
        "gnt-instance",
        &["list", "--no-headers", "-o", f, inst],
    )
    .ok()
    .stdout
    .trim()
    .to_string()
}

/// The disk files of `inst` on `node` (`file` template: one directory per
/// instance under the file storage dir).
fn disk_files(c: &TestCluster, node: &str, inst: &str) -> Vec<PathBuf> {
    let dir = c.path(node, &format!("/srv/ganeti/file-storage/{inst}"));
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    out.sort();
    out
}

fn sha1_of(p: &Path) -> String {
    let out = std::process::Command::new("sha1sum")
        .arg(p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The gzip-compressed dump at `dump` (what the image OS's export script
/// writes), decompressed next to it as `<dump>.raw`.
fn gunzip(dump: &Path) -> PathBuf {
    let head = std::fs::read(dump).unwrap();
    assert_eq!(
        &head[..2],
        &[0x1f, 0x8b],
        "gzip magic: made by the OS export script"
    );
    let raw = dump.with_extension("raw");
    let out = std::process::Command::new("gzip")
        .args(["-d", "-c"])
        .arg(dump)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::write(&raw, &out.stdout).unwrap();
    raw
}

/// Staging directories left in the export directory of `node`.
fn stages(c: &TestCluster, node: &str) -> Vec<String> {
    std::fs::read_dir(c.path(node, "/srv/ganeti/export"))
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(".stage") || n.ends_with(".new"))
                .collect()
        })
        .unwrap_or_default()
}

/// `e2fsck -n` on an image (skipped, with a note, when the image OS wrote
/// no file system because mkfs.ext4 is absent).
fn fsck_clean(image: &Path) {
    let head = std::fs::read(image).unwrap();
    if head.starts_with(b"GANETI-RS-TEST-IMAGE") {
        eprintln!("mkfs.ext4 absent: only comparing bytes");
        return;
    }
    assert_eq!(&head[1080..1082], &[0x53, 0xEF], "ext superblock magic");
    let e2fsck = ["/usr/sbin/e2fsck", "/sbin/e2fsck"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    if let Some(e2fsck) = e2fsck {
        let out = std::process::Command::new(e2fsck)
            .args(["-n", "-f"])
            .arg(image)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "e2fsck -n: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A file instance of the image OS on node1 (8 MiB disk, 128 MiB memory).
const FILE_VM: &[&str] = &[
    "-t",
    "file",
    "--disk",
    "0:size=8M",
    "-o",
    "image+default",
    "-B",
    "maxmem=128M,minmem=128M,vcpus=1",
    "-n",
    "node1",
];

#[test]
fn file_instance_moves_with_its_file_system_intact() {
    let c = TestCluster::two_nodes_with_os();
    c.add_instance(FILE_VM, "vm1").ok();
    assert!(c.fake_runs("node1", "vm1"));
    let before = disk_files(&c, "node1", "vm1");
    assert_eq!(before.len(), 1, "{before:?}");
    // The instance runs, so the image may change under us only through
    // the fake hypervisor, which never writes to disks.
    let sum = sha1_of(&before[0]);
    fsck_clean(&before[0]);

    // Same node: refused before anything happens.
    let same = c
        .run(
            "node1",
            "gnt-instance",
            &["move", "-f", "-n", "node1", "vm1"],
        )
        .failed();
    assert!(same.stderr.contains("is already on the node"), "{same:?}");

    let out = c
        .run(
            "node1",
            "gnt-instance",
            &["move", "-f", "-n", "node2", "vm1"],
        )
        .ok();
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.contains(&format!("sha1 {sum}")), "{text}");

    assert_eq!(field(&c, "vm1", "pnode"), "node2");
    assert!(c.fake_runs("node2", "vm1") && !c.fake_runs("node1", "vm1"));
    assert!(
        disk_files(&c, "node1", "vm1").is_empty(),
        "source disk removed"
    );
    let after = disk_files(&c, "node2", "vm1");
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(
        after[0].file_name(),
        before[0].file_name(),
        "same naming on the target"
    );
    c.run("node1", "gnt-instance", &["shutdown", "vm1"]).ok();
    assert_eq!(sha1_of(&after[0]), sum);
    fsck_clean(&after[0]);

    // And back, stopped: it stays stopped.
    c.run(
        "node1",
        "gnt-instance",
        &["move", "-f", "-n", "node1", "vm1"],
    )
    .ok();
    assert_eq!(field(&c, "vm1", "pnode"), "node1");
    assert!(!c.fake_runs("node1", "vm1"));
    assert_eq!(sha1_of(&disk_files(&c, "node1", "vm1")[0]), sum);
}

#[test]
fn export_lists_and_removes_with_the_disk_intact() {
    let c = TestCluster::two_nodes_with_os();
    c.add_instance(FILE_VM, "vm2").ok();
    let disk = disk_files(&c, "node1", "vm2");
    c.run("node1", "gnt-instance", &["shutdown", "vm2"]).ok();
    let sum = sha1_of(&disk[0]);
    c.run("node1", "gnt-instance", &["startup", "vm2"]).ok();

    let remote = c
        .run(
            "node1",
            "gnt-backup",
            &["export", "-n", "node2", "--mode", "remote", "vm2"],
        )
        .failed();
    assert!(remote.stderr.contains("only local"), "{remote:?}");

    let out = c
        .run("node1", "gnt-backup", &["export", "-n", "node2", "vm2"])
        .ok();
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.contains("through the OS export script"), "{text}");
    // Restarted after the copy, as it was running.
    assert!(c.fake_runs("node1", "vm2"));
    let dir = c.path("node2", "/srv/ganeti/export/vm2");
    let ini = std::fs::read_to_string(dir.join("config.ini")).unwrap();
    assert!(ini.starts_with("[export]\nversion = 0\n"), "{ini}");
    assert!(ini.contains("\nsource = node1"), "{ini}");
    assert!(ini.contains("\nos = image+default\n"), "{ini}");
    assert!(ini.contains("\ndisk_template = file\n"), "{ini}");
    assert!(ini.contains("\ndisk0_size = 8\n"), "{ini}");
    assert!(ini.contains("\nos_dump = True\n"), "{ini}");
    assert!(
        ini.contains("\n[backend]\n") && ini.contains("\n[os]\n"),
        "{ini}"
    );
    let dump_name = ini
        .lines()
        .find_map(|l| l.strip_prefix("disk0_dump = "))
        .unwrap()
        .to_string();
    // The dump is the script's gzip stream of the disk, not the disk.
    let dump = dir.join(&dump_name);
    assert_ne!(sha1_of(&dump), sum);
    let raw = gunzip(&dump);
    assert_eq!(sha1_of(&raw), sum);
    fsck_clean(&raw);
    std::fs::remove_file(&raw).unwrap();
    assert!(stages(&c, "node1").is_empty() && stages(&c, "node2").is_empty());

    let listed = c.run("node1", "gnt-backup", &["list"]).ok();
    let lines: Vec<&str> = listed.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["Node", "Export"]
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["node2", "vm2"]
    );
    assert_eq!(lines.len(), 2, "{listed:?}");
    let only1 = c
        .run(
            "node1",
            "gnt-backup",
            &["list", "--node", "node1", "--no-headers"],
        )
        .ok();
    assert_eq!(only1.stdout.trim(), "");
    let only2 = c
        .run(
            "node1",
            "gnt-backup",
            &["list", "--node", "node2", "--no-headers", "-o", "export"],
        )
        .ok();
    assert_eq!(only2.stdout.trim(), "vm2");
    let fields = c
        .run("node1", "gnt-backup", &["list-fields", "--no-headers"])
        .ok();
    let names: Vec<&str> = fields
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["export", "node"], "{fields:?}");

    // A new export to node1 replaces the one on node2.
    c.run(
        "node1",
        "gnt-backup",
        &["export", "-n", "node1", "--noshutdown", "vm2"],
    )
    .ok();
    let listed = c
        .run(
            "node1",
            "gnt-backup",
            &["list", "--no-headers", "--separator", "|"],
        )
        .ok();
    assert_eq!(listed.stdout.trim(), "node1|vm2");

    c.run("node1", "gnt-backup", &["remove", "vm2"]).ok();
    let listed = c.run("node1", "gnt-backup", &["list", "--no-headers"]).ok();
    assert_eq!(listed.stdout.trim(), "");
    assert!(!c.path("node1", "/srv/ganeti/export/vm2").exists());
}

#[test]
fn export_then_import_under_a_new_name_on_another_node() {
    let c = TestCluster::two_nodes_with_os();
    c.add_instance(FILE_VM, "vm3").ok();
    c.run("node1", "gnt-backup", &["export", "-n", "node1", "vm3"])
        .ok();
    let sum = sha1_of(&disk_files(&c, "node1", "vm3")[0]);

    // Without a source node the export is searched on every node (Ganeti's
    // rule); the explicit form is exercised below.
    let out = c
        .run(
            "node1",
            "gnt-backup",
            &[
                "import",
                "-n",
                "node2",
                "--src-dir",
                "vm3",
                "--no-name-check",
                "--no-ip-check",
                "vm4",
            ],
        )
        .ok();
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.contains("through the OS import script"), "{text}");
    assert!(stages(&c, "node1").is_empty() && stages(&c, "node2").is_empty());
    assert_eq!(field(&c, "vm4", "pnode"), "node2");
    assert_eq!(field(&c, "vm4", "os"), "image+default");
    assert_eq!(field(&c, "vm4", "disk_template"), "file");
    let disks = disk_files(&c, "node2", "vm4");
    assert_eq!(disks.len(), 1, "{disks:?}");
    assert_eq!(sha1_of(&disks[0]), sum);
    fsck_clean(&disks[0]);
    // Not started (gnt-backup import's default); starts from its disks.
    assert!(!c.fake_runs("node2", "vm4"));
    c.run("node1", "gnt-instance", &["startup", "vm4"]).ok();
    assert!(c.fake_runs("node2", "vm4"));

    // A missing export fails before anything is created.
    let missing = c
        .run(
            "node1",
            "gnt-backup",
            &[
                "import",
                "-n",
                "node2",
                "--src-node",
                "node2",
                "--src-dir",
                "vm3",
                "--no-name-check",
                "--no-ip-check",
                "vm5",
            ],
        )
        .failed();
    assert!(missing.stderr.contains("No export"), "{missing:?}");
    assert!(disk_files(&c, "node2", "vm5").is_empty());
    let nowhere = c
        .run(
            "node1",
            "gnt-backup",
            &[
                "import",
                "-n",
                "node2",
                "--src-dir",
                "vm9",
                "--no-name-check",
                "--no-ip-check",
                "vm5",
            ],
        )
        .failed();
    assert!(
        nowhere
            .stderr
            .contains("No export found for relative path vm9"),
        "{nowhere:?}"
    );
}

/// Copies export `from` on `node` to export `to`, with `config.ini` edited
/// by `edit` and disk 0's dump replaced by `dump` when given.
fn copy_export(
    c: &TestCluster,
    node: &str,
    from: &str,
    to: &str,
    edit: impl Fn(&str) -> String,
    dump: Option<&[u8]>,
) {
    let src = c.path(node, &format!("/srv/ganeti/export/{from}"));
    let dst = c.path(node, &format!("/srv/ganeti/export/{to}"));
    std::fs::create_dir_all(&dst).unwrap();
    let ini = std::fs::read_to_string(src.join("config.ini")).unwrap();
    let dump_name = ini
        .lines()
        .find_map(|l| l.strip_prefix("disk0_dump = "))
        .unwrap()
        .to_string();
    std::fs::write(dst.join("config.ini"), edit(&ini)).unwrap();
    match dump {
        Some(bytes) => std::fs::write(dst.join(&dump_name), bytes).unwrap(),
        None => {
            std::fs::copy(src.join(&dump_name), dst.join(&dump_name)).unwrap();
        }
    }
}

fn import_args<'a>(src_dir: &'a str, name: &'a str) -> Vec<&'a str> {
    vec![
        "import",
        "-n",
        "node2",
        "--src-node",
        "node1",
        "--src-dir",
        src_dir,
        "--no-name-check",
        "--no-ip-check",
        name,
    ]
}

#[test]
fn raw_exports_still_import_and_a_refused_dump_leaves_nothing() {
    let c = TestCluster::two_nodes_with_os();
    c.add_instance(FILE_VM, "vm6").ok();
    c.run("node1", "gnt-backup", &["export", "-n", "node1", "vm6"])
        .ok();
    let disk = disk_files(&c, "node1", "vm6")[0].clone();
    let sum = sha1_of(&disk);
    let image = std::fs::read(&disk).unwrap();

    // A raw export (os_dump = False: the dump is the disk itself) is
    // copied into the new disk as it is; the import script does not run.
    let raw = |ini: &str| ini.replace("os_dump = True", "os_dump = False");
    copy_export(&c, "node1", "vm6", "raw6", raw, Some(&image));
    let out = c
        .run("node1", "gnt-backup", &import_args("raw6", "vm7"))
        .ok();
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(!text.contains("OS import script"), "{text}");
    let disks = disk_files(&c, "node2", "vm7");
    assert_eq!(sha1_of(&disks[0]), sum);
    fsck_clean(&disks[0]);

    // An export written by Ganeti itself has no os_dump key: with an OS
    // its dumps were made by the export script, so import runs the script.
    let ganeti = |ini: &str| ini.replace("os_dump = True\n", "");
    copy_export(&c, "node1", "vm6", "ganeti6", ganeti, None);
    c.run("node1", "gnt-backup", &import_args("ganeti6", "vm8"))
        .ok();
    assert_eq!(sha1_of(&disk_files(&c, "node2", "vm8")[0]), sum);

    // A dump the import script refuses: the job fails with the script's
    // own words, and neither the instance, its disk nor a staging file is
    // left behind.
    copy_export(&c, "node1", "vm6", "bad6", |i| i.to_string(), Some(&image));
    let bad = c
        .run("node1", "gnt-backup", &import_args("bad6", "vm9"))
        .failed();
    assert!(
        bad.stderr
            .contains("not what this OS's export script writes"),
        "{bad:?}"
    );
    assert!(bad.stderr.contains("not in gzip format"), "{bad:?}");
    let listed = c
        .run(
            "node1",
            "gnt-instance",
            &["list", "--no-headers", "-o", "name"],
        )
        .ok();
    assert!(!listed.stdout.contains("vm9"), "{listed:?}");
    assert!(disk_files(&c, "node2", "vm9").is_empty());
    assert!(stages(&c, "node1").is_empty() && stages(&c, "node2").is_empty());
}
