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
//!
//! Both directions stream: export seals each 64 KiB of dump as soon as it is full, and import
//! authenticates one chunk at a time while restoring into a temporary database inside a single
//! transaction that is only committed (and the database only adopted) once the final chunk
//! has authenticated. Plaintext lives only in zeroizing buffers of about one chunk (or one row,
//! if a row is larger).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use rand_core::{OsRng, RngCore};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
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
/// Output buffer of the backup file: a few framed chunks per write(2).
const WRITE_BUF: usize = 4 * (4 + CHUNK + TAG);

/// Tables in the dump, in foreign-key-safe insertion order. The FTS index is not dumped: an
/// import puts every restored message in the search backlog (see `build`).
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

/// Settings key that an import sets in the restored profile: the client then replaces its
/// prekeys on the relay when it next connects and deletes the key (see docs/CLIENT.md).
pub const RESTORED_MARKER: &str = "store.restored_from_backup";

/// Progress of an export or import.
///
/// Export: `done` is the number of dump (plaintext) bytes sealed so far; `total` is an
/// estimate taken before the dump starts (the database's used pages × page size, which
/// over-estimates because it includes indexes and the search index), never below `done`,
/// and equal to `done` in the last call. Import: `done` is the number of backup file bytes
/// read and authenticated so far and `total` is the file's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Bytes processed so far.
    pub done: u64,
    /// Total bytes (an estimate during export; see the type's docs).
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

impl From<rusqlite::Error> for ExportError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Database(QueryError::from(e))
    }
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

/// Makes room for `extra` more bytes in a zeroizing buffer without leaving copies behind:
/// when it must grow, the contents move to a new, larger zeroizing buffer and the old one is
/// wiped on drop (a plain `Vec` reallocation would free the old bytes unwiped). Growth is
/// geometric, so appending costs amortised O(1) per byte.
fn reserve(buf: &mut Zeroizing<Vec<u8>>, extra: usize) {
    if buf.capacity() - buf.len() < extra {
        let want = (buf.len() + extra).max(buf.capacity() * 2).max(4096);
        let mut bigger = Zeroizing::new(Vec::with_capacity(want));
        bigger.extend_from_slice(buf);
        *buf = bigger;
    }
}

/// Collects dump bytes into one 64 KiB plaintext chunk at a time; a full chunk is sealed in
/// place (so the buffer then holds only ciphertext) and written as soon as more data
/// arrives, which is how the last chunk is known to be final.
struct ChunkWriter<'a, W: Write> {
    out: W,
    aead: &'a XChaCha20Poly1305,
    header: &'a [u8],
    prefix: &'a [u8],
    /// Plaintext of the chunk being filled; capacity CHUNK, never reallocated.
    buf: Zeroizing<Vec<u8>>,
    counter: u32,
    done: u64,
    estimate: u64,
    progress: &'a mut dyn FnMut(Progress),
}

impl<W: Write> ChunkWriter<'_, W> {
    fn put(&mut self, mut bytes: &[u8]) -> Result<(), ExportError> {
        while !bytes.is_empty() {
            if self.buf.len() == CHUNK {
                self.seal(false)?;
            }
            let n = (CHUNK - self.buf.len()).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        Ok(())
    }

    fn put_name(&mut self, s: &str) -> Result<(), ExportError> {
        let len = u16::try_from(s.len()).map_err(|_| io::Error::other("name too long"))?;
        self.put(&len.to_be_bytes())?;
        self.put(s.as_bytes())
    }

    fn seal(&mut self, last: bool) -> Result<(), ExportError> {
        let n = nonce(self.prefix, self.counter, u8::from(last));
        let tag = self
            .aead
            .encrypt_in_place_detached(XNonce::from_slice(&n), self.header, &mut self.buf)
            .map_err(|_| io::Error::other("chunk encryption failed"))?;
        let len = self.buf.len();
        self.out.write_all(&((len + TAG) as u32).to_be_bytes())?;
        self.out.write_all(&self.buf)?;
        self.out.write_all(&tag)?;
        self.buf.clear();
        self.done += len as u64;
        if !last {
            self.counter = self
                .counter
                .checked_add(1)
                .ok_or_else(|| io::Error::other("backup too large"))?;
        }
        let total = if last {
            self.done
        } else {
            self.estimate.max(self.done)
        };
        (self.progress)(Progress {
            done: self.done,
            total,
        });
        Ok(())
    }

    /// Seals the remaining bytes as the final chunk and returns the writer.
    fn finish(mut self) -> Result<W, ExportError> {
        self.seal(true)?;
        Ok(self.out)
    }
}

/// Writes a tagged u32-length value.
fn put_var<W: Write>(w: &mut ChunkWriter<'_, W>, tag: u8, b: &[u8]) -> Result<(), ExportError> {
    let len = u32::try_from(b.len()).map_err(|_| io::Error::other("value too large"))?;
    let mut head = [tag, 0, 0, 0, 0];
    head[1..].copy_from_slice(&len.to_be_bytes());
    w.put(&head)?;
    w.put(b)
}

/// Streams the dump of `store` into `w`.
fn dump<W: Write>(store: &Store, w: &mut ChunkWriter<'_, W>) -> Result<(), ExportError> {
    w.put(DUMP_MAGIC)?;
    w.put(&DUMP_VERSION.to_be_bytes())?;
    let now = crate::store::now_ms();
    for table in TABLES {
        // A disappearing message whose time ran out (while the app was closed, say) is not
        // carried into a backup; the next open would delete it anyway.
        let filter = if *table == "messages" {
            format!(" WHERE expires_at IS NULL OR expires_at > {now}")
        } else {
            String::new()
        };
        let mut st = store
            .conn
            .prepare(&format!("SELECT * FROM {table}{filter}"))?;
        let ncols = st.column_count();
        w.put(&[1])?;
        w.put_name(table)?;
        let count = u16::try_from(ncols).map_err(|_| io::Error::other("too many columns"))?;
        w.put(&count.to_be_bytes())?;
        for c in st.column_names() {
            w.put_name(c)?;
        }
        let mut rows = st.query([])?;
        while let Some(row) = rows.next()? {
            w.put(&[2])?;
            for i in 0..ncols {
                let mut fixed = [0u8; 9];
                match row.get_ref(i)? {
                    ValueRef::Null => w.put(&[0])?,
                    ValueRef::Integer(v) => {
                        fixed[0] = 1;
                        fixed[1..].copy_from_slice(&v.to_be_bytes());
                        w.put(&fixed)?;
                    }
                    ValueRef::Real(v) => {
                        fixed[0] = 2;
                        fixed[1..].copy_from_slice(&v.to_be_bytes());
                        w.put(&fixed)?;
                    }
                    ValueRef::Text(b) => put_var(w, 3, b)?,
                    ValueRef::Blob(b) => put_var(w, 4, b)?,
                }
            }
        }
        w.put(&[3])?;
    }
    w.put(&[0])
}

fn header(params: KdfParams, salt: &[u8; 16], prefix: &[u8; PREFIX_LEN]) -> Vec<u8> {
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.push(VERSION);
    header.push(KDF_ARGON2ID);
    params.write_to(&mut header);
    header.extend_from_slice(salt);
    header.extend_from_slice(prefix);
    header
}

/// Writes an encrypted backup of `store` to `path` (replaced atomically). The dump is sealed
/// and written one 64 KiB chunk at a time; memory use does not grow with the profile.
pub fn export(
    store: &Store,
    path: &Path,
    passphrase: &Passphrase,
    params: KdfParams,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), ExportError> {
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
    let header = header(params, &salt, &prefix);
    let check = aead
        .encrypt_in_place_detached(
            XNonce::from_slice(&nonce(&prefix, u32::MAX, 2)),
            &header,
            &mut [],
        )
        .map_err(|_| ExportError::BadParams)?;
    let estimate = {
        let pragma = |name: &str| -> Result<u64, rusqlite::Error> {
            // SQLCipher answers `PRAGMA page_size` itself, as text.
            let v = store
                .conn
                .query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, Value>(0))?;
            Ok(match v {
                Value::Integer(i) => u64::try_from(i).unwrap_or(0),
                Value::Text(t) => t.trim().parse().unwrap_or(0),
                _ => 0,
            })
        };
        pragma("page_count")?
            .saturating_sub(pragma("freelist_count")?)
            .saturating_mul(pragma("page_size")?)
    };

    let mut tmp_name = path.file_name().map(|n| n.to_owned()).unwrap_or_default();
    tmp_name.push(".partial");
    let tmp = path.with_file_name(tmp_name);
    let result = (|| -> Result<(), ExportError> {
        let mut f = io::BufWriter::with_capacity(WRITE_BUF, File::create(&tmp)?);
        f.write_all(&header)?;
        f.write_all(&check)?;
        let mut w = ChunkWriter {
            out: f,
            aead: &aead,
            header: &header,
            prefix: &prefix,
            buf: Zeroizing::new(Vec::with_capacity(CHUNK)),
            counter: 0,
            done: 0,
            estimate,
            progress,
        };
        dump(store, &mut w)?;
        let f = w.finish()?.into_inner().map_err(|e| e.into_error())?;
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

fn read_exact(f: &mut impl Read, buf: &mut [u8]) -> Result<(), ImportError> {
    f.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ImportError::Truncated
        } else {
            e.into()
        }
    })
}

/// Reads and authenticates the chunks of a backup one at a time.
struct ChunkReader<'a, R: Read> {
    src: R,
    aead: XChaCha20Poly1305,
    header: [u8; HEADER_LEN],
    counter: u32,
    /// The final chunk has been read (and nothing follows it).
    finished: bool,
    done: u64,
    total: u64,
    progress: &'a mut dyn FnMut(Progress),
}

impl<'a, R: Read> ChunkReader<'a, R> {
    /// Reads the header and checks the passphrase; nothing has been written when this fails.
    fn open(
        mut src: R,
        total: u64,
        passphrase: &Passphrase,
        progress: &'a mut dyn FnMut(Progress),
    ) -> Result<Self, ImportError> {
        let mut header = [0u8; HEADER_LEN];
        read_exact(&mut src, &mut header)?;
        if &header[..8] != MAGIC || header[8] != VERSION || header[9] != KDF_ARGON2ID {
            return Err(ImportError::NotABackup);
        }
        let params = KdfParams::read_from(&header[10..22]).ok_or(ImportError::NotABackup)?;
        let key = params
            .derive(passphrase, &header[22..38])
            .map_err(|e| match e {
                KeyFileError::BadParams => ImportError::BadParams,
                _ => ImportError::NotABackup,
            })?;
        let aead = XChaCha20Poly1305::new(Key::from_slice(key.as_ref()));
        let mut check = [0u8; TAG];
        read_exact(&mut src, &mut check)?;
        let n = nonce(&header[38..], u32::MAX, 2);
        aead.decrypt_in_place_detached(
            XNonce::from_slice(&n),
            &header,
            &mut [],
            Tag::from_slice(&check),
        )
        .map_err(|_| ImportError::WrongPassphrase)?;
        Ok(Self {
            src,
            aead,
            header,
            counter: 0,
            finished: false,
            done: (HEADER_LEN + TAG) as u64,
            total,
            progress,
        })
    }

    /// Reads the next chunk, authenticates it and appends its plaintext to `buf` (decrypting
    /// in place, so no other copy exists). Returns false once the final chunk has been read.
    fn next_into(&mut self, buf: &mut Zeroizing<Vec<u8>>) -> Result<bool, ImportError> {
        if self.finished {
            return Ok(false);
        }
        let mut len = [0u8; 4];
        read_exact(&mut self.src, &mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        if !(TAG..=CHUNK + TAG).contains(&len) {
            return Err(ImportError::Tampered);
        }
        let start = buf.len();
        reserve(buf, len);
        buf.resize(start + len, 0);
        read_exact(&mut self.src, &mut buf[start..])?;
        let (body, tag) = buf[start..].split_at_mut(len - TAG);
        let tag = Tag::from_slice(tag);
        let prefix = &self.header[38..];
        // The tag is verified before anything is decrypted, so a failed attempt leaves the
        // ciphertext intact for the second one.
        let last = if self
            .aead
            .decrypt_in_place_detached(
                XNonce::from_slice(&nonce(prefix, self.counter, 0)),
                &self.header,
                body,
                tag,
            )
            .is_ok()
        {
            false
        } else if self
            .aead
            .decrypt_in_place_detached(
                XNonce::from_slice(&nonce(prefix, self.counter, 1)),
                &self.header,
                body,
                tag,
            )
            .is_ok()
        {
            true
        } else {
            return Err(ImportError::Tampered);
        };
        buf.truncate(start + len - TAG);
        self.done += 4 + len as u64;
        if last {
            let mut extra = [0u8; 1];
            if self.src.read(&mut extra)? != 0 {
                return Err(ImportError::Tampered);
            }
            self.finished = true;
        } else {
            self.counter = self.counter.checked_add(1).ok_or(ImportError::Tampered)?;
        }
        (self.progress)(Progress {
            done: self.done,
            total: self.total,
        });
        Ok(true)
    }

    /// Reads and authenticates every remaining chunk; returns how many plaintext bytes they
    /// held.
    fn drain(&mut self, scratch: &mut Zeroizing<Vec<u8>>) -> Result<u64, ImportError> {
        let mut extra = 0u64;
        loop {
            scratch.clear();
            if !self.next_into(scratch)? {
                return Ok(extra);
            }
            extra += scratch.len() as u64;
        }
    }
}

/// Parses the dump as it is decrypted. Bytes from `mark` on stay in the buffer (so a whole
/// row can be bound to the INSERT straight from it); bytes before `mark` are discarded when
/// room is needed for the next chunk.
struct DumpReader<'a, R: Read> {
    chunks: ChunkReader<'a, R>,
    buf: Zeroizing<Vec<u8>>,
    mark: usize,
    pos: usize,
}

impl<R: Read> DumpReader<'_, R> {
    /// Makes at least `n` unread bytes available.
    fn fill(&mut self, n: usize) -> Result<(), ImportError> {
        while self.buf.len() - self.pos < n {
            if self.buf.capacity() - self.buf.len() < CHUNK + TAG && self.mark > 0 {
                self.buf.copy_within(self.mark.., 0);
                let keep = self.buf.len() - self.mark;
                self.buf.truncate(keep);
                self.pos -= self.mark;
                self.mark = 0;
            }
            if !self.chunks.next_into(&mut self.buf)? {
                return Err(ImportError::Malformed);
            }
        }
        Ok(())
    }

    /// Consumes `n` bytes; returns their range relative to `mark`.
    fn take(&mut self, n: usize) -> Result<(usize, usize), ImportError> {
        self.fill(n)?;
        let start = self.pos - self.mark;
        self.pos += n;
        Ok((start, start + n))
    }

    fn bytes(&self, (a, b): (usize, usize)) -> &[u8] {
        &self.buf[self.mark + a..self.mark + b]
    }

    fn u8(&mut self) -> Result<u8, ImportError> {
        self.fill(1)?;
        let b = self.buf[self.pos];
        self.pos += 1;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ImportError> {
        let r = self.take(N)?;
        self.bytes(r).try_into().map_err(|_| ImportError::Malformed)
    }

    fn u16(&mut self) -> Result<usize, ImportError> {
        Ok(usize::from(u16::from_be_bytes(self.array()?)))
    }

    fn u32(&mut self) -> Result<usize, ImportError> {
        Ok(u32::from_be_bytes(self.array()?) as usize)
    }

    fn name(&mut self) -> Result<String, ImportError> {
        let n = self.u16()?;
        let r = self.take(n)?;
        let s = std::str::from_utf8(self.bytes(r)).map_err(|_| ImportError::Malformed)?;
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(ImportError::Malformed);
        }
        Ok(s.to_owned())
    }
}

/// Rows per multi-row `INSERT` during an import: each statement execution opens and closes
/// the table's cursors once per batch instead of once per row.
const BATCH_ROWS: usize = 64;
/// A batch is written early once its rows hold this many dump bytes, so the read buffer (which
/// keeps a batch's bytes until they are bound) stays about one chunk in size.
const BATCH_BYTES: usize = CHUNK / 2;
/// SQLite's limit on parameters per statement (SQLITE_MAX_VARIABLE_NUMBER since 3.32).
const MAX_PARAMS: usize = 32766;

/// Binds one row's values straight from the zeroizing read buffer (no unwiped copies on our
/// side) to parameters `first + 1 ..`.
fn bind_row<R: Read>(
    st: &mut rusqlite::Statement<'_>,
    r: &DumpReader<'_, R>,
    first: usize,
    row: &[(u8, (usize, usize))],
) -> Result<(), ImportError> {
    for (i, &(tag, span)) in row.iter().enumerate() {
        let b = r.bytes(span);
        let v = match tag {
            0 => ValueRef::Null,
            1 => ValueRef::Integer(i64::from_be_bytes(
                b.try_into().map_err(|_| ImportError::Malformed)?,
            )),
            2 => ValueRef::Real(f64::from_be_bytes(
                b.try_into().map_err(|_| ImportError::Malformed)?,
            )),
            3 => {
                std::str::from_utf8(b).map_err(|_| ImportError::Malformed)?;
                ValueRef::Text(b)
            }
            _ => ValueRef::Blob(b),
        };
        st.raw_bind_parameter(first + i + 1, ToSqlOutput::Borrowed(v))?;
    }
    Ok(())
}

/// Restores a dump inside `tx`. The caller commits only after this returns Ok, which
/// happens only once every chunk, including the final one, has authenticated.
fn restore<R: Read>(
    tx: &rusqlite::Transaction<'_>,
    r: &mut DumpReader<'_, R>,
) -> Result<(), ImportError> {
    if r.array::<8>()? != *DUMP_MAGIC || r.u32()? != DUMP_VERSION as usize {
        return Err(ImportError::Malformed);
    }
    // (tag, range relative to the batch's mark) per column of every row of the current batch.
    let mut spans: Vec<(u8, (usize, usize))> = Vec::new();
    loop {
        r.mark = r.pos;
        match r.u8()? {
            0 => break,
            1 => {}
            _ => return Err(ImportError::Malformed),
        }
        let table = r.name()?;
        if !TABLES.contains(&table.as_str()) {
            return Err(ImportError::Malformed);
        }
        let ncols = r.u16()?;
        let cols = (0..ncols)
            .map(|_| r.name())
            .collect::<Result<Vec<_>, _>>()?;
        let batch = (MAX_PARAMS / ncols.max(1)).clamp(1, BATCH_ROWS);
        let insert = |rows: usize| {
            let row = format!("({})", vec!["?"; ncols].join(", "));
            format!(
                "INSERT INTO {table} ({}) VALUES {}",
                cols.join(", "),
                vec![row; rows].join(", ")
            )
        };
        let mut one = tx.prepare(&insert(1))?;
        let mut many = tx.prepare(&insert(batch))?;
        // Ratchet sessions are parsed but never restored: if the old device kept chatting
        // after the export they are stale (the peer has moved on, and reusing a chain would
        // reuse message keys), so the restored profile starts a fresh PQXDH session with each
        // contact on its next message instead.
        let keep = table != "sessions";
        // Rows parsed but not yet inserted; their bytes stay in the buffer from `r.mark` on.
        let mut pending = 0;
        spans.clear();
        loop {
            if pending == 0 {
                r.mark = r.pos;
            }
            let end = match r.u8()? {
                3 => true,
                2 => false,
                _ => return Err(ImportError::Malformed),
            };
            if !end {
                for _ in 0..ncols {
                    let tag = r.u8()?;
                    let span = match tag {
                        0 => (0, 0),
                        1 | 2 => r.take(8)?,
                        3 | 4 => {
                            let n = r.u32()?;
                            r.take(n)?
                        }
                        _ => return Err(ImportError::Malformed),
                    };
                    spans.push((tag, span));
                }
                pending += 1;
            }
            let full = pending == batch || r.pos - r.mark >= BATCH_BYTES;
            if pending > 0 && (end || full) {
                if pending == batch {
                    for (j, row) in spans.chunks_exact(ncols.max(1)).enumerate() {
                        bind_row(&mut many, r, j * ncols, row)?;
                    }
                    if keep {
                        many.raw_execute()?;
                    }
                } else {
                    for row in spans.chunks_exact(ncols.max(1)) {
                        bind_row(&mut one, r, 0, row)?;
                        if keep {
                            one.raw_execute()?;
                        }
                    }
                }
                pending = 0;
                spans.clear();
            }
            if end {
                break;
            }
        }
    }
    Ok(())
}

/// Builds the restored database in `tmp`: one transaction, committed only after the whole
/// file has authenticated and the dump ended exactly at the end of the final chunk.
fn build<R: Read>(tmp: &Path, key: &DbKey, r: &mut DumpReader<'_, R>) -> Result<(), ImportError> {
    // Bulk-load settings for this private, fresh file (deleted on any error, and renamed into
    // place only when complete, which is what makes the import atomic):
    // - the rollback journal in memory and no fsyncs while loading (`Durability::Unsynced`;
    //   the transaction can still be rolled back); the file is fsynced once, below, before
    //   the caller renames it into place;
    // - a 32 MiB page cache so index pages are not spilled and rewritten mid-load.
    // The search index is not built here: every restored message goes into the search backlog
    // (docs/STORE.md, "Search backlog"), whose triggers leave the FTS index alone, and is
    // indexed afterwards, newest first, by `Store::index_search_backlog` (the client's event
    // pump does it in small batches). Building it here took as long as the rest of the import.
    let mut conn = db::open_keyed(tmp, key, db::Durability::Unsynced)?;
    conn.execute_batch("PRAGMA cache_size = -32768;")?;
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO search_backlog (id, lo, hi) VALUES (1, ?1, ?2)",
        [i64::MIN, i64::MAX],
    )?;
    // The FTS insert trigger would leave every restored message alone anyway (they are all in
    // the backlog), but running it per row cost as much as the inserts themselves: it is
    // dropped for the load and recreated from its stored SQL in the same transaction.
    let trigger: String = tx.query_row(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'messages_fts_ai'",
        [],
        |row| row.get(0),
    )?;
    tx.execute_batch("DROP TRIGGER messages_fts_ai")?;
    let restored = match restore(&tx, r) {
        Ok(()) => true,
        Err(ImportError::Malformed) => false,
        Err(e) => return Err(e),
    };
    // Authenticate everything that is left, even after a malformed dump, so that damage is
    // reported as such rather than as malformed content.
    let mut scratch = Zeroizing::new(Vec::new());
    let leftover = r.buf.len() - r.pos;
    let rest = r.chunks.drain(&mut scratch)?;
    if !restored || leftover != 0 || rest != 0 {
        return Err(ImportError::Malformed);
    }
    // Narrow the backlog to the restored ids (none: no backlog at all).
    // (Two subqueries: min and max together in one SELECT would scan the table.)
    let ids: (Option<i64>, Option<i64>) = tx.query_row(
        "SELECT (SELECT min(id) FROM messages), (SELECT max(id) FROM messages)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    match ids {
        (Some(lo), Some(hi)) => {
            tx.execute("UPDATE search_backlog SET lo = ?1, hi = ?2", [lo, hi])?
        }
        _ => tx.execute("DELETE FROM search_backlog", [])?,
    };
    tx.execute_batch(&trigger)?;
    tx.execute(
        "INSERT OR REPLACE INTO settings (key, value) VALUES (?1, x'01')",
        [RESTORED_MARKER],
    )?;
    tx.commit()?;
    // Leave the file in WAL mode (as every profile database is), then make it durable.
    conn.execute_batch("PRAGMA journal_mode = WAL;")?;
    conn.close().map_err(|(_, e)| ImportError::from(e))?;
    File::open(tmp)?.sync_all()?;
    Ok(())
}

/// Restores a backup into a FRESH profile folder `dir` with a new database key protected as
/// `protection`. The passphrase is checked before anything is written; the chunks are then
/// authenticated one by one while the database is built under a temporary name in a single
/// transaction that is committed only when the final chunk has authenticated, and the
/// database is renamed into place only when complete, so on any error the folder is left as
/// it was.
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
    let file = File::open(path)?;
    let total = file.metadata()?.len();
    let chunks = ChunkReader::open(
        io::BufReader::with_capacity(WRITE_BUF, file),
        total,
        passphrase,
        progress,
    )?;
    let mut reader = DumpReader {
        chunks,
        buf: Zeroizing::new(Vec::with_capacity(2 * (CHUNK + TAG))),
        mark: 0,
        pos: 0,
    };
    let created_dir = !dir.exists();
    fs::create_dir_all(dir)?;
    let tmp = dir.join("sotto.db.import");
    let remove_tmp = |dir: &Path| {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = fs::remove_file(dir.join(format!("sotto.db.import{suffix}")));
        }
    };
    // An import interrupted by a crash or power loss leaves its unfinished temporary file
    // (under a key that is gone); the folder holds no profile, so it is ours to remove.
    remove_tmp(dir);
    let cleanup = |dir: &Path| {
        remove_tmp(dir);
        if created_dir {
            let _ = fs::remove_dir(dir);
        }
    };
    let result = (|| -> Result<DbKey, ImportError> {
        let key = DbKey::generate().map_err(|_| ImportError::Protect(CreateError::Random))?;
        build(&tmp, &key, &mut reader)?;
        Ok(key)
    })();
    drop(reader);
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

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: KdfParams = KdfParams {
        m_cost_kib: 1024,
        t_cost: 1,
        p_cost: 1,
    };

    /// Seals `plain` as a backup file's content, bypassing the dump (for malformed dumps).
    fn seal_file(path: &Path, plain: &[u8]) {
        let (salt, prefix) = ([1u8; 16], [2u8; PREFIX_LEN]);
        let key = FAST.derive(&Passphrase::from("pw"), &salt).unwrap();
        let aead = XChaCha20Poly1305::new(Key::from_slice(key.as_ref()));
        let header = header(FAST, &salt, &prefix);
        let n = nonce(&prefix, u32::MAX, 2);
        let check = aead
            .encrypt_in_place_detached(XNonce::from_slice(&n), &header, &mut [])
            .unwrap();
        let mut out = header.clone();
        out.extend_from_slice(&check);
        let mut progress = |_| {};
        let mut w = ChunkWriter {
            out,
            aead: &aead,
            header: &header,
            prefix: &prefix,
            buf: Zeroizing::new(Vec::with_capacity(CHUNK)),
            counter: 0,
            done: 0,
            estimate: 0,
            progress: &mut progress,
        };
        w.put(plain).unwrap();
        fs::write(path, w.finish().unwrap()).unwrap();
    }

    fn import_plain(plain: &[u8]) -> (tempfile::TempDir, Result<Store, ImportError>) {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("b");
        seal_file(&file, plain);
        let pw = Passphrase::from("new");
        let r = import(
            &file,
            &Passphrase::from("pw"),
            &tmp.path().join("dst"),
            KeyProtection::Passphrase(&pw, FAST),
            &mut |_| {},
        );
        (tmp, r)
    }

    fn dump_head() -> Vec<u8> {
        let mut d = DUMP_MAGIC.to_vec();
        d.extend_from_slice(&DUMP_VERSION.to_be_bytes());
        d
    }

    #[test]
    fn an_empty_dump_restores_an_empty_profile() {
        let mut d = dump_head();
        d.push(0);
        let (_tmp, r) = import_plain(&d);
        let store = r.unwrap();
        assert!(store.conversations().unwrap().is_empty());
        assert!(store.search("anything", 5).unwrap().is_empty());
        assert!(!store.search_backlog_pending().unwrap());
    }

    #[test]
    fn authentic_but_malformed_dumps_are_refused_and_leave_nothing() {
        let mut trailing = dump_head();
        trailing.extend_from_slice(&[0, 0]);
        let mut unknown_table = dump_head();
        unknown_table.extend_from_slice(&[1, 0, 5]);
        unknown_table.extend_from_slice(b"users");
        // A row that spans several chunks and then the dump stops mid-value.
        let mut cut_value = dump_head();
        cut_value.extend_from_slice(&[1, 0, 8]);
        cut_value.extend_from_slice(b"settings");
        cut_value.extend_from_slice(&[
            0, 2, 0, 3, b'k', b'e', b'y', 0, 5, b'v', b'a', b'l', b'u', b'e',
        ]);
        cut_value.extend_from_slice(&[2, 3, 0, 0, 0, 1, b'k', 4, 0x7f, 0xff, 0xff, 0xff]);
        cut_value.extend_from_slice(&vec![7u8; 3 * CHUNK]);
        for plain in [
            &b"not a dump"[..],
            trailing.as_slice(),
            unknown_table.as_slice(),
            cut_value.as_slice(),
            &[][..],
        ] {
            let (tmp, r) = import_plain(plain);
            assert!(matches!(r, Err(ImportError::Malformed)), "{:?}", r.err());
            assert!(!tmp.path().join("dst").exists());
        }
    }

    #[test]
    fn an_unfinished_import_left_by_a_crash_does_not_block_the_next() {
        let mut d = dump_head();
        d.push(0);
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("b");
        seal_file(&file, &d);
        let dst = tmp.path().join("dst");
        fs::create_dir_all(&dst).unwrap();
        for suffix in ["", "-journal", "-wal"] {
            fs::write(dst.join(format!("sotto.db.import{suffix}")), b"leftover").unwrap();
        }
        let pw = Passphrase::from("new");
        import(
            &file,
            &Passphrase::from("pw"),
            &dst,
            KeyProtection::Passphrase(&pw, FAST),
            &mut |_| {},
        )
        .unwrap();
        assert!(!dst.join("sotto.db.import").exists());
        assert!(Store::exists(&dst));
    }

    #[test]
    fn a_row_larger_than_two_chunks_round_trips() {
        let mut d = dump_head();
        d.extend_from_slice(&[1, 0, 8]);
        d.extend_from_slice(b"settings");
        d.extend_from_slice(&[
            0, 2, 0, 3, b'k', b'e', b'y', 0, 5, b'v', b'a', b'l', b'u', b'e',
        ]);
        let big: Vec<u8> = (0..5 * CHUNK + 3).map(|i| (i % 253) as u8).collect();
        d.extend_from_slice(&[2, 3, 0, 0, 0, 1, b'k', 4]);
        d.extend_from_slice(&(big.len() as u32).to_be_bytes());
        d.extend_from_slice(&big);
        d.extend_from_slice(&[3, 0]);
        let (_tmp, r) = import_plain(&d);
        assert_eq!(r.unwrap().setting("k").unwrap().unwrap(), big);
    }
}
