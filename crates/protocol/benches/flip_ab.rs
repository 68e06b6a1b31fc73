//! Paired A/B of Sotto against vodozemac (Olm) for the per-message shapes of the criterion
//! bench. Criterion runs one benchmark after the other, so on a shared or frequency-scaling
//! machine a drift between the Sotto and the Olm rows shows up as a difference between the
//! protocols. Here short blocks of the two alternate, and the figure is the median of the
//! per-round ratios, which drift hits equally.
//!
//! Run: `cargo bench -p sotto-protocol --bench flip_ab` (`AB_ROUNDS=N`, default 60).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Instant;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

#[path = "support/sessions.rs"]
mod sessions;

use sessions::{established, olm_established};

/// Iterations per block: long enough to dwarf the timer, short enough to alternate often.
const BLOCK: u32 = 40;

/// Microseconds per iteration of `f` over one block.
fn block(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..BLOCK {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(BLOCK)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::var("AB_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let (mut a, mut b, _, _) = established(&mut rng);
    let (mut oa, mut ob) = olm_established();
    let kib = [0x42u8; 1024];
    // Fills Sotto's 1 KiB padding bucket exactly (see the criterion bench).
    let bucket_fill = [0x42u8; 1023];
    for (shape, plaintext, flip) in [
        ("1KiB_same_chain", &kib[..], false),
        ("1KiB_direction_flip", &kib[..], true),
        ("1023B_same_chain", &bucket_fill[..], false),
        ("1023B_direction_flip", &bucket_fill[..], true),
    ] {
        let (mut sotto, mut olm, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let s = block(|| {
                let m = a.encrypt(black_box(plaintext)).unwrap();
                black_box(b.decrypt(&mut rng, &m).unwrap());
                if flip {
                    let r = b.encrypt(black_box(plaintext)).unwrap();
                    black_box(a.decrypt(&mut rng, &r).unwrap());
                }
            });
            let o = block(|| {
                let m = oa.encrypt(black_box(plaintext)).unwrap();
                black_box(ob.decrypt(&m).unwrap());
                if flip {
                    let r = ob.encrypt(black_box(plaintext)).unwrap();
                    black_box(oa.decrypt(&r).unwrap());
                }
            });
            sotto.push(s);
            olm.push(o);
            ratio.push(s / o);
        }
        println!(
            "{shape:<22} sotto {:>8.1} us  vodozemac {:>8.1} us  median ratio sotto/olm {:.3}",
            median(sotto),
            median(olm),
            median(ratio)
        );
    }
    // The curve work underneath: x25519-dalek 2 (Sotto) against 3 (vodozemac).
    let ours = x25519_dalek::StaticSecret::from([7u8; 32]);
    let theirs = x25519_dalek_3::StaticSecret::from([7u8; 32]);
    let peer = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([8u8; 32]));
    let peer3 = x25519_dalek_3::PublicKey::from(peer.to_bytes());
    let (mut dh, mut base) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let d2 = block(|| {
            black_box(ours.diffie_hellman(black_box(&peer)));
        });
        let d3 = block(|| {
            black_box(theirs.diffie_hellman(black_box(&peer3)));
        });
        let b2 = block(|| {
            black_box(x25519_dalek::PublicKey::from(black_box(&ours)));
        });
        let b3 = block(|| {
            black_box(x25519_dalek_3::PublicKey::from(black_box(&theirs)));
        });
        dh.push(d2 / d3);
        base.push(b2 / b3);
    }
    println!(
        "x25519 DH dalek2/dalek3 {:.3}, public key from secret dalek2/dalek3 {:.3}",
        median(dh),
        median(base)
    );
}
