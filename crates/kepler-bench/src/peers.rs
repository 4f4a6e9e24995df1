//! Kepler's full cold run next to the tools users run today for part of the
//! same questions, on one test-network host: the MDN HTTP Observatory scanner
//! (HTTP headers) and testssl.sh (TLS). Each tool is a process started the
//! way a user starts it, timed from spawn to exit, so start-up counts for
//! every tool alike: Kepler is `kepler scan strong.test`, the command a user
//! runs for one domain.
//!
//! The peers only talk to ports 80 and 443, so the test network runs with
//! standard ports (root only): DNS on 127.0.10.53:53 and each fixture host on
//! its own loopback address. The Observatory resolves names through the
//! system resolver; it runs in a private mount namespace whose `/etc/hosts` is
//! the test network's hosts file bind-mounted over the real one, so the real
//! file is never written and nothing is left behind if the bench dies.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kepler_testnet::{Testnet, TestnetOptions};
use serde_json::Value;
use tokio::process::Command;

use crate::PeersArgs;

/// The host every tool looks at.
const HOST: &str = "strong.test";

/// One tool, what it answers and how it is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Kepler,
    Observatory,
    Testssl,
}

impl Tool {
    pub const ALL: [Tool; 3] = [Tool::Kepler, Tool::Observatory, Tool::Testssl];

    pub fn name(self) -> &'static str {
        match self {
            Tool::Kepler => "Kepler (`kepler scan`)",
            Tool::Observatory => "MDN HTTP Observatory scanner",
            Tool::Testssl => "testssl.sh `-p -S -h`",
        }
    }

    /// What the tool's run answers.
    pub fn covers(self) -> &'static str {
        match self {
            Tool::Kepler => {
                "DNS (DNSSEC, IPv6, NS, SOA, CAA), mail (SPF, DMARC, MTA-STS, TLS-RPT), \
                 TLS (protocols, certificate, suites), HTTP headers (Observatory v6 tests), \
                 policies (security.txt), registration (RDAP), one grade"
            }
            Tool::Observatory => "HTTP headers only (10 tests in the published build), one grade",
            Tool::Testssl => {
                "TLS protocols, certificate (chain, expiry, key), some HTTP headers (HSTS, \
                 server banner, cookies); no grade in this version"
            }
        }
    }
}

/// Every measured run of one tool at one latency.
#[derive(Debug, Clone)]
pub struct ToolTimes {
    pub tool: Tool,
    /// Wall time of each measured run, sorted.
    pub walls: Vec<Duration>,
    /// What the last run found (a grade, the protocols offered…).
    pub finding: String,
}

impl ToolTimes {
    pub fn median(&self) -> Duration {
        self.walls[self.walls.len() / 2]
    }
}

/// Every tool at one latency.
#[derive(Debug, Clone)]
pub struct PeerRound {
    pub latency: Duration,
    pub tools: Vec<ToolTimes>,
}

/// The section's outcome: measured, or skipped with the reason.
#[derive(Debug, Clone)]
pub enum PeersOutcome {
    Measured {
        rounds: Vec<PeerRound>,
        /// What the private mount namespace costs the Observatory per run
        /// (`unshare` + `mount` + `exec true`), median.
        namespace_overhead: Duration,
        observatory_version: String,
        testssl_version: String,
    },
    Skipped(String),
}

/// Whether this process runs as root (effective uid 0), from /proc.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// What stands between this machine and the section, if anything.
fn missing(args: &PeersArgs, kepler: &Path) -> Option<String> {
    if !is_root() {
        return Some(
            "the bench is not root: the peers need the test network on ports 80/443 \
             and DNS on port 53, and a private mount namespace for /etc/hosts"
                .into(),
        );
    }
    if !kepler.is_file() {
        return Some(format!("{} not found", kepler.display()));
    }
    if !observatory_script(&args.observatory_dir).is_file() {
        return Some(format!(
            "the Observatory is not installed in {} (scripts/bench runs `npm ci` there)",
            args.observatory_dir.display()
        ));
    }
    if which("testssl").is_none() {
        return Some("testssl is not installed (scripts/bench installs `testssl.sh`)".into());
    }
    if which("unshare").is_none() {
        return Some("unshare (util-linux) is not installed".into());
    }
    None
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

fn observatory_script(dir: &Path) -> PathBuf {
    dir.join("node_modules/@mdn/mdn-http-observatory/src/scan.js")
}

pub async fn run(args: &PeersArgs, kepler: &Path) -> anyhow::Result<PeersOutcome> {
    anyhow::ensure!(args.peer_runs > 0, "--peer-runs must be at least 1");
    if let Some(reason) = missing(args, kepler) {
        eprintln!("peers: skipped: {reason}");
        return Ok(PeersOutcome::Skipped(reason));
    }
    let namespace_overhead = namespace_overhead().await?;
    let mut rounds = Vec::new();
    for &latency in &args.peer_latencies {
        rounds.push(round(args, kepler, latency).await?);
    }
    Ok(PeersOutcome::Measured {
        rounds,
        namespace_overhead,
        observatory_version: package_version(&args.observatory_dir),
        testssl_version: testssl_version().await,
    })
}

/// All tools at one latency, interleaved run by run so that the machine's
/// noise falls on each alike; one warm-up run each first.
async fn round(args: &PeersArgs, kepler: &Path, latency: Duration) -> anyhow::Result<PeerRound> {
    let dir = tempfile::tempdir().context("temp dir")?;
    let net = Testnet::start(TestnetOptions {
        latency,
        standard_ports: true,
        ..TestnetOptions::in_dir(dir.path())
    })
    .await
    .context("starting the test network on standard ports")?;
    let setup = Setup::write(dir.path(), &net, kepler, &args.observatory_dir)?;
    let mut walls: Vec<Vec<Duration>> = vec![Vec::new(); Tool::ALL.len()];
    let mut findings = vec![String::new(); Tool::ALL.len()];
    let measured = async {
        for i in 0..=args.peer_runs {
            for (t, tool) in Tool::ALL.into_iter().enumerate() {
                let (wall, finding) = setup
                    .time(tool)
                    .await
                    .with_context(|| format!("{} at {} ms", tool.name(), latency.as_millis()))?;
                if i > 0 {
                    walls[t].push(wall);
                }
                findings[t] = finding;
            }
        }
        anyhow::Ok(())
    }
    .await;
    net.shutdown().await;
    measured?;
    let tools: Vec<ToolTimes> = Tool::ALL
        .into_iter()
        .zip(walls)
        .zip(findings)
        .map(|((tool, mut walls), finding)| {
            walls.sort();
            ToolTimes {
                tool,
                walls,
                finding,
            }
        })
        .collect();
    for t in &tools {
        eprintln!(
            "peers: latency {} ms, {}: median {} ms",
            latency.as_millis(),
            t.tool.name(),
            t.median().as_millis()
        );
    }
    Ok(PeerRound { latency, tools })
}

/// Files and paths the three commands use.
struct Setup {
    kepler: PathBuf,
    config: PathBuf,
    ca: PathBuf,
    hosts: PathBuf,
    observatory: PathBuf,
    testssl_json: PathBuf,
    strong_ip: String,
}

impl Setup {
    fn write(
        dir: &Path,
        net: &Testnet,
        kepler: &Path,
        observatory_dir: &Path,
    ) -> anyhow::Result<Setup> {
        let config = dir.join("kepler.toml");
        std::fs::write(&config, net.engine_config_toml()).context("writing the config")?;
        // The real hosts file's lines first (localhost…), then the fixture names.
        let mut hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        if !hosts.is_empty() && !hosts.ends_with('\n') {
            hosts.push('\n');
        }
        hosts += &net.hosts_lines();
        let hosts_path = dir.join("hosts");
        std::fs::write(&hosts_path, hosts).context("writing the hosts file")?;
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        Ok(Setup {
            kepler: absolute(kepler),
            config,
            ca: net.ca_file().to_path_buf(),
            hosts: hosts_path,
            observatory: absolute(&observatory_script(observatory_dir)),
            testssl_json: dir.join("testssl.json"),
            strong_ip: kepler_testnet::fixtures::STRONG.to_string(),
        })
    }

    /// One run of `tool`: its wall time and what it found.
    async fn time(&self, tool: Tool) -> anyhow::Result<(Duration, String)> {
        let mut command = match tool {
            Tool::Kepler => {
                let mut c = Command::new(&self.kepler);
                c.arg("--config")
                    .arg(&self.config)
                    .args(["scan", HOST, "--json"])
                    .env("KEPLER_LOG", "warn");
                c
            }
            Tool::Observatory => {
                // As peers.md says: the script directly (the wrapper would
                // overwrite NODE_EXTRA_CA_CERTS), inside a mount namespace
                // whose /etc/hosts has the fixture names.
                let mut c = Command::new("unshare");
                c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
                    .arg("mount --bind \"$0\" /etc/hosts && exec \"$@\"")
                    .arg(&self.hosts)
                    .arg("node")
                    .arg(&self.observatory)
                    .arg(HOST)
                    .env("NODE_EXTRA_CA_CERTS", &self.ca);
                c
            }
            Tool::Testssl => {
                // An existing --jsonfile is fatal to testssl.
                let _ = std::fs::remove_file(&self.testssl_json);
                let mut c = Command::new("testssl");
                c.args(["--quiet", "--color", "0", "--warnings", "off", "-n", "none"])
                    .args(["--connect-timeout", "3", "--ip", self.strong_ip.as_str()])
                    .arg("--add-ca")
                    .arg(&self.ca)
                    .args(["-p", "-S", "-h", "--jsonfile"])
                    .arg(&self.testssl_json)
                    .arg(format!("{HOST}:443"));
                c
            }
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let started = Instant::now();
        let output = command.output().await.context("starting it")?;
        let wall = started.elapsed();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let finding = match tool {
            Tool::Kepler => {
                anyhow::ensure!(
                    output.status.success(),
                    "{}: {}",
                    output.status,
                    stderr.trim()
                );
                let record: Value =
                    serde_json::from_str(&stdout).context("kepler printed no JSON")?;
                format!(
                    "grade {}, score {}",
                    record["grade"].as_str().unwrap_or("?"),
                    record["score"]
                )
            }
            Tool::Observatory => {
                let result: Value = serde_json::from_str(&stdout)
                    .with_context(|| format!("no JSON ({}): {}", output.status, stderr.trim()))?;
                if let Some(error) = result["error"].as_str() {
                    bail!("{error}");
                }
                let passed = result["tests"]
                    .as_object()
                    .map(|t| (t.values().filter(|v| v["pass"] == true).count(), t.len()))
                    .unwrap_or_default();
                format!(
                    "grade {}, score {}, {} of {} tests passed",
                    result["scan"]["grade"].as_str().unwrap_or("?"),
                    result["scan"]["score"],
                    passed.0,
                    passed.1
                )
            }
            Tool::Testssl => {
                let text = std::fs::read_to_string(&self.testssl_json).with_context(|| {
                    format!("no JSON file ({}): {}", output.status, stderr.trim())
                })?;
                testssl_finding(&text)?
            }
        };
        Ok((wall, finding))
    }
}

/// The protocols testssl found offered and its chain-of-trust verdict.
fn testssl_finding(text: &str) -> anyhow::Result<String> {
    let findings: Value = serde_json::from_str(text).context("testssl's JSON file")?;
    let list = findings
        .as_array()
        .context("testssl's JSON is not a list")?;
    let by_id = |id: &str| {
        list.iter()
            .find(|f| f["id"] == id)
            .and_then(|f| f["finding"].as_str())
            .unwrap_or("?")
            .to_owned()
    };
    let offered: Vec<&str> = ["SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3"]
        .into_iter()
        .filter(|id| {
            list.iter().any(|f| {
                f["id"] == *id
                    && f["finding"]
                        .as_str()
                        .is_some_and(|s| s.starts_with("offered"))
            })
        })
        .collect();
    anyhow::ensure!(
        !offered.is_empty(),
        "testssl found no protocol offered: {text}"
    );
    Ok(format!(
        "offered {}; chain of trust: {}; HSTS: {}",
        offered.join(", "),
        by_id("cert_chain_of_trust"),
        by_id("HSTS_time"),
    ))
}

/// Median cost of the Observatory's wrapper alone: a private mount
/// namespace, the bind mount, then `true`.
async fn namespace_overhead() -> anyhow::Result<Duration> {
    let hosts = tempfile::NamedTempFile::new().context("temp file")?;
    std::fs::copy("/etc/hosts", hosts.path()).ok();
    let mut walls = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let status = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg("mount --bind \"$0\" /etc/hosts && exec \"$@\"")
            .arg(hosts.path())
            .arg("true")
            .status()
            .await
            .context("running unshare")?;
        walls.push(started.elapsed());
        anyhow::ensure!(status.success(), "unshare --mount failed: {status}");
    }
    walls.sort();
    Ok(walls[walls.len() / 2])
}

fn package_version(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("node_modules/@mdn/mdn-http-observatory/package.json"))
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .and_then(|v| v["version"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "(version unknown)".into())
}

async fn testssl_version() -> String {
    let output = Command::new("dpkg-query")
        .args(["--showformat=${Version}", "--show", "testssl.sh"])
        .output()
        .await;
    match output {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        _ => "(version unknown)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn testssl_findings_name_the_offered_protocols() {
        let json = r#"[
            {"id":"SSLv3","finding":"not offered"},
            {"id":"TLS1_2","finding":"offered"},
            {"id":"TLS1_3","finding":"offered with final"},
            {"id":"cert_chain_of_trust","finding":"passed."},
            {"id":"HSTS_time","finding":"730 days=63072000 s"}
        ]"#;
        assert_eq!(
            testssl_finding(json).expect("parses"),
            "offered TLS1_2, TLS1_3; chain of trust: passed.; HSTS: 730 days=63072000 s"
        );
        assert!(testssl_finding("[]").is_err());
    }
}
