//! `kepler-testnet --engine-config FILE [--latency 50ms] [--dir DIR]
//! [--standard-ports] [--hosts-file FILE]`: starts the fixture network, writes
//! the `[engine]` table, prints `ready`, serves until SIGTERM/SIGINT.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use kepler_testnet::{Testnet, TestnetOptions};

#[derive(Debug, Parser)]
#[command(
    name = "kepler-testnet",
    version,
    about = "A fixture internet on loopback for Kepler's tests and benchmarks"
)]
struct Cli {
    /// Where to write the `[engine]` TOML table that points kepler at the testnet.
    #[arg(long, value_name = "FILE")]
    engine_config: PathBuf,
    /// Delay added to every DNS answer and every connection's first byte (e.g. 50ms).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_latency)]
    latency: Duration,
    /// Where to write testnet-ca.pem and testnet-root.key (default: beside FILE).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Serve on ports 80/443 and DNS on 127.0.10.53:53 (needs root).
    #[arg(long)]
    standard_ports: bool,
    /// Also write /etc/hosts-style lines for every fixture name here.
    #[arg(long, value_name = "FILE")]
    hosts_file: Option<PathBuf>,
}

fn parse_latency(text: &str) -> Result<Duration, String> {
    kepler_core::duration::parse(text)
}

fn write(path: &Path, contents: &str) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let dir = match cli.dir {
        Some(dir) => dir,
        None => match cli.engine_config.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        },
    };
    let net = Testnet::start(TestnetOptions {
        latency: cli.latency,
        dir,
        standard_ports: cli.standard_ports,
    })
    .await?;
    let written = (|| {
        write(&cli.engine_config, &net.engine_config_toml())?;
        if let Some(hosts) = &cli.hosts_file {
            write(hosts, &net.hosts_lines())?;
        }
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "ready").context("cannot write to stdout")?;
        stdout.flush().context("cannot write to stdout")
    })();
    if let Err(error) = written {
        net.shutdown().await;
        return Err(error);
    }
    wait_for_signal().await?;
    net.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        tokio::select! {
            _ = term.recv() => {}
            result = tokio::signal::ctrl_c() => result.context("cannot listen for SIGINT")?,
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("cannot listen for Ctrl-C")?;
    Ok(())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => {
            // --help and --version go to stdout as usual.
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            let text = error.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("kepler-testnet: {}", first.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("kepler-testnet: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kepler-testnet: {error:#}");
            ExitCode::FAILURE
        }
    }
}
