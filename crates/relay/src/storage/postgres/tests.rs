//! The storage conformance suite against a private PostgreSQL cluster (initdb + pg_ctl as the
//! `postgres` user in a temp dir, on a free loopback port).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use super::*;
use crate::storage::conformance;

pub(crate) struct Cluster {
    dir: tempfile::TempDir,
    pub(crate) port: u16,
}

fn pg_bin(name: &str) -> PathBuf {
    let dir = std::env::var("SOTTO_PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    PathBuf::from(dir).join(name)
}

fn as_postgres(args: &[&str]) -> std::process::Output {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Cluster {
    pub(crate) fn start() -> Self {
        Self::start_with("")
    }

    /// Starts a cluster with extra server options (`-c name=value ...`).
    pub(crate) fn start_with(extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("chown")
            .arg("postgres:postgres")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = dir.path().join("data");
        let (data_s, dir_s) = (data.to_str().unwrap(), dir.path().to_str().unwrap());
        as_postgres(&[
            pg_bin("initdb").to_str().unwrap(),
            "-D",
            data_s,
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ]);
        let opts =
            format!("-p {port} -k {dir_s} -c listen_addresses=127.0.0.1 -c fsync=off {extra}");
        as_postgres(&[
            pg_bin("pg_ctl").to_str().unwrap(),
            "-D",
            data_s,
            "-o",
            &opts,
            "-l",
            &format!("{dir_s}/log"),
            "-w",
            "start",
        ]);
        Self { dir, port }
    }

    pub(crate) async fn database(&self, name: &str) -> String {
        let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
        let (client, conn) = tokio_postgres::connect(&admin, NoTls).await.unwrap();
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(pg_bin("pg_ctl"))
            .arg("-D")
            .arg(data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_on_postgres() {
    let cluster = Cluster::start();
    let policy = conformance::policy();
    let s = PgStorage::connect(&cluster.database("usernames").await, policy.clone())
        .await
        .unwrap();
    conformance::usernames(&s).await;
    let s = PgStorage::connect(&cluster.database("reglock").await, policy.clone())
        .await
        .unwrap();
    conformance::registration_lock(&s).await;
    let s = PgStorage::connect(&cluster.database("prekeys").await, policy.clone())
        .await
        .unwrap();
    conformance::prekeys(&s).await;
    let url = cluster.database("bundles").await;
    let s = Arc::new(PgStorage::connect(&url, policy.clone()).await.unwrap());
    conformance::concurrent_bundles(s).await;
    let s = PgStorage::connect(&cluster.database("mailboxes").await, policy.clone())
        .await
        .unwrap();
    conformance::mailboxes(&s).await;
    // Two nodes on one database: batches of both lock, count and insert consistently.
    let url = cluster.database("concurrent_mailboxes").await;
    let one = Arc::new(PgStorage::connect(&url, policy.clone()).await.unwrap());
    let two = Arc::new(PgStorage::connect(&url, policy.clone()).await.unwrap());
    conformance::concurrent_mailboxes(one, two).await;
    let s = PgStorage::connect(&cluster.database("deletion").await, policy.clone())
        .await
        .unwrap();
    conformance::account_deletion(&s).await;
    let url = cluster.database("durability").await;
    let s = PgStorage::connect(&url, policy.clone()).await.unwrap();
    let id = conformance::durability_before(&s).await;
    drop(s);
    let s = PgStorage::connect(&url, policy).await.unwrap();
    conformance::durability_after(&s, id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_reach_other_nodes_only_for_present_devices() {
    let cluster = Cluster::start();
    let url = cluster.database("notify").await;
    let a = PgStorage::connect(&url, conformance::policy())
        .await
        .unwrap();
    let b = PgStorage::connect(&url, conformance::policy())
        .await
        .unwrap();
    let mut wake_b = b.take_remote_wakeups().unwrap();
    assert!(b.take_remote_wakeups().is_none());
    let to = Address {
        account: [0xAB; 32],
        device: 9,
    };
    a.touch_device(to, 1).await.unwrap();
    // Not present anywhere: no notification.
    a.enqueue(to, vec![1], 1).await.unwrap();
    b.set_presence(to, true).await.unwrap();
    a.enqueue(to, vec![2], 1).await.unwrap();
    let got = tokio::time::timeout(std::time::Duration::from_secs(1), wake_b.recv()).await;
    assert_eq!(got.unwrap(), Some(to));
    assert!(wake_b.try_recv().is_err(), "only one notification");
    b.set_presence(to, false).await.unwrap();
    a.enqueue(to, vec![3], 1).await.unwrap();
    a.health().await.unwrap();
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), wake_b.recv())
            .await
            .is_err()
    );
    assert_eq!(decode_wakeup(&encode_wakeup(&to)), Some(to));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_of_dead_nodes_is_forgotten() {
    let cluster = Cluster::start();
    let url = cluster.database("heartbeat").await;
    let s = PgStorage::connect(&url, conformance::policy())
        .await
        .unwrap();
    let c = connect(&url, &DbTls::Off).await.unwrap();
    let dead = [7u8; 16];
    c.execute(
        "INSERT INTO nodes (node, heartbeat_ms) VALUES ($1, 0)",
        &[&&dead[..]],
    )
    .await
    .unwrap();
    c.execute(
        "INSERT INTO presence (account, device, node, since_ms) VALUES ($1, 1, $2, 0)",
        &[&&[1u8; 32][..], &&dead[..]],
    )
    .await
    .unwrap();
    s.set_presence(
        Address {
            account: [2; 32],
            device: 1,
        },
        true,
    )
    .await
    .unwrap();
    heartbeat(&c, &s.node).await.unwrap();
    let rows = c.query("SELECT node FROM presence", &[]).await.unwrap();
    assert_eq!(rows.len(), 1, "only the live node's presence remains");
    let node: Vec<u8> = rows[0].get(0);
    assert_eq!(node, s.node.to_vec());
    let nodes = c
        .query_one("SELECT COUNT(*) FROM nodes", &[])
        .await
        .unwrap();
    assert_eq!(nodes.get::<_, i64>(0), 1);
}

/// A self-signed certificate (also its own CA) for `san`, as (cert, key) PEM files in `dir`,
/// readable by the `postgres` user only.
fn self_signed(dir: &std::path::Path, name: &str, san: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec"])
        .args(["-pkeyopt", "ec_paramgen_curve:prime256v1"])
        .args(["-nodes", "-days", "1", "-subj", "/CN=sotto-test-db"])
        .args(["-addext", &format!("subjectAltName={san}")])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [&cert, &key] {
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

async fn is_encrypted(c: &Client) -> bool {
    c.query_one(
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_tls_is_verified_and_never_downgraded() {
    let certs = tempfile::tempdir().unwrap();
    assert!(
        Command::new("chown")
            .arg("postgres:postgres")
            .arg(certs.path())
            .status()
            .unwrap()
            .success()
    );
    // The server's certificate names only `localhost`, not 127.0.0.1.
    let (cert, key) = self_signed(certs.path(), "server", "DNS:localhost");
    let (other_ca, _) = self_signed(certs.path(), "other", "DNS:localhost");
    let cluster = Cluster::start_with(&format!(
        "-c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
        cert.display(),
        key.display()
    ));
    let by_ip = cluster.database("tls").await;
    let by_name = by_ip.replace("127.0.0.1", "localhost");
    let trusted = DbTls::Verified(RustlsConnect::from_ca_file(&cert).unwrap());

    // Verified TLS: the default sslmode (prefer) is upgraded to require.
    let c = connect(&by_name, &trusted).await.unwrap();
    assert!(is_encrypted(&c).await);
    let s = PgStorage::connect_with_tls(&by_name, conformance::policy(), trusted.clone())
        .await
        .unwrap();
    s.health().await.unwrap();
    s.touch_device(
        Address {
            account: [3; 32],
            device: 1,
        },
        1,
    )
    .await
    .unwrap();
    // The probe itself: a plain connection to the same server is not encrypted.
    assert!(!is_encrypted(&connect(&by_ip, &DbTls::Off).await.unwrap()).await);

    // The certificate does not name 127.0.0.1: refused, like libpq's verify-full.
    assert!(connect(&by_ip, &trusted).await.is_err());
    // A certificate from another CA: refused.
    let untrusted = DbTls::Verified(RustlsConnect::from_ca_file(&other_ca).unwrap());
    assert!(connect(&by_name, &untrusted).await.is_err());
    assert!(
        PgStorage::connect_with_tls(&by_name, conformance::policy(), untrusted)
            .await
            .is_err()
    );

    // Contradictory settings are refused before connecting.
    let e = connect(&format!("{by_name}?sslmode=require"), &DbTls::Off)
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("--database-ca"), "{e}");
    assert!(
        connect(&format!("{by_name}?sslmode=disable"), &trusted)
            .await
            .is_err()
    );
    assert!(
        connect(&format!("{by_name}?sslmode=require"), &trusted)
            .await
            .is_ok()
    );

    // No downgrade: a server without TLS is refused when a CA is configured.
    let plain = Cluster::start();
    let plain_url = plain
        .database("plain")
        .await
        .replace("127.0.0.1", "localhost");
    assert!(connect(&plain_url, &trusted).await.is_err());
    assert!(connect(&plain_url, &DbTls::Off).await.is_ok());

    // A CA file without certificates is an error.
    let empty = certs.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    assert!(RustlsConnect::from_ca_file(&empty).is_err());
}
