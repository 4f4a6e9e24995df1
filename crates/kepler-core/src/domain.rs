//! Domain names as Kepler accepts them: normalised, then checked by syntax alone.
//!
//! Reserved names such as `.test` pass on purpose: what protects the network is
//! the private-address rule applied when a run connects, not the name.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Longest name accepted, in A-label form, without the trailing dot (RFC 1035).
pub const MAX_NAME_LEN: usize = 253;
/// Longest label accepted (RFC 1035).
pub const MAX_LABEL_LEN: usize = 63;

/// A normalised, syntactically valid hostname of at least two labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Domain(String);

/// Why a string is not a domain Kepler will score.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("the domain is empty")]
    Empty,
    #[error("an IP address is not a domain; give the hostname instead")]
    IpLiteral,
    #[error("give a bare hostname, not a URL (no scheme, port, path or query)")]
    NotAHostname,
    #[error("a domain needs at least two labels, such as example.com")]
    SingleLabel,
    #[error("the name is longer than {MAX_NAME_LEN} characters")]
    TooLong,
    #[error("label {0:?} is empty or longer than {MAX_LABEL_LEN} characters")]
    BadLabelLength(String),
    #[error(
        "label {0:?} may hold only letters, digits and hyphens, and may not start or end with a hyphen"
    )]
    BadLabel(String),
    #[error("the top-level label {0:?} may not be all digits")]
    NumericTld(String),
    #[error("the internationalised name is not valid under UTS #46: {0}")]
    Idna(String),
}

impl Domain {
    /// Normalises (trim, lower-case, drop one trailing dot, IDN to A-label) and
    /// validates `input`.
    pub fn parse(input: &str) -> Result<Domain, DomainError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(DomainError::Empty);
        }
        let bracketless = trimmed.trim_start_matches('[').trim_end_matches(']');
        // An address literal has a colon or only digits and dots: only such
        // text is worth trying as one (this runs on every request).
        let could_be_address = bracketless.contains(':')
            || bracketless.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        if could_be_address && bracketless.parse::<IpAddr>().is_ok() {
            return Err(DomainError::IpLiteral);
        }
        if trimmed.chars().any(|c| {
            matches!(c, '/' | ':' | '?' | '#' | '@' | '[' | ']' | '\\') || c.is_whitespace()
        }) {
            return Err(DomainError::NotAHostname);
        }
        let without_dot = trimmed.strip_suffix('.').unwrap_or(trimmed);
        let ascii = if without_dot.is_ascii() {
            without_dot.to_ascii_lowercase()
        } else {
            idna::domain_to_ascii_strict(without_dot)
                .map_err(|e| DomainError::Idna(e.to_string()))?
        };
        Self::validate_ascii(&ascii)?;
        Ok(Domain(ascii))
    }

    fn validate_ascii(name: &str) -> Result<(), DomainError> {
        if name.is_empty() {
            return Err(DomainError::Empty);
        }
        if name.len() > MAX_NAME_LEN {
            return Err(DomainError::TooLong);
        }
        let Some((_, tld)) = name.rsplit_once('.') else {
            return Err(DomainError::SingleLabel);
        };
        for label in name.split('.') {
            if label.is_empty() || label.len() > MAX_LABEL_LEN {
                return Err(DomainError::BadLabelLength(label.to_owned()));
            }
            let ldh = label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !ldh || label.starts_with('-') || label.ends_with('-') {
                return Err(DomainError::BadLabel(label.to_owned()));
            }
        }
        if tld.bytes().all(|b| b.is_ascii_digit()) {
            // Also what keeps dotted-quad look-alikes such as 1.2.3.4 out.
            return Err(DomainError::NumericTld(tld.to_owned()));
        }
        Ok(())
    }

    /// The A-label form, lower-case, without a trailing dot.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The labels, left to right.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Domain {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Domain::parse(s)
    }
}

impl<'de> Deserialize<'de> for Domain {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Domain::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str, expected: &str) {
        assert_eq!(
            Domain::parse(input).map(|d| d.0),
            Ok(expected.to_owned()),
            "{input:?}"
        );
    }

    fn bad(input: &str) -> DomainError {
        match Domain::parse(input) {
            Ok(d) => panic!("{input:?} was accepted as {d}"),
            Err(e) => e,
        }
    }

    #[test]
    fn normalises() {
        ok("Stripe.COM", "stripe.com");
        ok("  example.org.  ", "example.org");
        ok("strong.test", "strong.test");
        ok("xn--bcher-kva.example", "xn--bcher-kva.example");
        ok("Bücher.example", "xn--bcher-kva.example");
        ok("a-b.c0.io", "a-b.c0.io");
        ok("123.example", "123.example");
    }

    #[test]
    fn rejects() {
        assert_eq!(bad(""), DomainError::Empty);
        assert_eq!(bad("   "), DomainError::Empty);
        assert_eq!(bad("1.2.3.4"), DomainError::IpLiteral);
        assert_eq!(bad("::1"), DomainError::IpLiteral);
        assert_eq!(bad("[2001:db8::1]"), DomainError::IpLiteral);
        assert_eq!(bad("https://stripe.com"), DomainError::NotAHostname);
        assert_eq!(bad("stripe.com/login"), DomainError::NotAHostname);
        assert_eq!(bad("stripe.com:443"), DomainError::NotAHostname);
        assert_eq!(bad("user@stripe.com"), DomainError::NotAHostname);
        assert_eq!(bad("a b.com"), DomainError::NotAHostname);
        assert_eq!(bad("localhost"), DomainError::SingleLabel);
        assert_eq!(bad("com."), DomainError::SingleLabel);
        assert!(matches!(bad("a..com"), DomainError::BadLabelLength(_)));
        assert!(matches!(bad(".com"), DomainError::BadLabelLength(_)));
        assert!(matches!(bad("-a.com"), DomainError::BadLabel(_)));
        assert!(matches!(bad("a-.com"), DomainError::BadLabel(_)));
        assert!(matches!(bad("a_b.com"), DomainError::BadLabel(_)));
        assert!(matches!(bad("example.123"), DomainError::NumericTld(_)));
        let long_label = format!("{}.com", "a".repeat(64));
        assert!(matches!(bad(&long_label), DomainError::BadLabelLength(_)));
        let long_name = format!("{}.com", vec!["a".repeat(60); 5].join("."));
        assert_eq!(bad(&long_name), DomainError::TooLong);
    }

    #[test]
    fn idn_that_fails_uts46_is_rejected() {
        assert!(matches!(bad("ex\u{200d}ample.com"), DomainError::Idna(_)));
        assert!(matches!(bad("exa\u{FFFD}mple.com"), DomainError::Idna(_)));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]
        #[test]
        fn never_panics_and_output_is_a_fixed_point(input in "\\PC{0,300}") {
            if let Ok(domain) = Domain::parse(&input) {
                proptest::prop_assert!(domain.as_str().len() <= MAX_NAME_LEN);
                proptest::prop_assert!(domain.labels().count() >= 2);
                proptest::prop_assert_eq!(Domain::parse(domain.as_str()), Ok(domain.clone()));
            }
        }

        #[test]
        fn hostname_shaped_inputs_round_trip(labels in proptest::collection::vec("[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", 1..5), tld in "[a-z]{2,10}") {
            let name = format!("{}.{}", labels.join("."), tld);
            let upper = name.to_uppercase();
            proptest::prop_assert_eq!(Domain::parse(&upper).map(|d| d.0), Ok(name));
        }

        #[test]
        fn every_address_is_refused_as_one(address in proptest::prelude::any::<IpAddr>()) {
            proptest::prop_assert_eq!(Domain::parse(&address.to_string()), Err(DomainError::IpLiteral));
            proptest::prop_assert_eq!(Domain::parse(&format!("[{address}]")), Err(DomainError::IpLiteral));
        }
    }
}
