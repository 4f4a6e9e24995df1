//! §5 decision order, §6 job polling and §7 stored records, with a scripted scorer.

use std::sync::Arc;
use std::time::Duration;

use kepler_core::Tier;
use serde_json::json;

use crate::support::{ScriptedScorer, TestServer, config};

fn is_rfc3339_utc(value: &serde_json::Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(s).is_ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_follow_the_documented_order() {
    let scorer = Arc::new(ScriptedScorer::new(Duration::from_millis(400)));
    let server = TestServer::start(config("", ""), Some(scorer.clone())).await;
    let (_, growth) = server.account(Tier::Growth).await;
    let (_, free) = server.account(Tier::Free).await;
    let (_, enterprise) = server.account(Tier::Enterprise).await;
    let domain = "alpha.example";

    // Step 2 before everything that costs.
    let resp = server
        .post_score(&growth, json!({"domain": domain, "force_fresh": true}), 403)
        .await;
    assert_eq!(resp.problem("force_fresh_not_allowed")["tier"], "growth");
    // Step 2 comes before step 4 for the free tier too.
    let resp = server
        .post_score(&free, json!({"domain": domain, "force_fresh": true}), 403)
        .await;
    assert_eq!(resp.problem("force_fresh_not_allowed")["tier"], "free");
    // Step 4: nothing stored yet, free tier.
    let resp = server
        .post_score(&free, json!({"domain": domain}), 403)
        .await;
    assert_eq!(resp.problem("free_tier_sandbox_only")["tier"], "free");

    // Nothing stored: 404 not_scored, and a GET never starts a run.
    server
        .get(&growth, &format!("/v1/score/{domain}"), 404)
        .await
        .problem("not_scored");

    // Step 9: cold.
    let accepted = server
        .post_score(&growth, json!({"domain": domain, "wait": false}), 202)
        .await;
    let job_id = accepted.body["job_id"].as_str().expect("job_id").to_owned();
    uuid::Uuid::parse_str(&job_id).expect("job_id is a UUID");
    let poll_url = format!("/v1/jobs/{job_id}");
    assert_eq!(accepted.body["poll_url"], poll_url);
    assert_eq!(accepted.header("location"), Some(poll_url.as_str()));
    assert_eq!(accepted.header("retry-after"), Some("5"));
    assert_eq!(accepted.body["domain"], domain);
    assert!(
        ["pending", "running"].contains(&accepted.body["status"].as_str().unwrap_or("")),
        "{}",
        accepted.text
    );
    let mut keys: Vec<&String> = accepted.body.as_object().expect("object").keys().collect();
    keys.sort();
    assert_eq!(keys, ["domain", "job_id", "poll_url", "status"]);

    // Step 5: asked again while in flight: the same job, not charged again.
    let again = server
        .post_score(&growth, json!({"domain": domain}), 202)
        .await;
    assert_eq!(again.body["job_id"], job_id.as_str());
    assert_eq!(again.header("location"), Some(poll_url.as_str()));
    assert_eq!(server.usage(&growth).await["month"]["cold_calls"], 1);

    let job = server
        .settle(&growth, &job_id, Duration::from_secs(10))
        .await;
    assert_eq!(job["status"], "complete", "{job}");
    assert_eq!(job["job_id"], job_id.as_str());
    assert_eq!(job["domain"], domain);
    assert_eq!(job["result_ref"]["domain"], domain);
    assert!(is_rfc3339_utc(&job["result_ref"]["scored_at"]), "{job}");
    for field in ["created_at", "started_at", "finished_at"] {
        assert!(is_rfc3339_utc(&job[field]), "{field}: {job}");
    }
    assert!(job["failure_reason"].is_null(), "{job}");
    let mut fields: Vec<&String> = job.as_object().expect("object").keys().collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "created_at",
            "domain",
            "failure_reason",
            "finished_at",
            "job_id",
            "result_ref",
            "started_at",
            "status"
        ]
    );

    // Step 3: fresh stored record, free and uncounted.
    let cached = server
        .post_score(&growth, json!({"domain": domain}), 200)
        .await;
    assert_eq!(cached.body["cached"], true);
    assert_eq!(cached.body["domain"], domain);
    assert_eq!(
        cached.body["scored_at"], job["result_ref"]["scored_at"],
        "the record the job points at"
    );
    assert_eq!(cached.body["categories"].as_array().map(Vec::len), Some(5));
    assert_eq!(server.usage(&growth).await["month"]["cold_calls"], 1);

    // Step 3 comes before step 4: a free account reads the stored record.
    let for_free = server
        .post_score(&free, json!({"domain": domain}), 200)
        .await;
    assert_eq!(for_free.body["cached"], true);
    assert_eq!(server.usage(&free).await["month"]["cold_calls"], 0);

    let stored = server
        .get(&growth, &format!("/v1/score/{domain}"), 200)
        .await;
    assert_eq!(stored.body["fresh_for_tier"], true);
    assert_eq!(stored.body["domain"], domain);
    assert_eq!(stored.body["scored_at"], job["result_ref"]["scored_at"]);

    // Enterprise may force a fresh run over a fresh record.
    let forced = server
        .post_score(
            &enterprise,
            json!({"domain": domain, "force_fresh": true}),
            202,
        )
        .await;
    assert_ne!(forced.body["job_id"], job_id.as_str());
    assert_eq!(server.usage(&enterprise).await["month"]["cold_calls"], 1);
    let forced_id = forced.body["job_id"].as_str().expect("job id").to_owned();
    let forced_job = server
        .settle(&enterprise, &forced_id, Duration::from_secs(10))
        .await;
    assert_eq!(forced_job["status"], "complete");
    assert_eq!(
        scorer.calls(domain),
        2,
        "one run per admission, none for the step-5 repeat"
    );
    // Without force_fresh, enterprise (1 h window) gets the new record from storage.
    let cached = server
        .post_score(&enterprise, json!({"domain": domain}), 200)
        .await;
    assert_eq!(
        cached.body["scored_at"],
        forced_job["result_ref"]["scored_at"]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshness_window_is_the_callers_tier() {
    let server = TestServer::start(config("enabled = false", ""), None).await;
    let (_, starter) = server.account(Tier::Starter).await; // 30 d
    let (_, growth) = server.account(Tier::Growth).await; // 7 d
    let (_, scale) = server.account(Tier::Scale).await; // 24 h
    let mut record = crate::support::record_for("aged.example");
    record.scored_at = chrono::Utc::now() - chrono::Duration::days(10);
    server.store.put_record(&record).await.expect("put record");

    for (key, fresh) in [(&starter, true), (&growth, false), (&scale, false)] {
        let stored = server.get(key, "/v1/score/aged.example", 200).await;
        assert_eq!(stored.body["fresh_for_tier"], fresh, "{}", stored.text);
        assert_eq!(stored.body["cached"], true);
    }
    // Starter reads it from storage; growth's window has passed, so it is a cold call.
    let cached = server
        .post_score(&starter, json!({"domain": "aged.example"}), 200)
        .await;
    assert_eq!(cached.body["cached"], true);
    // Sent as stored: the same record GET /v1/score/{domain} describes.
    let mut read = server
        .get(&starter, "/v1/score/aged.example", 200)
        .await
        .body;
    read.as_object_mut()
        .expect("an object")
        .remove("fresh_for_tier");
    assert_eq!(cached.body, read);
    assert_eq!(server.usage(&starter).await["month"]["cold_calls"], 0);
    server
        .post_score(&growth, json!({"domain": "aged.example"}), 202)
        .await;
    assert_eq!(server.usage(&growth).await["month"]["cold_calls"], 1);
    // A free account reads only fresh records; past its 30 d window it is sandbox-only.
    let (_, free) = server.account(Tier::Free).await;
    let mut old = crate::support::record_for("old.example");
    old.scored_at = chrono::Utc::now() - chrono::Duration::days(40);
    server.store.put_record(&old).await.expect("put record");
    let resp = server
        .post_score(&free, json!({"domain": "old.example"}), 403)
        .await;
    assert_eq!(resp.problem("free_tier_sandbox_only")["tier"], "free");
    assert_eq!(
        server
            .post_score(&free, json!({"domain": "aged.example"}), 200)
            .await
            .body["cached"],
        true
    );
    // The stale record is still the newest stored one, whatever its age.
    let stored = server.get(&growth, "/v1/score/aged.example", 200).await;
    assert_eq!(stored.body["fresh_for_tier"], false);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_job_shows_started_at_and_wait_is_accepted_in_the_query() {
    let scorer = Arc::new(ScriptedScorer::new(Duration::from_secs(2)));
    let server = TestServer::start(config("", ""), Some(scorer.clone())).await;
    let (_, key) = server.account(Tier::Growth).await;
    let request = server
        .client
        .post(format!("{}/v1/score?wait=true", server.base))
        .header("x-api-key", &key)
        .json(&json!({"domain": "running.example", "wait": true}));
    let accepted = server.send(request, "POST ?wait=true", 202).await;
    let path = format!("/v1/jobs/{}", accepted.body["job_id"].as_str().expect("id"));
    let started = std::time::Instant::now();
    loop {
        let job = server.get(&key, &path, 200).await.body;
        if job["status"] == "running" {
            assert!(is_rfc3339_utc(&job["started_at"]), "{job}");
            assert!(job["finished_at"].is_null(), "{job}");
            assert!(job["result_ref"].is_null(), "{job}");
            assert!(job["failure_reason"].is_null(), "{job}");
            break;
        }
        assert_eq!(job["status"], "pending", "{job}");
        assert!(job["started_at"].is_null(), "{job}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "never seen running"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_records_are_found_by_any_spelling_of_the_domain() {
    let server = TestServer::start(config("enabled = false", ""), None).await;
    let (_, key) = server.account(Tier::Growth).await;
    for domain in ["spelled.example", "xn--bcher-kva.example"] {
        server
            .store
            .put_record(&crate::support::record_for(domain))
            .await
            .expect("put");
    }
    for (path, domain) in [
        ("/v1/score/SPELLED.Example.", "spelled.example"),
        ("/v1/score/b%C3%BCcher.example", "xn--bcher-kva.example"),
        ("/v1/score/xn--bcher-kva.example", "xn--bcher-kva.example"),
    ] {
        let stored = server.get(&key, path, 200).await;
        assert_eq!(stored.body["domain"], domain, "{path}");
        assert_eq!(stored.body["fresh_for_tier"], true, "{path}");
    }
    let cached = server
        .post_score(&key, json!({"domain": "Bücher.Example"}), 200)
        .await;
    assert_eq!(cached.body["domain"], "xn--bcher-kva.example");
    assert_eq!(cached.body["cached"], true);
    server.stop().await;
}
