//! Instance fields (`gnt-instance list`, `/2/query/instance`): Ganeti 3.0's
//! `INSTANCE_FIELDS`, aliases included.
//!
//! Parameter fields (`hvparams`, `hv/*`, `beparams`, `be/*`, `osparams`,
//! NIC modes and links) are the effective values: cluster defaults, then
//! OS-specific ones, then the instance's own ([`crate::config::params`]
//! `fill_*`). What the instance is actually doing (`status`, `oper_*`,
//! `console`) needs node RPC (issue 4) and answers "no data" until then.

use std::cell::OnceCell;
use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde_json::{json, Value};

use super::fields::{self, field, Field, Table};
use super::filter::FieldFlag;
use super::{FieldKind, QueryError, QueryResponse, ResultCell, ResultStatus};
use crate::config::objects::{AdminState, ConfigData, Disk, Instance, Nic, ParamMap, Uuid};
use crate::config::params::{self, ParamFamily};

/// Most NICs an instance may have (`MAX_NICS`); `nic.*/N` fields exist for
/// each index below it.
pub const MAX_NICS: usize = 8;
/// Most disks an instance may have (`MAX_DISKS`).
pub const MAX_DISKS: usize = 16;
/// Space DRBD keeps for its metadata per disk, in MiB (`DRBD_META_SIZE`).
const DRBD_META_SIZE_MIB: u64 = 128;

/// One instance as its getters see it: the object, its disks, and its
/// effective parameters (computed on first use, once per row).
pub struct InstanceRow<'a> {
    /// The configuration snapshot.
    pub config: &'a ConfigData,
    /// The instance.
    pub instance: &'a Instance,
    /// Its disks, in order (missing references are left out).
    pub disks: Vec<&'a Disk>,
    /// What the nodes reported, when the query asked for live fields.
    pub live: Option<&'a super::live::LiveData>,
    hv: OnceCell<ParamMap>,
    be: OnceCell<ParamMap>,
    nics: OnceCell<Vec<ParamMap>>,
}

impl<'a> InstanceRow<'a> {
    /// The row of `instance`.
    pub fn new(config: &'a ConfigData, instance: &'a Instance) -> InstanceRow<'a> {
        InstanceRow {
            config,
            instance,
            disks: instance
                .disks
                .iter()
                .filter_map(|u| config.disks.get(u))
                .collect(),
            live: None,
            hv: OnceCell::new(),
            be: OnceCell::new(),
            nics: OnceCell::new(),
        }
    }

    /// Effective hypervisor parameters, without cluster-wide-only keys
    /// (`FillHV(skip_globals=True)`).
    pub fn hvparams(&self) -> &ParamMap {
        self.hv.get_or_init(|| {
            let i = self.instance;
            let mut p =
                params::fill_hvparams(&self.config.cluster, &i.os, &i.hypervisor, &i.hvparams);
            for g in params::hv_globals(&i.hypervisor) {
                p.remove(g);
            }
            p
        })
    }

    /// Effective backend parameters.
    pub fn beparams(&self) -> &ParamMap {
        self.be
            .get_or_init(|| params::fill_beparams(&self.config.cluster, &self.instance.beparams))
    }

    /// Effective NIC parameters, one map per NIC.
    pub fn nicparams(&self) -> &[ParamMap] {
        self.nics.get_or_init(|| {
            self.instance
                .nics
                .iter()
                .map(|n| params::fill_nicparams(&self.config.cluster, &n.nicparams))
                .collect()
        })
    }

    fn nic_param(&self, index: usize, key: &str) -> Option<&Value> {
        self.nicparams().get(index).and_then(|p| p.get(key))
    }
}

/// The instance's secondary nodes: every node its disks live on, except
/// the primary (Ganeti 3.0 derives them from the disks), plus any the
/// object lists itself.
pub fn secondary_nodes<'a>(config: &'a ConfigData, inst: &'a Instance) -> Vec<&'a Uuid> {
    let mut set: BTreeSet<&Uuid> = inst.secondary_nodes.iter().collect();
    for d in inst.disks.iter().filter_map(|u| config.disks.get(u)) {
        d.for_each_node(&mut |n| {
            set.insert(n);
        });
    }
    set.remove(&inst.primary_node);
    set.into_iter().collect()
}

/// The instance's disk template: stored by older writers, else the type of
/// its first disk, else `diskless`.
pub fn disk_template<'a>(config: &'a ConfigData, inst: &'a Instance) -> &'a str {
    if let Some(t) = &inst.disk_template {
        return t;
    }
    inst.disks
        .first()
        .and_then(|u| config.disks.get(u))
        .map_or("diskless", |d| d.dev_type.as_str())
}

fn admin_state_name(s: AdminState) -> &'static str {
    match s {
        AdminState::Up => "up",
        AdminState::Down => "down",
        AdminState::Offline => "offline",
    }
}

/// The getter type of instance fields.
pub type InstanceGetter = dyn Fn(&InstanceRow<'_>) -> ResultCell + Send + Sync;

type F = Field<InstanceGetter>;

fn simple(
    name: &str,
    title: &str,
    kind: FieldKind,
    doc: &str,
    get: impl Fn(&InstanceRow<'_>) -> ResultCell + Send + Sync + 'static,
) -> F {
    field(name, title, kind, doc, Box::new(get))
}

fn opt_text(v: Option<&str>) -> ResultCell {
    match v {
        Some(s) => ResultCell::normal(s),
        None => ResultCell::abnormal(ResultStatus::Unavail),
    }
}

fn node_name<'a>(c: &'a ConfigData, u: &Uuid) -> Option<&'a str> {
    c.nodes.get(u).map(|n| n.name.as_str())
}

fn node_group<'a>(c: &'a ConfigData, u: &Uuid) -> Option<&'a Uuid> {
    c.nodes.get(u).map(|n| &n.group)
}

fn node_group_name<'a>(c: &'a ConfigData, u: &Uuid) -> Option<&'a str> {
    node_group(c, u)
        .and_then(|g| c.nodegroups.get(g))
        .map(|g| g.name.as_str())
}

fn network_name<'a>(c: &'a ConfigData, nic: &Nic) -> Option<&'a str> {
    nic.network
        .as_ref()
        .and_then(|n| c.networks.get(n))
        .map(|n| n.name.as_str())
}

/// The instance field table.
pub fn table() -> &'static Table<InstanceGetter> {
    static TABLE: OnceLock<Table<InstanceGetter>> = OnceLock::new();
    TABLE.get_or_init(build)
}

fn build() -> Table<InstanceGetter> {
    use FieldKind::*;
    let mut f: Vec<F> = Vec::new();
    let mut pnode = simple("pnode", "Primary_node", Text, "Primary node", |r| {
        ResultCell::normal(node_name(r.config, &r.instance.primary_node))
    });
    pnode.flag = FieldFlag::Hostname;
    f.push(pnode);
    f.push(simple(
        "pnode.group",
        "PrimaryNodeGroup",
        Text,
        "Group of the primary node",
        |r| opt_text(node_group_name(r.config, &r.instance.primary_node)),
    ));
    f.push(simple(
        "pnode.group.uuid",
        "PrimaryNodeGroupUUID",
        Text,
        "Group UUID of the primary node",
        |r| opt_text(node_group(r.config, &r.instance.primary_node).map(Uuid::as_str)),
    ));
    f.push(simple(
        "snodes",
        "Secondary_Nodes",
        Other,
        "Secondary nodes",
        |r| {
            let v: Vec<Option<&str>> = secondary_nodes(r.config, r.instance)
                .into_iter()
                .map(|u| node_name(r.config, u))
                .collect();
            ResultCell::normal(json!(v))
        },
    ));
    f.push(simple(
        "snodes.group",
        "SecondaryNodesGroups",
        Other,
        "Groups of the secondary nodes",
        |r| {
            let v: Vec<Option<&str>> = secondary_nodes(r.config, r.instance)
                .into_iter()
                .map(|u| node_group_name(r.config, u))
                .collect();
            ResultCell::normal(json!(v))
        },
    ));
    f.push(simple(
        "snodes.group.uuid",
        "SecondaryNodesGroupsUUID",
        Other,
        "Group UUIDs of the secondary nodes",
        |r| {
            let v: Vec<Option<&str>> = secondary_nodes(r.config, r.instance)
                .into_iter()
                .map(|u| node_group(r.config, u).map(Uuid::as_str))
                .collect();
            ResultCell::normal(json!(v))
        },
    ));
    f.push(simple(
        "admin_state",
        "InstanceState",
        Text,
        "Desired state (up, down, offline)",
        |r| ResultCell::normal(admin_state_name(r.instance.admin_state)),
    ));
    f.push(simple(
        "admin_up",
        "Autostart",
        Bool,
        "Whether the instance should be running",
        |r| ResultCell::normal(r.instance.admin_state == AdminState::Up),
    ));
    f.push(simple(
        "admin_state_source",
        "InstanceStateSource",
        Text,
        "Who last set the desired state (admin or user)",
        |r| ResultCell::normal(r.instance.admin_state_source.as_str()),
    ));
    f.push(simple(
        "disks_active",
        "DisksActive",
        Bool,
        "Whether the disks should be active",
        |r| ResultCell::normal(r.instance.disks_active),
    ));
    f.push(simple("tags", "Tags", Other, "Tags", |r| {
        fields::tags(&r.instance.tags)
    }));
    // Console details come from the primary node (node RPC, issue 4).
    f.push(simple(
        "console",
        "Console",
        Other,
        "How to reach the instance's console",
        |_| ResultCell::abnormal(ResultStatus::NoData),
    ));
    f.push(simple(
        "forthcoming",
        "Forthcoming",
        Bool,
        "Whether the instance is only reserved",
        |r| ResultCell::normal(r.instance.forthcoming),
    ));
    f.push(simple(
        "disk_template",
        "Disk_template",
        Text,
        "Disk template",
        |r| ResultCell::normal(disk_template(r.config, r.instance)),
    ));
    f.push(simple(
        "hypervisor",
        "Hypervisor",
        Text,
        "Hypervisor",
        |r| ResultCell::normal(r.instance.hypervisor.as_str()),
    ));
    let mut name = simple("name", "Instance", Text, "Instance name", |r| {
        ResultCell::normal(r.instance.name.as_str())
    });
    name.flag = FieldFlag::Hostname;
    f.push(name);
    f.push(simple(
        "network_port",
        "Network_port",
        Other,
        "Console (e.g. VNC) network port, if the hypervisor uses one",
        |r| ResultCell::normal(r.instance.network_port),
    ));
    f.push(simple("os", "OS", Text, "Operating system", |r| {
        ResultCell::normal(r.instance.os.as_str())
    }));
    f.push(simple(
        "serial_no",
        "SerialNo",
        Number,
        "Instance serial number, bumped by every change",
        |r| ResultCell::normal(r.instance.serial_no),
    ));
    f.push(simple("uuid", "UUID", Text, "Instance UUID", |r| {
        ResultCell::normal(r.instance.uuid.as_str())
    }));
    // Live fields: the primary node's report is needed (node RPC, issue 4).
    f.push(simple(
        "oper_state",
        "Running",
        Bool,
        "Whether the instance is actually running",
        |r| match live_of(r) {
            Live::Known(found) => ResultCell::normal(found.is_some()),
            Live::Unknown => ResultCell::abnormal(ResultStatus::NoData),
        },
    ));
    f.push(simple(
        "oper_ram",
        "Memory",
        Unit,
        "Memory in use, as the hypervisor reports it",
        |r| live_instance_value(r, |i| ResultCell::normal(i.memory_mib)),
    ));
    f.push(simple(
        "oper_vcpus",
        "VCPUs",
        Number,
        "VCPUs in use, as the hypervisor reports it",
        |r| live_instance_value(r, |i| ResultCell::normal(i.vcpus)),
    ));
    f.push(simple(
        "status",
        "Status",
        Text,
        "Actual status: running, ADMIN_down, ADMIN_offline, USER_down, ERROR_up, ERROR_down, \
         ERROR_wrongnode, ERROR_nodedown or ERROR_nodeoffline",
        |r| {
            let offline = r
                .config
                .nodes
                .get(&r.instance.primary_node)
                .is_some_and(|n| n.offline);
            if offline {
                return ResultCell::normal("ERROR_nodeoffline");
            }
            match live_of(r) {
                Live::Unknown if r.live.is_some() => ResultCell::normal("ERROR_nodedown"),
                Live::Unknown => ResultCell::abnormal(ResultStatus::NoData),
                Live::Known(found) => ResultCell::normal(status(r, found)),
            }
        },
    ));
    nic_fields(&mut f);
    param_fields(&mut f);
    disk_fields(&mut f);
    f.push(simple("ctime", "CTime", Timestamp, "Creation time", |r| {
        fields::timestamp(r.instance.ctime)
    }));
    f.push(simple(
        "mtime",
        "MTime",
        Timestamp,
        "Last modification time",
        |r| fields::timestamp(r.instance.mtime),
    ));
    for (alias, target) in [
        ("vcpus", "be/vcpus"),
        ("be/memory", "be/maxmem"),
        ("sda_size", "disk.size/0"),
        ("sdb_size", "disk.size/1"),
        ("ip", "nic.ip/0"),
        ("mac", "nic.mac/0"),
        ("bridge", "nic.bridge/0"),
        ("nic_mode", "nic.mode/0"),
        ("nic_link", "nic.link/0"),
        ("nic_network", "nic.network/0"),
    ] {
        let Some(idx) = f.iter().position(|x| x.def.name == target) else {
            continue;
        };
        let target_def = f[idx].def.clone();
        f.push(fields::alias(
            alias,
            &target_def,
            Box::new(move |r| (table().fields[idx].get)(r)),
        ));
    }
    Table::new(f)
}

/// What the nodes said about a row's instance.
enum Live<'a> {
    /// No data: not gathered, or the primary is offline or did not answer.
    Unknown,
    /// The primary answered; where the instance runs, if anywhere.
    Known(Option<(&'a str, &'a super::live::LiveInstance)>),
}

fn live_of<'a>(r: &InstanceRow<'a>) -> Live<'a> {
    let Some(live) = r.live else {
        return Live::Unknown;
    };
    let primary = r.instance.primary_node.as_str();
    let offline = r
        .config
        .nodes
        .get(&r.instance.primary_node)
        .is_some_and(|n| n.offline);
    if offline || !live.nodes.contains_key(primary) {
        return Live::Unknown;
    }
    Live::Known(live.find_instance(r.instance.name.as_str()))
}

/// Ganeti's instance status from the admin state and where it runs.
fn status(r: &InstanceRow<'_>, found: Option<(&str, &super::live::LiveInstance)>) -> &'static str {
    use crate::config::objects::AdminState;
    let up = r.instance.admin_state == AdminState::Up;
    match found {
        Some((node, _)) if node != r.instance.primary_node.as_str() => "ERROR_wrongnode",
        Some((_, i)) if i.state == "shutdown" || i.state == "crashed" => {
            if up {
                "ERROR_down"
            } else {
                "ADMIN_down"
            }
        }
        Some(_) if up => "running",
        Some(_) => "ERROR_up",
        None => match r.instance.admin_state {
            AdminState::Up => "ERROR_down",
            AdminState::Down if r.instance.admin_state_source == "user" => "USER_down",
            AdminState::Down => "ADMIN_down",
            AdminState::Offline => "ADMIN_offline",
        },
    }
}

/// A live value of a running instance; "unavailable" when it is not
/// running, "no data" when its node did not answer (Ganeti's rules).
fn live_instance_value(
    r: &InstanceRow<'_>,
    get: impl Fn(&super::live::LiveInstance) -> ResultCell,
) -> ResultCell {
    match live_of(r) {
        Live::Unknown => ResultCell::abnormal(ResultStatus::NoData),
        Live::Known(Some((node, i))) if node == r.instance.primary_node.as_str() => get(i),
        Live::Known(_) => ResultCell::abnormal(ResultStatus::Unavail),
    }
}

fn nic_fields(f: &mut Vec<F>) {
    use FieldKind::*;
    f.push(simple(
        "nic.count",
        "NICs",
        Number,
        "Number of network interfaces",
        |r| ResultCell::normal(r.instance.nics.len()),
    ));
    f.push(simple(
        "nic.macs",
        "NIC_MACs",
        Other,
        "MAC address of each NIC",
        |r| {
            ResultCell::normal(json!(r
                .instance
                .nics
                .iter()
                .map(|n| &n.mac)
                .collect::<Vec<_>>()))
        },
    ));
    f.push(simple(
        "nic.ips",
        "NIC_IPs",
        Other,
        "IP address of each NIC",
        |r| {
            ResultCell::normal(json!(r
                .instance
                .nics
                .iter()
                .map(|n| &n.ip)
                .collect::<Vec<_>>()))
        },
    ));
    f.push(simple(
        "nic.names",
        "NIC_Names",
        Other,
        "Name of each NIC",
        |r| {
            ResultCell::normal(json!(r
                .instance
                .nics
                .iter()
                .map(|n| &n.name)
                .collect::<Vec<_>>()))
        },
    ));
    f.push(simple(
        "nic.uuids",
        "NIC_UUIDs",
        Other,
        "UUID of each NIC",
        |r| {
            ResultCell::normal(json!(r
                .instance
                .nics
                .iter()
                .map(|n| &n.uuid)
                .collect::<Vec<_>>()))
        },
    ));
    f.push(simple(
        "nic.modes",
        "NIC_modes",
        Other,
        "Mode of each NIC",
        |r| {
            ResultCell::normal(json!(r
                .nicparams()
                .iter()
                .map(|p| p.get("mode"))
                .collect::<Vec<_>>()))
        },
    ));
    f.push(simple(
        "nic.links",
        "NIC_links",
        Other,
        "Link of each NIC",
        |r| {
            ResultCell::normal(json!(r
                .nicparams()
                .iter()
                .map(|p| p.get("link"))
                .collect::<Vec<_>>()))
        },
    ));
    f.push(simple(
        "nic.vlans",
        "NIC_VLANs",
        Other,
        "VLAN of each NIC (bridged and openvswitch)",
        |r| {
            let v: Vec<Option<&Value>> = r
                .nicparams()
                .iter()
                .map(|p| match p.get("mode").and_then(Value::as_str) {
                    Some("bridged" | "openvswitch") => p.get("vlan"),
                    _ => None,
                })
                .collect();
            ResultCell::normal(json!(v))
        },
    ));
    f.push(simple(
        "nic.bridges",
        "NIC_bridges",
        Other,
        "Bridge of each bridged NIC",
        |r| {
            let v: Vec<Option<&Value>> = r
                .nicparams()
                .iter()
                .map(|p| match p.get("mode").and_then(Value::as_str) {
                    Some("bridged") => p.get("link"),
                    _ => None,
                })
                .collect();
            ResultCell::normal(json!(v))
        },
    ));
    f.push(simple(
        "nic.networks",
        "NIC_networks",
        Other,
        "Network UUID of each NIC",
        |r| {
            ResultCell::normal(json!(r
                .instance
                .nics
                .iter()
                .map(|n| &n.network)
                .collect::<Vec<_>>()))
        },
    ));
    f.push(simple(
        "nic.networks.names",
        "NIC_networks_names",
        Other,
        "Network name of each NIC",
        |r| {
            let v: Vec<Option<&str>> = r
                .instance
                .nics
                .iter()
                .map(|n| network_name(r.config, n))
                .collect();
            ResultCell::normal(json!(v))
        },
    ));
    for i in 0..MAX_NICS {
        let nth = ordinal(i + 1);
        let nic = move |r: &InstanceRow<'_>| r.instance.nics.get(i).cloned();
        let per = |name: &str, title: &str, doc: String, get: Box<InstanceGetter>| {
            field(
                &format!("nic.{name}/{i}"),
                &format!("{title}/{i}"),
                Text,
                &doc,
                get,
            )
        };
        f.push(per(
            "ip",
            "NicIP",
            format!("IP address of the {nth} NIC"),
            Box::new(move |r| match nic(r) {
                Some(n) => opt_text(n.ip.as_deref()),
                None => ResultCell::abnormal(ResultStatus::Unavail),
            }),
        ));
        f.push(per(
            "mac",
            "NicMAC",
            format!("MAC address of the {nth} NIC"),
            Box::new(move |r| match nic(r) {
                Some(n) => ResultCell::normal(n.mac),
                None => ResultCell::abnormal(ResultStatus::Unavail),
            }),
        ));
        f.push(per(
            "name",
            "NicName",
            format!("Name of the {nth} NIC"),
            Box::new(move |r| match nic(r) {
                Some(n) => opt_text(n.name.as_deref()),
                None => ResultCell::abnormal(ResultStatus::Unavail),
            }),
        ));
        f.push(per(
            "uuid",
            "NicUUID",
            format!("UUID of the {nth} NIC"),
            Box::new(move |r| match nic(r) {
                Some(n) => ResultCell::normal(n.uuid.0),
                None => ResultCell::abnormal(ResultStatus::Unavail),
            }),
        ));
        f.push(per(
            "mode",
            "NicMode",
            format!("Mode of the {nth} NIC"),
            Box::new(move |r| match r.nic_param(i, "mode") {
                Some(v) => ResultCell::normal(v.clone()),
                None => ResultCell::abnormal(ResultStatus::Unavail),
            }),
        ));
        f.push(per(
            "link",
            "NicLink",
            format!("Link of the {nth} NIC"),
            Box::new(move |r| match r.nic_param(i, "link") {
                Some(v) => ResultCell::normal(v.clone()),
                None => ResultCell::abnormal(ResultStatus::Unavail),
            }),
        ));
        f.push(per(
            "bridge",
            "NicBridge",
            format!("Bridge of the {nth} NIC, if bridged"),
            Box::new(
                move |r| match r.nic_param(i, "mode").and_then(Value::as_str) {
                    Some("bridged") => {
                        ResultCell::normal(r.nic_param(i, "link").cloned().unwrap_or(Value::Null))
                    }
                    _ => ResultCell::abnormal(ResultStatus::Unavail),
                },
            ),
        ));
        f.push(per(
            "vlan",
            "NicVLAN",
            format!("VLAN of the {nth} NIC, if openvswitch"),
            Box::new(
                move |r| match r.nic_param(i, "mode").and_then(Value::as_str) {
                    Some("openvswitch") => {
                        ResultCell::normal(r.nic_param(i, "vlan").cloned().unwrap_or(Value::Null))
                    }
                    _ => ResultCell::abnormal(ResultStatus::Unavail),
                },
            ),
        ));
        f.push(per(
            "network",
            "NicNetwork",
            format!("Network UUID of the {nth} NIC"),
            Box::new(move |r| match nic(r).and_then(|n| n.network) {
                Some(u) => ResultCell::normal(u.0),
                None => ResultCell::abnormal(ResultStatus::Unavail),
            }),
        ));
        f.push(per(
            "network.name",
            "NicNetworkName",
            format!("Network name of the {nth} NIC"),
            Box::new(move |r| match r.instance.nics.get(i) {
                Some(n) => opt_text(network_name(r.config, n)),
                None => ResultCell::abnormal(ResultStatus::Unavail),
            }),
        ));
    }
}

/// "1st", "2nd", "3rd", "4th", …
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, x) if x != 11 => "st",
        (2, x) if x != 12 => "nd",
        (3, x) if x != 13 => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// Column titles Ganeti gives some hypervisor parameters
/// (`HVS_PARAMETER_TITLES`).
fn hv_title(name: &str) -> Option<&'static str> {
    Some(match name {
        "acpi" => "ACPI",
        "boot_order" => "Boot_order",
        "cdrom_image_path" => "CDROM_image_path",
        "cpu_type" => "cpu_type",
        "disk_type" => "Disk_type",
        "initrd_path" => "Initrd_path",
        "kernel_path" => "Kernel_path",
        "nic_type" => "NIC_type",
        "pae" => "PAE",
        "pci_pass" => "pci_pass",
        "vnc_bind_address" => "VNC_bind_address",
        _ => return None,
    })
}

/// Column titles Ganeti gives some backend parameters (`BES_PARAMETER_TITLES`).
fn be_title(name: &str) -> Option<&'static str> {
    Some(match name {
        "auto_balance" => "Auto_balance",
        "maxmem" => "ConfigMaxMem",
        "minmem" => "ConfigMinMem",
        "vcpus" => "ConfigVCPUs",
        _ => return None,
    })
}

fn param_fields(f: &mut Vec<F>) {
    use FieldKind::*;
    f.push(simple(
        "hvparams",
        "HypervisorParameters",
        Other,
        "Effective hypervisor parameters",
        |r| fields::param_map(r.hvparams()),
    ));
    f.push(simple(
        "beparams",
        "BackendParameters",
        Other,
        "Effective backend parameters",
        |r| fields::param_map(r.beparams()),
    ));
    f.push(simple(
        "osparams",
        "OpSysParameters",
        Other,
        "Effective OS parameters",
        |r| {
            let i = r.instance;
            fields::param_map(&params::fill_osparams(
                &r.config.cluster,
                &i.os,
                &i.osparams,
            ))
        },
    ));
    f.push(simple(
        "custom_hvparams",
        "CustomHypervisorParameters",
        Other,
        "Hypervisor parameters set on the instance",
        |r| fields::param_map(&r.instance.hvparams),
    ));
    f.push(simple(
        "custom_beparams",
        "CustomBackendParameters",
        Other,
        "Backend parameters set on the instance",
        |r| fields::param_map(&r.instance.beparams),
    ));
    f.push(simple(
        "custom_osparams",
        "CustomOpSysParameters",
        Other,
        "OS parameters set on the instance",
        |r| fields::param_map(&r.instance.osparams),
    ));
    f.push(simple(
        "custom_nicparams",
        "CustomNicParameters",
        Other,
        "NIC parameters set on each NIC",
        |r| {
            let v: Vec<Value> = r
                .instance
                .nics
                .iter()
                .map(|n| {
                    Value::Object(
                        n.nicparams
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    )
                })
                .collect();
            ResultCell::normal(Value::Array(v))
        },
    ));
    // hv/*: every hypervisor's parameters (one field per name), except the
    // cluster-wide ones; "unavailable" for a hypervisor without the key.
    let mut seen = BTreeSet::new();
    for hv in params::hypervisors() {
        let globals = params::hv_globals(hv);
        for spec in params::specs(ParamFamily::Hv, Some(hv)).unwrap_or(&[]) {
            if globals.contains(&spec.name) || !seen.insert(spec.name) {
                continue;
            }
            let key = spec.name;
            let name = format!("hv/{key}");
            let title = hv_title(key).map_or_else(|| name.clone(), str::to_string);
            let doc = format!("Hypervisor parameter {key}");
            f.push(simple(
                &name,
                &title,
                fields::param_kind(spec.kind),
                &doc,
                move |r| match r.hvparams().get(key) {
                    Some(v) => ResultCell::normal(v.clone()),
                    None => ResultCell::abnormal(ResultStatus::Unavail),
                },
            ));
        }
    }
    for spec in params::specs(ParamFamily::Be, None).unwrap_or(&[]) {
        let key = spec.name;
        let name = format!("be/{key}");
        let title = be_title(key).map_or_else(|| name.clone(), str::to_string);
        let doc = format!("Backend parameter {key}");
        f.push(simple(
            &name,
            &title,
            fields::param_kind(spec.kind),
            &doc,
            move |r| fields::param_value(r.beparams(), key),
        ));
    }
}

fn disk_usage(r: &InstanceRow<'_>) -> u64 {
    r.disks
        .iter()
        .map(|d| match d.dev_type.as_str() {
            "diskless" | "blockdev" => 0,
            "drbd" => d.size + DRBD_META_SIZE_MIB,
            _ => d.size,
        })
        .sum()
}

fn disk_fields(f: &mut Vec<F>) {
    use FieldKind::*;
    f.push(simple(
        "disk_usage",
        "DiskUsage",
        Unit,
        "Space the disks take on each node (more than their size for DRBD)",
        |r| ResultCell::normal(disk_usage(r)),
    ));
    f.push(simple(
        "disk.count",
        "Disks",
        Number,
        "Number of disks",
        |r| ResultCell::normal(r.disks.len()),
    ));
    f.push(simple(
        "disk.sizes",
        "Disk_sizes",
        Other,
        "Size of each disk",
        |r| ResultCell::normal(json!(r.disks.iter().map(|d| d.size).collect::<Vec<_>>())),
    ));
    f.push(simple(
        "disk.spindles",
        "Disk_spindles",
        Other,
        "Spindles of each disk",
        |r| {
            ResultCell::normal(json!(r
                .disks
                .iter()
                .map(|d| d.spindles)
                .collect::<Vec<_>>()))
        },
    ));
    f.push(simple(
        "disk.names",
        "Disk_names",
        Other,
        "Name of each disk",
        |r| ResultCell::normal(json!(r.disks.iter().map(|d| &d.name).collect::<Vec<_>>())),
    ));
    f.push(simple(
        "disk.uuids",
        "Disk_UUIDs",
        Other,
        "UUID of each disk",
        |r| ResultCell::normal(json!(r.disks.iter().map(|d| &d.uuid).collect::<Vec<_>>())),
    ));
    for i in 0..MAX_DISKS {
        let nth = ordinal(i + 1);
        f.push(field(
            &format!("disk.size/{i}"),
            &format!("Disk/{i}"),
            Unit,
            &format!("Size of the {nth} disk"),
            Box::new(move |r: &InstanceRow<'_>| match r.disks.get(i) {
                Some(d) => ResultCell::normal(d.size),
                None => ResultCell::abnormal(ResultStatus::Unavail),
            }),
        ));
        f.push(field(
            &format!("disk.spindles/{i}"),
            &format!("DiskSpindles/{i}"),
            Number,
            &format!("Spindles of the {nth} disk"),
            Box::new(
                move |r: &InstanceRow<'_>| match r.disks.get(i).and_then(|d| d.spindles) {
                    Some(s) => ResultCell::normal(s),
                    None => ResultCell::abnormal(ResultStatus::Unavail),
                },
            ),
        ));
        f.push(field(
            &format!("disk.name/{i}"),
            &format!("DiskName/{i}"),
            Text,
            &format!("Name of the {nth} disk"),
            Box::new(move |r: &InstanceRow<'_>| {
                opt_text(r.disks.get(i).and_then(|d| d.name.as_deref()))
            }),
        ));
        f.push(field(
            &format!("disk.uuid/{i}"),
            &format!("DiskUUID/{i}"),
            Text,
            &format!("UUID of the {nth} disk"),
            Box::new(move |r: &InstanceRow<'_>| opt_text(r.disks.get(i).map(|d| d.uuid.as_str()))),
        ));
    }
}

/// Queries instances; see [`super::query`].
pub fn query(
    config: &ConfigData,
    selected: &[String],
    filter: Option<&Value>,
    live: Option<&super::live::LiveData>,
) -> Result<QueryResponse, QueryError> {
    super::run(
        table(),
        config.instances.values().map(|i| {
            let mut row = InstanceRow::new(config, i);
            row.live = live;
            row
        }),
        selected,
        filter,
        |r| r.instance.name.to_string(),
        |f, r| (f.get)(r),
    )
}
