//! An RDAP server (RFC 9082 paths, RFC 9083 JSON) for the fixture domains.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Days, Months, SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::StartError;
use crate::fixtures::{FIXTURES, RDAP, load_domain};
use crate::web::PlainListener;

const RDAP_JSON: &str = "application/rdap+json";

/// A domain's registration facts, relative to "now".
#[derive(Debug, Clone, Copy)]
struct Registration {
    /// How long ago it was registered.
    age: Age,
    /// How long until it expires.
    expires_in: Age,
    status: &'static [&'static str],
    signed: bool,
}

#[derive(Debug, Clone, Copy)]
enum Age {
    Days(u64),
    Years(u32),
}

fn shift(now: DateTime<Utc>, age: Age, forward: bool) -> DateTime<Utc> {
    let shifted = match (age, forward) {
        (Age::Days(d), true) => now.checked_add_days(Days::new(d)),
        (Age::Days(d), false) => now.checked_sub_days(Days::new(d)),
        (Age::Years(y), true) => now.checked_add_months(Months::new(y * 12)),
        (Age::Years(y), false) => now.checked_sub_months(Months::new(y * 12)),
    };
    shifted.unwrap_or(now)
}

const LOCKED: &[&str] = &[
    "client transfer prohibited",
    "client update prohibited",
    "client delete prohibited",
];
const ACTIVE: &[&str] = &["active"];

fn registration(domain: &str) -> Option<Registration> {
    let plain = |age, expires_in| Registration {
        age,
        expires_in,
        status: ACTIVE,
        signed: false,
    };
    Some(match domain {
        "strong.test" => Registration {
            age: Age::Years(10),
            expires_in: Age::Years(2),
            status: LOCKED,
            signed: true,
        },
        "mixed.test" => Registration {
            age: Age::Years(3),
            expires_in: Age::Years(1),
            status: LOCKED,
            signed: false,
        },
        "weak.test" => plain(Age::Days(20), Age::Days(345)),
        "expired.test" => plain(Age::Years(5), Age::Days(200)),
        "parked.test" => Registration {
            age: Age::Years(7),
            expires_in: Age::Years(3),
            status: LOCKED,
            signed: false,
        },
        "slow.test" => plain(Age::Years(4), Age::Days(120)),
        "down.test" => plain(Age::Years(6), Age::Days(60)),
        "cdn.test" => Registration {
            age: Age::Years(8),
            expires_in: Age::Years(1),
            status: LOCKED,
            signed: false,
        },
        _ => return None,
    })
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The RDAP domain object for a fixture, or `None` for an unknown name.
pub fn domain_object(name: &str, now: DateTime<Utc>, base_url: &str) -> Option<Value> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let reg = if load_domain(&name).as_deref() == Some(name.as_str()) {
        // A load-test domain is registered like strong.test, unsigned.
        Registration {
            signed: false,
            ..registration("strong.test")?
        }
    } else {
        let fixture = FIXTURES.iter().find(|f| f.domain == name)?;
        registration(fixture.domain)?
    };
    let registered = shift(now, reg.age, false);
    let expires = shift(now, reg.expires_in, true);
    let nameservers: Vec<Value> = if name == "strong.test" {
        vec!["ns1.strong.test", "ns2.strong.test"]
    } else {
        vec!["ns1.test", "ns2.test"]
    }
    .into_iter()
    .map(|ns| json!({"objectClassName": "nameserver", "ldhName": ns}))
    .collect();
    Some(json!({
        "rdapConformance": ["rdap_level_0"],
        "objectClassName": "domain",
        "handle": format!("{}-TEST", name.trim_end_matches(".test").to_ascii_uppercase()),
        "ldhName": name,
        "status": reg.status,
        "events": [
            {"eventAction": "registration", "eventDate": rfc3339(registered)},
            {"eventAction": "expiration", "eventDate": rfc3339(expires)},
            {"eventAction": "last changed", "eventDate": rfc3339(registered.max(now.checked_sub_days(Days::new(10)).unwrap_or(now)))},
        ],
        "nameservers": nameservers,
        "secureDNS": {"delegationSigned": reg.signed},
        "links": [{
            "value": format!("{base_url}domain/{name}"),
            "rel": "self",
            "href": format!("{base_url}domain/{name}"),
            "type": RDAP_JSON,
        }],
    }))
}

fn rdap(status: StatusCode, body: Value) -> Response {
    (status, [(CONTENT_TYPE, RDAP_JSON)], body.to_string()).into_response()
}

fn router(now: DateTime<Utc>, base_url: String) -> Router {
    let lookup = move |Path(name): Path<String>| {
        let base_url = base_url.clone();
        async move {
            match domain_object(&name, now, &base_url) {
                Some(object) => rdap(StatusCode::OK, object),
                None => rdap(
                    StatusCode::NOT_FOUND,
                    json!({"errorCode": 404, "title": "Not Found", "description": [format!("{name} is not registered here")]}),
                ),
            }
        }
    };
    Router::new()
        .route("/rdap/domain/{name}", get(lookup))
        .fallback(|| async {
            rdap(
                StatusCode::NOT_FOUND,
                json!({"errorCode": 404, "title": "Not Found"}),
            )
        })
}

/// The running RDAP server.
#[derive(Debug)]
pub struct Rdap {
    pub base_url: String,
    pub task: JoinHandle<()>,
}

/// Binds `127.0.0.1:<random>` and serves until `cancel`.
pub async fn start(
    now: DateTime<Utc>,
    latency: Duration,
    cancel: &CancellationToken,
) -> Result<Rdap, StartError> {
    let addr = SocketAddr::new(RDAP.into(), 0);
    let bind_error = |source| StartError::Bind {
        what: "RDAP",
        addr,
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    let base_url = format!("http://{local}/rdap/");
    let app = router(now, base_url.clone());
    let cancel = cancel.clone();
    let task = tokio::spawn(async move {
        let serving = axum::serve(PlainListener::new(listener, latency), app)
            .with_graceful_shutdown(cancel.cancelled_owned());
        if let Err(error) = serving.await {
            tracing::warn!(%error, "RDAP server stopped");
        }
    });
    Ok(Rdap { base_url, task })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strong_is_old_locked_and_signed() {
        let now = DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
            .expect("date")
            .with_timezone(&Utc);
        let object = domain_object("Strong.Test.", now, "http://x/rdap/").expect("known");
        assert_eq!(object["ldhName"], "strong.test");
        assert_eq!(object["objectClassName"], "domain");
        assert_eq!(object["events"][0]["eventDate"], "2016-03-01T00:00:00Z");
        assert_eq!(object["events"][1]["eventDate"], "2028-03-01T00:00:00Z");
        assert!(
            object["status"]
                .as_array()
                .expect("array")
                .iter()
                .any(|s| s == "client transfer prohibited")
        );
    }

    #[test]
    fn load_test_domains_are_registered_like_strong_but_unsigned() {
        let now = Utc::now();
        let object = domain_object("d7.load.test", now, "http://x/rdap/").expect("known");
        assert_eq!(object["ldhName"], "d7.load.test");
        assert_eq!(object["secureDNS"]["delegationSigned"], false);
        assert!(domain_object("www.d7.load.test", now, "http://x/rdap/").is_none());
        assert!(domain_object("load.test", now, "http://x/rdap/").is_none());
    }

    #[test]
    fn unknown_names_have_no_object() {
        let now = Utc::now();
        assert!(domain_object("nope.test", now, "http://x/rdap/").is_none());
        assert!(domain_object("example.com", now, "http://x/rdap/").is_none());
    }
}
