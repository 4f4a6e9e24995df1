//! The Kepler API from Rust: [`Client::score`] returns a domain's score record
//! whether the API answers at once or queues a cold run; in that case the client
//! polls the job (honouring `Retry-After`), then fetches the record.
//!
//! ```no_run
//! use kepler_client::{Client, Error};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::new("https://kepler.example", &std::env::var("KEPLER_API_KEY")?)?;
//! match client.score("example.com").await {
//!     Ok(record) => println!("{} scores {} ({})", record.domain, record.score, record.grade),
//!     Err(limit) if limit.is_limit() => eprintln!("{limit}; retry in {:?}", limit.retry_after()),
//!     Err(other) => return Err(other.into()),
//! }
//! # Ok(()) }
//! ```
//!
//! Errors are typed: one [`Error`] variant per stable error code of the API
//! (with `retry_after`, `limit`, `used` and `resets_at` on the cold-call limits),
//! [`Error::JobFailed`] with the run's `failure_reason`, [`Error::Timeout`], and
//! transport errors. Connection failures and `503`s are retried with backoff
//! ([`RetryPolicy`]); other answers never are. Every `POST` carries an
//! `Idempotency-Key`, so a retried request is never charged twice.
//!
//! TLS is rustls with the bundled Mozilla roots; a private CA can be added with
//! [`ClientBuilder::add_root_certificate_pem`].

#![deny(missing_docs)]

mod builder;
mod client;
mod error;
mod http;
mod retry;
mod types;

pub use builder::ClientBuilder;
pub use client::Client;
pub use error::{BuildError, Error, Problem};
pub use retry::RetryPolicy;
pub use types::{
    Job, JobAccepted, JobProgress, MonthUsage, ResultRef, ScoreOptions, StoredRecord, Submitted,
    Usage, WindowUsage,
};

/// The score record and its parts, as the API serves them (shared with the server).
pub use kepler_core::{Category, CategoryId, Check, CheckStatus, GradeCap, JobStatus, ScoreRecord};
/// HTTP status codes, as [`Problem::status`] carries them.
pub use reqwest::StatusCode;
/// Job ids.
pub use uuid::Uuid;
