//! The KVM hypervisor: one daemonized QEMU process per instance, driven
//! through its QMP socket. Files under `RUN_DIR/kvm-hypervisor/` follow
//! Ganeti's `hv_kvm` layout: `pid/<name>` (QEMU's pid file),
//! `ctrl/<name>.qmp` and `ctrl/<name>.serial` (sockets), `conf/<name>.runtime`
//! (the command line and sizes the instance was started with).
//!
//! QEMU runs under KVM when `/dev/kvm` can be opened and `kvm_flag` is not
//! `disabled`, else under TCG (`kvm_flag=disabled` forces TCG, `enabled`
//! forces KVM). Migration: the target starts the same command line with
//! `-incoming tcp:ADDR:PORT` (`migration_port`); the source checks that
//! both ends run the same QEMU major.minor, then sends with QMP `migrate`.
//!
//! Start: QEMU daemonizes once the VM is set up; its early errors (stderr
//! before it detaches) come back in the start error. The start then waits
//! until QEMU's monitor answers ([`START_TIMEOUT`]); a QEMU that died or
//! never answers fails the start with its stderr tail, and its files are
//! removed. Next each NIC's tap (created by QEMU) is connected by
//! [`crate::net::tap`]; a NIC that cannot be set up stops the QEMU just
//! started and fails the start naming the NIC and the command. On a
//! migration target, routed NICs are connected only when the migration
//! is committed (their route must not move before the instance does).
//! Stopping removes routed NICs' rules and routes.
//!
//! Security: `security_model=user` runs QEMU as `security_domain`;
//! `security_model=pool` reserves a uid from the cluster's uid pool
//! ([`super::uidpool`]; the pool definition is the one ssconf value the
//! node side reads itself, as Ganeti does) and records it in the runtime
//! file, to give it back when the instance stops. QEMU 9.1 and later are
//! told with `-run-with user=`, older ones with `-runas`.

pub mod cmdline;
pub mod qmp;

use super::{
    check_instance_name, uidpool, HostInfo, HvError, Hypervisor, MigrationMode, MigrationOutcome,
    StartMode,
};
use crate::net::tap::{self, TapNic};
use crate::paths::Paths;
use crate::rpc::proto::{
    AssembledDisk, ConsoleInfo, HvInstanceInfo, InstanceSpec, MigrationStatus, NodeHvInfo, Params,
};
use crate::sys::cmd::{Command, Runner};
use cmdline::{hv_str, Accel, Boot, InstanceFiles, RunAsFlag, Security};
use qmp::{QemuVersion, QmpClient};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The hypervisor's name.
pub const NAME: &str = "kvm";

/// How long one QMP answer may take.
const QMP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a start waits for a new QEMU's monitor to answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Most of QEMU's stderr quoted in a start error.
const STDERR_TAIL_BYTES: usize = 2048;

/// Default `migration_port` (Ganeti's default).
pub const DEFAULT_MIGRATION_PORT: u64 = 8102;

/// What `conf/<name>.runtime` records about a started instance.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Runtime {
    /// The QEMU command line.
    pub argv: Vec<String>,
    /// Memory at start, MiB.
    pub memory_mib: u64,
    /// vCPUs.
    pub vcpus: u32,
    /// The NICs and their taps, to undo their setup when QEMU stops.
    #[serde(default)]
    pub nics: Vec<RuntimeNic>,
    /// The uid reserved from the uid pool (`security_model=pool`).
    #[serde(default)]
    pub uid: Option<u32>,
}

/// One NIC as the runtime file records it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RuntimeNic {
    /// The tap device.
    pub tap: String,
    /// The NIC as started.
    pub nic: crate::rpc::proto::NicSpec,
}

/// The KVM hypervisor of one node.
pub struct KvmHypervisor {
    paths: Paths,
    runner: Arc<dyn Runner>,
    root: PathBuf,
    dev_kvm: PathBuf,
    start_timeout: Option<Duration>,
}

impl KvmHypervisor {
    /// KVM under `paths`, running QEMU through `runner`.
    pub fn new(paths: &Paths, runner: Arc<dyn Runner>) -> Self {
        KvmHypervisor {
            paths: paths.clone(),
            runner,
            root: paths.run_dir().join("kvm-hypervisor"),
            dev_kvm: PathBuf::from("/dev/kvm"),
            start_timeout: Some(START_TIMEOUT),
        }
    }

    /// Sets how long a start waits for QEMU's monitor; `None` skips the
    /// wait (and so the check that QEMU runs), for tests whose runner only
    /// records the QEMU command.
    pub fn with_start_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// The files QEMU uses for `name`.
    pub fn files(&self, name: &str) -> Result<InstanceFiles, HvError> {
        check_instance_name(name)?;
        Ok(InstanceFiles {
            pid_file: self.root.join("pid").join(name),
            qmp_socket: self.root.join("ctrl").join(format!("{name}.qmp")),
            serial_socket: self.root.join("ctrl").join(format!("{name}.serial")),
            chroot_dir: self.root.join("chroot").join(name),
        })
    }

    fn runtime_file(&self, name: &str) -> PathBuf {
        self.root.join("conf").join(format!("{name}.runtime"))
    }

    fn fs_err(what: String) -> impl FnOnce(crate::sys::fs::FsError) -> HvError {
        move |source| HvError::Fs { what, source }
    }

    fn ensure_dirs(&self) -> Result<(), HvError> {
        for d in ["pid", "ctrl", "conf", "chroot"] {
            crate::sys::fs::ensure_dir(&self.root.join(d), 0o750)
                .map_err(Self::fs_err("creating KVM run directories".into()))?;
        }
        Ok(())
    }

    /// The accelerator: `kvm_flag` decides, else whether /dev/kvm opens.
    fn accel(&self, hvparams: &Params) -> Accel {
        match hv_str(hvparams, "kvm_flag") {
            "disabled" => Accel::Tcg,
            "enabled" => Accel::Kvm,
            _ => {
                let usable = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&self.dev_kvm)
                    .is_ok();
                if usable {
                    Accel::Kvm
                } else {
                    Accel::Tcg
                }
            }
        }
    }

    /// QEMU's pid when it runs.
    fn pid(&self, name: &str) -> Result<Option<u32>, HvError> {
        let files = self.files(name)?;
        let text = match std::fs::read_to_string(&files.pid_file) {
            Ok(t) => t,
            Err(_) => return Ok(None),
        };
        Ok(text
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|p| crate::sys::proc::is_running(*p)))
    }

    fn qmp(&self, name: &str) -> Result<QmpClient, HvError> {
        let files = self.files(name)?;
        QmpClient::connect(&files.qmp_socket, QMP_TIMEOUT).map_err(|source| HvError::Qmp {
            instance: name.to_string(),
            what: "connecting to QEMU's monitor".into(),
            source,
        })
    }

    fn qmp_do<T>(
        &self,
        name: &str,
        what: &str,
        f: impl FnOnce(&mut QmpClient) -> Result<T, qmp::QmpError>,
    ) -> Result<T, HvError> {
        let mut c = self.qmp(name)?;
        f(&mut c).map_err(|source| HvError::Qmp {
            instance: name.to_string(),
            what: what.to_string(),
            source,
        })
    }

    fn read_runtime(&self, name: &str) -> Option<Runtime> {
        let bytes = std::fs::read(self.runtime_file(name)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The flag and pool user QEMU needs for the instance's security
    /// model; reserves a uid for `pool` (the caller unlocks or releases it).
    fn security(
        &self,
        instance: &InstanceSpec,
    ) -> Result<(Security, Option<uidpool::LockedUid>), HvError> {
        let model = hv_str(&instance.hvparams, "security_model");
        if model != "user" && model != "pool" {
            return Ok((Security::default(), None));
        }
        let version = self.local_version(&instance.hvparams)?;
        let flag = RunAsFlag::for_version(version.major, version.minor);
        if model == "user" {
            return Ok((
                Security {
                    flag,
                    pool_user: None,
                },
                None,
            ));
        }
        let pool_err = |source| HvError::UidPool {
            instance: instance.name.clone(),
            source,
        };
        // The one ssconf value the node side reads (as Ganeti's hv_kvm does).
        let text = crate::ssconf::read(&self.paths, "uid_pool").unwrap_or_default();
        let ranges = uidpool::parse(&text).map_err(pool_err)?;
        let locked =
            uidpool::request_unused(&self.paths, &ranges, &crate::sys::proc::uid_has_processes)
                .map_err(pool_err)?;
        let uid = locked.uid();
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let user = match (flag, uidpool::passwd_entry(&passwd, uid)) {
            (RunAsFlag::RunWith, Some((_, gid))) => format!("{uid}:{gid}"),
            (RunAsFlag::RunWith, None) => format!("{uid}:{uid}"),
            (RunAsFlag::Runas, Some((name, _))) => name,
            (RunAsFlag::Runas, None) => {
                let _ = locked.release();
                return Err(HvError::State {
                    instance: instance.name.clone(),
                    reason: format!(
                        "uid {uid} of the uid pool has no user in /etc/passwd, \
                         which this QEMU's -runas needs"
                    ),
                });
            }
        };
        Ok((
            Security {
                flag,
                pool_user: Some(user),
            },
            Some(locked),
        ))
    }

    fn launch(
        &self,
        instance: &InstanceSpec,
        disks: &[AssembledDisk],
        boot: &Boot,
    ) -> Result<(), HvError> {
        self.ensure_dirs()?;
        let files = self.files(&instance.name)?;
        let (security, locked_uid) = self.security(instance)?;
        let give_back = |locked: Option<uidpool::LockedUid>| {
            if let Some(l) = locked {
                let _ = l.release();
            }
        };
        let argv = match cmdline::build(
            instance,
            disks,
            &files,
            self.accel(&instance.hvparams),
            &security,
            boot,
        ) {
            Ok(a) => a,
            Err(e) => {
                give_back(locked_uid);
                return Err(e);
            }
        };
        let nics: Vec<RuntimeNic> = instance
            .nics
            .iter()
            .enumerate()
            .map(|(idx, nic)| RuntimeNic {
                tap: cmdline::tap_name(instance, idx),
                nic: nic.clone(),
            })
            .collect();
        let prepared = self.prepare_files(instance, &files, argv.clone(), &nics, &locked_uid);
        if let Err(e) = prepared {
            give_back(locked_uid);
            return Err(e);
        }
        // With -daemonize QEMU returns once the VM is set up (or failed);
        // what it said on stderr before detaching is all we get.
        let stderr = match self.runner.run(&Command::new(argv)) {
            Ok(out) => out.stderr,
            Err(source) => {
                let _ = self.cleanup(&instance.name);
                give_back(locked_uid);
                return Err(HvError::Command {
                    instance: instance.name.clone(),
                    what: "starting QEMU".into(),
                    source: Box::new(source),
                });
            }
        };
        if let Some(timeout) = self.start_timeout {
            if let Err(reason) = self.wait_started(&instance.name, timeout) {
                self.kill_now(&instance.name);
                let _ = self.cleanup(&instance.name);
                give_back(locked_uid);
                return Err(HvError::StartFailed {
                    instance: instance.name.clone(),
                    reason,
                    stderr_tail: tail(&stderr, STDERR_TAIL_BYTES),
                });
            }
        }
        // QEMU runs under the uid now: the lock file alone marks it taken.
        if let Some(l) = locked_uid {
            l.unlock();
        }
        let incoming = matches!(boot, Boot::Incoming(_));
        if let Err(e) = self.configure_nics(&instance.name, &nics, incoming) {
            self.kill_now(&instance.name);
            let _ = self.cleanup(&instance.name);
            return Err(e);
        }
        let pw_file = hv_str(&instance.hvparams, "vnc_password_file");
        if !pw_file.is_empty() {
            let pw = crate::sys::fs::read(std::path::Path::new(pw_file))
                .map_err(Self::fs_err("reading the VNC password file".into()))?;
            let pw = String::from_utf8_lossy(&pw).trim().to_string();
            self.qmp_do(&instance.name, "setting the VNC password", |c| {
                c.execute(
                    "change-vnc-password",
                    Some(serde_json::json!({ "password": pw })),
                )
                .map(drop)
            })?;
        }
        Ok(())
    }

    /// Chroot directory, stale sockets and the runtime file before QEMU runs.
    fn prepare_files(
        &self,
        instance: &InstanceSpec,
        files: &InstanceFiles,
        argv: Vec<String>,
        nics: &[RuntimeNic],
        locked_uid: &Option<uidpool::LockedUid>,
    ) -> Result<(), HvError> {
        if cmdline::hv_bool(&instance.hvparams, "use_chroot", false) {
            crate::sys::fs::ensure_dir(&files.chroot_dir, 0o750)
                .map_err(Self::fs_err("creating the chroot directory".into()))?;
        }
        // Stale sockets of a dead QEMU would make the new one fail to bind.
        let _ = std::fs::remove_file(&files.qmp_socket);
        let _ = std::fs::remove_file(&files.serial_socket);
        let runtime = Runtime {
            argv,
            memory_mib: super::beparam_mib(instance, "maxmem")?,
            vcpus: super::beparam_vcpus(instance)?,
            nics: nics.to_vec(),
            uid: locked_uid.as_ref().map(uidpool::LockedUid::uid),
        };
        let data = serde_json::to_vec(&runtime).expect("strings and integers serialise");
        crate::sys::fs::atomic_write(&self.runtime_file(&instance.name), &data, 0o640).map_err(
            Self::fs_err(format!("writing the runtime file of {}", instance.name)),
        )
    }

    /// Waits until QEMU's pid file names a live process whose monitor
    /// answers; the reason why not otherwise.
    fn wait_started(&self, name: &str, timeout: Duration) -> Result<(), String> {
        let files = self.files(name).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + timeout;
        let mut last = "QEMU wrote no pid file".to_string();
        loop {
            let pid = std::fs::read_to_string(&files.pid_file)
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok());
            match pid {
                Some(pid) if !crate::sys::proc::is_running(pid) => {
                    return Err(format!("QEMU (pid {pid}) exited right after starting"));
                }
                Some(_) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match QmpClient::connect(
                        &files.qmp_socket,
                        left.max(Duration::from_millis(100)),
                    )
                    .and_then(|mut c| c.query_status())
                    {
                        Ok(_) => return Ok(()),
                        Err(e) => last = format!("QEMU's monitor does not answer: {e}"),
                    }
                }
                None => {}
            }
            if Instant::now() >= deadline {
                return Err(format!("{last} within {} s", timeout.as_secs()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Connects each NIC's tap; on a migration target routed NICs wait for
    /// the commit. The first failure is returned, with the NIC named.
    fn configure_nics(
        &self,
        name: &str,
        nics: &[RuntimeNic],
        incoming: bool,
    ) -> Result<(), HvError> {
        for (index, n) in nics.iter().enumerate() {
            if incoming && n.nic.mode == "routed" {
                continue;
            }
            let nic = TapNic {
                instance: name,
                index,
                nic: &n.nic,
                tap: &n.tap,
            };
            tap::configure(&self.paths, self.runner.as_ref(), &nic).map_err(|source| {
                HvError::Nic {
                    instance: name.to_string(),
                    source: Box::new(source),
                }
            })?;
        }
        Ok(())
    }

    /// Ends a QEMU at once (a failed start): SIGKILL, then waits for it.
    fn kill_now(&self, name: &str) {
        if let Ok(Some(pid)) = self.pid(name) {
            let _ = crate::sys::proc::send_signal(pid, crate::sys::proc::StopSignal::Kill);
            self.wait_gone(pid, Duration::from_secs(5));
        }
    }

    /// Removes the instance's files once QEMU is gone, undoing what
    /// outlives it: routed NICs' rules and routes, the pool uid.
    fn cleanup(&self, name: &str) -> Result<(), HvError> {
        let files = self.files(name)?;
        let mut result = Ok(());
        if let Some(rt) = self.read_runtime(name) {
            for (index, n) in rt.nics.iter().enumerate() {
                let nic = TapNic {
                    instance: name,
                    index,
                    nic: &n.nic,
                    tap: &n.tap,
                };
                tap::teardown(self.runner.as_ref(), &nic);
            }
            if let Some(uid) = rt.uid {
                result = uidpool::release(&self.paths, uid).map_err(|source| HvError::UidPool {
                    instance: name.to_string(),
                    source,
                });
            }
        }
        for f in [
            files.pid_file,
            files.qmp_socket,
            files.serial_socket,
            self.runtime_file(name),
        ] {
            let _ = std::fs::remove_file(f);
        }
        result
    }

    fn wait_gone(&self, pid: u32, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if !crate::sys::proc::is_running(pid) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// QEMU's version as `kvm_path --version` reports it on this node.
    pub fn local_version(&self, hvparams: &Params) -> Result<QemuVersion, HvError> {
        let prog = match hv_str(hvparams, "kvm_path") {
            "" => cmdline::DEFAULT_KVM_PATH,
            p => p,
        };
        let out = self
            .runner
            .run(&Command::new([prog, "--version"]))
            .map_err(|source| HvError::Command {
                instance: String::new(),
                what: "asking QEMU for its version".into(),
                source: Box::new(source),
            })?;
        QemuVersion::from_version_output(&out.stdout).ok_or_else(|| HvError::Parse {
            path: PathBuf::from(prog),
            reason: format!("no version in {:?}", out.stdout.trim()),
        })
    }

    fn migration_uri(instance: &InstanceSpec, target: &str) -> Result<String, HvError> {
        let port = match instance.hvparams.get("migration_port") {
            None | Some(serde_json::Value::Null) => DEFAULT_MIGRATION_PORT,
            Some(_) => super::param_u64(&instance.name, &instance.hvparams, "migration_port")?,
        };
        if target.is_empty() || target.contains(',') {
            return Err(HvError::BadParameter {
                instance: instance.name.clone(),
                param: "target_address".into(),
                value: target.into(),
                reason: "must be a host address".into(),
            });
        }
        Ok(if target.contains(':') {
            format!("tcp:[{target}]:{port}")
        } else {
            format!("tcp:{target}:{port}")
        })
    }
}

/// The last `max` bytes of `text` (on a character boundary), trimmed.
fn tail(text: &str, max: usize) -> String {
    let t = text.trim();
    let mut start = t.len().saturating_sub(max);
    while !t.is_char_boundary(start) {
        start += 1;
    }
    t[start..].to_string()
}

fn state_of(qemu_status: &str) -> &'static str {
    match qemu_status {
        "running" => "running",
        "shutdown" => "shutdown",
        "internal-error" | "guest-panicked" | "io-error" => "crashed",
        _ => "paused",
    }
}

impl Hypervisor for KvmHypervisor {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check_parameter_syntax(&self, hvparams: &Params) -> Result<(), HvError> {
        // Build a command line for a dummy instance: every parameter check
        // lives in one place, the builder.
        let mut be = Params::new();
        be.insert("maxmem".into(), serde_json::json!(128));
        be.insert("vcpus".into(), serde_json::json!(1));
        let dummy = InstanceSpec {
            name: "parameter-check".into(),
            uuid: String::new(),
            hypervisor: NAME.into(),
            hvparams: hvparams.clone(),
            beparams: be,
            os: String::new(),
            osparams: Default::default(),
            osparams_private: Default::default(),
            nics: Vec::new(),
            disks: Vec::new(),
            network_port: Some(cmdline::VNC_BASE_PORT + 1),
        };
        let files = self.files(&dummy.name)?;
        // The pool's uid is chosen at start; any user checks the syntax.
        let security = Security {
            flag: RunAsFlag::Runas,
            pool_user: Some("nobody".into()),
        };
        cmdline::build(
            &dummy,
            &[],
            &files,
            Accel::Tcg,
            &security,
            &Boot::Fresh(StartMode::Running),
        )
        .map(drop)
    }

    fn start(
        &self,
        instance: &InstanceSpec,
        disks: &[AssembledDisk],
        mode: StartMode,
    ) -> Result<(), HvError> {
        if self.pid(&instance.name)?.is_some() {
            return Ok(());
        }
        self.launch(instance, disks, &Boot::Fresh(mode))
    }

    fn stop(&self, instance: &InstanceSpec, timeout: Duration) -> Result<(), HvError> {
        let Some(pid) = self.pid(&instance.name)? else {
            return self.cleanup(&instance.name);
        };
        // Clean first; a guest without ACPI ignores it and the timeout ends it.
        if self
            .qmp_do(&instance.name, "powering down", QmpClient::system_powerdown)
            .is_ok()
            && self.wait_gone(pid, timeout)
        {
            return self.cleanup(&instance.name);
        }
        let _ = self.qmp_do(&instance.name, "quitting", QmpClient::quit);
        if !self.wait_gone(pid, Duration::from_secs(5)) {
            let _ = crate::sys::proc::send_signal(pid, crate::sys::proc::StopSignal::Kill);
            if !self.wait_gone(pid, Duration::from_secs(5)) {
                return Err(HvError::State {
                    instance: instance.name.clone(),
                    reason: format!("QEMU (pid {pid}) does not exit even after SIGKILL"),
                });
            }
        }
        self.cleanup(&instance.name)
    }

    fn reboot(&self, instance: &InstanceSpec) -> Result<(), HvError> {
        if self.pid(&instance.name)?.is_none() {
            return Err(HvError::NotRunning {
                instance: instance.name.clone(),
            });
        }
        self.qmp_do(&instance.name, "resetting", QmpClient::system_reset)
    }

    fn instance_info(
        &self,
        name: &str,
        _hvparams: &Params,
    ) -> Result<Option<HvInstanceInfo>, HvError> {
        if self.pid(name)?.is_none() {
            return Ok(None);
        }
        let runtime = self.read_runtime(name);
        let mut c = self.qmp(name)?;
        let status = c.query_status().map_err(|source| HvError::Qmp {
            instance: name.to_string(),
            what: "querying the status".into(),
            source,
        })?;
        let memory = c
            .query_balloon_mib()
            .ok()
            .or(runtime.as_ref().map(|r| r.memory_mib))
            .unwrap_or(0);
        Ok(Some(HvInstanceInfo {
            name: name.to_string(),
            state: state_of(&status).to_string(),
            memory_mib: memory,
            vcpus: runtime.map_or(0, |r| r.vcpus),
            cpu_time_secs: None,
        }))
    }

    fn list_instances(&self, _hvparams: &Params) -> Result<Vec<String>, HvError> {
        let Ok(entries) = std::fs::read_dir(self.root.join("pid")) else {
            return Ok(Vec::new());
        };
        let mut names = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if check_instance_name(&name).is_ok() && self.pid(&name)?.is_some() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn node_info(&self, _hvparams: &Params) -> Result<NodeHvInfo, HvError> {
        // QEMU processes are real: their memory is already in the host's use.
        let host = HostInfo::read(&self.paths)?;
        Ok(NodeHvInfo {
            hypervisor: NAME.into(),
            memory_total_mib: host.memory_total_mib,
            memory_free_mib: host.memory_total_mib.saturating_sub(host.memory_dom0_mib),
            memory_dom0_mib: host.memory_dom0_mib,
            cpu_total: host.cpu_total,
            cpu_nodes: 1,
            cpu_sockets: host.cpu_sockets,
        })
    }

    fn console(&self, instance: &InstanceSpec, node_host: &str) -> Result<ConsoleInfo, HvError> {
        let files = self.files(&instance.name)?;
        let mut info = ConsoleInfo {
            instance: instance.name.clone(),
            kind: "msg".into(),
            command: Vec::new(),
            host: None,
            user: None,
            port: None,
            message: None,
        };
        if cmdline::hv_bool(&instance.hvparams, "serial_console", true) {
            info.kind = "ssh".into();
            info.host = Some(node_host.to_string());
            info.user = Some("root".into());
            info.command = vec![
                "socat".into(),
                "STDIO,raw,echo=0,escape=0x1d".into(),
                format!("UNIX-CONNECT:{}", files.serial_socket.display()),
            ];
        } else if let (addr, Some(port)) = (
            hv_str(&instance.hvparams, "vnc_bind_address"),
            instance.network_port,
        ) {
            if addr.is_empty() {
                info.message = Some("no serial console and no VNC configured".into());
            } else {
                info.kind = "vnc".into();
                info.host = Some(if addr == "0.0.0.0" {
                    node_host.to_string()
                } else {
                    addr.to_string()
                });
                info.port = Some(port);
            }
        } else {
            info.message = Some("no serial console and no VNC configured".into());
        }
        Ok(info)
    }

    fn balloon_memory(&self, instance: &InstanceSpec, memory_mib: u64) -> Result<(), HvError> {
        if self.pid(&instance.name)?.is_none() {
            return Err(HvError::NotRunning {
                instance: instance.name.clone(),
            });
        }
        self.qmp_do(&instance.name, "ballooning", |c| c.balloon(memory_mib))
    }

    fn migration_info(&self, instance: &InstanceSpec) -> Result<serde_json::Value, HvError> {
        if self.pid(&instance.name)?.is_none() {
            return Err(HvError::NotRunning {
                instance: instance.name.clone(),
            });
        }
        let c = self.qmp(&instance.name)?;
        Ok(serde_json::json!({ "hypervisor": NAME, "qemu_version": c.version() }))
    }

    fn accept_instance(
        &self,
        instance: &InstanceSpec,
        info: &serde_json::Value,
        target_address: &str,
        disks: &[AssembledDisk],
    ) -> Result<(), HvError> {
        if self.pid(&instance.name)?.is_some() {
            return Err(HvError::AlreadyRunning {
                instance: instance.name.clone(),
            });
        }
        let local = self.local_version(&instance.hvparams)?;
        if let Ok(remote) = serde_json::from_value::<QemuVersion>(info["qemu_version"].clone()) {
            if (remote.major, remote.minor) != (local.major, local.minor) {
                return Err(HvError::State {
                    instance: instance.name.clone(),
                    reason: format!(
                        "cannot migrate between QEMU {remote} (source) and {local} (target)"
                    ),
                });
            }
        }
        let uri = Self::migration_uri(instance, target_address)?;
        self.launch(instance, disks, &Boot::Incoming(uri))
    }

    fn migrate(
        &self,
        instance: &InstanceSpec,
        info: &serde_json::Value,
        target_address: &str,
        mode: MigrationMode,
    ) -> Result<(), HvError> {
        let _ = info;
        let uri = Self::migration_uri(instance, target_address)?;
        let hvp = &instance.hvparams;
        let opt = |k: &str| super::param_u64(&instance.name, hvp, k).ok();
        self.qmp_do(&instance.name, "starting the migration", |c| {
            c.set_migration_limits(opt("migration_bandwidth"), opt("migration_downtime"))?;
            if mode == MigrationMode::NonLive {
                c.stop()?;
            }
            c.migrate(&uri)
        })
    }

    fn migration_status(&self, instance: &InstanceSpec) -> Result<MigrationStatus, HvError> {
        self.qmp_do(
            &instance.name,
            "querying the migration",
            QmpClient::query_migrate,
        )
    }

    fn finalize_migration_dst(
        &self,
        instance: &InstanceSpec,
        _info: &serde_json::Value,
        outcome: MigrationOutcome,
    ) -> Result<(), HvError> {
        match outcome {
            MigrationOutcome::Success => {
                // A non-live migration arrives paused.
                let status = self.qmp_do(
                    &instance.name,
                    "querying the status",
                    QmpClient::query_status,
                )?;
                // Routed NICs were left alone while the source still ran.
                let routed: Vec<RuntimeNic> = self
                    .read_runtime(&instance.name)
                    .map(|rt| rt.nics)
                    .unwrap_or_default();
                for (index, n) in routed.iter().enumerate() {
                    if n.nic.mode != "routed" {
                        continue;
                    }
                    let nic = TapNic {
                        instance: &instance.name,
                        index,
                        nic: &n.nic,
                        tap: &n.tap,
                    };
                    tap::configure(&self.paths, self.runner.as_ref(), &nic).map_err(|source| {
                        HvError::Nic {
                            instance: instance.name.clone(),
                            source: Box::new(source),
                        }
                    })?;
                }
                if status == "paused" || status == "postmigrate" {
                    self.qmp_do(&instance.name, "resuming", QmpClient::cont)?;
                }
                Ok(())
            }
            MigrationOutcome::Abort => self.stop(instance, Duration::ZERO),
        }
    }

    fn finalize_migration_src(
        &self,
        instance: &InstanceSpec,
        outcome: MigrationOutcome,
        _mode: MigrationMode,
    ) -> Result<(), HvError> {
        match outcome {
            MigrationOutcome::Success => self.stop(instance, Duration::ZERO),
            MigrationOutcome::Abort => {
                let status = self.qmp_do(
                    &instance.name,
                    "querying the status",
                    QmpClient::query_status,
                )?;
                if status != "running" {
                    self.qmp_do(&instance.name, "resuming", QmpClient::cont)?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::qmp::tests::fake_qmp_server;
    use super::*;
    use crate::hv::fake::test_support::{cleanup, instance, node};
    use crate::sys::cmd::RecordingRunner;
    use serde_json::json;

    fn kvm(p: &Paths) -> (KvmHypervisor, Arc<RecordingRunner>) {
        let r = Arc::new(RecordingRunner::new());
        (KvmHypervisor::new(p, r.clone()).with_start_timeout(None), r)
    }

    fn tcg_instance(name: &str) -> InstanceSpec {
        let mut i = instance(name, NAME, 256);
        i.hvparams.insert("kvm_flag".into(), json!("disabled"));
        i
    }

    #[test]
    fn start_runs_qemu_with_the_instance_files() {
        let p = node("kvm-start");
        let (hv, r) = kvm(&p);
        hv.start(&tcg_instance("k1"), &[], StartMode::Paused)
            .unwrap();
        let calls = r.calls();
        assert_eq!(calls.len(), 1);
        let s = calls[0].display();
        let ctrl = p.run_dir().join("kvm-hypervisor/ctrl");
        assert!(
            s.contains(&format!(
                "-qmp unix:{}/k1.qmp,server=on,wait=off",
                ctrl.display()
            )),
            "{s}"
        );
        assert!(s.contains("-accel tcg") && s.ends_with(" -S"), "{s}");
        let rt: Runtime = serde_json::from_slice(
            &std::fs::read(p.run_dir().join("kvm-hypervisor/conf/k1.runtime")).unwrap(),
        )
        .unwrap();
        assert_eq!((rt.memory_mib, rt.vcpus), (256, 2));
        // QEMU did not really start (recording runner): nothing runs.
        assert!(hv.instance_info("k1", &Params::new()).unwrap().is_none());
        assert!(hv.list_instances(&Params::new()).unwrap().is_empty());
        cleanup(&p);
    }

    #[test]
    fn qemu_failure_is_reported_with_the_instance() {
        let p = node("kvm-fail");
        let (hv, r) = kvm(&p);
        r.push_answer(Err("qemu-system-x86_64: -drive file=/nope: No such file"));
        let e = crate::error::chain(
            &hv.start(&tcg_instance("k1"), &[], StartMode::Running)
                .unwrap_err(),
        );
        assert!(
            e.contains("instance k1: starting QEMU") && e.contains("No such file"),
            "{e}"
        );
        cleanup(&p);
    }

    fn nic(mode: &str, link: &str, ip: Option<&str>) -> crate::rpc::proto::NicSpec {
        crate::rpc::proto::NicSpec {
            uuid: format!("uuid-{mode}"),
            name: None,
            mac: "aa:00:00:00:00:01".into(),
            ip: ip.map(str::to_string),
            mode: mode.into(),
            link: link.into(),
            vlan: String::new(),
            network: None,
        }
    }

    #[test]
    fn start_connects_each_nic_after_qemu_and_stop_removes_routes() {
        let p = node("kvm-nics");
        let (hv, r) = kvm(&p);
        let mut i = tcg_instance("k1");
        i.uuid = "0b9f5e8a-1c2d-4e5f-8a9b-0c1d2e3f4a5b".into();
        i.nics = vec![
            nic("bridged", "br0", None),
            nic("routed", "100", Some("192.0.2.5")),
        ];
        r.push_answer(Ok("")); // QEMU
        r.push_answer(Ok("")); // address
        r.push_answer(Ok("5: br0: <UP> mtu 1500 qdisc noqueue\n"));
        for _ in 0..4 {
            r.push_answer(Ok("")); // mtu, up, master, up
        }
        r.push_answer(Err("RTNETLINK answers: No such file or directory")); // no old rule
        hv.start(&i, &[], StartMode::Running).unwrap();
        let calls: Vec<String> = r.calls().iter().map(Command::display).collect();
        assert!(calls[0].starts_with("qemu-system-x86_64 "), "{calls:?}");
        assert_eq!(
            calls[1..],
            [
                "ip link set dev gnt0b9f5e8an0 address fe:00:00:00:00:01",
                "ip -o link show dev br0",
                "ip link set dev gnt0b9f5e8an0 mtu 1500",
                "ip link set dev gnt0b9f5e8an0 up",
                "ip link set dev gnt0b9f5e8an0 master br0",
                "ip link set dev gnt0b9f5e8an1 up",
                "ip rule del dev gnt0b9f5e8an1",
                "ip rule add dev gnt0b9f5e8an1 table 100",
                "ip route replace 192.0.2.5 table 100 proto static dev gnt0b9f5e8an1",
            ]
        );
        assert!(r.calls()[1]
            .env
            .contains(&("INTERFACE".to_string(), "gnt0b9f5e8an0".to_string())));
        let rt = hv.read_runtime("k1").unwrap();
        assert_eq!(rt.nics.len(), 2);
        assert_eq!(rt.nics[1].tap, "gnt0b9f5e8an1");
        // Nothing really runs: stop only cleans up, routes included.
        hv.stop(&i, Duration::from_secs(1)).unwrap();
        let calls: Vec<String> = r.calls().iter().map(Command::display).collect();
        assert_eq!(
            calls[10..],
            [
                "ip route del 192.0.2.5 table 100 dev gnt0b9f5e8an1",
                "ip rule del dev gnt0b9f5e8an1 table 100",
            ]
        );
        assert!(hv.read_runtime("k1").is_none());
        cleanup(&p);
    }

    #[test]
    fn a_nic_failure_fails_the_start_and_cleans_up() {
        let p = node("kvm-nicfail");
        let (hv, r) = kvm(&p);
        let mut i = tcg_instance("k1");
        i.nics = vec![nic("bridged", "br0", None), nic("routed", "", None)];
        r.push_answer(Ok("")); // QEMU
        let e = crate::error::chain(&hv.start(&i, &[], StartMode::Running).unwrap_err());
        assert!(
            e.contains("instance k1: network setup failed")
                && e.contains("NIC 1 (tap gntuuidk1n1)")
                && e.contains("routed mode needs an IP"),
            "{e}"
        );
        assert!(hv.read_runtime("k1").is_none());
        let r2 = Arc::new(RecordingRunner::new());
        let hv2 = KvmHypervisor::new(&p, r2.clone()).with_start_timeout(None);
        r2.push_answer(Ok("")); // QEMU
        r2.push_answer(Err("Cannot find device \"br0\"")); // address
        let e = crate::error::chain(
            &hv2.start(
                &tcg_instance_with(nic("bridged", "br0", None)),
                &[],
                StartMode::Running,
            )
            .unwrap_err(),
        );
        assert!(
            e.contains("NIC 0 (tap gntuuidk2n0)")
                && e.contains("`ip link set dev gntuuidk2n0 address fe:00:00:00:00:01` failed")
                && e.contains("Cannot find device"),
            "{e}"
        );
        // On a migration target a routed NIC waits for the commit.
        let (hv3, r3) = kvm(&p);
        r3.push_answer(Ok("QEMU emulator version 10.0.2\n"));
        hv3.accept_instance(
            &tcg_instance_with(nic("routed", "", Some("192.0.2.9"))),
            &json!({}),
            "127.0.0.2",
            &[],
        )
        .unwrap();
        assert_eq!(r3.calls().len(), 2, "{:?}", r3.calls());
        cleanup(&p);
    }

    fn tcg_instance_with(n: crate::rpc::proto::NicSpec) -> InstanceSpec {
        let mut i = tcg_instance("k2");
        i.nics = vec![n];
        i
    }

    #[test]
    fn pool_security_reserves_a_uid_and_stop_gives_it_back() {
        let p = node("kvm-pool");
        let (hv, r) = kvm(&p);
        let mut i = tcg_instance("k1");
        i.hvparams.insert("security_model".into(), json!("pool"));
        r.push_answer(Ok("QEMU emulator version 10.0.2\n"));
        let e = crate::error::chain(&hv.start(&i, &[], StartMode::Running).unwrap_err());
        assert!(
            e.contains("instance k1: uid pool") && e.contains("empty"),
            "{e}"
        );
        std::fs::create_dir_all(p.ssconf_file("uid_pool").parent().unwrap()).unwrap();
        crate::sys::fs::atomic_write(&p.ssconf_file("uid_pool"), b"3999000-3999001\n", 0o444)
            .unwrap();
        r.push_answer(Ok("QEMU emulator version 10.0.2\n"));
        hv.start(&i, &[], StartMode::Running).unwrap();
        let rt = hv.read_runtime("k1").unwrap();
        let uid = rt.uid.unwrap();
        assert!((3999000..=3999001).contains(&uid));
        let argv = rt.argv.join(" ");
        assert!(argv.contains(&format!("-run-with user={uid}:")), "{argv}");
        let lock = uidpool::lock_dir(&p).join(uid.to_string());
        assert!(lock.exists());
        hv.stop(&i, Duration::from_secs(1)).unwrap();
        assert!(!lock.exists());
        // An old QEMU gets -runas and needs a passwd entry for the uid.
        r.push_answer(Ok("QEMU emulator version 8.2.0\n"));
        let e = hv
            .start(&i, &[], StartMode::Running)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no user in /etc/passwd"), "{e}");
        assert!(std::fs::read_dir(uidpool::lock_dir(&p))
            .unwrap()
            .next()
            .is_none());
        cleanup(&p);
    }

    /// Writes an executable stand-in for QEMU.
    fn script(p: &Paths, name: &str, body: &str) -> String {
        let path = p.root().join(name);
        crate::sys::fs::atomic_write(&path, format!("#!/bin/sh\n{body}\n").as_bytes(), 0o755)
            .unwrap();
        path.display().to_string()
    }

    #[test]
    fn qemu_dying_at_start_fails_with_its_stderr_and_cleans_up() {
        let p = node("kvm-dying");
        let hv = KvmHypervisor::new(&p, Arc::new(crate::sys::cmd::RealRunner));
        let mut i = tcg_instance("k1");
        // Exits 1 before daemonizing, like a bad -drive.
        let bad = script(
            &p,
            "qemu-bad",
            "echo 'qemu-system-x86_64: -drive file=/nope: Could not open' >&2; exit 1",
        );
        i.hvparams.insert("kvm_path".into(), json!(bad));
        let e = crate::error::chain(&hv.start(&i, &[], StartMode::Running).unwrap_err());
        assert!(
            e.contains("instance k1: starting QEMU") && e.contains("Could not open"),
            "{e}"
        );
        assert!(hv.read_runtime("k1").is_none());
        // Daemonizes "successfully" but the VM process is already gone.
        let dies = script(
            &p,
            "qemu-dies",
            "while [ $# -gt 0 ]; do [ \"$1\" = -pidfile ] && pf=$2; shift; done\n\
             sh -c 'exit 0' & wait\necho $! > \"$pf\"\n\
             echo 'qemu-system-x86_64: warning: host lacks the feature' >&2",
        );
        i.hvparams.insert("kvm_path".into(), json!(dies));
        let e = hv
            .start(&i, &[], StartMode::Running)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("QEMU failed to start: QEMU (pid")
                && e.contains("exited right after starting")
                && e.contains("QEMU said: qemu-system-x86_64: warning: host lacks the feature"),
            "{e}"
        );
        assert!(hv.read_runtime("k1").is_none());
        assert!(!hv.files("k1").unwrap().pid_file.exists());
        cleanup(&p);
    }

    /// A stand-in QEMU: a real process (so pid checks work) plus a fake QMP
    /// server that kills it on `system_powerdown`/`quit`.
    fn fake_qemu(
        hv: &KvmHypervisor,
        name: &str,
        connections: usize,
    ) -> std::thread::JoinHandle<Vec<serde_json::Value>> {
        hv.ensure_dirs().unwrap();
        let pid = crate::sys::cmd::spawn_detached(&Command::new(["sleep", "600"])).unwrap();
        let files = hv.files(name).unwrap();
        crate::sys::fs::atomic_write(&files.pid_file, pid.to_string().as_bytes(), 0o644).unwrap();
        let rt = Runtime {
            argv: vec![],
            memory_mib: 512,
            vcpus: 2,
            nics: vec![],
            uid: None,
        };
        crate::sys::fs::atomic_write(
            &hv.runtime_file(name),
            &serde_json::to_vec(&rt).unwrap(),
            0o644,
        )
        .unwrap();
        fake_qmp_server(&files.qmp_socket, connections, move |cmd, _| match cmd {
            "query-status" => json!({"return": {"status": "running", "running": true}}),
            "query-balloon" => json!({"return": {"actual": 384u64 * 1024 * 1024}}),
            "system_powerdown" | "quit" => {
                let _ = crate::sys::proc::send_signal(pid, crate::sys::proc::StopSignal::Kill);
                json!({"return": {}})
            }
            _ => json!({"return": {}}),
        })
    }

    #[test]
    fn info_balloon_and_stop_through_qmp() {
        let p = node("kvm-qmp");
        let (hv, _r) = kvm(&p);
        let server = fake_qemu(&hv, "k1", 3);
        let i = tcg_instance("k1");
        assert_eq!(hv.list_instances(&Params::new()).unwrap(), vec!["k1"]);
        let info = hv.instance_info("k1", &Params::new()).unwrap().unwrap();
        assert_eq!(
            (info.state.as_str(), info.memory_mib, info.vcpus),
            ("running", 384, 2)
        );
        hv.balloon_memory(&i, 300).unwrap();
        hv.start(&i, &[], StartMode::Running).unwrap(); // already running: no-op
        hv.stop(&i, Duration::from_secs(60)).unwrap();
        assert!(hv.instance_info("k1", &Params::new()).unwrap().is_none());
        assert!(!hv.files("k1").unwrap().pid_file.exists());
        hv.stop(&i, Duration::from_secs(60)).unwrap();
        let seen: Vec<_> = server
            .join()
            .unwrap()
            .iter()
            .map(|r| r["execute"].as_str().unwrap().to_string())
            .collect();
        assert!(
            seen.contains(&"balloon".to_string()) && seen.contains(&"system_powerdown".to_string()),
            "{seen:?}"
        );
        cleanup(&p);
    }

    #[test]
    fn console_kinds() {
        let p = node("kvm-cons");
        let (hv, _r) = kvm(&p);
        let mut i = tcg_instance("k1");
        let c = hv.console(&i, "node1.example.com").unwrap();
        assert_eq!(c.kind, "ssh");
        assert_eq!(c.host.as_deref(), Some("node1.example.com"));
        assert_eq!(c.command[0], "socat");
        assert!(
            c.command[2].ends_with("kvm-hypervisor/ctrl/k1.serial"),
            "{:?}",
            c.command
        );
        i.hvparams.insert("serial_console".into(), json!(false));
        i.hvparams
            .insert("vnc_bind_address".into(), json!("0.0.0.0"));
        i.network_port = Some(5903);
        let c = hv.console(&i, "node1").unwrap();
        assert_eq!(
            (c.kind.as_str(), c.host.as_deref(), c.port),
            ("vnc", Some("node1"), Some(5903))
        );
        cleanup(&p);
    }

    #[test]
    fn accept_checks_versions_and_listens_for_the_migration() {
        let p = node("kvm-accept");
        let (hv, r) = kvm(&p);
        let mut i = tcg_instance("k1");
        i.hvparams.insert("migration_port".into(), json!(8200));
        let info =
            json!({"hypervisor": "kvm", "qemu_version": {"major": 10, "minor": 0, "micro": 2}});
        r.push_answer(Ok("QEMU emulator version 9.2.0\n"));
        let e = hv
            .accept_instance(&i, &info, "127.0.0.2", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("between QEMU 10.0.2 (source) and 9.2.0 (target)"),
            "{e}"
        );
        r.push_answer(Ok("QEMU emulator version 10.0.5\n"));
        hv.accept_instance(&i, &info, "127.0.0.2", &[]).unwrap();
        let calls = r.calls();
        let last = calls.last().unwrap().display();
        assert!(last.ends_with("-incoming tcp:127.0.0.2:8200"), "{last}");
        assert!(!last.contains(" -S"), "{last}");
        cleanup(&p);
    }

    #[test]
    fn parameter_syntax_check_uses_the_builder() {
        let p = node("kvm-syntax");
        let (hv, _r) = kvm(&p);
        let mut hvp = Params::new();
        hvp.insert("disk_cache".into(), json!("writeback"));
        hv.check_parameter_syntax(&hvp).unwrap();
        hvp.insert("nic_type".into(), json!("tulip"));
        assert!(hv
            .check_parameter_syntax(&hvp)
            .unwrap_err()
            .to_string()
            .contains("nic_type=tulip"));
        cleanup(&p);
    }

    /// Starts a real BIOS-only VM (no disk) under TCG, checks QMP says it
    /// runs, and stops it. Skips when QEMU is not installed.
    #[test]
    fn real_qemu_starts_and_stops() {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join("qemu-system-x86_64").is_file()))
            .unwrap_or(false);
        if !found {
            eprintln!("SKIPPED real_qemu_starts_and_stops: qemu-system-x86_64 is not installed");
            return;
        }
        let p = node("kvm-real");
        let hv = KvmHypervisor::new(&p, Arc::new(crate::sys::cmd::RealRunner));
        let mut i = tcg_instance("real1");
        i.hvparams.insert("serial_console".into(), json!(false));
        i.beparams.insert("vcpus".into(), json!(1));
        i.beparams.insert("maxmem".into(), json!(64));
        hv.start(&i, &[], StartMode::Running).unwrap();
        let info = hv.instance_info("real1", &Params::new()).unwrap().unwrap();
        assert_eq!(info.state, "running");
        // A BIOS with no OS ignores ACPI: the timeout path (quit) runs.
        hv.stop(&i, Duration::from_secs(1)).unwrap();
        assert!(hv.instance_info("real1", &Params::new()).unwrap().is_none());
        cleanup(&p);
    }
}
