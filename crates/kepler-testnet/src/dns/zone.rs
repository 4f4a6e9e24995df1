//! One zone: its records, optional NSEC signing, and authoritative answers
//! (positive, NODATA, NXDOMAIN, referral) with the DNSSEC proofs a validator
//! needs.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use hickory_proto::dnssec::rdata::{DNSSECRData, NSEC};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::txt::Parser;

use super::sign::ZoneKey;

/// The records of one name and type, with their signatures.
#[derive(Debug, Default, Clone)]
pub struct Rrset {
    pub records: Vec<Record>,
    pub rrsigs: Vec<Record>,
}

impl Rrset {
    fn with_sigs(&self, dnssec: bool) -> impl Iterator<Item = Record> + '_ {
        let sigs: &[Record] = if dnssec { &self.rrsigs } else { &[] };
        self.records.iter().chain(sigs).cloned()
    }
}

/// An authoritative answer from one zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub rcode: ResponseCode,
    pub authoritative: bool,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
}

/// A zone's data. Names are kept in lower case; the map's order is DNSSEC's
/// canonical order, which the NSEC chain follows.
#[derive(Debug)]
pub struct Zone {
    origin: Name,
    rrsets: BTreeMap<Name, BTreeMap<RecordType, Rrset>>,
    /// Every name that exists, empty non-terminals included.
    names: BTreeSet<Name>,
    /// Delegation points (names below the apex with NS records).
    cuts: BTreeSet<Name>,
    signed: bool,
}

impl Zone {
    /// Parses zone-file text.
    pub fn parse(origin: &str, text: &str) -> Result<Zone, String> {
        let origin = Name::from_ascii(origin)
            .map_err(|e| e.to_string())?
            .to_lowercase();
        let (origin, sets) = Parser::new(text, None, Some(origin))
            .parse()
            .map_err(|e| e.to_string())?;
        let mut zone = Zone {
            origin,
            rrsets: BTreeMap::new(),
            names: BTreeSet::new(),
            cuts: BTreeSet::new(),
            signed: false,
        };
        for set in sets.values() {
            for record in set.records_without_rrsigs() {
                zone.insert(record.clone());
            }
        }
        if zone.rrset(&zone.origin, RecordType::SOA).is_none() {
            return Err("no SOA at the apex".into());
        }
        Ok(zone)
    }

    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// Adds a record (e.g. a child's DS); call before [`Zone::sign`].
    pub fn insert(&mut self, mut record: Record) {
        record.name = record.name.to_lowercase();
        let name = record.name.clone();
        let rrset = self
            .rrsets
            .entry(name.clone())
            .or_default()
            .entry(record.record_type())
            .or_default();
        if !rrset.records.contains(&record) {
            rrset.records.push(record);
        }
        let mut ancestor = name.clone();
        while ancestor.num_labels() > self.origin.num_labels() {
            self.names.insert(ancestor.clone());
            ancestor = ancestor.base_name();
        }
        self.names.insert(self.origin.clone());
        if name != self.origin
            && self
                .rrsets
                .get(&name)
                .is_some_and(|m| m.contains_key(&RecordType::NS))
        {
            self.cuts.insert(name);
        }
    }

    fn rrset(&self, name: &Name, rtype: RecordType) -> Option<&Rrset> {
        self.rrsets.get(name).and_then(|types| types.get(&rtype))
    }

    /// The delegation point at or above `name`, if `name` is in delegated space.
    fn cut_at_or_above(&self, name: &Name) -> Option<Name> {
        let mut candidate = name.clone();
        while candidate.num_labels() > self.origin.num_labels() {
            if self.cuts.contains(&candidate) {
                return Some(candidate);
            }
            candidate = candidate.base_name();
        }
        None
    }

    /// Whether records at `name` are glue (below a delegation point).
    fn is_glue(&self, name: &Name) -> bool {
        self.cut_at_or_above(name).is_some_and(|cut| cut != *name)
    }

    /// The negative-answer TTL (SOA minimum, RFC 2308).
    fn negative_ttl(&self) -> u32 {
        match self
            .rrset(&self.origin, RecordType::SOA)
            .and_then(|s| s.records.first())
            .map(|r| &r.data)
        {
            Some(RData::SOA(soa)) => soa.minimum,
            _ => 300,
        }
    }

    /// Adds the DNSKEY, builds the NSEC chain and signs every authoritative RRset.
    pub fn sign(&mut self, key: &ZoneKey, inception: u32, expiration: u32) -> Result<(), String> {
        self.insert(key.dnskey_record(&self.origin, 3600));
        let negative_ttl = self.negative_ttl();

        // The chain covers every owner with authoritative data or a delegation.
        let owners: Vec<Name> = self
            .rrsets
            .keys()
            .filter(|n| !self.is_glue(n))
            .cloned()
            .collect();
        for (i, owner) in owners.iter().enumerate() {
            let next = owners.get(i + 1).unwrap_or(&self.origin).clone();
            let types: Vec<RecordType> = self
                .rrsets
                .get(owner)
                .map(|m| m.keys().copied().collect())
                .unwrap_or_default();
            let nsec = NSEC::new_cover_self(next, types);
            self.insert(Record::from_rdata(
                owner.clone(),
                negative_ttl,
                RData::DNSSEC(DNSSECRData::NSEC(nsec)),
            ));
        }

        let origin = self.origin.clone();
        let mut to_sign = Vec::new();
        for (name, types) in &self.rrsets {
            if self.is_glue(name) {
                continue;
            }
            for rtype in types.keys() {
                // The parent does not sign the NS set at a cut; the child owns it.
                if *rtype == RecordType::NS && self.cuts.contains(name) {
                    continue;
                }
                to_sign.push((name.clone(), *rtype));
            }
        }
        for (name, rtype) in to_sign {
            if let Some(rrset) = self.rrsets.get_mut(&name).and_then(|m| m.get_mut(&rtype)) {
                let sig = key.sign_rrset(&origin, &rrset.records, inception, expiration)?;
                rrset.rrsigs = vec![sig];
            }
        }
        self.signed = true;
        Ok(())
    }

    /// The NSEC RRset (with its signature) whose span covers `name`.
    fn covering_nsec(&self, name: &Name) -> Option<&Rrset> {
        let before = self
            .rrsets
            .range(..name.clone())
            .rev()
            .find_map(|(_, types)| types.get(&RecordType::NSEC));
        // Nothing sorts before the apex; wrapping round is only a safeguard.
        before.or_else(|| {
            self.rrsets
                .values()
                .rev()
                .find_map(|types| types.get(&RecordType::NSEC))
        })
    }

    fn soa_for_negative(&self, dnssec: bool) -> Vec<Record> {
        let ttl = self.negative_ttl();
        self.rrset(&self.origin, RecordType::SOA)
            .map(|set| {
                set.with_sigs(dnssec)
                    .map(|mut r| {
                        r.ttl = r.ttl.min(ttl);
                        r
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Answers `qname`/`qtype` from this zone. `dnssec` is the query's DO bit.
    pub fn lookup(&self, qname: &Name, qtype: RecordType, dnssec: bool) -> Answer {
        let qname = qname.to_lowercase();
        let dnssec = dnssec && self.signed;

        if let Some(cut) = self.cut_at_or_above(&qname) {
            // DS lives on the parent side of the cut; everything else is the child's.
            if !(cut == qname && qtype == RecordType::DS) {
                return self.referral(&cut, dnssec);
            }
        }

        if let Some(set) = self.rrset(&qname, qtype) {
            return Answer {
                rcode: ResponseCode::NoError,
                authoritative: true,
                answers: set.with_sigs(dnssec).collect(),
                authorities: Vec::new(),
            };
        }

        let mut authorities = self.soa_for_negative(dnssec);
        if self.names.contains(&qname) {
            if dnssec {
                // NSEC at the name itself, or, at an empty non-terminal, the one spanning it.
                let proof = self
                    .rrset(&qname, RecordType::NSEC)
                    .or_else(|| self.covering_nsec(&qname));
                authorities.extend(proof.into_iter().flat_map(|s| s.with_sigs(true)));
            }
            return Answer {
                rcode: ResponseCode::NoError,
                authoritative: true,
                answers: Vec::new(),
                authorities,
            };
        }

        if dnssec {
            let mut encloser = qname.base_name();
            while !self.names.contains(&encloser)
                && encloser.num_labels() > self.origin.num_labels()
            {
                encloser = encloser.base_name();
            }
            let mut proofs: Vec<&Rrset> = self.covering_nsec(&qname).into_iter().collect();
            if let Ok(wildcard) = encloser.prepend_label("*")
                && let Some(set) = self.covering_nsec(&wildcard)
                && !proofs.iter().any(|p| std::ptr::eq(*p, set))
            {
                proofs.push(set);
            }
            authorities.extend(proofs.into_iter().flat_map(|s| s.with_sigs(true)));
        }
        Answer {
            rcode: ResponseCode::NXDomain,
            authoritative: true,
            answers: Vec::new(),
            authorities,
        }
    }

    fn referral(&self, cut: &Name, dnssec: bool) -> Answer {
        let mut authorities: Vec<Record> = self
            .rrset(cut, RecordType::NS)
            .map(|s| s.records.clone())
            .unwrap_or_default();
        if dnssec {
            let proof = self
                .rrset(cut, RecordType::DS)
                .or_else(|| self.rrset(cut, RecordType::NSEC));
            authorities.extend(proof.into_iter().flat_map(|s| s.with_sigs(true)));
        }
        Answer {
            rcode: ResponseCode::NoError,
            authoritative: false,
            answers: Vec::new(),
            authorities,
        }
    }

    /// Every authoritative address record: (name, address).
    pub fn addresses(&self) -> Vec<(Name, IpAddr)> {
        let mut out = Vec::new();
        for (name, types) in &self.rrsets {
            if self.is_glue(name) {
                continue;
            }
            for rtype in [RecordType::A, RecordType::AAAA] {
                for record in types
                    .get(&rtype)
                    .map(|s| s.records.as_slice())
                    .unwrap_or_default()
                {
                    match &record.data {
                        RData::A(a) => out.push((name.clone(), IpAddr::V4(a.0))),
                        RData::AAAA(aaaa) => out.push((name.clone(), IpAddr::V6(aaaa.0))),
                        _ => {}
                    }
                }
            }
        }
        out
    }
}
