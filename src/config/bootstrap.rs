//! The initial configuration of a new cluster, as `gnt-cluster init` writes
//! it (Ganeti's `bootstrap.InitCluster`/`InitConfig` and the option handling
//! of `gnt_cluster.InitCluster`): every parameter family filled with
//! Ganeti's defaults plus the given overrides, one "default" node group, and
//! the master node as the only, master-candidate, node.
//!
//! Pure: checks the values it is given and builds a [`ConfigData`]; the
//! caller resolves names, checks that IPs are owned, creates directories and
//! stores the result with [`super::store::ConfigStore::create`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::objects::{
    Cluster, ConfigData, DataCollectorConfig, IpFamily, Node, NodeGroup, NodeName, ParamMap, Uuid,
};
use super::params::{self, ParamFamily};
use super::ConfigError;
use crate::constants::{
    CONFIG_VERSION, DEFAULT_CANDIDATE_POOL_SIZE, DEFAULT_MAC_PREFIX, DEFAULT_MAX_RUNNING_JOBS,
    DEFAULT_MAX_TRACKED_JOBS,
};

/// First DRBD port (`FIRST_DRBD_PORT`); the cluster starts with the one below.
pub const FIRST_DRBD_PORT: u32 = 11000;
/// The default node group's name (`INITIAL_NODE_GROUP_NAME`).
pub const INITIAL_NODE_GROUP_NAME: &str = "default";
/// Default LVM volume group (`DEFAULT_VG`).
pub const DEFAULT_VG: &str = "xenvg";
/// Default DRBD usermode helper (`DEFAULT_DRBD_HELPER`).
pub const DEFAULT_DRBD_HELPER: &str = "/bin/true";
/// Default `file` storage directory (`DEFAULT_FILE_STORAGE_DIR`).
pub const DEFAULT_FILE_STORAGE_DIR: &str = "/srv/ganeti/file-storage";
/// Default `sharedfile` storage directory.
pub const DEFAULT_SHARED_FILE_STORAGE_DIR: &str = "/srv/ganeti/shared-file-storage";
/// Default `gluster` mount directory.
pub const DEFAULT_GLUSTER_STORAGE_DIR: &str = "/var/run/ganeti/gluster";
/// Default compression tools (`IEC_DEFAULT_TOOLS`).
pub const DEFAULT_COMPRESSION_TOOLS: &[&str] = &["gzip", "gzip-fast", "gzip-slow"];
/// Monitoring data collectors (`DATA_COLLECTOR_NAMES`).
pub const DATA_COLLECTOR_NAMES: &[&str] = &[
    "cpu-avg-load",
    "diskstats",
    "drbd",
    "inst-status-xen",
    "lv",
    "xen-cpu-avg-load",
];
/// Default collection interval (`MOND_TIME_INTERVAL`, 5 s) in microseconds.
pub const DATA_COLLECTOR_INTERVAL_USECS: u64 = 5_000_000;

/// Everything `gnt-cluster init` decides, after name resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct InitParams {
    /// The cluster's fully qualified name.
    pub cluster_name: String,
    /// The master (this) node's name.
    pub master_node: NodeName,
    /// The cluster IP.
    pub master_ip: String,
    /// Device the master IP lives on.
    pub master_netdev: String,
    /// Netmask (prefix length) of the master IP; default 32 (IPv4) / 128 (IPv6).
    pub master_netmask: u32,
    /// The master node's primary IP.
    pub primary_ip: String,
    /// The master node's secondary IP; defaults to the primary (IPv4 only).
    pub secondary_ip: Option<String>,
    /// Family of the primary IPs.
    pub primary_ip_family: IpFamily,
    /// Enabled hypervisors, default one first (Ganeti default: `xen-pvm`).
    pub enabled_hypervisors: Vec<String>,
    /// Enabled disk templates, default one first (Ganeti default: drbd, plain).
    pub enabled_disk_templates: Vec<String>,
    /// Hypervisor parameter overrides per hypervisor.
    pub hvparams: BTreeMap<String, ParamMap>,
    /// Backend parameter overrides.
    pub beparams: ParamMap,
    /// NIC parameter overrides.
    pub nicparams: ParamMap,
    /// Node parameter overrides.
    pub ndparams: ParamMap,
    /// Disk parameter overrides per disk template.
    pub diskparams: BTreeMap<String, ParamMap>,
    /// Instance policy overrides.
    pub ipolicy: ParamMap,
    /// User-id ranges for instances.
    pub uid_pool: Vec<(u32, u32)>,
    /// `file` storage directory (default [`DEFAULT_FILE_STORAGE_DIR`]).
    pub file_storage_dir: Option<String>,
    /// `sharedfile` storage directory.
    pub shared_file_storage_dir: Option<String>,
    /// `gluster` storage directory.
    pub gluster_storage_dir: Option<String>,
    /// MAC prefix, three octets (default `aa:00:00`).
    pub mac_prefix: String,
    /// Master candidate pool size (default 10).
    pub candidate_pool_size: u32,
    /// Default iallocator (empty: none).
    pub default_iallocator: String,
    /// Whether to maintain `/etc/hosts`.
    pub modify_etc_hosts: bool,
    /// Whether to maintain SSH keys.
    pub modify_ssh_setup: bool,
    /// Whether nodes enforce the config (shut down unknown instances).
    pub maintain_node_health: bool,
    /// Whether to wipe new disks.
    pub prealloc_wipe_disks: bool,
    /// Whether an external script manages the master IP.
    pub use_external_mip_script: bool,
    /// Whether user shutdown of instances is recognised.
    pub enabled_user_shutdown: bool,
    /// LVM volume group, if LVM is used.
    pub volume_group_name: Option<String>,
    /// DRBD usermode helper (default `/bin/true` when DRBD is enabled).
    pub drbd_helper: Option<String>,
    /// Base64 part of the SSH RSA host key (empty when we do not manage SSH).
    pub rsahostkeypub: String,
    /// SSH key type (default `rsa`).
    pub ssh_key_type: String,
    /// SSH key size in bits (default 2048).
    pub ssh_key_bits: u32,
    /// Compression tools (default gzip, gzip-fast, gzip-slow).
    pub compression_tools: Vec<String>,
    /// Install image (empty: none).
    pub install_image: String,
    /// Zeroing image (empty: none).
    pub zeroing_image: String,
}

impl InitParams {
    /// Ganeti's defaults for everything but names and addresses.
    pub fn new(
        cluster_name: &str,
        master_node: &str,
        master_ip: &str,
        primary_ip: &str,
        master_netdev: &str,
    ) -> InitParams {
        InitParams {
            cluster_name: cluster_name.to_string(),
            master_node: NodeName::from(master_node),
            master_ip: master_ip.to_string(),
            master_netdev: master_netdev.to_string(),
            master_netmask: 32,
            primary_ip: primary_ip.to_string(),
            secondary_ip: None,
            primary_ip_family: IpFamily::V4,
            enabled_hypervisors: vec!["xen-pvm".to_string()],
            enabled_disk_templates: vec!["drbd".to_string(), "plain".to_string()],
            hvparams: BTreeMap::new(),
            beparams: ParamMap::new(),
            nicparams: ParamMap::new(),
            ndparams: ParamMap::new(),
            diskparams: BTreeMap::new(),
            ipolicy: ParamMap::new(),
            uid_pool: Vec::new(),
            file_storage_dir: None,
            shared_file_storage_dir: None,
            gluster_storage_dir: None,
            mac_prefix: DEFAULT_MAC_PREFIX.to_string(),
            candidate_pool_size: DEFAULT_CANDIDATE_POOL_SIZE,
            default_iallocator: String::new(),
            modify_etc_hosts: true,
            modify_ssh_setup: true,
            maintain_node_health: false,
            prealloc_wipe_disks: false,
            use_external_mip_script: false,
            enabled_user_shutdown: false,
            volume_group_name: None,
            drbd_helper: None,
            rsahostkeypub: String::new(),
            ssh_key_type: "rsa".to_string(),
            ssh_key_bits: 2048,
            compression_tools: DEFAULT_COMPRESSION_TOOLS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            install_image: String::new(),
            zeroing_image: String::new(),
        }
    }
}

fn invalid(field: &'static str, value: impl ToString, reason: impl ToString) -> ConfigError {
    ConfigError::InvalidInit {
        field,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn param_err(context: String) -> impl FnOnce(params::ParamError) -> ConfigError {
    move |source| ConfigError::Param { context, source }
}

fn check_ip(field: &'static str, ip: &str, family: IpFamily) -> Result<(), ConfigError> {
    let parsed: IpAddr = ip
        .parse()
        .map_err(|_| invalid(field, ip, "not an IP address"))?;
    let ok = match family {
        IpFamily::V4 => parsed.is_ipv4(),
        IpFamily::V6 => parsed.is_ipv6(),
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            ip,
            format!("not an IPv{} address", family.version()),
        ))
    }
}

/// Whether `p` is a MAC prefix as Ganeti accepts it: `xx:xx:xx`, lowercase hex.
pub fn is_valid_mac_prefix(p: &str) -> bool {
    let parts: Vec<&str> = p.split(':').collect();
    parts.len() == 3
        && parts.iter().all(|o| {
            o.len() == 2
                && o.bytes()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        })
}

impl ConfigData {
    /// The configuration of a new cluster (serial 1, created at `now`).
    pub fn initial(p: &InitParams, now: f64) -> Result<ConfigData, ConfigError> {
        // Names and addresses.
        if p.cluster_name.is_empty() {
            return Err(invalid("cluster_name", "", "must not be empty"));
        }
        if p.master_node.as_str().is_empty() {
            return Err(invalid("master_node", "", "must not be empty"));
        }
        check_ip("master_ip", &p.master_ip, p.primary_ip_family)?;
        check_ip("primary_ip", &p.primary_ip, p.primary_ip_family)?;
        let secondary_ip = match &p.secondary_ip {
            Some(s) => s.clone(),
            None if p.primary_ip_family == IpFamily::V6 => {
                return Err(invalid(
                    "secondary_ip",
                    "",
                    "an IPv4 secondary IP is required with an IPv6 primary IP",
                ))
            }
            None => p.primary_ip.clone(),
        };
        check_ip("secondary_ip", &secondary_ip, IpFamily::V4)?;
        let max = p.primary_ip_family.max_netmask();
        if p.master_netmask == 0 || p.master_netmask > max {
            return Err(invalid(
                "master_netmask",
                p.master_netmask,
                format!("must be between 1 and {max}"),
            ));
        }
        if p.master_netdev.is_empty() {
            return Err(invalid("master_netdev", "", "must not be empty"));
        }
        if !is_valid_mac_prefix(&p.mac_prefix) {
            return Err(invalid(
                "mac_prefix",
                &p.mac_prefix,
                "must be three lowercase hex octets like aa:00:00",
            ));
        }
        for (lo, hi) in &p.uid_pool {
            if lo > hi {
                return Err(invalid(
                    "uid_pool",
                    format!("{lo}-{hi}"),
                    "range is reversed",
                ));
            }
        }

        // Hypervisors and disk templates.
        if p.enabled_hypervisors.is_empty() {
            return Err(invalid("enabled_hypervisors", "", "must not be empty"));
        }
        for hv in &p.enabled_hypervisors {
            if !params::hypervisors().any(|h| h == hv) {
                return Err(invalid("enabled_hypervisors", hv, "unknown hypervisor"));
            }
        }
        if p.enabled_disk_templates.is_empty() {
            return Err(invalid("enabled_disk_templates", "", "must not be empty"));
        }
        for dt in &p.enabled_disk_templates {
            if !params::disk_templates().any(|d| d == dt) {
                return Err(invalid(
                    "enabled_disk_templates",
                    dt,
                    "unknown disk template",
                ));
            }
        }
        let uses_lvm = p
            .enabled_disk_templates
            .iter()
            .any(|d| d == "plain" || d == "drbd");
        // Like gnt-cluster: LVM templates without a volume group get `xenvg`.
        let volume_group_name = match &p.volume_group_name {
            Some(vg) if !vg.is_empty() => Some(vg.clone()),
            _ if uses_lvm => Some(DEFAULT_VG.to_string()),
            _ => None,
        };
        let drbd = p.enabled_disk_templates.iter().any(|d| d == "drbd");

        // Parameter families: defaults, then overrides, then checks.
        let mut hvparams = BTreeMap::new();
        for hv in p.hvparams.keys() {
            if !params::hypervisors().any(|h| h == hv) {
                return Err(invalid("hvparams", hv, "unknown hypervisor"));
            }
        }
        for hv in params::hypervisors() {
            let empty = ParamMap::new();
            let over = p.hvparams.get(hv).unwrap_or(&empty);
            let ctx = format!("hvparams for {hv}");
            params::check_params(ParamFamily::Hv, Some(hv), over).map_err(param_err(ctx))?;
            let defaults = params::defaults(ParamFamily::Hv, Some(hv))
                .expect("every known hypervisor has defaults");
            hvparams.insert(hv.to_string(), params::fill_dict(&defaults, over, &[]));
        }
        let family = |f: ParamFamily, over: &ParamMap| -> Result<ParamMap, ConfigError> {
            params::check_params(f, None, over).map_err(param_err(f.name().to_string()))?;
            let d = params::defaults(f, None).expect("family without sub-name has defaults");
            Ok(params::fill_dict(&d, over, &[]))
        };
        let mut beparams = p.beparams.clone();
        // An old-style `memory` sets both limits (`UpgradeBeParams`).
        if let Some(mem) = beparams.remove("memory") {
            beparams.insert("maxmem".to_string(), mem.clone());
            beparams.insert("minmem".to_string(), mem);
        }
        let beparams = family(ParamFamily::Be, &beparams)?;
        let nicparams = family(ParamFamily::Nic, &p.nicparams)?;
        let mode = nicparams.get("mode").and_then(|v| v.as_str()).unwrap_or("");
        let link = nicparams.get("link").and_then(|v| v.as_str()).unwrap_or("");
        if mode == "bridged" && link.is_empty() {
            return Err(invalid("nicparams", "link=", "bridged NICs need a link"));
        }
        let ndparams = family(ParamFamily::Nd, &p.ndparams)?;
        let mut diskparams = BTreeMap::new();
        for dt in p.diskparams.keys() {
            if !params::disk_templates().any(|d| d == dt) {
                return Err(invalid("diskparams", dt, "unknown disk template"));
            }
        }
        for dt in params::disk_templates() {
            let mut over = p.diskparams.get(dt).cloned().unwrap_or_default();
            let ctx = format!("diskparams for {dt}");
            params::check_params(ParamFamily::Disk, Some(dt), &over).map_err(param_err(ctx))?;
            if dt == "drbd" {
                if let Some(vg) = &volume_group_name {
                    over.insert("metavg".to_string(), vg.clone().into());
                }
            }
            let defaults = params::defaults(ParamFamily::Disk, Some(dt))
                .expect("every known disk template has defaults");
            diskparams.insert(dt.to_string(), params::fill_dict(&defaults, &over, &[]));
        }
        params::check_ipolicy(&p.ipolicy).map_err(param_err("ipolicy".to_string()))?;
        let mut ipolicy = params::fill_dict(&params::ipolicy_defaults(), &p.ipolicy, &[]);
        if let (Some(serde_json::Value::Object(std)), Some(serde_json::Value::Object(over))) =
            (params::ipolicy_defaults().get("std"), p.ipolicy.get("std"))
        {
            let mut filled = std.clone();
            filled.extend(over.iter().map(|(k, v)| (k.clone(), v.clone())));
            ipolicy.insert("std".to_string(), serde_json::Value::Object(filled));
        }
        // Restrict the policy's templates to the enabled ones.
        if let Some(serde_json::Value::Array(list)) = ipolicy.get_mut("disk-templates") {
            list.retain(|t| {
                t.as_str()
                    .is_some_and(|t| p.enabled_disk_templates.iter().any(|e| e == t))
            });
        }

        let hv_state_static = p
            .enabled_hypervisors
            .iter()
            .map(|hv| {
                let d =
                    params::defaults(ParamFamily::HvState, None).expect("hv_state has defaults");
                (hv.clone(), d)
            })
            .collect();
        let data_collectors = DATA_COLLECTOR_NAMES
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    DataCollectorConfig {
                        active: true,
                        interval: DATA_COLLECTOR_INTERVAL_USECS.into(),
                    },
                )
            })
            .collect();

        let cluster_uuid = Uuid::generate();
        let node_uuid = Uuid::generate();
        let group_uuid = Uuid::generate();

        let cluster = Cluster {
            serial_no: 1,
            rsahostkeypub: p.rsahostkeypub.clone(),
            dsahostkeypub: Some(String::new()),
            highest_used_port: FIRST_DRBD_PORT - 1,
            tcpudp_port_pool: BTreeSet::new(),
            mac_prefix: p.mac_prefix.clone(),
            volume_group_name,
            reserved_lvs: Vec::new(),
            drbd_usermode_helper: match &p.drbd_helper {
                Some(h) => Some(h.clone()),
                None if drbd => Some(DEFAULT_DRBD_HELPER.to_string()),
                None => None,
            },
            default_bridge: None,
            default_hypervisor: None,
            master_node: node_uuid.clone(),
            master_ip: p.master_ip.clone(),
            master_netdev: p.master_netdev.clone(),
            master_netmask: p.master_netmask,
            use_external_mip_script: p.use_external_mip_script,
            cluster_name: p.cluster_name.clone(),
            file_storage_dir: p
                .file_storage_dir
                .clone()
                .unwrap_or_else(|| DEFAULT_FILE_STORAGE_DIR.to_string()),
            shared_file_storage_dir: p
                .shared_file_storage_dir
                .clone()
                .unwrap_or_else(|| DEFAULT_SHARED_FILE_STORAGE_DIR.to_string()),
            gluster_storage_dir: p
                .gluster_storage_dir
                .clone()
                .unwrap_or_else(|| DEFAULT_GLUSTER_STORAGE_DIR.to_string()),
            enabled_hypervisors: p.enabled_hypervisors.clone(),
            hvparams,
            ipolicy,
            os_hvp: BTreeMap::new(),
            beparams: [(params::PP_DEFAULT.to_string(), beparams)].into(),
            osparams: BTreeMap::new(),
            osparams_private_cluster: BTreeMap::new(),
            nicparams: [(params::PP_DEFAULT.to_string(), nicparams)].into(),
            ndparams,
            diskparams,
            candidate_pool_size: p.candidate_pool_size,
            modify_etc_hosts: p.modify_etc_hosts,
            modify_ssh_setup: p.modify_ssh_setup,
            maintain_node_health: p.maintain_node_health,
            uid_pool: p.uid_pool.clone(),
            default_iallocator: p.default_iallocator.clone(),
            default_iallocator_params: ParamMap::new(),
            hidden_os: Vec::new(),
            blacklisted_os: Vec::new(),
            primary_ip_family: p.primary_ip_family,
            prealloc_wipe_disks: p.prealloc_wipe_disks,
            hv_state_static,
            disk_state_static: ParamMap::new(),
            enabled_disk_templates: p.enabled_disk_templates.clone(),
            candidate_certs: BTreeMap::new(),
            max_running_jobs: DEFAULT_MAX_RUNNING_JOBS,
            max_tracked_jobs: DEFAULT_MAX_TRACKED_JOBS,
            install_image: p.install_image.clone(),
            instance_communication_network: String::new(),
            zeroing_image: p.zeroing_image.clone(),
            compression_tools: p.compression_tools.clone(),
            enabled_user_shutdown: p.enabled_user_shutdown,
            data_collectors,
            ssh_key_type: p.ssh_key_type.clone(),
            ssh_key_bits: p.ssh_key_bits,
            ctime: now,
            mtime: now,
            uuid: cluster_uuid,
            tags: BTreeSet::new(),
        };
        let node = Node {
            name: p.master_node.clone(),
            primary_ip: p.primary_ip.clone(),
            secondary_ip,
            serial_no: 1,
            master_candidate: true,
            offline: false,
            drained: false,
            group: group_uuid.clone(),
            master_capable: true,
            vm_capable: true,
            ctime: now,
            mtime: now,
            uuid: node_uuid.clone(),
            ..Node::default()
        };
        let group = NodeGroup {
            name: INITIAL_NODE_GROUP_NAME.into(),
            serial_no: 1,
            ctime: now,
            mtime: now,
            uuid: group_uuid.clone(),
            ..NodeGroup::default()
        };
        let data = ConfigData {
            version: CONFIG_VERSION,
            cluster,
            nodes: [(node_uuid, node)].into(),
            nodegroups: [(group_uuid, group)].into(),
            instances: BTreeMap::new(),
            disks: BTreeMap::new(),
            networks: BTreeMap::new(),
            filters: BTreeMap::new(),
            serial_no: 1,
            ctime: now,
            mtime: now,
        };
        super::validate::validate(&data).map_err(|errors| ConfigError::Invalid {
            context: "built for gnt-cluster init".to_string(),
            errors,
        })?;
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;

    fn base() -> InitParams {
        let mut p = InitParams::new(
            "cluster.example.com",
            "node1.example.com",
            "192.0.2.100",
            "192.0.2.1",
            "eth0",
        );
        p.enabled_hypervisors = vec!["kvm".into(), "fake".into()];
        p.volume_group_name = Some("xenvg".into());
        p
    }

    #[test]
    fn initial_config_is_complete_valid_and_round_trips() {
        let mut p = base();
        p.hvparams.insert(
            "kvm".into(),
            [("kernel_path".to_string(), json!(""))].into(),
        );
        p.beparams.insert("maxmem".into(), json!(512));
        let d = ConfigData::initial(&p, 1000.5).unwrap();
        super::super::validate::validate(&d).unwrap();
        assert_eq!(d.serial_no, 1);
        assert_eq!(d.cluster.hvparams.len(), 6);
        assert_eq!(d.cluster.hvparams["kvm"]["kernel_path"], json!(""));
        assert_eq!(d.cluster.hvparams["kvm"]["migration_port"], json!(8102));
        assert_eq!(d.cluster.beparams["default"]["maxmem"], json!(512));
        assert_eq!(d.cluster.beparams["default"]["minmem"], json!(128));
        assert_eq!(d.cluster.diskparams.len(), 9);
        assert_eq!(d.cluster.diskparams["drbd"]["metavg"], json!("xenvg"));
        assert_eq!(d.cluster.highest_used_port, 10999);
        assert_eq!(d.cluster.drbd_usermode_helper.as_deref(), Some("/bin/true"));
        assert_eq!(
            d.cluster.ipolicy["disk-templates"],
            json!(["drbd", "plain"])
        );
        assert_eq!(d.cluster.hv_state_static.len(), 2);
        assert_eq!(d.cluster.data_collectors.len(), 6);
        let master = d.master_node().unwrap();
        assert!(master.master_candidate && master.master_capable && master.vm_capable);
        assert_eq!(master.secondary_ip, "192.0.2.1");
        let g = &d.nodegroups[&master.group];
        assert_eq!(g.name.as_str(), "default");

        let text = d.to_json();
        let again = ConfigData::from_json(&text, Path::new("mem")).unwrap();
        assert_eq!(again, d);
        assert_eq!(again.to_json(), text);
    }

    #[test]
    fn bad_input_is_named() {
        type Mutation = Box<dyn Fn(&mut InitParams)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (
                Box::new(|p| p.enabled_hypervisors = vec!["vmware".into()]),
                "vmware",
            ),
            (
                Box::new(|p| p.enabled_disk_templates = vec!["tape".into()]),
                "tape",
            ),
            (Box::new(|p| p.mac_prefix = "AA:00:0".into()), "AA:00:0"),
            (Box::new(|p| p.master_ip = "300.1.1.1".into()), "300.1.1.1"),
            (Box::new(|p| p.master_netmask = 33), "33"),
            (
                Box::new(|p| {
                    p.hvparams.insert(
                        "kvm".into(),
                        [("boot_order".to_string(), json!("usb"))].into(),
                    );
                }),
                "usb",
            ),
            (
                Box::new(|p| {
                    p.beparams.insert("vcpus".into(), json!("many"));
                }),
                "many",
            ),
            (
                Box::new(|p| {
                    p.diskparams
                        .insert("drbd".into(), [("bogus".to_string(), json!(1))].into());
                }),
                "bogus",
            ),
        ];
        for (mutate, needle) in cases {
            let mut p = base();
            mutate(&mut p);
            let err = ConfigData::initial(&p, 0.0).unwrap_err();
            let msg = crate::error::chain(&err);
            assert!(msg.contains(needle), "{needle}: {msg}");
        }
    }

    #[test]
    fn ipv6_needs_ipv4_secondary() {
        let mut p = base();
        p.primary_ip_family = IpFamily::V6;
        p.master_ip = "2001:db8::100".into();
        p.primary_ip = "2001:db8::1".into();
        p.master_netmask = 64;
        assert!(ConfigData::initial(&p, 0.0).is_err());
        p.secondary_ip = Some("198.51.100.1".into());
        let d = ConfigData::initial(&p, 0.0).unwrap();
        assert_eq!(d.cluster.primary_ip_family.af_number(), 10);
    }
}
