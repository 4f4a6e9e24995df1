//! A TLS 1.0/1.1 responder for `mixed.test`.
//!
//! rustls cannot speak TLS 1.0 or 1.1, yet the fixture must show a server that
//! still accepts them. The first record of each connection is read; a
//! ClientHello offering nothing above TLS 1.1 gets a hand-built ServerHello and
//! Certificate in that version (enough for a scanner to see the version
//! accepted), then the connection closes. Anything else goes on to rustls.

/// TLS record content type: handshake.
const HANDSHAKE: u8 = 22;
/// Handshake message types.
const CLIENT_HELLO: u8 = 1;
const SERVER_HELLO: u8 = 2;
const CERTIFICATE: u8 = 11;
/// The supported_versions extension (RFC 8446).
const SUPPORTED_VERSIONS: u16 = 43;
const TLS1_0: u16 = 0x0301;
const TLS1_1: u16 = 0x0302;
/// Largest record payload (RFC 5246 §6.2.1).
const MAX_FRAGMENT: usize = 16_384;

/// Suites a 2010-era server would pick, best first: the certificate is ECDSA,
/// so ECDHE_ECDSA CBC suites lead; RSA-based ones follow for old clients.
const PREFERRED_SUITES: [u16; 7] = [0xC009, 0xC00A, 0xC013, 0xC014, 0x002F, 0x0035, 0x000A];

/// What a ClientHello offers, as far as version negotiation goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    pub legacy_version: u16,
    pub cipher_suites: Vec<u16>,
    /// The versions listed in supported_versions, when the extension is there.
    pub supported_versions: Option<Vec<u16>>,
}

/// GREASE values (RFC 8701) are never real versions or suites.
fn is_grease(value: u16) -> bool {
    value & 0x0f0f == 0x0a0a && (value >> 8) == (value & 0xff)
}

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.data.len() < n {
            return None;
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u24(&mut self) -> Option<usize> {
        self.take(3)
            .map(|b| (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]))
    }
}

/// Parses the ClientHello in the first TLS record (header included).
/// `None` when the bytes are not a complete ClientHello.
pub fn parse_client_hello(record: &[u8]) -> Option<ClientHello> {
    let mut r = Reader { data: record };
    if r.u8()? != HANDSHAKE {
        return None;
    }
    r.u16()?;
    let record_len = usize::from(r.u16()?);
    let mut body = Reader {
        data: r.take(record_len)?,
    };
    if body.u8()? != CLIENT_HELLO {
        return None;
    }
    let hello_len = body.u24()?;
    let mut hello = Reader {
        data: body.take(hello_len)?,
    };
    let legacy_version = hello.u16()?;
    hello.take(32)?; // random
    let session_len = usize::from(hello.u8()?);
    hello.take(session_len)?;
    let suites_len = usize::from(hello.u16()?);
    let suites = hello.take(suites_len)?;
    let cipher_suites = suites
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    let compression_len = usize::from(hello.u8()?);
    hello.take(compression_len)?;

    let mut supported_versions = None;
    if !hello.data.is_empty() {
        let ext_len = usize::from(hello.u16()?);
        let mut exts = Reader {
            data: hello.take(ext_len)?,
        };
        while !exts.data.is_empty() {
            let ext_type = exts.u16()?;
            let len = usize::from(exts.u16()?);
            let data = exts.take(len)?;
            if ext_type == SUPPORTED_VERSIONS {
                let mut list = Reader { data };
                let list_len = usize::from(list.u8()?);
                let versions = list.take(list_len)?;
                supported_versions = Some(
                    versions
                        .chunks_exact(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect(),
                );
            }
        }
    }
    Some(ClientHello {
        legacy_version,
        cipher_suites,
        supported_versions,
    })
}

/// The legacy version to answer with, when the client offers nothing newer
/// than TLS 1.1 (and at least TLS 1.0).
pub fn legacy_version(hello: &ClientHello) -> Option<u16> {
    let best = match &hello.supported_versions {
        Some(versions) => versions.iter().copied().filter(|v| !is_grease(*v)).max()?,
        None => hello.legacy_version,
    };
    (TLS1_0..=TLS1_1).contains(&best).then_some(best)
}

/// The suite to pick from the client's list.
pub fn choose_suite(offered: &[u16]) -> Option<u16> {
    PREFERRED_SUITES
        .iter()
        .copied()
        .find(|s| offered.contains(s))
        // Else the client's first real suite (not GREASE, not a signalling value).
        .or_else(|| {
            offered
                .iter()
                .copied()
                .find(|&s| !is_grease(s) && s != 0x00FF && s != 0x5600)
        })
}

fn push_u24(out: &mut Vec<u8>, n: usize) {
    // Handshake lengths here are far below 2^24.
    out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
}

/// ServerHello + Certificate in `version`, as TLS records; `None` when no
/// offered suite can be chosen (then the caller sends a handshake_failure alert).
pub fn server_flight(
    version: u16,
    offered_suites: &[u16],
    random: [u8; 32],
    certificate: &[u8],
) -> Option<Vec<u8>> {
    let suite = choose_suite(offered_suites)?;
    let mut messages = Vec::new();

    let mut hello = Vec::new();
    hello.extend_from_slice(&version.to_be_bytes());
    hello.extend_from_slice(&random);
    hello.push(0); // no session id
    hello.extend_from_slice(&suite.to_be_bytes());
    hello.push(0); // null compression
    messages.push(SERVER_HELLO);
    push_u24(&mut messages, hello.len());
    messages.extend_from_slice(&hello);

    messages.push(CERTIFICATE);
    push_u24(&mut messages, certificate.len() + 6);
    push_u24(&mut messages, certificate.len() + 3);
    push_u24(&mut messages, certificate.len());
    messages.extend_from_slice(certificate);

    let mut records = Vec::with_capacity(messages.len() + 16);
    for fragment in messages.chunks(MAX_FRAGMENT) {
        records.push(HANDSHAKE);
        records.extend_from_slice(&version.to_be_bytes());
        records.extend_from_slice(&(fragment.len() as u16).to_be_bytes());
        records.extend_from_slice(fragment);
    }
    Some(records)
}

/// A fatal handshake_failure alert in `version`.
pub fn handshake_failure(version: u16) -> Vec<u8> {
    let v = version.to_be_bytes();
    vec![21, v[0], v[1], 0, 2, 2, 40]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A ClientHello record: version, suites, optional supported_versions list.
    pub fn client_hello(version: u16, suites: &[u16], supported: Option<&[u16]>) -> Vec<u8> {
        let mut hello = Vec::new();
        hello.extend_from_slice(&version.to_be_bytes());
        hello.extend_from_slice(&[7u8; 32]);
        hello.push(0);
        hello.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
        for s in suites {
            hello.extend_from_slice(&s.to_be_bytes());
        }
        hello.extend_from_slice(&[1, 0]);
        if let Some(versions) = supported {
            let mut ext = vec![(versions.len() * 2) as u8];
            for v in versions {
                ext.extend_from_slice(&v.to_be_bytes());
            }
            let mut exts = Vec::new();
            exts.extend_from_slice(&SUPPORTED_VERSIONS.to_be_bytes());
            exts.extend_from_slice(&(ext.len() as u16).to_be_bytes());
            exts.extend_from_slice(&ext);
            hello.extend_from_slice(&(exts.len() as u16).to_be_bytes());
            hello.extend_from_slice(&exts);
        }
        let mut handshake = vec![CLIENT_HELLO];
        push_u24(&mut handshake, hello.len());
        handshake.extend_from_slice(&hello);
        let mut record = vec![HANDSHAKE, 3, 1];
        record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
        record.extend_from_slice(&handshake);
        record
    }

    fn check(version: u16, supported: Option<&[u16]>, expected: Option<u16>) {
        let hello = parse_client_hello(&client_hello(version, &[0xC013, 0x002F], supported))
            .expect("parses");
        assert_eq!(
            legacy_version(&hello),
            expected,
            "{version:#06x} {supported:?}"
        );
    }

    #[test]
    fn only_clients_stuck_below_tls12_get_the_legacy_answer() {
        check(0x0301, None, Some(0x0301));
        check(0x0302, None, Some(0x0302));
        check(0x0303, None, None);
        check(0x0300, None, None);
        check(0x0303, Some(&[0x0304, 0x0303]), None);
        check(0x0303, Some(&[0x0302, 0x0301]), Some(0x0302));
        check(0x0303, Some(&[0x1a1a, 0x0301]), Some(0x0301));
    }

    #[test]
    fn garbage_is_not_a_client_hello() {
        assert_eq!(parse_client_hello(b"GET / HTTP/1.1\r\n\r\n"), None);
        assert_eq!(parse_client_hello(&[22, 3, 1, 0, 40, 1, 0]), None);
        assert_eq!(parse_client_hello(&[]), None);
    }

    #[test]
    fn the_flight_starts_with_a_server_hello_in_the_offered_version() {
        let flight = server_flight(0x0301, &[0x0035, 0xC013], [1; 32], b"cert").expect("a suite");
        assert_eq!(flight[0], HANDSHAKE);
        assert_eq!(&flight[1..3], &[3, 1]);
        assert_eq!(flight[5], SERVER_HELLO);
        assert_eq!(&flight[9..11], &[3, 1]);
        // ECDHE_RSA_WITH_AES_128_CBC_SHA preferred over the client's first choice.
        assert_eq!(&flight[44..46], &[0xC0, 0x13]);
    }

    #[test]
    fn no_usable_suite_means_no_flight() {
        assert_eq!(server_flight(0x0301, &[0x00FF], [1; 32], b"cert"), None);
        assert_eq!(choose_suite(&[0x0a0a, 0x1301]), Some(0x1301));
    }
}
