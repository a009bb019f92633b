//! Tests for primary/secondary limits, token expiry, injected faults and
//! GraphQL (cost, NOT_FOUND, ARGUMENT_LIMIT, RATE_LIMITED, FORBIDDEN).

use std::time::Duration;

use serde_json::{Value, json};

use fake_github::{FakeGitHub, FakeUser, Faults};

use super::{fake, get, header, mint};

async fn graphql(gh: &FakeGitHub, token: &str, query: &str, ids: &[String]) -> reqwest::Response {
    reqwest::Client::new()
        .post(gh.graphql_url())
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": { "ids": ids } }))
        .send()
        .await
        .unwrap()
}

const QUERY: &str = "query($ids: [ID!]!) { nodes(ids: $ids) { ... on User { login \
    followers { totalCount } following { totalCount } repositories { totalCount } } } \
    rateLimit { cost remaining resetAt limit used } }";

#[tokio::test]
async fn exhaustion_gives_403_counts_violation_and_window_refills() {
    let gh = fake().await;
    gh.set_faults(Faults { rate_limit: 2, rate_window: Duration::from_millis(1500), ..Faults::default() });
    let token = mint(&gh).await;
    let url = format!("{}/user/1", gh.url());
    assert_eq!(header(&get(url.clone(), &token).await, "x-ratelimit-remaining"), "1");
    let last = get(url.clone(), &token).await;
    assert_eq!((last.status().as_u16(), header(&last, "x-ratelimit-remaining")), (200, "0".into()));
    assert_eq!(gh.stats().on_exhausted, 0);
    let over = get(url.clone(), &token).await;
    assert_eq!(over.status(), 403);
    assert_eq!(header(&over, "x-ratelimit-remaining"), "0");
    let reset: i64 = header(&over, "x-ratelimit-reset").parse().unwrap();
    let body: Value = over.json().await.unwrap();
    assert_eq!(body["message"], "API rate limit exceeded for installation ID 100.");
    assert_eq!(gh.stats().on_exhausted, 1);
    // GraphQL has its own bucket, so it is untouched by core exhaustion.
    let g = graphql(&gh, &token, QUERY, &[gh.user(1).unwrap().node_id]).await;
    assert_eq!(header(&g, "x-ratelimit-remaining"), "1");
    // After the advertised reset the budget is back.
    let wait = (reset * 1000 - chrono::Utc::now().timestamp_millis()).max(0) as u64;
    tokio::time::sleep(Duration::from_millis(wait + 50)).await;
    let again = get(url, &token).await;
    assert_eq!(again.status(), 200);
    assert_eq!(header(&again, "x-ratelimit-remaining"), "1");
    assert_eq!(gh.stats().on_exhausted, 1);
}

#[tokio::test]
async fn expired_token_is_401_and_counted() {
    let gh = fake().await;
    gh.set_faults(Faults { token_lifetime: Duration::from_millis(300), ..Faults::default() });
    let token = mint(&gh).await;
    assert_eq!(get(format!("{}/user/1", gh.url()), &token).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let resp = get(format!("{}/user/1", gh.url()), &token).await;
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["message"], "Bad credentials");
    assert_eq!(gh.stats().on_expired, 1);
    assert_eq!(get(format!("{}/user/1", gh.url()), "ghs_never_minted").await.status(), 401);
    assert_eq!(gh.stats().on_expired, 1, "unknown tokens are not 'expired'");
}

#[tokio::test]
async fn concurrency_cap_gives_secondary_limit_and_pause() {
    let gh = fake().await;
    let faults = Faults { latency: Duration::from_millis(300), concurrency_cap: Some((2, 1)), ..Faults::default() };
    gh.set_faults(faults);
    let token = mint(&gh).await;
    let url = format!("{}/user/1", gh.url());
    let burst: Vec<_> = (0..5)
        .map(|_| {
            let (url, token) = (url.clone(), token.clone());
            tokio::spawn(async move { get(url, &token).await })
        })
        .collect();
    let mut codes = Vec::new();
    for h in burst {
        let resp = h.await.unwrap();
        let code = resp.status().as_u16();
        if code == 403 {
            assert_eq!(header(&resp, "retry-after"), "1");
            let body: Value = resp.json().await.unwrap();
            assert!(body["message"].as_str().unwrap().contains("secondary rate limit"));
        }
        codes.push(code);
    }
    codes.sort();
    assert_eq!(codes, [200, 200, 403, 403, 403]);
    assert_eq!(gh.stats().on_paused, 0, "in-flight requests are not violations");
    gh.set_faults(Faults { concurrency_cap: Some((2, 1)), ..Faults::default() });
    // Right after the pause started (inside the 250 ms grace): refused, not counted.
    assert_eq!(get(url.clone(), &token).await.status(), 403);
    assert_eq!(gh.stats().on_paused, 0);
    // Well after the pause started but before it ends: a violation.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(get(url.clone(), &token).await.status(), 403);
    assert_eq!(gh.stats().on_paused, 1);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(get(url, &token).await.status(), 200);
}

#[tokio::test]
async fn a_tokens_points_per_minute_are_a_secondary_limit_per_resource() {
    let gh = fake().await;
    assert_eq!(gh.faults().points_per_minute, Some((900, 2_000)), "GitHub's documented figures by default");
    gh.set_faults(Faults { points_per_minute: Some((3, 2)), ..Faults::default() });
    let (token, other) = (mint(&gh).await, mint(&gh).await);
    let url = format!("{}/user/1", gh.url());
    for _ in 0..3 {
        assert_eq!(get(url.clone(), &token).await.status(), 200);
    }
    let over = get(url.clone(), &token).await;
    assert_eq!(over.status(), 403, "the fourth REST request of the minute");
    let wait: u64 = header(&over, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&wait), "retry-after {wait}: until the first request leaves the minute");
    let body: Value = over.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("secondary rate limit"));
    assert_eq!(gh.stats().over_per_minute, 1);
    // Another token has a minute of its own.
    assert_eq!(get(url, &other).await.status(), 200);
    // GraphQL counts apart: two queries on the other token, then a refusal.
    let ids = [gh.user(1).unwrap().node_id];
    assert_eq!(graphql(&gh, &other, QUERY, &ids).await.status(), 200);
    assert_eq!(graphql(&gh, &other, QUERY, &ids).await.status(), 200);
    assert_eq!(graphql(&gh, &other, QUERY, &ids).await.status(), 403);
    assert_eq!(gh.stats().over_per_minute, 2);
}

#[tokio::test]
async fn server_errors_are_502_and_not_charged() {
    let gh = fake().await;
    let token = mint(&gh).await;
    gh.set_faults(Faults { server_error_rate: 1.0, ..Faults::default() });
    let resp = get(format!("{}/user/1", gh.url()), &token).await;
    assert_eq!(resp.status(), 502);
    gh.set_faults(Faults::default());
    let resp = get(format!("{}/user/1", gh.url()), &token).await;
    assert_eq!(header(&resp, "x-ratelimit-remaining"), "4999");
    assert_eq!(gh.stats().statuses[&502], 1);
}

#[tokio::test]
async fn graphql_nodes_cost_not_found_and_errors() {
    let gh = fake().await;
    for id in 4..=100 {
        gh.add_user(FakeUser::sample(id));
    }
    let token = mint(&gh).await;
    let ids: Vec<String> = (1..=100).map(|id| gh.user(id).unwrap().node_id).collect();
    gh.remove_user(7);
    let resp = graphql(&gh, &token, QUERY, &ids).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-ratelimit-resource"), "graphql");
    assert_eq!(header(&resp, "x-ratelimit-remaining"), "4997");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["rateLimit"]["cost"], 3);
    assert_eq!(body["data"]["nodes"].as_array().unwrap().len(), 100);
    assert_eq!(body["data"]["nodes"][0]["login"], "user1");
    assert_eq!(body["data"]["nodes"][0]["databaseId"], 1);
    assert_eq!(body["data"]["nodes"][6], Value::Null);
    assert_eq!(body["errors"][0]["type"], "NOT_FOUND");
    assert_eq!(body["errors"][0]["path"], json!(["nodes", 6]));
    let stats = gh.stats();
    assert_eq!((stats.points_graphql, stats.graphql_nodes_requested), (3, 100));
}

#[tokio::test]
async fn graphql_small_batch_argument_limit_and_forbidden() {
    let gh = fake().await;
    let token = mint(&gh).await;
    let ids: Vec<String> = (1..=3).map(|id| gh.user(id).unwrap().node_id).collect();
    // Small batch, no rateLimit selection: cost 1, no rateLimit key.
    let small = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }";
    let body: Value = graphql(&gh, &token, small, &ids[..2]).await.json().await.unwrap();
    assert!(body["data"].get("rateLimit").is_none());
    assert_eq!(gh.stats().points_graphql, 1);

    let too_many: Vec<String> = (0..101).map(|i| format!("U_x{i}")).collect();
    let body: Value = graphql(&gh, &token, QUERY, &too_many).await.json().await.unwrap();
    assert_eq!(body["errors"][0]["type"], "ARGUMENT_LIMIT");
    assert_eq!(body["errors"][0]["message"], "You may not provide more than 100 node ids; you provided 101.");

    gh.set_faults(Faults { graphql_forbidden: true, ..Faults::default() });
    let body: Value = graphql(&gh, &token, QUERY, &ids[..1]).await.json().await.unwrap();
    assert_eq!(body["errors"][0]["type"], "FORBIDDEN");
    assert_eq!(body["data"], Value::Null);
    assert_eq!(gh.stats().points_graphql, 2);
}

#[tokio::test]
async fn graphql_over_budget_is_rate_limited_in_band() {
    let gh = fake().await;
    gh.set_faults(Faults { rate_limit: 1, ..Faults::default() });
    let token = mint(&gh).await;
    let ids = vec![gh.user(1).unwrap().node_id];
    assert_eq!(graphql(&gh, &token, QUERY, &ids).await.status(), 200);
    let resp = graphql(&gh, &token, QUERY, &ids).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-ratelimit-remaining"), "0");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["type"], "RATE_LIMITED");
    assert_eq!(gh.stats().on_exhausted, 1);
    // /rate_limit is free and shows both buckets.
    let rl: Value = get(format!("{}/rate_limit", gh.url()), &token).await.json().await.unwrap();
    assert_eq!(rl["resources"]["graphql"]["remaining"], 0);
    assert_eq!(rl["resources"]["core"]["remaining"], 1);
}
