//! The TLS trust roots every probe shares: the Mozilla set (webpki-roots)
//! plus, for test networks, the certificates of `extra_ca_file`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Why the extra CA file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RootsError {
    #[error("cannot read the extra CA file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the extra CA file {path} is not valid PEM: {reason}")]
    Pem { path: PathBuf, reason: String },
    #[error("the extra CA file {path} holds no CERTIFICATE block")]
    Empty { path: PathBuf },
    #[error("certificate {index} of the extra CA file {path} cannot be a trust root: {reason}")]
    BadCertificate {
        path: PathBuf,
        index: usize,
        reason: String,
    },
}

/// webpki-roots plus the certificates of `extra`, if given.
pub fn root_store(extra: Option<&Path>) -> Result<Arc<RootCertStore>, RootsError> {
    let mut store: RootCertStore = webpki_roots::TLS_SERVER_ROOTS.iter().cloned().collect();
    if let Some(path) = extra {
        let bytes = std::fs::read(path).map_err(|source| RootsError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut count = 0;
        for (index, cert) in CertificateDer::pem_slice_iter(&bytes).enumerate() {
            let cert = cert.map_err(|e| RootsError::Pem {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
            store.add(cert).map_err(|e| RootsError::BadCertificate {
                path: path.to_owned(),
                index: index + 1,
                reason: e.to_string(),
            })?;
            count += 1;
        }
        if count == 0 {
            return Err(RootsError::Empty {
                path: path.to_owned(),
            });
        }
    }
    Ok(Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mozilla_set_alone() {
        let store = root_store(None).expect("built-in roots");
        assert_eq!(store.len(), webpki_roots::TLS_SERVER_ROOTS.len());
    }

    #[test]
    fn extra_roots_are_added() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().expect("key");
        let ca = params.self_signed(&key).expect("self-signed CA");
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, ca.pem()).expect("write");
        let store = root_store(Some(&path)).expect("valid CA file");
        assert_eq!(store.len(), webpki_roots::TLS_SERVER_ROOTS.len() + 1);
    }

    #[test]
    fn bad_extra_files_are_clear_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("missing.pem");
        assert!(matches!(
            root_store(Some(&missing)),
            Err(RootsError::Read { .. })
        ));

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificates here\n").expect("write");
        assert!(matches!(
            root_store(Some(&empty)),
            Err(RootsError::Empty { .. })
        ));

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let err = root_store(Some(&garbage)).expect_err("not a certificate");
        assert!(
            matches!(
                err,
                RootsError::BadCertificate { index: 1, .. } | RootsError::Pem { .. }
            ),
            "{err}"
        );
    }
}
