//! [`JobQueue`]: submission, processing, waiting, cancel, archive, recovery.
//!
//! # Visibility rule
//!
//! Each job is kept twice in memory: the working copy, which the processor
//! and the LUXI calls change, and the last *durable* copy, which is what
//! every reader sees ([`JobQueue::get`], [`JobQueue::wait_for_change`],
//! [`JobQueue::snapshots`]). A change is queued to the committer while the
//! queue lock is held (so file writes happen in change order) and becomes
//! the durable copy from the committer's completion, after the flush. So no
//! client ever hears of a state that a crash could take back. Calls that
//! answer a client (submit, cancel, change priority, archive, drain) wait
//! for their write; the processor waits only before executing an opcode (its
//! `running` status must be on disk first: see recovery below), and lets
//! log lines and final statuses complete in the background.
//!
//! # Recovery (when masterd starts)
//!
//! * Jobs found `running` or `waiting` fail with "job interrupted by master
//!   daemon restart". None is re-queued: an opcode may have been half
//!   executed, and logical units are not yet known to be idempotent, so
//!   running one again could do harm (Ganeti fails them too).
//! * `canceling` jobs become `canceled`.
//! * `queued` jobs (including partly run ones whose finished opcodes all
//!   succeeded) resume.
//! * A job file that cannot be parsed is renamed to `job-<id>.corrupt`
//!   (which no longer matches Ganeti's job file pattern) and reported in
//!   [`RecoveryReport`]; it never stops the queue from opening.
//! * Temporary files left by an interrupted flush are removed.
//! * The next id is one above the highest of the serial file, the job files
//!   and the archive, so ids stay monotonic even if the serial file lost a
//!   race with a crash.

use super::archive::{highest_archived_id, job_id_of_file_name, load_archived};
use super::committer::{is_temp_name, CommitError, Committer, CommitterHandle, FileOp, SyncMode};
use super::file::{
    dependencies, encode_error, input_priority, set_dependencies, Dependency, JobId, JobStatus,
    LogEntry, LogType, OpStatus, QueuedJob, QueuedOp, Timestamp,
};
use super::pool::{PoolHandle, TaskOutcome, WorkerPool};
use super::processor::{JobExecutor, OpOutcome};
use crate::constants::{
    DEFAULT_MAX_RUNNING_JOBS, JOB_QUEUE_DIR_MODE, JOB_QUEUE_FILES_MODE, JOB_QUEUE_VERSION,
};
use crate::locking::Priority;
use crate::paths::Paths;
use crate::sys::fs::{atomic_write, ensure_dir, FsError};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The result given to jobs found running when masterd starts.
pub const INTERRUPTED_MESSAGE: &str = "job interrupted by master daemon restart";
/// The result of canceled opcodes (Ganeti's wording).
pub const CANCELED_MESSAGE: &str = "Job canceled by request";

/// Priorities a client may submit or change to (`OP_PRIO_SUBMIT_VALID`).
pub const SUBMIT_PRIORITIES: [Priority; 3] = [Priority::HIGH, Priority::NORMAL, Priority::LOW];

/// Why a queue operation failed. Messages follow Ganeti's where a client
/// sees them.
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    /// Submissions are refused while the drain flag is set.
    #[error("Job queue is drained (flag file {flag}), refusing job")]
    Drained {
        /// The drain flag file.
        flag: PathBuf,
    },
    /// No such job (neither in the queue nor archived).
    #[error("Job {0} not found")]
    NotFound(JobId),
    /// The job is in a state that does not allow the request.
    #[error("{reason}")]
    Refused {
        /// The job.
        job: JobId,
        /// Why, in Ganeti's words (e.g. "Job 3 is no longer waiting in the queue").
        reason: String,
    },
    /// A priority outside `OP_PRIO_SUBMIT_VALID`.
    #[error("Invalid priority {0}, allowed are -10, 0, 10")]
    InvalidPriority(i32),
    /// A submitted job is malformed.
    #[error("job {index} of the submission is invalid: {reason}")]
    InvalidJob {
        /// Its position in the submission, from 0.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A change could not be made durable; it was not applied.
    #[error("writing {what}")]
    Persist {
        /// What was being written.
        what: String,
        /// The cause.
        #[source]
        source: CommitError,
    },
    /// Setting up the queue directory failed.
    #[error("opening the job queue")]
    Open(#[source] FsError),
    /// The queue was written by an incompatible version.
    #[error("job queue version file {path} says {found:?}, expected {JOB_QUEUE_VERSION}")]
    Version {
        /// The version file.
        path: PathBuf,
        /// Its content.
        found: String,
    },
    /// A thread could not be started.
    #[error("starting job queue threads")]
    Threads(#[source] std::io::Error),
}

/// Settings of a [`JobQueue`].
#[derive(Debug, Clone, Copy)]
pub struct QueueOptions {
    /// How many jobs run at once (worker threads).
    pub max_running_jobs: usize,
    /// How batches are made durable.
    pub sync: SyncMode,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            max_running_jobs: DEFAULT_MAX_RUNNING_JOBS as usize,
            // See committer.rs, "Choosing the sync".
            sync: SyncMode::Journal,
        }
    }
}

/// A job file that could not be loaded when the queue opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptJobFile {
    /// Where it was.
    pub path: PathBuf,
    /// Where it was moved (`None` if even the rename failed).
    pub moved_to: Option<PathBuf>,
    /// Why it could not be loaded.
    pub error: String,
}

/// What [`JobQueue::open`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Jobs that were running or waiting and now failed.
    pub interrupted: Vec<JobId>,
    /// Jobs that were being canceled and now are canceled.
    pub canceled: Vec<JobId>,
    /// Queued jobs handed to the workers again.
    pub resumed: Vec<JobId>,
    /// Files moved aside.
    pub corrupt: Vec<CorruptJobFile>,
    /// Temporary files of an interrupted flush that were removed.
    pub temp_files_removed: usize,
}

/// The answer of [`JobQueue::wait_for_change`] (LUXI `WaitForJobChange`).
#[derive(Debug, Clone, PartialEq)]
pub enum JobChange {
    /// Something changed, or the job is final: the requested fields now,
    /// and the log entries after the serial the caller had seen.
    Changed {
        /// Values of the requested fields, in order.
        info: Vec<Value>,
        /// New log entries.
        log: Vec<LogEntry>,
    },
    /// Nothing changed before the timeout (Ganeti's `"nochange"`).
    NoChange,
}

/// Where a job is in the processing machinery (in memory only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Submitted, not yet durable: not runnable, not visible.
    Submitting,
    /// In the worker pool's queue (or just taken from it).
    Pooled,
    /// Parked until a job it depends on is final.
    WaitingDeps,
    /// A worker executes it.
    Running,
    /// Final.
    Done,
    /// Being moved to the archive.
    Archiving,
}

struct Entry {
    /// The newest state, possibly not yet durable.
    job: QueuedJob,
    version: u64,
    /// The newest durable state; what readers see.
    durable: Option<Arc<QueuedJob>>,
    durable_version: u64,
    place: Place,
}

struct State {
    jobs: BTreeMap<JobId, Entry>,
    /// The last id handed out (the serial file's content).
    last_id: u64,
    drained: bool,
    /// Jobs parked until the key job is final (and durably so).
    dep_waiters: HashMap<JobId, Vec<JobId>>,
}

struct Shared {
    paths: Paths,
    state: Mutex<State>,
    /// Signalled whenever a durable copy changes.
    changed: Condvar,
    committer: CommitterHandle,
    pool: PoolHandle,
    executor: Arc<dyn JobExecutor>,
}

/// Whether a submission honours the drain flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DrainPolicy {
    Respect,
    Ignore,
}

/// The job queue of masterd. Dropping it stops the workers (waiting for
/// running opcodes) and flushes pending writes.
pub struct JobQueue {
    shared: Arc<Shared>,
    report: RecoveryReport,
    pool: Option<WorkerPool>,
    committer: Option<Committer>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // State changes under this lock are completed before anything that can
    // panic is called (executors run without it), so a poisoned lock still
    // guards a consistent state.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What to do once a persisted change is durable.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AfterCommit {
    /// Only publish it.
    Publish,
    /// Publish it and hand the jobs to the worker pool (new submissions).
    PublishAndRun,
}

impl Shared {
    /// Queues the current working copies of `ids` (plus `extra` file
    /// operations) to the committer. Must be called with the state lock
    /// held, which orders the writes; the returned channel says when they
    /// are durable. Never wait on it with the lock held.
    fn persist(
        self: &Arc<Self>,
        st: &mut State,
        ids: &[JobId],
        mut extra: Vec<FileOp>,
        after: AfterCommit,
    ) -> mpsc::Receiver<Result<(), CommitError>> {
        let mut ops = Vec::with_capacity(ids.len() + extra.len());
        let mut snaps = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(e) = st.jobs.get_mut(id) {
                e.version += 1;
                let snap = Arc::new(e.job.clone());
                ops.push(FileOp::Write {
                    path: self.paths.queue_job_file(id.0),
                    data: snap.to_json(),
                });
                snaps.push((*id, e.version, snap));
            }
        }
        ops.append(&mut extra);
        let (tx, rx) = mpsc::sync_channel(1);
        let shared = Arc::clone(self);
        self.committer.commit_async(
            ops,
            Box::new(move |result| {
                if result.is_ok() {
                    shared.publish(snaps, after);
                }
                let _ = tx.send(result);
            }),
        );
        rx
    }

    /// Makes durable snapshots visible, wakes waiters, and starts whatever
    /// this makes runnable. Called from the committer thread.
    fn publish(&self, snaps: Vec<(JobId, u64, Arc<QueuedJob>)>, after: AfterCommit) {
        let mut runnable = Vec::new();
        {
            let mut st = lock(&self.state);
            for (id, version, snap) in snaps {
                let final_now = snap.status().is_finalized();
                let Some(e) = st.jobs.get_mut(&id) else {
                    continue;
                };
                if version > e.durable_version {
                    e.durable_version = version;
                    e.durable = Some(Arc::clone(&snap));
                }
                if after == AfterCommit::PublishAndRun && e.place == Place::Submitting {
                    e.place = Place::Pooled;
                    runnable.push((id, e.job.priority()));
                }
                if final_now {
                    // Dependents look at durable statuses only, so they are
                    // released here, not when the job finished in memory.
                    for waiter in st.dep_waiters.remove(&id).unwrap_or_default() {
                        if let Some(w) = st.jobs.get_mut(&waiter) {
                            if w.place == Place::WaitingDeps {
                                w.place = Place::Pooled;
                                runnable.push((waiter, w.job.priority()));
                            }
                        }
                    }
                }
            }
        }
        self.changed.notify_all();
        for (id, prio) in runnable {
            self.pool.add(id, prio);
        }
    }

    /// The durable status of `dep` for a dependency check: in the queue,
    /// else in the archive.
    fn dependency_status(&self, st: &State, dep: JobId) -> Option<JobStatus> {
        match st.jobs.get(&dep) {
            Some(e) => Some(e.durable.as_ref().map_or(JobStatus::Queued, |d| d.status())),
            None => load_archived(&self.paths, dep).map(|j| j.status()),
        }
    }

    /// One turn of the job processor for `id` (Ganeti's `_JobProcessor`):
    /// runs its next opcode, or parks it, or finishes it.
    fn process(self: &Arc<Self>, id: JobId) -> TaskOutcome {
        let mut st = lock(&self.state);
        let Some(e) = st.jobs.get_mut(&id) else {
            return TaskOutcome::Done;
        };
        if e.place != Place::Pooled || e.job.status().is_finalized() {
            return TaskOutcome::Done;
        }
        let Some(idx) = e.job.next_op() else {
            return TaskOutcome::Done;
        };
        if e.job.ops[idx].status == OpStatus::Canceling {
            e.job
                .mark_unfinished(OpStatus::Canceled, &Value::from(CANCELED_MESSAGE));
            self.finish(&mut st, id);
            return TaskOutcome::Done;
        }

        // Dependencies of this opcode (ids were made absolute at submit).
        let deps = dependencies(&e.job.ops[idx].input).unwrap_or_default();
        for dep in deps {
            let dep_id = JobId(dep.job.unsigned_abs());
            let verdict = if dep_id == id {
                Err("Job can't depend on itself".to_string())
            } else {
                match self.dependency_status(&st, dep_id) {
                    None => Err(format!("Dependency error: Job {dep_id} not found")),
                    Some(s) if !s.is_finalized() => {
                        st.dep_waiters.entry(dep_id).or_default().push(id);
                        let e = st.jobs.get_mut(&id).expect("looked up above under the same lock");
                        e.place = Place::WaitingDeps;
                        let op = &mut e.job.ops[idx];
                        if op.status != OpStatus::Waiting {
                            op.status = OpStatus::Waiting;
                            mark_started(&mut e.job, idx);
                            let _ = self.persist(&mut st, &[id], Vec::new(), AfterCommit::Publish);
                        }
                        return TaskOutcome::Done;
                    }
                    Some(JobStatus::Canceled) if !dep.statuses.contains(&JobStatus::Canceled) => {
                        let e = st.jobs.get_mut(&id).expect("looked up above under the same lock");
                        e.job
                            .mark_unfinished(OpStatus::Canceled, &Value::from(CANCELED_MESSAGE));
                        self.finish(&mut st, id);
                        return TaskOutcome::Done;
                    }
                    Some(s) if dep.statuses.is_empty() || dep.statuses.contains(&s) => Ok(()),
                    Some(s) => Err(format!(
                        "Dependency job {dep_id} finished with status '{s}', not one of '{}' as required",
                        dep.statuses
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                }
            };
            if let Err(msg) = verdict {
                let e = st
                    .jobs
                    .get_mut(&id)
                    .expect("looked up above under the same lock");
                mark_started(&mut e.job, idx);
                fail_op(&mut e.job, idx, encode_error("OpExecError", &msg));
                self.finish(&mut st, id);
                return TaskOutcome::Done;
            }
        }

        // Start the opcode: it is "waiting" (for its locks, Ganeti's state)
        // and that must be durable before any of its code runs, so that a
        // crash from here on is recovered as "interrupted", never re-run.
        let e = st
            .jobs
            .get_mut(&id)
            .expect("looked up above under the same lock");
        e.place = Place::Running;
        mark_started(&mut e.job, idx);
        let op = &mut e.job.ops[idx];
        op.status = OpStatus::Waiting;
        let input = op.input.clone();
        let durable = self.persist(&mut st, &[id], Vec::new(), AfterCommit::Publish);
        drop(st);
        if let Err(err) = durable.recv().unwrap_or(Err(CommitError::ShutDown)) {
            log::error!(
                "job={id} opcode={idx} event=start_not_durable error={:?}",
                crate::error::chain(&err)
            );
            // Not executed; on disk it is still queued or waiting. Stop
            // here: retrying would only fail again on a broken disk.
            let mut st = lock(&self.state);
            if let Some(e) = st.jobs.get_mut(&id) {
                e.place = Place::Done;
            }
            return TaskOutcome::Done;
        }

        let shared = Arc::clone(self);
        let mut feedback = move |log_type: LogType, message: String| {
            let mut st = lock(&shared.state);
            if let Some(e) = st.jobs.get_mut(&id) {
                e.job.append_log(idx, log_type, Value::from(message));
                let _ = shared.persist(&mut st, &[id], Vec::new(), AfterCommit::Publish);
            }
        };
        // Locks held: "running" from now on. Recovery treats waiting and
        // running alike, so this change need not be waited for.
        let shared = Arc::clone(self);
        let mut locks_acquired = move || {
            let mut st = lock(&shared.state);
            if let Some(e) = st.jobs.get_mut(&id) {
                let op = &mut e.job.ops[idx];
                op.status = OpStatus::Running;
                op.exec_timestamp = Some(Timestamp::now());
                let _ = shared.persist(&mut st, &[id], Vec::new(), AfterCommit::Publish);
            }
        };
        let outcome = self
            .executor
            .execute_op(id, idx, &input, &mut feedback, &mut locks_acquired);

        let mut st = lock(&self.state);
        let Some(e) = st.jobs.get_mut(&id) else {
            return TaskOutcome::Done;
        };
        match outcome {
            OpOutcome::Success(result) => {
                let op = &mut e.job.ops[idx];
                op.status = OpStatus::Success;
                op.result = result;
                op.end_timestamp = Some(Timestamp::now());
                if e.job.next_op().is_none() {
                    self.finish(&mut st, id);
                    return TaskOutcome::Done;
                }
                // Back to the pool between opcodes, as Ganeti does, so a
                // more urgent job can overtake a long multi-opcode one.
                e.place = Place::Pooled;
                let prio = e.job.priority();
                let _ = self.persist(&mut st, &[id], Vec::new(), AfterCommit::Publish);
                TaskOutcome::Defer { priority: prio }
            }
            OpOutcome::Failed(err) => {
                fail_op(&mut e.job, idx, err);
                self.finish(&mut st, id);
                TaskOutcome::Done
            }
            OpOutcome::Deferred { raise_priority } => {
                let op = &mut e.job.ops[idx];
                op.status = OpStatus::Waiting;
                if raise_priority {
                    op.priority = op.priority.raised();
                }
                e.place = Place::Pooled;
                let prio = e.job.priority();
                let _ = self.persist(&mut st, &[id], Vec::new(), AfterCommit::Publish);
                TaskOutcome::Defer { priority: prio }
            }
        }
    }

    /// Marks a job final (its opcodes already are) and persists it in the
    /// background; dependents are released once that write is durable.
    fn finish(self: &Arc<Self>, st: &mut State, id: JobId) {
        if let Some(e) = st.jobs.get_mut(&id) {
            e.job.end_timestamp = Some(Timestamp::now());
            e.place = Place::Done;
            let _ = self.persist(st, &[id], Vec::new(), AfterCommit::Publish);
        }
    }
}

/// Sets the start timestamps of opcode `idx` and of the job, once.
fn mark_started(job: &mut QueuedJob, idx: usize) {
    let now = Timestamp::now();
    let op = &mut job.ops[idx];
    op.result = Value::Null;
    if op.start_timestamp.is_none() {
        op.start_timestamp = Some(now);
    }
    if job.start_timestamp.is_none() {
        job.start_timestamp = Some(now);
    }
}

/// Fails opcode `idx` with `err` and every later one with "Preceding
/// opcode failed", as Ganeti does.
fn fail_op(job: &mut QueuedJob, idx: usize, err: Value) {
    let op = &mut job.ops[idx];
    op.status = OpStatus::Error;
    op.result = err;
    op.end_timestamp = Some(Timestamp::now());
    job.mark_unfinished(
        OpStatus::Error,
        &encode_error("OpExecError", "Preceding opcode failed"),
    );
}

/// One job of a submission: its opcodes and the priority of those that do
/// not name their own.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// Opcode inputs (Ganeti's opcode JSON, with `OP_ID`).
    pub ops: Vec<Value>,
    /// Priority for opcodes without a `priority` field.
    pub priority: Priority,
}

fn validate_spec(index: usize, spec: &JobSpec) -> Result<Vec<Vec<Dependency>>, JobsError> {
    let invalid = |reason: String| JobsError::InvalidJob { index, reason };
    if spec.ops.is_empty() {
        return Err(invalid("a job needs at least one opcode".to_string()));
    }
    let mut all = Vec::with_capacity(spec.ops.len());
    for op in &spec.ops {
        if !op.is_object() {
            return Err(invalid(format!("opcode {op} is not an object")));
        }
        let prio = input_priority(op).unwrap_or(spec.priority);
        if !(Priority::HIGHEST..=Priority::LOWEST).contains(&prio) {
            return Err(invalid(format!("priority {} is out of range", prio.0)));
        }
        let deps = dependencies(op).map_err(invalid)?;
        for d in &deps {
            if d.job < 0 && d.job.unsigned_abs() > index as u64 {
                return Err(invalid(format!(
                    "Unable to resolve relative job ID {}",
                    d.job
                )));
            }
        }
        all.push(deps);
    }
    Ok(all)
}

fn read_trimmed(path: &std::path::Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

impl JobQueue {
    /// Opens (creating if needed) the queue under `paths`, recovers what a
    /// previous masterd left (see the module docs), and starts the workers,
    /// which run opcodes through `executor`.
    pub fn open(
        paths: &Paths,
        executor: Arc<dyn JobExecutor>,
        options: QueueOptions,
    ) -> Result<JobQueue, JobsError> {
        let qdir = paths.queue_dir();
        ensure_dir(&qdir, JOB_QUEUE_DIR_MODE).map_err(JobsError::Open)?;
        ensure_dir(&paths.queue_archive_dir(), JOB_QUEUE_DIR_MODE).map_err(JobsError::Open)?;

        let version_file = paths.queue_version_file();
        match read_trimmed(&version_file) {
            None => atomic_write(
                &version_file,
                format!("{JOB_QUEUE_VERSION}\n").as_bytes(),
                JOB_QUEUE_FILES_MODE,
            )
            .map_err(JobsError::Open)?,
            Some(v) if v == JOB_QUEUE_VERSION.to_string() => {}
            Some(found) => {
                return Err(JobsError::Version {
                    path: version_file,
                    found,
                })
            }
        }

        // Starting the committer replays the journal a previous masterd
        // left, so the job files below are complete.
        let mut committer = Committer::start(
            &qdir,
            &paths.queue_journal_file(),
            options.sync,
            JOB_QUEUE_FILES_MODE,
        )
        .map_err(|source| JobsError::Persist {
            what: "the job queue journal".to_string(),
            source,
        })?;
        let mut report = RecoveryReport::default();
        let mut jobs: BTreeMap<JobId, QueuedJob> = BTreeMap::new();
        let listing = fs::read_dir(&qdir).map_err(|source| {
            JobsError::Open(FsError::Io {
                action: "listing",
                path: qdir.clone(),
                source,
            })
        })?;
        let mut max_id = 0u64;
        for entry in listing.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if is_temp_name(&name) {
                if fs::remove_file(&path).is_ok() {
                    report.temp_files_removed += 1;
                }
                continue;
            }
            let Some(id) = job_id_of_file_name(&name) else {
                continue;
            };
            max_id = max_id.max(id.0);
            let loaded = fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|d| QueuedJob::from_json(&d).map_err(|e| crate::error::chain(&e)))
                .and_then(|j| {
                    if j.id == id {
                        Ok(j)
                    } else {
                        Err(format!("file names job {id} but holds job {}", j.id))
                    }
                });
            match loaded {
                Ok(job) => {
                    jobs.insert(id, job);
                }
                Err(error) => {
                    let aside = qdir.join(format!("{name}.corrupt"));
                    let moved_to = fs::rename(&path, &aside).ok().map(|()| aside);
                    log::error!(
                        "job={id} event=corrupt_job_file path={} moved_to={:?} error={error:?}",
                        path.display(),
                        moved_to.as_ref().map(|p| p.display().to_string())
                    );
                    report.corrupt.push(CorruptJobFile {
                        path,
                        moved_to,
                        error,
                    });
                }
            }
        }
        let serial = read_trimmed(&paths.queue_serial_file()).and_then(|s| s.parse::<u64>().ok());
        let last_id = serial
            .unwrap_or(0)
            .max(max_id)
            .max(highest_archived_id(&paths.queue_archive_dir()));

        // Recovery decisions.
        let mut rewrite = Vec::new();
        for (id, job) in jobs.iter_mut() {
            match job.status() {
                JobStatus::Running | JobStatus::Waiting => {
                    job.mark_unfinished(
                        OpStatus::Error,
                        &encode_error("OpExecError", INTERRUPTED_MESSAGE),
                    );
                    job.end_timestamp = Some(Timestamp::now());
                    report.interrupted.push(*id);
                    rewrite.push(*id);
                }
                JobStatus::Canceling => {
                    job.mark_unfinished(OpStatus::Canceled, &Value::from(CANCELED_MESSAGE));
                    job.end_timestamp = Some(Timestamp::now());
                    report.canceled.push(*id);
                    rewrite.push(*id);
                }
                JobStatus::Queued => report.resumed.push(*id),
                _ => {}
            }
        }
        for id in &report.interrupted {
            log::warn!("job={id} event=interrupted_by_restart");
        }

        let drained = paths.queue_drain_file().exists();
        let pool_handle = PoolHandle::new();
        let shared = Arc::new(Shared {
            paths: paths.clone(),
            state: Mutex::new(State {
                jobs: BTreeMap::new(),
                last_id,
                drained,
                dep_waiters: HashMap::new(),
            }),
            changed: Condvar::new(),
            committer: committer.handle(),
            pool: pool_handle.clone(),
            executor,
        });
        {
            let mut st = lock(&shared.state);
            for (id, job) in jobs {
                let place = if job.status().is_finalized() {
                    Place::Done
                } else {
                    Place::Pooled
                };
                st.jobs.insert(
                    id,
                    Entry {
                        durable: Some(Arc::new(job.clone())),
                        job,
                        version: 0,
                        durable_version: 0,
                        place,
                    },
                );
            }
            let serial_write = FileOp::Write {
                path: paths.queue_serial_file(),
                data: format!("{last_id}\n").into_bytes(),
            };
            let done = shared.persist(&mut st, &rewrite, vec![serial_write], AfterCommit::Publish);
            drop(st);
            if let Err(source) = done.recv().unwrap_or(Err(CommitError::ShutDown)) {
                committer.shutdown();
                return Err(JobsError::Persist {
                    what: "recovered jobs".to_string(),
                    source,
                });
            }
        }

        let handler_shared = Arc::clone(&shared);
        let pool = WorkerPool::start_with(
            pool_handle,
            options.max_running_jobs,
            Arc::new(move |id| handler_shared.process(id)),
        )
        .map_err(JobsError::Threads)?;
        {
            let st = lock(&shared.state);
            for id in &report.resumed {
                if let Some(e) = st.jobs.get(id) {
                    shared.pool.add(*id, e.job.priority());
                }
            }
        }
        Ok(JobQueue {
            shared,
            report,
            pool: Some(pool),
            committer: Some(committer),
        })
    }

    /// What opening the queue found and did.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// Submits one job; returns its id once the job file is durable.
    pub fn submit(&self, ops: Vec<Value>, priority: Priority) -> Result<JobId, JobsError> {
        let ids = self.submit_many(vec![JobSpec { ops, priority }])?;
        Ok(ids[0])
    }

    /// Submits several jobs at once (LUXI `SubmitManyJobs`). A negative
    /// dependency id `-n` in job `i` means job `i - n` of this submission;
    /// one that points before the first job rejects the whole submission
    /// before any id is used. All files and the serial file are written in
    /// one commit.
    pub fn submit_many(&self, specs: Vec<JobSpec>) -> Result<Vec<JobId>, JobsError> {
        self.submit_many_with(specs, DrainPolicy::Respect)
    }

    /// Submits one job even when the queue is drained (LUXI
    /// `SubmitJobToDrainedQueue`, used by Ganeti for jobs that must run
    /// during maintenance, e.g. the watcher's).
    pub fn submit_to_drained(
        &self,
        ops: Vec<Value>,
        priority: Priority,
    ) -> Result<JobId, JobsError> {
        let ids = self.submit_many_with(vec![JobSpec { ops, priority }], DrainPolicy::Ignore)?;
        Ok(ids[0])
    }

    fn submit_many_with(
        &self,
        specs: Vec<JobSpec>,
        drain: DrainPolicy,
    ) -> Result<Vec<JobId>, JobsError> {
        let mut all_deps = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            all_deps.push(validate_spec(i, spec)?);
        }
        let mut st = lock(&self.shared.state);
        if st.drained && drain == DrainPolicy::Respect {
            return Err(JobsError::Drained {
                flag: self.shared.paths.queue_drain_file(),
            });
        }
        let first = st.last_id + 1;
        let ids: Vec<JobId> = (0..specs.len() as u64).map(|i| JobId(first + i)).collect();
        st.last_id += specs.len() as u64;
        for ((i, spec), deps) in specs.into_iter().enumerate().zip(all_deps) {
            let ops = spec
                .ops
                .into_iter()
                .zip(deps)
                .map(|(mut input, mut deps)| {
                    if !deps.is_empty() {
                        for d in &mut deps {
                            if d.job < 0 {
                                let back = usize::try_from(d.job.unsigned_abs())
                                    .expect("checked against the job's index");
                                d.job = i64::try_from(ids[i - back].0).unwrap_or(i64::MAX);
                            }
                        }
                        set_dependencies(&mut input, &deps);
                    }
                    QueuedOp::new(input, spec.priority)
                })
                .collect();
            let job = QueuedJob::new(ids[i], ops);
            st.jobs.insert(
                ids[i],
                Entry {
                    job,
                    version: 0,
                    durable: None,
                    durable_version: 0,
                    place: Place::Submitting,
                },
            );
        }
        let serial_write = FileOp::Write {
            path: self.shared.paths.queue_serial_file(),
            data: format!("{}\n", st.last_id).into_bytes(),
        };
        let done = self.shared.persist(
            &mut st,
            &ids,
            vec![serial_write],
            AfterCommit::PublishAndRun,
        );
        drop(st);
        match done.recv().unwrap_or(Err(CommitError::ShutDown)) {
            Ok(()) => Ok(ids),
            Err(source) => {
                // Not acknowledged: forget the jobs. A file that did reach
                // the disk is loaded (as queued) at the next start, like a
                // submission whose answer was lost.
                let mut st = lock(&self.shared.state);
                for id in &ids {
                    st.jobs.remove(id);
                }
                Err(JobsError::Persist {
                    what: format!(
                        "new jobs {}",
                        ids.iter()
                            .map(|i| i.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    source,
                })
            }
        }
    }

    /// The durable state of a job, from the queue or the archive.
    pub fn get(&self, id: JobId) -> Option<Arc<QueuedJob>> {
        {
            let st = lock(&self.shared.state);
            if let Some(e) = st.jobs.get(&id) {
                return e.durable.clone();
            }
        }
        load_archived(&self.shared.paths, id).map(Arc::new)
    }

    /// Durable states of all jobs not archived, by id (for queries).
    pub fn snapshots(&self) -> Vec<Arc<QueuedJob>> {
        lock(&self.shared.state)
            .jobs
            .values()
            .filter_map(|e| e.durable.clone())
            .collect()
    }

    /// Waits for the job to change, after LUXI's `WaitForJobChange`:
    /// returns at once if the requested `fields` differ from `prev_info`,
    /// if there are log entries after `prev_log_serial`, or if the job is
    /// final; otherwise when one of those happens, or
    /// [`JobChange::NoChange`] after `timeout`.
    pub fn wait_for_change(
        &self,
        id: JobId,
        fields: &[&str],
        prev_info: Option<&[Value]>,
        prev_log_serial: Option<u64>,
        timeout: Duration,
    ) -> Result<JobChange, JobsError> {
        let deadline = Instant::now() + timeout;
        let mut st = lock(&self.shared.state);
        loop {
            let snap = match st.jobs.get(&id) {
                Some(e) => e.durable.clone(),
                None => {
                    drop(st);
                    let job =
                        load_archived(&self.shared.paths, id).ok_or(JobsError::NotFound(id))?;
                    return Ok(JobChange::Changed {
                        info: fields.iter().map(|f| job_field(&job, f)).collect(),
                        log: job.log_entries_after(prev_log_serial),
                    });
                }
            };
            if let Some(job) = snap {
                let info: Vec<Value> = fields.iter().map(|f| job_field(&job, f)).collect();
                let log = job.log_entries_after(prev_log_serial);
                if !log.is_empty()
                    || prev_info != Some(info.as_slice())
                    || job.status().is_finalized()
                {
                    return Ok(JobChange::Changed { info, log });
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(JobChange::NoChange);
            }
            st = self
                .shared
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Cancels a job that has not started (LUXI `CancelJob`): a queued or
    /// waiting job becomes canceled. A running job is refused, as in Ganeti
    /// without a kill request. Returns Ganeti's message.
    pub fn cancel(&self, id: JobId) -> Result<String, JobsError> {
        let mut st = lock(&self.shared.state);
        let e = st.jobs.get_mut(&id).ok_or(JobsError::NotFound(id))?;
        let cancelable = matches!(e.place, Place::Pooled | Place::WaitingDeps)
            && matches!(e.job.status(), JobStatus::Queued | JobStatus::Waiting);
        if !cancelable {
            return Err(JobsError::Refused {
                job: id,
                reason: format!("Job {id} is no longer waiting in the queue"),
            });
        }
        e.job
            .mark_unfinished(OpStatus::Canceled, &Value::from(CANCELED_MESSAGE));
        e.job.end_timestamp = Some(Timestamp::now());
        e.place = Place::Done;
        self.shared.pool.remove(id);
        let done = self
            .shared
            .persist(&mut st, &[id], Vec::new(), AfterCommit::Publish);
        drop(st);
        done.recv()
            .unwrap_or(Err(CommitError::ShutDown))
            .map_err(|source| JobsError::Persist {
                what: format!("canceled job {id}"),
                source,
            })?;
        Ok(format!("Job {id} canceled"))
    }

    /// Changes the priority of a job's pending (queued or waiting) opcodes
    /// (LUXI `ChangeJobPriority`); `priority` must be one of
    /// [`SUBMIT_PRIORITIES`]. Returns Ganeti's message.
    pub fn change_priority(&self, id: JobId, priority: Priority) -> Result<String, JobsError> {
        if !SUBMIT_PRIORITIES.contains(&priority) {
            return Err(JobsError::InvalidPriority(priority.0));
        }
        let mut st = lock(&self.shared.state);
        let e = st.jobs.get_mut(&id).ok_or(JobsError::NotFound(id))?;
        let refuse = |reason: String| JobsError::Refused { job: id, reason };
        match e.job.status() {
            s if s.is_finalized() => return Err(refuse(format!("Job {id} is finished"))),
            JobStatus::Canceling => return Err(refuse(format!("Job {id} is cancelling"))),
            _ => {}
        }
        let mut changed = false;
        for op in &mut e.job.ops {
            if matches!(op.status, OpStatus::Queued | OpStatus::Waiting) {
                op.priority = priority;
                changed = true;
            }
        }
        if !changed {
            return Err(refuse(format!("Job {id} had no pending opcodes")));
        }
        if e.place == Place::Pooled {
            self.shared.pool.change_priority(id, e.job.priority());
        }
        let done = self
            .shared
            .persist(&mut st, &[id], Vec::new(), AfterCommit::Publish);
        drop(st);
        done.recv()
            .unwrap_or(Err(CommitError::ShutDown))
            .map_err(|source| JobsError::Persist {
                what: format!("job {id}"),
                source,
            })?;
        Ok(format!(
            "Priorities of pending opcodes for job {id} have been changed to {}",
            priority.0
        ))
    }

    /// Moves a finished job to the archive (LUXI `ArchiveJob`).
    pub fn archive(&self, id: JobId) -> Result<(), JobsError> {
        let archived = self.archive_some(&[id])?;
        if archived.is_empty() {
            return Err(JobsError::Refused {
                job: id,
                reason: format!("Job {id} is not yet finalized"),
            });
        }
        Ok(())
    }

    /// Archives finished jobs that ended at least `age_secs` ago (all
    /// finished jobs when negative), for at most about `timeout_secs`
    /// (LUXI `AutoArchiveJobs`). Returns how many were archived and how many
    /// candidates were left unexamined for lack of time.
    pub fn auto_archive(
        &self,
        age_secs: f64,
        timeout_secs: f64,
    ) -> Result<(usize, usize), JobsError> {
        let started = Instant::now();
        let budget = Duration::try_from_secs_f64(timeout_secs.max(0.0)).unwrap_or(Duration::MAX);
        let now = crate::sys::time::now_secs();
        let candidates: Vec<JobId> = {
            let st = lock(&self.shared.state);
            st.jobs
                .iter()
                .filter_map(|(id, e)| {
                    let d = e.durable.as_ref()?;
                    let end = d.end_timestamp?.as_secs();
                    (d.status().is_finalized() && (age_secs < 0.0 || now - end >= age_secs))
                        .then_some(*id)
                })
                .collect()
        };
        let mut archived = 0;
        let mut done = 0;
        // Chunks bound the time between deadline checks and keep each
        // commit batch reasonable.
        for chunk in candidates.chunks(256) {
            if started.elapsed() > budget {
                break;
            }
            archived += self.archive_some(chunk)?.len();
            done += chunk.len();
        }
        Ok((archived, candidates.len() - done))
    }

    /// Archives those of `ids` that are final and durable, in one commit;
    /// returns the ones archived.
    fn archive_some(&self, ids: &[JobId]) -> Result<Vec<JobId>, JobsError> {
        let paths = &self.shared.paths;
        for id in ids {
            ensure_dir(&paths.queue_archive_subdir(id.0), JOB_QUEUE_DIR_MODE)
                .map_err(JobsError::Open)?;
        }
        let mut st = lock(&self.shared.state);
        let mut chosen = Vec::new();
        let mut ops = Vec::new();
        for id in ids {
            let Some(e) = st.jobs.get_mut(id) else {
                continue;
            };
            let final_and_durable = e.place == Place::Done
                && e.durable_version == e.version
                && e.durable
                    .as_ref()
                    .is_some_and(|d| d.status().is_finalized());
            if !final_and_durable {
                continue;
            }
            e.place = Place::Archiving;
            chosen.push(*id);
            ops.push(FileOp::Rename {
                from: paths.queue_job_file(id.0),
                to: paths.queue_archived_job_file(id.0),
            });
        }
        if chosen.is_empty() {
            return Ok(chosen);
        }
        let done = self.shared.persist(&mut st, &[], ops, AfterCommit::Publish);
        drop(st);
        let result = done.recv().unwrap_or(Err(CommitError::ShutDown));
        let mut st = lock(&self.shared.state);
        match result {
            Ok(()) => {
                for id in &chosen {
                    st.jobs.remove(id);
                }
                drop(st);
                self.shared.changed.notify_all();
                Ok(chosen)
            }
            Err(source) => {
                // Some renames may have happened; the job stays readable
                // either way (from memory now, from the archive later).
                for id in &chosen {
                    if let Some(e) = st.jobs.get_mut(id) {
                        e.place = Place::Done;
                    }
                }
                Err(JobsError::Persist {
                    what: "archived jobs".to_string(),
                    source,
                })
            }
        }
    }

    /// Sets or clears the drain flag (`queue/drain`, LUXI `SetDrainFlag`);
    /// while set, submissions are refused.
    pub fn set_drain(&self, drain: bool) -> Result<(), JobsError> {
        let flag = self.shared.paths.queue_drain_file();
        let op = if drain {
            FileOp::Write {
                path: flag.clone(),
                data: Vec::new(),
            }
        } else {
            FileOp::Remove { path: flag.clone() }
        };
        let mut st = lock(&self.shared.state);
        let done = self
            .shared
            .persist(&mut st, &[], vec![op], AfterCommit::Publish);
        drop(st);
        done.recv()
            .unwrap_or(Err(CommitError::ShutDown))
            .map_err(|source| JobsError::Persist {
                what: format!("drain flag {}", flag.display()),
                source,
            })?;
        lock(&self.shared.state).drained = drain;
        Ok(())
    }

    /// Whether the drain flag is set.
    pub fn is_drained(&self) -> bool {
        lock(&self.shared.state).drained
    }

    /// Group-commit counters (batches, files, requests) since opening.
    pub fn commit_stats(&self) -> super::committer::CommitStats {
        self.shared.committer.stats()
    }

    /// Stops the workers (waiting for the opcodes they run) and flushes
    /// pending writes. Jobs still queued stay queued on disk.
    pub fn shutdown(&mut self) {
        if let Some(mut p) = self.pool.take() {
            p.shutdown();
        }
        if let Some(mut c) = self.committer.take() {
            c.shutdown();
        }
    }
}

impl Drop for JobQueue {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn ts(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| serde_json::json!([t.0, t.1]))
}

/// The value of one job query field (Ganeti's job field names, as used by
/// `WaitForJobChange` and `gnt-job list`); `null` for unknown fields.
pub fn job_field(job: &QueuedJob, field: &str) -> Value {
    let per_op = |f: &dyn Fn(&QueuedOp) -> Value| Value::Array(job.ops.iter().map(f).collect());
    match field {
        "id" => Value::from(job.id.0),
        "status" => Value::from(job.status().as_str()),
        "priority" => Value::from(job.priority().0),
        "ops" => per_op(&|o| o.input.clone()),
        "opresult" => per_op(&|o| o.result.clone()),
        "opstatus" => per_op(&|o| Value::from(o.status.as_str())),
        "oplog" => per_op(&|o| serde_json::to_value(&o.log).unwrap_or(Value::Null)),
        "opstart" => per_op(&|o| ts(o.start_timestamp)),
        "opexec" => per_op(&|o| ts(o.exec_timestamp)),
        "opend" => per_op(&|o| ts(o.end_timestamp)),
        "oppriority" => per_op(&|o| Value::from(o.priority.0)),
        "received_ts" => ts(job.received_timestamp),
        "start_ts" => ts(job.start_timestamp),
        "end_ts" => ts(job.end_timestamp),
        "summary" => Value::Array(job.summary().into_iter().map(Value::from).collect()),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::super::processor::TestDelayExecutor;
    use super::*;
    use serde_json::json;
    use std::collections::HashSet;

    fn temp_paths(tag: &str) -> Paths {
        let base = std::env::temp_dir().join(format!("ganeti-jobs-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).unwrap();
        Paths::virtual_node(&base.join("node1"), "node1").unwrap()
    }

    fn cleanup(paths: &Paths) {
        let _ = fs::remove_dir_all(paths.root().parent().unwrap());
    }

    fn delay(secs: f64) -> Value {
        json!({"OP_ID": "OP_TEST_DELAY", "duration": secs})
    }

    /// Runs `OP_TEST_DELAY` for real; `OP_TEST_GATE` blocks until the gate
    /// opens; `OP_TEST_DEFER` defers once (raising its priority), then
    /// succeeds. Records the order in which jobs execute.
    #[derive(Default)]
    struct GateExecutor {
        open: Mutex<bool>,
        cv: Condvar,
        order: Mutex<Vec<JobId>>,
        deferred: Mutex<HashSet<JobId>>,
    }

    impl GateExecutor {
        fn open_gate(&self) {
            *self.open.lock().unwrap() = true;
            self.cv.notify_all();
        }
        fn order(&self) -> Vec<JobId> {
            self.order.lock().unwrap().clone()
        }
    }

    impl JobExecutor for GateExecutor {
        fn execute_op(
            &self,
            job: JobId,
            op_index: usize,
            input: &Value,
            feedback: &mut dyn FnMut(LogType, String),
            locks_acquired: &mut dyn FnMut(),
        ) -> OpOutcome {
            self.order.lock().unwrap().push(job);
            match super::super::file::op_id(input) {
                Some("OP_TEST_GATE") => {
                    locks_acquired();
                    let mut open = self.open.lock().unwrap();
                    while !*open {
                        open = self.cv.wait(open).unwrap();
                    }
                    OpOutcome::Success(json!("gate"))
                }
                Some("OP_TEST_DEFER") => {
                    if self.deferred.lock().unwrap().insert(job) {
                        OpOutcome::Deferred {
                            raise_priority: true,
                        }
                    } else {
                        OpOutcome::Success(Value::Null)
                    }
                }
                _ => TestDelayExecutor.execute_op(job, op_index, input, feedback, locks_acquired),
            }
        }
    }

    fn open(paths: &Paths, ex: Arc<dyn JobExecutor>, workers: usize) -> JobQueue {
        JobQueue::open(
            paths,
            ex,
            QueueOptions {
                max_running_jobs: workers,
                ..QueueOptions::default()
            },
        )
        .unwrap()
    }

    /// Waits (through `wait_for_change`) until the job's status satisfies `pred`.
    fn wait_status(q: &JobQueue, id: JobId, pred: impl Fn(JobStatus) -> bool) -> Arc<QueuedJob> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut prev: Option<Vec<Value>> = None;
        loop {
            if let Some(j) = q.get(id) {
                if pred(j.status()) {
                    return j;
                }
            }
            assert!(
                Instant::now() < deadline,
                "job {id} never reached the status"
            );
            if let JobChange::Changed { info, .. } = q
                .wait_for_change(
                    id,
                    &["status"],
                    prev.as_deref(),
                    None,
                    Duration::from_secs(1),
                )
                .unwrap()
            {
                prev = Some(info);
            }
        }
    }

    fn wait_final(q: &JobQueue, id: JobId) -> Arc<QueuedJob> {
        wait_status(q, id, JobStatus::is_finalized)
    }

    fn on_disk(paths: &Paths, id: JobId) -> QueuedJob {
        QueuedJob::from_json(&fs::read(paths.queue_job_file(id.0)).unwrap()).unwrap()
    }

    #[test]
    fn submitted_job_runs_and_its_file_matches() {
        let paths = temp_paths("run");
        let q = open(&paths, Arc::new(TestDelayExecutor), 2);
        let id = q.submit(vec![delay(0.001)], Priority::NORMAL).unwrap();
        assert_eq!(id, JobId(1));
        // Acknowledged means on disk.
        assert!(paths.queue_job_file(1).exists());
        assert_eq!(
            fs::read_to_string(paths.queue_serial_file()).unwrap(),
            "1\n"
        );
        let j = wait_final(&q, id);
        assert_eq!(j.status(), JobStatus::Success);
        assert!(j.start_timestamp.is_some() && j.end_timestamp.is_some());
        assert_eq!(j.log_serial(), 1);
        // What a reader saw is what the disk holds.
        assert_eq!(&on_disk(&paths, id), j.as_ref());
        assert_eq!(
            fs::read_to_string(paths.queue_version_file()).unwrap(),
            "1\n"
        );
        let failed = q.submit(vec![delay(0.0)], Priority::NORMAL).unwrap();
        let j = wait_final(&q, failed);
        assert_eq!(j.status(), JobStatus::Error);
        assert_eq!(
            j.ops[0].result[1][0],
            json!("Duration must be greater than zero")
        );
        drop(q);
        cleanup(&paths);
    }

    #[test]
    fn multi_opcode_job_fails_the_rest_after_an_error() {
        let paths = temp_paths("multi");
        let q = open(&paths, Arc::new(TestDelayExecutor), 1);
        let id = q
            .submit(
                vec![delay(0.001), delay(0.0), delay(0.001)],
                Priority::NORMAL,
            )
            .unwrap();
        let j = wait_final(&q, id);
        let statuses: Vec<_> = j.ops.iter().map(|o| o.status).collect();
        assert_eq!(
            statuses,
            vec![OpStatus::Success, OpStatus::Error, OpStatus::Error]
        );
        assert_eq!(
            j.ops[2].result,
            json!(["OpExecError", ["Preceding opcode failed"]])
        );
        drop(q);
        cleanup(&paths);
    }

    #[test]
    fn ids_stay_monotonic_across_reopen_even_without_serial() {
        let paths = temp_paths("ids");
        let q = open(&paths, Arc::new(TestDelayExecutor), 2);
        let ids: Vec<_> = (0..3)
            .map(|_| q.submit(vec![delay(0.001)], Priority::NORMAL).unwrap())
            .collect();
        assert_eq!(ids, vec![JobId(1), JobId(2), JobId(3)]);
        for id in &ids {
            wait_final(&q, *id);
        }
        drop(q);
        let q = open(&paths, Arc::new(TestDelayExecutor), 2);
        assert_eq!(
            q.submit(vec![delay(0.001)], Priority::NORMAL).unwrap(),
            JobId(4)
        );
        wait_final(&q, JobId(4));
        let (archived, remaining) = q.auto_archive(-1.0, 60.0).unwrap();
        assert_eq!((archived, remaining), (4, 0));
        assert!(paths.queue_archived_job_file(4).exists());
        assert!(!paths.queue_job_file(4).exists());
        assert_eq!(q.get(JobId(4)).unwrap().status(), JobStatus::Success);
        drop(q);
        // Lose the serial file: the archive still says 4 was used.
        fs::remove_file(paths.queue_serial_file()).unwrap();
        let q = open(&paths, Arc::new(TestDelayExecutor), 2);
        assert_eq!(
            q.submit(vec![delay(0.001)], Priority::NORMAL).unwrap(),
            JobId(5)
        );
        drop(q);
        cleanup(&paths);
    }

    fn write_job(paths: &Paths, job: &QueuedJob) {
        fs::create_dir_all(paths.queue_dir()).unwrap();
        atomic_write(&paths.queue_job_file(job.id.0), &job.to_json(), 0o640).unwrap();
    }

    #[test]
    fn journal_replay_restores_writes_lost_before_a_checkpoint() {
        let paths = temp_paths("journal-replay");
        let q = open(&paths, Arc::new(TestDelayExecutor), 2);
        let id = q.submit(vec![delay(0.001)], Priority::NORMAL).unwrap();
        let done = wait_final(&q, id);
        drop(q);
        // A clean stop checkpoints: the journal holds no change.
        let qdir = paths.queue_dir();
        let journal = fs::read(paths.queue_journal_file()).unwrap();
        assert!(super::super::journal::decode_all(&qdir, &journal)
            .unwrap()
            .1
            .is_empty());
        // Simulate a crash that lost the direct writes of the journaled
        // changes: the records are there, the files are not (or stale).
        let mut records = Vec::new();
        super::super::journal::encode_start(1, &mut records);
        let content = fs::read(paths.queue_job_file(id.0)).unwrap();
        let queued = QueuedJob::new(
            JobId(7),
            vec![QueuedOp::new(delay(0.001), Priority::NORMAL)],
        );
        for op in [
            FileOp::Write {
                path: paths.queue_job_file(id.0),
                data: content,
            },
            FileOp::Write {
                path: paths.queue_job_file(7),
                data: queued.to_json(),
            },
            FileOp::Write {
                path: paths.queue_serial_file(),
                data: b"7\n".to_vec(),
            },
        ] {
            super::super::journal::encode(&qdir, 1, &op, &mut records);
        }
        records.extend_from_slice(b"GJR1\x10\0\0\0torn");
        fs::remove_file(paths.queue_job_file(id.0)).unwrap();
        atomic_write(&paths.queue_serial_file(), b"1\n", 0o640).unwrap();
        atomic_write(&paths.queue_journal_file(), &records, 0o640).unwrap();

        let q = open(&paths, Arc::new(TestDelayExecutor), 2);
        assert_eq!(q.get(id).unwrap().status(), done.status());
        assert_eq!(q.recovery_report().resumed, vec![JobId(7)]);
        assert_eq!(wait_final(&q, JobId(7)).status(), JobStatus::Success);
        let next = q.submit(vec![delay(0.001)], Priority::NORMAL).unwrap();
        assert_eq!(next, JobId(8));
        drop(q);
        let journal = fs::read(paths.queue_journal_file()).unwrap();
        assert!(super::super::journal::decode_all(&qdir, &journal)
            .unwrap()
            .1
            .is_empty());
        cleanup(&paths);
    }

    #[test]
    fn recovery_fails_running_resumes_queued_and_moves_corrupt_aside() {
        let paths = temp_paths("recover");
        let mut running =
            QueuedJob::new(JobId(1), vec![QueuedOp::new(delay(1.0), Priority::NORMAL)]);
        running.ops[0].status = OpStatus::Running;
        write_job(&paths, &running);
        let mut half = QueuedJob::new(
            JobId(2),
            vec![
                QueuedOp::new(delay(0.001), Priority::NORMAL),
                QueuedOp::new(delay(0.001), Priority::NORMAL),
            ],
        );
        half.ops[0].status = OpStatus::Success;
        write_job(&paths, &half);
        let mut canceling =
            QueuedJob::new(JobId(3), vec![QueuedOp::new(delay(1.0), Priority::NORMAL)]);
        canceling.ops[0].status = OpStatus::Canceling;
        write_job(&paths, &canceling);
        atomic_write(&paths.queue_job_file(4), b"{\"id\": 4, \"ops\": [", 0o640).unwrap();
        atomic_write(&paths.queue_dir().join(".job-5.tmp-1-1"), b"partial", 0o640).unwrap();

        let q = open(&paths, Arc::new(TestDelayExecutor), 2);
        let r = q.recovery_report().clone();
        assert_eq!(r.interrupted, vec![JobId(1)]);
        assert_eq!(r.canceled, vec![JobId(3)]);
        assert_eq!(r.resumed, vec![JobId(2)]);
        assert_eq!(r.temp_files_removed, 1);
        assert_eq!(r.corrupt.len(), 1);
        assert!(paths.queue_dir().join("job-4.corrupt").exists());
        assert!(!paths.queue_job_file(4).exists());

        let j1 = q.get(JobId(1)).unwrap();
        assert_eq!(j1.status(), JobStatus::Error);
        assert_eq!(
            j1.ops[0].result,
            json!(["OpExecError", [INTERRUPTED_MESSAGE]])
        );
        assert_eq!(on_disk(&paths, JobId(1)).status(), JobStatus::Error);
        assert_eq!(q.get(JobId(3)).unwrap().status(), JobStatus::Canceled);
        assert_eq!(wait_final(&q, JobId(2)).status(), JobStatus::Success);
        // Ids continue above every id seen, the corrupt one included.
        assert_eq!(
            q.submit(vec![delay(0.001)], Priority::NORMAL).unwrap(),
            JobId(5)
        );
        drop(q);
        cleanup(&paths);
    }

    #[test]
    fn drain_refuses_submissions_and_survives_restart() {
        let paths = temp_paths("drain");
        let q = open(&paths, Arc::new(TestDelayExecutor), 1);
        q.set_drain(true).unwrap();
        let err = q.submit(vec![delay(0.001)], Priority::NORMAL).unwrap_err();
        assert!(matches!(err, JobsError::Drained { .. }));
        assert!(err.to_string().contains("queue/drain"), "{err}");
        drop(q);
        let q = open(&paths, Arc::new(TestDelayExecutor), 1);
        assert!(q.is_drained());
        q.set_drain(false).unwrap();
        assert!(!paths.queue_drain_file().exists());
        assert_eq!(
            q.submit(vec![delay(0.001)], Priority::NORMAL).unwrap(),
            JobId(1)
        );
        drop(q);
        cleanup(&paths);
    }

    #[test]
    fn cancel_and_change_priority_follow_ganetis_rules() {
        let paths = temp_paths("cancel");
        let ex = Arc::new(GateExecutor::default());
        let q = open(&paths, ex.clone(), 1);
        let gate = q
            .submit(vec![json!({"OP_ID": "OP_TEST_GATE"})], Priority::NORMAL)
            .unwrap();
        wait_status(&q, gate, |s| s == JobStatus::Running);
        let a = q.submit(vec![delay(0.001)], Priority::NORMAL).unwrap();
        let b = q.submit(vec![delay(0.001)], Priority::NORMAL).unwrap();
        let c = q.submit(vec![delay(0.001)], Priority::NORMAL).unwrap();

        // Running: neither cancel nor (single opcode) priority change.
        let err = q.cancel(gate).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("Job {gate} is no longer waiting in the queue")
        );
        let err = q.change_priority(gate, Priority::HIGH).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("Job {gate} had no pending opcodes")
        );
        assert!(matches!(
            q.change_priority(a, Priority(5)),
            Err(JobsError::InvalidPriority(5))
        ));

        assert_eq!(q.cancel(a).unwrap(), format!("Job {a} canceled"));
        assert_eq!(on_disk(&paths, a).status(), JobStatus::Canceled);
        assert_eq!(q.get(a).unwrap().ops[0].result, json!(CANCELED_MESSAGE));
        let err = q.change_priority(a, Priority::HIGH).unwrap_err();
        assert_eq!(err.to_string(), format!("Job {a} is finished"));
        assert!(q.cancel(JobId(99)).is_err());

        // c overtakes b once made more urgent.
        q.change_priority(c, Priority::HIGH).unwrap();
        assert_eq!(on_disk(&paths, c).ops[0].priority, Priority::HIGH);
        ex.open_gate();
        wait_final(&q, b);
        wait_final(&q, c);
        assert_eq!(ex.order(), vec![gate, c, b]);
        drop(q);
        cleanup(&paths);
    }

    #[test]
    fn pool_runs_jobs_by_priority() {
        let paths = temp_paths("prio");
        let ex = Arc::new(GateExecutor::default());
        let q = open(&paths, ex.clone(), 1);
        let gate = q
            .submit(vec![json!({"OP_ID": "OP_TEST_GATE"})], Priority::NORMAL)
            .unwrap();
        wait_status(&q, gate, |s| s == JobStatus::Running);
        let low = q.submit(vec![delay(0.001)], Priority::LOW).unwrap();
        let normal = q.submit(vec![delay(0.001)], Priority::NORMAL).unwrap();
        let high = q.submit(vec![delay(0.001)], Priority::HIGH).unwrap();
        let by_input = q
            .submit(
                vec![json!({"OP_ID": "OP_TEST_DELAY", "duration": 0.001, "priority": -10})],
                Priority::LOW,
            )
            .unwrap();
        ex.open_gate();
        for id in [low, normal, high, by_input] {
            wait_final(&q, id);
        }
        assert_eq!(ex.order(), vec![gate, high, by_input, normal, low]);
        drop(q);
        cleanup(&paths);
    }

    #[test]
    fn deferred_opcode_is_requeued_with_raised_priority() {
        let paths = temp_paths("defer");
        let ex = Arc::new(GateExecutor::default());
        let q = open(&paths, ex.clone(), 1);
        let id = q
            .submit(vec![json!({"OP_ID": "OP_TEST_DEFER"})], Priority::NORMAL)
            .unwrap();
        let j = wait_final(&q, id);
        assert_eq!(j.status(), JobStatus::Success);
        assert_eq!(j.ops[0].priority, Priority::NORMAL.raised());
        assert_eq!(ex.order(), vec![id, id]);
        drop(q);
        cleanup(&paths);
    }

    #[test]
    fn dependencies_wait_succeed_fail_and_resolve_relative_ids() {
        let paths = temp_paths("deps");
        let ex = Arc::new(GateExecutor::default());
        let q = open(&paths, ex.clone(), 2);
        let gate = q
            .submit(vec![json!({"OP_ID": "OP_TEST_GATE"})], Priority::NORMAL)
            .unwrap();
        let mut dep_op = delay(0.001);
        dep_op["depends"] = json!([[gate.0, ["success"]]]);
        let waiter = q.submit(vec![dep_op], Priority::NORMAL).unwrap();
        let w = wait_status(&q, waiter, |s| s == JobStatus::Waiting);
        assert_eq!(w.ops[0].status, OpStatus::Waiting);
        ex.open_gate();
        assert_eq!(wait_final(&q, waiter).status(), JobStatus::Success);

        // A dependency that ends in a status not accepted fails the job.
        let bad = q.submit(vec![delay(0.0)], Priority::NORMAL).unwrap();
        let mut dep_op = delay(0.001);
        dep_op["depends"] = json!([[bad.0, ["success"]]]);
        let victim = q.submit(vec![dep_op], Priority::NORMAL).unwrap();
        let v = wait_final(&q, victim);
        assert_eq!(v.status(), JobStatus::Error);
        assert_eq!(
            v.ops[0].result,
            json!(["OpExecError", [format!(
                "Dependency job {bad} finished with status 'error', not one of 'success' as required"
            )]])
        );

        // Relative ids within one submission.
        let mut second = delay(0.001);
        second["depends"] = json!([[-1, []]]);
        let ids = q
            .submit_many(vec![
                JobSpec {
                    ops: vec![delay(0.001)],
                    priority: Priority::NORMAL,
                },
                JobSpec {
                    ops: vec![second.clone()],
                    priority: Priority::NORMAL,
                },
            ])
            .unwrap();
        let j = wait_final(&q, ids[1]);
        assert_eq!(j.ops[0].input["depends"], json!([[ids[0].0, []]]));
        assert_eq!(j.status(), JobStatus::Success);
        let err = q
            .submit_many(vec![JobSpec {
                ops: vec![second],
                priority: Priority::NORMAL,
            }])
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("Unable to resolve relative job ID -1"),
            "{err}"
        );

        // Depending on an unknown job fails it.
        let mut lost = delay(0.001);
        lost["depends"] = json!([[9999, []]]);
        let l = q.submit(vec![lost], Priority::NORMAL).unwrap();
        assert_eq!(
            wait_final(&q, l).ops[0].result,
            json!(["OpExecError", ["Dependency error: Job 9999 not found"]])
        );
        drop(q);
        cleanup(&paths);
    }

    #[test]
    fn canceled_dependency_cancels_the_dependent() {
        let paths = temp_paths("depcancel");
        let ex = Arc::new(GateExecutor::default());
        let q = open(&paths, ex.clone(), 1);
        let gate = q
            .submit(vec![json!({"OP_ID": "OP_TEST_GATE"})], Priority::NORMAL)
            .unwrap();
        wait_status(&q, gate, |s| s == JobStatus::Running);
        let first = q.submit(vec![delay(0.001)], Priority::NORMAL).unwrap();
        let mut dep_op = delay(0.001);
        dep_op["depends"] = json!([[first.0, ["success"]]]);
        let second = q.submit(vec![dep_op], Priority::NORMAL).unwrap();
        q.cancel(first).unwrap();
        ex.open_gate();
        assert_eq!(wait_final(&q, second).status(), JobStatus::Canceled);
        drop(q);
        cleanup(&paths);
    }

    #[test]
    fn wait_for_change_returns_log_entries_and_times_out() {
        let paths = temp_paths("wait");
        let ex = Arc::new(GateExecutor::default());
        let q = open(&paths, ex.clone(), 1);
        let gate = q
            .submit(vec![json!({"OP_ID": "OP_TEST_GATE"})], Priority::NORMAL)
            .unwrap();
        let running = wait_status(&q, gate, |s| s == JobStatus::Running);
        let info = vec![job_field(&running, "status")];
        let started = Instant::now();
        let r = q
            .wait_for_change(
                gate,
                &["status"],
                Some(&info),
                Some(0),
                Duration::from_millis(100),
            )
            .unwrap();
        assert_eq!(r, JobChange::NoChange);
        assert!(started.elapsed() >= Duration::from_millis(100));
        ex.open_gate();
        wait_final(&q, gate);

        let id = q
            .submit(
                vec![json!({"OP_ID": "OP_TEST_DELAY", "duration": 0.001, "repeat": 1})],
                Priority::NORMAL,
            )
            .unwrap();
        let done = wait_final(&q, id);
        let JobChange::Changed { info, log } = q
            .wait_for_change(
                id,
                &["status", "opstatus"],
                None,
                None,
                Duration::from_secs(1),
            )
            .unwrap()
        else {
            panic!("a final job always answers");
        };
        assert_eq!(info, vec![json!("success"), json!(["success"])]);
        assert_eq!(log.len(), 4);
        assert_eq!(
            log.iter().map(|e| e.serial).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        let JobChange::Changed { log, .. } = q
            .wait_for_change(id, &["status"], None, Some(2), Duration::from_secs(1))
            .unwrap()
        else {
            panic!("a final job always answers");
        };
        assert_eq!(log.len(), 2);
        assert_eq!(done.log_serial(), 4);
        assert!(matches!(
            q.wait_for_change(JobId(77), &["status"], None, None, Duration::ZERO),
            Err(JobsError::NotFound(_))
        ));
        drop(q);
        cleanup(&paths);
    }

    #[test]
    fn archive_refuses_unfinished_jobs() {
        let paths = temp_paths("archive");
        let ex = Arc::new(GateExecutor::default());
        let q = open(&paths, ex.clone(), 1);
        let gate = q
            .submit(vec![json!({"OP_ID": "OP_TEST_GATE"})], Priority::NORMAL)
            .unwrap();
        wait_status(&q, gate, |s| s == JobStatus::Running);
        assert!(q.archive(gate).is_err());
        ex.open_gate();
        wait_final(&q, gate);
        q.archive(gate).unwrap();
        assert!(paths.queue_archived_job_file(gate.0).exists());
        assert!(q.snapshots().is_empty());
        assert_eq!(q.get(gate).unwrap().status(), JobStatus::Success);
        drop(q);
        cleanup(&paths);
    }

    /// Environment variable that turns [`crash_child`] into the child side
    /// of the crash test; its value is the node root to use.
    const CRASH_ENV: &str = "GANETI_JOBS_CRASH_ROOT";

    /// Child side of the crash test (does nothing unless started by it):
    /// submits jobs from four threads forever, printing `ACK <id>` once
    /// each submission returned, until the parent kills it.
    #[test]
    fn crash_child() {
        use std::io::Write;
        let Ok(root) = std::env::var(CRASH_ENV) else {
            return;
        };
        let paths = Paths::virtual_node(std::path::Path::new(&root), "node1").unwrap();
        let q = Arc::new(open(&paths, Arc::new(TestDelayExecutor), 4));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let q = Arc::clone(&q);
                std::thread::spawn(move || loop {
                    let op = json!({"OP_ID": "OP_TEST_DELAY", "duration": 0.001, "repeat": t % 2});
                    let id = q.submit(vec![op], Priority::NORMAL).unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {id}").unwrap();
                    out.flush().unwrap();
                })
            })
            .collect();
        for t in threads {
            let _ = t.join();
        }
    }

    /// A masterd killed with SIGKILL at an arbitrary point loses no
    /// acknowledged job and leaves no corrupt or temporary file.
    #[test]
    fn acknowledged_jobs_survive_sigkill() {
        use std::io::{BufRead, BufReader};
        for seed in 1..=5u64 {
            let paths = temp_paths(&format!("crash{seed}"));
            // The test binary itself is the child; std's Command is needed
            // to keep a pipe and kill it mid-flight, which sys::cmd's runner
            // (run to completion) does not offer.
            #[allow(clippy::disallowed_methods)]
            let mut child = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "jobs::queue::tests::crash_child",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CRASH_ENV, paths.root())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            // A pseudo-random number of acknowledgements before the kill.
            let kill_after = 5 + (seed * 2_654_435_761 % 97) as usize;
            let mut acked = Vec::new();
            while acked.len() < kill_after {
                let line = lines.next().expect("child exited early").unwrap();
                if let Some(id) = line.strip_prefix("ACK ") {
                    acked.push(JobId(id.trim().parse().unwrap()));
                }
            }
            child.kill().unwrap();
            // Acknowledgements printed before the kill count too.
            for line in lines.map_while(Result::ok) {
                if let Some(id) = line.strip_prefix("ACK ") {
                    acked.push(JobId(id.trim().parse().unwrap()));
                }
            }
            child.wait().unwrap();

            let q = open(&paths, Arc::new(TestDelayExecutor), 4);
            let report = q.recovery_report().clone();
            assert!(
                report.corrupt.is_empty(),
                "seed {seed}: {:?}",
                report.corrupt
            );
            for id in &acked {
                let j = q
                    .get(*id)
                    .unwrap_or_else(|| panic!("seed {seed}: acknowledged job {id} lost"));
                let s = j.status();
                // A resumed (queued) job may already be running again in
                // the reopened queue's workers.
                assert!(
                    s.is_finalized() || report.resumed.contains(id),
                    "seed {seed}: job {id} left {s}"
                );
            }
            // Resumed jobs run to the end; new ids are above all old ones.
            for id in &report.resumed {
                assert_eq!(wait_final(&q, *id).status(), JobStatus::Success);
            }
            let max_acked = acked.iter().max().unwrap();
            assert!(q.submit(vec![delay(0.001)], Priority::NORMAL).unwrap() > *max_acked);
            drop(q);
            let leftovers: Vec<_> = fs::read_dir(paths.queue_dir())
                .unwrap()
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| is_temp_name(n) || n.ends_with(".corrupt"))
                .collect();
            assert!(leftovers.is_empty(), "seed {seed}: {leftovers:?}");
            cleanup(&paths);
        }
    }
}
