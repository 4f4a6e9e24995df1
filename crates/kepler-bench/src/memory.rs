//! The resident set of a release `kepler serve` with its workers: idle after
//! start, then with a thousand cold runs in flight at once. The runs are real
//! engine runs against the test network's load-test names
//! (`d{i}.load.test`, each answering like strong.test), slowed by the
//! network's latency so that they overlap; the process's `/proc/PID/status`
//! is sampled while they run.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use kepler_testnet::{Testnet, TestnetOptions};
use serde_json::json;

use crate::MemoryArgs;
use crate::server::{self, Server};

/// One reading of `/proc/PID/status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcStatus {
    /// Resident set now, KiB.
    pub rss_kib: u64,
    /// The resident set's high-water mark since start, KiB.
    pub hwm_kib: u64,
    pub threads: u64,
    /// Open file descriptors.
    pub fds: u64,
}

impl ProcStatus {
    pub fn read(pid: u32) -> Option<ProcStatus> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        };
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
        Some(ProcStatus {
            rss_kib: field("VmRSS:")?,
            hwm_kib: field("VmHWM:")?,
            threads: field("Threads:").unwrap_or(0),
            fds,
        })
    }
}

/// What the section measured.
#[derive(Debug, Clone)]
pub struct MemoryResult {
    pub runs: usize,
    pub concurrency: usize,
    pub latency: Duration,
    /// After start, workers idle.
    pub idle: ProcStatus,
    /// The largest resident set sampled while runs were in flight.
    pub peak: ProcStatus,
    /// Runs in flight (the server's own gauge) when the peak was sampled.
    pub in_flight_at_peak: u64,
    /// The most runs in flight at once, and the process when that was read.
    pub max_in_flight: u64,
    pub at_max_in_flight: ProcStatus,
    /// After every run had finished.
    pub after: ProcStatus,
    /// How long submitting every domain took, and until the last run finished.
    pub submit: Duration,
    /// Submissions answered `503` (the server overloaded by its own runs) and
    /// retried after `Retry-After`, as the SDKs do.
    pub retried_503: usize,
    /// Submissions answered `409 idempotency_key_in_use` (a try that timed out
    /// is still being answered) and retried the same way.
    pub retried_409: usize,
    pub drain: Duration,
    /// Finished runs by outcome (`complete`, …), from the server's metrics.
    pub outcomes: BTreeMap<String, u64>,
    /// Grades of every finished record, with their count.
    pub grades: BTreeMap<String, u64>,
    /// Records whose grade is not the most common one: domain, grade, categories.
    pub outliers: Vec<String>,
    pub samples: usize,
}

impl MemoryResult {
    /// The figure the goal is about: the largest resident set seen.
    pub fn peak_kib(&self) -> u64 {
        self.peak.rss_kib.max(self.peak.hwm_kib)
    }
}

/// Every round of the measurement, in order.
#[derive(Debug, Clone)]
pub struct MemoryRounds {
    pub rounds: Vec<MemoryResult>,
}

impl MemoryRounds {
    /// The round whose peak is the median (the lower of the two middle ones
    /// for an even count).
    pub fn median(&self) -> Option<&MemoryResult> {
        let mut by_peak: Vec<&MemoryResult> = self.rounds.iter().collect();
        by_peak.sort_by_key(|r| r.peak_kib());
        by_peak.get(by_peak.len().saturating_sub(1) / 2).copied()
    }
}

pub async fn run(args: &MemoryArgs, kepler: &Path) -> anyhow::Result<MemoryRounds> {
    anyhow::ensure!(
        kepler.is_file(),
        "{} not found: build it first (cargo build --release -p kepler)",
        kepler.display()
    );
    anyhow::ensure!(args.memory_runs > 0, "--memory-runs must be at least 1");
    let dir = tempfile::tempdir().context("temp dir")?;
    let net = Testnet::start(TestnetOptions {
        latency: args.memory_latency,
        ..TestnetOptions::in_dir(dir.path())
    })
    .await
    .context("starting the test network")?;
    let rounds = measure_rounds(args, kepler, dir.path(), &net).await;
    net.shutdown().await;
    rounds
}

/// Every round on the one test network, each on a fresh store: the domains
/// must be cold again.
async fn measure_rounds(
    args: &MemoryArgs,
    kepler: &Path,
    dir: &Path,
    net: &Testnet,
) -> anyhow::Result<MemoryRounds> {
    let mut rounds = Vec::new();
    for round in 1..=args.memory_rounds {
        let round_dir = dir.join(format!("round{round}"));
        std::fs::create_dir_all(&round_dir).context("creating a round's directory")?;
        let result = measure(args, kepler, &round_dir, net).await?;
        eprintln!(
            "memory: round {round}: peak {:.1} MiB",
            mib(result.peak_kib())
        );
        rounds.push(result);
    }
    Ok(MemoryRounds { rounds })
}

async fn measure(
    args: &MemoryArgs,
    kepler: &Path,
    dir: &Path,
    net: &Testnet,
) -> anyhow::Result<MemoryResult> {
    let concurrency = args.memory_runs;
    let database = format!("sqlite://{}", dir.join("kepler.db").display());
    let config = server::write_config(dir, &database, &net.engine_config_toml())?;
    // Enough workers for every run at once; a lease and timeout that a busy
    // two-core machine cannot outlast by accident.
    let mut text = std::fs::read_to_string(&config).context("reading the config")?;
    text += &format!(
        "\n[workers]\nconcurrency = {concurrency}\njob_timeout = \"600s\"\nlease = \"120s\"\n"
    );
    std::fs::write(&config, text).context("writing the config")?;
    server::admin(kepler, &config, &["migrate"]).await.ok();
    let key = server::enterprise_key(kepler, &config, "memory").await?;

    let serve = Server::start(kepler, &config, true, dir.join("serve.log")).await?;
    let result = drive(args, &serve, &key, concurrency).await;
    serve.stop().await?;
    result
}

async fn drive(
    args: &MemoryArgs,
    serve: &Server,
    key: &str,
    concurrency: usize,
) -> anyhow::Result<MemoryResult> {
    let pid = serve.pid().context("kepler serve has no pid")?;
    let client = reqwest::Client::new();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = ProcStatus::read(pid).context("reading /proc for kepler serve")?;
    eprintln!(
        "memory: idle {:.1} MiB; submitting {} runs at latency {} ms",
        mib(idle.rss_kib),
        args.memory_runs,
        args.memory_latency.as_millis()
    );

    // Sample /proc and the in-flight gauge while the runs are submitted and run.
    let sampling = tokio_util::sync::CancellationToken::new();
    let sampler = {
        let sampling = sampling.clone();
        let client = client.clone();
        let metrics_url = format!("{}/metrics", serve.base_url);
        tokio::spawn(async move {
            let mut peak = ProcStatus::default();
            let mut in_flight_at_peak = 0;
            let mut max_in_flight = 0;
            let mut at_max_in_flight = ProcStatus::default();
            let mut in_flight = 0;
            let mut samples = 0;
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            let mut n = 0u64;
            while !sampling.is_cancelled() {
                tick.tick().await;
                // The gauge every 5th tick: /metrics costs the server a little.
                if n.is_multiple_of(5)
                    && let Ok(text) = fetch_metrics(&client, &metrics_url).await
                {
                    in_flight = gauge(&text, "kepler_engine_runs_in_flight").unwrap_or(0);
                    if in_flight > max_in_flight
                        && let Some(status) = ProcStatus::read(pid)
                    {
                        max_in_flight = in_flight;
                        at_max_in_flight = status;
                    }
                }
                n += 1;
                if let Some(status) = ProcStatus::read(pid) {
                    samples += 1;
                    if status.rss_kib > peak.rss_kib {
                        peak = status;
                        in_flight_at_peak = in_flight;
                    }
                }
            }
            (
                peak,
                in_flight_at_peak,
                max_in_flight,
                at_max_in_flight,
                samples,
            )
        })
    };

    let started = Instant::now();
    let retried = Retried::default();
    let submitted = futures::stream::iter(0..args.memory_runs)
        .map(|i| submit(&client, &serve.base_url, key, i, &retried))
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let submit_time = started.elapsed();
    let failures: Vec<String> = submitted
        .into_iter()
        .filter_map(|r| r.err().map(|e| format!("{e:#}")))
        .collect();
    if let Some(first) = failures.first() {
        sampling.cancel();
        bail!("{} submissions failed, the first: {first}", failures.len());
    }

    // Wait for every run to finish (the server's own counters).
    let metrics_url = format!("{}/metrics", serve.base_url);
    let deadline = Instant::now() + Duration::from_secs(900);
    let outcomes = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let text = fetch_metrics(&client, &metrics_url).await?;
        let outcomes = run_outcomes(&text);
        let done: u64 = outcomes.values().sum();
        if done >= args.memory_runs as u64 {
            break outcomes;
        }
        if Instant::now() > deadline {
            sampling.cancel();
            bail!(
                "only {done} of {} runs finished within 900 s",
                args.memory_runs
            );
        }
    };
    let drain = started.elapsed();
    sampling.cancel();
    let (peak, in_flight_at_peak, max_in_flight, at_max_in_flight, samples) =
        sampler.await.context("the sampler panicked")?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = ProcStatus::read(pid).unwrap_or_default();
    let (grades, outliers) = grades(&client, &serve.base_url, key, args.memory_runs).await;
    Ok(MemoryResult {
        runs: args.memory_runs,
        concurrency,
        latency: args.memory_latency,
        idle,
        peak,
        in_flight_at_peak,
        max_in_flight,
        at_max_in_flight,
        after,
        submit: submit_time,
        retried_503: retried.unavailable.load(Ordering::Relaxed),
        retried_409: retried.in_use.load(Ordering::Relaxed),
        drain,
        outcomes,
        grades,
        outliers,
        samples,
    })
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Tries per submission: a 503, or a 409 for a key whose earlier try is still
/// being answered, is retried after its Retry-After, as the SDKs do.
const SUBMIT_TRIES: usize = 10;

/// Answers retried by [`submit`], by kind.
#[derive(Debug, Default)]
struct Retried {
    unavailable: AtomicUsize,
    in_use: AtomicUsize,
}

/// `POST /v1/score` for the `i`-th load-test name; a 202 (a new cold run) is
/// the only answer expected, after any retries (counted in `retried`).
async fn submit(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    i: usize,
    retried: &Retried,
) -> anyhow::Result<()> {
    let domain = kepler_testnet::fixtures::load_name(i);
    // One Idempotency-Key for every try, so a retry is never a second charge.
    let idempotency_key = uuid::Uuid::new_v4().to_string();
    for _ in 0..SUBMIT_TRIES {
        let response = client
            .post(format!("{base}/v1/score"))
            .header("X-API-Key", key)
            .header("Idempotency-Key", &idempotency_key)
            .json(&json!({ "domain": domain }))
            .send()
            .await
            .with_context(|| format!("POST /v1/score {domain}"))?;
        let status = response.status();
        if status == reqwest::StatusCode::ACCEPTED {
            return Ok(());
        }
        let pause = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(1);
        let body = response.text().await.unwrap_or_default();
        let code = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|problem| Some(problem["error"].as_str()?.to_owned()));
        let counter = match (status, code.as_deref()) {
            (reqwest::StatusCode::SERVICE_UNAVAILABLE, _) => &retried.unavailable,
            (reqwest::StatusCode::CONFLICT, Some("idempotency_key_in_use")) => &retried.in_use,
            _ => bail!("POST /v1/score {domain}: {status}: {body}"),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(pause)).await;
    }
    bail!("POST /v1/score {domain}: still refused after {SUBMIT_TRIES} tries")
}

async fn fetch_metrics(client: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    Ok(client
        .get(url)
        .send()
        .await
        .context("GET /metrics")?
        .error_for_status()?
        .text()
        .await?)
}

/// The value of an unlabelled gauge in Prometheus text.
fn gauge(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

/// `kepler_engine_runs_total{outcome="…"} N` lines, by outcome.
fn run_outcomes(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("kepler_engine_runs_total{outcome=\"")?;
            let (outcome, value) = rest.split_once("\"} ")?;
            Some((outcome.to_owned(), value.trim().parse::<f64>().ok()? as u64))
        })
        .collect()
}

/// Every finished record's grade, counted, read back as cached hits; and,
/// for the records whose grade is not the most common one, the domain with
/// its category scores (every load-test name answers alike, so a difference
/// is the load's doing).
async fn grades(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    runs: usize,
) -> (BTreeMap<String, u64>, Vec<String>) {
    let records: Vec<(String, Option<serde_json::Value>)> = futures::stream::iter(0..runs)
        .map(|i| async move {
            let domain = kepler_testnet::fixtures::load_name(i);
            let answer = client
                .post(format!("{base}/v1/score"))
                .header("X-API-Key", key)
                .json(&json!({ "domain": domain }))
                .send()
                .await;
            let record = match answer {
                Ok(r) if r.status() == reqwest::StatusCode::OK => r.json().await.ok(),
                _ => None,
            };
            (domain, record)
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let grade = |record: &Option<serde_json::Value>| {
        record
            .as_ref()
            .and_then(|v| v["grade"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "(no fresh record)".into())
    };
    let mut grades: BTreeMap<String, u64> = BTreeMap::new();
    for (_, record) in &records {
        *grades.entry(grade(record)).or_default() += 1;
    }
    let common = grades
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(g, _)| g.clone())
        .unwrap_or_default();
    let mut outliers: Vec<String> = records
        .iter()
        .filter(|(_, record)| grade(record) != common)
        .map(|(domain, record)| {
            let categories: Vec<String> = record
                .as_ref()
                .and_then(|v| v["categories"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .map(|c| format!("{} {}", c["id"].as_str().unwrap_or("?"), c["score"]))
                .collect();
            format!("{domain}: {} ({})", grade(record), categories.join(", "))
        })
        .collect();
    outliers.sort();
    (grades, outliers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_text_is_read_for_the_gauge_and_the_outcomes() {
        let text = "# HELP kepler_engine_runs_in_flight Engine runs\n\
                    kepler_engine_runs_in_flight 997\n\
                    kepler_engine_runs_total{outcome=\"complete\"} 12\n\
                    kepler_engine_runs_total{outcome=\"settle_failed\"} 1\n";
        assert_eq!(gauge(text, "kepler_engine_runs_in_flight"), Some(997));
        assert_eq!(gauge(text, "kepler_engine_runs"), None);
        let outcomes = run_outcomes(text);
        assert_eq!(outcomes.get("complete"), Some(&12));
        assert_eq!(outcomes.get("settle_failed"), Some(&1));
    }
}
