//! The Markdown written to `docs/performance.md`.

use std::fmt::Write as _;
use std::time::Duration;

use crate::HttpArgs;
use crate::engine::EngineResult;
use crate::http::HttpResult;
use crate::server::Backend;
use crate::wrk::Load;

pub fn page(http: &HttpArgs, http_results: &[HttpResult], engine: &[EngineResult]) -> String {
    let mut out = String::from("# Performance\n\n");
    let _ = writeln!(
        out,
        "Written by `scripts/bench` on {date} at commit `{rev}`, {cores} CPU cores.\n\
         These machines are shared and noisy, so every figure is read against a\n\
         baseline measured in the same run: HTTP paths against `/healthz` on the\n\
         same server, engine runs against the test network's injected latency.\n\
         Re-run with `scripts/bench` (it builds release binaries and installs wrk).\n\
         Load average (1, 5, 15 min) when this was written: {load} — anything else\n\
         running on the machine shows here.\n",
        date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        rev = git_rev(),
        cores = std::thread::available_parallelism().map_or(0, |n| n.get()),
        load = load_average(),
    );
    out += &http_section(http, http_results);
    out += &engine_section(engine);
    out
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|| "unknown".into())
}

fn git_rev() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn row(out: &mut String, name: &str, load: &Load, baseline: f64) {
    let _ = writeln!(
        out,
        "| {name} | {:.0} | {:.2} | {} | {} | {} | {} |",
        load.throughput(),
        load.throughput() / baseline,
        ms(load.p50),
        ms(load.p99),
        load.requests,
        load.non2xx + load.socket_errors,
    );
}

pub fn http_section(args: &HttpArgs, results: &[HttpResult]) -> String {
    let mut out = String::from("## HTTP paths\n\n");
    let _ = writeln!(
        out,
        "A release `kepler serve --no-workers` on a fresh store, driven by wrk\n\
         ({threads} thread, {conns} connections, {secs} s per run) on the same machine, so the\n\
         load generator and the server share its cores. The account is on an\n\
         enterprise tier whose limits are raised out of reach: the limits are\n\
         computed on every call, never hit. Runs, in order: `/healthz`, `/readyz`,\n\
         cached hit, cold admission, `/healthz` again; the baseline is the mean of\n\
         the two `/healthz` runs.\n\n\
         - **`/readyz`**: one `SELECT 1` on the store per request, no other work:\n  \
         the ceiling of any request that reads the store (the cached hit needs\n  \
         at least this one statement to see a key revoked a moment ago).\n\
         - **cached hit**: `POST /v1/score` for `strong.test`, whose fresh record\n  \
         a real engine run stored first: authentication, the fresh-record\n  \
         short-circuit, the JSON record.\n\
         - **cold admission**: `POST /v1/score` for a new domain every request:\n  \
         authentication, the admission decision's facts, the cold call, its\n  \
         cost-log row and the job, in one store transaction; answered 202.\n\
         - **cold admission, {many} accounts**: the same, round-robin over the keys of\n  \
         {many} accounts, as a service with many customers sees it: one account's\n  \
         admissions serialise on its limits, different accounts' need not.\n",
        many = crate::http::MANY_ACCOUNTS,
        threads = args.threads,
        conns = args.connections,
        secs = args.duration.as_secs(),
    );
    for r in results {
        let baseline = r.baseline();
        let _ = writeln!(out, "### {}\n", r.backend);
        out += "| path | req/s | × `/healthz` | p50 | p99 | requests | errors |\n|---|---|---|---|---|---|---|\n";
        row(&mut out, "`GET /healthz` (before)", &r.healthz[0], baseline);
        row(
            &mut out,
            "`GET /readyz` (one store round trip)",
            &r.readyz,
            baseline,
        );
        row(&mut out, "`POST /v1/score` cached hit", &r.cached, baseline);
        row(
            &mut out,
            "`POST /v1/score` cold admission",
            &r.cold,
            baseline,
        );
        row(
            &mut out,
            &format!(
                "`POST /v1/score` cold admission, {} accounts",
                crate::http::MANY_ACCOUNTS
            ),
            &r.cold_many,
            baseline,
        );
        row(&mut out, "`GET /healthz` (after)", &r.healthz[1], baseline);
        let _ = writeln!(
            out,
            "\nCold calls counted by the store during the cold run: {} (wrk saw {} answers;\n\
             requests still in flight when wrk stops are admitted but not counted by wrk).\n",
            r.cold_counted, r.cold.requests
        );
        let _ = writeln!(
            out,
            "The store alone, in process, admitting {} cold calls of one account one after\n\
             another (authentication, facts, the writes, the commit; no HTTP): {:.0} admissions/s,\n\
             {} each = **{:.2} × `/healthz`**. {}\n",
            r.serial.admissions,
            r.serial.per_sec(),
            ms(r.serial.each()),
            r.serial.per_sec() / baseline,
            match r.backend {
                Backend::Sqlite => "SQLite has one writer: every cold admission, of any\n\
                     account, passes through it one at a time, so this is about the most cold\n\
                     calls per second the file can take, whatever the HTTP layer does.",
                Backend::Postgres => "One account's admissions serialise on its row lock, held\n\
                     through the commit's WAL flush, so this is about the most one account's\n\
                     cold calls can reach here; different accounts' admissions run in parallel\n\
                     and share flushes.",
            },
        );
        if let Some(setting) = &r.synchronous_commit {
            let _ = writeln!(
                out,
                "The server's `synchronous_commit` is `{setting}`: with `on`, every admission's\n\
                 commit waits for its WAL record to be flushed to disk (concurrent commits\n\
                 share a flush).\n"
            );
        }
        if let Some(kib) = r.rss_idle_kib {
            let _ = writeln!(
                out,
                "Resident set of the idle API process after start: {:.1} MiB.\n",
                kib as f64 / 1024.0
            );
        }
        let cached_ratio = r.cached.throughput() / baseline;
        let cold_ratio = r.cold.throughput() / baseline;
        let many_ratio = r.cold_many.throughput() / baseline;
        let _ = writeln!(
            out,
            "Goals (issue 6): cached hit ≥ 0.70 × `/healthz`: **{:.2}** ({}); cold admission\n\
             ≥ 0.20 × `/healthz` with p99 ≤ 10 ms: one account **{:.2}** ({}), p99 **{}** ({});\n\
             {} accounts **{:.2}** ({}), p99 **{}** ({}).\n",
            cached_ratio,
            verdict(cached_ratio >= 0.7),
            cold_ratio,
            verdict(cold_ratio >= 0.2),
            ms(r.cold.p99),
            verdict(r.cold.p99 <= Duration::from_millis(10)),
            crate::http::MANY_ACCOUNTS,
            many_ratio,
            verdict(many_ratio >= 0.2),
            ms(r.cold_many.p99),
            verdict(r.cold_many.p99 <= Duration::from_millis(10)),
        );
    }
    out
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "not met" }
}

pub fn engine_section(results: &[EngineResult]) -> String {
    let mut out = String::from("## The engine: a cold run of `strong.test`\n\n");
    out += "A release build of the engine in-process against `kepler-testnet`, whose\n\
            `--latency` delays every DNS answer and every connection's first byte.\n\
            Each run uses a new engine (no resolver cache carries over), after one\n\
            warm-up run. *Round trips* is the median wall time divided by the\n\
            latency: the length of the critical path. *Beyond baseline* subtracts\n\
            the first (lowest-latency) run's median first, leaving out CPU time.\n\n";
    out += "| latency | runs | median | min | max | round trips | beyond baseline | grade |\n\
            |---|---|---|---|---|---|---|---|\n";
    let baseline = results.first().map(EngineResult::median);
    for r in results {
        let median = r.median();
        let (trips, beyond) = if r.latency.is_zero() {
            ("—".to_string(), "—".to_string())
        } else {
            let l = r.latency.as_secs_f64();
            let extra = baseline.map_or(median, |b| median.saturating_sub(b));
            (
                format!("{:.1}", median.as_secs_f64() / l),
                format!("{:.1}", extra.as_secs_f64() / l),
            )
        };
        let _ = writeln!(
            out,
            "| {} ms | {} | {} | {} | {} | {trips} | {beyond} | {} |",
            r.latency.as_millis(),
            r.walls.len(),
            ms(median),
            ms(r.walls[0]),
            ms(r.walls[r.walls.len() - 1]),
            r.grade,
        );
    }
    if let Some(worst) = results
        .iter()
        .filter(|r| !r.latency.is_zero())
        .max_by_key(|r| r.latency)
    {
        let trips = worst.median().as_secs_f64() / worst.latency.as_secs_f64();
        let _ = writeln!(
            out,
            "\nGoal (issues 3 and 6): ≤ 8 round trips at {} ms: **{trips:.1}** ({}).\n",
            worst.latency.as_millis(),
            verdict(trips <= 8.0)
        );
    }
    out
}

pub fn queue_section(r: &crate::queue::QueueResult) -> String {
    let mut out = String::from("## The queue on PostgreSQL, next to graphile-worker\n\n");
    let _ = writeln!(
        out,
        "In the shape of graphile-worker's own perf test (`perfTest/` in its\n\
         repository), on the same PostgreSQL server, each queue in a fresh database:\n\
         {jobs} no-op jobs are bulk-inserted with SQL over `generate_series`, then one\n\
         worker process (concurrency {c}, a pool of {c} + 1 connections) drains them.\n\
         *Start-up* is the same process draining a one-job queue; it is subtracted\n\
         from the drain time, as the perf test does. Then {samples} sequential\n\
         enqueue → start samples (after 100 warm-up ones) at concurrency 1.\n\n\
         - **Kepler**: the production worker loop (`kepler_server::worker::run_pool`)\n  \
         on the production PostgreSQL store: every job is claimed, leased and\n  \
         completed (a record stored, the run and its job settled) by the same\n  \
         statements as in service; only the scorer is a no-op. Bulk jobs are\n  \
         inserted as runs + jobs rows; latency samples go through the store's\n  \
         real admission (`Store::admit`), woken by its `LISTEN/NOTIFY`.\n\
         - **graphile-worker** {ver}: `runOnce` over `graphile_worker.add_job` rows,\n  \
         latency via `run` + `add_job` (`bench/graphile/queue.js`).\n\n\
         Command: `kepler-bench queue` (or `scripts/bench`).\n",
        jobs = r.jobs,
        c = r.concurrency,
        samples = r.samples,
        ver = graphile_version(),
    );
    out += "| queue | start-up | drain | jobs/s | p50 | p95 | p99 | max |\n\
            |---|---|---|---|---|---|---|---|\n";
    for (name, side) in [("Kepler", &r.kepler), ("graphile-worker", &r.graphile)] {
        let _ = writeln!(
            out,
            "| {name} | {} | {:.2} s | {:.0} | {} | {} | {} | {} |",
            ms(side.startup),
            side.drain.as_secs_f64(),
            side.jobs_per_sec(r.jobs),
            ms(side.percentile(50.0)),
            ms(side.percentile(95.0)),
            ms(side.percentile(99.0)),
            ms(side.latencies.last().copied().unwrap_or_default()),
        );
    }
    let ratio = r.kepler.jobs_per_sec(r.jobs) / r.graphile.jobs_per_sec(r.jobs);
    let p50 = r.kepler.percentile(50.0);
    let _ = writeln!(
        out,
        "\nGoals (issue 6): drain ≥ graphile-worker's jobs/s: **{ratio:.2} ×** ({}); \
         enqueue → start p50 ≤ 5 ms: **{}** ({}).\n",
        verdict(ratio >= 1.0),
        ms(p50),
        verdict(p50 <= Duration::from_millis(5)),
    );
    out
}

/// The installed graphile-worker's version, from its package.json.
fn graphile_version() -> String {
    std::fs::read_to_string("bench/graphile/node_modules/graphile-worker/package.json")
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v["version"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "(version unknown)".into())
}
