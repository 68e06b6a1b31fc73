//! Measurement fixture: fills the conversation with one contact of an existing passphrase
//! profile with many messages, written straight into the encrypted store, so that
//! scripts/measure-desktop.sh can scroll a 100,000-message conversation in the real window.
//!
//! `SOTTO_PASSPHRASE=… cargo run --release -p sotto --example seed_conversation -- PROFILE CONTACT COUNT`
//!
//! Messages alternate direction in uneven runs, vary in length (one to several lines) and
//! are spread over many days, so the list has day separators and rows of different heights.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;

use anyhow::{Context, bail};
use sotto_store::{Address, DeliveryState, Direction, NewMessage, Passphrase, Store, Timestamp};

const WORDS: &[&str] = &[
    "meeting", "tomorrow", "the", "river", "north", "gate", "bring", "papers", "quietly", "after",
    "dark", "call", "me", "when", "you", "arrive", "safe", "house", "keys", "blue",
];

fn body(i: usize) -> String {
    let words = 3 + (i * 7919) % 40;
    let mut s = String::new();
    for k in 0..words {
        if k > 0 {
            s.push(if k % 17 == 0 { '\n' } else { ' ' });
        }
        s.push_str(WORDS[(i * 31 + k * 7) % WORDS.len()]);
    }
    s
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, contact, count] = args.as_slice() else {
        bail!("usage: seed_conversation PROFILE CONTACT COUNT (passphrase in SOTTO_PASSPHRASE)");
    };
    let count: usize = count.parse().context("COUNT must be a number")?;
    let passphrase = zeroize::Zeroizing::new(
        std::env::var("SOTTO_PASSPHRASE").context("SOTTO_PASSPHRASE is not set")?,
    );
    let passphrase = Passphrase::from(passphrase.as_str());
    let mut store = Store::open_with_passphrase(&PathBuf::from(dir), &passphrase)?;
    let them = store
        .contact_by_username(contact)?
        .with_context(|| format!("no contact named {contact}"))?;
    let now: Timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis()
        .try_into()?;
    let conv = store.conversation_with(&them.account, now)?;
    // Every row names the contact's address as its sender: the UI goes by the direction.
    let sender = Address {
        account: them.account,
        device: them.device_id,
    };
    // About 40 messages a day, ending now.
    let step: Timestamp = 36 * 60 * 1000;
    let first = now - step * Timestamp::try_from(count)?;
    let bodies: Vec<String> = (0..count).map(body).collect();
    for (c, chunk) in bodies.chunks(20_000).enumerate() {
        let rows: Vec<NewMessage<'_>> = chunk
            .iter()
            .enumerate()
            .map(|(j, b)| {
                let i = c * 20_000 + j;
                let outgoing = (i / 3 + i / 7) % 2 == 0;
                let at = first + step * Timestamp::try_from(i).unwrap_or(0);
                NewMessage {
                    conversation: conv,
                    direction: if outgoing {
                        Direction::Outgoing
                    } else {
                        Direction::Incoming
                    },
                    sender,
                    body: b,
                    sent_at: at,
                    received_at: (!outgoing).then_some(at),
                    state: if outgoing {
                        DeliveryState::Read
                    } else {
                        DeliveryState::Delivered
                    },
                    expire_timer_secs: 0,
                    relay_id: None,
                    client_id: None,
                }
            })
            .collect();
        store.insert_messages(&rows)?;
    }
    println!("{count} messages added to the conversation with {contact}");
    Ok(())
}
