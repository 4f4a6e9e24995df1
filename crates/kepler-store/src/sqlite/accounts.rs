//! Accounts and API keys.

use chrono::Utc;
use kepler_core::Tier;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use uuid::Uuid;

use super::rows;
use crate::keys;
use crate::time::{to_millis, truncate};
use crate::{Account, Caller, NewKey, Result, StoreError};

pub(super) async fn create_account(
    conn: &mut SqliteConnection,
    name: &str,
    tier: Tier,
) -> Result<Account> {
    let account = Account {
        account_id: Uuid::new_v4(),
        name: name.to_owned(),
        tier,
        created_at: truncate(Utc::now()),
    };
    sqlx::query("INSERT INTO accounts (account_id, name, tier, created_at) VALUES (?, ?, ?, ?)")
        .bind(account.account_id.to_string())
        .bind(&account.name)
        .bind(tier.as_str())
        .bind(to_millis(account.created_at))
        .execute(conn)
        .await?;
    Ok(account)
}

pub(super) async fn get_account(
    conn: &mut SqliteConnection,
    account_id: Uuid,
) -> Result<Option<Account>> {
    let row =
        sqlx::query("SELECT account_id, name, tier, created_at FROM accounts WHERE account_id = ?")
            .bind(account_id.to_string())
            .fetch_optional(conn)
            .await?;
    row.map(|row| {
        Ok(Account {
            account_id: rows::uuid(&row, "account_id")?,
            name: row.try_get("name")?,
            tier: rows::tier(&row, "tier")?,
            created_at: rows::instant(&row, "created_at")?,
        })
    })
    .transpose()
}

/// Changes the tier; run inside a write transaction so the account read back is the one written.
pub(super) async fn set_tier(
    conn: &mut SqliteConnection,
    account_id: Uuid,
    tier: Tier,
) -> Result<Account> {
    let changed = sqlx::query("UPDATE accounts SET tier = ? WHERE account_id = ?")
        .bind(tier.as_str())
        .bind(account_id.to_string())
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if changed == 0 {
        return Err(StoreError::NotFound("account"));
    }
    get_account(conn, account_id)
        .await?
        .ok_or(StoreError::NotFound("account"))
}

pub(super) async fn create_key(
    conn: &mut SqliteConnection,
    account_id: Uuid,
    sandbox: bool,
) -> Result<NewKey> {
    if get_account(&mut *conn, account_id).await?.is_none() {
        return Err(StoreError::NotFound("account"));
    }
    let key = keys::generate(sandbox);
    let key_id = Uuid::new_v4();
    sqlx::query("INSERT INTO api_keys (key_id, account_id, sandbox, key_hash, created_at) VALUES (?, ?, ?, ?, ?)")
        .bind(key_id.to_string())
        .bind(account_id.to_string())
        .bind(sandbox)
        .bind(keys::hash_key(&key))
        .bind(to_millis(Utc::now()))
        .execute(conn)
        .await?;
    Ok(NewKey { key, key_id })
}

pub(super) async fn revoke_key(conn: &mut SqliteConnection, key_id: Uuid) -> Result<()> {
    // Revoking twice keeps the first revocation time.
    let changed =
        sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE key_id = ?")
            .bind(to_millis(Utc::now()))
            .bind(key_id.to_string())
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
    conn: &mut SqliteConnection,
    presented: &str,
) -> Result<Option<Caller>> {
    let presented = keys::inspect(presented);
    if !presented.well_formed {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT k.key_id, k.account_id, k.sandbox, k.key_hash, k.revoked_at, a.tier \
         FROM api_keys k JOIN accounts a ON a.account_id = k.account_id \
         WHERE k.key_hash = ?",
    )
    .bind(&presented.hash)
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    caller_from(&row, &presented.hash)
}

/// A key row joined with its account's tier, as read.
pub(super) struct KeyRow {
    pub key_id: String,
    pub account_id: String,
    pub tier: String,
    pub sandbox: bool,
    pub key_hash: String,
    pub revoked_at: Option<i64>,
}

impl KeyRow {
    /// The caller the row stands for; `None` when revoked. `presented_hash` is
    /// compared in constant time, as [`crate::keys`] asks.
    pub(super) fn caller(&self, presented_hash: &str) -> Result<Option<Caller>> {
        if !keys::hashes_match(&self.key_hash, presented_hash) || self.revoked_at.is_some() {
            return Ok(None);
        }
        Ok(Some(Caller {
            key_id: rows::parse_uuid("key_id", &self.key_id)?,
            account_id: rows::parse_uuid("account_id", &self.account_id)?,
            tier: rows::parse_tier("tier", &self.tier)?,
            sandbox: self.sandbox,
        }))
    }
}

/// The caller a key row (joined with its account's tier) stands for; `None` when
/// revoked.
pub(super) fn caller_from(row: &SqliteRow, presented_hash: &str) -> Result<Option<Caller>> {
    KeyRow {
        key_id: row.try_get("key_id")?,
        account_id: row.try_get("account_id")?,
        tier: row.try_get("tier")?,
        sandbox: row.try_get("sandbox")?,
        key_hash: row.try_get("key_hash")?,
        revoked_at: row.try_get("revoked_at")?,
    }
    .caller(presented_hash)
}
