//! Backup export/import timed by the calling thread's CPU time as well as wall time, for a
//! machine too busy for wall-time benchmarks. `cargo run --release -p sotto-store --example
//! backup_cpu -- [messages] [repeats]`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use sotto_store::backup;
use sotto_store::{
    AccountId, Address, Contact, DeliveryState, Direction, KdfParams, KeyProtection,
    MessageRequest, NewMessage, Passphrase, Store, Verification,
};

const FAST: KdfParams = KdfParams {
    m_cost_kib: 1024,
    t_cost: 1,
    p_cost: 1,
};
const WORDS: &[&str] = &[
    "apple", "river", "mountain", "coffee", "tomorrow", "meeting", "station", "garden", "photo",
    "letter", "window", "evening", "travel", "music", "yellow", "quiet", "budget", "doctor",
];

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
    let dir = tmp.path().join("src");
    let pw = Passphrase::from("bench");
    let mut store = Store::create(&dir, KeyProtection::Passphrase(&pw, FAST)).unwrap();
    let who = AccountId([3u8; 32]);
    store
        .add_contact(
            &Contact {
                account: who,
                device_id: 1,
                username: None,
                display_name: None,
                identity_key: vec![1; 33],
                verification: Verification::Unverified,
                blocked: false,
                request: MessageRequest::Accepted,
            },
            0,
        )
        .unwrap();
    let conv = store.conversation_with(&who, 0).unwrap();
    let bodies: Vec<String> = (0..n)
        .map(|i| {
            let w = |k: usize| WORDS[(i / k + k) % WORDS.len()];
            format!("{} {} {} message {i}", w(1), w(7), w(31))
        })
        .collect();
    let msgs: Vec<NewMessage<'_>> = bodies
        .iter()
        .enumerate()
        .map(|(j, b)| NewMessage {
            conversation: conv,
            direction: Direction::Incoming,
            sender: Address {
                account: who,
                device: 1,
            },
            body: b,
            sent_at: j as i64,
            received_at: None,
            state: DeliveryState::Delivered,
            expire_timer_secs: 0,
            relay_id: None,
            client_id: None,
        })
        .collect();
    store.insert_messages(&msgs).unwrap();
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
