//! Daemon scaffolding shared by every daemon, and the daemons themselves.
//!
//! Every daemon's entry function calls [`run`] with its body. `run` parses
//! the common options ([`DaemonArgs`]), puts the daemon in the background
//! unless `-f` is given, and in the daemon process prepares what Ganeti's
//! `daemon.GenericMain` prepares: directories, the log file, an exclusively
//! locked pid file, `mlockall`, and signal handling. The body then builds
//! its executor, binds its sockets, calls [`Daemon::ready`] and serves until
//! [`Daemon::wait_for_shutdown`] completes.
//!
//! Going to the background re-runs this executable (as the daemon's name,
//! with `-f`) in a new session. The parent waits on a pipe until the child
//! says it is ready, or why it gave up, so `ganeti-masterd` returns 0 only
//! once the daemon serves (what `daemon-util start` and init scripts rely
//! on). Under systemd the daemon runs with `-f` and reports readiness with
//! `READY=1` on `$NOTIFY_SOCKET` instead.
//!
//! Logging follows design 2.1 ("node daemon availability"): when the log
//! file cannot be opened or written (read-only or full disk) the daemon
//! logs to `/dev/console`, or to stderr if that fails too, and keeps
//! running. `SIGHUP` reopens the log file (log rotation).

pub mod confd;
pub mod daemon_util;
pub mod masterd;
pub mod noded;

use std::fs::File;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::constants;
use crate::error::chain;
use crate::paths::{Paths, PathsError};
use crate::sys;
use crate::sys::fs::{FsError, PidFile, PidLock};
use crate::sys::proc::{ReadyOutcome, ReadyWriter};
use crate::sys::signal::DaemonSignal;

/// Environment variable through which a daemon started in the background
/// learns its readiness pipe (a descriptor number).
pub const READY_FD_ENV: &str = "GANETI_RS_READY_FD";
/// systemd's notification socket variable (`Type=notify` units).
pub const NOTIFY_SOCKET_ENV: &str = "NOTIFY_SOCKET";
/// smol's variable capping its blocking-thread pool.
pub const BLOCKING_MAX_THREADS_ENV: &str = "BLOCKING_MAX_THREADS";
/// Where logging goes when the log file fails.
pub const CONSOLE: &str = "/dev/console";

/// Permission bits of `/var/run/ganeti` (Ganeti's `ensure-dirs`).
const RUN_DIR_MODE: u32 = 0o775;
/// Permission bits of `/var/log/ganeti` (Ganeti's `ensure-dirs`).
const LOG_DIR_MODE: u32 = 0o770;
/// Permission bits of a daemon's log file.
const LOG_FILE_MODE: u32 = 0o600;

/// Options every daemon accepts (Ganeti's common daemon options).
#[derive(argh::FromArgs, Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonArgs {
    /// stay in the foreground instead of detaching (used under systemd)
    #[argh(switch, short = 'f')]
    pub foreground: bool,
    /// log debug messages too (and, with -f, echo the log to stderr)
    #[argh(switch, short = 'd')]
    pub debug: bool,
    /// do not lock the daemon's memory with mlockall
    #[argh(switch)]
    pub no_mlock: bool,
    /// address to listen on (default: the daemon's usual address)
    #[argh(option, short = 'b')]
    pub bind: Option<String>,
    /// port to listen on (default: the daemon's port from the constants)
    #[argh(option, short = 'p')]
    pub port: Option<u16>,
    /// ganeti-masterd: start without asking the other nodes whether this
    /// node is the master (two-node clusters; needs --yes-do-it)
    #[argh(switch)]
    pub no_voting: bool,
    /// ganeti-masterd: confirm --no-voting
    #[argh(switch)]
    pub yes_do_it: bool,
    /// ganeti-noded: what `gnt-node powercycle` does: "reboot" (default) or
    /// "record:PATH" (append a line to PATH instead; for test clusters)
    #[argh(option)]
    pub powercycle_action: Option<String>,
}

/// Why a daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// `GANETI_ROOTDIR`/`GANETI_HOSTNAME` are unusable.
    #[error("reading the node's paths from the environment")]
    Paths(#[source] PathsError),
    /// The run or log directory could not be created.
    #[error("preparing directories")]
    Dirs(#[source] FsError),
    /// The pid file could not be taken.
    #[error("taking the pid file")]
    PidFile(#[source] FsError),
    /// Another instance holds the pid file.
    #[error("{name} already running (pid {})", pid.map_or("unknown".to_string(), |p| p.to_string()))]
    AlreadyRunning {
        /// The daemon.
        name: &'static str,
        /// The pid in its pid file, if readable.
        pid: Option<u32>,
    },
    /// The signal handlers could not be installed.
    #[error("installing signal handlers")]
    Signals(#[source] std::io::Error),
    /// Starting the background process failed.
    #[error("starting {name} in the background")]
    Background {
        /// The daemon.
        name: &'static str,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The daemon's own work failed; `context` says what it was doing.
    #[error("{context}")]
    Body {
        /// What was being done ("binding the LUXI socket /var/run/…").
        context: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl DaemonError {
    /// Wraps a failure of a daemon body, saying what it was doing.
    pub fn body(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        DaemonError::Body {
            context: context.into(),
            source: source.into(),
        }
    }
}

/// Ganeti's log file base name for a daemon (`DAEMONS_LOGBASE`):
/// `ganeti-masterd` logs to `master-daemon.log`, and so on.
pub fn log_base(name: &str) -> &str {
    match name {
        "ganeti-masterd" => "master-daemon",
        "ganeti-noded" => "node-daemon",
        "ganeti-confd" => "conf-daemon",
        "ganeti-rapi" => "rapi-daemon",
        "ganeti-watcher" => "watcher",
        other => other.strip_prefix("ganeti-").unwrap_or(other),
    }
}

/// A running daemon: what its body gets from [`run`].
#[derive(Debug)]
pub struct Daemon {
    /// The installed name (`ganeti-masterd`).
    pub name: &'static str,
    /// The node's paths.
    pub paths: Paths,
    /// The parsed common options.
    pub args: DaemonArgs,
    ready_pipe: Mutex<Option<ReadyWriter>>,
    readied: AtomicBool,
    notify_socket: Option<std::ffi::OsString>,
    shutdown_tx: smol::channel::Sender<()>,
    shutdown_rx: smol::channel::Receiver<()>,
}

impl Daemon {
    fn new(
        name: &'static str,
        paths: Paths,
        args: DaemonArgs,
        ready_pipe: Option<ReadyWriter>,
        notify_socket: Option<std::ffi::OsString>,
    ) -> Self {
        // Nothing is ever sent: closing the channel is the broadcast.
        let (shutdown_tx, shutdown_rx) = smol::channel::bounded(1);
        Daemon {
            name,
            paths,
            args,
            ready_pipe: Mutex::new(ready_pipe),
            readied: AtomicBool::new(false),
            notify_socket,
            shutdown_tx,
            shutdown_rx,
        }
    }

    /// Says the daemon serves: releases the waiting parent (background
    /// mode) and sends `READY=1` to systemd (`Type=notify`). Call once the
    /// sockets are bound; later calls do nothing.
    pub fn ready(&self) {
        if self.readied.swap(true, Ordering::SeqCst) {
            return;
        }
        // Logged first, so the line is there when the parent returns.
        log::info!("ready");
        if let Some(pipe) = self.take_ready_pipe() {
            pipe.ready();
        }
        if let Some(sock) = &self.notify_socket {
            if let Err(e) = notify_systemd(sock, "READY=1") {
                log::warn!("cannot notify systemd at {}: {e}", sock.to_string_lossy());
            }
        }
    }

    /// Whether `SIGTERM`/`SIGINT` arrived (or [`Daemon::request_shutdown`]
    /// was called).
    pub fn shutdown_requested(&self) -> bool {
        self.shutdown_rx.is_closed()
    }

    /// Asks the daemon to stop, as `SIGTERM` does (for bodies that decide to
    /// stop on their own, e.g. masterd finding it is not the master).
    pub fn request_shutdown(&self) {
        self.shutdown_tx.close();
    }

    /// Completes when shutdown is requested. Runs on any executor; clone-free
    /// for the caller (the future owns what it needs).
    pub fn wait_for_shutdown(&self) -> impl Future<Output = ()> + Send + 'static {
        let rx = self.shutdown_rx.clone();
        async move {
            // No message is ever sent; recv returns when the channel closes.
            let _ = rx.recv().await;
        }
    }

    /// This daemon's log file.
    pub fn log_file(&self) -> PathBuf {
        self.paths.log_file(log_base(self.name))
    }

    fn take_ready_pipe(&self) -> Option<ReadyWriter> {
        self.ready_pipe
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

/// Sends one systemd notification datagram (`sd_notify`). Paths starting
/// with `@` name Linux abstract sockets.
fn notify_systemd(socket: &std::ffi::OsStr, message: &str) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let bytes = socket.as_bytes();
    let addr = match bytes.split_first() {
        Some((b'@', abstract_name)) => SocketAddr::from_abstract_name(abstract_name)?,
        _ => SocketAddr::from_pathname(Path::new(socket))?,
    };
    let sock = UnixDatagram::unbound()?;
    sock.send_to_addr(message.as_bytes(), &addr)?;
    Ok(())
}

/// Runs a daemon: parses the common options, goes to the background
/// unless `-f`, prepares the process (directories, logging, pid file,
/// `mlockall`, signals) and calls `body`. Returns the exit code.
pub fn run(
    name: &'static str,
    args: &[String],
    body: impl FnOnce(&Daemon) -> Result<(), DaemonError>,
) -> u8 {
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let opts = match <DaemonArgs as argh::FromArgs>::from_args(&[name], &argv) {
        Ok(o) => o,
        Err(early) => return print_early_exit(&early),
    };
    let paths = match Paths::from_env() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{name}: {}", chain(&DaemonError::Paths(e)));
            return 1;
        }
    };
    // Taken (and removed from the environment) while single-threaded.
    let ready_pipe = ReadyWriter::from_env(READY_FD_ENV);
    if !opts.foreground {
        return start_in_background(name, args, &paths);
    }
    if let Some(pipe) = &ready_pipe {
        // We are the re-executed background child: leave the caller's
        // session, terminal and descriptors behind.
        let _ = sys::proc::close_inherited_fds(&[pipe.raw_fd()]);
        let _ = sys::proc::new_session();
    }
    // Re-run through /proc/self/exe we would show up as `exe` in ps.
    let _ = sys::proc::set_process_name(name);
    let notify_socket = std::env::var_os(NOTIFY_SOCKET_ENV);
    if notify_socket.is_some() {
        // Programs we run must not talk to systemd in our name.
        std::env::remove_var(NOTIFY_SOCKET_ENV);
    }
    if std::env::var_os(BLOCKING_MAX_THREADS_ENV).is_none() {
        // Read by smol's blocking pool on first use; set while we are still
        // single-threaded.
        std::env::set_var(
            BLOCKING_MAX_THREADS_ENV,
            constants::DAEMON_BLOCKING_MAX_THREADS.to_string(),
        );
    }
    let daemon = Daemon::new(name, paths, opts, ready_pipe, notify_socket);
    serve(daemon, body)
}

#[allow(clippy::print_stdout)]
fn print_early_exit(early: &argh::EarlyExit) -> u8 {
    match early.status {
        Ok(()) => {
            println!("{}", early.output);
            0
        }
        Err(()) => {
            eprintln!("{}", early.output);
            1
        }
    }
}

/// The parent side of background mode: re-runs ourselves with `-f` and
/// waits for the child's word on the readiness pipe.
fn start_in_background(name: &'static str, args: &[String], paths: &Paths) -> u8 {
    use std::os::fd::AsRawFd;
    let log_file = paths.log_file(log_base(name));
    let fail = |e: Box<dyn std::error::Error + Send + Sync>| {
        eprintln!(
            "{name}: {}",
            chain(&DaemonError::Background { name, source: e })
        );
        1
    };
    let (reader, child_end) = match sys::proc::ready_pipe() {
        Ok(p) => p,
        Err(e) => return fail(e.into()),
    };
    let mut child_args = vec!["-f".to_string()];
    child_args.extend(args.iter().cloned());
    let env = [(READY_FD_ENV.to_string(), child_end.as_raw_fd().to_string())];
    let mut child = match sys::cmd::spawn_self(name, &child_args, &env) {
        Ok(c) => c,
        Err(e) => return fail(e.into()),
    };
    drop(child_end);
    let timeout = Duration::from_secs(constants::DAEMON_START_TIMEOUT_SECS);
    match reader.wait(timeout) {
        ReadyOutcome::Ready => 0,
        ReadyOutcome::Failed(msg) => {
            let _ = child.wait();
            eprintln!("{}", with_program(name, &msg));
            1
        }
        ReadyOutcome::Died => {
            let status = child
                .wait()
                .map_or_else(|e| format!("unknown status ({e})"), |s| s.to_string());
            eprintln!(
                "{name}: exited ({status}) before it was ready; see {}",
                log_file.display()
            );
            1
        }
        ReadyOutcome::TimedOut => {
            eprintln!(
                "{name}: not ready after {} s (pid {}, still running); see {}",
                timeout.as_secs(),
                child.id(),
                log_file.display()
            );
            1
        }
    }
}

/// `name: msg`, unless the message names the program already.
fn with_program(name: &str, msg: &str) -> String {
    if msg.starts_with(name) {
        msg.to_string()
    } else {
        format!("{name}: {msg}")
    }
}

/// The daemon process proper.
fn serve(daemon: Daemon, body: impl FnOnce(&Daemon) -> Result<(), DaemonError>) -> u8 {
    let name = daemon.name;
    let foreground_terminal = daemon.ready_pipe_is_none();
    // Before logging works, errors go to stderr and the waiting parent.
    let early_fail = |daemon: &Daemon, e: DaemonError| {
        let msg = chain(&e);
        eprintln!("{}", with_program(name, &msg));
        if let Some(pipe) = daemon.take_ready_pipe() {
            pipe.failed(&msg);
        }
        1
    };
    for dir in [
        (daemon.paths.run_dir(), RUN_DIR_MODE),
        (daemon.paths.log_dir(), LOG_DIR_MODE),
    ] {
        if let Err(e) = sys::fs::ensure_dir(&dir.0, dir.1) {
            return early_fail(&daemon, DaemonError::Dirs(e));
        }
    }
    let logger = Arc::new(DaemonLogger::open(LogConfig {
        program: name.to_string(),
        file: daemon.log_file(),
        // A virtual node's console is under its root (usually absent, so
        // the fallback goes on to stderr): test clusters never write to the
        // machine's real console.
        console: if daemon.paths.is_virtual() {
            daemon.paths.under_root(CONSOLE)
        } else {
            PathBuf::from(CONSOLE)
        },
        level: if daemon.args.debug {
            log::LevelFilter::Debug
        } else {
            log::LevelFilter::Info
        },
        echo_stderr: daemon.args.debug && foreground_terminal,
    }));
    logger.install();
    log::info!(
        "{name} (ganeti-rs {}) starting, root {}",
        constants::RELEASE_VERSION,
        daemon.paths.root().display()
    );

    // Logs the error once and tells the waiting parent.
    let fail = |daemon: &Daemon, e: DaemonError| {
        let msg = chain(&e);
        log::error!("{msg}");
        if foreground_terminal && !logger.echoes_to_stderr() {
            eprintln!("{}", with_program(name, &msg));
        }
        if let Some(pipe) = daemon.take_ready_pipe() {
            pipe.failed(&msg);
        }
        1
    };

    // Signal handling comes first: from the moment the pid file names us,
    // a SIGTERM must mean a clean stop, not the default of dying at once.
    let handler_logger = Arc::clone(&logger);
    let shutdown = daemon.shutdown_tx.clone();
    let signals = sys::signal::spawn_handler(move |sig| match sig {
        DaemonSignal::Shutdown => {
            log::info!("received a termination signal, shutting down");
            shutdown.close();
        }
        DaemonSignal::ReopenLogs => {
            handler_logger.reopen();
            log::info!("received SIGHUP, reopened the log file");
        }
    });
    if let Err(e) = signals {
        return fail(&daemon, DaemonError::Signals(e));
    }

    let pid_file = match PidFile::lock(&daemon.paths.pid_file(name)) {
        Ok(PidLock::Acquired(p)) => p,
        Ok(PidLock::Held { pid }) => {
            return fail(&daemon, DaemonError::AlreadyRunning { name, pid });
        }
        Err(e) => return fail(&daemon, DaemonError::PidFile(e)),
    };

    if daemon.args.no_mlock {
        log::debug!("not locking memory (--no-mlock)");
    } else if let Err(e) = sys::proc::mlockall() {
        // Ganeti carries on without the lock too (e.g. when not root).
        log::warn!("cannot lock memory with mlockall, continuing without: {e}");
    }

    let result = body(&daemon);
    if let Err(e) = pid_file.remove() {
        log::warn!("{}", chain(&e));
    }
    match result {
        Ok(()) => {
            log::info!("stopped");
            logger.flush_sink();
            0
        }
        Err(e) => {
            let code = fail(&daemon, e);
            log::info!("stopped");
            logger.flush_sink();
            code
        }
    }
}

impl Daemon {
    fn ready_pipe_is_none(&self) -> bool {
        self.ready_pipe
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }
}

/// Where and how a daemon logs.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Program name in each line (`ganeti-masterd`).
    pub program: String,
    /// The log file (`/var/log/ganeti/master-daemon.log`).
    pub file: PathBuf,
    /// The fallback when the file fails ([`CONSOLE`] in production).
    pub console: PathBuf,
    /// Messages below this level are dropped.
    pub level: log::LevelFilter,
    /// Also write each line to stderr (foreground debugging).
    pub echo_stderr: bool,
}

/// Where log lines currently go.
#[derive(Debug)]
enum Sink {
    File(File),
    Console(File),
    Stderr,
}

/// The daemons' `log::Log` implementation: one line per event,
/// `2026-11-21 19:00:00,123: ganeti-masterd pid=123 INFO message`
/// (Ganeti's format; the time is UTC), to the log file, falling back to the
/// console and then stderr when the file fails, never stopping the daemon.
#[derive(Debug)]
pub struct DaemonLogger {
    config: LogConfig,
    sink: Mutex<Sink>,
}

impl DaemonLogger {
    /// Opens the log file (or its fallback).
    pub fn open(config: LogConfig) -> Self {
        let sink = open_sink(&config);
        DaemonLogger {
            config,
            sink: Mutex::new(sink),
        }
    }

    /// Makes this the process's logger. If another logger is installed
    /// already (only possible when `run` is called twice in one process),
    /// that one stays.
    pub fn install(self: &Arc<Self>) {
        let level = self.config.level;
        if log::set_boxed_logger(Box::new(SharedLogger(Arc::clone(self)))).is_ok() {
            log::set_max_level(level);
        }
    }

    /// Opens the log file again (after rotation, on `SIGHUP`); also the way
    /// back from the console once the file works again.
    pub fn reopen(&self) {
        let new = open_sink(&self.config);
        *self.sink.lock().unwrap_or_else(|p| p.into_inner()) = new;
    }

    /// Whether lines are echoed to stderr.
    pub fn echoes_to_stderr(&self) -> bool {
        self.config.echo_stderr
    }

    /// Where lines go now: `Some(path)` for the file or console, `None`
    /// for stderr.
    pub fn current_target(&self) -> Option<PathBuf> {
        match &*self.sink.lock().unwrap_or_else(|p| p.into_inner()) {
            Sink::File(_) => Some(self.config.file.clone()),
            Sink::Console(_) => Some(self.config.console.clone()),
            Sink::Stderr => None,
        }
    }

    /// Writes one event.
    pub fn write_event(&self, level: log::Level, message: &str) {
        let line = format_line(
            SystemTime::now(),
            &self.config.program,
            sys::proc::pid(),
            level,
            message,
        );
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        write_to_sink(&mut sink, &self.config, &line);
        if self.config.echo_stderr && !matches!(*sink, Sink::Stderr) {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }

    fn flush_sink(&self) {
        if let Sink::File(f) = &*self.sink.lock().unwrap_or_else(|p| p.into_inner()) {
            let _ = f.sync_data();
        }
    }
}

/// Opens the file; on failure the console, writing a line there saying why;
/// on failure stderr.
fn open_sink(config: &LogConfig) -> Sink {
    match sys::fs::open_append(&config.file, LOG_FILE_MODE) {
        Ok(f) => Sink::File(f),
        Err(e) => {
            let mut sink = fallback_sink(config);
            let why = format!(
                "cannot open log file {}: {e}; logging here instead",
                config.file.display()
            );
            let line = format_line(
                SystemTime::now(),
                &config.program,
                sys::proc::pid(),
                log::Level::Warn,
                &why,
            );
            write_to_sink(&mut sink, config, &line);
            sink
        }
    }
}

fn fallback_sink(config: &LogConfig) -> Sink {
    match sys::fs::open_terminal(&config.console) {
        Ok(f) => Sink::Console(f),
        Err(_) => Sink::Stderr,
    }
}

/// Writes `line`, moving down the chain file → console → stderr on failure.
fn write_to_sink(sink: &mut Sink, config: &LogConfig, line: &str) {
    loop {
        let result = match sink {
            Sink::File(f) | Sink::Console(f) => f.write_all(line.as_bytes()),
            Sink::Stderr => {
                let _ = std::io::stderr().write_all(line.as_bytes());
                return;
            }
        };
        let Err(e) = result else { return };
        let (failed, next) = match sink {
            Sink::File(_) => (&config.file, fallback_sink(config)),
            _ => (&config.console, Sink::Stderr),
        };
        let notice = format_line(
            SystemTime::now(),
            &config.program,
            sys::proc::pid(),
            log::Level::Warn,
            &format!(
                "cannot write to {}: {e}; logging here until SIGHUP",
                failed.display()
            ),
        );
        *sink = next;
        // The notice goes first, then the line itself is retried.
        match sink {
            Sink::File(f) | Sink::Console(f) => {
                let _ = f.write_all(notice.as_bytes());
            }
            Sink::Stderr => {
                let _ = std::io::stderr().write_all(notice.as_bytes());
            }
        }
    }
}

/// Installed as the global logger; shares the daemon's [`DaemonLogger`]
/// with the signal handler that reopens it.
struct SharedLogger(Arc<DaemonLogger>);

impl log::Log for SharedLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.0.config.level
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            self.0
                .write_event(record.level(), &record.args().to_string());
        }
    }

    fn flush(&self) {
        self.0.flush_sink();
    }
}

/// One log line in Ganeti's format, newline included.
fn format_line(
    when: SystemTime,
    program: &str,
    pid: u32,
    level: log::Level,
    message: &str,
) -> String {
    // Python's level names, as Ganeti's logs show them.
    let level = match level {
        log::Level::Error => "ERROR",
        log::Level::Warn => "WARNING",
        log::Level::Info => "INFO",
        log::Level::Debug | log::Level::Trace => "DEBUG",
    };
    format!(
        "{}: {program} pid={pid} {level} {message}\n",
        format_timestamp(when)
    )
}

/// `YYYY-MM-DD HH:MM:SS,mmm` in UTC (Python logging's `asctime` layout).
fn format_timestamp(when: SystemTime) -> String {
    crate::sys::time::format_log_stamp(crate::sys::time::secs_of(when))
}

/// The address a daemon listens on: `-b` if given, else this node's own
/// address on a virtual cluster, else the wildcard of `family` (the
/// cluster's primary IP family).
pub fn bind_address(
    arg: Option<&str>,
    paths: &Paths,
    family: crate::net::hostname::IpFamily,
) -> Result<std::net::IpAddr, String> {
    if let Some(a) = arg {
        return a
            .parse()
            .map_err(|_| format!("-b {a:?} is not an IP address"));
    }
    if paths.is_virtual() {
        return crate::net::hostname::resolve(paths, &paths.hostname(), family)
            .map(|h| h.ip)
            .map_err(|e| chain(&e));
    }
    Ok(match family {
        crate::net::hostname::IpFamily::V6 => std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        crate::net::hostname::IpFamily::V4 => std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ganeti-daemons-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn config(file: PathBuf, console: PathBuf) -> LogConfig {
        LogConfig {
            program: "ganeti-masterd".into(),
            file,
            console,
            level: log::LevelFilter::Info,
            echo_stderr: false,
        }
    }

    #[test]
    fn args_parse_like_ganeti() {
        let a = <DaemonArgs as argh::FromArgs>::from_args(
            &["ganeti-noded"],
            &["-f", "-d", "--no-mlock", "-b", "127.0.0.2", "-p", "1811"],
        )
        .unwrap();
        assert_eq!(
            a,
            DaemonArgs {
                foreground: true,
                debug: true,
                no_mlock: true,
                bind: Some("127.0.0.2".into()),
                port: Some(1811),
                ..DaemonArgs::default()
            }
        );
        let help =
            <DaemonArgs as argh::FromArgs>::from_args(&["ganeti-noded"], &["--help"]).unwrap_err();
        assert!(help.status.is_ok());
        assert!(help.output.contains("--no-mlock"));
        let bad =
            <DaemonArgs as argh::FromArgs>::from_args(&["ganeti-noded"], &["--frob"]).unwrap_err();
        assert!(bad.status.is_err());
    }

    #[test]
    fn log_file_names_are_ganetis() {
        assert_eq!(log_base("ganeti-masterd"), "master-daemon");
        assert_eq!(log_base("ganeti-noded"), "node-daemon");
        assert_eq!(log_base("ganeti-confd"), "conf-daemon");
        assert_eq!(log_base("ganeti-rapi"), "rapi-daemon");
        assert_eq!(log_base("ganeti-watcher"), "watcher");
    }

    #[test]
    fn line_format_matches_ganeti() {
        // 2026-11-21 19:00:00.123 UTC
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_287_600_123);
        assert_eq!(
            format_line(t, "ganeti-masterd", 123, log::Level::Info, "hello"),
            "2026-11-21 19:00:00,123: ganeti-masterd pid=123 INFO hello\n"
        );
    }

    #[test]
    fn logs_to_the_file_and_reopens_after_rotation() {
        let d = tempdir("rotate");
        let file = d.join("master-daemon.log");
        let logger = DaemonLogger::open(config(file.clone(), d.join("console")));
        logger.write_event(log::Level::Info, "one");
        std::fs::rename(&file, d.join("master-daemon.log.1")).unwrap();
        logger.write_event(log::Level::Info, "two");
        logger.reopen();
        logger.write_event(log::Level::Warn, "three");
        let old = std::fs::read_to_string(d.join("master-daemon.log.1")).unwrap();
        let new = std::fs::read_to_string(&file).unwrap();
        assert!(
            old.contains(" INFO one\n") && old.contains(" INFO two\n"),
            "{old}"
        );
        assert!(new.ends_with(" WARNING three\n"), "{new}");
        assert_eq!(new.lines().count(), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn unopenable_log_file_falls_back_to_console_then_stderr() {
        let d = tempdir("fallback");
        // A regular file where the log directory should be: the open fails
        // even for root.
        File::create(d.join("not-a-dir")).unwrap();
        let file = d.join("not-a-dir/master-daemon.log");
        let console = d.join("console");
        File::create(&console).unwrap();
        let logger = DaemonLogger::open(config(file.clone(), console.clone()));
        assert_eq!(logger.current_target(), Some(console.clone()));
        logger.write_event(log::Level::Info, "still here");
        let text = std::fs::read_to_string(&console).unwrap();
        assert!(text.contains("cannot open log file"), "{text}");
        assert!(text.contains(" INFO still here\n"), "{text}");

        // No console either: stderr, and no panic.
        let logger = DaemonLogger::open(config(file, d.join("no-such-dir/console")));
        assert_eq!(logger.current_target(), None);
        logger.write_event(log::Level::Info, "to stderr");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn full_disk_falls_back_while_running() {
        let d = tempdir("full");
        let console = d.join("console");
        File::create(&console).unwrap();
        // /dev/full opens fine and fails every write with ENOSPC.
        let logger = DaemonLogger::open(config(PathBuf::from("/dev/full"), console.clone()));
        assert_eq!(logger.current_target(), Some(PathBuf::from("/dev/full")));
        logger.write_event(log::Level::Error, "disk trouble");
        assert_eq!(logger.current_target(), Some(console.clone()));
        let text = std::fs::read_to_string(&console).unwrap();
        assert!(text.contains("cannot write to /dev/full"), "{text}");
        assert!(text.ends_with(" ERROR disk trouble\n"), "{text}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn shutdown_is_broadcast_to_every_waiter() {
        let daemon = Daemon::new(
            "ganeti-masterd",
            Paths::production(),
            DaemonArgs::default(),
            None,
            None,
        );
        assert!(!daemon.shutdown_requested());
        let a = daemon.wait_for_shutdown();
        let b = daemon.wait_for_shutdown();
        daemon.ready();
        daemon.ready(); // second call is a no-op
        daemon.request_shutdown();
        assert!(daemon.shutdown_requested());
        smol::block_on(async {
            a.await;
            b.await;
        });
    }

    #[test]
    fn notifies_systemd_over_a_datagram_socket() {
        let d = tempdir("notify");
        let path = d.join("notify");
        let server = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let daemon = Daemon::new(
            "ganeti-noded",
            Paths::production(),
            DaemonArgs::default(),
            None,
            Some(path.clone().into_os_string()),
        );
        daemon.ready();
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
