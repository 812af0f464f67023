//! Logical units: the master-side logic of every opcode.
//!
//! A job worker hands an opcode to [`Processor::execute`], which runs its
//! logical unit through Ganeti's phases (design 2.0, `mcpu.py`):
//!
//! 1. **expand names** against a config snapshot (short names → full names);
//! 2. **declare locks** level by level; the processor acquires them in the
//!    one level order with the retry strategy of design 2.1 (increasing
//!    timeouts, then blocking — or deferring the job so others can run);
//! 3. **check prerequisites** on a fresh snapshot taken under the locks;
//!    failures here changed nothing ([`LuError::Prereq`]);
//! 4. **execute**: node RPCs (issue 4) and config changes through the single
//!    writer; failures here may have changed something ([`LuError::Exec`]).
//!
//! Feedback lines go to the job's log as they happen. An LU never touches a
//! hypervisor or disk: it asks a node over RPC, even the master itself.
//!
//! Opcodes whose LU is not built yet fail with [`LuError::NotImplemented`];
//! `docs/opcodes.md` lists which.

pub mod backup;
pub mod cluster;
#[cfg(test)]
pub mod fake_rpc;
pub mod instance;
pub mod live;
pub mod node;
pub mod os;
pub mod query;
pub mod redist;
pub mod tags;
pub mod test;

use crate::config::objects::ConfigData;
use crate::config::store::ConfigStore;
use crate::config::ConfigError;
use crate::error::ErrorKind;
use crate::locking::retry::{
    acquire_with_retries, LockRequest, RetryOutcome, TimeoutStrategy, WhenExhausted,
};
use crate::locking::{Level, BGL_NAME};
use crate::locking::{LockManager, LockMode, LockName, Names, OwnerId, Priority};
use crate::opcodes::OpCode;
use crate::rpc::NodeRpc;
use serde_json::Value;
use std::sync::Arc;

/// Why an opcode did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LuError {
    /// A prerequisite failed; nothing was changed.
    #[error("{message}")]
    Prereq {
        /// Ganeti's error class.
        kind: ErrorKind,
        /// What is wrong, naming the object.
        message: String,
    },
    /// Execution failed; something may have changed.
    #[error("{0}")]
    Exec(String),
    /// The opcode is defined but its logical unit is not built yet.
    #[error("opcode {0} is not implemented yet in ganeti-rs; see docs/opcodes.md")]
    NotImplemented(&'static str),
    /// The locks could not be taken (deleted lock, order bug).
    #[error("acquiring locks: {0}")]
    Locking(String),
}

impl LuError {
    /// A prerequisite failure of `kind`.
    pub fn prereq(kind: ErrorKind, message: impl Into<String>) -> Self {
        LuError::Prereq {
            kind,
            message: message.into(),
        }
    }

    /// Ganeti's encoded exception (`[class, [args]]`), as stored in a job's
    /// op result and understood by Ganeti's clients.
    pub fn encode(&self) -> Value {
        match self {
            LuError::Prereq { kind, message } => {
                serde_json::json!(["OpPrereqError", [message, kind]])
            }
            LuError::NotImplemented(_) => {
                serde_json::json!(["OpPrereqError", [self.to_string(), ErrorKind::Inval]])
            }
            LuError::Exec(m) => serde_json::json!(["OpExecError", [m]]),
            LuError::Locking(m) => serde_json::json!(["LockError", [m]]),
        }
    }
}

/// One level's worth of locks an LU needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockNeed {
    /// The level.
    pub level: Level,
    /// Which names (or all of the level).
    pub names: Vec<String>,
    /// Shared or exclusive.
    pub mode: LockMode,
}

/// What an LU can use while it executes.
pub struct LuContext<'a> {
    /// The config writer.
    pub store: &'a ConfigStore,
    /// Calls nodes (the master too: an LU never does node work itself).
    pub rpc: &'a dyn NodeRpc,
    /// The lock manager, for LUs that create or delete lock names (node
    /// add and remove).
    pub locks: &'a LockManager,
    /// The job owning the locks held for this opcode.
    pub owner: OwnerId,
    /// The opcode's priority (for lock additions).
    pub priority: Priority,
    /// Appends a line to the job's log.
    pub feedback: &'a mut dyn FnMut(String),
}

impl LuContext<'_> {
    /// Commits a config change through the writer and reports the
    /// distribution warnings as feedback lines. A change refused by the
    /// closure with [`ConfigError::Update`] stays a prerequisite failure
    /// (nothing was written); anything else is an execution failure.
    pub fn update_config<T>(
        &mut self,
        f: impl FnOnce(&mut ConfigData) -> Result<T, ConfigError>,
    ) -> Result<T, LuError> {
        let (out, warnings) = self.store.update_reporting(f).map_err(|e| match e {
            ConfigError::Update { reason } => LuError::prereq(ErrorKind::Inval, reason),
            other => LuError::Exec(crate::error::chain(&other)),
        })?;
        for w in warnings {
            (self.feedback)(format!("WARNING: {w}"));
        }
        Ok(out)
    }

    /// Sends `line` to the job's log.
    pub fn log(&mut self, line: impl Into<String>) {
        (self.feedback)(line.into());
    }
}

/// The phases of one opcode's logic.
pub trait LogicalUnit: Send {
    /// Whether the BGL is needed at all (Ganeti's `REQ_BGL`); when it is,
    /// it is taken shared unless [`LogicalUnit::bgl_mode`] says otherwise.
    fn requires_bgl(&self) -> bool {
        true
    }
    /// The mode the BGL is taken in.
    fn bgl_mode(&self) -> LockMode {
        LockMode::Shared
    }
    /// Canonicalises names in the opcode against the config.
    fn expand_names(&mut self, _cfg: &ConfigData) -> Result<(), LuError> {
        Ok(())
    }
    /// The locks needed below the BGL, in any order (the processor sorts by level).
    fn declare_locks(&self, _cfg: &ConfigData) -> Vec<LockNeed> {
        Vec::new()
    }
    /// Lock names to create (Ganeti's `add_locks`), held by the job in the
    /// given mode: e.g. the new instance's lock. They are added in level
    /// order with the other locks, so no lower level is held yet; the
    /// processor removes them again when the opcode does not succeed.
    fn add_locks(&self) -> Vec<LockNeed> {
        Vec::new()
    }
    /// Checks that the operation can run, on a snapshot taken under the locks.
    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError>;
    /// Does the work; returns the opcode's result.
    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError>;
}

/// The logical unit for `op`.
pub fn logical_unit_for(op: &OpCode) -> Result<Box<dyn LogicalUnit>, LuError> {
    Ok(match op {
        OpCode::TestDelay(o) => Box::new(test::LuTestDelay::new(o.clone())),
        OpCode::TestJqueue(o) => Box::new(test::LuTestJqueue::new(o.clone())),
        OpCode::ClusterQuery(_) => Box::new(cluster::LuClusterQuery),
        OpCode::ClusterConfigQuery(o) => Box::new(cluster::LuClusterConfigQuery::new(o.clone())),
        OpCode::ClusterVerifyConfig(o) => Box::new(cluster::LuClusterVerifyConfig::new(o.clone())),
        OpCode::ClusterSetParams(o) => Box::new(cluster::LuClusterSetParams::new(o.clone())),
        OpCode::ClusterVerify(o) => Box::new(cluster::verify::LuClusterVerify::new(o.clone())),
        OpCode::ClusterVerifyGroup(o) => {
            Box::new(cluster::verify::LuClusterVerifyGroup::new(o.clone()))
        }
        OpCode::ClusterVerifyDisks(o) => {
            Box::new(cluster::disks::LuClusterVerifyDisks::new(o.clone()))
        }
        OpCode::GroupVerifyDisks(o) => Box::new(cluster::disks::LuGroupVerifyDisks::new(o.clone())),
        OpCode::ClusterRepairDiskSizes(o) => {
            Box::new(cluster::disks::LuClusterRepairDiskSizes::new(o.clone()))
        }
        OpCode::ClusterRedistConf(o) => Box::new(redist::LuClusterRedistConf::new(o.clone())),
        OpCode::NodeAdd(o) => Box::new(node::LuNodeAdd::new(o.clone())),
        OpCode::NodeSetParams(o) => Box::new(node::LuNodeSetParams::new(o.clone())),
        OpCode::NodeRemove(o) => Box::new(node::LuNodeRemove::new(o.clone())),
        OpCode::NodePowercycle(o) => Box::new(node::LuNodePowercycle::new(o.clone())),
        OpCode::InstanceCreate(o) => Box::new(instance::create::LuInstanceCreate::new(o.clone())),
        OpCode::InstanceRemove(o) => {
            Box::new(instance::lifecycle::LuInstanceRemove::new(o.clone()))
        }
        OpCode::InstanceStartup(o) => {
            Box::new(instance::lifecycle::LuInstanceStartup::new(o.clone()))
        }
        OpCode::InstanceShutdown(o) => {
            Box::new(instance::lifecycle::LuInstanceShutdown::new(o.clone()))
        }
        OpCode::InstanceReboot(o) => {
            Box::new(instance::lifecycle::LuInstanceReboot::new(o.clone()))
        }
        OpCode::InstanceConsole(o) => {
            Box::new(instance::lifecycle::LuInstanceConsole::new(o.clone()))
        }
        OpCode::InstanceActivateDisks(o) => {
            Box::new(instance::disks::LuInstanceActivateDisks::new(o.clone()))
        }
        OpCode::InstanceDeactivateDisks(o) => {
            Box::new(instance::disks::LuInstanceDeactivateDisks::new(o.clone()))
        }
        OpCode::InstanceGrowDisk(o) => {
            Box::new(instance::disks::LuInstanceGrowDisk::new(o.clone()))
        }
        OpCode::InstanceRecreateDisks(o) => {
            Box::new(instance::recreate::LuInstanceRecreateDisks::new(o.clone()))
        }
        OpCode::InstanceFailover(o) => {
            Box::new(instance::migrate::LuInstanceFailover::new(o.clone()))
        }
        OpCode::InstanceMigrate(o) => {
            Box::new(instance::migrate::LuInstanceMigrate::new(o.clone()))
        }
        OpCode::InstanceRename(o) => Box::new(instance::modify::LuInstanceRename::new(o.clone())),
        OpCode::InstanceReinstall(o) => {
            Box::new(instance::modify::LuInstanceReinstall::new(o.clone()))
        }
        OpCode::InstanceSetParams(o) => {
            Box::new(instance::modify::LuInstanceSetParams::new(o.clone()))
        }
        OpCode::InstanceMove(o) => Box::new(instance::transfer::LuInstanceMove::new(o.clone())),
        OpCode::BackupExport(o) => Box::new(backup::LuBackupExport::new(o.clone())),
        OpCode::BackupRemove(o) => Box::new(backup::LuBackupRemove::new(o.clone())),
        OpCode::InstanceQueryData(o) => {
            Box::new(instance::info::LuInstanceQueryData::new(o.clone()))
        }
        OpCode::OsDiagnose(o) => Box::new(os::LuOsDiagnose::new(o.clone())),
        OpCode::Query(o) => Box::new(query::LuQuery::new(o.clone())),
        OpCode::QueryFields(o) => Box::new(query::LuQueryFields::new(o.clone())),
        OpCode::TagsGet(o) => Box::new(tags::LuTagsGet::new(o.clone())),
        OpCode::TagsSearch(o) => Box::new(tags::LuTagsSearch::new(o.clone())),
        OpCode::TagsSet(o) => Box::new(tags::LuTagsSet::new(o.clone())),
        OpCode::TagsDel(o) => Box::new(tags::LuTagsDel::new(o.clone())),
        other => return Err(LuError::NotImplemented(other.op_id())),
    })
}

/// The op ids whose logical unit exists.
pub const IMPLEMENTED_OP_IDS: &[&str] = &[
    "OP_TEST_DELAY",
    "OP_TEST_JQUEUE",
    "OP_CLUSTER_QUERY",
    "OP_CLUSTER_CONFIG_QUERY",
    "OP_CLUSTER_VERIFY_CONFIG",
    "OP_CLUSTER_SET_PARAMS",
    "OP_CLUSTER_VERIFY",
    "OP_CLUSTER_VERIFY_GROUP",
    "OP_CLUSTER_REDIST_CONF",
    "OP_CLUSTER_VERIFY_DISKS",
    "OP_GROUP_VERIFY_DISKS",
    "OP_CLUSTER_REPAIR_DISK_SIZES",
    "OP_NODE_ADD",
    "OP_NODE_SET_PARAMS",
    "OP_NODE_REMOVE",
    "OP_NODE_POWERCYCLE",
    "OP_INSTANCE_CREATE",
    "OP_INSTANCE_REMOVE",
    "OP_INSTANCE_STARTUP",
    "OP_INSTANCE_SHUTDOWN",
    "OP_INSTANCE_REBOOT",
    "OP_INSTANCE_CONSOLE",
    "OP_INSTANCE_ACTIVATE_DISKS",
    "OP_INSTANCE_DEACTIVATE_DISKS",
    "OP_INSTANCE_GROW_DISK",
    "OP_INSTANCE_QUERY_DATA",
    "OP_OS_DIAGNOSE",
    "OP_QUERY",
    "OP_QUERY_FIELDS",
    "OP_TAGS_GET",
    "OP_TAGS_SEARCH",
    "OP_TAGS_SET",
    "OP_TAGS_DEL",
];

/// How an opcode ended.
#[derive(Debug, Clone, PartialEq)]
pub enum OpOutcome {
    /// Done, with the opcode's result.
    Success(Value),
    /// Failed.
    Failed(LuError),
    /// The locks were not available within the timeouts; requeue the job
    /// (design 2.3), holding nothing.
    Deferred,
}

/// Runs opcodes: the link between job workers, locks, config and LUs.
pub struct Processor {
    store: Arc<ConfigStore>,
    locks: Arc<LockManager>,
    rpc: Arc<dyn NodeRpc>,
}

impl Processor {
    /// A processor over the config writer, the lock manager and the node
    /// RPC client.
    pub fn new(store: Arc<ConfigStore>, locks: Arc<LockManager>, rpc: Arc<dyn NodeRpc>) -> Self {
        Processor { store, locks, rpc }
    }

    /// The config writer.
    pub fn store(&self) -> &Arc<ConfigStore> {
        &self.store
    }

    /// The lock manager.
    pub fn locks(&self) -> &Arc<LockManager> {
        &self.locks
    }

    /// Runs `op` for `owner` at `priority`, sending log lines to `feedback`
    /// and calling `locks_acquired` once its locks are held (the job turns
    /// from waiting to running).
    /// Locks are always released before this returns.
    pub fn execute(
        &self,
        owner: OwnerId,
        op: &OpCode,
        priority: Priority,
        when_exhausted: WhenExhausted,
        feedback: &mut dyn FnMut(String),
        locks_acquired: &mut dyn FnMut(),
    ) -> OpOutcome {
        match logical_unit_for(op) {
            Ok(lu) => self.execute_lu(
                owner,
                op,
                lu,
                priority,
                when_exhausted,
                feedback,
                locks_acquired,
            ),
            Err(e) => OpOutcome::Failed(e),
        }
    }

    /// [`Processor::execute`] with a given logical unit for `op` (one built
    /// with non-default collaborators, e.g. another join step).
    #[allow(clippy::too_many_arguments)]
    pub fn execute_lu(
        &self,
        owner: OwnerId,
        op: &OpCode,
        lu: Box<dyn LogicalUnit>,
        priority: Priority,
        when_exhausted: WhenExhausted,
        feedback: &mut dyn FnMut(String),
        locks_acquired: &mut dyn FnMut(),
    ) -> OpOutcome {
        let mut added = Vec::new();
        let outcome = self.run_phases(
            owner,
            op,
            lu,
            priority,
            when_exhausted,
            feedback,
            locks_acquired,
            &mut added,
        );
        if !matches!(outcome, OpOutcome::Success(_)) {
            // Locks created for an object that did not come to exist.
            for (level, name) in added.iter().rev() {
                if let Err(e) = self.locks.remove(owner, *level, std::slice::from_ref(name)) {
                    log::error!(
                        "removing added {level} lock {name} after {}: {e}",
                        op.op_id()
                    );
                }
            }
        }
        if let Err(e) = self.locks.release_all(owner) {
            log::error!(
                "releasing locks of owner {} after {}: {e}",
                owner.0,
                op.op_id()
            );
        }
        outcome
    }

    #[allow(clippy::too_many_arguments)]
    fn run_phases(
        &self,
        owner: OwnerId,
        op: &OpCode,
        mut lu: Box<dyn LogicalUnit>,
        priority: Priority,
        when_exhausted: WhenExhausted,
        feedback: &mut dyn FnMut(String),
        locks_acquired: &mut dyn FnMut(),
        added: &mut Vec<(Level, LockName)>,
    ) -> OpOutcome {
        let snapshot = self.store.snapshot();
        if let Err(e) = lu.expand_names(&snapshot) {
            return OpOutcome::Failed(e);
        }
        let mut needs = lu.declare_locks(&snapshot);
        if lu.requires_bgl() {
            needs.push(LockNeed {
                level: Level::Cluster,
                names: vec![BGL_NAME.to_string()],
                mode: lu.bgl_mode(),
            });
        }
        needs.sort_by_key(|n| n.level);
        let mut adds = lu.add_locks();
        adds.sort_by_key(|n| n.level);
        for need in &needs {
            // Create this level's new locks before acquiring lower levels.
            for add in adds.iter().filter(|a| a.level <= need.level) {
                if let Err(e) = self.add_new_locks(owner, add, priority, added) {
                    return OpOutcome::Failed(e);
                }
            }
            adds.retain(|a| a.level > need.level);
            let request = LockRequest {
                owner,
                level: need.level,
                names: Names::list(need.names.iter().map(|n| LockName::from(n.as_str()))),
                mode: need.mode,
                priority,
            };
            let mut strategy = TimeoutStrategy::ganeti();
            let attempt =
                acquire_with_retries(&self.locks, &request, &mut strategy, when_exhausted, |a| {
                    if a.number > 1 {
                        feedback(format!(
                            "Waiting for {} locks (attempt {})",
                            need.level.name(),
                            a.number
                        ));
                    }
                });
            match attempt {
                Ok(RetryOutcome::Acquired) => {}
                Ok(RetryOutcome::Deferred) => return OpOutcome::Deferred,
                Err(e) => return OpOutcome::Failed(LuError::Locking(e.to_string())),
            }
        }
        for add in &adds {
            if let Err(e) = self.add_new_locks(owner, add, priority, added) {
                return OpOutcome::Failed(e);
            }
        }
        locks_acquired();
        let snapshot = self.store.snapshot();
        if let Err(e) = lu.check_prereq(&snapshot) {
            return OpOutcome::Failed(e);
        }
        // --dry-run: the prerequisites were the whole point (Ganeti's mcpu).
        if op.common().dry_run == Some(true) {
            return OpOutcome::Success(Value::Null);
        }
        let mut ctx = LuContext {
            store: &self.store,
            rpc: self.rpc.as_ref(),
            locks: &self.locks,
            owner,
            priority,
            feedback,
        };
        match lu.exec(&mut ctx) {
            Ok(v) => OpOutcome::Success(v),
            Err(e) => OpOutcome::Failed(e),
        }
    }
}

impl Processor {
    fn add_new_locks(
        &self,
        owner: OwnerId,
        add: &LockNeed,
        priority: Priority,
        added: &mut Vec<(Level, LockName)>,
    ) -> Result<(), LuError> {
        let names: Vec<LockName> = add
            .names
            .iter()
            .map(|n| LockName::from(n.as_str()))
            .collect();
        let _held = self
            .locks
            .add(
                owner,
                add.level,
                &names,
                crate::locking::NewLocks::HeldAs(add.mode),
                crate::locking::Timeout::Blocking,
                priority,
            )
            .map_err(|e| LuError::Locking(e.to_string()))?;
        added.extend(names.into_iter().map(|n| (add.level, n)));
        Ok(())
    }
}

/// The lock names of a config: instance, group, node and network names.
pub fn initial_locks(cfg: &ConfigData) -> crate::locking::InitialLocks {
    let names =
        |it: &mut dyn Iterator<Item = String>| it.map(|n| LockName::from(n.as_str())).collect();
    crate::locking::InitialLocks {
        instances: names(&mut cfg.instances.values().map(|i| i.name.as_str().to_string())),
        node_groups: names(&mut cfg.nodegroups.values().map(|g| g.name.as_str().to_string())),
        nodes: names(&mut cfg.nodes.values().map(|n| n.name.as_str().to_string())),
        networks: names(&mut cfg.networks.values().map(|n| n.name.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opcodes::params::TagKind;
    use crate::opcodes::*;

    struct Fixture {
        dir: std::path::PathBuf,
        processor: Processor,
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn fixture(tag: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!("ganeti-cmdlib-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let root = dir.join("node1.example.com");
        std::fs::create_dir_all(&root).unwrap();
        let paths = crate::paths::Paths::virtual_node(&root, "node1.example.com").unwrap();
        let cfg = crate::config::test_support::generated(2, 3);
        let locks = Arc::new(LockManager::new(initial_locks(&cfg)));
        let store = Arc::new(ConfigStore::create(&paths, cfg).unwrap());
        Fixture {
            dir,
            processor: Processor::new(store, locks, Arc::new(fake_rpc::FakeRpc::new())),
        }
    }

    fn run(f: &Fixture, op: impl Into<OpCode>) -> (OpOutcome, Vec<String>) {
        let mut log = Vec::new();
        let out = f.processor.execute(
            OwnerId(1),
            &op.into(),
            Priority::default(),
            WhenExhausted::Block,
            &mut |l| log.push(l),
            &mut || {},
        );
        (out, log)
    }

    fn instance_name(f: &Fixture) -> String {
        let cfg = f.processor.store().snapshot();
        cfg.instances
            .values()
            .next()
            .unwrap()
            .name
            .as_str()
            .to_string()
    }

    #[test]
    fn test_delay_runs_and_refuses_zero() {
        let f = fixture("delay");
        let (out, log) = run(
            &f,
            OpTestDelay {
                duration: 0.001,
                repeat: 2,
                ..Default::default()
            },
        );
        assert_eq!(out, OpOutcome::Success(Value::Bool(true)));
        assert_eq!(
            log,
            vec!["Test delay iteration 0/1", "Test delay iteration 1/1"]
        );
        let (out, _) = run(
            &f,
            OpTestDelay {
                duration: 0.0,
                ..Default::default()
            },
        );
        assert!(
            matches!(
                out,
                OpOutcome::Failed(LuError::Prereq {
                    kind: ErrorKind::Inval,
                    ..
                })
            ),
            "{out:?}"
        );
    }

    #[test]
    fn tags_round_trip_and_errors() {
        let f = fixture("tags");
        let inst = instance_name(&f);
        let serial = f.processor.store().snapshot().serial_no;
        let set = OpTagsSet {
            kind: TagKind::Instance,
            name: Some(inst.clone()),
            tags: vec!["env:prod".into(), "web".into()],
            ..Default::default()
        };
        assert_eq!(run(&f, set).0, OpOutcome::Success(Value::Null));
        assert_eq!(f.processor.store().snapshot().serial_no, serial + 1);
        let get = OpTagsGet {
            kind: TagKind::Instance,
            name: Some(inst.clone()),
            ..Default::default()
        };
        assert_eq!(
            run(&f, get.clone()).0,
            OpOutcome::Success(serde_json::json!(["env:prod", "web"]))
        );
        let search = OpTagsSearch {
            pattern: "^env:".into(),
            ..Default::default()
        };
        assert_eq!(
            run(&f, search).0,
            OpOutcome::Success(serde_json::json!([[
                format!("/instances/{inst}"),
                "env:prod"
            ]]))
        );
        let del = OpTagsDel {
            kind: TagKind::Instance,
            name: Some(inst.clone()),
            tags: vec!["web".into(), "nope".into()],
            ..Default::default()
        };
        match run(&f, del).0 {
            OpOutcome::Failed(LuError::Prereq {
                kind: ErrorKind::NoEnt,
                message,
            }) => assert!(message.contains("'nope'"), "{message}"),
            other => panic!("{other:?}"),
        }
        let bad = OpTagsSet {
            kind: TagKind::Cluster,
            tags: vec!["no spaces".into()],
            ..Default::default()
        };
        assert!(matches!(
            run(&f, bad).0,
            OpOutcome::Failed(LuError::Prereq { .. })
        ));
        let ghost = OpTagsGet {
            kind: TagKind::Node,
            name: Some("ghost".into()),
            ..Default::default()
        };
        assert!(matches!(
            run(&f, ghost).0,
            OpOutcome::Failed(LuError::Prereq {
                kind: ErrorKind::NoEnt,
                ..
            })
        ));
        // Nothing failed changed the config.
        assert_eq!(f.processor.store().snapshot().serial_no, serial + 1);
    }

    #[test]
    fn cluster_set_params_uid_pool_and_hvparams() {
        let f = fixture("setparams");
        let op = OpClusterSetParams {
            uid_pool: Some(vec![(1000, 1009)]),
            add_uids: Some(vec![(2000, 2000)]),
            ..Default::default()
        };
        assert_eq!(run(&f, op).0, OpOutcome::Success(Value::Null));
        assert_eq!(
            f.processor.store().snapshot().cluster.uid_pool,
            vec![(1000, 1009), (2000, 2000)]
        );
        let op = OpClusterSetParams {
            remove_uids: Some(vec![(1000, 1009)]),
            ..Default::default()
        };
        assert_eq!(run(&f, op).0, OpOutcome::Success(Value::Null));
        assert_eq!(
            f.processor.store().snapshot().cluster.uid_pool,
            vec![(2000, 2000)]
        );
        let op = OpClusterSetParams {
            remove_uids: Some(vec![(5, 6)]),
            ..Default::default()
        };
        assert!(matches!(
            run(&f, op).0,
            OpOutcome::Failed(LuError::Prereq { .. })
        ));
        // Global hypervisor parameters (design 2.1) are set at cluster level.
        let mut kvm = crate::opcodes::Dict::new();
        kvm.insert("migration_port".into(), serde_json::json!(8200));
        let op = OpClusterSetParams {
            hvparams: Some([("kvm".to_string(), kvm)].into()),
            ..Default::default()
        };
        assert_eq!(run(&f, op).0, OpOutcome::Success(Value::Null));
        assert_eq!(
            f.processor.store().snapshot().cluster.hvparams["kvm"]["migration_port"],
            8200
        );
        let mut bad = crate::opcodes::Dict::new();
        bad.insert("no_such_param".into(), serde_json::json!(1));
        let op = OpClusterSetParams {
            hvparams: Some([("kvm".to_string(), bad)].into()),
            ..Default::default()
        };
        match run(&f, op).0 {
            OpOutcome::Failed(e) => assert!(e.to_string().contains("no_such_param"), "{e}"),
            other => panic!("{other:?}"),
        }
        let op = OpClusterSetParams {
            ipolicy: Some(Default::default()),
            ..Default::default()
        };
        match run(&f, op).0 {
            OpOutcome::Failed(e) => assert!(e.to_string().contains("ipolicy"), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn queries_verify_and_unimplemented() {
        let f = fixture("query");
        match run(&f, OpClusterQuery::default()).0 {
            OpOutcome::Success(v) => assert_eq!(v["name"], "cluster.example.com"),
            other => panic!("{other:?}"),
        }
        let op = OpClusterConfigQuery {
            output_fields: vec!["cluster_name".into(), "master_node".into()],
            ..Default::default()
        };
        assert_eq!(
            run(&f, op).0,
            OpOutcome::Success(serde_json::json!([
                "cluster.example.com",
                "node1.example.com"
            ]))
        );
        let (out, log) = run(&f, OpClusterVerifyConfig::default());
        assert_eq!(out, OpOutcome::Success(Value::Bool(true)), "{log:?}");
        let (out, _) = run(
            &f,
            OpClusterRename {
                name: "x".into(),
                ..Default::default()
            },
        );
        assert_eq!(
            out,
            OpOutcome::Failed(LuError::NotImplemented("OP_CLUSTER_RENAME"))
        );
        assert_eq!(
            LuError::NotImplemented("OP_CLUSTER_RENAME").encode()[0],
            serde_json::json!("OpPrereqError")
        );
    }

    #[test]
    fn implemented_list_matches_dispatch() {
        for id in IMPLEMENTED_OP_IDS {
            assert!(crate::opcodes::ALL_OP_IDS.contains(id), "{id}");
        }
    }
}
