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
        let opts = format!("-p {port} -k {dir_s} -c listen_addresses=127.0.0.1 -c fsync=off");
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
    let c = connect(&url).await.unwrap();
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
