//! The only way the engine touches the network: DNS look-ups through one
//! non-validating resolver, DNSSEC status through a second, validating one, and
//! TCP connections to addresses that passed the vetting rule.

mod dnssec;
mod records;
mod resolver;
pub mod vet;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use kepler_core::config::EngineSettings;
use tokio::net::TcpStream;

pub use dnssec::DnssecStatus;
/// Record types, for `Net::dnssec_status`.
pub use hickory_resolver::proto::rr::RecordType;
pub use records::{CaaRecord, MxRecord, SoaRecord};
pub use resolver::NetSetupError;

/// Why a DNS look-up returned no data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The name does not exist.
    #[error("the name does not exist (NXDOMAIN)")]
    NxDomain,
    /// The name exists but has no records of the asked type (NODATA).
    #[error("no records of that type (NODATA)")]
    NoRecords,
    /// No answer in time.
    #[error("the DNS query timed out")]
    Timeout,
    /// Any other failure (SERVFAIL, REFUSED, malformed answer, ...).
    #[error("the DNS query failed: {0}")]
    Failed(String),
}

impl LookupError {
    /// NXDOMAIN or NODATA: a "void lookup" in RFC 7208's words.
    pub fn is_void(&self) -> bool {
        matches!(self, LookupError::NxDomain | LookupError::NoRecords)
    }
}

/// Why a host gave no address the engine may connect to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("the name does not exist (NXDOMAIN)")]
    NxDomain,
    #[error("the name has no A or AAAA records")]
    NoAddresses,
    #[error("every address of the name is private or reserved: {}", join(.0))]
    AllRefused(Vec<IpAddr>),
    #[error("the DNS query timed out")]
    Timeout,
    #[error("the DNS query failed: {0}")]
    Failed(String),
}

/// Why a connection was not made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connections to {0} are not allowed (private or reserved address)")]
    Refused(IpAddr),
    #[error("connecting to {0} timed out")]
    Timeout(std::net::SocketAddr),
    #[error("connecting to {addr} failed: {source}")]
    Io {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

fn join(addrs: &[IpAddr]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The A and AAAA answers of one name, looked up concurrently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressLookup {
    pub v4: Result<Vec<IpAddr>, LookupError>,
    pub v6: Result<Vec<IpAddr>, LookupError>,
}

impl AddressLookup {
    /// Every address found, IPv4 first.
    pub fn addresses(&self) -> Vec<IpAddr> {
        let mut all = self.v4.clone().unwrap_or_default();
        all.extend(self.v6.clone().unwrap_or_default());
        all
    }

    /// Both families answered NXDOMAIN (a name either exists or it does not,
    /// so one NXDOMAIN is enough unless the other family found addresses).
    pub fn is_nxdomain(&self) -> bool {
        let nx = |r: &Result<Vec<IpAddr>, LookupError>| matches!(r, Err(LookupError::NxDomain));
        (nx(&self.v4) && !matches!(self.v6, Ok(ref a) if !a.is_empty()))
            || (nx(&self.v6) && !matches!(self.v4, Ok(ref a) if !a.is_empty()))
    }

    /// The failure to report when no address came back, NXDOMAIN first,
    /// then a transport failure, then NODATA.
    fn failure(&self) -> ResolveError {
        if self.is_nxdomain() {
            return ResolveError::NxDomain;
        }
        for r in [&self.v4, &self.v6] {
            match r {
                Err(LookupError::Timeout) => return ResolveError::Timeout,
                Err(LookupError::Failed(m)) => return ResolveError::Failed(m.clone()),
                _ => {}
            }
        }
        ResolveError::NoAddresses
    }
}

/// The engine's network access. Cheap to share behind an `Arc`.
#[derive(Clone)]
pub struct Net {
    resolver: TokioResolver,
    validating: TokioResolver,
    /// Builds a second validating resolver, caches and all, to ask again.
    validating_recipe: Arc<resolver::ValidatingRecipe>,
    allow_private_targets: bool,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net")
            .field("allow_private_targets", &self.allow_private_targets)
            .finish_non_exhaustive()
    }
}

impl Net {
    /// Builds both resolvers from the `[engine]` settings (reads the trust anchor file).
    pub fn new(settings: &EngineSettings) -> Result<Net, NetSetupError> {
        let (resolver, validating_recipe) = resolver::build(settings)?;
        Ok(Net {
            resolver,
            validating: validating_recipe.build()?,
            validating_recipe: Arc::new(validating_recipe),
            allow_private_targets: settings.allow_private_targets,
        })
    }

    /// Whether `ip` may be connected to under this engine's settings.
    pub fn allows(&self, ip: IpAddr) -> bool {
        vet::allows(ip, self.allow_private_targets)
    }

    /// A and AAAA of `host`, concurrently.
    pub async fn addresses(&self, host: &str) -> AddressLookup {
        let (v4, v6) = tokio::join!(self.a(host), self.aaaa(host));
        AddressLookup { v4, v6 }
    }

    /// The addresses of `host` the engine may connect to. Callers connect to
    /// exactly these, never re-resolving, so the check holds for the address used.
    pub async fn resolve_vetted(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        let found = self.addresses(host).await;
        Self::vet_lookup(&found, self.allow_private_targets)
    }

    /// The vetting decision over one A/AAAA look-up.
    pub fn vet_lookup(
        found: &AddressLookup,
        allow_private_targets: bool,
    ) -> Result<Vec<IpAddr>, ResolveError> {
        let all = found.addresses();
        if all.is_empty() {
            return Err(found.failure());
        }
        let allowed: Vec<IpAddr> = all
            .iter()
            .copied()
            .filter(|ip| vet::allows(*ip, allow_private_targets))
            .collect();
        if allowed.is_empty() {
            Err(ResolveError::AllRefused(all))
        } else {
            Ok(allowed)
        }
    }

    /// Connects to `addr:port`, vetting the address again first (defence in depth).
    pub async fn connect(
        &self,
        addr: IpAddr,
        port: u16,
        timeout: Duration,
    ) -> Result<TcpStream, ConnectError> {
        if !self.allows(addr) {
            return Err(ConnectError::Refused(addr));
        }
        let target = std::net::SocketAddr::new(addr, port);
        match tokio::time::timeout(timeout, TcpStream::connect(target)).await {
            Err(_) => Err(ConnectError::Timeout(target)),
            Ok(Err(source)) => Err(ConnectError::Io {
                addr: target,
                source,
            }),
            Ok(Ok(stream)) => Ok(stream),
        }
    }

    /// The DNSSEC validation status of `name`'s records of type `rtype`, read
    /// from the validating resolver.
    pub async fn dnssec_status(
        &self,
        name: &str,
        rtype: hickory_resolver::proto::rr::RecordType,
    ) -> DnssecStatus {
        dnssec::status(&self.validating, &self.validating_recipe, name, rtype).await
    }
}
