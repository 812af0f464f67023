//! Benchmark of `gnt-instance list` without the socket: query instances
//! with the command's default fields (name, hypervisor, os, pnode, status,
//! oper_ram) on generated configs of 100, 1000 and 10,000 instances, then
//! render the table. Also a filtered query (`be/maxmem > 256 and name =~
//! /7/`) and one with `hv/*`/`be/*` parameter fields, which fill
//! parameters per row. Prints the median of 9 runs of each.
//!
//! Run with `cargo bench --bench query`.

use std::time::{Duration, Instant};

use ganeti::cli::output::{format_query_result, list_overrides, ListOptions};
use ganeti::config::test_support::generated;
use ganeti::query::{filter, query, Resource};

const RUNS: usize = 9;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(mut f: impl FnMut() -> T) -> Duration {
    let mut runs = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        std::hint::black_box(f());
        runs.push(start.elapsed());
    }
    median(runs)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[allow(clippy::print_stdout, clippy::unwrap_used)]
fn main() {
    let default = strings(&["name", "hypervisor", "os", "pnode", "status", "oper_ram"]);
    let params = strings(&[
        "name",
        "be/maxmem",
        "be/vcpus",
        "hv/kernel_path",
        "disk.sizes",
        "nic.macs",
    ]);
    let f = filter::parse_filter("be/maxmem > 256 and name =~ /7/").unwrap();
    let opts = ListOptions {
        header: true,
        overrides: list_overrides(Resource::Instance),
        ..ListOptions::default()
    };
    println!("instances  query+render  query-only  filtered  param-fields");
    for n in [100usize, 1000, 10_000] {
        let data = generated((n / 10).max(1), n);
        let full = time(|| {
            let r = query(Resource::Instance, &default, None, &data).unwrap();
            format_query_result(&r, &opts)
        });
        let q = time(|| query(Resource::Instance, &default, None, &data).unwrap());
        let filtered = time(|| query(Resource::Instance, &default, Some(&f), &data).unwrap());
        let p = time(|| {
            let r = query(Resource::Instance, &params, None, &data).unwrap();
            format_query_result(&r, &opts)
        });
        println!(
            "{n:>9}  {:>12}  {:>10}  {:>8}  {:>12}",
            ms(full),
            ms(q),
            ms(filtered),
            ms(p)
        );
    }
}
