//! OS definitions (node side, Ganeti's OS API 10/15/20, man page
//! `ganeti-os-interface(7)`): discovery on the search path, `variants.list`,
//! `parameters.list`, and running the `create`/`import`/`export`/`rename`/
//! `verify` scripts with Ganeti's environment. Called by `backend::os` on
//! behalf of noded; never reads the cluster config: the instance arrives
//! resolved in the RPC payload ([`crate::rpc::proto::InstanceSpec`]).
//!
//! An OS definition is a directory named after the OS under one of the
//! [`SEARCH_PATH`] directories (the first one holding the name wins, as in
//! Ganeti's `_TryOSFromDisk`). Users name an OS with its variant,
//! `debootstrap+default`; [`split_name`] takes that apart.
//!
//! Scripts run with a clean environment (Ganeti resets it since 2.5), their
//! working directory the OS directory, and their output kept in
//! `/var/log/ganeti/os/<action>-<os>-<instance>-<timestamp>.log`; a failure
//! carries the last [`LOG_TAIL_LINES`] lines of that log.

use crate::paths::Paths;
use crate::rpc::proto::{AssembledDisk, InstanceSpec, OsInfo};
use crate::sys::cmd::{CmdError, Command, Runner};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where OS definitions are looked for, as on a real node (Ganeti's
/// `OS_SEARCH_PATH` as Debian builds it); each is taken under the node root.
pub const SEARCH_PATH: &[&str] = &[
    "/srv/ganeti/os",
    "/usr/local/lib/ganeti/os",
    "/usr/lib/ganeti/os",
    "/usr/share/ganeti/os",
];

/// OS API versions this node speaks (`OS_API_VERSIONS`).
pub const API_VERSIONS: &[u32] = &[10, 15, 20];
/// First API version with `variants.list` and `OS_VARIANT`.
pub const API_V15: u32 = 15;
/// First API version with `parameters.list` and the `verify` script.
pub const API_V20: u32 = 20;

/// The file listing the API versions an OS speaks, one a line.
pub const API_FILE: &str = "ganeti_api_version";
/// The file listing the variants (API 15+).
pub const VARIANTS_FILE: &str = "variants.list";
/// The file listing the parameters with a description (API 20).
pub const PARAMETERS_FILE: &str = "parameters.list";
/// The only check `verify` knows (`OS_VALIDATE_PARAMETERS`).
pub const VALIDATE_PARAMETERS: &str = "parameters";
/// `PATH` given to the scripts (Ganeti's `HOOKS_PATH`).
pub const SCRIPT_PATH: &str = "/sbin:/bin:/usr/sbin:/usr/bin";
/// How many log lines a script failure carries.
pub const LOG_TAIL_LINES: usize = 20;

/// The scripts of an OS definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Script {
    /// `create`: install the OS onto the instance's disks.
    Create,
    /// `create_untrusted`: the same, for OSes that need a sandbox.
    CreateUntrusted,
    /// `export`: write one disk's dump to stdout.
    Export,
    /// `import`: read one disk's dump from stdin.
    Import,
    /// `rename`: adapt the instance to its new name.
    Rename,
    /// `verify`: check OS parameters (API 20).
    Verify,
}

impl Script {
    /// Every script, in Ganeti's `OS_SCRIPTS` order.
    pub const ALL: [Script; 6] = [
        Script::Create,
        Script::CreateUntrusted,
        Script::Export,
        Script::Import,
        Script::Rename,
        Script::Verify,
    ];

    /// The file name.
    pub fn file_name(self) -> &'static str {
        match self {
            Script::Create => "create",
            Script::CreateUntrusted => "create_untrusted",
            Script::Export => "export",
            Script::Import => "import",
            Script::Rename => "rename",
            Script::Verify => "verify",
        }
    }
}

/// Something wrong with an OS definition or one of its scripts.
#[derive(Debug, thiserror::Error)]
pub enum OsError {
    /// No usable definition of that name (the text says why, as Ganeti's diagnose does).
    #[error("{0}")]
    Invalid(String),
    /// The OS has no variants but one was given.
    #[error("OS '{os}' does not support variants ('{variant}' passed)")]
    VariantsUnsupported {
        /// The OS.
        os: String,
        /// The variant asked for.
        variant: String,
    },
    /// The OS has variants but the name carried none.
    #[error("OS name '{name}' must include a variant (one of: {})", valid.join(", "))]
    VariantMissing {
        /// The full name given.
        name: String,
        /// The variants it has.
        valid: Vec<String>,
    },
    /// Not one of the OS's variants.
    #[error("OS '{os}' does not support variant '{variant}' (valid: {})", valid.join(", "))]
    UnknownVariant {
        /// The OS.
        os: String,
        /// The variant asked for.
        variant: String,
        /// The variants it has.
        valid: Vec<String>,
    },
    /// Parameters not in `parameters.list`.
    #[error("The following parameters are not supported by the OS {os}: {}", unknown.join(", "))]
    UnknownParameters {
        /// The OS.
        os: String,
        /// The parameters refused.
        unknown: Vec<String>,
    },
    /// Only `parameters` is a known check.
    #[error("Unknown checks required for OS {os}: {}", unknown.join(", "))]
    UnknownChecks {
        /// The OS.
        os: String,
        /// The checks refused.
        unknown: Vec<String>,
    },
    /// The OS lacks a script the operation needs (e.g. `verify` below API 20).
    #[error("OS '{os}' has no {script} script")]
    NoScript {
        /// The OS.
        os: String,
        /// The script.
        script: &'static str,
    },
    /// A script failed; `tail` is the end of its log.
    #[error("OS {script} script failed ({reason}), last lines in the log file {log}:\n{tail}")]
    ScriptFailed {
        /// The script.
        script: &'static str,
        /// Exit status or why it could not start.
        reason: String,
        /// The log file (as on the node, under its root).
        log: String,
        /// The log's last lines.
        tail: String,
    },
    /// `verify` refused the parameters; `output` is what it said.
    #[error("OS validation script failed ({reason}), output: {output}")]
    VerifyFailed {
        /// Exit status or why it could not start.
        reason: String,
        /// Its stdout and stderr.
        output: String,
    },
    /// A disk of the instance was not assembled for the script.
    #[error("disk {index} ({uuid}) of instance {instance} has no assembled device")]
    DiskMissing {
        /// Index in the instance's disks.
        index: usize,
        /// Its UUID.
        uuid: String,
        /// The instance.
        instance: String,
    },
    /// Writing the script's log failed.
    #[error("cannot write the OS log {path}")]
    Log {
        /// The log file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: crate::sys::fs::FsError,
    },
}

/// One valid OS definition, as found on disk (Ganeti's `objects.OS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsDefinition {
    /// Name (the directory's name, without variant).
    pub name: String,
    /// The directory.
    pub path: PathBuf,
    /// API versions from `ganeti_api_version`, as written.
    pub api_versions: Vec<u32>,
    /// Variants from `variants.list` (empty: no variants).
    pub variants: Vec<String>,
    /// Parameters from `parameters.list`: name and description.
    pub parameters: Vec<(String, String)>,
    /// The scripts present.
    pub scripts: BTreeMap<Script, PathBuf>,
}

impl OsDefinition {
    /// The highest API version both sides speak (at least one does, or the
    /// definition would not have loaded).
    pub fn api_version(&self) -> u32 {
        self.api_versions
            .iter()
            .copied()
            .filter(|v| API_VERSIONS.contains(v))
            .max()
            .unwrap_or(API_VERSIONS[0])
    }

    /// The highest API version the OS claims (Ganeti decides which files are
    /// required by this one).
    fn max_claimed(&self) -> u32 {
        self.api_versions.iter().copied().max().unwrap_or(0)
    }

    /// Whether the OS runs without a sandbox (it has a trusted `create`).
    pub fn trusted(&self) -> bool {
        !self.scripts.contains_key(&Script::CreateUntrusted)
    }

    /// What `os_diagnose` reports for it.
    pub fn info(&self) -> OsInfo {
        OsInfo {
            name: self.name.clone(),
            path: self.path.display().to_string(),
            valid: true,
            diagnose: String::new(),
            variants: self.variants.clone(),
            parameters: self.parameters.clone(),
            api_versions: self.api_versions.clone(),
            trusted: self.trusted(),
        }
    }

    /// Checks that `full_name`'s variant is one of the OS's (`_CheckOSVariant`).
    pub fn check_variant(&self, full_name: &str) -> Result<(), OsError> {
        let (_, variant) = split_name(full_name);
        if self.variants.is_empty() {
            return match variant {
                Some(v) => Err(OsError::VariantsUnsupported {
                    os: self.name.clone(),
                    variant: v.to_string(),
                }),
                None => Ok(()),
            };
        }
        match variant {
            None => Err(OsError::VariantMissing {
                name: full_name.to_string(),
                valid: self.variants.clone(),
            }),
            Some(v) if self.variants.iter().any(|x| x == v) => Ok(()),
            Some(v) => Err(OsError::UnknownVariant {
                os: self.name.clone(),
                variant: v.to_string(),
                valid: self.variants.clone(),
            }),
        }
    }

    /// Checks that every name is in `parameters.list` (`_CheckOSPList`).
    pub fn check_parameters<'a>(
        &self,
        names: impl IntoIterator<Item = &'a String>,
    ) -> Result<(), OsError> {
        let mut unknown: Vec<String> = names
            .into_iter()
            .filter(|n| !self.parameters.iter().any(|(p, _)| p == *n))
            .cloned()
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        unknown.sort();
        unknown.dedup();
        Err(OsError::UnknownParameters {
            os: self.name.clone(),
            unknown,
        })
    }

    fn script(&self, script: Script) -> Result<&Path, OsError> {
        self.scripts
            .get(&script)
            .map(PathBuf::as_path)
            .ok_or(OsError::NoScript {
                os: self.name.clone(),
                script: script.file_name(),
            })
    }
}

/// `debootstrap+default` → (`debootstrap`, `Some("default")`).
pub fn split_name(full_name: &str) -> (&str, Option<&str>) {
    match full_name.split_once('+') {
        Some((name, variant)) => (name, Some(variant)),
        None => (full_name, None),
    }
}

/// The search directories of this node, under its root, without repeats.
pub fn search_dirs(paths: &Paths) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for d in SEARCH_PATH {
        let p = paths.under_root(d);
        if !dirs.contains(&p) {
            dirs.push(p);
        }
    }
    dirs
}

/// Every (potential) OS definition on the search path, valid or not, in
/// search-path order and then by name (Ganeti's `DiagnoseOS`). Hidden
/// entries (starting with `.`) are skipped.
pub fn diagnose(paths: &Paths) -> Vec<OsInfo> {
    let mut out = Vec::new();
    for dir in search_dirs(paths) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        for name in names {
            let os_dir = dir.join(&name);
            let info = if os_dir.is_dir() {
                match load(&name, &os_dir) {
                    Ok(def) => def.info(),
                    Err(e) => invalid_info(&name, &os_dir, e.to_string()),
                }
            } else {
                invalid_info(
                    &name,
                    &os_dir,
                    format!("Directory for OS {name} not found in search path"),
                )
            };
            out.push(info);
        }
    }
    out
}

fn invalid_info(name: &str, dir: &Path, why: String) -> OsInfo {
    OsInfo {
        name: name.to_string(),
        path: dir.display().to_string(),
        valid: false,
        diagnose: why,
        variants: Vec::new(),
        parameters: Vec::new(),
        api_versions: Vec::new(),
        trusted: true,
    }
}

/// Finds OS `full_name` (variant ignored) on the search path and loads it
/// (Ganeti's `OSFromDisk`).
pub fn find(paths: &Paths, full_name: &str) -> Result<OsDefinition, OsError> {
    let (name, _) = split_name(full_name);
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(OsError::Invalid(format!("Invalid OS name '{full_name}'")));
    }
    for dir in search_dirs(paths) {
        let os_dir = dir.join(name);
        if os_dir.is_dir() {
            return load(name, &os_dir);
        }
    }
    Err(OsError::Invalid(format!(
        "Directory for OS {name} not found in search path"
    )))
}

/// Loads the definition in `os_dir`, checking the files its API version
/// requires (Ganeti's `_TryOSFromDisk`); the error says what is missing.
pub fn load(name: &str, os_dir: &Path) -> Result<OsDefinition, OsError> {
    let shown = os_dir.display();
    let api_file = os_dir.join(API_FILE);
    let meta = std::fs::metadata(&api_file).map_err(|e| {
        OsError::Invalid(format!(
            "Required file '{API_FILE}' not found under path {shown}: {e}"
        ))
    })?;
    if !meta.is_file() {
        return Err(OsError::Invalid(format!(
            "File '{API_FILE}' in {shown} is not a regular file"
        )));
    }
    let text = std::fs::read_to_string(&api_file).map_err(|e| {
        OsError::Invalid(format!(
            "Error while reading the API version file at {}: {e}",
            api_file.display()
        ))
    })?;
    let mut api_versions = Vec::new();
    for line in text.lines() {
        let v = line.trim().parse::<u32>().map_err(|_| {
            OsError::Invalid(format!(
                "API version(s) can't be converted to integer: {:?} in {}",
                line.trim(),
                api_file.display()
            ))
        })?;
        api_versions.push(v);
    }
    if !api_versions.iter().any(|v| API_VERSIONS.contains(v)) {
        return Err(OsError::Invalid(format!(
            "API version mismatch for path '{shown}': found {api_versions:?}, want {API_VERSIONS:?}."
        )));
    }
    let max = api_versions.iter().copied().max().unwrap_or(0);

    // (file, required): create and create_untrusted are each optional but
    // one must exist; verify and parameters.list only from API 20 on.
    let mut files: Vec<(&'static str, bool, Option<Script>)> = Vec::new();
    for s in Script::ALL {
        let required = match s {
            Script::Create | Script::CreateUntrusted => false,
            Script::Verify if max < API_V20 => continue,
            _ => true,
        };
        files.push((s.file_name(), required, Some(s)));
    }
    if max >= API_V15 {
        files.push((VARIANTS_FILE, false, None));
    }
    if max >= API_V20 {
        files.push((PARAMETERS_FILE, true, None));
    }

    let mut scripts = BTreeMap::new();
    let mut variants = Vec::new();
    let mut parameters = Vec::new();
    for (file, required, script) in files {
        let path = os_dir.join(file);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => continue,
            Err(e) => {
                return Err(OsError::Invalid(format!(
                    "File '{file}' under path '{shown}' is missing ({e})"
                )))
            }
        };
        if !meta.is_file() {
            return Err(OsError::Invalid(format!(
                "File '{file}' under path '{shown}' is not a regular file"
            )));
        }
        if let Some(s) = script {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o100 == 0 {
                return Err(OsError::Invalid(format!(
                    "File '{file}' under path '{shown}' is not executable"
                )));
            }
            scripts.insert(s, path);
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| {
            OsError::Invalid(format!(
                "Error while reading the OS {} file at {}: {e}",
                if file == VARIANTS_FILE {
                    "variants"
                } else {
                    "parameters"
                },
                path.display()
            ))
        })?;
        if file == VARIANTS_FILE {
            variants = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string)
                .collect();
        } else {
            parameters = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| match l.split_once(char::is_whitespace) {
                    Some((n, d)) => (n.to_string(), d.trim().to_string()),
                    None => (l.to_string(), String::new()),
                })
                .collect();
        }
    }
    if !scripts.contains_key(&Script::Create) && !scripts.contains_key(&Script::CreateUntrusted) {
        return Err(OsError::Invalid(format!(
            "A create script (trusted or untrusted) under path '{shown}' must exist"
        )));
    }
    Ok(OsDefinition {
        name: name.to_string(),
        path: os_dir.to_path_buf(),
        api_versions,
        variants,
        parameters,
        scripts,
    })
}

/// The environment every script gets (Ganeti's `OSCoreEnv`): API version,
/// OS name and variant, `OSP_*` and `DEBUG_LEVEL`, plus `PATH`.
pub fn core_env(
    full_name: &str,
    os: &OsDefinition,
    osparams: &BTreeMap<String, String>,
    debug: u32,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let api = os.api_version();
    env.insert("OS_API_VERSION".into(), api.to_string());
    env.insert("OS_NAME".into(), os.name.clone());
    env.insert("DEBUG_LEVEL".into(), debug.to_string());
    let variant = if api >= API_V15 && !os.variants.is_empty() {
        match split_name(full_name).1 {
            Some(v) if !v.is_empty() => v.to_string(),
            _ => os.variants[0].clone(),
        }
    } else {
        String::new()
    };
    env.insert("OS_VARIANT".into(), variant);
    for (k, v) in osparams {
        env.insert(
            format!("OSP_{}", k.to_uppercase().replace('-', "_")),
            v.clone(),
        );
    }
    env.insert("PATH".into(), SCRIPT_PATH.into());
    env
}

/// Python's `str()` of a parameter value, as Ganeti puts it in the
/// environment (`True`, `None`, `512`, `['a', 'b']`).
fn python_str(v: &serde_json::Value) -> String {
    use serde_json::Value;
    fn repr(v: &Value) -> String {
        match v {
            Value::String(s) => format!("'{s}'"),
            other => python_str(other),
        }
    }
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(repr).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("'{k}': {}", repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Disk types whose node side is a block device (`DTS_BLOCK`).
const BLOCK_DISK_TYPES: &[&str] = &["blockdev", "drbd", "ext", "plain", "rbd"];
/// Disk types backed by a file (`DTS_FILEBASED`).
const FILE_DISK_TYPES: &[&str] = &["file", "gluster", "sharedfile"];

/// The environment of a script run for an instance (Ganeti's
/// `OSEnvironment`): [`core_env`] plus `INSTANCE_*`, `HYPERVISOR`, the
/// `DISK_n_*` and `NIC_n_*` variables and `INSTANCE_BE_*`/`INSTANCE_HV_*`.
/// `disks` are the instance's disks as assembled on this node, matched by
/// UUID; `primary_node` is this node's name.
pub fn instance_env(
    os: &OsDefinition,
    inst: &InstanceSpec,
    disks: &[AssembledDisk],
    primary_node: &str,
    debug: u32,
) -> Result<BTreeMap<String, String>, OsError> {
    let mut osparams = inst.osparams.clone();
    osparams.extend(
        inst.osparams_private
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    let mut env = core_env(&inst.os, os, &osparams, debug);
    env.insert("INSTANCE_NAME".into(), inst.name.clone());
    env.insert("INSTANCE_OS".into(), inst.os.clone());
    env.insert("INSTANCE_UUID".into(), inst.uuid.clone());
    env.insert("INSTANCE_PRIMARY_NODE".into(), primary_node.to_string());
    env.insert("HYPERVISOR".into(), inst.hypervisor.clone());
    env.insert("DISK_COUNT".into(), inst.disks.len().to_string());
    env.insert("NIC_COUNT".into(), inst.nics.len().to_string());

    let hv_str = |key: &str| inst.hvparams.get(key).map(python_str);
    for (i, disk) in inst.disks.iter().enumerate() {
        let assembled = disks
            .iter()
            .find(|d| d.uuid == disk.uuid)
            .or_else(|| disks.get(i).filter(|d| d.uuid.is_empty()));
        let Some(assembled) = assembled else {
            return Err(OsError::DiskMissing {
                index: i,
                uuid: disk.uuid.clone(),
                instance: inst.name.clone(),
            });
        };
        env.insert(format!("DISK_{i}_ACCESS"), disk.mode.clone());
        env.insert(format!("DISK_{i}_UUID"), disk.uuid.clone());
        env.insert(format!("DISK_{i}_SIZE"), disk.size_mib.to_string());
        if !assembled.path.is_empty() {
            env.insert(format!("DISK_{i}_PATH"), assembled.path.clone());
        }
        if let Some(uri) = &assembled.uri {
            env.insert(format!("DISK_{i}_URI"), uri.clone());
        }
        if let Some(name) = disk.name.as_ref().filter(|n| !n.is_empty()) {
            env.insert(format!("DISK_{i}_NAME"), name.clone());
        }
        if let Some(t) = hv_str("disk_type") {
            env.insert(format!("DISK_{i}_FRONTEND_TYPE"), t);
        }
        if BLOCK_DISK_TYPES.contains(&disk.dev_type.as_str()) {
            env.insert(format!("DISK_{i}_BACKEND_TYPE"), "block".into());
        } else if FILE_DISK_TYPES.contains(&disk.dev_type.as_str()) {
            let driver = disk
                .logical_id
                .get(0)
                .and_then(|v| v.as_str())
                .unwrap_or("loop");
            env.insert(format!("DISK_{i}_BACKEND_TYPE"), format!("file:{driver}"));
        }
    }
    for (i, nic) in inst.nics.iter().enumerate() {
        env.insert(format!("NIC_{i}_MAC"), nic.mac.clone());
        env.insert(format!("NIC_{i}_UUID"), nic.uuid.clone());
        if let Some(name) = nic.name.as_ref().filter(|n| !n.is_empty()) {
            env.insert(format!("NIC_{i}_NAME"), name.clone());
        }
        if let Some(ip) = nic.ip.as_ref().filter(|n| !n.is_empty()) {
            env.insert(format!("NIC_{i}_IP"), ip.clone());
        }
        env.insert(format!("NIC_{i}_MODE"), nic.mode.clone());
        if nic.mode == "bridged" {
            env.insert(format!("NIC_{i}_BRIDGE"), nic.link.clone());
        }
        if !nic.link.is_empty() {
            env.insert(format!("NIC_{i}_LINK"), nic.link.clone());
        }
        if let Some(net) = nic.network.as_ref().filter(|n| !n.is_empty()) {
            env.insert(format!("NIC_{i}_NETWORK_NAME"), net.clone());
        }
        if let Some(t) = hv_str("nic_type") {
            env.insert(format!("NIC_{i}_FRONTEND_TYPE"), t);
        }
    }
    for (kind, params) in [("BE", &inst.beparams), ("HV", &inst.hvparams)] {
        for (k, v) in params {
            env.insert(format!("INSTANCE_{kind}_{k}"), python_str(v));
        }
    }
    Ok(env)
}

/// The script's command line: `env -i` gives it exactly `env` (Ganeti's
/// `reset_env`), and it runs as `./<script>` from the OS directory, so no
/// path can be mistaken for an assignment.
fn script_command(
    os: &OsDefinition,
    script: &Path,
    args: &[&str],
    env: &BTreeMap<String, String>,
) -> Command {
    let file = script
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut argv = vec!["env".to_string(), "-i".to_string()];
    argv.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
    argv.push(format!("./{file}"));
    argv.extend(args.iter().map(|a| a.to_string()));
    let mut cmd = Command::new(argv);
    cmd.cwd = Some(os.path.clone());
    cmd
}

/// What a script run's log file is named after (Ganeti's
/// `_InstanceLogName`): `<kind>-<os>-<instance>-<timestamp>.log`.
#[derive(Debug, Clone, Copy)]
pub struct LogName<'a> {
    /// The operation: `add`, `rename`, `import`, `export`.
    pub kind: &'a str,
    /// The OS name with variant.
    pub os: &'a str,
    /// The instance (for rename: `old-new`; for import/export with the disk index).
    pub instance: &'a str,
}

/// Which way an `export` or `import` script moves one disk's data
/// (Ganeti's `IEM_EXPORT`/`IEM_IMPORT` with `IEIO_SCRIPT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskIo {
    /// `export`: reads the disk, writes the dump to stdout.
    Export,
    /// `import`: reads the dump from stdin, writes the disk.
    Import,
}

impl DiskIo {
    /// The script that does it.
    pub fn script(self) -> Script {
        match self {
            DiskIo::Export => Script::Export,
            DiskIo::Import => Script::Import,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            DiskIo::Export => "EXPORT",
            DiskIo::Import => "IMPORT",
        }
    }
}

/// Adds to an [`instance_env`] the variables naming the one disk an
/// `export`/`import` script works on, as Ganeti's
/// `_GetImportExportIoCommand` does: `<P>_DEVICE` and `<P>_DISK_PATH` (the
/// disk's `DISK_<index>_PATH`), `<P>_DISK_URI` (its `DISK_<index>_URI`)
/// when it has one, and `<P>_INDEX`; `<P>` is `EXPORT` or `IMPORT`.
pub fn add_disk_io_env(env: &mut BTreeMap<String, String>, io: DiskIo, index: usize) {
    let p = io.prefix();
    if let Some(path) = env.get(&format!("DISK_{index}_PATH")).cloned() {
        env.insert(format!("{p}_DEVICE"), path.clone());
        env.insert(format!("{p}_DISK_PATH"), path);
    }
    if let Some(uri) = env.get(&format!("DISK_{index}_URI")).cloned() {
        env.insert(format!("{p}_DISK_URI"), uri);
    }
    env.insert(format!("{p}_INDEX"), index.to_string());
}

/// Where a script's standard input comes from and its standard output
/// goes; by default stdin is empty and stdout is kept in the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptIo {
    /// File read as standard input (`import`: the dump).
    pub stdin: Option<PathBuf>,
    /// File written from standard output (`export`: the dump), created
    /// mode 0600; stdout then does not go to the log (stderr still does).
    pub stdout: Option<PathBuf>,
}

/// Runs `script` of `os` with exactly `env`, keeping its output in
/// `/var/log/ganeti/os/` under the name `log` gives. Returns the log file.
pub fn run_instance_script(
    runner: &dyn Runner,
    paths: &Paths,
    os: &OsDefinition,
    script: Script,
    log: LogName<'_>,
    env: &BTreeMap<String, String>,
) -> Result<PathBuf, OsError> {
    run_instance_script_io(runner, paths, os, script, log, env, &ScriptIo::default())
}

/// [`run_instance_script`] with stdin and stdout connected to files.
pub fn run_instance_script_io(
    runner: &dyn Runner,
    paths: &Paths,
    os: &OsDefinition,
    script: Script,
    log: LogName<'_>,
    env: &BTreeMap<String, String>,
    io: &ScriptIo,
) -> Result<PathBuf, OsError> {
    let path = os.script(script)?;
    let mut cmd = script_command(os, path, &[], env);
    cmd.stdin = io.stdin.clone();
    cmd.stdout = io.stdout.clone();
    let stamp = crate::sys::time::format_file_stamp(crate::sys::time::now_secs());
    let log_dir = paths.log_dir().join("os");
    let base = format!("{}-{}-{}-{stamp}", log.kind, log.os, log.instance);
    let mut log = log_dir.join(format!("{base}.log"));
    // Two runs in the same second keep both logs.
    let mut n = 1;
    while log.exists() {
        log = log_dir.join(format!("{base}.{n}.log"));
        n += 1;
    }
    let result = runner.run(&cmd);
    let (output, failure) = match result {
        Ok(out) => (join_output(&out.stdout, &out.stderr), None),
        Err(CmdError::Failed {
            code,
            stdout,
            stderr,
            ..
        }) => (
            join_output(&stdout, &stderr),
            Some(match code {
                Some(c) => format!("exited with exit code {c}"),
                None => "killed by a signal".to_string(),
            }),
        ),
        Err(e @ CmdError::Spawn { .. }) => {
            let why = crate::error::chain(&e);
            (format!("{why}\n"), Some(why))
        }
    };
    crate::sys::fs::ensure_dir(&log_dir, 0o750)
        .and_then(|()| crate::sys::fs::atomic_write(&log, output.as_bytes(), 0o640))
        .map_err(|source| OsError::Log {
            path: log.clone(),
            source,
        })?;
    match failure {
        None => Ok(log),
        Some(reason) => Err(OsError::ScriptFailed {
            script: script.file_name(),
            reason,
            log: log.display().to_string(),
            tail: tail(&output, LOG_TAIL_LINES),
        }),
    }
}

fn join_output(stdout: &str, stderr: &str) -> String {
    let mut s = String::with_capacity(stdout.len() + stderr.len() + 1);
    s.push_str(stdout);
    if !s.is_empty() && !s.ends_with('\n') && !stderr.is_empty() {
        s.push('\n');
    }
    s.push_str(stderr);
    s
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Validates OS `full_name` and parameters on this node (Ganeti's
/// `ValidateOS`): `Ok(false)` when the OS is absent and not `required`;
/// checks the variant, the parameter names (for `checks` containing
/// `parameters`) and runs `verify <checks…>` for API 20.
pub fn validate(
    runner: &dyn Runner,
    paths: &Paths,
    required: bool,
    full_name: &str,
    checks: &[String],
    osparams: &BTreeMap<String, String>,
) -> Result<bool, OsError> {
    let unknown: Vec<String> = checks
        .iter()
        .filter(|c| c.as_str() != VALIDATE_PARAMETERS)
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(OsError::UnknownChecks {
            os: full_name.to_string(),
            unknown,
        });
    }
    let os = match find(paths, full_name) {
        Ok(os) => os,
        Err(e) if required => return Err(e),
        Err(_) => return Ok(false),
    };
    os.check_variant(full_name)?;
    if os.max_claimed() < API_V20 {
        return Ok(true);
    }
    if checks.iter().any(|c| c == VALIDATE_PARAMETERS) {
        os.check_parameters(osparams.keys())?;
    }
    let verify = os.script(Script::Verify)?;
    let env = core_env(full_name, &os, osparams, 0);
    let args: Vec<&str> = checks.iter().map(String::as_str).collect();
    let cmd = script_command(&os, verify, &args, &env);
    match runner.run(&cmd) {
        Ok(_) => Ok(true),
        Err(CmdError::Failed {
            code,
            stdout,
            stderr,
            ..
        }) => Err(OsError::VerifyFailed {
            reason: match code {
                Some(c) => format!("exited with exit code {c}"),
                None => "killed by a signal".to_string(),
            },
            output: join_output(&stdout, &stderr).trim().to_string(),
        }),
        Err(e) => Err(OsError::VerifyFailed {
            reason: crate::error::chain(&e),
            output: String::new(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::proto::{DiskSpec, NicSpec};
    use crate::sys::cmd::RecordingRunner;
    use std::os::unix::fs::PermissionsExt;

    fn node(tag: &str) -> Paths {
        crate::paths::test_support::temp_node(&format!("os-{tag}"), "node1", &[])
    }

    fn cleanup(p: &Paths) {
        crate::paths::test_support::remove_temp_node(p);
    }

    fn write(path: &Path, text: &str, mode: u32) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        crate::sys::fs::atomic_write(path, text.as_bytes(), mode).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// An API 20 OS named `name` under `/srv/ganeti/os` of `p`.
    fn os20(p: &Paths, name: &str) -> PathBuf {
        let d = p.under_root("/srv/ganeti/os").join(name);
        write(&d.join(API_FILE), "20\n15\n", 0o644);
        write(
            &d.join(VARIANTS_FILE),
            "# comment\nwheezy\n\nbuster\n",
            0o644,
        );
        write(
            &d.join(PARAMETERS_FILE),
            "dhcp Whether to use DHCP\nroot_size\tSize of /, GiB\n",
            0o644,
        );
        for s in ["create", "export", "import", "rename", "verify"] {
            write(&d.join(s), "#!/bin/sh\nexit 0\n", 0o755);
        }
        d
    }

    #[test]
    fn names_split_at_plus() {
        assert_eq!(split_name("deb+buster"), ("deb", Some("buster")));
        assert_eq!(split_name("noop"), ("noop", None));
    }

    #[test]
    fn loads_api20_definition() {
        let p = node("load");
        os20(&p, "deb");
        let os = find(&p, "deb+buster").unwrap();
        assert_eq!(os.api_versions, vec![20, 15]);
        assert_eq!(os.api_version(), 20);
        assert_eq!(os.variants, vec!["wheezy", "buster"]);
        assert_eq!(
            os.parameters,
            vec![
                ("dhcp".to_string(), "Whether to use DHCP".to_string()),
                ("root_size".to_string(), "Size of /, GiB".to_string())
            ]
        );
        assert!(os.trusted());
        assert!(os.scripts.contains_key(&Script::Verify));
        cleanup(&p);
    }

    #[test]
    fn diagnose_explains_invalid_definitions() {
        let p = node("diag");
        let d = os20(&p, "good");
        // Missing parameters.list for API 20.
        let bad = os20(&p, "noparams");
        std::fs::remove_file(bad.join(PARAMETERS_FILE)).unwrap();
        // Not executable.
        let noexec = os20(&p, "noexec");
        write(&noexec.join("rename"), "#!/bin/sh\n", 0o644);
        // Wrong API.
        let old = p.under_root("/usr/share/ganeti/os/old");
        write(&old.join(API_FILE), "5\n", 0o644);
        // No API file.
        std::fs::create_dir_all(p.under_root("/srv/ganeti/os/empty")).unwrap();
        let all = diagnose(&p);
        let by = |n: &str| all.iter().find(|o| o.name == n).unwrap().clone();
        assert!(by("good").valid);
        assert_eq!(by("good").path, d.display().to_string());
        let np = by("noparams");
        assert!(!np.valid);
        assert!(np.diagnose.contains("'parameters.list'"), "{}", np.diagnose);
        assert!(by("noexec").diagnose.contains("not executable"));
        assert!(by("old").diagnose.contains("API version mismatch"));
        assert!(by("empty").diagnose.contains("ganeti_api_version"));
        // Search-path order: /srv first.
        assert_eq!(all.last().unwrap().name, "old");
        cleanup(&p);
    }

    #[test]
    fn api10_needs_no_variants_parameters_or_verify() {
        let p = node("api10");
        let d = p.under_root("/srv/ganeti/os/plain10");
        write(&d.join(API_FILE), "10\n", 0o644);
        for s in ["create", "export", "import", "rename"] {
            write(&d.join(s), "#!/bin/sh\n", 0o755);
        }
        let os = find(&p, "plain10").unwrap();
        assert!(os.variants.is_empty());
        assert!(os.check_variant("plain10").is_ok());
        let e = os.check_variant("plain10+x").unwrap_err().to_string();
        assert!(e.contains("does not support variants"), "{e}");
        let env = core_env("plain10", &os, &BTreeMap::new(), 1);
        assert_eq!(env["OS_API_VERSION"], "10");
        assert_eq!(env["OS_VARIANT"], "");
        assert_eq!(env["DEBUG_LEVEL"], "1");
        cleanup(&p);
    }

    #[test]
    fn variant_and_parameter_checks_name_the_valid_ones() {
        let p = node("checks");
        os20(&p, "deb");
        let os = find(&p, "deb").unwrap();
        let e = os.check_variant("deb+sid").unwrap_err().to_string();
        assert!(e.contains("'sid'") && e.contains("wheezy, buster"), "{e}");
        let e = os.check_variant("deb").unwrap_err().to_string();
        assert!(e.contains("must include a variant"), "{e}");
        let names = ["dhcp".to_string(), "colour".to_string()];
        let e = os.check_parameters(names.iter()).unwrap_err().to_string();
        assert!(e.ends_with("by the OS deb: colour"), "{e}");
        cleanup(&p);
    }

    fn spec() -> InstanceSpec {
        let mut hvparams = crate::rpc::proto::Params::new();
        hvparams.insert("disk_type".into(), "paravirtual".into());
        hvparams.insert("acpi".into(), true.into());
        let mut beparams = crate::rpc::proto::Params::new();
        beparams.insert("maxmem".into(), 512.into());
        InstanceSpec {
            name: "inst1.example.com".into(),
            uuid: "u-inst".into(),
            hypervisor: "kvm".into(),
            hvparams,
            beparams,
            os: "deb+buster".into(),
            osparams: [("dhcp".to_string(), "no".to_string())].into(),
            osparams_private: [("root-size".to_string(), "8".to_string())].into(),
            nics: vec![NicSpec {
                uuid: "u-nic".into(),
                name: None,
                mac: "aa:00:00:11:22:33".into(),
                ip: Some("192.0.2.10".into()),
                mode: "bridged".into(),
                link: "br0".into(),
                vlan: String::new(),
                network: None,
            }],
            disks: vec![DiskSpec {
                uuid: "u-disk0".into(),
                name: Some("root".into()),
                iv_name: "disk/0".into(),
                dev_type: "file".into(),
                logical_id: serde_json::json!(["loop", "/srv/x/disk0"]),
                size_mib: 1024,
                mode: "rw".into(),
                params: Default::default(),
                children: vec![],
            }],
            network_port: None,
        }
    }

    #[test]
    fn instance_environment_follows_ganeti() {
        let p = node("env");
        os20(&p, "deb");
        let os = find(&p, "deb").unwrap();
        let disks = [AssembledDisk {
            uuid: "u-disk0".into(),
            path: "/dev/loop7".into(),
            uri: None,
        }];
        let env = instance_env(&os, &spec(), &disks, "node1", 0).unwrap();
        let want = [
            ("OS_API_VERSION", "20"),
            ("OS_NAME", "deb"),
            ("OS_VARIANT", "buster"),
            ("OSP_DHCP", "no"),
            ("OSP_ROOT_SIZE", "8"),
            ("INSTANCE_NAME", "inst1.example.com"),
            ("INSTANCE_OS", "deb+buster"),
            ("INSTANCE_UUID", "u-inst"),
            ("INSTANCE_PRIMARY_NODE", "node1"),
            ("HYPERVISOR", "kvm"),
            ("DISK_COUNT", "1"),
            ("DISK_0_PATH", "/dev/loop7"),
            ("DISK_0_ACCESS", "rw"),
            ("DISK_0_UUID", "u-disk0"),
            ("DISK_0_NAME", "root"),
            ("DISK_0_SIZE", "1024"),
            ("DISK_0_FRONTEND_TYPE", "paravirtual"),
            ("DISK_0_BACKEND_TYPE", "file:loop"),
            ("NIC_COUNT", "1"),
            ("NIC_0_MAC", "aa:00:00:11:22:33"),
            ("NIC_0_IP", "192.0.2.10"),
            ("NIC_0_MODE", "bridged"),
            ("NIC_0_BRIDGE", "br0"),
            ("NIC_0_LINK", "br0"),
            ("INSTANCE_BE_maxmem", "512"),
            ("INSTANCE_HV_acpi", "True"),
            ("DEBUG_LEVEL", "0"),
            ("PATH", SCRIPT_PATH),
        ];
        for (k, v) in want {
            assert_eq!(env.get(k).map(String::as_str), Some(v), "{k}");
        }
        assert!(!env.contains_key("NIC_0_NAME"));
        // A disk that was not assembled is an error naming it.
        let e = instance_env(&os, &spec(), &[], "node1", 0).unwrap_err();
        assert!(e.to_string().contains("u-disk0"), "{e}");
        cleanup(&p);
    }

    #[test]
    fn scripts_run_with_a_clean_environment_from_the_os_dir() {
        let p = node("cmd");
        let d = os20(&p, "deb");
        let os = find(&p, "deb").unwrap();
        let runner = RecordingRunner::new();
        let env = core_env("deb+wheezy", &os, &BTreeMap::new(), 0);
        let log = run_instance_script(
            &runner,
            &p,
            &os,
            Script::Create,
            LogName {
                kind: "add",
                os: "deb+wheezy",
                instance: "i1",
            },
            &env,
        )
        .unwrap();
        let calls = runner.calls();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].argv[..2], ["env", "-i"]);
        assert!(calls[0].argv.contains(&"OS_VARIANT=wheezy".to_string()));
        assert_eq!(calls[0].argv.last().unwrap(), "./create");
        assert_eq!(calls[0].cwd.as_deref(), Some(d.as_path()));
        let name = log.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("add-deb+wheezy-i1-"), "{name}");
        assert!(log.starts_with(p.log_dir().join("os")));
        cleanup(&p);
    }

    #[test]
    fn export_and_import_env_name_one_disk_and_wire_stdio() {
        let mut env: BTreeMap<String, String> = [
            ("DISK_0_PATH", "/dev/loop0"),
            ("DISK_1_PATH", "/dev/loop1"),
            ("DISK_1_URI", "rbd:pool/d1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mut exp = env.clone();
        add_disk_io_env(&mut exp, DiskIo::Export, 1);
        assert_eq!(exp["EXPORT_DEVICE"], "/dev/loop1");
        assert_eq!(exp["EXPORT_DISK_PATH"], "/dev/loop1");
        assert_eq!(exp["EXPORT_DISK_URI"], "rbd:pool/d1");
        assert_eq!(exp["EXPORT_INDEX"], "1");
        assert!(!exp.keys().any(|k| k.starts_with("IMPORT_")));
        add_disk_io_env(&mut env, DiskIo::Import, 0);
        assert_eq!(env["IMPORT_DEVICE"], "/dev/loop0");
        assert_eq!(env["IMPORT_DISK_PATH"], "/dev/loop0");
        assert_eq!(env["IMPORT_INDEX"], "0");
        assert!(!env.contains_key("IMPORT_DISK_URI"));
        assert!(!env.keys().any(|k| k.starts_with("EXPORT_")));

        // The redirections reach the command; stdout no longer in the log.
        let p = node("io");
        os20(&p, "deb");
        let os = find(&p, "deb").unwrap();
        let runner = RecordingRunner::new();
        let io = ScriptIo {
            stdin: Some(p.root().join("dump.in")),
            stdout: Some(p.root().join("dump.out")),
        };
        let log = LogName {
            kind: "import",
            os: "deb+wheezy",
            instance: "i1-0",
        };
        run_instance_script_io(&runner, &p, &os, DiskIo::Import.script(), log, &env, &io).unwrap();
        let calls = runner.calls();
        assert_eq!(calls[0].argv.last().unwrap(), "./import");
        assert_eq!(calls[0].stdin, io.stdin);
        assert_eq!(calls[0].stdout, io.stdout);
        assert!(calls[0]
            .argv
            .contains(&"IMPORT_DEVICE=/dev/loop0".to_string()));
        cleanup(&p);
    }
}
