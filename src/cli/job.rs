//! Submitting jobs and following them, as every mutating `gnt-*` command
//! does (Ganeti's `SubmitOrSend` and `PollJob`).
//!
//! - `--submit`: print `JobID: N` on stderr and return at once
//!   (`--print-jobid` prints the bare id on stdout as well);
//! - otherwise poll with `WaitForJobChange`, printing each log line as
//!   `<ctime> <message>` the moment it arrives, then fetch the job's result
//!   with `QueryJobs` and turn a failed op into the error it carried.
//!
//! Only LUXI is used here; the job queue itself lives in masterd.

use crate::luxi::client::{Client, LuxiError};
use crate::luxi::{LuxiFailure, Method};
use serde_json::{json, Value};

/// LUXI's answer when a job did not change within the wait.
pub const JOB_NOTCHANGED: &str = "nochange";
/// How long one `WaitForJobChange` call may wait, in seconds (Ganeti's default).
pub const WFJC_TIMEOUT_SECS: u64 = 60;

/// `--priority` names and their values (Ganeti's `_PRIONAME_TO_VALUE`).
pub const PRIORITIES: &[(&str, i64)] = &[("low", 10), ("normal", 0), ("high", -10)];

/// Parses a `--priority` value.
pub fn parse_priority(name: &str) -> Result<i64, String> {
    PRIORITIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .ok_or_else(|| format!("invalid priority {name:?}; use low, normal or high"))
}

/// How a command wants its job handled.
#[derive(Debug, Clone, Default)]
pub struct SubmitOpts {
    /// `--submit`: do not wait.
    pub submit_only: bool,
    /// `--print-jobid`: print the id on stdout.
    pub print_jobid: bool,
    /// `--priority`, as a value.
    pub priority: Option<i64>,
    /// `--dry-run`: check only.
    pub dry_run: bool,
}

impl SubmitOpts {
    /// Puts the generic options into each opcode (Ganeti's `SetGenericOpcodeOpts`).
    pub fn apply(&self, ops: &mut [Value]) {
        for op in ops.iter_mut() {
            if let Some(obj) = op.as_object_mut() {
                if let Some(p) = self.priority {
                    obj.insert("priority".into(), json!(p));
                }
                if self.dry_run {
                    obj.insert("dry_run".into(), json!(true));
                }
            }
        }
    }
}

/// What a job ended as, from the command's point of view.
#[derive(Debug)]
pub enum JobError {
    /// LUXI failed, or masterd refused the submission.
    Luxi(LuxiError),
    /// The job ran and failed: the encoded error of the failing op.
    Failed(LuxiFailure),
    /// The job was canceled.
    Canceled,
    /// The job disappeared (archived or lost).
    Lost(u64),
    /// Submitted only; not an error for the caller, but no result either.
    Submitted(u64),
}

impl From<LuxiError> for JobError {
    fn from(e: LuxiError) -> Self {
        JobError::Luxi(e)
    }
}

/// The usual end of a job-submitting command: prints the error of an op
/// or options that could not be built, else submits `op` as one job on
/// the master socket (honouring `--submit`/`--print-jobid`/`--priority`),
/// hands the op's result to `done` and returns the exit code.
pub fn run_job(
    op: Result<Value, String>,
    opts: &Result<SubmitOpts, String>,
    done: impl FnOnce(&Value),
) -> u8 {
    let (op, opts) = match (op, opts) {
        (Ok(op), Ok(opts)) => (op, opts),
        (Err(e), _) => {
            eprintln!("{e}");
            return super::EXIT_FAILURE;
        }
        (_, Err(e)) => {
            eprintln!("{e}");
            return super::EXIT_FAILURE;
        }
    };
    let mut client = match super::connect_master(super::MasterSocket::Master) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match submit_or_send(&mut client, vec![op], opts) {
        Ok(results) => {
            done(results.first().unwrap_or(&Value::Null));
            super::EXIT_SUCCESS
        }
        Err(e) => report(&e),
    }
}

/// Prints a job error in Ganeti's words and returns the exit code.
pub fn report(e: &JobError) -> u8 {
    match e {
        JobError::Luxi(l) => return super::report_luxi_error(l),
        JobError::Failed(f) => {
            super::report_luxi_error(&LuxiError::Failed(f.clone()));
        }
        JobError::Canceled => eprintln!("Job was canceled"),
        JobError::Lost(id) => eprintln!("Error checking job status: Job with id {id} lost"),
        JobError::Submitted(id) => {
            eprintln!("JobID: {id}");
            return super::EXIT_SUCCESS;
        }
    }
    super::EXIT_FAILURE
}

/// Submits `ops` as one job and, unless `--submit`, waits for it and
/// returns the results of its ops.
pub fn submit_or_send(
    client: &mut Client,
    mut ops: Vec<Value>,
    opts: &SubmitOpts,
) -> Result<Vec<Value>, JobError> {
    opts.apply(&mut ops);
    let id = client.call(Method::SubmitJob, json!([ops]))?;
    let id = id
        .as_u64()
        .or_else(|| id.as_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| {
            JobError::Luxi(LuxiError::Protocol(format!(
                "SubmitJob returned {id}, not a job id"
            )))
        })?;
    if opts.print_jobid {
        #[allow(clippy::print_stdout)]
        {
            println!("{id}");
        }
    }
    if opts.submit_only {
        return Err(JobError::Submitted(id));
    }
    poll_job(client, id, &mut |line| {
        #[allow(clippy::print_stdout)]
        {
            println!("{line}");
        }
    })
}

/// Follows job `id` until it ends, handing each log line (already
/// formatted as Ganeti prints it) to `on_log`; returns the op results.
pub fn poll_job(
    client: &mut Client,
    id: u64,
    on_log: &mut dyn FnMut(String),
) -> Result<Vec<Value>, JobError> {
    let mut prev_info = Value::Null;
    let mut prev_serial = Value::Null;
    let mut notified_queued = false;
    loop {
        let r = client.call(
            Method::WaitForJobChange,
            json!([id, ["status"], prev_info, prev_serial, WFJC_TIMEOUT_SECS]),
        )?;
        if r.is_null() {
            return Err(JobError::Lost(id));
        }
        if r.as_str() == Some(JOB_NOTCHANGED) {
            if !notified_queued {
                eprintln!("Job {id} is waiting in queue");
                notified_queued = true;
            }
            continue;
        }
        let info = r.get(0).cloned().unwrap_or(Value::Null);
        let status = info
            .get(0)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let entries = r
            .get(1)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for e in &entries {
            if let Some(line) = format_log_entry(e) {
                on_log(line);
            }
            if let Some(s) = e.get(0).and_then(Value::as_u64) {
                if prev_serial.as_u64().is_none_or(|p| s > p) {
                    prev_serial = json!(s);
                }
            }
        }
        if entries.is_empty()
            && matches!(
                status.as_str(),
                "success" | "error" | "canceling" | "canceled"
            )
        {
            break;
        }
        prev_info = info;
    }
    let jobs = client.call(
        Method::QueryJobs,
        json!([[id], ["status", "opstatus", "opresult"]]),
    )?;
    let Some(job) = jobs.get(0).filter(|j| !j.is_null()) else {
        return Err(JobError::Lost(id));
    };
    let status = job[0].as_str().unwrap_or_default();
    let results = job[2].as_array().cloned().unwrap_or_default();
    match status {
        "success" => Ok(results),
        "canceling" | "canceled" => Err(JobError::Canceled),
        _ => {
            let statuses = job[1].as_array().cloned().unwrap_or_default();
            let mut had_ok = false;
            for (idx, (st, res)) in statuses.iter().zip(results.iter()).enumerate() {
                match st.as_str() {
                    Some("success") => had_ok = true,
                    Some("error") => {
                        let mut f = LuxiFailure::decode(res);
                        if had_ok {
                            f = LuxiFailure {
                                class: "OpExecError".into(),
                                args: vec![json!(format!(
                                    "partial failure (opcode {idx}): {}",
                                    f.message()
                                ))],
                            };
                        }
                        return Err(JobError::Failed(f));
                    }
                    _ => {}
                }
            }
            Err(JobError::Failed(LuxiFailure {
                class: "OpExecError".into(),
                args: vec![json!(format!("job {id} ended with status {status}"))],
            }))
        }
    }
}

/// `<ctime> <message>` for one `[serial, [secs, usecs], type, message]` entry.
pub fn format_log_entry(e: &Value) -> Option<String> {
    let ts = e.get(1)?;
    let secs = ts.get(0).and_then(Value::as_f64).unwrap_or(0.0)
        + ts.get(1).and_then(Value::as_f64).unwrap_or(0.0) / 1e6;
    let msg = match e.get(3)? {
        Value::String(s) => s.clone(),
        other => super::output::python_repr(other),
    };
    Some(format!("{} {msg}", crate::sys::time::format_ctime(secs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_and_generic_opts() {
        assert_eq!(parse_priority("high"), Ok(-10));
        assert!(parse_priority("urgent").unwrap_err().contains("urgent"));
        let mut ops = vec![json!({"OP_ID": "OP_TEST_DELAY", "duration": 1})];
        SubmitOpts {
            priority: Some(10),
            dry_run: true,
            ..Default::default()
        }
        .apply(&mut ops);
        assert_eq!(ops[0]["priority"], 10);
        assert_eq!(ops[0]["dry_run"], true);
    }

    #[test]
    fn log_entries_read_like_ganeti() {
        let e = json!([
            3,
            [1_795_000_000, 250_000],
            "message",
            "Test delay iteration 1/2"
        ]);
        assert_eq!(
            format_log_entry(&e).unwrap(),
            "Wed Nov 18 11:06:40 2026 Test delay iteration 1/2"
        );
    }
}
