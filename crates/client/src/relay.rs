//! Connections to a Sotto relay (`ws://HOST:PORT/v1/websocket` or `wss://…`, see
//! docs/PROTOCOL.md, section 13). TLS is rustls with the ring provider; a wss:// relay's certificate
//! must chain to the OS trust store or to the extra CA of a [`RelayTls`].
//!
//! A [`RelayConnection`] multiplexes requests by request id over one WebSocket; a background
//! task reads frames, completes the matching pending request and forwards pushes to a channel.
//! Two flavours exist: [`RelayConnection::authenticated`] answers the relay's challenge with
//! the identity key and yields the push stream (envelopes, `QueueDrained`, `PrekeysLow`);
//! [`RelayConnection::anonymous`] never authenticates and is used for `SendEnvelope`,
//! `FetchBundle` and `UsernameLookup`, so the relay cannot link a sealed envelope to its sender.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ed25519_dalek::{Signer, SigningKey};
use futures_util::{SinkExt, StreamExt};
use rand_core::{OsRng, RngCore};
use sotto_protocol::IdentityKeyPair;
use sotto_relay_wire::{ErrorCode, Frame, MAX_FRAME_LEN, Push, Request, Response, auth_message};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Default time to wait for a response.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The WebSocket path of the relay.
pub const WS_PATH: &str = "/v1/websocket";
/// Default interval between keep-alive pings.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(25);

/// How connections are opened and kept.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Longest wait for connection setup and for each response.
    pub timeout: Duration,
    /// Trust for wss:// (`None`: the OS trust store).
    pub tls: Option<RelayTls>,
    /// Interval between WebSocket pings. A connection that receives nothing, not even a
    /// pong, for two and a half intervals is closed as dead: without this a connection
    /// that vanished silently (sleep, network change) would look open forever.
    pub keepalive: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_REQUEST_TIMEOUT,
            tls: None,
            keepalive: DEFAULT_KEEPALIVE,
        }
    }
}

/// Why a connection could not be established.
#[derive(Debug, Error)]
pub enum ConnectError {
    /// The URL is not `ws://host:port` or `wss://host:port`.
    #[error("invalid relay url")]
    InvalidUrl,
    /// The relay's TLS certificate does not chain to a trusted CA (the OS trust store or the
    /// profile's relay CA), does not name the host, or has expired.
    #[error("the relay's TLS certificate is not trusted")]
    UntrustedCertificate,
    /// The TLS handshake failed for another reason (protocol or cipher mismatch, not TLS).
    #[error("TLS handshake with the relay failed")]
    Tls,
    /// TCP connect or WebSocket upgrade failed.
    #[error("relay unreachable")]
    Unreachable,
    /// The relay did not send its challenge (or did not answer) in time.
    #[error("relay timed out")]
    Timeout,
    /// The connection closed during setup.
    #[error("connection closed during setup")]
    Closed,
    /// The relay refused authentication.
    #[error("authentication refused: {0:?}")]
    Refused(ErrorCode),
}

impl ConnectError {
    /// Retrying cannot help: the relay refused us, the URL is wrong or its certificate is
    /// not trusted.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::Refused(_) | Self::InvalidUrl | Self::UntrustedCertificate
        )
    }
}

/// Why a request failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// No response within the timeout.
    #[error("request timed out")]
    Timeout,
    /// The connection is gone.
    #[error("connection closed")]
    Closed,
    /// The relay answered with an error code.
    #[error("relay error {code:?} (detail {detail})")]
    Relay {
        /// The error code.
        code: ErrorCode,
        /// Code-specific detail (e.g. milliseconds to wait).
        detail: u64,
    },
    /// The relay answered with a response body of the wrong kind.
    #[error("unexpected response")]
    UnexpectedResponse,
    /// The request has a field longer than the protocol allows; nothing was sent.
    #[error(transparent)]
    Encode(#[from] sotto_relay_wire::EncodeError),
}

/// Requests waiting for their response; `None` once the reader stopped, so a request made on
/// a dead connection fails at once instead of waiting out its timeout.
type Pending =
    Arc<Mutex<Option<HashMap<u64, oneshot::Sender<Result<Response, (ErrorCode, u64)>>>>>>;

/// One WebSocket connection to the relay.
pub struct RelayConnection {
    out: mpsc::UnboundedSender<Message>,
    pending: Pending,
    next_id: AtomicU64,
    timeout: Duration,
    reader: tokio::task::JoinHandle<()>,
    writer: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RelayConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayConnection").finish_non_exhaustive()
    }
}

/// Splits `ws://host:port[/path]` or `wss://…` into (the URL to dial, the `host:port`
/// signed at auth).
pub fn parse_relay_url(url: &str) -> Result<(String, String), ConnectError> {
    let (scheme, rest) = url.split_once("://").ok_or(ConnectError::InvalidUrl)?;
    if scheme != "ws" && scheme != "wss" {
        return Err(ConnectError::InvalidUrl);
    }
    let host = rest.split('/').next().unwrap_or_default();
    let Some((name, port)) = host.rsplit_once(':') else {
        return Err(ConnectError::InvalidUrl);
    };
    if name.is_empty() || port.parse::<u16>().is_err() {
        return Err(ConnectError::InvalidUrl);
    }
    Ok((format!("{scheme}://{host}{WS_PATH}"), host.to_owned()))
}

/// The certificates a wss:// connection trusts: the OS trust store, plus optionally the CA
/// of a self-hosted relay. Cheap to clone.
#[derive(Clone)]
pub struct RelayTls(Arc<ClientConfig>);

impl std::fmt::Debug for RelayTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayTls").finish_non_exhaustive()
    }
}

/// A relay CA file could not be used.
#[derive(Debug, Error)]
pub enum RelayCaError {
    /// Not PEM, or no certificate in it.
    #[error("the relay CA is not a PEM certificate")]
    NotPem,
    /// rustls refused the certificate as a trust anchor.
    #[error("the relay CA certificate is unusable")]
    Unusable,
}

impl RelayTls {
    /// The OS trust store plus every certificate in `extra_ca_pem` (PEM), if given.
    pub fn new(extra_ca_pem: Option<&[u8]>) -> Result<Self, RelayCaError> {
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        if !native.errors.is_empty() {
            tracing::debug!(
                errors = native.errors.len(),
                "some OS certificates unreadable"
            );
        }
        // Unparseable OS certificates are skipped: one bad file must not disable TLS.
        let (added, skipped) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(added, skipped, "OS trust store loaded");
        if let Some(pem) = extra_ca_pem {
            for cert in parse_ca_pem(pem)? {
                roots.add(cert).map_err(|_| RelayCaError::Unusable)?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|_| RelayCaError::Unusable)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self(Arc::new(config)))
    }
}

/// The certificates of a PEM CA file (at least one).
pub fn parse_ca_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, RelayCaError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| RelayCaError::NotPem)?;
    if certs.is_empty() {
        return Err(RelayCaError::NotPem);
    }
    Ok(certs)
}

/// A byte stream to the relay: plain TCP or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Opens TCP and, for wss://, TLS to `host` (`name:port`).
async fn dial(host: &str, tls: Option<&RelayTls>) -> Result<Box<dyn Io>, ConnectError> {
    let tcp = TcpStream::connect(host)
        .await
        .map_err(|_| ConnectError::Unreachable)?;
    // Small request/response frames: do not let Nagle delay them.
    let _ = tcp.set_nodelay(true);
    let Some(tls) = tls else {
        return Ok(Box::new(tcp));
    };
    let (name, _) = host.rsplit_once(':').ok_or(ConnectError::InvalidUrl)?;
    let name = name.trim_start_matches('[').trim_end_matches(']');
    let server = ServerName::try_from(name.to_owned()).map_err(|_| ConnectError::InvalidUrl)?;
    match TlsConnector::from(tls.0.clone()).connect(server, tcp).await {
        Ok(stream) => Ok(Box::new(stream)),
        Err(e) => Err(
            match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                Some(
                    rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented,
                ) => ConnectError::UntrustedCertificate,
                Some(_) => ConnectError::Tls,
                None => ConnectError::Unreachable,
            },
        ),
    }
}

impl RelayConnection {
    async fn open(
        url: &str,
        opts: &ConnectOptions,
    ) -> Result<(Self, mpsc::UnboundedReceiver<Push>, String), ConnectError> {
        let timeout = opts.timeout;
        let (ws_url, host) = parse_relay_url(url)?;
        let default_tls;
        let tls = match opts.tls.as_ref() {
            _ if !ws_url.starts_with("wss://") => None,
            Some(t) => Some(t),
            None => {
                default_tls = RelayTls::new(None).map_err(|_| ConnectError::Tls)?;
                Some(&default_tls)
            }
        };
        let (ws, _) = tokio::time::timeout(timeout, async {
            let stream = dial(&host, tls).await?;
            // A frame the protocol cannot hold is refused before it is buffered, whoever
            // sends it (tungstenite's own default is 64 MiB).
            let limits = WebSocketConfig::default()
                .max_message_size(Some(MAX_FRAME_LEN))
                .max_frame_size(Some(MAX_FRAME_LEN));
            tokio_tungstenite::client_async_with_config(ws_url, stream, Some(limits))
                .await
                .map_err(|_| ConnectError::Unreachable)
        })
        .await
        .map_err(|_| ConnectError::Timeout)??;
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<Message>();
        let (push_tx, push_rx) = mpsc::unbounded_channel();
        let pending: Pending = Arc::new(Mutex::new(Some(HashMap::new())));
        // A zero period would make `interval` panic.
        let keepalive = opts.keepalive.max(Duration::from_millis(10));
        let writer = tokio::spawn(async move {
            let mut ping =
                tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
            ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let m = tokio::select! {
                    m = out_rx.recv() => match m {
                        Some(m) => m,
                        None => break,
                    },
                    _ = ping.tick() => Message::Ping(Default::default()),
                };
                if sink.send(m).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let reader_pending = pending.clone();
        let silence_limit = keepalive.saturating_mul(5) / 2;
        let reader = tokio::spawn(async move {
            loop {
                let msg = match tokio::time::timeout(silence_limit, stream.next()).await {
                    Ok(Some(Ok(msg))) => msg,
                    Ok(_) => break,
                    Err(_) => {
                        tracing::info!(
                            "relay silent past the keep-alive limit; connection dropped"
                        );
                        break;
                    }
                };
                let Message::Binary(bytes) = msg else {
                    if matches!(msg, Message::Close(_)) {
                        break;
                    }
                    continue;
                };
                match Frame::decode(&bytes) {
                    Ok(Frame::Response { id, result, .. }) => {
                        let tx = reader_pending
                            .lock()
                            .await
                            .as_mut()
                            .and_then(|p| p.remove(&id));
                        if let Some(tx) = tx {
                            let _ = tx.send(result.map_err(|e| (e.code, e.detail)));
                        }
                    }
                    Ok(Frame::Push(p)) => {
                        let _ = push_tx.send(p);
                    }
                    Ok(_) => tracing::warn!("relay sent an unexpected frame kind"),
                    Err(e) => tracing::warn!(error = %e, "undecodable frame from relay"),
                }
            }
            // Dropping the pending senders fails every outstanding request with `Closed`.
            *reader_pending.lock().await = None;
        });
        let conn = Self {
            out,
            pending,
            next_id: AtomicU64::new(1),
            timeout,
            reader,
            writer,
        };
        Ok((conn, push_rx, host))
    }

    /// Opens an unauthenticated connection (sealed-sender sends, bundle fetches, lookups).
    /// `opts` gives the timeouts, the keep-alive and, for wss://, the trusted certificates.
    pub async fn anonymous(url: &str, opts: &ConnectOptions) -> Result<Self, ConnectError> {
        let (conn, _pushes, _) = Self::open(url, opts).await?;
        Ok(conn)
    }

    /// Opens a connection and authenticates as `device` of `identity`. Returns the connection
    /// and its pushes (queued envelopes follow immediately, then `QueueDrained`).
    pub async fn authenticated(
        url: &str,
        identity: &IdentityKeyPair,
        device: u32,
        opts: &ConnectOptions,
    ) -> Result<(Self, mpsc::UnboundedReceiver<Push>), ConnectError> {
        let timeout = opts.timeout;
        let (conn, mut pushes, host) = Self::open(url, opts).await?;
        let challenge = loop {
            match tokio::time::timeout(timeout, pushes.recv()).await {
                Err(_) => return Err(ConnectError::Timeout),
                Ok(None) => return Err(ConnectError::Closed),
                Ok(Some(Push::Challenge { challenge })) => break challenge,
                Ok(Some(_)) => {}
            }
        };
        let stored = identity.to_bytes();
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&stored[1..]);
        let signing = SigningKey::from_bytes(&seed);
        let signature = signing.sign(&auth_message(&challenge, &host)).to_bytes();
        let request = Request::Authenticate {
            identity_key: identity.public().account_id().0,
            device_id: device,
            relay_host: host,
            signature,
        };
        match conn.request(request).await {
            Ok(_) => Ok((conn, pushes)),
            Err(RequestError::Relay { code, .. }) => Err(ConnectError::Refused(code)),
            Err(RequestError::Timeout) => Err(ConnectError::Timeout),
            Err(_) => Err(ConnectError::Closed),
        }
    }

    /// Sends a request and waits (at most the connection's timeout) for its response.
    pub async fn request(&self, request: Request) -> Result<Response, RequestError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        match self.pending.lock().await.as_mut() {
            Some(p) => p.insert(id, tx),
            None => return Err(RequestError::Closed),
        };
        let frame = match (Frame::Request { id, request }).encode() {
            Ok(frame) => frame,
            Err(e) => {
                if let Some(p) = self.pending.lock().await.as_mut() {
                    p.remove(&id);
                }
                return Err(RequestError::Encode(e));
            }
        };
        if self.out.send(Message::Binary(frame.into())).is_err() {
            if let Some(p) = self.pending.lock().await.as_mut() {
                p.remove(&id);
            }
            return Err(RequestError::Closed);
        }
        match tokio::time::timeout(self.timeout, rx).await {
            Err(_) => {
                if let Some(p) = self.pending.lock().await.as_mut() {
                    p.remove(&id);
                }
                Err(RequestError::Timeout)
            }
            Ok(Err(_)) => Err(RequestError::Closed),
            Ok(Ok(Ok(r))) => Ok(r),
            Ok(Ok(Err((code, detail)))) => Err(RequestError::Relay { code, detail }),
        }
    }

    /// Acknowledges an envelope push. Call only after the message is durably processed.
    pub fn ack(&self, message_id: u64) -> Result<(), RequestError> {
        let frame = Frame::PushAck { message_id }
            .encode()
            .map_err(RequestError::Encode)?;
        self.out
            .send(Message::Binary(frame.into()))
            .map_err(|_| RequestError::Closed)
    }

    /// Whether the connection's reader is still running.
    pub fn is_open(&self) -> bool {
        !self.reader.is_finished()
    }
}

impl Drop for RelayConnection {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

/// Exponential backoff with full jitter: attempt `n` waits a uniformly random time in
/// `[0, min(max, base * 2^n)]`.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff starting at `base` and capped at `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            attempt: 0,
        }
    }

    /// The next delay (and advances the attempt counter).
    pub fn next_delay(&mut self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(16)).unwrap_or(u32::MAX);
        let cap = self.base.saturating_mul(factor).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let millis = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(OsRng.next_u64() % millis.saturating_add(1))
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Retries `connect` with `backoff` until it succeeds or `attempts` tries failed; an
/// authentication refusal is not retried.
pub async fn with_backoff<T, F, Fut>(
    mut backoff: Backoff,
    attempts: u32,
    mut connect: F,
) -> Result<T, ConnectError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ConnectError>>,
{
    let mut last = ConnectError::Unreachable;
    for _ in 0..attempts.max(1) {
        match connect().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_permanent() => return Err(e),
            Err(e) => last = e,
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let (dial, host) = parse_relay_url("ws://127.0.0.1:7447").unwrap();
        assert_eq!(dial, "ws://127.0.0.1:7447/v1/websocket");
        assert_eq!(host, "127.0.0.1:7447");
        let (dial, host) = parse_relay_url("wss://relay.example:443/v1/websocket").unwrap();
        assert_eq!(dial, "wss://relay.example:443/v1/websocket");
        assert_eq!(host, "relay.example:443");
        assert!(parse_relay_url("http://x:1").is_err());
        assert!(parse_relay_url("ws://nohost").is_err());
        assert!(parse_relay_url("wss://:443").is_err());
        assert!(parse_relay_url("ws://x:notaport").is_err());
    }

    #[tokio::test]
    async fn unreachable_relay_is_a_typed_error_after_retries() {
        // Bind then drop a listener to get a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("ws://127.0.0.1:{port}");
        let backoff = Backoff::new(Duration::from_millis(1), Duration::from_millis(5));
        let opts = ConnectOptions {
            timeout: Duration::from_secs(2),
            ..ConnectOptions::default()
        };
        let mut tries = 0;
        let err = with_backoff(backoff, 3, || {
            tries += 1;
            RelayConnection::anonymous(&url, &opts)
        })
        .await
        .unwrap_err();
        assert!(matches!(err, ConnectError::Unreachable), "{err:?}");
        assert_eq!(tries, 3);
        let err = RelayConnection::anonymous("https://x:1", &opts)
            .await
            .unwrap_err();
        assert!(matches!(err, ConnectError::InvalidUrl));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        for _ in 0..50 {
            assert!(b.next_delay() <= Duration::from_secs(1));
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
