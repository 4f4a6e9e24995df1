//! The contract every store backend must keep, written once against `dyn Store`.
//! `main.rs` instantiates each function for every backend (`contract_tests!`).

use std::sync::Arc;
use std::time::Duration as StdDuration;

use futures::future::join_all;
use kepler_core::admission::{Decision, LimitKind, WindowUsage, next_month_start};
use kepler_core::{FailureReason, JobStatus, Tier};
use kepler_store::{
    IdempotencyClaim, IdempotentResponse, RunEnding, Store, StoreError, keys, time::truncate,
};
use uuid::Uuid;

use crate::support::*;

const LEASE: StdDuration = StdDuration::from_secs(30);

// ---------------------------------------------------------------- accounts and keys

pub async fn accounts_tiers_and_keys(h: Harness) {
    let s = h.store.as_ref();
    let account = s
        .create_account("Acme", Tier::Growth)
        .await
        .expect("create");
    assert_eq!(
        (account.name.as_str(), account.tier),
        ("Acme", Tier::Growth)
    );
    assert_eq!(
        s.get_account(account.account_id).await.expect("get"),
        Some(account.clone())
    );
    assert_eq!(
        s.get_account(Uuid::new_v4()).await.expect("get unknown"),
        None
    );

    let scaled = s
        .set_tier(account.account_id, Tier::Scale)
        .await
        .expect("set tier");
    assert_eq!(
        scaled,
        kepler_store::Account {
            tier: Tier::Scale,
            ..account.clone()
        }
    );
    assert!(matches!(
        s.set_tier(Uuid::new_v4(), Tier::Scale).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.create_key(Uuid::new_v4(), false).await,
        Err(StoreError::NotFound(_))
    ));

    let live = s
        .create_key(account.account_id, false)
        .await
        .expect("live key");
    let test = s
        .create_key(account.account_id, true)
        .await
        .expect("sandbox key");
    for (key, prefix) in [(&live.key, "ki_live_"), (&test.key, "ki_test_")] {
        assert!(key.starts_with(prefix), "{key}");
        assert_eq!(key.len(), 48, "{key}");
        assert!(key[8..].bytes().all(|b| b.is_ascii_alphanumeric()), "{key}");
    }
    assert_ne!(live.key_id, test.key_id);

    let caller = s
        .authenticate(&live.key)
        .await
        .expect("auth")
        .expect("live key works");
    assert_eq!(
        caller,
        kepler_store::Caller {
            key_id: live.key_id,
            account_id: account.account_id,
            tier: Tier::Scale,
            sandbox: false
        }
    );
    let sandbox = s
        .authenticate(&test.key)
        .await
        .expect("auth")
        .expect("sandbox key works");
    assert!(sandbox.sandbox);
    assert_eq!(sandbox.key_id, test.key_id);

    s.set_tier(account.account_id, Tier::Starter)
        .await
        .expect("set tier");
    let caller = s
        .authenticate(&live.key)
        .await
        .expect("auth")
        .expect("still works");
    assert_eq!(
        caller.tier,
        Tier::Starter,
        "authentication reads the current tier"
    );

    let mut wrong_last = live.key.clone();
    let last = if wrong_last.ends_with('a') { "b" } else { "a" };
    wrong_last.replace_range(47.., last);
    let malformed = [
        "",
        "ki_live_",
        "ki_live_short",
        &live.key[..47],
        &format!("{}x", live.key),
        &wrong_last,
    ];
    for presented in malformed {
        assert_eq!(
            s.authenticate(presented).await.expect("auth"),
            None,
            "{presented:?}"
        );
    }

    s.revoke_key(live.key_id).await.expect("revoke");
    assert_eq!(
        s.authenticate(&live.key).await.expect("auth"),
        None,
        "a revoked key authenticates no more"
    );
    s.revoke_key(live.key_id)
        .await
        .expect("revoking twice is fine");
    assert!(
        s.authenticate(&test.key).await.expect("auth").is_some(),
        "other keys are untouched"
    );
    assert!(matches!(
        s.revoke_key(Uuid::new_v4()).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn keys_are_stored_only_as_hashes(h: Harness) {
    let s = h.store.as_ref();
    let account = s
        .create_account("Acme", Tier::Growth)
        .await
        .expect("create");
    let live = s
        .create_key(account.account_id, false)
        .await
        .expect("live key");
    let test = s
        .create_key(account.account_id, true)
        .await
        .expect("sandbox key");
    let bytes = h.backend.raw_bytes().await;
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    for key in [&live.key, &test.key] {
        assert!(
            contains(&keys::hash_key(key)),
            "the hash is stored (so the scan sees the data)"
        );
        assert!(!contains(key), "the plaintext key is stored");
        assert!(!contains(&key[8..]), "the key's secret part is stored");
    }
}

// ---------------------------------------------------------------- admission: each decision

pub async fn fresh_record_is_served_uncounted(h: Harness) {
    let s = h.store.as_ref();
    let c = client(s, Tier::Growth).await;
    let growth = Tier::Growth.default_policy();
    let fresh = record("fresh.example", now() - chrono::Duration::days(6));
    s.put_record(&fresh).await.expect("put");

    let outcome = admit(s, &ask(&c.caller, growth, "fresh.example", now())).await;
    assert_eq!(outcome.decision, Decision::ServeFresh);
    assert_eq!(
        outcome
            .record
            .map(|r| r.parse().expect("the served JSON is a record")),
        Some(kepler_core::ScoreRecord {
            cached: true,
            ..fresh
        })
    );
    assert_eq!(outcome.job, None);
    assert_eq!(outcome.usage.month.used, 0);

    // Exactly as old as the tier's window (7 days): stale, so a cold call.
    s.put_record(&record("stale.example", now() - chrono::Duration::days(7)))
        .await
        .expect("put");
    let outcome = admit(s, &ask(&c.caller, growth, "stale.example", now())).await;
    assert_eq!(outcome.decision, Decision::Admit);
    assert_eq!(outcome.usage.month.used, 1);
}

pub async fn a_record_stored_by_an_older_release_is_served_cached(h: Harness) {
    let s = h.store.as_ref();
    let c = client(s, Tier::Growth).await;
    let growth = Tier::Growth.default_policy();
    let old = record("old.example", now() - chrono::Duration::days(1));
    s.put_record(&old).await.expect("put");
    // A node of the previous release writes `body` only.
    h.backend.execute("UPDATE records SET served = NULL").await;

    let outcome = admit(s, &ask(&c.caller, growth, "old.example", now())).await;
    assert_eq!(outcome.decision, Decision::ServeFresh);
    let served = outcome.record.expect("a record");
    assert_eq!(
        served.parse().expect("the served JSON is a record"),
        kepler_core::ScoreRecord {
            cached: true,
            ..old
        }
    );
}

pub async fn a_newer_record_from_another_node_replaces_the_one_served(h: Harness) {
    // Two handles on one database stand in for two nodes. Each keeps the text of
    // records it served; the one served must still always be the newest.
    let this = h.store.as_ref();
    let other = h.backend.reopen().await;
    let c = client(this, Tier::Growth).await;
    let growth = Tier::Growth.default_policy();
    let mut first = record("moving.example", now() - chrono::Duration::days(2));
    first.score = 41;
    this.put_record(&first).await.expect("put");
    for _ in 0..2 {
        assert_eq!(served_fresh(this, &c.key, "moving.example").await.score, 41);
        let via_admit = admit(this, &ask(&c.caller, growth, "moving.example", now())).await;
        assert_eq!(
            via_admit
                .record
                .expect("a record")
                .parse()
                .expect("a record")
                .score,
            41
        );
    }

    let mut newer = record("moving.example", now() - chrono::Duration::days(1));
    newer.score = 97;
    other
        .put_record(&newer)
        .await
        .expect("put on the other node");
    for _ in 0..2 {
        assert_eq!(
            served_fresh(this, &c.key, "moving.example").await.score,
            97,
            "the newer record, not the held one"
        );
        let via_admit = admit(this, &ask(&c.caller, growth, "moving.example", now())).await;
        let served = via_admit
            .record
            .expect("a record")
            .parse()
            .expect("a record");
        assert_eq!(
            served,
            kepler_core::ScoreRecord {
                cached: true,
                ..newer.clone()
            }
        );
    }
    assert_eq!(
        served_fresh(other.as_ref(), &c.key, "moving.example")
            .await
            .score,
        97
    );
}

pub async fn a_record_deleted_by_hand_is_not_served_from_memory(h: Harness) {
    // SQLite hands the largest rowid out again once its row is deleted: the
    // next record gets the deleted one's id. The held text must not pass for it.
    let s = h.store.as_ref();
    let c = client(s, Tier::Growth).await;
    let mut first = record("handled.example", now() - chrono::Duration::days(2));
    first.score = 12;
    s.put_record(&first).await.expect("put");
    assert_eq!(served_fresh(s, &c.key, "handled.example").await.score, 12);

    h.backend.execute("DELETE FROM records").await;
    let mut second = record("handled.example", now() - chrono::Duration::days(1));
    second.score = 88;
    s.put_record(&second).await.expect("put");
    assert_eq!(served_fresh(s, &c.key, "handled.example").await.score, 88);
}

/// The record `authenticate_and_admit` serves fresh for `name` to `key`.
async fn served_fresh(store: &dyn Store, key: &str, name: &str) -> kepler_core::ScoreRecord {
    let tiers = kepler_core::TierTable::default();
    let domain = domain(name);
    let ask = score_ask(&domain, &tiers, now());
    let (_, outcome) = store
        .authenticate_and_admit(key, &ask)
        .await
        .expect("call")
        .expect("a live key");
    let outcome = outcome.expect("decided");
    assert_eq!(outcome.decision, Decision::ServeFresh);
    outcome.record.expect("a record").parse().expect("a record")
}

/// A cached hit through `authenticate_and_admit` at `now`: its caller and usage.
async fn hit_at(
    store: &dyn Store,
    key: &str,
    name: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<(kepler_store::Caller, kepler_store::UsageSnapshot)> {
    let tiers = kepler_core::TierTable::default();
    let domain = domain(name);
    let ask = score_ask(&domain, &tiers, now);
    let (caller, outcome) = store
        .authenticate_and_admit(key, &ask)
        .await
        .expect("call")?;
    let outcome = outcome.expect("decided");
    assert_eq!(outcome.decision, Decision::ServeFresh);
    Some((caller, outcome.usage))
}

pub async fn hits_asked_together_each_get_their_own_answer(h: Harness) {
    // Hits waiting at the same moment may be checked together (one statement
    // for many): each must still get its own key's and domain's answer.
    let s = h.store.as_ref();
    let kept = client(s, Tier::Growth).await;
    let revoked = client(s, Tier::Growth).await;
    let names = ["a.example", "b.example", "c.example"];
    for name in names {
        s.put_record(&record(name, now() - chrono::Duration::days(1)))
            .await
            .expect("put");
    }
    for c in [&kept, &revoked] {
        for name in names {
            assert!(hit_at(s, &c.key, name, now()).await.is_some());
        }
    }
    s.revoke_key(revoked.caller.key_id).await.expect("revoke");
    let asks = (0..60).map(|i| {
        let c = if i % 2 == 0 { &kept } else { &revoked };
        (c, names[i % names.len()])
    });
    let answers =
        join_all(asks.map(|(c, name)| async move {
            (c.caller.key_id, hit_at(s, &c.key, name, now()).await)
        }))
        .await;
    for (key_id, answer) in answers {
        if key_id == kept.caller.key_id {
            let (caller, _) = answer.expect("the kept key is live");
            assert_eq!(caller, kept.caller);
        } else {
            assert!(answer.is_none(), "a revoked key was answered: {answer:?}");
        }
    }
}

pub async fn repeated_hits_see_every_commit_and_the_clock(h: Harness) {
    // Hits asked again and again (a store may answer them from memory) must
    // still see every commit of another node at once, and windows that moved
    // with time alone.
    let this = h.store.as_ref();
    let other = h.backend.reopen().await;
    let c = client(this, Tier::Growth).await;
    let growth = Tier::Growth.default_policy();
    this.put_record(&record("steady.example", now() - chrono::Duration::days(1)))
        .await
        .expect("put");
    for _ in 0..3 {
        let (caller, usage) = hit_at(this, &c.key, "steady.example", now())
            .await
            .expect("a live key");
        assert_eq!(caller, c.caller);
        assert_eq!((usage.month.used, usage.key_hour.used), (0, 0));
        assert_eq!(usage.key_hour.resets_at, now() + chrono::Duration::hours(1));
    }

    // A cold call of the account, admitted by the other node: counted at once.
    let cold = admit(
        other.as_ref(),
        &ask(&c.caller, growth, "cold.example", now()),
    )
    .await;
    assert_eq!(cold.decision, Decision::Admit);
    for _ in 0..2 {
        let (_, usage) = hit_at(this, &c.key, "steady.example", now() + minutes(1))
            .await
            .expect("a live key");
        assert_eq!(
            (
                usage.month.used,
                usage.key_hour.used,
                usage.account_day.used
            ),
            (1, 1, 1)
        );
        assert_eq!(usage.key_hour.resets_at, now() + chrono::Duration::hours(1));
    }
    // An hour later the call has left the key's window, with no commit at all.
    let (_, usage) = hit_at(this, &c.key, "steady.example", now() + minutes(60))
        .await
        .expect("a live key");
    assert_eq!(
        (
            usage.month.used,
            usage.key_hour.used,
            usage.account_day.used
        ),
        (1, 0, 1)
    );
    assert_eq!(
        usage.key_hour.resets_at,
        now() + minutes(60) + chrono::Duration::hours(1)
    );

    // The key revoked on the other node: refused on the very next hit.
    other.revoke_key(c.caller.key_id).await.expect("revoke");
    assert!(
        hit_at(this, &c.key, "steady.example", now() + minutes(61))
            .await
            .is_none(),
        "a revoked key is refused from then on"
    );
}

pub async fn authenticate_and_admit_is_authenticate_then_admit(h: Harness) {
    let s = h.store.as_ref();
    let c = client(s, Tier::Growth).await;
    let tiers = kepler_core::TierTable::default();
    let fresh = record("fresh.example", now() - chrono::Duration::days(1));
    s.put_record(&fresh).await.expect("put");
    let (fresh_domain, cold_domain) = (domain("fresh.example"), domain("cold.example"));
    let ask = |domain| score_ask(domain, &tiers, now());

    let (caller, outcome) = s
        .authenticate_and_admit(&c.key, &ask(&fresh_domain))
        .await
        .expect("call")
        .expect("a live key");
    assert_eq!(caller, c.caller);
    let outcome = outcome.expect("a live key is decided on");
    assert_eq!(outcome.decision, Decision::ServeFresh);
    let served = outcome
        .record
        .as_ref()
        .map(|r| r.parse().expect("a record"));
    assert_eq!(served.map(|r| r.cached), Some(true));
    assert_eq!(outcome.usage.month.used, 0);

    let (_, cold) = s
        .authenticate_and_admit(&c.key, &ask(&cold_domain))
        .await
        .expect("call")
        .expect("a live key");
    let cold = cold.expect("decided");
    assert_eq!(cold.decision, Decision::Admit);
    assert_eq!(cold.usage.month.used, 1);
    let job = cold.job.expect("a job");
    let (_, again) = s
        .authenticate_and_admit(&c.key, &ask(&cold_domain))
        .await
        .expect("call")
        .expect("a live key");
    assert_eq!(
        again.expect("decided").decision,
        Decision::ExistingJob(job.job_id)
    );

    let sandbox = s
        .create_key(c.account.account_id, true)
        .await
        .expect("sandbox key");
    let (caller, none) = s
        .authenticate_and_admit(&sandbox.key, &ask(&cold_domain))
        .await
        .expect("call")
        .expect("a sandbox key authenticates");
    assert!(
        caller.sandbox && none.is_none(),
        "a sandbox key admits nothing"
    );

    s.revoke_key(c.caller.key_id).await.expect("revoke");
    assert!(
        s.authenticate_and_admit(&c.key, &ask(&fresh_domain))
            .await
            .expect("call")
            .is_none(),
        "a revoked key is refused from then on"
    );
    assert!(
        s.authenticate_and_admit("ki_live_nope", &ask(&fresh_domain))
            .await
            .expect("call")
            .is_none()
    );
}

pub async fn free_tier_reads_cache_only(h: Harness) {
    let s = h.store.as_ref();
    let c = client(s, Tier::Free).await;
    let free = Tier::Free.default_policy();
    let outcome = admit(s, &ask(&c.caller, free, "cold.example", now())).await;
    assert_eq!(outcome.decision, Decision::FreeTierSandboxOnly);
    assert_eq!((outcome.job, outcome.record), (None, None));

    s.put_record(&record("warm.example", now() - chrono::Duration::days(29)))
        .await
        .expect("put");
    let outcome = admit(s, &ask(&c.caller, free, "warm.example", now())).await;
    assert_eq!(outcome.decision, Decision::ServeFresh);
    assert!(
        outcome
            .record
            .is_some_and(|r| r.parse().expect("a record").cached)
    );
    assert_eq!(s.queue_stats(now()).await.expect("stats").jobs_pending, 0);
}

pub async fn force_fresh_only_where_the_tier_allows_it(h: Harness) {
    let s = h.store.as_ref();
    s.put_record(&record("cached.example", now() - minutes(5)))
        .await
        .expect("put");

    let growth = client(s, Tier::Growth).await;
    let mut request = ask(
        &growth.caller,
        Tier::Growth.default_policy(),
        "cached.example",
        now(),
    );
    request.force_fresh = true;
    assert_eq!(
        admit(s, &request).await.decision,
        Decision::ForceFreshNotAllowed
    );

    let enterprise = client(s, Tier::Enterprise).await;
    let mut request = ask(
        &enterprise.caller,
        Tier::Enterprise.default_policy(),
        "cached.example",
        now(),
    );
    request.force_fresh = true;
    let outcome = admit(s, &request).await;
    assert_eq!(
        outcome.decision,
        Decision::Admit,
        "force_fresh bypasses a fresh record"
    );
    let run = s
        .claim_run("w1", LEASE, now())
        .await
        .expect("claim")
        .expect("a run");
    assert!(run.force_fresh);
}

pub async fn in_flight_job_is_returned_not_charged(h: Harness) {
    let s = h.store.as_ref();
    let c = client(s, Tier::Growth).await;
    let growth = Tier::Growth.default_policy();
    let first = admit(s, &ask(&c.caller, growth, "busy.example", now())).await;
    assert_eq!(first.decision, Decision::Admit);
    let job = first.job.expect("a job");
    assert_eq!(
        (job.status, job.domain.as_str(), job.created_at),
        (JobStatus::Pending, "busy.example", now())
    );
    assert_eq!(
        s.get_job(c.account.account_id, job.job_id)
            .await
            .expect("get"),
        Some(job.clone())
    );

    let again = admit(
        s,
        &ask(&c.caller, growth, "busy.example", now() + minutes(1)),
    )
    .await;
    assert_eq!(again.decision, Decision::ExistingJob(job.job_id));
    assert_eq!(again.job, Some(job.clone()));
    assert_eq!(again.usage.month.used, 1);
    assert_eq!(
        again.usage.month_cost_micros,
        growth.cost_per_cold_call_micros
    );

    // Per account, not per key.
    let other_key = key(s, &c.account).await;
    let third = admit(
        s,
        &ask(&other_key, growth, "busy.example", now() + minutes(2)),
    )
    .await;
    assert_eq!(third.decision, Decision::ExistingJob(job.job_id));

    // Once the run completes, the fresh record answers.
    let run = s
        .claim_run("w1", LEASE, now() + minutes(3))
        .await
        .expect("claim")
        .expect("run");
    assert!(
        s.complete_run(
            run.run_id,
            "w1",
            &record("busy.example", now() + minutes(4)),
            now() + minutes(4)
        )
        .await
        .expect("complete")
    );
    let after = admit(
        s,
        &ask(&c.caller, growth, "busy.example", now() + minutes(5)),
    )
    .await;
    assert_eq!(after.decision, Decision::ServeFresh);
    assert_eq!(after.usage.month.used, 1);
}

pub async fn month_cap_refuses_with_used_limit_and_reset(h: Harness) {
    let s = h.store.as_ref();
    let c = client(s, Tier::Growth).await;
    let capped = policy(Tier::Growth, |p| p.monthly_cold_cap = 3);
    for (i, name) in ["a.example", "b.example", "c.example"]
        .into_iter()
        .enumerate()
    {
        let outcome = admit(s, &ask(&c.caller, capped, name, now())).await;
        assert_eq!(outcome.decision, Decision::Admit, "{name}");
        assert_eq!(
            outcome.usage.month.used,
            i as u64 + 1,
            "usage counts the admission just made"
        );
    }
    let refused = admit(s, &ask(&c.caller, capped, "d.example", now())).await;
    let expected = WindowUsage {
        used: 3,
        limit: 3,
        resets_at: next_month_start(now()),
    };
    assert_eq!(
        refused.decision,
        Decision::LimitReached(LimitKind::Month, expected)
    );
    assert_eq!(refused.usage.month, expected);
    assert_eq!(refused.job, None);
    assert_eq!(
        s.queue_stats(now()).await.expect("stats").jobs_pending,
        3,
        "a refusal queues nothing"
    );
}

pub async fn key_hour_limit_refuses_per_key(h: Harness) {
    let s = h.store.as_ref();
    let c = client(s, Tier::Growth).await;
    let limited = policy(Tier::Growth, |p| p.key_hourly_cold_limit = 2);
    assert_eq!(
        admit(
            s,
            &ask(&c.caller, limited, "a.example", now() - minutes(50))
        )
        .await
        .decision,
        Decision::Admit
    );
    assert_eq!(
        admit(
            s,
            &ask(&c.caller, limited, "b.example", now() - minutes(30))
        )
        .await
        .decision,
        Decision::Admit
    );

    let refused = admit(s, &ask(&c.caller, limited, "c.example", now())).await;
    // Frees when the oldest call (50 minutes ago) leaves the hour.
    let expected = WindowUsage {
        used: 2,
        limit: 2,
        resets_at: now() + minutes(10),
    };
    assert_eq!(
        refused.decision,
        Decision::LimitReached(LimitKind::KeyHour, expected)
    );
    assert_eq!(refused.usage.key_hour, expected);

    let other = key(s, &c.account).await;
    let outcome = admit(s, &ask(&other, limited, "c.example", now())).await;
    assert_eq!(
        outcome.decision,
        Decision::Admit,
        "another key of the account has its own hour"
    );
    assert_eq!(
        outcome.usage.key_hour,
        WindowUsage {
            used: 1,
            limit: 2,
            resets_at: now() + minutes(60)
        }
    );
    assert_eq!(outcome.usage.account_day.used, 3);
}

pub async fn account_day_breaker_refuses_every_key(h: Harness) {
    let s = h.store.as_ref();
    let c = client(s, Tier::Growth).await;
    let limited = policy(Tier::Growth, |p| p.account_daily_cold_limit = 2);
    let second = key(s, &c.account).await;
    let third = key(s, &c.account).await;
    assert_eq!(
        admit(
            s,
            &ask(&c.caller, limited, "a.example", now() - minutes(20 * 60))
        )
        .await
        .decision,
        Decision::Admit
    );
    assert_eq!(
        admit(s, &ask(&second, limited, "b.example", now() - minutes(60)))
            .await
            .decision,
        Decision::Admit
    );

    let refused = admit(s, &ask(&third, limited, "c.example", now())).await;
    let expected = WindowUsage {
        used: 2,
        limit: 2,
        resets_at: now() + minutes(4 * 60),
    };
    assert_eq!(
        refused.decision,
        Decision::LimitReached(LimitKind::AccountDay, expected)
    );
    assert_eq!(refused.usage.key_hour.used, 0);
}

pub async fn limits_are_checked_in_order(h: Harness) {
    let s = h.store.as_ref();
    let c = client(s, Tier::Growth).await;
    let all_one = policy(Tier::Growth, |p| {
        p.monthly_cold_cap = 1;
        p.key_hourly_cold_limit = 1;
        p.account_daily_cold_limit = 1;
    });
    assert_eq!(
        admit(s, &ask(&c.caller, all_one, "a.example", now()))
            .await
            .decision,
        Decision::Admit
    );
    let refused = admit(s, &ask(&c.caller, all_one, "b.example", now())).await;
    assert!(
        matches!(
            refused.decision,
            Decision::LimitReached(LimitKind::Month, _)
        ),
        "{:?}",
        refused.decision
    );
    let key_one = policy(Tier::Growth, |p| {
        p.key_hourly_cold_limit = 1;
        p.account_daily_cold_limit = 1;
    });
    let refused = admit(s, &ask(&c.caller, key_one, "b.example", now())).await;
    assert!(
        matches!(
            refused.decision,
            Decision::LimitReached(LimitKind::KeyHour, _)
        ),
        "{:?}",
        refused.decision
    );
    let account_one = policy(Tier::Growth, |p| p.account_daily_cold_limit = 1);
    let refused = admit(s, &ask(&c.caller, account_one, "b.example", now())).await;
    assert!(
        matches!(
            refused.decision,
            Decision::LimitReached(LimitKind::AccountDay, _)
        ),
        "{:?}",
        refused.decision
    );
}

// ---------------------------------------------------------------- windows

pub async fn rolling_windows_forget_old_calls(h: Harness) {
    let s = h.store.as_ref();
    let c = client(s, Tier::Growth).await;
    let one_an_hour = policy(Tier::Growth, |p| p.key_hourly_cold_limit = 1);

    assert_eq!(
        admit(
            s,
            &ask(&c.caller, one_an_hour, "a.example", now() - minutes(61))
        )
        .await
        .decision,
        Decision::Admit
    );
    let outcome = admit(s, &ask(&c.caller, one_an_hour, "b.example", now())).await;
    assert_eq!(
        outcome.decision,
        Decision::Admit,
        "a call 61 minutes ago no longer counts for the hour"
    );
    assert_eq!(
        outcome.usage.key_hour,
        WindowUsage {
            used: 1,
            limit: 1,
            resets_at: now() + minutes(60)
        }
    );
    assert_eq!(
        outcome.usage.account_day.used, 2,
        "it still counts for the day"
    );
    assert_eq!(
        outcome.usage.account_day.resets_at,
        now() - minutes(61) + chrono::Duration::hours(24)
    );

    // The boundary: exactly an hour old has left the window; a millisecond less has not.
    let edge = key(s, &c.account).await;
    assert_eq!(
        admit(
            s,
            &ask(&edge, one_an_hour, "c.example", now() - minutes(60))
        )
        .await
        .decision,
        Decision::Admit
    );
    assert_eq!(
        admit(s, &ask(&edge, one_an_hour, "d.example", now()))
            .await
            .decision,
        Decision::Admit
    );
    let inside = key(s, &c.account).await;
    let just_inside = now() - minutes(60) + chrono::Duration::milliseconds(1);
    assert_eq!(
        admit(s, &ask(&inside, one_an_hour, "e.example", just_inside))
            .await
            .decision,
        Decision::Admit
    );
    let refused = admit(s, &ask(&inside, one_an_hour, "f.example", now())).await;
    assert!(
        matches!(
            refused.decision,
            Decision::LimitReached(LimitKind::KeyHour, _)
        ),
        "{:?}",
        refused.decision
    );
}

pub async fn over_the_limit_resets_when_enough_calls_expire(h: Harness) {
    let s = h.store.as_ref();
    let c = client(s, Tier::Growth).await;
    let three = policy(Tier::Growth, |p| p.key_hourly_cold_limit = 3);
    for (m, name) in [(50, "a.example"), (40, "b.example"), (30, "c.example")] {
        assert_eq!(
            admit(s, &ask(&c.caller, three, name, now() - minutes(m)))
                .await
                .decision,
            Decision::Admit
        );
    }
    // The limit was lowered to 1 with 3 calls in the hour: a slot frees when the
    // third-oldest call (30 minutes ago) leaves.
    let one = policy(Tier::Growth, |p| p.key_hourly_cold_limit = 1);
    let usage = s.usage(&c.caller, &one, now()).await.expect("usage");
    assert_eq!(
        usage.key_hour,
        WindowUsage {
            used: 3,
            limit: 1,
            resets_at: now() + minutes(30)
        }
    );
    let under = s
        .usage(
            &c.caller,
            &policy(Tier::Growth, |p| p.key_hourly_cold_limit = 5),
            now(),
        )
        .await
        .expect("usage");
    assert_eq!(
        under.key_hour.resets_at,
        now() + minutes(10),
        "under the limit: when the oldest call leaves"
    );
}

pub async fn month_resets_on_the_first(h: Harness) {
    let s = h.store.as_ref();
    let c = client(s, Tier::Growth).await;
    let two = policy(Tier::Growth, |p| p.monthly_cold_cap = 2);
    let late = at(2026, 11, 30, 23, 0, 0);
    assert_eq!(
        admit(s, &ask(&c.caller, two, "a.example", late))
            .await
            .decision,
        Decision::Admit
    );
    assert_eq!(
        admit(s, &ask(&c.caller, two, "b.example", late + minutes(30)))
            .await
            .decision,
        Decision::Admit
    );
    let refused = admit(s, &ask(&c.caller, two, "c.example", late + minutes(59))).await;
    let expected = WindowUsage {
        used: 2,
        limit: 2,
        resets_at: at(2026, 12, 1, 0, 0, 0),
    };
    assert_eq!(
        refused.decision,
        Decision::LimitReached(LimitKind::Month, expected)
    );

    let outcome = admit(
        s,
        &ask(&c.caller, two, "c.example", at(2026, 12, 1, 0, 0, 0)),
    )
    .await;
    assert_eq!(outcome.decision, Decision::Admit);
    assert_eq!(
        outcome.usage.month,
        WindowUsage {
            used: 1,
            limit: 2,
            resets_at: at(2027, 1, 1, 0, 0, 0)
        }
    );
    assert_eq!(
        outcome.usage.account_day.used, 3,
        "the rolling day spans the month boundary"
    );
    assert_eq!(
        outcome.usage.month_cost_micros,
        two.cost_per_cold_call_micros
    );
}

pub async fn usage_costs_come_from_the_cost_log(h: Harness) {
    let s = h.store.as_ref();
    let c = client(s, Tier::Starter).await;
    let starter = Tier::Starter.default_policy();
    let empty = s.usage(&c.caller, &starter, now()).await.expect("usage");
    assert_eq!(
        (empty.month.used, empty.month.limit, empty.month_cost_micros),
        (0, 100, 0)
    );
    assert_eq!(empty.key_hour.resets_at, now() + minutes(60));

    let mut last = None;
    for name in ["a.example", "b.example", "c.example"] {
        last = Some(admit(s, &ask(&c.caller, starter, name, now())).await);
    }
    let last = last.expect("three admissions");
    assert_eq!(last.usage.month_cost_micros, 240_000);
    assert_eq!(
        s.usage(&c.caller, &starter, now()).await.expect("usage"),
        last.usage
    );

    // The price of past calls is what was logged, whatever the policy says now.
    let cheaper = policy(Tier::Starter, |p| p.cost_per_cold_call_micros = 10_000);
    let outcome = admit(s, &ask(&c.caller, cheaper, "d.example", now())).await;
    assert_eq!(outcome.usage.month_cost_micros, 250_000);
    let next_month = s
        .usage(&c.caller, &starter, at(2026, 12, 2, 0, 0, 0))
        .await
        .expect("usage");
    assert_eq!(
        (next_month.month.used, next_month.month_cost_micros),
        (0, 0)
    );
}

/// Growth with limits out of reach, so every call in the window tests is admitted.
fn roomy() -> kepler_core::TierPolicy {
    policy(Tier::Growth, |p| {
        p.monthly_cold_cap = 1_000;
        p.key_hourly_cold_limit = 1_000;
        p.account_daily_cold_limit = 1_000;
    })
}

fn ms(n: i64) -> chrono::Duration {
    chrono::Duration::milliseconds(n)
}

// The windows are summed from hour and day rollups plus the raw rows of a
// window's partial first hour: these pin the edges where the two meet.
pub async fn windows_are_exact_at_hour_and_day_edges(h: Harness) {
    let s = h.store.as_ref();
    let c = client(s, Tier::Growth).await;
    let p = roomy();
    let day_ago = now() - chrono::Duration::hours(24);
    let calls = [
        ("a.example", day_ago),             // exactly 24 h before now()
        ("b.example", day_ago + ms(1)),     // 24 h less a millisecond
        ("c.example", now() - minutes(60)), // on an hour boundary, exactly an hour old
        ("d.example", now() - minutes(30)),
        ("e.example", now()), // on the hour boundary of now()
    ];
    for (name, at) in calls {
        assert_eq!(
            admit(s, &ask(&c.caller, p, name, at)).await.decision,
            Decision::Admit,
            "{name}"
        );
    }
    let caller = &c.caller;
    let usage = |t| async move { s.usage(caller, &p, t).await.expect("usage") };

    let at_now = usage(now()).await;
    assert_eq!(
        at_now.account_day,
        WindowUsage {
            used: 4,
            limit: 1_000,
            resets_at: now() + ms(1)
        },
        "a call exactly 24 h old has left; one a millisecond younger has not"
    );
    assert_eq!(
        at_now.key_hour,
        WindowUsage {
            used: 2,
            limit: 1_000,
            resets_at: now() + minutes(30)
        },
        "the call exactly an hour old, on an hour boundary, has left"
    );
    assert_eq!(at_now.month.used, 5);
    assert_eq!(at_now.month_cost_micros, 5 * p.cost_per_cold_call_micros);

    let before = usage(now() - ms(1)).await;
    assert_eq!(
        (before.account_day.used, before.account_day.resets_at),
        (5, now()),
        "a millisecond earlier the oldest call is still in (a later call counts too)"
    );
    assert_eq!(
        (before.key_hour.used, before.key_hour.resets_at),
        (3, now()),
        "the call on the hour boundary is still in the hour"
    );

    let after = usage(now() + ms(1)).await;
    assert_eq!((after.account_day.used, after.key_hour.used), (3, 2));
    assert_eq!(
        after.account_day.resets_at,
        now() - minutes(60) + chrono::Duration::hours(24)
    );

    // Any instant gives what counting the raw calls gives.
    for step in 0..=48 {
        let t = day_ago + minutes(30 * step) - ms(1);
        let u = usage(t).await;
        let since = |w: chrono::Duration| t - w + ms(1);
        let count = |w| calls.iter().filter(|(_, at)| *at >= since(w)).count() as u64;
        assert_eq!(
            (u.key_hour.used, u.account_day.used),
            (count(minutes(60)), count(chrono::Duration::hours(24))),
            "at {t}"
        );
    }
}

pub async fn month_rolls_over_at_midnight_utc_to_the_millisecond(h: Harness) {
    let s = h.store.as_ref();
    let c = client(s, Tier::Growth).await;
    let p = roomy();
    let first = at(2026, 12, 1, 0, 0, 0);
    let last_ms = first - ms(1);
    for (name, t) in [("a.example", last_ms), ("b.example", first)] {
        assert_eq!(
            admit(s, &ask(&c.caller, p, name, t)).await.decision,
            Decision::Admit
        );
    }
    let december = s.usage(&c.caller, &p, first).await.expect("usage");
    assert_eq!(
        (december.month.used, december.month_cost_micros),
        (1, p.cost_per_cold_call_micros),
        "the call a millisecond before midnight belongs to November"
    );
    assert_eq!((december.key_hour.used, december.account_day.used), (2, 2));
    assert_eq!(december.month.resets_at, at(2027, 1, 1, 0, 0, 0));
    let november = s.usage(&c.caller, &p, last_ms).await.expect("usage");
    assert_eq!(november.month.used, 2, "a call stamped ahead still counts");
    assert_eq!(november.month.resets_at, first);
}

// ---------------------------------------------------------------- exactness under concurrency

async fn admit_all(
    store: &Arc<dyn Store>,
    requests: Vec<kepler_store::AdmissionRequest>,
) -> Vec<Decision> {
    let tasks = requests.into_iter().map(|request| {
        let store = Arc::clone(store);
        tokio::spawn(async move { store.admit(&request).await.expect("admit").decision })
    });
    join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect()
}

pub async fn month_cap_is_exact_under_concurrency(h: Harness) {
    let c = client(h.store.as_ref(), Tier::Growth).await;
    let cap = policy(Tier::Growth, |p| p.monthly_cold_cap = 25);
    let requests = (0..200)
        .map(|i| ask(&c.caller, cap, &format!("d{i}.example"), now()))
        .collect();
    let decisions = admit_all(&h.store, requests).await;
    let admitted = decisions.iter().filter(|d| **d == Decision::Admit).count();
    let refused = decisions
        .iter()
        .filter(|d| matches!(d, Decision::LimitReached(LimitKind::Month, w) if w.used == 25 && w.limit == 25))
        .count();
    assert_eq!((admitted, refused), (25, 175), "{decisions:?}");
    let usage = h.store.usage(&c.caller, &cap, now()).await.expect("usage");
    assert_eq!(usage.month.used, 25);
    assert_eq!(usage.month_cost_micros, 25 * cap.cost_per_cold_call_micros);
    assert_eq!(
        h.store
            .queue_stats(now())
            .await
            .expect("stats")
            .jobs_pending,
        25
    );
}

pub async fn key_hour_limit_is_exact_under_concurrency(h: Harness) {
    let c = client(h.store.as_ref(), Tier::Growth).await;
    let limit = policy(Tier::Growth, |p| p.key_hourly_cold_limit = 10);
    let requests = (0..80)
        .map(|i| ask(&c.caller, limit, &format!("d{i}.example"), now()))
        .collect();
    let decisions = admit_all(&h.store, requests).await;
    let admitted = decisions.iter().filter(|d| **d == Decision::Admit).count();
    let refused = decisions
        .iter()
        .filter(|d| matches!(d, Decision::LimitReached(LimitKind::KeyHour, _)))
        .count();
    assert_eq!((admitted, refused), (10, 70), "{decisions:?}");
}

pub async fn account_day_breaker_is_exact_under_concurrency(h: Harness) {
    let s = h.store.as_ref();
    let c = client(s, Tier::Growth).await;
    let limit = policy(Tier::Growth, |p| p.account_daily_cold_limit = 15);
    let mut callers = vec![c.caller.clone()];
    for _ in 0..3 {
        callers.push(key(s, &c.account).await);
    }
    let requests = (0..80)
        .map(|i| ask(&callers[i % 4], limit, &format!("d{i}.example"), now()))
        .collect();
    let decisions = admit_all(&h.store, requests).await;
    let admitted = decisions.iter().filter(|d| **d == Decision::Admit).count();
    let refused = decisions
        .iter()
        .filter(|d| matches!(d, Decision::LimitReached(LimitKind::AccountDay, _)))
        .count();
    assert_eq!((admitted, refused), (15, 65), "{decisions:?}");
}

pub async fn one_job_per_account_and_domain_under_concurrency(h: Harness) {
    let c = client(h.store.as_ref(), Tier::Growth).await;
    let growth = Tier::Growth.default_policy();
    let requests = (0..50)
        .map(|_| ask(&c.caller, growth, "same.example", now()))
        .collect();
    let decisions = admit_all(&h.store, requests).await;
    let admitted = decisions.iter().filter(|d| **d == Decision::Admit).count();
    let mut existing: Vec<Uuid> = decisions
        .iter()
        .filter_map(|d| {
            if let Decision::ExistingJob(id) = d {
                Some(*id)
            } else {
                None
            }
        })
        .collect();
    existing.dedup();
    assert_eq!((admitted, existing.len()), (1, 1), "{decisions:?}");
    assert_eq!(
        h.store
            .usage(&c.caller, &growth, now())
            .await
            .expect("usage")
            .month
            .used,
        1
    );
}

// ---------------------------------------------------------------- the queue

pub async fn one_run_per_domain_across_accounts(h: Harness) {
    let s = h.store.as_ref();
    let growth = Tier::Growth.default_policy();
    let a = client(s, Tier::Growth).await;
    let b = client(s, Tier::Growth).await;
    let job_a = admit(s, &ask(&a.caller, growth, "shared.example", now()))
        .await
        .job
        .expect("job a");
    let job_b = admit(
        s,
        &ask(&b.caller, growth, "shared.example", now() + minutes(1)),
    )
    .await
    .job
    .expect("job b");
    assert_ne!(job_a.job_id, job_b.job_id);
    for c in [&a, &b] {
        let usage = s
            .usage(&c.caller, &growth, now() + minutes(2))
            .await
            .expect("usage");
        assert_eq!(
            (usage.month.used, usage.month_cost_micros),
            (1, growth.cost_per_cold_call_micros),
            "each pays"
        );
    }

    let run = s
        .claim_run("w1", LEASE, now() + minutes(2))
        .await
        .expect("claim")
        .expect("one run");
    assert_eq!((run.domain.as_str(), run.attempt), ("shared.example", 1));
    assert_eq!(
        s.claim_run("w2", LEASE, now() + minutes(2))
            .await
            .expect("claim"),
        None,
        "the engine runs the domain once"
    );

    let scored = record(
        "shared.example",
        now() + minutes(3) + chrono::Duration::nanoseconds(123_456_789),
    );
    assert!(
        s.complete_run(run.run_id, "w1", &scored, now() + minutes(3))
            .await
            .expect("complete")
    );
    let stored = s
        .latest_record(&domain("shared.example"))
        .await
        .expect("latest")
        .expect("stored");
    assert_eq!(stored.scored_at, truncate(scored.scored_at));
    assert!(stored.cached);
    for (c, job) in [(&a, &job_a), (&b, &job_b)] {
        let settled = s
            .get_job(c.account.account_id, job.job_id)
            .await
            .expect("get")
            .expect("job");
        assert_eq!(settled.status, JobStatus::Complete);
        assert_eq!(
            settled.scored_at,
            Some(stored.scored_at),
            "result_ref points at the stored record"
        );
        assert_eq!(settled.finished_at, Some(now() + minutes(3)));
        assert_eq!(settled.started_at, Some(now() + minutes(2)));
    }
}

pub async fn claim_heartbeat_and_complete(h: Harness) {
    let s = h.store.as_ref();
    let c = client(s, Tier::Growth).await;
    let job = admit(
        s,
        &ask(&c.caller, Tier::Growth.default_policy(), "q.example", now()),
    )
    .await
    .job
    .expect("job");
    assert_eq!((job.status, job.started_at), (JobStatus::Pending, None));

    let t1 = now() + minutes(1);
    let run = s
        .claim_run("w1", LEASE, t1)
        .await
        .expect("claim")
        .expect("run");
    assert_eq!(
        (run.attempt, run.first_started_at, run.force_fresh),
        (1, t1, false)
    );
    let running = s
        .get_job(c.account.account_id, job.job_id)
        .await
        .expect("get")
        .expect("job");
    assert_eq!(
        (running.status, running.started_at),
        (JobStatus::Running, Some(t1))
    );

    assert!(
        s.heartbeat(
            run.run_id,
            "w1",
            LEASE,
            t1 + minutes(0) + chrono::Duration::seconds(20)
        )
        .await
        .expect("hb")
    );
    assert!(
        !s.heartbeat(run.run_id, "w2", LEASE, t1).await.expect("hb"),
        "only the owner extends"
    );
    assert!(
        !s.heartbeat(Uuid::new_v4(), "w1", LEASE, t1)
            .await
            .expect("hb"),
        "unknown run"
    );
    // The heartbeat moved the lease: at t1 + 40 s it has not expired.
    assert_eq!(
        s.claim_run("w2", LEASE, t1 + chrono::Duration::seconds(40))
            .await
            .expect("claim"),
        None
    );

    let scored = record("q.example", t1 + minutes(1));
    assert!(
        !s.complete_run(run.run_id, "w2", &scored, t1 + minutes(1))
            .await
            .expect("complete"),
        "not the owner"
    );
    assert!(
        s.complete_run(run.run_id, "w1", &scored, t1 + minutes(1))
            .await
            .expect("complete")
    );
    assert!(
        !s.complete_run(run.run_id, "w1", &scored, t1 + minutes(1))
            .await
            .expect("complete"),
        "already settled"
    );
    assert!(
        !s.fail_run(run.run_id, "w1", FailureReason::Timeout, t1 + minutes(1))
            .await
            .expect("fail"),
        "already settled"
    );
    let done = s
        .get_job(c.account.account_id, job.job_id)
        .await
        .expect("get")
        .expect("job");
    assert_eq!(done.status, JobStatus::Complete);
    assert_eq!(done.failure_reason, None);
    assert!(
        !s.heartbeat(run.run_id, "w1", LEASE, t1 + minutes(1))
            .await
            .expect("hb"),
        "a settled run has no lease"
    );
}

pub async fn completing_with_another_domain_changes_nothing(h: Harness) {
    let s = h.store.as_ref();
    let c = client(s, Tier::Growth).await;
    let job = admit(
        s,
        &ask(
            &c.caller,
            Tier::Growth.default_policy(),
            "right.example",
            now(),
        ),
    )
    .await
    .job
    .expect("job");
    let run = s
        .claim_run("w1", LEASE, now())
        .await
        .expect("claim")
        .expect("run");
    assert!(
        s.complete_run(run.run_id, "w1", &record("wrong.example", now()), now())
            .await
            .is_err()
    );
    assert_eq!(
        s.latest_record(&domain("wrong.example"))
            .await
            .expect("latest"),
        None
    );
    let still = s
        .get_job(c.account.account_id, job.job_id)
        .await
        .expect("get")
        .expect("job");
    assert_eq!(still.status, JobStatus::Running);
    assert!(
        s.complete_run(run.run_id, "w1", &record("right.example", now()), now())
            .await
            .expect("complete")
    );
}

pub async fn jobs_joining_a_running_run_settle_with_it(h: Harness) {
    let s = h.store.as_ref();
    let growth = Tier::Growth.default_policy();
    let a = client(s, Tier::Growth).await;
    let b = client(s, Tier::Growth).await;
    let job_a = admit(s, &ask(&a.caller, growth, "join.example", now()))
        .await
        .job
        .expect("job a");
    let run = s
        .claim_run("w1", LEASE, now() + minutes(1))
        .await
        .expect("claim")
        .expect("run");

    let joined_at = now() + minutes(1) + chrono::Duration::seconds(10);
    let late = admit(s, &ask(&b.caller, growth, "join.example", joined_at)).await;
    assert_eq!(
        late.decision,
        Decision::Admit,
        "a late account is admitted and charged"
    );
    let job_b = late.job.expect("job b");
    assert_eq!(
        (job_b.status, job_b.started_at),
        (JobStatus::Running, Some(joined_at))
    );
    assert_eq!(
        s.claim_run("w2", LEASE, joined_at).await.expect("claim"),
        None,
        "it joined the running run"
    );

    // Its lease has expired by now, but nobody took the run over: w1 still holds it.
    assert!(
        s.fail_run(
            run.run_id,
            "w1",
            FailureReason::DomainNotResolvable,
            now() + minutes(3)
        )
        .await
        .expect("fail")
    );
    for (c, job) in [(&a, &job_a), (&b, &job_b)] {
        let failed = s
            .get_job(c.account.account_id, job.job_id)
            .await
            .expect("get")
            .expect("job");
        assert_eq!(failed.status, JobStatus::Failed);
        assert_eq!(
            failed.failure_reason,
            Some(FailureReason::DomainNotResolvable)
        );
        assert_eq!(
            (failed.finished_at, failed.scored_at),
            (Some(now() + minutes(3)), None)
        );
    }
    let stats = s.queue_stats(now() + minutes(3)).await.expect("stats");
    assert_eq!(
        (
            stats.jobs_running,
            stats.jobs_pending,
            stats.oldest_pending_age
        ),
        (0, 0, None),
        "failed jobs leave the queue"
    );

    // A failed run does not block asking again: a new job, a new run, a new charge.
    let retry = admit(
        s,
        &ask(&a.caller, growth, "join.example", now() + minutes(4)),
    )
    .await;
    assert_eq!(retry.decision, Decision::Admit);
    assert_eq!(retry.usage.month.used, 2);
    let rerun = s
        .claim_run("w1", LEASE, now() + minutes(4))
        .await
        .expect("claim")
        .expect("run");
    assert_ne!(rerun.run_id, run.run_id);
    assert_eq!(rerun.attempt, 1);
}

pub async fn expired_lease_is_reclaimed_and_the_first_worker_fenced(h: Harness) {
    let s = h.store.as_ref();
    let c = client(s, Tier::Growth).await;
    let growth = Tier::Growth.default_policy();
    let job = admit(s, &ask(&c.caller, growth, "dead.example", now()))
        .await
        .job
        .expect("job");
    let t0 = now() + minutes(1);
    let first = s
        .claim_run("w1", LEASE, t0)
        .await
        .expect("claim")
        .expect("run");
    assert_eq!(
        s.claim_run("w2", LEASE, t0 + chrono::Duration::seconds(29))
            .await
            .expect("claim"),
        None
    );

    let t1 = t0 + chrono::Duration::seconds(31);
    let second = s
        .claim_run("w2", LEASE, t1)
        .await
        .expect("claim")
        .expect("the dead worker's run");
    assert_eq!(second.run_id, first.run_id);
    assert_eq!(
        (second.attempt, second.first_started_at),
        (2, t0),
        "job_timeout counts from the first claim"
    );
    assert!(!first.reclaimed, "the first claim took a pending run");
    assert!(second.reclaimed, "the second took an expired lease");

    assert!(
        !s.heartbeat(first.run_id, "w1", LEASE, t1)
            .await
            .expect("hb")
    );
    assert!(
        !s.complete_run(first.run_id, "w1", &record("dead.example", t1), t1)
            .await
            .expect("complete")
    );
    assert!(
        !s.fail_run(first.run_id, "w1", FailureReason::EngineError, t1)
            .await
            .expect("fail")
    );
    s.release_run(first.run_id, "w1")
        .await
        .expect("release by a former owner is a no-op");
    assert_eq!(
        s.latest_record(&domain("dead.example"))
            .await
            .expect("latest"),
        None,
        "the fenced worker stored nothing"
    );
    let running = s
        .get_job(c.account.account_id, job.job_id)
        .await
        .expect("get")
        .expect("job");
    assert_eq!(
        (running.status, running.started_at),
        (JobStatus::Running, Some(t0))
    );

    assert!(
        s.complete_run(
            second.run_id,
            "w2",
            &record("dead.example", t1),
            t1 + minutes(1)
        )
        .await
        .expect("complete")
    );
    let done = s
        .get_job(c.account.account_id, job.job_id)
        .await
        .expect("get")
        .expect("job");
    assert_eq!(done.status, JobStatus::Complete);
    let usage = s
        .usage(&c.caller, &growth, t1 + minutes(1))
        .await
        .expect("usage");
    assert_eq!(usage.month.used, 1, "charged once, whatever the retries");
}

pub async fn release_hands_the_run_back(h: Harness) {
    let s = h.store.as_ref();
    let c = client(s, Tier::Growth).await;
    let job = admit(
        s,
        &ask(
            &c.caller,
            Tier::Growth.default_policy(),
            "rel.example",
            now(),
        ),
    )
    .await
    .job
    .expect("job");
    let run = s
        .claim_run("w1", LEASE, now())
        .await
        .expect("claim")
        .expect("run");

    s.release_run(run.run_id, "w2")
        .await
        .expect("release by a stranger");
    assert_eq!(
        s.claim_run("w3", LEASE, now()).await.expect("claim"),
        None,
        "a stranger cannot release it"
    );

    s.release_run(run.run_id, "w1").await.expect("release");
    let pending = s
        .get_job(c.account.account_id, job.job_id)
        .await
        .expect("get")
        .expect("job");
    assert_eq!(
        (pending.status, pending.started_at),
        (JobStatus::Pending, None)
    );
    assert_eq!(s.queue_stats(now()).await.expect("stats").jobs_pending, 1);

    let later = now() + minutes(5);
    let again = s
        .claim_run("w2", LEASE, later)
        .await
        .expect("claim")
        .expect("claimable again at once");
    assert_eq!(
        (again.run_id, again.attempt, again.first_started_at),
        (run.run_id, 2, later)
    );
    assert!(!again.reclaimed, "a handed-back run is not a lease expiry");
    assert!(
        !s.complete_run(run.run_id, "w1", &record("rel.example", later), later)
            .await
            .expect("complete")
    );
    assert!(
        s.complete_run(run.run_id, "w2", &record("rel.example", later), later)
            .await
            .expect("complete")
    );
}

pub async fn claims_take_the_oldest_run_first(h: Harness) {
    let s = h.store.as_ref();
    let c = client(s, Tier::Growth).await;
    let growth = Tier::Growth.default_policy();
    for (i, name) in ["one.example", "two.example", "three.example"]
        .into_iter()
        .enumerate()
    {
        admit(
            s,
            &ask(
                &c.caller,
                growth,
                name,
                now() + chrono::Duration::seconds(i as i64),
            ),
        )
        .await;
    }
    let t = now() + minutes(1);
    let first = s
        .claim_run("w", LEASE, t)
        .await
        .expect("claim")
        .expect("run");
    assert_eq!(first.domain, "one.example");
    admit(s, &ask(&c.caller, growth, "four.example", t)).await;

    // After its lease expires, the dead run is older than every pending one.
    let later = t + minutes(5);
    let order: Vec<String> = {
        let mut order = Vec::new();
        while let Some(run) = s.claim_run("w", LEASE, later).await.expect("claim") {
            order.push(run.domain);
        }
        order
    };
    assert_eq!(
        order,
        [
            "one.example",
            "two.example",
            "three.example",
            "four.example"
        ]
    );
}

pub async fn a_batch_claim_takes_the_oldest_runs_once(h: Harness) {
    let s = h.store.as_ref();
    let c = client(s, Tier::Growth).await;
    let growth = Tier::Growth.default_policy();
    for i in 0..5 {
        let at = now() + chrono::Duration::seconds(i);
        admit(s, &ask(&c.caller, growth, &format!("b{i}.example"), at)).await;
    }
    let t = now() + minutes(1);
    let mut first: Vec<String> = s
        .claim_runs("w", LEASE, t, 3)
        .await
        .expect("claim")
        .into_iter()
        .map(|run| run.domain)
        .collect();
    first.sort();
    assert_eq!(first, ["b0.example", "b1.example", "b2.example"]);
    let stats = s.queue_stats(t).await.expect("stats");
    assert_eq!((stats.jobs_running, stats.jobs_pending), (3, 2));

    let mut rest: Vec<String> = s
        .claim_runs("w", LEASE, t, 10)
        .await
        .expect("claim")
        .into_iter()
        .map(|run| run.domain)
        .collect();
    rest.sort();
    assert_eq!(rest, ["b3.example", "b4.example"]);
    assert!(
        s.claim_runs("w", LEASE, t, 10)
            .await
            .expect("claim")
            .is_empty()
    );
}

pub async fn settling_claims_the_next_run_in_the_same_step(h: Harness) {
    let s = h.store.as_ref();
    let c = client(s, Tier::Growth).await;
    let growth = Tier::Growth.default_policy();
    let mut jobs = Vec::new();
    for (i, name) in ["a.example", "b.example", "c.example", "d.example"]
        .into_iter()
        .enumerate()
    {
        let at = now() + chrono::Duration::seconds(i as i64);
        jobs.push(
            admit(s, &ask(&c.caller, growth, name, at))
                .await
                .job
                .expect("job"),
        );
    }
    let job = |i: usize| {
        let id = jobs[i].job_id;
        async move {
            s.get_job(c.account.account_id, id)
                .await
                .expect("get")
                .expect("job")
        }
    };
    let t = now() + minutes(1);
    let a = s
        .claim_run("w1", LEASE, t)
        .await
        .expect("claim")
        .expect("run");
    assert_eq!(a.domain, "a.example");

    // A completion hands the worker the oldest run waiting.
    let t2 = t + minutes(1);
    let settled = s
        .settle_run(
            a.run_id,
            "w1",
            RunEnding::Complete(&record("a.example", t2)),
            t2,
            Some(LEASE),
        )
        .await
        .expect("settle");
    assert!(settled.held);
    let b = settled.next.expect("the next run");
    assert_eq!(
        (b.domain.as_str(), b.attempt, b.first_started_at),
        ("b.example", 1, t2)
    );
    assert_eq!(job(0).await.status, JobStatus::Complete);
    let running = job(1).await;
    assert_eq!(
        (running.status, running.started_at),
        (JobStatus::Running, Some(t2))
    );

    // A worker that lost the lease settles nothing but still gets work.
    let lost = s
        .settle_run(
            b.run_id,
            "w2",
            RunEnding::Failed(FailureReason::Timeout),
            t2,
            Some(LEASE),
        )
        .await
        .expect("settle");
    assert!(!lost.held);
    assert_eq!(
        lost.next.map(|run| run.domain).as_deref(),
        Some("c.example")
    );
    assert_eq!(job(1).await.status, JobStatus::Running, "b is still w1's");

    // A record of another domain is refused and claims nothing.
    let wrong = record("wrong.example", t2);
    assert!(
        s.settle_run(b.run_id, "w1", RunEnding::Complete(&wrong), t2, Some(LEASE))
            .await
            .is_err()
    );
    assert_eq!(job(1).await.status, JobStatus::Running);
    assert_eq!(job(3).await.status, JobStatus::Pending, "d was not claimed");

    // Without claim_next only the settle happens; an empty queue gives no next run.
    let failed = s
        .settle_run(
            b.run_id,
            "w1",
            RunEnding::Failed(FailureReason::Timeout),
            t2,
            None,
        )
        .await
        .expect("settle");
    assert_eq!((failed.held, failed.next), (true, None));
    let b_job = job(1).await;
    assert_eq!(
        (b_job.status, b_job.failure_reason),
        (JobStatus::Failed, Some(FailureReason::Timeout))
    );
    let d = s
        .claim_run("w3", LEASE, t2)
        .await
        .expect("claim")
        .expect("run");
    assert_eq!(d.domain, "d.example");
    let last = s
        .settle_run(
            d.run_id,
            "w3",
            RunEnding::Complete(&record("d.example", t2)),
            t2,
            Some(LEASE),
        )
        .await
        .expect("settle");
    assert_eq!((last.held, last.next), (true, None));
    assert_eq!(job(3).await.status, JobStatus::Complete);
}

pub async fn concurrent_workers_claim_each_run_once(h: Harness) {
    let c = client(h.store.as_ref(), Tier::Growth).await;
    let growth = Tier::Growth.default_policy();
    for i in 0..30 {
        admit(
            h.store.as_ref(),
            &ask(&c.caller, growth, &format!("d{i}.example"), now()),
        )
        .await;
    }
    let workers = (0..8).map(|w| {
        let store = Arc::clone(&h.store);
        tokio::spawn(async move {
            let worker = format!("w{w}");
            // Half claim one run at a time, half in batches.
            let batch = if w % 2 == 0 { 1 } else { 4 };
            let mut claimed = Vec::new();
            loop {
                let runs = store
                    .claim_runs(&worker, LEASE, now(), batch)
                    .await
                    .expect("claim");
                if runs.is_empty() {
                    break claimed;
                }
                assert!(runs.len() <= batch);
                claimed.extend(runs.into_iter().map(|run| run.run_id));
            }
        })
    });
    let mut all: Vec<Uuid> = join_all(workers)
        .await
        .into_iter()
        .flat_map(|r| r.expect("task"))
        .collect();
    let claims = all.len();
    all.sort();
    all.dedup();
    assert_eq!(
        (claims, all.len()),
        (30, 30),
        "every run claimed exactly once"
    );
    assert_eq!(
        h.store
            .queue_stats(now())
            .await
            .expect("stats")
            .jobs_running,
        30
    );
}

pub async fn queue_stats_count_jobs(h: Harness) {
    let s = h.store.as_ref();
    assert_eq!(
        s.queue_stats(now()).await.expect("stats"),
        kepler_store::QueueStats::default()
    );
    let a = client(s, Tier::Growth).await;
    let growth = Tier::Growth.default_policy();
    admit(
        s,
        &ask(&a.caller, growth, "one.example", now() - minutes(10)),
    )
    .await;
    admit(
        s,
        &ask(&a.caller, growth, "two.example", now() - minutes(5)),
    )
    .await;
    admit(
        s,
        &ask(&a.caller, growth, "three.example", now() - minutes(1)),
    )
    .await;
    let run = s
        .claim_run("w", LEASE, now())
        .await
        .expect("claim")
        .expect("run");
    assert_eq!(run.domain, "one.example");
    let stats = s.queue_stats(now()).await.expect("stats");
    assert_eq!((stats.jobs_pending, stats.jobs_running), (2, 1));
    assert_eq!(stats.oldest_pending_age, Some(StdDuration::from_secs(300)));
    assert!(
        s.complete_run(run.run_id, "w", &record("one.example", now()), now())
            .await
            .expect("complete")
    );
    let stats = s.queue_stats(now()).await.expect("stats");
    assert_eq!(
        (stats.jobs_pending, stats.jobs_running),
        (2, 0),
        "a complete job leaves the queue"
    );
    assert_eq!(stats.oldest_pending_age, Some(StdDuration::from_secs(300)));
}

// ---------------------------------------------------------------- records, jobs, idempotency

pub async fn latest_record_is_the_newest_scored(h: Harness) {
    let s = h.store.as_ref();
    let days = chrono::Duration::days;
    for age in [3, 1, 2] {
        s.put_record(&record("r.example", now() - days(age)))
            .await
            .expect("put");
    }
    let latest = s
        .latest_record(&domain("r.example"))
        .await
        .expect("latest")
        .expect("a record");
    assert_eq!(latest.scored_at, now() - days(1));
    assert!(latest.cached);
    assert_eq!(latest.score, 90);
    assert_eq!(
        s.latest_record(&domain("never.example"))
            .await
            .expect("latest"),
        None
    );
}

pub async fn get_job_is_isolated_per_account(h: Harness) {
    let s = h.store.as_ref();
    let a = client(s, Tier::Growth).await;
    let b = client(s, Tier::Growth).await;
    let job = admit(
        s,
        &ask(
            &a.caller,
            Tier::Growth.default_policy(),
            "mine.example",
            now(),
        ),
    )
    .await
    .job
    .expect("job");
    assert_eq!(
        s.get_job(a.account.account_id, job.job_id)
            .await
            .expect("get"),
        Some(job.clone())
    );
    assert_eq!(
        s.get_job(b.account.account_id, job.job_id)
            .await
            .expect("get"),
        None,
        "another account's job"
    );
    assert_eq!(
        s.get_job(a.account.account_id, Uuid::new_v4())
            .await
            .expect("get"),
        None,
        "an unknown job"
    );
}

pub async fn idempotent_answers_replay_for_a_day(h: Harness) {
    let s = h.store.as_ref();
    let a = client(s, Tier::Growth).await;
    let b = client(s, Tier::Growth).await;
    let answer = |hash: &str, status: u16| IdempotentResponse {
        request_hash: hash.into(),
        status,
        body: format!("{{\"status\":{status}}}"),
        headers: vec![
            ("location".into(), "/v1/jobs/1".into()),
            ("retry-after".into(), "5".into()),
        ],
    };
    let id = a.account.account_id;
    assert_eq!(
        s.idempotent_response(id, "k1", now()).await.expect("get"),
        None
    );
    s.save_idempotent_response(id, "k1", &answer("h1", 202), now())
        .await
        .expect("save");
    assert_eq!(
        s.idempotent_response(id, "k1", now() + minutes(60))
            .await
            .expect("get"),
        Some(answer("h1", 202))
    );

    s.save_idempotent_response(id, "k1", &answer("h2", 200), now() + minutes(120))
        .await
        .expect("save");
    assert_eq!(
        s.idempotent_response(id, "k1", now() + minutes(121))
            .await
            .expect("get"),
        Some(answer("h1", 202)),
        "the first save wins"
    );
    assert_eq!(
        s.idempotent_response(b.account.account_id, "k1", now())
            .await
            .expect("get"),
        None,
        "per account"
    );
    assert_eq!(
        s.idempotent_response(id, "k2", now()).await.expect("get"),
        None
    );

    let day = chrono::Duration::hours(24);
    let almost = now() + day - chrono::Duration::milliseconds(1);
    assert!(
        s.idempotent_response(id, "k1", almost)
            .await
            .expect("get")
            .is_some()
    );
    assert_eq!(
        s.idempotent_response(id, "k1", now() + day)
            .await
            .expect("get"),
        None,
        "after 24 h it is forgotten"
    );
    s.save_idempotent_response(id, "k1", &answer("h3", 201), now() + day)
        .await
        .expect("save");
    assert_eq!(
        s.idempotent_response(id, "k1", now() + day)
            .await
            .expect("get"),
        Some(answer("h3", 201))
    );
}

/// A reservation for `hash` under `key`, or what stood in its way.
async fn reserve(
    s: &dyn Store,
    account: Uuid,
    key: &str,
    hash: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> IdempotencyClaim {
    s.reserve_idempotency_key(account, key, hash, RESERVATION_TTL, at)
        .await
        .expect("reserve")
}

const RESERVATION_TTL: StdDuration = StdDuration::from_secs(30);

fn saved_answer(hash: &str) -> IdempotentResponse {
    IdempotentResponse {
        request_hash: hash.into(),
        status: 202,
        body: "{\"job_id\":\"j\"}".into(),
        headers: vec![("retry-after".into(), "5".into())],
    }
}

pub async fn idempotency_keys_are_reserved_then_answered(h: Harness) {
    let s = h.store.as_ref();
    let a = client(s, Tier::Growth).await;
    let id = a.account.account_id;

    let IdempotencyClaim::Reserved { holder } = reserve(s, id, "k", "h1", now()).await else {
        panic!("a new key is reserved");
    };
    for hash in ["h1", "h2"] {
        assert_eq!(
            reserve(s, id, "k", hash, now()).await,
            IdempotencyClaim::InProgress {
                request_hash: "h1".into()
            },
            "a held key reports its holder's request, whoever asks"
        );
    }
    assert_eq!(
        s.idempotent_response(id, "k", now()).await.expect("get"),
        None,
        "a reservation is not an answer"
    );
    // Another request's answer cannot take a key held for a different one.
    s.save_idempotent_response(id, "k", &saved_answer("h2"), now())
        .await
        .expect("save");
    assert_eq!(
        s.idempotent_response(id, "k", now()).await.expect("get"),
        None
    );

    s.save_idempotent_response(id, "k", &saved_answer("h1"), now())
        .await
        .expect("save");
    let later = now() + minutes(60);
    assert_eq!(
        reserve(s, id, "k", "h1", later).await,
        IdempotencyClaim::Saved(saved_answer("h1"))
    );
    assert_eq!(
        reserve(s, id, "k", "h2", later).await,
        IdempotencyClaim::Saved(saved_answer("h1")),
        "a saved answer is reported to a reuse too, for the caller to refuse"
    );
    s.release_idempotency_key(id, "k", holder)
        .await
        .expect("release after saving");
    assert_eq!(
        s.idempotent_response(id, "k", later).await.expect("get"),
        Some(saved_answer("h1")),
        "a release never drops a saved answer"
    );

    // A day later the answer is forgotten and the key can be reserved again.
    let next_day = now() + chrono::Duration::hours(24);
    assert!(matches!(
        reserve(s, id, "k", "h2", next_day).await,
        IdempotencyClaim::Reserved { .. }
    ));
}

pub async fn a_released_or_expired_reservation_frees_the_key(h: Harness) {
    let s = h.store.as_ref();
    let a = client(s, Tier::Growth).await;
    let b = client(s, Tier::Growth).await;
    let id = a.account.account_id;

    let IdempotencyClaim::Reserved { holder } = reserve(s, id, "k", "h1", now()).await else {
        panic!("reserved");
    };
    assert!(
        matches!(
            reserve(s, b.account.account_id, "k", "h1", now()).await,
            IdempotencyClaim::Reserved { .. }
        ),
        "keys are per account"
    );
    s.release_idempotency_key(id, "k", Uuid::new_v4())
        .await
        .expect("release by a stranger");
    assert!(
        matches!(
            reserve(s, id, "k", "h2", now()).await,
            IdempotencyClaim::InProgress { .. }
        ),
        "only the holder releases"
    );
    s.release_idempotency_key(id, "k", holder)
        .await
        .expect("release");
    let IdempotencyClaim::Reserved { holder: second } = reserve(s, id, "k", "h2", now()).await
    else {
        panic!("a released key is free at once");
    };

    // The second holder's node dies: its reservation blocks the key for the TTL only.
    let ttl = chrono::Duration::from_std(RESERVATION_TTL).expect("ttl");
    let almost = now() + ttl - chrono::Duration::milliseconds(1);
    assert_eq!(
        reserve(s, id, "k", "h3", almost).await,
        IdempotencyClaim::InProgress {
            request_hash: "h2".into()
        }
    );
    let IdempotencyClaim::Reserved { holder: third } = reserve(s, id, "k", "h3", now() + ttl).await
    else {
        panic!("an expired reservation is taken over");
    };
    assert_ne!(third, second);
    s.release_idempotency_key(id, "k", second)
        .await
        .expect("late release");
    assert_eq!(
        reserve(s, id, "k", "h3", now() + ttl).await,
        IdempotencyClaim::InProgress {
            request_hash: "h3".into()
        },
        "the dead holder's late release does not free the new holder's key"
    );
    // The dead holder's late answer does not overwrite the new holder's request either.
    s.save_idempotent_response(id, "k", &saved_answer("h2"), now() + ttl)
        .await
        .expect("late save");
    s.save_idempotent_response(id, "k", &saved_answer("h3"), now() + ttl)
        .await
        .expect("save");
    assert_eq!(
        s.idempotent_response(id, "k", now() + ttl)
            .await
            .expect("get"),
        Some(saved_answer("h3"))
    );
}

pub async fn one_reservation_wins_across_two_handles(h: Harness) {
    // Two handles on one database stand in for two nodes: only the store orders them.
    let other = h.backend.reopen().await;
    let a = client(h.store.as_ref(), Tier::Growth).await;
    let id = a.account.account_id;
    for round in 0..5 {
        let key = format!("race-{round}");
        let tasks = (0..16).map(|i| {
            let store = if i % 2 == 0 {
                Arc::clone(&h.store)
            } else {
                Arc::clone(&other)
            };
            let key = key.clone();
            tokio::spawn(async move {
                let hash = format!("h{i}");
                let claim = reserve(store.as_ref(), id, &key, &hash, now()).await;
                (hash, claim)
            })
        });
        let claims: Vec<(String, IdempotencyClaim)> = join_all(tasks)
            .await
            .into_iter()
            .map(|r| r.expect("task"))
            .collect();
        let winners: Vec<&String> = claims
            .iter()
            .filter(|(_, c)| matches!(c, IdempotencyClaim::Reserved { .. }))
            .map(|(hash, _)| hash)
            .collect();
        assert_eq!(winners.len(), 1, "{claims:?}");
        let expected = IdempotencyClaim::InProgress {
            request_hash: winners[0].clone(),
        };
        assert!(
            claims
                .iter()
                .all(|(hash, c)| hash == winners[0] || *c == expected),
            "every loser sees the winner's request: {claims:?}"
        );
    }
    other.close().await;
}

// ---------------------------------------------------------------- durability and failure

pub async fn survives_reopen(h: Harness) {
    let s = Arc::clone(&h.store);
    let c = client(s.as_ref(), Tier::Growth).await;
    let growth = Tier::Growth.default_policy();
    let done = admit(s.as_ref(), &ask(&c.caller, growth, "done.example", now()))
        .await
        .job
        .expect("job");
    let run = s
        .claim_run("w", LEASE, now())
        .await
        .expect("claim")
        .expect("run");
    assert!(
        s.complete_run(run.run_id, "w", &record("done.example", now()), now())
            .await
            .expect("complete")
    );
    let waiting = admit(
        s.as_ref(),
        &ask(&c.caller, growth, "waiting.example", now()),
    )
    .await
    .job
    .expect("job");
    let done = s
        .get_job(c.account.account_id, done.job_id)
        .await
        .expect("get")
        .expect("job");
    s.close().await;
    drop(s);
    drop(h.store);

    let s = h.backend.reopen().await;
    assert_eq!(
        s.authenticate(&c.key).await.expect("auth"),
        Some(c.caller.clone())
    );
    assert_eq!(
        s.get_job(c.account.account_id, done.job_id)
            .await
            .expect("get"),
        Some(done)
    );
    assert_eq!(
        s.get_job(c.account.account_id, waiting.job_id)
            .await
            .expect("get"),
        Some(waiting)
    );
    assert!(
        s.latest_record(&domain("done.example"))
            .await
            .expect("latest")
            .is_some()
    );
    assert_eq!(
        s.usage(&c.caller, &growth, now())
            .await
            .expect("usage")
            .month
            .used,
        2
    );
    let run = s
        .claim_run("w", LEASE, now())
        .await
        .expect("claim")
        .expect("the queued run survived");
    assert_eq!(run.domain, "waiting.example");
    s.close().await;
}

pub async fn a_closed_store_is_unavailable_not_empty(h: Harness) {
    let s = h.store.as_ref();
    let c = client(s, Tier::Growth).await;
    s.put_record(&record("kept.example", now() - chrono::Duration::days(1)))
        .await
        .expect("put");
    for _ in 0..2 {
        assert!(hit_at(s, &c.key, "kept.example", now()).await.is_some());
    }
    s.close().await;
    let unavailable =
        |r: Result<(), StoreError>| assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    unavailable(s.ping().await);
    unavailable(
        s.get_job(c.account.account_id, Uuid::new_v4())
            .await
            .map(drop),
    );
    unavailable(s.authenticate(&c.key).await.map(drop));
    unavailable(
        s.admit(&ask(
            &c.caller,
            Tier::Growth.default_policy(),
            "x.example",
            now(),
        ))
        .await
        .map(drop),
    );
    unavailable(s.claim_run("w", LEASE, now()).await.map(drop));
    let tiers = kepler_core::TierTable::default();
    let kept = domain("kept.example");
    let hit = score_ask(&kept, &tiers, now());
    unavailable(s.authenticate_and_admit(&c.key, &hit).await.map(drop));
}

pub async fn migrate_is_idempotent(h: Harness) {
    h.store.migrate().await.expect("migrate again");
    h.store.ping().await.expect("ping");
}

pub async fn waiting_for_work_ends_by_its_timeout(h: Harness) {
    // With nothing queued, a wait ends by its timeout (a wake-up is only a hint).
    let started = std::time::Instant::now();
    h.store.wait_for_work(StdDuration::from_millis(200)).await;
    h.store.wait_for_work(StdDuration::from_millis(200)).await;
    assert!(
        started.elapsed() < StdDuration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}
