//! The fixed table of fixture domains and the loopback addresses they live on.
//!
//! Addresses are fixed (not random) so that hosts files, docs and tests agree;
//! ports are what differ between testnets running side by side.

use std::net::{Ipv4Addr, Ipv6Addr};

/// `strong.test`, `www.strong.test` and `mta-sts.strong.test`.
pub const STRONG: Ipv4Addr = Ipv4Addr::new(127, 0, 10, 10);
/// `strong.test`'s IPv6 address (its web servers listen there too).
pub const STRONG_V6: Ipv6Addr = Ipv6Addr::LOCALHOST;
/// `mail.strong.test` (an address only: no SMTP is served).
pub const STRONG_MAIL: Ipv4Addr = Ipv4Addr::new(127, 0, 10, 15);
/// `mixed.test` and `www.mixed.test`.
pub const MIXED: Ipv4Addr = Ipv4Addr::new(127, 0, 10, 20);
/// `mail.mixed.test` (an address only).
pub const MIXED_MAIL: Ipv4Addr = Ipv4Addr::new(127, 0, 10, 25);
/// `weak.test`.
pub const WEAK: Ipv4Addr = Ipv4Addr::new(127, 0, 10, 30);
/// `expired.test`.
pub const EXPIRED: Ipv4Addr = Ipv4Addr::new(127, 0, 10, 40);
/// `slow.test`.
pub const SLOW: Ipv4Addr = Ipv4Addr::new(127, 0, 10, 60);
/// `down.test`: nothing ever listens here.
pub const DOWN: Ipv4Addr = Ipv4Addr::new(127, 0, 10, 70);
/// `cdn.test`: the external origin `strong.test` loads a script from (with SRI).
pub const CDN: Ipv4Addr = Ipv4Addr::new(127, 0, 10, 80);

/// The zone under which every name answers like `strong.test` (for load tests):
/// `NAME.load.test` has strong.test's A/AAAA/MX/TXT/CAA records, `_dmarc`,
/// `_mta-sts`, `mta-sts`, `www` and `_smtp._tls` names, strong.test's web site
/// (same addresses) with a certificate for its own name, and an RDAP object.
/// Unlike strong.test it is not DNSSEC-signed (`load.test.` is an insecure
/// delegation) and not a zone apex of its own.
pub const LOAD_ZONE: &str = "load.test";

/// Whether `name` (any case, trailing dot or not) is a load-test name: one or
/// more labels under [`LOAD_ZONE`].
pub fn is_load_name(name: &str) -> bool {
    load_domain(name).is_some()
}

/// The load-test domain `name` is in or under, e.g. `d7.load.test` for
/// `mta-sts.d7.load.test`: the label directly under [`LOAD_ZONE`] and the zone.
pub fn load_domain(name: &str) -> Option<String> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let rest = name.strip_suffix(LOAD_ZONE)?.strip_suffix('.')?;
    let label = rest.rsplit('.').next().filter(|l| !l.is_empty())?;
    Some(format!("{label}.{LOAD_ZONE}"))
}

/// The `i`-th load-test domain: `d{i}.load.test`.
pub fn load_name(i: usize) -> String {
    format!("d{i}.{LOAD_ZONE}")
}

/// The DNS server's address with random ports.
pub const DNS_DEFAULT: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// The DNS server's address with `--standard-ports` (port 53). Not 127.0.0.53,
/// which systemd-resolved often holds.
pub const DNS_STANDARD: Ipv4Addr = Ipv4Addr::new(127, 0, 10, 53);
/// The RDAP server's address (always a random port; the `[engine]` table names it).
pub const RDAP: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// One apex fixture domain, like a customer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fixture {
    pub domain: &'static str,
    /// Where its web servers are (or would be); `None` for a domain without A records.
    pub address: Option<Ipv4Addr>,
    /// One line on what it is meant to look like.
    pub posture: &'static str,
}

/// Every apex fixture domain. Any other name under `test.` is NXDOMAIN.
pub const FIXTURES: [Fixture; 8] = [
    Fixture {
        domain: "strong.test",
        address: Some(STRONG),
        posture: "everything right: DNSSEC, IPv6, CAA, HTTPS-only with every header, SPF -all, DMARC reject, MTA-STS enforce, TLS-RPT, security.txt",
    },
    Fixture {
        domain: "mixed.test",
        address: Some(MIXED),
        posture: "valid certificate but TLS 1.0 accepted, no CSP or Referrer-Policy, SPF ~all, DMARC p=none, no CAA, unsigned, IPv4 only",
    },
    Fixture {
        domain: "weak.test",
        address: Some(WEAK),
        posture: "HTTP only, no security headers, no SPF, no DMARC, no MX",
    },
    Fixture {
        domain: "expired.test",
        address: Some(EXPIRED),
        posture: "HTTPS with a certificate that expired 30 days ago, otherwise decent",
    },
    Fixture {
        domain: "parked.test",
        address: None,
        posture: "no web or mail service: null MX, SPF -all, DMARC p=reject",
    },
    Fixture {
        domain: "slow.test",
        address: Some(SLOW),
        posture: "resolves at once; HTTP and HTTPS accept connections and send nothing for 30 s",
    },
    Fixture {
        domain: "down.test",
        address: Some(DOWN),
        posture: "resolves; nothing listens",
    },
    Fixture {
        domain: "cdn.test",
        address: Some(CDN),
        posture: "a third-party script host (HTTPS, CORS) used by strong.test's page",
    },
];

/// The fixture with this apex name (lower case, no trailing dot).
pub fn fixture(domain: &str) -> Option<&'static Fixture> {
    FIXTURES.iter().find(|f| f.domain == domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_names_are_the_labels_under_load_test() {
        assert_eq!(load_domain("d7.load.test").as_deref(), Some("d7.load.test"));
        assert_eq!(
            load_domain("MTA-STS.D7.load.test.").as_deref(),
            Some("d7.load.test")
        );
        assert_eq!(load_domain("load.test"), None);
        assert_eq!(load_domain("xload.test"), None);
        assert_eq!(load_domain(".load.test"), None);
        assert_eq!(load_domain("strong.test"), None);
        assert_eq!(load_name(3), "d3.load.test");
        assert!(is_load_name(&load_name(999)));
    }
}
