//! Table-driven tests of the twelve Observatory tests and of the aggregate
//! score (evidence built by hand), then probes against loopback servers.

use std::time::Duration;

use kepler_core::{Category, CheckStatus, Domain};

use super::results::{ALL, Outcome};
use super::testkit::{Cert, Reply, Script, testnet, testnet_with_timeout};
use super::*;
use crate::fetch::FetchError;

const SITE: &str = "site.test";

fn hop(url: &str, status: u16, headers: &[(&str, &str)]) -> Hop {
    Hop {
        url: url.to_owned(),
        status,
        location: headers
            .iter()
            .find(|(n, _)| *n == "location")
            .map(|(_, v)| (*v).to_owned()),
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        body_truncated: false,
    }
}

fn chain(start: &str, hops: Vec<Hop>, end: ChainEnd, html: Option<&str>) -> Chain {
    Chain {
        start: start.to_owned(),
        hops,
        end,
        certificate_error: None,
        html: html.map(HtmlFacts::from_html),
    }
}

fn failed(start: &str) -> Chain {
    chain(
        start,
        vec![],
        ChainEnd::Failed {
            url: start.to_owned(),
            error: FetchError::Connect("refused".into()),
        },
        None,
    )
}

fn redirect_to_https() -> Chain {
    chain(
        "http://site.test/",
        vec![
            hop(
                "http://site.test/",
                301,
                &[("location", "https://site.test/")],
            ),
            hop("https://site.test/", 200, &[]),
        ],
        ChainEnd::Response,
        None,
    )
}

/// An HTTPS site answering with `headers` (plus text/html unless given) and `body`.
fn https_site(headers: &[(&str, &str)], body: &str) -> WebEvidence {
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if !headers.iter().any(|(n, _)| *n == "content-type") {
        all.push(("content-type", "text/html; charset=utf-8"));
    }
    WebEvidence {
        domain: SITE.to_owned(),
        http: redirect_to_https(),
        https: chain(
            "https://site.test/",
            vec![hop("https://site.test/", 200, &all)],
            ChainEnd::Response,
            Some(body),
        ),
        cors: None,
    }
}

/// An HTTP-only site (HTTPS refused).
fn http_site(headers: &[(&str, &str)], body: &str) -> WebEvidence {
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    all.push(("content-type", "text/html"));
    WebEvidence {
        domain: SITE.to_owned(),
        http: chain(
            "http://site.test/",
            vec![hop("http://site.test/", 200, &all)],
            ChainEnd::Response,
            Some(body),
        ),
        https: failed("https://site.test/"),
        cors: None,
    }
}

fn modifier(name: &str) -> i32 {
    ALL.iter()
        .find(|o: &&Outcome| o.name == name)
        .map(|o| o.modifier)
        .unwrap_or_else(|| panic!("unknown result {name}"))
}

fn scored(evidence: &WebEvidence) -> Category {
    score_with_preload(evidence, &PreloadList::empty())
}

/// Runs the scoring and checks one test's result name and its modifier.
fn expect(evidence: &WebEvidence, test: &str, name: &str, points: i32, case: &str) {
    let category = scored(evidence);
    let check = category
        .checks
        .iter()
        .find(|c| c.id == test)
        .unwrap_or_else(|| panic!("no check {test}"));
    assert_eq!(
        check.result.as_deref(),
        Some(name),
        "{test}: {case}\n{}",
        check.evidence
    );
    assert_eq!(modifier(name), points, "{test}: modifier of {name}");
}

/// Response headers, expected result name, expected points.
type HeaderCase<'a> = (&'a [(&'a str, &'a str)], &'a str, i32);

const PAGE: &str = "<html><head><title>t</title></head><body>hi</body></html>";

#[test]
fn content_security_policy_table() {
    let cases: &[HeaderCase<'_>] = &[
        (&[], "csp-not-implemented", -25),
        (
            &[("content-security-policy-report-only", "default-src 'none'")],
            "csp-not-implemented-but-reporting-enabled",
            -25,
        ),
        (
            &[("content-security-policy", "default-src 'none'")],
            "csp-implemented-with-no-unsafe-default-src-none",
            10,
        ),
        (
            &[(
                "content-security-policy",
                "default-src 'none'; script-src 'self'; form-action 'self'",
            )],
            "csp-implemented-with-no-unsafe-default-src-none",
            10,
        ),
        (
            &[(
                "content-security-policy",
                "default-src 'self'; object-src 'none'",
            )],
            "csp-implemented-with-no-unsafe",
            5,
        ),
        (
            &[(
                "content-security-policy",
                "default-src 'self'; script-src 'self' 'unsafe-inline'",
            )],
            "csp-implemented-with-unsafe-inline",
            -20,
        ),
        (
            &[(
                "content-security-policy",
                "default-src 'self'; script-src 'self' 'unsafe-inline' 'nonce-r4nd0m'",
            )],
            "csp-implemented-with-no-unsafe",
            5,
        ),
        (
            &[(
                "content-security-policy",
                "default-src 'self'; script-src 'self' 'unsafe-inline' 'sha256-abc='",
            )],
            "csp-implemented-with-no-unsafe",
            5,
        ),
        (
            &[(
                "content-security-policy",
                "default-src 'self'; script-src 'self' data:",
            )],
            "csp-implemented-with-unsafe-inline",
            -20,
        ),
        (
            &[(
                "content-security-policy",
                "default-src 'self'; script-src 'self' 'unsafe-eval'",
            )],
            "csp-implemented-with-unsafe-eval",
            -10,
        ),
        (
            &[(
                "content-security-policy",
                "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'",
            )],
            "csp-implemented-with-unsafe-inline",
            -20,
        ),
        (
            &[("content-security-policy", "script-src 'self'")],
            "csp-implemented-with-unsafe-inline",
            -20,
        ),
        (
            &[(
                "content-security-policy",
                "default-src 'self'; object-src *",
            )],
            "csp-implemented-with-unsafe-inline",
            -20,
        ),
        (
            &[("content-security-policy", "default-src https:")],
            "csp-implemented-with-unsafe-inline",
            -20,
        ),
        (
            &[(
                "content-security-policy",
                "default-src 'self'; style-src 'self' 'unsafe-inline'",
            )],
            "csp-implemented-with-unsafe-inline-in-style-src-only",
            0,
        ),
        (
            &[(
                "content-security-policy",
                "script-src 'self'; object-src 'none'",
            )],
            "csp-implemented-with-unsafe-inline-in-style-src-only",
            0,
        ),
        (
            &[(
                "content-security-policy",
                "default-src 'self'; img-src http://img.example",
            )],
            "csp-implemented-with-insecure-scheme-in-passive-content-only",
            -10,
        ),
        (
            &[(
                "content-security-policy",
                "default-src 'self' http://cdn.example",
            )],
            "csp-implemented-with-insecure-scheme",
            -20,
        ),
        (
            &[(
                "content-security-policy",
                "default-src 'self'; connect-src ftp://files.example",
            )],
            "csp-implemented-with-insecure-scheme",
            -20,
        ),
        (
            &[(
                "content-security-policy",
                "default-src 'self'; script-src 'strict-dynamic'",
            )],
            "csp-header-invalid",
            -25,
        ),
        (
            &[(
                "content-security-policy",
                "default-src 'self'; script-src 'strict-dynamic' 'nonce-abc' https: 'unsafe-inline'; object-src 'none'",
            )],
            "csp-implemented-with-no-unsafe",
            5,
        ),
        (
            &[(
                "content-security-policy",
                "default-src 'self'; default-src 'none'",
            )],
            "csp-header-invalid",
            -25,
        ),
        (
            &[("content-security-policy", "a b")],
            "csp-header-invalid",
            -25,
        ),
        (
            &[("content-security-policy", "default-src 'none',")],
            "csp-header-invalid",
            -25,
        ),
        (
            &[(
                "content-security-policy",
                "default-src 'self'; report-uri /a; report-uri /b",
            )],
            "csp-implemented-but-duplicate-directives",
            0,
        ),
        (
            &[(
                "content-security-policy",
                "default-src 'self'; script-src 'unsafe-inline'; report-uri /a; report-uri /b",
            )],
            "csp-implemented-with-unsafe-inline",
            -20,
        ),
        // Two policies both apply: the narrower one wins.
        (
            &[
                (
                    "content-security-policy",
                    "default-src 'self' 'unsafe-inline'",
                ),
                ("content-security-policy", "default-src 'self'"),
            ],
            "csp-implemented-with-no-unsafe",
            5,
        ),
        (
            &[("content-security-policy", "frame-ancestors 'none'")],
            "csp-implemented-with-unsafe-inline",
            -20,
        ),
    ];
    for (headers, name, points) in cases {
        expect(
            &https_site(headers, PAGE),
            "content-security-policy",
            name,
            *points,
            &format!("{headers:?}"),
        );
    }
}

#[test]
fn csp_in_meta_and_over_http() {
    let meta = |content: &str| {
        format!(
            "<html><head><meta http-equiv=\"Content-Security-Policy\" content=\"{content}\"></head></html>"
        )
    };
    expect(
        &https_site(&[], &meta("default-src 'none'")),
        "content-security-policy",
        "csp-implemented-with-no-unsafe-default-src-none",
        10,
        "meta",
    );
    // frame-ancestors cannot be set by <meta>, so this is no policy at all.
    expect(
        &https_site(&[], &meta("frame-ancestors 'none'")),
        "content-security-policy",
        "csp-not-implemented",
        -25,
        "meta frame-ancestors",
    );
    // <meta> only counts on a response that says it is HTML.
    let untyped = https_site(
        &[("content-type", "text/plain")],
        &meta("default-src 'none'"),
    );
    expect(
        &untyped,
        "content-security-policy",
        "csp-not-implemented",
        -25,
        "meta on text/plain",
    );
    // http: sources only matter when the graded session is HTTPS.
    let plain = http_site(
        &[(
            "content-security-policy",
            "default-src 'self' http://cdn.example",
        )],
        PAGE,
    );
    expect(
        &plain,
        "content-security-policy",
        "csp-implemented-with-no-unsafe",
        5,
        "http session",
    );
}

#[test]
fn strict_transport_security_table() {
    let cases: &[HeaderCase<'_>] = &[
        (&[], "hsts-not-implemented", -20),
        (
            &[("strict-transport-security", "max-age=31536000")],
            "hsts-implemented-max-age-at-least-six-months",
            0,
        ),
        (
            &[("strict-transport-security", "max-age=15552000")],
            "hsts-implemented-max-age-at-least-six-months",
            0,
        ),
        (
            &[("strict-transport-security", "max-age=15551999")],
            "hsts-implemented-max-age-less-than-six-months",
            -10,
        ),
        (
            &[(
                "strict-transport-security",
                "max-age=300; includeSubDomains",
            )],
            "hsts-implemented-max-age-less-than-six-months",
            -10,
        ),
        (
            &[(
                "strict-transport-security",
                "Max-Age=63072000; includeSubDomains; Preload",
            )],
            "hsts-implemented-max-age-at-least-six-months",
            0,
        ),
        (
            &[("strict-transport-security", "max-age=\"31536000\"")],
            "hsts-header-invalid",
            -20,
        ),
        (
            &[("strict-transport-security", "includeSubDomains")],
            "hsts-header-invalid",
            -20,
        ),
        (
            &[("strict-transport-security", "max-age = 31536000")],
            "hsts-header-invalid",
            -20,
        ),
        (
            &[
                ("strict-transport-security", "max-age=31536000"),
                ("strict-transport-security", "max-age=0"),
            ],
            "hsts-header-invalid",
            -20,
        ),
    ];
    for (headers, name, points) in cases {
        expect(
            &https_site(headers, PAGE),
            "strict-transport-security",
            name,
            *points,
            &format!("{headers:?}"),
        );
    }
    expect(
        &http_site(&[("strict-transport-security", "max-age=31536000")], PAGE),
        "strict-transport-security",
        "hsts-not-implemented-no-https",
        -20,
        "no https",
    );
    let mut bad_cert = https_site(&[("strict-transport-security", "max-age=31536000")], PAGE);
    bad_cert.https.certificate_error = Some("expired".into());
    expect(
        &bad_cert,
        "strict-transport-security",
        "hsts-invalid-cert",
        -20,
        "bad certificate",
    );
    let preloaded = score_with_preload(
        &https_site(&[], PAGE),
        &PreloadList::empty().with(SITE, true),
    );
    let hsts = preloaded
        .checks
        .iter()
        .find(|c| c.id == "strict-transport-security")
        .map(|c| c.result.clone());
    assert_eq!(hsts, Some(Some("hsts-preloaded".to_owned())));
}

#[test]
fn x_frame_options_table() {
    let cases: &[HeaderCase<'_>] = &[
        (&[], "x-frame-options-not-implemented", -20),
        (
            &[("x-frame-options", "DENY")],
            "x-frame-options-sameorigin-or-deny",
            5,
        ),
        (
            &[("x-frame-options", " sameorigin ")],
            "x-frame-options-sameorigin-or-deny",
            5,
        ),
        (
            &[("x-frame-options", "ALLOW-FROM https://partner.example")],
            "x-frame-options-allow-from-origin",
            0,
        ),
        (
            &[("x-frame-options", "allowall")],
            "x-frame-options-header-invalid",
            -20,
        ),
        (
            &[
                ("x-frame-options", "DENY"),
                ("x-frame-options", "SAMEORIGIN"),
            ],
            "x-frame-options-header-invalid",
            -20,
        ),
        (
            &[(
                "content-security-policy",
                "default-src 'self'; frame-ancestors 'none'",
            )],
            "x-frame-options-implemented-via-csp",
            5,
        ),
        (
            &[
                (
                    "content-security-policy",
                    "default-src 'self'; frame-ancestors 'self'",
                ),
                ("x-frame-options", "junk"),
            ],
            "x-frame-options-implemented-via-csp",
            5,
        ),
        // An unparseable policy does not count.
        (
            &[(
                "content-security-policy",
                "frame-ancestors 'none'; frame-ancestors 'self'",
            )],
            "x-frame-options-not-implemented",
            -20,
        ),
    ];
    for (headers, name, points) in cases {
        expect(
            &https_site(headers, PAGE),
            "x-frame-options",
            name,
            *points,
            &format!("{headers:?}"),
        );
    }
    let meta = "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'self'; frame-ancestors 'none'\">";
    expect(
        &https_site(&[], meta),
        "x-frame-options",
        "x-frame-options-not-implemented",
        -20,
        "meta frame-ancestors is ignored",
    );
}

#[test]
fn referrer_policy_table() {
    let cases: &[HeaderCase<'_>] = &[
        (&[], "referrer-policy-not-implemented", 0),
        (
            &[("referrer-policy", "no-referrer")],
            "referrer-policy-private",
            5,
        ),
        (
            &[("referrer-policy", "same-origin")],
            "referrer-policy-private",
            5,
        ),
        (
            &[("referrer-policy", "strict-origin")],
            "referrer-policy-private",
            5,
        ),
        (
            &[("referrer-policy", "Strict-Origin-When-Cross-Origin")],
            "referrer-policy-private",
            5,
        ),
        (
            &[("referrer-policy", "origin")],
            "referrer-policy-unsafe",
            -5,
        ),
        (
            &[("referrer-policy", "origin-when-cross-origin")],
            "referrer-policy-unsafe",
            -5,
        ),
        (
            &[("referrer-policy", "unsafe-url")],
            "referrer-policy-unsafe",
            -5,
        ),
        (
            &[("referrer-policy", "no-referrer-when-downgrade")],
            "referrer-policy-unsafe",
            -5,
        ),
        (
            &[("referrer-policy", "bogus")],
            "referrer-policy-header-invalid",
            -5,
        ),
        (
            &[("referrer-policy", "no-referrer, unsafe-url")],
            "referrer-policy-unsafe",
            -5,
        ),
        (
            &[(
                "referrer-policy",
                "unsafe-url, strict-origin-when-cross-origin",
            )],
            "referrer-policy-private",
            5,
        ),
        (
            &[("referrer-policy", "unsafe-url, bogus")],
            "referrer-policy-unsafe",
            -5,
        ),
        (
            &[
                ("referrer-policy", "unsafe-url"),
                ("referrer-policy", "no-referrer"),
            ],
            "referrer-policy-private",
            5,
        ),
    ];
    for (headers, name, points) in cases {
        expect(
            &https_site(headers, PAGE),
            "referrer-policy",
            name,
            *points,
            &format!("{headers:?}"),
        );
    }
    let meta = "<meta name=\"referrer\" content=\"no-referrer\">";
    expect(
        &https_site(&[("referrer-policy", "unsafe-url")], meta),
        "referrer-policy",
        "referrer-policy-private",
        5,
        "meta wins",
    );
}

#[test]
fn simple_header_tables() {
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, i32);
    let cases: &[Case<'_>] = &[
        (
            "x-content-type-options",
            &[],
            "x-content-type-options-not-implemented",
            -5,
        ),
        (
            "x-content-type-options",
            &[("x-content-type-options", "nosniff")],
            "x-content-type-options-nosniff",
            0,
        ),
        (
            "x-content-type-options",
            &[("x-content-type-options", " NoSniff ")],
            "x-content-type-options-nosniff",
            0,
        ),
        (
            "x-content-type-options",
            &[("x-content-type-options", "sniff")],
            "x-content-type-options-header-invalid",
            -5,
        ),
        (
            "x-content-type-options",
            &[
                ("x-content-type-options", "nosniff"),
                ("x-content-type-options", "nosniff"),
            ],
            "x-content-type-options-header-invalid",
            -5,
        ),
        (
            "cross-origin-resource-policy",
            &[],
            "corp-not-implemented",
            0,
        ),
        (
            "cross-origin-resource-policy",
            &[("cross-origin-resource-policy", "same-origin")],
            "corp-implemented-with-same-origin",
            10,
        ),
        (
            "cross-origin-resource-policy",
            &[("cross-origin-resource-policy", "Same-Site")],
            "corp-implemented-with-same-site",
            10,
        ),
        (
            "cross-origin-resource-policy",
            &[("cross-origin-resource-policy", "cross-origin")],
            "corp-implemented-with-cross-origin",
            0,
        ),
        (
            "cross-origin-resource-policy",
            &[("cross-origin-resource-policy", "same")],
            "corp-header-invalid",
            -5,
        ),
        ("cross-origin-opener-policy", &[], "coop-not-implemented", 0),
        (
            "cross-origin-opener-policy",
            &[("cross-origin-opener-policy", "same-origin")],
            "coop-implemented-with-same-origin",
            10,
        ),
        (
            "cross-origin-opener-policy",
            &[("cross-origin-opener-policy", "same-origin-allow-popups")],
            "coop-implemented-with-same-origin-allow-popups",
            10,
        ),
        (
            "cross-origin-opener-policy",
            &[("cross-origin-opener-policy", "noopener-allow-popups")],
            "coop-implemented-with-noopener-allow-popups",
            10,
        ),
        (
            "cross-origin-opener-policy",
            &[("cross-origin-opener-policy", "unsafe-none")],
            "coop-implemented-with-unsafe-none",
            0,
        ),
        (
            "cross-origin-opener-policy",
            &[(
                "cross-origin-opener-policy",
                "same-origin; report-to=\"coop\"",
            )],
            "coop-implemented-with-same-origin",
            10,
        ),
        (
            "cross-origin-opener-policy",
            &[("cross-origin-opener-policy", "\"same-origin\"")],
            "coop-header-invalid",
            -5,
        ),
        (
            "cross-origin-opener-policy",
            &[("cross-origin-opener-policy", "Same-Origin")],
            "coop-header-invalid",
            -5,
        ),
        (
            "cross-origin-opener-policy",
            &[
                ("cross-origin-opener-policy", "same-origin"),
                ("cross-origin-opener-policy", "same-origin"),
            ],
            "coop-header-invalid",
            -5,
        ),
        (
            "cross-origin-embedder-policy",
            &[],
            "coep-not-implemented",
            0,
        ),
        (
            "cross-origin-embedder-policy",
            &[("cross-origin-embedder-policy", "require-corp")],
            "coep-implemented-with-require-corp",
            10,
        ),
        (
            "cross-origin-embedder-policy",
            &[(
                "cross-origin-embedder-policy",
                "credentialless; report-to=\"e\"",
            )],
            "coep-implemented-with-credentialless",
            10,
        ),
        (
            "cross-origin-embedder-policy",
            &[("cross-origin-embedder-policy", "unsafe-none")],
            "coep-implemented-with-unsafe-none",
            0,
        ),
        (
            "cross-origin-embedder-policy",
            &[(
                "cross-origin-embedder-policy",
                "require-corp; report-to=coep endpoint",
            )],
            "coep-header-invalid",
            -5,
        ),
    ];
    for (test, headers, name, points) in cases {
        expect(
            &https_site(headers, PAGE),
            test,
            name,
            *points,
            &format!("{headers:?}"),
        );
    }
}

#[test]
fn cors_table() {
    let exchange = |headers: &[(&str, &str)]| CorsExchange {
        url: "https://site.test/".into(),
        origin: CORS_ORIGIN.into(),
        status: Some(200),
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        error: None,
    };
    let cases: &[(Option<CorsExchange>, &str, i32)] = &[
        (None, "cross-origin-resource-sharing-not-implemented", 0),
        (
            Some(exchange(&[])),
            "cross-origin-resource-sharing-not-implemented",
            0,
        ),
        (
            Some(exchange(&[("access-control-allow-origin", "*")])),
            "cross-origin-resource-sharing-implemented-with-public-access",
            0,
        ),
        (
            Some(exchange(&[
                ("access-control-allow-origin", "*"),
                ("access-control-allow-credentials", "true"),
            ])),
            "cross-origin-resource-sharing-implemented-with-public-access",
            0,
        ),
        (
            Some(exchange(&[
                ("access-control-allow-origin", CORS_ORIGIN),
                ("access-control-allow-credentials", "TRUE"),
            ])),
            "cross-origin-resource-sharing-implemented-with-universal-access",
            -50,
        ),
        (
            Some(exchange(&[("access-control-allow-origin", CORS_ORIGIN)])),
            "cross-origin-resource-sharing-implemented-with-restricted-access",
            0,
        ),
        (
            Some(exchange(&[
                ("access-control-allow-origin", "https://partner.example"),
                ("access-control-allow-credentials", "true"),
            ])),
            "cross-origin-resource-sharing-implemented-with-restricted-access",
            0,
        ),
    ];
    for (cors, name, points) in cases {
        let mut evidence = https_site(&[], PAGE);
        evidence.cors = cors.clone();
        expect(
            &evidence,
            "cross-origin-resource-sharing",
            name,
            *points,
            &format!("{cors:?}"),
        );
    }
}

#[test]
fn redirection_table() {
    let h = |url: &str, status: u16, to: Option<&str>| match to {
        Some(to) => hop(url, status, &[("location", to)]),
        None => hop(url, status, &[]),
    };
    let cases: Vec<(Chain, &str, i32)> = vec![
        (
            failed("http://site.test/"),
            "redirection-not-needed-no-http",
            0,
        ),
        (
            chain(
                "http://site.test/",
                vec![h("http://site.test/", 200, None)],
                ChainEnd::Response,
                None,
            ),
            "redirection-missing",
            -20,
        ),
        (redirect_to_https(), "redirection-to-https", 0),
        (
            chain(
                "http://site.test/",
                vec![
                    h("http://site.test/", 301, Some("http://www.site.test/")),
                    h("http://www.site.test/", 301, Some("https://www.site.test/")),
                    h("https://www.site.test/", 200, None),
                ],
                ChainEnd::Response,
                None,
            ),
            "redirection-not-to-https-on-initial-redirection",
            -10,
        ),
        (
            chain(
                "http://site.test/",
                vec![
                    h("http://site.test/", 301, Some("https://www.site.test/")),
                    h("https://www.site.test/", 200, None),
                ],
                ChainEnd::Response,
                None,
            ),
            "redirection-off-host-from-http",
            -5,
        ),
        (
            chain(
                "http://site.test/",
                vec![
                    h("http://site.test/", 302, Some("http://other.test/")),
                    h("http://other.test/", 200, None),
                ],
                ChainEnd::Response,
                None,
            ),
            "redirection-not-to-https",
            -20,
        ),
        (
            chain(
                "http://site.test/",
                vec![
                    h("http://site.test/", 301, Some("https://site.test/")),
                    h("https://site.test/", 302, Some("https://www.site.test/")),
                    h("https://www.site.test/", 200, None),
                ],
                ChainEnd::Response,
                None,
            ),
            "redirection-to-https",
            0,
        ),
        // The redirect pointed to HTTPS; that HTTPS is down is the HSTS test's business.
        (
            chain(
                "http://site.test/",
                vec![h("http://site.test/", 301, Some("https://site.test/"))],
                ChainEnd::Failed {
                    url: "https://site.test/".into(),
                    error: FetchError::Connect("refused".into()),
                },
                None,
            ),
            "redirection-to-https",
            0,
        ),
        (
            chain(
                "http://site.test/",
                vec![
                    h("http://site.test/", 302, Some("/")),
                    h("http://site.test/", 302, Some("/")),
                ],
                ChainEnd::Loop {
                    url: "http://site.test/".into(),
                },
                None,
            ),
            "redirection-not-to-https",
            -20,
        ),
    ];
    for (http, name, points) in cases {
        let mut evidence = https_site(&[], PAGE);
        let case = format!("{:?}", http.hops.iter().map(|h| &h.url).collect::<Vec<_>>());
        evidence.http = http;
        expect(&evidence, "redirection", name, points, &case);
    }
    let mut bad_cert = https_site(&[], PAGE);
    bad_cert.http.certificate_error = Some("UnknownIssuer".into());
    expect(
        &bad_cert,
        "redirection",
        "redirection-invalid-cert",
        -20,
        "certificate rejected on the way",
    );

    let preloaded = score_with_preload(
        &https_site(&[], PAGE),
        &PreloadList::empty().with(SITE, true),
    );
    let redirection = preloaded
        .checks
        .iter()
        .find(|c| c.id == "redirection")
        .and_then(|c| c.result.clone());
    assert_eq!(
        redirection.as_deref(),
        Some("redirection-all-redirects-preloaded")
    );
}

#[test]
fn subresource_integrity_table() {
    let script = |src: &str, integrity: bool| {
        let integrity = if integrity {
            " integrity=\"sha384-abc\" crossorigin=\"anonymous\""
        } else {
            ""
        };
        format!("<script src=\"{src}\"{integrity}></script>")
    };
    let cases: Vec<(String, &str, i32)> = vec![
        (
            PAGE.to_owned(),
            "sri-not-implemented-but-no-scripts-loaded",
            0,
        ),
        (
            "<script>inline()</script>".to_owned(),
            "sri-not-implemented-but-all-scripts-loaded-from-secure-origin",
            0,
        ),
        (
            script("/app.js", false),
            "sri-not-implemented-but-all-scripts-loaded-from-secure-origin",
            0,
        ),
        (
            script("/app.js", true),
            "sri-implemented-and-all-scripts-loaded-securely",
            5,
        ),
        (
            script("https://cdn.other.test/x.js", true),
            "sri-implemented-and-external-scripts-loaded-securely",
            5,
        ),
        (
            script("https://cdn.other.test/x.js", false),
            "sri-not-implemented-but-external-scripts-loaded-securely",
            -5,
        ),
        (
            script("http://cdn.other.test/x.js", true),
            "sri-implemented-but-external-scripts-not-loaded-securely",
            -20,
        ),
        (
            script("http://cdn.other.test/x.js", false),
            "sri-not-implemented-and-external-scripts-not-loaded-securely",
            -50,
        ),
        (
            script("//cdn.other.test/x.js", false),
            "sri-not-implemented-and-external-scripts-not-loaded-securely",
            -50,
        ),
        (
            script("//cdn.other.test/x.js", true),
            "sri-implemented-but-external-scripts-not-loaded-securely",
            -20,
        ),
        (
            script("https://static.site.test/x.js", false),
            "sri-not-implemented-but-all-scripts-loaded-from-secure-origin",
            0,
        ),
        (
            script("HTTPS://CDN.OTHER.TEST/x.js", true),
            "sri-implemented-and-external-scripts-loaded-securely",
            5,
        ),
        // The Observatory ranks "SRI over http" above "no SRI over https": the latter wins.
        (
            format!(
                "{}{}",
                script("http://cdn.other.test/a.js", true),
                script("https://cdn.other.test/b.js", false)
            ),
            "sri-not-implemented-but-external-scripts-loaded-securely",
            -5,
        ),
        (
            format!(
                "{}{}",
                script("/app.js", true),
                script("https://cdn.other.test/b.js", false)
            ),
            "sri-not-implemented-but-external-scripts-loaded-securely",
            -5,
        ),
    ];
    for (body, name, points) in cases {
        expect(
            &https_site(&[], &body),
            "subresource-integrity",
            name,
            points,
            &body,
        );
    }
    let json = https_site(&[("content-type", "application/json")], "{}");
    expect(
        &json,
        "subresource-integrity",
        "sri-not-implemented-response-not-html",
        0,
        "json",
    );
    // Relative scripts count as secure only when the session is HTTPS.
    expect(
        &http_site(&[], &script("/app.js", true)),
        "subresource-integrity",
        "sri-not-implemented-but-all-scripts-loaded-from-secure-origin",
        0,
        "http",
    );
}

#[test]
fn cookies_follow_the_graded_chain_and_hsts() {
    let mut evidence = https_site(&[("strict-transport-security", "max-age=31536000")], PAGE);
    let first = hop(
        "https://site.test/",
        302,
        &[
            ("location", "/home"),
            ("set-cookie", "sessionid=1; HttpOnly"),
        ],
    );
    let last = hop(
        "https://site.test/home",
        200,
        &[
            ("content-type", "text/html"),
            ("strict-transport-security", "max-age=31536000"),
        ],
    );
    evidence.https.hops = vec![first, last];
    expect(
        &evidence,
        "cookies",
        "cookies-session-without-secure-flag-but-protected-by-hsts",
        -10,
        "cookie on a redirect hop",
    );
    // Without HSTS the same cookie is the worst case.
    evidence.https.hops[1]
        .headers
        .retain(|(n, _)| n != "strict-transport-security");
    expect(
        &evidence,
        "cookies",
        "cookies-session-without-secure-flag",
        -40,
        "no HSTS",
    );
}

/// Headers a well-configured site sends.
const STRONG: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (
        "strict-transport-security",
        "max-age=63072000; includeSubDomains; preload",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-resource-policy", "same-origin"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-embedder-policy", "require-corp"),
    (
        "set-cookie",
        "__Host-sid=1; Secure; HttpOnly; SameSite=Strict; Path=/",
    ),
    ("content-type", "text/html; charset=utf-8"),
];
const STRONG_PAGE: &str =
    "<html><head><script src=\"/app.js\" integrity=\"sha384-abc\"></script></head></html>";

fn summary(category: &Category) -> &kepler_core::Check {
    category
        .checks
        .iter()
        .find(|c| c.id == "observatory-grade")
        .expect("summary check")
}

#[test]
fn strong_site_earns_every_bonus_and_caps_at_100() {
    let category = scored(&https_site(STRONG, STRONG_PAGE));
    assert_eq!(category.score, Some(100));
    assert_eq!(category.checks.len(), 13);
    assert_eq!(summary(&category).result.as_deref(), Some("A+"));
    // 10 (CSP) + 5 (cookies) + 5 (referrer) + 5 (SRI) + 5 (XFO) + 10 × 3 (CORP, COOP, COEP)
    let points: i32 = category.checks.iter().map(|c| c.points).sum();
    assert_eq!(points, 60);
    assert!(
        summary(&category)
            .evidence
            .contains("Observatory-style score 160"),
        "{}",
        summary(&category).evidence
    );
    assert!(
        category
            .checks
            .iter()
            .all(|c| c.status != CheckStatus::Fail && c.status != CheckStatus::Error)
    );
}

#[test]
fn bonuses_count_only_when_the_uncurved_score_is_at_least_90() {
    // Strong, but no CSP: 100 − 25 = 75 < 90, so no bonus is added.
    let headers: Vec<(&str, &str)> = STRONG
        .iter()
        .copied()
        .filter(|(n, _)| *n != "content-security-policy")
        .collect();
    let category = scored(&https_site(&headers, STRONG_PAGE));
    assert_eq!(category.score, Some(75));
    assert_eq!(summary(&category).result.as_deref(), Some("B"));
    let points: i32 = category.checks.iter().map(|c| c.points).sum();
    assert_eq!(points, -25, "uncounted bonuses show as 0 points");
    let corp = category
        .checks
        .iter()
        .find(|c| c.id == "cross-origin-resource-policy")
        .expect("corp");
    assert_eq!((corp.points, corp.status), (0, CheckStatus::Pass));
    assert!(corp.evidence.contains("not counted"));

    // Exactly 90 uncurved: bonuses count.
    let mut headers: Vec<(&str, &str)> = STRONG
        .iter()
        .copied()
        .filter(|(n, _)| *n != "strict-transport-security")
        .collect();
    headers.push(("strict-transport-security", "max-age=300"));
    let category = scored(&https_site(&headers, STRONG_PAGE));
    assert!(
        summary(&category)
            .evidence
            .contains("Observatory-style score 150"),
        "{}",
        summary(&category).evidence
    );
}

#[test]
fn http_only_site_without_headers_scores_f() {
    let category = scored(&http_site(&[], PAGE));
    // −25 CSP, −20 redirection, −20 HSTS (no HTTPS), −5 X-Content-Type-Options, −20 X-Frame-Options
    assert_eq!(category.score, Some(10));
    assert_eq!(summary(&category).result.as_deref(), Some("F"));
    let fails: Vec<&str> = category
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(
        fails,
        [
            "content-security-policy",
            "redirection",
            "strict-transport-security",
            "x-content-type-options",
            "x-frame-options"
        ]
    );
    let neutral = category
        .checks
        .iter()
        .find(|c| c.id == "cookies")
        .map(|c| c.status);
    assert_eq!(neutral, Some(CheckStatus::Info));
}

#[test]
fn nothing_answering_means_no_score_and_error_checks() {
    let evidence = WebEvidence {
        domain: SITE.into(),
        http: failed("http://site.test/"),
        https: failed("https://site.test/"),
        cors: None,
    };
    let category = scored(&evidence);
    assert_eq!(category.score, None);
    assert_eq!(category.checks.len(), 13);
    assert!(
        category
            .checks
            .iter()
            .all(|c| c.status == CheckStatus::Error && c.points == 0)
    );
}

#[test]
fn observatory_fixture_headers_reproduce_its_score() {
    // Headers of observatory.mozilla.org as captured in the Observatory's own test
    // fixture (2026-01-12), which its test suite scores 110 (A+) with 12/12 passed.
    let csp = "default-src 'self'; script-src 'report-sample' 'self' 'wasm-unsafe-eval' https://www.google-analytics.com/analytics.js https://*.googletagmanager.com 'sha256-XNBp89FG76amD8BqrJzyflxOF9PaWPqPqvJfKZPCv7M='; style-src 'report-sample' 'self' 'unsafe-inline'; object-src 'none'; base-uri 'self'; img-src 'self' data: *.githubusercontent.com https://*.google-analytics.com; media-src 'self' archive.org; child-src 'self'; worker-src 'self';";
    let headers = [
        ("content-security-policy", csp),
        ("referrer-policy", "strict-origin-when-cross-origin"),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("strict-transport-security", "max-age=63072000"),
        ("content-type", "text/html"),
    ];
    let page = "<html><head><script>try{}catch(e){}</script><script src=\"/static/client/runtime.js\" type=\"module\"></script></head></html>";
    let category = scored(&https_site(&headers, page));
    let s = summary(&category);
    assert!(
        s.evidence.contains("Observatory-style score 110")
            && s.evidence.contains("12/12 tests passed"),
        "{}",
        s.evidence
    );
    assert_eq!(s.result.as_deref(), Some("A+"));
}

/// Issue 3: every result, passes and neutral ones included, tells the owner
/// something to act on rather than filler.
#[test]
fn every_result_carries_a_specific_recommendation() {
    for outcome in ALL {
        let rec = outcome.recommendation.trim();
        assert!(
            !rec.is_empty() && !rec.starts_with("Nothing to change"),
            "{} recommends {rec:?}",
            outcome.name
        );
    }
}

#[test]
fn every_result_is_documented_with_its_points() {
    let doc = include_str!("../../../../docs/scoring/http_headers.md");
    for outcome in ALL {
        let row = doc
            .lines()
            .filter(|l| l.starts_with('|'))
            .find(|l| l.contains(&format!("`{}`", outcome.name)));
        let row = row.unwrap_or_else(|| {
            panic!(
                "{} is missing from docs/scoring/http_headers.md",
                outcome.name
            )
        });
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let points = format!("{:+}", outcome.modifier).replace("+0", "0");
        assert!(
            cells.contains(&points.as_str()),
            "{} should show {points}: {row}",
            outcome.name
        );
    }
}

// ---- probes against loopback servers ----

fn domain() -> Domain {
    Domain::parse(SITE).expect("valid domain")
}

#[tokio::test]
async fn probe_records_each_hop_and_grades_https() {
    // "/" answers differently on the two ports, so each server gets its own script.
    let http = Script::new().get(SITE, "/", Reply::redirect(301, "https://site.test/"));
    let https = Script::new().get(SITE, "/", Reply::ok(STRONG_PAGE).headers(STRONG));
    let net = super::testkit::split_testnet(&[SITE], http, https, Cert::Valid).await;
    let evidence = probe(&net.fetcher, &domain()).await;
    assert_eq!(evidence.http.hops.len(), 2, "{:?}", evidence.http);
    assert_eq!(evidence.http.hops[0].status, 301);
    assert_eq!(
        evidence.http.hops[0].location.as_deref(),
        Some("https://site.test/")
    );
    assert_eq!(evidence.http.hops[1].url, "https://site.test/");
    assert_eq!(evidence.https.hops.len(), 1);
    assert!(evidence.https.verified());
    let html = evidence.https.html.as_ref().expect("html parsed");
    assert_eq!(html.scripts.len(), 1);
    let cors = evidence.cors.as_ref().expect("preflight sent");
    assert_eq!(cors.url, "https://site.test/");
    let category = score(&evidence);
    assert_eq!(category.score, Some(100));
    assert_eq!(summary(&category).result.as_deref(), Some("A+"));
}

#[tokio::test]
async fn probe_of_an_http_only_site() {
    let script = Script::new().get(
        SITE,
        "/",
        Reply::ok(PAGE).header("content-type", "text/html"),
    );
    let net = testnet(&[SITE], script, None).await;
    let evidence = probe(&net.fetcher, &domain()).await;
    assert!(
        matches!(
            evidence.https.end,
            ChainEnd::Failed {
                error: FetchError::Connect(_),
                ..
            }
        ),
        "{:?}",
        evidence.https.end
    );
    let category = score(&evidence);
    assert_eq!(category.score, Some(10));
    let result = |id: &str| {
        category
            .checks
            .iter()
            .find(|c| c.id == id)
            .and_then(|c| c.result.clone())
            .unwrap_or_default()
    };
    assert_eq!(result("redirection"), "redirection-missing");
    assert_eq!(
        result("strict-transport-security"),
        "hsts-not-implemented-no-https"
    );
}

#[tokio::test]
async fn probe_behind_an_expired_certificate_still_reads_headers() {
    let http = Script::new().get(SITE, "/", Reply::redirect(301, "https://site.test/"));
    let https = Script::new().get(SITE, "/", Reply::ok(STRONG_PAGE).headers(STRONG));
    let net = super::testkit::split_testnet(&[SITE], http, https, Cert::Expired).await;
    let evidence = probe(&net.fetcher, &domain()).await;
    assert!(evidence.https.certificate_error.is_some());
    assert_eq!(
        evidence.https.hops.len(),
        1,
        "headers read without verification"
    );
    let category = score(&evidence);
    let result = |id: &str| {
        category
            .checks
            .iter()
            .find(|c| c.id == id)
            .and_then(|c| c.result.clone())
            .unwrap_or_default()
    };
    assert_eq!(result("strict-transport-security"), "hsts-invalid-cert");
    assert_eq!(result("redirection"), "redirection-invalid-cert");
    assert_eq!(
        result("content-security-policy"),
        "csp-implemented-with-no-unsafe-default-src-none"
    );
}

#[tokio::test]
async fn probe_stops_on_loops_and_long_chains() {
    let looping = Script::new()
        .get(SITE, "/", Reply::redirect(302, "/a"))
        .get(SITE, "/a", Reply::redirect(302, "/"));
    let net = testnet(&[SITE], looping, None).await;
    let evidence = probe(&net.fetcher, &domain()).await;
    assert_eq!(
        evidence.http.end,
        ChainEnd::Loop {
            url: "http://site.test/".into()
        }
    );
    assert_eq!(evidence.http.hops.len(), 2);

    let mut long = Script::new().get(SITE, "/", Reply::redirect(302, "/1"));
    for i in 1..20 {
        long = long.get(
            SITE,
            &format!("/{i}"),
            Reply::redirect(302, &format!("/{}", i + 1)),
        );
    }
    let net = testnet(&[SITE], long, None).await;
    let evidence = probe(&net.fetcher, &domain()).await;
    assert_eq!(evidence.http.end, ChainEnd::TooManyRedirects);
    assert_eq!(evidence.http.hops.len(), MAX_REDIRECTS + 1);

    let nowhere = Script::new().get(SITE, "/", Reply::new(302));
    let net = testnet(&[SITE], nowhere, None).await;
    let evidence = probe(&net.fetcher, &domain()).await;
    assert_eq!(evidence.http.end, ChainEnd::BadLocation { location: None });
}

#[tokio::test]
async fn probe_sees_cors_reflecting_any_origin() {
    let script = Script::new()
        .get(
            SITE,
            "/",
            Reply::ok(PAGE).header("content-type", "text/html"),
        )
        .reflect_origin(SITE);
    let net = testnet(&[SITE], script, Some(Cert::Valid)).await;
    let evidence = probe(&net.fetcher, &domain()).await;
    let category = score(&evidence);
    let cors = category
        .checks
        .iter()
        .find(|c| c.id == "cross-origin-resource-sharing")
        .expect("cors check");
    assert_eq!(
        cors.result.as_deref(),
        Some("cross-origin-resource-sharing-implemented-with-universal-access")
    );
    assert_eq!((cors.points, cors.status), (-50, CheckStatus::Fail));
}

#[tokio::test]
async fn probe_of_a_silent_or_absent_site() {
    let slow = Script::new().get(SITE, "/", Reply::ok(PAGE).delay(Duration::from_secs(5)));
    let net =
        testnet_with_timeout(&[SITE], slow, Some(Cert::Valid), Duration::from_millis(500)).await;
    let evidence = probe(&net.fetcher, &domain()).await;
    assert!(
        matches!(
            evidence.https.end,
            ChainEnd::Failed {
                error: FetchError::Timeout,
                ..
            }
        ),
        "{:?}",
        evidence.https.end
    );
    assert_eq!(score(&evidence).score, None);

    let down = super::testkit::down_testnet(&[SITE]).await;
    let evidence = probe(&down.fetcher, &domain()).await;
    let category = score(&evidence);
    assert_eq!(category.score, None);
    assert!(
        category
            .checks
            .iter()
            .all(|c| c.status == CheckStatus::Error)
    );
}
