//! The DNS server seen through hickory-resolver, plain and validating.

use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::dnssec::Proof;
use hickory_resolver::proto::rr::{Record, RecordType};

use crate::support::{self, has_ipv6};

/// The answers of one type for a name, as presentation text, sorted.
async fn records(
    resolver: &TokioResolver,
    name: &str,
    rtype: RecordType,
) -> Result<Vec<String>, String> {
    match resolver.lookup(name, rtype).await {
        Ok(lookup) => {
            let mut out: Vec<String> = lookup
                .answers()
                .iter()
                .filter(|r| r.record_type() == rtype)
                .map(|r| r.data.to_string())
                .collect();
            out.sort();
            Ok(out)
        }
        Err(e) if e.is_nx_domain() => Err("NXDOMAIN".into()),
        Err(e) if e.is_no_records_found() => Ok(Vec::new()),
        Err(e) => Err(e.to_string()),
    }
}

async fn check(
    resolver: &TokioResolver,
    name: &str,
    rtype: RecordType,
    expected: Result<&[&str], &str>,
) {
    let got = records(resolver, name, rtype).await;
    let expected = expected
        .map(|list| list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .map_err(str::to_string);
    assert_eq!(got, expected, "{name} {rtype}");
}

#[tokio::test]
async fn every_fixture_resolves_as_documented() {
    let net = support::start().await;
    let r = support::resolver(&net.net, false);
    use RecordType::*;
    check(&r, "strong.test.", A, Ok(&["127.0.10.10"])).await;
    check(&r, "www.strong.test.", A, Ok(&["127.0.10.10"])).await;
    check(&r, "mta-sts.strong.test.", A, Ok(&["127.0.10.10"])).await;
    check(&r, "mail.strong.test.", A, Ok(&["127.0.10.15"])).await;
    check(
        &r,
        "strong.test.",
        NS,
        Ok(&["ns1.strong.test.", "ns2.strong.test."]),
    )
    .await;
    check(&r, "ns1.strong.test.", A, Ok(&["127.0.0.1"])).await;
    check(&r, "strong.test.", MX, Ok(&["10 mail.strong.test."])).await;
    check(
        &r,
        "strong.test.",
        CAA,
        Ok(&[
            "0 iodef \"mailto:security@strong.test\"",
            "0 issue \"testnet-ca.test\"",
        ]),
    )
    .await;
    check(
        &r,
        "strong.test.",
        TXT,
        Ok(&["v=spf1 mx include:_spf.strong.test -all"]),
    )
    .await;
    check(
        &r,
        "_spf.strong.test.",
        TXT,
        Ok(&["v=spf1 ip4:192.0.2.0/24 -all"]),
    )
    .await;
    check(
        &r,
        "_dmarc.strong.test.",
        TXT,
        Ok(&["v=DMARC1; p=reject; sp=reject; pct=100; rua=mailto:dmarc@strong.test"]),
    )
    .await;
    check(
        &r,
        "_mta-sts.strong.test.",
        TXT,
        Ok(&["v=STSv1; id=20261101T000000"]),
    )
    .await;
    check(
        &r,
        "_smtp._tls.strong.test.",
        TXT,
        Ok(&["v=TLSRPTv1; rua=mailto:tlsrpt@strong.test"]),
    )
    .await;
    if has_ipv6() {
        check(&r, "strong.test.", AAAA, Ok(&["::1"])).await;
        check(&r, "ns2.strong.test.", AAAA, Ok(&["::1"])).await;
        check(&r, "ns1.test.", AAAA, Ok(&["::1"])).await;
    }
    check(&r, "mixed.test.", A, Ok(&["127.0.10.20"])).await;
    check(&r, "mixed.test.", AAAA, Ok(&[])).await;
    check(&r, "mixed.test.", CAA, Ok(&[])).await;
    check(
        &r,
        "mixed.test.",
        TXT,
        Ok(&["v=spf1 include:_spf.mixed.test ~all"]),
    )
    .await;
    check(
        &r,
        "_dmarc.mixed.test.",
        TXT,
        Ok(&["v=DMARC1; p=none; rua=mailto:dmarc@mixed.test"]),
    )
    .await;
    check(
        &r,
        "_mta-sts.mixed.test.",
        TXT,
        Ok(&["v=STSv1; id=20261101T000000"]),
    )
    .await;
    check(&r, "mta-sts.mixed.test.", A, Ok(&["127.0.10.20"])).await;
    check(
        &r,
        "_smtp._tls.mixed.test.",
        TXT,
        Ok(&["v=TLSRPTv1; rua=mailto:tlsrpt@mixed.test"]),
    )
    .await;
    check(&r, "weak.test.", A, Ok(&["127.0.10.30"])).await;
    check(&r, "weak.test.", TXT, Ok(&[])).await;
    check(&r, "weak.test.", MX, Ok(&[])).await;
    check(&r, "_dmarc.weak.test.", TXT, Err("NXDOMAIN")).await;
    check(&r, "expired.test.", A, Ok(&["127.0.10.40"])).await;
    check(&r, "parked.test.", A, Ok(&[])).await;
    check(&r, "parked.test.", AAAA, Ok(&[])).await;
    check(&r, "parked.test.", MX, Ok(&["0 ."])).await;
    check(&r, "parked.test.", TXT, Ok(&["v=spf1 -all"])).await;
    check(
        &r,
        "_dmarc.parked.test.",
        TXT,
        Ok(&["v=DMARC1; p=reject; sp=reject; adkim=s; aspf=s"]),
    )
    .await;
    check(&r, "slow.test.", A, Ok(&["127.0.10.60"])).await;
    check(&r, "down.test.", A, Ok(&["127.0.10.70"])).await;
    check(&r, "cdn.test.", A, Ok(&["127.0.10.80"])).await;
    check(&r, "nonexistent.test.", A, Err("NXDOMAIN")).await;
    check(&r, "www.nonexistent.test.", A, Err("NXDOMAIN")).await;
    check(&r, "nope.strong.test.", A, Err("NXDOMAIN")).await;
    net.net.shutdown().await;
}

/// The proof hickory's validator attached to the answers of one type.
async fn proof(
    resolver: &TokioResolver,
    name: &str,
    rtype: RecordType,
) -> Result<Vec<Proof>, String> {
    let lookup = resolver.lookup(name, rtype).await.map_err(|e| {
        if e.is_nx_domain() {
            "NXDOMAIN".to_string()
        } else {
            e.to_string()
        }
    })?;
    let answers: Vec<&Record> = lookup
        .answers()
        .iter()
        .filter(|r| r.record_type() == rtype)
        .collect();
    assert!(!answers.is_empty(), "{name} {rtype}: no answers");
    Ok(answers.iter().map(|r| r.proof).collect())
}

#[tokio::test]
async fn dnssec_validates_from_the_written_trust_anchor() {
    let net = support::start().await;
    let r = support::resolver(&net.net, true);
    for (name, rtype, expected) in [
        ("strong.test.", RecordType::A, Proof::Secure),
        ("_dmarc.strong.test.", RecordType::TXT, Proof::Secure),
        ("strong.test.", RecordType::MX, Proof::Secure),
        ("strong.test.", RecordType::DNSKEY, Proof::Secure),
        ("mixed.test.", RecordType::A, Proof::Insecure),
        ("_dmarc.mixed.test.", RecordType::TXT, Proof::Insecure),
        ("weak.test.", RecordType::A, Proof::Insecure),
        ("parked.test.", RecordType::MX, Proof::Insecure),
    ] {
        let got = proof(&r, name, rtype)
            .await
            .unwrap_or_else(|e| panic!("{name} {rtype}: {e}"));
        assert!(
            got.iter().all(|p| *p == expected),
            "{name} {rtype}: {got:?}, expected {expected:?}"
        );
    }
    // Denial of existence validates too: a plain NXDOMAIN, not a bogus answer.
    let err = r
        .lookup("nonexistent.test.", RecordType::A)
        .await
        .expect_err("does not exist");
    assert!(err.is_nx_domain(), "{err}");
    let err = r
        .lookup("nope.strong.test.", RecordType::A)
        .await
        .expect_err("does not exist");
    assert!(err.is_nx_domain(), "{err}");
    net.net.shutdown().await;
}

#[tokio::test]
async fn a_wrong_trust_anchor_makes_strong_bogus() {
    let net = support::start().await;
    // A second testnet has another root key; its anchor must not validate the first.
    let other = support::start().await;
    std::fs::copy(other.net.trust_anchor_file(), net.net.trust_anchor_file()).expect("copy anchor");
    let r = support::resolver(&net.net, true);
    let result = proof(&r, "strong.test.", RecordType::A).await;
    assert!(
        !matches!(&result, Ok(proofs) if proofs.iter().all(|p| *p == Proof::Secure)),
        "{result:?}"
    );
    net.net.shutdown().await;
    other.net.shutdown().await;
}

#[tokio::test]
async fn latency_delays_every_dns_answer() {
    let net = support::start_with_latency(Duration::from_millis(100)).await;
    let r = support::resolver(&net.net, false);
    let started = Instant::now();
    let answer = records(&r, "strong.test.", RecordType::A).await;
    let took = started.elapsed();
    assert_eq!(answer, Ok(vec!["127.0.10.10".to_string()]));
    assert!(took >= Duration::from_millis(90), "answered after {took:?}");
    net.net.shutdown().await;
}

#[tokio::test]
async fn testnets_run_side_by_side() {
    let a = support::start().await;
    let b = support::start().await;
    assert_ne!(a.net.dns_addr(), b.net.dns_addr());
    assert_ne!(a.net.https_port(), b.net.https_port());
    for net in [&a, &b] {
        let r = support::resolver(&net.net, false);
        assert_eq!(
            records(&r, "mixed.test.", RecordType::A).await,
            Ok(vec!["127.0.10.20".to_string()])
        );
    }
    a.net.shutdown().await;
    b.net.shutdown().await;
}
