//! Job queue benchmark: `cargo bench --bench jobs`.
//!
//! Prints, never asserts: timings depend on the machine and its load.
//!
//! 200 jobs of one `OP_TEST_DELAY(duration=0.001)` each are submitted with
//! one `submit()` call per job from 8, 20 or 40 threads, and the clock stops when all
//! have finished (each thread waits for its own jobs through
//! `wait_for_change`). Every job is durable when acknowledged. Real Ganeti
//! 3.0.2 manages about 1 job/s on this workload (see BASELINE.md); the
//! goal is at least 1000 jobs/s. All three sync modes of the group commit are
//! measured; the median of 7 runs is printed with the number of flushes
//! (group-commit cycles).

use ganeti::jobs::queue::JobChange;
use ganeti::jobs::{JobId, JobQueue, QueueOptions, SyncMode, TestDelayExecutor};
use ganeti::locking::Priority;
use ganeti::paths::Paths;
use serde_json::json;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const JOBS: usize = 200;
/// Submitting threads (each stands for one LUXI client); several counts.
const SUBMITTERS: [usize; 3] = [8, 20, 40];
const RUNS: usize = 7;

fn main() {
    for (sync, submitters) in SUBMITTERS.iter().flat_map(|&n| {
        [
            (SyncMode::DataSyncEach, n),
            (SyncMode::SyncFs, n),
            (SyncMode::Journal, n),
        ]
    }) {
        let mut rates = Vec::new();
        let mut batches = Vec::new();
        for run in 0..RUNS {
            let (rate, b) = one_run(sync, submitters, run);
            rates.push(rate);
            batches.push(b);
        }
        rates.sort_by(f64::total_cmp);
        batches.sort_unstable();
        println!(
            "jobs: {JOBS} x OP_TEST_DELAY(0.001), {submitters} submitters, sync {sync:?}: \
             median {:.0} jobs/s (min {:.0}, max {:.0}); median {} flushes per run",
            rates[RUNS / 2],
            rates[0],
            rates[RUNS - 1],
            batches[RUNS / 2]
        );
    }
}

fn one_run(sync: SyncMode, submitters: usize, run: usize) -> (f64, u64) {
    let base = std::env::temp_dir().join(format!("ganeti-bench-jobs-{}-{run}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let paths = Paths::virtual_node(&base.join("node1"), "node1").expect("valid bench root");
    let q = Arc::new(
        JobQueue::open(
            &paths,
            Arc::new(TestDelayExecutor),
            QueueOptions {
                sync,
                ..QueueOptions::default()
            },
        )
        .expect("open queue"),
    );
    let start = Instant::now();
    let threads: Vec<_> = (0..submitters)
        .map(|t| {
            let q = Arc::clone(&q);
            thread::spawn(move || {
                // Spread JOBS over the threads, the first ones taking the remainder.
                let mine = JOBS / submitters + usize::from(t < JOBS % submitters);
                let ids: Vec<JobId> = (0..mine)
                    .map(|_| {
                        q.submit(
                            vec![json!({"OP_ID": "OP_TEST_DELAY", "duration": 0.001})],
                            Priority::NORMAL,
                        )
                        .expect("submit")
                    })
                    .collect();
                for id in ids {
                    let mut prev = None;
                    loop {
                        match q
                            .wait_for_change(
                                id,
                                &["status"],
                                prev.as_deref(),
                                None,
                                Duration::from_secs(30),
                            )
                            .expect("wait")
                        {
                            JobChange::Changed { info, .. } => {
                                let done = matches!(
                                    info[0].as_str(),
                                    Some("success" | "error" | "canceled")
                                );
                                if done {
                                    break;
                                }
                                prev = Some(info);
                            }
                            JobChange::NoChange => {}
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("submitter thread");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let batches = q.commit_stats().batches;
    drop(q);
    let _ = std::fs::remove_dir_all(&base);
    (JOBS as f64 / elapsed, batches)
}
