//! Opening the SQLCipher database and migrating its schema.

use std::path::Path;

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use crate::secret::DbKey;

/// Why the database could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum DbOpenError {
    /// The key does not decrypt the database.
    #[error("the database could not be opened with this key")]
    WrongKey,
    /// The database was written by a newer Sotto.
    #[error("the database schema version {found} is newer than this build supports ({supported})")]
    TooNew {
        /// Version found in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// SQLite failed.
    #[error("database error while opening (SQLite code {code:?})")]
    Sqlite {
        /// The SQLite error code.
        code: Option<ErrorCode>,
        /// The underlying error.
        #[source]
        source: rusqlite::Error,
    },
}

impl From<rusqlite::Error> for DbOpenError {
    fn from(source: rusqlite::Error) -> Self {
        let code = source.sqlite_error_code();
        if code == Some(ErrorCode::NotADatabase) {
            return Self::WrongKey;
        }
        Self::Sqlite { code, source }
    }
}

/// Opens (creating if needed) the encrypted database at `path` with `key`, sets the pragmas,
/// verifies the key and migrates.
pub(crate) fn open_encrypted(path: &Path, key: &DbKey) -> Result<Connection, DbOpenError> {
    open_keyed(path, key, Durability::Wal)
}

/// How a connection writes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Every profile connection: WAL, and an fsync with every commit (`synchronous = FULL`).
    Wal,
    /// A private new file that is built in one go under a temporary name and made durable by
    /// the caller (fsync) before it is renamed into place, and deleted on any error (backup
    /// import): the rollback journal is kept in memory and SQLite never fsyncs.
    Unsynced,
}

/// [`open_encrypted`] with the journal and sync settings of `durability`.
pub(crate) fn open_keyed(
    path: &Path,
    key: &DbKey,
    durability: Durability,
) -> Result<Connection, DbOpenError> {
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // Silence SQLCipher's own stderr logging (it would print e.g. HMAC failures).
    conn.execute_batch("PRAGMA cipher_log_level = NONE;")?;
    conn.execute_batch(&key.key_pragma())?;
    // Touching the schema is the first read: a wrong key fails here with SQLITE_NOTADB.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })?;
    match durability {
        Durability::Wal => configure(&conn)?,
        Durability::Unsynced => configure_unsynced(&conn)?,
    }
    migrate(&mut conn)?;
    Ok(conn)
}

/// Pragmas applied to every connection after keying.
pub(crate) fn configure(conn: &Connection) -> Result<(), DbOpenError> {
    conn.execute_batch(
        "PRAGMA secure_delete = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA foreign_keys = ON;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;",
    )?;
    Ok(())
}

/// [`configure`] for [`Durability::Unsynced`]: the same hardening, no WAL, no fsyncs.
fn configure_unsynced(conn: &Connection) -> Result<(), DbOpenError> {
    conn.execute_batch(
        "PRAGMA secure_delete = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA foreign_keys = ON;
         PRAGMA journal_mode = MEMORY;
         PRAGMA synchronous = OFF;",
    )?;
    Ok(())
}

/// Schema migrations; migration `i` moves `user_version` from `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: initial schema.
    r#"
CREATE TABLE own_identity (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    blob        BLOB NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE TABLE own_prekeys (
    kind        INTEGER NOT NULL,
    id          INTEGER NOT NULL,
    blob        BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
CREATE TABLE contacts (
    account_id    BLOB PRIMARY KEY CHECK (length(account_id) = 32),
    device_id     INTEGER NOT NULL,
    username      TEXT,
    display_name  TEXT,
    identity_key  BLOB NOT NULL,
    verification  INTEGER NOT NULL,
    blocked       INTEGER NOT NULL DEFAULT 0,
    request_state INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE identity_key_history (
    id            INTEGER PRIMARY KEY,
    account_id    BLOB NOT NULL REFERENCES contacts(account_id) ON DELETE CASCADE,
    identity_key  BLOB NOT NULL,
    first_seen    INTEGER NOT NULL,
    verified_how  INTEGER NOT NULL
);
CREATE INDEX identity_key_history_by_account ON identity_key_history(account_id, id);
CREATE TABLE sessions (
    account_id  BLOB NOT NULL,
    device_id   INTEGER NOT NULL,
    blob        BLOB NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, device_id)
) WITHOUT ROWID;
CREATE TABLE conversations (
    id                 INTEGER PRIMARY KEY,
    contact            BLOB NOT NULL UNIQUE REFERENCES contacts(account_id) ON DELETE CASCADE,
    disappearing_secs  INTEGER NOT NULL DEFAULT 0,
    unread             INTEGER NOT NULL DEFAULT 0,
    last_activity      INTEGER NOT NULL
);
CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    conversation    INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    direction       INTEGER NOT NULL,
    sender_account  BLOB NOT NULL,
    sender_device   INTEGER NOT NULL,
    body            TEXT NOT NULL,
    sent_at         INTEGER NOT NULL,
    received_at     INTEGER,
    state           INTEGER NOT NULL,
    expire_timer    INTEGER NOT NULL DEFAULT 0,
    expires_at      INTEGER,
    relay_id        BLOB
);
CREATE INDEX messages_by_conversation ON messages(conversation, id);
CREATE INDEX messages_by_expiry ON messages(expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    recipient       BLOB NOT NULL,
    recipient_device INTEGER NOT NULL,
    message         INTEGER REFERENCES messages(id) ON DELETE SET NULL,
    envelope        BLOB NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
);
CREATE TABLE processed_relay_ids (
    relay_id      BLOB PRIMARY KEY,
    processed_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  BLOB NOT NULL
) WITHOUT ROWID;
CREATE VIRTUAL TABLE messages_fts USING fts5(body, content='messages', content_rowid='id');
INSERT INTO messages_fts(messages_fts, rank) VALUES ('secure-delete', 1);
CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
END;
CREATE TRIGGER messages_fts_au AFTER UPDATE OF body ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
    INSERT INTO messages_fts(rowid, body) VALUES (new.id, new.body);
END;
"#,
    // 2: the sender's client message id, so redeliveries are recognised and receipts can name
    // the messages they cover; contacts found by their current identity key.
    r#"
ALTER TABLE messages ADD COLUMN client_id BLOB CHECK (client_id IS NULL OR length(client_id) = 16);
CREATE UNIQUE INDEX messages_by_client_id ON messages(conversation, direction, client_id)
    WHERE client_id IS NOT NULL;
CREATE INDEX contacts_by_identity_key ON contacts(identity_key);
"#,
    // 3: the search backlog. Messages whose id is in [lo, hi] of its single row are not in the
    // FTS index yet (a backup import restores the rows and leaves the indexing to
    // `Store::index_search_backlog`, newest first); every other message is. The triggers keep
    // that invariant: they touch the index only for ids outside the backlog.
    r#"
CREATE TABLE search_backlog (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    lo  INTEGER NOT NULL,
    hi  INTEGER NOT NULL
);
DROP TRIGGER messages_fts_ai;
DROP TRIGGER messages_fts_ad;
DROP TRIGGER messages_fts_au;
CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages
WHEN NOT EXISTS (SELECT 1 FROM search_backlog WHERE new.id BETWEEN lo AND hi) BEGIN
    INSERT INTO messages_fts(rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages
WHEN NOT EXISTS (SELECT 1 FROM search_backlog WHERE old.id BETWEEN lo AND hi) BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
END;
CREATE TRIGGER messages_fts_au AFTER UPDATE OF body ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, body) SELECT 'delete', old.id, old.body
        WHERE NOT EXISTS (SELECT 1 FROM search_backlog WHERE old.id BETWEEN lo AND hi);
    INSERT INTO messages_fts(rowid, body) SELECT new.id, new.body
        WHERE NOT EXISTS (SELECT 1 FROM search_backlog WHERE new.id BETWEEN lo AND hi);
END;
"#,
];

/// Newest schema version this build knows.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Applies every pending migration in one immediate transaction. Idempotent.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), DbOpenError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(DbOpenError::TooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_from_empty_and_is_idempotent() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let tables = |c: &Connection| -> i64 {
            c.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
                .unwrap()
        };
        let before = tables(&conn);
        migrate(&mut conn).unwrap();
        assert_eq!(tables(&conn), before);
        assert!(before > 10);
    }

    /// A profile from before the search backlog (schema 2) keeps a consistent index through
    /// the migration and afterwards.
    #[test]
    fn upgrade_to_the_search_backlog_keeps_the_index_consistent() {
        let mut conn = Connection::open_in_memory().unwrap();
        for (i, sql) in MIGRATIONS[..2].iter().enumerate() {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", i as i64 + 1)
                .unwrap();
        }
        conn.execute_batch(
            "INSERT INTO contacts VALUES (zeroblob(32), 1, NULL, NULL, x'01', 0, 0, 1, 0);
             INSERT INTO conversations (id, contact, last_activity) VALUES (1, zeroblob(32), 0);
             INSERT INTO messages (conversation, direction, sender_account, sender_device,
                 body, sent_at, state) VALUES (1, 0, zeroblob(32), 1, 'before upgrade', 0, 0),
                 (1, 0, zeroblob(32), 1, 'also before', 0, 0);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        conn.execute_batch(
            "DELETE FROM messages WHERE id = 1;
             UPDATE messages SET body = 'edited after' WHERE id = 2;
             INSERT INTO messages (conversation, direction, sender_account, sender_device,
                 body, sent_at, state) VALUES (1, 0, zeroblob(32), 1, 'after upgrade', 0, 0);
             INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1);",
        )
        .unwrap();
        let hits = |q: &str| -> i64 {
            conn.query_row(
                "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?1",
                [q],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert_eq!(hits("before"), 0);
        assert_eq!(hits("edited"), 1);
        assert_eq!(hits("after"), 2);
    }

    #[test]
    fn refuses_newer_schema() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(DbOpenError::TooNew { found: 99, .. })
        ));
    }

    #[test]
    fn fts5_secure_delete_is_on() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .query_row(
                "SELECT v FROM messages_fts_config WHERE k = 'secure-delete'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(v, 1);
    }
}

#[cfg(test)]
mod plan_tests {
    use super::*;

    #[test]
    fn newest_messages_use_the_conversation_index() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let mut st = conn
            .prepare(
                "EXPLAIN QUERY PLAN SELECT * FROM messages WHERE conversation = 1 AND id < 99
                 ORDER BY id DESC LIMIT 50",
            )
            .unwrap();
        let plan: Vec<String> = st
            .query_map([], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains("messages_by_conversation"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }

    /// Proves on a plaintext (unkeyed) database with the same pragmas and schema that a
    /// deleted message's words are wiped from the file pages, table and FTS index alike.
    #[test]
    fn deleted_words_leave_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("plain.db");
        let word = b"xylophonicwordtodelete";
        {
            let mut conn = Connection::open(&path).unwrap();
            configure(&conn).unwrap();
            migrate(&mut conn).unwrap();
            conn.execute_batch(
                "INSERT INTO contacts VALUES (zeroblob(32), 1, NULL, NULL, x'01', 0, 0, 1, 0);
                 INSERT INTO conversations (id, contact, last_activity) VALUES (1, zeroblob(32), 0);",
            )
            .unwrap();
            for i in 0..50 {
                conn.execute(
                    "INSERT INTO messages (conversation, direction, sender_account, sender_device,
                         body, sent_at, state) VALUES (1, 0, zeroblob(32), 1, ?1, 0, 0)",
                    [format!("keep{i} filler text {}", "abc ".repeat(20))],
                )
                .unwrap();
            }
            conn.execute(
                "INSERT INTO messages (id, conversation, direction, sender_account, sender_device,
                     body, sent_at, state) VALUES (1000, 1, 0, zeroblob(32), 1,
                     'xylophonicwordtodelete secret', 0, 0)",
                [],
            )
            .unwrap();
            conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
                .unwrap();
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                bytes.windows(word.len()).any(|w| w == word),
                "control: word is on disk"
            );
            conn.execute("DELETE FROM messages WHERE id = 1000", [])
                .unwrap();
            conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
                .unwrap();
            conn.close().unwrap();
        }
        for entry in std::fs::read_dir(tmp.path()).unwrap() {
            let p = entry.unwrap().path();
            let bytes = std::fs::read(&p).unwrap();
            assert!(
                !bytes.windows(word.len()).any(|w| w == word),
                "word left in {p:?}"
            );
        }
    }
}

#[cfg(test)]
mod pragma_tests {
    use super::*;

    #[test]
    fn encrypted_connection_has_the_hardening_pragmas() {
        let tmp = tempfile::tempdir().unwrap();
        let key = DbKey::generate().unwrap();
        let conn = open_encrypted(&tmp.path().join("x.db"), &key).unwrap();
        let text = |sql: &str| -> String {
            conn.query_row(sql, [], |r| r.get::<_, rusqlite::types::Value>(0))
                .map(|v| format!("{v:?}"))
                .unwrap()
        };
        assert!(text("PRAGMA cipher_log_level").contains("NONE"));
        assert!(text("PRAGMA journal_mode").contains("wal"));
        assert_eq!(text("PRAGMA secure_delete"), "Integer(1)");
        assert_eq!(text("PRAGMA foreign_keys"), "Integer(1)");
        assert_eq!(text("PRAGMA temp_store"), "Integer(2)");
        assert!(!text("PRAGMA cipher_version").is_empty());
        drop(conn);
        let other = DbKey::generate().unwrap();
        assert!(matches!(
            open_encrypted(&tmp.path().join("x.db"), &other),
            Err(DbOpenError::WrongKey)
        ));
    }
}
