//! The search backlog after a backup import: indexed newest first in resumable batches, and
//! kept consistent with the messages while messages are added, deleted and expire.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use sotto_store::backup;
use sotto_store::{ConversationId, KeyProtection, MessageId, Passphrase, Store};

const PW: &str = "restored pw";

/// A backup of `n` messages "wordI common" (every tenth with a 60 s timer), restored into
/// `tmp/dst`. Message ids are 1..=n, oldest first.
fn restored(tmp: &Path, n: i64) -> (Store, ConversationId, PathBuf) {
    let mut src = Store::create(
        &tmp.join("src"),
        KeyProtection::Passphrase(&Passphrase::from("src"), FAST),
    )
    .unwrap();
    let conv = store_with_conversation(&mut src);
    for i in 1..=n {
        let timer = if i % 10 == 0 { 60 } else { 0 };
        src.insert_message(&incoming(conv, &format!("word{i} common"), i, timer, None))
            .unwrap();
    }
    let file = tmp.join("b.backup");
    backup::export(&src, &file, &Passphrase::from("b"), FAST, &mut |_| {}).unwrap();
    let dst = tmp.join("dst");
    let store = backup::import(
        &file,
        &Passphrase::from("b"),
        &dst,
        KeyProtection::Passphrase(&Passphrase::from(PW), FAST),
        &mut |_| {},
    )
    .unwrap();
    (store, conv, dst)
}

fn hits(store: &Store, q: &str) -> usize {
    store.search(q, 100_000).unwrap().len()
}

#[test]
fn backlog_is_indexed_newest_first_and_resumes_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut store, _, dst) = restored(tmp.path(), 250);
    assert!(store.search_backlog_pending().unwrap());
    assert_eq!(store.search_backlog().unwrap(), 250);
    assert_eq!(hits(&store, "common"), 0);

    assert!(store.index_search_backlog(100).unwrap());
    assert_eq!(store.search_backlog().unwrap(), 150);
    assert_eq!(hits(&store, "common"), 100);
    assert_eq!(hits(&store, "word250"), 1);
    assert_eq!(hits(&store, "word151"), 1);
    assert_eq!(hits(&store, "word150"), 0);

    // Progress is in the database: a restart continues where the last batch committed.
    store.close().unwrap();
    let mut store = Store::open_with_passphrase(&dst, &Passphrase::from(PW)).unwrap();
    assert!(store.search_backlog_pending().unwrap());
    assert_eq!(store.search_backlog().unwrap(), 150);
    assert_eq!(hits(&store, "common"), 100);
    assert!(store.index_search_backlog(100).unwrap());
    assert_eq!(hits(&store, "word51"), 1);
    assert_eq!(hits(&store, "word50"), 0);
    assert!(!store.index_search_backlog(100).unwrap());
    assert!(!store.search_backlog_pending().unwrap());
    assert_eq!(store.search_backlog().unwrap(), 0);
    assert_eq!(hits(&store, "common"), 250);
    assert!(store.verify_search_index().unwrap());
    // Nothing left: further calls do nothing.
    assert!(!store.index_search_backlog(100).unwrap());
    assert_eq!(hits(&store, "common"), 250);
}

#[test]
fn a_batch_that_ends_exactly_at_the_oldest_message_finishes_the_backlog() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut store, _, _) = restored(tmp.path(), 40);
    assert!(store.index_search_backlog(20).unwrap());
    assert!(!store.index_search_backlog(20).unwrap());
    assert!(!store.search_backlog_pending().unwrap());
    assert_eq!(hits(&store, "common"), 40);
    assert!(store.verify_search_index().unwrap());
}

#[test]
fn changes_during_the_backlog_keep_the_index_consistent() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut store, conv, _) = restored(tmp.path(), 250);
    // Ids 201..=250 indexed, 1..=200 pending.
    assert!(store.index_search_backlog(50).unwrap());

    // Deleting an indexed and a pending message.
    assert!(store.delete_message(MessageId(240)).unwrap());
    assert!(store.delete_message(MessageId(7)).unwrap());
    // A new message is searchable at once.
    store
        .insert_message(&incoming(conv, "freshword common", 1000, 0, None))
        .unwrap();
    assert_eq!(hits(&store, "freshword"), 1);
    // Expiry deletes timed messages on both sides of the boundary (ids 10, 20, ..., 250).
    store.mark_read(conv, 1_000).unwrap();
    let expired = store.delete_expired(1_000 + 61_000).unwrap();
    assert_eq!(expired.len(), 24); // 25 timed messages, 240 already deleted
    assert_eq!(hits(&store, "word250"), 0);
    assert_eq!(hits(&store, "word249"), 1);

    // Deleting the newest messages makes the next id fall inside the pending range: the
    // trigger leaves it to the backlog, which indexes it from the table.
    for m in store.newest_messages(conv, 1000).unwrap() {
        if m.id.0 > 155 {
            store.delete_message(m.id).unwrap();
        }
    }
    let reused = store
        .insert_message(&incoming(conv, "reusedid common", 2000, 0, None))
        .unwrap()
        .unwrap();
    assert_eq!(reused.0, 156);
    assert_eq!(hits(&store, "reusedid"), 0);

    store.finish_search_backlog(64).unwrap();
    assert!(store.verify_search_index().unwrap());
    assert_eq!(hits(&store, "reusedid"), 1);
    assert_eq!(hits(&store, "word7"), 0);
    assert_eq!(hits(&store, "word20"), 0);
    assert_eq!(hits(&store, "word149"), 1);
    assert_eq!(hits(&store, "freshword"), 0); // deleted with the newest
    let left = store.newest_messages(conv, 1000).unwrap();
    assert_eq!(hits(&store, "common"), left.len());
}

#[test]
fn an_import_without_messages_has_no_backlog() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _, _) = restored(tmp.path(), 0);
    assert!(!store.search_backlog_pending().unwrap());
    assert_eq!(store.search_backlog().unwrap(), 0);
}
