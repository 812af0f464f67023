//! Ports, timeouts, versions and limits. Units are part of the names.
//!
//! Values mirror Ganeti 3.0 (`_constants.py`, `constants.py`) where a
//! Ganeti client or file depends on them.

/// Our release, printed by `gnt-cluster version` and `--version`.
pub const RELEASE_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The Ganeti release whose interfaces we implement.
pub const GANETI_COMPAT_VERSION: &str = "3.0.2";
/// `config.data` format version written by us (Ganeti 3.0: 3000000).
pub const CONFIG_VERSION: u32 = 3_000_000;
/// Major/minor/revision of [`CONFIG_VERSION`].
pub const CONFIG_MAJOR: u32 = 3;
/// Minor part of [`CONFIG_VERSION`].
pub const CONFIG_MINOR: u32 = 0;
/// Internode protocol version (Ganeti 3.0: `PROTOCOL_VERSION = 3000000`).
pub const PROTOCOL_VERSION: u32 = 3_000_000;
/// OS API versions we support (design 2.1).
pub const OS_API_VERSIONS: [u32; 3] = [10, 15, 20];
/// Export format version (`EXPORT_VERSION`).
pub const EXPORT_VERSION: u32 = 0;

/// Node daemon RPC port.
pub const DEFAULT_NODED_PORT: u16 = 1811;
/// confd UDP port.
pub const DEFAULT_CONFD_PORT: u16 = 1814;
/// RAPI HTTPS port.
pub const DEFAULT_RAPI_PORT: u16 = 5080;

/// Default MAC prefix for generated NIC addresses.
pub const DEFAULT_MAC_PREFIX: &str = "aa:00:00";
/// Default master-candidate pool size.
pub const DEFAULT_CANDIDATE_POOL_SIZE: u32 = 10;
/// Default maximum number of jobs kept running at once (Ganeti 3.0).
pub const DEFAULT_MAX_RUNNING_JOBS: u32 = 20;
/// Default maximum number of jobs tracked at once (Ganeti 3.0).
pub const DEFAULT_MAX_TRACKED_JOBS: u32 = 25;
/// Default LUXI reply timeout for CLI clients.
pub const LUXI_DEFAULT_RWTO_SECS: u64 = 60;
/// Longest LUXI message we accept (bytes); larger frames are refused.
pub const LUXI_MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// How long a daemon-util stop waits for a daemon to exit before SIGKILL.
pub const DAEMON_STOP_TIMEOUT_SECS: u64 = 30;
/// Length of the confd HMAC key in bytes (hex-encoded in the file, as Ganeti's GenerateSecret).
pub const HMAC_KEY_BYTES: usize = 20;
/// Validity of a generated cluster certificate (Ganeti: 5 years).
pub const CERT_VALIDITY_DAYS: u32 = 5 * 365;

/// Where OS definitions are searched, in order (as on a real node).
pub const OS_SEARCH_PATH: &[&str] = &[
    "/srv/ganeti/os",
    "/usr/local/lib/ganeti/os",
    "/usr/lib/ganeti/os",
    "/usr/share/ganeti/os",
];
/// Where ExtStorage providers are searched, in order (as on a real node).
pub const ES_SEARCH_PATH: &[&str] = &[
    "/srv/ganeti/extstorage",
    "/usr/local/lib/ganeti/extstorage",
    "/usr/lib/ganeti/extstorage",
    "/usr/share/ganeti/extstorage",
];
/// Smallest LVM volume group `gnt-cluster init` accepts (MiB; Ganeti's `MIN_VG_SIZE`).
pub const MIN_VG_SIZE_MIB: u64 = 20480;
/// Hypervisors Ganeti knows.
pub const HYPERVISORS: &[&str] = &["chroot", "fake", "kvm", "lxc", "xen-hvm", "xen-pvm"];
/// Hypervisor enabled when `--enabled-hypervisors` is not given. Ganeti
/// defaults to xen-pvm; ganeti-rs targets KVM hosts.
pub const DEFAULT_ENABLED_HYPERVISOR: &str = "kvm";
/// Disk templates Ganeti knows.
pub const DISK_TEMPLATES: &[&str] = &[
    "blockdev",
    "diskless",
    "drbd",
    "ext",
    "file",
    "gluster",
    "plain",
    "rbd",
    "sharedfile",
];
/// Disk templates enabled when `--enabled-disk-templates` is not given (Ganeti's default).
pub const DEFAULT_ENABLED_DISK_TEMPLATES: &[&str] = &["drbd", "plain"];
/// Default master network device (Ganeti's `DEFAULT_BRIDGE`).
pub const DEFAULT_MASTER_NETDEV: &str = "xen-br0";
/// Default LVM volume group.
pub const DEFAULT_VG: &str = "xenvg";
/// Default DRBD usermode helper.
pub const DEFAULT_DRBD_HELPER: &str = "/bin/true";
/// How long a daemon started in the background may take to report ready.
pub const DAEMON_START_TIMEOUT_SECS: u64 = 60;
/// Cap on smol's blocking-thread pool in the daemons: with `mlockall` each
/// thread locks about 2 MB of stack (PLATFORM.md).
pub const DAEMON_BLOCKING_MAX_THREADS: usize = 4;
/// First lock acquisition attempt timeout of a job (`LOCK_ATTEMPTS_MINWAIT`);
/// also the lower bound of every attempt.
pub const LOCK_ATTEMPTS_MINWAIT_SECS: u64 = 5;
/// Upper bound of one lock acquisition attempt (`LOCK_ATTEMPTS_MAXWAIT`).
pub const LOCK_ATTEMPTS_MAXWAIT_SECS: u64 = 75;
/// Total time spent in timed attempts before a blocking acquire or a
/// deferral (`LOCK_ATTEMPTS_TIMEOUT`).
pub const LOCK_ATTEMPTS_TIMEOUT_SECS: u64 = 1800;

/// Job queue format version written to `queue/version` (Ganeti's `JOB_QUEUE_VERSION`).
pub const JOB_QUEUE_VERSION: u32 = 1;
/// Archived jobs per archive subdirectory (`archive/<id / this>/job-<id>`).
pub const JSTORE_JOBS_PER_ARCHIVE_DIRECTORY: u64 = 10_000;
/// Permission bits of job queue files (Ganeti's `JOB_QUEUE_FILES_PERMS`, 0640).
pub const JOB_QUEUE_FILES_MODE: u32 = 0o640;
/// Job and queue directories are created with these bits (0700).
pub const JOB_QUEUE_DIR_MODE: u32 = 0o700;
/// A journal checkpoint (flush the job files, empty `queue/journal`) is due
/// after this many records (see `jobs/journal.rs`).
pub const JOB_JOURNAL_CHECKPOINT_RECORDS: u64 = 4096;
/// ... or once the journal holds this many bytes.
pub const JOB_JOURNAL_CHECKPOINT_BYTES: u64 = 4 * 1024 * 1024;
/// Size to which `queue/journal` is preallocated with zeros; above
/// `JOB_JOURNAL_CHECKPOINT_BYTES` so that a batch rarely grows the file.
pub const JOB_JOURNAL_PREALLOC_BYTES: u64 = 8 * 1024 * 1024;
/// Stack of a job worker or committer thread (bytes). Locked in memory by
/// mlockall, so kept well below the 2 MiB default; logical units do no
/// deep recursion.
pub const JOB_WORKER_STACK_BYTES: usize = 512 * 1024;
