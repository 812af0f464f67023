//! The serde types of `config.data` in Ganeti 3.0's schema (format version
//! 3000000), and the identifier newtypes shared by every side.
//!
//! These are plain data: they depend on std, serde and `sys::fs` (for random
//! UUIDs) only. Checks across objects live in [`super::validate`], parameter
//! types and inheritance in [`super::params`], and the only writer is
//! [`super::store::ConfigStore`].
//!
//! Field names, shapes and optionality follow Ganeti's `objects.py` (the
//! `__slots__` of each class and its `ToDict`) and the Haskell
//! `Ganeti.Objects` that writes the file in 3.0. Every object rejects unknown
//! keys, so a field we forgot fails loudly instead of being dropped on the
//! next write. Keys that Ganeti omits when unset are `Option`s skipped when
//! `None`; keys that old writers may have left out default on reading.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use super::ConfigError;
use crate::constants::CONFIG_VERSION;

/// A parameter dictionary (`hvparams`, `beparams`, …): name → JSON value.
/// Typed checks are in [`super::params`].
pub type ParamMap = BTreeMap<String, Value>;

/// Tags of an object: a set, written as a JSON list (Ganeti's `TaggableObject`).
pub type Tags = BTreeSet<String>;

macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The name or id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_string())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(s)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

string_newtype!(
    /// The UUID of a config object (cluster, node, group, instance, disk,
    /// NIC, network, filter), in its canonical lowercase text form.
    Uuid
);
string_newtype!(
    /// A node's (fully qualified) name.
    NodeName
);
string_newtype!(
    /// An instance's (fully qualified) name.
    InstanceName
);
string_newtype!(
    /// A node group's name.
    GroupName
);

impl Uuid {
    /// A new random (version 4) UUID, from the kernel's random source.
    pub fn generate() -> Uuid {
        let mut b = [0u8; 16];
        crate::sys::fs::random_bytes(&mut b)
            .expect("getrandom(2) cannot fail for a 16-byte request on Linux >= 3.17");
        Self::from_bytes(b)
    }

    /// Formats 16 bytes as a version 4, RFC 4122 variant UUID.
    pub fn from_bytes(mut b: [u8; 16]) -> Uuid {
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        Uuid(format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        ))
    }

    /// Whether this is a well-formed UUID text (8-4-4-4-12 lowercase hex).
    pub fn is_well_formed(&self) -> bool {
        let b = self.0.as_bytes();
        b.len() == 36
            && b.iter().enumerate().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => *c == b'-',
                _ => c.is_ascii_hexdigit(),
            })
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// Primary IP family of the cluster, stored as the socket address family
/// number (Python's `AF_INET` = 2, `AF_INET6` = 10).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IpFamily {
    /// IPv4 (`AF_INET`, 2).
    #[default]
    V4,
    /// IPv6 (`AF_INET6`, 10).
    V6,
}

impl IpFamily {
    /// The number stored in `config.data` and `ssconf_primary_ip_family`.
    pub fn af_number(self) -> u32 {
        match self {
            IpFamily::V4 => 2,
            IpFamily::V6 => 10,
        }
    }

    /// The IP version (4 or 6).
    pub fn version(self) -> u32 {
        match self {
            IpFamily::V4 => 4,
            IpFamily::V6 => 6,
        }
    }

    /// The longest netmask (address length in bits).
    pub fn max_netmask(self) -> u32 {
        match self {
            IpFamily::V4 => 32,
            IpFamily::V6 => 128,
        }
    }
}

impl Serialize for IpFamily {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.af_number())
    }
}

impl<'de> Deserialize<'de> for IpFamily {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u32::deserialize(d)? {
            2 => Ok(IpFamily::V4),
            10 => Ok(IpFamily::V6),
            n => Err(serde::de::Error::custom(format!(
                "invalid primary_ip_family {n}, expected 2 (AF_INET) or 10 (AF_INET6)"
            ))),
        }
    }
}

/// The whole `config.data` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigData {
    /// Format version; we read and write [`CONFIG_VERSION`] (3000000).
    pub version: u32,
    /// The cluster-wide object.
    pub cluster: Cluster,
    /// Nodes by UUID.
    pub nodes: BTreeMap<Uuid, Node>,
    /// Node groups by UUID.
    pub nodegroups: BTreeMap<Uuid, NodeGroup>,
    /// Instances by UUID.
    pub instances: BTreeMap<Uuid, Instance>,
    /// Top-level disks by UUID (3.0 keeps disks apart from instances).
    #[serde(default)]
    pub disks: BTreeMap<Uuid, Disk>,
    /// Networks by UUID.
    #[serde(default)]
    pub networks: BTreeMap<Uuid, Network>,
    /// Job filter rules by UUID (design "optables").
    #[serde(default)]
    pub filters: BTreeMap<Uuid, FilterRule>,
    /// Bumped by every write ([`super::store::ConfigStore::update`]).
    pub serial_no: u64,
    /// Creation time, seconds since the epoch.
    #[serde(default)]
    pub ctime: f64,
    /// Last modification time, seconds since the epoch.
    #[serde(default)]
    pub mtime: f64,
}

/// Only the version, read when a full parse fails so that a version
/// mismatch is reported as such rather than as a missing field.
#[derive(Deserialize)]
struct VersionProbe {
    version: Option<Value>,
}

impl ConfigData {
    /// Parses `config.data` text. `source` names the file in errors.
    ///
    /// A parse error names the file, line and column, and carries serde's
    /// message (which names the offending field) as its source. A version
    /// other than 3000000 is reported as too new or too old (run
    /// `cfgupgrade`), even when the rest of the document does not fit our
    /// schema.
    pub fn from_json(bytes: &[u8], source: &Path) -> Result<ConfigData, ConfigError> {
        match serde_json::from_slice::<ConfigData>(bytes) {
            Ok(data) => {
                check_version(u64::from(data.version), source)?;
                Ok(data)
            }
            Err(err) => {
                if let Ok(VersionProbe {
                    version: Some(Value::Number(n)),
                }) = serde_json::from_slice::<VersionProbe>(bytes)
                {
                    if let Some(v) = n.as_u64() {
                        check_version(v, source)?;
                    }
                }
                Err(ConfigError::Parse {
                    path: source.to_path_buf(),
                    line: err.line(),
                    column: err.column(),
                    source: err,
                })
            }
        }
    }

    /// Serializes to `config.data` text.
    ///
    /// Compact, not indented: the file of a 10,000-instance cluster is
    /// rewritten on every change and copied to every master candidate, and
    /// indentation would add about a third to its size and to the time
    /// spent writing it. Ganeti's own writer is compact too. Keys come out
    /// sorted (struct fields in schema order, maps sorted by key), so the
    /// same data always gives the same bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("config objects contain only serializable data")
    }

    /// The node with this name.
    pub fn node_by_name(&self, name: &str) -> Option<(&Uuid, &Node)> {
        self.nodes.iter().find(|(_, n)| n.name.as_str() == name)
    }

    /// The instance with this name.
    pub fn instance_by_name(&self, name: &str) -> Option<(&Uuid, &Instance)> {
        self.instances.iter().find(|(_, i)| i.name.as_str() == name)
    }

    /// The node group with this name.
    pub fn group_by_name(&self, name: &str) -> Option<(&Uuid, &NodeGroup)> {
        self.nodegroups
            .iter()
            .find(|(_, g)| g.name.as_str() == name)
    }

    /// The master node's object, if the reference resolves.
    pub fn master_node(&self) -> Option<&Node> {
        self.nodes.get(&self.cluster.master_node)
    }
}

fn check_version(found: u64, path: &Path) -> Result<(), ConfigError> {
    let supported = u64::from(CONFIG_VERSION);
    if found > supported {
        Err(ConfigError::VersionTooNew {
            path: path.to_path_buf(),
            found,
        })
    } else if found < supported {
        Err(ConfigError::VersionTooOld {
            path: path.to_path_buf(),
            found,
        })
    } else {
        Ok(())
    }
}

/// Settings of one monitoring data collector (`data_collectors` in the cluster).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataCollectorConfig {
    /// Whether the collector runs.
    pub active: bool,
    /// Collection interval in microseconds (kept as the number written,
    /// which older Ganeti wrote as a float).
    pub interval: serde_json::Number,
}

/// The cluster object: every key of Ganeti 3.0's `Cluster`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cluster {
    /// Bumped when the cluster object changes.
    pub serial_no: u64,
    /// The nodes' SSH RSA host public key (base64 part); empty if unknown.
    pub rsahostkeypub: String,
    /// The nodes' SSH DSA host public key, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dsahostkeypub: Option<String>,
    /// Highest TCP/UDP port handed out for DRBD so far.
    pub highest_used_port: u32,
    /// Ports given back and reusable for DRBD (a set, written as a list).
    pub tcpudp_port_pool: BTreeSet<u32>,
    /// First three octets of generated NIC MACs, `aa:00:00` style.
    pub mac_prefix: String,
    /// LVM volume group for `plain`/`drbd` disks, if LVM is used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_group_name: Option<String>,
    /// Logical volumes that `gnt-cluster verify` must not report (regexps).
    pub reserved_lvs: Vec<String>,
    /// DRBD usermode helper, if DRBD is used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drbd_usermode_helper: Option<String>,
    /// Obsolete since 2.1 (kept so old files load; `cfgupgrade` clears it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_bridge: Option<String>,
    /// Obsolete since 2.1 (kept so old files load; `cfgupgrade` clears it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_hypervisor: Option<String>,
    /// UUID of the master node.
    pub master_node: Uuid,
    /// The cluster (master) IP address.
    pub master_ip: String,
    /// Network device the master IP is brought up on.
    pub master_netdev: String,
    /// Netmask (prefix length) of the master IP.
    pub master_netmask: u32,
    /// Whether the master IP is managed by an external script.
    pub use_external_mip_script: bool,
    /// The cluster's fully qualified name.
    pub cluster_name: String,
    /// Base directory of `file` disks (may be empty).
    pub file_storage_dir: String,
    /// Base directory of `sharedfile` disks (may be empty).
    pub shared_file_storage_dir: String,
    /// Base directory of `gluster` disks (may be empty).
    pub gluster_storage_dir: String,
    /// Enabled hypervisors; the first is the default one.
    pub enabled_hypervisors: Vec<String>,
    /// Hypervisor parameters per hypervisor (filled for every hypervisor).
    pub hvparams: BTreeMap<String, ParamMap>,
    /// The cluster instance policy (filled).
    pub ipolicy: ParamMap,
    /// OS-specific hypervisor parameters: OS → hypervisor → params.
    pub os_hvp: BTreeMap<String, BTreeMap<String, ParamMap>>,
    /// Backend parameters by profile (only `"default"` is used).
    pub beparams: BTreeMap<String, ParamMap>,
    /// OS parameters by OS name (with or without `+variant`).
    pub osparams: BTreeMap<String, ParamMap>,
    /// Private OS parameters by OS name.
    pub osparams_private_cluster: BTreeMap<String, ParamMap>,
    /// NIC parameters by profile (only `"default"` is used).
    pub nicparams: BTreeMap<String, ParamMap>,
    /// Node parameters (filled).
    pub ndparams: ParamMap,
    /// Disk parameters per disk template (filled).
    pub diskparams: BTreeMap<String, ParamMap>,
    /// Desired number of master candidates.
    pub candidate_pool_size: u32,
    /// Whether Ganeti maintains `/etc/hosts` on nodes.
    pub modify_etc_hosts: bool,
    /// Whether Ganeti maintains SSH keys on nodes.
    pub modify_ssh_setup: bool,
    /// Whether nodes shut down unknown instances and deactivate disks.
    pub maintain_node_health: bool,
    /// User-id ranges for instances (`[low, high]` pairs, inclusive).
    pub uid_pool: Vec<(u32, u32)>,
    /// Default iallocator name (empty: none).
    pub default_iallocator: String,
    /// Parameters passed to the default iallocator.
    pub default_iallocator_params: ParamMap,
    /// OSes hidden from listings.
    pub hidden_os: Vec<String>,
    /// OSes that may not be used for new instances.
    pub blacklisted_os: Vec<String>,
    /// Address family of the nodes' primary IPs.
    pub primary_ip_family: IpFamily,
    /// Whether new disks are wiped before use.
    pub prealloc_wipe_disks: bool,
    /// Static hypervisor state overrides per hypervisor.
    pub hv_state_static: BTreeMap<String, ParamMap>,
    /// Static disk state overrides per storage type.
    pub disk_state_static: ParamMap,
    /// Enabled disk templates; the first is the default one.
    pub enabled_disk_templates: Vec<String>,
    /// Master candidates' client certificate digests: node UUID → digest.
    pub candidate_certs: BTreeMap<String, String>,
    /// Most jobs run at once by the job scheduler.
    pub max_running_jobs: u32,
    /// Most jobs tracked at once by the job scheduler.
    pub max_tracked_jobs: u32,
    /// Image used for OS installs in a helper VM (empty: none).
    pub install_image: String,
    /// Name of the instance communication network (empty: none).
    pub instance_communication_network: String,
    /// Image used to zero disks (empty: none).
    pub zeroing_image: String,
    /// Compression tools allowed for instance moves/exports.
    pub compression_tools: Vec<String>,
    /// Whether user-initiated instance shutdown is recognised.
    pub enabled_user_shutdown: bool,
    /// Monitoring data collectors by name.
    pub data_collectors: BTreeMap<String, DataCollectorConfig>,
    /// SSH key type for nodes (`rsa`, `dsa`, `ecdsa`).
    pub ssh_key_type: String,
    /// SSH key size in bits.
    pub ssh_key_bits: u32,
    /// Creation time, seconds since the epoch.
    pub ctime: f64,
    /// Last modification time, seconds since the epoch.
    pub mtime: f64,
    /// The cluster's UUID.
    pub uuid: Uuid,
    /// Cluster tags.
    pub tags: Tags,
}

/// A node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Node {
    /// The node's name.
    pub name: NodeName,
    /// Primary IP (cluster and RPC traffic).
    pub primary_ip: String,
    /// Secondary IP (DRBD replication); equal to the primary if single-homed.
    pub secondary_ip: String,
    /// Bumped when the node object changes.
    pub serial_no: u64,
    /// Whether the node holds a copy of the config and may become master.
    pub master_candidate: bool,
    /// Whether the node is marked offline.
    pub offline: bool,
    /// Whether the node is drained (no new instances).
    pub drained: bool,
    /// UUID of the node's group.
    pub group: Uuid,
    /// Whether the node may become a master candidate.
    pub master_capable: bool,
    /// Whether the node may host instances.
    pub vm_capable: bool,
    /// Node parameter overrides.
    pub ndparams: ParamMap,
    /// Whether the node is powered (out-of-band management).
    pub powered: bool,
    /// Dynamic hypervisor state (not normally stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hv_state: Option<Value>,
    /// Static hypervisor state overrides per hypervisor.
    pub hv_state_static: BTreeMap<String, ParamMap>,
    /// Dynamic disk state (not normally stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_state: Option<Value>,
    /// Static disk state overrides.
    pub disk_state_static: ParamMap,
    /// Creation time, seconds since the epoch.
    pub ctime: f64,
    /// Last modification time, seconds since the epoch.
    pub mtime: f64,
    /// The node's UUID.
    pub uuid: Uuid,
    /// Node tags.
    pub tags: Tags,
}

impl Default for Node {
    /// Ganeti's defaults for keys older files lack (`Node.UpgradeConfig`).
    fn default() -> Self {
        Node {
            name: NodeName::default(),
            primary_ip: String::new(),
            secondary_ip: String::new(),
            serial_no: 0,
            master_candidate: false,
            offline: false,
            drained: false,
            group: Uuid::default(),
            master_capable: true,
            vm_capable: true,
            ndparams: ParamMap::new(),
            powered: true,
            hv_state: None,
            hv_state_static: BTreeMap::new(),
            disk_state: None,
            disk_state_static: ParamMap::new(),
            ctime: 0.0,
            mtime: 0.0,
            uuid: Uuid::default(),
            tags: Tags::new(),
        }
    }
}

/// Allocation policy of a node group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllocPolicy {
    /// Use for new instances.
    #[default]
    Preferred,
    /// Use only if no preferred group fits.
    LastResort,
    /// Never allocate here.
    Unallocable,
}

/// A node group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeGroup {
    /// The group's name.
    pub name: GroupName,
    /// Member node UUIDs as some writers store them. Ganeti recomputes
    /// membership from the nodes' `group` on load and does not write it
    /// (`NodeGroup.ToDict`); neither do we, so never rely on it.
    #[serde(skip_serializing)]
    pub members: Vec<Uuid>,
    /// Node parameter overrides for the group's nodes.
    pub ndparams: ParamMap,
    /// Disk parameter overrides per disk template.
    pub diskparams: BTreeMap<String, ParamMap>,
    /// Instance policy overrides.
    pub ipolicy: ParamMap,
    /// Bumped when the group object changes.
    pub serial_no: u64,
    /// Static hypervisor state overrides.
    pub hv_state_static: BTreeMap<String, ParamMap>,
    /// Static disk state overrides.
    pub disk_state_static: ParamMap,
    /// Allocation policy.
    pub alloc_policy: AllocPolicy,
    /// Connected networks: network UUID → NIC parameters (mode, link, vlan).
    pub networks: BTreeMap<Uuid, ParamMap>,
    /// Creation time, seconds since the epoch.
    pub ctime: f64,
    /// Last modification time, seconds since the epoch.
    pub mtime: f64,
    /// The group's UUID.
    pub uuid: Uuid,
    /// Group tags.
    pub tags: Tags,
}

/// Administrative state of an instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminState {
    /// Should be running.
    Up,
    /// Should be stopped.
    #[default]
    Down,
    /// Marked offline: stopped, and its resources not accounted.
    Offline,
}

/// A network interface of an instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Nic {
    /// Optional user-given name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// MAC address.
    pub mac: String,
    /// IP address, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// UUID of the Ganeti network this NIC is in, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<Uuid>,
    /// NIC parameter overrides (mode, link, vlan).
    pub nicparams: ParamMap,
    /// Network information sent to nodes (not normally stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netinfo: Option<Value>,
    /// PCI slot given by the hypervisor, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pci: Option<u32>,
    /// Hypervisor-specific device information, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hvinfo: Option<Value>,
    /// The NIC's UUID.
    pub uuid: Uuid,
}

/// An instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Instance {
    /// Whether the instance is only reserved (not yet created).
    #[serde(skip_serializing_if = "is_false")]
    pub forthcoming: bool,
    /// The instance's name.
    pub name: InstanceName,
    /// UUID of the primary node.
    pub primary_node: Uuid,
    /// UUIDs of secondary nodes as some writers store them; Ganeti 3.0
    /// derives them from the disks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secondary_nodes: Vec<Uuid>,
    /// OS name (`name+variant`).
    pub os: String,
    /// Hypervisor name.
    pub hypervisor: String,
    /// Hypervisor parameter overrides.
    pub hvparams: ParamMap,
    /// Backend parameter overrides.
    pub beparams: ParamMap,
    /// OS parameter overrides.
    pub osparams: ParamMap,
    /// Private OS parameter overrides.
    pub osparams_private: ParamMap,
    /// Administrative state.
    pub admin_state: AdminState,
    /// Who set the admin state (`admin` or `user`).
    pub admin_state_source: String,
    /// Network interfaces, in order.
    pub nics: Vec<Nic>,
    /// UUIDs of the instance's disks (in [`ConfigData::disks`]), in order.
    pub disks: Vec<Uuid>,
    /// Full disk objects, sent only in RPC payloads; never stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disks_info: Option<Value>,
    /// Disk template; 3.0 derives it from the disks and does not store it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_template: Option<String>,
    /// Whether the disks should be active.
    pub disks_active: bool,
    /// Console (e.g. VNC) port allocated to the instance, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_port: Option<u32>,
    /// Bumped when the instance object changes.
    pub serial_no: u64,
    /// Creation time, seconds since the epoch.
    pub ctime: f64,
    /// Last modification time, seconds since the epoch.
    pub mtime: f64,
    /// The instance's UUID.
    pub uuid: Uuid,
    /// Instance tags.
    pub tags: Tags,
}

/// Access mode of a disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DiskMode {
    /// Read-write.
    #[default]
    #[serde(rename = "rw")]
    ReadWrite,
    /// Read-only.
    #[serde(rename = "ro")]
    ReadOnly,
}

/// A disk's `logical_id`; its shape depends on `dev_type`.
///
/// `drbd`: `[node_a, node_b, port, minor_a, minor_b, secret]`; `plain`:
/// `[vg, lv]`; `file`/`sharedfile`/`gluster`/`blockdev`: `[driver, path]`;
/// `rbd`: `[driver, name]`; `ext`: `[provider, name]`. Anything else is kept
/// as the JSON it was, so it survives a rewrite untouched.
#[derive(Debug, Clone, PartialEq)]
pub enum LogicalId {
    /// DRBD8: both nodes, the port, both minors and the shared secret.
    Drbd {
        /// UUID of the primary-side node.
        node_a: Uuid,
        /// UUID of the secondary-side node.
        node_b: Uuid,
        /// TCP port of the replication link.
        port: u32,
        /// DRBD minor on `node_a`.
        minor_a: u32,
        /// DRBD minor on `node_b`.
        minor_b: u32,
        /// Shared secret of the link.
        secret: String,
    },
    /// Every two-string shape (see the type's doc for the meaning per type).
    Pair(String, String),
    /// Any other shape, kept verbatim.
    Other(Value),
}

impl Default for LogicalId {
    fn default() -> Self {
        LogicalId::Other(Value::Null)
    }
}

impl Serialize for LogicalId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        match self {
            LogicalId::Drbd {
                node_a,
                node_b,
                port,
                minor_a,
                minor_b,
                secret,
            } => {
                let mut seq = s.serialize_seq(Some(6))?;
                seq.serialize_element(node_a)?;
                seq.serialize_element(node_b)?;
                seq.serialize_element(port)?;
                seq.serialize_element(minor_a)?;
                seq.serialize_element(minor_b)?;
                seq.serialize_element(secret)?;
                seq.end()
            }
            LogicalId::Pair(a, b) => (a, b).serialize(s),
            LogicalId::Other(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for LogicalId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LogicalIdVisitor)
    }
}

/// Reads the common shapes straight from the parser (this runs for every
/// disk of the cluster); anything else goes through a `Value`.
struct LogicalIdVisitor;

impl<'de> serde::de::Visitor<'de> for LogicalIdVisitor {
    type Value = LogicalId;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a logical_id")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<LogicalId, A::Error> {
        let mut items: Vec<Value> = Vec::with_capacity(6);
        while let Some(v) = seq.next_element::<Value>()? {
            items.push(v);
        }
        Ok(LogicalId::from_items(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<LogicalId, A::Error> {
        let v = Value::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        Ok(LogicalId::Other(v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<LogicalId, E> {
        Ok(LogicalId::Other(Value::String(v.to_string())))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<LogicalId, E> {
        Ok(LogicalId::Other(Value::String(v)))
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<LogicalId, E> {
        Ok(LogicalId::Other(Value::Bool(v)))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<LogicalId, E> {
        Ok(LogicalId::Other(Value::from(v)))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<LogicalId, E> {
        Ok(LogicalId::Other(Value::from(v)))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<LogicalId, E> {
        Ok(LogicalId::Other(Value::from(v)))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<LogicalId, E> {
        Ok(LogicalId::Other(Value::Null))
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<LogicalId, E> {
        Ok(LogicalId::Other(Value::Null))
    }
}

impl LogicalId {
    fn from_items(mut items: Vec<Value>) -> LogicalId {
        let num = |x: &Value| x.as_u64().and_then(|n| u32::try_from(n).ok());
        match items.as_mut_slice() {
            [Value::String(a), Value::String(b)] => {
                return LogicalId::Pair(std::mem::take(a), std::mem::take(b))
            }
            [Value::String(a), Value::String(b), port, ma, mb, Value::String(secret)] => {
                if let (Some(port), Some(minor_a), Some(minor_b)) = (num(port), num(ma), num(mb)) {
                    return LogicalId::Drbd {
                        node_a: Uuid(std::mem::take(a)),
                        node_b: Uuid(std::mem::take(b)),
                        port,
                        minor_a,
                        minor_b,
                        secret: std::mem::take(secret),
                    };
                }
            }
            _ => {}
        }
        LogicalId::Other(Value::Array(items))
    }
}

/// A disk (top-level in [`ConfigData::disks`], or a child of another disk).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Disk {
    /// Whether the disk is only reserved (not yet created).
    #[serde(skip_serializing_if = "is_false")]
    pub forthcoming: bool,
    /// Optional user-given name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Disk type (a disk template name: `plain`, `drbd`, `file`, …).
    pub dev_type: String,
    /// Type-specific identity; see [`LogicalId`].
    pub logical_id: LogicalId,
    /// Child devices (DRBD: data and metadata volumes).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Disk>,
    /// UUIDs of the nodes the disk lives on.
    pub nodes: Vec<Uuid>,
    /// Visible name inside the instance (`disk/0`), empty for children.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub iv_name: String,
    /// Size in MiB.
    pub size: u64,
    /// Access mode.
    pub mode: DiskMode,
    /// Disk parameter overrides.
    pub params: ParamMap,
    /// Spindles used, with exclusive storage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spindles: Option<u32>,
    /// PCI slot given by the hypervisor, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pci: Option<u32>,
    /// Hypervisor-specific device information, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hvinfo: Option<Value>,
    /// Bumped when the disk object changes.
    pub serial_no: u64,
    /// Per-node parameters sent in RPC payloads; never stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamic_params: Option<Value>,
    /// The disk's UUID (children may have none).
    #[serde(skip_serializing_if = "Uuid::is_empty_uuid")]
    pub uuid: Uuid,
    /// Creation time, seconds since the epoch.
    pub ctime: f64,
    /// Last modification time, seconds since the epoch.
    pub mtime: f64,
}

impl Uuid {
    fn is_empty_uuid(&self) -> bool {
        self.0.is_empty()
    }
}

impl Disk {
    /// Calls `f` for every node UUID the disk or its children reference
    /// (possibly more than once), without allocating.
    pub fn for_each_node<'a>(&'a self, f: &mut impl FnMut(&'a Uuid)) {
        self.nodes.iter().for_each(&mut *f);
        if let LogicalId::Drbd { node_a, node_b, .. } = &self.logical_id {
            f(node_a);
            f(node_b);
        }
        for c in &self.children {
            c.for_each_node(f);
        }
    }

    /// Every node UUID the disk or its children reference.
    pub fn all_nodes(&self) -> BTreeSet<&Uuid> {
        let mut out: BTreeSet<&Uuid> = self.nodes.iter().collect();
        if let LogicalId::Drbd { node_a, node_b, .. } = &self.logical_id {
            out.insert(node_a);
            out.insert(node_b);
        }
        for c in &self.children {
            out.extend(c.all_nodes());
        }
        out
    }
}

/// A Ganeti network (an IPv4 range with reservations).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Network {
    /// The network's name.
    pub name: String,
    /// Bumped when the network object changes.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub serial_no: u64,
    /// MAC prefix for NICs in this network, if different from the cluster's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_prefix: Option<String>,
    /// IPv4 range, CIDR.
    pub network: String,
    /// IPv6 range, CIDR, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network6: Option<String>,
    /// IPv4 gateway, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// IPv6 gateway, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<String>,
    /// Reserved addresses by instances, one `0`/`1` character per address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservations: Option<String>,
    /// Externally reserved addresses, one `0`/`1` character per address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ext_reservations: Option<String>,
    /// Creation time, seconds since the epoch.
    #[serde(skip_serializing_if = "is_zero_f64")]
    pub ctime: f64,
    /// Last modification time, seconds since the epoch.
    #[serde(skip_serializing_if = "is_zero_f64")]
    pub mtime: f64,
    /// The network's UUID.
    pub uuid: Uuid,
    /// Network tags.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub tags: Tags,
}

fn is_zero_f64(x: &f64) -> bool {
    *x == 0.0
}

/// A job filter rule (design "optables"): which jobs the scheduler accepts,
/// pauses, rejects or rate-limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterRule {
    /// Highest job id the rule applies to.
    pub watermark: u64,
    /// Evaluation order; lower first.
    pub priority: u32,
    /// Predicates, e.g. `["opcode", filter]` (kept as JSON).
    pub predicates: Vec<Value>,
    /// `"ACCEPT"`, `"PAUSE"`, `"REJECT"`, `"CONTINUE"` or `["RATE_LIMIT", n]`.
    pub action: Value,
    /// Reason trail of the rule's creation.
    pub reason_trail: Vec<Value>,
    /// The rule's UUID.
    pub uuid: Uuid,
}

/// `FilterRule` under the name the issue uses.
pub type Filter = FilterRule;

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn uuid_generate_is_v4() {
        let u = Uuid::generate();
        assert!(u.is_well_formed(), "{u}");
        assert_eq!(&u.0[14..15], "4");
        assert!(matches!(&u.0[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(u, Uuid::generate());
    }

    #[test]
    fn logical_id_shapes_round_trip() {
        for text in [
            r#"["xenvg","lv0"]"#,
            r#"["n1","n2",11000,0,1,"secret"]"#,
            r#"["n1","n2",11000,0,1,null]"#,
            r#"{"odd":1}"#,
        ] {
            let id: LogicalId = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_string(&id).unwrap(), text);
        }
        let id: LogicalId = serde_json::from_str(r#"["a","b",1,2,3,"s"]"#).unwrap();
        assert!(matches!(id, LogicalId::Drbd { port: 1, .. }));
    }

    #[test]
    fn ip_family_numbers() {
        assert_eq!(serde_json::to_string(&IpFamily::V6).unwrap(), "10");
        assert_eq!(serde_json::from_str::<IpFamily>("2").unwrap(), IpFamily::V4);
        assert!(serde_json::from_str::<IpFamily>("4").is_err());
    }

    #[test]
    fn unknown_field_is_named_with_position() {
        let text = br#"{"version":3000000,"cluster":{"bogus_key":1},"nodes":{},"nodegroups":{},"instances":{},"serial_no":1}"#;
        let err = ConfigData::from_json(text, &PathBuf::from("/x/config.data")).unwrap_err();
        let msg = crate::error::chain(&err);
        assert!(msg.contains("/x/config.data"), "{msg}");
        assert!(msg.contains("line 1"), "{msg}");
        assert!(msg.contains("bogus_key"), "{msg}");
    }

    #[test]
    fn version_mismatch_is_explained() {
        let p = PathBuf::from("c");
        let newer = br#"{"version":3010000,"whatever":1}"#;
        let msg = ConfigData::from_json(newer, &p).unwrap_err().to_string();
        assert!(
            msg.contains("3010000 is newer than supported 3000000"),
            "{msg}"
        );
        let older = br#"{"version":2160000,"cluster":{}}"#;
        let msg = ConfigData::from_json(older, &p).unwrap_err().to_string();
        assert!(msg.contains("older") && msg.contains("cfgupgrade"), "{msg}");
    }
}
