//! strong.test's HTTPS site also serves every load-test name
//! (`NAME.load.test`, which resolves to strong.test's addresses). Each
//! load-test domain gets its own certificate, issued by the testnet's CA the
//! first time it is asked for and kept: one certificate names the domain,
//! `www.` and `mta-sts.` under it (a `*.load.test` wildcard could not cover
//! `mta-sts.d7.load.test`, two labels down). Every such leaf shares one key,
//! so issuing is one signature.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rcgen::KeyPair;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::{CertifiedKey, SigningKey};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::StartError;
use crate::fixtures::load_domain;
use crate::pki::{Ca, SiteCert, Validity};

/// Picks strong.test's certificate, or the load-test domain's by SNI.
pub struct StrongOrLoad {
    strong: Arc<CertifiedKey>,
    ca: Arc<Ca>,
    leaf_key: KeyPair,
    leaf_signer: Arc<dyn SigningKey>,
    issued: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for StrongOrLoad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let issued = self.issued.lock().map_or(0, |m| m.len());
        f.debug_struct("StrongOrLoad")
            .field("load_certificates", &issued)
            .finish_non_exhaustive()
    }
}

fn certified(cert: SiteCert, provider: &CryptoProvider) -> Result<CertifiedKey, rustls::Error> {
    let signer = provider.key_provider.load_private_key(cert.key)?;
    Ok(CertifiedKey::new(cert.chain, signer))
}

impl StrongOrLoad {
    pub fn new(
        strong: SiteCert,
        ca: Arc<Ca>,
        provider: &CryptoProvider,
    ) -> Result<StrongOrLoad, StartError> {
        let leaf_key = KeyPair::generate()?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let leaf_signer = provider.key_provider.load_private_key(der)?;
        Ok(StrongOrLoad {
            strong: Arc::new(certified(strong, provider)?),
            ca,
            leaf_key,
            leaf_signer,
            issued: Mutex::new(HashMap::new()),
        })
    }

    /// The certificate of the load-test domain `domain` (`d7.load.test`).
    fn load_certificate(&self, domain: String) -> Option<Arc<CertifiedKey>> {
        let mut issued = self.issued.lock().ok()?;
        if let Some(found) = issued.get(&domain) {
            return Some(Arc::clone(found));
        }
        let names = [
            domain.clone(),
            format!("www.{domain}"),
            format!("mta-sts.{domain}"),
        ];
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let cert = match self
            .ca
            .issue_with_key(&names, Validity::Current, &self.leaf_key)
        {
            Ok(cert) => cert,
            Err(error) => {
                tracing::warn!(%error, %domain, "cannot issue a load-test certificate");
                return None;
            }
        };
        let key = Arc::new(CertifiedKey::new(cert.chain, Arc::clone(&self.leaf_signer)));
        issued.insert(domain, Arc::clone(&key));
        Some(key)
    }
}

impl ResolvesServerCert for StrongOrLoad {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match client_hello.server_name().and_then(load_domain) {
            Some(domain) => self.load_certificate(domain),
            None => Some(Arc::clone(&self.strong)),
        }
    }
}
