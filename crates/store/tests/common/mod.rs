//! Helpers shared by the integration tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::path::Path;

use sotto_store::{
    AccountId, Address, Contact, DeliveryState, Direction, KdfParams, MessageRequest, NewMessage,
    Store, Verification,
};

/// Cheap Argon2id parameters so tests stay fast (the default is exercised separately).
pub const FAST: KdfParams = KdfParams {
    m_cost_kib: 1024,
    t_cost: 1,
    p_cost: 1,
};

pub fn alice() -> AccountId {
    AccountId([7u8; 32])
}

pub fn contact(account: AccountId, username: &str, display: &str) -> Contact {
    Contact {
        account,
        device_id: 1,
        username: Some(username.into()),
        display_name: Some(display.into()),
        identity_key: vec![1u8; 33],
        verification: Verification::Unverified,
        blocked: false,
        request: MessageRequest::Accepted,
    }
}

pub fn incoming<'a>(
    conv: sotto_store::ConversationId,
    body: &'a str,
    at: i64,
    timer: u32,
    relay_id: Option<&'a [u8]>,
) -> NewMessage<'a> {
    NewMessage {
        conversation: conv,
        direction: Direction::Incoming,
        sender: Address {
            account: alice(),
            device: 1,
        },
        body,
        sent_at: at,
        received_at: Some(at),
        state: DeliveryState::Delivered,
        expire_timer_secs: timer,
        relay_id,
        client_id: None,
    }
}

/// Every file in the profile folder, concatenated with its name.
pub fn all_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            out.push((
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            ));
        }
    }
    out
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Asserts no file in `dir` contains `word`.
pub fn assert_absent(dir: &Path, word: &str) {
    let files = all_files(dir);
    assert!(!files.is_empty());
    for (name, bytes) in files {
        assert!(
            !contains(&bytes, word.as_bytes()),
            "{word:?} found in plaintext in {name}"
        );
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub fn store_with_conversation(store: &mut Store) -> sotto_store::ConversationId {
    store
        .add_contact(&contact(alice(), "alice_user", "Alice"), now())
        .unwrap();
    store.conversation_with(&alice(), now()).unwrap()
}
