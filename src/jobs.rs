//! The persistent job queue of masterd.
//!
//! masterd's LUXI handlers submit, query, wait on, cancel and archive jobs
//! through [`JobQueue`]; its worker pool runs each job's opcodes through a
//! [`JobExecutor`] (masterd's LU dispatcher; [`TestDelayExecutor`] in tests
//! and benchmarks). This module owns `queue/` under the data directory and
//! nothing else: it never reads the cluster config and never talks to a
//! node (the executor does that).
//!
//! * [`file`](mod@file) (`jobs/file.rs`): ids, statuses, the job as data and its file
//!   format, which is Ganeti 3.0's.
//! * [`committer`] (`jobs/committer.rs`): group commit, making every change
//!   durable before anyone hears of it, many changes per flush.
//! * [`journal`] (`jobs/journal.rs`): the write-ahead journal of the
//!   default sync mode, its record format and its replay at startup.
//! * [`pool`] (`jobs/pool.rs`): worker threads taking runnable jobs by
//!   priority, with deferral (design 2.3).
//! * [`processor`] (`jobs/processor.rs`): the [`JobExecutor`] trait and the
//!   `OP_TEST_DELAY` executor.
//! * [`archive`] (`jobs/archive.rs`): the archive layout and reading jobs
//!   back from it.
//! * [`queue`] (`jobs/queue.rs`): [`JobQueue`], tying it together:
//!   submission, the job processor, dependencies, cancel, priorities,
//!   waiting for changes, archiving, and recovery when masterd restarts.
//!
//! `docs/jobs.md` describes the file format, the directory layout, the
//! group commit and the recovery rules.

pub mod archive;
pub mod committer;
pub mod file;
pub mod journal;
pub mod pool;
pub mod processor;
pub mod queue;

pub use committer::{CommitError, SyncMode};
pub use file::{JobId, JobStatus, LogEntry, LogType, OpStatus, QueuedJob, QueuedOp, Timestamp};
pub use processor::{JobExecutor, OpOutcome, TestDelayExecutor};
pub use queue::{JobChange, JobQueue, JobsError, QueueOptions, RecoveryReport};
