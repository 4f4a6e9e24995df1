//! The `tls` category: SSL Labs' rating guide adapted to 0–100.
//! docs/scoring/tls.md explains every constant and check; keep the two in step.
//!
//! Arithmetic: start at 100; add every check's fixed points; then apply the
//! caps, highest ceiling first (ties in listing order), each cap check's points
//! being what it takes off (`min(0, ceiling − running score)`). So the category
//! score is always exactly 100 + the sum of the listed points.

use kepler_core::{Category, CategoryId, Check, CheckStatus, GradeCap};

use super::evidence::{CertVerdict, HelloProbe, HttpsStatus, KeyKind, TlsEvidence};
use super::suites::{self, version_name};

/// Where every category starts.
pub const START: i32 = 100;
/// Ceiling for "capped at B": the lowest score of the B band on Kepler's chart
/// (B- ≥ 80). SSL Labs' own numeric B ends at 79, which Kepler's chart would
/// read as C+, harsher than the anchor's letter.
pub const B_BAND_CEILING: i32 = 80;
/// Untrusted, expired, not-yet-valid or mismatched certificate: the category is 0.
pub const BAD_CERTIFICATE_CEILING: i32 = 0;
/// No working HTTPS: the whole category is lost.
pub const NO_HTTPS_POINTS: i32 = -100;
/// Fewer days than this before notAfter: small loss.
pub const EXPIRY_SOON_DAYS: i64 = 30;
pub const EXPIRY_SOON_POINTS: i32 = -5;
/// Fewer days than this before notAfter: renewal is overdue in practice.
pub const EXPIRY_URGENT_DAYS: i64 = 14;
pub const EXPIRY_URGENT_POINTS: i32 = -15;
/// TLS 1.3 not supported.
pub const NO_TLS13_POINTS: i32 = -5;
/// Smallest RSA or DSA key that is not capped (SSL Labs: below 2048 → B).
pub const MIN_RSA_BITS: u32 = 2048;
/// Smallest elliptic-curve key that is not capped (P-224 ≈ RSA 2048, NIST SP 800-57).
pub const MIN_EC_BITS: u32 = 224;

/// How a check moves the score.
#[derive(Debug, Clone, Copy)]
enum Effect {
    Points(i32),
    Cap(i32),
}

#[derive(Debug)]
struct Scored {
    check: Check,
    effect: Effect,
}

fn check(
    id: &str,
    status: CheckStatus,
    effect: Effect,
    evidence: String,
    recommendation: &str,
) -> Scored {
    let points = match effect {
        Effect::Points(p) => p,
        Effect::Cap(_) => 0,
    };
    let check = Check {
        id: id.to_owned(),
        status,
        points,
        evidence,
        recommendation: recommendation.to_owned(),
        result: None,
    };
    Scored { check, effect }
}

fn none(id: &str, status: CheckStatus, evidence: String, recommendation: &str) -> Scored {
    check(id, status, Effect::Points(0), evidence, recommendation)
}

/// Applies fixed points, then caps (highest ceiling first, ties in order).
fn total(mut scored: Vec<Scored>) -> (u32, Vec<Check>) {
    let fixed: i32 = scored
        .iter()
        .map(|s| {
            if let Effect::Points(p) = s.effect {
                p
            } else {
                0
            }
        })
        .sum();
    let mut running = (START + fixed).clamp(0, 100);
    let mut caps: Vec<(usize, i32)> = scored
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            if let Effect::Cap(c) = s.effect {
                Some((i, c))
            } else {
                None
            }
        })
        .collect();
    caps.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (i, ceiling) in caps {
        let taken = (ceiling - running).min(0);
        running += taken;
        scored[i].check.points = taken;
    }
    (
        u32::try_from(running).unwrap_or(0),
        scored.into_iter().map(|s| s.check).collect(),
    )
}

fn category(score: Option<u32>, checks: Vec<Check>) -> Category {
    Category {
        id: CategoryId::Tls,
        score,
        weight: CategoryId::Tls.weight(),
        checks,
    }
}

/// Scores the evidence: the `tls` category and any hard caps on the total grade.
pub fn score(e: &TlsEvidence) -> (Category, Vec<GradeCap>) {
    let status = e.https_status();
    if status == HttpsStatus::Inconclusive {
        let failure = e
            .main
            .as_ref()
            .err()
            .map_or_else(String::new, ToString::to_string);
        let evidence = format!("could not look at HTTPS on port {}: {failure}", e.port);
        let checks = vec![
            none(
                "tls-https",
                CheckStatus::Error,
                evidence,
                "If this repeats, check that port 443 completes a handshake within a few seconds from outside your network.",
            )
            .check,
        ];
        return (category(None, checks), Vec::new());
    }
    if status != HttpsStatus::Working {
        return no_https(e, status);
    }

    let mut scored = vec![https_working(e)];
    let (certificate, bad_certificate) = certificate_check(e);
    scored.push(certificate);
    scored.push(expiry_check(e));
    scored.push(key_check(e));
    scored.push(tls13_check(e));
    scored.push(tls12_check(e));
    scored.push(legacy_check(e));
    let given = tls12_client_suite(e);
    scored.push(forward_secrecy_check(&given));
    scored.push(aead_check(&given));
    scored.push(weak_suites_check(e));
    scored.push(alpn_check(e));
    let (score, checks) = total(scored);
    let caps = if bad_certificate {
        vec![GradeCap::BadCertificate]
    } else {
        Vec::new()
    };
    (category(Some(score), checks), caps)
}

fn no_https(e: &TlsEvidence, status: HttpsStatus) -> (Category, Vec<GradeCap>) {
    let failure = e
        .main
        .as_ref()
        .err()
        .map_or_else(String::new, ToString::to_string);
    let evidence = match status {
        HttpsStatus::NoAddresses => format!("no address to connect to for port {}", e.port),
        HttpsStatus::NothingListening => format!(
            "nothing accepted a connection on port {}: {failure}",
            e.port
        ),
        _ => format!("connected, but no TLS 1.2 or 1.3 handshake completed: {failure}"),
    };
    let mut scored = vec![check(
        "tls-https",
        CheckStatus::Fail,
        Effect::Points(NO_HTTPS_POINTS),
        evidence,
        "Serve HTTPS on port 443 with TLS 1.2 and 1.3 and a certificate from a publicly trusted CA.",
    )];
    // Worth showing why a server that answers still fails: it may speak only TLS 1.0/1.1.
    if [&e.tls10, &e.tls11]
        .iter()
        .any(|p| p.accepted() == Some(true))
    {
        scored.push(legacy_check(e));
    }
    let (score, checks) = total(scored);
    (category(Some(score), checks), vec![GradeCap::NoHttps])
}

fn https_working(e: &TlsEvidence) -> Scored {
    let evidence = match e.working_handshake() {
        Some(h) => format!("handshake completed: {h}"),
        None => "handshake completed".to_owned(),
    };
    none(
        "tls-https",
        CheckStatus::Pass,
        evidence,
        "Keep TLS 1.2 and 1.3 on port 443 of every address the name resolves to, IPv4 and IPv6 alike.",
    )
}

fn names(list: &[String]) -> String {
    if list.is_empty() {
        "none".to_owned()
    } else {
        list.join(", ")
    }
}

/// The certificate check and whether the certificate is bad (→ grade cap).
fn certificate_check(e: &TlsEvidence) -> (Scored, bool) {
    let Some(cert) = &e.certificate else {
        let evidence = "the handshake completed but no certificate was recorded".to_owned();
        return (
            none(
                "tls-certificate",
                CheckStatus::Error,
                evidence,
                "If this repeats, check that the server sends its certificate chain in the handshake.",
            ),
            false,
        );
    };
    // An expiry seen in the dates counts even if the verifier ran a moment earlier.
    let verdict = match (&cert.verdict, cert.days_left) {
        (CertVerdict::Trusted, Some(days)) if days < 0 => CertVerdict::Expired,
        (v, _) => v.clone(),
    };
    let leaf = match cert.leaf() {
        Some(l) => format!(
            "leaf {} issued by {}, names {} ({} {}), valid {} to {}",
            l.subject,
            l.issuer,
            names(&l.dns_names),
            if cert.name_matches == Some(true) {
                "covers"
            } else {
                "does not cover"
            },
            e.domain,
            l.not_before.format("%Y-%m-%d"),
            l.not_after.format("%Y-%m-%d"),
        ),
        None => match cert.chain.first() {
            Some(Err(why)) => format!("leaf certificate: {why}"),
            _ => "no certificate sent".to_owned(),
        },
    };
    if verdict == CertVerdict::Trusted {
        let evidence = format!("certificate trusted for {}: {leaf}", e.domain);
        return (
            none(
                "tls-certificate",
                CheckStatus::Pass,
                evidence,
                "Keep sending the full intermediate chain, and add every new host name to the certificate before you publish it.",
            ),
            false,
        );
    }
    let detail = cert
        .verifier_error
        .as_deref()
        .map_or_else(String::new, |d| format!(" ({d})"));
    let evidence = format!("certificate {verdict}{detail}: {leaf}");
    let recommendation = match verdict {
        CertVerdict::UntrustedIssuer => {
            "Serve a certificate from a publicly trusted CA, with its full intermediate chain."
        }
        CertVerdict::Expired => {
            "Renew the certificate now and automate renewal (for example with ACME)."
        }
        CertVerdict::NotYetValid => {
            "Serve a certificate that is valid now; check the issuing system's clock."
        }
        CertVerdict::NameMismatch => {
            "Serve a certificate whose subjectAltName includes this domain."
        }
        _ => "Serve a valid certificate from a publicly trusted CA.",
    };
    let scored = check(
        "tls-certificate",
        CheckStatus::Fail,
        Effect::Cap(BAD_CERTIFICATE_CEILING),
        evidence,
        recommendation,
    );
    (scored, true)
}

fn expiry_check(e: &TlsEvidence) -> Scored {
    let id = "tls-expiry";
    let renew =
        "Renew the certificate and automate renewal well before notAfter (for example with ACME).";
    let Some(days) = e.certificate.as_ref().and_then(|c| c.days_left) else {
        return none(
            id,
            CheckStatus::Error,
            "the leaf certificate's dates could not be read".to_owned(),
            "Check that the server sends a well-formed leaf certificate; reissue it if its validity dates cannot be read.",
        );
    };
    let not_after = e
        .certificate
        .as_ref()
        .and_then(|c| c.leaf())
        .map_or_else(String::new, |l| {
            format!(" (notAfter {})", l.not_after.format("%Y-%m-%d %H:%M UTC"))
        });
    if days < 0 {
        // The certificate check already takes the category to 0.
        let evidence = format!("expired {} days ago{not_after}", -days);
        return none(id, CheckStatus::Fail, evidence, renew);
    }
    let evidence = format!("{days} days left{not_after}");
    if days < EXPIRY_URGENT_DAYS {
        check(
            id,
            CheckStatus::Warn,
            Effect::Points(EXPIRY_URGENT_POINTS),
            evidence,
            renew,
        )
    } else if days < EXPIRY_SOON_DAYS {
        check(
            id,
            CheckStatus::Warn,
            Effect::Points(EXPIRY_SOON_POINTS),
            evidence,
            renew,
        )
    } else {
        none(
            id,
            CheckStatus::Pass,
            evidence,
            "Renew automatically (ACME) well before notAfter; alert at 14 days.",
        )
    }
}

fn key_check(e: &TlsEvidence) -> Scored {
    let id = "tls-key";
    let Some(leaf) = e.certificate.as_ref().and_then(|c| c.leaf()) else {
        return none(
            id,
            CheckStatus::Error,
            "the leaf certificate could not be read".to_owned(),
            "Check that the server sends a well-formed leaf certificate; reissue it if a certificate parser rejects it.",
        );
    };
    let evidence = format!(
        "leaf key {}, signed with {}",
        leaf.key, leaf.signature_algorithm
    );
    let weak = match leaf.key.kind {
        KeyKind::Rsa | KeyKind::Dsa => leaf.key.bits < MIN_RSA_BITS,
        KeyKind::Ecdsa => leaf.key.bits < MIN_EC_BITS,
        KeyKind::Ed25519 | KeyKind::Ed448 => false,
        KeyKind::Other(_) => {
            return none(
                id,
                CheckStatus::Info,
                evidence,
                "Kepler does not rate this key type and many clients reject it; ECDSA P-256 or RSA 2048+ works everywhere.",
            );
        }
    };
    if weak {
        let recommendation = "Use an ECDSA P-256 key or an RSA key of at least 2048 bits.";
        check(
            id,
            CheckStatus::Fail,
            Effect::Cap(B_BAND_CEILING),
            evidence,
            recommendation,
        )
    } else {
        none(
            id,
            CheckStatus::Pass,
            evidence,
            "Keep this strength or better at each renewal (ECDSA P-256, or RSA of 2048 bits or more), with a fresh key.",
        )
    }
}

fn tls13_check(e: &TlsEvidence) -> Scored {
    let id = "tls-1.3";
    match &e.tls13_only {
        Ok(h) => none(
            id,
            CheckStatus::Pass,
            format!("TLS 1.3 accepted: {h}"),
            "Keep TLS 1.3 enabled when you upgrade or replace the server, load balancer or CDN.",
        ),
        Err(f) if f.is_inconclusive() => none(
            id,
            CheckStatus::Error,
            format!("TLS 1.3 attempt: {f}"),
            "If this repeats, check that the server answers a TLS 1.3-only handshake promptly.",
        ),
        Err(f) => check(
            id,
            CheckStatus::Warn,
            Effect::Points(NO_TLS13_POINTS),
            format!("TLS 1.3 not accepted: {f}"),
            "Enable TLS 1.3.",
        ),
    }
}

fn tls12_check(e: &TlsEvidence) -> Scored {
    let id = "tls-1.2";
    match &e.tls12_only {
        Ok(h) => none(
            id,
            CheckStatus::Info,
            format!("TLS 1.2 accepted; preferred ECDHE+AEAD suite: {h}"),
            "TLS 1.2 serves clients without TLS 1.3; keep it limited to ECDHE with AEAD suites.",
        ),
        Err(f) if f.is_inconclusive() => none(
            id,
            CheckStatus::Error,
            format!("TLS 1.2 attempt: {f}"),
            "If this repeats, check that the server answers a TLS 1.2 handshake with ECDHE and AES-GCM or ChaCha20.",
        ),
        Err(f) => none(
            id,
            CheckStatus::Info,
            format!(
                "TLS 1.2 with ECDHE and AEAD not accepted (clients without TLS 1.3 may fail): {f}"
            ),
            "Clients without TLS 1.3 cannot connect; if they matter, enable TLS 1.2 with ECDHE and AES-GCM or ChaCha20 suites.",
        ),
    }
}

fn hello_line(p: &HelloProbe) -> String {
    match p.accepted() {
        Some(true) => format!("{} accepted: {p}", version_name(p.offered)),
        Some(false) => format!("{} refused: {p}", version_name(p.offered)),
        None => format!("{} not tested: {p}", version_name(p.offered)),
    }
}

fn legacy_check(e: &TlsEvidence) -> Scored {
    let id = "tls-legacy-protocols";
    let probes = [&e.tls10, &e.tls11];
    let evidence = probes
        .iter()
        .map(|p| hello_line(p))
        .collect::<Vec<_>>()
        .join("; ");
    if probes.iter().any(|p| p.accepted() == Some(true)) {
        let recommendation = "Disable TLS 1.0 and TLS 1.1; keep TLS 1.2 and 1.3.";
        check(
            id,
            CheckStatus::Fail,
            Effect::Cap(B_BAND_CEILING),
            evidence,
            recommendation,
        )
    } else if probes.iter().all(|p| p.accepted() == Some(false)) {
        none(
            id,
            CheckStatus::Pass,
            evidence,
            "Keep TLS 1.0 and 1.1 off; check the minimum TLS version again after any load balancer or CDN change.",
        )
    } else {
        none(
            id,
            CheckStatus::Error,
            evidence,
            "If this repeats, check that the server answers TLS 1.0 and 1.1 handshakes, with an alert if it refuses them.",
        )
    }
}

/// What a TLS 1.2 client is given.
#[derive(Debug)]
enum Tls12Given {
    /// The suite, and how it was learnt.
    Suite(u16, &'static str),
    /// The server refuses TLS 1.2: only TLS 1.3 clients connect, always with FS and AEAD.
    NoTls12,
    Unknown(String),
}

fn tls12_client_suite(e: &TlsEvidence) -> Tls12Given {
    if let Some(suite) = e.tls12_typical.accepted_suite() {
        return Tls12Given::Suite(
            suite,
            "a browser-like TLS 1.2 client offering ECDHE, RSA, GCM and CBC suites",
        );
    }
    match (&e.tls12_only, e.tls12_typical.accepted()) {
        (Ok(h), _) => Tls12Given::Suite(
            h.cipher_suite,
            "a TLS 1.2 client offering only ECDHE+AEAD suites",
        ),
        (Err(f), Some(false)) if !f.is_inconclusive() => Tls12Given::NoTls12,
        _ => Tls12Given::Unknown(format!("browser-like TLS 1.2 client: {}", e.tls12_typical)),
    }
}

/// One property a TLS 1.2 client's suite is checked for, and what to tell the owner.
struct SuiteRule {
    id: &'static str,
    property: fn(&suites::SuiteInfo) -> bool,
    lacking: &'static str,
    /// For a suite that has the property.
    keep: &'static str,
    /// For a suite that lacks it.
    fix: &'static str,
}

fn suite_property_check(rule: &SuiteRule, given: &Tls12Given) -> Scored {
    let id = rule.id;
    match given {
        Tls12Given::Suite(suite, who) => {
            let name = suites::name(*suite);
            match suites::lookup(*suite) {
                Some(info) if (rule.property)(info) => none(
                    id,
                    CheckStatus::Pass,
                    format!("{who} is given {name}"),
                    rule.keep,
                ),
                Some(_) => check(
                    id,
                    CheckStatus::Fail,
                    Effect::Cap(B_BAND_CEILING),
                    format!("{who} is given {name}: {}", rule.lacking),
                    rule.fix,
                ),
                None => none(
                    id,
                    CheckStatus::Info,
                    format!("{who} is given the unknown suite {name}"),
                    "Kepler cannot rate this suite; make sure TLS 1.2 clients get ECDHE with AES-GCM or ChaCha20-Poly1305.",
                ),
            }
        }
        Tls12Given::NoTls12 => {
            let evidence =
                "TLS 1.2 is refused; every TLS 1.3 suite has forward secrecy and AEAD".to_owned();
            none(
                id,
                CheckStatus::Pass,
                evidence,
                "Only TLS 1.3 clients connect; if older ones matter, enable TLS 1.2 with ECDHE and AEAD suites only.",
            )
        }
        Tls12Given::Unknown(why) => none(
            id,
            CheckStatus::Error,
            why.clone(),
            "If this repeats, check that the server answers a browser-like TLS 1.2 handshake promptly.",
        ),
    }
}

fn forward_secrecy_check(given: &Tls12Given) -> Scored {
    let rule = SuiteRule {
        id: "tls-forward-secrecy",
        property: |s| s.forward_secret,
        lacking: "RSA key exchange, no forward secrecy",
        keep: "Keep ECDHE suites first for TLS 1.2; do not re-enable TLS_RSA_* suites for old clients.",
        fix: "Prefer ECDHE key exchange for TLS 1.2 and disable TLS_RSA_* suites.",
    };
    suite_property_check(&rule, given)
}

fn aead_check(given: &Tls12Given) -> Scored {
    let rule = SuiteRule {
        id: "tls-aead",
        property: |s| s.aead,
        lacking: "not an AEAD suite (CBC or RC4)",
        keep: "Keep AES-GCM and ChaCha20-Poly1305 ahead of any CBC suite in the TLS 1.2 order.",
        fix: "Prefer AES-GCM or ChaCha20-Poly1305 suites for TLS 1.2.",
    };
    suite_property_check(&rule, given)
}

fn weak_suites_check(e: &TlsEvidence) -> Scored {
    let id = "tls-weak-suites";
    let p = &e.tls12_weak_only;
    match (p.accepted_suite(), p.accepted()) {
        (Some(suite), _) => none(
            id,
            CheckStatus::Info,
            format!(
                "a TLS 1.2 client offering only non-forward-secret or CBC suites is served: {}",
                suites::name(suite)
            ),
            "Disable TLS_RSA_* and CBC suites unless clients that need them matter.",
        ),
        (None, Some(false)) => none(
            id,
            CheckStatus::Info,
            format!(
                "a TLS 1.2 client offering only non-forward-secret or CBC suites is refused: {p}"
            ),
            "Keep TLS_RSA_* and CBC suites off; only clients too old for ECDHE with AEAD are turned away.",
        ),
        _ => none(
            id,
            CheckStatus::Error,
            format!("weak-suite TLS 1.2 client: {p}"),
            "If this repeats, check that the server answers a TLS 1.2 handshake offering only RSA and CBC suites, with an alert if it refuses.",
        ),
    }
}

fn alpn_check(e: &TlsEvidence) -> Scored {
    let id = "tls-alpn-h2";
    match e.working_handshake().and_then(|h| h.alpn.as_deref()) {
        Some("h2") => none(
            id,
            CheckStatus::Info,
            "HTTP/2 selected via ALPN".to_owned(),
            "Keep HTTP/2 on; the next step is HTTP/3, advertised with an Alt-Svc header.",
        ),
        Some(other) => none(
            id,
            CheckStatus::Info,
            format!("ALPN selected {other}, not h2"),
            "Enable HTTP/2.",
        ),
        None => none(
            id,
            CheckStatus::Info,
            "no ALPN protocol selected (h2 offered)".to_owned(),
            "Enable HTTP/2.",
        ),
    }
}
