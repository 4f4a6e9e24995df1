//! Typed look-ups through the non-validating resolver.

use std::net::IpAddr;

use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, RecordType};

use super::{LookupError, Net};

/// One MX record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxRecord {
    pub preference: u16,
    /// Lower-case, without the trailing dot; empty for the root (`.`, null MX).
    pub exchange: String,
}

/// The SOA record's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoaRecord {
    /// The zone the SOA belongs to (its owner name).
    pub zone: String,
    pub mname: String,
    pub rname: String,
    pub serial: u32,
    pub refresh: i32,
    pub retry: i32,
    pub expire: i32,
    pub minimum: u32,
}

/// One CAA record, raw: the value is judged by the DNS area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaaRecord {
    pub critical: bool,
    pub tag: String,
    pub value: String,
}

/// A name as the engine prints and compares it: lower-case, no trailing dot.
pub(crate) fn display_name(name: &Name) -> String {
    let text = name.to_ascii().to_ascii_lowercase();
    text.strip_suffix('.').map(str::to_owned).unwrap_or(text)
}

/// `host` as an absolute name, so no search domain is ever appended.
pub(crate) fn absolute(host: &str) -> Result<Name, LookupError> {
    let trimmed = host.trim_end_matches('.');
    Name::from_ascii(format!("{trimmed}."))
        .map_err(|e| LookupError::Failed(format!("{host:?} is not a valid DNS name: {e}")))
}

pub(crate) fn classify(err: &NetError) -> LookupError {
    match err {
        NetError::Dns(DnsError::NoRecordsFound(nr))
            if nr.response_code == ResponseCode::NXDomain =>
        {
            LookupError::NxDomain
        }
        NetError::Dns(DnsError::NoRecordsFound(_)) => LookupError::NoRecords,
        NetError::Timeout => LookupError::Timeout,
        NetError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => LookupError::Timeout,
        other => LookupError::Failed(other.to_string()),
    }
}

impl Net {
    /// The answers of one type for `name`, CNAMEs followed; NODATA when none.
    async fn records(&self, name: &str, rtype: RecordType) -> Result<Vec<RData>, LookupError> {
        let query = absolute(name)?;
        let lookup = self
            .resolver
            .lookup(query, rtype)
            .await
            .map_err(|e| classify(&e))?;
        let data: Vec<RData> = lookup
            .answers()
            .iter()
            .filter(|r| r.record_type() == rtype)
            .map(|r| r.data.clone())
            .collect();
        if data.is_empty() {
            Err(LookupError::NoRecords)
        } else {
            Ok(data)
        }
    }

    /// IPv4 addresses of `name`.
    pub async fn a(&self, name: &str) -> Result<Vec<IpAddr>, LookupError> {
        let data = self.records(name, RecordType::A).await?;
        Ok(data
            .into_iter()
            .filter_map(|d| {
                if let RData::A(a) = d {
                    Some(IpAddr::V4(a.0))
                } else {
                    None
                }
            })
            .collect())
    }

    /// IPv6 addresses of `name`.
    pub async fn aaaa(&self, name: &str) -> Result<Vec<IpAddr>, LookupError> {
        let data = self.records(name, RecordType::AAAA).await?;
        Ok(data
            .into_iter()
            .filter_map(|d| {
                if let RData::AAAA(a) = d {
                    Some(IpAddr::V6(a.0))
                } else {
                    None
                }
            })
            .collect())
    }

    /// TXT records of `name`, each one's strings concatenated (RFC 7208 §3.3).
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, LookupError> {
        let data = self.records(name, RecordType::TXT).await?;
        Ok(data
            .into_iter()
            .filter_map(|d| match d {
                RData::TXT(t) => Some(
                    t.txt_data
                        .iter()
                        .map(|s| String::from_utf8_lossy(s))
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect())
    }

    /// MX records of `name`, most preferred first.
    pub async fn mx(&self, name: &str) -> Result<Vec<MxRecord>, LookupError> {
        let data = self.records(name, RecordType::MX).await?;
        let mut mx: Vec<MxRecord> = data
            .into_iter()
            .filter_map(|d| match d {
                RData::MX(m) => Some(MxRecord {
                    preference: m.preference,
                    exchange: display_name(&m.exchange),
                }),
                _ => None,
            })
            .collect();
        mx.sort_by(|a, b| (a.preference, &a.exchange).cmp(&(b.preference, &b.exchange)));
        Ok(mx)
    }

    /// NS names of `name`, sorted.
    pub async fn ns(&self, name: &str) -> Result<Vec<String>, LookupError> {
        let data = self.records(name, RecordType::NS).await?;
        let mut ns: Vec<String> = data
            .into_iter()
            .filter_map(|d| {
                if let RData::NS(n) = d {
                    Some(display_name(&n.0))
                } else {
                    None
                }
            })
            .collect();
        ns.sort();
        ns.dedup();
        Ok(ns)
    }

    /// The SOA record at `name` (NODATA when `name` is not a zone apex).
    pub async fn soa(&self, name: &str) -> Result<SoaRecord, LookupError> {
        let query = absolute(name)?;
        let lookup = self
            .resolver
            .lookup(query, RecordType::SOA)
            .await
            .map_err(|e| classify(&e))?;
        lookup
            .answers()
            .iter()
            .find_map(|r| match &r.data {
                RData::SOA(s) => Some(SoaRecord {
                    zone: display_name(&r.name),
                    mname: display_name(&s.mname),
                    rname: display_name(&s.rname),
                    serial: s.serial,
                    refresh: s.refresh,
                    retry: s.retry,
                    expire: s.expire,
                    minimum: s.minimum,
                }),
                _ => None,
            })
            .ok_or(LookupError::NoRecords)
    }

    /// CAA records at `name` (no climbing; the DNS area climbs).
    pub async fn caa(&self, name: &str) -> Result<Vec<CaaRecord>, LookupError> {
        let data = self.records(name, RecordType::CAA).await?;
        Ok(data
            .into_iter()
            .filter_map(|d| match d {
                RData::CAA(c) => Some(CaaRecord {
                    critical: c.issuer_critical,
                    tag: c.tag.clone(),
                    value: String::from_utf8_lossy(&c.value).into_owned(),
                }),
                _ => None,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_absolute_and_printed_plainly() {
        let name = absolute("Example.COM").expect("valid");
        assert!(name.is_fqdn());
        assert_eq!(display_name(&name), "example.com");
        assert_eq!(
            display_name(&absolute("example.com.").expect("valid")),
            "example.com"
        );
        assert_eq!(display_name(&Name::root()), "");
    }
}
