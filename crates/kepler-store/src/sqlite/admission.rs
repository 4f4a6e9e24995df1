//! Usage windows, admission facts and the admission itself.

use std::sync::LazyLock;

use chrono::{DateTime, Duration, Utc};
use kepler_core::TierPolicy;
use kepler_core::admission::{
    ACCOUNT_WINDOW, AdmissionFacts, Decision, KEY_WINDOW, WindowUsage, decide,
};
use sqlx::sqlite::{SqliteArguments, SqliteConnection, SqliteRow};
use sqlx::{Row, Sqlite};
use uuid::Uuid;

use super::accounts;
use crate::hits::Fresh;
use crate::keys::PresentedKey;
use crate::served::{Held, RecordKey, ServedCache};
use crate::time::{from_millis, to_millis, truncate};
use crate::windows::{
    Bounds, Counts, count, month_usage, probe_offset, rolling_since, rolling_usage,
};
use crate::{AdmissionOutcome, AdmissionRequest, Ask, Caller, Job, Result, UsageSnapshot};

// Every statement is a round trip to the connection's own thread (that is how
// sqlx drives SQLite), and those hops, not SQLite's work, bound the request rate.
// So admission reads everything it needs in one statement: the usage windows
// (with each rolling window's oldest call, which is its probe unless the window
// is over its limit), the newest record, the caller's job in flight and the
// domain's run in flight. The windows read the rollups (see crate::windows), so
// the statement's cost does not grow with the cost log.
//
// Binds: ?1 domain, ?2 account (or, authenticating, the key's hash), ?3 key,
// ?4 month start, ?5 key-window start, ?6 its first whole hour, ?7 account-window
// start, ?8 its first whole hour, ?9 and ?10 the id and instant of the domain's
// record this process holds (crate::served).

/// The window figures as columns, for an account and a key given as SQL
/// expressions: binds, or the columns of the key row being authenticated.
fn window_columns(account: &str, key: &str) -> String {
    format!(
        "(SELECT COALESCE(SUM(calls), 0) FROM cold_call_days WHERE account_id = {account} AND day >= ?4) AS month_n, \
         (SELECT COALESCE(SUM(cost_micros), 0) FROM cold_call_days WHERE account_id = {account} AND day >= ?4) AS month_cost, \
         (SELECT COUNT(*) FROM cold_calls WHERE key_id = {key} AND created_at >= ?5 AND created_at < ?6) \
           + (SELECT COALESCE(SUM(calls), 0) FROM cold_call_key_hours WHERE key_id = {key} AND hour >= ?6) AS key_n, \
         (SELECT created_at FROM cold_calls WHERE key_id = {key} AND created_at >= ?5 ORDER BY created_at LIMIT 1) AS key_oldest, \
         (SELECT COUNT(*) FROM cold_calls WHERE account_id = {account} AND created_at >= ?7 AND created_at < ?8) \
           + (SELECT COALESCE(SUM(calls), 0) FROM cold_call_account_hours WHERE account_id = {account} AND hour >= ?8) AS day_n, \
         (SELECT created_at FROM cold_calls WHERE account_id = {account} AND created_at >= ?7 ORDER BY created_at LIMIT 1) AS day_oldest"
    )
}

/// The admission facts beyond the windows, for an account given as an SQL expression.
fn fact_columns(account: &str) -> String {
    format!(
        "r.scored_at AS record_at, r.record_id AS record_id, \
         CASE WHEN r.record_id = ?9 AND r.scored_at = ?10 THEN NULL \
           ELSE (SELECT COALESCE(served, json_set(body, '$.cached', json('true'))) FROM records WHERE record_id = r.record_id) \
         END AS record_served, {}",
        flight_columns(account)
    )
}

/// The caller's job in flight and the domain's run in flight.
fn flight_columns(account: &str) -> String {
    format!(
        "(SELECT job_id FROM jobs WHERE account_id = {account} AND domain = ?1 AND status IN ('pending', 'running') LIMIT 1) AS in_flight_job, \
         (SELECT run_id FROM runs WHERE domain = ?1 AND status IN ('pending', 'running')) AS run_id, \
         (SELECT status FROM runs WHERE domain = ?1 AND status IN ('pending', 'running')) AS run_status"
    )
}

// The newest record's id and instant, read from the index alone. Its text is
// read (by `fact_columns`) only when it is not the one this process holds;
// `served` is derived from `body` for a row an older release wrote (see the
// migration).
const NEWEST_RECORD: &str = "LEFT JOIN (SELECT scored_at, record_id \
     FROM records WHERE domain = ?1 ORDER BY scored_at DESC, record_id DESC LIMIT 1) AS r ON 1";

// Assembled once, not on every request.
static USAGE_SQL: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {}", window_columns("?2", "?3")));

static FACTS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {}, {} FROM (SELECT 1) {NEWEST_RECORD}",
        window_columns("?2", "?3"),
        fact_columns("?2")
    )
});

/// The facts an admission is written on, for [`super::admissions`]: the columns
/// of `FACTS_SQL` (`FACT_COLUMNS`, in order) but the served record's
/// text, which only a cached hit reads. Binds ?1–?8 as `FACTS_SQL`.
pub(super) static WRITE_FACTS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {}, r.scored_at AS record_at, r.record_id AS record_id, NULL AS record_served, {} \
         FROM (SELECT 1) {NEWEST_RECORD}",
        window_columns("?2", "?3"),
        flight_columns("?2")
    )
});

/// The key row and, for it, every admission fact: a cached hit is one statement.
pub(super) static AUTH_FACTS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT k.key_id, k.account_id, k.sandbox, k.key_hash, k.revoked_at, a.tier, {}, {} \
         FROM api_keys k JOIN accounts a ON a.account_id = k.account_id {NEWEST_RECORD} \
         WHERE k.key_hash = ?2",
        window_columns("k.account_id", "k.key_id"),
        fact_columns("k.account_id")
    )
});

fn read_counts(row: &SqliteRow) -> Result<Counts> {
    Ok(Counts {
        month_n: count(row.try_get("month_n")?),
        month_cost: row.try_get("month_cost")?,
        key_n: count(row.try_get("key_n")?),
        key_oldest: row.try_get("key_oldest")?,
        day_n: count(row.try_get("day_n")?),
        day_oldest: row.try_get("day_oldest")?,
    })
}

fn binds<'q>(
    query: sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>,
    domain: &'q str,
    account: String,
    key: String,
    now: DateTime<Utc>,
) -> sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>> {
    let b = Bounds::at(now);
    query
        .bind(domain)
        .bind(account)
        .bind(key)
        .bind(b.month)
        .bind(b.key_since)
        .bind(b.key_edge)
        .bind(b.day_since)
        .bind(b.day_edge)
}

fn caller_binds<'q>(
    query: sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>,
    domain: &'q str,
    caller: &Caller,
    now: DateTime<Utc>,
) -> sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>> {
    binds(
        query,
        domain,
        caller.account_id.to_string(),
        caller.key_id.to_string(),
        now,
    )
}

/// The three windows of a key and its account at `now`, and the month's cost.
pub(super) async fn usage(
    conn: &mut SqliteConnection,
    caller: &Caller,
    policy: &TierPolicy,
    now: DateTime<Utc>,
) -> Result<UsageSnapshot> {
    let row = caller_binds(sqlx::query(USAGE_SQL.as_str()), "", caller, now)
        .fetch_one(&mut *conn)
        .await?;
    snapshot(conn, caller, policy, &read_counts(&row)?, now).await
}

/// The windows the counts give when neither rolling window is over its limit:
/// each one's oldest call is then its probe, so nothing more is read. `None`
/// when a probe must be read.
pub(super) fn usage_without_probes(
    counts: &Counts,
    policy: &TierPolicy,
    now: DateTime<Utc>,
) -> Result<Option<UsageSnapshot>> {
    if probe_offset(counts.key_n, policy.key_hourly_cold_limit) != 0
        || probe_offset(counts.day_n, policy.account_daily_cold_limit) != 0
    {
        return Ok(None);
    }
    let rolling = |used, oldest: Option<i64>, limit, window| -> Result<WindowUsage> {
        let probe = oldest.map(from_millis).transpose()?;
        Ok(rolling_usage(used, limit, probe, window, now))
    };
    Ok(Some(UsageSnapshot {
        month: month_usage(counts.month_n, policy.monthly_cold_cap, now),
        key_hour: rolling(
            counts.key_n,
            counts.key_oldest,
            policy.key_hourly_cold_limit,
            KEY_WINDOW,
        )?,
        account_day: rolling(
            counts.day_n,
            counts.day_oldest,
            policy.account_daily_cold_limit,
            ACCOUNT_WINDOW,
        )?,
        month_cost_micros: counts.month_cost,
    }))
}

/// Turns counts into windows, reading a probe only for a window over its limit.
async fn snapshot(
    conn: &mut SqliteConnection,
    caller: &Caller,
    policy: &TierPolicy,
    counts: &Counts,
    now: DateTime<Utc>,
) -> Result<UsageSnapshot> {
    if let Some(usage) = usage_without_probes(counts, policy, now)? {
        return Ok(usage);
    }
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

impl RunInFlight {
    /// From the `run_id` and `run_status` fact columns.
    pub(super) fn from_columns(
        run_id: Option<String>,
        status: Option<&str>,
    ) -> Option<RunInFlight> {
        run_id.map(|run_id| RunInFlight {
            running: status == Some("running"),
            run_id,
        })
    }
}

/// What an admission is decided on, once its windows are known.
fn admission_facts(
    request: &AdmissionRequest,
    usage: &UsageSnapshot,
    newest_record_at: Option<DateTime<Utc>>,
    in_flight_job: Option<Uuid>,
) -> AdmissionFacts {
    AdmissionFacts {
        tier: request.caller.tier,
        policy: request.policy,
        force_fresh: request.force_fresh,
        newest_record_at,
        in_flight_job,
        month: usage.month,
        key_hour: usage.key_hour,
        account_day: usage.account_day,
        now: request.now,
    }
}

/// A job id read back from the store.
fn parse_job_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|e| crate::StoreError::Corrupt(format!("job_id {id:?}: {e}")))
}

/// What [`decide_on`] concluded.
pub(super) enum Decided {
    /// Answered without writing.
    Answered(Box<AdmissionOutcome>),
    /// A cached hit, with the facts it was decided on (for [`crate::hits`]).
    Fresh(Box<Fresh>),
    /// To be admitted by [`admit`], in the same transaction.
    Admit {
        counts: Counts,
        run: Option<RunInFlight>,
    },
}

impl Decided {
    /// The answer, when no write is needed.
    pub(super) fn into_answer(self) -> Option<AdmissionOutcome> {
        match self {
            Decided::Answered(outcome) => Some(*outcome),
            Decided::Fresh(fresh) => Some(fresh.outcome),
            Decided::Admit { .. } => None,
        }
    }
}

/// Decides on the facts `conn` sees, read in one statement.
pub(super) async fn decide_on(
    conn: &mut SqliteConnection,
    request: &AdmissionRequest,
    served: &ServedCache,
) -> Result<Decided> {
    let held = served.held(request.domain.as_str());
    let row = caller_binds(
        sqlx::query(FACTS_SQL.as_str()),
        request.domain.as_str(),
        &request.caller,
        request.now,
    )
    .bind(held.as_ref().map(|h| h.key.id))
    .bind(held.as_ref().map(|h| h.key.scored_at))
    .fetch_one(&mut *conn)
    .await?;
    decide_from(conn, request, &row, served, held.as_ref()).await
}

/// Authenticates `presented` and, for a live key, decides on `ask` in the same
/// statement (a snapshot: the caller's write path decides again under the lock).
/// `None` when the key is unknown or revoked.
pub(super) async fn authenticate_and_decide(
    conn: &mut SqliteConnection,
    presented: &PresentedKey,
    ask: &Ask<'_>,
    served: &ServedCache,
) -> Result<Option<(Caller, Option<Decided>)>> {
    if !presented.well_formed {
        return Ok(None);
    }
    let held = served.held(ask.domain.as_str());
    let row = binds(
        sqlx::query(AUTH_FACTS_SQL.as_str()),
        ask.domain.as_str(),
        presented.hash.clone(),
        String::new(),
        ask.now,
    )
    .bind(held.as_ref().map(|h| h.key.id))
    .bind(held.as_ref().map(|h| h.key.scored_at))
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let Some(caller) = accounts::caller_from(&row, &presented.hash)? else {
        return Ok(None);
    };
    if caller.sandbox {
        return Ok(Some((caller, None)));
    }
    let request = ask.request(&caller);
    let decided = decide_from(conn, &request, &row, served, held.as_ref()).await?;
    Ok(Some((caller, Some(decided))))
}

/// The columns [`FactRow::from_rusqlite`] reads, in their order (a test checks
/// the statements against it).
#[cfg(test)]
pub(super) const FACT_COLUMNS: [&str; 12] = [
    "month_n",
    "month_cost",
    "key_n",
    "key_oldest",
    "day_n",
    "day_oldest",
    "record_at",
    "record_id",
    "record_served",
    "in_flight_job",
    "run_id",
    "run_status",
];

/// The admission facts of one snapshot row, beyond the windows' counts.
pub(super) struct FactRow {
    pub counts: Counts,
    pub record_at: Option<i64>,
    pub record_id: Option<i64>,
    /// The newest record's text, when it is not the one this process holds.
    pub record_served: Option<String>,
    pub in_flight_job: Option<String>,
    pub run_id: Option<String>,
    pub run_status: Option<String>,
}

impl FactRow {
    /// From a rusqlite row of `AUTH_FACTS_SQL` or `WRITE_FACTS_SQL`, whose
    /// columns from `first` on are `FACT_COLUMNS`. By position: finding a
    /// column by name compares it with every column's name, which was a tenth
    /// of the admission writer's time.
    pub(super) fn from_rusqlite(
        row: &rusqlite::Row<'_>,
        first: usize,
    ) -> rusqlite::Result<FactRow> {
        Ok(FactRow {
            counts: Counts {
                month_n: count(row.get(first)?),
                month_cost: row.get(first + 1)?,
                key_n: count(row.get(first + 2)?),
                key_oldest: row.get(first + 3)?,
                day_n: count(row.get(first + 4)?),
                day_oldest: row.get(first + 5)?,
            },
            record_at: row.get(first + 6)?,
            record_id: row.get(first + 7)?,
            record_served: row.get(first + 8)?,
            in_flight_job: row.get(first + 9)?,
            run_id: row.get(first + 10)?,
            run_status: row.get(first + 11)?,
        })
    }

    /// The decision on these facts once the windows are known, and the
    /// caller's job in flight they name.
    pub(super) fn decision(
        &self,
        request: &AdmissionRequest,
        usage: &UsageSnapshot,
    ) -> Result<(Decision, Option<Uuid>)> {
        let newest_record_at = self.record_at.map(from_millis).transpose()?;
        let in_flight_job = self
            .in_flight_job
            .as_deref()
            .map(parse_job_id)
            .transpose()?;
        let facts = admission_facts(request, usage, newest_record_at, in_flight_job);
        Ok((decide(&facts), in_flight_job))
    }

    fn from_sqlx(row: &SqliteRow) -> Result<FactRow> {
        Ok(FactRow {
            counts: read_counts(row)?,
            record_at: row.try_get("record_at")?,
            record_id: row.try_get("record_id")?,
            record_served: row.try_get("record_served")?,
            in_flight_job: row.try_get("in_flight_job")?,
            run_id: row.try_get("run_id")?,
            run_status: row.try_get("run_status")?,
        })
    }
}

async fn decide_from(
    conn: &mut SqliteConnection,
    request: &AdmissionRequest,
    row: &SqliteRow,
    served: &ServedCache,
    held: Option<&Held>,
) -> Result<Decided> {
    let facts = FactRow::from_sqlx(row)?;
    let usage = snapshot(
        conn,
        &request.caller,
        &request.policy,
        &facts.counts,
        request.now,
    )
    .await?;
    match decide_known(request, facts, usage, served, held)? {
        Known::Decided(decided) => Ok(decided),
        Known::ExistingJob { job_id, usage } => {
            let job = get_job(&mut *conn, request.caller.account_id, job_id).await?;
            Ok(Decided::Answered(Box::new(AdmissionOutcome {
                decision: Decision::ExistingJob(job_id),
                record: None,
                job,
                usage,
            })))
        }
    }
}

/// Decides on a snapshot row without reading more, when its windows need no
/// probe read and the answer is not a job in flight (which would need the
/// job's row). `None` when it needs such a read.
pub(super) fn decide_without_reads(
    request: &AdmissionRequest,
    facts: FactRow,
    served: &ServedCache,
    held: Option<&Held>,
) -> Result<Option<Decided>> {
    let Some(usage) = usage_without_probes(&facts.counts, &request.policy, request.now)? else {
        return Ok(None);
    };
    Ok(match decide_known(request, facts, usage, served, held)? {
        Known::Decided(decided) => Some(decided),
        Known::ExistingJob { .. } => None,
    })
}

/// What [`decide_known`] concluded.
enum Known {
    Decided(Decided),
    /// The caller's job in flight answers; its row is still to be read.
    ExistingJob {
        job_id: Uuid,
        usage: UsageSnapshot,
    },
}

/// The decision on a snapshot row once its windows are known.
fn decide_known(
    request: &AdmissionRequest,
    facts: FactRow,
    usage: UsageSnapshot,
    served: &ServedCache,
    held: Option<&Held>,
) -> Result<Known> {
    let (decision, in_flight_job) = facts.decision(request, &usage)?;
    let record = match decision {
        Decision::Admit => {
            let run = RunInFlight::from_columns(facts.run_id, facts.run_status.as_deref());
            return Ok(Known::Decided(Decided::Admit {
                counts: facts.counts,
                run,
            }));
        }
        Decision::ServeFresh => {
            let newest = (facts.record_id, facts.record_at);
            let record = served.resolve(request.domain.as_str(), held, newest, facts.record_served);
            if let Some(newest) = RecordKey::from_columns(facts.record_id, facts.record_at) {
                let fresh = Fresh::serve(record, usage, facts.counts, newest, in_flight_job);
                return Ok(Known::Decided(Decided::Fresh(fresh)));
            }
            record
        }
        Decision::ExistingJob(job_id) => return Ok(Known::ExistingJob { job_id, usage }),
        Decision::ForceFreshNotAllowed
        | Decision::FreeTierSandboxOnly
        | Decision::LimitReached(..) => None,
    };
    Ok(Known::Decided(Decided::Answered(Box::new(
        AdmissionOutcome {
            decision,
            record,
            job: None,
            usage,
        },
    ))))
}

/// The writes of an admission: the run (created, or joined: a `force_fresh`
/// join marks it), the job and the cost-log row. Binds: ?1 run, ?2 domain,
/// ?3 force_fresh, ?4 now, ?5 whether the run is new, ?6 job, ?7 account, ?8 key,
/// ?9 job status, ?10 started_at, ?11 cost.
pub(super) const ADMIT_STATEMENTS: [&str; 4] = [
    "INSERT INTO runs (run_id, domain, status, force_fresh, created_at) \
       SELECT ?1, ?2, 'pending', ?3, ?4 WHERE ?5",
    "UPDATE runs SET force_fresh = 1 WHERE run_id = ?1 AND ?3 AND NOT ?5",
    "INSERT INTO jobs (job_id, account_id, key_id, run_id, domain, status, created_at, started_at) \
       VALUES (?6, ?7, ?8, ?1, ?2, ?9, ?4, ?10)",
    "INSERT INTO cold_calls (account_id, key_id, job_id, domain, cost_micros, created_at) \
       VALUES (?7, ?8, ?6, ?2, ?11, ?4)",
];

/// The four as one batch, so the writer's transaction makes one round trip to
/// sqlx's SQLite thread for them, not four.
static ADMIT_SQL: LazyLock<String> = LazyLock::new(|| ADMIT_STATEMENTS.join("; "));

/// An admission about to be written: what [`ADMIT_STATEMENTS`] bind.
pub(super) struct Planned {
    pub run_id: String,
    pub new_run: bool,
    pub job: Job,
    pub key_id: String,
    pub account_id: String,
    pub cost_micros: i64,
    pub now_ms: i64,
}

impl Planned {
    /// The job, its run (the domain's run in flight, else a new one) and its cost.
    pub(super) fn new(request: &AdmissionRequest, run: Option<RunInFlight>) -> Planned {
        let now = truncate(request.now);
        let (run_id, new_run, run_running) = match run {
            Some(run) => (run.run_id, false, run.running),
            None => (crate::jobs::new_id().to_string(), true, false),
        };
        Planned {
            run_id,
            new_run,
            job: crate::jobs::admitted(crate::jobs::new_id(), request, now, run_running),
            key_id: request.caller.key_id.to_string(),
            account_id: request.caller.account_id.to_string(),
            cost_micros: request.policy.cost_per_cold_call_micros,
            now_ms: to_millis(now),
        }
    }

    /// The counts once this call is written: those the decision read plus one.
    pub(super) fn counts_after(&self, counts: &Counts) -> Counts {
        counts.plus_one(self.cost_micros, self.now_ms)
    }

    /// The outcome once written, with the usage after it.
    pub(super) fn into_outcome(self, usage: UsageSnapshot) -> AdmissionOutcome {
        AdmissionOutcome {
            decision: Decision::Admit,
            record: None,
            job: Some(self.job),
            usage,
        }
    }
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
    let planned = Planned::new(request, run);
    let job = &planned.job;
    sqlx::query(ADMIT_SQL.as_str())
        .bind(&planned.run_id)
        .bind(&job.domain)
        .bind(request.force_fresh)
        .bind(planned.now_ms)
        .bind(planned.new_run)
        .bind(job.job_id.to_string())
        .bind(&planned.account_id)
        .bind(&planned.key_id)
        .bind(job.status.as_str())
        .bind(job.started_at.map(to_millis))
        .bind(planned.cost_micros)
        .execute(&mut *conn)
        .await?;
    let after = planned.counts_after(&counts);
    let usage = snapshot(conn, &request.caller, &request.policy, &after, request.now).await?;
    Ok(planned.into_outcome(usage))
}

pub(super) async fn get_job(
    conn: &mut SqliteConnection,
    account_id: Uuid,
    job_id: Uuid,
) -> Result<Option<Job>> {
    let sql = format!(
        "SELECT {} FROM {} WHERE j.job_id = ? AND j.account_id = ?",
        crate::jobs::JOB_COLUMNS,
        crate::jobs::JOBS_WITH_RUNS
    );
    let row = sqlx::query(&sql)
        .bind(job_id.to_string())
        .bind(account_id.to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(super::rows::job).transpose()
}
