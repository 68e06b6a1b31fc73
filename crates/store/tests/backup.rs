//! Encrypted backup export/import (passphrase profiles; no keyring needed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::*;
use sotto_store::backup::{self, ImportError, Progress};
use sotto_store::{
    Address, KeyProtection, Passphrase, PrekeyKind, Store, Verification, VerifiedHow,
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
    assert_eq!(store.search("uniquebackupword", 5).unwrap().len(), 1);
    assert!(store.is_relay_processed(&7i64.to_be_bytes()).unwrap());
    assert_eq!(store.setting("theme").unwrap().unwrap(), b"dark");
    assert!(
        store
            .session(&Address {
                account: alice(),
                device: 1
            })
            .unwrap()
            .is_some()
    );
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
