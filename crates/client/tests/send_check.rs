//! The desktop app runs a `Client` inside a spawned tokio task on a multi-threaded runtime,
//! so the `Client`, `Incoming` and every engine future must be `Send`. This file fails to
//! compile if one stops being so (typically an `async fn(&self)` holding a shared borrow of
//! the client, whose database connection is not `Sync`, across an `.await`).
#![allow(dead_code)]

use std::time::Duration;

use sotto_client::{Client, Incoming};

fn assert_send<T: Send>(_: &T) {}

fn engine_futures_are_send(c: &mut Client, i: Incoming, id: sotto_store::AccountId) {
    assert_send(&i);
    assert_send(&c.next_incoming(Duration::ZERO));
    assert_send(&c.process(i));
    assert_send(&c.next_event(Duration::ZERO));
    assert_send(&c.connect(1));
    assert_send(&c.register());
    assert_send(&c.top_up_prekeys());
    assert_send(&c.prekey_count());
    assert_send(&c.claim_username("x", None));
    assert_send(&c.rotate_signed_prekey());
    assert_send(&c.maintain_signed_prekey());
    assert_send(&c.lookup("x"));
    assert_send(&c.add_contact("x"));
    assert_send(&c.add_contact_from_invite(b""));
    assert_send(&c.refresh_contact(&id));
    assert_send(&c.send_text(&id, "x"));
    assert_send(&c.mark_read(&id));
    assert_send(&c.send_typing(&id, true));
    assert_send(&c.set_disappearing_timer(&id, 0));
    assert_send(&c.flush_outbox());
}

#[test]
fn client_is_send() {
    fn send<T: Send>() {}
    send::<Client>();
    send::<Incoming>();
}
