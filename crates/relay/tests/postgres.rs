//! Two relay processes on one PostgreSQL database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test crate

mod common;

use std::time::{Duration, Instant};

use common::pg::Cluster;
use common::*;
use sotto_relay_wire::{Request, Response};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_one_database() {
    let cluster = Cluster::start().unwrap();
    let url = cluster.database("relay").await.unwrap();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let args = [
        "--database-url",
        url.as_str(),
        "--bundle-per-minute",
        "10000",
    ];
    let mut node_a = Relay::start(dir_a.path(), &args).unwrap();
    let node_b = Relay::start(dir_b.path(), &args).unwrap();
    let (alice, bob) = (key(21), key(22));

    // Bob is connected to node B; Alice sends through node A.
    let mut b = node_b.connect().await.unwrap();
    register_with_prekeys(&mut b, &bob, 1, 20).await.unwrap();
    b.drain_backlog().await.unwrap();
    let mut anon_a = node_a.connect().await.unwrap();
    for i in 0..5u8 {
        let sent = Instant::now();
        anon_a
            .send(address(&bob, 1), &[i; 16])
            .await
            .unwrap()
            .unwrap();
        let d = b.next_envelope(Duration::from_secs(1)).await.unwrap();
        assert_eq!(d.envelope, vec![i; 16]);
        assert!(
            sent.elapsed() < Duration::from_secs(1),
            "cross-node delivery took {:?}",
            sent.elapsed()
        );
        b.ack(d.message_id).await.unwrap();
    }

    // Usernames and bundles are shared; one-time keys go out once across nodes.
    let mut a = node_a.connect().await.unwrap();
    a.authenticate(&alice, 1).await.unwrap();
    a.request(Request::UsernameClaim {
        username: "alice".into(),
        pin_verifier: None,
    })
    .await
    .unwrap()
    .unwrap();
    let mut anon_b = node_b.connect().await.unwrap();
    assert_eq!(
        anon_b
            .request(Request::UsernameLookup {
                username: "alice".into()
            })
            .await
            .unwrap()
            .unwrap(),
        Response::Account {
            account: address(&alice, 1).account
        }
    );
    let mut ids = Vec::new();
    for i in 0..24 {
        let c = if i % 2 == 0 { &mut anon_a } else { &mut anon_b };
        if let Response::Bundle(bundle) = c
            .request(Request::FetchBundle {
                address: address(&bob, 1),
            })
            .await
            .unwrap()
            .unwrap()
        {
            ids.extend(bundle.one_time_prekey.map(|k| k.id));
        }
    }
    ids.sort_unstable();
    assert_eq!(ids, (100..120).collect::<Vec<u32>>());

    // Bob offline; node A accepts, is SIGKILLed; node B delivers on reconnect.
    drop(b);
    anon_a
        .send(address(&bob, 1), b"survives")
        .await
        .unwrap()
        .unwrap();
    node_a.kill();
    let mut b = node_b.connect().await.unwrap();
    b.authenticate(&bob, 1).await.unwrap();
    let backlog = b.drain_backlog().await.unwrap();
    assert_eq!(backlog.len(), 1);
    assert_eq!(backlog[0].envelope, b"survives");
}
