//! Waking idle workers as soon as a run becomes claimable, through PostgreSQL's
//! `LISTEN kepler_runs`, so they need not poll often. Polling stays the fallback:
//! a wait always ends by its timeout, and while the listening connection is down
//! (database restarting) workers simply poll.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::queue::CHANNEL;

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// One listening connection per store, opened the first time a worker waits
/// (API-only nodes never open it).
#[derive(Debug)]
pub(super) struct Wakeups {
    /// A pool of one connection for the listener alone, so it never takes a
    /// connection the queries need.
    pool: PgPool,
    notify: Arc<Notify>,
    task: Mutex<Option<JoinHandle<()>>>,
    closed: AtomicBool,
}

impl Wakeups {
    pub(super) fn new(pool: PgPool) -> Wakeups {
        Wakeups {
            pool,
            notify: Arc::new(Notify::new()),
            task: Mutex::new(None),
            closed: AtomicBool::new(false),
        }
    }

    /// Returns when a run may have become claimable, or after `timeout`.
    pub(super) async fn wait(&self, timeout: Duration) {
        self.start();
        let _ = tokio::time::timeout(timeout, self.notify.notified()).await;
    }

    fn start(&self) {
        let mut task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if task.is_none() && !self.closed.load(Ordering::SeqCst) {
            *task = Some(tokio::spawn(listen(
                self.pool.clone(),
                Arc::clone(&self.notify),
            )));
        }
    }

    pub(super) async fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        self.pool.close().await;
    }
}

impl Drop for Wakeups {
    fn drop(&mut self) {
        if let Some(task) = self
            .task
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}

/// Wakes every waiting worker, and leaves a permit for one that is between a
/// fruitless claim and its wait (so that wake-up is not lost).
fn wake(notify: &Notify) {
    notify.notify_waiters();
    notify.notify_one();
}

/// Listens until the pool is closed, reconnecting with backoff.
async fn listen(pool: PgPool, notify: Arc<Notify>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        match subscribe(&pool).await {
            Ok((mut listener, schema)) => {
                backoff = MIN_BACKOFF;
                // Runs may have been queued while nobody listened.
                wake(&notify);
                loop {
                    match listener.try_recv().await {
                        Ok(Some(notification)) => {
                            if notification.payload() == schema {
                                wake(&notify);
                            }
                        }
                        // The connection dropped and was re-established: anything may have been missed.
                        Ok(None) => wake(&notify),
                        Err(error) => {
                            tracing::debug!(%error, "lost the kepler_runs listener; polling until it is back");
                            break;
                        }
                    }
                }
            }
            Err(error) => {
                tracing::debug!(%error, "cannot listen on kepler_runs; polling until it can");
            }
        }
        if pool.is_closed() {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// A listener on [`CHANNEL`], and the schema whose notifications are ours.
async fn subscribe(pool: &PgPool) -> Result<(PgListener, String), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    let schema: String = sqlx::query_scalar("SELECT COALESCE(current_schema(), '')")
        .fetch_one(&mut listener)
        .await?;
    listener.listen(CHANNEL).await?;
    Ok((listener, schema))
}
