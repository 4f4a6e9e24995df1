//! [`ClientBuilder`]: base URL, key, timeouts, polling, retries and TLS trust.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::HeaderValue;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::client::{Client, Inner, ProgressFn};
use crate::error::BuildError;
use crate::retry::RetryPolicy;
use crate::types::JobProgress;

/// Sets up a [`Client`]. Every setting has a default; only the base URL and the
/// key are required.
///
/// ```
/// use std::time::Duration;
/// use kepler_client::Client;
///
/// let client = Client::builder("https://kepler.example", "ki_live_…")
///     .timeout(Duration::from_secs(20))
///     .poll_interval(Duration::from_secs(2))
///     .give_up_after(Duration::from_secs(300))
///     .user_agent("acme-onboarding/1.4")
///     .build()?;
/// # Ok::<(), kepler_client::BuildError>(())
/// ```
pub struct ClientBuilder {
    base_url: String,
    api_key: String,
    timeout: Duration,
    connect_timeout: Duration,
    poll_interval: Duration,
    give_up_after: Duration,
    retry: RetryPolicy,
    extra_roots_pem: Vec<Vec<u8>>,
    builtin_roots: bool,
    user_agent: String,
    use_proxy: bool,
    on_progress: Option<ProgressFn>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key stays out of logs.
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("poll_interval", &self.poll_interval)
            .field("give_up_after", &self.give_up_after)
            .field("retry", &self.retry)
            .field("extra_roots", &self.extra_roots_pem.len())
            .field("builtin_roots", &self.builtin_roots)
            .field("user_agent", &self.user_agent)
            .field("use_proxy", &self.use_proxy)
            .field("on_progress", &self.on_progress.is_some())
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    pub(crate) fn new(base_url: &str, api_key: &str) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.to_owned(),
            api_key: api_key.to_owned(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_secs(5),
            give_up_after: Duration::from_secs(180),
            retry: RetryPolicy::default(),
            extra_roots_pem: Vec::new(),
            builtin_roots: true,
            user_agent: concat!("kepler-client-rust/", env!("CARGO_PKG_VERSION")).to_owned(),
            use_proxy: true,
            on_progress: None,
        }
    }

    /// The limit on one HTTP request, body included (default 30 s).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let builder = kepler_client::Client::builder("https://kepler.example", "ki_live_…").timeout(Duration::from_secs(10));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.timeout = timeout;
        self
    }

    /// The limit on opening a connection (default 10 s).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let builder = kepler_client::Client::builder("https://kepler.example", "ki_live_…").connect_timeout(Duration::from_secs(3));
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.connect_timeout = timeout;
        self
    }

    /// The pause between polls of a cold run when the API sends no `Retry-After`
    /// (default 5 s). A `Retry-After` from the API always wins: it is the server
    /// saying when the answer can have changed.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let builder = kepler_client::Client::builder("https://kepler.example", "ki_live_…").poll_interval(Duration::from_secs(2));
    /// ```
    pub fn poll_interval(mut self, interval: Duration) -> ClientBuilder {
        self.poll_interval = interval;
        self
    }

    /// How long to wait for a cold run before returning [`Error::Timeout`](crate::Error::Timeout)
    /// (default 180 s, the server's own `job_timeout`).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let builder = kepler_client::Client::builder("https://kepler.example", "ki_live_…").give_up_after(Duration::from_secs(600));
    /// ```
    pub fn give_up_after(mut self, limit: Duration) -> ClientBuilder {
        self.give_up_after = limit;
        self
    }

    /// How transient failures are retried (default [`RetryPolicy::default`]).
    ///
    /// ```
    /// use kepler_client::{Client, RetryPolicy};
    ///
    /// let builder = Client::builder("https://kepler.example", "ki_live_…").retry(RetryPolicy::none());
    /// ```
    pub fn retry(mut self, policy: RetryPolicy) -> ClientBuilder {
        self.retry = policy;
        self
    }

    /// Also trusts the CA certificates in this PEM text (a private deployment's
    /// CA, say). It is read when the client is built.
    ///
    /// ```no_run
    /// let pem = std::fs::read("internal-ca.pem")?;
    /// let client = kepler_client::Client::builder("https://kepler.internal", "ki_live_…")
    ///     .add_root_certificate_pem(&pem)
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_root_certificate_pem(mut self, pem: &[u8]) -> ClientBuilder {
        self.extra_roots_pem.push(pem.to_vec());
        self
    }

    /// Whether to trust the bundled Mozilla root store (default `true`). Turn it
    /// off to trust only the certificates added with
    /// [`add_root_certificate_pem`](ClientBuilder::add_root_certificate_pem).
    ///
    /// ```no_run
    /// let pem = std::fs::read("internal-ca.pem")?;
    /// let client = kepler_client::Client::builder("https://kepler.internal", "ki_live_…")
    ///     .builtin_roots(false)
    ///     .add_root_certificate_pem(&pem)
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builtin_roots(mut self, enabled: bool) -> ClientBuilder {
        self.builtin_roots = enabled;
        self
    }

    /// The `User-Agent` to send (default `kepler-client-rust/<version>`).
    ///
    /// ```
    /// let builder = kepler_client::Client::builder("https://kepler.example", "ki_live_…").user_agent("acme/2.0");
    /// ```
    pub fn user_agent(mut self, user_agent: &str) -> ClientBuilder {
        self.user_agent = user_agent.to_owned();
        self
    }

    /// Ignores the `HTTP_PROXY`/`HTTPS_PROXY` environment variables, which are
    /// otherwise honoured.
    ///
    /// ```
    /// let builder = kepler_client::Client::builder("http://127.0.0.1:8080", "ki_test_…").no_proxy();
    /// ```
    pub fn no_proxy(mut self) -> ClientBuilder {
        self.use_proxy = false;
        self
    }

    /// Called after every look at a cold run (the `202`, then each poll), so a
    /// caller can show progress.
    ///
    /// ```
    /// use kepler_client::{Client, JobProgress};
    ///
    /// let client = Client::builder("http://127.0.0.1:8080", "ki_live_…")
    ///     .on_progress(|p: &JobProgress| eprintln!("{} is {:?} after {:?}", p.domain, p.status, p.elapsed))
    ///     .build()?;
    /// # Ok::<(), kepler_client::BuildError>(())
    /// ```
    pub fn on_progress(
        mut self,
        callback: impl Fn(&JobProgress) + Send + Sync + 'static,
    ) -> ClientBuilder {
        self.on_progress = Some(Arc::new(callback));
        self
    }

    /// Checks the settings and builds the client.
    ///
    /// ```
    /// let client = kepler_client::Client::builder("http://127.0.0.1:8080", "ki_test_…").build()?;
    /// # Ok::<(), kepler_client::BuildError>(())
    /// ```
    pub fn build(self) -> Result<Client, BuildError> {
        let base = parse_base(&self.base_url)?;
        let mut api_key = HeaderValue::from_str(self.api_key.trim())
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or(BuildError::InvalidApiKey)?;
        api_key.set_sensitive(true);
        let user_agent =
            HeaderValue::from_str(&self.user_agent).map_err(|_| BuildError::InvalidUserAgent)?;
        let tls = self.tls_config()?;
        let mut http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .user_agent(user_agent)
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout);
        if !self.use_proxy {
            http = http.no_proxy();
        }
        let http = http.build().map_err(|source| BuildError::Http { source })?;
        Ok(Client::from_inner(Inner {
            http,
            base,
            api_key,
            poll_interval: self.poll_interval,
            give_up_after: self.give_up_after,
            retry: self.retry,
            on_progress: self.on_progress,
        }))
    }

    fn tls_config(&self) -> Result<rustls::ClientConfig, BuildError> {
        let mut roots = rustls::RootCertStore::empty();
        if self.builtin_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for pem in &self.extra_roots_pem {
            let certs = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|source| BuildError::InvalidCertificate { source })?;
            if certs.is_empty() {
                return Err(BuildError::NoCertificate);
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|source| BuildError::Tls { source })?;
            }
        }
        // The workspace builds reqwest without a default crypto provider; ring is ours.
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|source| BuildError::Tls { source })?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(config)
    }
}

fn parse_base(text: &str) -> Result<Url, BuildError> {
    let url = Url::parse(text.trim()).map_err(|source| BuildError::InvalidBaseUrl {
        url: text.to_owned(),
        source,
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(BuildError::UnsupportedScheme {
            url: text.to_owned(),
        });
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_must_be_http_or_https() {
        assert!(parse_base("http://127.0.0.1:8080").is_ok());
        assert!(parse_base("https://kepler.example/api/").is_ok());
        assert!(matches!(
            parse_base("kepler.example"),
            Err(BuildError::InvalidBaseUrl { .. })
        ));
        assert!(matches!(
            parse_base("mailto:ops@kepler.example"),
            Err(BuildError::UnsupportedScheme { .. })
        ));
    }

    #[test]
    fn bad_keys_and_certificates_are_build_errors() {
        let builder = || ClientBuilder::new("http://127.0.0.1:1", "ki_test_x");
        assert!(matches!(
            ClientBuilder::new("http://127.0.0.1:1", " ").build(),
            Err(BuildError::InvalidApiKey)
        ));
        assert!(matches!(
            ClientBuilder::new("http://127.0.0.1:1", "ki_live_\nx").build(),
            Err(BuildError::InvalidApiKey)
        ));
        assert!(matches!(
            builder().add_root_certificate_pem(b"not a pem").build(),
            Err(BuildError::NoCertificate)
        ));
        let broken = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            builder().add_root_certificate_pem(broken).build(),
            Err(BuildError::InvalidCertificate { .. })
        ));
    }
}
