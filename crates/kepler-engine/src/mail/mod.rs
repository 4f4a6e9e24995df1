//! The `email` area: MX / null MX, SPF, DMARC, MTA-STS and TLS-RPT.
//!
//! `probe` asks every independent question at once (the SPF walk then goes as
//! deep as the policy) and fetches the MTA-STS policy file alongside the TXT
//! look-ups; `score` is pure.

pub mod dmarc;
pub mod mta_sts;
mod record;
mod score;
pub mod spf;
pub mod tlsrpt;

#[cfg(test)]
pub(crate) mod fake;

use std::pin::pin;
use std::time::Duration;

use futures::future::{BoxFuture, Either, select};
use kepler_core::Domain;

use crate::net::{LookupError, MxRecord, Net};

pub use dmarc::DmarcEvidence;
pub use record::RecordLookup;
pub use score::{points, score};
pub use spf::SpfEvidence;

/// The DNS questions the mail area asks; `Net` answers them for real, tests from a table.
pub trait MailDns: Send + Sync {
    /// TXT strings at `name`, one per record.
    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<String>, LookupError>>;
    /// How many A and AAAA addresses `name` has (void when none).
    fn addresses<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<usize, LookupError>>;
    /// The MX records of `name`.
    fn mx<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<MxRecord>, LookupError>>;
}

impl MailDns for Net {
    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<String>, LookupError>> {
        Box::pin(Net::txt(self, name))
    }

    fn addresses<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<usize, LookupError>> {
        Box::pin(async move {
            let found = Net::addresses(self, name).await;
            let count = found.addresses().len();
            if count > 0 {
                return Ok(count);
            }
            // Both families empty: a failure if any, else NXDOMAIN or NODATA.
            let failure = [&found.v4, &found.v6]
                .into_iter()
                .find_map(|r| r.as_ref().err().filter(|e| !e.is_void()));
            match failure {
                Some(e) => Err(e.clone()),
                None if found.is_nxdomain() => Err(LookupError::NxDomain),
                None => Err(LookupError::NoRecords),
            }
        })
    }

    fn mx<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<MxRecord>, LookupError>> {
        Box::pin(Net::mx(self, name))
    }
}

/// An HTTP response as the MTA-STS check needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// Fetches one HTTPS URL without following redirects (RFC 8461 §3.3).
pub trait PolicySource: Send + Sync {
    fn get<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<PolicyResponse, String>>;
}

/// What the MX look-up found.
#[derive(Debug, Clone, PartialEq)]
pub enum MxEvidence {
    LookupFailed(LookupError),
    /// No MX records: senders fall back to the address records (RFC 5321 §5.1).
    None,
    /// The null MX of RFC 7505: a single `0 .`, "this domain takes no mail".
    Null,
    /// A null MX alongside other records, or `.` with a preference other than 0.
    NullMixed(Vec<MxRecord>),
    /// Real mail exchangers.
    Hosts(Vec<MxRecord>),
}

impl MxEvidence {
    fn from_answer(answer: Result<Vec<MxRecord>, LookupError>) -> MxEvidence {
        match answer {
            Err(e) if e.is_void() => MxEvidence::None,
            Err(e) => MxEvidence::LookupFailed(e),
            Ok(records) => {
                let nulls = records.iter().filter(|r| r.exchange.is_empty()).count();
                match (records.as_slice(), nulls) {
                    ([], _) => MxEvidence::None,
                    ([only], 1) if only.preference == 0 => MxEvidence::Null,
                    (_, 0) => MxEvidence::Hosts(records),
                    _ => MxEvidence::NullMixed(records),
                }
            }
        }
    }

    /// Whether the domain takes mail; `None` when the look-up failed.
    pub fn receives_mail(&self) -> Option<bool> {
        match self {
            MxEvidence::LookupFailed(_) => None,
            MxEvidence::None | MxEvidence::Null => Some(false),
            MxEvidence::NullMixed(records) => Some(records.iter().any(|r| !r.exchange.is_empty())),
            MxEvidence::Hosts(_) => Some(true),
        }
    }

    /// The real mail exchanger names.
    pub fn hosts(&self) -> Vec<String> {
        match self {
            MxEvidence::Hosts(r) | MxEvidence::NullMixed(r) => r
                .iter()
                .filter(|m| !m.exchange.is_empty())
                .map(|m| m.exchange.clone())
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// The policy file as fetched: `None` when it was not looked at.
pub type PolicyFetch = Option<Result<mta_sts::Policy, String>>;

/// Everything the email area looked at.
#[derive(Debug, Clone, PartialEq)]
pub struct MailEvidence {
    pub domain: String,
    pub mx: MxEvidence,
    pub spf: SpfEvidence,
    pub dmarc: DmarcEvidence,
    pub mta_sts: RecordLookup<String>,
    /// The policy file, fetched only when the TXT record is present and a
    /// policy source is available.
    pub mta_sts_policy: PolicyFetch,
    pub tlsrpt: RecordLookup<Vec<String>>,
}

/// The MTA-STS TXT record and, when it is there, the policy file. The fetch
/// starts with the TXT look-up so a present policy costs no extra round trips,
/// and is dropped as soon as the TXT answer shows there is no record.
async fn mta_sts(
    dns: &dyn MailDns,
    web: Option<&dyn PolicySource>,
    domain: &str,
    fetch_limit: Duration,
) -> (RecordLookup<String>, PolicyFetch) {
    let txt_name = format!("_mta-sts.{domain}");
    let txt = dns.txt(&txt_name);
    let sort = |answer| RecordLookup::from_answer(answer, mta_sts::is_sts_txt, mta_sts::parse_txt);
    let Some(web) = web else {
        return (sort(txt.await), None);
    };
    let url = mta_sts::policy_url(domain);
    let fetch = async {
        match tokio::time::timeout(fetch_limit, web.get(&url)).await {
            Err(_) => Err(format!(
                "fetching {url} did not finish within {}",
                crate::model::humanize(fetch_limit)
            )),
            Ok(Err(e)) => Err(format!("fetching {url} failed: {e}")),
            Ok(Ok(response)) => {
                mta_sts::read_response(&response).map_err(|e| format!("{url}: {e}"))
            }
        }
    };
    match select(pin!(txt), pin!(fetch)).await {
        Either::Left((answer, fetch)) => {
            let lookup = sort(answer);
            let policy = if lookup.is_present() {
                Some(fetch.await)
            } else {
                None
            };
            (lookup, policy)
        }
        Either::Right((policy, txt)) => {
            let lookup = sort(txt.await);
            let policy = lookup.is_present().then_some(policy);
            (lookup, policy)
        }
    }
}

/// Looks at the domain's mail configuration. `web` fetches the MTA-STS policy
/// file; without it the policy check reports that it could not look.
pub async fn probe(
    dns: &dyn MailDns,
    web: Option<&dyn PolicySource>,
    domain: &Domain,
    fetch_limit: Duration,
) -> MailEvidence {
    let name = domain.as_str();
    let tlsrpt_name = format!("_smtp._tls.{name}");
    let (mx, spf, dmarc, (mta_sts, mta_sts_policy), tlsrpt) = tokio::join!(
        dns.mx(name),
        spf::analyze(dns, name),
        dmarc::discover(dns, name),
        mta_sts(dns, web, name, fetch_limit),
        dns.txt(&tlsrpt_name),
    );
    MailEvidence {
        domain: name.to_owned(),
        mx: MxEvidence::from_answer(mx),
        spf,
        dmarc,
        mta_sts,
        mta_sts_policy,
        tlsrpt: RecordLookup::from_answer(tlsrpt, tlsrpt::is_tlsrpt, tlsrpt::parse),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::fake::{FakeDns, FakeWeb};

    fn mx(preference: u16, exchange: &str) -> MxRecord {
        MxRecord {
            preference,
            exchange: exchange.to_owned(),
        }
    }

    #[test]
    fn null_mx_is_recognised() {
        let cases = [
            (Ok(vec![mx(0, "")]), Some(false), "null"),
            (Ok(vec![mx(10, "")]), Some(false), "mixed"),
            (
                Ok(vec![mx(0, ""), mx(10, "mail.x.test")]),
                Some(true),
                "mixed",
            ),
            (Ok(vec![mx(10, "mail.x.test")]), Some(true), "hosts"),
            (Err(LookupError::NoRecords), Some(false), "none"),
            (Err(LookupError::Timeout), None, "failed"),
        ];
        for (answer, receives, kind) in cases {
            let e = MxEvidence::from_answer(answer.clone());
            let got = match e {
                MxEvidence::Null => "null",
                MxEvidence::NullMixed(_) => "mixed",
                MxEvidence::Hosts(_) => "hosts",
                MxEvidence::None => "none",
                MxEvidence::LookupFailed(_) => "failed",
            };
            assert_eq!((got, e.receives_mail()), (kind, receives), "{answer:?}");
        }
    }

    fn run(dns: &FakeDns, web: Option<&FakeWeb>, domain: &str) -> MailEvidence {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let domain = Domain::parse(domain).expect("domain");
        rt.block_on(probe(
            dns,
            web.map(|w| w as &dyn PolicySource),
            &domain,
            Duration::from_secs(1),
        ))
    }

    #[test]
    fn the_policy_file_is_read_only_when_the_txt_record_is_there() {
        let policy = "version: STSv1\nmode: enforce\nmx: mail.x.test\nmax_age: 604800\n";
        let web = FakeWeb::default()
            .with_policy("https://mta-sts.x.test/.well-known/mta-sts.txt", policy);
        let without = FakeDns::default();
        assert_eq!(run(&without, Some(&web), "x.test").mta_sts_policy, None);
        let with = FakeDns::new(&[("_mta-sts.x.test", "v=STSv1; id=1")]);
        let e = run(&with, Some(&web), "x.test");
        assert!(matches!(e.mta_sts, RecordLookup::Found { .. }));
        assert!(matches!(
            e.mta_sts_policy,
            Some(Ok(mta_sts::Policy {
                mode: mta_sts::Mode::Enforce,
                ..
            }))
        ));
        let unreachable = run(&with, Some(&FakeWeb::default()), "x.test");
        assert!(matches!(unreachable.mta_sts_policy, Some(Err(_))));
        assert_eq!(run(&with, None, "x.test").mta_sts_policy, None);
    }
}
