//! The `hygiene` category: a `security.txt` (RFC 9116) and the domain's
//! registration (age, expiry, transfer lock) from RDAP. Points are deductions
//! from 100, listed in `docs/scoring/hygiene.md`; what cannot be looked at
//! costs nothing.

mod rdap;
mod securitytxt;

use chrono::{DateTime, Duration, Utc};
use kepler_core::{Category, CategoryId, Check, CheckStatus, Domain};
use serde::{Deserialize, Serialize};

use crate::fetch::{CertPolicy, FetchError, FetchedResponse, Fetcher, Method};

pub use rdap::{IANA_BOOTSTRAP, RdapLookup, RdapRecord, bootstrap_base, domain_url};
pub use securitytxt::{ExpiresProblem, SecurityTxt, contact_is_valid};

/// Redirects followed when fetching security.txt.
const MAX_REDIRECTS: usize = 3;

/// Everything the hygiene probe saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HygieneEvidence {
    pub domain: String,
    /// When the probe ran; "expired" and "young" are judged against this.
    pub checked_at: DateTime<Utc>,
    pub security_txt: SecurityTxtLookup,
    pub rdap: RdapLookup,
}

/// Every URL tried for security.txt, and the file if one was found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecurityTxtLookup {
    pub attempts: Vec<Attempt>,
    pub found: Option<FoundFile>,
}

/// One request for the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<FetchError>,
    /// Why a 200 answer was not taken for the file, e.g. an HTML page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Where the file was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileLocation {
    /// `/.well-known/security.txt`, the RFC's location.
    WellKnown,
    /// `/security.txt`, the legacy location.
    Legacy,
}

/// The file as found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoundFile {
    /// The URL that answered with the file (after redirects).
    pub url: String,
    /// The URL requested first.
    pub requested: String,
    pub location: FileLocation,
    /// Served over HTTPS with a trusted certificate, every hop.
    pub https: bool,
    pub content_type: Option<String>,
    pub file: SecurityTxt,
}

/// Looks for security.txt and the registration record, concurrently.
/// `rdap_base_url` is the RDAP server to ask; IANA's bootstrap when absent.
pub async fn probe(
    fetcher: &Fetcher,
    domain: &Domain,
    rdap_base_url: Option<&str>,
) -> HygieneEvidence {
    let checked_at = Utc::now();
    let (security_txt, rdap) = futures::join!(
        find_security_txt(fetcher, domain.as_str()),
        rdap::lookup(fetcher, domain.as_str(), rdap_base_url)
    );
    HygieneEvidence {
        domain: domain.as_str().to_owned(),
        checked_at,
        security_txt,
        rdap,
    }
}

async fn find_security_txt(fetcher: &Fetcher, domain: &str) -> SecurityTxtLookup {
    let mut lookup = SecurityTxtLookup::default();
    let well_known = format!("https://{domain}/.well-known/security.txt");
    lookup.found = fetch_file(
        fetcher,
        &well_known,
        FileLocation::WellKnown,
        &mut lookup.attempts,
    )
    .await;
    if lookup.found.is_some() {
        return lookup;
    }
    match lookup.attempts.last().and_then(|a| a.error.clone()) {
        // The HTTPS server answered: the legacy path is the only other place.
        None => {
            let legacy = format!("https://{domain}/security.txt");
            lookup.found =
                fetch_file(fetcher, &legacy, FileLocation::Legacy, &mut lookup.attempts).await;
        }
        // A silent server will not answer a second request either; stop here so
        // the probe stays within one timeout.
        Some(FetchError::Timeout) => {}
        // HTTPS unusable (refused, TLS): plain HTTP tells "served insecurely" from "absent".
        Some(_) => {
            let plain = format!("http://{domain}/.well-known/security.txt");
            lookup.found = fetch_file(
                fetcher,
                &plain,
                FileLocation::WellKnown,
                &mut lookup.attempts,
            )
            .await;
        }
    }
    lookup
}

/// Fetches one candidate, following a few redirects; records every request.
async fn fetch_file(
    fetcher: &Fetcher,
    start: &str,
    location: FileLocation,
    attempts: &mut Vec<Attempt>,
) -> Option<FoundFile> {
    let mut url = start.to_owned();
    let mut https = start.starts_with("https:");
    for _ in 0..=MAX_REDIRECTS {
        let accept = [("accept", "text/plain")];
        let response = match fetcher
            .request(Method::Get, &url, &accept, CertPolicy::Verify)
            .await
        {
            Ok(r) => r,
            Err(error) => {
                attempts.push(Attempt {
                    url,
                    status: None,
                    error: Some(error),
                    note: None,
                });
                return None;
            }
        };
        https &= response.url.scheme() == "https";
        let mut attempt = Attempt {
            url: url.clone(),
            status: Some(response.status),
            error: None,
            note: None,
        };
        if matches!(response.status, 301 | 302 | 303 | 307 | 308) {
            let next = response
                .header("location")
                .and_then(|l| response.url.join(l).ok());
            attempts.push(attempt);
            url = next?.to_string();
            continue;
        }
        if response.status != 200 {
            attempts.push(attempt);
            return None;
        }
        match as_security_txt(&response) {
            Ok(file) => {
                attempts.push(attempt);
                let content_type = response.header("content-type").map(str::to_owned);
                return Some(FoundFile {
                    url,
                    requested: start.to_owned(),
                    location,
                    https,
                    content_type,
                    file,
                });
            }
            Err(note) => {
                attempt.note = Some(note);
                attempts.push(attempt);
                return None;
            }
        }
    }
    None
}

/// A 200 answer is the file unless it is an HTML page (a "soft 404") or holds no field.
fn as_security_txt(response: &FetchedResponse) -> Result<SecurityTxt, String> {
    let content_type = response
        .header("content-type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let text = String::from_utf8_lossy(&response.body);
    if content_type.starts_with("text/html") || text.trim_start().starts_with('<') {
        return Err("an HTML page, not a security.txt".to_owned());
    }
    let file = SecurityTxt::parse(&text);
    if file.known_field_count() == 0 {
        return Err("no security.txt field in the answer".to_owned());
    }
    Ok(file)
}

/// Deductions, in points (see docs/scoring/hygiene.md).
mod points {
    pub const NO_FILE: i32 = -50;
    pub const ONLY_OVER_HTTP: i32 = -30;
    pub const LEGACY_LOCATION: i32 = -10;
    pub const NO_CONTACT: i32 = -20;
    pub const EXPIRES_BAD: i32 = -15;
    pub const EXPIRES_FAR: i32 = -5;
    pub const WRONG_CONTENT_TYPE: i32 = -5;
    pub const VERY_YOUNG: i32 = -25;
    pub const YOUNG: i32 = -10;
    pub const EXPIRED_REGISTRATION: i32 = -20;
    pub const EXPIRING: i32 = -10;
    pub const NO_TRANSFER_LOCK: i32 = -15;
}

/// Scores the category from the evidence alone.
pub fn score(evidence: &HygieneEvidence) -> Category {
    let mut checks = security_txt_checks(&evidence.security_txt, evidence.checked_at);
    checks.extend(rdap_checks(&evidence.rdap, evidence.checked_at));
    // Nothing measured when no web server answered and RDAP was out of reach.
    let file_looked_at = evidence.security_txt.found.is_some()
        || evidence
            .security_txt
            .attempts
            .iter()
            .any(|a| a.status.is_some());
    let measured = file_looked_at || matches!(evidence.rdap, RdapLookup::Found { .. });
    let total: i32 = 100 + checks.iter().map(|c| c.points).sum::<i32>();
    let score = measured.then(|| u32::try_from(total.clamp(0, 100)).unwrap_or(0));
    Category {
        id: CategoryId::Hygiene,
        score,
        weight: CategoryId::Hygiene.weight(),
        checks,
    }
}

fn check(
    id: &str,
    status: CheckStatus,
    points: i32,
    evidence: String,
    recommendation: &str,
) -> Check {
    Check {
        id: id.to_owned(),
        status,
        points,
        evidence,
        recommendation: recommendation.to_owned(),
        result: None,
    }
}

fn security_txt_checks(lookup: &SecurityTxtLookup, now: DateTime<Utc>) -> Vec<Check> {
    let tried = || {
        lookup
            .attempts
            .iter()
            .map(|a| match (&a.status, &a.error, &a.note) {
                (Some(s), _, Some(note)) => format!("{} → {s} ({note})", a.url),
                (Some(s), _, None) => format!("{} → {s}", a.url),
                (None, Some(e), _) => format!("{} → {e}", a.url),
                (None, None, _) => a.url.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let publish = "Publish /.well-known/security.txt over HTTPS with a Contact and an Expires less than a year ahead (RFC 9116).";
    let Some(found) = &lookup.found else {
        if lookup.attempts.iter().all(|a| a.status.is_none()) {
            return vec![check(
                "security-txt",
                CheckStatus::Error,
                0,
                format!(
                    "No web server answered, so security.txt could not be looked for: {}",
                    tried()
                ),
                publish,
            )];
        }
        return vec![check(
            "security-txt",
            CheckStatus::Fail,
            points::NO_FILE,
            format!("No security.txt found: {}", tried()),
            publish,
        )];
    };
    let file = &found.file;
    let mut checks = Vec::new();
    let mut where_found = format!("Found at {}", found.url);
    if found.url != found.requested {
        where_found.push_str(&format!(" (redirected from {})", found.requested));
    }
    checks.push(if !found.https {
        check(
            "security-txt",
            CheckStatus::Fail,
            points::ONLY_OVER_HTTP,
            format!("{where_found}, not over HTTPS."),
            "Serve security.txt over HTTPS (RFC 9116 requires it).",
        )
    } else if found.location == FileLocation::Legacy {
        check(
            "security-txt",
            CheckStatus::Warn,
            points::LEGACY_LOCATION,
            format!("{where_found}, the legacy location."),
            "Move the file to /.well-known/security.txt (the legacy path may redirect there).",
        )
    } else {
        check(
            "security-txt",
            CheckStatus::Pass,
            0,
            format!("{where_found}."),
            "Keep serving it at /.well-known/security.txt over HTTPS; check it after site moves or CDN changes.",
        )
    });

    let valid: Vec<&String> = file
        .contact
        .iter()
        .filter(|c| contact_is_valid(c))
        .collect();
    let contacts = file.contact.join(", ");
    checks.push(match (file.contact.len(), valid.len()) {
        (0, _) => check(
            "security-txt-contact",
            CheckStatus::Fail,
            points::NO_CONTACT,
            "No Contact field.".to_owned(),
            "Add at least one Contact (mailto:, https: or tel: URI).",
        ),
        (_, 0) => check(
            "security-txt-contact",
            CheckStatus::Fail,
            points::NO_CONTACT,
            format!("No usable Contact (URIs required, https for web addresses): {contacts}"),
            "Give Contact as a mailto:, https: or tel: URI.",
        ),
        (n, v) if v < n => check(
            "security-txt-contact",
            CheckStatus::Warn,
            0,
            format!("{v} of {n} Contact values usable: {contacts}"),
            "Fix or remove Contact values that are not URIs (or use https, not http).",
        ),
        (_, _) => check(
            "security-txt-contact",
            CheckStatus::Pass,
            0,
            format!("Contact: {contacts}"),
            "Keep each Contact monitored and answered; update the file when the address or team changes.",
        ),
    });

    let renew = "Set Expires (RFC 3339 date-time, e.g. 2026-01-31T00:00:00Z) less than a year ahead, and renew it before it passes.";
    checks.push(match file.expires_at() {
        Err(ExpiresProblem::Missing) => check(
            "security-txt-expires",
            CheckStatus::Fail,
            points::EXPIRES_BAD,
            "No Expires field (it is required).".to_owned(),
            renew,
        ),
        Err(ExpiresProblem::Repeated(n)) => check(
            "security-txt-expires",
            CheckStatus::Fail,
            points::EXPIRES_BAD,
            format!("Expires appears {n} times (it must appear once)."),
            renew,
        ),
        Err(ExpiresProblem::Unparseable(v)) => check(
            "security-txt-expires",
            CheckStatus::Fail,
            points::EXPIRES_BAD,
            format!("Expires is not an RFC 3339 date-time: {v}"),
            renew,
        ),
        Ok(at) if at <= now => check(
            "security-txt-expires",
            CheckStatus::Fail,
            points::EXPIRES_BAD,
            format!("Expired on {}; the file is stale.", at.to_rfc3339()),
            renew,
        ),
        Ok(at) if at > now + Duration::days(366) => check(
            "security-txt-expires",
            CheckStatus::Warn,
            points::EXPIRES_FAR,
            format!("Expires {} is more than a year ahead.", at.to_rfc3339()),
            renew,
        ),
        Ok(at) => check(
            "security-txt-expires",
            CheckStatus::Pass,
            0,
            format!("Expires {}.", at.to_rfc3339()),
            "Update Expires before it passes (RFC 9116 recommends less than a year ahead) and keep the Contact monitored.",
        ),
    });

    let content_type = found.content_type.as_deref().unwrap_or("(none)");
    let lower = content_type.to_ascii_lowercase();
    let mut params = lower.split(';').map(str::trim);
    let plain = params.next() == Some("text/plain");
    let utf8 = params.any(|p| {
        p.replace(' ', "") == "charset=utf-8" || p.replace(' ', "") == "charset=\"utf-8\""
    });
    checks.push(match (plain, utf8) {
        (true, true) => check(
            "security-txt-content-type",
            CheckStatus::Pass,
            0,
            format!("Content-Type: {content_type}"),
            "Keep the server sending text/plain; charset=utf-8 for this file after configuration changes.",
        ),
        (true, false) => check(
            "security-txt-content-type",
            CheckStatus::Warn,
            0,
            format!("Content-Type: {content_type} (no charset=utf-8)"),
            "Send Content-Type: text/plain; charset=utf-8.",
        ),
        (false, _) => check(
            "security-txt-content-type",
            CheckStatus::Fail,
            points::WRONG_CONTENT_TYPE,
            format!("Content-Type: {content_type}"),
            "Send Content-Type: text/plain; charset=utf-8.",
        ),
    });

    checks.push(match (file.signed, file.signature_block_complete) {
        (true, true) => check("security-txt-signature", CheckStatus::Info, 0, "OpenPGP cleartext-signed (signature not verified by Kepler).".to_owned(), "Re-sign the file each time you edit it (Expires included), and publish the signing key where reporters can find it."),
        (true, false) => check("security-txt-signature", CheckStatus::Warn, 0, "Starts as an OpenPGP signed message but the signature block is missing or unterminated.".to_owned(), "Re-sign the file, or publish it unsigned."),
        (false, _) => check("security-txt-signature", CheckStatus::Info, 0, "Not signed (optional).".to_owned(), "Optionally sign the file with OpenPGP so reporters can check it."),
    });

    let canonical = file.canonical.join(", ");
    checks.push(if file.canonical.is_empty() {
        check(
            "security-txt-canonical",
            CheckStatus::Info,
            0,
            "No Canonical field (optional).".to_owned(),
            "Optionally add Canonical with the file's URL.",
        )
    } else if file
        .canonical
        .iter()
        .any(|c| c == &found.url || c == &found.requested)
    {
        check(
            "security-txt-canonical",
            CheckStatus::Pass,
            0,
            format!("Canonical: {canonical}"),
            "Update Canonical if the file moves, and list every URL it is served from.",
        )
    } else {
        check(
            "security-txt-canonical",
            CheckStatus::Warn,
            0,
            format!(
                "Canonical does not list the URL served ({}): {canonical}",
                found.url
            ),
            "List this file's URL in Canonical, or remove stale Canonical values.",
        )
    });

    checks.push(match file.preferred_languages.len() {
        0 => check(
            "security-txt-preferred-languages",
            CheckStatus::Info,
            0,
            "No Preferred-Languages field (optional).".to_owned(),
            "Optionally add Preferred-Languages.",
        ),
        1 => check(
            "security-txt-preferred-languages",
            CheckStatus::Info,
            0,
            format!("Preferred-Languages: {}", file.preferred_languages[0]),
            "Reporters will write in these languages; keep the list to those your team reads.",
        ),
        n => check(
            "security-txt-preferred-languages",
            CheckStatus::Warn,
            0,
            format!("Preferred-Languages appears {n} times (at most once)."),
            "Keep a single Preferred-Languages field.",
        ),
    });
    checks
}

fn rdap_checks(lookup: &RdapLookup, now: DateTime<Utc>) -> Vec<Check> {
    let (url, record) = match lookup {
        RdapLookup::Found { url, record } => (url, record),
        RdapLookup::Unavailable { reason } => {
            let seen = format!("RDAP unavailable, not scored: {reason}");
            return ["registration-age", "registration-expiry", "transfer-lock"]
                .iter()
                .map(|id| {
                    check(
                        id,
                        CheckStatus::Info,
                        0,
                        seen.clone(),
                        "Not scored, nothing lost: the registry's RDAP service did not answer; the check is run again on the next scan.",
                    )
                })
                .collect();
        }
    };
    let mut checks = Vec::new();
    checks.push(match record.registration {
        None => check("registration-age", CheckStatus::Info, 0, format!("{url} gives no registration date."), "Not scored: the registry publishes no registration date; your registrar's account shows it."),
        Some(at) => {
            let days = (now - at).num_days();
            let seen = format!("Registered {} ({days} days ago).", at.to_rfc3339());
            if days < 30 {
                check("registration-age", CheckStatus::Fail, points::VERY_YOUNG, seen, "A domain under 30 days old is a common phishing trait; nothing to change but time.")
            } else if days < 365 {
                check("registration-age", CheckStatus::Warn, points::YOUNG, seen, "A domain under a year old earns trust slowly; nothing to change but time.")
            } else {
                check("registration-age", CheckStatus::Pass, 0, seen, "Keep auto-renewal and the registrar account's 2FA on.")
            }
        }
    });
    checks.push(match record.expiration {
        None => check(
            "registration-expiry",
            CheckStatus::Info,
            0,
            format!("{url} gives no expiration date."),
            "Not scored: the registry publishes no expiry date; check it in your registrar account and keep auto-renewal on.",
        ),
        Some(at) => {
            let days = (at - now).num_days();
            let seen = format!(
                "Registration expires {} ({days} days from now).",
                at.to_rfc3339()
            );
            if at <= now {
                check(
                    "registration-expiry",
                    CheckStatus::Fail,
                    points::EXPIRED_REGISTRATION,
                    seen,
                    "Renew the registration now.",
                )
            } else if days < 30 {
                check(
                    "registration-expiry",
                    CheckStatus::Warn,
                    points::EXPIRING,
                    seen,
                    "Renew the registration (or enable auto-renewal).",
                )
            } else {
                check(
                    "registration-expiry",
                    CheckStatus::Pass,
                    0,
                    seen,
                    "Keep auto-renewal on with a valid payment method, and the registrar's contact e-mail monitored.",
                )
            }
        }
    });
    let statuses = if record.statuses.is_empty() {
        "(none)".to_owned()
    } else {
        record.statuses.join(", ")
    };
    checks.push(if record.transfer_locked() {
        check(
            "transfer-lock",
            CheckStatus::Pass,
            0,
            format!("Status: {statuses}"),
            "Keep the lock on; lift it only for a planned transfer and set it again right after.",
        )
    } else {
        check(
            "transfer-lock",
            CheckStatus::Warn,
            points::NO_TRANSFER_LOCK,
            format!("No transfer lock. Status: {statuses}"),
            "Ask the registrar to set clientTransferProhibited (registrar lock).",
        )
    });
    checks
}

#[cfg(test)]
mod tests;
