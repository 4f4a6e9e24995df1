//! The SPF walk against a table of DNS answers.

use super::*;
use crate::mail::fake::FakeDns;

fn walk(dns: &FakeDns, domain: &str) -> Tally {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    match rt.block_on(analyze(dns, domain)) {
        SpfEvidence::Found { tally, .. } => tally,
        other => panic!("{domain}: expected a record, got {other:?}"),
    }
}

fn evidence(dns: &FakeDns, domain: &str) -> SpfEvidence {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(analyze(dns, domain))
}

/// (name, lookups, voids, final all, number of problems)
fn check(
    dns: &FakeDns,
    domain: &str,
    lookups: u32,
    voids: u32,
    all: Option<Qualifier>,
    problems: usize,
) -> Tally {
    let t = walk(dns, domain);
    assert_eq!(t.lookups, lookups, "{domain} lookups: {t:#?}");
    assert_eq!(t.voids, voids, "{domain} voids: {t:#?}");
    assert_eq!(t.all.as_ref().map(|(q, _)| *q), all, "{domain} all: {t:#?}");
    assert_eq!(t.problems.len(), problems, "{domain} problems: {t:#?}");
    t
}

#[test]
fn a_parked_domain_makes_no_lookups() {
    let dns = FakeDns::new(&[("parked.test", "v=spf1 -all")]);
    check(&dns, "parked.test", 0, 0, Some(Qualifier::Fail), 0);
}

#[test]
fn lookups_are_counted_through_nested_includes() {
    let dns = FakeDns::new(&[
        (
            "x.test",
            "v=spf1 include:a.test include:b.test ip4:192.0.2.1 -all",
        ),
        ("a.test", "v=spf1 include:c.test ip4:192.0.2.2 -all"),
        ("b.test", "v=spf1 a mx ~all"),
        ("c.test", "v=spf1 ip6:2001:db8::/32 ?all"),
    ])
    .with_addresses("b.test", Ok(1))
    .with_mx("b.test", Ok(vec!["mail.b.test".into()]));
    // x: 2 includes; a: 1 include; b: a + mx; c: none.
    let t = check(&dns, "x.test", 5, 0, Some(Qualifier::Fail), 0);
    assert_eq!(t.visited, ["a.test", "c.test", "b.test"]);
}

#[test]
fn a_diamond_is_counted_twice_but_is_not_a_loop() {
    let dns = FakeDns::new(&[
        ("x.test", "v=spf1 include:a.test include:b.test -all"),
        ("a.test", "v=spf1 include:c.test -all"),
        ("b.test", "v=spf1 include:c.test -all"),
        ("c.test", "v=spf1 ip4:192.0.2.0/24 -all"),
    ]);
    check(&dns, "x.test", 4, 0, Some(Qualifier::Fail), 0);
}

#[test]
fn more_than_ten_lookups_are_counted_in_full() {
    let dns = FakeDns::new(&[
        (
            "x.test",
            "v=spf1 include:a.test include:b.test include:c.test include:d.test -all",
        ),
        ("a.test", "v=spf1 a:1.a.test a:2.a.test a:3.a.test -all"),
        ("b.test", "v=spf1 a:1.b.test a:2.b.test a:3.b.test -all"),
        ("c.test", "v=spf1 exists:%{i}.c.test -all"),
        ("d.test", "v=spf1 mx:d.test -all"),
    ]);
    let mut dns = dns;
    for n in [
        "1.a.test", "2.a.test", "3.a.test", "1.b.test", "2.b.test", "3.b.test",
    ] {
        dns = dns.with_addresses(n, Ok(1));
    }
    let dns = dns.with_mx("d.test", Ok(vec!["mx.d.test".into()]));
    // 4 includes + 3 + 3 + 1 exists + 1 mx = 12
    check(&dns, "x.test", 12, 0, Some(Qualifier::Fail), 0);
}

#[test]
fn void_lookups_are_nxdomain_or_nodata_answers() {
    let dns = FakeDns::new(&[(
        "x.test",
        "v=spf1 a:gone.test a:empty.test mx:nomx.test include:nx.test ip4:192.0.2.1 -all",
    )])
    .with_addresses("empty.test", Err(LookupError::NoRecords))
    .with_mx("nomx.test", Err(LookupError::NoRecords));
    let t = check(&dns, "x.test", 4, 4, Some(Qualifier::Fail), 1);
    assert_eq!(
        t.problems[0],
        SpfProblem::TargetWithoutRecord {
            domain: "nx.test".into(),
            via: "include"
        }
    );
}

#[test]
fn failed_lookups_are_not_void() {
    let dns = FakeDns::new(&[("x.test", "v=spf1 a:slow.test -all")])
        .with_addresses("slow.test", Err(LookupError::Timeout));
    check(&dns, "x.test", 1, 0, Some(Qualifier::Fail), 0);
}

#[test]
fn loops_are_detected() {
    let dns = FakeDns::new(&[
        ("x.test", "v=spf1 include:a.test -all"),
        ("a.test", "v=spf1 include:b.test -all"),
        ("b.test", "v=spf1 include:a.test -all"),
    ]);
    let t = check(&dns, "x.test", 3, 0, Some(Qualifier::Fail), 1);
    assert_eq!(
        t.problems[0],
        SpfProblem::Loop {
            chain: vec![
                "x.test".into(),
                "a.test".into(),
                "b.test".into(),
                "a.test".into()
            ]
        }
    );

    let itself = FakeDns::new(&[("self.test", "v=spf1 include:self.test -all")]);
    check(&itself, "self.test", 1, 0, Some(Qualifier::Fail), 1);

    let redirect_loop = FakeDns::new(&[
        ("r.test", "v=spf1 redirect=s.test"),
        ("s.test", "v=spf1 redirect=r.test"),
    ]);
    let t = walk(&redirect_loop, "r.test");
    assert!(
        matches!(t.problems.as_slice(), [SpfProblem::Loop { .. }]),
        "{t:#?}"
    );
}

#[test]
fn redirect_hands_over_the_final_all() {
    let dns = FakeDns::new(&[
        ("x.test", "v=spf1 ip4:192.0.2.1 redirect=_spf.x.test"),
        ("_spf.x.test", "v=spf1 include:y.test ~all"),
        ("y.test", "v=spf1 -all"),
    ]);
    let t = check(&dns, "x.test", 2, 0, Some(Qualifier::SoftFail), 0);
    assert_eq!(t.all, Some((Qualifier::SoftFail, "_spf.x.test".into())));
}

#[test]
fn redirect_is_ignored_when_the_record_has_all() {
    let dns = FakeDns::new(&[("x.test", "v=spf1 -all redirect=missing.test")]);
    check(&dns, "x.test", 0, 0, Some(Qualifier::Fail), 0);
}

#[test]
fn no_all_and_no_redirect_means_no_final_qualifier() {
    let dns = FakeDns::new(&[("x.test", "v=spf1 ip4:192.0.2.1")]);
    check(&dns, "x.test", 0, 0, None, 0);
}

#[test]
fn ptr_is_flagged_and_counted() {
    let dns = FakeDns::new(&[
        ("x.test", "v=spf1 include:a.test -all"),
        ("a.test", "v=spf1 ptr -all"),
    ]);
    let t = check(&dns, "x.test", 2, 0, Some(Qualifier::Fail), 0);
    assert_eq!(t.ptr_used, ["a.test"]);
}

#[test]
fn broken_include_targets_are_problems() {
    let dns = FakeDns::new(&[
        (
            "x.test",
            "v=spf1 include:two.test include:bad.test include:plain.test -all",
        ),
        ("two.test", "v=spf1 -all"),
        ("two.test", "v=spf1 ~all"),
        ("bad.test", "v=spf1 include"),
        ("plain.test", "just some text"),
    ]);
    let t = check(&dns, "x.test", 3, 0, Some(Qualifier::Fail), 3);
    assert!(matches!(
        t.problems[0],
        SpfProblem::TargetMultipleRecords { count: 2, .. }
    ));
    assert!(matches!(t.problems[1], SpfProblem::Syntax { .. }));
    assert!(matches!(
        t.problems[2],
        SpfProblem::TargetWithoutRecord { via: "include", .. }
    ));
}

#[test]
fn too_many_mx_names() {
    let names: Vec<String> = (0..11).map(|i| format!("mx{i}.x.test")).collect();
    let dns = FakeDns::new(&[("x.test", "v=spf1 mx -all")]).with_mx("x.test", Ok(names));
    let t = check(&dns, "x.test", 1, 0, Some(Qualifier::Fail), 1);
    assert!(matches!(
        t.problems[0],
        SpfProblem::TooManyMxNames { count: 11, .. }
    ));
}

#[test]
fn a_runaway_policy_stops_at_the_query_budget() {
    // Every include leads to two more: the walk must stop, not hang.
    let mut records = Vec::new();
    let names: Vec<String> = (0..=200).map(|i| format!("n{i}.test")).collect();
    for i in 0..100 {
        records.push((
            names[i].clone(),
            format!(
                "v=spf1 include:{} include:{} -all",
                names[2 * i + 1],
                names[2 * i + 2]
            ),
        ));
    }
    let borrowed: Vec<(&str, &str)> = records
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let dns = FakeDns::new(&borrowed);
    let t = walk(&dns, "n0.test");
    assert!(t.incomplete, "{t:#?}");
    assert!(t.lookups > 10);
}

#[test]
fn finding_the_record() {
    let none = FakeDns::default();
    assert_eq!(evidence(&none, "x.test"), SpfEvidence::Missing);
    let other_txt = FakeDns::new(&[("x.test", "google-site-verification=abc")]);
    assert_eq!(evidence(&other_txt, "x.test"), SpfEvidence::Missing);
    let two = FakeDns::new(&[("x.test", "v=spf1 -all"), ("x.test", "v=spf1 ~all")]);
    assert!(matches!(evidence(&two, "x.test"), SpfEvidence::Multiple(v) if v.len() == 2));
    let invalid = FakeDns::new(&[("x.test", "v=spf1 ip4:999.0.0.1 -all")]);
    assert!(matches!(
        evidence(&invalid, "x.test"),
        SpfEvidence::Invalid { .. }
    ));
    let mut failing = FakeDns::default();
    failing
        .txt
        .insert("x.test".into(), Err(LookupError::Timeout));
    assert_eq!(
        evidence(&failing, "x.test"),
        SpfEvidence::LookupFailed(LookupError::Timeout)
    );
}
