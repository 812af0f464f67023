//! `ganeti daemon-util`: start, stop and check the daemons of this node.
//!
//! Like Ganeti's `daemon-util` (a shell script there), minus the systemd
//! and start-stop-daemon paths: our daemons background themselves and lock
//! their pid files, so this module only needs the binary's own background
//! mode ([`crate::daemons::run`]) and the pid-file lock
//! ([`crate::sys::fs::PidFile`]).
//!
//! Which daemons a node runs follows from its ssconf files: `ganeti-noded`
//! everywhere, `ganeti-confd` on master candidates, `ganeti-masterd` and
//! `ganeti-rapi` on the master. Daemons not built yet are skipped with a
//! line saying so.

use std::time::{Duration, Instant};

use crate::applets::{self, EXIT_NOT_IMPLEMENTED};
use crate::constants::DAEMON_STOP_TIMEOUT_SECS;
use crate::error::chain;
use crate::paths::Paths;
use crate::sys::fs::{PidFile, PidProbe};
use crate::sys::proc::{self, StopSignal};

/// The daemons `daemon-util` manages, in start order (stop order is the
/// reverse). The watcher is not one: a timer runs it.
pub const MANAGED_DAEMONS: &[&str] = &[
    "ganeti-noded",
    "ganeti-confd",
    "ganeti-masterd",
    "ganeti-rapi",
];

/// How long to wait for a daemon to vanish after `SIGKILL`.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// Polling interval while waiting for a daemon to stop.
const STOP_POLL: Duration = Duration::from_millis(50);

/// What this node is in the cluster, from its ssconf files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `ssconf_master_node` names this node.
    Master,
    /// `ssconf_master_candidates` lists this node.
    Candidate,
    /// Any other node, including one not in a cluster yet.
    Regular,
}

/// Reads this node's role from `ssconf_master_node` and
/// `ssconf_master_candidates` (missing files: [`Role::Regular`]).
pub fn node_role(paths: &Paths) -> Role {
    let me = paths.hostname();
    let read = |key: &str| std::fs::read_to_string(paths.ssconf_file(key)).unwrap_or_default();
    if read("master_node").trim() == me {
        Role::Master
    } else if read("master_candidates").lines().any(|l| l.trim() == me) {
        Role::Candidate
    } else {
        Role::Regular
    }
}

/// The daemons a node with `role` runs, in start order.
pub fn daemons_for(role: Role) -> Vec<&'static str> {
    MANAGED_DAEMONS
        .iter()
        .copied()
        .filter(|d| match *d {
            "ganeti-noded" => true,
            "ganeti-confd" => role != Role::Regular,
            _ => role == Role::Master,
        })
        .collect()
}

/// Entry point: `ganeti daemon-util COMMAND [DAEMON] [ARGS…]`.
pub fn main(program: &str, args: &[String]) -> u8 {
    let Some((command, rest)) = args.split_first() else {
        usage_error(program);
        return 1;
    };
    if matches!(command.as_str(), "-h" | "--help" | "help") {
        print_usage(program);
        return 0;
    }
    let paths = match Paths::from_env() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{program}: {}", chain(&e));
            return 1;
        }
    };
    let one = |f: fn(&Paths, &'static str, &[String]) -> u8| -> u8 {
        let Some((daemon, extra)) = rest.split_first() else {
            eprintln!("{program}: {command} needs a daemon name");
            return 1;
        };
        match MANAGED_DAEMONS.iter().find(|d| **d == daemon.as_str()) {
            Some(d) => f(&paths, d, extra),
            None => {
                eprintln!(
                    "{program}: unknown daemon {daemon:?}; known: {}",
                    MANAGED_DAEMONS.join(", ")
                );
                1
            }
        }
    };
    let no_args = |f: fn(&Paths) -> u8| -> u8 {
        if rest.is_empty() {
            f(&paths)
        } else {
            eprintln!("{program}: {command} takes no arguments");
            1
        }
    };
    match command.as_str() {
        "start" => one(start),
        "stop" => one(|p, d, extra| {
            if extra.is_empty() {
                stop(p, d)
            } else {
                eprintln!("stop takes no arguments after the daemon name");
                1
            }
        }),
        "check" => one(|p, d, _| check(p, d)),
        "start-all" => no_args(start_all),
        "stop-all" => no_args(stop_all),
        "check-all" => no_args(check_all),
        other => {
            eprintln!("{program}: unknown command {other:?}");
            usage_error(program);
            1
        }
    }
}

fn usage_text(program: &str) -> String {
    format!(
        "usage: ganeti {program} start DAEMON [ARGS...]\n       \
         ganeti {program} stop|check DAEMON\n       \
         ganeti {program} start-all|stop-all|check-all\n\
         DAEMON is one of: {}",
        MANAGED_DAEMONS.join(", ")
    )
}

#[allow(clippy::print_stdout)]
fn print_usage(program: &str) {
    println!("{}", usage_text(program));
}

fn usage_error(program: &str) {
    eprintln!("{}", usage_text(program));
}

#[allow(clippy::print_stdout)]
fn say(line: &str) {
    println!("{line}");
}

/// The applet's entry, or why it cannot run yet.
fn entry_of(daemon: &str) -> Result<applets::Entry, &'static str> {
    applets::find(daemon)
        .map(|a| a.entry)
        .unwrap_or(Err("nothing: it is not in the program table"))
}

/// Starts `daemon` with `extra` arguments through its own background mode:
/// returns once it serves, or fails with its reason.
fn start(paths: &Paths, daemon: &'static str, extra: &[String]) -> u8 {
    let entry = match entry_of(daemon) {
        Ok(e) => e,
        Err(comes_with) => {
            eprintln!("{daemon} is not built yet in ganeti-rs; it comes with {comes_with}");
            return EXIT_NOT_IMPLEMENTED;
        }
    };
    if extra.iter().any(|a| a == "-f" || a == "--foreground") {
        eprintln!("daemon-util start runs {daemon} in the background; -f is not allowed");
        return 1;
    }
    match PidFile::probe(&paths.pid_file(daemon)) {
        Ok(PidProbe::Running(pid)) => {
            eprintln!("{daemon} already running (pid {})", show_pid(pid));
            return 1;
        }
        Ok(PidProbe::Absent | PidProbe::Stale) => {}
        Err(e) => {
            eprintln!("{}", chain(&e));
            return 1;
        }
    }
    // Same binary, same environment: the entry re-runs us as `daemon` in
    // the background and waits until it is ready.
    let mut args = default_args(paths, daemon);
    args.extend_from_slice(extra);
    entry(daemon, &args)
}

/// The daemon's arguments from `/etc/default/ganeti` (under the root), as
/// Ganeti's daemon-util reads them: `NODED_ARGS="…"` for `ganeti-noded`,
/// `MASTERD_ARGS` for `ganeti-masterd`, and so on. A missing file or
/// variable means no arguments.
pub fn default_args(paths: &Paths, daemon: &str) -> Vec<String> {
    let text = std::fs::read_to_string(paths.under_root("/etc/default/ganeti")).unwrap_or_default();
    args_from_defaults(&text, daemon)
}

/// Parses `/etc/default/ganeti` text for `daemon`'s `*_ARGS` variable: one
/// `NAME=value` per line, the value optionally in single or double quotes,
/// split on whitespace. `#` lines and `export ` prefixes are ignored.
fn args_from_defaults(text: &str, daemon: &str) -> Vec<String> {
    let var = format!(
        "{}_ARGS",
        daemon.trim_start_matches("ganeti-").to_ascii_uppercase()
    );
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        if name.trim() != var {
            continue;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        // The last assignment wins, as in the shell.
        found = value.split_whitespace().map(str::to_string).collect();
    }
    found
}

fn show_pid(pid: Option<u32>) -> String {
    pid.map_or_else(|| "unknown".to_string(), |p| p.to_string())
}

/// Whether `daemon` (last seen as `pid`) has gone: its pid file is no
/// longer locked and the process has exited.
fn has_stopped(paths: &Paths, daemon: &str, pid: u32) -> bool {
    let unlocked = !matches!(
        PidFile::probe(&paths.pid_file(daemon)),
        Ok(PidProbe::Running(_))
    );
    unlocked && !proc::is_running(pid)
}

fn wait_stopped(paths: &Paths, daemon: &str, pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if has_stopped(paths, daemon, pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(STOP_POLL);
    }
}

/// Stops `daemon`: `SIGTERM`, then `SIGKILL` after
/// [`DAEMON_STOP_TIMEOUT_SECS`]; removes a stale pid file. Succeeds when the
/// daemon is not running afterwards (also when it was not running).
fn stop(paths: &Paths, daemon: &'static str) -> u8 {
    let pid_path = paths.pid_file(daemon);
    let pid = match PidFile::probe(&pid_path) {
        Ok(PidProbe::Absent) => return 0,
        Ok(PidProbe::Stale) => return remove_stale(&pid_path),
        Ok(PidProbe::Running(Some(pid))) => pid,
        Ok(PidProbe::Running(None)) => {
            eprintln!(
                "{daemon} holds {} but the pid in it is unreadable; not stopping it",
                pid_path.display()
            );
            return 1;
        }
        Err(e) => {
            eprintln!("{}", chain(&e));
            return 1;
        }
    };
    if let Err(e) = proc::send_signal(pid, StopSignal::Term) {
        if proc::is_running(pid) {
            eprintln!("cannot send SIGTERM to {daemon} (pid {pid}): {e}");
            return 1;
        }
    }
    let timeout = Duration::from_secs(DAEMON_STOP_TIMEOUT_SECS);
    if !wait_stopped(paths, daemon, pid, timeout) {
        eprintln!("{daemon} (pid {pid}) still running after {DAEMON_STOP_TIMEOUT_SECS} s; sending SIGKILL");
        let _ = proc::send_signal(pid, StopSignal::Kill);
        if !wait_stopped(paths, daemon, pid, KILL_WAIT) {
            eprintln!("{daemon} (pid {pid}) did not die after SIGKILL");
            return 1;
        }
    }
    remove_stale(&pid_path)
}

fn remove_stale(pid_path: &std::path::Path) -> u8 {
    match PidFile::remove_stale(pid_path) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{}", chain(&e));
            1
        }
    }
}

/// Exit 0 if `daemon` runs, else 1 with a message.
fn check(paths: &Paths, daemon: &'static str) -> u8 {
    match PidFile::probe(&paths.pid_file(daemon)) {
        Ok(PidProbe::Running(_)) => 0,
        Ok(PidProbe::Absent | PidProbe::Stale) => {
            eprintln!("{daemon} is not running");
            1
        }
        Err(e) => {
            eprintln!("{}", chain(&e));
            1
        }
    }
}

/// Prints the skip line for a daemon that is not built yet.
fn skip_unbuilt(daemon: &str) -> bool {
    match entry_of(daemon) {
        Ok(_) => false,
        Err(comes_with) => {
            say(&format!(
                "skipping {daemon}: not built yet in ganeti-rs (comes with {comes_with})"
            ));
            true
        }
    }
}

fn start_all(paths: &Paths) -> u8 {
    let mut failed = false;
    for daemon in daemons_for(node_role(paths)) {
        if skip_unbuilt(daemon) {
            continue;
        }
        if let Ok(PidProbe::Running(pid)) = PidFile::probe(&paths.pid_file(daemon)) {
            say(&format!("{daemon} already running (pid {})", show_pid(pid)));
            continue;
        }
        if start(paths, daemon, &[]) != 0 {
            failed = true;
        }
    }
    u8::from(failed)
}

fn stop_all(paths: &Paths) -> u8 {
    let mut failed = false;
    for daemon in MANAGED_DAEMONS.iter().rev() {
        if skip_unbuilt(daemon) {
            continue;
        }
        if stop(paths, daemon) != 0 {
            failed = true;
        }
    }
    u8::from(failed)
}

fn check_all(paths: &Paths) -> u8 {
    let mut failed = false;
    for daemon in daemons_for(node_role(paths)) {
        if skip_unbuilt(daemon) {
            continue;
        }
        if check(paths, daemon) != 0 {
            failed = true;
        }
    }
    u8::from(failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn node(tag: &str) -> Paths {
        let base = std::env::temp_dir().join(format!("ganeti-du-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("node1");
        std::fs::create_dir_all(root.join("var/lib/ganeti")).unwrap();
        std::fs::create_dir_all(root.join("var/run/ganeti")).unwrap();
        Paths::virtual_node(&root, "node1").unwrap()
    }

    fn put(paths: &Paths, key: &str, text: &str) {
        std::fs::File::create(paths.ssconf_file(key))
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    fn cleanup(paths: &Paths) {
        std::fs::remove_dir_all(paths.root().parent().unwrap()).unwrap();
    }

    #[test]
    fn role_follows_ssconf() {
        let p = node("role");
        assert_eq!(node_role(&p), Role::Regular);
        assert_eq!(daemons_for(Role::Regular), ["ganeti-noded"]);
        let text = "# comment\nNODED_ARGS=\"--no-mlock  -d\"\nexport MASTERD_ARGS='--no-voting --yes-do-it'\nRAPI_ARGS=-b 127.0.0.1\nNODED_ARGS=\"-d\"\n";
        assert_eq!(args_from_defaults(text, "ganeti-noded"), ["-d"]);
        assert_eq!(
            args_from_defaults(text, "ganeti-masterd"),
            ["--no-voting", "--yes-do-it"]
        );
        assert_eq!(args_from_defaults(text, "ganeti-rapi"), ["-b", "127.0.0.1"]);
        assert!(args_from_defaults(text, "ganeti-confd").is_empty());
        put(&p, "master_node", "node2\n");
        put(&p, "master_candidates", "node2\nnode1\n");
        assert_eq!(node_role(&p), Role::Candidate);
        assert_eq!(
            daemons_for(Role::Candidate),
            ["ganeti-noded", "ganeti-confd"]
        );
        put(&p, "master_node", "node1\n");
        assert_eq!(node_role(&p), Role::Master);
        assert_eq!(daemons_for(Role::Master), MANAGED_DAEMONS);
        cleanup(&p);
    }

    #[test]
    fn stop_and_check_without_a_daemon() {
        let p = node("stop");
        assert_eq!(stop(&p, "ganeti-masterd"), 0, "not running is success");
        assert_eq!(check(&p, "ganeti-masterd"), 1);
        let pid_path = p.pid_file("ganeti-masterd");
        std::fs::File::create(&pid_path)
            .unwrap()
            .write_all(b"999999\n")
            .unwrap();
        assert_eq!(check(&p, "ganeti-masterd"), 1, "stale is not running");
        assert_eq!(stop(&p, "ganeti-masterd"), 0);
        assert!(!pid_path.exists(), "stale pid file removed");
        cleanup(&p);
    }

    #[test]
    fn unbuilt_daemons_are_refused_not_faked() {
        let p = node("unbuilt");
        assert_eq!(start(&p, "ganeti-rapi", &[]), EXIT_NOT_IMPLEMENTED);
        cleanup(&p);
    }

    #[test]
    fn start_refuses_a_running_daemon_and_foreground() {
        let p = node("running");
        let crate::sys::fs::PidLock::Acquired(held) =
            PidFile::lock(&p.pid_file("ganeti-masterd")).unwrap()
        else {
            panic!("lock");
        };
        assert_eq!(check(&p, "ganeti-masterd"), 0);
        assert_eq!(start(&p, "ganeti-masterd", &[]), 1);
        assert_eq!(start(&p, "ganeti-masterd", &["-f".to_string()]), 1);
        held.remove().unwrap();
        cleanup(&p);
    }
}
