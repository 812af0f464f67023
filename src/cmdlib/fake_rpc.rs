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
