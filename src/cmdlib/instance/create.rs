//! `OP_INSTANCE_CREATE` (`gnt-instance add`), create mode: Ganeti's
//! `LUInstanceCreate` checks and messages, then disks → config → OS
//! install → start, and on any failure everything undone (disks removed,
//! the instance out of the config, its new lock gone): no half-created
//! instance is ever left behind.

use super::{
    assemble_disks, call, check_free_memory, instance_spec_of, remove_disks, rpc_msg,
    shutdown_disks, spec, target_of, SLOW_TIMEOUT,
};
use crate::cmdlib::node::expand_node_name;
use crate::cmdlib::{LockNeed, LogicalUnit, LuContext, LuError};
use crate::config::objects::{
    AdminState, ConfigData, Disk, DiskMode, Instance, LogicalId, Nic, Node, ParamMap, Uuid,
};
use crate::config::params::{self, ParamFamily};
use crate::config::ConfigError;
use crate::error::ErrorKind;
use crate::locking::{Level, LockMode};
use crate::opcodes::params::InstanceCreateMode;
use crate::opcodes::{Dict, OpInstanceCreate};
use crate::rpc::proto::{self, BlockdevArgs, InstanceOsArgs, InstanceStartArgs, OsValidateArgs};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Disk templates whose disks are created here.
const SUPPORTED_TEMPLATES: &[&str] = &[
    "diskless",
    "plain",
    "drbd",
    "file",
    "sharedfile",
    "blockdev",
    "ext",
];

/// Name prefixes of generated volume/file names (`_DISK_TEMPLATE_NAME_PREFIX`).
pub(super) fn name_prefix(template: &str) -> Option<&'static str> {
    match template {
        "plain" => Some(""),
        "file" => Some(".file"),
        "sharedfile" => Some(".sharedfile"),
        "ext" => Some(".ext"),
        _ => None,
    }
}

/// One requested disk, validated.
#[derive(Debug, Clone)]
struct DiskReq {
    size_mib: u64,
    mode: DiskMode,
    name: Option<String>,
    vg: Option<String>,
    /// DRBD metadata volume group (default: `vg`).
    metavg: Option<String>,
    adopt: Option<String>,
    provider: Option<String>,
    extra: ParamMap,
}

/// One requested NIC, validated (`ip_auto`: take the resolved address).
#[derive(Debug, Clone)]
struct NicReq {
    nic: Nic,
    ip_auto: bool,
}

/// What the prerequisites established.
#[derive(Debug, Clone)]
struct Plan {
    template: String,
    hypervisor: String,
    pnode: Node,
    /// The DRBD secondary (`-n pnode:snode`); `None` for other templates.
    snode: Option<Node>,
    disks: Vec<DiskReq>,
    nics: Vec<NicReq>,
    file_dir: Option<String>,
    maxmem_mib: u64,
}

/// `OP_INSTANCE_CREATE`.
pub struct LuInstanceCreate {
    op: OpInstanceCreate,
    plan: Option<Plan>,
}

impl LuInstanceCreate {
    /// The LU for `op`.
    pub fn new(op: OpInstanceCreate) -> Self {
        LuInstanceCreate { op, plan: None }
    }
}

fn inval(msg: impl Into<String>) -> LuError {
    LuError::prereq(ErrorKind::Inval, msg)
}

fn dict_str(d: &Dict, key: &str) -> Option<String> {
    match d.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    }
}

/// Ganeti's disk dictionary keys (`IDISK_PARAMS`).
const IDISK_KEYS: &[&str] = &[
    "size", "spindles", "mode", "vg", "metavg", "adopt", "name", "provider", "access",
];

fn parse_disks(op: &OpInstanceCreate, template: &str) -> Result<Vec<DiskReq>, LuError> {
    let mut out = Vec::new();
    for (idx, d) in op.disks.iter().enumerate() {
        let mode = match dict_str(d, "mode").as_deref() {
            None | Some("rw") => DiskMode::ReadWrite,
            Some("ro") => DiskMode::ReadOnly,
            Some(other) => return Err(inval(format!("Invalid disk access mode '{other}'"))),
        };
        let adopt = dict_str(d, "adopt");
        let size_mib = match d.get("size") {
            Some(Value::Number(n)) => n
                .as_u64()
                .ok_or_else(|| inval(format!("Invalid disk size '{n}'")))?,
            Some(Value::String(s)) => {
                params::parse_unit(s).map_err(|_| inval(format!("Invalid disk size '{s}'")))?
            }
            None if adopt.is_some() => 0,
            None => return Err(inval("Missing disk size")),
            Some(other) => return Err(inval(format!("Invalid disk size '{other}'"))),
        };
        if size_mib == 0 && adopt.is_none() {
            return Err(inval(format!("Invalid disk size '0' for disk {idx}")));
        }
        let provider = dict_str(d, "provider");
        if template == "ext" && provider.is_none() {
            return Err(inval(format!("Missing provider for template '{template}'")));
        }
        if template != "ext" && provider.is_some() {
            return Err(inval(format!(
                "The 'provider' option is only valid for the ext disk template, not {template}"
            )));
        }
        let extra: ParamMap = d
            .iter()
            .filter(|(k, _)| !IDISK_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if template != "ext" {
            if let Some(k) = extra.keys().next() {
                return Err(inval(format!(
                    "Unknown disk parameter '{k}' for disk {idx}"
                )));
            }
        }
        out.push(DiskReq {
            size_mib,
            mode,
            name: dict_str(d, "name"),
            vg: dict_str(d, "vg"),
            metavg: dict_str(d, "metavg"),
            adopt,
            provider,
            extra,
        });
    }
    let adopted = out.iter().filter(|d| d.adopt.is_some()).count();
    if adopted != 0 && adopted != out.len() {
        return Err(inval("Either all disks are adopted or none is"));
    }
    if template == "blockdev" && adopted == 0 && !out.is_empty() {
        return Err(inval(
            "Disk template blockdev requires disk adoption, but no 'adopt' parameter given",
        ));
    }
    if adopted != 0 && template != "blockdev" {
        return Err(inval(format!(
            "Disk adoption is not supported for the '{template}' disk template"
        )));
    }
    if template == "diskless" && !out.is_empty() {
        return Err(inval("Diskless instances cannot have disks"));
    }
    Ok(out)
}

/// Every MAC in use in the cluster.
pub(super) fn used_macs(cfg: &ConfigData) -> BTreeSet<String> {
    cfg.instances
        .values()
        .flat_map(|i| i.nics.iter().map(|n| n.mac.to_lowercase()))
        .collect()
}

/// A random MAC with the cluster's prefix, not yet in use.
pub(super) fn generate_mac(prefix: &str, used: &BTreeSet<String>) -> Result<String, LuError> {
    for _ in 0..64 {
        let mut b = [0u8; 3];
        crate::sys::fs::random_bytes(&mut b)
            .map_err(|e| LuError::Exec(format!("generating a MAC address: {e}")))?;
        let mac = format!("{prefix}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2]);
        if !used.contains(&mac) {
            return Ok(mac);
        }
    }
    Err(LuError::prereq(
        ErrorKind::NoRes,
        "Can't generate unique MAC address: too many tries",
    ))
}

/// Ganeti's `NormalizeAndValidateMac`.
pub(super) fn normalize_mac(mac: &str) -> Option<String> {
    let parts: Vec<&str> = mac.split(':').collect();
    (parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit())))
    .then(|| mac.to_lowercase())
}

fn parse_nics(op: &OpInstanceCreate, cfg: &ConfigData) -> Result<Vec<NicReq>, LuError> {
    let default_mode = cfg
        .cluster
        .nicparams
        .get(params::PP_DEFAULT)
        .and_then(|p| p.get("mode"))
        .and_then(Value::as_str)
        .unwrap_or("bridged")
        .to_string();
    let mut used = used_macs(cfg);
    let mut out = Vec::new();
    for (idx, d) in op.nics.iter().enumerate() {
        if let Some(net) = dict_str(d, "network") {
            if !net.eq_ignore_ascii_case("none") {
                return Err(inval(format!(
                    "NIC {idx}: networks are not supported yet by ganeti-rs (network '{net}')"
                )));
            }
        }
        let mode = dict_str(d, "mode").unwrap_or(default_mode.clone());
        if !["bridged", "routed", "openvswitch"].contains(&mode.as_str()) {
            return Err(inval(format!("Invalid NIC mode '{mode}' for NIC {idx}")));
        }
        let (ip, ip_auto) = match dict_str(d, "ip") {
            None => (None, false),
            Some(s) if s.eq_ignore_ascii_case("none") => (None, false),
            Some(s) if s.eq_ignore_ascii_case("auto") => {
                if !op.name_check {
                    return Err(inval(
                        "IP address set to auto but name checks have been skipped",
                    ));
                }
                (None, true)
            }
            Some(s) if s.eq_ignore_ascii_case("pool") => {
                return Err(inval("if ip=pool, parameter network must be passed too"))
            }
            Some(s) => {
                if s.parse::<std::net::IpAddr>().is_err() {
                    return Err(inval(format!("Invalid IP address '{s}'")));
                }
                (Some(s), false)
            }
        };
        if mode == "routed" && ip.is_none() && !ip_auto {
            return Err(inval(
                "Routed nic mode requires an ip address if not attached to a network",
            ));
        }
        let mac = match dict_str(d, "mac").as_deref() {
            None | Some("auto") | Some("generate") => generate_mac(&cfg.cluster.mac_prefix, &used)?,
            Some(m) => {
                let m =
                    normalize_mac(m).ok_or_else(|| inval(format!("Invalid MAC address '{m}'")))?;
                if used.contains(&m) {
                    return Err(LuError::prereq(
                        ErrorKind::NotUnique,
                        format!("MAC address {m} already in use in cluster"),
                    ));
                }
                m
            }
        };
        used.insert(mac.clone());
        let mut nicparams = ParamMap::new();
        if d.contains_key("mode") {
            nicparams.insert("mode".into(), json!(mode));
        }
        if let Some(link) = dict_str(d, "link") {
            nicparams.insert("link".into(), json!(link));
        }
        if let Some(vlan) = dict_str(d, "vlan") {
            if mode != "openvswitch" && !vlan.is_empty() {
                return Err(inval("Specified VLAN parameter is invalid"));
            }
            nicparams.insert("vlan".into(), json!(vlan));
        }
        params::check_params(ParamFamily::Nic, None, &nicparams)
            .map_err(|e| inval(format!("NIC {idx}: {e}")))?;
        out.push(NicReq {
            nic: Nic {
                name: dict_str(d, "name"),
                mac,
                ip,
                nicparams,
                uuid: Uuid::generate(),
                ..Nic::default()
            },
            ip_auto,
        });
    }
    Ok(out)
}

/// The IP of another instance's NIC equal to `ip`, if any.
pub(super) fn ip_user<'a>(cfg: &'a ConfigData, ip: &str) -> Option<&'a str> {
    cfg.instances
        .values()
        .find(|i| i.nics.iter().any(|n| n.ip.as_deref() == Some(ip)))
        .map(|i| i.name.as_str())
}

pub(super) fn file_storage_dir(
    cfg: &ConfigData,
    template: &str,
    sub: Option<&str>,
    instance: &str,
) -> Result<Option<String>, LuError> {
    let base = match template {
        "file" => &cfg.cluster.file_storage_dir,
        "sharedfile" => &cfg.cluster.shared_file_storage_dir,
        _ => return Ok(None),
    };
    if base.is_empty() {
        return Err(LuError::prereq(
            ErrorKind::State,
            format!("Cluster file storage dir for '{template}' storage type not defined"),
        ));
    }
    let mut dir = base.trim_end_matches('/').to_string();
    if let Some(s) = sub {
        if s.split('/').any(|c| c == "..") {
            return Err(inval(format!(
                "File storage directory '{s}' may not contain '..'"
            )));
        }
        dir = format!("{dir}/{}", s.trim_matches('/'));
    }
    Ok(Some(format!("{dir}/{instance}")))
}

impl LuInstanceCreate {
    fn plan(&self, cfg: &ConfigData) -> Result<Plan, LuError> {
        let op = &self.op;
        let cluster = &cfg.cluster;
        if cfg.instance_by_name(&op.instance_name).is_some() {
            return Err(LuError::prereq(
                ErrorKind::Exists,
                format!("Instance '{}' is already in the cluster", op.instance_name),
            ));
        }
        if op.ip_check && !op.name_check {
            return Err(inval("Cannot do IP address check without a name check"));
        }
        // Disk template: given, else the cluster's default.
        let template = match op.disk_template {
            Some(t) => t.as_str().to_string(),
            None => cluster
                .enabled_disk_templates
                .first()
                .cloned()
                .ok_or_else(|| LuError::prereq(ErrorKind::State, "No disk template enabled"))?,
        };
        if !cluster.enabled_disk_templates.contains(&template) {
            return Err(LuError::prereq(
                ErrorKind::State,
                format!(
                    "Disk template '{template}' is not enabled in cluster. Enabled disk templates are: {}",
                    cluster.enabled_disk_templates.join(",")
                ),
            ));
        }
        if !SUPPORTED_TEMPLATES.contains(&template.as_str()) {
            return Err(inval(format!(
                "Disk template '{template}' is not supported yet by ganeti-rs instance creation"
            )));
        }
        let disks = parse_disks(op, &template)?;
        // Hypervisor and its parameters.
        let hypervisor = match op.hypervisor {
            Some(h) => h.as_str().to_string(),
            None => cluster
                .enabled_hypervisors
                .first()
                .cloned()
                .ok_or_else(|| LuError::prereq(ErrorKind::State, "No hypervisor enabled"))?,
        };
        if !cluster.enabled_hypervisors.contains(&hypervisor) {
            return Err(LuError::prereq(
                ErrorKind::State,
                format!(
                    "Selected hypervisor ({hypervisor}) not enabled in the cluster ({})",
                    cluster.enabled_hypervisors.join(",")
                ),
            ));
        }
        let hvp: ParamMap = op.hvparams.clone().into_iter().collect();
        for g in params::hv_globals(&hypervisor) {
            if hvp.contains_key(g) {
                return Err(inval(format!(
                    "The following hypervisor parameters are global and cannot be customized at instance level, please modify them at cluster level: {g}"
                )));
            }
        }
        params::check_params(ParamFamily::Hv, Some(&hypervisor), &hvp)
            .map_err(|e| inval(format!("Invalid hypervisor parameters: {e}")))?;
        let bep: ParamMap = op.beparams.clone().into_iter().collect();
        params::check_params(ParamFamily::Be, None, &bep)
            .map_err(|e| inval(format!("Invalid backend parameters: {e}")))?;
        let be_full = params::fill_beparams(cluster, &bep);
        // OS.
        let os = op
            .os_type
            .as_deref()
            .ok_or_else(|| inval("No guest OS or OS image specified"))?;
        if cluster.blacklisted_os.iter().any(|b| b == os) {
            return Err(inval(format!(
                "Guest OS '{os}' is not allowed for installation"
            )));
        }
        // Nodes.
        let pname = op.pnode.as_deref().ok_or_else(|| {
            inval(match op.iallocator.as_deref().or(
                Some(cluster.default_iallocator.as_str()).filter(|s| !s.is_empty()),
            ) {
                Some(ia) => format!(
                    "No primary node given and iallocator '{ia}' is not available in ganeti-rs yet; give the node with -n/--node (--iallocator is not supported)"
                ),
                None => "One of iallocator or primary node has to be set; give the node with -n/--node (--iallocator is not available in ganeti-rs yet)".to_string(),
            })
        })?;
        let (_, pnode) = cfg.node_by_name(pname).ok_or_else(|| {
            LuError::prereq(ErrorKind::NoEnt, format!("Node '{pname}' not known"))
        })?;
        if pnode.offline {
            return Err(LuError::prereq(
                ErrorKind::State,
                format!("Cannot use offline primary node '{}'", pnode.name),
            ));
        }
        if pnode.drained {
            return Err(LuError::prereq(
                ErrorKind::State,
                format!("Cannot use drained primary node '{}'", pnode.name),
            ));
        }
        if !pnode.vm_capable {
            return Err(LuError::prereq(
                ErrorKind::State,
                format!("Cannot use non-vm_capable primary node '{}'", pnode.name),
            ));
        }
        let snode = self.drbd_secondary(cfg, &template, pnode)?;
        let nics = parse_nics(op, cfg)?;
        if op.ip_check || op.conflicts_check {
            for n in &nics {
                if let Some(ip) = &n.nic.ip {
                    if let Some(user) = ip_user(cfg, ip) {
                        return Err(LuError::prereq(
                            ErrorKind::NotUnique,
                            format!("IP address {ip} already in use by instance {user}"),
                        ));
                    }
                }
            }
        }
        let file_dir = file_storage_dir(
            cfg,
            &template,
            op.file_storage_dir.as_deref(),
            &op.instance_name,
        )?;
        Ok(Plan {
            template,
            hypervisor,
            pnode: pnode.clone(),
            snode,
            disks,
            nics,
            file_dir,
            maxmem_mib: super::be_u64(&be_full, "maxmem"),
        })
    }

    /// The config objects of the new instance and its disks.
    fn build(
        &self,
        cfg: &ConfigData,
        plan: &Plan,
        resolved_ip: Option<String>,
        links: &[DrbdLink],
    ) -> (Instance, Vec<Disk>) {
        let now = super::now();
        let inst_uuid = Uuid::generate();
        let vg = cfg.cluster.volume_group_name.clone().unwrap_or_default();
        let disks: Vec<Disk> = plan
            .disks
            .iter()
            .enumerate()
            .map(|(idx, d)| {
                if let Some(link) = links.get(idx) {
                    return drbd_disk(plan, idx, d, link, &vg, now);
                }
                let uuid = Uuid::generate();
                let gen_name = name_prefix(&plan.template)
                    .map(|p| format!("{}{p}.disk{idx}", Uuid::generate()))
                    .unwrap_or_default();
                let driver = self
                    .op
                    .file_driver
                    .map(|f| f.as_str().to_string())
                    .unwrap_or_else(|| "loop".into());
                let logical_id = match plan.template.as_str() {
                    "plain" => LogicalId::Pair(d.vg.clone().unwrap_or(vg.clone()), gen_name),
                    "file" | "sharedfile" => LogicalId::Pair(
                        driver,
                        format!("{}/{gen_name}", plan.file_dir.clone().unwrap_or_default()),
                    ),
                    "blockdev" => {
                        LogicalId::Pair("manual".into(), d.adopt.clone().unwrap_or_default())
                    }
                    "ext" => LogicalId::Pair(d.provider.clone().unwrap_or_default(), gen_name),
                    _ => LogicalId::default(),
                };
                let mut params = ParamMap::new();
                if plan.template == "ext" {
                    if let Some(p) = &d.provider {
                        params.insert("provider".into(), json!(p));
                    }
                    params.extend(d.extra.clone());
                }
                let nodes = if matches!(plan.template.as_str(), "plain" | "file") {
                    vec![plan.pnode.uuid.clone()]
                } else {
                    Vec::new()
                };
                Disk {
                    name: d.name.clone(),
                    dev_type: plan.template.clone(),
                    logical_id,
                    nodes,
                    iv_name: format!("disk/{idx}"),
                    size: d.size_mib,
                    mode: d.mode,
                    params,
                    serial_no: 1,
                    uuid,
                    ctime: now,
                    mtime: now,
                    ..Disk::default()
                }
            })
            .collect();
        let op = &self.op;
        let nics = plan
            .nics
            .iter()
            .map(|n| {
                let mut nic = n.nic.clone();
                if n.ip_auto {
                    nic.ip = resolved_ip.clone();
                }
                nic
            })
            .collect();
        let inst = Instance {
            name: op.instance_name.clone().into(),
            primary_node: plan.pnode.uuid.clone(),
            os: op.os_type.clone().unwrap_or_default(),
            hypervisor: plan.hypervisor.clone(),
            hvparams: op.hvparams.clone().into_iter().collect(),
            beparams: op.beparams.clone().into_iter().collect(),
            osparams: op.osparams.clone().into_iter().collect(),
            osparams_private: op
                .osparams_private
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            admin_state: AdminState::Down,
            admin_state_source: "admin".into(),
            nics,
            disks: disks.iter().map(|d| d.uuid.clone()).collect(),
            disks_active: false,
            serial_no: 1,
            ctime: now,
            mtime: now,
            uuid: inst_uuid,
            tags: op.tags.iter().cloned().collect(),
            ..Instance::default()
        };
        (inst, disks)
    }

    /// Checks that need the nodes or the resolver; nothing changed yet.
    fn remote_checks(
        &mut self,
        ctx: &mut LuContext<'_>,
        cfg: &ConfigData,
        plan: &Plan,
    ) -> Result<Option<String>, LuError> {
        let op = &self.op;
        let mut resolved_ip = None;
        if op.name_check {
            let family = cfg.cluster.primary_ip_family;
            let host = crate::net::hostname::resolve(ctx.store.paths(), &op.instance_name, family)
                .map_err(|e| LuError::prereq(ErrorKind::Resolver, crate::error::chain(&e)))?;
            if op.ip_check {
                let port = crate::net::noded_port(ctx.store.paths());
                if crate::net::hostname::tcp_ping(host.ip, port, std::time::Duration::from_secs(1))
                {
                    return Err(LuError::prereq(
                        ErrorKind::NotUnique,
                        format!(
                            "IP {} of instance {} already in use",
                            host.ip, op.instance_name
                        ),
                    ));
                }
            }
            resolved_ip = Some(host.ip.to_string());
        }
        let tgt = crate::cmdlib::node::target(&plan.pnode);
        let mut osparams = spec::osparams_text(&params::fill_osparams(
            &cfg.cluster,
            op.os_type.as_deref().unwrap_or_default(),
            &op.osparams.clone().into_iter().collect(),
        ));
        for d in [&op.osparams_private, &op.osparams_secret]
            .into_iter()
            .flatten()
        {
            osparams.extend(d.iter().map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_string),
                )
            }));
        }
        let args = OsValidateArgs {
            required: true,
            name: op.os_type.clone().unwrap_or_default(),
            checks: vec!["parameters".into()],
            osparams,
        };
        if let Err(e) = call(ctx, proto::OS_VALIDATE, &tgt, &args, super::QUICK_TIMEOUT) {
            return Err(inval(format!(
                "OS '{}' validation failed on node {}: {}",
                args.name,
                tgt.name,
                rpc_msg(&e)
            )));
        }
        if op.start {
            check_free_memory(
                ctx,
                cfg,
                &plan.pnode.uuid,
                &format!("creating instance {}", op.instance_name),
                plan.maxmem_mib,
                &plan.hypervisor,
            )?;
        }
        Ok(resolved_ip)
    }
}

impl LogicalUnit for LuInstanceCreate {
    fn expand_names(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        if !matches!(
            self.op.mode,
            InstanceCreateMode::Create | InstanceCreateMode::Import
        ) {
            return Err(inval(format!(
                "Instance creation mode '{}' is not supported yet by ganeti-rs",
                self.op.mode.as_str()
            )));
        }
        if cfg.instance_by_name(&self.op.instance_name).is_some() {
            return Err(LuError::prereq(
                ErrorKind::Exists,
                format!(
                    "Instance '{}' is already in the cluster",
                    self.op.instance_name
                ),
            ));
        }
        if let Some(p) = &self.op.pnode {
            self.op.pnode = Some(expand_node_name(cfg, p)?);
        }
        if let Some(s) = &self.op.snode {
            self.op.snode = Some(expand_node_name(cfg, s)?);
        }
        Ok(())
    }

    fn declare_locks(&self, _cfg: &ConfigData) -> Vec<LockNeed> {
        let nodes: Vec<String> = self
            .op
            .pnode
            .iter()
            .chain(self.op.snode.iter())
            .cloned()
            .collect();
        [Level::Node, Level::NodeRes]
            .into_iter()
            .map(|level| LockNeed {
                level,
                names: nodes.clone(),
                mode: LockMode::Exclusive,
            })
            .collect()
    }

    fn add_locks(&self) -> Vec<LockNeed> {
        vec![LockNeed {
            level: Level::Instance,
            names: vec![self.op.instance_name.clone()],
            mode: LockMode::Exclusive,
        }]
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        if self.op.mode == InstanceCreateMode::Import {
            // Planned in exec, once the export has been read from its node.
            return Ok(());
        }
        self.plan = Some(self.plan(cfg)?);
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let import = self.import_source(ctx)?;
        let plan = self
            .plan
            .clone()
            .ok_or_else(|| LuError::Exec("instance create ran without its prerequisites".into()))?;
        let cfg = ctx.store.snapshot();
        let resolved_ip = self.remote_checks(ctx, &cfg, &plan)?;
        let links = reserve_drbd(ctx, &cfg, &plan)?;
        let (inst, disks) = self.build(&cfg, &plan, resolved_ip, &links);
        let name = inst.name.as_str().to_string();

        // Disks first (on the nodes), then the config entry.
        let mut cfg_view = (*cfg).clone();
        for d in &disks {
            cfg_view.disks.insert(d.uuid.clone(), d.clone());
        }
        let all = super::disks_with_nodes(&cfg_view, &inst)?;
        let mut created = Vec::new();
        for (spec, nodes) in &all {
            ctx.log(format!(
                "* disk {}, size {}",
                spec.iv_name.trim_start_matches("disk/"),
                super::format_size(spec.size_mib)
            ));
            let mut this = Vec::new();
            for node in nodes {
                let tgt = target_of(&cfg_view, node)?;
                let args = BlockdevArgs {
                    disk: spec::disk_for_node(&cfg_view, spec, node),
                    instance_name: name.clone(),
                    on_primary: *node == inst.primary_node,
                    exclusive_storage: false,
                };
                if let Err(e) = call(ctx, proto::BLOCKDEV_CREATE, &tgt, &args, SLOW_TIMEOUT) {
                    if !this.is_empty() {
                        created.push((spec.clone(), this));
                    }
                    let msg = super::create_failed(&spec.iv_name, &tgt.name, &name, &e);
                    self.rollback(ctx, &cfg_view, &inst, &created, false);
                    return Err(LuError::Exec(msg));
                }
                this.push(node.clone());
            }
            created.push((spec.clone(), this));
        }

        ctx.log("adding instance to cluster config".to_string());
        let (i2, d2) = (inst.clone(), disks.clone());
        if let Err(e) = ctx.update_config(move |c| {
            if c.instance_by_name(i2.name.as_str()).is_some() {
                return Err(ConfigError::Update {
                    reason: format!("Instance '{}' is already in the cluster", i2.name),
                });
            }
            for d in d2 {
                c.disks.insert(d.uuid.clone(), d);
            }
            c.instances.insert(i2.uuid.clone(), i2);
            c.cluster.serial_no += 1;
            Ok(())
        }) {
            self.rollback(ctx, &cfg_view, &inst, &created, false);
            return Err(e);
        }

        if let Some(source) = &import {
            if let Err(e) = self.import_data(ctx, &inst, source) {
                let cfg_now = ctx.store.snapshot();
                self.rollback(ctx, &cfg_now, &inst, &created, true);
                return Err(e);
            }
        }
        if let Err(e) = self.install_and_start(ctx, &inst) {
            let cfg_now = ctx.store.snapshot();
            self.rollback(ctx, &cfg_now, &inst, &created, true);
            return Err(e);
        }
        let cfg = ctx.store.snapshot();
        Ok(json!(super::instance_nodes(&cfg, &inst)
            .iter()
            .filter_map(|u| cfg.nodes.get(u))
            .map(|n| n.name.as_str().to_string())
            .collect::<Vec<_>>()))
    }
}

/// Import mode (`gnt-backup import`): the export is read in exec, since
/// that needs a node; the disks are then filled from its dumps instead of
/// running the OS `create` script.
impl LuInstanceCreate {
    /// For import mode: reads the export, fills the opcode from it and
    /// plans; `None` in create mode.
    fn import_source(
        &mut self,
        ctx: &mut LuContext<'_>,
    ) -> Result<Option<super::transfer::ImportSource>, LuError> {
        if self.op.mode != InstanceCreateMode::Import {
            return Ok(None);
        }
        super::transfer::check_compress(&self.op.compress)?;
        let cfg = ctx.store.snapshot();
        let source = super::transfer::read_import_source(ctx, &cfg, &mut self.op)?;
        self.op.no_install = Some(true);
        self.plan = Some(self.plan(&cfg)?);
        Ok(Some(source))
    }

    /// Copies the export's dumps into the new instance's disks.
    fn import_data(
        &self,
        ctx: &mut LuContext<'_>,
        inst: &Instance,
        source: &super::transfer::ImportSource,
    ) -> Result<(), LuError> {
        let cfg = ctx.store.snapshot();
        super::transfer::import_disks(ctx, &cfg, inst, source)
    }
}

impl LuInstanceCreate {
    fn install_and_start(&self, ctx: &mut LuContext<'_>, inst: &Instance) -> Result<(), LuError> {
        let install = !self.op.no_install.unwrap_or(false);
        if !install && !self.op.start {
            return Ok(());
        }
        let cfg = ctx.store.snapshot();
        let tgt = target_of(&cfg, &inst.primary_node)?;
        let devices = assemble_disks(ctx, &cfg, inst)?;
        super::update_instance(ctx, &inst.uuid, |i| {
            i.disks_active = true;
            Ok(())
        })?;
        let cfg = ctx.store.snapshot();
        let spec = instance_spec_of(&cfg, &inst.uuid)?;
        if install {
            ctx.log(format!(
                "* running the instance OS create scripts on {}",
                tgt.name
            ));
            let args = InstanceOsArgs {
                instance: spec.clone(),
                disks: devices.clone(),
                reinstall: false,
                old_name: None,
                debug: 0,
            };
            if let Err(e) = call(ctx, proto::INSTANCE_OS_ADD, &tgt, &args, SLOW_TIMEOUT) {
                return Err(LuError::Exec(format!(
                    "Could not add os for instance {} on node {}: {}",
                    inst.name,
                    tgt.name,
                    rpc_msg(&e)
                )));
            }
        }
        if !self.op.start {
            for w in shutdown_disks(ctx, &cfg, inst) {
                ctx.log(format!("WARNING: {w}"));
            }
            return super::update_instance(ctx, &inst.uuid, |i| {
                i.disks_active = false;
                Ok(())
            });
        }
        ctx.log(format!("* starting instance {}", inst.name));
        let args = InstanceStartArgs {
            instance: spec,
            disks: devices,
            startup_paused: false,
        };
        if let Err(e) = call(ctx, proto::INSTANCE_START, &tgt, &args, SLOW_TIMEOUT) {
            return Err(LuError::Exec(format!(
                "Could not start instance {}: {}",
                inst.name,
                rpc_msg(&e)
            )));
        }
        super::set_admin_state(ctx, &inst.uuid, AdminState::Up, "admin")
    }

    /// Undoes a failed creation: disks shut down and removed where they
    /// were created, the instance out of the config.
    fn rollback(
        &self,
        ctx: &mut LuContext<'_>,
        cfg: &ConfigData,
        inst: &Instance,
        created: &[(proto::DiskSpec, Vec<Uuid>)],
        in_config: bool,
    ) {
        if in_config {
            for w in shutdown_disks(ctx, cfg, inst) {
                log::warn!("instance create rollback: {w}");
            }
        }
        for w in remove_disks(ctx, cfg, inst, created) {
            ctx.log(format!("WARNING: {w}"));
        }
        release_drbd_ports(ctx, cfg, inst);
        if in_config {
            let uuid = inst.uuid.clone();
            let disks = inst.disks.clone();
            if let Err(e) = ctx.update_config(move |c| {
                c.instances.remove(&uuid);
                for d in &disks {
                    c.disks.remove(d);
                }
                c.cluster.serial_no += 1;
                Ok(())
            }) {
                ctx.log(format!(
                    "WARNING: could not remove instance {} from the config: {e}",
                    inst.name
                ));
            }
        }
    }
}

// ---------------------------------------------------------------------
// DRBD (issue 5, disks part): the secondary node, minors, ports, secrets
// and the disk objects (Ganeti's `_GenerateDRBD8Branch`).

/// What one DRBD disk of a new instance gets: its link's port, the minor
/// on each node and the shared secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrbdLink {
    /// TCP port of the replication link (from the cluster's pool).
    pub port: u32,
    /// Minor on the primary node.
    pub minor_primary: u32,
    /// Minor on the secondary node.
    pub minor_secondary: u32,
    /// Shared secret (hex).
    pub secret: String,
}

impl LuInstanceCreate {
    /// The secondary node a `drbd` instance needs (Ganeti's checks in
    /// `LUInstanceCreate.CheckPrereq`); other templates refuse one.
    fn drbd_secondary(
        &self,
        cfg: &ConfigData,
        template: &str,
        pnode: &Node,
    ) -> Result<Option<Node>, LuError> {
        let Some(sname) = self.op.snode.as_deref() else {
            if template == "drbd" {
                return Err(inval(
                    "The networked disk templates need a mirror node; give it with -n PRIMARY:SECONDARY",
                ));
            }
            return Ok(None);
        };
        if template != "drbd" {
            return Err(inval(format!(
                "The '{template}' disk template does not use a secondary node"
            )));
        }
        let (_, snode) = cfg.node_by_name(sname).ok_or_else(|| {
            LuError::prereq(ErrorKind::NoEnt, format!("Node '{sname}' not known"))
        })?;
        if snode.uuid == pnode.uuid {
            return Err(inval("The secondary node cannot be the primary node"));
        }
        for (bad, what) in [
            (snode.offline, "offline"),
            (snode.drained, "drained"),
            (!snode.vm_capable, "non-vm_capable"),
        ] {
            if bad {
                return Err(LuError::prereq(
                    ErrorKind::State,
                    format!("Cannot use {what} secondary node '{}'", snode.name),
                ));
            }
        }
        Ok(Some(snode.clone()))
    }
}

/// Minors, ports and secrets for the disks of a new `drbd` instance
/// (none for other templates). Ports are taken in a config update so that
/// no other job gets them; [`release_drbd_ports`] gives them back when
/// the creation fails. Minors need no reservation: the node locks of both
/// nodes are held until the instance is in the config.
fn reserve_drbd(
    ctx: &mut LuContext<'_>,
    cfg: &ConfigData,
    plan: &Plan,
) -> Result<Vec<DrbdLink>, LuError> {
    let Some(snode) = plan.snode.as_ref().filter(|_| plan.template == "drbd") else {
        return Ok(Vec::new());
    };
    let n = plan.disks.len();
    let nodes: Vec<Uuid> = (0..n)
        .flat_map(|_| [plan.pnode.uuid.clone(), snode.uuid.clone()])
        .collect();
    let minors = crate::config::drbd::allocate_minors(cfg, &nodes);
    let mut secrets = Vec::with_capacity(n);
    for _ in 0..n {
        let s = crate::config::drbd::generate_secret(cfg)
            .map_err(|e| LuError::Exec(crate::error::chain(&e)))?;
        secrets.push(s);
    }
    let ports = ctx.update_config(move |c| {
        let mut ports = Vec::with_capacity(n);
        for _ in 0..n {
            match crate::config::drbd::allocate_port(&mut c.cluster) {
                Ok(p) => ports.push(p),
                Err(e) => return Err(e),
            }
        }
        c.cluster.serial_no += 1;
        Ok(ports)
    })?;
    Ok(ports
        .into_iter()
        .zip(secrets)
        .enumerate()
        .map(|(i, (port, secret))| DrbdLink {
            port,
            minor_primary: minors[2 * i],
            minor_secondary: minors[2 * i + 1],
            secret,
        })
        .collect())
}

/// Gives the ports of `inst`'s DRBD disks (as `cfg` records them) back to
/// the cluster's pool after a failed creation.
fn release_drbd_ports(ctx: &mut LuContext<'_>, cfg: &ConfigData, inst: &Instance) {
    let ports: Vec<u32> = inst
        .disks
        .iter()
        .filter_map(|u| cfg.disks.get(u))
        .filter_map(|d| match &d.logical_id {
            LogicalId::Drbd { port, .. } => Some(*port),
            _ => None,
        })
        .collect();
    if ports.is_empty() {
        return;
    }
    if let Err(e) = ctx.update_config(move |c| {
        for p in ports {
            crate::config::drbd::release_port(&mut c.cluster, p);
        }
        c.cluster.serial_no += 1;
        Ok(())
    }) {
        ctx.log(format!(
            "WARNING: could not give the DRBD ports of {} back: {e}",
            inst.name
        ));
    }
}

/// One `drbd` disk with its data and metadata volumes (Ganeti's
/// `_GenerateDRBD8Branch`): LVs `<uuid>.disk<N>_data` (the disk's size)
/// and `<uuid>.disk<N>_meta` (`DRBD_META_SIZE`), on both nodes.
fn drbd_disk(
    plan: &Plan,
    idx: usize,
    d: &DiskReq,
    link: &DrbdLink,
    default_vg: &str,
    now: f64,
) -> Disk {
    let pnode = plan.pnode.uuid.clone();
    let snode = plan
        .snode
        .as_ref()
        .map(|n| n.uuid.clone())
        .unwrap_or_default();
    let nodes = vec![pnode.clone(), snode.clone()];
    let vg = d.vg.clone().unwrap_or_else(|| default_vg.to_string());
    let metavg = d.metavg.clone().unwrap_or_else(|| vg.clone());
    let base = Uuid::generate();
    let lv = |vg: &str, suffix: &str, size: u64| Disk {
        dev_type: "plain".into(),
        logical_id: LogicalId::Pair(vg.to_string(), format!("{base}.disk{idx}_{suffix}")),
        nodes: nodes.clone(),
        size,
        mode: DiskMode::ReadWrite,
        serial_no: 1,
        ctime: now,
        mtime: now,
        ..Disk::default()
    };
    Disk {
        name: d.name.clone(),
        dev_type: "drbd".into(),
        logical_id: LogicalId::Drbd {
            node_a: pnode,
            node_b: snode,
            port: link.port,
            minor_a: link.minor_primary,
            minor_b: link.minor_secondary,
            secret: link.secret.clone(),
        },
        children: vec![
            lv(&vg, "data", d.size_mib),
            lv(&metavg, "meta", DRBD_META_SIZE_MIB),
        ],
        nodes,
        iv_name: format!("disk/{idx}"),
        size: d.size_mib,
        mode: d.mode,
        serial_no: 1,
        uuid: Uuid::generate(),
        ctime: now,
        mtime: now,
        ..Disk::default()
    }
}

/// Size of a DRBD metadata volume, MiB (Ganeti's `DRBD_META_SIZE`).
pub const DRBD_META_SIZE_MIB: u64 = 128;

#[cfg(test)]
mod drbd_tests {
    use crate::cmdlib::fake_rpc::{exec_err, prereq, TestCluster};
    use crate::cmdlib::OpOutcome;
    use crate::error::ErrorKind;
    use crate::opcodes::params::{DiskTemplate, InstanceCreateMode};
    use crate::opcodes::{Dict, OpInstanceCreate};
    use crate::rpc::proto;
    use serde_json::{json, Value};

    const N1: &str = "node1.example.com";
    const N2: &str = "node2.example.com";

    fn cluster() -> TestCluster {
        let mut cfg = crate::config::test_support::generated(3, 1);
        cfg.cluster.enabled_disk_templates.push("drbd".into());
        for n in cfg.nodes.values_mut() {
            if n.name.as_str() == N2 {
                n.secondary_ip = "198.51.100.2".into();
            }
        }
        let c = TestCluster::with_config("create-drbd", cfg);
        for n in [N1, N2] {
            c.rpc.answer_fake_host(n, 4096);
            c.rpc.answer_assembled(n, "x", "/dev/drbd0");
        }
        c
    }

    fn op(name: &str, snode: Option<&str>, template: DiskTemplate) -> OpInstanceCreate {
        let disk: Dict = json!({"size": "1G"}).as_object().unwrap().clone();
        OpInstanceCreate {
            instance_name: name.into(),
            mode: InstanceCreateMode::Create,
            disk_template: Some(template),
            disks: vec![disk],
            nics: vec![Dict::new()],
            os_type: Some("debootstrap+default".into()),
            pnode: Some("node1".into()),
            snode: snode.map(str::to_string),
            beparams: json!({"maxmem": 256, "minmem": 256})
                .as_object()
                .unwrap()
                .clone(),
            name_check: false,
            ip_check: false,
            ..Default::default()
        }
    }

    fn node_disk(args: &Value) -> proto::DiskSpec {
        serde_json::from_value(args["disk"].clone()).unwrap()
    }

    #[test]
    fn drbd_instance_gets_minors_port_secret_and_both_nodes() {
        let c = cluster();
        let (out, log) = c.run(op("d1.example.com", Some("node2"), DiskTemplate::Drbd));
        assert_eq!(out, OpOutcome::Success(json!([N1, N2])), "{log:?}");

        // Secondary first, then the primary; each gets its own side.
        let creates = c.rpc.calls_of(proto::BLOCKDEV_CREATE);
        let nodes: Vec<&str> = creates.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(nodes, vec![N2, N1]);
        let on2 = node_disk(&creates[0].1);
        let on1 = node_disk(&creates[1].1);
        assert_eq!(creates[0].1["on_primary"], json!(false));
        assert_eq!(creates[1].1["on_primary"], json!(true));
        let n1_ip = c.config().node_by_name(N1).unwrap().1.primary_ip.clone();
        assert_eq!(on1.dev_type, "drbd");
        assert_eq!(on1.params["local-ip"], json!(n1_ip));
        assert_eq!(on1.params["remote-ip"], json!("198.51.100.2"));
        assert_eq!(on2.params["local-ip"], json!("198.51.100.2"));
        assert_eq!(on2.params["remote-ip"], json!(n1_ip));
        assert_eq!(on1.params["local-minor"], json!(0));
        assert_eq!(on2.params["local-minor"], json!(0));
        let id = on1.logical_id.as_array().unwrap().clone();
        assert_eq!(id[2], json!(11000));
        assert_eq!(id[5].as_str().unwrap().len(), 40, "secret");
        assert_eq!(on1.children.len(), 2);
        assert_eq!(on1.children[0].size_mib, 1024);
        assert_eq!(on1.children[1].size_mib, 128);
        assert!(on1.children[0].logical_id[1]
            .as_str()
            .unwrap()
            .ends_with(".disk0_data"));
        assert!(on1.children[1].logical_id[1]
            .as_str()
            .unwrap()
            .ends_with(".disk0_meta"));
        let asm: Vec<(String, Value)> = c.rpc.calls_of(proto::BLOCKDEV_ASSEMBLE);
        assert_eq!(asm[0].0, N2);
        assert_eq!(asm[1].0, N1);
        assert_eq!(
            node_disk(&asm[0].1).params["local-ip"],
            json!("198.51.100.2")
        );

        let cfg = c.config();
        assert_eq!(cfg.cluster.highest_used_port, 11000);
        let (_, inst) = cfg.instance_by_name("d1.example.com").unwrap();
        let sec = crate::cmdlib::instance::secondary_nodes(&cfg, inst);
        assert_eq!(sec.len(), 1);
        assert_eq!(cfg.nodes[&sec[0]].name.as_str(), N2);

        // A second one on the same nodes: the next minors and port.
        c.rpc.clear();
        let (out, log) = c.run(op("d2.example.com", Some("node2"), DiskTemplate::Drbd));
        assert!(matches!(out, OpOutcome::Success(_)), "{log:?}");
        let creates = c.rpc.calls_of(proto::BLOCKDEV_CREATE);
        let d = node_disk(&creates[1].1);
        assert_eq!(d.params["local-minor"], json!(1));
        assert_eq!(d.logical_id[2], json!(11001));
        assert_ne!(d.logical_id[5], id[5], "a new secret");
    }

    #[test]
    fn failed_drbd_creation_is_undone_and_gives_its_port_back() {
        let c = cluster();
        c.rpc.answer(
            proto::BLOCKDEV_CREATE,
            N1,
            Err("drbdsetup: no module".into()),
        );
        let (out, _) = c.run(op("d1.example.com", Some("node2"), DiskTemplate::Drbd));
        let msg = exec_err(out);
        assert!(
            msg.contains("Can't create block device disk/0 on node node1.example.com"),
            "{msg}"
        );
        let removes = c.rpc.calls_of(proto::BLOCKDEV_REMOVE);
        assert_eq!(removes.len(), 1);
        assert_eq!(removes[0].0, N2, "the secondary's half is removed");
        assert_eq!(node_disk(&removes[0].1).params["local-minor"], json!(0));
        let cfg = c.config();
        assert!(cfg.instance_by_name("d1.example.com").is_none());
        assert_eq!(cfg.cluster.tcpudp_port_pool, [11000].into());
        // The port is reused by the next creation.
        c.rpc.answer(proto::BLOCKDEV_CREATE, N1, Ok(Value::Null));
        c.rpc.clear();
        let (out, log) = c.run(op("d1.example.com", Some("node2"), DiskTemplate::Drbd));
        assert!(matches!(out, OpOutcome::Success(_)), "{log:?}");
        assert!(c.config().cluster.tcpudp_port_pool.is_empty());
        let creates = c.rpc.calls_of(proto::BLOCKDEV_CREATE);
        assert_eq!(node_disk(&creates[0].1).logical_id[2], json!(11000));
    }

    #[test]
    fn removing_a_drbd_instance_removes_both_halves_and_frees_the_port() {
        let c = cluster();
        let (out, log) = c.run(op("d1.example.com", Some("node2"), DiskTemplate::Drbd));
        assert!(matches!(out, OpOutcome::Success(_)), "{log:?}");
        c.rpc.clear();
        let (out, log) = c.run(crate::opcodes::OpInstanceRemove {
            instance_name: "d1.example.com".into(),
            ..Default::default()
        });
        assert!(matches!(out, OpOutcome::Success(_)), "{log:?}");
        let removes = c.rpc.calls_of(proto::BLOCKDEV_REMOVE);
        let mut sides: Vec<(String, Value)> = removes
            .iter()
            .map(|(n, a)| (n.clone(), node_disk(a).params["local-ip"].clone()))
            .collect();
        sides.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(sides.len(), 2, "{removes:?}");
        assert_eq!(sides[1], (N2.to_string(), json!("198.51.100.2")));
        assert_ne!(sides[0].1, json!("198.51.100.2"));
        let shut = c.rpc.calls_of(proto::BLOCKDEV_SHUTDOWN);
        assert!(shut.iter().any(|(n, _)| n == N2), "{shut:?}");
        let cfg = c.config();
        assert!(cfg.instance_by_name("d1.example.com").is_none());
        assert_eq!(cfg.cluster.tcpudp_port_pool, [11000].into());
    }

    #[test]
    fn secondary_node_checks() {
        let c = cluster();
        let (kind, msg) = prereq(c.run(op("x.example.com", None, DiskTemplate::Drbd)).0);
        assert_eq!(kind, ErrorKind::Inval);
        assert!(msg.contains("mirror node"), "{msg}");
        let (_, msg) = prereq(
            c.run(op("x.example.com", Some("node1"), DiskTemplate::Drbd))
                .0,
        );
        assert!(msg.contains("cannot be the primary"), "{msg}");
        let mut plain = op("x.example.com", Some("node2"), DiskTemplate::Plain);
        plain.disk_template = Some(DiskTemplate::Plain);
        let (_, msg) = prereq(c.run(plain).0);
        assert!(msg.contains("does not use a secondary node"), "{msg}");
        assert!(c.rpc.calls_of(proto::BLOCKDEV_CREATE).is_empty());
    }
}
