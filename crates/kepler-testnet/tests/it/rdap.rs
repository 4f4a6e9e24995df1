//! The RDAP server, asked over plain HTTP at the base URL the testnet reports.

use std::net::SocketAddr;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support;

/// GET `<rdap_base_url><path>`: (status, JSON body).
async fn rdap(net: &kepler_testnet::Testnet, path: &str) -> (u16, Value) {
    let base = net.rdap_base_url();
    let rest = base.strip_prefix("http://").expect("http base URL");
    let (authority, prefix) = rest.split_once('/').expect("a path");
    let addr: SocketAddr = authority.parse().expect("numeric address");
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "GET /{prefix}{path} HTTP/1.1\r\nHost: {authority}\r\nAccept: application/rdap+json\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/rdap+json"),
        "{head}"
    );
    (status, serde_json::from_str(body).expect("JSON"))
}

fn event(object: &Value, action: &str) -> chrono::DateTime<chrono::Utc> {
    let events = object["events"].as_array().expect("events");
    let date = events
        .iter()
        .find(|e| e["eventAction"] == action)
        .expect(action)["eventDate"]
        .as_str()
        .expect("date");
    chrono::DateTime::parse_from_rfc3339(date)
        .expect("RFC 3339")
        .with_timezone(&chrono::Utc)
}

#[tokio::test]
async fn rdap_describes_each_fixture_and_404s_the_rest() {
    let net = support::start().await;
    assert!(
        net.net.rdap_base_url().starts_with("http://127.0.0.1:")
            && net.net.rdap_base_url().ends_with("/rdap/")
    );
    let now = chrono::Utc::now();

    let (status, strong) = rdap(&net.net, "domain/strong.test").await;
    assert_eq!(status, 200);
    assert_eq!(strong["objectClassName"], "domain");
    assert_eq!(strong["ldhName"], "strong.test");
    let age = now
        .signed_duration_since(event(&strong, "registration"))
        .num_days();
    assert!((3650..=3655).contains(&age), "{age}");
    let left = event(&strong, "expiration")
        .signed_duration_since(now)
        .num_days();
    assert!((728..=731).contains(&left), "{left}");
    assert!(
        strong["status"]
            .as_array()
            .expect("status")
            .iter()
            .any(|s| s == "client transfer prohibited")
    );

    let (_, mixed) = rdap(&net.net, "domain/mixed.test").await;
    let age = now
        .signed_duration_since(event(&mixed, "registration"))
        .num_days();
    assert!((1094..=1097).contains(&age), "{age}");
    assert!(
        mixed["status"]
            .as_array()
            .expect("status")
            .iter()
            .any(|s| s == "client transfer prohibited")
    );

    let (_, weak) = rdap(&net.net, "domain/weak.test").await;
    assert_eq!(
        now.signed_duration_since(event(&weak, "registration"))
            .num_days(),
        20
    );

    let (status, unknown) = rdap(&net.net, "domain/nonexistent.test").await;
    assert_eq!(status, 404);
    assert_eq!(unknown["errorCode"], 404);
    net.net.shutdown().await;
}
