//! Two relay processes on one PostgreSQL database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test crate

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
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

/// A self-signed certificate for `localhost` (its own CA) as (cert, key) PEM files in `dir`,
/// owned by `postgres`, the key private.
fn localhost_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec"])
        .args(["-pkeyopt", "ec_paramgen_curve:prime256v1"])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [dir, &cert, &key] {
        assert!(
            Command::new("chown")
                .arg("postgres:postgres")
                .arg(f)
                .status()
                .unwrap()
                .success()
        );
    }
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    (cert, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_process_uses_verified_tls_to_the_database() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, cert_key) = localhost_cert(certs.path(), "server");
    let (other, _) = localhost_cert(certs.path(), "other");
    let cluster = Cluster::start_with(&format!(
        "-c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
        cert.display(),
        cert_key.display()
    ))
    .unwrap();
    let url = cluster
        .database("relay_tls")
        .await
        .unwrap()
        .replace("127.0.0.1", "localhost");
    let data = tempfile::tempdir().unwrap();
    let ca = cert.to_str().unwrap();
    let relay = Relay::start(data.path(), &["--database-url", &url, "--database-ca", ca]).unwrap();
    let mut c = relay.connect().await.unwrap();
    register_with_prekeys(&mut c, &key(31), 1, 3).await.unwrap();
    assert_eq!(
        c.request(Request::PrekeyCount).await.unwrap().unwrap(),
        Response::PrekeyCount {
            one_time: 3,
            one_time_kem: 3
        }
    );
    let health = relay.http_get("/health").await.unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    drop(relay);

    // A CA that did not sign the server's certificate: the relay refuses to start.
    let other = other.to_str().unwrap();
    assert!(
        Relay::start(
            data.path(),
            &["--database-url", &url, "--database-ca", other]
        )
        .is_err()
    );
    // sslmode=require without a CA: refused too.
    let require = format!("{url}?sslmode=require");
    assert!(Relay::start(data.path(), &["--database-url", &require]).is_err());
}
