//! Replays every committed fuzz corpus file (fuzz/corpus/<target>/*) through the same harness
//! the cargo-fuzz targets use, so the corpus runs on stable in CI. With
//! `SOTTO_REGENERATE_CORPUS=1` the seed inputs are (re)written first.

// The harness is test code shared with the fuzz crate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../../fuzz/harness.rs"]
mod harness;

use std::path::PathBuf;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

#[test]
fn replay_committed_corpus() {
    if std::env::var("SOTTO_REGENERATE_CORPUS").as_deref() == Ok("1") {
        for (target, name, bytes) in harness::seed_inputs() {
            let dir = corpus_dir().join(target);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
        }
    }
    let mut total = 0;
    for target in harness::TARGETS {
        let dir = corpus_dir().join(target);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run with SOTTO_REGENERATE_CORPUS=1)",
                dir.display()
            )
        });
        let mut count = 0;
        for entry in entries {
            let path = entry.unwrap().path();
            harness::run(target, &std::fs::read(&path).unwrap());
            count += 1;
        }
        assert!(count > 0, "empty corpus for {target}");
        total += count;
    }
    assert!(total >= harness::TARGETS.len());
}

#[test]
fn seed_inputs_are_accepted_by_their_decoders() {
    // Guards against seeds silently going stale after a format change: each decoding seed
    // must still decode (the harness itself only checks round trips of what decodes).
    use sotto_protocol::*;
    for (target, name, bytes) in harness::seed_inputs() {
        let ok = match target {
            "decode_bundle" => PreKeyBundle::decode(&bytes).is_ok(),
            "decode_upload" => PreKeyUpload::decode(&bytes).is_ok(),
            "decode_ciphertext_message" => CiphertextMessage::decode(&bytes).is_ok(),
            "decode_envelope" => SealedEnvelope::decode(&bytes).is_ok(),
            "decode_session" => Session::from_bytes(&bytes).is_ok(),
            "decode_ratchet_state" => DoubleRatchet::from_bytes(&bytes).is_ok(),
            "decode_invite" => qr::ContactInvite::decode(&bytes).is_ok(),
            "unpad" => padding::unpad(&bytes).is_ok(),
            _ => true,
        };
        assert!(ok, "seed {target}/{name} no longer decodes");
        harness::run(target, &bytes);
    }
}

fn cached_seeds() -> &'static [(&'static str, String, Vec<u8>)] {
    static SEEDS: std::sync::OnceLock<Vec<(&'static str, String, Vec<u8>)>> =
        std::sync::OnceLock::new();
    SEEDS.get_or_init(harness::seed_inputs)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, ..Default::default() })]

    /// A poor man's fuzzer on stable: bit-flipped and truncated seeds through every target.
    #[test]
    fn mutated_seeds_never_break_invariants(
        pick in proptest::prelude::any::<proptest::sample::Index>(),
        flips in proptest::collection::vec(
            (proptest::prelude::any::<proptest::sample::Index>(), 1u8..=255), 0..6),
        truncate in proptest::option::of(proptest::prelude::any::<proptest::sample::Index>()),
    ) {
        let seeds = cached_seeds();
        let (target, _, bytes) = &seeds[pick.index(seeds.len())];
        let mut input = bytes.clone();
        for (at, mask) in flips {
            let i = at.index(input.len());
            input[i] ^= mask;
        }
        if let Some(t) = truncate {
            input.truncate(t.index(input.len() + 1));
        }
        harness::run(target, &input);
    }
}
