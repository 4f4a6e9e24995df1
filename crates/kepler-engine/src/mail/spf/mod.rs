//! SPF (RFC 7208): finding the one record, its syntax, and the walk through
//! `include`/`redirect` that the DNS limits are counted over.

pub mod parse;
mod walk;

use std::fmt;
use std::sync::Arc;

use super::MailDns as SpfDns;
use crate::net::LookupError;

pub use parse::{Qualifier, SpfRecord};
pub use walk::{MAX_MX_NAMES, Tally};

/// Something wrong found while walking the policy.
#[derive(Debug, Clone, PartialEq)]
pub enum SpfProblem {
    /// A record (the domain's own or an included one) does not parse: permerror.
    Syntax { domain: String, reason: String },
    /// include/redirect leads back to a domain already on the path.
    Loop { chain: Vec<String> },
    /// An include or redirect target has no SPF record: permerror (§5.2, §6.1).
    TargetWithoutRecord { domain: String, via: &'static str },
    /// An include or redirect target has several SPF records: permerror.
    TargetMultipleRecords { domain: String, count: usize },
    /// An include or redirect target could not be looked up.
    TargetLookupFailed { domain: String, error: LookupError },
    /// An `mx` mechanism names more than 10 mail exchangers: permerror (§4.6.4).
    TooManyMxNames { domain: String, count: usize },
}

impl fmt::Display for SpfProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpfProblem::Syntax { domain, reason } => {
                write!(f, "the SPF record of {domain} is invalid: {reason}")
            }
            SpfProblem::Loop { chain } => write!(f, "include/redirect loop: {}", chain.join(" → ")),
            SpfProblem::TargetWithoutRecord { domain, via } => {
                write!(f, "{via} target {domain} has no SPF record")
            }
            SpfProblem::TargetMultipleRecords { domain, count } => {
                write!(
                    f,
                    "{domain} has {count} SPF records (exactly one is allowed)"
                )
            }
            SpfProblem::TargetLookupFailed { domain, error } => {
                write!(f, "could not look up {domain}: {error}")
            }
            SpfProblem::TooManyMxNames { domain, count } => {
                write!(
                    f,
                    "mx:{domain} has {count} mail exchangers (at most {MAX_MX_NAMES} are evaluated)"
                )
            }
        }
    }
}

/// What the SPF part of the email area found at the domain.
#[derive(Debug, Clone, PartialEq)]
pub enum SpfEvidence {
    /// The TXT look-up itself failed.
    LookupFailed(LookupError),
    /// No `v=spf1` record.
    Missing,
    /// Several `v=spf1` records: permerror.
    Multiple(Vec<String>),
    /// One record that does not parse: permerror.
    Invalid { record: String, reason: String },
    /// One record, walked.
    Found { record: String, tally: Tally },
}

/// Finds and walks `domain`'s SPF policy.
pub async fn analyze(dns: &dyn SpfDns, domain: &str) -> SpfEvidence {
    let txts = match dns.txt(domain).await {
        Ok(t) => t,
        Err(e) if e.is_void() => return SpfEvidence::Missing,
        Err(e) => return SpfEvidence::LookupFailed(e),
    };
    let spf: Vec<String> = txts.into_iter().filter(|t| parse::is_spf(t)).collect();
    let record = match spf.as_slice() {
        [] => return SpfEvidence::Missing,
        [one] => one.clone(),
        _ => return SpfEvidence::Multiple(spf),
    };
    let parsed = match parse::parse(&record) {
        Ok(p) => p,
        Err(reason) => return SpfEvidence::Invalid { record, reason },
    };
    let budget = Arc::new(walk::Budget::default());
    let tally = walk::walk_record(
        dns,
        domain.to_owned(),
        parsed,
        vec![domain.to_owned()],
        budget,
    )
    .await;
    SpfEvidence::Found { record, tally }
}

#[cfg(test)]
mod tests;
