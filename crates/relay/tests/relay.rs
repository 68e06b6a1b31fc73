//! End-to-end tests: a real `sotto-relay` process over real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test crate

mod common;

use std::time::Duration;

use common::*;
use sotto_relay_wire::{ErrorCode, Frame, MAX_FRAME_LEN, Push, Request, Response, auth_message};

fn code<T: std::fmt::Debug>(r: Result<T, sotto_relay_wire::ErrorResponse>) -> ErrorCode {
    r.expect_err("expected an error response").code
}

#[tokio::test]
async fn every_request_type_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path(), &[]).unwrap();
    let (alice, bob) = (key(1), key(2));

    let mut a = relay.connect().await.unwrap();
    a.barrier().await.unwrap();
    assert_eq!(
        code(
            a.request(Request::UsernameClaim {
                username: "alice".into(),
                pin_verifier: None
            })
            .await
            .unwrap()
        ),
        ErrorCode::AuthRequired
    );
    register_with_prekeys(&mut a, &alice, 1, 15).await.unwrap();
    assert_eq!(
        a.request(Request::PrekeyCount).await.unwrap().unwrap(),
        Response::PrekeyCount {
            one_time: 15,
            one_time_kem: 15
        }
    );
    a.request(Request::UsernameClaim {
        username: "alice".into(),
        pin_verifier: None,
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        code(
            a.request(Request::UsernameClaim {
                username: "Alice".into(),
                pin_verifier: None
            })
            .await
            .unwrap()
        ),
        ErrorCode::UsernameInvalid
    );
    a.request(Request::RegLockSet {
        pin_verifier: [5; 32],
    })
    .await
    .unwrap()
    .unwrap();
    a.request(Request::RegLockClear).await.unwrap().unwrap();

    // Bob, anonymously: lookup, bundle, sealed send.
    let mut anon = relay.connect().await.unwrap();
    let account = match anon
        .request(Request::UsernameLookup {
            username: "alice".into(),
        })
        .await
        .unwrap()
    {
        Ok(Response::Account { account }) => account,
        other => panic!("{other:?}"),
    };
    assert_eq!(account, address(&alice, 1).account);
    assert_eq!(
        code(
            anon.request(Request::UsernameLookup {
                username: "nobody".into()
            })
            .await
            .unwrap()
        ),
        ErrorCode::NotFound
    );
    let bundle = match anon
        .request(Request::FetchBundle {
            address: address(&alice, 1),
        })
        .await
        .unwrap()
    {
        Ok(Response::Bundle(b)) => b,
        other => panic!("{other:?}"),
    };
    assert_eq!(bundle.signed_prekey, prekey(1, 96));
    assert_eq!(bundle.one_time_prekey.unwrap().id, 100);
    let kem = bundle.kem_prekey.unwrap();
    assert_eq!((kem.prekey.id, kem.last_resort), (500, false));
    assert_eq!(
        code(
            anon.request(Request::FetchBundle {
                address: address(&bob, 1)
            })
            .await
            .unwrap()
        ),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(anon.send(address(&bob, 1), b"x").await.unwrap()),
        ErrorCode::UnknownRecipient
    );
    anon.send(address(&alice, 1), b"sealed hello")
        .await
        .unwrap()
        .unwrap();
    let d = a.next_envelope(WAIT).await.unwrap();
    assert_eq!(d.envelope, b"sealed hello");
    a.ack(d.message_id).await.unwrap();
    a.barrier().await.unwrap();

    // Change and release.
    let mut b = relay.connect().await.unwrap();
    b.authenticate(&bob, 7).await.unwrap();
    assert_eq!(
        code(
            b.request(Request::UsernameChange {
                username: "bobby".into()
            })
            .await
            .unwrap()
        ),
        ErrorCode::NoUsername
    );
    b.request(Request::UsernameClaim {
        username: "bob".into(),
        pin_verifier: None,
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        code(
            b.request(Request::UsernameClaim {
                username: "alice".into(),
                pin_verifier: None
            })
            .await
            .unwrap()
        ),
        ErrorCode::AlreadyHasUsername
    );
    assert_eq!(
        code(
            b.request(Request::UsernameChange {
                username: "alice".into()
            })
            .await
            .unwrap()
        ),
        ErrorCode::UsernameTaken
    );
    b.request(Request::UsernameChange {
        username: "bobby".into(),
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        code(
            anon.request(Request::UsernameLookup {
                username: "bob".into()
            })
            .await
            .unwrap()
        ),
        ErrorCode::NotFound
    );
    b.request(Request::UsernameRelease).await.unwrap().unwrap();
    assert_eq!(
        code(b.request(Request::UsernameRelease).await.unwrap()),
        ErrorCode::NoUsername
    );
    // Bob's new device registered: Alice can now write to it, authenticated or not.
    a.send(address(&bob, 7), b"to bob").await.unwrap().unwrap();
    assert_eq!(b.next_envelope(WAIT).await.unwrap().envelope, b"to bob");
    // Too many one-time prekeys.
    for batch in 0..5 {
        let keys = (0..100)
            .map(|i| prekey(10_000 + batch * 100 + i, 32))
            .collect();
        b.request(Request::UploadOneTimePrekeys(keys))
            .await
            .unwrap()
            .unwrap();
    }
    let more = (0..100).map(|i| prekey(i + 20_000, 32)).collect::<Vec<_>>();
    let err = b
        .request(Request::UploadOneTimePrekeys(more))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!((err.code, err.detail), (ErrorCode::TooManyPrekeys, 500));
}

#[tokio::test]
async fn malformed_frames_get_typed_errors_and_everyone_keeps_being_served() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path(), &[]).unwrap();
    let bob = key(3);
    let mut b = relay.connect().await.unwrap();
    b.authenticate(&bob, 1).await.unwrap();
    b.drain_backlog().await.unwrap();
    let mut c = relay.connect().await.unwrap();

    let ping = Frame::Request {
        id: 77,
        request: Request::Ping,
    }
    .encode()
    .unwrap();
    // Unknown version: error echoes id and op.
    let mut bad = ping.clone();
    bad[0] = 9;
    c.send_raw(bad).await.unwrap();
    let (op, r) = c.response_to(77).await.unwrap();
    assert_eq!(op, 2);
    assert_eq!(code(r), ErrorCode::UnsupportedVersion);
    // Unknown op.
    let mut bad = ping.clone();
    bad[10..12].copy_from_slice(&0x7777u16.to_be_bytes());
    c.send_raw(bad).await.unwrap();
    let (op, r) = c.response_to(77).await.unwrap();
    assert_eq!((op, code(r)), (0x7777, ErrorCode::UnknownOp));
    // Trailing bytes.
    let mut bad = ping.clone();
    bad.push(0);
    c.send_raw(bad).await.unwrap();
    assert_eq!(
        code(c.response_to(77).await.unwrap().1),
        ErrorCode::Malformed
    );
    // Truncated send envelope, huge length prefix.
    let mut bad = Frame::Request {
        id: 78,
        request: Request::SendEnvelope {
            recipient: address(&bob, 1),
            envelope: vec![1; 4],
        },
    }
    .encode()
    .unwrap();
    let at = bad.len() - 8;
    bad[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    c.send_raw(bad).await.unwrap();
    assert_eq!(
        code(c.response_to(78).await.unwrap().1),
        ErrorCode::Malformed
    );
    // Too short for a header.
    c.send_raw(vec![1, 0, 0]).await.unwrap();
    assert_eq!(
        code(c.response_to(0).await.unwrap().1),
        ErrorCode::Malformed
    );
    // A client may not send pushes.
    c.send_raw(Frame::Push(Push::QueueDrained).encode().unwrap())
        .await
        .unwrap();
    assert_eq!(
        code(c.response_to(0).await.unwrap().1),
        ErrorCode::Malformed
    );
    // Text messages.
    c.send_text("hello").await.unwrap();
    assert_eq!(
        code(c.response_to(0).await.unwrap().1),
        ErrorCode::Malformed
    );
    // The same connection still works, and so does everyone else.
    c.barrier().await.unwrap();
    c.send(address(&bob, 1), b"still here")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.next_envelope(WAIT).await.unwrap().envelope, b"still here");
}

#[tokio::test]
async fn oversized_envelopes_and_frames_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path(), &["--max-envelope-bytes", "1000"]).unwrap();
    let bob = key(4);
    let mut b = relay.connect().await.unwrap();
    b.authenticate(&bob, 1).await.unwrap();
    let mut c = relay.connect().await.unwrap();
    let err = c
        .send(address(&bob, 1), &[0; 1001])
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!((err.code, err.detail), (ErrorCode::EnvelopeTooLarge, 1000));
    assert_eq!(
        code(c.send(address(&bob, 1), &[]).await.unwrap()),
        ErrorCode::EnvelopeTooLarge
    );
    c.send(address(&bob, 1), &[0; 1000]).await.unwrap().unwrap();
    // A WebSocket message above the frame limit closes that connection only.
    let mut big = relay.connect().await.unwrap();
    let _ = big.send_raw(vec![1; MAX_FRAME_LEN + 10]).await;
    assert!(
        big.read_frame(WAIT).await.is_err(),
        "oversized frame must close the connection"
    );
    c.barrier().await.unwrap();
    assert_eq!(b.next_envelope(WAIT).await.unwrap().envelope.len(), 1000);
    relay.connect().await.unwrap().barrier().await.unwrap();
}

#[tokio::test]
async fn bad_signatures_and_replayed_challenges_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path(), &[]).unwrap();
    let k = key(5);
    // Signature by another key.
    let mut c = relay.connect().await.unwrap();
    let mut req = c.auth_request(&key(6), 1);
    if let Request::Authenticate { identity_key, .. } = &mut req {
        *identity_key = k.verifying_key().to_bytes();
    }
    assert_eq!(code(c.request(req).await.unwrap()), ErrorCode::BadSignature);
    // The challenge is spent now, even for a correct signature.
    let good = c.auth_request(&k, 1);
    assert_eq!(
        code(c.request(good.clone()).await.unwrap()),
        ErrorCode::ChallengeUsed
    );
    assert_eq!(
        code(c.request(Request::RegLockClear).await.unwrap()),
        ErrorCode::AuthRequired
    );
    // Replaying that signature on another connection (other challenge) fails.
    let mut d = relay.connect().await.unwrap();
    assert_ne!(c.challenge, d.challenge);
    assert_eq!(
        code(d.request(good).await.unwrap()),
        ErrorCode::BadSignature
    );
    // Wrong relay host.
    let mut e = relay.connect().await.unwrap();
    use ed25519_dalek::Signer;
    let sig = k.sign(&auth_message(&e.challenge, "evil.example:443"));
    let req = Request::Authenticate {
        identity_key: k.verifying_key().to_bytes(),
        device_id: 1,
        relay_host: "evil.example:443".into(),
        signature: sig.to_bytes(),
    };
    assert_eq!(
        code(e.request(req).await.unwrap()),
        ErrorCode::WrongRelayHost
    );
    // A good one works once; a second attempt is refused.
    let mut f = relay.connect().await.unwrap();
    let good = f.auth_request(&k, 1);
    f.request(good.clone()).await.unwrap().unwrap();
    assert_eq!(
        code(f.request(good).await.unwrap()),
        ErrorCode::AlreadyAuthenticated
    );
}

#[tokio::test]
async fn expired_challenges_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path(), &["--challenge-ttl-secs", "1"]).unwrap();
    let mut c = relay.connect().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let req = c.auth_request(&key(7), 1);
    assert_eq!(
        code(c.request(req).await.unwrap()),
        ErrorCode::ChallengeExpired
    );
    let mut d = relay.connect().await.unwrap();
    d.authenticate(&key(7), 1).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_bundle_fetches_hand_out_each_one_time_prekey_once() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path(), &["--bundle-per-minute", "10000"]).unwrap();
    let owner = key(8);
    let mut o = relay.connect().await.unwrap();
    register_with_prekeys(&mut o, &owner, 1, 30).await.unwrap();
    o.drain_backlog().await.unwrap();
    let target = address(&owner, 1);
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let addr = relay.addr.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(&addr).await.unwrap();
            let mut got = Vec::new();
            for _ in 0..5 {
                match c
                    .request(Request::FetchBundle { address: target })
                    .await
                    .unwrap()
                {
                    Ok(Response::Bundle(b)) => {
                        got.push((b.one_time_prekey.map(|k| k.id), b.kem_prekey.unwrap()))
                    }
                    other => panic!("{other:?}"),
                }
            }
            got
        }));
    }
    let mut x25519 = Vec::new();
    let mut kem = Vec::new();
    let mut last_resort = 0;
    for t in tasks {
        for (one_time, k) in t.await.unwrap() {
            x25519.extend(one_time);
            if k.last_resort {
                last_resort += 1;
            } else {
                kem.push(k.prekey.id);
            }
        }
    }
    x25519.sort_unstable();
    kem.sort_unstable();
    assert_eq!(x25519, (100..130).collect::<Vec<u32>>());
    assert_eq!(kem, (500..520).collect::<Vec<u32>>());
    assert_eq!(last_resort, 30);
    // The owner heard that stock runs low.
    loop {
        if let Push::PrekeysLow { one_time, .. } = o.next_push(WAIT).await.unwrap() {
            assert!(one_time < 10);
            break;
        }
    }
}

#[tokio::test]
async fn delivery_online_offline_ack_and_redelivery() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path(), &[]).unwrap();
    let bob = key(9);
    let mut b = relay.connect().await.unwrap();
    b.authenticate(&bob, 1).await.unwrap();
    assert!(b.drain_backlog().await.unwrap().is_empty());
    let mut s = relay.connect().await.unwrap();
    // Online: pushed right away.
    s.send(address(&bob, 1), b"m1").await.unwrap().unwrap();
    let m1 = b.next_envelope(WAIT).await.unwrap();
    assert_eq!(m1.envelope, b"m1");
    drop(b);
    // Offline: queued.
    s.send(address(&bob, 1), b"m2").await.unwrap().unwrap();
    s.send(address(&bob, 1), b"m3").await.unwrap().unwrap();
    let mut b = relay.connect().await.unwrap();
    b.authenticate(&bob, 1).await.unwrap();
    let backlog = b.drain_backlog().await.unwrap();
    // m1 was never acked: redelivered, same id.
    let bodies: Vec<_> = backlog.iter().map(|d| d.envelope.clone()).collect();
    assert_eq!(bodies, vec![b"m1".to_vec(), b"m2".to_vec(), b"m3".to_vec()]);
    assert_eq!(backlog[0].message_id, m1.message_id);
    b.ack(backlog[0].message_id).await.unwrap();
    b.ack(backlog[2].message_id).await.unwrap();
    b.barrier().await.unwrap();
    drop(b);
    let mut b = relay.connect().await.unwrap();
    b.authenticate(&bob, 1).await.unwrap();
    let backlog = b.drain_backlog().await.unwrap();
    assert_eq!(backlog.len(), 1);
    assert_eq!(backlog[0].envelope, b"m2");
    // A second device of the same account has its own mailbox.
    let mut b2 = relay.connect().await.unwrap();
    b2.authenticate(&bob, 2).await.unwrap();
    assert!(b2.drain_backlog().await.unwrap().is_empty());
    // Acks for someone else's mailbox do nothing.
    b2.ack(backlog[0].message_id).await.unwrap();
    b2.barrier().await.unwrap();
    drop(b);
    let mut b = relay.connect().await.unwrap();
    b.authenticate(&bob, 1).await.unwrap();
    assert_eq!(b.drain_backlog().await.unwrap().len(), 1);
}

#[tokio::test]
async fn nothing_accepted_is_lost_across_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Relay::start(dir.path(), &[]).unwrap();
    let bob = key(10);
    let mut b = relay.connect().await.unwrap();
    b.authenticate(&bob, 1).await.unwrap();
    drop(b);
    let mut s = relay.connect().await.unwrap();
    for i in 0..150u32 {
        s.send(address(&bob, 1), &i.to_be_bytes())
            .await
            .unwrap()
            .unwrap();
    }
    drop(s);
    relay.kill_and_restart().unwrap();
    let mut b = relay.connect().await.unwrap();
    b.authenticate(&bob, 1).await.unwrap();
    let backlog = b.drain_backlog().await.unwrap();
    let got: Vec<u32> = backlog
        .iter()
        .map(|d| u32::from_be_bytes(d.envelope[..4].try_into().unwrap()))
        .collect();
    assert_eq!(got, (0..150).collect::<Vec<_>>());
    for d in &backlog[..25] {
        b.ack(d.message_id).await.unwrap();
    }
    b.barrier().await.unwrap();
    relay.kill_and_restart().unwrap();
    let mut b = relay.connect().await.unwrap();
    b.authenticate(&bob, 1).await.unwrap();
    let again = b.drain_backlog().await.unwrap();
    assert_eq!(
        again.iter().map(|d| d.message_id).collect::<Vec<_>>(),
        backlog[25..]
            .iter()
            .map(|d| d.message_id)
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn registration_lock_blocks_other_identities_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Relay::start(dir.path(), &[]).unwrap();
    let (owner, thief) = (key(11), key(12));
    let mut o = relay.connect().await.unwrap();
    o.authenticate(&owner, 1).await.unwrap();
    o.request(Request::UsernameClaim {
        username: "erin".into(),
        pin_verifier: None,
    })
    .await
    .unwrap()
    .unwrap();
    o.request(Request::RegLockSet {
        pin_verifier: [42; 32],
    })
    .await
    .unwrap()
    .unwrap();
    drop(o);
    let mut t = relay.connect().await.unwrap();
    t.authenticate(&thief, 1).await.unwrap();
    let claim = |pin| Request::UsernameClaim {
        username: "erin".into(),
        pin_verifier: pin,
    };
    assert_eq!(
        code(t.request(claim(None)).await.unwrap()),
        ErrorCode::PinRequired
    );
    for left in [9, 8, 7] {
        let e = t.request(claim(Some([1; 32]))).await.unwrap().unwrap_err();
        assert_eq!((e.code, e.detail), (ErrorCode::PinIncorrect, left));
    }
    relay.kill_and_restart().unwrap();
    let mut t = relay.connect().await.unwrap();
    t.authenticate(&thief, 1).await.unwrap();
    let e = t.request(claim(Some([1; 32]))).await.unwrap().unwrap_err();
    assert_eq!(
        (e.code, e.detail),
        (ErrorCode::PinIncorrect, 6),
        "counter persisted"
    );
    let e = t.request(claim(Some([42; 32]))).await.unwrap().unwrap_err();
    assert_eq!(
        e.code,
        ErrorCode::PinLocked,
        "backoff after the fourth failure"
    );
    assert!(e.detail > 0 && e.detail <= 2000);
    let mut anon = relay.connect().await.unwrap();
    assert_eq!(
        anon.request(Request::UsernameLookup {
            username: "erin".into()
        })
        .await
        .unwrap()
        .unwrap(),
        Response::Account {
            account: address(&owner, 1).account
        }
    );
    // After the backoff the right PIN moves the username to the new identity.
    tokio::time::sleep(Duration::from_millis(e.detail + 100)).await;
    t.request(claim(Some([42; 32]))).await.unwrap().unwrap();
    assert_eq!(
        anon.request(Request::UsernameLookup {
            username: "erin".into()
        })
        .await
        .unwrap()
        .unwrap(),
        Response::Account {
            account: address(&thief, 1).account
        }
    );
}

#[tokio::test]
async fn mailbox_cap_gives_the_sender_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path(), &["--mailbox-cap", "3"]).unwrap();
    let bob = key(13);
    relay
        .connect()
        .await
        .unwrap()
        .authenticate(&bob, 1)
        .await
        .unwrap();
    let mut s = relay.connect().await.unwrap();
    for _ in 0..3 {
        s.send(address(&bob, 1), b"x").await.unwrap().unwrap();
    }
    let e = s.send(address(&bob, 1), b"x").await.unwrap().unwrap_err();
    assert_eq!((e.code, e.detail), (ErrorCode::MailboxFull, 3));
}

#[tokio::test]
async fn rate_limits_answer_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(
        dir.path(),
        &["--lookup-per-minute", "2", "--auth-per-minute", "1"],
    )
    .unwrap();
    let mut c = relay.connect().await.unwrap();
    for _ in 0..2 {
        assert_eq!(
            code(
                c.request(Request::UsernameLookup {
                    username: "zed".into()
                })
                .await
                .unwrap()
            ),
            ErrorCode::NotFound
        );
    }
    let e = c
        .request(Request::UsernameLookup {
            username: "zed".into(),
        })
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::RateLimited);
    assert!(e.detail > 0);
    // Per IP: a new connection does not reset it.
    let mut d = relay.connect().await.unwrap();
    assert_eq!(
        code(
            d.request(Request::UsernameLookup {
                username: "zed".into()
            })
            .await
            .unwrap()
        ),
        ErrorCode::RateLimited
    );
    // Authentication attempts are limited per IP too.
    d.authenticate(&key(15), 1).await.unwrap();
    let mut e = relay.connect().await.unwrap();
    let req = e.auth_request(&key(16), 1);
    assert_eq!(code(e.request(req).await.unwrap()), ErrorCode::RateLimited);
}

#[tokio::test]
async fn health_and_metrics_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path(), &[]).unwrap();
    let mut c = relay.connect().await.unwrap();
    c.barrier().await.unwrap();
    let health = relay.http_get("/health").await.unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with("ok\n"));
    let metrics = relay.http_get("/metrics").await.unwrap();
    assert!(
        metrics.contains("sotto_relay_connections_open 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sotto_relay_frames_in_total 1"),
        "{metrics}"
    );
}

#[test]
fn help_documents_every_option() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sotto-relay"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for opt in [
        "--listen",
        "--data-dir",
        "--database-url",
        "--tls-cert",
        "--tls-key",
        "--insecure-allow-plain-ws-non-loopback",
        "--public-host",
        "--message-ttl-days",
        "--mailbox-cap",
        "--reglock-lapse-days",
        "--idle-timeout-secs",
        "--log-client-ips",
    ] {
        assert!(help.contains(opt), "{opt} missing from --help");
    }
}

#[test]
fn plain_ws_on_non_loopback_needs_the_explicit_flag() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sotto-relay"))
        .args(["--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("insecure-allow-plain-ws-non-loopback"));
}

#[test]
fn without_arguments_it_uses_the_platform_data_folder() {
    use std::io::BufRead;
    let home = tempfile::tempdir().unwrap();
    // Only the port is overridden (through the environment) so the test never collides
    // with a relay already on 7447.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sotto-relay"))
        .env("XDG_DATA_HOME", home.path())
        .env("HOME", home.path())
        .env("SOTTO_RELAY_LISTEN", "127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        line.starts_with("sotto-relay listening on ws://127.0.0.1:"),
        "{line}"
    );
    assert!(
        home.path()
            .join("sotto-relay")
            .join("relay.sqlite3")
            .exists()
    );
}

#[tokio::test]
async fn connection_limits_and_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(
        dir.path(),
        &["--max-connections-per-ip", "2", "--idle-timeout-secs", "1"],
    )
    .unwrap();
    let mut a = relay.connect().await.unwrap();
    let mut b = relay.connect().await.unwrap();
    assert!(
        relay.connect().await.is_err(),
        "third connection from one IP is refused"
    );
    // Frames keep a connection alive; silence closes it.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        a.barrier().await.unwrap();
    }
    assert!(
        b.read_frame(Duration::from_secs(3)).await.is_err(),
        "idle connection closed"
    );
    assert!(
        a.read_frame(Duration::from_secs(3)).await.is_err(),
        "idle connection closed"
    );
    // Their slots are free again.
    relay.connect().await.unwrap().barrier().await.unwrap();
}

#[tokio::test]
async fn toml_config_file_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    std::fs::write(&file, "mailbox_cap = 1\nmax_envelope_bytes = 64\n").unwrap();
    let relay = Relay::start(
        &dir.path().join("data"),
        &["--config", file.to_str().unwrap()],
    )
    .unwrap();
    let bob = key(14);
    relay
        .connect()
        .await
        .unwrap()
        .authenticate(&bob, 1)
        .await
        .unwrap();
    let mut s = relay.connect().await.unwrap();
    assert_eq!(
        code(s.send(address(&bob, 1), &[0; 65]).await.unwrap()),
        ErrorCode::EnvelopeTooLarge
    );
    s.send(address(&bob, 1), b"one").await.unwrap().unwrap();
    let e = s.send(address(&bob, 1), b"two").await.unwrap().unwrap_err();
    assert_eq!((e.code, e.detail), (ErrorCode::MailboxFull, 1));
}

/// Reads frames until the relay closes the connection; false if it stays open for `WAIT`.
async fn closed_by_relay(c: &mut Client) -> bool {
    loop {
        match c.read_frame(WAIT).await {
            Ok(_) => {}
            Err(e) => return e.to_string().contains("closed"),
        }
    }
}

#[tokio::test]
async fn delete_account_removes_everything_and_closes_its_connections() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path(), &[]).unwrap();
    let (dora, bob, eve) = (key(61), key(62), key(63));

    let mut anon = relay.connect().await.unwrap();
    assert_eq!(
        code(anon.request(Request::DeleteAccount).await.unwrap()),
        ErrorCode::AuthRequired
    );

    // Dora: two devices with prekeys, a locked username and queued envelopes.
    let mut d1 = relay.connect().await.unwrap();
    register_with_prekeys(&mut d1, &dora, 1, 5).await.unwrap();
    d1.request(Request::UsernameClaim {
        username: "dora".into(),
        pin_verifier: None,
    })
    .await
    .unwrap()
    .unwrap();
    d1.request(Request::RegLockSet {
        pin_verifier: [5; 32],
    })
    .await
    .unwrap()
    .unwrap();
    let mut d2 = relay.connect().await.unwrap();
    register_with_prekeys(&mut d2, &dora, 2, 5).await.unwrap();
    // Bob, whose data must survive.
    let mut b = relay.connect().await.unwrap();
    register_with_prekeys(&mut b, &bob, 1, 5).await.unwrap();
    b.request(Request::UsernameClaim {
        username: "bobby".into(),
        pin_verifier: None,
    })
    .await
    .unwrap()
    .unwrap();
    for device in [1, 2] {
        anon.send(address(&dora, device), b"for dora")
            .await
            .unwrap()
            .unwrap();
    }
    anon.send(address(&bob, 1), b"for bob")
        .await
        .unwrap()
        .unwrap();

    assert_eq!(
        d1.request(Request::DeleteAccount).await.unwrap().unwrap(),
        Response::Ok
    );
    // The relay closes every connection of the account, including the other device's.
    assert!(closed_by_relay(&mut d1).await);
    assert!(closed_by_relay(&mut d2).await);
    b.barrier().await.unwrap();

    // Nothing is left: username, bundles (prekeys), registration as a recipient.
    let mut anon = relay.connect().await.unwrap();
    assert_eq!(
        code(
            anon.request(Request::UsernameLookup {
                username: "dora".into()
            })
            .await
            .unwrap()
        ),
        ErrorCode::NotFound
    );
    for device in [1, 2] {
        assert_eq!(
            code(
                anon.request(Request::FetchBundle {
                    address: address(&dora, device)
                })
                .await
                .unwrap()
            ),
            ErrorCode::NotFound
        );
        assert_eq!(
            code(anon.send(address(&dora, device), b"late").await.unwrap()),
            ErrorCode::UnknownRecipient
        );
    }
    // The locked username is reserved (docs/RELAY_DATA.md): not even the old PIN opens it.
    let mut e = relay.connect().await.unwrap();
    e.authenticate(&eve, 1).await.unwrap();
    for pin_verifier in [None, Some([5; 32])] {
        assert_eq!(
            code(
                e.request(Request::UsernameClaim {
                    username: "dora".into(),
                    pin_verifier,
                })
                .await
                .unwrap()
            ),
            ErrorCode::UsernameTaken
        );
    }
    // The same identity key can authenticate again, as a new, empty account: no queued
    // envelopes, no prekeys, no username.
    let mut d3 = relay.connect().await.unwrap();
    d3.authenticate(&dora, 1).await.unwrap();
    assert!(d3.drain_backlog().await.unwrap().is_empty());
    assert_eq!(
        d3.request(Request::PrekeyCount).await.unwrap().unwrap(),
        Response::PrekeyCount {
            one_time: 0,
            one_time_kem: 0
        }
    );
    assert_eq!(
        code(d3.request(Request::UsernameRelease).await.unwrap()),
        ErrorCode::NoUsername
    );

    // Bob is untouched.
    assert_eq!(
        anon.request(Request::UsernameLookup {
            username: "bobby".into()
        })
        .await
        .unwrap()
        .unwrap(),
        Response::Account {
            account: address(&bob, 1).account
        }
    );
    assert!(matches!(
        anon.request(Request::FetchBundle {
            address: address(&bob, 1)
        })
        .await
        .unwrap()
        .unwrap(),
        Response::Bundle(_)
    ));
    let mut b2 = relay.connect().await.unwrap();
    b2.authenticate(&bob, 1).await.unwrap();
    let backlog = b2.drain_backlog().await.unwrap();
    assert_eq!(backlog.len(), 1);
    assert_eq!(backlog[0].envelope, b"for bob");
    let health = relay.http_get("/health").await.unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
}

/// Envelopes for a connected recipient are pushed from memory after their commit; when it
/// falls behind (more than its event queue and unacknowledged memory pushes hold), it reads
/// its mailbox instead. Either way: every envelope once, in message-id order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipient_that_falls_behind_gets_everything_once_in_order() {
    const SENDERS: usize = 3;
    const EACH: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(
        dir.path(),
        &[
            "--send-per-minute",
            "100000",
            "--frames-per-second",
            "100000",
        ],
    )
    .unwrap();
    let bob = key(40);
    let mut b = relay.connect().await.unwrap();
    b.authenticate(&bob, 1).await.unwrap();
    assert!(b.drain_backlog().await.unwrap().is_empty());
    // Bob reads nothing while the senders send.
    let mut tasks = Vec::new();
    for s in 0..SENDERS {
        let mut c = relay.connect().await.unwrap();
        tasks.push(tokio::spawn(async move {
            for i in 0..EACH {
                let body = format!("{s}-{i}");
                c.send(address(&key(40), 1), body.as_bytes())
                    .await
                    .unwrap()
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut got = Vec::new();
    while got.len() < SENDERS * EACH {
        let d = b.next_envelope(WAIT).await.unwrap();
        // Half are acknowledged while the rest are still arriving.
        if got.len() % 2 == 0 {
            b.ack(d.message_id).await.unwrap();
        }
        got.push(d);
    }
    assert!(got.windows(2).all(|w| w[0].message_id < w[1].message_id));
    let mut bodies: Vec<Vec<u8>> = got.iter().map(|d| d.envelope.clone()).collect();
    bodies.sort();
    let mut sent: Vec<Vec<u8>> = (0..SENDERS)
        .flat_map(|s| (0..EACH).map(move |i| format!("{s}-{i}").into_bytes()))
        .collect();
    sent.sort();
    assert_eq!(bodies, sent);
    // Each sender's envelopes arrived in the order sent.
    for s in 0..SENDERS {
        let prefix = format!("{s}-");
        let order: Vec<usize> = got
            .iter()
            .filter_map(|d| {
                std::str::from_utf8(&d.envelope)
                    .unwrap()
                    .strip_prefix(&prefix)
                    .map(|i| i.parse().unwrap())
            })
            .collect();
        assert_eq!(order, (0..EACH).collect::<Vec<_>>());
    }
    b.barrier().await.unwrap();
    assert!(b.no_envelope_within(Duration::from_millis(300)).await);
    drop(b);
    // The unacknowledged half is pushed again on the next connection, nothing else.
    let mut b = relay.connect().await.unwrap();
    b.authenticate(&bob, 1).await.unwrap();
    let backlog = b.drain_backlog().await.unwrap();
    let unacked: Vec<u64> = got
        .iter()
        .skip(1)
        .step_by(2)
        .map(|d| d.message_id)
        .collect();
    assert_eq!(
        backlog.iter().map(|d| d.message_id).collect::<Vec<_>>(),
        unacked
    );
}
