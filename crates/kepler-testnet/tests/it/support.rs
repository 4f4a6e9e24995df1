//! One helper per concern: starting a testnet, resolvers, HTTP over TCP/TLS.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::dnssec::TrustAnchors;
use hickory_resolver::{Resolver, TokioResolver};
use kepler_testnet::{Testnet, TestnetOptions};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tempfile::TempDir;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A running testnet and the directory its files live in (kept alive with it).
pub struct Net {
    pub net: Testnet,
    /// Kept so the CA and trust anchor files outlive the testnet.
    pub _dir: TempDir,
}

pub async fn start() -> Net {
    start_with_latency(Duration::ZERO).await
}

pub async fn start_with_latency(latency: Duration) -> Net {
    let dir = tempfile::tempdir().expect("temp dir");
    let net = Testnet::start(TestnetOptions {
        latency,
        dir: dir.path().to_path_buf(),
        standard_ports: false,
    })
    .await
    .expect("testnet starts");
    Net { net, _dir: dir }
}

/// Whether this machine has IPv6 loopback.
pub fn has_ipv6() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

/// A resolver that asks only the testnet's DNS server; validating when asked,
/// with the trust anchor the testnet wrote.
pub fn resolver(net: &Testnet, validate: bool) -> TokioResolver {
    let dns = net.dns_addr();
    let mut server = NameServerConfig::udp_and_tcp(dns.ip());
    for connection in &mut server.connections {
        connection.port = dns.port();
    }
    let config = ResolverConfig::from_name_servers(vec![server]);
    let mut builder = Resolver::builder_with_config(config, TokioRuntimeProvider::default());
    builder.options_mut().use_hosts_file = ResolveHosts::Never;
    builder.options_mut().cache_size = 0;
    if validate {
        let anchors =
            TrustAnchors::from_file(net.trust_anchor_file()).expect("trust anchor file parses");
        builder.options_mut().validate = true;
        builder = builder.with_trust_anchor(Arc::new(anchors));
    }
    builder.build().expect("resolver")
}

/// A rustls client trusting only the testnet CA (as written to disk).
pub fn tls_client(net: &Testnet) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(net.ca_file()).expect("CA file") {
        roots
            .add(cert.expect("CA cert"))
            .expect("CA is a valid root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The value of a header (case-insensitive name), if sent once or more.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    host: &str,
    path: &str,
) -> io::Result<Response> {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: kepler-testnet-it\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    // A TLS peer closing without close_notify still leaves a full response.
    if let Err(e) = stream.read_to_end(&mut raw).await
        && raw.is_empty()
    {
        return Err(e);
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::other(format!("no header end in {text:?}")))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line {status_line:?}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Response {
        status,
        headers,
        body: body.to_string(),
    })
}

/// `GET http://host/path` sent to `ip` on the testnet's HTTP port.
pub async fn http_get(net: &Testnet, ip: IpAddr, host: &str, path: &str) -> io::Result<Response> {
    let stream = TcpStream::connect(SocketAddr::new(ip, net.http_port())).await?;
    exchange(stream, host, path).await
}

/// `GET https://host/path` sent to `ip` on the testnet's HTTPS port, SNI `host`,
/// certificate verified against the testnet CA.
pub async fn https_get(net: &Testnet, ip: IpAddr, host: &str, path: &str) -> io::Result<Response> {
    let stream = TcpStream::connect(SocketAddr::new(ip, net.https_port())).await?;
    let name = ServerName::try_from(host.to_string()).map_err(io::Error::other)?;
    let tls = tls_client(net).connect(name, stream).await?;
    exchange(tls, host, path).await
}
