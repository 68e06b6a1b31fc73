//! The `sotto` CLI end to end: a real relay process and two or three `sotto` processes with
//! their own encrypted profiles, talking over real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../client/tests/relay_process/mod.rs"]
mod relay_process;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use relay_process::Relay;
use serde_json::Value;
use sotto_store::{Passphrase, Store};

/// One user's profile and how `sotto` is run for it.
struct User {
    dir: PathBuf,
    env: Vec<(String, String)>,
    /// Everything the processes printed on stderr (checked by the canary test).
    stderr_log: std::cell::RefCell<Vec<u8>>,
}

impl User {
    fn new(root: &Path, name: &str, passphrase: Option<&str>) -> User {
        let mut env = vec![];
        if let Some(p) = passphrase {
            env.push(("SOTTO_PASSPHRASE".to_owned(), p.to_owned()));
        }
        User {
            dir: root.join(name),
            env,
            stderr_log: Default::default(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sotto"));
        c.arg("--profile").arg(&self.dir).args(args);
        c.env_remove("SOTTO_PASSPHRASE").env_remove("SOTTO_PIN");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.stdin(Stdio::null());
        c
    }

    fn run_with(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
        let mut c = self.command(args);
        for (k, v) in extra_env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        self.stderr_log.borrow_mut().extend_from_slice(&out.stderr);
        out
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "sotto {args:?} failed ({:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs with --json and parses every output line.
    fn json(&self, args: &[&str]) -> Vec<Value> {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        self.ok(&a)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn code(&self, args: &[&str]) -> i32 {
        self.run(args).status.code().unwrap()
    }

    fn init(&self, relay: &Relay, username: &str) {
        self.ok(&["init", "--relay", &relay.url, "--username", username]);
    }

    /// Texts of the conversation with `name`, oldest first.
    fn texts(&self, name: &str) -> Vec<String> {
        self.json(&["messages", name, "--limit", "1000"])
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Receives until `want` messages arrived or the deadline passes; returns their texts.
    fn receive_texts(&self, want: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut got = Vec::new();
        while got.len() < want && Instant::now() < deadline {
            for m in self.json(&["receive", "--timeout", "5"]) {
                if m["type"] == "message" {
                    got.push(m["text"].as_str().unwrap().to_owned());
                }
            }
        }
        got
    }
}

/// Opens a closed passphrase-mode profile through sotto-store and scans it for `word`.
fn scan(dir: &Path, passphrase: &str, word: &str) -> sotto_store::Leftovers {
    let store = Store::open_with_passphrase(dir, &Passphrase::from(passphrase)).unwrap();
    let found = store.scan_for(word).unwrap();
    store.close().unwrap();
    found
}

fn contact<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter()
        .find(|c| c["username"] == name)
        .unwrap_or_else(|| panic!("no contact {name} in {list:?}"))
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn assert_absent(word: &str, places: &[&Path], extra: &[(&str, &[u8])]) {
    let needle = word.as_bytes();
    for dir in places {
        for f in files_under(dir) {
            let bytes = std::fs::read(&f).unwrap();
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{word:?} found in {}",
                f.display()
            );
        }
    }
    for (what, bytes) in extra {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "{word:?} found in {what}"
        );
    }
}

#[test]
fn two_people_chat_and_verify_by_scanning_qr_codes_and_no_plaintext_leaks() {
    let relay = Relay::start("cli-chat", &[]);
    let tmp = tempfile::tempdir().unwrap();
    let alice = User::new(tmp.path(), "alice", Some("alice passphrase"));
    let bob = User::new(tmp.path(), "bob", Some("bob passphrase"));
    alice.init(&relay, "alice");
    bob.init(&relay, "bob");

    let words = ["quetzalcanary", "marmalade7431", "zanzibarzephyr"];
    alice.ok(&["contacts", "add", "bob"]);
    alice.ok(&["send", "bob", &format!("hello {}", words[0])]);
    assert_eq!(bob.receive_texts(1), [format!("hello {}", words[0])]);
    // Bob did not know Alice: her message is a request until he replies.
    let contacts = bob.json(&["contacts", "list"]);
    assert_eq!(contact(&contacts, "alice")["request"], "request");
    bob.ok(&["send", "alice", &format!("hi {}", words[1])]);
    assert_eq!(
        contact(&bob.json(&["contacts", "list"]), "alice")["request"],
        "accepted"
    );
    assert_eq!(alice.receive_texts(1), [format!("hi {}", words[1])]);
    alice.ok(&["send", "bob", &format!("third {}", words[2])]);
    assert_eq!(bob.receive_texts(1), [format!("third {}", words[2])]);
    // Bob read it, so Alice learns it was delivered and read.
    let receipts = alice.json(&["receive", "--timeout", "3"]);
    assert!(
        receipts.iter().any(|r| r["type"] == "read"),
        "no read receipt in {receipts:?}"
    );
    let mine = alice.json(&["messages", "bob"]);
    assert_eq!(mine.last().unwrap()["state"], "read");
    assert_eq!(
        alice.texts("bob"),
        [
            format!("hello {}", words[0]),
            format!("hi {}", words[1]),
            format!("third {}", words[2])
        ]
    );

    // Same safety number on both sides.
    let a_num = &alice.json(&["safety-number", "bob"])[0]["number"];
    let b_num = &bob.json(&["safety-number", "alice"])[0]["number"];
    assert_eq!(a_num, b_num);
    assert_eq!(a_num.as_str().unwrap().len(), 60);

    // Verify by scanning each other's QR code images.
    let alice_qr = tmp.path().join("alice-verify.png");
    let bob_qr = tmp.path().join("bob-verify.png");
    alice.ok(&[
        "safety-number",
        "bob",
        "--qr-png",
        alice_qr.to_str().unwrap(),
    ]);
    bob.ok(&[
        "safety-number",
        "alice",
        "--qr-png",
        bob_qr.to_str().unwrap(),
    ]);
    // Scanning one's own code is a mismatch and changes nothing.
    assert_eq!(
        bob.code(&["verify", "alice", "--scan", bob_qr.to_str().unwrap()]),
        5
    );
    assert_eq!(
        contact(&bob.json(&["contacts", "list"]), "alice")["verification"],
        "unverified"
    );
    bob.ok(&["verify", "alice", "--scan", alice_qr.to_str().unwrap()]);
    alice.ok(&["verify", "bob", "--scan", bob_qr.to_str().unwrap()]);
    assert_eq!(
        contact(&bob.json(&["contacts", "list"]), "alice")["verification"],
        "verified"
    );
    assert_eq!(
        contact(&alice.json(&["contacts", "list"]), "bob")["verification"],
        "verified"
    );

    // Search finds the words inside the encrypted database ...
    assert_eq!(alice.json(&["search", words[1]]).len(), 1);
    // ... and the words appear nowhere on disk or in any output but the expected ones.
    let alice_err = alice.stderr_log.borrow().clone();
    let bob_err = bob.stderr_log.borrow().clone();
    for w in words {
        assert_absent(
            w,
            &[&alice.dir, &bob.dir, relay.data_dir()],
            &[("alice's stderr", &alice_err), ("bob's stderr", &bob_err)],
        );
    }
}

#[test]
fn disappearing_messages_vanish_on_both_sides_also_while_closed() {
    let relay = Relay::start("cli-disappear", &[]);
    let tmp = tempfile::tempdir().unwrap();
    let alice = User::new(tmp.path(), "alice", Some("alice passphrase"));
    let bob = User::new(tmp.path(), "bob", Some("bob passphrase"));
    alice.init(&relay, "alice");
    bob.init(&relay, "bob");
    bob.ok(&["contacts", "add", "alice"]);
    alice.ok(&["contacts", "add", "bob"]);
    alice.ok(&["disappearing", "bob", "5s"]);
    let timer = bob.json(&["receive", "--timeout", "5"]);
    assert!(
        timer
            .iter()
            .any(|e| e["type"] == "timer" && e["seconds"] == 5),
        "{timer:?}"
    );
    alice.ok(&["send", "bob", "ephemeralword"]);
    alice.ok(&["send", "bob", "--", "-second ephemeralword"]);
    let got = bob.json(&["receive", "--timeout", "5"]);
    let msgs: Vec<_> = got.iter().filter(|m| m["type"] == "message").collect();
    assert_eq!(msgs.len(), 2, "{got:?}");
    assert_eq!(msgs[0]["expire_timer"], 5);
    // Both sides' timers are running; no process is open while they run out.
    assert_eq!(bob.json(&["search", "ephemeralword"]).len(), 2);
    // Control for the scan below: it does see the word while the messages exist.
    let before = scan(&bob.dir, "bob passphrase", "ephemeralword");
    assert!(before.tables.contains(&"messages".to_owned()), "{before:?}");
    assert!(before.fts_term);
    std::thread::sleep(Duration::from_secs(6));
    assert!(alice.texts("bob").is_empty());
    assert!(bob.texts("alice").is_empty());
    assert!(bob.json(&["search", "ephemeralword"]).is_empty());
    // The words left the databases, not only the views. The files are SQLCipher-encrypted,
    // so grepping their bytes would pass whatever they held; instead each profile is opened
    // with its key and every table, the FTS5 shadow tables included, is scanned for the
    // word, and the index's own term list is checked. What rows the scan cannot reach is
    // freed space (free pages, free blocks inside pages): `secure_delete` zeroes it before
    // the page is encrypted and written, so it is asserted on, and sotto-store's
    // `deleted_words_leave_the_file` proves that on an unencrypted copy of the schema. No
    // `-wal` file is left once the CLI exits (closing checkpoints and removes it), so no
    // older page images sit beside the database either; its frames would be encrypted
    // pages too, so its absence is what is checked, not its bytes.
    for (user, pass) in [(&alice, "alice passphrase"), (&bob, "bob passphrase")] {
        assert!(!user.dir.join("sotto.db-wal").exists());
        let left = scan(&user.dir, pass, "ephemeralword");
        assert!(left.tables.is_empty() && !left.fts_term, "{left:?}");
        assert!(left.secure_delete && left.fts_secure_delete, "{left:?}");
    }
    // A conversation without a timer keeps its messages.
    bob.ok(&["disappearing", "alice", "off"]);
    bob.ok(&["send", "alice", "keepme"]);
    assert_eq!(alice.receive_texts(1), ["keepme"]);
    assert_eq!(alice.texts("bob"), ["keepme"]);
    assert_eq!(bob.code(&["disappearing", "alice", "2s"]), 1, "below 5 s");
}

#[test]
fn registration_lock_stops_another_identity_and_key_changes_are_flagged() {
    let relay = Relay::start("cli-reglock", &[]);
    let tmp = tempfile::tempdir().unwrap();
    let alice = User::new(tmp.path(), "alice", Some("alice passphrase"));
    let bob = User::new(tmp.path(), "bob", Some("bob passphrase"));
    alice.init(&relay, "alice");
    let out = bob.run_with(
        &["init", "--relay", &relay.url, "--username", "bob", "--pin"],
        &[("SOTTO_PIN", "2468")],
    );
    assert!(out.status.success());
    alice.ok(&["send", "bob", "before"]);
    assert_eq!(bob.receive_texts(1), ["before"]);

    // Someone else cannot take "bob": not without the PIN, not with a wrong one.
    let mallory = User::new(tmp.path(), "mallory", Some("m passphrase"));
    assert_eq!(
        mallory.code(&["init", "--relay", &relay.url, "--username", "bob"]),
        7
    );
    assert!(
        !mallory.dir.join("profile.meta").exists(),
        "no half profile"
    );
    let out = mallory.run_with(
        &["init", "--relay", &relay.url, "--username", "bob", "--pin"],
        &[("SOTTO_PIN", "1111")],
    );
    assert_eq!(out.status.code(), Some(7));

    // Bob reinstalls: a new identity key takes his name with his PIN.
    let bob2 = User::new(tmp.path(), "bob2", Some("bob passphrase 2"));
    let out = bob2.run_with(
        &["init", "--relay", &relay.url, "--username", "bob", "--pin"],
        &[("SOTTO_PIN", "2468")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Hardened mode: sending to a changed key is blocked until Alice reviews it.
    alice.ok(&["settings", "hardened", "on"]);
    let out = alice.run(&["contacts", "add", "bob"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("safety number"));
    let c = alice.json(&["contacts", "list"]);
    assert_eq!(contact(&c, "bob")["verification"], "changed");
    assert_eq!(alice.code(&["send", "bob", "blocked?"]), 8);
    alice.ok(&["verify", "bob", "--reset"]);
    alice.ok(&["send", "bob", "after review"]);
    assert_eq!(bob2.receive_texts(1), ["after review"]);
    // The conversation continues under the same contact.
    assert_eq!(alice.texts("bob"), ["before", "after review"]);
}

#[test]
fn backup_restores_into_a_fresh_profile_and_bad_files_change_nothing() {
    let relay = Relay::start("cli-backup", &[]);
    let tmp = tempfile::tempdir().unwrap();
    let alice = User::new(tmp.path(), "alice", Some("alice passphrase"));
    let bob = User::new(tmp.path(), "bob", Some("bob passphrase"));
    alice.init(&relay, "alice");
    bob.init(&relay, "bob");
    alice.ok(&["send", "bob", "backed up"]);
    assert_eq!(bob.receive_texts(1), ["backed up"]);
    bob.ok(&["send", "alice", "reply"]);
    assert_eq!(alice.receive_texts(1), ["reply"]);
    alice.ok(&["verify", "bob", "--manual"]);
    alice.ok(&["settings", "set", "typing-indicators", "off"]);

    let file = tmp.path().join("alice.backup");
    let pass = [("SOTTO_BACKUP_PASSPHRASE", "a long backup passphrase")];
    let out = alice.run_with(&["backup", "export", file.to_str().unwrap()], &pass);
    assert!(out.status.success());

    let restored = User::new(tmp.path(), "alice-restored", Some("new passphrase"));
    // Wrong backup passphrase: clear error, nothing created.
    let out = restored.run_with(
        &["backup", "import", file.to_str().unwrap()],
        &[("SOTTO_BACKUP_PASSPHRASE", "not the passphrase")],
    );
    assert_eq!(out.status.code(), Some(6));
    assert!(files_under(&restored.dir).is_empty());
    // Truncated file: refused, nothing created.
    let cut = tmp.path().join("cut.backup");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let out = restored.run_with(&["backup", "import", cut.to_str().unwrap()], &pass);
    assert_eq!(out.status.code(), Some(1));
    assert!(files_under(&restored.dir).is_empty());

    let out = restored.run_with(&["backup", "import", file.to_str().unwrap()], &pass);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(restored.texts("bob"), ["backed up", "reply"]);
    // The import leaves the search index to be built afterwards; `search` finishes it.
    assert_eq!(restored.json(&["search", "backed"]).len(), 1);
    assert_eq!(
        contact(&restored.json(&["contacts", "list"]), "bob")["verification"],
        "verified"
    );
    assert_eq!(
        restored.json(&["settings", "get", "typing-indicators"])[0]["value"],
        "off"
    );
    assert_eq!(
        restored.json(&["whoami"])[0]["account"],
        alice.json(&["whoami"])[0]["account"]
    );
    // The restored profile keeps chatting with Bob.
    restored.ok(&["send", "bob", "from the restored profile"]);
    assert_eq!(bob.receive_texts(1), ["from the restored profile"]);
}

#[test]
fn a_client_killed_while_receiving_a_burst_loses_and_duplicates_nothing() {
    let relay = Relay::start("cli-sigkill", &[]);
    let tmp = tempfile::tempdir().unwrap();
    let alice = User::new(tmp.path(), "alice", Some("alice passphrase"));
    let bob = User::new(tmp.path(), "bob", Some("bob passphrase"));
    alice.init(&relay, "alice");
    bob.init(&relay, "bob");
    bob.ok(&["contacts", "add", "alice"]);
    const N: usize = 30;
    for i in 0..N {
        alice.ok(&["send", "bob", &format!("burst {i}")]);
    }
    // Kill Bob's receiver at several points of the burst.
    for delay_ms in [150u64, 400, 700] {
        let mut child = bob
            .command(&["receive", "--timeout", "10"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    bob.ok(&["receive", "--timeout", "5"]);
    let mut texts = bob.texts("alice");
    assert_eq!(texts.len(), N, "{texts:?}");
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), N, "duplicates");
}

#[test]
fn keyring_mode_works_and_a_missing_keyring_is_a_clear_error() {
    let relay = Relay::start("cli-keyring", &[]);
    let tmp = tempfile::tempdir().unwrap();
    let alice = User::new(tmp.path(), "alice", None);
    let bob = User::new(tmp.path(), "bob", Some("bob passphrase"));
    alice.init(&relay, "alice");
    let meta = std::fs::read_to_string(alice.dir.join("profile.meta")).unwrap();
    assert!(meta.contains("mode keyring"), "{meta}");
    bob.init(&relay, "bob");
    bob.ok(&["send", "alice", "via keyring"]);
    assert_eq!(alice.receive_texts(1), ["via keyring"]);

    // Without a Secret Service: a plain error naming the fix, exit code 6, nothing written.
    let carol = User::new(tmp.path(), "carol", None);
    let no_bus = [(
        "DBUS_SESSION_BUS_ADDRESS",
        "unix:path=/nonexistent/sotto-test-bus",
    )];
    let out = carol.run_with(
        &["init", "--relay", &relay.url, "--username", "carol"],
        &no_bus,
    );
    assert_eq!(out.status.code(), Some(6));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("keyring") && err.contains("passphrase"),
        "{err}"
    );
    assert!(!carol.dir.join("sotto.db").exists());
    let out = alice.run_with(&["whoami"], &no_bus);
    assert_eq!(out.status.code(), Some(6));

    // Passphrase mode needs its passphrase, and a wrong one is refused.
    assert_eq!(
        bob.run_with(&["whoami"], &[("SOTTO_PASSPHRASE", "wrong")])
            .status
            .code(),
        Some(6)
    );
    let pass_file = tmp.path().join("pass");
    std::fs::write(&pass_file, "bob passphrase\n").unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_sotto"));
    let out = c
        .arg("--profile")
        .arg(&bob.dir)
        .arg("--passphrase-file")
        .arg(&pass_file)
        .arg("whoami")
        .env_remove("SOTTO_PASSPHRASE")
        .output()
        .unwrap();
    assert!(out.status.success());
}

/// `init --relay-ca` against a wss:// relay with a self-signed CA: the CA is kept in the
/// profile (later commands need no flag) and the two users chat; without it `init` fails
/// with exit 3 naming the certificate problem and leaves no profile.
#[test]
fn init_with_relay_ca_chats_over_wss_and_an_untrusted_certificate_is_clear() {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "CLI test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let path = |n: &str| tmp.path().join(n).to_str().unwrap().to_owned();
    std::fs::write(path("ca.pem"), ca.pem()).unwrap();
    std::fs::write(path("cert.pem"), cert.pem()).unwrap();
    std::fs::write(path("key.pem"), key.serialize_pem()).unwrap();
    let relay = Relay::start(
        "cli-wss",
        &[
            "--tls-cert",
            &path("cert.pem"),
            "--tls-key",
            &path("key.pem"),
        ],
    );
    let url = relay.url.replace("wss://127.0.0.1", "wss://localhost");
    assert!(url.starts_with("wss://localhost:"), "{url}");

    let eve = User::new(tmp.path(), "eve", Some("eve passphrase"));
    let out = eve.run(&["init", "--relay", &url, "--username", "eve"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("certificate is not trusted"), "{err}");
    assert!(!eve.dir.join("sotto.db").exists());

    let alice = User::new(tmp.path(), "alice", Some("alice passphrase"));
    let bob = User::new(tmp.path(), "bob", Some("bob passphrase"));
    for (u, name) in [(&alice, "alice"), (&bob, "bob")] {
        u.ok(&[
            "init",
            "--relay",
            &url,
            "--relay-ca",
            &path("ca.pem"),
            "--username",
            name,
        ]);
    }
    alice.ok(&["contacts", "add", "bob"]);
    alice.ok(&["send", "bob", "hello over wss"]);
    assert_eq!(bob.receive_texts(1), ["hello over wss"]);
}

#[test]
fn a_restored_profile_starts_fresh_sessions_when_its_backup_is_stale() {
    let relay = Relay::start("cli-restore-stale", &[]);
    let tmp = tempfile::tempdir().unwrap();
    let alice = User::new(tmp.path(), "alice", Some("alice passphrase"));
    let bob = User::new(tmp.path(), "bob", Some("bob passphrase"));
    alice.init(&relay, "alice");
    bob.init(&relay, "bob");
    bob.ok(&["contacts", "add", "alice"]);
    alice.ok(&["send", "bob", "before the backup"]);
    assert_eq!(bob.receive_texts(1), ["before the backup"]);
    bob.ok(&["send", "alice", "reply before the backup"]);
    assert_eq!(alice.receive_texts(1), ["reply before the backup"]);

    let file = tmp.path().join("alice.backup");
    let pass = [("SOTTO_BACKUP_PASSPHRASE", "a long backup passphrase")];
    let out = alice.run_with(&["backup", "export", file.to_str().unwrap()], &pass);
    assert!(out.status.success());
    // The old device keeps chatting: both ratchets move past what the backup holds.
    for i in 0..3 {
        alice.ok(&["send", "bob", &format!("after the backup {i}")]);
        assert_eq!(bob.receive_texts(1), [format!("after the backup {i}")]);
        bob.ok(&["send", "alice", &format!("bob after the backup {i}")]);
        assert_eq!(
            alice.receive_texts(1),
            [format!("bob after the backup {i}")]
        );
    }

    let restored = User::new(tmp.path(), "alice-restored", Some("new passphrase"));
    let out = restored.run_with(&["backup", "import", file.to_str().unwrap()], &pass);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Its own history up to the backup.
    assert_eq!(
        restored.texts("bob"),
        ["before the backup", "reply before the backup"]
    );
    // The restored profile starts a new session; Bob replaces his old one with it (same
    // identity key, so no key change) and answers on it.
    restored.ok(&["send", "bob", "from the restored profile"]);
    let got = bob.json(&["receive", "--timeout", "5"]);
    let msgs: Vec<_> = got.iter().filter(|m| m["type"] == "message").collect();
    assert_eq!(msgs.len(), 1, "{got:?}");
    assert_eq!(msgs[0]["text"], "from the restored profile");
    assert_eq!(msgs[0]["key_changed"], false);
    bob.ok(&["send", "alice", "to the restored profile"]);
    assert_eq!(restored.receive_texts(1), ["to the restored profile"]);
}

#[test]
fn a_failed_keyring_init_leaves_no_keyring_entry() {
    let relay = Relay::start("cli-keyring-cleanup", &[]);
    let tmp = tempfile::tempdir().unwrap();
    let alice = User::new(tmp.path(), "alice", Some("alice passphrase"));
    alice.init(&relay, "alice");
    // A private D-Bus session with its own unlocked gnome-keyring (files in a temporary
    // folder), so every entry it holds was made by the commands below and other tests'
    // keyring entries cannot disturb the count.
    let keyring_home = tempfile::tempdir().unwrap();
    let script = r#"
        # secret-tool prints the attributes on stderr; only the count leaves this function.
        printf sotto-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null || exit 90
        count() { secret-tool search --all service org.sotto.desktop 2>&1 | grep -c '^attribute.username = '; }
        "$SOTTO" --profile "$OK_DIR" init --relay "$URL" --username carol >/dev/null || exit 91
        echo "after_ok=$(count)"
        "$SOTTO" --profile "$FAIL_DIR" init --relay "$URL" --username alice >/dev/null 2>&1
        echo "init_exit=$?"
        echo "after_failed=$(count)"
    "#;
    let out = Command::new("dbus-run-session")
        .args(["--", "bash", "-c", script])
        .env("XDG_DATA_HOME", keyring_home.path())
        .env("SOTTO", env!("CARGO_BIN_EXE_sotto"))
        .env("OK_DIR", tmp.path().join("carol"))
        .env("FAIL_DIR", tmp.path().join("dave"))
        .env("URL", &relay.url)
        .env_remove("SOTTO_PASSPHRASE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} (exit {:?})",
        out.status.code()
    );
    // Control: a keyring-mode profile that was created does leave one entry that the
    // lookup sees.
    assert!(stdout.contains("after_ok=1"), "{stdout}");
    // The relay refused the username (taken): exit 7, and the entry that init had stored
    // before asking the relay is gone again, as are its files.
    assert!(stdout.contains("init_exit=7"), "{stdout}");
    assert!(stdout.contains("after_failed=1"), "{stdout}");
    assert!(files_under(&tmp.path().join("dave")).is_empty());
}

#[test]
fn deleting_an_account_removes_it_from_the_relay_and_the_profile_from_disk() {
    let relay = Relay::start("cli-delete", &[]);
    let tmp = tempfile::tempdir().unwrap();
    let alice = User::new(tmp.path(), "alice", Some("alice passphrase"));
    let carol = User::new(tmp.path(), "carol", Some("carol passphrase"));
    alice.init(&relay, "alice");
    carol.init(&relay, "carol");
    alice.ok(&["send", "carol", "are you there"]);
    assert_eq!(carol.receive_texts(1), ["are you there"]);

    // Without --yes nothing happens.
    assert_eq!(carol.code(&["delete-account"]), 2);
    assert_eq!(carol.json(&["whoami"])[0]["username"], "carol");

    let out = carol.json(&["delete-account", "--yes"]);
    assert_eq!(out[0]["type"], "account-deleted");
    assert!(!carol.dir.join("profile.meta").exists(), "profile removed");
    // The name is gone from the directory and held back from a newcomer.
    assert_eq!(alice.code(&["contacts", "add", "carol"]), 4);
    let mallory = User::new(tmp.path(), "mallory", Some("m passphrase"));
    assert_eq!(
        mallory.code(&["init", "--relay", &relay.url, "--username", "carol"]),
        7
    );
    // Everyone else is unaffected.
    alice.ok(&["whoami"]);
}
