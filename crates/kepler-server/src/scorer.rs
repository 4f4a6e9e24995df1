//! The seam between workers and the engine: the shipped binary plugs in the real
//! `kepler_engine::Engine`; the server's own tests may plug in a scripted one.

use futures::future::BoxFuture;
use kepler_core::{Domain, FailureReason, ScoreRecord};

/// Something that scores a domain.
pub trait Scorer: Send + Sync + std::fmt::Debug + 'static {
    fn score<'a>(&'a self, domain: &'a Domain)
    -> BoxFuture<'a, Result<ScoreRecord, FailureReason>>;
}

impl Scorer for kepler_engine::Engine {
    fn score<'a>(
        &'a self,
        domain: &'a Domain,
    ) -> BoxFuture<'a, Result<ScoreRecord, FailureReason>> {
        Box::pin(kepler_engine::Engine::score(self, domain))
    }
}
