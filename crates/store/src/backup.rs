//! Encrypted backup files: a logical dump of the profile's tables, encrypted under a
//! passphrase in authenticated chunks. Byte layout (integers big-endian; see docs/STORE.md):
//!
//! ```text
//! header (57 bytes, associated data of every chunk):
//!   0   8  magic "SOTTOBAK"
//!   8   1  version = 1
//!   9   1  kdf = 1 (Argon2id v0x13)
//!   10 12  m_cost KiB, t_cost, p_cost (u32 each)
//!   22 16  salt
//!   38 19  nonce prefix (random)
//! 57  16  key check: XChaCha20-Poly1305 tag over "" with nonce prefix||0xffffffff||0x02
//! then chunks: u32 ciphertext length, ciphertext (plaintext <= 64 KiB, + 16-byte tag)
//!   nonce = prefix(19) || chunk counter u32 || final flag (1 on the last chunk, else 0)
//! ```
//! Nothing may follow the final chunk. Truncation, reordering, and tampering all fail.
//!
//! The plaintext is a dump: "SOTTODMP", u32 dump version, then per table: u8 1, name, u16
//! column count, column names, then rows (u8 2, values), then u8 3 ends the table; u8 0 ends
//! the dump. Names are u16-length UTF-8; values are tagged: 0 null, 1 i64, 2 f64, 3 text (u32
//! length), 4 blob (u32 length).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand_core::{OsRng, RngCore};
use rusqlite::types::{ToSqlOutput, ValueRef};
use zeroize::Zeroizing;

use crate::db::{self, DbOpenError};
use crate::fsutil;
use crate::keyfile::{KdfParams, KeyFileError};
use crate::queries::QueryError;
use crate::secret::{DbKey, Passphrase};
use crate::store::{CreateError, KeyProtection, Store};

const MAGIC: &[u8; 8] = b"SOTTOBAK";
const VERSION: u8 = 1;
const KDF_ARGON2ID: u8 = 1;
const PREFIX_LEN: usize = 19;
const HEADER_LEN: usize = 38 + PREFIX_LEN;
const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
const DUMP_MAGIC: &[u8; 8] = b"SOTTODMP";
const DUMP_VERSION: u32 = 1;

/// Tables in the dump, in foreign-key-safe insertion order. The FTS index is rebuilt by the
/// insert triggers on import.
const TABLES: &[&str] = &[
    "own_identity",
    "own_prekeys",
    "contacts",
    "identity_key_history",
    "sessions",
    "conversations",
    "messages",
    "outbox",
    "processed_relay_ids",
    "settings",
];

/// Progress of an export or import.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Bytes processed so far.
    pub done: u64,
    /// Total bytes.
    pub total: u64,
}

/// Why an export failed. The destination file is not created on error.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the database failed.
    #[error("could not read the database for the backup: {0}")]
    Database(#[from] QueryError),
    /// The Argon2id parameters are out of range.
    #[error("the backup's Argon2id parameters are out of range")]
    BadParams,
    /// The random number generator failed.
    #[error("the operating system's random number generator failed")]
    Random,
    /// Writing failed.
    #[error("could not write the backup file: {0}")]
    Io(#[from] io::Error),
}

/// Why an import failed. On every error the target profile folder is left as it was.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Not a Sotto backup, or an unsupported version.
    #[error("this is not a Sotto backup file of a supported version")]
    NotABackup,
    /// The passphrase does not open the backup (or its header was altered).
    #[error("wrong backup passphrase (or the backup header was altered)")]
    WrongPassphrase,
    /// The file ends early.
    #[error("the backup file is truncated")]
    Truncated,
    /// A chunk failed authentication, or chunks were reordered or appended.
    #[error("the backup file was altered or damaged")]
    Tampered,
    /// The decrypted content is not a valid dump.
    #[error("the backup content is malformed")]
    Malformed,
    /// The target folder already holds a profile.
    #[error("the target folder already holds a profile; import needs a fresh one")]
    TargetExists,
    /// The Argon2id parameters are out of range.
    #[error("the backup's Argon2id parameters are out of range")]
    BadParams,
    /// Protecting the new profile's key failed (keyring or key file).
    #[error(transparent)]
    Protect(#[from] CreateError),
    /// Writing the new database failed.
    #[error("could not write the restored database: {0}")]
    Database(#[from] DbOpenError),
    /// Reading the file failed.
    #[error("could not read the backup file: {0}")]
    Io(#[from] io::Error),
}

impl From<rusqlite::Error> for ImportError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Database(DbOpenError::from(e))
    }
}

fn nonce(prefix: &[u8], counter: u32, flag: u8) -> [u8; 24] {
    let mut n = [0u8; 24];
    n[..PREFIX_LEN].copy_from_slice(prefix);
    n[PREFIX_LEN..23].copy_from_slice(&counter.to_be_bytes());
    n[23] = flag;
    n
}

/// Appends to a zeroizing buffer without leaving copies behind: when it must grow, the
/// contents move to a new, larger zeroizing buffer and the old one is wiped on drop (a plain
/// `Vec` reallocation would free the old bytes unwiped).
fn put(buf: &mut Zeroizing<Vec<u8>>, bytes: &[u8]) {
    if buf.capacity() - buf.len() < bytes.len() {
        let want = (buf.len() + bytes.len()).max(buf.capacity() * 2).max(4096);
        let mut bigger = Zeroizing::new(Vec::with_capacity(want));
        bigger.extend_from_slice(buf);
        *buf = bigger;
    }
    buf.extend_from_slice(bytes);
}

fn put_name(out: &mut Zeroizing<Vec<u8>>, s: &str) {
    put(out, &(s.len() as u16).to_be_bytes());
    put(out, s.as_bytes());
}

fn dump(store: &Store) -> Result<Zeroizing<Vec<u8>>, QueryError> {
    let mut out = Zeroizing::new(Vec::new());
    put(&mut out, DUMP_MAGIC);
    put(&mut out, &DUMP_VERSION.to_be_bytes());
    for table in TABLES {
        let mut st = store.conn.prepare(&format!("SELECT * FROM {table}"))?;
        let cols: Vec<String> = st.column_names().map(|c| c.to_string()).collect();
        put(&mut out, &[1]);
        put_name(&mut out, table);
        put(&mut out, &(cols.len() as u16).to_be_bytes());
        for c in &cols {
            put_name(&mut out, c);
        }
        let mut rows = st.query([])?;
        while let Some(row) = rows.next()? {
            put(&mut out, &[2]);
            for i in 0..cols.len() {
                match row.get_ref(i)? {
                    ValueRef::Null => put(&mut out, &[0]),
                    ValueRef::Integer(v) => {
                        put(&mut out, &[1]);
                        put(&mut out, &v.to_be_bytes());
                    }
                    ValueRef::Real(v) => {
                        put(&mut out, &[2]);
                        put(&mut out, &v.to_be_bytes());
                    }
                    ValueRef::Text(b) => {
                        put(&mut out, &[3]);
                        put(&mut out, &(b.len() as u32).to_be_bytes());
                        put(&mut out, b);
                    }
                    ValueRef::Blob(b) => {
                        put(&mut out, &[4]);
                        put(&mut out, &(b.len() as u32).to_be_bytes());
                        put(&mut out, b);
                    }
                }
            }
        }
        put(&mut out, &[3]);
    }
    put(&mut out, &[0]);
    Ok(out)
}

/// Writes an encrypted backup of `store` to `path` (replaced atomically).
pub fn export(
    store: &Store,
    path: &Path,
    passphrase: &Passphrase,
    params: KdfParams,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), ExportError> {
    let plain = dump(store)?;
    let mut salt = [0u8; 16];
    let mut prefix = [0u8; PREFIX_LEN];
    OsRng
        .try_fill_bytes(&mut salt)
        .map_err(|_| ExportError::Random)?;
    OsRng
        .try_fill_bytes(&mut prefix)
        .map_err(|_| ExportError::Random)?;
    let key = params
        .derive(passphrase, &salt)
        .map_err(|_| ExportError::BadParams)?;
    let aead = XChaCha20Poly1305::new(Key::from_slice(key.as_ref()));
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.push(VERSION);
    header.push(KDF_ARGON2ID);
    params.write_to(&mut header);
    header.extend_from_slice(&salt);
    header.extend_from_slice(&prefix);
    let seal = |n: [u8; 24], msg: &[u8]| {
        aead.encrypt(XNonce::from_slice(&n), Payload { msg, aad: &header })
            .map_err(|_| ExportError::BadParams)
    };
    let check = seal(nonce(&prefix, u32::MAX, 2), b"")?;

    let mut tmp_name = path.file_name().map(|n| n.to_owned()).unwrap_or_default();
    tmp_name.push(".partial");
    let tmp = path.with_file_name(tmp_name);
    let result = (|| -> Result<(), ExportError> {
        let mut f = io::BufWriter::new(File::create(&tmp)?);
        f.write_all(&header)?;
        f.write_all(&check)?;
        let total = plain.len() as u64;
        let chunks: Vec<&[u8]> = if plain.is_empty() {
            vec![&[][..]]
        } else {
            plain.chunks(CHUNK).collect()
        };
        let last = chunks.len() - 1;
        let mut done = 0u64;
        for (i, c) in chunks.iter().enumerate() {
            let counter = u32::try_from(i).map_err(|_| io::Error::other("backup too large"))?;
            let ct = seal(nonce(&prefix, counter, u8::from(i == last)), c)?;
            f.write_all(&(ct.len() as u32).to_be_bytes())?;
            f.write_all(&ct)?;
            done += c.len() as u64;
            progress(Progress { done, total });
        }
        let f = f.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            fsutil::sync_dir(dir)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Reads and fully authenticates a backup, returning the plaintext dump.
fn decrypt(
    path: &Path,
    passphrase: &Passphrase,
    progress: &mut dyn FnMut(Progress),
) -> Result<Zeroizing<Vec<u8>>, ImportError> {
    let mut f = io::BufReader::new(File::open(path)?);
    let total = fs::metadata(path)?.len();
    let mut header = [0u8; HEADER_LEN];
    read_exact(&mut f, &mut header)?;
    if &header[..8] != MAGIC || header[8] != VERSION || header[9] != KDF_ARGON2ID {
        return Err(ImportError::NotABackup);
    }
    let params = KdfParams::read_from(&header[10..22]).ok_or(ImportError::NotABackup)?;
    let prefix = &header[38..HEADER_LEN];
    let key = params
        .derive(passphrase, &header[22..38])
        .map_err(|e| match e {
            KeyFileError::BadParams => ImportError::BadParams,
            _ => ImportError::NotABackup,
        })?;
    let aead = XChaCha20Poly1305::new(Key::from_slice(key.as_ref()));
    let open = |n: [u8; 24], msg: &[u8]| {
        aead.decrypt(XNonce::from_slice(&n), Payload { msg, aad: &header })
    };
    let mut check = [0u8; TAG];
    read_exact(&mut f, &mut check)?;
    open(nonce(prefix, u32::MAX, 2), &check).map_err(|_| ImportError::WrongPassphrase)?;

    let mut plain = Zeroizing::new(Vec::new());
    let mut done = (HEADER_LEN + TAG) as u64;
    let mut counter = 0u32;
    loop {
        let mut len = [0u8; 4];
        read_exact(&mut f, &mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        if !(TAG..=CHUNK + TAG).contains(&len) {
            return Err(ImportError::Tampered);
        }
        let mut ct = vec![0u8; len];
        read_exact(&mut f, &mut ct)?;
        done += 4 + len as u64;
        progress(Progress { done, total });
        if let Ok(pt) = open(nonce(prefix, counter, 0), &ct) {
            put(&mut plain, &Zeroizing::new(pt));
        } else if let Ok(pt) = open(nonce(prefix, counter, 1), &ct) {
            put(&mut plain, &Zeroizing::new(pt));
            let mut extra = [0u8; 1];
            if f.read(&mut extra)? != 0 {
                return Err(ImportError::Tampered);
            }
            return Ok(plain);
        } else {
            return Err(ImportError::Tampered);
        }
        counter = counter.checked_add(1).ok_or(ImportError::Tampered)?;
    }
}

fn read_exact(f: &mut impl Read, buf: &mut [u8]) -> Result<(), ImportError> {
    f.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ImportError::Truncated
        } else {
            e.into()
        }
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ImportError> {
        if self.0.len() < n {
            return Err(ImportError::Malformed);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, ImportError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<usize, ImportError> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }
    fn u32(&mut self) -> Result<usize, ImportError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
    fn i64(&mut self) -> Result<[u8; 8], ImportError> {
        self.take(8)?.try_into().map_err(|_| ImportError::Malformed)
    }
    fn name(&mut self) -> Result<&'a str, ImportError> {
        let n = self.u16()?;
        let s = std::str::from_utf8(self.take(n)?).map_err(|_| ImportError::Malformed)?;
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(ImportError::Malformed);
        }
        Ok(s)
    }
}

fn restore(conn: &mut rusqlite::Connection, dump: &[u8]) -> Result<(), ImportError> {
    let mut r = Reader(dump);
    if r.take(8)? != DUMP_MAGIC || r.u32()? != DUMP_VERSION as usize {
        return Err(ImportError::Malformed);
    }
    let tx = conn.transaction()?;
    loop {
        match r.u8()? {
            0 => break,
            1 => {}
            _ => return Err(ImportError::Malformed),
        }
        let table = r.name()?;
        if !TABLES.contains(&table) {
            return Err(ImportError::Malformed);
        }
        let ncols = r.u16()?;
        let cols = (0..ncols)
            .map(|_| r.name())
            .collect::<Result<Vec<_>, _>>()?;
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            cols.join(", "),
            vec!["?"; ncols].join(", ")
        );
        let mut st = tx.prepare(&sql)?;
        loop {
            match r.u8()? {
                3 => break,
                2 => {}
                _ => return Err(ImportError::Malformed),
            }
            let mut vals = Vec::with_capacity(ncols);
            for _ in 0..ncols {
                vals.push(match r.u8()? {
                    0 => ValueRef::Null,
                    1 => ValueRef::Integer(i64::from_be_bytes(r.i64()?)),
                    2 => ValueRef::Real(f64::from_be_bytes(r.i64()?)),
                    3 => {
                        let n = r.u32()?;
                        let b = r.take(n)?;
                        std::str::from_utf8(b).map_err(|_| ImportError::Malformed)?;
                        ValueRef::Text(b)
                    }
                    4 => {
                        let n = r.u32()?;
                        ValueRef::Blob(r.take(n)?)
                    }
                    _ => return Err(ImportError::Malformed),
                });
            }
            // Borrowed straight from the zeroizing dump buffer: no unwiped copies.
            st.execute(rusqlite::params_from_iter(
                vals.into_iter().map(ToSqlOutput::Borrowed),
            ))?;
        }
    }
    if !r.0.is_empty() {
        return Err(ImportError::Malformed);
    }
    tx.commit()?;
    Ok(())
}

/// Restores a backup into a FRESH profile folder `dir` with a new database key protected as
/// `protection`. The whole file is authenticated before anything is written; the database is
/// built under a temporary name and renamed into place only when complete, so on any error
/// the folder is left as it was.
pub fn import(
    path: &Path,
    passphrase: &Passphrase,
    dir: &Path,
    protection: KeyProtection<'_>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Store, ImportError> {
    if Store::exists(dir) {
        return Err(ImportError::TargetExists);
    }
    let plain = decrypt(path, passphrase, progress)?;
    let created_dir = !dir.exists();
    fs::create_dir_all(dir)?;
    let tmp = dir.join("sotto.db.import");
    let cleanup = |dir: &Path| {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = fs::remove_file(dir.join(format!("sotto.db.import{suffix}")));
        }
        if created_dir {
            let _ = fs::remove_dir(dir);
        }
    };
    let result = (|| -> Result<DbKey, ImportError> {
        let key = DbKey::generate().map_err(|_| ImportError::Protect(CreateError::Random))?;
        let mut conn = db::open_encrypted(&tmp, &key)?;
        restore(&mut conn, &plain)?;
        conn.close().map_err(|(_, e)| ImportError::from(e))?;
        Ok(key)
    })();
    let key = match result {
        Ok(k) => k,
        Err(e) => {
            cleanup(dir);
            return Err(e);
        }
    };
    Store::adopt_database(dir, &tmp, key, protection).map_err(|e| {
        cleanup(dir);
        ImportError::Protect(e)
    })
}
