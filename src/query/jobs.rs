//! Job fields (`gnt-job list`, `/2/query/job`): Ganeti 3.0's `JOB_FIELDS`.
//!
//! Rows come from the job queue, not the configuration: the queue (issue 3)
//! turns each job into a [`JobRow`] and calls [`query_jobs`].

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::fields::{field, Field, Table};
use super::filter::FieldFlag;
use super::{FieldKind, QueryError, QueryResponse, ResultCell};

/// A timestamp as jobs store it: `[seconds, microseconds]`.
pub type SplitTimestamp = (i64, i64);

/// What the job query shows of one job (one row).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobRow {
    /// The job id.
    pub id: u64,
    /// Job status (`queued`, `waiting`, `canceling`, `running`,
    /// `canceled`, `success`, `error`).
    pub status: String,
    /// Current priority (lower runs first; default 0).
    pub priority: i64,
    /// Whether the job is in the archive.
    pub archived: bool,
    /// The opcodes, as submitted (JSON).
    pub ops: Vec<Value>,
    /// Result of each opcode (null until it ends).
    pub opresult: Vec<Value>,
    /// Status of each opcode.
    pub opstatus: Vec<String>,
    /// Log entries of each opcode.
    pub oplog: Vec<Vec<Value>>,
    /// When each opcode was taken up.
    pub opstart: Vec<Option<SplitTimestamp>>,
    /// When each opcode started executing (after its locks).
    pub opexec: Vec<Option<SplitTimestamp>>,
    /// When each opcode ended.
    pub opend: Vec<Option<SplitTimestamp>>,
    /// Priority of each opcode.
    pub oppriority: Vec<i64>,
    /// A one-line summary of each opcode (`INSTANCE_STARTUP(web1)`).
    pub summary: Vec<String>,
    /// When the job was received.
    pub received_ts: Option<SplitTimestamp>,
    /// When the job started.
    pub start_ts: Option<SplitTimestamp>,
    /// When the job ended.
    pub end_ts: Option<SplitTimestamp>,
}

/// The getter type of job fields.
pub type JobGetter = dyn Fn(&JobRow) -> ResultCell + Send + Sync;

type F = Field<JobGetter>;

fn simple(
    name: &str,
    title: &str,
    kind: FieldKind,
    doc: &str,
    get: impl Fn(&JobRow) -> ResultCell + Send + Sync + 'static,
) -> F {
    field(name, title, kind, doc, Box::new(get))
}

/// The job field table.
pub fn table() -> &'static Table<JobGetter> {
    static TABLE: OnceLock<Table<JobGetter>> = OnceLock::new();
    TABLE.get_or_init(build)
}

fn build() -> Table<JobGetter> {
    use FieldKind::*;
    let with = |mut f: F, flag: FieldFlag| {
        f.flag = flag;
        f
    };
    let f: Vec<F> = vec![
        with(
            simple("id", "ID", Number, "Job id", |j| ResultCell::normal(j.id)),
            FieldFlag::JobId,
        ),
        simple("status", "Status", Text, "Job status", |j| {
            ResultCell::normal(j.status.as_str())
        }),
        simple(
            "priority",
            "Priority",
            Number,
            "Current job priority",
            |j| ResultCell::normal(j.priority),
        ),
        simple(
            "archived",
            "Archived",
            Bool,
            "Whether the job is archived",
            |j| ResultCell::normal(j.archived),
        ),
        simple("ops", "OpCodes", Other, "The opcodes", |j| {
            ResultCell::normal(json!(j.ops))
        }),
        simple(
            "opresult",
            "OpCode_result",
            Other,
            "Result of each opcode",
            |j| ResultCell::normal(json!(j.opresult)),
        ),
        simple(
            "opstatus",
            "OpCode_status",
            Other,
            "Status of each opcode",
            |j| ResultCell::normal(json!(j.opstatus)),
        ),
        simple("oplog", "OpCode_log", Other, "Log of each opcode", |j| {
            ResultCell::normal(json!(j.oplog))
        }),
        simple(
            "opstart",
            "OpCode_start",
            Other,
            "When each opcode was taken up",
            |j| ResultCell::normal(json!(j.opstart)),
        ),
        simple(
            "opexec",
            "OpCode_exec",
            Other,
            "When each opcode started executing",
            |j| ResultCell::normal(json!(j.opexec)),
        ),
        simple(
            "opend",
            "OpCode_end",
            Other,
            "When each opcode ended",
            |j| ResultCell::normal(json!(j.opend)),
        ),
        simple(
            "oppriority",
            "OpCode_prio",
            Other,
            "Priority of each opcode",
            |j| ResultCell::normal(json!(j.oppriority)),
        ),
        simple("summary", "Summary", Other, "Summary of each opcode", |j| {
            ResultCell::normal(json!(j.summary))
        }),
        with(
            simple(
                "received_ts",
                "Received",
                Other,
                "When the job was received",
                |j| ResultCell::normal(json!(j.received_ts)),
            ),
            FieldFlag::SplitTimestamp,
        ),
        with(
            simple("start_ts", "Start", Other, "When the job started", |j| {
                ResultCell::normal(json!(j.start_ts))
            }),
            FieldFlag::SplitTimestamp,
        ),
        with(
            simple("end_ts", "End", Other, "When the job ended", |j| {
                ResultCell::normal(json!(j.end_ts))
            }),
            FieldFlag::SplitTimestamp,
        ),
    ];
    Table::new(f)
}

/// Queries jobs given as rows by the job queue; sorted by id.
pub fn query_jobs(
    rows: &[JobRow],
    selected: &[String],
    filter: Option<&Value>,
) -> Result<QueryResponse, QueryError> {
    super::run(
        table(),
        rows.iter(),
        selected,
        filter,
        |j| j.id.to_string(),
        |f, j| (f.get)(j),
    )
}
