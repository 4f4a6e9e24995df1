//! PostgreSQL going away and coming back, through a real TCP proxy in front of
//! the test server that can be cut (listener closed, every connection dropped)
//! and restored on the same port.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use kepler_core::Tier;
use kepler_core::admission::Decision;
use kepler_core::config::DatabaseSettings;
use kepler_store::StoreError;
use kepler_store::testing::TestDatabase;
use sqlx::postgres::PgConnectOptions;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::support::{ask, client, domain, now, record, score_ask};

struct Proxy {
    listen: SocketAddr,
    target: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let listen = listener.local_addr().expect("addr");
        Proxy {
            listen,
            target,
            task: Some(tokio::spawn(forward(listener, target))),
        }
    }

    /// Closes the port and drops every connection through it.
    async fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    async fn restore(&mut self) {
        let listener = TcpListener::bind(self.listen)
            .await
            .expect("the proxy's port again");
        self.task = Some(tokio::spawn(forward(listener, self.target)));
    }
}

/// Accepts and pipes; the connections live in a set owned by this task, so
/// aborting the task drops them all.
async fn forward(listener: TcpListener, target: SocketAddr) {
    let mut connections = JoinSet::new();
    while let Ok((mut inbound, _)) = listener.accept().await {
        connections.spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
        while connections.try_join_next().is_some() {}
    }
}

fn unavailable<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_fails_fast_and_ends_by_itself() {
    let db = TestDatabase::postgres().await.expect("a test schema");
    let options = PgConnectOptions::from_str(db.url()).expect("test URL");
    let server = format!("{}:{}", options.get_host(), options.get_port());
    let target = tokio::net::lookup_host(&server)
        .await
        .expect("resolve")
        .next()
        .expect("an address");
    let mut proxy = Proxy::start(target).await;
    // A long acquire_timeout: answering promptly must not depend on it.
    let settings = DatabaseSettings {
        url: db.url().replacen(&server, &proxy.listen.to_string(), 1),
        max_connections: 4,
        acquire_timeout: Duration::from_secs(30),
    };
    let store = kepler_store::open(&settings).await.expect("open");
    store.migrate().await.expect("migrate");
    let c = client(store.as_ref(), Tier::Growth).await;
    store.ping().await.expect("up through the proxy");
    // A cached hit the store remembers (crate::hits) must fail as promptly.
    store
        .put_record(&record("kept.example", now() - chrono::Duration::days(1)))
        .await
        .expect("put");
    let tiers = kepler_core::TierTable::default();
    let kept = domain("kept.example");
    let hit = score_ask(&kept, &tiers, now());
    for _ in 0..2 {
        let (_, outcome) = store
            .authenticate_and_admit(&c.key, &hit)
            .await
            .expect("a hit")
            .expect("a live key");
        assert_eq!(outcome.expect("decided").decision, Decision::ServeFresh);
    }

    proxy.cut().await;
    let policy = Tier::Growth.default_policy();
    for round in 0..5 {
        let started = Instant::now();
        unavailable(store.ping().await);
        unavailable(
            store
                .admit(&ask(&c.caller, policy, "down.example", now()))
                .await,
        );
        unavailable(store.authenticate(&c.key).await);
        unavailable(store.authenticate_and_admit(&c.key, &hit).await);
        // Promptly: the 30 s acquire_timeout is never waited out.
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "round {round} took {:?}",
            started.elapsed()
        );
    }

    // Back without reopening the store.
    proxy.restore().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.ping().await.is_err() {
        assert!(Instant::now() < deadline, "the store never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let outcome = store
        .admit(&ask(&c.caller, policy, "back.example", now()))
        .await
        .expect("admits again");
    assert_eq!(outcome.decision, Decision::Admit);
    store.close().await;
}
