//! LUs of the test opcodes: `OP_TEST_DELAY` and `OP_TEST_JQUEUE`.

use super::{LogicalUnit, LuContext, LuError};
use crate::config::objects::ConfigData;
use crate::error::ErrorKind;
use crate::opcodes::test::{OpTestDelay, OpTestJqueue};
use serde_json::Value;
use std::time::Duration;

/// Sleeps on the master (`gnt-debug delay`).
pub struct LuTestDelay {
    op: OpTestDelay,
}

impl LuTestDelay {
    /// The LU for `op`.
    pub fn new(op: OpTestDelay) -> Self {
        LuTestDelay { op }
    }
}

impl LogicalUnit for LuTestDelay {
    fn requires_bgl(&self) -> bool {
        // Ganeti's LUTestDelay does not take the BGL: it exists to test the
        // queue, and with no_locks it must not serialise against others.
        !self.op.no_locks
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), LuError> {
        if !self.op.duration.is_finite() || self.op.duration <= 0.0 {
            return Err(LuError::prereq(
                ErrorKind::Inval,
                "Duration must be greater than zero",
            ));
        }
        if !self.op.on_nodes.is_empty() {
            return Err(LuError::prereq(
                ErrorKind::Inval,
                format!(
                    "delaying on nodes ({}) needs node RPC, which ganeti-rs does not have yet",
                    self.op.on_nodes.join(", ")
                ),
            ));
        }
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        // As Ganeti's LUTestDelay: `repeat` 0 sleeps once; N > 0 sleeps N
        // times, logging "iteration i/N-1" from 0.
        let rounds = self.op.repeat.max(1);
        for i in 0..rounds {
            if self.op.repeat > 0 {
                (ctx.feedback)(format!("Test delay iteration {i}/{}", self.op.repeat - 1));
            }
            if self.op.on_master {
                std::thread::sleep(Duration::from_secs_f64(self.op.duration));
            }
        }
        Ok(Value::Bool(true))
    }
}

/// Exercises the job queue: log messages and requested failure.
pub struct LuTestJqueue {
    op: OpTestJqueue,
}

impl LuTestJqueue {
    /// The LU for `op`.
    pub fn new(op: OpTestJqueue) -> Self {
        LuTestJqueue { op }
    }
}

impl LogicalUnit for LuTestJqueue {
    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), LuError> {
        if self.op.notify_waitlock || self.op.notify_exec {
            return Err(LuError::prereq(
                ErrorKind::Inval,
                "notify_waitlock/notify_exec need Ganeti's test notification socket, which ganeti-rs does not provide",
            ));
        }
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        for m in &self.op.log_messages {
            (ctx.feedback)(m.clone());
        }
        if self.op.fail {
            return Err(LuError::Exec("Opcode failure was requested".into()));
        }
        Ok(Value::Bool(true))
    }
}
