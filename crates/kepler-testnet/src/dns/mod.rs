//! The DNS side: every fixture zone, signed where it should be, served by one
//! hickory-server that answers as the engine's only resolver would.

pub mod data;
mod handler;
mod sign;
pub mod zone;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::rr::{Name, RecordType};
use hickory_server::Server;

use crate::error::StartError;
use crate::ports;
use handler::Handler;
use sign::ZoneKey;
use zone::{Answer, Zone};

/// How long signatures are valid on either side of start-up.
const SIG_INCEPTION_SLACK: u32 = 3600;
const SIG_VALIDITY: u32 = 30 * 86_400;

/// All fixture zones, deepest first, and the root's trust anchor.
#[derive(Debug)]
pub struct Zones {
    zones: Vec<Zone>,
    trust_anchor: String,
    /// `load.test.`, and `_template.load.test.` whose names answer for every
    /// load-test domain's.
    load_zone: Name,
    load_template: Name,
}

impl Zones {
    /// Parses and signs the fixture zones. `dns` is the name servers' address,
    /// `now` the current UNIX time (for signature validity).
    pub fn build(dns: Ipv4Addr, ipv6: bool, now: u32) -> Result<Zones, StartError> {
        let mut zones = Vec::new();
        let mut signed = Vec::new();
        for source in data::zones(dns, ipv6) {
            let zone =
                Zone::parse(source.origin, &source.text).map_err(|reason| StartError::Zone {
                    zone: source.origin.to_string(),
                    reason,
                })?;
            zones.push(zone);
            signed.push(source.signed);
        }
        // Children first, so each DS is in its parent before the parent is signed.
        let mut order: Vec<usize> = (0..zones.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(zones[i].origin().num_labels()));

        let inception = now.saturating_sub(SIG_INCEPTION_SLACK);
        let expiration = now.saturating_add(SIG_VALIDITY);
        let mut trust_anchor = String::new();
        for &i in &order {
            if !signed[i] {
                continue;
            }
            let origin = zones[i].origin().clone();
            let failed = |reason: String| StartError::Signing {
                zone: origin.to_string(),
                reason,
            };
            let key = ZoneKey::generate().map_err(failed)?;
            zones[i].sign(&key, inception, expiration).map_err(failed)?;
            if origin.is_root() {
                trust_anchor = key.trust_anchor_line(&origin);
                trust_anchor.push('\n');
            } else if let Some(parent) = parent_of(&zones, &origin) {
                let ds = key.ds_record(&origin, 3600).map_err(failed)?;
                zones[parent].insert(ds);
            }
        }
        let mut deepest_first = zones;
        deepest_first.sort_by_key(|z| std::cmp::Reverse(z.origin().num_labels()));
        let load_zone =
            Name::from_ascii(format!("{}.", crate::fixtures::LOAD_ZONE)).map_err(|e| {
                StartError::Zone {
                    zone: crate::fixtures::LOAD_ZONE.into(),
                    reason: e.to_string(),
                }
            })?;
        let load_template =
            load_zone
                .prepend_label(data::LOAD_TEMPLATE)
                .map_err(|e| StartError::Zone {
                    zone: crate::fixtures::LOAD_ZONE.into(),
                    reason: e.to_string(),
                })?;
        Ok(Zones {
            zones: deepest_first,
            trust_anchor,
            load_zone,
            load_template,
        })
    }

    /// The root key as DNSKEY presentation lines (the `trust_anchor_file`).
    pub fn trust_anchor(&self) -> &str {
        &self.trust_anchor
    }

    /// The zone that answers `qname`/`qtype`: the deepest one holding the name,
    /// except that a DS at a zone's apex is its parent's to answer.
    fn route(&self, qname: &Name, qtype: RecordType) -> Option<&Zone> {
        let mut holding = self.zones.iter().filter(|z| z.origin().zone_of(qname));
        let deepest = holding.next()?;
        if qtype == RecordType::DS && deepest.origin() == qname && !qname.is_root() {
            return holding.next().or(Some(deepest));
        }
        Some(deepest)
    }

    /// The authoritative answer for one question.
    pub fn answer(&self, qname: &Name, qtype: RecordType, dnssec: bool) -> Option<Answer> {
        let qname = qname.to_lowercase();
        if let Some(template) = self.load_question(&qname) {
            // Answer from the template's names, under the name asked for. The
            // load zone is unsigned, so no signature covers the owner names.
            let mut answer = self
                .route(&template, qtype)?
                .lookup(&template, qtype, dnssec);
            for record in &mut answer.answers {
                if record.name == template {
                    record.name = qname.clone();
                }
            }
            return Some(answer);
        }
        self.route(&qname, qtype)
            .map(|zone| zone.lookup(&qname, qtype, dnssec))
    }

    /// For a name under a load-test domain (`_dmarc.d7.load.test.`), the
    /// template name that answers for it (`_dmarc._template.load.test.`).
    fn load_question(&self, qname: &Name) -> Option<Name> {
        let domain_labels = self.load_zone.num_labels() + 1;
        if !self.load_zone.zone_of(qname) || qname.num_labels() < domain_labels {
            return None;
        }
        let prefix = usize::from(qname.num_labels() - domain_labels);
        let labels: Vec<&[u8]> = qname.iter().take(prefix).collect();
        if labels.is_empty() {
            return Some(self.load_template.clone());
        }
        Name::from_labels(labels)
            .ok()?
            .append_name(&self.load_template)
            .ok()
    }

    /// Every (name, address) in the fixture data, for hosts files; the load
    /// template's names are left out (they stand for every load-test domain).
    pub fn addresses(&self) -> Vec<(Name, IpAddr)> {
        let mut all: Vec<(Name, IpAddr)> = self
            .zones
            .iter()
            .flat_map(|z| z.addresses())
            .filter(|(name, _)| !self.load_template.zone_of(name))
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

/// The index of the deepest zone strictly above `origin`.
fn parent_of(zones: &[Zone], origin: &Name) -> Option<usize> {
    zones
        .iter()
        .enumerate()
        .filter(|(_, z)| z.origin() != origin && z.origin().zone_of(origin))
        .max_by_key(|(_, z)| z.origin().num_labels())
        .map(|(i, _)| i)
}

/// The running DNS server (UDP and TCP on one port).
pub struct DnsServer {
    server: Server<Handler>,
    addr: SocketAddr,
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl DnsServer {
    /// Binds `ip:port` (a random port when `None`) and starts answering.
    pub async fn start(
        ip: IpAddr,
        port: Option<u16>,
        zones: Zones,
        latency: Duration,
    ) -> Result<DnsServer, StartError> {
        let (udp, tcp) = ports::bind_udp_tcp(ip, port).await?;
        let addr = udp.local_addr().map_err(|source| StartError::Bind {
            what: "DNS (UDP)",
            addr: SocketAddr::new(ip, 0),
            source,
        })?;
        let mut server = Server::new(Handler::new(zones, latency));
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(10), 64);
        Ok(DnsServer { server, addr })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub async fn shutdown(mut self) {
        if let Err(error) = self.server.shutdown_gracefully().await {
            tracing::debug!(%error, "DNS server shut down with an error");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::RData;

    fn zones() -> Zones {
        Zones::build(Ipv4Addr::LOCALHOST, true, 1_780_000_000).expect("fixture zones build")
    }

    fn name(text: &str) -> Name {
        Name::from_ascii(text).expect("name")
    }

    fn types(records: &[hickory_proto::rr::Record]) -> Vec<RecordType> {
        records.iter().map(|r| r.record_type()).collect()
    }

    /// (question, DO bit) → (rcode, answer types, authority types)
    fn check(
        qname: &str,
        qtype: RecordType,
        dnssec: bool,
        rcode: ResponseCode,
        answers: &[RecordType],
        authorities: &[RecordType],
    ) {
        let answer = zones().answer(&name(qname), qtype, dnssec).expect("routed");
        assert_eq!(answer.rcode, rcode, "{qname} {qtype}");
        assert_eq!(types(&answer.answers), answers, "{qname} {qtype} answers");
        assert_eq!(
            types(&answer.authorities),
            authorities,
            "{qname} {qtype} authorities"
        );
    }

    #[test]
    fn answers_follow_the_fixture_data() {
        use RecordType::*;
        check("strong.test.", A, false, ResponseCode::NoError, &[A], &[]);
        check(
            "strong.test.",
            A,
            true,
            ResponseCode::NoError,
            &[A, RRSIG],
            &[],
        );
        check(
            "strong.test.",
            DS,
            true,
            ResponseCode::NoError,
            &[DS, RRSIG],
            &[],
        );
        check(
            "strong.test.",
            DNSKEY,
            true,
            ResponseCode::NoError,
            &[DNSKEY, RRSIG],
            &[],
        );
        check("mixed.test.", A, true, ResponseCode::NoError, &[A], &[]);
        // Insecure delegation: the parent proves there is no DS.
        check(
            "mixed.test.",
            DS,
            true,
            ResponseCode::NoError,
            &[],
            &[SOA, RRSIG, NSEC, RRSIG],
        );
        check(
            "nope.test.",
            A,
            true,
            ResponseCode::NXDomain,
            &[],
            &[SOA, RRSIG, NSEC, RRSIG, NSEC, RRSIG],
        );
        check("nope.test.", A, false, ResponseCode::NXDomain, &[], &[SOA]);
        check(
            "nope.mixed.test.",
            A,
            true,
            ResponseCode::NXDomain,
            &[],
            &[SOA],
        );
        check("parked.test.", A, false, ResponseCode::NoError, &[], &[SOA]);
        check(
            "strong.test.",
            TXT,
            false,
            ResponseCode::NoError,
            &[TXT],
            &[],
        );
        // Empty non-terminal above _smtp._tls.
        check(
            "_tls.strong.test.",
            TXT,
            true,
            ResponseCode::NoError,
            &[],
            &[SOA, RRSIG, NSEC, RRSIG],
        );
        check("test.", DS, true, ResponseCode::NoError, &[DS, RRSIG], &[]);
        check(
            "com.",
            A,
            true,
            ResponseCode::NXDomain,
            &[],
            &[SOA, RRSIG, NSEC, RRSIG],
        );
    }

    #[test]
    fn load_test_names_answer_from_the_template() {
        use RecordType::*;
        check("d7.load.test.", A, true, ResponseCode::NoError, &[A], &[]);
        check(
            "d7.load.test.",
            MX,
            false,
            ResponseCode::NoError,
            &[MX],
            &[],
        );
        check(
            "D8.Load.Test.",
            CAA,
            false,
            ResponseCode::NoError,
            &[CAA, CAA],
            &[],
        );
        check(
            "_dmarc.d7.load.test.",
            TXT,
            true,
            ResponseCode::NoError,
            &[TXT],
            &[],
        );
        check(
            "mta-sts.d7.load.test.",
            A,
            false,
            ResponseCode::NoError,
            &[A],
            &[],
        );
        check(
            "nope.d7.load.test.",
            A,
            false,
            ResponseCode::NXDomain,
            &[],
            &[SOA],
        );
        // Not a zone apex: the load zone's SOA says so.
        check(
            "d7.load.test.",
            SOA,
            false,
            ResponseCode::NoError,
            &[],
            &[SOA],
        );
        let answer = zones()
            .answer(&name("_dmarc.d7.load.test."), TXT, false)
            .expect("routed");
        assert_eq!(answer.answers[0].name, name("_dmarc.d7.load.test."));
        // The parent proves the delegation insecure, as for mixed.test.
        check(
            "load.test.",
            DS,
            true,
            ResponseCode::NoError,
            &[],
            &[SOA, RRSIG, NSEC, RRSIG],
        );
    }

    #[test]
    fn the_nsec_at_an_insecure_cut_has_ns_and_no_ds() {
        let answer = zones()
            .answer(&name("mixed.test."), RecordType::DS, true)
            .expect("routed");
        let nsec = answer
            .authorities
            .iter()
            .find_map(|r| match &r.data {
                RData::DNSSEC(hickory_proto::dnssec::rdata::DNSSECRData::NSEC(nsec)) => {
                    Some((r.name.clone(), nsec.clone()))
                }
                _ => None,
            })
            .expect("an NSEC");
        assert_eq!(nsec.0, name("mixed.test."));
        let set = nsec.1.type_set();
        assert!(set.contains(RecordType::NS));
        assert!(!set.contains(RecordType::DS));
        assert!(!set.contains(RecordType::SOA));
    }

    #[test]
    fn the_trust_anchor_is_the_root_key() {
        let zones = zones();
        assert!(
            zones
                .trust_anchor()
                .starts_with(". 3600 IN DNSKEY 257 3 13 ")
        );
    }
}
