//! Scoring tables over hand-built evidence, then probes against loopback servers.

use chrono::{DateTime, Duration, TimeZone, Utc};
use kepler_core::{Category, CheckStatus, Domain};

use super::*;
use crate::web::testkit::{Cert, Reply, Script, split_testnet, testnet};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date")
}

const GOOD_FILE: &str = "Contact: mailto:security@site.test\nExpires: 2026-07-01T00:00:00Z\nCanonical: https://site.test/.well-known/security.txt\nPreferred-Languages: en\n";

fn found(text: &str, location: FileLocation, https: bool, content_type: &str) -> SecurityTxtLookup {
    let path = match location {
        FileLocation::WellKnown => "/.well-known/security.txt",
        FileLocation::Legacy => "/security.txt",
    };
    let url = format!("{}://site.test{path}", if https { "https" } else { "http" });
    SecurityTxtLookup {
        attempts: vec![Attempt {
            url: url.clone(),
            status: Some(200),
            error: None,
            note: None,
        }],
        found: Some(FoundFile {
            url: url.clone(),
            requested: url,
            location,
            https,
            content_type: Some(content_type.to_owned()),
            file: SecurityTxt::parse(text),
        }),
    }
}

fn good_file() -> SecurityTxtLookup {
    found(
        GOOD_FILE,
        FileLocation::WellKnown,
        true,
        "text/plain; charset=utf-8",
    )
}

fn rdap(registered_days_ago: i64, expires_in_days: i64, statuses: &[&str]) -> RdapLookup {
    RdapLookup::Found {
        url: "https://rdap.test/domain/site.test".into(),
        record: RdapRecord {
            registration: Some(now() - Duration::days(registered_days_ago)),
            expiration: Some(now() + Duration::days(expires_in_days)),
            last_changed: None,
            statuses: statuses.iter().map(|s| (*s).to_owned()).collect(),
        },
    }
}

fn good_rdap() -> RdapLookup {
    rdap(4000, 400, &["client transfer prohibited"])
}

fn evidence(security_txt: SecurityTxtLookup, rdap: RdapLookup) -> HygieneEvidence {
    HygieneEvidence {
        domain: "site.test".into(),
        checked_at: now(),
        security_txt,
        rdap,
    }
}

fn check_of<'a>(category: &'a Category, id: &str) -> &'a kepler_core::Check {
    category
        .checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id} in {:#?}", category.checks))
}

/// Scores `e` and checks one check's status and points, and the total.
fn expect(e: &HygieneEvidence, id: &str, status: CheckStatus, points: i32, total: Option<u32>) {
    let category = score(e);
    let c = check_of(&category, id);
    assert_eq!(
        (c.status, c.points),
        (status, points),
        "{id}: {}",
        c.evidence
    );
    assert_eq!(category.score, total, "total with {id}");
    // Issue 3: every check, whatever its status, recommends something specific.
    for c in &category.checks {
        let rec = c.recommendation.trim();
        assert!(
            !rec.is_empty() && !rec.starts_with("Nothing to change"),
            "{}: {rec:?}",
            c.id
        );
    }
    let sum: i32 = category.checks.iter().map(|c| c.points).sum();
    if let Some(total) = total {
        assert_eq!(
            total,
            u32::try_from((100 + sum).clamp(0, 100)).unwrap_or(0),
            "points add up"
        );
    }
}

#[test]
fn a_good_file_and_registration_score_100() {
    let category = score(&evidence(good_file(), good_rdap()));
    assert_eq!(category.score, Some(100));
    assert!(
        category
            .checks
            .iter()
            .all(|c| c.points == 0 && c.status != CheckStatus::Fail),
        "{:#?}",
        category.checks
    );
    assert_eq!(
        check_of(&category, "security-txt").status,
        CheckStatus::Pass
    );
    assert_eq!(
        check_of(&category, "security-txt-canonical").status,
        CheckStatus::Pass
    );
}

#[test]
fn security_txt_table() {
    let rd = good_rdap;
    expect(
        &evidence(
            found(
                GOOD_FILE,
                FileLocation::Legacy,
                true,
                "text/plain; charset=utf-8",
            ),
            rd(),
        ),
        "security-txt",
        CheckStatus::Warn,
        -10,
        Some(90),
    );
    expect(
        &evidence(
            found(
                GOOD_FILE,
                FileLocation::WellKnown,
                false,
                "text/plain; charset=utf-8",
            ),
            rd(),
        ),
        "security-txt",
        CheckStatus::Fail,
        -30,
        Some(70),
    );
    let missing = SecurityTxtLookup {
        attempts: vec![
            Attempt {
                url: "https://site.test/.well-known/security.txt".into(),
                status: Some(404),
                error: None,
                note: None,
            },
            Attempt {
                url: "https://site.test/security.txt".into(),
                status: Some(200),
                error: None,
                note: Some("an HTML page".into()),
            },
        ],
        found: None,
    };
    expect(
        &evidence(missing, rd()),
        "security-txt",
        CheckStatus::Fail,
        -50,
        Some(50),
    );
    let unreachable = SecurityTxtLookup {
        attempts: vec![Attempt {
            url: "https://site.test/.well-known/security.txt".into(),
            status: None,
            error: Some(FetchError::Timeout),
            note: None,
        }],
        found: None,
    };
    expect(
        &evidence(unreachable.clone(), rd()),
        "security-txt",
        CheckStatus::Error,
        0,
        Some(100),
    );
    // Nothing at all could be measured: no score.
    let nothing = evidence(
        unreachable,
        RdapLookup::Unavailable {
            reason: "no route".into(),
        },
    );
    assert_eq!(score(&nothing).score, None);

    let file = |text: &str| {
        evidence(
            found(
                text,
                FileLocation::WellKnown,
                true,
                "text/plain; charset=utf-8",
            ),
            rd(),
        )
    };
    let expires = "Expires: 2026-07-01T00:00:00Z\n";
    expect(
        &file(expires),
        "security-txt-contact",
        CheckStatus::Fail,
        -20,
        Some(80),
    );
    expect(
        &file(&format!("Contact: http://site.test/report\n{expires}")),
        "security-txt-contact",
        CheckStatus::Fail,
        -20,
        Some(80),
    );
    expect(
        &file(&format!(
            "Contact: http://site.test/report\nContact: mailto:a@site.test\n{expires}"
        )),
        "security-txt-contact",
        CheckStatus::Warn,
        0,
        Some(100),
    );
    let contact = "Contact: mailto:a@site.test\n";
    expect(
        &file(contact),
        "security-txt-expires",
        CheckStatus::Fail,
        -15,
        Some(85),
    );
    expect(
        &file(&format!("{contact}Expires: soon\n")),
        "security-txt-expires",
        CheckStatus::Fail,
        -15,
        Some(85),
    );
    expect(
        &file(&format!("{contact}Expires: 2025-12-31T23:59:59Z\n")),
        "security-txt-expires",
        CheckStatus::Fail,
        -15,
        Some(85),
    );
    expect(
        &file(&format!("{contact}{expires}{expires}")),
        "security-txt-expires",
        CheckStatus::Fail,
        -15,
        Some(85),
    );
    expect(
        &file(&format!("{contact}Expires: 2028-01-01T00:00:00Z\n")),
        "security-txt-expires",
        CheckStatus::Warn,
        -5,
        Some(95),
    );
    expect(
        &file(&format!("{contact}Expires: 2026-12-31T00:00:00Z\n")),
        "security-txt-expires",
        CheckStatus::Pass,
        0,
        Some(100),
    );
    // A file missing everything is no better than no file.
    let empty_legacy = evidence(
        found(
            "Policy: https://site.test/p\n",
            FileLocation::Legacy,
            true,
            "application/octet-stream",
        ),
        rd(),
    );
    assert_eq!(score(&empty_legacy).score, Some(50));

    let typed = |ct: &str| evidence(found(GOOD_FILE, FileLocation::WellKnown, true, ct), rd());
    expect(
        &typed("text/plain"),
        "security-txt-content-type",
        CheckStatus::Warn,
        0,
        Some(100),
    );
    expect(
        &typed("Text/Plain; Charset=UTF-8"),
        "security-txt-content-type",
        CheckStatus::Pass,
        0,
        Some(100),
    );
    expect(
        &typed("application/octet-stream"),
        "security-txt-content-type",
        CheckStatus::Fail,
        -5,
        Some(95),
    );

    let signed = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nContact: mailto:a@site.test\nExpires: 2026-07-01T00:00:00Z\n-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n";
    expect(
        &file(signed),
        "security-txt-signature",
        CheckStatus::Info,
        0,
        Some(100),
    );
    expect(
        &file(&format!(
            "{contact}{expires}Canonical: https://elsewhere.test/security.txt\n"
        )),
        "security-txt-canonical",
        CheckStatus::Warn,
        0,
        Some(100),
    );
    expect(
        &file(&format!(
            "{contact}{expires}Preferred-Languages: en\nPreferred-Languages: fr\n"
        )),
        "security-txt-preferred-languages",
        CheckStatus::Warn,
        0,
        Some(100),
    );
}

#[test]
fn registration_table() {
    let with = |rdap| evidence(good_file(), rdap);
    let lock = &["client transfer prohibited"][..];
    expect(
        &with(rdap(10, 400, lock)),
        "registration-age",
        CheckStatus::Fail,
        -25,
        Some(75),
    );
    expect(
        &with(rdap(200, 400, lock)),
        "registration-age",
        CheckStatus::Warn,
        -10,
        Some(90),
    );
    expect(
        &with(rdap(365, 400, lock)),
        "registration-age",
        CheckStatus::Pass,
        0,
        Some(100),
    );
    expect(
        &with(rdap(4000, 10, lock)),
        "registration-expiry",
        CheckStatus::Warn,
        -10,
        Some(90),
    );
    expect(
        &with(rdap(4000, -1, lock)),
        "registration-expiry",
        CheckStatus::Fail,
        -20,
        Some(80),
    );
    expect(
        &with(rdap(4000, 400, &["active"])),
        "transfer-lock",
        CheckStatus::Warn,
        -15,
        Some(85),
    );
    expect(
        &with(rdap(4000, 400, &["serverTransferProhibited"])),
        "transfer-lock",
        CheckStatus::Pass,
        0,
        Some(100),
    );
    // Everything wrong at once bottoms out at 0.
    let worst = evidence(
        SecurityTxtLookup {
            attempts: vec![Attempt {
                url: "x".into(),
                status: Some(404),
                error: None,
                note: None,
            }],
            found: None,
        },
        rdap(1, -5, &[]),
    );
    assert_eq!(score(&worst).score, Some(0));

    let unavailable = with(RdapLookup::Unavailable {
        reason: "IANA bootstrap unavailable".into(),
    });
    for id in ["registration-age", "registration-expiry", "transfer-lock"] {
        expect(&unavailable, id, CheckStatus::Info, 0, Some(100));
    }
    let no_dates = with(RdapLookup::Found {
        url: "u".into(),
        record: RdapRecord {
            statuses: vec!["client transfer prohibited".into()],
            ..RdapRecord::default()
        },
    });
    expect(
        &no_dates,
        "registration-age",
        CheckStatus::Info,
        0,
        Some(100),
    );
    expect(
        &no_dates,
        "registration-expiry",
        CheckStatus::Info,
        0,
        Some(100),
    );
}

#[test]
fn documented_points_match_the_code() {
    let doc = include_str!("../../../../docs/scoring/hygiene.md");
    for (name, value) in [
        ("NO_FILE", points::NO_FILE),
        ("ONLY_OVER_HTTP", points::ONLY_OVER_HTTP),
        ("LEGACY_LOCATION", points::LEGACY_LOCATION),
        ("NO_CONTACT", points::NO_CONTACT),
        ("EXPIRES_BAD", points::EXPIRES_BAD),
        ("EXPIRES_FAR", points::EXPIRES_FAR),
        ("WRONG_CONTENT_TYPE", points::WRONG_CONTENT_TYPE),
        ("VERY_YOUNG", points::VERY_YOUNG),
        ("YOUNG", points::YOUNG),
        ("EXPIRED_REGISTRATION", points::EXPIRED_REGISTRATION),
        ("EXPIRING", points::EXPIRING),
        ("NO_TRANSFER_LOCK", points::NO_TRANSFER_LOCK),
    ] {
        let cell = format!("| {value} |");
        let row = doc
            .lines()
            .find(|l| l.contains(&format!("<!-- {name} -->")));
        let row = row.unwrap_or_else(|| panic!("{name} is not documented"));
        assert!(row.contains(&cell), "{name} should show {value}: {row}");
    }
}

// ---- probes against loopback servers ----

fn domain() -> Domain {
    Domain::parse("site.test").expect("valid domain")
}

fn fresh_file() -> String {
    let expires =
        (Utc::now() + Duration::days(180)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    format!(
        "Contact: mailto:security@site.test\nExpires: {expires}\nCanonical: https://site.test/.well-known/security.txt\n"
    )
}

fn rdap_json() -> String {
    serde_json::json!({
        "objectClassName": "domain",
        "ldhName": "site.test",
        "status": ["client transfer prohibited"],
        "events": [
            {"eventAction": "registration", "eventDate": "2005-01-01T00:00:00Z"},
            {"eventAction": "expiration", "eventDate": (Utc::now() + Duration::days(300)).to_rfc3339()}
        ]
    })
    .to_string()
}

const NAMES: [&str; 2] = ["site.test", "rdap.test"];

#[tokio::test]
async fn probe_finds_the_file_and_the_registration() {
    let script = Script::new()
        .get(
            "site.test",
            "/.well-known/security.txt",
            Reply::ok(&fresh_file()).header("content-type", "text/plain; charset=utf-8"),
        )
        .get(
            "rdap.test",
            "/v1/domain/site.test",
            Reply::ok(&rdap_json()).header("content-type", "application/rdap+json"),
        );
    let net = testnet(&NAMES, script, Some(Cert::Valid)).await;
    let evidence = probe(&net.fetcher, &domain(), Some("https://rdap.test/v1/")).await;
    let found = evidence.security_txt.found.as_ref().expect("file found");
    assert_eq!(
        (found.location, found.https),
        (FileLocation::WellKnown, true)
    );
    assert!(
        matches!(&evidence.rdap, RdapLookup::Found { record, .. } if record.transfer_locked()),
        "{:?}",
        evidence.rdap
    );
    let category = score(&evidence);
    assert_eq!(category.score, Some(100), "{:#?}", category.checks);
}

#[tokio::test]
async fn probe_falls_back_to_the_legacy_path_and_skips_soft_404s() {
    let script = Script::new()
        .get(
            "site.test",
            "/.well-known/security.txt",
            Reply::ok("<html>Welcome!</html>").header("content-type", "text/html"),
        )
        .get(
            "site.test",
            "/security.txt",
            Reply::ok(&fresh_file()).header("content-type", "text/plain; charset=utf-8"),
        );
    let net = testnet(&NAMES, script, Some(Cert::Valid)).await;
    let evidence = probe(&net.fetcher, &domain(), Some("https://rdap.test/v1/")).await;
    let attempts = &evidence.security_txt.attempts;
    assert_eq!(
        attempts[0].note.as_deref(),
        Some("an HTML page, not a security.txt")
    );
    let found = evidence
        .security_txt
        .found
        .as_ref()
        .expect("legacy file found");
    assert_eq!(found.location, FileLocation::Legacy);
    // The RDAP server answers 404 for the domain: not scored.
    assert!(
        matches!(&evidence.rdap, RdapLookup::Unavailable { reason } if reason.contains("404")),
        "{:?}",
        evidence.rdap
    );
    let category = score(&evidence);
    assert_eq!(check_of(&category, "security-txt").points, -10);
    assert_eq!(
        check_of(&category, "transfer-lock").status,
        CheckStatus::Info
    );
    assert_eq!(category.score, Some(90));
}

#[tokio::test]
async fn probe_follows_redirects_and_notes_plain_http() {
    let http = Script::new().get(
        "site.test",
        "/.well-known/security.txt",
        Reply::ok(&fresh_file()).header("content-type", "text/plain"),
    );
    // HTTPS is down entirely: the file is only reachable over HTTP.
    let net = testnet(&NAMES, http, None).await;
    let evidence = probe(&net.fetcher, &domain(), None).await;
    let found = evidence
        .security_txt
        .found
        .as_ref()
        .expect("found over http");
    assert!(!found.https);
    // No RDAP base: IANA's bootstrap host does not resolve here, so RDAP is informational.
    assert!(
        matches!(&evidence.rdap, RdapLookup::Unavailable { reason } if reason.contains("bootstrap")),
        "{:?}",
        evidence.rdap
    );
    let category = score(&evidence);
    assert_eq!(check_of(&category, "security-txt").points, -30);

    let redirecting = Script::new()
        .get(
            "site.test",
            "/.well-known/security.txt",
            Reply::redirect(301, "/security/contact.txt"),
        )
        .get(
            "site.test",
            "/security/contact.txt",
            Reply::ok(&fresh_file()).header("content-type", "text/plain; charset=utf-8"),
        );
    let net = split_testnet(&NAMES, Script::new(), redirecting, Cert::Valid).await;
    let evidence = probe(&net.fetcher, &domain(), Some("https://rdap.test/v1/")).await;
    let found = evidence
        .security_txt
        .found
        .as_ref()
        .expect("found after a redirect");
    assert_eq!(found.url, "https://site.test/security/contact.txt");
    assert_eq!(
        found.requested,
        "https://site.test/.well-known/security.txt"
    );
    let category = score(&evidence);
    assert!(
        check_of(&category, "security-txt")
            .evidence
            .contains("redirected from")
    );
    // Canonical names the well-known URL, which is where the file was asked for.
    assert_eq!(
        check_of(&category, "security-txt-canonical").status,
        CheckStatus::Pass
    );
}

#[tokio::test]
async fn probe_of_a_domain_without_web_or_rdap_has_no_score() {
    let net = crate::web::testkit::down_testnet(&NAMES).await;
    let evidence = probe(&net.fetcher, &domain(), Some("https://rdap.test/v1/")).await;
    assert!(
        evidence
            .security_txt
            .attempts
            .iter()
            .all(|a| a.error.is_some())
    );
    let category = score(&evidence);
    assert_eq!(category.score, None);
    assert_eq!(
        check_of(&category, "security-txt").status,
        CheckStatus::Error
    );
}

#[tokio::test]
async fn a_silent_server_is_asked_once() {
    let slow = Script::new().get(
        "site.test",
        "/.well-known/security.txt",
        Reply::ok("late").delay(std::time::Duration::from_secs(5)),
    );
    let timeout = std::time::Duration::from_millis(400);
    let net =
        crate::web::testkit::testnet_with_timeout(&NAMES, slow, Some(Cert::Valid), timeout).await;
    let started = std::time::Instant::now();
    let evidence = probe(&net.fetcher, &domain(), Some("https://rdap.test/v1/")).await;
    assert!(
        started.elapsed() < timeout * 2,
        "took {:?}",
        started.elapsed()
    );
    let attempts = &evidence.security_txt.attempts;
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0].error, Some(FetchError::Timeout));
    assert_eq!(
        check_of(&score(&evidence), "security-txt").status,
        CheckStatus::Error
    );
}
