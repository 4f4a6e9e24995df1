//! `kepler admin …`: each command prints one JSON object on stdout.

use serde_json::json;

use crate::cli::{AccountCommand, AdminCommand, KeyCommand};
use crate::run::open_store;

pub async fn run(
    config: &kepler_core::config::Config,
    command: AdminCommand,
) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let output = match command {
        AdminCommand::Account(AccountCommand::Create { name, tier }) => {
            let account = store.create_account(&name, tier).await?;
            json!({"account_id": account.account_id, "name": account.name, "tier": account.tier})
        }
        AdminCommand::Account(AccountCommand::SetTier { account, tier }) => {
            let account = store.set_tier(account, tier).await?;
            json!({"account_id": account.account_id, "name": account.name, "tier": account.tier})
        }
        AdminCommand::Key(KeyCommand::Create { account, sandbox }) => {
            let key = store.create_key(account, sandbox).await?;
            json!({"key": key.key, "key_id": key.key_id})
        }
        AdminCommand::Key(KeyCommand::Revoke { key_id }) => {
            store.revoke_key(key_id).await?;
            json!({"key_id": key_id, "revoked": true})
        }
    };
    store.close().await;
    println!("{output}");
    Ok(())
}
