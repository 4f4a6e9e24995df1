//! Loopback servers and a fetcher wired to them, shared by the fetch, web and
//! hygiene tests. Every name resolves to 127.0.0.1 through a static map; every
//! server listens on 127.0.0.1:0.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, Issuer, KeyPair};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};

use crate::fetch::{Fetcher, StaticResolver};

pub(crate) const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A private CA for test certificates.
pub(crate) struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pub roots: Arc<RootCertStore>,
}

/// Which certificate an HTTPS test server presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cert {
    Valid,
    Expired,
    /// Valid, but for `other.invalid` only.
    WrongName,
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut params =
            CertificateParams::new(Vec::<String>::new()).expect("empty SAN list is valid");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Kepler test CA");
        let key = KeyPair::generate().expect("key generation works");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("CA self-signs");
        let mut roots = RootCertStore::empty();
        roots
            .add(issuer.der().clone())
            .expect("CA certificate is well-formed");
        TestCa {
            issuer,
            roots: Arc::new(roots),
        }
    }

    pub fn leaf(
        &self,
        names: &[&str],
        kind: Cert,
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let names: Vec<String> = if kind == Cert::WrongName {
            vec!["other.invalid".to_owned()]
        } else {
            names.iter().map(|n| (*n).to_owned()).collect()
        };
        let mut params = CertificateParams::new(names).expect("valid names");
        if kind == Cert::Expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let key = KeyPair::generate().expect("key generation works");
        let issuer: &Issuer<'_, KeyPair> = &self.issuer;
        let cert = params.signed_by(&key, issuer).expect("CA signs");
        (
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    }
}

/// A canned answer.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Option<Duration>,
}

impl Reply {
    pub fn new(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: None,
        }
    }

    pub fn ok(body: &str) -> Reply {
        Reply::new(200).body(body)
    }

    pub fn redirect(status: u16, to: &str) -> Reply {
        Reply::new(status).header("location", to)
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn headers(mut self, list: &[(&str, &str)]) -> Reply {
        for (n, v) in list {
            self.headers.push(((*n).to_owned(), (*v).to_owned()));
        }
        self
    }

    pub fn body(mut self, body: &str) -> Reply {
        self.body = body.as_bytes().to_vec();
        self
    }

    pub fn bytes(mut self, body: Vec<u8>) -> Reply {
        self.body = body;
        self
    }

    pub fn delay(mut self, d: Duration) -> Reply {
        self.delay = Some(d);
        self
    }
}

/// Replies keyed by (method, host without port, path); anything else is a 404.
#[derive(Debug, Clone, Default)]
pub(crate) struct Script {
    replies: HashMap<(String, String, String), Reply>,
    /// Replies for OPTIONS that echo the request's Origin (CORS reflection).
    reflect_origin: Vec<String>,
}

impl Script {
    pub fn new() -> Script {
        Script::default()
    }

    pub fn get(mut self, host: &str, path: &str, reply: Reply) -> Script {
        self.replies
            .insert(("GET".to_owned(), host.to_owned(), path.to_owned()), reply);
        self
    }

    pub fn options(mut self, host: &str, path: &str, reply: Reply) -> Script {
        self.replies.insert(
            ("OPTIONS".to_owned(), host.to_owned(), path.to_owned()),
            reply,
        );
        self
    }

    /// OPTIONS on `host` answers with the request's Origin and credentials allowed.
    pub fn reflect_origin(mut self, host: &str) -> Script {
        self.reflect_origin.push(host.to_owned());
        self
    }

    pub fn router(self) -> Router {
        Router::new().fallback(answer).with_state(Arc::new(self))
    }
}

async fn answer(State(script): State<Arc<Script>>, request: Request) -> Response {
    // HTTP/1.1 names the host in `Host`, HTTP/2 in the URI's authority.
    let authority = request.uri().host().map(str::to_owned);
    let host = request
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name).to_owned())
        .or(authority)
        .unwrap_or_default();
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    if method == "OPTIONS" && script.reflect_origin.contains(&host) {
        let origin = request
            .headers()
            .get("origin")
            .cloned()
            .unwrap_or(HeaderValue::from_static("null"));
        let mut response = Response::new(Body::empty());
        response
            .headers_mut()
            .insert("access-control-allow-origin", origin);
        response.headers_mut().insert(
            "access-control-allow-credentials",
            HeaderValue::from_static("true"),
        );
        return response;
    }
    let echo = request.headers().get("x-echo").cloned();
    let Some(reply) = script.replies.get(&(method, host, path)).cloned() else {
        let mut response = Response::new(Body::from("not found"));
        *response.status_mut() = StatusCode::NOT_FOUND;
        return response;
    };
    if let Some(d) = reply.delay {
        tokio::time::sleep(d).await;
    }
    let mut response = Response::new(Body::from(reply.body));
    *response.status_mut() = StatusCode::from_u16(reply.status).expect("test statuses are valid");
    for (name, value) in reply.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("test header names are valid");
        response.headers_mut().append(
            name,
            HeaderValue::from_str(&value).expect("test header values are valid"),
        );
    }
    if let Some(echo) = echo {
        response.headers_mut().insert("x-echoed", echo);
    }
    response
}

/// Serves `router` over plain HTTP.
pub(crate) async fn serve_http(router: Router) -> SocketAddr {
    let listener = TcpListener::bind((LOCALHOST, 0))
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// Serves `router` over HTTPS with the given certificate chain.
pub(crate) async fn serve_https(
    router: Router,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> SocketAddr {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the defaults")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("certificate and key match");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let tcp = TcpListener::bind((LOCALHOST, 0))
        .await
        .expect("bind loopback");
    let addr = tcp.local_addr().expect("bound address");
    let listener = TlsListener {
        tcp,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    };
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

struct TlsListener {
    tcp: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                continue;
            };
            // Clients that reject the certificate abort the handshake; wait for the next.
            if let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(5), self.acceptor.accept(stream)).await
            {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// A port on which nothing listens (bound, then released).
pub(crate) async fn closed_port() -> u16 {
    let listener = TcpListener::bind((LOCALHOST, 0))
        .await
        .expect("bind loopback");
    listener.local_addr().expect("bound address").port()
}

/// A fetcher resolving `names` to 127.0.0.1, mapping default ports to the given ones.
pub(crate) fn fetcher(
    names: &[&str],
    roots: Arc<RootCertStore>,
    http_port: u16,
    https_port: u16,
    timeout: Duration,
) -> Fetcher {
    let resolver = names
        .iter()
        .fold(StaticResolver::new(), |r, n| r.with(n, &[LOCALHOST]));
    Fetcher::new(Arc::new(resolver), roots, http_port, https_port, timeout).expect("fetcher builds")
}

/// HTTP and (optionally) HTTPS servers playing `script` for `names`, and a fetcher pointed at them.
pub(crate) struct TestNet {
    pub fetcher: Fetcher,
}

pub(crate) async fn testnet(names: &[&str], script: Script, https: Option<Cert>) -> TestNet {
    testnet_with_timeout(names, script, https, Duration::from_secs(5)).await
}

pub(crate) async fn testnet_with_timeout(
    names: &[&str],
    script: Script,
    https: Option<Cert>,
    timeout: Duration,
) -> TestNet {
    let ca = TestCa::new();
    let http = serve_http(script.clone().router()).await;
    let https_port = match https {
        Some(kind) => {
            let (chain, key) = ca.leaf(names, kind);
            serve_https(script.router(), chain, key).await.port()
        }
        None => closed_port().await,
    };
    TestNet {
        fetcher: fetcher(names, ca.roots.clone(), http.port(), https_port, timeout),
    }
}

/// Different scripts on the HTTP and HTTPS servers (the same paths answer differently).
pub(crate) async fn split_testnet(
    names: &[&str],
    http: Script,
    https: Script,
    cert: Cert,
) -> TestNet {
    let ca = TestCa::new();
    let http = serve_http(http.router()).await;
    let (chain, key) = ca.leaf(names, cert);
    let https = serve_https(https.router(), chain, key).await;
    TestNet {
        fetcher: fetcher(
            names,
            ca.roots.clone(),
            http.port(),
            https.port(),
            Duration::from_secs(5),
        ),
    }
}

/// Names that resolve, with nothing listening on either port.
pub(crate) async fn down_testnet(names: &[&str]) -> TestNet {
    let ca = TestCa::new();
    let (http, https) = (closed_port().await, closed_port().await);
    TestNet {
        fetcher: fetcher(names, ca.roots.clone(), http, https, Duration::from_secs(5)),
    }
}
