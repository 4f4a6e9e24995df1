//! Whether anything was committed to the database file, by any connection of
//! any process, since a given moment.
//!
//! SQLite answers it with `PRAGMA data_version`: on one connection, the value
//! changes whenever another connection has committed in the meantime. The
//! question is asked on every cached hit, so it is asked synchronously, on a
//! connection of its own opened with rusqlite (the same SQLite library sqlx
//! links), from the request's own task. Through sqlx the statement would be
//! handed to the connection's thread and back: two thread wake-ups that cost
//! more than the statement (issue 6: a quarter of a hit's throughput on two
//! cores, `docs/performance-limits.md`). The statement reads the WAL index in
//! shared memory and, after a commit, page 1 from the OS's cache: microseconds,
//! never a wait on a lock (the connection's busy timeout is zero; a busy file
//! answers "unknown", and the caller then reads the store).
//!
//! The version a request gets is read after the request arrived, so every
//! commit that finished before it (a key revoked by `kepler admin`, a record
//! stored by a worker) is seen.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// The database's version as one connection sees it: equal values mean no
/// commit in between.
pub(super) type DataVersion = i64;

/// Reads the database's current version. One connection, shared: a version is
/// only comparable with another read on the same connection.
#[derive(Debug)]
pub(super) struct ChangeWatch {
    /// `None` once closed.
    conn: Mutex<Option<Connection>>,
}

impl ChangeWatch {
    /// Opens the checking connection on the database file at `path`, which
    /// the store's writer has already created and put in WAL mode.
    pub(super) fn open(path: &Path) -> rusqlite::Result<ChangeWatch> {
        // Read-write without create: it never writes, but a read-only
        // connection may not open a WAL file whose shared memory it cannot map.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(Duration::ZERO)?;
        Ok(ChangeWatch {
            conn: Mutex::new(Some(conn)),
        })
    }

    /// The database's version, read now; `None` if it could not be read (the
    /// caller then reads the store as if it had no memory).
    pub(super) fn current(&self) -> Option<DataVersion> {
        let guard = self.conn.lock().ok()?;
        let conn = guard.as_ref()?;
        let version = conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut statement| statement.query_row([], |row| row.get(0)));
        match version {
            Ok(version) => Some(version),
            Err(error) => {
                tracing::debug!(%error, "cannot read the SQLite data version; answering from the file");
                None
            }
        }
    }

    /// Stops answering (every later [`ChangeWatch::current`] is `None`) and
    /// closes the checking connection, as the store's pools close.
    pub(super) fn close(&self) {
        if let Ok(mut guard) = self.conn.lock() {
            guard.take();
        }
    }
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
    fn a_closed_watch_knows_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, _writer) = database(dir.path());
        let watch = ChangeWatch::open(&path).expect("watch");
        assert!(watch.current().is_some());
        watch.close();
        assert_eq!(watch.current(), None);
    }
}
