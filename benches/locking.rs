//! Lock manager benchmark: `cargo bench --bench locking`.
//!
//! Prints, never asserts: timings depend on the machine and its load.
//!
//! 1. Uncontended acquire + release rate of one `SharedLock` and of a
//!    BGL + instance acquisition through the `LockManager` (median of runs).
//! 2. 1000 simulated jobs on a pool of 20 worker threads, each taking the
//!    BGL shared and one or two of 10 instance locks (mostly exclusive),
//!    holding them for a short busy period: total time and the median, 99th
//!    percentile and maximum lock wait per job, to show nobody starves.

use ganeti::locking::{
    Acquired, InitialLocks, Level, LockManager, LockMode, LockName, Names, OwnerId, Priority,
    SharedLock, Timeout, BGL_NAME,
};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Runs per uncontended measurement; the median is printed.
const RUNS: usize = 7;
/// Acquire/release pairs per uncontended run.
const ITERATIONS: u32 = 200_000;
/// Simulated jobs in the contended scenario.
const JOBS: usize = 1000;
/// Worker threads running jobs.
const WORKERS: usize = 20;
/// Instance locks the jobs fight over.
const INSTANCES: usize = 10;
/// Time each job holds its locks, spent busy (it stands for real work).
const HOLD: Duration = Duration::from_micros(200);

fn main() {
    uncontended();
    contended();
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Median acquire+release pairs per second of `op` over [`RUNS`] runs.
fn rate(mut op: impl FnMut()) -> f64 {
    let runs = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..ITERATIONS {
                op();
            }
            f64::from(ITERATIONS) / start.elapsed().as_secs_f64()
        })
        .collect();
    median(runs)
}

fn uncontended() {
    let lock = SharedLock::new("bench");
    let owner = OwnerId(1);
    for mode in [LockMode::Exclusive, LockMode::Shared] {
        let per_sec = rate(|| {
            let got = lock.acquire(owner, mode, Timeout::Blocking, Priority::NORMAL);
            assert_eq!(got, Ok(Acquired::Yes));
            lock.release(owner).expect("release");
        });
        println!(
            "uncontended SharedLock {mode:<9}: {:>12.0} acquire+release/s (median of {RUNS})",
            per_sec
        );
    }

    let manager = manager();
    let bgl = Names::list([BGL_NAME]);
    let inst = Names::list(["inst0"]);
    let per_sec = rate(|| {
        let got = manager.acquire(
            owner,
            Level::Cluster,
            &bgl,
            LockMode::Shared,
            Timeout::Blocking,
            Priority::NORMAL,
        );
        assert_eq!(got, Ok(Acquired::Yes));
        let got = manager.acquire(
            owner,
            Level::Instance,
            &inst,
            LockMode::Exclusive,
            Timeout::Blocking,
            Priority::NORMAL,
        );
        assert_eq!(got, Ok(Acquired::Yes));
        manager.release_all(owner).expect("release");
    });
    println!(
        "uncontended LockManager BGL+instance: {:>7.0} jobs/s (median of {RUNS})",
        per_sec
    );
}

fn manager() -> LockManager {
    LockManager::new(InitialLocks {
        instances: (0..INSTANCES)
            .map(|i| LockName(format!("inst{i}")))
            .collect(),
        ..InitialLocks::default()
    })
}

/// Deterministic per-job choices.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// A deterministic instance index.
fn pick_instance(state: &mut u64) -> usize {
    usize::try_from(xorshift(state) % INSTANCES as u64).expect("below INSTANCES")
}

fn contended() {
    let manager = Arc::new(manager());
    let queue: Arc<Mutex<VecDeque<usize>>> = Arc::new(Mutex::new((0..JOBS).collect()));
    let waits: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::with_capacity(JOBS)));
    let start = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (manager, queue, waits) = (manager.clone(), queue.clone(), waits.clone());
            thread::spawn(move || loop {
                let Some(job) = queue.lock().expect("queue").pop_front() else {
                    break;
                };
                let owner = OwnerId(job as u64);
                let mut rng = 0x2545_F491_4F6C_DD1D ^ (job as u64 + 1);
                let first = pick_instance(&mut rng);
                let mut names = vec![LockName(format!("inst{first}"))];
                if xorshift(&mut rng) % 2 == 0 {
                    names.push(LockName(format!("inst{}", pick_instance(&mut rng))));
                }
                let mode = if xorshift(&mut rng) % 10 < 7 {
                    LockMode::Exclusive
                } else {
                    LockMode::Shared
                };

                let asked = Instant::now();
                let bgl = Names::list([BGL_NAME]);
                let got = manager.acquire(
                    owner,
                    Level::Cluster,
                    &bgl,
                    LockMode::Shared,
                    Timeout::Blocking,
                    Priority::NORMAL,
                );
                assert_eq!(got, Ok(Acquired::Yes));
                let got = manager.acquire(
                    owner,
                    Level::Instance,
                    &Names::List(names),
                    mode,
                    Timeout::Blocking,
                    Priority::NORMAL,
                );
                assert_eq!(got, Ok(Acquired::Yes));
                let waited = asked.elapsed();

                let busy_until = Instant::now() + HOLD;
                while Instant::now() < busy_until {
                    std::hint::spin_loop();
                }
                manager.release_all(owner).expect("release");
                waits.lock().expect("waits").push(waited);
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    let total = start.elapsed();
    let mut waits = waits.lock().expect("waits").clone();
    waits.sort();
    let pct = |p: usize| waits[(waits.len() * p / 100).min(waits.len() - 1)];
    println!(
        "contended: {JOBS} jobs, {WORKERS} workers, {INSTANCES} instance locks, hold {HOLD:?}: total {total:.3?}"
    );
    println!(
        "  lock wait per job: median {:.3?}, p99 {:.3?}, max {:.3?}",
        pct(50),
        pct(99),
        waits[waits.len() - 1]
    );
}
