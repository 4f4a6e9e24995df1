//! The fixture zones, written as zone files so they read like the real thing.
//!
//! DNSSEC records (DNSKEY, DS, NSEC, RRSIG) are not written here: the signer
//! adds them at start with fresh keys.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::fixtures::{
    CDN, DOWN, EXPIRED, MIXED, MIXED_MAIL, SLOW, STRONG, STRONG_MAIL, STRONG_V6, WEAK,
};

/// One zone's source and whether it is signed.
#[derive(Debug, Clone)]
pub struct ZoneSource {
    pub origin: &'static str,
    pub text: String,
    pub signed: bool,
}

/// Unsigned child zones of `test.` (each an insecure delegation): label and origin.
const UNSIGNED_CHILDREN: [(&str, &str); 8] = [
    ("mixed", "mixed.test."),
    ("weak", "weak.test."),
    ("expired", "expired.test."),
    ("parked", "parked.test."),
    ("slow", "slow.test."),
    ("down", "down.test."),
    ("cdn", "cdn.test."),
    ("load", "load.test."),
];

/// The label in `load.test.` whose names every load-test domain's questions
/// are answered from (`_dmarc.d7.load.test` from `_dmarc._template.load.test`).
pub const LOAD_TEMPLATE: &str = "_template";

fn soa(primary: &str, contact: &str) -> String {
    format!("@ IN SOA {primary} {contact} 2026010101 3600 600 1209600 300\n")
}

/// All zones, parents before children: `.`, `test.`, then the fixtures.
/// `dns` is where the name servers' A records point; `ipv6` adds the AAAA
/// records (strong.test's `::1`) only where `::1` exists.
pub fn zones(dns: Ipv4Addr, ipv6: bool) -> Vec<ZoneSource> {
    let v6 = |line: String| if ipv6 { line } else { String::new() };
    let mut out = Vec::new();

    let mut root = String::from("$TTL 300\n");
    root += &soa("ns1.test.", "hostmaster.test.");
    root += "@ IN NS ns1.test.\n@ IN NS ns2.test.\n";
    root += "test. IN NS ns1.test.\ntest. IN NS ns2.test.\n";
    out.push(ZoneSource {
        origin: ".",
        text: root,
        signed: true,
    });

    let mut test = String::from("$TTL 300\n");
    test += &soa("ns1.test.", "hostmaster.test.");
    test += "@ IN NS ns1.test.\n@ IN NS ns2.test.\n";
    let _ = writeln!(test, "ns1 IN A {dns}\nns2 IN A {dns}");
    // The shared name servers have IPv6, as most providers' do.
    test += &v6(format!(
        "ns1 IN AAAA {STRONG_V6}\nns2 IN AAAA {STRONG_V6}\n"
    ));
    test += "strong IN NS ns1.strong.test.\nstrong IN NS ns2.strong.test.\n";
    for (child, _) in UNSIGNED_CHILDREN {
        let _ = writeln!(test, "{child} IN NS ns1.test.\n{child} IN NS ns2.test.");
    }
    out.push(ZoneSource {
        origin: "test.",
        text: test,
        signed: true,
    });

    let mut strong = String::from("$TTL 300\n");
    strong += &soa("ns1.strong.test.", "hostmaster.strong.test.");
    strong += "@ IN NS ns1.strong.test.\n@ IN NS ns2.strong.test.\n";
    let _ = writeln!(strong, "@ IN A {STRONG}");
    strong += &v6(format!("@ IN AAAA {STRONG_V6}\n"));
    let _ = writeln!(strong, "www IN A {STRONG}");
    strong += &v6(format!("www IN AAAA {STRONG_V6}\n"));
    let _ = writeln!(strong, "ns1 IN A {dns}\nns2 IN A {dns}");
    strong += &v6(format!(
        "ns1 IN AAAA {STRONG_V6}\nns2 IN AAAA {STRONG_V6}\n"
    ));
    strong += "@ IN CAA 0 issue \"testnet-ca.test\"\n";
    strong += "@ IN CAA 0 iodef \"mailto:security@strong.test\"\n";
    strong += "@ IN MX 10 mail.strong.test.\n";
    let _ = writeln!(strong, "mail IN A {STRONG_MAIL}");
    strong += "@ IN TXT \"v=spf1 mx include:_spf.strong.test -all\"\n";
    strong += "_spf IN TXT \"v=spf1 ip4:192.0.2.0/24 -all\"\n";
    strong +=
        "_dmarc IN TXT \"v=DMARC1; p=reject; sp=reject; pct=100; rua=mailto:dmarc@strong.test\"\n";
    strong += "_mta-sts IN TXT \"v=STSv1; id=20261101T000000\"\n";
    let _ = writeln!(strong, "mta-sts IN A {STRONG}");
    strong += &v6(format!("mta-sts IN AAAA {STRONG_V6}\n"));
    strong += "_smtp._tls IN TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@strong.test\"\n";
    out.push(ZoneSource {
        origin: "strong.test.",
        text: strong,
        signed: true,
    });

    for (child, origin) in UNSIGNED_CHILDREN {
        let mut zone = String::from("$TTL 300\n");
        zone += &soa("ns1.test.", &format!("hostmaster.{child}.test."));
        zone += "@ IN NS ns1.test.\n@ IN NS ns2.test.\n";
        zone += &match child {
            "mixed" => format!(
                "@ IN A {MIXED}\n\
                 www IN A {MIXED}\n\
                 @ IN MX 10 mail.mixed.test.\n\
                 mail IN A {MIXED_MAIL}\n\
                 @ IN TXT \"v=spf1 include:_spf.mixed.test ~all\"\n\
                 _spf IN TXT \"v=spf1 ip4:192.0.2.0/24 ~all\"\n\
                 _dmarc IN TXT \"v=DMARC1; p=none; rua=mailto:dmarc@mixed.test\"\n\
                 _mta-sts IN TXT \"v=STSv1; id=20261101T000000\"\n\
                 mta-sts IN A {MIXED}\n\
                 _smtp._tls IN TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@mixed.test\"\n"
            ),
            "weak" => format!("@ IN A {WEAK}\nwww IN A {WEAK}\n"),
            "expired" => format!(
                "@ IN A {EXPIRED}\n\
                 www IN A {EXPIRED}\n\
                 @ IN TXT \"v=spf1 -all\"\n\
                 _dmarc IN TXT \"v=DMARC1; p=reject; sp=reject\"\n"
            ),
            "parked" => "@ IN MX 0 .\n\
                 @ IN TXT \"v=spf1 -all\"\n\
                 _dmarc IN TXT \"v=DMARC1; p=reject; sp=reject; adkim=s; aspf=s\"\n"
                .to_string(),
            "slow" => format!("@ IN A {SLOW}\n"),
            "down" => format!("@ IN A {DOWN}\n"),
            "cdn" => format!("@ IN A {CDN}\n"),
            "load" => load_template(ipv6),
            _ => String::new(),
        };
        out.push(ZoneSource {
            origin,
            text: zone,
            signed: false,
        });
    }
    out
}

/// `_template.load.test.` and the names under it: strong.test's records (on
/// strong.test's addresses, whose web site serves load-test names too).
fn load_template(ipv6: bool) -> String {
    let t = LOAD_TEMPLATE;
    let mut zone = String::new();
    for host in [t.to_string(), format!("www.{t}"), format!("mta-sts.{t}")] {
        let _ = writeln!(zone, "{host} IN A {STRONG}");
        if ipv6 {
            let _ = writeln!(zone, "{host} IN AAAA {STRONG_V6}");
        }
    }
    let _ = writeln!(zone, "{t} IN CAA 0 issue \"testnet-ca.test\"");
    let _ = writeln!(zone, "{t} IN CAA 0 iodef \"mailto:security@strong.test\"");
    let _ = writeln!(zone, "{t} IN MX 10 mail.strong.test.");
    let _ = writeln!(
        zone,
        "{t} IN TXT \"v=spf1 mx include:_spf.strong.test -all\""
    );
    let _ = writeln!(
        zone,
        "_dmarc.{t} IN TXT \"v=DMARC1; p=reject; sp=reject; pct=100\""
    );
    let _ = writeln!(zone, "_mta-sts.{t} IN TXT \"v=STSv1; id=20261101T000000\"");
    let _ = writeln!(
        zone,
        "_smtp._tls.{t} IN TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@strong.test\""
    );
    zone
}
