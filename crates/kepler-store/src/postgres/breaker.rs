//! Failing fast while PostgreSQL is unreachable.
//!
//! sqlx's pool retries a refused connection until `acquire_timeout`, so without
//! this every call during an outage would hang that long. Instead, a call that
//! looks troubled (it failed as unavailable, or its connection is slow to come)
//! asks for a *probe*: one fresh connection attempt in the background. The
//! breaker opens only when that probe cannot connect; while open, calls answer
//! `Unavailable` at once (waiting ones are released too), and the probe tries
//! again every [`PROBE_INTERVAL`] until the server answers, which closes it.
//! A busy but healthy database therefore never opens it: its probe connects.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::watch;

use crate::{Result, StoreError};

/// Pause between probes while the server is unreachable, and after a probe
/// that connected before another may start (so a loaded database is not
/// flooded with probe connections).
pub(super) const PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// A connection this slow to come asks for a probe while the call goes on waiting.
const SUSPECT_AFTER: Duration = Duration::from_millis(200);

/// Clones share one state.
#[derive(Debug, Clone)]
pub(super) struct Breaker {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    options: PgConnectOptions,
    connect_timeout: Duration,
    /// `true` while open.
    open: watch::Sender<bool>,
    /// A probe task is running (or cooling down after success).
    probing: AtomicBool,
    closed: AtomicBool,
}

/// What one probe found.
enum Reach {
    /// The server answered (even with an error of its own, such as a bad password).
    Answered,
    Unreachable(String),
}

impl Breaker {
    pub(super) fn new(options: PgConnectOptions, connect_timeout: Duration) -> Breaker {
        Breaker {
            inner: Arc::new(Inner {
                options,
                connect_timeout,
                open: watch::Sender::new(false),
                probing: AtomicBool::new(false),
                closed: AtomicBool::new(false),
            }),
        }
    }

    pub(super) fn is_open(&self) -> bool {
        *self.inner.open.borrow()
    }

    /// Runs `connecting` (a pool acquire or `BEGIN`) unless the breaker is
    /// open; gives up as soon as it opens; asks for a probe if it is slow or fails.
    pub(super) async fn connect<T>(
        &self,
        connecting: impl Future<Output = std::result::Result<T, sqlx::Error>>,
    ) -> Result<T> {
        if self.is_open() {
            return Err(open_error());
        }
        let mut opened = self.inner.open.subscribe();
        let mut connecting = std::pin::pin!(connecting);
        let mut slow = std::pin::pin!(tokio::time::sleep(SUSPECT_AFTER));
        let mut suspected = false;
        let outcome = loop {
            tokio::select! {
                outcome = &mut connecting => break outcome,
                _ = opened.wait_for(|open| *open) => return Err(open_error()),
                () = &mut slow, if !suspected => {
                    suspected = true;
                    self.suspect();
                }
            }
        };
        outcome.map_err(|error| self.watch_error(StoreError::from(error)))
    }

    /// Passes a call's outcome through, asking for a probe if it failed as unavailable.
    pub(super) fn watch<T>(&self, outcome: Result<T>) -> Result<T> {
        outcome.map_err(|error| self.watch_error(error))
    }

    fn watch_error(&self, error: StoreError) -> StoreError {
        if matches!(error, StoreError::Unavailable(_)) {
            self.suspect();
        }
        error
    }

    /// Starts a probe unless one is running or the store is closed.
    pub(super) fn suspect(&self) {
        if self.inner.closed.load(Ordering::SeqCst) {
            return;
        }
        if self
            .inner
            .probing
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            tokio::spawn(probe_until_reached(Arc::downgrade(&self.inner)));
        }
    }

    /// Stops probing for good (the store is closing).
    pub(super) fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
    }
}

fn open_error() -> StoreError {
    StoreError::Unavailable("PostgreSQL is unreachable; reconnecting in the background".into())
}

/// Probes until the server answers, opening the breaker while it does not;
/// then holds `probing` for one more interval before letting a new probe start.
async fn probe_until_reached(inner: Weak<Inner>) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        if strong.closed.load(Ordering::SeqCst) {
            strong.probing.store(false, Ordering::SeqCst);
            return;
        }
        let reach = strong.probe().await;
        let was_open = match &reach {
            Reach::Answered => strong.open.send_replace(false),
            Reach::Unreachable(_) => strong.open.send_replace(true),
        };
        match (&reach, was_open) {
            (Reach::Answered, true) => tracing::info!("PostgreSQL answers again"),
            (Reach::Unreachable(cause), false) => {
                tracing::warn!(%cause, "PostgreSQL is unreachable; failing fast until it answers");
            }
            _ => {}
        }
        drop(strong);
        tokio::time::sleep(PROBE_INTERVAL).await;
        if matches!(reach, Reach::Answered) {
            if let Some(strong) = inner.upgrade() {
                strong.probing.store(false, Ordering::SeqCst);
            }
            return;
        }
    }
}

impl Inner {
    async fn probe(&self) -> Reach {
        match tokio::time::timeout(
            self.connect_timeout,
            PgConnection::connect_with(&self.options),
        )
        .await
        {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                Reach::Answered
            }
            Ok(Err(error)) if cannot_reach(&error) => Reach::Unreachable(error.to_string()),
            Ok(Err(_)) => Reach::Answered,
            Err(_) => {
                Reach::Unreachable(format!("no connection within {:?}", self.connect_timeout))
            }
        }
    }
}

/// A connection attempt that failed because the server is not there (or is
/// shutting down, starting up, or recovering), as opposed to one it refused
/// for a reason of its own (credentials, a missing database, too many clients).
fn cannot_reach(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P0")),
        _ => false,
    }
}
