//! An RFC 9116 `security.txt` parser: fields, comments, and the optional
//! OpenPGP cleartext-signed form (recognised, not verified).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Lines kept per field kind and invalid lines noted, so a huge file cannot
/// inflate the evidence.
const MAX_VALUES: usize = 50;
const MAX_VALUE_LEN: usize = 512;

/// A parsed file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityTxt {
    /// Wrapped in `-----BEGIN PGP SIGNED MESSAGE-----`.
    pub signed: bool,
    /// For a signed file: the signature block is present and closed.
    pub signature_block_complete: bool,
    pub contact: Vec<String>,
    pub expires: Vec<String>,
    pub canonical: Vec<String>,
    pub preferred_languages: Vec<String>,
    pub encryption: Vec<String>,
    pub policy: Vec<String>,
    pub acknowledgments: Vec<String>,
    pub hiring: Vec<String>,
    /// Field names this parser does not know (allowed by the RFC, ignored).
    pub unknown_fields: Vec<String>,
    /// 1-based line numbers and text of lines that are neither fields nor comments.
    pub invalid_lines: Vec<(usize, String)>,
}

impl SecurityTxt {
    /// Parses `text`; never fails, problems are recorded in the result.
    pub fn parse(text: &str) -> SecurityTxt {
        let mut file = SecurityTxt::default();
        let lines: Vec<&str> = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        let first = lines.iter().position(|l| !l.trim().is_empty());
        let body: Vec<(usize, String)> = match first {
            Some(i) if lines[i].trim() == "-----BEGIN PGP SIGNED MESSAGE-----" => {
                file.signed = true;
                file.signed_content(&lines[i + 1..], i + 1)
            }
            _ => lines
                .iter()
                .enumerate()
                .map(|(n, l)| (n + 1, (*l).to_owned()))
                .collect(),
        };
        for (number, line) in body {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once(':') {
                Some((name, value)) if is_field_name(name) => file.add(name, value.trim()),
                _ => push(&mut file.invalid_lines, (number, clip(line))),
            }
        }
        file
    }

    /// The cleartext of a signed message: the armor headers end at the first
    /// empty line, then dash-escaped text runs to the signature block.
    fn signed_content(&mut self, rest: &[&str], offset: usize) -> Vec<(usize, String)> {
        let start = rest
            .iter()
            .position(|l| l.trim().is_empty())
            .map_or(rest.len(), |i| i + 1);
        let mut out = Vec::new();
        for (i, line) in rest.iter().enumerate().skip(start) {
            if line.trim() == "-----BEGIN PGP SIGNATURE-----" {
                self.signature_block_complete = rest[i..]
                    .iter()
                    .any(|l| l.trim() == "-----END PGP SIGNATURE-----");
                return out;
            }
            let unescaped = line.strip_prefix("- ").unwrap_or(line);
            out.push((offset + i + 1, unescaped.to_owned()));
        }
        out
    }

    fn add(&mut self, name: &str, value: &str) {
        let value = clip(value);
        let list = match name.to_ascii_lowercase().as_str() {
            "contact" => &mut self.contact,
            "expires" => &mut self.expires,
            "canonical" => &mut self.canonical,
            "preferred-languages" => &mut self.preferred_languages,
            "encryption" => &mut self.encryption,
            "policy" => &mut self.policy,
            "acknowledgments" => &mut self.acknowledgments,
            "hiring" => &mut self.hiring,
            _ => {
                let name = name.to_owned();
                if !self.unknown_fields.contains(&name) {
                    push(&mut self.unknown_fields, name);
                }
                return;
            }
        };
        push(list, value);
    }

    /// Known fields seen at all: a page with none is not a security.txt.
    pub fn known_field_count(&self) -> usize {
        [
            &self.contact,
            &self.expires,
            &self.canonical,
            &self.preferred_languages,
            &self.encryption,
            &self.policy,
            &self.acknowledgments,
            &self.hiring,
        ]
        .iter()
        .map(|v| v.len())
        .sum()
    }

    /// The single `Expires` as a time, when there is exactly one and it parses.
    pub fn expires_at(&self) -> Result<DateTime<Utc>, ExpiresProblem> {
        match self.expires.as_slice() {
            [] => Err(ExpiresProblem::Missing),
            [one] => DateTime::parse_from_rfc3339(one)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| ExpiresProblem::Unparseable(one.clone())),
            many => Err(ExpiresProblem::Repeated(many.len())),
        }
    }
}

/// Why `Expires` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpiresProblem {
    Missing,
    Repeated(usize),
    Unparseable(String),
}

/// A `Contact` value the RFC accepts: a URI, and for web URIs an `https` one.
pub fn contact_is_valid(value: &str) -> bool {
    let Some((scheme, rest)) = value.split_once(':') else {
        return false;
    };
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    scheme_ok
        && !rest.trim().is_empty()
        && !scheme.eq_ignore_ascii_case("http")
        && !value.contains(char::is_whitespace)
}

fn is_field_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn push<T>(list: &mut Vec<T>, item: T) {
    if list.len() < MAX_VALUES {
        list.push(item);
    }
}

fn clip(value: &str) -> String {
    if value.len() <= MAX_VALUE_LEN {
        return value.to_owned();
    }
    let mut end = MAX_VALUE_LEN;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Expect {
        contacts: usize,
        expires: Result<&'static str, ExpiresProblem>,
        signed: bool,
        invalid_lines: usize,
    }

    fn check(text: &str, e: Expect) {
        let file = SecurityTxt::parse(text);
        assert_eq!(file.contact.len(), e.contacts, "contacts in {text:?}");
        assert_eq!(
            file.expires_at().map(|t| t.to_rfc3339()),
            e.expires.map(str::to_owned),
            "expires in {text:?}"
        );
        assert_eq!(file.signed, e.signed, "signed in {text:?}");
        assert_eq!(
            file.invalid_lines.len(),
            e.invalid_lines,
            "invalid lines in {text:?}"
        );
    }

    #[test]
    fn parser_table() {
        check(
            "Contact: mailto:security@example.test\nExpires: 2030-01-01T00:00:00Z\n",
            Expect {
                contacts: 1,
                expires: Ok("2030-01-01T00:00:00+00:00"),
                signed: false,
                invalid_lines: 0,
            },
        );
        check(
            "# comment\r\ncontact: https://example.test/report\r\nCONTACT: tel:+1-201-555-0123\r\n\r\nexpires: 2030-06-30T12:00:00.000+02:00\r\n",
            Expect {
                contacts: 2,
                expires: Ok("2030-06-30T10:00:00+00:00"),
                signed: false,
                invalid_lines: 0,
            },
        );
        check(
            "Contact: mailto:a@b.test\n",
            Expect {
                contacts: 1,
                expires: Err(ExpiresProblem::Missing),
                signed: false,
                invalid_lines: 0,
            },
        );
        check(
            "Contact: mailto:a@b.test\nExpires: 2030-01-01T00:00:00Z\nExpires: 2031-01-01T00:00:00Z\n",
            Expect {
                contacts: 1,
                expires: Err(ExpiresProblem::Repeated(2)),
                signed: false,
                invalid_lines: 0,
            },
        );
        check(
            "Contact: mailto:a@b.test\nExpires: next year\n",
            Expect {
                contacts: 1,
                expires: Err(ExpiresProblem::Unparseable("next year".into())),
                signed: false,
                invalid_lines: 0,
            },
        );
        check(
            "this is not a field\nContact: mailto:a@b.test\n",
            Expect {
                contacts: 1,
                expires: Err(ExpiresProblem::Missing),
                signed: false,
                invalid_lines: 1,
            },
        );
        let signed = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n# signed\nContact: mailto:security@example.test\n- Expires: 2030-01-01T00:00:00Z\n-----BEGIN PGP SIGNATURE-----\n\niQIzBAEBCAAdFiEE\n-----END PGP SIGNATURE-----\n";
        check(
            signed,
            Expect {
                contacts: 1,
                expires: Ok("2030-01-01T00:00:00+00:00"),
                signed: true,
                invalid_lines: 0,
            },
        );
        assert!(SecurityTxt::parse(signed).signature_block_complete);
        let truncated =
            "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nContact: mailto:a@b.test\n";
        check(
            truncated,
            Expect {
                contacts: 1,
                expires: Err(ExpiresProblem::Missing),
                signed: true,
                invalid_lines: 0,
            },
        );
        assert!(!SecurityTxt::parse(truncated).signature_block_complete);
        check(
            "",
            Expect {
                contacts: 0,
                expires: Err(ExpiresProblem::Missing),
                signed: false,
                invalid_lines: 0,
            },
        );
        check(
            "<html><body>Not found</body></html>",
            Expect {
                contacts: 0,
                expires: Err(ExpiresProblem::Missing),
                signed: false,
                invalid_lines: 1,
            },
        );
    }

    #[test]
    fn other_fields_and_unknown_ones() {
        let file = SecurityTxt::parse(
            "Canonical: https://example.test/.well-known/security.txt\nPreferred-Languages: en, fr\nEncryption: https://example.test/key.asc\nPolicy: https://example.test/policy\nAcknowledgments: https://example.test/thanks\nHiring: https://example.test/jobs\nCSAF: https://example.test/provider-metadata.json\n",
        );
        assert_eq!(file.canonical.len(), 1);
        assert_eq!(file.preferred_languages, vec!["en, fr".to_owned()]);
        assert_eq!(file.unknown_fields, vec!["CSAF".to_owned()]);
        assert_eq!(file.known_field_count(), 6);
    }

    #[test]
    fn contact_values() {
        let cases = [
            ("mailto:security@example.test", true),
            ("https://example.test/security", true),
            ("tel:+1-201-555-0123", true),
            ("http://example.test/security", false),
            ("security@example.test", false),
            ("mailto:", false),
            ("https://exa mple.test", false),
        ];
        for (value, ok) in cases {
            assert_eq!(contact_is_valid(value), ok, "{value}");
        }
    }
}
