//! Every on-disk path of a node, derived from one root.
//!
//! Production uses `/`. Ganeti's virtual-cluster convention
//! (`design-virtual-clusters`) lets many nodes share one machine:
//! `GANETI_ROOTDIR=BASE/<node>` and `GANETI_HOSTNAME=<node>` must be set
//! together, and the last component of the root must be the node name, so a
//! node can compute another node's root as `BASE/<other>`.
//!
//! Nothing else in the crate builds a path to a Ganeti file by hand.

use std::path::{Path, PathBuf};

/// Environment variable naming the node's root directory.
pub const ROOTDIR_ENV: &str = "GANETI_ROOTDIR";
/// Environment variable naming the node's own (virtual) host name.
pub const HOSTNAME_ENV: &str = "GANETI_HOSTNAME";

/// A bad virtual-cluster environment.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathsError {
    /// Only one of the two variables was set.
    #[error("both {ROOTDIR_ENV} and {HOSTNAME_ENV} must be set for a virtual cluster, or neither")]
    HalfVirtual,
    /// The root is relative.
    #[error("{ROOTDIR_ENV} must be an absolute path, got {0:?}")]
    RelativeRoot(String),
    /// The host name cannot be a path component.
    #[error("{HOSTNAME_ENV} {0:?} cannot be used as a directory name")]
    BadHostname(String),
    /// The root's last component is not the host name.
    #[error("last component of {ROOTDIR_ENV} ({root:?}) must be the host name {hostname:?}")]
    RootNameMismatch {
        /// The root given.
        root: String,
        /// The host name given.
        hostname: String,
    },
}

/// The node's root and name, and every path under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    root: PathBuf,
    virtual_hostname: Option<String>,
}

impl Default for Paths {
    fn default() -> Self {
        Self::production()
    }
}

impl Paths {
    /// Paths of a real node: root `/`, host name from the kernel.
    pub fn production() -> Self {
        Paths {
            root: PathBuf::from("/"),
            virtual_hostname: None,
        }
    }

    /// Reads `GANETI_ROOTDIR`/`GANETI_HOSTNAME` from the given lookup
    /// (the environment in production; a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, PathsError> {
        let root = get(ROOTDIR_ENV).filter(|s| !s.is_empty());
        let host = get(HOSTNAME_ENV).filter(|s| !s.is_empty());
        match (root, host) {
            (None, None) => Ok(Self::production()),
            (Some(root), Some(host)) => Self::virtual_node(Path::new(&root), &host),
            _ => Err(PathsError::HalfVirtual),
        }
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, PathsError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// A virtual node rooted at `root`, whose last component must be `hostname`.
    pub fn virtual_node(root: &Path, hostname: &str) -> Result<Self, PathsError> {
        if !root.is_absolute() {
            return Err(PathsError::RelativeRoot(root.display().to_string()));
        }
        check_hostname(hostname)?;
        let root = normalize(root);
        if root.file_name().and_then(|n| n.to_str()) != Some(hostname) {
            return Err(PathsError::RootNameMismatch {
                root: root.display().to_string(),
                hostname: hostname.to_string(),
            });
        }
        Ok(Paths {
            root,
            virtual_hostname: Some(hostname.to_string()),
        })
    }

    /// The root every path hangs from (`/` in production).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether this is a node of a virtual cluster.
    pub fn is_virtual(&self) -> bool {
        self.virtual_hostname.is_some()
    }

    /// The virtual host name, if any.
    pub fn virtual_hostname(&self) -> Option<&str> {
        self.virtual_hostname.as_deref()
    }

    /// The node's own name: the virtual one, else the kernel's host name.
    pub fn hostname(&self) -> String {
        match &self.virtual_hostname {
            Some(h) => h.clone(),
            None => crate::sys::proc::hostname(),
        }
    }

    /// The paths of another node of the same virtual cluster (`BASE/<node>`);
    /// on a real cluster every node has root `/`.
    pub fn for_node(&self, node: &str) -> Result<Paths, PathsError> {
        match self.root.parent() {
            Some(base) if self.is_virtual() => Self::virtual_node(&base.join(node), node),
            _ => Ok(Self::production()),
        }
    }

    /// `path` (absolute, as on a real node) under this node's root.
    pub fn under_root(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// Strips this node's root from `path`, giving the path as on a real node.
    pub fn strip_root(&self, path: &Path) -> Option<PathBuf> {
        let rel = path.strip_prefix(&self.root).ok()?;
        Some(Path::new("/").join(rel))
    }

    /// `/var/lib/ganeti`.
    pub fn data_dir(&self) -> PathBuf {
        self.under_root("/var/lib/ganeti")
    }
    /// `/var/lib/ganeti/config.data`.
    pub fn config_file(&self) -> PathBuf {
        self.data_dir().join("config.data")
    }
    /// `/var/lib/ganeti/ssconf_<key>`.
    pub fn ssconf_file(&self, key: &str) -> PathBuf {
        self.data_dir().join(format!("ssconf_{key}"))
    }
    /// `/var/lib/ganeti/server.pem`: the cluster certificate and key.
    pub fn noded_cert(&self) -> PathBuf {
        self.data_dir().join("server.pem")
    }
    /// `/var/lib/ganeti/client.pem`.
    pub fn noded_client_cert(&self) -> PathBuf {
        self.data_dir().join("client.pem")
    }
    /// `/var/lib/ganeti/hmac.key`: the confd HMAC key.
    pub fn confd_hmac_key(&self) -> PathBuf {
        self.data_dir().join("hmac.key")
    }
    /// `/var/lib/ganeti/rapi.pem`.
    pub fn rapi_cert(&self) -> PathBuf {
        self.data_dir().join("rapi.pem")
    }
    /// `/var/lib/ganeti/rapi/users`.
    pub fn rapi_users(&self) -> PathBuf {
        self.data_dir().join("rapi/users")
    }
    /// `/var/lib/ganeti/cluster-domain-secret`.
    pub fn cluster_domain_secret(&self) -> PathBuf {
        self.data_dir().join("cluster-domain-secret")
    }
    /// `/var/lib/ganeti/queue`.
    pub fn queue_dir(&self) -> PathBuf {
        self.data_dir().join("queue")
    }
    /// `/var/lib/ganeti/queue/archive`.
    pub fn queue_archive_dir(&self) -> PathBuf {
        self.queue_dir().join("archive")
    }
    /// `/var/lib/ganeti/queue/serial`: the last job id handed out.
    pub fn queue_serial_file(&self) -> PathBuf {
        self.queue_dir().join("serial")
    }
    /// `/var/lib/ganeti/queue/version`: the queue format version.
    pub fn queue_version_file(&self) -> PathBuf {
        self.queue_dir().join("version")
    }
    /// `/var/lib/ganeti/queue/journal`: the committer's write-ahead journal.
    pub fn queue_journal_file(&self) -> PathBuf {
        self.queue_dir().join("journal")
    }
    /// `/var/lib/ganeti/queue/drain`: present while submissions are refused.
    pub fn queue_drain_file(&self) -> PathBuf {
        self.queue_dir().join("drain")
    }
    /// `/var/lib/ganeti/queue/job-<id>`: a job not yet archived.
    pub fn queue_job_file(&self, job_id: u64) -> PathBuf {
        self.queue_dir().join(format!("job-{job_id}"))
    }
    /// `/var/lib/ganeti/queue/archive/<id / 10000>`: the archive directory
    /// holding job `job_id` (Ganeti's `jstore.GetArchiveDirectory`).
    pub fn queue_archive_subdir(&self, job_id: u64) -> PathBuf {
        self.queue_archive_dir()
            .join((job_id / crate::constants::JSTORE_JOBS_PER_ARCHIVE_DIRECTORY).to_string())
    }
    /// `/var/lib/ganeti/queue/archive/<id / 10000>/job-<id>`: an archived job.
    pub fn queue_archived_job_file(&self, job_id: u64) -> PathBuf {
        self.queue_archive_subdir(job_id)
            .join(format!("job-{job_id}"))
    }
    /// `/var/lib/ganeti/watcher.pause`.
    pub fn watcher_pause_file(&self) -> PathBuf {
        self.data_dir().join("watcher.pause")
    }
    /// `/var/run/ganeti`.
    pub fn run_dir(&self) -> PathBuf {
        self.under_root("/var/run/ganeti")
    }
    /// `/var/run/ganeti/socket`.
    pub fn socket_dir(&self) -> PathBuf {
        self.run_dir().join("socket")
    }
    /// `/var/run/ganeti/socket/ganeti-master`: the LUXI socket for writes.
    pub fn master_socket(&self) -> PathBuf {
        self.socket_dir().join("ganeti-master")
    }
    /// `/var/run/ganeti/socket/ganeti-query`: the LUXI socket Ganeti 3.0 clients use.
    pub fn query_socket(&self) -> PathBuf {
        self.socket_dir().join("ganeti-query")
    }
    /// `/var/run/ganeti/<daemon>.pid`.
    pub fn pid_file(&self, daemon: &str) -> PathBuf {
        self.run_dir().join(format!("{daemon}.pid"))
    }
    /// `/var/log/ganeti`.
    pub fn log_dir(&self) -> PathBuf {
        self.under_root("/var/log/ganeti")
    }
    /// `/var/log/ganeti/<name>.log`.
    pub fn log_file(&self, name: &str) -> PathBuf {
        self.log_dir().join(format!("{name}.log"))
    }
    /// `/var/lock`.
    pub fn lock_dir(&self) -> PathBuf {
        self.under_root("/var/lock")
    }
    /// `/etc/ganeti`.
    pub fn conf_dir(&self) -> PathBuf {
        self.under_root("/etc/ganeti")
    }
    /// `/etc/ganeti/hooks`.
    pub fn hooks_dir(&self) -> PathBuf {
        self.conf_dir().join("hooks")
    }
    /// `/etc/ganeti/file-storage-paths`: the allowed file-storage directories.
    pub fn file_storage_paths_file(&self) -> PathBuf {
        self.conf_dir().join("file-storage-paths")
    }
    /// `/srv/ganeti/file-storage`, the default file-storage directory (as on a real node).
    pub fn default_file_storage_dir(&self) -> String {
        self.virtual_string("/srv/ganeti/file-storage")
    }
    /// `/srv/ganeti/shared-file-storage` (as on a real node).
    pub fn default_shared_file_storage_dir(&self) -> String {
        self.virtual_string("/srv/ganeti/shared-file-storage")
    }
    /// `/srv/ganeti/export`.
    pub fn export_dir(&self) -> PathBuf {
        self.under_root("/srv/ganeti/export")
    }

    /// Ganeti prefixes the storage defaults with the node root in a virtual
    /// cluster (`vcluster.AddNodePrefix`), so they are stored that way.
    fn virtual_string(&self, path: &str) -> String {
        self.under_root(path).display().to_string()
    }
}

fn check_hostname(hostname: &str) -> Result<(), PathsError> {
    let ok = !hostname.is_empty()
        && hostname != "."
        && hostname != ".."
        && !hostname.contains('/')
        && !hostname.contains('\0');
    if ok {
        Ok(())
    } else {
        Err(PathsError::BadHostname(hostname.to_string()))
    }
}

/// Lexical normalisation: drops `.`, empty components and trailing slashes
/// and resolves `..` (like Python's `os.path.normpath`).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for comp in path.components() {
        match comp {
            std::path::Component::Normal(c) => out.push(c),
            std::path::Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Fixtures for the unit tests of node-side modules.
#[cfg(test)]
pub mod test_support {
    use super::Paths;

    /// A fresh virtual node `name` at `<tmp>/ganeti-<prefix>-<pid>/<name>`
    /// (an old one of the same name is removed first), with `dirs` (paths
    /// under its root, like `/var/lib/ganeti`) created.
    pub fn temp_node(prefix: &str, name: &str, dirs: &[&str]) -> Paths {
        let base = std::env::temp_dir().join(format!("ganeti-{prefix}-{}", std::process::id()));
        let root = base.join(name);
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("temp dir is writable");
        let paths = Paths::virtual_node(&root, name).expect("a root named after its node");
        for d in dirs {
            std::fs::create_dir_all(paths.under_root(d)).expect("temp dir is writable");
        }
        paths
    }

    /// Removes the temp directory holding `p`'s node (and its siblings).
    pub fn remove_temp_node(p: &Paths) {
        if let Some(base) = p.root().parent() {
            let _ = std::fs::remove_dir_all(base);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn production_root() {
        let p = Paths::from_lookup(env(&[])).unwrap();
        assert_eq!(
            p.config_file(),
            PathBuf::from("/var/lib/ganeti/config.data")
        );
        assert_eq!(
            p.master_socket(),
            PathBuf::from("/var/run/ganeti/socket/ganeti-master")
        );
    }

    #[test]
    fn virtual_node_paths_and_siblings() {
        let p = Paths::from_lookup(env(&[
            (ROOTDIR_ENV, "/tmp/vc//node1/"),
            (HOSTNAME_ENV, "node1"),
        ]))
        .unwrap();
        assert_eq!(
            p.config_file(),
            PathBuf::from("/tmp/vc/node1/var/lib/ganeti/config.data")
        );
        assert_eq!(p.hostname(), "node1");
        let other = p.for_node("node3").unwrap();
        assert_eq!(other.root(), Path::new("/tmp/vc/node3"));
        assert_eq!(
            p.strip_root(Path::new("/tmp/vc/node1/etc/ganeti/x")),
            Some(PathBuf::from("/etc/ganeti/x"))
        );
    }

    #[test]
    fn rejects_bad_environments() {
        assert_eq!(
            Paths::from_lookup(env(&[(ROOTDIR_ENV, "/x/n1")])),
            Err(PathsError::HalfVirtual)
        );
        assert!(matches!(
            Paths::from_lookup(env(&[(ROOTDIR_ENV, "x/n1"), (HOSTNAME_ENV, "n1")])),
            Err(PathsError::RelativeRoot(_))
        ));
        assert!(matches!(
            Paths::from_lookup(env(&[(ROOTDIR_ENV, "/x/n1"), (HOSTNAME_ENV, "n2")])),
            Err(PathsError::RootNameMismatch { .. })
        ));
        assert!(matches!(
            Paths::from_lookup(env(&[(ROOTDIR_ENV, "/x/a"), (HOSTNAME_ENV, "a/b")])),
            Err(PathsError::BadHostname(_))
        ));
    }
}
