//! The shared arithmetic of the deduction-style categories (`dns`, `email`):
//! a category starts at 100, every check adds its (signed, usually negative)
//! points, and the sum is clamped to 0–100. A check whose probe could not look
//! (`error`) carries 0 points; a category with no check that reached a verdict
//! (`pass`, `warn` or `fail`) has no score (`null`) and drops out of the weighted total.

use std::time::Duration;

use kepler_core::{Category, CategoryId, Check, CheckStatus};

/// Declares a category's point constants and `ALL`, the (name, points) table
/// the documentation is checked against, from one list.
#[macro_export]
macro_rules! point_table {
    ($($(#[$doc:meta])* $name:ident = $value:expr;)*) => {
        $($(#[$doc])* pub const $name: i32 = $value;)*
        /// Every constant above, by name, as docs/scoring/ lists them.
        pub const ALL: &[(&str, i32)] = &[$((stringify!($name), $name)),*];
    };
}

/// Where every deduction-style category starts.
pub const BASELINE: i32 = 100;

/// Builds one check; `points` is its signed effect on the category score.
pub fn check(
    id: &str,
    status: CheckStatus,
    points: i32,
    evidence: impl Into<String>,
    recommendation: impl Into<String>,
) -> Check {
    Check {
        id: id.to_owned(),
        status,
        points,
        evidence: evidence.into(),
        recommendation: recommendation.into(),
        result: None,
    }
}

/// A passing check: no points lost. `recommendation` says how to keep it so
/// (what would break it, or the next step up).
pub fn pass(id: &str, evidence: impl Into<String>, recommendation: impl Into<String>) -> Check {
    check(id, CheckStatus::Pass, 0, evidence, recommendation)
}

/// An informational check: no points either way. `recommendation` says what
/// the information means for the owner.
pub fn info(id: &str, evidence: impl Into<String>, recommendation: impl Into<String>) -> Check {
    check(id, CheckStatus::Info, 0, evidence, recommendation)
}

/// A check the probe could not perform: shown as such and free of charge.
/// `recommendation` says what to look at on the owner's side if it persists.
pub fn error(id: &str, evidence: impl Into<String>, recommendation: impl Into<String>) -> Check {
    check(id, CheckStatus::Error, 0, evidence, recommendation)
}

/// The category score of deduction-style checks: `clamp(100 + Σ points, 0, 100)`,
/// or `None` when no check reached a verdict (only `info` and `error`).
pub fn deduction_score(checks: &[Check]) -> Option<u32> {
    let verdict = |c: &Check| {
        matches!(
            c.status,
            CheckStatus::Pass | CheckStatus::Warn | CheckStatus::Fail
        )
    };
    if !checks.iter().any(verdict) {
        return None;
    }
    let total = checks
        .iter()
        .fold(BASELINE, |acc, c| acc.saturating_add(c.points));
    Some(total.clamp(0, 100).unsigned_abs())
}

/// A category built from deduction-style checks.
pub fn deduction_category(id: CategoryId, checks: Vec<Check>) -> Category {
    Category {
        id,
        score: deduction_score(&checks),
        weight: id.weight(),
        checks,
    }
}

/// The category reported when an area's probe did not finish within its limit.
pub fn timed_out(id: CategoryId, limit: Duration) -> Category {
    let evidence = format!(
        "the {} probe did not finish within its limit of {}",
        id.as_str(),
        humanize(limit)
    );
    Category {
        id,
        score: None,
        weight: id.weight(),
        checks: vec![error(
            &format!("{}-probe", id.as_str()),
            evidence,
            "If this repeats on later runs, check that your name servers and web servers answer promptly from outside your network.",
        )],
    }
}

/// A duration as people write it in the configuration (`10s`, `1500ms`).
pub fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Test helper: every check of `cat` tells the owner something to act on,
/// whatever its status (issue 3: pass and info checks recommend too).
#[cfg(test)]
pub fn assert_every_check_recommends(cat: &Category) {
    for c in &cat.checks {
        assert!(
            !c.recommendation.trim().is_empty(),
            "{}/{} ({:?}) has no recommendation: {c:#?}",
            cat.id.as_str(),
            c.id,
            c.status
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_points(status: CheckStatus, points: i32) -> Check {
        check("x", status, points, "", "")
    }

    #[test]
    fn deductions_are_summed_from_one_hundred_and_clamped() {
        type Case<'a> = (&'a [(CheckStatus, i32)], Option<u32>);
        let cases: [Case; 7] = [
            (&[], None),
            (&[(CheckStatus::Error, 0)], None),
            (&[(CheckStatus::Info, 0), (CheckStatus::Error, 0)], None),
            (
                &[(CheckStatus::Pass, 0), (CheckStatus::Error, 0)],
                Some(100),
            ),
            (
                &[(CheckStatus::Warn, -5), (CheckStatus::Fail, -20)],
                Some(75),
            ),
            (
                &[(CheckStatus::Fail, -60), (CheckStatus::Fail, -60)],
                Some(0),
            ),
            (&[(CheckStatus::Info, 0), (CheckStatus::Pass, 5)], Some(100)),
        ];
        for (checks, expected) in cases {
            let checks: Vec<Check> = checks.iter().map(|(s, p)| with_points(*s, *p)).collect();
            assert_eq!(deduction_score(&checks), expected, "{checks:?}");
        }
    }

    #[test]
    fn a_timed_out_area_is_unscored_and_says_why() {
        let cat = timed_out(CategoryId::Email, Duration::from_secs(10));
        assert_eq!(cat.score, None);
        assert_eq!(cat.weight, 20);
        assert_eq!(cat.checks[0].id, "email-probe");
        assert_eq!(cat.checks[0].status, CheckStatus::Error);
        assert!(
            cat.checks[0].evidence.contains("10s"),
            "{}",
            cat.checks[0].evidence
        );
    }
}
