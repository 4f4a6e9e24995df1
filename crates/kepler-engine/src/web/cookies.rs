//! `Set-Cookie` as a browser's cookie jar would keep it, and the Observatory's
//! `cookies` test.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::results::{self as r, Outcome};

/// Cookies the Observatory ignores (a load balancer's, see mozilla/http-observatory#282).
const IGNORED: [&str; 1] = ["heroku-session-affinity"];

/// A cookie as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cookie {
    pub name: String,
    pub domain: String,
    pub path: String,
    pub secure: bool,
    pub http_only: bool,
    /// `strict`, `lax`, `none`, or `unspecified` for an unknown value.
    pub same_site: Option<String>,
    /// `Max-Age` ≤ 0 or `Expires` before the response's `Date`: a deletion.
    pub expired: bool,
}

/// Parses one `Set-Cookie` value received from `host` for request path `path`;
/// `now` (the response's `Date`) decides whether `Expires` already passed.
pub(crate) fn parse(
    raw: &str,
    host: &str,
    path: &str,
    now: Option<DateTime<Utc>>,
) -> Option<Cookie> {
    let mut parts = raw.split(';');
    let pair = parts.next()?;
    let (name, _value) = pair.split_once('=')?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let mut cookie = Cookie {
        name: name.to_owned(),
        domain: host.to_ascii_lowercase(),
        path: default_path(path),
        secure: false,
        http_only: false,
        same_site: None,
        expired: false,
    };
    let (mut max_age, mut expires) = (None, None);
    for attr in parts {
        let (key, value) = match attr.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim()),
            None => (attr.trim().to_ascii_lowercase(), ""),
        };
        match key.as_str() {
            "secure" => cookie.secure = true,
            "httponly" => cookie.http_only = true,
            "samesite" => {
                let v = value.to_ascii_lowercase();
                let known = matches!(v.as_str(), "strict" | "lax" | "none");
                cookie.same_site = Some(if known { v } else { "unspecified".to_owned() });
            }
            "domain" if !value.is_empty() => {
                let domain = value.trim_start_matches('.').to_ascii_lowercase();
                let host = cookie_host(host);
                // A jar refuses a Domain the request host is not within.
                if host != domain && !host.ends_with(&format!(".{domain}")) {
                    return None;
                }
                cookie.domain = domain;
            }
            "path" if value.starts_with('/') => cookie.path = value.to_owned(),
            "max-age" => max_age = value.parse::<i64>().ok(),
            "expires" => expires = cookie_date(value),
            _ => {}
        }
    }
    cookie.expired = match (max_age, expires, now) {
        (Some(age), _, _) => age <= 0,
        (None, Some(at), Some(now)) => at < now,
        _ => false,
    };
    Some(cookie)
}

fn cookie_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// RFC 6265 §5.1.4.
fn default_path(path: &str) -> String {
    match path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(i) => path[..i].to_owned(),
    }
}

/// The lenient date grammar of RFC 6265 §5.1.1 (also reads HTTP `Date`).
pub(crate) fn cookie_date(text: &str) -> Option<DateTime<Utc>> {
    let is_delim = |c: char| {
        c == '\t'
            || (' '..='/').contains(&c)
            || (';'..='@').contains(&c)
            || ('['..='`').contains(&c)
            || ('{'..='~').contains(&c)
    };
    let (mut time, mut day, mut month, mut year) = (None, None, None, None);
    for token in text.split(is_delim).filter(|t| !t.is_empty()) {
        let digits_prefix = |t: &str, min: usize, max: usize| {
            let n = t.chars().take_while(char::is_ascii_digit).count();
            (min..=max)
                .contains(&n)
                .then(|| t[..n].parse::<u32>().ok())
                .flatten()
        };
        if time.is_none() {
            let fields: Vec<&str> = token.splitn(3, ':').collect();
            if fields.len() == 3
                && let (Some(h), Some(m), Some(s)) = (
                    digits_prefix(fields[0], 1, 2),
                    digits_prefix(fields[1], 1, 2),
                    digits_prefix(fields[2], 1, 2),
                )
            {
                time = Some((h, m, s));
                continue;
            }
        }
        if day.is_none()
            && let Some(d) = digits_prefix(token, 1, 2)
        {
            day = Some(d);
            continue;
        }
        if month.is_none() {
            let names = [
                "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
            ];
            let lower = token.to_ascii_lowercase();
            if let Some(i) = names.iter().position(|n| lower.starts_with(n)) {
                month = Some(i as u32 + 1);
                continue;
            }
        }
        if year.is_none()
            && let Some(y) = digits_prefix(token, 2, 4)
        {
            year = Some(match y {
                70..=99 => y + 1900,
                0..=69 => y + 2000,
                _ => y,
            });
        }
    }
    let (h, m, s) = time?;
    let date = NaiveDate::from_ymd_opt(i32::try_from(year?).ok()?, month?, day?)?;
    Some(date.and_hms_opt(h, m, s)?.and_utc())
}

/// The cookies a jar would hold after these responses: later ones replace
/// earlier ones with the same name, domain and path; deletions remove them.
pub(crate) fn jar(cookies: impl IntoIterator<Item = Cookie>) -> Vec<Cookie> {
    let mut kept: BTreeMap<(String, String, String), (usize, Cookie)> = BTreeMap::new();
    for (order, c) in cookies.into_iter().enumerate() {
        let key = (c.name.clone(), c.domain.clone(), c.path.clone());
        if c.expired {
            kept.remove(&key);
        } else {
            kept.insert(key, (order, c));
        }
    }
    let mut list: Vec<(usize, Cookie)> = kept.into_values().collect();
    list.sort_by_key(|(order, _)| *order);
    list.into_iter()
        .map(|(_, c)| c)
        .filter(|c| !IGNORED.contains(&c.name.as_str()))
        .collect()
}

/// Order of the Observatory's failures, least bad first.
const BADNESS: [Outcome; 7] = [
    r::COOKIES_NO_SECURE_HSTS,
    r::COOKIES_NO_SECURE,
    r::COOKIES_SESSION_NO_SECURE_HSTS,
    r::COOKIES_SAMESITE_INVALID,
    r::COOKIES_ANTICSRF_NO_SAMESITE,
    r::COOKIES_SESSION_NO_HTTPONLY,
    r::COOKIES_SESSION_NO_SECURE,
];

fn worse(current: Option<Outcome>, new: Outcome) -> Option<Outcome> {
    let rank = |o: &Outcome| BADNESS.iter().position(|b| b == o);
    match current {
        Some(old) if rank(&new) <= rank(&old) => Some(old),
        _ => Some(new),
    }
}

/// A raw `Set-Cookie` whose SameSite is empty or unknown.
fn has_invalid_same_site(raw: &str) -> bool {
    raw.split(';').any(|part| {
        let mut kv = part.trim().split('=');
        let key = kv.next().unwrap_or_default().trim();
        let value = kv.next().unwrap_or_default().trim().to_ascii_lowercase();
        key.eq_ignore_ascii_case("samesite") && !matches!(value.as_str(), "lax" | "strict" | "none")
    })
}

/// The `cookies` test over the jar's cookies and the graded response's raw
/// `Set-Cookie` values; `hsts` is whether the HSTS test passed.
pub(crate) fn test(cookies: &[Cookie], final_raw: &[&str], hsts: bool) -> (Outcome, String) {
    if cookies.is_empty() {
        return (r::COOKIES_NOT_FOUND, "no cookies were set".to_owned());
    }
    let mut result = None;
    if final_raw.iter().any(|raw| has_invalid_same_site(raw)) {
        result = worse(result, r::COOKIES_SAMESITE_INVALID);
    }
    let mut missing_same_site = false;
    for c in cookies {
        let lower = c.name.to_ascii_lowercase();
        let session = lower.contains("login") || lower.contains("sess");
        let anti_csrf = lower.contains("csrf");
        if !c.secure && c.same_site.as_deref() == Some("none") {
            result = worse(result, r::COOKIES_SAMESITE_INVALID);
        }
        if !c.secure {
            result = worse(
                result,
                if hsts {
                    r::COOKIES_NO_SECURE_HSTS
                } else {
                    r::COOKIES_NO_SECURE
                },
            );
        }
        if anti_csrf && c.same_site.is_none() {
            result = worse(result, r::COOKIES_ANTICSRF_NO_SAMESITE);
        }
        if session && !c.secure {
            result = worse(
                result,
                if hsts {
                    r::COOKIES_SESSION_NO_SECURE_HSTS
                } else {
                    r::COOKIES_SESSION_NO_SECURE
                },
            );
        }
        if session && !c.http_only {
            result = worse(result, r::COOKIES_SESSION_NO_HTTPONLY);
        }
        missing_same_site |= c.same_site.is_none();
    }
    let outcome = result.unwrap_or(if missing_same_site {
        r::COOKIES_ALL_GOOD
    } else {
        r::COOKIES_ALL_GOOD_SAMESITE
    });
    let seen: Vec<String> = cookies.iter().take(20).map(describe).collect();
    let more = if cookies.len() > 20 {
        format!(" (and {} more)", cookies.len() - 20)
    } else {
        String::new()
    };
    (outcome, format!("{}{more}", seen.join("; ")))
}

fn describe(c: &Cookie) -> String {
    let mut flags = vec![
        if c.secure { "Secure" } else { "no Secure" },
        if c.http_only {
            "HttpOnly"
        } else {
            "no HttpOnly"
        },
    ];
    let same_site = c
        .same_site
        .as_ref()
        .map_or_else(|| "no SameSite".to_owned(), |s| format!("SameSite={s}"));
    flags.push(&same_site);
    format!("{} ({})", c.name, flags.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookie(raw: &str) -> Cookie {
        parse(raw, "site.test", "/", None).expect("parses")
    }

    fn check(raws: &[&str], hsts: bool, expected: &str, points: i32) {
        let cookies = jar(raws.iter().filter_map(|r| parse(r, "site.test", "/", None)));
        let (outcome, _) = test(&cookies, raws, hsts);
        assert_eq!(
            (outcome.name, outcome.modifier),
            (expected, points),
            "{raws:?} hsts={hsts}"
        );
    }

    #[test]
    fn cookie_test_table() {
        check(&[], false, "cookies-not-found", 0);
        check(&["a"], false, "cookies-not-found", 0);
        check(
            &["heroku-session-affinity=x"],
            false,
            "cookies-not-found",
            0,
        );
        check(
            &["sid=1; Secure; HttpOnly; SameSite=Lax"],
            false,
            "cookies-secure-with-httponly-sessions-and-samesite",
            5,
        );
        check(
            &["theme=dark; Secure; SameSite=Strict"],
            false,
            "cookies-secure-with-httponly-sessions-and-samesite",
            5,
        );
        check(
            &["sessionid=1; Secure; HttpOnly"],
            false,
            "cookies-secure-with-httponly-sessions",
            0,
        );
        check(
            &["theme=dark"],
            true,
            "cookies-without-secure-flag-but-protected-by-hsts",
            -5,
        );
        check(&["theme=dark"], false, "cookies-without-secure-flag", -20);
        check(
            &["PHPSESSID=1; HttpOnly"],
            true,
            "cookies-session-without-secure-flag-but-protected-by-hsts",
            -10,
        );
        check(
            &["PHPSESSID=1; HttpOnly"],
            false,
            "cookies-session-without-secure-flag",
            -40,
        );
        check(
            &["login=1; Secure"],
            false,
            "cookies-session-without-httponly-flag",
            -30,
        );
        check(
            &["csrftoken=1; Secure"],
            false,
            "cookies-anticsrf-without-samesite-flag",
            -20,
        );
        check(
            &["csrftoken=1; Secure; SameSite=Lax"],
            false,
            "cookies-secure-with-httponly-sessions-and-samesite",
            5,
        );
        check(
            &["a=1; Secure; SameSite=Bogus"],
            false,
            "cookies-samesite-flag-invalid",
            -20,
        );
        check(
            &["a=1; Secure; SameSite"],
            false,
            "cookies-samesite-flag-invalid",
            -20,
        );
        check(
            &["a=1; SameSite=None"],
            false,
            "cookies-samesite-flag-invalid",
            -20,
        );
        check(
            &["a=1; Secure; SameSite=None"],
            false,
            "cookies-secure-with-httponly-sessions-and-samesite",
            5,
        );
        // The worst finding wins, whatever the order.
        check(
            &["sess=1; Secure", "theme=1"],
            false,
            "cookies-session-without-httponly-flag",
            -30,
        );
        check(
            &["theme=1", "sess=1"],
            false,
            "cookies-session-without-secure-flag",
            -40,
        );
        // A later deletion removes the cookie from the jar.
        check(
            &["sess=1", "sess=; Max-Age=0"],
            false,
            "cookies-not-found",
            0,
        );
    }

    #[test]
    fn attribute_parsing() {
        let c = cookie(
            "  id = 7 ; SECURE; httponly; samesite=LAX; Path=/app; Domain=.Site.Test; Max-Age=60",
        );
        assert_eq!(c.name, "id");
        assert!(c.secure && c.http_only && !c.expired);
        assert_eq!(c.same_site.as_deref(), Some("lax"));
        assert_eq!((c.domain.as_str(), c.path.as_str()), ("site.test", "/app"));
        assert!(
            parse("x=1; Domain=other.test", "site.test", "/", None).is_none(),
            "foreign Domain refused"
        );
        assert!(parse("=1", "site.test", "/", None).is_none());
        assert_eq!(
            parse("x=1", "site.test", "/a/b", None).map(|c| c.path),
            Some("/a".to_owned())
        );
        let now = cookie_date("Wed, 21 Oct 2015 07:28:00 GMT");
        assert!(
            parse(
                "x=1; Expires=Tue, 20-Oct-2015 07:28:00 GMT",
                "site.test",
                "/",
                now
            )
            .is_some_and(|c| c.expired)
        );
        assert!(
            parse(
                "x=1; Expires=Thu, 22 Oct 2015 07:28:00 GMT",
                "site.test",
                "/",
                now
            )
            .is_some_and(|c| !c.expired)
        );
    }

    #[test]
    fn cookie_dates() {
        let expected = NaiveDate::from_ymd_opt(2015, 10, 21)
            .and_then(|d| d.and_hms_opt(7, 28, 0))
            .map(|d| d.and_utc());
        for text in [
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Wednesday, 21-Oct-15 07:28:00 GMT",
            "Wed Oct 21 07:28:00 2015",
        ] {
            assert_eq!(cookie_date(text), expected, "{text}");
        }
        assert_eq!(cookie_date("not a date"), None);
        assert_eq!(cookie_date("31 Feb 2015 00:00:00"), None);
    }
}
