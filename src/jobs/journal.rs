//! The write-ahead journal of the job queue (`queue/journal`).
//!
//! With [`SyncMode::Journal`](super::committer::SyncMode::Journal) the
//! committer makes a batch durable by writing one record per file change
//! into this file and calling `fdatasync` on it once; the job files
//! themselves are written without any sync. Every
//! [`JOB_JOURNAL_CHECKPOINT_RECORDS`] records or
//! [`JOB_JOURNAL_CHECKPOINT_BYTES`] bytes a checkpoint flushes the file
//! system (`syncfs`) and the directories touched, then starts a new
//! generation of the journal. When the queue opens, [`replay`] applies
//! every record of the current generation again, in order, ignoring a torn
//! tail. The job files stay the source of truth; the journal only carries
//! the changes not yet known to be on disk.
//!
//! The file is preallocated with zeros ([`JOB_JOURNAL_PREALLOC_BYTES`]) and
//! rewritten from the start in each generation, never truncated while the
//! queue runs: an `fdatasync` of blocks that are already allocated writes
//! only data, while one that grows the file must commit the file system's
//! own journal, which (ext4, `data=ordered`) first waits for the data of
//! every job file written since the last commit.
//!
//! # Record format
//!
//! ```text
//! magic "GJR1" | generation: u64 LE | body length: u32 LE
//!   | FNV-1a 64 of generation, length and body: u64 LE | body
//! body = kind: u8, then fields, each as length: u32 LE + bytes
//!   kind 0 (start of a generation): no fields; always the first record
//!   kind 1 (write):  path, content
//!   kind 2 (rename): from, to
//!   kind 3 (remove): path
//! ```
//!
//! Paths inside the queue directory are stored relative to it, so a queue
//! directory that moved still replays; other paths are stored as given.
//! Reading starts at offset 0 with the start record, whose generation
//! is the current one, and stops at the first record that is incomplete,
//! fails its checksum or belongs to another generation (zeros, a write torn
//! by a crash, or the rest of an older generation).

use super::committer::{parent_of, CommitError, FileOp};
use crate::constants::{
    JOB_JOURNAL_CHECKPOINT_BYTES, JOB_JOURNAL_CHECKPOINT_RECORDS, JOB_JOURNAL_PREALLOC_BYTES,
};
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
const HEADER_BYTES: usize = 4 + 8 + 4 + 8;
const KIND_START: u8 = 0;
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

/// Appends the framed record of `op` (of journal generation `generation`)
/// to `out`; paths under `dir` are stored relative to it.
pub fn encode(dir: &Path, generation: u64, op: &FileOp, out: &mut Vec<u8>) {
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
    frame(generation, &body, out);
}

/// Appends the record that starts generation `generation` to `out`.
pub fn encode_start(generation: u64, out: &mut Vec<u8>) {
    frame(generation, &[KIND_START], out);
}

fn checksum(generation: &[u8], len: &[u8], body: &[u8]) -> u64 {
    let mut covered = Vec::with_capacity(12 + body.len());
    covered.extend_from_slice(generation);
    covered.extend_from_slice(len);
    covered.extend_from_slice(body);
    fnv1a64(&covered)
}

fn frame(generation: u64, body: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(body.len())
        .expect("journal record below 4 GiB")
        .to_le_bytes();
    let generation = generation.to_le_bytes();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&generation);
    out.extend_from_slice(&len);
    out.extend_from_slice(&checksum(&generation, &len, body).to_le_bytes());
    out.extend_from_slice(body);
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

/// Decodes the valid records at the start of `data`: the first record's
/// generation and the changes of that generation that follow it, up to the
/// first invalid record. `None` when no valid record starts the data.
pub fn decode_all(dir: &Path, data: &[u8]) -> Option<(u64, Vec<FileOp>)> {
    let mut ops = Vec::new();
    let mut current = None;
    let mut at = 0;
    while let Some(header) = data.get(at..at + HEADER_BYTES) {
        if &header[..4] != MAGIC {
            break;
        }
        let generation = u64::from_le_bytes(header[4..12].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(header[12..16].try_into().expect("4 bytes")) as usize;
        let sum = u64::from_le_bytes(header[16..24].try_into().expect("8 bytes"));
        let Some(body) = data.get(at + HEADER_BYTES..at + HEADER_BYTES + len) else {
            break;
        };
        if checksum(&header[4..12], &header[12..16], body) != sum
            || current.is_some_and(|g| g != generation)
        {
            break;
        }
        if body != [KIND_START] {
            let Some(op) = decode_body(dir, body) else {
                break;
            };
            ops.push(op);
        }
        current = Some(generation);
        at += HEADER_BYTES + len;
    }
    current.map(|g| (g, ops))
}

/// What [`replay`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// The journal's generation (0 for a missing or empty journal); the
    /// next one must be higher.
    pub generation: u64,
    /// Records applied.
    pub records: usize,
}

/// Applies the journal at `path` (if any) to the files it names and makes
/// the result durable; then, if it applied anything, truncates the journal
/// so that nothing is applied twice. `dir` is the queue directory; files
/// are created with permission bits `mode`.
///
/// Each write goes to a temporary file renamed over its target; a rename
/// whose source is gone and a removal of a missing file count as already
/// done (a crash may have left any prefix of the direct changes on disk),
/// and other failures of renames and removals are logged and skipped
/// (they are journaled before they are tried, so they may have failed at
/// the time too), as are writes into a directory that no longer exists.
/// Any other failed write stops the replay with an error: the file may be
/// torn, and only this record could repair it.
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
    let Some((generation, ops)) = decode_all(dir, &data) else {
        // No start record (zeros, or one torn while a checkpoint wrote it,
        // after the files were synced): nothing to apply. Emptying the
        // file keeps old records from ever matching a reused generation.
        if data.iter().any(|&b| b != 0) {
            truncate_file(path)?;
        }
        return Ok(ReplayStats::default());
    };
    if ops.is_empty() {
        return Ok(ReplayStats {
            generation,
            records: 0,
        });
    }
    let mut dirs = BTreeSet::new();
    for op in &ops {
        apply_replayed(op, mode, &mut dirs)?;
    }
    checkpoint_files(dir, &dirs)?;
    truncate_file(path)?;
    log::info!(
        "event=journal_replayed path={} generation={generation} records={}",
        path.display(),
        ops.len()
    );
    Ok(ReplayStats {
        generation,
        records: ops.len(),
    })
}

fn truncate_file(path: &Path) -> Result<(), CommitError> {
    let j = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err("opening journal", path))?;
    j.set_len(0).map_err(io_err("truncating journal", path))?;
    j.sync_all().map_err(io_err("fsync journal", path))
}

fn apply_replayed(op: &FileOp, mode: u32, dirs: &mut BTreeSet<PathBuf>) -> Result<(), CommitError> {
    match op {
        FileOp::Write { path, data } => {
            let tmp = match super::committer::write_temp(path, data, mode, false) {
                Ok(tmp) => tmp,
                // Its directory is gone: the write failed at the time too.
                Err(CommitError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                    log::warn!(
                        "event=journal_replay_write_skipped path={} error={source}",
                        path.display()
                    );
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
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

/// The open journal of a running committer.
pub struct Journal {
    path: PathBuf,
    dir: PathBuf,
    file: File,
    generation: u64,
    /// Bytes of whole records of this generation.
    len: u64,
    /// Change records in this generation.
    records: u64,
    /// Directories changed since the last checkpoint.
    dirs: BTreeSet<PathBuf>,
    /// An append failed: its records may sit after the good ones, so the
    /// next append first checkpoints into a new generation.
    failed: bool,
}

impl Journal {
    /// Opens (creating and preallocating) the journal at `path` for the
    /// queue directory `dir` and starts generation `generation`, which must
    /// be above any in the file: call [`replay`] first and pass its
    /// generation plus one.
    pub fn open(
        path: &Path,
        dir: &Path,
        mode: u32,
        generation: u64,
    ) -> Result<Journal, CommitError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(mode)
            .open(path)
            .map_err(io_err("opening journal", path))?;
        let size = file
            .metadata()
            .map_err(io_err("reading size of journal", path))?
            .len();
        if size < JOB_JOURNAL_PREALLOC_BYTES {
            // Written zeros, not fallocate: writing into unwritten extents
            // would change metadata at every sync.
            let zeros = vec![0u8; 1 << 20];
            let mut at = size;
            while at < JOB_JOURNAL_PREALLOC_BYTES {
                let n = usize::try_from(JOB_JOURNAL_PREALLOC_BYTES - at)
                    .map_or(zeros.len(), |rest| rest.min(zeros.len()));
                file.write_all_at(&zeros[..n], at)
                    .map_err(io_err("preallocating journal", path))?;
                at += n as u64;
            }
            file.sync_all().map_err(io_err("fsync journal", path))?;
            fsync_dir(&parent_of(path))?;
        }
        let mut j = Journal {
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
            file,
            generation,
            len: 0,
            records: 0,
            dirs: BTreeSet::new(),
            failed: false,
        };
        j.start_generation()?;
        Ok(j)
    }

    fn start_generation(&mut self) -> Result<(), CommitError> {
        let mut start = Vec::new();
        encode_start(self.generation, &mut start);
        self.file
            .write_all_at(&start, 0)
            .map_err(io_err("writing journal", &self.path))?;
        self.file
            .sync_data()
            .map_err(io_err("fdatasync journal", &self.path))?;
        self.len = start.len() as u64;
        self.records = 0;
        Ok(())
    }

    /// Appends the record of `op` to `out`, in this journal's generation.
    pub fn encode(&self, op: &FileOp, out: &mut Vec<u8>) {
        encode(&self.dir, self.generation, op, out);
    }

    /// Notes a directory whose entries changed, for the next checkpoint.
    pub fn touched_dir(&mut self, dir: PathBuf) {
        self.dirs.insert(dir);
    }

    /// Appends `records` (`count` framed records, encoded by
    /// [`Journal::encode`]) and makes them durable with one `fdatasync`.
    /// After a failure, the next append first checkpoints, so that no
    /// leftover of the failed records can follow later ones in the same
    /// generation.
    pub fn append(&mut self, records: &[u8], count: u64) -> Result<(), CommitError> {
        if records.is_empty() {
            return Ok(());
        }
        if self.failed {
            self.records = self.records.max(1);
            self.checkpoint()?;
            self.failed = false;
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
        if result.is_err() {
            self.failed = true;
        }
        result?;
        self.len += records.len() as u64;
        self.records += count;
        Ok(())
    }

    /// Whether the journal has grown enough for a checkpoint.
    pub fn wants_checkpoint(&self) -> bool {
        self.records >= JOB_JOURNAL_CHECKPOINT_RECORDS || self.len >= JOB_JOURNAL_CHECKPOINT_BYTES
    }

    /// Makes every applied change durable in the files themselves, then
    /// starts a new generation, which invalidates every record so far. On
    /// failure the journal is kept whole.
    pub fn checkpoint(&mut self) -> Result<(), CommitError> {
        if self.records == 0 {
            return Ok(());
        }
        checkpoint_files(&self.dir, &self.dirs)?;
        self.dirs.clear();
        self.generation += 1;
        self.start_generation()
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
        encode_start(7, &mut buf);
        for op in &ops {
            encode(d, 7, op, &mut buf);
        }
        assert!(!buf.windows(6).any(|w| w == b"/var/l"), "relative paths");
        let (generation, back) = decode_all(d, &buf).unwrap();
        assert_eq!(generation, 7);
        assert_eq!(back.len(), ops.len());
        assert!(ops.iter().zip(&back).all(|(a, b)| same(a, b)));
        // The same records read under a moved queue directory.
        let moved = Path::new("/srv/queue");
        let (_, back) = decode_all(moved, &buf).unwrap();
        assert!(same(&back[0], &sample(moved)[0]));
        assert!(decode_all(d, &[0; 100]).is_none());
        assert!(decode_all(d, b"").is_none());
    }

    #[test]
    fn torn_tail_corruption_and_older_generations_stop_reading() {
        let d = Path::new("/q");
        let ops = sample(d);
        let mut buf = Vec::new();
        encode_start(2, &mut buf);
        let mut ends = Vec::new();
        for op in &ops {
            encode(d, 2, op, &mut buf);
            ends.push(buf.len());
        }
        // Every cut inside the last record yields the records before it.
        for cut in ends[3]..ends[4] {
            let (_, back) = decode_all(d, &buf[..cut]).unwrap();
            assert_eq!(back.len(), 4, "cut at {cut}");
        }
        // A flipped byte in the third record hides it and all after it.
        let mut bad = buf.clone();
        bad[ends[1] + HEADER_BYTES + 3] ^= 0x40;
        assert_eq!(decode_all(d, &bad).unwrap().1.len(), 2);
        // Zeros (the preallocated rest) are no record.
        let mut zeros = buf[..ends[0]].to_vec();
        zeros.extend_from_slice(&[0; 64]);
        assert_eq!(decode_all(d, &zeros).unwrap().1.len(), 1);
        // A new generation written over the start of an older one: the
        // older records after it are not read.
        let mut newer = Vec::new();
        encode_start(3, &mut newer);
        encode(d, 3, &ops[0], &mut newer);
        let mut over = buf.clone();
        over[..newer.len()].copy_from_slice(&newer);
        // Realign an old record right behind the new ones, as a shorter
        // rewrite could leave it.
        let mut aligned = newer.clone();
        aligned.extend_from_slice(&buf[ends[2]..]);
        assert_eq!(decode_all(d, &aligned).unwrap().1.len(), 1);
        assert_eq!(decode_all(d, &over).unwrap().1.len(), 1);
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
        encode_start(1, &mut buf);
        for op in &ops {
            encode(&d, 1, op, &mut buf);
        }
        // A torn record after the complete ones.
        let mut torn = Vec::new();
        encode(
            &d,
            1,
            &FileOp::Write {
                path: d.join("job-3"),
                data: b"three".to_vec(),
            },
            &mut torn,
        );
        buf.extend_from_slice(&torn[..torn.len() - 2]);
        atomic_write(&jpath, &buf, 0o640).unwrap();

        let stats = replay(&jpath, &d, 0o640).unwrap();
        assert_eq!(
            stats,
            ReplayStats {
                generation: 1,
                records: 5
            }
        );
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
