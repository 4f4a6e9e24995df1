//! wrk (Debian's package) as the load generator. Each scenario is a Lua
//! script; its `done` hook prints one machine-readable line that is parsed here.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::Command;

/// The shared `done` hook: totals and latency percentiles in microseconds.
const DONE: &str = r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "KEPLER_BENCH requests=%d duration_us=%d socket_errors=%d non2xx=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
"#;

/// A load scenario.
#[derive(Debug, Clone, Copy)]
pub enum Scenario {
    /// `GET /healthz`: the HTTP stack's own limit, the baseline.
    Healthz,
    /// `GET /readyz`: one trivial store round trip (`SELECT 1`), the floor
    /// of any request that reads the store.
    Readyz,
    /// `POST /v1/score` for a domain with a fresh stored record.
    CachedHit,
    /// The same, asking for gzip as the SDKs do (httpx and reqwest by default).
    CachedHitGzip,
    /// `POST /v1/score` for a new domain every time: a cold admission.
    ColdAdmission,
    /// Cold admissions spread round-robin over many accounts' keys, as a
    /// service with many customers sees them: one account's admissions
    /// serialise on its limits, different accounts' need not.
    ColdAdmissionManyAccounts,
}

/// `POST /v1/score` for the domain whose record the bench stored first.
const CACHED_HIT: &str = r#"
wrk.method = "POST"
wrk.path = "/v1/score"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = os.getenv("KEPLER_BENCH_KEY")
wrk.body = '{"domain":"' .. os.getenv("KEPLER_BENCH_DOMAIN") .. '"}'
"#;

impl Scenario {
    fn script(self) -> String {
        let body = match self {
            Scenario::Healthz => "wrk.method = \"GET\"\nwrk.path = \"/healthz\"\n".to_string(),
            Scenario::Readyz => "wrk.method = \"GET\"\nwrk.path = \"/readyz\"\n".to_string(),
            Scenario::CachedHit => CACHED_HIT.to_string(),
            Scenario::CachedHitGzip => {
                format!("{CACHED_HIT}wrk.headers[\"Accept-Encoding\"] = \"gzip\"\n")
            }
            // Every thread gets its own prefix so that domains never repeat
            // (a repeat would join the in-flight job instead of being admitted).
            Scenario::ColdAdmission => r#"
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("prefix", os.getenv("KEPLER_BENCH_RUN") .. "t" .. threads)
end
local counter = 0
local headers = {
  ["Content-Type"] = "application/json",
  ["X-API-Key"] = os.getenv("KEPLER_BENCH_KEY"),
}
request = function()
  counter = counter + 1
  local body = '{"domain":"' .. prefix .. "n" .. counter .. '.bench.example"}'
  return wrk.format("POST", "/v1/score", headers, body)
end
"#
            .to_string(),
            Scenario::ColdAdmissionManyAccounts => r#"
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("prefix", os.getenv("KEPLER_BENCH_RUN") .. "m" .. threads)
end
local keys = {}
for key in string.gmatch(os.getenv("KEPLER_BENCH_KEYS"), "[^,]+") do
  keys[#keys + 1] = key
end
local counter = 0
request = function()
  counter = counter + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["X-API-Key"] = keys[(counter % #keys) + 1],
  }
  local body = '{"domain":"' .. prefix .. "n" .. counter .. '.bench.example"}'
  return wrk.format("POST", "/v1/score", headers, body)
end
"#
            .to_string(),
        };
        format!("{body}{DONE}")
    }
}

/// What one wrk run measured.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub requests: u64,
    pub duration: Duration,
    pub socket_errors: u64,
    pub non2xx: u64,
    pub p50: Duration,
    pub p99: Duration,
}

impl Load {
    pub fn throughput(&self) -> f64 {
        self.requests as f64 / self.duration.as_secs_f64()
    }
}

/// Options shared by every run.
#[derive(Debug, Clone)]
pub struct Options {
    pub threads: u32,
    pub connections: u32,
    pub duration: Duration,
}

pub async fn run(
    scenario: Scenario,
    base_url: &str,
    options: &Options,
    env: &[(&str, &str)],
    dir: &Path,
) -> anyhow::Result<Load> {
    let script = dir.join(format!("{scenario:?}.lua"));
    std::fs::write(&script, scenario.script()).context("writing the wrk script")?;
    let output = Command::new("wrk")
        .arg("--threads")
        .arg(options.threads.to_string())
        .arg("--connections")
        .arg(options.connections.to_string())
        .arg("--duration")
        .arg(format!("{}s", options.duration.as_secs().max(1)))
        .arg("--timeout")
        .arg("10s")
        .arg("--script")
        .arg(&script)
        .arg(base_url)
        .envs(env.iter().copied())
        .output()
        .await
        .context("running wrk (scripts/bench installs it)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed: {}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse(&stdout).with_context(|| format!("reading wrk's output:\n{stdout}"))
}

fn parse(stdout: &str) -> anyhow::Result<Load> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("KEPLER_BENCH "))
        .context("no KEPLER_BENCH line")?;
    let field = |name: &str| -> anyhow::Result<u64> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .with_context(|| format!("no {name}"))?
            .parse()
            .with_context(|| format!("{name} is not a number"))
    };
    Ok(Load {
        requests: field("requests")?,
        duration: Duration::from_micros(field("duration_us")?),
        socket_errors: field("socket_errors")?,
        non2xx: field("non2xx")?,
        p50: Duration::from_micros(field("p50_us")?),
        p99: Duration::from_micros(field("p99_us")?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_done_line() {
        let out = "Running 1s test\nKEPLER_BENCH requests=1500 duration_us=1000000 socket_errors=0 non2xx=3 p50_us=250 p99_us=1200\n";
        let load = parse(out).expect("parses");
        assert_eq!(load.requests, 1500);
        assert_eq!(load.non2xx, 3);
        assert_eq!(load.p99, Duration::from_micros(1200));
        assert!((load.throughput() - 1500.0).abs() < 1e-9);
    }
}
