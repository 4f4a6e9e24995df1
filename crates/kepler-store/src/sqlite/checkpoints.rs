//! Checkpoints of the write-ahead log, by a thread of their own.
//!
//! By default SQLite checkpoints on the connection that commits once the log
//! holds 1,000 frames: the admission writer, the one thread every cold call
//! waits on, then copies pages to the database file and syncs it between two
//! batches. That was a ninth of its time; and waiting longer between
//! checkpoints, which copies a page written by many batches once, stalls it
//! for tens of milliseconds each time (docs/performance-limits.md,
//! "Session 19"). So the write connections checkpoint never, and this thread
//! does it beside them in two steps:
//!
//! - a passive checkpoint, which copies what the log holds while writers go
//!   on, each time commits have come in (at most every [`PASS_INTERVAL`], and
//!   every [`IDLE_INTERVAL`] in any case);
//! - once the log is past [`RESTART_FRAMES`], the same again while holding the
//!   writers' turn ([`WriteGate`]), which copies only what they wrote during the
//!   first step. The log is then wholly copied, so the next writer starts it
//!   over from the beginning instead of letting it grow.
//!
//! Started over, the log's file keeps its length. A burst that outran the
//! checkpoints (a long read holds them back) would leave that much on disk for
//! good, so once no commit has come in for an [`IDLE_INTERVAL`] and the file is
//! longer than [`LOG_FILE_KEPT_BYTES`], the thread copies the rest and cuts the
//! file to nothing (a `TRUNCATE` checkpoint, in the writers' turn). Doing that
//! on the commit path instead (`journal_size_limit`) cost a tenth of the cold
//! admissions (docs/performance-limits.md, "Session 21").

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use super::admissions::WriteGate;
use crate::{Result, StoreError};

/// The least time between two passive checkpoints under a stream of commits:
/// each syncs the file, and a page written by many batches meanwhile is
/// copied once.
const PASS_INTERVAL: Duration = Duration::from_millis(25);

/// How often the thread checkpoints when nobody told it of a commit (the
/// store's general writer does not; its commits are few).
const IDLE_INTERVAL: Duration = Duration::from_secs(1);

/// The log length (frames, of a page each) past which the log is started over.
pub(super) const RESTART_FRAMES: i64 = 4096;

/// The longest the log's file is left once the store is idle: four times the
/// log at [`RESTART_FRAMES`] (4 KiB pages). What a steady stream of admissions
/// grows it to (~40 MB) is kept, so the next stream does not grow it again.
pub(super) const LOG_FILE_KEPT_BYTES: u64 = 4 * RESTART_FRAMES as u64 * 4096;

/// The handle on the checkpoint thread.
#[derive(Debug)]
pub(super) struct Checkpointer {
    /// `None` once closed.
    commits: Mutex<Option<SyncSender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    /// Opens the thread's connection on the database file at `path` (already
    /// in WAL mode) and starts the thread.
    pub(super) fn open(path: &Path, gate: WriteGate) -> Result<Checkpointer> {
        let unavailable = |cause: String| {
            StoreError::Unavailable(format!(
                "cannot open {} for checkpoints: {cause}",
                path.display()
            ))
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn =
            Connection::open_with_flags(path, flags).map_err(|e| unavailable(e.to_string()))?;
        // A reader in the way of cutting the log makes the cut wait for the
        // next idle turn, not hold the writers' turn meanwhile.
        conn.busy_timeout(Duration::ZERO)
            .map_err(|e| unavailable(e.to_string()))?;
        let log = log_file(path);
        let (commits, arrivals) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("kepler-sqlite-ckpt".into())
            .spawn(move || run(conn, &log, arrivals, gate))
            .map_err(|e| unavailable(format!("cannot start its thread: {e}")))?;
        Ok(Checkpointer {
            commits: Mutex::new(Some(commits)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Says that a transaction committed: the log has grown. Never blocks.
    pub(super) fn committed(&self) {
        if let Ok(commits) = self.commits.lock()
            && let Some(commits) = commits.as_ref()
        {
            // Full: the thread has been told already.
            let _ = commits.try_send(());
        }
    }

    /// Stops the thread, after a last checkpoint.
    pub(super) async fn close(&self) {
        if let Ok(mut commits) = self.commits.lock() {
            commits.take();
        }
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            // Joining blocks: not on the runtime's own threads.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// SQLite's name for the log of the database file at `path`.
fn log_file(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

fn run(conn: Connection, log: &Path, commits: mpsc::Receiver<()>, gate: WriteGate) {
    let mut last_pass = Instant::now();
    loop {
        let idle = match commits.recv_timeout(IDLE_INTERVAL) {
            Ok(()) => false,
            Err(RecvTimeoutError::Timeout) => true,
            Err(RecvTimeoutError::Disconnected) => {
                let _ = passive(&conn);
                return;
            }
        };
        // Commits that come in meanwhile are one more signal, not one each.
        let since = last_pass.elapsed();
        if since < PASS_INTERVAL {
            std::thread::sleep(PASS_INTERVAL - since);
        }
        last_pass = Instant::now();
        match passive(&conn) {
            Ok(frames) if frames >= RESTART_FRAMES => {
                let turn = gate.blocking_lock();
                if let Err(error) = passive(&conn) {
                    tracing::warn!(%error, "checkpoint before restarting the log failed");
                }
                drop(turn);
            }
            Ok(_) => {}
            // Writers go on; the log grows until a later pass succeeds.
            Err(error) => tracing::warn!(%error, "checkpoint failed"),
        }
        if idle && std::fs::metadata(log).is_ok_and(|m| m.len() > LOG_FILE_KEPT_BYTES) {
            let turn = gate.blocking_lock();
            match truncate(&conn) {
                Ok(true) => {}
                Ok(false) => tracing::debug!("a read holds the log; cutting it waits"),
                Err(error) => tracing::warn!(%error, "cutting the log's file failed"),
            }
            drop(turn);
        }
    }
}

/// Copies the whole log and cuts its file to nothing; `false` when a read
/// still needed part of it (nothing is cut then).
fn truncate(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
        row.get::<_, i64>(0).map(|busy| busy == 0)
    })
}

/// A passive checkpoint (copies what it can without waiting for anyone);
/// returns the log's length in frames.
fn passive(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `rows` rows of about a page each (rounded down to whole
    /// transactions of 16), each transaction in the writers' turn and told to
    /// the thread, as the store's writers do.
    async fn write_pages(
        writer: Connection,
        rows: i64,
        gate: &WriteGate,
        checkpoints: &std::sync::Arc<Checkpointer>,
    ) -> Connection {
        let (gate, checkpoints) = (gate.clone(), checkpoints.clone());
        tokio::task::spawn_blocking(move || {
            for _ in 0..rows / 16 {
                let turn = gate.blocking_lock();
                writer.execute_batch("BEGIN IMMEDIATE").expect("begin");
                for _ in 0..16 {
                    writer
                        .execute("INSERT INTO pages (body) VALUES (zeroblob(3500))", [])
                        .expect("insert");
                }
                writer.execute_batch("COMMIT").expect("commit");
                drop(turn);
                checkpoints.committed();
            }
            writer
        })
        .await
        .expect("writer")
    }

    /// Writers that never checkpoint, as the store's are: with the thread
    /// beside them the log is copied and started over, instead of growing by
    /// every page they write, and nothing written is lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_is_copied_and_started_over_while_writers_go_on() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("kepler.db");
        let writer = Connection::open(&path).expect("open");
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                 PRAGMA wal_autocheckpoint = 0; CREATE TABLE pages (body BLOB NOT NULL);",
            )
            .expect("set up");
        let gate = WriteGate::default();
        let checkpoints =
            std::sync::Arc::new(Checkpointer::open(&path, gate.clone()).expect("open"));

        // About a page a row, in transactions of 16, each in its turn.
        let rows = 4 * RESTART_FRAMES;
        let writer = write_pages(writer, rows, &gate, &checkpoints).await;
        // The log's length now, in frames (its file keeps its longest size).
        let frames = passive(&writer).expect("checkpoint");
        assert!(
            frames < rows,
            "the log holds {frames} frames after {rows} pages were written: never started over"
        );

        checkpoints.close().await;
        drop(writer);
        let reader = Connection::open(&path).expect("reopen");
        let stored: i64 = reader
            .query_row("SELECT COUNT(*) FROM pages", [], |row| row.get(0))
            .expect("count");
        assert_eq!(stored, rows);
    }

    /// A read that holds the checkpoints back lets the log's file grow past
    /// what is kept; once the read ends and no commit comes in, the thread
    /// copies the rest and cuts the file, and nothing written is lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_file_is_cut_back_once_the_store_is_idle() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("kepler.db");
        let log = log_file(&path);
        Connection::open(&path)
            .expect("create")
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE pages (body BLOB NOT NULL); \
                 INSERT INTO pages (body) VALUES (zeroblob(10));",
            )
            .expect("set up");
        // The admission writer's own connection, with its settings.
        let writer =
            super::super::admissions::connect(&path, Duration::from_secs(1)).expect("open writer");
        let gate = WriteGate::default();
        let checkpoints =
            std::sync::Arc::new(Checkpointer::open(&path, gate.clone()).expect("open"));
        let reader = Connection::open(&path).expect("open reader");
        reader.execute_batch("BEGIN").expect("begin read");
        let _: i64 = reader
            .query_row("SELECT COUNT(*) FROM pages", [], |row| row.get(0))
            .expect("read");

        // About a page a row: the burst alone is longer than what is kept.
        let burst = (LOG_FILE_KEPT_BYTES / 4096) as i64 + RESTART_FRAMES;
        let writer = write_pages(writer, burst, &gate, &checkpoints).await;
        let grown = std::fs::metadata(&log).expect("log").len();
        assert!(
            grown > LOG_FILE_KEPT_BYTES,
            "the log's file is {grown} bytes after the burst: the read did not hold it back"
        );

        // While the read goes on, its part of the log stays.
        tokio::time::sleep(IDLE_INTERVAL * 3).await;
        let held = std::fs::metadata(&log).expect("log").len();
        assert_eq!(held, grown, "the log's file changed under a read");

        reader.execute_batch("COMMIT").expect("end read");
        drop(reader);
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut left = grown;
        while left > LOG_FILE_KEPT_BYTES && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            left = std::fs::metadata(&log).map_or(0, |m| m.len());
        }
        assert!(
            left <= LOG_FILE_KEPT_BYTES,
            "the log's file is still {left} bytes 20 s after the read ended (it grew to \
             {grown}; what is kept is {LOG_FILE_KEPT_BYTES})"
        );

        checkpoints.close().await;
        let stored: i64 = writer
            .query_row("SELECT COUNT(*) FROM pages", [], |row| row.get(0))
            .expect("count");
        assert_eq!(stored, 1 + burst / 16 * 16);
    }
}
