//! Building the two hickory resolvers from `[engine]`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::dnssec::TrustAnchors;
use hickory_resolver::{Resolver, TokioResolver};
use kepler_core::config::EngineSettings;

/// Why the resolvers could not be built.
#[derive(Debug, thiserror::Error)]
pub enum NetSetupError {
    #[error("cannot read the DNSSEC trust anchor file {path}: {source}")]
    TrustAnchorRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the DNSSEC trust anchor file {path} is not DNSKEY records in zone-file format: {reason}"
    )]
    TrustAnchorParse { path: PathBuf, reason: String },
    #[error("the DNSSEC trust anchor file {path} holds no root (\".\") DNSKEY record")]
    TrustAnchorEmpty { path: PathBuf },
    #[error("cannot read the system resolver configuration: {0}")]
    SystemResolver(String),
    #[error("cannot build the DNS resolver: {0}")]
    Build(String),
}

/// Options shared by both resolvers.
fn options(settings: &EngineSettings) -> ResolverOpts {
    let mut opts = ResolverOpts::default();
    // One query's limit, a fraction of the probe's own so a lost packet is retried
    // and the probe still reports what it found.
    opts.timeout =
        (settings.probe_timeout / 4).clamp(Duration::from_millis(300), Duration::from_secs(5));
    opts.attempts = 2;
    opts.ndots = 0;
    opts.edns0 = true;
    opts.try_tcp_on_error = true;
    // A run wants today's records, not yesterday's: cache only briefly, so one
    // run's repeated questions are answered once but a fixed record shows soon.
    opts.positive_max_ttl = Some(Duration::from_secs(60));
    opts.negative_max_ttl = Some(Duration::from_secs(30));
    if settings.resolver.is_some() {
        // A configured server is the single source of truth (test networks).
        opts.use_hosts_file = ResolveHosts::Never;
    }
    opts
}

fn config(settings: &EngineSettings) -> Result<Option<ResolverConfig>, NetSetupError> {
    let Some(addr) = settings.resolver else {
        return Ok(None);
    };
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = addr.port();
    let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
    Ok(Some(ResolverConfig::from_name_servers(vec![server])))
}

/// One resolver: the configured server (or the system's), the options, and
/// for a validating one its trust anchors.
fn resolver(
    config: Option<ResolverConfig>,
    options: ResolverOpts,
    anchors: Option<Arc<TrustAnchors>>,
) -> Result<TokioResolver, NetSetupError> {
    let mut builder = match config {
        Some(c) => Resolver::builder_with_config(c, TokioRuntimeProvider::default()),
        None => TokioResolver::builder_tokio()
            .map_err(|e| NetSetupError::SystemResolver(e.to_string()))?,
    };
    *builder.options_mut() = options;
    if let Some(anchors) = anchors {
        builder = builder.with_trust_anchor(anchors);
    }
    builder
        .build()
        .map_err(|e| NetSetupError::Build(e.to_string()))
}

/// Loads the trust anchor file, or the root zone's own anchors when absent.
pub(crate) fn trust_anchors(settings: &EngineSettings) -> Result<TrustAnchors, NetSetupError> {
    let Some(path) = &settings.trust_anchor_file else {
        return Ok(TrustAnchors::default());
    };
    let text = std::fs::read_to_string(path).map_err(|source| NetSetupError::TrustAnchorRead {
        path: path.clone(),
        source,
    })?;
    let anchors: TrustAnchors =
        text.parse()
            .map_err(|e: hickory_resolver::proto::serialize::txt::ParseError| {
                NetSetupError::TrustAnchorParse {
                    path: path.clone(),
                    reason: e.to_string(),
                }
            })?;
    if anchors.is_empty() {
        return Err(NetSetupError::TrustAnchorEmpty { path: path.clone() });
    }
    Ok(anchors)
}

/// What a validating resolver is built from, kept so that a second one, with
/// caches of its own, can be built when an answer comes back bogus (see
/// `dnssec::status`).
pub(crate) struct ValidatingRecipe {
    config: Option<ResolverConfig>,
    options: ResolverOpts,
    anchors: Arc<TrustAnchors>,
}

impl ValidatingRecipe {
    pub(crate) fn build(&self) -> Result<TokioResolver, NetSetupError> {
        resolver(
            self.config.clone(),
            self.options.clone(),
            Some(self.anchors.clone()),
        )
    }
}

/// Builds the non-validating resolver and the recipe of the validating one.
pub(crate) fn build(
    settings: &EngineSettings,
) -> Result<(TokioResolver, ValidatingRecipe), NetSetupError> {
    let anchors = Arc::new(trust_anchors(settings)?);
    let config = config(settings)?;
    let plain = resolver(config.clone(), options(settings), None)?;
    let mut validating = options(settings);
    validating.validate = true;
    let recipe = ValidatingRecipe {
        config,
        options: validating,
        anchors,
    };
    Ok((plain, recipe))
}
