//! The rule DMARC, MTA-STS and TLS-RPT share for their TXT records: discard
//! the strings that are not of the kind, then exactly one must remain and parse.

use crate::net::LookupError;

/// What one TXT look-up says about one kind of policy record.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordLookup<T> {
    /// The look-up failed (timeout, SERVFAIL).
    LookupFailed(LookupError),
    /// No record of the kind.
    Missing,
    /// More than one: receivers must treat this as no policy.
    Multiple(Vec<String>),
    /// One record that does not parse.
    Invalid { record: String, reason: String },
    /// One good record.
    Found { record: String, parsed: T },
}

impl<T> RecordLookup<T> {
    /// Sorts a TXT answer: `is_kind` recognises the records of this kind (by
    /// their version tag), `parse` reads one.
    pub fn from_answer(
        answer: Result<Vec<String>, LookupError>,
        is_kind: impl Fn(&str) -> bool,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> RecordLookup<T> {
        let texts = match answer {
            Ok(t) => t,
            Err(e) if e.is_void() => return RecordLookup::Missing,
            Err(e) => return RecordLookup::LookupFailed(e),
        };
        let mine: Vec<String> = texts.into_iter().filter(|t| is_kind(t)).collect();
        match mine.as_slice() {
            [] => RecordLookup::Missing,
            [one] => match parse(one) {
                Ok(parsed) => RecordLookup::Found {
                    record: one.clone(),
                    parsed,
                },
                Err(reason) => RecordLookup::Invalid {
                    record: one.clone(),
                    reason,
                },
            },
            _ => RecordLookup::Multiple(mine),
        }
    }

    /// Whether there was anything of the kind at the name (found, invalid or several).
    pub fn is_present(&self) -> bool {
        matches!(
            self,
            RecordLookup::Multiple(_) | RecordLookup::Invalid { .. } | RecordLookup::Found { .. }
        )
    }
}

/// Splits `tag=value` pairs on `;`, trimming whitespace around both; empty
/// trailing pairs are allowed. Tag names are lower-cased.
pub fn tag_list(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for part in text.split(';') {
        let part = part.trim_matches([' ', '\t']);
        if part.is_empty() {
            continue;
        }
        let (tag, value) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not tag=value"))?;
        let tag = tag.trim_matches([' ', '\t']);
        if tag.is_empty() || !tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("{tag:?} is not a valid tag name"));
        }
        let tag = tag.to_ascii_lowercase();
        if pairs.iter().any(|(t, _)| *t == tag) {
            return Err(format!("tag {tag:?} appears more than once"));
        }
        pairs.push((tag, value.trim_matches([' ', '\t']).to_owned()));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sort(answer: Result<Vec<&str>, LookupError>) -> RecordLookup<usize> {
        let answer = answer.map(|v| v.into_iter().map(String::from).collect());
        RecordLookup::from_answer(
            answer,
            |t| t.starts_with("v=X"),
            |t| {
                if t.contains("bad") {
                    Err("bad".into())
                } else {
                    Ok(t.len())
                }
            },
        )
    }

    #[test]
    fn exactly_one_record_of_the_kind() {
        assert_eq!(sort(Err(LookupError::NxDomain)), RecordLookup::Missing);
        assert_eq!(sort(Err(LookupError::NoRecords)), RecordLookup::Missing);
        assert_eq!(
            sort(Err(LookupError::Timeout)),
            RecordLookup::LookupFailed(LookupError::Timeout)
        );
        assert_eq!(sort(Ok(vec!["other"])), RecordLookup::Missing);
        assert_eq!(
            sort(Ok(vec!["other", "v=X1"])),
            RecordLookup::Found {
                record: "v=X1".into(),
                parsed: 4
            }
        );
        assert!(
            matches!(sort(Ok(vec!["v=X1", "v=X2"])), RecordLookup::Multiple(v) if v.len() == 2)
        );
        assert!(matches!(
            sort(Ok(vec!["v=X bad"])),
            RecordLookup::Invalid { .. }
        ));
    }

    #[test]
    fn tag_lists() {
        let pairs = tag_list(" v = DMARC1 ;P=reject;; rua=mailto:a@b.test ; ").expect("valid");
        assert_eq!(
            pairs,
            [
                ("v".into(), "DMARC1".into()),
                ("p".into(), "reject".into()),
                ("rua".into(), "mailto:a@b.test".into())
            ]
        );
        assert!(tag_list("v=DMARC1; p").is_err());
        assert!(tag_list("v=DMARC1; p=none; p=reject").is_err());
        assert!(tag_list("v=DMARC1; =x").is_err());
    }
}
