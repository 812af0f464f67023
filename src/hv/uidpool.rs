//! The user-id pool (design 2.1, Ganeti's `uidpool`): instances with
//! `security_model=pool` run their hypervisor process under a uid of their
//! own, taken from the cluster's `uid_pool` (ssconf `uid_pool`, one uid or
//! `LOW-HIGH` range a line).
//!
//! Reservation uses one lock file per uid in `RUN_DIR/uid-pool/<uid>`: a
//! uid is free when no such file exists, or when its file can be locked
//! (`flock`, without waiting) and no process runs under the uid. Uids
//! without a file are tried first, then the stale ones. The winner keeps
//! its lock until the process has started ([`LockedUid::unlock`]); the file
//! stays as the mark "taken" until [`release`] removes it when the
//! instance stops.

use crate::paths::Paths;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// A uid pool problem, naming the pool or the uid.
#[derive(Debug, thiserror::Error)]
pub enum UidPoolError {
    /// The pool definition cannot be read.
    #[error("invalid uid pool entry {entry:?}: {reason}")]
    Parse {
        /// The entry as written.
        entry: String,
        /// What is wrong.
        reason: String,
    },
    /// No uid of the pool is free.
    #[error("no free uid in the uid pool {pool}: every uid is reserved or has processes")]
    Exhausted {
        /// The pool, formatted (`1000-1009, 2000`).
        pool: String,
    },
    /// The pool is empty.
    #[error("the uid pool is empty (set it with gnt-cluster modify --uid-pool)")]
    Empty,
    /// A lock file could not be made, locked or removed.
    #[error("uid pool lock file {path}: {what}")]
    Lock {
        /// The file.
        path: PathBuf,
        /// What failed.
        what: String,
    },
}

/// Parses a pool definition: entries (`UID` or `LOW-HIGH`, inclusive)
/// separated by newlines or commas, sorted by their low end.
pub fn parse(text: &str) -> Result<Vec<(u32, u32)>, UidPoolError> {
    let mut ranges = Vec::new();
    for entry in text
        .split([',', '\n'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let bad = |reason: &str| UidPoolError::Parse {
            entry: entry.to_string(),
            reason: reason.to_string(),
        };
        let (lo, hi) = match entry.split_once('-') {
            Some((lo, hi)) => (lo.trim(), hi.trim()),
            None => (entry, entry),
        };
        let num = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| bad(&format!("{s:?} is not a uid (0-4294967295)")))
        };
        let (lo, hi) = (num(lo)?, num(hi)?);
        if lo > hi {
            return Err(bad("the lower bound is above the higher one"));
        }
        ranges.push((lo, hi));
    }
    ranges.sort_unstable();
    Ok(ranges)
}

/// The pool as `gnt-cluster info` shows it: `1000-1009, 2000`.
pub fn format(ranges: &[(u32, u32)]) -> String {
    ranges
        .iter()
        .map(|(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `RUN_DIR/uid-pool`.
pub fn lock_dir(paths: &Paths) -> PathBuf {
    paths.run_dir().join("uid-pool")
}

/// A uid taken from the pool, its lock file still locked.
#[derive(Debug)]
pub struct LockedUid {
    uid: u32,
    path: PathBuf,
    file: std::fs::File,
}

impl LockedUid {
    /// The uid.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// Drops the lock once the process runs under the uid; the lock file
    /// stays, marking the uid taken.
    pub fn unlock(self) {
        drop(self.file);
    }

    /// Gives the uid back (the start failed): unlocks and removes the file.
    pub fn release(self) -> Result<(), UidPoolError> {
        let path = self.path.clone();
        drop(self.file);
        remove_lock_file(path)
    }
}

fn remove_lock_file(path: PathBuf) -> Result<(), UidPoolError> {
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(UidPoolError::Lock {
            path,
            what: format!("cannot remove it: {e}"),
        }),
    }
}

/// Reserves a free uid of `ranges` (see the module doc). `in_use` says
/// whether a process runs under a uid ([`crate::sys::proc::uid_has_processes`]
/// on a real node).
pub fn request_unused(
    paths: &Paths,
    ranges: &[(u32, u32)],
    in_use: &dyn Fn(u32) -> bool,
) -> Result<LockedUid, UidPoolError> {
    if ranges.is_empty() {
        return Err(UidPoolError::Empty);
    }
    let dir = lock_dir(paths);
    crate::sys::fs::ensure_dir(&dir, 0o755).map_err(|e| UidPoolError::Lock {
        path: dir.clone(),
        what: crate::error::chain(&e),
    })?;
    let in_pool = |uid: u32| ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&uid));
    let taken: BTreeSet<u32> = std::fs::read_dir(&dir)
        .map_err(|e| UidPoolError::Lock {
            path: dir.clone(),
            what: format!("cannot list the directory: {e}"),
        })?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|uid| in_pool(*uid))
        .collect();
    let unused = ranges
        .iter()
        .flat_map(|(lo, hi)| *lo..=*hi)
        .filter(|uid| !taken.contains(uid));
    for uid in unused.chain(taken.iter().copied()) {
        let path = dir.join(uid.to_string());
        let file = crate::sys::fs::try_lock_exclusive(&path).map_err(|e| UidPoolError::Lock {
            path: path.clone(),
            what: crate::error::chain(&e),
        })?;
        let Some(file) = file else {
            continue; // another start holds it right now
        };
        if in_use(uid) {
            continue; // dropping `file` unlocks; the file marks it taken
        }
        return Ok(LockedUid { uid, path, file });
    }
    Err(UidPoolError::Exhausted {
        pool: format(ranges),
    })
}

/// Gives `uid` back to the pool after its instance stopped: removes its
/// lock file (a missing file is fine).
pub fn release(paths: &Paths, uid: u32) -> Result<(), UidPoolError> {
    remove_lock_file(lock_dir(paths).join(uid.to_string()))
}

/// The user name and primary group of `uid` in `passwd_text` (the host's
/// `/etc/passwd`), when it has an entry.
pub fn passwd_entry(passwd_text: &str, uid: u32) -> Option<(String, u32)> {
    passwd_text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 4 && fields[2].parse::<u32>() == Ok(uid))
            .then(|| Some((fields[0].to_string(), fields[3].parse::<u32>().ok()?)))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::test_support::{remove_temp_node, temp_node};

    #[test]
    fn parse_and_format() {
        assert_eq!(
            parse("2000-2002\n1000\n").unwrap(),
            vec![(1000, 1000), (2000, 2002)]
        );
        assert_eq!(parse("1000-1009, 2000").unwrap().len(), 2);
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(format(&[(1000, 1009), (2000, 2000)]), "1000-1009, 2000");
        for (bad, want) in [
            ("5-1", "lower bound"),
            ("x", "\"x\" is not a uid"),
            ("1-2-3", "\"2-3\""),
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn reservations_differ_exhaust_and_come_back() {
        let p = temp_node("uidpool", "node1", &[]);
        let pool = parse("5000-5001").unwrap();
        let free = |_| false;
        let a = request_unused(&p, &pool, &free).unwrap();
        // While `a` holds its lock, the next reservation gets the other uid.
        let b = request_unused(&p, &pool, &free).unwrap();
        assert_ne!(a.uid(), b.uid());
        let e = request_unused(&p, &pool, &free).unwrap_err().to_string();
        assert!(e.contains("no free uid in the uid pool 5000-5001"), "{e}");
        // Unlocked after the start but no process yet under the uid: a
        // stale mark, reusable. With a process under it: still taken.
        let (ua, ub) = (a.uid(), b.uid());
        a.unlock();
        b.unlock();
        let busy = |uid| uid == ua || uid == ub;
        assert!(request_unused(&p, &pool, &busy).is_err());
        release(&p, ua).unwrap();
        assert!(!lock_dir(&p).join(ua.to_string()).exists());
        // Released, and the process gone: reusable.
        let only_b_busy = |uid| uid == ub;
        let c = request_unused(&p, &pool, &only_b_busy).unwrap();
        assert_eq!(c.uid(), ua);
        c.release().unwrap();
        release(&p, ua).unwrap(); // twice is fine
        let e = request_unused(&p, &[], &free).unwrap_err().to_string();
        assert!(e.contains("uid pool is empty"), "{e}");
        remove_temp_node(&p);
    }

    #[test]
    fn passwd_lookup() {
        let text = "root:x:0:0:root:/root:/bin/bash\nqemu1:x:5000:5100::/:/bin/false\n";
        assert_eq!(passwd_entry(text, 5000), Some(("qemu1".into(), 5100)));
        assert_eq!(passwd_entry(text, 5001), None);
    }
}
