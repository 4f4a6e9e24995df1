//! Layered configuration: compiled-in defaults, then the file, then flags and
//! `KEPLER_*` variables, validated once.

use anyhow::Context;
use kepler_core::config::Config;

use crate::cli::GlobalArgs;

pub fn load(global: &GlobalArgs) -> anyhow::Result<Config> {
    let mut config = match &global.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the config file {}", path.display()))?;
            Config::from_toml(&text)
                .with_context(|| format!("invalid config file {}", path.display()))?
        }
        None => Config::default(),
    };
    if let Some(url) = &global.database_url {
        config.database.url = url.clone();
    }
    Ok(config)
}
