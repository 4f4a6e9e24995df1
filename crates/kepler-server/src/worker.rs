//! In-process workers: claim a domain's run from the store's queue, keep its
//! lease alive by heartbeat, run the engine within `job_timeout`, settle the run.
//!
//! Everything that must survive a crash lives in the store: a worker that dies
//! simply stops heartbeating, and its run is claimed again once the lease expires.
//! Charging happens only at admission, so a retried run is never charged twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::FutureExt;
use kepler_core::{Domain, FailureReason, ScoreRecord};
use kepler_store::{ClaimedRun, RunEnding, StoreError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::metrics::OutcomeLabels;
use crate::scorer::Scorer;

/// Longest pause between claim attempts while the store is failing.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A name unique to this pool, so leases tell workers apart across processes.
fn worker_id() -> String {
    format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple())
}

/// Runs up to `workers.concurrency` engine runs at once until `shutdown`.
pub async fn run_pool(state: AppState, scorer: Arc<dyn Scorer>, shutdown: CancellationToken) {
    let id = worker_id();
    let settings = state.config.workers.clone();
    let permits = Arc::new(Semaphore::new(settings.concurrency));
    let mut tasks = JoinSet::new();
    let mut backoff = Duration::from_millis(100);
    tracing::info!(worker = %id, concurrency = settings.concurrency, "workers started");
    loop {
        while tasks.try_join_next().is_some() {}
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
            () = shutdown.cancelled() => break,
        };
        // Every free slot is filled by one claim: one commit for many runs.
        let mut free = vec![permit];
        while let Ok(permit) = permits.clone().try_acquire_owned() {
            free.push(permit);
        }
        match state
            .store
            .claim_runs(&id, settings.lease, Utc::now(), free.len())
            .await
        {
            Ok(runs) if !runs.is_empty() => {
                backoff = Duration::from_millis(100);
                for (run, permit) in runs.into_iter().zip(free) {
                    claimed(&state, &run);
                    tasks.spawn(slot(
                        state.clone(),
                        scorer.clone(),
                        run,
                        permit,
                        id.clone(),
                        shutdown.clone(),
                    ));
                }
            }
            Ok(_) => {
                drop(free);
                // Woken by an admission in this process, or by the store (another
                // process queued or handed back a run); else polls again.
                tokio::select! {
                    () = state.work_available.notified() => {}
                    () = state.store.wait_for_work(settings.poll_interval) => {}
                    () = shutdown.cancelled() => break,
                }
            }
            Err(error) => {
                drop(free);
                if matches!(error, StoreError::Unavailable(_)) {
                    state.metrics.store_unavailable("worker");
                }
                tracing::warn!(%error, ?backoff, "could not claim a run; backing off");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = shutdown.cancelled() => break,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    while tasks.join_next().await.is_some() {}
    tracing::info!(worker = %id, "workers stopped");
}

enum Ending {
    Settled(Result<ScoreRecord, FailureReason>),
    LeaseLost,
    HandedBack,
}

fn claimed(state: &AppState, run: &ClaimedRun) {
    if run.reclaimed {
        state.metrics.lease_expiries.inc();
        tracing::warn!(run = %run.run_id, domain = %run.domain, attempt = run.attempt, "reclaimed a run whose lease expired");
    }
}

/// What a slot does once a run is over.
enum Next {
    /// Execute this run, claimed together with the settle.
    Run(ClaimedRun),
    /// The settle's claim found nothing: free the slot.
    QueueEmpty,
    /// No claim was made with the settle: claim now, unless shutting down.
    Claim,
}

/// One busy slot of the pool: executes `run`, then goes on to the next run it
/// claims itself (with the settle where the store can: one round trip per
/// job), so busy slots claim in parallel instead of queueing behind the
/// pool's one claim loop. When the queue is empty or the store fails, the slot
/// frees its permit and the pool's loop takes over (waiting, or backing off).
async fn slot(
    state: AppState,
    scorer: Arc<dyn Scorer>,
    mut run: ClaimedRun,
    _permit: OwnedSemaphorePermit,
    worker: String,
    shutdown: CancellationToken,
) {
    let lease = state.config.workers.lease;
    loop {
        let next = match execute(&state, scorer.as_ref(), &run, &worker, &shutdown).await {
            // Claimed just before a shutdown began: handed back unstarted.
            Next::Run(next) if shutdown.is_cancelled() => {
                hand_back(&state, &next, &worker).await;
                return;
            }
            Next::Run(next) => Some(next),
            Next::QueueEmpty => return,
            Next::Claim if shutdown.is_cancelled() => return,
            Next::Claim => match state.store.claim_runs(&worker, lease, Utc::now(), 1).await {
                Ok(mut runs) => runs.pop(),
                Err(error) => {
                    tracing::debug!(%error, "could not claim the next run; the pool will retry");
                    return;
                }
            },
        };
        let Some(next) = next else { return };
        claimed(&state, &next);
        run = next;
    }
}

async fn execute(
    state: &AppState,
    scorer: &dyn Scorer,
    run: &ClaimedRun,
    worker: &str,
    shutdown: &CancellationToken,
) -> Next {
    let metrics = state.metrics.clone();
    metrics.runs_in_flight.inc();
    let started = Instant::now();
    let ending = drive(state, scorer, run, worker, shutdown).await;
    let (outcome, next) = match ending {
        Ending::Settled(result) => {
            let claim_next = (!shutdown.is_cancelled()).then_some(state.config.workers.lease);
            settle(state, run, worker, result, claim_next).await
        }
        Ending::LeaseLost => ("lease_lost", Next::Claim),
        Ending::HandedBack => {
            hand_back(state, run, worker).await;
            ("released", Next::Claim)
        }
    };
    metrics
        .runs
        .get_or_create(&OutcomeLabels {
            outcome: outcome.into(),
        })
        .inc();
    metrics
        .run_seconds
        .get_or_create(&OutcomeLabels {
            outcome: outcome.into(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics.runs_in_flight.dec();
    next
}

/// Returns a held run to the queue at once; if the store cannot be reached,
/// the lease expires and another worker takes it.
async fn hand_back(state: &AppState, run: &ClaimedRun, worker: &str) {
    if let Err(error) = state.store.release_run(run.run_id, worker).await {
        tracing::warn!(%error, run = %run.run_id, "could not hand a run back; its lease will expire");
    }
}

async fn drive(
    state: &AppState,
    scorer: &dyn Scorer,
    run: &ClaimedRun,
    worker: &str,
    shutdown: &CancellationToken,
) -> Ending {
    let settings = &state.config.workers;
    let Ok(domain) = Domain::parse(&run.domain) else {
        tracing::error!(domain = %run.domain, "a queued run holds an invalid domain");
        return Ending::Settled(Err(FailureReason::EngineError));
    };
    // `job_timeout` counts from the first claim, so a retried run does not get a fresh allowance.
    let spent = (Utc::now() - run.first_started_at)
        .to_std()
        .unwrap_or_default();
    let Some(remaining) = settings
        .job_timeout
        .checked_sub(spent)
        .filter(|d| !d.is_zero())
    else {
        return Ending::Settled(Err(FailureReason::Timeout));
    };
    let deadline = tokio::time::sleep(remaining);
    let mut heartbeat = tokio::time::interval(settings.lease / 3);
    heartbeat.tick().await;
    // A bug in the engine must settle the run as engine_error, not leave it to
    // expire and be retried into a timeout.
    let engine_run = std::panic::AssertUnwindSafe(scorer.score(&domain))
        .catch_unwind()
        .map(|outcome| {
            outcome.unwrap_or_else(|_| {
                tracing::error!(domain = %domain, "the engine panicked");
                Err(FailureReason::EngineError)
            })
        });
    let grace = tokio::time::sleep(Duration::MAX);
    tokio::pin!(deadline, engine_run, grace);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            result = &mut engine_run => return Ending::Settled(result),
            () = &mut deadline => return Ending::Settled(Err(FailureReason::Timeout)),
            _ = heartbeat.tick() => {
                match state.store.heartbeat(run.run_id, worker, settings.lease, Utc::now()).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(run = %run.run_id, "lease lost; another worker owns this run now");
                        return Ending::LeaseLost;
                    }
                    Err(error) => tracing::warn!(%error, run = %run.run_id, "heartbeat failed"),
                }
            }
            () = shutdown.cancelled(), if !shutting_down => {
                shutting_down = true;
                grace.as_mut().reset(tokio::time::Instant::now() + settings.shutdown_grace);
            }
            () = &mut grace, if shutting_down => return Ending::HandedBack,
        }
    }
}

/// Writes the run's outcome, retrying briefly through store hiccups; if the store
/// stays down, the lease expires and another worker runs the domain again.
/// With `claim_next` (the next lease), the same call claims the slot's next run.
async fn settle(
    state: &AppState,
    run: &ClaimedRun,
    worker: &str,
    result: Result<ScoreRecord, FailureReason>,
    claim_next: Option<Duration>,
) -> (&'static str, Next) {
    let (outcome, ending) = match &result {
        Ok(record) => ("complete", RunEnding::Complete(record)),
        Err(reason) => (reason.as_str(), RunEnding::Failed(*reason)),
    };
    let mut pause = Duration::from_millis(100);
    for attempt in 1..=5 {
        let written = state
            .store
            .settle_run(run.run_id, worker, ending, Utc::now(), claim_next)
            .await;
        match written {
            Ok(settled) => {
                let next = match (claim_next, settled.next) {
                    (None, _) => Next::Claim,
                    (Some(_), Some(next)) => Next::Run(next),
                    (Some(_), None) => Next::QueueEmpty,
                };
                return (if settled.held { outcome } else { "lease_lost" }, next);
            }
            Err(error) => {
                tracing::warn!(%error, attempt, run = %run.run_id, "could not settle a run");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
    }
    ("settle_failed", Next::Claim)
}
