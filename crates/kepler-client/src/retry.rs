//! When a failed call is tried again, and after how long.
//!
//! Transient means the request may not have reached a healthy server: a
//! connection that could not be made or broke, a timeout, or a `502`/`503`/`504`;
//! and a `409 idempotency_key_in_use` (the same request is still being answered:
//! a later try under the same key replays it). Every other answer is final. In particular a `429` is not retried: Kepler's
//! 429s are cold-call limits that free after minutes to weeks, which the caller
//! should see at once with their `Retry-After`. POSTs are safe to retry because
//! the client always sends an `Idempotency-Key`.

use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;

/// How transient failures are retried: exponential backoff with jitter,
/// never sooner than the API's `Retry-After`.
///
/// ```
/// use std::time::Duration;
/// use kepler_client::{Client, RetryPolicy};
///
/// let patient = RetryPolicy { max_retries: 5, max_backoff: Duration::from_secs(60), ..RetryPolicy::default() };
/// let client = Client::builder("https://kepler.example", "ki_live_…").retry(patient).build()?;
/// # Ok::<(), kepler_client::BuildError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: never retry).
    pub max_retries: u32,
    /// The pause before the first retry; it doubles with each one.
    pub initial_backoff: Duration,
    /// The longest pause. A `Retry-After` longer than this is not waited for:
    /// the error is returned instead.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Three retries, from 500 ms up to 30 s.
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Never retry: every failure is returned as it happens.
    ///
    /// ```
    /// use kepler_client::RetryPolicy;
    ///
    /// assert_eq!(RetryPolicy::none().max_retries, 0);
    /// ```
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        }
    }

    /// The pause before retry number `retry` (0-based), or `None` when the
    /// policy is spent or the server asks for a longer wait than it allows.
    pub(crate) fn pause(self, retry: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if retry >= self.max_retries {
            return None;
        }
        let ceiling = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.max_backoff);
        // "Equal jitter": half fixed, half random, so clients that failed together
        // do not come back together.
        let half = ceiling / 2;
        let spread = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        let jittered = half + Duration::from_millis(rand::rng().random_range(0..=spread));
        match retry_after {
            Some(asked) if asked > self.max_backoff => None,
            Some(asked) => Some(jittered.max(asked)),
            None => Some(jittered),
        }
    }
}

/// Whether an answer's status is worth another try.
pub(crate) fn is_transient_status(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
    )
}

/// Whether an error code is worth another try: `idempotency_key_in_use` means the
/// same request, under the same key, is still being answered, so a later try
/// replays its answer. (Other `409`s, from a newer server, are final.)
pub(crate) fn is_transient_code(code: Option<&str>) -> bool {
    code == Some("idempotency_key_in_use")
}

/// Whether a transport failure is worth another try. A TLS failure (an untrusted
/// certificate, say) fails the same way every time, so it is not.
pub(crate) fn is_transient_error(error: &reqwest::Error) -> bool {
    if is_tls_failure(error) {
        return false;
    }
    error.is_connect() || error.is_timeout() || error.is_request() || error.is_body()
}

fn is_tls_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    if error.is::<rustls::Error>() {
        return true;
    }
    // io::Error::source skips the error it wraps (and hyper nests them), so look
    // inside by hand.
    if let Some(io) = error.downcast_ref::<std::io::Error>()
        && let Some(inner) = io.get_ref()
        && is_tls_failure(inner)
    {
        return true;
    }
    error.source().is_some_and(is_tls_failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_within_their_jitter_and_stop_when_spent() {
        let policy = RetryPolicy {
            max_retries: 4,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
        };
        let bounds = [(50, 100), (100, 200), (150, 300), (150, 300)];
        for (retry, (low, high)) in (0u32..).zip(bounds) {
            for _ in 0..50 {
                let pause = policy.pause(retry, None).expect("within the policy");
                assert!(
                    pause >= Duration::from_millis(low) && pause <= Duration::from_millis(high),
                    "retry {retry}: {pause:?}"
                );
            }
        }
        assert_eq!(policy.pause(4, None), None);
        assert_eq!(RetryPolicy::none().pause(0, None), None);
    }

    #[test]
    fn retry_after_is_a_floor_and_too_long_a_wait_gives_up() {
        let policy = RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(5),
        };
        assert_eq!(
            policy.pause(0, Some(Duration::from_secs(2))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(policy.pause(0, Some(Duration::from_secs(6))), None);
    }

    #[test]
    fn only_gateway_and_unavailable_answers_are_transient() {
        for code in [502, 503, 504] {
            assert!(is_transient_status(
                StatusCode::from_u16(code).expect("status")
            ));
        }
        for code in [400, 401, 403, 404, 409, 422, 429, 500] {
            assert!(!is_transient_status(
                StatusCode::from_u16(code).expect("status")
            ));
        }
        assert!(is_transient_code(Some("idempotency_key_in_use")));
        for code in [None, Some("idempotency_key_reused"), Some("shiny_new_code")] {
            assert!(!is_transient_code(code));
        }
    }
}
