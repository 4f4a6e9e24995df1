//! Real processes for the scale-out tests: `kepler-testnet`, and `kepler serve
//! --no-workers` / `kepler worker` nodes sharing one config file and database.
//! On a failing test every process's log is printed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use kepler_core::Tier;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::kepler;

/// How long a process may take to come up on a loaded machine.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// The testnet binary: `KEPLER_TESTNET_BIN`, else beside `kepler` (cargo builds
/// it for `cargo test --workspace`; alone: `cargo build -p kepler-testnet`).
fn testnet_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("KEPLER_TESTNET_BIN") {
        return PathBuf::from(path);
    }
    let kepler = Path::new(env!("CARGO_BIN_EXE_kepler"));
    let path = kepler.with_file_name(format!("kepler-testnet{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build -p kepler-testnet` or set KEPLER_TESTNET_BIN",
        path.display()
    );
    path
}

/// A free loopback port (released at once; the process binds it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A child process with its log file; killed when dropped.
#[derive(Debug)]
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: String, mut command: Command, log: PathBuf) -> Proc {
        let file = std::fs::File::create(&log).expect("a log file");
        command
            .stderr(file)
            .env("KEPLER_LOG", "info,sqlx=warn")
            .kill_on_drop(true);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc { name, child, log }
    }

    async fn sigkill(&mut self) {
        self.child.start_kill().expect("SIGKILL");
        let _ = self.child.wait().await;
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The fixture internet as its own process.
#[derive(Debug)]
pub struct Testnet {
    proc: Proc,
    /// The `[engine]` table it wrote.
    pub engine_toml: String,
}

impl Testnet {
    pub async fn start(dir: &Path) -> Testnet {
        let engine = dir.join("engine.toml");
        let mut command = Command::new(testnet_binary());
        command
            .arg("--engine-config")
            .arg(&engine)
            .stdout(Stdio::piped());
        let mut proc = Proc::spawn("testnet".into(), command, dir.join("testnet.log"));
        let stdout = proc.child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(START_DEADLINE, lines.next_line()).await;
        assert!(
            matches!(&ready, Ok(Ok(Some(line))) if line.trim() == "ready"),
            "kepler-testnet did not print ready ({ready:?}):\n{}",
            proc.log_text()
        );
        let engine_toml = std::fs::read_to_string(&engine).expect("the engine table");
        Testnet { proc, engine_toml }
    }
}

/// One database, one config file, any number of nodes.
#[derive(Debug)]
pub struct Cluster {
    dir: tempfile::TempDir,
    config: PathBuf,
    procs: Vec<Proc>,
    http: reqwest::Client,
}

/// A node's handle: its index in the cluster, and the base URL of an API node.
#[derive(Debug, Clone)]
pub struct Node {
    index: usize,
    pub base: String,
}

impl Cluster {
    /// Writes the config: the store at `database_url`, the testnet's engine
    /// table with `probe_timeout` replaced, and `extra` TOML (tables of its own).
    pub async fn start(database_url: &str, probe_timeout: &str, extra: &str) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let testnet = Testnet::start(dir.path()).await;
        let engine: String = testnet
            .engine_toml
            .lines()
            .map(|line| {
                if line.starts_with("probe_timeout") {
                    format!("probe_timeout = \"{probe_timeout}\"\n")
                } else {
                    format!("{line}\n")
                }
            })
            .collect();
        let text = format!(
            "[database]\nurl = \"{database_url}\"\n{extra}\n{engine}",
            database_url = database_url.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let config = dir.path().join("kepler.toml");
        std::fs::write(&config, text).expect("the config file");
        // reqwest is built without a default TLS provider in this workspace.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Cluster {
            dir,
            config,
            procs: vec![testnet.proc],
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("an HTTP client"),
        }
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kepler"));
        command
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("KEPLER_DATABASE_URL")
            .env_remove("KEPLER_CONFIG")
            .env_remove("KEPLER_LISTEN")
            .stdout(Stdio::null());
        command
    }

    fn spawn(&mut self, name: String, args: &[&str]) -> usize {
        let log = self.dir.path().join(format!("{name}.log"));
        let command = self.command(args);
        self.procs.push(Proc::spawn(name, command, log));
        self.procs.len() - 1
    }

    /// `kepler serve --no-workers`, once `/readyz` answers 200.
    pub async fn api(&mut self) -> Node {
        let listen = format!("127.0.0.1:{}", free_port());
        let name = format!("api-{}", self.procs.len());
        let index = self.spawn(name, &["serve", "--no-workers", "--listen", &listen]);
        let node = Node {
            index,
            base: format!("http://{listen}"),
        };
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let ready = self
                .http
                .get(format!("{}/readyz", node.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return node;
            }
            let exited = self.procs[index].child.try_wait().ok().flatten();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "{} never became ready ({exited:?}):\n{}",
                node.base,
                self.procs[index].log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `kepler worker`, once it has logged that its workers started.
    pub async fn worker(&mut self) -> Node {
        let name = format!("worker-{}", self.procs.len());
        let index = self.spawn(name, &["worker"]);
        self.wait_for_log(index, "workers started").await;
        Node {
            index,
            base: String::new(),
        }
    }

    /// Waits until a process's log contains `text`.
    pub async fn wait_for_log(&mut self, index: usize, text: &str) {
        let deadline = Instant::now() + START_DEADLINE;
        while !self.procs[index].log_text().contains(text) {
            let exited = self.procs[index].child.try_wait().ok().flatten();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "{} never logged {text:?} ({exited:?}):\n{}",
                self.procs[index].name,
                self.procs[index].log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn sigkill(&mut self, node: &Node) {
        self.procs[node.index].sigkill().await;
    }

    /// Whether a node is still running (it must not crash under faults).
    pub fn alive(&mut self, node: &Node) -> bool {
        matches!(self.procs[node.index].child.try_wait(), Ok(None))
    }

    /// Whether a node's log contains `text` so far.
    pub fn logged(&self, node: &Node, text: &str) -> bool {
        self.procs[node.index].log_text().contains(text)
    }

    /// A live key on a new account, made with `kepler admin` like an operator would.
    pub async fn live_key(&self, tier: Tier) -> String {
        let config = self.config.to_string_lossy().into_owned();
        let tier = tier.to_string();
        let account = admin(&[
            "--config", &config, "admin", "account", "create", "--name", "scaleout", "--tier",
            &tier,
        ])
        .await;
        let id = account["account_id"].as_str().expect("an account id");
        let key = admin(&[
            "--config",
            &config,
            "admin",
            "key",
            "create",
            "--account",
            id,
        ])
        .await;
        key["key"].as_str().expect("a key").to_owned()
    }
}

async fn admin(args: &[&str]) -> Value {
    let run = kepler(args, &[]).await;
    assert_eq!(
        run.code,
        Some(0),
        "kepler {}: {}",
        args.join(" "),
        run.stderr
    );
    serde_json::from_str(&run.stdout).expect("admin prints JSON")
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for proc in &self.procs {
                let text = proc.log_text();
                let tail: Vec<&str> = text.lines().rev().take(60).collect();
                eprintln!("---- {} (last lines) ----", proc.name);
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}
