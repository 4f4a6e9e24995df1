//! The `dns` area: what the domain's own DNS looks like (DNSSEC, IPv6, NS, CAA, SOA).
//!
//! `probe` gathers evidence with every independent look-up started at once;
//! `score` turns evidence into checks and is pure, so the model is unit-tested
//! without a network.

pub mod caa;
mod score;

use std::future::Future;
use std::net::IpAddr;

use futures::future::join_all;
use hickory_resolver::proto::rr::RecordType;
use kepler_core::Domain;

use crate::names::ancestors;
use crate::net::{AddressLookup, CaaRecord, DnssecStatus, LookupError, Net, SoaRecord};

pub use score::{points, score};

/// At most this many name servers are asked for their IPv6 addresses.
const MAX_NS_CHECKED: usize = 8;

/// Everything the DNS area looked at.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsEvidence {
    pub domain: String,
    /// The apex A/AAAA answers.
    pub addresses: AddressLookup,
    /// The zone the domain lives in and its NS names (nearest zone cut at or above the domain).
    pub ns: Result<ZoneNs, LookupError>,
    /// AAAA look-ups of the NS names.
    pub ns_ipv6: Vec<(String, Result<Vec<IpAddr>, LookupError>)>,
    /// The SOA of the zone.
    pub soa: Result<SoaRecord, LookupError>,
    /// The relevant CAA set (RFC 8659 climbing), with the name it was found at.
    pub caa: Result<(String, Vec<CaaRecord>), LookupError>,
    /// DNSSEC validation status and what was validated.
    pub dnssec: DnssecStatus,
    pub dnssec_basis: Vec<String>,
}

/// The NS set of a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneNs {
    pub zone: String,
    pub names: Vec<String>,
}

/// The first positive answer among look-ups made for `names` (nearest first).
/// Transport failures win over "nothing anywhere" so they show as `error`.
fn first_found<T>(
    names: &[String],
    results: Vec<Result<T, LookupError>>,
) -> Result<(String, T), LookupError> {
    for (name, result) in names.iter().zip(results) {
        match result {
            Ok(v) => return Ok((name.clone(), v)),
            Err(e) if e.is_void() => continue,
            // A failure nearer the name hides what a farther answer would mean.
            Err(e) => return Err(e),
        }
    }
    Err(LookupError::NoRecords)
}

/// Looks at the domain's DNS. `addresses` is the apex A/AAAA answer the run
/// is already waiting for; every other question starts at once beside it.
pub async fn probe(
    net: &Net,
    domain: &Domain,
    addresses: impl Future<Output = AddressLookup>,
) -> DnsEvidence {
    let name = domain.as_str();
    let chain = ancestors(name);

    let ns_all = join_all(chain.iter().map(|n| net.ns(n)));
    let soa_all = join_all(chain.iter().map(|n| net.soa(n)));
    let caa_all = join_all(chain.iter().map(|n| net.caa(n)));
    let soa_secure = net.dnssec_status(name, RecordType::SOA);
    // Validation is the longest chain of round trips, so it does not wait to
    // learn which address family exists: both are validated, the one with
    // addresses is used.
    let a_secure = net.dnssec_status(name, RecordType::A);
    let aaaa_secure = net.dnssec_status(name, RecordType::AAAA);
    let ns_with_v6 = async {
        let found = first_found(&chain, ns_all.await);
        let v6 = match &found {
            Ok((_, names)) => {
                let asked: Vec<&String> = names.iter().take(MAX_NS_CHECKED).collect();
                let answers = join_all(asked.iter().map(|n| net.aaaa(n))).await;
                asked.into_iter().cloned().zip(answers).collect()
            }
            Err(_) => Vec::new(),
        };
        (found.map(|(zone, names)| ZoneNs { zone, names }), v6)
    };

    let (addresses, (ns, ns_ipv6), soa_results, caa_results, soa_status, a_status, aaaa_status) = tokio::join!(
        addresses,
        ns_with_v6,
        soa_all,
        caa_all,
        soa_secure,
        a_secure,
        aaaa_secure
    );

    let soa = first_found(&chain, soa_results).map(|(_, s)| s);
    let caa = first_found(&chain, caa_results);

    // The SOA proves the zone is signed; when the domain is not itself a zone
    // apex, validate the enclosing zone's SOA instead.
    let mut basis = Vec::new();
    let mut statuses = Vec::new();
    match &soa {
        Ok(s) if s.zone != name => {
            statuses.push(net.dnssec_status(&s.zone, RecordType::SOA).await);
            basis.push(format!("SOA {}", s.zone));
        }
        _ => {
            statuses.push(soa_status);
            basis.push(format!("SOA {name}"));
        }
    }
    let has = |r: &Result<Vec<std::net::IpAddr>, LookupError>| matches!(r, Ok(v) if !v.is_empty());
    if has(&addresses.v4) {
        statuses.push(a_status);
        basis.push(format!("A {name}"));
    } else if has(&addresses.v6) {
        statuses.push(aaaa_status);
        basis.push(format!("AAAA {name}"));
    }

    DnsEvidence {
        domain: name.to_owned(),
        addresses,
        ns,
        ns_ipv6,
        soa,
        caa,
        dnssec: DnssecStatus::combine(statuses),
        dnssec_basis: basis,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_answer_wins_and_failures_are_not_hidden() {
        let names: Vec<String> = ["a.example.com", "example.com"].map(String::from).to_vec();
        let found = first_found(&names, vec![Err(LookupError::NoRecords), Ok(1)]);
        assert_eq!(found, Ok(("example.com".to_owned(), 1)));
        let near = first_found(&names, vec![Ok(2), Ok(1)]);
        assert_eq!(near, Ok(("a.example.com".to_owned(), 2)));
        let none: Result<(String, i32), _> = first_found(
            &names,
            vec![Err(LookupError::NxDomain), Err(LookupError::NoRecords)],
        );
        assert_eq!(none, Err(LookupError::NoRecords));
        let broken = first_found(&names, vec![Err(LookupError::Timeout), Ok(1)]);
        assert_eq!(broken, Err(LookupError::Timeout));
    }
}
