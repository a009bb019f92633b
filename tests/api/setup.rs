//! `ghsync setup`: the App manifest flow against the fake GitHub. The page
//! answers only to the token printed on the terminal, the callback only to
//! the state on that page, and the credentials land in files only their
//! owner can read.

use fake_github::{DEMO_APP_PUBLIC_KEY, FakeConfig, FakeGitHub, MANIFEST_WEBHOOK_SECRET};
use ghsync::commands::{RunningSetup, SetupOptions, start_setup};
use serde_json::Value;

use crate::helpers::APP_ID;

async fn start(github: &FakeGitHub, dir: &std::path::Path) -> RunningSetup {
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/app-manifest.json"), dir.join("app-manifest.json")).unwrap();
    start_setup(SetupOptions {
        dir: dir.to_owned(),
        api: github.url().parse().unwrap(),
        listen: "127.0.0.1:0".parse().unwrap(),
        public_url: None,
        org: None,
    })
    .await
    .unwrap()
}

/// The text between `start` and the next `"` (the page's attributes are quoted).
fn attribute_after<'a>(page: &'a str, start: &str) -> &'a str {
    let from = page.find(start).unwrap_or_else(|| panic!("{start:?} not in the page: {page}")) + start.len();
    &page[from..from + page[from..].find('"').unwrap()]
}

fn unescape_html(text: &str) -> String {
    text.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

#[tokio::test]
async fn the_page_needs_the_printed_token_and_the_callback_needs_its_state() {
    let github =
        FakeGitHub::start(FakeConfig { app_id: APP_ID, app_public_key_pem: DEMO_APP_PUBLIC_KEY.into() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let running = start(&github, dir.path()).await;
    let base = format!("http://127.0.0.1:{}", running.port);
    let client = reqwest::Client::new();
    assert_eq!(running.page_url.as_str(), format!("http://localhost:{}/?token={}", running.port, running.token));

    for (who, url) in [("no token", format!("{base}/")), ("a wrong token", format!("{base}/?token=0123abcd"))] {
        let answer = client.get(&url).send().await.unwrap();
        assert_eq!(answer.status().as_u16(), 403, "{who}");
        let body = answer.text().await.unwrap();
        assert!(!body.contains("state="), "{who} sees no state: {body}");
    }
    let almost = format!("{base}/?token={}", &running.token[..running.token.len() - 1]);
    assert_eq!(client.get(&almost).send().await.unwrap().status().as_u16(), 403, "a prefix of the token");

    let page = client.get(format!("{base}/?token={}", running.token)).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert_eq!(page.headers()["referrer-policy"], "no-referrer", "the token stays out of GitHub's logs");
    let page = page.text().await.unwrap();
    let state = attribute_after(&page, "settings/apps/new?state=");
    assert_eq!(state.len(), 64, "a random state: {state}");

    let stranger = client.get(format!("{base}/setup/callback?code=abc&state=not-ours")).send().await.unwrap();
    assert_eq!(stranger.status().as_u16(), 403);
    let no_state = client.get(format!("{base}/setup/callback?code=abc")).send().await.unwrap();
    assert_eq!(no_state.status().as_u16(), 403);
    assert!(!dir.path().join(".env").exists(), "nothing written for a stranger");

    let back = client.get(format!("{base}/setup/callback?code=abc&state={state}")).send().await.unwrap();
    assert_eq!(back.status().as_u16(), 200);
    assert_eq!(running.finished().await.unwrap().id, APP_ID);
}

#[tokio::test]
async fn the_page_sends_github_the_manifest_with_this_runs_urls_filled_in() {
    let github =
        FakeGitHub::start(FakeConfig { app_id: APP_ID, app_public_key_pem: DEMO_APP_PUBLIC_KEY.into() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let running = start(&github, dir.path()).await;
    let page = reqwest::get(running.page_url.clone()).await.unwrap().text().await.unwrap();
    let manifest: Value =
        serde_json::from_str(&unescape_html(attribute_after(&page, "name=\"manifest\" value=\""))).unwrap();
    assert_eq!(crate::manifest::problems(&manifest), Vec::<String>::new(), "{manifest}");
    let base = format!("http://localhost:{}", running.port);
    assert_eq!(manifest["url"], base.as_str(), "the placeholder homepage is replaced");
    assert_eq!(manifest["redirect_url"], format!("{base}/setup/callback"));
    assert_eq!(manifest["hook_attributes"]["url"], format!("{base}/webhooks/github"));
    assert_eq!(manifest["public"], true);
}

#[tokio::test]
async fn the_credentials_are_written_for_the_owner_only_and_other_lines_kept() {
    let github =
        FakeGitHub::start(FakeConfig { app_id: APP_ID, app_public_key_pem: DEMO_APP_PUBLIC_KEY.into() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env_path = dir.path().join(".env");
    std::fs::write(&env_path, "GHSYNC_LOG=debug\nGITHUB_APP_ID=1\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&env_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let running = start(&github, dir.path()).await;
    let page = reqwest::get(running.page_url.clone()).await.unwrap().text().await.unwrap();
    let state = attribute_after(&page, "settings/apps/new?state=").to_owned();
    let callback = format!("http://127.0.0.1:{}/setup/callback?code=abc&state={state}", running.port);
    assert_eq!(reqwest::get(&callback).await.unwrap().status().as_u16(), 200);
    let app = running.finished().await.unwrap();
    assert_eq!(app.id, APP_ID);

    let env = std::fs::read_to_string(&env_path).unwrap();
    assert!(env.contains("GHSYNC_LOG=debug"), "other lines are kept: {env}");
    assert!(env.contains(&format!("GITHUB_APP_ID={APP_ID}\n")) && !env.contains("GITHUB_APP_ID=1\n"), "{env}");
    assert!(env.contains(&format!("GITHUB_WEBHOOK_SECRET=\"{MANIFEST_WEBHOOK_SECRET}\"")), "{env}");
    let key_path = dir.path().join(format!("ghsync-app-{APP_ID}.pem"));
    assert!(env.contains(&format!("GITHUB_APP_PRIVATE_KEY_PATH=\"{}\"", key_path.display())), "{env}");
    let key = std::fs::read(&key_path).unwrap();
    assert!(octocrab::jsonwebtoken::EncodingKey::from_rsa_pem(&key).is_ok());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&key_path), 0o600, "the key");
        assert_eq!(mode(&env_path), 0o600, "the .env that was 0644 holds the webhook secret now");
    }
}
