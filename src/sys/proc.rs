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

/// Whether any process runs with real or effective user id `uid`
/// (Ganeti's `pgrep -u` check), from the `Uid:` lines of `/proc/*/status`.
/// Processes that vanish while being read are skipped.
pub fn uid_has_processes(uid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name();
        if !name.to_string_lossy().chars().all(|c| c.is_ascii_digit()) {
            return false;
        }
        let Ok(status) = std::fs::read_to_string(e.path().join("status")) else {
            return false;
        };
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .is_some_and(|ids| {
                ids.split_whitespace()
                    .take(2)
                    .any(|id| id.parse::<u32>() == Ok(uid))
            })
    })
}

/// Effective user id.
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Whether `pid` is a live process that has not exited: like [`is_alive`],
/// but an exited process not yet reaped by its parent (a zombie) counts as
/// gone.
pub fn is_running(pid: u32) -> bool {
    if !is_alive(pid) {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Format: `pid (comm) S ...`; comm may contain spaces and parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state != "Z" && state != "X"),
        Err(_) => true,
    }
}

/// Starts a new session (`setsid`), detaching from the controlling terminal.
/// Fails when the process already leads a process group.
pub fn new_session() -> std::io::Result<()> {
    rustix::process::setsid().map(drop).map_err(Into::into)
}

/// Sets the process name shown by `ps` and matched by `pgrep` (the
/// kernel's `comm`, at most 15 bytes). A daemon re-run through
/// `/proc/self/exe` would otherwise be called `exe`. Call from the main
/// thread before starting others.
pub fn set_process_name(name: &str) -> std::io::Result<()> {
    let short: String = name.chars().take(15).collect();
    let c = std::ffi::CString::new(short).map_err(std::io::Error::other)?;
    rustix::thread::set_name(&c).map_err(Into::into)
}

/// Closes every inherited descriptor above stderr except `keep`, as a
/// daemon going to the background must: an inherited pipe would keep its
/// caller (a shell's command substitution, a test harness) waiting for
/// end of file as long as the daemon lives.
///
/// Call at the very start of the process, on its only thread, before
/// anything but `keep` owns a descriptor.
pub fn close_inherited_fds(keep: &[std::os::fd::RawFd]) -> std::io::Result<()> {
    let mut fds: Vec<std::os::fd::RawFd> = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let entry = entry?;
        if let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
            fds.push(fd);
        }
    }
    for fd in fds.into_iter().filter(|fd| *fd > 2 && !keep.contains(fd)) {
        // The directory listing's own descriptor is in the list and closed
        // by now; skip numbers that are not open any more.
        if std::fs::read_link(format!("/proc/self/fd/{fd}")).is_err() {
            continue;
        }
        // SAFETY: the descriptor is open (checked just above, and the
        // process has a single thread, so it cannot have changed since);
        // per this function's contract nothing in the process owns it: it
        // was inherited across exec, and the only one we took ownership of
        // is in `keep`.
        unsafe { rustix::io::close(fd) };
    }
    Ok(())
}

/// The parent's end of a daemon's readiness pipe.
///
/// The daemon started in the background writes [`READY_BYTE`] once it
/// serves, or [`FAILED_BYTE`] and an error message when it gives up. End of
/// file without either means it died.
#[derive(Debug)]
pub struct ReadyReader {
    file: std::fs::File,
}

/// The daemon's end of the readiness pipe.
#[derive(Debug)]
pub struct ReadyWriter {
    file: std::fs::File,
}

/// Sent by the daemon when ready.
pub const READY_BYTE: u8 = b'R';
/// Sent by the daemon before an error message when it gives up.
pub const FAILED_BYTE: u8 = b'E';

/// What the parent learnt from the readiness pipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadyOutcome {
    /// The daemon is serving.
    Ready,
    /// The daemon gave up with this message.
    Failed(String),
    /// The pipe closed without a word: the daemon died.
    Died,
    /// Nothing arrived in time.
    TimedOut,
}

/// Makes a readiness pipe. Returns the parent's end and the daemon's end as
/// an inheritable descriptor (no close-on-exec) to pass to exactly one child;
/// the caller drops it after spawning. Call while the process has a single
/// thread, or another thread's child could inherit the descriptor too.
pub fn ready_pipe() -> std::io::Result<(ReadyReader, std::os::fd::OwnedFd)> {
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    // `dup` gives a descriptor without close-on-exec: the child inherits it.
    let inheritable = rustix::io::dup(&write)?;
    drop(write);
    Ok((
        ReadyReader {
            file: std::fs::File::from(read),
        },
        inheritable,
    ))
}

impl ReadyReader {
    /// Waits up to `timeout` for the daemon's word.
    pub fn wait(mut self, timeout: std::time::Duration) -> ReadyOutcome {
        use std::io::Read;
        let deadline = std::time::Instant::now() + timeout;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return ReadyOutcome::TimedOut;
            }
            let ts = rustix::time::Timespec {
                tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(left.subsec_nanos()),
            };
            let mut fds = [rustix::event::PollFd::new(
                &self.file,
                rustix::event::PollFlags::IN,
            )];
            match rustix::event::poll(&mut fds, Some(&ts)) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return ReadyOutcome::Failed(format!("waiting for the daemon: {e}")),
            }
            let mut buf = [0u8; 4096];
            match self.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    if got.first() == Some(&READY_BYTE) {
                        return ReadyOutcome::Ready;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return ReadyOutcome::Failed(format!("waiting for the daemon: {e}")),
            }
        }
        match got.split_first() {
            Some((&READY_BYTE, _)) => ReadyOutcome::Ready,
            Some((&FAILED_BYTE, msg)) => {
                ReadyOutcome::Failed(String::from_utf8_lossy(msg).trim().to_string())
            }
            _ => ReadyOutcome::Died,
        }
    }
}

impl ReadyWriter {
    /// Takes the descriptor number found in environment variable `var`,
    /// removing the variable so that it is taken once and our own children
    /// do not see it. `None` when unset or not an open pipe.
    ///
    /// Call while the process has a single thread (it changes the
    /// environment).
    pub fn from_env(var: &str) -> Option<ReadyWriter> {
        use std::os::fd::FromRawFd;
        use std::sync::atomic::{AtomicBool, Ordering};
        static TAKEN: AtomicBool = AtomicBool::new(false);
        let value = std::env::var(var).ok()?;
        std::env::remove_var(var);
        let fd: i32 = value.trim().parse().ok().filter(|&n| n > 2)?;
        // Checked without touching the descriptor: it must be open and a pipe.
        let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
        if !target.to_string_lossy().starts_with("pipe:") {
            return None;
        }
        if TAKEN.swap(true, Ordering::SeqCst) {
            return None;
        }
        // SAFETY: the descriptor is open and a pipe (checked above through
        // /proc/self/fd); our parent created it for exactly this purpose and
        // nothing else in this process opened it, so nothing else owns it.
        // TAKEN ensures we build at most one owner for it.
        let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        // Keep it from leaking into programs we run later.
        rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC).ok()?;
        Some(ReadyWriter {
            file: std::fs::File::from(owned),
        })
    }

    /// The descriptor, for [`close_inherited_fds`].
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.file.as_raw_fd()
    }

    /// Tells the parent the daemon is ready (consumes the pipe).
    pub fn ready(mut self) {
        use std::io::Write;
        let _ = self.file.write_all(&[READY_BYTE]);
    }

    /// Tells the parent the daemon failed, and why (consumes the pipe).
    pub fn failed(mut self, message: &str) {
        use std::io::Write;
        let mut msg = vec![FAILED_BYTE];
        msg.extend_from_slice(message.as_bytes());
        let _ = self.file.write_all(&msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_pipe_carries_ready_failure_and_death() {
        let (reader, w) = ready_pipe().unwrap();
        let writer = ReadyWriter {
            file: std::fs::File::from(w),
        };
        writer.ready();
        assert_eq!(
            reader.wait(std::time::Duration::from_secs(5)),
            ReadyOutcome::Ready
        );

        let (reader, w) = ready_pipe().unwrap();
        ReadyWriter {
            file: std::fs::File::from(w),
        }
        .failed("ganeti-masterd already running (pid 7)");
        assert_eq!(
            reader.wait(std::time::Duration::from_secs(5)),
            ReadyOutcome::Failed("ganeti-masterd already running (pid 7)".into())
        );

        let (reader, w) = ready_pipe().unwrap();
        drop(w);
        assert_eq!(
            reader.wait(std::time::Duration::from_secs(5)),
            ReadyOutcome::Died
        );

        let (reader, _w) = ready_pipe().unwrap();
        assert_eq!(
            reader.wait(std::time::Duration::from_millis(50)),
            ReadyOutcome::TimedOut
        );
    }

    #[test]
    fn own_process_is_running() {
        assert!(is_running(pid()));
        assert!(!is_running(0));
    }
}
