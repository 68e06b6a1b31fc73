//! Passphrase-mode profiles, the encrypted database and its queries (no keyring needed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sotto_store::{
    Address, CreateError, DbOpenError, DeliveryState, Direction, KdfParams, KeyFileError, KeyMode,
    KeyProtection, NewMessage, OpenError, Passphrase, PrekeyKind, RewrapError, Store, Verification,
    VerifiedHow, key_mode,
};

fn create(dir: &std::path::Path, pass: &str) -> Store {
    Store::create(
        dir,
        KeyProtection::Passphrase(&Passphrase::from(pass), FAST),
    )
    .unwrap()
}

#[test]
fn create_open_and_wrong_passphrase_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let store = create(&dir, "right horse");
    assert_eq!(store.key_mode(), KeyMode::Passphrase);
    store.put_setting("theme", b"dark").unwrap();
    store.close().unwrap();
    assert_eq!(key_mode(&dir).unwrap(), KeyMode::Passphrase);

    let before = all_files(&dir);
    let err = Store::open_with_passphrase(&dir, &Passphrase::from("wrong horse"))
        .err()
        .unwrap();
    assert!(
        matches!(err, OpenError::KeyFile(KeyFileError::WrongPassphrase)),
        "{err}"
    );
    assert!(err.to_string().contains("wrong passphrase"));
    assert_eq!(
        all_files(&dir),
        before,
        "a wrong passphrase must not touch the profile"
    );

    let store = Store::open_with_passphrase(&dir, &Passphrase::from("right horse")).unwrap();
    assert_eq!(
        store.setting("theme").unwrap().as_deref(),
        Some(&b"dark"[..])
    );
    // The keyring open refuses a passphrase profile without touching any keyring.
    store.close().unwrap();
    assert!(matches!(
        Store::open_with_keyring(&dir),
        Err(OpenError::WrongMode {
            actual: KeyMode::Passphrase
        })
    ));
    assert!(matches!(
        Store::create(
            &dir,
            KeyProtection::Passphrase(&Passphrase::from("x"), FAST)
        ),
        Err(CreateError::AlreadyExists)
    ));
}

#[test]
fn default_argon2_parameters_work() {
    let tmp = tempfile::tempdir().unwrap();
    let pass = Passphrase::from("default params");
    let s = Store::create(
        tmp.path(),
        KeyProtection::Passphrase(&pass, KdfParams::default()),
    )
    .unwrap();
    s.close().unwrap();
    let key = std::fs::read(tmp.path().join("sotto.key")).unwrap();
    assert_eq!(&key[..8], b"SOTTOKEY");
    assert_eq!(&key[10..14], &(64u32 * 1024).to_be_bytes());
    Store::open_with_passphrase(tmp.path(), &pass)
        .unwrap()
        .close()
        .unwrap();
}

#[test]
fn change_passphrase() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = create(tmp.path(), "old");
    let before = all_files(tmp.path());
    let err = store
        .change_passphrase(&Passphrase::from("not old"), &Passphrase::from("new"), FAST)
        .unwrap_err();
    assert!(matches!(err, RewrapError::WrongPassphrase));
    assert_eq!(
        std::fs::read(tmp.path().join("sotto.key")).unwrap(),
        before.iter().find(|(n, _)| n == "sotto.key").unwrap().1
    );
    store
        .change_passphrase(&Passphrase::from("old"), &Passphrase::from("new"), FAST)
        .unwrap();
    store.put_setting("k", b"v").unwrap();
    store.close().unwrap();
    assert!(matches!(
        Store::open_with_passphrase(tmp.path(), &Passphrase::from("old")),
        Err(OpenError::KeyFile(KeyFileError::WrongPassphrase))
    ));
    let s = Store::open_with_passphrase(tmp.path(), &Passphrase::from("new")).unwrap();
    assert_eq!(s.setting("k").unwrap().unwrap(), b"v");
}

#[test]
fn database_with_wrong_key_is_a_typed_error() {
    // Two profiles; put profile B's key file next to profile A's database.
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    create(&a, "pw").close().unwrap();
    create(&b, "pw").close().unwrap();
    std::fs::copy(b.join("sotto.key"), a.join("sotto.key")).unwrap();
    let err = Store::open_with_passphrase(&a, &Passphrase::from("pw"))
        .err()
        .unwrap();
    assert!(
        matches!(err, OpenError::Database(DbOpenError::WrongKey)),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "the database could not be opened with this key"
    );
}

#[test]
fn plaintext_canary_never_reaches_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut store = create(dir, "canary pass");
    let who = sotto_store::AccountId([9u8; 32]);
    store
        .add_contact(&contact(who, "zorblaxusername", "Quixotrellename"), now())
        .unwrap();
    let conv = store.conversation_with(&who, now()).unwrap();
    for i in 0..200 {
        let body = format!("flibbertigibbetcanary number {i}");
        store
            .insert_message(&incoming(conv, &body, now() + i, 0, None))
            .unwrap();
    }
    store
        .set_own_identity(b"identitysecretcanary", now())
        .unwrap();
    // While open, the WAL exists: check it too.
    let names: Vec<String> = all_files(dir).into_iter().map(|(n, _)| n).collect();
    assert!(names.iter().any(|n| n.ends_with("-wal")), "{names:?}");
    for w in [
        "flibbertigibbetcanary",
        "zorblaxusername",
        "Quixotrellename",
        "identitysecretcanary",
    ] {
        assert_absent(dir, w);
    }
    store.close().unwrap();
    for w in [
        "flibbertigibbetcanary",
        "zorblaxusername",
        "Quixotrellename",
        "identitysecretcanary",
    ] {
        assert_absent(dir, w);
    }
    let store = Store::open_with_passphrase(dir, &Passphrase::from("canary pass")).unwrap();
    assert_eq!(
        store.search("flibbertigibbetcanary", 500).unwrap().len(),
        200
    );
}

#[test]
fn expiry_deletes_message_and_index_entry_including_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut store = create(dir, "pw");
    let conv = store_with_conversation(&mut store);
    let t0 = now() - 60_000;
    let keep = store
        .insert_message(&incoming(conv, "ordinary keepword", t0, 0, None))
        .unwrap()
        .unwrap();
    let soon = store
        .insert_message(&incoming(conv, "vanishingword one", t0, 5, None))
        .unwrap()
        .unwrap();
    let later = store
        .insert_message(&incoming(conv, "ephemeralword two", t0, 30, None))
        .unwrap()
        .unwrap();
    // Not read yet: no timer running, nothing expires.
    assert_eq!(store.next_expiry().unwrap(), None);
    assert!(store.delete_expired(now()).unwrap().is_empty());
    assert_eq!(store.conversation(conv).unwrap().unwrap().unread, 3);
    // Read 60 s ago: the 5 s message expired 55 s ago, the 30 s one 30 s ago.
    assert_eq!(store.mark_read(conv, t0).unwrap(), 3);
    assert_eq!(store.conversation(conv).unwrap().unwrap().unread, 0);
    assert_eq!(
        store.message(soon).unwrap().unwrap().expires_at,
        Some(t0 + 5_000)
    );
    assert_eq!(store.message(keep).unwrap().unwrap().expires_at, None);
    assert_eq!(
        store.message(keep).unwrap().unwrap().state,
        DeliveryState::Read
    );
    assert_eq!(store.next_expiry().unwrap(), Some(t0 + 5_000));
    let gone = store.delete_expired(t0 + 10_000).unwrap();
    assert_eq!(store.next_expiry().unwrap(), Some(t0 + 30_000));
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].id, soon);
    assert_eq!(gone[0].conversation, conv);
    assert!(store.message(soon).unwrap().is_none());
    assert!(store.search("vanishingword", 10).unwrap().is_empty());
    assert_eq!(store.search("ephemeralword", 10).unwrap().len(), 1);
    store.close().unwrap();

    // The 30 s message expired while closed: opening deletes it.
    let store = Store::open_with_passphrase(dir, &Passphrase::from("pw")).unwrap();
    assert!(store.message(later).unwrap().is_none());
    assert!(store.search("ephemeralword", 10).unwrap().is_empty());
    assert!(store.search("vanishingword", 10).unwrap().is_empty());
    assert_eq!(store.search("keepword", 10).unwrap().len(), 1);
    assert_eq!(store.newest_messages(conv, 10).unwrap().len(), 1);
}

#[test]
fn sent_messages_start_their_timer_when_sent() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = create(tmp.path(), "pw");
    let conv = store_with_conversation(&mut store);
    let m = NewMessage {
        direction: Direction::Outgoing,
        state: DeliveryState::Pending,
        received_at: None,
        ..incoming(conv, "outgoing", 1_000, 10, None)
    };
    let id = store.insert_message(&m).unwrap().unwrap();
    assert_eq!(store.message(id).unwrap().unwrap().expires_at, None);
    store
        .set_delivery_state(id, DeliveryState::Sent, 2_000)
        .unwrap();
    assert_eq!(store.message(id).unwrap().unwrap().expires_at, Some(12_000));
    store
        .set_delivery_state(id, DeliveryState::Delivered, 3_000)
        .unwrap();
    assert_eq!(store.message(id).unwrap().unwrap().expires_at, Some(12_000));
    assert_eq!(store.delete_expired(12_000).unwrap().len(), 1);
}

#[test]
fn dedupe_by_relay_id() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = create(tmp.path(), "pw");
    let conv = store_with_conversation(&mut store);
    let rid = [0xaau8; 16];
    let first = store
        .insert_message(&incoming(conv, "hello once", 1, 0, Some(&rid)))
        .unwrap();
    assert!(first.is_some());
    let second = store
        .insert_message(&incoming(conv, "hello once", 1, 0, Some(&rid)))
        .unwrap();
    assert_eq!(second, None);
    let stored = store.message(first.unwrap()).unwrap().unwrap();
    let dbg = format!("{stored:?}");
    assert!(
        !dbg.contains("hello"),
        "Debug must not show the body: {dbg}"
    );
    assert_eq!(store.newest_messages(conv, 10).unwrap().len(), 1);
    assert_eq!(store.conversation(conv).unwrap().unwrap().unread, 1);
    assert!(store.is_relay_processed(&rid).unwrap());
    assert!(store.mark_relay_processed(&[1, 2, 3], 5).unwrap());
    assert!(!store.mark_relay_processed(&[1, 2, 3], 6).unwrap());
    // Ids processed longer ago than the retention are forgotten at the next open; recent
    // ones are kept.
    let recent = now() - sotto_store::RELAY_ID_RETENTION_MS / 2;
    assert!(store.mark_relay_processed(&[4, 5, 6], recent).unwrap());
    // A failed insert (unknown conversation) must not mark the relay id processed.
    let other = [0xbbu8; 16];
    assert!(
        store
            .insert_message(&incoming(
                sotto_store::ConversationId(999),
                "x",
                1,
                0,
                Some(&other)
            ))
            .is_err()
    );
    assert!(!store.is_relay_processed(&other).unwrap());

    store.close().unwrap();
    let store = Store::open_with_passphrase(tmp.path(), &Passphrase::from("pw")).unwrap();
    assert!(!store.is_relay_processed(&[1, 2, 3]).unwrap());
    assert!(store.is_relay_processed(&[4, 5, 6]).unwrap());
}

#[test]
fn newest_and_paging() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = create(tmp.path(), "pw");
    let conv = store_with_conversation(&mut store);
    let mut ids = Vec::new();
    for i in 0..120 {
        ids.push(
            store
                .insert_message(&incoming(conv, &format!("m{i}"), i, 0, None))
                .unwrap()
                .unwrap(),
        );
    }
    let newest = store.newest_messages(conv, 50).unwrap();
    assert_eq!(newest.len(), 50);
    assert_eq!(newest.first().unwrap().body, "m70");
    assert_eq!(newest.last().unwrap().body, "m119");
    let older = store.messages_before(conv, newest[0].id, 50).unwrap();
    assert_eq!(older.last().unwrap().body, "m69");
    assert_eq!(older.first().unwrap().body, "m20");
    // Search returns the newest matches first and honours the limit.
    let hits = store.search("m5", 10).unwrap();
    assert_eq!(hits.len(), 1);
    for w in ["one sharedword", "two sharedword", "three sharedword"] {
        store
            .insert_message(&incoming(conv, w, 500, 0, None))
            .unwrap();
    }
    let hits: Vec<String> = store
        .search("sharedword", 2)
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(hits, vec!["three sharedword", "two sharedword"]);
    assert!(store.delete_message(ids[119]).unwrap());
    assert_eq!(
        store.newest_messages(conv, 1).unwrap()[0].body,
        "three sharedword"
    );
}

#[test]
fn contacts_identity_history_sessions_prekeys_outbox_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = create(tmp.path(), "pw");
    let a = alice();
    let mut c = contact(a, "alice_user", "Alice");
    store.add_contact(&c, 100).unwrap();
    assert_eq!(store.contact(&a).unwrap().unwrap(), c);
    c.display_name = Some("Alice L.".into());
    c.blocked = true;
    store.update_contact(&c).unwrap();
    assert_eq!(store.contacts().unwrap(), vec![c.clone()]);
    // Debug does not leak names.
    let dbg = format!("{c:?}");
    assert!(
        !dbg.contains("Alice") && !dbg.contains("alice_user"),
        "{dbg}"
    );

    store.set_verified(&a, VerifiedHow::SafetyNumber).unwrap();
    assert_eq!(
        store.contact(&a).unwrap().unwrap().verification,
        Verification::Verified
    );
    assert!(!store.set_identity_key(&a, &[1u8; 33], 150).unwrap());
    assert!(store.set_identity_key(&a, &[2u8; 33], 200).unwrap());
    assert_eq!(
        store.contact(&a).unwrap().unwrap().verification,
        Verification::Changed
    );
    let h = store.identity_key_history(&a).unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0].verified_how, VerifiedHow::SafetyNumber);
    assert_eq!((h[1].key.clone(), h[1].first_seen), (vec![2u8; 33], 200));
    store.set_verified(&a, VerifiedHow::QrCode).unwrap();
    assert_eq!(
        store.identity_key_history(&a).unwrap()[1].verified_how,
        VerifiedHow::QrCode
    );

    let addr = Address {
        account: a,
        device: 3,
    };
    assert!(store.session(&addr).unwrap().is_none());
    store.put_session(&addr, b"ratchet-1", 1).unwrap();
    store.put_session(&addr, b"ratchet-2", 2).unwrap();
    assert_eq!(
        store.session(&addr).unwrap().unwrap().as_slice(),
        b"ratchet-2"
    );
    assert!(store.delete_session(&addr).unwrap());

    store.put_prekey(PrekeyKind::OneTime, 5, b"pk5", 1).unwrap();
    store.put_prekey(PrekeyKind::OneTime, 2, b"pk2", 1).unwrap();
    store.put_prekey(PrekeyKind::Signed, 1, b"spk", 1).unwrap();
    assert_eq!(store.prekey_ids(PrekeyKind::OneTime).unwrap(), vec![2, 5]);
    assert_eq!(
        store
            .prekey(PrekeyKind::Signed, 1)
            .unwrap()
            .unwrap()
            .as_slice(),
        b"spk"
    );
    assert!(store.remove_prekey(PrekeyKind::OneTime, 2).unwrap());
    assert!(store.prekey(PrekeyKind::OneTime, 2).unwrap().is_none());
    store.set_own_identity(b"id1", 1).unwrap();
    store.set_own_identity(b"id2", 2).unwrap();
    assert_eq!(store.own_identity().unwrap().unwrap().as_slice(), b"id2");

    let conv = store.conversation_with(&a, 10).unwrap();
    assert_eq!(store.conversation_with(&a, 11).unwrap(), conv);
    store.set_disappearing_timer(conv, 3600).unwrap();
    assert_eq!(store.conversations().unwrap()[0].disappearing_secs, 3600);

    let o1 = store.enqueue_outbox(&addr, None, b"sealed-1", 1).unwrap();
    let o2 = store.enqueue_outbox(&addr, None, b"sealed-2", 2).unwrap();
    store.record_outbox_attempt(o1).unwrap();
    let q = store.peek_outbox(10).unwrap();
    assert_eq!(q.iter().map(|i| i.id).collect::<Vec<_>>(), vec![o1, o2]);
    assert_eq!(q[0].attempts, 1);
    assert!(store.remove_outbox(o1).unwrap());
    store.put_setting("a", b"1").unwrap();
    store.put_setting("a", b"2").unwrap();
    assert_eq!(store.setting("a").unwrap().unwrap(), b"2");
    assert!(store.delete_setting("a").unwrap());
    store.close().unwrap();

    // The outbox survives a restart.
    let mut store = Store::open_with_passphrase(tmp.path(), &Passphrase::from("pw")).unwrap();
    assert_eq!(store.peek_outbox(10).unwrap().len(), 1);
    // Deleting the contact cascades to history and conversation.
    assert!(store.delete_contact(&a).unwrap());
    assert!(store.identity_key_history(&a).unwrap().is_empty());
    assert!(store.conversation(conv).unwrap().is_none());
    let _ = &mut store;
}

#[test]
fn bulk_insert_is_all_or_nothing_and_dedupes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = create(tmp.path(), "pw");
    let conv = store_with_conversation(&mut store);
    let r1 = [1u8; 8];
    let batch = [
        incoming(conv, "a", 1, 0, Some(&r1)),
        incoming(conv, "b", 2, 0, Some(&r1)),
        incoming(conv, "c", 3, 0, None),
    ];
    let ids = store.insert_messages(&batch).unwrap();
    assert!(ids[0].is_some() && ids[1].is_none() && ids[2].is_some());
    let r2 = [2u8; 8];
    let bad = [
        incoming(conv, "d", 4, 0, Some(&r2)),
        incoming(sotto_store::ConversationId(42), "e", 5, 0, None),
    ];
    assert!(store.insert_messages(&bad).is_err());
    assert!(!store.is_relay_processed(&r2).unwrap());
    assert_eq!(store.newest_messages(conv, 10).unwrap().len(), 2);
}

#[test]
fn client_ids_find_messages_and_receipts_only_raise_state() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = create(tmp.path(), "pw");
    let conv = store_with_conversation(&mut store);
    let cid = [7u8; 16];
    let m = NewMessage {
        direction: Direction::Outgoing,
        state: DeliveryState::Sent,
        received_at: None,
        client_id: Some(&cid),
        ..incoming(conv, "outgoing", 1_000, 10, None)
    };
    let id = store.insert_message(&m).unwrap().unwrap();
    let found = store
        .message_by_client_id(conv, Direction::Outgoing, &cid)
        .unwrap()
        .unwrap();
    assert_eq!((found.id, found.client_id), (id, Some(cid)));
    assert!(
        store
            .message_by_client_id(conv, Direction::Incoming, &cid)
            .unwrap()
            .is_none()
    );
    // The same client id twice in one direction is refused.
    assert!(store.insert_message(&m).is_err());
    assert_eq!(
        store
            .mark_outgoing(conv, &[cid], DeliveryState::Read, 5_000)
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .mark_outgoing(conv, &[cid], DeliveryState::Delivered, 6_000)
            .unwrap(),
        0,
        "a delivery receipt after the read receipt does not lower the state"
    );
    let m = store.message(id).unwrap().unwrap();
    assert_eq!(m.state, DeliveryState::Read);
    assert_eq!(m.expires_at, Some(15_000));
}

#[test]
fn atomically_rolls_back_everything_on_error() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = create(tmp.path(), "pw");
    let conv = store_with_conversation(&mut store);
    let r: Result<(), sotto_store::QueryError> = store.atomically(|s| {
        s.insert_message(&incoming(conv, "one", 1, 0, Some(b"r1")))?;
        s.put_setting("k", b"v")?;
        Err(sotto_store::QueryError::NotFound)
    });
    assert!(r.is_err());
    assert!(store.newest_messages(conv, 10).unwrap().is_empty());
    assert!(!store.is_relay_processed(b"r1").unwrap());
    assert_eq!(store.setting("k").unwrap(), None);
    store
        .atomically(|s| {
            s.insert_message(&incoming(conv, "two", 2, 0, Some(b"r2")))?;
            s.put_setting("k", b"v")
        })
        .unwrap();
    assert_eq!(store.newest_messages(conv, 10).unwrap().len(), 1);
    assert_eq!(store.setting("k").unwrap(), Some(b"v".to_vec()));
    let unread = store.unread_client_ids(conv).unwrap();
    assert!(
        unread.is_empty(),
        "messages without client ids are not named"
    );
}

#[test]
fn scan_for_finds_a_word_in_table_and_index_until_it_is_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = create(tmp.path(), "pw");
    let conv = store_with_conversation(&mut store);
    store
        .insert_message(&incoming(conv, "ordinary keepword", now(), 0, None))
        .unwrap();
    let id = store
        .insert_message(&incoming(conv, "scannedcanary text", now(), 0, None))
        .unwrap()
        .unwrap();
    // Control: the scan sees the word in the table, the index blobs and the index terms.
    let found = store.scan_for("scannedcanary").unwrap();
    assert!(found.tables.contains(&"messages".to_owned()), "{found:?}");
    assert!(
        found.tables.contains(&"messages_fts_data".to_owned()),
        "{found:?}"
    );
    assert!(found.fts_term);
    assert!(found.secure_delete && found.fts_secure_delete);
    assert!(store.delete_message(id).unwrap());
    let after = store.scan_for("scannedcanary").unwrap();
    assert!(after.tables.is_empty(), "{after:?}");
    assert!(!after.fts_term);
    assert!(store.scan_for("keepword").unwrap().fts_term);
}
