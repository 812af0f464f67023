//! Node LUs: add (and re-add), set-params (`gnt-node modify`), remove and
//! powercycle; the master-candidate pool (Ganeti's `AdjustCandidatePool`,
//! `GetMasterCandidateStats`, `_DecideSelfPromotion`); and the RPC targets
//! other LUs derive from the config.
//!
//! Run by masterd's job workers. Nodes are only ever reached over
//! [`NodeRpc`]; the config only through the [`LuContext`]'s writer, whose
//! replication pushes `config.data` and ssconf after each change.

use super::redist;
use super::{LockNeed, LogicalUnit, LuContext, LuError};
use crate::config::objects::{ConfigData, IpFamily, Node, Uuid};
use crate::config::params::{self, ParamFamily};
use crate::config::ConfigError;
use crate::error::ErrorKind;
use crate::join::{JoinError, TokenStore};
use crate::locking::{Level, LockMode, LockName, NewLocks, Timeout};
use crate::opcodes::{OpNodeAdd, OpNodePowercycle, OpNodeRemove, OpNodeSetParams};
use crate::rpc::proto::{self, FileUpload, VersionInfo};
use crate::rpc::{NodeRpc, Target};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::time::Duration;

/// How long the join protocol may take with a new node.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- targets

/// The RPC target for `node`: its primary IP, and offline nodes marked so
/// the client does not contact them.
pub fn target(node: &Node) -> Target {
    Target {
        name: node.name.as_str().to_string(),
        address: node.primary_ip.clone(),
        offline: node.offline,
    }
}

/// Targets of the nodes `keep` selects, in name order.
pub fn targets_where(cfg: &ConfigData, keep: impl Fn(&Node) -> bool) -> Vec<Target> {
    let mut out: Vec<Target> = cfg.nodes.values().filter(|n| keep(n)).map(target).collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Online master candidates other than the master: who gets `config.data`.
pub fn online_candidates_except_master(cfg: &ConfigData) -> Vec<Target> {
    targets_where(cfg, |n| {
        n.master_candidate && !n.offline && n.uuid != cfg.cluster.master_node
    })
}

/// Online nodes other than the master: who gets ssconf.
pub fn online_nodes_except_master(cfg: &ConfigData) -> Vec<Target> {
    targets_where(cfg, |n| !n.offline && n.uuid != cfg.cluster.master_node)
}

/// The full name of a node given by full or short name (`node2` for
/// `node2.example.com` when unique), like Ganeti's `ExpandNodeName`.
pub fn expand_node_name(cfg: &ConfigData, name: &str) -> Result<String, LuError> {
    if cfg.node_by_name(name).is_some() {
        return Ok(name.to_string());
    }
    let prefix = format!("{name}.");
    let found: Vec<&str> = cfg
        .nodes
        .values()
        .map(|n| n.name.as_str())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    match found.as_slice() {
        [one] => Ok((*one).to_string()),
        _ => Err(LuError::prereq(
            ErrorKind::NoEnt,
            format!("Node '{name}' not known"),
        )),
    }
}

fn node_named<'a>(cfg: &'a ConfigData, name: &str) -> Result<&'a Node, LuError> {
    cfg.node_by_name(name)
        .map(|(_, n)| n)
        .ok_or_else(|| LuError::prereq(ErrorKind::NoEnt, format!("Node '{name}' not known")))
}

/// Names of the instances with `node` as primary, and with it as a
/// secondary (any other disk node).
pub fn instances_on_node(cfg: &ConfigData, node: &Uuid) -> (Vec<String>, Vec<String>) {
    let mut primary = Vec::new();
    let mut secondary = Vec::new();
    for inst in cfg.instances.values() {
        if &inst.primary_node == node {
            primary.push(inst.name.as_str().to_string());
            continue;
        }
        let on_disk = inst
            .disks
            .iter()
            .filter_map(|d| cfg.disks.get(d))
            .any(|d| d.all_nodes().contains(node));
        if on_disk {
            secondary.push(inst.name.as_str().to_string());
        }
    }
    (primary, secondary)
}

// ----------------------------------------------------------- candidate pool

/// Ganeti's `GetMasterCandidateStats`: (candidates now, candidates wanted,
/// nodes that could be candidates), ignoring `exceptions`.
pub fn candidate_stats(cfg: &ConfigData, exceptions: &[Uuid]) -> (u32, u32, u32) {
    let (mut now, mut max) = (0u32, 0u32);
    for n in cfg.nodes.values() {
        if exceptions.contains(&n.uuid) {
            continue;
        }
        if !(n.offline || n.drained) && n.master_capable {
            max += 1;
        }
        if n.master_candidate {
            now += 1;
        }
    }
    (now, max.min(cfg.cluster.candidate_pool_size), max)
}

/// Ganeti's `_DecideSelfPromotion`: whether a node (new, or coming back)
/// should become a candidate, given that it adds one to the possible ones.
pub fn decide_self_promotion(cfg: &ConfigData, exceptions: &[Uuid]) -> bool {
    let (now, should, _) = candidate_stats(cfg, exceptions);
    now < (should + 1).min(cfg.cluster.candidate_pool_size)
}

/// Ganeti's `MaintainCandidatePool`: promotes online, undrained,
/// master-capable nodes (outside `exceptions`) until the pool is as large as
/// wanted; returns the promoted nodes' names. Ganeti picks at random; we
/// pick in name order so the outcome is reproducible.
pub fn maintain_candidate_pool(cfg: &mut ConfigData, exceptions: &[Uuid]) -> Vec<String> {
    let (mut now, want, _) = candidate_stats(cfg, exceptions);
    let mut promoted = Vec::new();
    if now >= want {
        return promoted;
    }
    let mut order: Vec<(String, Uuid)> = cfg
        .nodes
        .values()
        .map(|n| (n.name.as_str().to_string(), n.uuid.clone()))
        .collect();
    order.sort();
    for (name, uuid) in order {
        if now >= want {
            break;
        }
        let Some(n) = cfg.nodes.get_mut(&uuid) else {
            continue;
        };
        if n.master_candidate
            || n.offline
            || n.drained
            || !n.master_capable
            || exceptions.contains(&uuid)
        {
            continue;
        }
        n.master_candidate = true;
        n.serial_no += 1;
        now += 1;
        promoted.push(name);
    }
    if !promoted.is_empty() {
        cfg.cluster.serial_no += 1;
    }
    promoted
}

/// After a pool change: reports promotions, ships the candidates' files to
/// the promoted nodes, and notes an oversized pool (Ganeti's
/// `AdjustCandidatePool` messages).
fn report_pool(ctx: &mut LuContext<'_>, promoted: &[String], exceptions: &[Uuid]) {
    if !promoted.is_empty() {
        ctx.log(format!(
            "Promoted nodes to master candidate role: {}",
            promoted.join(", ")
        ));
        let cfg = ctx.store.snapshot();
        let ancillary = redist::ancillary_files(ctx.store.paths(), &cfg);
        for note in &ancillary.notes {
            ctx.log(note.clone());
        }
        let calls: Vec<(Target, Vec<FileUpload>)> = promoted
            .iter()
            .filter_map(|name| cfg.node_by_name(name))
            .map(|(_, n)| (target(n), ancillary.to_candidates.clone()))
            .collect();
        for w in redist::upload(ctx.rpc, &calls) {
            ctx.log(format!("WARNING: {w}"));
        }
        let started: Vec<Target> = calls.into_iter().map(|(t, _)| t).collect();
        set_confd(ctx, &started, true);
    }
    let cfg = ctx.store.snapshot();
    let (now, max, _) = candidate_stats(&cfg, exceptions);
    if now > max {
        ctx.log(format!(
            "Note: more nodes are candidates ({now}) than desired ({max})"
        ));
    }
}

/// Starts (`start`) or stops `ganeti-confd` on `nodes`, which just became
/// (or stopped being) master candidates; confd runs only on candidates.
/// Ganeti's watcher catches up within minutes; this does it at once.
/// Failures are warnings: the node's config role is what counts.
fn set_confd(ctx: &mut LuContext<'_>, nodes: &[Target], start: bool) {
    let args = json!(proto::DaemonsArgs {
        action: if start { "start" } else { "stop" }.into(),
        daemons: vec!["ganeti-confd".into()],
    });
    for (node, result) in ctx
        .rpc
        .call(proto::DAEMONS, nodes, &args, crate::rpc::DEFAULT_TIMEOUT)
    {
        if let Err(e) = result {
            let what = if start { "start" } else { "stop" };
            ctx.log(format!(
                "WARNING: could not {what} ganeti-confd on node {node}: {e}"
            ));
        }
    }
}

/// Runs the pool maintenance as its own config update (for
/// `gnt-cluster modify --candidate-pool-size`).
pub fn adjust_candidate_pool(ctx: &mut LuContext<'_>) -> Result<(), LuError> {
    let promoted = ctx.update_config(|cfg| Ok(maintain_candidate_pool(cfg, &[])))?;
    report_pool(ctx, &promoted, &[]);
    Ok(())
}

/// Asks `target` for its version; refuses a node speaking another RPC
/// protocol, naming both versions.
fn check_version(rpc: &dyn NodeRpc, target: &Target) -> Result<VersionInfo, LuError> {
    let answer = rpc
        .call_one(
            proto::VERSION,
            target,
            &json!({}),
            crate::rpc::DEFAULT_TIMEOUT,
        )
        .map_err(|e| {
            LuError::prereq(
                ErrorKind::Environ,
                format!(
                    "Can't get version information from node {}: {e}",
                    target.name
                ),
            )
        })?;
    let info: VersionInfo = serde_json::from_value(answer).map_err(|e| {
        LuError::prereq(
            ErrorKind::Environ,
            format!("node {} sent an invalid version answer: {e}", target.name),
        )
    })?;
    if info.protocol != crate::rpc::PROTOCOL_VERSION {
        return Err(LuError::prereq(
            ErrorKind::Environ,
            format!(
                "Version mismatch master version {}, node version {} (node {})",
                crate::rpc::PROTOCOL_VERSION,
                info.protocol,
                target.name
            ),
        ));
    }
    Ok(info)
}

fn update_failed(e: LuError) -> ConfigError {
    ConfigError::Update {
        reason: e.to_string(),
    }
}

// ---------------------------------------------------------------- node add

/// The join step of a node add: [`crate::join::join_node`] in production;
/// tests put a fake in its place.
pub type JoinFn = fn(
    &dyn NodeRpc,
    &Target,
    &TokenStore,
    &str,
    Vec<FileUpload>,
    Duration,
) -> Result<String, JoinError>;

/// `OP_NODE_ADD` (`gnt-node add`), Ganeti 3.0's `LUNodeAdd` without SSH:
/// a new node joins through the token protocol, a re-added one must
/// already hold the cluster certificate.
pub struct LuNodeAdd {
    op: OpNodeAdd,
    join: JoinFn,
}

/// What a node add decided before touching anything.
struct AddPlan {
    name: String,
    primary_ip: String,
    secondary_ip: String,
    group: Uuid,
    existing: Option<Node>,
    master_capable: bool,
    vm_capable: bool,
    master_candidate: bool,
}

impl LuNodeAdd {
    /// The LU for `op`, joining new nodes with [`crate::join::join_node`].
    pub fn new(op: OpNodeAdd) -> Self {
        Self::with_join(op, crate::join::join_node)
    }

    /// The LU for `op` with another join step.
    pub fn with_join(op: OpNodeAdd, join: JoinFn) -> Self {
        LuNodeAdd { op, join }
    }

    /// The node's primary address: the one given, else the name resolved
    /// in the cluster's family; a node of the other family is refused
    /// naming its address.
    fn primary_ip(&self, paths: &crate::paths::Paths, family: IpFamily) -> Result<IpAddr, LuError> {
        let name = &self.op.node_name;
        let wrong_family = |ip: IpAddr| {
            LuError::prereq(
                ErrorKind::Inval,
                format!(
                    "Node {name} has primary address {ip} (IPv{}), but the cluster's primary \
                     IP family is IPv{}",
                    if ip.is_ipv4() { 4 } else { 6 },
                    family.version()
                ),
            )
        };
        if let Some(given) = &self.op.primary_ip {
            let ip: IpAddr = given.parse().map_err(|_| {
                LuError::prereq(
                    ErrorKind::Inval,
                    format!("Primary IP ({given}) of node {name} is not a valid IP address"),
                )
            })?;
            if !crate::net::hostname::family_matches(family, &ip) {
                return Err(wrong_family(ip));
            }
            return Ok(ip);
        }
        match crate::net::hostname::resolve(paths, name, family) {
            Ok(h) => Ok(h.ip),
            Err(e) => {
                let other = match family {
                    IpFamily::V4 => IpFamily::V6,
                    IpFamily::V6 => IpFamily::V4,
                };
                match crate::net::hostname::resolve(paths, name, other) {
                    Ok(h) => Err(wrong_family(h.ip)),
                    Err(_) => Err(LuError::prereq(
                        ErrorKind::Resolver,
                        crate::error::chain(&e),
                    )),
                }
            }
        }
    }

    fn plan(&self, cfg: &ConfigData, paths: &crate::paths::Paths) -> Result<AddPlan, LuError> {
        let op = &self.op;
        let name = op.node_name.clone();
        let family = cfg.cluster.primary_ip_family;
        let master = cfg.master_node().ok_or_else(|| {
            LuError::prereq(ErrorKind::State, "the configuration names no master node")
        })?;
        if op.readd && name == master.name.as_str() {
            return Err(LuError::prereq(
                ErrorKind::State,
                "Cannot readd the master node",
            ));
        }
        if op.readd && op.group.is_some() {
            return Err(LuError::prereq(
                ErrorKind::Inval,
                "Cannot pass a node group when a node is being readded",
            ));
        }
        let primary_ip = self.primary_ip(paths, family)?.to_string();
        let secondary_ip = match &op.secondary_ip {
            Some(s) => s.clone(),
            None if family == IpFamily::V6 => {
                return Err(LuError::prereq(
                    ErrorKind::Inval,
                    format!(
                        "When using a IPv6 primary address, a valid IPv4 address must be given \
                         as secondary (node {name}, primary {primary_ip})"
                    ),
                ))
            }
            None => primary_ip.clone(),
        };
        if secondary_ip.parse::<std::net::Ipv4Addr>().is_err() {
            return Err(LuError::prereq(
                ErrorKind::Inval,
                format!("Secondary IP ({secondary_ip}) needs to be a valid IPv4 address"),
            ));
        }
        let existing = cfg.node_by_name(&name).map(|(_, n)| n.clone());
        match (&existing, op.readd) {
            (Some(_), false) => {
                return Err(LuError::prereq(
                    ErrorKind::Exists,
                    format!("Node {name} is already in the configuration"),
                ))
            }
            (None, true) => {
                return Err(LuError::prereq(
                    ErrorKind::NoEnt,
                    format!("Node {name} is not in the configuration"),
                ))
            }
            _ => {}
        }
        for other in cfg.nodes.values() {
            if other.name.as_str() == name {
                if other.secondary_ip != secondary_ip {
                    return Err(LuError::prereq(
                        ErrorKind::Inval,
                        "Readded node doesn't have the same IP address configuration as before",
                    ));
                }
                continue;
            }
            let mine = [&primary_ip, &secondary_ip];
            if mine.contains(&&other.primary_ip) || mine.contains(&&other.secondary_ip) {
                return Err(LuError::prereq(
                    ErrorKind::NotUnique,
                    format!(
                        "New node ip address(es) conflict with existing node {}",
                        other.name
                    ),
                ));
            }
        }
        let master_capable = op
            .master_capable
            .unwrap_or(existing.as_ref().is_none_or(|n| n.master_capable));
        let vm_capable = op
            .vm_capable
            .unwrap_or(existing.as_ref().is_none_or(|n| n.vm_capable));
        if let Some(n) = &existing {
            let (pri, sec) = instances_on_node(cfg, &n.uuid);
            let holds_instances = !(pri.is_empty() && sec.is_empty());
            if !vm_capable && holds_instances {
                return Err(LuError::prereq(
                    ErrorKind::State,
                    format!(
                        "Node {name} being re-added with vm_capable flag set to false, but it \
                         already holds instances"
                    ),
                ));
            }
        }
        let master_single = master.secondary_ip == master.primary_ip;
        let new_single = secondary_ip == primary_ip;
        if master_single != new_single {
            let msg = if master_single {
                "The master has no secondary ip but the new node has one"
            } else {
                "The master has a secondary ip but the new node doesn't have one"
            };
            return Err(LuError::prereq(ErrorKind::Inval, msg));
        }
        let exceptions: Vec<Uuid> = existing.iter().map(|n| n.uuid.clone()).collect();
        let master_candidate = master_capable && decide_self_promotion(cfg, &exceptions);
        let group = match &existing {
            Some(n) => n.group.clone(),
            None => lookup_group(cfg, op.group.as_deref())?,
        };
        if let Some(nd) = &op.ndparams {
            let map = nd.clone().into_iter().collect();
            params::check_params(ParamFamily::Nd, None, &map).map_err(|e| {
                LuError::prereq(
                    ErrorKind::Inval,
                    format!("ndparams of node {name}: {}", crate::error::chain(&e)),
                )
            })?;
        }
        Ok(AddPlan {
            name,
            primary_ip,
            secondary_ip,
            group,
            existing,
            master_capable,
            vm_capable,
            master_candidate,
        })
    }
}

/// Ganeti's `LookupNodeGroup`: the named group (by name or UUID), or the
/// only group when none is named.
pub fn lookup_group(cfg: &ConfigData, name: Option<&str>) -> Result<Uuid, LuError> {
    match name {
        Some(g) => cfg
            .group_by_name(g)
            .map(|(u, _)| u.clone())
            .or_else(|| cfg.nodegroups.keys().find(|u| u.as_str() == g).cloned())
            .ok_or_else(|| {
                LuError::prereq(ErrorKind::NoEnt, format!("Node group '{g}' not found"))
            }),
        None => {
            let mut it = cfg.nodegroups.keys();
            match (it.next(), it.next()) {
                (Some(only), None) => Ok(only.clone()),
                _ => Err(LuError::prereq(
                    ErrorKind::Inval,
                    "More than one node group exists. Target group must be specified explicitly.",
                )),
            }
        }
    }
}

impl LogicalUnit for LuNodeAdd {
    fn bgl_mode(&self) -> LockMode {
        LockMode::Exclusive
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), LuError> {
        // Name resolution needs the paths; everything is checked at the
        // start of exec, before anything changes.
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let cfg = ctx.store.snapshot();
        let paths = ctx.store.paths().clone();
        let plan = self.plan(&cfg, &paths)?;
        let tgt = Target::new(plan.name.clone(), plan.primary_ip.clone());
        let ancillary = redist::ancillary_files(&paths, &cfg);

        if plan.existing.is_none() {
            let mut files = redist::join_files(&paths)?;
            if plan.master_candidate {
                files.extend(ancillary.to_candidates.iter().cloned());
            }
            ctx.log(format!("Joining node {} to the cluster", plan.name));
            (self.join)(
                ctx.rpc,
                &tgt,
                &TokenStore::new(&paths),
                &cfg.cluster.cluster_name,
                files,
                JOIN_TIMEOUT,
            )
            .map_err(|e| {
                LuError::prereq(
                    ErrorKind::Environ,
                    format!(
                        "Joining node {} failed: {}",
                        plan.name,
                        crate::error::chain(&e)
                    ),
                )
            })?;
        }
        check_version(ctx.rpc, &tgt)?;

        let ndparams: Option<crate::config::objects::ParamMap> =
            self.op.ndparams.clone().map(|d| d.into_iter().collect());
        let name = plan.name.clone();
        let added = ctx.update_config(|c| {
            let now = crate::config::store::now_secs();
            match &plan.existing {
                Some(old) => {
                    let n = c
                        .nodes
                        .get_mut(&old.uuid)
                        .ok_or_else(|| ConfigError::Update {
                            reason: format!("node {name} vanished from the configuration"),
                        })?;
                    n.primary_ip = plan.primary_ip.clone();
                    n.offline = false;
                    n.drained = false;
                    n.master_candidate = plan.master_candidate;
                    n.master_capable = plan.master_capable;
                    n.vm_capable = plan.vm_capable;
                    if let Some(nd) = &ndparams {
                        n.ndparams = nd.clone();
                    }
                    n.serial_no += 1;
                    n.mtime = now;
                    Ok(n.clone())
                }
                None => {
                    let uuid = Uuid::generate();
                    let node = Node {
                        name: name.clone().into(),
                        primary_ip: plan.primary_ip.clone(),
                        secondary_ip: plan.secondary_ip.clone(),
                        serial_no: 1,
                        master_candidate: plan.master_candidate,
                        group: plan.group.clone(),
                        master_capable: plan.master_capable,
                        vm_capable: plan.vm_capable,
                        ndparams: ndparams.clone().unwrap_or_default(),
                        ctime: now,
                        mtime: now,
                        uuid: uuid.clone(),
                        ..Node::default()
                    };
                    c.nodes.insert(uuid, node.clone());
                    c.cluster.serial_no += 1;
                    Ok(node)
                }
            }
        })?;

        if plan.existing.is_none() {
            let lock = [LockName::from(name.as_str())];
            for level in [Level::Node, Level::NodeRes] {
                if let Err(e) = ctx.locks.add(
                    ctx.owner,
                    level,
                    &lock,
                    NewLocks::Free,
                    Timeout::Blocking,
                    ctx.priority,
                ) {
                    log::error!("adding {level} lock for new node {name}: {e}");
                    ctx.log(format!(
                        "WARNING: could not add the {level} lock of {name}: {e}"
                    ));
                }
            }
        }

        for note in &ancillary.notes {
            ctx.log(note.clone());
        }
        let files = ancillary.for_node(&added);
        if !files.is_empty() {
            for w in redist::upload(ctx.rpc, &[(target(&added), files)]) {
                ctx.log(format!("WARNING: {w}"));
            }
        }
        if added.master_candidate {
            set_confd(ctx, &[target(&added)], true);
        }
        if plan.existing.is_some() {
            ctx.log(format!("Readded node {name}"));
        }
        Ok(Value::Null)
    }
}

// --------------------------------------------------------- node set-params

/// A node's role: Ganeti's `_ROLE_*` (at most one flag set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Candidate,
    Drained,
    Offline,
    Regular,
}

impl Role {
    fn of(n: &Node) -> Role {
        if n.master_candidate {
            Role::Candidate
        } else if n.drained {
            Role::Drained
        } else if n.offline {
            Role::Offline
        } else {
            Role::Regular
        }
    }

    /// (master_candidate, drained, offline).
    fn flags(self) -> [bool; 3] {
        [
            self == Role::Candidate,
            self == Role::Drained,
            self == Role::Offline,
        ]
    }
}

const FLAG_NAMES: [&str; 3] = ["master_candidate", "drained", "offline"];

/// `OP_NODE_SET_PARAMS` (`gnt-node modify`): roles, capabilities,
/// secondary IP and ndparams, with Ganeti 3.0's `LUNodeSetParams` rules.
pub struct LuNodeSetParams {
    op: OpNodeSetParams,
    notes: Vec<String>,
    old_role: Role,
    new_role: Role,
    new_ndparams: Option<crate::config::objects::ParamMap>,
}

impl LuNodeSetParams {
    /// The LU for `op`.
    pub fn new(op: OpNodeSetParams) -> Self {
        LuNodeSetParams {
            op,
            notes: Vec::new(),
            old_role: Role::Regular,
            new_role: Role::Regular,
            new_ndparams: None,
        }
    }

    fn might_demote(&self) -> bool {
        self.op.master_candidate == Some(false)
            || self.op.offline == Some(true)
            || self.op.drained == Some(true)
            || self.op.master_capable == Some(false)
    }
}

impl LogicalUnit for LuNodeSetParams {
    fn bgl_mode(&self) -> LockMode {
        // Promotions may touch any node; Ganeti locks all nodes then.
        LockMode::Exclusive
    }

    fn expand_names(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        self.op.node_name = expand_node_name(cfg, &self.op.node_name)?;
        Ok(())
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        let op = &mut self.op;
        let node = node_named(cfg, &op.node_name)?.clone();
        let is_master = node.uuid == cfg.cluster.master_node;
        let any = op.offline.is_some()
            || op.master_candidate.is_some()
            || op.drained.is_some()
            || op.master_capable.is_some()
            || op.vm_capable.is_some()
            || op.secondary_ip.is_some()
            || op.ndparams.is_some()
            || op.hv_state.is_some()
            || op.disk_state.is_some()
            || op.powered.is_some();
        if !any {
            return Err(LuError::prereq(
                ErrorKind::Inval,
                "Please pass at least one modification",
            ));
        }
        let set = [op.master_candidate, op.drained, op.offline]
            .iter()
            .filter(|f| **f == Some(true))
            .count();
        if set > 1 {
            return Err(LuError::prereq(
                ErrorKind::Inval,
                "Can't set the node into more than one state at the same time",
            ));
        }
        if op.hv_state.is_some() || op.disk_state.is_some() {
            return Err(LuError::prereq(
                ErrorKind::Inval,
                "changing hv_state or disk_state is not supported by ganeti-rs yet",
            ));
        }
        if op.powered.is_some() {
            return Err(LuError::prereq(
                ErrorKind::State,
                format!(
                    "Unable to change powered state for node {} as it does not support \
                     out-of-band handling",
                    node.name
                ),
            ));
        }
        if let Some(sip) = &op.secondary_ip {
            if sip.parse::<std::net::Ipv4Addr>().is_err() {
                return Err(LuError::prereq(
                    ErrorKind::Inval,
                    format!("Secondary IP ({sip}) needs to be a valid IPv4 address"),
                ));
            }
            let master_single = cfg
                .master_node()
                .is_some_and(|m| m.primary_ip == m.secondary_ip);
            if master_single && *sip != node.primary_ip {
                return Err(LuError::prereq(
                    ErrorKind::Inval,
                    "Cannot change the secondary ip on a single-homed cluster",
                ));
            }
            if let Some(other) = cfg
                .nodes
                .values()
                .find(|o| o.uuid != node.uuid && (o.primary_ip == *sip || o.secondary_ip == *sip))
            {
                return Err(LuError::prereq(
                    ErrorKind::NotUnique,
                    format!("Secondary IP {sip} is already used by node {}", other.name),
                ));
            }
        }
        let flags_change =
            op.master_candidate.is_some() || op.drained.is_some() || op.offline.is_some();
        if flags_change && is_master {
            return Err(LuError::prereq(
                ErrorKind::Inval,
                "The master role can be changed only via master-failover",
            ));
        }
        if op.master_candidate == Some(true) && !node.master_capable {
            return Err(LuError::prereq(
                ErrorKind::State,
                format!(
                    "Node {} is not master capable, cannot make it a master candidate",
                    node.name
                ),
            ));
        }
        if op.vm_capable == Some(false) {
            let (pri, sec) = instances_on_node(cfg, &node.uuid);
            if !(pri.is_empty() && sec.is_empty()) {
                return Err(LuError::prereq(
                    ErrorKind::State,
                    format!(
                        "Node {} hosts instances, cannot unset the vm_capable flag",
                        node.name
                    ),
                ));
            }
        }
        let might_demote = self.might_demote();
        let op = &mut self.op;
        if node.master_candidate && might_demote && !op.auto_promote {
            let (remaining, should, _) = candidate_stats(cfg, std::slice::from_ref(&node.uuid));
            if remaining < should {
                return Err(LuError::prereq(
                    ErrorKind::State,
                    "Not enough master candidates, please pass auto promote option to allow \
                     promotion (--auto-promote or RAPI auto_promote=True)",
                ));
            }
        }
        let current = [node.master_candidate, node.drained, node.offline];
        for (i, flag) in [&mut op.master_candidate, &mut op.drained, &mut op.offline]
            .into_iter()
            .enumerate()
        {
            if *flag == Some(false) && !current[i] {
                self.notes.push(format!(
                    "Ignoring request to unset flag {}, already unset",
                    FLAG_NAMES[i]
                ));
                *flag = None;
            }
        }
        let coming_back = op.drained == Some(false)
            || op.offline == Some(false)
            || (op.master_capable == Some(true) && !node.master_capable);
        if coming_back && decide_self_promotion(cfg, &[]) {
            op.master_candidate = Some(true);
            self.notes
                .push("Auto-promoting node to master candidate".into());
        }
        if op.master_capable == Some(false) && node.master_candidate {
            if is_master {
                return Err(LuError::prereq(
                    ErrorKind::State,
                    "Master must remain master capable",
                ));
            }
            self.notes.push("Demoting from master candidate".into());
            op.master_candidate = Some(false);
        }
        self.old_role = Role::of(&node);
        self.new_role = if op.master_candidate == Some(true) {
            Role::Candidate
        } else if op.drained == Some(true) {
            Role::Drained
        } else if op.offline == Some(true) {
            Role::Offline
        } else if [op.master_candidate, op.drained, op.offline].contains(&Some(false)) {
            Role::Regular
        } else {
            self.old_role
        };
        if let Some(nd) = &op.ndparams {
            let mut merged = node.ndparams.clone();
            for (k, v) in nd {
                if v.is_null() {
                    merged.remove(k);
                } else {
                    merged.insert(k.clone(), v.clone());
                }
            }
            params::check_params(ParamFamily::Nd, None, &merged).map_err(|e| {
                LuError::prereq(
                    ErrorKind::Inval,
                    format!(
                        "ndparams of node {}: {}",
                        node.name,
                        crate::error::chain(&e)
                    ),
                )
            })?;
            self.new_ndparams = Some(merged);
        }
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        for note in std::mem::take(&mut self.notes) {
            ctx.log(note);
        }
        let before = ctx.store.snapshot();
        let old = node_named(&before, &self.op.node_name)?.clone();
        if self.old_role == Role::Offline && self.new_role != Role::Offline {
            let tgt = Target::new(old.name.as_str(), old.primary_ip.clone());
            check_version(ctx.rpc, &tgt).map_err(|e| {
                LuError::prereq(
                    ErrorKind::State,
                    format!(
                        "Node {} is being de-offlined but fails to report its version: {e}",
                        old.name
                    ),
                )
            })?;
        }
        let op = self.op.clone();
        let (old_role, new_role) = (self.old_role, self.new_role);
        let ndparams = self.new_ndparams.clone();
        let auto_promote = op.auto_promote && self.might_demote();
        let uuid = old.uuid.clone();
        let (result, promoted) = ctx.update_config(|c| {
            let mut result: Vec<(String, String)> = Vec::new();
            let n = c.nodes.get_mut(&uuid).ok_or_else(|| ConfigError::Update {
                reason: format!("node {} vanished from the configuration", op.node_name),
            })?;
            if let Some(nd) = &ndparams {
                n.ndparams = nd.clone();
            }
            for (attr, val, slot) in [
                ("master_capable", op.master_capable, &mut n.master_capable),
                ("vm_capable", op.vm_capable, &mut n.vm_capable),
            ] {
                if let Some(v) = val {
                    *slot = v;
                    result.push((attr.into(), py_bool(v).into()));
                }
            }
            if let Some(sip) = &op.secondary_ip {
                n.secondary_ip = sip.clone();
                result.push(("secondary_ip".into(), sip.clone()));
            }
            if new_role != old_role {
                let (of, nf) = (old_role.flags(), new_role.flags());
                for i in 0..3 {
                    if of[i] != nf[i] {
                        result.push((FLAG_NAMES[i].into(), py_bool(nf[i]).into()));
                    }
                }
                n.master_candidate = nf[0];
                n.drained = nf[1];
                n.offline = nf[2];
                if old_role == Role::Candidate {
                    c.cluster.candidate_certs.remove(uuid.as_str());
                }
            }
            if let Some(n) = c.nodes.get_mut(&uuid) {
                n.serial_no += 1;
                n.mtime = crate::config::store::now_secs();
            }
            let promoted = if auto_promote && new_role != Role::Candidate {
                maintain_candidate_pool(c, std::slice::from_ref(&uuid))
            } else {
                Vec::new()
            };
            Ok((result, promoted))
        })?;

        // A demoted candidate must not keep a stale copy of the config
        // (Ganeti's node_demote_from_mc); an offlined one is not contacted.
        if old_role == Role::Candidate && new_role != Role::Candidate && new_role != Role::Offline {
            let args = serde_json::to_value(proto::RemoveFilesArgs {
                paths: vec![redist::CONFIG_DATA.to_string()],
            })
            .map_err(|e| LuError::Exec(format!("encoding remove_files: {e}")))?;
            let mut tgt = target(&old);
            tgt.offline = false;
            if let Err(e) = ctx.rpc.call_one(
                proto::REMOVE_FILES,
                &tgt,
                &args,
                crate::rpc::DEFAULT_TIMEOUT,
            ) {
                ctx.log(format!("WARNING: Node failed to demote itself: {e}"));
            }
            set_confd(ctx, &[tgt], false);
        }
        let mut newly: Vec<String> = promoted;
        if new_role == Role::Candidate && old_role != Role::Candidate {
            newly.insert(0, old.name.as_str().to_string());
        }
        report_pool(ctx, &newly, &[]);
        Ok(Value::Array(
            result.into_iter().map(|(k, v)| json!([k, v])).collect(),
        ))
    }
}

/// Python's `str()` of a bool, as Ganeti's results carry it.
fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

// ------------------------------------------------------------- node remove

/// `OP_NODE_REMOVE` (`gnt-node remove`): Ganeti 3.0's `LUNodeRemove`.
pub struct LuNodeRemove {
    op: OpNodeRemove,
    node: Option<Node>,
}

impl LuNodeRemove {
    /// The LU for `op`.
    pub fn new(op: OpNodeRemove) -> Self {
        LuNodeRemove { op, node: None }
    }
}

impl LogicalUnit for LuNodeRemove {
    fn bgl_mode(&self) -> LockMode {
        LockMode::Exclusive
    }

    fn expand_names(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        self.op.node_name = expand_node_name(cfg, &self.op.node_name)?;
        Ok(())
    }

    fn declare_locks(&self, _cfg: &ConfigData) -> Vec<LockNeed> {
        [Level::Node, Level::NodeRes]
            .into_iter()
            .map(|level| LockNeed {
                level,
                names: vec![self.op.node_name.clone()],
                mode: LockMode::Exclusive,
            })
            .collect()
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        let node = node_named(cfg, &self.op.node_name)?;
        if node.uuid == cfg.cluster.master_node {
            return Err(LuError::prereq(
                ErrorKind::Inval,
                "Node is the master node, failover to another node is required",
            ));
        }
        let (pri, sec) = instances_on_node(cfg, &node.uuid);
        if let Some(inst) = pri.first().or(sec.first()) {
            return Err(LuError::prereq(
                ErrorKind::Inval,
                format!("Instance {inst} is still running on the node, please remove first"),
            ));
        }
        self.node = Some(node.clone());
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let node = self
            .node
            .clone()
            .ok_or_else(|| LuError::Exec("node remove ran without its prerequisites".into()))?;
        let uuid = node.uuid.clone();
        let promoted = ctx.update_config(|c| {
            if c.nodes.remove(&uuid).is_none() {
                return Err(update_failed(LuError::prereq(
                    ErrorKind::NoEnt,
                    format!("Node '{}' not known", node.name),
                )));
            }
            c.cluster.candidate_certs.remove(uuid.as_str());
            c.cluster.serial_no += 1;
            Ok(maintain_candidate_pool(c, &[]))
        })?;
        report_pool(ctx, &promoted, &[]);
        let lock = [LockName::from(node.name.as_str())];
        for level in [Level::NodeRes, Level::Node] {
            if let Err(e) = ctx.locks.remove(ctx.owner, level, &lock) {
                log::error!("removing {level} lock of node {}: {e}", node.name);
            }
        }
        let mut tgt = target(&node);
        tgt.offline = false;
        if let Err(e) = ctx.rpc.call_one(
            proto::LEAVE_CLUSTER,
            &tgt,
            &json!({}),
            crate::rpc::DEFAULT_TIMEOUT,
        ) {
            ctx.log(format!(
                "WARNING: Errors encountered on the remote node while leaving the cluster: {e}"
            ));
        }
        Ok(Value::Null)
    }
}

// --------------------------------------------------------- node powercycle

/// `OP_NODE_POWERCYCLE` (`gnt-node powercycle`).
pub struct LuNodePowercycle {
    op: OpNodePowercycle,
}

impl LuNodePowercycle {
    /// The LU for `op`.
    pub fn new(op: OpNodePowercycle) -> Self {
        LuNodePowercycle { op }
    }
}

impl LogicalUnit for LuNodePowercycle {
    fn expand_names(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        self.op.node_name = expand_node_name(cfg, &self.op.node_name)?;
        Ok(())
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        let node = node_named(cfg, &self.op.node_name)?;
        if node.uuid == cfg.cluster.master_node && !self.op.force {
            return Err(LuError::prereq(
                ErrorKind::Inval,
                "The node is the master and the force parameter was not set",
            ));
        }
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let cfg = ctx.store.snapshot();
        let node = node_named(&cfg, &self.op.node_name)?;
        let hypervisor = cfg
            .cluster
            .enabled_hypervisors
            .first()
            .cloned()
            .unwrap_or_default();
        let args = serde_json::to_value(proto::PowercycleArgs { hypervisor })
            .map_err(|e| LuError::Exec(format!("encoding powercycle: {e}")))?;
        let mut tgt = target(node);
        // Ganeti powercycles offline nodes too: that is often why.
        tgt.offline = false;
        match ctx
            .rpc
            .call_one(proto::POWERCYCLE, &tgt, &args, crate::rpc::DEFAULT_TIMEOUT)
        {
            Ok(v) => Ok(v),
            Err(e) => Err(LuError::Exec(format!("Failed to schedule the reboot: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdlib::fake_rpc::{fake_join, prereq, TestCluster};
    use crate::cmdlib::OpOutcome;
    use crate::opcodes::{OpClusterSetParams, OpCode};

    fn cluster_files(c: &TestCluster) {
        c.write_file(redist::SERVER_PEM, b"PEM", 0o600);
        c.write_file(redist::HMAC_KEY, b"HMAC", 0o600);
        c.write_file(redist::CLUSTER_DOMAIN_SECRET, b"CDS", 0o400);
    }

    fn add_op(name: &str) -> OpNodeAdd {
        OpNodeAdd {
            node_name: name.into(),
            ..Default::default()
        }
    }

    fn add(c: &TestCluster, op: OpNodeAdd) -> (OpOutcome, Vec<String>) {
        let lu = Box::new(LuNodeAdd::with_join(op.clone(), fake_join));
        c.run_lu(&OpCode::from(op), lu)
    }

    fn nodes_called(c: &TestCluster, procedure: &str) -> Vec<String> {
        let mut v: Vec<String> = c
            .rpc
            .calls_of(procedure)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn add_new_node_joins_and_replicates() {
        let c = TestCluster::new("add", 3, 0);
        cluster_files(&c);
        c.add_host("192.0.2.14", "node4.example.com");
        let serial = c.config().serial_no;
        let (out, log) = add(&c, add_op("node4.example.com"));
        assert_eq!(out, OpOutcome::Success(Value::Null), "{log:?}");
        let cfg = c.config();
        assert_eq!(cfg.serial_no, serial + 1);
        let (_, n) = cfg.node_by_name("node4.example.com").unwrap();
        assert_eq!(n.primary_ip, "192.0.2.14");
        assert_eq!(n.secondary_ip, "192.0.2.14");
        assert!(n.master_candidate && n.master_capable && n.vm_capable);
        // The join carried the secrets, 0600.
        let joins = c.rpc.calls_of(proto::JOIN_COMPLETE);
        assert_eq!(joins.len(), 1);
        let files = &joins[0].1["files"];
        assert_eq!(files[0]["path"], redist::SERVER_PEM);
        assert!(files.as_array().unwrap().iter().all(|f| f["mode"] == 0o600));
        assert_eq!(nodes_called(&c, proto::VERSION), vec!["node4.example.com"]);
        // Replication: config.data to the other candidates incl. the new
        // one, ssconf to everybody but the master.
        let others = vec![
            "node2.example.com".to_string(),
            "node3.example.com".into(),
            "node4.example.com".into(),
        ];
        assert_eq!(nodes_called(&c, proto::WRITE_SSCONF), others);
        let config_uploads: Vec<String> = c
            .rpc
            .calls_of(proto::UPLOAD_FILES)
            .into_iter()
            .filter(|(_, a)| {
                crate::cmdlib::fake_rpc::uploaded_paths(a)
                    .contains(&redist::CONFIG_DATA.to_string())
            })
            .map(|(n, _)| n)
            .collect();
        assert_eq!(config_uploads, others);
        // Its locks exist now.
        let locks = c.processor.locks();
        assert!(locks
            .set(Level::Node)
            .names()
            .contains(&LockName::from("node4.example.com")));
        assert!(locks
            .set(Level::NodeRes)
            .names()
            .contains(&LockName::from("node4.example.com")));
        // And a second add of the same node is refused.
        let (kind, msg) = prereq(add(&c, add_op("node4.example.com")).0);
        assert_eq!(kind, ErrorKind::Exists);
        assert!(msg.contains("node4.example.com is already in the configuration"));
    }

    #[test]
    fn readd_keeps_uuid_and_needs_no_join() {
        let c = TestCluster::new("readd", 3, 0);
        cluster_files(&c);
        let uuid = c
            .config()
            .node_by_name("node2.example.com")
            .unwrap()
            .0
            .clone();
        let ip = c.config().nodes[&uuid].primary_ip.clone();
        c.add_host(&ip, "node2.example.com");
        let op = OpNodeAdd {
            readd: true,
            ..add_op("node2.example.com")
        };
        let (out, log) = add(&c, op.clone());
        assert_eq!(out, OpOutcome::Success(Value::Null), "{log:?}");
        assert!(c.rpc.calls_of(proto::JOIN_COMPLETE).is_empty());
        assert_eq!(nodes_called(&c, proto::VERSION), vec!["node2.example.com"]);
        assert_eq!(
            c.config().node_by_name("node2.example.com").unwrap().0,
            &uuid
        );
        // A readd must not name a group.
        let op = OpNodeAdd {
            group: Some("default".into()),
            ..op
        };
        let (kind, _) = prereq(add(&c, op).0);
        assert_eq!(kind, ErrorKind::Inval);
        // A readd of an unknown node is refused.
        c.add_host("192.0.2.15", "node5.example.com");
        let (kind, _) = prereq(
            add(
                &c,
                OpNodeAdd {
                    readd: true,
                    ..add_op("node5.example.com")
                },
            )
            .0,
        );
        assert_eq!(kind, ErrorKind::NoEnt);
        // A node speaking another protocol is refused, naming the versions.
        c.rpc.answer(
            proto::VERSION,
            "node2.example.com",
            Ok(serde_json::json!({"protocol": 99, "software": "x", "name": "node2.example.com", "configured": true})),
        );
        let (_, msg) = prereq(
            add(
                &c,
                OpNodeAdd {
                    readd: true,
                    ..add_op("node2.example.com")
                },
            )
            .0,
        );
        assert!(
            msg.contains("99") && msg.contains("node2.example.com"),
            "{msg}"
        );
    }

    #[test]
    fn add_refuses_wrong_family_and_unknown_group() {
        let c = TestCluster::new("family", 2, 0);
        cluster_files(&c);
        c.add_host("2001:db8::4", "node4.example.com");
        let (_, msg) = prereq(add(&c, add_op("node4.example.com")).0);
        assert!(
            msg.contains("node4.example.com")
                && msg.contains("2001:db8::4")
                && msg.contains("IPv4"),
            "{msg}"
        );
        c.add_host("192.0.2.14", "node5.example.com");
        let op = OpNodeAdd {
            group: Some("nope".into()),
            ..add_op("node5.example.com")
        };
        let (kind, msg) = prereq(add(&c, op).0);
        assert_eq!(kind, ErrorKind::NoEnt);
        assert!(msg.contains("'nope'"), "{msg}");
        // A dual-homed node in a single-homed cluster.
        let op = OpNodeAdd {
            secondary_ip: Some("198.51.100.5".into()),
            ..add_op("node5.example.com")
        };
        let (_, msg) = prereq(add(&c, op).0);
        assert!(msg.contains("The master has no secondary ip"), "{msg}");
        assert!(c.rpc.calls().is_empty(), "no node was contacted");
    }

    #[test]
    fn ipv6_cluster_needs_ipv4_secondary() {
        let mut cfg = crate::config::test_support::generated(1, 0);
        cfg.cluster.primary_ip_family = IpFamily::V6;
        for n in cfg.nodes.values_mut() {
            n.primary_ip = "2001:db8::1".into();
            n.secondary_ip = "192.0.2.1".into();
        }
        let c = TestCluster::with_config("v6", cfg);
        cluster_files(&c);
        c.add_host("2001:db8::4", "node4.example.com");
        let (_, msg) = prereq(add(&c, add_op("node4.example.com")).0);
        assert!(
            msg.contains("IPv4 address must be given as secondary"),
            "{msg}"
        );
        let op = OpNodeAdd {
            secondary_ip: Some("192.0.2.4".into()),
            ..add_op("node4.example.com")
        };
        let (out, log) = add(&c, op);
        assert_eq!(out, OpOutcome::Success(Value::Null), "{log:?}");
        let cfg = c.config();
        let (_, n) = cfg.node_by_name("node4.example.com").unwrap();
        assert_eq!(
            (n.primary_ip.as_str(), n.secondary_ip.as_str()),
            ("2001:db8::4", "192.0.2.4")
        );
        // An IPv4-only node is refused in the IPv6 cluster.
        c.add_host("192.0.2.5", "node5.example.com");
        let (_, msg) = prereq(add(&c, add_op("node5.example.com")).0);
        assert!(msg.contains("192.0.2.5") && msg.contains("IPv6"), "{msg}");
    }

    #[test]
    fn failed_join_leaves_config_unchanged() {
        let c = TestCluster::new("joinfail", 2, 0);
        cluster_files(&c);
        c.add_host("192.0.2.14", "node4.example.com");
        c.rpc.kill("node4.example.com");
        let before = c.config();
        let op = add_op("node4.example.com");
        let (out, _) = c.run_lu(&OpCode::from(op.clone()), Box::new(LuNodeAdd::new(op)));
        let (kind, msg) = prereq(out);
        assert_eq!(kind, ErrorKind::Environ);
        assert!(msg.contains("node4.example.com"), "{msg}");
        assert_eq!(c.config(), before);
        assert!(c.rpc.calls_of(proto::WRITE_SSCONF).is_empty());
        assert!(!c
            .processor
            .locks()
            .set(Level::Node)
            .names()
            .contains(&LockName::from("node4.example.com")));
    }

    /// Four nodes, pool size 3: node1-3 candidates, node4 not.
    fn pool_cluster(tag: &str, instances: usize) -> TestCluster {
        let mut cfg = crate::config::test_support::generated(4, instances);
        cfg.cluster.candidate_pool_size = 3;
        for n in cfg.nodes.values_mut() {
            n.master_candidate = n.name.as_str() != "node4.example.com";
        }
        let c = TestCluster::with_config(tag, cfg);
        cluster_files(&c);
        c.write_file(redist::RAPI_PEM, b"RAPI", 0o440);
        c
    }

    fn is_candidate(c: &TestCluster, name: &str) -> bool {
        c.config().node_by_name(name).unwrap().1.master_candidate
    }

    #[test]
    fn demotion_needs_auto_promote_which_promotes_another() {
        let c = pool_cluster("demote", 0);
        let op = OpNodeSetParams {
            node_name: "node2".into(),
            master_candidate: Some(false),
            ..Default::default()
        };
        let (kind, msg) = prereq(c.run(op.clone()).0);
        assert_eq!(kind, ErrorKind::State);
        assert!(msg.starts_with("Not enough master candidates"), "{msg}");
        assert!(is_candidate(&c, "node2.example.com"));
        c.rpc.clear();
        let (out, log) = c.run(OpNodeSetParams {
            auto_promote: true,
            ..op
        });
        assert_eq!(
            out,
            OpOutcome::Success(serde_json::json!([["master_candidate", "False"]])),
            "{log:?}"
        );
        assert!(!is_candidate(&c, "node2.example.com"));
        assert!(is_candidate(&c, "node4.example.com"));
        assert!(
            log.iter()
                .any(|l| l.contains("Promoted nodes to master candidate role: node4.example.com")),
            "{log:?}"
        );
        // The demoted node loses its config copy; the promoted one gets the
        // candidates' files (and config.data through replication).
        let removes = c.rpc.calls_of(proto::REMOVE_FILES);
        assert_eq!(removes.len(), 1);
        assert_eq!(removes[0].0, "node2.example.com");
        assert_eq!(removes[0].1["paths"][0], redist::CONFIG_DATA);
        let to_node4: Vec<Vec<String>> = c
            .rpc
            .calls_of(proto::UPLOAD_FILES)
            .into_iter()
            .filter(|(n, _)| n == "node4.example.com")
            .map(|(_, a)| crate::cmdlib::fake_rpc::uploaded_paths(&a))
            .collect();
        assert!(
            to_node4.contains(&vec![redist::CONFIG_DATA.to_string()]),
            "{to_node4:?}"
        );
        assert!(
            to_node4.contains(&vec![redist::RAPI_PEM.to_string()]),
            "{to_node4:?}"
        );
    }

    #[test]
    fn flags_rules() {
        let c = pool_cluster("flags", 1);
        // Only one role flag at a time.
        let (_, msg) = prereq(
            c.run(OpNodeSetParams {
                node_name: "node4".into(),
                offline: Some(true),
                drained: Some(true),
                ..Default::default()
            })
            .0,
        );
        assert!(msg.contains("more than one state"), "{msg}");
        // The master's role cannot change.
        let (_, msg) = prereq(
            c.run(OpNodeSetParams {
                node_name: "node1.example.com".into(),
                offline: Some(true),
                ..Default::default()
            })
            .0,
        );
        assert!(msg.contains("master-failover"), "{msg}");
        // vm_capable cannot be unset under an instance (inst1 is on node1).
        let (_, msg) = prereq(
            c.run(OpNodeSetParams {
                node_name: "node1".into(),
                vm_capable: Some(false),
                ..Default::default()
            })
            .0,
        );
        assert!(msg.contains("hosts instances"), "{msg}");
        // Offlining a candidate with auto-promote: offline, not contacted.
        c.rpc.clear();
        let (out, log) = c.run(OpNodeSetParams {
            node_name: "node3".into(),
            offline: Some(true),
            auto_promote: true,
            ..Default::default()
        });
        assert_eq!(
            out,
            OpOutcome::Success(serde_json::json!([
                ["master_candidate", "False"],
                ["offline", "True"]
            ])),
            "{log:?}"
        );
        assert!(c.rpc.calls_of(proto::REMOVE_FILES).is_empty());
        assert!(!c.rpc.calls().iter().any(|x| x.node == "node3.example.com"));
        assert!(is_candidate(&c, "node4.example.com"));
        // Bringing it back asks for its version and re-promotes if needed.
        let (out, log) = c.run(OpNodeSetParams {
            node_name: "node3".into(),
            offline: Some(false),
            ..Default::default()
        });
        assert!(matches!(out, OpOutcome::Success(_)), "{out:?} {log:?}");
        assert!(nodes_called(&c, proto::VERSION).contains(&"node3.example.com".to_string()));
        assert!(
            !c.config()
                .node_by_name("node3.example.com")
                .unwrap()
                .1
                .offline
        );
        // Nothing to change.
        let (_, msg) = prereq(
            c.run(OpNodeSetParams {
                node_name: "node3".into(),
                ..Default::default()
            })
            .0,
        );
        assert!(msg.contains("at least one modification"), "{msg}");
    }

    #[test]
    fn remove_rules_and_rebalance() {
        let c = pool_cluster("remove", 2);
        let (_, msg) = prereq(
            c.run(OpNodeRemove {
                node_name: "node1.example.com".into(),
                ..Default::default()
            })
            .0,
        );
        assert!(msg.contains("master node"), "{msg}");
        // inst2 lives on node2.
        let (_, msg) = prereq(
            c.run(OpNodeRemove {
                node_name: "node2".into(),
                ..Default::default()
            })
            .0,
        );
        assert!(msg.contains("inst2.example.com"), "{msg}");
        // node3 is dead: removed anyway, with a warning; node4 promoted.
        c.rpc.kill("node3.example.com");
        let (out, log) = c.run(OpNodeRemove {
            node_name: "node3".into(),
            ..Default::default()
        });
        assert_eq!(out, OpOutcome::Success(Value::Null), "{log:?}");
        assert!(c.config().node_by_name("node3.example.com").is_none());
        assert!(is_candidate(&c, "node4.example.com"));
        assert_eq!(
            nodes_called(&c, proto::LEAVE_CLUSTER),
            vec!["node3.example.com"]
        );
        assert!(
            log.iter()
                .any(|l| l.starts_with("WARNING: Errors encountered on the remote node")),
            "{log:?}"
        );
        assert!(!c
            .processor
            .locks()
            .set(Level::Node)
            .names()
            .contains(&LockName::from("node3.example.com")));
        // The removed node no longer receives ssconf.
        c.rpc.clear();
        let (out, _) = c.run(OpNodeSetParams {
            node_name: "node4".into(),
            drained: Some(true),
            auto_promote: true,
            ..Default::default()
        });
        assert!(matches!(out, OpOutcome::Success(_)), "{out:?}");
        assert!(!nodes_called(&c, proto::WRITE_SSCONF).contains(&"node3.example.com".to_string()));
    }

    #[test]
    fn dead_node_only_warns_and_pool_grows_with_cluster_setting() {
        let c = pool_cluster("dead", 0);
        c.rpc.kill("node3.example.com");
        let (out, log) = c.run(OpClusterSetParams {
            candidate_pool_size: Some(4),
            ..Default::default()
        });
        assert_eq!(out, OpOutcome::Success(Value::Null), "{log:?}");
        assert_eq!(c.config().cluster.candidate_pool_size, 4);
        assert!(is_candidate(&c, "node4.example.com"), "{log:?}");
        assert!(
            log.iter()
                .any(|l| l.starts_with("WARNING:") && l.contains("node3.example.com")),
            "{log:?}"
        );
        // What was replicated is exactly the master's file and ssconf.
        let on_disk = std::fs::read(c.paths.config_file()).unwrap();
        let (_, last) = c
            .rpc
            .calls_of(proto::UPLOAD_FILES)
            .into_iter()
            .rfind(|(n, a)| {
                n == "node2.example.com"
                    && crate::cmdlib::fake_rpc::uploaded_paths(a)[0] == redist::CONFIG_DATA
            })
            .unwrap();
        assert_eq!(
            crate::rpc::b64::decode(last["files"][0]["data"].as_str().unwrap()).unwrap(),
            on_disk
        );
        assert_eq!(last["files"][0]["mode"], 0o640);
        let (_, ss) = c
            .rpc
            .calls_of(proto::WRITE_SSCONF)
            .into_iter()
            .next_back()
            .unwrap();
        let want = serde_json::to_value(crate::ssconf::render(&c.config())).unwrap();
        assert_eq!(ss["files"], want);
    }

    #[test]
    fn powercycle() {
        let c = TestCluster::new("powercycle", 2, 0);
        let (_, msg) = prereq(
            c.run(OpNodePowercycle {
                node_name: "node1".into(),
                ..Default::default()
            })
            .0,
        );
        assert!(msg.contains("force"), "{msg}");
        let (out, _) = c.run(OpNodePowercycle {
            node_name: "node2".into(),
            ..Default::default()
        });
        assert_eq!(
            out,
            OpOutcome::Success(serde_json::json!("Reboot scheduled in 5 seconds"))
        );
        c.rpc.kill("node2.example.com");
        let (out, _) = c.run(OpNodePowercycle {
            node_name: "node2".into(),
            ..Default::default()
        });
        assert!(
            matches!(out, OpOutcome::Failed(LuError::Exec(_))),
            "{out:?}"
        );
    }

    #[test]
    fn pool_maths() {
        let mut cfg = crate::config::test_support::generated(5, 0);
        cfg.cluster.candidate_pool_size = 3;
        for n in cfg.nodes.values_mut() {
            n.master_candidate = false;
        }
        let drained = cfg.node_by_name("node2.example.com").unwrap().0.clone();
        cfg.nodes.get_mut(&drained).unwrap().drained = true;
        assert_eq!(candidate_stats(&cfg, &[]), (0, 3, 4));
        assert!(decide_self_promotion(&cfg, &[]));
        let promoted = maintain_candidate_pool(&mut cfg, &[]);
        assert_eq!(
            promoted,
            vec![
                "node1.example.com",
                "node3.example.com",
                "node4.example.com"
            ]
        );
        assert_eq!(candidate_stats(&cfg, &[]), (3, 3, 4));
        assert!(!decide_self_promotion(&cfg, &[]));
        assert!(maintain_candidate_pool(&mut cfg, &[]).is_empty());
    }
}
