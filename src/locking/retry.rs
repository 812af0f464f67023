//! Acquiring a level's locks with increasing timeouts (design 2.1 "Retry
//! acquiring locks"; Ganeti's `LockAttemptTimeoutStrategy` in `mcpu.py`).
//!
//! A job that cannot get all its locks at once should not sit on the ones
//! it did get: other jobs may need them and could finish meanwhile. So each
//! attempt waits a bounded time and, on failure, lets go of everything it
//! took at that level ([`LockSet::acquire`](super::LockSet::acquire) is
//! all-or-nothing). The timeouts grow from [`LOCK_ATTEMPTS_MINWAIT_SECS`]
//! by `t(n+1) = (1.05 * t(n))^1.25`, each kept within
//! [`LOCK_ATTEMPTS_MINWAIT_SECS`]..=[`LOCK_ATTEMPTS_MAXWAIT_SECS`], until
//! their sum reaches [`LOCK_ATTEMPTS_TIMEOUT_SECS`]; every attempt varies
//! its timeout randomly by up to ±5% so two jobs fighting over the same
//! locks drift apart.
//!
//! When the timeouts run out the caller chooses ([`WhenExhausted`]): block
//! until the locks are granted, or return [`RetryOutcome::Deferred`] so the
//! job queue can requeue the job one priority step higher and start a
//! fresh strategy (design 2.3). Ganeti does the latter until the job has
//! reached [`Priority::HIGHEST`], then blocks; see
//! [`WhenExhausted::for_priority`].

use super::{Acquired, Level, LockError, LockManager, LockMode, Names, OwnerId, Priority, Timeout};
use crate::constants::{
    LOCK_ATTEMPTS_MAXWAIT_SECS, LOCK_ATTEMPTS_MINWAIT_SECS, LOCK_ATTEMPTS_TIMEOUT_SECS,
};
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The growth rule of attempt timeouts: `min` first, then
/// `(1.05 * previous)^1.25` clamped to `min..=max`, until the timeouts sum
/// to at least `total`.
///
/// The exponent is applied to the value in seconds, as in Ganeti, so the
/// unit matters: pass real-scale durations for Ganeti's sequence.
pub fn attempt_timeouts(min: Duration, max: Duration, total: Duration) -> Vec<Duration> {
    let (min_s, max_s, total_s) = (min.as_secs_f64(), max.as_secs_f64(), total.as_secs_f64());
    let mut out = vec![min_s];
    let mut sum = min_s;
    while sum < total_s {
        let prev = out.last().copied().unwrap_or(min_s);
        let next = (prev * 1.05).powf(1.25).min(max_s).max(min_s);
        if next <= 0.0 {
            // A zero minimum would never make progress.
            break;
        }
        out.push(next);
        sum += next;
    }
    out.into_iter().map(Duration::from_secs_f64).collect()
}

/// Ganeti's attempt timeouts (5 s, 7.9 s, 14.2 s, 29.3 s, 72.3 s, then
/// 75 s each; 28 attempts over about 31 minutes).
pub fn ganeti_attempt_timeouts() -> Vec<Duration> {
    attempt_timeouts(
        Duration::from_secs(LOCK_ATTEMPTS_MINWAIT_SECS),
        Duration::from_secs(LOCK_ATTEMPTS_MAXWAIT_SECS),
        Duration::from_secs(LOCK_ATTEMPTS_TIMEOUT_SECS),
    )
}

/// Whether attempt timeouts get a random ±5% variation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Vary each timeout uniformly within ±5% (production).
    PlusMinusFivePercent,
    /// Use the timeouts exactly (tests that check the sequence).
    Off,
}

/// Hands out the timeout of each successive attempt; one per job (or per
/// opcode), reset when the job is requeued.
#[derive(Debug, Clone)]
pub struct TimeoutStrategy {
    /// Remaining timed attempts, in order.
    timeouts: Vec<Duration>,
    /// Index of the next attempt.
    next: usize,
    /// Whether to vary timeouts.
    jitter: Jitter,
}

impl TimeoutStrategy {
    /// A strategy over `timeouts`, then blocking.
    pub fn new(timeouts: Vec<Duration>, jitter: Jitter) -> Self {
        TimeoutStrategy {
            timeouts,
            next: 0,
            jitter,
        }
    }

    /// Ganeti's strategy: [`ganeti_attempt_timeouts`] with jitter.
    pub fn ganeti() -> Self {
        Self::new(ganeti_attempt_timeouts(), Jitter::PlusMinusFivePercent)
    }

    /// Whether every timed attempt has been handed out, so the next one
    /// would be [`Timeout::Blocking`].
    pub fn is_exhausted(&self) -> bool {
        self.next >= self.timeouts.len()
    }

    /// The timeout of the next attempt; [`Timeout::Blocking`] once the
    /// timed attempts are used up.
    pub fn next_timeout(&mut self) -> Timeout {
        let Some(base) = self.timeouts.get(self.next).copied() else {
            return Timeout::Blocking;
        };
        self.next += 1;
        match self.jitter {
            Jitter::Off => Timeout::After(base),
            Jitter::PlusMinusFivePercent => {
                // A fraction in [-0.05, 0.05).
                let variation = (random_unit() - 0.5) * 0.1;
                Timeout::After(base.mul_f64(1.0 + variation))
            }
        }
    }
}

/// A uniformly distributed number in [0, 1). std's `RandomState` is seeded
/// randomly per process and varied per instance, which is plenty for
/// spreading timeouts apart (nothing here needs to be unpredictable).
fn random_unit() -> f64 {
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    // 53 random bits make a uniformly spaced f64 in [0, 1); the cast from
    // a 53-bit integer is exact.
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// What to do when the timed attempts have all failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenExhausted {
    /// Wait for the locks without a timeout.
    Block,
    /// Give up with [`RetryOutcome::Deferred`]; the job queue requeues
    /// the job at a higher priority.
    Defer,
}

impl WhenExhausted {
    /// Ganeti's choice: defer while the priority can still be raised,
    /// block once it is [`Priority::HIGHEST`].
    pub fn for_priority(priority: Priority) -> Self {
        if priority > Priority::HIGHEST {
            WhenExhausted::Defer
        } else {
            WhenExhausted::Block
        }
    }
}

/// One attempt about to start, as reported to the caller's callback (the
/// job logs "waiting for locks" from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: usize,
    /// The level being acquired.
    pub level: Level,
    /// How long this attempt may wait.
    pub timeout: Timeout,
}

/// How [`acquire_with_retries`] ended, when not with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a deferred acquisition holds nothing"]
pub enum RetryOutcome {
    /// The locks are held.
    Acquired,
    /// Timed attempts ran out and the caller asked to defer; nothing is
    /// held at this level.
    Deferred,
}

/// What to acquire in [`acquire_with_retries`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRequest {
    /// Who acquires.
    pub owner: OwnerId,
    /// At which level.
    pub level: Level,
    /// Which names.
    pub names: Names,
    /// In which mode.
    pub mode: LockMode,
    /// Queue priority of every attempt.
    pub priority: Priority,
}

/// Acquires `request` through `manager`, one attempt per timeout handed
/// out by `strategy`, calling `on_attempt` before each attempt. A failed
/// attempt holds nothing afterwards. Errors (order violation, missing
/// name, deleted lock) end the retries at once.
pub fn acquire_with_retries(
    manager: &LockManager,
    request: &LockRequest,
    strategy: &mut TimeoutStrategy,
    when_exhausted: WhenExhausted,
    mut on_attempt: impl FnMut(&Attempt),
) -> Result<RetryOutcome, LockError> {
    let mut number = 0;
    loop {
        let timeout = strategy.next_timeout();
        if timeout == Timeout::Blocking && when_exhausted == WhenExhausted::Defer {
            return Ok(RetryOutcome::Deferred);
        }
        number += 1;
        on_attempt(&Attempt {
            number,
            level: request.level,
            timeout,
        });
        let got = manager.acquire(
            request.owner,
            request.level,
            &request.names,
            request.mode,
            timeout,
            request.priority,
        )?;
        if got == Acquired::Yes {
            return Ok(RetryOutcome::Acquired);
        }
        log::debug!(
            "lock attempt timed out owner={} level={} attempt={number}",
            request.owner.0,
            request.level
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::locking::{InitialLocks, BGL_NAME};
    use std::sync::Arc;
    use std::thread;

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    #[test]
    fn ganeti_timeout_sequence() {
        let t = ganeti_attempt_timeouts();
        let expected_start = [5.0, 7.9469, 14.1819, 29.252, 72.3072, 75.0];
        for (got, want) in t.iter().zip(expected_start) {
            assert!((secs(*got) - want).abs() < 1e-3, "{t:?}");
        }
        assert_eq!(t.len(), 28);
        assert!(t.iter().all(|d| (5.0..=75.0).contains(&secs(*d))));
        assert!(t.windows(2).all(|w| w[0] <= w[1]));
        let total: f64 = t.iter().map(|d| secs(*d)).sum();
        let last = t.last().map_or(0.0, |d| secs(*d));
        assert!(total >= 1800.0 && total - last < 1800.0, "total {total}");
    }

    #[test]
    fn strategy_hands_out_then_blocks_with_bounded_jitter() {
        let base = vec![Duration::from_secs(10), Duration::from_secs(20)];
        let mut exact = TimeoutStrategy::new(base.clone(), Jitter::Off);
        assert_eq!(exact.next_timeout(), Timeout::After(base[0]));
        assert_eq!(exact.next_timeout(), Timeout::After(base[1]));
        assert!(exact.is_exhausted());
        assert_eq!(exact.next_timeout(), Timeout::Blocking);

        for _ in 0..100 {
            let mut s = TimeoutStrategy::new(base.clone(), Jitter::PlusMinusFivePercent);
            let Timeout::After(d) = s.next_timeout() else {
                panic!("expected a timed attempt");
            };
            assert!((9.5..=10.5).contains(&secs(d)), "{d:?}");
        }
    }

    #[test]
    fn exhausted_defers_below_highest_priority_only() {
        assert_eq!(
            WhenExhausted::for_priority(Priority::NORMAL),
            WhenExhausted::Defer
        );
        assert_eq!(
            WhenExhausted::for_priority(Priority::HIGHEST.raised()),
            WhenExhausted::Block
        );
        assert_eq!(Priority::NORMAL.raised(), Priority(-1));
    }

    fn manager_with_bgl_held_by(owners: &[u64]) -> LockManager {
        let m = LockManager::new(InitialLocks {
            instances: vec!["a".into(), "b".into()],
            ..InitialLocks::default()
        });
        for o in owners {
            let got = m.acquire(
                OwnerId(*o),
                Level::Cluster,
                &Names::list([BGL_NAME]),
                LockMode::Shared,
                Timeout::Blocking,
                Priority::NORMAL,
            );
            assert_eq!(got, Ok(Acquired::Yes));
        }
        m
    }

    fn request(owner: u64) -> LockRequest {
        LockRequest {
            owner: OwnerId(owner),
            level: Level::Instance,
            names: Names::list(["a", "b"]),
            mode: LockMode::Exclusive,
            priority: Priority::NORMAL,
        }
    }

    #[test]
    fn defers_after_timed_attempts_and_holds_nothing() {
        let m = manager_with_bgl_held_by(&[1, 2]);
        let blocker = Names::list(["b"]);
        let got = m.acquire(
            OwnerId(1),
            Level::Instance,
            &blocker,
            LockMode::Exclusive,
            Timeout::Blocking,
            Priority::NORMAL,
        );
        assert_eq!(got, Ok(Acquired::Yes));
        let mut strategy = TimeoutStrategy::new(
            vec![Duration::from_millis(5), Duration::from_millis(10)],
            Jitter::Off,
        );
        let mut attempts = Vec::new();
        let out = acquire_with_retries(&m, &request(2), &mut strategy, WhenExhausted::Defer, |a| {
            attempts.push(*a)
        });
        assert_eq!(out, Ok(RetryOutcome::Deferred));
        let timeouts: Vec<_> = attempts.iter().map(|a| (a.number, a.timeout)).collect();
        assert_eq!(
            timeouts,
            vec![
                (1, Timeout::After(Duration::from_millis(5))),
                (2, Timeout::After(Duration::from_millis(10)))
            ]
        );
        assert!(m.owned(OwnerId(2), Level::Instance).is_empty());
    }

    #[test]
    fn blocks_after_timed_attempts_until_granted() {
        let m = Arc::new(manager_with_bgl_held_by(&[1, 2]));
        let got = m.acquire(
            OwnerId(1),
            Level::Instance,
            &Names::list(["a"]),
            LockMode::Exclusive,
            Timeout::Blocking,
            Priority::NORMAL,
        );
        assert_eq!(got, Ok(Acquired::Yes));
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let m = m.clone();
            thread::spawn(move || {
                let mut strategy =
                    TimeoutStrategy::new(vec![Duration::from_millis(1); 3], Jitter::Off);
                acquire_with_retries(&m, &request(2), &mut strategy, WhenExhausted::Block, |a| {
                    tx.send(*a).expect("send");
                })
            })
        };
        // Release only once the blocking attempt has been announced.
        let mut seen = Vec::new();
        while seen.last().map(|a: &Attempt| a.timeout) != Some(Timeout::Blocking) {
            seen.push(
                rx.recv_timeout(Duration::from_secs(30))
                    .expect("attempt reported"),
            );
        }
        assert_eq!(seen.len(), 4);
        m.release(OwnerId(1), Level::Instance, &Names::All)
            .expect("release");
        assert_eq!(waiter.join().expect("thread"), Ok(RetryOutcome::Acquired));
        assert_eq!(m.owned(OwnerId(2), Level::Instance).len(), 2);
    }
}
