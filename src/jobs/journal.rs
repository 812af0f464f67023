//! The write-ahead journal of the job queue (`queue/journal`).
//!
//! With [`SyncMode::Journal`](super::committer::SyncMode::Journal) the
//! committer makes a batch durable by appending one record per file change
//! to this append-only file and calling `fdatasync` on it once; the job
//! files themselves are written without any sync. Every
//! [`JOB_JOURNAL_CHECKPOINT_RECORDS`] records or
//! [`JOB_JOURNAL_CHECKPOINT_BYTES`] bytes a checkpoint flushes the file
//! system (`syncfs`) and the directories touched, then truncates the journal
//! to nothing. When the queue opens, [`replay`] applies every complete
//! record again, in order, ignoring a torn tail, and checkpoints. The job
//! files stay the source of truth; the journal only carries the changes
//! not yet known to be on disk.
//!
//! # Record format
//!
//! ```text
//! magic "GJR1" | body length: u32 LE | FNV-1a 64 of the body: u64 LE | body
//! body = kind: u8, then fields, each as length: u32 LE + bytes
//!   kind 1 (write):  path, content
//!   kind 2 (rename): from, to
//!   kind 3 (remove): path
//! ```
//!
//! Paths inside the queue directory are stored relative to it, so a queue
//! directory that moved still replays; other paths are stored as given.
//! A record is valid when the whole of it is present and its checksum
//! matches; reading stops at the first one that is not (a write torn by a
//! crash), and nothing after it is applied.

use super::committer::{CommitError, FileOp};
use crate::constants::{JOB_JOURNAL_CHECKPOINT_BYTES, JOB_JOURNAL_CHECKPOINT_RECORDS};
use crate::sys::fs::{fsync_dir, syncfs};
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: &[u8; 4] = b"GJR1";
const HEADER_BYTES: usize = 4 + 4 + 8;
const KIND_WRITE: u8 = 1;
const KIND_RENAME: u8 = 2;
const KIND_REMOVE: u8 = 3;

/// FNV-1a, 64 bits: enough to tell a torn or stale record from a whole one.
pub fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CommitError + 'a {
    move |e| CommitError::Io {
        action,
        path: path.to_path_buf(),
        source: Arc::new(e),
    }
}

fn put_field(out: &mut Vec<u8>, field: &[u8]) {
    let len = u32::try_from(field.len()).expect("journal field below 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(field);
}

fn rel<'a>(dir: &Path, path: &'a Path) -> &'a [u8] {
    path.strip_prefix(dir)
        .unwrap_or(path)
        .as_os_str()
        .as_bytes()
}

/// Appends the framed record of `op` to `out`; paths under `dir` are stored
/// relative to it.
pub fn encode(dir: &Path, op: &FileOp, out: &mut Vec<u8>) {
    let mut body = Vec::new();
    match op {
        FileOp::Write { path, data } => {
            body.push(KIND_WRITE);
            put_field(&mut body, rel(dir, path));
            put_field(&mut body, data);
        }
        FileOp::Rename { from, to } => {
            body.push(KIND_RENAME);
            put_field(&mut body, rel(dir, from));
            put_field(&mut body, rel(dir, to));
        }
        FileOp::Remove { path } => {
            body.push(KIND_REMOVE);
            put_field(&mut body, rel(dir, path));
        }
    }
    out.extend_from_slice(MAGIC);
    let len = u32::try_from(body.len()).expect("journal record below 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&fnv1a64(&body).to_le_bytes());
    out.extend_from_slice(&body);
}

fn take_field<'a>(body: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = u32::from_le_bytes(body.get(..4)?.try_into().ok()?) as usize;
    let field = body.get(4..4 + len)?;
    *body = &body[4 + len..];
    Some(field)
}

fn decode_body(dir: &Path, mut body: &[u8]) -> Option<FileOp> {
    let (&kind, rest) = body.split_first()?;
    body = rest;
    let path = |b: &[u8]| dir.join(OsStr::from_bytes(b));
    let op = match kind {
        KIND_WRITE => FileOp::Write {
            path: path(take_field(&mut body)?),
            data: take_field(&mut body)?.to_vec(),
        },
        KIND_RENAME => FileOp::Rename {
            from: path(take_field(&mut body)?),
            to: path(take_field(&mut body)?),
        },
        KIND_REMOVE => FileOp::Remove {
            path: path(take_field(&mut body)?),
        },
        _ => return None,
    };
    body.is_empty().then_some(op)
}

/// Decodes the valid records at the start of `data`; returns them and the
/// number of bytes they span (less than `data.len()` when the tail is torn).
pub fn decode_all(dir: &Path, data: &[u8]) -> (Vec<FileOp>, usize) {
    let mut ops = Vec::new();
    let mut at = 0;
    while let Some(header) = data.get(at..at + HEADER_BYTES) {
        if &header[..4] != MAGIC {
            break;
        }
        let len = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes")) as usize;
        let sum = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
        let Some(body) = data.get(at + HEADER_BYTES..at + HEADER_BYTES + len) else {
            break;
        };
        if fnv1a64(body) != sum {
            break;
        }
        let Some(op) = decode_body(dir, body) else {
            break;
        };
        ops.push(op);
        at += HEADER_BYTES + len;
    }
    (ops, at)
}

/// What [`replay`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Complete records applied.
    pub records: usize,
    /// Bytes after the last complete record (a torn tail), ignored.
    pub torn_bytes: usize,
}

/// Applies the journal at `path` (if any) to the files it names, makes the
/// result durable and truncates the journal. `dir` is the queue directory;
/// files are created with permission bits `mode`.
///
/// Each write goes to a temporary file renamed over its target; a rename
/// whose source is gone and a removal of a missing file count as already
/// done (a crash may have left any prefix of the direct changes on disk),
/// and other failures of renames and removals are logged and skipped
/// (they are journaled before they are tried, so they may have failed at
/// the time too). A failed write stops the replay with an error.
pub fn replay(path: &Path, dir: &Path, mode: u32) -> Result<ReplayStats, CommitError> {
    let mut data = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut data)
                .map_err(io_err("reading journal", path))?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ReplayStats::default()),
        Err(e) => return Err(io_err("opening journal", path)(e)),
    }
    if data.is_empty() {
        return Ok(ReplayStats::default());
    }
    let (ops, valid) = decode_all(dir, &data);
    let torn_bytes = data.len() - valid;
    if torn_bytes > 0 {
        log::warn!(
            "event=journal_torn_tail path={} ignored_bytes={torn_bytes}",
            path.display()
        );
    }
    let mut dirs = BTreeSet::new();
    for op in &ops {
        apply_replayed(op, mode, &mut dirs)?;
    }
    checkpoint_files(dir, &dirs)?;
    let j = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err("opening journal", path))?;
    truncate(&j, path)?;
    log::info!(
        "event=journal_replayed path={} records={}",
        path.display(),
        ops.len()
    );
    Ok(ReplayStats {
        records: ops.len(),
        torn_bytes,
    })
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn apply_replayed(op: &FileOp, mode: u32, dirs: &mut BTreeSet<PathBuf>) -> Result<(), CommitError> {
    match op {
        FileOp::Write { path, data } => {
            let tmp = super::committer::write_temp(path, data, mode, false)?;
            fs::rename(&tmp, path).map_err(|e| {
                let _ = fs::remove_file(&tmp);
                io_err("renaming over", path)(e)
            })?;
            dirs.insert(parent_of(path));
        }
        FileOp::Rename { from, to } => {
            // Renames are journaled before they are tried, so one that
            // failed at the time is skipped here too.
            match fs::rename(from, to) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => log::warn!(
                    "event=journal_replay_rename_failed from={} to={} error={e}",
                    from.display(),
                    to.display()
                ),
                _ => {}
            }
            dirs.insert(parent_of(from));
            dirs.insert(parent_of(to));
        }
        FileOp::Remove { path } => {
            match fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => log::warn!(
                    "event=journal_replay_remove_failed path={} error={e}",
                    path.display()
                ),
                _ => {}
            }
            dirs.insert(parent_of(path));
        }
    }
    Ok(())
}

/// Makes every change so far to the files under `anchor`'s file system
/// durable: `syncfs`, then an fsync of each directory in `dirs`.
fn checkpoint_files(anchor: &Path, dirs: &BTreeSet<PathBuf>) -> Result<(), CommitError> {
    syncfs(anchor)?;
    for d in dirs {
        fsync_dir(d)?;
    }
    Ok(())
}

fn truncate(f: &File, path: &Path) -> Result<(), CommitError> {
    f.set_len(0).map_err(io_err("truncating journal", path))?;
    f.sync_all().map_err(io_err("fsync journal", path))
}

/// The open journal of a running committer.
pub struct Journal {
    path: PathBuf,
    dir: PathBuf,
    file: File,
    /// Bytes of whole records in the file.
    len: u64,
    /// Records since the last checkpoint.
    records: u64,
    /// Directories changed since the last checkpoint.
    dirs: BTreeSet<PathBuf>,
}

impl Journal {
    /// Opens (creating) the journal at `path` for the queue directory
    /// `dir`. Call [`replay`] first: the journal is truncated here.
    pub fn open(path: &Path, dir: &Path, mode: u32) -> Result<Journal, CommitError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(mode)
            .open(path)
            .map_err(io_err("opening journal", path))?;
        let mut j = Journal {
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
            file,
            len: 0,
            records: 0,
            dirs: BTreeSet::new(),
        };
        if j.file.metadata().map(|m| m.len()).unwrap_or(1) != 0 {
            truncate(&j.file, path)?;
        }
        fsync_dir(&parent_of(path))?;
        j.len = 0;
        Ok(j)
    }

    /// The queue directory (records store paths relative to it).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Notes a directory whose entries changed, for the next checkpoint.
    pub fn touched_dir(&mut self, dir: PathBuf) {
        self.dirs.insert(dir);
    }

    /// Appends `records` (`count` framed records) and makes them durable
    /// with one `fdatasync`. On failure the journal is cut back to its
    /// previous length, so that later records are not hidden behind a torn
    /// one.
    pub fn append(&mut self, records: &[u8], count: u64) -> Result<(), CommitError> {
        if records.is_empty() {
            return Ok(());
        }
        let result = self
            .file
            .write_all_at(records, self.len)
            .map_err(io_err("appending to journal", &self.path))
            .and_then(|()| {
                self.file
                    .sync_data()
                    .map_err(io_err("fdatasync journal", &self.path))
            });
        match result {
            Ok(()) => {
                self.len += records.len() as u64;
                self.records += count;
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.len);
                Err(e)
            }
        }
    }

    /// Whether the journal has grown enough for a checkpoint.
    pub fn wants_checkpoint(&self) -> bool {
        self.records >= JOB_JOURNAL_CHECKPOINT_RECORDS || self.len >= JOB_JOURNAL_CHECKPOINT_BYTES
    }

    /// Makes every applied change durable in the files themselves, then
    /// empties the journal. On failure the journal is kept whole.
    pub fn checkpoint(&mut self) -> Result<(), CommitError> {
        if self.len == 0 {
            return Ok(());
        }
        checkpoint_files(&self.dir, &self.dirs)?;
        truncate(&self.file, &self.path)?;
        self.len = 0;
        self.records = 0;
        self.dirs.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::committer::is_temp_name;
    use crate::sys::fs::atomic_write;

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ganeti-journal-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn sample(d: &Path) -> Vec<FileOp> {
        vec![
            FileOp::Write {
                path: d.join("job-1"),
                data: b"{\"id\": 1}".to_vec(),
            },
            FileOp::Write {
                path: d.join("serial"),
                data: Vec::new(),
            },
            FileOp::Rename {
                from: d.join("job-1"),
                to: d.join("archive/0/job-1"),
            },
            FileOp::Remove {
                path: d.join("drain"),
            },
            FileOp::Write {
                path: PathBuf::from("/elsewhere/x"),
                data: vec![0, 1, 2, 255],
            },
        ]
    }

    fn same(a: &FileOp, b: &FileOp) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    #[test]
    fn framing_round_trips_and_stores_relative_paths() {
        let d = Path::new("/var/lib/ganeti/queue");
        let ops = sample(d);
        let mut buf = Vec::new();
        for op in &ops {
            encode(d, op, &mut buf);
        }
        assert!(!buf.windows(6).any(|w| w == b"/var/l"), "relative paths");
        let (back, used) = decode_all(d, &buf);
        assert_eq!(used, buf.len());
        assert_eq!(back.len(), ops.len());
        assert!(ops.iter().zip(&back).all(|(a, b)| same(a, b)));
        // The same records read under a moved queue directory.
        let moved = Path::new("/srv/queue");
        let (back, _) = decode_all(moved, &buf);
        assert!(same(&back[0], &sample(moved)[0]));
    }

    #[test]
    fn torn_tail_and_corruption_stop_reading() {
        let d = Path::new("/q");
        let ops = sample(d);
        let mut buf = Vec::new();
        let mut ends = Vec::new();
        for op in &ops {
            encode(d, op, &mut buf);
            ends.push(buf.len());
        }
        // Every cut inside the last record yields the records before it.
        for cut in ends[3]..ends[4] {
            let (back, used) = decode_all(d, &buf[..cut]);
            assert_eq!((back.len(), used), (4, ends[3]), "cut at {cut}");
        }
        // A flipped byte in the third record hides it and all after it.
        let mut bad = buf.clone();
        bad[ends[1] + HEADER_BYTES + 3] ^= 0x40;
        assert_eq!(decode_all(d, &bad).0.len(), 2);
        // Zeros (a preallocated or torn region) are no record.
        let mut zeros = buf[..ends[0]].to_vec();
        zeros.extend_from_slice(&[0; 64]);
        assert_eq!(decode_all(d, &zeros).0.len(), 1);
    }

    #[test]
    fn replay_restores_lost_writes_and_empties_the_journal() {
        let d = tempdir("replay");
        fs::create_dir_all(d.join("archive/0")).unwrap();
        atomic_write(&d.join("drain"), b"", 0o640).unwrap();
        let jpath = d.join("journal");
        let mut buf = Vec::new();
        let ops = [
            FileOp::Write {
                path: d.join("job-1"),
                data: b"one".to_vec(),
            },
            FileOp::Write {
                path: d.join("job-2"),
                data: b"two".to_vec(),
            },
            FileOp::Rename {
                from: d.join("job-1"),
                to: d.join("archive/0/job-1"),
            },
            FileOp::Remove {
                path: d.join("drain"),
            },
            FileOp::Write {
                path: d.join("job-2"),
                data: b"two, final".to_vec(),
            },
        ];
        for op in &ops {
            encode(&d, op, &mut buf);
        }
        // A torn record after the complete ones.
        let mut torn = Vec::new();
        encode(
            &d,
            &FileOp::Write {
                path: d.join("job-3"),
                data: b"three".to_vec(),
            },
            &mut torn,
        );
        buf.extend_from_slice(&torn[..torn.len() - 2]);
        atomic_write(&jpath, &buf, 0o640).unwrap();

        let stats = replay(&jpath, &d, 0o640).unwrap();
        assert_eq!(stats.records, 5);
        assert_eq!(stats.torn_bytes, torn.len() - 2);
        assert_eq!(fs::read(d.join("archive/0/job-1")).unwrap(), b"one");
        assert!(!d.join("job-1").exists());
        assert_eq!(fs::read(d.join("job-2")).unwrap(), b"two, final");
        assert!(!d.join("drain").exists());
        assert!(!d.join("job-3").exists());
        assert_eq!(fs::metadata(&jpath).unwrap().len(), 0);
        // Replaying again (the journal now empty) changes nothing.
        assert_eq!(replay(&jpath, &d, 0o640).unwrap(), ReplayStats::default());
        // Replaying the same records over files already in their final
        // state (a crash after the direct writes landed) is harmless.
        atomic_write(&jpath, &buf, 0o640).unwrap();
        replay(&jpath, &d, 0o640).unwrap();
        assert_eq!(fs::read(d.join("archive/0/job-1")).unwrap(), b"one");
        assert_eq!(fs::read(d.join("job-2")).unwrap(), b"two, final");
        let leftovers: Vec<_> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| is_temp_name(n))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        fs::remove_dir_all(&d).unwrap();
    }
}
