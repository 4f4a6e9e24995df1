//! DMARC (RFC 7489): discovering the policy record and reading its tags.

use std::fmt;

use futures::future::join_all;

use super::MailDns;
use super::record::{RecordLookup, tag_list};
use crate::names::ancestors;

/// A requested handling policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Policy {
    None,
    Quarantine,
    Reject,
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Policy::None => "none",
            Policy::Quarantine => "quarantine",
            Policy::Reject => "reject",
        })
    }
}

fn policy(value: &str) -> Result<Policy, String> {
    match value.to_ascii_lowercase().as_str() {
        "none" => Ok(Policy::None),
        "quarantine" => Ok(Policy::Quarantine),
        "reject" => Ok(Policy::Reject),
        _ => Err(format!("{value:?} is not none, quarantine or reject")),
    }
}

/// The tags of a DMARC record that the score reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcRecord {
    /// `p`; `None` when the tag is absent (the record is then not enforceable).
    pub p: Option<Policy>,
    /// `sp`, the policy for subdomains; defaults to `p`.
    pub sp: Option<Policy>,
    /// `pct`, 0–100; 100 when absent.
    pub pct: u8,
    /// `rua` URIs (aggregate reports).
    pub rua: Vec<String>,
}

impl DmarcRecord {
    /// The policy that applies to subdomains.
    pub fn subdomain_policy(&self) -> Option<Policy> {
        self.sp.or(self.p)
    }
}

/// Whether a TXT string is meant as a DMARC record: its first tag is `v`
/// with the value `DMARC1` in any case (the case itself is judged by `parse`).
pub fn is_dmarc(text: &str) -> bool {
    let Some((tag, value)) = text.split_once('=') else {
        return false;
    };
    let value = value.trim_start();
    tag.trim() == "v"
        && value.len() >= 6
        && value.is_char_boundary(6)
        && value[..6].eq_ignore_ascii_case("DMARC1")
        && value[6..]
            .chars()
            .next()
            .is_none_or(|c| c == ';' || c.is_whitespace())
}

/// One `rua`/`ruf` entry: `URI [ "!" size [unit] ]` (RFC 7489 §6.2).
fn report_uri(entry: &str) -> Result<String, String> {
    let (uri, size) = match entry.rsplit_once('!') {
        Some((u, s)) => (u, Some(s)),
        None => (entry, None),
    };
    if let Some(size) = size {
        let digits = size.trim_end_matches(['k', 'm', 'g', 't', 'K', 'M', 'G', 'T']);
        if digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || size.len() - digits.len() > 1
        {
            return Err(format!(
                "report size {size:?} is not a number with an optional k, m, g or t"
            ));
        }
    }
    let parsed =
        url::Url::parse(uri.trim()).map_err(|e| format!("report URI {uri:?} is not a URI: {e}"))?;
    if parsed.scheme() == "mailto" && !parsed.path().contains('@') {
        return Err(format!("report URI {uri:?} has no mailbox"));
    }
    Ok(uri.trim().to_owned())
}

/// Parses a DMARC record (RFC 7489 §6.3, §6.4). Unknown tags are ignored, as the RFC asks.
pub fn parse(text: &str) -> Result<DmarcRecord, String> {
    let tags = tag_list(text)?;
    match tags.first() {
        Some((t, v)) if t == "v" && v == "DMARC1" => {}
        Some((t, v)) if t == "v" && v.eq_ignore_ascii_case("DMARC1") => {
            return Err(format!(
                "the version is {v:?}; it must be exactly \"DMARC1\""
            ));
        }
        _ => return Err("the record must start with v=DMARC1".into()),
    }
    let mut record = DmarcRecord {
        p: None,
        sp: None,
        pct: 100,
        rua: Vec::new(),
    };
    for (tag, value) in &tags[1..] {
        match tag.as_str() {
            "v" => return Err("v may appear only first".into()),
            "p" => record.p = Some(policy(value).map_err(|e| format!("p: {e}"))?),
            "sp" => record.sp = Some(policy(value).map_err(|e| format!("sp: {e}"))?),
            "pct" => {
                record.pct = value
                    .parse::<u8>()
                    .ok()
                    .filter(|n| *n <= 100 && value.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| format!("pct: {value:?} is not a whole number from 0 to 100"))?;
            }
            "rua" => {
                record.rua = value
                    .split(',')
                    .map(report_uri)
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("rua: {e}"))?;
            }
            "ruf" => {
                value
                    .split(',')
                    .map(report_uri)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("ruf: {e}"))?;
            }
            "adkim" | "aspf"
                if !value.eq_ignore_ascii_case("r") && !value.eq_ignore_ascii_case("s") =>
            {
                return Err(format!("{tag}: {value:?} is not r or s"));
            }
            "ri" => {
                value
                    .parse::<u32>()
                    .map_err(|_| format!("ri: {value:?} is not a number of seconds"))?;
            }
            "fo" if !value
                .split(':')
                .all(|o| matches!(o.trim(), "0" | "1" | "d" | "s")) =>
            {
                return Err(format!(
                    "fo: {value:?} is not a colon-separated list of 0, 1, d and s"
                ));
            }
            _ => {} // unknown tags are ignored (§6.3)
        }
    }
    Ok(record)
}

/// Where the policy was found and what it says.
#[derive(Debug, Clone, PartialEq)]
pub struct DmarcEvidence {
    /// The name whose `_dmarc` record applies (the domain itself or a parent);
    /// `None` when nothing was found anywhere.
    pub at: Option<String>,
    /// Whether `at` is a parent (organisational-domain fallback).
    pub inherited: bool,
    pub lookup: RecordLookup<DmarcRecord>,
}

/// Looks for `_dmarc.<domain>`, then the parents' records (the organisational
/// domain fallback of RFC 7489 §6.6.3, walked label by label as DMARCbis does,
/// without a public suffix list). All names are asked at once.
pub async fn discover(dns: &dyn MailDns, domain: &str) -> DmarcEvidence {
    let names = ancestors(domain);
    let answers = join_all(names.iter().map(|n| {
        let query = format!("_dmarc.{n}");
        async move { dns.txt(&query).await }
    }))
    .await;
    for (i, (name, answer)) in names.iter().zip(answers).enumerate() {
        let lookup = RecordLookup::from_answer(answer, is_dmarc, parse);
        if matches!(lookup, RecordLookup::Missing) {
            continue;
        }
        return DmarcEvidence {
            at: Some(name.clone()),
            inherited: i > 0,
            lookup,
        };
    }
    DmarcEvidence {
        at: None,
        inherited: false,
        lookup: RecordLookup::Missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::fake::FakeDns;
    use crate::net::LookupError;

    fn check(text: &str, expected: Result<(Option<Policy>, Option<Policy>, u8, usize), ()>) {
        let got = parse(text)
            .map(|r| (r.p, r.sp, r.pct, r.rua.len()))
            .map_err(|_| ());
        assert_eq!(got, expected, "{text:?}");
    }

    #[test]
    fn dmarc_records() {
        use Policy::{Quarantine, Reject};
        const NONE: Option<Policy> = Option::None;
        const P_NONE: Policy = Policy::None;
        check("v=DMARC1; p=reject", Ok((Some(Reject), NONE, 100, 0)));
        check(
            "v=DMARC1;p=quarantine;sp=none;pct=50",
            Ok((Some(Quarantine), Some(P_NONE), 50, 0)),
        );
        check(
            "v=DMARC1; p=none; rua=mailto:dmarc@example.com,mailto:x@y.test!10m",
            Ok((Some(P_NONE), NONE, 100, 2)),
        );
        check(
            " v = DMARC1 ;  P = REJECT ; ",
            Ok((Some(Reject), NONE, 100, 0)),
        );
        check("v=DMARC1; p=reject; pct=0", Ok((Some(Reject), NONE, 0, 0)));
        check(
            "v=DMARC1; p=reject; pct=100; adkim=s; aspf=r; fo=1:d; ri=86400; future=x",
            Ok((Some(Reject), NONE, 100, 0)),
        );
        // missing p: parsed, judged by the score
        check(
            "v=DMARC1; rua=mailto:d@example.com",
            Ok((NONE, NONE, 100, 1)),
        );
        // invalid
        check("v=DMARC1; p=block", Err(()));
        check("v=DMARC1; p=reject; pct=101", Err(()));
        check("v=DMARC1; p=reject; pct=-1", Err(()));
        check("v=DMARC1; p=reject; pct=50%", Err(()));
        check("v=DMARC1; p=reject; pct=", Err(()));
        check("v=DMARC1; p=reject; p=none", Err(()));
        check("v=dmarc1; p=reject", Err(()));
        check("p=reject; v=DMARC1", Err(()));
        check("v=DMARC1; p=reject; rua=dmarc@example.com", Err(()));
        check("v=DMARC1; p=reject; rua=mailto:", Err(()));
        check("v=DMARC1; p=reject; adkim=x", Err(()));
        check("v=DMARC1 p=reject", Err(()));
    }

    #[test]
    fn recognising_the_kind() {
        assert!(is_dmarc("v=DMARC1; p=none"));
        assert!(
            is_dmarc("v=dmarc1; p=none"),
            "recognised, then refused by parse with a clear reason"
        );
        assert!(is_dmarc("v = DMARC1"));
        assert!(
            is_dmarc("v=DMARC1 p=reject"),
            "recognised, then refused: tags need `;` between them"
        );
        assert!(!is_dmarc("v=DMARC10; p=none"));
        assert!(!is_dmarc("v=spf1 -all"));
        assert!(!is_dmarc("p=reject; v=DMARC1"));
    }

    fn discover_in(dns: &FakeDns, domain: &str) -> DmarcEvidence {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(discover(dns, domain))
    }

    #[test]
    fn discovery_prefers_the_domain_then_its_parents() {
        let dns = FakeDns::new(&[
            ("_dmarc.example.com", "v=DMARC1; p=quarantine; sp=reject"),
            ("_dmarc.mail.example.com", "v=DMARC1; p=none"),
        ]);
        let own = discover_in(&dns, "mail.example.com");
        assert_eq!(own.at.as_deref(), Some("mail.example.com"));
        assert!(!own.inherited);
        let inherited = discover_in(&dns, "shop.example.com");
        assert_eq!(inherited.at.as_deref(), Some("example.com"));
        assert!(inherited.inherited);
        assert!(matches!(
            inherited.lookup,
            RecordLookup::Found {
                parsed: DmarcRecord {
                    sp: Some(Policy::Reject),
                    ..
                },
                ..
            }
        ));
        let nothing = discover_in(&dns, "other.test");
        assert_eq!(
            nothing,
            DmarcEvidence {
                at: None,
                inherited: false,
                lookup: RecordLookup::Missing
            }
        );
    }

    #[test]
    fn several_records_or_a_failure_stop_discovery() {
        let dns = FakeDns::new(&[
            ("_dmarc.x.test", "v=DMARC1; p=reject"),
            ("_dmarc.x.test", "v=DMARC1; p=none"),
        ]);
        assert!(matches!(
            discover_in(&dns, "x.test").lookup,
            RecordLookup::Multiple(_)
        ));
        let mut failing = FakeDns::new(&[("_dmarc.example.com", "v=DMARC1; p=reject")]);
        failing
            .txt
            .insert("_dmarc.a.example.com".into(), Err(LookupError::Timeout));
        let found = discover_in(&failing, "a.example.com");
        assert_eq!(
            found.lookup,
            RecordLookup::LookupFailed(LookupError::Timeout)
        );
        let other_txt = FakeDns::new(&[("_dmarc.x.test", "some other text")]);
        assert_eq!(
            discover_in(&other_txt, "x.test").lookup,
            RecordLookup::Missing
        );
    }
}
