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
            "gnt-backup",
            "gnt-group",
            "gnt-job",
            "gnt-debug",
            "ganeti-noded",
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

    /// The names of the nodes, `node1` first.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// The address of `node` (from `BASE/hosts`).
    pub fn address(&self, node: &str) -> String {
        let hosts = std::fs::read_to_string(self.base.join("hosts")).unwrap();
        hosts
            .lines()
            .find_map(|l| {
                let mut f = l.split_whitespace();
                let ip = f.next()?;
                (f.next()? == node).then(|| ip.to_string())
            })
            .unwrap_or_else(|| panic!("{node} not in the hosts file"))
    }

    /// Prepares `node` the way the test clusters run: `/etc/default/ganeti`
    /// gives noded a recording powercycle action and no mlockall (dozens of
    /// test daemons would lock a lot of memory), and the master IP goes
    /// through a recording `master-ip-setup` script instead of touching
    /// the host's interfaces.
    pub fn prepare_node(&self, node: &str) {
        let etc = self.path(node, "/etc/default");
        std::fs::create_dir_all(&etc).unwrap();
        let record = self.path(node, "/powercycle.log");
        std::fs::write(
            etc.join("ganeti"),
            format!(
                "NODED_ARGS=\"--no-mlock --powercycle-action record:{}\"\nMASTERD_ARGS=\"--no-mlock\"\nCONFD_ARGS=\"--no-mlock\"\n",
                record.display()
            ),
        )
        .unwrap();
        let scripts = self.path(node, "/etc/ganeti/scripts");
        std::fs::create_dir_all(&scripts).unwrap();
        let log = self.path(node, "/master-ip.log");
        let script = scripts.join("master-ip-setup");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$1 $MASTER_IP $MASTER_NETMASK $MASTER_NETDEV $CLUSTER_IP_VERSION\" >> {}\n",
                log.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// What the recording master-ip-setup script saw on `node`.
    pub fn master_ip_log(&self, node: &str) -> String {
        std::fs::read_to_string(self.path(node, "/master-ip.log")).unwrap_or_default()
    }

    /// What the recording powercycle action saw on `node`.
    pub fn powercycle_log(&self, node: &str) -> String {
        std::fs::read_to_string(self.path(node, "/powercycle.log")).unwrap_or_default()
    }

    /// `gnt-cluster init` on node1 for a multi-node cluster: nodes prepared,
    /// the master IP through the recording script.
    pub fn init_multi(&self, extra: &[&str]) -> Run {
        for n in self.nodes.clone() {
            self.prepare_node(&n);
        }
        let mut args = vec!["--use-external-mip-script", "yes"];
        args.extend_from_slice(extra);
        self.init(&args)
    }

    /// Starts `node`'s noded (unconfigured until it joins) and waits until
    /// it listens.
    pub fn start_noded(&self, node: &str) {
        self.run(node, "ganeti", &["daemon-util", "start", "ganeti-noded"])
            .ok();
        self.wait_for("noded", Duration::from_secs(10), || {
            self.daemon_pid(node, "ganeti-noded").is_some()
        });
    }

    /// Issues a join token on the master and installs it on `node`.
    pub fn give_token(&self, master: &str, node: &str, ttl: &str) -> String {
        let token = self
            .run(master, "gnt-cluster", &["join-token", "--ttl", ttl])
            .ok()
            .stdout
            .trim()
            .to_string();
        self.install_token(node, &token);
        token
    }

    /// Writes `token` where `node`'s noded looks for it.
    pub fn install_token(&self, node: &str, token: &str) {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.path(node, "/var/lib/ganeti");
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("join-token");
        std::fs::write(&f, format!("{token}\n")).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// Starts `node`'s noded, gives it a token and adds it from node1.
    pub fn add_node(&self, node: &str, extra: &[&str]) -> Run {
        self.start_noded(node);
        self.give_token("node1", node, "600");
        let mut args = vec!["add"];
        args.extend_from_slice(extra);
        args.push(node);
        self.run("node1", "gnt-node", &args)
    }

    /// Kills a daemon of `node` with SIGKILL and waits until it is gone.
    pub fn kill_daemon(&self, node: &str, daemon: &str) {
        if let Some(pid) = self.daemon_pid(node, daemon) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            self.wait_for("daemon to die", Duration::from_secs(10), || {
                !Path::new(&format!("/proc/{pid}")).exists()
                    || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                        .map(|s| s.contains(") Z "))
                        .unwrap_or(true)
            });
        }
    }

    /// A file of `node`'s data dir, if it exists.
    pub fn data_file(&self, node: &str, name: &str) -> Option<String> {
        std::fs::read_to_string(self.path(node, &format!("/var/lib/ganeti/{name}"))).ok()
    }

    /// Makes the OS definition in `src` (a directory) available on `node`
    /// as `/srv/ganeti/os/<name>` under its root.
    pub fn install_os(&self, node: &str, name: &str, src: &Path) {
        let dir = self.path(node, "/srv/ganeti/os");
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join(name);
        let _ = std::fs::remove_file(&link);
        symlink(src, link).unwrap();
    }

    /// The test OS definition of `tests/os/image` (writes an ext4 image).
    pub fn image_os() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/os/image")
    }

    /// A two-node cluster (node2 joined) with file storage allowed, the
    /// image OS and, if installed, Debian's noop OS on both nodes.
    pub fn two_nodes_with_os() -> TestCluster {
        let c = TestCluster::new(2);
        c.init_multi(&[]).ok();
        c.add_node("node2", &[]).ok();
        for n in ["node1", "node2"] {
            c.allow_file_storage(n);
            c.install_os(n, "image", &Self::image_os());
            if let Some(noop) = Self::noop_os() {
                c.install_os(n, "noop", &noop);
            }
        }
        c
    }

    /// `gnt-instance add` on node1 with the fake hypervisor and no name or
    /// IP checks; `spec` gives the rest (template, disks, OS, `-B`, `-n`…).
    pub fn add_instance(&self, spec: &[&str], name: &str) -> Run {
        let mut args = vec!["add", "-H", "fake", "--no-name-check", "--no-ip-check"];
        args.extend_from_slice(spec);
        args.push(name);
        self.run("node1", "gnt-instance", &args)
    }

    /// Whether the fake hypervisor of `node` runs `inst`.
    pub fn fake_runs(&self, node: &str, inst: &str) -> bool {
        self.path(node, &format!("/var/run/ganeti/fake-hypervisor/{inst}"))
            .exists()
    }

    /// Debian's `ganeti-os-noop`, if installed.
    pub fn noop_os() -> Option<PathBuf> {
        let p = PathBuf::from("/usr/share/ganeti/os/noop");
        p.join("create").exists().then_some(p)
    }

    /// Makes `node`'s shared-file storage directory the same directory as
    /// node1's, as a cluster file system would.
    pub fn share_storage(&self, node: &str) {
        let master = self.path("node1", "/srv/ganeti/shared-file-storage");
        std::fs::create_dir_all(&master).unwrap();
        let mine = self.path(node, "/srv/ganeti/shared-file-storage");
        std::fs::create_dir_all(mine.parent().unwrap()).unwrap();
        let _ = std::fs::remove_dir(&mine);
        symlink(&master, &mine).unwrap();
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
            // QEMU processes of kvm instances a failed test left behind.
            let pids = self.path(node, "/var/run/ganeti/kvm-hypervisor/pid");
            for entry in std::fs::read_dir(pids).into_iter().flatten().flatten() {
                if let Ok(pid) = std::fs::read_to_string(entry.path()) {
                    let _ = Command::new("kill").args(["-9", pid.trim()]).status();
                }
            }
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
