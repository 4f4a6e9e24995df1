//! The load-test names (`NAME.load.test`): any of them resolves like
//! strong.test (validating as insecure) and is served over verified HTTPS
//! with a certificate for its own name.

use std::net::IpAddr;

use hickory_resolver::proto::dnssec::Proof;
use hickory_resolver::proto::rr::{RData, RecordType};

use crate::support::{self, http_get, https_get};

/// Sorted presentation text of the answers of one type.
async fn answers(
    r: &hickory_resolver::TokioResolver,
    name: &str,
    rtype: RecordType,
) -> Vec<String> {
    let lookup = r
        .lookup(name, rtype)
        .await
        .unwrap_or_else(|e| panic!("{name} {rtype}: {e}"));
    let mut out: Vec<String> = lookup
        .answers()
        .iter()
        .filter(|r| r.record_type() == rtype)
        .map(|r| r.data.to_string())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn a_load_test_name_resolves_and_serves_tls() {
    let net = support::start().await;
    let r = support::resolver(&net.net, false);
    let name = kepler_testnet::fixtures::load_name(417);
    assert_eq!(name, "d417.load.test");

    let a = r
        .lookup(format!("{name}."), RecordType::A)
        .await
        .expect("A");
    let ip = a
        .answers()
        .iter()
        .find_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .expect("an A record");
    assert_eq!(ip, IpAddr::V4(kepler_testnet::fixtures::STRONG));
    assert_eq!(
        answers(&r, &format!("{name}."), RecordType::MX).await,
        ["10 mail.strong.test."]
    );
    let txt = answers(&r, &format!("_dmarc.{name}."), RecordType::TXT).await;
    assert!(txt[0].starts_with("v=DMARC1; p=reject"), "{txt:?}");
    assert_eq!(
        answers(&r, &format!("mta-sts.{name}."), RecordType::A).await,
        ["127.0.10.10"]
    );
    assert_eq!(
        answers(&r, &format!("{name}."), RecordType::CAA)
            .await
            .len(),
        2
    );
    let err = r
        .lookup(format!("nope.{name}."), RecordType::A)
        .await
        .expect_err("does not exist");
    assert!(err.is_nx_domain(), "{err}");

    // DNSSEC: an insecure delegation, proven so by the signed parent.
    let v = support::resolver(&net.net, true);
    let lookup = v
        .lookup(format!("{name}."), RecordType::A)
        .await
        .expect("validated A");
    assert!(
        lookup.answers().iter().all(|r| r.proof == Proof::Insecure),
        "{:?}",
        lookup.answers()
    );

    // HTTPS verified against the testnet CA, for the name and its mta-sts host.
    let page = https_get(&net.net, ip, &name, "/").await.expect("HTTPS");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("strict-transport-security"),
        Some("max-age=63072000; includeSubDomains; preload")
    );
    let policy = https_get(
        &net.net,
        ip,
        &format!("mta-sts.{name}"),
        "/.well-known/mta-sts.txt",
    )
    .await
    .expect("MTA-STS over HTTPS");
    assert_eq!(policy.status, 200);
    // Another name gets its own certificate; strong.test keeps its own.
    https_get(&net.net, ip, "d2.load.test", "/")
        .await
        .expect("a second load-test name");
    https_get(&net.net, ip, "strong.test", "/")
        .await
        .expect("strong.test still verifies");

    // http:// sends the name to its own https:// URL.
    let moved = http_get(&net.net, ip, &name, "/x").await.expect("HTTP");
    assert_eq!(moved.status, 301);
    assert_eq!(
        moved.header("location"),
        Some(format!("https://{name}/x").as_str())
    );
    net.net.shutdown().await;
}
