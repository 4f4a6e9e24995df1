//! Sandbox keys (`ki_test_`): four canned domains answered inline at grades A, B,
//! D and F, never counted, never charged, never queued.
//!
//! The records are built with the same arithmetic as real ones
//! (`ScoreRecord::assemble`): every category score is 100 plus its checks'
//! points, clamped to 0–100, and the total is the weighted mean.

use chrono::{TimeZone, Utc};
use kepler_core::record::{Category, CategoryId, Check, CheckStatus, GradeCap, ScoreRecord};

use crate::error::{ApiError, ErrorCode};

/// The canned domains, best first.
pub const DOMAINS: [&str; 4] = [
    "grade-a.sandbox.test",
    "grade-b.sandbox.test",
    "grade-d.sandbox.test",
    "grade-f.sandbox.test",
];

/// The engine version canned records claim.
pub const SANDBOX_ENGINE_VERSION: &str = "sandbox-1";

type CheckSpec = (&'static str, CheckStatus, i32, &'static str, &'static str);

fn category(id: CategoryId, checks: &[CheckSpec]) -> Category {
    let checks: Vec<Check> = checks
        .iter()
        .map(
            |(check_id, status, points, evidence, recommendation)| Check {
                id: (*check_id).to_owned(),
                status: *status,
                points: *points,
                evidence: (*evidence).to_owned(),
                recommendation: if *recommendation == KEEP {
                    keep_doing(check_id)
                } else {
                    recommendation
                }
                .to_owned(),
                result: None,
            },
        )
        .collect();
    let score = (100 + checks.iter().map(|c| c.points).sum::<i32>()).clamp(0, 100) as u32;
    Category {
        id,
        score: Some(score),
        weight: id.weight(),
        checks,
    }
}

use CheckStatus::{Fail, Info, Pass, Warn};

/// Marks a passing check whose recommendation is [`keep_doing`]'s for its id.
const KEEP: &str = "";

/// What keeps a passing check passing, as the engine would say it.
fn keep_doing(check_id: &str) -> &'static str {
    match check_id {
        "tls-certificate" => {
            "Renew from the same trusted CA with the full chain, and keep every served name on the certificate."
        }
        "tls-expiry" => "Renew automatically (ACME) well before notAfter; alert at 14 days.",
        "tls-1.3" => "Keep TLS 1.3 enabled when you change load balancers or TLS libraries.",
        "tls-legacy-protocols" => {
            "Keep TLS 1.0 and 1.1 disabled on every endpoint, including new ones."
        }
        "tls-forward-secrecy" => "Keep offering only ECDHE (or DHE) key exchange.",
        "content-security-policy" => {
            "Keep the policy in step with the page: add a source only when the page needs it, and watch violation reports."
        }
        "strict-transport-security" => {
            "Keep max-age at a year or more, and HTTPS working on every subdomain."
        }
        "x-content-type-options" => {
            "Keep sending nosniff on every response, and accurate Content-Type headers."
        }
        "x-frame-options" => {
            "Keep frame-ancestors in the CSP on every page that must not be framed."
        }
        "referrer-policy" => "Keep a policy at least as strict as strict-origin-when-cross-origin.",
        "redirection" => "Keep the first hop on the same host and every later hop on HTTPS.",
        "dmarc" => {
            "Keep reading the aggregate reports; they show new senders before the policy blocks them."
        }
        "mta-sts" => "Change the id in the TXT record whenever you change the policy file.",
        "tls-rpt" => "Keep the report address monitored: its reports show failed TLS deliveries.",
        "dnssec" => {
            "Keep signatures fresh (automatic re-signing) and roll keys with the registrar's DS in step."
        }
        "caa" => "Update the CAA records before you switch or add a certificate authority.",
        "security-txt" => "Update Expires before it passes and keep the Contact monitored.",
        "registration-age" => {
            "Keep auto-renewal and the registrar account's two-factor authentication on."
        }
        "transfer-lock" => "Keep the lock on; lift it only for a planned transfer.",
        _ => "Keep this setting as it is when the site or its hosting changes.",
    }
}

fn grade_a() -> Vec<Category> {
    vec![
        category(
            CategoryId::Tls,
            &[
                (
                    "tls-certificate",
                    Pass,
                    0,
                    "Certificate for grade-a.sandbox.test issued by Sandbox CA, chain trusted, name matches.",
                    KEEP,
                ),
                (
                    "tls-expiry",
                    Pass,
                    0,
                    "Certificate expires in 74 days.",
                    KEEP,
                ),
                (
                    "tls-1.3",
                    Pass,
                    0,
                    "TLS 1.3 negotiated with TLS13_AES_128_GCM_SHA256.",
                    KEEP,
                ),
                (
                    "tls-legacy-protocols",
                    Pass,
                    0,
                    "TLS 1.0 and TLS 1.1 refused.",
                    KEEP,
                ),
                (
                    "tls-forward-secrecy",
                    Pass,
                    0,
                    "Only ECDHE key exchange offered.",
                    KEEP,
                ),
            ],
        ),
        category(
            CategoryId::HttpHeaders,
            &[
                (
                    "content-security-policy",
                    Pass,
                    0,
                    "CSP: default-src 'none'; script-src 'self'; frame-ancestors 'none'.",
                    KEEP,
                ),
                (
                    "strict-transport-security",
                    Pass,
                    0,
                    "max-age=63072000; includeSubDomains; preload",
                    KEEP,
                ),
                ("x-content-type-options", Pass, 0, "nosniff", KEEP),
                (
                    "x-frame-options",
                    Pass,
                    0,
                    "Framing blocked by CSP frame-ancestors 'none'.",
                    KEEP,
                ),
                ("referrer-policy", Pass, 0, "no-referrer", KEEP),
                (
                    "redirection",
                    Pass,
                    0,
                    "http:// redirects to https:// on the same host.",
                    KEEP,
                ),
            ],
        ),
        category(
            CategoryId::Email,
            &[
                (
                    "spf",
                    Pass,
                    0,
                    "v=spf1 mx -all (2 DNS-querying terms of 10).",
                    KEEP,
                ),
                (
                    "dmarc",
                    Pass,
                    0,
                    "v=DMARC1; p=reject; rua=mailto:dmarc@grade-a.sandbox.test",
                    KEEP,
                ),
                (
                    "mta-sts",
                    Pass,
                    0,
                    "Policy mode enforce, max_age 604800.",
                    KEEP,
                ),
                (
                    "tls-rpt",
                    Pass,
                    0,
                    "v=TLSRPTv1; rua=mailto:tlsrpt@grade-a.sandbox.test",
                    KEEP,
                ),
            ],
        ),
        category(
            CategoryId::Dns,
            &[
                ("dnssec", Pass, 0, "Answers validate: secure.", KEEP),
                ("caa", Pass, 0, "0 issue \"letsencrypt.org\"", KEEP),
                (
                    "ipv6",
                    Warn,
                    -10,
                    "No AAAA record on the name servers.",
                    "Give at least one name server an IPv6 address.",
                ),
            ],
        ),
        category(
            CategoryId::Hygiene,
            &[
                (
                    "security-txt",
                    Pass,
                    0,
                    "Contact and Expires present, served over HTTPS.",
                    KEEP,
                ),
                (
                    "registration-age",
                    Pass,
                    0,
                    "Registered 11 years ago.",
                    KEEP,
                ),
                ("transfer-lock", Pass, 0, "clientTransferProhibited", KEEP),
            ],
        ),
    ]
}

fn grade_b() -> Vec<Category> {
    vec![
        category(
            CategoryId::Tls,
            &[
                (
                    "tls-certificate",
                    Pass,
                    0,
                    "Chain trusted, name matches.",
                    KEEP,
                ),
                (
                    "tls-1.3",
                    Warn,
                    -10,
                    "TLS 1.3 not supported; TLS 1.2 negotiated.",
                    "Enable TLS 1.3 on the web server.",
                ),
                (
                    "tls-legacy-protocols",
                    Pass,
                    0,
                    "TLS 1.0 and TLS 1.1 refused.",
                    KEEP,
                ),
            ],
        ),
        category(
            CategoryId::HttpHeaders,
            &[
                (
                    "content-security-policy",
                    Fail,
                    -20,
                    "CSP allows 'unsafe-inline' in script-src.",
                    "Remove 'unsafe-inline'; use nonces or hashes.",
                ),
                (
                    "strict-transport-security",
                    Pass,
                    0,
                    "max-age=31536000",
                    KEEP,
                ),
                ("x-content-type-options", Pass, 0, "nosniff", KEEP),
                (
                    "referrer-policy",
                    Pass,
                    0,
                    "strict-origin-when-cross-origin",
                    KEEP,
                ),
            ],
        ),
        category(
            CategoryId::Email,
            &[
                (
                    "spf",
                    Pass,
                    0,
                    "v=spf1 include:_spf.example.net -all (4 of 10 lookups).",
                    KEEP,
                ),
                (
                    "dmarc",
                    Warn,
                    -15,
                    "p=quarantine; pct=50",
                    "Raise pct to 100 and move to p=reject once reports are clean.",
                ),
                (
                    "mta-sts",
                    Warn,
                    -10,
                    "No _mta-sts TXT record.",
                    "Publish an MTA-STS policy in enforce mode.",
                ),
            ],
        ),
        category(
            CategoryId::Dns,
            &[
                (
                    "dnssec",
                    Warn,
                    -20,
                    "Zone is not signed: insecure.",
                    "Sign the zone and publish a DS record at the registrar.",
                ),
                ("caa", Pass, 0, "0 issue \"digicert.com\"", KEEP),
            ],
        ),
        category(
            CategoryId::Hygiene,
            &[
                (
                    "security-txt",
                    Fail,
                    -30,
                    "No /.well-known/security.txt.",
                    "Publish security.txt with Contact and Expires (RFC 9116).",
                ),
                ("registration-age", Pass, 0, "Registered 6 years ago.", KEEP),
            ],
        ),
    ]
}

fn grade_d() -> Vec<Category> {
    vec![
        category(
            CategoryId::Tls,
            &[
                (
                    "tls-certificate",
                    Pass,
                    0,
                    "Chain trusted, name matches.",
                    KEEP,
                ),
                (
                    "tls-legacy-protocols",
                    Fail,
                    -30,
                    "TLS 1.0 accepted: ServerHello version 0x0301.",
                    "Disable TLS 1.0 and 1.1.",
                ),
                (
                    "tls-1.3",
                    Warn,
                    -10,
                    "TLS 1.3 not supported.",
                    "Enable TLS 1.3.",
                ),
            ],
        ),
        category(
            CategoryId::HttpHeaders,
            &[
                (
                    "content-security-policy",
                    Fail,
                    -25,
                    "No Content-Security-Policy header.",
                    "Add a CSP starting from default-src 'self'.",
                ),
                (
                    "strict-transport-security",
                    Fail,
                    -10,
                    "Strict-Transport-Security: max-age=86400 (under six months).",
                    "Raise max-age to at least 15552000 (six months).",
                ),
                (
                    "x-frame-options",
                    Warn,
                    -10,
                    "X-Frame-Options: ALLOW-FROM (obsolete, ignored by browsers).",
                    "Send CSP frame-ancestors 'self' instead.",
                ),
            ],
        ),
        category(
            CategoryId::Email,
            &[
                (
                    "spf",
                    Warn,
                    -15,
                    "v=spf1 include:mail.example ~all (softfail).",
                    "End SPF with -all once every sender is listed.",
                ),
                (
                    "dmarc",
                    Warn,
                    -15,
                    "p=quarantine; pct=50: half of failing mail is still delivered.",
                    "Raise pct to 100, then move to p=reject.",
                ),
            ],
        ),
        category(
            CategoryId::Dns,
            &[
                (
                    "dnssec",
                    Warn,
                    -20,
                    "Zone is not signed: insecure.",
                    "Sign the zone.",
                ),
                (
                    "caa",
                    Warn,
                    -10,
                    "No CAA record.",
                    "Publish CAA naming the CAs you use.",
                ),
            ],
        ),
        category(
            CategoryId::Hygiene,
            &[
                (
                    "security-txt",
                    Fail,
                    -30,
                    "No security.txt.",
                    "Publish security.txt (RFC 9116).",
                ),
                ("registration-age", Info, 0, "Registered 2 years ago.", KEEP),
            ],
        ),
    ]
}

fn grade_f() -> Vec<Category> {
    vec![
        category(
            CategoryId::Tls,
            &[(
                "tls-handshake",
                Fail,
                -100,
                "Nothing answers TLS on port 443.",
                "Serve the site over HTTPS with a trusted certificate.",
            )],
        ),
        category(
            CategoryId::HttpHeaders,
            &[
                (
                    "strict-transport-security",
                    Fail,
                    -20,
                    "Site served over plain HTTP only.",
                    "Serve HTTPS and send HSTS.",
                ),
                (
                    "content-security-policy",
                    Fail,
                    -25,
                    "No Content-Security-Policy header.",
                    "Add a CSP.",
                ),
                (
                    "redirection",
                    Fail,
                    -20,
                    "http:// does not redirect to https://.",
                    "Redirect every http:// request to https://.",
                ),
            ],
        ),
        category(
            CategoryId::Email,
            &[
                (
                    "spf",
                    Fail,
                    -40,
                    "No SPF record.",
                    "Publish v=spf1 listing your senders, ending in -all.",
                ),
                (
                    "dmarc",
                    Fail,
                    -40,
                    "No DMARC record at _dmarc.",
                    "Publish v=DMARC1; p=reject (start with p=none and rua).",
                ),
            ],
        ),
        category(
            CategoryId::Dns,
            &[
                ("dnssec", Warn, -20, "Zone is not signed.", "Sign the zone."),
                ("caa", Warn, -10, "No CAA record.", "Publish CAA."),
            ],
        ),
        category(
            CategoryId::Hygiene,
            &[
                (
                    "security-txt",
                    Fail,
                    -30,
                    "No security.txt.",
                    "Publish security.txt.",
                ),
                (
                    "registration-age",
                    Warn,
                    -20,
                    "Registered 12 days ago.",
                    "New domains are treated with caution; nothing to change but time.",
                ),
            ],
        ),
    ]
}

/// The canned record of a sandbox domain, `None` for any other name.
pub fn record(domain: &str) -> Option<ScoreRecord> {
    let (categories, caps) = match domain {
        "grade-a.sandbox.test" => (grade_a(), vec![]),
        "grade-b.sandbox.test" => (grade_b(), vec![]),
        "grade-d.sandbox.test" => (grade_d(), vec![]),
        "grade-f.sandbox.test" => (grade_f(), vec![GradeCap::NoHttps]),
        _ => return None,
    };
    let scored_at = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).single()?;
    let mut record =
        ScoreRecord::assemble(domain, categories, caps, scored_at, SANDBOX_ENGINE_VERSION);
    record.cached = true;
    Some(record)
}

/// The error for any other domain asked with a sandbox key.
pub fn unknown_domain() -> ApiError {
    ApiError::new(
        ErrorCode::SandboxDomainUnknown,
        "sandbox keys answer only the canned sandbox domains",
    )
    .field("sandbox_domains", DOMAINS.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_records_have_their_grades_and_all_five_categories() {
        let expected = [
            ("grade-a.sandbox.test", 'A'),
            ("grade-b.sandbox.test", 'B'),
            ("grade-d.sandbox.test", 'D'),
            ("grade-f.sandbox.test", 'F'),
        ];
        for (domain, letter) in expected {
            let record = record(domain).expect("canned");
            assert!(
                record.grade.starts_with(letter),
                "{domain}: {} ({})",
                record.grade,
                record.score
            );
            assert_eq!(record.categories.len(), 5, "{domain}");
            assert!(record.categories.iter().all(|c| !c.checks.is_empty()));
        }
        assert!(record("example.com").is_none());
    }

    #[test]
    fn every_canned_check_carries_a_specific_recommendation() {
        for domain in [
            "grade-a.sandbox.test",
            "grade-b.sandbox.test",
            "grade-d.sandbox.test",
            "grade-f.sandbox.test",
        ] {
            let record = record(domain).expect("canned");
            for check in record.categories.iter().flat_map(|c| &c.checks) {
                let text = check.recommendation.trim();
                assert!(
                    !text.is_empty() && !text.starts_with("Nothing to change"),
                    "{domain}/{}: {text:?}",
                    check.id
                );
            }
        }
    }
}
