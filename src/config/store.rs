//! [`ConfigStore`]: the only writer of `config.data`.
//!
//! Owned by masterd. Readers take an immutable snapshot (`Arc<ConfigData>`)
//! and never hold a lock over live data. A writer clones the snapshot,
//! changes the clone, and the store validates it, bumps `serial_no`, stamps
//! `mtime`, writes the file atomically (temp file, fsync, rename, fsync the
//! directory), regenerates the ssconf files and only then publishes the new
//! snapshot. Then it hands the new configuration to the installed
//! [`Replicator`] (masterd installs one that pushes `config.data` to the
//! master candidates and ssconf to every node over RPC, as Ganeti's
//! `ConfigWriter` does); this module itself knows nothing of RPC.

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use super::objects::ConfigData;
use super::validate::validate;
use super::ConfigError;
use crate::paths::Paths;
use crate::ssconf;
use crate::sys::fs;

/// Permission bits of `config.data` (Ganeti's `ensure-dirs`: 0640, owner
/// masterd, group confd, so confd can read it but nobody else).
pub const CONFIG_FILE_MODE: u32 = 0o640;
/// Permission bits of the data directory when we create it.
pub const DATA_DIR_MODE: u32 = 0o755;

/// Seconds since the epoch, as Ganeti stores `ctime`/`mtime`.
pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Reads, parses and validates a `config.data` file.
pub fn load_file(path: &Path) -> Result<ConfigData, ConfigError> {
    let bytes = fs::read(path).map_err(|source| ConfigError::Read { source })?;
    let data = ConfigData::from_json(&bytes, path)?;
    validate(&data).map_err(|errors| ConfigError::Invalid {
        context: path.display().to_string(),
        errors,
    })?;
    Ok(data)
}

/// Distributes a committed configuration to the other nodes.
///
/// Called by [`ConfigStore`] after every successful update (and by
/// [`ConfigStore::replicate_now`]), with the writer lock held, so copies
/// arrive in serial order. Failures never undo the update: they come back
/// as warnings, one line per problem, naming the node.
pub trait Replicator: Send + Sync {
    /// Pushes `cfg` (whose exact `config.data` bytes are `config_json`);
    /// returns warnings.
    fn replicate(&self, cfg: &ConfigData, config_json: &[u8]) -> Vec<String>;
}

/// The configuration of this cluster, and the only way to change it.
pub struct ConfigStore {
    paths: Paths,
    /// Serialises writers; held for a whole update (clone, write, publish,
    /// replicate).
    writer: Mutex<()>,
    /// The published snapshot; locked only to clone or swap the `Arc`.
    current: RwLock<Arc<ConfigData>>,
    /// Where committed configurations go; none until masterd installs one.
    replicator: RwLock<Option<Arc<dyn Replicator>>>,
}

impl std::fmt::Debug for ConfigStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigStore")
            .field("paths", &self.paths)
            .field("serial_no", &self.snapshot().serial_no)
            .finish_non_exhaustive()
    }
}

impl ConfigStore {
    /// Stores a brand-new configuration (from `gnt-cluster init`) and writes
    /// its ssconf files. Refuses if `config.data` already exists.
    pub fn create(paths: &Paths, data: ConfigData) -> Result<ConfigStore, ConfigError> {
        let path = paths.config_file();
        if path.exists() {
            return Err(ConfigError::Exists { path });
        }
        validate(&data).map_err(|errors| ConfigError::Invalid {
            context: "given to create".to_string(),
            errors,
        })?;
        fs::ensure_dir(&paths.data_dir(), DATA_DIR_MODE)
            .map_err(|source| ConfigError::Write { source })?;
        fs::atomic_write(&path, &data.to_json(), CONFIG_FILE_MODE)
            .map_err(|source| ConfigError::Write { source })?;
        ssconf::write_all(paths, &data).map_err(|source| ConfigError::Ssconf { source })?;
        Ok(ConfigStore {
            paths: paths.clone(),
            writer: Mutex::new(()),
            current: RwLock::new(Arc::new(data)),
            replicator: RwLock::new(None),
        })
    }

    /// Loads, parses and validates the existing `config.data`.
    pub fn open(paths: &Paths) -> Result<ConfigStore, ConfigError> {
        let data = load_file(&paths.config_file())?;
        Ok(ConfigStore {
            paths: paths.clone(),
            writer: Mutex::new(()),
            current: RwLock::new(Arc::new(data)),
            replicator: RwLock::new(None),
        })
    }

    /// The current configuration; cheap, never blocks on a writer's I/O.
    pub fn snapshot(&self) -> Arc<ConfigData> {
        // A poisoned lock only means a reader panicked while cloning an Arc;
        // the Arc inside is still whole.
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// Applies `f` to a copy of the configuration and commits it: validate,
    /// `serial_no + 1`, `mtime = now`, atomic write of `config.data`, ssconf
    /// regeneration, then the new snapshot is published. Returns what `f`
    /// returned. On any error the file, the ssconf files and the snapshot
    /// keep their previous content.
    ///
    /// Replication warnings (see [`Replicator`]) are logged; callers that
    /// want to show them use [`ConfigStore::update_reporting`].
    pub fn update<T>(
        &self,
        f: impl FnOnce(&mut ConfigData) -> Result<T, ConfigError>,
    ) -> Result<T, ConfigError> {
        self.update_reporting(f).map(|(out, _warnings)| out)
    }

    /// [`ConfigStore::update`], also returning the replication warnings
    /// (already logged) so a logical unit can pass them on as feedback.
    pub fn update_reporting<T>(
        &self,
        f: impl FnOnce(&mut ConfigData) -> Result<T, ConfigError>,
    ) -> Result<(T, Vec<String>), ConfigError> {
        // Poisoning means an earlier update panicked before publishing; the
        // published snapshot and the file are still consistent, so go on.
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.snapshot();
        let mut new = (*old).clone();
        let out = f(&mut new)?;
        validate(&new).map_err(|errors| ConfigError::Invalid {
            context: "after update".to_string(),
            errors,
        })?;
        new.serial_no = old.serial_no + 1;
        new.mtime = now_secs().max(old.mtime);
        let path = self.paths.config_file();
        let json = new.to_json();
        fs::atomic_write(&path, &json, CONFIG_FILE_MODE)
            .map_err(|source| ConfigError::Write { source })?;
        if let Err(source) = ssconf::write_all(&self.paths, &new) {
            // Put the previous state back so file, ssconf and snapshot agree.
            // If this fails too, the original error is still the one to report.
            if fs::atomic_write(&path, &old.to_json(), CONFIG_FILE_MODE).is_ok() {
                let _ = ssconf::write_all(&self.paths, &old);
            }
            return Err(ConfigError::Ssconf { source });
        }
        let new = Arc::new(new);
        match self.current.write() {
            Ok(mut g) => *g = Arc::clone(&new),
            Err(p) => *p.into_inner() = Arc::clone(&new),
        }
        let warnings = self.replicate_locked(&new, &json);
        Ok((out, warnings))
    }

    /// Installs the replicator every later update hands its result to.
    pub fn set_replicator(&self, replicator: Arc<dyn Replicator>) {
        match self.replicator.write() {
            Ok(mut g) => *g = Some(replicator),
            Err(p) => *p.into_inner() = Some(replicator),
        }
    }

    /// Pushes the current configuration again without changing it
    /// (`gnt-cluster redist-conf`); returns the warnings.
    pub fn replicate_now(&self) -> Vec<String> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let cfg = self.snapshot();
        let json = cfg.to_json();
        self.replicate_locked(&cfg, &json)
    }

    /// Runs the replicator, if any; the caller holds the writer lock.
    fn replicate_locked(&self, cfg: &ConfigData, json: &[u8]) -> Vec<String> {
        let replicator = match self.replicator.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let Some(replicator) = replicator else {
            return Vec::new();
        };
        let warnings = replicator.replicate(cfg, json);
        for w in &warnings {
            log::warn!("config distribution serial_no={}: {w}", cfg.serial_no);
        }
        warnings
    }

    /// The paths this store writes under.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::generated;
    use std::path::PathBuf;

    struct TempRoot(PathBuf);

    impl TempRoot {
        fn new(tag: &str) -> (TempRoot, Paths) {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let base = std::env::temp_dir().join(format!(
                "ganeti-store-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&base);
            let paths = Paths::virtual_node(&base.join("node1"), "node1").unwrap();
            (TempRoot(base), paths)
        }
    }

    impl Drop for TempRoot {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn create_open_and_refuse_overwrite() {
        let (_t, paths) = TempRoot::new("create");
        let d = generated(2, 3);
        let store = ConfigStore::create(&paths, d.clone()).unwrap();
        assert_eq!(*store.snapshot(), d);
        assert_eq!(fs::mode_of(&paths.config_file()).unwrap(), CONFIG_FILE_MODE);
        assert_eq!(ssconf::master_node(&paths).unwrap(), "node1.example.com");
        let err = ConfigStore::create(&paths, d.clone()).unwrap_err();
        assert!(matches!(err, ConfigError::Exists { .. }));
        let reopened = ConfigStore::open(&paths).unwrap();
        assert_eq!(*reopened.snapshot(), d);
    }

    #[test]
    fn update_bumps_serial_and_rewrites_ssconf() {
        let (_t, paths) = TempRoot::new("update");
        let store = ConfigStore::create(&paths, generated(2, 1)).unwrap();
        let before = store.snapshot();
        let name = store
            .update(|d| {
                d.cluster.cluster_name = "renamed.example.com".into();
                Ok(d.cluster.cluster_name.clone())
            })
            .unwrap();
        assert_eq!(name, "renamed.example.com");
        let after = store.snapshot();
        assert_eq!(after.serial_no, before.serial_no + 1);
        assert!(after.mtime >= before.mtime);
        assert_eq!(
            ssconf::read(&paths, "cluster_name").unwrap(),
            "renamed.example.com"
        );
        let on_disk = load_file(&paths.config_file()).unwrap();
        assert_eq!(on_disk, *after);
        // The old snapshot is untouched.
        assert_eq!(before.cluster.cluster_name, "cluster.example.com");
        store.update(|_| Ok(())).unwrap();
        assert_eq!(store.snapshot().serial_no, before.serial_no + 2);
    }

    #[test]
    fn failed_update_changes_nothing() {
        let (_t, paths) = TempRoot::new("fail");
        let store = ConfigStore::create(&paths, generated(2, 2)).unwrap();
        let file_before = std::fs::read(paths.config_file()).unwrap();
        let snap_before = store.snapshot();

        // The closure refuses.
        let err = store
            .update(|d| {
                d.cluster.cluster_name = "x".into();
                Err::<(), _>(ConfigError::Update {
                    reason: "no".into(),
                })
            })
            .unwrap_err();
        assert!(matches!(err, ConfigError::Update { .. }));

        // The change does not validate.
        let err = store
            .update(|d| {
                d.cluster.master_node = "00000000-0000-4000-8000-000000000000".into();
                Ok(())
            })
            .unwrap_err();
        assert!(err.to_string().contains("master_node"), "{err}");

        assert_eq!(std::fs::read(paths.config_file()).unwrap(), file_before);
        assert_eq!(store.snapshot(), snap_before);
        assert_eq!(
            ssconf::read(&paths, "cluster_name").unwrap(),
            "cluster.example.com"
        );
    }

    #[test]
    fn open_reports_invalid_file() {
        let (_t, paths) = TempRoot::new("invalid");
        let mut d = generated(1, 1);
        let ik = d.instances.keys().next().unwrap().clone();
        d.instances.get_mut(&ik).unwrap().primary_node = "nowhere".into();
        fs::ensure_dir(&paths.data_dir(), 0o755).unwrap();
        fs::atomic_write(&paths.config_file(), &d.to_json(), 0o640).unwrap();
        let err = ConfigStore::open(&paths).unwrap_err();
        let msg = crate::error::chain(&err);
        assert!(
            msg.contains("primary_node") && msg.contains("inst1"),
            "{msg}"
        );
    }

    /// Records what it was handed and always complains.
    struct Recorder(Mutex<Vec<(u64, Vec<u8>)>>);

    impl Replicator for Recorder {
        fn replicate(&self, cfg: &ConfigData, config_json: &[u8]) -> Vec<String> {
            self.0
                .lock()
                .unwrap()
                .push((cfg.serial_no, config_json.to_vec()));
            vec!["node2: unreachable".into()]
        }
    }

    #[test]
    fn replicator_gets_each_commit_and_never_undoes_it() {
        let (_t, paths) = TempRoot::new("replicate");
        let store = ConfigStore::create(&paths, generated(2, 0)).unwrap();
        let rec = Arc::new(Recorder(Mutex::new(Vec::new())));
        store.set_replicator(rec.clone());
        let (_, warnings) = store
            .update_reporting(|d| {
                d.cluster.cluster_name = "renamed.example.com".into();
                Ok(())
            })
            .unwrap();
        assert_eq!(warnings, vec!["node2: unreachable"]);
        let serial = store.snapshot().serial_no;
        // A failed update is not replicated.
        let _ = store.update(|_| {
            Err::<(), _>(ConfigError::Update {
                reason: "no".into(),
            })
        });
        assert_eq!(store.replicate_now(), vec!["node2: unreachable"]);
        let seen = rec.0.lock().unwrap().clone();
        let on_disk = std::fs::read(paths.config_file()).unwrap();
        assert_eq!(seen, vec![(serial, on_disk.clone()), (serial, on_disk)]);
        assert_eq!(store.snapshot().cluster.cluster_name, "renamed.example.com");
    }
}
