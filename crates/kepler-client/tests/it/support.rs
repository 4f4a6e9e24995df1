//! The harness: the real kepler-server on `127.0.0.1:0` over a temp SQLite file,
//! a scripted engine behind it, and a one-request-per-connection stub that sits
//! in front of it to fail on cue.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use kepler_client::{Client, ClientBuilder, RetryPolicy};
use kepler_core::config::{Config, DatabaseSettings};
use kepler_core::{Domain, FailureReason, ScoreRecord, Tier};
use kepler_server::{AppState, Scorer, serve};
use kepler_store::{SqliteStore, Store};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What the scripted engine does for a domain.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    /// A record after this delay.
    Record(Duration),
    /// This failure after this delay.
    Fail(FailureReason, Duration),
}

/// A stand-in for the engine: per-domain outcomes, quick records by default.
#[derive(Debug, Default)]
pub struct Scripted {
    plan: HashMap<String, Outcome>,
}

impl Scripted {
    pub fn with(mut self, domain: &str, outcome: Outcome) -> Scripted {
        self.plan.insert(domain.to_owned(), outcome);
        self
    }
}

/// A plausible record for any domain: the grade-B sandbox record, renamed.
fn record_for(domain: &str) -> ScoreRecord {
    let mut record = kepler_server::sandbox::record("grade-b.sandbox.test").expect("canned record");
    record.domain = domain.to_owned();
    record.scored_at = Utc::now();
    record.engine_version = "scripted-1".to_owned();
    record
}

impl Scorer for Scripted {
    fn score<'a>(
        &'a self,
        domain: &'a Domain,
    ) -> Pin<Box<dyn Future<Output = Result<ScoreRecord, FailureReason>> + Send + 'a>> {
        let outcome = self
            .plan
            .get(domain.as_str())
            .copied()
            .unwrap_or(Outcome::Record(Duration::from_millis(50)));
        Box::pin(async move {
            match outcome {
                Outcome::Record(delay) => {
                    tokio::time::sleep(delay).await;
                    Ok(record_for(domain.as_str()))
                }
                Outcome::Fail(reason, delay) => {
                    tokio::time::sleep(delay).await;
                    Err(reason)
                }
            }
        })
    }
}

/// A running kepler-server and its store.
#[derive(Debug)]
pub struct Server {
    pub base: String,
    store: Arc<dyn Store>,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// A server with prompt workers; `toml` adds configuration (tier overrides).
    pub async fn start(toml: &str, scorer: Scripted) -> Server {
        let text = format!(
            "[workers]\npoll_interval = \"50ms\"\nlease = \"1s\"\nshutdown_grace = \"200ms\"\n{toml}\n"
        );
        let config = Config::from_toml(&text).unwrap_or_else(|e| panic!("config: {e}\n{text}"));
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
        let state = AppState::new(store.clone(), config);
        let scorer: Arc<dyn Scorer> = Arc::new(scorer);
        let handle = tokio::spawn(serve(state, listener, Some(scorer), shutdown.clone()));
        Server {
            base,
            store,
            shutdown,
            handle: Some(handle),
            _dir: dir,
        }
    }

    /// A live key of a new account of `tier`.
    pub async fn live_key(&self, tier: Tier) -> String {
        let account = self
            .store
            .create_account("client-test", tier)
            .await
            .expect("account");
        let key = self.store.create_key(account.account_id, false);
        key.await.expect("key").key
    }

    /// A sandbox key of a new free account.
    pub async fn sandbox_key(&self) -> String {
        let account = self
            .store
            .create_account("client-test", Tier::Free)
            .await
            .expect("account");
        let key = self.store.create_key(account.account_id, true);
        key.await.expect("key").key
    }

    /// A client of this server.
    pub fn client(&self, key: &str) -> Client {
        builder(&self.base, key).build().expect("client builds")
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            let joined = tokio::time::timeout(Duration::from_secs(10), handle)
                .await
                .expect("server stops within 10 s")
                .expect("server task did not panic");
            joined.expect("serve returned Ok");
        }
        self.store.close().await;
    }
}

/// A builder with test-friendly settings: quick retries, no proxy.
pub fn builder(base: &str, key: &str) -> ClientBuilder {
    Client::builder(base, key).no_proxy().retry(RetryPolicy {
        max_retries: 3,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_secs(5),
    })
}

/// What the stub does with one request.
#[derive(Debug, Clone)]
pub enum Act {
    /// Passes it to the server and its answer back.
    Forward,
    /// Answers this itself: status, extra header lines, body.
    Answer(u16, &'static str, String),
    /// Passes it to the server, then hangs up on the client without its answer.
    ForwardThenHangUp,
    /// Hangs up without an answer.
    HangUp,
}

/// An HTTP stub in front of the server that takes one request per connection
/// and follows a script (then forwards everything).
#[derive(Debug, Clone)]
pub struct Stub {
    pub base: String,
    script: Arc<Mutex<VecDeque<Act>>>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Stub {
    pub async fn start(upstream: &str, script: Vec<Act>) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let stub = Stub {
            base: format!("http://{}", listener.local_addr().expect("addr")),
            script: Arc::new(Mutex::new(script.into())),
            seen: Arc::new(Mutex::new(Vec::new())),
        };
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let serving = stub.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let stub = serving.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move { stub.handle(conn, &upstream).await });
            }
        });
        stub
    }

    /// The head (request line and headers) of every request seen, in order.
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().expect("seen lock").clone()
    }

    async fn handle(&self, mut conn: TcpStream, upstream: &str) {
        let Some((head, body)) = read_message(&mut conn).await else {
            return;
        };
        self.seen.lock().expect("seen lock").push(head.clone());
        let act = self
            .script
            .lock()
            .expect("script lock")
            .pop_front()
            .unwrap_or(Act::Forward);
        match act {
            Act::Forward => {
                let answer = forward(upstream, &head, &body).await;
                let _ = conn.write_all(&answer).await;
            }
            Act::ForwardThenHangUp => {
                forward(upstream, &head, &body).await;
            }
            Act::Answer(status, headers, body) => {
                let text = format!(
                    "HTTP/1.1 {status} Scripted\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(text.as_bytes()).await;
            }
            Act::HangUp => {}
        }
        let _ = conn.shutdown().await;
    }
}

/// One request to the server on its own connection; its whole answer.
async fn forward(upstream: &str, head: &str, body: &[u8]) -> Vec<u8> {
    let mut server = TcpStream::connect(upstream).await.expect("upstream");
    // Closing after one answer lets the answer be read to its end.
    let head = head
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect::<Vec<_>>()
        .join("\r\n");
    let request = format!("{head}\r\nconnection: close\r\n\r\n");
    server
        .write_all(request.as_bytes())
        .await
        .expect("write head");
    server.write_all(body).await.expect("write body");
    let mut answer = Vec::new();
    server.read_to_end(&mut answer).await.expect("read answer");
    answer
}

/// Reads one request: its head (without the blank line) and its body.
async fn read_message(conn: &mut (impl AsyncRead + Unpin)) -> Option<(String, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buffer[end + 4..].to_vec();
    while body.len() < length {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((head, body))
}

/// Copies bytes both ways until either side closes.
pub async fn pipe(
    mut a: impl AsyncRead + AsyncWrite + Unpin,
    mut b: impl AsyncRead + AsyncWrite + Unpin,
) {
    let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
}
