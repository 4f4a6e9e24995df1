//! Content Security Policy: parsing the way the Observatory does, and its
//! `content-security-policy` test.

use std::collections::{BTreeMap, BTreeSet};

use super::results::{self as r, Outcome};

/// Directive name → source expressions (lower-case).
pub(crate) type Directives = BTreeMap<String, BTreeSet<String>>;

/// A parsed set of policies.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Parsed {
    pub directives: Directives,
    /// report-uri or report-to appeared twice in one policy (allowed, but noted).
    pub duplicate_reporting: bool,
}

/// Shortest policy accepted: the length of "img-src" minus one, as the Observatory has it.
const SHORTEST_POLICY: usize = 6;
const DISALLOWED_IN_META: [&str; 3] = ["frame-ancestors", "report-uri", "sandbox"];
const DANGEROUSLY_BROAD: [&str; 8] = [
    "ftp:",
    "http:",
    "https:",
    "*",
    "http://*",
    "http://*.*",
    "https://*",
    "https://*.*",
];
const UNSAFE_INLINE: [&str; 2] = ["'unsafe-inline'", "data:"];
const NONCE_HASH_PREFIXES: [&str; 4] = ["'sha256-", "'sha384-", "'sha512-", "'nonce-"];

/// Splits raw header values into policies: a comma separates policies.
pub(crate) fn split_policies<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    values
        .into_iter()
        .flat_map(|v| {
            v.split(',')
                .map(|p| p.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Parses policies; `None` when one is empty or too short, or repeats a
/// directive other than report-uri/report-to.
///
/// Several policies all apply, so a directive's sources are narrowed to those
/// both sides allow (a source kept when the other side has it or a path-prefix
/// of it); a directive absent from the first policy but set by a later one
/// keeps nothing and reads as 'none', as in the Observatory.
pub(crate) fn parse(policies: &[String]) -> Option<Parsed> {
    let cleaned: Vec<String> = policies
        .iter()
        .map(|p| p.replace(['\r', '\n'], "").trim().to_owned())
        .collect();
    let mut parsed = Parsed::default();
    if cleaned.is_empty() {
        return Some(parsed);
    }
    if cleaned.iter().any(|p| p.len() < SHORTEST_POLICY) {
        return None;
    }
    for (index, policy) in cleaned.iter().enumerate() {
        let mut seen = BTreeSet::new();
        for entry in policy.split(';') {
            let mut words = entry.split_ascii_whitespace();
            let Some(name) = words.next() else { continue };
            let name = name.to_ascii_lowercase();
            if !seen.insert(name.clone()) {
                if name == "report-uri" || name == "report-to" {
                    parsed.duplicate_reporting = true;
                } else {
                    return None;
                }
            }
            let mut sources: BTreeSet<String> = words.map(str::to_lowercase).collect();
            if sources.is_empty() && name.ends_with("-src") {
                sources.insert("'none'".to_owned());
            }
            let merged = if index == 0 {
                sources
            } else {
                match parsed.directives.get(&name) {
                    Some(before) => narrow(before, &sources),
                    None => BTreeSet::new(),
                }
            };
            parsed.directives.insert(name, merged);
        }
    }
    for sources in parsed.directives.values_mut() {
        if sources.is_empty() {
            sources.insert("'none'".to_owned());
        }
    }
    Some(parsed)
}

/// Parses `<meta>` policies, dropping what only a header may set.
pub(crate) fn parse_meta(policies: &[String]) -> Option<Parsed> {
    let mut parsed = parse(policies)?;
    for name in DISALLOWED_IN_META {
        parsed.directives.remove(name);
    }
    Some(parsed)
}

fn narrow(a: &BTreeSet<String>, b: &BTreeSet<String>) -> BTreeSet<String> {
    let from_b = b.iter().filter(|s| a.iter().any(|p| path_part_match(p, s)));
    let from_a = a.iter().filter(|s| b.iter().any(|p| path_part_match(p, s)));
    from_b.chain(from_a).cloned().collect()
}

/// Does source `a` cover source `b` (equal, or `a` ends in `/` and is a path prefix)?
fn path_part_match(a: &str, b: &str) -> bool {
    if a.is_empty() || (a == "/" && b.is_empty()) {
        return true;
    }
    let exact = !a.ends_with('/');
    let mut pa: Vec<&str> = a.split('/').collect();
    let pb: Vec<&str> = b.split('/').collect();
    if pa.len() > pb.len() || (exact && pa.len() != pb.len()) {
        return false;
    }
    if !exact {
        pa.pop();
    }
    pa.iter()
        .zip(&pb)
        .all(|(x, y)| percent_decode(x) == percent_decode(y))
}

fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// What the CSP test needs from the graded response.
pub(crate) struct Input<'a> {
    /// Every `Content-Security-Policy` header value.
    pub header_values: Vec<&'a str>,
    /// `<meta http-equiv>` policies (only when the response is HTML).
    pub meta: &'a [String],
    pub report_only: bool,
    /// The graded session started on https://.
    pub https: bool,
}

/// The test's verdict, and the header-only frame-ancestors for X-Frame-Options.
pub(crate) struct Verdict {
    pub outcome: Outcome,
    pub evidence: String,
    /// Set when the policy is in force and its header sets frame-ancestors.
    pub frame_ancestors: Option<BTreeSet<String>>,
}

pub(crate) fn test(input: &Input<'_>) -> Verdict {
    let header = split_policies(input.header_values.iter().copied());
    let meta = split_policies(input.meta.iter().map(String::as_str));
    let shown = describe(&input.header_values, input.meta);
    let verdict = |outcome, evidence: String| Verdict {
        outcome,
        evidence,
        frame_ancestors: None,
    };

    let all: Vec<String> = header.iter().chain(meta.iter()).cloned().collect();
    let Some(combined) = parse(&all) else {
        return verdict(r::CSP_INVALID, format!("{shown}: cannot be parsed"));
    };
    let header_only = parse(&header).unwrap_or_default();
    let meta_only = parse_meta(&meta).unwrap_or_default();
    if header_only.directives.is_empty() && meta_only.directives.is_empty() {
        return if input.report_only {
            verdict(
                r::CSP_REPORT_ONLY,
                "only Content-Security-Policy-Report-Only is sent".to_owned(),
            )
        } else if input.header_values.is_empty() && input.meta.is_empty() {
            verdict(
                r::CSP_NOT_IMPLEMENTED,
                "no Content-Security-Policy header or <meta> policy".to_owned(),
            )
        } else {
            verdict(
                r::CSP_NOT_IMPLEMENTED,
                format!("{shown}: no directive a page can enforce"),
            )
        };
    }

    let mut csp = combined.directives;
    let mut result: Option<Outcome> = None;
    let key_for = |csp: &Directives, primary: &str| {
        [primary, "default-src"]
            .into_iter()
            .find(|k| csp.contains_key(*k))
            .map(str::to_owned)
    };
    let script_key = key_for(&csp, "script-src");
    let style_key = key_for(&csp, "style-src");
    let star = || BTreeSet::from(["*".to_owned()]);

    // A nonce or hash makes browsers ignore 'unsafe-inline'.
    for key in [&script_key, &style_key].into_iter().flatten() {
        if let Some(list) = csp.get_mut(key)
            && has_nonce_or_hash(list)
        {
            list.remove("'unsafe-inline'");
        }
    }
    // 'strict-dynamic' needs a nonce or hash, and then overrides host and scheme sources.
    let script_now = script_key
        .as_ref()
        .and_then(|k| csp.get(k))
        .cloned()
        .unwrap_or_else(star);
    if script_now.contains("'strict-dynamic'") {
        if has_nonce_or_hash(&script_now) {
            if let Some(list) = script_key.as_ref().and_then(|k| csp.get_mut(k)) {
                list.retain(|s| {
                    !(DANGEROUSLY_BROAD.iter().any(|b| s.starts_with(b))
                        || s == "'self'"
                        || s == "'unsafe-inline'")
                });
            }
        } else {
            result = Some(r::CSP_INVALID);
        }
    }

    let get = |key: &Option<String>| {
        key.as_ref()
            .and_then(|k| csp.get(k))
            .cloned()
            .unwrap_or_else(star)
    };
    let script_src = get(&script_key);
    let style_src = get(&style_key);
    let object_src = get(&key_for(&csp, "object-src"));
    let passive_directives = ["img-src", "media-src"];
    let active: Vec<&String> = csp
        .iter()
        .filter(|(d, _)| !passive_directives.contains(&d.as_str()) && d.as_str() != "script-src")
        .flat_map(|(_, s)| s.iter())
        .chain(script_src.iter())
        .collect();
    let passive: Vec<&String> = passive_directives
        .iter()
        .flat_map(|d| {
            csp.get(*d)
                .or_else(|| csp.get("default-src"))
                .into_iter()
                .flatten()
        })
        .collect();
    let insecure = |s: &&String| s.starts_with("http:") || s.starts_with("ftp:");
    let broad = |s: &String| DANGEROUSLY_BROAD.contains(&s.as_str());
    let broad_or_inline = |s: &String| broad(s) || UNSAFE_INLINE.contains(&s.as_str());

    let mut note = |outcome: Outcome| {
        if result.is_none() {
            result = Some(outcome);
        }
    };
    if script_src.iter().any(broad_or_inline) || object_src.iter().any(broad) {
        note(r::CSP_UNSAFE_INLINE);
    }
    if input.https && active.iter().any(insecure) {
        note(r::CSP_INSECURE_SCHEME);
    }
    if script_src.contains("'unsafe-eval'") || style_src.contains("'unsafe-eval'") {
        note(r::CSP_UNSAFE_EVAL);
    }
    if input.https && passive.iter().any(insecure) {
        note(r::CSP_INSECURE_PASSIVE);
    }
    if style_src.iter().any(broad_or_inline) {
        note(r::CSP_UNSAFE_STYLE_ONLY);
    }
    if csp
        .get("default-src")
        .is_some_and(|d| d.len() == 1 && d.contains("'none'"))
    {
        note(r::CSP_DEFAULT_SRC_NONE);
    } else {
        note(r::CSP_NO_UNSAFE);
    }
    let mut outcome = result.unwrap_or(r::CSP_NO_UNSAFE);
    if outcome.passes() && combined.duplicate_reporting {
        outcome = r::CSP_DUPLICATE_DIRECTIVES;
    }
    Verdict {
        outcome,
        evidence: shown,
        frame_ancestors: header_only.directives.get("frame-ancestors").cloned(),
    }
}

fn has_nonce_or_hash(list: &BTreeSet<String>) -> bool {
    list.iter()
        .any(|s| NONCE_HASH_PREFIXES.iter().any(|p| s.starts_with(p)))
}

fn describe(header: &[&str], meta: &[String]) -> String {
    let mut parts: Vec<String> = header
        .iter()
        .map(|h| format!("Content-Security-Policy: {}", clip(h)))
        .collect();
    parts.extend(meta.iter().map(|m| format!("<meta> policy: {}", clip(m))));
    if parts.is_empty() {
        "no policy".to_owned()
    } else {
        parts.join("; and ")
    }
}

pub(crate) fn clip(s: &str) -> String {
    const MAX: usize = 300;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn policies(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parser_cases() {
        let ok = parse(&policies(&[
            "Default-Src 'SELF' https://A.example;  img-src; upgrade-insecure-requests",
        ]))
        .expect("valid");
        assert_eq!(
            ok.directives["default-src"],
            set(&["'self'", "https://a.example"])
        );
        assert_eq!(ok.directives["img-src"], set(&["'none'"]));
        assert_eq!(ok.directives["upgrade-insecure-requests"], set(&["'none'"]));

        assert!(
            parse(&policies(&["script-src 'self'; script-src 'none'"])).is_none(),
            "duplicate directive"
        );
        assert!(parse(&policies(&["a b"])).is_none(), "too short");
        assert!(parse(&policies(&[""])).is_none(), "empty policy");
        let dup = parse(&policies(&[
            "default-src 'self'; report-uri /a; report-uri /b",
        ]))
        .expect("valid");
        assert!(dup.duplicate_reporting);

        let two = parse(&policies(&[
            "script-src 'self' https://cdn.example/lib/ 'unsafe-inline'; object-src 'none'",
            "script-src 'self' https://cdn.example/lib/x.js; img-src *",
        ]))
        .expect("valid");
        assert_eq!(
            two.directives["script-src"],
            set(&["'self'", "https://cdn.example/lib/x.js"])
        );
        assert_eq!(two.directives["object-src"], set(&["'none'"]));
        assert_eq!(
            two.directives["img-src"],
            set(&["'none'"]),
            "absent from the first policy"
        );

        assert_eq!(split_policies(["a, b", "c"]), vec!["a", "b", "c"]);
        let meta = parse_meta(&policies(&[
            "default-src 'self'; frame-ancestors 'none'; sandbox",
        ]))
        .expect("valid");
        assert!(!meta.directives.contains_key("frame-ancestors"));
        assert!(!meta.directives.contains_key("sandbox"));
    }

    #[test]
    fn path_matching() {
        let cases = [
            ("'self'", "'self'", true),
            ("'self'", "'none'", false),
            ("https://a.example/", "https://a.example/x", true),
            ("https://a.example/x", "https://a.example/", false),
            ("https://a.example/a%20b", "https://a.example/a b", true),
            ("", "anything", true),
        ];
        for (a, b, expected) in cases {
            assert_eq!(path_part_match(a, b), expected, "{a} vs {b}");
        }
    }
}
