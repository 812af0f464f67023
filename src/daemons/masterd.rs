//! `ganeti-masterd`: the master daemon.
//!
//! Owns the cluster config (through [`ConfigStore`], its only writer) and
//! serves LUXI on two unix sockets under the root: `ganeti-master` and
//! `ganeti-query` (the one Ganeti 3.0's own clients use). It starts only on
//! the node the config names as master.
//!
//! It answers every LUXI method: queries from the config snapshot
//! (`QueryClusterInfo`, `QueryConfigValues`, `QueryTags`, Query2), and job
//! calls through the [`JobQueue`], whose workers run opcodes through
//! [`crate::cmdlib`]. Opcodes whose logical unit is not built yet are
//! accepted and fail with an explicit "not implemented yet" error.

use crate::cmdlib::cluster::{cluster_info, query_config_values};
use crate::cmdlib::Processor;
use crate::config::objects::ConfigData;
use crate::config::store::ConfigStore;
use crate::daemons::{Daemon, DaemonError};
use crate::error::ErrorKind;
use crate::jobs::file::{JobId, QueuedJob};
use crate::jobs::processor::LuExecutor;
use crate::jobs::queue::{job_field, JobChange, JobQueue, JobSpec, JobsError, QueueOptions};
use crate::locking::{LockManager, Priority};
use crate::luxi::server::{serve, Handler};
use crate::luxi::{LuxiFailure, Method};
use crate::query::jobs::JobRow;
use serde_json::{json, Value};
use smol::net::unix::UnixListener;
use std::path::Path;
use std::sync::Arc;

/// Mode of the LUXI sockets: root and the admin group only.
const SOCKET_MODE: u32 = 0o660;

/// Entry point.
pub fn main(_program: &str, args: &[String]) -> u8 {
    crate::daemons::run("ganeti-masterd", args, run)
}

fn run(daemon: &Daemon) -> Result<(), DaemonError> {
    let paths = daemon.paths.clone();
    let store = ConfigStore::open(&paths)
        .map_err(|e| DaemonError::body("loading the cluster configuration", e))?;
    let snapshot = store.snapshot();
    let me = paths.hostname();
    let master = crate::cmdlib::cluster::master_node_name(&snapshot);
    if master.as_deref() != Some(me.as_str()) {
        return Err(DaemonError::body(
            "checking the master role",
            format!(
                "this node ({me}) is not the master node ({}) of the cluster; refusing to start",
                master.unwrap_or_else(|| "unknown".into())
            ),
        ));
    }
    check_master_votes(daemon, &snapshot, &me)?;
    crate::sys::fs::ensure_dir(&paths.socket_dir(), 0o750)
        .map_err(|e| DaemonError::body("creating the socket directory", e))?;
    let store = Arc::new(store);
    let locks = Arc::new(LockManager::new(crate::cmdlib::initial_locks(&snapshot)));
    let rpc: Arc<dyn crate::rpc::NodeRpc> = Arc::new(
        crate::rpc::client::RpcClient::new(&paths.noded_cert(), crate::net::noded_port(&paths))
            .map_err(|e| DaemonError::body("loading the cluster certificate for RPC", e))?,
    );
    // Every committed config change goes to the candidates and ssconf to all nodes.
    store.set_replicator(Arc::new(crate::cmdlib::redist::RpcReplicator::new(
        Arc::clone(&rpc),
    )));
    let executor = Arc::new(LuExecutor::new(Processor::new(
        Arc::clone(&store),
        Arc::clone(&locks),
        Arc::clone(&rpc),
    )));
    let options = QueueOptions {
        max_running_jobs: usize::try_from(snapshot.cluster.max_running_jobs.max(1)).unwrap_or(1),
        ..QueueOptions::default()
    };
    let queue = JobQueue::open(&paths, executor, options)
        .map_err(|e| DaemonError::body("opening the job queue", e))?;
    let report = queue.recovery_report();
    log::info!("job queue opened: {report:?}");
    let handler = Arc::new(MasterHandler {
        store,
        rpc,
        paths: paths.clone(),
        queue: Arc::new(queue),
        locks,
    });
    let ex = Arc::new(smol::Executor::new());
    let sockets = [paths.master_socket(), paths.query_socket()];
    let mut listeners = Vec::new();
    for sock in &sockets {
        listeners.push(bind_socket(sock)?);
    }
    for l in listeners {
        ex.spawn(serve(l, Arc::clone(&handler), Arc::clone(&ex)))
            .detach();
    }
    log::info!(
        "masterd serving LUXI on {} and {}",
        sockets[0].display(),
        sockets[1].display()
    );
    daemon.ready();
    let shutdown = daemon.wait_for_shutdown();
    smol::block_on(ex.run(shutdown));
    for sock in &sockets {
        let _ = std::fs::remove_file(sock);
    }
    Ok(())
}

/// Start-up voting (Ganeti's `CheckAgreement`): unless `--no-voting
/// --yes-do-it`, the other nodes must not name another master. The rules
/// are [`crate::bootstrap::master::startup_verdict`]; a single-node
/// cluster has nobody to ask.
fn check_master_votes(daemon: &Daemon, config: &ConfigData, me: &str) -> Result<(), DaemonError> {
    if daemon.args.no_voting {
        if !daemon.args.yes_do_it {
            return Err(DaemonError::body(
                "checking the master role",
                "--no-voting can be dangerous (two masters); add --yes-do-it to confirm",
            ));
        }
        log::warn!("starting without asking the other nodes (--no-voting)");
        return Ok(());
    }
    if config.nodes.len() <= 1 {
        return Ok(());
    }
    let rpc = crate::rpc::client::RpcClient::new(
        &daemon.paths.noded_cert(),
        crate::net::noded_port(&daemon.paths),
    )
    .map_err(|e| DaemonError::body("preparing node RPC for the master vote", e))?;
    let mut wait = |d: std::time::Duration| std::thread::sleep(d);
    match crate::bootstrap::master::confirm_master_role(&rpc, config, me, &mut wait) {
        Ok(None) => Ok(()),
        Ok(Some(warning)) => {
            log::warn!("{warning}");
            Ok(())
        }
        Err(e) => Err(DaemonError::body("checking the master role", e)),
    }
}

fn bind_socket(path: &Path) -> Result<UnixListener, DaemonError> {
    // A socket left by a crashed masterd would make bind fail; our pid
    // file lock guarantees no live masterd owns it.
    let _ = std::fs::remove_file(path);
    let l =
        UnixListener::bind(path).map_err(|e| DaemonError::body("binding the LUXI socket", e))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
        .map_err(|e| DaemonError::body("setting the LUXI socket mode", e))?;
    Ok(l)
}

/// Answers LUXI calls: queries from the config snapshot, job calls
/// through the job queue.
struct MasterHandler {
    store: Arc<ConfigStore>,
    rpc: Arc<dyn crate::rpc::NodeRpc>,
    paths: crate::paths::Paths,
    queue: Arc<JobQueue>,
    locks: Arc<LockManager>,
}

impl Handler for MasterHandler {
    async fn call(&self, method: Method, args: Value) -> Result<Value, LuxiFailure> {
        let config = self.store.snapshot();
        match method {
            Method::QueryClusterInfo => Ok(cluster_info(&config)),
            Method::QueryConfigValues => query_config_values(&config, &self.paths, &args)
                .map_err(|e| LuxiFailure { class: "OpPrereqError".into(), args: lu_error_args(&e) }),
            Method::QueryTags => query_tags(&config, &args),
            Method::Query => {
                let live = self.gather_live(&config, &args).await;
                self.run_query(&config, &args, live.as_ref())
            }
            Method::QueryFields => query_fields(&args),
            Method::QueryExports => {
                let rpc = Arc::clone(&self.rpc);
                let snapshot = Arc::clone(&config);
                let live = smol::unblock(move || {
                    crate::cmdlib::live::gather_exports(rpc.as_ref(), &snapshot)
                })
                .await;
                query_exports(&config, &args, &live)
            }
            Method::SubmitJob => self.submit(&args, DrainUse::Respect),
            Method::SubmitJobToDrainedQueue => self.submit(&args, DrainUse::Ignore),
            Method::SubmitManyJobs => self.submit_many(&args),
            Method::WaitForJobChange => self.wait_for_change(args).await,
            Method::QueryJobs => self.query_jobs(&args),
            Method::CancelJob => {
                let id = job_id_arg(&args, 0)?;
                Ok(action_reply(self.queue.cancel(id)))
            }
            Method::ChangeJobPriority => {
                let id = job_id_arg(&args, 0)?;
                let prio = args.get(1).and_then(Value::as_i64).and_then(|p| i32::try_from(p).ok()).ok_or_else(|| {
                    LuxiFailure::prereq("ChangeJobPriority needs an integer priority", ErrorKind::Inval)
                })?;
                Ok(action_reply(self.queue.change_priority(id, Priority(prio))))
            }
            Method::ArchiveJob => {
                let id = job_id_arg(&args, 0)?;
                Ok(Value::Bool(self.queue.archive(id).is_ok()))
            }
            Method::AutoArchiveJobs => {
                let age = args.get(0).and_then(Value::as_f64).unwrap_or(-1.0);
                let timeout = args.get(1).and_then(Value::as_f64).unwrap_or(30.0);
                let queue = Arc::clone(&self.queue);
                let r = smol::unblock(move || queue.auto_archive(age, timeout)).await;
                r.map(|(archived, left)| json!([archived, left])).map_err(jobs_failure)
            }
            Method::SetDrainFlag => {
                let on = args.get(0).and_then(Value::as_bool).ok_or_else(|| {
                    LuxiFailure::prereq("SetDrainFlag needs a boolean", ErrorKind::Inval)
                })?;
                self.queue.set_drain(on).map(|()| Value::Bool(true)).map_err(jobs_failure)
            }
            Method::SetWatcherPause => self.set_watcher_pause(&args),
            other => Err(LuxiFailure::protocol(format!(
                "LUXI method {} is not implemented yet in ganeti-rs {}; it comes with the job queue",
                other.name(),
                crate::constants::RELEASE_VERSION
            ))),
        }
    }
}

/// `QueryExports(nodes, use_locking)`: node name → its exports, or
/// `false` for a node that did not answer (Ganeti's `LUBackupQuery`
/// shape); `nodes` empty means every node.
fn query_exports(
    config: &ConfigData,
    args: &Value,
    live: &crate::query::live::LiveData,
) -> Result<Value, LuxiFailure> {
    let wanted = string_list(args.get(0), "the node list")?.unwrap_or_default();
    let mut out = serde_json::Map::new();
    for name in &wanted {
        if !config.nodes.values().any(|n| n.name.as_str() == name) {
            return Err(LuxiFailure::prereq(
                format!("Node '{name}' is unknown"),
                ErrorKind::NoEnt,
            ));
        }
    }
    for n in config.nodes.values() {
        if !wanted.is_empty() && !wanted.iter().any(|w| w == n.name.as_str()) {
            continue;
        }
        let exports = live
            .nodes
            .get(n.uuid.as_str())
            .and_then(|l| l.exports.as_ref())
            .map_or(Value::Bool(false), |l| json!(l));
        out.insert(n.name.to_string(), exports);
    }
    Ok(Value::Object(out))
}

/// `QueryTags(kind, name)`: the tags of the cluster or of one named object.
fn query_tags(config: &ConfigData, args: &Value) -> Result<Value, LuxiFailure> {
    let kind = args.get(0).and_then(Value::as_str);
    let name = args.get(1).and_then(Value::as_str).unwrap_or_default();
    let tags = match kind {
        Some("cluster") => Some(&config.cluster.tags),
        Some("node") => config.node_by_name(name).map(|(_, n)| &n.tags),
        Some("instance") => config.instance_by_name(name).map(|(_, i)| &i.tags),
        Some("nodegroup") => config.group_by_name(name).map(|(_, g)| &g.tags),
        Some("network") => config
            .networks
            .values()
            .find(|n| n.name == name)
            .map(|n| &n.tags),
        _ => {
            return Err(LuxiFailure::prereq(
                format!("invalid tag kind {}", args.get(0).unwrap_or(&Value::Null)),
                ErrorKind::Inval,
            ))
        }
    };
    match tags {
        Some(t) => Ok(serde_json::to_value(t).unwrap_or(Value::Null)),
        None => Err(LuxiFailure::prereq(
            format!("{} {name:?} not known", kind.unwrap_or_default()),
            ErrorKind::NoEnt,
        )),
    }
}

/// The arguments of an LU error's encoded exception.
fn lu_error_args(e: &crate::cmdlib::LuError) -> Vec<Value> {
    e.encode()
        .get(1)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn resource_arg(args: &Value) -> Result<crate::query::Resource, LuxiFailure> {
    let what = args.get(0).and_then(Value::as_str).unwrap_or_default();
    what.parse()
        .map_err(|e: crate::query::QueryError| LuxiFailure::prereq(e.to_string(), ErrorKind::Inval))
}

fn string_list(v: Option<&Value>, what: &str) -> Result<Option<Vec<String>>, LuxiFailure> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| {
                LuxiFailure::prereq(
                    format!("{what} must be a list of strings"),
                    ErrorKind::Inval,
                )
            }),
        Some(_) => Err(LuxiFailure::prereq(
            format!("{what} must be a list of strings"),
            ErrorKind::Inval,
        )),
    }
}

/// Whether a submission honours the drain flag.
#[derive(Clone, Copy)]
enum DrainUse {
    Respect,
    Ignore,
}

fn jobs_failure(e: JobsError) -> LuxiFailure {
    match &e {
        JobsError::Drained { .. } => LuxiFailure {
            class: "JobQueueDrainError".into(),
            args: vec![json!(e.to_string())],
        },
        JobsError::NotFound(_) => LuxiFailure::prereq(e.to_string(), ErrorKind::NoEnt),
        JobsError::InvalidPriority(_) | JobsError::InvalidJob { .. } => {
            LuxiFailure::prereq(crate::error::chain(&e), ErrorKind::Inval)
        }
        _ => LuxiFailure {
            class: "JobQueueError".into(),
            args: vec![json!(crate::error::chain(&e))],
        },
    }
}

/// `[success, message]`, the answer of CancelJob and ChangeJobPriority.
fn action_reply(r: Result<String, JobsError>) -> Value {
    match r {
        Ok(msg) => json!([true, msg]),
        Err(e) => json!([false, e.to_string()]),
    }
}

fn job_id_arg(args: &Value, index: usize) -> Result<JobId, LuxiFailure> {
    let v = args.get(index).unwrap_or(&Value::Null);
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .map(JobId)
        .ok_or_else(|| LuxiFailure::prereq(format!("invalid job id {v}"), ErrorKind::Inval))
}

/// Checks every opcode of a job before it is queued: unknown opcodes or
/// parameters are refused at submission, naming them, as Ganeti does.
fn checked_ops(ops: &Value) -> Result<Vec<Value>, LuxiFailure> {
    let list = ops
        .as_array()
        .ok_or_else(|| LuxiFailure::prereq("a job is a list of opcodes", ErrorKind::Inval))?;
    if list.is_empty() {
        return Err(LuxiFailure::prereq(
            "a job needs at least one opcode",
            ErrorKind::Inval,
        ));
    }
    for op in list {
        let parsed = crate::opcodes::OpCode::from_json(op)
            .map_err(|e| LuxiFailure::prereq(crate::error::chain(&e), ErrorKind::Inval))?;
        parsed
            .validate()
            .map_err(|e| LuxiFailure::prereq(crate::error::chain(&e), ErrorKind::Inval))?;
    }
    Ok(list.clone())
}

fn ts_pair(t: Option<crate::jobs::file::Timestamp>) -> Option<(i64, i64)> {
    t.map(|t| (t.0, t.1))
}

/// A job as a Query2 row.
fn job_row(job: &QueuedJob) -> JobRow {
    let ops = &job.ops;
    JobRow {
        id: job.id.0,
        status: job.status().as_str().to_string(),
        priority: i64::from(job.priority().0),
        archived: false,
        ops: ops.iter().map(|o| o.input.clone()).collect(),
        opresult: ops.iter().map(|o| o.result.clone()).collect(),
        opstatus: ops.iter().map(|o| o.status.as_str().to_string()).collect(),
        oplog: ops
            .iter()
            .map(|o| {
                o.log
                    .iter()
                    .map(|l| serde_json::to_value(l).unwrap_or(Value::Null))
                    .collect()
            })
            .collect(),
        opstart: ops.iter().map(|o| ts_pair(o.start_timestamp)).collect(),
        opexec: ops.iter().map(|o| ts_pair(o.exec_timestamp)).collect(),
        opend: ops.iter().map(|o| ts_pair(o.end_timestamp)).collect(),
        oppriority: ops.iter().map(|o| i64::from(o.priority.0)).collect(),
        summary: ops
            .iter()
            .map(|o| match crate::opcodes::OpCode::from_json(&o.input) {
                Ok(op) => op.summary(),
                Err(_) => o
                    .op_id()
                    .unwrap_or("?")
                    .trim_start_matches("OP_")
                    .to_string(),
            })
            .collect(),
        received_ts: ts_pair(job.received_timestamp),
        start_ts: ts_pair(job.start_timestamp),
        end_ts: ts_pair(job.end_timestamp),
    }
}

impl MasterHandler {
    /// LUXI `Query(what, fields, filter)`: Query2 over the config snapshot,
    /// or over the job queue for `job`.
    /// Live data for a node or instance query asking for live fields,
    /// gathered off the LUXI executor so a slow node never stalls other
    /// clients; `None` when no live field is asked for.
    async fn gather_live(
        &self,
        config: &Arc<ConfigData>,
        args: &Value,
    ) -> Option<crate::query::live::LiveData> {
        use crate::query::live::{wanted, INSTANCE_LIVE_FIELDS, NODE_LIVE_FIELDS};
        let resource = resource_arg(args).ok()?;
        if resource == crate::query::Resource::Export {
            let rpc = Arc::clone(&self.rpc);
            let config = Arc::clone(config);
            return Some(
                smol::unblock(move || crate::cmdlib::live::gather_exports(rpc.as_ref(), &config))
                    .await,
            );
        }
        let fields = string_list(args.get(1), "the field list").ok()??;
        let instances =
            resource == crate::query::Resource::Instance && wanted(&fields, INSTANCE_LIVE_FIELDS);
        let resources =
            resource == crate::query::Resource::Node && wanted(&fields, NODE_LIVE_FIELDS);
        if !instances && !resources {
            return None;
        }
        let rpc = Arc::clone(&self.rpc);
        let config = Arc::clone(config);
        Some(
            smol::unblock(move || {
                crate::cmdlib::live::gather(rpc.as_ref(), &config, instances, resources)
            })
            .await,
        )
    }

    fn run_query(
        &self,
        config: &ConfigData,
        args: &Value,
        live: Option<&crate::query::live::LiveData>,
    ) -> Result<Value, LuxiFailure> {
        if args.get(0).and_then(Value::as_str) == Some("lock") {
            let fields = string_list(args.get(1), "the field list")?.unwrap_or_default();
            return Ok(lock_query(&self.locks, &fields));
        }
        let resource = resource_arg(args)?;
        let fields = string_list(args.get(1), "the field list")?.unwrap_or_default();
        let filter = args.get(2).filter(|f| !f.is_null());
        let response = if resource == crate::query::Resource::Job {
            let rows: Vec<JobRow> = self.queue.snapshots().iter().map(|j| job_row(j)).collect();
            crate::query::jobs::query_jobs(&rows, &fields, filter)
        } else {
            crate::query::query_live(resource, &fields, filter, config, live)
        }
        .map_err(|e| LuxiFailure::prereq(crate::error::chain(&e), e.kind()))?;
        let mut v = serde_json::to_value(response)
            .map_err(|e| LuxiFailure::protocol(format!("encoding the query result: {e}")))?;
        if resource == crate::query::Resource::Cluster {
            fill_cluster_live_fields(&mut v, &fields, &self.paths);
        }
        Ok(v)
    }

    fn submit(&self, args: &Value, drain: DrainUse) -> Result<Value, LuxiFailure> {
        let ops = checked_ops(args.get(0).unwrap_or(&Value::Null))?;
        let id = match drain {
            DrainUse::Respect => self.queue.submit(ops, Priority::NORMAL),
            DrainUse::Ignore => self.queue.submit_to_drained(ops, Priority::NORMAL),
        }
        .map_err(jobs_failure)?;
        Ok(json!(id.0))
    }

    /// `SubmitManyJobs`: `[[true, id] | [false, message], …]`.
    fn submit_many(&self, args: &Value) -> Result<Value, LuxiFailure> {
        let jobs = args.get(0).and_then(Value::as_array).ok_or_else(|| {
            LuxiFailure::prereq("SubmitManyJobs takes a list of jobs", ErrorKind::Inval)
        })?;
        let mut specs = Vec::with_capacity(jobs.len());
        for job in jobs {
            match checked_ops(job) {
                Ok(ops) => specs.push(JobSpec {
                    ops,
                    priority: Priority::NORMAL,
                }),
                Err(f) => {
                    return Ok(Value::Array(
                        jobs.iter().map(|_| json!([false, f.message()])).collect(),
                    ))
                }
            }
        }
        match self.queue.submit_many(specs) {
            Ok(ids) => Ok(Value::Array(
                ids.iter().map(|id| json!([true, id.0])).collect(),
            )),
            Err(e) => Ok(Value::Array(
                jobs.iter().map(|_| json!([false, e.to_string()])).collect(),
            )),
        }
    }

    /// `WaitForJobChange(id, fields, prev_info, prev_log_serial, timeout)`.
    /// The wait blocks a thread of its own, so many waiting clients never
    /// starve the executor or each other.
    async fn wait_for_change(&self, args: Value) -> Result<Value, LuxiFailure> {
        let id = job_id_arg(&args, 0)?;
        let fields = string_list(args.get(1), "the field list")?.unwrap_or_default();
        let prev_info = args.get(2).and_then(Value::as_array).cloned();
        let prev_serial = args.get(3).and_then(Value::as_u64);
        let timeout = args
            .get(4)
            .and_then(Value::as_f64)
            .unwrap_or(60.0)
            .clamp(0.0, 89.0);
        let queue = Arc::clone(&self.queue);
        let (tx, rx) = smol::channel::bounded(1);
        let spawned = std::thread::Builder::new()
            .name("luxi-wait".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
                let r = queue.wait_for_change(
                    id,
                    &fields,
                    prev_info.as_deref(),
                    prev_serial,
                    std::time::Duration::from_secs_f64(timeout),
                );
                let _ = tx.send_blocking(r);
            });
        if let Err(e) = spawned {
            return Err(LuxiFailure::protocol(format!(
                "cannot start a waiting thread: {e}"
            )));
        }
        match rx.recv().await {
            Ok(Ok(JobChange::NoChange)) => Ok(json!(crate::cli::job::JOB_NOTCHANGED)),
            Ok(Ok(JobChange::Changed { info, log })) => {
                let log: Vec<Value> = log
                    .iter()
                    .map(|l| serde_json::to_value(l).unwrap_or(Value::Null))
                    .collect();
                Ok(json!([info, log]))
            }
            Ok(Err(JobsError::NotFound(_))) => Ok(Value::Null),
            Ok(Err(e)) => Err(jobs_failure(e)),
            Err(_) => Err(LuxiFailure::protocol(
                "the waiting thread ended without an answer",
            )),
        }
    }

    /// `QueryJobs(ids, fields)`: one list of values per job, null for unknown jobs.
    fn query_jobs(&self, args: &Value) -> Result<Value, LuxiFailure> {
        let fields = string_list(args.get(1), "the field list")?.unwrap_or_default();
        let ids: Vec<JobId> = match args.get(0) {
            None | Some(Value::Null) => self.queue.snapshots().iter().map(|j| j.id).collect(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_u64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                        .map(JobId)
                        .ok_or_else(|| {
                            LuxiFailure::prereq(format!("invalid job id {v}"), ErrorKind::Inval)
                        })
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(LuxiFailure::prereq(
                    format!("invalid job id list {other}"),
                    ErrorKind::Inval,
                ))
            }
        };
        Ok(Value::Array(
            ids.iter()
                .map(|id| match self.queue.get(*id) {
                    Some(job) => Value::Array(fields.iter().map(|f| job_field(&job, f)).collect()),
                    None => Value::Null,
                })
                .collect(),
        ))
    }

    /// `SetWatcherPause(until)`: writes or removes the pause file; returns `until`.
    fn set_watcher_pause(&self, args: &Value) -> Result<Value, LuxiFailure> {
        let file = self.paths.watcher_pause_file();
        match args.get(0) {
            None | Some(Value::Null) => {
                match std::fs::remove_file(&file) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(LuxiFailure::protocol(format!(
                            "removing {}: {e}",
                            file.display()
                        )))
                    }
                }
                Ok(Value::Null)
            }
            Some(v) => {
                let until = v.as_f64().ok_or_else(|| {
                    LuxiFailure::prereq(format!("invalid watcher pause time {v}"), ErrorKind::Inval)
                })?;
                crate::sys::fs::atomic_write(&file, format!("{until}\n").as_bytes(), 0o644)
                    .map_err(|e| LuxiFailure::protocol(crate::error::chain(&e)))?;
                Ok(json!(until))
            }
        }
    }
}

/// The lock fields of Ganeti's `lock` query resource (`gnt-debug locks`).
const LOCK_FIELDS: &[(&str, &str, &str, &str)] = &[
    ("name", "Name", "text", "Lock name"),
    (
        "mode",
        "Mode",
        "text",
        "Mode in which the lock is currently acquired (exclusive or shared)",
    ),
    ("owner", "Owner", "other", "Current lock owner(s)"),
    ("pending", "Pending", "other", "Jobs waiting for the lock"),
];

/// Query2 over the lock manager: `[name, mode, owners, [[mode, [owners]]…]]`.
fn lock_query(locks: &LockManager, fields: &[String]) -> Value {
    let defs: Vec<Value> = fields
        .iter()
        .map(|f| match LOCK_FIELDS.iter().find(|(n, ..)| n == f) {
            Some((name, title, kind, doc)) => {
                json!({"name": name, "title": title, "kind": kind, "doc": doc})
            }
            None => json!({"name": f, "title": f, "kind": "unknown", "doc": "Unknown field"}),
        })
        .collect();
    let owner = |o: &crate::locking::OwnerId| json!(format!("job/{}", o.0));
    let data: Vec<Value> = locks
        .info()
        .iter()
        .map(|l| {
            Value::Array(
                fields
                    .iter()
                    .map(|f| match f.as_str() {
                        "name" => json!([0, l.name]),
                        "mode" => match (l.deleted, l.mode) {
                            (true, _) => json!([0, "deleted"]),
                            (false, Some(m)) => json!([0, m.to_string()]),
                            (false, None) => json!([0, null]),
                        },
                        "owner" => json!([0, l.owners.iter().map(owner).collect::<Vec<_>>()]),
                        "pending" => json!([
                            0,
                            l.pending
                                .iter()
                                .map(|p| json!([
                                    p.mode.to_string(),
                                    p.owners.iter().map(owner).collect::<Vec<_>>()
                                ]))
                                .collect::<Vec<_>>()
                        ]),
                        _ => json!([1, null]),
                    })
                    .collect(),
            )
        })
        .collect();
    json!({"fields": defs, "data": data})
}

/// The cluster query's drain_flag and watcher_pause come from files, not the config.
fn fill_cluster_live_fields(v: &mut Value, fields: &[String], paths: &crate::paths::Paths) {
    let Some(rows) = v.get_mut("data").and_then(Value::as_array_mut) else {
        return;
    };
    for row in rows {
        for (i, f) in fields.iter().enumerate() {
            let live = match f.as_str() {
                "drain_flag" => json!(paths.queue_drain_file().exists()),
                "watcher_pause" => crate::cmdlib::cluster::watcher_pause(paths),
                _ => continue,
            };
            if let Some(cell) = row.get_mut(i) {
                *cell = json!([0, live]);
            }
        }
    }
}

/// LUXI `QueryFields(what, fields)`.
fn query_fields(args: &Value) -> Result<Value, LuxiFailure> {
    let resource = resource_arg(args)?;
    let fields = string_list(args.get(1), "the field list")?;
    let response = crate::query::query_fields(resource, fields.as_deref());
    serde_json::to_value(response)
        .map_err(|e| LuxiFailure::protocol(format!("encoding the field list: {e}")))
}
