//! The email model, end to end from DNS tables through `probe` to the category.

use std::time::Duration;

use kepler_core::{Category, CheckStatus, Domain};

use super::points;
use crate::mail::fake::{FakeDns, FakeWeb};
use crate::mail::{PolicySource, probe, score};
use crate::model::assert_every_check_recommends;
use crate::net::{LookupError, MxRecord};

const POLICY_URL: &str = "https://mta-sts.x.test/.well-known/mta-sts.txt";
const GOOD_POLICY: &str = "version: STSv1\nmode: enforce\nmx: mail.x.test\nmax_age: 604800\n";

fn run(dns: &FakeDns, web: &FakeWeb) -> Category {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let domain = Domain::parse("x.test").expect("domain");
    let evidence = rt.block_on(probe(
        dns,
        Some(web as &dyn PolicySource),
        &domain,
        Duration::from_secs(1),
    ));
    let cat = score(&evidence);
    assert_every_check_recommends(&cat);
    cat
}

/// A domain that takes mail and does everything right.
fn strong() -> (FakeDns, FakeWeb) {
    let dns = FakeDns::new(&[
        ("x.test", "v=spf1 mx include:_spf.provider.test -all"),
        ("_spf.provider.test", "v=spf1 ip4:192.0.2.0/24 -all"),
        (
            "_dmarc.x.test",
            "v=DMARC1; p=reject; rua=mailto:dmarc@x.test",
        ),
        ("_mta-sts.x.test", "v=STSv1; id=20261101"),
        ("_smtp._tls.x.test", "v=TLSRPTv1; rua=mailto:tlsrpt@x.test"),
    ])
    .with_mx("x.test", Ok(vec!["mail.x.test".into()]));
    let web = FakeWeb::default().with_policy(POLICY_URL, GOOD_POLICY);
    (dns, web)
}

/// A correctly parked domain: null MX, SPF -all, DMARC reject, nothing else.
fn parked() -> FakeDns {
    FakeDns::new(&[
        ("x.test", "v=spf1 -all"),
        ("_dmarc.x.test", "v=DMARC1; p=reject"),
    ])
    .with_mx_records(
        "x.test",
        vec![MxRecord {
            preference: 0,
            exchange: String::new(),
        }],
    )
}

fn status_and_points(cat: &Category, id: &str) -> (CheckStatus, i32) {
    let c = cat
        .checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id}: {:#?}", cat.checks));
    (c.status, c.points)
}

fn assert_full_marks(cat: &Category) {
    assert_eq!(cat.score, Some(100), "{:#?}", cat.checks);
    assert!(
        cat.checks.iter().all(|c| c.points == 0),
        "{:#?}",
        cat.checks
    );
}

#[test]
fn a_strong_domain_gets_full_marks() {
    let (dns, web) = strong();
    let cat = run(&dns, &web);
    assert_full_marks(&cat);
    for id in [
        "mx",
        "spf",
        "spf-all",
        "spf-lookups",
        "spf-void-lookups",
        "spf-includes",
        "spf-ptr",
        "dmarc",
        "dmarc-policy",
        "dmarc-subdomain-policy",
        "dmarc-pct",
        "dmarc-rua",
        "mta-sts",
        "mta-sts-policy",
        "mta-sts-mode",
        "mta-sts-mx",
        "mta-sts-max-age",
        "tls-rpt",
    ] {
        assert_eq!(status_and_points(&cat, id), (CheckStatus::Pass, 0), "{id}");
    }
}

#[test]
fn a_correctly_parked_domain_gets_full_marks() {
    let cat = run(&parked(), &FakeWeb::default());
    assert_full_marks(&cat);
    assert_eq!(status_and_points(&cat, "mx"), (CheckStatus::Pass, 0));
    assert_eq!(status_and_points(&cat, "mta-sts"), (CheckStatus::Info, 0));
    assert_eq!(status_and_points(&cat, "tls-rpt"), (CheckStatus::Info, 0));
    // No rua is advice, not a deduction.
    assert_eq!(status_and_points(&cat, "dmarc-rua"), (CheckStatus::Warn, 0));
}

#[test]
fn a_domain_with_nothing_at_all() {
    let dns = FakeDns::default();
    let cat = run(&dns, &FakeWeb::default());
    assert_eq!(
        status_and_points(&cat, "mx"),
        (CheckStatus::Warn, points::MX_MISSING)
    );
    assert_eq!(
        status_and_points(&cat, "spf"),
        (CheckStatus::Fail, points::SPF_MISSING)
    );
    assert_eq!(
        status_and_points(&cat, "dmarc"),
        (CheckStatus::Fail, points::DMARC_MISSING)
    );
    // 100 - 5 - 30 - 35
    assert_eq!(cat.score, Some(30));
}

/// Each variation of the strong domain costs exactly its documented points.
#[test]
fn each_finding_costs_its_documented_points() {
    type Edit = fn(&mut FakeDns, &mut FakeWeb);
    let cases: Vec<(&str, Edit, &str, CheckStatus, i32)> = vec![
        (
            "~all",
            |d, _| set_txt_fn(d, "x.test", "v=spf1 mx ~all"),
            "spf-all",
            CheckStatus::Warn,
            points::SPF_ALL_SOFTFAIL,
        ),
        (
            "?all",
            |d, _| set_txt_fn(d, "x.test", "v=spf1 mx ?all"),
            "spf-all",
            CheckStatus::Fail,
            points::SPF_ALL_NEUTRAL,
        ),
        (
            "no all",
            |d, _| set_txt_fn(d, "x.test", "v=spf1 mx"),
            "spf-all",
            CheckStatus::Fail,
            points::SPF_ALL_NEUTRAL,
        ),
        (
            "+all",
            |d, _| set_txt_fn(d, "x.test", "v=spf1 mx +all"),
            "spf-all",
            CheckStatus::Fail,
            points::SPF_ALL_PASS,
        ),
        (
            "two spf",
            |d, _| d.add_txt("x.test", "v=spf1 -all"),
            "spf",
            CheckStatus::Fail,
            points::SPF_MULTIPLE,
        ),
        (
            "bad spf",
            |d, _| set_txt_fn(d, "x.test", "v=spf1 ip4:1.2.3 -all"),
            "spf",
            CheckStatus::Fail,
            points::SPF_INVALID,
        ),
        (
            "11 lookups",
            |d, _| set_txt_fn(d, "x.test", "v=spf1 mx mx mx mx mx mx mx mx mx mx mx -all"),
            "spf-lookups",
            CheckStatus::Fail,
            points::SPF_LOOKUP_LIMIT,
        ),
        (
            "3 voids",
            |d, _| {
                set_txt_fn(
                    d,
                    "x.test",
                    "v=spf1 a:n1.x.test a:n2.x.test a:n3.x.test mx -all",
                )
            },
            "spf-void-lookups",
            CheckStatus::Fail,
            points::SPF_VOID_LIMIT,
        ),
        (
            "loop",
            |d, _| set_txt_fn(d, "_spf.provider.test", "v=spf1 include:x.test -all"),
            "spf-includes",
            CheckStatus::Fail,
            points::SPF_INCLUDES_BROKEN,
        ),
        (
            "ptr",
            |d, _| set_txt_fn(d, "x.test", "v=spf1 mx ptr -all"),
            "spf-ptr",
            CheckStatus::Warn,
            points::SPF_PTR,
        ),
        (
            "no dmarc",
            |d, _| {
                d.txt.remove("_dmarc.x.test");
            },
            "dmarc",
            CheckStatus::Fail,
            points::DMARC_MISSING,
        ),
        (
            "two dmarc",
            |d, _| d.add_txt("_dmarc.x.test", "v=DMARC1; p=none"),
            "dmarc",
            CheckStatus::Fail,
            points::DMARC_MULTIPLE,
        ),
        (
            "bad dmarc",
            |d, _| set_txt_fn(d, "_dmarc.x.test", "v=DMARC1; p=reject; pct=200"),
            "dmarc",
            CheckStatus::Fail,
            points::DMARC_INVALID,
        ),
        (
            "no p",
            |d, _| set_txt_fn(d, "_dmarc.x.test", "v=DMARC1; rua=mailto:d@x.test"),
            "dmarc-policy",
            CheckStatus::Fail,
            points::DMARC_P_MISSING,
        ),
        (
            "p=none",
            |d, _| set_txt_fn(d, "_dmarc.x.test", "v=DMARC1; p=none; rua=mailto:d@x.test"),
            "dmarc-policy",
            CheckStatus::Fail,
            points::DMARC_P_NONE,
        ),
        (
            "p=quarantine",
            |d, _| {
                set_txt_fn(
                    d,
                    "_dmarc.x.test",
                    "v=DMARC1; p=quarantine; rua=mailto:d@x.test",
                )
            },
            "dmarc-policy",
            CheckStatus::Warn,
            points::DMARC_P_QUARANTINE,
        ),
        (
            "sp weaker",
            |d, _| {
                set_txt_fn(
                    d,
                    "_dmarc.x.test",
                    "v=DMARC1; p=reject; sp=none; rua=mailto:d@x.test",
                )
            },
            "dmarc-subdomain-policy",
            CheckStatus::Warn,
            points::DMARC_SP_WEAKER,
        ),
        (
            "pct 50",
            |d, _| {
                set_txt_fn(
                    d,
                    "_dmarc.x.test",
                    "v=DMARC1; p=reject; pct=50; rua=mailto:d@x.test",
                )
            },
            "dmarc-pct",
            CheckStatus::Warn,
            points::DMARC_PCT_PARTIAL,
        ),
        (
            "no mta-sts",
            |d, _| {
                d.txt.remove("_mta-sts.x.test");
            },
            "mta-sts",
            CheckStatus::Warn,
            points::MTA_STS_MISSING,
        ),
        (
            "bad mta-sts",
            |d, _| set_txt_fn(d, "_mta-sts.x.test", "v=STSv1; id=no-dashes"),
            "mta-sts",
            CheckStatus::Fail,
            points::MTA_STS_INVALID,
        ),
        (
            "policy gone",
            |_, w| {
                w.pages.clear();
            },
            "mta-sts-policy",
            CheckStatus::Fail,
            points::MTA_STS_POLICY_UNAVAILABLE,
        ),
        (
            "testing",
            |_, w| {
                *w = FakeWeb::default().with_policy(
                    POLICY_URL,
                    "version: STSv1\nmode: testing\nmx: mail.x.test\nmax_age: 604800\n",
                );
            },
            "mta-sts-mode",
            CheckStatus::Warn,
            points::MTA_STS_MODE_TESTING,
        ),
        (
            "mode none",
            |_, w| {
                *w = FakeWeb::default()
                    .with_policy(POLICY_URL, "version: STSv1\nmode: none\nmax_age: 604800\n");
            },
            "mta-sts-mode",
            CheckStatus::Fail,
            points::MTA_STS_MODE_NONE,
        ),
        (
            "mx mismatch",
            |_, w| {
                *w = FakeWeb::default().with_policy(
                    POLICY_URL,
                    "version: STSv1\nmode: enforce\nmx: *.other.test\nmax_age: 604800\n",
                );
            },
            "mta-sts-mx",
            CheckStatus::Fail,
            points::MTA_STS_MX_MISMATCH,
        ),
        (
            "short max_age",
            |_, w| {
                *w = FakeWeb::default().with_policy(
                    POLICY_URL,
                    "version: STSv1\nmode: enforce\nmx: mail.x.test\nmax_age: 3600\n",
                );
            },
            "mta-sts-max-age",
            CheckStatus::Warn,
            points::MTA_STS_MAX_AGE_SHORT,
        ),
        (
            "no tls-rpt",
            |d, _| {
                d.txt.remove("_smtp._tls.x.test");
            },
            "tls-rpt",
            CheckStatus::Warn,
            points::TLSRPT_MISSING,
        ),
        (
            "bad tls-rpt",
            |d, _| set_txt_fn(d, "_smtp._tls.x.test", "v=TLSRPTv1; rua=ftp://x.test"),
            "tls-rpt",
            CheckStatus::Fail,
            points::TLSRPT_INVALID,
        ),
        (
            "null mx mixed",
            |d, _| {
                d.mx.insert(
                    "x.test".into(),
                    Ok(vec![
                        MxRecord {
                            preference: 0,
                            exchange: String::new(),
                        },
                        MxRecord {
                            preference: 10,
                            exchange: "mail.x.test".into(),
                        },
                    ]),
                );
            },
            "mx",
            CheckStatus::Fail,
            points::MX_NULL_MIXED,
        ),
    ];
    for (name, edit, id, status, pts) in cases {
        let (mut dns, mut web) = strong();
        edit(&mut dns, &mut web);
        let cat = run(&dns, &web);
        assert_eq!(status_and_points(&cat, id), (status, pts), "{name}");
        let lost: i32 = cat.checks.iter().map(|c| c.points).sum();
        assert_eq!(
            lost, pts,
            "{name}: only that finding should cost points: {:#?}",
            cat.checks
        );
        assert_eq!(
            cat.score,
            Some(u32::try_from(100 + pts).expect("non-negative")),
            "{name}"
        );
    }
}

fn set_txt_fn(dns: &mut FakeDns, name: &str, text: &str) {
    dns.txt.remove(name);
    dns.add_txt(name, text);
}

#[test]
fn a_mixed_domain_softfail_and_monitoring_dmarc() {
    let dns = FakeDns::new(&[
        ("x.test", "v=spf1 ip4:192.0.2.1 ~all"),
        ("_dmarc.x.test", "v=DMARC1; p=none; rua=mailto:d@x.test"),
    ])
    .with_mx("x.test", Ok(vec!["mail.x.test".into()]));
    let cat = run(&dns, &FakeWeb::default());
    assert_eq!(
        status_and_points(&cat, "spf-all"),
        (CheckStatus::Warn, points::SPF_ALL_SOFTFAIL)
    );
    assert_eq!(
        status_and_points(&cat, "dmarc-policy"),
        (CheckStatus::Fail, points::DMARC_P_NONE)
    );
    assert_eq!(
        status_and_points(&cat, "mta-sts"),
        (CheckStatus::Warn, points::MTA_STS_MISSING)
    );
    assert_eq!(
        status_and_points(&cat, "tls-rpt"),
        (CheckStatus::Warn, points::TLSRPT_MISSING)
    );
    // 100 - 5 - 20 - 10 - 5
    assert_eq!(cat.score, Some(60));
}

#[test]
fn an_inherited_dmarc_policy_applies_through_sp() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let dns = FakeDns::new(&[
        ("shop.example.com", "v=spf1 -all"),
        ("_dmarc.example.com", "v=DMARC1; p=reject; sp=quarantine"),
    ])
    .with_mx_records(
        "shop.example.com",
        vec![MxRecord {
            preference: 0,
            exchange: String::new(),
        }],
    );
    let domain = Domain::parse("shop.example.com").expect("domain");
    let cat = score(&rt.block_on(probe(&dns, None, &domain, Duration::from_secs(1))));
    assert_eq!(status_and_points(&cat, "dmarc"), (CheckStatus::Pass, 0));
    assert_eq!(
        status_and_points(&cat, "dmarc-policy"),
        (CheckStatus::Warn, points::DMARC_P_QUARANTINE)
    );
}

#[test]
fn failed_lookups_cost_nothing_and_a_blind_probe_has_no_score() {
    let mut dns = FakeDns::default();
    for name in [
        "x.test",
        "_dmarc.x.test",
        "_mta-sts.x.test",
        "_smtp._tls.x.test",
    ] {
        dns.txt.insert(name.into(), Err(LookupError::Timeout));
    }
    dns.mx
        .insert("x.test".into(), Err(LookupError::Failed("SERVFAIL".into())));
    let cat = run(&dns, &FakeWeb::default());
    assert!(
        cat.checks.iter().all(|c| c.points == 0),
        "{:#?}",
        cat.checks
    );
    assert!(
        cat.checks
            .iter()
            .all(|c| matches!(c.status, CheckStatus::Error | CheckStatus::Info)),
        "{:#?}",
        cat.checks
    );
    assert_eq!(cat.score, None);
}

#[test]
fn without_a_policy_source_the_policy_check_is_an_error() {
    let (dns, _) = strong();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let domain = Domain::parse("x.test").expect("domain");
    let cat = score(&rt.block_on(probe(&dns, None, &domain, Duration::from_secs(1))));
    assert_every_check_recommends(&cat);
    assert_eq!(
        status_and_points(&cat, "mta-sts-policy"),
        (CheckStatus::Error, 0)
    );
    assert_eq!(cat.score, Some(100));
}
