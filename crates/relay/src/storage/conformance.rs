//! Backend-independent storage tests, run against every backend.

use std::sync::Arc;

use sotto_relay_wire::{Address, Prekey};

use super::*;

const DAY: u64 = 24 * 60 * 60 * 1000;
const T0: u64 = 1_800_000_000_000;

pub(crate) fn policy() -> Policy {
    Policy {
        username_release_ms: 30 * DAY,
        reglock_lapse_ms: 90 * DAY,
        pin_attempts_per_day: 10,
        max_prekeys: 100,
        mailbox_cap: 5,
        message_ttl_ms: 30 * DAY,
    }
}

fn addr(n: u8, device: u32) -> Address {
    Address {
        account: [n; 32],
        device,
    }
}

fn key(id: u32) -> Prekey {
    Prekey {
        id,
        bytes: vec![id as u8; 33],
    }
}

pub(crate) async fn usernames<S: Storage>(s: &S) {
    let (a, b) = (addr(1, 1), addr(2, 1));
    s.touch_device(a, T0).await.unwrap();
    s.touch_device(b, T0).await.unwrap();
    assert_eq!(s.lookup_username("alice".into()).await.unwrap(), None);
    s.claim_username(a.account, "alice".into(), None, T0)
        .await
        .unwrap();
    // Idempotent for the owner.
    s.claim_username(a.account, "alice".into(), None, T0)
        .await
        .unwrap();
    assert_eq!(
        s.lookup_username("alice".into()).await.unwrap(),
        Some(a.account)
    );
    assert!(matches!(
        s.claim_username(b.account, "alice".into(), None, T0).await,
        Err(ClaimError::Taken)
    ));
    assert!(matches!(
        s.claim_username(a.account, "alice2".into(), None, T0).await,
        Err(ClaimError::AlreadyHasUsername)
    ));
    s.claim_username(b.account, "bob".into(), None, T0)
        .await
        .unwrap();
    assert!(matches!(
        s.change_username(a.account, "bob".into(), T0).await,
        Err(ChangeError::Taken)
    ));
    s.change_username(a.account, "alicia".into(), T0)
        .await
        .unwrap();
    assert_eq!(s.lookup_username("alice".into()).await.unwrap(), None);
    assert_eq!(
        s.lookup_username("alicia".into()).await.unwrap(),
        Some(a.account)
    );
    s.release_username(a.account).await.unwrap();
    assert!(matches!(
        s.release_username(a.account).await,
        Err(ReleaseError::NoUsername)
    ));
    assert!(matches!(
        s.change_username(a.account, "x_y".into(), T0).await,
        Err(ChangeError::NoUsername)
    ));
    // An unlocked username of an account inactive for the release period is free.
    let later = T0 + 30 * DAY;
    s.touch_device(a, later).await.unwrap();
    s.claim_username(a.account, "bob".into(), None, later)
        .await
        .unwrap();
    assert_eq!(
        s.lookup_username("bob".into()).await.unwrap(),
        Some(a.account)
    );
}

pub(crate) async fn registration_lock<S: Storage>(s: &S) {
    let (owner, thief) = (addr(3, 1), addr(4, 1));
    s.touch_device(owner, T0).await.unwrap();
    s.claim_username(owner.account, "carol".into(), None, T0)
        .await
        .unwrap();
    s.set_reglock(owner.account, [7; 32]).await.unwrap();
    assert!(matches!(
        s.claim_username(thief.account, "carol".into(), None, T0)
            .await,
        Err(ClaimError::PinRequired)
    ));
    let mut now = T0;
    for expected_left in (7..10).rev() {
        match s
            .claim_username(thief.account, "carol".into(), Some([1; 32]), now)
            .await
        {
            Err(ClaimError::PinIncorrect { remaining }) => assert_eq!(remaining, expected_left),
            other => panic!("unexpected {other:?}"),
        }
    }
    // Fourth failure starts a backoff.
    assert!(matches!(
        s.claim_username(thief.account, "carol".into(), Some([1; 32]), now)
            .await,
        Err(ClaimError::PinIncorrect { remaining: 6 })
    ));
    assert!(matches!(
        s.claim_username(thief.account, "carol".into(), Some([1; 32]), now)
            .await,
        Err(ClaimError::PinLocked {
            retry_after_ms: 2000
        })
    ));
    for _ in 0..6 {
        now += 3_600_000;
        assert!(matches!(
            s.claim_username(thief.account, "carol".into(), Some([1; 32]), now)
                .await,
            Err(ClaimError::PinIncorrect { .. })
        ));
    }
    now += 3_600_000;
    // Ten failures in the day: even the right PIN is refused until the window ends.
    assert!(matches!(
        s.claim_username(thief.account, "carol".into(), Some([7; 32]), now)
            .await,
        Err(ClaimError::PinLocked { .. })
    ));
    assert_eq!(
        s.lookup_username("carol".into()).await.unwrap(),
        Some(owner.account)
    );
    // A new day: the right PIN transfers the username and removes the old lock.
    now = T0 + DAY + 1;
    s.touch_device(thief, now).await.unwrap();
    s.claim_username(thief.account, "carol".into(), Some([7; 32]), now)
        .await
        .unwrap();
    assert_eq!(
        s.lookup_username("carol".into()).await.unwrap(),
        Some(thief.account)
    );

    // Lapse: a locked username whose owner is inactive past the lapse period is free.
    let other = addr(5, 1);
    s.set_reglock(thief.account, [9; 32]).await.unwrap();
    assert!(matches!(
        s.claim_username(other.account, "carol".into(), None, now + 89 * DAY)
            .await,
        Err(ClaimError::PinRequired)
    ));
    s.claim_username(other.account, "carol".into(), None, now + 90 * DAY)
        .await
        .unwrap();

    // Clearing the lock makes it a plain username again.
    s.touch_device(other, now + 90 * DAY).await.unwrap();
    s.set_reglock(other.account, [1; 32]).await.unwrap();
    s.clear_reglock(other.account).await.unwrap();
    assert!(matches!(
        s.claim_username(owner.account, "carol".into(), Some([1; 32]), now + 90 * DAY)
            .await,
        Err(ClaimError::Taken)
    ));
}

pub(crate) async fn prekeys<S: Storage>(s: &S) {
    let a = addr(6, 2);
    s.touch_device(a, T0).await.unwrap();
    assert!(matches!(
        s.fetch_bundle(a).await,
        Err(BundleError::NotFound)
    ));
    s.put_signed_prekey(a, key(1)).await.unwrap();
    let (b, left) = s.fetch_bundle(a).await.unwrap();
    assert_eq!(b.signed_prekey, key(1));
    assert!(b.one_time_prekey.is_none() && b.kem_prekey.is_none());
    assert_eq!(left, PrekeyCounts::default());
    s.put_last_resort_kem(a, key(50)).await.unwrap();
    let c = s
        .add_one_time_prekeys(a, OneTimeKind::X25519, vec![key(10), key(11)])
        .await
        .unwrap();
    assert_eq!(c.one_time, 2);
    let c = s
        .add_one_time_prekeys(a, OneTimeKind::Kem, vec![key(20)])
        .await
        .unwrap();
    assert_eq!(
        c,
        PrekeyCounts {
            one_time: 2,
            one_time_kem: 1
        }
    );
    let (b, left) = s.fetch_bundle(a).await.unwrap();
    assert_eq!(b.one_time_prekey, Some(key(10)));
    let kem = b.kem_prekey.unwrap();
    assert_eq!((kem.prekey, kem.last_resort), (key(20), false));
    assert_eq!(
        left,
        PrekeyCounts {
            one_time: 1,
            one_time_kem: 0
        }
    );
    let (b, _) = s.fetch_bundle(a).await.unwrap();
    assert_eq!(b.one_time_prekey, Some(key(11)));
    let kem = b.kem_prekey.unwrap();
    assert_eq!((kem.prekey, kem.last_resort), (key(50), true));
    let (b, _) = s.fetch_bundle(a).await.unwrap();
    assert_eq!(b.one_time_prekey, None);
    // Replacing the signed prekey.
    s.put_signed_prekey(a, key(2)).await.unwrap();
    assert_eq!(s.fetch_bundle(a).await.unwrap().0.signed_prekey, key(2));
    // The cap.
    let many: Vec<Prekey> = (100..201).map(key).collect();
    assert!(matches!(
        s.add_one_time_prekeys(a, OneTimeKind::X25519, many).await,
        Err(UploadError::TooMany { cap: 100 })
    ));
    assert_eq!(s.prekey_counts(a).await.unwrap().one_time, 0);
}

pub(crate) async fn concurrent_bundles<S: Storage>(s: Arc<S>) {
    let a = addr(7, 1);
    s.touch_device(a, T0).await.unwrap();
    s.put_signed_prekey(a, key(1)).await.unwrap();
    s.add_one_time_prekeys(a, OneTimeKind::X25519, (1..=40).map(key).collect())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.fetch_bundle(a).await.unwrap().0.one_time_prekey
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        if let Some(k) = t.await.unwrap() {
            ids.push(k.id);
        }
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..=40).collect::<Vec<u32>>());
}

pub(crate) async fn mailboxes<S: Storage>(s: &S) {
    let (a, b) = (addr(8, 1), addr(8, 2));
    assert!(matches!(
        s.enqueue(a, vec![1], T0).await,
        Err(EnqueueError::UnknownRecipient)
    ));
    s.touch_device(a, T0).await.unwrap();
    s.touch_device(b, T0).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..5u8 {
        ids.push(s.enqueue(a, vec![i; 10], T0 + u64::from(i)).await.unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert!(matches!(
        s.enqueue(a, vec![9], T0).await,
        Err(EnqueueError::MailboxFull { cap: 5 })
    ));
    // Other device's mailbox is separate.
    let other = s.enqueue(b, vec![42], T0).await.unwrap();
    let got = s.pending(a, 0, 3, T0).await.unwrap();
    assert_eq!(
        got.iter().map(|d| d.message_id).collect::<Vec<_>>(),
        ids[..3]
    );
    assert_eq!(got[1].envelope, vec![1; 10]);
    assert_eq!(got[1].received_at_ms, T0 + 1);
    let rest = s.pending(a, ids[2], 10, T0).await.unwrap();
    assert_eq!(rest.len(), 2);
    // Ack deletes only the recipient's own messages.
    assert!(!s.ack(b, ids[0]).await.unwrap());
    assert!(s.ack(a, ids[0]).await.unwrap());
    assert!(!s.ack(a, ids[0]).await.unwrap());
    assert_eq!(s.pending(a, 0, 10, T0).await.unwrap().len(), 4);
    s.enqueue(a, vec![5], T0 + 10).await.unwrap();
    // Ids are never reused after deletes.
    let newest = s
        .pending(a, 0, 10, T0)
        .await
        .unwrap()
        .last()
        .unwrap()
        .message_id;
    assert!(newest > other);
    // Expiry: invisible after the TTL, then purged.
    let expired_at = T0 + 30 * DAY + 100;
    assert!(s.pending(a, 0, 10, expired_at).await.unwrap().is_empty());
    assert_eq!(s.purge_expired(expired_at).await.unwrap(), 6);
    assert!(s.pending(a, 0, 10, T0).await.unwrap().is_empty());
    s.health().await.unwrap();
}

/// Enqueues and acks arriving together (written in one batch by batching backends), through
/// two handles on one database (two relay nodes, or one handle twice): the cap holds exactly,
/// unknown recipients are refused one by one, each mailbox's ids follow its order of
/// acceptance, and an envelope acked twice at once is deleted once.
pub(crate) async fn concurrent_mailboxes<S: Storage>(one: Arc<S>, two: Arc<S>) {
    let (a, b, unknown) = (addr(11, 1), addr(11, 2), addr(12, 1));
    one.touch_device(a, T0).await.unwrap();
    one.touch_device(b, T0).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..60u8 {
        let s = if i % 2 == 0 { one.clone() } else { two.clone() };
        let to = [a, b, unknown][usize::from(i % 3)];
        tasks.push(tokio::spawn(async move {
            (to, s.enqueue(to, vec![i; 20], T0).await)
        }));
    }
    let (mut accepted, mut full) = (Vec::new(), 0);
    for t in tasks {
        match t.await.unwrap() {
            (to, Ok(id)) => accepted.push((to, id)),
            (to, Err(EnqueueError::UnknownRecipient)) => assert_eq!(to, unknown),
            (to, Err(EnqueueError::MailboxFull { cap: 5 })) => {
                assert_ne!(to, unknown);
                full += 1;
            }
            (_, Err(e)) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(full, 30);
    for mailbox in [a, b] {
        let mut ids: Vec<u64> = accepted
            .iter()
            .filter(|(to, _)| *to == mailbox)
            .map(|(_, id)| *id)
            .collect();
        ids.sort_unstable();
        let queued: Vec<u64> = one
            .pending(mailbox, 0, 100, T0)
            .await
            .unwrap()
            .iter()
            .map(|d| d.message_id)
            .collect();
        assert_eq!(queued, ids);
        let mut acks = Vec::new();
        for id in ids.iter().chain(&ids) {
            let s = if acks.len() % 2 == 0 {
                one.clone()
            } else {
                two.clone()
            };
            let id = *id;
            acks.push(tokio::spawn(
                async move { s.ack(mailbox, id).await.unwrap() },
            ));
        }
        let mut deleted = 0;
        for t in acks {
            deleted += usize::from(t.await.unwrap());
        }
        assert_eq!(deleted, ids.len());
        assert!(two.pending(mailbox, 0, 100, T0).await.unwrap().is_empty());
    }
}

pub(crate) async fn durability_before<S: Storage>(s: &S) -> u64 {
    let (owner, thief) = (addr(9, 1), addr(10, 1));
    s.touch_device(owner, T0).await.unwrap();
    s.claim_username(owner.account, "dave".into(), None, T0)
        .await
        .unwrap();
    s.set_reglock(owner.account, [3; 32]).await.unwrap();
    for _ in 0..3 {
        assert!(matches!(
            s.claim_username(thief.account, "dave".into(), Some([0; 32]), T0)
                .await,
            Err(ClaimError::PinIncorrect { .. })
        ));
    }
    s.enqueue(owner, b"kept".to_vec(), T0).await.unwrap()
}

pub(crate) async fn durability_after<S: Storage>(s: &S, id: u64) {
    let (owner, thief) = (addr(9, 1), addr(10, 1));
    assert_eq!(
        s.lookup_username("dave".into()).await.unwrap(),
        Some(owner.account)
    );
    assert!(matches!(
        s.claim_username(thief.account, "dave".into(), Some([0; 32]), T0)
            .await,
        Err(ClaimError::PinIncorrect { remaining: 6 })
    ));
    let got = s.pending(owner, 0, 10, T0).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].message_id, got[0].envelope.as_slice()),
        (id, &b"kept"[..])
    );
}

/// Everything one device of an account leaves in storage.
async fn populate<S: Storage>(s: &S, a: Address) {
    s.touch_device(a, T0).await.unwrap();
    s.put_signed_prekey(a, key(1)).await.unwrap();
    s.put_last_resort_kem(a, key(2)).await.unwrap();
    s.add_one_time_prekeys(a, OneTimeKind::X25519, vec![key(3), key(4)])
        .await
        .unwrap();
    s.add_one_time_prekeys(a, OneTimeKind::Kem, vec![key(5)])
        .await
        .unwrap();
    s.enqueue(a, vec![a.account[0]; 8], T0).await.unwrap();
    s.enqueue(a, vec![a.account[0]; 9], T0).await.unwrap();
}

/// Nothing of `a` is left: no bundle, no prekeys, no mailbox, not a known recipient.
async fn assert_gone<S: Storage>(s: &S, a: Address, now: u64) {
    assert!(matches!(
        s.fetch_bundle(a).await,
        Err(BundleError::NotFound)
    ));
    assert_eq!(s.prekey_counts(a).await.unwrap(), PrekeyCounts::default());
    assert!(s.pending(a, 0, 10, now).await.unwrap().is_empty());
    assert!(matches!(
        s.enqueue(a, vec![1], now).await,
        Err(EnqueueError::UnknownRecipient)
    ));
}

pub(crate) async fn account_deletion<S: Storage>(s: &S) {
    let (gone, gone2) = (addr(20, 1), addr(20, 2));
    let (other, claimant, claimant2) = (addr(21, 1), addr(22, 1), addr(23, 1));
    populate(s, gone).await;
    populate(s, gone2).await;
    populate(s, other).await;
    for a in [claimant, claimant2] {
        s.touch_device(a, T0).await.unwrap();
    }
    s.claim_username(gone.account, "dora".into(), None, T0)
        .await
        .unwrap();
    s.set_reglock(gone.account, [3; 32]).await.unwrap();
    s.claim_username(other.account, "olga".into(), None, T0)
        .await
        .unwrap();
    s.set_reglock(other.account, [4; 32]).await.unwrap();

    let deleted_at = T0 + 1000;
    s.delete_account(gone.account, deleted_at).await.unwrap();
    for a in [gone, gone2] {
        assert_gone(s, a, deleted_at).await;
    }
    assert_eq!(s.lookup_username("dora".into()).await.unwrap(), None);
    assert!(matches!(
        s.release_username(gone.account).await,
        Err(ReleaseError::NoUsername)
    ));

    // Nothing of the other account was touched.
    assert_eq!(
        s.lookup_username("olga".into()).await.unwrap(),
        Some(other.account)
    );
    assert!(matches!(
        s.claim_username(claimant2.account, "olga".into(), None, deleted_at)
            .await,
        Err(ClaimError::PinRequired)
    ));
    assert_eq!(
        s.prekey_counts(other).await.unwrap(),
        PrekeyCounts {
            one_time: 2,
            one_time_kem: 1
        }
    );
    assert_eq!(s.pending(other, 0, 10, deleted_at).await.unwrap().len(), 2);
    assert_eq!(s.fetch_bundle(other).await.unwrap().0.signed_prekey, key(1));

    // The locked username stays reserved for the lock-lapse period from the deletion, and
    // no PIN opens it: the lock's verifier is gone with the account.
    for pin in [None, Some([3; 32])] {
        assert!(matches!(
            s.claim_username(claimant.account, "dora".into(), pin, deleted_at)
                .await,
            Err(ClaimError::Taken)
        ));
    }
    assert!(matches!(
        s.change_username(other.account, "dora".into(), deleted_at)
            .await,
        Err(ChangeError::Taken)
    ));
    // The deleted identity key may authenticate again, as a new empty account; it does not
    // get its username back either.
    s.touch_device(gone, deleted_at + 1).await.unwrap();
    assert!(matches!(
        s.claim_username(gone.account, "dora".into(), Some([3; 32]), deleted_at + 1)
            .await,
        Err(ClaimError::Taken)
    ));
    let lapse = deleted_at + 90 * DAY;
    assert!(matches!(
        s.claim_username(claimant.account, "dora".into(), None, lapse - 1)
            .await,
        Err(ClaimError::Taken)
    ));
    // A purge before the end keeps the reservation.
    s.purge_expired(lapse - 1).await.unwrap();
    assert!(matches!(
        s.claim_username(claimant.account, "dora".into(), None, lapse - 1)
            .await,
        Err(ClaimError::Taken)
    ));
    s.claim_username(claimant.account, "dora".into(), None, lapse)
        .await
        .unwrap();
    assert_eq!(
        s.lookup_username("dora".into()).await.unwrap(),
        Some(claimant.account)
    );

    // An unlocked username is reserved for the username-release period, then purged.
    let unlocked = addr(24, 1);
    s.touch_device(unlocked, T0).await.unwrap();
    s.claim_username(unlocked.account, "ella".into(), None, T0)
        .await
        .unwrap();
    s.delete_account(unlocked.account, T0).await.unwrap();
    assert_gone(s, unlocked, T0).await;
    assert!(matches!(
        s.claim_username(claimant2.account, "ella".into(), None, T0 + 30 * DAY - 1)
            .await,
        Err(ClaimError::Taken)
    ));
    s.purge_expired(T0 + 30 * DAY).await.unwrap();
    s.claim_username(claimant2.account, "ella".into(), None, T0 + 30 * DAY)
        .await
        .unwrap();

    // Deleting an account without a username, an unknown one, or twice, succeeds.
    let plain = addr(25, 1);
    populate(s, plain).await;
    s.delete_account(plain.account, T0).await.unwrap();
    s.delete_account(plain.account, T0).await.unwrap();
    s.delete_account([26; 32], T0).await.unwrap();
    assert_gone(s, plain, T0).await;
}
