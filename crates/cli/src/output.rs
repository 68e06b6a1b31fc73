//! Human and JSON renderings of contacts and messages.

use serde_json::{Value, json};
use sotto_client::account_hex;
use sotto_store::{Contact, DeliveryState, Direction, Message, MessageRequest, Verification};

pub fn verification(v: Verification) -> &'static str {
    match v {
        Verification::Unverified => "unverified",
        Verification::Verified => "verified",
        Verification::Changed => "changed",
    }
}

fn request(r: MessageRequest) -> &'static str {
    match r {
        MessageRequest::Pending => "request",
        MessageRequest::Accepted => "accepted",
        MessageRequest::Declined => "declined",
    }
}

fn state(s: DeliveryState) -> &'static str {
    match s {
        DeliveryState::Pending => "queued",
        DeliveryState::Sent => "sent",
        DeliveryState::Delivered => "delivered",
        DeliveryState::Read => "read",
        DeliveryState::Failed => "failed",
    }
}

/// How a contact is named to the user.
pub fn name(c: &Contact) -> String {
    c.username
        .clone()
        .unwrap_or_else(|| account_hex(&c.account.0))
}

pub fn contact_json(c: &Contact) -> Value {
    json!({
        "type": "contact",
        "username": c.username,
        "id": account_hex(&c.account.0),
        "identity_key": hex(&c.identity_key),
        "verification": verification(c.verification),
        "blocked": c.blocked,
        "request": request(c.request),
    })
}

pub fn contact_line(c: &Contact) -> String {
    let mut flags = vec![verification(c.verification)];
    if c.request != MessageRequest::Accepted {
        flags.push(request(c.request));
    }
    if c.blocked {
        flags.push("blocked");
    }
    format!("{}  [{}]", name(c), flags.join(", "))
}

pub fn message_json(c: &Contact, m: &Message) -> Value {
    json!({
        "type": "message",
        "contact": name(c),
        "contact_id": account_hex(&c.account.0),
        "direction": if m.direction == Direction::Incoming { "in" } else { "out" },
        "id": m.client_id.map(|id| hex(&id)),
        "sent_at": m.sent_at,
        "state": state(m.state),
        "expire_timer": m.expire_timer_secs,
        "expires_at": m.expires_at,
        "text": m.body,
    })
}

pub fn message_line(c: &Contact, m: &Message) -> String {
    let arrow = if m.direction == Direction::Incoming {
        format!("{} >", name(c))
    } else {
        format!("> {} ({})", name(c), state(m.state))
    };
    let timer = if m.expire_timer_secs > 0 {
        format!(
            " [disappears {}]",
            sotto_client::privacy::format_duration_secs(m.expire_timer_secs)
        )
    } else {
        String::new()
    };
    format!("{arrow}{timer} {}", m.body)
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The safety number in 12 groups of 5 digits.
pub fn grouped(number: &str) -> String {
    number
        .as_bytes()
        .chunks(5)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
