//! Value types shared by several opcodes' parameters, and the value checks
//! that serde's types cannot express (non-empty strings, IP addresses,
//! positive numbers, Ganeti's device-modification lists).
//!
//! Enums carry Ganeti's wire spelling in `#[serde(rename)]`. Nested
//! parameter dictionaries (`beparams`, `hvparams`, NIC and disk specs) stay
//! [`Dict`]s here: their keys depend on the hypervisor or template and are
//! checked by the logical units against the cluster config.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A JSON object kept as is (parameter dictionaries such as `beparams`).
pub type Dict = serde_json::Map<String, Value>;

/// A check on a parameter's raw JSON value, run before it is converted to
/// its Rust type. It returns the reason the value is refused. Values of the
/// wrong JSON type pass: the conversion reports those.
pub type Check = fn(&Value) -> Result<(), String>;

/// Defines an enum whose variants travel as Ganeti's strings.
macro_rules! wire_enum {
    (
        $(#[doc = $doc:literal])*
        $name:ident (default $def:ident) {
            $( $(#[doc = $vdoc:literal])* $variant:ident = $wire:literal, )*
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[doc = $vdoc])* #[serde(rename = $wire)] $variant, )*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)*
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::$def
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// How an instance's disks are laid out. The default value is Ganeti's
    /// default template, `drbd`.
    DiskTemplate (default Drbd) {
        /// Logical volumes on the primary node.
        Plain = "plain",
        /// LVM mirrored over the network with DRBD.
        Drbd = "drbd",
        /// Files on the primary node.
        File = "file",
        /// Files on storage shared by the nodes.
        SharedFile = "sharedfile",
        /// Existing block devices.
        Blockdev = "blockdev",
        /// Ceph RADOS block devices.
        Rbd = "rbd",
        /// ExtStorage provider volumes.
        Ext = "ext",
        /// Files on a Gluster volume.
        Gluster = "gluster",
        /// No disks at all.
        Diskless = "diskless",
    }
}

wire_enum! {
    /// A hypervisor kind. The default value is `kvm`.
    Hypervisor (default Kvm) {
        /// KVM/QEMU.
        Kvm = "kvm",
        /// Xen paravirtualized.
        XenPvm = "xen-pvm",
        /// Xen hardware virtualized.
        XenHvm = "xen-hvm",
        /// The fake hypervisor used in tests.
        Fake = "fake",
        /// chroot "instances".
        Chroot = "chroot",
        /// Linux containers.
        Lxc = "lxc",
    }
}

wire_enum! {
    /// The kind of object a tag belongs to. The default value is `cluster`.
    TagKind (default Cluster) {
        /// The cluster itself (no name).
        Cluster = "cluster",
        /// A node.
        Node = "node",
        /// An instance.
        Instance = "instance",
        /// A node group.
        NodeGroup = "nodegroup",
        /// A network.
        Network = "network",
    }
}

wire_enum! {
    /// A resource that can be queried through `OP_QUERY`. The default value
    /// is `instance`.
    QueryResource (default Instance) {
        /// The cluster.
        Cluster = "cluster",
        /// Instances.
        Instance = "instance",
        /// Nodes.
        Node = "node",
        /// Node groups.
        Group = "group",
        /// OS definitions.
        Os = "os",
        /// ExtStorage providers.
        ExtStorage = "extstorage",
        /// Jobs.
        Job = "job",
        /// Locks.
        Lock = "lock",
        /// Networks.
        Network = "network",
        /// Job queue filter rules.
        Filter = "filter",
        /// Instance exports.
        Export = "export",
    }
}

wire_enum! {
    /// A kind of storage unit on a node. The default value is `lvm-vg`.
    StorageType (default LvmVg) {
        /// LVM physical volumes.
        LvmPv = "lvm-pv",
        /// LVM volume groups.
        LvmVg = "lvm-vg",
        /// A local file storage directory.
        File = "file",
        /// A shared file storage directory.
        SharedFile = "sharedfile",
        /// A Gluster volume.
        Gluster = "gluster",
        /// Block devices.
        Blockdev = "blockdev",
        /// No storage.
        Diskless = "diskless",
        /// ExtStorage providers.
        Ext = "ext",
        /// A Ceph RADOS pool.
        Rados = "rados",
    }
}

wire_enum! {
    /// How to migrate an instance. The default value is `live`.
    MigrationMode (default Live) {
        /// Move it while it runs.
        Live = "live",
        /// Pause it, move it, resume it.
        NonLive = "non-live",
    }
}

wire_enum! {
    /// Driver for file-based disks (Xen only). The default value is `loop`.
    FileDriver (default Loop) {
        /// The kernel loop device.
        Loop = "loop",
        /// Xen blktap.
        Blktap = "blktap",
        /// Xen blktap2.
        Blktap2 = "blktap2",
    }
}

wire_enum! {
    /// How the allocator may use a node group. The default value is
    /// `preferred`.
    AllocPolicy (default Preferred) {
        /// Use it first.
        Preferred = "preferred",
        /// Use it only when no preferred group fits.
        LastResort = "last_resort",
        /// Never allocate in it.
        Unallocable = "unallocable",
    }
}

wire_enum! {
    /// Where an export goes. The default value is `local`.
    ExportMode (default Local) {
        /// To a node of this cluster.
        Local = "local",
        /// To another cluster.
        Remote = "remote",
    }
}

wire_enum! {
    /// Type of SSH keys. The default value is `rsa`.
    SshKeyType (default Rsa) {
        /// RSA.
        Rsa = "rsa",
        /// DSA.
        Dsa = "dsa",
        /// ECDSA.
        Ecdsa = "ecdsa",
    }
}

wire_enum! {
    /// An out-of-band management command. The default value is
    /// `power-status`.
    OobCommand (default PowerStatus) {
        /// Report hardware health.
        Health = "health",
        /// Power the node on.
        PowerOn = "power-on",
        /// Power the node off.
        PowerOff = "power-off",
        /// Power-cycle the node.
        PowerCycle = "power-cycle",
        /// Report whether the node is powered.
        PowerStatus = "power-status",
    }
}

wire_enum! {
    /// Which instances a node evacuation moves. The default value is `all`.
    NodeEvacMode (default All) {
        /// Primary and secondary instances.
        All = "all",
        /// Only instances whose primary is the node.
        PrimaryOnly = "primary-only",
        /// Only instances whose secondary is the node.
        SecondaryOnly = "secondary-only",
    }
}

wire_enum! {
    /// How an instance comes to be. The default value is `create`.
    InstanceCreateMode (default Create) {
        /// Install a fresh OS.
        Create = "create",
        /// Import an export from a node of this cluster.
        Import = "import",
        /// Receive an export from another cluster.
        RemoteImport = "remote-import",
    }
}

wire_enum! {
    /// Who asked for an instance shutdown. The default value is `admin`.
    AdminStateSource (default Admin) {
        /// The cluster administrator.
        Admin = "admin",
        /// The instance's user (from inside the instance).
        User = "user",
    }
}

wire_enum! {
    /// How to reboot an instance. The default value is `hard`.
    RebootType (default Hard) {
        /// Reboot from inside (ACPI or guest agent).
        Soft = "soft",
        /// Restart the hypervisor process.
        Hard = "hard",
        /// Full shutdown and start, disks included.
        Full = "full",
    }
}

wire_enum! {
    /// Which disks `OP_INSTANCE_REPLACE_DISKS` replaces. The default value is
    /// `replace_auto`.
    ReplaceDisksMode (default Auto) {
        /// The primary node's disks.
        OnPrimary = "replace_on_primary",
        /// The secondary node's disks.
        OnSecondary = "replace_on_secondary",
        /// Move the secondary to a new node.
        NewSecondary = "replace_new_secondary",
        /// Whichever side is faulty.
        Auto = "replace_auto",
    }
}

wire_enum! {
    /// Direction of an allocator test. The default value is `in`.
    IAllocatorDirection (default In) {
        /// Only build the allocator input.
        In = "in",
        /// Run the allocator.
        Out = "out",
    }
}

wire_enum! {
    /// An allocator request type. The default value is `allocate`.
    IAllocatorMode (default Allocate) {
        /// Place a new instance.
        Allocate = "allocate",
        /// Place several new instances.
        MultiAllocate = "multi-allocate",
        /// Find a new secondary.
        Relocate = "relocate",
        /// Move instances to another group.
        ChangeGroup = "change-group",
        /// Move instances off nodes.
        NodeEvacuate = "node-evacuate",
        /// Find a secondary for an instance.
        AllocateSecondary = "allocate-secondary",
    }
}

wire_enum! {
    /// How a network is connected to a node group. The default value is
    /// `bridged`.
    NicMode (default Bridged) {
        /// Through a bridge.
        Bridged = "bridged",
        /// Routed by the host.
        Routed = "routed",
        /// Through Open vSwitch.
        Openvswitch = "openvswitch",
        /// Taken from a NIC pool.
        Pool = "pool",
    }
}

wire_enum! {
    /// An action on a list (of OS names, devices). The default value is
    /// `add`.
    DdmAction (default Add) {
        /// Add an item.
        Add = "add",
        /// Remove an item.
        Remove = "remove",
        /// Attach an existing item.
        Attach = "attach",
        /// Detach an item without removing it.
        Detach = "detach",
    }
}

wire_enum! {
    /// A final job status, as used in job dependencies. The default value is
    /// `success`.
    FinalizedJobStatus (default Success) {
        /// The job succeeded.
        Success = "success",
        /// The job failed.
        Error = "error",
        /// The job was cancelled.
        Canceled = "canceled",
    }
}

/// A job named in a dependency: an absolute id, or (within one
/// `SubmitManyJobs` call) a negative offset to an earlier job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum JobRef {
    /// A job id as a number; negative means relative.
    Id(i64),
    /// A job id as a string of digits.
    Text(String),
}

/// One entry of `depends`: wait for the job to reach one of the statuses.
/// On the wire it is the pair `[job, [status, ...]]`; an empty status list
/// means "any final status".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobDependency(pub JobRef, pub Vec<FinalizedJobStatus>);

/// Ganeti's `MAX_DISKS`: disk indices are below this.
pub const MAX_DISKS: u64 = 16;

/// Keys a NIC specification may use.
pub const NIC_PARAM_KEYS: [&str; 8] = [
    "ip", "link", "mac", "name", "network", "mode", "vlan", "bridge",
];

/// Error codes `gnt-cluster verify` knows (for `ignore_errors`).
pub const CV_ERROR_CODES: [&str; 41] = [
    "ECLUSTERCERT",
    "ECLUSTERCFG",
    "ECLUSTERCLIENTCERT",
    "ECLUSTERDANGLINGINST",
    "ECLUSTERDANGLINGNODES",
    "ECLUSTERFILECHECK",
    "EEXTAGS",
    "EGROUPDIFFERENTPVSIZE",
    "EINSTANCEBADNODE",
    "EINSTANCEDOWN",
    "EINSTANCEFAULTYDISK",
    "EINSTANCELAYOUT",
    "EINSTANCEMISSINGCFGPARAMETER",
    "EINSTANCEMISSINGDISK",
    "EINSTANCEPOLICY",
    "EINSTANCESPLITGROUPS",
    "EINSTANCEUNSUITABLENODE",
    "EINSTANCEWRONGNODE",
    "ENODEDRBD",
    "ENODEDRBDHELPER",
    "ENODEDRBDVERSION",
    "ENODEFILECHECK",
    "ENODEFILESTORAGEPATHS",
    "ENODEFILESTORAGEPATHUNUSABLE",
    "ENODEGLUSTERSTORAGEPATHUNUSABLE",
    "ENODEHOOKS",
    "ENODEHV",
    "ENODELVM",
    "ENODEN1",
    "ENODENET",
    "ENODEOOBPATH",
    "ENODEORPHANINSTANCE",
    "ENODEORPHANLV",
    "ENODEOS",
    "ENODERPC",
    "ENODESETUP",
    "ENODESHAREDFILESTORAGEPATHUNUSABLE",
    "ENODESSH",
    "ENODETIME",
    "ENODEUSERSCRIPTS",
    "ENODEVERSION",
];

/// Optional checks of `gnt-cluster verify` that can be skipped.
pub const VERIFY_OPTIONAL_CHECKS: [&str; 1] = ["nplusone_mem"];

/// Applies `f` to `v`, or to each element if `v` is a list.
fn each(v: &Value, f: impl Fn(&Value) -> Result<(), String>) -> Result<(), String> {
    match v {
        Value::Array(items) => items.iter().try_for_each(f),
        other => f(other),
    }
}

/// Strings (alone or in a list) must not be empty.
pub fn non_empty(v: &Value) -> Result<(), String> {
    each(v, |x| match x {
        Value::String(s) if s.is_empty() => Err("must not be an empty string".into()),
        _ => Ok(()),
    })
}

/// Numbers must be greater than zero.
pub fn positive(v: &Value) -> Result<(), String> {
    match v.as_f64() {
        Some(n) if n <= 0.0 => Err(format!("must be greater than zero, got {v}")),
        _ => Ok(()),
    }
}

fn one_of(v: &Value, allowed: &[&str], what: &str) -> Result<(), String> {
    each(v, |x| match x.as_str() {
        Some(s) if !allowed.contains(&s) => Err(format!("unknown {what} {s:?}")),
        _ => Ok(()),
    })
}

/// Every element must be a known cluster-verify error code.
pub fn cv_error_codes(v: &Value) -> Result<(), String> {
    one_of(v, &CV_ERROR_CODES, "verify error code")
}

/// Every element must be a skippable verify check.
pub fn verify_optional_checks(v: &Value) -> Result<(), String> {
    one_of(v, &VERIFY_OPTIONAL_CHECKS, "optional verify check")
}

fn parse_str<T: std::str::FromStr>(x: &Value, what: &str) -> Result<(), String> {
    match x.as_str() {
        Some(s) if s.parse::<T>().is_err() => Err(format!("{s:?} is not {what}")),
        _ => Ok(()),
    }
}

/// Strings (alone or in a list) must be IPv4 addresses.
pub fn ipv4_address(v: &Value) -> Result<(), String> {
    each(v, |x| parse_str::<Ipv4Addr>(x, "an IPv4 address"))
}

/// The string must be an IPv6 address.
pub fn ipv6_address(v: &Value) -> Result<(), String> {
    parse_str::<Ipv6Addr>(v, "an IPv6 address")
}

fn network<T: std::str::FromStr>(v: &Value, max_prefix: u8, what: &str) -> Result<(), String> {
    let Some(s) = v.as_str() else { return Ok(()) };
    let ok = s.split_once('/').is_some_and(|(addr, len)| {
        addr.parse::<T>().is_ok() && len.parse::<u8>().is_ok_and(|l| l <= max_prefix)
    });
    if ok {
        Ok(())
    } else {
        Err(format!("{s:?} is not {what} in CIDR notation"))
    }
}

/// The string must be an IPv4 network such as `192.0.2.0/24`.
pub fn ipv4_network(v: &Value) -> Result<(), String> {
    network::<Ipv4Addr>(v, 32, "an IPv4 network")
}

/// The string must be an IPv6 network such as `2001:db8::/32`.
pub fn ipv6_network(v: &Value) -> Result<(), String> {
    network::<Ipv6Addr>(v, 128, "an IPv6 network")
}

fn nic_dict(x: &Value) -> Result<(), String> {
    let Some(map) = x.as_object() else {
        return Ok(());
    };
    for (k, val) in map {
        if !NIC_PARAM_KEYS.contains(&k.as_str()) {
            return Err(format!("unknown NIC parameter {k:?}"));
        }
        if !(val.is_null() || val.is_string()) {
            return Err(format!("NIC parameter {k:?} must be a string or null"));
        }
    }
    Ok(())
}

/// NIC specifications (one, or a list): known keys, string or null values.
pub fn nic_params(v: &Value) -> Result<(), String> {
    each(v, nic_dict)
}

fn disk_dict(x: &Value) -> Result<(), String> {
    let Some(map) = x.as_object() else {
        return Ok(());
    };
    for (k, val) in map {
        let ok = match val {
            Value::String(s) => !s.is_empty(),
            Value::Number(n) => n.is_i64() || n.is_u64(),
            _ => false,
        };
        if k.is_empty() || !ok {
            return Err(format!(
                "disk parameter {k:?} must be a non-empty string or an integer"
            ));
        }
    }
    Ok(())
}

/// Disk specifications (one, or a list): string or integer values.
pub fn disk_params(v: &Value) -> Result<(), String> {
    each(v, |x| {
        if x.is_object() {
            disk_dict(x)
        } else {
            Err("each disk must be an object".into())
        }
    })
}

fn index(x: &Value) -> Result<(), String> {
    match x.as_u64() {
        Some(i) if i >= MAX_DISKS => Err(format!("disk index {i} is not below {MAX_DISKS}")),
        _ => Ok(()),
    }
}

/// Disk indices (one, or a list) must be below [`MAX_DISKS`].
pub fn disk_index(v: &Value) -> Result<(), String> {
    each(v, index)
}

/// `OP_INSTANCE_RECREATE_DISKS` disks: a list of indices, or of
/// `[index, {params}]` pairs.
pub fn recreate_disks(v: &Value) -> Result<(), String> {
    each(v, |x| match x {
        Value::Number(_) => index(x),
        Value::Array(pair) => match pair.as_slice() {
            [i @ Value::Number(_), p @ Value::Object(_)] => {
                index(i)?;
                disk_dict(p)
            }
            _ => Err("each disk must be an index or an [index, params] pair".into()),
        },
        _ => Err("each disk must be an index or an [index, params] pair".into()),
    })
}

const MOD_ACTIONS: [&str; 5] = ["add", "remove", "attach", "detach", "modify"];

/// Device changes of `OP_INSTANCE_SET_PARAMS`: `[action, index, {params}]`
/// triples, or the older `[action-or-index, {params}]` pairs.
pub fn device_mods(v: &Value) -> Result<(), String> {
    let bad = || Err("each change must be [action, index, params] or [action, params]".into());
    each(v, |x| {
        let Some(items) = x.as_array() else {
            return bad();
        };
        match items.as_slice() {
            [Value::String(a), Value::Number(_) | Value::String(_), Value::Object(_)]
                if MOD_ACTIONS.contains(&a.as_str()) =>
            {
                Ok(())
            }
            [Value::String(a), Value::Object(_)] if MOD_ACTIONS[..4].contains(&a.as_str()) => {
                Ok(())
            }
            [Value::Number(n), Value::Object(_)] if n.is_u64() => Ok(()),
            [Value::String(a), ..] if !MOD_ACTIONS.contains(&a.as_str()) => {
                Err(format!("unknown modification action {a:?}"))
            }
            _ => bad(),
        }
    })
}

/// An export target: a node name, or (remote exports) a list of
/// per-disk destinations.
pub fn export_target(v: &Value) -> Result<(), String> {
    match v {
        Value::String(s) if !s.is_empty() => Ok(()),
        Value::Array(_) => Ok(()),
        _ => Err("must be a non-empty string or a list".into()),
    }
}

/// Job dependencies: string ids must be digits only.
pub fn job_dependencies(v: &Value) -> Result<(), String> {
    each(v, |dep| match dep.as_array().and_then(|d| d.first()) {
        Some(Value::String(s)) if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) => {
            Err(format!("{s:?} is not a job id"))
        }
        _ => Ok(()),
    })
}

/// Every element must be a valid `OP_INSTANCE_CREATE` opcode.
pub fn instance_creates(v: &Value) -> Result<(), String> {
    each(v, |x| match super::OpCode::from_json(x) {
        Ok(super::OpCode::InstanceCreate(_)) => Ok(()),
        Ok(other) => Err(format!(
            "expected OP_INSTANCE_CREATE, got {}",
            other.op_id()
        )),
        Err(e) => Err(e.to_string()),
    })
}
