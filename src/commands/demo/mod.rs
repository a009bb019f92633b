//! `ghsync demo`: the whole service on a local SQLite file against the in-repo
//! fake GitHub — no account, no network. A few hundred fake users install the
//! App and then live a little (`story.rs`); the demo prints what happened and
//! how ghsync answered, then where to look, and serves until Ctrl-C. Built only
//! with the `demo` feature (on by default): the fake is a crate of its own,
//! left out of production builds.

mod story;

use std::net::SocketAddr;

use secrecy::SecretString;

use crate::app::App;
use crate::cli::{DEMO_DATABASE_URL, DemoArgs};
use crate::config::{Settings, WebhookSettings};
use crate::github::{GitHubSettings, GovernorSettings};
use fake_github::{DEMO_APP_KEY, DEMO_APP_PUBLIC_KEY, FakeConfig, FakeGitHub, FakeUser};

const DEMO_APP_ID: u64 = 1;
const DEMO_SECRET: &str = "demo-webhook-secret";
const DEMO_ADMIN_TOKEN: &str = "demo-admin-token";
/// The fake users' ids start after this (user1001, user1002, …).
const FIRST_ID: i64 = 1000;

/// The settings the demo runs with: its own database (`ghsync-demo.db`, or
/// `--database-url`: `main` never lets `DATABASE_URL` or `.env` reach it), the
/// listen address from `GHSYNC_LISTEN` (default 127.0.0.1:8080), everything
/// GitHub-related pointed at the fake.
fn demo_settings(mut settings: Settings, fake: &FakeGitHub) -> anyhow::Result<Settings> {
    let key = octocrab::jsonwebtoken::EncodingKey::from_rsa_pem(DEMO_APP_KEY.as_bytes())?;
    settings.github = Some(GitHubSettings {
        app_id: DEMO_APP_ID,
        private_key: key,
        api_url: fake.url().parse()?,
        graphql_url: fake.graphql_url().parse()?,
        limits: GovernorSettings::default(),
    });
    settings.webhook = WebhookSettings { secrets: vec![SecretString::from(DEMO_SECRET.to_owned())] };
    settings.http.admin_token = Some(SecretString::from(DEMO_ADMIN_TOKEN.to_owned()));
    if settings.http.listen.port() == 8080 && settings.http.listen.ip().is_unspecified() {
        settings.http.listen = SocketAddr::from(([127, 0, 0, 1], 8080));
    }
    Ok(settings)
}

/// The story starts from nothing: the default demo file (and only it) is
/// emptied, so a second run tells the same story as the first.
fn start_afresh(settings: &Settings) {
    if settings.database.redacted() == DEMO_DATABASE_URL {
        let file = DEMO_DATABASE_URL.trim_start_matches("sqlite://");
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{file}{suffix}"));
        }
    }
}

pub async fn demo(settings: Settings, args: DemoArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.users >= story::MIN_USERS, "--users: the story needs at least {}", story::MIN_USERS);
    let fake =
        FakeGitHub::start(FakeConfig { app_id: DEMO_APP_ID, app_public_key_pem: DEMO_APP_PUBLIC_KEY.to_owned() })
            .await?;
    for id in 1..=args.users as i64 {
        fake.add_user(FakeUser::sample(FIRST_ID + id));
    }
    let settings = demo_settings(settings, &fake)?;
    start_afresh(&settings);
    let listen = settings.http.listen;
    let app = App::build(settings).await?;
    let state = app.state();
    let base = format!("http://{}:{}", listen.ip(), app.port());
    crate::shutdown::watch(app.shutdown_token());
    let running = tokio::spawn(app.run_until_stopped());
    fake.set_webhook_target(&format!("{base}/webhooks/github"), DEMO_SECRET);
    println!("ghsync at {base}, against a fake GitHub at {}\n", fake.url());

    let told = story::tell(&fake, &state, args.users).await;
    if let Err(e) = &told {
        println!("the story stopped short: {e:#}");
    }
    urls(&base);
    if args.exit_when_synced || told.is_err() {
        state.shutdown.cancel();
    } else {
        println!("\nghsync keeps serving (the schedule, webhooks, the API): Ctrl-C to stop.");
    }
    running.await??;
    fake.stop();
    told
}

/// Where to look, the admin page first.
fn urls(base: &str) {
    let auth = format!("-H 'Authorization: Bearer {DEMO_ADMIN_TOKEN}'");
    println!("\nOpen:");
    println!("  {base}/admin            the admin page: sign in with the admin token {DEMO_ADMIN_TOKEN}");
    println!("  {base}/openapi.json     the API, described");
    println!("  {base}/metrics          Prometheus metrics");
    println!("Try:");
    println!("  curl {auth} {base}/api/users/user{}", FIRST_ID + 1);
    println!("  curl {auth} {base}/admin/health");
    println!("  curl {auth} -X POST {base}/admin/reconcile && curl {auth} {base}/admin/runs");
}
