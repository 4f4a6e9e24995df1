//! The harness: a real server on `127.0.0.1:0` over a fresh database, driven by
//! reqwest, and a scripted scorer that stands in for the engine.
//!
//! `KEPLER_TEST_BACKEND=sqlite|postgres` picks the database (SQLite by default):
//! a temp file, or a schema of its own on the PostgreSQL at 127.0.0.1:5432.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::future::BoxFuture;
use kepler_core::config::Config;
use kepler_core::{Domain, FailureReason, ScoreRecord, Tier};
use kepler_server::{AppState, Scorer, serve};
use kepler_store::Store;
use kepler_store::testing::TestDatabase;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Worker settings that keep test runs prompt; `extra` lines are added to `[workers]`.
pub fn config(workers_extra: &str, rest: &str) -> Config {
    let text = format!(
        "[workers]\npoll_interval = \"50ms\"\nlease = \"5s\"\nshutdown_grace = \"200ms\"\n{workers_extra}\n{rest}\n"
    );
    Config::from_toml(&text).unwrap_or_else(|e| panic!("test config is valid: {e}\n{text}"))
}

/// A running server and the store behind it.
#[derive(Debug)]
pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<std::io::Result<()>>>,
    /// The database, when the server owns it (dropped after the server stops).
    _db: Option<TestDatabase>,
}

/// One HTTP answer, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the RFC 9457 problem shape with this stable code; returns the body.
    pub fn problem(&self, code: &str) -> &Value {
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "problem content-type: {}",
            self.text
        );
        let b = &self.body;
        assert_eq!(b["error"], code, "error code: {}", self.text);
        assert_eq!(b["status"], self.status, "status field: {}", self.text);
        for field in ["type", "title", "detail"] {
            assert!(
                b[field].as_str().is_some_and(|s| !s.is_empty()),
                "problem field {field}: {}",
                self.text
            );
        }
        b
    }
}

pub fn http_client() -> reqwest::Client {
    client_builder().build().expect("client builds")
}

/// A client that asks for no content coding and decodes none: what it reads
/// is what the server sent.
pub fn raw_client() -> reqwest::Client {
    client_builder().no_gzip().build().expect("client builds")
}

fn client_builder() -> reqwest::ClientBuilder {
    // reqwest is built without a default crypto provider: hand it one (plain
    // HTTP is all these tests speak, but the builder insists on TLS settings).
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default protocol versions")
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .no_proxy()
        .timeout(Duration::from_secs(30))
}

/// A fresh, empty database on the backend `KEPLER_TEST_BACKEND` names.
pub async fn test_db() -> TestDatabase {
    TestDatabase::from_env()
        .await
        .expect("a test database (is PostgreSQL running?)")
}

pub async fn open_store(db: &TestDatabase) -> Arc<dyn Store> {
    let store = kepler_store::open(&db.settings())
        .await
        .expect("store opens");
    store.migrate().await.expect("migrations run");
    store
}

impl TestServer {
    /// A server on a fresh database of its own.
    pub async fn start(config: Config, scorer: Option<Arc<dyn Scorer>>) -> TestServer {
        let db = test_db().await;
        let mut server = TestServer::start_on(&db, config, scorer).await;
        server._db = Some(db);
        server
    }

    /// A server on `db` (kept by the caller, for restarts and several nodes).
    pub async fn start_on(
        db: &TestDatabase,
        config: Config,
        scorer: Option<Arc<dyn Scorer>>,
    ) -> TestServer {
        let store = open_store(db).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let shutdown = CancellationToken::new();
        let state = AppState::new(store.clone(), config);
        let handle = tokio::spawn(serve(state, listener, scorer, shutdown.clone()));
        TestServer {
            base: format!("http://{addr}"),
            client: http_client(),
            store,
            shutdown,
            handle: Some(handle),
            _db: None,
        }
    }

    /// Stops the server (and its workers) and closes the store.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            let result = tokio::time::timeout(Duration::from_secs(10), handle).await;
            let joined = result
                .expect("server stops within 10 s")
                .expect("server task did not panic");
            joined.expect("serve returned Ok");
        }
        self.store.close().await;
    }

    /// A new account of `tier` and a live key for it: (account_id, key).
    pub async fn account(&self, tier: Tier) -> (String, String) {
        let account = self
            .store
            .create_account("test", tier)
            .await
            .expect("account");
        let key = self
            .store
            .create_key(account.account_id, false)
            .await
            .expect("key");
        (account.account_id.to_string(), key.key)
    }

    /// Another key for an account.
    pub async fn key(&self, account_id: &str, sandbox: bool) -> String {
        let id = account_id.parse().expect("uuid");
        self.store.create_key(id, sandbox).await.expect("key").key
    }

    /// Sends a request and asserts its status (and the Request-Id every answer carries).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
        expected: u16,
    ) -> Resp {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request, &format!("{method} {path}"), expected)
            .await
    }

    /// Sends a prepared request and asserts its status.
    pub async fn send(&self, request: reqwest::RequestBuilder, what: &str, expected: u16) -> Resp {
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .unwrap_or_else(|e| panic!("{what}: body: {e}"));
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(status, expected, "{what}: unexpected status; body: {text}");
        assert!(
            headers.get("request-id").is_some_and(|v| !v.is_empty()),
            "{what}: no Request-Id header: {headers:?}"
        );
        Resp {
            status,
            headers,
            text,
            body,
        }
    }

    pub async fn post_score(&self, key: &str, body: Value, expected: u16) -> Resp {
        self.call(Method::POST, "/v1/score", Some(key), Some(body), expected)
            .await
    }

    pub async fn get(&self, key: &str, path: &str, expected: u16) -> Resp {
        self.call(Method::GET, path, Some(key), None, expected)
            .await
    }

    pub async fn usage(&self, key: &str) -> Value {
        self.get(key, "/v1/usage", 200).await.body
    }

    /// Polls a job until it settles (or `limit` passes); returns the settled view.
    pub async fn settle(&self, key: &str, job_id: &str, limit: Duration) -> Value {
        let started = Instant::now();
        loop {
            let job = self.get(key, &format!("/v1/jobs/{job_id}"), 200).await.body;
            let status = job["status"].as_str().unwrap_or_default().to_owned();
            assert!(
                ["pending", "running", "complete", "failed"].contains(&status.as_str()),
                "unknown job status: {job}"
            );
            if status == "complete" || status == "failed" {
                return job;
            }
            assert!(
                started.elapsed() < limit,
                "job {job_id} still {status} after {limit:?}: {job}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// What the scripted scorer does for one domain.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// Returns a record after this delay.
    Record(Duration),
    /// Fails with this reason after this delay.
    Fail(FailureReason, Duration),
    /// Panics (a bug in the engine), after this delay.
    Panic(Duration),
}

/// A stand-in engine: per-domain scripted outcomes, counted calls.
#[derive(Debug)]
pub struct ScriptedScorer {
    default: Step,
    plan: HashMap<String, Step>,
    calls: Mutex<HashMap<String, usize>>,
    /// Runs in progress now, and the most ever at once.
    in_flight: Mutex<(usize, usize)>,
}

impl ScriptedScorer {
    /// Every domain scores after `delay`, unless scripted otherwise.
    pub fn new(delay: Duration) -> ScriptedScorer {
        ScriptedScorer {
            default: Step::Record(delay),
            plan: HashMap::new(),
            calls: Mutex::new(HashMap::new()),
            in_flight: Mutex::new((0, 0)),
        }
    }

    pub fn with(mut self, domain: &str, step: Step) -> ScriptedScorer {
        self.plan.insert(domain.to_owned(), step);
        self
    }

    pub fn calls(&self, domain: &str) -> usize {
        self.calls
            .lock()
            .expect("calls lock")
            .get(domain)
            .copied()
            .unwrap_or(0)
    }

    /// The most runs that were ever in progress at once.
    pub fn max_in_flight(&self) -> usize {
        self.in_flight.lock().expect("in-flight lock").1
    }

    fn enter(&self) {
        let mut now = self.in_flight.lock().expect("in-flight lock");
        now.0 += 1;
        now.1 = now.1.max(now.0);
    }

    fn leave(&self) {
        self.in_flight.lock().expect("in-flight lock").0 -= 1;
    }

    pub fn total_calls(&self) -> usize {
        self.calls.lock().expect("calls lock").values().sum()
    }
}

/// A plausible record for any domain: the grade-B sandbox record, renamed and fresh.
pub fn record_for(domain: &str) -> ScoreRecord {
    let mut record = kepler_server::sandbox::record("grade-b.sandbox.test").expect("canned record");
    record.domain = domain.to_owned();
    record.scored_at = Utc::now();
    record.cached = false;
    record.engine_version = "scripted-1".to_owned();
    record
}

impl Scorer for ScriptedScorer {
    fn score<'a>(
        &'a self,
        domain: &'a Domain,
    ) -> BoxFuture<'a, Result<ScoreRecord, FailureReason>> {
        *self
            .calls
            .lock()
            .expect("calls lock")
            .entry(domain.as_str().to_owned())
            .or_default() += 1;
        let step = self
            .plan
            .get(domain.as_str())
            .copied()
            .unwrap_or(self.default);
        Box::pin(async move {
            self.enter();
            // Leaves on drop too, so a run cut off by job_timeout is not counted forever.
            let _leave = Leave(self);
            match step {
                Step::Record(delay) => {
                    tokio::time::sleep(delay).await;
                    Ok(record_for(domain.as_str()))
                }
                Step::Fail(reason, delay) => {
                    tokio::time::sleep(delay).await;
                    Err(reason)
                }
                Step::Panic(delay) => {
                    tokio::time::sleep(delay).await;
                    panic!("scripted engine bug on {domain}");
                }
            }
        })
    }
}

struct Leave<'a>(&'a ScriptedScorer);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}
