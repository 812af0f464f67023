//! End-to-end check of the daemon scaffolding (`ganeti::daemons::run`) and
//! `ganeti daemon-util`, on the built binary and a temporary node root.
//!
//! It drives `ganeti-masterd`, the first daemon built on the scaffolding;
//! each node is initialised as a one-node cluster first (`gnt-cluster init
//! --no-start`), since masterd starts only on the master of a cluster.

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Output, Stdio};
    use std::time::{Duration, Instant};

    use ganeti::sys::proc::{is_running, send_signal, StopSignal};

    const BIN: &str = env!("CARGO_BIN_EXE_ganeti");
    const DAEMON: &str = "ganeti-masterd";

    /// A virtual node: `<tmp>/<test>/node1` as its root.
    struct Node {
        base: PathBuf,
        root: PathBuf,
    }

    impl Node {
        fn new(test: &str) -> Node {
            let base =
                std::env::temp_dir().join(format!("ganeti-scaffold-{test}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&base);
            let root = base.join("node1");
            std::fs::create_dir_all(&root).unwrap();
            let octet = std::process::id() % 200 + 20;
            let hosts = format!("127.3.{octet}.1\tnode1\n127.3.{octet}.100\tscaffold.test\n");
            std::fs::create_dir_all(&base).unwrap();
            #[allow(clippy::disallowed_methods)] // a test fixture, not a config file
            std::fs::write(base.join("hosts"), hosts).unwrap();
            let node = Node { base, root };
            let init = node.ganeti(&[
                "gnt-cluster",
                "init",
                "--no-start",
                "--enabled-hypervisors",
                "fake",
                "--enabled-disk-templates",
                "diskless",
                "--master-netdev",
                "lo",
                "--no-etc-hosts",
                "scaffold.test",
            ]);
            assert!(init.status.success(), "gnt-cluster init: {init:?}");
            node
        }

        #[allow(clippy::disallowed_methods)] // tests run the built binary itself
        fn command(&self, program: &Path, args: &[&str]) -> Command {
            let mut c = Command::new(program);
            c.args(args)
                .env("GANETI_ROOTDIR", &self.root)
                .env("GANETI_HOSTNAME", "node1")
                .env_remove("NOTIFY_SOCKET")
                .stdin(Stdio::null());
            c
        }

        /// `ganeti ARGS…` to completion.
        fn ganeti(&self, args: &[&str]) -> Output {
            self.command(Path::new(BIN), args).output().unwrap()
        }

        /// A symlink named like the installed daemon, for argv[0] dispatch.
        fn daemon_link(&self) -> PathBuf {
            let dir = self.base.join("sbin");
            std::fs::create_dir_all(&dir).unwrap();
            let link = dir.join(DAEMON);
            if !link.exists() {
                std::os::unix::fs::symlink(BIN, &link).unwrap();
            }
            link
        }

        fn pid_file(&self) -> PathBuf {
            self.root
                .join("var/run/ganeti")
                .join(format!("{DAEMON}.pid"))
        }

        fn log_file(&self) -> PathBuf {
            self.root.join("var/log/ganeti/master-daemon.log")
        }

        fn pid(&self) -> Option<u32> {
            std::fs::read_to_string(self.pid_file())
                .ok()?
                .trim()
                .parse()
                .ok()
        }
    }

    impl Drop for Node {
        fn drop(&mut self) {
            if let Some(pid) = self.pid() {
                let _ = send_signal(pid, StopSignal::Kill);
            }
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }

    /// Polls `cond` until it holds or 20 s pass.
    fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn text(out: &[u8]) -> String {
        String::from_utf8_lossy(out).into_owned()
    }

    /// masterd takes the scaffolding's options.
    fn assert_masterd_uses_scaffolding(node: &Node) {
        let out = node.ganeti(&[DAEMON, "--help"]);
        assert!(out.status.success(), "{DAEMON} --help: {out:?}");
        assert!(text(&out.stdout).contains("--no-mlock"));
    }

    #[test]
    fn background_daemon_lifecycle() {
        let node = Node::new("bg");
        assert_masterd_uses_scaffolding(&node);
        // Started through a symlink named like the installed program, in the
        // background: returns once the daemon is ready.
        let out = node.command(&node.daemon_link(), &["-d"]).output().unwrap();
        assert!(out.status.success(), "start: {out:?}");
        let pid = node.pid().expect("pid file written");
        assert!(is_running(pid), "daemon {pid} alive");
        assert_ne!(pid, std::process::id());
        let log = std::fs::read_to_string(node.log_file()).unwrap();
        assert!(
            log.contains(&format!("{DAEMON} pid={pid} INFO ready")),
            "{log}"
        );

        // A second instance is refused, naming the first.
        let out = node.ganeti(&[DAEMON]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!("{DAEMON} already running (pid {pid})")),
            "{err}"
        );
        assert_eq!(node.pid(), Some(pid), "pid file untouched");
        assert_eq!(
            node.ganeti(&["daemon-util", "check", DAEMON]).status.code(),
            Some(0)
        );

        // SIGHUP after rotation: still alive, writing to a new log file.
        let rotated = node.log_file().with_extension("log.1");
        std::fs::rename(node.log_file(), &rotated).unwrap();
        send_signal(pid, StopSignal::Hup).unwrap();
        eventually("the reopened log file", || {
            std::fs::read_to_string(node.log_file()).is_ok_and(|l| l.contains("reopened"))
        });
        assert!(is_running(pid));

        // SIGTERM (through daemon-util stop) ends it and removes the pid file.
        let out = node.ganeti(&["daemon-util", "stop", DAEMON]);
        assert!(out.status.success(), "stop: {out:?}");
        assert!(!node.pid_file().exists(), "pid file removed");
        assert!(!is_running(pid), "daemon gone");
        let log = std::fs::read_to_string(node.log_file()).unwrap();
        assert!(log.contains("INFO stopped"), "{log}");
        assert_eq!(
            node.ganeti(&["daemon-util", "check", DAEMON]).status.code(),
            Some(1)
        );
    }

    #[test]
    fn foreground_daemon_stops_on_sigterm() {
        let node = Node::new("fg");
        assert_masterd_uses_scaffolding(&node);
        let mut child: Child = node
            .command(Path::new(BIN), &[DAEMON, "-f", "-d", "--no-mlock"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        eventually("the foreground daemon's pid file", || {
            node.pid() == Some(pid)
        });
        send_signal(pid, StopSignal::Term).unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "{status}");
        assert!(!node.pid_file().exists());
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        // -f -d echoes the log to stderr.
        assert!(err.contains("DEBUG not locking memory"), "{err}");
        assert!(err.contains("INFO stopped"), "{err}");
    }

    #[test]
    fn daemon_util_start_all_on_a_master() {
        let node = Node::new("all");
        assert_masterd_uses_scaffolding(&node);
        let data = node.root.join("var/lib/ganeti");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::File::create(data.join("ssconf_master_node"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"node1\n"))
            .unwrap();
        let out = node.ganeti(&["daemon-util", "start-all"]);
        let said = text(&out.stdout);
        assert!(!said.contains("skipping ganeti-noded"), "{said}");
        assert!(out.status.success(), "start-all: {out:?}");
        let noded_pid = node.root.join("var/run/ganeti/ganeti-noded.pid");
        assert!(noded_pid.exists(), "noded started too: {said}");
        let pid = node.pid().expect("masterd started");
        assert!(is_running(pid));
        assert!(node.ganeti(&["daemon-util", "check-all"]).status.success());
        let out = node.ganeti(&["daemon-util", "start", DAEMON, "--no-mlock"]);
        assert_eq!(out.status.code(), Some(1), "already running: {out:?}");
        let out = node.ganeti(&["daemon-util", "stop-all"]);
        assert!(out.status.success(), "stop-all: {out:?}");
        assert!(!is_running(pid));
        assert!(!node.pid_file().exists());
    }
}
