//! The contract suite on PostgreSQL (a fresh schema per test in the `test`
//! database, dropped afterwards), and what only PostgreSQL has: migrations
//! racing between processes, LISTEN/NOTIFY wake-ups, an unreachable server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use kepler_core::Tier;
use kepler_core::admission::Decision;
use kepler_core::config::DatabaseSettings;
use kepler_store::testing::TestDatabase;
use kepler_store::{Store, StoreError};
use sqlx::Connection;

use crate::support::{Backend, Harness, ask, client, now, policy};

struct PostgresBackend {
    db: TestDatabase,
    settings: DatabaseSettings,
}

fn settings(db: &TestDatabase) -> DatabaseSettings {
    // Generous: the concurrency tests queue hundreds of admissions on a small machine.
    DatabaseSettings {
        acquire_timeout: Duration::from_secs(60),
        ..db.settings()
    }
}

async fn open(settings: &DatabaseSettings) -> Arc<dyn Store> {
    let store = kepler_store::open(settings).await.expect("open");
    store.migrate().await.expect("migrate");
    store
}

/// The factory the contract suite runs on.
async fn harness() -> Harness {
    let db = TestDatabase::postgres().await.expect("a test schema");
    let settings = settings(&db);
    let store = open(&settings).await;
    Harness {
        store,
        backend: Box::new(PostgresBackend { db, settings }),
    }
}

#[async_trait::async_trait]
impl Backend for PostgresBackend {
    async fn reopen(&self) -> Arc<dyn Store> {
        open(&self.settings).await
    }

    async fn raw_bytes(&self) -> Vec<u8> {
        // Every row of every table in the schema, as PostgreSQL prints it.
        let schema = self.db.schema().expect("a schema");
        let mut conn = sqlx::PgConnection::connect(self.db.url())
            .await
            .expect("connect");
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
        )
        .bind(schema)
        .fetch_all(&mut conn)
        .await
        .expect("tables");
        assert!(tables.iter().any(|t| t == "api_keys"), "{tables:?}");
        let mut bytes = Vec::new();
        for table in tables {
            let rows: Vec<String> =
                sqlx::query_scalar(&format!("SELECT t::text FROM \"{schema}\".\"{table}\" t"))
                    .fetch_all(&mut conn)
                    .await
                    .expect("rows");
            for row in rows {
                bytes.extend(row.into_bytes());
            }
        }
        bytes
    }

    async fn execute(&self, sql: &str) {
        // The test database's URL puts its schema first on the search_path.
        let mut conn = sqlx::PgConnection::connect(self.db.url())
            .await
            .expect("connect");
        sqlx::query(sql).execute(&mut conn).await.expect(sql);
    }
}

mod contract_suite {
    contract_tests!(super::harness);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn processes_starting_together_migrate_once() {
    let db = TestDatabase::postgres().await.expect("a test schema");
    // Separate stores stand in for processes: sqlx's migrator serialises them
    // with an advisory lock, so every one succeeds and the schema is made once.
    let stores: Vec<Arc<dyn Store>> =
        join_all((0..6).map(|_| async { kepler_store::open(&db.settings()).await.expect("open") }))
            .await;
    let migrations = stores.iter().map(|store| {
        let store = Arc::clone(store);
        tokio::spawn(async move { store.migrate().await })
    });
    for result in join_all(migrations).await {
        result
            .expect("task")
            .expect("every concurrent migration succeeds");
    }
    let mut conn = sqlx::PgConnection::connect(db.url())
        .await
        .expect("connect");
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    let on_disk = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .expect("migrations dir")
        .count();
    assert_eq!(applied, on_disk as i64);
    let c = client(stores[0].as_ref(), Tier::Growth).await;
    assert!(
        stores[5]
            .authenticate(&c.key)
            .await
            .expect("auth")
            .is_some()
    );
    for store in stores {
        store.close().await;
    }
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_quickly() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let settings = DatabaseSettings {
        url: format!("postgres://postgres@127.0.0.1:{port}/test"),
        max_connections: 4,
        acquire_timeout: Duration::from_millis(500),
    };
    let store = kepler_store::open(&settings)
        .await
        .expect("opening does not connect");
    let started = Instant::now();
    let unavailable =
        |r: Result<(), StoreError>| assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    unavailable(store.ping().await);
    unavailable(store.migrate().await);
    unavailable(store.authenticate("ki_live_x").await.map(drop));
    unavailable(
        store
            .claim_run("w", Duration::from_secs(30), now())
            .await
            .map(drop),
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "each call gives up after acquire_timeout: {:?}",
        started.elapsed()
    );
    // Waiting for work does not fail either: it falls back to its timeout.
    let waited = Instant::now();
    store.wait_for_work(Duration::from_millis(300)).await;
    assert!(waited.elapsed() < Duration::from_secs(2));
    store.close().await;
}

#[tokio::test]
async fn bad_urls_are_configuration_errors() {
    for url in [
        "postgres://127.0.0.1:notaport/test",
        "postgres://h/db?sslmode=bogus",
    ] {
        let result = kepler_store::open(&DatabaseSettings {
            url: url.into(),
            ..DatabaseSettings::default()
        })
        .await;
        assert!(
            matches!(result, Err(StoreError::Config(_))),
            "{url}: {result:?}"
        );
    }
}

/// Waits until `store` listens (its first wake-up), then lets pending wake-ups pass.
async fn listening(store: &dyn Store) {
    store.wait_for_work(Duration::from_secs(10)).await;
    loop {
        let quiet = Instant::now();
        store.wait_for_work(Duration::from_millis(200)).await;
        if quiet.elapsed() >= Duration::from_millis(200) {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_or_released_run_wakes_workers_of_another_process() {
    let h = harness().await;
    let worker = h.backend.reopen().await;
    listening(worker.as_ref()).await;
    let c = client(h.store.as_ref(), Tier::Growth).await;
    let growth = Tier::Growth.default_policy();

    let api = Arc::clone(&h.store);
    let request = ask(&c.caller, growth, "wake.example", now());
    let admitting = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        api.admit(&request).await.expect("admit").decision
    });
    let waited = Instant::now();
    worker.wait_for_work(Duration::from_secs(20)).await;
    assert!(
        waited.elapsed() < Duration::from_secs(5),
        "woken by the admission, not the timeout: {:?}",
        waited.elapsed()
    );
    assert_eq!(admitting.await.expect("task"), Decision::Admit);

    let run = worker
        .claim_run("w1", Duration::from_secs(30), now())
        .await
        .expect("claim")
        .expect("the announced run");
    listening(worker.as_ref()).await;
    let api = Arc::clone(&h.store);
    let releasing = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        api.release_run(run.run_id, "w1").await.expect("release");
    });
    let waited = Instant::now();
    worker.wait_for_work(Duration::from_secs(20)).await;
    assert!(
        waited.elapsed() < Duration::from_secs(5),
        "woken by the hand-back: {:?}",
        waited.elapsed()
    );
    releasing.await.expect("task");
    worker.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_schemas_runs_do_not_wake_workers() {
    let mine = harness().await;
    let other = harness().await;
    listening(mine.store.as_ref()).await;
    let c = client(other.store.as_ref(), Tier::Growth).await;
    let request = ask(&c.caller, Tier::Growth.default_policy(), "x.example", now());
    let store = Arc::clone(&other.store);
    let admitting = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        store.admit(&request).await.expect("admit").decision
    });
    let waited = Instant::now();
    mine.store.wait_for_work(Duration::from_millis(1500)).await;
    assert!(
        waited.elapsed() >= Duration::from_millis(1500),
        "woken by a stranger"
    );
    assert_eq!(admitting.await.expect("task"), Decision::Admit);
    mine.store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_database_keep_the_limits_exact() {
    // Two handles with their own pools stand in for two API nodes: only the
    // database's row lock serialises their admissions.
    let h = harness().await;
    let other = h.backend.reopen().await;
    let c = client(h.store.as_ref(), Tier::Growth).await;
    let cap = policy(Tier::Growth, |p| p.monthly_cold_cap = 20);
    let tasks = (0..100).map(|i| {
        let store = if i % 2 == 0 {
            Arc::clone(&h.store)
        } else {
            Arc::clone(&other)
        };
        let request = ask(&c.caller, cap, &format!("d{}.example", i % 50), now());
        tokio::spawn(async move { store.admit(&request).await.expect("admit").decision })
    });
    let decisions: Vec<Decision> = join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    let admitted = decisions.iter().filter(|d| **d == Decision::Admit).count();
    assert_eq!(admitted, 20, "{decisions:?}");
    let runs = h
        .store
        .queue_stats(now())
        .await
        .expect("stats")
        .jobs_pending;
    assert_eq!(runs, 20);
    other.close().await;
}

/// Ends every connection the stores of `db` hold, as a database restart would.
async fn kill_connections(db: &TestDatabase) -> u64 {
    let mut admin = sqlx::PgConnection::connect(db.url())
        .await
        .expect("connect");
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = $1 AND pid <> pg_backend_pid()",
    )
    .bind(db.schema().expect("a schema"))
    .fetch_all(&mut admin)
    .await
    .expect("terminate");
    killed.len() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lost_connections_are_replaced_and_wake_ups_resume() {
    let db = TestDatabase::postgres().await.expect("a test schema");
    let api = open(&settings(&db)).await;
    let worker = open(&settings(&db)).await;
    listening(worker.as_ref()).await;
    let c = client(api.as_ref(), Tier::Growth).await;
    assert!(
        kill_connections(&db).await >= 2,
        "the pool and the listener"
    );

    // Without a restart: at worst a call or two fail as unavailable, then all is well.
    let mut attempts = 0;
    let outcome = loop {
        attempts += 1;
        match api
            .admit(&ask(
                &c.caller,
                Tier::Growth.default_policy(),
                "back.example",
                now(),
            ))
            .await
        {
            Ok(outcome) => break outcome,
            Err(StoreError::Unavailable(_)) if attempts < 5 => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(other) => panic!("attempt {attempts}: {other:?}"),
        }
    };
    assert_eq!(outcome.decision, Decision::Admit);

    // The listener is back too: a new run wakes the worker long before its timeout.
    listening(worker.as_ref()).await;
    let store = Arc::clone(&api);
    let request = ask(
        &c.caller,
        Tier::Growth.default_policy(),
        "next.example",
        now(),
    );
    let admitting = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        store.admit(&request).await.expect("admit").decision
    });
    let waited = Instant::now();
    worker.wait_for_work(Duration::from_secs(20)).await;
    assert!(
        waited.elapsed() < Duration::from_secs(5),
        "{:?}",
        waited.elapsed()
    );
    assert_eq!(admitting.await.expect("task"), Decision::Admit);
    api.close().await;
    worker.close().await;
}

/// Calls `kepler_admit` as the store does, with the window bounds at zero (every
/// call counts) and the given month limit and newest record seen.
async fn admit_sql(
    conn: &mut sqlx::PgConnection,
    caller: &kepler_store::Caller,
    domain: &str,
    month_limit: i64,
    record_seen: Option<i64>,
) -> String {
    sqlx::query_scalar(
        "SELECT outcome FROM kepler_admit($1, $2, $3, 0, 0, 0, 0, 0, $4, 1000, 1000, $5, \
         gen_random_uuid(), gen_random_uuid(), FALSE, 1764331200000, 0)",
    )
    .bind(caller.account_id)
    .bind(caller.key_id)
    .bind(domain)
    .bind(month_limit)
    .bind(record_seen)
    .fetch_one(conn)
    .await
    .expect("kepler_admit")
}

/// An admission is decided on a snapshot and written by `kepler_admit`, which
/// checks under the account's lock that the decision still holds. The race it
/// guards against is too narrow to arrange through `Store::admit`, so the
/// function is called directly: whatever changed, nothing is written.
#[tokio::test]
async fn an_admission_whose_facts_changed_before_its_lock_writes_nothing() {
    let db = TestDatabase::postgres().await.expect("a test schema");
    let store = open(&settings(&db)).await;
    let c = client(store.as_ref(), Tier::Growth).await;
    let mut conn = sqlx::PgConnection::connect(db.url())
        .await
        .expect("connect");

    // The month's calls reached the limit meanwhile.
    assert_eq!(
        admit_sql(&mut conn, &c.caller, "a.example", 0, None).await,
        "changed"
    );
    // A record of the domain was stored meanwhile (the decision saw none).
    store
        .put_record(&crate::support::record("b.example", now()))
        .await
        .expect("store a record");
    assert_eq!(
        admit_sql(&mut conn, &c.caller, "b.example", 10, None).await,
        "changed"
    );
    // Nothing changed: admitted; the same domain again finds the job in flight.
    assert_eq!(
        admit_sql(&mut conn, &c.caller, "a.example", 10, None).await,
        "admitted"
    );
    assert_eq!(
        admit_sql(&mut conn, &c.caller, "a.example", 10, None).await,
        "changed"
    );

    let stats = store.queue_stats(now()).await.expect("stats");
    assert_eq!(stats.jobs_pending, 1, "{stats:?}");
    let calls: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cold_calls")
        .fetch_one(&mut conn)
        .await
        .expect("count calls");
    assert_eq!(calls, 1);
    store.close().await;
}

/// `kepler_admit_batch` for `items` (account, domain), with limits out of
/// reach: the outcome of each, in the order given.
async fn admit_batch_sql(
    conn: &mut sqlx::PgConnection,
    items: &[(&kepler_store::Caller, String)],
) -> sqlx::Result<Vec<String>> {
    let n = items.len();
    let accounts: Vec<uuid::Uuid> = items.iter().map(|(c, _)| c.account_id).collect();
    let keys: Vec<uuid::Uuid> = items.iter().map(|(c, _)| c.key_id).collect();
    let domains: Vec<&str> = items.iter().map(|(_, d)| d.as_str()).collect();
    let zeros = vec![0_i64; n];
    let limits = vec![1_000_000_i64; n];
    let ids = || (0..n).map(|_| uuid::Uuid::now_v7()).collect::<Vec<_>>();
    sqlx::query_scalar(
        "SELECT outcome FROM kepler_admit_batch($1, $2, $3, $4, $4, $4, $4, $4, $5, $5, $5, $6, $7, $8, $9, $10, $4) \
         ORDER BY place",
    )
    .bind(accounts)
    .bind(keys)
    .bind(domains)
    .bind(&zeros)
    .bind(limits)
    .bind(vec![None::<i64>; n])
    .bind(ids())
    .bind(ids())
    .bind(vec![false; n])
    .bind(vec![1_764_331_200_000_i64; n])
    .fetch_all(conn)
    .await
}

/// Two nodes' batches that create the same two domains' runs for different
/// accounts, each batch naming the domains in the other's reverse order. Taken
/// in the order given they would wait for each other (a deadlock, which
/// PostgreSQL ends by failing one); the function takes the runs in the order
/// of their domains, so both go through and each domain has one run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_naming_the_same_domains_in_any_order_do_not_deadlock() {
    let db = TestDatabase::postgres().await.expect("a test schema");
    let store = open(&settings(&db)).await;
    let mut callers = Vec::new();
    for _ in 0..4 {
        callers.push(client(store.as_ref(), Tier::Growth).await.caller);
    }
    let mut first = sqlx::PgConnection::connect(db.url())
        .await
        .expect("connect");
    let mut second = sqlx::PgConnection::connect(db.url())
        .await
        .expect("connect");
    let rounds = 25;
    for round in 0..rounds {
        let (one, two) = (format!("a{round}.example"), format!("b{round}.example"));
        let x = [(&callers[0], one.clone()), (&callers[1], two.clone())];
        let y = [(&callers[2], two), (&callers[3], one)];
        let (x, y) = tokio::join!(
            admit_batch_sql(&mut first, &x),
            admit_batch_sql(&mut second, &y)
        );
        for outcomes in [x.expect("first batch"), y.expect("second batch")] {
            assert_eq!(outcomes, ["admitted", "admitted"], "round {round}");
        }
    }
    let (runs, jobs): (i64, i64) =
        sqlx::query_as("SELECT (SELECT COUNT(*) FROM runs), (SELECT COUNT(*) FROM jobs)")
            .fetch_one(&mut first)
            .await
            .expect("count");
    assert_eq!((runs, jobs), (2 * rounds, 4 * rounds));
    store.close().await;
}

/// Many admissions at once from two nodes, over accounts that share domains:
/// written in batches, every one is admitted once, every domain has one run,
/// and every account's usage counts its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batched_admissions_of_many_accounts_are_each_written_once() {
    let db = TestDatabase::postgres().await.expect("a test schema");
    let store = open(&settings(&db)).await;
    let other = open(&settings(&db)).await;
    let growth = Tier::Growth.default_policy();
    let mut callers = Vec::new();
    for _ in 0..6 {
        callers.push(client(store.as_ref(), Tier::Growth).await.caller);
    }
    let domains = 30;
    let tasks = (0..callers.len() * domains).map(|i| {
        let store = if i % 2 == 0 {
            Arc::clone(&store)
        } else {
            Arc::clone(&other)
        };
        // Each account asks for every domain, in an order of its own (a
        // multiplier prime to their number runs through all of them).
        let account = i % callers.len();
        let domain = (i / callers.len() * [1, 7, 11, 13, 17, 19][account] + account) % domains;
        let request = ask(
            &callers[account],
            growth,
            &format!("d{domain}.example"),
            now(),
        );
        tokio::spawn(async move { store.admit(&request).await.expect("admit").decision })
    });
    let decisions: Vec<Decision> = join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    let admitted = decisions.iter().filter(|d| **d == Decision::Admit).count();
    assert_eq!(admitted, callers.len() * domains, "{decisions:?}");
    let stats = store.queue_stats(now()).await.expect("stats");
    assert_eq!(
        stats.jobs_pending,
        (callers.len() * domains) as u64,
        "{stats:?}"
    );
    let mut conn = sqlx::PgConnection::connect(db.url())
        .await
        .expect("connect");
    let runs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM runs")
        .fetch_one(&mut conn)
        .await
        .expect("count runs");
    assert_eq!(runs, domains as i64);
    for caller in &callers {
        let usage = store.usage(caller, &growth, now()).await.expect("usage");
        assert_eq!(usage.month.used, domains as u64);
    }
    other.close().await;
    store.close().await;
}
