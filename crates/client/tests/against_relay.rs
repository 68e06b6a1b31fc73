//! End-to-end tests of the client engine against the real `sotto-relay` process over real
//! sockets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod relay_process;

use std::time::Duration;

use relay_process::Relay;
use sotto_client::{
    Client, ClientState, Event, MemoryState, RequestError, SendError, UsernameError,
};
use sotto_relay_wire::ErrorCode;

const WAIT: Duration = Duration::from_secs(10);

async fn setup(url: &str, username: &str, pin: Option<&str>) -> Client<MemoryState> {
    let mut c = Client::open(MemoryState::new(), url).unwrap();
    c.connect(5).await.unwrap();
    c.register().await.unwrap();
    c.claim_username(username, pin).await.unwrap();
    wait_for(&mut c, |e| *e == Event::QueueDrained).await;
    c
}

/// Processes events until one matches; returns everything seen.
async fn wait_for(c: &mut Client<MemoryState>, pred: impl Fn(&Event) -> bool) -> Vec<Event> {
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

fn texts(c: &Client<MemoryState>, peer: sotto_protocol::AccountId) -> Vec<String> {
    c.state()
        .messages(peer)
        .unwrap()
        .into_iter()
        .filter(|m| !m.outgoing)
        .map(|m| m.text)
        .collect()
}

#[tokio::test]
async fn chat_both_ways_with_receipts_requests_typing_and_timer() {
    let relay = Relay::start("chat", &[]);
    let mut alice = setup(&relay.url, "alice", None).await;
    let mut bob = setup(&relay.url, "bob", None).await;
    let mut carol = setup(&relay.url, "carol", None).await;

    let bob_id = alice.add_contact("bob").await.unwrap();
    assert_eq!(bob_id, bob.account());
    let hi = alice.send_text(bob_id, "hi bob").await.unwrap();

    // Bob has not added Alice: a message request, no delivery receipt.
    let seen = wait_for(&mut bob, |e| matches!(e, Event::Message { .. })).await;
    let alice_id = alice.account();
    assert!(seen.contains(&Event::Message {
        from: alice_id,
        id: hi,
        request: true
    }));
    assert!(!bob.state().contact(alice_id).unwrap().unwrap().accepted);
    assert_eq!(texts(&bob, alice_id), ["hi bob"]);

    // Accepting reuses the session Alice started.
    assert_eq!(bob.add_contact("alice").await.unwrap(), alice_id);
    assert!(bob.state().contact(alice_id).unwrap().unwrap().accepted);
    let back = bob.send_text(alice_id, "hi alice").await.unwrap();
    let seen = wait_for(&mut alice, |e| matches!(e, Event::Message { .. })).await;
    assert!(seen.contains(&Event::Message {
        from: bob_id,
        id: back,
        request: false
    }));
    assert_eq!(texts(&alice, bob_id), ["hi alice"]);
    // Alice added Bob, so her client acknowledges his message with a delivery receipt.
    wait_for(&mut bob, |e| {
        *e == Event::Delivered {
            from: alice_id,
            ids: vec![back],
        }
    })
    .await;

    bob.send_read_receipt(alice_id, vec![hi]).await.unwrap();
    wait_for(&mut alice, |e| {
        *e == Event::Read {
            from: bob_id,
            ids: vec![hi],
        }
    })
    .await;
    let mine = alice.state().messages(bob_id).unwrap();
    let first = mine.iter().find(|m| m.id == hi).unwrap();
    assert!(first.outgoing && first.delivered && first.read);

    let second = alice.send_text(bob_id, "second").await.unwrap();
    wait_for(
        &mut bob,
        |e| matches!(e, Event::Message { id, .. } if *id == second),
    )
    .await;
    wait_for(&mut alice, |e| {
        *e == Event::Delivered {
            from: bob_id,
            ids: vec![second],
        }
    })
    .await;

    bob.send_typing(alice_id, true).await.unwrap();
    wait_for(&mut alice, |e| {
        *e == Event::Typing {
            from: bob_id,
            started: true,
        }
    })
    .await;
    alice.set_disappearing_timer(bob_id, 3600).await.unwrap();
    wait_for(&mut bob, |e| {
        *e == Event::TimerChanged {
            from: alice_id,
            seconds: 3600,
        }
    })
    .await;
    assert_eq!(bob.state().timer(alice_id).unwrap(), 3600);
    assert_eq!(alice.state().timer(bob_id).unwrap(), 3600);

    // A third, unknown sender shows up as a message request.
    let carol_id = carol.account();
    carol.add_contact("alice").await.unwrap();
    let from_carol = carol.send_text(alice_id, "hello stranger").await.unwrap();
    wait_for(&mut alice, |e| {
        *e == Event::Message {
            from: carol_id,
            id: from_carol,
            request: true,
        }
    })
    .await;
    let contact = alice.state().contact(carol_id).unwrap().unwrap();
    assert!(!contact.accepted && contact.username.is_none());
    assert_eq!(texts(&alice, carol_id), ["hello stranger"]);
    assert!(alice.state().outbox().unwrap().is_empty());
}

#[tokio::test]
async fn registration_lock_pin_protects_the_username() {
    let relay = Relay::start("reglock", &[]);
    let alice = setup(&relay.url, "alice", Some("2468")).await;
    let mut carol = setup(&relay.url, "carol", None).await;
    assert_eq!(carol.add_contact("alice").await.unwrap(), alice.account());

    let mut mallory = Client::open(MemoryState::new(), &relay.url).unwrap();
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

    // The right PIN moves the name; Carol's pinned contact for "alice" gets flagged.
    mallory.claim_username("alice", Some("2468")).await.unwrap();
    assert_eq!(carol.add_contact("alice").await.unwrap(), mallory.account());
    assert!(
        carol
            .state()
            .contact(alice.account())
            .unwrap()
            .unwrap()
            .key_changed
    );
}

#[tokio::test]
async fn offline_delivery_and_relay_sigkill_lose_and_duplicate_nothing() {
    let mut relay = Relay::start("crash", &[]);
    let mut alice = setup(&relay.url, "alice", None).await;
    let mut bob = setup(&relay.url, "bob", None).await;
    let bob_id = alice.add_contact("bob").await.unwrap();
    let alice_id = alice.account();

    // Offline recipient: queued by the relay, delivered on reconnect.
    bob.disconnect();
    alice
        .send_text(bob_id, "while you were away")
        .await
        .unwrap();
    bob.connect(5).await.unwrap();
    wait_for(&mut bob, |e| *e == Event::QueueDrained).await;
    assert_eq!(texts(&bob, alice_id), ["while you were away"]);
    bob.add_contact("alice").await.unwrap();

    // Accepted by the relay, then the relay is SIGKILLed before or while Bob processes it.
    alice.send_text(bob_id, "before crash").await.unwrap();
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
        texts(&bob, alice_id),
        ["while you were away", "before crash"]
    );
    // Sending while the relay is down keeps the envelope in the outbox.
    let err = alice.send_text(bob_id, "during outage").await.unwrap_err();
    assert!(
        matches!(err, SendError::Relay(_) | SendError::Connect(_)),
        "{err:?}"
    );
    assert_eq!(alice.state().outbox().unwrap().len(), 1);

    relay.restart();
    alice.connect(20).await.unwrap();
    assert_eq!(alice.flush_outbox().await.unwrap(), 1);
    assert!(alice.state().outbox().unwrap().is_empty());
    bob.connect(20).await.unwrap();
    bob.flush_outbox().await.unwrap();
    bob.top_up_prekeys().await.unwrap();
    let mut after_restart = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while texts(&bob, alice_id).len() < 3 && tokio::time::Instant::now() < deadline {
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
        texts(&bob, alice_id),
        ["while you were away", "before crash", "during outage"]
    );
}

#[tokio::test]
async fn prekeys_are_topped_up_and_signed_prekey_rotates() {
    // A watermark above the target makes every one-time fetch trigger PrekeysLow.
    let relay = Relay::start("prekeys", &["--prekey-low-watermark", "25"]);
    let mut bob = setup(&relay.url, "bob", None).await;
    let mut alice = setup(&relay.url, "alice", None).await;
    let mut carol = setup(&relay.url, "carol", None).await;
    assert_eq!(bob.prekey_count().await.unwrap(), (20, 10));

    let bob_id = alice.add_contact("bob").await.unwrap();
    assert_eq!(bob.prekey_count().await.unwrap(), (19, 9));
    wait_for(&mut bob, |e| *e == Event::PrekeysReplenished).await;
    assert_eq!(bob.prekey_count().await.unwrap(), (20, 10));

    // Rotation: Alice's session (made against the old signed prekey) still works, and a new
    // contact gets the new one.
    let old = bob.state().current_signed_prekey().unwrap().unwrap();
    let new = bob.rotate_signed_prekey().await.unwrap();
    assert_ne!(old, new);
    assert_eq!(bob.state().current_signed_prekey().unwrap(), Some(new));
    alice.send_text(bob_id, "old spk").await.unwrap();
    carol.add_contact("bob").await.unwrap();
    carol.send_text(bob_id, "new spk").await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while (texts(&bob, alice.account()).is_empty() || texts(&bob, carol.account()).is_empty())
        && tokio::time::Instant::now() < deadline
    {
        bob.next_event(Duration::from_millis(500)).await.unwrap();
    }
    assert_eq!(texts(&bob, alice.account()), ["old spk"]);
    assert_eq!(texts(&bob, carol.account()), ["new spk"]);
}
