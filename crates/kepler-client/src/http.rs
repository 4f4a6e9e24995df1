//! One API call: send with the key, retry what is transient, read the answer
//! whole, and turn an error answer into its typed [`Error`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::client::Client;
use crate::error::{Error, Problem};
use crate::retry::{is_transient_code, is_transient_error, is_transient_status};

/// An answer read whole.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    /// `Retry-After`, in either of its forms (seconds or an HTTP date).
    pub fn retry_after(&self) -> Option<Duration> {
        retry_after(&self.headers)
    }

    /// Whether trying again may give another answer (see [`crate::retry`]).
    pub fn is_transient(&self) -> bool {
        if is_transient_status(self.status) {
            return true;
        }
        // Only a problem body's `error` decides; anything else is final.
        self.status == StatusCode::CONFLICT
            && serde_json::from_slice::<Value>(&self.body)
                .is_ok_and(|body| is_transient_code(body["error"].as_str()))
    }

    /// Parses a success body.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|source| Error::InvalidResponse {
            status: self.status,
            source,
        })
    }

    /// The answer itself when it is a success, its typed error otherwise.
    pub fn success(self) -> Result<Answer, Error> {
        if self.status.is_success() {
            return Ok(self);
        }
        let retry_after = self.retry_after();
        Err(Error::from_answer(self.into_problem(), retry_after))
    }

    fn into_problem(self) -> Problem {
        let body: Value = serde_json::from_slice(&self.body).unwrap_or(Value::Null);
        let code = body["error"].as_str().map(str::to_owned);
        let detail = ["detail", "message"]
            .iter()
            .find_map(|field| body[*field].as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| raw_detail(self.status, &self.body));
        let request_id = self
            .headers
            .get("request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Problem {
            status: self.status,
            code,
            detail,
            request_id,
            body,
        }
    }
}

/// A non-JSON error body (a proxy's page), shortened for a one-line message.
fn raw_detail(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return status.canonical_reason().unwrap_or("no detail").to_owned();
    }
    text.chars().take(200).collect()
}

pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&Utc) - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// What to send.
#[derive(Debug)]
pub(crate) struct Call<'a> {
    pub method: Method,
    pub url: Url,
    pub json: Option<&'a Value>,
    pub idempotency_key: Option<&'a str>,
}

impl Client {
    /// Sends `call`, retrying transient failures under the retry policy. The
    /// answer may still be an error answer; see [`Answer::success`].
    pub(crate) async fn send(&self, call: Call<'_>) -> Result<Answer, Error> {
        let inner = self.inner();
        let mut retry = 0;
        loop {
            let mut request = inner
                .http
                .request(call.method.clone(), call.url.clone())
                .header("x-api-key", inner.api_key.clone())
                .header("accept", "application/json");
            if let Some(body) = call.json {
                request = request.json(body);
            }
            if let Some(key) = call.idempotency_key {
                request = request.header("idempotency-key", key);
            }
            let pause = match read(request).await {
                Ok(answer) if answer.is_transient() => {
                    match inner.retry.pause(retry, answer.retry_after()) {
                        Some(pause) => pause,
                        None => return Ok(answer),
                    }
                }
                Ok(answer) => return Ok(answer),
                Err(source) if is_transient_error(&source) => {
                    match inner.retry.pause(retry, None) {
                        Some(pause) => pause,
                        None => return Err(Error::Transport { source }),
                    }
                }
                Err(source) => return Err(Error::Transport { source }),
            };
            tokio::time::sleep(pause).await;
            retry += 1;
        }
    }

    /// The URL of an API path given as segments (each one percent-encoded), kept
    /// under the base URL's own path so a deployment behind a prefix works.
    pub(crate) fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.inner().base.clone();
        // The builder only accepts http(s) URLs, which always have a path to extend.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }
}

async fn read(request: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
    let response = request.send().await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await?.to_vec();
    Ok(Answer {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&'static str, &str)], body: &str) -> Answer {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, value.parse().expect("header value"));
        }
        Answer {
            status: StatusCode::from_u16(status).expect("status"),
            headers: map,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(
            answer(503, &[("retry-after", "7")], "").retry_after(),
            Some(Duration::from_secs(7))
        );
        let past = answer(503, &[("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")], "");
        assert_eq!(past.retry_after(), Some(Duration::ZERO));
        assert_eq!(
            answer(503, &[("retry-after", "soon")], "").retry_after(),
            None
        );
    }

    #[test]
    fn a_limit_answer_becomes_its_typed_variant() {
        let body = r#"{"type":"/docs/errors#key_hourly_cold_limit","title":"t","status":429,
            "detail":"reached","error":"key_hourly_cold_limit","limit":200,"used":200,
            "resets_at":"2030-01-01T00:00:00Z","tier":"growth"}"#;
        let error = answer(429, &[("retry-after", "60"), ("request-id", "r1")], body)
            .success()
            .expect_err("a 429 is an error");
        match &error {
            Error::KeyHourlyColdLimit {
                limit,
                used,
                retry_after,
                problem,
                ..
            } => {
                assert_eq!((*limit, *used), (200, 200));
                assert_eq!(*retry_after, Duration::from_secs(60));
                assert_eq!(problem.request_id.as_deref(), Some("r1"));
            }
            other => panic!("wrong variant: {other:?}"),
        }
        assert_eq!(error.code(), Some("key_hourly_cold_limit"));
        assert!(error.is_limit());
    }

    #[test]
    fn unknown_codes_and_foreign_bodies_are_kept_whole() {
        let new_code = answer(
            409,
            &[],
            r#"{"error":"shiny_new_code","detail":"x","extra":1}"#,
        )
        .success()
        .expect_err("error");
        assert!(matches!(new_code, Error::Api { .. }));
        assert_eq!(new_code.code(), Some("shiny_new_code"));
        assert_eq!(
            new_code.problem().map(|p| &p.body["extra"]),
            Some(&1.into())
        );

        let proxy = answer(502, &[], "<html>Bad Gateway</html>")
            .success()
            .expect_err("error");
        assert_eq!(proxy.code(), None);
        assert_eq!(
            proxy.problem().map(|p| p.detail.as_str()),
            Some("<html>Bad Gateway</html>")
        );

        let missing_numbers = answer(429, &[], r#"{"error":"cold_budget_exhausted"}"#)
            .success()
            .expect_err("error");
        assert!(matches!(missing_numbers, Error::Api { .. }));
    }
}
