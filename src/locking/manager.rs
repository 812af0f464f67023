//! The lock manager (Ganeti's `GanetiLockManager`): one [`LockSet`] per
//! [`Level`] and the two rules that keep jobs from deadlocking:
//!
//! * **Level order.** An owner acquires levels in increasing [`Level`]
//!   order, each level at most once (all names of a level together). Asking
//!   for a level while holding that level or a later one is a bug in the
//!   logical unit: it returns [`LockError::OrderViolation`] and trips a
//!   debug assertion.
//! * **BGL first.** The cluster level has one lock, the Big Ganeti Lock
//!   ([`BGL_NAME`]). Every owner holds it, shared or exclusive, before any
//!   other level, and releases it last. Exclusive BGL is for the few
//!   operations that must stop everything else.
//!
//! masterd owns the one `LockManager`; job workers call it from their
//! threads; `gnt-debug locks` reads [`LockManager::info`].

use super::lock_set::NewLocks;
use super::{
    Acquired, LockError, LockInfo, LockMode, LockName, LockSet, Names, OwnerId, Priority, Timeout,
};
use std::fmt;

/// The single lock at [`Level::Cluster`]: the Big Ganeti Lock.
pub const BGL_NAME: &str = "BGL";

/// Lock levels, in the order they must be acquired. This is Ganeti 3.0's
/// `locking.LEVELS` order (note: instances come before node groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// The BGL, needed by everyone.
    Cluster,
    /// One lock per instance.
    Instance,
    /// One lock per node group.
    NodeGroup,
    /// One lock per node.
    Node,
    /// One lock per node for its resources (disks, memory), taken by
    /// operations with a heavy impact on a node's storage.
    NodeRes,
    /// One lock per network.
    Network,
}

impl Level {
    /// Every level, in acquisition order.
    pub const ALL: [Level; 6] = [
        Level::Cluster,
        Level::Instance,
        Level::NodeGroup,
        Level::Node,
        Level::NodeRes,
        Level::Network,
    ];

    /// Ganeti's level name (`LEVEL_NAMES`), used as lock name prefix.
    pub fn name(self) -> &'static str {
        match self {
            Level::Cluster => "cluster",
            Level::Instance => "instance",
            Level::NodeGroup => "nodegroup",
            Level::Node => "node",
            Level::NodeRes => "node-res",
            Level::Network => "network",
        }
    }

    /// Position in [`Level::ALL`].
    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The lock names a manager starts with, read from the cluster config.
#[derive(Debug, Clone, Default)]
pub struct InitialLocks {
    /// Instance names.
    pub instances: Vec<LockName>,
    /// Node group UUIDs or names (whatever the config layer keys them by).
    pub node_groups: Vec<LockName>,
    /// Node names; used for both [`Level::Node`] and [`Level::NodeRes`].
    pub nodes: Vec<LockName>,
    /// Network names.
    pub networks: Vec<LockName>,
}

/// All lock levels of a cluster, acquired in order.
#[derive(Debug)]
pub struct LockManager {
    /// One set per level, indexed by [`Level::index`].
    sets: [LockSet; 6],
}

impl LockManager {
    /// A manager with the BGL and the given names, all free.
    pub fn new(initial: InitialLocks) -> Self {
        let InitialLocks {
            instances,
            node_groups,
            nodes,
            networks,
        } = initial;
        LockManager {
            sets: [
                LockSet::new(Level::Cluster.name(), [BGL_NAME]),
                LockSet::new(Level::Instance.name(), instances),
                LockSet::new(Level::NodeGroup.name(), node_groups),
                LockSet::new(Level::Node.name(), nodes.clone()),
                LockSet::new(Level::NodeRes.name(), nodes),
                LockSet::new(Level::Network.name(), networks),
            ],
        }
    }

    /// The set of one level.
    pub fn set(&self, level: Level) -> &LockSet {
        &self.sets[level.index()]
    }

    /// The highest level at or after `from` in which `owner` holds
    /// anything.
    fn highest_held_from(&self, owner: OwnerId, from: Level) -> Option<Level> {
        Level::ALL
            .iter()
            .rev()
            .take_while(|l| **l >= from)
            .copied()
            .find(|l| self.set(*l).owns_any(owner))
    }

    /// Whether `owner` may acquire at `level` now: the level-order and BGL
    /// rules, without acquiring anything.
    pub fn check_order(&self, owner: OwnerId, level: Level) -> Result<(), LockError> {
        if let Some(held) = self.highest_held_from(owner, level) {
            return Err(LockError::OrderViolation {
                owner,
                held,
                requested: level,
            });
        }
        self.check_bgl(owner, level)
    }

    /// The BGL rule alone.
    fn check_bgl(&self, owner: OwnerId, level: Level) -> Result<(), LockError> {
        if level != Level::Cluster && !self.set(Level::Cluster).owns_any(owner) {
            return Err(LockError::BglNotHeld {
                owner,
                requested: level,
            });
        }
        Ok(())
    }

    /// Acquires `names` at `level` for `owner` (see [`LockSet::acquire`]
    /// for timeout and all-or-nothing semantics), after checking the
    /// level order and BGL rules.
    pub fn acquire(
        &self,
        owner: OwnerId,
        level: Level,
        names: &Names,
        mode: LockMode,
        timeout: Timeout,
        priority: Priority,
    ) -> Result<Acquired, LockError> {
        if let Err(e) = self.check_order(owner, level) {
            // Both rules are about the caller's code, not the cluster's
            // state: catch them loudly in tests, report them in production.
            debug_assert!(false, "{e}");
            return Err(e);
        }
        self.set(level)
            .acquire(owner, names, mode, timeout, priority)
    }

    /// Releases `names` (or everything with [`Names::All`]) at `level`.
    /// The BGL can only be released once nothing else is held.
    pub fn release(&self, owner: OwnerId, level: Level, names: &Names) -> Result<(), LockError> {
        if level == Level::Cluster {
            if let Some(held) = self.highest_held_from(owner, Level::Instance) {
                return Err(LockError::BglReleasedEarly { owner, held });
            }
        }
        self.set(level).release(owner, names)
    }

    /// Releases everything `owner` holds, last level first (job end).
    pub fn release_all(&self, owner: OwnerId) -> Result<(), LockError> {
        for level in Level::ALL.iter().rev() {
            self.set(*level).release(owner, &Names::All)?;
        }
        Ok(())
    }

    /// The names `owner` holds at `level`, sorted.
    pub fn owned(&self, owner: OwnerId, level: Level) -> Vec<LockName> {
        self.set(level).owned(owner)
    }

    /// The mode in which `owner` holds the whole of `level`, if it does.
    pub fn owns_all(&self, owner: OwnerId, level: Level) -> Option<LockMode> {
        self.set(level).owns_all(owner)
    }

    /// Adds lock names at a modifiable level (not [`Level::Cluster`]); see
    /// [`LockSet::add`]. New locks held by `owner` count as acquiring at
    /// `level`, so the BGL and order rules apply (holding `level` itself
    /// already is fine: a fresh lock cannot deadlock).
    pub fn add(
        &self,
        owner: OwnerId,
        level: Level,
        names: &[LockName],
        new: NewLocks,
        timeout: Timeout,
        priority: Priority,
    ) -> Result<Acquired, LockError> {
        self.check_modifiable(owner, level)?;
        self.check_bgl(owner, level)?;
        let after = Level::ALL.get(level.index() + 1).copied();
        if let Some(held) = after.and_then(|next| self.highest_held_from(owner, next)) {
            let e = LockError::OrderViolation {
                owner,
                held,
                requested: level,
            };
            debug_assert!(false, "{e}");
            return Err(e);
        }
        self.set(level).add(owner, names, new, timeout, priority)
    }

    /// Removes lock names at a modifiable level; `owner` must hold them
    /// exclusively (see [`LockSet::remove`]).
    pub fn remove(
        &self,
        owner: OwnerId,
        level: Level,
        names: &[LockName],
    ) -> Result<(), LockError> {
        self.check_modifiable(owner, level)?;
        self.set(level).remove(owner, names)
    }

    /// The cluster level has exactly the BGL, forever (Ganeti's
    /// `LEVELS_MOD` excludes it).
    fn check_modifiable(&self, owner: OwnerId, level: Level) -> Result<(), LockError> {
        if level == Level::Cluster {
            return Err(LockError::NotModifiable { owner, level });
        }
        Ok(())
    }

    /// Every lock of every level, level by level, for `gnt-debug locks`.
    pub fn info(&self) -> Vec<LockInfo> {
        self.sets.iter().flat_map(LockSet::info).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn o(n: u64) -> OwnerId {
        OwnerId(n)
    }

    fn manager() -> LockManager {
        LockManager::new(InitialLocks {
            instances: vec!["i1".into(), "i2".into()],
            node_groups: vec!["g1".into()],
            nodes: vec!["n1".into(), "n2".into()],
            networks: vec![],
        })
    }

    fn take(
        m: &LockManager,
        owner: u64,
        level: Level,
        names: Names,
        mode: LockMode,
    ) -> Result<Acquired, LockError> {
        m.acquire(
            o(owner),
            level,
            &names,
            mode,
            Timeout::Blocking,
            Priority::NORMAL,
        )
    }

    #[test]
    fn levels_follow_ganeti_order() {
        let names: Vec<_> = Level::ALL.iter().map(|l| l.name()).collect();
        assert_eq!(
            names,
            [
                "cluster",
                "instance",
                "nodegroup",
                "node",
                "node-res",
                "network"
            ]
        );
        assert!(Level::ALL.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn acquires_in_order_and_releases() {
        let m = manager();
        let bgl = Names::list([BGL_NAME]);
        assert_eq!(
            take(&m, 1, Level::Cluster, bgl.clone(), LockMode::Shared),
            Ok(Acquired::Yes)
        );
        assert_eq!(
            take(
                &m,
                1,
                Level::Instance,
                Names::list(["i2"]),
                LockMode::Exclusive
            ),
            Ok(Acquired::Yes)
        );
        assert_eq!(
            take(&m, 1, Level::Node, Names::All, LockMode::Shared),
            Ok(Acquired::Yes)
        );
        assert_eq!(m.owned(o(1), Level::Instance), vec![LockName::from("i2")]);
        assert_eq!(m.owned(o(1), Level::Node).len(), 2);
        assert_eq!(m.owns_all(o(1), Level::Node), Some(LockMode::Shared));
        assert!(matches!(
            m.release(o(1), Level::Cluster, &Names::All),
            Err(LockError::BglReleasedEarly {
                held: Level::Node,
                ..
            })
        ));
        m.release(o(1), Level::Node, &Names::All).expect("release");
        m.release(o(1), Level::Instance, &Names::All)
            .expect("release");
        m.release(o(1), Level::Cluster, &bgl).expect("release");
        assert!(m.info().iter().all(|i| i.owners.is_empty()));
    }

    #[test]
    fn check_order_reports_violations_without_acquiring() {
        let m = manager();
        assert!(matches!(
            m.check_order(o(1), Level::Instance),
            Err(LockError::BglNotHeld {
                requested: Level::Instance,
                ..
            })
        ));
        assert_eq!(
            take(&m, 1, Level::Cluster, Names::All, LockMode::Shared),
            Ok(Acquired::Yes)
        );
        assert_eq!(
            take(&m, 1, Level::Node, Names::list(["n1"]), LockMode::Shared),
            Ok(Acquired::Yes)
        );
        let err = m.check_order(o(1), Level::Instance).expect_err("node held");
        assert_eq!(
            err,
            LockError::OrderViolation {
                owner: o(1),
                held: Level::Node,
                requested: Level::Instance
            }
        );
        assert!(err.to_string().starts_with("lock order violation"));
        // The same level twice is a violation too.
        assert!(matches!(
            m.check_order(o(1), Level::Node),
            Err(LockError::OrderViolation { .. })
        ));
        assert_eq!(m.check_order(o(1), Level::NodeRes), Ok(()));
        // Another owner is unaffected.
        assert!(matches!(
            m.check_order(o(2), Level::Instance),
            Err(LockError::BglNotHeld { .. })
        ));
    }

    #[test]
    #[cfg_attr(debug_assertions, should_panic(expected = "lock order violation"))]
    fn acquiring_out_of_order_is_a_bug() {
        let m = manager();
        assert_eq!(
            take(&m, 1, Level::Cluster, Names::All, LockMode::Shared),
            Ok(Acquired::Yes)
        );
        assert_eq!(
            take(&m, 1, Level::Node, Names::list(["n1"]), LockMode::Shared),
            Ok(Acquired::Yes)
        );
        let got = take(
            &m,
            1,
            Level::Instance,
            Names::list(["i1"]),
            LockMode::Shared,
        );
        assert!(matches!(got, Err(LockError::OrderViolation { .. })));
        assert!(m.owned(o(1), Level::Instance).is_empty());
    }

    #[test]
    fn exclusive_bgl_excludes_other_jobs() {
        let m = manager();
        assert_eq!(
            take(&m, 1, Level::Cluster, Names::All, LockMode::Exclusive),
            Ok(Acquired::Yes)
        );
        let zero = Timeout::After(Duration::ZERO);
        let got = m.acquire(
            o(2),
            Level::Cluster,
            &Names::All,
            LockMode::Shared,
            zero,
            Priority::NORMAL,
        );
        assert_eq!(got, Ok(Acquired::TimedOut));
    }

    #[test]
    fn add_and_remove_instance_locks() {
        let m = manager();
        let i3 = [LockName::from("i3")];
        let held = NewLocks::HeldAs(LockMode::Exclusive);
        assert!(matches!(
            m.add(
                o(1),
                Level::Instance,
                &i3,
                held,
                Timeout::Blocking,
                Priority::NORMAL
            ),
            Err(LockError::BglNotHeld { .. })
        ));
        assert!(matches!(
            m.add(
                o(1),
                Level::Cluster,
                &i3,
                NewLocks::Free,
                Timeout::Blocking,
                Priority::NORMAL
            ),
            Err(LockError::NotModifiable { .. })
        ));
        assert_eq!(
            take(&m, 1, Level::Cluster, Names::All, LockMode::Shared),
            Ok(Acquired::Yes)
        );
        assert_eq!(
            m.add(
                o(1),
                Level::Instance,
                &i3,
                held,
                Timeout::Blocking,
                Priority::NORMAL
            ),
            Ok(Acquired::Yes)
        );
        assert_eq!(m.owned(o(1), Level::Instance), i3.to_vec());
        assert!(m
            .info()
            .iter()
            .any(|i| i.name == "instance/i3" && i.owners == vec![o(1)]));
        m.remove(o(1), Level::Instance, &i3).expect("remove");
        assert!(!m.set(Level::Instance).names().contains(&i3[0]));
        m.release_all(o(1)).expect("release");
        assert!(m.info().iter().all(|i| i.owners.is_empty()));
    }

    #[test]
    fn info_names_carry_the_level() {
        let m = manager();
        let names: Vec<_> = m.info().into_iter().map(|i| i.name).collect();
        assert_eq!(names[0], "cluster/[lockset]");
        assert!(names.contains(&"cluster/BGL".to_owned()));
        assert!(names.contains(&"node-res/n2".to_owned()));
    }
}
