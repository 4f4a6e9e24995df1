//! Scale-out on PostgreSQL, proven with real processes: `kepler serve
//! --no-workers` API nodes and `kepler worker` processes on one database, with
//! `kepler-testnet` as the internet, under SIGKILLs and a database outage.
//! Every wait polls for a state with a generous deadline; the only timing
//! assertion is that an outage is answered promptly.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::future::join_all;
use kepler_core::Tier;
use kepler_store::testing::TestDatabase;
use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::private_pg::PrivatePostgres;

/// Keys of `[database]` (the cluster writes its `url`), then tables: long
/// waits for the store, because hundreds of concurrent calls on a small machine
/// may queue (an outage must be answered promptly without relying on these:
/// the store's breaker does that), and leases short enough that a killed
/// worker's run comes back within seconds.
const CONFIG: &str = "max_connections = 8\nacquire_timeout = \"30s\"\n\
                      [server]\nstore_timeout = \"30s\"\n\
                      [workers]\nlease = \"2s\"\npoll_interval = \"200ms\"\n\
                      job_timeout = \"90s\"\nshutdown_grace = \"1s\"\n";
/// Long enough to settle anything on a loaded machine.
const SETTLE_DEADLINE: Duration = Duration::from_secs(120);

/// One answer, read whole.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: Value,
    retry_after: Option<String>,
}

async fn read(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await.unwrap_or_default();
    Reply {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        retry_after,
    }
}

async fn post_score(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    domain: &str,
    idempotency_key: Option<&str>,
) -> reqwest::Result<Reply> {
    let mut request = http
        .post(format!("{base}/v1/score"))
        .header("x-api-key", key)
        .json(&json!({ "domain": domain }));
    if let Some(idempotency_key) = idempotency_key {
        request = request.header("idempotency-key", idempotency_key);
    }
    Ok(read(request.send().await?).await)
}

async fn get(http: &reqwest::Client, base: &str, key: &str, path: &str) -> reqwest::Result<Reply> {
    let response = http
        .get(format!("{base}{path}"))
        .header("x-api-key", key)
        .send()
        .await?;
    Ok(read(response).await)
}

fn job_id(reply: &Reply) -> String {
    assert_eq!(reply.status, 202, "{reply:?}");
    reply.body["job_id"].as_str().expect("a job id").to_owned()
}

/// Polls every job, taking turns over `bases`, until each is complete or
/// failed; returns the final job documents by id.
async fn settle(
    http: &reqwest::Client,
    bases: &[&str],
    key: &str,
    jobs: &BTreeSet<String>,
) -> BTreeMap<String, Value> {
    let deadline = Instant::now() + SETTLE_DEADLINE;
    let mut settled = BTreeMap::new();
    let mut turn = 0;
    while settled.len() < jobs.len() {
        let waiting: Vec<&String> = jobs.iter().filter(|j| !settled.contains_key(*j)).collect();
        for job in waiting {
            turn += 1;
            let base = bases[turn % bases.len()];
            let reply = get(http, base, key, &format!("/v1/jobs/{job}"))
                .await
                .expect("the node answers");
            assert_eq!(reply.status, 200, "job {job} on {base}: {reply:?}");
            if matches!(reply.body["status"].as_str(), Some("complete" | "failed")) {
                settled.insert(job.clone(), reply.body);
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} jobs never settled",
            jobs.len() - settled.len(),
            jobs.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    settled
}

async fn month_cold_calls(http: &reqwest::Client, base: &str, key: &str) -> Value {
    let usage = get(http, base, key, "/v1/usage")
        .await
        .expect("usage answers");
    assert_eq!(usage.status, 200, "{usage:?}");
    usage.body["month"].clone()
}

fn fresh_domain(tag: &str) -> String {
    format!(
        "{tag}-{}.test",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_api_nodes_and_two_workers_admit_exactly_the_cap() {
    const CAP: usize = 25;
    const CALLS: usize = 300;
    let db = TestDatabase::postgres().await.expect("a test schema");
    let config = format!("{CONFIG}[tiers.growth]\nmonthly_cold_cap = {CAP}\n");
    let mut cluster = Cluster::start(db.url(), "2s", &config).await;
    let a = cluster.api().await;
    let b = cluster.api().await;
    cluster.worker().await;
    cluster.worker().await;
    let key = cluster.live_key(Tier::Growth).await;
    let http = cluster.http().clone();

    // Distinct domains, every one a cold call, alternating between the nodes.
    let calls = (0..CALLS).map(|i| {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let (http, key) = (&http, &key);
        async move {
            post_score(http, base, key, &fresh_domain("cap"), None)
                .await
                .expect("the node answers")
        }
    });
    let replies = join_all(calls).await;
    let mut jobs = BTreeSet::new();
    let mut refused = 0;
    for reply in &replies {
        match reply.status {
            202 => {
                jobs.insert(job_id(reply));
            }
            429 => {
                assert_eq!(reply.body["error"], "cold_budget_exhausted", "{reply:?}");
                assert!(reply.retry_after.is_some(), "{reply:?}");
                refused += 1;
            }
            _ => panic!("neither admitted nor refused: {reply:?}"),
        }
    }
    assert_eq!(jobs.len(), CAP, "exactly the cap is admitted");
    assert_eq!(refused, CALLS - CAP);

    for base in [&a.base, &b.base] {
        let month = month_cold_calls(&http, base, &key).await;
        assert_eq!(month["cold_calls"], CAP, "{base}: {month}");
        assert_eq!(month["remaining"], 0, "{base}: {month}");
    }
    // The workers settle every admitted job.
    settle(&http, &[&a.base, &b.base], &key, &jobs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_mid_run_is_replaced_after_its_lease() {
    let db = TestDatabase::postgres().await.expect("a test schema");
    let mut cluster = Cluster::start(db.url(), "2s", CONFIG).await;
    let api = cluster.api().await;
    let first = cluster.worker().await;
    let key = cluster.live_key(Tier::Growth).await;
    let http = cluster.http().clone();

    // slow.test's servers stay silent: each probe waits its full 2 s, so the run lasts seconds.
    let reply = post_score(&http, &api.base, &key, "slow.test", None)
        .await
        .expect("the node answers");
    let job = job_id(&reply);
    let deadline = Instant::now() + SETTLE_DEADLINE;
    loop {
        let reply = get(&http, &api.base, &key, &format!("/v1/jobs/{job}"))
            .await
            .expect("the node answers");
        match reply.body["status"].as_str() {
            Some("running") => break,
            Some("pending") => {}
            _ => panic!("the only worker should still be running it: {reply:?}"),
        }
        assert!(Instant::now() < deadline, "never claimed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The first worker holds the run; a second stands by; the first dies mid-run.
    let second = cluster.worker().await;
    cluster.sigkill(&first).await;

    let settled = settle(&http, &[&api.base], &key, &BTreeSet::from([job.clone()])).await;
    let done = &settled[&job];
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["result_ref"]["domain"], "slow.test", "{done}");
    assert!(cluster.alive(&second));
    let month = month_cold_calls(&http, &api.base, &key).await;
    assert_eq!(
        month["cold_calls"], 1,
        "charged once however often it ran: {month}"
    );
    let record = get(&http, &api.base, &key, "/v1/score/slow.test")
        .await
        .expect("the node answers");
    assert_eq!(record.status, 200, "{record:?}");
}

/// Posts `domains` one after another, each until it is admitted, retrying with
/// the same `Idempotency-Key` on the next node after a transport error (a
/// dead node), after `503 store_unavailable` (an outage) and after `409
/// idempotency_key_in_use` (a reservation left by a request that was cut off);
/// any other answer fails the test. Returns (domain, job id) pairs.
async fn post_until_admitted(
    http: reqwest::Client,
    bases: Vec<String>,
    key: String,
    domains: Vec<String>,
    pause: Duration,
) -> Vec<(String, String)> {
    let mut admitted = Vec::new();
    let mut node = 0;
    for domain in domains {
        let idempotency_key = uuid::Uuid::new_v4().to_string();
        let deadline = Instant::now() + SETTLE_DEADLINE;
        loop {
            assert!(Instant::now() < deadline, "{domain} was never admitted");
            match post_score(&http, &bases[node], &key, &domain, Some(&idempotency_key)).await {
                Ok(reply) if reply.status == 202 => {
                    admitted.push((domain, job_id(&reply)));
                    break;
                }
                // The key is still held by a request that was cut off (its node
                // died or lost the store): retried after Retry-After, as the SDKs do.
                Ok(reply) if reply.status == 409 => {
                    assert_eq!(reply.body["error"], "idempotency_key_in_use", "{reply:?}");
                    let pause = reply.retry_after.as_deref().and_then(|s| s.parse().ok());
                    let pause = pause.expect("409 idempotency_key_in_use has Retry-After");
                    tokio::time::sleep(Duration::from_secs(pause)).await;
                }
                Ok(reply) => {
                    assert_eq!(reply.status, 503, "{domain}: {reply:?}");
                    assert_eq!(reply.body["error"], "store_unavailable", "{reply:?}");
                    assert!(reply.retry_after.is_some(), "{reply:?}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(_) => {
                    node = (node + 1) % bases.len();
                }
            }
        }
        tokio::time::sleep(pause).await;
    }
    admitted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_api_node_killed_leaves_the_other_serving_everything() {
    let db = TestDatabase::postgres().await.expect("a test schema");
    // A key the dead node had reserved is taken over after max(30 s, 4 ×
    // store_timeout): 5 s keeps that at the 30 s floor, within the test's deadlines.
    let config = CONFIG.replace("store_timeout = \"30s\"", "store_timeout = \"5s\"");
    assert_ne!(config, CONFIG);
    let mut cluster = Cluster::start(db.url(), "2s", &config).await;
    let doomed = cluster.api().await;
    let survivor = cluster.api().await;
    let key = cluster.live_key(Tier::Growth).await;
    let http = cluster.http().clone();

    // Jobs admitted through the node that will die. No worker runs yet, so a
    // retry of a request whose answer was lost finds its job still pending
    // and is not charged again (step 5 of the admission).
    let mut admitted: Vec<(String, String)> = Vec::new();
    for domain in ["strong.test", "mixed.test", "weak.test", "expired.test"]
        .into_iter()
        .map(str::to_owned)
        .chain((0..8).map(|_| fresh_domain("early")))
    {
        let reply = post_score(&http, &doomed.base, &key, &domain, None)
            .await
            .expect("the node answers");
        admitted.push((domain, job_id(&reply)));
    }

    // Callers keep posting to the doomed node while it is killed; they move on
    // to the survivor with the same Idempotency-Key.
    let streams: Vec<_> = (0..4)
        .map(|_| {
            let domains = (0..6).map(|_| fresh_domain("inflight")).collect();
            tokio::spawn(post_until_admitted(
                http.clone(),
                vec![doomed.base.clone(), survivor.base.clone()],
                key.clone(),
                domains,
                Duration::from_millis(50),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    cluster.sigkill(&doomed).await;
    for stream in join_all(streams).await {
        admitted.extend(stream.expect("a caller stream"));
    }

    cluster.worker().await;
    cluster.worker().await;
    for _ in 0..4 {
        let domain = fresh_domain("late");
        let reply = post_score(&http, &survivor.base, &key, &domain, None)
            .await
            .expect("the survivor answers");
        admitted.push((domain, job_id(&reply)));
    }

    // One job per domain, every one settled, each charged once.
    let domains: BTreeSet<&String> = admitted.iter().map(|(d, _)| d).collect();
    let jobs: BTreeSet<String> = admitted.iter().map(|(_, j)| j.clone()).collect();
    assert_eq!(domains.len(), admitted.len());
    assert_eq!(jobs.len(), admitted.len(), "one job per domain");
    let settled = settle(&http, &[&survivor.base], &key, &jobs).await;
    for (domain, job) in &admitted {
        assert_eq!(settled[job]["domain"], domain.as_str());
    }
    let month = month_cold_calls(&http, &survivor.base, &key).await;
    assert_eq!(
        month["cold_calls"],
        admitted.len(),
        "no double charge: {month}"
    );
}

/// Asserts the outage answer and that it came promptly.
async fn assert_prompt_unavailable(
    call: impl std::future::Future<Output = reqwest::Result<Reply>>,
) {
    let started = Instant::now();
    let reply = call.await.expect("the node answers");
    let took = started.elapsed();
    eprintln!("outage answered {} in {took:?}", reply.status);
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(reply.body["error"], "store_unavailable", "{reply:?}");
    assert!(reply.retry_after.is_some(), "{reply:?}");
    assert!(took < Duration::from_millis(1500), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_and_started_under_load_loses_nothing() {
    let pg = tokio::task::block_in_place(PrivatePostgres::start);
    let mut cluster = Cluster::start(&pg.url(), "2s", CONFIG).await;
    let a = cluster.api().await;
    let b = cluster.api().await;
    let workers = [cluster.worker().await, cluster.worker().await];
    let key = cluster.live_key(Tier::Growth).await;
    let http = cluster.http().clone();
    let bases = [a.base.as_str(), b.base.as_str()];

    // Work in every state when the database goes: slow runs in flight, others queued.
    let mut admitted: Vec<(String, String)> = Vec::new();
    for (i, domain) in ["slow.test", "strong.test", "mixed.test"]
        .into_iter()
        .map(str::to_owned)
        .chain((0..9).map(|_| fresh_domain("before")))
        .enumerate()
    {
        let reply = post_score(&http, bases[i % 2], &key, &domain, None)
            .await
            .expect("the node answers");
        admitted.push((domain, job_id(&reply)));
    }

    // Callers keep coming through the outage, retrying 503s with their Idempotency-Key.
    let stop_load = Arc::new(AtomicBool::new(false));
    let streams: Vec<_> = (0..4)
        .map(|i| {
            let stop = Arc::clone(&stop_load);
            let (http, key) = (http.clone(), key.clone());
            let bases = vec![bases[i % 2].to_owned(), bases[(i + 1) % 2].to_owned()];
            tokio::spawn(async move {
                let mut admitted = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let domains = vec![fresh_domain("during")];
                    admitted.extend(
                        post_until_admitted(
                            http.clone(),
                            bases.clone(),
                            key.clone(),
                            domains,
                            Duration::from_millis(100),
                        )
                        .await,
                    );
                }
                admitted
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    tokio::task::block_in_place(|| pg.stop());
    // Both nodes notice, then answer promptly while it is down.
    for base in bases {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = http.get(format!("{base}/readyz")).send().await;
            if ready.is_ok_and(|r| r.status().as_u16() == 503) {
                break;
            }
            assert!(Instant::now() < deadline, "{base} still ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for round in 0..3 {
        for base in bases {
            assert_prompt_unavailable(async {
                let response = http.get(format!("{base}/readyz")).send().await?;
                Ok(read(response).await)
            })
            .await;
            assert_prompt_unavailable(post_score(
                &http,
                base,
                &key,
                &fresh_domain("refused"),
                None,
            ))
            .await;
            assert_prompt_unavailable(get(&http, base, &key, "/v1/usage")).await;
        }
        if round < 2 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    for worker in &workers {
        assert!(cluster.alive(worker), "a worker died in the outage");
        assert!(
            cluster.logged(worker, "backing off"),
            "an idle worker backs off while the store is down"
        );
    }

    tokio::task::block_in_place(|| pg.up());
    // Everything resumes without restarting Kepler.
    for base in bases {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = http.get(format!("{base}/readyz")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            assert!(Instant::now() < deadline, "{base} never ready again");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_load.store(true, Ordering::SeqCst);
    for stream in join_all(streams).await {
        admitted.extend(stream.expect("a caller stream"));
    }
    for _ in 0..2 {
        let domain = fresh_domain("after");
        let reply = post_score(&http, bases[0], &key, &domain, None)
            .await
            .expect("the node answers");
        admitted.push((domain, job_id(&reply)));
    }

    let jobs: BTreeSet<String> = admitted.iter().map(|(_, j)| j.clone()).collect();
    assert_eq!(jobs.len(), admitted.len(), "one job per domain");
    let settled = settle(&http, &bases, &key, &jobs).await;
    assert_eq!(
        settled[&admitted[0].1]["status"], "complete",
        "slow.test, in flight when the database went"
    );
    for base in bases {
        let month = month_cold_calls(&http, base, &key).await;
        assert_eq!(
            month["cold_calls"],
            admitted.len(),
            "no double charge: {month}"
        );
    }
    for worker in &workers {
        assert!(cluster.alive(worker), "a worker died");
    }
    drop(cluster);
}
