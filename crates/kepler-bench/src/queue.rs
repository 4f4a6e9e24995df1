//! The queue on PostgreSQL next to graphile-worker, in the shape of
//! graphile-worker's own perf test: bulk-insert no-op jobs with SQL over
//! `generate_series`, time a worker pool draining them (start-up, measured on
//! a one-job queue, subtracted), then sequential enqueue → start latencies.
//!
//! Kepler's side runs the production worker loop (`kepler_server::worker`) on
//! the production store, so every job goes through the real claim, lease and
//! complete statements; only the scorer is a no-op.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use futures::future::BoxFuture;
use kepler_core::config::{Config, DatabaseSettings};
use kepler_core::{Domain, FailureReason, ScoreRecord, Tier, TierPolicy};
use kepler_server::{AppState, Scorer};
use kepler_store::{AdmissionRequest, Caller, Store};
use sqlx::Connection;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::QueueArgs;

/// One queue's drain of the bulk-inserted jobs in one round. Times are wall clock.
#[derive(Debug, Clone, Copy)]
pub struct Drain {
    pub startup: Duration,
    pub drain: Duration,
}

impl Drain {
    /// The drain time with the start-up time subtracted, as the perf test does.
    fn busy(&self) -> Duration {
        self.drain.saturating_sub(self.startup)
    }

    pub fn jobs_per_sec(&self, jobs: u32) -> f64 {
        f64::from(jobs) / self.busy().as_secs_f64().max(f64::EPSILON)
    }
}

/// One queue's figures over every round.
#[derive(Debug, Clone, Default)]
pub struct Side {
    /// One per round, in order.
    pub drains: Vec<Drain>,
    /// Enqueue → start of every round, sorted.
    pub latencies: Vec<Duration>,
}

impl Side {
    /// Jobs per second over all rounds: every round's jobs over every round's
    /// busy time.
    pub fn jobs_per_sec(&self, jobs: u32) -> f64 {
        let busy: Duration = self.drains.iter().map(Drain::busy).sum();
        let total = f64::from(jobs) * self.drains.len() as f64;
        total / busy.as_secs_f64().max(f64::EPSILON)
    }

    pub fn percentile(&self, p: f64) -> Duration {
        let last = self.latencies.len().saturating_sub(1);
        // Nearest rank, rounded up: the p-th percentile is never understated.
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies
            .get(rank.saturating_sub(1).min(last))
            .copied()
            .unwrap_or_default()
    }

    fn add(&mut self, round: Round) {
        self.drains.push(round.drain);
        self.latencies.extend(round.latencies);
        self.latencies.sort();
    }
}

/// What one queue's turn in one round measured.
struct Round {
    drain: Drain,
    latencies: Vec<Duration>,
}

#[derive(Debug, Clone)]
pub struct QueueResult {
    pub jobs: u32,
    pub samples: u32,
    pub concurrency: usize,
    pub rounds: u32,
    pub kepler: Side,
    pub graphile: Side,
}

/// Every round measures both queues; the order alternates (Kepler first in
/// even rounds, graphile-worker first in odd ones), so a machine getting
/// busier or quieter during the run does not favour either.
pub async fn run(args: &QueueArgs) -> anyhow::Result<QueueResult> {
    let mut kepler = Side::default();
    let mut graphile = Side::default();
    for round in 0..args.rounds {
        let order = if round % 2 == 0 {
            [Queue::Kepler, Queue::Graphile]
        } else {
            [Queue::Graphile, Queue::Kepler]
        };
        for queue in order {
            let measured = measure(queue, args).await?;
            match queue {
                Queue::Kepler => kepler.add(measured),
                Queue::Graphile => graphile.add(measured),
            }
        }
    }
    Ok(QueueResult {
        jobs: args.jobs,
        samples: args.samples,
        concurrency: args.concurrency,
        rounds: args.rounds,
        kepler,
        graphile,
    })
}

/// The two queues compared.
#[derive(Debug, Clone, Copy)]
enum Queue {
    Kepler,
    Graphile,
}

/// One queue's side, in a fresh database of its own dropped afterwards.
async fn measure(queue: Queue, args: &QueueArgs) -> anyhow::Result<Round> {
    let (name, database) = match queue {
        Queue::Kepler => ("kepler", "kepler_bench_queue"),
        Queue::Graphile => ("graphile-worker", "kepler_bench_graphile"),
    };
    let db = FreshDatabase::create(&args.queue_postgres, database).await?;
    let side = match queue {
        Queue::Kepler => kepler_side(&db.url, args).await,
        Queue::Graphile => graphile_side(&db.url, args).await,
    };
    db.drop().await?;
    let round = side?;
    eprintln!(
        "queue: {name} drained {} jobs in {:?} (start-up {:?}): {:.0} jobs/s",
        args.jobs,
        round.drain.drain,
        round.drain.startup,
        round.drain.jobs_per_sec(args.jobs)
    );
    Ok(round)
}

/// A database of its own for one side, dropped afterwards.
struct FreshDatabase {
    server: String,
    name: String,
    url: String,
}

impl FreshDatabase {
    async fn create(server: &str, name: &str) -> anyhow::Result<FreshDatabase> {
        let server = server.trim_end_matches('/').to_owned();
        let db = FreshDatabase {
            url: format!("{server}/{name}"),
            name: name.to_owned(),
            server,
        };
        db.admin(&format!("DROP DATABASE IF EXISTS {name}")).await?;
        db.admin(&format!("CREATE DATABASE {name}")).await?;
        Ok(db)
    }

    async fn admin(&self, sql: &str) -> anyhow::Result<()> {
        let url = format!("{}/postgres", self.server);
        let mut conn = sqlx::PgConnection::connect(&url)
            .await
            .with_context(|| format!("connecting to {url}"))?;
        sqlx::raw_sql(sql)
            .execute(&mut conn)
            .await
            .with_context(|| sql.to_owned())?;
        conn.close().await?;
        Ok(())
    }

    async fn drop(self) -> anyhow::Result<()> {
        self.admin(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .await
    }
}

/// The bench's scorer: no engine, an empty record. It counts the runs it was
/// handed and tells whoever listens that one started.
#[derive(Debug)]
struct NoopScorer {
    started: AtomicUsize,
    all_started: Notify,
    expected: AtomicUsize,
    starts: Option<mpsc::UnboundedSender<String>>,
}

impl NoopScorer {
    fn new(expected: usize, starts: Option<mpsc::UnboundedSender<String>>) -> Arc<NoopScorer> {
        Arc::new(NoopScorer {
            started: AtomicUsize::new(0),
            all_started: Notify::new(),
            expected: AtomicUsize::new(expected),
            starts,
        })
    }
}

impl Scorer for NoopScorer {
    fn score<'a>(
        &'a self,
        domain: &'a Domain,
    ) -> BoxFuture<'a, Result<ScoreRecord, FailureReason>> {
        if let Some(starts) = &self.starts {
            let _ = starts.send(domain.as_str().to_owned());
        }
        let n = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= self.expected.load(Ordering::SeqCst) {
            self.all_started.notify_one();
        }
        let record =
            ScoreRecord::assemble(domain.as_str(), Vec::new(), Vec::new(), Utc::now(), "noop");
        Box::pin(async move { Ok(record) })
    }
}

struct Pool {
    store: Arc<dyn Store>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// A new store (its own connections) and the production worker loop over it.
async fn start_pool(
    url: &str,
    concurrency: usize,
    scorer: Arc<NoopScorer>,
) -> anyhow::Result<Pool> {
    let store = kepler_store::open(&DatabaseSettings {
        url: url.to_owned(),
        // One connection per worker slot plus the claim loop's, as graphile's
        // perf test sizes its pool (concurrency + 1).
        max_connections: u32::try_from(concurrency + 1).unwrap_or(u32::MAX),
        acquire_timeout: Duration::from_secs(30),
    })
    .await?;
    let mut config = Config::default();
    config.workers.concurrency = concurrency;
    config.workers.poll_interval = Duration::from_secs(1);
    let state = AppState::new(store.clone(), config);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(kepler_server::worker::run_pool(
        state,
        scorer,
        shutdown.clone(),
    ));
    Ok(Pool {
        store,
        shutdown,
        task,
    })
}

impl Pool {
    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await.context("worker pool panicked")?;
        self.store.close().await;
        Ok(())
    }
}

/// Inserts `count` pending runs, each with one job, straight into the store's
/// tables, as graphile's perf test inserts its jobs with SQL.
async fn bulk_insert(
    conn: &mut sqlx::PgConnection,
    caller: &Caller,
    prefix: &str,
    count: u32,
) -> anyhow::Result<()> {
    let now = Utc::now().timestamp_millis();
    let mut tx = conn.begin().await?;
    sqlx::query(
        "INSERT INTO runs (run_id, domain, status, force_fresh, created_at) \
         SELECT gen_random_uuid(), $1 || i || '.test', 'pending', FALSE, $2 + i \
         FROM generate_series(1, $3) i",
    )
    .bind(prefix)
    .bind(now)
    .bind(i64::from(count))
    .execute(&mut *tx)
    .await
    .context("inserting runs")?;
    sqlx::query(
        "INSERT INTO jobs (job_id, account_id, key_id, run_id, domain, status, created_at) \
         SELECT gen_random_uuid(), $1, $2, run_id, domain, 'pending', created_at \
         FROM runs WHERE status = 'pending'",
    )
    .bind(caller.account_id)
    .bind(caller.key_id)
    .execute(&mut *tx)
    .await
    .context("inserting jobs")?;
    tx.commit().await?;
    sqlx::raw_sql("ANALYZE runs; ANALYZE jobs")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Starts a pool on `count` queued runs and times it until every run settled.
async fn timed_drain(
    url: &str,
    conn: &mut sqlx::PgConnection,
    concurrency: usize,
    count: u32,
) -> anyhow::Result<Duration> {
    let scorer = NoopScorer::new(count as usize, None);
    let started = Instant::now();
    let pool = start_pool(url, concurrency, scorer.clone()).await?;
    scorer.all_started.notified().await;
    // Every run has started; wait for the last ones to be settled.
    loop {
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM runs WHERE finished_at IS NULL")
            .fetch_one(&mut *conn)
            .await?;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    pool.stop().await?;
    Ok(took)
}

async fn kepler_side(url: &str, args: &QueueArgs) -> anyhow::Result<Round> {
    let store = kepler_store::open(&DatabaseSettings {
        url: url.to_owned(),
        ..DatabaseSettings::default()
    })
    .await?;
    store.migrate().await?;
    let account = store.create_account("bench", Tier::Enterprise).await?;
    let key = store.create_key(account.account_id, false).await?;
    let caller = Caller {
        key_id: key.key_id,
        account_id: account.account_id,
        tier: Tier::Enterprise,
        sandbox: false,
    };
    let mut conn = sqlx::PgConnection::connect(url).await?;

    bulk_insert(&mut conn, &caller, "startup", 1).await?;
    let startup = timed_drain(url, &mut conn, args.concurrency, 1).await?;
    bulk_insert(&mut conn, &caller, "drain", args.jobs).await?;
    let drain = timed_drain(url, &mut conn, args.concurrency, args.jobs).await?;

    let latencies = kepler_latencies(url, store.as_ref(), &caller, args.samples).await?;
    store.close().await;
    conn.close().await?;
    Ok(Round {
        drain: Drain { startup, drain },
        latencies,
    })
}

/// Admissions through the store's real admit path, one at a time, each timed
/// until a worker (concurrency 1, as graphile's latency test) starts its run.
async fn kepler_latencies(
    url: &str,
    store: &dyn Store,
    caller: &Caller,
    samples: u32,
) -> anyhow::Result<Vec<Duration>> {
    let (tx, mut starts) = mpsc::unbounded_channel();
    let scorer = NoopScorer::new(usize::MAX, Some(tx));
    let pool = start_pool(url, 1, scorer).await?;
    let policy = TierPolicy {
        freshness: Duration::from_secs(3600),
        monthly_cold_cap: u64::MAX / 4,
        key_hourly_cold_limit: u64::MAX / 4,
        account_daily_cold_limit: u64::MAX / 4,
        force_fresh: true,
        cost_per_cold_call_micros: 0,
    };
    let mut out = Vec::with_capacity(samples as usize);
    // 100 warm-up samples first, as the perf test does.
    for i in 0..(100 + samples) {
        let domain = Domain::parse(&format!("latency{i}.test")).context("bench domain")?;
        let started = Instant::now();
        store
            .admit(&AdmissionRequest {
                caller: caller.clone(),
                policy,
                domain: domain.clone(),
                force_fresh: false,
                now: Utc::now(),
            })
            .await?;
        loop {
            let seen = tokio::time::timeout(Duration::from_secs(30), starts.recv())
                .await
                .context("no worker started the admitted run within 30 s")?
                .context("the worker pool stopped")?;
            if seen == domain.as_str() {
                break;
            }
        }
        if i >= 100 {
            out.push(started.elapsed());
        }
    }
    pool.stop().await?;
    out.sort();
    Ok(out)
}

/// Runs `bench/graphile/queue.js` (graphile-worker installed by `npm ci`).
async fn graphile_side(url: &str, args: &QueueArgs) -> anyhow::Result<Round> {
    let script = args.graphile_dir.join("queue.js");
    anyhow::ensure!(
        Path::new(&args.graphile_dir)
            .join("node_modules/graphile-worker")
            .is_dir(),
        "graphile-worker is not installed in {}: run `npm ci` there (scripts/bench does)",
        args.graphile_dir.display()
    );
    let output = tokio::process::Command::new("node")
        .arg(&script)
        .arg(args.jobs.to_string())
        .arg(args.samples.to_string())
        .arg(args.concurrency.to_string())
        .env("DATABASE_URL", url)
        .stderr(std::process::Stdio::inherit())
        .output()
        .await
        .with_context(|| format!("running node {}", script.display()))?;
    anyhow::ensure!(
        output.status.success(),
        "{} failed: {}",
        script.display(),
        output.status
    );
    let v: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("graphile bench output")?;
    let millis = |v: &serde_json::Value| -> anyhow::Result<Duration> {
        let ms = v.as_f64().context("a number of milliseconds")?;
        Ok(Duration::from_secs_f64(ms / 1000.0))
    };
    let mut latencies = v["latencies_ms"]
        .as_array()
        .context("latencies_ms")?
        .iter()
        .map(millis)
        .collect::<anyhow::Result<Vec<_>>>()?;
    latencies.sort();
    Ok(Round {
        drain: Drain {
            startup: millis(&v["startup_ms"])?,
            drain: millis(&v["drain_ms"])?,
        },
        latencies,
    })
}
