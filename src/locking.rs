//! Lock levels, the lock manager, and the one acquisition order.
//!
//! masterd's job workers call into this module (through `cmdlib`'s
//! `declare_locks`) before an opcode runs; `gnt-debug locks` reads
//! [`LockManager::info`]. Nothing here touches the config, a node or the
//! disk: a lock is only a name, and this module only decides who may hold
//! which name how.
//!
//! # Why synchronous
//!
//! Job workers are plain threads (a job spends its life blocked in RPCs and
//! in lock waits, and Ganeti's model of "one worker thread per running job"
//! is what its design docs reason about). A blocking `std::sync::Mutex` +
//! `Condvar` lock is therefore the natural primitive: a waiting job parks
//! its own thread and costs nothing else. An async lock would force every
//! worker onto an executor and buy nothing, because the number of jobs
//! running at once is bounded by the worker pool anyway. Async callers, if
//! any appear, can wrap an acquisition in `rt`'s unblock helper.
//!
//! # Structure
//!
//! * [`SharedLock`] (`locking/shared_lock.rs`): one named lock with shared
//!   and exclusive mode, a single priority-ordered FIFO queue, timeouts and
//!   deletion (design 2.1 "SharedLock redesign", design 2.3 priorities).
//! * [`LockSet`] (`locking/lock_set.rs`): all locks of one level, acquired
//!   several at a time in sorted order, or all at once including future
//!   additions ("set lock").
//! * [`LockManager`] (`locking/manager.rs`): one [`LockSet`] per [`Level`],
//!   enforcing the level order and the Big Ganeti Lock rule.
//! * [`retry`] (`locking/retry.rs`): acquiring with increasing timeouts,
//!   then blocking or deferring the job (design 2.1 "Retry acquiring
//!   locks", Ganeti's `LockAttemptTimeoutStrategy`).
//!
//! # Queueing rule (what [`SharedLock`] implements)
//!
//! In our own words, after design 2.1 and 2.3:
//!
//! 1. A request is granted at once, without queueing, only when nobody is
//!    waiting and the current holders are compatible (no holder at all for
//!    exclusive; no exclusive holder for shared). So a newcomer never
//!    overtakes a waiter merely because the lock happens to be free or
//!    shared at that instant.
//! 2. Otherwise the request joins the queue. The queue is ordered by
//!    priority first (a lower number is served first, as for Ganeti job
//!    priorities) and by arrival within one priority.
//! 3. Each exclusive request is its own queue entry. Shared requests of one
//!    priority gather in a single *open* shared entry: a shared request
//!    joins the open entry of its priority if there is one, even when
//!    exclusive requests have queued behind that entry since it was opened.
//!    This is the deliberate skip-ahead of the design: readers are batched
//!    together because they can run in parallel, and a writer cannot.
//! 4. Only the head entry of the queue may take the lock, and only when
//!    the holders are compatible with it. When that happens the head entry
//!    is woken as a whole; a shared head entry is *closed* at that moment,
//!    so shared requests arriving later open a new entry at the tail of
//!    their priority instead of sneaking in. This bounds how long an
//!    exclusive waiter can be overtaken: by at most one batch of readers
//!    per priority level.
//! 5. A waiter whose timeout expires leaves the queue without the lock. A
//!    deleted lock wakes every waiter, and each returns
//!    [`LockError::Deleted`]; later requests fail the same way.
//!
//! Where we differ from Ganeti's code on purpose: whenever the head of the
//! queue changes for any reason (a release, a waiter timing out, an entry
//! emptying) and the new head can be granted, it is woken at once. Ganeti
//! only wakes the head on a release, so a reader behind a timed-out writer
//! could sit idle until the next release although it was grantable.

mod lock_set;
mod manager;
pub mod retry;
mod shared_lock;

pub use lock_set::{LockSet, Names, NewLocks, LOCKSET_NAME};
pub use manager::{InitialLocks, Level, LockManager, BGL_NAME};
pub use shared_lock::SharedLock;

use std::fmt;
use std::time::{Duration, Instant};

/// Who holds or waits for a lock. masterd gives each running job (and each
/// internal task that takes locks) its own owner id; a job's opcodes all use
/// the job's id so that `gnt-debug locks` can name the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OwnerId(pub u64);

impl fmt::Display for OwnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "owner/{}", self.0)
    }
}

/// The name of one lock within its level, e.g. an instance or node name,
/// or [`BGL_NAME`] at the cluster level.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LockName(pub String);

impl fmt::Display for LockName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for LockName {
    fn from(name: &str) -> Self {
        LockName(name.to_owned())
    }
}

impl From<String> for LockName {
    fn from(name: String) -> Self {
        LockName(name)
    }
}

/// How a lock is (to be) held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LockMode {
    /// Any number of shared holders at once, and no exclusive holder.
    Shared,
    /// Exactly one holder.
    Exclusive,
}

impl fmt::Display for LockMode {
    /// The words `gnt-debug locks` prints (Ganeti: `shared`, `exclusive`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LockMode::Shared => "shared",
            LockMode::Exclusive => "exclusive",
        })
    }
}

/// Priority of a lock request, with Ganeti's opcode priority scale: a lower
/// number is more urgent, from [`Priority::HIGHEST`] (-20) to
/// [`Priority::LOWEST`] (19); jobs are submitted at -10, 0 or 10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Priority(pub i32);

impl Priority {
    /// The most urgent priority (`OP_PRIO_HIGHEST`); a job here no longer
    /// defers but blocks on its locks.
    pub const HIGHEST: Priority = Priority(-20);
    /// `OP_PRIO_HIGH`.
    pub const HIGH: Priority = Priority(-10);
    /// `OP_PRIO_NORMAL`, the default.
    pub const NORMAL: Priority = Priority(0);
    /// `OP_PRIO_LOW`.
    pub const LOW: Priority = Priority(10);
    /// The least urgent priority (`OP_PRIO_LOWEST`).
    pub const LOWEST: Priority = Priority(19);

    /// One step more urgent, never beyond [`Priority::HIGHEST`]; what the
    /// job queue applies to a job that deferred for want of locks
    /// (design 2.3).
    pub fn raised(self) -> Priority {
        Priority((self.0 - 1).max(Self::HIGHEST.0))
    }
}

impl Default for Priority {
    fn default() -> Self {
        Priority::NORMAL
    }
}

/// How long an acquisition may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// Wait as long as it takes (or until the lock is deleted).
    Blocking,
    /// Give up after this long; `Duration::ZERO` means "only if free now".
    After(Duration),
}

impl Timeout {
    /// The instant at which waiting stops, counted from `now`.
    fn deadline_from(self, now: Instant) -> Deadline {
        match self {
            Timeout::Blocking => Deadline::Never,
            // An overflowing deadline is as good as none.
            Timeout::After(d) => now.checked_add(d).map_or(Deadline::Never, Deadline::At),
        }
    }
}

/// A point in time when waiting stops; one deadline is shared by every lock
/// of a multi-lock acquisition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deadline {
    /// No deadline.
    Never,
    /// Stop waiting at this instant.
    At(Instant),
}

/// The result of an acquisition that did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a timed-out acquisition holds nothing"]
pub enum Acquired {
    /// The lock(s) are now held by the requesting owner.
    Yes,
    /// The timeout expired first; nothing is held from this request.
    TimedOut,
}

/// One waiting queue entry of a lock, as `gnt-debug locks` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingInfo {
    /// The mode requested by this entry.
    pub mode: LockMode,
    /// The owners waiting in this entry (several for a shared batch).
    pub owners: Vec<OwnerId>,
}

/// State of one lock for `gnt-debug locks` (Ganeti's `GetLockInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    /// Lock name; the manager prefixes the level (`instance/inst1`).
    pub name: String,
    /// Current mode; `None` when free.
    pub mode: Option<LockMode>,
    /// Whether the lock has been deleted (Ganeti prints `deleted`).
    pub deleted: bool,
    /// Current holders, sorted.
    pub owners: Vec<OwnerId>,
    /// Waiting entries in the order they will be served.
    pub pending: Vec<PendingInfo>,
}

/// Errors of the lock manager. A timeout is not an error: see [`Acquired`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    /// The lock was deleted before or while waiting for it.
    #[error("lock {lock} was deleted")]
    Deleted {
        /// The deleted lock.
        lock: String,
    },
    /// Locks are not recursive: the owner already holds this lock.
    #[error("{owner} already holds lock {lock}")]
    AlreadyHeld {
        /// The lock.
        lock: String,
        /// The owner asking again.
        owner: OwnerId,
    },
    /// Release or delete by an owner that does not hold the lock.
    #[error("{owner} does not hold lock {lock}")]
    NotHeld {
        /// The lock.
        lock: String,
        /// The owner that tried.
        owner: OwnerId,
    },
    /// Deleting needs exclusive mode; the owner only shares the lock.
    #[error("{owner} holds lock {lock} shared and cannot delete it")]
    DeleteWhileShared {
        /// The lock.
        lock: String,
        /// The sharing owner.
        owner: OwnerId,
    },
    /// A requested name is not (or no longer) in the set.
    #[error("no lock {name} in set {set}")]
    NotFound {
        /// The set (level) name.
        set: String,
        /// The missing name.
        name: LockName,
    },
    /// Adding a name that is already in the set.
    #[error("lock {name} already exists in set {set}")]
    Exists {
        /// The set (level) name.
        set: String,
        /// The duplicate name.
        name: LockName,
    },
    /// An owner may acquire within one set only once, all names together;
    /// acquiring more later could deadlock against the sorted order.
    #[error("{owner} already holds locks in set {set}; acquire all names at once")]
    SetAlreadyHeld {
        /// The set (level) name.
        set: String,
        /// The owner.
        owner: OwnerId,
    },
    /// Adding to a set whose set lock the owner holds shared would
    /// deadlock on itself.
    #[error("{owner} holds the whole set {set} shared and cannot add to it")]
    AddWhileSetShared {
        /// The set (level) name.
        set: String,
        /// The owner.
        owner: OwnerId,
    },
    /// Locks must be acquired level by level, in [`Level`] order, each
    /// level at most once per owner. This is a bug in the caller.
    #[error("lock order violation: {owner} holds {held} locks and requested {requested} locks")]
    OrderViolation {
        /// The owner.
        owner: OwnerId,
        /// The highest level the owner already holds.
        held: Level,
        /// The level requested.
        requested: Level,
    },
    /// Every level other than the cluster needs the BGL first.
    #[error("{owner} requested {requested} locks without holding the cluster lock (BGL)")]
    BglNotHeld {
        /// The owner.
        owner: OwnerId,
        /// The level requested.
        requested: Level,
    },
    /// The cluster level holds the BGL only; it cannot be added to or
    /// removed from.
    #[error("{owner} tried to add or remove {level} locks, which never change")]
    NotModifiable {
        /// The owner.
        owner: OwnerId,
        /// The level.
        level: Level,
    },
    /// The BGL is released last.
    #[error("{owner} cannot release the cluster lock (BGL) while holding {held} locks")]
    BglReleasedEarly {
        /// The owner.
        owner: OwnerId,
        /// A level still held.
        held: Level,
    },
}

impl LockError {
    /// The cross-process error class, for a job that fails on a lock error.
    pub fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            LockError::Deleted { .. } | LockError::NotFound { .. } => ErrorKind::NoEnt,
            LockError::Exists { .. } => ErrorKind::Exists,
            _ => ErrorKind::Fault,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::{mpsc, Arc};
    use std::thread;

    /// A tiny deterministic generator, so a failing run can be replayed.
    struct XorShift(u64);

    impl XorShift {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            usize::try_from(self.0 % n as u64).expect("below n, which is a usize")
        }
    }

    /// Per-lock witness of the mutual exclusion invariant: -1 while held
    /// exclusively, the number of sharers otherwise.
    fn enter(cell: &AtomicI64, mode: LockMode) {
        let ok = match mode {
            LockMode::Exclusive => cell
                .compare_exchange(0, -1, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok(),
            LockMode::Shared => cell
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
                    (v >= 0).then_some(v + 1)
                })
                .is_ok(),
        };
        assert!(
            ok,
            "mutual exclusion broken entering {mode}: {}",
            cell.load(Ordering::SeqCst)
        );
    }

    fn leave(cell: &AtomicI64, mode: LockMode) {
        match mode {
            LockMode::Exclusive => assert_eq!(cell.swap(0, Ordering::SeqCst), -1),
            LockMode::Shared => assert!(cell.fetch_sub(1, Ordering::SeqCst) > 0),
        }
    }

    #[test]
    fn contention_stress_keeps_mutual_exclusion_without_deadlock() {
        const THREADS: u64 = 8;
        const ROUNDS: usize = 200;
        const LOCKS: usize = 10;
        let names: Vec<LockName> = (0..LOCKS).map(|i| LockName(format!("inst{i}"))).collect();
        let manager = Arc::new(LockManager::new(InitialLocks {
            instances: names.clone(),
            ..InitialLocks::default()
        }));
        let cells: Arc<Vec<AtomicI64>> = Arc::new((0..=LOCKS).map(|_| AtomicI64::new(0)).collect());
        let bgl_cell = LOCKS;
        let (done_tx, done_rx) = mpsc::channel();
        for t in 0..THREADS {
            let (manager, cells, names, done_tx) = (
                manager.clone(),
                cells.clone(),
                names.clone(),
                done_tx.clone(),
            );
            thread::spawn(move || {
                let owner = OwnerId(t);
                let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ (t + 1));
                for _ in 0..ROUNDS {
                    let priority = [Priority::HIGH, Priority::NORMAL, Priority::LOW][rng.below(3)];
                    // Rarely take the BGL exclusively, as cluster-wide ops do.
                    let bgl_mode = if rng.below(50) == 0 {
                        LockMode::Exclusive
                    } else {
                        LockMode::Shared
                    };
                    let bgl = Names::list([BGL_NAME]);
                    let got = manager.acquire(
                        owner,
                        Level::Cluster,
                        &bgl,
                        bgl_mode,
                        Timeout::Blocking,
                        priority,
                    );
                    assert_eq!(got, Ok(Acquired::Yes));
                    enter(&cells[bgl_cell], bgl_mode);

                    let count = 1 + rng.below(3);
                    let mut picked: Vec<usize> = (0..count).map(|_| rng.below(LOCKS)).collect();
                    picked.sort_unstable();
                    picked.dedup();
                    let mode = if rng.below(2) == 0 {
                        LockMode::Shared
                    } else {
                        LockMode::Exclusive
                    };
                    let timeout = match rng.below(4) {
                        0 => {
                            Timeout::After(std::time::Duration::from_micros(rng.below(500) as u64))
                        }
                        _ => Timeout::Blocking,
                    };
                    let wanted = Names::List(picked.iter().map(|i| names[*i].clone()).collect());
                    let got =
                        manager.acquire(owner, Level::Instance, &wanted, mode, timeout, priority);
                    if got == Ok(Acquired::Yes) {
                        picked.iter().for_each(|i| enter(&cells[*i], mode));
                        thread::yield_now();
                        picked.iter().for_each(|i| leave(&cells[*i], mode));
                        manager
                            .release(owner, Level::Instance, &Names::All)
                            .expect("release");
                    } else {
                        assert_eq!(got, Ok(Acquired::TimedOut));
                        assert!(manager.owned(owner, Level::Instance).is_empty());
                    }
                    leave(&cells[bgl_cell], bgl_mode);
                    manager
                        .release(owner, Level::Cluster, &Names::All)
                        .expect("release");
                }
                done_tx.send(t).expect("report");
            });
        }
        for _ in 0..THREADS {
            // Generous bound: only a deadlock takes this long.
            if done_rx
                .recv_timeout(std::time::Duration::from_secs(120))
                .is_err()
            {
                panic!("stress test stuck; locks: {:#?}", manager.info());
            }
        }
        let info = manager.info();
        assert!(
            info.iter()
                .all(|i| i.owners.is_empty() && i.pending.is_empty()),
            "{info:#?}"
        );
        assert!(cells.iter().all(|c| c.load(Ordering::SeqCst) == 0));
    }
}
