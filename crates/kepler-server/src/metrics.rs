//! Prometheus metrics, one registry per server (no process-global recorder, so
//! several servers can live in one test process).

use std::borrow::Cow;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    // Borrowed from the route table and the standard methods, so counting a
    // request allocates nothing (an owned copy only for a label not seen yet).
    pub route: Cow<'static, str>,
    pub method: Cow<'static, str>,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: Cow<'static, str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: String,
}

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    pub requests: Family<RequestLabels, Counter>,
    pub request_seconds: Family<OutcomeLabels, Histogram>,
    /// Admission outcomes: `admitted`, `cached`, `existing_job`, `sandbox`, or the refusing error code.
    pub admissions: Family<OutcomeLabels, Counter>,
    /// Jobs in flight in the shared store (`pending`, `running`), read at scrape time.
    pub jobs: Family<StateLabels, Gauge>,
    pub oldest_pending_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Engine runs by outcome (`complete`, a failure reason, `lease_lost`, `released`).
    pub runs: Family<OutcomeLabels, Counter>,
    pub run_seconds: Family<OutcomeLabels, Histogram>,
    pub runs_in_flight: Gauge,
    /// Runs this process claimed from a worker whose lease had expired.
    pub lease_expiries: Counter,
    /// Store calls that found the store unavailable, by `api` (a 503 answered) or `worker`.
    pub store_unavailable: Family<SourceLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("kepler");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        let request_seconds = Family::<OutcomeLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            request_seconds.clone(),
        );
        let admissions = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "admissions",
            "POST /v1/score decisions by outcome or error code",
            admissions.clone(),
        );
        let jobs = Family::<StateLabels, Gauge>::default();
        registry.register(
            "jobs",
            "Jobs in flight in the shared store, by state (pending, running)",
            jobs.clone(),
        );
        let oldest_pending_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "oldest_pending_job_age_seconds",
            "Age of the oldest pending job",
            oldest_pending_seconds.clone(),
        );
        let runs = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "engine_runs",
            "Engine runs finished by this process, by outcome",
            runs.clone(),
        );
        let run_seconds = Family::<OutcomeLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.05, 2.0, 14))
        });
        registry.register(
            "engine_run_duration_seconds",
            "Engine run wall time by outcome",
            run_seconds.clone(),
        );
        let runs_in_flight = Gauge::default();
        registry.register(
            "engine_runs_in_flight",
            "Engine runs in flight in this process",
            runs_in_flight.clone(),
        );
        let lease_expiries = Counter::default();
        registry.register(
            "lease_expiries",
            "Runs this process reclaimed after their worker's lease expired",
            lease_expiries.clone(),
        );
        let store_unavailable = Family::<SourceLabels, Counter>::default();
        registry.register(
            "store_unavailable",
            "Store calls that found the store unavailable, by source (api, worker)",
            store_unavailable.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            requests,
            request_seconds,
            admissions,
            jobs,
            oldest_pending_seconds,
            runs,
            run_seconds,
            runs_in_flight,
            lease_expiries,
            store_unavailable,
        }
    }

    /// Counts a store outage seen by `source` (`api` or `worker`).
    pub fn store_unavailable(&self, source: &str) {
        self.store_unavailable
            .get_or_create(&SourceLabels {
                source: source.to_owned(),
            })
            .inc();
    }

    pub fn admission(&self, outcome: &'static str) {
        self.admissions
            .get_or_create(&OutcomeLabels {
                outcome: Cow::Borrowed(outcome),
            })
            .inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        let registry = self
            .registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if prometheus_client::encoding::text::encode(&mut text, &registry).is_err() {
            text.clear();
        }
        text
    }
}
