//! Starts the real `sotto-relay` binary on a loopback port for integration tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// The `sotto-relay` binary: `$SOTTO_RELAY_BIN` when set (scripts/test.sh points it at the
/// binary the workspace test build just made), else built once per test binary.
pub fn relay_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        if let Some(bin) = std::env::var_os("SOTTO_RELAY_BIN") {
            // Relative to the workspace root, as the README writes it (cargo runs tests and
            // benches from the crate's folder).
            let bin = root.join(bin);
            assert!(
                bin.is_file(),
                "SOTTO_RELAY_BIN={} does not exist",
                bin.display()
            );
            return bin;
        }
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-q", "-p", "sotto-relay", "--bin", "sotto-relay"])
            .current_dir(&root)
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building sotto-relay failed");
        target.join("debug/sotto-relay")
    })
    .clone()
}

/// A running relay process with its data directory.
pub struct Relay {
    child: Child,
    /// `ws://127.0.0.1:PORT` (`wss://` when started with `--tls-cert`).
    pub url: String,
    listen: String,
    data_dir: PathBuf,
    extra: Vec<String>,
}

impl Relay {
    /// Starts a relay on a free port with a fresh data directory.
    pub fn start(name: &str, extra: &[&str]) -> Relay {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let data_dir = std::env::temp_dir().join(format!(
            "sotto-client-test-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&data_dir).unwrap();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let (child, url, listen) =
            try_spawn(&data_dir, "127.0.0.1:0", &extra).expect("relay failed to start");
        Relay {
            child,
            url,
            listen,
            data_dir,
            extra,
        }
    }

    /// The relay's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// SIGKILLs the relay (no graceful shutdown).
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Starts the relay again on the same port and data directory.
    pub fn restart(&mut self) {
        for _ in 0..50 {
            if let Some((child, url, _)) = try_spawn(&self.data_dir, &self.listen, &self.extra) {
                self.child = child;
                assert_eq!(url, self.url);
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("relay did not restart");
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

fn try_spawn(data_dir: &Path, listen: &str, extra: &[String]) -> Option<(Child, String, String)> {
    let mut child = Command::new(relay_binary())
        .arg("--listen")
        .arg(listen)
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .stdout(Stdio::piped())
        // The log stays in the data directory, where canary tests look for plaintext.
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(data_dir.join("relay.log"))
                .unwrap(),
        )
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let Some(url) = line.trim().strip_prefix("sotto-relay listening on ") else {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    };
    let url = url.trim_end_matches("/v1/websocket").to_owned();
    let listen = url.split_once("://").unwrap().1.to_owned();
    Some((child, url, listen))
}
