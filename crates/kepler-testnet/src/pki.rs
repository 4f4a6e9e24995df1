//! The testnet's own certificate authority and the fixture sites' certificates,
//! made fresh at every start.

use chrono::{DateTime, Datelike, Days, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate chain and its private key, ready for rustls.
#[derive(Debug)]
pub struct SiteCert {
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl SiteCert {
    pub fn leaf(&self) -> &CertificateDer<'static> {
        // The chain is built with its leaf, never empty.
        &self.chain[0]
    }
}

/// Which validity window a leaf gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// Issued yesterday, valid for 90 days (like a public ACME certificate).
    Current,
    /// Issued 120 days ago, expired 30 days ago.
    Expired,
}

/// The CA: its PEM (for clients) and the means to issue leaves.
pub struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
    now: DateTime<Utc>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

/// Midnight UTC of the day `days` away from `now` (negative: in the past), in
/// the form rcgen takes.
fn day_offset(now: DateTime<Utc>, days: i64) -> (i32, u8, u8) {
    let shifted = if days >= 0 {
        now.checked_add_days(Days::new(days.unsigned_abs()))
    } else {
        now.checked_sub_days(Days::new(days.unsigned_abs()))
    }
    .unwrap_or(now);
    let date = shifted.date_naive();
    // Month and day always fit in a u8.
    (date.year(), date.month() as u8, date.day() as u8)
}

/// Valid from midnight `from` days away to midnight `to` days away.
fn set_validity(params: &mut CertificateParams, now: DateTime<Utc>, from: i64, to: i64) {
    let (y, m, d) = day_offset(now, from);
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = day_offset(now, to);
    params.not_after = rcgen::date_time_ymd(y, m, d);
}

impl Ca {
    /// A new root CA valid from yesterday for ten years.
    pub fn new(now: DateTime<Utc>) -> Result<Ca, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "Kepler Testnet Root CA");
        name.push(DnType::OrganizationName, "Kepler testnet");
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params, now, -1, 3650);
        let cert = params.self_signed(&key)?;
        Ok(Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
            now,
        })
    }

    /// The root certificate in PEM, as written to `testnet-ca.pem`.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A server certificate for these names, first name as the common name.
    pub fn issue(&self, names: &[&str], validity: Validity) -> Result<SiteCert, rcgen::Error> {
        self.issue_with_key(names, validity, &KeyPair::generate()?)
    }

    /// The same with a given key: many leaves may share one (the load-test
    /// names' certificates, issued on demand, do).
    pub fn issue_with_key(
        &self,
        names: &[&str],
        validity: Validity,
        key: &KeyPair,
    ) -> Result<SiteCert, rcgen::Error> {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("testnet"),
        );
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let (from, to) = match validity {
            Validity::Current => (-1, 90),
            Validity::Expired => (-120, -30),
        };
        set_validity(&mut params, self.now, from, to);
        let cert = params.signed_by(key, &self.issuer)?;
        Ok(SiteCert {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        })
    }
}
