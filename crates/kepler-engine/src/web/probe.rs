//! The network half of the web probe: two redirect chains followed hop by hop
//! and one CORS preflight.

use std::collections::HashSet;

use kepler_core::Domain;

use super::{
    CORS_ORIGIN, Chain, ChainEnd, CorsExchange, Hop, HtmlFacts, MAX_REDIRECTS, WebEvidence,
    is_html_mime,
};
use crate::fetch::{CertPolicy, Fetcher, Method};

/// What a browser asks for; some servers answer differently without it.
const ACCEPT_HTML: (&str, &str) = (
    "accept",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
);

/// Fetches `http://<domain>/` and `https://<domain>/` (each chain followed hop by
/// hop), then a CORS preflight on the final URL of the chain that will be graded.
pub async fn probe(fetcher: &Fetcher, domain: &Domain) -> WebEvidence {
    let (http_start, https_start) = (format!("http://{domain}/"), format!("https://{domain}/"));
    let (http, https) = futures::join!(follow(fetcher, &http_start), follow(fetcher, &https_start));
    let graded = graded_chain(&http, &https);
    let cors = match graded.and_then(|c| c.hops.last().map(|h| (h.url.clone(), c.verified()))) {
        Some((url, verified)) => Some(preflight(fetcher, &url, verified).await),
        None => None,
    };
    WebEvidence {
        domain: domain.as_str().to_owned(),
        http,
        https,
        cors,
    }
}

/// The chain whose final response the Observatory grades: HTTPS when it
/// answered, else HTTP, else whichever got any response at all.
pub(crate) fn graded_chain<'a>(http: &'a Chain, https: &'a Chain) -> Option<&'a Chain> {
    if https.final_hop().is_some() {
        Some(https)
    } else if http.final_hop().is_some() {
        Some(http)
    } else if !https.hops.is_empty() {
        Some(https)
    } else if !http.hops.is_empty() {
        Some(http)
    } else {
        None
    }
}

/// Follows redirects from `start` one request at a time.
pub(crate) async fn follow(fetcher: &Fetcher, start: &str) -> Chain {
    let mut chain = Chain {
        start: start.to_owned(),
        hops: Vec::new(),
        end: ChainEnd::Response,
        certificate_error: None,
        html: None,
    };
    let mut certs = CertPolicy::Verify;
    let mut seen: HashSet<String> = HashSet::new();
    let mut url = start.to_owned();
    let mut final_body: Option<Vec<u8>> = None;
    loop {
        seen.insert(url.clone());
        let response = match fetcher
            .request(Method::Get, &url, &[ACCEPT_HTML], certs)
            .await
        {
            Ok(r) => r,
            Err(e) if e.is_certificate() && certs == CertPolicy::Verify => {
                // Note the certificate, then read on without it, as the Observatory does.
                chain.certificate_error = Some(e.to_string());
                certs = CertPolicy::AcceptInvalid;
                continue;
            }
            Err(error) => {
                chain.end = ChainEnd::Failed { url, error };
                break;
            }
        };
        let location = response.header("location").map(str::to_owned);
        chain.hops.push(Hop {
            url: url.clone(),
            status: response.status,
            location: location.clone(),
            headers: response.headers.clone(),
            body_truncated: response.truncated,
        });
        if !is_redirect(response.status) {
            final_body = Some(response.body);
            break;
        }
        let next = location
            .as_deref()
            .and_then(|l| response.url.join(l).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https"));
        let Some(next) = next else {
            chain.end = ChainEnd::BadLocation { location };
            final_body = Some(response.body);
            break;
        };
        if chain.hops.len() > MAX_REDIRECTS {
            chain.end = ChainEnd::TooManyRedirects;
            final_body = Some(response.body);
            break;
        }
        let next = next.to_string();
        if seen.contains(&next) {
            chain.end = ChainEnd::Loop { url: next };
            final_body = Some(response.body);
            break;
        }
        url = next;
    }
    if let (Some(body), Some(last)) = (final_body, chain.hops.last()) {
        // The Observatory parses the page when it is HTML or says nothing of its type.
        if last.mime().is_none_or(|m| is_html_mime(&m)) {
            chain.html = Some(HtmlFacts::from_html(&String::from_utf8_lossy(&body)));
        }
    }
    chain
}

fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

async fn preflight(fetcher: &Fetcher, url: &str, verified: bool) -> CorsExchange {
    let certs = if verified {
        CertPolicy::Verify
    } else {
        CertPolicy::AcceptInvalid
    };
    let headers = [
        ("origin", CORS_ORIGIN),
        ("access-control-request-method", "GET"),
    ];
    match fetcher.request(Method::Options, url, &headers, certs).await {
        Ok(r) => CorsExchange {
            url: url.to_owned(),
            origin: CORS_ORIGIN.to_owned(),
            status: Some(r.status),
            headers: r.headers,
            error: None,
        },
        Err(e) => CorsExchange {
            url: url.to_owned(),
            origin: CORS_ORIGIN.to_owned(),
            status: None,
            headers: Vec::new(),
            error: Some(e),
        },
    }
}
