//! The `kepler-testnet` binary: `ready`, a parseable `[engine]` table, files,
//! clean exit on SIGTERM, one clear line for bad flags.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_kepler-testnet");

#[tokio::test]
async fn the_binary_prints_ready_and_writes_a_usable_engine_table() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("engine.toml");
    let hosts = dir.path().join("hosts");
    let mut child = Command::new(BIN)
        .arg("--engine-config")
        .arg(&config)
        .args(["--latency", "50ms", "--hosts-file"])
        .arg(&hosts)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("ready in time")
        .expect("read");
    assert_eq!(first.as_deref(), Some("ready"));

    let text = std::fs::read_to_string(&config).expect("engine table written");
    let parsed = kepler_core::config::Config::from_toml(&text).expect("parses as kepler config");
    let engine = parsed.engine;
    assert!(engine.allow_private_targets);
    assert!(engine.resolver.is_some_and(|a| a.ip().is_loopback()));
    assert_ne!(engine.https_port, 443);
    assert!(
        engine
            .rdap_base_url
            .as_deref()
            .is_some_and(|u| u.starts_with("http://127.0.0.1:"))
    );
    assert_eq!(engine.probe_timeout, Duration::from_secs(10));
    let ca = engine.extra_ca_file.expect("CA file");
    let anchor = engine.trust_anchor_file.expect("trust anchor");
    assert_eq!(ca, dir.path().join("testnet-ca.pem"));
    assert!(
        std::fs::read_to_string(&ca)
            .expect("CA")
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    assert!(
        std::fs::read_to_string(&anchor)
            .expect("anchor")
            .starts_with(". 3600 IN DNSKEY 257 3 13 ")
    );
    let hosts = std::fs::read_to_string(&hosts).expect("hosts written");
    assert!(
        hosts
            .lines()
            .any(|l| l.starts_with("127.0.10.10 ") && l.split(' ').any(|n| n == "strong.test")),
        "{hosts}"
    );
    assert!(
        hosts.lines().any(|l| l == "127.0.10.70 down.test"),
        "{hosts}"
    );

    // SIGTERM ends it cleanly.
    let pid = child.id().expect("running");
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits")
        .expect("wait");
    assert!(status.success(), "{status}");
}

async fn bad(args: &[&str]) {
    let output = Command::new(BIN).args(args).output().await.expect("run");
    assert!(!output.status.success(), "{args:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.starts_with("kepler-testnet: "), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[tokio::test]
async fn bad_flags_are_one_line_and_a_failure() {
    bad(&[]).await;
    bad(&["--engine-config"]).await;
    bad(&["--engine-config", "x.toml", "--latency", "soon"]).await;
    bad(&["--engine-config", "x.toml", "--bogus"]).await;
}
