//! Whether anything was committed to the database file, by any connection of
//! any process, since a given moment.
//!
//! SQLite answers it with `PRAGMA data_version`: on one connection, the value
//! changes whenever another connection has committed in the meantime. One
//! connection that never writes asks on behalf of every request waiting at
//! that moment, so a burst of cached hits shares a single round trip to
//! SQLite's thread instead of paying one each (issue 6: that round trip, not
//! SQLite's work, bounds a cached hit).
//!
//! The answer a request gets comes from a check that *started after the
//! request asked*: every commit that finished before the request arrived
//! (a key revoked by `kepler admin`, a record stored by a worker) is seen.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{Notify, watch};

/// The database's version as one connection sees it: equal values mean no
/// commit in between.
pub(super) type DataVersion = i64;

/// The latest check: which requests it covers and what it saw.
#[derive(Debug, Clone, Copy)]
struct Checked {
    /// Every request whose ticket is at most this asked before the check began.
    covers: u64,
    /// `None` when the check failed: no version, so nothing may be replayed.
    version: Option<DataVersion>,
}

/// Hands out the database's current version, checked after the asker arrived.
#[derive(Debug, Clone)]
pub(super) struct ChangeWatch {
    shared: Arc<Shared>,
    checked: watch::Receiver<Checked>,
}

#[derive(Debug)]
struct Shared {
    /// Tickets handed out so far.
    asked: AtomicU64,
    /// Wakes the checking task when a ticket is waiting (or the store closes).
    wake: Notify,
    /// Set by [`ChangeWatch::close`]: no more versions, the connection closes.
    closed: AtomicBool,
}

/// How long the checking task waits after a failed check before the next.
const RETRY_AFTER: Duration = Duration::from_millis(50);

impl ChangeWatch {
    /// Opens the checking connection and starts its task, which ends when the
    /// last clone of the watch is dropped.
    pub(super) async fn start(options: SqliteConnectOptions) -> sqlx::Result<ChangeWatch> {
        let conn = options.connect().await?;
        let shared = Arc::new(Shared {
            asked: AtomicU64::new(0),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
        });
        let (tx, checked) = watch::channel(Checked {
            covers: 0,
            version: None,
        });
        tokio::spawn(check_on_demand(conn, Arc::clone(&shared), tx));
        Ok(ChangeWatch { shared, checked })
    }

    /// The database's version, read after this call began; `None` if it could
    /// not be read (the caller then reads the store as if it had no memory).
    pub(super) async fn current(&self) -> Option<DataVersion> {
        if self.shared.closed.load(Ordering::SeqCst) {
            return None;
        }
        let ticket = self.shared.asked.fetch_add(1, Ordering::SeqCst) + 1;
        self.shared.wake.notify_one();
        let mut checked = self.checked.clone();
        let seen = checked.wait_for(|c| c.covers >= ticket).await.ok()?;
        seen.version
    }

    /// Stops answering (every later [`ChangeWatch::current`] is `None`) and
    /// closes the checking connection, as the store's pools close.
    pub(super) fn close(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
    }
}

async fn check_on_demand(
    mut conn: SqliteConnection,
    shared: Arc<Shared>,
    tx: watch::Sender<Checked>,
) {
    let mut covered = 0;
    while !shared.closed.load(Ordering::SeqCst) {
        let target = shared.asked.load(Ordering::SeqCst);
        if target == covered {
            tokio::select! {
                () = shared.wake.notified() => continue,
                () = tx.closed() => break,
            }
        }
        // Loaded before the statement starts: every ticket up to `target` was
        // handed out before this check, so the check is news to all of them.
        let version = sqlx::query_scalar::<_, DataVersion>("PRAGMA data_version")
            .fetch_one(&mut conn)
            .await;
        covered = target;
        let failed = version.is_err();
        if let Err(error) = &version {
            tracing::warn!(%error, "cannot read the SQLite data version; answering from the file");
        }
        tx.send_replace(Checked {
            covers: target,
            version: version.ok(),
        });
        if failed {
            tokio::time::sleep(RETRY_AFTER).await;
        }
    }
    let _ = conn.close().await;
}
