//! MTA-STS (RFC 8461): the `_mta-sts` TXT record, the policy file and how its
//! `mx` patterns cover the domain's mail exchangers.

use std::fmt;

use super::PolicyResponse;
use super::record::tag_list;

/// Longest policy body accepted (RFC 8461 §3.3 suggests senders cap it at 64 KiB).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;
/// Largest `max_age` allowed (RFC 8461 §3.2).
pub const MAX_MAX_AGE: u64 = 31_557_600;

/// The policy file's URL for `domain`.
pub fn policy_url(domain: &str) -> String {
    format!("https://mta-sts.{domain}/.well-known/mta-sts.txt")
}

/// Whether a TXT string is an MTA-STS record: it begins with `v=STSv1` (§3.1).
pub fn is_sts_txt(text: &str) -> bool {
    let first = text.split(';').next().unwrap_or("");
    first
        .split_once('=')
        .is_some_and(|(t, v)| t.trim() == "v" && v.trim() == "STSv1")
}

/// Parses the TXT record; returns its `id`.
pub fn parse_txt(text: &str) -> Result<String, String> {
    let tags = tag_list(text)?;
    match tags.first() {
        Some((t, v)) if t == "v" && v == "STSv1" => {}
        _ => return Err("the record must start with v=STSv1".into()),
    }
    let id = tags
        .iter()
        .find(|(t, _)| t == "id")
        .map(|(_, v)| v.clone())
        .ok_or("the id field is missing")?;
    if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!("id {id:?} is not 1 to 32 letters and digits"));
    }
    Ok(id)
}

/// The policy mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    Testing,
    None,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        })
    }
}

/// A parsed policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    pub max_age: u64,
    pub mx: Vec<String>,
}

/// Checks the HTTP response (§3.3: 200 only, no redirects followed, text/plain)
/// and parses its body.
pub fn read_response(response: &PolicyResponse) -> Result<Policy, String> {
    if response.status != 200 {
        let hint = if (300..400).contains(&response.status) {
            " (redirects are not followed)"
        } else {
            ""
        };
        return Err(format!(
            "the policy URL answered HTTP {}{hint}",
            response.status
        ));
    }
    let media = response
        .content_type
        .as_deref()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    if !media.eq_ignore_ascii_case("text/plain") {
        return Err(format!(
            "the policy is served as {:?}, not text/plain",
            response.content_type.as_deref().unwrap_or("")
        ));
    }
    parse_policy(&response.body)
}

/// Parses a policy body (§3.2): `key: value` lines, CRLF or LF.
pub fn parse_policy(body: &[u8]) -> Result<Policy, String> {
    if body.len() > MAX_POLICY_BYTES {
        return Err(format!(
            "the policy is {} bytes, over the {MAX_POLICY_BYTES}-byte limit",
            body.len()
        ));
    }
    let text = std::str::from_utf8(body).map_err(|_| "the policy is not UTF-8 text".to_owned())?;
    let (mut version, mut mode, mut max_age) = (None, None, None);
    let mut mx = Vec::new();
    for line in text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)) {
        if line.trim().is_empty() {
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| format!("line {line:?} is not key: value"))?;
        let (key, value) = (key.trim(), value.trim());
        let once = |slot: &mut Option<String>| {
            if slot.is_some() {
                Err(format!("{key} appears more than once"))
            } else {
                *slot = Some(value.to_owned());
                Ok(())
            }
        };
        match key {
            "version" => once(&mut version)?,
            "mode" => once(&mut mode)?,
            "max_age" => once(&mut max_age)?,
            "mx" => mx.push(value.to_ascii_lowercase()),
            _ => {} // extension fields are ignored
        }
    }
    if version.as_deref() != Some("STSv1") {
        return Err(format!(
            "version is {:?}, not STSv1",
            version.unwrap_or_default()
        ));
    }
    let mode = match mode.as_deref() {
        Some("enforce") => Mode::Enforce,
        Some("testing") => Mode::Testing,
        Some("none") => Mode::None,
        Some(other) => return Err(format!("mode {other:?} is not enforce, testing or none")),
        None => return Err("the mode field is missing".into()),
    };
    let max_age_text = max_age.ok_or("the max_age field is missing")?;
    let max_age = max_age_text
        .parse::<u64>()
        .ok()
        .filter(|n| {
            *n <= MAX_MAX_AGE
                && max_age_text.len() <= 10
                && max_age_text.bytes().all(|b| b.is_ascii_digit())
        })
        .ok_or_else(|| {
            format!("max_age {max_age_text:?} is not a whole number of seconds up to {MAX_MAX_AGE}")
        })?;
    if mx.is_empty() && mode != Mode::None {
        return Err("no mx field: a policy must name the mail exchangers it allows".into());
    }
    if let Some(bad) = mx.iter().find(|p| !is_pattern(p)) {
        return Err(format!("mx pattern {bad:?} is not a host name or *.domain"));
    }
    Ok(Policy { mode, max_age, mx })
}

fn is_pattern(pattern: &str) -> bool {
    let name = pattern.strip_prefix("*.").unwrap_or(pattern);
    let labels: Vec<&str> = name.trim_end_matches('.').split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Whether an MX host matches a policy pattern (§4.1): exact, or `*.` standing
/// for exactly one leftmost label.
pub fn mx_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
        None => host == pattern,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_records() {
        assert_eq!(
            parse_txt("v=STSv1; id=20160831085700Z;"),
            Ok("20160831085700Z".into())
        );
        assert_eq!(parse_txt("v=STSv1;id=abc"), Ok("abc".into()));
        assert!(parse_txt("v=STSv1").is_err());
        assert!(parse_txt("v=STSv1; id=").is_err());
        assert!(parse_txt("v=STSv1; id=has-dash").is_err());
        assert!(parse_txt(&format!("v=STSv1; id={}", "a".repeat(33))).is_err());
        assert!(parse_txt("id=abc; v=STSv1").is_err());
        assert!(is_sts_txt("v=STSv1; id=1"));
        assert!(!is_sts_txt("v=spf1 -all"));
    }

    fn policy(text: &str) -> Result<Policy, String> {
        parse_policy(text.as_bytes())
    }

    #[test]
    fn policy_files() {
        let p = policy("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n")
            .expect("valid");
        assert_eq!(
            p,
            Policy {
                mode: Mode::Enforce,
                max_age: 604800,
                mx: vec!["mail.example.com".into(), "*.example.net".into()]
            }
        );
        assert_eq!(
            policy("version: STSv1\nmode: testing\nmx: mx.example.com\nmax_age: 86400\n")
                .map(|p| p.mode),
            Ok(Mode::Testing)
        );
        assert_eq!(
            policy("version: STSv1\nmode: none\nmax_age: 86400").map(|p| p.mode),
            Ok(Mode::None)
        );
        assert!(
            policy("mode: enforce\nmx: a.example\nmax_age: 1").is_err(),
            "no version"
        );
        assert!(policy("version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1").is_err());
        assert!(policy("version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1").is_err());
        assert!(
            policy("version: STSv1\nmode: enforce\nmax_age: 1").is_err(),
            "no mx"
        );
        assert!(policy("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601").is_err());
        assert!(policy("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -5").is_err());
        assert!(
            policy("version: STSv1\nmode: enforce\nmode: none\nmx: a.example\nmax_age: 5").is_err()
        );
        assert!(policy("version: STSv1\nmode: enforce\nmx: not a host\nmax_age: 5").is_err());
        assert!(policy("<html>not found</html>").is_err());
        assert!(parse_policy(&vec![b'a'; MAX_POLICY_BYTES + 1]).is_err());
    }

    #[test]
    fn responses() {
        let body = b"version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n".to_vec();
        let ok = PolicyResponse {
            status: 200,
            content_type: Some("text/plain; charset=utf-8".into()),
            body: body.clone(),
        };
        assert!(read_response(&ok).is_ok());
        let redirect = PolicyResponse {
            status: 301,
            content_type: None,
            body: vec![],
        };
        assert!(
            read_response(&redirect)
                .expect_err("a redirect")
                .contains("redirects")
        );
        let html = PolicyResponse {
            status: 200,
            content_type: Some("text/html".into()),
            body,
        };
        assert!(read_response(&html).is_err());
    }

    #[test]
    fn mx_patterns() {
        for (pattern, host, matches) in [
            ("mail.example.com", "mail.example.com", true),
            ("mail.example.com", "MAIL.example.com.", true),
            ("mail.example.com", "mx.example.com", false),
            ("*.example.com", "mx1.example.com", true),
            ("*.example.com", "a.b.example.com", false),
            ("*.example.com", "example.com", false),
            ("*.example.com", ".example.com", false),
        ] {
            assert_eq!(mx_matches(pattern, host), matches, "{pattern} vs {host}");
        }
    }
}
