//! Usage windows, admission facts and the admission itself.
//!
//! Exactness across processes comes from one row lock: `admit` locks the
//! account's row (`FOR NO KEY UPDATE`) before reading the facts, so the
//! admissions of one account run one after another, each reading (in READ
//! COMMITTED, a fresh snapshot per statement) every call the previous one wrote.
//! All three windows belong to one account, so that one lock covers them.
//!
//! SERIALIZABLE transactions retried on conflict were tried instead and were
//! slower: 300 concurrent admissions took 1.2x as long on one account and 3x
//! across 30 accounts (predicate locks conflict across accounts too), with
//! about seven retries per admission.

use std::sync::LazyLock;

use chrono::{DateTime, Duration, Utc};
use kepler_core::TierPolicy;
use kepler_core::admission::{
    ACCOUNT_WINDOW, AdmissionFacts, Decision, KEY_WINDOW, WindowUsage, decide,
};
use sqlx::postgres::{PgArguments, PgConnection, PgRow};
use sqlx::{Postgres, Row};
use uuid::Uuid;

use super::accounts;
use super::admissions::{self, AdmissionBatches, AdmitCall, Unbatched};
use crate::hits::Fresh;
use crate::keys::PresentedKey;
use crate::served::{Held, RecordKey, ServedCache};
use crate::time::{from_millis, to_millis, truncate};
use crate::windows::{
    Bounds, Counts, count, month_usage, probe_offset, rolling_since, rolling_usage,
};
use crate::{
    AdmissionOutcome, AdmissionRequest, Ask, Caller, Job, Result, StoreError, UsageSnapshot,
};

// Every statement is a network round trip, so the facts are read in one: the
// usage windows (from the rollups, see crate::windows; each rolling window with
// its oldest call, its probe unless it is over its limit), the newest record and
// the caller's job in flight. One statement is also one snapshot, so reads need
// no explicit transaction.
//
// Binds: $1 domain, $2 account (or, authenticating, the key's hash), $3 month
// start, $4 key-window start, $5 its first whole hour, $6 account-window start,
// $7 its first whole hour, $8 key (not bound when authenticating), then the id
// and instant of the domain's record this process holds (crate::served): $9
// and $10, or $8 and $9 when authenticating.

/// The window figures as columns, for an account and a key given as SQL
/// expressions: binds, or the columns of the key row being authenticated.
fn window_columns(account: &str, key: &str) -> String {
    format!(
        "(SELECT COALESCE(SUM(calls), 0)::BIGINT FROM cold_call_days WHERE account_id = {account} AND day >= $3) AS month_n, \
         (SELECT COALESCE(SUM(cost_micros), 0)::BIGINT FROM cold_call_days WHERE account_id = {account} AND day >= $3) AS month_cost, \
         (SELECT COUNT(*) FROM cold_calls WHERE key_id = {key} AND created_at >= $4 AND created_at < $5) \
           + (SELECT COALESCE(SUM(calls), 0)::BIGINT FROM cold_call_key_hours WHERE key_id = {key} AND hour >= $5) AS key_n, \
         (SELECT created_at FROM cold_calls WHERE key_id = {key} AND created_at >= $4 ORDER BY created_at LIMIT 1) AS key_oldest, \
         (SELECT COUNT(*) FROM cold_calls WHERE account_id = {account} AND created_at >= $6 AND created_at < $7) \
           + (SELECT COALESCE(SUM(calls), 0)::BIGINT FROM cold_call_account_hours WHERE account_id = {account} AND hour >= $7) AS day_n, \
         (SELECT created_at FROM cold_calls WHERE account_id = {account} AND created_at >= $6 ORDER BY created_at LIMIT 1) AS day_oldest"
    )
}

/// The admission facts beyond the windows, for an account given as an SQL
/// expression. The newest record's text is sent only when it is not the one
/// this process holds (`held_id`, `held_at`: binds): the lateral row carries the column
/// still toasted, and a `CASE` branch not taken never reads it.
fn fact_columns(account: &str, (held_id, held_at): (&str, &str)) -> String {
    format!(
        "r.scored_at AS record_at, r.record_id AS record_id, \
         CASE WHEN r.record_id = {held_id} AND r.scored_at = {held_at} THEN NULL ELSE r.served END AS record_served, \
         (SELECT job_id FROM jobs WHERE account_id = {account} AND domain = $1 AND status IN ('pending', 'running') LIMIT 1) AS in_flight_job"
    )
}

// `served` is derived from `body` for a row an older release wrote (see the migration).
const NEWEST_RECORD: &str = "LEFT JOIN LATERAL (SELECT scored_at, record_id, COALESCE(served, jsonb_set(body, '{cached}', 'true')::text) AS served \
     FROM records WHERE domain = $1 ORDER BY scored_at DESC, record_id DESC LIMIT 1) AS r ON TRUE";

// Assembled once, not on every request. The usage statement names $1 so that
// every statement has the same binds.
static USAGE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} WHERE $1::TEXT IS NOT NULL",
        window_columns("$2", "$8")
    )
});

static FACTS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {}, {} FROM (SELECT 1) AS one {NEWEST_RECORD}",
        window_columns("$2", "$8"),
        fact_columns("$2", ("$9", "$10"))
    )
});

/// The key row and, for it, every admission fact: a cached hit is one statement.
static AUTH_FACTS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT k.key_id, k.account_id, k.sandbox, k.key_hash, k.revoked_at, a.tier, {COLD_CALL_CHANGES}, {}, {} \
         FROM api_keys k JOIN accounts a ON a.account_id = k.account_id {NEWEST_RECORD} \
         WHERE k.key_hash = $2",
        window_columns("k.account_id", "k.key_id"),
        fact_columns("k.account_id", ("$8", "$9"))
    )
});

/// What a remembered cached hit is checked against (crate::hits): the key row,
/// the account's cold-call counter and the domain's newest record, from their
/// indexes alone. Binds: $1 domain, $2 the key's hash.
static HIT_STAMP_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT k.key_id, k.account_id, k.sandbox, k.key_hash, k.revoked_at, a.tier, \
         {COLD_CALL_CHANGES}, r.record_id, r.scored_at AS record_at \
         FROM api_keys k JOIN accounts a ON a.account_id = k.account_id \
         LEFT JOIN LATERAL (SELECT record_id, scored_at FROM records WHERE domain = $1 \
           ORDER BY scored_at DESC, record_id DESC LIMIT 1) AS r ON TRUE \
         WHERE k.key_hash = $2"
    )
});

/// The account's cost-log change counter (migration 20261129001100), as a
/// column of a statement whose key row is `k`: 0 before its first call.
pub(super) const COLD_CALL_CHANGES: &str = "COALESCE((SELECT changes FROM cold_call_changes \
     WHERE account_id = k.account_id), 0) AS cold_call_changes";

/// Under which facts a cached hit was read on PostgreSQL: equal stamps, with
/// the same caller, mean the same windows and record (crate::hits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct HitStamp {
    cold_call_changes: i64,
    newest: Option<RecordKey>,
}

/// The caller and stamp of `presented` now, for a remembered hit; `None` when
/// the key is unknown or revoked.
pub(super) async fn hit_stamp(
    conn: &mut PgConnection,
    key_hash: &str,
    domain: &str,
) -> Result<Option<(Caller, HitStamp)>> {
    let Some(row) = sqlx::query(HIT_STAMP_SQL.as_str())
        .bind(domain)
        .bind(key_hash)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let Some(caller) = accounts::caller_from(&row, key_hash)? else {
        return Ok(None);
    };
    Ok(Some((caller, stamp_from(&row)?)))
}

/// The stamp columns `cold_call_changes`, `record_id` and `record_at` of a row
/// of [`HIT_STAMP_SQL`], [`AUTH_FACTS_SQL`] or the batched checks' statement.
pub(super) fn stamp_from(row: &PgRow) -> Result<HitStamp> {
    Ok(HitStamp {
        cold_call_changes: row.try_get("cold_call_changes")?,
        newest: RecordKey::from_columns(row.try_get("record_id")?, row.try_get("record_at")?),
    })
}

fn binds<'q, T>(
    query: sqlx::query::Query<'q, Postgres, PgArguments>,
    domain: &'q str,
    account_or_hash: T,
    now: DateTime<Utc>,
) -> sqlx::query::Query<'q, Postgres, PgArguments>
where
    T: 'q + Send + sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres>,
{
    let b = Bounds::at(now);
    query
        .bind(domain)
        .bind(account_or_hash)
        .bind(b.month)
        .bind(b.key_since)
        .bind(b.key_edge)
        .bind(b.day_since)
        .bind(b.day_edge)
}

fn read_counts(row: &PgRow) -> Result<Counts> {
    Ok(Counts {
        month_n: count(row.try_get("month_n")?),
        month_cost: row.try_get("month_cost")?,
        key_n: count(row.try_get("key_n")?),
        key_oldest: row.try_get("key_oldest")?,
        day_n: count(row.try_get("day_n")?),
        day_oldest: row.try_get("day_oldest")?,
    })
}

/// The three windows of a key and its account at `now`, and the month's cost.
pub(super) async fn usage(
    conn: &mut PgConnection,
    caller: &Caller,
    policy: &TierPolicy,
    now: DateTime<Utc>,
) -> Result<UsageSnapshot> {
    let row = binds(sqlx::query(USAGE_SQL.as_str()), "", caller.account_id, now)
        .bind(caller.key_id)
        .fetch_one(&mut *conn)
        .await?;
    snapshot(conn, caller, policy, &read_counts(&row)?, now).await
}

/// Turns counts into windows, reading a probe only for a window over its limit.
async fn snapshot(
    conn: &mut PgConnection,
    caller: &Caller,
    policy: &TierPolicy,
    counts: &Counts,
    now: DateTime<Utc>,
) -> Result<UsageSnapshot> {
    let key_hour = rolling(
        conn,
        Scope::Key(caller.key_id),
        (counts.key_n, counts.key_oldest),
        policy.key_hourly_cold_limit,
        KEY_WINDOW,
        now,
    )
    .await?;
    let account_day = rolling(
        conn,
        Scope::Account(caller.account_id),
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

enum Scope {
    Key(Uuid),
    Account(Uuid),
}

async fn rolling(
    conn: &mut PgConnection,
    scope: Scope,
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
        // the call whose expiry brings the count below the limit. Fixed SQL per
        // scope, each served by its own index.
        let (sql, id) = match scope {
            Scope::Key(id) => (
                "SELECT created_at FROM cold_calls WHERE key_id = $1 AND created_at >= $2 ORDER BY created_at LIMIT 1 OFFSET $3",
                id,
            ),
            Scope::Account(id) => (
                "SELECT created_at FROM cold_calls WHERE account_id = $1 AND created_at >= $2 ORDER BY created_at LIMIT 1 OFFSET $3",
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

/// What [`decide_on`] concluded.
pub(super) enum Decided {
    /// Answered without writing.
    Answered(Box<AdmissionOutcome>),
    /// A cached hit, with the facts it was decided on (for [`crate::hits`]).
    Fresh(Box<Fresh>),
    /// To be admitted by [`admit`]: the facts it was decided on.
    Admit(Seen),
}

/// The facts an `Admit` was decided on, which [`admit`] checks again under the
/// account's lock.
pub(super) struct Seen {
    counts: Counts,
    record_at: Option<i64>,
}

/// Decides on the facts `conn` sees, read in one statement.
pub(super) async fn decide_on(
    conn: &mut PgConnection,
    request: &AdmissionRequest,
    served: &ServedCache,
) -> Result<Decided> {
    let held = served.held(request.domain.as_str());
    let row = binds(
        sqlx::query(FACTS_SQL.as_str()),
        request.domain.as_str(),
        request.caller.account_id,
        request.now,
    )
    .bind(request.caller.key_id)
    .bind(held.as_ref().map(|h| h.key.id))
    .bind(held.as_ref().map(|h| h.key.scored_at))
    .fetch_one(&mut *conn)
    .await?;
    decide_from(conn, request, &row, served, held.as_ref()).await
}

/// Authenticates `presented` and, for a live key, decides on `ask` in the same
/// statement (a snapshot: [`admit`] checks an `Admit` again under the account's lock).
/// `None` when the key is unknown or revoked.
pub(super) async fn authenticate_and_decide(
    conn: &mut PgConnection,
    presented: &PresentedKey,
    ask: &Ask<'_>,
    served: &ServedCache,
) -> Result<Option<(Caller, Option<Decided>, HitStamp)>> {
    if !presented.well_formed {
        return Ok(None);
    }
    let held = served.held(ask.domain.as_str());
    let row = binds(
        sqlx::query(AUTH_FACTS_SQL.as_str()),
        ask.domain.as_str(),
        presented.hash.clone(),
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
    let stamp = stamp_from(&row)?;
    if caller.sandbox {
        return Ok(Some((caller, None, stamp)));
    }
    let decided = decide_from(conn, &ask.request(&caller), &row, served, held.as_ref()).await?;
    Ok(Some((caller, Some(decided), stamp)))
}

async fn decide_from(
    conn: &mut PgConnection,
    request: &AdmissionRequest,
    row: &PgRow,
    served: &ServedCache,
    held: Option<&Held>,
) -> Result<Decided> {
    let counts = read_counts(row)?;
    let record_at: Option<i64> = row.try_get("record_at")?;
    let in_flight_job: Option<Uuid> = row.try_get("in_flight_job")?;
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
        Decision::Admit => return Ok(Decided::Admit(Seen { counts, record_at })),
        Decision::ServeFresh => {
            let record_id: Option<i64> = row.try_get("record_id")?;
            let sent = row.try_get("record_served")?;
            let record =
                served.resolve(request.domain.as_str(), held, (record_id, record_at), sent);
            if let Some(newest) = RecordKey::from_columns(record_id, record_at) {
                let fresh = Fresh::serve(record, usage, counts, newest, in_flight_job);
                return Ok(Decided::Fresh(fresh));
            }
            (record, None)
        }
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

/// How often an admission decides again when its facts changed before its lock.
/// Other admissions only raise the counts, which `kepler_admit` compares with
/// the limits themselves, so a retry needs a new job in flight or a new record.
const ADMIT_ATTEMPTS: usize = 5;

/// Answers a decision made on a snapshot; an `Admit` is written by [`admit`],
/// which checks it again under the account's lock, and decided again when the
/// facts changed in between. An answer read without the lock (a fresh record, a
/// limit already reached, a job in flight) stays true for this `now`: records and
/// cost-log rows are only ever added.
pub(super) async fn carry_out(
    conn: &mut PgConnection,
    batches: &AdmissionBatches,
    request: &AdmissionRequest,
    mut decided: Decided,
    served: &ServedCache,
) -> Result<AdmissionOutcome> {
    let mut attempts = 0;
    loop {
        let seen = match decided {
            Decided::Answered(outcome) => return Ok(*outcome),
            Decided::Fresh(fresh) => return Ok(fresh.outcome),
            Decided::Admit(seen) => seen,
        };
        if let Some(outcome) = admit(conn, batches, request, seen).await? {
            return Ok(outcome);
        }
        attempts += 1;
        if attempts == ADMIT_ATTEMPTS {
            return Err(StoreError::Unavailable(format!(
                "the facts of {} kept changing under this admission; try again",
                request.domain.as_str()
            )));
        }
        decided = decide_on(conn, request, served).await?;
    }
}

/// The limit a window's count must stay under, as `kepler_admit` compares it.
fn sql_limit(limit: u64) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Carries out an `Admit` decided on `seen`, in one call that commits on its own
/// (`kepler_admit`, migration 20261129000800): under the account's lock it checks
/// that the decision still holds, then writes the run (shared per domain), the job
/// and the cost-log row. `None` when the facts changed so that the decision must
/// be made again; returns the outcome with the usage after the call otherwise.
async fn admit(
    conn: &mut PgConnection,
    batches: &AdmissionBatches,
    request: &AdmissionRequest,
    seen: Seen,
) -> Result<Option<AdmissionOutcome>> {
    let now = truncate(request.now);
    let now_ms = to_millis(now);
    let domain = request.domain.as_str();
    let policy = &request.policy;
    let cost = policy.cost_per_cold_call_micros;
    let job_id = crate::jobs::new_id();
    let call = AdmitCall {
        account: request.caller.account_id,
        key: request.caller.key_id,
        domain: domain.to_owned(),
        bounds: Bounds::at(request.now),
        month_limit: sql_limit(policy.monthly_cold_cap),
        key_limit: sql_limit(policy.key_hourly_cold_limit),
        day_limit: sql_limit(policy.account_daily_cold_limit),
        record_at: seen.record_at,
        job_id,
        run_id: crate::jobs::new_id(),
        force_fresh: request.force_fresh,
        now_ms,
        cost,
    };
    let row = match batches.admit(call.clone()).await {
        Ok(answer) => answer,
        Err(Unbatched) => admissions::admit_alone(conn, &call).await?,
    };
    match row.outcome.as_str() {
        "admitted" => {}
        "changed" => return Ok(None),
        "no_account" => return Err(StoreError::NotFound("account")),
        "busy" => {
            return Err(StoreError::Unavailable(format!(
                "the run of {domain} kept changing under this admission; try again"
            )));
        }
        other => {
            return Err(StoreError::Corrupt(format!(
                "kepler_admit answered {other:?}"
            )));
        }
    }
    let job = crate::jobs::admitted(job_id, request, now, admitted_column(row.run_running)?);
    // The usage after this call: the counts read under the lock plus this call.
    // The rolling windows' oldest calls (which only date their resets) are the
    // ones the decision saw, or this call if it saw none.
    let locked = Counts {
        month_n: count(admitted_column(row.month_n)?),
        month_cost: admitted_column(row.month_cost)?,
        key_n: count(admitted_column(row.key_n)?),
        day_n: count(admitted_column(row.day_n)?),
        ..seen.counts
    };
    let after = locked.plus_one(cost, now_ms);
    let usage = snapshot(conn, &request.caller, policy, &after, request.now).await?;
    Ok(Some(AdmissionOutcome {
        decision: Decision::Admit,
        record: None,
        job: Some(job),
        usage,
    }))
}

/// A column `kepler_admit` sets whenever it admits.
fn admitted_column<T>(value: Option<T>) -> Result<T> {
    value.ok_or_else(|| StoreError::Corrupt("kepler_admit admitted without its counts".into()))
}

pub(super) async fn get_job(
    conn: &mut PgConnection,
    account_id: Uuid,
    job_id: Uuid,
) -> Result<Option<Job>> {
    let sql = format!(
        "SELECT {} FROM {} WHERE j.job_id = $1 AND j.account_id = $2",
        crate::jobs::JOB_COLUMNS,
        crate::jobs::JOBS_WITH_RUNS
    );
    let row = sqlx::query(&sql)
        .bind(job_id)
        .bind(account_id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(super::rows::job).transpose()
}
