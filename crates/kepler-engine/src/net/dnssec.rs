//! DNSSEC validation status, read from the validating resolver's proofs.

use std::fmt;

use hickory_resolver::TokioResolver;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::dnssec::Proof;
use hickory_resolver::proto::rr::{Name, RecordType};

use super::records::absolute;
use super::resolver::ValidatingRecipe;

/// The validation status of an answer (RFC 4035 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DnssecStatus {
    /// A chain of signatures leads from the trust anchor to the answer.
    Secure,
    /// Provably unsigned: no chain of trust is expected.
    Insecure,
    /// A chain was expected but does not validate.
    Bogus,
    /// The resolver could not tell (no answer, no DNSSEC data reachable).
    Indeterminate,
}

impl fmt::Display for DnssecStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DnssecStatus::Secure => "secure",
            DnssecStatus::Insecure => "insecure",
            DnssecStatus::Bogus => "bogus",
            DnssecStatus::Indeterminate => "indeterminate",
        })
    }
}

impl From<Proof> for DnssecStatus {
    fn from(p: Proof) -> Self {
        match p {
            Proof::Secure => DnssecStatus::Secure,
            Proof::Insecure => DnssecStatus::Insecure,
            Proof::Bogus => DnssecStatus::Bogus,
            Proof::Indeterminate => DnssecStatus::Indeterminate,
        }
    }
}

impl DnssecStatus {
    /// The status of several answers taken together: one bogus answer makes
    /// the whole bogus; all must be secure to be secure; otherwise insecure
    /// wins over indeterminate, since an unsigned answer is a real finding.
    pub fn combine(statuses: impl IntoIterator<Item = DnssecStatus>) -> DnssecStatus {
        let all: Vec<DnssecStatus> = statuses.into_iter().collect();
        if all.is_empty() {
            DnssecStatus::Indeterminate
        } else if all.contains(&DnssecStatus::Bogus) {
            DnssecStatus::Bogus
        } else if all.iter().all(|s| *s == DnssecStatus::Secure) {
            DnssecStatus::Secure
        } else if all.contains(&DnssecStatus::Insecure) {
            DnssecStatus::Insecure
        } else {
            DnssecStatus::Indeterminate
        }
    }
}

/// Looks `name`/`rtype` up through the validating resolver and reads the proof
/// of the answer records. Negative answers carry no usable proof here (hickory
/// folds secure and insecure NODATA together), so callers ask for records that exist.
///
/// hickory reports a DS or DNSKEY look-up that failed on the network (a lost
/// datagram under load, a timeout) as Bogus, the same proof as a forged
/// signature, and keeps that verdict in its validation cache for up to a
/// minute; a bogus zone loses 60 points. So a Bogus answer is asked once more
/// through a new validating resolver that shares no cache with the first: a
/// broken chain is Bogus again, a lost packet is not. With 1,000 runs in
/// flight, 2 in 1,000 records of a secure zone came out bogus without this
/// (kepler-bench memory, issue 6). A genuinely bogus zone, rare, costs one
/// more walk of its chain.
pub(super) async fn status(
    validating: &TokioResolver,
    recipe: &ValidatingRecipe,
    name: &str,
    rtype: RecordType,
) -> DnssecStatus {
    let Ok(query) = absolute(name) else {
        return DnssecStatus::Indeterminate;
    };
    let first = validate(validating, &query, rtype).await;
    if first != DnssecStatus::Bogus {
        return first;
    }
    match recipe.build() {
        Ok(afresh) => {
            tracing::debug!(%name, %rtype, "bogus DNSSEC answer: validating afresh");
            validate(&afresh, &query, rtype).await
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot build a second validating resolver");
            first
        }
    }
}

async fn validate(validating: &TokioResolver, query: &Name, rtype: RecordType) -> DnssecStatus {
    match validating.lookup(query.clone(), rtype).await {
        Ok(lookup) => DnssecStatus::combine(
            lookup
                .answers()
                .iter()
                .filter(|r| r.record_type() == rtype)
                .map(|r| DnssecStatus::from(r.proof)),
        ),
        Err(NetError::Dns(DnsError::DnssecBogus)) => DnssecStatus::Bogus,
        Err(NetError::Dns(DnsError::Nsec { proof, .. })) => DnssecStatus::from(proof),
        Err(_) => DnssecStatus::Indeterminate,
    }
}

#[cfg(test)]
mod tests {
    use super::DnssecStatus::{self, *};

    #[test]
    fn combining_statuses() {
        let cases: [(&[DnssecStatus], DnssecStatus); 7] = [
            (&[], Indeterminate),
            (&[Secure], Secure),
            (&[Secure, Secure], Secure),
            (&[Secure, Insecure], Insecure),
            (&[Secure, Bogus], Bogus),
            (&[Insecure, Indeterminate], Insecure),
            (&[Indeterminate, Secure], Indeterminate),
        ];
        for (input, expected) in cases {
            assert_eq!(
                DnssecStatus::combine(input.iter().copied()),
                expected,
                "{input:?}"
            );
        }
    }
}
