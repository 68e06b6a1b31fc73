//! Interop with the Python `doubleratchet` 1.3 package (tests/interop/peer.py) configured with
//! Sotto's Double Ratchet parameters. Needs the venv from docs/PROTOCOL.md ("Interop"); the
//! interpreter is `$SOTTO_PYTHON`, default `<repo>/.venv/bin/python`. A missing venv is a
//! test failure, not a skip.

// Integration-test helpers outside #[test] fns are test code too; clippy.toml only covers the latter.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};
use sotto_protocol::ratchet::RatchetDecryptError;
use sotto_protocol::{DoubleRatchet, Header, RatchetMessage};

struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    fn spawn() -> Self {
        let python = std::env::var("SOTTO_PYTHON").unwrap_or_else(|_| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python").to_owned()
        });
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/peer.py");
        assert!(
            std::path::Path::new(&python).exists(),
            "interop python not found at {python}: run scripts/test.sh (it creates .venv from tests/interop/requirements.txt), or set SOTTO_PYTHON"
        );
        let mut child = Command::new(&python)
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {python} {}: {e}", script.display()));
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            stdin,
            stdout,
        }
    }

    fn call(&mut self, request: Value) -> Value {
        writeln!(self.stdin, "{request}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert!(
            !line.is_empty(),
            "python peer exited (is doubleratchet 1.3 installed in the venv?)"
        );
        serde_json::from_str(&line).unwrap()
    }

    fn encrypt(&mut self, plaintext: &[u8]) -> RatchetMessage {
        let r = self.call(json!({"op": "encrypt", "plaintext": hex::encode(plaintext)}));
        from_json(&r["message"])
    }

    fn decrypt(&mut self, m: &RatchetMessage) -> Result<Vec<u8>, String> {
        let r = self.call(json!({"op": "decrypt", "message": to_json(m)}));
        match r.get("plaintext") {
            Some(p) => Ok(hex::decode(p.as_str().unwrap()).unwrap()),
            None => Err(r["error"].as_str().unwrap_or("?").to_owned()),
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn to_json(m: &RatchetMessage) -> Value {
    json!({
        "ratchet_key": hex::encode(m.header.ratchet_key),
        "pn": m.header.previous_chain_length,
        "n": m.header.message_number,
        "ciphertext": hex::encode(&m.ciphertext),
    })
}

fn from_json(v: &Value) -> RatchetMessage {
    let key = hex::decode(v["ratchet_key"].as_str().unwrap()).unwrap();
    RatchetMessage {
        header: Header {
            ratchet_key: key.try_into().unwrap(),
            previous_chain_length: u32::try_from(v["pn"].as_u64().unwrap()).unwrap(),
            message_number: u32::try_from(v["n"].as_u64().unwrap()).unwrap(),
        },
        ciphertext: hex::decode(v["ciphertext"].as_str().unwrap()).unwrap(),
    }
}

const SK: [u8; 32] = [0x33; 32];
const AD: &[u8] = b"interop-session-ad";

/// Runs several rounds in which each side sends a batch that the other receives out of order.
fn converse(rng: &mut ChaCha20Rng, rust: &mut DoubleRatchet, py: &mut Peer) {
    for round in 0..4u8 {
        let from_rust: Vec<_> = (0..4u8)
            .map(|i| {
                (
                    vec![round, i, 0xAA],
                    rust.encrypt(&[round, i, 0xAA]).unwrap(),
                )
            })
            .collect();
        for idx in [2, 0, 3, 1] {
            let (pt, m) = &from_rust[idx];
            assert_eq!(
                &py.decrypt(m).unwrap(),
                pt,
                "python decrypting rust round {round}"
            );
        }
        assert!(
            py.decrypt(&from_rust[0].1).is_err(),
            "python accepted a replay"
        );

        let from_py: Vec<_> = (0..4u8)
            .map(|i| (vec![round, i, 0xBB], py.encrypt(&[round, i, 0xBB])))
            .collect();
        for idx in [3, 1, 0, 2] {
            let (pt, m) = &from_py[idx];
            assert_eq!(
                rust.decrypt(rng, m).unwrap().as_slice(),
                pt.as_slice(),
                "rust decrypting python"
            );
        }
        assert_eq!(
            rust.decrypt(rng, &from_py[1].1).err(),
            Some(RatchetDecryptError::Replayed)
        );
    }
    // A message held back across a DH ratchet step still decrypts (skipped keys of an old chain).
    let late = rust.encrypt(b"late").unwrap();
    let next = rust.encrypt(b"next").unwrap();
    assert_eq!(py.decrypt(&next).unwrap(), b"next");
    let reply = py.encrypt(b"reply");
    assert_eq!(rust.decrypt(rng, &reply).unwrap().as_slice(), b"reply");
    let after = rust.encrypt(b"after").unwrap();
    assert_eq!(py.decrypt(&after).unwrap(), b"after");
    assert_eq!(py.decrypt(&late).unwrap(), b"late");
}

#[test]
fn rust_alice_python_bob() {
    let mut rng = ChaCha20Rng::from_seed([0x77; 32]);
    let bob_secret = [0x44u8; 32];
    let bob_public = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(bob_secret));
    let mut rust = DoubleRatchet::init_alice(&mut rng, &SK, bob_public.as_bytes(), AD).unwrap();
    let first = rust.encrypt(b"first from rust").unwrap();
    let mut py = Peer::spawn();
    let r = py.call(json!({
        "op": "init_bob",
        "shared_secret": hex::encode(SK),
        "own_ratchet_secret": hex::encode(bob_secret),
        "ad": hex::encode(AD),
        "message": to_json(&first),
    }));
    assert_eq!(
        r["plaintext"],
        json!(hex::encode(b"first from rust")),
        "{r}"
    );
    converse(&mut rng, &mut rust, &mut py);
}

#[test]
fn python_alice_rust_bob() {
    let mut rng = ChaCha20Rng::from_seed([0x78; 32]);
    let bob_secret = [0x55u8; 32];
    let bob_public = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(bob_secret));
    let mut py = Peer::spawn();
    let r = py.call(json!({
        "op": "init_alice",
        "shared_secret": hex::encode(SK),
        "remote_ratchet_key": hex::encode(bob_public.as_bytes()),
        "ad": hex::encode(AD),
        "plaintext": hex::encode(b"first from python"),
    }));
    let first = from_json(&r["message"]);
    let mut rust = DoubleRatchet::init_bob(&SK, &bob_secret, AD).unwrap();
    assert_eq!(
        rust.decrypt(&mut rng, &first).unwrap().as_slice(),
        b"first from python"
    );
    // Tampered ciphertext from python fails cleanly on the Rust side.
    let mut bad = py.encrypt(b"x");
    bad.ciphertext[0] ^= 1;
    assert_eq!(
        rust.decrypt(&mut rng, &bad).err(),
        Some(RatchetDecryptError::AuthenticationFailed)
    );
    converse(&mut rng, &mut rust, &mut py);
}
