//! CAA record values (RFC 8659 §4): which ones a CA can read.

use crate::net::CaaRecord;

/// What one well-formed CAA record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaaProperty {
    /// `issue`: who may issue certificates; `None` means nobody (`";"`).
    Issue(Option<String>),
    /// `issuewild`: who may issue wildcard certificates.
    IssueWild(Option<String>),
    /// `iodef`: where CAs report refused requests.
    Iodef(String),
    /// Another registered property (`issuemail`, `issuevmc`, `contactemail`, `contactphone`).
    Other(String),
    /// An unknown property without the critical flag: CAs ignore it.
    Ignored(String),
}

const OTHER_KNOWN: [&str; 4] = ["issuemail", "issuevmc", "contactemail", "contactphone"];

/// Parses one record, or says what is wrong with it.
pub fn parse(record: &CaaRecord) -> Result<CaaProperty, String> {
    let tag = record.tag.as_str();
    if tag.is_empty() || tag.len() > 15 || !tag.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!("tag {tag:?} is not 1 to 15 letters and digits"));
    }
    let lower = tag.to_ascii_lowercase();
    match lower.as_str() {
        "issue" => issuer_value(&record.value).map(CaaProperty::Issue),
        "issuewild" => issuer_value(&record.value).map(CaaProperty::IssueWild),
        "iodef" => iodef_value(&record.value).map(CaaProperty::Iodef),
        t if OTHER_KNOWN.contains(&t) => Ok(CaaProperty::Other(lower)),
        _ if record.critical => Err(format!(
            "unknown tag {tag:?} carries the critical flag, so every CA must refuse to issue"
        )),
        _ => Ok(CaaProperty::Ignored(lower)),
    }
}

fn is_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

fn is_parameter_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !tag.starts_with('-')
}

/// `issue-value = *WSP [issuer-domain-name *WSP] [";" *WSP [parameters *WSP]]`.
fn issuer_value(value: &str) -> Result<Option<String>, String> {
    let (issuer, params) = match value.split_once(';') {
        Some((i, p)) => (i.trim(), Some(p)),
        None => (value.trim(), None),
    };
    let issuer = if issuer.is_empty() {
        None
    } else if issuer.split('.').all(is_label) {
        Some(issuer.to_ascii_lowercase())
    } else {
        return Err(format!("issuer {issuer:?} is not a domain name"));
    };
    for param in params
        .into_iter()
        .flat_map(|p| p.split(';'))
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let Some((tag, val)) = param.split_once('=') else {
            return Err(format!("parameter {param:?} is not tag=value"));
        };
        if !is_parameter_tag(tag.trim()) || val.trim().bytes().any(|b| !(0x21..=0x7e).contains(&b))
        {
            return Err(format!("parameter {param:?} is malformed"));
        }
    }
    Ok(issuer)
}

fn iodef_value(value: &str) -> Result<String, String> {
    let url =
        url::Url::parse(value.trim()).map_err(|e| format!("iodef {value:?} is not a URL: {e}"))?;
    match url.scheme() {
        "mailto" | "http" | "https" => Ok(url.to_string()),
        other => Err(format!(
            "iodef scheme {other:?} is neither mailto, http nor https"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(critical: bool, tag: &str, value: &str, expected: Result<CaaProperty, ()>) {
        let record = CaaRecord {
            critical,
            tag: tag.to_owned(),
            value: value.to_owned(),
        };
        assert_eq!(parse(&record).map_err(|_| ()), expected, "{tag} {value:?}");
    }

    #[test]
    fn caa_values() {
        use CaaProperty::*;
        let le = Some("letsencrypt.org".to_owned());
        check(false, "issue", "letsencrypt.org", Ok(Issue(le.clone())));
        check(false, "ISSUE", " LetsEncrypt.org ", Ok(Issue(le.clone())));
        check(
            false,
            "issue",
            "letsencrypt.org; validationmethods=dns-01",
            Ok(Issue(le.clone())),
        );
        check(
            false,
            "issue",
            "letsencrypt.org; accounturi=https://acme-v02.api.letsencrypt.org/acme/acct/1",
            Ok(Issue(le)),
        );
        check(false, "issue", ";", Ok(Issue(None)));
        check(false, "issue", "", Ok(Issue(None)));
        check(
            false,
            "issuewild",
            "digicert.com",
            Ok(IssueWild(Some("digicert.com".to_owned()))),
        );
        check(
            false,
            "iodef",
            "mailto:security@example.com",
            Ok(Iodef("mailto:security@example.com".to_owned())),
        );
        check(
            false,
            "iodef",
            "https://example.com/caa",
            Ok(Iodef("https://example.com/caa".to_owned())),
        );
        check(
            false,
            "contactemail",
            "x@example.com",
            Ok(Other("contactemail".to_owned())),
        );
        check(
            false,
            "futuretag",
            "whatever",
            Ok(Ignored("futuretag".to_owned())),
        );
        check(true, "futuretag", "whatever", Err(()));
        check(false, "issue", "lets encrypt.org", Err(()));
        check(false, "issue", "-bad-.org", Err(()));
        check(false, "issue", "ca.example; novalue", Err(()));
        check(false, "iodef", "ftp://example.com/", Err(()));
        check(false, "iodef", "not a url", Err(()));
        check(false, "is_sue", "ca.example", Err(()));
        check(false, "", "ca.example", Err(()));
    }
}
