//! The message history the store benchmark and the `backup_cpu` example measure against,
//! shared through `#[path]` so both time the same data.

use std::path::Path;

use sotto_store::{
    AccountId, Address, Contact, ConversationId, DeliveryState, Direction, KdfParams,
    KeyProtection, MessageRequest, NewMessage, Passphrase, Store, Verification,
};

/// Argon2id at its cheapest: the benchmarks time the database, not the key derivation.
pub const FAST: KdfParams = KdfParams {
    m_cost_kib: 1024,
    t_cost: 1,
    p_cost: 1,
};
pub const WORDS: &[&str] = &[
    "apple", "river", "mountain", "coffee", "tomorrow", "meeting", "station", "garden", "photo",
    "letter", "window", "evening", "travel", "music", "yellow", "quiet", "budget", "doctor",
];

/// A new passphrase store at `dir` with one conversation of `n` incoming messages.
pub fn populate(dir: &Path, n: usize) -> (Store, ConversationId) {
    let pw = Passphrase::from("bench");
    let mut store = Store::create(dir, KeyProtection::Passphrase(&pw, FAST)).unwrap();
    let who = AccountId([3u8; 32]);
    store
        .add_contact(
            &Contact {
                account: who,
                device_id: 1,
                username: None,
                display_name: None,
                identity_key: vec![1; 33],
                verification: Verification::Unverified,
                blocked: false,
                request: MessageRequest::Accepted,
            },
            0,
        )
        .unwrap();
    let conv = store.conversation_with(&who, 0).unwrap();
    let bodies: Vec<String> = (0..n)
        .map(|i| {
            let w = |k: usize| WORDS[(i / k + k) % WORDS.len()];
            format!("{} {} {} message {i}", w(1), w(7), w(31))
        })
        .collect();
    for chunk in bodies.chunks(50_000).enumerate() {
        let (c, bodies) = chunk;
        let msgs: Vec<NewMessage<'_>> = bodies
            .iter()
            .enumerate()
            .map(|(j, b)| NewMessage {
                conversation: conv,
                direction: Direction::Incoming,
                sender: Address {
                    account: who,
                    device: 1,
                },
                body: b,
                sent_at: (c * 50_000 + j) as i64,
                received_at: None,
                state: DeliveryState::Delivered,
                expire_timer_secs: 0,
                relay_id: None,
                client_id: None,
            })
            .collect();
        store.insert_messages(&msgs).unwrap();
    }
    (store, conv)
}
