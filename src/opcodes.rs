//! Opcodes: one plain-data struct per Ganeti 3.0 operation, and [`OpCode`],
//! the tagged union that travels in jobs.
//!
//! Clients (`cli`, `daemons::rapi`) build opcodes and send them over LUXI;
//! masterd stores them in job files and hands each to its logical unit in
//! `cmdlib`. This module is data only: it parses, checks the shape of the
//! values and serializes. It never looks at the cluster config (whether an
//! instance exists is the logical unit's business).
//!
//! The wire form is Ganeti's: a JSON object with the opcode's `OP_ID` (e.g.
//! `"OP_INSTANCE_CREATE"`), its own parameters and the [`CommonParams`]
//! every opcode has, all at the same level. Parsing ([`OpCode::from_json`])
//! rejects unknown opcodes and unknown parameters, and names the parameter
//! whose value is wrong. Serializing ([`OpCode::to_json`]) writes every
//! parameter, with Ganeti's defaults filled in and `null` for unset optional
//! ones, which is what Ganeti's own clients send.
//!
//! Each noun has its own file ([`cluster`], [`node`], [`instance`], ...);
//! shared value types and checks are in [`params`]. The structs are declared
//! with the `opcode!` macro below, which also generates their parsing and
//! serialization, so a parameter's name, type, default and checks are
//! written once.

use crate::error::ErrorKind;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

pub use params::Dict;

/// Declares one opcode struct and its [`OpParams`] implementation.
///
/// Each parameter is `name: Type = required` or `name: Type = (default)`,
/// optionally followed by `, check fn_name` (a [`params::Check`]). A field
/// whose wire name is a Rust keyword is written `field_ ["wire"]: ...`.
macro_rules! opcode {
    (
        $(#[doc = $doc:literal])*
        $name:ident = $op_id:literal, summary: $dsc:tt {
            $(
                $(#[doc = $fdoc:literal])*
                $field:ident $([$wire:literal])? : $ty:ty = $default:tt $(, check $check:ident)* ;
            )*
        }
    ) => {
        $(#[doc = $doc])*
        #[doc = ""]
        #[doc = concat!("Wire name `", $op_id, "`.")]
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $(
                $(#[doc = $fdoc])*
                pub $field: $ty,
            )*
            /// The parameters every opcode has (priority, dependencies, ...).
            pub common: $crate::opcodes::CommonParams,
        }

        impl Default for $name {
            /// Ganeti's defaults; required parameters start empty and must
            /// be filled in before the opcode is valid.
            fn default() -> Self {
                $name {
                    $( $field: opcode!(@default $ty, $default), )*
                    common: $crate::opcodes::CommonParams::default(),
                }
            }
        }

        impl $crate::opcodes::OpParams for $name {
            const OP_ID: &'static str = $op_id;
            const PARAMS: &'static [&'static str] = &[$(opcode!(@wire $field $($wire)?)),*];
            const SUMMARY_FIELD: Option<&'static str> = opcode!(@summary $dsc);

            #[allow(unused_variables)]
            fn from_params(
                params: &mut $crate::opcodes::Dict,
            ) -> Result<Self, $crate::opcodes::OpcodeError> {
                Ok($name {
                    $(
                        $field: opcode!(@take params, $op_id, opcode!(@wire $field $($wire)?), $ty, $default,
                                        [$($crate::opcodes::params::$check),*]),
                    )*
                    common: $crate::opcodes::CommonParams::from_params($op_id, params)?,
                })
            }

            #[allow(unused_variables)]
            fn write_params(&self, out: &mut $crate::opcodes::Dict) {
                $( $crate::opcodes::put(out, opcode!(@wire $field $($wire)?), &self.$field); )*
                self.common.write_params(out);
            }

            fn common(&self) -> &$crate::opcodes::CommonParams {
                &self.common
            }

            fn common_mut(&mut self) -> &mut $crate::opcodes::CommonParams {
                &mut self.common
            }
        }
    };
    (@default $ty:ty, required) => { <$ty as Default>::default() };
    (@default $ty:ty, ($default:expr)) => { $default };
    (@wire $field:ident) => { stringify!($field) };
    (@wire $field:ident $wire:literal) => { $wire };
    (@summary -) => { None };
    (@summary $field:ident) => { Some(stringify!($field)) };
    (@take $params:ident, $op_id:literal, $wire:expr, $ty:ty, required, [$($check:path),*]) => {
        $crate::opcodes::take_required::<$ty>($params, $op_id, $wire, &[$($check),*])?
    };
    (@take $params:ident, $op_id:literal, $wire:expr, $ty:ty, ($default:expr), [$($check:path),*]) => {
        $crate::opcodes::take_or::<$ty>($params, $op_id, $wire, &[$($check),*], || $default)?
    };
}

/// Instance exports (`gnt-backup`).
pub mod backup;
/// Cluster-wide operations.
pub mod cluster;
/// Node group operations.
pub mod group;
/// Instance operations.
pub mod instance;
/// Network (IP pool) operations.
pub mod network;
/// Node operations, storage units and out-of-band commands.
pub mod node;
/// OS definitions and ExtStorage providers.
pub mod os;
/// Value types and checks shared by the opcodes' parameters.
pub mod params;
/// The generic query opcodes (query2).
pub mod query;
/// Tag operations.
pub mod tags;
/// Opcodes for testing the job queue, locking and allocators.
pub mod test;

pub use backup::*;
pub use cluster::*;
pub use group::*;
pub use instance::*;
pub use network::*;
pub use node::*;
pub use os::*;
pub use query::*;
pub use tags::*;
pub use test::*;

/// Lowest job priority (largest number).
pub const OP_PRIO_LOWEST: i64 = 19;
/// Highest job priority (smallest number).
pub const OP_PRIO_HIGHEST: i64 = -20;
/// "low" priority as offered to users.
pub const OP_PRIO_LOW: i64 = 10;
/// "normal" priority as offered to users.
pub const OP_PRIO_NORMAL: i64 = 0;
/// "high" priority as offered to users.
pub const OP_PRIO_HIGH: i64 = -10;
/// Priority of an opcode that does not say.
pub const OP_PRIO_DEFAULT: i64 = OP_PRIO_NORMAL;
/// Priorities a submitted opcode may carry; the whole
/// [`OP_PRIO_HIGHEST`]..=[`OP_PRIO_LOWEST`] range is for the queue's own
/// use (it lowers the priority of jobs waiting for locks).
pub const OP_PRIO_SUBMIT_VALID: [i64; 3] = [OP_PRIO_LOW, OP_PRIO_NORMAL, OP_PRIO_HIGH];

/// Names of the [`CommonParams`] fields on the wire.
pub const COMMON_PARAMS: [&str; 6] = [
    "dry_run",
    "debug_level",
    "priority",
    "depends",
    "comment",
    "reason",
];

/// Why an opcode could not be parsed or failed its checks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpcodeError {
    /// The opcode is not a JSON object.
    #[error("an opcode must be a JSON object, got {found}")]
    NotAnObject {
        /// What it was instead (JSON type name).
        found: &'static str,
    },
    /// The object has no `OP_ID`.
    #[error("opcode has no OP_ID")]
    MissingOpId,
    /// The `OP_ID` names no Ganeti 3.0 opcode.
    #[error("unknown opcode {op_id}")]
    UnknownOpId {
        /// The `OP_ID` as given (JSON text if it was not a string).
        op_id: String,
    },
    /// A parameter this opcode does not have.
    #[error("{op_id}: unknown parameter {param:?}")]
    UnknownParam {
        /// The opcode.
        op_id: String,
        /// The offending parameter name.
        param: String,
    },
    /// A required parameter is absent.
    #[error("{op_id}: missing required parameter {param:?}")]
    MissingParam {
        /// The opcode.
        op_id: String,
        /// The parameter.
        param: String,
    },
    /// A parameter's value has the wrong type or fails a check.
    #[error("{op_id}: parameter {param:?}: {reason}")]
    InvalidParam {
        /// The opcode.
        op_id: String,
        /// The parameter.
        param: String,
        /// What is wrong, including the expected type.
        reason: String,
    },
}

impl OpcodeError {
    /// The Ganeti error class: always invalid input.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Inval
    }
}

/// Parameters every opcode carries, next to its own on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct CommonParams {
    /// Only check the prerequisites, change nothing. Default: none (no).
    pub dry_run: Option<bool>,
    /// Verbosity of the logical unit's debug logging. Default: none (0).
    pub debug_level: Option<u64>,
    /// Job priority, one of [`OP_PRIO_SUBMIT_VALID`]; smaller runs first.
    /// Default: [`OP_PRIO_DEFAULT`].
    pub priority: i64,
    /// Jobs that must finish first, and the statuses they must end in.
    /// Default: none.
    pub depends: Option<Vec<params::JobDependency>>,
    /// Free-form comment on why the opcode runs. Default: none.
    pub comment: Option<String>,
    /// Reason trail: `[source, reason, timestamp_ns]` entries added by each
    /// component the opcode passes. Default: empty list.
    pub reason: Option<Vec<Value>>,
}

impl Default for CommonParams {
    fn default() -> Self {
        CommonParams {
            dry_run: None,
            debug_level: None,
            priority: OP_PRIO_DEFAULT,
            depends: None,
            comment: None,
            reason: Some(Vec::new()),
        }
    }
}

/// `priority` must be one of [`OP_PRIO_SUBMIT_VALID`].
fn submit_priority(v: &Value) -> Result<(), String> {
    match v.as_i64() {
        Some(p) if !OP_PRIO_SUBMIT_VALID.contains(&p) => Err(format!(
            "priority {p} is not one of {OP_PRIO_SUBMIT_VALID:?}"
        )),
        _ => Ok(()),
    }
}

impl CommonParams {
    /// Takes the common parameters out of `params`, filling in defaults.
    pub fn from_params(op_id: &'static str, params: &mut Dict) -> Result<Self, OpcodeError> {
        Ok(CommonParams {
            dry_run: take_or(params, op_id, "dry_run", &[], || None)?,
            debug_level: take_or(params, op_id, "debug_level", &[], || None)?,
            priority: take_or(params, op_id, "priority", &[submit_priority], || {
                OP_PRIO_DEFAULT
            })?,
            depends: take_or(
                params,
                op_id,
                "depends",
                &[params::job_dependencies],
                || None,
            )?,
            comment: take_or(params, op_id, "comment", &[], || None)?,
            reason: take_or(params, op_id, "reason", &[], || Some(Vec::new()))?,
        })
    }

    /// Writes the common parameters into `out`.
    pub fn write_params(&self, out: &mut Dict) {
        put(out, "dry_run", &self.dry_run);
        put(out, "debug_level", &self.debug_level);
        put(out, "priority", &self.priority);
        put(out, "depends", &self.depends);
        put(out, "comment", &self.comment);
        put(out, "reason", &self.reason);
    }
}

/// What every opcode struct provides; generated by the `opcode!` macro.
pub trait OpParams: Sized {
    /// Ganeti's `OP_ID`, e.g. `"OP_INSTANCE_CREATE"`.
    const OP_ID: &'static str;
    /// The opcode's own parameter names (without [`COMMON_PARAMS`]).
    const PARAMS: &'static [&'static str];
    /// The parameter shown in the summary, e.g. the instance name.
    const SUMMARY_FIELD: Option<&'static str>;
    /// Takes this opcode's parameters (own and common) out of `params`,
    /// filling in defaults. Keys it does not know are left behind.
    fn from_params(params: &mut Dict) -> Result<Self, OpcodeError>;
    /// Writes every parameter (own and common) into `out`.
    fn write_params(&self, out: &mut Dict);
    /// The common parameters.
    fn common(&self) -> &CommonParams;
    /// The common parameters, for changing them (e.g. adding to the reason).
    fn common_mut(&mut self) -> &mut CommonParams;
}

fn refused(op_id: &str, param: &str, reason: String) -> OpcodeError {
    OpcodeError::InvalidParam {
        op_id: op_id.to_owned(),
        param: param.to_owned(),
        reason,
    }
}

fn parse_param<T: DeserializeOwned>(
    op_id: &str,
    param: &str,
    value: Value,
    checks: &[params::Check],
) -> Result<T, OpcodeError> {
    for check in checks {
        check(&value).map_err(|reason| refused(op_id, param, reason))?;
    }
    serde_json::from_value(value).map_err(|e| refused(op_id, param, e.to_string()))
}

/// Removes and converts a required parameter (used by `opcode!`).
#[doc(hidden)]
pub fn take_required<T: DeserializeOwned>(
    params: &mut Dict,
    op_id: &str,
    param: &str,
    checks: &[params::Check],
) -> Result<T, OpcodeError> {
    match params.remove(param) {
        Some(value) => parse_param(op_id, param, value, checks),
        None => Err(OpcodeError::MissingParam {
            op_id: op_id.to_owned(),
            param: param.to_owned(),
        }),
    }
}

/// Removes and converts an optional parameter (used by `opcode!`).
#[doc(hidden)]
pub fn take_or<T: DeserializeOwned>(
    params: &mut Dict,
    op_id: &str,
    param: &str,
    checks: &[params::Check],
    default: impl FnOnce() -> T,
) -> Result<T, OpcodeError> {
    match params.remove(param) {
        Some(value) => parse_param(op_id, param, value, checks),
        None => Ok(default()),
    }
}

/// Writes one parameter (used by `opcode!`).
#[doc(hidden)]
pub fn put<T: Serialize>(out: &mut Dict, param: &str, value: &T) {
    // Our parameter types are plain JSON shapes with string map keys, which
    // serde_json always accepts.
    let value = serde_json::to_value(value).expect("opcode parameters always serialize to JSON");
    out.insert(param.to_owned(), value);
}

/// Parses `params` as opcode `T`, rejecting parameters `T` does not have.
fn parse_op<T: OpParams>(mut params: Dict) -> Result<T, OpcodeError> {
    if let Some(unknown) = params
        .keys()
        .find(|k| !T::PARAMS.contains(&k.as_str()) && !COMMON_PARAMS.contains(&k.as_str()))
    {
        return Err(OpcodeError::UnknownParam {
            op_id: T::OP_ID.to_owned(),
            param: unknown.clone(),
        });
    }
    T::from_params(&mut params)
}

/// Formats a summary value the way Ganeti's Python prints it (`str()`).
fn summary_text(v: &Value) -> String {
    match v {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => n
            .as_f64()
            .map_or_else(|| n.to_string(), |f| format!("{f:?}")),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => items.iter().map(summary_text).collect::<Vec<_>>().join(","),
        Value::Object(_) => v.to_string(),
    }
}

fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Declares [`OpCode`] and [`ALL_OP_IDS`] from the list of opcodes.
macro_rules! opcode_table {
    ( $( $variant:ident($module:ident :: $ty:ident) = $op_id:literal, )* ) => {
        /// Any Ganeti 3.0 opcode; on the wire, an object tagged by `OP_ID`.
        // A job holds a handful of opcodes, built once; boxing the large
        // variants (cluster modify, instance create) would only make
        // matching on them clumsier.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone, PartialEq)]
        pub enum OpCode {
            $(
                #[doc = concat!("`", $op_id, "`.")]
                $variant($module::$ty),
            )*
        }

        /// Every `OP_ID` Ganeti 3.0 knows, in Ganeti's order.
        pub const ALL_OP_IDS: [&str; 75] = [$($op_id),*];

        $(
            impl From<$module::$ty> for OpCode {
                fn from(op: $module::$ty) -> Self {
                    OpCode::$variant(op)
                }
            }
        )*

        impl OpCode {
            /// The opcode's `OP_ID`, e.g. `"OP_INSTANCE_CREATE"`.
            pub fn op_id(&self) -> &'static str {
                match self {
                    $(OpCode::$variant(_) => $op_id,)*
                }
            }

            /// The parameters every opcode has.
            pub fn common(&self) -> &CommonParams {
                match self {
                    $(OpCode::$variant(op) => &op.common,)*
                }
            }

            /// The parameters every opcode has, for changing them.
            pub fn common_mut(&mut self) -> &mut CommonParams {
                match self {
                    $(OpCode::$variant(op) => &mut op.common,)*
                }
            }

            fn summary_field(&self) -> Option<&'static str> {
                match self {
                    $(OpCode::$variant(_) => <$module::$ty as OpParams>::SUMMARY_FIELD,)*
                }
            }

            fn write_params(&self, out: &mut Dict) {
                match self {
                    $(OpCode::$variant(op) => op.write_params(out),)*
                }
            }

            fn from_params(op_id: &str, params: Dict) -> Result<OpCode, OpcodeError> {
                $(
                    if op_id == $op_id {
                        return parse_op::<$module::$ty>(params).map(OpCode::$variant);
                    }
                )*
                Err(OpcodeError::UnknownOpId { op_id: op_id.to_owned() })
            }
        }
    };
}

opcode_table! {
    ClusterPostInit(cluster::OpClusterPostInit) = "OP_CLUSTER_POST_INIT",
    ClusterDestroy(cluster::OpClusterDestroy) = "OP_CLUSTER_DESTROY",
    ClusterQuery(cluster::OpClusterQuery) = "OP_CLUSTER_QUERY",
    ClusterVerify(cluster::OpClusterVerify) = "OP_CLUSTER_VERIFY",
    ClusterVerifyConfig(cluster::OpClusterVerifyConfig) = "OP_CLUSTER_VERIFY_CONFIG",
    ClusterVerifyGroup(cluster::OpClusterVerifyGroup) = "OP_CLUSTER_VERIFY_GROUP",
    ClusterVerifyDisks(cluster::OpClusterVerifyDisks) = "OP_CLUSTER_VERIFY_DISKS",
    GroupVerifyDisks(group::OpGroupVerifyDisks) = "OP_GROUP_VERIFY_DISKS",
    ClusterRepairDiskSizes(cluster::OpClusterRepairDiskSizes) = "OP_CLUSTER_REPAIR_DISK_SIZES",
    ClusterConfigQuery(cluster::OpClusterConfigQuery) = "OP_CLUSTER_CONFIG_QUERY",
    ClusterRename(cluster::OpClusterRename) = "OP_CLUSTER_RENAME",
    ClusterSetParams(cluster::OpClusterSetParams) = "OP_CLUSTER_SET_PARAMS",
    ClusterRedistConf(cluster::OpClusterRedistConf) = "OP_CLUSTER_REDIST_CONF",
    ClusterActivateMasterIp(cluster::OpClusterActivateMasterIp) = "OP_CLUSTER_ACTIVATE_MASTER_IP",
    ClusterDeactivateMasterIp(cluster::OpClusterDeactivateMasterIp) = "OP_CLUSTER_DEACTIVATE_MASTER_IP",
    ClusterRenewCrypto(cluster::OpClusterRenewCrypto) = "OP_CLUSTER_RENEW_CRYPTO",
    Query(query::OpQuery) = "OP_QUERY",
    QueryFields(query::OpQueryFields) = "OP_QUERY_FIELDS",
    OobCommand(node::OpOobCommand) = "OP_OOB_COMMAND",
    RestrictedCommand(node::OpRestrictedCommand) = "OP_RESTRICTED_COMMAND",
    NodeRemove(node::OpNodeRemove) = "OP_NODE_REMOVE",
    NodeAdd(node::OpNodeAdd) = "OP_NODE_ADD",
    NodeQueryvols(node::OpNodeQueryvols) = "OP_NODE_QUERYVOLS",
    NodeQueryStorage(node::OpNodeQueryStorage) = "OP_NODE_QUERY_STORAGE",
    NodeModifyStorage(node::OpNodeModifyStorage) = "OP_NODE_MODIFY_STORAGE",
    RepairNodeStorage(node::OpRepairNodeStorage) = "OP_REPAIR_NODE_STORAGE",
    NodeSetParams(node::OpNodeSetParams) = "OP_NODE_SET_PARAMS",
    NodePowercycle(node::OpNodePowercycle) = "OP_NODE_POWERCYCLE",
    NodeMigrate(node::OpNodeMigrate) = "OP_NODE_MIGRATE",
    NodeEvacuate(node::OpNodeEvacuate) = "OP_NODE_EVACUATE",
    InstanceCreate(instance::OpInstanceCreate) = "OP_INSTANCE_CREATE",
    InstanceMultiAlloc(instance::OpInstanceMultiAlloc) = "OP_INSTANCE_MULTI_ALLOC",
    InstanceReinstall(instance::OpInstanceReinstall) = "OP_INSTANCE_REINSTALL",
    InstanceRemove(instance::OpInstanceRemove) = "OP_INSTANCE_REMOVE",
    InstanceRename(instance::OpInstanceRename) = "OP_INSTANCE_RENAME",
    InstanceStartup(instance::OpInstanceStartup) = "OP_INSTANCE_STARTUP",
    InstanceShutdown(instance::OpInstanceShutdown) = "OP_INSTANCE_SHUTDOWN",
    InstanceReboot(instance::OpInstanceReboot) = "OP_INSTANCE_REBOOT",
    InstanceReplaceDisks(instance::OpInstanceReplaceDisks) = "OP_INSTANCE_REPLACE_DISKS",
    InstanceFailover(instance::OpInstanceFailover) = "OP_INSTANCE_FAILOVER",
    InstanceMigrate(instance::OpInstanceMigrate) = "OP_INSTANCE_MIGRATE",
    InstanceMove(instance::OpInstanceMove) = "OP_INSTANCE_MOVE",
    InstanceConsole(instance::OpInstanceConsole) = "OP_INSTANCE_CONSOLE",
    InstanceActivateDisks(instance::OpInstanceActivateDisks) = "OP_INSTANCE_ACTIVATE_DISKS",
    InstanceDeactivateDisks(instance::OpInstanceDeactivateDisks) = "OP_INSTANCE_DEACTIVATE_DISKS",
    InstanceRecreateDisks(instance::OpInstanceRecreateDisks) = "OP_INSTANCE_RECREATE_DISKS",
    InstanceQueryData(instance::OpInstanceQueryData) = "OP_INSTANCE_QUERY_DATA",
    InstanceSetParams(instance::OpInstanceSetParams) = "OP_INSTANCE_SET_PARAMS",
    InstanceGrowDisk(instance::OpInstanceGrowDisk) = "OP_INSTANCE_GROW_DISK",
    InstanceChangeGroup(instance::OpInstanceChangeGroup) = "OP_INSTANCE_CHANGE_GROUP",
    GroupAdd(group::OpGroupAdd) = "OP_GROUP_ADD",
    GroupAssignNodes(group::OpGroupAssignNodes) = "OP_GROUP_ASSIGN_NODES",
    GroupSetParams(group::OpGroupSetParams) = "OP_GROUP_SET_PARAMS",
    GroupRemove(group::OpGroupRemove) = "OP_GROUP_REMOVE",
    GroupRename(group::OpGroupRename) = "OP_GROUP_RENAME",
    GroupEvacuate(group::OpGroupEvacuate) = "OP_GROUP_EVACUATE",
    OsDiagnose(os::OpOsDiagnose) = "OP_OS_DIAGNOSE",
    ExtStorageDiagnose(os::OpExtStorageDiagnose) = "OP_EXT_STORAGE_DIAGNOSE",
    BackupPrepare(backup::OpBackupPrepare) = "OP_BACKUP_PREPARE",
    BackupExport(backup::OpBackupExport) = "OP_BACKUP_EXPORT",
    BackupRemove(backup::OpBackupRemove) = "OP_BACKUP_REMOVE",
    TagsGet(tags::OpTagsGet) = "OP_TAGS_GET",
    TagsSearch(tags::OpTagsSearch) = "OP_TAGS_SEARCH",
    TagsSet(tags::OpTagsSet) = "OP_TAGS_SET",
    TagsDel(tags::OpTagsDel) = "OP_TAGS_DEL",
    TestDelay(test::OpTestDelay) = "OP_TEST_DELAY",
    TestAllocator(test::OpTestAllocator) = "OP_TEST_ALLOCATOR",
    TestJqueue(test::OpTestJqueue) = "OP_TEST_JQUEUE",
    TestOsParams(test::OpTestOsParams) = "OP_TEST_OS_PARAMS",
    TestDummy(test::OpTestDummy) = "OP_TEST_DUMMY",
    NetworkAdd(network::OpNetworkAdd) = "OP_NETWORK_ADD",
    NetworkRemove(network::OpNetworkRemove) = "OP_NETWORK_REMOVE",
    NetworkSetParams(network::OpNetworkSetParams) = "OP_NETWORK_SET_PARAMS",
    NetworkConnect(network::OpNetworkConnect) = "OP_NETWORK_CONNECT",
    NetworkDisconnect(network::OpNetworkDisconnect) = "OP_NETWORK_DISCONNECT",
}

impl OpCode {
    /// Parses Ganeti's wire form, checking every parameter.
    pub fn from_json(value: &Value) -> Result<OpCode, OpcodeError> {
        let Value::Object(obj) = value else {
            return Err(OpcodeError::NotAnObject {
                found: json_type_name(value),
            });
        };
        let op_id = match obj.get("OP_ID") {
            None => return Err(OpcodeError::MissingOpId),
            Some(Value::String(s)) => s.as_str(),
            Some(other) => {
                return Err(OpcodeError::UnknownOpId {
                    op_id: other.to_string(),
                })
            }
        };
        let mut params = obj.clone();
        params.remove("OP_ID");
        OpCode::from_params(op_id, params)
    }

    /// The wire form: `OP_ID` plus every parameter, defaults included.
    pub fn to_json(&self) -> Value {
        let mut out = Dict::new();
        out.insert("OP_ID".to_owned(), Value::String(self.op_id().to_owned()));
        self.write_params(&mut out);
        Value::Object(out)
    }

    /// Checks an opcode built in Rust the way [`OpCode::from_json`] checks
    /// one from the wire (required values present, values in range).
    pub fn validate(&self) -> Result<(), OpcodeError> {
        OpCode::from_json(&self.to_json()).map(|_| ())
    }

    /// One-line description as Ganeti shows it in job listings: the
    /// `OP_ID` without `OP_`, plus the key parameter in parentheses, e.g.
    /// `INSTANCE_CREATE(inst1.example.com)`.
    pub fn summary(&self) -> String {
        let name = self.op_id().trim_start_matches("OP_");
        match self.summary_field() {
            None => name.to_owned(),
            Some(field) => {
                let json = self.to_json();
                let value = json.get(field).unwrap_or(&Value::Null);
                format!("{name}({})", summary_text(value))
            }
        }
    }

    /// The shortest form of the name, with Ganeti's abbreviations
    /// (`C_`, `G_`, `N_`, `I_`), e.g. `I_CREATE`.
    pub fn tiny_summary(&self) -> String {
        let name = self.op_id().trim_start_matches("OP_");
        const PREFIXES: [(&str, &str); 4] = [
            ("CLUSTER_", "C_"),
            ("GROUP_", "G_"),
            ("NODE_", "N_"),
            ("INSTANCE_", "I_"),
        ];
        for (long, short) in PREFIXES {
            if let Some(rest) = name.strip_prefix(long) {
                return format!("{short}{rest}");
            }
        }
        name.to_owned()
    }
}

impl Serialize for OpCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for OpCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        OpCode::from_json(&value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::PathBuf;

    /// One golden file per opcode, written by a script running Ganeti 3.0's
    /// Python: `minimal` is the opcode with only its required parameters,
    /// `ganeti` is what `OpXxx(**minimal).__getstate__()` returned, and
    /// `summary` is Ganeti's `Summary()`. They are Ganeti's output, so there
    /// is no update mode: a difference is a bug on our side.
    fn golden(op_id: &str) -> Value {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden/opcodes")
            .join(format!("{op_id}.json"));
        let text = std::fs::read_to_string(&path).expect("golden file readable");
        serde_json::from_str(&text).expect("golden file is JSON")
    }

    fn parse(v: Value) -> Result<OpCode, OpcodeError> {
        OpCode::from_json(&v)
    }

    #[test]
    fn op_ids_are_unique_and_complete() {
        let mut ids = ALL_OP_IDS.to_vec();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 75);
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/opcodes");
        let files = std::fs::read_dir(dir).expect("golden dir").count();
        assert_eq!(files, ALL_OP_IDS.len(), "one golden file per opcode");
    }

    #[test]
    fn minimal_opcodes_serialize_like_ganeti() {
        for op_id in ALL_OP_IDS {
            let g = golden(op_id);
            let op = parse(g["minimal"].clone()).unwrap_or_else(|e| panic!("{op_id}: {e}"));
            assert_eq!(op.op_id(), op_id);
            assert_eq!(
                op.to_json(),
                g["ganeti"],
                "{op_id}: to_json differs from Ganeti"
            );
            let again = parse(op.to_json()).unwrap_or_else(|e| panic!("{op_id}: {e}"));
            assert_eq!(again, op, "{op_id}: round trip");
            let from_ganeti = parse(g["ganeti"].clone()).unwrap_or_else(|e| panic!("{op_id}: {e}"));
            assert_eq!(from_ganeti, op, "{op_id}: Ganeti's full form");
            assert_eq!(op.summary(), g["summary"], "{op_id}: summary");
            op.validate().unwrap_or_else(|e| panic!("{op_id}: {e}"));
        }
    }

    #[test]
    fn serde_impls_use_the_wire_form() {
        let op: OpCode =
            serde_json::from_str(r#"{"OP_ID": "OP_TEST_DELAY", "duration": 2}"#).expect("parses");
        let OpCode::TestDelay(delay) = &op else {
            panic!("wrong variant: {op:?}");
        };
        assert_eq!(delay.duration, 2.0);
        assert!(delay.on_master);
        assert_eq!(serde_json::to_value(&op).expect("serializes"), op.to_json());
        let err = serde_json::from_str::<OpCode>(r#"{"OP_ID": "OP_NOPE"}"#).unwrap_err();
        assert!(err.to_string().contains("OP_NOPE"), "{err}");
    }

    #[test]
    fn unknown_parameter_is_named() {
        let err =
            parse(json!({"OP_ID": "OP_INSTANCE_STARTUP", "instance_name": "i1", "forse": true}))
                .unwrap_err();
        assert_eq!(
            err,
            OpcodeError::UnknownParam {
                op_id: "OP_INSTANCE_STARTUP".into(),
                param: "forse".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "OP_INSTANCE_STARTUP: unknown parameter \"forse\""
        );
        assert_eq!(err.kind(), ErrorKind::Inval);
        // A parameter of another opcode is unknown here too.
        let err = parse(json!({"OP_ID": "OP_CLUSTER_QUERY", "instance_name": "i1"})).unwrap_err();
        assert!(
            matches!(err, OpcodeError::UnknownParam { ref param, .. } if param == "instance_name")
        );
    }

    #[test]
    fn unknown_or_missing_op_id_is_refused() {
        let err = parse(json!({"OP_ID": "OP_INSTANCE_EXPLODE"})).unwrap_err();
        assert_eq!(err.to_string(), "unknown opcode OP_INSTANCE_EXPLODE");
        assert_eq!(
            parse(json!({"duration": 1})).unwrap_err(),
            OpcodeError::MissingOpId
        );
        assert!(matches!(
            parse(json!({"OP_ID": 7})).unwrap_err(),
            OpcodeError::UnknownOpId { .. }
        ));
        assert_eq!(
            parse(json!(["OP_TEST_DELAY"])).unwrap_err(),
            OpcodeError::NotAnObject { found: "a list" }
        );
    }

    #[test]
    fn wrong_type_names_parameter_and_expected_type() {
        let err = parse(json!({"OP_ID": "OP_TEST_DELAY", "duration": "soon"})).unwrap_err();
        let OpcodeError::InvalidParam {
            op_id,
            param,
            reason,
        } = &err
        else {
            panic!("wrong error: {err:?}");
        };
        assert_eq!(
            (op_id.as_str(), param.as_str()),
            ("OP_TEST_DELAY", "duration")
        );
        assert!(reason.contains("expected f64"), "{reason}");

        let err =
            parse(json!({"OP_ID": "OP_INSTANCE_STARTUP", "instance_name": "i1", "force": "yes"}))
                .unwrap_err();
        assert!(err.to_string().contains("\"force\""), "{err}");
        assert!(err.to_string().contains("expected a boolean"), "{err}");

        let err = parse(json!({"OP_ID": "OP_TAGS_GET", "kind": "planet"})).unwrap_err();
        assert!(err.to_string().contains("\"kind\""), "{err}");
        assert!(
            err.to_string().contains("nodegroup"),
            "lists the valid values: {err}"
        );
    }

    #[test]
    fn required_parameters_must_be_present_and_not_null() {
        let err = parse(json!({"OP_ID": "OP_INSTANCE_REMOVE"})).unwrap_err();
        assert_eq!(
            err,
            OpcodeError::MissingParam {
                op_id: "OP_INSTANCE_REMOVE".into(),
                param: "instance_name".into()
            }
        );
        let err = parse(json!({"OP_ID": "OP_INSTANCE_REMOVE", "instance_name": null})).unwrap_err();
        assert!(
            matches!(err, OpcodeError::InvalidParam { ref param, .. } if param == "instance_name")
        );
        // Ganeti types instance names as plain strings, but group names as
        // non-empty ones; we follow it.
        parse(json!({"OP_ID": "OP_INSTANCE_REMOVE", "instance_name": ""})).expect("as Ganeti");
        let err = parse(json!({"OP_ID": "OP_GROUP_REMOVE", "group_name": ""})).unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
    }

    #[test]
    fn test_delay_duration_must_be_positive() {
        for bad in [json!(0), json!(0.0), json!(-1.5)] {
            let err = parse(json!({"OP_ID": "OP_TEST_DELAY", "duration": bad})).unwrap_err();
            assert!(err.to_string().contains("greater than zero"), "{err}");
        }
        let op = OpCode::from(OpTestDelay::default());
        assert!(
            op.validate().is_err(),
            "a default duration of 0 is not valid"
        );
        let op = OpCode::from(OpTestDelay {
            duration: 0.5,
            ..Default::default()
        });
        op.validate().expect("valid");
        assert_eq!(op.summary(), "TEST_DELAY(0.5)");
        assert_eq!(op.tiny_summary(), "TEST_DELAY");
    }

    #[test]
    fn priority_must_be_a_submit_priority() {
        for ok in [OP_PRIO_HIGH, OP_PRIO_NORMAL, OP_PRIO_LOW] {
            let op = parse(json!({"OP_ID": "OP_CLUSTER_QUERY", "priority": ok})).expect("valid");
            assert_eq!(op.common().priority, ok);
        }
        for bad in [
            json!(5),
            json!(OP_PRIO_HIGHEST),
            json!(OP_PRIO_LOWEST),
            json!("high"),
        ] {
            let err = parse(json!({"OP_ID": "OP_CLUSTER_QUERY", "priority": bad})).unwrap_err();
            assert!(
                matches!(err, OpcodeError::InvalidParam { ref param, .. } if param == "priority")
            );
        }
        let op = parse(json!({"OP_ID": "OP_CLUSTER_QUERY"})).expect("valid");
        assert_eq!(op.common().priority, OP_PRIO_DEFAULT);
        assert_eq!(op.common().reason, Some(Vec::new()));
    }

    #[test]
    fn common_params_parse_and_round_trip() {
        let input = json!({
            "OP_ID": "OP_CLUSTER_VERIFY_CONFIG",
            "dry_run": true,
            "debug_level": 2,
            "depends": [[-1, ["success", "error"]], ["12", []]],
            "comment": "why not",
            "reason": [["gnt:client:gnt-cluster", "verify", 1_700_000_000_000_000_000_u64]],
        });
        let op = parse(input).expect("valid");
        let common = op.common();
        assert_eq!(common.dry_run, Some(true));
        assert_eq!(common.debug_level, Some(2));
        let deps = common.depends.as_ref().expect("depends");
        assert_eq!(deps[0].0, params::JobRef::Id(-1));
        assert_eq!(
            deps[0].1,
            vec![
                params::FinalizedJobStatus::Success,
                params::FinalizedJobStatus::Error
            ]
        );
        assert_eq!(deps[1].0, params::JobRef::Text("12".into()));
        assert_eq!(parse(op.to_json()).expect("round trip"), op);
        // `reason: null` is allowed by Ganeti and stays null.
        let op = parse(json!({"OP_ID": "OP_CLUSTER_QUERY", "reason": null})).expect("valid");
        assert_eq!(op.to_json()["reason"], Value::Null);

        for bad in [
            json!([["abc", []]]),
            json!([[1, ["bogus"]]]),
            json!([[1]]),
            json!(1),
        ] {
            let err = parse(json!({"OP_ID": "OP_CLUSTER_QUERY", "depends": bad})).unwrap_err();
            assert!(
                matches!(err, OpcodeError::InvalidParam { ref param, .. } if param == "depends")
            );
        }
    }

    #[test]
    fn keyword_parameter_uses_its_wire_name() {
        let op = parse(json!({"OP_ID": "OP_INSTANCE_QUERY_DATA", "static": true})).expect("valid");
        let OpCode::InstanceQueryData(q) = &op else {
            panic!("wrong variant");
        };
        assert!(q.static_);
        assert_eq!(op.to_json()["static"], json!(true));
        assert!(op.to_json().get("static_").is_none());
    }

    #[test]
    fn value_checks() {
        let create = json!({"OP_ID": "OP_INSTANCE_CREATE", "instance_name": "i1",
                            "disks": [{"size": 1024}], "disk_template": "plain",
                            "mode": "create", "nics": [{"mode": "bridged", "link": "br0"}]});
        let op = parse(create.clone()).expect("valid create");
        assert_eq!(op.summary(), "INSTANCE_CREATE(i1)");
        assert_eq!(op.tiny_summary(), "I_CREATE");

        let mut bad = create.clone();
        bad["nics"] = json!([{"colour": "red"}]);
        assert!(parse(bad).unwrap_err().to_string().contains("colour"));
        let mut bad = create.clone();
        bad["disk_template"] = json!("floppy");
        assert!(parse(bad).is_err());

        let multi = json!({"OP_ID": "OP_INSTANCE_MULTI_ALLOC", "instances": [create]});
        parse(multi).expect("valid multi-alloc");
        let multi = json!({"OP_ID": "OP_INSTANCE_MULTI_ALLOC",
                           "instances": [{"OP_ID": "OP_TEST_DELAY", "duration": 1}]});
        assert!(parse(multi)
            .unwrap_err()
            .to_string()
            .contains("OP_INSTANCE_CREATE"));

        let net =
            json!({"OP_ID": "OP_NETWORK_ADD", "network_name": "n1", "network": "10.0.0.0/33"});
        assert!(parse(net).is_err());
        let net = json!({"OP_ID": "OP_NETWORK_ADD", "network_name": "n1", "network": "10.0.0.0/8",
                         "gateway6": "2001:db8::1", "network6": "2001:db8::/64",
                         "add_reserved_ips": ["10.0.0.5"]});
        parse(net).expect("valid network");
        let net = json!({"OP_ID": "OP_NETWORK_ADD", "network_name": "n1", "network": "10.0.0.0/8",
                         "add_reserved_ips": ["10.0.0.500"]});
        assert!(parse(net).is_err());

        let grow = json!({"OP_ID": "OP_INSTANCE_GROW_DISK", "instance_name": "i1",
                          "disk": 16, "amount": 1});
        assert!(parse(grow).is_err(), "disk index must be below 16");

        let modify = json!({"OP_ID": "OP_INSTANCE_SET_PARAMS", "instance_name": "i1",
                            "disks": [["add", -1, {"size": 10}], ["remove", {}], [0, {"mode": "ro"}]]});
        parse(modify).expect("valid modifications");
        let modify = json!({"OP_ID": "OP_INSTANCE_SET_PARAMS", "instance_name": "i1",
                            "disks": [["explode", 0, {}]]});
        assert!(parse(modify).is_err());

        let verify = json!({"OP_ID": "OP_CLUSTER_VERIFY", "ignore_errors": ["ENODEN1"],
                            "skip_checks": ["nplusone_mem"]});
        parse(verify).expect("valid verify");
        let verify = json!({"OP_ID": "OP_CLUSTER_VERIFY", "ignore_errors": ["EWHATEVER"]});
        assert!(parse(verify).is_err());

        let set = json!({"OP_ID": "OP_CLUSTER_SET_PARAMS", "uid_pool": [[1000, 2000]],
                         "hidden_os": [["add", "debian"]],
                         "diskparams": {"drbd": {"resync-rate": 1024}}});
        let op = parse(set).expect("valid cluster modify");
        assert_eq!(parse(op.to_json()).expect("round trip"), op);
    }

    /// Small deterministic generator, so the mutation test needs no crate.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % (n as u64)).expect("below n fits usize")
        }
    }

    fn random_value(rng: &mut XorShift, depth: u32) -> Value {
        let choices = if depth > 2 { 6 } else { 8 };
        match rng.below(choices) {
            0 => Value::Null,
            1 => json!(rng.below(2) == 0),
            2 => json!(i64::try_from(rng.next() % 40).expect("small") - 20),
            3 => json!((rng.next() % 1000) as f64 / 7.0),
            4 => json!(["", "x", "drbd", "live", "10.0.0.1", "add", "ENODEN1"][rng.below(7)]),
            5 => json!(u64::MAX),
            6 => Value::Array(
                (0..rng.below(3))
                    .map(|_| random_value(rng, depth + 1))
                    .collect(),
            ),
            _ => {
                let mut m = Dict::new();
                for _ in 0..rng.below(3) {
                    let key = ["size", "mode", "link", "OP_ID", "x"][rng.below(5)];
                    m.insert(key.into(), random_value(rng, depth + 1));
                }
                Value::Object(m)
            }
        }
    }

    #[test]
    fn random_mutations_never_panic() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let goldens: Vec<Value> = ALL_OP_IDS
            .iter()
            .map(|id| golden(id)["ganeti"].clone())
            .collect();
        for _ in 0..20_000 {
            let mut v = goldens[rng.below(goldens.len())].clone();
            for _ in 0..=rng.below(3) {
                let Value::Object(m) = &mut v else { break };
                let keys: Vec<String> = m.keys().cloned().collect();
                let key = keys[rng.below(keys.len())].clone();
                match rng.below(4) {
                    0 => {
                        m.remove(&key);
                    }
                    1 => {
                        m.insert("bogus".into(), random_value(&mut rng, 0));
                    }
                    2 => {
                        m.insert(
                            "OP_ID".into(),
                            json!(ALL_OP_IDS[rng.below(ALL_OP_IDS.len())]),
                        );
                    }
                    _ => {
                        m.insert(key, random_value(&mut rng, 0));
                    }
                }
            }
            if rng.below(50) == 0 {
                v = random_value(&mut rng, 0);
            }
            if let Ok(op) = OpCode::from_json(&v) {
                let again = OpCode::from_json(&op.to_json()).expect("accepted opcodes re-parse");
                assert_eq!(again, op);
                let _ = op.summary();
            }
        }
    }
}
