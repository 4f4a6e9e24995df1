//! `kepler score DOMAIN`: kepler-client posts and polls; this command shows the
//! progress line on stderr when it is a terminal, prints the same report as
//! `kepler scan` (or the record with `--json`), and turns failures into one line
//! and an exit code.
//!
//! Exit codes: 0 scored, 2 usage error, 3 the run failed or did not settle in
//! time, 4 the API refused (its error code printed), 5 the API was unreachable.

use std::io::IsTerminal;
use std::process::ExitCode;

use kepler_client::{Client, Error};
use kepler_core::FailureReason;

use crate::cli::ScoreArgs;
use crate::progress::Progress;
use crate::report::{Style, explain, render};

const USAGE: u8 = 2;
const RUN_FAILED: u8 = 3;
const API_ERROR: u8 = 4;
const UNREACHABLE: u8 = 5;

pub async fn run(args: ScoreArgs) -> anyhow::Result<ExitCode> {
    let Some(key) = args.key.as_deref().filter(|k| !k.trim().is_empty()) else {
        eprintln!("kepler: give an API key with --key or KEPLER_API_KEY");
        return Ok(ExitCode::from(USAGE));
    };
    let progress = std::io::stderr().is_terminal().then(Progress::start);
    let mut builder = Client::builder(&args.url, key)
        .user_agent(concat!("kepler-cli/", env!("CARGO_PKG_VERSION")));
    if let Some(progress) = &progress {
        builder = builder.on_progress(progress.observer());
    }
    let client = match builder.build() {
        Ok(client) => client,
        Err(error) => {
            eprintln!("kepler: {error}");
            return Ok(ExitCode::from(USAGE));
        }
    };
    let outcome = client.score(&args.domain).await;
    if let Some(progress) = progress {
        progress.finish();
    }
    match outcome {
        Ok(record) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&record)?);
            } else {
                print!("{}", render(&record, Style::for_stdout()));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            let (message, code) = describe(&args.url, &error);
            eprintln!("kepler: {message}");
            Ok(ExitCode::from(code))
        }
    }
}

/// The line to print for a failure, and the exit code.
fn describe(url: &str, error: &Error) -> (String, u8) {
    match error {
        Error::JobFailed {
            domain,
            failure_reason,
            ..
        } => {
            let why = FailureReason::parse(failure_reason)
                .map(|reason| format!(" ({})", explain(reason)))
                .unwrap_or_default();
            (
                format!("the run for {domain} failed: {failure_reason}{why}"),
                RUN_FAILED,
            )
        }
        Error::Timeout {
            job_id,
            domain,
            waited,
        } => (
            format!(
                "the run for {domain} did not settle within {}s; it may still: GET {}/v1/jobs/{job_id}",
                waited.as_secs(),
                url.trim_end_matches('/')
            ),
            RUN_FAILED,
        ),
        Error::Transport { source } => (
            format!("cannot reach {url}: {}", chain(source)),
            UNREACHABLE,
        ),
        other => {
            let mut message = match other.problem() {
                Some(problem) => format!("the API answered {problem}"),
                None => chain(other),
            };
            if let Some(wait) = other.retry_after() {
                message.push_str(&format!(" (retry in {}s)", wait.as_secs()));
            }
            (message, API_ERROR)
        }
    }
}

/// An error and its causes on one line (reqwest's own message omits the cause).
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut cause = error.source();
    while let Some(current) = cause {
        let text = current.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cause = current.source();
    }
    parts.join(": ")
}
