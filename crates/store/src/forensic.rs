//! Looking for leftovers of deleted text through the database key: what a test (or a
//! privacy check) can prove about an encrypted profile, where grepping the file proves
//! nothing because every page is encrypted.

use rusqlite::types::ValueRef;

use crate::queries::QueryError;
use crate::store::Store;

/// What [`Store::scan_for`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leftovers {
    /// Tables (regular, virtual, and the FTS5 shadow tables) with a text or blob value that
    /// contains the bytes.
    pub tables: Vec<String>,
    /// The word is a term of the full-text index (`fts5vocab`), even if prefix compression
    /// keeps its bytes from appearing whole in the index blobs.
    pub fts_term: bool,
    /// `PRAGMA secure_delete` is on, so SQLite zeroes freed page space before the page is
    /// encrypted and written: deleted rows do not linger in free pages or free blocks.
    pub secure_delete: bool,
    /// FTS5's own `secure-delete` option is on, so deleting a row removes its entries from
    /// the index segments instead of adding delete markers next to them.
    pub fts_secure_delete: bool,
}

impl Store {
    /// Scans every table of the database for `needle` (bytes, case-sensitive) and the
    /// full-text index for it as a term (FTS5 lower-cases terms, so pass a lower-case word
    /// to make that check meaningful). Reads every row: for tests and diagnostics, not for
    /// the UI's hot paths.
    pub fn scan_for(&self, needle: &str) -> Result<Leftovers, QueryError> {
        let mut names = Vec::new();
        {
            let mut st = self.conn.prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' ORDER BY name",
            )?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                names.push(r.get::<_, String>(0)?);
            }
        }
        let bytes = needle.as_bytes();
        let contains =
            |hay: &[u8]| !bytes.is_empty() && hay.windows(bytes.len()).any(|w| w == bytes);
        let mut tables = Vec::new();
        for name in names {
            let quoted = name.replace('"', "\"\"");
            let mut st = self.conn.prepare(&format!("SELECT * FROM \"{quoted}\""))?;
            let n = st.column_count();
            let mut rows = st.query([])?;
            let mut found = false;
            while let Some(r) = rows.next()? {
                for i in 0..n {
                    if let ValueRef::Text(v) | ValueRef::Blob(v) = r.get_ref(i)?
                        && contains(v)
                    {
                        found = true;
                    }
                }
            }
            if found {
                tables.push(name);
            }
        }
        // A temp-schema vocabulary table: nothing is written to the profile's database.
        self.conn.execute_batch(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.sotto_scan_vocab \
             USING fts5vocab(main, messages_fts, row)",
        )?;
        let fts_term = self.conn.query_row(
            "SELECT count(*) FROM temp.sotto_scan_vocab WHERE term = ?1",
            [needle],
            |r| r.get::<_, i64>(0),
        )? > 0;
        self.conn
            .execute_batch("DROP TABLE temp.sotto_scan_vocab")?;
        let secure_delete = self
            .conn
            .query_row("PRAGMA secure_delete", [], |r| r.get::<_, i64>(0))?
            == 1;
        let fts_secure_delete = self.conn.query_row(
            "SELECT count(*) FROM messages_fts_config WHERE k = 'secure-delete' AND v = 1",
            [],
            |r| r.get::<_, i64>(0),
        )? == 1;
        Ok(Leftovers {
            tables,
            fts_term,
            secure_delete,
            fts_secure_delete,
        })
    }
}
