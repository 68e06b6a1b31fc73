//! SQLite backend: one file in WAL mode, owned by a single worker thread that runs every
//! operation inside a savepoint and commits whole batches of queued operations in one
//! transaction (`synchronous = FULL`), answering callers only after the commit. Mailbox reads
//! (`pending`) run on a second, read-only connection and thread: they see committed data only
//! and never wait for the writer's batch.

use std::path::Path;

use rand_core::{OsRng, RngCore};
use rusqlite::{Connection, OptionalExtension, params};
use sotto_relay_wire::{Address, Bundle, Delivery, KemPrekey, Prekey};
use tokio::sync::{mpsc, oneshot};

use super::{
    AccountId, BundleError, ChangeError, ClaimError, EnqueueError, OnCommit, OneTimeKind, Policy,
    PrekeyCounts, ReleaseError, Storage, StorageError, UploadError, pin_backoff_ms,
    quarantine_until_ms, reglock_hash,
};

const DAY_MS: u64 = 24 * 60 * 60 * 1000;
/// Most operations committed in one transaction.
const MAX_BATCH: usize = 256;

type Reply = Box<dyn FnOnce(Result<(), StorageError>) + Send>;
type Job = Box<dyn FnOnce(&Connection, &Policy) -> Reply + Send>;
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// Handle to the SQLite worker. Cloning shares the worker.
#[derive(Clone)]
pub struct SqliteStorage {
    jobs: mpsc::UnboundedSender<Job>,
    /// Read-only queries of committed data (mailbox reads), on a second connection and thread
    /// so they never wait for the writer's batch and commit.
    reads: mpsc::UnboundedSender<ReadJob>,
}

impl std::fmt::Debug for SqliteStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStorage")
    }
}

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        StorageError::Database(e.to_string())
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS accounts (
    account BLOB PRIMARY KEY,
    last_seen_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    account BLOB NOT NULL,
    device INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    PRIMARY KEY (account, device)
);
CREATE TABLE IF NOT EXISTS usernames (
    username TEXT PRIMARY KEY,
    account BLOB NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS reglocks (
    account BLOB PRIMARY KEY,
    salt BLOB NOT NULL,
    hash BLOB NOT NULL,
    failed INTEGER NOT NULL DEFAULT 0,
    window_start_ms INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS signed_prekeys (
    account BLOB NOT NULL, device INTEGER NOT NULL, key_id INTEGER NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (account, device)
);
CREATE TABLE IF NOT EXISTS last_resort_kem_prekeys (
    account BLOB NOT NULL, device INTEGER NOT NULL, key_id INTEGER NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (account, device)
);
CREATE TABLE IF NOT EXISTS one_time_prekeys (
    account BLOB NOT NULL, device INTEGER NOT NULL, key_id INTEGER NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (account, device, key_id)
);
CREATE TABLE IF NOT EXISTS one_time_kem_prekeys (
    account BLOB NOT NULL, device INTEGER NOT NULL, key_id INTEGER NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (account, device, key_id)
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account BLOB NOT NULL,
    device INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    envelope BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_mailbox ON messages (account, device, id);
CREATE INDEX IF NOT EXISTS messages_by_expiry ON messages (expires_ms);
CREATE TABLE IF NOT EXISTS username_quarantine (
    username TEXT PRIMARY KEY,
    claimable_after_ms INTEGER NOT NULL
);
";

/// Every table with an `account` column, in deletion order.
const ACCOUNT_TABLES: [&str; 9] = [
    "messages",
    "one_time_prekeys",
    "one_time_kem_prekeys",
    "signed_prekeys",
    "last_resort_kem_prekeys",
    "reglocks",
    "usernames",
    "devices",
    "accounts",
];

fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn unms(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl SqliteStorage {
    /// Opens (creating if needed) `dir/relay.sqlite3` and starts the worker thread.
    pub fn open(dir: &Path, policy: Policy) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StorageError::Database(format!("cannot create data dir: {e}")))?;
        let conn = Connection::open(dir.join("relay.sqlite3"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        conn.set_prepared_statement_cache_capacity(64);
        let reader = Connection::open(dir.join("relay.sqlite3"))?;
        reader.pragma_update(None, "query_only", "ON")?;
        reader.busy_timeout(std::time::Duration::from_secs(5))?;
        let (tx, rx) = mpsc::unbounded_channel::<Job>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || worker(conn, policy, rx))
            .map_err(|e| StorageError::Database(format!("cannot start worker: {e}")))?;
        let (read_tx, mut read_rx) = mpsc::unbounded_channel::<ReadJob>();
        std::thread::Builder::new()
            .name("sqlite-reader".into())
            .spawn(move || {
                while let Some(job) = read_rx.blocking_recv() {
                    job(&reader);
                }
            })
            .map_err(|e| StorageError::Database(format!("cannot start reader: {e}")))?;
        Ok(Self {
            jobs: tx,
            reads: read_tx,
        })
    }

    /// Runs the read-only `f` on the reader connection (autocommit: one consistent snapshot of
    /// committed data per statement).
    async fn read<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T, StorageError>>();
        let job: ReadJob = Box::new(move |conn| {
            let _ = tx.send(f(conn));
        });
        self.reads.send(job).map_err(|_| StorageError::Closed)?;
        rx.await.map_err(|_| StorageError::Closed)?
    }

    /// Runs `f` on the worker inside a savepoint; its effects are committed (with the rest of
    /// the batch) before the result is returned. `Ok(Err(domain))` still commits, so failed PIN
    /// attempts are recorded.
    async fn run<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Policy) -> Result<T, StorageError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T, StorageError>>();
        let job: Job = Box::new(move |conn, policy| {
            let result = in_savepoint(conn, |c| f(c, policy));
            Box::new(move |committed: Result<(), StorageError>| {
                let _ = tx.send(committed.and(result));
            })
        });
        self.jobs.send(job).map_err(|_| StorageError::Closed)?;
        rx.await.map_err(|_| StorageError::Closed)?
    }
}

fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StorageError>,
) -> Result<T, StorageError> {
    conn.prepare_cached("SAVEPOINT op")?.execute([])?;
    match f(conn) {
        Ok(v) => {
            conn.prepare_cached("RELEASE op")?.execute([])?;
            Ok(v)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK TO op; RELEASE op");
            Err(e)
        }
    }
}

fn worker(conn: Connection, policy: Policy, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let begun = conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut s| s.execute([]))
            .map_err(StorageError::from);
        if let Err(e) = begun {
            tracing::error!(error = %e, "cannot begin transaction");
            for job in batch {
                // Not run: report the failure.
                drop(job);
            }
            continue;
        }
        let replies: Vec<Reply> = batch.into_iter().map(|job| job(&conn, &policy)).collect();
        let committed = conn
            .prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]).map(drop))
            .map_err(StorageError::from);
        if let Err(e) = &committed {
            tracing::error!(error = %e, "commit failed");
            let _ = conn.execute_batch("ROLLBACK");
        }
        for reply in replies {
            reply(committed.clone());
        }
    }
}

fn touch(conn: &Connection, addr: Address, now_ms: u64) -> Result<(), StorageError> {
    conn.prepare_cached(
        "INSERT INTO accounts (account, last_seen_ms) VALUES (?1, ?2)
         ON CONFLICT (account) DO UPDATE SET last_seen_ms = MAX(last_seen_ms, excluded.last_seen_ms)",
    )?
    .execute(params![addr.account, ms(now_ms)])?;
    conn.prepare_cached(
        "INSERT INTO devices (account, device, last_seen_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (account, device) DO UPDATE SET last_seen_ms = excluded.last_seen_ms",
    )?
    .execute(params![addr.account, addr.device, ms(now_ms)])?;
    Ok(())
}

fn own_username(conn: &Connection, account: &AccountId) -> Result<Option<String>, StorageError> {
    Ok(conn
        .query_row(
            "SELECT username FROM usernames WHERE account = ?1",
            params![account],
            |r| r.get(0),
        )
        .optional()?)
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

fn holder(
    conn: &Connection,
    username: &str,
    now_ms: u64,
    policy: &Policy,
) -> Result<Option<Holder>, StorageError> {
    let account: Option<AccountId> = conn
        .query_row(
            "SELECT account FROM usernames WHERE username = ?1",
            params![username],
            |r| r.get(0),
        )
        .optional()?;
    let Some(account) = account else {
        return Ok(None);
    };
    let last_seen: i64 = conn
        .query_row(
            "SELECT last_seen_ms FROM accounts WHERE account = ?1",
            params![account],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let inactive_ms = now_ms.saturating_sub(unms(last_seen));
    let lock = conn
        .query_row(
            "SELECT salt, hash, failed, window_start_ms, next_attempt_ms FROM reglocks
             WHERE account = ?1",
            params![account],
            |r| {
                Ok(Lock {
                    salt: r.get(0)?,
                    hash: r.get(1)?,
                    failed: r.get(2)?,
                    window_start_ms: unms(r.get(3)?),
                    next_attempt_ms: unms(r.get(4)?),
                })
            },
        )
        .optional()?
        // A lapsed lock protects nothing.
        .filter(|_| inactive_ms < policy.reglock_lapse_ms);
    Ok(Some(Holder {
        account,
        inactive_ms,
        lock,
    }))
}

fn transfer(
    conn: &Connection,
    from: &AccountId,
    to: &AccountId,
    username: &str,
) -> Result<(), StorageError> {
    conn.execute("DELETE FROM usernames WHERE account = ?1", params![from])?;
    conn.execute("DELETE FROM reglocks WHERE account = ?1", params![from])?;
    conn.execute(
        "INSERT INTO usernames (username, account) VALUES (?1, ?2)",
        params![username, to],
    )?;
    Ok(())
}

fn claim(
    conn: &Connection,
    policy: &Policy,
    account: AccountId,
    username: &str,
    pin: Option<[u8; 32]>,
    now_ms: u64,
) -> Result<Result<(), ClaimError>, StorageError> {
    match own_username(conn, &account)? {
        Some(own) if own == username => return Ok(Ok(())),
        Some(_) => return Ok(Err(ClaimError::AlreadyHasUsername)),
        None => {}
    }
    let Some(h) = holder(conn, username, now_ms, policy)? else {
        if quarantined(conn, username, now_ms)? {
            return Ok(Err(ClaimError::Taken));
        }
        conn.execute(
            "INSERT INTO usernames (username, account) VALUES (?1, ?2)",
            params![username, account],
        )?;
        return Ok(Ok(()));
    };
    let Some(mut lock) = h.lock else {
        if h.inactive_ms >= policy.username_release_ms {
            transfer(conn, &h.account, &account, username)?;
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
        transfer(conn, &h.account, &account, username)?;
        return Ok(Ok(()));
    }
    lock.failed += 1;
    conn.execute(
        "UPDATE reglocks SET failed = ?2, window_start_ms = ?3, next_attempt_ms = ?4
         WHERE account = ?1",
        params![
            h.account,
            lock.failed,
            ms(lock.window_start_ms),
            ms(now_ms + pin_backoff_ms(lock.failed))
        ],
    )?;
    Ok(Err(ClaimError::PinIncorrect {
        remaining: policy.pin_attempts_per_day.saturating_sub(lock.failed),
    }))
}

fn change(
    conn: &Connection,
    policy: &Policy,
    account: AccountId,
    username: &str,
    now_ms: u64,
) -> Result<Result<(), ChangeError>, StorageError> {
    let Some(own) = own_username(conn, &account)? else {
        return Ok(Err(ChangeError::NoUsername));
    };
    if own == username {
        return Ok(Ok(()));
    }
    if quarantined(conn, username, now_ms)? {
        return Ok(Err(ChangeError::Taken));
    }
    if let Some(h) = holder(conn, username, now_ms, policy)? {
        if h.lock.is_some() || h.inactive_ms < policy.username_release_ms {
            return Ok(Err(ChangeError::Taken));
        }
        conn.execute(
            "DELETE FROM usernames WHERE account = ?1",
            params![h.account],
        )?;
        conn.execute(
            "DELETE FROM reglocks WHERE account = ?1",
            params![h.account],
        )?;
    }
    conn.execute(
        "UPDATE usernames SET username = ?2 WHERE account = ?1",
        params![account, username],
    )?;
    Ok(Ok(()))
}

/// Whether `username`, held by nobody, is still reserved after its account was deleted.
fn quarantined(conn: &Connection, username: &str, now_ms: u64) -> Result<bool, StorageError> {
    let until: Option<i64> = conn
        .query_row(
            "SELECT claimable_after_ms FROM username_quarantine WHERE username = ?1",
            params![username],
            |r| r.get(0),
        )
        .optional()?;
    Ok(until.is_some_and(|t| now_ms < unms(t)))
}

fn delete_account(
    conn: &Connection,
    policy: &Policy,
    account: &AccountId,
    now_ms: u64,
) -> Result<(), StorageError> {
    if let Some(username) = own_username(conn, account)? {
        let had_lock = conn
            .query_row(
                "SELECT 1 FROM reglocks WHERE account = ?1",
                params![account],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        let until = quarantine_until_ms(policy, had_lock, now_ms);
        conn.execute(
            "INSERT INTO username_quarantine (username, claimable_after_ms) VALUES (?1, ?2)
             ON CONFLICT (username) DO UPDATE
             SET claimable_after_ms = MAX(claimable_after_ms, excluded.claimable_after_ms)",
            params![username, ms(until)],
        )?;
    }
    for table in ACCOUNT_TABLES {
        conn.execute(
            &format!("DELETE FROM {table} WHERE account = ?1"),
            params![account],
        )?;
    }
    Ok(())
}

fn counts(conn: &Connection, addr: Address) -> Result<PrekeyCounts, StorageError> {
    let one_time: u32 = conn.query_row(
        "SELECT COUNT(*) FROM one_time_prekeys WHERE account = ?1 AND device = ?2",
        params![addr.account, addr.device],
        |r| r.get(0),
    )?;
    let one_time_kem: u32 = conn.query_row(
        "SELECT COUNT(*) FROM one_time_kem_prekeys WHERE account = ?1 AND device = ?2",
        params![addr.account, addr.device],
        |r| r.get(0),
    )?;
    Ok(PrekeyCounts {
        one_time,
        one_time_kem,
    })
}

fn take_one_time(
    conn: &Connection,
    table: &str,
    addr: Address,
) -> Result<Option<Prekey>, StorageError> {
    let sql = format!(
        "DELETE FROM {table} WHERE account = ?1 AND device = ?2 AND key_id =
           (SELECT MIN(key_id) FROM {table} WHERE account = ?1 AND device = ?2)
         RETURNING key_id, body"
    );
    Ok(conn
        .query_row(&sql, params![addr.account, addr.device], |r| {
            Ok(Prekey {
                id: r.get(0)?,
                bytes: r.get(1)?,
            })
        })
        .optional()?)
}

fn single_key(
    conn: &Connection,
    table: &str,
    addr: Address,
) -> Result<Option<Prekey>, StorageError> {
    let sql = format!("SELECT key_id, body FROM {table} WHERE account = ?1 AND device = ?2");
    Ok(conn
        .query_row(&sql, params![addr.account, addr.device], |r| {
            Ok(Prekey {
                id: r.get(0)?,
                bytes: r.get(1)?,
            })
        })
        .optional()?)
}

fn put_single(
    conn: &Connection,
    table: &str,
    addr: Address,
    key: &Prekey,
) -> Result<(), StorageError> {
    let sql = format!(
        "INSERT INTO {table} (account, device, key_id, body) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (account, device) DO UPDATE SET key_id = excluded.key_id, body = excluded.body"
    );
    conn.execute(&sql, params![addr.account, addr.device, key.id, key.bytes])?;
    Ok(())
}

fn enqueue(
    c: &Connection,
    p: &Policy,
    recipient: Address,
    envelope: &[u8],
    now_ms: u64,
) -> Result<u64, EnqueueError> {
    let known: Option<i64> = c
        .prepare_cached("SELECT 1 FROM devices WHERE account = ?1 AND device = ?2")
        .map_err(StorageError::from)?
        .query_row(params![recipient.account, recipient.device], |r| r.get(0))
        .optional()
        .map_err(StorageError::from)?;
    if known.is_none() {
        return Err(EnqueueError::UnknownRecipient);
    }
    let queued: i64 = c
        .prepare_cached("SELECT COUNT(*) FROM messages WHERE account = ?1 AND device = ?2")
        .map_err(StorageError::from)?
        .query_row(params![recipient.account, recipient.device], |r| r.get(0))
        .map_err(StorageError::from)?;
    if unms(queued) >= p.mailbox_cap {
        return Err(EnqueueError::MailboxFull { cap: p.mailbox_cap });
    }
    c.prepare_cached(
        "INSERT INTO messages (account, device, received_ms, expires_ms, envelope)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .map_err(StorageError::from)?
    .execute(params![
        recipient.account,
        recipient.device,
        ms(now_ms),
        ms(now_ms.saturating_add(p.message_ttl_ms)),
        envelope
    ])
    .map_err(StorageError::from)?;
    Ok(unms(c.last_insert_rowid()))
}

impl Storage for SqliteStorage {
    async fn touch_device(&self, addr: Address, now_ms: u64) -> Result<(), StorageError> {
        self.run(move |c, _| touch(c, addr, now_ms)).await
    }

    async fn claim_username(
        &self,
        account: AccountId,
        username: String,
        pin: Option<[u8; 32]>,
        now_ms: u64,
    ) -> Result<(), ClaimError> {
        self.run(move |c, p| claim(c, p, account, &username, pin, now_ms))
            .await?
    }

    async fn lookup_username(&self, username: String) -> Result<Option<AccountId>, StorageError> {
        self.run(move |c, _| {
            Ok(c.query_row(
                "SELECT account FROM usernames WHERE username = ?1",
                params![username],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }

    async fn change_username(
        &self,
        account: AccountId,
        username: String,
        now_ms: u64,
    ) -> Result<(), ChangeError> {
        self.run(move |c, p| change(c, p, account, &username, now_ms))
            .await?
    }

    async fn release_username(&self, account: AccountId) -> Result<(), ReleaseError> {
        self.run(move |c, _| {
            let n = c.execute("DELETE FROM usernames WHERE account = ?1", params![account])?;
            Ok(if n == 0 {
                Err(ReleaseError::NoUsername)
            } else {
                Ok(())
            })
        })
        .await?
    }

    async fn set_reglock(
        &self,
        account: AccountId,
        verifier: [u8; 32],
    ) -> Result<(), StorageError> {
        let mut salt = [0u8; 16];
        OsRng.fill_bytes(&mut salt);
        let hash = reglock_hash(&salt, &verifier);
        self.run(move |c, _| {
            c.execute(
                "INSERT INTO reglocks (account, salt, hash) VALUES (?1, ?2, ?3)
                 ON CONFLICT (account) DO UPDATE SET salt = excluded.salt, hash = excluded.hash",
                params![account, salt, hash],
            )?;
            Ok(())
        })
        .await
    }

    async fn clear_reglock(&self, account: AccountId) -> Result<(), StorageError> {
        self.run(move |c, _| {
            c.execute("DELETE FROM reglocks WHERE account = ?1", params![account])?;
            Ok(())
        })
        .await
    }

    async fn put_signed_prekey(&self, addr: Address, key: Prekey) -> Result<(), StorageError> {
        self.run(move |c, _| put_single(c, "signed_prekeys", addr, &key))
            .await
    }

    async fn put_last_resort_kem(&self, addr: Address, key: Prekey) -> Result<(), StorageError> {
        self.run(move |c, _| put_single(c, "last_resort_kem_prekeys", addr, &key))
            .await
    }

    async fn add_one_time_prekeys(
        &self,
        addr: Address,
        kind: OneTimeKind,
        keys: Vec<Prekey>,
    ) -> Result<PrekeyCounts, UploadError> {
        self.run(move |c, p| {
            let (table, existing) = match kind {
                OneTimeKind::X25519 => ("one_time_prekeys", counts(c, addr)?.one_time),
                OneTimeKind::Kem => ("one_time_kem_prekeys", counts(c, addr)?.one_time_kem),
            };
            let incoming = u32::try_from(keys.len()).unwrap_or(u32::MAX);
            if existing.saturating_add(incoming) > p.max_prekeys {
                return Ok(Err(UploadError::TooMany { cap: p.max_prekeys }));
            }
            let sql = format!(
                "INSERT INTO {table} (account, device, key_id, body) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (account, device, key_id) DO UPDATE SET body = excluded.body"
            );
            let mut stmt = c.prepare_cached(&sql)?;
            for k in &keys {
                stmt.execute(params![addr.account, addr.device, k.id, k.bytes])?;
            }
            Ok(Ok(counts(c, addr)?))
        })
        .await?
    }

    async fn prekey_counts(&self, addr: Address) -> Result<PrekeyCounts, StorageError> {
        self.run(move |c, _| counts(c, addr)).await
    }

    async fn fetch_bundle(&self, addr: Address) -> Result<(Bundle, PrekeyCounts), BundleError> {
        self.run(move |c, _| {
            let Some(signed_prekey) = single_key(c, "signed_prekeys", addr)? else {
                return Ok(Err(BundleError::NotFound));
            };
            let one_time_prekey = take_one_time(c, "one_time_prekeys", addr)?;
            let kem_prekey = match take_one_time(c, "one_time_kem_prekeys", addr)? {
                Some(prekey) => Some(KemPrekey {
                    prekey,
                    last_resort: false,
                }),
                None => single_key(c, "last_resort_kem_prekeys", addr)?.map(|prekey| KemPrekey {
                    prekey,
                    last_resort: true,
                }),
            };
            let left = counts(c, addr)?;
            Ok(Ok((
                Bundle {
                    signed_prekey,
                    one_time_prekey,
                    kem_prekey,
                },
                left,
            )))
        })
        .await?
    }

    async fn enqueue_then(
        &self,
        recipient: Address,
        envelope: Vec<u8>,
        now_ms: u64,
        on_commit: OnCommit,
    ) -> Result<u64, EnqueueError> {
        let (tx, rx) = oneshot::channel::<Result<u64, EnqueueError>>();
        let job: Job = Box::new(move |conn, policy| {
            // A database error rolls the savepoint back; a refusal (unknown, full) wrote nothing.
            let result = in_savepoint(conn, |c| {
                match enqueue(c, policy, recipient, &envelope, now_ms) {
                    Err(EnqueueError::Storage(e)) => Err(e),
                    other => Ok(other),
                }
            })
            .map_err(EnqueueError::from)
            .and_then(|r| r);
            // Runs on the writer after the commit, in commit order.
            Box::new(move |committed: Result<(), StorageError>| {
                let result = committed.map_err(EnqueueError::from).and(result);
                if let Ok(id) = result {
                    on_commit(id);
                }
                let _ = tx.send(result);
            })
        });
        self.jobs.send(job).map_err(|_| StorageError::Closed)?;
        rx.await.map_err(|_| StorageError::Closed)?
    }

    async fn pending(
        &self,
        addr: Address,
        after_id: u64,
        limit: u32,
        now_ms: u64,
    ) -> Result<Vec<Delivery>, StorageError> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, received_ms, envelope FROM messages
                 WHERE account = ?1 AND device = ?2 AND id > ?3 AND expires_ms > ?4
                 ORDER BY id LIMIT ?5",
            )?;
            let rows = stmt.query_map(
                params![addr.account, addr.device, ms(after_id), ms(now_ms), limit],
                |r| {
                    Ok(Delivery {
                        message_id: unms(r.get(0)?),
                        received_at_ms: unms(r.get(1)?),
                        envelope: r.get(2)?,
                    })
                },
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn ack(&self, addr: Address, message_id: u64) -> Result<bool, StorageError> {
        self.run(move |c, _| {
            Ok(c.prepare_cached(
                "DELETE FROM messages WHERE id = ?1 AND account = ?2 AND device = ?3",
            )?
            .execute(params![ms(message_id), addr.account, addr.device])?
                > 0)
        })
        .await
    }

    async fn purge_expired(&self, now_ms: u64) -> Result<u64, StorageError> {
        self.run(move |c, _| {
            c.execute(
                "DELETE FROM username_quarantine WHERE claimable_after_ms <= ?1",
                params![ms(now_ms)],
            )?;
            Ok(c.execute(
                "DELETE FROM messages WHERE expires_ms <= ?1",
                params![ms(now_ms)],
            )? as u64)
        })
        .await
    }

    async fn delete_account(&self, account: AccountId, now_ms: u64) -> Result<(), StorageError> {
        self.run(move |c, p| delete_account(c, p, &account, now_ms))
            .await
    }

    async fn health(&self) -> Result<(), StorageError> {
        self.run(|c, _| {
            c.query_row("SELECT 1", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests;
