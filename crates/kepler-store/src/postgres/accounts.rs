//! Accounts and API keys.

use chrono::Utc;
use kepler_core::Tier;
use sqlx::Row;
use sqlx::postgres::{PgConnection, PgRow};
use uuid::Uuid;

use super::rows;
use crate::keys;
use crate::time::{to_millis, truncate};
use crate::{Account, Caller, NewKey, Result, StoreError};

pub(super) async fn create_account(
    conn: &mut PgConnection,
    name: &str,
    tier: Tier,
) -> Result<Account> {
    let account = Account {
        account_id: Uuid::new_v4(),
        name: name.to_owned(),
        tier,
        created_at: truncate(Utc::now()),
    };
    sqlx::query(
        "INSERT INTO accounts (account_id, name, tier, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(account.account_id)
    .bind(&account.name)
    .bind(tier.as_str())
    .bind(to_millis(account.created_at))
    .execute(conn)
    .await?;
    Ok(account)
}

pub(super) async fn get_account(
    conn: &mut PgConnection,
    account_id: Uuid,
) -> Result<Option<Account>> {
    let row = sqlx::query(
        "SELECT account_id, name, tier, created_at FROM accounts WHERE account_id = $1",
    )
    .bind(account_id)
    .fetch_optional(conn)
    .await?;
    row.map(|row| {
        Ok(Account {
            account_id: row.try_get("account_id")?,
            name: row.try_get("name")?,
            tier: rows::tier(&row, "tier")?,
            created_at: rows::instant(&row, "created_at")?,
        })
    })
    .transpose()
}

pub(super) async fn set_tier(
    conn: &mut PgConnection,
    account_id: Uuid,
    tier: Tier,
) -> Result<Account> {
    let row = sqlx::query(
        "UPDATE accounts SET tier = $1 WHERE account_id = $2 RETURNING account_id, name, tier, created_at",
    )
    .bind(tier.as_str())
    .bind(account_id)
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound("account"))?;
    Ok(Account {
        account_id: row.try_get("account_id")?,
        name: row.try_get("name")?,
        tier: rows::tier(&row, "tier")?,
        created_at: rows::instant(&row, "created_at")?,
    })
}

pub(super) async fn create_key(
    conn: &mut PgConnection,
    account_id: Uuid,
    sandbox: bool,
) -> Result<NewKey> {
    let key = keys::generate(sandbox);
    let key_id = Uuid::new_v4();
    // Inserting from the account row makes an unknown account "not found", not a foreign-key error.
    let inserted = sqlx::query(
        "INSERT INTO api_keys (key_id, account_id, sandbox, key_hash, created_at) \
         SELECT $1, account_id, $3, $4, $5 FROM accounts WHERE account_id = $2",
    )
    .bind(key_id)
    .bind(account_id)
    .bind(sandbox)
    .bind(keys::hash_key(&key))
    .bind(to_millis(Utc::now()))
    .execute(conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(StoreError::NotFound("account"));
    }
    Ok(NewKey { key, key_id })
}

pub(super) async fn revoke_key(conn: &mut PgConnection, key_id: Uuid) -> Result<()> {
    // Revoking twice keeps the first revocation time.
    let changed =
        sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE key_id = $2")
            .bind(to_millis(Utc::now()))
            .bind(key_id)
            .execute(conn)
            .await?
            .rows_affected();
    if changed == 0 {
        return Err(StoreError::NotFound("key"));
    }
    Ok(())
}

/// See [`crate::keys`] for why this does not leak timing.
pub(super) async fn authenticate(
    conn: &mut PgConnection,
    presented: &str,
) -> Result<Option<Caller>> {
    let presented = keys::inspect(presented);
    if !presented.well_formed {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT k.key_id, k.account_id, k.sandbox, k.key_hash, k.revoked_at, a.tier \
         FROM api_keys k JOIN accounts a ON a.account_id = k.account_id \
         WHERE k.key_hash = $1",
    )
    .bind(&presented.hash)
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    caller_from(&row, &presented.hash)
}

/// The caller a key row (joined with its account's tier) stands for; `None` when
/// revoked. `presented_hash` is compared in constant time, as [`crate::keys`] asks.
pub(super) fn caller_from(row: &PgRow, presented_hash: &str) -> Result<Option<Caller>> {
    let stored_hash: String = row.try_get("key_hash")?;
    let revoked_at: Option<i64> = row.try_get("revoked_at")?;
    if !keys::hashes_match(&stored_hash, presented_hash) || revoked_at.is_some() {
        return Ok(None);
    }
    Ok(Some(Caller {
        key_id: row.try_get("key_id")?,
        account_id: row.try_get("account_id")?,
        tier: rows::tier(row, "tier")?,
        sandbox: row.try_get("sandbox")?,
    }))
}
