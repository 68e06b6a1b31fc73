//! Profiling driver for the per-message ratchet cost, Sotto next to vodozemac (Olm), in the
//! shapes of the criterion benchmark (`benches/protocol.rs`). Meant for
//! `valgrind --tool=callgrind`, whose instruction counts are deterministic: run it with 0 and
//! with N iterations and divide the difference by N to get the cost of one iteration.
//!
//! `cargo build --release -p sotto-protocol --example ratchet_profile`, then
//! `ratchet_profile <sotto|olm> <same|flip> <iterations> [plaintext bytes, default 1024]`.
//! (valgrind hides SHA-NI, so SHA-256 weighs more in the counts than on the CPU.)
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

#[path = "../benches/support/sessions.rs"]
mod sessions;

use sessions::{established, olm_established};

fn sotto(flip: bool, n: usize, plaintext: &[u8]) {
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let (mut a, mut s, _, _) = established(&mut rng);
    for _ in 0..n {
        let m = a.encrypt(black_box(plaintext)).unwrap();
        black_box(s.decrypt(&mut rng, &m).unwrap());
        if flip {
            let r = s.encrypt(black_box(plaintext)).unwrap();
            black_box(a.decrypt(&mut rng, &r).unwrap());
        }
    }
}

fn olm(flip: bool, n: usize, plaintext: &[u8]) {
    let (mut a, mut s) = olm_established();
    for _ in 0..n {
        let m = a.encrypt(black_box(plaintext)).unwrap();
        black_box(s.decrypt(&m).unwrap());
        if flip {
            let r = s.encrypt(black_box(plaintext)).unwrap();
            black_box(a.decrypt(&r).unwrap());
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flip = args[2] == "flip";
    let n: usize = args[3].parse().unwrap();
    let len: usize = args.get(4).map_or(1024, |l| l.parse().unwrap());
    let plaintext = vec![0x42u8; len];
    match args[1].as_str() {
        "sotto" => sotto(flip, n, &plaintext),
        "olm" => olm(flip, n, &plaintext),
        other => panic!("unknown side {other}"),
    }
}
