//! The five tiers and their limits (API.md §4), overridable per tier by configuration.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::{self, HOUR};

/// A billing tier.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Free,
    Starter,
    Growth,
    Scale,
    Enterprise,
}

impl Tier {
    /// Every tier, cheapest first.
    pub const ALL: [Tier; 5] = [
        Tier::Free,
        Tier::Starter,
        Tier::Growth,
        Tier::Scale,
        Tier::Enterprise,
    ];

    /// The tier's name as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Free => "free",
            Tier::Starter => "starter",
            Tier::Growth => "growth",
            Tier::Scale => "scale",
            Tier::Enterprise => "enterprise",
        }
    }

    /// The built-in limits of API.md §4.
    pub fn default_policy(self) -> TierPolicy {
        let day = 24 * HOUR;
        let (freshness, cap, key_hour, account_day, force_fresh, cost_micros) = match self {
            Tier::Free => (30 * day, 0, 0, 0, false, 0),
            Tier::Starter => (30 * day, 100, 200, 100, false, 80_000),
            Tier::Growth => (7 * day, 1_000, 200, 500, false, 40_000),
            Tier::Scale => (day, 10_000, 200, 2_000, false, 20_000),
            Tier::Enterprise => (HOUR, 100_000, 200, 10_000, true, 10_000),
        };
        TierPolicy {
            freshness,
            monthly_cold_cap: cap,
            key_hourly_cold_limit: key_hour,
            account_daily_cold_limit: account_day,
            force_fresh,
            cost_per_cold_call_micros: cost_micros,
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tier name that is not one of the five.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown tier {0:?}: expected one of free, starter, growth, scale, enterprise")]
pub struct UnknownTier(pub String);

impl std::str::FromStr for Tier {
    type Err = UnknownTier;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tier::ALL
            .into_iter()
            .find(|t| t.as_str() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| UnknownTier(s.to_owned()))
    }
}

/// The limits one tier lives under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierPolicy {
    /// A stored record younger than this is served without a cold run.
    pub freshness: Duration,
    /// Cold calls per calendar month (UTC).
    pub monthly_cold_cap: u64,
    /// Cold calls per key in any rolling hour.
    pub key_hourly_cold_limit: u64,
    /// Cold calls per account in any rolling 24 hours (the breaker).
    pub account_daily_cold_limit: u64,
    /// Whether `force_fresh: true` is allowed.
    pub force_fresh: bool,
    /// Cost of one cold call in millionths of a US dollar (exact sums, no float drift).
    pub cost_per_cold_call_micros: i64,
}

impl TierPolicy {
    /// The cost of one cold call in US dollars.
    pub fn cost_per_cold_call_usd(&self) -> f64 {
        micros_to_usd(self.cost_per_cold_call_micros)
    }
}

/// Converts millionths of a dollar to dollars.
pub fn micros_to_usd(micros: i64) -> f64 {
    micros as f64 / 1_000_000.0
}

/// A per-tier override as written in the `[tiers.NAME]` table of the config file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierOverride {
    #[serde(default, with = "duration::option")]
    pub freshness: Option<Duration>,
    pub monthly_cold_cap: Option<u64>,
    pub key_hourly_cold_limit: Option<u64>,
    pub account_daily_cold_limit: Option<u64>,
    pub cost_per_cold_call_usd: Option<f64>,
    pub force_fresh: Option<bool>,
}

/// The effective limits of every tier: defaults with the config's overrides applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierTable {
    policies: BTreeMap<Tier, TierPolicy>,
}

impl Default for TierTable {
    fn default() -> Self {
        TierTable {
            policies: Tier::ALL
                .into_iter()
                .map(|t| (t, t.default_policy()))
                .collect(),
        }
    }
}

/// A tier override that cannot be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TierOverrideError {
    #[error(transparent)]
    UnknownTier(#[from] UnknownTier),
    #[error(
        "tiers.{tier}.cost_per_cold_call_usd must be a finite amount of at least 0, not {value}"
    )]
    BadCost { tier: Tier, value: f64 },
}

impl TierTable {
    /// Applies `[tiers.NAME]` overrides on top of the defaults.
    pub fn with_overrides(
        overrides: &BTreeMap<String, TierOverride>,
    ) -> Result<TierTable, TierOverrideError> {
        let mut table = TierTable::default();
        for (name, o) in overrides {
            let tier: Tier = name.parse()?;
            let policy = table
                .policies
                .get_mut(&tier)
                .expect("every tier has a default");
            if let Some(v) = o.freshness {
                policy.freshness = v;
            }
            if let Some(v) = o.monthly_cold_cap {
                policy.monthly_cold_cap = v;
            }
            if let Some(v) = o.key_hourly_cold_limit {
                policy.key_hourly_cold_limit = v;
            }
            if let Some(v) = o.account_daily_cold_limit {
                policy.account_daily_cold_limit = v;
            }
            if let Some(v) = o.force_fresh {
                policy.force_fresh = v;
            }
            if let Some(v) = o.cost_per_cold_call_usd {
                if !v.is_finite() || v < 0.0 {
                    return Err(TierOverrideError::BadCost { tier, value: v });
                }
                policy.cost_per_cold_call_micros = (v * 1_000_000.0).round() as i64;
            }
        }
        Ok(table)
    }

    /// The effective policy of `tier`.
    pub fn policy(&self, tier: Tier) -> TierPolicy {
        self.policies[&tier]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_published_table() {
        let day = 24 * HOUR;
        let growth = Tier::Growth.default_policy();
        assert_eq!(growth.freshness, 7 * day);
        assert_eq!(growth.monthly_cold_cap, 1_000);
        assert_eq!(growth.account_daily_cold_limit, 500);
        assert_eq!(growth.cost_per_cold_call_usd(), 0.04);
        assert!(Tier::Enterprise.default_policy().force_fresh);
        assert_eq!(Tier::Enterprise.default_policy().freshness, HOUR);
        assert_eq!(Tier::Free.default_policy().monthly_cold_cap, 0);
        assert_eq!(
            Tier::Starter.default_policy().cost_per_cold_call_usd(),
            0.08
        );
        assert_eq!(Tier::Scale.default_policy().account_daily_cold_limit, 2_000);
    }

    #[test]
    fn overrides_apply_per_field() {
        let mut overrides = BTreeMap::new();
        overrides.insert(
            "growth".to_owned(),
            TierOverride {
                monthly_cold_cap: Some(5),
                cost_per_cold_call_usd: Some(0.5),
                ..Default::default()
            },
        );
        let table = TierTable::with_overrides(&overrides).expect("valid");
        let growth = table.policy(Tier::Growth);
        assert_eq!(growth.monthly_cold_cap, 5);
        assert_eq!(growth.cost_per_cold_call_micros, 500_000);
        assert_eq!(growth.key_hourly_cold_limit, 200);
        assert_eq!(table.policy(Tier::Scale), Tier::Scale.default_policy());
    }

    #[test]
    fn unknown_tier_names_are_refused() {
        let mut overrides = BTreeMap::new();
        overrides.insert("platinum".to_owned(), TierOverride::default());
        assert!(TierTable::with_overrides(&overrides).is_err());
        assert_eq!("Growth".parse::<Tier>(), Ok(Tier::Growth));
    }
}
