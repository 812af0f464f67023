//! The worker pool: N threads taking runnable jobs by priority.
//!
//! After design 2.3 ("Job priorities"): runnable jobs wait in one queue
//! ordered by priority (a lower number first) and, within a priority, by the
//! order they became runnable. A task may give up its worker and come back
//! later ([`TaskOutcome::Defer`], Ganeti's `DeferTask`), for example when it
//! could not get its locks in time; it then queues again behind the tasks of
//! its (possibly raised) priority, so that nobody starves. A queued task's
//! priority can be changed, which moves it.
//!
//! The pool knows only job ids; what running a job means is the handler's
//! business (`queue.rs` gives it the job processor). Workers are plain
//! threads, as in Ganeti, because a job spends its life blocked (locks,
//! RPCs, disk) and the number of running jobs is bounded by the pool anyway.

use super::file::JobId;
use crate::locking::Priority;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// What a task asks of the pool when it gives its worker back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskOutcome {
    /// Finished, or parked elsewhere (e.g. waiting for another job); the
    /// pool forgets it.
    Done,
    /// Queue the task again at `priority`, behind others of that priority.
    Defer {
        /// The priority to queue it at.
        priority: Priority,
    },
}

/// The function workers call for each task.
pub type TaskHandler = Arc<dyn Fn(JobId) -> TaskOutcome + Send + Sync>;

#[derive(Default)]
struct PoolState {
    /// (priority, arrival number, job): iteration order is run order.
    queue: BTreeSet<(Priority, u64, JobId)>,
    /// Where each queued job sits in `queue`.
    index: HashMap<JobId, (Priority, u64)>,
    next_seq: u64,
    running: usize,
    shutdown: bool,
}

struct PoolShared {
    state: Mutex<PoolState>,
    wake: Condvar,
}

/// Adds, reorders and removes queued tasks; cheap to clone.
#[derive(Clone)]
pub struct PoolHandle {
    shared: Arc<PoolShared>,
}

/// Owns the worker threads; dropping it shuts the pool down.
pub struct WorkerPool {
    handle: PoolHandle,
    threads: Vec<JoinHandle<()>>,
}

fn lock(m: &Mutex<PoolState>) -> MutexGuard<'_, PoolState> {
    // Every update of the state is a few field writes that cannot panic
    // half-way, so a poisoned lock still guards consistent data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl WorkerPool {
    /// Starts `workers` threads (at least one) running `handler`.
    pub fn start(workers: usize, handler: TaskHandler) -> std::io::Result<WorkerPool> {
        Self::start_with(PoolHandle::new(), workers, handler)
    }

    /// Starts the workers of a pool whose handle already exists (so that
    /// the handler itself can hold the handle and queue tasks).
    pub fn start_with(
        handle: PoolHandle,
        workers: usize,
        handler: TaskHandler,
    ) -> std::io::Result<WorkerPool> {
        let mut pool = WorkerPool {
            handle: handle.clone(),
            threads: Vec::new(),
        };
        for i in 0..workers.max(1) {
            let shared = Arc::clone(&handle.shared);
            let handler = Arc::clone(&handler);
            // Small stacks: masterd locks its memory (mlockall), and every
            // worker's whole stack counts (PLATFORM.md).
            let t = std::thread::Builder::new()
                .name(format!("jobs-worker-{i}"))
                .stack_size(crate::constants::JOB_WORKER_STACK_BYTES)
                .spawn(move || work(&shared, &handler))?;
            pool.threads.push(t);
        }
        Ok(pool)
    }

    /// A handle for adding tasks.
    pub fn handle(&self) -> PoolHandle {
        self.handle.clone()
    }

    /// Stops handing out tasks and waits for the running ones to finish.
    /// Tasks still queued stay where they are (the job queue keeps them
    /// queued on disk, so they run after the next start).
    pub fn shutdown(&mut self) {
        lock(&self.handle.shared.state).shutdown = true;
        self.handle.shared.wake.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl PoolHandle {
    /// A pool queue with no workers yet; see [`WorkerPool::start_with`].
    #[allow(clippy::new_without_default)] // a fresh queue, not a neutral value
    pub fn new() -> PoolHandle {
        PoolHandle {
            shared: Arc::new(PoolShared {
                state: Mutex::new(PoolState::default()),
                wake: Condvar::new(),
            }),
        }
    }

    /// Queues `job` at `priority`. A job already queued keeps its place.
    pub fn add(&self, job: JobId, priority: Priority) {
        let mut st = lock(&self.shared.state);
        if st.index.contains_key(&job) {
            return;
        }
        push(&mut st, job, priority);
        drop(st);
        self.shared.wake.notify_one();
    }

    /// Moves a queued job to `priority`, behind the jobs already queued
    /// there. Returns whether it was queued.
    pub fn change_priority(&self, job: JobId, priority: Priority) -> bool {
        let mut st = lock(&self.shared.state);
        let Some((old, seq)) = st.index.remove(&job) else {
            return false;
        };
        st.queue.remove(&(old, seq, job));
        push(&mut st, job, priority);
        true
    }

    /// Takes a queued job out. Returns whether it was queued.
    pub fn remove(&self, job: JobId) -> bool {
        let mut st = lock(&self.shared.state);
        match st.index.remove(&job) {
            Some((p, seq)) => st.queue.remove(&(p, seq, job)),
            None => false,
        }
    }

    /// The queued jobs in the order they would run.
    pub fn queued(&self) -> Vec<JobId> {
        lock(&self.shared.state)
            .queue
            .iter()
            .map(|&(_, _, j)| j)
            .collect()
    }

    /// How many tasks workers are executing right now.
    pub fn running(&self) -> usize {
        lock(&self.shared.state).running
    }
}

fn push(st: &mut PoolState, job: JobId, priority: Priority) {
    let seq = st.next_seq;
    st.next_seq += 1;
    st.queue.insert((priority, seq, job));
    st.index.insert(job, (priority, seq));
}

fn work(shared: &PoolShared, handler: &TaskHandler) {
    loop {
        let job = {
            let mut st = lock(&shared.state);
            loop {
                if st.shutdown {
                    return;
                }
                if let Some(first) = st.queue.pop_first() {
                    st.index.remove(&first.2);
                    st.running += 1;
                    break first.2;
                }
                st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
            }
        };
        let outcome = handler(job);
        let mut st = lock(&shared.state);
        st.running -= 1;
        if let TaskOutcome::Defer { priority } = outcome {
            if !st.index.contains_key(&job) {
                push(&mut st, job, priority);
            }
            drop(st);
            shared.wake.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// A pool of one worker whose first task (job 0) blocks until released,
    /// recording the order in which every other task runs.
    struct Blocked {
        pool: WorkerPool,
        release: mpsc::Sender<()>,
        started: mpsc::Receiver<()>,
        order: Arc<Mutex<Vec<JobId>>>,
    }

    fn blocked_pool(
        defer: impl Fn(JobId, usize) -> TaskOutcome + Send + Sync + 'static,
    ) -> Blocked {
        let (release, gate) = mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        let (started_tx, started) = mpsc::channel();
        let order = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&order);
        let pool = WorkerPool::start(
            1,
            Arc::new(move |job| {
                if job == JobId(0) {
                    started_tx.send(()).unwrap();
                    gate.lock().unwrap().recv().unwrap();
                    return TaskOutcome::Done;
                }
                let mut o = seen.lock().unwrap();
                o.push(job);
                let runs = o.iter().filter(|&&j| j == job).count();
                drop(o);
                defer(job, runs)
            }),
        )
        .unwrap();
        pool.handle().add(JobId(0), Priority::NORMAL);
        started.recv_timeout(Duration::from_secs(10)).unwrap();
        Blocked {
            pool,
            release,
            started,
            order,
        }
    }

    fn drain(b: Blocked, expect: usize) -> Vec<JobId> {
        b.release.send(()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while b.order.lock().unwrap().len() < expect {
            assert!(std::time::Instant::now() < deadline, "pool stalled");
            std::thread::yield_now();
        }
        drop(b.started);
        drop(b.pool);
        let o = b.order.lock().unwrap().clone();
        o
    }

    #[test]
    fn runs_by_priority_then_fifo() {
        let b = blocked_pool(|_, _| TaskOutcome::Done);
        let h = b.pool.handle();
        h.add(JobId(1), Priority::LOW);
        h.add(JobId(2), Priority::NORMAL);
        h.add(JobId(3), Priority::HIGH);
        h.add(JobId(4), Priority::NORMAL);
        h.add(JobId(5), Priority::HIGH);
        assert_eq!(
            h.queued(),
            vec![JobId(3), JobId(5), JobId(2), JobId(4), JobId(1)]
        );
        assert_eq!(
            drain(b, 5),
            vec![JobId(3), JobId(5), JobId(2), JobId(4), JobId(1)]
        );
    }

    #[test]
    fn change_priority_and_remove_reorder_the_queue() {
        let b = blocked_pool(|_, _| TaskOutcome::Done);
        let h = b.pool.handle();
        h.add(JobId(1), Priority::NORMAL);
        h.add(JobId(2), Priority::NORMAL);
        h.add(JobId(3), Priority::NORMAL);
        assert!(h.change_priority(JobId(3), Priority::HIGH));
        assert!(h.remove(JobId(1)));
        assert!(!h.remove(JobId(1)));
        assert!(!h.change_priority(JobId(9), Priority::HIGH));
        assert_eq!(drain(b, 2), vec![JobId(3), JobId(2)]);
    }

    #[test]
    fn deferral_requeues_behind_its_priority_or_raised() {
        // Without raising: job 1 defers once and goes behind job 2.
        let b = blocked_pool(|job, runs| {
            if job == JobId(1) && runs == 1 {
                TaskOutcome::Defer {
                    priority: Priority::NORMAL,
                }
            } else {
                TaskOutcome::Done
            }
        });
        let h = b.pool.handle();
        h.add(JobId(1), Priority::NORMAL);
        h.add(JobId(2), Priority::NORMAL);
        h.add(JobId(3), Priority::NORMAL);
        assert_eq!(drain(b, 4), vec![JobId(1), JobId(2), JobId(3), JobId(1)]);

        // Raised by one step: job 1 comes back before the others.
        let b = blocked_pool(|job, runs| {
            if job == JobId(1) && runs == 1 {
                TaskOutcome::Defer {
                    priority: Priority::NORMAL.raised(),
                }
            } else {
                TaskOutcome::Done
            }
        });
        let h = b.pool.handle();
        h.add(JobId(1), Priority::NORMAL);
        h.add(JobId(2), Priority::NORMAL);
        h.add(JobId(3), Priority::NORMAL);
        assert_eq!(drain(b, 4), vec![JobId(1), JobId(1), JobId(2), JobId(3)]);
    }

    #[test]
    fn shutdown_leaves_queued_tasks_and_joins() {
        let b = blocked_pool(|_, _| TaskOutcome::Done);
        let h = b.pool.handle();
        h.add(JobId(7), Priority::NORMAL);
        let Blocked {
            mut pool, release, ..
        } = b;
        let shared = Arc::clone(&h.shared);
        let t = std::thread::spawn(move || {
            pool.shutdown();
        });
        // Release the blocked task only once shutdown has begun, so job 7
        // is never handed out.
        while !lock(&shared.state).shutdown {
            std::thread::yield_now();
        }
        release.send(()).unwrap();
        t.join().unwrap();
        assert_eq!(h.queued(), vec![JobId(7)]);
        assert_eq!(h.running(), 0);
    }
}
