//! The fake GitHub's own tests, through its public API and over HTTP as
//! ghsync sees it (the fake is a crate of its own; its tests live in this one
//! test binary): auth, user routes and pagination here, limits and faults in
//! `limits.rs`, webhooks in `webhooks.rs`; plus the helpers (`fake`, `jwt`,
//! `mint`) they share.

mod limits;
mod webhooks;

use chrono::Utc;
use fake_github::{DEMO_APP_KEY, DEMO_APP_PUBLIC_KEY, FakeConfig, FakeGitHub, FakeUser, payloads};
use octocrab::jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use crate::helpers::WRONG_KEY;

pub const APP_ID: u64 = 4242;

/// A fake with users 1..=3 and installation 100 on user 1.
pub async fn fake() -> FakeGitHub {
    let gh = FakeGitHub::start(FakeConfig { app_id: APP_ID, app_public_key_pem: DEMO_APP_PUBLIC_KEY.into() })
        .await
        .expect("fake starts");
    for id in 1..=3 {
        gh.add_user(FakeUser::sample(id));
    }
    gh.add_installation(100, 1);
    gh
}

/// An App JWT signed with `key` (a PEM), times relative to now.
pub fn jwt(key: &str, iss: Value, iat: i64, exp: i64) -> String {
    let key = EncodingKey::from_rsa_pem(key.as_bytes()).expect("key parses");
    let now = Utc::now().timestamp();
    let claims = json!({ "iat": now + iat, "exp": now + exp, "iss": iss });
    encode(&Header::new(Algorithm::RS256), &claims, &key).expect("jwt signs")
}

pub fn good_jwt() -> String {
    jwt(DEMO_APP_KEY, json!(APP_ID), -60, 540)
}

/// Mint an installation token for installation 100.
pub async fn mint(gh: &FakeGitHub) -> String {
    let resp = reqwest::Client::new()
        .post(format!("{}/app/installations/100/access_tokens", gh.url()))
        .bearer_auth(good_jwt())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    body["token"].as_str().unwrap().to_string()
}

pub async fn get(url: String, token: &str) -> reqwest::Response {
    reqwest::Client::new().get(url).header("authorization", format!("token {token}")).send().await.unwrap()
}

pub fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers().get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

#[tokio::test]
async fn jwt_accepted_with_demo_key_and_rejected_otherwise() {
    let gh = fake().await;
    let client = reqwest::Client::new();
    let list = |jwt: String| client.get(format!("{}/app/installations", gh.url())).bearer_auth(jwt).send();
    assert_eq!(list(good_jwt()).await.unwrap().status(), 200);
    // iss as a numeric string is accepted too.
    assert_eq!(list(jwt(DEMO_APP_KEY, json!("4242"), -60, 540)).await.unwrap().status(), 200);
    let wrong = list(jwt(WRONG_KEY, json!(APP_ID), -60, 540)).await.unwrap();
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["message"], "A JSON web token could not be decoded");
    let bad = [
        jwt(DEMO_APP_KEY, json!(APP_ID + 1), -60, 540), // wrong app
        jwt(DEMO_APP_KEY, json!(APP_ID), -60, 700),     // exp too far
        jwt(DEMO_APP_KEY, json!(APP_ID), -600, -10),    // expired
        jwt(DEMO_APP_KEY, json!(APP_ID), 120, 540),     // iat in the future
    ];
    for j in bad {
        assert_eq!(list(j).await.unwrap().status(), 401);
    }
    let token = mint(&gh).await;
    assert_eq!(list(token).await.unwrap().status(), 401, "installation token on /app");
    let stats = gh.stats();
    assert_eq!(stats.jwt_rejected, 6);
    assert_eq!(stats.tokens_minted, 1);
    assert_eq!(stats.requests["list_installations"], 8);
}

#[tokio::test]
async fn mint_rules_unknown_and_suspended() {
    let gh = fake().await;
    let client = reqwest::Client::new();
    let post = |id: i64| {
        client.post(format!("{}/app/installations/{id}/access_tokens", gh.url())).bearer_auth(good_jwt()).send()
    };
    assert_eq!(post(999).await.unwrap().status(), 404);
    gh.set_installation_suspended(100, true);
    assert_eq!(post(100).await.unwrap().status(), 403);
    assert!(!gh.installation_payload(100)["suspended_at"].is_null());
    gh.set_installation_suspended(100, false);
    let resp = post(100).await.unwrap();
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    assert!(body["token"].as_str().unwrap().starts_with("ghs_"));
    assert!(body["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["repository_selection"], "all");
}

/// Keys of the corpus's `public-user` example, which GitHub answers with.
const PUBLIC_USER_KEYS: [&str; 32] = [
    "login",
    "id",
    "node_id",
    "avatar_url",
    "gravatar_id",
    "url",
    "html_url",
    "followers_url",
    "following_url",
    "gists_url",
    "starred_url",
    "subscriptions_url",
    "organizations_url",
    "repos_url",
    "events_url",
    "received_events_url",
    "type",
    "site_admin",
    "name",
    "company",
    "blog",
    "location",
    "email",
    "hireable",
    "bio",
    "twitter_username",
    "public_repos",
    "public_gists",
    "followers",
    "following",
    "created_at",
    "updated_at",
];

#[tokio::test]
async fn user_routes_shape_headers_etag_and_404() {
    let gh = fake().await;
    let token = mint(&gh).await;
    let first = get(format!("{}/user/2", gh.url()), &token).await;
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "x-ratelimit-limit"), "5000");
    assert_eq!(header(&first, "x-ratelimit-remaining"), "4999");
    assert_eq!(header(&first, "x-ratelimit-used"), "1");
    assert_eq!(header(&first, "x-ratelimit-resource"), "core");
    let reset: i64 = header(&first, "x-ratelimit-reset").parse().unwrap();
    assert!(reset >= Utc::now().timestamp() + 3590);
    let etag = header(&first, "etag");
    let body: Value = first.json().await.unwrap();
    let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = PUBLIC_USER_KEYS.to_vec();
    want.sort();
    assert_eq!(keys, want);
    assert_eq!(body["login"], "user2");
    assert_eq!(body["node_id"], FakeUser::sample(2).node_id);

    let second = get(format!("{}/users/USER2", gh.url()), &token).await;
    assert_eq!(second.status(), 200);
    assert_eq!(header(&second, "x-ratelimit-remaining"), "4998");

    let cond = reqwest::Client::new()
        .get(format!("{}/user/2", gh.url()))
        .bearer_auth(&token)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cond.status(), 304);
    assert_eq!(header(&cond, "x-ratelimit-remaining"), "4998", "304 is free");

    let stats = gh.stats();
    assert_eq!(stats.rest_user_fetches, 2);
    assert_eq!(stats.points_core, 2);
    assert_eq!(stats.statuses[&304], 1);
    assert_eq!(stats.requests["get_user"], 2);
    assert_eq!(stats.requests["get_user_by_login"], 1);
}

#[tokio::test]
async fn removed_user_is_charged_404_and_bad_token_401() {
    let gh = fake().await;
    let token = mint(&gh).await;
    gh.remove_user(2);
    let gone = get(format!("{}/user/2", gh.url()), &token).await;
    assert_eq!(gone.status(), 404);
    assert_eq!(header(&gone, "x-ratelimit-remaining"), "4999", "404 is charged");
    let body: Value = gone.json().await.unwrap();
    assert_eq!(body["status"], "404");
    assert_eq!(get(format!("{}/user/1", gh.url()), "ghs_made_up").await.status(), 401);

    assert_eq!(gh.stats().points_core, 1);
}

#[test]
fn node_ids_match_github_format() {
    // Real: octocat (583231) is U_kgDOAAjmPw in the next-id format.
    assert_eq!(FakeUser::sample(583231).node_id, "U_kgDOAAjmPw");
    // The legacy format: base64 of "023:IntegrationInstallation1" (28 bytes, so padded).
    assert_eq!(payloads::installation_node_id(1), "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ==");
}

#[tokio::test]
async fn installation_pagination_links_are_absolute_and_complete() {
    let gh = fake().await;
    gh.remove_installation(100);
    for id in 1..=250 {
        gh.add_installation(id, 1);
    }
    let client = reqwest::Client::new();
    let page = |p: usize| {
        client.get(format!("{}/app/installations?per_page=100&page={p}", gh.url())).bearer_auth(good_jwt()).send()
    };
    let base = format!("{}/app/installations?per_page=100", gh.url());
    let first = page(1).await.unwrap();
    assert_eq!(header(&first, "link"), format!("<{base}&page=2>; rel=\"next\", <{base}&page=3>; rel=\"last\""));
    let items: Vec<Value> = first.json().await.unwrap();
    assert_eq!(items.len(), 100);
    assert_eq!(items[0]["id"], 1);
    assert_eq!(items[0]["account"]["login"], "user1");
    assert_eq!(items[0]["target_type"], "User");
    assert_eq!(items[0]["app_id"], APP_ID);
    let middle = page(2).await.unwrap();
    assert_eq!(
        header(&middle, "link"),
        format!(
            "<{base}&page=1>; rel=\"prev\", <{base}&page=3>; rel=\"next\", \
             <{base}&page=3>; rel=\"last\", <{base}&page=1>; rel=\"first\""
        )
    );
    let last = page(3).await.unwrap();
    assert_eq!(header(&last, "link"), format!("<{base}&page=2>; rel=\"prev\", <{base}&page=1>; rel=\"first\""));
    let items: Vec<Value> = last.json().await.unwrap();
    assert_eq!(items.len(), 50);
}
