//! One named lock with shared and exclusive mode: the single-queue
//! `SharedLock` of design 2.1, with the request priorities of design 2.3.
//!
//! The queueing rule is written out in the parent module's documentation
//! (`locking.rs`); this file implements it. All state sits behind one
//! `std::sync::Mutex`; every queue entry has its own `Condvar`, so waking
//! the head entry wakes exactly the threads that may now take the lock
//! (one writer, or one batch of readers) and nobody else.

use super::{
    Acquired, Deadline, LockError, LockInfo, LockMode, OwnerId, PendingInfo, Priority, Timeout,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// Why a poisoned state mutex cannot happen: no code that can panic runs
/// while the state is locked (no callbacks, no assertions).
const NOT_POISONED: &str = "lock state mutex poisoned: a panic inside lock bookkeeping is a bug";

/// A lock that many owners may hold shared or one owner exclusively.
///
/// Not recursive: an owner that already holds (or waits for) the lock gets
/// [`LockError::AlreadyHeld`]. Owners are explicit ids rather than threads,
/// so a job may release on a different thread than it acquired on.
#[derive(Debug)]
pub struct SharedLock {
    /// Full name, as shown by `gnt-debug locks` (e.g. `instance/inst1`).
    name: String,
    /// Holders, waiters and the deleted flag.
    state: Mutex<State>,
}

/// Everything about the lock that changes; guarded by [`SharedLock::state`].
#[derive(Debug, Default)]
struct State {
    /// The exclusive holder, if any.
    exclusive: Option<OwnerId>,
    /// The shared holders.
    shared: BTreeSet<OwnerId>,
    /// Once set, every pending and future request fails.
    deleted: bool,
    /// Waiting entries: by priority (lowest number first), then FIFO.
    queue: BTreeMap<Priority, VecDeque<Entry>>,
    /// Per priority, the shared entry that new shared requests may still
    /// join (it has not been woken yet).
    open_shared: BTreeMap<Priority, EntryId>,
    /// Source of entry ids.
    next_entry: u64,
}

/// Identifies one queue entry for the lifetime of the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EntryId(u64);

/// One position in the queue: one exclusive request, or a batch of shared
/// requests that will be granted together.
#[derive(Debug)]
struct Entry {
    /// This entry's id.
    id: EntryId,
    /// Mode wanted by every waiter of the entry.
    mode: LockMode,
    /// The owners waiting here, in arrival order.
    waiters: Vec<OwnerId>,
    /// Signalled when the entry reaches the head and can be granted, or
    /// when the lock is deleted.
    cond: Arc<Condvar>,
}

impl State {
    /// Whether a request in `mode` is compatible with the current holders.
    fn compatible(&self, mode: LockMode) -> bool {
        match mode {
            LockMode::Shared => self.exclusive.is_none(),
            LockMode::Exclusive => self.exclusive.is_none() && self.shared.is_empty(),
        }
    }

    /// How `owner` holds the lock, if at all.
    fn held_by(&self, owner: OwnerId) -> Option<LockMode> {
        if self.exclusive == Some(owner) {
            Some(LockMode::Exclusive)
        } else if self.shared.contains(&owner) {
            Some(LockMode::Shared)
        } else {
            None
        }
    }

    /// Whether `owner` is somewhere in the queue.
    fn is_waiting(&self, owner: OwnerId) -> bool {
        self.queue
            .values()
            .flatten()
            .any(|e| e.waiters.contains(&owner))
    }

    /// Records `owner` as a holder.
    fn grant(&mut self, owner: OwnerId, mode: LockMode) {
        match mode {
            LockMode::Shared => {
                self.shared.insert(owner);
            }
            LockMode::Exclusive => self.exclusive = Some(owner),
        }
    }

    /// Puts `owner` in the queue (rule 3) and returns its entry and the
    /// condition to wait on.
    fn enqueue(
        &mut self,
        owner: OwnerId,
        mode: LockMode,
        priority: Priority,
    ) -> (EntryId, Arc<Condvar>) {
        let entries = self.queue.entry(priority).or_default();
        if mode == LockMode::Shared {
            if let Some(&open) = self.open_shared.get(&priority) {
                if let Some(e) = entries.iter_mut().find(|e| e.id == open) {
                    e.waiters.push(owner);
                    return (e.id, Arc::clone(&e.cond));
                }
            }
        }
        let id = EntryId(self.next_entry);
        self.next_entry += 1;
        let cond = Arc::new(Condvar::new());
        entries.push_back(Entry {
            id,
            mode,
            waiters: vec![owner],
            cond: Arc::clone(&cond),
        });
        if mode == LockMode::Shared {
            self.open_shared.insert(priority, id);
        }
        (id, cond)
    }

    /// Whether entry `id` of `priority` is at the head of the queue.
    fn is_head(&self, priority: Priority, id: EntryId) -> bool {
        self.queue.first_key_value().is_some_and(|(p, entries)| {
            *p == priority && entries.front().is_some_and(|e| e.id == id)
        })
    }

    /// Takes `owner` out of entry `id`, dropping the entry once empty.
    fn leave(&mut self, priority: Priority, id: EntryId, owner: OwnerId) {
        let Some(entries) = self.queue.get_mut(&priority) else {
            return;
        };
        if let Some(pos) = entries.iter().position(|e| e.id == id) {
            let entry = &mut entries[pos];
            entry.waiters.retain(|w| *w != owner);
            if entry.waiters.is_empty() {
                entries.remove(pos);
                if self.open_shared.get(&priority) == Some(&id) {
                    self.open_shared.remove(&priority);
                }
            }
        }
        if entries.is_empty() {
            self.queue.remove(&priority);
        }
    }

    /// Wakes the head entry if it can be granted now (rule 4), closing it
    /// to late shared requests. Called after every change of holders or
    /// queue, so no grantable head is ever left sleeping.
    fn wake_head(&mut self) {
        let Some((&priority, entries)) = self.queue.first_key_value() else {
            return;
        };
        let Some(head) = entries.front() else {
            return;
        };
        if self.compatible(head.mode) {
            head.cond.notify_all();
            if self.open_shared.get(&priority) == Some(&head.id) {
                self.open_shared.remove(&priority);
            }
        }
    }
}

impl SharedLock {
    /// A free lock called `name` (the full name shown by `gnt-debug locks`).
    pub fn new(name: impl Into<String>) -> Self {
        SharedLock {
            name: name.into(),
            state: Mutex::new(State::default()),
        }
    }

    /// The lock's full name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Locks the internal state.
    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect(NOT_POISONED)
    }

    /// The error for a deleted lock.
    fn deleted_error(&self) -> LockError {
        LockError::Deleted {
            lock: self.name.clone(),
        }
    }

    /// Acquires the lock for `owner` in `mode`, waiting at most `timeout`,
    /// queued at `priority`.
    ///
    /// Returns [`Acquired::TimedOut`] if the timeout expired first, and
    /// [`LockError::Deleted`] if the lock is or gets deleted.
    pub fn acquire(
        &self,
        owner: OwnerId,
        mode: LockMode,
        timeout: Timeout,
        priority: Priority,
    ) -> Result<Acquired, LockError> {
        self.acquire_until(owner, mode, timeout.deadline_from(Instant::now()), priority)
    }

    /// [`SharedLock::acquire`] with an absolute deadline, so that a
    /// [`super::LockSet`] can spend one deadline across many locks.
    pub(crate) fn acquire_until(
        &self,
        owner: OwnerId,
        mode: LockMode,
        deadline: Deadline,
        priority: Priority,
    ) -> Result<Acquired, LockError> {
        let st = self.lock_state();
        let (_st, result) = self.acquire_locked(st, owner, mode, deadline, priority);
        result
    }

    /// The acquisition itself, on an already locked state (so that
    /// [`SharedLock::delete`] can continue with the same guard).
    fn acquire_locked<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        owner: OwnerId,
        mode: LockMode,
        deadline: Deadline,
        priority: Priority,
    ) -> (MutexGuard<'a, State>, Result<Acquired, LockError>) {
        if st.deleted {
            return (st, Err(self.deleted_error()));
        }
        if st.held_by(owner).is_some() || st.is_waiting(owner) {
            let err = LockError::AlreadyHeld {
                lock: self.name.clone(),
                owner,
            };
            return (st, Err(err));
        }
        // Rule 1: the fast path only when nobody waits.
        if st.queue.is_empty() && st.compatible(mode) {
            st.grant(owner, mode);
            return (st, Ok(Acquired::Yes));
        }
        if let Deadline::At(t) = deadline {
            if Instant::now() >= t {
                return (st, Ok(Acquired::TimedOut));
            }
        }
        let (id, cond) = st.enqueue(owner, mode, priority);
        loop {
            if st.deleted {
                st.leave(priority, id, owner);
                return (st, Err(self.deleted_error()));
            }
            if st.is_head(priority, id) && st.compatible(mode) {
                st.leave(priority, id, owner);
                st.grant(owner, mode);
                st.wake_head();
                return (st, Ok(Acquired::Yes));
            }
            st = match deadline {
                Deadline::Never => cond.wait(st).expect(NOT_POISONED),
                Deadline::At(t) => {
                    let now = Instant::now();
                    if now >= t {
                        st.leave(priority, id, owner);
                        st.wake_head();
                        return (st, Ok(Acquired::TimedOut));
                    }
                    cond.wait_timeout(st, t - now).expect(NOT_POISONED).0
                }
            };
        }
    }

    /// Releases the lock held by `owner` (in whichever mode) and wakes the
    /// next grantable waiters.
    pub fn release(&self, owner: OwnerId) -> Result<(), LockError> {
        let mut st = self.lock_state();
        if st.exclusive == Some(owner) {
            st.exclusive = None;
        } else if !st.shared.remove(&owner) {
            return Err(LockError::NotHeld {
                lock: self.name.clone(),
                owner,
            });
        }
        st.wake_head();
        Ok(())
    }

    /// Deletes the lock: `owner` must hold it exclusively already, or it is
    /// acquired exclusively first (waiting at most `timeout`). Every pending
    /// and later request then fails with [`LockError::Deleted`]; the owner
    /// no longer holds anything.
    pub fn delete(
        &self,
        owner: OwnerId,
        timeout: Timeout,
        priority: Priority,
    ) -> Result<Acquired, LockError> {
        let deadline = timeout.deadline_from(Instant::now());
        let mut st = self.lock_state();
        if st.deleted {
            return Err(self.deleted_error());
        }
        match st.held_by(owner) {
            Some(LockMode::Exclusive) => {}
            Some(LockMode::Shared) => {
                return Err(LockError::DeleteWhileShared {
                    lock: self.name.clone(),
                    owner,
                })
            }
            None => {
                let (guard, result) =
                    self.acquire_locked(st, owner, LockMode::Exclusive, deadline, priority);
                st = guard;
                if result? == Acquired::TimedOut {
                    return Ok(Acquired::TimedOut);
                }
            }
        }
        st.deleted = true;
        st.exclusive = None;
        st.open_shared.clear();
        for entry in st.queue.values().flatten() {
            entry.cond.notify_all();
        }
        Ok(Acquired::Yes)
    }

    /// How `owner` holds the lock, if at all.
    pub fn held_by(&self, owner: OwnerId) -> Option<LockMode> {
        self.lock_state().held_by(owner)
    }

    /// Whether the lock has been deleted.
    pub fn is_deleted(&self) -> bool {
        self.lock_state().deleted
    }

    /// A snapshot for `gnt-debug locks`.
    pub fn info(&self) -> LockInfo {
        let st = self.lock_state();
        let mode = if st.exclusive.is_some() {
            Some(LockMode::Exclusive)
        } else if !st.shared.is_empty() {
            Some(LockMode::Shared)
        } else {
            None
        };
        LockInfo {
            name: self.name.clone(),
            mode,
            deleted: st.deleted,
            owners: st
                .exclusive
                .iter()
                .chain(st.shared.iter())
                .copied()
                .collect(),
            pending: st
                .queue
                .values()
                .flatten()
                .map(|e| PendingInfo {
                    mode: e.mode,
                    owners: e.waiters.clone(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::thread;
    use std::time::Duration;

    const GENEROUS: Duration = Duration::from_secs(30);

    fn o(n: u64) -> OwnerId {
        OwnerId(n)
    }

    /// Polls `cond` until it holds, failing the test after a generous
    /// deadline (never asserts on timing).
    fn wait_for(what: &str, cond: impl Fn() -> bool) {
        let end = Instant::now() + GENEROUS;
        while !cond() {
            assert!(Instant::now() < end, "timed out waiting for: {what}");
            thread::yield_now();
        }
    }

    /// Number of owners waiting in the lock's queue.
    fn waiting(lock: &SharedLock) -> usize {
        lock.info().pending.iter().map(|p| p.owners.len()).sum()
    }

    fn acquire(lock: &SharedLock, owner: u64, mode: LockMode) -> Acquired {
        lock.acquire(o(owner), mode, Timeout::Blocking, Priority::NORMAL)
            .expect("acquire")
    }

    #[test]
    fn shared_holders_coexist() {
        let lock = SharedLock::new("l");
        assert_eq!(acquire(&lock, 1, LockMode::Shared), Acquired::Yes);
        assert_eq!(acquire(&lock, 2, LockMode::Shared), Acquired::Yes);
        let info = lock.info();
        assert_eq!(info.mode, Some(LockMode::Shared));
        assert_eq!(info.owners, vec![o(1), o(2)]);
        lock.release(o(1)).expect("release");
        lock.release(o(2)).expect("release");
        assert_eq!(lock.info().mode, None);
    }

    #[test]
    fn shared_shared_concurrent_threads() {
        let lock = Arc::new(SharedLock::new("l"));
        let inside = Arc::new(AtomicUsize::new(0));
        let max_inside = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let (lock, inside, max_inside) = (lock.clone(), inside.clone(), max_inside.clone());
                thread::spawn(move || {
                    assert_eq!(acquire(&lock, i, LockMode::Shared), Acquired::Yes);
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    max_inside.fetch_max(now, Ordering::SeqCst);
                    // Stay inside until all four are in: proves they overlap.
                    wait_for("all sharers inside", || inside.load(Ordering::SeqCst) == 4);
                    lock.release(o(i)).expect("release");
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread");
        }
        assert_eq!(max_inside.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn exclusive_excludes_everyone() {
        let lock = SharedLock::new("l");
        assert_eq!(acquire(&lock, 1, LockMode::Exclusive), Acquired::Yes);
        let zero = Timeout::After(Duration::ZERO);
        for mode in [LockMode::Shared, LockMode::Exclusive] {
            assert_eq!(
                lock.acquire(o(2), mode, zero, Priority::NORMAL),
                Ok(Acquired::TimedOut)
            );
        }
        lock.release(o(1)).expect("release");
        assert_eq!(
            lock.acquire(o(2), LockMode::Shared, zero, Priority::NORMAL),
            Ok(Acquired::Yes)
        );
        assert_eq!(
            lock.acquire(o(3), LockMode::Exclusive, zero, Priority::NORMAL),
            Ok(Acquired::TimedOut)
        );
    }

    #[test]
    fn not_recursive_and_release_checks_owner() {
        let lock = SharedLock::new("l");
        assert_eq!(acquire(&lock, 1, LockMode::Shared), Acquired::Yes);
        assert!(matches!(
            lock.acquire(
                o(1),
                LockMode::Exclusive,
                Timeout::Blocking,
                Priority::NORMAL
            ),
            Err(LockError::AlreadyHeld { .. })
        ));
        assert!(matches!(lock.release(o(2)), Err(LockError::NotHeld { .. })));
    }

    /// Spawns a thread that acquires `lock` for `owner` and then records
    /// `owner` in `order`, waiting until it is visible in the queue.
    fn queue_waiter(
        lock: &Arc<SharedLock>,
        owner: u64,
        mode: LockMode,
        priority: Priority,
        order: &Arc<Mutex<Vec<u64>>>,
    ) -> thread::JoinHandle<()> {
        let before = waiting(lock);
        let (l, ord) = (lock.clone(), order.clone());
        let h = thread::spawn(move || {
            let got = l
                .acquire(o(owner), mode, Timeout::Blocking, priority)
                .expect("acquire");
            assert_eq!(got, Acquired::Yes);
            ord.lock().expect("order").push(owner);
        });
        // A waiter that got the lock at once (the test lost a race) is also
        // fine to continue with; the test's assertions then catch the order.
        wait_for("waiter queued", || {
            waiting(lock) == before + 1 || lock.held_by(o(owner)).is_some()
        });
        h
    }

    /// Releases owners one by one as they show up in `order`.
    fn drain(lock: &SharedLock, order: &Mutex<Vec<u64>>, count: usize) {
        for i in 0..count {
            wait_for("next grant", || order.lock().expect("order").len() > i);
            let owner = order.lock().expect("order")[i];
            lock.release(o(owner)).expect("release");
        }
    }

    #[test]
    fn exclusive_waiters_are_fifo() {
        let lock = Arc::new(SharedLock::new("l"));
        let order = Arc::new(Mutex::new(Vec::new()));
        assert_eq!(acquire(&lock, 100, LockMode::Exclusive), Acquired::Yes);
        let hs: Vec<_> = (1..=5)
            .map(|i| queue_waiter(&lock, i, LockMode::Exclusive, Priority::NORMAL, &order))
            .collect();
        lock.release(o(100)).expect("release");
        drain(&lock, &order, 5);
        hs.into_iter().for_each(|h| h.join().expect("thread"));
        assert_eq!(*order.lock().expect("order"), vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn shared_requests_behind_exclusive_are_batched() {
        let lock = Arc::new(SharedLock::new("l"));
        let order = Arc::new(Mutex::new(Vec::new()));
        assert_eq!(acquire(&lock, 100, LockMode::Exclusive), Acquired::Yes);
        let mut hs = vec![queue_waiter(
            &lock,
            1,
            LockMode::Exclusive,
            Priority::NORMAL,
            &order,
        )];
        // 2 opens a shared entry; 3 is an exclusive behind it; 4 and 5 are
        // shared and join 2's open entry, skipping ahead of 3.
        hs.push(queue_waiter(
            &lock,
            2,
            LockMode::Shared,
            Priority::NORMAL,
            &order,
        ));
        hs.push(queue_waiter(
            &lock,
            3,
            LockMode::Exclusive,
            Priority::NORMAL,
            &order,
        ));
        hs.push(queue_waiter(
            &lock,
            4,
            LockMode::Shared,
            Priority::NORMAL,
            &order,
        ));
        hs.push(queue_waiter(
            &lock,
            5,
            LockMode::Shared,
            Priority::NORMAL,
            &order,
        ));
        let pending = lock.info().pending;
        assert_eq!(pending.len(), 3, "{pending:?}");
        assert_eq!(pending[1].owners, vec![o(2), o(4), o(5)]);

        lock.release(o(100)).expect("release");
        wait_for("1 holds", || lock.held_by(o(1)).is_some());
        lock.release(o(1)).expect("release");
        // All three readers are granted together, before writer 3.
        wait_for("readers hold", || {
            lock.info().owners == vec![o(2), o(4), o(5)]
        });
        assert_eq!(lock.held_by(o(3)), None);
        for r in [2, 4, 5] {
            lock.release(o(r)).expect("release");
        }
        wait_for("3 holds", || lock.held_by(o(3)).is_some());
        lock.release(o(3)).expect("release");
        hs.into_iter().for_each(|h| h.join().expect("thread"));
    }

    #[test]
    fn shared_request_after_batch_woke_queues_behind_writer() {
        let lock = Arc::new(SharedLock::new("l"));
        let order = Arc::new(Mutex::new(Vec::new()));
        assert_eq!(acquire(&lock, 100, LockMode::Shared), Acquired::Yes);
        // Writer 1 waits for the reader; a new reader must not overtake it.
        let h1 = queue_waiter(&lock, 1, LockMode::Exclusive, Priority::NORMAL, &order);
        let h2 = queue_waiter(&lock, 2, LockMode::Shared, Priority::NORMAL, &order);
        assert_eq!(lock.held_by(o(2)), None);
        lock.release(o(100)).expect("release");
        drain(&lock, &order, 2);
        h1.join().expect("thread");
        h2.join().expect("thread");
        assert_eq!(*order.lock().expect("order"), vec![1, 2]);
    }

    #[test]
    fn higher_priority_is_served_first_fifo_within() {
        let lock = Arc::new(SharedLock::new("l"));
        let order = Arc::new(Mutex::new(Vec::new()));
        assert_eq!(acquire(&lock, 100, LockMode::Exclusive), Acquired::Yes);
        let x = LockMode::Exclusive;
        let hs = vec![
            queue_waiter(&lock, 1, x, Priority::LOW, &order),
            queue_waiter(&lock, 2, x, Priority::NORMAL, &order),
            queue_waiter(&lock, 3, x, Priority::HIGH, &order),
            queue_waiter(&lock, 4, x, Priority::NORMAL, &order),
            queue_waiter(&lock, 5, x, Priority::HIGH, &order),
        ];
        lock.release(o(100)).expect("release");
        drain(&lock, &order, 5);
        hs.into_iter().for_each(|h| h.join().expect("thread"));
        assert_eq!(*order.lock().expect("order"), vec![3, 5, 2, 4, 1]);
    }

    #[test]
    fn timeout_returns_and_leaves_queue() {
        let lock = SharedLock::new("l");
        assert_eq!(acquire(&lock, 1, LockMode::Exclusive), Acquired::Yes);
        let got = lock.acquire(
            o(2),
            LockMode::Shared,
            Timeout::After(Duration::from_millis(20)),
            Priority::NORMAL,
        );
        assert_eq!(got, Ok(Acquired::TimedOut));
        assert!(lock.info().pending.is_empty());
        lock.release(o(1)).expect("release");
        // The timed-out owner left no trace and can acquire now.
        assert_eq!(acquire(&lock, 2, LockMode::Exclusive), Acquired::Yes);
    }

    #[test]
    fn reader_behind_timed_out_writer_is_woken() {
        let lock = Arc::new(SharedLock::new("l"));
        assert_eq!(acquire(&lock, 100, LockMode::Shared), Acquired::Yes);
        let writer = {
            let l = lock.clone();
            thread::spawn(move || {
                l.acquire(
                    o(1),
                    LockMode::Exclusive,
                    Timeout::After(Duration::from_millis(50)),
                    Priority::NORMAL,
                )
            })
        };
        wait_for("writer queued", || waiting(&lock) == 1);
        let order = Arc::new(Mutex::new(Vec::new()));
        let reader = queue_waiter(&lock, 2, LockMode::Shared, Priority::NORMAL, &order);
        assert_eq!(writer.join().expect("thread"), Ok(Acquired::TimedOut));
        // Reader 100 still holds the lock, yet reader 2 gets in.
        reader.join().expect("thread");
        assert_eq!(lock.info().owners, vec![o(2), o(100)]);
    }

    #[test]
    fn delete_wakes_waiters_with_error() {
        let lock = Arc::new(SharedLock::new("l"));
        assert_eq!(acquire(&lock, 100, LockMode::Exclusive), Acquired::Yes);
        let hs: Vec<_> = [
            (1, LockMode::Shared),
            (2, LockMode::Exclusive),
            (3, LockMode::Shared),
        ]
        .into_iter()
        .map(|(i, mode)| {
            let before = waiting(&lock);
            let l = lock.clone();
            let h =
                thread::spawn(move || l.acquire(o(i), mode, Timeout::Blocking, Priority::NORMAL));
            wait_for("queued", || waiting(&lock) == before + 1);
            h
        })
        .collect();
        assert_eq!(
            lock.delete(o(100), Timeout::Blocking, Priority::NORMAL),
            Ok(Acquired::Yes)
        );
        for h in hs {
            assert!(matches!(
                h.join().expect("thread"),
                Err(LockError::Deleted { .. })
            ));
        }
        assert!(matches!(
            lock.acquire(o(4), LockMode::Shared, Timeout::Blocking, Priority::NORMAL),
            Err(LockError::Deleted { .. })
        ));
        let info = lock.info();
        assert!(info.deleted && info.owners.is_empty() && info.pending.is_empty());
    }

    #[test]
    fn delete_needs_exclusive_and_honours_timeout() {
        let lock = SharedLock::new("l");
        assert_eq!(acquire(&lock, 1, LockMode::Shared), Acquired::Yes);
        assert!(matches!(
            lock.delete(o(1), Timeout::Blocking, Priority::NORMAL),
            Err(LockError::DeleteWhileShared { .. })
        ));
        let zero = Timeout::After(Duration::ZERO);
        assert_eq!(
            lock.delete(o(2), zero, Priority::NORMAL),
            Ok(Acquired::TimedOut)
        );
        assert!(!lock.is_deleted());
        lock.release(o(1)).expect("release");
        assert_eq!(lock.delete(o(2), zero, Priority::NORMAL), Ok(Acquired::Yes));
        assert!(lock.is_deleted());
    }

    #[test]
    fn info_lists_pending_in_service_order() {
        let lock = Arc::new(SharedLock::new("instance/a"));
        let order = Arc::new(Mutex::new(Vec::new()));
        assert_eq!(acquire(&lock, 9, LockMode::Exclusive), Acquired::Yes);
        let hs = vec![
            queue_waiter(&lock, 1, LockMode::Shared, Priority::NORMAL, &order),
            queue_waiter(&lock, 2, LockMode::Exclusive, Priority::HIGH, &order),
        ];
        let info = lock.info();
        assert_eq!(info.name, "instance/a");
        assert_eq!(info.mode, Some(LockMode::Exclusive));
        assert_eq!(info.owners, vec![o(9)]);
        assert_eq!(
            info.pending,
            vec![
                PendingInfo {
                    mode: LockMode::Exclusive,
                    owners: vec![o(2)]
                },
                PendingInfo {
                    mode: LockMode::Shared,
                    owners: vec![o(1)]
                },
            ]
        );
        lock.release(o(9)).expect("release");
        drain(&lock, &order, 2);
        hs.into_iter().for_each(|h| h.join().expect("thread"));
    }
}
