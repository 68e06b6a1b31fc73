#![no_main]

#[path = "../harness.rs"]
// Seed generation in the harness is only used by the corpus replay test.
#[allow(dead_code)]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run("decode_invite", data));
