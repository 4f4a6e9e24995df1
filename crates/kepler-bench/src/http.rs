//! The HTTP paths of a real `kepler serve` under wrk: `/healthz` (the
//! baseline), a cached hit and cold admissions, on each store backend.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use kepler_testnet::{Testnet, TestnetOptions};
use serde_json::{Value, json};
use tokio::process::Command;

use crate::HttpArgs;
use crate::server::{self, Backend, Server};
use crate::wrk::{self, Load, Options, Scenario};

/// Accounts the many-accounts cold run spreads its requests over.
pub const MANY_ACCOUNTS: usize = 32;

/// Everything measured on one backend.
#[derive(Debug, Clone)]
pub struct HttpResult {
    pub backend: Backend,
    /// `/healthz` before and after the other runs: their mean is the
    /// baseline, their spread shows how noisy the machine was.
    pub healthz: [Load; 2],
    /// `/readyz`: one `SELECT 1` per request, what any store read costs at least.
    pub readyz: Load,
    pub cached: Load,
    /// The cached hit asking for gzip, as the SDKs do.
    pub cached_gzip: Load,
    /// The cached hit's body as sent: (plain, gzipped) bytes.
    pub record_bytes: (usize, usize),
    pub cold: Load,
    /// Cold admissions spread over [`MANY_ACCOUNTS`] accounts.
    pub cold_many: Load,
    /// Cold admissions made one after another straight on the store, in
    /// process: what one admission costs the store with nothing else running.
    pub serial: Serial,
    /// Cold calls the store counted during the cold run (from `/v1/usage`).
    pub cold_counted: u64,
    /// Resident set of the API process, idle after start, in KiB.
    pub rss_idle_kib: Option<u64>,
    /// The database server's durability setting (`synchronous_commit`), where it has one.
    pub synchronous_commit: Option<String>,
}

impl HttpResult {
    pub fn baseline(&self) -> f64 {
        (self.healthz[0].throughput() + self.healthz[1].throughput()) / 2.0
    }
}

pub async fn run(args: &HttpArgs) -> anyhow::Result<Vec<HttpResult>> {
    anyhow::ensure!(
        args.kepler.is_file(),
        "{} not found: build it first (cargo build --release -p kepler)",
        args.kepler.display()
    );
    let mut results = Vec::new();
    for &backend in &args.backends {
        results.push(run_backend(args, backend).await?);
    }
    Ok(results)
}

async fn run_backend(args: &HttpArgs, backend: Backend) -> anyhow::Result<HttpResult> {
    let dir = tempfile::tempdir().context("temp dir")?;
    let net = Testnet::start(TestnetOptions::in_dir(dir.path()))
        .await
        .context("starting the test network")?;
    let database = Database::create(backend, dir.path(), &args.postgres).await?;
    let result = measure(args, backend, dir.path(), &net, &database.url)
        .await
        .map(|mut result| {
            result.synchronous_commit = database.synchronous_commit.clone();
            result
        });
    database.drop().await;
    net.shutdown().await;
    result
}

async fn measure(
    args: &HttpArgs,
    backend: Backend,
    dir: &Path,
    net: &Testnet,
    database_url: &str,
) -> anyhow::Result<HttpResult> {
    let kepler = args.kepler.as_path();
    let config = server::write_config(dir, database_url, &net.engine_config_toml())?;
    server::admin(kepler, &config, &["migrate"]).await.ok();
    let key = server::enterprise_key(kepler, &config, "bench").await?;
    let mut many_keys = Vec::with_capacity(MANY_ACCOUNTS);
    for i in 0..MANY_ACCOUNTS {
        many_keys.push(server::enterprise_key(kepler, &config, &format!("bench-{i}")).await?);
    }
    let many_keys = many_keys.join(",");

    // Seed the record the cached-hit run reads, with a real engine run.
    let seeder = Server::start(kepler, &config, true, dir.join("seed.log")).await?;
    score_cold(&seeder.base_url, &key, "strong.test").await?;
    seeder.stop().await?;

    // Measure an API-only node, so no engine run competes for the CPU.
    let api = Server::start(kepler, &config, false, dir.join("api.log")).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle_kib = api.rss_kib();
    let options = Options {
        threads: args.threads,
        connections: args.connections,
        duration: args.duration,
    };
    let run_id = format!(
        "r{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default()
    );
    let env = [
        ("KEPLER_BENCH_KEY", key.as_str()),
        ("KEPLER_BENCH_DOMAIN", "strong.test"),
        ("KEPLER_BENCH_RUN", run_id.as_str()),
        ("KEPLER_BENCH_KEYS", many_keys.as_str()),
    ];
    let base = api.base_url.clone();
    let load = |scenario| wrk::run(scenario, &base, &options, &env, dir);
    eprintln!("http/{backend}: /healthz");
    let healthz_before = load(Scenario::Healthz).await?;
    eprintln!("http/{backend}: /readyz");
    let readyz = load(Scenario::Readyz).await?;
    let record_bytes = record_bytes(&api.base_url, &key, "strong.test").await?;
    eprintln!("http/{backend}: cached hit");
    let cached = load(Scenario::CachedHit).await?;
    eprintln!("http/{backend}: cached hit, gzip");
    let cached_gzip = load(Scenario::CachedHitGzip).await?;
    let before = cold_calls(&api.base_url, &key).await?;
    eprintln!("http/{backend}: cold admission");
    let cold = load(Scenario::ColdAdmission).await?;
    let cold_counted = cold_calls(&api.base_url, &key).await? - before;
    eprintln!("http/{backend}: cold admission, {MANY_ACCOUNTS} accounts");
    let cold_many = load(Scenario::ColdAdmissionManyAccounts).await?;
    eprintln!("http/{backend}: /healthz again");
    let healthz_after = load(Scenario::Healthz).await?;
    api.stop().await?;
    eprintln!("http/{backend}: admissions one at a time, in process");
    let serial = serial_admissions(&config, &key, &run_id).await?;
    Ok(HttpResult {
        backend,
        healthz: [healthz_before, healthz_after],
        readyz,
        cached,
        cached_gzip,
        record_bytes,
        cold,
        cold_many,
        serial,
        cold_counted,
        rss_idle_kib,
        synchronous_commit: None,
    })
}

/// Store admissions timed one after another.
#[derive(Debug, Clone, Copy)]
pub struct Serial {
    pub admissions: u32,
    pub elapsed: Duration,
}

impl Serial {
    pub fn per_sec(&self) -> f64 {
        f64::from(self.admissions) / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    pub fn each(&self) -> Duration {
        self.elapsed / self.admissions.max(1)
    }
}

/// Admissions this many.
const SERIAL_ADMISSIONS: u32 = 1_000;

/// Times [`SERIAL_ADMISSIONS`] cold admissions of distinct domains through the
/// production store, one at a time, with the server's own configuration: the
/// store's share of one admission, with no HTTP and no concurrency: the
/// wait of a caller alone. Under one account's lock (PostgreSQL), cold
/// admissions of one account cannot go much faster than this; on SQLite,
/// admissions waiting together share a commit and do.
async fn serial_admissions(config: &Path, key: &str, run_id: &str) -> anyhow::Result<Serial> {
    let text = std::fs::read_to_string(config).context("reading the config file")?;
    let config = kepler_core::config::Config::from_toml(&text).context("the config file")?;
    let store = kepler_store::open(&config.database)
        .await
        .context("opening the store")?;
    let started = Instant::now();
    for i in 0..SERIAL_ADMISSIONS {
        let domain = kepler_core::Domain::parse(&format!("{run_id}s{i}.bench.example"))
            .context("a bench domain")?;
        let ask = kepler_store::Ask {
            domain: &domain,
            force_fresh: false,
            now: chrono::Utc::now(),
            tiers: &config.tiers,
        };
        let (_, outcome) = store
            .authenticate_and_admit(key, &ask)
            .await?
            .context("the bench key is live")?;
        let decision = outcome.context("a live key is decided on")?.decision;
        anyhow::ensure!(
            decision == kepler_core::admission::Decision::Admit,
            "expected an admission, got {decision:?}"
        );
    }
    let elapsed = started.elapsed();
    store.close().await;
    Ok(Serial {
        admissions: SERIAL_ADMISSIONS,
        elapsed,
    })
}

/// The cached hit's body on the wire without and with `Accept-Encoding:
/// gzip`, checking that the second is gzip and decodes to the first (wrk
/// checks neither).
async fn record_bytes(base: &str, key: &str, domain: &str) -> anyhow::Result<(usize, usize)> {
    use std::io::Read;

    // No decoding by the client: what is read is what was sent.
    let client = reqwest::Client::builder().no_gzip().build()?;
    let hit = |accept: &'static str| {
        client
            .post(format!("{base}/v1/score"))
            .header("X-API-Key", key)
            .header("Accept-Encoding", accept)
            .json(&json!({ "domain": domain }))
            .send()
    };
    let plain = hit("identity").await?.error_for_status()?.bytes().await?;
    let zipped = hit("gzip").await?.error_for_status()?;
    anyhow::ensure!(
        zipped
            .headers()
            .get("content-encoding")
            .is_some_and(|v| v == "gzip"),
        "a cached hit asking for gzip was not gzipped: {:?}",
        zipped.headers()
    );
    let zipped = zipped.bytes().await?;
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&zipped[..]).read_to_end(&mut decoded)?;
    anyhow::ensure!(decoded == plain, "the gzipped hit is not the plain one");
    Ok((plain.len(), zipped.len()))
}

/// Posts a cold request and polls its job until the record exists.
async fn score_cold(base: &str, key: &str, domain: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let accepted: Value = client
        .post(format!("{base}/v1/score"))
        .header("X-API-Key", key)
        .json(&json!({ "domain": domain }))
        .send()
        .await?
        .json()
        .await?;
    let job_id = accepted["job_id"].as_str().context("no job_id")?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let job: Value = client
            .get(format!("{base}/v1/jobs/{job_id}"))
            .header("X-API-Key", key)
            .send()
            .await?
            .json()
            .await?;
        match job["status"].as_str() {
            Some("complete") => return Ok(()),
            Some("failed") => bail!("seeding {domain} failed: {job}"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    bail!("seeding {domain} did not finish within 120 s")
}

async fn cold_calls(base: &str, key: &str) -> anyhow::Result<u64> {
    let usage: Value = reqwest::Client::new()
        .get(format!("{base}/v1/usage"))
        .header("X-API-Key", key)
        .send()
        .await?
        .json()
        .await?;
    usage["month"]["cold_calls"]
        .as_u64()
        .with_context(|| format!("no month.cold_calls in {usage}"))
}

/// The store a run uses: a file in the temp dir, or a fresh PostgreSQL
/// database dropped afterwards.
struct Database {
    url: String,
    postgres: Option<(String, String)>,
    synchronous_commit: Option<String>,
}

impl Database {
    async fn create(backend: Backend, dir: &Path, postgres: &str) -> anyhow::Result<Database> {
        match backend {
            Backend::Sqlite => Ok(Database {
                url: format!("sqlite://{}", dir.join("kepler.db").display()),
                postgres: None,
                synchronous_commit: None,
            }),
            Backend::Postgres => {
                let name = format!("kepler_bench_{}", std::process::id());
                psql(postgres, &format!("DROP DATABASE IF EXISTS {name}")).await?;
                psql(postgres, &format!("CREATE DATABASE {name}")).await?;
                let synchronous_commit = psql_show(postgres, "synchronous_commit").await.ok();
                Ok(Database {
                    url: format!("{}/{name}", postgres.trim_end_matches('/')),
                    postgres: Some((postgres.to_owned(), name)),
                    synchronous_commit,
                })
            }
        }
    }

    async fn drop(self) {
        if let Some((server, name)) = self.postgres
            && let Err(err) = psql(&server, &format!("DROP DATABASE IF EXISTS {name}")).await
        {
            eprintln!("kepler-bench: could not drop {name}: {err:#}");
        }
    }
}

async fn psql(server: &str, sql: &str) -> anyhow::Result<()> {
    let status = Command::new("psql")
        .arg(format!("{}/postgres", server.trim_end_matches('/')))
        .arg("--quiet")
        .arg("--command")
        .arg(sql)
        .status()
        .await
        .context("running psql")?;
    anyhow::ensure!(status.success(), "psql {sql:?} failed");
    Ok(())
}

/// A server setting as the server reports it (`SHOW name`).
async fn psql_show(server: &str, name: &str) -> anyhow::Result<String> {
    let output = Command::new("psql")
        .arg(format!("{}/postgres", server.trim_end_matches('/')))
        .args(["--no-align", "--tuples-only", "--command"])
        .arg(format!("SHOW {name}"))
        .output()
        .await
        .context("running psql")?;
    anyhow::ensure!(output.status.success(), "psql SHOW {name} failed");
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
