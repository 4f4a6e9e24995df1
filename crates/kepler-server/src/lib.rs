//! Kepler's HTTP API and in-process workers.
//!
//! The caller owns the listener and the shutdown signal ([`serve`]), so tests run
//! the real server on `127.0.0.1:0`. Handlers never touch SQL: they call the
//! [`kepler_store::Store`] interface, whose admission decision is the pure
//! function of `kepler_core::admission`.

use std::future::Future;
use std::sync::Arc;

use kepler_core::config::Config;
use kepler_core::{Tier, TierPolicy};
use kepler_store::Store;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub mod error;
pub mod metrics;
pub mod sandbox;
pub mod scorer;
pub mod worker;

mod auth;
mod encoding;
mod http;
mod idempotency;
mod openapi;
mod ratelimit;
mod routes;

pub use openapi::openapi_json;
pub use scorer::Scorer;

use error::{ApiError, store_unavailable};
use metrics::Metrics;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    /// Wakes in-process workers as soon as a job is admitted.
    pub work_available: Arc<Notify>,
    /// One request at a time per (account, Idempotency-Key).
    pub(crate) idempotency_locks: Arc<idempotency::KeyLocks>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, config: Config) -> AppState {
        AppState {
            store,
            config: Arc::new(config),
            metrics: Arc::new(Metrics::new()),
            work_available: Arc::new(Notify::new()),
            idempotency_locks: Arc::new(idempotency::KeyLocks::default()),
        }
    }

    /// The effective limits of a tier.
    pub fn policy(&self, tier: Tier) -> TierPolicy {
        self.config.tiers.policy(tier)
    }

    /// Runs a store call within `server.store_timeout`, so a stuck store answers
    /// 503 `store_unavailable` promptly instead of hanging the request.
    pub async fn store_call<T>(
        &self,
        call: impl Future<Output = kepler_store::Result<T>>,
    ) -> Result<T, ApiError> {
        match tokio::time::timeout(self.config.server.store_timeout, call).await {
            Ok(result) => result.map_err(ApiError::from),
            Err(_) => Err(store_unavailable()),
        }
    }
}

/// Serves only `/healthz`, `/readyz` and `/metrics` on `listener` until
/// `shutdown`: how a `kepler worker` process, which has no API, is watched.
pub async fn serve_ops(
    state: AppState,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, http::ops_router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// Serves the API on `listener` (and runs workers when `scorer` is given and
/// workers are enabled) until `shutdown` is cancelled; then stops accepting,
/// lets in-flight requests finish, and lets in-flight runs finish or hands them back.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    scorer: Option<Arc<dyn Scorer>>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let workers = match scorer {
        Some(scorer) if state.config.workers.enabled => Some(tokio::spawn(worker::run_pool(
            state.clone(),
            scorer,
            shutdown.clone(),
        ))),
        _ => None,
    };
    let app = axum::ServiceExt::<axum::extract::Request>::into_make_service(http::app(state));
    let server_shutdown = shutdown.clone();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move { server_shutdown.cancelled().await })
        .await;
    if let Some(workers) = workers {
        // The pool watches the same token; wait for it to settle or hand back its runs.
        let _ = workers.await;
    }
    result
}
