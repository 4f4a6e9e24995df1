//! Cached hits answered from memory while their facts are unchanged.
//!
//! A cached hit reads the key, the usage windows and the domain's newest
//! record. While nothing is committed that touches them, those facts stay what
//! they were, except for the passing of time, which this module accounts for:
//! the record ages (the decision is taken again at the new instant), and a
//! rolling window's count drops when its oldest call leaves it (the facts are
//! not reused from then on). Each backend says how it knows that nothing was
//! committed, as a *stamp* read after the request arrived and compared with
//! the one the facts were read under:
//!
//! * SQLite: the file's wal-index header, which every commit rewrites
//!   (`sqlite/changes.rs`; `PRAGMA data_version` where it cannot be read):
//!   any commit at all, by any connection of any process.
//! * PostgreSQL: one light statement for the key row (revocation, tier), the
//!   account's cold-call counter (kept by a trigger on the cost log) and the
//!   domain's newest record id — the same rows the facts came from.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use kepler_core::admission::{ACCOUNT_WINDOW, AdmissionFacts, Decision, KEY_WINDOW, decide};
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use uuid::Uuid;

use crate::keys::KeyTag;
use crate::served::RecordKey;
use crate::time::from_millis;
use crate::windows::{
    Counts, month_since, month_usage, probe_offset, rolling_since, rolling_usage,
};
use crate::{AdmissionOutcome, Ask, Caller, Result, ServedRecord, UsageSnapshot};

/// How much a process remembers, counting each hit's record text whole
/// (hits of one domain share one text, so this errs on the small side).
const CAPACITY_BYTES: u64 = 16 * 1024 * 1024;
/// What the cache expects a hit to weigh, for sizing its table.
const TYPICAL_HIT_BYTES: u64 = 16 * 1024;

/// A cached hit as a backend decided it, with the facts it was decided on.
#[derive(Debug)]
pub(crate) struct Fresh {
    pub(crate) outcome: AdmissionOutcome,
    pub(crate) counts: Counts,
    pub(crate) newest: RecordKey,
    pub(crate) in_flight_job: Option<Uuid>,
}

impl Fresh {
    /// The "serve fresh" answer with `record`, decided on these facts.
    pub(crate) fn serve(
        record: Option<ServedRecord>,
        usage: UsageSnapshot,
        counts: Counts,
        newest: RecordKey,
        in_flight_job: Option<Uuid>,
    ) -> Box<Fresh> {
        Box::new(Fresh {
            outcome: AdmissionOutcome {
                decision: Decision::ServeFresh,
                record,
                job: None,
                usage,
            },
            counts,
            newest,
            in_flight_job,
        })
    }
}

/// What one cached hit read, under which stamp.
#[derive(Debug)]
pub(crate) struct Hit<S> {
    pub(crate) stamp: S,
    /// What the memory calls the presented key.
    pub(crate) tag: KeyTag,
    /// The presented key's stored form (SHA-256), for a backend whose stamp
    /// check looks the key up again: a replay never hashes the key.
    pub(crate) key_hash: String,
    pub(crate) caller: Caller,
    pub(crate) counts: Counts,
    /// The month the counts were read in (its first instant, stored form).
    pub(crate) month: i64,
    pub(crate) newest: RecordKey,
    pub(crate) in_flight_job: Option<Uuid>,
    pub(crate) record: ServedRecord,
}

impl<S> Hit<S> {
    /// The hit `fresh` describes, read at `now` under `stamp`.
    pub(crate) fn new(
        stamp: S,
        tag: KeyTag,
        key_hash: String,
        caller: Caller,
        fresh: &Fresh,
        now: DateTime<Utc>,
    ) -> Option<Hit<S>> {
        Some(Hit {
            stamp,
            tag,
            key_hash,
            caller,
            counts: fresh.counts,
            month: month_since(now),
            newest: fresh.newest,
            in_flight_job: fresh.in_flight_job,
            record: fresh.outcome.record.clone()?,
        })
    }
}

/// A presented key's tag and a domain.
type HitKey = (KeyTag, String);

/// A [`HitKey`] borrowed, to look one up without copying the domain (an
/// allocation on every hit). Hashes as the owned pair does: a derived `Hash`
/// hashes the fields in order, as a tuple does, and `&str` as `String`.
#[derive(Hash)]
struct HitKeyRef<'a>(KeyTag, &'a str);

impl quick_cache::Equivalent<HitKey> for HitKeyRef<'_> {
    fn equivalent(&self, (tag, domain): &HitKey) -> bool {
        self.0 == *tag && self.1 == domain
    }
}

#[derive(Debug, Clone, Copy)]
struct HitBytes;

impl<S> Weighter<HitKey, Arc<Hit<S>>> for HitBytes {
    fn weight(&self, (_, domain): &HitKey, hit: &Arc<Hit<S>>) -> u64 {
        (hit.key_hash.len() + domain.len() + hit.record.as_bytes().len()) as u64 + 256
    }
}

/// Hits by key hash and domain, bounded by their size. Clones share one memory.
#[derive(Debug)]
pub(crate) struct HitMemo<S> {
    hits: Arc<Cache<HitKey, Arc<Hit<S>>, HitBytes>>,
}

impl<S> Clone for HitMemo<S> {
    fn clone(&self) -> Self {
        Self {
            hits: Arc::clone(&self.hits),
        }
    }
}

impl<S> Default for HitMemo<S> {
    fn default() -> Self {
        Self {
            hits: Arc::new(Cache::with_weighter(
                (CAPACITY_BYTES / TYPICAL_HIT_BYTES) as usize,
                CAPACITY_BYTES,
                HitBytes,
            )),
        }
    }
}

impl<S> HitMemo<S> {
    pub(crate) fn remember(&self, domain: &str, hit: Hit<S>) {
        self.hits
            .insert((hit.tag, domain.to_owned()), Arc::new(hit));
    }

    /// The hit remembered for the key tagged `tag` and `domain`, whatever its stamp.
    pub(crate) fn get(&self, tag: KeyTag, domain: &str) -> Option<Arc<Hit<S>>> {
        self.hits.get(&HitKeyRef(tag, domain))
    }
}

/// The cached hit `hit` gives for `ask` now — the caller having checked that
/// its stamp still holds — if its facts still decide "serve fresh".
pub(crate) fn replay<S>(hit: &Hit<S>, ask: &Ask<'_>) -> Result<Option<(Caller, AdmissionOutcome)>> {
    let policy = ask.tiers.policy(hit.caller.tier);
    let Some(usage) = usage_now(&hit.counts, hit.month, &policy, ask.now)? else {
        return Ok(None);
    };
    let facts = AdmissionFacts {
        tier: hit.caller.tier,
        policy,
        force_fresh: ask.force_fresh,
        newest_record_at: Some(from_millis(hit.newest.scored_at)?),
        in_flight_job: hit.in_flight_job,
        month: usage.month,
        key_hour: usage.key_hour,
        account_day: usage.account_day,
        now: ask.now,
    };
    if decide(&facts) != Decision::ServeFresh {
        return Ok(None);
    }
    let outcome = AdmissionOutcome {
        decision: Decision::ServeFresh,
        record: Some(hit.record.clone()),
        job: None,
        usage,
    };
    Ok(Some((hit.caller.clone(), outcome)))
}

/// The windows at `now` from counts read earlier with no commit since: the
/// same counts as long as the month has not turned and no counted call has
/// left its rolling window. `None` when that no longer holds, or when a window
/// is over its limit (its reset then depends on a call other than the oldest,
/// which only the store can name).
pub(crate) fn usage_now(
    counts: &Counts,
    month: i64,
    policy: &kepler_core::TierPolicy,
    now: DateTime<Utc>,
) -> Result<Option<UsageSnapshot>> {
    if month_since(now) != month {
        return Ok(None);
    }
    let still_in =
        |oldest: Option<i64>, window| oldest.is_none_or(|o| o >= rolling_since(now, window));
    if !still_in(counts.key_oldest, KEY_WINDOW) || !still_in(counts.day_oldest, ACCOUNT_WINDOW) {
        return Ok(None);
    }
    if probe_offset(counts.key_n, policy.key_hourly_cold_limit) != 0
        || probe_offset(counts.day_n, policy.account_daily_cold_limit) != 0
    {
        return Ok(None);
    }
    let oldest = |o: Option<i64>| o.map(from_millis).transpose();
    Ok(Some(UsageSnapshot {
        month: month_usage(counts.month_n, policy.monthly_cold_cap, now),
        key_hour: rolling_usage(
            counts.key_n,
            policy.key_hourly_cold_limit,
            oldest(counts.key_oldest)?,
            KEY_WINDOW,
            now,
        ),
        account_day: rolling_usage(
            counts.day_n,
            policy.account_daily_cold_limit,
            oldest(counts.day_oldest)?,
            ACCOUNT_WINDOW,
            now,
        ),
        month_cost_micros: counts.month_cost,
    }))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use kepler_core::Tier;

    use super::*;
    use crate::keys;
    use crate::time::to_millis;

    fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, h, m, 0)
            .single()
            .expect("valid")
    }

    fn counts(key_n: u64, key_oldest: Option<DateTime<Utc>>) -> Counts {
        Counts {
            month_n: key_n,
            month_cost: 0,
            key_n,
            key_oldest: key_oldest.map(to_millis),
            day_n: key_n,
            day_oldest: key_oldest.map(to_millis),
        }
    }

    #[test]
    fn counts_hold_until_their_oldest_call_leaves_a_window() {
        let policy = Tier::Growth.default_policy();
        let read = at(28, 12, 0);
        let c = counts(2, Some(at(28, 11, 30)));
        let month = month_since(read);
        let later = usage_now(&c, month, &policy, at(28, 12, 29))
            .expect("valid")
            .expect("the same counts");
        assert_eq!(later.key_hour.used, 2);
        assert_eq!(later.key_hour.resets_at, at(28, 12, 30));
        // At 12:30 the 11:30 call is exactly an hour old: it has left.
        assert_eq!(
            usage_now(&c, month, &policy, at(28, 12, 30)).expect("valid"),
            None
        );
    }

    #[test]
    fn empty_windows_hold_until_the_month_turns() {
        let policy = Tier::Growth.default_policy();
        let c = counts(0, None);
        let month = month_since(at(28, 12, 0));
        let later = usage_now(&c, month, &policy, at(30, 23, 59))
            .expect("valid")
            .expect("nothing to leave");
        assert_eq!(later.key_hour.resets_at, at(30, 23, 59) + KEY_WINDOW);
        let december = Utc
            .with_ymd_and_hms(2026, 12, 1, 0, 0, 0)
            .single()
            .expect("valid");
        assert_eq!(
            usage_now(&c, month, &policy, december).expect("valid"),
            None
        );
    }

    #[test]
    fn a_hit_is_found_by_its_own_key_and_domain_only() {
        let memo = HitMemo::<u8>::default();
        let hit = |key: &str| Hit {
            stamp: 0,
            tag: keys::tag(key),
            key_hash: keys::hash_key(key),
            caller: Caller {
                key_id: Uuid::nil(),
                account_id: Uuid::nil(),
                tier: Tier::Growth,
                sandbox: false,
            },
            counts: counts(0, None),
            month: 0,
            newest: RecordKey {
                id: 1,
                scored_at: 1,
            },
            in_flight_job: None,
            record: ServedRecord::from_stored(format!("{{\"by\":\"{key}\"}}")),
        };
        memo.remember("a.example", hit("k1"));
        memo.remember("a.example", hit("k2"));
        memo.remember("b.example", hit("k1"));
        let by = |key: &str, domain: &str| {
            memo.get(keys::tag(key), domain)
                .map(|hit| String::from_utf8_lossy(hit.record.as_bytes()).into_owned())
        };
        assert_eq!(by("k1", "a.example").as_deref(), Some("{\"by\":\"k1\"}"));
        assert_eq!(by("k2", "a.example").as_deref(), Some("{\"by\":\"k2\"}"));
        assert!(by("k1", "b.example").is_some());
        assert!(by("k2", "b.example").is_none());
        assert!(by("k1", "c.example").is_none());
        // The pair is compared whole, not run together: "k1" + "a.example".
        assert!(by("k1a", ".example").is_none());
    }

    #[test]
    fn what_is_remembered_stays_within_the_byte_budget() {
        let memo = HitMemo::<u8>::default();
        let caller = Caller {
            key_id: Uuid::nil(),
            account_id: Uuid::nil(),
            tier: Tier::Growth,
            sandbox: false,
        };
        let domains: Vec<String> = (0..400).map(|i| format!("d{i}.example")).collect();
        for (id, domain) in (0..).zip(&domains) {
            let text = format!("{id}{}", "x".repeat(100 * 1024));
            memo.remember(
                domain,
                Hit {
                    stamp: 0,
                    tag: keys::tag("k"),
                    key_hash: "h".repeat(64),
                    caller: caller.clone(),
                    counts: counts(0, None),
                    month: 0,
                    newest: RecordKey { id, scored_at: id },
                    in_flight_job: None,
                    record: ServedRecord::from_stored(text),
                },
            );
        }
        let held: usize = domains
            .iter()
            .filter_map(|d| memo.get(keys::tag("k"), d))
            .map(|h| h.record.as_bytes().len())
            .sum();
        assert!(held > 0, "something is remembered");
        assert!(held as u64 <= CAPACITY_BYTES, "{held} bytes remembered");
    }

    #[test]
    fn a_window_over_its_limit_is_left_to_the_store() {
        let mut policy = Tier::Growth.default_policy();
        policy.key_hourly_cold_limit = 1;
        let c = counts(2, Some(at(28, 11, 50)));
        let month = month_since(at(28, 12, 0));
        assert_eq!(
            usage_now(&c, month, &policy, at(28, 12, 0)).expect("valid"),
            None
        );
    }
}
