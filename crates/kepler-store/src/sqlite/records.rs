//! Score records: append-only, the newest per domain is the one served.

use chrono::{DateTime, Utc};
use kepler_core::ScoreRecord;
use sqlx::Row;
use sqlx::sqlite::SqliteConnection;

use crate::time::{to_millis, truncate};
use crate::{Result, ServedRecord};

/// The newest record of `domain`, marked `cached: true`.
pub(super) async fn latest(
    conn: &mut SqliteConnection,
    domain: &str,
) -> Result<Option<ScoreRecord>> {
    let row = sqlx::query(
        "SELECT body FROM records WHERE domain = ? ORDER BY scored_at DESC, record_id DESC LIMIT 1",
    )
    .bind(domain)
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let body: String = row.try_get("body")?;
    let mut record: ScoreRecord = serde_json::from_str(&body)?;
    record.cached = true;
    Ok(Some(record))
}

/// Stores a record as scored (`cached: false`, `scored_at` at millisecond precision)
/// and as served (`cached: true`); returns the instant stored.
pub(super) async fn insert(
    conn: &mut SqliteConnection,
    record: &ScoreRecord,
) -> Result<DateTime<Utc>> {
    let mut stored = record.clone();
    stored.cached = false;
    stored.scored_at = truncate(record.scored_at);
    let body = serde_json::to_string(&stored)?;
    let served = ServedRecord::encode(&stored)?;
    sqlx::query(
        "INSERT INTO records (domain, scored_at, engine_version, score, grade, body, served) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&stored.domain)
    .bind(to_millis(stored.scored_at))
    .bind(&stored.engine_version)
    .bind(i64::from(stored.score))
    .bind(&stored.grade)
    .bind(body)
    .bind(served)
    .execute(conn)
    .await?;
    Ok(stored.scored_at)
}
