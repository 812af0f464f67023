//! File writes that never leave a half-written file behind.
//!
//! Config, ssconf, job and key files go through [`atomic_write`]: the data is
//! written to a temporary file in the same directory, fsynced, renamed over
//! the target, and the directory is fsynced so the rename itself is durable.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A failed file-system step, naming the path.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// Any I/O step on `path` failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done ("writing", "renaming to", ...).
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> FsError + 'a {
    move |source| FsError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `data` to `path` atomically with permission bits `mode`.
///
/// On any error the previous content of `path` is untouched and the
/// temporary file is removed.
pub fn atomic_write(path: &Path, data: &[u8], mode: u32) -> Result<(), FsError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        unique_suffix()
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(io_err("creating", &tmp))?;
        // The umask may have cleared bits of `mode`; set them exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io_err("chmod", &tmp))?;
        f.write_all(data).map_err(io_err("writing", &tmp))?;
        f.sync_all().map_err(io_err("fsync", &tmp))?;
        drop(f);
        fs::rename(&tmp, path).map_err(io_err("renaming over", path))?;
        fsync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Fsyncs a directory, making renames and creations in it durable.
pub fn fsync_dir(dir: &Path) -> Result<(), FsError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

/// Flushes every dirty page and inode of the file system holding `path`
/// (`syncfs(2)`): one call instead of one `fsync` per file, at the price of
/// also flushing whatever else is dirty on that file system.
pub fn syncfs(path: &Path) -> Result<(), FsError> {
    let f = File::open(path).map_err(io_err("opening for syncfs", path))?;
    rustix::fs::syncfs(&f).map_err(|e| io_err("syncfs", path)(e.into()))
}

/// Creates `dir` and its parents with `mode` on the directories it creates.
pub fn ensure_dir(dir: &Path, mode: u32) -> Result<(), FsError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(io_err("creating directory", dir))
}

/// Reads a whole file, naming it in the error.
pub fn read(path: &Path) -> Result<Vec<u8>, FsError> {
    fs::read(path).map_err(io_err("reading", path))
}

/// The permission bits of `path`.
pub fn mode_of(path: &Path) -> Result<u32, FsError> {
    Ok(fs::metadata(path)
        .map_err(io_err("stat", path))?
        .permissions()
        .mode()
        & 0o7777)
}

fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Fills `buf` with random bytes from the kernel.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), FsError> {
    let mut filled = 0;
    while filled < buf.len() {
        match rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                return Err(FsError::Io {
                    action: "getrandom",
                    path: PathBuf::from("/dev/urandom"),
                    source: e.into(),
                })
            }
        }
    }
    Ok(())
}

/// Opens `path` for appending, creating it with `mode` if needed (log files).
pub fn open_append(path: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(mode)
        .open(path)
}

/// Opens a terminal device such as `/dev/console` for writing without
/// making it our controlling terminal (`O_NOCTTY`).
pub fn open_terminal(path: &Path) -> io::Result<File> {
    let fd = rustix::fs::open(
        path,
        rustix::fs::OFlags::WRONLY
            | rustix::fs::OFlags::APPEND
            | rustix::fs::OFlags::NOCTTY
            | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    Ok(File::from(fd))
}

/// Takes an exclusive `flock` on `path` (created 0600 if missing),
/// waiting for other holders; the lock lasts as long as the returned file.
/// For read-modify-write of small state files by several processes.
pub fn lock_exclusive(path: &Path) -> Result<File, FsError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io_err("opening lock file", path))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| io_err("locking", path)(e.into()))?;
    Ok(file)
}

/// Writes `data` into the existing kernel knob `path` (`/proc/sys/…`,
/// `/sys/…`) in place: such files cannot be replaced by a rename, and
/// their writes are atomic already.
pub fn write_kernel_knob(path: &Path, data: &[u8]) -> Result<(), FsError> {
    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err("opening", path))?;
    file.write_all(data).map_err(io_err("writing", path))
}

/// Takes an exclusive `flock` on `path` (created 0644 if missing) without
/// waiting: `Ok(None)` when another open file holds it. The lock lasts as
/// long as the returned file. For the uid pool's per-uid lock files.
pub fn try_lock_exclusive(path: &Path) -> Result<Option<File>, FsError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(path)
        .map_err(io_err("opening lock file", path))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(io_err("locking", path)(e.into())),
    }
}

/// A daemon's pid file, exclusively locked (`flock`) for as long as this
/// value lives. The lock, not the pid written in the file, says whether the
/// daemon runs: it disappears with the process, however it dies.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    // Holds the lock; closing it releases the lock.
    file: File,
}

/// The outcome of trying to take a pid file.
#[derive(Debug)]
pub enum PidLock {
    /// We hold it now, with our pid written in it.
    Acquired(PidFile),
    /// Another live process holds it; the pid it wrote, if readable.
    Held {
        /// The pid in the file.
        pid: Option<u32>,
    },
}

/// What a pid file says about its daemon, without taking it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidProbe {
    /// No pid file: not running.
    Absent,
    /// A pid file nobody holds: the daemon died without cleaning up.
    Stale,
    /// Held by a running daemon with this pid (if the file could be read).
    Running(Option<u32>),
}

impl PidFile {
    /// Takes the pid file at `path`, writing our own pid into it.
    pub fn lock(path: &Path) -> Result<PidLock, FsError> {
        // A previous holder removes the file before exiting, so the inode we
        // locked may already be unlinked: retry until the lock is on the
        // file that the path names.
        for _ in 0..10 {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                // Not yet: the old content names the holder if the lock fails.
                .truncate(false)
                .mode(0o644)
                .open(path)
                .map_err(io_err("opening pid file", path))?;
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    return Ok(PidLock::Held {
                        pid: read_pid(&mut file),
                    })
                }
                Err(e) => return Err(io_err("locking pid file", path)(e.into())),
            }
            if !same_inode(&file, path) {
                continue;
            }
            file.set_len(0)
                .map_err(io_err("truncating pid file", path))?;
            file.write_all(format!("{}\n", std::process::id()).as_bytes())
                .map_err(io_err("writing pid file", path))?;
            file.sync_all().map_err(io_err("fsync pid file", path))?;
            return Ok(PidLock::Acquired(PidFile {
                path: path.to_path_buf(),
                file,
            }));
        }
        Err(io_err("locking pid file", path)(io::Error::other(
            "the file keeps being replaced",
        )))
    }

    /// Looks at the pid file at `path` without keeping it.
    pub fn probe(path: &Path) -> Result<PidProbe, FsError> {
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(PidProbe::Absent),
            Err(e) => return Err(io_err("opening pid file", path)(e)),
        };
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared) {
            Ok(()) => Ok(PidProbe::Stale),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(PidProbe::Running(read_pid(&mut file))),
            Err(e) => Err(io_err("probing lock of pid file", path)(e.into())),
        }
    }

    /// Removes a pid file nobody holds (left by a daemon that was killed).
    /// Does nothing when a live daemon holds it or it is gone already.
    pub fn remove_stale(path: &Path) -> Result<(), FsError> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err("opening pid file", path)(e)),
        };
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) if same_inode(&file, path) => match fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    Err(io_err("removing stale pid file", path)(e))
                }
                _ => Ok(()),
            },
            Ok(()) | Err(rustix::io::Errno::WOULDBLOCK) => Ok(()),
            Err(e) => Err(io_err("locking pid file", path)(e.into())),
        }
    }

    /// The pid file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file, then releases the lock.
    pub fn remove(self) -> Result<(), FsError> {
        let r = fs::remove_file(&self.path).map_err(io_err("removing pid file", &self.path));
        drop(self.file);
        r
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    use std::io::Read;
    let mut s = String::new();
    file.read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

fn same_inode(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ganeti-fs-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn atomic_write_replaces_and_sets_mode() {
        let d = tempdir("aw");
        let p = d.join("config.data");
        atomic_write(&p, b"one", 0o600).unwrap();
        atomic_write(&p, b"two", 0o640).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(mode_of(&p).unwrap(), 0o640);
        let leftovers: Vec<_> = fs::read_dir(&d).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temporary files left behind");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn atomic_write_into_missing_dir_fails_naming_the_path() {
        let d = tempdir("missing");
        let p = d.join("nope/config.data");
        let err = atomic_write(&p, b"x", 0o600).unwrap_err();
        assert!(
            crate::error::chain(&err).contains("nope"),
            "{}",
            crate::error::chain(&err)
        );
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn random_bytes_are_not_all_zero() {
        let mut b = [0u8; 32];
        random_bytes(&mut b).unwrap();
        assert!(b.iter().any(|&x| x != 0));
    }

    #[test]
    fn pid_file_is_exclusive_and_probed_by_its_lock() {
        let d = tempdir("pid");
        let p = d.join("ganeti-masterd.pid");
        assert_eq!(PidFile::probe(&p).unwrap(), PidProbe::Absent);
        let PidLock::Acquired(held) = PidFile::lock(&p).unwrap() else {
            panic!("first lock must succeed");
        };
        let me = std::process::id();
        assert_eq!(fs::read_to_string(&p).unwrap(), format!("{me}\n"));
        // flock locks belong to the open file, so a second open in the same
        // process conflicts just as another process would.
        match PidFile::lock(&p).unwrap() {
            PidLock::Held { pid } => assert_eq!(pid, Some(me)),
            PidLock::Acquired(_) => panic!("second lock must fail"),
        }
        assert_eq!(PidFile::probe(&p).unwrap(), PidProbe::Running(Some(me)));
        PidFile::remove_stale(&p).unwrap();
        assert!(p.exists(), "a held pid file is not stale");
        held.remove().unwrap();
        assert_eq!(PidFile::probe(&p).unwrap(), PidProbe::Absent);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn stale_pid_file_is_detected_and_removed() {
        let d = tempdir("stale");
        let p = d.join("ganeti-noded.pid");
        fs::File::create(&p)
            .unwrap()
            .write_all(b"999999\n")
            .unwrap();
        assert_eq!(PidFile::probe(&p).unwrap(), PidProbe::Stale);
        let PidLock::Acquired(held) = PidFile::lock(&p).unwrap() else {
            panic!("a stale pid file must be taken over");
        };
        drop(held); // dropped without remove(): left stale again
        PidFile::remove_stale(&p).unwrap();
        assert_eq!(PidFile::probe(&p).unwrap(), PidProbe::Absent);
        fs::remove_dir_all(&d).unwrap();
    }
}
