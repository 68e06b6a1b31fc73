//! Load benchmark: starts its own relay on 127.0.0.1 (temp data dir), then measures sustained
//! envelopes/s, p50/p99 delivery latency and memory per idle connection.
//!
//! `cargo bench -p sotto-relay --bench relay_load -- [--clients N] [--seconds S] [--idle M]`
//! Bounded: at most 500 client pairs, 60 s of sending and 5000 idle connections. Never targets
//! anything but the relay it started on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)] // bench tool

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Client, Relay, address, random_key};
use tokio::sync::Mutex;

fn arg(name: &str, default: u64, max: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .min(max)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let pairs = arg("--clients", 50, 500).max(1) as usize;
    let seconds = arg("--seconds", 10, 60).max(1);
    let idle = arg("--idle", 1000, 5000) as usize;
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(
        dir.path(),
        &[
            "--send-per-minute",
            "100000000",
            "--frames-per-second",
            "1000000",
            "--auth-per-minute",
            "1000000",
            "--max-connections-per-ip",
            "100000",
            "--idle-timeout-secs",
            "600",
        ],
    )
    .unwrap();
    let pid = relay.pid();
    println!(
        "relay on {} (pid {pid}), {pairs} sender/receiver pairs, {seconds} s",
        relay.addr
    );

    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::<u64>::new()));
    let mut receivers = Vec::new();
    let mut targets = Vec::new();
    for _ in 0..pairs {
        let key = random_key();
        let mut c = relay.connect().await.unwrap();
        c.authenticate(&key, 1).await.unwrap();
        c.drain_backlog().await.unwrap();
        targets.push(address(&key, 1));
        let (stop, latencies) = (stop.clone(), latencies.clone());
        receivers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match c.next_envelope(Duration::from_millis(500)).await {
                    Ok(d) => {
                        let sent = u64::from_be_bytes(d.envelope[..8].try_into().unwrap());
                        mine.push(epoch.elapsed().as_micros() as u64 - sent);
                        c.ack(d.message_id).await.unwrap();
                    }
                    Err(_) => continue,
                }
            }
            latencies.lock().await.extend(mine);
        }));
    }
    let mut senders = Vec::new();
    for (i, _) in targets.iter().enumerate() {
        let to = targets[(i + 1) % targets.len()];
        let (addr, stop, accepted) = (relay.addr.clone(), stop.clone(), accepted.clone());
        senders.push(tokio::spawn(async move {
            let mut c = Client::connect(&addr).await.unwrap();
            let mut body = vec![0u8; 256];
            while !stop.load(Ordering::Relaxed) {
                body[..8].copy_from_slice(&(epoch.elapsed().as_micros() as u64).to_be_bytes());
                if c.send(to, &body).await.unwrap().is_ok() {
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    for s in senders {
        s.await.unwrap();
    }
    for r in receivers {
        r.await.unwrap();
    }
    let mut lat = latencies.lock().await.clone();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0)
    };
    let n = accepted.load(Ordering::Relaxed);
    println!(
        "accepted: {n} envelopes in {elapsed:.1} s = {:.0}/s",
        n as f64 / elapsed
    );
    println!(
        "delivered: {} (p50 {:.2} ms, p99 {:.2} ms)",
        lat.len(),
        pct(0.50) as f64 / 1000.0,
        pct(0.99) as f64 / 1000.0
    );

    // Idle connections: RSS growth per open, unauthenticated WebSocket.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(pid);
    let mut idle_conns = Vec::with_capacity(idle);
    for _ in 0..idle {
        idle_conns.push(relay.connect().await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(pid);
    if idle > 0 {
        println!(
            "idle connections: {idle}, relay RSS {before} KiB -> {after} KiB, ~{:.1} KiB each",
            after.saturating_sub(before) as f64 / idle as f64
        );
    }
    drop(idle_conns);
}
