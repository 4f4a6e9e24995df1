//! The configuration file (API.md §2), parsed and validated once at start-up.
//! Reading the file and the environment happens at the edge (the `kepler` binary).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::duration;
use crate::tier::{TierOverride, TierOverrideError, TierTable};

/// The default store: the embedded SQLite file.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://kepler-data/kepler.db";
/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The whole file, every key optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub server: ServerSettings,
    #[serde(default)]
    pub database: DatabaseSettings,
    #[serde(default)]
    pub workers: WorkerSettings,
    #[serde(default)]
    pub engine: EngineSettings,
    #[serde(default)]
    pub tiers: BTreeMap<String, TierOverride>,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// How long a request may wait for the store before answering `store_unavailable`.
    #[serde(deserialize_with = "duration::deserialize")]
    pub store_timeout: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: DEFAULT_LISTEN.parse().expect("valid default"),
            store_timeout: Duration::from_secs(2),
        }
    }
}

/// `[database]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
    #[serde(deserialize_with = "duration::deserialize")]
    pub acquire_timeout: Duration,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: DEFAULT_DATABASE_URL.to_owned(),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(2),
        }
    }
}

/// `[workers]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSettings {
    pub enabled: bool,
    /// Cold runs in flight per process.
    pub concurrency: usize,
    /// A run still unsettled after this fails as `timeout`.
    #[serde(deserialize_with = "duration::deserialize")]
    pub job_timeout: Duration,
    /// A claimed run not heartbeated for this long goes back to the queue.
    #[serde(deserialize_with = "duration::deserialize")]
    pub lease: Duration,
    /// How often an idle worker looks for work when nothing wakes it.
    #[serde(deserialize_with = "duration::deserialize")]
    pub poll_interval: Duration,
    /// On shutdown, how long in-flight runs may go on before they are handed back.
    #[serde(deserialize_with = "duration::deserialize")]
    pub shutdown_grace: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            enabled: true,
            concurrency: 16,
            job_timeout: Duration::from_secs(180),
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// `[engine]`: where and how the scoring engine looks.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSettings {
    /// DNS server to ask; the system resolver when absent.
    pub resolver: Option<SocketAddr>,
    /// Extra trust roots in PEM (for test networks).
    pub extra_ca_file: Option<PathBuf>,
    /// DNSSEC trust anchor (DNSKEY records in zone-file presentation format);
    /// the root zone's own when absent.
    pub trust_anchor_file: Option<PathBuf>,
    /// Allow connections to loopback, private and other non-public addresses.
    pub allow_private_targets: bool,
    pub http_port: u16,
    pub https_port: u16,
    /// RDAP server to ask; IANA bootstrap when absent.
    pub rdap_base_url: Option<String>,
    /// Each probe's own limit.
    #[serde(deserialize_with = "duration::deserialize")]
    pub probe_timeout: Duration,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            resolver: None,
            extra_ca_file: None,
            trust_anchor_file: None,
            allow_private_targets: false,
            http_port: 80,
            https_port: 443,
            rdap_base_url: None,
            probe_timeout: Duration::from_secs(10),
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    #[error(transparent)]
    Tier(#[from] TierOverrideError),
    #[error("{0}")]
    Invalid(String),
}

/// The validated configuration every part of Kepler runs on.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub workers: WorkerSettings,
    pub engine: EngineSettings,
    pub tiers: TierTable,
}

impl Default for Config {
    fn default() -> Self {
        Config::from_file(ConfigFile::default()).expect("defaults are valid")
    }
}

impl Config {
    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        Config::from_file(toml::from_str(text)?)
    }

    /// Validates a parsed file.
    pub fn from_file(file: ConfigFile) -> Result<Config, ConfigError> {
        let tiers = TierTable::with_overrides(&file.tiers)?;
        if file.workers.concurrency == 0 {
            return Err(ConfigError::Invalid(
                "workers.concurrency must be at least 1".into(),
            ));
        }
        if file.workers.lease < Duration::from_millis(100) {
            return Err(ConfigError::Invalid(
                "workers.lease must be at least 100ms".into(),
            ));
        }
        if file.database.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "database.max_connections must be at least 1".into(),
            ));
        }
        Ok(Config {
            server: file.server,
            database: file.database,
            workers: file.workers,
            engine: file.engine,
            tiers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tier::Tier;

    #[test]
    fn empty_file_is_the_defaults() {
        let config = Config::from_toml("").expect("valid");
        assert_eq!(config.database.url, DEFAULT_DATABASE_URL);
        assert_eq!(config.server.listen.to_string(), DEFAULT_LISTEN);
        assert!(config.workers.enabled);
        assert_eq!(config.workers.job_timeout, Duration::from_secs(180));
        assert_eq!(config.tiers, TierTable::default());
    }

    #[test]
    fn the_documented_example_parses() {
        let text = r#"
[server]
listen = "127.0.0.1:8080"
[database]
url = "sqlite://kepler-data/kepler.db"
[workers]
enabled = true
concurrency = 16
job_timeout = "180s"
lease = "30s"
[engine]
resolver = "127.0.0.1:5353"
extra_ca_file = "testnet-ca.pem"
trust_anchor_file = "testnet-root.key"
allow_private_targets = false
http_port = 80
https_port = 443
rdap_base_url = "http://127.0.0.1:8081/rdap/"
probe_timeout = "10s"
[tiers.growth]
freshness = "7d"
monthly_cold_cap = 1000
key_hourly_cold_limit = 200
account_daily_cold_limit = 500
cost_per_cold_call_usd = 0.04
force_fresh = false
"#;
        let config = Config::from_toml(text).expect("valid");
        assert_eq!(
            config.engine.resolver,
            Some("127.0.0.1:5353".parse().expect("addr"))
        );
        assert_eq!(
            config.tiers.policy(Tier::Growth),
            Tier::Growth.default_policy()
        );
    }

    #[test]
    fn mistakes_are_reported_not_ignored() {
        assert!(Config::from_toml("[workers]\njob_timeout = \"soon\"").is_err());
        assert!(Config::from_toml("[workerz]\n").is_err());
        assert!(Config::from_toml("[tiers.gold]\nmonthly_cold_cap = 1").is_err());
        assert!(Config::from_toml("[workers]\nconcurrency = 0").is_err());
    }
}
