//! The fixture web servers: one per fixture address, all sharing one HTTP and
//! one HTTPS port, routed by the local address a connection arrives on.

pub mod legacy;
mod listen;
mod load;
pub mod sites;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use chrono::{DateTime, Utc};
use rustls::ServerConfig;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::error::StartError;
use crate::fixtures::{CDN, EXPIRED, MIXED, SLOW, STRONG, STRONG_V6, WEAK};
use crate::pki::{Ca, SiteCert, Validity};
use crate::ports;
pub use listen::PlainListener;
use listen::TlsSite;

/// `slow.test` holds each connection this long without a byte.
pub const SLOW_HOLD: Duration = Duration::from_secs(30);

enum Plain {
    Serve(Router),
    Silent,
}

enum Secure {
    Serve { tls: TlsSite, router: Router },
    Silent,
}

struct Site {
    addrs: Vec<IpAddr>,
    http: Option<Plain>,
    https: Option<Secure>,
}

fn tls_site(cert: SiteCert, legacy: bool) -> Result<TlsSite, StartError> {
    let legacy_certificate = legacy.then(|| Arc::new(cert.leaf().to_vec()));
    // rustls defaults: TLS 1.2 and 1.3, ECDHE with AEAD suites only.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(cert.chain, cert.key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsSite {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        legacy_certificate,
    })
}

/// strong.test's TLS side, which also answers every load-test name with a
/// certificate of its own (see [`load::StrongOrLoad`]).
fn strong_tls_site(strong: SiteCert, ca: &Arc<Ca>) -> Result<TlsSite, StartError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let resolver = load::StrongOrLoad::new(strong, Arc::clone(ca), &provider)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsSite {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        legacy_certificate: None,
    })
}

fn sites(ca: &Arc<Ca>, now: DateTime<Utc>, ipv6: bool) -> Result<Vec<Site>, StartError> {
    let mut strong_addrs = vec![IpAddr::V4(STRONG)];
    if ipv6 {
        strong_addrs.push(IpAddr::V6(STRONG_V6));
    }
    let strong_cert = ca.issue(
        &["strong.test", "www.strong.test", "mta-sts.strong.test"],
        Validity::Current,
    )?;
    let mixed_cert = ca.issue(
        &["mixed.test", "www.mixed.test", "mta-sts.mixed.test"],
        Validity::Current,
    )?;
    let expired_cert = ca.issue(&["expired.test", "www.expired.test"], Validity::Expired)?;
    let cdn_cert = ca.issue(&["cdn.test"], Validity::Current)?;
    Ok(vec![
        Site {
            addrs: strong_addrs,
            http: Some(Plain::Serve(sites::redirect_strong_or_load())),
            https: Some(Secure::Serve {
                tls: strong_tls_site(strong_cert, ca)?,
                router: sites::strong(now),
            }),
        },
        Site {
            addrs: vec![IpAddr::V4(MIXED)],
            http: Some(Plain::Serve(sites::redirect_to_https("mixed.test"))),
            https: Some(Secure::Serve {
                tls: tls_site(mixed_cert, true)?,
                router: sites::mixed(now),
            }),
        },
        Site {
            addrs: vec![IpAddr::V4(WEAK)],
            http: Some(Plain::Serve(sites::weak())),
            https: None,
        },
        Site {
            addrs: vec![IpAddr::V4(EXPIRED)],
            http: Some(Plain::Serve(sites::redirect_to_https("expired.test"))),
            https: Some(Secure::Serve {
                tls: tls_site(expired_cert, false)?,
                router: sites::expired(),
            }),
        },
        Site {
            addrs: vec![IpAddr::V4(SLOW)],
            http: Some(Plain::Silent),
            https: Some(Secure::Silent),
        },
        Site {
            addrs: vec![IpAddr::V4(CDN)],
            http: Some(Plain::Serve(sites::redirect_to_https("cdn.test"))),
            https: Some(Secure::Serve {
                tls: tls_site(cdn_cert, false)?,
                router: sites::cdn(),
            }),
        },
    ])
}

/// The running web servers.
#[derive(Debug)]
pub struct Web {
    pub http_port: u16,
    pub https_port: u16,
    pub tasks: Vec<JoinHandle<()>>,
}

/// Fixed ports (`--standard-ports`) or random shared ones.
#[derive(Debug, Clone, Copy)]
pub struct WebPorts {
    pub http: Option<u16>,
    pub https: Option<u16>,
}

/// Binds and starts every fixture web server.
pub async fn start(
    ca: &Arc<Ca>,
    now: DateTime<Utc>,
    ipv6: bool,
    ports: WebPorts,
    latency: Duration,
    cancel: &CancellationToken,
) -> Result<Web, StartError> {
    let sites = sites(ca, now, ipv6)?;

    // (address, plain behaviour) for every HTTP listener, then bind them together.
    let mut plain: Vec<(IpAddr, &Plain)> = Vec::new();
    let mut secure: Vec<(IpAddr, &Secure)> = Vec::new();
    for site in &sites {
        for &addr in &site.addrs {
            if let Some(p) = &site.http {
                plain.push((addr, p));
            }
            if let Some(s) = &site.https {
                secure.push((addr, s));
            }
        }
    }
    let plain_addrs: Vec<IpAddr> = plain.iter().map(|(a, _)| *a).collect();
    let secure_addrs: Vec<IpAddr> = secure.iter().map(|(a, _)| *a).collect();
    let (http_port, http_listeners) = ports::bind_shared("HTTP", &plain_addrs, ports.http).await?;
    let (https_port, https_listeners) =
        ports::bind_shared("HTTPS", &secure_addrs, ports.https).await?;

    let mut tasks = Vec::new();
    for ((_, behaviour), listener) in plain.into_iter().zip(http_listeners) {
        let cancel = cancel.clone();
        tasks.push(match behaviour {
            Plain::Serve(router) => {
                let router = router.clone();
                tokio::spawn(async move {
                    let serving = axum::serve(PlainListener::new(listener, latency), router)
                        .with_graceful_shutdown(cancel.cancelled_owned());
                    if let Err(error) = serving.await {
                        tracing::warn!(%error, "HTTP server stopped");
                    }
                })
            }
            Plain::Silent => tokio::spawn(listen::silent(listener, SLOW_HOLD, cancel)),
        });
    }
    for ((addr, behaviour), listener) in secure.into_iter().zip(https_listeners) {
        match behaviour {
            Secure::Serve { tls, router } => {
                let (tls_listener, acceptor) =
                    listen::tls_listener(listener, tls.clone(), latency, cancel.clone()).map_err(
                        |source| StartError::Bind {
                            what: "HTTPS",
                            addr: std::net::SocketAddr::new(addr, https_port),
                            source,
                        },
                    )?;
                tasks.push(acceptor);
                let router = router.clone();
                let cancel = cancel.clone();
                tasks.push(tokio::spawn(async move {
                    let serving = axum::serve(tls_listener, router)
                        .with_graceful_shutdown(cancel.cancelled_owned());
                    if let Err(error) = serving.await {
                        tracing::warn!(%error, "HTTPS server stopped");
                    }
                }));
            }
            Secure::Silent => tasks.push(tokio::spawn(listen::silent(
                listener,
                SLOW_HOLD,
                cancel.clone(),
            ))),
        }
    }
    Ok(Web {
        http_port,
        https_port,
        tasks,
    })
}
