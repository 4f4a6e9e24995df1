//! Content coding: records and other large bodies gzipped for clients that
//! ask, byte for byte the JSON others get; nothing changes for clients that
//! do not ask.

use std::io::Read;

use kepler_core::Tier;
use reqwest::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, HeaderMap, VARY};
use serde_json::json;

use crate::support::{TestServer, config, raw_client, record_for};

/// One request as the server answered it: status, headers, the bytes on the
/// wire, and those bytes decoded per `Content-Encoding`.
struct Wire {
    status: u16,
    headers: HeaderMap,
    sent: Vec<u8>,
    decoded: Vec<u8>,
}

impl Wire {
    fn encoding(&self) -> Option<&str> {
        self.headers
            .get(CONTENT_ENCODING)
            .map(|v| v.to_str().expect("ASCII"))
    }

    fn varies_on_accept_encoding(&self) -> bool {
        self.headers
            .get_all(VARY)
            .iter()
            .flat_map(|v| v.to_str().expect("ASCII").split(','))
            .any(|name| name.trim().eq_ignore_ascii_case("accept-encoding"))
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.decoded).expect("a JSON body")
    }
}

async fn send(request: reqwest::RequestBuilder, accept: Option<&str>) -> Wire {
    let request = match accept {
        Some(accept) => request.header(ACCEPT_ENCODING, accept),
        None => request,
    };
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let sent = response.bytes().await.expect("a body").to_vec();
    if let Some(length) = headers.get(CONTENT_LENGTH) {
        assert_eq!(
            length.to_str().expect("ASCII"),
            sent.len().to_string(),
            "Content-Length is the length sent"
        );
    }
    let decoded = match headers.get(CONTENT_ENCODING).map(|v| v.as_bytes()) {
        None => sent.clone(),
        Some(b"gzip") => {
            let mut decoded = Vec::new();
            flate2::read::GzDecoder::new(&sent[..])
                .read_to_end(&mut decoded)
                .expect("a valid gzip body");
            decoded
        }
        Some(other) => panic!("unexpected Content-Encoding {other:?}"),
    };
    Wire {
        status,
        headers,
        sent,
        decoded,
    }
}

/// A server with no workers, a growth account's key, and a fresh stored
/// record for `domain`.
async fn with_record(domain: &str) -> (TestServer, String) {
    let server = TestServer::start(config("enabled = false", ""), None).await;
    let (_, key) = server.account(Tier::Growth).await;
    server
        .store
        .put_record(&record_for(domain))
        .await
        .expect("put record");
    (server, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_hit_is_gzipped_only_for_clients_that_accept_it() {
    let (server, key) = with_record("zipped.example").await;
    let client = raw_client();
    let hit = || {
        client
            .post(format!("{}/v1/score", server.base))
            .header("x-api-key", &key)
            .json(&json!({"domain": "zipped.example"}))
    };

    let plain = send(hit(), None).await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.encoding(), None);
    assert!(plain.varies_on_accept_encoding(), "{:?}", plain.headers);
    assert_eq!(plain.json()["cached"], true);

    // Twice: the first hit makes the gzip form, the second is replayed from memory.
    for round in 0..2 {
        let zipped = send(hit(), Some("gzip, deflate")).await;
        assert_eq!(zipped.status, 200);
        assert_eq!(zipped.encoding(), Some("gzip"), "round {round}");
        assert!(zipped.varies_on_accept_encoding(), "{:?}", zipped.headers);
        assert_eq!(zipped.decoded, plain.sent, "round {round}: the same JSON");
        assert!(
            zipped.sent.len() * 2 < plain.sent.len(),
            "{} bytes gzipped of {}",
            zipped.sent.len(),
            plain.sent.len()
        );
        // Everything else about the answer is as without gzip.
        for field in ["content-type", "ratelimit", "ratelimit-policy"] {
            assert_eq!(
                zipped.headers.get(field),
                plain.headers.get(field),
                "{field}"
            );
        }
    }

    // Weights and other codings are read as RFC 9110 says.
    for (accept, gzipped) in [
        ("gzip;q=0", false),
        ("gzip;q=0, *", false),
        ("br, zstd", false),
        ("identity", false),
        ("x-gzip", true),
        ("*;q=0.5", true),
    ] {
        let answer = send(hit(), Some(accept)).await;
        assert_eq!(answer.status, 200, "{accept}");
        assert_eq!(answer.encoding().is_some(), gzipped, "{accept}");
        assert_eq!(answer.decoded, plain.sent, "{accept}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_large_bodies_are_gzipped_small_ones_are_not() {
    let (server, key) = with_record("read.example").await;
    let client = raw_client();
    let get = |path: &str| {
        client
            .get(format!("{}{path}", server.base))
            .header("x-api-key", &key)
    };

    // A record read with its freshness, and the OpenAPI document: made per request.
    for path in ["/v1/score/read.example", "/openapi.json"] {
        let plain = send(get(path), None).await;
        let zipped = send(get(path), Some("gzip")).await;
        assert_eq!((plain.status, zipped.status), (200, 200), "{path}");
        assert_eq!(plain.encoding(), None, "{path}");
        assert_eq!(zipped.encoding(), Some("gzip"), "{path}");
        assert_eq!(zipped.json(), plain.json(), "{path}");
        assert!(zipped.sent.len() < plain.sent.len(), "{path}");
    }
    let record = send(get("/v1/score/read.example"), Some("gzip")).await;
    assert_eq!(record.json()["fresh_for_tier"], true);

    // Small answers are not worth it: usage, a 202, an error.
    let usage = send(get("/v1/usage"), Some("gzip")).await;
    assert_eq!((usage.status, usage.encoding()), (200, None));
    let cold = client
        .post(format!("{}/v1/score", server.base))
        .header("x-api-key", &key)
        .json(&json!({"domain": "cold.example"}));
    let accepted = send(cold, Some("gzip")).await;
    assert_eq!((accepted.status, accepted.encoding()), (202, None));
    let refused = send(
        client
            .get(format!("{}/v1/usage", server.base))
            .header("x-api-key", "ki_live_nope"),
        Some("gzip"),
    )
    .await;
    assert_eq!((refused.status, refused.encoding()), (401, None));
    assert_eq!(refused.json()["error"], "invalid_api_key");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_replay_of_a_hit_is_the_same_json_in_either_coding() {
    let (server, key) = with_record("again.example").await;
    let client = raw_client();
    let keyed = || {
        client
            .post(format!("{}/v1/score", server.base))
            .header("x-api-key", &key)
            .header("idempotency-key", "zip-1")
            .json(&json!({"domain": "again.example"}))
    };
    let first = send(keyed(), Some("gzip")).await;
    assert_eq!((first.status, first.encoding()), (200, Some("gzip")));
    let replayed_zipped = send(keyed(), Some("gzip")).await;
    let replayed_plain = send(keyed(), None).await;
    assert_eq!(replayed_zipped.status, 200);
    assert_eq!(replayed_zipped.encoding(), Some("gzip"));
    assert_eq!(replayed_plain.encoding(), None);
    assert_eq!(replayed_zipped.decoded, first.decoded);
    assert_eq!(replayed_plain.decoded, first.decoded);
    server.stop().await;
}
