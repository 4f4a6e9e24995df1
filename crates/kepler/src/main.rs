//! The `kepler` command. Thin: parse arguments, set up logging, call the libraries,
//! and turn any failure into one clear line on stderr and a non-zero exit.

use std::process::ExitCode;

use clap::Parser;

mod admin;
mod cli;
mod config;
mod progress;
mod report;
mod run;
mod score;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("kepler: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("kepler: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let command = match cli.command {
        // A client command: it needs no config file or store.
        Command::Score(args) => return score::run(args).await,
        other => other,
    };
    let config = config::load(&cli.global)?;
    match command {
        Command::Serve(args) => {
            init_logging();
            run::serve(config, args).await?;
        }
        Command::Worker(args) => {
            init_logging();
            run::worker(config, args).await?;
        }
        Command::Migrate => {
            let store = run::open_store(&config).await?;
            store.close().await;
            println!("schema is up to date at {}", config.database.url);
        }
        Command::Admin(admin) => admin::run(&config, admin).await?,
        Command::Scan(args) => return report::scan(&config, args).await,
        Command::Score(args) => return score::run(args).await,
    }
    Ok(ExitCode::SUCCESS)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEPLER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
