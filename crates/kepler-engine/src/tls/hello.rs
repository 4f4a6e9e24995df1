//! Hand-built ClientHellos and a defensive reader of the server's first answer.
//!
//! rustls cannot speak TLS 1.0/1.1 nor offer non-forward-secret or CBC suites, so
//! those questions are asked with raw bytes: one ClientHello, one answer read up
//! to the ServerHello's version and suite (or an alert), then the connection is
//! dropped. No key exchange is ever completed, so no weak crypto is ever used.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::evidence::{ProbeFailure, ServerAnswer};

const CONTENT_ALERT: u8 = 21;
const CONTENT_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const HANDSHAKE_SERVER_HELLO: u8 = 2;
/// Record layer version of the ClientHello: TLS 1.0, what every client sends
/// there for compatibility (RFC 8446 §5.1).
const RECORD_VERSION: u16 = 0x0301;
/// Largest record a peer may send (2^14 plus expansion, RFC 5246 §6.2.3).
const MAX_RECORD_LEN: usize = 16384 + 2048;
/// Stop reading after this much without a complete answer.
const MAX_ANSWER_BYTES: usize = 32 * 1024;

const EXT_SERVER_NAME: u16 = 0x0000;
const EXT_SUPPORTED_GROUPS: u16 = 0x000a;
const EXT_EC_POINT_FORMATS: u16 = 0x000b;
const EXT_SIGNATURE_ALGORITHMS: u16 = 0x000d;

/// x25519, secp256r1, secp384r1, secp521r1.
const GROUPS: [u16; 4] = [0x001d, 0x0017, 0x0018, 0x0019];
/// ECDSA and RSA-PSS/PKCS#1 with SHA-2, then SHA-1 ones for old servers.
const SIGNATURE_ALGORITHMS: [u16; 11] = [
    0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0201, 0x0203,
];

/// What to put in a hand-built ClientHello.
#[derive(Debug, Clone, Copy)]
pub struct HelloSpec<'a> {
    /// legacy_version: 0x0301 for TLS 1.0, 0x0302 for 1.1, 0x0303 for 1.2.
    pub version: u16,
    pub suites: &'a [u16],
    /// Sent as SNI; a domain Kepler accepted is always a valid host_name.
    pub server_name: &'a str,
    /// signature_algorithms exists from TLS 1.2 on (RFC 5246 §7.4.1.4.1).
    pub signature_algorithms: bool,
}

fn push_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends a 16-bit length, then what `fill` writes. Lengths here are small
/// (a few hundred bytes), so they always fit.
fn with_u16_len(out: &mut Vec<u8>, fill: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend_from_slice(&[0, 0]);
    fill(out);
    let len = u16::try_from(out.len() - at - 2).unwrap_or(u16::MAX);
    out[at..at + 2].copy_from_slice(&len.to_be_bytes());
}

fn extension(out: &mut Vec<u8>, kind: u16, fill: impl FnOnce(&mut Vec<u8>)) {
    push_u16(out, kind);
    with_u16_len(out, fill);
}

/// One ClientHello in one record: no session id, null compression only,
/// extensions server_name, supported_groups, ec_point_formats (and
/// signature_algorithms when asked), never supported_versions, so the server
/// must answer with a version no higher than `spec.version`.
pub fn client_hello(spec: &HelloSpec<'_>, random: [u8; 32]) -> Vec<u8> {
    let mut body = Vec::with_capacity(256);
    push_u16(&mut body, spec.version);
    body.extend_from_slice(&random);
    body.push(0); // empty session id
    with_u16_len(&mut body, |b| {
        spec.suites.iter().for_each(|s| push_u16(b, *s))
    });
    body.extend_from_slice(&[1, 0]); // one compression method: null
    with_u16_len(&mut body, |exts| {
        extension(exts, EXT_SERVER_NAME, |e| {
            with_u16_len(e, |list| {
                list.push(0); // host_name
                with_u16_len(list, |n| n.extend_from_slice(spec.server_name.as_bytes()));
            });
        });
        extension(exts, EXT_SUPPORTED_GROUPS, |e| {
            with_u16_len(e, |g| GROUPS.iter().for_each(|x| push_u16(g, *x)))
        });
        extension(exts, EXT_EC_POINT_FORMATS, |e| e.extend_from_slice(&[1, 0])); // uncompressed
        if spec.signature_algorithms {
            extension(exts, EXT_SIGNATURE_ALGORITHMS, |e| {
                with_u16_len(e, |s| {
                    SIGNATURE_ALGORITHMS.iter().for_each(|x| push_u16(s, *x))
                });
            });
        }
    });

    let mut record = Vec::with_capacity(body.len() + 9);
    record.push(CONTENT_HANDSHAKE);
    push_u16(&mut record, RECORD_VERSION);
    push_u16(
        &mut record,
        u16::try_from(body.len() + 4).unwrap_or(u16::MAX),
    );
    record.push(HANDSHAKE_CLIENT_HELLO);
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes();
    record.extend_from_slice(&len[1..]);
    record.extend_from_slice(&body);
    record
}

/// Where reading the server's answer stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse {
    /// The bytes so far are a valid beginning; read more.
    NeedMore,
    Done(ServerAnswer),
}

fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*buf.get(at)?, *buf.get(at + 1)?]))
}

/// Reads the server's first answer from `buf` (all bytes received so far).
/// Never panics; every length is checked before use.
pub fn parse_answer(buf: &[u8]) -> Parse {
    let Some(&content_type) = buf.first() else {
        return Parse::NeedMore;
    };
    if content_type != CONTENT_ALERT && content_type != CONTENT_HANDSHAKE {
        return Parse::Done(ServerAnswer::Unrecognised(format!(
            "first byte 0x{content_type:02x} is not a TLS alert or handshake record"
        )));
    }
    match check_header(buf) {
        None => return Parse::NeedMore,
        Some(Err(reason)) => return Parse::Done(ServerAnswer::Unrecognised(reason)),
        Some(Ok(())) => {}
    }
    if content_type == CONTENT_ALERT {
        if u16_at(buf, 3).is_some_and(|len| len < 2) {
            return Parse::Done(ServerAnswer::Unrecognised(
                "alert record shorter than an alert".to_owned(),
            ));
        }
        return match (buf.get(5), buf.get(6)) {
            (Some(&level), Some(&description)) => {
                Parse::Done(ServerAnswer::Alert { level, description })
            }
            _ => Parse::NeedMore,
        };
    }

    // A ServerHello may in principle be split over several handshake records:
    // gather their payloads (the last one possibly partial).
    let mut payload = Vec::new();
    let mut at = 0;
    let mut complete = true;
    while at < buf.len() {
        match check_header(&buf[at..]) {
            None => break,
            Some(Err(reason)) => return Parse::Done(ServerAnswer::Unrecognised(reason)),
            Some(Ok(())) => {}
        }
        if buf[at] != CONTENT_HANDSHAKE {
            // The handshake stream ended with something else before a full ServerHello.
            complete = false;
            break;
        }
        let len = usize::from(u16_at(buf, at + 3).unwrap_or(0));
        let end = (at + 5 + len).min(buf.len());
        payload.extend_from_slice(&buf[at + 5..end]);
        at += 5 + len;
    }
    match parse_server_hello(&payload) {
        Parse::NeedMore if !complete => Parse::Done(ServerAnswer::Unrecognised(
            "handshake records end before a whole ServerHello".to_owned(),
        )),
        other => other,
    }
}

/// None: fewer than 5 bytes. Some(Err): a header no TLS server sends.
fn check_header(buf: &[u8]) -> Option<Result<(), String>> {
    let version = u16_at(buf, 1)?;
    let len = usize::from(u16_at(buf, 3)?);
    if version >> 8 != 0x03 {
        return Some(Err(format!("record version 0x{version:04x} is not TLS")));
    }
    if len == 0 || len > MAX_RECORD_LEN {
        return Some(Err(format!("record length {len} is out of range")));
    }
    Some(Ok(()))
}

/// The ServerHello fields Kepler needs: version, random, session id, suite.
fn parse_server_hello(msg: &[u8]) -> Parse {
    let Some(&kind) = msg.first() else {
        return Parse::NeedMore;
    };
    if kind != HANDSHAKE_SERVER_HELLO {
        return Parse::Done(ServerAnswer::Unrecognised(format!(
            "handshake message type {kind}, not a ServerHello"
        )));
    }
    let Some(len_bytes) = msg.get(1..4) else {
        return Parse::NeedMore;
    };
    let declared = usize::from(len_bytes[0]) << 16
        | usize::from(len_bytes[1]) << 8
        | usize::from(len_bytes[2]);
    const VERSION_AT: usize = 4;
    const SESSION_ID_LEN_AT: usize = VERSION_AT + 2 + 32;
    let Some(&sid_len) = msg.get(SESSION_ID_LEN_AT) else {
        return Parse::NeedMore;
    };
    let sid_len = usize::from(sid_len);
    if sid_len > 32 {
        return Parse::Done(ServerAnswer::Unrecognised(format!(
            "ServerHello session id of {sid_len} bytes"
        )));
    }
    let suite_at = SESSION_ID_LEN_AT + 1 + sid_len;
    // version + random + session id + suite + compression method
    if declared < 2 + 32 + 1 + sid_len + 2 + 1 {
        return Parse::Done(ServerAnswer::Unrecognised(format!(
            "ServerHello of {declared} bytes is too short"
        )));
    }
    match (u16_at(msg, VERSION_AT), u16_at(msg, suite_at)) {
        (Some(version), Some(cipher_suite)) => Parse::Done(ServerAnswer::ServerHello {
            version,
            cipher_suite,
        }),
        _ => Parse::NeedMore,
    }
}

/// Sends `hello` on `stream` and reads until the answer is known, the server
/// closes, or `deadline` passes.
pub async fn exchange(
    stream: &mut TcpStream,
    hello: &[u8],
    deadline: Instant,
) -> Result<ServerAnswer, ProbeFailure> {
    let addr = stream.peer_addr().ok();
    let timed_out = || ProbeFailure::TimedOut { addr };
    let io_failed = |e: std::io::Error| ProbeFailure::Handshake {
        addr,
        error: e.to_string(),
    };
    tokio::time::timeout_at(deadline, stream.write_all(hello))
        .await
        .map_err(|_| timed_out())?
        .map_err(io_failed)?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => return Err(timed_out()),
            Ok(Err(e)) => return Err(io_failed(e)),
            Ok(Ok(n)) => n,
        };
        if n == 0 {
            return Ok(ServerAnswer::Closed { bytes: buf.len() });
        }
        buf.extend_from_slice(&chunk[..n]);
        match parse_answer(&buf) {
            Parse::Done(answer) => return Ok(answer),
            Parse::NeedMore if buf.len() >= MAX_ANSWER_BYTES => {
                return Ok(ServerAnswer::Unrecognised(format!(
                    "no ServerHello in the first {} bytes",
                    buf.len()
                )));
            }
            Parse::NeedMore => {}
        }
    }
}

/// A ServerHello record as a TLS server of `version` would send it (for tests
/// and the fake legacy server in them).
#[cfg(test)]
pub(crate) fn server_hello_record(version: u16, cipher_suite: u16) -> Vec<u8> {
    let mut body = Vec::new();
    push_u16(&mut body, version);
    body.extend_from_slice(&[0x5a; 32]);
    body.push(0);
    push_u16(&mut body, cipher_suite);
    body.push(0);
    let mut record = vec![CONTENT_HANDSHAKE];
    push_u16(&mut record, version);
    push_u16(&mut record, (body.len() + 4) as u16);
    record.extend_from_slice(&[HANDSHAKE_SERVER_HELLO, 0, 0, body.len() as u8]);
    record.extend_from_slice(&body);
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls10_client_hello_bytes() {
        let spec = HelloSpec {
            version: 0x0301,
            suites: &[0xc013],
            server_name: "a.test",
            signature_algorithms: false,
        };
        let got = client_hello(&spec, [0x11; 32]);
        let mut want = vec![
            0x16, 0x03, 0x01, 0x00, 0x52, // handshake record, TLS 1.0, 82 bytes
            0x01, 0x00, 0x00, 0x4e, // ClientHello, 78 bytes
            0x03, 0x01, // client_version TLS 1.0
        ];
        want.extend_from_slice(&[0x11; 32]);
        want.extend_from_slice(&[
            0x00, // session id: empty
            0x00, 0x02, 0xc0, 0x13, // one suite
            0x01, 0x00, // compression: null
            0x00, 0x23, // 35 bytes of extensions
            0x00, 0x00, 0x00, 0x0b, 0x00, 0x09, 0x00, 0x00, 0x06, b'a', b'.', b't', b'e', b's',
            b't', // SNI
            0x00, 0x0a, 0x00, 0x0a, 0x00, 0x08, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18, 0x00,
            0x19, // groups
            0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // ec_point_formats: uncompressed
        ]);
        assert_eq!(got, want);
    }

    #[test]
    fn signature_algorithms_are_added_for_tls12_and_lengths_stay_consistent() {
        let spec = HelloSpec {
            version: 0x0303,
            suites: super::super::suites::TYPICAL_TLS12_OFFER,
            server_name: "www.example.org",
            signature_algorithms: true,
        };
        let got = client_hello(&spec, [0; 32]);
        assert_eq!(
            usize::from(u16::from_be_bytes([got[3], got[4]])),
            got.len() - 5
        );
        let hs_len = usize::from(got[6]) << 16 | usize::from(got[7]) << 8 | usize::from(got[8]);
        assert_eq!(hs_len, got.len() - 9);
        assert_eq!(&got[9..11], &[0x03, 0x03]);
        let suites_len = usize::from(u16::from_be_bytes([got[44], got[45]]));
        assert_eq!(suites_len, 2 * spec.suites.len());
        // Extensions block ends exactly at the end of the message.
        let ext_at = 46 + suites_len + 2;
        let ext_len = usize::from(u16::from_be_bytes([got[ext_at], got[ext_at + 1]]));
        assert_eq!(ext_at + 2 + ext_len, got.len());
        let tail = &got[got.len() - (4 + 2 + 22)..];
        assert_eq!(&tail[..6], &[0x00, 0x0d, 0x00, 0x18, 0x00, 0x16]);
    }

    fn check(input: &[u8], expected: Parse) {
        assert_eq!(parse_answer(input), expected, "input {input:02x?}");
    }

    fn unrecognised(input: &[u8]) {
        assert!(
            matches!(
                parse_answer(input),
                Parse::Done(ServerAnswer::Unrecognised(_))
            ),
            "input {input:02x?} gave {:?}",
            parse_answer(input)
        );
    }

    #[test]
    fn reads_a_server_hello() {
        let record = server_hello_record(0x0301, 0xc013);
        check(
            &record,
            Parse::Done(ServerAnswer::ServerHello {
                version: 0x0301,
                cipher_suite: 0xc013,
            }),
        );
        // Followed by more records (Certificate...) changes nothing.
        let mut more = record.clone();
        more.extend_from_slice(&[0x16, 0x03, 0x01, 0x00, 0x04, 0x0b, 0x00, 0x00, 0x00]);
        check(
            &more,
            Parse::Done(ServerAnswer::ServerHello {
                version: 0x0301,
                cipher_suite: 0xc013,
            }),
        );
    }

    #[test]
    fn reads_a_server_hello_with_session_id_split_over_two_records() {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[7; 32]);
        body.push(32);
        body.extend_from_slice(&[9; 32]);
        body.extend_from_slice(&[0xc0, 0x2f, 0x00]);
        let mut msg = vec![0x02, 0x00, 0x00, body.len() as u8];
        msg.extend_from_slice(&body);
        let (a, b) = msg.split_at(20);
        let mut bytes = vec![0x16, 0x03, 0x03, 0x00, a.len() as u8];
        bytes.extend_from_slice(a);
        check(&bytes, Parse::NeedMore);
        bytes.extend_from_slice(&[0x16, 0x03, 0x03, 0x00, b.len() as u8]);
        bytes.extend_from_slice(b);
        check(
            &bytes,
            Parse::Done(ServerAnswer::ServerHello {
                version: 0x0303,
                cipher_suite: 0xc02f,
            }),
        );
    }

    #[test]
    fn reads_an_alert() {
        // fatal protocol_version, as OpenSSL sends for a disabled TLS 1.0
        check(
            &[0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46],
            Parse::Done(ServerAnswer::Alert {
                level: 2,
                description: 70,
            }),
        );
        check(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02], Parse::NeedMore);
    }

    #[test]
    fn truncated_input_asks_for_more() {
        let record = server_hello_record(0x0302, 0x002f);
        // The last byte (compression method) is not needed: the answer is known once the suite is in.
        let known_at = record.len() - 1;
        for cut in 0..known_at {
            check(&record[..cut], Parse::NeedMore);
        }
        check(
            &record[..known_at],
            Parse::Done(ServerAnswer::ServerHello {
                version: 0x0302,
                cipher_suite: 0x002f,
            }),
        );
    }

    #[test]
    fn garbage_is_unrecognised() {
        unrecognised(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        unrecognised(&[0x17, 0x03, 0x03, 0x00, 0x10]); // application data first
        unrecognised(&[0x16, 0x07, 0x01, 0x00, 0x10]); // not a TLS version
        unrecognised(&[0x16, 0x03, 0x01, 0x00, 0x00]); // empty record
        unrecognised(&[0x16, 0x03, 0x01, 0xff, 0xff]); // oversized record
        unrecognised(&[0x16, 0x03, 0x01, 0x00, 0x04, 0x0e, 0x00, 0x00, 0x00]); // ServerHelloDone first
        // ServerHello claiming a 33-byte session id
        let mut bad_sid = server_hello_record(0x0303, 0xc02f);
        bad_sid[5 + 4 + 34] = 33;
        unrecognised(&bad_sid);
        // ServerHello whose declared length is too small for its fields
        let mut short = server_hello_record(0x0303, 0xc02f);
        short[5 + 3] = 10;
        unrecognised(&short);
        // A handshake record cut short, then an alert: the ServerHello never comes whole.
        let record = server_hello_record(0x0303, 0xc02f);
        let mut cut = vec![0x16, 0x03, 0x03, 0x00, 0x10];
        cut.extend_from_slice(&record[5..21]);
        cut.extend_from_slice(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);
        unrecognised(&cut);
    }

    #[test]
    fn parser_never_panics_on_arbitrary_prefixes() {
        // A cheap fuzz: every prefix of every mutation of a real ServerHello.
        let base = server_hello_record(0x0303, 0xc02f);
        for i in 0..base.len() {
            for v in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut m = base.clone();
                m[i] = v;
                for cut in 0..=m.len() {
                    let _ = parse_answer(&m[..cut]);
                }
            }
        }
    }
}
