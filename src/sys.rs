//! The only home of unsafe code, raw syscalls, process spawning and atomic
//! file writes. Everything above this module uses these safe wrappers.
//!
//! - [`fs`]: atomic writes (temp, fsync, rename, fsync dir), secret files.
//! - [`cmd`]: the [`cmd::Runner`] trait every external program goes through.
//! - [`time`]: wall-clock timestamps and their printed forms.
//! - [`proc`]: host name, pids, signals to other processes, `mlockall`,
//!   sessions and the readiness pipe of a daemon started in the background.
//! - [`signal`]: the signals a daemon handles (`SIGTERM`, `SIGINT`, `SIGHUP`).

pub mod cmd;
pub mod fs;
pub mod proc;
pub mod signal;
pub mod time;
