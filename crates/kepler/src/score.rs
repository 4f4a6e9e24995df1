//! `kepler score DOMAIN`: the API client's 202-and-poll dance from the command line.
//! POST, poll the job honouring `Retry-After` (progress on stderr when it is a
//! terminal), fetch the record, print the same report as `kepler scan`.
//!
//! Exit codes: 0 scored, 2 usage error, 3 the run failed, 4 the API refused, 5 transport error.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use kepler_core::ScoreRecord;
use reqwest::StatusCode;
use serde_json::Value;

use crate::cli::ScoreArgs;
use crate::report::{Style, render};

const POLL_DEFAULT: Duration = Duration::from_secs(5);
const GIVE_UP_AFTER: Duration = Duration::from_secs(180);

fn client() -> anyhow::Result<reqwest::Client> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("cannot set up TLS")?
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .user_agent(concat!("kepler-cli/", env!("CARGO_PKG_VERSION")))
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the HTTP client")
}

/// An API error answer, printed as its stable code.
fn api_error(status: StatusCode, body: &str) -> ExitCode {
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let code = parsed["error"].as_str().unwrap_or("unexpected_response");
    let detail = parsed["detail"].as_str().unwrap_or(body);
    eprintln!(
        "kepler: the API answered {} {code}: {detail}",
        status.as_u16()
    );
    ExitCode::from(4)
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Duration {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(POLL_DEFAULT, |s| Duration::from_secs(s.clamp(1, 60)))
}

pub async fn run(args: ScoreArgs) -> anyhow::Result<ExitCode> {
    let Some(key) = args.key.filter(|k| !k.is_empty()) else {
        eprintln!("kepler: give an API key with --key or KEPLER_API_KEY");
        return Ok(ExitCode::from(2));
    };
    let base = args.url.trim_end_matches('/').to_owned();
    let http = client()?;
    let transport = |e: reqwest::Error| anyhow::anyhow!("cannot reach {base}: {e}");
    let posted = http
        .post(format!("{base}/v1/score"))
        .header("x-api-key", &key)
        .json(&serde_json::json!({"domain": args.domain}))
        .send()
        .await;
    let posted = match posted {
        Ok(response) => response,
        Err(error) => {
            eprintln!("kepler: {:#}", transport(error));
            return Ok(ExitCode::from(5));
        }
    };
    let status = posted.status();
    let pause = retry_after(posted.headers());
    let body = posted.text().await.unwrap_or_default();
    let record: ScoreRecord = match status {
        StatusCode::OK => {
            serde_json::from_str(&body).context("the API sent a record Kepler cannot read")?
        }
        StatusCode::ACCEPTED => {
            let job: Value =
                serde_json::from_str(&body).context("the API sent a job Kepler cannot read")?;
            let poll_url = job["poll_url"]
                .as_str()
                .context("the 202 answer has no poll_url")?
                .to_owned();
            match poll(&http, &base, &key, &poll_url, pause).await? {
                Ok(domain) => {
                    let fetched = http
                        .get(format!("{base}/v1/score/{domain}"))
                        .header("x-api-key", &key)
                        .send()
                        .await
                        .map_err(transport)?;
                    let status = fetched.status();
                    let text = fetched.text().await.unwrap_or_default();
                    if status != StatusCode::OK {
                        return Ok(api_error(status, &text));
                    }
                    serde_json::from_str(&text)
                        .context("the API sent a record Kepler cannot read")?
                }
                Err(code) => return Ok(code),
            }
        }
        other => return Ok(api_error(other, &body)),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        print!("{}", render(&record, Style::for_stdout()));
    }
    Ok(ExitCode::SUCCESS)
}

/// Polls until the job settles; `Ok(domain)` when complete.
async fn poll(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    poll_url: &str,
    mut pause: Duration,
) -> anyhow::Result<Result<String, ExitCode>> {
    let started = Instant::now();
    let show = std::io::stderr().is_terminal();
    loop {
        if started.elapsed() > GIVE_UP_AFTER {
            if show {
                eprintln!();
            }
            eprintln!(
                "kepler: the job did not settle within {}s; poll {base}{poll_url} later",
                GIVE_UP_AFTER.as_secs()
            );
            return Ok(Err(ExitCode::from(3)));
        }
        tokio::time::sleep(pause).await;
        let response = http
            .get(format!("{base}{poll_url}"))
            .header("x-api-key", key)
            .send()
            .await
            .with_context(|| format!("cannot reach {base}"))?;
        let status = response.status();
        pause = retry_after(response.headers()).min(POLL_DEFAULT);
        let text = response.text().await.unwrap_or_default();
        if status != StatusCode::OK {
            return Ok(Err(api_error(status, &text)));
        }
        let job: Value =
            serde_json::from_str(&text).context("the API sent a job Kepler cannot read")?;
        let state = job["status"].as_str().unwrap_or("unknown");
        if show {
            eprint!("\r{state:<9} {:>4}s ", started.elapsed().as_secs());
            let _ = std::io::stderr().flush();
        }
        match state {
            "complete" => {
                if show {
                    eprintln!();
                }
                let domain = job["result_ref"]["domain"]
                    .as_str()
                    .or(job["domain"].as_str())
                    .unwrap_or_default();
                return Ok(Ok(domain.to_owned()));
            }
            "failed" => {
                if show {
                    eprintln!();
                }
                let reason = job["failure_reason"].as_str().unwrap_or("unknown");
                eprintln!("kepler: the run failed: {reason}");
                return Ok(Err(ExitCode::from(3)));
            }
            _ => {}
        }
    }
}
