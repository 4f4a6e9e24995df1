//! The read snapshot of `POST /v1/score`, read on the request's own task.
//!
//! Through sqlx every statement is handed to its connection's thread and the
//! answer handed back: two thread wake-ups, which cost more than SQLite's own
//! work on this statement and sit on every cold call's path to the admission
//! thread and on every hit the memo cannot replay. Here a few rusqlite
//! connections (the same SQLite library) run that one statement synchronously
//! on the calling thread: a read of a WAL database takes no lock it could wait
//! on, and the statement reads a few index pages.
//!
//! Only what needs nothing more is answered here. A key unknown or revoked, a
//! sandbox key, a cached hit, an admission to write, a limit reached: yes. A
//! window over its limit (a probe to read), a job in flight (its row to read),
//! or any error: the caller takes the sqlx path, which reads everything and
//! reports errors as ever. The busy timeout is zero, so a connection that would
//! have to wait (SQLite restarting the log under it) never blocks the runtime's
//! thread: it answers "not here" at once.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::accounts::KeyRow;
use super::admission::{AUTH_FACTS_SQL, Decided, FactRow, decide_without_reads};
use crate::keys::PresentedKey;
use crate::served::ServedCache;
use crate::windows::Bounds;
use crate::{Ask, Caller};

/// At most this many connections open: one per thread that may be reading at
/// once (the runtime's workers), with room to spare. Past it, the sqlx path.
const MAX_OPEN: usize = 16;

/// What the statement says about a presented key and the domain asked for.
pub(super) type Answer = Option<(Caller, Option<Decided>)>;

/// The idle connections, opened on demand.
#[derive(Debug)]
pub(super) struct SnapshotReaders {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    open: AtomicUsize,
}

impl SnapshotReaders {
    /// Readers of the database file at `path` (already migrated, in WAL mode).
    /// Opens one at once, so a file that cannot be read fails here.
    pub(super) fn open(path: &Path) -> rusqlite::Result<SnapshotReaders> {
        let first = connect(path)?;
        Ok(SnapshotReaders {
            path: path.to_owned(),
            idle: Mutex::new(vec![first]),
            open: AtomicUsize::new(1),
        })
    }

    /// Authenticates `presented` and decides on `ask` as
    /// [`super::admission::authenticate_and_decide`] does, when that needs no
    /// read beyond the one statement. `None`: take the sqlx path.
    pub(super) fn authenticate_and_decide(
        &self,
        presented: &PresentedKey,
        ask: &Ask<'_>,
        served: &ServedCache,
    ) -> Option<Answer> {
        if !presented.well_formed {
            return Some(None);
        }
        let conn = self.take()?;
        let held = served.held(ask.domain.as_str());
        let held_key = held.as_ref().map(|h| (h.key.id, h.key.scored_at));
        match read(&conn, presented, ask, held_key) {
            Ok(row) => {
                self.put_back(conn);
                let Some((key, facts)) = row else {
                    return Some(None);
                };
                let Some(caller) = key?.caller(&presented.hash).ok()? else {
                    return Some(None);
                };
                if caller.sandbox {
                    return Some(Some((caller, None)));
                }
                let facts = facts?;
                let request = ask.request(&caller);
                let decided = decide_without_reads(&request, facts, served, held.as_ref());
                Some(Some((caller, Some(decided.ok()??))))
            }
            Err(error) => {
                // Not put back: a connection that failed is not trusted again.
                self.open.fetch_sub(1, Ordering::Relaxed);
                tracing::debug!(%error, "snapshot read failed; reading through sqlx");
                None
            }
        }
    }

    fn take(&self) -> Option<Connection> {
        if let Some(conn) = self.idle.lock().ok()?.pop() {
            return Some(conn);
        }
        if self.open.fetch_add(1, Ordering::Relaxed) >= MAX_OPEN {
            self.open.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        match connect(&self.path) {
            Ok(conn) => Some(conn),
            Err(error) => {
                self.open.fetch_sub(1, Ordering::Relaxed);
                tracing::debug!(%error, "cannot open a snapshot reader");
                None
            }
        }
    }

    fn put_back(&self, conn: Connection) {
        match self.idle.lock() {
            Ok(mut idle) => idle.push(conn),
            Err(_) => {
                self.open.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Closes the idle connections; none is opened again.
    pub(super) fn close(&self) {
        self.open.store(MAX_OPEN, Ordering::Relaxed);
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }
}

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::ZERO)?;
    // A reader: nothing it runs may write.
    conn.execute_batch("PRAGMA query_only = ON;")?;
    conn.set_prepared_statement_cache_capacity(4);
    Ok(conn)
}

/// The key row and facts of `AUTH_FACTS_SQL`. `Ok(None)`: no such key. The
/// facts are `None` when a column could not be read as expected (the sqlx path
/// then reads them and says what is wrong).
type Row = Option<(Option<KeyRow>, Option<FactRow>)>;

fn read(
    conn: &Connection,
    presented: &PresentedKey,
    ask: &Ask<'_>,
    held: Option<(i64, i64)>,
) -> rusqlite::Result<Row> {
    let b = Bounds::at(ask.now);
    let mut statement = conn.prepare_cached(AUTH_FACTS_SQL.as_str())?;
    statement
        .query_row(
            rusqlite::params![
                ask.domain.as_str(),
                presented.hash,
                "",
                b.month,
                b.key_since,
                b.key_edge,
                b.day_since,
                b.day_edge,
                held.map(|h| h.0),
                held.map(|h| h.1),
            ],
            |row| {
                Ok((
                    key_row(row).ok(),
                    FactRow::from_rusqlite(row, KEY_COLUMNS.len()).ok(),
                ))
            },
        )
        .optional()
}

/// The columns of `AUTH_FACTS_SQL` before its fact columns, in order.
const KEY_COLUMNS: [&str; 6] = [
    "key_id",
    "account_id",
    "sandbox",
    "key_hash",
    "revoked_at",
    "tier",
];

/// By position, as [`FactRow::from_rusqlite`] reads.
fn key_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRow> {
    Ok(KeyRow {
        key_id: row.get(0)?,
        account_id: row.get(1)?,
        sandbox: row.get(2)?,
        key_hash: row.get(3)?,
        revoked_at: row.get(4)?,
        tier: row.get(5)?,
    })
}

#[cfg(test)]
pub(super) mod tests {
    use std::time::Duration;

    use chrono::Utc;
    use kepler_core::config::DatabaseSettings;
    use kepler_core::{Domain, Tier, TierTable};

    use super::*;
    use crate::keys;
    use crate::sqlite::SqliteStore;
    use crate::sqlite::admission::{FACT_COLUMNS, WRITE_FACTS_SQL};
    use crate::{Account, Store};

    /// A migrated store on a fresh file in `dir` (also for the admission thread's tests).
    pub(in crate::sqlite) async fn store(dir: &tempfile::TempDir) -> SqliteStore {
        let settings = DatabaseSettings {
            url: format!("sqlite://{}", dir.path().join("kepler.db").display()),
            max_connections: 4,
            acquire_timeout: Duration::from_secs(5),
        };
        let store = SqliteStore::open(&settings).await.expect("open");
        store.migrate().await.expect("migrate");
        store
    }

    /// A store on a fresh file, with an account on a paid tier and its key.
    async fn store_with_key() -> (tempfile::TempDir, SqliteStore, Account, String) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store(&dir).await;
        let account = store
            .create_account("Acme", Tier::Growth)
            .await
            .expect("account");
        let key = store
            .create_key(account.account_id, false)
            .await
            .expect("key")
            .key;
        (dir, store, account, key)
    }

    fn example() -> Domain {
        Domain::parse("example.com").expect("domain")
    }

    fn cold_ask<'a>(tiers: &'a TierTable, domain: &'a Domain) -> Ask<'a> {
        Ask {
            domain,
            force_fresh: false,
            now: Utc::now(),
            tiers,
        }
    }

    fn read_here(store: &SqliteStore, key: &str, ask: &Ask<'_>) -> Option<Answer> {
        let readers = store
            .snapshots
            .as_ref()
            .expect("a file has snapshot readers");
        readers.authenticate_and_decide(&keys::inspect(key), ask, &store.served)
    }

    /// The rusqlite readers take columns by position: the statements must
    /// name them in the order those readers expect.
    #[tokio::test]
    async fn the_statements_read_by_position_have_their_columns_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let _store = store(&dir).await;
        let conn = connect(&dir.path().join("kepler.db")).expect("connect");
        let names = |sql: &str| -> Vec<String> {
            let statement = conn.prepare(sql).expect("prepare");
            statement
                .column_names()
                .into_iter()
                .map(String::from)
                .collect()
        };
        let facts: Vec<String> = FACT_COLUMNS.iter().map(|c| c.to_string()).collect();
        let keys: Vec<String> = KEY_COLUMNS.iter().map(|c| c.to_string()).collect();
        let auth = names(AUTH_FACTS_SQL.as_str());
        assert_eq!(auth[..KEY_COLUMNS.len()], keys[..]);
        assert_eq!(auth[KEY_COLUMNS.len()..], facts[..]);
        let write = names(WRITE_FACTS_SQL.as_str());
        assert_eq!(write, facts);
    }

    #[tokio::test]
    async fn answers_on_the_calling_thread_what_needs_no_further_read() {
        let (_dir, store, account, key) = store_with_key().await;
        let (tiers, domain) = (TierTable::default(), example());
        let ask = cold_ask(&tiers, &domain);

        match read_here(&store, &key, &ask) {
            Some(Some((caller, Some(Decided::Admit { .. })))) => {
                assert_eq!(caller.account_id, account.account_id);
            }
            _ => panic!("a cold call is decided here"),
        }
        let unknown = keys::generate(false);
        assert!(matches!(read_here(&store, &unknown, &ask), Some(None)));

        // The caller's job in flight answers, and its row is read through sqlx.
        let (_, first) = store
            .authenticate_and_admit(&key, &ask)
            .await
            .expect("admit")
            .expect("a live key");
        let job = first.expect("decided").job.expect("admitted");
        assert!(read_here(&store, &key, &ask).is_none());
        let (_, again) = store
            .authenticate_and_admit(&key, &ask)
            .await
            .expect("again")
            .expect("a live key");
        let again = again.expect("decided");
        assert_eq!(
            again.decision,
            kepler_core::admission::Decision::ExistingJob(job.job_id)
        );
        assert_eq!(again.job.map(|j| j.job_id), Some(job.job_id));

        let key_id = store
            .authenticate(&key)
            .await
            .expect("auth")
            .expect("live")
            .key_id;
        store.revoke_key(key_id).await.expect("revoke");
        assert!(matches!(read_here(&store, &key, &ask), Some(None)));
    }

    #[tokio::test]
    async fn reads_while_another_connection_holds_the_write_lock() {
        let (dir, store, _, key) = store_with_key().await;
        let other = Connection::open(dir.path().join("kepler.db")).expect("open");
        other
            .execute_batch("BEGIN IMMEDIATE; UPDATE accounts SET name = 'Other';")
            .expect("hold the write lock");
        let (tiers, domain) = (TierTable::default(), example());
        let ask = cold_ask(&tiers, &domain);
        assert!(matches!(
            read_here(&store, &key, &ask),
            Some(Some((_, Some(Decided::Admit { .. }))))
        ));
        other.execute_batch("ROLLBACK").expect("unlock");
    }
}
