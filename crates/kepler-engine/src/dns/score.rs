//! The `dns` category model. Every number here is mirrored in docs/scoring/dns.md.

use kepler_core::{Category, CategoryId, Check, CheckStatus};

use super::DnsEvidence;
use super::caa::{self, CaaProperty};
use crate::model::{check, deduction_category, error, info, pass};
use crate::net::{DnssecStatus, LookupError};

/// Points of each finding (deductions from 100).
pub mod points {
    crate::point_table! {
        /// DNSSEC: the zone is not signed (or its chain is broken at a delegation without DS).
        DNSSEC_INSECURE = -30;
        /// DNSSEC: signed but does not validate; validating resolvers refuse the name.
        DNSSEC_BOGUS = -60;
        /// The web name has IPv4 but no IPv6 address.
        IPV6_WEB_MISSING = -15;
        /// Only one name server has an IPv6 address.
        IPV6_NS_ONE = -5;
        /// No name server has an IPv6 address.
        IPV6_NS_NONE = -10;
        /// A single name server: no redundancy (RFC 1034 §4.1 asks for two).
        NS_SINGLE = -15;
        /// No NS records at or above the domain.
        NS_MISSING = -25;
        /// No CAA record: any CA may issue certificates for the name.
        CAA_MISSING = -10;
        /// CAA present but unreadable or without an `issue`/`issuewild` property.
        CAA_MALFORMED = -5;
        /// No SOA record for the zone.
        SOA_MISSING = -10;
    }
}

/// Scores the evidence of the DNS area.
pub fn score(e: &DnsEvidence) -> Category {
    let checks = vec![
        addresses(e),
        dnssec(e),
        ipv6_web(e),
        ipv6_nameservers(e),
        ns_count(e),
        caa_check(e),
        soa(e),
    ];
    deduction_category(CategoryId::Dns, checks)
}

fn list(items: &[String]) -> String {
    items.join(", ")
}

fn addresses(e: &DnsEvidence) -> Check {
    let all = e.addresses.addresses();
    if all.is_empty() {
        info(
            "addresses",
            format!("{} has no A or AAAA record", e.domain),
            "Nothing is served at this name; add A and AAAA records if it should host a site, or keep it so while it is parked.",
        )
    } else {
        let shown: Vec<String> = all.iter().map(ToString::to_string).collect();
        info(
            "addresses",
            format!("{} resolves to {}", e.domain, list(&shown)),
            "These are the servers visitors reach; remove addresses you no longer run, since a stale one can be taken over.",
        )
    }
}

fn dnssec(e: &DnsEvidence) -> Check {
    let basis = list(&e.dnssec_basis);
    match e.dnssec {
        DnssecStatus::Secure => pass(
            "dnssec",
            format!("secure: {basis} validated from the trust anchor"),
            "Keep signatures fresh (automatic re-signing) and roll keys with the registrar's DS record in step.",
        ),
        DnssecStatus::Insecure => check(
            "dnssec",
            CheckStatus::Fail,
            points::DNSSEC_INSECURE,
            format!("insecure: {basis} is not signed (no chain of trust from the root)"),
            "Sign the zone with DNSSEC and publish its DS record at the registrar.",
        ),
        DnssecStatus::Bogus => check(
            "dnssec",
            CheckStatus::Fail,
            points::DNSSEC_BOGUS,
            format!(
                "bogus: {basis} is signed but does not validate; validating resolvers treat the name as unresolvable"
            ),
            "Repair the signatures or the DS record at the parent (expired RRSIG, wrong DS digest, or a key rollover gone wrong).",
        ),
        DnssecStatus::Indeterminate => error(
            "dnssec",
            format!("the validating resolver could not determine the status of {basis}"),
            "If this repeats, check that every name server answers DNSKEY and DS queries over UDP and TCP.",
        ),
    }
}

fn ipv6_web(e: &DnsEvidence) -> Check {
    let has = |r: &Result<Vec<std::net::IpAddr>, LookupError>| matches!(r, Ok(v) if !v.is_empty());
    let v4 = has(&e.addresses.v4);
    let v6 = has(&e.addresses.v6);
    match (v4, v6, &e.addresses.v6) {
        (_, true, _) => pass(
            "ipv6-web",
            format!("{} has an AAAA record", e.domain),
            "Keep the AAAA record in step with the A records when you move hosts, and serve the same site on both.",
        ),
        (_, false, Err(err @ (LookupError::Timeout | LookupError::Failed(_)))) => error(
            "ipv6-web",
            format!("the AAAA look-up failed: {err}"),
            "If this repeats, check that your name servers answer AAAA queries (an empty answer, not a timeout or SERVFAIL).",
        ),
        (true, false, _) => check(
            "ipv6-web",
            CheckStatus::Fail,
            points::IPV6_WEB_MISSING,
            format!("{} has IPv4 addresses but no AAAA record", e.domain),
            "Publish an AAAA record so IPv6-only clients can reach the site.",
        ),
        (false, false, _) => info(
            "ipv6-web",
            format!("{} has no address records: nothing is served", e.domain),
            "IPv6 does not apply while nothing is served; publish an AAAA record with any A record you add later.",
        ),
    }
}

fn ipv6_nameservers(e: &DnsEvidence) -> Check {
    let ns = match &e.ns {
        Ok(ns) => ns,
        Err(err) if err.is_void() => {
            return info(
                "ipv6-nameservers",
                "no name servers found (see ns-count)",
                "Name servers' IPv6 cannot be judged without a delegation; fix ns-count first.",
            );
        }
        Err(err) => {
            return error(
                "ipv6-nameservers",
                format!("the NS look-up failed: {err}"),
                "If this repeats, check that the parent zone delegates the domain and its name servers answer NS queries.",
            );
        }
    };
    let with_v6: Vec<String> = e
        .ns_ipv6
        .iter()
        .filter(|(_, r)| matches!(r, Ok(v) if !v.is_empty()))
        .map(|(n, _)| n.clone())
        .collect();
    let failed = e
        .ns_ipv6
        .iter()
        .any(|(_, r)| matches!(r, Err(LookupError::Timeout | LookupError::Failed(_))));
    let evidence = format!(
        "{} of {} name servers of {} have an AAAA record{}",
        with_v6.len(),
        e.ns_ipv6.len(),
        ns.zone,
        if with_v6.is_empty() {
            String::new()
        } else {
            format!(": {}", list(&with_v6))
        }
    );
    match with_v6.len() {
        n if n >= 2 => pass(
            "ipv6-nameservers",
            evidence,
            "Keep at least two name servers with IPv6 addresses; check again whenever you change DNS provider.",
        ),
        _ if failed => error(
            "ipv6-nameservers",
            format!("{evidence}; some AAAA look-ups failed"),
            "If this repeats, check that the zone holding your name servers' host names answers AAAA queries.",
        ),
        1 => check(
            "ipv6-nameservers",
            CheckStatus::Warn,
            points::IPV6_NS_ONE,
            evidence,
            "Give at least two name servers an IPv6 address.",
        ),
        _ => check(
            "ipv6-nameservers",
            CheckStatus::Fail,
            points::IPV6_NS_NONE,
            evidence,
            "Use name servers reachable over IPv6 (at least two with AAAA records).",
        ),
    }
}

fn ns_count(e: &DnsEvidence) -> Check {
    match &e.ns {
        Ok(ns) if ns.names.len() >= 2 => pass(
            "ns-count",
            format!(
                "{} name servers for {}: {}",
                ns.names.len(),
                ns.zone,
                list(&ns.names)
            ),
            "Keep at least two name servers on different networks, serving the same zone (same SOA serial).",
        ),
        Ok(ns) => check(
            "ns-count",
            CheckStatus::Fail,
            points::NS_SINGLE,
            format!("a single name server for {}: {}", ns.zone, list(&ns.names)),
            "Delegate the zone to at least two name servers, ideally on different networks.",
        ),
        Err(err) if err.is_void() => check(
            "ns-count",
            CheckStatus::Fail,
            points::NS_MISSING,
            format!("no NS records at or above {}", e.domain),
            "Delegate the domain to at least two name servers.",
        ),
        Err(err) => error(
            "ns-count",
            format!("the NS look-up failed: {err}"),
            "If this repeats, check that the parent zone delegates the domain and its name servers answer NS queries.",
        ),
    }
}

fn caa_check(e: &DnsEvidence) -> Check {
    let (owner, records) = match &e.caa {
        Ok(found) => found,
        Err(err) if err.is_void() => {
            return check(
                "caa",
                CheckStatus::Fail,
                points::CAA_MISSING,
                format!(
                    "no CAA record at {} or its parents: any CA may issue certificates for it",
                    e.domain
                ),
                "Publish CAA records naming the CAs you use, e.g. `0 issue \"letsencrypt.org\"`, and an iodef contact.",
            );
        }
        Err(err) => {
            return error(
                "caa",
                format!("the CAA look-up failed: {err}"),
                "If this repeats, check that your name servers answer CAA queries; some old servers fail on record types they do not know.",
            );
        }
    };
    let shown: Vec<String> = records
        .iter()
        .map(|r| format!("{} {} \"{}\"", u8::from(r.critical) * 128, r.tag, r.value))
        .collect();
    let parsed: Vec<Result<CaaProperty, String>> = records.iter().map(caa::parse).collect();
    let problems: Vec<&String> = parsed.iter().filter_map(|r| r.as_ref().err()).collect();
    let issues = parsed
        .iter()
        .any(|r| matches!(r, Ok(CaaProperty::Issue(_) | CaaProperty::IssueWild(_))));
    let evidence = format!("CAA at {owner}: {}", shown.join("; "));
    if !problems.is_empty() {
        let why: Vec<String> = problems.into_iter().cloned().collect();
        check(
            "caa",
            CheckStatus::Warn,
            points::CAA_MALFORMED,
            format!("{evidence} — malformed: {}", why.join("; ")),
            "Fix the CAA records so CAs can read them (RFC 8659 §4).",
        )
    } else if !issues {
        check(
            "caa",
            CheckStatus::Warn,
            points::CAA_MALFORMED,
            format!("{evidence} — no issue or issuewild property, so issuance is not restricted"),
            "Add an `issue` record naming the CA you use.",
        )
    } else {
        pass(
            "caa",
            evidence,
            "Update the CAA records before you switch or add a certificate authority, or its issuance will be refused.",
        )
    }
}

fn soa(e: &DnsEvidence) -> Check {
    match &e.soa {
        Ok(s) => pass(
            "soa",
            format!(
                "SOA of {}: primary {}, contact {}, serial {}, refresh {}, retry {}, expire {}, negative TTL {}",
                s.zone, s.mname, s.rname, s.serial, s.refresh, s.retry, s.expire, s.minimum
            ),
            "Increase the SOA serial with every change so secondary servers pick it up, and keep the contact mailbox read.",
        ),
        Err(err) if err.is_void() => check(
            "soa",
            CheckStatus::Fail,
            points::SOA_MISSING,
            format!("no SOA record at or above {}", e.domain),
            "Every zone needs an SOA record; check the zone file at your DNS provider.",
        ),
        Err(err) => error(
            "soa",
            format!("the SOA look-up failed: {err}"),
            "If this repeats, check that your name servers answer SOA queries for the zone.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::dns::ZoneNs;
    use crate::model::assert_every_check_recommends;
    use crate::net::{AddressLookup, CaaRecord, SoaRecord};

    fn ips(list: &[&str]) -> Result<Vec<IpAddr>, LookupError> {
        Ok(list
            .iter()
            .map(|s| s.parse().expect("test address"))
            .collect())
    }

    fn strong() -> DnsEvidence {
        DnsEvidence {
            domain: "strong.test".into(),
            addresses: AddressLookup {
                v4: ips(&["192.0.2.1"]),
                v6: ips(&["2001:db8::1"]),
            },
            ns: Ok(ZoneNs {
                zone: "strong.test".into(),
                names: vec!["ns1.strong.test".into(), "ns2.strong.test".into()],
            }),
            ns_ipv6: vec![
                ("ns1.strong.test".into(), ips(&["2001:db8::53"])),
                ("ns2.strong.test".into(), ips(&["2001:db8::54"])),
            ],
            soa: Ok(SoaRecord {
                zone: "strong.test".into(),
                mname: "ns1.strong.test".into(),
                rname: "hostmaster.strong.test".into(),
                serial: 1,
                refresh: 7200,
                retry: 3600,
                expire: 1209600,
                minimum: 300,
            }),
            caa: Ok((
                "strong.test".into(),
                vec![CaaRecord {
                    critical: false,
                    tag: "issue".into(),
                    value: "ca.test".into(),
                }],
            )),
            dnssec: DnssecStatus::Secure,
            dnssec_basis: vec!["SOA strong.test".into()],
        }
    }

    fn points_of(cat: &Category, id: &str) -> (CheckStatus, i32) {
        let c = cat
            .checks
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("no check {id}"));
        (c.status, c.points)
    }

    #[test]
    fn a_strong_zone_gets_full_marks() {
        let cat = score(&strong());
        assert_eq!(cat.score, Some(100), "{:#?}", cat.checks);
        assert_every_check_recommends(&cat);
        assert!(
            cat.checks
                .iter()
                .all(|c| matches!(c.status, CheckStatus::Pass | CheckStatus::Info))
        );
    }

    #[test]
    fn each_finding_costs_its_documented_points() {
        type Edit = fn(&mut DnsEvidence);
        let cases: [(Edit, &str, CheckStatus, i32); 12] = [
            (
                |e| e.dnssec = DnssecStatus::Insecure,
                "dnssec",
                CheckStatus::Fail,
                points::DNSSEC_INSECURE,
            ),
            (
                |e| e.dnssec = DnssecStatus::Bogus,
                "dnssec",
                CheckStatus::Fail,
                points::DNSSEC_BOGUS,
            ),
            (
                |e| e.dnssec = DnssecStatus::Indeterminate,
                "dnssec",
                CheckStatus::Error,
                0,
            ),
            (
                |e| e.addresses.v6 = Err(LookupError::NoRecords),
                "ipv6-web",
                CheckStatus::Fail,
                points::IPV6_WEB_MISSING,
            ),
            (
                |e| e.addresses.v6 = Err(LookupError::Timeout),
                "ipv6-web",
                CheckStatus::Error,
                0,
            ),
            (
                |e| e.ns_ipv6[1].1 = Err(LookupError::NoRecords),
                "ipv6-nameservers",
                CheckStatus::Warn,
                points::IPV6_NS_ONE,
            ),
            (
                |e| {
                    e.ns_ipv6
                        .iter_mut()
                        .for_each(|n| n.1 = Err(LookupError::NoRecords))
                },
                "ipv6-nameservers",
                CheckStatus::Fail,
                points::IPV6_NS_NONE,
            ),
            (
                |e| {
                    e.ns = Ok(ZoneNs {
                        zone: "strong.test".into(),
                        names: vec!["ns1.strong.test".into()],
                    });
                },
                "ns-count",
                CheckStatus::Fail,
                points::NS_SINGLE,
            ),
            (
                |e| e.caa = Err(LookupError::NoRecords),
                "caa",
                CheckStatus::Fail,
                points::CAA_MISSING,
            ),
            (
                |e| {
                    e.caa = Ok((
                        "strong.test".into(),
                        vec![CaaRecord {
                            critical: false,
                            tag: "iodef".into(),
                            value: "mailto:x@strong.test".into(),
                        }],
                    ));
                },
                "caa",
                CheckStatus::Warn,
                points::CAA_MALFORMED,
            ),
            (
                |e| {
                    e.caa = Ok((
                        "strong.test".into(),
                        vec![CaaRecord {
                            critical: false,
                            tag: "issue".into(),
                            value: "not a ca".into(),
                        }],
                    ));
                },
                "caa",
                CheckStatus::Warn,
                points::CAA_MALFORMED,
            ),
            (
                |e| e.soa = Err(LookupError::NoRecords),
                "soa",
                CheckStatus::Fail,
                points::SOA_MISSING,
            ),
        ];
        for (edit, id, status, pts) in cases {
            let mut e = strong();
            edit(&mut e);
            let cat = score(&e);
            assert_eq!(points_of(&cat, id), (status, pts), "{id}");
            assert_every_check_recommends(&cat);
            let expected = u32::try_from(100 + pts).expect("non-negative");
            assert_eq!(cat.score, Some(expected), "{id}: {:#?}", cat.checks);
        }
    }

    #[test]
    fn a_typical_unsigned_ipv4_only_zone() {
        let mut e = strong();
        e.dnssec = DnssecStatus::Insecure;
        e.addresses.v6 = Err(LookupError::NoRecords);
        e.caa = Err(LookupError::NxDomain);
        // 100 - 30 - 15 - 10
        assert_eq!(score(&e).score, Some(45));
    }

    #[test]
    fn a_parked_name_without_addresses_is_not_blamed_for_ipv6() {
        let mut e = strong();
        e.addresses = AddressLookup {
            v4: Err(LookupError::NoRecords),
            v6: Err(LookupError::NoRecords),
        };
        let cat = score(&e);
        assert_eq!(points_of(&cat, "ipv6-web"), (CheckStatus::Info, 0));
        assert_every_check_recommends(&cat);
        assert_eq!(cat.score, Some(100));
    }

    #[test]
    fn nothing_seen_means_no_score() {
        let e = DnsEvidence {
            domain: "x.test".into(),
            addresses: AddressLookup {
                v4: Err(LookupError::Timeout),
                v6: Err(LookupError::Timeout),
            },
            ns: Err(LookupError::Timeout),
            ns_ipv6: vec![],
            soa: Err(LookupError::Timeout),
            caa: Err(LookupError::Timeout),
            dnssec: DnssecStatus::Indeterminate,
            dnssec_basis: vec![],
        };
        let cat = score(&e);
        assert!(
            cat.checks
                .iter()
                .all(|c| matches!(c.status, CheckStatus::Error | CheckStatus::Info)),
            "{:#?}",
            cat.checks
        );
        assert_eq!(cat.score, None);
        assert_every_check_recommends(&cat);
    }
}
