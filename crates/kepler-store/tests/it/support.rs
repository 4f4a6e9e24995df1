//! Fixtures shared by the contract suite: the harness a backend provides, and
//! helpers that make accounts, keys, requests and records.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use kepler_core::{
    Category, CategoryId, Check, CheckStatus, Domain, ScoreRecord, Tier, TierPolicy, TierTable,
};
use kepler_store::{Account, AdmissionOutcome, AdmissionRequest, Ask, Caller, Store};

/// What a backend offers the suite beyond the `Store` itself.
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// A new store on the same database (the previous one having been closed).
    async fn reopen(&self) -> Arc<dyn Store>;
    /// Every byte the backend keeps on disk, to look for secrets in.
    async fn raw_bytes(&self) -> Vec<u8>;
    /// Runs one SQL statement on the database, as an older release or an
    /// operator would, behind the store's back.
    async fn execute(&self, sql: &str);
}

/// A migrated store on a fresh database, and its backend.
pub struct Harness {
    pub store: Arc<dyn Store>,
    pub backend: Box<dyn Backend>,
}

/// The suite's "now": a Saturday near the end of a month.
pub fn now() -> DateTime<Utc> {
    at(2026, 11, 28, 12, 0, 0)
}

pub fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
        .single()
        .expect("a valid instant")
}

pub fn minutes(n: i64) -> Duration {
    Duration::minutes(n)
}

/// `POST /v1/score` for `domain` at `now`, without `force_fresh`, before the
/// caller is known (for `Store::authenticate_and_admit`).
pub fn score_ask<'a>(domain: &'a Domain, tiers: &'a TierTable, now: DateTime<Utc>) -> Ask<'a> {
    Ask {
        domain,
        force_fresh: false,
        now,
        tiers,
    }
}

pub fn domain(name: &str) -> Domain {
    Domain::parse(name).expect("a valid domain")
}

/// An account of `tier` with one live key.
pub struct Client {
    pub account: Account,
    pub caller: Caller,
    pub key: String,
}

pub async fn client(store: &dyn Store, tier: Tier) -> Client {
    let account = store
        .create_account("Acme", tier)
        .await
        .expect("create account");
    let new = store
        .create_key(account.account_id, false)
        .await
        .expect("create key");
    let caller = store
        .authenticate(&new.key)
        .await
        .expect("authenticate")
        .expect("a fresh key authenticates");
    Client {
        account,
        caller,
        key: new.key,
    }
}

/// Another live key of the same account, authenticated.
pub async fn key(store: &dyn Store, account: &Account) -> Caller {
    let new = store
        .create_key(account.account_id, false)
        .await
        .expect("create key");
    store
        .authenticate(&new.key)
        .await
        .expect("authenticate")
        .expect("a fresh key authenticates")
}

/// A tier's default policy with some fields changed.
pub fn policy(tier: Tier, change: impl FnOnce(&mut TierPolicy)) -> TierPolicy {
    let mut policy = tier.default_policy();
    change(&mut policy);
    policy
}

pub fn ask(
    caller: &Caller,
    policy: TierPolicy,
    name: &str,
    now: DateTime<Utc>,
) -> AdmissionRequest {
    AdmissionRequest {
        caller: caller.clone(),
        policy,
        domain: domain(name),
        force_fresh: false,
        now,
    }
}

pub async fn admit(store: &dyn Store, request: &AdmissionRequest) -> AdmissionOutcome {
    store.admit(request).await.expect("admit")
}

/// A small record, as the engine would produce it.
pub fn record(name: &str, scored_at: DateTime<Utc>) -> ScoreRecord {
    let check = Check {
        id: "hsts".into(),
        status: CheckStatus::Pass,
        points: 0,
        evidence: "max-age=31536000".into(),
        recommendation: String::new(),
        result: None,
    };
    let tls = Category {
        id: CategoryId::Tls,
        score: Some(90),
        weight: CategoryId::Tls.weight(),
        checks: vec![check],
    };
    ScoreRecord::assemble(name, vec![tls], vec![], scored_at, "test-engine 1")
}
