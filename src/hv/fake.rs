//! The fake hypervisor: an instance "runs" while its state record exists,
//! one JSON file per instance at `RUN_DIR/fake-hypervisor/<name>` (Ganeti's
//! `hv_fake` layout), holding name, memory, vcpus and state. Nothing is
//! executed. Loopback-cluster tests and `make demo` use it.
//!
//! Unlike Ganeti's fake hypervisor it accounts for memory: a start is
//! refused when the instance's `maxmem` exceeds what the node has free
//! (host memory minus the host's own use minus the running fake
//! instances), so capacity checks can be exercised without real guests.
//! Migration moves the record: the target keeps a pending record in
//! `RUN_DIR/fake-hypervisor-incoming/` until the finalize step.

use super::{
    beparam_mib, beparam_vcpus, check_instance_name, HostInfo, HvError, Hypervisor, MigrationMode,
    MigrationOutcome, StartMode,
};
use crate::paths::Paths;
use crate::rpc::proto::{
    AssembledDisk, ConsoleInfo, HvInstanceInfo, InstanceSpec, MigrationStatus, NodeHvInfo, Params,
};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// The hypervisor's name.
pub const NAME: &str = "fake";

/// State of a fake instance: `running`, `paused` (started paused) or
/// `migrating` (source side, between `migrate` and finalize).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FakeRecord {
    /// Instance name.
    pub name: String,
    /// Memory, MiB.
    pub memory: u64,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// `running`, `paused` or `migrating`.
    pub state: String,
}

/// How old the state directory's modification time must be before a scan
/// of it may be reused (see [`FakeHypervisor::records`]).
const SETTLE: Duration = Duration::from_millis(100);

/// The last scan of a state directory.
struct Scan {
    mtime: std::time::SystemTime,
    records: Vec<FakeRecord>,
}

/// Scans by state directory (a process may serve several virtual nodes in
/// tests).
static SCANS: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<PathBuf, Scan>>> =
    std::sync::LazyLock::new(Default::default);

/// The fake hypervisor of one node.
#[derive(Debug, Clone)]
pub struct FakeHypervisor {
    paths: Paths,
    dir: PathBuf,
    incoming: PathBuf,
    lock: PathBuf,
}

impl FakeHypervisor {
    /// The fake hypervisor under `paths`' run directory.
    pub fn new(paths: &Paths) -> Self {
        let run = paths.run_dir();
        FakeHypervisor {
            paths: paths.clone(),
            dir: run.join("fake-hypervisor"),
            incoming: run.join("fake-hypervisor-incoming"),
            lock: run.join("fake-hypervisor.lock"),
        }
    }

    /// `RUN_DIR/fake-hypervisor`: one file per running instance.
    pub fn state_dir(&self) -> &std::path::Path {
        &self.dir
    }

    fn record_path(&self, name: &str) -> Result<PathBuf, HvError> {
        check_instance_name(name)?;
        Ok(self.dir.join(name))
    }

    fn incoming_path(&self, name: &str) -> Result<PathBuf, HvError> {
        check_instance_name(name)?;
        Ok(self.incoming.join(name))
    }

    /// Serialises read-check-write sequences (start's memory check) between
    /// concurrent RPCs; released when the returned file drops.
    fn locked(&self) -> Result<std::fs::File, HvError> {
        let fs = |what: &str| {
            let what = what.to_string();
            move |source| HvError::Fs { what, source }
        };
        crate::sys::fs::ensure_dir(&self.dir, 0o755).map_err(fs("creating fake hv directory"))?;
        crate::sys::fs::lock_exclusive(&self.lock).map_err(fs("locking the fake hypervisor"))
    }

    fn read_record(path: &std::path::Path) -> Result<Option<FakeRecord>, HvError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(HvError::Fs {
                    what: "reading fake instance record".into(),
                    source: crate::sys::fs::FsError::Io {
                        action: "reading",
                        path: path.to_path_buf(),
                        source: e,
                    },
                })
            }
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| HvError::Parse {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
    }

    fn write_record(path: &std::path::Path, rec: &FakeRecord) -> Result<(), HvError> {
        if let Some(dir) = path.parent() {
            crate::sys::fs::ensure_dir(dir, 0o755).map_err(|source| HvError::Fs {
                what: "creating fake hv directory".into(),
                source,
            })?;
        }
        let data = serde_json::to_vec(rec).expect("a record of strings and integers serialises");
        crate::sys::fs::atomic_write(path, &data, 0o644).map_err(|source| HvError::Fs {
            what: format!("writing fake instance record of {}", rec.name),
            source,
        })
    }

    fn remove(path: &std::path::Path) -> Result<(), HvError> {
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(HvError::Fs {
                what: "removing fake instance record".into(),
                source: crate::sys::fs::FsError::Io {
                    action: "removing",
                    path: path.to_path_buf(),
                    source,
                },
            }),
        }
    }

    /// Every running (or paused/migrating) instance's record, by name.
    ///
    /// Records only change by atomic rename (or removal) inside the state
    /// directory, and each of those moves the directory's modification
    /// time. A scan is therefore reused while that time stays the same,
    /// provided it was already 100 ms old when the scan began (file
    /// system clocks are coarse: a change in the same tick as the scan
    /// could otherwise keep the old time). Listing a thousand instances
    /// then costs one `stat` instead of a thousand open/read/close.
    pub fn records(&self) -> Result<Vec<FakeRecord>, HvError> {
        let list_err = |source| HvError::Fs {
            what: "listing fake instances".into(),
            source: crate::sys::fs::FsError::Io {
                action: "listing",
                path: self.dir.clone(),
                source,
            },
        };
        let scan_started = std::time::SystemTime::now();
        let mtime = match std::fs::metadata(&self.dir) {
            Ok(m) => m.modified().map_err(list_err)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(list_err(e)),
        };
        let mut cache = SCANS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(hit) = cache.get(&self.dir).filter(|s| s.mtime == mtime) {
            return Ok(hit.records.clone());
        }
        let entries = std::fs::read_dir(&self.dir).map_err(list_err)?;
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Temporary files of atomic writes start with a dot.
            if check_instance_name(&name).is_err() {
                continue;
            }
            if let Some(rec) = Self::read_record(&entry.path())? {
                out.push(rec);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        let settled = scan_started
            .duration_since(mtime)
            .is_ok_and(|age| age >= SETTLE);
        if settled {
            cache.insert(
                self.dir.clone(),
                Scan {
                    mtime,
                    records: out.clone(),
                },
            );
        } else {
            cache.remove(&self.dir);
        }
        Ok(out)
    }

    /// Memory free for instances: host total minus host use minus running
    /// fake instances (pending incoming ones count too: they are promised).
    fn free_memory(&self, host: &HostInfo) -> Result<u64, HvError> {
        let mut used: u64 = self.records()?.iter().map(|r| r.memory).sum();
        if let Ok(entries) = std::fs::read_dir(&self.incoming) {
            for entry in entries.flatten() {
                if let Some(rec) = Self::read_record(&entry.path())? {
                    used += rec.memory;
                }
            }
        }
        Ok(host
            .memory_total_mib
            .saturating_sub(host.memory_dom0_mib)
            .saturating_sub(used))
    }

    fn check_memory(&self, instance: &InstanceSpec, needed_mib: u64) -> Result<(), HvError> {
        let host = HostInfo::read(&self.paths)?;
        let free_mib = self.free_memory(&host)?;
        if needed_mib > free_mib {
            return Err(HvError::NotEnoughMemory {
                instance: instance.name.clone(),
                needed_mib,
                free_mib,
            });
        }
        Ok(())
    }

    fn record_for(instance: &InstanceSpec, state: &str) -> Result<FakeRecord, HvError> {
        Ok(FakeRecord {
            name: instance.name.clone(),
            memory: beparam_mib(instance, "maxmem")?,
            vcpus: beparam_vcpus(instance)?,
            state: state.to_string(),
        })
    }

    fn running_record(&self, name: &str) -> Result<(PathBuf, FakeRecord), HvError> {
        let path = self.record_path(name)?;
        match Self::read_record(&path)? {
            Some(rec) => Ok((path, rec)),
            None => Err(HvError::NotRunning {
                instance: name.to_string(),
            }),
        }
    }
}

impl Hypervisor for FakeHypervisor {
    fn name(&self) -> &'static str {
        NAME
    }

    fn start(
        &self,
        instance: &InstanceSpec,
        _disks: &[AssembledDisk],
        mode: StartMode,
    ) -> Result<(), HvError> {
        let path = self.record_path(&instance.name)?;
        let state = match mode {
            StartMode::Running => "running",
            StartMode::Paused => "paused",
        };
        let rec = Self::record_for(instance, state)?;
        let _lock = self.locked()?;
        if Self::read_record(&path)?.is_some() {
            return Ok(());
        }
        self.check_memory(instance, rec.memory)?;
        Self::write_record(&path, &rec)
    }

    fn stop(&self, instance: &InstanceSpec, _timeout: Duration) -> Result<(), HvError> {
        let path = self.record_path(&instance.name)?;
        Self::remove(&path)
    }

    fn reboot(&self, instance: &InstanceSpec) -> Result<(), HvError> {
        let (path, mut rec) = self.running_record(&instance.name)?;
        // A reboot leaves the guest running, whatever it was.
        rec.state = "running".into();
        Self::write_record(&path, &rec)
    }

    fn instance_info(
        &self,
        name: &str,
        _hvparams: &Params,
    ) -> Result<Option<HvInstanceInfo>, HvError> {
        let path = self.record_path(name)?;
        Ok(Self::read_record(&path)?.map(|r| info_of(&r)))
    }

    fn list_instances(&self, _hvparams: &Params) -> Result<Vec<String>, HvError> {
        Ok(self.records()?.into_iter().map(|r| r.name).collect())
    }

    fn all_instances_info(&self, _hvparams: &Params) -> Result<Vec<HvInstanceInfo>, HvError> {
        Ok(self.records()?.iter().map(info_of).collect())
    }

    fn node_info(&self, _hvparams: &Params) -> Result<NodeHvInfo, HvError> {
        let host = HostInfo::read(&self.paths)?;
        Ok(NodeHvInfo {
            hypervisor: NAME.into(),
            memory_total_mib: host.memory_total_mib,
            memory_free_mib: self.free_memory(&host)?,
            memory_dom0_mib: host.memory_dom0_mib,
            cpu_total: host.cpu_total,
            cpu_nodes: 1,
            cpu_sockets: host.cpu_sockets,
        })
    }

    fn console(&self, instance: &InstanceSpec, _node_host: &str) -> Result<ConsoleInfo, HvError> {
        Ok(ConsoleInfo {
            instance: instance.name.clone(),
            kind: "msg".into(),
            command: Vec::new(),
            host: None,
            user: None,
            port: None,
            message: Some("fake hypervisor has no console".into()),
        })
    }

    fn balloon_memory(&self, instance: &InstanceSpec, memory_mib: u64) -> Result<(), HvError> {
        let _lock = self.locked()?;
        let (path, mut rec) = self.running_record(&instance.name)?;
        if memory_mib > rec.memory {
            // Growing takes node memory; the rest of it must be free.
            let host = HostInfo::read(&self.paths)?;
            let free_mib = self.free_memory(&host)?;
            let extra = memory_mib - rec.memory;
            if extra > free_mib {
                return Err(HvError::NotEnoughMemory {
                    instance: instance.name.clone(),
                    needed_mib: extra,
                    free_mib,
                });
            }
        }
        rec.memory = memory_mib;
        Self::write_record(&path, &rec)
    }

    fn migration_info(&self, instance: &InstanceSpec) -> Result<serde_json::Value, HvError> {
        let (_, rec) = self.running_record(&instance.name)?;
        Ok(serde_json::json!({ "hypervisor": NAME, "memory": rec.memory, "vcpus": rec.vcpus }))
    }

    fn accept_instance(
        &self,
        instance: &InstanceSpec,
        info: &serde_json::Value,
        _target_address: &str,
        _disks: &[AssembledDisk],
    ) -> Result<(), HvError> {
        let path = self.record_path(&instance.name)?;
        let pending = self.incoming_path(&instance.name)?;
        let mut rec = Self::record_for(instance, "running")?;
        // The memory the instance has now on the source, if it said so.
        if let Some(m) = info.get("memory").and_then(serde_json::Value::as_u64) {
            rec.memory = m;
        }
        let _lock = self.locked()?;
        if Self::read_record(&path)?.is_some() {
            return Err(HvError::AlreadyRunning {
                instance: instance.name.clone(),
            });
        }
        if Self::read_record(&pending)?.is_none() {
            self.check_memory(instance, rec.memory)?;
        }
        Self::write_record(&pending, &rec)
    }

    fn migrate(
        &self,
        instance: &InstanceSpec,
        _info: &serde_json::Value,
        _target_address: &str,
        _mode: MigrationMode,
    ) -> Result<(), HvError> {
        let (path, mut rec) = self.running_record(&instance.name)?;
        rec.state = "migrating".into();
        Self::write_record(&path, &rec)
    }

    fn migration_status(&self, instance: &InstanceSpec) -> Result<MigrationStatus, HvError> {
        let (_, rec) = self.running_record(&instance.name)?;
        let bytes = rec.memory.saturating_mul(1024 * 1024);
        let status = if rec.state == "migrating" {
            "completed"
        } else {
            "cancelled"
        };
        Ok(MigrationStatus {
            status: status.into(),
            transferred_bytes: bytes,
            total_bytes: bytes,
            message: None,
        })
    }

    fn finalize_migration_dst(
        &self,
        instance: &InstanceSpec,
        _info: &serde_json::Value,
        outcome: MigrationOutcome,
    ) -> Result<(), HvError> {
        let path = self.record_path(&instance.name)?;
        let pending = self.incoming_path(&instance.name)?;
        let _lock = self.locked()?;
        match outcome {
            MigrationOutcome::Success => {
                if let Some(rec) = Self::read_record(&pending)? {
                    Self::write_record(&path, &rec)?;
                    Self::remove(&pending)
                } else if Self::read_record(&path)?.is_some() {
                    // Finalized already: a re-run.
                    Ok(())
                } else {
                    Err(HvError::State {
                        instance: instance.name.clone(),
                        reason: "no incoming migration was accepted on this node".into(),
                    })
                }
            }
            MigrationOutcome::Abort => {
                Self::remove(&pending)?;
                Self::remove(&path)
            }
        }
    }

    fn finalize_migration_src(
        &self,
        instance: &InstanceSpec,
        outcome: MigrationOutcome,
        _mode: MigrationMode,
    ) -> Result<(), HvError> {
        let path = self.record_path(&instance.name)?;
        match outcome {
            MigrationOutcome::Success => Self::remove(&path),
            MigrationOutcome::Abort => match Self::read_record(&path)? {
                Some(mut rec) => {
                    rec.state = "running".into();
                    Self::write_record(&path, &rec)
                }
                None => Err(HvError::NotRunning {
                    instance: instance.name.clone(),
                }),
            },
        }
    }
}

fn info_of(rec: &FakeRecord) -> HvInstanceInfo {
    HvInstanceInfo {
        name: rec.name.clone(),
        state: rec.state.clone(),
        memory_mib: rec.memory,
        vcpus: rec.vcpus,
        cpu_time_secs: None,
    }
}

/// Test support shared with `backend::instance`'s tests: a temp node with a
/// 4096 MiB host (1024 MiB used by the host itself) and 4 CPUs.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::paths::Paths;
    use crate::rpc::proto::{InstanceSpec, Params};

    /// A virtual node in a fresh temp root; remove with [`cleanup`].
    pub(crate) fn node(tag: &str) -> Paths {
        let p = crate::paths::test_support::temp_node(
            &format!("hv-{tag}"),
            "node1",
            &["/proc", "/var/run/ganeti", "/var/lib/ganeti"],
        );
        let root = p.root().to_path_buf();
        crate::sys::fs::atomic_write(
            &root.join("proc/meminfo"),
            b"MemTotal: 4194304 kB\nMemFree: 1048576 kB\nMemAvailable: 3145728 kB\n",
            0o644,
        )
        .unwrap();
        crate::sys::fs::atomic_write(
            &root.join("proc/cpuinfo"),
            b"processor : 0\nphysical id : 0\nprocessor : 1\nphysical id : 0\nprocessor : 2\nphysical id : 0\nprocessor : 3\nphysical id : 0\n",
            0o644,
        )
        .unwrap();
        p
    }

    /// Removes what [`node`] made.
    pub(crate) fn cleanup(p: &Paths) {
        crate::paths::test_support::remove_temp_node(p);
    }

    /// An instance on `hypervisor` with `maxmem` MiB and 2 vCPUs.
    pub(crate) fn instance(name: &str, hypervisor: &str, maxmem: u64) -> InstanceSpec {
        let mut be = Params::new();
        be.insert("maxmem".into(), serde_json::json!(maxmem));
        be.insert("minmem".into(), serde_json::json!(maxmem));
        be.insert("vcpus".into(), serde_json::json!(2));
        InstanceSpec {
            name: name.into(),
            uuid: format!("uuid-{name}"),
            hypervisor: hypervisor.into(),
            hvparams: Params::new(),
            beparams: be,
            os: "noop".into(),
            osparams: Default::default(),
            osparams_private: Default::default(),
            nics: Vec::new(),
            disks: Vec::new(),
            network_port: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{cleanup, instance, node};
    use super::*;

    const SECS: Duration = Duration::from_secs(1);

    #[test]
    fn start_writes_a_record_and_stop_removes_it() {
        let p = node("fake-life");
        let hv = FakeHypervisor::new(&p);
        let i = instance("inst1", NAME, 512);
        hv.start(&i, &[], StartMode::Running).unwrap();
        let file = p.run_dir().join("fake-hypervisor/inst1");
        let rec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(
            rec,
            serde_json::json!({"name":"inst1","memory":512,"vcpus":2,"state":"running"})
        );
        // Idempotent start.
        hv.start(&i, &[], StartMode::Running).unwrap();
        assert_eq!(hv.list_instances(&Params::new()).unwrap(), vec!["inst1"]);
        let info = hv.instance_info("inst1", &Params::new()).unwrap().unwrap();
        assert_eq!((info.memory_mib, info.vcpus), (512, 2));
        hv.stop(&i, SECS).unwrap();
        assert!(!file.exists());
        hv.stop(&i, SECS).unwrap();
        assert!(hv.instance_info("inst1", &Params::new()).unwrap().is_none());
        assert!(hv
            .reboot(&i)
            .unwrap_err()
            .to_string()
            .contains("not running"));
        cleanup(&p);
    }

    #[test]
    fn a_reused_scan_still_sees_every_change() {
        let p = node("fake-scan");
        let hv = FakeHypervisor::new(&p);
        let names = |hv: &FakeHypervisor| hv.list_instances(&Params::new()).unwrap();
        hv.start(&instance("a1", NAME, 64), &[], StartMode::Running)
            .unwrap();
        std::thread::sleep(SETTLE + Duration::from_millis(20));
        // Settled: this scan is kept, and the next one reuses it.
        assert_eq!(names(&hv), vec!["a1"]);
        assert_eq!(names(&hv), vec!["a1"]);
        // A start right after the kept scan changes the directory.
        hv.start(&instance("a2", NAME, 64), &[], StartMode::Running)
            .unwrap();
        assert_eq!(names(&hv), vec!["a1", "a2"]);
        std::thread::sleep(SETTLE + Duration::from_millis(20));
        assert_eq!(names(&hv), vec!["a1", "a2"]);
        hv.stop(&instance("a1", NAME, 64), SECS).unwrap();
        assert_eq!(names(&hv), vec!["a2"]);
        // A state change rewrites the record by rename: seen too.
        std::thread::sleep(SETTLE + Duration::from_millis(20));
        assert_eq!(hv.records().unwrap()[0].state, "running");
        hv.migrate(
            &instance("a2", NAME, 64),
            &serde_json::Value::Null,
            "127.0.0.2",
            MigrationMode::Live,
        )
        .unwrap();
        assert_eq!(hv.records().unwrap()[0].state, "migrating");
        cleanup(&p);
    }

    #[test]
    fn paused_start_and_reboot() {
        let p = node("fake-paused");
        let hv = FakeHypervisor::new(&p);
        let i = instance("inst1", NAME, 128);
        hv.start(&i, &[], StartMode::Paused).unwrap();
        let state = |hv: &FakeHypervisor| {
            hv.instance_info("inst1", &Params::new())
                .unwrap()
                .unwrap()
                .state
        };
        assert_eq!(state(&hv), "paused");
        hv.reboot(&i).unwrap();
        assert_eq!(state(&hv), "running");
        cleanup(&p);
    }

    #[test]
    fn start_refuses_when_memory_is_short() {
        // 4096 MiB total, host uses 1024: 3072 free.
        let p = node("fake-mem");
        let hv = FakeHypervisor::new(&p);
        let ni = hv.node_info(&Params::new()).unwrap();
        assert_eq!(
            (
                ni.memory_total_mib,
                ni.memory_dom0_mib,
                ni.memory_free_mib,
                ni.cpu_total
            ),
            (4096, 1024, 3072, 4)
        );
        hv.start(&instance("a", NAME, 2048), &[], StartMode::Running)
            .unwrap();
        assert_eq!(hv.node_info(&Params::new()).unwrap().memory_free_mib, 1024);
        let err = hv
            .start(&instance("b", NAME, 1025), &[], StartMode::Running)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "instance b: not enough memory on node: needed 1025 MiB, free 1024 MiB"
        );
        assert!(!p.run_dir().join("fake-hypervisor/b").exists());
        hv.start(&instance("b", NAME, 1024), &[], StartMode::Running)
            .unwrap();
        // Ballooning up needs free memory too.
        let e = hv
            .balloon_memory(&instance("b", NAME, 1024), 1100)
            .unwrap_err();
        assert!(
            matches!(
                e,
                HvError::NotEnoughMemory {
                    needed_mib: 76,
                    free_mib: 0,
                    ..
                }
            ),
            "{e}"
        );
        hv.balloon_memory(&instance("b", NAME, 1024), 512).unwrap();
        assert_eq!(hv.node_info(&Params::new()).unwrap().memory_free_mib, 512);
        cleanup(&p);
    }

    #[test]
    fn bad_names_and_params_are_refused() {
        let p = node("fake-bad");
        let hv = FakeHypervisor::new(&p);
        let e = hv
            .start(&instance("../evil", NAME, 1), &[], StartMode::Running)
            .unwrap_err();
        assert!(matches!(e, HvError::InvalidInstanceName { .. }));
        let mut i = instance("ok", NAME, 1);
        i.beparams.remove("maxmem");
        let e = hv
            .start(&i, &[], StartMode::Running)
            .unwrap_err()
            .to_string();
        assert!(e.contains("maxmem"), "{e}");
        // A corrupt record is reported with its path, not skipped silently.
        crate::sys::fs::ensure_dir(hv.state_dir(), 0o755).unwrap();
        crate::sys::fs::atomic_write(&hv.state_dir().join("junk"), b"{", 0o644).unwrap();
        let e = hv.list_instances(&Params::new()).unwrap_err().to_string();
        assert!(e.contains("fake-hypervisor/junk"), "{e}");
        cleanup(&p);
    }

    #[test]
    fn migration_moves_the_record() {
        let src_p = node("fake-mig-src");
        let dst_p = node("fake-mig-dst");
        let (src, dst) = (FakeHypervisor::new(&src_p), FakeHypervisor::new(&dst_p));
        let i = instance("inst1", NAME, 256);
        src.start(&i, &[], StartMode::Running).unwrap();
        let info = src.migration_info(&i).unwrap();
        dst.accept_instance(&i, &info, "127.0.0.2", &[]).unwrap();
        // Pending: not listed yet, but its memory is promised.
        assert!(dst.list_instances(&Params::new()).unwrap().is_empty());
        assert_eq!(
            dst.node_info(&Params::new()).unwrap().memory_free_mib,
            3072 - 256
        );
        src.migrate(&i, &info, "127.0.0.2", MigrationMode::Live)
            .unwrap();
        assert_eq!(src.migration_status(&i).unwrap().status, "completed");
        dst.finalize_migration_dst(&i, &info, MigrationOutcome::Success)
            .unwrap();
        src.finalize_migration_src(&i, MigrationOutcome::Success, MigrationMode::Live)
            .unwrap();
        assert!(src.list_instances(&Params::new()).unwrap().is_empty());
        assert_eq!(dst.list_instances(&Params::new()).unwrap(), vec!["inst1"]);
        // Re-running the finalize is harmless; accepting a running one is not.
        dst.finalize_migration_dst(&i, &info, MigrationOutcome::Success)
            .unwrap();
        assert!(matches!(
            dst.accept_instance(&i, &info, "x", &[]).unwrap_err(),
            HvError::AlreadyRunning { .. }
        ));

        // Abort: back to src, nothing left on the target.
        let info = dst.migration_info(&i).unwrap();
        src.accept_instance(&i, &info, "127.0.0.1", &[]).unwrap();
        dst.migrate(&i, &info, "127.0.0.1", MigrationMode::NonLive)
            .unwrap();
        src.finalize_migration_dst(&i, &info, MigrationOutcome::Abort)
            .unwrap();
        dst.finalize_migration_src(&i, MigrationOutcome::Abort, MigrationMode::NonLive)
            .unwrap();
        assert!(src.list_instances(&Params::new()).unwrap().is_empty());
        assert_eq!(src.node_info(&Params::new()).unwrap().memory_free_mib, 3072);
        let st = dst.instance_info("inst1", &Params::new()).unwrap().unwrap();
        assert_eq!(st.state, "running");
        cleanup(&src_p);
        cleanup(&dst_p);
    }

    #[test]
    fn console_is_a_message() {
        let p = node("fake-cons");
        let c = FakeHypervisor::new(&p)
            .console(&instance("i", NAME, 1), "node1")
            .unwrap();
        assert_eq!(c.kind, "msg");
        assert_eq!(c.message.as_deref(), Some("fake hypervisor has no console"));
        cleanup(&p);
    }
}
