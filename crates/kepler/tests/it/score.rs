//! `kepler score`: the report or the record, and one exit code per kind of failure.

use kepler_core::{ScoreRecord, Tier};

use crate::support::{Server, kepler};

#[tokio::test]
async fn a_sandbox_domain_prints_the_report_and_the_json_record() {
    let server = Server::start("").await;
    let key = server.key(Tier::Free, true).await;
    let run = kepler(
        &[
            "score",
            "grade-a.sandbox.test",
            "--url",
            &server.base,
            "--key",
            &key,
        ],
        &[],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let first = run.stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("grade-a.sandbox.test  A"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("/100"), "{}", run.stdout);
    assert!(
        run.stderr.is_empty(),
        "no progress line off a terminal: {}",
        run.stderr
    );

    // URL and key from the environment; --json prints the record.
    let run = kepler(
        &["score", "grade-f.sandbox.test", "--json"],
        &[("KEPLER_URL", &server.base), ("KEPLER_API_KEY", &key)],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let record: ScoreRecord = serde_json::from_str(&run.stdout).expect("a score record");
    assert_eq!(
        (record.domain.as_str(), record.grade.as_str()),
        ("grade-f.sandbox.test", "F")
    );
    server.stop().await;
}

#[tokio::test]
async fn a_cold_run_is_polled_to_its_report() {
    let server = Server::start("").await;
    let key = server.key(Tier::Starter, false).await;
    let run = kepler(
        &[
            "score",
            "cold.example",
            "--url",
            &server.base,
            "--key",
            &key,
        ],
        &[],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.starts_with("cold.example  D"), "{}", run.stdout);
    assert!(
        !run.stdout.contains("(stored record)"),
        "the record of this run is not a stored one: {}",
        run.stdout
    );
    server.stop().await;
}

#[tokio::test]
async fn a_failed_run_exits_3_with_its_reason() {
    let server = Server::start("").await;
    let key = server.key(Tier::Growth, false).await;
    let run = kepler(
        &[
            "score",
            "nxdomain.example",
            "--url",
            &server.base,
            "--key",
            &key,
        ],
        &[],
    )
    .await;
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(
        run.stderr.contains("failed: domain_not_resolvable"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn api_errors_exit_4_with_their_code() {
    let server = Server::start("[tiers.starter]\nmonthly_cold_cap = 0\n").await;
    let stranger = "ki_live_nobodyhasthiskeynobodyhasthiskey";
    let run = kepler(
        &[
            "score",
            "example.com",
            "--url",
            &server.base,
            "--key",
            stranger,
        ],
        &[],
    )
    .await;
    assert_eq!(run.code, Some(4), "{}", run.stderr);
    assert!(run.stderr.contains("401 invalid_api_key"), "{}", run.stderr);

    let key = server.key(Tier::Starter, false).await;
    let run = kepler(
        &[
            "score",
            "not a domain",
            "--url",
            &server.base,
            "--key",
            &key,
        ],
        &[],
    )
    .await;
    assert_eq!(run.code, Some(4), "{}", run.stderr);
    assert!(run.stderr.contains("400 invalid_domain"), "{}", run.stderr);

    let run = kepler(
        &["score", "example.com", "--url", &server.base, "--key", &key],
        &[],
    )
    .await;
    assert_eq!(run.code, Some(4), "{}", run.stderr);
    assert!(
        run.stderr.contains("429 cold_budget_exhausted"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("(retry in "), "{}", run.stderr);
    server.stop().await;
}

#[tokio::test]
async fn usage_errors_exit_2_and_an_unreachable_api_exits_5() {
    let run = kepler(
        &["score", "example.com", "--url", "http://127.0.0.1:9"],
        &[],
    )
    .await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("--key or KEPLER_API_KEY"),
        "{}",
        run.stderr
    );

    let run = kepler(
        &["score", "example.com", "--url", "not a url", "--key", "k"],
        &[],
    )
    .await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("invalid base URL"), "{}", run.stderr);

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let run = kepler(
        &["score", "example.com", "--url", &url, "--key", "ki_live_x"],
        &[],
    )
    .await;
    assert_eq!(run.code, Some(5), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("cannot reach {url}")),
        "{}",
        run.stderr
    );
}
