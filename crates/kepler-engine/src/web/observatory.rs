//! Runs the twelve tests over the evidence and sums them the Observatory's way:
//! baseline 100, every penalty counted, bonuses only when the score without
//! them (the uncurved score) is at least 90.

use kepler_core::{Category, CategoryId, Check, CheckStatus};

use super::analyze::{self, Finding};
use super::probe::graded_chain;
use super::results::{Kind, Outcome};
use super::{PreloadList, WebEvidence, cookies, csp};

/// The Observatory algorithm version these rules follow.
pub const ALGORITHM_VERSION: u32 = 6;

const BASELINE: i32 = 100;
const MINIMUM_SCORE_FOR_EXTRA_CREDIT: i32 = 90;
/// The summary check's id.
pub(crate) const SUMMARY_ID: &str = "observatory-grade";

/// The test ids, in the order checks are listed.
pub(crate) const TEST_IDS: [&str; 12] = [
    "content-security-policy",
    "cookies",
    "cross-origin-resource-sharing",
    "redirection",
    "referrer-policy",
    "strict-transport-security",
    "subresource-integrity",
    "x-content-type-options",
    "x-frame-options",
    "cross-origin-resource-policy",
    "cross-origin-opener-policy",
    "cross-origin-embedder-policy",
];

/// The Observatory's grade for a raw score (100+ is A+; bands of 5 below).
pub fn observatory_grade(score: i32) -> &'static str {
    match score.max(0) {
        100.. => "A+",
        90..=99 => "A",
        85..=89 => "A-",
        80..=84 => "B+",
        70..=79 => "B",
        65..=69 => "B-",
        60..=64 => "C+",
        50..=59 => "C",
        45..=49 => "C-",
        40..=44 => "D+",
        30..=39 => "D",
        25..=29 => "D-",
        _ => "F",
    }
}

/// Scores the category with the built-in HSTS preload list.
pub fn score(evidence: &WebEvidence) -> Category {
    score_with_preload(evidence, &PreloadList::builtin())
}

/// Scores the category against a given HSTS preload list.
pub fn score_with_preload(evidence: &WebEvidence, preload: &PreloadList) -> Category {
    let category = |score, checks| Category {
        id: CategoryId::HttpHeaders,
        score,
        weight: CategoryId::HttpHeaders.weight(),
        checks,
    };
    let Some(graded) = graded_chain(&evidence.http, &evidence.https) else {
        return category(None, unreachable_checks(evidence));
    };
    let Some(last) = graded.hops.last() else {
        return category(None, unreachable_checks(evidence));
    };
    let html = graded.html.as_ref();
    let session_https = graded.start.starts_with("https:");
    let domain = evidence.domain.as_str();

    let csp_input = csp::Input {
        header_values: last.values("content-security-policy").collect(),
        meta: if last.mime().is_some_and(|m| super::is_html_mime(&m)) {
            html.map_or(&[][..], |h| &h.meta_csp[..])
        } else {
            &[]
        },
        report_only: last
            .values("content-security-policy-report-only")
            .next()
            .is_some(),
        https: session_https,
    };
    let csp = csp::test(&csp_input);
    let hsts = analyze::hsts(&evidence.https, domain, preload);
    let jar = cookies::jar(graded.hops.iter().flat_map(|hop| {
        let url = url::Url::parse(&hop.url).ok();
        let host = url
            .as_ref()
            .and_then(|u| u.host_str())
            .unwrap_or(domain)
            .to_owned();
        let path = url
            .as_ref()
            .map_or_else(|| "/".to_owned(), |u| u.path().to_owned());
        let now = hop.values("date").next().and_then(cookies::cookie_date);
        hop.values("set-cookie")
            .filter_map(move |raw| cookies::parse(raw, &host, &path, now))
            .collect::<Vec<_>>()
    }));
    let final_raw: Vec<&str> = last.values("set-cookie").collect();
    let frame_ancestors = csp
        .frame_ancestors
        .as_ref()
        .map(|s| s.iter().cloned().collect::<Vec<_>>().join(" "));

    let findings: [Finding; 12] = [
        (csp.outcome, csp.evidence),
        cookies::test(&jar, &final_raw, hsts.0.passes()),
        analyze::cors(evidence.cors.as_ref()),
        analyze::redirection(&evidence.http, preload),
        analyze::referrer_policy(last, html),
        hsts,
        analyze::subresource_integrity(last, html, session_https, domain),
        analyze::x_content_type_options(last),
        analyze::x_frame_options(last, frame_ancestors.as_deref()),
        analyze::cross_origin_resource_policy(last),
        analyze::cross_origin_opener_policy(last),
        analyze::cross_origin_embedder_policy(last),
    ];

    let penalties: i32 = findings.iter().map(|(o, _)| o.modifier.min(0)).sum();
    let bonuses: i32 = findings.iter().map(|(o, _)| o.modifier.max(0)).sum();
    let uncurved = BASELINE + penalties;
    let bonus_counted = uncurved >= MINIMUM_SCORE_FOR_EXTRA_CREDIT;
    let raw = if bonus_counted {
        uncurved + bonuses
    } else {
        uncurved
    };
    let passed = findings.iter().filter(|(o, _)| o.passes()).count();

    let mut checks: Vec<Check> = TEST_IDS
        .iter()
        .zip(findings)
        .map(|(id, (o, seen))| check(id, o, seen, bonus_counted))
        .collect();
    let bonus_text = if bonus_counted {
        format!(
            "bonuses +{bonuses} counted because the uncurved score {uncurved} is at least {MINIMUM_SCORE_FOR_EXTRA_CREDIT}"
        )
    } else {
        format!(
            "bonuses (+{bonuses}) not counted because the uncurved score {uncurved} is below {MINIMUM_SCORE_FOR_EXTRA_CREDIT}"
        )
    };
    checks.push(Check {
        id: SUMMARY_ID.to_owned(),
        status: CheckStatus::Info,
        points: 0,
        evidence: format!(
            "Observatory-style score {raw} (grade {}): baseline {BASELINE}, penalties {penalties}, {bonus_text}; \
             {passed}/12 tests passed; graded response {} (HTTP {}); MDN HTTP Observatory algorithm v{ALGORITHM_VERSION}",
            observatory_grade(raw),
            last.url,
            last.status,
        ),
        recommendation: "The category score is this score clamped to 0–100; see each test for what to change.".to_owned(),
        result: Some(observatory_grade(raw).to_owned()),
    });
    let clamped = u32::try_from(raw.clamp(0, 100)).unwrap_or(0);
    category(Some(clamped), checks)
}

fn check(id: &str, outcome: Outcome, seen: String, bonus_counted: bool) -> Check {
    let status = match (outcome.kind, outcome.modifier) {
        (Kind::Fail, m) if m < 0 => CheckStatus::Fail,
        (Kind::Fail, _) => CheckStatus::Warn,
        (_, m) if m < 0 => CheckStatus::Warn,
        (Kind::Neutral, _) => CheckStatus::Info,
        (Kind::Pass, _) => CheckStatus::Pass,
    };
    // A bonus the uncurved score did not earn changes nothing, so it shows as 0.
    let points = if outcome.modifier > 0 && !bonus_counted {
        0
    } else {
        outcome.modifier
    };
    let mut evidence = format!("{} Seen: {seen}.", outcome.description);
    if outcome.modifier > 0 && !bonus_counted {
        evidence.push_str(&format!(
            " (Bonus of +{} not counted: penalties keep the uncurved score below 90.)",
            outcome.modifier
        ));
    }
    Check {
        id: id.to_owned(),
        status,
        points,
        evidence,
        recommendation: outcome.recommendation.to_owned(),
        result: Some(outcome.name.to_owned()),
    }
}

fn unreachable_checks(evidence: &WebEvidence) -> Vec<Check> {
    let why = |chain: &super::Chain| {
        chain
            .failure()
            .map_or_else(|| "no response".to_owned(), ToString::to_string)
    };
    let seen = format!(
        "{}: {}; {}: {}",
        evidence.http.start,
        why(&evidence.http),
        evidence.https.start,
        why(&evidence.https)
    );
    TEST_IDS
        .iter()
        .chain(std::iter::once(&SUMMARY_ID))
        .map(|id| Check {
            id: (*id).to_owned(),
            status: CheckStatus::Error,
            points: 0,
            evidence: format!("Neither HTTP nor HTTPS answered, so nothing could be looked at ({seen})."),
            recommendation: "Make the site answer on http:// and https:// (or check that it is meant to be offline).".to_owned(),
            result: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::observatory_grade;

    #[test]
    fn grade_chart() {
        let cases = [
            (135, "A+"),
            (100, "A+"),
            (99, "A"),
            (90, "A"),
            (89, "A-"),
            (85, "A-"),
            (84, "B+"),
            (80, "B+"),
            (79, "B"),
            (70, "B"),
            (69, "B-"),
            (65, "B-"),
            (64, "C+"),
            (60, "C+"),
            (59, "C"),
            (50, "C"),
            (49, "C-"),
            (45, "C-"),
            (44, "D+"),
            (40, "D+"),
            (39, "D"),
            (30, "D"),
            (29, "D-"),
            (25, "D-"),
            (24, "F"),
            (0, "F"),
            (-40, "F"),
        ];
        for (score, grade) in cases {
            assert_eq!(observatory_grade(score), grade, "{score}");
        }
    }
}
