//! Backup export/import timed by the calling thread's CPU time as well as wall time, for a
//! machine too busy for wall-time benchmarks. `cargo run --release -p sotto-store --example
//! backup_cpu -- [messages] [repeats] [import-only]`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../benches/support/population.rs"]
mod population;

use std::time::Instant;

use population::{FAST, populate};
use sotto_store::backup;
use sotto_store::{KeyProtection, Passphrase};

/// This thread's CPU time (user + system) in nanoseconds.
fn cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    s.split_whitespace().next().unwrap().parse().unwrap()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let repeats: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    // `import-only`: one export, and the backlog left alone.
    let import_only = args.next().is_some_and(|a| a == "import-only");
    let tmp = tempfile::tempdir().unwrap();
    let (store, _) = populate(&tmp.path().join("src"), n);
    let file = tmp.path().join("b.backup");
    let mut export = Vec::new();
    for _ in 0..if import_only { 1 } else { repeats } {
        let (c, w) = (cpu_ns(), Instant::now());
        backup::export(&store, &file, &Passphrase::from("b"), FAST, &mut |_| {}).unwrap();
        export.push((cpu_ns() - c, w.elapsed().as_nanos() as u64));
    }
    let bytes = std::fs::metadata(&file).unwrap().len();
    let mut import = Vec::new();
    let mut index = Vec::new();
    for _ in 0..repeats {
        let t = tempfile::tempdir().unwrap();
        let pw = Passphrase::from("x");
        let (c, w) = (cpu_ns(), Instant::now());
        let mut s = backup::import(
            &file,
            &Passphrase::from("b"),
            &t.path().join("p"),
            KeyProtection::Passphrase(&pw, FAST),
            &mut |_| {},
        )
        .unwrap();
        import.push((cpu_ns() - c, w.elapsed().as_nanos() as u64));
        if import_only {
            continue;
        }
        let (c, w) = (cpu_ns(), Instant::now());
        s.finish_search_backlog(5000).unwrap();
        index.push((cpu_ns() - c, w.elapsed().as_nanos() as u64));
        assert_eq!(s.search(&format!("message {}", n / 2), 5).unwrap().len(), 1);
    }
    let mib = bytes as f64 / (1024.0 * 1024.0);
    let report = |name: &str, v: &mut Vec<(u64, u64)>| {
        v.sort();
        let cpu_min = v[0].0 as f64 / 1e6;
        let cpu_med = v[v.len() / 2].0 as f64 / 1e6;
        let mut walls: Vec<u64> = v.iter().map(|x| x.1).collect();
        walls.sort();
        let wall_min = walls[0] as f64 / 1e6;
        let wall_med = walls[walls.len() / 2] as f64 / 1e6;
        println!(
            "{name}: cpu min {cpu_min:.1} ms median {cpu_med:.1} ms ({:.1} MiB/s at min cpu); wall min {wall_min:.1} ms median {wall_med:.1} ms ({:.1} MiB/s at min wall)",
            mib / (cpu_min / 1e3),
            mib / (wall_min / 1e3),
        );
    };
    println!("{n} messages, backup file {mib:.2} MiB, {repeats} runs each");
    report("export", &mut export);
    report("import", &mut import);
    if !import_only {
        report("index backlog after import (5000 per step)", &mut index);
    }
}
