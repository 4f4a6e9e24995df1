//! Cold admissions share write transactions (group commit).
//!
//! An admission decides and writes under SQLite's one write lock. Alone, it
//! pays four round trips to the connection's thread while holding it
//! (`BEGIN IMMEDIATE`, its facts, its writes, `COMMIT`) and a commit of its
//! own, which is most of SQLite's work for it (see docs/performance-limits.md).
//! So one task does every admission: the requests waiting when it starts a
//! transaction are decided and written one after another inside it, each
//! reading its facts after the writes of those before it, so the limits stay
//! exact, and are committed together. A burst costs two round trips an
//! admission (its facts, its rows) and one commit. An admission that finds no
//! other under way is written at once in its own transaction, sparing it the
//! hand-over to the task.

use std::mem;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use super::admission;
use crate::served::ServedCache;
use crate::{AdmissionOutcome, AdmissionRequest, Result, StoreError};

/// Admissions written in one transaction at most: bounds how long the write
/// lock is held and how long the last of a burst waits for its commit.
const MAX_BATCH: usize = 64;

/// Admissions waiting for the writer at most; more wait to be queued.
const QUEUE_DEPTH: usize = 4096;

/// Hands admissions to the task that writes them.
#[derive(Debug, Clone)]
pub(super) struct AdmissionWriter {
    queue: mpsc::Sender<Waiting>,
    /// Admissions between entering [`AdmissionWriter::admit`] and leaving it.
    active: Arc<AtomicUsize>,
    writer: SqlitePool,
    served: ServedCache,
}

#[derive(Debug)]
struct Waiting {
    request: AdmissionRequest,
    answer: oneshot::Sender<Result<AdmissionOutcome>>,
}

impl AdmissionWriter {
    /// Starts the writing task, which ends when the last clone is dropped.
    pub(super) fn start(writer: SqlitePool, served: ServedCache) -> AdmissionWriter {
        let (queue, waiting) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(write_batches(writer.clone(), served.clone(), waiting));
        AdmissionWriter {
            queue,
            active: Arc::new(AtomicUsize::new(0)),
            writer,
            served,
        }
    }

    /// Decides on `request` under the write lock and, for `Admit`, writes it.
    /// A caller that stops waiting before its batch starts is not charged.
    pub(super) async fn admit(&self, request: AdmissionRequest) -> Result<AdmissionOutcome> {
        let active = Active::enter(&self.active);
        if active.alone {
            return admit_together(&self.writer, &self.served, &[&request])
                .await?
                .pop()
                .ok_or_else(stopped);
        }
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Waiting { request, answer })
            .await
            .map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

/// Counts an admission in the write half for as long as it is there, even
/// when its caller stops waiting.
struct Active<'a> {
    count: &'a AtomicUsize,
    /// No other admission was in the write half when this one entered.
    alone: bool,
}

impl<'a> Active<'a> {
    fn enter(count: &'a AtomicUsize) -> Active<'a> {
        let before = count.fetch_add(1, Ordering::SeqCst);
        Active {
            count,
            alone: before == 0,
        }
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the SQLite admission writer has stopped".to_owned())
}

async fn write_batches(
    writer: SqlitePool,
    served: ServedCache,
    mut waiting: mpsc::Receiver<Waiting>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while waiting.recv_many(&mut batch, MAX_BATCH).await > 0 {
        write_batch(&writer, &served, mem::take(&mut batch)).await;
    }
}

async fn write_batch(writer: &SqlitePool, served: &ServedCache, mut batch: Vec<Waiting>) {
    // A caller that stopped waiting (the server's `store_timeout`) is not charged.
    batch.retain(|w| !w.answer.is_closed());
    if batch.is_empty() {
        return;
    }
    let requests: Vec<&AdmissionRequest> = batch.iter().map(|w| &w.request).collect();
    match admit_together(writer, served, &requests).await {
        Ok(outcomes) => {
            for (waiting, outcome) in batch.into_iter().zip(outcomes) {
                let _ = waiting.answer.send(Ok(outcome));
            }
        }
        // Busy, locked or closed: nothing was written, and no one would fare better alone.
        Err(StoreError::Unavailable(reason)) => {
            for waiting in batch {
                let _ = waiting
                    .answer
                    .send(Err(StoreError::Unavailable(reason.clone())));
            }
        }
        Err(error) if batch.len() == 1 => {
            if let Some(waiting) = batch.pop() {
                let _ = waiting.answer.send(Err(error));
            }
        }
        // Nothing was committed. An error that belongs to one request must not
        // fail the others with it: each goes again in a transaction of its own.
        Err(_) => {
            for waiting in batch {
                let outcome = admit_together(writer, served, &[&waiting.request])
                    .await
                    .and_then(|mut outcomes| outcomes.pop().ok_or_else(stopped));
                let _ = waiting.answer.send(outcome);
            }
        }
    }
}

/// Decides and writes `batch`, in order, in one transaction: each request
/// reads its facts after the writes of those before it. Any error rolls the
/// whole batch back.
async fn admit_together(
    writer: &SqlitePool,
    served: &ServedCache,
    batch: &[&AdmissionRequest],
) -> Result<Vec<AdmissionOutcome>> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for request in batch {
        outcomes.push(admission::decide_and_write(&mut tx, request, served).await?);
    }
    tx.commit().await?;
    Ok(outcomes)
}
