//! Whether anything was committed to the database file, by any connection of
//! any process, since a given moment.
//!
//! The question is asked on every cached hit, synchronously, from the
//! request's own task, so it must cost next to nothing. Every commit in WAL
//! mode rewrites the wal-index header at the start of the `-shm` file, which
//! every connection of every process shares (SQLite's "WAL-index format",
//! <https://sqlite.org/walformat.html>, fixed since 3.7.0 because different
//! SQLite versions share it). The header counts changes (`iChange`) and
//! carries the WAL's frame count, salts and a checksum over them, so two equal
//! reads of it mean no commit in between. Reading it is one `pread` of 96
//! bytes from the page cache: no lock, no SQLite statement.
//!
//! SQLite keeps two copies of the header, writes the second before the
//! first, and its readers only trust a read where the two agree; so do we. A
//! read caught mid-commit answers "unknown" and the caller reads the store.
//! A commit that finished before the read began has rewritten both.
//!
//! Where the file holds no valid header, the version is `PRAGMA
//! data_version` instead, on a connection of its own (rusqlite, the library
//! sqlx links): the same answer for a read transaction's worth of work,
//! about 4k instructions and a handful of `fcntl` locks a hit. Through sqlx
//! either would be a hand-off to the connection's thread and back, which cost
//! a quarter of a hit's throughput (docs/performance-limits.md).
//!
//! The version a request gets is read after the request arrived, so every
//! commit that finished before it (a key revoked by `kepler admin`, a record
//! stored by a worker) is seen.

use std::fs::File;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// 32-bit words in one copy of the wal-index header (48 bytes).
const HEADER_WORDS: usize = 12;
/// Both copies, in bytes.
const HEADERS_LEN: usize = 2 * HEADER_WORDS * 4;
/// `iVersion`, the header's first word, in every SQLite since 3.7.0.
const WAL_INDEX_VERSION: u32 = 3_007_000;

/// The database's version as one watch sees it: equal values mean no commit
/// in between. Only comparable with another read of the same watch.
pub(super) type DataVersion = [u32; HEADER_WORDS];

/// Reads the database's current version.
#[derive(Debug)]
pub(super) struct ChangeWatch {
    closed: AtomicBool,
    /// The `-shm` file; `None` where it holds no valid header.
    shared: Option<File>,
    /// For `PRAGMA data_version`; while open, its share of the `-shm` file
    /// also keeps SQLite from starting that file afresh. `None` once closed.
    conn: Mutex<Option<Connection>>,
}

impl ChangeWatch {
    /// Opens the watch on the database file at `path`, which the store's
    /// writer has already created and put in WAL mode.
    pub(super) fn open(path: &Path) -> rusqlite::Result<ChangeWatch> {
        // Read-write without create: it never writes, but a read-only
        // connection may not open a WAL file whose shared memory it cannot map.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(Duration::ZERO)?;
        // One read, so the header is there (and this connection shares it).
        data_version(&conn)?;
        let shared = match open_shared(path) {
            Ok(file) => Some(file),
            Err(error) => {
                tracing::info!(%error, "cannot read SQLite's wal-index header; watching for changes with PRAGMA data_version");
                None
            }
        };
        Ok(ChangeWatch {
            closed: AtomicBool::new(false),
            shared,
            conn: Mutex::new(Some(conn)),
        })
    }

    /// The database's version, read now; `None` if it could not be read (the
    /// caller then reads the store as if it had no memory).
    pub(super) fn current(&self) -> Option<DataVersion> {
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        if let Some(file) = &self.shared {
            return read_header(file);
        }
        let guard = self.conn.lock().ok()?;
        match data_version(guard.as_ref()?) {
            Ok(version) => {
                let mut words = [0; HEADER_WORDS];
                // Two's complement bits, split: only ever compared for equality.
                words[0] = version as u32;
                words[1] = (version >> 32) as u32;
                Some(words)
            }
            Err(error) => {
                tracing::debug!(%error, "cannot read the SQLite data version; answering from the file");
                None
            }
        }
    }

    /// Stops answering (every later [`ChangeWatch::current`] is `None`) and
    /// closes the connection, as the store's pools close.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if let Ok(mut guard) = self.conn.lock() {
            guard.take();
        }
    }
}

fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("PRAGMA data_version")?
        .query_row([], |row| row.get(0))
}

/// The `-shm` file next to the database at `db`, if it holds a valid header.
fn open_shared(db: &Path) -> std::io::Result<File> {
    let mut shm = db.as_os_str().to_owned();
    shm.push("-shm");
    let file = File::open(Path::new(&shm))?;
    if read_header(&file).is_none() {
        return Err(std::io::Error::other(
            "it holds no wal-index header of SQLite 3.7.0 or later",
        ));
    }
    Ok(file)
}

/// Both copies, read first to last as SQLite's readers read them; `None` when
/// they differ (a commit writing them), are cut short or are not a header.
fn read_header(file: &File) -> Option<DataVersion> {
    let mut bytes = [0; HEADERS_LEN];
    read_at(file, &mut bytes).ok()?;
    let word = |i: usize| {
        let at = 4 * i;
        u32::from_ne_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
    };
    let first: DataVersion = std::array::from_fn(word);
    let second: DataVersion = std::array::from_fn(|i| word(HEADER_WORDS + i));
    // `isInit` is the header's 13th byte.
    let initialised = bytes[12] == 1;
    (first == second && first[0] == WAL_INDEX_VERSION && initialised).then_some(first)
}

#[cfg(unix)]
fn read_at(file: &File, bytes: &mut [u8]) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, bytes, 0)
}

/// Elsewhere the PRAGMA answers.
#[cfg(not(unix))]
fn read_at(_: &File, _: &mut [u8]) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database(dir: &Path) -> (std::path::PathBuf, Connection) {
        let path = dir.join("watched.db");
        let writer = Connection::open(&path).expect("open");
        writer
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER);")
            .expect("schema");
        (path, writer)
    }

    #[test]
    fn a_commit_by_another_connection_changes_the_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, writer) = database(dir.path());
        let watch = ChangeWatch::open(&path).expect("watch");
        let before = watch.current().expect("version");
        assert_eq!(watch.current(), Some(before), "nothing committed");
        writer
            .execute("INSERT INTO t VALUES (1)", [])
            .expect("insert");
        let after = watch.current().expect("version");
        assert_ne!(after, before);
        assert_eq!(watch.current(), Some(after));
    }

    #[test]
    fn an_uncommitted_write_does_not_change_the_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, writer) = database(dir.path());
        let watch = ChangeWatch::open(&path).expect("watch");
        let before = watch.current();
        writer
            .execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (1);")
            .expect("write");
        assert_eq!(
            watch.current(),
            before,
            "a reader is never blocked by a writer"
        );
        writer.execute_batch("COMMIT").expect("commit");
        assert_ne!(watch.current(), before);
    }

    #[test]
    fn the_header_in_shared_memory_is_what_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, _writer) = database(dir.path());
        let watch = ChangeWatch::open(&path).expect("watch");
        assert!(watch.shared.is_some(), "no PRAGMA on a hit");
    }

    #[test]
    fn every_commit_changes_the_version_across_wal_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, writer) = database(dir.path());
        let watch = ChangeWatch::open(&path).expect("watch");
        let mut seen = vec![watch.current().expect("version")];
        for i in 0..200 {
            writer
                .execute("INSERT INTO t VALUES (?1)", [i])
                .expect("insert");
            if i % 50 == 49 {
                // Copies the WAL back; the next commit starts it afresh.
                writer
                    .query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
                    .expect("checkpoint");
            }
            let now = watch.current().expect("version");
            assert!(!seen.contains(&now), "commit {i} went unseen");
            seen.push(now);
        }
    }

    #[test]
    fn without_the_header_the_data_version_sees_commits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, writer) = database(dir.path());
        let watch = ChangeWatch::open(&path).expect("watch");
        let watch = ChangeWatch {
            shared: None,
            ..watch
        };
        let before = watch.current().expect("version");
        assert_eq!(watch.current(), Some(before), "nothing committed");
        writer
            .execute("INSERT INTO t VALUES (1)", [])
            .expect("insert");
        assert_ne!(watch.current(), Some(before));
    }

    #[test]
    fn a_closed_watch_knows_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, _writer) = database(dir.path());
        let watch = ChangeWatch::open(&path).expect("watch");
        assert!(watch.current().is_some());
        watch.close();
        assert_eq!(watch.current(), None);
    }
}
