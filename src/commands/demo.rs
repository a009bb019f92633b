//! `ghsync demo`: the whole service on a local SQLite file against the in-repo
//! fake GitHub — no account, no network. A few dozen fake users install the
//! App (signed webhooks, as GitHub sends them), ghsync fetches their profiles,
//! and the demo says where to look. Built only with the `demo` feature (on by
//! default): the fake is a crate of its own, left out of production builds.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::Utc;
use secrecy::SecretString;

use crate::app::App;
use crate::cli::DemoArgs;
use crate::config::{Settings, WebhookSettings};
use crate::domain::UserStatus;
use crate::github::{GitHubSettings, GovernorSettings};
use fake_github::{DEMO_APP_KEY, DEMO_APP_PUBLIC_KEY, FakeConfig, FakeGitHub, FakeUser, payloads};

const DEMO_APP_ID: u64 = 1;
const DEMO_SECRET: &str = "demo-webhook-secret";
const DEMO_ADMIN_TOKEN: &str = "demo-admin-token";

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

pub async fn demo(settings: Settings, args: DemoArgs) -> anyhow::Result<()> {
    let fake =
        FakeGitHub::start(FakeConfig { app_id: DEMO_APP_ID, app_public_key_pem: DEMO_APP_PUBLIC_KEY.to_owned() })
            .await?;
    for id in 1..=args.users as i64 {
        fake.add_user(FakeUser::sample(1000 + id));
    }
    let settings = demo_settings(settings, &fake)?;
    let listen = settings.http.listen;
    let app = App::build(settings).await?;
    let state = app.state();
    let base = format!("http://{}:{}", listen.ip(), app.port());
    crate::shutdown::watch(app.shutdown_token());
    let running = tokio::spawn(app.run_until_stopped());

    fake.set_webhook_target(&format!("{base}/webhooks/github"), DEMO_SECRET);
    println!("fake GitHub at {}; ghsync at {base}", fake.url());
    for id in 1..=args.users as i64 {
        let user_id = 1000 + id;
        fake.add_installation(user_id, user_id);
        let user = fake.user(user_id).expect("added above");
        let event = payloads::installation_event("created", &fake.installation_payload(user_id), &user);
        fake.deliver("installation", &event).await?;
    }
    println!("{} users installed the demo App; waiting for their profiles…", args.users);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let synced = futures_util::future::join_all((1..=args.users as i64).map(|id| {
            let store = state.store.clone();
            async move {
                let user = store.user_by_id(crate::domain::GitHubUserId::new(1000 + id).ok()?).await.ok()??;
                (user.status == UserStatus::Active && user.last_synced_at.is_some()).then_some(())
            }
        }))
        .await
        .into_iter()
        .flatten()
        .count();
        if synced == args.users || tokio::time::Instant::now() > deadline {
            println!("{synced}/{} profiles synced at {}", args.users, Utc::now().format("%H:%M:%S"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let auth = format!("-H 'Authorization: Bearer {DEMO_ADMIN_TOKEN}'");
    println!("\nTry:");
    println!("  curl {auth} {base}/api/users/user1001");
    println!("  curl {auth} {base}/api/users/by-id/1002");
    println!("  curl {auth} {base}/admin/health");
    println!("  curl {auth} -X POST {base}/admin/reconcile && curl {auth} {base}/admin/runs");
    println!("  curl {base}/metrics");
    if args.exit_when_synced {
        state.shutdown.cancel();
    } else {
        println!("\nCtrl-C to stop.");
    }
    running.await??;
    fake.stop();
    Ok(())
}
