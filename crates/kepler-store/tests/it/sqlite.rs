//! The contract suite on SQLite (a fresh temp-file database per test), and what
//! only SQLite has: file creation, URL forms, the write lock of another process.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kepler_core::Tier;
use kepler_core::admission::Decision;
use kepler_core::config::DatabaseSettings;
use kepler_store::{Store, StoreError};
use sqlx::Connection;

use crate::support::{Backend, Harness, admit, ask, client, now};

struct SqliteBackend {
    /// Kept so the directory lives as long as the test.
    _dir: tempfile::TempDir,
    path: PathBuf,
    settings: DatabaseSettings,
}

fn settings(url: String) -> DatabaseSettings {
    // Generous: the concurrency tests queue hundreds of admissions on a small machine.
    DatabaseSettings {
        url,
        max_connections: 8,
        acquire_timeout: Duration::from_secs(60),
    }
}

async fn open(settings: &DatabaseSettings) -> Arc<dyn Store> {
    let store = kepler_store::open(settings).await.expect("open");
    store.migrate().await.expect("migrate");
    store
}

/// The factory the contract suite runs on.
async fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nested").join("kepler.db");
    let settings = settings(format!("sqlite://{}", path.display()));
    let store = open(&settings).await;
    Harness {
        store,
        backend: Box::new(SqliteBackend {
            _dir: dir,
            path,
            settings,
        }),
    }
}

#[async_trait::async_trait]
impl Backend for SqliteBackend {
    async fn reopen(&self) -> Arc<dyn Store> {
        open(&self.settings).await
    }

    async fn raw_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            let mut file = self.path.clone().into_os_string();
            file.push(suffix);
            if let Ok(content) = std::fs::read(&file) {
                bytes.extend(content);
            }
        }
        assert!(!bytes.is_empty(), "the database file exists");
        bytes
    }

    async fn execute(&self, sql: &str) {
        let mut conn = sqlx::SqliteConnection::connect(&self.settings.url)
            .await
            .expect("connect");
        sqlx::query(sql).execute(&mut conn).await.expect(sql);
    }
}

mod contract_suite {
    contract_tests!(super::harness);
}

#[tokio::test]
async fn creates_the_file_and_its_directories_on_first_use() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("a").join("b").join("kepler.db");
    let store = open(&settings(format!("sqlite://{}", path.display()))).await;
    assert!(path.exists());
    store
        .create_account("Acme", Tier::Growth)
        .await
        .expect("usable");
    store.close().await;
}

#[tokio::test]
async fn in_memory_databases_work() {
    let store = open(&settings("sqlite::memory:".into())).await;
    let account = store
        .create_account("Acme", Tier::Growth)
        .await
        .expect("create");
    assert_eq!(
        store.get_account(account.account_id).await.expect("get"),
        Some(account)
    );
}

#[tokio::test]
async fn bad_urls_are_configuration_errors() {
    for url in [
        "sqlite://x.db?mode=bogus",
        "mysql://localhost/kepler",
        "mariadb://localhost/kepler",
    ] {
        let result = kepler_store::open(&settings(url.into())).await;
        assert!(
            matches!(result, Err(StoreError::Config(_))),
            "{url}: {result:?}"
        );
    }
}

/// Stands in for another process: a separate connection holding the write
/// lock until it is rolled back.
async fn hold_the_write_lock(url: &str) -> sqlx::SqliteConnection {
    let mut other = sqlx::SqliteConnection::connect(url).await.expect("connect");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .expect("lock");
    other
}

#[tokio::test]
async fn another_process_holding_the_write_lock_makes_writes_unavailable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("kepler.db").display());
    let mut settings = settings(url.clone());
    settings.acquire_timeout = Duration::from_secs(1);
    let store = open(&settings).await;
    let account = store
        .create_account("Acme", Tier::Growth)
        .await
        .expect("create");

    let mut other = hold_the_write_lock(&url).await;
    let blocked = store.set_tier(account.account_id, Tier::Scale).await;
    assert!(
        matches!(blocked, Err(StoreError::Unavailable(_))),
        "{blocked:?}"
    );
    assert!(
        store
            .get_account(account.account_id)
            .await
            .expect("reads still work")
            .is_some()
    );

    sqlx::query("ROLLBACK")
        .execute(&mut other)
        .await
        .expect("unlock");
    let account = store
        .set_tier(account.account_id, Tier::Scale)
        .await
        .expect("service resumes by itself");
    assert_eq!(account.tier, Tier::Scale);
}

#[tokio::test]
async fn an_admission_whose_caller_gave_up_is_not_charged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("kepler.db").display());
    let store = open(&settings(url.clone())).await;
    let c = client(&*store, Tier::Growth).await;
    let growth = Tier::Growth.default_policy();
    let request = ask(&c.caller, growth, "gave-up.example", now());

    // The admission waits for the lock another process holds, and its caller
    // stops waiting (as the server's `store_timeout` does) before it is written.
    let mut other = hold_the_write_lock(&url).await;
    let gave_up = tokio::time::timeout(Duration::from_millis(300), store.admit(&request)).await;
    assert!(gave_up.is_err(), "still waiting for the lock: {gave_up:?}");
    sqlx::query("ROLLBACK")
        .execute(&mut other)
        .await
        .expect("unlock");

    // Whatever was queued for it has been dealt with once this next write is done.
    store
        .create_account("Later", Tier::Growth)
        .await
        .expect("write");
    let usage = store.usage(&c.caller, &growth, now()).await.expect("usage");
    assert_eq!(usage.month.used, 0, "not charged: {usage:?}");
    assert_eq!(usage.month_cost_micros, 0);
    let again = admit(&*store, &request).await;
    assert_eq!(again.decision, Decision::Admit, "no job was left in flight");
    assert_eq!(
        store
            .usage(&c.caller, &growth, now())
            .await
            .expect("usage")
            .month
            .used,
        1
    );
}

#[tokio::test]
async fn an_idle_claim_never_waits_for_the_write_lock() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("kepler.db").display());
    let store = open(&settings(url.clone())).await;
    let mut other = hold_the_write_lock(&url).await;

    // An empty queue is seen on a reader: no wait for the writer (60 s here).
    let claim = store.claim_runs("idle", Duration::from_secs(30), chrono::Utc::now(), 4);
    let claimed = tokio::time::timeout(Duration::from_secs(5), claim)
        .await
        .expect("answered without the write lock")
        .expect("claim");
    assert!(claimed.is_empty());
    sqlx::query("ROLLBACK")
        .execute(&mut other)
        .await
        .expect("unlock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_file_keep_the_limits_exact() {
    use kepler_core::admission::Decision;

    use crate::support::{ask, client, now, policy};

    // Two handles with their own pools stand in for two processes (`serve` and `worker`):
    // only SQLite's own lock (`BEGIN IMMEDIATE`) serialises them.
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
        let request = ask(&c.caller, cap, &format!("d{i}.example"), now());
        tokio::spawn(async move { store.admit(&request).await.expect("admit").decision })
    });
    let decisions: Vec<Decision> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    let admitted = decisions.iter().filter(|d| **d == Decision::Admit).count();
    assert_eq!(admitted, 20, "{decisions:?}");
}

/// The server stops waiting for the store after `store_timeout` and drops the
/// call, which can abandon a write at any point, even between sqlx's `BEGIN`
/// and the transaction it returns. The store must stay writable afterwards:
/// no connection may be kept inside a transaction that holds the write lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_abandoned_at_any_moment_leave_the_store_writable() {
    use crate::support::{ask, client, now};

    let h = harness().await;
    let store = h.store.clone();
    let c = client(store.as_ref(), Tier::Enterprise).await;
    // Limits out of reach: however many of the abandoned admissions complete,
    // the last one must be admitted, not refused for the key's hourly limit.
    let policy = crate::support::policy(Tier::Enterprise, |p| {
        p.monthly_cold_cap = u64::MAX / 4;
        p.key_hourly_cold_limit = u64::MAX / 4;
        p.account_daily_cold_limit = u64::MAX / 4;
    });
    let abandoning = (0..8u64).map(|task| {
        let store = Arc::clone(&store);
        let caller = c.caller.clone();
        tokio::spawn(async move {
            for i in 0..150u64 {
                // Deadlines from 0 to 400 µs land inside every step of an admission.
                let budget = Duration::from_micros((i * 37 + task * 101) % 400);
                let name = format!("t{task}-{i}.example");
                let request = ask(&caller, policy, &name, now());
                let _ = tokio::time::timeout(budget, store.admit(&request)).await;
            }
        })
    });
    for task in abandoning.collect::<Vec<_>>() {
        task.await.expect("task");
    }
    let after = ask(&c.caller, policy, "after.example", now());
    let outcome = tokio::time::timeout(Duration::from_secs(30), store.admit(&after))
        .await
        .expect("the write lock was released")
        .expect("the store still admits");
    assert!(outcome.job.is_some(), "{outcome:?}");
    let claimed = store
        .claim_runs("w", Duration::from_secs(30), now(), 2000)
        .await
        .expect("the store still claims");
    assert!(claimed.iter().any(|run| run.domain == "after.example"));
}
