//! `kepler-bench`: measures Kepler where its users feel it and writes the
//! figures, each as a ratio to a baseline taken in the same run, to
//! `docs/performance.md`. `scripts/bench` is the one command that runs it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

mod engine;
mod http;
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
enum Command {
    /// Every benchmark; writes the report to --out.
    All {
        #[command(flatten)]
        http: HttpArgs,
        #[command(flatten)]
        engine: EngineArgs,
        #[command(flatten)]
        queue: QueueArgs,
        /// Skip the queue comparison (it takes minutes).
        #[arg(long)]
        skip_queue: bool,
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
            skip_queue,
            out,
        } => {
            let http_results = http::run(&http).await?;
            let engine_results = engine::run(&engine).await?;
            let queue_result = if skip_queue {
                None
            } else {
                Some(queue::run(&queue).await?)
            };
            let mut page = report::page(&http, &http_results, &engine_results);
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
