//! A real `kepler serve` process on a temporary store, configured through its
//! config file exactly as an operator would.

use std::fmt;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// The store a benchmarked server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" => Ok(Backend::Postgres),
            other => Err(format!("unknown backend {other:?}: sqlite or postgres")),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        })
    }
}

/// Writes a config file: the store, a free port, the test network's
/// `[engine]` table, and an enterprise tier without limits that a benchmark
/// could reach (the limits are measured, not hit).
pub fn write_config(dir: &Path, database_url: &str, engine_toml: &str) -> anyhow::Result<PathBuf> {
    let port = free_port()?;
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n\n\
         [database]\nurl = {url}\n\n\
         {engine_toml}\n\
         [tiers.enterprise]\n\
         monthly_cold_cap = 1000000000\n\
         key_hourly_cold_limit = 1000000000\n\
         account_daily_cold_limit = 1000000000\n",
        url = toml_string(database_url),
    );
    let path = dir.join("kepler.toml");
    std::fs::write(&path, text).context("writing the config file")?;
    Ok(path)
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Runs `kepler --config FILE <args…>` to completion and parses its JSON output.
pub async fn admin(
    kepler: &Path,
    config: &Path,
    args: &[&str],
) -> anyhow::Result<serde_json::Value> {
    let output = Command::new(kepler)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .await
        .with_context(|| format!("running {}", kepler.display()))?;
    if !output.status.success() {
        bail!(
            "kepler {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    serde_json::from_slice(&output.stdout)
        .with_context(|| format!("kepler {} printed no JSON", args.join(" ")))
}

/// Creates an enterprise account named `name` (the bench config raises its
/// limits out of reach) with `kepler admin`, and returns a new live key of it.
pub async fn enterprise_key(kepler: &Path, config: &Path, name: &str) -> anyhow::Result<String> {
    let account = admin(
        kepler,
        config,
        &[
            "admin",
            "account",
            "create",
            "--name",
            name,
            "--tier",
            "enterprise",
        ],
    )
    .await?;
    let account_id = account["account_id"].as_str().context("no account_id")?;
    let key = admin(
        kepler,
        config,
        &["admin", "key", "create", "--account", account_id],
    )
    .await?;
    Ok(key["key"].as_str().context("no key")?.to_owned())
}

/// A running server; stopped with SIGTERM (and killed if it lingers).
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub base_url: String,
    pub log: PathBuf,
}

impl Server {
    pub async fn start(
        kepler: &Path,
        config: &Path,
        workers: bool,
        log: PathBuf,
    ) -> anyhow::Result<Server> {
        let listen = std::fs::read_to_string(config)?
            .lines()
            .find_map(|l| {
                l.strip_prefix("listen = \"")?
                    .strip_suffix('"')
                    .map(str::to_owned)
            })
            .context("the config names no listen address")?;
        let log_file = std::fs::File::create(&log).context("creating the server log")?;
        let mut command = Command::new(kepler);
        command
            .arg("--config")
            .arg(config)
            .arg("serve")
            .env("KEPLER_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true);
        if !workers {
            command.arg("--no-workers");
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", kepler.display()))?;
        let server = Server {
            child,
            base_url: format!("http://{listen}"),
            log,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let ready = client
                .get(format!("{}/readyz", self.base_url))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "kepler serve was not ready within 60 s; its log: {}",
            self.log.display()
        )
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Resident set size in KiB, from /proc.
    pub fn rss_kib(&self) -> Option<u64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
        }
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(status) => {
                status.context("waiting for kepler serve")?;
            }
            Err(_) => {
                self.child.kill().await.context("killing kepler serve")?;
            }
        }
        Ok(())
    }
}
