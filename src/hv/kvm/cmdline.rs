//! The QEMU command line of an instance, built from its filled hvparams
//! and beparams (parameter names as in Ganeti's `hv_kvm`). Pure: every
//! decision about the host (accelerator, file locations) comes in as an
//! argument, so the tests cover it without QEMU.

use super::super::{beparam_mib, beparam_vcpus, HvError, StartMode};
use crate::rpc::proto::{AssembledDisk, InstanceSpec, Params};
use std::path::PathBuf;

/// Ganeti's `VNC_BASE_PORT`: VNC display N listens on 5900 + N.
pub const VNC_BASE_PORT: u32 = 5900;

/// Default QEMU binary when `kvm_path` is empty.
pub const DEFAULT_KVM_PATH: &str = "qemu-system-x86_64";

/// Which accelerator QEMU uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualisation through `/dev/kvm`.
    Kvm,
    /// QEMU's software emulation.
    Tcg,
}

/// The per-instance files QEMU is told about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceFiles {
    /// `pid/<name>`.
    pub pid_file: PathBuf,
    /// `ctrl/<name>.qmp`.
    pub qmp_socket: PathBuf,
    /// `ctrl/<name>.serial`.
    pub serial_socket: PathBuf,
    /// `chroot/<name>` (only used with `use_chroot`).
    pub chroot_dir: PathBuf,
}

/// Where the instance comes from: booted, or received by migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boot {
    /// A normal start.
    Fresh(StartMode),
    /// `-incoming tcp:ADDR:PORT` on the migration target.
    Incoming(String),
}

/// How QEMU is told to drop root: `-runas USER` (QEMU before 9.1; QEMU
/// 10 no longer has it) or `-run-with user=USER` (9.1 on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunAsFlag {
    /// `-runas USER`.
    #[default]
    Runas,
    /// `-run-with user=USER`.
    RunWith,
}

impl RunAsFlag {
    /// The flag QEMU `major.minor` understands.
    pub fn for_version(major: u64, minor: u64) -> Self {
        if (major, minor) >= (9, 1) {
            RunAsFlag::RunWith
        } else {
            RunAsFlag::Runas
        }
    }

    fn args(self, user: &str) -> [String; 2] {
        match self {
            RunAsFlag::Runas => ["-runas".into(), user.into()],
            RunAsFlag::RunWith => ["-run-with".into(), format!("user={user}")],
        }
    }
}

/// Who QEMU runs as, decided on the node before the command line is built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Security {
    /// The flag this QEMU takes.
    pub flag: RunAsFlag,
    /// For `security_model=pool`: the user reserved from the uid pool
    /// (`UID:GID` with `-run-with`, a user name with `-runas`).
    pub pool_user: Option<String>,
}

/// A string hvparam; missing or null is `""`.
pub fn hv_str<'a>(hvparams: &'a Params, key: &str) -> &'a str {
    hvparams
        .get(key)
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
}

/// A boolean hvparam (`true`/`false` or the strings), `default` when absent.
pub fn hv_bool(hvparams: &Params, key: &str, default: bool) -> bool {
    match hvparams.get(key) {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => matches!(s.as_str(), "true" | "True" | "yes" | "1"),
        _ => default,
    }
}

fn bad(instance: &InstanceSpec, param: &str, value: &str, reason: &str) -> HvError {
    HvError::BadParameter {
        instance: instance.name.clone(),
        param: param.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// Option values go into comma-separated QEMU lists: refuse commas and
/// control characters rather than let them add options.
fn plain(instance: &InstanceSpec, param: &str, value: &str) -> Result<(), HvError> {
    if value.contains(',') || value.chars().any(char::is_control) {
        return Err(bad(
            instance,
            param,
            value,
            "may not contain commas or control characters",
        ));
    }
    Ok(())
}

/// The argv to start `instance` (program first).
pub fn build(
    instance: &InstanceSpec,
    disks: &[AssembledDisk],
    files: &InstanceFiles,
    accel: Accel,
    security: &Security,
    boot: &Boot,
) -> Result<Vec<String>, HvError> {
    let hvp = &instance.hvparams;
    let mut argv: Vec<String> = Vec::new();
    let mut push = |args: &[&str]| argv.extend(args.iter().map(|s| s.to_string()));
    let kvm_path = match hv_str(hvp, "kvm_path") {
        "" => DEFAULT_KVM_PATH,
        p => p,
    };
    let memory = beparam_mib(instance, "maxmem")?;
    let vcpus = beparam_vcpus(instance)?;
    push(&[kvm_path, "-name", &instance.name]);
    // QEMU only takes a canonical UUID; Ganeti's always are, and anything
    // else (test specs) is left out rather than failing the start.
    if is_uuid(&instance.uuid) {
        push(&["-uuid", &instance.uuid]);
    }
    push(&["-m", &memory.to_string(), "-smp", &vcpus.to_string()]);
    push(&["-pidfile", &files.pid_file.to_string_lossy(), "-daemonize"]);
    push(&[
        "-accel",
        match accel {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        },
    ]);
    let machine = hv_str(hvp, "machine_version");
    if !machine.is_empty() {
        plain(instance, "machine_version", machine)?;
        push(&["-machine", machine]);
    }
    let cpu = hv_str(hvp, "cpu_type");
    if !cpu.is_empty() {
        push(&["-cpu", cpu]);
    }
    push(&[
        "-qmp",
        &format!("unix:{},server=on,wait=off", files.qmp_socket.display()),
    ]);
    push(&["-device", "virtio-balloon"]);
    if hv_bool(hvp, "serial_console", true) {
        push(&[
            "-serial",
            &format!("unix:{},server=on,wait=off", files.serial_socket.display()),
        ]);
    } else {
        push(&["-serial", "none"]);
    }

    // Display: VNC on the master-allocated port when a bind address is set.
    let vnc_bind = hv_str(hvp, "vnc_bind_address");
    match (vnc_bind, instance.network_port) {
        ("", _) => push(&["-display", "none"]),
        (addr, Some(port)) if port > VNC_BASE_PORT => {
            plain(instance, "vnc_bind_address", addr)?;
            let display = port - VNC_BASE_PORT;
            let mut arg = if addr == "0.0.0.0" {
                format!(":{display}")
            } else if addr.contains(':') {
                format!("[{addr}]:{display}")
            } else {
                format!("{addr}:{display}")
            };
            if !hv_str(hvp, "vnc_password_file").is_empty() {
                arg.push_str(",password=on");
            }
            push(&["-vnc", &arg]);
        }
        (addr, port) => {
            return Err(bad(
                instance,
                "vnc_bind_address",
                addr,
                &format!(
                    "needs a network port above {VNC_BASE_PORT}, the instance has {}",
                    port.map_or("none".to_string(), |p| p.to_string())
                ),
            ))
        }
    }

    // Boot order and direct kernel boot.
    let boot_order = hv_str(hvp, "boot_order");
    let boot_letter = match boot_order {
        "" | "disk" => "c",
        "cdrom" => "d",
        "network" => "n",
        "floppy" => "a",
        other => {
            return Err(bad(
                instance,
                "boot_order",
                other,
                "must be disk, cdrom, network or floppy",
            ))
        }
    };
    let kernel = hv_str(hvp, "kernel_path");
    if kernel.is_empty() {
        push(&["-boot", boot_letter]);
    } else {
        push(&["-kernel", kernel]);
        let initrd = hv_str(hvp, "initrd_path");
        if !initrd.is_empty() {
            push(&["-initrd", initrd]);
        }
        let mut append = Vec::new();
        let root = hv_str(hvp, "root_path");
        if !root.is_empty() {
            append.push(format!("root={root}"));
        }
        let args = hv_str(hvp, "kernel_args");
        if !args.is_empty() {
            append.push(args.to_string());
        }
        if hv_bool(hvp, "serial_console", true) {
            let speed = match hvp.get("serial_speed") {
                Some(serde_json::Value::Number(n)) => n.to_string(),
                Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
                _ => "38400".to_string(),
            };
            append.push(format!("console=ttyS0,{speed}"));
        }
        push(&["-append", &append.join(" ")]);
    }

    // Disks.
    let interface = match hv_str(hvp, "disk_type") {
        "" | "paravirtual" => "virtio",
        t @ ("ide" | "scsi" | "sd" | "mtd" | "pflash") => t,
        other => {
            return Err(bad(
                instance,
                "disk_type",
                other,
                "must be paravirtual, ide, scsi, sd, mtd or pflash",
            ))
        }
    };
    let cache = match hv_str(hvp, "disk_cache") {
        "" | "default" => None,
        c @ ("none" | "writeback" | "writethrough") => Some(c),
        other => {
            return Err(bad(
                instance,
                "disk_cache",
                other,
                "must be default, none, writeback or writethrough",
            ))
        }
    };
    let aio = match hv_str(hvp, "disk_aio") {
        "" => None,
        a @ ("threads" | "native" | "io_uring") => Some(a),
        other => {
            return Err(bad(
                instance,
                "disk_aio",
                other,
                "must be threads, native or io_uring",
            ))
        }
    };
    for (idx, disk) in disks.iter().enumerate() {
        plain(instance, "disk path", &disk.path)?;
        let mut drive = format!("file={},format=raw,if={interface}", disk.path);
        if let Some(c) = cache {
            drive.push_str(&format!(",cache={c}"));
        }
        if let Some(a) = aio {
            // QEMU wants O_DIRECT for native AIO.
            if a == "native" && cache.is_none() {
                drive.push_str(",cache.direct=on");
            }
            drive.push_str(&format!(",aio={a}"));
        }
        let spec_mode = instance.disks.get(idx).map(|d| d.mode.as_str());
        if spec_mode == Some("ro") {
            drive.push_str(",readonly=on");
        }
        push(&["-drive", &drive]);
    }

    // NICs: one tap per NIC, named after the instance's NIC index; QEMU
    // creates it, and the hypervisor connects it afterwards (net::tap).
    let model = match hv_str(hvp, "nic_type") {
        "" | "paravirtual" => "virtio-net-pci",
        m @ ("e1000" | "rtl8139" | "ne2k_pci" | "pcnet" | "i82551" | "i82557b" | "i82559er") => m,
        other => return Err(bad(instance, "nic_type", other, "unknown NIC model")),
    };
    if instance.nics.is_empty() {
        push(&["-nic", "none"]);
    }
    for (idx, nic) in instance.nics.iter().enumerate() {
        plain(instance, "mac", &nic.mac)?;
        let id = format!("hostnet{idx}");
        push(&[
            "-netdev",
            &format!(
                "tap,id={id},ifname={},script=no,downscript=no",
                tap_name(instance, idx)
            ),
            "-device",
            &format!("{model},netdev={id},mac={}", nic.mac),
        ]);
    }

    // Security and isolation.
    match hv_str(hvp, "security_model") {
        "" | "none" => {}
        "user" => {
            let user = hv_str(hvp, "security_domain");
            if user.is_empty() {
                return Err(bad(
                    instance,
                    "security_domain",
                    user,
                    "security_model=user needs a user name",
                ));
            }
            plain(instance, "security_domain", user)?;
            let a = security.flag.args(user);
            push(&[&a[0], &a[1]]);
        }
        "pool" => match &security.pool_user {
            Some(user) => {
                let a = security.flag.args(user);
                push(&[&a[0], &a[1]]);
            }
            None => {
                return Err(bad(
                    instance,
                    "security_model",
                    "pool",
                    "no uid was reserved from the node's uid pool",
                ))
            }
        },
        other => {
            return Err(bad(
                instance,
                "security_model",
                other,
                "must be none, user or pool",
            ))
        }
    }
    if hv_bool(hvp, "use_chroot", false) {
        push(&["-chroot", &files.chroot_dir.to_string_lossy()]);
    }

    match boot {
        Boot::Fresh(StartMode::Paused) => push(&["-S"]),
        Boot::Fresh(StartMode::Running) => {}
        Boot::Incoming(uri) => push(&["-incoming", uri]),
    }
    let extra = hv_str(hvp, "kvm_extra");
    argv.extend(extra.split_whitespace().map(str::to_string));
    Ok(argv)
}

/// Whether `s` is a canonical 8-4-4-4-12 hexadecimal UUID.
pub fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The tap device of NIC `idx` (at most 15 characters, the kernel's limit).
pub fn tap_name(instance: &InstanceSpec, idx: usize) -> String {
    let short: String = instance
        .uuid
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    format!("gnt{short}n{idx}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hv::fake::test_support::instance;
    use serde_json::json;

    fn files() -> InstanceFiles {
        InstanceFiles {
            pid_file: "/r/kvm-hypervisor/pid/i1".into(),
            qmp_socket: "/r/kvm-hypervisor/ctrl/i1.qmp".into(),
            serial_socket: "/r/kvm-hypervisor/ctrl/i1.serial".into(),
            chroot_dir: "/r/kvm-hypervisor/chroot/i1".into(),
        }
    }

    fn disk(path: &str) -> AssembledDisk {
        AssembledDisk {
            uuid: "d".into(),
            path: path.into(),
            uri: None,
        }
    }

    fn joined(argv: &[String]) -> String {
        argv.join(" ")
    }

    #[test]
    fn defaults_give_a_headless_virtio_vm() {
        let i = instance("i1", "kvm", 256);
        let argv = build(
            &i,
            &[disk("/dev/loop0")],
            &files(),
            Accel::Tcg,
            &Security::default(),
            &Boot::Fresh(StartMode::Running),
        )
        .unwrap();
        assert_eq!(
            joined(&argv),
            "qemu-system-x86_64 -name i1 -m 256 -smp 2 \
             -pidfile /r/kvm-hypervisor/pid/i1 -daemonize -accel tcg \
             -qmp unix:/r/kvm-hypervisor/ctrl/i1.qmp,server=on,wait=off -device virtio-balloon \
             -serial unix:/r/kvm-hypervisor/ctrl/i1.serial,server=on,wait=off \
             -display none -boot c -drive file=/dev/loop0,format=raw,if=virtio -nic none"
        );
    }

    #[test]
    fn kernel_vnc_disks_and_extra() {
        let mut i = instance("i1", "kvm", 1024);
        i.uuid = "0b9f5e8a-1c2d-4e5f-8a9b-0c1d2e3f4a5b".into();
        i.network_port = Some(11005);
        i.hvparams = serde_json::from_value(json!({
            "kvm_path": "/usr/bin/kvm", "kernel_path": "/boot/vmlinuz", "initrd_path": "/boot/initrd",
            "root_path": "/dev/vda1", "kernel_args": "ro quiet", "serial_speed": 115200,
            "vnc_bind_address": "127.0.0.1", "vnc_password_file": "/etc/ganeti/vnc",
            "disk_type": "scsi", "disk_cache": "none", "disk_aio": "native",
            "machine_version": "pc-q35-7.2", "cpu_type": "host", "kvm_extra": "-rtc base=utc",
            "nic_type": "e1000"
        }))
        .unwrap();
        i.nics.push(crate::rpc::proto::NicSpec {
            uuid: "n".into(),
            name: None,
            mac: "aa:00:00:11:22:33".into(),
            ip: None,
            mode: "bridged".into(),
            link: "br0".into(),
            vlan: "".into(),
            network: None,
        });
        let argv = build(
            &i,
            &[disk("/dev/loop1")],
            &files(),
            Accel::Kvm,
            &Security::default(),
            &Boot::Fresh(StartMode::Paused),
        )
        .unwrap();
        let s = joined(&argv);
        assert!(argv[0] == "/usr/bin/kvm" && s.contains("-accel kvm"), "{s}");
        assert!(
            s.contains("-uuid 0b9f5e8a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"),
            "{s}"
        );
        assert!(s.contains("-machine pc-q35-7.2 -cpu host"), "{s}");
        assert!(s.contains("-vnc 127.0.0.1:5105,password=on"), "{s}");
        assert!(
            s.contains("-kernel /boot/vmlinuz -initrd /boot/initrd -append root=/dev/vda1 ro quiet console=ttyS0,115200"),
            "{s}"
        );
        assert!(!s.contains("-boot"), "{s}");
        assert!(
            s.contains("-drive file=/dev/loop1,format=raw,if=scsi,cache=none,aio=native"),
            "{s}"
        );
        assert!(
            s.contains("-netdev tap,id=hostnet0,ifname=gnt0b9f5e8an0,script=no,downscript=no -device e1000,netdev=hostnet0,mac=aa:00:00:11:22:33"),
            "{s}"
        );
        assert!(s.ends_with("-S -rtc base=utc"), "{s}");
    }

    #[test]
    fn incoming_serial_off_security_and_chroot() {
        let mut i = instance("i1", "kvm", 128);
        i.hvparams = serde_json::from_value(json!({
            "serial_console": false, "security_model": "user", "security_domain": "qemu",
            "use_chroot": true, "boot_order": "cdrom", "vnc_bind_address": "::1"
        }))
        .unwrap();
        i.network_port = Some(5901);
        let argv = build(
            &i,
            &[],
            &files(),
            Accel::Tcg,
            &Security::default(),
            &Boot::Incoming("tcp:127.0.0.2:8102".into()),
        )
        .unwrap();
        let s = joined(&argv);
        assert!(s.contains("-serial none"), "{s}");
        assert!(s.contains("-vnc [::1]:1"), "{s}");
        assert!(s.contains("-boot d"), "{s}");
        assert!(
            s.contains("-runas qemu -chroot /r/kvm-hypervisor/chroot/i1"),
            "{s}"
        );
        assert!(s.ends_with("-incoming tcp:127.0.0.2:8102"), "{s}");
    }

    #[test]
    fn run_as_flags_follow_the_qemu_version() {
        assert_eq!(RunAsFlag::for_version(9, 0), RunAsFlag::Runas);
        assert_eq!(RunAsFlag::for_version(9, 1), RunAsFlag::RunWith);
        assert_eq!(RunAsFlag::for_version(10, 0), RunAsFlag::RunWith);
        let mut i = instance("i1", "kvm", 128);
        i.hvparams.insert("security_model".into(), json!("pool"));
        let pool = Security {
            flag: RunAsFlag::RunWith,
            pool_user: Some("5000:5000".into()),
        };
        let run = |i: &InstanceSpec, sec: &Security| {
            build(
                i,
                &[],
                &files(),
                Accel::Tcg,
                sec,
                &Boot::Fresh(StartMode::Running),
            )
            .map(|a| joined(&a))
        };
        assert!(run(&i, &pool).unwrap().contains("-run-with user=5000:5000"));
        i.hvparams =
            serde_json::from_value(json!({"security_model": "user", "security_domain": "qemu"}))
                .unwrap();
        assert!(run(&i, &pool).unwrap().contains("-run-with user=qemu"));
        assert!(run(&i, &Security::default())
            .unwrap()
            .contains("-runas qemu"));
    }

    #[test]
    fn bad_parameters_are_named() {
        let cases = [
            (json!({"disk_type": "floppy-ish"}), "disk_type=floppy-ish"),
            (json!({"disk_cache": "sometimes"}), "disk_cache=sometimes"),
            (json!({"boot_order": "usb"}), "boot_order=usb"),
            (json!({"nic_type": "tulip"}), "nic_type=tulip"),
            (json!({"security_model": "user"}), "security_domain="),
            (json!({"security_model": "pool"}), "security_model=pool"),
            (
                json!({"vnc_bind_address": "0.0.0.0"}),
                "network port above 5900",
            ),
            (json!({"machine_version": "pc,accel=xen"}), "commas"),
        ];
        for (params, want) in cases {
            let mut i = instance("i1", "kvm", 128);
            i.hvparams = serde_json::from_value(params.clone()).unwrap();
            let e = build(
                &i,
                &[],
                &files(),
                Accel::Tcg,
                &Security::default(),
                &Boot::Fresh(StartMode::Running),
            )
            .unwrap_err()
            .to_string();
            assert!(
                e.contains(want) && e.contains("instance i1"),
                "{params}: {e}"
            );
        }
        let e = build(
            &instance("i1", "kvm", 128),
            &[disk("/x,if=none")],
            &files(),
            Accel::Tcg,
            &Security::default(),
            &Boot::Fresh(StartMode::Running),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("disk path"), "{e}");
    }
}
