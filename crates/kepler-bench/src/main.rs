//! `kepler-bench`: measures Kepler where its users feel it and writes the
//! figures, each as a ratio to a baseline taken in the same run, to
//! `docs/performance.md`. `scripts/bench` is the one command that runs it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

mod engine;
mod http;
mod memory;
mod peers;
mod queue;
mod report;
mod server;
mod wrk;

#[derive(Debug, Parser)]
#[command(name = "kepler-bench", about = "Kepler's benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once at start; boxing would only obscure the clap derive"
)]
enum Command {
    /// Every benchmark; writes the report to --out.
    All {
        #[command(flatten)]
        http: HttpArgs,
        #[command(flatten)]
        engine: EngineArgs,
        #[command(flatten)]
        queue: QueueArgs,
        #[command(flatten)]
        peers: PeersArgs,
        #[command(flatten)]
        memory: MemoryArgs,
        /// Skip the queue comparison (it takes minutes).
        #[arg(long)]
        skip_queue: bool,
        /// Skip Kepler next to the Observatory and testssl.sh (minutes; needs root).
        #[arg(long)]
        skip_peers: bool,
        /// Skip the resident-set measurement with many runs in flight.
        #[arg(long)]
        skip_memory: bool,
        /// Where the Markdown report goes.
        #[arg(long, default_value = "docs/performance.md")]
        out: PathBuf,
    },
    /// The HTTP paths only; prints the report section.
    Http(HttpArgs),
    /// The engine on the test network only; prints the report section.
    Engine(EngineArgs),
    /// The queue on PostgreSQL next to graphile-worker; prints the report section.
    Queue(QueueArgs),
    /// `kepler scan` next to the MDN HTTP Observatory scanner and testssl.sh on
    /// one test-network host (root only); prints the report section.
    Peers {
        /// The `kepler` binary whose `kepler scan` is timed.
        #[arg(long, default_value = "target/release/kepler")]
        kepler: PathBuf,
        #[command(flatten)]
        peers: PeersArgs,
    },
    /// The resident set of `kepler serve`, idle and with many cold runs in
    /// flight; prints the report section.
    Memory {
        /// The `kepler` binary to run as `kepler serve`.
        #[arg(long, default_value = "target/release/kepler")]
        kepler: PathBuf,
        #[command(flatten)]
        memory: MemoryArgs,
    },
}

#[derive(Debug, Clone, Args)]
struct HttpArgs {
    /// The `kepler` binary to benchmark (a release build is what users run).
    #[arg(long, default_value = "target/release/kepler")]
    kepler: PathBuf,
    /// How long each load run lasts.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Open connections held by the load generator.
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// Load-generator threads (wrk -t).
    #[arg(long, default_value_t = 1)]
    threads: u32,
    /// Store backends to measure: sqlite, postgres (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    backends: Vec<server::Backend>,
    /// PostgreSQL server for the postgres backend (a fresh database is created and dropped).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres: String,
}

#[derive(Debug, Clone, Args)]
struct EngineArgs {
    /// Testnet latencies to run at (the first is the baseline).
    #[arg(long, value_delimiter = ',', default_value = "0ms,50ms,100ms", value_parser = humantime::parse_duration)]
    latencies: Vec<Duration>,
    /// Measured runs per latency (after one warm-up run).
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

#[derive(Debug, Clone, Args)]
struct QueueArgs {
    /// No-op jobs bulk-inserted and drained (graphile-worker's perf test uses 200,000).
    #[arg(long, default_value_t = 200_000)]
    jobs: u32,
    /// Sequential enqueue → start samples (after 100 warm-up ones).
    #[arg(long, default_value_t = 1_000)]
    samples: u32,
    /// Worker concurrency of both queues while draining.
    #[arg(long, default_value_t = 10)]
    concurrency: usize,
    /// Rounds, each measuring both queues, in alternating order (Kepler then
    /// graphile-worker, then the other way round), so that the machine's drift
    /// during the run falls on both alike.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Where graphile-worker is installed (`npm ci` there) with its bench script.
    #[arg(long, default_value = "bench/graphile")]
    graphile_dir: PathBuf,
    /// PostgreSQL server both queues use (a fresh database each, dropped after).
    #[arg(
        long = "queue-postgres",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    queue_postgres: String,
}

#[derive(Debug, Clone, Args)]
struct PeersArgs {
    /// Testnet latencies the tools are timed at.
    #[arg(long, value_delimiter = ',', default_value = "0ms,50ms", value_parser = humantime::parse_duration)]
    peer_latencies: Vec<Duration>,
    /// Measured runs of each tool per latency (after one warm-up run each).
    #[arg(long, default_value_t = 5)]
    peer_runs: usize,
    /// Where the Observatory is installed (`npm ci` there).
    #[arg(long, default_value = "bench/observatory")]
    observatory_dir: PathBuf,
}

#[derive(Debug, Clone, Args)]
struct MemoryArgs {
    /// Distinct domains submitted at once; the worker concurrency is the same,
    /// so all of them can be in flight together.
    #[arg(long, default_value_t = 1_000)]
    memory_runs: usize,
    /// Testnet latency, long enough for the runs to overlap.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    memory_latency: Duration,
    /// Times the whole measurement is repeated, each on a fresh store and
    /// server; the round with the median peak is reported and judged (one
    /// run's peak moves by ±25 MiB with how the runs happen to overlap).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    memory_rounds: u32,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("kepler-bench: cannot start the runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("kepler-bench: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    // reqwest is built without a default TLS provider; the bench only talks
    // plain HTTP, but the client still wants one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match command {
        Command::All {
            http,
            engine,
            queue,
            peers,
            memory,
            skip_queue,
            skip_peers,
            skip_memory,
            out,
        } => {
            let http_results = http::run(&http).await?;
            let engine_results = engine::run(&engine).await?;
            let peers_result = if skip_peers {
                None
            } else {
                Some(peers::run(&peers, &http.kepler).await?)
            };
            let memory_result = if skip_memory {
                None
            } else {
                Some(memory::run(&memory, &http.kepler).await?)
            };
            let queue_result = if skip_queue {
                None
            } else {
                Some(queue::run(&queue).await?)
            };
            let mut page = report::page(&http, &http_results, &engine_results);
            if let Some(result) = &peers_result {
                page += &report::peers_section(&peers, result);
            }
            if let Some(result) = &memory_result {
                page += &report::memory_section(result, &http_results);
            }
            if let Some(result) = &queue_result {
                page += &report::queue_section(result);
            }
            std::fs::write(&out, page).with_context(|| format!("writing {}", out.display()))?;
            eprintln!("wrote {}", out.display());
        }
        Command::Http(args) => {
            let results = http::run(&args).await?;
            print!("{}", report::http_section(&args, &results));
        }
        Command::Engine(args) => {
            let results = engine::run(&args).await?;
            print!("{}", report::engine_section(&results));
        }
        Command::Queue(args) => {
            let result = queue::run(&args).await?;
            print!("{}", report::queue_section(&result));
        }
        Command::Peers { kepler, peers } => {
            let result = peers::run(&peers, &kepler).await?;
            print!("{}", report::peers_section(&peers, &result));
        }
        Command::Memory { kepler, memory } => {
            let result = memory::run(&memory, &kepler).await?;
            print!("{}", report::memory_section(&result, &[]));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Flattened argument groups must not share an argument id (`all` takes them all).
    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
        let all = Cli::try_parse_from(["kepler-bench", "all"]).expect("`all` needs no arguments");
        assert!(matches!(all.command, Command::All { .. }));
    }
}
