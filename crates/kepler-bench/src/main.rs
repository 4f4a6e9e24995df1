//! `kepler-bench`: measures Kepler where its users feel it and writes the
//! figures, each as a ratio to a baseline taken in the same run, to
//! `docs/performance.md`. `scripts/bench` is the one command that runs it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

mod engine;
mod http;
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
        /// Where the Markdown report goes.
        #[arg(long, default_value = "docs/performance.md")]
        out: PathBuf,
    },
    /// The HTTP paths only; prints the report section.
    Http(HttpArgs),
    /// The engine on the test network only; prints the report section.
    Engine(EngineArgs),
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
        Command::All { http, engine, out } => {
            let http_results = http::run(&http).await?;
            let engine_results = engine::run(&engine).await?;
            let page = report::page(&http, &http_results, &engine_results);
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
    }
    Ok(())
}
