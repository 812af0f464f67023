//! `TestCluster`: N virtual nodes on loopback, each with its own root.
//!
//! Node *i* is `node<i>` with root `BASE/node<i>` and address
//! `127.X.Y.i`, where X.Y is unique per test cluster so clusters of
//! parallel tests never share an address. Names resolve through
//! `BASE/hosts`. Programs run through symlinks named like the installed
//! programs, so argv[0] dispatch is exercised.

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// What a command printed and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics with the whole output unless the command succeeded.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "command failed:\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
    /// Panics unless the command failed.
    #[track_caller]
    pub fn failed(self) -> Run {
        assert_ne!(
            self.code, 0,
            "command unexpectedly succeeded:\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

pub struct TestCluster {
    pub base: PathBuf,
    bin: PathBuf,
    nodes: Vec<String>,
}

impl TestCluster {
    /// A cluster of `n` node roots (nothing initialised yet).
    pub fn new(n: usize) -> TestCluster {
        let k = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let base = std::env::temp_dir().join(format!("ganeti-rs-test-{pid}-{k}"));
        let _ = std::fs::remove_dir_all(&base);
        let bin = base.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let exe = PathBuf::from(env!("CARGO_BIN_EXE_ganeti"));
        for name in [
            "ganeti",
            "gnt-cluster",
            "ganeti-masterd",
            "cfgupgrade",
            "gnt-node",
            "gnt-instance",
            "gnt-group",
            "gnt-job",
            "gnt-debug",
            "hbal",
        ] {
            symlink(&exe, bin.join(name)).unwrap();
        }
        // 127.X.Y.i with X.Y unique per (process, cluster).
        let net = (((pid % 200) + 20) as u8, (k % 250) as u8);
        let mut hosts = String::new();
        let mut nodes = Vec::new();
        for i in 1..=n {
            let name = format!("node{i}");
            std::fs::create_dir_all(base.join(&name)).unwrap();
            hosts.push_str(&format!("127.{}.{}.{i}\t{name}\n", net.0, net.1));
            nodes.push(name);
        }
        hosts.push_str(&format!("127.{}.{}.100\tcluster.test\n", net.0, net.1));
        std::fs::write(base.join("hosts"), hosts).unwrap();
        TestCluster { base, bin, nodes }
    }

    /// Root directory of a node.
    pub fn root(&self, node: &str) -> PathBuf {
        self.base.join(node)
    }

    /// A path under a node's root.
    pub fn path(&self, node: &str, p: &str) -> PathBuf {
        self.root(node).join(p.trim_start_matches('/'))
    }

    /// Runs `program args…` as `node`.
    pub fn run(&self, node: &str, program: &str, args: &[&str]) -> Run {
        self.run_env(node, program, args, &BTreeMap::new())
    }

    /// Runs with extra environment variables.
    pub fn run_env(
        &self,
        node: &str,
        program: &str,
        args: &[&str],
        env: &BTreeMap<&str, String>,
    ) -> Run {
        let out = Command::new(self.bin.join(program))
            .args(args)
            .env("GANETI_ROOTDIR", self.root(node))
            .env("GANETI_HOSTNAME", node)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run the built binary");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Lists file-storage directories as allowed on `node`.
    pub fn allow_file_storage(&self, node: &str) -> (String, String) {
        let file = self.path(node, "/srv/ganeti/file-storage");
        let shared = self.path(node, "/srv/ganeti/shared-file-storage");
        let conf = self.path(node, "/etc/ganeti");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::write(
            conf.join("file-storage-paths"),
            format!("{}\n{}\n", file.display(), shared.display()),
        )
        .unwrap();
        (file.display().to_string(), shared.display().to_string())
    }

    /// `gnt-cluster init` on node1 with settings that work on any machine.
    pub fn init(&self, extra: &[&str]) -> Run {
        self.allow_file_storage("node1");
        let mut args = vec![
            "init",
            "--enabled-hypervisors",
            "fake,kvm",
            "--enabled-disk-templates",
            "diskless,file,sharedfile",
            "--master-netdev",
            "lo",
            "--no-etc-hosts",
        ];
        args.extend_from_slice(extra);
        args.push("cluster.test");
        self.run("node1", "gnt-cluster", &args)
    }

    /// Polls `cond` until it holds or `timeout` passes.
    pub fn wait_for(&self, what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The pid recorded in a daemon's pid file on `node`, if it is alive.
    pub fn daemon_pid(&self, node: &str, daemon: &str) -> Option<u32> {
        let text =
            std::fs::read_to_string(self.path(node, &format!("/var/run/ganeti/{daemon}.pid")))
                .ok()?;
        let pid: u32 = text.trim().parse().ok()?;
        Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for node in &self.nodes {
            let _ = self.run(node, "ganeti", &["daemon-util", "stop-all"]);
            for daemon in [
                "ganeti-masterd",
                "ganeti-noded",
                "ganeti-confd",
                "ganeti-rapi",
            ] {
                if let Some(pid) = self.daemon_pid(node, daemon) {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                }
            }
        }
        if std::env::var_os("GANETI_TEST_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }
}

/// A file's permission bits.
pub fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}
