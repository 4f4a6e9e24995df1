//! The Observatory's header tests other than CSP and cookies, each a pure
//! function of the evidence returning a result and what was seen.

use super::csp::clip;
use super::results::{self as r, Outcome};
use super::{Chain, ChainEnd, CorsExchange, Hop, HtmlFacts, PreloadList, is_html_mime, sfv};

/// A test's result and the evidence behind it.
pub(crate) type Finding = (Outcome, String);

/// 15768000 s is six months; the Observatory accepts the common 15552000.
const SIX_MONTHS: i64 = 15_552_000;

pub(crate) fn redirection(http: &Chain, preload: &PreloadList) -> Finding {
    if http.hops.is_empty() {
        let why = http
            .failure()
            .map_or_else(|| "no response".to_owned(), ToString::to_string);
        return (
            r::REDIRECT_NO_HTTP,
            format!("{} did not answer ({why})", http.start),
        );
    }
    let shown = route_text(http);
    if !http.verified() {
        return (r::REDIRECT_INVALID_CERT, shown);
    }
    // A hop that failed after a redirect still tells where the redirect pointed.
    let mut route: Vec<&str> = http.hops.iter().map(|h| h.url.as_str()).collect();
    if let ChainEnd::Failed { url, .. } = &http.end {
        route.push(url);
    }
    let parsed: Vec<Option<url::Url>> = route.iter().map(|u| url::Url::parse(u).ok()).collect();
    let scheme = |i: usize| {
        parsed
            .get(i)
            .and_then(|u| u.as_ref())
            .map(|u| u.scheme().to_owned())
    };
    let host = |i: usize| {
        parsed
            .get(i)
            .and_then(|u| u.as_ref())
            .and_then(|u| u.host_str().map(str::to_owned))
    };
    let all_preloaded = parsed.iter().all(|u| {
        u.as_ref()
            .and_then(|u| u.host_str())
            .is_some_and(|h| preload.contains(h))
    });
    let outcome = if all_preloaded {
        r::REDIRECT_ALL_PRELOADED
    } else if route.len() == 1 {
        r::REDIRECT_MISSING
    } else if scheme(route.len() - 1).as_deref() != Some("https") {
        r::REDIRECT_NOT_TO_HTTPS
    } else if scheme(1).as_deref() == Some("http") {
        r::REDIRECT_NOT_HTTPS_FIRST
    } else if scheme(0).as_deref() == Some("http")
        && scheme(1).as_deref() == Some("https")
        && host(0) != host(1)
    {
        r::REDIRECT_OFF_HOST
    } else {
        r::REDIRECT_TO_HTTPS
    };
    (outcome, shown)
}

/// "http://a/ (301) → https://a/ (200)", with how the chain ended.
pub(crate) fn route_text(chain: &Chain) -> String {
    let mut parts: Vec<String> = chain
        .hops
        .iter()
        .map(|h| format!("{} ({})", h.url, h.status))
        .collect();
    match &chain.end {
        ChainEnd::Response => {}
        ChainEnd::TooManyRedirects => parts.push("stopped: too many redirects".to_owned()),
        ChainEnd::Loop { url } => parts.push(format!("stopped: loops back to {url}")),
        ChainEnd::BadLocation { location } => {
            parts.push(format!(
                "stopped: unusable Location {}",
                location.as_deref().unwrap_or("(none)")
            ));
        }
        ChainEnd::Failed { url, error } => parts.push(format!("{url} failed: {error}")),
    }
    let mut text = parts.join(" → ");
    if let Some(cert) = &chain.certificate_error {
        text.push_str(&format!("; certificate rejected: {cert}"));
    }
    text
}

pub(crate) fn hsts(https: &Chain, domain: &str, preload: &PreloadList) -> Finding {
    let Some(last) = https.final_hop() else {
        let why = https
            .failure()
            .map_or_else(|| "no response".to_owned(), ToString::to_string);
        return (
            r::HSTS_NO_HTTPS,
            format!("{} gave no response ({why})", https.start),
        );
    };
    let header = last.combined("strict-transport-security");
    let (mut outcome, mut evidence) = if !https.verified() {
        (
            r::HSTS_INVALID_CERT,
            format!(
                "certificate rejected: {}",
                https.certificate_error.as_deref().unwrap_or("")
            ),
        )
    } else if let Some(value) = &header {
        (
            read_hsts(value),
            format!("Strict-Transport-Security: {}", clip(value)),
        )
    } else {
        (
            r::HSTS_NOT_IMPLEMENTED,
            format!("no Strict-Transport-Security on {}", last.url),
        )
    };
    if preload.contains(domain) {
        outcome = r::HSTS_PRELOADED;
        evidence = format!("{domain} is on the HSTS preload list; {evidence}");
    }
    (outcome, evidence)
}

fn read_hsts(value: &str) -> Outcome {
    let value: String = value.chars().take(1024).collect();
    if value.contains(',') {
        return r::HSTS_INVALID; // sent more than once
    }
    let mut max_age = None;
    for param in value.split(';').map(|p| p.trim().to_ascii_lowercase()) {
        if let Some(rest) = param.strip_prefix("max-age=") {
            max_age = Some(leading_integer(rest));
        }
    }
    match max_age {
        Some(Some(age)) if age < SIX_MONTHS => r::HSTS_SHORT,
        Some(Some(_)) => r::HSTS_SIX_MONTHS,
        // Absent or without digits (e.g. quoted): unreadable.
        _ => r::HSTS_INVALID,
    }
}

/// `parseInt`-style: optional sign, then the leading digits; `None` without any.
fn leading_integer(text: &str) -> Option<i64> {
    let text = text.trim_start();
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let digits: String = digits.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return None;
    }
    let value = digits.parse::<i64>().unwrap_or(i64::MAX);
    Some(if negative { -value } else { value })
}

pub(crate) fn referrer_policy(last: &Hop, html: Option<&HtmlFacts>) -> Finding {
    const PRIVATE: [&str; 4] = [
        "no-referrer",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
    ];
    const UNSAFE: [&str; 4] = [
        "origin",
        "origin-when-cross-origin",
        "unsafe-url",
        "no-referrer-when-downgrade",
    ];
    let mut values: Vec<String> = last.combined("referrer-policy").into_iter().collect();
    // <meta name=referrer> counts (and wins, coming last) only on an HTML response.
    if last.mime().is_some_and(|m| is_html_mime(&m))
        && let Some(meta) = html.and_then(|h| h.meta_referrer.clone())
    {
        values.push(meta);
    }
    if values.is_empty() {
        return (
            r::REFERRER_NOT_IMPLEMENTED,
            "no Referrer-Policy header or <meta name=referrer>".to_owned(),
        );
    }
    let data = values.join(", ");
    let policy = data
        .split(',')
        .map(|p| p.trim().to_ascii_lowercase())
        .rfind(|p| PRIVATE.contains(&p.as_str()) || UNSAFE.contains(&p.as_str()))
        .unwrap_or_default();
    let outcome = if PRIVATE.contains(&policy.as_str()) {
        r::REFERRER_PRIVATE
    } else if UNSAFE.contains(&policy.as_str()) {
        r::REFERRER_UNSAFE
    } else {
        r::REFERRER_INVALID
    };
    (outcome, format!("Referrer-Policy: {}", clip(&data)))
}

pub(crate) fn x_content_type_options(last: &Hop) -> Finding {
    match last.combined("x-content-type-options") {
        None => (
            r::XCTO_NOT_IMPLEMENTED,
            "no X-Content-Type-Options header".to_owned(),
        ),
        Some(v) => {
            let outcome = if v.trim().eq_ignore_ascii_case("nosniff") {
                r::XCTO_NOSNIFF
            } else {
                r::XCTO_INVALID
            };
            (outcome, format!("X-Content-Type-Options: {}", clip(&v)))
        }
    }
}

pub(crate) fn x_frame_options(last: &Hop, frame_ancestors: Option<&str>) -> Finding {
    let header = last.combined("x-frame-options");
    let (mut outcome, mut evidence) = match &header {
        None => (
            r::XFO_NOT_IMPLEMENTED,
            "no X-Frame-Options header".to_owned(),
        ),
        Some(v) => {
            let lower = v.trim().to_ascii_lowercase();
            let outcome = if lower == "deny" || lower == "sameorigin" {
                r::XFO_SAMEORIGIN_DENY
            } else if lower.starts_with("allow-from") {
                r::XFO_ALLOW_FROM
            } else {
                r::XFO_INVALID
            };
            (outcome, format!("X-Frame-Options: {}", clip(v)))
        }
    };
    if let Some(ancestors) = frame_ancestors {
        outcome = r::XFO_VIA_CSP;
        evidence = format!("CSP frame-ancestors {ancestors}; {evidence}");
    }
    (outcome, evidence)
}

pub(crate) fn cross_origin_resource_policy(last: &Hop) -> Finding {
    let Some(v) = last.combined("cross-origin-resource-policy") else {
        return (
            r::CORP_NOT_IMPLEMENTED,
            "no Cross-Origin-Resource-Policy header".to_owned(),
        );
    };
    let outcome = match v.trim().to_ascii_lowercase().as_str() {
        "same-site" => r::CORP_SAME_SITE,
        "same-origin" => r::CORP_SAME_ORIGIN,
        "cross-origin" => r::CORP_CROSS_ORIGIN,
        _ => r::CORP_INVALID,
    };
    (
        outcome,
        format!("Cross-Origin-Resource-Policy: {}", clip(&v)),
    )
}

/// COOP and COEP share a shape: one structured-field token among known values.
fn token_header(
    last: &Hop,
    name: &str,
    title: &str,
    known: &[(&str, Outcome)],
    absent: Outcome,
    invalid: Outcome,
) -> Finding {
    let values: Vec<&str> = last.values(name).collect();
    let evidence = || format!("{title}: {}", clip(&values.join(" | ")));
    match values.as_slice() {
        [] => (absent, format!("no {title} header")),
        [one] => {
            let token = sfv::item_token(one.trim());
            let outcome = known
                .iter()
                .find(|(k, _)| Some(*k) == token.as_deref())
                .map_or(invalid, |(_, o)| *o);
            (outcome, evidence())
        }
        _ => (
            invalid,
            format!("{} (sent {} times)", evidence(), values.len()),
        ),
    }
}

pub(crate) fn cross_origin_opener_policy(last: &Hop) -> Finding {
    let known = [
        ("same-origin", r::COOP_SAME_ORIGIN),
        ("same-origin-allow-popups", r::COOP_SAME_ORIGIN_ALLOW_POPUPS),
        ("noopener-allow-popups", r::COOP_NOOPENER_ALLOW_POPUPS),
        ("unsafe-none", r::COOP_UNSAFE_NONE),
    ];
    token_header(
        last,
        "cross-origin-opener-policy",
        "Cross-Origin-Opener-Policy",
        &known,
        r::COOP_NOT_IMPLEMENTED,
        r::COOP_INVALID,
    )
}

pub(crate) fn cross_origin_embedder_policy(last: &Hop) -> Finding {
    let known = [
        ("require-corp", r::COEP_REQUIRE_CORP),
        ("credentialless", r::COEP_CREDENTIALLESS),
        ("unsafe-none", r::COEP_UNSAFE_NONE),
    ];
    token_header(
        last,
        "cross-origin-embedder-policy",
        "Cross-Origin-Embedder-Policy",
        &known,
        r::COEP_NOT_IMPLEMENTED,
        r::COEP_INVALID,
    )
}

pub(crate) fn cors(exchange: Option<&CorsExchange>) -> Finding {
    let Some(ex) = exchange.filter(|e| e.status.is_some()) else {
        let why = exchange
            .and_then(|e| e.error.as_ref())
            .map_or_else(|| "not sent".to_owned(), ToString::to_string);
        return (
            r::CORS_NOT_IMPLEMENTED,
            format!("no answer to the CORS preflight ({why})"),
        );
    };
    let first = |name: &str| {
        let values: Vec<&str> = ex
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        if values.is_empty() {
            None
        } else {
            Some(values.join(", "))
        }
    };
    let Some(acao) = first("access-control-allow-origin") else {
        return (
            r::CORS_NOT_IMPLEMENTED,
            format!("no Access-Control-Allow-Origin for Origin {}", ex.origin),
        );
    };
    let credentials = first("access-control-allow-credentials");
    let outcome = if acao.trim() == "*" {
        r::CORS_PUBLIC
    } else if acao == ex.origin
        && credentials
            .as_deref()
            .is_some_and(|c| c.trim().eq_ignore_ascii_case("true"))
    {
        r::CORS_UNIVERSAL
    } else {
        r::CORS_RESTRICTED
    };
    let creds = credentials
        .map(|c| format!(", Access-Control-Allow-Credentials: {}", clip(&c)))
        .unwrap_or_default();
    (
        outcome,
        format!(
            "Origin {} answered with Access-Control-Allow-Origin: {}{creds}",
            ex.origin,
            clip(&acao)
        ),
    )
}

/// Order of SRI results from best to worst, as the Observatory ranks them.
const SRI_ORDER: [Outcome; 6] = [
    r::SRI_ALL_SECURE,
    r::SRI_EXTERNAL_SECURE,
    r::SRI_EXTERNAL_INSECURE,
    r::SRI_EXTERNAL_NO_SRI,
    r::SRI_NONE_INSECURE,
    r::SRI_NOT_HTML,
];

pub(crate) fn subresource_integrity(
    last: &Hop,
    html: Option<&HtmlFacts>,
    session_https: bool,
    domain: &str,
) -> Finding {
    if let Some(mime) = last.mime().filter(|m| !is_html_mime(m)) {
        return (r::SRI_NOT_HTML, format!("the response is {mime}"));
    }
    let empty = HtmlFacts::default();
    let facts = html.unwrap_or(&empty);
    let site = site_of(domain);
    let mut result: Option<Outcome> = None;
    let mut foreign = false;
    let mut external: Vec<String> = Vec::new();
    let worse = |current: Option<Outcome>, new: Outcome| {
        let rank = |o: &Outcome| SRI_ORDER.iter().position(|x| x == o);
        match current {
            Some(old) if rank(&new) <= rank(&old) => Some(old),
            _ => Some(new),
        }
    };
    for script in &facts.scripts {
        let Some(src) = script.src.as_deref().map(str::trim) else {
            continue;
        };
        let lower = src.to_ascii_lowercase();
        let relative_protocol = lower.starts_with("//") && !lower[2..].starts_with('/');
        let absolute = lower.starts_with("http://") || lower.starts_with("https://");
        let relative_origin = !relative_protocol && !absolute;
        let parsed = if absolute {
            url::Url::parse(src).ok()
        } else {
            None
        };
        let same_site = relative_protocol
            || relative_origin
            || parsed
                .as_ref()
                .and_then(|u| u.host_str())
                .is_some_and(|h| site_of(h) == site);
        let secure_origin = relative_origin || (same_site && !relative_protocol);
        let secure_scheme = parsed.as_ref().is_some_and(|u| u.scheme() == "https")
            || (relative_origin && session_https);
        let integrity = script.integrity.is_some();
        if secure_origin {
            if integrity && secure_scheme && result.is_none() {
                result = Some(r::SRI_ALL_SECURE);
            }
            continue;
        }
        foreign = true;
        if external.len() < 10 {
            external.push(format!(
                "{} ({})",
                clip(src),
                if integrity {
                    "integrity"
                } else {
                    "no integrity"
                }
            ));
        }
        match (integrity, secure_scheme) {
            (true, false) => result = worse(result, r::SRI_EXTERNAL_INSECURE),
            (false, true) => result = worse(result, r::SRI_EXTERNAL_NO_SRI),
            (false, false) => result = worse(result, r::SRI_NONE_INSECURE),
            (true, true) => {}
        }
    }
    let outcome = if facts.scripts.is_empty() {
        r::SRI_NO_SCRIPTS
    } else {
        result.unwrap_or(if foreign {
            r::SRI_EXTERNAL_SECURE
        } else {
            r::SRI_SAME_ORIGIN
        })
    };
    let with_src = facts.scripts.iter().filter(|s| s.src.is_some()).count();
    let mut evidence = format!("{} script tags ({with_src} with src)", facts.scripts.len());
    if !external.is_empty() {
        evidence.push_str(&format!("; from other sites: {}", external.join(", ")));
    }
    let styles_without = facts
        .stylesheets
        .iter()
        .filter(|s| s.integrity.is_none())
        .count();
    if !facts.stylesheets.is_empty() {
        evidence.push_str(&format!(
            "; {} stylesheets ({styles_without} without integrity, not scored)",
            facts.stylesheets.len()
        ));
    }
    (outcome, evidence)
}

/// The registrable part of a host, approximated without the Public Suffix List:
/// the last two labels, or three under a two-letter country code's common
/// second level (co.uk, com.au, …).
pub(crate) fn site_of(host: &str) -> String {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    let n = labels.len();
    if n <= 2 {
        return host;
    }
    const SECOND_LEVELS: [&str; 13] = [
        "ac", "co", "com", "edu", "go", "gob", "gov", "mil", "ne", "net", "nic", "or", "org",
    ];
    let take = if labels[n - 1].len() == 2 && SECOND_LEVELS.contains(&labels[n - 2]) {
        3
    } else {
        2
    };
    labels[n - take..].join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrable_sites() {
        let cases = [
            ("www.example.com", "example.com"),
            ("example.com", "example.com"),
            ("a.b.example.co.uk", "example.co.uk"),
            ("cdn.example.test", "example.test"),
            ("Example.COM.", "example.com"),
        ];
        for (host, site) in cases {
            assert_eq!(site_of(host), site, "{host}");
        }
    }

    #[test]
    fn parse_int_like_javascript() {
        let cases = [
            ("31536000", Some(31_536_000)),
            (" 5abc", Some(5)),
            ("-1", Some(-1)),
            ("\"300\"", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(leading_integer(text), expected, "{text:?}");
        }
    }
}
