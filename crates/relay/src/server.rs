//! HTTP/WebSocket server: accept loop, routes, and the per-connection protocol state machine.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::{Message, WebSocket};
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::get;
use ed25519_dalek::{Signature, VerifyingKey};
use futures_util::{SinkExt, StreamExt};
use governor::{DefaultDirectRateLimiter, RateLimiter};
use rand_core::{OsRng, RngCore};
use sotto_relay_wire::{
    Address, CHALLENGE_LEN, DecodeError, ErrorCode, ErrorResponse, Frame, FrameKind, MAX_FRAME_LEN,
    Push, Request, Response, auth_message, peek_header,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::hub::{Hub, HubEvent};
use crate::limits::{Action, ConnLimiter, ConnPermit, LimitKey, Limits};
use crate::metrics::Metrics;
use crate::now_ms;
use crate::storage::{
    BundleError, ChangeError, ClaimError, EnqueueError, OnCommit, OneTimeKind, ReleaseError,
    Storage, StorageError, UploadError,
};

/// The WebSocket endpoint path.
pub const WS_PATH: &str = "/v1/websocket";
/// Envelopes pushed per mailbox query.
const PUSH_BATCH: u32 = 64;
/// Push acks of one connection being committed at once; beyond this the connection waits.
const MAX_ACKS_IN_FLIGHT: usize = 256;
/// Most envelopes pushed from memory and not yet acknowledged per connection; beyond this the
/// connection reads its mailbox instead (bounded memory for a recipient that does not ack).
const MAX_AHEAD: usize = 256;
/// Largest envelope pushed from memory; larger ones are read from the mailbox, so a recipient
/// connection's event queue holds at most 64 × 16 KiB of envelope copies.
const MAX_MEMORY_PUSH: usize = 16 * 1024;
/// Fallback mailbox poll for authenticated connections.
const POLL_INTERVAL: Duration = Duration::from_secs(30);

/// Errors that stop the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Accepting connections failed.
    #[error("accept failed: {0}")]
    Accept(#[from] std::io::Error),
    /// The TLS configuration is unusable.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

struct AppState<S> {
    storage: Arc<S>,
    config: Config,
    public_hosts: Vec<String>,
    hub: Hub,
    limits: Limits,
    metrics: Metrics,
    conns: Arc<ConnLimiter>,
}

/// Builds the accepted host strings from the configuration and the bound address.
#[must_use]
pub fn public_hosts(config: &Config, bound: SocketAddr) -> Vec<String> {
    if !config.public_hosts.is_empty() {
        return config.public_hosts.clone();
    }
    let port = bound.port();
    let mut hosts = vec![bound.to_string(), format!("localhost:{port}")];
    if bound.ip().is_loopback() || bound.ip().is_unspecified() {
        hosts.push(format!("127.0.0.1:{port}"));
        hosts.push(format!("[::1]:{port}"));
    }
    hosts.dedup();
    hosts
}

/// Serves the relay on `listener` until `shutdown` completes.
pub async fn serve<S: Storage>(
    config: Config,
    storage: S,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let bound = listener.local_addr()?;
    let tls = match &config.tls {
        Some((cert, key)) => Some(crate::tls::acceptor(cert, key)?),
        None => None,
    };
    let state = Arc::new(AppState {
        storage: Arc::new(storage),
        public_hosts: public_hosts(&config, bound),
        hub: Hub::default(),
        limits: Limits::new(&config),
        metrics: Metrics::default(),
        conns: Arc::new(ConnLimiter::new(
            config.max_connections,
            config.max_connections_per_ip,
        )),
        config,
    });
    spawn_housekeeping(state.clone());
    if let Some(mut wakeups) = state.storage.take_remote_wakeups() {
        let state = state.clone();
        tokio::spawn(async move {
            while let Some(addr) = wakeups.recv().await {
                state.hub.notify(addr, HubEvent::Wake);
            }
        });
    }
    let router = Router::new()
        .route(WS_PATH, get(ws_handler::<S>))
        .route("/health", get(health::<S>))
        .route("/metrics", get(metrics::<S>))
        .with_state(state.clone());
    let handshake = Duration::from_secs(state.config.handshake_timeout_secs);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Transient (e.g. EMFILE): back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let svc = tower::ServiceExt::map_request(
                router,
                move |mut req: axum::http::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    req
                },
            );
            let svc = hyper_util::service::TowerToHyperService::new(svc);
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(handshake);
            let result = match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                        Ok(Ok(tls_stream)) => {
                            builder
                                .serve_connection(hyper_util::rt::TokioIo::new(tls_stream), svc)
                                .with_upgrades()
                                .await
                        }
                        _ => return,
                    }
                }
                None => {
                    builder
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .with_upgrades()
                        .await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "http connection ended with error");
            }
        });
    }
    Ok(())
}

fn spawn_housekeeping<S: Storage>(state: Arc<AppState<S>>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        loop {
            tick.tick().await;
            match state.storage.purge_expired(now_ms()).await {
                Ok(n) => {
                    state
                        .metrics
                        .envelopes_expired_total
                        .fetch_add(n, Ordering::Relaxed);
                }
                Err(e) => tracing::error!(error = %e, "purging expired envelopes failed"),
            }
            state.limits.shrink();
        }
    });
}

async fn health<S: Storage>(State(state): State<Arc<AppState<S>>>) -> HttpResponse {
    match state.storage.health().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable\n").into_response(),
    }
}

async fn metrics<S: Storage>(
    State(state): State<Arc<AppState<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> HttpResponse {
    // Aggregate counters only, but still not for the whole internet.
    if !peer.ip().is_loopback() {
        return StatusCode::FORBIDDEN.into_response();
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn ws_handler<S: Storage>(
    ws: WebSocketUpgrade,
    State(state): State<Arc<AppState<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> HttpResponse {
    let Some(permit) = state.conns.try_acquire(peer.ip()) else {
        Metrics::inc(&state.metrics.connections_rejected_total);
        return (StatusCode::SERVICE_UNAVAILABLE, "too many connections\n").into_response();
    };
    // Small preallocated read buffer: most connections are idle (default would be 128 KiB).
    ws.max_message_size(MAX_FRAME_LEN)
        .max_frame_size(MAX_FRAME_LEN)
        .read_buffer_size(8 * 1024)
        .write_buffer_size(8 * 1024)
        .on_upgrade(move |socket| async move {
            let mut conn = Connection::new(state, peer.ip(), permit);
            conn.run(socket).await;
        })
}

/// Outcome of handling one frame.
enum Next {
    Continue,
    Close,
}

struct Connection<S: Storage> {
    state: Arc<AppState<S>>,
    ip: IpAddr,
    _permit: ConnPermit,
    challenge: [u8; CHALLENGE_LEN],
    challenge_issued: Instant,
    challenge_used: bool,
    auth: Option<Authed>,
    frames: DefaultDirectRateLimiter,
    outbox: Vec<Message>,
    post_auth: bool,
    /// A full batch was pushed: more envelopes may be waiting.
    more_backlog: bool,
    /// `QueueDrained` is owed once the backlog is pushed.
    drained_pending: bool,
    /// The account was deleted: close once the response is flushed.
    closing: bool,
    /// Push acks handed to storage and not yet known to be committed, oldest first. Awaited
    /// before the next request is handled, so a response (e.g. to `Ping`) still proves every
    /// earlier ack was processed, while a burst of acks does not wait for one commit each.
    acks: std::collections::VecDeque<tokio::task::JoinHandle<()>>,
}

struct Authed {
    addr: Address,
    hub_id: u64,
    events: mpsc::Receiver<HubEvent>,
    /// Set by the hub when an event was dropped on a full queue: read the mailbox.
    missed: Arc<std::sync::atomic::AtomicBool>,
    /// Every envelope of the mailbox with an id up to this one has been pushed on this
    /// connection (or deleted).
    cursor: u64,
    /// Ids above `cursor` pushed from memory ([`HubEvent::Deliver`]) and not acknowledged on
    /// this connection: a mailbox read skips them instead of pushing them twice.
    ahead: std::collections::BTreeSet<u64>,
}

impl<S: Storage> Connection<S> {
    fn new(state: Arc<AppState<S>>, ip: IpAddr, permit: ConnPermit) -> Self {
        let mut challenge = [0u8; CHALLENGE_LEN];
        OsRng.fill_bytes(&mut challenge);
        let frames = RateLimiter::direct(state.limits.frame_quota);
        Self {
            state,
            ip,
            _permit: permit,
            challenge,
            challenge_issued: Instant::now(),
            challenge_used: false,
            auth: None,
            frames,
            outbox: Vec::new(),
            post_auth: false,
            more_backlog: false,
            drained_pending: false,
            closing: false,
            acks: std::collections::VecDeque::new(),
        }
    }

    fn ip_for_logs(&self) -> String {
        if self.state.config.log_client_ips {
            self.ip.to_string()
        } else {
            "-".into()
        }
    }

    async fn run(&mut self, socket: WebSocket) {
        let state = self.state.clone();
        let m = &state.metrics;
        Metrics::inc(&m.connections_open);
        Metrics::inc(&m.connections_total);
        tracing::debug!(ip = %self.ip_for_logs(), "connection opened");
        let (mut sink, mut stream) = socket.split();
        let idle = Duration::from_secs(self.state.config.idle_timeout_secs);
        self.push(Push::Challenge {
            challenge: self.challenge,
        });
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Flush everything queued by the last step.
            let mut failed = false;
            for msg in self.outbox.drain(..) {
                if sink.feed(msg).await.is_err() {
                    failed = true;
                    break;
                }
            }
            if failed || sink.flush().await.is_err() {
                break;
            }
            let next = tokio::select! {
                incoming = tokio::time::timeout(idle, stream.next()) => match incoming {
                    Err(_) => {
                        tracing::debug!("idle timeout");
                        Next::Close
                    }
                    Ok(None | Some(Err(_))) => Next::Close,
                    Ok(Some(Ok(msg))) => self.on_message(msg).await,
                },
                event = recv_event(&mut self.auth) => match event {
                    Some(event) => self.on_event(event).await,
                    None => Next::Close,
                },
                _ = poll.tick(), if self.auth.is_some() => self.deliver().await,
                () = std::future::ready(()), if self.more_backlog => self.deliver().await,
            };
            if matches!(next, Next::Close) {
                break;
            }
        }
        // Best effort: a response owed before closing (e.g. to DeleteAccount) still goes out.
        for msg in self.outbox.drain(..) {
            if sink.feed(msg).await.is_err() {
                break;
            }
        }
        let _ = sink.flush().await;
        let _ = sink.close().await;
        if let Some(a) = &self.auth {
            if self.state.hub.unregister(a.addr, a.hub_id)
                && let Err(e) = self.state.storage.set_presence(a.addr, false).await
            {
                tracing::warn!(error = %e, "clearing presence failed");
            }
            Metrics::dec(&m.authenticated_open);
        }
        Metrics::dec(&m.connections_open);
        tracing::debug!("connection closed");
    }

    fn push(&mut self, push: Push) {
        // Pushes carry only what the relay accepted within the same limits, so this cannot
        // fail; if it ever did, the push is dropped (an envelope stays queued for next time).
        match Frame::Push(push).encode() {
            Ok(frame) => self.outbox.push(Message::Binary(frame.into())),
            Err(e) => tracing::error!(error = %e, "push not encodable; dropped"),
        }
    }

    fn respond(&mut self, id: u64, op: u16, result: Result<Response, ErrorResponse>) {
        let frame = Frame::Response { id, op, result }
            .encode()
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "response not encodable; answering Internal");
                let internal = ErrorResponse::new(ErrorCode::Internal, 0, "");
                Frame::Response {
                    id,
                    op,
                    result: Err(internal),
                }
                .encode()
                .unwrap_or_default()
            });
        self.outbox.push(Message::Binary(frame.into()));
    }

    async fn on_message(&mut self, msg: Message) -> Next {
        let bytes = match msg {
            Message::Binary(b) => b,
            Message::Text(_) => {
                Metrics::inc(&self.state.metrics.frames_malformed_total);
                let e = ErrorResponse::new(ErrorCode::Malformed, 0, "text messages not accepted");
                self.respond(0, 0, Err(e));
                return Next::Continue;
            }
            Message::Close(_) => return Next::Close,
            Message::Ping(_) | Message::Pong(_) => return Next::Continue,
        };
        Metrics::inc(&self.state.metrics.frames_in_total);
        let header = peek_header(&bytes);
        if self.frames.check().is_err() {
            Metrics::inc(&self.state.metrics.rate_limited_total);
            if let Some(h) = header.filter(|h| h.kind == FrameKind::Request as u8) {
                let e = ErrorResponse::new(ErrorCode::RateLimited, 1000, "too many frames");
                self.respond(h.id, h.op, Err(e));
            }
            return Next::Continue;
        }
        match Frame::decode(&bytes) {
            Ok(Frame::Request { id, request }) => {
                self.settle_acks(0).await;
                let op = request.op();
                let result = self.on_request(request).await;
                if let Err(e) = &result {
                    tracing::debug!(op = ?op, code = ?e.code, "request failed");
                }
                self.respond(id, op as u16, result);
                if self.closing {
                    return Next::Close;
                }
                if std::mem::take(&mut self.post_auth) {
                    self.after_auth().await;
                }
                Next::Continue
            }
            Ok(Frame::PushAck { message_id }) => {
                self.on_ack(message_id).await;
                Next::Continue
            }
            Ok(Frame::Response { .. } | Frame::Push(_)) => {
                Metrics::inc(&self.state.metrics.frames_malformed_total);
                let e = ErrorResponse::new(
                    ErrorCode::Malformed,
                    0,
                    "clients send requests and push acks only",
                );
                let (id, op) = header.map(|h| (h.id, h.op)).unwrap_or((0, 0));
                self.respond(id, op, Err(e));
                Next::Continue
            }
            Err(err) => {
                Metrics::inc(&self.state.metrics.frames_malformed_total);
                tracing::debug!(error = %err, "malformed frame");
                let (id, op) = header.map(|h| (h.id, h.op)).unwrap_or((0, 0));
                self.respond(id, op, Err(decode_error(&err)));
                Next::Continue
            }
        }
    }

    async fn on_event(&mut self, event: HubEvent) -> Next {
        let next = match event {
            HubEvent::Wake => self.deliver().await,
            HubEvent::Deliver(d) => self.deliver_one(d).await,
            HubEvent::Push(p) => {
                self.push(p);
                Next::Continue
            }
            HubEvent::Close => Next::Close,
        };
        if matches!(next, Next::Continue)
            && self
                .auth
                .as_ref()
                .is_some_and(|a| a.missed.swap(false, Ordering::Acquire))
        {
            return self.deliver().await;
        }
        next
    }

    /// Pushes an envelope just committed to this device's mailbox straight from memory,
    /// unless it was pushed already, a backlog is still being read (which will push it in
    /// order), or too many memory pushes are unacknowledged (then the mailbox is read).
    async fn deliver_one(&mut self, d: sotto_relay_wire::Delivery) -> Next {
        let backlog = self.more_backlog;
        let Some(a) = &mut self.auth else {
            return Next::Continue;
        };
        if d.message_id <= a.cursor || a.ahead.contains(&d.message_id) || backlog {
            return Next::Continue;
        }
        if a.ahead.len() >= MAX_AHEAD {
            return self.deliver().await;
        }
        a.ahead.insert(d.message_id);
        Metrics::inc(&self.state.metrics.envelopes_pushed_total);
        self.push(Push::Envelope(d));
        Next::Continue
    }

    /// Hands the ack to storage without waiting for its commit (see `acks`).
    async fn on_ack(&mut self, message_id: u64) {
        let Some(a) = &mut self.auth else { return };
        a.ahead.remove(&message_id);
        let (state, addr) = (self.state.clone(), a.addr);
        self.settle_acks(MAX_ACKS_IN_FLIGHT - 1).await;
        self.acks.push_back(tokio::spawn(async move {
            match state.storage.ack(addr, message_id).await {
                Ok(true) => Metrics::inc(&state.metrics.envelopes_acked_total),
                Ok(false) => {}
                Err(e) => {
                    Metrics::inc(&state.metrics.storage_errors_total);
                    tracing::error!(error = %e, "ack failed");
                }
            }
        }));
    }

    /// Waits until at most `keep` acks are in flight (finished ones are dropped first).
    async fn settle_acks(&mut self, keep: usize) {
        while self
            .acks
            .front()
            .is_some_and(tokio::task::JoinHandle::is_finished)
        {
            self.acks.pop_front();
        }
        while self.acks.len() > keep {
            if let Some(h) = self.acks.pop_front() {
                let _ = h.await;
            }
        }
    }

    /// Pushes the next batch of unexpired envelopes above the cursor. A full batch sets
    /// `more_backlog` so the run loop fetches the next one after flushing (bounded memory);
    /// the first short batch after authentication is followed by `QueueDrained`.
    async fn deliver(&mut self) -> Next {
        self.more_backlog = false;
        if self.auth.is_none() {
            return Next::Continue;
        }
        // Acked envelopes are deleted before the read, so none is pushed again.
        self.settle_acks(0).await;
        let Some(a) = &self.auth else {
            return Next::Continue;
        };
        let (addr, cursor) = (a.addr, a.cursor);
        let batch = match self
            .state
            .storage
            .pending(addr, cursor, PUSH_BATCH, now_ms())
            .await
        {
            Ok(b) => b,
            Err(e) => {
                Metrics::inc(&self.state.metrics.storage_errors_total);
                tracing::error!(error = %e, "reading mailbox failed");
                return Next::Continue;
            }
        };
        let full = batch.len() == PUSH_BATCH as usize;
        for d in batch {
            if let Some(a) = &mut self.auth {
                a.cursor = a.cursor.max(d.message_id);
                if a.ahead.remove(&d.message_id) {
                    continue; // pushed from memory already
                }
            }
            Metrics::inc(&self.state.metrics.envelopes_pushed_total);
            self.push(Push::Envelope(d));
        }
        if let Some(a) = &mut self.auth {
            if full {
                let cursor = a.cursor;
                a.ahead.retain(|id| *id > cursor);
            } else {
                // Everything committed above the old cursor was read: what is left in `ahead`
                // expired or was deleted.
                a.ahead.clear();
            }
        }
        if full {
            self.more_backlog = true;
        } else if std::mem::take(&mut self.drained_pending) {
            self.push(Push::QueueDrained);
        }
        Next::Continue
    }

    fn limit(&self, action: Action) -> Result<(), ErrorResponse> {
        let mut keys = vec![LimitKey::Ip(self.ip)];
        if let Some(a) = &self.auth {
            keys.push(LimitKey::Account(a.addr.account));
        }
        self.state.limits.check(action, &keys).map_err(|wait| {
            Metrics::inc(&self.state.metrics.rate_limited_total);
            let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
            ErrorResponse::new(ErrorCode::RateLimited, ms, "rate limited")
        })
    }

    fn authed(&self) -> Result<Address, ErrorResponse> {
        self.auth
            .as_ref()
            .map(|a| a.addr)
            .ok_or_else(|| ErrorResponse::new(ErrorCode::AuthRequired, 0, "authenticate first"))
    }

    async fn on_request(&mut self, request: Request) -> Result<Response, ErrorResponse> {
        if request.op().requires_auth() {
            self.authed()?;
        }
        let storage = self.state.storage.clone();
        match request {
            Request::Authenticate {
                identity_key,
                device_id,
                relay_host,
                signature,
            } => {
                self.authenticate(identity_key, device_id, &relay_host, &signature)
                    .await
            }
            Request::Ping => Ok(Response::Ok),
            Request::DeleteAccount => {
                let addr = self.authed()?;
                self.ok(storage.delete_account(addr.account, now_ms()).await)?;
                Metrics::inc(&self.state.metrics.accounts_deleted_total);
                tracing::info!("account deleted");
                self.closing = true;
                self.state.hub.close_account(addr.account);
                Ok(Response::Ok)
            }
            Request::UsernameClaim {
                username,
                pin_verifier,
            } => {
                let addr = self.authed()?;
                check_username(&username)?;
                if pin_verifier.is_some() {
                    self.limit(Action::Pin)?;
                }
                storage
                    .claim_username(addr.account, username, pin_verifier, now_ms())
                    .await
                    .map(|()| Response::Ok)
                    .map_err(|e| self.claim_error(e))
            }
            Request::UsernameLookup { username } => {
                self.limit(Action::Lookup)?;
                check_username(&username)?;
                match storage.lookup_username(username).await {
                    Ok(Some(account)) => Ok(Response::Account { account }),
                    Ok(None) => Err(ErrorResponse::new(
                        ErrorCode::NotFound,
                        0,
                        "no such username",
                    )),
                    Err(e) => Err(self.storage_error(&e)),
                }
            }
            Request::UsernameChange { username } => {
                let addr = self.authed()?;
                check_username(&username)?;
                storage
                    .change_username(addr.account, username, now_ms())
                    .await
                    .map(|()| Response::Ok)
                    .map_err(|e| match e {
                        ChangeError::Taken => {
                            ErrorResponse::new(ErrorCode::UsernameTaken, 0, "username taken")
                        }
                        ChangeError::NoUsername => {
                            ErrorResponse::new(ErrorCode::NoUsername, 0, "no username to change")
                        }
                        ChangeError::Storage(e) => self.storage_error(&e),
                    })
            }
            Request::UsernameRelease => {
                let addr = self.authed()?;
                storage
                    .release_username(addr.account)
                    .await
                    .map(|()| Response::Ok)
                    .map_err(|e| match e {
                        ReleaseError::NoUsername => {
                            ErrorResponse::new(ErrorCode::NoUsername, 0, "no username")
                        }
                        ReleaseError::Storage(e) => self.storage_error(&e),
                    })
            }
            Request::RegLockSet { pin_verifier } => {
                let addr = self.authed()?;
                self.ok(storage.set_reglock(addr.account, pin_verifier).await)
            }
            Request::RegLockClear => {
                let addr = self.authed()?;
                self.ok(storage.clear_reglock(addr.account).await)
            }
            Request::UploadSignedPrekey(key) => {
                let addr = self.authed()?;
                self.ok(storage.put_signed_prekey(addr, key).await)
            }
            Request::UploadLastResortKemPrekey(key) => {
                let addr = self.authed()?;
                self.ok(storage.put_last_resort_kem(addr, key).await)
            }
            Request::UploadOneTimePrekeys(keys) => self.upload(OneTimeKind::X25519, keys).await,
            Request::UploadOneTimeKemPrekeys(keys) => self.upload(OneTimeKind::Kem, keys).await,
            Request::PrekeyCount => {
                let addr = self.authed()?;
                match storage.prekey_counts(addr).await {
                    Ok(c) => Ok(Response::PrekeyCount {
                        one_time: c.one_time,
                        one_time_kem: c.one_time_kem,
                    }),
                    Err(e) => Err(self.storage_error(&e)),
                }
            }
            Request::FetchBundle { address } => {
                self.limit(Action::Bundle)?;
                match storage.fetch_bundle(address).await {
                    Ok((bundle, left)) => {
                        Metrics::inc(&self.state.metrics.bundles_fetched_total);
                        let low = self.state.config.prekey_low_watermark;
                        let consumed = bundle.one_time_prekey.is_some()
                            || bundle.kem_prekey.as_ref().is_some_and(|k| !k.last_resort);
                        if consumed && (left.one_time < low || left.one_time_kem < low) {
                            self.state.hub.notify(
                                address,
                                HubEvent::Push(Push::PrekeysLow {
                                    one_time: left.one_time,
                                    one_time_kem: left.one_time_kem,
                                }),
                            );
                        }
                        Ok(Response::Bundle(bundle))
                    }
                    Err(BundleError::NotFound) => Err(ErrorResponse::new(
                        ErrorCode::NotFound,
                        0,
                        "no bundle for this device",
                    )),
                    Err(BundleError::Storage(e)) => Err(self.storage_error(&e)),
                }
            }
            Request::SendEnvelope {
                recipient,
                envelope,
            } => {
                self.limit(Action::Send)?;
                let max = self.state.config.max_envelope_bytes;
                if envelope.is_empty() || envelope.len() > max {
                    return Err(ErrorResponse::new(
                        ErrorCode::EnvelopeTooLarge,
                        max as u64,
                        "envelope empty or too large",
                    ));
                }
                // A recipient connected to this node gets the envelope from memory once it is
                // committed (the storage writer runs the hook in commit order, so pushes stay
                // in id order); otherwise (or if large) a wake-up reads the mailbox.
                let copy = (envelope.len() <= MAX_MEMORY_PUSH
                    && self.state.hub.is_local(recipient))
                .then(|| envelope.clone());
                let now = now_ms();
                let state = self.state.clone();
                let on_commit: OnCommit = Box::new(move |message_id| {
                    let event = match copy {
                        Some(envelope) => HubEvent::Deliver(sotto_relay_wire::Delivery {
                            message_id,
                            received_at_ms: now,
                            envelope,
                        }),
                        None => HubEvent::Wake,
                    };
                    state.hub.notify(recipient, event);
                });
                match storage
                    .enqueue_then(recipient, envelope, now, on_commit)
                    .await
                {
                    Ok(_) => {
                        Metrics::inc(&self.state.metrics.envelopes_accepted_total);
                        Ok(Response::Ok)
                    }
                    Err(EnqueueError::UnknownRecipient) => Err(ErrorResponse::new(
                        ErrorCode::UnknownRecipient,
                        0,
                        "unknown recipient device",
                    )),
                    Err(EnqueueError::MailboxFull { cap }) => Err(ErrorResponse::new(
                        ErrorCode::MailboxFull,
                        cap,
                        "recipient mailbox is full",
                    )),
                    Err(EnqueueError::Storage(e)) => Err(self.storage_error(&e)),
                }
            }
        }
    }

    fn ok(&self, r: Result<(), StorageError>) -> Result<Response, ErrorResponse> {
        r.map(|()| Response::Ok).map_err(|e| self.storage_error(&e))
    }

    fn storage_error(&self, e: &StorageError) -> ErrorResponse {
        Metrics::inc(&self.state.metrics.storage_errors_total);
        tracing::error!(error = %e, "storage operation failed");
        ErrorResponse::new(ErrorCode::Internal, 0, "internal error")
    }

    fn claim_error(&self, e: ClaimError) -> ErrorResponse {
        match e {
            ClaimError::Taken => ErrorResponse::new(ErrorCode::UsernameTaken, 0, "username taken"),
            ClaimError::AlreadyHasUsername => ErrorResponse::new(
                ErrorCode::AlreadyHasUsername,
                0,
                "account already has a username",
            ),
            ClaimError::PinRequired => {
                ErrorResponse::new(ErrorCode::PinRequired, 0, "registration lock: PIN required")
            }
            ClaimError::PinIncorrect { remaining } => {
                ErrorResponse::new(ErrorCode::PinIncorrect, u64::from(remaining), "wrong PIN")
            }
            ClaimError::PinLocked { retry_after_ms } => {
                ErrorResponse::new(ErrorCode::PinLocked, retry_after_ms, "too many wrong PINs")
            }
            ClaimError::Storage(e) => self.storage_error(&e),
        }
    }

    async fn upload(
        &mut self,
        kind: OneTimeKind,
        keys: Vec<sotto_relay_wire::Prekey>,
    ) -> Result<Response, ErrorResponse> {
        let addr = self.authed()?;
        match self
            .state
            .storage
            .add_one_time_prekeys(addr, kind, keys)
            .await
        {
            Ok(_) => Ok(Response::Ok),
            Err(UploadError::TooMany { cap }) => Err(ErrorResponse::new(
                ErrorCode::TooManyPrekeys,
                u64::from(cap),
                "too many one-time prekeys",
            )),
            Err(UploadError::Storage(e)) => Err(self.storage_error(&e)),
        }
    }

    async fn authenticate(
        &mut self,
        identity_key: [u8; 32],
        device_id: u32,
        relay_host: &str,
        signature: &[u8; 64],
    ) -> Result<Response, ErrorResponse> {
        let fail = |state: &AppState<S>, code, msg: &str| {
            Metrics::inc(&state.metrics.auth_failures_total);
            ErrorResponse::new(code, 0, msg)
        };
        if self.auth.is_some() {
            return Err(fail(
                &self.state,
                ErrorCode::AlreadyAuthenticated,
                "already authenticated",
            ));
        }
        // Per IP only (the connection has no identity yet); does not consume the challenge.
        self.limit(Action::Auth)?;
        if self.challenge_used {
            return Err(fail(
                &self.state,
                ErrorCode::ChallengeUsed,
                "challenge already used; reconnect",
            ));
        }
        // Any attempt consumes the challenge: no online guessing on one challenge.
        self.challenge_used = true;
        let ttl = Duration::from_secs(self.state.config.challenge_ttl_secs);
        if self.challenge_issued.elapsed() > ttl {
            return Err(fail(
                &self.state,
                ErrorCode::ChallengeExpired,
                "challenge expired; reconnect",
            ));
        }
        if !self.state.public_hosts.iter().any(|h| h == relay_host) {
            return Err(fail(
                &self.state,
                ErrorCode::WrongRelayHost,
                "signed for another relay",
            ));
        }
        let verified = VerifyingKey::from_bytes(&identity_key)
            .ok()
            .is_some_and(|key| {
                key.verify_strict(
                    &auth_message(&self.challenge, relay_host),
                    &Signature::from_bytes(signature),
                )
                .is_ok()
            });
        if !verified {
            return Err(fail(&self.state, ErrorCode::BadSignature, "bad signature"));
        }
        let addr = Address {
            account: identity_key,
            device: device_id,
        };
        if let Err(e) = self.state.storage.touch_device(addr, now_ms()).await {
            return Err(self.storage_error(&e));
        }
        let (hub_id, events, missed) = self.state.hub.register(addr);
        if let Err(e) = self.state.storage.set_presence(addr, true).await {
            // Other nodes fall back to polling for this device.
            tracing::warn!(error = %e, "recording presence failed");
        }
        self.auth = Some(Authed {
            addr,
            hub_id,
            events,
            missed,
            cursor: 0,
            ahead: std::collections::BTreeSet::new(),
        });
        Metrics::inc(&self.state.metrics.authenticated_open);
        tracing::debug!("device authenticated");
        self.post_auth = true;
        Ok(Response::Ok)
    }

    /// After the authentication response: the backlog, the drained marker, prekey stock.
    async fn after_auth(&mut self) {
        self.drained_pending = true;
        let _ = self.deliver().await;
        let Some(a) = &self.auth else { return };
        let addr = a.addr;
        let low = self.state.config.prekey_low_watermark;
        match self.state.storage.prekey_counts(addr).await {
            Ok(c) if c.one_time < low || c.one_time_kem < low => {
                self.push(Push::PrekeysLow {
                    one_time: c.one_time,
                    one_time_kem: c.one_time_kem,
                });
            }
            Ok(_) => {}
            Err(e) => {
                let _ = self.storage_error(&e);
            }
        }
    }
}

async fn recv_event(auth: &mut Option<Authed>) -> Option<HubEvent> {
    match auth {
        Some(a) => a.events.recv().await,
        None => std::future::pending().await,
    }
}

fn decode_error(err: &DecodeError) -> ErrorResponse {
    let detail = match err {
        DecodeError::FrameTooLarge { max, .. } => *max as u64,
        DecodeError::UnsupportedVersion(_) => u64::from(sotto_relay_wire::PROTOCOL_VERSION),
        _ => 0,
    };
    ErrorResponse::new(err.error_code(), detail, err.to_string())
}

/// Usernames: 3–32 characters of `a-z 0-9 _ .`, starting with a letter.
fn check_username(name: &str) -> Result<(), ErrorResponse> {
    let ok = (3..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(ErrorResponse::new(
            ErrorCode::UsernameInvalid,
            0,
            "invalid username",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_rules() {
        assert!(check_username("alice_1.x").is_ok());
        for bad in ["al", "Alice", "1abc", "a b c", "ålice", &"a".repeat(33)] {
            assert!(check_username(bad).is_err(), "{bad}");
        }
    }
}
