//! Encrypted backup export/import (passphrase profiles; no keyring needed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::*;
use sotto_store::backup::{self, ImportError, Progress};
use sotto_store::{
    Address, DeliveryState, Direction, KeyProtection, Passphrase, PrekeyKind, Store, Verification,
    VerifiedHow,
};

const CHUNK_BOUNDARY: usize = 57 + 16 + 4 + 64 * 1024 + 16;

/// A profile with a bit of everything and enough messages for several chunks; returns the
/// path of its backup.
fn make_backup(tmp: &Path) -> std::path::PathBuf {
    let src = tmp.join("src");
    let mut store = Store::create(
        &src,
        KeyProtection::Passphrase(&Passphrase::from("src pw"), FAST),
    )
    .unwrap();
    store.set_own_identity(b"own-identity-secret", 1).unwrap();
    store.put_prekey(PrekeyKind::Kem, 4, b"kem-4", 1).unwrap();
    let conv = store_with_conversation(&mut store);
    store.set_verified(&alice(), VerifiedHow::QrCode).unwrap();
    store.set_disappearing_timer(conv, 600).unwrap();
    store
        .put_session(
            &Address {
                account: alice(),
                device: 1,
            },
            b"sess",
            1,
        )
        .unwrap();
    store.put_setting("theme", b"dark").unwrap();
    for i in 0..300i64 {
        let body = format!("backup message {i} {}", "padding ".repeat(100));
        store
            .insert_message(&incoming(conv, &body, i, 0, Some(&i.to_be_bytes())))
            .unwrap();
    }
    store
        .insert_message(&incoming(conv, "uniquebackupword", 5000, 0, None))
        .unwrap();
    // A sent disappearing message whose second ran out long ago (the app was closed since):
    // it is not written into the backup.
    let mut gone = incoming(conv, "expiredbackupword", 6000, 1, None);
    gone.direction = Direction::Outgoing;
    gone.state = DeliveryState::Pending;
    gone.received_at = None;
    let gone = store.insert_message(&gone).unwrap().unwrap();
    store
        .set_delivery_state(gone, DeliveryState::Sent, 1)
        .unwrap();
    let out = tmp.join("sotto.backup");
    let mut calls = Vec::new();
    backup::export(
        &store,
        &out,
        &Passphrase::from("backup pw"),
        FAST,
        &mut |p| calls.push(p),
    )
    .unwrap();
    let last = calls.last().copied().unwrap();
    assert_eq!(last.done, last.total);
    assert!(calls.len() >= 4, "several chunks expected");
    assert!(calls.windows(2).all(|w| w[0].done < w[1].done));
    let bytes = std::fs::read(&out).unwrap();
    assert!(!contains(&bytes, b"uniquebackupword"));
    assert!(!contains(&bytes, b"own-identity-secret"));
    out
}

#[test]
fn round_trip_into_fresh_profile() {
    let tmp = tempfile::tempdir().unwrap();
    let file = make_backup(tmp.path());
    let dst = tmp.path().join("dst");
    let pw = Passphrase::from("new profile pw");
    let mut seen: Option<Progress> = None;
    let store = backup::import(
        &file,
        &Passphrase::from("backup pw"),
        &dst,
        KeyProtection::Passphrase(&pw, FAST),
        &mut |p| seen = Some(p),
    )
    .unwrap();
    let p = seen.unwrap();
    assert_eq!(p.done, p.total);
    assert_eq!(
        store.own_identity().unwrap().unwrap().as_slice(),
        b"own-identity-secret"
    );
    assert_eq!(
        store
            .prekey(PrekeyKind::Kem, 4)
            .unwrap()
            .unwrap()
            .as_slice(),
        b"kem-4"
    );
    let c = store.contact(&alice()).unwrap().unwrap();
    assert_eq!(c.verification, Verification::Verified);
    assert_eq!(c.username.as_deref(), Some("alice_user"));
    assert_eq!(
        store.identity_key_history(&alice()).unwrap()[0].verified_how,
        VerifiedHow::QrCode
    );
    let convs = store.conversations().unwrap();
    assert_eq!(convs.len(), 1);
    assert_eq!(convs[0].disappearing_secs, 600);
    assert_eq!(convs[0].unread, 301);
    assert_eq!(
        store.newest_messages(convs[0].id, 10_000).unwrap().len(),
        301
    );
    // Every restored message waits in the search backlog; the import itself indexes none.
    assert_eq!(store.search_backlog().unwrap(), 301);
    assert!(store.search("uniquebackupword", 5).unwrap().is_empty());
    let mut store = store;
    store.finish_search_backlog(100).unwrap();
    assert_eq!(store.search_backlog().unwrap(), 0);
    assert_eq!(store.search("uniquebackupword", 5).unwrap().len(), 1);
    assert!(store.verify_search_index().unwrap());
    assert!(store.is_relay_processed(&7i64.to_be_bytes()).unwrap());
    assert_eq!(store.setting("theme").unwrap().unwrap(), b"dark");
    // Sessions are left out of a restore (they may be stale), and the marker that makes
    // the client replace its prekeys is set.
    assert!(
        store
            .session(&Address {
                account: alice(),
                device: 1
            })
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.setting(backup::RESTORED_MARKER).unwrap().as_deref(),
        Some(&[1u8][..])
    );
    assert!(store.search("expiredbackupword", 5).unwrap().is_empty());
    store.close().unwrap();
    assert_absent(&dst, "uniquebackupword");
    Store::open_with_passphrase(&dst, &pw).unwrap();
    // Importing over an existing profile is refused.
    let again = backup::import(
        &file,
        &Passphrase::from("backup pw"),
        &dst,
        KeyProtection::Passphrase(&pw, FAST),
        &mut |_| {},
    );
    assert!(matches!(again, Err(ImportError::TargetExists)));
}

fn import_err(file: &Path, pass: &str, dst: &Path) -> ImportError {
    let pw = Passphrase::from("x");
    backup::import(
        file,
        &Passphrase::from(pass),
        dst,
        KeyProtection::Passphrase(&pw, FAST),
        &mut |_| {},
    )
    .err()
    .unwrap()
}

fn assert_untouched(dst: &Path) {
    if dst.exists() {
        let left: Vec<_> = std::fs::read_dir(dst)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "target not left untouched: {left:?}");
    }
}

#[test]
fn damaged_backups_are_typed_errors_and_leave_target_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let file = make_backup(tmp.path());
    let good = std::fs::read(&file).unwrap();
    assert!(good.len() > 3 * CHUNK_BOUNDARY);
    let dst = tmp.path().join("dst");
    std::fs::create_dir(&dst).unwrap();
    let bad = tmp.path().join("bad.backup");

    let e = import_err(&file, "wrong pw", &dst);
    assert!(matches!(e, ImportError::WrongPassphrase), "{e}");
    assert_untouched(&dst);

    for cut in [good.len() - 10, CHUNK_BOUNDARY, 60, good.len() - 1] {
        std::fs::write(&bad, &good[..cut]).unwrap();
        let e = import_err(&bad, "backup pw", &dst);
        assert!(matches!(e, ImportError::Truncated), "cut at {cut}: {e}");
        assert_untouched(&dst);
    }

    let mut flipped = good.clone();
    flipped[CHUNK_BOUNDARY + 1000] ^= 0x40;
    std::fs::write(&bad, &flipped).unwrap();
    let e = import_err(&bad, "backup pw", &dst);
    assert!(matches!(e, ImportError::Tampered), "{e}");
    assert_untouched(&dst);

    // Swapping two full chunks is detected (the counter is in the nonce).
    let mut swapped = good[..CHUNK_BOUNDARY].to_vec();
    let size = CHUNK_BOUNDARY - 73;
    swapped.extend_from_slice(&good[CHUNK_BOUNDARY + size..CHUNK_BOUNDARY + 2 * size]);
    swapped.extend_from_slice(&good[CHUNK_BOUNDARY..CHUNK_BOUNDARY + size]);
    swapped.extend_from_slice(&good[CHUNK_BOUNDARY + 2 * size..]);
    assert_eq!(swapped.len(), good.len());
    std::fs::write(&bad, &swapped).unwrap();
    assert!(matches!(
        import_err(&bad, "backup pw", &dst),
        ImportError::Tampered
    ));

    // Appended data after the final chunk is refused.
    let mut longer = good.clone();
    longer.extend_from_slice(&[0u8; 20]);
    std::fs::write(&bad, &longer).unwrap();
    assert!(matches!(
        import_err(&bad, "backup pw", &dst),
        ImportError::Tampered
    ));

    // A flipped header byte (salt) makes the key check fail.
    let mut hdr = good.clone();
    hdr[30] ^= 1;
    std::fs::write(&bad, &hdr).unwrap();
    assert!(matches!(
        import_err(&bad, "backup pw", &dst),
        ImportError::WrongPassphrase
    ));
    std::fs::write(
        &bad,
        b"not a backup at all, just some text padding it out to length....",
    )
    .unwrap();
    assert!(matches!(
        import_err(&bad, "backup pw", &dst),
        ImportError::NotABackup
    ));
    assert_untouched(&dst);

    // And the intact file still imports.
    let pw = Passphrase::from("x");
    backup::import(
        &file,
        &Passphrase::from("backup pw"),
        &dst,
        KeyProtection::Passphrase(&pw, FAST),
        &mut |_| {},
    )
    .unwrap();
}

/// Offsets in a backup file at which each chunk's frame starts (the first one is right after
/// the header and key check), plus the file length.
fn chunk_boundaries(file: &[u8]) -> Vec<usize> {
    let mut at = 57 + 16;
    let mut v = vec![at];
    while at < file.len() {
        let len = u32::from_be_bytes(file[at..at + 4].try_into().unwrap()) as usize;
        at += 4 + len;
        v.push(at);
    }
    assert_eq!(at, file.len());
    v
}

/// A profile whose dump spans many chunks, with rows that straddle chunk boundaries, one
/// value larger than a whole chunk, and messages with every optional field set.
fn big_profile(dir: &Path) -> Store {
    let mut store = Store::create(
        dir,
        KeyProtection::Passphrase(&Passphrase::from("src pw"), FAST),
    )
    .unwrap();
    store.set_own_identity(b"own-identity-secret", 1).unwrap();
    let conv = store_with_conversation(&mut store);
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    store.put_setting("big", &big).unwrap();
    store.put_setting("empty", b"").unwrap();
    let bodies: Vec<String> = (0..4000i64)
        .map(|i| format!("streamed message {i} {}", "xyz ".repeat((i % 97) as usize)))
        .collect();
    let relay_ids: Vec<[u8; 8]> = (0..4000i64).map(|i| i.to_be_bytes()).collect();
    let msgs: Vec<_> = (0..4000usize)
        .map(|i| {
            let timer = if i % 5 == 0 { 60 } else { 0 };
            incoming(conv, &bodies[i], i as i64, timer, Some(&relay_ids[i]))
        })
        .collect();
    store.insert_messages(&msgs).unwrap();
    let addr = Address {
        account: alice(),
        device: 1,
    };
    store
        .enqueue_outbox(&addr, None, &big[..70_000], 9)
        .unwrap();
    store
}

fn export_to(store: &Store, file: &Path) {
    backup::export(
        store,
        file,
        &Passphrase::from("backup pw"),
        FAST,
        &mut |_| {},
    )
    .unwrap();
}

#[test]
fn multi_chunk_backup_round_trips_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let src = big_profile(&tmp.path().join("src"));
    let file = tmp.path().join("big.backup");
    export_to(&src, &file);
    let bytes = std::fs::read(&file).unwrap();
    let chunks = chunk_boundaries(&bytes).len() - 1;
    assert!(chunks >= 10, "only {chunks} chunks");

    let pw = Passphrase::from("x");
    let mut calls = Vec::new();
    let dst = backup::import(
        &file,
        &Passphrase::from("backup pw"),
        &tmp.path().join("dst"),
        KeyProtection::Passphrase(&pw, FAST),
        &mut |p| calls.push(p),
    )
    .unwrap();
    assert_eq!(calls.len(), chunks);
    assert_eq!(calls.last().unwrap().done, bytes.len() as u64);

    assert_eq!(src.setting("big").unwrap(), dst.setting("big").unwrap());
    assert_eq!(dst.setting("empty").unwrap().unwrap(), b"");
    assert_eq!(src.contacts().unwrap(), dst.contacts().unwrap());
    assert_eq!(src.conversations().unwrap(), dst.conversations().unwrap());
    assert_eq!(src.peek_outbox(10).unwrap(), dst.peek_outbox(10).unwrap());
    let conv = src.conversations().unwrap()[0].id;
    let a = src.newest_messages(conv, 100_000).unwrap();
    let b = dst.newest_messages(conv, 100_000).unwrap();
    assert_eq!(a.len(), 4000);
    assert!(a == b, "messages differ after the round trip");
    assert_eq!(src.next_expiry().unwrap(), dst.next_expiry().unwrap());
    // Exporting the restored profile gives a dump of the same size plus the restore marker
    // row (tag, key text, one-byte blob): same chunk count and frame lengths but the last
    // (the contents differ only by salt, nonces and ciphertext; there are no sessions).
    let again = tmp.path().join("again.backup");
    export_to(&dst, &again);
    let again = std::fs::read(&again).unwrap();
    let lens = |f: &[u8]| {
        let b = chunk_boundaries(f);
        b.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>()
    };
    let (mut want, got) = (lens(&bytes), lens(&again));
    let marker_row = 1 + (5 + backup::RESTORED_MARKER.len()) + (5 + 1);
    *want.last_mut().unwrap() += marker_row;
    assert_eq!(want, got);
    // The search index is built from the backlog afterwards and kept up to date.
    let mut dst = dst;
    assert!(dst.search_backlog_pending().unwrap());
    dst.finish_search_backlog(1000).unwrap();
    assert_eq!(dst.search("streamed", 10_000).unwrap().len(), 4000);
    assert_eq!(dst.search("message 3999", 5).unwrap().len(), 1);
    dst.insert_message(&incoming(conv, "afterimportword", 9999, 0, None))
        .unwrap();
    assert_eq!(dst.search("afterimportword", 5).unwrap().len(), 1);
    assert!(dst.verify_search_index().unwrap());
}

#[test]
fn cut_at_any_chunk_boundary_is_truncated() {
    let tmp = tempfile::tempdir().unwrap();
    let src = big_profile(&tmp.path().join("src"));
    let file = tmp.path().join("big.backup");
    export_to(&src, &file);
    let good = std::fs::read(&file).unwrap();
    let bounds = chunk_boundaries(&good);
    let bad = tmp.path().join("cut.backup");
    let dst = tmp.path().join("dst");
    // Every boundary except the end of the file: the stream stops before the final chunk.
    let n = bounds.len();
    for &cut in [bounds[0], bounds[1], bounds[n / 2], bounds[n - 2]].iter() {
        std::fs::write(&bad, &good[..cut]).unwrap();
        let e = import_err(&bad, "backup pw", &dst);
        assert!(matches!(e, ImportError::Truncated), "cut at {cut}: {e}");
        assert!(!dst.exists(), "cut at {cut}: target folder created");
    }
}

#[test]
fn tampered_middle_chunk_is_refused_and_target_is_left_exactly_as_before() {
    let tmp = tempfile::tempdir().unwrap();
    let src = big_profile(&tmp.path().join("src"));
    let file = tmp.path().join("big.backup");
    export_to(&src, &file);
    let good = std::fs::read(&file).unwrap();
    let bounds = chunk_boundaries(&good);
    let mid = bounds.len() / 2;
    assert!(mid >= 3);
    let mut bad = good.clone();
    bad[(bounds[mid] + bounds[mid + 1]) / 2] ^= 0x01;
    let bad_file = tmp.path().join("bad.backup");
    std::fs::write(&bad_file, &bad).unwrap();

    // A folder that does not exist yet is not created...
    let fresh = tmp.path().join("fresh");
    let e = import_err(&bad_file, "backup pw", &fresh);
    assert!(matches!(e, ImportError::Tampered), "{e}");
    assert!(!fresh.exists());

    // ...and an existing folder keeps exactly its files and contents.
    let dst = tmp.path().join("dst");
    std::fs::create_dir(&dst).unwrap();
    std::fs::write(dst.join("notes.txt"), b"unrelated").unwrap();
    let before = all_files(&dst);
    let e = import_err(&bad_file, "backup pw", &dst);
    assert!(matches!(e, ImportError::Tampered), "{e}");
    let mut after = all_files(&dst);
    let mut before = before;
    before.sort();
    after.sort();
    assert_eq!(before, after);
    assert_eq!(std::fs::read_dir(&dst).unwrap().count(), 1);
}
