//! HTTPS with a private CA: trusted when added, refused (and not retried) when not.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use kepler_client::Error;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::support::{Scripted, Server, builder, pipe};

/// A CA (its PEM) and a certificate it issued for 127.0.0.1.
fn private_pki() -> (String, CertificateDer<'static>, PrivateKeyDer<'static>) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca.self_signed(&ca_key).expect("CA certificate").pem();
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("leaf params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf certificate");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    (ca_pem, leaf.der().clone(), key)
}

/// A TLS front for the server; returns its https base URL and a count of connections.
async fn tls_front(upstream: &str) -> (String, String, Arc<AtomicUsize>) {
    let (ca_pem, leaf, key) = private_pki();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(vec![leaf], key)
    .expect("server certificate");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("https://{}", listener.local_addr().expect("addr"));
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    let upstream = upstream.trim_start_matches("http://").to_owned();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(conn).await else {
                    return;
                };
                if let Ok(server) = TcpStream::connect(&upstream).await {
                    pipe(tls, server).await;
                }
            });
        }
    });
    (base, ca_pem, connections)
}

#[tokio::test]
async fn an_extra_ca_is_trusted_and_a_missing_one_fails_at_once() {
    let server = Server::start("", Scripted::default()).await;
    let key = server.sandbox_key().await;
    let (base, ca_pem, connections) = tls_front(&server.base).await;

    let trusting = builder(&base, &key)
        .builtin_roots(false)
        .add_root_certificate_pem(ca_pem.as_bytes())
        .build()
        .expect("client");
    let record = trusting
        .score("grade-d.sandbox.test")
        .await
        .expect("scored over TLS");
    assert_eq!(record.domain, "grade-d.sandbox.test");

    let before = connections.load(Ordering::SeqCst);
    let public_roots_only = builder(&base, &key).build().expect("client");
    let error = public_roots_only
        .usage()
        .await
        .expect_err("an unknown CA is refused");
    assert!(matches!(error, Error::Transport { .. }), "{error:?}");
    assert_eq!(
        connections.load(Ordering::SeqCst) - before,
        1,
        "a certificate failure is not retried"
    );
    server.stop().await;
}
