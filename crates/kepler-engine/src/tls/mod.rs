//! The TLS probe (port 443) and the `tls` category.
//!
//! `probe` runs, concurrently and within one time budget, three rustls
//! handshakes (any version, TLS 1.3 only, TLS 1.2 only) and four hand-built
//! ClientHellos (TLS 1.0, TLS 1.1, a browser-like TLS 1.2 offer, a TLS 1.2 offer
//! of weak suites only), and returns what it saw as [`TlsEvidence`]. `score`
//! turns evidence into the category; it does no I/O.

mod cert;
mod connect;
mod evidence;
mod handshake;
mod hello;
mod score;
pub mod suites;

#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use kepler_core::Domain;
use rustls::RootCertStore;
use tokio::time::Instant;

pub use evidence::{
    CertSummary, CertVerdict, CertificateEvidence, ConnectAttempt, Handshake, HelloProbe,
    HttpsStatus, KeyInfo, KeyKind, ProbeFailure, ServerAnswer, TlsEvidence,
};
pub use score::{
    B_BAND_CEILING, BAD_CERTIFICATE_CEILING, EXPIRY_SOON_DAYS, EXPIRY_SOON_POINTS,
    EXPIRY_URGENT_DAYS, EXPIRY_URGENT_POINTS, MIN_EC_BITS, MIN_RSA_BITS, NO_HTTPS_POINTS,
    NO_TLS13_POINTS, START, score,
};

use handshake::Versions;
use hello::HelloSpec;

/// Probes TLS on `port` of the first of `addrs` that accepts (they are already
/// vetted; no name is resolved here). Every sub-probe runs concurrently and all
/// stop by `timeout`; failures are recorded, never raised.
pub async fn probe(
    domain: &Domain,
    addrs: &[IpAddr],
    port: u16,
    roots: Arc<RootCertStore>,
    timeout: Duration,
) -> TlsEvidence {
    let start = Instant::now();
    // A budget too large to add is as good as none: a year stands in for it.
    let deadline = start
        .checked_add(timeout)
        .unwrap_or_else(|| start + Duration::from_secs(365 * 86_400));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let name = domain.as_str();
    let rustls_probe = |versions| {
        handshake::run(
            name,
            addrs,
            port,
            roots.clone(),
            provider.clone(),
            versions,
            deadline,
        )
    };
    let hello = |version, suites, signature_algorithms| {
        let spec = HelloSpec {
            version,
            suites,
            server_name: name,
            signature_algorithms,
        };
        hello_probe(spec, addrs, port, deadline)
    };

    let (main, tls13, tls12, tls10, tls11, tls12_typical, tls12_weak_only) = tokio::join!(
        rustls_probe(Versions::Both),
        rustls_probe(Versions::Tls13Only),
        rustls_probe(Versions::Tls12Only),
        hello(0x0301, suites::LEGACY_OFFER, false),
        hello(0x0302, suites::LEGACY_OFFER, false),
        hello(0x0303, suites::TYPICAL_TLS12_OFFER, true),
        hello(0x0303, suites::WEAK_TLS12_OFFER, true),
    );

    let now = Utc::now();
    let certificate = [&main.chain, &tls13.chain, &tls12.chain]
        .into_iter()
        .flatten()
        .next()
        .map(|seen| {
            cert::describe(
                &seen.certs,
                seen.verdict.clone(),
                seen.verifier_error.clone(),
                name,
                now,
            )
        });
    TlsEvidence {
        domain: name.to_owned(),
        port,
        addresses: addrs.to_vec(),
        main: main.outcome,
        tls13_only: tls13.outcome,
        tls12_only: tls12.outcome,
        certificate,
        tls10,
        tls11,
        tls12_typical,
        tls12_weak_only,
    }
}

/// One hand-built ClientHello on a fresh connection.
async fn hello_probe(
    spec: HelloSpec<'_>,
    addrs: &[IpAddr],
    port: u16,
    deadline: Instant,
) -> HelloProbe {
    let bytes = hello::client_hello(&spec, rand::random());
    let outcome = async {
        let (mut stream, _) = connect::connect(addrs, port, deadline).await?;
        hello::exchange(&mut stream, &bytes, deadline).await
    }
    .await;
    HelloProbe {
        offered: spec.version,
        outcome,
    }
}
