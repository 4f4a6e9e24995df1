//! Fresh databases for tests (feature `testing`): a temp SQLite file, or a
//! PostgreSQL schema of its own in a shared database. Either is removed when the
//! [`TestDatabase`] is dropped, so tests can run side by side on one server.

use std::time::Duration;

use kepler_core::config::DatabaseSettings;
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::{Result, StoreError};

/// Selects the backend of suites that run on either: `sqlite` (the default) or `postgres`.
pub const BACKEND_VAR: &str = "KEPLER_TEST_BACKEND";
/// The PostgreSQL database test schemas are made in.
pub const POSTGRES_URL_VAR: &str = "KEPLER_TEST_POSTGRES_URL";
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Test schemas are named `kepler_test_<unix seconds>_<random>`; ones older than
/// this were left by a killed test run and are dropped by the next one.
const STALE_AFTER_SECS: i64 = 6 * 3600;
const SCHEMA_PREFIX: &str = "kepler_test_";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend [`BACKEND_VAR`] names.
    pub fn from_env() -> Result<Backend> {
        match std::env::var(BACKEND_VAR).unwrap_or_default().as_str() {
            "" | "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            other => Err(StoreError::Config(format!(
                "{BACKEND_VAR}={other:?}: expected sqlite or postgres"
            ))),
        }
    }
}

/// A fresh, empty database (not yet migrated).
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    backend: Backend,
    owned: Owned,
}

#[derive(Debug)]
enum Owned {
    /// Kept so the directory lives as long as the database.
    Dir {
        _dir: tempfile::TempDir,
    },
    Schema {
        admin_url: String,
        schema: String,
    },
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> Result<TestDatabase> {
        match backend {
            Backend::Sqlite => TestDatabase::sqlite(),
            Backend::Postgres => TestDatabase::postgres().await,
        }
    }

    /// On the backend [`BACKEND_VAR`] names.
    pub async fn from_env() -> Result<TestDatabase> {
        TestDatabase::new(Backend::from_env()?).await
    }

    /// A file in a new temp directory.
    pub fn sqlite() -> Result<TestDatabase> {
        let dir = tempfile::tempdir()
            .map_err(|e| StoreError::Config(format!("cannot make a temp dir: {e}")))?;
        Ok(TestDatabase {
            url: format!("sqlite://{}/kepler.db", dir.path().display()),
            backend: Backend::Sqlite,
            owned: Owned::Dir { _dir: dir },
        })
    }

    /// A new schema in the database [`POSTGRES_URL_VAR`] names; the URL puts it
    /// first on the `search_path` and names the connections after it.
    pub async fn postgres() -> Result<TestDatabase> {
        let admin_url =
            std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let now = chrono::Utc::now().timestamp();
        let schema = format!(
            "{SCHEMA_PREFIX}{now}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let mut admin = PgConnection::connect(&admin_url).await?;
        drop_stale_schemas(&mut admin, now).await;
        sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
            .execute(&mut admin)
            .await?;
        let _ = admin.close().await;
        let separator = if admin_url.contains('?') { '&' } else { '?' };
        Ok(TestDatabase {
            url: format!(
                "{admin_url}{separator}options=-c%20search_path%3D{schema}&application_name={schema}"
            ),
            backend: Backend::Postgres,
            owned: Owned::Schema { admin_url, schema },
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Settings for this database with a small pool (many tests share one server).
    pub fn settings(&self) -> DatabaseSettings {
        DatabaseSettings {
            url: self.url.clone(),
            max_connections: 8,
            ..DatabaseSettings::default()
        }
    }

    /// The PostgreSQL schema, if this is one.
    pub fn schema(&self) -> Option<&str> {
        match &self.owned {
            Owned::Schema { schema, .. } => Some(schema),
            Owned::Dir { .. } => None,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Owned::Schema { admin_url, schema } = &self.owned else {
            return;
        };
        let (admin_url, schema) = (admin_url.clone(), schema.clone());
        // Drop may run inside a runtime that must not block on itself: use a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime
                .block_on(drop_schema(&admin_url, &schema))
                .map_err(|e| e.to_string())
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("could not drop a test schema: {error}");
        }
    }
}

/// Ends the schema's connections still open (a test that panicked leaves
/// pools behind), then drops it with everything in it.
async fn drop_schema(admin_url: &str, schema: &str) -> Result<()> {
    let mut admin = PgConnection::connect(admin_url).await?;
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = $1 AND pid <> pg_backend_pid()",
    )
    .bind(schema)
    .execute(&mut admin)
    .await?;
    sqlx::query("SET lock_timeout = '10s'")
        .execute(&mut admin)
        .await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .execute(&mut admin)
        .await?;
    let _ = admin.close().await;
    Ok(())
}

/// Best effort: schemas of killed test runs, by the age in their names.
async fn drop_stale_schemas(admin: &mut PgConnection, now: i64) {
    let Ok(names) = sqlx::query_scalar::<_, String>(
        "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)",
    )
    .bind(SCHEMA_PREFIX)
    .fetch_all(&mut *admin)
    .await
    else {
        return;
    };
    for name in names {
        let created = name[SCHEMA_PREFIX.len()..]
            .split('_')
            .next()
            .and_then(|secs| secs.parse::<i64>().ok());
        if created.is_some_and(|t| now - t > STALE_AFTER_SECS) {
            let _ = tokio::time::timeout(
                Duration::from_secs(10),
                sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                    .execute(&mut *admin),
            )
            .await;
        }
    }
}
