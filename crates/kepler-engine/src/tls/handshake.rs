//! Real TLS 1.2/1.3 handshakes with rustls, through a verifier that records the
//! chain and the standard verifier's verdict but lets the handshake finish, so
//! a bad certificate never hides the version and suite.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use super::connect::connect;
use super::evidence::{CertVerdict, Handshake, ProbeFailure};

/// The chain a server presented and the standard verifier's verdict on it.
#[derive(Debug, Clone)]
pub struct SeenChain {
    /// DER, leaf first.
    pub certs: Vec<Vec<u8>>,
    pub verdict: CertVerdict,
    pub verifier_error: Option<String>,
}

/// What one rustls handshake attempt produced.
#[derive(Debug)]
pub struct HandshakeProbe {
    pub outcome: Result<Handshake, ProbeFailure>,
    /// Present whenever the handshake got as far as the server's certificate.
    pub chain: Option<SeenChain>,
}

#[derive(Debug)]
struct RecordingVerifier {
    /// None when no verifier could be built (no trust anchors): every chain is then untrusted.
    standard: Result<Arc<WebPkiServerVerifier>, String>,
    provider: Arc<CryptoProvider>,
    seen: Mutex<Option<SeenChain>>,
}

impl RecordingVerifier {
    fn take(&self) -> Option<SeenChain> {
        self.seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }
}

/// Maps the standard verifier's refusal to a verdict.
fn verdict_for(error: &rustls::Error) -> CertVerdict {
    match error {
        rustls::Error::InvalidCertificate(e) => match e {
            CertificateError::UnknownIssuer => CertVerdict::UntrustedIssuer,
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                CertVerdict::Expired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                CertVerdict::NotYetValid
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                CertVerdict::NameMismatch
            }
            other => CertVerdict::Other(format!("{other:?}")),
        },
        other => CertVerdict::Other(other.to_string()),
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let (verdict, verifier_error) = match &self.standard {
            Ok(standard) => {
                match standard.verify_server_cert(
                    end_entity,
                    intermediates,
                    server_name,
                    ocsp_response,
                    now,
                ) {
                    Ok(_) => (CertVerdict::Trusted, None),
                    Err(e) => (verdict_for(&e), Some(e.to_string())),
                }
            }
            Err(why) => (CertVerdict::UntrustedIssuer, Some(why.clone())),
        };
        let certs = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.as_ref().to_vec())
            .collect();
        *self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(SeenChain {
            certs,
            verdict,
            verifier_error,
        });
        // Recorded, not enforced: the probe never sends application data.
        Ok(ServerCertVerified::assertion())
    }

    // Handshake signatures are still checked, so a completed handshake means the
    // server holds the certificate's key.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Which protocol versions a handshake may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versions {
    Both,
    Tls13Only,
    Tls12Only,
}

/// Connects (addresses in order) and runs one rustls handshake with SNI =
/// `domain`, all before `deadline`.
pub async fn run(
    domain: &str,
    addrs: &[IpAddr],
    port: u16,
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    versions: Versions,
    deadline: Instant,
) -> HandshakeProbe {
    let standard = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| format!("no certificate verifier: {e}"));
    let verifier = Arc::new(RecordingVerifier {
        standard,
        provider: provider.clone(),
        seen: Mutex::new(None),
    });
    let outcome = handshake(
        domain,
        addrs,
        port,
        verifier.clone(),
        provider,
        versions,
        deadline,
    )
    .await;
    HandshakeProbe {
        outcome,
        chain: verifier.take(),
    }
}

async fn handshake(
    domain: &str,
    addrs: &[IpAddr],
    port: u16,
    verifier: Arc<RecordingVerifier>,
    provider: Arc<CryptoProvider>,
    versions: Versions,
    deadline: Instant,
) -> Result<Handshake, ProbeFailure> {
    let versions: &[&'static rustls::SupportedProtocolVersion] = match versions {
        Versions::Both => &[&rustls::version::TLS13, &rustls::version::TLS12],
        Versions::Tls13Only => &[&rustls::version::TLS13],
        Versions::Tls12Only => &[&rustls::version::TLS12],
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| ProbeFailure::Local(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // A probe's config serves one handshake, which must be a full one (the chain
    // is what it inspects). rustls' default session cache is allocated up front
    // for 256 servers; with three probes per run and hundreds of runs in flight
    // it was a large share of the worker's memory (issue 6).
    config.resumption = rustls::client::Resumption::disabled();
    let server_name = ServerName::try_from(domain.to_owned())
        .map_err(|e| ProbeFailure::Local(format!("{domain}: {e}")))?;

    let (tcp, addr) = connect(addrs, port, deadline).await?;
    let connecting = TlsConnector::from(Arc::new(config)).connect(server_name, tcp);
    let stream = match tokio::time::timeout_at(deadline, connecting).await {
        Err(_) => return Err(ProbeFailure::TimedOut { addr: Some(addr) }),
        Ok(Err(e)) => {
            return Err(ProbeFailure::Handshake {
                addr: Some(addr),
                error: e.to_string(),
            });
        }
        Ok(Ok(stream)) => stream,
    };
    let conn = stream.get_ref().1;
    let (Some(version), Some(suite)) = (conn.protocol_version(), conn.negotiated_cipher_suite())
    else {
        return Err(ProbeFailure::Local(
            "handshake finished without a version or suite".to_owned(),
        ));
    };
    Ok(Handshake {
        addr,
        version: u16::from(version),
        cipher_suite: u16::from(suite.suite()),
        key_exchange_group: conn
            .negotiated_key_exchange_group()
            .map(|g| format!("{:?}", g.name())),
        alpn: conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
    })
}
