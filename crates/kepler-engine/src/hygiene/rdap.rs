//! Registration data over RDAP (RFC 9082/9083), found through the configured
//! server or IANA's bootstrap registry (RFC 9224). Never required: when RDAP
//! cannot be reached the lookup says why and the checks are informational.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::fetch::{CertPolicy, Fetcher, Method};

/// IANA's bootstrap file for DNS names.
pub const IANA_BOOTSTRAP: &str = "https://data.iana.org/rdap/dns.json";
const MAX_REDIRECTS: usize = 3;
/// How long a fetched bootstrap file is reused (RFC 9224 asks clients to cache it).
const BOOTSTRAP_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The last bootstrap file fetched successfully, shared by every run in the process.
static BOOTSTRAP: Mutex<Option<(Instant, Arc<serde_json::Value>)>> = Mutex::new(None);

/// What the RDAP look-up gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RdapLookup {
    Found { url: String, record: RdapRecord },
    Unavailable { reason: String },
}

/// The registration facts Kepler uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RdapRecord {
    pub registration: Option<DateTime<Utc>>,
    pub expiration: Option<DateTime<Utc>>,
    pub last_changed: Option<DateTime<Utc>>,
    /// RFC 8056 status values, as sent.
    pub statuses: Vec<String>,
}

impl RdapRecord {
    /// Parses an RFC 9083 domain object.
    pub fn from_json(json: &serde_json::Value) -> RdapRecord {
        let mut record = RdapRecord::default();
        for event in json
            .get("events")
            .and_then(|e| e.as_array())
            .into_iter()
            .flatten()
        {
            let action = event
                .get("eventAction")
                .and_then(|a| a.as_str())
                .unwrap_or_default();
            let date = event
                .get("eventDate")
                .and_then(|d| d.as_str())
                .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
                .map(|d| d.with_timezone(&Utc));
            let slot = match action.to_ascii_lowercase().as_str() {
                "registration" => &mut record.registration,
                "expiration" => &mut record.expiration,
                "last changed" => &mut record.last_changed,
                _ => continue,
            };
            if slot.is_none() {
                *slot = date;
            }
        }
        record.statuses = json
            .get("status")
            .and_then(|s| s.as_array())
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .take(32)
            .collect();
        record
    }

    /// `client transfer prohibited` or `server transfer prohibited` (RFC 8056),
    /// also in EPP's spelling (`clientTransferProhibited`).
    pub fn transfer_locked(&self) -> bool {
        self.statuses.iter().any(|s| {
            let squashed: String = s
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_ascii_lowercase();
            squashed == "clienttransferprohibited" || squashed == "servertransferprohibited"
        })
    }
}

/// Finds the RDAP base URL for `tld` in a bootstrap file (longest label match).
pub fn bootstrap_base(json: &serde_json::Value, name: &str) -> Option<String> {
    let name = name.to_ascii_lowercase();
    let mut best: Option<(usize, String)> = None;
    for service in json.get("services")?.as_array()? {
        let (Some(suffixes), Some(urls)) = (
            service.get(0).and_then(|s| s.as_array()),
            service.get(1).and_then(|u| u.as_array()),
        ) else {
            continue;
        };
        let urls: Vec<&str> = urls.iter().filter_map(|u| u.as_str()).collect();
        let Some(url) = urls
            .iter()
            .find(|u| u.starts_with("https://"))
            .or(urls.first())
        else {
            continue;
        };
        for suffix in suffixes.iter().filter_map(|s| s.as_str()) {
            let suffix = suffix.to_ascii_lowercase();
            let matches = name == suffix || name.ends_with(&format!(".{suffix}"));
            if matches && best.as_ref().is_none_or(|(len, _)| suffix.len() > *len) {
                best = Some((suffix.len(), (*url).to_owned()));
            }
        }
    }
    best.map(|(_, url)| url)
}

/// `base` + `domain/<name>`, whatever the base's trailing slash.
pub fn domain_url(base: &str, name: &str) -> String {
    format!("{}/domain/{name}", base.trim_end_matches('/'))
}

/// Looks the domain up: the configured server, or the IANA bootstrap.
pub async fn lookup(fetcher: &Fetcher, name: &str, base: Option<&str>) -> RdapLookup {
    let base = match base {
        Some(base) => base.to_owned(),
        None => match bootstrap(fetcher).await {
            Ok(json) => match bootstrap_base(&json, name) {
                Some(base) => base,
                None => {
                    return RdapLookup::Unavailable {
                        reason: format!("no RDAP service for {name} in IANA's bootstrap"),
                    };
                }
            },
            Err(reason) => {
                return RdapLookup::Unavailable {
                    reason: format!("IANA bootstrap unavailable: {reason}"),
                };
            }
        },
    };
    match get_json(fetcher, &domain_url(&base, name)).await {
        Ok((url, json)) => RdapLookup::Found {
            url,
            record: RdapRecord::from_json(&json),
        },
        Err(reason) => RdapLookup::Unavailable { reason },
    }
}

/// IANA's bootstrap file, from the process-wide cache when fresh.
async fn bootstrap(fetcher: &Fetcher) -> Result<Arc<serde_json::Value>, String> {
    let cached = BOOTSTRAP.lock().ok().and_then(|c| c.clone());
    if let Some((_, json)) = cached.filter(|(at, _)| at.elapsed() < BOOTSTRAP_TTL) {
        return Ok(json);
    }
    let (_, json) = get_json(fetcher, IANA_BOOTSTRAP).await?;
    let json = Arc::new(json);
    if let Ok(mut cache) = BOOTSTRAP.lock() {
        *cache = Some((Instant::now(), json.clone()));
    }
    Ok(json)
}

/// GETs JSON, following a few redirects (RDAP services redirect to the
/// authoritative server); returns the final URL and the document.
async fn get_json(fetcher: &Fetcher, start: &str) -> Result<(String, serde_json::Value), String> {
    let mut url = start.to_owned();
    for _ in 0..=MAX_REDIRECTS {
        let accept = [("accept", "application/rdap+json, application/json")];
        let response = fetcher
            .request(Method::Get, &url, &accept, CertPolicy::Verify)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if matches!(response.status, 301 | 302 | 303 | 307 | 308) {
            let next = response
                .header("location")
                .and_then(|l| response.url.join(l).ok());
            url = next
                .map(|u| u.to_string())
                .ok_or_else(|| format!("{url}: redirect without a usable Location"))?;
            continue;
        }
        if response.status != 200 {
            return Err(format!("{url}: HTTP {}", response.status));
        }
        if response.truncated {
            return Err(format!("{url}: response too large"));
        }
        let json =
            serde_json::from_slice(&response.body).map_err(|e| format!("{url}: not JSON ({e})"))?;
        return Ok((url, json));
    }
    Err(format!("{start}: too many redirects"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc9083_domain() {
        let json = serde_json::json!({
            "objectClassName": "domain",
            "ldhName": "example.test",
            "status": ["client transfer prohibited", "active"],
            "events": [
                {"eventAction": "registration", "eventDate": "2001-02-03T04:05:06Z"},
                {"eventAction": "expiration", "eventDate": "2031-02-03T04:05:06.000+00:00"},
                {"eventAction": "last changed", "eventDate": "not a date"},
                {"eventAction": "registration", "eventDate": "2020-01-01T00:00:00Z"}
            ]
        });
        let record = RdapRecord::from_json(&json);
        assert_eq!(
            record.registration.map(|d| d.to_rfc3339()),
            Some("2001-02-03T04:05:06+00:00".to_owned())
        );
        assert_eq!(
            record.expiration.map(|d| d.to_rfc3339()),
            Some("2031-02-03T04:05:06+00:00".to_owned())
        );
        assert_eq!(record.last_changed, None);
        assert!(record.transfer_locked());
        assert_eq!(
            RdapRecord::from_json(&serde_json::json!({"status": 5})),
            RdapRecord::default()
        );
    }

    #[test]
    fn transfer_lock_spellings() {
        let cases: [(&[&str], bool); 5] = [
            (&["client transfer prohibited"], true),
            (&["Server Transfer Prohibited"], true),
            (&["clientTransferProhibited"], true),
            (&["client delete prohibited", "active"], false),
            (&[], false),
        ];
        for (statuses, locked) in cases {
            let record = RdapRecord {
                statuses: statuses.iter().map(|s| (*s).to_owned()).collect(),
                ..RdapRecord::default()
            };
            assert_eq!(record.transfer_locked(), locked, "{statuses:?}");
        }
    }

    #[test]
    fn bootstrap_picks_the_longest_suffix() {
        let json = serde_json::json!({
            "version": "1.0",
            "services": [
                [["com", "net"], ["http://plain.example/", "https://rdap.verisign.example/com/v1/"]],
                [["test"], ["https://rdap.test.example/"]],
                [["example.test"], ["https://narrow.example/"]],
                ["malformed"]
            ]
        });
        assert_eq!(
            bootstrap_base(&json, "shop.COM").as_deref(),
            Some("https://rdap.verisign.example/com/v1/")
        );
        assert_eq!(
            bootstrap_base(&json, "a.test").as_deref(),
            Some("https://rdap.test.example/")
        );
        assert_eq!(
            bootstrap_base(&json, "www.example.test").as_deref(),
            Some("https://narrow.example/")
        );
        assert_eq!(bootstrap_base(&json, "a.org"), None);
        assert_eq!(
            domain_url("https://r.example/v1/", "a.test"),
            "https://r.example/v1/domain/a.test"
        );
        assert_eq!(
            domain_url("https://r.example/v1", "a.test"),
            "https://r.example/v1/domain/a.test"
        );
    }
}
