//! KVM hypervisor benchmark: `cargo bench --bench kvm` (the figures in
//! docs/hypervisors.md were taken with `--profile dev`: the time is QEMU's,
//! not ours).
//!
//! Prints medians of N runs, never asserts. Real QEMU under TCG, BIOS only
//! (no disk, no NIC), through `KvmHypervisor` with virtual node roots under
//! the temp directory:
//!
//! 1. start: `KvmHypervisor::start` (QEMU daemonizes, the start waits for
//!    its monitor) until QMP `query-status` says `running`.
//! 2. live migration of an idle 256 MB VM between two node roots on this
//!    host: target `accept_instance` (QEMU `-incoming`), source `migrate`,
//!    polling `migration_status` until `completed`; then both finalize.
//!
//! Skips with a message when `qemu-system-x86_64` is not installed.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::expect_used)]

use ganeti::hv::kvm::KvmHypervisor;
use ganeti::hv::{Hypervisor, MigrationMode, MigrationOutcome, StartMode};
use ganeti::paths::Paths;
use ganeti::rpc::proto::{InstanceSpec, Params};
use ganeti::sys::cmd::RealRunner;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const RUNS: usize = 5;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn node(base: &std::path::Path, name: &str) -> KvmHypervisor {
    let root = base.join(name);
    std::fs::create_dir_all(&root).unwrap();
    let paths = Paths::virtual_node(&root, name).unwrap();
    KvmHypervisor::new(&paths, Arc::new(RealRunner))
}

fn instance(name: &str, memory_mib: u64) -> InstanceSpec {
    let mut hvparams = Params::new();
    hvparams.insert("kvm_flag".into(), json!("disabled"));
    hvparams.insert("serial_console".into(), json!(false));
    hvparams.insert("migration_port".into(), json!(18102));
    let mut beparams = Params::new();
    beparams.insert("maxmem".into(), json!(memory_mib));
    beparams.insert("vcpus".into(), json!(1));
    InstanceSpec {
        name: name.into(),
        uuid: "be0c0001-1c2d-4e5f-8a9b-0c1d2e3f4a5b".into(),
        hypervisor: "kvm".into(),
        hvparams,
        beparams,
        os: "noop".into(),
        osparams: Default::default(),
        osparams_private: Default::default(),
        nics: vec![],
        disks: vec![],
        network_port: None,
    }
}

fn state(hv: &KvmHypervisor, name: &str) -> Option<String> {
    hv.instance_info(name, &Params::new())
        .ok()
        .flatten()
        .map(|i| i.state)
}

fn bench_start(base: &std::path::Path) -> Duration {
    let hv = node(base, "start1");
    let inst = instance("bench-start", 64);
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let t0 = Instant::now();
        hv.start(&inst, &[], StartMode::Running).expect("start");
        while state(&hv, &inst.name).as_deref() != Some("running") {
            std::thread::sleep(Duration::from_millis(5));
        }
        times.push(t0.elapsed());
        hv.stop(&inst, Duration::ZERO).expect("stop");
    }
    median(times)
}

fn bench_migration(base: &std::path::Path) -> Duration {
    let src = node(base, "node1");
    let dst = node(base, "node2");
    let inst = instance("bench-mig", 256);
    let mut times = Vec::new();
    for _ in 0..RUNS {
        src.start(&inst, &[], StartMode::Running).expect("start");
        let info = src.migration_info(&inst).expect("migration info");
        dst.accept_instance(&inst, &info, "127.0.0.1", &[])
            .expect("accept");
        let t0 = Instant::now();
        src.migrate(&inst, &info, "127.0.0.1", MigrationMode::Live)
            .expect("migrate");
        loop {
            let s = src.migration_status(&inst).expect("status");
            match s.status.as_str() {
                "completed" => break,
                "failed" | "cancelled" => panic!("migration {}: {:?}", s.status, s.message),
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        times.push(t0.elapsed());
        dst.finalize_migration_dst(&inst, &info, MigrationOutcome::Success)
            .expect("finalize dst");
        src.finalize_migration_src(&inst, MigrationOutcome::Success, MigrationMode::Live)
            .expect("finalize src");
        assert_eq!(state(&dst, &inst.name).as_deref(), Some("running"));
        dst.stop(&inst, Duration::ZERO).expect("stop");
    }
    median(times)
}

fn main() {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("qemu-system-x86_64").is_file()))
        .unwrap_or(false);
    if !found {
        println!("SKIPPED kvm bench: qemu-system-x86_64 is not installed");
        return;
    }
    let base = std::env::temp_dir().join(format!("ganeti-kvm-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let start = bench_start(&base);
    println!(
        "kvm start -> QMP running (BIOS-only, TCG, 64 MB): median {:.3} s of {RUNS}",
        start.as_secs_f64()
    );
    let mig = bench_migration(&base);
    println!(
        "kvm live migration, idle 256 MB VM, loopback: median {:.3} s of {RUNS}",
        mig.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&base);
}
