//! Cold-run jobs: their states and the stable reasons a run fails.

use serde::{Deserialize, Serialize};

/// Where a job is in its life: `pending → running → complete | failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Pending,
    Running,
    Complete,
    Failed,
}

impl JobStatus {
    /// The status as the API and the store spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Complete => "complete",
            JobStatus::Failed => "failed",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(text: &str) -> Option<JobStatus> {
        [
            JobStatus::Pending,
            JobStatus::Running,
            JobStatus::Complete,
            JobStatus::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Whether the job has settled.
    pub fn is_settled(self) -> bool {
        matches!(self, JobStatus::Complete | JobStatus::Failed)
    }
}

/// Why a run failed: a stable code users can branch on.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    thiserror::Error,
)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// The run did not settle within `job_timeout`.
    #[error("timeout")]
    Timeout,
    /// The name does not exist (NXDOMAIN) or no DNS server answered for it.
    /// A name that exists without addresses (a parked domain) is scored, not failed.
    #[error("domain_not_resolvable")]
    DomainNotResolvable,
    /// Every address of the name is one the engine may not connect to.
    #[error("private_address_refused")]
    PrivateAddressRefused,
    /// The engine itself failed.
    #[error("engine_error")]
    EngineError,
}

impl FailureReason {
    /// The stable code.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Timeout => "timeout",
            FailureReason::DomainNotResolvable => "domain_not_resolvable",
            FailureReason::PrivateAddressRefused => "private_address_refused",
            FailureReason::EngineError => "engine_error",
        }
    }

    /// Parses the stored code.
    pub fn parse(text: &str) -> Option<FailureReason> {
        [
            FailureReason::Timeout,
            FailureReason::DomainNotResolvable,
            FailureReason::PrivateAddressRefused,
            FailureReason::EngineError,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }
}
