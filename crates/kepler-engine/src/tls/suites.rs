//! The cipher suites Kepler offers in its hand-built ClientHellos, or may see a
//! server choose, with the two properties the score needs: forward secrecy
//! (an ephemeral key exchange) and AEAD (GCM or ChaCha20-Poly1305).

/// One cipher suite as the TLS registry names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuiteInfo {
    pub id: u16,
    pub name: &'static str,
    /// ECDHE, DHE, or TLS 1.3 (whose suites are always ephemeral).
    pub forward_secret: bool,
    /// GCM or ChaCha20-Poly1305, as opposed to CBC or RC4.
    pub aead: bool,
}

const fn suite(id: u16, name: &'static str, forward_secret: bool, aead: bool) -> SuiteInfo {
    SuiteInfo {
        id,
        name,
        forward_secret,
        aead,
    }
}

/// Every suite Kepler can name. Ids from the IANA TLS Cipher Suites registry.
const TABLE: &[SuiteInfo] = &[
    suite(0x1301, "TLS_AES_128_GCM_SHA256", true, true),
    suite(0x1302, "TLS_AES_256_GCM_SHA384", true, true),
    suite(0x1303, "TLS_CHACHA20_POLY1305_SHA256", true, true),
    suite(
        0xc02b,
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        true,
        true,
    ),
    suite(
        0xc02c,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        true,
        true,
    ),
    suite(0xc02f, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", true, true),
    suite(0xc030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", true, true),
    suite(
        0xcca8,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        true,
        true,
    ),
    suite(
        0xcca9,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        true,
        true,
    ),
    suite(0x009e, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", true, true),
    suite(0x009f, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", true, true),
    suite(
        0xc023,
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        true,
        false,
    ),
    suite(
        0xc024,
        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
        true,
        false,
    ),
    suite(0xc027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", true, false),
    suite(0xc028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", true, false),
    suite(0xc009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", true, false),
    suite(0xc00a, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", true, false),
    suite(0xc013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", true, false),
    suite(0xc014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", true, false),
    suite(0xc012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", true, false),
    suite(0xc011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA", true, false),
    suite(0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256", true, false),
    suite(0x006b, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256", true, false),
    suite(0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA", true, false),
    suite(0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA", true, false),
    suite(0x0016, "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA", true, false),
    suite(0x009c, "TLS_RSA_WITH_AES_128_GCM_SHA256", false, true),
    suite(0x009d, "TLS_RSA_WITH_AES_256_GCM_SHA384", false, true),
    suite(0x003c, "TLS_RSA_WITH_AES_128_CBC_SHA256", false, false),
    suite(0x003d, "TLS_RSA_WITH_AES_256_CBC_SHA256", false, false),
    suite(0x002f, "TLS_RSA_WITH_AES_128_CBC_SHA", false, false),
    suite(0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA", false, false),
    suite(0x000a, "TLS_RSA_WITH_3DES_EDE_CBC_SHA", false, false),
    suite(0x0005, "TLS_RSA_WITH_RC4_128_SHA", false, false),
    suite(0x0004, "TLS_RSA_WITH_RC4_128_MD5", false, false),
];

/// Signals secure renegotiation support (RFC 5746); offered, never chosen.
pub const RENEGOTIATION_SCSV: u16 = 0x00ff;

/// What a TLS 1.0/1.1-era client offered: enough that any server still speaking
/// those versions finds a suite it knows, so a refusal means the version, not the suites.
pub const LEGACY_OFFER: &[u16] = &[
    0xc00a,
    0xc009,
    0xc014,
    0xc013,
    0xc012,
    0x0039,
    0x0033,
    0x0016,
    0x0035,
    0x002f,
    0x000a,
    0xc011,
    0x0005,
    0x0004,
    RENEGOTIATION_SCSV,
];

/// A browser-like TLS 1.2 offer, in a browser's order: what the server picks from
/// it is what a typical TLS 1.2 client is given.
pub const TYPICAL_TLS12_OFFER: &[u16] = &[
    0xc02b,
    0xc02f,
    0xcca9,
    0xcca8,
    0xc02c,
    0xc030,
    0x009e,
    0x009f,
    0xc023,
    0xc027,
    0xc024,
    0xc028,
    0xc009,
    0xc013,
    0xc00a,
    0xc014,
    0x0033,
    0x0039,
    0x009c,
    0x009d,
    0x003c,
    0x003d,
    0x002f,
    0x0035,
    0x000a,
    RENEGOTIATION_SCSV,
];

/// Only suites lacking forward secrecy or AEAD: a server that answers this with a
/// ServerHello still serves clients that can do nothing better.
pub const WEAK_TLS12_OFFER: &[u16] = &[
    0xc023,
    0xc027,
    0xc024,
    0xc028,
    0xc009,
    0xc013,
    0xc00a,
    0xc014,
    0x0067,
    0x006b,
    0x0033,
    0x0039,
    0x009c,
    0x009d,
    0x003c,
    0x003d,
    0x002f,
    0x0035,
    0x000a,
    RENEGOTIATION_SCSV,
];

/// The suite with this id, when Kepler knows it.
pub fn lookup(id: u16) -> Option<&'static SuiteInfo> {
    TABLE.iter().find(|s| s.id == id)
}

/// The registry name, or the id in hex when unknown.
pub fn name(id: u16) -> String {
    lookup(id).map_or_else(|| format!("0x{id:04x}"), |s| s.name.to_owned())
}

/// "TLS 1.2" for 0x0303 and so on; hex for anything else.
pub fn version_name(version: u16) -> String {
    match version {
        0x0300 => "SSL 3.0".to_owned(),
        0x0301 => "TLS 1.0".to_owned(),
        0x0302 => "TLS 1.1".to_owned(),
        0x0303 => "TLS 1.2".to_owned(),
        0x0304 => "TLS 1.3".to_owned(),
        other => format!("0x{other:04x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique() {
        for (i, a) in TABLE.iter().enumerate() {
            assert!(
                TABLE[i + 1..].iter().all(|b| b.id != a.id),
                "duplicate 0x{:04x}",
                a.id
            );
        }
    }

    #[test]
    fn every_offered_suite_is_named() {
        for id in LEGACY_OFFER
            .iter()
            .chain(TYPICAL_TLS12_OFFER)
            .chain(WEAK_TLS12_OFFER)
        {
            assert!(
                *id == RENEGOTIATION_SCSV || lookup(*id).is_some(),
                "0x{id:04x} has no entry"
            );
        }
    }

    #[test]
    fn weak_offer_holds_nothing_both_forward_secret_and_aead() {
        for id in WEAK_TLS12_OFFER
            .iter()
            .filter(|id| **id != RENEGOTIATION_SCSV)
        {
            let s = lookup(*id).expect("checked by every_offered_suite_is_named");
            assert!(!(s.forward_secret && s.aead), "{} is strong", s.name);
        }
    }

    #[test]
    fn names_and_properties() {
        let check = |id: u16, name: &str, fs: bool, aead: bool| {
            let s = lookup(id).expect("known suite");
            assert_eq!((s.name, s.forward_secret, s.aead), (name, fs, aead));
        };
        check(0xc013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", true, false);
        check(0x009c, "TLS_RSA_WITH_AES_128_GCM_SHA256", false, true);
        check(0xc02f, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", true, true);
        assert_eq!(name(0xbeef), "0xbeef");
        assert_eq!(version_name(0x0301), "TLS 1.0");
        assert_eq!(version_name(0x7f1c), "0x7f1c");
    }
}
