//! The `email` category model. Every number here is mirrored in docs/scoring/email.md.

use kepler_core::{Category, CategoryId, Check, CheckStatus};

use super::dmarc::{DmarcRecord, Policy};
use super::mta_sts::{self, Mode};
use super::spf::{Qualifier, SpfEvidence, Tally};
use super::{MailEvidence, MxEvidence, RecordLookup};
use crate::model::{check, deduction_category, error, info, pass};

/// Points of each finding (deductions from 100).
pub mod points {
    crate::point_table! {
        /// No MX and no null MX: senders fall back to the A/AAAA records.
        MX_MISSING = -5;
        /// A null MX mixed with other MX records (or `.` with a non-zero preference).
        MX_NULL_MIXED = -10;

        /// No SPF record: anyone may send as the domain.
        SPF_MISSING = -30;
        /// Several SPF records: permerror, receivers ignore them all.
        SPF_MULTIPLE = -30;
        /// The SPF record does not parse: permerror.
        SPF_INVALID = -30;
        /// The final qualifier is `+all`: every host on the internet passes.
        SPF_ALL_PASS = -30;
        /// The final qualifier is `?all`, or there is none (neutral by default).
        SPF_ALL_NEUTRAL = -15;
        /// The final qualifier is `~all` (soft fail).
        SPF_ALL_SOFTFAIL = -5;
        /// More than 10 DNS-querying terms: permerror.
        SPF_LOOKUP_LIMIT = -20;
        /// More than 2 void look-ups: permerror.
        SPF_VOID_LIMIT = -10;
        /// A loop, or an include/redirect target without exactly one valid record: permerror.
        SPF_INCLUDES_BROKEN = -20;
        /// The `ptr` mechanism is used (RFC 7208 §5.5: SHOULD NOT).
        SPF_PTR = -5;

        /// No DMARC record for the domain or its parents.
        DMARC_MISSING = -35;
        /// Several DMARC records: no DMARC processing at all.
        DMARC_MULTIPLE = -35;
        /// The DMARC record does not parse.
        DMARC_INVALID = -35;
        /// The record has no `p` tag: nothing is enforced.
        DMARC_P_MISSING = -35;
        /// `p=none`: failing mail is delivered as usual.
        DMARC_P_NONE = -20;
        /// `p=quarantine`: good; `reject` is better.
        DMARC_P_QUARANTINE = -5;
        /// `sp` is weaker than `p`: subdomains are easier to spoof.
        DMARC_SP_WEAKER = -5;
        /// `pct` below 100: the policy applies only to part of the failing mail.
        DMARC_PCT_PARTIAL = -5;

        /// A domain that takes mail publishes no MTA-STS record.
        MTA_STS_MISSING = -10;
        /// The MTA-STS TXT record is malformed or duplicated.
        MTA_STS_INVALID = -10;
        /// The policy file cannot be fetched or read.
        MTA_STS_POLICY_UNAVAILABLE = -10;
        /// `mode: testing`: failures are reported, not prevented.
        MTA_STS_MODE_TESTING = -5;
        /// `mode: none`: the policy is switched off.
        MTA_STS_MODE_NONE = -10;
        /// An MX host matches no `mx` pattern: enforcing senders refuse to deliver to it.
        MTA_STS_MX_MISMATCH = -10;
        /// `max_age` under one day.
        MTA_STS_MAX_AGE_SHORT = -5;
        /// A domain that takes mail publishes no TLS-RPT record.
        TLSRPT_MISSING = -5;
        /// The TLS-RPT record is malformed or duplicated.
        TLSRPT_INVALID = -5;
    }
}

/// `max_age` below this is "short" (one day).
pub const MTA_STS_MIN_MAX_AGE: u64 = 86_400;

/// Scores the evidence of the email area.
pub fn score(e: &MailEvidence) -> Category {
    let mut checks = vec![mx(e)];
    checks.extend(spf(&e.spf));
    checks.extend(dmarc(e));
    checks.extend(mta_sts_checks(e));
    checks.push(tlsrpt(e));
    deduction_category(CategoryId::Email, checks)
}

fn mx(e: &MailEvidence) -> Check {
    let list = |records: &[crate::net::MxRecord]| {
        records
            .iter()
            .map(|r| {
                format!(
                    "{} {}",
                    r.preference,
                    if r.exchange.is_empty() {
                        "."
                    } else {
                        &r.exchange
                    }
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    match &e.mx {
        MxEvidence::LookupFailed(err) => error(
            "mx",
            format!("the MX look-up failed: {err}"),
            "If this repeats, check that your name servers answer MX queries for the domain.",
        ),
        MxEvidence::Null => pass(
            "mx",
            format!(
                "null MX (0 .): {} declares that it takes no mail (RFC 7505)",
                e.domain
            ),
            "Keep the null MX while the domain takes no mail; replace it with real MX records before you start receiving.",
        ),
        MxEvidence::Hosts(records) => pass(
            "mx",
            format!("MX: {}", list(records)),
            "Keep every MX host answering on port 25 with STARTTLS, and update the MTA-STS policy when you change them.",
        ),
        MxEvidence::None => check(
            "mx",
            CheckStatus::Warn,
            points::MX_MISSING,
            format!(
                "{} has no MX record; senders fall back to its address records",
                e.domain
            ),
            "Publish MX records for your mail servers, or a null MX (`MX 0 .`, RFC 7505) if the domain takes no mail.",
        ),
        MxEvidence::NullMixed(records) => check(
            "mx",
            CheckStatus::Fail,
            points::MX_NULL_MIXED,
            format!(
                "MX: {} — a null MX must be the only MX record, with preference 0",
                list(records)
            ),
            "Either remove the `.` MX record or make `0 .` the only MX record.",
        ),
    }
}

fn spf(e: &SpfEvidence) -> Vec<Check> {
    let (record, tally) = match e {
        SpfEvidence::LookupFailed(err) => {
            return vec![error(
                "spf",
                format!("the TXT look-up failed: {err}"),
                "If this repeats, check that your name servers answer TXT queries for the domain.",
            )];
        }
        SpfEvidence::Missing => {
            return vec![check(
                "spf",
                CheckStatus::Fail,
                points::SPF_MISSING,
                "no SPF (v=spf1) record",
                "Publish one TXT record `v=spf1 ... -all` listing the hosts that send your mail (`v=spf1 -all` if none do).",
            )];
        }
        SpfEvidence::Multiple(records) => {
            return vec![check(
                "spf",
                CheckStatus::Fail,
                points::SPF_MULTIPLE,
                format!(
                    "{} SPF records (receivers treat this as a permanent error): {}",
                    records.len(),
                    records.join(" | ")
                ),
                "Merge them into a single v=spf1 record.",
            )];
        }
        SpfEvidence::Invalid { record, reason } => {
            return vec![check(
                "spf",
                CheckStatus::Fail,
                points::SPF_INVALID,
                format!("{record:?} is invalid: {reason}"),
                "Fix the record's syntax (RFC 7208 §12); receivers treat it as a permanent error.",
            )];
        }
        SpfEvidence::Found { record, tally } => (record, tally),
    };
    vec![
        pass(
            "spf",
            format!("one SPF record: {record:?}"),
            "Keep a single SPF record; add new senders with include: and stay under 10 DNS look-ups.",
        ),
        spf_all(tally),
        spf_lookups(tally),
        spf_voids(tally),
        spf_includes(tally),
        spf_ptr(tally),
    ]
}

fn spf_all(t: &Tally) -> Check {
    let Some((qualifier, at)) = &t.all else {
        return check(
            "spf-all",
            CheckStatus::Fail,
            points::SPF_ALL_NEUTRAL,
            "no final `all` mechanism (and no redirect): unmatched senders get a neutral result",
            "End the record with `-all` so mail from unlisted hosts fails SPF.",
        );
    };
    let seen = format!(
        "final qualifier {}all (in the record of {at})",
        qualifier.symbol()
    );
    match qualifier {
        Qualifier::Fail => pass(
            "spf-all",
            seen,
            "Keep `-all`; list every new sending service before it sends, or its mail fails SPF.",
        ),
        Qualifier::SoftFail => check(
            "spf-all",
            CheckStatus::Warn,
            points::SPF_ALL_SOFTFAIL,
            seen,
            "Once every sender is listed, change `~all` to `-all`.",
        ),
        Qualifier::Neutral => check(
            "spf-all",
            CheckStatus::Fail,
            points::SPF_ALL_NEUTRAL,
            seen,
            "Change `?all` to `-all` (or `~all` while you finish listing senders).",
        ),
        Qualifier::Pass => check(
            "spf-all",
            CheckStatus::Fail,
            points::SPF_ALL_PASS,
            format!("{seen}: every host on the internet passes SPF"),
            "Replace `+all` with `-all`.",
        ),
    }
}

fn incomplete_note(t: &Tally) -> &'static str {
    if t.incomplete {
        " (the walk stopped early; the real count is higher)"
    } else {
        ""
    }
}

fn spf_lookups(t: &Tally) -> Check {
    let seen = format!(
        "{} DNS-querying terms counted through include/redirect{}",
        t.lookups,
        incomplete_note(t)
    );
    if t.lookups <= 10 {
        pass(
            "spf-lookups",
            format!("{seen}; the limit is 10"),
            "Recount after every new include: (providers' includes nest); use ip4:/ip6: for your own servers.",
        )
    } else {
        check(
            "spf-lookups",
            CheckStatus::Fail,
            points::SPF_LOOKUP_LIMIT,
            format!(
                "{seen}: over the limit of 10 (RFC 7208 §4.6.4), so receivers return permerror"
            ),
            "Flatten includes or replace `a`/`mx`/`include` terms by ip4:/ip6: ranges until at most 10 remain.",
        )
    }
}

fn spf_voids(t: &Tally) -> Check {
    let seen = format!(
        "{} void look-ups (NXDOMAIN or no data){}",
        t.voids,
        incomplete_note(t)
    );
    if t.voids <= 2 {
        pass(
            "spf-void-lookups",
            format!("{seen}; the limit is 2"),
            "Remove include:, a and mx terms as soon as their target names stop existing.",
        )
    } else {
        check(
            "spf-void-lookups",
            CheckStatus::Fail,
            points::SPF_VOID_LIMIT,
            format!(
                "{seen}: over the limit of 2 (RFC 7208 §4.6.4), so receivers may return permerror"
            ),
            "Remove terms that point at names without records.",
        )
    }
}

fn spf_includes(t: &Tally) -> Check {
    if t.problems.is_empty() {
        let followed = if t.visited.is_empty() {
            "none".to_owned()
        } else {
            t.visited.join(", ")
        };
        pass(
            "spf-includes",
            format!("every include/redirect resolves to one valid record (followed: {followed})"),
            "When a provider renames or retires its SPF include, update yours at once: a broken include fails every message.",
        )
    } else {
        let seen: Vec<String> = t.problems.iter().map(ToString::to_string).collect();
        check(
            "spf-includes",
            CheckStatus::Fail,
            points::SPF_INCLUDES_BROKEN,
            seen.join("; "),
            "Fix or remove the broken include/redirect targets; each must have exactly one valid SPF record and no loop.",
        )
    }
}

fn spf_ptr(t: &Tally) -> Check {
    if t.ptr_used.is_empty() {
        pass(
            "spf-ptr",
            "no `ptr` mechanism",
            "Keep `ptr` out of the record; list senders with ip4:, ip6: or include:.",
        )
    } else {
        check(
            "spf-ptr",
            CheckStatus::Warn,
            points::SPF_PTR,
            format!("`ptr` used in the record of {}", t.ptr_used.join(", ")),
            "Replace `ptr` by ip4:/ip6: ranges; it is slow, unreliable and RFC 7208 §5.5 says not to use it.",
        )
    }
}

fn dmarc(e: &MailEvidence) -> Vec<Check> {
    let d = &e.dmarc;
    let at = d.at.as_deref().unwrap_or(&e.domain);
    let (record, parsed) = match &d.lookup {
        RecordLookup::LookupFailed(err) => {
            return vec![error(
                "dmarc",
                format!("the _dmarc TXT look-up failed: {err}"),
                "If this repeats, check that your name servers answer TXT queries for _dmarc names.",
            )];
        }
        RecordLookup::Missing => {
            return vec![check(
                "dmarc",
                CheckStatus::Fail,
                points::DMARC_MISSING,
                format!(
                    "no DMARC record at _dmarc.{} or any parent domain",
                    e.domain
                ),
                "Publish `_dmarc` TXT `v=DMARC1; p=reject; rua=mailto:...` (start with p=none while you watch the reports).",
            )];
        }
        RecordLookup::Multiple(records) => {
            return vec![check(
                "dmarc",
                CheckStatus::Fail,
                points::DMARC_MULTIPLE,
                format!(
                    "{} DMARC records at _dmarc.{at}; receivers apply none of them: {}",
                    records.len(),
                    records.join(" | ")
                ),
                "Keep exactly one DMARC record.",
            )];
        }
        RecordLookup::Invalid { record, reason } => {
            return vec![check(
                "dmarc",
                CheckStatus::Fail,
                points::DMARC_INVALID,
                format!("_dmarc.{at}: {record:?} is invalid: {reason}"),
                "Fix the record's syntax (RFC 7489 §6.4).",
            )];
        }
        RecordLookup::Found { record, parsed } => (record, parsed),
    };
    let source = if d.inherited {
        format!("inherited from _dmarc.{at} (organisational domain)")
    } else {
        format!("_dmarc.{at}")
    };
    vec![
        pass(
            "dmarc",
            format!("{source}: {record:?}"),
            "Keep exactly one record at _dmarc; edit its tags in place rather than adding a second record.",
        ),
        dmarc_policy(parsed, d.inherited),
        dmarc_subdomains(parsed),
        dmarc_pct(parsed),
        dmarc_rua(parsed),
    ]
}

fn dmarc_policy(r: &DmarcRecord, inherited: bool) -> Check {
    // A record inherited from a parent applies to this domain through `sp`.
    let (effective, how) = if inherited {
        (r.subdomain_policy(), "sp (or p) of the parent")
    } else {
        (r.p, "p")
    };
    match effective {
        None => check(
            "dmarc-policy",
            CheckStatus::Fail,
            points::DMARC_P_MISSING,
            "the record has no p tag, so it requests nothing",
            "Add `p=reject` (or `p=quarantine`).",
        ),
        Some(Policy::Reject) => pass(
            "dmarc-policy",
            format!("{how}=reject: failing mail is refused"),
            "Keep p=reject; authenticate every new sending service with SPF or DKIM before it goes live.",
        ),
        Some(Policy::Quarantine) => check(
            "dmarc-policy",
            CheckStatus::Warn,
            points::DMARC_P_QUARANTINE,
            format!("{how}=quarantine: failing mail goes to spam"),
            "Move to `p=reject` once reports show legitimate mail passes.",
        ),
        Some(Policy::None) => check(
            "dmarc-policy",
            CheckStatus::Fail,
            points::DMARC_P_NONE,
            format!("{how}=none: failing mail is delivered as usual (monitoring only)"),
            "Move to `p=quarantine`, then `p=reject`, once reports show legitimate mail passes.",
        ),
    }
}

fn dmarc_subdomains(r: &DmarcRecord) -> Check {
    match (r.p, r.subdomain_policy()) {
        (Some(p), Some(sp)) if sp < p => check(
            "dmarc-subdomain-policy",
            CheckStatus::Warn,
            points::DMARC_SP_WEAKER,
            format!("sp={sp} is weaker than p={p}: subdomains are easier to spoof"),
            "Set `sp` to the same policy as `p` (or drop it: subdomains then inherit `p`).",
        ),
        (_, Some(sp)) => pass(
            "dmarc-subdomain-policy",
            format!("subdomains get {sp}"),
            "Keep sp at least as strict as p; a subdomain that sends mail needs its own SPF and DKIM.",
        ),
        (_, None) => info(
            "dmarc-subdomain-policy",
            "no policy for subdomains (no p or sp tag)",
            "Subdomains get no policy until the record has one: adding p (see dmarc-policy) covers them too.",
        ),
    }
}

fn dmarc_pct(r: &DmarcRecord) -> Check {
    let enforcing = matches!(r.p, Some(Policy::Quarantine | Policy::Reject));
    if r.pct == 100 {
        pass(
            "dmarc-pct",
            "pct=100: the policy covers all failing mail",
            "Keep pct at 100 (or leave it out): a lower value lets part of the failing mail through.",
        )
    } else if !enforcing {
        info(
            "dmarc-pct",
            format!("pct={} (no effect without an enforcing policy)", r.pct),
            "pct counts only once p is quarantine or reject; set it to 100 (or remove it) when you enforce.",
        )
    } else {
        check(
            "dmarc-pct",
            CheckStatus::Warn,
            points::DMARC_PCT_PARTIAL,
            format!(
                "pct={}: only that share of failing mail gets the policy",
                r.pct
            ),
            "Raise pct to 100 (or remove it).",
        )
    }
}

fn dmarc_rua(r: &DmarcRecord) -> Check {
    if r.rua.is_empty() {
        check(
            "dmarc-rua",
            CheckStatus::Warn,
            0,
            "no rua tag: no aggregate reports are requested",
            "Add `rua=mailto:...` to learn who sends mail as your domain (advice only: no points).",
        )
    } else {
        pass(
            "dmarc-rua",
            format!("aggregate reports go to {}", r.rua.join(", ")),
            "Read the reports: they list every service sending as the domain and which ones fail SPF or DKIM.",
        )
    }
}

/// MTA-STS protects mail sent *to* the domain: it matters only if the domain takes mail.
fn mta_sts_checks(e: &MailEvidence) -> Vec<Check> {
    let receives = e.mx.receives_mail();
    if receives == Some(false) {
        return vec![info(
            "mta-sts",
            "not applicable: the domain takes no mail",
            "MTA-STS protects incoming mail; publish it with your MX records if the domain starts receiving mail.",
        )];
    }
    let id = match &e.mta_sts {
        RecordLookup::LookupFailed(err) => {
            return vec![error(
                "mta-sts",
                format!("the _mta-sts TXT look-up failed: {err}"),
                "If this repeats, check that your name servers answer TXT queries for _mta-sts names.",
            )];
        }
        RecordLookup::Missing if receives.is_none() => {
            return vec![info(
                "mta-sts",
                "no _mta-sts record; whether the domain takes mail is unknown",
                "If the domain takes mail, publish `_mta-sts` TXT `v=STSv1; id=...` and a policy file (RFC 8461).",
            )];
        }
        RecordLookup::Missing => {
            return vec![check(
                "mta-sts",
                CheckStatus::Warn,
                points::MTA_STS_MISSING,
                format!(
                    "no _mta-sts.{} record: senders cannot require TLS to your MX hosts",
                    e.domain
                ),
                "Publish `_mta-sts` TXT `v=STSv1; id=...` and a policy at https://mta-sts.<domain>/.well-known/mta-sts.txt (RFC 8461).",
            )];
        }
        RecordLookup::Multiple(records) => {
            return vec![check(
                "mta-sts",
                CheckStatus::Fail,
                points::MTA_STS_INVALID,
                format!(
                    "{} _mta-sts records; senders must ignore them all",
                    records.len()
                ),
                "Keep exactly one `v=STSv1` record.",
            )];
        }
        RecordLookup::Invalid { record, reason } => {
            return vec![check(
                "mta-sts",
                CheckStatus::Fail,
                points::MTA_STS_INVALID,
                format!("{record:?} is invalid: {reason}"),
                "Publish `v=STSv1; id=<1 to 32 letters and digits>`.",
            )];
        }
        RecordLookup::Found { parsed, .. } => parsed,
    };
    let mut checks = vec![pass(
        "mta-sts",
        format!("_mta-sts.{}: v=STSv1, id={id}", e.domain),
        "Change the id whenever you edit the policy file, or senders keep using their cached copy.",
    )];
    let policy = match &e.mta_sts_policy {
        None => {
            checks.push(error(
                "mta-sts-policy",
                "the policy file could not be fetched by this engine",
                "Check by hand that https://mta-sts.<domain>/.well-known/mta-sts.txt answers 200 with a valid certificate.",
            ));
            return checks;
        }
        Some(Err(why)) => {
            checks.push(check(
                "mta-sts-policy",
                CheckStatus::Fail,
                points::MTA_STS_POLICY_UNAVAILABLE,
                why.clone(),
                "Serve the policy as text/plain with status 200 at https://mta-sts.<domain>/.well-known/mta-sts.txt, with a valid certificate.",
            ));
            return checks;
        }
        Some(Ok(policy)) => policy,
    };
    checks.push(pass(
        "mta-sts-policy",
        format!(
            "policy: mode {}, max_age {}, mx {}",
            policy.mode,
            policy.max_age,
            policy.mx.join(", ")
        ),
        "Renew the certificate of mta-sts.<domain> automatically: senders refetch the policy over HTTPS.",
    ));
    checks.push(match policy.mode {
        Mode::Enforce => pass(
            "mta-sts-mode",
            "mode enforce: senders refuse to deliver without valid TLS",
            "Keep mode enforce; before adding an MX host, list it in the policy and change the id.",
        ),
        Mode::Testing => check(
            "mta-sts-mode",
            CheckStatus::Warn,
            points::MTA_STS_MODE_TESTING,
            "mode testing: TLS failures are reported but mail is still delivered",
            "Switch to `mode: enforce` once TLS-RPT reports are clean.",
        ),
        Mode::None => check(
            "mta-sts-mode",
            CheckStatus::Fail,
            points::MTA_STS_MODE_NONE,
            "mode none: the policy is withdrawn",
            "Switch to `mode: enforce`.",
        ),
    });
    if policy.mode != Mode::None {
        checks.push(mta_sts_mx(e, policy));
    }
    checks.push(if policy.max_age >= MTA_STS_MIN_MAX_AGE {
        pass(
            "mta-sts-max-age",
            format!("max_age {} s", policy.max_age),
            "Keep max_age of a day or more; weeks (e.g. 1209600) protect better, as senders keep the policy even when an attacker blocks its fetch.",
        )
    } else {
        check(
            "mta-sts-max-age",
            CheckStatus::Warn,
            points::MTA_STS_MAX_AGE_SHORT,
            format!(
                "max_age {} s is under one day; senders forget the policy quickly",
                policy.max_age
            ),
            "Use a max_age of at least 86400 (RFC 8461 suggests weeks, e.g. 1209600).",
        )
    });
    checks
}

fn mta_sts_mx(e: &MailEvidence, policy: &mta_sts::Policy) -> Check {
    let hosts = e.mx.hosts();
    if hosts.is_empty() {
        return info(
            "mta-sts-mx",
            "no MX hosts to compare with the policy",
            "The policy's mx lines cannot be checked without MX hosts; list every MX host there when you publish them.",
        );
    }
    let unmatched: Vec<&String> = hosts
        .iter()
        .filter(|h| !policy.mx.iter().any(|p| mta_sts::mx_matches(p, h)))
        .collect();
    if unmatched.is_empty() {
        pass(
            "mta-sts-mx",
            format!(
                "every MX host ({}) matches a policy mx pattern",
                hosts.join(", ")
            ),
            "List any new MX host in the policy (and change the id) before it receives mail.",
        )
    } else {
        let names: Vec<&str> = unmatched.iter().map(|s| s.as_str()).collect();
        check(
            "mta-sts-mx",
            CheckStatus::Fail,
            points::MTA_STS_MX_MISMATCH,
            format!(
                "MX hosts matching no policy pattern ({}): {}",
                policy.mx.join(", "),
                names.join(", ")
            ),
            "Add an mx line for every MX host (or a *.domain pattern) and change the id in the TXT record.",
        )
    }
}

/// TLS-RPT, like MTA-STS, is about mail sent to the domain.
fn tlsrpt(e: &MailEvidence) -> Check {
    let receives = e.mx.receives_mail();
    if receives == Some(false) {
        return info(
            "tls-rpt",
            "not applicable: the domain takes no mail",
            "TLS-RPT reports failed deliveries to you; publish it with your MX records if the domain starts receiving mail.",
        );
    }
    match &e.tlsrpt {
        RecordLookup::LookupFailed(err) => error(
            "tls-rpt",
            format!("the _smtp._tls TXT look-up failed: {err}"),
            "If this repeats, check that your name servers answer TXT queries for _smtp._tls names.",
        ),
        RecordLookup::Missing if receives.is_none() => info(
            "tls-rpt",
            "no _smtp._tls record; whether the domain takes mail is unknown",
            "If the domain takes mail, publish `_smtp._tls` TXT `v=TLSRPTv1; rua=mailto:...` (RFC 8460).",
        ),
        RecordLookup::Missing => check(
            "tls-rpt",
            CheckStatus::Warn,
            points::TLSRPT_MISSING,
            format!(
                "no _smtp._tls.{} record: nobody hears about failed TLS deliveries",
                e.domain
            ),
            "Publish `_smtp._tls` TXT `v=TLSRPTv1; rua=mailto:...` (RFC 8460).",
        ),
        RecordLookup::Multiple(records) => check(
            "tls-rpt",
            CheckStatus::Fail,
            points::TLSRPT_INVALID,
            format!(
                "{} TLS-RPT records; senders must ignore them all",
                records.len()
            ),
            "Keep exactly one `v=TLSRPTv1` record.",
        ),
        RecordLookup::Invalid { record, reason } => check(
            "tls-rpt",
            CheckStatus::Fail,
            points::TLSRPT_INVALID,
            format!("{record:?} is invalid: {reason}"),
            "Publish `v=TLSRPTv1; rua=mailto:...` or an https: URL.",
        ),
        RecordLookup::Found { parsed, .. } => pass(
            "tls-rpt",
            format!("TLS reports go to {}", parsed.join(", ")),
            "Read the reports: failures there are senders that could not reach your MX hosts over TLS.",
        ),
    }
}

#[cfg(test)]
mod tests;
