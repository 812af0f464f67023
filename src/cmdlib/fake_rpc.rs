//! A fake [`NodeRpc`] for logical-unit tests: records every call, answers
//! from a script (per procedure and node) or with sensible defaults, and
//! can mark nodes dead (connection refused).

use crate::rpc::proto::{self, VersionInfo};
use crate::rpc::{NodeResult, NodeRpc, RpcError, Target};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

/// One recorded call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Procedure name.
    pub procedure: String,
    /// Node name.
    pub node: String,
    /// Arguments sent.
    pub args: Value,
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    dead: BTreeSet<String>,
    answers: BTreeMap<(String, String), Result<Value, String>>,
}

/// The fake.
#[derive(Default)]
pub struct FakeRpc {
    state: Mutex<State>,
}

impl FakeRpc {
    /// A fake where every node is alive and answers with defaults.
    pub fn new() -> FakeRpc {
        FakeRpc::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes `node` refuse connections from now on.
    pub fn kill(&self, node: &str) {
        self.state().dead.insert(node.to_string());
    }

    /// Scripts `procedure` on `node` to return `answer` (`Err`: a remote failure).
    pub fn answer(&self, procedure: &str, node: &str, answer: Result<Value, String>) {
        self.state()
            .answers
            .insert((procedure.to_string(), node.to_string()), answer);
    }

    /// Scripts `node_hv_info` on `node`: a fake-hypervisor host of
    /// 4096 MiB (512 for itself) with `free_mib` free and 4 CPUs.
    pub fn answer_fake_host(&self, node: &str, free_mib: u64) {
        let host = crate::rpc::proto::NodeHvInfo {
            hypervisor: "fake".into(),
            memory_total_mib: 4096,
            memory_free_mib: free_mib,
            memory_dom0_mib: 512,
            cpu_total: 4,
            cpu_nodes: 1,
            cpu_sockets: 1,
        };
        self.answer(
            crate::rpc::proto::NODE_HV_INFO,
            node,
            Ok(serde_json::json!([host])),
        );
    }

    /// Scripts `blockdev_assemble` on `node` to answer `path` (disk `uuid`).
    pub fn answer_assembled(&self, node: &str, uuid: &str, path: &str) {
        let disk = crate::rpc::proto::AssembledDisk {
            uuid: uuid.into(),
            path: path.into(),
            uri: None,
        };
        self.answer(
            crate::rpc::proto::BLOCKDEV_ASSEMBLE,
            node,
            Ok(serde_json::json!(disk)),
        );
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// Calls of `procedure`, as (node, args).
    pub fn calls_of(&self, procedure: &str) -> Vec<(String, Value)> {
        self.calls()
            .into_iter()
            .filter(|c| c.procedure == procedure)
            .map(|c| (c.node, c.args))
            .collect()
    }

    /// Forgets recorded calls.
    pub fn clear(&self) {
        self.state().calls.clear();
    }

    fn one(&self, procedure: &str, target: &Target, args: &Value) -> NodeResult {
        let mut st = self.state();
        if target.offline {
            return Err(RpcError::Offline {
                node: target.name.clone(),
            });
        }
        st.calls.push(Call {
            procedure: procedure.to_string(),
            node: target.name.clone(),
            args: args.clone(),
        });
        if st.dead.contains(&target.name) {
            return Err(RpcError::Connect {
                node: target.name.clone(),
                address: format!("{}:1811", target.address),
                message: "Connection refused".into(),
            });
        }
        if let Some(a) = st
            .answers
            .get(&(procedure.to_string(), target.name.clone()))
        {
            return a.clone().map_err(|message| RpcError::Remote {
                node: target.name.clone(),
                message,
            });
        }
        Ok(match procedure {
            proto::VERSION => json!(VersionInfo {
                protocol: crate::rpc::PROTOCOL_VERSION,
                software: crate::constants::RELEASE_VERSION.into(),
                name: target.name.clone(),
                configured: true,
            }),
            proto::POWERCYCLE => json!("Reboot scheduled in 5 seconds"),
            _ => Value::Null,
        })
    }
}

impl NodeRpc for FakeRpc {
    fn call_each(
        &self,
        procedure: &str,
        calls: &[(Target, Value)],
        _timeout: Duration,
    ) -> Vec<(String, NodeResult)> {
        calls
            .iter()
            .map(|(t, a)| (t.name.clone(), self.one(procedure, t, a)))
            .collect()
    }

    fn join_call(
        &self,
        procedure: &str,
        target: &Target,
        args: &Value,
        _timeout: Duration,
    ) -> Result<(Value, String), RpcError> {
        self.one(procedure, target, args)
            .map(|v| (v, "0".repeat(64)))
    }
}

/// The paths of an `upload_files` call's arguments, in order.
pub fn uploaded_paths(args: &Value) -> Vec<String> {
    args["files"]
        .as_array()
        .map(|files| {
            files
                .iter()
                .filter_map(|f| f["path"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A join step for tests: hands the files to the node with one
/// `join_complete` call through the fake (so tests see them) and succeeds
/// unless the node is dead; then the real join step runs, so the error is
/// the real one.
pub fn fake_join(
    rpc: &dyn NodeRpc,
    target: &Target,
    tokens: &crate::join::TokenStore,
    cluster_name: &str,
    files: Vec<proto::FileUpload>,
    timeout: Duration,
) -> Result<String, crate::join::JoinError> {
    let args = json!({ "files": files });
    match rpc.join_call(proto::JOIN_COMPLETE, target, &args, timeout) {
        Ok((_, cert)) => Ok(cert),
        Err(_) => crate::join::join_node(rpc, target, tokens, cluster_name, files, timeout),
    }
}

/// A master in a temp root with a config of `nodes` nodes and `instances`
/// instances, the fake RPC wired in as the processor's client and as the
/// store's replicator, and the virtual cluster's shared hosts file.
pub struct TestCluster {
    dir: std::path::PathBuf,
    /// The master's paths.
    pub paths: crate::paths::Paths,
    /// The fake every call goes to.
    pub rpc: std::sync::Arc<FakeRpc>,
    /// The processor running opcodes.
    pub processor: crate::cmdlib::Processor,
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The kind and message of a prerequisite failure; panics on any other outcome.
pub fn prereq(out: crate::cmdlib::OpOutcome) -> (crate::error::ErrorKind, String) {
    match out {
        crate::cmdlib::OpOutcome::Failed(crate::cmdlib::LuError::Prereq { kind, message }) => {
            (kind, message)
        }
        other => panic!("expected a prerequisite failure, got {other:?}"),
    }
}

/// The message of an execution failure; panics on any other outcome.
pub fn exec_err(out: crate::cmdlib::OpOutcome) -> String {
    match out {
        crate::cmdlib::OpOutcome::Failed(crate::cmdlib::LuError::Exec(m)) => m,
        other => panic!("expected an execution failure, got {other:?}"),
    }
}

impl TestCluster {
    /// Whether the instance-level lock `name` exists.
    pub fn has_instance_lock(&self, name: &str) -> bool {
        self.processor
            .locks()
            .set(crate::locking::Level::Instance)
            .names()
            .iter()
            .any(|l| l.to_string() == name)
    }

    /// A cluster built from `cfg` (node1.example.com must be its master).
    pub fn with_config(tag: &str, cfg: crate::config::objects::ConfigData) -> TestCluster {
        use std::sync::atomic::{AtomicU32, Ordering};
        use std::sync::Arc;
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ganeti-cmdlib-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let root = dir.join("node1.example.com");
        std::fs::create_dir_all(&root).expect("temp dir is writable");
        let paths = crate::paths::Paths::virtual_node(&root, "node1.example.com")
            .expect("valid virtual node");
        let rpc = Arc::new(FakeRpc::new());
        let locks = Arc::new(crate::locking::LockManager::new(
            crate::cmdlib::initial_locks(&cfg),
        ));
        let store = Arc::new(
            crate::config::store::ConfigStore::create(&paths, cfg).expect("valid test config"),
        );
        store.set_replicator(Arc::new(crate::cmdlib::redist::RpcReplicator::new(
            rpc.clone(),
        )));
        let processor = crate::cmdlib::Processor::new(store, locks, rpc.clone());
        TestCluster {
            dir,
            paths,
            rpc,
            processor,
        }
    }

    /// Sets the admin state of the config's first instance (the only one of
    /// [`TestCluster::with_stopped_instance`]) through the store.
    pub fn set_admin_state(&self, state: crate::config::objects::AdminState) {
        self.processor
            .store()
            .update(|cfg| {
                if let Some(i) = cfg.instances.values_mut().next() {
                    i.admin_state = state;
                }
                Ok(())
            })
            .expect("a test config update succeeds");
    }

    /// Two nodes and one instance (`inst1`, one disk, one NIC), stopped,
    /// its disks inactive.
    pub fn with_stopped_instance(tag: &str) -> TestCluster {
        let mut cfg = crate::config::test_support::generated(2, 1);
        if let Some(inst) = cfg.instances.values_mut().next() {
            inst.admin_state = crate::config::objects::AdminState::Down;
            inst.disks_active = false;
        }
        TestCluster::with_config(tag, cfg)
    }

    /// `nodes` nodes, `instances` instances ([`crate::config::test_support::generated`]).
    pub fn new(tag: &str, nodes: usize, instances: usize) -> TestCluster {
        Self::with_config(
            tag,
            crate::config::test_support::generated(nodes, instances),
        )
    }

    /// The current config.
    pub fn config(&self) -> std::sync::Arc<crate::config::objects::ConfigData> {
        self.processor.store().snapshot()
    }

    /// Adds a line to the virtual cluster's shared hosts file.
    pub fn add_host(&self, ip: &str, name: &str) {
        let hosts = self.dir.join("hosts");
        let mut text = std::fs::read_to_string(&hosts).unwrap_or_default();
        text.push_str(&format!("{ip}\t{name}\n"));
        crate::sys::fs::atomic_write(&hosts, text.as_bytes(), 0o644).expect("hosts writable");
    }

    /// Writes `production` (a path as on a real node) under the master's root.
    pub fn write_file(&self, production: &str, data: &[u8], mode: u32) {
        let p = self.paths.under_root(production);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("temp dir is writable");
        }
        crate::sys::fs::atomic_write(&p, data, mode).expect("temp file writable");
    }

    /// Runs `op` through its logical unit.
    pub fn run(
        &self,
        op: impl Into<crate::opcodes::OpCode>,
    ) -> (crate::cmdlib::OpOutcome, Vec<String>) {
        let op = op.into();
        match crate::cmdlib::logical_unit_for(&op) {
            Ok(lu) => self.run_lu(&op, lu),
            Err(e) => (crate::cmdlib::OpOutcome::Failed(e), Vec::new()),
        }
    }

    /// Runs `op` through the given logical unit.
    pub fn run_lu(
        &self,
        op: &crate::opcodes::OpCode,
        lu: Box<dyn crate::cmdlib::LogicalUnit>,
    ) -> (crate::cmdlib::OpOutcome, Vec<String>) {
        let mut log = Vec::new();
        let out = self.processor.execute_lu(
            crate::locking::OwnerId(7),
            op,
            lu,
            crate::locking::Priority::default(),
            crate::locking::retry::WhenExhausted::Block,
            &mut |l| log.push(l),
            &mut || {},
        );
        (out, log)
    }
}
