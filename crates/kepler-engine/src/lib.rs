//! Kepler's scoring engine: concurrent network probes and the deterministic,
//! documented scoring model (docs/scoring.md). It knows nothing of HTTP
//! serving or SQL: give it settings and a domain, get a `ScoreRecord` back.
//!
//! Layout: `net` is the only code that touches the network; each area is a
//! module with a `probe` (evidence) and a pure `score` (evidence → category);
//! `model` holds the shared arithmetic; this file vets the target and runs
//! the areas side by side.

pub mod dns;
pub mod fetch;
pub mod hygiene;
pub mod mail;
pub mod model;
pub mod names;
pub mod net;
pub mod roots;
pub mod tls;
pub mod web;

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::FutureExt;
use kepler_core::config::EngineSettings;
use kepler_core::{Category, CategoryId, Domain, FailureReason, GradeCap, ScoreRecord};

use crate::mail::PolicySource;
use crate::net::{AddressLookup, Net, NetSetupError, vet};
use crate::roots::RootsError;

/// The scoring model's version; it changes whenever a probe or a point changes.
pub const ENGINE_VERSION: &str = "2026.11.1";

/// Why an engine cannot be built from its settings.
#[derive(Debug, thiserror::Error)]
pub enum EngineSetupError {
    #[error(transparent)]
    Roots(#[from] RootsError),
    #[error(transparent)]
    Net(#[from] NetSetupError),
    #[error("could not build the HTTP client: {0}")]
    Fetch(#[from] fetch::FetchError),
}

/// The scoring engine. Cheap to clone and share across tasks.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: EngineSettings,
    net: Arc<Net>,
    roots: Arc<rustls::RootCertStore>,
    fetcher: fetch::Fetcher,
}

impl Engine {
    /// Builds the engine: trust roots (webpki-roots plus `extra_ca_file`),
    /// the DNS resolvers and the DNSSEC trust anchor. Bad files are clear errors.
    pub fn new(settings: &EngineSettings) -> Result<Engine, EngineSetupError> {
        let roots = roots::root_store(settings.extra_ca_file.as_deref())?;
        let net = Arc::new(Net::new(settings)?);
        // Half the area budget per request, so an area that meets a silent
        // server still reports what it saw before its own limit.
        let fetcher = fetch::Fetcher::new(
            net.clone(),
            roots.clone(),
            settings.http_port,
            settings.https_port,
            settings.probe_timeout / 2,
        )?;
        Ok(Engine {
            inner: Arc::new(Inner {
                settings: settings.clone(),
                net,
                roots,
                fetcher,
            }),
        })
    }

    /// The settings the engine was built with.
    pub fn settings(&self) -> &EngineSettings {
        &self.inner.settings
    }

    /// The engine's network access, shared by every probe.
    pub fn net(&self) -> Arc<Net> {
        self.inner.net.clone()
    }

    /// The TLS trust roots every probe uses.
    pub fn roots(&self) -> Arc<rustls::RootCertStore> {
        self.inner.roots.clone()
    }

    /// Scores `domain`: vets its addresses, runs every area's probe at once,
    /// each within `probe_timeout`, and assembles the record.
    pub async fn score(&self, domain: &Domain) -> Result<ScoreRecord, FailureReason> {
        let net = &self.inner.net;
        let limit = self.inner.settings.probe_timeout;
        let apex = net.addresses(domain.as_str()).boxed().shared();

        // The DNS and email areas only ask DNS questions (and fetch the MTA-STS
        // policy through vetted addresses), so they start beside the apex
        // look-up; the areas that connect to the domain wait for its vetting.
        // A refused run drops them all.
        // Each area is boxed so that its state is freed when it finishes rather
        // than held inline until the slowest area is done (memory with many runs
        // in flight, issue 6).
        let dns_area = Box::pin(bounded(limit, CategoryId::Dns, async {
            dns::score(&dns::probe(net, domain, apex.clone()).await)
        }));
        let mail_area = Box::pin(bounded(limit, CategoryId::Email, async {
            let fetch_limit = limit.mul_f32(0.75);
            mail::score(&mail::probe(&**net, self.policy_source(), domain, fetch_limit).await)
        }));
        let vetted_areas = async {
            let found = apex.clone().await;
            let addrs = admit(&found, self.inner.settings.allow_private_targets).inspect_err(|reason| {
                tracing::info!(domain = %domain, reason = %reason, a = ?found.v4, aaaa = ?found.v6, "run refused");
            })?;
            Ok(self.web_areas(domain, &addrs).await)
        };
        let ((dns_category, mail_category), (mut categories, caps)) = futures::future::try_join(
            async { Ok(tokio::join!(dns_area, mail_area)) },
            vetted_areas,
        )
        .await?;

        categories.push(dns_category);
        categories.push(mail_category);
        categories.sort_by_key(|c| c.id);
        Ok(ScoreRecord::assemble(
            domain.as_str(),
            categories,
            caps,
            Utc::now(),
            ENGINE_VERSION,
        ))
    }

    /// Where the email area fetches the MTA-STS policy file over HTTPS.
    fn policy_source(&self) -> Option<&dyn PolicySource> {
        Some(&self.inner.fetcher)
    }

    /// The areas that talk HTTP and TLS to the vetted addresses: `tls`,
    /// `http_headers` and `hygiene`, side by side, each bounded like the others.
    async fn web_areas(&self, domain: &Domain, addrs: &[IpAddr]) -> (Vec<Category>, Vec<GradeCap>) {
        let settings = &self.inner.settings;
        let limit = settings.probe_timeout;
        let fetcher = &self.inner.fetcher;
        // Boxed for the reason given in `score`.
        let tls_area = Box::pin(async {
            match tokio::time::timeout(
                limit,
                tls::probe(domain, addrs, settings.https_port, self.roots(), limit),
            )
            .await
            {
                Ok(evidence) => tls::score(&evidence),
                Err(_) => (model::timed_out(CategoryId::Tls, limit), Vec::new()),
            }
        });
        let web_area = Box::pin(bounded(limit, CategoryId::HttpHeaders, async {
            web::score(&web::probe(fetcher, domain).await)
        }));
        let hygiene_area = Box::pin(bounded(limit, CategoryId::Hygiene, async {
            hygiene::score(
                &hygiene::probe(fetcher, domain, settings.rdap_base_url.as_deref()).await,
            )
        }));
        let ((tls_category, caps), web_category, hygiene_category) =
            tokio::join!(tls_area, web_area, hygiene_area);
        (vec![tls_category, web_category, hygiene_category], caps)
    }
}

impl fetch::AddressResolver for Net {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Vec<IpAddr>, fetch::FetchError>> {
        Box::pin(async move {
            self.resolve_vetted(host)
                .await
                .map_err(|error| match error {
                    net::ResolveError::AllRefused(_) => fetch::FetchError::Refused,
                    net::ResolveError::Timeout => fetch::FetchError::Timeout,
                    other => fetch::FetchError::Resolve(format!("{host}: {other}")),
                })
        })
    }
}

impl PolicySource for fetch::Fetcher {
    fn get<'a>(
        &'a self,
        url: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<mail::PolicyResponse, String>> {
        Box::pin(async move {
            let response = fetch::Fetcher::get(self, url)
                .await
                .map_err(|e| e.to_string())?;
            Ok(mail::PolicyResponse {
                status: response.status,
                content_type: response.header("content-type").map(str::to_owned),
                body: response.body,
            })
        })
    }
}

/// Runs one area's probe-and-score within `limit`; a probe that does not
/// finish yields the area's `error` category (no points, no score).
async fn bounded(
    limit: Duration,
    id: CategoryId,
    area: impl Future<Output = Category>,
) -> Category {
    match tokio::time::timeout(limit, area).await {
        Ok(category) => category,
        Err(_) => {
            tracing::info!(area = id.as_str(), ?limit, "probe timed out");
            model::timed_out(id, limit)
        }
    }
}

/// Decides from the apex A/AAAA answer whether the run may go on, and with
/// which addresses. A name that exists without addresses (a parked domain) is
/// scored with none; a name whose every address is private is refused.
fn admit(found: &AddressLookup, allow_private_targets: bool) -> Result<Vec<IpAddr>, FailureReason> {
    let all = found.addresses();
    if !all.is_empty() {
        let allowed: Vec<IpAddr> = all
            .into_iter()
            .filter(|ip| vet::allows(*ip, allow_private_targets))
            .collect();
        return if allowed.is_empty() {
            Err(FailureReason::PrivateAddressRefused)
        } else {
            Ok(allowed)
        };
    }
    if found.is_nxdomain() {
        return Err(FailureReason::DomainNotResolvable);
    }
    let exists = |r: &Result<Vec<IpAddr>, net::LookupError>| {
        matches!(r, Ok(_) | Err(net::LookupError::NoRecords))
    };
    if exists(&found.v4) || exists(&found.v6) {
        return Ok(Vec::new());
    }
    // Neither family answered (SERVFAIL, timeouts): the name cannot be resolved.
    Err(FailureReason::DomainNotResolvable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::LookupError;

    fn ips(list: &[&str]) -> Result<Vec<IpAddr>, LookupError> {
        Ok(list
            .iter()
            .map(|s| s.parse().expect("test address"))
            .collect())
    }

    fn check(
        v4: Result<Vec<IpAddr>, LookupError>,
        v6: Result<Vec<IpAddr>, LookupError>,
        private_ok: bool,
        expected: Result<usize, FailureReason>,
    ) {
        let found = AddressLookup { v4, v6 };
        assert_eq!(
            admit(&found, private_ok).map(|a| a.len()),
            expected,
            "{found:?} private_ok={private_ok}"
        );
    }

    #[test]
    fn admission_of_a_run() {
        use FailureReason::{DomainNotResolvable, PrivateAddressRefused};
        use LookupError::{Failed, NoRecords, NxDomain, Timeout};
        check(ips(&["93.184.216.34"]), Err(NoRecords), false, Ok(1));
        check(
            ips(&["127.0.0.1"]),
            ips(&["::1"]),
            false,
            Err(PrivateAddressRefused),
        );
        check(ips(&["127.0.0.1"]), ips(&["::1"]), true, Ok(2));
        check(
            ips(&["10.0.0.1", "93.184.216.34"]),
            Err(NoRecords),
            false,
            Ok(1),
        );
        check(
            ips(&["192.0.2.1"]),
            Err(NoRecords),
            true,
            Err(PrivateAddressRefused),
        );
        check(
            Err(NxDomain),
            Err(NxDomain),
            false,
            Err(DomainNotResolvable),
        );
        check(Err(NxDomain), Err(Timeout), false, Err(DomainNotResolvable));
        check(Err(NoRecords), Err(NoRecords), false, Ok(0));
        check(Err(NoRecords), Err(Timeout), false, Ok(0));
        check(
            Err(Timeout),
            Err(Failed("SERVFAIL".into())),
            false,
            Err(DomainNotResolvable),
        );
    }

    #[test]
    fn engine_setup_errors_are_clear() {
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = EngineSettings {
            resolver: Some("127.0.0.1:53".parse().expect("addr")),
            extra_ca_file: Some(dir.path().join("nope.pem")),
            ..EngineSettings::default()
        };
        let err = Engine::new(&settings).expect_err("missing CA file");
        assert!(err.to_string().contains("nope.pem"), "{err}");

        let anchor = dir.path().join("root.key");
        std::fs::write(&anchor, "this is not a DNSKEY\n").expect("write");
        let settings = EngineSettings {
            resolver: Some("127.0.0.1:53".parse().expect("addr")),
            trust_anchor_file: Some(anchor.clone()),
            ..EngineSettings::default()
        };
        let err = Engine::new(&settings).expect_err("bad anchor");
        assert!(
            matches!(
                err,
                EngineSetupError::Net(
                    NetSetupError::TrustAnchorParse { .. } | NetSetupError::TrustAnchorEmpty { .. }
                )
            ),
            "{err}"
        );
        assert!(err.to_string().contains("root.key"), "{err}");

        let missing = EngineSettings {
            resolver: Some("127.0.0.1:53".parse().expect("addr")),
            trust_anchor_file: Some(dir.path().join("absent.key")),
            ..EngineSettings::default()
        };
        assert!(matches!(
            Engine::new(&missing),
            Err(EngineSetupError::Net(NetSetupError::TrustAnchorRead { .. }))
        ));
    }

    #[test]
    fn an_engine_can_be_built_outside_a_runtime() {
        let settings = EngineSettings {
            resolver: Some("127.0.0.1:9".parse().expect("addr")),
            ..EngineSettings::default()
        };
        assert!(Engine::new(&settings).is_ok());
    }

    #[test]
    fn the_engine_is_shareable_and_its_run_is_send() {
        fn shareable<T: Send + Sync + Clone + 'static>() {}
        shareable::<Engine>();
        fn send<F: Future + Send>(_: F) {}
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let _guard = rt.enter();
        let settings = EngineSettings {
            resolver: Some("127.0.0.1:9".parse().expect("addr")),
            ..EngineSettings::default()
        };
        let engine = Engine::new(&settings).expect("engine");
        let domain = Domain::parse("example.test").expect("domain");
        send(engine.score(&domain));
    }
}
