use super::*;
use crate::storage::conformance;

fn policy() -> Policy {
    conformance::policy()
}

#[tokio::test]
async fn usernames() {
    let dir = tempfile::tempdir().unwrap();
    conformance::usernames(&SqliteStorage::open(dir.path(), policy()).unwrap()).await;
}

#[tokio::test]
async fn registration_lock() {
    let dir = tempfile::tempdir().unwrap();
    conformance::registration_lock(&SqliteStorage::open(dir.path(), policy()).unwrap()).await;
}

#[tokio::test]
async fn prekeys() {
    let dir = tempfile::tempdir().unwrap();
    conformance::prekeys(&SqliteStorage::open(dir.path(), policy()).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_bundle_fetches_hand_out_each_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = std::sync::Arc::new(SqliteStorage::open(dir.path(), policy()).unwrap());
    conformance::concurrent_bundles(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_enqueues_and_acks_keep_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let s = std::sync::Arc::new(SqliteStorage::open(dir.path(), policy()).unwrap());
    conformance::concurrent_mailboxes(s.clone(), s).await;
}

#[tokio::test]
async fn account_deletion() {
    let dir = tempfile::tempdir().unwrap();
    conformance::account_deletion(&SqliteStorage::open(dir.path(), policy()).unwrap()).await;
}

#[tokio::test]
async fn mailboxes() {
    let dir = tempfile::tempdir().unwrap();
    conformance::mailboxes(&SqliteStorage::open(dir.path(), policy()).unwrap()).await;
}

#[tokio::test]
async fn state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStorage::open(dir.path(), policy()).unwrap();
    let id = conformance::durability_before(&s).await;
    drop(s);
    let s = SqliteStorage::open(dir.path(), policy()).unwrap();
    conformance::durability_after(&s, id).await;
}
