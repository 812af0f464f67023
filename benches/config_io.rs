//! Benchmark of `config.data` I/O on a large cluster (1000 nodes, 10,000
//! instances): (a) load = read + parse + validate, (b) write = serialize +
//! atomic write with fsync, alone and as a whole `ConfigStore::update`
//! (clone, validate, serialize, write, ssconf). Prints the median of 7 runs
//! of each. Goal: at most 100 ms each way.
//!
//! Run with `cargo bench --bench config_io`.

use std::time::{Duration, Instant};

use ganeti::config::store::{load_file, ConfigStore};
use ganeti::config::test_support::generated;
use ganeti::paths::Paths;

const NODES: usize = 1000;
const INSTANCES: usize = 10_000;
const RUNS: usize = 7;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(f: impl FnMut() -> T) -> Duration {
    let mut f = f;
    let mut runs = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        std::hint::black_box(f());
        runs.push(start.elapsed());
    }
    median(runs)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[allow(clippy::print_stdout, clippy::unwrap_used)]
fn main() {
    let base = std::env::temp_dir().join(format!("ganeti-bench-config-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let paths = Paths::virtual_node(&base.join("node1"), "node1").unwrap();

    let data = generated(NODES, INSTANCES);
    let store = ConfigStore::create(&paths, data).unwrap();
    let file = paths.config_file();
    let bytes = std::fs::metadata(&file).unwrap().len();

    let load = time(|| load_file(&file).unwrap());
    let raw = std::fs::read(&file).unwrap();
    let parse = time(|| ganeti::config::ConfigData::from_json(&raw, &file).unwrap());
    let parsed = ganeti::config::ConfigData::from_json(&raw, &file).unwrap();
    let validate = time(|| ganeti::config::validate::validate(&parsed).unwrap());
    let clone = time(|| parsed.clone());
    let render = time(|| ganeti::ssconf::render(&parsed));
    let snapshot = store.snapshot();
    let write = time(|| {
        let text = snapshot.to_json();
        ganeti::sys::fs::atomic_write(&file, &text, 0o640).unwrap();
    });
    let mut n = 0u64;
    let update = time(|| {
        n += 1;
        store
            .update(|d| {
                d.cluster.tags = [format!("bench{n}")].into();
                Ok(())
            })
            .unwrap()
    });

    println!("config_io: {NODES} nodes, {INSTANCES} instances, config.data {bytes} bytes");
    println!(
        "  (a) load (read + parse + validate):      median {} of {RUNS}",
        ms(load)
    );
    println!(
        "  (b) serialize + atomic write (fsync):    median {} of {RUNS}",
        ms(write)
    );
    println!(
        "      ConfigStore::update (+clone, validate, ssconf): median {} of {RUNS}",
        ms(update)
    );
    println!(
        "      parts: parse {}, validate {}, clone {}, ssconf render {}",
        ms(parse),
        ms(validate),
        ms(clone),
        ms(render)
    );
    let _ = std::fs::remove_dir_all(&base);
}
