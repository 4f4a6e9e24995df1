//! Cold admissions written by a thread of their own, many to a commit.
//!
//! Through sqlx an admission is four hand-overs to the writer connection's
//! thread and back (`BEGIN IMMEDIATE`, the facts, the writes, `COMMIT`), each a
//! pair of thread wake-ups that cost more than SQLite's work, and a commit of
//! its own; with one writer, those hops bound the cold request rate
//! (docs/performance-limits.md, "Cold admission"). Here one thread owns a
//! connection (rusqlite, the same SQLite library sqlx links) and, each time it
//! wakes, writes every admission waiting then in one transaction: each decided
//! on facts read after the writes of those before it, so the limits stay as
//! exact as with one transaction each, and each in a savepoint of its own, so
//! one that fails takes nothing else with it. Nobody is answered before the
//! commit.
//!
//! The thread only carries out what the read snapshot already decided to
//! admit. When the facts under the write lock say otherwise (a record stored,
//! a limit reached, a job in flight since the snapshot), it writes nothing
//! and answers [`Written::Undecided`]: the store's general write path decides
//! then, rarely.
//!
//! An admission whose caller stopped waiting (the server's `store_timeout`)
//! before its commit is not charged: the thread skips it, and if a caller
//! leaves while its batch is being written, the batch is rolled back and
//! written again without it.
//!
//! The thread and the store's sqlx writer take turns through one FIFO gate,
//! so neither spins in SQLite's busy handler waiting for the other.

use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use kepler_core::admission::Decision;
use rusqlite::types::ToSql;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use super::admission::{
    ADMIT_STATEMENTS, FactRow, Planned, RunInFlight, WRITE_FACTS_SQL, usage_without_probes,
};
use super::checkpoints::Checkpointer;
use crate::windows::Bounds;
use crate::{AdmissionOutcome, AdmissionRequest, Result, StoreError};

/// The most admissions one transaction writes: enough to share a commit
/// widely, few enough that the first of them is not kept long.
const MAX_BATCH: usize = 64;

/// What the thread did with an admission.
#[derive(Debug)]
pub(super) enum Written {
    /// Admitted and committed.
    Admitted(Box<AdmissionOutcome>),
    /// Nothing written: the facts under the lock were not an admission's.
    Undecided,
}

/// The turns at SQLite's one write lock, shared by the admission thread and
/// the store's sqlx writer (first come, first served).
pub(super) type WriteGate = Arc<tokio::sync::Mutex<()>>;

struct Pending {
    request: AdmissionRequest,
    reply: oneshot::Sender<Result<Written>>,
}

/// The handle on the admission thread.
#[derive(Debug)]
pub(super) struct AdmissionWriter {
    /// `None` once closed.
    queue: Mutex<Option<mpsc::Sender<Pending>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl AdmissionWriter {
    /// Opens the thread's connection on the database file at `path` (already
    /// migrated and in WAL mode) and starts the thread.
    pub(super) fn open(
        path: &Path,
        busy_timeout: Duration,
        gate: WriteGate,
        checkpoints: Arc<Checkpointer>,
    ) -> Result<AdmissionWriter> {
        let unavailable = |cause: String| {
            StoreError::Unavailable(format!(
                "cannot open {} for the admission writer: {cause}",
                path.display()
            ))
        };
        let conn = connect(path, busy_timeout).map_err(|e| unavailable(e.to_string()))?;
        let (queue, arrivals) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("kepler-sqlite-admit".into())
            .spawn(move || run(conn, arrivals, gate, &checkpoints))
            .map_err(|e| unavailable(format!("cannot start its thread: {e}")))?;
        Ok(AdmissionWriter {
            queue: Mutex::new(Some(queue)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Writes `request`, which a read snapshot decided to admit.
    pub(super) async fn write(&self, request: &AdmissionRequest) -> Result<Written> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            request: request.clone(),
            reply,
        };
        {
            let queue = self.queue.lock().map_err(|_| closed())?;
            let queue = queue.as_ref().ok_or_else(closed)?;
            queue.send(pending).map_err(|_| closed())?;
        }
        answer.await.map_err(|_| closed())?
    }

    /// Stops taking admissions and waits for the thread to finish those it has.
    pub(super) async fn close(&self) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.take();
        }
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            // Joining blocks: not on the runtime's own threads.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

pub(super) fn connect(path: &Path, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(busy_timeout)?;
    // Per-connection settings, as the sqlx connections have them. Each
    // admission's savepoint (and each statement that fires a trigger) keeps the
    // pages it changes in a statement journal: in memory, not a temporary file
    // it would write every such page to and open and delete on every batch.
    conn.execute_batch(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY; \
         PRAGMA wal_autocheckpoint = 0;",
    )?;
    conn.set_prepared_statement_cache_capacity(16);
    Ok(conn)
}

fn closed() -> StoreError {
    StoreError::Unavailable("the store is closed".into())
}

/// The thread: a batch each time it wakes, until the store closes.
fn run(
    mut conn: Connection,
    arrivals: mpsc::Receiver<Pending>,
    gate: WriteGate,
    checkpoints: &Checkpointer,
) {
    while let Ok(first) = arrivals.recv() {
        let mut batch = vec![first];
        let turn = gate.blocking_lock();
        // Those who arrived while the thread waited for its turn go now too.
        while batch.len() < MAX_BATCH {
            match arrivals.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        let results = write_batch(&mut conn, &mut batch);
        drop(turn);
        checkpoints.committed();
        for (pending, result) in batch.into_iter().zip(results) {
            // A caller that left does not want its answer.
            let _ = pending.reply.send(result);
        }
    }
}

/// Writes the live admissions of `batch` in one transaction and returns their
/// results, in order; `batch` is left holding only those.
///
/// First without a savepoint each: a savepoint keeps a copy of every page its
/// admission changes that earlier ones in the batch changed too, a tenth of the
/// writer's time, for a failure that almost never comes. When one does fail,
/// the whole batch is rolled back and written again with a savepoint each, so
/// that it takes nothing else with it.
fn write_batch(conn: &mut Connection, batch: &mut Vec<Pending>) -> Vec<Result<Written>> {
    let mut careful = false;
    loop {
        batch.retain(|pending| !pending.reply.is_closed());
        if batch.is_empty() {
            return Vec::new();
        }
        if let Err(error) = run_cached(conn, "BEGIN IMMEDIATE") {
            return batch.iter().map(|_| Err(store_error(&error))).collect();
        }
        let results: Vec<Result<Written>> = if careful {
            batch
                .iter()
                .map(|pending| in_savepoint(conn, &pending.request))
                .collect()
        } else {
            let mut results = Vec::with_capacity(batch.len());
            for pending in batch.iter() {
                let written = write_one(conn, &pending.request);
                let failed = written.is_err();
                results.push(written);
                if failed {
                    break;
                }
            }
            results
        };
        let failed = !careful && results.iter().any(Result::is_err);
        if failed || batch.iter().any(|pending| pending.reply.is_closed()) {
            // A failure the others must not share, or someone left before the
            // commit (not charged): again, carefully or without them.
            if let Err(error) = conn.execute_batch("ROLLBACK") {
                return batch.iter().map(|_| Err(store_error(&error))).collect();
            }
            careful |= failed;
            continue;
        }
        return match run_cached(conn, "COMMIT") {
            Ok(()) => results,
            Err(error) => {
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                batch.iter().map(|_| Err(store_error(&error))).collect()
            }
        };
    }
}

/// One admission, undone alone if any of its statements fails.
fn in_savepoint(conn: &Connection, request: &AdmissionRequest) -> Result<Written> {
    run_cached(conn, "SAVEPOINT admission").map_err(|e| store_error(&e))?;
    let written = write_one(conn, request);
    let end = if written.is_ok() {
        run_cached(conn, "RELEASE admission")
    } else {
        conn.execute_batch("ROLLBACK TO admission; RELEASE admission")
    };
    end.map_err(|e| store_error(&e))?;
    written
}

/// Runs one statement that takes no parameters, prepared once: these run for
/// every admission or batch, and parsing them each time is work the writer,
/// the one thread all admissions wait on, need not do.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.raw_execute()?;
    Ok(())
}

fn write_one(conn: &Connection, request: &AdmissionRequest) -> Result<Written> {
    let domain = request.domain.as_str();
    let account = request.caller.account_id.to_string();
    let key = request.caller.key_id.to_string();
    let b = Bounds::at(request.now);
    let facts = conn
        .prepare_cached(WRITE_FACTS_SQL.as_str())
        .and_then(|mut statement| {
            statement.query_row(
                rusqlite::params![
                    domain,
                    account,
                    key,
                    b.month,
                    b.key_since,
                    b.key_edge,
                    b.day_since,
                    b.day_edge
                ],
                |row| FactRow::from_rusqlite(row, 0),
            )
        })
        .map_err(|e| store_error(&e))?;

    // A window over its limit (which needs a probe read) is never an admission.
    let Some(usage) = usage_without_probes(&facts.counts, &request.policy, request.now)? else {
        return Ok(Written::Undecided);
    };
    let (decided, _) = facts.decision(request, &usage)?;
    if decided != Decision::Admit {
        return Ok(Written::Undecided);
    }

    let run = RunInFlight::from_columns(facts.run_id, facts.run_status.as_deref());
    let planned = Planned::new(request, run);
    let Some(usage_after) = usage_without_probes(
        &planned.counts_after(&facts.counts),
        &request.policy,
        request.now,
    )?
    else {
        return Ok(Written::Undecided);
    };
    let job = &planned.job;
    let job_id = job.job_id.to_string();
    let started_at = job.started_at.map(crate::time::to_millis);
    let status = job.status.as_str();
    let binds: [&dyn ToSql; 11] = [
        &planned.run_id,
        &job.domain,
        &request.force_fresh,
        &planned.now_ms,
        &planned.new_run,
        &job_id,
        &planned.account_id,
        &planned.key_id,
        &status,
        &started_at,
        &planned.cost_micros,
    ];
    for sql in ADMIT_STATEMENTS {
        execute_numbered(conn, sql, &binds).map_err(|e| store_error(&e))?;
    }
    Ok(Written::Admitted(Box::new(
        planned.into_outcome(usage_after),
    )))
}

/// Runs `sql`, whose parameters are numbered (`?1` …), binding as many of
/// `binds` as it has: the four admission statements share one numbering.
fn execute_numbered(conn: &Connection, sql: &str, binds: &[&dyn ToSql]) -> rusqlite::Result<()> {
    let mut statement = conn.prepare_cached(sql)?;
    for (index, value) in binds.iter().enumerate().take(statement.parameter_count()) {
        statement.raw_bind_parameter(index + 1, *value)?;
    }
    statement.raw_execute()?;
    Ok(())
}

/// SQLite's busy, locked, out-of-memory, I/O, full and cannot-open results
/// mean "unavailable", as for the sqlx connections (`super::is_transient`).
fn store_error(error: &rusqlite::Error) -> StoreError {
    let transient = error.sqlite_error_code().is_some_and(|code| {
        use rusqlite::ErrorCode as C;
        matches!(
            code,
            C::DatabaseBusy
                | C::DatabaseLocked
                | C::OutOfMemory
                | C::SystemIoFailure
                | C::DiskFull
                | C::CannotOpen
        )
    });
    if transient {
        StoreError::Unavailable(error.to_string())
    } else {
        StoreError::Write(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::Utc;
    use kepler_core::{Domain, Tier, TierTable};
    use uuid::Uuid;

    use super::*;
    use crate::{Ask, Caller, Store};

    /// A batch with one admission its statements refuse (a caller whose key
    /// the database does not hold): that one fails, the others are written
    /// and committed as if it had not been there.
    #[tokio::test]
    async fn one_admission_that_fails_takes_nothing_else_with_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("kepler.db");
        let store = crate::sqlite::snapshots::tests::store(&dir).await;
        let account = store
            .create_account("Acme", Tier::Growth)
            .await
            .expect("account");
        let key = store
            .create_key(account.account_id, false)
            .await
            .expect("key");
        let caller = store
            .authenticate(&key.key)
            .await
            .expect("authenticate")
            .expect("a caller");
        let stranger = Caller {
            key_id: Uuid::new_v4(),
            account_id: Uuid::new_v4(),
            ..caller.clone()
        };

        let tiers = TierTable::default();
        let domains: Vec<Domain> = ["a.example", "b.example", "c.example"]
            .iter()
            .map(|d| Domain::parse(d).expect("domain"))
            .collect();
        let callers = [&caller, &stranger, &caller];
        let mut answers = Vec::new();
        let mut batch: Vec<Pending> = domains
            .iter()
            .zip(callers)
            .map(|(domain, who)| {
                let ask = Ask {
                    domain,
                    force_fresh: false,
                    now: Utc::now(),
                    tiers: &tiers,
                };
                let (reply, answer) = oneshot::channel();
                answers.push(answer);
                Pending {
                    request: ask.request(who),
                    reply,
                }
            })
            .collect();

        let mut conn = connect(&path, Duration::from_secs(5)).expect("connect");
        let results = write_batch(&mut conn, &mut batch);
        assert_eq!(results.len(), 3);
        assert!(results[1].is_err(), "the stranger's admission was written");
        let stranger_runs: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM runs WHERE domain = 'b.example'",
                [],
                |row| row.get(0),
            )
            .expect("count");
        assert_eq!(stranger_runs, 0, "the failed admission left its run behind");
        for (i, result) in [(0, &results[0]), (2, &results[2])] {
            let Ok(Written::Admitted(outcome)) = result else {
                panic!("admission {i} not written: {result:?}");
            };
            let job = outcome.job.as_ref().expect("a job");
            let stored = store
                .get_job(account.account_id, job.job_id)
                .await
                .expect("read");
            assert_eq!(
                stored.as_ref().map(|j| j.domain.as_str()),
                Some(domains[i].as_str())
            );
        }
        let usage = store
            .usage(&caller, &tiers.policy(caller.tier), Utc::now())
            .await
            .expect("usage");
        assert_eq!(usage.month.used, 2, "the cost log holds the two written");
        drop(answers);
        store.close().await;
    }
}
