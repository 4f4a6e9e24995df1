//! Kepler's pure core: the vocabulary every other crate shares, and the decisions
//! that must be exact (domain syntax, tier limits, admission). No I/O lives here.

pub mod admission;
pub mod config;
pub mod domain;
pub mod duration;
pub mod job;
pub mod record;
pub mod tier;

pub use domain::{Domain, DomainError};
pub use job::{FailureReason, JobStatus};
pub use record::{Category, CategoryId, Check, CheckStatus, GradeCap, ScoreRecord};
pub use tier::{Tier, TierPolicy, TierTable};
