//! Node side of the hypervisor procedures (instance_start, …, migration): parses nothing (noded already
//! did), calls [`crate::hv`], and answers in the `rpc::proto` types.

use crate::paths::Paths;
use serde_json::Value;

/// Runs `procedure` if it is one of this module's; `None` otherwise.
/// Errors are the message for the RPC error reply.
pub fn handle(paths: &Paths, procedure: &str, args: Value) -> Option<Result<Value, String>> {
    let _ = (paths, procedure, args);
    None
}
