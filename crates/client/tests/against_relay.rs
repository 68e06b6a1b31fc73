//! End-to-end tests of the client engine against the real `sotto-relay` process over real
//! sockets. Every client keeps its state in a real encrypted profile database
//! (`sotto_store::Store`) in a temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod relay_process;

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use relay_process::Relay;
use sotto_client::{
    Added, Client, ConnectError, Event, ReceiveError, RequestError, SendError, UsernameError,
};
use sotto_relay_wire::ErrorCode;
use sotto_store::{
    AccountId, DeliveryState, Direction, KdfParams, KeyProtection, MessageRequest, Passphrase,
    PrekeyKind, Store, Verification,
};
use tempfile::TempDir;
use zeroize::Zeroizing;

const WAIT: Duration = Duration::from_secs(10);

/// A client with its profile directory; the directory lives as long as the client (fields
/// drop in order: the client closes its database before the directory is removed).
struct Device {
    client: Client,
    _dir: TempDir,
}

impl Deref for Device {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for Device {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// A fresh profile (passphrase-protected, cheap KDF) opened for `url`. Not connected.
fn open(url: &str) -> Device {
    let dir = tempfile::tempdir().unwrap();
    let pass = Passphrase::new(Zeroizing::new("pw".to_string()));
    let params = KdfParams {
        m_cost_kib: 256,
        t_cost: 1,
        p_cost: 1,
    };
    let store = Store::create(
        &dir.path().join("profile"),
        KeyProtection::Passphrase(&pass, params),
    )
    .unwrap();
    let client = Client::open(store, url).unwrap();
    Device { client, _dir: dir }
}

async fn setup(url: &str, username: &str, pin: Option<&str>) -> Device {
    let mut c = open(url);
    c.connect(5).await.unwrap();
    c.register().await.unwrap();
    c.claim_username(username, pin).await.unwrap();
    wait_for(&mut c, |e| *e == Event::QueueDrained).await;
    c
}

/// The store's id of a client's own account (what its peers' contacts are keyed by when
/// they first learn of it under its current key).
fn id_of(c: &Client) -> AccountId {
    AccountId(c.account().0)
}

/// Processes events until one matches; returns everything seen.
async fn wait_for(c: &mut Client, pred: impl Fn(&Event) -> bool) -> Vec<Event> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if let Some(e) = c.next_event(Duration::from_millis(500)).await.unwrap() {
            let done = pred(&e);
            seen.push(e);
            if done {
                return seen;
            }
        }
    }
    panic!("timed out; saw {seen:?}");
}

/// The messages of the conversation with `contact`, oldest first (none if there is no
/// conversation yet; does not create one).
fn messages(c: &Client, contact: &AccountId) -> Vec<sotto_store::Message> {
    let store = c.store();
    let Some(conv) = store
        .conversations()
        .unwrap()
        .into_iter()
        .find(|conv| conv.contact == *contact)
    else {
        return Vec::new();
    };
    store.newest_messages(conv.id, 1000).unwrap()
}

/// Incoming texts from `contact`, oldest first.
fn texts(c: &Client, contact: &AccountId) -> Vec<String> {
    messages(c, contact)
        .into_iter()
        .filter(|m| m.direction == Direction::Incoming)
        .map(|m| m.body)
        .collect()
}

/// Our message to `contact` with client id `id`.
fn outgoing(c: &Client, contact: &AccountId, id: [u8; 16]) -> sotto_store::Message {
    messages(c, contact)
        .into_iter()
        .find(|m| m.direction == Direction::Outgoing && m.client_id == Some(id))
        .unwrap_or_else(|| panic!("no outgoing message {id:?}"))
}

/// The disappearing timer of the conversation with `contact`.
fn timer(c: &Client, contact: &AccountId) -> u32 {
    let store = c.store();
    let conv = store
        .conversations()
        .unwrap()
        .into_iter()
        .find(|conv| conv.contact == *contact)
        .expect("conversation");
    conv.disappearing_secs
}

fn contact(c: &Client, username: &str) -> sotto_store::Contact {
    c.find_contact(username)
        .unwrap()
        .unwrap_or_else(|| panic!("no contact {username}"))
}

#[tokio::test]
async fn chat_both_ways_with_receipts_requests_typing_and_timer() {
    let relay = Relay::start("chat", &[]);
    let mut alice = setup(&relay.url, "alice", None).await;
    let mut bob = setup(&relay.url, "bob", None).await;
    let mut carol = setup(&relay.url, "carol", None).await;
    let alice_id = id_of(&alice);
    let bob_id = id_of(&bob);

    let added = alice.add_contact("bob").await.unwrap();
    assert_eq!(
        added,
        Added {
            contact: bob_id,
            key_changed: false
        }
    );
    let hi = alice.send_text(&bob_id, "hi bob").await.unwrap();
    assert_eq!(outgoing(&alice, &bob_id, hi).state, DeliveryState::Sent);

    // Bob has not added Alice: a message request (her claimed username checked against the
    // directory), no delivery receipt.
    let seen = wait_for(&mut bob, |e| matches!(e, Event::Message { .. })).await;
    let Some(Event::Message {
        contact: from,
        message,
        request: true,
        key_changed: false,
    }) = seen.last().cloned()
    else {
        panic!("expected a message request, saw {seen:?}");
    };
    assert_eq!(from, alice_id);
    let stored = bob.store().message(message).unwrap().unwrap();
    assert_eq!(stored.client_id, Some(hi));
    assert_eq!(stored.body, "hi bob");
    let request = contact(&bob, "alice");
    assert_eq!(request.account, alice_id);
    assert_eq!(request.request, MessageRequest::Pending);
    assert_eq!(texts(&bob, &alice_id), ["hi bob"]);

    // Accepting reuses the session Alice started.
    assert_eq!(
        bob.add_contact("alice").await.unwrap(),
        Added {
            contact: alice_id,
            key_changed: false
        }
    );
    assert_eq!(contact(&bob, "alice").request, MessageRequest::Accepted);
    let back = bob.send_text(&alice_id, "hi alice").await.unwrap();
    let seen = wait_for(&mut alice, |e| matches!(e, Event::Message { .. })).await;
    // Bob's client sent no delivery receipt for the request.
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Event::Delivered { ids, .. } if ids.contains(&hi))),
        "{seen:?}"
    );
    let Some(Event::Message {
        contact: from,
        message,
        request: false,
        key_changed: false,
    }) = seen.last().cloned()
    else {
        panic!("expected a message, saw {seen:?}");
    };
    assert_eq!(from, bob_id);
    assert_eq!(
        alice.store().message(message).unwrap().unwrap().client_id,
        Some(back)
    );
    assert_eq!(texts(&alice, &bob_id), ["hi alice"]);
    // Alice added Bob, so her client acknowledges his message with a delivery receipt, which
    // her pump sends on its turn after reporting the message.
    alice.send_owed_receipts().await;
    wait_for(&mut bob, |e| {
        *e == Event::Delivered {
            contact: alice_id,
            ids: vec![back],
        }
    })
    .await;
    assert_eq!(
        outgoing(&bob, &alice_id, back).state,
        DeliveryState::Delivered
    );

    // Reading the conversation sends a read receipt (on by default).
    assert_eq!(bob.mark_read(&alice_id).await.unwrap(), 1);
    wait_for(&mut alice, |e| {
        *e == Event::Read {
            contact: bob_id,
            ids: vec![hi],
        }
    })
    .await;
    let first = outgoing(&alice, &bob_id, hi);
    assert_eq!(first.state, DeliveryState::Read);

    let second = alice.send_text(&bob_id, "second").await.unwrap();
    let seen = wait_for(&mut bob, |e| matches!(e, Event::Message { .. })).await;
    let Some(Event::Message {
        contact: from,
        message,
        request: false,
        ..
    }) = seen.last().cloned()
    else {
        panic!("expected a message, saw {seen:?}");
    };
    assert_eq!(from, alice_id);
    assert_eq!(
        bob.store().message(message).unwrap().unwrap().client_id,
        Some(second)
    );
    bob.send_owed_receipts().await;
    wait_for(&mut alice, |e| {
        *e == Event::Delivered {
            contact: bob_id,
            ids: vec![second],
        }
    })
    .await;
    assert_eq!(
        outgoing(&alice, &bob_id, second).state,
        DeliveryState::Delivered
    );

    // Receipts owed for a burst: the pump reports both messages (a push already waiting goes
    // before the receipts) and its next quiet turn sends what is owed, grouped per contact.
    let third = alice.send_text(&bob_id, "third").await.unwrap();
    let fourth = alice.send_text(&bob_id, "fourth").await.unwrap();
    wait_for(&mut bob, |e| matches!(e, Event::Message { .. })).await;
    wait_for(&mut bob, |e| matches!(e, Event::Message { .. })).await;
    assert_eq!(bob.next_event(Duration::from_secs(5)).await.unwrap(), None);
    let mut acknowledged = Vec::new();
    while acknowledged.len() < 2 {
        let seen = wait_for(&mut alice, |e| matches!(e, Event::Delivered { .. })).await;
        if let Some(Event::Delivered { contact, ids }) = seen.last() {
            assert_eq!(*contact, bob_id);
            acknowledged.extend_from_slice(ids);
        }
    }
    acknowledged.sort_unstable();
    let mut expected = vec![third, fourth];
    expected.sort_unstable();
    assert_eq!(acknowledged, expected);

    bob.send_typing(&alice_id, true).await.unwrap();
    wait_for(&mut alice, |e| {
        *e == Event::Typing {
            contact: bob_id,
            started: true,
        }
    })
    .await;
    alice.set_disappearing_timer(&bob_id, 3600).await.unwrap();
    wait_for(&mut bob, |e| {
        *e == Event::TimerChanged {
            contact: alice_id,
            seconds: 3600,
        }
    })
    .await;
    assert_eq!(timer(&bob, &alice_id), 3600);
    assert_eq!(timer(&alice, &bob_id), 3600);

    // A third, unknown sender shows up as a message request, under the username the
    // directory confirmed.
    let carol_id = id_of(&carol);
    carol.add_contact("alice").await.unwrap();
    let from_carol = carol.send_text(&alice_id, "hello stranger").await.unwrap();
    let seen = wait_for(
        &mut alice,
        |e| matches!(e, Event::Message { contact, .. } if *contact == carol_id),
    )
    .await;
    let Some(Event::Message {
        message,
        request: true,
        key_changed: false,
        ..
    }) = seen.last().cloned()
    else {
        panic!("expected a message request, saw {seen:?}");
    };
    assert_eq!(
        alice.store().message(message).unwrap().unwrap().client_id,
        Some(from_carol)
    );
    let stranger = alice.store().contact(&carol_id).unwrap().unwrap();
    assert_eq!(stranger.request, MessageRequest::Pending);
    assert_eq!(stranger.username.as_deref(), Some("carol"));
    assert_eq!(texts(&alice, &carol_id), ["hello stranger"]);
    assert_eq!(alice.queued().unwrap(), 0);
}

#[tokio::test]
async fn registration_lock_pin_protects_the_username() {
    let relay = Relay::start("reglock", &[]);
    let mut alice = setup(&relay.url, "alice", Some("2468")).await;
    let mut carol = setup(&relay.url, "carol", None).await;
    let alice_id = id_of(&alice);
    assert_eq!(
        carol.add_contact("alice").await.unwrap(),
        Added {
            contact: alice_id,
            key_changed: false
        }
    );

    let mut mallory = open(&relay.url);
    mallory.connect(5).await.unwrap();
    mallory.register().await.unwrap();
    let err = mallory.claim_username("alice", None).await.unwrap_err();
    assert!(
        matches!(
            err,
            UsernameError::Relay(RequestError::Relay {
                code: ErrorCode::PinRequired,
                ..
            })
        ),
        "{err:?}"
    );
    let err = mallory
        .claim_username("alice", Some("1111"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            UsernameError::Relay(RequestError::Relay {
                code: ErrorCode::PinIncorrect,
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(carol.lookup("alice").await.unwrap(), alice.account());

    // The right PIN moves the name; Carol's pinned contact for "alice" keeps its id and is
    // flagged as changed, now pointing at the new key.
    mallory.claim_username("alice", Some("2468")).await.unwrap();
    assert_eq!(carol.lookup("alice").await.unwrap(), mallory.account());
    assert_eq!(
        carol.add_contact("alice").await.unwrap(),
        Added {
            contact: alice_id,
            key_changed: true
        }
    );
    let flagged = contact(&carol, "alice");
    assert_eq!(flagged.account, alice_id);
    assert_eq!(flagged.verification, Verification::Changed);
    assert_eq!(flagged.identity_key, mallory.account().0.to_vec());

    // Alice's old key is no longer the contact's: a message from it is dropped and
    // acknowledged (it does not come back), not taken for a new person.
    let carol_for_alice = alice.add_contact("carol").await.unwrap().contact;
    alice
        .send_text(&carol_for_alice, "it is still me")
        .await
        .unwrap();
    wait_for(&mut carol, |e| *e == Event::Dropped).await;
    assert_eq!(carol.contacts().unwrap().len(), 1);
    assert!(texts(&carol, &alice_id).is_empty());
    carol.disconnect();
    carol.connect(5).await.unwrap();
    let seen = wait_for(&mut carol, |e| *e == Event::QueueDrained).await;
    assert!(!seen.contains(&Event::Dropped), "{seen:?}");
}

/// Someone Alice blocked cannot get back in by taking the same username with a new key: the
/// message is dropped, and the blocked contact keeps its old key and stays blocked.
#[tokio::test]
async fn a_blocked_contact_stays_blocked_under_a_new_key() {
    let relay = Relay::start("blocked-rekey", &[]);
    let mut alice = setup(&relay.url, "alice", None).await;
    let bob = setup(&relay.url, "bob", Some("1357")).await;
    let bob_id = id_of(&bob);
    alice.add_contact("bob").await.unwrap();
    alice.set_blocked(&bob_id, true).unwrap();

    let mut bob2 = open(&relay.url);
    bob2.connect(5).await.unwrap();
    bob2.register().await.unwrap();
    bob2.claim_username("bob", Some("1357")).await.unwrap();
    let alice_for_bob2 = bob2.add_contact("alice").await.unwrap().contact;
    bob2.send_text(&alice_for_bob2, "let me back in")
        .await
        .unwrap();

    let seen = wait_for(&mut alice, |e| *e == Event::Dropped).await;
    assert!(
        !seen.iter().any(|e| matches!(e, Event::Message { .. })),
        "{seen:?}"
    );
    let blocked = contact(&alice, "bob");
    assert!(blocked.blocked);
    assert_eq!(blocked.account, bob_id);
    assert_eq!(blocked.identity_key, bob.account().0.to_vec());
    assert_eq!(alice.contacts().unwrap().len(), 1);
    assert!(texts(&alice, &bob_id).is_empty());
    assert!(texts(&alice, &id_of(&bob2)).is_empty());
}

#[tokio::test]
async fn offline_delivery_and_relay_sigkill_lose_and_duplicate_nothing() {
    let mut relay = Relay::start("crash", &[]);
    let mut alice = setup(&relay.url, "alice", None).await;
    let mut bob = setup(&relay.url, "bob", None).await;
    let bob_id = alice.add_contact("bob").await.unwrap().contact;
    let alice_id = id_of(&alice);

    // Offline recipient: queued by the relay, delivered on reconnect.
    bob.disconnect();
    alice
        .send_text(&bob_id, "while you were away")
        .await
        .unwrap();
    bob.connect(5).await.unwrap();
    wait_for(&mut bob, |e| *e == Event::QueueDrained).await;
    assert_eq!(texts(&bob, &alice_id), ["while you were away"]);
    bob.add_contact("alice").await.unwrap();

    // Accepted by the relay, then the relay is SIGKILLed before or while Bob processes it.
    alice.send_text(&bob_id, "before crash").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    relay.kill();
    // Bob processes what was already pushed to him (committing it), but the relay is gone, so
    // his acknowledgement is lost.
    let mut before = Vec::new();
    while let Ok(Some(e)) = bob.next_event(Duration::from_secs(2)).await {
        before.push(e);
    }
    assert!(
        before.iter().any(|e| matches!(e, Event::Message { .. })),
        "{before:?}"
    );
    assert_eq!(
        texts(&bob, &alice_id),
        ["while you were away", "before crash"]
    );
    // Sending while the relay is down keeps the envelope in the outbox.
    let err = alice.send_text(&bob_id, "during outage").await.unwrap_err();
    assert!(err.is_queued(), "{err:?}");
    assert!(
        matches!(err, SendError::Relay(_) | SendError::Connect(_)),
        "{err:?}"
    );
    assert_eq!(alice.queued().unwrap(), 1);
    let pending = messages(&alice, &bob_id);
    assert_eq!(pending.last().unwrap().body, "during outage");
    assert_eq!(pending.last().unwrap().state, DeliveryState::Pending);

    relay.restart();
    alice.connect(20).await.unwrap();
    assert_eq!(alice.flush_outbox().await.unwrap(), 1);
    assert_eq!(alice.queued().unwrap(), 0);
    assert_eq!(
        messages(&alice, &bob_id).last().unwrap().state,
        DeliveryState::Sent
    );
    bob.connect(20).await.unwrap();
    bob.flush_outbox().await.unwrap();
    bob.top_up_prekeys().await.unwrap();
    let mut after_restart = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while texts(&bob, &alice_id).len() < 3 && tokio::time::Instant::now() < deadline {
        after_restart.extend(bob.next_event(Duration::from_millis(500)).await.unwrap());
    }
    // Drain any further redelivery; nothing may appear twice.
    while let Some(e) = bob.next_event(Duration::from_secs(1)).await.unwrap() {
        after_restart.push(e);
    }
    // "before crash" was committed before the kill but its ack never reached the relay: it
    // is pushed again and recognised by its relay message id.
    assert!(
        after_restart.contains(&Event::Duplicate),
        "{after_restart:?}"
    );
    assert_eq!(
        texts(&bob, &alice_id),
        ["while you were away", "before crash", "during outage"]
    );
    assert_eq!(bob.queued().unwrap(), 0);
}

#[tokio::test]
async fn prekeys_are_topped_up_and_signed_prekey_rotates() {
    // A watermark above the target makes every one-time fetch trigger PrekeysLow.
    let relay = Relay::start("prekeys", &["--prekey-low-watermark", "25"]);
    let mut bob = setup(&relay.url, "bob", None).await;
    let mut alice = setup(&relay.url, "alice", None).await;
    let mut carol = setup(&relay.url, "carol", None).await;
    assert_eq!(bob.prekey_count().await.unwrap(), (20, 10));

    let bob_id = alice.add_contact("bob").await.unwrap().contact;
    assert_eq!(bob.prekey_count().await.unwrap(), (19, 9));
    wait_for(&mut bob, |e| *e == Event::PrekeysReplenished).await;
    assert_eq!(bob.prekey_count().await.unwrap(), (20, 10));

    // Rotation: the old signed prekey stays in the profile, so Alice's session (made against
    // it) still works, and a new contact gets the new one.
    let old = bob.store().prekey_ids(PrekeyKind::Signed).unwrap();
    assert_eq!(old.len(), 1);
    let new = bob.rotate_signed_prekey().await.unwrap();
    assert!(!old.contains(&new));
    let mut both = bob.store().prekey_ids(PrekeyKind::Signed).unwrap();
    both.sort_unstable();
    assert_eq!(both, [old[0], new]);
    alice.send_text(&bob_id, "old spk").await.unwrap();
    let carol_bob = carol.add_contact("bob").await.unwrap().contact;
    assert_eq!(carol_bob, bob_id);
    carol.send_text(&carol_bob, "new spk").await.unwrap();
    let (alice_id, carol_id) = (id_of(&alice), id_of(&carol));
    let deadline = tokio::time::Instant::now() + WAIT;
    while (texts(&bob, &alice_id).is_empty() || texts(&bob, &carol_id).is_empty())
        && tokio::time::Instant::now() < deadline
    {
        bob.next_event(Duration::from_millis(500)).await.unwrap();
    }
    assert_eq!(texts(&bob, &alice_id), ["old spk"]);
    assert_eq!(texts(&bob, &carol_id), ["new spk"]);
}

/// `next_incoming` raced against a timer that almost always wins (as in the desktop app's
/// `select!` loop) loses no push: every message still arrives, once, in order.
#[tokio::test]
async fn next_incoming_is_cancel_safe_in_select() {
    let relay = Relay::start("cancel", &[]);
    let mut alice = setup(&relay.url, "alice", None).await;
    let mut bob = setup(&relay.url, "bob", None).await;
    let bob_id = alice.add_contact("bob").await.unwrap().contact;
    let alice_id = id_of(&alice);
    let sent: Vec<String> = (0..8).map(|i| format!("m{i}")).collect();
    let (mut cancelled, mut events, mut next) = (0u32, Vec::new(), 0);
    let deadline = tokio::time::Instant::now() + WAIT;
    while texts(&bob, &alice_id).len() < sent.len() && tokio::time::Instant::now() < deadline {
        let incoming = tokio::select! {
            biased;
            // Polled first, so the receive is abandoned mid-wait whenever the timer is due.
            _ = tokio::time::sleep(Duration::from_micros(200)) => {
                cancelled += 1;
                // Messages arrive while Bob is in the middle of waiting.
                if cancelled % 10 == 0 && next < sent.len() {
                    alice.send_text(&bob_id, &sent[next]).await.unwrap();
                    next += 1;
                }
                continue;
            }
            i = bob.next_incoming(Duration::from_secs(1)) => i.unwrap(),
        };
        if let Some(i) = incoming {
            events.extend(bob.process(i).await.unwrap());
        }
    }
    assert!(cancelled > 0, "the receive was never cancelled");
    assert_eq!(texts(&bob, &alice_id), sent, "{events:?}");
    assert!(!events.contains(&Event::Duplicate), "{events:?}");
}

/// The relay is SIGKILLed and restarted on the same port and data directory: both pumps
/// report the loss, never wait longer than asked while the relay is down, reconnect by
/// themselves, and the message queued during the outage goes out and arrives.
#[tokio::test]
async fn pump_reconnects_by_itself_and_flushes_the_outbox() {
    let mut relay = Relay::start("reconnect", &[]);
    let mut alice = setup(&relay.url, "alice", None).await;
    let mut bob = setup(&relay.url, "bob", None).await;
    let bob_id = alice.add_contact("bob").await.unwrap().contact;
    let alice_id = id_of(&alice);
    alice.send_text(&bob_id, "before").await.unwrap();
    wait_for(&mut bob, |e| matches!(e, Event::Message { .. })).await;
    assert!(alice.is_connected() && bob.is_connected());

    relay.kill();
    wait_for(&mut bob, |e| *e == Event::ConnectionLost).await;
    wait_for(&mut alice, |e| *e == Event::ConnectionLost).await;
    assert!(!alice.is_connected() && !bob.is_connected());
    let err = alice
        .send_text(&bob_id, "queued offline")
        .await
        .unwrap_err();
    assert!(err.is_queued(), "{err:?}");
    assert_eq!(alice.queued().unwrap(), 1);
    // While the relay is down the pump keeps trying in the background but returns in time.
    for _ in 0..3 {
        let started = std::time::Instant::now();
        assert_eq!(
            bob.next_event(Duration::from_millis(300)).await.unwrap(),
            None
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }

    relay.restart();
    let (mut alice_events, mut bob_events) = (Vec::new(), Vec::new());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while (texts(&bob, &alice_id).len() < 2 || !alice_events.contains(&Event::Reconnected))
        && tokio::time::Instant::now() < deadline
    {
        alice_events.extend(alice.next_event(Duration::from_millis(200)).await.unwrap());
        bob_events.extend(bob.next_event(Duration::from_millis(200)).await.unwrap());
    }
    assert!(
        alice_events.contains(&Event::Reconnected),
        "{alice_events:?}"
    );
    assert!(bob_events.contains(&Event::Reconnected), "{bob_events:?}");
    assert!(alice.is_connected() && bob.is_connected());
    assert_eq!(alice.queued().unwrap(), 0);
    assert_eq!(texts(&bob, &alice_id), ["before", "queued offline"]);
    // The restored connections carry traffic both ways.
    bob.add_contact("alice").await.unwrap();
    bob.send_text(&alice_id, "back").await.unwrap();
    wait_for(&mut alice, |e| matches!(e, Event::Message { .. })).await;

    // After an explicit disconnect nothing reconnects by itself.
    bob.disconnect();
    assert!(matches!(
        bob.next_event(Duration::from_millis(100)).await,
        Err(ReceiveError::NotConnected)
    ));
}

/// Scheduled rotation with an explicit clock: not due at once, due after seven days; a
/// session started from the bundle fetched before the rotation still opens; the old private
/// key is deleted thirty days after it was replaced, after which a session start against it
/// is dropped.
#[tokio::test]
async fn signed_prekey_rotates_when_due_and_old_one_is_kept_for_the_grace_period() {
    const DAY: i64 = 24 * 3600 * 1000;
    let relay = Relay::start("rotation", &[]);
    let mut bob = setup(&relay.url, "bob", None).await;
    let mut alice = setup(&relay.url, "alice", None).await;
    let mut carol = setup(&relay.url, "carol", None).await;
    let mut dave = setup(&relay.url, "dave", None).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let old = bob.store().prekey_ids(PrekeyKind::Signed).unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(
        bob.maintain_signed_prekey_at(now + DAY).await.unwrap(),
        None
    );

    // Alice and Dave fetch Bob's bundle (the old signed prekey) but send nothing yet.
    let bob_for_alice = alice.add_contact("bob").await.unwrap().contact;
    let bob_for_dave = dave.add_contact("bob").await.unwrap().contact;
    let new = bob
        .maintain_signed_prekey_at(now + 8 * DAY)
        .await
        .unwrap()
        .expect("rotation due after a week");
    assert_eq!(
        bob.store().prekey_ids(PrekeyKind::Signed).unwrap(),
        [old[0], new]
    );
    // The new key's age counts from its rotation.
    assert_eq!(
        bob.maintain_signed_prekey_at(now + 9 * DAY).await.unwrap(),
        None
    );

    alice.send_text(&bob_for_alice, "old spk").await.unwrap();
    let bob_for_carol = carol.add_contact("bob").await.unwrap().contact;
    carol.send_text(&bob_for_carol, "new spk").await.unwrap();
    let (alice_id, carol_id, dave_id) = (id_of(&alice), id_of(&carol), id_of(&dave));
    let deadline = tokio::time::Instant::now() + WAIT;
    while (texts(&bob, &alice_id).is_empty() || texts(&bob, &carol_id).is_empty())
        && tokio::time::Instant::now() < deadline
    {
        bob.next_event(Duration::from_millis(500)).await.unwrap();
    }
    assert_eq!(texts(&bob, &alice_id), ["old spk"]);
    assert_eq!(texts(&bob, &carol_id), ["new spk"]);

    // 30 days after the rotation the old private key goes (and the current one, 30 days old
    // by then, rotates again); Dave's late session start against it can no longer be opened.
    let newer = bob
        .maintain_signed_prekey_at(now + 38 * DAY)
        .await
        .unwrap()
        .expect("rotation due again");
    assert_eq!(
        bob.store().prekey_ids(PrekeyKind::Signed).unwrap(),
        [new, newer]
    );
    dave.send_text(&bob_for_dave, "too late").await.unwrap();
    wait_for(&mut bob, |e| *e == Event::Dropped).await;
    assert!(texts(&bob, &dave_id).is_empty());
    // The established session with Alice is unaffected.
    alice.send_text(&bob_for_alice, "still here").await.unwrap();
    wait_for(&mut bob, |e| matches!(e, Event::Message { .. })).await;
    assert_eq!(texts(&bob, &alice_id), ["old spk", "still here"]);
}

/// A rotation whose upload fails (the relay vanished mid-request; it may or may not have
/// taken the key) keeps the new secret like a replaced key: the current key stays current,
/// and the kept one is deleted when its grace period is over.
#[tokio::test]
async fn a_signed_prekey_whose_upload_failed_is_kept_then_deleted() {
    const DAY: i64 = 24 * 3600 * 1000;
    let mut relay = Relay::start("rotation-failed", &[]);
    let mut bob = setup(&relay.url, "bob", None).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let old = bob.store().prekey_ids(PrekeyKind::Signed).unwrap();
    relay.kill();
    bob.rotate_signed_prekey().await.unwrap_err();
    let kept = bob.store().prekey_ids(PrekeyKind::Signed).unwrap();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!(kept[0], old[0]);

    relay.restart();
    bob.disconnect();
    bob.connect(5).await.unwrap();
    let newer = bob
        .maintain_signed_prekey_at(now + 31 * DAY)
        .await
        .unwrap()
        .expect("rotation due after a month");
    assert_eq!(
        bob.store().prekey_ids(PrekeyKind::Signed).unwrap(),
        [old[0], newer]
    );
}

/// A message the relay refuses for good (its recipient deleted the account) is marked
/// failed and leaves the outbox instead of holding up everything queued behind it.
#[tokio::test]
async fn a_refused_envelope_does_not_block_the_outbox() {
    let mut relay = Relay::start("refused", &[]);
    let mut alice = setup(&relay.url, "alice", None).await;
    let mut bob = setup(&relay.url, "bob", None).await;
    let mut carol = setup(&relay.url, "carol", None).await;
    let bob_id = alice.add_contact("bob").await.unwrap().contact;
    let carol_id = alice.add_contact("carol").await.unwrap().contact;
    bob.delete_account().await.unwrap();

    // Sent directly: refused at once, with its own error.
    let err = alice.send_text(&bob_id, "to nobody").await.unwrap_err();
    assert!(matches!(err, SendError::Undeliverable), "{err:?}");
    assert!(!err.is_queued());
    let failed = messages(&alice, &bob_id);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].state, DeliveryState::Failed);

    // Queued while the relay is away, ahead of a message to Carol.
    relay.kill();
    let err = alice.send_text(&bob_id, "still nobody").await.unwrap_err();
    assert!(err.is_queued(), "{err:?}");
    let to_carol = alice.send_text(&carol_id, "hi carol").await.unwrap_err();
    assert!(to_carol.is_queued(), "{to_carol:?}");
    assert_eq!(alice.queued().unwrap(), 2);
    relay.restart();
    alice.disconnect();
    alice.connect(5).await.unwrap();
    alice.flush_outbox().await.unwrap();
    assert_eq!(alice.queued().unwrap(), 0);
    assert!(
        messages(&alice, &bob_id)
            .iter()
            .all(|m| m.state == DeliveryState::Failed)
    );
    let alice_id = id_of(&alice);
    let deadline = tokio::time::Instant::now() + WAIT;
    while texts(&carol, &alice_id).is_empty() && tokio::time::Instant::now() < deadline {
        carol.next_event(Duration::from_millis(500)).await.unwrap();
    }
    assert_eq!(texts(&carol, &alice_id), ["hi carol"]);
}

/// A test CA and a certificate for `localhost` it signed, written as PEM files the relay
/// reads. Returns the CA's PEM and the certificate and key paths.
fn tls_files(dir: &std::path::Path, ca_name: &str) -> (Vec<u8>, String, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (
        ca.pem().into_bytes(),
        cert_path.to_str().unwrap().to_owned(),
        key_path.to_str().unwrap().to_owned(),
    )
}

/// Over wss:// with the relay's CA stored in the profile: register, chat, and the CA
/// survives reopening the profile. Without it, or with another CA, connecting fails at once
/// with `UntrustedCertificate` (no retries).
#[tokio::test]
async fn wss_relay_with_a_profile_ca_and_untrusted_certificates() {
    let tls_dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls_files(tls_dir.path(), "Sotto test relay CA");
    let relay = Relay::start("wss", &["--tls-cert", &cert, "--tls-key", &key]);
    assert!(relay.url.starts_with("wss://127.0.0.1:"), "{}", relay.url);
    // The certificate names localhost, which the relay accepts as a host to sign.
    let url = relay.url.replace("127.0.0.1", "localhost");

    async fn setup_tls(url: &str, username: &str, ca: &[u8]) -> Device {
        let mut c = open(url);
        c.set_relay_ca(Some(ca)).unwrap();
        c.connect(3).await.unwrap();
        c.register().await.unwrap();
        c.claim_username(username, None).await.unwrap();
        wait_for(&mut c, |e| *e == Event::QueueDrained).await;
        c
    }
    let mut alice = setup_tls(&url, "alice", &ca).await;
    let mut bob = setup_tls(&url, "bob", &ca).await;
    assert!(alice.has_relay_ca().unwrap());
    let bob_id = alice.add_contact("bob").await.unwrap().contact;
    alice.send_text(&bob_id, "over tls").await.unwrap();
    wait_for(&mut bob, |e| matches!(e, Event::Message { .. })).await;
    assert_eq!(texts(&bob, &id_of(&alice)), ["over tls"]);

    // Reopened from its database, the profile still trusts the CA.
    let Device {
        client,
        _dir: bob_dir,
    } = bob;
    drop(client);
    let pass = Passphrase::new(Zeroizing::new("pw".to_string()));
    let store = Store::open_with_passphrase(&bob_dir.path().join("profile"), &pass).unwrap();
    let mut bob = Client::open(store, &url).unwrap();
    bob.connect(3).await.unwrap();
    assert!(bob.is_connected());

    // Only the OS trust store: the test CA is not in it.
    let mut eve = open(&url);
    let started = std::time::Instant::now();
    let err = eve.connect(5).await.unwrap_err();
    assert!(matches!(err, ConnectError::UntrustedCertificate), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "untrusted must not be retried"
    );
    // Another CA of the same name does not help.
    let other_dir = tempfile::tempdir().unwrap();
    let (other_ca, _, _) = tls_files(other_dir.path(), "Sotto test relay CA");
    eve.set_relay_ca(Some(&other_ca)).unwrap();
    let err = eve.connect(1).await.unwrap_err();
    assert!(matches!(err, ConnectError::UntrustedCertificate), "{err:?}");
    // Not PEM is refused up front.
    assert!(eve.set_relay_ca(Some(b"not a certificate")).is_err());
    // A plain ws:// client cannot talk to the TLS port.
    let mut plain = open(&url.replace("wss://", "ws://"));
    assert!(plain.connect(1).await.is_err());
}

/// A TCP proxy that can be frozen: while frozen it swallows bytes both ways without closing
/// anything, like a network that vanished under a sleeping laptop.
async fn freezing_proxy(
    listener: tokio::net::TcpListener,
    target: String,
) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let frozen = std::sync::Arc::new(AtomicBool::new(false));
    let flag = frozen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = tokio::net::TcpStream::connect(&target).await.unwrap();
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            for (mut from, mut to) in [(cr, sw), (sr, cw)].map(|(r, w)| {
                (
                    Box::new(r) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                    w,
                )
            }) {
                let flag = flag.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n) = from.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        if !flag.load(Ordering::SeqCst) && to.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    // Hold the write half open: a frozen link never says goodbye.
                    std::future::pending::<()>().await;
                    drop(to);
                });
            }
        }
    });
    frozen
}

/// With keep-alive pings, an idle healthy connection stays up, and one that goes silent
/// (no FIN, no RST) is noticed within a few intervals, reported, and restored.
#[tokio::test]
async fn silent_connection_death_is_detected_by_keepalive() {
    use std::sync::atomic::Ordering;
    // Alice goes through a proxy that will freeze, Bob through one that never does; the
    // relay accepts both proxies' addresses as the host clients sign.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = listener.local_addr().unwrap().to_string();
    let bob_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bob_proxy = bob_listener.local_addr().unwrap().to_string();
    let relay = Relay::start(
        "keepalive",
        &["--public-host", &proxy, "--public-host", &bob_proxy],
    );
    let target = relay.url.trim_start_matches("ws://").to_owned();
    let frozen = freezing_proxy(listener, target.clone()).await;
    freezing_proxy(bob_listener, target).await;

    let mut alice = open(&format!("ws://{proxy}"));
    alice.set_keepalive(Duration::from_millis(200));
    alice.connect(3).await.unwrap();
    alice.register().await.unwrap();
    alice.claim_username("alice", None).await.unwrap();
    let mut bob = setup(&format!("ws://{bob_proxy}"), "bob", None).await;

    // Idle for ten intervals: pings are answered, nothing is lost.
    let mut idle = Vec::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < until {
        idle.extend(alice.next_event(Duration::from_millis(200)).await.unwrap());
    }
    assert!(!idle.contains(&Event::ConnectionLost), "{idle:?}");
    assert!(alice.is_connected());

    frozen.store(true, Ordering::SeqCst);
    let started = std::time::Instant::now();
    wait_for(&mut alice, |e| *e == Event::ConnectionLost).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    frozen.store(false, Ordering::SeqCst);
    wait_for(&mut alice, |e| *e == Event::Reconnected).await;

    let alice_for_bob = bob.add_contact("alice").await.unwrap().contact;
    bob.send_text(&alice_for_bob, "after the freeze")
        .await
        .unwrap();
    wait_for(&mut alice, |e| matches!(e, Event::Message { .. })).await;
    assert_eq!(texts(&alice, &id_of(&bob)), ["after the freeze"]);
}

/// After a backup import the pump indexes the restored messages for search in batches,
/// newest first, behind everything else; the progress survives a restart, and the pump
/// reports when search covers everything again.
#[tokio::test]
async fn restored_messages_are_indexed_by_the_pump_across_a_restart() {
    use sotto_client::SEARCH_INDEX_BATCH;
    use sotto_store::{Address, NewMessage, backup};

    let relay = Relay::start("search-backlog", &[]);
    let mut alice = setup(&relay.url, "alice", None).await;
    let _bob = setup(&relay.url, "bob", None).await;
    let bob_id = alice.add_contact("bob").await.unwrap().contact;
    let conv = alice.store_mut().conversation_with(&bob_id, 1).unwrap();
    let n = 2 * SEARCH_INDEX_BATCH as usize + 10;
    let bodies: Vec<String> = (0..n).map(|i| format!("restoredword{i} common")).collect();
    let msgs: Vec<NewMessage<'_>> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| NewMessage {
            conversation: conv,
            direction: Direction::Incoming,
            sender: Address {
                account: bob_id,
                device: 1,
            },
            body,
            sent_at: i as i64,
            received_at: None,
            state: DeliveryState::Delivered,
            expire_timer_secs: 0,
            relay_id: None,
            client_id: None,
        })
        .collect();
    alice.store_mut().insert_messages(&msgs).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("alice.backup");
    let fast = KdfParams {
        m_cost_kib: 256,
        t_cost: 1,
        p_cost: 1,
    };
    let pass = Passphrase::new(Zeroizing::new("pw".to_string()));
    backup::export(alice.store(), &file, &pass, fast, &mut |_| {}).unwrap();
    drop(alice);

    let dir = tmp.path().join("restored");
    let store = backup::import(
        &file,
        &pass,
        &dir,
        KeyProtection::Passphrase(&pass, fast),
        &mut |_| {},
    )
    .unwrap();
    let mut restored = Client::open(store, &relay.url).unwrap();
    restored.connect(5).await.unwrap();
    assert!(restored.search_index_pending().unwrap());
    let hits = |c: &Client, q: &str| c.store().search(q, 100_000).unwrap().len();
    assert_eq!(hits(&restored, "common"), 0);
    // Exactly one batch: whatever the relay pushes first is handled, then one index step.
    loop {
        let incoming = restored.next_incoming(WAIT).await.unwrap().unwrap();
        let index_step = format!("{incoming:?}").contains("IndexSearch");
        let event = restored.process(incoming).await.unwrap();
        if index_step {
            assert_eq!(event, None, "more batches are left");
            break;
        }
    }
    assert_eq!(hits(&restored, "common"), SEARCH_INDEX_BATCH as usize);
    assert_eq!(hits(&restored, &format!("restoredword{}", n - 1)), 1);
    assert_eq!(hits(&restored, "restoredword0"), 0);

    // Restart: the rest is indexed by the new pump.
    restored.into_store().close().unwrap();
    let store = Store::open_with_passphrase(&dir, &pass).unwrap();
    let mut restored = Client::open(store, &relay.url).unwrap();
    restored.connect(5).await.unwrap();
    assert!(restored.search_index_pending().unwrap());
    assert_eq!(hits(&restored, "common"), SEARCH_INDEX_BATCH as usize);
    wait_for(&mut restored, |e| *e == Event::SearchIndexReady).await;
    assert!(!restored.search_index_pending().unwrap());
    assert_eq!(hits(&restored, "common"), n);
    assert_eq!(hits(&restored, "restoredword0"), 1);
    assert!(restored.store().verify_search_index().unwrap());
}
