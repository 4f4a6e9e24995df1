//! The `http_headers` category: HTTP→HTTPS redirection and the MDN HTTP
//! Observatory's tests (algorithm version 6), re-implemented from its published
//! rules. `probe` records what the site served, hop by hop; `score` turns that
//! record into checks without touching the network, so the same evidence always
//! gives the same score.
//!
//! The scoring rules, every result name and its points are listed in
//! `docs/scoring/http_headers.md`.

mod analyze;
mod cookies;
mod csp;
mod html;
mod observatory;
mod preload;
mod probe;
mod results;
mod sfv;

#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::fetch::FetchError;

pub use html::{HtmlFacts, ScriptTag, StylesheetTag};
pub use observatory::{ALGORITHM_VERSION, observatory_grade, score, score_with_preload};
pub use preload::PreloadList;
pub use probe::probe;

/// The `Origin` sent with the CORS preflight.
pub const CORS_ORIGIN: &str = "https://kepler-observatory.invalid";

/// Redirects followed from one starting URL before giving up, as the Observatory does.
pub const MAX_REDIRECTS: usize = 10;

/// Everything the web probe saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebEvidence {
    pub domain: String,
    /// The chain starting at `http://<domain>/`.
    pub http: Chain,
    /// The chain starting at `https://<domain>/`.
    pub https: Chain,
    /// The CORS preflight sent to the graded chain's final URL.
    pub cors: Option<CorsExchange>,
}

/// One starting URL and the responses met following its redirects hop by hop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chain {
    pub start: String,
    pub hops: Vec<Hop>,
    pub end: ChainEnd,
    /// A certificate was rejected on the way; the hops from there on were read
    /// without certificate verification, as the Observatory does, and the chain
    /// counts as unverified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_error: Option<String>,
    /// Facts from the final response's HTML, when it was HTML or untyped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<HtmlFacts>,
}

/// One response in a chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hop {
    pub url: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Lower-case names, every value kept.
    pub headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub body_truncated: bool,
}

/// How a chain ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChainEnd {
    /// The last hop is a response that is not a redirect.
    Response,
    /// The last hop still redirects after [`MAX_REDIRECTS`] were followed.
    TooManyRedirects,
    /// The last hop redirects to a URL already visited.
    Loop { url: String },
    /// The last hop redirects but names no usable `Location`.
    BadLocation { location: Option<String> },
    /// The request for `url` got no response.
    Failed { url: String, error: FetchError },
}

/// The answer to the CORS preflight (`OPTIONS` with `Origin`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorsExchange {
    pub url: String,
    pub origin: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<FetchError>,
}

impl Chain {
    /// The response the chain settled on; `None` when a request failed on the
    /// way (the Observatory then treats the whole session as absent).
    pub fn final_hop(&self) -> Option<&Hop> {
        match self.end {
            ChainEnd::Failed { .. } => None,
            _ => self.hops.last(),
        }
    }

    /// True unless a certificate was rejected somewhere in the chain.
    pub fn verified(&self) -> bool {
        self.certificate_error.is_none()
    }

    /// The error that stopped the chain, if it stopped on one.
    pub fn failure(&self) -> Option<&FetchError> {
        match &self.end {
            ChainEnd::Failed { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl Hop {
    /// Every value of header `name` (lower-case).
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// All values of `name` joined with ", " as an HTTP library folds repeated
    /// headers (the Observatory reads headers that way); `None` when absent.
    pub fn combined(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self.values(name).collect();
        if values.is_empty() {
            None
        } else {
            Some(values.join(", "))
        }
    }

    /// The media type of `content-type`, lower-case, without parameters.
    pub fn mime(&self) -> Option<String> {
        let raw = self.values("content-type").next()?;
        let mime = raw
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if mime.is_empty() { None } else { Some(mime) }
    }
}

/// True for the media types the Observatory treats as HTML.
pub(crate) fn is_html_mime(mime: &str) -> bool {
    matches!(mime, "text/html" | "application/xhtml+xml")
}
