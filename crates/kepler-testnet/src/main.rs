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
    // Listen before announcing `ready`: a caller may signal right after reading it.
    let mut signals = Signals::install()?;
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
    signals.wait().await;
    net.shutdown().await;
    Ok(())
}

/// SIGTERM and SIGINT, registered when installed (not when first awaited).
#[cfg(unix)]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
        })
    }

    async fn wait(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> anyhow::Result<Signals> {
        Ok(Signals)
    }

    async fn wait(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
    }
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
            // clap's message is several lines (details, usage); keep the
            // message and its details as one line.
            let text = error.to_string();
            let message: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let line = message.join(" ");
            eprintln!("kepler-testnet: {}", line.trim_start_matches("error: "));
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
