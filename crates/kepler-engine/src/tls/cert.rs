//! Reading certificates: validity dates, key, signature algorithm and names
//! (x509-parser), and whether the leaf's names cover the domain.

use chrono::{DateTime, Utc};
use x509_parser::oid_registry::{self, Oid};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
use x509_parser::public_key::PublicKey;

use super::evidence::{CertSummary, CertVerdict, CertificateEvidence, KeyInfo, KeyKind};

const SECONDS_PER_DAY: i64 = 86_400;

/// Describes the chain as sent (leaf first) and the verifier's verdict on it.
pub fn describe(
    chain: &[Vec<u8>],
    verdict: CertVerdict,
    verifier_error: Option<String>,
    domain: &str,
    now: DateTime<Utc>,
) -> CertificateEvidence {
    let chain: Vec<Result<CertSummary, String>> = chain.iter().map(|der| summarize(der)).collect();
    let leaf = chain.first().and_then(|c| c.as_ref().ok());
    CertificateEvidence {
        verdict,
        verifier_error,
        name_matches: leaf.map(|l| l.dns_names.iter().any(|n| name_matches(n, domain))),
        days_left: leaf
            .map(|l| (l.not_after.timestamp() - now.timestamp()).div_euclid(SECONDS_PER_DAY)),
        chain,
    }
}

fn time(ts: i64) -> Result<DateTime<Utc>, String> {
    DateTime::from_timestamp(ts, 0).ok_or_else(|| format!("validity time {ts} is out of range"))
}

/// Parses one DER certificate into what the evidence keeps.
pub fn summarize(der: &[u8]) -> Result<CertSummary, String> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| format!("unparseable certificate: {e}"))?;
    let validity = cert.validity();
    let dns_names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(name) => Some((*name).to_owned()),
                _ => None,
            })
            .collect(),
        Ok(None) => Vec::new(),
        Err(e) => return Err(format!("unreadable subjectAltName: {e}")),
    };
    Ok(CertSummary {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: time(validity.not_before.timestamp())?,
        not_after: time(validity.not_after.timestamp())?,
        key: key_info(&cert),
        signature_algorithm: oid_name(&cert.signature_algorithm.algorithm),
        dns_names,
    })
}

fn oid_name(oid: &Oid<'_>) -> String {
    x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry())
        .map_or_else(|_| oid.to_id_string(), str::to_owned)
}

/// Bits of a big-endian unsigned integer, leading zeros ignored.
fn integer_bits(bytes: &[u8]) -> u32 {
    let significant: &[u8] = match bytes.iter().position(|b| *b != 0) {
        Some(first) => &bytes[first..],
        None => return 0,
    };
    let len = u32::try_from(significant.len()).unwrap_or(u32::MAX / 8);
    (len - 1) * 8 + (8 - significant[0].leading_zeros())
}

fn key_info(cert: &X509Certificate<'_>) -> KeyInfo {
    let spki = cert.public_key();
    let algorithm = &spki.algorithm.algorithm;
    if *algorithm == oid_registry::OID_SIG_ED25519 {
        return KeyInfo {
            kind: KeyKind::Ed25519,
            bits: 256,
        };
    }
    if *algorithm == oid_registry::OID_SIG_ED448 {
        return KeyInfo {
            kind: KeyKind::Ed448,
            bits: 456,
        };
    }
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => KeyInfo {
            kind: KeyKind::Rsa,
            bits: integer_bits(rsa.modulus),
        },
        Ok(key @ PublicKey::EC(_)) => KeyInfo {
            kind: KeyKind::Ecdsa,
            bits: u32::try_from(key.key_size()).unwrap_or(0),
        },
        Ok(key @ PublicKey::DSA(_)) => KeyInfo {
            kind: KeyKind::Dsa,
            bits: u32::try_from(key.key_size()).unwrap_or(0),
        },
        _ => KeyInfo {
            kind: KeyKind::Other(oid_name(algorithm)),
            bits: 0,
        },
    }
}

/// RFC 6125 §6.4 matching of one presented DNS name against the domain:
/// case-insensitive, a wildcard only as the whole left-most label and covering
/// exactly one label.
pub fn name_matches(presented: &str, domain: &str) -> bool {
    let presented = presented.trim_end_matches('.').to_ascii_lowercase();
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    match presented.strip_prefix("*.") {
        Some(parent) => {
            // "*.test" would cover a whole top-level domain: never honoured.
            parent.contains('.')
                && domain
                    .split_once('.')
                    .is_some_and(|(first, rest)| !first.is_empty() && rest == parent)
        }
        None => !presented.contains('*') && presented == domain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_matching() {
        let check = |presented: &str, domain: &str, expected: bool| {
            assert_eq!(
                name_matches(presented, domain),
                expected,
                "{presented} vs {domain}"
            );
        };
        check("strong.test", "strong.test", true);
        check("STRONG.test", "strong.test", true);
        check("strong.test.", "strong.test", true);
        check("other.test", "strong.test", false);
        check("*.strong.test", "www.strong.test", true);
        check("*.strong.test", "strong.test", false);
        check("*.strong.test", "a.b.strong.test", false);
        check("*.test", "strong.test", false);
        check("w*.strong.test", "www.strong.test", false);
        check("www.*.test", "www.strong.test", false);
    }

    #[test]
    fn integer_bits_ignores_leading_zeros() {
        assert_eq!(integer_bits(&[]), 0);
        assert_eq!(integer_bits(&[0, 0]), 0);
        assert_eq!(integer_bits(&[0x01]), 1);
        assert_eq!(integer_bits(&[0x00, 0x80, 0x00]), 16);
        let mut modulus = vec![0x00, 0xc5];
        modulus.extend_from_slice(&[0xff; 255]);
        assert_eq!(integer_bits(&modulus), 2048);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(summarize(b"not a certificate").is_err());
        assert!(summarize(&[]).is_err());
    }
}
