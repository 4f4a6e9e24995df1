//! DNSSEC keys (ECDSA P-256, algorithm 13) and RRset signatures.
//!
//! Each signed zone has one combined signing key (flags 257) that signs
//! everything, its DNSKEY set included; the parent publishes its DS, and the
//! root's key is the trust anchor.

use hickory_proto::dnssec::crypto::EcdsaSigningKey;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS, RRSIG, SigInput};
use hickory_proto::dnssec::{Algorithm, DigestType, PublicKeyBuf, SigningKey, TBS};
use hickory_proto::rr::{DNSClass, Name, RData, Record, SerialNumber};

const ALGORITHM: Algorithm = Algorithm::ECDSAP256SHA256;

/// A zone's signing key with its DNSKEY.
pub struct ZoneKey {
    key: EcdsaSigningKey,
    public: PublicKeyBuf,
    dnskey: DNSKEY,
    tag: u16,
}

impl std::fmt::Debug for ZoneKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZoneKey")
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

impl ZoneKey {
    /// A fresh key.
    pub fn generate() -> Result<ZoneKey, String> {
        let pkcs8 = EcdsaSigningKey::generate_pkcs8(ALGORITHM).map_err(|e| e.to_string())?;
        let key = EcdsaSigningKey::from_pkcs8(&pkcs8, ALGORITHM).map_err(|e| e.to_string())?;
        let public = key.to_public_key().map_err(|e| e.to_string())?;
        // Zone key + secure entry point: flags 257.
        let dnskey = DNSKEY::from_key(&public);
        let tag = dnskey.calculate_key_tag().map_err(|e| e.to_string())?;
        Ok(ZoneKey {
            key,
            public,
            dnskey,
            tag,
        })
    }

    /// The DNSKEY record at the zone apex.
    pub fn dnskey_record(&self, zone: &Name, ttl: u32) -> Record {
        Record::from_rdata(
            zone.clone(),
            ttl,
            RData::DNSSEC(DNSSECRData::DNSKEY(self.dnskey.clone())),
        )
    }

    /// The DS record the parent publishes for this key (SHA-256 digest).
    pub fn ds_record(&self, zone: &Name, ttl: u32) -> Result<Record, String> {
        let ds = DS::from_key(&self.public, zone, DigestType::SHA256).map_err(|e| e.to_string())?;
        Ok(Record::from_rdata(
            zone.clone(),
            ttl,
            RData::DNSSEC(DNSSECRData::DS(ds)),
        ))
    }

    /// The key as a trust anchor line in zone-file presentation format, e.g.
    /// `. 3600 IN DNSKEY 257 3 13 <base64>`.
    pub fn trust_anchor_line(&self, zone: &Name) -> String {
        format!("{zone} 3600 IN DNSKEY {}", self.dnskey)
    }

    /// An RRSIG over one RRset (all `records` share name, type and TTL).
    pub fn sign_rrset(
        &self,
        signer: &Name,
        records: &[Record],
        inception: u32,
        expiration: u32,
    ) -> Result<Record, String> {
        let first = records.first().ok_or("empty RRset")?;
        let input = SigInput {
            type_covered: first.record_type(),
            algorithm: ALGORITHM,
            num_labels: first.name.num_labels(),
            original_ttl: first.ttl,
            sig_expiration: SerialNumber::new(expiration),
            sig_inception: SerialNumber::new(inception),
            key_tag: self.tag,
            signer_name: signer.clone(),
        };
        let tbs = TBS::from_input(&first.name, DNSClass::IN, &input, records.iter())
            .map_err(|e| e.to_string())?;
        let sig = self.key.sign(&tbs).map_err(|e| e.to_string())?;
        let rrsig = RRSIG::from_sig(input, sig);
        Ok(Record::from_rdata(
            first.name.clone(),
            first.ttl,
            RData::DNSSEC(DNSSECRData::RRSIG(rrsig)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::dnssec::TrustAnchors;

    #[test]
    fn the_trust_anchor_line_parses_as_a_root_anchor() {
        let key = ZoneKey::generate().expect("key");
        let line = key.trust_anchor_line(&Name::root());
        assert!(line.starts_with(". 3600 IN DNSKEY 257 3 13 "), "{line}");
        let anchors: TrustAnchors = line.parse().expect("parses");
        assert_eq!(anchors.len(), 1);
    }

    #[test]
    fn a_ds_matches_its_key() {
        let key = ZoneKey::generate().expect("key");
        let zone = Name::from_ascii("strong.test.").expect("name");
        let ds = key.ds_record(&zone, 300).expect("ds");
        let RData::DNSSEC(DNSSECRData::DS(ds)) = &ds.data else {
            panic!("not a DS")
        };
        assert_eq!(ds.key_tag(), key.tag);
        assert!(ds.covers(&zone, &key.dnskey).expect("digest"));
    }
}
