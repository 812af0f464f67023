//! Running external programs.
//!
//! Every external program runs through a [`Runner`]: argv is a list (never a
//! shell string), and a failure carries the command line, exit status,
//! stdout and stderr. [`RealRunner`] runs programs; [`RecordingRunner`]
//! records them and answers from a script, for tests of code whose tools
//! cannot run on a given machine (LVM, DRBD, `ip`).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;

/// One command to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Extra environment variables (added to the inherited ones).
    pub env: Vec<(String, String)>,
    /// Working directory, if not the current one.
    pub cwd: Option<PathBuf>,
    /// File to read standard input from (default: `/dev/null`). This and
    /// `stdout` are honoured by [`Runner::run`]; the other ways of starting
    /// a program here ignore them.
    pub stdin: Option<PathBuf>,
    /// File to write standard output to, created mode 0600 or truncated
    /// (default: captured into [`Output::stdout`]). For binary streams
    /// such as an OS `export` script's dump.
    pub stdout: Option<PathBuf>,
}

impl Command {
    /// A command from a program and its arguments.
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Command {
            argv: argv.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            cwd: None,
            stdin: None,
            stdout: None,
        }
    }

    /// Reads standard input from `path`.
    pub fn stdin_from(mut self, path: impl Into<PathBuf>) -> Self {
        self.stdin = Some(path.into());
        self
    }

    /// Writes standard output to `path` instead of capturing it.
    pub fn stdout_to(mut self, path: impl Into<PathBuf>) -> Self {
        self.stdout = Some(path.into());
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The command line for messages.
    pub fn display(&self) -> String {
        self.argv.join(" ")
    }
}

/// What a finished command produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// A command that could not run or did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    /// The program could not be started.
    #[error("cannot run `{cmdline}`")]
    Spawn {
        /// The command line.
        cmdline: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It ran and failed.
    #[error("`{cmdline}` failed with {}: {}", status_text(*code), failure_text(stdout, stderr))]
    Failed {
        /// The command line.
        cmdline: String,
        /// Exit code; `None` if killed by a signal.
        code: Option<i32>,
        /// Its standard output.
        stdout: String,
        /// Its standard error.
        stderr: String,
    },
}

fn status_text(code: Option<i32>) -> String {
    match code {
        Some(c) => format!("exit code {c}"),
        None => "a signal".to_string(),
    }
}

fn failure_text(stdout: &str, stderr: &str) -> String {
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    text.trim().to_string()
}

/// Something that runs commands.
pub trait Runner: Send + Sync {
    /// Runs `cmd` to completion, capturing its output; a non-zero exit is an error.
    fn run(&self, cmd: &Command) -> Result<Output, CmdError>;
}

/// Runs real programs.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealRunner;

impl Runner for RealRunner {
    fn run(&self, cmd: &Command) -> Result<Output, CmdError> {
        let Some((prog, args)) = cmd.argv.split_first() else {
            return Err(CmdError::Spawn {
                cmdline: String::new(),
                source: std::io::Error::other("empty command line"),
            });
        };
        #[allow(clippy::disallowed_methods)] // this is the one sanctioned place
        let mut c = std::process::Command::new(prog);
        c.args(args).stdin(std::process::Stdio::null());
        if let Some(p) = &cmd.stdin {
            let f = std::fs::File::open(p).map_err(|source| CmdError::Spawn {
                cmdline: format!("{} < {}", cmd.display(), p.display()),
                source,
            })?;
            c.stdin(f);
        }
        if let Some(p) = &cmd.stdout {
            use std::os::unix::fs::OpenOptionsExt;
            let f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(p)
                .map_err(|source| CmdError::Spawn {
                    cmdline: format!("{} > {}", cmd.display(), p.display()),
                    source,
                })?;
            c.stdout(f);
        }
        for (k, v) in &cmd.env {
            c.env(k, v);
        }
        if let Some(d) = &cmd.cwd {
            c.current_dir(d);
        }
        let out = c.output().map_err(|source| CmdError::Spawn {
            cmdline: cmd.display(),
            source,
        })?;
        let output = Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        if out.status.success() {
            Ok(output)
        } else {
            Err(CmdError::Failed {
                cmdline: cmd.display(),
                code: output.code,
                stdout: output.stdout,
                stderr: output.stderr,
            })
        }
    }
}

/// Runs a program attached to our terminal (stdin, stdout and stderr
/// inherited) and waits for it; returns its exit code (`None` when killed
/// by a signal). For interactive commands such as `gnt-instance console`.
pub fn run_interactive(cmd: &Command) -> Result<Option<i32>, CmdError> {
    let Some((prog, args)) = cmd.argv.split_first() else {
        return Err(CmdError::Spawn {
            cmdline: String::new(),
            source: std::io::Error::other("empty command line"),
        });
    };
    #[allow(clippy::disallowed_methods)] // this is the one sanctioned place
    let mut c = std::process::Command::new(prog);
    c.args(args);
    for (k, v) in &cmd.env {
        c.env(k, v);
    }
    if let Some(d) = &cmd.cwd {
        c.current_dir(d);
    }
    let status = c.status().map_err(|source| CmdError::Spawn {
        cmdline: cmd.display(),
        source,
    })?;
    Ok(status.code())
}

/// Spawns a program detached from us (new session, stdio to /dev/null),
/// returning its pid. Used to start daemons in the background.
pub fn spawn_detached(cmd: &Command) -> Result<u32, CmdError> {
    use std::os::unix::process::CommandExt;
    let Some((prog, args)) = cmd.argv.split_first() else {
        return Err(CmdError::Spawn {
            cmdline: String::new(),
            source: std::io::Error::other("empty command line"),
        });
    };
    #[allow(clippy::disallowed_methods)] // this is the one sanctioned place
    let mut c = std::process::Command::new(prog);
    c.args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0);
    for (k, v) in &cmd.env {
        c.env(k, v);
    }
    let child = c.spawn().map_err(|source| CmdError::Spawn {
        cmdline: cmd.display(),
        source,
    })?;
    Ok(child.id())
}

/// Starts this very executable again as program `arg0` (so that `argv[0]`
/// dispatch picks the daemon) with `args`, stdio on /dev/null. Used by a
/// daemon to put itself in the background; the child inherits descriptors
/// without close-on-exec (its readiness pipe).
pub fn spawn_self(
    arg0: &str,
    args: &[String],
    env: &[(String, String)],
) -> Result<std::process::Child, CmdError> {
    use std::os::unix::process::CommandExt;
    let exe = "/proc/self/exe";
    let cmdline = format!("{exe} (as {arg0}) {}", args.join(" "));
    #[allow(clippy::disallowed_methods)] // this is the one sanctioned place
    let mut c = std::process::Command::new(exe);
    c.arg0(arg0)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn()
        .map_err(|source| CmdError::Spawn { cmdline, source })
}

/// What [`run_capped`] collected from a command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CappedOutput {
    /// Exit code; 128 + the signal number when a signal ended it.
    pub exit_code: i32,
    /// Standard output and error, interleaved as written, at most the cap.
    pub output: Vec<u8>,
    /// Whether output beyond the cap was dropped.
    pub truncated: bool,
    /// Whether the timeout expired and the command's process group was killed.
    pub timed_out: bool,
}

/// Runs `cmd` in a process group of its own with stdout and stderr on one
/// pipe, keeping at most `cap_bytes` of what it writes (the rest is read
/// and dropped, so the command never blocks on a full pipe). After
/// `timeout` the whole group gets `SIGKILL`. A non-zero exit is not an
/// error here: the caller reports the exit code (`gnt-cluster command`).
pub fn run_capped(
    cmd: &Command,
    timeout: std::time::Duration,
    cap_bytes: usize,
) -> Result<CappedOutput, CmdError> {
    use std::io::Read;
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::time::{Duration, Instant};
    let spawn_err = |source: std::io::Error| CmdError::Spawn {
        cmdline: cmd.display(),
        source,
    };
    let Some((prog, args)) = cmd.argv.split_first() else {
        return Err(spawn_err(std::io::Error::other("empty command line")));
    };
    let (read_end, write_end) = rustix::pipe::pipe().map_err(|e| spawn_err(e.into()))?;
    let write_end2 = write_end.try_clone().map_err(spawn_err)?;
    let mut child = {
        #[allow(clippy::disallowed_methods)] // this is the one sanctioned place
        let mut c = std::process::Command::new(prog);
        c.args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::from(write_end))
            .stderr(std::process::Stdio::from(write_end2))
            .process_group(0);
        for (k, v) in &cmd.env {
            c.env(k, v);
        }
        if let Some(d) = &cmd.cwd {
            c.current_dir(d);
        }
        c.spawn().map_err(spawn_err)?
        // `c` drops here, closing our copies of the write ends, so the
        // reader sees end-of-file once the command's processes are gone.
    };
    let group = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw);
    let kill_group = || {
        if let Some(pid) = group {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    };
    let collected = std::sync::Arc::new(Mutex::new((Vec::new(), false)));
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let sink = std::sync::Arc::clone(&collected);
    std::thread::spawn(move || {
        let mut pipe = std::fs::File::from(read_end);
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let mut g = sink.lock().unwrap_or_else(|p| p.into_inner());
                    let room = cap_bytes.saturating_sub(g.0.len());
                    let take = n.min(room);
                    g.0.extend_from_slice(&buf[..take]);
                    if take < n {
                        g.1 = true;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let _ = done_tx.send(());
    });
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(_) => break None,
        }
        let now = Instant::now();
        if now >= deadline {
            timed_out = true;
            kill_group();
            break child.wait().ok();
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(10)));
    };
    // Background children may still hold the pipe: wait for them until the
    // deadline, then kill what is left of the group.
    let left = deadline.saturating_duration_since(Instant::now());
    if done_rx.recv_timeout(left).is_err() {
        kill_group();
        let _ = done_rx.recv_timeout(Duration::from_secs(1));
    }
    let exit_code = match status {
        Some(s) => s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)),
        None => -1,
    };
    let (output, truncated) =
        std::mem::take(&mut *collected.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(CappedOutput {
        exit_code,
        output,
        truncated,
        timed_out,
    })
}

/// Records every command and answers from a queue of scripted outputs
/// (default: success with empty output). Shared by all tests that need it.
#[derive(Debug, Default)]
pub struct RecordingRunner {
    calls: Mutex<Vec<Command>>,
    answers: Mutex<VecDeque<Result<Output, String>>>,
}

impl RecordingRunner {
    /// A runner whose commands all succeed with no output.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues the answer to the next unanswered command: `Ok(stdout)` or
    /// `Err(stderr)` (exit code 1).
    pub fn push_answer(&self, answer: Result<&str, &str>) {
        let a = match answer {
            Ok(out) => Ok(Output {
                code: Some(0),
                stdout: out.to_string(),
                stderr: String::new(),
            }),
            Err(err) => Err(err.to_string()),
        };
        self.answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(a);
    }

    /// The commands run so far.
    pub fn calls(&self) -> Vec<Command> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Runner for RecordingRunner {
    fn run(&self, cmd: &Command) -> Result<Output, CmdError> {
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(cmd.clone());
        let next = self
            .answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front();
        match next {
            None => Ok(Output {
                code: Some(0),
                ..Output::default()
            }),
            Some(Ok(o)) => Ok(o),
            Some(Err(stderr)) => Err(CmdError::Failed {
                cmdline: cmd.display(),
                code: Some(1),
                stdout: String::new(),
                stderr,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_runner_reports_failures_with_output() {
        let ok = RealRunner
            .run(&Command::new(["sh", "-c", "echo hi"]))
            .unwrap();
        assert_eq!(ok.stdout, "hi\n");
        let err = RealRunner
            .run(&Command::new(["sh", "-c", "echo boom >&2; exit 3"]))
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("exit code 3") && msg.contains("boom"), "{msg}");
    }

    #[test]
    fn real_runner_redirects_stdin_and_stdout_to_files() {
        let dir = std::env::temp_dir().join(format!("ganeti-rs-cmd-io-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (input, output) = (dir.join("in"), dir.join("out"));
        crate::sys::fs::atomic_write(&input, b"\x00\xffbinary\n", 0o600).unwrap();
        let cmd = Command::new(["sh", "-c", "cat; echo note >&2"])
            .stdin_from(&input)
            .stdout_to(&output);
        let out = RealRunner.run(&cmd).unwrap();
        assert_eq!(out.stdout, "", "stdout went to the file");
        assert_eq!(out.stderr, "note\n");
        assert_eq!(std::fs::read(&output).unwrap(), b"\x00\xffbinary\n");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&output).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let missing = Command::new(["cat"]).stdin_from(dir.join("none"));
        let e = RealRunner.run(&missing).unwrap_err().to_string();
        assert!(e.contains("none"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn capped_run_interleaves_caps_and_times_out() {
        let sh = |script: &str| Command::new(["/bin/sh", "-c", script]);
        let secs = std::time::Duration::from_secs;
        let out = run_capped(&sh("echo out; echo err >&2; exit 7"), secs(30), 1024).unwrap();
        assert_eq!(out.exit_code, 7);
        assert_eq!(String::from_utf8_lossy(&out.output), "out\nerr\n");
        assert!(!out.truncated && !out.timed_out);

        let big = run_capped(&sh("head -c 100000 /dev/zero"), secs(30), 1000).unwrap();
        assert_eq!(
            (big.output.len(), big.truncated, big.exit_code),
            (1000, true, 0)
        );

        let slow = run_capped(&sh("echo started; exec sleep 1000"), secs(1), 1024).unwrap();
        assert!(slow.timed_out);
        assert_eq!(slow.exit_code, 128 + 9);
        assert_eq!(String::from_utf8_lossy(&slow.output), "started\n");

        assert!(run_capped(&Command::new(["/nonexistent/prog"]), secs(5), 10).is_err());
    }

    #[test]
    fn recording_runner_records_and_answers() {
        let r = RecordingRunner::new();
        r.push_answer(Err("no such device"));
        assert!(r.run(&Command::new(["ip", "addr", "add"])).is_err());
        assert!(r.run(&Command::new(["true"])).is_ok());
        assert_eq!(r.calls().len(), 2);
    }
}
