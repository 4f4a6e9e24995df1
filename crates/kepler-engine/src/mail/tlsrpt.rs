//! SMTP TLS Reporting (RFC 8460): the `_smtp._tls` TXT record.

use super::record::tag_list;

/// Whether a TXT string is a TLS-RPT record: it begins with `v=TLSRPTv1` (§3).
pub fn is_tlsrpt(text: &str) -> bool {
    let first = text.split(';').next().unwrap_or("");
    first
        .split_once('=')
        .is_some_and(|(t, v)| t.trim() == "v" && v.trim() == "TLSRPTv1")
}

/// Parses the record; returns its report destinations (`rua`, mailto: or https:).
pub fn parse(text: &str) -> Result<Vec<String>, String> {
    let tags = tag_list(text)?;
    match tags.first() {
        Some((t, v)) if t == "v" && v == "TLSRPTv1" => {}
        _ => return Err("the record must start with v=TLSRPTv1".into()),
    }
    let rua = tags
        .iter()
        .find(|(t, _)| t == "rua")
        .map(|(_, v)| v.as_str())
        .ok_or("the rua field is missing")?;
    rua.split(',')
        .map(|uri| {
            let uri = uri.trim();
            let parsed =
                url::Url::parse(uri).map_err(|e| format!("rua {uri:?} is not a URI: {e}"))?;
            match parsed.scheme() {
                "mailto" if parsed.path().contains('@') => Ok(uri.to_owned()),
                "https" => Ok(uri.to_owned()),
                _ => Err(format!(
                    "rua {uri:?} is neither a mailto: address nor an https: URL"
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlsrpt_records() {
        assert_eq!(
            parse("v=TLSRPTv1; rua=mailto:tlsrpt@example.com"),
            Ok(vec!["mailto:tlsrpt@example.com".into()])
        );
        assert_eq!(
            parse("v=TLSRPTv1;rua=mailto:a@example.com,https://reports.example.com/tls")
                .map(|v| v.len()),
            Ok(2)
        );
        assert!(parse("v=TLSRPTv1;").is_err(), "no rua");
        assert!(
            parse("v=TLSRPTv1; rua=http://reports.example.com/").is_err(),
            "plain http"
        );
        assert!(parse("v=TLSRPTv1; rua=tlsrpt@example.com").is_err());
        assert!(parse("rua=mailto:a@example.com; v=TLSRPTv1").is_err());
        assert!(is_tlsrpt("v=TLSRPTv1; rua=mailto:a@example.com"));
        assert!(!is_tlsrpt("v=STSv1; id=1"));
    }
}
