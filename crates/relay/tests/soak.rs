//! Soak: clients exchange messages while the relay is SIGKILLed and restarted several times.
//! Every accepted message must be delivered, and none twice to the application once the client
//! dedupes by message id. `SOTTO_SOAK_CLIENTS` (default 32), `SOTTO_SOAK_ROUNDS` (default 4)
//! and `SOTTO_SOAK_MESSAGES` (per client per round, default 40) scale it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test crate

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use sotto_relay_wire::Push;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Default)]
struct Ledger {
    attempted: HashSet<Vec<u8>>,
    accepted: HashSet<Vec<u8>>,
    /// (recipient, message id) already handed to the application.
    seen_ids: HashSet<(usize, u64)>,
    /// Contents handed to the application, with how often.
    delivered: HashMap<Vec<u8>, usize>,
    redeliveries_deduped: usize,
}

impl Ledger {
    fn deliver(&mut self, recipient: usize, id: u64, content: Vec<u8>) {
        if self.seen_ids.insert((recipient, id)) {
            *self.delivered.entry(content).or_default() += 1;
        } else {
            self.redeliveries_deduped += 1;
        }
    }
}

fn record_pushes(ledger: &Mutex<Ledger>, me: usize, pushes: Vec<Push>) -> Vec<u64> {
    let mut acks = Vec::new();
    let mut l = ledger.lock().unwrap();
    for p in pushes {
        if let Push::Envelope(d) = p {
            l.deliver(me, d.message_id, d.envelope);
            acks.push(d.message_id);
        }
    }
    acks
}

const FAST: [&str; 8] = [
    "--send-per-minute",
    "10000000",
    "--frames-per-second",
    "100000",
    "--auth-per-minute",
    "1000000",
    "--max-connections-per-ip",
    "100000",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soak_with_sigkill_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = vec![Relay::start(dir.path(), &FAST).unwrap()];
    soak(&mut nodes, "sqlite").await;
}

/// Two relay processes on one PostgreSQL database; clients are spread over both and the
/// nodes are SIGKILLed in turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soak_two_postgres_nodes_with_sigkill_restarts() {
    let cluster = common::pg::Cluster::start().unwrap();
    let url = cluster.database("soak").await.unwrap();
    let mut args = FAST.to_vec();
    args.extend(["--database-url", url.as_str()]);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut nodes = vec![
        Relay::start(d1.path(), &args).unwrap(),
        Relay::start(d2.path(), &args).unwrap(),
    ];
    soak(&mut nodes, "postgres, 2 nodes").await;
}

async fn soak(nodes: &mut [Relay], label: &str) {
    let clients = env_or("SOTTO_SOAK_CLIENTS", 32).max(2);
    let rounds = env_or("SOTTO_SOAK_ROUNDS", 4);
    let per_round = env_or("SOTTO_SOAK_MESSAGES", 40);
    let relay = &nodes[0];
    let keys: Arc<Vec<_>> = Arc::new((0..clients).map(|_| random_key()).collect());
    for k in keys.iter() {
        let mut c = relay.connect().await.unwrap();
        c.authenticate(k, 1).await.unwrap();
    }
    let ledger = Arc::new(Mutex::new(Ledger::default()));

    for round in 0..rounds {
        let mut tasks = Vec::new();
        for me in 0..clients {
            let addr = nodes[me % nodes.len()].addr.clone();
            let (keys, ledger) = (keys.clone(), ledger.clone());
            tasks.push(tokio::spawn(async move {
                let Ok(mut c) = Client::connect(&addr).await else {
                    return;
                };
                if c.authenticate(&keys[me], 1).await.is_err() {
                    return;
                }
                for i in 0..per_round {
                    let to = (me + 1 + i % (keys.len() - 1)) % keys.len();
                    let content = format!("{me}/{round}/{i}").into_bytes();
                    ledger.lock().unwrap().attempted.insert(content.clone());
                    match c.send(address(&keys[to], 1), &content).await {
                        Ok(Ok(_)) => {
                            ledger.lock().unwrap().accepted.insert(content);
                        }
                        Ok(Err(e)) => panic!("send refused: {e}"),
                        Err(_) => return, // relay killed mid-request: not accepted
                    }
                    for id in record_pushes(&ledger, me, c.take_queued_pushes()) {
                        if c.ack(id).await.is_err() {
                            return;
                        }
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(150 + 50 * round as u64)).await;
        nodes[round % nodes.len()].kill_and_restart().unwrap();
        for t in tasks {
            t.await.unwrap();
        }
    }

    // Final collection, relays left running.
    let relay = &nodes[0];
    for (me, k) in keys.iter().enumerate() {
        let mut c = relay.connect().await.unwrap();
        c.authenticate(k, 1).await.unwrap();
        let backlog = c.drain_backlog().await.unwrap();
        let mut pushes: Vec<Push> = c.take_queued_pushes();
        pushes.extend(backlog.into_iter().map(Push::Envelope));
        for id in record_pushes(&ledger, me, pushes) {
            c.ack(id).await.unwrap();
        }
        c.barrier().await.unwrap();
    }

    // Everything was acknowledged: nothing left in any mailbox.
    for k in keys.iter() {
        let mut c = relay.connect().await.unwrap();
        c.authenticate(k, 1).await.unwrap();
        assert!(c.drain_backlog().await.unwrap().is_empty());
    }
    let l = ledger.lock().unwrap();
    assert!(!l.accepted.is_empty());
    for content in &l.accepted {
        assert_eq!(
            l.delivered.get(content),
            Some(&1),
            "accepted message {content:?} not delivered exactly once"
        );
    }
    for (content, n) in &l.delivered {
        assert!(
            l.attempted.contains(content),
            "delivered something never sent"
        );
        assert_eq!(*n, 1, "{content:?} delivered {n} times after dedupe");
    }
    eprintln!(
        "soak ({label}): {clients} clients, {rounds} kills, {} attempted, {} accepted, {} delivered, {} redeliveries deduped",
        l.attempted.len(),
        l.accepted.len(),
        l.delivered.len(),
        l.redeliveries_deduped
    );
}
