//! The job as data: ids, statuses, log entries, and the job file format.
//!
//! A job file (`queue/job-<id>`) is one JSON object with the same keys and
//! value shapes as Ganeti 3.0's (`_QueuedJob.Serialize` and
//! `_QueuedOpCode.Serialize` in Ganeti's `jqueue`), so Ganeti's tools can read
//! our queue and we can read theirs. Timestamps are `[seconds, microseconds]`
//! pairs and log entries `[serial, timestamp, type, message]` arrays, as
//! there. Opcode inputs stay opaque JSON here: the typed opcodes live in
//! `opcodes`, and the queue only needs `OP_ID`, `priority` and `depends`.
//!
//! Nothing in this file does I/O; see `committer.rs` for how files are
//! written.

use crate::locking::Priority;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::fmt;

/// A job's number, unique and increasing over the life of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The status of a whole job (Ganeti's `JOB_STATUS_*`), derived from the
/// statuses of its opcodes by [`QueuedJob::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Submitted; no opcode has started.
    Queued,
    /// An opcode waits for its dependencies or its locks.
    Waiting,
    /// Cancellation was asked for and will take effect at the next step.
    Canceling,
    /// An opcode is executing.
    Running,
    /// Canceled before it ran to the end (final).
    Canceled,
    /// Every opcode succeeded (final).
    Success,
    /// An opcode failed (final).
    Error,
}

impl JobStatus {
    /// Ganeti's wire string, e.g. `"queued"`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Waiting => "waiting",
            JobStatus::Canceling => "canceling",
            JobStatus::Running => "running",
            JobStatus::Canceled => "canceled",
            JobStatus::Success => "success",
            JobStatus::Error => "error",
        }
    }

    /// Whether the job can no longer change (`JOBS_FINALIZED`).
    pub fn is_finalized(self) -> bool {
        matches!(
            self,
            JobStatus::Canceled | JobStatus::Success | JobStatus::Error
        )
    }

    /// Parses a wire string.
    pub fn parse(s: &str) -> Option<JobStatus> {
        Some(match s {
            "queued" => JobStatus::Queued,
            "waiting" => JobStatus::Waiting,
            "canceling" => JobStatus::Canceling,
            "running" => JobStatus::Running,
            "canceled" => JobStatus::Canceled,
            "success" => JobStatus::Success,
            "error" => JobStatus::Error,
            _ => return None,
        })
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status of one opcode of a job (Ganeti's `OP_STATUS_*`; the same
/// strings as [`JobStatus`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpStatus {
    /// Not started.
    Queued,
    /// Waiting for dependencies or locks; nothing executed yet.
    Waiting,
    /// Will be canceled at the next step.
    Canceling,
    /// Executing.
    Running,
    /// Canceled (final).
    Canceled,
    /// Succeeded (final).
    Success,
    /// Failed (final).
    Error,
}

impl OpStatus {
    /// Whether the opcode can no longer change (`OPS_FINALIZED`).
    pub fn is_finalized(self) -> bool {
        matches!(
            self,
            OpStatus::Canceled | OpStatus::Success | OpStatus::Error
        )
    }

    /// Ganeti's wire string, e.g. `"running"`.
    pub fn as_str(self) -> &'static str {
        match self {
            OpStatus::Queued => "queued",
            OpStatus::Waiting => "waiting",
            OpStatus::Canceling => "canceling",
            OpStatus::Running => "running",
            OpStatus::Canceled => "canceled",
            OpStatus::Success => "success",
            OpStatus::Error => "error",
        }
    }
}

/// A wall-clock instant as Ganeti stores it: `[seconds, microseconds]`
/// since the epoch (`utils.SplitTime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Timestamp(pub i64, pub i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Timestamp {
        Timestamp::from_secs(crate::sys::time::now_secs())
    }

    /// Splits float seconds into whole seconds and microseconds.
    pub fn from_secs(secs: f64) -> Timestamp {
        #[allow(clippy::cast_possible_truncation)] // microseconds since 1970 fit in i64
        let micros = (secs * 1_000_000.0) as i64;
        Timestamp(micros.div_euclid(1_000_000), micros.rem_euclid(1_000_000))
    }

    /// Float seconds since the epoch.
    #[allow(clippy::cast_precision_loss)] // float seconds are Ganeti's own form
    pub fn as_secs(self) -> f64 {
        self.0 as f64 + self.1 as f64 / 1_000_000.0
    }
}

/// The kind of a job log entry (Ganeti's `ELOG_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LogType {
    /// A plain message for the user (`"message"`).
    #[serde(rename = "message")]
    Message,
    /// Information for a remote import (`"remote-import"`).
    #[serde(rename = "remote-import")]
    RemoteImport,
    /// Used by Ganeti's job queue tests (`"jqueue-test"`).
    #[serde(rename = "jqueue-test")]
    JqueueTest,
    /// Emitted by `OP_TEST_DELAY` (`"delay-test"`).
    #[serde(rename = "delay-test")]
    DelayTest,
}

/// One line of a job's log: `[serial, timestamp, type, message]`.
///
/// Serials count up from 1 across all opcodes of a job, so a client that
/// has seen serial `n` asks for entries above `n`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// Position in the job's log, from 1.
    pub serial: u64,
    /// When the entry was written.
    pub timestamp: Timestamp,
    /// What kind of entry this is.
    pub log_type: LogType,
    /// The message; a string for [`LogType::Message`], any JSON otherwise.
    pub message: Value,
}

impl Serialize for LogEntry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (self.serial, self.timestamp, self.log_type, &self.message).serialize(s)
    }
}

impl<'de> Deserialize<'de> for LogEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (serial, timestamp, log_type, message) =
            <(u64, Timestamp, LogType, Value)>::deserialize(d)?;
        Ok(LogEntry {
            serial,
            timestamp,
            log_type,
            message,
        })
    }
}

/// The opcode priority as stored in job files: a plain integer.
mod priority_serde {
    use super::Priority;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(p: &Priority, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i32(p.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Priority, D::Error> {
        Ok(Priority(i32::deserialize(d)?))
    }
}

fn default_priority() -> Priority {
    Priority::NORMAL
}

/// One opcode of a job with its execution state (`_QueuedOpCode`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedOp {
    /// The opcode as submitted, with `depends` rewritten to absolute ids.
    pub input: Value,
    /// Where the opcode is in its life.
    pub status: OpStatus,
    /// The opcode's return value on success; an encoded error
    /// ([`encode_error`]) on failure; a message when canceled.
    pub result: Value,
    /// Log entries written while it ran.
    pub log: Vec<LogEntry>,
    /// When the job processor first picked it up.
    #[serde(default)]
    pub start_timestamp: Option<Timestamp>,
    /// When it started executing.
    #[serde(default)]
    pub exec_timestamp: Option<Timestamp>,
    /// When it reached a final status.
    #[serde(default)]
    pub end_timestamp: Option<Timestamp>,
    /// Current priority; starts as the input's `priority` and may be raised
    /// while the opcode waits for locks, or changed by `ChangeJobPriority`.
    #[serde(default = "default_priority", with = "priority_serde")]
    pub priority: Priority,
}

impl QueuedOp {
    /// A fresh, queued opcode. Its priority is the input's `priority` field
    /// if it has one, else `default`.
    pub fn new(input: Value, default: Priority) -> QueuedOp {
        let priority = input_priority(&input).unwrap_or(default);
        QueuedOp {
            input,
            status: OpStatus::Queued,
            result: Value::Null,
            log: Vec::new(),
            start_timestamp: None,
            exec_timestamp: None,
            end_timestamp: None,
            priority,
        }
    }

    /// The opcode's `OP_ID` (e.g. `"OP_TEST_DELAY"`), if the input has one.
    pub fn op_id(&self) -> Option<&str> {
        op_id(&self.input)
    }
}

/// The `OP_ID` of an opcode input.
pub fn op_id(input: &Value) -> Option<&str> {
    input.get("OP_ID").and_then(Value::as_str)
}

/// The `priority` field of an opcode input, if present and an integer.
pub fn input_priority(input: &Value) -> Option<Priority> {
    input
        .get("priority")
        .and_then(Value::as_i64)
        .and_then(|p| i32::try_from(p).ok())
        .map(Priority)
}

/// One entry of an opcode's `depends` list: wait for `job` to end in one of
/// `statuses` (any final status when empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The job waited for; negative means relative to the submitting batch
    /// until resolved at submission (`-1` is the job submitted just before).
    pub job: i64,
    /// Acceptable final statuses.
    pub statuses: Vec<JobStatus>,
}

/// Reads the `depends` field of an opcode input
/// (`[[job_id, [status, …]], …]`, or absent/null for none).
pub fn dependencies(input: &Value) -> Result<Vec<Dependency>, String> {
    let list = match input.get("depends") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(l)) => l,
        Some(other) => return Err(format!("invalid 'depends' value {other}")),
    };
    let mut deps = Vec::with_capacity(list.len());
    for item in list {
        let bad = || format!("invalid dependency {item}");
        let pair = item.as_array().filter(|p| p.len() == 2).ok_or_else(bad)?;
        // Job ids also arrive as strings from some clients.
        let job = match &pair[0] {
            Value::Number(n) => n.as_i64().ok_or_else(bad)?,
            Value::String(s) => s.parse::<i64>().map_err(|_| bad())?,
            _ => return Err(bad()),
        };
        if job == 0 {
            return Err(bad());
        }
        let statuses = pair[1]
            .as_array()
            .ok_or_else(bad)?
            .iter()
            .map(|s| {
                s.as_str()
                    .and_then(JobStatus::parse)
                    .filter(|st| st.is_finalized())
                    .ok_or_else(bad)
            })
            .collect::<Result<Vec<_>, _>>()?;
        deps.push(Dependency { job, statuses });
    }
    Ok(deps)
}

/// Rewrites the `depends` field of `input` to `deps` (after relative ids
/// were resolved).
pub fn set_dependencies(input: &mut Value, deps: &[Dependency]) {
    if let Some(obj) = input.as_object_mut() {
        let list = deps
            .iter()
            .map(|d| {
                Value::Array(vec![
                    Value::from(d.job),
                    Value::Array(d.statuses.iter().map(|s| Value::from(s.as_str())).collect()),
                ])
            })
            .collect();
        obj.insert("depends".to_string(), Value::Array(list));
    }
}

/// Encodes an error the way Ganeti's job results carry one:
/// `[class name, [message]]` (`errors.EncodeException`), e.g.
/// `["OpExecError", ["Preceding opcode failed"]]`.
pub fn encode_error(class: &str, message: &str) -> Value {
    Value::Array(vec![
        Value::from(class),
        Value::Array(vec![Value::from(message)]),
    ])
}

/// A job: its opcodes and timestamps (`_QueuedJob`). The job file is this
/// struct serialized; the key order matches Ganeti's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedJob {
    /// The job's id.
    pub id: JobId,
    /// Its opcodes, run in order.
    pub ops: Vec<QueuedOp>,
    /// When the first opcode was picked up.
    #[serde(default)]
    pub start_timestamp: Option<Timestamp>,
    /// When the job reached a final status.
    #[serde(default)]
    pub end_timestamp: Option<Timestamp>,
    /// When the job was submitted.
    #[serde(default)]
    pub received_timestamp: Option<Timestamp>,
    /// Ganeti's per-job process lock file; we run jobs in threads and leave
    /// it null, but keep what a Ganeti-written file holds.
    #[serde(default)]
    pub livelock: Option<String>,
    /// Ganeti's per-job process id; null for us, kept if read.
    #[serde(default)]
    pub process_id: Option<i64>,
}

/// Why a job file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JobFileError {
    /// The bytes are not a job in Ganeti's format.
    #[error("job file is not valid")]
    Parse(#[source] serde_json::Error),
    /// The job has no opcodes.
    #[error("job has no opcodes")]
    NoOps,
}

impl QueuedJob {
    /// A new job of queued opcodes, received now.
    pub fn new(id: JobId, ops: Vec<QueuedOp>) -> QueuedJob {
        QueuedJob {
            id,
            ops,
            start_timestamp: None,
            end_timestamp: None,
            received_timestamp: Some(Timestamp::now()),
            livelock: None,
            process_id: None,
        }
    }

    /// Parses a job file.
    pub fn from_json(data: &[u8]) -> Result<QueuedJob, JobFileError> {
        let job: QueuedJob = serde_json::from_slice(data).map_err(JobFileError::Parse)?;
        if job.ops.is_empty() {
            return Err(JobFileError::NoOps);
        }
        Ok(job)
    }

    /// The job file's content.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a job is plain JSON data and always serializes")
    }

    /// The job's status, computed from its opcodes as Ganeti does
    /// (`_QueuedJob.CalcStatus`): all succeeded → success; the first
    /// canceling, failed or canceled opcode decides; otherwise the last
    /// waiting or running opcode; otherwise queued.
    pub fn status(&self) -> JobStatus {
        let mut status = JobStatus::Queued;
        let mut all_success = true;
        for op in &self.ops {
            match op.status {
                OpStatus::Success => continue,
                OpStatus::Queued => {}
                OpStatus::Waiting => status = JobStatus::Waiting,
                OpStatus::Running => status = JobStatus::Running,
                OpStatus::Canceling => {
                    all_success = false;
                    status = JobStatus::Canceling;
                    break;
                }
                OpStatus::Error => {
                    all_success = false;
                    status = JobStatus::Error;
                    break;
                }
                OpStatus::Canceled => {
                    all_success = false;
                    status = JobStatus::Canceled;
                    break;
                }
            }
            all_success = false;
        }
        if all_success {
            JobStatus::Success
        } else {
            status
        }
    }

    /// The job's priority: the most urgent of its unfinished opcodes, or
    /// the default once all are done (`_QueuedJob.CalcPriority`).
    pub fn priority(&self) -> Priority {
        self.ops
            .iter()
            .filter(|op| !op.status.is_finalized())
            .map(|op| op.priority)
            .min()
            .unwrap_or(Priority::NORMAL)
    }

    /// The highest log serial written so far (0 when the log is empty).
    pub fn log_serial(&self) -> u64 {
        self.ops
            .iter()
            .flat_map(|op| op.log.iter())
            .map(|e| e.serial)
            .max()
            .unwrap_or(0)
    }

    /// Log entries with a serial above `newer_than` (all with `None`).
    pub fn log_entries_after(&self, newer_than: Option<u64>) -> Vec<LogEntry> {
        self.ops
            .iter()
            .flat_map(|op| op.log.iter())
            .filter(|e| newer_than.is_none_or(|n| e.serial > n))
            .cloned()
            .collect()
    }

    /// Gives every unfinished opcode `status` and `result`
    /// (`MarkUnfinishedOps`).
    pub fn mark_unfinished(&mut self, status: OpStatus, result: &Value) {
        for op in self.ops.iter_mut().filter(|op| !op.status.is_finalized()) {
            op.status = status;
            op.result = result.clone();
            if status.is_finalized() {
                op.end_timestamp = Some(Timestamp::now());
            }
        }
    }

    /// Index of the first opcode not yet finalized.
    pub fn next_op(&self) -> Option<usize> {
        self.ops.iter().position(|op| !op.status.is_finalized())
    }

    /// Appends a log entry to opcode `op`, with the next serial.
    pub fn append_log(&mut self, op: usize, log_type: LogType, message: Value) -> u64 {
        let serial = self.log_serial() + 1;
        if let Some(o) = self.ops.get_mut(op) {
            o.log.push(LogEntry {
                serial,
                timestamp: Timestamp::now(),
                log_type,
                message,
            });
        }
        serial
    }

    /// A one-line description per opcode: the `OP_ID` without `OP_`,
    /// lower-cased after Ganeti's `Summary()` (e.g. `TEST_DELAY`).
    pub fn summary(&self) -> Vec<String> {
        self.ops
            .iter()
            .map(|op| {
                op.op_id()
                    .map(|id| id.strip_prefix("OP_").unwrap_or(id).to_string())
                    .unwrap_or_else(|| "?".to_string())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job_with(statuses: &[OpStatus]) -> QueuedJob {
        let mut j = QueuedJob::new(
            JobId(1),
            statuses
                .iter()
                .map(|_| QueuedOp::new(json!({"OP_ID": "OP_TEST_DELAY"}), Priority::NORMAL))
                .collect(),
        );
        for (op, s) in j.ops.iter_mut().zip(statuses) {
            op.status = *s;
        }
        j
    }

    #[test]
    fn status_table_matches_ganeti() {
        use JobStatus as J;
        use OpStatus::*;
        let table: &[(&[OpStatus], JobStatus)] = &[
            (&[Queued], J::Queued),
            (&[Queued, Queued], J::Queued),
            (&[Success, Queued], J::Queued),
            (&[Success, Success], J::Success),
            (&[Waiting, Queued], J::Waiting),
            (&[Success, Running, Queued], J::Running),
            (&[Running, Waiting], J::Waiting), // the last one wins
            (&[Success, Error, Error], J::Error),
            (&[Error, Canceled], J::Error), // the first final one wins
            (&[Canceled, Canceled], J::Canceled),
            (&[Success, Canceling, Canceling], J::Canceling),
            (&[Running, Canceling], J::Canceling),
        ];
        for (ops, want) in table {
            assert_eq!(job_with(ops).status(), *want, "{ops:?}");
        }
    }

    #[test]
    fn priority_is_most_urgent_unfinished() {
        let mut j = job_with(&[OpStatus::Success, OpStatus::Queued, OpStatus::Queued]);
        j.ops[0].priority = Priority::HIGH;
        j.ops[1].priority = Priority::LOW;
        j.ops[2].priority = Priority::NORMAL;
        assert_eq!(j.priority(), Priority::NORMAL);
        let done = job_with(&[OpStatus::Success]);
        assert_eq!(done.priority(), Priority::NORMAL);
    }

    #[test]
    fn op_priority_comes_from_input_or_default() {
        let op = QueuedOp::new(
            json!({"OP_ID": "OP_TEST_DELAY", "priority": -10}),
            Priority::LOW,
        );
        assert_eq!(op.priority, Priority::HIGH);
        let op = QueuedOp::new(json!({"OP_ID": "OP_TEST_DELAY"}), Priority::LOW);
        assert_eq!(op.priority, Priority::LOW);
        assert_eq!(op.op_id(), Some("OP_TEST_DELAY"));
    }

    #[test]
    fn job_file_has_ganetis_keys_in_order() {
        let mut j = QueuedJob::new(
            JobId(42),
            vec![QueuedOp::new(
                json!({"OP_ID": "OP_TEST_DELAY", "duration": 0.5}),
                Priority::NORMAL,
            )],
        );
        j.received_timestamp = Some(Timestamp(1_700_000_000, 123_456));
        j.ops[0].status = OpStatus::Success;
        j.ops[0].result = json!(true);
        j.ops[0].log.push(LogEntry {
            serial: 1,
            timestamp: Timestamp(1_700_000_001, 5),
            log_type: LogType::Message,
            message: json!("hello"),
        });
        let text = String::from_utf8(j.to_json()).unwrap();
        let golden = concat!(
            r#"{"id":42,"ops":[{"input":{"OP_ID":"OP_TEST_DELAY","duration":0.5},"#,
            r#""status":"success","result":true,"log":[[1,[1700000001,5],"message","hello"]],"#,
            r#""start_timestamp":null,"exec_timestamp":null,"end_timestamp":null,"priority":0}],"#,
            r#""start_timestamp":null,"end_timestamp":null,"#,
            r#""received_timestamp":[1700000000,123456],"livelock":null,"process_id":null}"#
        );
        assert_eq!(text, golden);
        let back = QueuedJob::from_json(text.as_bytes()).unwrap();
        assert_eq!(back, j);
        assert_eq!(back.log_serial(), 1);
    }

    #[test]
    fn reads_a_job_file_written_by_ganeti() {
        // Shaped as Ganeti 3.0 writes it: missing optional keys, string
        // opcode fields, a canceled second opcode.
        let text = r#"{"id": 7, "ops": [
            {"input": {"OP_ID": "OP_TEST_DELAY", "duration": 1.0, "priority": 0,
                       "depends": [[5, ["success"]]]},
             "status": "error", "result": ["OpExecError", ["boom"]],
             "log": [[1, [1600000000, 1], "message", "x"], [2, [1600000000, 2], "delay-test", "y"]],
             "start_timestamp": [1600000000, 0], "exec_timestamp": null,
             "end_timestamp": [1600000001, 0], "priority": -10},
            {"input": {"OP_ID": "OP_TEST_DELAY"}, "status": "error", "result": null,
             "log": [], "priority": 0}],
            "start_timestamp": [1600000000, 0], "end_timestamp": [1600000001, 0],
            "received_timestamp": [1599999999, 999999]}"#;
        let j = QueuedJob::from_json(text.as_bytes()).unwrap();
        assert_eq!(j.id, JobId(7));
        assert_eq!(j.status(), JobStatus::Error);
        assert_eq!(j.log_serial(), 2);
        assert_eq!(j.log_entries_after(Some(1)).len(), 1);
        assert_eq!(
            dependencies(&j.ops[0].input).unwrap(),
            vec![Dependency {
                job: 5,
                statuses: vec![JobStatus::Success]
            }]
        );
    }

    #[test]
    fn corrupt_files_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"{",
            b"[]",
            b"{\"id\": 1, \"ops\": []}",
            b"\xff\xfe",
        ] {
            assert!(QueuedJob::from_json(bad).is_err());
        }
    }

    #[test]
    fn dependencies_parse_and_rewrite() {
        let mut input =
            json!({"OP_ID": "OP_TEST_DELAY", "depends": [[-1, []], ["12", ["error", "canceled"]]]});
        let deps = dependencies(&input).unwrap();
        assert_eq!(deps[0].job, -1);
        assert_eq!(
            deps[1].statuses,
            vec![JobStatus::Error, JobStatus::Canceled]
        );
        let resolved = vec![
            Dependency {
                job: 3,
                statuses: vec![],
            },
            deps[1].clone(),
        ];
        set_dependencies(&mut input, &resolved);
        assert_eq!(
            input["depends"],
            json!([[3, []], [12, ["error", "canceled"]]])
        );
        assert!(dependencies(&json!({"depends": [[1, ["running"]]]})).is_err());
        assert!(dependencies(&json!({"depends": 3})).is_err());
    }

    #[test]
    fn timestamps_split_like_ganeti() {
        let t = Timestamp::from_secs(1_700_000_000.25);
        assert_eq!(t, Timestamp(1_700_000_000, 250_000));
        assert!((t.as_secs() - 1_700_000_000.25).abs() < 1e-6);
    }
}
