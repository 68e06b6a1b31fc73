//! "A relay on this computer": the real Sotto relay, run inside the app on loopback so Sotto can
//! be tried without a server. The first app instance that finds the port free serves it; other
//! instances (other profiles) use that one, and take over when it quits (the engine's reconnect
//! attempts call [`ensure`] again through [`EmbeddedRelay::ensure`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use sotto_relay::config::Cli;
use sotto_relay::storage::Policy;
use sotto_relay::storage::sqlite::SqliteStorage;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

/// Where the embedded relay listens unless `SOTTO_EMBEDDED_RELAY_LISTEN` says otherwise; the
/// standalone relay's default, so either can serve the other's users.
pub const DEFAULT_LISTEN: &str = sotto_relay::config::DEFAULT_LISTEN;

/// Why the embedded relay could not be started or reached.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedRelayError {
    /// The listen address setting is not an address.
    #[error("SOTTO_EMBEDDED_RELAY_LISTEN is not an address like 127.0.0.1:7447")]
    BadAddress,
    /// The port is used by a program that is not a Sotto relay.
    #[error("port {0} on this computer is used by another program")]
    PortTaken(u16),
    /// The relay's data folder or database could not be opened.
    #[error("the local relay could not open its data in {path}: {reason}")]
    Storage {
        /// The folder.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The relay configuration was rejected.
    #[error("the local relay configuration is invalid: {0}")]
    Config(String),
}

/// The app's embedded relay: its address, and the server task if this instance runs it.
#[derive(Debug)]
pub struct EmbeddedRelay {
    listen: SocketAddr,
    data_dir: PathBuf,
    serving: Mutex<Option<tokio::task::JoinHandle<()>>>,
    watching: std::sync::atomic::AtomicBool,
}

impl EmbeddedRelay {
    /// The embedded relay configured from the environment, storing its data in `data_dir`.
    pub fn from_env(data_dir: PathBuf) -> Result<Self, EmbeddedRelayError> {
        let listen = std::env::var("SOTTO_EMBEDDED_RELAY_LISTEN")
            .unwrap_or_else(|_| DEFAULT_LISTEN.to_owned())
            .parse()
            .map_err(|_| EmbeddedRelayError::BadAddress)?;
        Ok(Self {
            listen,
            data_dir,
            serving: Mutex::new(None),
            watching: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The URL clients use.
    pub fn url(&self) -> String {
        format!("ws://{}", self.listen)
    }

    /// Makes sure a relay answers on the embedded address: serves it from this process if the
    /// port is free, or accepts the Sotto relay another instance already runs there.
    pub async fn ensure(&self) -> Result<String, EmbeddedRelayError> {
        let mut serving = self.serving.lock().await;
        if serving.as_ref().is_some_and(|task| !task.is_finished()) {
            return Ok(self.url());
        }
        match TcpListener::bind(self.listen).await {
            Ok(listener) => {
                *serving = Some(serve(listener, &self.data_dir)?);
                Ok(self.url())
            }
            Err(_) if is_sotto_relay(self.listen).await => Ok(self.url()),
            Err(_) => Err(EmbeddedRelayError::PortTaken(self.listen.port())),
        }
    }

    /// Keeps the embedded relay available for as long as the app runs: when the instance
    /// that served it quits, this one takes the port over (the engine reconnects by itself).
    pub fn keep_serving(self: std::sync::Arc<Self>) {
        if self
            .watching
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(WATCH_EVERY).await;
                if let Err(e) = self.ensure().await {
                    tracing::debug!(error = %e, "embedded relay not available");
                }
            }
        });
    }
}

/// How often an instance checks that the embedded relay still answers.
const WATCH_EVERY: Duration = Duration::from_secs(5);

fn serve(
    listener: TcpListener,
    data_dir: &Path,
) -> Result<tokio::task::JoinHandle<()>, EmbeddedRelayError> {
    let listen = listener
        .local_addr()
        .map_err(|e| EmbeddedRelayError::Config(e.kind().to_string()))?;
    let args = [
        "sotto-relay".to_owned(),
        "--listen".to_owned(),
        listen.to_string(),
        "--data-dir".to_owned(),
        data_dir.display().to_string(),
    ];
    let config = Cli::try_parse_from(args)
        .map_err(|e| EmbeddedRelayError::Config(e.kind().to_string()))?
        .resolve()
        .map_err(|e| EmbeddedRelayError::Config(e.to_string()))?;
    std::fs::create_dir_all(data_dir).map_err(|e| EmbeddedRelayError::Storage {
        path: data_dir.to_owned(),
        reason: e.kind().to_string(),
    })?;
    let storage = SqliteStorage::open(data_dir, Policy::from_config(&config)).map_err(|e| {
        EmbeddedRelayError::Storage {
            path: data_dir.to_owned(),
            reason: e.to_string(),
        }
    })?;
    Ok(tokio::spawn(async move {
        if let Err(e) =
            sotto_relay::server::serve(config, storage, listener, std::future::pending()).await
        {
            tracing::warn!(error = %e, "embedded relay stopped");
        }
    }))
}

/// Whether the program on `addr` answers the relay's health check.
async fn is_sotto_relay(addr: SocketAddr) -> bool {
    let probe = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let request = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await.ok()?;
        let reply = String::from_utf8_lossy(&reply);
        Some(reply.starts_with("HTTP/1.1 200"))
    };
    tokio::time::timeout(Duration::from_secs(2), probe)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_instance_serves_and_another_reuses_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let listen: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let first = EmbeddedRelay {
            listen,
            data_dir: dir.path().join("relay"),
            serving: Mutex::new(None),
            watching: std::sync::atomic::AtomicBool::new(false),
        };
        assert_eq!(
            first.ensure().await.expect("serve"),
            format!("ws://{listen}")
        );
        assert!(
            is_sotto_relay(listen).await,
            "the relay answers its health check"
        );
        let second = EmbeddedRelay {
            listen,
            data_dir: dir.path().join("other"),
            serving: Mutex::new(None),
            watching: std::sync::atomic::AtomicBool::new(false),
        };
        assert_eq!(
            second.ensure().await.expect("reuse"),
            format!("ws://{listen}")
        );
        assert!(
            second.serving.lock().await.is_none(),
            "the second did not start a relay"
        );
    }

    #[tokio::test]
    async fn a_foreign_program_on_the_port_is_reported() {
        let dir = tempfile::tempdir().expect("temp dir");
        let squatter = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let listen = squatter.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = squatter.accept().await {
                let _ = s.write_all(b"hello, I am not a relay\n").await;
            }
        });
        let relay = EmbeddedRelay {
            listen,
            data_dir: dir.path().to_owned(),
            serving: Mutex::new(None),
            watching: std::sync::atomic::AtomicBool::new(false),
        };
        assert!(matches!(
            relay.ensure().await,
            Err(EmbeddedRelayError::PortTaken(p)) if p == listen.port()
        ));
    }
}
