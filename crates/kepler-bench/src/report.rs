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
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(", ")
        })
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
         cached hit, cached hit asking for gzip, cold admission, cold admission over\n\
         many accounts, `/healthz` again;\n\
         the baseline is the mean of\n\
         the two `/healthz` runs.\n\n\
         - **`/readyz`**: one `SELECT 1` on the store per request, no other work:\n  \
         what a request costs that reads the store once.\n\
         - **cached hit**: `POST /v1/score` for `strong.test`, whose fresh record\n  \
         a real engine run stored first: authentication, the fresh-record\n  \
         short-circuit, the JSON record. The facts of a hit (key, windows, newest\n  \
         record) are replayed from memory while nothing they came from changed:\n  \
         on SQLite the file's wal-index header, rewritten by every commit, says\n  \
         so (one `pread` of 96 bytes); on PostgreSQL one light statement (the key\n  \
         row, the account's cold-call counter, the newest record id).\n\
         - **cached hit, gzip**: the same request with `Accept-Encoding: gzip`, as\n  \
         the SDKs send it (Python's httpx and Rust's reqwest ask by default): the\n  \
         record is gzipped once per process and that form is sent.\n\
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
            "`POST /v1/score` cached hit, gzip",
            &r.cached_gzip,
            baseline,
        );
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
                Backend::Sqlite =>
                    "This is what one caller alone waits for each admission.\n\
                     SQLite has one writer, but the admissions waiting for it together are\n\
                     written in one transaction with one commit, so concurrent callers (the\n\
                     HTTP runs above) get more admissions per second than this.",
                Backend::Postgres =>
                    "One account's admissions serialise on its row lock, held\n\
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
        let _ = writeln!(
            out,
            "The cached hit's body: {} bytes of JSON, {} bytes gzipped (checked to decode to\n\
             the same bytes before the runs).\n",
            r.record_bytes.0, r.record_bytes.1
        );
        let cached_ratio = r.cached.throughput() / baseline;
        let gzip_ratio = r.cached_gzip.throughput() / baseline;
        let cold_ratio = r.cold.throughput() / baseline;
        let many_ratio = r.cold_many.throughput() / baseline;
        let _ = writeln!(
            out,
            "Goals (issue 6): cached hit ≥ 0.70 × `/healthz`: **{:.2}** ({}), asking for gzip\n\
             as the SDKs do **{:.2}** ({}); cold admission\n\
             ≥ 0.20 × `/healthz` with p99 ≤ 10 ms: one account **{:.2}** ({}), p99 **{}** ({});\n\
             {} accounts **{:.2}** ({}), p99 **{}** ({}).\n",
            cached_ratio,
            verdict(cached_ratio >= 0.7),
            gzip_ratio,
            verdict(gzip_ratio >= 0.7),
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
         enqueue → start samples (after 100 warm-up ones) at concurrency 1.\n\
         Both queues are measured {rounds} times, in alternating order (Kepler\n\
         first, then graphile-worker first, …), so that the machine getting busier\n\
         or quieter during the run falls on both alike; *jobs/s* is every round's\n\
         jobs over every round's drain time, the latencies are every round's samples.\n\n\
         - **Kepler**: the production worker loop (`kepler_server::worker::run_pool`)\n  \
         on the production PostgreSQL store: every job is claimed, leased and\n  \
         completed (a record stored, the run and its job settled) by the same\n  \
         statements as in service; only the scorer is a no-op. Bulk jobs are\n  \
         inserted as runs + jobs rows; latency samples go through the store's\n  \
         real admission (`Store::admit`), woken by its `LISTEN/NOTIFY`.\n\
         - **graphile-worker** {ver}: `runOnce` over jobs bulk-added with `graphile_worker.add_jobs`,\n  \
         latency via `run` + `add_job` (`bench/graphile/queue.js`).\n\n\
         Command: `kepler-bench queue` (or `scripts/bench`).\n",
        jobs = r.jobs,
        c = r.concurrency,
        samples = r.samples,
        rounds = r.rounds,
        ver = graphile_version(),
    );
    out += "| round | measured first | Kepler jobs/s | graphile-worker jobs/s | ratio |\n\
            |---|---|---|---|---|\n";
    for (round, (kepler, graphile)) in r.kepler.drains.iter().zip(&r.graphile.drains).enumerate() {
        let first = if round % 2 == 0 {
            "Kepler"
        } else {
            "graphile-worker"
        };
        let (k, g) = (kepler.jobs_per_sec(r.jobs), graphile.jobs_per_sec(r.jobs));
        let _ = writeln!(
            out,
            "| {} | {first} | {k:.0} | {g:.0} | {:.2} |",
            round + 1,
            k / g
        );
    }
    out += "\n| queue | start-up (each round) | drain (each round) | jobs/s | p50 | p95 | p99 | max |\n\
            |---|---|---|---|---|---|---|---|\n";
    for (name, side) in [("Kepler", &r.kepler), ("graphile-worker", &r.graphile)] {
        let each = |f: fn(&crate::queue::Drain) -> String| {
            side.drains.iter().map(f).collect::<Vec<_>>().join(" / ")
        };
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {:.0} | {} | {} | {} | {} |",
            each(|d| ms(d.startup)),
            each(|d| format!("{:.2} s", d.drain.as_secs_f64())),
            side.jobs_per_sec(r.jobs),
            ms(side.percentile(50.0)),
            ms(side.percentile(95.0)),
            ms(side.percentile(99.0)),
            ms(side.latencies.last().copied().unwrap_or_default()),
        );
    }
    let ratio = r.kepler.jobs_per_sec(r.jobs) / r.graphile.jobs_per_sec(r.jobs);
    let p50 = r.kepler.percentile(50.0);
    // Near 1 two decimals can read "1.00" for a ratio just under it: show a third.
    let shown = if (ratio - 1.0).abs() < 0.005 {
        format!("{ratio:.3}")
    } else {
        format!("{ratio:.2}")
    };
    let _ = writeln!(
        out,
        "\nGoals (issue 6): drain ≥ graphile-worker's jobs/s: **{shown} ×** ({}); \
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

pub fn peers_section(args: &crate::PeersArgs, outcome: &crate::peers::PeersOutcome) -> String {
    use crate::peers::{PeersOutcome, Tool};
    let mut out = String::from("## Kepler next to the tools users run today\n\n");
    let (rounds, overhead, observatory, testssl) = match outcome {
        PeersOutcome::Skipped(reason) => {
            let _ = writeln!(out, "Not measured in this run: {reason}.\n");
            return out;
        }
        PeersOutcome::Measured {
            rounds,
            namespace_overhead,
            observatory_version,
            testssl_version,
        } => (
            rounds,
            *namespace_overhead,
            observatory_version,
            testssl_version,
        ),
    };
    let _ = writeln!(
        out,
        "The same host, `strong.test` on the test network with standard ports\n\
         (DNS on 127.0.10.53:53, the host on 127.0.10.10:80/443; root only), looked\n\
         at by three commands, each a process timed from start to exit (measured\n\
         runs per latency: {runs}, after one warm-up each; the tools interleaved run by\n\
         run so that the machine's noise falls on each alike):\n\n\
         - **Kepler**: `kepler --config kepler.toml scan strong.test --json`, the\n  \
         command a user runs for one domain: a full cold run of the release engine\n  \
         (no resolver cache), its `[engine]` table pointing at the test network.\n\
         - **MDN HTTP Observatory scanner** {observatory} (npm, pinned by\n  \
         `bench/observatory/package-lock.json`): `node …/src/scan.js strong.test` with\n  \
         `NODE_EXTRA_CA_CERTS` set to the test network's CA. It resolves names through\n  \
         the system resolver, so it runs in a private mount namespace\n  \
         (`unshare --mount`) with the test network's hosts lines bind-mounted over\n  \
         `/etc/hosts`: the real file is never written. That wrapper alone costs\n  \
         {overhead} per run (measured here), included in its times.\n\
         - **testssl.sh** {testssl} (Debian): `testssl --quiet --color 0 --warnings off\n  \
         -n none --connect-timeout 3 --ip 127.0.10.10 --add-ca testnet-ca.pem -p -S -h\n  \
         --jsonfile out.json strong.test:443`.\n\n\
         The test network's latency delays every DNS answer and every connection's\n\
         first byte. Kepler resolves every name through the test network's DNS and\n\
         pays that latency on each query; the Observatory reads the hosts file and\n\
         testssl is given the address (`--ip`, `-n none`), so neither pays it for\n\
         names. *× Kepler* is the tool's median over Kepler's.\n\n\
         Command: `kepler-bench peers` (or `scripts/bench`, which installs both tools).\n",
        runs = args.peer_runs,
        overhead = ms(overhead),
    );
    out += "| latency | tool | what its run covers | median | min | max | × Kepler | last run found |\n\
            |---|---|---|---|---|---|---|---|\n";
    let mut met = true;
    let mut verdicts = Vec::new();
    for round in rounds {
        let kepler = round
            .tools
            .iter()
            .find(|t| t.tool == Tool::Kepler)
            .map(|t| t.median());
        for t in &round.tools {
            let ratio = match kepler {
                Some(k) if t.tool != Tool::Kepler && !k.is_zero() => {
                    let ratio = t.median().as_secs_f64() / k.as_secs_f64();
                    met &= ratio > 1.0;
                    verdicts.push(format!(
                        "{} at {} ms: **{ratio:.1} ×** ({})",
                        t.tool.name(),
                        round.latency.as_millis(),
                        verdict(ratio > 1.0)
                    ));
                    format!("{ratio:.1}")
                }
                _ => "1.0".into(),
            };
            let _ = writeln!(
                out,
                "| {} ms | {} | {} | {} | {} | {} | {ratio} | {} |",
                round.latency.as_millis(),
                t.tool.name(),
                t.tool.covers(),
                ms(t.median()),
                ms(t.walls[0]),
                ms(t.walls[t.walls.len() - 1]),
                t.finding,
            );
        }
    }
    let _ = writeln!(
        out,
        "\nGoal (issue 6): Kepler's full run faster than each peer tool's partial one\n\
         (each peer's median over Kepler's > 1): **{}**. {}.\n",
        verdict(met),
        verdicts.join("; ")
    );
    out
}

pub fn memory_section(
    rounds: &crate::memory::MemoryRounds,
    http_results: &[crate::http::HttpResult],
) -> String {
    use crate::memory::mib;
    let mut out = String::from("## Memory: `kepler serve` idle and with many runs in flight\n\n");
    let Some(r) = rounds.median() else {
        out += "No round was measured.\n\n";
        return out;
    };
    let _ = writeln!(
        out,
        "A release `kepler serve` with its workers on SQLite, `[workers] concurrency =\n\
         {c}`, against the test network at {lat} ms latency (so runs overlap).\n\
         {runs} distinct domains (`d0.load.test` … `d{last}.load.test`, the test\n\
         network's load-test names, each answering like `strong.test`) are submitted\n\
         with `POST /v1/score`, 32 at a time; each is a real cold engine run. The\n\
         server's `/proc/PID/status` is read every 100 ms (VmRSS now, VmHWM its\n\
         high-water mark) and its `kepler_engine_runs_in_flight` gauge every 500 ms.\n\
         *Idle* is read 2 s after start, before any request. The whole measurement\n\
         runs {n} times, each on a fresh store and server, because one run's peak\n\
         moves by tens of MiB with how the runs happen to overlap; the round with\n\
         the median peak is shown and judged.\n\n\
         Command: `kepler-bench memory` (or `scripts/bench`).\n",
        c = r.concurrency,
        lat = r.latency.as_millis(),
        runs = r.runs,
        last = r.runs.saturating_sub(1),
        n = rounds.rounds.len(),
    );
    let peaks: Vec<String> = rounds
        .rounds
        .iter()
        .map(|round| format!("{:.1} MiB", mib(round.peak_kib())))
        .collect();
    let _ = writeln!(
        out,
        "Peak of each round, in order: {}.\n",
        peaks.join(" / ")
    );
    out += "| when | VmRSS | VmHWM | threads | open fds | runs in flight |\n|---|---|---|---|---|---|\n";
    let row = |out: &mut String, when: &str, s: &crate::memory::ProcStatus, flight: &str| {
        let _ = writeln!(
            out,
            "| {when} | {:.1} MiB | {:.1} MiB | {} | {} | {flight} |",
            mib(s.rss_kib),
            mib(s.hwm_kib),
            s.threads,
            s.fds
        );
    };
    row(&mut out, "idle, after start", &r.idle, "0");
    row(
        &mut out,
        "when the most runs were in flight",
        &r.at_max_in_flight,
        &r.max_in_flight.to_string(),
    );
    row(
        &mut out,
        "peak (largest VmRSS sampled)",
        &r.peak,
        &r.in_flight_at_peak.to_string(),
    );
    row(&mut out, "after every run finished", &r.after, "0");
    let outcomes: Vec<String> = r.outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let grades: Vec<String> = r.grades.iter().map(|(k, v)| format!("{k} × {v}")).collect();
    let _ = writeln!(
        out,
        "\nMost runs in flight at once: {}. Submitting took {:.1} s; the last run\n\
         finished {:.1} s after the first submission. Runs by outcome: {}. Grades\n\
         of the records (read back afterwards): {}. {} samples.\n",
        r.max_in_flight,
        r.submit.as_secs_f64(),
        r.drain.as_secs_f64(),
        outcomes.join(", "),
        grades.join(", "),
        r.samples,
    );
    if r.retried_503 > 0 {
        let _ = writeln!(
            out,
            "{} submissions were answered `503` and retried after `Retry-After` (with\n\
             their `Idempotency-Key`, as the SDKs do): API and workers share the process\n\
             and its cores, and while hundreds of runs start at once an admission can\n\
             outlast `server.store_timeout` (2 s).\n",
            r.retried_503
        );
    }
    if r.retried_409 > 0 {
        let _ = writeln!(
            out,
            "{} tries were answered `409 idempotency_key_in_use` and retried after\n\
             `Retry-After`, as the SDKs do: an earlier try under the same key was still\n\
             being answered when its client gave up on it.\n",
            r.retried_409
        );
    }
    if !r.outliers.is_empty() {
        let _ = writeln!(
            out,
            "Every load-test name answers alike, so every record should have the same\n\
             grade; these did not ({} in all, the first 10):\n",
            r.outliers.len()
        );
        for line in r.outliers.iter().take(10) {
            let _ = writeln!(out, "- {line}");
        }
        out += "\n";
    }
    if let Some(api) = http_results.iter().find_map(|h| h.rss_idle_kib) {
        let _ = writeln!(
            out,
            "For comparison, the API-only process (`--no-workers`) of the HTTP section\n\
             idled at {:.1} MiB.\n",
            mib(api)
        );
    }
    let peak = r.peak_kib();
    // The goal is stated for 1,000 runs in flight: fewer can miss it, not meet it.
    let judged = r.runs >= 1_000 && r.max_in_flight >= 1_000;
    let peak_verdict = if judged || peak > 256 * 1024 {
        verdict(peak <= 256 * 1024).to_owned()
    } else {
        format!(
            "not judged: at most {} runs were in flight, the goal is for 1,000",
            r.max_in_flight
        )
    };
    let _ = writeln!(
        out,
        "Goals (issue 6): RSS ≤ 64 MiB idle: **{:.1} MiB** ({}); ≤ 256 MiB with 1,000 runs\n\
         in flight: **{:.1} MiB** (VmHWM, the median round; {peak_verdict}).\n",
        mib(r.idle.rss_kib),
        verdict(r.idle.rss_kib <= 64 * 1024),
        mib(peak),
    );
    out
}
