//! Saved answers for `Idempotency-Key`, replayed for [`IDEMPOTENCY_WINDOW`].

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::time::{chrono_millis, to_millis};
use crate::windows::IDEMPOTENCY_WINDOW;
use crate::{IdempotentResponse, Result, StoreError};

/// The oldest stored instant still inside the window at `now`.
fn since(now: DateTime<Utc>) -> i64 {
    to_millis(now)
        .saturating_sub(chrono_millis(IDEMPOTENCY_WINDOW))
        .saturating_add(1)
}

pub(super) async fn get(
    conn: &mut PgConnection,
    account_id: Uuid,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Option<IdempotentResponse>> {
    let row = sqlx::query(
        "SELECT request_hash, status, body, headers FROM idempotency \
         WHERE account_id = $1 AND idem_key = $2 AND created_at >= $3",
    )
    .bind(account_id)
    .bind(key)
    .bind(since(now))
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let status: i32 = row.try_get("status")?;
    let Json(headers): Json<Vec<(String, String)>> = row.try_get("headers")?;
    Ok(Some(IdempotentResponse {
        request_hash: row.try_get("request_hash")?,
        status: u16::try_from(status)
            .map_err(|_| StoreError::Corrupt(format!("HTTP status {status}")))?,
        body: row.try_get("body")?,
        headers,
    }))
}

/// Saves an answer unless one younger than the window exists (the first save wins);
/// an expired answer is replaced. Expired answers of every account are dropped on the way.
pub(super) async fn save(
    conn: &mut PgConnection,
    account_id: Uuid,
    key: &str,
    response: &IdempotentResponse,
    now: DateTime<Utc>,
) -> Result<()> {
    let since = since(now);
    sqlx::query("DELETE FROM idempotency WHERE created_at < $1")
        .bind(since)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO idempotency (account_id, idem_key, request_hash, status, body, headers, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (account_id, idem_key) DO UPDATE SET \
           request_hash = excluded.request_hash, status = excluded.status, body = excluded.body, \
           headers = excluded.headers, created_at = excluded.created_at \
         WHERE idempotency.created_at < $8",
    )
    .bind(account_id)
    .bind(key)
    .bind(&response.request_hash)
    .bind(i32::from(response.status))
    .bind(&response.body)
    .bind(Json(&response.headers))
    .bind(to_millis(now))
    .bind(since)
    .execute(conn)
    .await?;
    Ok(())
}
