//! Signals a daemon reacts to, delivered to a handler on a small thread.
//!
//! Uses `async-signal` (smol-rs): its handlers only write to a pipe, and the
//! stream reading that pipe runs on a dedicated thread with a small stack
//! (every thread's stack is locked by `mlockall`, see PLATFORM.md). The
//! handler therefore runs in normal thread context and may take locks,
//! open files and log.

use async_signal::{Signal, Signals};
use smol::stream::StreamExt;

/// What a signal asks of a daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonSignal {
    /// `SIGTERM` or `SIGINT`: stop cleanly.
    Shutdown,
    /// `SIGHUP`: reopen the log file (after log rotation).
    ReopenLogs,
}

/// Stack of the signal thread: it only runs the handler.
const SIGNAL_THREAD_STACK_BYTES: usize = 128 * 1024;

/// Installs handlers for `SIGTERM`, `SIGINT` and `SIGHUP` and calls
/// `handler` for each signal received, on a thread named `signals`. The
/// handlers are in place when this returns.
pub fn spawn_handler(
    mut handler: impl FnMut(DaemonSignal) + Send + 'static,
) -> std::io::Result<()> {
    let mut signals = Signals::new([Signal::Term, Signal::Int, Signal::Hup])?;
    std::thread::Builder::new()
        .name("signals".into())
        .stack_size(SIGNAL_THREAD_STACK_BYTES)
        .spawn(move || {
            smol::block_on(async {
                while let Some(sig) = signals.next().await {
                    match sig {
                        Ok(Signal::Hup) => handler(DaemonSignal::ReopenLogs),
                        Ok(_) => handler(DaemonSignal::Shutdown),
                        Err(_) => {}
                    }
                }
            })
        })?;
    Ok(())
}
