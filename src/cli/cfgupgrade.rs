//! `cfgupgrade`: upgrades the `config.data` of a Ganeti 2.7 … 2.16 cluster
//! to the 3.0 format, in place, with a backup.
//!
//! Run by the administrator on the master node while the daemons are
//! stopped, like Ganeti's tool of the same name (`man cfgupgrade`). The
//! document transformations live in [`crate::config::upgrade`]; this module
//! does the file handling: read, back up, atomic write with the original
//! permissions. On `--dry-run` or any error nothing on disk changes.
//!
//! Not done here, unlike Ganeti's tool: generating missing certificates and
//! keys (`gnt-cluster renew-crypto` does that), writing `file-storage-paths`,
//! moving the pre-2.4 RAPI users file and removing the watcher state file.

use crate::config::upgrade::{self, UpgradeError, WARNING_PREFIX};
use crate::sys::fs::{self as sysfs, FsError};
use argh::FromArgs;
use serde_json::Value;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

/// Name of the configuration file inside the data directory.
const CONFIG_FILE_NAME: &str = "config.data";
/// Name of the ssconf file naming the master node.
const SSCONF_MASTER_NODE: &str = "ssconf_master_node";
/// Exit status on success.
const EXIT_OK: u8 = 0;
/// Exit status on any failure.
const EXIT_FAILURE: u8 = 1;

/// Upgrade the cluster configuration (config.data) to the Ganeti 3.0 format.
#[derive(FromArgs, Debug, PartialEq, Eq)]
struct CfgUpgradeArgs {
    /// convert the configuration in this data directory instead of the
    /// default (/var/lib/ganeti under the node's root)
    #[argh(option)]
    path: Option<PathBuf>,
    /// do the conversion and the checks, but write nothing
    #[argh(switch)]
    dry_run: bool,
    /// do not ask for confirmation
    #[argh(switch, short = 'f')]
    force: bool,
    /// do not verify the configuration after the upgrade
    #[argh(switch)]
    no_verify: bool,
    /// report each upgrade action
    #[argh(switch, short = 'v')]
    verbose: bool,
    /// report everything, including file operations
    #[argh(switch, short = 'd')]
    debug: bool,
    /// do not abort if this host is not the master node named in ssconf
    #[argh(switch)]
    ignore_hostname: bool,
    /// downgrade to the previous stable version (not supported)
    #[argh(switch)]
    downgrade: bool,
}

/// What went wrong, naming the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum CfgUpgradeError {
    /// `--downgrade` was given.
    #[error(
        "downgrading the configuration to Ganeti 2.16 is not supported by this implementation"
    )]
    DowngradeUnsupported,
    /// The node's root directory could not be determined.
    #[error("cannot determine the data directory")]
    Paths(#[source] crate::paths::PathsError),
    /// The ssconf file naming the master could not be read.
    #[error("cannot check the master node name")]
    ReadMaster(#[source] FsError),
    /// This host is not the master named in ssconf.
    #[error(
        "ssconf says the master node is {master:?}, but this machine is {hostname:?}; \
         run cfgupgrade on the master node, or pass --ignore-hostname"
    )]
    HostnameMismatch {
        /// The master named in `ssconf_master_node`.
        master: String,
        /// This host's name.
        hostname: String,
    },
    /// Confirmation is needed but stdin is not a terminal.
    #[error("not asking for confirmation because stdin is not a terminal; use -f/--force to upgrade without asking")]
    NotATerminal,
    /// Reading the answer failed.
    #[error("cannot read the answer from the terminal")]
    Prompt(#[source] std::io::Error),
    /// The administrator said no.
    #[error("upgrade aborted; nothing was changed")]
    Declined,
    /// `config.data` could not be read.
    #[error("cannot read the configuration")]
    Read(#[source] FsError),
    /// `config.data` is not valid JSON.
    #[error("{path}:{line}:{column}: the configuration is not valid JSON", path = path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's message.
        #[source]
        source: serde_json::Error,
    },
    /// The document could not be upgraded.
    #[error("cannot upgrade {}", path.display())]
    Upgrade {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: UpgradeError,
    },
    /// The upgraded document failed verification.
    #[error("the upgraded configuration failed verification; nothing was written (--no-verify skips this check)")]
    Verify(#[source] UpgradeError),
    /// Serializing the result failed.
    #[error("cannot serialize the upgraded configuration")]
    Serialize(#[source] serde_json::Error),
    /// No random bytes for the backup name.
    #[error("cannot choose a backup file name")]
    BackupName(#[source] FsError),
    /// Writing the backup failed.
    #[error("cannot back up the configuration; nothing was changed")]
    Backup(#[source] FsError),
    /// Writing the new configuration failed.
    #[error("cannot write the upgraded configuration (the old one is unchanged)")]
    Write(#[source] FsError),
}

/// How much to report on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verbosity {
    /// Warnings and the final result only.
    Quiet,
    /// Also each upgrade action (`--verbose`).
    Verbose,
    /// Also file operations (`--debug`).
    Debug,
}

/// Entry point of the `cfgupgrade` program.
pub fn main(program: &str, args: &[String]) -> u8 {
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let parsed = match CfgUpgradeArgs::from_args(&[program], &argv) {
        Ok(a) => a,
        Err(early) => {
            return match early.status {
                Ok(()) => {
                    println!("{}", early.output);
                    EXIT_OK
                }
                Err(()) => {
                    eprintln!("{}", early.output);
                    EXIT_FAILURE
                }
            };
        }
    };
    match run(&parsed) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("Error: {}", crate::error::chain(&e));
            EXIT_FAILURE
        }
    }
}

fn run(args: &CfgUpgradeArgs) -> Result<(), CfgUpgradeError> {
    if args.downgrade {
        return Err(CfgUpgradeError::DowngradeUnsupported);
    }
    let verbosity = if args.debug {
        Verbosity::Debug
    } else if args.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Quiet
    };
    let report = |level: Verbosity, msg: &str| {
        if level <= verbosity || msg.starts_with(WARNING_PREFIX) {
            eprintln!("{msg}");
        }
    };
    let paths = || crate::paths::Paths::from_env().map_err(CfgUpgradeError::Paths);
    let data_dir = match &args.path {
        Some(p) => p.clone(),
        None => paths()?.data_dir(),
    };
    let config_path = data_dir.join(CONFIG_FILE_NAME);

    if !args.ignore_hostname {
        check_master(&data_dir, &paths()?.hostname())?;
    }
    if !args.force {
        confirm()?;
    }

    let original = sysfs::read(&config_path).map_err(CfgUpgradeError::Read)?;
    let old: Value =
        serde_json::from_slice(&original).map_err(|source| CfgUpgradeError::Parse {
            path: config_path.clone(),
            line: source.line(),
            column: source.column(),
            source,
        })?;
    let (new, log) = upgrade::upgrade(old.clone()).map_err(|source| CfgUpgradeError::Upgrade {
        path: config_path.clone(),
        source,
    })?;
    for line in &log {
        report(Verbosity::Verbose, line);
    }
    let target = upgrade::config_version_string(upgrade::CONFIG_VERSION);

    if !args.no_verify {
        report(Verbosity::Verbose, "Verifying the upgraded configuration");
        upgrade::verify_upgraded(&new).map_err(CfgUpgradeError::Verify)?;
    }
    if new == old {
        eprintln!(
            "Configuration is already at version {target}; {} left unchanged.",
            config_path.display()
        );
        return Ok(());
    }
    let mut data = serde_json::to_vec(&new).map_err(CfgUpgradeError::Serialize)?;
    data.push(b'\n');
    if args.dry_run {
        eprintln!(
            "Dry run: the configuration would be upgraded to version {target}; nothing was written."
        );
        return Ok(());
    }

    // Keep the file's permissions; Ganeti writes 0600, which is what a
    // cluster's config.data has anyway.
    let mode = sysfs::mode_of(&config_path).map_err(CfgUpgradeError::Read)?;
    let backup = backup_path(&config_path)?;
    report(
        Verbosity::Debug,
        &format!(
            "Backing up {} at {}",
            config_path.display(),
            backup.display()
        ),
    );
    sysfs::atomic_write(&backup, &original, 0o600).map_err(CfgUpgradeError::Backup)?;
    report(
        Verbosity::Verbose,
        &format!("Writing configuration file to {}", config_path.display()),
    );
    sysfs::atomic_write(&config_path, &data, mode).map_err(CfgUpgradeError::Write)?;
    eprintln!("Configuration successfully upgraded to version {target}.");
    Ok(())
}

/// Refuses to run on a node other than the master, when ssconf says which
/// node that is (a data directory without ssconf files is not checked).
fn check_master(data_dir: &Path, hostname: &str) -> Result<(), CfgUpgradeError> {
    let path = data_dir.join(SSCONF_MASTER_NODE);
    if !path.exists() {
        return Ok(());
    }
    let raw = sysfs::read(&path).map_err(CfgUpgradeError::ReadMaster)?;
    let master = String::from_utf8_lossy(&raw)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    if master == hostname {
        Ok(())
    } else {
        Err(CfgUpgradeError::HostnameMismatch {
            master,
            hostname: hostname.to_string(),
        })
    }
}

/// Asks on the terminal whether to go on; refuses without a terminal.
fn confirm() -> Result<(), CfgUpgradeError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CfgUpgradeError::NotATerminal);
    }
    let target = upgrade::config_version_string(upgrade::CONFIG_VERSION);
    let mut err = std::io::stderr();
    loop {
        // A failed prompt write still leaves the question answerable.
        let _ = write!(
            err,
            "This converts the cluster configuration to the Ganeti {target} format. \
             Read the upgrade notes first and stop all Ganeti daemons. \
             Continue with upgrading the configuration?\ny/[n]/?: "
        );
        let _ = err.flush();
        let mut answer = String::new();
        stdin
            .lock()
            .read_line(&mut answer)
            .map_err(CfgUpgradeError::Prompt)?;
        match answer.trim() {
            "y" | "Y" | "yes" => return Ok(()),
            "?" => {
                let _ = writeln!(
                    err,
                    " y - Perform the operation\n n - Do not do the operation"
                );
            }
            _ => return Err(CfgUpgradeError::Declined),
        }
    }
}

/// `config.data.backup-YYYY-MM-DD_HH_MM_SS.XXXXXXXX` next to the file, as
/// Ganeti names its backups (the time is UTC here, local time in Ganeti).
fn backup_path(config_path: &Path) -> Result<PathBuf, CfgUpgradeError> {
    let stamp = crate::sys::time::format_file_stamp(crate::sys::time::now_secs());
    let name = config_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| CONFIG_FILE_NAME.to_string());
    let dir = config_path.parent().unwrap_or(Path::new("."));
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_";
    loop {
        let mut raw = [0u8; 8];
        sysfs::random_bytes(&mut raw).map_err(CfgUpgradeError::BackupName)?;
        let suffix: String = raw
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
            .collect();
        let candidate = dir.join(format!("{name}.backup-{}.{suffix}", stamp));
        if !candidate.exists() {
            return Ok(candidate);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<CfgUpgradeArgs, argh::EarlyExit> {
        CfgUpgradeArgs::from_args(&["cfgupgrade"], args)
    }

    #[test]
    fn parses_ganeti_options() {
        let a = parse(&[
            "--path",
            "/x",
            "--dry-run",
            "-f",
            "--no-verify",
            "-v",
            "--debug",
            "--ignore-hostname",
        ])
        .unwrap();
        assert_eq!(a.path, Some(PathBuf::from("/x")));
        assert!(a.dry_run && a.force && a.no_verify && a.verbose && a.debug && a.ignore_hostname);
        assert!(!a.downgrade);
        assert!(parse(&["--force", "-d"]).unwrap().force);
        assert!(parse(&["extra"]).is_err());
    }

    #[test]
    fn downgrade_is_refused() {
        let a = parse(&["--downgrade", "-f"]).unwrap();
        let e = run(&a).unwrap_err();
        assert!(matches!(e, CfgUpgradeError::DowngradeUnsupported));
    }

    #[test]
    fn backup_names_follow_ganeti() {
        let p = backup_path(Path::new("/tmp/x/config.data")).unwrap();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("config.data.backup-"), "{name}");
        let suffix = name.rsplit('.').next().unwrap();
        assert_eq!(suffix.len(), 8);
        assert_eq!(p.parent().unwrap(), Path::new("/tmp/x"));
    }

    #[test]
    fn master_check_compares_first_line() {
        let dir = std::env::temp_dir().join(format!("cfgupgrade-master-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        check_master(&dir, "node1").unwrap();
        sysfs::atomic_write(&dir.join(SSCONF_MASTER_NODE), b"node1\n", 0o644).unwrap();
        check_master(&dir, "node1").unwrap();
        let e = check_master(&dir, "node2").unwrap_err();
        assert!(e.to_string().contains("--ignore-hostname"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
