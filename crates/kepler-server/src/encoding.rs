//! Content coding (RFC 9110 §8.4, §12.5.3): gzip for clients that ask for it.
//!
//! A record is ~16 KB of JSON and ~5 KB gzipped. A stored record is gzipped
//! once per process and sent as is to every client that accepts gzip (the
//! Python SDK's httpx and the Rust SDK's reqwest ask by default); any other
//! large response is compressed as it is sent, by tower-http's layer, which
//! leaves a response that already has a `Content-Encoding` alone.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use kepler_store::ServedRecord;
use tower_http::CompressionLevel;
use tower_http::compression::predicate::{Predicate, SizeAbove};
use tower_http::compression::{CompressionLayer, DefaultPredicate};

/// Bodies smaller than this are sent as they are: gzip's framing and the
/// work outweigh the bytes saved (a 202 or an error body is a few hundred).
const MIN_COMPRESSED_BYTES: u16 = 1024;

/// The layer that compresses large responses made on the fly (the OpenAPI
/// document, `/metrics`, a record read by `GET /v1/score/{domain}`), for
/// clients that accept gzip. Fastest level: it runs on every such response.
pub fn layer() -> CompressionLayer<impl Predicate> {
    CompressionLayer::new()
        .no_br()
        .no_deflate()
        .no_zstd()
        .quality(CompressionLevel::Fastest)
        .compress_when(DefaultPredicate::new().and(SizeAbove::new(MIN_COMPRESSED_BYTES)))
}

/// A stored record's response carries the record, so that it can be sent in
/// the form the client accepts once the response is otherwise complete.
#[derive(Debug, Clone)]
pub struct StoredRecordBody(pub ServedRecord);

/// Sends a stored record's response gzipped, from the form made once per
/// record, when the request accepts gzip; either way the response says that
/// its body depends on `Accept-Encoding`, for caches between us and the client.
pub fn negotiate(request: &HeaderMap, response: &mut Response) {
    let Some(StoredRecordBody(record)) = response.extensions_mut().remove::<StoredRecordBody>()
    else {
        return;
    };
    *response.body_mut() = record_body(&record, request, response.headers_mut());
    // The length is the new body's, set when it is sent.
    response.headers_mut().remove(header::CONTENT_LENGTH);
}

/// A stored record as the body of a response to `request`: as stored, or in
/// its gzip form when the request accepts gzip (saying so in `headers`).
pub fn record_body(record: &ServedRecord, request: &HeaderMap, headers: &mut HeaderMap) -> Body {
    headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    if accepts_gzip(request) {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        Body::from(record.gzip())
    } else {
        Body::from(record.clone().into_bytes())
    }
}

/// Whether the request's `Accept-Encoding` fields accept gzip (or its alias
/// x-gzip) with a weight above zero, directly or through `*`, and rank it no
/// lower than an `identity` they name. No field at all: no coding is wanted.
pub fn accepts_gzip(request: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    let mut identity = None;
    for field in request.get_all(header::ACCEPT_ENCODING) {
        let Ok(field) = field.to_str() else { continue };
        for item in field.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim();
            let Some(weight) = weight(parts) else {
                continue;
            };
            let slot =
                if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                    &mut gzip
                } else if coding == "*" {
                    &mut any
                } else if coding.eq_ignore_ascii_case("identity") {
                    &mut identity
                } else {
                    continue;
                };
            // The same coding named twice: the higher weight is the intent.
            *slot = Some(slot.map_or(weight, |w: u16| w.max(weight)));
        }
    }
    match gzip.or(any) {
        Some(weight) => weight > 0 && identity.is_none_or(|identity| weight >= identity),
        None => false,
    }
}

/// An item's weight in thousandths (`q=0.5` → 500; none → 1000), or `None`
/// when a parameter is not a well-formed weight (RFC 9110 §12.4.2), which
/// makes the item unreadable and so ignored.
fn weight<'a>(params: impl Iterator<Item = &'a str>) -> Option<u16> {
    let mut weight = 1000;
    for param in params {
        let (name, value) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("q") {
            return None;
        }
        weight = parse_qvalue(value.trim())?;
    }
    Some(weight)
}

/// `0`, `0.` to `0.999`, `1`, `1.` to `1.000`, in thousandths.
fn parse_qvalue(text: &str) -> Option<u16> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = fraction
        .bytes()
        .zip([100, 10, 1])
        .map(|(digit, place)| u16::from(digit - b'0') * place)
        .sum::<u16>();
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts(fields: &[&str]) -> bool {
        let mut headers = HeaderMap::new();
        for field in fields {
            headers.append(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(field).expect("header"),
            );
        }
        accepts_gzip(&headers)
    }

    #[test]
    fn what_common_clients_send_accepts_gzip() {
        assert!(accepts(&["gzip, deflate"])); // httpx, Python requests
        assert!(accepts(&["gzip"])); // reqwest
        assert!(accepts(&["gzip, deflate, br, zstd"])); // browsers
        assert!(accepts(&["deflate, gzip;q=1.0, *;q=0.5"]));
        assert!(accepts(&["br", "GZip"])); // one field per coding
        assert!(accepts(&["x-gzip"]));
        assert!(accepts(&["*"]));
    }

    #[test]
    fn no_field_or_other_codings_only_is_identity() {
        assert!(!accepts(&[]));
        assert!(!accepts(&[""]));
        assert!(!accepts(&["identity"]));
        assert!(!accepts(&["br, zstd"]));
        assert!(!accepts(&["gzipped"]));
    }

    #[test]
    fn weights_are_honoured() {
        assert!(!accepts(&["gzip;q=0"]));
        assert!(!accepts(&["gzip; q=0.000"]));
        assert!(!accepts(&["*;q=0"]));
        // gzip refused by name even though anything else is welcome.
        assert!(!accepts(&["gzip;q=0, *"]));
        // Named identity preferred over gzip.
        assert!(!accepts(&["gzip;q=0.5, identity"]));
        assert!(accepts(&["gzip;q=0.5, identity;q=0.5"]));
        assert!(accepts(&["gzip;q=0.001"]));
        assert!(accepts(&["gzip;Q=1.000"]));
    }

    #[test]
    fn malformed_items_are_ignored_not_guessed() {
        assert!(!accepts(&["gzip;q=2"]));
        assert!(!accepts(&["gzip;q=0.5000"]));
        assert!(!accepts(&["gzip;q=abc"]));
        assert!(!accepts(&["gzip;level=9"]));
        // The readable items of a field still count.
        assert!(accepts(&["gzip;q=x, *;q=0.3"]));
    }

    #[test]
    fn qvalues_read_as_thousandths() {
        assert_eq!(parse_qvalue("0"), Some(0));
        assert_eq!(parse_qvalue("0."), Some(0));
        assert_eq!(parse_qvalue("0.5"), Some(500));
        assert_eq!(parse_qvalue("0.05"), Some(50));
        assert_eq!(parse_qvalue("1"), Some(1000));
        assert_eq!(parse_qvalue("1.000"), Some(1000));
        assert_eq!(parse_qvalue("1.001"), None);
        assert_eq!(parse_qvalue(".5"), None);
        assert_eq!(parse_qvalue("0.-1"), None);
    }
}
