//! Store benchmarks: open, newest-50 of a large conversation, FTS search, backup throughput.
//! Sizes: `SOTTO_BENCH_MESSAGES` (default 100000) for the conversation and backup,
//! `SOTTO_BENCH_FTS_MESSAGES` (default 1000000) for search.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "support/population.rs"]
mod population;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use population::{FAST, populate};
use sotto_store::backup;
use sotto_store::{KeyProtection, Passphrase, Store};

fn size(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn benches(c: &mut Criterion) {
    let n = size("SOTTO_BENCH_MESSAGES", 100_000);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("conv");
    let (store, conv) = populate(&dir, n);

    c.bench_function(&format!("newest_50_of_{n}"), |b| {
        b.iter(|| store.newest_messages(conv, 50).unwrap())
    });

    let backup_file = tmp.path().join("b.backup");
    let bytes = {
        backup::export(
            &store,
            &backup_file,
            &Passphrase::from("b"),
            FAST,
            &mut |_| {},
        )
        .unwrap();
        std::fs::metadata(&backup_file).unwrap().len()
    };
    store.close().unwrap();
    let mut g = c.benchmark_group("backup");
    g.sample_size(10).throughput(Throughput::Bytes(bytes));
    let store = Store::open_with_passphrase(&dir, &Passphrase::from("bench")).unwrap();
    g.bench_function(format!("export_{n}"), |b| {
        b.iter(|| {
            backup::export(
                &store,
                &backup_file,
                &Passphrase::from("b"),
                FAST,
                &mut |_| {},
            )
            .unwrap()
        })
    });
    g.bench_function(format!("import_{n}"), |b| {
        b.iter_with_setup(
            || tempfile::tempdir().unwrap(),
            |t| {
                let pw = Passphrase::from("x");
                backup::import(
                    &backup_file,
                    &Passphrase::from("b"),
                    &t.path().join("p"),
                    KeyProtection::Passphrase(&pw, FAST),
                    &mut |_| {},
                )
                .unwrap()
            },
        )
    });
    g.finish();
    store.close().unwrap();

    let mut g = c.benchmark_group("open");
    g.sample_size(10);
    g.bench_function(format!("open_profile_{n}"), |b| {
        b.iter(|| Store::open_with_passphrase(&dir, &Passphrase::from("bench")).unwrap())
    });
    g.finish();

    let fts_n = size("SOTTO_BENCH_FTS_MESSAGES", 1_000_000);
    let fts_dir = tmp.path().join("fts");
    let (store, _) = populate(&fts_dir, fts_n);
    let mut g = c.benchmark_group("search");
    g.bench_function(format!("fts_rare_term_{fts_n}"), |b| {
        b.iter(|| store.search("message 4242", 20).unwrap())
    });
    g.bench_function(format!("fts_two_words_limit_50_{fts_n}"), |b| {
        b.iter(|| store.search("coffee garden", 50).unwrap())
    });
    g.finish();
}

criterion_group!(store_benches, benches);
criterion_main!(store_benches);
