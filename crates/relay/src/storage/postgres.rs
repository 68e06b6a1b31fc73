//! PostgreSQL backend for several stateless relay nodes sharing one database.
//!
//! Enqueues and push acks go to one of a few batching writers (a mailbox always to the same
//! one), each on its own connection: a writer takes everything waiting and writes it with one
//! call of the `sotto_write_batch` function (one round trip, one transaction, multi-row
//! statements), then answers every caller once `COMMIT` has returned. Every other operation is
//! one transaction on one of a few pooled connections. One-time prekeys are removed with
//! `DELETE … RETURNING` on a row chosen with `FOR UPDATE SKIP LOCKED`; mailbox caps, prekey caps
//! and PIN counters lock the relevant row (`FOR UPDATE`). A `presence` table records which
//! devices are connected to some node; enqueueing for a present device issues
//! `pg_notify('sotto_relay_mail', …)` inside the transaction (delivered on commit) when the device
//! is connected to another node (the enqueueing node wakes its own connections in process), and
//! every node `LISTEN`s on a dedicated connection and wakes its local connection for that device.

use std::collections::HashMap;
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::StreamExt;
use rand_core::{OsRng, RngCore};
use sotto_relay_wire::{Address, Bundle, Delivery, KemPrekey, Prekey};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_postgres::config::SslMode;
use tokio_postgres::{
    AsyncMessage, Client, Connection, GenericClient, NoTls, Row, Statement, Transaction,
};

pub mod tls;

pub use tls::{DbTlsError, RustlsConnect};

use super::{
    AccountId, BundleError, ChangeError, ClaimError, EnqueueError, OnCommit, OneTimeKind, Policy,
    PrekeyCounts, ReleaseError, Storage, StorageError, UploadError, pin_backoff_ms,
    quarantine_until_ms, reglock_hash,
};

const DAY_MS: u64 = 24 * 60 * 60 * 1000;
/// Default number of pooled connections. Each operation other than enqueue and ack holds one
/// for its whole transaction, so this bounds those in flight.
pub const DEFAULT_POOL_SIZE: usize = 16;
const CHANNEL: &str = "sotto_relay_mail";
/// Batching writers per relay process, each on its own connection. A mailbox always goes to
/// the same writer, so its envelopes commit in id order; several writers let PostgreSQL flush
/// their commits together while each collects its next batch.
const WRITERS: usize = 4;
/// Most enqueues and acks written in one transaction.
const MAX_BATCH: usize = 512;
/// How often a node records that it is alive.
const HEARTBEAT_MS: u64 = 30_000;
/// After this long without a heartbeat a node's presence rows are deleted.
const NODE_TIMEOUT_MS: u64 = 120_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS accounts (
    account BYTEA PRIMARY KEY,
    last_seen_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    account BYTEA NOT NULL,
    device BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    PRIMARY KEY (account, device)
);
CREATE TABLE IF NOT EXISTS usernames (
    username TEXT PRIMARY KEY,
    account BYTEA NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS reglocks (
    account BYTEA PRIMARY KEY,
    salt BYTEA NOT NULL,
    hash BYTEA NOT NULL,
    failed BIGINT NOT NULL DEFAULT 0,
    window_start_ms BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS signed_prekeys (
    account BYTEA NOT NULL, device BIGINT NOT NULL, key_id BIGINT NOT NULL, body BYTEA NOT NULL,
    PRIMARY KEY (account, device)
);
CREATE TABLE IF NOT EXISTS last_resort_kem_prekeys (
    account BYTEA NOT NULL, device BIGINT NOT NULL, key_id BIGINT NOT NULL, body BYTEA NOT NULL,
    PRIMARY KEY (account, device)
);
CREATE TABLE IF NOT EXISTS one_time_prekeys (
    account BYTEA NOT NULL, device BIGINT NOT NULL, key_id BIGINT NOT NULL, body BYTEA NOT NULL,
    PRIMARY KEY (account, device, key_id)
);
CREATE TABLE IF NOT EXISTS one_time_kem_prekeys (
    account BYTEA NOT NULL, device BIGINT NOT NULL, key_id BIGINT NOT NULL, body BYTEA NOT NULL,
    PRIMARY KEY (account, device, key_id)
);
CREATE TABLE IF NOT EXISTS messages (
    id BIGSERIAL PRIMARY KEY,
    account BYTEA NOT NULL,
    device BIGINT NOT NULL,
    received_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    envelope BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_mailbox ON messages (account, device, id);
CREATE INDEX IF NOT EXISTS messages_by_expiry ON messages (expires_ms);
CREATE TABLE IF NOT EXISTS nodes (
    node BYTEA PRIMARY KEY,
    heartbeat_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS presence (
    account BYTEA NOT NULL,
    device BIGINT NOT NULL,
    node BYTEA NOT NULL,
    since_ms BIGINT NOT NULL,
    PRIMARY KEY (account, device, node)
);
CREATE TABLE IF NOT EXISTS username_quarantine (
    username TEXT PRIMARY KEY,
    claimable_after_ms BIGINT NOT NULL
);
CREATE OR REPLACE FUNCTION sotto_write_batch(
    p_ack_ids BIGINT[], p_ack_accounts BYTEA[], p_ack_devices BIGINT[],
    p_accounts BYTEA[], p_devices BIGINT[], p_received BIGINT[], p_expires BIGINT[],
    p_envelopes BYTEA[], p_cap BIGINT, p_channel TEXT, p_node BYTEA,
    OUT o_deleted BIGINT[], OUT o_outcomes BIGINT[], OUT o_ids BIGINT[])
LANGUAGE plpgsql AS $fn$
BEGIN
    o_deleted := '{}';
    o_outcomes := '{}';
    o_ids := '{}';
    IF coalesce(array_length(p_ack_ids, 1), 0) > 0 THEN
        WITH d AS (
            DELETE FROM messages m
            USING unnest(p_ack_ids, p_ack_accounts, p_ack_devices) AS u(id, account, device)
            WHERE m.id = u.id AND m.account = u.account AND m.device = u.device
            RETURNING m.id)
        SELECT coalesce(array_agg(d.id), '{}') INTO o_deleted FROM d;
    END IF;
    IF coalesce(array_length(p_accounts, 1), 0) = 0 THEN
        RETURN;
    END IF;
    -- Lock the recipients' device rows, always in the same order (no deadlock between
    -- nodes): this serialises each mailbox's enqueues across nodes, so ids are drawn after
    -- the previous enqueue committed and become visible in id order, and makes the cap exact.
    PERFORM 1 FROM devices d
        JOIN unnest(p_accounts, p_devices) AS u(account, device)
          ON d.account = u.account AND d.device = u.device
        ORDER BY d.account, d.device
        FOR UPDATE OF d;
    -- Each statement below sees what other nodes committed before the locks were granted.
    -- Outcome per enqueue, in order: 0 accepted, -1 unknown device, -2 mailbox full.
    SELECT array_agg(CASE WHEN NOT q.known THEN -1
                          WHEN q.queued + q.nth > p_cap THEN -2
                          ELSE 0 END ORDER BY q.ord)
      INTO o_outcomes
      FROM (SELECT u.ord,
                   EXISTS (SELECT 1 FROM devices d
                           WHERE d.account = u.account AND d.device = u.device) AS known,
                   (SELECT count(*) FROM messages m
                    WHERE m.account = u.account AND m.device = u.device) AS queued,
                   row_number() OVER (PARTITION BY u.account, u.device ORDER BY u.ord) AS nth
              FROM unnest(p_accounts, p_devices) WITH ORDINALITY AS u(account, device, ord)) q;
    -- Ids are drawn in arrival order: sorted, they belong to the accepted enqueues in order.
    WITH ins AS (
        INSERT INTO messages (account, device, received_ms, expires_ms, envelope)
        SELECT u.account, u.device, u.received, u.expires, u.envelope
          FROM unnest(p_accounts, p_devices, p_received, p_expires, p_envelopes)
               WITH ORDINALITY AS u(account, device, received, expires, envelope, ord)
         WHERE o_outcomes[u.ord] = 0
         ORDER BY u.ord
        RETURNING id)
    SELECT coalesce(array_agg(ins.id ORDER BY ins.id), '{}') INTO o_ids FROM ins;
    -- Delivered to every node's LISTEN connection on commit, only for devices connected to
    -- another node (each node wakes its own connections in process; a NOTIFY makes
    -- PostgreSQL serialise the commits of all notifying transactions). Identical
    -- notifications of one transaction are sent once.
    PERFORM pg_notify(p_channel, encode(u.account, 'hex') || ':' || u.device)
       FROM unnest(p_accounts, p_devices) WITH ORDINALITY AS u(account, device, ord)
      WHERE o_outcomes[u.ord] = 0
        AND EXISTS (SELECT 1 FROM presence p
                    WHERE p.account = u.account AND p.device = u.device AND p.node <> p_node);
END
$fn$;
";

/// Every table with an `account` column, in deletion order: `devices` first, so the deletion
/// waits for (and then excludes) enqueues holding a device row lock, and the messages they
/// committed are deleted too.
const ACCOUNT_TABLES: [&str; 10] = [
    "devices",
    "messages",
    "one_time_prekeys",
    "one_time_kem_prekeys",
    "signed_prekeys",
    "last_resort_kem_prekeys",
    "reglocks",
    "usernames",
    "presence",
    "accounts",
];

impl From<tokio_postgres::Error> for StorageError {
    fn from(e: tokio_postgres::Error) -> Self {
        // A server error's DETAIL and WHERE lines quote row values (a username, a key), so
        // only its code and message reach our errors and logs.
        match e.as_db_error() {
            Some(db) => StorageError::Database(format!(
                "{} {}: {}",
                db.severity(),
                db.code().code(),
                db.message()
            )),
            None => StorageError::Database(e.to_string()),
        }
    }
}

fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn unms(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn account_of(row: &Row, idx: usize) -> Result<AccountId, StorageError> {
    let bytes: Vec<u8> = row.try_get(idx)?;
    bytes
        .try_into()
        .map_err(|_| StorageError::Database("account id is not 32 bytes".into()))
}

fn prekey_of(row: &Row) -> Result<Prekey, StorageError> {
    let id: i64 = row.try_get(0)?;
    Ok(Prekey {
        id: u32::try_from(id).map_err(|_| StorageError::Database("bad key id".into()))?,
        bytes: row.try_get(1)?,
    })
}

/// How the relay talks to PostgreSQL.
#[derive(Debug, Clone)]
pub enum DbTls {
    /// Plain TCP (or a Unix socket): only on a private network or the local host. A URL with
    /// `sslmode=require` is refused.
    Off,
    /// TLS, required, with the server certificate verified (chain and host name) against a CA
    /// file; `sslmode=disable` in the URL is refused, and `prefer` is treated as `require`.
    Verified(RustlsConnect),
}

/// The connection settings: the URL, with `sslmode` checked against the TLS setting so the
/// connection can never silently fall back to plaintext.
fn pg_config(url: &str, tls: &DbTls) -> Result<tokio_postgres::Config, StorageError> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e: tokio_postgres::Error| StorageError::Database(e.to_string()))?;
    match (tls, config.get_ssl_mode()) {
        (DbTls::Off, SslMode::Require) => {
            return Err(StorageError::Database(
                "sslmode=require needs a CA file to verify the server (--database-ca)".into(),
            ));
        }
        (DbTls::Off, _) => {}
        (DbTls::Verified(_), SslMode::Disable) => {
            return Err(StorageError::Database(
                "sslmode=disable contradicts --database-ca".into(),
            ));
        }
        (DbTls::Verified(_), _) => {
            config.ssl_mode(SslMode::Require);
        }
    }
    Ok(config)
}

/// A pooled connection and the statements prepared on it (hot paths only).
struct Pooled {
    client: Client,
    stmts: HashMap<&'static str, Statement>,
}

impl Pooled {
    fn new(client: Client) -> Self {
        Self {
            client,
            stmts: HashMap::new(),
        }
    }
}

/// `sql` prepared once per connection (parsing and planning a statement costs more CPU in
/// PostgreSQL than running these small ones).
async fn prep(
    c: &impl GenericClient,
    stmts: &mut HashMap<&'static str, Statement>,
    sql: &'static str,
) -> Result<Statement, StorageError> {
    if let Some(s) = stmts.get(sql) {
        return Ok(s.clone());
    }
    let s = c.prepare(sql).await?;
    stmts.insert(sql, s.clone());
    Ok(s)
}

/// The PostgreSQL backend.
pub struct PgStorage {
    url: String,
    tls: DbTls,
    pool: Vec<Mutex<Option<Pooled>>>,
    next: AtomicUsize,
    policy: Policy,
    node: [u8; 16],
    wakeups: StdMutex<Option<mpsc::UnboundedReceiver<Address>>>,
    _listener: Client,
    /// The batching writers (see [`writer`]); a mailbox always goes to the same one.
    writers: Vec<mpsc::UnboundedSender<WriteOp>>,
}

impl std::fmt::Debug for PgStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgStorage")
    }
}

fn spawn_connection<S, T>(connection: Connection<S, T>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "database connection closed");
        }
    });
}

async fn connect(url: &str, tls: &DbTls) -> Result<Client, StorageError> {
    let config = pg_config(url, tls)?;
    Ok(match tls {
        DbTls::Off => {
            let (client, connection) = config.connect(NoTls).await?;
            spawn_connection(connection);
            client
        }
        DbTls::Verified(connector) => {
            let (client, connection) = config.connect(connector.clone()).await?;
            spawn_connection(connection);
            client
        }
    })
}

/// Forwards the listener connection's notifications as wake-ups until it fails.
fn spawn_listener<S, T>(mut connection: Connection<S, T>, tx: mpsc::UnboundedSender<Address>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if let Some(addr) = decode_wakeup(n.payload())
                        && tx.send(addr).is_err()
                    {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "LISTEN connection failed; polling only");
                    break;
                }
            }
        }
    });
}

/// The wake-up payload `sotto_write_batch` builds in SQL (lowercase hex account, `:`, decimal
/// device); kept here to test the decoder against.
#[cfg(test)]
fn encode_wakeup(addr: &Address) -> String {
    let mut s = String::with_capacity(64 + 11);
    for b in addr.account {
        s.push_str(&format!("{b:02x}"));
    }
    s.push(':');
    s.push_str(&addr.device.to_string());
    s
}

fn decode_wakeup(payload: &str) -> Option<Address> {
    let (hex, device) = payload.split_once(':')?;
    if hex.len() != 64 {
        return None;
    }
    let mut account = [0u8; 32];
    for (i, byte) in account.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(Address {
        account,
        device: device.parse().ok()?,
    })
}

impl PgStorage {
    /// Connects without TLS ([`DbTls::Off`]); see [`PgStorage::connect_with_tls`].
    pub async fn connect(url: &str, policy: Policy) -> Result<Self, StorageError> {
        Self::connect_with_tls(url, policy, DbTls::Off).await
    }

    /// Connects, creates the schema if needed and starts listening for cross-node wake-ups.
    pub async fn connect_with_tls(
        url: &str,
        policy: Policy,
        tls: DbTls,
    ) -> Result<Self, StorageError> {
        let setup = connect(url, &tls).await?;
        // Several nodes may start at once: serialise schema creation.
        setup
            .batch_execute("SELECT pg_advisory_lock(74470001)")
            .await?;
        let created = setup.batch_execute(SCHEMA).await;
        setup
            .batch_execute("SELECT pg_advisory_unlock(74470001)")
            .await?;
        created?;
        let mut node = [0u8; 16];
        OsRng.fill_bytes(&mut node);
        // The listener connection: its messages are polled by hand to see notifications.
        let (tx, rx) = mpsc::unbounded_channel();
        let config = pg_config(url, &tls)?;
        let listener = match &tls {
            DbTls::Off => {
                let (listener, connection) = config.connect(NoTls).await?;
                spawn_listener(connection, tx);
                listener
            }
            DbTls::Verified(connector) => {
                let (listener, connection) = config.connect(connector.clone()).await?;
                spawn_listener(connection, tx);
                listener
            }
        };
        listener.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        heartbeat(&setup, &node).await?;
        tokio::spawn(heartbeats(url.to_string(), tls.clone(), node));
        let writers = (0..WRITERS)
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(writer(
                    url.to_string(),
                    tls.clone(),
                    policy.clone(),
                    node,
                    rx,
                ));
                tx
            })
            .collect();
        let mut pool = Vec::with_capacity(DEFAULT_POOL_SIZE);
        pool.push(Mutex::new(Some(Pooled::new(setup))));
        for _ in 1..DEFAULT_POOL_SIZE {
            pool.push(Mutex::new(None));
        }
        Ok(Self {
            url: url.to_string(),
            tls,
            pool,
            next: AtomicUsize::new(0),
            policy,
            node,
            wakeups: StdMutex::new(Some(rx)),
            _listener: listener,
            writers,
        })
    }

    /// Sets the number of pooled connections (at least 1; connections open lazily).
    #[must_use]
    pub fn with_pool_size(mut self, size: usize) -> Self {
        self.pool.truncate(size.max(1));
        while self.pool.len() < size {
            self.pool.push(Mutex::new(None));
        }
        self
    }

    /// A pooled connection, reconnected if it died.
    async fn conn(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Pooled>>, StorageError> {
        let slot = &self.pool[self.next.fetch_add(1, Ordering::Relaxed) % self.pool.len()];
        let mut guard = slot.lock().await;
        if guard.as_ref().is_none_or(|p| p.client.is_closed()) {
            *guard = Some(Pooled::new(connect(&self.url, &self.tls).await?));
        }
        Ok(guard)
    }
}

/// Runs `$body` (an async block body evaluating to `Result<T, StorageError>`) in one
/// transaction; commits only on `Ok`. `return` inside the body leaves the body only. The
/// optional third name binds the connection's prepared-statement cache (see [`prep`]).
macro_rules! in_tx {
    ($self:ident, |$c:ident, $p:ident| $body:block) => {
        in_tx!($self, |$c, $p, _stmts| $body)
    };
    ($self:ident, |$c:ident, $p:ident, $st:ident| $body:block) => {{
        let mut guard = $self.conn().await?;
        let pooled = guard.as_mut().ok_or(StorageError::Closed)?;
        let Pooled { client, stmts } = pooled;
        let tx = client.transaction().await.map_err(StorageError::from)?;
        #[allow(unused_variables)]
        let ($c, $p, $st) = (&tx, &$self.policy, stmts);
        let out: Result<_, StorageError> = async move $body.await;
        match out {
            Ok(v) => {
                tx.commit().await.map_err(StorageError::from)?;
                Ok::<_, StorageError>(v)
            }
            Err(e) => Err(e),
        }
    }};
}

/// Records this node as alive and forgets nodes (and their presence rows) that stopped
/// beating, e.g. after a crash.
async fn heartbeat(c: &Client, node: &[u8; 16]) -> Result<(), StorageError> {
    let now = ms(crate::now_ms());
    c.execute(
        "INSERT INTO nodes (node, heartbeat_ms) VALUES ($1, $2)
         ON CONFLICT (node) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms",
        &[&&node[..], &now],
    )
    .await?;
    let stale = now - ms(NODE_TIMEOUT_MS);
    // Every node beats once before it records any presence, so a presence row whose node is
    // not live (stale, or already forgotten by another node's sweep) belongs to a dead node.
    c.execute(
        "DELETE FROM presence WHERE node NOT IN (SELECT node FROM nodes WHERE heartbeat_ms >= $1)",
        &[&stale],
    )
    .await?;
    c.execute("DELETE FROM nodes WHERE heartbeat_ms < $1", &[&stale])
        .await?;
    Ok(())
}

async fn heartbeats(url: String, tls: DbTls, node: [u8; 16]) {
    // `connect` has just beaten; the next beat is one period later.
    let period = std::time::Duration::from_millis(HEARTBEAT_MS);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let mut client: Option<Client> = None;
    loop {
        tick.tick().await;
        if client.as_ref().is_none_or(Client::is_closed) {
            client = connect(&url, &tls).await.ok();
        }
        if let Some(c) = &client
            && let Err(e) = heartbeat(c, &node).await
        {
            tracing::warn!(error = %e, "node heartbeat failed");
        }
    }
}

async fn counts(c: &impl GenericClient, addr: Address) -> Result<PrekeyCounts, StorageError> {
    let row = c
        .query_one(
            "SELECT (SELECT COUNT(*) FROM one_time_prekeys WHERE account = $1 AND device = $2),
                    (SELECT COUNT(*) FROM one_time_kem_prekeys WHERE account = $1 AND device = $2)",
            &[&&addr.account[..], &i64::from(addr.device)],
        )
        .await?;
    let (a, b): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    Ok(PrekeyCounts {
        one_time: u32::try_from(a).unwrap_or(u32::MAX),
        one_time_kem: u32::try_from(b).unwrap_or(u32::MAX),
    })
}

async fn own_username(
    c: &impl GenericClient,
    account: &AccountId,
) -> Result<Option<String>, StorageError> {
    let row = c
        .query_opt(
            "SELECT username FROM usernames WHERE account = $1",
            &[&&account[..]],
        )
        .await?;
    Ok(match row {
        Some(r) => Some(r.try_get(0)?),
        None => None,
    })
}

struct Holder {
    account: AccountId,
    inactive_ms: u64,
    lock: Option<Lock>,
}

struct Lock {
    salt: Vec<u8>,
    hash: Vec<u8>,
    failed: u32,
    window_start_ms: u64,
    next_attempt_ms: u64,
}

async fn holder(
    c: &impl GenericClient,
    username: &str,
    now_ms: u64,
    policy: &Policy,
) -> Result<Option<Holder>, StorageError> {
    let Some(row) = c
        .query_opt(
            "SELECT account FROM usernames WHERE username = $1 FOR UPDATE",
            &[&username],
        )
        .await?
    else {
        return Ok(None);
    };
    let account = account_of(&row, 0)?;
    let last_seen: i64 = match c
        .query_opt(
            "SELECT last_seen_ms FROM accounts WHERE account = $1",
            &[&&account[..]],
        )
        .await?
    {
        Some(r) => r.try_get(0)?,
        None => 0,
    };
    let inactive_ms = now_ms.saturating_sub(unms(last_seen));
    let lock = match c
        .query_opt(
            "SELECT salt, hash, failed, window_start_ms, next_attempt_ms FROM reglocks
             WHERE account = $1 FOR UPDATE",
            &[&&account[..]],
        )
        .await?
    {
        Some(r) if inactive_ms < policy.reglock_lapse_ms => Some(Lock {
            salt: r.try_get(0)?,
            hash: r.try_get(1)?,
            failed: u32::try_from(r.try_get::<_, i64>(2)?).unwrap_or(u32::MAX),
            window_start_ms: unms(r.try_get(3)?),
            next_attempt_ms: unms(r.try_get(4)?),
        }),
        _ => None,
    };
    Ok(Some(Holder {
        account,
        inactive_ms,
        lock,
    }))
}

async fn transfer(
    c: &impl GenericClient,
    from: &AccountId,
    to: &AccountId,
    username: &str,
) -> Result<(), StorageError> {
    c.execute("DELETE FROM usernames WHERE account = $1", &[&&from[..]])
        .await?;
    c.execute("DELETE FROM reglocks WHERE account = $1", &[&&from[..]])
        .await?;
    c.execute(
        "INSERT INTO usernames (username, account) VALUES ($1, $2)",
        &[&username, &&to[..]],
    )
    .await?;
    Ok(())
}

/// Whether `username`, held by nobody, is still reserved after its account was deleted.
/// Call after [`holder`] found no holder: its row lock waited for a concurrent deletion, whose
/// quarantine row is then visible.
async fn quarantined(
    c: &impl GenericClient,
    username: &str,
    now_ms: u64,
) -> Result<bool, StorageError> {
    let row = c
        .query_opt(
            "SELECT claimable_after_ms FROM username_quarantine WHERE username = $1",
            &[&username],
        )
        .await?;
    Ok(match row {
        Some(r) => now_ms < unms(r.try_get(0)?),
        None => false,
    })
}

async fn delete_account(
    c: &Transaction<'_>,
    policy: &Policy,
    account: &AccountId,
    now_ms: u64,
) -> Result<(), StorageError> {
    let acct = &account[..];
    let username: Option<String> = match c
        .query_opt(
            "SELECT username FROM usernames WHERE account = $1 FOR UPDATE",
            &[&acct],
        )
        .await?
    {
        Some(r) => Some(r.try_get(0)?),
        None => None,
    };
    if let Some(username) = username {
        let had_lock = c
            .query_opt(
                "SELECT 1 FROM reglocks WHERE account = $1 FOR UPDATE",
                &[&acct],
            )
            .await?
            .is_some();
        let until = quarantine_until_ms(policy, had_lock, now_ms);
        c.execute(
            "INSERT INTO username_quarantine (username, claimable_after_ms) VALUES ($1, $2)
             ON CONFLICT (username) DO UPDATE SET claimable_after_ms =
               GREATEST(username_quarantine.claimable_after_ms, excluded.claimable_after_ms)",
            &[&username, &ms(until)],
        )
        .await?;
    }
    for table in ACCOUNT_TABLES {
        c.execute(&format!("DELETE FROM {table} WHERE account = $1"), &[&acct])
            .await?;
    }
    Ok(())
}

fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

async fn claim(
    c: &Transaction<'_>,
    policy: &Policy,
    account: AccountId,
    username: &str,
    pin: Option<[u8; 32]>,
    now_ms: u64,
) -> Result<Result<(), ClaimError>, StorageError> {
    match own_username(c, &account).await? {
        Some(own) if own == username => return Ok(Ok(())),
        Some(_) => return Ok(Err(ClaimError::AlreadyHasUsername)),
        None => {}
    }
    let Some(h) = holder(c, username, now_ms, policy).await? else {
        if quarantined(c, username, now_ms).await? {
            return Ok(Err(ClaimError::Taken));
        }
        return match c
            .execute(
                "INSERT INTO usernames (username, account) VALUES ($1, $2)",
                &[&username, &&account[..]],
            )
            .await
        {
            Ok(_) => Ok(Ok(())),
            // A concurrent claim won.
            Err(e) if is_unique_violation(&e) => Ok(Err(ClaimError::Taken)),
            Err(e) => Err(e.into()),
        };
    };
    let Some(mut lock) = h.lock else {
        if h.inactive_ms >= policy.username_release_ms {
            transfer(c, &h.account, &account, username).await?;
            return Ok(Ok(()));
        }
        return Ok(Err(ClaimError::Taken));
    };
    let Some(pin) = pin else {
        return Ok(Err(ClaimError::PinRequired));
    };
    if now_ms.saturating_sub(lock.window_start_ms) >= DAY_MS {
        lock.failed = 0;
        lock.window_start_ms = now_ms;
    }
    if lock.failed >= policy.pin_attempts_per_day {
        let retry = (lock.window_start_ms + DAY_MS).saturating_sub(now_ms);
        return Ok(Err(ClaimError::PinLocked {
            retry_after_ms: retry.max(1),
        }));
    }
    if now_ms < lock.next_attempt_ms {
        return Ok(Err(ClaimError::PinLocked {
            retry_after_ms: lock.next_attempt_ms - now_ms,
        }));
    }
    let computed = reglock_hash(&lock.salt, &pin);
    if bool::from(subtle::ConstantTimeEq::ct_eq(&computed[..], &lock.hash[..])) {
        transfer(c, &h.account, &account, username).await?;
        return Ok(Ok(()));
    }
    lock.failed += 1;
    c.execute(
        "UPDATE reglocks SET failed = $2, window_start_ms = $3, next_attempt_ms = $4
         WHERE account = $1",
        &[
            &&h.account[..],
            &i64::from(lock.failed),
            &ms(lock.window_start_ms),
            &ms(now_ms + pin_backoff_ms(lock.failed)),
        ],
    )
    .await?;
    Ok(Err(ClaimError::PinIncorrect {
        remaining: policy.pin_attempts_per_day.saturating_sub(lock.failed),
    }))
}

async fn change(
    c: &Transaction<'_>,
    policy: &Policy,
    account: AccountId,
    username: &str,
    now_ms: u64,
) -> Result<Result<(), ChangeError>, StorageError> {
    let Some(own) = own_username(c, &account).await? else {
        return Ok(Err(ChangeError::NoUsername));
    };
    if own == username {
        return Ok(Ok(()));
    }
    if let Some(h) = holder(c, username, now_ms, policy).await? {
        if h.lock.is_some() || h.inactive_ms < policy.username_release_ms {
            return Ok(Err(ChangeError::Taken));
        }
        c.execute(
            "DELETE FROM usernames WHERE account = $1",
            &[&&h.account[..]],
        )
        .await?;
        c.execute(
            "DELETE FROM reglocks WHERE account = $1",
            &[&&h.account[..]],
        )
        .await?;
    } else if quarantined(c, username, now_ms).await? {
        return Ok(Err(ChangeError::Taken));
    }
    match c
        .execute(
            "UPDATE usernames SET username = $2 WHERE account = $1",
            &[&&account[..], &username],
        )
        .await
    {
        Ok(_) => Ok(Ok(())),
        Err(e) if is_unique_violation(&e) => Ok(Err(ChangeError::Taken)),
        Err(e) => Err(e.into()),
    }
}

async fn take_one_time(
    c: &impl GenericClient,
    table: &str,
    addr: Address,
) -> Result<Option<Prekey>, StorageError> {
    let sql = format!(
        "DELETE FROM {table} WHERE (account, device, key_id) IN (
           SELECT account, device, key_id FROM {table} WHERE account = $1 AND device = $2
           ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING key_id, body"
    );
    match c
        .query_opt(&sql, &[&&addr.account[..], &i64::from(addr.device)])
        .await?
    {
        Some(row) => Ok(Some(prekey_of(&row)?)),
        None => Ok(None),
    }
}

async fn single_key(
    c: &impl GenericClient,
    table: &str,
    addr: Address,
) -> Result<Option<Prekey>, StorageError> {
    let sql = format!("SELECT key_id, body FROM {table} WHERE account = $1 AND device = $2");
    match c
        .query_opt(&sql, &[&&addr.account[..], &i64::from(addr.device)])
        .await?
    {
        Some(row) => Ok(Some(prekey_of(&row)?)),
        None => Ok(None),
    }
}

async fn put_single(
    c: &impl GenericClient,
    table: &str,
    addr: Address,
    key: &Prekey,
) -> Result<(), StorageError> {
    let sql = format!(
        "INSERT INTO {table} (account, device, key_id, body) VALUES ($1, $2, $3, $4)
         ON CONFLICT (account, device) DO UPDATE SET key_id = excluded.key_id, body = excluded.body"
    );
    c.execute(
        &sql,
        &[
            &&addr.account[..],
            &i64::from(addr.device),
            &i64::from(key.id),
            &key.bytes,
        ],
    )
    .await?;
    Ok(())
}

const LOCK_DEVICE: &str = "SELECT 1 FROM devices WHERE account = $1 AND device = $2 FOR UPDATE";

/// Locks the device row (serialising mailbox and prekey writers); false if unknown.
async fn lock_device(c: &impl GenericClient, addr: Address) -> Result<bool, StorageError> {
    Ok(
        c.query_opt(LOCK_DEVICE, &[&&addr.account[..], &i64::from(addr.device)])
            .await?
            .is_some(),
    )
}

/// An enqueue or ack waiting for its writer's next batch.
enum WriteOp {
    Enqueue {
        recipient: Address,
        envelope: Vec<u8>,
        now_ms: u64,
        on_commit: OnCommit,
        reply: oneshot::Sender<Result<u64, EnqueueError>>,
    },
    Ack {
        addr: Address,
        message_id: u64,
        reply: oneshot::Sender<Result<bool, StorageError>>,
    },
}

/// Which writer serves `addr`'s mailbox.
fn writer_of(addr: &Address, writers: usize) -> usize {
    let mut head = [0u8; 8];
    head.copy_from_slice(&addr.account[..8]);
    let h = u64::from_le_bytes(head) ^ u64::from(addr.device).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    usize::try_from(h % writers.max(1) as u64).unwrap_or(0)
}

/// One batching writer: takes every enqueue and ack waiting (up to [`MAX_BATCH`]), writes them
/// in one transaction with one multi-row statement per step, commits (the WAL is flushed
/// before `COMMIT` returns), and only then answers each caller. If anything fails, the whole
/// transaction is rolled back and every caller of the batch gets the error (nothing was
/// acknowledged, nothing deleted).
async fn writer(
    url: String,
    tls: DbTls,
    policy: Policy,
    node: [u8; 16],
    mut rx: mpsc::UnboundedReceiver<WriteOp>,
) {
    let mut conn: Option<Pooled> = None;
    let mut enqueues = Vec::new();
    let mut acks = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let mut n = 0;
        while let Some(op) = next.take() {
            match op {
                WriteOp::Enqueue {
                    recipient,
                    envelope,
                    now_ms,
                    on_commit,
                    reply,
                } => enqueues.push((recipient, envelope, now_ms, (on_commit, reply))),
                WriteOp::Ack {
                    addr,
                    message_id,
                    reply,
                } => acks.push((addr, message_id, reply)),
            }
            n += 1;
            if n < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if conn.as_ref().is_none_or(|p| p.client.is_closed()) {
            conn = match connect(&url, &tls).await {
                Ok(c) => Some(Pooled::new(c)),
                Err(e) => {
                    tracing::error!(error = %e, "writer cannot connect");
                    None
                }
            };
        }
        let outcome = match conn.as_mut() {
            Some(p) => write_batch(p, &policy, &node, &enqueues, &acks).await,
            None => Err(StorageError::Database("no database connection".into())),
        };
        match outcome {
            Ok((queued, deleted)) => {
                // In batch order: a mailbox's hooks run in id order.
                for ((.., (on_commit, reply)), result) in enqueues.drain(..).zip(queued) {
                    if let Ok(id) = result {
                        on_commit(id);
                    }
                    let _ = reply.send(result);
                }
                for ((.., reply), found) in acks.drain(..).zip(deleted) {
                    let _ = reply.send(Ok(found));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "batch write failed");
                for (.., (_, reply)) in enqueues.drain(..) {
                    let _ = reply.send(Err(EnqueueError::Storage(e.clone())));
                }
                for (.., reply) in acks.drain(..) {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

type EnqueueOp = (
    Address,
    Vec<u8>,
    u64,
    (OnCommit, oneshot::Sender<Result<u64, EnqueueError>>),
);
type AckOp = (Address, u64, oneshot::Sender<Result<bool, StorageError>>);

/// The whole batch in one statement (one round trip; see `sotto_write_batch` in [`SCHEMA`]).
/// Sent alone it runs in its own implicit transaction, and its rows are returned only after
/// `ReadyForQuery`, i.e. after the commit (and its WAL flush).
const WRITE_BATCH: &str = "SELECT o_deleted, o_outcomes, o_ids FROM sotto_write_batch(
     $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/// Writes one batch in one transaction; returns each enqueue's outcome and whether each ack
/// deleted its envelope, in the order given.
async fn write_batch(
    p: &mut Pooled,
    policy: &Policy,
    node: &[u8; 16],
    enqueues: &[EnqueueOp],
    acks: &[AckOp],
) -> Result<(Vec<Result<u64, EnqueueError>>, Vec<bool>), StorageError> {
    let Pooled { client, stmts } = p;
    let ack_ids: Vec<i64> = acks.iter().map(|(_, id, _)| ms(*id)).collect();
    let ack_accounts: Vec<&[u8]> = acks.iter().map(|(a, ..)| &a.account[..]).collect();
    let ack_devices: Vec<i64> = acks.iter().map(|(a, ..)| i64::from(a.device)).collect();
    let accounts: Vec<&[u8]> = enqueues.iter().map(|(a, ..)| &a.account[..]).collect();
    let devices: Vec<i64> = enqueues.iter().map(|(a, ..)| i64::from(a.device)).collect();
    let received: Vec<i64> = enqueues.iter().map(|(_, _, t, _)| ms(*t)).collect();
    let expires: Vec<i64> = enqueues
        .iter()
        .map(|(_, _, t, _)| ms(t.saturating_add(policy.message_ttl_ms)))
        .collect();
    let envelopes: Vec<&[u8]> = enqueues.iter().map(|(_, e, ..)| &e[..]).collect();
    let stmt = prep(client, stmts, WRITE_BATCH).await?;
    let row = client
        .query_one(
            &stmt,
            &[
                &ack_ids,
                &ack_accounts,
                &ack_devices,
                &accounts,
                &devices,
                &received,
                &expires,
                &envelopes,
                &ms(policy.mailbox_cap),
                &CHANNEL,
                &&node[..],
            ],
        )
        .await?;
    let deleted: Vec<i64> = row.try_get(0)?;
    let outcomes: Vec<i64> = row.try_get(1)?;
    let ids: Vec<i64> = row.try_get(2)?;
    if outcomes.len() != enqueues.len() || ids.len() != outcomes.iter().filter(|o| **o == 0).count()
    {
        return Err(StorageError::Database(
            "batch write returned wrong counts".into(),
        ));
    }
    let mut ids = ids.into_iter();
    let results = outcomes
        .iter()
        .map(|o| match o {
            0 => Ok(ids.next().map_or(0, unms)),
            -1 => Err(EnqueueError::UnknownRecipient),
            _ => Err(EnqueueError::MailboxFull {
                cap: policy.mailbox_cap,
            }),
        })
        .collect();
    // A repeated ack of one envelope deletes it once.
    let mut deleted: std::collections::HashSet<u64> = deleted.into_iter().map(unms).collect();
    let found = acks.iter().map(|(_, id, _)| deleted.remove(id)).collect();
    Ok((results, found))
}

impl Storage for PgStorage {
    async fn touch_device(&self, addr: Address, now_ms: u64) -> Result<(), StorageError> {
        in_tx!(self, |c, p| {
            c.execute(
                "INSERT INTO accounts (account, last_seen_ms) VALUES ($1, $2)
                 ON CONFLICT (account) DO UPDATE
                 SET last_seen_ms = GREATEST(accounts.last_seen_ms, excluded.last_seen_ms)",
                &[&&addr.account[..], &ms(now_ms)],
            )
            .await?;
            c.execute(
                "INSERT INTO devices (account, device, last_seen_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (account, device) DO UPDATE SET last_seen_ms = excluded.last_seen_ms",
                &[&&addr.account[..], &i64::from(addr.device), &ms(now_ms)],
            )
            .await?;
            Ok(())
        })
    }

    async fn claim_username(
        &self,
        account: AccountId,
        username: String,
        pin: Option<[u8; 32]>,
        now_ms: u64,
    ) -> Result<(), ClaimError> {
        in_tx!(self, |c, p| {
            claim(c, p, account, &username, pin, now_ms).await
        })?
    }

    async fn lookup_username(&self, username: String) -> Result<Option<AccountId>, StorageError> {
        in_tx!(self, |c, p| {
            match c
                .query_opt(
                    "SELECT account FROM usernames WHERE username = $1",
                    &[&username],
                )
                .await?
            {
                Some(row) => Ok(Some(account_of(&row, 0)?)),
                None => Ok(None),
            }
        })
    }

    async fn change_username(
        &self,
        account: AccountId,
        username: String,
        now_ms: u64,
    ) -> Result<(), ChangeError> {
        in_tx!(self, |c, p| {
            change(c, p, account, &username, now_ms).await
        })?
    }

    async fn release_username(&self, account: AccountId) -> Result<(), ReleaseError> {
        in_tx!(self, |c, p| {
            let n = c
                .execute("DELETE FROM usernames WHERE account = $1", &[&&account[..]])
                .await?;
            Ok(if n == 0 {
                Err(ReleaseError::NoUsername)
            } else {
                Ok(())
            })
        })?
    }

    async fn set_reglock(
        &self,
        account: AccountId,
        verifier: [u8; 32],
    ) -> Result<(), StorageError> {
        let mut salt = [0u8; 16];
        OsRng.fill_bytes(&mut salt);
        let hash = reglock_hash(&salt, &verifier);
        in_tx!(self, |c, p| {
            c.execute(
                "INSERT INTO reglocks (account, salt, hash) VALUES ($1, $2, $3)
                 ON CONFLICT (account) DO UPDATE SET salt = excluded.salt, hash = excluded.hash",
                &[&&account[..], &&salt[..], &&hash[..]],
            )
            .await?;
            Ok(())
        })
    }

    async fn clear_reglock(&self, account: AccountId) -> Result<(), StorageError> {
        in_tx!(self, |c, p| {
            c.execute("DELETE FROM reglocks WHERE account = $1", &[&&account[..]])
                .await?;
            Ok(())
        })
    }

    async fn put_signed_prekey(&self, addr: Address, key: Prekey) -> Result<(), StorageError> {
        in_tx!(self, |c, p| {
            put_single(c, "signed_prekeys", addr, &key).await
        })
    }

    async fn put_last_resort_kem(&self, addr: Address, key: Prekey) -> Result<(), StorageError> {
        in_tx!(self, |c, p| {
            put_single(c, "last_resort_kem_prekeys", addr, &key).await
        })
    }

    async fn add_one_time_prekeys(
        &self,
        addr: Address,
        kind: OneTimeKind,
        keys: Vec<Prekey>,
    ) -> Result<PrekeyCounts, UploadError> {
        in_tx!(self, |c, p| {
            lock_device(c, addr).await?;
            let now = counts(c, addr).await?;
            let (table, existing) = match kind {
                OneTimeKind::X25519 => ("one_time_prekeys", now.one_time),
                OneTimeKind::Kem => ("one_time_kem_prekeys", now.one_time_kem),
            };
            let incoming = u32::try_from(keys.len()).unwrap_or(u32::MAX);
            if existing.saturating_add(incoming) > p.max_prekeys {
                return Ok(Err(UploadError::TooMany { cap: p.max_prekeys }));
            }
            let sql = format!(
                "INSERT INTO {table} (account, device, key_id, body) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (account, device, key_id) DO UPDATE SET body = excluded.body"
            );
            let stmt = c.prepare(&sql).await?;
            for k in &keys {
                c.execute(
                    &stmt,
                    &[
                        &&addr.account[..],
                        &i64::from(addr.device),
                        &i64::from(k.id),
                        &k.bytes,
                    ],
                )
                .await?;
            }
            Ok(Ok(counts(c, addr).await?))
        })?
    }

    async fn prekey_counts(&self, addr: Address) -> Result<PrekeyCounts, StorageError> {
        in_tx!(self, |c, p| { counts(c, addr).await })
    }

    async fn fetch_bundle(&self, addr: Address) -> Result<(Bundle, PrekeyCounts), BundleError> {
        in_tx!(self, |c, p| {
            let Some(signed_prekey) = single_key(c, "signed_prekeys", addr).await? else {
                return Ok(Err(BundleError::NotFound));
            };
            let one_time_prekey = take_one_time(c, "one_time_prekeys", addr).await?;
            let kem_prekey = match take_one_time(c, "one_time_kem_prekeys", addr).await? {
                Some(prekey) => Some(KemPrekey {
                    prekey,
                    last_resort: false,
                }),
                None => single_key(c, "last_resort_kem_prekeys", addr)
                    .await?
                    .map(|prekey| KemPrekey {
                        prekey,
                        last_resort: true,
                    }),
            };
            let left = counts(c, addr).await?;
            Ok(Ok((
                Bundle {
                    signed_prekey,
                    one_time_prekey,
                    kem_prekey,
                },
                left,
            )))
        })?
    }

    async fn enqueue_then(
        &self,
        recipient: Address,
        envelope: Vec<u8>,
        now_ms: u64,
        on_commit: OnCommit,
    ) -> Result<u64, EnqueueError> {
        let (reply, answer) = oneshot::channel();
        self.writers[writer_of(&recipient, self.writers.len())]
            .send(WriteOp::Enqueue {
                recipient,
                envelope,
                now_ms,
                on_commit,
                reply,
            })
            .map_err(|_| StorageError::Closed)?;
        answer.await.map_err(|_| StorageError::Closed)?
    }

    async fn pending(
        &self,
        addr: Address,
        after_id: u64,
        limit: u32,
        now_ms: u64,
    ) -> Result<Vec<Delivery>, StorageError> {
        // One statement: autocommit, no BEGIN/COMMIT round trips.
        let mut guard = self.conn().await?;
        let Pooled { client: c, stmts } = guard.as_mut().ok_or(StorageError::Closed)?;
        {
            let select = prep(
                c,
                stmts,
                "SELECT id, received_ms, envelope FROM messages
                 WHERE account = $1 AND device = $2 AND id > $3 AND expires_ms > $4
                 ORDER BY id LIMIT $5",
            )
            .await?;
            let rows = c
                .query(
                    &select,
                    &[
                        &&addr.account[..],
                        &i64::from(addr.device),
                        &ms(after_id),
                        &ms(now_ms),
                        &i64::from(limit),
                    ],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(Delivery {
                        message_id: unms(r.try_get(0)?),
                        received_at_ms: unms(r.try_get(1)?),
                        envelope: r.try_get(2)?,
                    })
                })
                .collect()
        }
    }

    async fn ack(&self, addr: Address, message_id: u64) -> Result<bool, StorageError> {
        let (reply, answer) = oneshot::channel();
        self.writers[writer_of(&addr, self.writers.len())]
            .send(WriteOp::Ack {
                addr,
                message_id,
                reply,
            })
            .map_err(|_| StorageError::Closed)?;
        answer.await.map_err(|_| StorageError::Closed)?
    }

    async fn purge_expired(&self, now_ms: u64) -> Result<u64, StorageError> {
        in_tx!(self, |c, p| {
            c.execute(
                "DELETE FROM username_quarantine WHERE claimable_after_ms <= $1",
                &[&ms(now_ms)],
            )
            .await?;
            Ok(c.execute(
                "DELETE FROM messages WHERE expires_ms <= $1",
                &[&ms(now_ms)],
            )
            .await?)
        })
    }

    async fn delete_account(&self, account: AccountId, now_ms: u64) -> Result<(), StorageError> {
        in_tx!(self, |c, p| {
            delete_account(c, p, &account, now_ms).await
        })
    }

    async fn health(&self) -> Result<(), StorageError> {
        in_tx!(self, |c, p| {
            c.query_one("SELECT 1", &[]).await?;
            Ok(())
        })
    }

    async fn set_presence(&self, addr: Address, online: bool) -> Result<(), StorageError> {
        let node = self.node;
        in_tx!(self, |c, p| {
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
                [&&addr.account[..], &i64::from(addr.device), &&node[..]];
            if online {
                c.execute(
                    "INSERT INTO presence (account, device, node, since_ms) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (account, device, node) DO UPDATE SET since_ms = excluded.since_ms",
                    &[params[0], params[1], params[2], &ms(crate::now_ms())],
                )
                .await?;
            } else {
                c.execute(
                    "DELETE FROM presence WHERE account = $1 AND device = $2 AND node = $3",
                    &params,
                )
                .await?;
            }
            Ok(())
        })
    }

    fn take_remote_wakeups(&self) -> Option<mpsc::UnboundedReceiver<Address>> {
        self.wakeups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

#[cfg(test)]
mod tests;
