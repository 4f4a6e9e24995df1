//! What each fixture site answers over HTTP and HTTPS.

use axum::Router;
use axum::http::header::{CONTENT_TYPE, HOST, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use chrono::{DateTime, Days, SecondsFormat, Utc};
use sha2::{Digest, Sha384};

use crate::fixtures::is_load_name;

/// The third-party script `strong.test` loads from `cdn.test` (with SRI).
pub const WIDGET_JS: &str =
    "(function(){\"use strict\";document.documentElement.dataset.widget=\"loaded\";})();\n";
const APP_JS: &str = "document.addEventListener(\"DOMContentLoaded\",function(){document.body.dataset.ready=\"yes\";});\n";
const STYLE_CSS: &str = "body{font-family:sans-serif;margin:2rem;}\n";

/// `strong.test`'s Content-Security-Policy: strict, no unsafe-*; the one
/// external script origin is named because the page loads a script from it.
pub const STRONG_CSP: &str = "default-src 'none'; script-src 'self' https://cdn.test; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

type Headers = &'static [(&'static str, &'static str)];

/// Every Observatory header right.
const STRONG_HEADERS: Headers = &[
    (
        "strict-transport-security",
        "max-age=63072000; includeSubDomains; preload",
    ),
    ("content-security-policy", STRONG_CSP),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("cross-origin-embedder-policy", "require-corp"),
];

/// The classic half-done set: HSTS, nosniff and X-Frame-Options, but no
/// Content-Security-Policy and no Referrer-Policy.
const MIXED_HEADERS: Headers = &[
    ("strict-transport-security", "max-age=31536000"),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "SAMEORIGIN"),
];

/// Decent, not perfect.
const EXPIRED_HEADERS: Headers = &[
    (
        "strict-transport-security",
        "max-age=31536000; includeSubDomains",
    ),
    (
        "content-security-policy",
        "default-src 'self'; frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
];

/// A script host other sites embed.
const CDN_HEADERS: Headers = &[
    ("access-control-allow-origin", "*"),
    ("cross-origin-resource-policy", "cross-origin"),
    ("x-content-type-options", "nosniff"),
    ("strict-transport-security", "max-age=31536000"),
];

/// The SRI value of a resource (`sha384-<base64>`).
pub fn sri(content: &str) -> String {
    let digest = Sha384::digest(content.as_bytes());
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

fn with_headers(router: Router, headers: Headers) -> Router {
    router.layer(axum::middleware::map_response(
        move |mut response: Response| async move {
            for (name, value) in headers {
                response.headers_mut().insert(
                    HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                );
            }
            response
        },
    ))
}

fn typed(content_type: &'static str, body: impl Into<String>) -> Response {
    ([(CONTENT_TYPE, content_type)], body.into()).into_response()
}

fn html(body: String) -> Response {
    typed("text/html; charset=utf-8", body)
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        "not found\n",
    )
        .into_response()
}

/// `http://` answers a 301 to `https://{host}` with the same path. No port in
/// the Location: clients map the default port to the testnet's https_port.
pub fn redirect_to_https(host: &'static str) -> Router {
    Router::new().fallback(move |uri: Uri| async move { moved_to_https(host, &uri) })
}

fn moved_to_https(host: &str, uri: &Uri) -> Response {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    (
        StatusCode::MOVED_PERMANENTLY,
        [(LOCATION, format!("https://{host}{path}"))],
    )
        .into_response()
}

/// strong.test's `http://`, which load-test names share: like
/// [`redirect_to_https`] to strong.test, but a request for a load-test name
/// (by its Host header) is sent to that name's own `https://` URL.
pub fn redirect_strong_or_load() -> Router {
    Router::new().fallback(|headers: HeaderMap, uri: Uri| async move {
        let host = headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| h.rsplit_once(':').map_or(h, |(name, _port)| name))
            .filter(|h| is_load_name(h))
            .map(|h| h.to_ascii_lowercase());
        moved_to_https(host.as_deref().unwrap_or("strong.test"), &uri)
    })
}

fn random_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// RFC 3339 UTC, seconds precision.
fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A site's `/.well-known/security.txt` and `/.well-known/mta-sts.txt` (the
/// MTA-STS policy host shares the site's address and certificate).
fn well_known(security_txt: String, mta_sts_policy: &'static str) -> Router {
    Router::new()
        .route(
            "/.well-known/security.txt",
            get(move || {
                let body = security_txt.clone();
                async move { typed("text/plain; charset=utf-8", body) }
            }),
        )
        .route(
            "/.well-known/mta-sts.txt",
            get(move || async move { typed("text/plain", mta_sts_policy) }),
        )
}

/// RFC 9116 security.txt, expiring a year from `now`.
pub fn strong_security_txt(now: DateTime<Utc>) -> String {
    let expires = now.checked_add_days(Days::new(365)).unwrap_or(now);
    format!(
        "Contact: mailto:security@strong.test\n\
         Expires: {}\n\
         Preferred-Languages: en\n\
         Canonical: https://strong.test/.well-known/security.txt\n\
         Policy: https://strong.test/security-policy\n",
        rfc3339(expires)
    )
}

/// RFC 8461 policy (CRLF line ends, as the RFC writes them).
pub const STRONG_MTA_STS: &str =
    "version: STSv1\r\nmode: enforce\r\nmx: mail.strong.test\r\nmax_age: 604800\r\n";

/// `https://strong.test` (and `mta-sts.strong.test`, on the same address).
pub fn strong(now: DateTime<Utc>) -> Router {
    let page = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Strong Test Corp.</title>\n\
         <link rel=\"stylesheet\" href=\"/style.css\">\n\
         <script src=\"/app.js\" defer></script>\n\
         <script src=\"https://cdn.test/widget.js\" integrity=\"{}\" crossorigin=\"anonymous\" defer></script>\n\
         </head>\n<body>\n<h1>strong.test</h1>\n<p>Every header right, every record in place.</p>\n</body>\n</html>\n",
        sri(WIDGET_JS)
    );
    let security_txt = strong_security_txt(now);
    let router = Router::new()
        .route(
            "/",
            get(move || {
                let page = page.clone();
                async move {
                    let cookie = format!(
                        "__Host-session={}; Secure; HttpOnly; SameSite=Strict; Path=/",
                        random_token()
                    );
                    ([(SET_COOKIE, cookie)], html(page)).into_response()
                }
            }),
        )
        .route(
            "/app.js",
            get(|| async { typed("application/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/style.css",
            get(|| async { typed("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .merge(well_known(security_txt, STRONG_MTA_STS))
        .fallback(not_found);
    with_headers(router, STRONG_HEADERS)
}

/// RFC 9116 security.txt for `mixed.test`: the required fields, nothing more.
pub fn mixed_security_txt(now: DateTime<Utc>) -> String {
    let expires = now.checked_add_days(Days::new(180)).unwrap_or(now);
    format!(
        "Contact: mailto:security@mixed.test\nExpires: {}\n",
        rfc3339(expires)
    )
}

/// RFC 8461 policy for `mixed.test`.
pub const MIXED_MTA_STS: &str =
    "version: STSv1\r\nmode: enforce\r\nmx: mail.mixed.test\r\nmax_age: 86400\r\n";

/// `https://mixed.test` (and `mta-sts.mixed.test`): some headers, no CSP.
pub fn mixed(now: DateTime<Utc>) -> Router {
    let security_txt = mixed_security_txt(now);
    let router = Router::new()
        .route(
            "/",
            get(|| async {
                let cookie = format!("sessionid={}; Path=/; Secure; HttpOnly", random_token());
                let page = "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Mixed Test Ltd.</title>\n\
                            <script src=\"/app.js\"></script>\n</head>\n<body>\n<h1>mixed.test</h1>\n<p>Half done.</p>\n</body>\n</html>\n";
                ([(SET_COOKIE, cookie)], html(page.to_string())).into_response()
            }),
        )
        .route("/app.js", get(|| async { typed("application/javascript; charset=utf-8", APP_JS) }))
        .merge(well_known(security_txt, MIXED_MTA_STS))
        .fallback(not_found);
    with_headers(router, MIXED_HEADERS)
}

/// `http://weak.test`: a plain page, no security headers at all.
pub fn weak() -> Router {
    Router::new()
        .route(
            "/",
            get(|| async {
                html("<!doctype html>\n<html>\n<head><title>Weak Test</title></head>\n<body>\n<h1>weak.test</h1>\n<p>Plain HTTP only.</p>\n</body>\n</html>\n".into())
            }),
        )
        .fallback(not_found)
}

/// `https://expired.test`: decent headers behind an expired certificate.
pub fn expired() -> Router {
    let router = Router::new()
        .route(
            "/",
            get(|| async {
                html("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Expired Test</title>\n</head>\n<body>\n<h1>expired.test</h1>\n<p>Forgot to renew.</p>\n</body>\n</html>\n".into())
            }),
        )
        .fallback(not_found);
    with_headers(router, EXPIRED_HEADERS)
}

/// `https://cdn.test`: serves the widget other fixtures embed.
pub fn cdn() -> Router {
    let router = Router::new()
        .route(
            "/widget.js",
            get(|| async { typed("application/javascript; charset=utf-8", WIDGET_JS) }),
        )
        .fallback(not_found);
    with_headers(router, CDN_HEADERS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sri_is_sha384_base64() {
        // echo -n "alert('Hello, world.');" | openssl dgst -sha384 -binary | openssl base64 -A
        assert_eq!(
            sri("alert('Hello, world.');"),
            "sha384-H8BRh8j48O9oYatfu5AZzq6A9RINhZO5H16dQZngK7T62em8MUt1FLm52t+eX6xO"
        );
    }

    #[test]
    fn security_txt_expires_a_year_ahead() {
        let now = DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
            .expect("date")
            .with_timezone(&Utc);
        let text = strong_security_txt(now);
        assert!(text.contains("Expires: 2027-03-01T12:00:00Z\n"), "{text}");
        assert!(text.starts_with("Contact: mailto:security@strong.test\n"));
    }
}
