//! Reconciler benchmark against the fake GitHub with 50 ms of latency on
//! every request. Prints:
//! - rate-limit points per 1,000 users: first pass, 10 % changed, nothing changed;
//! - wall time for 20,000 users: first pass and unchanged re-run;
//! - peak RSS and wall time of `ghsync reconcile` (a child process) for an
//!   unchanged pass over 100,000 and 1,000,000 users;
//! - for each, the requests GitHub would have refused (spent, paused or
//!   expired tokens; over a token's per-minute points): all should be 0.
//!
//! Run: `cargo bench --bench reconcile` (add `-- --skip-million` to leave out
//! the slowest part). Goals (issue 11): ≤ 135 points / 1,000 users with 10 %
//! changed, ≤ 35 unchanged; 20,000 users < 25 s first pass, < 3 s unchanged;
//! 1,000,000 unchanged < 60 s with RSS < 100 MB.

use std::time::{Duration, Instant};

use chrono::Utc;
use fake_github::{DEMO_APP_PUBLIC_KEY, FakeConfig, FakeGitHub, FakeStats, FakeUser, Faults};
use ghsync::app::App;
use ghsync::cli::RawSettings;
use ghsync::config::{Needs, Settings};
use ghsync::domain::KeyFields;
use ghsync::github::{GitHubSettings, GovernorSettings};
use sqlx::Connection;

const APP_ID: u64 = 7;
/// `ghsync reconcile` runs as a child process and reads the key from a file.
const KEY_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fake-github/fixtures/demo-app-key.pem");
const LATENCY: Duration = Duration::from_millis(50);

async fn fake() -> anyhow::Result<FakeGitHub> {
    let fake = FakeGitHub::start(FakeConfig { app_id: APP_ID, app_public_key_pem: DEMO_APP_PUBLIC_KEY.into() }).await?;
    fake.set_faults(Faults { latency: LATENCY, ..Faults::default() });
    Ok(fake)
}

fn settings(db: &str, fake: &FakeGitHub) -> anyhow::Result<Settings> {
    let raw =
        RawSettings { database_url: Some(db.into()), ghsync_listen: Some("127.0.0.1:0".into()), ..Default::default() };
    let mut settings = Settings::load(&raw, Needs::DatabaseOnly)?;
    settings.github = Some(GitHubSettings {
        app_id: APP_ID,
        private_key: octocrab::jsonwebtoken::EncodingKey::from_rsa_pem(&std::fs::read(KEY_PATH)?)?,
        api_url: fake.url().parse()?,
        graphql_url: fake.graphql_url().parse()?,
        limits: GovernorSettings::default(),
    });
    settings.sync.schedule = false;
    // Every user is due again as soon as a pass is over: each pass below walks them all.
    settings.sync.stale_after = Duration::ZERO;
    Ok(settings)
}

/// What GitHub would have held against us: requests on a spent, paused or
/// expired token, and over a token's per-minute points (the fake enforces
/// GitHub's 900 REST and 2,000 GraphQL per token, `Faults::points_per_minute`).
fn violations(s: &FakeStats) -> String {
    format!(
        "on spent/paused/expired tokens {}/{}/{}, over a per-minute limit {}",
        s.on_exhausted, s.on_paused, s.on_expired, s.over_per_minute
    )
}

fn points(before: &FakeStats, after: &FakeStats) -> (u64, u64) {
    (after.points_core - before.points_core, after.points_graphql - before.points_graphql)
}

/// Users, each with an installation of their own, as when every user installs the App.
fn seed(fake: &FakeGitHub, users: i64) {
    for id in 1..=users {
        fake.add_user(FakeUser::sample(id));
        fake.add_installation(id, id);
    }
}

async fn pass(app: &App) -> anyhow::Result<Duration> {
    let passes = app.state().passes.clone().expect("configured");
    let started = Instant::now();
    let report = passes.run_pass("bench", &tokio_util::sync::CancellationToken::new()).await?;
    anyhow::ensure!(report.counts.failed == 0, "no failures expected: {:?}", report.counts);
    Ok(started.elapsed())
}

async fn cost_per_thousand(dir: &std::path::Path) -> anyhow::Result<()> {
    let fake = fake().await?;
    seed(&fake, 1000);
    let app = App::build(settings(&format!("sqlite://{}/cost.db", dir.display()), &fake)?).await?;
    let s0 = fake.stats();
    pass(&app).await?;
    let s1 = fake.stats();
    for id in (1..=1000).step_by(10) {
        fake.edit_user(id, |u| u.followers += 1);
    }
    pass(&app).await?;
    let s2 = fake.stats();
    pass(&app).await?;
    let s3 = fake.stats();
    for (name, (core, graphql)) in
        [("first pass", points(&s0, &s1)), ("10 % changed", points(&s1, &s2)), ("nothing changed", points(&s2, &s3))]
    {
        println!("points per 1,000 users, {name:<16} {:>5} (core {core}, graphql {graphql})", core + graphql);
    }
    println!("installation tokens minted for those three passes: {}", s3.tokens_minted - s0.tokens_minted);
    println!("requests GitHub would refuse, those three passes: {}", violations(&s3));
    Ok(())
}

async fn twenty_thousand(dir: &std::path::Path) -> anyhow::Result<()> {
    let fake = fake().await?;
    seed(&fake, 20_000);
    let app = App::build(settings(&format!("sqlite://{}/wall.db", dir.display()), &fake)?).await?;
    let first = pass(&app).await?;
    let s1 = fake.stats();
    let unchanged = pass(&app).await?;
    let s2 = fake.stats();
    println!(
        "20,000 users: first pass {:.1} s ({} tokens minted), unchanged re-run {:.1} s ({} more tokens)",
        first.as_secs_f64(),
        s1.tokens_minted,
        unchanged.as_secs_f64(),
        s2.tokens_minted - s1.tokens_minted
    );
    println!("requests GitHub would refuse, those two passes: {}", violations(&s2));
    Ok(())
}

/// `users` users tracked without installations of their own (linked accounts),
/// read with the tokens of 100 installations; all known and unchanged.
async fn populate(db: &str, fake: &FakeGitHub, users: i64) -> anyhow::Result<()> {
    ghsync::store::open(&ghsync::config::DatabaseSettings { url: db.to_owned().into() }).await?;
    let mut conn = sqlx::SqliteConnection::connect(db).await?;
    let long_ago = Utc::now() - chrono::Duration::days(1);
    for chunk_start in (1..=users).step_by(10_000) {
        let mut tx = conn.begin().await?;
        for id in chunk_start..(chunk_start + 10_000).min(users + 1) {
            let u = FakeUser::sample(id);
            let hash = KeyFields {
                login: u.login.clone(),
                name: u.name.clone(),
                avatar_url: u.avatar_url.clone(),
                bio: u.bio.clone(),
                company: u.company.clone(),
                blog: u.blog.clone(),
                location: u.location.clone(),
                email: u.email.clone(),
                twitter_username: u.twitter_username.clone(),
                public_repos: u.public_repos,
                followers: u.followers,
                following: u.following,
            }
            .hash();
            let installation = (id <= 100).then_some(id);
            sqlx::query(
                "INSERT INTO users (github_id, node_id, login, status, sync_enabled, installation_id, profile_hash, \
                 observed_hash, last_synced_at, next_sync_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, 'active', TRUE, $4, $5, $5, $6, $6, $6, $6)",
            )
            .bind(id)
            .bind(&u.node_id)
            .bind(&u.login)
            .bind(installation)
            .bind(hash.as_str())
            .bind(long_ago)
            .execute(&mut *tx)
            .await?;
            if id <= 100 {
                sqlx::query("INSERT INTO installations (id, account_id, account_login, account_type, state, seen_at, created_at, updated_at) VALUES ($1, $1, $2, 'User', 'active', $3, $3, $3)")
                    .bind(id).bind(&u.login).bind(long_ago).execute(&mut *tx).await?;
                fake.add_installation(id, id);
            }
            fake.add_user(u);
        }
        tx.commit().await?;
    }
    Ok(())
}

/// Peak RSS (VmHWM) of `ghsync reconcile` over an unchanged pass.
async fn rss(dir: &std::path::Path, users: i64) -> anyhow::Result<()> {
    let fake = fake().await?;
    let db = format!("sqlite://{}/rss-{users}.db", dir.display());
    let started = Instant::now();
    populate(&db, &fake, users).await?;
    let seeded = started.elapsed();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ghsync"))
        .arg("reconcile")
        .env("DATABASE_URL", &db)
        .env("GITHUB_APP_ID", APP_ID.to_string())
        .env("GITHUB_APP_PRIVATE_KEY_PATH", KEY_PATH)
        .env("GITHUB_API_URL", fake.url())
        .env("GHSYNC_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let pid = child.id().expect("running");
    let started = Instant::now();
    let mut peak_kb = 0u64;
    let status = loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            let hwm = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok());
            peak_kb = peak_kb.max(hwm.unwrap_or(0));
        }
        tokio::select! {
            status = child.wait() => break status?,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    };
    let took = started.elapsed();
    let output = child.wait_with_output().await?;
    anyhow::ensure!(status.success(), "reconcile failed: {status}");
    let stats = fake.stats();
    println!(
        "{users:>9} users, unchanged pass: peak RSS {:.1} MB, {:.1} s, {} GraphQL points ({:.1} per 1,000), {} REST fetches, {} tokens minted (seeded in {:.0} s); {}",
        peak_kb as f64 / 1024.0,
        took.as_secs_f64(),
        stats.points_graphql,
        stats.points_graphql as f64 * 1000.0 / users as f64,
        stats.rest_user_fetches,
        stats.tokens_minted,
        seeded.as_secs_f64(),
        violations(&stats)
    );
    print!("{}", String::from_utf8_lossy(&output.stdout));
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let skip_million = std::env::args().any(|a| a == "--skip-million");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let dir = tempfile::tempdir()?;
        cost_per_thousand(dir.path()).await?;
        twenty_thousand(dir.path()).await?;
        rss(dir.path(), 100_000).await?;
        if !skip_million {
            rss(dir.path(), 1_000_000).await?;
        }
        Ok(())
    })
}
