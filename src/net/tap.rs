//! An instance NIC's tap device on the host: after the hypervisor has
//! created the tap, [`configure`] connects it the way the NIC's mode asks,
//! as Ganeti's `kvm-ifup` / `net-common` scripts do, and [`teardown`]
//! removes what outlives the tap (routing rules) when the instance stops.
//!
//! Modes (`nicparams` `mode`, `link`, `vlan`):
//!
//! * `bridged`: the tap gets the guest's MAC with the first octet `fe`
//!   (so the bridge never takes the tap's address as its own), the
//!   bridge's MTU, is brought up and enslaved to the bridge `link`; a
//!   `vlan` (`.10`, `10`, `:20:30`, `.10:20`) is added with `bridge vlan`.
//! * `openvswitch`: a stale port is dropped, the tap is brought up and
//!   added to the switch `link`; the access part of `vlan` becomes the
//!   port's `tag`, the trunk part its `trunks`.
//! * `routed`: the NIC must have an IP. The tap is brought up, the route to
//!   the IP points at it (in routing table `link` with a `ip rule` for the
//!   tap when `link` is set), and proxy ARP (IPv4) or proxy NDP (IPv6) and
//!   forwarding are switched on for the tap.
//!
//! Site hooks, from the node's configuration directory (under the root of
//! a virtual node), with the same environment as Ganeti's scripts
//! (`INSTANCE`, `MAC`, `MODE`, `INTERFACE`, `INTERFACE_INDEX`,
//! `INTERFACE_UUID`, `INTERFACE_NAME`, `IP`, `LINK`, `BRIDGE`, `VLAN`,
//! `NETWORK_NAME`, `TAGS`):
//!
//! * [`VIF_HOOK`] (`kvm-vif-bridge`), when present and executable, replaces
//!   the built-in setup for every NIC;
//! * [`IFUP_OS_HOOK`] (`kvm-ifup-os`) runs for the instance-communication
//!   taps (`routed` taps named `gnt.com.N`) instead of the built-in setup.
//!
//! Every command goes through a [`Runner`], so the tests assert exact argv.

use crate::paths::Paths;
use crate::rpc::proto::NicSpec;
use crate::sys::cmd::{CmdError, Command, Runner};
use std::path::{Path, PathBuf};

/// Site hook that replaces the built-in NIC setup (`$CONF_DIR/kvm-vif-bridge`).
pub const VIF_HOOK: &str = "kvm-vif-bridge";
/// Site hook for instance-communication taps (`$CONF_DIR/kvm-ifup-os`).
pub const IFUP_OS_HOOK: &str = "kvm-ifup-os";
/// Prefix of instance-communication tap names (Ganeti's `GANETI_TAP`).
pub const COMMUNICATION_TAP_PREFIX: &str = "gnt.com";

/// A NIC whose tap could not be set up or torn down.
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    /// The NIC's parameters cannot be set up in its mode.
    #[error("NIC {index} (tap {tap}): {reason}")]
    BadNic {
        /// NIC index in the instance.
        index: usize,
        /// The tap device.
        tap: String,
        /// What is wrong.
        reason: String,
    },
    /// A setup command failed.
    #[error("NIC {index} (tap {tap}): setting up the {mode} interface failed")]
    Command {
        /// NIC index in the instance.
        index: usize,
        /// The tap device.
        tap: String,
        /// The NIC's mode.
        mode: String,
        /// The command, with its output.
        #[source]
        source: Box<CmdError>,
    },
    /// Writing a `/proc/sys` switch failed.
    #[error("NIC {index} (tap {tap}): switching on routing for the tap")]
    Sysctl {
        /// NIC index in the instance.
        index: usize,
        /// The tap device.
        tap: String,
        /// The file and the cause.
        #[source]
        source: crate::sys::fs::FsError,
    },
}

/// One NIC of one instance, with the tap the hypervisor made for it.
#[derive(Debug, Clone, Copy)]
pub struct TapNic<'a> {
    /// The instance's name.
    pub instance: &'a str,
    /// NIC index in the instance.
    pub index: usize,
    /// The NIC as the RPC payload gave it.
    pub nic: &'a NicSpec,
    /// The tap device's name.
    pub tap: &'a str,
}

impl TapNic<'_> {
    fn bad(&self, reason: impl Into<String>) -> TapError {
        TapError::BadNic {
            index: self.index,
            tap: self.tap.to_string(),
            reason: reason.into(),
        }
    }

    fn failed(&self, source: CmdError) -> TapError {
        TapError::Command {
            index: self.index,
            tap: self.tap.to_string(),
            mode: self.nic.mode.clone(),
            source: Box::new(source),
        }
    }

    /// Whether this is an instance-communication tap (`gnt.com.N`, routed).
    pub fn is_communication_tap(&self) -> bool {
        self.nic.mode == "routed"
            && self
                .tap
                .starts_with(&format!("{COMMUNICATION_TAP_PREFIX}."))
    }
}

/// The environment of Ganeti's ifup scripts for `nic`.
pub fn ifup_env(nic: &TapNic<'_>) -> Vec<(String, String)> {
    let mut env = vec![
        ("INSTANCE".to_string(), nic.instance.to_string()),
        ("MAC".into(), nic.nic.mac.clone()),
        ("MODE".into(), nic.nic.mode.clone()),
        ("INTERFACE".into(), nic.tap.to_string()),
        ("INTERFACE_INDEX".into(), nic.index.to_string()),
        ("INTERFACE_UUID".into(), nic.nic.uuid.clone()),
        // Tags are not part of the RPC payload; the variable is set, empty.
        ("TAGS".into(), String::new()),
    ];
    if let Some(ip) = nic.nic.ip.as_deref().filter(|s| !s.is_empty()) {
        env.push(("IP".into(), ip.to_string()));
    }
    if let Some(name) = nic.nic.name.as_deref().filter(|s| !s.is_empty()) {
        env.push(("INTERFACE_NAME".into(), name.to_string()));
    }
    if !nic.nic.link.is_empty() {
        env.push(("LINK".into(), nic.nic.link.clone()));
    }
    if !nic.nic.vlan.is_empty() {
        env.push(("VLAN".into(), nic.nic.vlan.clone()));
    }
    if let Some(net) = nic.nic.network.as_deref().filter(|s| !s.is_empty()) {
        env.push(("NETWORK_NAME".into(), net.to_string()));
    }
    if nic.nic.mode == "bridged" {
        env.push(("BRIDGE".into(), nic.nic.link.clone()));
    }
    env
}

/// Interface names go into argv and `/proc/sys` paths: refuse anything
/// the kernel would not take as a name.
fn check_ifname(nic: &TapNic<'_>, what: &str, name: &str) -> Result<(), TapError> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'));
    if ok {
        Ok(())
    } else {
        Err(nic.bad(format!("{what} {name:?} is not a usable interface name")))
    }
}

/// The tap's own MAC: the guest's with the first octet `fe`.
fn tap_mac(nic: &TapNic<'_>) -> Result<String, TapError> {
    let octets: Vec<&str> = nic.nic.mac.split(':').collect();
    let valid = octets.len() == 6
        && octets
            .iter()
            .all(|o| o.len() == 2 && o.chars().all(|c| c.is_ascii_hexdigit()));
    if !valid {
        return Err(nic.bad(format!("MAC {:?} is not six hex octets", nic.nic.mac)));
    }
    Ok(format!("fe:{}", octets[1..].join(":")))
}

/// A VLAN spec split into (access/untagged VLAN, tagged VLANs), as
/// `net-common` reads it: `.10` or `10` is untagged 10; a leading `:`
/// means tagged only; `.10:20:30` is untagged 10 plus tagged 20 and 30.
pub fn parse_vlan(vlan: &str) -> Result<(Option<u16>, Vec<u16>), String> {
    if vlan.is_empty() {
        return Ok((None, Vec::new()));
    }
    let num = |s: &str| {
        s.parse::<u16>()
            .ok()
            .filter(|v| (1..=4094).contains(v))
            .ok_or_else(|| format!("VLAN {vlan:?}: {s:?} is not a VLAN id (1-4094)"))
    };
    let (access, trunks) = match vlan.strip_prefix(':') {
        Some(rest) => (None, rest),
        None => {
            let (first, rest) = vlan.split_once(':').unwrap_or((vlan, ""));
            (Some(num(first.strip_prefix('.').unwrap_or(first))?), rest)
        }
    };
    let trunks = trunks
        .split(':')
        .filter(|s| !s.is_empty())
        .map(num)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((access, trunks))
}

fn ip(args: &[&str]) -> Command {
    Command::new(std::iter::once("ip").chain(args.iter().copied()))
}

/// The MTU of interface `link`, from `ip -o link show dev LINK`.
fn link_mtu(runner: &dyn Runner, nic: &TapNic<'_>, link: &str) -> Result<Option<String>, TapError> {
    let out = runner
        .run(&ip(&["-o", "link", "show", "dev", link]))
        .map_err(|e| nic.failed(e))?;
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    Ok(words
        .windows(2)
        .find(|w| w[0] == "mtu")
        .map(|w| w[1].to_string())
        .filter(|m| m.chars().all(|c| c.is_ascii_digit())))
}

fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Connects the tap of `nic` per its mode (see the module doc), or runs
/// the site hook that replaces that. Routed NICs without an IP are refused.
pub fn configure(paths: &Paths, runner: &dyn Runner, nic: &TapNic<'_>) -> Result<(), TapError> {
    check_ifname(nic, "tap", nic.tap)?;
    let env = ifup_env(nic);
    let with_env = |mut c: Command| {
        c.env.extend(env.iter().cloned());
        c
    };
    let hook = |name: &str| paths.conf_dir().join(name);
    if nic.is_communication_tap() && executable(&hook(IFUP_OS_HOOK)) {
        let c = Command::new([
            hook(IFUP_OS_HOOK).to_string_lossy().into_owned(),
            nic.tap.into(),
        ]);
        return runner
            .run(&with_env(c))
            .map(drop)
            .map_err(|e| nic.failed(e));
    }
    if executable(&hook(VIF_HOOK)) {
        let c = Command::new([
            hook(VIF_HOOK).to_string_lossy().into_owned(),
            nic.tap.into(),
        ]);
        return runner
            .run(&with_env(c))
            .map(drop)
            .map_err(|e| nic.failed(e));
    }
    let tap = nic.tap;
    let link = nic.nic.link.as_str();
    let run = |c: Command| {
        runner
            .run(&with_env(c))
            .map(drop)
            .map_err(|e| nic.failed(e))
    };
    match nic.nic.mode.as_str() {
        "bridged" => {
            check_ifname(nic, "bridge", link)?;
            let (access, tagged) = parse_vlan(&nic.nic.vlan).map_err(|r| nic.bad(r))?;
            run(ip(&["link", "set", "dev", tap, "address", &tap_mac(nic)?]))?;
            if let Some(mtu) = link_mtu(runner, nic, link)? {
                run(ip(&["link", "set", "dev", tap, "mtu", &mtu]))?;
            }
            run(ip(&["link", "set", "dev", tap, "up"]))?;
            run(ip(&["link", "set", "dev", tap, "master", link]))?;
            let bridge_vlan = |vid: u16, untagged: bool| {
                let vid = vid.to_string();
                let mut argv = vec!["bridge", "vlan", "add", "dev", tap, "vid", &vid];
                if untagged {
                    argv.extend(["pvid", "untagged"]);
                }
                argv.push("master");
                run(Command::new(argv))
            };
            if let Some(v) = access {
                bridge_vlan(v, true)?;
            }
            for v in tagged {
                bridge_vlan(v, false)?;
            }
            Ok(())
        }
        "openvswitch" => {
            check_ifname(nic, "switch", link)?;
            let (access, trunks) = parse_vlan(&nic.nic.vlan).map_err(|r| nic.bad(r))?;
            // A stale port of an earlier run: its absence is fine.
            let _ = runner.run(&with_env(Command::new(["ovs-vsctl", "del-port", tap])));
            run(ip(&["link", "set", "dev", tap, "up"]))?;
            run(Command::new(["ovs-vsctl", "add-port", link, tap]))?;
            if let Some(v) = access {
                run(Command::new([
                    "ovs-vsctl".to_string(),
                    "set".into(),
                    "port".into(),
                    tap.into(),
                    format!("tag={v}"),
                ]))?;
            }
            if !trunks.is_empty() {
                let list: Vec<String> = trunks.iter().map(u16::to_string).collect();
                run(Command::new([
                    "ovs-vsctl".to_string(),
                    "set".into(),
                    "port".into(),
                    tap.into(),
                    format!("trunks={}", list.join(",")),
                ]))?;
            }
            Ok(())
        }
        "routed" => {
            let Some(addr) = routed_ip(nic)? else {
                return Err(nic.bad("routed mode needs an IP address on the NIC, it has none"));
            };
            run(ip(&["link", "set", "dev", tap, "up"]))?;
            if link.is_empty() {
                run(ip(&[
                    "route", "replace", &addr, "proto", "static", "dev", tap,
                ]))?;
            } else {
                check_ifname(nic, "routing table", link)?;
                // Old rules for this tap (a previous run) would shadow the new one.
                for _ in 0..16 {
                    if runner
                        .run(&with_env(ip(&["rule", "del", "dev", tap])))
                        .is_err()
                    {
                        break;
                    }
                }
                run(ip(&["rule", "add", "dev", tap, "table", link]))?;
                run(ip(&[
                    "route", "replace", &addr, "table", link, "proto", "static", "dev", tap,
                ]))?;
            }
            let switches: &[(&str, &str)] = if addr.contains(':') {
                &[("ipv6", "proxy_ndp"), ("ipv6", "forwarding")]
            } else {
                &[("ipv4", "proxy_arp"), ("ipv4", "forwarding")]
            };
            for (family, key) in switches {
                let dir = PathBuf::from(format!("/proc/sys/net/{family}/conf/{tap}"));
                if !dir.is_dir() {
                    continue;
                }
                let path = dir.join(key);
                crate::sys::fs::write_kernel_knob(&path, b"1").map_err(|source| {
                    TapError::Sysctl {
                        index: nic.index,
                        tap: tap.to_string(),
                        source,
                    }
                })?;
            }
            Ok(())
        }
        other => Err(nic.bad(format!(
            "unknown NIC mode {other:?} (bridged, routed or openvswitch)"
        ))),
    }
}

/// The NIC's IP when it has one, checked to be an address.
fn routed_ip(nic: &TapNic<'_>) -> Result<Option<String>, TapError> {
    match nic.nic.ip.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse::<std::net::IpAddr>()
            .map(|a| Some(a.to_string()))
            .map_err(|_| nic.bad(format!("IP {s:?} is not an IP address"))),
    }
}

/// Removes what outlives the tap of a stopped instance: a routed NIC's
/// rule and route (the kernel drops routes through a vanished device, but
/// not rules naming it). Best effort: every command runs, failures (the
/// tap already gone) are ignored. Bridged and openvswitch taps need
/// nothing: the port goes with the device.
pub fn teardown(runner: &dyn Runner, nic: &TapNic<'_>) {
    if nic.nic.mode != "routed" || check_ifname(nic, "tap", nic.tap).is_err() {
        return;
    }
    let Ok(Some(addr)) = routed_ip(nic) else {
        return;
    };
    let link = nic.nic.link.as_str();
    if link.is_empty() {
        let _ = runner.run(&ip(&["route", "del", &addr, "dev", nic.tap]));
    } else {
        let _ = runner.run(&ip(&["route", "del", &addr, "table", link, "dev", nic.tap]));
        let _ = runner.run(&ip(&["rule", "del", "dev", nic.tap, "table", link]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::test_support::temp_node;
    use crate::sys::cmd::RecordingRunner;

    fn spec(mode: &str, link: &str, ip: Option<&str>, vlan: &str) -> NicSpec {
        NicSpec {
            uuid: "nic-uuid-0".into(),
            name: Some("eth0".into()),
            mac: "aa:00:00:11:22:33".into(),
            ip: ip.map(str::to_string),
            mode: mode.into(),
            link: link.into(),
            vlan: vlan.into(),
            network: None,
        }
    }

    fn argvs(r: &RecordingRunner) -> Vec<String> {
        r.calls().iter().map(Command::display).collect()
    }

    fn tap_nic(nic: &NicSpec) -> TapNic<'_> {
        TapNic {
            instance: "inst1",
            index: 0,
            nic,
            tap: "gntabcdn0",
        }
    }

    #[test]
    fn bridged_sets_mac_mtu_up_master_and_vlans() {
        let node = temp_node("tap-bridged", "node1", &[]);
        let r = RecordingRunner::new();
        let nic = spec("bridged", "br0", None, ".10:20");
        r.push_answer(Ok("")); // address
        r.push_answer(Ok(
            "1: br0: <BROADCAST,UP> mtu 9000 qdisc noqueue state UP\n",
        ));
        configure(&node, &r, &tap_nic(&nic)).unwrap();
        let calls = argvs(&r);
        assert_eq!(
            calls,
            vec![
                "ip link set dev gntabcdn0 address fe:00:00:11:22:33",
                "ip -o link show dev br0",
                "ip link set dev gntabcdn0 mtu 9000",
                "ip link set dev gntabcdn0 up",
                "ip link set dev gntabcdn0 master br0",
                "bridge vlan add dev gntabcdn0 vid 10 pvid untagged master",
                "bridge vlan add dev gntabcdn0 vid 20 master",
            ]
        );
        let env = &r.calls()[0].env;
        for want in [
            ("INTERFACE", "gntabcdn0"),
            ("MODE", "bridged"),
            ("BRIDGE", "br0"),
            ("LINK", "br0"),
            ("MAC", "aa:00:00:11:22:33"),
            ("INSTANCE", "inst1"),
            ("INTERFACE_INDEX", "0"),
            ("INTERFACE_NAME", "eth0"),
            ("VLAN", ".10:20"),
        ] {
            assert!(
                env.contains(&(want.0.to_string(), want.1.to_string())),
                "{want:?} in {env:?}"
            );
        }
        crate::paths::test_support::remove_temp_node(&node);
    }

    #[test]
    fn openvswitch_access_and_trunk_ports() {
        let node = temp_node("tap-ovs", "node1", &[]);
        let r = RecordingRunner::new();
        r.push_answer(Err("no port named gntabcdn0")); // stale port: ignored
        let nic = spec("openvswitch", "sw0", None, "10:20:30");
        configure(&node, &r, &tap_nic(&nic)).unwrap();
        assert_eq!(
            argvs(&r),
            vec![
                "ovs-vsctl del-port gntabcdn0",
                "ip link set dev gntabcdn0 up",
                "ovs-vsctl add-port sw0 gntabcdn0",
                "ovs-vsctl set port gntabcdn0 tag=10",
                "ovs-vsctl set port gntabcdn0 trunks=20,30",
            ]
        );
        let r = RecordingRunner::new();
        let nic = spec("openvswitch", "sw0", None, ":20:30");
        configure(&node, &r, &tap_nic(&nic)).unwrap();
        assert_eq!(
            argvs(&r)[3..],
            ["ovs-vsctl set port gntabcdn0 trunks=20,30"]
        );
        crate::paths::test_support::remove_temp_node(&node);
    }

    #[test]
    fn routed_needs_an_ip_and_routes_through_the_table() {
        let node = temp_node("tap-routed", "node1", &[]);
        let r = RecordingRunner::new();
        let nic = spec("routed", "100", None, "");
        let e = configure(&node, &r, &tap_nic(&nic))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("NIC 0 (tap gntabcdn0)") && e.contains("needs an IP"),
            "{e}"
        );
        assert!(r.calls().is_empty());

        let nic = spec("routed", "100", Some("192.0.2.7"), "");
        r.push_answer(Ok("")); // up
        r.push_answer(Err("RTNETLINK answers: No such file or directory")); // no old rule
        configure(&node, &r, &tap_nic(&nic)).unwrap();
        assert_eq!(
            argvs(&r),
            vec![
                "ip link set dev gntabcdn0 up",
                "ip rule del dev gntabcdn0",
                "ip rule add dev gntabcdn0 table 100",
                "ip route replace 192.0.2.7 table 100 proto static dev gntabcdn0",
            ]
        );
        let r = RecordingRunner::new();
        teardown(&r, &tap_nic(&nic));
        assert_eq!(
            argvs(&r),
            vec![
                "ip route del 192.0.2.7 table 100 dev gntabcdn0",
                "ip rule del dev gntabcdn0 table 100",
            ]
        );
        let r = RecordingRunner::new();
        let nic = spec("routed", "", Some("2001:db8::7"), "");
        configure(&node, &r, &tap_nic(&nic)).unwrap();
        assert_eq!(
            argvs(&r)[1],
            "ip route replace 2001:db8::7 proto static dev gntabcdn0"
        );
        let nic = spec("routed", "", Some("not-an-ip"), "");
        let e = configure(&node, &r, &tap_nic(&nic)).unwrap_err();
        assert!(e.to_string().contains("not-an-ip"), "{e}");
        crate::paths::test_support::remove_temp_node(&node);
    }

    #[test]
    fn failures_name_the_nic_and_the_command() {
        let node = temp_node("tap-fail", "node1", &[]);
        let r = RecordingRunner::new();
        r.push_answer(Ok(""));
        r.push_answer(Ok("")); // mtu: none reported
        r.push_answer(Ok(""));
        r.push_answer(Err("Cannot find device \"br9\""));
        let nic = spec("bridged", "br9", None, "");
        let e = crate::error::chain(&configure(&node, &r, &tap_nic(&nic)).unwrap_err());
        assert!(
            e.contains("NIC 0 (tap gntabcdn0): setting up the bridged interface failed")
                && e.contains("ip link set dev gntabcdn0 master br9")
                && e.contains("Cannot find device"),
            "{e}"
        );
        for (mode, link, vlan, want) in [
            ("bridged", "br0;rm", "", "not a usable interface name"),
            ("bridged", "br0", "5000", "not a VLAN id"),
            ("macvtap", "x", "", "unknown NIC mode"),
        ] {
            let nic = spec(mode, link, None, vlan);
            let e = configure(&node, &RecordingRunner::new(), &tap_nic(&nic))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{mode} {link} {vlan}: {e}");
        }
        crate::paths::test_support::remove_temp_node(&node);
    }

    #[test]
    fn site_hooks_replace_the_builtin_setup() {
        use std::os::unix::fs::PermissionsExt;
        let node = temp_node("tap-hook", "node1", &[]);
        let conf = &node.conf_dir();
        std::fs::create_dir_all(conf.as_path()).unwrap();
        let hook = conf.join(VIF_HOOK);
        crate::sys::fs::atomic_write(&hook, b"#!/bin/sh\n", 0o644).unwrap();
        // Not executable: ignored.
        let r = RecordingRunner::new();
        let nic = spec("openvswitch", "sw0", None, "");
        configure(&node, &r, &tap_nic(&nic)).unwrap();
        assert_eq!(argvs(&r)[0], "ovs-vsctl del-port gntabcdn0");
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        let r = RecordingRunner::new();
        configure(&node, &r, &tap_nic(&nic)).unwrap();
        let calls = r.calls();
        assert_eq!(calls.len(), 1);
        assert_eq!(
            calls[0].argv,
            vec![hook.display().to_string(), "gntabcdn0".into()]
        );
        assert!(calls[0]
            .env
            .contains(&("MODE".to_string(), "openvswitch".to_string())));
        // The communication hook only runs for gnt.com taps.
        let os_hook = conf.join(IFUP_OS_HOOK);
        crate::sys::fs::atomic_write(&os_hook, b"#!/bin/sh\n", 0o644).unwrap();
        std::fs::set_permissions(&os_hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        let nic = spec("routed", "", Some("192.0.2.9"), "");
        let r = RecordingRunner::new();
        configure(
            &node,
            &r,
            &TapNic {
                tap: "gnt.com.3",
                ..tap_nic(&nic)
            },
        )
        .unwrap();
        assert_eq!(r.calls()[0].argv[0], os_hook.display().to_string());
        crate::paths::test_support::remove_temp_node(&node);
    }

    #[test]
    fn vlan_forms() {
        assert_eq!(parse_vlan(""), Ok((None, vec![])));
        assert_eq!(parse_vlan(".7"), Ok((Some(7), vec![])));
        assert_eq!(parse_vlan("7"), Ok((Some(7), vec![])));
        assert_eq!(parse_vlan(":7:8"), Ok((None, vec![7, 8])));
        assert_eq!(parse_vlan(".7:8"), Ok((Some(7), vec![8])));
        assert!(parse_vlan("x").is_err());
        assert!(parse_vlan(".0").is_err());
    }
}
