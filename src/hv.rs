//! Hypervisors (node side): the [`Hypervisor`] trait and its backends,
//! [`fake`] (state records on the node's disk) and [`kvm`] (QEMU with a QMP
//! socket per instance). Called by `backend::instance` on behalf of noded;
//! never reads the cluster config: parameters arrive filled in the RPC
//! payload ([`crate::rpc::proto::InstanceSpec`]).
//!
//! Operations are written as "ensure state X" (habit 4): starting a running
//! instance or stopping a stopped one succeeds without doing anything, so a
//! logical unit can re-run after a failure.

pub mod fake;
pub mod kvm;
pub mod uidpool;

use crate::paths::Paths;
use crate::rpc::proto::{
    AssembledDisk, ConsoleInfo, HvInstanceInfo, InstanceSpec, MigrationStatus, NodeHvInfo, Params,
};
use std::path::PathBuf;
use std::time::Duration;

/// Names of the hypervisors this node can run, as the cluster's
/// `enabled_hypervisors` spells them.
pub const HYPERVISORS: &[&str] = &[fake::NAME, kvm::NAME];

/// Whether an instance starts with its CPUs running or paused
/// (`gnt-instance start --paused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    /// CPUs run at once.
    Running,
    /// CPUs stay paused until resumed.
    Paused,
}

impl StartMode {
    /// From the wire's `startup_paused` flag.
    pub fn from_paused_flag(paused: bool) -> Self {
        if paused {
            StartMode::Paused
        } else {
            StartMode::Running
        }
    }
}

/// Live or non-live migration (`gnt-instance migrate --non-live`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationMode {
    /// Copy memory while the instance runs.
    Live,
    /// Pause the instance first.
    NonLive,
}

/// How a migration ended, for the finalize steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationOutcome {
    /// The instance now runs on the target.
    Success,
    /// The migration failed or was cancelled; the source keeps the instance.
    Abort,
}

/// A failed hypervisor operation, naming the instance, parameter or file.
#[derive(Debug, thiserror::Error)]
pub enum HvError {
    /// No hypervisor of that name is built in.
    #[error("unknown hypervisor {name:?} (known: {})", HYPERVISORS.join(", "))]
    UnknownHypervisor {
        /// The name asked for.
        name: String,
    },
    /// An instance name that cannot name a file or process.
    #[error("invalid instance name {name:?}")]
    InvalidInstanceName {
        /// The name.
        name: String,
    },
    /// A hypervisor or backend parameter is missing or malformed.
    #[error("instance {instance}: parameter {param}={value}: {reason}")]
    BadParameter {
        /// The instance (empty for cluster-level checks).
        instance: String,
        /// Parameter name.
        param: String,
        /// Its value as received.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Starting would overcommit the node's memory.
    #[error("instance {instance}: not enough memory on node: needed {needed_mib} MiB, free {free_mib} MiB")]
    NotEnoughMemory {
        /// The instance.
        instance: String,
        /// Its `maxmem`.
        needed_mib: u64,
        /// What the node has free for instances.
        free_mib: u64,
    },
    /// The operation needs the instance running, and it is not.
    #[error("instance {instance} is not running")]
    NotRunning {
        /// The instance.
        instance: String,
    },
    /// The operation needs the instance absent, and it runs.
    #[error("instance {instance} is already running on this node")]
    AlreadyRunning {
        /// The instance.
        instance: String,
    },
    /// Something about the instance's state on this node prevents the operation.
    #[error("instance {instance}: {reason}")]
    State {
        /// The instance.
        instance: String,
        /// What is wrong.
        reason: String,
    },
    /// A request this hypervisor cannot do.
    #[error("hypervisor {hypervisor} does not support {operation}")]
    Unsupported {
        /// The hypervisor.
        hypervisor: &'static str,
        /// The operation.
        operation: String,
    },
    /// Reading or writing a hypervisor file failed.
    #[error("{what}")]
    Fs {
        /// What was being done, to what.
        what: String,
        /// The cause.
        #[source]
        source: crate::sys::fs::FsError,
    },
    /// A state record or host file could not be understood.
    #[error("cannot parse {path}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An external program (QEMU) failed.
    #[error("instance {instance}: {what}")]
    Command {
        /// The instance.
        instance: String,
        /// What was being done.
        what: String,
        /// The cause, with the command line and its output.
        #[source]
        source: Box<crate::sys::cmd::CmdError>,
    },
    /// QEMU did not come up: it exited, or its monitor never answered.
    #[error("instance {instance}: QEMU failed to start: {reason}{}", if stderr_tail.is_empty() { String::new() } else { format!("; QEMU said: {stderr_tail}") })]
    StartFailed {
        /// The instance.
        instance: String,
        /// What was seen.
        reason: String,
        /// The end of QEMU's standard error (empty if it said nothing).
        stderr_tail: String,
    },
    /// A NIC's tap could not be set up.
    #[error("instance {instance}: network setup failed")]
    Nic {
        /// The instance.
        instance: String,
        /// The NIC and the command that failed.
        #[source]
        source: Box<crate::net::tap::TapError>,
    },
    /// The uid pool could not give or take back a uid.
    #[error("instance {instance}: uid pool")]
    UidPool {
        /// The instance.
        instance: String,
        /// What went wrong.
        #[source]
        source: uidpool::UidPoolError,
    },
    /// Talking to QEMU's monitor failed.
    #[error("instance {instance}: {what}")]
    Qmp {
        /// The instance.
        instance: String,
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: kvm::qmp::QmpError,
    },
}

/// One hypervisor backend on this node. Every method is blocking (file
/// writes, QEMU commands); callers on an executor go through `rt::unblock`.
pub trait Hypervisor: Send + Sync {
    /// The name as the cluster spells it (`fake`, `kvm`).
    fn name(&self) -> &'static str;

    /// Checks the syntax of hypervisor parameters (master-side
    /// `CheckParameterSyntax`); does not look at the node.
    fn check_parameter_syntax(&self, hvparams: &Params) -> Result<(), HvError> {
        let _ = hvparams;
        Ok(())
    }

    /// Ensures the instance runs, on the given assembled disks.
    fn start(
        &self,
        instance: &InstanceSpec,
        disks: &[AssembledDisk],
        mode: StartMode,
    ) -> Result<(), HvError>;

    /// Ensures the instance is stopped: a clean shutdown first, a hard stop
    /// when `timeout` passes. Stopping a stopped instance succeeds.
    fn stop(&self, instance: &InstanceSpec, timeout: Duration) -> Result<(), HvError>;

    /// Soft reboot (the guest reboots, the hypervisor process stays).
    fn reboot(&self, instance: &InstanceSpec) -> Result<(), HvError>;

    /// Live state of one instance; `None` when it does not run here.
    fn instance_info(
        &self,
        name: &str,
        hvparams: &Params,
    ) -> Result<Option<HvInstanceInfo>, HvError>;

    /// Names of the instances running here.
    fn list_instances(&self, hvparams: &Params) -> Result<Vec<String>, HvError>;

    /// Live state of every instance running here.
    fn all_instances_info(&self, hvparams: &Params) -> Result<Vec<HvInstanceInfo>, HvError> {
        let mut out = Vec::new();
        for name in self.list_instances(hvparams)? {
            if let Some(info) = self.instance_info(&name, hvparams)? {
                out.push(info);
            }
        }
        Ok(out)
    }

    /// Memory and CPUs of the node as this hypervisor sees them.
    fn node_info(&self, hvparams: &Params) -> Result<NodeHvInfo, HvError>;

    /// How to reach the instance's console; `node_host` is this node's
    /// name or address, for consoles reached over SSH or VNC.
    fn console(&self, instance: &InstanceSpec, node_host: &str) -> Result<ConsoleInfo, HvError>;

    /// Sets the running instance's memory.
    fn balloon_memory(&self, instance: &InstanceSpec, memory_mib: u64) -> Result<(), HvError>;

    /// Source side: what the target needs to accept the instance (opaque
    /// to the master, handed to [`Hypervisor::accept_instance`]).
    fn migration_info(&self, instance: &InstanceSpec) -> Result<serde_json::Value, HvError>;

    /// Target side: prepares to receive the instance at `target_address`.
    fn accept_instance(
        &self,
        instance: &InstanceSpec,
        info: &serde_json::Value,
        target_address: &str,
        disks: &[AssembledDisk],
    ) -> Result<(), HvError>;

    /// Source side: starts sending the instance to `target_address`.
    fn migrate(
        &self,
        instance: &InstanceSpec,
        info: &serde_json::Value,
        target_address: &str,
        mode: MigrationMode,
    ) -> Result<(), HvError>;

    /// Source side: progress of the migration started by [`Hypervisor::migrate`].
    fn migration_status(&self, instance: &InstanceSpec) -> Result<MigrationStatus, HvError>;

    /// Target side: commits (the instance now runs here) or aborts (it
    /// must not run here).
    fn finalize_migration_dst(
        &self,
        instance: &InstanceSpec,
        info: &serde_json::Value,
        outcome: MigrationOutcome,
    ) -> Result<(), HvError>;

    /// Source side: success removes the instance here; abort resumes it.
    fn finalize_migration_src(
        &self,
        instance: &InstanceSpec,
        outcome: MigrationOutcome,
        mode: MigrationMode,
    ) -> Result<(), HvError>;
}

/// The hypervisor called `name`, working under the node's `paths`.
pub fn get(name: &str, paths: &Paths) -> Result<Box<dyn Hypervisor>, HvError> {
    match name {
        fake::NAME => Ok(Box::new(fake::FakeHypervisor::new(paths))),
        kvm::NAME => Ok(Box::new(kvm::KvmHypervisor::new(
            paths,
            std::sync::Arc::new(crate::sys::cmd::RealRunner),
        ))),
        other => Err(HvError::UnknownHypervisor {
            name: other.to_string(),
        }),
    }
}

/// Refuses instance names that cannot safely name a file (`/`, `..`,
/// empty, control characters): they become file and socket names here.
pub fn check_instance_name(name: &str) -> Result<(), HvError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(HvError::InvalidInstanceName {
            name: name.to_string(),
        })
    }
}

/// A MiB-valued backend parameter (`maxmem`, `minmem`) of the instance.
pub fn beparam_mib(instance: &InstanceSpec, key: &str) -> Result<u64, HvError> {
    param_u64(&instance.name, &instance.beparams, key)
}

/// The instance's `vcpus` from its filled backend parameters.
pub fn beparam_vcpus(instance: &InstanceSpec) -> Result<u32, HvError> {
    let v = param_u64(&instance.name, &instance.beparams, "vcpus")?;
    u32::try_from(v)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| HvError::BadParameter {
            instance: instance.name.clone(),
            param: "vcpus".into(),
            value: v.to_string(),
            reason: "must be between 1 and 2^32-1".into(),
        })
}

/// A non-negative integer parameter; accepts JSON numbers and decimal strings.
pub fn param_u64(instance: &str, params: &Params, key: &str) -> Result<u64, HvError> {
    let bad = |value: String, reason: &str| HvError::BadParameter {
        instance: instance.to_string(),
        param: key.to_string(),
        value,
        reason: reason.to_string(),
    };
    match params.get(key) {
        None | Some(serde_json::Value::Null) => Err(bad("(missing)".into(), "is required")),
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| bad(n.to_string(), "must be a non-negative integer")),
        Some(serde_json::Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| bad(s.clone(), "must be a non-negative integer")),
        Some(other) => Err(bad(other.to_string(), "must be a non-negative integer")),
    }
}

/// Memory and CPUs of the host, from `/proc/meminfo` and `/proc/cpuinfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostInfo {
    /// `MemTotal`, MiB.
    pub memory_total_mib: u64,
    /// What the host itself uses: `MemTotal - MemAvailable` (or, on old
    /// kernels, minus `MemFree + Buffers + Cached`), MiB.
    pub memory_dom0_mib: u64,
    /// `processor` entries.
    pub cpu_total: u32,
    /// Distinct `physical id` values (1 when absent).
    pub cpu_sockets: u32,
}

impl HostInfo {
    /// Reads the host's files. Under a virtual root, `<root>/proc/meminfo`
    /// and `<root>/proc/cpuinfo` take precedence when present, so a
    /// loopback-cluster node can pretend to have a given size.
    pub fn read(paths: &Paths) -> Result<HostInfo, HvError> {
        let pick = |p: &str| {
            let under = paths.under_root(p);
            if under.exists() {
                under
            } else {
                PathBuf::from(p)
            }
        };
        let meminfo = pick("/proc/meminfo");
        let cpuinfo = pick("/proc/cpuinfo");
        let read = |p: &PathBuf| {
            crate::sys::fs::read(p)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .map_err(|source| HvError::Fs {
                    what: "reading host information".into(),
                    source,
                })
        };
        let (total, dom0) = parse_meminfo(&read(&meminfo)?).map_err(|reason| HvError::Parse {
            path: meminfo.clone(),
            reason,
        })?;
        let (cpus, sockets) = parse_cpuinfo(&read(&cpuinfo)?);
        Ok(HostInfo {
            memory_total_mib: total,
            memory_dom0_mib: dom0,
            cpu_total: cpus,
            cpu_sockets: sockets,
        })
    }
}

/// `(MemTotal, host use)` in MiB from `/proc/meminfo` text.
pub fn parse_meminfo(text: &str) -> Result<(u64, u64), String> {
    let mut fields = std::collections::BTreeMap::new();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let Some(kib) = rest.split_whitespace().next() else {
            continue;
        };
        let kib: u64 = kib
            .parse()
            .map_err(|_| format!("field {} has a non-numeric value {kib:?}", key.trim()))?;
        fields.insert(key.trim().to_string(), kib / 1024);
    }
    let total = *fields.get("MemTotal").ok_or("no MemTotal line")?;
    let available = match fields.get("MemAvailable") {
        Some(a) => *a,
        None => ["MemFree", "Buffers", "Cached"]
            .iter()
            .filter_map(|k| fields.get(*k))
            .sum(),
    };
    Ok((total, total.saturating_sub(available)))
}

/// `(logical CPUs, sockets)` from `/proc/cpuinfo` text (at least 1 each).
pub fn parse_cpuinfo(text: &str) -> (u32, u32) {
    let mut cpus = 0u32;
    let mut sockets = std::collections::BTreeSet::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key.trim() {
            "processor" if value.trim().parse::<u32>().is_ok() => cpus += 1,
            "physical id" => {
                sockets.insert(value.trim().to_string());
            }
            _ => {}
        }
    }
    let sockets = u32::try_from(sockets.len()).unwrap_or(u32::MAX);
    (cpus.max(1), sockets.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_uses_available_or_old_fields() {
        let modern = "MemTotal:       16384000 kB\nMemFree:  1000 kB\nMemAvailable:   8192000 kB\n";
        assert_eq!(parse_meminfo(modern).unwrap(), (16000, 8000));
        let old =
            "MemTotal: 2048000 kB\nMemFree: 512000 kB\nBuffers: 256000 kB\nCached: 256000 kB\n";
        assert_eq!(parse_meminfo(old).unwrap(), (2000, 1000));
        assert!(parse_meminfo("MemFree: 1 kB\n")
            .unwrap_err()
            .contains("MemTotal"));
        assert!(parse_meminfo("MemTotal: lots kB\n")
            .unwrap_err()
            .contains("MemTotal"));
    }

    #[test]
    fn cpuinfo_counts_processors_and_sockets() {
        let text = "processor\t: 0\nphysical id\t: 0\n\nprocessor\t: 1\nphysical id\t: 1\n\nprocessor : 2\nphysical id : 1\n";
        assert_eq!(parse_cpuinfo(text), (3, 2));
        assert_eq!(parse_cpuinfo(""), (1, 1));
    }

    #[test]
    fn instance_names_that_are_not_file_names_are_refused() {
        for ok in ["inst1", "web.example.com", "a-b_c"] {
            check_instance_name(ok).unwrap();
        }
        for bad in ["", "..", "../x", "a/b", ".hidden", "a b", "x\n"] {
            assert!(check_instance_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn integer_params_accept_numbers_and_strings() {
        let mut p = Params::new();
        p.insert("maxmem".into(), serde_json::json!(512));
        p.insert("minmem".into(), serde_json::json!("256"));
        p.insert("vcpus".into(), serde_json::json!(-1));
        assert_eq!(param_u64("i", &p, "maxmem").unwrap(), 512);
        assert_eq!(param_u64("i", &p, "minmem").unwrap(), 256);
        let e = param_u64("i", &p, "vcpus").unwrap_err().to_string();
        assert!(e.contains("vcpus=-1"), "{e}");
        let e = param_u64("i", &p, "nope").unwrap_err().to_string();
        assert!(e.contains("nope") && e.contains("required"), "{e}");
    }

    #[test]
    fn unknown_hypervisor_is_named() {
        let p = Paths::virtual_node(std::path::Path::new("/tmp/x/n1"), "n1").unwrap();
        let e = get("xen-pvm", &p).err().unwrap().to_string();
        assert!(e.contains("xen-pvm") && e.contains("fake"), "{e}");
    }
}
