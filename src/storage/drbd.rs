//! `drbd` disks: DRBD 8.4 mirrors over two LVs (Ganeti's
//! `storage/drbd.py`, `drbd_cmdgen.py` (8.4 generator) and `drbd_info.py`).
//!
//! **Not exercised on this machine**: there is no DRBD kernel module (and
//! no device-mapper for the LVs). The command lines are tested through the
//! recording runner and the `/proc/drbd` parser on the real files of
//! Ganeti's test suite (`test/data/proc_drbd*.txt`).
//!
//! `logical_id` is `[node_a, node_b, port, minor_a, minor_b, secret]` and
//! the children are `[data LV, meta LV]`. Which side this node is, and the
//! addresses, come as Ganeti's dynamic disk parameters in `params`:
//! `local-ip`, `remote-ip`, `local-minor`, `remote-minor` (`DDP_*`), which
//! the master fills in for each node it calls
//! (`cmdlib::instance::spec::disk_for_node`); the addresses are the nodes'
//! secondary IPs. When `local-minor` is absent (an older master), the
//! node's own name is matched against `node_a`/`node_b`.
//!
//! Device `/dev/drbd<minor>`, resource `resource<minor>`.

use super::{
    id_list, id_str, id_u64, param_text, run_tool, Access, BlockDevice, DeviceStatus, GrowLayer,
    GrowMode, LocalDiskStatus, StorageError,
};
use crate::paths::Paths;
use crate::rpc::proto::DiskSpec;
use crate::sys::cmd::{Command, Runner};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the kernel reports DRBD state.
pub const PROC_DRBD: &str = "/proc/drbd";
/// Size of the metadata LV, MiB (`DRBD_META_SIZE`).
pub const DRBD_META_SIZE_MIB: u64 = 128;
/// DRBD's block major number (for the sysfs size).
pub const DRBD_MAJOR: u64 = 147;
/// HMAC algorithm for the peer authentication (`DRBD_HMAC_ALG`).
pub const DRBD_HMAC_ALG: &str = "md5";

/// One minor's line(s) of `/proc/drbd` (Ganeti's `DRBD8Status`).
#[derive(Debug, Clone, PartialEq)]
pub struct MinorStatus {
    /// Connection state (`Connected`, `SyncSource`, `Unconfigured`, …).
    pub cstatus: String,
    /// Local role (`Primary`, `Secondary`, `Unknown`), none when unconfigured.
    pub lrole: Option<String>,
    /// Peer role.
    pub rrole: Option<String>,
    /// Local disk state (`UpToDate`, `Diskless`, `Inconsistent`, …).
    pub ldisk: Option<String>,
    /// Peer disk state.
    pub rdisk: Option<String>,
    /// Resync progress in percent (0 while resyncing without a figure).
    pub sync_percent: Option<f64>,
    /// Estimated seconds left in the resync.
    pub est_time_secs: Option<f64>,
}

/// Connection states that mean a resync is going on (`CSET_SYNC`).
const SYNC_STATES: &[&str] = &[
    "WFReportParams",
    "StartingSyncS",
    "StartingSyncT",
    "WFBitMapS",
    "WFBitMapT",
    "WFSyncUUID",
    "SyncSource",
    "SyncTarget",
    "PausedSyncS",
    "PausedSyncT",
];

impl MinorStatus {
    /// Connected to the peer.
    pub fn is_connected(&self) -> bool {
        self.cstatus == "Connected"
    }
    /// Resyncing.
    pub fn is_in_resync(&self) -> bool {
        SYNC_STATES.contains(&self.cstatus.as_str())
    }
    /// The minor is in use.
    pub fn is_in_use(&self) -> bool {
        self.cstatus != "Unconfigured"
    }

    /// Ganeti's `GetSyncStatus` for this minor.
    pub fn device_status(&self, path: String) -> DeviceStatus {
        let uptodate = self.ldisk.as_deref() == Some("UpToDate");
        let ldisk = if uptodate {
            LocalDiskStatus::Okay
        } else if self.ldisk.as_deref() == Some("Diskless") {
            LocalDiskStatus::Faulty
        } else if self.is_in_resync() {
            LocalDiskStatus::Syncing
        } else {
            LocalDiskStatus::Unknown
        };
        DeviceStatus {
            path: Some(path),
            sync_percent: self.sync_percent,
            estimated_time_secs: self.est_time_secs,
            is_degraded: !self.is_connected() || !uptodate,
            ldisk,
        }
    }
}

/// Parses `/proc/drbd` (8.0–8.4 formats) into minor → status.
pub fn parse_proc_drbd(text: &str) -> Result<BTreeMap<u32, MinorStatus>, StorageError> {
    // Join each minor's continuation lines onto its first line.
    let mut joined: Vec<(u32, String)> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        let minor = t
            .split_once(':')
            .filter(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
            .and_then(|(n, rest)| Some((n.parse::<u32>().ok()?, rest)));
        match (minor, joined.last_mut()) {
            (Some((n, rest)), _) => joined.push((n, rest.trim().to_string())),
            (None, Some((_, cur))) => {
                cur.push(' ');
                cur.push_str(t);
            }
            (None, None) => {} // version: and GIT-hash: lines
        }
    }
    let mut out = BTreeMap::new();
    for (minor, line) in joined {
        out.insert(minor, parse_minor(minor, &line)?);
    }
    Ok(out)
}

fn parse_minor(minor: u32, line: &str) -> Result<MinorStatus, StorageError> {
    let parse = |reason: &str| StorageError::Parse {
        what: format!("/proc/drbd minor {minor}"),
        reason: format!("{reason} in {line:?}"),
    };
    let field = |prefixes: &[&str]| -> Option<&str> {
        line.split_whitespace()
            .find_map(|tok| prefixes.iter().find_map(|p| tok.strip_prefix(p)))
    };
    let cstatus = field(&["cs:"]).ok_or_else(|| parse("no cs: field"))?;
    if cstatus == "Unconfigured" {
        return Ok(MinorStatus {
            cstatus: cstatus.to_string(),
            lrole: None,
            rrole: None,
            ldisk: None,
            rdisk: None,
            sync_percent: None,
            est_time_secs: None,
        });
    }
    let pair = |prefixes: &[&str], what: &str| -> Result<(String, String), StorageError> {
        let v = field(prefixes).ok_or_else(|| parse(&format!("no {what} field")))?;
        let (a, b) = v
            .split_once('/')
            .ok_or_else(|| parse(&format!("{what} is not local/peer")))?;
        Ok((a.to_string(), b.to_string()))
    };
    let (lrole, rrole) = pair(&["ro:", "st:"], "role")?;
    let (ldisk, rdisk) = pair(&["ds:"], "disk state")?;
    let mut st = MinorStatus {
        cstatus: cstatus.to_string(),
        lrole: Some(lrole),
        rrole: Some(rrole),
        ldisk: Some(ldisk),
        rdisk: Some(rdisk),
        sync_percent: None,
        est_time_secs: None,
    };
    match sync_figures(line) {
        Some((pct, secs)) => {
            st.sync_percent = Some(pct);
            st.est_time_secs = Some(secs);
        }
        None if st.is_in_resync() => st.sync_percent = Some(0.0),
        None => {}
    }
    Ok(st)
}

/// `sync'ed: 68.5% … finish: 0:00:05` → (68.5, 5.0).
fn sync_figures(line: &str) -> Option<(f64, f64)> {
    let after = &line[line.find("sync'ed:")? + "sync'ed:".len()..];
    let pct: f64 = after.trim_start().split('%').next()?.trim().parse().ok()?;
    let fin = &after[after.find("finish:")? + "finish:".len()..];
    let hms = fin.split_whitespace().next()?;
    let parts: Vec<u64> = hms
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = parts[..] else { return None };
    Some((pct, (h * 3600 + m * 60 + s) as f64))
}

/// A DRBD 8.4 device with its two LVs.
pub struct Drbd8<'a> {
    minor: u64,
    port: u64,
    secret: String,
    local_ip: Option<String>,
    remote_ip: Option<String>,
    params: BTreeMap<String, String>,
    data: Box<dyn BlockDevice + 'a>,
    meta: Box<dyn BlockDevice + 'a>,
    meta_path: String,
    data_path: String,
    runner: &'a dyn Runner,
    proc_file: PathBuf,
}

impl<'a> Drbd8<'a> {
    /// Decodes `disk` and its children.
    pub fn new(
        disk: &DiskSpec,
        paths: &Paths,
        runner: &'a dyn Runner,
    ) -> Result<Self, StorageError> {
        let items = id_list(disk, 6)?;
        let node_a = id_str(disk, items, 0)?;
        let node_b = id_str(disk, items, 1)?;
        let port = id_u64(disk, items, 2)?;
        let minor_a = id_u64(disk, items, 3)?;
        let minor_b = id_u64(disk, items, 4)?;
        let secret = items[5]
            .as_str()
            .ok_or_else(|| super::bad_id(disk, "element 5 (secret) must be a string".into()))?
            .to_string();
        let [data, meta] = &disk.children[..] else {
            return Err(super::bad_id(
                disk,
                format!("needs 2 children (data, meta), got {}", disk.children.len()),
            ));
        };
        let minor = match param_text(disk, "local-minor") {
            Some(m) => m.parse().map_err(|_| StorageError::BadParam {
                disk: super::disk_label(disk),
                param: "local-minor".into(),
                reason: format!("{m:?} is not a minor number"),
            })?,
            None => {
                let me = paths.hostname();
                if me == node_a {
                    minor_a
                } else if me == node_b {
                    minor_b
                } else {
                    return Err(super::bad_id(
                        disk,
                        format!("this node ({me}) is neither {node_a} nor {node_b}"),
                    ));
                }
            }
        };
        let child_path = |c: &DiskSpec| -> Result<String, StorageError> {
            let items = id_list(c, 2)?;
            Ok(format!(
                "/dev/{}/{}",
                id_str(c, items, 0)?,
                id_str(c, items, 1)?
            ))
        };
        let params = disk
            .params
            .keys()
            .filter_map(|k| param_text(disk, k).map(|v| (k.clone(), v)))
            .collect();
        Ok(Drbd8 {
            minor,
            port,
            secret,
            local_ip: param_text(disk, "local-ip"),
            remote_ip: param_text(disk, "remote-ip"),
            params,
            data_path: child_path(data)?,
            meta_path: child_path(meta)?,
            data: super::for_disk(data, paths, runner)?,
            meta: super::for_disk(meta, paths, runner)?,
            runner,
            proc_file: PathBuf::from(PROC_DRBD),
        })
    }

    /// Reads the status from `file` instead of `/proc/drbd` (tests).
    pub fn with_proc_file(mut self, file: &Path) -> Self {
        self.proc_file = file.to_path_buf();
        self
    }

    /// `/dev/drbd<minor>`.
    pub fn dev_path(&self) -> String {
        format!("/dev/drbd{}", self.minor)
    }

    fn resource(&self) -> String {
        format!("resource{}", self.minor)
    }

    fn run(&self, argv: Vec<String>) -> Result<(), StorageError> {
        let cmd = Command::new(argv);
        run_tool(self.runner, &cmd, || {
            format!("configuring {}", self.dev_path())
        })?;
        Ok(())
    }

    /// This minor's `/proc/drbd` status (`None` if DRBD is not loaded or
    /// the minor is not listed).
    pub fn minor_status(&self) -> Result<Option<MinorStatus>, StorageError> {
        let text = match std::fs::read_to_string(&self.proc_file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StorageError::Io {
                    action: "reading",
                    path: self.proc_file.clone(),
                    source,
                })
            }
        };
        let minor = u32::try_from(self.minor).map_err(|_| StorageError::Device {
            device: self.dev_path(),
            reason: "minor number out of range".into(),
        })?;
        Ok(parse_proc_drbd(&text)?.remove(&minor))
    }

    fn param(&self, name: &str, default: &str) -> String {
        self.params
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }

    /// The 8.4 commands bringing the minor up: local attach, then network
    /// (Ganeti's `GenLocalInitCmds` + `GenNetInitCmds`).
    pub fn up_commands(&self, size_mib: u64) -> Result<Vec<Vec<String>>, StorageError> {
        let m = self.minor.to_string();
        let res = self.resource();
        let mut attach = vec![
            "drbdsetup".to_string(),
            "attach".into(),
            m.clone(),
            self.data_path.clone(),
            self.meta_path.clone(),
            "flexible".into(),
            "--on-io-error=detach".into(),
        ];
        if size_mib > 0 {
            attach.extend(["--size".to_string(), format!("{size_mib}m")]);
        }
        attach.extend(barrier_args(
            &self.param("disabled-barriers", "n"),
            self.param("disable-meta-flush", "false") == "true",
        ));
        attach.extend(custom_args(&self.param("disk-custom", "")));
        let mut cmds = vec![
            vec!["drbdsetup".into(), "new-resource".into(), res.clone()],
            vec![
                "drbdsetup".into(),
                "new-minor".into(),
                res.clone(),
                m.clone(),
                "0".into(),
            ],
            vec![
                "drbdmeta".into(),
                self.dev_path(),
                "v08".into(),
                self.meta_path.clone(),
                "flex-external".into(),
                "apply-al".into(),
            ],
            attach,
        ];
        let (Some(lip), Some(rip)) = (&self.local_ip, &self.remote_ip) else {
            return Err(StorageError::Device {
                device: self.dev_path(),
                reason: "the local-ip and remote-ip disk parameters are needed to connect".into(),
            });
        };
        let family = if lip.contains(':') { "ipv6" } else { "ipv4" };
        let mut connect = vec![
            "drbdsetup".to_string(),
            "connect".into(),
            res,
            format!("{family}:{lip}:{}", self.port),
            format!("{family}:{rip}:{}", self.port),
            "--protocol".into(),
            self.param("protocol", "C"),
            "--after-sb-0pri".into(),
            "discard-zero-changes".into(),
            "--after-sb-1pri".into(),
            "consensus".into(),
        ];
        if !self.secret.is_empty() {
            connect.extend([
                "--cram-hmac-alg".to_string(),
                DRBD_HMAC_ALG.into(),
                "--shared-secret".into(),
                self.secret.clone(),
            ]);
        }
        connect.extend(custom_args(&self.param("net-custom", "")));
        cmds.push(connect);
        Ok(cmds)
    }
}

/// Ganeti's `_ComputeDiskBarrierArgs` for 8.4: `disabled` holds the
/// letters `b` (barriers), `f` (flushes), `d` (drain), or `n` for none.
pub fn barrier_args(disabled: &str, no_meta_flush: bool) -> Vec<String> {
    let mut args = Vec::new();
    if no_meta_flush {
        args.push("--md-flushes=no".to_string());
    }
    if disabled.contains('f') {
        args.push("--disk-flushes=no".into());
    }
    if disabled.contains('d') {
        args.push("--disk-drain=no".into());
    }
    if disabled.contains('b') {
        args.push("--disk-barrier=no".into());
    }
    args
}

/// `disk-custom`/`net-custom`: extra arguments split on whitespace.
fn custom_args(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

impl BlockDevice for Drbd8<'_> {
    fn dev_type(&self) -> &'static str {
        "drbd"
    }

    fn create(&self, size_mib: u64) -> Result<(), StorageError> {
        if self.minor_status()?.is_some_and(|s| s.is_in_use()) {
            return Err(StorageError::Device {
                device: self.dev_path(),
                reason: "minor is already in use".into(),
            });
        }
        self.data.create(size_mib)?;
        self.meta.create(DRBD_META_SIZE_MIB)?;
        self.meta.assemble()?;
        self.run(vec![
            "drbdmeta".into(),
            "--force".into(),
            self.dev_path(),
            "v08".into(),
            self.meta_path.clone(),
            "flex-external".into(),
            "create-md".into(),
        ])
    }

    fn remove(&self) -> Result<(), StorageError> {
        self.shutdown()?;
        self.data.remove()?;
        self.meta.remove()
    }

    fn exists(&self) -> Result<bool, StorageError> {
        Ok(self.data.exists()? && self.meta.exists()?)
    }

    fn assemble(&self) -> Result<Access, StorageError> {
        if !self.minor_status()?.is_some_and(|s| s.is_in_use()) {
            self.data.assemble()?;
            self.meta.assemble()?;
            for cmd in self.up_commands(0)? {
                self.run(cmd)?;
            }
        }
        Ok(Access {
            path: self.dev_path(),
            uris: Vec::new(),
        })
    }

    fn shutdown(&self) -> Result<(), StorageError> {
        if self.minor_status()?.is_some_and(|s| s.is_in_use()) {
            self.run(vec!["drbdsetup".into(), "down".into(), self.resource()])?;
        }
        Ok(())
    }

    fn grow(
        &self,
        current_size_mib: u64,
        amount_mib: u64,
        mode: GrowMode,
        layer: GrowLayer,
    ) -> Result<(), StorageError> {
        match layer {
            GrowLayer::BackingStore => {
                self.data
                    .grow(current_size_mib, amount_mib, mode, GrowLayer::BackingStore)
            }
            GrowLayer::Device if mode == GrowMode::DryRun => Ok(()),
            GrowLayer::Device => self.run(vec![
                "drbdsetup".into(),
                "resize".into(),
                self.minor.to_string(),
                "--size".into(),
                format!("{}m", current_size_mib + amount_mib),
            ]),
        }
    }

    fn size_bytes(&self) -> Result<u64, StorageError> {
        super::blockdev::sysfs_size_bytes(Path::new("/sys"), DRBD_MAJOR, self.minor)
    }

    fn status(&self) -> Result<DeviceStatus, StorageError> {
        match self.minor_status()? {
            Some(s) if s.is_in_use() => Ok(s.device_status(self.dev_path())),
            _ => Err(StorageError::Missing {
                device: self.dev_path(),
            }),
        }
    }

    fn open(&self) -> Result<(), StorageError> {
        self.run(vec![
            "drbdsetup".into(),
            "primary".into(),
            self.minor.to_string(),
        ])
    }

    fn set_info(&self, text: &str) -> Result<(), StorageError> {
        self.data.set_info(text)?;
        self.meta.set_info(text)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{disk, temp_dir};
    use super::*;
    use crate::sys::cmd::RecordingRunner;
    use serde_json::json;

    const DATA: &str = "/usr/share/ganeti/testsuite/test/data";

    fn fixture(name: &str) -> Option<String> {
        match std::fs::read_to_string(format!("{DATA}/{name}")) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("skipping: {DATA}/{name} unavailable ({e}); install ganeti-testsuite");
                None
            }
        }
    }

    #[test]
    fn parses_drbd84() {
        let Some(t) = fixture("proc_drbd84.txt") else {
            return;
        };
        let m = parse_proc_drbd(&t).unwrap();
        assert_eq!(
            m.keys().copied().collect::<Vec<_>>(),
            vec![0, 1, 2, 4, 6, 8]
        );
        let s0 = &m[&0];
        assert!(s0.is_connected());
        assert_eq!(s0.lrole.as_deref(), Some("Primary"));
        let st = s0.device_status("/dev/drbd0".into());
        assert!(!st.is_degraded && st.ldisk == LocalDiskStatus::Okay);
        assert!(!m[&2].is_in_use());
        let wf = m[&4].device_status("x".into());
        assert!(wf.is_degraded && wf.ldisk == LocalDiskStatus::Okay);
        let diskless = m[&6].device_status("x".into());
        assert!(diskless.is_degraded && diskless.ldisk == LocalDiskStatus::Faulty);
        assert_eq!(m[&8].cstatus, "StandAlone");
    }

    #[test]
    fn parses_resync_progress() {
        let Some(t) = fixture("proc_drbd84_sync.txt") else {
            return;
        };
        let m = parse_proc_drbd(&t).unwrap();
        let s = &m[&5];
        assert!(s.is_in_resync());
        assert_eq!((s.sync_percent, s.est_time_secs), (Some(68.5), Some(5.0)));
        let st = s.device_status("x".into());
        assert!(st.is_degraded);
        assert_eq!(st.ldisk, LocalDiskStatus::Okay, "local disk is UpToDate");
        let Some(t) = fixture("proc_drbd83_sync_krnl2.6.39.txt") else {
            return;
        };
        let m = parse_proc_drbd(&t).unwrap();
        assert_eq!(
            (m[&3].sync_percent, m[&3].est_time_secs),
            (Some(2.4), Some(248.0))
        );
        assert_eq!(m[&1].sync_percent, None);
    }

    #[test]
    fn parses_every_testsuite_file() {
        for name in [
            "proc_drbd8.txt",
            "proc_drbd80-emptyline.txt",
            "proc_drbd80-emptyversion.txt",
            "proc_drbd83.txt",
            "proc_drbd83_sync.txt",
            "proc_drbd83_sync_want.txt",
            "proc_drbd84_emptyfirst.txt",
        ] {
            let Some(t) = fixture(name) else { return };
            let m = parse_proc_drbd(&t).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!m.is_empty(), "{name}");
        }
        let Some(t) = fixture("proc_drbd83_sync_want.txt") else {
            return;
        };
        let m = parse_proc_drbd(&t).unwrap();
        let st = m[&0].device_status("x".into());
        assert_eq!(
            (st.sync_percent, st.estimated_time_secs),
            (Some(44.4), Some(8.0))
        );
        assert_eq!(st.ldisk, LocalDiskStatus::Syncing);
        // A resync state without figures counts as 0 %.
        let m =
            parse_proc_drbd(" 0: cs:WFSyncUUID ro:Secondary/Primary ds:Inconsistent/UpToDate C\n")
                .unwrap();
        assert_eq!((m[&0].sync_percent, m[&0].est_time_secs), (Some(0.0), None));
        assert!(parse_proc_drbd(" 1: cs:Connected garbage\n").is_err());
    }

    fn drbd_disk() -> DiskSpec {
        let mut d = disk("drbd", json!(["node1", "node2", 11000, 0, 3, "s3cr3t"]));
        d.children = vec![
            disk("plain", json!(["xenvg", "u.disk0_data"])),
            disk("plain", json!(["xenvg", "u.disk0_meta"])),
        ];
        d.params.insert("local-ip".into(), json!("192.0.2.1"));
        d.params.insert("remote-ip".into(), json!("192.0.2.2"));
        d.params.insert("disabled-barriers".into(), json!("bf"));
        d
    }

    #[test]
    fn up_and_resize_command_lines() {
        let base = temp_dir("drbd");
        let p = Paths::virtual_node(&base.join("node2"), "node2").unwrap();
        let r = RecordingRunner::new();
        let proc_file = base.join("proc_drbd");
        crate::sys::fs::atomic_write(&proc_file, b"version: 8.4.2\n 3: cs:Unconfigured\n", 0o644)
            .unwrap();
        let dev = Drbd8::new(&drbd_disk(), &p, &r)
            .unwrap()
            .with_proc_file(&proc_file);
        assert_eq!(dev.dev_path(), "/dev/drbd3", "node2 is side b");
        let cmds: Vec<String> = dev
            .up_commands(0)
            .unwrap()
            .iter()
            .map(|c| c.join(" "))
            .collect();
        assert_eq!(
            cmds,
            vec![
                "drbdsetup new-resource resource3",
                "drbdsetup new-minor resource3 3 0",
                "drbdmeta /dev/drbd3 v08 /dev/xenvg/u.disk0_meta flex-external apply-al",
                "drbdsetup attach 3 /dev/xenvg/u.disk0_data /dev/xenvg/u.disk0_meta flexible --on-io-error=detach --disk-flushes=no --disk-barrier=no",
                "drbdsetup connect resource3 ipv4:192.0.2.1:11000 ipv4:192.0.2.2:11000 --protocol C --after-sb-0pri discard-zero-changes --after-sb-1pri consensus --cram-hmac-alg md5 --shared-secret s3cr3t",
            ]
        );
        dev.grow(1024, 512, GrowMode::Apply, GrowLayer::Device)
            .unwrap();
        assert_eq!(
            r.calls().last().unwrap().display(),
            "drbdsetup resize 3 --size 1536m"
        );
        dev.open().unwrap();
        assert_eq!(r.calls().last().unwrap().display(), "drbdsetup primary 3");
        assert!(matches!(dev.status(), Err(StorageError::Missing { .. })));
        dev.shutdown().unwrap();
        assert_eq!(
            r.calls().len(),
            2,
            "an unconfigured minor is not taken down"
        );
        let _ = std::fs::remove_dir_all(base);
    }

    #[test]
    fn needs_two_children_and_knows_its_side() {
        let r = RecordingRunner::new();
        let mut d = drbd_disk();
        d.children.pop();
        let p = Paths::production();
        assert!(Drbd8::new(&d, &p, &r).is_err());
        let base = temp_dir("drbd-side");
        let other = Paths::virtual_node(&base.join("node9"), "node9").unwrap();
        let err = Drbd8::new(&drbd_disk(), &other, &r).err().unwrap();
        assert!(err.to_string().contains("neither node1 nor node2"), "{err}");
        let mut d = drbd_disk();
        d.params.insert("local-minor".into(), json!(7));
        assert_eq!(Drbd8::new(&d, &other, &r).unwrap().dev_path(), "/dev/drbd7");
        let _ = std::fs::remove_dir_all(base);
    }

    #[test]
    fn master_sent_spec_with_node_uuids_uses_the_dynamic_params() {
        // What `cmdlib::instance::spec::disk_for_node` sends: node UUIDs in
        // the logical_id (the node cannot find itself there) and this
        // node's side in the params, minors as JSON numbers.
        let mut d = disk(
            "drbd",
            json!([
                "5e0c0a1e-0000-4000-8000-000000000001",
                "5e0c0a1e-0000-4000-8000-000000000002",
                11001,
                0,
                5,
                "00ff"
            ]),
        );
        d.children = vec![
            disk("plain", json!(["xenvg", "u.disk0_data"])),
            disk("plain", json!(["xenvg", "u.disk0_meta"])),
        ];
        d.params.insert("local-ip".into(), json!("198.51.100.2"));
        d.params.insert("remote-ip".into(), json!("192.0.2.1"));
        d.params.insert("local-minor".into(), json!(5));
        d.params.insert("remote-minor".into(), json!(0));
        let base = temp_dir("drbd-master-spec");
        let p = Paths::virtual_node(&base.join("node2"), "node2").unwrap();
        let proc_file = base.join("proc_drbd");
        crate::sys::fs::atomic_write(&proc_file, b"version: 8.4.11\n 5: cs:Unconfigured\n", 0o644)
            .unwrap();
        let r = RecordingRunner::new();
        let lv = |name: &str| {
            format!("  U;{name};-wi-a-;-1;-1;253;0;1073741824B;1;;;V;xenvg;linear;0B;0;1073741824B;;/dev/sda5:0-255;/dev/sda5(0)\n")
        };
        // lvs + lvchange -ay for each volume, then the DRBD commands.
        for a in [lv("u.disk0_data"), String::new(), lv("u.disk0_meta")] {
            r.push_answer(Ok(&a));
        }
        let dev = Drbd8::new(&d, &p, &r).unwrap().with_proc_file(&proc_file);
        let access = dev.assemble().unwrap();
        assert_eq!(access.path, "/dev/drbd5");
        let argv: Vec<String> = r.calls().iter().map(|c| c.display()).collect();
        assert_eq!(argv[1], "lvchange -ay /dev/xenvg/u.disk0_data");
        assert_eq!(argv[3], "lvchange -ay /dev/xenvg/u.disk0_meta");
        assert_eq!(
            argv[4..],
            [
                "drbdsetup new-resource resource5",
                "drbdsetup new-minor resource5 5 0",
                "drbdmeta /dev/drbd5 v08 /dev/xenvg/u.disk0_meta flex-external apply-al",
                "drbdsetup attach 5 /dev/xenvg/u.disk0_data /dev/xenvg/u.disk0_meta flexible --on-io-error=detach",
                "drbdsetup connect resource5 ipv4:198.51.100.2:11001 ipv4:192.0.2.1:11001 --protocol C --after-sb-0pri discard-zero-changes --after-sb-1pri consensus --cram-hmac-alg md5 --shared-secret 00ff",
            ]
        );
        let _ = std::fs::remove_dir_all(base);
    }
}
