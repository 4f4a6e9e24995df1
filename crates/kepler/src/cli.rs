//! Command-line arguments (API.md §1). Global options may stand anywhere on the line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "kepler",
    version,
    about = "Domain security scores, every point explained."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file (TOML).
    #[arg(long, global = true, env = "KEPLER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Store URL: sqlite://PATH or postgres://...; overrides the file.
    #[arg(long, global = true, env = "KEPLER_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API server and in-process workers.
    Serve(ServeArgs),
    /// Run workers only (scale-out).
    Worker(WorkerArgs),
    /// Create or upgrade the schema.
    Migrate,
    /// Manage accounts and keys.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Score a domain locally with the engine, no server.
    Scan(ScanArgs),
    /// Score a domain through a Kepler API: post, poll until settled, print.
    Score(ScoreArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "KEPLER_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// API only: leave cold runs to `kepler worker` processes.
    #[arg(long)]
    pub no_workers: bool,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Serve /healthz, /readyz and /metrics on this address (no API); off by default.
    #[arg(long, env = "KEPLER_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// API keys.
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account; prints it as JSON.
    Create {
        #[arg(long)]
        name: String,
        /// free, starter, growth, scale or enterprise.
        #[arg(long)]
        tier: kepler_core::Tier,
    },
    /// Change an account's tier; prints it as JSON.
    SetTier {
        #[arg(long, value_name = "ID")]
        account: uuid::Uuid,
        #[arg(long)]
        tier: kepler_core::Tier,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key; it is shown once and stored only hashed.
    Create {
        #[arg(long, value_name = "ID")]
        account: uuid::Uuid,
        /// A sandbox key (ki_test_): canned domains only, never charged.
        #[arg(long)]
        sandbox: bool,
    },
    /// Revoke a key: it gets 401 from then on.
    Revoke {
        #[arg(long, value_name = "ID")]
        key_id: uuid::Uuid,
    },
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// The domain to score, e.g. example.com.
    pub domain: String,
    /// Print the score record as JSON (API.md §8).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// The domain to score, e.g. example.com.
    pub domain: String,
    /// The API's base URL.
    #[arg(long, env = "KEPLER_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Your API key (ki_live_… or ki_test_…).
    #[arg(long, env = "KEPLER_API_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// Print the score record as JSON.
    #[arg(long)]
    pub json: bool,
}
