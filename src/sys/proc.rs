//! Processes: host name, pids, signals to other processes, memory locking.

use rustix::process::{Pid, Signal};

/// The kernel's host name (`uname -n`).
pub fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// This process's id.
pub fn pid() -> u32 {
    std::process::id()
}

/// Whether a process with `pid` exists (signal 0).
pub fn is_alive(pid: u32) -> bool {
    let Some(p) = to_pid(pid) else { return false };
    match rustix::process::test_kill_process(p) {
        Ok(()) => true,
        // EPERM: it exists but belongs to someone else.
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

/// Sends `SIGTERM` (`Term`) or `SIGKILL` (`Kill`) to `pid`.
pub fn send_signal(pid: u32, sig: StopSignal) -> std::io::Result<()> {
    let p = to_pid(pid).ok_or_else(|| std::io::Error::other(format!("invalid pid {pid}")))?;
    let s = match sig {
        StopSignal::Term => Signal::TERM,
        StopSignal::Kill => Signal::KILL,
        StopSignal::Hup => Signal::HUP,
    };
    rustix::process::kill_process(p, s).map_err(Into::into)
}

/// Signals used to manage daemons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// Ask politely.
    Term,
    /// Stop now.
    Kill,
    /// Reopen logs.
    Hup,
}

fn to_pid(pid: u32) -> Option<Pid> {
    i32::try_from(pid).ok().and_then(Pid::from_raw)
}

/// Whether memory locking applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemLock {
    /// Lock current and future pages (`mlockall(MCL_CURRENT|MCL_FUTURE)`).
    Lock,
    /// Leave memory pageable (`--no-mlock`).
    NoLock,
}

/// Locks all current and future pages in memory, so the daemon keeps
/// answering when swap or the root disk fails (design 2.1).
pub fn mlockall() -> std::io::Result<()> {
    rustix::mm::mlockall(rustix::mm::MlockAllFlags::CURRENT | rustix::mm::MlockAllFlags::FUTURE)
        .map_err(Into::into)
}

/// Effective user id.
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}
