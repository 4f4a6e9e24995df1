//! `kepler-testnet`: a fixture internet on loopback for Kepler's tests and
//! benchmarks (SCORING.md, "The test network").
//!
//! One [`Testnet`] runs an authoritative, DNSSEC-signed DNS server for the
//! fixture zones, the fixture web servers (each domain on its own 127.0.10.x
//! address, sharing one HTTP and one HTTPS port, certificates from the
//! testnet's own CA), a TLS 1.0 responder for `mixed.test`, and an RDAP server.
//! [`Testnet::engine_settings`] points the engine at all of it.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use kepler_testnet::{Testnet, TestnetOptions};
//! let net = Testnet::start(TestnetOptions::in_dir("/tmp/testnet")).await?;
//! let settings = net.engine_settings(); // resolver, CA, trust anchor, ports, RDAP
//! # let _ = settings;
//! net.shutdown().await;
//! # Ok(()) }
//! ```

mod dns;
mod error;
pub mod fixtures;
mod pki;
mod ports;
mod rdap;
mod stream;
mod web;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use kepler_core::config::EngineSettings;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use error::StartError;

use dns::{DnsServer, Zones};
use fixtures::{DNS_DEFAULT, DNS_STANDARD, FIXTURES};

/// File name of the CA certificate (PEM) in [`TestnetOptions::dir`].
pub const CA_FILE: &str = "testnet-ca.pem";
/// File name of the DNSSEC trust anchor (DNSKEY lines) in [`TestnetOptions::dir`].
pub const TRUST_ANCHOR_FILE: &str = "testnet-root.key";

/// How to start a testnet.
#[derive(Debug, Clone)]
pub struct TestnetOptions {
    /// Added before every DNS answer and before each connection's first byte out.
    pub latency: Duration,
    /// Where the CA PEM and the trust anchor are written (created if missing).
    pub dir: PathBuf,
    /// Ports 80/443 and DNS on 127.0.10.53:53 (needs root) instead of random ports.
    pub standard_ports: bool,
}

impl TestnetOptions {
    /// No latency, random ports, files in `dir`.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        TestnetOptions {
            latency: Duration::ZERO,
            dir: dir.into(),
            standard_ports: false,
        }
    }
}

/// A running fixture network. Stop it with [`Testnet::shutdown`]; dropping it
/// also stops accepting connections.
#[derive(Debug)]
pub struct Testnet {
    dns: Option<DnsServer>,
    dns_addr: SocketAddr,
    http_port: u16,
    https_port: u16,
    rdap_base_url: String,
    ca_file: PathBuf,
    trust_anchor_file: PathBuf,
    hosts: String,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

fn write_file(path: &Path, contents: &str) -> Result<(), StartError> {
    std::fs::write(path, contents).map_err(|source| StartError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// `/etc/hosts` lines: one per address, every fixture name on it.
fn hosts_text(addresses: &[(hickory_proto::rr::Name, IpAddr)]) -> String {
    let mut by_addr: BTreeMap<IpAddr, Vec<String>> = BTreeMap::new();
    for (name, addr) in addresses {
        let name = name.to_ascii();
        by_addr
            .entry(*addr)
            .or_default()
            .push(name.trim_end_matches('.').to_string());
    }
    let mut out = String::from(
        "# kepler-testnet fixture names (any other name under .test does not exist)\n",
    );
    for (addr, names) in by_addr {
        let _ = writeln!(out, "{addr} {}", names.join(" "));
    }
    let _ = writeln!(
        out,
        "# any NAME.{} answers like strong.test through the testnet's DNS (not listed here)",
        fixtures::LOAD_ZONE
    );
    for fixture in FIXTURES.iter().filter(|f| f.address.is_none()) {
        let _ = writeln!(
            out,
            "# {} has no address records: {}",
            fixture.domain, fixture.posture
        );
    }
    out
}

impl Testnet {
    /// Starts everything; every server is bound and answering when this returns.
    pub async fn start(opts: TestnetOptions) -> anyhow::Result<Testnet> {
        Ok(Testnet::try_start(opts).await?)
    }

    async fn try_start(opts: TestnetOptions) -> Result<Testnet, StartError> {
        let now = Utc::now();
        let ipv6 = ports::ipv6_loopback_available();
        let dns_ip = if opts.standard_ports {
            DNS_STANDARD
        } else {
            DNS_DEFAULT
        };
        let unix_now = u32::try_from(now.timestamp()).unwrap_or(u32::MAX);
        let zones = Zones::build(dns_ip, ipv6, unix_now)?;
        let hosts = hosts_text(&zones.addresses());

        let dir = std::path::absolute(&opts.dir).unwrap_or_else(|_| opts.dir.clone());
        std::fs::create_dir_all(&dir).map_err(|source| StartError::Write {
            path: dir.clone(),
            source,
        })?;
        let ca = std::sync::Arc::new(pki::Ca::new(now)?);
        let ca_file = dir.join(CA_FILE);
        let trust_anchor_file = dir.join(TRUST_ANCHOR_FILE);
        write_file(&ca_file, ca.pem())?;
        write_file(&trust_anchor_file, zones.trust_anchor())?;

        let cancel = CancellationToken::new();
        let dns = DnsServer::start(
            dns_ip.into(),
            opts.standard_ports.then_some(53),
            zones,
            opts.latency,
        )
        .await?;
        let dns_addr = dns.addr();
        let web_ports = if opts.standard_ports {
            web::WebPorts {
                http: Some(80),
                https: Some(443),
            }
        } else {
            web::WebPorts {
                http: None,
                https: None,
            }
        };
        let started = async {
            let web = web::start(&ca, now, ipv6, web_ports, opts.latency, &cancel).await?;
            let rdap = rdap::start(now, opts.latency, &cancel).await?;
            Ok::<_, StartError>((web, rdap))
        }
        .await;
        let (web, rdap) = match started {
            Ok(parts) => parts,
            Err(error) => {
                cancel.cancel();
                dns.shutdown().await;
                return Err(error);
            }
        };
        let mut tasks = web.tasks;
        tasks.push(rdap.task);
        tracing::info!(dns = %dns_addr, http = web.http_port, https = web.https_port, rdap = %rdap.base_url, "testnet ready");
        Ok(Testnet {
            dns: Some(dns),
            dns_addr,
            http_port: web.http_port,
            https_port: web.https_port,
            rdap_base_url: rdap.base_url,
            ca_file,
            trust_anchor_file,
            hosts,
            cancel,
            tasks,
        })
    }

    /// The `[engine]` settings that point Kepler at this testnet.
    pub fn engine_settings(&self) -> EngineSettings {
        EngineSettings {
            resolver: Some(self.dns_addr),
            extra_ca_file: Some(self.ca_file.clone()),
            trust_anchor_file: Some(self.trust_anchor_file.clone()),
            allow_private_targets: true,
            http_port: self.http_port,
            https_port: self.https_port,
            rdap_base_url: Some(self.rdap_base_url.clone()),
            ..EngineSettings::default()
        }
    }

    /// The same settings as an `[engine]` TOML table.
    pub fn engine_config_toml(&self) -> String {
        let settings = self.engine_settings();
        let string = |s: String| toml::Value::String(s).to_string();
        let path = |p: Option<PathBuf>| {
            string(
                p.map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            )
        };
        let mut out = String::from(
            "# Written by kepler-testnet: points kepler at the fixture network.\n[engine]\n",
        );
        let _ = writeln!(out, "resolver = {}", string(self.dns_addr.to_string()));
        let _ = writeln!(out, "extra_ca_file = {}", path(settings.extra_ca_file));
        let _ = writeln!(
            out,
            "trust_anchor_file = {}",
            path(settings.trust_anchor_file)
        );
        let _ = writeln!(
            out,
            "allow_private_targets = {}",
            settings.allow_private_targets
        );
        let _ = writeln!(out, "http_port = {}", settings.http_port);
        let _ = writeln!(out, "https_port = {}", settings.https_port);
        let _ = writeln!(
            out,
            "rdap_base_url = {}",
            string(self.rdap_base_url.clone())
        );
        let _ = writeln!(
            out,
            "probe_timeout = {}",
            string(kepler_core::duration::format(settings.probe_timeout))
        );
        out
    }

    /// `/etc/hosts`-style lines for every fixture name with an address.
    pub fn hosts_lines(&self) -> String {
        self.hosts.clone()
    }

    /// The DNS server (UDP and TCP).
    pub fn dns_addr(&self) -> SocketAddr {
        self.dns_addr
    }

    /// The port every fixture HTTP server listens on.
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The port every fixture HTTPS server listens on.
    pub fn https_port(&self) -> u16 {
        self.https_port
    }

    /// `http://127.0.0.1:<port>/rdap/`.
    pub fn rdap_base_url(&self) -> &str {
        &self.rdap_base_url
    }

    /// The CA certificate (PEM) every fixture certificate chains to.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The root zone's DNSKEY, the DNSSEC trust anchor.
    pub fn trust_anchor_file(&self) -> &Path {
        &self.trust_anchor_file
    }

    /// Stops every server and waits (briefly) for them to finish.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(dns) = self.dns.take() {
            dns.shutdown().await;
        }
        for task in std::mem::take(&mut self.tasks) {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        self.cancel.cancel();
        for task in &self.tasks {
            task.abort();
        }
    }
}
