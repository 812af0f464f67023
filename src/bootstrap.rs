//! Cluster bootstrap on one node: `gnt-cluster init` and `destroy`.
//!
//! These run in the administrator's command before any daemon exists (or
//! after they are gone), as Ganeti's `bootstrap.py` does: they check the
//! node, build the first config through [`crate::config`], generate the
//! cluster secrets, and start or stop the daemons with `daemon-util`.
//! Nothing here runs inside a daemon, except the start-up vote of
//! [`master`], which masterd calls before it serves.

pub mod master;

use crate::cli::kv::{parse_ident_keyval, parse_keyval, IdentKv, KvError, KvValue};
use crate::config::bootstrap::InitParams;
use crate::config::objects::ConfigData;
use crate::config::objects::ParamMap;
use crate::config::params::{self, ParamFamily};
use crate::config::store::{load_file, ConfigStore};
use crate::config::ConfigError;
use crate::constants::{self, DEFAULT_NODED_PORT};
use crate::error::{ErrorKind, OpFailure};
use crate::net::hostname::{self, IpFamily};
use crate::paths::Paths;
use crate::sys::cmd::{Command, Runner};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What the administrator asked `gnt-cluster init` for, as typed.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    /// The cluster name; must resolve to the master IP.
    pub cluster_name: String,
    /// `--enabled-hypervisors` (comma-separated).
    pub enabled_hypervisors: Option<String>,
    /// `--enabled-disk-templates` (comma-separated).
    pub enabled_disk_templates: Option<String>,
    /// `--master-netdev`.
    pub master_netdev: Option<String>,
    /// `--master-netmask` (CIDR bits).
    pub master_netmask: Option<u32>,
    /// `-s`: the secondary IP.
    pub secondary_ip: Option<String>,
    /// `--primary-ip-version` (4 or 6).
    pub primary_ip_version: u8,
    /// `-H HV:k=v,…`, one entry per option given.
    pub hvparams: Vec<String>,
    /// `-B k=v,…`.
    pub beparams: Option<String>,
    /// `-N k=v,…`.
    pub nicparams: Option<String>,
    /// `-D TEMPLATE:k=v,…`, one entry per option given.
    pub diskparams: Vec<String>,
    /// `--node-parameters k=v,…`.
    pub ndparams: Option<String>,
    /// `--uid-pool` ranges.
    pub uid_pool: Option<String>,
    /// `--file-storage-dir`.
    pub file_storage_dir: Option<String>,
    /// `--shared-file-storage-dir`.
    pub shared_file_storage_dir: Option<String>,
    /// Add this node to the hosts file (`--no-etc-hosts` turns it off).
    pub modify_etc_hosts: bool,
    /// `--use-external-mip-script yes|no`.
    pub use_external_mip_script: Option<String>,
    /// `--mac-prefix`.
    pub mac_prefix: Option<String>,
    /// `-C/--candidate-pool-size`.
    pub candidate_pool_size: Option<u32>,
    /// `-I/--default-iallocator`.
    pub default_iallocator: Option<String>,
    /// `-g/--vg-name`.
    pub vg_name: Option<String>,
    /// `--drbd-usermode-helper`.
    pub drbd_helper: Option<String>,
    /// `--maintain-node-health yes|no`.
    pub maintain_node_health: Option<String>,
    /// `--prealloc-wipe-disks yes|no`.
    pub prealloc_wipe_disks: Option<String>,
    /// Start this node's daemons once the config is written.
    pub start_daemons: bool,
}

/// Why init or destroy refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// A bad option value; nothing was changed.
    #[error("{0}")]
    Invalid(String),
    /// The node is not in a state that allows the operation; nothing was changed.
    #[error("{0}")]
    State(String),
    /// Something about this host is wrong (name resolution, addresses, tools).
    #[error("{0}")]
    Environment(String),
    /// A name did not resolve.
    #[error(transparent)]
    Resolve(#[from] hostname::ResolveError),
    /// A malformed key=value option.
    #[error("invalid value for {option}")]
    Kv {
        /// Which option.
        option: &'static str,
        /// The parse error.
        #[source]
        source: KvError,
    },
    /// A parameter value is wrong for its key.
    #[error("{option}")]
    Param {
        /// Which option.
        option: String,
        /// What is wrong, naming the key.
        #[source]
        source: params::ParamError,
    },
    /// The config could not be built or written.
    #[error("cluster configuration")]
    Config(#[source] ConfigError),
    /// Generating secrets failed.
    #[error("generating cluster secrets")]
    Crypto(#[source] crate::crypto::CryptoError),
    /// A file step failed.
    #[error(transparent)]
    Fs(#[from] crate::sys::fs::FsError),
    /// A command (daemon-util, ip, vgs) failed.
    #[error("{what}")]
    Command {
        /// What it was for.
        what: String,
        /// The failure.
        #[source]
        source: crate::sys::cmd::CmdError,
    },
}

impl BootstrapError {
    /// The Ganeti error class.
    pub fn kind(&self) -> ErrorKind {
        match self {
            BootstrapError::Invalid(_) | BootstrapError::Kv { .. } => ErrorKind::Inval,
            BootstrapError::State(_) => ErrorKind::State,
            BootstrapError::Resolve(_) => ErrorKind::Resolver,
            BootstrapError::Config(e) if e.is_input_error() => ErrorKind::Inval,
            BootstrapError::Param { .. } => ErrorKind::Inval,
            _ => ErrorKind::Environ,
        }
    }

    /// As it crosses to the printer.
    pub fn to_failure(&self) -> OpFailure {
        OpFailure::from_error(self.kind(), self)
    }
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn yes_no(option: &str, v: &Option<String>, default: bool) -> Result<bool, BootstrapError> {
    match v.as_deref() {
        None => Ok(default),
        Some("yes" | "true") => Ok(true),
        Some("no" | "false") => Ok(false),
        Some(other) => Err(BootstrapError::Invalid(format!(
            "{option} takes yes or no, not {other:?}"
        ))),
    }
}

/// Parses a uid pool (`1000-1009,2000`) into inclusive ranges (design 2.1).
pub fn parse_uid_pool(text: &str) -> Result<Vec<(u32, u32)>, BootstrapError> {
    let mut out = Vec::new();
    for item in text
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let bad =
            || BootstrapError::Invalid(format!("invalid user-id range {item:?} in the uid pool"));
        let (lo, hi) = match item.split_once('-') {
            Some((a, b)) => (
                a.trim().parse::<u32>().map_err(|_| bad())?,
                b.trim().parse::<u32>().map_err(|_| bad())?,
            ),
            None => {
                let v = item.parse::<u32>().map_err(|_| bad())?;
                (v, v)
            }
        };
        if lo > hi {
            return Err(BootstrapError::Invalid(format!(
                "user-id range {item:?}: the lower bound is greater than the higher one"
            )));
        }
        out.push((lo, hi));
    }
    Ok(out)
}

/// Turns typed-in `key=value` items into parameter values of `family`
/// (`sub`: the hypervisor or disk template), checking each key and value.
fn typed_params(
    option: &str,
    family: ParamFamily,
    sub: Option<&str>,
    items: Vec<(String, KvValue)>,
) -> Result<ParamMap, BootstrapError> {
    if let Some((key, _)) = items.iter().find(|(_, v)| *v == KvValue::Reset) {
        return Err(BootstrapError::Invalid(format!(
            "{option}: cannot reset {key:?} at init"
        )));
    }
    let items: Vec<(String, Option<String>)> =
        items.into_iter().map(|(k, v)| (k, v.as_text())).collect();
    params::params_from_text(family, sub, &items).map_err(|source| BootstrapError::Param {
        option: option.to_string(),
        source,
    })
}

/// `key=value` text of one parameter family.
fn kv_params(
    option: &'static str,
    family: ParamFamily,
    text: &Option<String>,
) -> Result<ParamMap, BootstrapError> {
    let Some(text) = text else {
        return Ok(ParamMap::new());
    };
    let items = parse_keyval(text).map_err(|source| BootstrapError::Kv { option, source })?;
    typed_params(option, family, None, items)
}

/// `ID:key=value` options (one per hypervisor or disk template).
fn ident_params(
    option: &'static str,
    family: ParamFamily,
    known: &[&str],
    entries: &[String],
) -> Result<BTreeMap<String, ParamMap>, BootstrapError> {
    let mut out = BTreeMap::new();
    for e in entries {
        match parse_ident_keyval(e).map_err(|source| BootstrapError::Kv { option, source })? {
            IdentKv::Set(id, items) => {
                if !known.contains(&id.as_str()) {
                    return Err(BootstrapError::Invalid(format!(
                        "{option}: unknown {} {id:?}; known: {}",
                        if family == ParamFamily::Hv {
                            "hypervisor"
                        } else {
                            "disk template"
                        },
                        known.join(", ")
                    )));
                }
                if out.contains_key(&id) {
                    return Err(BootstrapError::Invalid(format!(
                        "{option}: {id} given more than once"
                    )));
                }
                let map = typed_params(option, family, Some(&id), items)?;
                out.insert(id, map);
            }
            IdentKv::Remove(id) | IdentKv::Reset(id) => {
                return Err(BootstrapError::Invalid(format!(
                    "{option}: cannot remove or reset {id:?} at init"
                )));
            }
        }
    }
    Ok(out)
}

fn check_mac_prefix(p: &str) -> Result<(), BootstrapError> {
    if crate::config::bootstrap::is_valid_mac_prefix(p) {
        Ok(())
    } else {
        Err(BootstrapError::Invalid(format!(
            "Invalid mac prefix given '{p}' (expected three lowercase hex octets like aa:00:00)"
        )))
    }
}

/// Ganeti's forbidden prefixes for file storage.
fn forbidden_storage_path(path: &Path) -> bool {
    let mut bad: Vec<String> = ["/boot", "/dev", "/etc", "/home", "/proc", "/root", "/sys"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for prefix in ["", "/usr", "/usr/local"] {
        for s in ["bin", "lib", "lib32", "lib64", "sbin"] {
            bad.push(format!("{prefix}/{s}"));
        }
    }
    bad.iter().any(|b| path.starts_with(b))
}

/// Checks a file-storage directory against `/etc/ganeti/file-storage-paths`
/// (Ganeti's rule: the file must list the directory or one of its parents),
/// then creates it (mode 0750).
fn prepare_file_storage(paths: &Paths, dir: &str) -> Result<(), BootstrapError> {
    let p = Path::new(dir);
    if !p.is_absolute() {
        return Err(BootstrapError::Invalid(format!(
            "File storage directory '{dir}' is not an absolute path"
        )));
    }
    if forbidden_storage_path(p) {
        return Err(BootstrapError::Invalid(format!(
            "Path '{dir}' uses a forbidden prefix"
        )));
    }
    let allowed_file = paths.file_storage_paths_file();
    let allowed: Vec<String> = std::fs::read_to_string(&allowed_file)
        .map(|t| {
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if allowed.is_empty() {
        return Err(BootstrapError::Invalid(format!(
            "No paths are valid or path file '{}' was not accessible; list the allowed file storage directories there, one per line",
            allowed_file.display()
        )));
    }
    if !allowed
        .iter()
        .any(|a| Path::new(a).is_absolute() && p.starts_with(a))
    {
        return Err(BootstrapError::Invalid(format!(
            "Path '{dir}' is not acceptable for file storage: it is not below any directory listed in {}",
            allowed_file.display()
        )));
    }
    crate::sys::fs::ensure_dir(p, 0o750)?;
    if !p.is_dir() {
        return Err(BootstrapError::Environment(format!(
            "The file storage directory '{dir}' is not a directory."
        )));
    }
    Ok(())
}

fn run(runner: &dyn Runner, what: &str, argv: Vec<String>) -> Result<String, BootstrapError> {
    runner
        .run(&Command::new(argv))
        .map(|o| o.stdout)
        .map_err(|source| BootstrapError::Command {
            what: what.to_string(),
            source,
        })
}

/// `ganeti daemon-util ACTION` through our own executable.
fn daemon_util(runner: &dyn Runner, action: &str) -> Result<String, BootstrapError> {
    daemon_util_args(runner, vec![action.to_string()])
}

/// `ganeti daemon-util ARGS…` through our own executable.
fn daemon_util_args(runner: &dyn Runner, args: Vec<String>) -> Result<String, BootstrapError> {
    let exe = std::env::current_exe()
        .map_err(|e| BootstrapError::Environment(format!("cannot find our own executable: {e}")))?;
    let what = format!("daemon-util {}", args.join(" "));
    let mut argv = vec![exe.display().to_string(), "daemon-util".into()];
    argv.extend(args);
    run(runner, &what, argv)
}

fn check_volume_group(runner: &dyn Runner, vg: &str) -> Result<(), BootstrapError> {
    let out = run(
        runner,
        "listing LVM volume groups (disable plain and drbd with --enabled-disk-templates if you do not use LVM)",
        ["vgs", "--noheadings", "--nosuffix", "--units=m", "-o", "vg_name,vg_size"].iter().map(|s| s.to_string()).collect(),
    )?;
    let size = out.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        (f.next()? == vg)
            .then(|| f.next().and_then(|s| s.parse::<f64>().ok()))
            .flatten()
    });
    match size {
        None => Err(BootstrapError::Environment(format!(
            "volume group '{vg}' missing"
        ))),
        #[allow(clippy::cast_precision_loss)]
        Some(s) if s < constants::MIN_VG_SIZE_MIB as f64 => {
            Err(BootstrapError::Environment(format!(
                "volume group '{vg}' too small ({s:.0} MiB required {} MiB)",
                constants::MIN_VG_SIZE_MIB
            )))
        }
        Some(_) => Ok(()),
    }
}

fn check_drbd_helper(helper: &str) -> Result<(), BootstrapError> {
    let file = "/sys/module/drbd/parameters/usermode_helper";
    let current = std::fs::read_to_string(file).map_err(|e| {
        BootstrapError::Environment(format!(
            "Error while checking drbd helper (disable drbd with --enabled-disk-templates if you are not using drbd): cannot read {file}: {e}"
        ))
    })?;
    if current.trim() != helper {
        return Err(BootstrapError::Environment(format!(
            "The DRBD usermode helper of the kernel is {:?}, not {helper:?}",
            current.trim()
        )));
    }
    Ok(())
}

/// Initialises a cluster with this node as master. Returns progress lines
/// for the administrator. On error nothing of the cluster is left on disk.
pub fn init_cluster(
    paths: &Paths,
    opts: &InitOptions,
    runner: &dyn Runner,
) -> Result<Vec<String>, BootstrapError> {
    let mut report = Vec::new();
    if paths.config_file().exists() {
        return Err(BootstrapError::State(format!(
            "Cluster is already initialised ({} exists)",
            paths.config_file().display()
        )));
    }
    if opts.cluster_name.is_empty() {
        return Err(BootstrapError::Invalid(
            "the cluster name must not be empty".into(),
        ));
    }
    let hypervisors = split_list(
        opts.enabled_hypervisors
            .as_deref()
            .unwrap_or(constants::DEFAULT_ENABLED_HYPERVISOR),
    );
    if hypervisors.is_empty() {
        return Err(BootstrapError::Invalid(
            "--enabled-hypervisors: at least one hypervisor is needed".into(),
        ));
    }
    for hv in &hypervisors {
        if !constants::HYPERVISORS.contains(&hv.as_str()) {
            return Err(BootstrapError::Invalid(format!(
                "Unknown hypervisor '{hv}'; known: {}",
                constants::HYPERVISORS.join(", ")
            )));
        }
    }
    let templates = match &opts.enabled_disk_templates {
        Some(t) => split_list(t),
        None => constants::DEFAULT_ENABLED_DISK_TEMPLATES
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    if templates.is_empty() {
        return Err(BootstrapError::Invalid(
            "--enabled-disk-templates: at least one disk template is needed".into(),
        ));
    }
    for t in &templates {
        if !constants::DISK_TEMPLATES.contains(&t.as_str()) {
            return Err(BootstrapError::Invalid(format!(
                "Cannot enable unknown disk template '{t}'; known: {}",
                constants::DISK_TEMPLATES.join(", ")
            )));
        }
    }
    let family = hostname::family_from_version(opts.primary_ip_version).ok_or_else(|| {
        BootstrapError::Invalid(format!(
            "Invalid primary ip version: {}.",
            opts.primary_ip_version
        ))
    })?;

    // This node: its name must resolve to one of its own addresses.
    let node_name = paths.hostname();
    let me = hostname::resolve(paths, &node_name, family)?;
    if me.ip.is_loopback() && !paths.is_virtual() {
        return Err(BootstrapError::Environment(format!(
            "This host's IP ({}) resolves to a loopback address. Please fix DNS or /etc/hosts.",
            me.ip
        )));
    }
    if !hostname::is_own_address(me.ip) {
        return Err(BootstrapError::Environment(format!(
            "Inconsistency: this host's name resolves to {}, but this ip address does not belong to this host",
            me.ip
        )));
    }
    let cluster = hostname::resolve(paths, &opts.cluster_name, family)?;
    if hostname::tcp_ping(cluster.ip, DEFAULT_NODED_PORT, Duration::from_secs(1)) {
        return Err(BootstrapError::State(format!(
            "Cluster IP already active ({} answers on port {DEFAULT_NODED_PORT})",
            cluster.ip
        )));
    }
    let secondary = match (&opts.secondary_ip, family) {
        (Some(s), _) => s.clone(),
        (None, IpFamily::V6) => return Err(BootstrapError::Invalid(
            "When using a IPv6 primary address, a valid IPv4 address must be given as secondary"
                .into(),
        )),
        (None, IpFamily::V4) => me.ip.to_string(),
    };
    let secondary_ip: IpAddr = secondary
        .parse()
        .ok()
        .filter(IpAddr::is_ipv4)
        .ok_or_else(|| {
            BootstrapError::Invalid(format!(
                "Secondary IP address ({secondary}) has to be a valid IPv4 address."
            ))
        })?;
    if !hostname::is_own_address(secondary_ip) {
        return Err(BootstrapError::Environment(format!(
            "You gave {secondary_ip} as secondary IP, but it does not belong to this host."
        )));
    }
    let netmask = opts.master_netmask.unwrap_or(family.max_netmask());
    if netmask == 0 || netmask > family.max_netmask() {
        return Err(BootstrapError::Invalid(format!(
            "CIDR netmask ({netmask}) not valid for IPv{}",
            family.version()
        )));
    }
    let mac_prefix = opts
        .mac_prefix
        .clone()
        .unwrap_or_else(|| constants::DEFAULT_MAC_PREFIX.to_string());
    check_mac_prefix(&mac_prefix)?;

    let lvm_enabled = templates.iter().any(|t| t == "plain" || t == "drbd");
    let vg_name = match (&opts.vg_name, lvm_enabled) {
        (Some(v), _) => Some(v.clone()),
        (None, true) => Some(constants::DEFAULT_VG.to_string()),
        (None, false) => None,
    };
    if let (Some(vg), true) = (&vg_name, lvm_enabled) {
        check_volume_group(runner, vg)?;
    }
    let drbd_enabled = templates.iter().any(|t| t == "drbd");
    let drbd_helper = opts
        .drbd_helper
        .clone()
        .unwrap_or_else(|| constants::DEFAULT_DRBD_HELPER.to_string());
    if drbd_enabled {
        check_drbd_helper(&drbd_helper)?;
    }

    let nicparams = kv_params("-N/--nic-parameters", ParamFamily::Nic, &opts.nicparams)?;
    let nic_mode = nicparams
        .get("mode")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let master_netdev = match (&opts.master_netdev, nic_mode.as_deref()) {
        (Some(d), _) => d.clone(),
        (None, Some("openvswitch")) => "switch1".to_string(),
        (None, _) => constants::DEFAULT_MASTER_NETDEV.to_string(),
    };
    if nic_mode.as_deref() != Some("openvswitch") {
        run(
            runner,
            &format!("Invalid master netdev given ({master_netdev})"),
            vec![
                "ip".into(),
                "link".into(),
                "show".into(),
                "dev".into(),
                master_netdev.clone(),
            ],
        )?;
    }

    let file_storage_dir = opts
        .file_storage_dir
        .clone()
        .unwrap_or_else(|| paths.default_file_storage_dir());
    let shared_file_storage_dir = opts
        .shared_file_storage_dir
        .clone()
        .unwrap_or_else(|| paths.default_shared_file_storage_dir());
    let uid_pool = match &opts.uid_pool {
        Some(t) => parse_uid_pool(t)?,
        None => Vec::new(),
    };

    let mut params = InitParams::new(
        &opts.cluster_name,
        &node_name,
        &cluster.ip.to_string(),
        &me.ip.to_string(),
        &master_netdev,
    );
    params.master_netmask = netmask;
    params.secondary_ip = Some(secondary_ip.to_string());
    params.primary_ip_family = family;
    params.enabled_hypervisors = hypervisors;
    params.enabled_disk_templates = templates.clone();
    params.hvparams = ident_params(
        "-H/--hypervisor-parameters",
        ParamFamily::Hv,
        constants::HYPERVISORS,
        &opts.hvparams,
    )?;
    params.beparams = kv_params("-B/--backend-parameters", ParamFamily::Be, &opts.beparams)?;
    params.nicparams = nicparams;
    params.ndparams = kv_params("--node-parameters", ParamFamily::Nd, &opts.ndparams)?;
    params.diskparams = ident_params(
        "-D/--disk-parameters",
        ParamFamily::Disk,
        constants::DISK_TEMPLATES,
        &opts.diskparams,
    )?;
    params.uid_pool = uid_pool;
    params.file_storage_dir = Some(file_storage_dir.clone());
    params.shared_file_storage_dir = Some(shared_file_storage_dir.clone());
    params.mac_prefix = mac_prefix;
    params.candidate_pool_size = opts
        .candidate_pool_size
        .unwrap_or(constants::DEFAULT_CANDIDATE_POOL_SIZE);
    params.default_iallocator = opts.default_iallocator.clone().unwrap_or_default();
    params.modify_etc_hosts = opts.modify_etc_hosts;
    params.use_external_mip_script = yes_no(
        "--use-external-mip-script",
        &opts.use_external_mip_script,
        false,
    )?;
    // Nodes join with a token over TLS (issue 4); SSH setup is never touched.
    params.modify_ssh_setup = false;
    params.volume_group_name = vg_name;
    params.drbd_helper = drbd_enabled.then_some(drbd_helper);
    params.maintain_node_health =
        yes_no("--maintain-node-health", &opts.maintain_node_health, false)?;
    params.prealloc_wipe_disks = yes_no("--prealloc-wipe-disks", &opts.prealloc_wipe_disks, false)?;
    // Everything the administrator typed is checked here, before any change.
    let data = ConfigData::initial(&params, crate::sys::time::now_secs())
        .map_err(BootstrapError::Config)?;
    if templates.iter().any(|t| t == "file") {
        prepare_file_storage(paths, &file_storage_dir)?;
    }
    if templates.iter().any(|t| t == "sharedfile") {
        prepare_file_storage(paths, &shared_file_storage_dir)?;
    }

    // From here on we change the node; undo on failure.
    let result = write_cluster_files(
        paths,
        data,
        &node_name,
        me.ip,
        opts.modify_etc_hosts,
        &mut report,
    );
    if let Err(e) = result {
        remove_cluster_files(paths);
        return Err(e);
    }
    if opts.start_daemons {
        daemon_util(runner, "start-all")?;
        report.push("Started this node's daemons.".into());
        if let Some(warning) = master_ip_on_self(paths, "start") {
            report.push(warning);
        }
    }
    report.push(format!(
        "Cluster {} initialised with master node {node_name}.",
        opts.cluster_name
    ));
    Ok(report)
}

fn write_cluster_files(
    paths: &Paths,
    data: ConfigData,
    node_name: &str,
    node_ip: IpAddr,
    modify_etc_hosts: bool,
    report: &mut Vec<String>,
) -> Result<(), BootstrapError> {
    use crate::sys::fs::ensure_dir;
    ensure_dir(&paths.data_dir(), 0o755)?;
    ensure_dir(&paths.queue_dir(), 0o700)?;
    ensure_dir(&paths.queue_archive_dir(), 0o700)?;
    ensure_dir(&paths.run_dir(), 0o775)?;
    ensure_dir(&paths.socket_dir(), 0o750)?;
    ensure_dir(&paths.log_dir(), 0o750)?;
    ensure_dir(&paths.conf_dir(), 0o755)?;
    crate::crypto::generate_cert(&paths.noded_cert(), crate::crypto::CERT_COMMON_NAME)
        .map_err(BootstrapError::Crypto)?;
    crate::crypto::generate_cert(&paths.rapi_cert(), crate::crypto::CERT_COMMON_NAME)
        .map_err(BootstrapError::Crypto)?;
    crate::crypto::generate_secret_file(&paths.confd_hmac_key()).map_err(BootstrapError::Crypto)?;
    crate::crypto::generate_secret_file(&paths.cluster_domain_secret())
        .map_err(BootstrapError::Crypto)?;
    report.push(
        "Generated the cluster certificate, RAPI certificate, confd HMAC key and domain secret."
            .into(),
    );
    if modify_etc_hosts {
        let hosts =
            hostname::virtual_hosts_file(paths).unwrap_or_else(|| PathBuf::from("/etc/hosts"));
        hostname::add_to_hosts_file(&hosts, node_name, node_ip)?;
    }
    ConfigStore::create(paths, data).map_err(BootstrapError::Config)?;
    report.push(format!(
        "Wrote {} and the ssconf files.",
        paths.config_file().display()
    ));
    Ok(())
}

/// The files that make this node part of a cluster.
fn cluster_files(paths: &Paths) -> Vec<PathBuf> {
    vec![
        paths.config_file(),
        paths.noded_cert(),
        paths.noded_client_cert(),
        paths.rapi_cert(),
        paths.confd_hmac_key(),
        paths.cluster_domain_secret(),
        paths.master_socket(),
        paths.query_socket(),
    ]
}

/// Removes this node's cluster files, ssconf and job queue (logs stay).
fn remove_cluster_files(paths: &Paths) {
    for f in cluster_files(paths) {
        let _ = std::fs::remove_file(f);
    }
    if let Ok(entries) = std::fs::read_dir(paths.data_dir()) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with("ssconf_") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let _ = std::fs::remove_dir_all(paths.queue_dir());
}

/// Destroys a cluster that has only its master node and no instances:
/// stops this node's daemons and removes the cluster files.
pub fn destroy_cluster(paths: &Paths, runner: &dyn Runner) -> Result<(), BootstrapError> {
    if !paths.config_file().exists() {
        return Err(BootstrapError::State(format!(
            "This node is not part of a cluster ({} does not exist)",
            paths.config_file().display()
        )));
    }
    let me = paths.hostname();
    let ss = |key: &str| {
        crate::ssconf::read(paths, key).map_err(|e| BootstrapError::State(crate::error::chain(&e)))
    };
    let master = ss("master_node")?;
    if master.trim() != me {
        return Err(BootstrapError::State(format!(
            "This node ({me}) is not the master node; run destroy on {}",
            master.trim()
        )));
    }
    let nodes = ss("node_list")?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    if nodes > 1 {
        return Err(BootstrapError::State(format!(
            "There are still {} node(s) in this cluster.",
            nodes - 1
        )));
    }
    let instances = ss("instance_list")?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    if instances > 0 {
        return Err(BootstrapError::State(format!(
            "There are still {instances} instance(s) in this cluster."
        )));
    }
    if let Some(warning) = master_ip_on_self(paths, "stop") {
        eprintln!("{warning}");
    }
    daemon_util(runner, "stop-all")?;
    remove_cluster_files(paths);
    Ok(())
}

/// Asks this node's own noded to add or remove the master IP (Ganeti's
/// init and destroy do the same); returns a warning when that failed.
fn master_ip_on_self(paths: &Paths, action: &str) -> Option<String> {
    let fail = |e: String| {
        Some(format!(
            "Could not {action} the master IP on this node: {e}"
        ))
    };
    let config = match load_file(&paths.config_file()) {
        Ok(c) => c,
        Err(e) => return fail(crate::error::chain(&e)),
    };
    let me = paths.hostname();
    let node = config.node_by_name(&me)?.1;
    let rpc = match crate::rpc::client::RpcClient::new(
        &paths.noded_cert(),
        crate::net::noded_port(paths),
    ) {
        Ok(r) => r,
        Err(e) => return fail(crate::error::chain(&e)),
    };
    let target = crate::rpc::Target::new(me.as_str(), node.primary_ip.as_str());
    let args = serde_json::to_value(master::master_ip_args(&config, action)).unwrap_or_default();
    match crate::rpc::NodeRpc::call_one(
        &rpc,
        crate::rpc::proto::MASTER_IP,
        &target,
        &args,
        crate::rpc::DEFAULT_TIMEOUT,
    ) {
        Ok(_) => None,
        Err(e) => fail(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_pool_ranges() {
        assert_eq!(
            parse_uid_pool("1000-1009, 2000").unwrap(),
            vec![(1000, 1009), (2000, 2000)]
        );
        assert!(parse_uid_pool("10-5")
            .unwrap_err()
            .to_string()
            .contains("greater"));
        assert!(parse_uid_pool("abc")
            .unwrap_err()
            .to_string()
            .contains("\"abc\""));
    }

    #[test]
    fn mac_prefix_checks() {
        check_mac_prefix("aa:00:00").unwrap();
        assert!(check_mac_prefix("AA:00:00").is_err());
        assert!(check_mac_prefix("aa:00").is_err());
        assert!(check_mac_prefix("zz:00:00").is_err());
    }

    #[test]
    fn storage_path_rules() {
        assert!(forbidden_storage_path(Path::new("/usr/lib/x")));
        assert!(forbidden_storage_path(Path::new("/etc")));
        assert!(!forbidden_storage_path(Path::new(
            "/srv/ganeti/file-storage"
        )));
    }

    #[test]
    fn lvm_check_reads_vgs_output() {
        let r = crate::sys::cmd::RecordingRunner::new();
        r.push_answer(Ok("  xenvg 40960.00\n  other 10.00\n"));
        check_volume_group(&r, "xenvg").unwrap();
        r.push_answer(Ok("  xenvg 100.00\n"));
        assert!(check_volume_group(&r, "xenvg")
            .unwrap_err()
            .to_string()
            .contains("too small"));
        r.push_answer(Ok("  other 40960.00\n"));
        assert!(check_volume_group(&r, "xenvg")
            .unwrap_err()
            .to_string()
            .contains("missing"));
    }
}
