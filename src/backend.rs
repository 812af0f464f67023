//! The node side of each RPC procedure: what `ganeti-noded` does when the
//! master asks.
//!
//! Called only by `daemons::noded`, which parses the arguments and turns
//! [`BackendError`]s into RPC error replies. Every function takes the node's
//! [`Paths`] and plain arguments: nothing here reads `config.data` or the
//! ssconf files (the RPC payload carries what is needed), and external
//! programs run through a [`Runner`] so tests can record them. One
//! exception, as in Ganeti: the KVM hypervisor reads the ssconf `uid_pool`
//! value itself when an instance uses `security_model=pool`
//! ([`crate::hv::uidpool`]).
//!
//! Files the master pushes are limited to an allow-list ([`AllowList`]):
//! the cluster's secrets and config in the data directory, files under
//! `/etc/ganeti` (but not hooks, nor `file-storage-paths`, which Ganeti
//! never redistributes), and whatever the node's own
//! `/etc/ganeti/redist-files` names. A request naming any other path is
//! refused as a whole, before anything is written.

pub mod blockdev;
pub mod export;
pub mod instance;
pub mod os;
pub mod transfer;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::paths::Paths;
use crate::rpc::b64;
use crate::rpc::proto::{CommandOutput, FileUpload, MasterIpArgs, NodeInfo};
use crate::sys::cmd::{self, Command, Runner};
use crate::sys::fs::{atomic_write, ensure_dir};

/// Most output [`run_command`] returns (1 MiB); the rest is dropped.
pub const COMMAND_OUTPUT_CAP_BYTES: usize = 1024 * 1024;
/// Longest timeout [`run_command`] accepts (a day).
pub const COMMAND_MAX_TIMEOUT_SECS: f64 = 86_400.0;
/// The admin's list of extra files to redistribute, one absolute path a line.
pub const REDIST_FILES_LIST: &str = "/etc/ganeti/redist-files";
/// The external master IP script (`use_external_mip_script`).
pub const EXTERNAL_MASTER_SETUP_SCRIPT: &str = "/etc/ganeti/scripts/master-ip-setup";
/// Daemons the `daemons` procedure may start or stop.
pub const REMOTE_MANAGED_DAEMONS: &[&str] = &["ganeti-masterd", "ganeti-confd", "ganeti-rapi"];
/// Mode of `ssconf_*` files (Ganeti's `SS_FILE_PERMS`).
pub const SSCONF_FILE_MODE: u32 = 0o444;
/// Largest ssconf file accepted. Ganeti's readers stop at 128 KiB
/// (`_MAX_SIZE`), but the master writes its own ssconf files whatever their
/// size (`ssconf_instance_list` of a 10,000-instance cluster is ~200 KB),
/// and every node must hold the same files; this bound only stops absurd
/// requests.
pub const SSCONF_MAX_BYTES: usize = 16 * 1024 * 1024;

/// Data-directory files (production paths) the master may push or remove.
const DATA_FILES: &[&str] = &[
    "/var/lib/ganeti/config.data",
    "/var/lib/ganeti/server.pem",
    "/var/lib/ganeti/hmac.key",
    "/var/lib/ganeti/cluster-domain-secret",
    "/var/lib/ganeti/rapi.pem",
    "/var/lib/ganeti/rapi/users",
    "/var/lib/ganeti/known_hosts",
];
/// Files that [`leave_cluster`] removes (with every `ssconf_*`).
const CLUSTER_FILES: &[&str] = &[
    "/var/lib/ganeti/server.pem",
    "/var/lib/ganeti/hmac.key",
    "/var/lib/ganeti/cluster-domain-secret",
    "/var/lib/ganeti/rapi.pem",
    "/var/lib/ganeti/config.data",
];

/// A node-side operation that failed; the message goes back to the caller.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A path is not one the master may write or remove.
    #[error("refusing {path:?}: {reason}")]
    NotAllowed {
        /// The production path asked for.
        path: String,
        /// Why it is refused.
        reason: String,
    },
    /// An argument is unusable.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// Which argument.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file step failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file (under the node's root).
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An atomic write or directory creation failed.
    #[error(transparent)]
    Fs(#[from] crate::sys::fs::FsError),
    /// An external program failed.
    #[error(transparent)]
    Command(#[from] cmd::CmdError),
    /// A command ran past its timeout and was killed.
    #[error("command killed after {secs} s timeout; output so far: {output}")]
    Timeout {
        /// The timeout.
        secs: f64,
        /// What it wrote before.
        output: String,
    },
}

fn invalid(what: impl Into<String>, reason: impl Into<String>) -> BackendError {
    BackendError::Invalid {
        what: what.into(),
        reason: reason.into(),
    }
}

fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> BackendError + 'a {
    move |source| BackendError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Checks that `path` is absolute and plain (no `.`, `..`), returning its
/// components as strings.
fn plain_components(path: &str) -> Result<Vec<&str>, BackendError> {
    let not_allowed = |reason: &str| BackendError::NotAllowed {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    if !path.starts_with('/') {
        return Err(not_allowed("not an absolute path"));
    }
    if path.contains('\0') {
        return Err(not_allowed("contains a NUL byte"));
    }
    let mut parts = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::RootDir => {}
            Component::Normal(s) => {
                parts.push(s.to_str().ok_or_else(|| not_allowed("not valid UTF-8"))?)
            }
            Component::ParentDir | Component::CurDir | Component::Prefix(_) => {
                return Err(not_allowed("contains \".\" or \"..\" components"))
            }
        }
    }
    // `Path::components` drops a `.` in the middle silently; refuse it too.
    if path.split('/').any(|p| p == "." || p == "..") {
        return Err(not_allowed("contains \".\" or \"..\" components"));
    }
    if parts.is_empty() {
        return Err(not_allowed("names the root directory"));
    }
    Ok(parts)
}

/// Which production paths the master may write or remove on this node.
#[derive(Debug, Clone)]
pub struct AllowList {
    paths: Paths,
    /// Paths from the node's own `/etc/ganeti/redist-files`.
    redist: Vec<String>,
}

impl AllowList {
    /// The allow-list of the node under `paths`; reads its local
    /// `/etc/ganeti/redist-files` (missing: no extra files).
    pub fn load(paths: &Paths) -> Result<AllowList, BackendError> {
        let list = paths.under_root(REDIST_FILES_LIST);
        let redist = match std::fs::read_to_string(&list) {
            Ok(text) => text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string)
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err("reading", &list)(e)),
        };
        Ok(AllowList {
            paths: paths.clone(),
            redist,
        })
    }

    /// Checks one production path; returns where it lives under the node's
    /// root.
    pub fn check(&self, path: &str) -> Result<PathBuf, BackendError> {
        let parts = plain_components(path)?;
        let normal = format!("/{}", parts.join("/"));
        let refuse = |reason: &str| BackendError::NotAllowed {
            path: path.to_string(),
            reason: reason.to_string(),
        };
        let allowed = if normal == "/etc/ganeti/file-storage-paths" {
            return Err(refuse(
                "file-storage-paths is set by each node's administrator, never redistributed",
            ));
        } else if normal == "/etc/ganeti/hooks" || normal.starts_with("/etc/ganeti/hooks/") {
            return Err(refuse("hook scripts are not redistributed"));
        } else {
            DATA_FILES.contains(&normal.as_str())
                || normal == REDIST_FILES_LIST
                || normal == EXTERNAL_MASTER_SETUP_SCRIPT
                || (normal.starts_with("/etc/ganeti/") && parts.len() > 2)
                || self.redist.contains(&normal)
        };
        if !allowed {
            return Err(refuse("not a file the cluster distributes"));
        }
        let local = self.paths.under_root(&normal);
        // Only regular files are replaced: never a directory, and never
        // through a symlink the node's administrator put there.
        match std::fs::symlink_metadata(&local) {
            Ok(m) if !m.file_type().is_file() => Err(refuse("exists and is not a regular file")),
            Ok(_) => Ok(local),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(local),
            Err(e) => Err(io_err("stat", &local)(e)),
        }
    }
}

/// Writes the uploaded files: every path is checked against the
/// allow-list and every content decoded before the first is written; each
/// is then written atomically with its mode.
pub fn upload_files(paths: &Paths, files: &[FileUpload]) -> Result<(), BackendError> {
    let allow = AllowList::load(paths)?;
    let mut ready = Vec::with_capacity(files.len());
    for f in files {
        let local = allow.check(&f.path)?;
        if f.mode & !0o777 != 0 {
            return Err(invalid(
                format!("mode of {}", f.path),
                format!("{:o} has bits beyond 0777", f.mode),
            ));
        }
        let data =
            b64::decode(&f.data).map_err(|e| invalid(format!("content of {}", f.path), e))?;
        ready.push((local, data, f.mode));
    }
    for (local, data, mode) in ready {
        if let Some(dir) = local.parent() {
            ensure_dir(dir, 0o750)?;
        }
        atomic_write(&local, &data, mode)?;
        log::info!("wrote file={} mode={mode:04o}", local.display());
    }
    Ok(())
}

/// Removes files (allow-listed paths; all checked first). Missing files
/// are fine.
pub fn remove_files(paths: &Paths, files: &[String]) -> Result<(), BackendError> {
    let allow = AllowList::load(paths)?;
    let locals = files
        .iter()
        .map(|p| allow.check(p))
        .collect::<Result<Vec<_>, _>>()?;
    for local in locals {
        remove_if_present(&local)?;
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> Result<(), BackendError> {
    match std::fs::remove_file(path) {
        Ok(()) => {
            log::info!("removed file={}", path.display());
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("removing", path)(e)),
    }
}

/// Replaces the node's `ssconf_*` files with `files` (key → content):
/// every key is checked with `is_known_key` (Ganeti's key list, which the
/// caller owns) before anything is written; each file is written
/// atomically; `ssconf_*` files not in the set are removed.
pub fn write_ssconf(
    paths: &Paths,
    files: &BTreeMap<String, String>,
    is_known_key: &dyn Fn(&str) -> bool,
) -> Result<(), BackendError> {
    for (key, content) in files {
        let plain = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !plain || !is_known_key(key) {
            return Err(invalid(
                "ssconf key",
                format!("{key:?} is not an ssconf key"),
            ));
        }
        if content.len() > SSCONF_MAX_BYTES {
            return Err(invalid(
                format!("ssconf_{key}"),
                format!("{} bytes, more than {SSCONF_MAX_BYTES}", content.len()),
            ));
        }
    }
    for (key, content) in files {
        let path = paths.ssconf_file(key);
        let unchanged = std::fs::read(&path).is_ok_and(|old| old == content.as_bytes());
        if !unchanged {
            atomic_write(&path, content.as_bytes(), SSCONF_FILE_MODE)?;
        }
    }
    for (key, path) in ssconf_files(paths)? {
        if !files.contains_key(&key) {
            remove_if_present(&path)?;
        }
    }
    Ok(())
}

/// The node's `ssconf_*` files: key → path.
fn ssconf_files(paths: &Paths) -> Result<Vec<(String, PathBuf)>, BackendError> {
    let dir = paths.data_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("listing", &dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err("listing", &dir))?;
        let name = entry.file_name();
        if let Some(key) = name.to_str().and_then(|n| n.strip_prefix("ssconf_")) {
            out.push((key.to_string(), entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// SHA-1 of `data`, lowercase hex.
pub fn sha1_hex(data: &[u8]) -> String {
    use sha1::Digest;
    sha1::Sha1::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Facts for `gnt-cluster verify`: the clock, the expiry of `server.pem`,
/// SHA-1 of the requested files (keyed by production path; `None` when
/// missing) and of every `ssconf_*` file.
pub fn node_info(
    paths: &Paths,
    name: &str,
    checksum_paths: &[String],
) -> Result<NodeInfo, BackendError> {
    let mut checksums = BTreeMap::new();
    for p in checksum_paths {
        plain_components(p)?;
        let local = paths.under_root(p);
        let sum = match std::fs::read(&local) {
            Ok(data) => Some(sha1_hex(&data)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err("reading", &local)(e)),
        };
        checksums.insert(p.clone(), sum);
    }
    let mut ssconf = BTreeMap::new();
    for (key, path) in ssconf_files(paths)? {
        let data = std::fs::read(&path).map_err(io_err("reading", &path))?;
        ssconf.insert(key, sha1_hex(&data));
    }
    let cert_not_after = match std::fs::read_to_string(paths.noded_cert()) {
        Ok(pem) => pem_certificates(&pem)
            .first()
            .and_then(|der| cert_not_after(der)),
        Err(_) => None,
    };
    Ok(NodeInfo {
        name: name.to_string(),
        protocol: crate::rpc::PROTOCOL_VERSION,
        software: crate::constants::RELEASE_VERSION.to_string(),
        time: crate::sys::time::now_secs(),
        cert_not_after,
        checksums,
        ssconf,
    })
}

/// The DER certificates in PEM text, in order.
pub fn pem_certificates(pem: &str) -> Vec<Vec<u8>> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start + BEGIN.len()..];
        let Some(end) = after.find(END) else { break };
        let body: String = after[..end].split_whitespace().collect();
        if let Ok(der) = b64::decode(&body) {
            out.push(der);
        }
        rest = &after[end + END.len()..];
    }
    out
}

/// One DER element: (tag, content, rest after it).
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// `notAfter` of a DER X.509 certificate, seconds since the epoch.
pub fn cert_not_after(der: &[u8]) -> Option<f64> {
    const SEQUENCE: u8 = 0x30;
    let (tag, cert, _) = der_element(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = der_element(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs;
    // [0] version is optional (absent in Ganeti's X.509 v1 certificates).
    if rest.first() == Some(&0xa0) {
        rest = der_element(rest)?.2;
    }
    // serialNumber, signature, issuer.
    for _ in 0..3 {
        rest = der_element(rest)?.2;
    }
    let (tag, validity, _) = der_element(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    let (_, _, after_not_before) = der_element(validity)?;
    let (tag, time, _) = der_element(after_not_before)?;
    parse_asn1_time(tag, std::str::from_utf8(time).ok()?)
}

/// UTCTime (`YYMMDDHHMMSSZ`, tag 0x17) or GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`, tag 0x18), UTC only.
fn parse_asn1_time(tag: u8, text: &str) -> Option<f64> {
    let digits = text.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match (tag, digits.len()) {
        (0x17, 12) => {
            let yy: i64 = digits[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        (0x18, 14) => (digits[..4].parse().ok()?, &digits[4..]),
        _ => return None,
    };
    let field = |i: usize| rest[i..i + 2].parse::<i64>().ok();
    let (month, day, hour, min, sec) = (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    #[allow(clippy::cast_precision_loss)] // seconds since 1970 fit an f64 exactly
    Some((days * 86_400 + hour * 3600 + min * 60 + sec) as f64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Runs `command` with `/bin/sh -c` (`gnt-cluster command`): combined
/// output (at most [`COMMAND_OUTPUT_CAP_BYTES`]) and exit code; a command
/// still running after `timeout_secs` is killed and reported as an error.
pub fn run_command(command: &str, timeout_secs: f64) -> Result<CommandOutput, BackendError> {
    if !timeout_secs.is_finite() || timeout_secs <= 0.0 || timeout_secs > COMMAND_MAX_TIMEOUT_SECS {
        return Err(invalid(
            "timeout_secs",
            format!("{timeout_secs} is not between 0 and {COMMAND_MAX_TIMEOUT_SECS}"),
        ));
    }
    let out = cmd::run_capped(
        &Command::new(["/bin/sh", "-c", command]),
        std::time::Duration::from_secs_f64(timeout_secs),
        COMMAND_OUTPUT_CAP_BYTES,
    )?;
    let mut text = String::from_utf8_lossy(&out.output).into_owned();
    if out.truncated {
        text.push_str(&format!(
            "\n[output truncated at {COMMAND_OUTPUT_CAP_BYTES} bytes]\n"
        ));
    }
    if out.timed_out {
        return Err(BackendError::Timeout {
            secs: timeout_secs,
            output: text,
        });
    }
    Ok(CommandOutput {
        exit_code: out.exit_code,
        output: text,
    })
}

/// What `gnt-node powercycle` does on this node, chosen once when noded
/// starts (`--powercycle-action`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PowercycleAction {
    /// Hard reboot: sysrq `b`, then `reboot -f -n`.
    Reboot,
    /// Append `powercycle <unix time>` to this file (test clusters).
    Record(PathBuf),
}

impl PowercycleAction {
    /// Parses the flag's value: `reboot` or `record:PATH` (absolute).
    pub fn parse(text: &str) -> Result<PowercycleAction, BackendError> {
        if text == "reboot" {
            return Ok(PowercycleAction::Reboot);
        }
        match text.strip_prefix("record:") {
            Some(p) if p.starts_with('/') => Ok(PowercycleAction::Record(PathBuf::from(p))),
            _ => Err(invalid(
                "--powercycle-action",
                format!("{text:?}; expected \"reboot\" or \"record:/ABSOLUTE/PATH\""),
            )),
        }
    }

    /// Performs the action. For [`PowercycleAction::Reboot`] this does not
    /// return on success.
    pub fn perform(&self, paths: &Paths, runner: &dyn Runner) -> Result<(), BackendError> {
        match self {
            PowercycleAction::Reboot => {
                // Like Ganeti's hypervisor PowercycleNode: sysrq first (no
                // sync, no unmount), the reboot command if that did nothing.
                let trigger = paths.under_root("/proc/sysrq-trigger");
                let sysrq = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&trigger)
                    .and_then(|mut f| std::io::Write::write_all(&mut f, b"b"));
                if let Err(e) = sysrq {
                    log::warn!("powercycle: writing {}: {e}", trigger.display());
                }
                runner.run(&Command::new(["reboot", "-f", "-n"]))?;
                Ok(())
            }
            PowercycleAction::Record(path) => {
                use std::io::Write;
                let line = format!("powercycle {}\n", crate::sys::time::now_secs().floor());
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .and_then(|mut f| f.write_all(line.as_bytes()))
                    .map_err(io_err("appending to", path))
            }
        }
    }
}

/// Whether `action` is `"start"` or `"stop"`.
fn start_or_stop(action: &str) -> Result<&'static str, BackendError> {
    match action {
        "start" => Ok("start"),
        "stop" => Ok("stop"),
        other => Err(invalid(
            "action",
            format!("{other:?}; expected start or stop"),
        )),
    }
}

/// Adds (`start`) or removes (`stop`) the cluster's master IP: through the
/// node's `/etc/ganeti/scripts/master-ip-setup` when `external_script`,
/// else with `ip address add|del` (what Ganeti's default script does,
/// without its ping checks).
pub fn master_ip(
    paths: &Paths,
    args: &MasterIpArgs,
    runner: &dyn Runner,
) -> Result<(), BackendError> {
    let action = start_or_stop(&args.action)?;
    let ip: std::net::IpAddr = args
        .ip
        .parse()
        .map_err(|_| invalid("ip", format!("{:?} is not an IP address", args.ip)))?;
    let max_prefix = match (args.family, ip) {
        (4, std::net::IpAddr::V4(_)) => 32,
        (6, std::net::IpAddr::V6(_)) => 128,
        _ => {
            return Err(invalid(
                "family",
                format!("{} does not match the address {ip}", args.family),
            ))
        }
    };
    if args.netmask > max_prefix {
        return Err(invalid(
            "netmask",
            format!("{} is longer than {max_prefix}", args.netmask),
        ));
    }
    let netdev_ok = !args.netdev.is_empty()
        && args.netdev.len() < 16
        && args
            .netdev
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:@".contains(c));
    if !netdev_ok {
        return Err(invalid(
            "netdev",
            format!("{:?} is not a network device name", args.netdev),
        ));
    }
    let command = if args.external_script {
        let script = paths.under_root(EXTERNAL_MASTER_SETUP_SCRIPT);
        Command::new([script.display().to_string(), action.to_string()])
            .env("MASTER_NETDEV", &args.netdev)
            .env("MASTER_IP", ip.to_string())
            .env("MASTER_NETMASK", args.netmask.to_string())
            .env("CLUSTER_IP_VERSION", args.family.to_string())
    } else {
        let verb = if action == "start" { "add" } else { "del" };
        Command::new([
            "ip".to_string(),
            "address".to_string(),
            verb.to_string(),
            format!("{ip}/{}", args.netmask),
            "dev".to_string(),
            args.netdev.clone(),
            "label".to_string(),
            format!("{}:0", args.netdev),
        ])
    };
    runner.run(&command)?;
    log::info!("master ip {action} ip={ip} netdev={}", args.netdev);
    Ok(())
}

/// Starts or stops daemons of this node through `exe daemon-util`
/// (`exe` is this program). Only [`REMOTE_MANAGED_DAEMONS`] may be named;
/// all names are checked before the first is acted on.
pub fn daemons(
    exe: &Path,
    action: &str,
    names: &[String],
    runner: &dyn Runner,
) -> Result<(), BackendError> {
    let action = start_or_stop(action)?;
    for n in names {
        if !REMOTE_MANAGED_DAEMONS.contains(&n.as_str()) {
            return Err(invalid(
                "daemons",
                format!("{n:?} is not one of {}", REMOTE_MANAGED_DAEMONS.join(", ")),
            ));
        }
    }
    for n in names {
        runner.run(&Command::new([
            exe.display().to_string(),
            "daemon-util".to_string(),
            action.to_string(),
            n.clone(),
        ]))?;
    }
    Ok(())
}

/// Removes the cluster's files from this node (`gnt-node remove`): the
/// certificate, keys, config and every `ssconf_*` file. Missing files are
/// fine. The caller stops noded afterwards.
pub fn leave_cluster(paths: &Paths) -> Result<(), BackendError> {
    for f in CLUSTER_FILES {
        remove_if_present(&paths.under_root(f))?;
    }
    for (_, path) in ssconf_files(paths)? {
        remove_if_present(&path)?;
    }
    Ok(())
}

/// Runs an instance, block-device or OS procedure
/// ([`crate::rpc::proto::INSTANCE_PROCEDURES`]); `None` if `procedure` is
/// none of them.
pub fn dispatch_instance_procedure(
    paths: &Paths,
    procedure: &str,
    args: serde_json::Value,
) -> Option<Result<serde_json::Value, String>> {
    use crate::rpc::proto::{
        BLOCKDEV_PROCEDURES, INSTANCE_PROCEDURES, OS_PROCEDURES, TRANSFER_PROCEDURES,
    };
    if !INSTANCE_PROCEDURES.contains(&procedure) {
        return None;
    }
    let handled = if BLOCKDEV_PROCEDURES.contains(&procedure) {
        blockdev::handle(paths, procedure, args)
    } else if OS_PROCEDURES.contains(&procedure) {
        os::handle(paths, procedure, args)
    } else if TRANSFER_PROCEDURES.contains(&procedure) {
        transfer::handle(paths, procedure, args)
    } else {
        instance::handle(paths, procedure, args)
    };
    Some(handled.unwrap_or_else(|| {
        Err(format!(
            "procedure {procedure:?} is not built yet on this node"
        ))
    }))
}

/// The arguments of `procedure` as `T`; the error names the procedure.
/// Shared by the instance, block-device, OS, transfer and export handlers.
fn decode<T: serde::de::DeserializeOwned>(
    procedure: &str,
    args: serde_json::Value,
) -> Result<T, String> {
    serde_json::from_value(args).map_err(|e| format!("invalid arguments for {procedure}: {e}"))
}

/// A handler's answer as JSON.
fn to_value<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, String> {
    serde_json::to_value(v).map_err(|e| format!("cannot encode the reply: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::cmd::RecordingRunner;
    use std::os::unix::fs::PermissionsExt;

    fn node(tag: &str) -> Paths {
        crate::paths::test_support::temp_node(
            &format!("backend-{tag}"),
            "node1",
            &["/var/lib/ganeti", "/etc/ganeti/hooks"],
        )
    }

    fn cleanup(p: &Paths) {
        crate::paths::test_support::remove_temp_node(p);
    }

    fn upload(path: &str, data: &str, mode: u32) -> FileUpload {
        FileUpload {
            path: path.into(),
            data: b64::encode(data.as_bytes()),
            mode,
        }
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn every_instance_procedure_reaches_the_module_that_serves_it() {
        use crate::rpc::proto;
        let p = node("route");
        for procedure in proto::INSTANCE_PROCEDURES {
            // Junk arguments: a served procedure refuses them by name; one
            // routed to the wrong module would answer "not built yet".
            let out = dispatch_instance_procedure(&p, procedure, serde_json::json!({"junk": 1}))
                .unwrap_or_else(|| panic!("{procedure} not dispatched"));
            let not_built = matches!(&out, Err(m) if m.contains("not built yet"));
            assert!(!not_built, "{procedure}: {out:?}");
        }
        assert!(dispatch_instance_procedure(&p, proto::VERSION, serde_json::json!({})).is_none());
        cleanup(&p);
    }

    #[test]
    fn allow_list_refuses_before_any_write() {
        let p = node("allow");
        let bad = [
            "/var/lib/ganeti/../../../etc/shadow",
            "/etc/shadow",
            "/etc/ganeti/hooks/instance-add-post.d/evil",
            "/etc/ganeti/file-storage-paths",
            "/var/lib/ganeti/queue/job-1",
            "var/lib/ganeti/config.data",
            "/etc/ganeti/./x",
            "/etc/ganeti",
        ];
        for b in bad {
            let files = [
                upload("/var/lib/ganeti/config.data", "{}", 0o640),
                upload(b, "pwned", 0o644),
            ];
            let err = upload_files(&p, &files).unwrap_err().to_string();
            assert!(err.contains(b), "{b}: {err}");
            assert!(
                !p.config_file().exists(),
                "{b}: nothing may be written when one path is refused"
            );
        }
        assert!(remove_files(&p, &["/etc/passwd".into()]).is_err());
        cleanup(&p);
    }

    #[test]
    fn uploads_are_written_with_their_modes() {
        let p = node("upload");
        let files = [
            upload("/var/lib/ganeti/server.pem", "cert", 0o600),
            upload("/var/lib/ganeti/rapi/users", "admin pw write", 0o640),
            upload("/etc/ganeti/scripts/master-ip-setup", "#!/bin/sh\n", 0o755),
            upload("/etc/ganeti/extra.conf", "x=1", 0o644),
        ];
        upload_files(&p, &files).unwrap();
        assert_eq!(std::fs::read_to_string(p.noded_cert()).unwrap(), "cert");
        assert_eq!(mode(&p.noded_cert()), 0o600);
        assert_eq!(mode(&p.rapi_users()), 0o640);
        assert_eq!(mode(&p.under_root(EXTERNAL_MASTER_SETUP_SCRIPT)), 0o755);
        // Overwrite keeps atomicity: no temp files left behind.
        upload_files(&p, &[upload("/var/lib/ganeti/server.pem", "new", 0o400)]).unwrap();
        assert_eq!(std::fs::read_to_string(p.noded_cert()).unwrap(), "new");
        assert_eq!(mode(&p.noded_cert()), 0o400);
        let leftovers: Vec<_> = std::fs::read_dir(p.data_dir())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
        // Bad base64 and setuid modes are refused.
        let mut bad = upload("/var/lib/ganeti/hmac.key", "", 0o600);
        bad.data = "!!!".into();
        assert!(upload_files(&p, &[bad]).is_err());
        let suid = upload("/etc/ganeti/x", "", 0o4755);
        assert!(upload_files(&p, &[suid])
            .unwrap_err()
            .to_string()
            .contains("mode"));
        // A symlink planted at an allowed path is not followed.
        std::os::unix::fs::symlink("/etc/passwd", p.under_root("/etc/ganeti/link")).unwrap();
        assert!(upload_files(&p, &[upload("/etc/ganeti/link", "x", 0o644)]).is_err());
        remove_files(
            &p,
            &[
                "/var/lib/ganeti/server.pem".into(),
                "/var/lib/ganeti/hmac.key".into(),
            ],
        )
        .unwrap();
        assert!(!p.noded_cert().exists());
        cleanup(&p);
    }

    #[test]
    fn redist_files_list_extends_the_allow_list() {
        let p = node("redist");
        std::fs::create_dir_all(p.under_root("/etc/default")).unwrap();
        let target = upload("/etc/default/ganeti", "OPTS=1", 0o644);
        assert!(upload_files(&p, std::slice::from_ref(&target)).is_err());
        upload_files(
            &p,
            &[upload(
                REDIST_FILES_LIST,
                "# extra\n/etc/default/ganeti\n",
                0o644,
            )],
        )
        .unwrap();
        upload_files(&p, &[target]).unwrap();
        assert!(p.under_root("/etc/default/ganeti").exists());
        cleanup(&p);
    }

    #[test]
    fn ssconf_is_replaced_as_a_set() {
        let p = node("ssconf");
        let known = |k: &str| ["cluster_name", "master_node", "node_list"].contains(&k);
        let mut files = BTreeMap::new();
        files.insert("cluster_name".to_string(), "c.example.com\n".to_string());
        files.insert("node_list".to_string(), "a\nb\n".to_string());
        write_ssconf(&p, &files, &known).unwrap();
        assert_eq!(
            std::fs::read_to_string(p.ssconf_file("node_list")).unwrap(),
            "a\nb\n"
        );
        assert_eq!(mode(&p.ssconf_file("node_list")), SSCONF_FILE_MODE);
        files.remove("node_list");
        files.insert("master_node".to_string(), "a\n".to_string());
        write_ssconf(&p, &files, &known).unwrap();
        assert!(!p.ssconf_file("node_list").exists(), "stale file removed");
        assert!(p.ssconf_file("master_node").exists());
        let mut bad = files.clone();
        bad.insert("../config.data".to_string(), "x".to_string());
        assert!(write_ssconf(&p, &bad, &known).is_err());
        let mut unknown = files.clone();
        unknown.insert("frob".to_string(), "x".to_string());
        unknown.insert("cluster_name".to_string(), "changed\n".to_string());
        let err = write_ssconf(&p, &unknown, &known).unwrap_err().to_string();
        assert!(err.contains("frob"), "{err}");
        assert_eq!(
            std::fs::read_to_string(p.ssconf_file("cluster_name")).unwrap(),
            "c.example.com\n",
            "nothing written when a key is refused"
        );
        let info = node_info(
            &p,
            "node1",
            &["/var/lib/ganeti/ssconf_master_node".into(), "/nope".into()],
        )
        .unwrap();
        assert_eq!(info.ssconf.len(), 2);
        assert_eq!(info.ssconf["master_node"], sha1_hex(b"a\n"));
        assert_eq!(
            info.checksums["/var/lib/ganeti/ssconf_master_node"].as_deref(),
            Some(sha1_hex(b"a\n").as_str())
        );
        assert_eq!(info.checksums["/nope"], None);
        assert!(node_info(&p, "node1", &["/../etc/shadow".into()]).is_err());
        leave_cluster(&p).unwrap();
        assert!(ssconf_files(&p).unwrap().is_empty());
        cleanup(&p);
    }

    #[test]
    fn sha1_matches_known_vector() {
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn certificate_expiry_is_read_from_der() {
        let p = node("cert");
        crate::crypto::generate_cert(&p.noded_cert(), "ganeti.example.com").unwrap();
        let info = node_info(&p, "node1", &[]).unwrap();
        let expected = info.time + f64::from(crate::constants::CERT_VALIDITY_DAYS) * 86_400.0;
        let got = info.cert_not_after.unwrap();
        assert!((got - expected).abs() < 3600.0, "{got} vs {expected}");
        // Both time encodings, and garbage.
        assert_eq!(parse_asn1_time(0x17, "700101000000Z"), Some(0.0));
        assert_eq!(
            parse_asn1_time(0x18, "20380119031408Z"),
            Some(2_147_483_648.0)
        );
        assert_eq!(parse_asn1_time(0x17, "7001010000Z"), None);
        assert_eq!(cert_not_after(&[0x30, 0x82, 0xff]), None);
        assert_eq!(cert_not_after(&[]), None);
        cleanup(&p);
    }

    #[test]
    fn run_command_reports_output_exit_code_and_timeout() {
        let out = run_command("echo hello; echo oops >&2; exit 3", 30.0).unwrap();
        assert_eq!(out.exit_code, 3);
        assert_eq!(out.output, "hello\noops\n");
        let err = run_command("echo begun; sleep 100", 0.5)
            .unwrap_err()
            .to_string();
        assert!(err.contains("timeout") && err.contains("begun"), "{err}");
        assert!(run_command("true", -1.0).is_err());
        assert!(run_command("true", f64::NAN).is_err());
    }

    #[test]
    fn powercycle_action_parses_and_records() {
        let p = node("powercycle");
        assert_eq!(
            PowercycleAction::parse("reboot").unwrap(),
            PowercycleAction::Reboot
        );
        assert!(PowercycleAction::parse("explode").is_err());
        assert!(PowercycleAction::parse("record:relative").is_err());
        let log = p.root().join("powercycle.log");
        let action = PowercycleAction::parse(&format!("record:{}", log.display())).unwrap();
        let runner = RecordingRunner::new();
        action.perform(&p, &runner).unwrap();
        action.perform(&p, &runner).unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.lines().all(|l| l.starts_with("powercycle ")));
        assert!(runner.calls().is_empty());
        cleanup(&p);
    }

    fn mip(action: &str, external: bool) -> MasterIpArgs {
        MasterIpArgs {
            action: action.into(),
            ip: "192.0.2.10".into(),
            netmask: 24,
            netdev: "br0".into(),
            family: 4,
            external_script: external,
        }
    }

    #[test]
    fn master_ip_builtin_uses_ip_address() {
        let p = node("mip");
        let r = RecordingRunner::new();
        master_ip(&p, &mip("start", false), &r).unwrap();
        master_ip(&p, &mip("stop", false), &r).unwrap();
        let calls = r.calls();
        assert_eq!(
            calls[0].argv,
            [
                "ip",
                "address",
                "add",
                "192.0.2.10/24",
                "dev",
                "br0",
                "label",
                "br0:0"
            ]
        );
        assert_eq!(calls[1].argv[2], "del");
        assert!(master_ip(&p, &mip("restart", false), &r).is_err());
        let mut bad = mip("start", false);
        bad.netdev = "br0; rm -rf /".into();
        assert!(master_ip(&p, &bad, &r).is_err());
        bad = mip("start", false);
        bad.family = 6;
        assert!(master_ip(&p, &bad, &r).is_err());
        assert_eq!(r.calls().len(), 2);
        cleanup(&p);
    }

    #[test]
    fn master_ip_external_script_gets_ganetis_environment() {
        let p = node("mipext");
        let out = p.root().join("mip.out");
        let script = format!(
            "#!/bin/sh\necho \"$1 $MASTER_NETDEV $MASTER_IP $MASTER_NETMASK $CLUSTER_IP_VERSION\" >> {}\n",
            out.display()
        );
        upload_files(&p, &[upload(EXTERNAL_MASTER_SETUP_SCRIPT, &script, 0o755)]).unwrap();
        master_ip(&p, &mip("start", true), &cmd::RealRunner).unwrap();
        master_ip(&p, &mip("stop", true), &cmd::RealRunner).unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "start br0 192.0.2.10 24 4\nstop br0 192.0.2.10 24 4\n"
        );
        cleanup(&p);
    }

    #[test]
    fn daemons_only_the_managed_ones() {
        let r = RecordingRunner::new();
        let exe = Path::new("/usr/lib/ganeti-rs/ganeti");
        daemons(
            exe,
            "start",
            &["ganeti-confd".into(), "ganeti-rapi".into()],
            &r,
        )
        .unwrap();
        assert_eq!(
            r.calls()[0].argv,
            [
                "/usr/lib/ganeti-rs/ganeti",
                "daemon-util",
                "start",
                "ganeti-confd"
            ]
        );
        assert!(daemons(exe, "start", &["ganeti-rapi".into(), "sshd".into()], &r).is_err());
        assert!(daemons(exe, "kill", &["ganeti-rapi".into()], &r).is_err());
        assert_eq!(r.calls().len(), 2, "nothing run for refused requests");
    }
}
