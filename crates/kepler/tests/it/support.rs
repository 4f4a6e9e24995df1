//! A real kepler-server on `127.0.0.1:0` (temp SQLite file, scripted engine) and
//! a way to run the `kepler` binary against it.

use std::future::Future;
use std::pin::Pin;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use kepler_core::config::{Config, DatabaseSettings};
use kepler_core::{Domain, FailureReason, ScoreRecord, Tier};
use kepler_server::{AppState, Scorer, serve};
use kepler_store::{SqliteStore, Store};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Scores every domain quickly, except `nxdomain.example`, which does not resolve.
#[derive(Debug)]
struct Scripted;

impl Scorer for Scripted {
    fn score<'a>(
        &'a self,
        domain: &'a Domain,
    ) -> Pin<Box<dyn Future<Output = Result<ScoreRecord, FailureReason>> + Send + 'a>> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if domain.as_str() == "nxdomain.example" {
                return Err(FailureReason::DomainNotResolvable);
            }
            let mut record =
                kepler_server::sandbox::record("grade-d.sandbox.test").expect("canned record");
            record.domain = domain.as_str().to_owned();
            record.scored_at = Utc::now();
            record.cached = false;
            Ok(record)
        })
    }
}

#[derive(Debug)]
pub struct Server {
    pub base: String,
    store: Arc<dyn Store>,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl Server {
    pub async fn start(toml: &str) -> Server {
        let text =
            format!("[workers]\npoll_interval = \"50ms\"\nshutdown_grace = \"200ms\"\n{toml}");
        let config = Config::from_toml(&text).expect("test config is valid");
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = DatabaseSettings {
            url: format!("sqlite://{}/k.db", dir.path().display()),
            ..Default::default()
        };
        let store = SqliteStore::open(&settings).await.expect("store opens");
        store.migrate().await.expect("migrations run");
        let store: Arc<dyn Store> = Arc::new(store);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shutdown = CancellationToken::new();
        let scorer: Arc<dyn Scorer> = Arc::new(Scripted);
        let state = AppState::new(store.clone(), config);
        let handle = tokio::spawn(serve(state, listener, Some(scorer), shutdown.clone()));
        Server {
            base,
            store,
            shutdown,
            handle: Some(handle),
            _dir: dir,
        }
    }

    pub async fn key(&self, tier: Tier, sandbox: bool) -> String {
        let account = self
            .store
            .create_account("cli", tier)
            .await
            .expect("account");
        let key = self.store.create_key(account.account_id, sandbox);
        key.await.expect("key").key
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            let joined = tokio::time::timeout(Duration::from_secs(10), handle)
                .await
                .expect("server stops")
                .expect("server task did not panic");
            joined.expect("serve returned Ok");
        }
        self.store.close().await;
    }
}

/// What a run of the binary left behind.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `kepler` with these arguments and environment (nothing inherited that
/// could change its behaviour).
pub async fn kepler(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_kepler"));
    command
        .args(args)
        .env_remove("KEPLER_URL")
        .env_remove("KEPLER_API_KEY")
        .env_remove("KEPLER_CONFIG")
        .env_remove("KEPLER_DATABASE_URL")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env("NO_COLOR", "1");
    for (name, value) in env {
        command.env(name, value);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().await.expect("kepler runs");
    let run = Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    assert!(
        !run.stderr.contains("panicked") && !run.stderr.contains("RUST_BACKTRACE"),
        "no panic, no backtrace: {}",
        run.stderr
    );
    run
}
