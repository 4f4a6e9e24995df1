//! The engine's one HTTP client: a single request at a time, never a redirect
//! followed on its own, connecting only to addresses the [`AddressResolver`] vetted.
//!
//! Why so strict: every probe must record what it saw hop by hop, and nothing a
//! scored domain serves may steer Kepler towards a private network. The resolver
//! is asked once per connection and its answer is the only place the socket goes,
//! so there is no second look-up that DNS rebinding could change.

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::{Deserialize, Serialize};

/// The most of a body kept; the rest is not read and the response is marked truncated.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What Kepler says it is, on every request.
pub const USER_AGENT: &str = concat!("kepler/", env!("CARGO_PKG_VERSION"), " (+domain scoring)");

/// Turns a host name into the addresses Kepler may connect to (already vetted:
/// the implementation refuses private targets unless configured otherwise).
pub trait AddressResolver: Send + Sync {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, FetchError>>;
}

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum FetchError {
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    #[error("name resolution failed: {0}")]
    Resolve(String),
    /// The resolver would not hand out an address Kepler may contact.
    #[error("the target's addresses are not allowed")]
    Refused,
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("TLS failed: {0}")]
    Tls(TlsError),
    #[error("timed out")]
    Timeout,
    #[error("HTTP exchange failed: {0}")]
    Http(String),
    /// The client itself could not be built (bad TLS configuration).
    #[error("HTTP client setup failed: {0}")]
    Setup(String),
}

/// A TLS failure, split so that probes can tell a bad certificate from the rest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum TlsError {
    /// Untrusted, expired, not valid for the name, or otherwise rejected.
    #[error("certificate rejected: {0}")]
    Certificate(String),
    #[error("handshake failed: {0}")]
    Handshake(String),
}

impl FetchError {
    /// True for a certificate the client would not trust.
    pub fn is_certificate(&self) -> bool {
        matches!(self, FetchError::Tls(TlsError::Certificate(_)))
    }
}

/// Methods the probes need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Options,
}

/// Whether the server certificate must be trusted for the request to proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertPolicy {
    /// The normal case: an untrusted certificate is a [`TlsError::Certificate`].
    Verify,
    /// Read the response even behind a bad certificate, as the HTTP Observatory
    /// does to grade headers after noting the certificate. Used only after a
    /// verified attempt already failed on the certificate.
    AcceptInvalid,
}

/// One response, exactly as received.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedResponse {
    /// The URL asked for (the logical one, before any test-network port mapping).
    pub url: url::Url,
    pub status: u16,
    /// Lower-case names, every value kept in order (several `set-cookie`, say).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub remote_addr: IpAddr,
    /// The body was longer than [`MAX_BODY_BYTES`] and was cut.
    pub truncated: bool,
}

impl FetchedResponse {
    /// Every value of header `name` (lower-case), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The HTTP client. Cheap to share behind an `Arc`; holds pooled connections.
pub struct Fetcher {
    /// One client per scheme so that each knows its port mapping (the resolver
    /// hands out socket addresses carrying the test network's port).
    plain: reqwest::Client,
    tls: reqwest::Client,
    tls_unverified: reqwest::Client,
    timeout: Duration,
}

impl fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetcher")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// No connection is kept for a later request: each closes once its response is
/// read. Runs score different domains, so a kept connection almost never serves
/// another run, and within a run the fetches that could share one (the page and
/// security.txt on the same origin) run at the same time on their own. Kept
/// connections cost memory without saving time: with 1,000 runs in flight the
/// peak resident set was 288–289 MiB with connections kept for 2 s and 247–251 MiB
/// without, and a cold run of strong.test kept its wall time and its 6.2 round
/// trips at 100 ms (kepler-bench memory / engine, issue 6).
const IDLE_CONNECTIONS_PER_HOST: usize = 0;

impl Fetcher {
    /// Builds the clients. `http_port`/`https_port` replace the default ports of
    /// URLs that name none (test networks); an explicit port in a URL is kept.
    pub fn new(
        resolver: Arc<dyn AddressResolver>,
        roots: Arc<RootCertStore>,
        http_port: u16,
        https_port: u16,
        timeout: Duration,
    ) -> Result<Fetcher, FetchError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verified = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| FetchError::Setup(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let unverified = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| FetchError::Setup(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
            .with_no_client_auth();
        // Every client gets a TLS configuration, even the plain one: reqwest would
        // otherwise build its own and panic for want of a process-wide provider.
        let build = |port: u16, tls: rustls::ClientConfig| {
            let builder = reqwest::Client::builder()
                .dns_resolver(Arc::new(VettedResolver {
                    inner: resolver.clone(),
                    port,
                }))
                .redirect(reqwest::redirect::Policy::none())
                .timeout(timeout)
                .connect_timeout(timeout)
                .user_agent(USER_AGENT)
                .no_proxy()
                // The probes look at what a site sends as it is; the SDK's gzip
                // (a feature shared through the workspace) must not change that.
                .no_gzip()
                .pool_max_idle_per_host(IDLE_CONNECTIONS_PER_HOST)
                .use_preconfigured_tls(with_alpn(tls));
            builder
                .build()
                .map_err(|e| FetchError::Setup(e.to_string()))
        };
        Ok(Fetcher {
            plain: build(http_port, verified.clone())?,
            tls: build(https_port, verified)?,
            tls_unverified: build(https_port, unverified)?,
            timeout,
        })
    }

    /// One GET; redirects are returned, never followed.
    pub async fn get(&self, url: &str) -> Result<FetchedResponse, FetchError> {
        self.request(Method::Get, url, &[], CertPolicy::Verify)
            .await
    }

    /// One request with extra headers; redirects are returned, never followed.
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        certs: CertPolicy,
    ) -> Result<FetchedResponse, FetchError> {
        let parsed =
            url::Url::parse(url).map_err(|e| FetchError::InvalidUrl(format!("{url}: {e}")))?;
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(FetchError::InvalidUrl(format!("{url}: no host")));
        }
        let client = match (parsed.scheme(), certs) {
            ("http", _) => &self.plain,
            ("https", CertPolicy::Verify) => &self.tls,
            ("https", CertPolicy::AcceptInvalid) => &self.tls_unverified,
            (other, _) => {
                return Err(FetchError::InvalidUrl(format!(
                    "{url}: scheme {other} is not fetched"
                )));
            }
        };
        let method = match method {
            Method::Get => reqwest::Method::GET,
            Method::Options => reqwest::Method::OPTIONS,
        };
        let mut request = client.request(method, parsed.clone());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        // The client's own timeout covers connect and headers; this one also bounds
        // the body, whose reading we drive ourselves.
        match tokio::time::timeout(self.timeout, exchange(request, parsed)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout),
        }
    }
}

async fn exchange(
    request: reqwest::RequestBuilder,
    url: url::Url,
) -> Result<FetchedResponse, FetchError> {
    let mut response = request.send().await.map_err(classify)?;
    let status = response.status().as_u16();
    // Without an address the response did not come over a connection we made;
    // the unspecified address records that rather than inventing one.
    let remote_addr = response
        .remote_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = Vec::new();
    let mut truncated = false;
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        let room = MAX_BODY_BYTES - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            truncated = true;
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(FetchedResponse {
        url,
        status,
        headers,
        body,
        remote_addr,
        truncated,
    })
}

fn with_alpn(mut config: rustls::ClientConfig) -> rustls::ClientConfig {
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}

/// Maps a reqwest failure onto the typed error by walking its causes.
fn classify(error: reqwest::Error) -> FetchError {
    if error.is_timeout() {
        return FetchError::Timeout;
    }
    let mut connect_refused = false;
    for cause in causes(&error) {
        if let Some(inner) = cause.downcast_ref::<ResolveFailure>() {
            return inner.0.clone();
        }
        if let Some(tls) = tls_cause(cause) {
            return FetchError::Tls(tls);
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return FetchError::Timeout;
            }
            connect_refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
    }
    let text = error_chain_text(&error);
    if error.is_connect() || connect_refused {
        FetchError::Connect(text)
    } else {
        FetchError::Http(text)
    }
}

/// Every error in the chain. `io::Error::source` skips the error it wraps (and
/// the TLS connector wraps io errors in io errors), so payloads are entered.
fn causes<'a>(root: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(root);
    while let Some(err) = next.take() {
        if out.len() >= 32 {
            break;
        }
        out.push(err);
        next = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(payload) => Some(payload as &(dyn StdError + 'static)),
            None => err.source(),
        };
    }
    out
}

fn tls_cause(err: &(dyn StdError + 'static)) -> Option<TlsError> {
    let tls = err.downcast_ref::<rustls::Error>()?;
    Some(match tls {
        rustls::Error::InvalidCertificate(cert) => TlsError::Certificate(format!("{cert:?}")),
        other => TlsError::Handshake(other.to_string()),
    })
}

fn error_chain_text(error: &(dyn StdError + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut cursor = error.source();
    while let Some(err) = cursor {
        let text = err.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        cursor = err.source();
    }
    parts.join(": ")
}

/// Carries a resolver's typed error through reqwest's boxed error.
#[derive(Debug)]
struct ResolveFailure(FetchError);

impl fmt::Display for ResolveFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl StdError for ResolveFailure {}

/// reqwest's resolver hook: asks the vetted resolver and nothing else.
struct VettedResolver {
    inner: Arc<dyn AddressResolver>,
    /// Non-zero ports in resolved addresses are kept by the connector unless the
    /// URL names a port itself; that is how the test network's ports apply.
    port: u16,
}

impl reqwest::dns::Resolve for VettedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let inner = self.inner.clone();
        let host = name.as_str().to_owned();
        let port = self.port;
        Box::pin(async move {
            let addrs = inner
                .resolve(&host)
                .await
                .map_err(|e| Box::new(ResolveFailure(e)) as Box<dyn StdError + Send + Sync>)?;
            if addrs.is_empty() {
                let err = ResolveFailure(FetchError::Resolve(format!("{host}: no addresses")));
                return Err(Box::new(err) as Box<dyn StdError + Send + Sync>);
            }
            let sockets: Vec<SocketAddr> = addrs
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect();
            Ok(Box::new(sockets.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Accepts any certificate but still checks handshake signatures, so the
/// connection is at least with the holder of the presented key.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

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

/// A fixed name → addresses map: for tests and for callers that already resolved.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    map: std::collections::HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    pub fn new() -> StaticResolver {
        StaticResolver::default()
    }

    /// Adds `host` (case-insensitive) resolving to `addrs`.
    pub fn with(mut self, host: &str, addrs: &[IpAddr]) -> StaticResolver {
        self.map.insert(host.to_ascii_lowercase(), addrs.to_vec());
        self
    }
}

impl AddressResolver for StaticResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, FetchError>> {
        let key = host.trim_end_matches('.').to_ascii_lowercase();
        let answer = self
            .map
            .get(&key)
            .cloned()
            .ok_or_else(|| FetchError::Resolve(format!("{host}: not found")));
        Box::pin(async move { answer })
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::web::testkit::{
        Cert, LOCALHOST, Reply, Script, TestCa, closed_port, fetcher, serve_http, serve_https,
    };

    const NAME: &str = "site.test";
    const SECOND: Duration = Duration::from_secs(1);

    fn script() -> Script {
        Script::new()
            .get(
                NAME,
                "/",
                Reply::ok("hello")
                    .header("set-cookie", "a=1")
                    .header("set-cookie", "b=2")
                    .header("X-Mixed", "v"),
            )
            .get(NAME, "/moved", Reply::redirect(302, "/elsewhere"))
            .get(
                NAME,
                "/big",
                Reply::ok("").bytes(vec![b'x'; MAX_BODY_BYTES + 4096]),
            )
            .get(
                NAME,
                "/slow",
                Reply::ok("late").delay(Duration::from_secs(3)),
            )
            .options(NAME, "/", Reply::new(204).header("allow", "GET, OPTIONS"))
    }

    /// A fetcher whose default HTTP port is the test server's.
    async fn plain() -> (Fetcher, u16) {
        let addr = serve_http(script().router()).await;
        let ca = TestCa::new();
        (
            fetcher(
                &[NAME],
                ca.roots.clone(),
                addr.port(),
                closed_port().await,
                SECOND,
            ),
            addr.port(),
        )
    }

    #[tokio::test]
    async fn one_get_keeps_every_header_value_and_maps_the_port() {
        let (fetcher, _) = plain().await;
        let r = fetcher.get("http://site.test/").await.expect("answers");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"hello");
        assert!(!r.truncated);
        assert_eq!(r.remote_addr, LOCALHOST);
        assert_eq!(
            r.url.as_str(),
            "http://site.test/",
            "the logical URL, without the mapped port"
        );
        let cookies: Vec<&str> = r.header_values("set-cookie").collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert_eq!(r.header("x-mixed"), Some("v"), "names are lower-case");
    }

    #[tokio::test]
    async fn redirects_are_returned_not_followed() {
        let (fetcher, _) = plain().await;
        let r = fetcher
            .get("http://site.test/moved")
            .await
            .expect("answers");
        assert_eq!(r.status, 302);
        assert_eq!(r.header("location"), Some("/elsewhere"));
    }

    #[tokio::test]
    async fn bodies_are_capped() {
        let (fetcher, _) = plain().await;
        let r = fetcher.get("http://site.test/big").await.expect("answers");
        assert!(r.truncated);
        assert_eq!(r.body.len(), MAX_BODY_BYTES);
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let (fetcher, _) = plain().await;
        let started = std::time::Instant::now();
        assert_eq!(
            fetcher.get("http://site.test/slow").await,
            Err(FetchError::Timeout)
        );
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn explicit_ports_are_kept_and_methods_and_headers_sent() {
        let addr = serve_http(script().router()).await;
        let ca = TestCa::new();
        // The default port mapping points nowhere; the explicit port reaches the server.
        let fetcher = fetcher(
            &[NAME],
            ca.roots.clone(),
            closed_port().await,
            closed_port().await,
            SECOND,
        );
        let url = format!("http://site.test:{}/", addr.port());
        let r = fetcher
            .request(
                Method::Options,
                &url,
                &[("x-echo", "ping")],
                CertPolicy::Verify,
            )
            .await
            .expect("answers");
        assert_eq!(r.status, 204);
        assert_eq!(r.header("x-echoed"), Some("ping"));
        assert_eq!(r.header("allow"), Some("GET, OPTIONS"));
    }

    #[tokio::test]
    async fn resolution_failures_are_typed() {
        let (fetcher, _) = plain().await;
        assert!(matches!(
            fetcher.get("http://unknown.test/").await,
            Err(FetchError::Resolve(_))
        ));

        struct Refusing;
        impl AddressResolver for Refusing {
            fn resolve<'a>(
                &'a self,
                _host: &'a str,
            ) -> BoxFuture<'a, Result<Vec<IpAddr>, FetchError>> {
                Box::pin(async { Err(FetchError::Refused) })
            }
        }
        let ca = TestCa::new();
        let refusing =
            Fetcher::new(Arc::new(Refusing), ca.roots.clone(), 80, 443, SECOND).expect("builds");
        assert_eq!(
            refusing.get("http://site.test/").await,
            Err(FetchError::Refused)
        );

        let empty = StaticResolver::new().with(NAME, &[]);
        let empty =
            Fetcher::new(Arc::new(empty), ca.roots.clone(), 80, 443, SECOND).expect("builds");
        assert!(matches!(
            empty.get("http://site.test/").await,
            Err(FetchError::Resolve(_))
        ));
    }

    #[tokio::test]
    async fn bad_urls_and_closed_ports() {
        let (client, _) = plain().await;
        for url in [
            "not a url",
            "ftp://site.test/",
            "file:///etc/passwd",
            "http://:80/",
        ] {
            assert!(
                matches!(client.get(url).await, Err(FetchError::InvalidUrl(_))),
                "{url}"
            );
        }
        let ca = TestCa::new();
        let closed = fetcher(
            &[NAME],
            ca.roots.clone(),
            closed_port().await,
            closed_port().await,
            SECOND,
        );
        assert!(matches!(
            closed.get("http://site.test/").await,
            Err(FetchError::Connect(_))
        ));
    }

    async fn tls_server(cert: Cert) -> (Fetcher, TestCa) {
        let ca = TestCa::new();
        let (chain, key) = ca.leaf(&[NAME], cert);
        let addr = serve_https(script().router(), chain, key).await;
        let fetcher = fetcher(
            &[NAME],
            ca.roots.clone(),
            closed_port().await,
            addr.port(),
            SECOND,
        );
        (fetcher, ca)
    }

    #[tokio::test]
    async fn https_with_a_trusted_certificate() {
        let (fetcher, _ca) = tls_server(Cert::Valid).await;
        let r = fetcher.get("https://site.test/").await.expect("answers");
        assert_eq!((r.status, r.body.as_slice()), (200, b"hello".as_slice()));
    }

    #[tokio::test]
    async fn certificate_problems_are_tls_certificate_errors() {
        for cert in [Cert::Expired, Cert::WrongName] {
            let (fetcher, _ca) = tls_server(cert).await;
            let err = fetcher
                .get("https://site.test/")
                .await
                .expect_err("rejected");
            assert!(err.is_certificate(), "{cert:?}: {err:?}");
            let r = fetcher
                .request(
                    Method::Get,
                    "https://site.test/",
                    &[],
                    CertPolicy::AcceptInvalid,
                )
                .await
                .expect("read anyway");
            assert_eq!(r.status, 200, "{cert:?}");
        }
        // A certificate from a CA the fetcher does not trust.
        let (server_side, _ca) = tls_server(Cert::Valid).await;
        drop(server_side);
        let other = TestCa::new();
        let (chain, key) = other.leaf(&[NAME], Cert::Valid);
        let addr = serve_https(script().router(), chain, key).await;
        let ca = TestCa::new();
        let fetcher = fetcher(
            &[NAME],
            ca.roots.clone(),
            closed_port().await,
            addr.port(),
            SECOND,
        );
        let err = fetcher
            .get("https://site.test/")
            .await
            .expect_err("untrusted");
        assert!(err.is_certificate(), "{err:?}");
    }

    #[test]
    fn user_agent_names_kepler() {
        assert!(USER_AGENT.starts_with("kepler/") && USER_AGENT.ends_with("(+domain scoring)"));
    }
}
