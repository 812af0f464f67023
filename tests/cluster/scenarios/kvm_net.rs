//! A KVM instance's bridged NIC on a real bridge: a BIOS-only QEMU (TCG)
//! started through `KvmHypervisor` inside a network namespace this test
//! creates (every command, QEMU included, runs under `ip netns exec`), its
//! tap enslaved to the namespace's bridge, and gone after the stop. The
//! host's own network namespace is never touched. Skips when not root, or
//! without `/dev/net/tun`, `ip` or QEMU.

use ganeti::hv::kvm::KvmHypervisor;
use ganeti::hv::{Hypervisor, StartMode};
use ganeti::paths::Paths;
use ganeti::rpc::proto::{InstanceSpec, NicSpec, Params};
use ganeti::sys::cmd::{CmdError, Command, Output, RealRunner, Runner};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Runs every command inside network namespace `ns`.
struct NetnsRunner {
    ns: String,
}

impl Runner for NetnsRunner {
    fn run(&self, cmd: &Command) -> Result<Output, CmdError> {
        let mut argv = vec![
            "ip".to_string(),
            "netns".into(),
            "exec".into(),
            self.ns.clone(),
        ];
        argv.extend(cmd.argv.iter().cloned());
        let mut wrapped = Command::new(argv);
        wrapped.env = cmd.env.clone();
        RealRunner.run(&wrapped)
    }
}

/// The namespace, deleted when the test ends (even when it fails).
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = RealRunner.run(&Command::new(["ip", "netns", "del", &self.0]));
    }
}

fn on_path(prog: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
        .unwrap_or(false)
}

fn skip_reason() -> Option<&'static str> {
    if ganeti::sys::proc::euid() != 0 {
        Some("not root")
    } else if !std::path::Path::new("/dev/net/tun").exists() {
        Some("no /dev/net/tun")
    } else if !on_path("ip") && !std::path::Path::new("/usr/sbin/ip").exists() {
        Some("no ip(8)")
    } else if !on_path("qemu-system-x86_64") {
        Some("qemu-system-x86_64 is not installed")
    } else {
        None
    }
}

#[test]
fn bridged_nic_is_enslaved_to_the_bridge_and_gone_after_stop() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED bridged_nic_is_enslaved_to_the_bridge: {why}");
        return;
    }
    let ns = Netns(format!("gnt-kvmnet-{}", std::process::id()));
    let _ = RealRunner.run(&Command::new(["ip", "netns", "del", &ns.0]));
    RealRunner
        .run(&Command::new(["ip", "netns", "add", &ns.0]))
        .expect("ip netns add");
    let runner = Arc::new(NetnsRunner { ns: ns.0.clone() });
    for argv in [
        ["ip", "link", "add", "gntbr0", "type", "bridge"].as_slice(),
        ["ip", "link", "set", "gntbr0", "up"].as_slice(),
    ] {
        runner
            .run(&Command::new(argv.iter().copied()))
            .expect("bridge setup");
    }

    let root = std::env::temp_dir().join(format!("ganeti-kvmnet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("node1")).unwrap();
    let paths = Paths::virtual_node(&root.join("node1"), "node1").unwrap();
    let hv = KvmHypervisor::new(&paths, runner.clone());

    let mut hvparams = Params::new();
    hvparams.insert("kvm_flag".into(), json!("disabled"));
    hvparams.insert("serial_console".into(), json!(false));
    let mut beparams = Params::new();
    beparams.insert("maxmem".into(), json!(64));
    beparams.insert("vcpus".into(), json!(1));
    let inst = InstanceSpec {
        name: "net1".into(),
        uuid: "5eed0001-1c2d-4e5f-8a9b-0c1d2e3f4a5b".into(),
        hypervisor: "kvm".into(),
        hvparams,
        beparams,
        os: "noop".into(),
        osparams: Default::default(),
        osparams_private: Default::default(),
        nics: vec![NicSpec {
            uuid: "nic-0".into(),
            name: None,
            mac: "aa:00:00:5e:ed:01".into(),
            ip: None,
            mode: "bridged".into(),
            link: "gntbr0".into(),
            vlan: String::new(),
            network: None,
        }],
        disks: vec![],
        network_port: None,
    };
    hv.start(&inst, &[], StartMode::Running).expect("start");
    let tap = "gnt5eed0001n0";
    let enslaved = runner
        .run(&Command::new([
            "ip", "-o", "link", "show", "master", "gntbr0",
        ]))
        .expect("ip link show master")
        .stdout;
    let tap_link = runner
        .run(&Command::new(["ip", "-o", "link", "show", "dev", tap]))
        .map(|o| o.stdout);
    let info = hv.instance_info("net1", &Params::new());
    hv.stop(&inst, Duration::from_secs(1)).expect("stop");
    let after = runner.run(&Command::new(["ip", "-o", "link", "show", "dev", tap]));
    let _ = std::fs::remove_dir_all(&root);

    assert!(enslaved.contains(tap), "{tap} not on gntbr0: {enslaved}");
    let tap_link = tap_link.expect("tap exists while QEMU runs");
    assert!(
        tap_link.contains("link/ether fe:00:00:5e:ed:01") && tap_link.contains(",UP"),
        "{tap_link}"
    );
    assert_eq!(info.unwrap().unwrap().state, "running");
    assert!(after.is_err(), "the tap outlived QEMU");
}
