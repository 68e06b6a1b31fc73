//! Send-to-displayed latency between two clients over a real `sotto-relay` process on
//! loopback: the time from `send_text` being called on A until B's `next_event` returns the
//! `Message` event, i.e. the text is committed to B's store and can be displayed.
//!
//! Run: `SOTTO_RELAY_BIN=<a release sotto-relay> cargo bench -p sotto-client --bench latency`
//! (without `SOTTO_RELAY_BIN` the helper builds a debug relay, which measures the debug
//! relay). `SOTTO_BENCH_LATENCY_MESSAGES` sets the number of measured messages (default 300).
//!
//! A plain binary (no criterion) because the figures wanted are percentiles of single
//! send→display latencies, which criterion's per-batch means would hide.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../tests/relay_process/mod.rs"]
mod relay_process;

use std::time::{Duration, Instant};

use relay_process::Relay;
use sotto_client::{Client, Event, PrivacySettings};
use sotto_store::{AccountId, KdfParams, KeyProtection, Passphrase, Store};
use tempfile::TempDir;

/// Argon2id only runs when a profile is created or opened, never on the measured path, so
/// the bench uses cheap parameters to keep its setup short.
const KDF: KdfParams = KdfParams {
    m_cost_kib: 256,
    t_cost: 1,
    p_cost: 1,
};
const WARMUP: usize = 20;
const WAIT: Duration = Duration::from_secs(10);

async fn device(url: &str, name: &str) -> (Client, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let pw = Passphrase::from("bench");
    let store = Store::create(
        &dir.path().join("profile"),
        KeyProtection::Passphrase(&pw, KDF),
    )
    .unwrap();
    let mut c = Client::open(store, url).unwrap();
    c.connect(5).await.unwrap();
    c.register().await.unwrap();
    c.claim_username(name, None).await.unwrap();
    until(&mut c, |e| *e == Event::QueueDrained).await;
    (c, dir)
}

/// Processes events until one matches.
async fn until(c: &mut Client, pred: impl Fn(&Event) -> bool) -> Event {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Some(e) = c.next_event(WAIT).await.unwrap() {
            if pred(&e) {
                return e;
            }
            seen.push(e);
        }
    }
    panic!("timed out waiting for an event; saw {seen:?}");
}

/// One text A → B; returns the send→displayed latency. Afterwards A processes B's delivery
/// receipt (when B sends one), so every measured message starts from the same idle state.
async fn one(
    a: &mut Client,
    b: &mut Client,
    b_id: &AccountId,
    receipts: bool,
    i: usize,
) -> Duration {
    let text = format!("latency probe {i}");
    let t0 = Instant::now();
    let id = a.send_text(b_id, &text).await.unwrap();
    until(b, |e| matches!(e, Event::Message { .. })).await;
    let took = t0.elapsed();
    // B's pump turns again: the delivery receipt owed for the message goes out.
    b.send_owed_receipts().await;
    if receipts {
        until(
            a,
            |e| matches!(e, Event::Delivered { ids, .. } if ids.contains(&id)),
        )
        .await;
    }
    took
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn run(receipts: bool, n: usize) {
    // Both profiles send from 127.0.0.1: lift the per-address send limit, which is not what
    // this measures.
    let relay = Relay::start("latency", &["--send-per-minute", "1000000"]);
    let (mut a, _da) = device(&relay.url, "alice").await;
    let (mut b, _db) = device(&relay.url, "bobby").await;
    if !receipts {
        let settings = PrivacySettings {
            delivery_receipts: false,
            ..b.privacy().unwrap()
        };
        b.set_privacy(&settings).unwrap();
    }
    let b_id = a.add_contact("bobby").await.unwrap().contact;
    let a_id = b.add_contact("alice").await.unwrap().contact;
    // Both directions once, so both sessions are past their PreKey messages, then warm up.
    a.send_text(&b_id, "hello").await.unwrap();
    until(&mut b, |e| matches!(e, Event::Message { .. })).await;
    b.send_text(&a_id, "hello back").await.unwrap();
    until(&mut a, |e| matches!(e, Event::Message { .. })).await;
    for i in 0..WARMUP {
        one(&mut a, &mut b, &b_id, receipts, i).await;
    }
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        samples.push(one(&mut a, &mut b, &b_id, receipts, i).await);
    }
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / n as u32;
    println!(
        "send_to_displayed (B delivery receipts {}): n={n} p50={:.2} ms p95={:.2} ms p99={:.2} ms \
         mean={:.2} ms min={:.2} ms max={:.2} ms",
        if receipts { "on" } else { "off" },
        ms(percentile(&samples, 50.0)),
        ms(percentile(&samples, 95.0)),
        ms(percentile(&samples, 99.0)),
        ms(mean),
        ms(samples[0]),
        ms(samples[n - 1]),
    );
}

fn main() {
    let n = std::env::var("SOTTO_BENCH_LATENCY_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300usize)
        .max(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The default: B owes a delivery receipt for every message, sent after the message is
    // reported. Then without receipts, to show they add nothing to what a reader waits for.
    rt.block_on(run(true, n));
    rt.block_on(run(false, n));
}
