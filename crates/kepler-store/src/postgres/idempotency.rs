//! Saved answers for `Idempotency-Key`, replayed for [`IDEMPOTENCY_WINDOW`], and
//! the reservations that make one key's requests take turns across nodes
//! (see the migration `20261129000200_idempotency_reservations.sql`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::types::Json;
use uuid::Uuid;

use crate::time::{chrono_millis, duration_millis, to_millis};
use crate::windows::IDEMPOTENCY_WINDOW;
use crate::{IdempotencyClaim, IdempotentResponse, Result, StoreError};

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
         WHERE account_id = $1 AND idem_key = $2 AND created_at >= $3 AND reserved_until IS NULL",
    )
    .bind(account_id)
    .bind(key)
    .bind(since(now))
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(saved).transpose()
}

fn saved(row: &PgRow) -> Result<IdempotentResponse> {
    let status: i32 = row.try_get("status")?;
    let Json(headers): Json<Vec<(String, String)>> = row.try_get("headers")?;
    Ok(IdempotentResponse {
        request_hash: row.try_get("request_hash")?,
        status: u16::try_from(status)
            .map_err(|_| StoreError::Corrupt(format!("HTTP status {status}")))?,
        body: row.try_get("body")?,
        headers,
    })
}

/// How often a reservation is retried when the row it conflicted with vanished
/// before it could be read (released or replaced in between).
const RESERVE_ATTEMPTS: usize = 3;

/// Takes the key, or reports who has it. One statement takes it: a new row, or
/// a row whose answer left the window or whose reservation expired; a live row
/// is left alone and read. Concurrent callers on any node are serialised by the
/// primary key, so exactly one of them gets `Reserved`.
pub(super) async fn reserve(
    conn: &mut PgConnection,
    account_id: Uuid,
    key: &str,
    request_hash: &str,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<IdempotencyClaim> {
    let now_ms = to_millis(now);
    for _ in 0..RESERVE_ATTEMPTS {
        let holder = Uuid::new_v4();
        let taken: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO idempotency (account_id, idem_key, request_hash, status, body, headers, \
               created_at, reserved_by, reserved_until) \
             VALUES ($1, $2, $3, 0, '', '[]', 0, $5, $6) \
             ON CONFLICT (account_id, idem_key) DO UPDATE SET \
               request_hash = excluded.request_hash, status = 0, body = '', headers = '[]', \
               created_at = 0, reserved_by = excluded.reserved_by, \
               reserved_until = excluded.reserved_until \
             WHERE CASE WHEN idempotency.reserved_until IS NULL THEN idempotency.created_at < $7 \
                        ELSE idempotency.reserved_until <= $4 END \
             RETURNING reserved_by",
        )
        .bind(account_id)
        .bind(key)
        .bind(request_hash)
        .bind(now_ms)
        .bind(holder)
        .bind(now_ms.saturating_add(duration_millis(ttl)))
        .bind(since(now))
        .fetch_optional(&mut *conn)
        .await?;
        if taken.is_some() {
            return Ok(IdempotencyClaim::Reserved { holder });
        }
        let row = sqlx::query(
            "SELECT request_hash, status, body, headers, reserved_until FROM idempotency \
             WHERE account_id = $1 AND idem_key = $2",
        )
        .bind(account_id)
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else { continue };
        let reserved_until: Option<i64> = row.try_get("reserved_until")?;
        return Ok(match reserved_until {
            Some(_) => IdempotencyClaim::InProgress {
                request_hash: row.try_get("request_hash")?,
            },
            None => IdempotencyClaim::Saved(saved(&row)?),
        });
    }
    // The key keeps changing hands: report it busy, so the caller waits and asks again.
    Ok(IdempotencyClaim::InProgress {
        request_hash: request_hash.to_owned(),
    })
}

pub(super) async fn release(
    conn: &mut PgConnection,
    account_id: Uuid,
    key: &str,
    holder: Uuid,
) -> Result<()> {
    sqlx::query(
        "DELETE FROM idempotency WHERE account_id = $1 AND idem_key = $2 \
         AND reserved_by = $3 AND reserved_until IS NOT NULL",
    )
    .bind(account_id)
    .bind(key)
    .bind(holder)
    .execute(conn)
    .await?;
    Ok(())
}

/// Saves an answer unless one younger than the window exists (the first save wins)
/// or another request holds the key; an expired answer or reservation is replaced,
/// and a reservation of the same request is completed. Expired answers and
/// reservations of every account are dropped on the way.
pub(super) async fn save(
    conn: &mut PgConnection,
    account_id: Uuid,
    key: &str,
    response: &IdempotentResponse,
    now: DateTime<Utc>,
) -> Result<()> {
    let since = since(now);
    let now_ms = to_millis(now);
    sqlx::query(
        "DELETE FROM idempotency WHERE created_at < $1 \
         AND (reserved_until IS NULL OR reserved_until <= $2)",
    )
    .bind(since)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO idempotency (account_id, idem_key, request_hash, status, body, headers, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (account_id, idem_key) DO UPDATE SET \
           request_hash = excluded.request_hash, status = excluded.status, body = excluded.body, \
           headers = excluded.headers, created_at = excluded.created_at, \
           reserved_by = NULL, reserved_until = NULL \
         WHERE CASE WHEN idempotency.reserved_until IS NULL THEN idempotency.created_at < $8 \
                    ELSE idempotency.request_hash = excluded.request_hash \
                      OR idempotency.reserved_until <= $7 END",
    )
    .bind(account_id)
    .bind(key)
    .bind(&response.request_hash)
    .bind(i32::from(response.status))
    .bind(&response.body)
    .bind(Json(&response.headers))
    .bind(now_ms)
    .bind(since)
    .execute(conn)
    .await?;
    Ok(())
}
