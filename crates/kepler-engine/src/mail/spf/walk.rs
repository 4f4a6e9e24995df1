//! Walking an SPF policy through `include` and `redirect`, counting what
//! RFC 7208 §4.6.4 limits: DNS-querying terms (10) and void look-ups (2).
//! Sibling terms are resolved concurrently, so the walk takes as many round
//! trips as the policy is deep, not as many as it has terms.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::future::{BoxFuture, join_all};

use super::parse::{self, Mechanism, Qualifier, SpfRecord};
use super::{SpfDns, SpfProblem};

/// Deepest include/redirect nesting followed.
const MAX_DEPTH: usize = 12;
/// Most DNS queries one walk may send, whatever the policy says.
const MAX_QUERIES: usize = 60;
/// Most MX names one `mx` mechanism may have (§4.6.4).
pub const MAX_MX_NAMES: usize = 10;

/// What walking one record (and everything under it) found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// DNS-querying terms (include, a, mx, ptr, exists, redirect).
    pub lookups: u32,
    /// Terms whose look-up gave NXDOMAIN or NODATA.
    pub voids: u32,
    pub problems: Vec<SpfProblem>,
    /// Domains whose records use `ptr`.
    pub ptr_used: Vec<String>,
    /// include/redirect targets whose records were read, in walk order.
    pub visited: Vec<String>,
    /// The final `all` qualifier and the domain whose record holds it.
    pub all: Option<(Qualifier, String)>,
    /// The walk stopped early (depth or query budget).
    pub incomplete: bool,
}

impl Tally {
    fn absorb(&mut self, other: Tally) {
        self.lookups += other.lookups;
        self.voids += other.voids;
        self.problems.extend(other.problems);
        self.ptr_used.extend(other.ptr_used);
        self.visited.extend(other.visited);
        self.incomplete |= other.incomplete;
    }
}

/// Shared by one walk's branches: the query budget.
#[derive(Debug, Default)]
pub(super) struct Budget(AtomicUsize);

impl Budget {
    /// Takes one query from the budget; false when it is spent.
    fn take(&self) -> bool {
        self.0.fetch_add(1, Ordering::Relaxed) < MAX_QUERIES
    }
}

/// How a target's TXT answer resolved to one SPF record.
enum Fetched {
    Record(SpfRecord),
    Problem { problem: SpfProblem, void: bool },
}

async fn fetch(dns: &dyn SpfDns, target: &str, via: &'static str) -> Fetched {
    match dns.txt(target).await {
        Err(e) if e.is_void() => Fetched::Problem {
            problem: SpfProblem::TargetWithoutRecord {
                domain: target.to_owned(),
                via,
            },
            void: true,
        },
        Err(e) => Fetched::Problem {
            problem: SpfProblem::TargetLookupFailed {
                domain: target.to_owned(),
                error: e,
            },
            void: false,
        },
        Ok(txts) => {
            let spf: Vec<&String> = txts.iter().filter(|t| parse::is_spf(t)).collect();
            match spf.as_slice() {
                [] => Fetched::Problem {
                    problem: SpfProblem::TargetWithoutRecord {
                        domain: target.to_owned(),
                        via,
                    },
                    void: false,
                },
                [one] => match parse::parse(one) {
                    Ok(r) => Fetched::Record(r),
                    Err(reason) => Fetched::Problem {
                        problem: SpfProblem::Syntax {
                            domain: target.to_owned(),
                            reason,
                        },
                        void: false,
                    },
                },
                _ => Fetched::Problem {
                    problem: SpfProblem::TargetMultipleRecords {
                        domain: target.to_owned(),
                        count: spf.len(),
                    },
                    void: false,
                },
            }
        }
    }
}

/// Walks into `target` (an include or redirect) from a record on `path`.
fn descend<'a>(
    dns: &'a dyn SpfDns,
    target: String,
    via: &'static str,
    path: Vec<String>,
    budget: Arc<Budget>,
) -> BoxFuture<'a, Tally> {
    Box::pin(async move {
        let mut tally = Tally::default();
        if path.contains(&target) {
            tally.problems.push(SpfProblem::Loop {
                chain: [path, vec![target]].concat(),
            });
            return tally;
        }
        if path.len() >= MAX_DEPTH || !budget.take() {
            tally.incomplete = true;
            return tally;
        }
        match fetch(dns, &target, via).await {
            Fetched::Problem { problem, void } => {
                tally.voids += u32::from(void);
                tally.problems.push(problem);
            }
            Fetched::Record(record) => {
                tally.visited.push(target.clone());
                let mut path = path;
                path.push(target.clone());
                tally.absorb_with_all(walk_record(dns, target, record, path, budget).await);
            }
        }
        tally
    })
}

impl Tally {
    /// Like `absorb`, but also takes the sub-walk's final `all` (for redirects).
    fn absorb_with_all(&mut self, other: Tally) {
        let all = other.all.clone();
        self.absorb(other);
        self.all = all;
    }
}

/// Resolves one `a`/`mx`/`exists` term to see whether it is void.
async fn probe_term(
    dns: &dyn SpfDns,
    domain: &str,
    mechanism: &Mechanism,
    budget: &Budget,
) -> Tally {
    let mut tally = Tally::default();
    let (spec, is_mx) = match mechanism {
        Mechanism::A(spec) => (spec.as_deref(), false),
        Mechanism::Mx(spec) => (spec.as_deref(), true),
        Mechanism::Exists(spec) => (Some(spec.as_str()), false),
        _ => return tally,
    };
    // Sender-dependent macros cannot be resolved ahead of a message.
    let Some(target) = spec.map_or(Some(domain.to_owned()), |s| parse::expand_static(s, domain))
    else {
        return tally;
    };
    if !budget.take() {
        tally.incomplete = true;
        return tally;
    }
    if is_mx {
        match dns.mx(&target).await {
            Ok(names) if names.len() > MAX_MX_NAMES => {
                tally.problems.push(SpfProblem::TooManyMxNames {
                    domain: target,
                    count: names.len(),
                })
            }
            Ok(names) if names.is_empty() => tally.voids += 1,
            Ok(_) => {}
            Err(e) if e.is_void() => tally.voids += 1,
            Err(_) => {}
        }
    } else {
        match dns.addresses(&target).await {
            Ok(0) => tally.voids += 1,
            Ok(_) => {}
            Err(e) if e.is_void() => tally.voids += 1,
            Err(_) => {}
        }
    }
    tally
}

/// Counts and follows every term of `record`, which belongs to `domain`.
pub(super) fn walk_record<'a>(
    dns: &'a dyn SpfDns,
    domain: String,
    record: SpfRecord,
    path: Vec<String>,
    budget: Arc<Budget>,
) -> BoxFuture<'a, Tally> {
    Box::pin(async move {
        let mut tally = Tally::default();
        let redirect = record.effective_redirect().map(str::to_owned);
        tally.lookups = record
            .directives
            .iter()
            .filter(|d| d.mechanism.queries_dns())
            .count() as u32
            + u32::from(redirect.is_some());
        if record
            .directives
            .iter()
            .any(|d| matches!(d.mechanism, Mechanism::Ptr(_)))
        {
            tally.ptr_used.push(domain.clone());
        }

        let includes = record.directives.iter().filter_map(|d| match &d.mechanism {
            Mechanism::Include(spec) => Some(spec.clone()),
            _ => None,
        });
        let include_walks = join_all(includes.map(|spec| {
            let path = path.clone();
            let budget = budget.clone();
            let target = parse::expand_static(&spec, &domain);
            async move {
                match target {
                    Some(t) => descend(dns, t, "include", path, budget).await,
                    None => Tally::default(),
                }
            }
        }));
        let term_probes = join_all(
            record
                .directives
                .iter()
                .map(|d| probe_term(dns, &domain, &d.mechanism, &budget)),
        );
        let redirect_walk = async {
            match redirect
                .as_deref()
                .and_then(|r| parse::expand_static(r, &domain))
            {
                Some(target) => {
                    Some(descend(dns, target, "redirect", path.clone(), budget.clone()).await)
                }
                None => None,
            }
        };
        let (includes, probes, redirected) =
            tokio::join!(include_walks, term_probes, redirect_walk);

        for t in includes.into_iter().chain(probes) {
            tally.absorb(t);
        }
        tally.all = record.all().map(|q| (q, domain.clone()));
        if let Some(r) = redirected {
            // The redirect target's result is the record's result (§6.1).
            tally.absorb_with_all(r);
        }
        tally
    })
}
