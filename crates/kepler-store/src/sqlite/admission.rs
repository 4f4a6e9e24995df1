//! Usage windows, admission facts and the admission itself.

use std::sync::LazyLock;

use chrono::{DateTime, Duration, Utc};
use kepler_core::admission::{
    ACCOUNT_WINDOW, AdmissionFacts, Decision, KEY_WINDOW, WindowUsage, decide,
};
use kepler_core::{JobStatus, TierPolicy};
use sqlx::sqlite::{SqliteArguments, SqliteConnection, SqliteRow};
use sqlx::{Row, Sqlite};
use uuid::Uuid;

use super::records;
use crate::time::{from_millis, to_millis, truncate};
use crate::windows::{count, month_since, month_usage, probe_offset, rolling_since, rolling_usage};
use crate::{AdmissionOutcome, AdmissionRequest, Caller, Job, Result, UsageSnapshot};

// Every statement is a round trip to the connection's own thread (that is how
// sqlx drives SQLite), and those hops, not SQLite's work, bound the request rate.
// So admission reads everything it needs in one statement: the usage windows
// (with each rolling window's oldest call, which is its probe unless the window
// is over its limit), the newest record, the caller's job in flight and the
// domain's run in flight. Binds: ?1 domain, ?2 account, ?3 key, ?4 month start,
// ?5 key-window start, ?6 account-window start.
const WINDOWS_FROM: &str = "FROM (SELECT COUNT(*) AS n, COALESCE(SUM(cost_micros), 0) AS cost FROM cold_calls WHERE account_id = ?2 AND created_at >= ?4) AS m, \
     (SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM cold_calls WHERE key_id = ?3 AND created_at >= ?5) AS k, \
     (SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM cold_calls WHERE account_id = ?2 AND created_at >= ?6) AS d";
const WINDOWS_COLUMNS: &str = "m.n AS month_n, m.cost AS month_cost, k.n AS key_n, k.oldest AS key_oldest, d.n AS day_n, d.oldest AS day_oldest";

// Assembled once, not on every request.
static USAGE_SQL: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {WINDOWS_COLUMNS} {WINDOWS_FROM}"));

static FACTS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {WINDOWS_COLUMNS}, r.scored_at AS record_at, r.body AS record_body, \
         (SELECT job_id FROM jobs WHERE account_id = ?2 AND domain = ?1 AND status IN ('pending', 'running') LIMIT 1) AS in_flight_job, \
         (SELECT run_id FROM runs WHERE domain = ?1 AND status IN ('pending', 'running')) AS run_id, \
         (SELECT status FROM runs WHERE domain = ?1 AND status IN ('pending', 'running')) AS run_status \
         {WINDOWS_FROM} \
         LEFT JOIN (SELECT scored_at, body FROM records WHERE domain = ?1 ORDER BY scored_at DESC, record_id DESC LIMIT 1) AS r ON 1"
    )
});

/// The window counts as read, before any probe.
pub(super) struct Counts {
    month_n: u64,
    month_cost: i64,
    key_n: u64,
    key_oldest: Option<i64>,
    day_n: u64,
    day_oldest: Option<i64>,
}

impl Counts {
    fn read(row: &SqliteRow) -> Result<Counts> {
        Ok(Counts {
            month_n: count(row.try_get("month_n")?),
            month_cost: row.try_get("month_cost")?,
            key_n: count(row.try_get("key_n")?),
            key_oldest: row.try_get("key_oldest")?,
            day_n: count(row.try_get("day_n")?),
            day_oldest: row.try_get("day_oldest")?,
        })
    }

    /// The counts once one more call, stamped `now_ms`, is in the log.
    fn plus_one(&self, cost_micros: i64, now_ms: i64) -> Counts {
        let oldest = |o: Option<i64>| Some(o.map_or(now_ms, |o| o.min(now_ms)));
        Counts {
            month_n: self.month_n + 1,
            month_cost: self.month_cost.saturating_add(cost_micros),
            key_n: self.key_n + 1,
            key_oldest: oldest(self.key_oldest),
            day_n: self.day_n + 1,
            day_oldest: oldest(self.day_oldest),
        }
    }
}

fn binds<'q>(
    query: sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>,
    domain: &'q str,
    caller: &Caller,
    now: DateTime<Utc>,
) -> sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>> {
    query
        .bind(domain)
        .bind(caller.account_id.to_string())
        .bind(caller.key_id.to_string())
        .bind(month_since(now))
        .bind(rolling_since(now, KEY_WINDOW))
        .bind(rolling_since(now, ACCOUNT_WINDOW))
}

/// The three windows of a key and its account at `now`, and the month's cost.
pub(super) async fn usage(
    conn: &mut SqliteConnection,
    caller: &Caller,
    policy: &TierPolicy,
    now: DateTime<Utc>,
) -> Result<UsageSnapshot> {
    let row = binds(sqlx::query(USAGE_SQL.as_str()), "", caller, now)
        .fetch_one(&mut *conn)
        .await?;
    snapshot(conn, caller, policy, &Counts::read(&row)?, now).await
}

/// Turns counts into windows, reading a probe only for a window over its limit.
async fn snapshot(
    conn: &mut SqliteConnection,
    caller: &Caller,
    policy: &TierPolicy,
    counts: &Counts,
    now: DateTime<Utc>,
) -> Result<UsageSnapshot> {
    let key = caller.key_id.to_string();
    let account = caller.account_id.to_string();
    let key_hour = rolling(
        conn,
        Scope::Key(&key),
        (counts.key_n, counts.key_oldest),
        policy.key_hourly_cold_limit,
        KEY_WINDOW,
        now,
    )
    .await?;
    let account_day = rolling(
        conn,
        Scope::Account(&account),
        (counts.day_n, counts.day_oldest),
        policy.account_daily_cold_limit,
        ACCOUNT_WINDOW,
        now,
    )
    .await?;
    Ok(UsageSnapshot {
        month: month_usage(counts.month_n, policy.monthly_cold_cap, now),
        key_hour,
        account_day,
        month_cost_micros: counts.month_cost,
    })
}

enum Scope<'a> {
    Key(&'a str),
    Account(&'a str),
}

async fn rolling(
    conn: &mut SqliteConnection,
    scope: Scope<'_>,
    (used, oldest): (u64, Option<i64>),
    limit: u64,
    window: Duration,
    now: DateTime<Utc>,
) -> Result<WindowUsage> {
    let offset = probe_offset(used, limit);
    let probe = if offset == 0 {
        oldest
    } else {
        // Over the limit (a lowered limit, or calls admitted under a higher one):
        // the call whose expiry brings the count below the limit.
        let (sql, id) = match scope {
            Scope::Key(id) => (
                "SELECT created_at FROM cold_calls WHERE key_id = ? AND created_at >= ? ORDER BY created_at LIMIT 1 OFFSET ?",
                id,
            ),
            Scope::Account(id) => (
                "SELECT created_at FROM cold_calls WHERE account_id = ? AND created_at >= ? ORDER BY created_at LIMIT 1 OFFSET ?",
                id,
            ),
        };
        sqlx::query_scalar(sql)
            .bind(id)
            .bind(rolling_since(now, window))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_optional(&mut *conn)
            .await?
    };
    Ok(rolling_usage(
        used,
        limit,
        probe.map(from_millis).transpose()?,
        window,
        now,
    ))
}

/// The domain's run in flight, which a new job joins.
pub(super) struct RunInFlight {
    run_id: String,
    running: bool,
}

/// What [`decide_on`] concluded.
pub(super) enum Decided {
    /// Answered without writing.
    Answered(Box<AdmissionOutcome>),
    /// To be admitted by [`admit`], in the same transaction.
    Admit {
        counts: Counts,
        run: Option<RunInFlight>,
    },
}

/// Decides on the facts `conn` sees, read in one statement.
pub(super) async fn decide_on(
    conn: &mut SqliteConnection,
    request: &AdmissionRequest,
) -> Result<Decided> {
    let row = binds(
        sqlx::query(FACTS_SQL.as_str()),
        request.domain.as_str(),
        &request.caller,
        request.now,
    )
    .fetch_one(&mut *conn)
    .await?;
    let counts = Counts::read(&row)?;
    let record_at: Option<i64> = row.try_get("record_at")?;
    let record_body: Option<String> = row.try_get("record_body")?;
    let in_flight: Option<String> = row.try_get("in_flight_job")?;
    let run_id: Option<String> = row.try_get("run_id")?;
    let run_status: Option<String> = row.try_get("run_status")?;

    let in_flight_job = in_flight
        .map(|id| {
            Uuid::parse_str(&id)
                .map_err(|e| crate::StoreError::Corrupt(format!("job_id {id:?}: {e}")))
        })
        .transpose()?;
    let usage = snapshot(conn, &request.caller, &request.policy, &counts, request.now).await?;
    let facts = AdmissionFacts {
        tier: request.caller.tier,
        policy: request.policy,
        force_fresh: request.force_fresh,
        newest_record_at: record_at.map(from_millis).transpose()?,
        in_flight_job,
        month: usage.month,
        key_hour: usage.key_hour,
        account_day: usage.account_day,
        now: request.now,
    };
    let decision = decide(&facts);
    let (record, job) = match decision {
        Decision::Admit => {
            let run = run_id.map(|run_id| RunInFlight {
                running: run_status.as_deref() == Some("running"),
                run_id,
            });
            return Ok(Decided::Admit { counts, run });
        }
        Decision::ServeFresh => (record_body.map(records::parse_cached).transpose()?, None),
        Decision::ExistingJob(job_id) => (
            None,
            get_job(&mut *conn, request.caller.account_id, job_id).await?,
        ),
        Decision::ForceFreshNotAllowed
        | Decision::FreeTierSandboxOnly
        | Decision::LimitReached(..) => (None, None),
    };
    Ok(Decided::Answered(Box::new(AdmissionOutcome {
        decision,
        record,
        job,
        usage,
    })))
}

/// Carries out an `Admit` inside the caller's write transaction: the job, its run
/// (shared per domain) and the cost-log row. Returns the outcome with the usage
/// after it, computed from the counts the decision read plus this call.
pub(super) async fn admit(
    conn: &mut SqliteConnection,
    request: &AdmissionRequest,
    counts: Counts,
    run: Option<RunInFlight>,
) -> Result<AdmissionOutcome> {
    let now = truncate(request.now);
    let now_ms = to_millis(now);
    let domain = request.domain.as_str();

    let (run_id, run_running) = match run {
        Some(run) => {
            if request.force_fresh {
                sqlx::query("UPDATE runs SET force_fresh = 1 WHERE run_id = ?")
                    .bind(&run.run_id)
                    .execute(&mut *conn)
                    .await?;
            }
            (run.run_id, run.running)
        }
        None => {
            let run_id = Uuid::new_v4().to_string();
            sqlx::query("INSERT INTO runs (run_id, domain, status, force_fresh, created_at) VALUES (?, ?, 'pending', ?, ?)")
                .bind(&run_id)
                .bind(domain)
                .bind(request.force_fresh)
                .bind(now_ms)
                .execute(&mut *conn)
                .await?;
            (run_id, false)
        }
    };

    // A job joining a run already under way is running from the moment it joins.
    let (status, started_at) = if run_running {
        (JobStatus::Running, Some(now))
    } else {
        (JobStatus::Pending, None)
    };
    let job = Job {
        job_id: Uuid::new_v4(),
        account_id: request.caller.account_id,
        domain: domain.to_owned(),
        status,
        created_at: now,
        started_at,
        finished_at: None,
        scored_at: None,
        failure_reason: None,
    };
    sqlx::query(
        "INSERT INTO jobs (job_id, account_id, key_id, run_id, domain, status, created_at, started_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(job.job_id.to_string())
    .bind(job.account_id.to_string())
    .bind(request.caller.key_id.to_string())
    .bind(&run_id)
    .bind(domain)
    .bind(status.as_str())
    .bind(now_ms)
    .bind(started_at.map(to_millis))
    .execute(&mut *conn)
    .await?;
    let cost = request.policy.cost_per_cold_call_micros;
    sqlx::query(
        "INSERT INTO cold_calls (account_id, key_id, job_id, domain, cost_micros, created_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(job.account_id.to_string())
    .bind(request.caller.key_id.to_string())
    .bind(job.job_id.to_string())
    .bind(domain)
    .bind(cost)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;

    let after = counts.plus_one(cost, now_ms);
    let usage = snapshot(conn, &request.caller, &request.policy, &after, request.now).await?;
    Ok(AdmissionOutcome {
        decision: Decision::Admit,
        record: None,
        job: Some(job),
        usage,
    })
}

pub(super) async fn get_job(
    conn: &mut SqliteConnection,
    account_id: Uuid,
    job_id: Uuid,
) -> Result<Option<Job>> {
    let sql = format!(
        "SELECT {} FROM jobs WHERE job_id = ? AND account_id = ?",
        super::rows::JOB_COLUMNS
    );
    let row = sqlx::query(&sql)
        .bind(job_id.to_string())
        .bind(account_id.to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(super::rows::job).transpose()
}
