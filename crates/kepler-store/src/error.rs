//! Turning sqlx errors into [`StoreError`]: "the database is not there right now"
//! becomes `Unavailable` (503 and retry), everything else keeps its cause.
//! A database error never becomes "not found".

use sqlx::error::DatabaseError;

use crate::StoreError;

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match error {
            E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed | E::Io(_) | E::Tls(_) => {
                StoreError::Unavailable(error.to_string())
            }
            E::Database(ref db) if is_transient(db.as_ref()) => {
                StoreError::Unavailable(error.to_string())
            }
            E::Migrate(e) => StoreError::Migration(e.to_string()),
            E::Configuration(e) => StoreError::Config(e.to_string()),
            other => StoreError::Database(other),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> Self {
        StoreError::Corrupt(error.to_string())
    }
}

/// Whether a database error means "down or busy" rather than "wrong".
fn is_transient(db: &dyn DatabaseError) -> bool {
    if let Some(e) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
        return crate::sqlite::is_transient(e);
    }
    if let Some(e) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        return crate::postgres::is_transient(e);
    }
    false
}
