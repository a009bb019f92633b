//! `ghsync setup`: the App manifest flow against the fake GitHub.

use fake_github::{DEMO_APP_PUBLIC_KEY, FakeConfig, FakeGitHub, MANIFEST_WEBHOOK_SECRET};
use ghsync::commands::{SetupOptions, start_setup};

use crate::helpers::APP_ID;

#[tokio::test]
async fn the_manifest_flow_writes_the_new_apps_credentials_and_nothing_for_a_stranger() {
    let github =
        FakeGitHub::start(FakeConfig { app_id: APP_ID, app_public_key_pem: DEMO_APP_PUBLIC_KEY.into() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/app-manifest.json"), dir.path().join("app-manifest.json"))
        .unwrap();
    std::fs::write(dir.path().join(".env"), "GHSYNC_LOG=debug\nGITHUB_APP_ID=1\n").unwrap();
    let running = start_setup(SetupOptions {
        dir: dir.path().to_owned(),
        api: github.url().parse().unwrap(),
        listen: "127.0.0.1:0".parse().unwrap(),
        public_url: None,
        org: None,
    })
    .await
    .unwrap();
    let base = format!("http://127.0.0.1:{}", running.port);
    let client = reqwest::Client::new();

    let page = client.get(&base).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("settings/apps/new?state="), "the form posts to GitHub's new-App page: {page}");
    assert!(
        page.contains(&format!("localhost:{}/setup/callback", running.port)),
        "the manifest says where to come back"
    );
    assert!(page.contains("/webhooks/github"), "and where to send webhooks");

    let stranger = client.get(format!("{base}/setup/callback?code=abc&state=not-ours")).send().await.unwrap();
    assert_eq!(stranger.status().as_u16(), 400);
    assert_eq!(std::fs::read_to_string(dir.path().join(".env")).unwrap(), "GHSYNC_LOG=debug\nGITHUB_APP_ID=1\n");

    let state = running.state.clone();
    let back = client.get(format!("{base}/setup/callback?code=abc&state={state}")).send().await.unwrap();
    assert_eq!(back.status().as_u16(), 200);
    let app = running.finished().await.unwrap();
    assert_eq!(app.id, APP_ID);

    let env = std::fs::read_to_string(dir.path().join(".env")).unwrap();
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
        assert_eq!(std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
