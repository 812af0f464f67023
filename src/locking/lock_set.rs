//! All the locks of one level (Ganeti's `LockSet`): acquiring several names
//! at once, acquiring the whole set, adding and removing names.
//!
//! Rules, after Ganeti's LockSet:
//!
//! * Names are always acquired in sorted order, so two owners can never
//!   hold one lock each of a set while waiting for the other's.
//! * An acquisition is all-or-nothing: one deadline covers every lock of
//!   the request, and on a timeout or an error everything this request took
//!   is released again before returning.
//! * An owner acquires within a set once, with all the names it needs
//!   (asking again would break the sorted order), and releases some or all.
//! * Acquiring [`Names::All`] first takes the *set lock*, an extra
//!   [`SharedLock`] named `<level>/[lockset]`, in the requested mode, then
//!   every current member. Adding names needs the set lock exclusively, so
//!   while anyone holds the whole set no name can appear behind their back:
//!   "all" includes future additions. Removing a name needs that name held
//!   exclusively, which holding the whole set in any mode already excludes
//!   for everyone else.

use super::{
    Acquired, LockError, LockInfo, LockMode, LockName, OwnerId, Priority, SharedLock, Timeout,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// Why the set's bookkeeping mutex cannot be poisoned: nothing that can
/// panic runs while it is held, and no lock is waited for under it.
const NOT_POISONED: &str = "lock set mutex poisoned: a panic inside set bookkeeping is a bug";

/// Display name of the set lock within a level (Ganeti's `LOCKSET_NAME`).
pub const LOCKSET_NAME: &str = "[lockset]";

/// Which names of a set a request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Names {
    /// The whole set: for acquire, every current and future member (the
    /// set lock); for release, everything the owner holds in the set.
    All,
    /// Just these names (any order, duplicates ignored).
    List(Vec<LockName>),
}

impl Names {
    /// A [`Names::List`] of the given names.
    pub fn list<I, N>(names: I) -> Names
    where
        I: IntoIterator<Item = N>,
        N: Into<LockName>,
    {
        Names::List(names.into_iter().map(Into::into).collect())
    }
}

/// Whether locks added to a set start free or held by the adding owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewLocks {
    /// Nobody holds the new locks.
    Free,
    /// The adding owner holds them in this mode (Ganeti's `acquired=1`),
    /// e.g. an instance lock created by the job creating the instance.
    HeldAs(LockMode),
}

/// A named set of [`SharedLock`]s forming one lock level.
#[derive(Debug)]
pub struct LockSet {
    /// Set (level) name, e.g. `instance`.
    name: String,
    /// Held by owners of [`Names::All`]; exclusively while adding names.
    set_lock: SharedLock,
    /// Members and who holds what.
    inner: Mutex<Inner>,
}

/// Bookkeeping of a [`LockSet`].
#[derive(Debug, Default)]
struct Inner {
    /// Current members.
    locks: BTreeMap<LockName, Arc<SharedLock>>,
    /// What each owner holds in this set.
    held: BTreeMap<OwnerId, Holding>,
}

/// What one owner holds in a set.
#[derive(Debug, Default)]
struct Holding {
    /// The set lock, when the owner acquired [`Names::All`].
    set_lock: Option<LockMode>,
    /// Member locks and their modes.
    names: BTreeMap<LockName, LockMode>,
}

impl LockSet {
    /// A set called `name` with the given initial members, all free.
    pub fn new<I, N>(name: impl Into<String>, members: I) -> Self
    where
        I: IntoIterator<Item = N>,
        N: Into<LockName>,
    {
        let name = name.into();
        let locks = members
            .into_iter()
            .map(|m| {
                let m = m.into();
                let lock = Arc::new(SharedLock::new(format!("{name}/{m}")));
                (m, lock)
            })
            .collect();
        LockSet {
            set_lock: SharedLock::new(format!("{name}/{LOCKSET_NAME}")),
            name,
            inner: Mutex::new(Inner {
                locks,
                held: BTreeMap::new(),
            }),
        }
    }

    /// The set's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Locks the bookkeeping.
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect(NOT_POISONED)
    }

    /// The current members, sorted.
    pub fn names(&self) -> Vec<LockName> {
        self.inner().locks.keys().cloned().collect()
    }

    /// The member names `owner` holds, sorted.
    pub fn owned(&self, owner: OwnerId) -> Vec<LockName> {
        self.inner()
            .held
            .get(&owner)
            .map(|h| h.names.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The mode in which `owner` holds the whole set, if it does.
    pub fn owns_all(&self, owner: OwnerId) -> Option<LockMode> {
        self.inner().held.get(&owner).and_then(|h| h.set_lock)
    }

    /// Whether `owner` holds anything in this set (set lock or member).
    pub fn owns_any(&self, owner: OwnerId) -> bool {
        self.inner().held.contains_key(&owner)
    }

    /// The error for a name that is not a member.
    fn not_found(&self, name: &LockName) -> LockError {
        LockError::NotFound {
            set: self.name.clone(),
            name: name.clone(),
        }
    }

    /// Acquires `names` for `owner` in `mode`, all within one `timeout`.
    ///
    /// All-or-nothing: on [`Acquired::TimedOut`] or an error, `owner` holds
    /// nothing from this request. A listed name that does not exist, or is
    /// removed while waiting, is [`LockError::NotFound`]; with
    /// [`Names::All`], members removed while waiting are simply skipped.
    pub fn acquire(
        &self,
        owner: OwnerId,
        names: &Names,
        mode: LockMode,
        timeout: Timeout,
        priority: Priority,
    ) -> Result<Acquired, LockError> {
        let deadline = timeout.deadline_from(Instant::now());
        if self.owns_any(owner) {
            return Err(LockError::SetAlreadyHeld {
                set: self.name.clone(),
                owner,
            });
        }
        let mut holding = Holding::default();
        let targets: Vec<(LockName, Arc<SharedLock>)> = match names {
            Names::All => {
                match self
                    .set_lock
                    .acquire_until(owner, mode, deadline, priority)?
                {
                    Acquired::Yes => holding.set_lock = Some(mode),
                    Acquired::TimedOut => return Ok(Acquired::TimedOut),
                }
                // Nobody can add while we hold the set lock, so this
                // snapshot is the whole set (removals are handled below).
                let inner = self.inner();
                inner
                    .locks
                    .iter()
                    .map(|(n, l)| (n.clone(), Arc::clone(l)))
                    .collect()
            }
            Names::List(list) => {
                let mut sorted = list.clone();
                sorted.sort();
                sorted.dedup();
                let inner = self.inner();
                let mut targets = Vec::with_capacity(sorted.len());
                for n in sorted {
                    let lock = inner.locks.get(&n).ok_or_else(|| self.not_found(&n))?;
                    targets.push((n, Arc::clone(lock)));
                }
                targets
            }
        };
        for (name, lock) in targets {
            let outcome = match lock.acquire_until(owner, mode, deadline, priority) {
                Ok(outcome) => Ok(outcome),
                Err(LockError::Deleted { .. }) if *names == Names::All => continue,
                Err(LockError::Deleted { .. }) => Err(self.not_found(&name)),
                Err(other) => Err(other),
            };
            match outcome {
                Ok(Acquired::Yes) => {
                    holding.names.insert(name, mode);
                }
                Ok(Acquired::TimedOut) => {
                    self.undo(owner, holding);
                    return Ok(Acquired::TimedOut);
                }
                Err(e) => {
                    self.undo(owner, holding);
                    return Err(e);
                }
            }
        }
        self.inner().held.insert(owner, holding);
        Ok(Acquired::Yes)
    }

    /// Releases what a failed acquisition took so far.
    fn undo(&self, owner: OwnerId, holding: Holding) {
        let inner = self.inner();
        let locks: Vec<Arc<SharedLock>> = holding
            .names
            .keys()
            .filter_map(|n| inner.locks.get(n).map(Arc::clone))
            .collect();
        drop(inner);
        for lock in locks.iter().rev() {
            // Cannot fail: this request acquired it and nobody else can
            // release or delete a lock we hold.
            let _ = lock.release(owner);
        }
        if holding.set_lock.is_some() {
            let _ = self.set_lock.release(owner);
        }
    }

    /// Releases `names` held by `owner`, or everything with [`Names::All`].
    ///
    /// Releasing only some names also gives up the set lock: the owner no
    /// longer holds the whole set. Every listed name must be held; nothing
    /// is released otherwise.
    pub fn release(&self, owner: OwnerId, names: &Names) -> Result<(), LockError> {
        let mut inner = self.inner();
        let not_held = |lock: String| LockError::NotHeld { lock, owner };
        let Some(holding) = inner.held.get_mut(&owner) else {
            return match names {
                Names::All => Ok(()),
                Names::List(list) => match list.first() {
                    Some(n) => Err(not_held(format!("{}/{n}", self.name))),
                    None => Ok(()),
                },
            };
        };
        let to_release: Vec<LockName> = match names {
            Names::All => holding.names.keys().cloned().collect(),
            Names::List(list) => {
                if let Some(n) = list.iter().find(|n| !holding.names.contains_key(*n)) {
                    return Err(not_held(format!("{}/{n}", self.name)));
                }
                let mut list = list.clone();
                list.sort();
                list.dedup();
                list
            }
        };
        for n in &to_release {
            holding.names.remove(n);
        }
        let release_set = holding.set_lock.take().is_some();
        if holding.names.is_empty() {
            inner.held.remove(&owner);
        }
        let locks: Vec<Arc<SharedLock>> = to_release
            .iter()
            .filter_map(|n| inner.locks.get(n).map(Arc::clone))
            .collect();
        drop(inner);
        for lock in locks {
            lock.release(owner)?;
        }
        if release_set {
            self.set_lock.release(owner)?;
        }
        Ok(())
    }

    /// Adds `names` to the set (Ganeti's `LockSet.add`).
    ///
    /// Takes the set lock exclusively for the duration (waiting at most
    /// `timeout`), unless `owner` already holds the whole set exclusively;
    /// in that case the new locks are held exclusively by `owner` whatever
    /// `new` says, so that "all" stays true. Fails if any name exists.
    pub fn add(
        &self,
        owner: OwnerId,
        names: &[LockName],
        new: NewLocks,
        timeout: Timeout,
        priority: Priority,
    ) -> Result<Acquired, LockError> {
        self.check_absent(names)?;
        let (took_set_lock, new) = match self.owns_all(owner) {
            Some(LockMode::Exclusive) => (false, NewLocks::HeldAs(LockMode::Exclusive)),
            Some(LockMode::Shared) => {
                return Err(LockError::AddWhileSetShared {
                    set: self.name.clone(),
                    owner,
                })
            }
            None => match self
                .set_lock
                .acquire(owner, LockMode::Exclusive, timeout, priority)?
            {
                Acquired::Yes => (true, new),
                Acquired::TimedOut => return Ok(Acquired::TimedOut),
            },
        };
        let result = self.insert_members(owner, names, new);
        if took_set_lock {
            self.set_lock.release(owner)?;
        }
        result.map(|()| Acquired::Yes)
    }

    /// Fails with [`LockError::Exists`] if any of `names` is a member.
    fn check_absent(&self, names: &[LockName]) -> Result<(), LockError> {
        let inner = self.inner();
        match names.iter().find(|n| inner.locks.contains_key(*n)) {
            Some(n) => Err(LockError::Exists {
                set: self.name.clone(),
                name: n.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Creates the new member locks (the caller holds the set lock).
    fn insert_members(
        &self,
        owner: OwnerId,
        names: &[LockName],
        new: NewLocks,
    ) -> Result<(), LockError> {
        self.check_absent(names)?;
        let mut inner = self.inner();
        for n in names {
            let lock = Arc::new(SharedLock::new(format!("{}/{n}", self.name)));
            if let NewLocks::HeldAs(mode) = new {
                // A fresh lock that nobody else can see yet: granted at once.
                let got = lock.acquire(
                    owner,
                    mode,
                    Timeout::After(std::time::Duration::ZERO),
                    Priority::NORMAL,
                )?;
                debug_assert_eq!(got, Acquired::Yes, "a fresh lock is free");
                inner
                    .held
                    .entry(owner)
                    .or_default()
                    .names
                    .insert(n.clone(), mode);
            }
            inner.locks.insert(n.clone(), lock);
        }
        Ok(())
    }

    /// Removes `names` from the set (Ganeti's `LockSet.remove`). `owner`
    /// must hold each of them exclusively; pending requests for them fail
    /// (see [`LockSet::acquire`]). Nothing is removed if a check fails.
    pub fn remove(&self, owner: OwnerId, names: &[LockName]) -> Result<(), LockError> {
        let mut inner = self.inner();
        for n in names {
            let lock = inner.locks.get(n).ok_or_else(|| self.not_found(n))?;
            match inner.held.get(&owner).and_then(|h| h.names.get(n)) {
                Some(LockMode::Exclusive) => {}
                Some(LockMode::Shared) => {
                    return Err(LockError::DeleteWhileShared {
                        lock: lock.name().to_owned(),
                        owner,
                    })
                }
                None => {
                    return Err(LockError::NotHeld {
                        lock: lock.name().to_owned(),
                        owner,
                    })
                }
            }
        }
        for n in names {
            if let Some(lock) = inner.locks.remove(n) {
                // We hold it exclusively, so this neither waits nor fails.
                let got = lock.delete(owner, Timeout::Blocking, Priority::NORMAL)?;
                debug_assert_eq!(got, Acquired::Yes, "held exclusively, so no wait");
            }
            if let Some(h) = inner.held.get_mut(&owner) {
                h.names.remove(n);
                if h.names.is_empty() && h.set_lock.is_none() {
                    inner.held.remove(&owner);
                }
            }
        }
        Ok(())
    }

    /// Snapshots of the set lock and every member, for `gnt-debug locks`.
    pub fn info(&self) -> Vec<LockInfo> {
        let locks: Vec<Arc<SharedLock>> = self.inner().locks.values().map(Arc::clone).collect();
        std::iter::once(self.set_lock.info())
            .chain(locks.iter().map(|l| l.info()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;
    use std::time::Duration;

    fn o(n: u64) -> OwnerId {
        OwnerId(n)
    }

    fn set() -> LockSet {
        LockSet::new("instance", ["a", "b", "c", "d"])
    }

    fn acquire(
        s: &LockSet,
        owner: u64,
        names: &Names,
        mode: LockMode,
        timeout: Timeout,
    ) -> Result<Acquired, LockError> {
        s.acquire(o(owner), names, mode, timeout, Priority::NORMAL)
    }

    #[test]
    fn acquires_listed_names_sorted_and_deduplicated() {
        let s = set();
        let names = Names::list(["c", "a", "c"]);
        assert_eq!(
            acquire(&s, 1, &names, LockMode::Exclusive, Timeout::Blocking),
            Ok(Acquired::Yes)
        );
        assert_eq!(
            s.owned(o(1)),
            vec![LockName::from("a"), LockName::from("c")]
        );
        assert_eq!(s.owns_all(o(1)), None);
        assert!(matches!(
            acquire(
                &s,
                1,
                &Names::list(["d"]),
                LockMode::Exclusive,
                Timeout::Blocking
            ),
            Err(LockError::SetAlreadyHeld { .. })
        ));
        s.release(o(1), &Names::All).expect("release");
        assert!(!s.owns_any(o(1)));
    }

    #[test]
    fn multi_acquire_is_all_or_nothing_under_timeout() {
        let s = set();
        assert_eq!(
            acquire(
                &s,
                1,
                &Names::list(["c"]),
                LockMode::Exclusive,
                Timeout::Blocking
            ),
            Ok(Acquired::Yes)
        );
        let got = acquire(
            &s,
            2,
            &Names::list(["a", "b", "c", "d"]),
            LockMode::Shared,
            Timeout::After(Duration::from_millis(30)),
        );
        assert_eq!(got, Ok(Acquired::TimedOut));
        assert!(s.owned(o(2)).is_empty());
        // a and b were released again: another owner takes them at once.
        let zero = Timeout::After(Duration::ZERO);
        assert_eq!(
            acquire(&s, 3, &Names::list(["a", "b"]), LockMode::Exclusive, zero),
            Ok(Acquired::Yes)
        );
        let info = s.info();
        assert!(
            info.iter()
                .all(|i| !i.owners.contains(&o(2)) && i.pending.is_empty()),
            "{info:?}"
        );
    }

    #[test]
    fn unknown_name_fails_and_holds_nothing() {
        let s = set();
        let got = acquire(
            &s,
            1,
            &Names::list(["a", "zz"]),
            LockMode::Exclusive,
            Timeout::Blocking,
        );
        assert!(matches!(got, Err(LockError::NotFound { .. })));
        assert!(!s.owns_any(o(1)));
    }

    #[test]
    fn whole_set_blocks_additions_until_released() {
        let s = Arc::new(set());
        assert_eq!(
            acquire(&s, 1, &Names::All, LockMode::Shared, Timeout::Blocking),
            Ok(Acquired::Yes)
        );
        assert_eq!(s.owned(o(1)).len(), 4);
        assert_eq!(s.owns_all(o(1)), Some(LockMode::Shared));
        let e = [LockName::from("e")];
        let zero = Timeout::After(Duration::ZERO);
        assert_eq!(
            s.add(o(2), &e, NewLocks::Free, zero, Priority::NORMAL),
            Ok(Acquired::TimedOut)
        );
        assert!(matches!(
            s.add(o(1), &e, NewLocks::Free, zero, Priority::NORMAL),
            Err(LockError::AddWhileSetShared { .. })
        ));
        let adder = {
            let s = s.clone();
            thread::spawn(move || {
                s.add(
                    o(2),
                    &[LockName::from("e")],
                    NewLocks::Free,
                    Timeout::Blocking,
                    Priority::NORMAL,
                )
            })
        };
        s.release(o(1), &Names::All).expect("release");
        assert_eq!(adder.join().expect("thread"), Ok(Acquired::Yes));
        assert_eq!(s.names().len(), 5);
    }

    #[test]
    fn exclusive_whole_set_owner_holds_its_additions() {
        let s = set();
        assert_eq!(
            acquire(&s, 1, &Names::All, LockMode::Exclusive, Timeout::Blocking),
            Ok(Acquired::Yes)
        );
        let e = [LockName::from("e")];
        assert_eq!(
            s.add(
                o(1),
                &e,
                NewLocks::Free,
                Timeout::Blocking,
                Priority::NORMAL
            ),
            Ok(Acquired::Yes)
        );
        assert!(s.owned(o(1)).contains(&LockName::from("e")));
        assert!(matches!(
            s.add(
                o(1),
                &e,
                NewLocks::Free,
                Timeout::Blocking,
                Priority::NORMAL
            ),
            Err(LockError::Exists { .. })
        ));
        s.release(o(1), &Names::All).expect("release");
        assert!(s.info().iter().all(|i| i.owners.is_empty()));
    }

    #[test]
    fn remove_needs_exclusive_and_fails_waiters() {
        let s = Arc::new(set());
        assert_eq!(
            acquire(
                &s,
                1,
                &Names::list(["b"]),
                LockMode::Exclusive,
                Timeout::Blocking
            ),
            Ok(Acquired::Yes)
        );
        let waiter = {
            let s = s.clone();
            thread::spawn(move || {
                acquire(
                    &s,
                    2,
                    &Names::list(["a", "b"]),
                    LockMode::Shared,
                    Timeout::Blocking,
                )
            })
        };
        let end = Instant::now() + Duration::from_secs(30);
        while !s.info().iter().any(|i| !i.pending.is_empty()) {
            assert!(Instant::now() < end, "waiter never queued");
            thread::yield_now();
        }
        assert!(matches!(
            s.remove(o(3), &[LockName::from("b")]),
            Err(LockError::NotHeld { .. })
        ));
        s.remove(o(1), &[LockName::from("b")]).expect("remove");
        assert!(matches!(
            waiter.join().expect("thread"),
            Err(LockError::NotFound { .. })
        ));
        assert!(!s.owns_any(o(2)) && !s.owns_any(o(1)));
        assert_eq!(s.names().len(), 3);
        // The waiter's partial hold on "a" was undone.
        let zero = Timeout::After(Duration::ZERO);
        assert_eq!(
            acquire(&s, 4, &Names::list(["a"]), LockMode::Exclusive, zero),
            Ok(Acquired::Yes)
        );
    }

    #[test]
    fn partial_release_gives_up_set_lock() {
        let s = set();
        assert_eq!(
            acquire(&s, 1, &Names::All, LockMode::Shared, Timeout::Blocking),
            Ok(Acquired::Yes)
        );
        assert!(matches!(
            s.release(o(1), &Names::list(["zz"])),
            Err(LockError::NotHeld { .. })
        ));
        s.release(o(1), &Names::list(["a", "a"])).expect("release");
        assert_eq!(s.owns_all(o(1)), None);
        assert_eq!(s.owned(o(1)).len(), 3);
        let zero = Timeout::After(Duration::ZERO);
        assert_eq!(
            s.add(
                o(2),
                &[LockName::from("e")],
                NewLocks::Free,
                zero,
                Priority::NORMAL
            ),
            Ok(Acquired::Yes)
        );
    }
}
