//! The score record (API.md §8) and the arithmetic that makes it reproducible:
//! category scores combined by weight, the grade chart and the hard caps of SCORING.md.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What one check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    Warn,
    Fail,
    Info,
    /// The probe could not look; costs no points.
    Error,
}

/// One explained finding: every point gained or lost is one of these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Check {
    /// Stable identifier, e.g. `hsts` or `spf-lookup-limit`.
    pub id: String,
    pub status: CheckStatus,
    /// Signed effect on the category score.
    pub points: i32,
    /// What was seen.
    pub evidence: String,
    /// What the domain owner can change.
    pub recommendation: String,
    /// For checks that follow a published tool (the HTTP Observatory), its result name,
    /// e.g. `csp-implemented-with-unsafe-inline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

/// The five scored areas.
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
#[serde(rename_all = "snake_case")]
pub enum CategoryId {
    Tls,
    HttpHeaders,
    Email,
    Dns,
    Hygiene,
}

impl CategoryId {
    /// Every category, in the order records list them.
    pub const ALL: [CategoryId; 5] = [
        CategoryId::Tls,
        CategoryId::HttpHeaders,
        CategoryId::Email,
        CategoryId::Dns,
        CategoryId::Hygiene,
    ];

    /// Its weight in the total (SCORING.md).
    pub fn weight(self) -> u32 {
        match self {
            CategoryId::Tls => 30,
            CategoryId::HttpHeaders => 25,
            CategoryId::Email => 20,
            CategoryId::Dns => 15,
            CategoryId::Hygiene => 10,
        }
    }

    /// The id as records spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            CategoryId::Tls => "tls",
            CategoryId::HttpHeaders => "http_headers",
            CategoryId::Email => "email",
            CategoryId::Dns => "dns",
            CategoryId::Hygiene => "hygiene",
        }
    }
}

/// One category's score and the checks behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Category {
    pub id: CategoryId,
    /// 0–100, or `null` when nothing in the category could be measured
    /// (it then drops out of the weighted total).
    pub score: Option<u32>,
    pub weight: u32,
    pub checks: Vec<Check>,
}

/// A hard cap on the total grade (SCORING.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GradeCap {
    /// No working HTTPS at all: F.
    NoHttps,
    /// Untrusted, expired or mismatched certificate: at most D.
    BadCertificate,
}

impl GradeCap {
    /// The highest score the cap allows.
    pub fn max_score(self) -> u32 {
        match self {
            GradeCap::NoHttps => 59,
            GradeCap::BadCertificate => 65,
        }
    }
}

/// A domain's score, as stored and served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScoreRecord {
    pub domain: String,
    pub score: u32,
    pub grade: String,
    pub scored_at: DateTime<Utc>,
    pub engine_version: String,
    /// True when served from storage without a run.
    pub cached: bool,
    /// Hard caps that lowered the total, if any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<String>)]
    pub caps: Vec<GradeCap>,
    pub categories: Vec<Category>,
}

impl ScoreRecord {
    /// Assembles a record from its categories: weighted total, caps, grade.
    pub fn assemble(
        domain: &str,
        categories: Vec<Category>,
        caps: Vec<GradeCap>,
        scored_at: DateTime<Utc>,
        engine_version: &str,
    ) -> ScoreRecord {
        let uncapped = weighted_total(&categories);
        let score = caps.iter().map(|c| c.max_score()).fold(uncapped, u32::min);
        let applied: Vec<GradeCap> = caps
            .into_iter()
            .filter(|c| c.max_score() < uncapped)
            .collect();
        ScoreRecord {
            domain: domain.to_owned(),
            score,
            grade: grade_for(score).to_owned(),
            scored_at,
            engine_version: engine_version.to_owned(),
            cached: false,
            caps: applied,
            categories,
        }
    }
}

/// round(Σ weight × score / Σ weights of measured categories); 0 when none could be measured.
pub fn weighted_total(categories: &[Category]) -> u32 {
    let (sum, weights) = categories
        .iter()
        .filter_map(|c| c.score.map(|s| (s.min(100) * c.weight, c.weight)))
        .fold((0u32, 0u32), |(s, w), (cs, cw)| (s + cs, w + cw));
    if weights == 0 {
        return 0;
    }
    // Integer rounding half up, so the same inputs give the same total everywhere.
    (2 * sum + weights) / (2 * weights)
}

/// The grade chart of SCORING.md.
pub fn grade_for(score: u32) -> &'static str {
    const CHART: [(u32, &str); 12] = [
        (97, "A+"),
        (93, "A"),
        (90, "A-"),
        (87, "B+"),
        (83, "B"),
        (80, "B-"),
        (77, "C+"),
        (73, "C"),
        (70, "C-"),
        (67, "D+"),
        (63, "D"),
        (60, "D-"),
    ];
    CHART
        .iter()
        .find(|(floor, _)| score >= *floor)
        .map_or("F", |(_, g)| g)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn category(id: CategoryId, score: Option<u32>) -> Category {
        Category {
            id,
            score,
            weight: id.weight(),
            checks: vec![],
        }
    }

    #[test]
    fn grade_chart_boundaries() {
        let cases = [
            (100, "A+"),
            (97, "A+"),
            (96, "A"),
            (93, "A"),
            (90, "A-"),
            (89, "B+"),
            (83, "B"),
            (80, "B-"),
            (79, "C+"),
            (73, "C"),
            (70, "C-"),
            (69, "D+"),
            (63, "D"),
            (60, "D-"),
            (59, "F"),
            (0, "F"),
        ];
        for (score, grade) in cases {
            assert_eq!(grade_for(score), grade, "score {score}");
        }
    }

    #[test]
    fn weighted_total_skips_unmeasured_categories_and_rounds_half_up() {
        let all = vec![
            category(CategoryId::Tls, Some(100)),
            category(CategoryId::HttpHeaders, Some(50)),
            category(CategoryId::Email, Some(75)),
            category(CategoryId::Dns, Some(80)),
            category(CategoryId::Hygiene, None),
        ];
        // (3000 + 1250 + 1500 + 1200) / 90 = 77.2
        assert_eq!(weighted_total(&all), 77);
        let halves = vec![
            category(CategoryId::Dns, Some(1)),
            category(CategoryId::Hygiene, Some(0)),
        ];
        // 15 / 25 = 0.6 → 1
        assert_eq!(weighted_total(&halves), 1);
        assert_eq!(weighted_total(&[category(CategoryId::Tls, None)]), 0);
    }

    #[test]
    fn caps_lower_the_total_and_are_recorded_only_when_they_bite() {
        let cats = vec![
            category(CategoryId::Tls, Some(100)),
            category(CategoryId::Email, Some(100)),
        ];
        let now = Utc::now();
        let capped = ScoreRecord::assemble(
            "x.test",
            cats.clone(),
            vec![GradeCap::BadCertificate],
            now,
            "t",
        );
        assert_eq!((capped.score, capped.grade.as_str()), (65, "D"));
        assert_eq!(capped.caps, vec![GradeCap::BadCertificate]);
        let low = vec![category(CategoryId::Tls, Some(10))];
        let unbitten =
            ScoreRecord::assemble("x.test", low, vec![GradeCap::BadCertificate], now, "t");
        assert_eq!(unbitten.score, 10);
        assert!(unbitten.caps.is_empty());
        let no_https = ScoreRecord::assemble("x.test", cats, vec![GradeCap::NoHttps], now, "t");
        assert_eq!(no_https.grade, "F");
    }
}
