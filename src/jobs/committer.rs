//! Group commit of job queue files: many changes, one flush.
//!
//! Every change to the queue (a submitted job, a status change, a log line,
//! the serial file, an archive rename) must be on disk before anyone is told
//! about it. Flushing each change on its own costs a journal commit apiece
//! and caps the queue at a few hundred changes per second, so changes go to
//! one committer thread instead. While it flushes one batch, new requests
//! pile up; it then takes all of them as the next batch:
//!
//! 1. Writes to the same file inside a batch collapse into the last one
//!    (a job file written three times is written once, with its newest
//!    content; the earlier requests are satisfied by it because the newer
//!    content contains their change).
//! 2. Each file is written to a fresh temporary file next to its target,
//!    and the data is made durable, per [`SyncMode`].
//! 3. The temporary files are renamed over their targets, the requested
//!    renames (archiving) and removals are done, and each directory touched
//!    is fsynced once.
//! 4. Only then is each request's completion called, with its own result.
//!
//! Steps 2 and 3 are pipelined: the renames of batch *n* are issued just
//! before the data sync of batch *n + 1*, so that one journal commit of the
//! file system carries both, and the directory fsync that follows finds
//! little left to do. A batch is acknowledged one cycle after its data was
//! synced; under load that roughly halves the commits per batch.
//!
//! A request whose file failed to write gets an error and its temporary
//! file is removed; the other requests of the batch are unaffected. If a
//! sync fails, every request it was to cover gets the error: their data may
//! or may not be on disk, but none of it was acknowledged.
//!
//! The steps above are those of [`SyncMode::DataSyncEach`] and
//! [`SyncMode::SyncFs`]. [`SyncMode::Journal`] (the default) instead
//! appends a record of every change of the batch to the write-ahead journal
//! (`jobs/journal.rs`), makes it durable with one `fdatasync`, then
//! overwrites the files in place and does the renames and removals with no
//! sync at all; checkpoints flush the files now and then, and
//! [`Committer::start`] replays the journal left by a crash.
//!
//! # Choosing the sync
//!
//! [`SyncMode::DataSyncEach`] calls `fdatasync` on every temporary file;
//! [`SyncMode::SyncFs`] calls `syncfs` once on the queue's file system;
//! [`SyncMode::Journal`] calls `fdatasync` on the journal only. Measured
//! with `benches/jobs.rs` (ext4 on a virtio disk, 2 cores), the journal is
//! an order of magnitude faster than both (thousands of jobs/s against a
//! few hundred): its sync writes one run of preallocated blocks and
//! commits no metadata, while the other modes wait for every file's data
//! and a file-system journal commit per batch. `SyncFs` beats
//! `DataSyncEach` (the `fdatasync` calls wait for each file's data write
//! in turn, while `syncfs` issues them together), at the cost of also
//! flushing unrelated dirty data on the same file system. `Journal` is
//! therefore the default; the others remain for comparison and for file
//! systems where overwriting in place is unwelcome. `docs/jobs.md` has the
//! figures and the journal format.

use super::journal::{self, Journal};
use crate::sys::fs::{fsync_dir, syncfs};
use std::collections::{BTreeSet, HashMap};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// One change to a queue file.
#[derive(Debug, Clone)]
pub enum FileOp {
    /// Replace the whole content of `path` (created if missing).
    Write {
        /// The file.
        path: PathBuf,
        /// Its new content.
        data: Vec<u8>,
    },
    /// Move a file (archiving a job); applied after every write of the batch.
    Rename {
        /// Current path.
        from: PathBuf,
        /// New path; its directory must exist.
        to: PathBuf,
    },
    /// Delete a file if present (clearing the drain flag); applied after
    /// every write of the batch.
    Remove {
        /// The file.
        path: PathBuf,
    },
}

/// How a batch's data is made durable; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// `fdatasync` each temporary file.
    DataSyncEach,
    /// One `syncfs` on the queue's file system.
    SyncFs,
    /// One `fdatasync` of the write-ahead journal (`jobs/journal.rs`); the
    /// files themselves are flushed at checkpoints.
    Journal,
}

/// A failed commit, as handed to each request concerned.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    /// A file-system step failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// To which file or directory.
        path: PathBuf,
        /// The cause, shared by every request of the batch it failed.
        #[source]
        source: Arc<io::Error>,
    },
    /// The committer was shut down before the request was written.
    #[error("the job queue is shutting down")]
    ShutDown,
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CommitError + 'a {
    move |e| CommitError::Io {
        action,
        path: path.to_path_buf(),
        source: Arc::new(e),
    }
}

impl From<crate::sys::fs::FsError> for CommitError {
    fn from(e: crate::sys::fs::FsError) -> Self {
        match e {
            crate::sys::fs::FsError::Io {
                action,
                path,
                source,
            } => CommitError::Io {
                action,
                path,
                source: Arc::new(source),
            },
        }
    }
}

/// Called once a request is durable (`Ok`) or has failed.
pub type Completion = Box<dyn FnOnce(Result<(), CommitError>) + Send>;

struct Request {
    ops: Vec<FileOp>,
    done: Completion,
}

struct Pending {
    requests: Vec<Request>,
    shutdown: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    /// The queue directory: on the queue's file system, for `syncfs`.
    fs_anchor: PathBuf,
    sync: SyncMode,
    file_mode: u32,
    batches: AtomicU64,
    files: AtomicU64,
    requests: AtomicU64,
}

/// Counters of what the committer did, for tests and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitStats {
    /// Batches flushed (each costs one sync round).
    pub batches: u64,
    /// Files written after collapsing repeated writes.
    pub files: u64,
    /// Requests acknowledged or failed.
    pub requests: u64,
}

/// Sends requests to the committer thread; cheap to clone.
#[derive(Clone)]
pub struct CommitterHandle {
    shared: Arc<Shared>,
}

/// Owns the committer thread; dropping it flushes what is pending and stops.
pub struct Committer {
    handle: CommitterHandle,
    thread: Option<JoinHandle<()>>,
}

impl Committer {
    /// Starts the committer thread. `fs_anchor` is the queue directory (on
    /// the file system `syncfs` flushes; journal records store paths
    /// relative to it), `journal` the journal file; files are created with
    /// permission bits `file_mode`.
    ///
    /// Whatever the mode, a journal left by an earlier run is replayed
    /// first (see [`journal::replay`]), so the files are whole before
    /// anyone reads them.
    pub fn start(
        fs_anchor: &Path,
        journal: &Path,
        sync: SyncMode,
        file_mode: u32,
    ) -> Result<Committer, CommitError> {
        let replayed = journal::replay(journal, fs_anchor, file_mode)?;
        let mut journal = match sync {
            SyncMode::Journal => Some(Journal::open(
                journal,
                fs_anchor,
                file_mode,
                replayed.generation + 1,
            )?),
            SyncMode::DataSyncEach | SyncMode::SyncFs => None,
        };
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                requests: Vec::new(),
                shutdown: false,
            }),
            wake: Condvar::new(),
            fs_anchor: fs_anchor.to_path_buf(),
            sync,
            file_mode,
            batches: AtomicU64::new(0),
            files: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        });
        let runner = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("jobs-committer".to_string())
            .stack_size(crate::constants::JOB_WORKER_STACK_BYTES)
            .spawn(move || match journal.take() {
                Some(j) => run_journal(&runner, j),
                None => run(&runner),
            })
            .map_err(io_err("starting the committer thread", fs_anchor))?;
        Ok(Committer {
            handle: CommitterHandle { shared },
            thread: Some(thread),
        })
    }

    /// A handle for sending requests.
    pub fn handle(&self) -> CommitterHandle {
        self.handle.clone()
    }

    /// Flushes everything pending, then stops the thread. Requests sent
    /// afterwards fail with [`CommitError::ShutDown`].
    pub fn shutdown(&mut self) {
        {
            let mut p = lock(&self.handle.shared.pending);
            p.shutdown = true;
        }
        self.handle.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere cannot leave the pending list half-updated (pushes
    // and swaps are single steps), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl CommitterHandle {
    /// Queues `ops` for the next batch; `done` is called from the committer
    /// thread once they are durable or have failed. Requests are applied in
    /// the order they are queued. Within one request, writes come before
    /// renames and removals.
    pub fn commit_async(&self, ops: Vec<FileOp>, done: Completion) {
        let mut p = lock(&self.shared.pending);
        if p.shutdown {
            drop(p);
            done(Err(CommitError::ShutDown));
            return;
        }
        p.requests.push(Request { ops, done });
        drop(p);
        self.shared.wake.notify_one();
    }

    /// Queues `ops` and waits until they are durable.
    pub fn commit(&self, ops: Vec<FileOp>) -> Result<(), CommitError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.commit_async(
            ops,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv().unwrap_or(Err(CommitError::ShutDown))
    }

    /// What the committer has done so far.
    pub fn stats(&self) -> CommitStats {
        CommitStats {
            batches: self.shared.batches.load(Ordering::Relaxed),
            files: self.shared.files.load(Ordering::Relaxed),
            requests: self.shared.requests.load(Ordering::Relaxed),
        }
    }
}

fn run(shared: &Shared) {
    // The batch whose data is durable but whose renames are not yet; it
    // completes in the next cycle, together with the next batch's data.
    let mut staged: Option<Staged> = None;
    loop {
        let batch = {
            let mut p = lock(&shared.pending);
            while p.requests.is_empty() && !p.shutdown && staged.is_none() {
                p = shared.wake.wait(p).unwrap_or_else(|e| e.into_inner());
            }
            if p.requests.is_empty() && staged.is_none() {
                return;
            }
            take_batch(&mut p.requests)
        };
        // Renaming the previous batch first puts those renames into the
        // file system's running transaction, so that the data sync of the
        // new batch below commits them too: one journal commit per cycle.
        let renamed = staged.take().map(rename_staged);
        let next = (!batch.is_empty()).then(|| stage(shared, batch));
        if let Some((batch, mut results, dirs)) = renamed {
            if let Some(e) = next.as_ref().and_then(|n| n.sync_error.clone()) {
                // The sync that was to cover our renames failed.
                results.iter_mut().for_each(|r| *r = Err(e.clone()));
            } else {
                for dir in &dirs {
                    if let Err(e) = fsync_dir(dir) {
                        let e = CommitError::from(e);
                        results.iter_mut().for_each(|r| *r = Err(e.clone()));
                        break;
                    }
                }
            }
            shared.batches.fetch_add(1, Ordering::Relaxed);
            shared
                .requests
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            for (req, result) in batch.into_iter().zip(results) {
                (req.done)(result);
            }
        }
        staged = next;
    }
}

/// The committer loop of [`SyncMode::Journal`]: append a record of every
/// change of a batch to the journal, `fdatasync` it once, then make the
/// changes (files overwritten in place, renames, removals) without any
/// sync, and acknowledge; checkpoint when the journal is large enough.
///
/// A change that fails after it was journaled fails its request, but
/// replay at the next start tries it again; like a request whose sync
/// failed in the other modes, it may or may not take effect.
fn run_journal(shared: &Shared, mut journal: Journal) {
    loop {
        let batch = {
            let mut p = lock(&shared.pending);
            while p.requests.is_empty() && !p.shutdown {
                p = shared.wake.wait(p).unwrap_or_else(|e| e.into_inner());
            }
            if p.requests.is_empty() {
                drop(p);
                // A clean stop leaves the files whole and the journal empty.
                if let Err(e) = journal.checkpoint() {
                    log::warn!(
                        "event=journal_checkpoint_failed error={:?}",
                        crate::error::chain(&e)
                    );
                }
                return;
            }
            take_batch(&mut p.requests)
        };
        // Every change is journaled before it is made: a file overwritten
        // in place may be torn by a crash, and only its record repairs it;
        // and no rename may reach the disk without its record, or replay
        // could write an archived job back into the queue.
        let mut records = Vec::new();
        let mut count = 0u64;
        let (last_write, write_order) = last_writes(&batch);
        for path in &write_order {
            journal.encode(
                &FileOp::Write {
                    path: path.to_path_buf(),
                    data: last_write[path].to_vec(),
                },
                &mut records,
            );
            count += 1;
        }
        for op in batch.iter().flat_map(|r| &r.ops) {
            if !matches!(op, FileOp::Write { .. }) {
                journal.encode(op, &mut records);
                count += 1;
            }
        }
        let results: Vec<Result<(), CommitError>> = match journal.append(&records, count) {
            Err(e) => batch.iter().map(|_| Err(e.clone())).collect(),
            Ok(()) => {
                let mut failed = HashMap::new();
                for path in &write_order {
                    match write_in_place(path, last_write[path], shared.file_mode) {
                        Ok(()) => {
                            shared.files.fetch_add(1, Ordering::Relaxed);
                            journal.touched_dir(parent_of(path));
                        }
                        Err(e) => {
                            failed.insert(path.to_path_buf(), e);
                        }
                    }
                }
                batch
                    .iter()
                    .map(|req| apply_request(req, &failed, &mut journal))
                    .collect()
            }
        };
        shared.batches.fetch_add(1, Ordering::Relaxed);
        shared
            .requests
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        for (req, result) in batch.into_iter().zip(results) {
            (req.done)(result);
        }
        if journal.wants_checkpoint() {
            if let Err(e) = journal.checkpoint() {
                // The journal stays whole and keeps growing; retried after
                // the next batch.
                log::warn!(
                    "event=journal_checkpoint_failed error={:?}",
                    crate::error::chain(&e)
                );
            }
        }
    }
}

/// Overwrites `path` with `data` in place (creating it with `mode`), with
/// no sync. A crash may leave it torn, which replay repairs from the
/// journal. Neither a rename over the file nor a truncation to zero is
/// involved, so ext4 does not start writing the data back at once
/// (`auto_da_alloc`), which costs about a millisecond per file.
fn write_in_place(path: &Path, data: &[u8], mode: u32) -> Result<(), CommitError> {
    use std::os::unix::fs::FileExt;
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(mode)
        .open(path)
        .map_err(io_err("opening", path))?;
    let meta = f.metadata().map_err(io_err("reading metadata of", path))?;
    if meta.permissions().mode() & 0o7777 != mode {
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io_err("chmod", path))?;
    }
    f.write_all_at(data, 0).map_err(io_err("writing", path))?;
    if meta.len() > data.len() as u64 {
        f.set_len(data.len() as u64)
            .map_err(io_err("truncating", path))?;
    }
    Ok(())
}

/// The result of one request of a journaled batch: its writes' outcome,
/// and its renames and removals, done now.
fn apply_request(
    req: &Request,
    failed: &HashMap<PathBuf, CommitError>,
    journal: &mut Journal,
) -> Result<(), CommitError> {
    apply_ops(req, failed, &mut |dir| journal.touched_dir(dir))
}

/// Applies a request's renames and removals (its writes were staged
/// before): the first error is the request's result, but later steps still
/// run, as the batch's other requests expect. `touched` learns each
/// directory that needs an fsync.
fn apply_ops(
    req: &Request,
    failed: &HashMap<PathBuf, CommitError>,
    touched: &mut dyn FnMut(PathBuf),
) -> Result<(), CommitError> {
    let mut r = Ok(());
    for op in &req.ops {
        let step = match op {
            FileOp::Write { path, .. } => match failed.get(path) {
                Some(e) => Err(e.clone()),
                None => Ok(()),
            },
            FileOp::Rename { from, to } => {
                touched(parent_of(from));
                touched(parent_of(to));
                fs::rename(from, to).map_err(io_err("renaming", from))
            }
            FileOp::Remove { path } => {
                touched(parent_of(path));
                match fs::remove_file(path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        Err(io_err("removing", path)(e))
                    }
                    _ => Ok(()),
                }
            }
        };
        if r.is_ok() {
            r = step;
        }
    }
    r
}

/// A batch whose temporary files are written and synced.
struct Staged {
    batch: Vec<Request>,
    /// (target, temporary file) of each write that got this far.
    temps: Vec<(PathBuf, PathBuf)>,
    /// Writes that failed, by target.
    failed: HashMap<PathBuf, CommitError>,
    /// Set when the data sync failed: the whole batch fails.
    sync_error: Option<CommitError>,
}

/// The newest content of each file the batch writes, and the order in
/// which the files were first written.
fn last_writes(batch: &[Request]) -> (HashMap<&Path, &[u8]>, Vec<&Path>) {
    let mut last_write: HashMap<&Path, &[u8]> = HashMap::new();
    let mut write_order: Vec<&Path> = Vec::new();
    for req in batch {
        for op in &req.ops {
            if let FileOp::Write { path, data } = op {
                if last_write.insert(path, data).is_none() {
                    write_order.push(path);
                }
            }
        }
    }
    (last_write, write_order)
}

/// Writes the batch's files to temporary files and makes their data
/// durable.
fn stage(shared: &Shared, batch: Vec<Request>) -> Staged {
    let (last_write, write_order) = last_writes(&batch);
    let mut failed = HashMap::new();
    let mut temps = Vec::new();
    for path in &write_order {
        match write_temp(
            path,
            last_write[path],
            shared.file_mode,
            shared.sync == SyncMode::DataSyncEach,
        ) {
            Ok(tmp) => temps.push((path.to_path_buf(), tmp)),
            Err(e) => {
                failed.insert(path.to_path_buf(), e);
            }
        }
    }
    shared
        .files
        .fetch_add(temps.len() as u64, Ordering::Relaxed);
    let mut sync_error = None;
    if shared.sync == SyncMode::SyncFs && !temps.is_empty() {
        if let Err(e) = syncfs(&shared.fs_anchor) {
            sync_error = Some(CommitError::from(e));
        }
    }
    Staged {
        batch,
        temps,
        failed,
        sync_error,
    }
}

/// Renames a staged batch's files into place and applies its renames and
/// removals; returns the batch, a result per request (before the directory
/// sync) and the directories to sync.
fn rename_staged(
    st: Staged,
) -> (
    Vec<Request>,
    Vec<Result<(), CommitError>>,
    BTreeSet<PathBuf>,
) {
    let Staged {
        batch,
        temps,
        mut failed,
        sync_error,
    } = st;
    let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
    if let Some(e) = sync_error {
        for (_, tmp) in temps {
            let _ = fs::remove_file(&tmp);
        }
        let results = batch.iter().map(|_| Err(e.clone())).collect();
        return (batch, results, dirs);
    }
    for (path, tmp) in temps {
        match fs::rename(&tmp, &path) {
            Ok(()) => {
                dirs.insert(parent_of(&path));
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                let err = io_err("renaming over", &path)(e);
                failed.insert(path, err);
            }
        }
    }
    let results = batch
        .iter()
        .map(|req| {
            apply_ops(req, &failed, &mut |dir| {
                dirs.insert(dir);
            })
        })
        .collect();
    (batch, results, dirs)
}

/// Takes requests up to and including the first one that renames or
/// removes, so that those always come after every earlier write and before
/// every later one.
fn take_batch(requests: &mut Vec<Request>) -> Vec<Request> {
    let cut = requests
        .iter()
        .position(|r| r.ops.iter().any(|o| !matches!(o, FileOp::Write { .. })))
        .map_or(requests.len(), |i| i + 1);
    let rest = requests.split_off(cut);
    std::mem::replace(requests, rest)
}

/// The directory holding `path` (`.` for a bare name).
pub(crate) fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent_of(path).join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Whether a directory entry is one of our temporary files (left behind by
/// a crash; safe to delete when the queue opens).
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

/// Writes `data` to a fresh temporary file next to `path` (with
/// `fdatasync` if `data_sync`) and returns its name; removes it on error.
pub(super) fn write_temp(
    path: &Path,
    data: &[u8],
    mode: u32,
    data_sync: bool,
) -> Result<PathBuf, CommitError> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(io_err("creating", &tmp))?;
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io_err("chmod", &tmp))?;
        f.write_all(data).map_err(io_err("writing", &tmp))?;
        if data_sync {
            f.sync_data().map_err(io_err("fdatasync", &tmp))?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ganeti-commit-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn names(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "journal")
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_collapse_and_land() {
        for mode in [SyncMode::DataSyncEach, SyncMode::SyncFs, SyncMode::Journal] {
            let d = tempdir(&format!("collapse-{mode:?}"));
            let c = Committer::start(&d, &d.join("journal"), mode, 0o640).unwrap();
            let h = c.handle();
            let threads: Vec<_> = (0..16)
                .map(|i| {
                    let h = h.clone();
                    let d = d.clone();
                    std::thread::spawn(move || {
                        h.commit(vec![
                            FileOp::Write {
                                path: d.join(format!("job-{i}")),
                                data: format!("{i}").into_bytes(),
                            },
                            FileOp::Write {
                                path: d.join("serial"),
                                data: b"x".to_vec(),
                            },
                        ])
                        .unwrap();
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            for i in 0..16 {
                assert_eq!(
                    fs::read(d.join(format!("job-{i}"))).unwrap(),
                    format!("{i}").as_bytes()
                );
            }
            assert_eq!(crate::sys::fs::mode_of(&d.join("job-3")).unwrap(), 0o640);
            let s = h.stats();
            assert_eq!(s.requests, 16);
            assert!(s.batches <= 16);
            assert_eq!(names(&d).len(), 17, "no temp files: {:?}", names(&d));
            fs::remove_dir_all(&d).unwrap();
        }
    }

    #[test]
    fn a_failing_write_fails_only_its_request_and_leaves_no_temp() {
        for mode in [SyncMode::DataSyncEach, SyncMode::Journal] {
            failing_write(mode);
        }
    }

    fn failing_write(mode: SyncMode) {
        let d = tempdir(&format!("fail-{mode:?}"));
        let c = Committer::start(&d, &d.join("journal"), mode, 0o640).unwrap();
        let h = c.handle();
        // Whether the three land in one batch or several, each request
        // gets its own result.
        let (tx, rx) = mpsc::channel();
        let mut results = Vec::new();
        for (i, path) in [d.join("a"), d.join("missing/b"), d.join("c")]
            .into_iter()
            .enumerate()
        {
            let tx = tx.clone();
            h.commit_async(
                vec![FileOp::Write {
                    path,
                    data: vec![b'0' + u8::try_from(i).unwrap()],
                }],
                Box::new(move |r| tx.send((i, r)).unwrap()),
            );
        }
        for _ in 0..3 {
            results.push(rx.recv().unwrap());
        }
        results.sort_by_key(|r| r.0);
        assert!(results[0].1.is_ok());
        let err = results[1].1.as_ref().unwrap_err();
        assert!(
            crate::error::chain(err).contains("missing"),
            "{}",
            crate::error::chain(err)
        );
        assert!(results[2].1.is_ok());
        assert_eq!(names(&d), vec!["a".to_string(), "c".to_string()]);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn renames_and_removes_follow_earlier_writes() {
        for mode in [SyncMode::DataSyncEach, SyncMode::Journal] {
            renames_and_removes(mode);
        }
    }

    fn renames_and_removes(mode: SyncMode) {
        let d = tempdir(&format!("rename-{mode:?}"));
        fs::create_dir_all(d.join("archive/0")).unwrap();
        let c = Committer::start(&d, &d.join("journal"), mode, 0o640).unwrap();
        let h = c.handle();
        h.commit(vec![FileOp::Write {
            path: d.join("job-1"),
            data: b"done".to_vec(),
        }])
        .unwrap();
        h.commit(vec![FileOp::Rename {
            from: d.join("job-1"),
            to: d.join("archive/0/job-1"),
        }])
        .unwrap();
        assert_eq!(fs::read(d.join("archive/0/job-1")).unwrap(), b"done");
        h.commit(vec![FileOp::Write {
            path: d.join("drain"),
            data: Vec::new(),
        }])
        .unwrap();
        h.commit(vec![FileOp::Remove {
            path: d.join("drain"),
        }])
        .unwrap();
        assert!(!d.join("drain").exists());
        let err = h
            .commit(vec![FileOp::Rename {
                from: d.join("job-9"),
                to: d.join("archive/0/job-9"),
            }])
            .unwrap_err();
        assert!(crate::error::chain(&err).contains("job-9"));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn after_shutdown_requests_fail() {
        let d = tempdir("shut");
        let mut c =
            Committer::start(&d, &d.join("journal"), SyncMode::DataSyncEach, 0o640).unwrap();
        let h = c.handle();
        c.shutdown();
        let r = h.commit(vec![FileOp::Write {
            path: d.join("x"),
            data: vec![],
        }]);
        assert!(matches!(r, Err(CommitError::ShutDown)));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn batch_takes_up_to_first_rename() {
        let mk = |rename: bool| Request {
            ops: vec![if rename {
                FileOp::Remove { path: "x".into() }
            } else {
                FileOp::Write {
                    path: "x".into(),
                    data: vec![],
                }
            }],
            done: Box::new(|_| {}),
        };
        let mut reqs = vec![mk(false), mk(false), mk(true), mk(false)];
        assert_eq!(take_batch(&mut reqs).len(), 3);
        assert_eq!(reqs.len(), 1);
        assert_eq!(take_batch(&mut reqs).len(), 1);
    }
}
