//! The procedures of RPC protocol version 1: names, arguments and results.
//!
//! Paths are `"/" + name`. Arguments are a JSON object (the structs below,
//! unknown keys refused); a successful reply's payload is the result type.
//! Paths of files are the production paths (`/var/lib/ganeti/…`); a node
//! maps them under its own root (`GANETI_ROOTDIR`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `version`: protocol and software version; served configured or not.
pub const VERSION: &str = "version";
/// `node_info`: facts for `gnt-cluster verify` (clock, certificate expiry,
/// checksums of the files the master names).
pub const NODE_INFO: &str = "node_info";
/// `upload_files`: write files (allow-listed paths only), atomically.
pub const UPLOAD_FILES: &str = "upload_files";
/// `remove_files`: remove files (allow-listed paths only); missing is fine.
pub const REMOVE_FILES: &str = "remove_files";
/// `write_ssconf`: replace the node's `ssconf_*` files with the given set.
pub const WRITE_SSCONF: &str = "write_ssconf";
/// `run_command`: run a shell command (`gnt-cluster command`).
pub const RUN_COMMAND: &str = "run_command";
/// `powercycle`: reboot the node, after replying.
pub const POWERCYCLE: &str = "powercycle";
/// `master_info`: the node's vote in a master election.
pub const MASTER_INFO: &str = "master_info";
/// `master_ip`: add or remove the cluster's master IP on this node.
pub const MASTER_IP: &str = "master_ip";
/// `daemons`: start or stop Ganeti daemons on this node.
pub const DAEMONS: &str = "daemons";
/// `leave_cluster`: remove the cluster's files and stop noded (node removal).
pub const LEAVE_CLUSTER: &str = "leave_cluster";
/// `join_hello`: first step of the join protocol (unconfigured node only).
pub const JOIN_HELLO: &str = "join_hello";
/// `join_complete`: second step of the join protocol (unconfigured node only).
pub const JOIN_COMPLETE: &str = "join_complete";

/// Procedures a configured node serves.
pub const CONFIGURED_PROCEDURES: &[&str] = &[
    VERSION,
    NODE_INFO,
    UPLOAD_FILES,
    REMOVE_FILES,
    WRITE_SSCONF,
    RUN_COMMAND,
    POWERCYCLE,
    MASTER_INFO,
    MASTER_IP,
    DAEMONS,
    LEAVE_CLUSTER,
];

/// Procedures an unconfigured node (no `server.pem` yet) serves.
pub const UNCONFIGURED_PROCEDURES: &[&str] = &[VERSION, JOIN_HELLO, JOIN_COMPLETE];

/// Result of [`VERSION`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionInfo {
    /// The node's RPC protocol version.
    pub protocol: u32,
    /// The node's software version (`CARGO_PKG_VERSION`).
    pub software: String,
    /// The node's name as it knows itself.
    pub name: String,
    /// Whether the node is part of a cluster (has the cluster certificate).
    pub configured: bool,
}

/// Arguments of [`NODE_INFO`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeInfoArgs {
    /// Production paths whose SHA-1 the node should report.
    #[serde(default)]
    pub checksum_paths: Vec<String>,
}

/// Result of [`NODE_INFO`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeInfo {
    /// The node's name as it knows itself.
    pub name: String,
    /// RPC protocol version.
    pub protocol: u32,
    /// Software version.
    pub software: String,
    /// The node's clock, seconds since the epoch, taken while answering.
    pub time: f64,
    /// `notAfter` of the node's `server.pem`, seconds since the epoch.
    pub cert_not_after: Option<f64>,
    /// SHA-1 (hex) of each requested file; `None` when it does not exist.
    pub checksums: BTreeMap<String, Option<String>>,
    /// SHA-1 (hex) of every `ssconf_*` file the node has, by key.
    pub ssconf: BTreeMap<String, String>,
}

/// One file to write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileUpload {
    /// Production path.
    pub path: String,
    /// Content, base64 ([`super::b64`]).
    pub data: String,
    /// Permission bits (e.g. `0o600`).
    pub mode: u32,
}

/// Arguments of [`UPLOAD_FILES`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadFilesArgs {
    /// The files; all are checked against the allow-list before any is written.
    pub files: Vec<FileUpload>,
}

/// Arguments of [`REMOVE_FILES`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveFilesArgs {
    /// Production paths.
    pub paths: Vec<String>,
}

/// Arguments of [`WRITE_SSCONF`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteSsconfArgs {
    /// Ssconf key (`cluster_name`, `master_node`, …) → file content.
    /// Keys are checked against Ganeti's ssconf key list.
    pub files: BTreeMap<String, String>,
}

/// Arguments of [`RUN_COMMAND`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunCommandArgs {
    /// Run with `/bin/sh -c`.
    pub command: String,
    /// Killed after this many seconds.
    pub timeout_secs: f64,
}

/// Result of [`RUN_COMMAND`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandOutput {
    /// Exit status (128+signal when killed by a signal).
    pub exit_code: i32,
    /// Standard output and error, interleaved as written.
    pub output: String,
}

/// Arguments of [`POWERCYCLE`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowercycleArgs {
    /// The hypervisor the node runs (Ganeti passes it; informative).
    pub hypervisor: String,
}

/// Result of [`MASTER_INFO`]: the node's vote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterInfo {
    /// The node's name.
    pub name: String,
    /// The master according to the node's `ssconf_master_node`.
    pub master: Option<String>,
    /// `serial_no` of the node's copy of `config.data` (candidates only).
    pub config_serial: Option<u64>,
}

/// Arguments of [`MASTER_IP`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterIpArgs {
    /// `"start"` (add the address) or `"stop"` (remove it).
    pub action: String,
    /// The cluster's master IP.
    pub ip: String,
    /// Prefix length.
    pub netmask: u8,
    /// The master network device.
    pub netdev: String,
    /// 4 or 6.
    pub family: u8,
    /// Run `/etc/ganeti/scripts/master-ip-setup` instead of the built-in
    /// `ip address add/del` (the cluster's `use_external_mip_script`).
    pub external_script: bool,
}

/// Arguments of [`DAEMONS`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonsArgs {
    /// `"start"` or `"stop"`.
    pub action: String,
    /// Daemon names (`ganeti-masterd`, `ganeti-confd`, `ganeti-rapi`).
    pub daemons: Vec<String>,
}

/// Arguments of [`JOIN_HELLO`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinHello {
    /// Random, hex; chosen by the master.
    pub master_nonce: String,
    /// The cluster's name (shown in the node's log).
    pub cluster_name: String,
}

/// Result of [`JOIN_HELLO`]: the node proves it holds the token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinHelloReply {
    /// Random, hex; chosen by the node, valid for one `join_complete`.
    pub node_nonce: String,
    /// The public part of the token the node holds (`id.expiry`).
    pub token_id: String,
    /// SHA-256 of the node's TLS certificate as the node sees it.
    pub node_cert_sha256: String,
    /// HMAC over the transcript with the token's secret (`docs/rpc.md`).
    pub mac: String,
}

/// Arguments of [`JOIN_COMPLETE`]: the master proves it holds the token and
/// hands over the cluster's secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinComplete {
    /// The nonce of the node's hello reply.
    pub node_nonce: String,
    /// HMAC over the transcript with the token's secret (`docs/rpc.md`).
    pub mac: String,
    /// The cluster files to install (`server.pem`, `hmac.key`, …).
    pub files: Vec<FileUpload>,
}

// ---------------------------------------------------------------------
// Instances (issue 5): hypervisors, block devices, OS definitions.
// The master sends everything a node needs, fully resolved (parameters
// already filled from cluster → group → instance); the node never reads
// the config.

/// `instance_start`: assemble nothing, start the instance on the hypervisor
/// with the given block devices (from `blockdev_assemble`).
pub const INSTANCE_START: &str = "instance_start";
/// `instance_shutdown`: soft stop (ACPI/powerdown), hard after the timeout.
pub const INSTANCE_SHUTDOWN: &str = "instance_shutdown";
/// `instance_reboot`: soft, hard or full (stop + start) reboot.
pub const INSTANCE_REBOOT: &str = "instance_reboot";
/// `instance_info`: live state of one instance (`null` when not running).
pub const INSTANCE_INFO: &str = "instance_info";
/// `all_instances_info`: live state of every instance of the hypervisors.
pub const ALL_INSTANCES_INFO: &str = "all_instances_info";
/// `node_hv_info`: memory and CPUs of the node per hypervisor.
pub const NODE_HV_INFO: &str = "node_hv_info";
/// `instance_console`: how to reach the instance's console.
pub const INSTANCE_CONSOLE: &str = "instance_console";
/// `instance_balloon_memory`: set the runtime memory.
pub const INSTANCE_BALLOON_MEMORY: &str = "instance_balloon_memory";
/// `migration_info`: source side, what the target must know.
pub const MIGRATION_INFO: &str = "migration_info";
/// `accept_instance`: target side, prepare to receive.
pub const ACCEPT_INSTANCE: &str = "accept_instance";
/// `instance_migrate`: source side, start the live migration.
pub const INSTANCE_MIGRATE: &str = "instance_migrate";
/// `migration_status`: source side, progress of the migration.
pub const MIGRATION_STATUS: &str = "migration_status";
/// `finalize_migration_dst`: target side, success or abort.
pub const FINALIZE_MIGRATION_DST: &str = "finalize_migration_dst";
/// `finalize_migration_src`: source side, success or abort.
pub const FINALIZE_MIGRATION_SRC: &str = "finalize_migration_src";

/// `blockdev_create`: create a disk (and its children) on this node.
pub const BLOCKDEV_CREATE: &str = "blockdev_create";
/// `blockdev_remove`: remove a disk from this node.
pub const BLOCKDEV_REMOVE: &str = "blockdev_remove";
/// `blockdev_assemble`: make a disk usable; returns its device path.
pub const BLOCKDEV_ASSEMBLE: &str = "blockdev_assemble";
/// `blockdev_shutdown`: stop using a disk (deactivate).
pub const BLOCKDEV_SHUTDOWN: &str = "blockdev_shutdown";
/// `blockdev_grow`: grow a disk by an amount.
pub const BLOCKDEV_GROW: &str = "blockdev_grow";
/// `blockdev_status`: per-disk status (`gnt-instance info`, verify-disks).
pub const BLOCKDEV_STATUS: &str = "blockdev_status";
/// `blockdev_getsize`: actual sizes of disks (`repair-disk-sizes`).
pub const BLOCKDEV_GETSIZE: &str = "blockdev_getsize";

/// `os_diagnose`: every OS definition found on the node's search path.
pub const OS_DIAGNOSE: &str = "os_diagnose";
/// `os_validate`: check an OS name/variant and parameters (runs `verify`).
pub const OS_VALIDATE: &str = "os_validate";
/// `instance_os_add`: run the OS `create` script on the instance's disks.
pub const INSTANCE_OS_ADD: &str = "instance_os_add";
/// `instance_os_rename`: run the OS `rename` script.
pub const INSTANCE_OS_RENAME: &str = "instance_os_rename";
/// `instance_os_export`/`instance_os_import`: export/import scripts (gnt-backup).
pub const INSTANCE_OS_EXPORT: &str = "instance_os_export";
/// See [`INSTANCE_OS_EXPORT`].
pub const INSTANCE_OS_IMPORT: &str = "instance_os_import";

/// The block-device procedures among [`INSTANCE_PROCEDURES`].
pub const BLOCKDEV_PROCEDURES: &[&str] = &[
    BLOCKDEV_CREATE,
    BLOCKDEV_REMOVE,
    BLOCKDEV_ASSEMBLE,
    BLOCKDEV_SHUTDOWN,
    BLOCKDEV_GROW,
    BLOCKDEV_STATUS,
    BLOCKDEV_GETSIZE,
];

/// The OS-definition procedures among [`INSTANCE_PROCEDURES`].
pub const OS_PROCEDURES: &[&str] = &[
    OS_DIAGNOSE,
    OS_VALIDATE,
    INSTANCE_OS_ADD,
    INSTANCE_OS_RENAME,
    INSTANCE_OS_EXPORT,
    INSTANCE_OS_IMPORT,
];

/// Instance, block-device and OS procedures a configured node serves.
pub const INSTANCE_PROCEDURES: &[&str] = &[
    INSTANCE_START,
    INSTANCE_SHUTDOWN,
    INSTANCE_REBOOT,
    INSTANCE_INFO,
    ALL_INSTANCES_INFO,
    NODE_HV_INFO,
    INSTANCE_CONSOLE,
    INSTANCE_BALLOON_MEMORY,
    MIGRATION_INFO,
    ACCEPT_INSTANCE,
    INSTANCE_MIGRATE,
    MIGRATION_STATUS,
    FINALIZE_MIGRATION_DST,
    FINALIZE_MIGRATION_SRC,
    BLOCKDEV_CREATE,
    BLOCKDEV_REMOVE,
    BLOCKDEV_ASSEMBLE,
    BLOCKDEV_SHUTDOWN,
    BLOCKDEV_GROW,
    BLOCKDEV_STATUS,
    BLOCKDEV_GETSIZE,
    OS_DIAGNOSE,
    OS_VALIDATE,
    INSTANCE_OS_ADD,
    INSTANCE_OS_RENAME,
    INSTANCE_OS_EXPORT,
    INSTANCE_OS_IMPORT,
    // Transfers (issue 5): the block at the end of this file.
    TRANSFER_READ,
    TRANSFER_PULL,
    EXPORT_LIST,
    EXPORT_INFO,
    EXPORT_FINALIZE,
    EXPORT_REMOVE,
];

/// A parameter dictionary as it travels (`hvparams`, `beparams`, …).
pub type Params = BTreeMap<String, serde_json::Value>;

/// One NIC of an instance, resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NicSpec {
    /// UUID.
    pub uuid: String,
    /// Optional name.
    pub name: Option<String>,
    /// MAC address.
    pub mac: String,
    /// IP address, if any.
    pub ip: Option<String>,
    /// `bridged`, `routed` or `openvswitch`.
    pub mode: String,
    /// Bridge / routing table / switch.
    pub link: String,
    /// VLAN (openvswitch), `""` if none.
    pub vlan: String,
    /// Network name, if the NIC is in one.
    pub network: Option<String>,
}

/// One disk of an instance, resolved (Ganeti's `Disk` object minus the
/// bookkeeping); `logical_id` in Ganeti's JSON form for the disk type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskSpec {
    /// UUID.
    pub uuid: String,
    /// Optional name.
    pub name: Option<String>,
    /// `disk/0`, …
    pub iv_name: String,
    /// `plain`, `drbd`, `file`, `sharedfile`, `blockdev`, `ext`, …
    pub dev_type: String,
    /// Type-specific identity (Ganeti's `logical_id`).
    pub logical_id: serde_json::Value,
    /// Size in MiB.
    pub size_mib: u64,
    /// `rw` or `ro`.
    pub mode: String,
    /// Disk parameters, filled.
    pub params: Params,
    /// Child devices (DRBD's data and metadata volumes).
    pub children: Vec<DiskSpec>,
}

/// Everything a node needs to know about one instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceSpec {
    /// Name.
    pub name: String,
    /// UUID.
    pub uuid: String,
    /// Hypervisor name (`fake`, `kvm`).
    pub hypervisor: String,
    /// Hypervisor parameters, filled (cluster → OS → instance).
    pub hvparams: Params,
    /// Backend parameters, filled (`maxmem`, `minmem`, `vcpus`, …).
    pub beparams: Params,
    /// OS name with variant (`debootstrap+default`).
    pub os: String,
    /// OS parameters, filled.
    pub osparams: BTreeMap<String, String>,
    /// Private OS parameters, filled.
    pub osparams_private: BTreeMap<String, String>,
    /// NICs in order.
    pub nics: Vec<NicSpec>,
    /// Disks in order.
    pub disks: Vec<DiskSpec>,
    /// VNC/SPICE port the master allocated, if any.
    pub network_port: Option<u32>,
}

/// A disk made usable on a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssembledDisk {
    /// The disk's UUID.
    pub uuid: String,
    /// Block device or file the hypervisor opens.
    pub path: String,
    /// A URI the hypervisor may use instead (userspace access), if any.
    pub uri: Option<String>,
}

/// Live state of one instance as the hypervisor reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HvInstanceInfo {
    /// Name.
    pub name: String,
    /// `running`, `paused`, `shutdown`, `crashed`, … (Ganeti's hv states).
    pub state: String,
    /// Current memory in MiB.
    pub memory_mib: u64,
    /// Current vCPUs.
    pub vcpus: u32,
    /// Seconds of CPU time used, if known.
    pub cpu_time_secs: Option<f64>,
}

/// What a node's hypervisor reports about the node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeHvInfo {
    /// Hypervisor name.
    pub hypervisor: String,
    /// Total memory, MiB.
    pub memory_total_mib: u64,
    /// Memory free for instances, MiB.
    pub memory_free_mib: u64,
    /// Memory used by the node itself, MiB.
    pub memory_dom0_mib: u64,
    /// Logical CPUs.
    pub cpu_total: u32,
    /// NUMA nodes.
    pub cpu_nodes: u32,
    /// CPU sockets.
    pub cpu_sockets: u32,
}

/// Arguments of [`INSTANCE_START`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceStartArgs {
    /// The instance.
    pub instance: InstanceSpec,
    /// Its disks, assembled on this node, in order.
    pub disks: Vec<AssembledDisk>,
    /// Start with the CPUs paused.
    pub startup_paused: bool,
}

/// Arguments of [`INSTANCE_SHUTDOWN`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceShutdownArgs {
    /// The instance.
    pub instance: InstanceSpec,
    /// Seconds to wait for a clean stop before a hard one.
    pub timeout_secs: u64,
}

/// Arguments of [`INSTANCE_REBOOT`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceRebootArgs {
    /// The instance.
    pub instance: InstanceSpec,
    /// `soft`, `hard` or `full`.
    pub reboot_type: String,
    /// Seconds to wait for a clean stop (full reboot).
    pub shutdown_timeout_secs: u64,
    /// Disks, for a full reboot's start.
    pub disks: Vec<AssembledDisk>,
}

/// Arguments of [`INSTANCE_INFO`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceInfoArgs {
    /// Instance name.
    pub name: String,
    /// Its hypervisor.
    pub hypervisor: String,
    /// The hypervisor's cluster parameters.
    pub hvparams: Params,
}

/// Arguments of [`ALL_INSTANCES_INFO`] and [`NODE_HV_INFO`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HypervisorsArgs {
    /// Hypervisor name → its cluster parameters.
    pub hypervisors: BTreeMap<String, Params>,
}

/// Result of [`INSTANCE_CONSOLE`] (Ganeti's `InstanceConsole`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleInfo {
    /// Instance name.
    pub instance: String,
    /// `ssh`, `vnc`, `spice` or `msg`.
    pub kind: String,
    /// For `ssh`: the command to run on `host` as `user`.
    pub command: Vec<String>,
    /// Host to connect to.
    pub host: Option<String>,
    /// User for `ssh`.
    pub user: Option<String>,
    /// Port for `vnc`/`spice`.
    pub port: Option<u32>,
    /// For `msg`: the text to show.
    pub message: Option<String>,
}

/// Arguments of [`INSTANCE_BALLOON_MEMORY`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalloonArgs {
    /// The instance.
    pub instance: InstanceSpec,
    /// New runtime memory, MiB.
    pub memory_mib: u64,
}

/// Arguments of the migration procedures. `info` is the opaque answer of
/// [`MIGRATION_INFO`] handed from source to target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrationArgs {
    /// The instance.
    pub instance: InstanceSpec,
    /// From [`MIGRATION_INFO`] (null for that call itself).
    pub info: serde_json::Value,
    /// The target node's address (secondary IP as Ganeti uses).
    pub target_address: String,
    /// Live (true) or non-live (false, pause first).
    pub live: bool,
    /// For the finalize calls: whether the migration succeeded.
    pub success: bool,
    /// Disks assembled on the node the call goes to.
    pub disks: Vec<AssembledDisk>,
}

/// Result of [`MIGRATION_STATUS`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrationStatus {
    /// `active`, `completed`, `failed` or `cancelled`.
    pub status: String,
    /// Bytes transferred so far.
    pub transferred_bytes: u64,
    /// Bytes of RAM in total.
    pub total_bytes: u64,
    /// The hypervisor's message on failure.
    pub message: Option<String>,
}

/// Arguments of the single-disk block-device procedures ([`BLOCKDEV_CREATE`],
/// [`BLOCKDEV_REMOVE`], [`BLOCKDEV_ASSEMBLE`], [`BLOCKDEV_SHUTDOWN`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockdevArgs {
    /// The disk.
    pub disk: DiskSpec,
    /// The instance owning it (for tags, file names and logs).
    pub instance_name: String,
    /// Whether this node is the instance's primary.
    pub on_primary: bool,
    /// Exclusive storage (LVM spindles).
    pub exclusive_storage: bool,
}

/// Arguments of [`BLOCKDEV_GROW`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockdevGrowArgs {
    /// The disk (its `size_mib` is the size before growing).
    pub disk: DiskSpec,
    /// How much to add, MiB.
    pub amount_mib: u64,
    /// Only check that it can be done.
    pub dry_run: bool,
    /// Grow only the backing storage (DRBD children), not the device.
    pub backing_only: bool,
}

/// Arguments of [`BLOCKDEV_STATUS`] and [`BLOCKDEV_GETSIZE`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockdevsArgs {
    /// The disks.
    pub disks: Vec<DiskSpec>,
}

/// One disk's status (an element of [`BLOCKDEV_STATUS`]'s result).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskStatus {
    /// The disk's UUID.
    pub uuid: String,
    /// Whether it exists on the node.
    pub present: bool,
    /// Device path when assembled.
    pub path: Option<String>,
    /// Resync progress, percent (DRBD), if syncing.
    pub sync_percent: Option<f64>,
    /// Estimated seconds to the end of the resync.
    pub estimated_time_secs: Option<f64>,
    /// Whether redundancy is degraded.
    pub is_degraded: bool,
    /// `ok`, `degraded` or `unknown` (Ganeti's local disk status).
    pub ldisk_status: String,
}

/// One OS definition found on a node ([`OS_DIAGNOSE`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OsInfo {
    /// Name (directory name).
    pub name: String,
    /// Directory it was found in.
    pub path: String,
    /// Whether it is usable.
    pub valid: bool,
    /// Why not, when not.
    pub diagnose: String,
    /// `variants.list`.
    pub variants: Vec<String>,
    /// `parameters.list`: name and description.
    pub parameters: Vec<(String, String)>,
    /// `ganeti_api_version` values it supports.
    pub api_versions: Vec<u32>,
    /// Trusted OS (runs without sandbox) — API 20.
    pub trusted: bool,
}

/// Arguments of [`OS_VALIDATE`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OsValidateArgs {
    /// Fail when the OS is missing (else answer false).
    pub required: bool,
    /// OS name with variant.
    pub name: String,
    /// Checks: `parameters`.
    pub checks: Vec<String>,
    /// OS parameters to validate (public and private together).
    pub osparams: BTreeMap<String, String>,
}

/// Arguments of [`INSTANCE_OS_ADD`] and [`INSTANCE_OS_RENAME`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceOsArgs {
    /// The instance (for rename: with the new name).
    pub instance: InstanceSpec,
    /// Its disks, assembled on this node.
    pub disks: Vec<AssembledDisk>,
    /// Reinstall rather than first install (`create` either way).
    pub reinstall: bool,
    /// The old name, for rename.
    pub old_name: Option<String>,
    /// `DEBUG_LEVEL`.
    pub debug: u32,
}

/// Arguments of [`INSTANCE_CONSOLE`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceConsoleArgs {
    /// The instance.
    pub instance: InstanceSpec,
    /// The primary node's name (the console's host for `ssh`/`vnc`).
    pub node_name: String,
    /// The primary node's address.
    pub node_address: String,
}

// ---------------------------------------------------------------------
// Transfers (issue 5): moving disk data between nodes (`gnt-instance
// move`, `gnt-backup`). Pull model: the receiving node reads from the
// sending node over the same mutual-TLS RPC, chunk by chunk, so memory
// stays bounded and no extra daemon or port is needed (Ganeti uses
// socat-based import/export daemons instead).

/// `transfer_read`: sending side, one chunk of a disk or export file.
pub const TRANSFER_READ: &str = "transfer_read";
/// `transfer_pull`: receiving side, copy a whole disk or file from another
/// node (by repeated `transfer_read` calls) into a local disk or file.
pub const TRANSFER_PULL: &str = "transfer_pull";
/// `export_list`: the exports in the node's export directory.
pub const EXPORT_LIST: &str = "export_list";
/// `export_info`: the `config.ini` of one export.
pub const EXPORT_INFO: &str = "export_info";
/// `export_finalize`: write `config.ini` into `<name>.new` and rename it
/// to `<name>` (Ganeti's `FinalizeExport`).
pub const EXPORT_FINALIZE: &str = "export_finalize";
/// `export_remove`: remove one export directory (missing is fine).
pub const EXPORT_REMOVE: &str = "export_remove";

/// The transfer and export procedures among [`INSTANCE_PROCEDURES`].
pub const TRANSFER_PROCEDURES: &[&str] = &[
    TRANSFER_READ,
    TRANSFER_PULL,
    EXPORT_LIST,
    EXPORT_INFO,
    EXPORT_FINALIZE,
    EXPORT_REMOVE,
];

/// Largest chunk one [`TRANSFER_READ`] returns (4 MiB, 5.3 MB in base64).
pub const TRANSFER_CHUNK_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// One end of a transfer, on the node that serves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TransferEnd {
    /// A disk, assembled on that node; read or written through its device
    /// path.
    Disk(DiskSpec),
    /// A file directly inside one export directory:
    /// `<export dir>/<export>/<file>`. Both are single path components.
    ExportFile {
        /// The export directory's name (`inst1.example.com.new`).
        export: String,
        /// The file's name (`<disk uuid>`, Ganeti's dump name).
        file: String,
    },
}

/// Arguments of [`TRANSFER_READ`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferReadArgs {
    /// What to read.
    pub source: TransferEnd,
    /// Byte offset.
    pub offset: u64,
    /// Bytes wanted, at most [`TRANSFER_CHUNK_MAX_BYTES`].
    pub length: u64,
}

/// Result of [`TRANSFER_READ`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferChunk {
    /// The bytes, base64 ([`super::b64`]); fewer than asked at the end.
    pub data: String,
    /// Whether the source ends at or before `offset + length`.
    pub eof: bool,
}

/// Arguments of [`TRANSFER_PULL`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferPullArgs {
    /// The sending node's name (for messages).
    pub source_node: String,
    /// The sending node's address (primary IP).
    pub source_address: String,
    /// Its noded port; `0` (default): the port this node serves on.
    #[serde(default)]
    pub source_port: u16,
    /// What to read on the sending node.
    pub source: TransferEnd,
    /// Where to write on this node. A disk is written in place (it must
    /// exist and be at least as large); an export file is created or
    /// truncated, its export directory created if needed.
    pub dest: TransferEnd,
    /// Bytes to copy; `None`: until the source ends.
    #[serde(default)]
    pub size_bytes: Option<u64>,
}

/// Result of [`TRANSFER_PULL`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferDone {
    /// Bytes written.
    pub bytes: u64,
    /// SHA-1 (hex) of the bytes written.
    pub sha1: String,
}

/// Arguments of [`EXPORT_INFO`] and [`EXPORT_REMOVE`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportArgs {
    /// The export's directory name under the export dir (one component).
    pub export: String,
}

/// Suffix of the export-directory entry holding OS script dumps on their
/// way between a script and a transfer (`<instance>.stage`); never listed
/// as an export.
pub const EXPORT_STAGE_SUFFIX: &str = ".stage";

/// Arguments of [`INSTANCE_OS_EXPORT`] and [`INSTANCE_OS_IMPORT`]: one disk
/// of the instance through its OS definition's `export` or `import`
/// script, with the dump in a staging file of the node's export directory
/// (`<export dir>/<stage>/<file>`). Export writes the script's stdout
/// there (the file is replaced; removed again if the script fails); import
/// feeds the file to the script's stdin and removes it afterwards. The
/// node assembles the instance's disks itself from `instance.disks`.
/// Result: a [`TransferDone`] for the dump written or read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceOsDumpArgs {
    /// The instance, fully resolved (its OS, parameters and disks).
    pub instance: InstanceSpec,
    /// Which of `instance.disks` (`EXPORT_INDEX`/`IMPORT_INDEX`).
    pub disk_index: usize,
    /// The staging directory's name in the export directory
    /// (`<instance>.stage`); one path component.
    pub stage: String,
    /// The dump file's name in it (`disk<N>.dump`); one path component.
    pub file: String,
    /// `DEBUG_LEVEL` for the script; default 0.
    #[serde(default)]
    pub debug: u32,
}

/// Arguments of [`EXPORT_FINALIZE`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportFinalizeArgs {
    /// The final name (the instance's); the data is in `<export>.new`.
    pub export: String,
    /// The text of `config.ini` (Ganeti's export format, built by the master).
    pub config: String,
}
