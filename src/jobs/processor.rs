//! What a worker runs: the [`JobExecutor`] trait, and a test executor.
//!
//! The job queue drives a job opcode by opcode (statuses, timestamps, log,
//! persistence, dependencies); for the opcode itself it calls a
//! [`JobExecutor`]. masterd's executor will hand the opcode to its logical
//! unit in `cmdlib`; [`TestDelayExecutor`] implements `OP_TEST_DELAY` alone,
//! so the queue can be exercised end to end without a cluster.

use super::file::{encode_error, JobId, LogType};
use serde_json::Value;
use std::time::Duration;

/// How an opcode's execution ended.
#[derive(Debug, Clone, PartialEq)]
pub enum OpOutcome {
    /// It succeeded with this result.
    Success(Value),
    /// It failed; the value is an encoded error ([`encode_error`]).
    Failed(Value),
    /// It did not start for want of a resource (typically its locks) and
    /// should be retried later, its priority raised one step when
    /// `raise_priority` (design 2.3).
    Deferred {
        /// Whether to make the opcode one step more urgent.
        raise_priority: bool,
    },
}

/// Runs one opcode. Implemented by masterd's LU dispatcher and by test
/// executors; called from worker threads, possibly many at once.
pub trait JobExecutor: Send + Sync {
    /// Executes opcode `op_index` of job `job`, whose input is `input`.
    /// `feedback` appends a line to the job's log, visible to clients once
    /// it is durable. The opcode is `waiting` (for its locks) until the
    /// executor calls `locks_acquired`, then `running` (Ganeti's states).
    fn execute_op(
        &self,
        job: JobId,
        op_index: usize,
        input: &Value,
        feedback: &mut dyn FnMut(LogType, String),
        locks_acquired: &mut dyn FnMut(),
    ) -> OpOutcome;
}

/// Encodes a prerequisite failure as Ganeti does:
/// `["OpPrereqError", [message, error class]]`.
pub fn prereq_error(message: &str, kind: crate::error::ErrorKind) -> Value {
    let kind = serde_json::to_value(kind).unwrap_or(Value::Null);
    Value::Array(vec![
        Value::from("OpPrereqError"),
        Value::Array(vec![Value::from(message), kind]),
    ])
}

/// Runs `OP_TEST_DELAY` on the master: sleeps `duration` seconds
/// (`repeat` + 1 times when `repeat` is given) and logs each sleep. A
/// duration that is missing or not above zero is refused as Ganeti 3.0
/// refuses it. Any other opcode fails with "unsupported opcode".
#[derive(Debug, Default, Clone, Copy)]
pub struct TestDelayExecutor;

impl JobExecutor for TestDelayExecutor {
    fn execute_op(
        &self,
        _job: JobId,
        _op_index: usize,
        input: &Value,
        feedback: &mut dyn FnMut(LogType, String),
        locks_acquired: &mut dyn FnMut(),
    ) -> OpOutcome {
        locks_acquired();
        if super::file::op_id(input) != Some("OP_TEST_DELAY") {
            return OpOutcome::Failed(encode_error(
                "OpExecError",
                &format!(
                    "unsupported opcode {}",
                    super::file::op_id(input).unwrap_or("(no OP_ID)")
                ),
            ));
        }
        let duration = input.get("duration").and_then(Value::as_f64).unwrap_or(0.0);
        if duration.is_nan() || duration <= 0.0 {
            return OpOutcome::Failed(prereq_error(
                "Duration must be greater than zero",
                crate::error::ErrorKind::Inval,
            ));
        }
        let repeat = input.get("repeat").and_then(Value::as_u64).unwrap_or(0);
        let Ok(pause) = Duration::try_from_secs_f64(duration) else {
            return OpOutcome::Failed(prereq_error(
                "Duration is out of range",
                crate::error::ErrorKind::Inval,
            ));
        };
        for i in 0..=repeat {
            if repeat > 0 {
                feedback(
                    LogType::Message,
                    format!("Test delay iteration {}/{}", i + 1, repeat + 1),
                );
            }
            feedback(LogType::DelayTest, format!("sleeping {duration}s"));
            std::thread::sleep(pause);
        }
        OpOutcome::Success(Value::Null)
    }
}

/// Runs opcodes through their logical units: the executor masterd's
/// workers use. Parses the opcode (refusing unknown ones with Ganeti's
/// error), takes its locks as the job's owner at the opcode's priority,
/// and maps the LU's outcome to the job's: a deferral (locks not free
/// within the timeouts) requeues the job one priority step higher.
pub struct LuExecutor {
    processor: crate::cmdlib::Processor,
}

impl LuExecutor {
    /// An executor over `processor`.
    pub fn new(processor: crate::cmdlib::Processor) -> Self {
        LuExecutor { processor }
    }
}

impl JobExecutor for LuExecutor {
    fn execute_op(
        &self,
        job: JobId,
        _op_index: usize,
        input: &Value,
        feedback: &mut dyn FnMut(LogType, String),
        locks_acquired: &mut dyn FnMut(),
    ) -> OpOutcome {
        use crate::cmdlib::OpOutcome as Lu;
        use crate::locking::retry::WhenExhausted;
        use crate::locking::{OwnerId, Priority};
        let op = match crate::opcodes::OpCode::from_json(input) {
            Ok(op) => op,
            Err(e) => return OpOutcome::Failed(prereq_error(&crate::error::chain(&e), e.kind())),
        };
        let prio = op.common().priority;
        let priority = Priority(i32::try_from(prio).unwrap_or(0));
        let when_exhausted = WhenExhausted::for_priority(priority);
        let mut log = |line: String| feedback(LogType::Message, line);
        match self.processor.execute(
            OwnerId(job.0),
            &op,
            priority,
            when_exhausted,
            &mut log,
            locks_acquired,
        ) {
            Lu::Success(v) => OpOutcome::Success(v),
            Lu::Failed(e) => OpOutcome::Failed(e.encode()),
            Lu::Deferred => OpOutcome::Deferred {
                raise_priority: true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn test_delay_refuses_zero_and_logs() {
        let ex = TestDelayExecutor;
        let mut lines = Vec::new();
        let mut fb = |t: LogType, m: String| lines.push((t, m));
        let zero = ex.execute_op(
            JobId(1),
            0,
            &json!({"OP_ID": "OP_TEST_DELAY", "duration": 0}),
            &mut fb,
            &mut || {},
        );
        assert_eq!(
            zero,
            OpOutcome::Failed(json!([
                "OpPrereqError",
                ["Duration must be greater than zero", "wrong_input"]
            ]))
        );
        let ok = ex.execute_op(
            JobId(1),
            0,
            &json!({"OP_ID": "OP_TEST_DELAY", "duration": 0.001, "repeat": 1}),
            &mut fb,
            &mut || {},
        );
        assert_eq!(ok, OpOutcome::Success(Value::Null));
        assert_eq!(lines.len(), 4);
        let other = ex.execute_op(
            JobId(1),
            0,
            &json!({"OP_ID": "OP_CLUSTER_VERIFY"}),
            &mut |_, _| {},
            &mut || {},
        );
        assert!(matches!(other, OpOutcome::Failed(_)));
    }
}
