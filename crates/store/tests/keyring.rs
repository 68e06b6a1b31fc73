//! Keyring mode against a REAL Secret Service. These tests fail (never skip) when none is
//! reachable; run them under `dbus-run-session` with an unlocked gnome-keyring (see
//! docs/STORE.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sotto_store::{
    CreateError, KeyMode, KeyProtection, KeyringError, OpenError, Passphrase, RewrapError, Store,
};

fn need_keyring<T>(r: Result<T, CreateError>) -> T {
    r.unwrap_or_else(|e| {
        panic!("keyring tests need a running, unlocked Secret Service (gnome-keyring): {e}")
    })
}

#[test]
fn keyring_create_open_and_canary() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut store = need_keyring(Store::create(dir, KeyProtection::Keyring));
    assert_eq!(store.key_mode(), KeyMode::Keyring);
    let conv = store_with_conversation(&mut store);
    store
        .insert_message(&incoming(conv, "keyringcanaryword", now(), 0, None))
        .unwrap();
    store.close().unwrap();
    assert!(!dir.join("sotto.key").exists());
    assert_absent(dir, "keyringcanaryword");
    assert_absent(dir, "alice_user");
    let meta = std::fs::read_to_string(dir.join("profile.meta")).unwrap();
    assert!(meta.contains("mode keyring"), "{meta}");

    let store = Store::open_with_keyring(dir).unwrap();
    assert_eq!(store.search("keyringcanaryword", 5).unwrap().len(), 1);
    store.close().unwrap();
    assert!(matches!(
        Store::open_with_passphrase(dir, &Passphrase::from("x")),
        Err(OpenError::WrongMode {
            actual: KeyMode::Keyring
        })
    ));
}

#[test]
fn two_profiles_coexist() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    let sa = need_keyring(Store::create(&a, KeyProtection::Keyring));
    let sb = need_keyring(Store::create(&b, KeyProtection::Keyring));
    sa.put_setting("who", b"a").unwrap();
    sb.put_setting("who", b"b").unwrap();
    sa.close().unwrap();
    sb.close().unwrap();
    assert_eq!(
        Store::open_with_keyring(&a)
            .unwrap()
            .setting("who")
            .unwrap()
            .unwrap(),
        b"a"
    );
    assert_eq!(
        Store::open_with_keyring(&b)
            .unwrap()
            .setting("who")
            .unwrap()
            .unwrap(),
        b"b"
    );
}

#[test]
fn switch_keyring_to_passphrase_and_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut store = need_keyring(Store::create(dir, KeyProtection::Keyring));
    store.put_setting("s", b"kept").unwrap();
    let old_meta = std::fs::read_to_string(dir.join("profile.meta")).unwrap();
    store
        .switch_to_passphrase(&Passphrase::from("hardened"), FAST)
        .unwrap();
    assert_eq!(store.key_mode(), KeyMode::Passphrase);
    store.close().unwrap();
    assert!(dir.join("sotto.key").exists());
    // The old keyring entry is gone: restoring the old metadata cannot open the profile.
    let new_meta = std::fs::read_to_string(dir.join("profile.meta")).unwrap();
    std::fs::write(dir.join("profile.meta"), &old_meta).unwrap();
    assert!(matches!(
        Store::open_with_keyring(dir),
        Err(OpenError::Keyring(KeyringError::Missing))
    ));
    std::fs::write(dir.join("profile.meta"), new_meta).unwrap();

    let mut store = Store::open_with_passphrase(dir, &Passphrase::from("hardened")).unwrap();
    assert_eq!(store.setting("s").unwrap().unwrap(), b"kept");
    // Lowering the protection takes the current passphrase; a wrong one changes nothing.
    assert!(matches!(
        store.switch_to_keyring(&Passphrase::from("guess")),
        Err(RewrapError::WrongPassphrase)
    ));
    assert_eq!(store.key_mode(), KeyMode::Passphrase);
    assert!(dir.join("sotto.key").exists());
    store
        .switch_to_keyring(&Passphrase::from("hardened"))
        .unwrap();
    store.close().unwrap();
    assert!(!dir.join("sotto.key").exists());
    let store = Store::open_with_keyring(dir).unwrap();
    assert_eq!(store.setting("s").unwrap().unwrap(), b"kept");
}

#[test]
fn missing_secret_service_is_a_clear_error() {
    // SAFETY: nextest runs every test in its own process, so no other thread reads the
    // environment concurrently. This test relies on that (run it with nextest).
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/sotto-no-bus",
        );
        std::env::remove_var("DISPLAY");
    }
    let tmp = tempfile::tempdir().unwrap();
    let err = Store::create(tmp.path(), KeyProtection::Keyring)
        .err()
        .unwrap();
    let CreateError::Keyring(KeyringError::Unavailable { .. }) = &err else {
        panic!("expected KeyringError::Unavailable, got {err:?}");
    };
    let msg = err.to_string();
    assert!(msg.contains("gnome-keyring"), "{msg}");
    assert!(msg.contains("unlock"), "{msg}");
    assert!(msg.contains("passphrase"), "{msg}");
    // Nothing was written: no metadata, no database, no key in any file.
    let files: Vec<String> = all_files(tmp.path()).into_iter().map(|(n, _)| n).collect();
    assert!(files.is_empty(), "{files:?}");
}
