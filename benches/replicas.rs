//! Several processes on one PostgreSQL database (needs `TEST_DATABASE_URL`):
//! - an unchanged pass over 100,000 users at 50 ms of GitHub latency, run by
//!   1, 2 and 3 `ghsync reconcile` processes started together (wall time,
//!   GraphQL points, REST fetches, tokens minted);
//! - webhook ingest with 1, 2 and 3 `ghsync serve` replicas, the load spread
//!   round-robin over them from this process (deliveries/s, p50, p99).
//!
//! Run: `cargo bench --bench replicas` (release build; add `-- --users N` for
//! another size). Each figure is on a fresh database.

use std::time::{Duration, Instant};

use chrono::Utc;
use fake_github::{DEMO_APP_PUBLIC_KEY, FakeConfig, FakeGitHub, FakeUser, Faults, sign_webhook};
use futures_util::StreamExt;
use ghsync::domain::KeyFields;
use sqlx::Connection;

const APP_ID: u64 = 7;
const KEY_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fake-github/fixtures/demo-app-key.pem");
const SECRET: &str = "bench-secret";
const PAYLOAD: &[u8] = include_bytes!("../tests/fixtures/corpus/webhooks/star/created.json");
const INSTALLATIONS: i64 = 100;

async fn database(admin: &str) -> anyhow::Result<String> {
    let name = format!("ghsync_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await?;
    let mut url = url::Url::parse(admin)?;
    url.set_path(&name);
    ghsync::store::open(&ghsync::config::DatabaseSettings { url: url.to_string().into() }).await?;
    Ok(url.to_string())
}

fn hash(u: &FakeUser) -> String {
    KeyFields {
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
    .hash()
    .as_str()
    .to_owned()
}

/// `users` known and unchanged, synced a day ago; the first 100 installed the App.
async fn populate(db: &str, fake: &FakeGitHub, users: i64) -> anyhow::Result<()> {
    let mut conn = sqlx::PgConnection::connect(db).await?;
    let long_ago = (Utc::now() - chrono::Duration::days(1)).to_rfc3339();
    let mut csv = String::new();
    for id in 1..=users {
        let u = FakeUser::sample(id);
        let installation = if id <= INSTALLATIONS { id.to_string() } else { String::new() };
        let h = hash(&u);
        csv.push_str(&format!(
            "{id},{},{},active,true,{installation},{h},{h},{long_ago},{long_ago},{long_ago},{long_ago}\n",
            u.node_id, u.login
        ));
        if id <= INSTALLATIONS {
            sqlx::query(
                "INSERT INTO installations (id, account_id, account_login, account_type, state, seen_at, created_at, \
                 updated_at) VALUES ($1, $1, $2, 'User', 'active', now(), now(), now())",
            )
            .bind(id)
            .bind(&u.login)
            .execute(&mut conn)
            .await?;
            fake.add_installation(id, id);
        }
        fake.add_user(u);
    }
    let mut copy = conn
        .copy_in_raw(
            "COPY users (github_id, node_id, login, status, sync_enabled, installation_id, profile_hash, \
             observed_hash, last_synced_at, next_sync_at, created_at, updated_at) FROM STDIN (FORMAT csv)",
        )
        .await?;
    copy.send(csv.as_bytes()).await?;
    copy.finish().await?;
    Ok(())
}

fn command(sub: &str, db: &str, fake: &FakeGitHub) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_ghsync"));
    c.arg(sub)
        .env_clear()
        .env("DATABASE_URL", db)
        .env("GITHUB_APP_ID", APP_ID.to_string())
        .env("GITHUB_APP_PRIVATE_KEY_PATH", KEY_PATH)
        .env("GITHUB_API_URL", fake.url())
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("GHSYNC_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true);
    c
}

async fn pass(admin: &str, users: i64, replicas: usize) -> anyhow::Result<()> {
    let fake = FakeGitHub::start(FakeConfig { app_id: APP_ID, app_public_key_pem: DEMO_APP_PUBLIC_KEY.into() }).await?;
    fake.set_faults(Faults { latency: Duration::from_millis(50), ..Faults::default() });
    let db = database(admin).await?;
    populate(&db, &fake, users).await?;
    let started = Instant::now();
    let children: Vec<_> = (0..replicas).map(|_| command("reconcile", &db, &fake).spawn()).collect::<Result<_, _>>()?;
    for mut child in children {
        anyhow::ensure!(child.wait().await?.success(), "a reconcile failed");
    }
    let took = started.elapsed();
    let s = fake.stats();
    println!(
        "pass   {replicas} process(es): {users} unchanged users in {:>5.1} s | {} GraphQL points, {} core, {} REST fetches, {} tokens minted",
        took.as_secs_f64(),
        s.points_graphql,
        s.points_core,
        s.rest_user_fetches,
        s.tokens_minted
    );
    Ok(())
}

async fn ingest(admin: &str, replicas: usize) -> anyhow::Result<()> {
    const BURST: usize = 20_000;
    const CONCURRENCY: usize = 64;
    let fake = FakeGitHub::start(FakeConfig { app_id: APP_ID, app_public_key_pem: DEMO_APP_PUBLIC_KEY.into() }).await?;
    let db = database(admin).await?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let mut children = Vec::new();
    let mut endpoints = Vec::new();
    for _ in 0..replicas {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        children.push(command("serve", &db, &fake).env("GHSYNC_LISTEN", format!("127.0.0.1:{port}")).spawn()?);
        let base = format!("http://127.0.0.1:{port}");
        while client.get(format!("{base}/healthz")).send().await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        endpoints.push(format!("{base}/webhooks/github"));
    }
    let signature = sign_webhook(SECRET, PAYLOAD);
    let send = |i: usize| {
        let (client, url, signature) = (&client, &endpoints[i % replicas], &signature);
        async move {
            let started = Instant::now();
            let response = client
                .post(url)
                .header("X-GitHub-Event", "star")
                .header("X-GitHub-Delivery", uuid::Uuid::new_v4().to_string())
                .header("X-Hub-Signature-256", signature)
                .header("Content-Type", "application/json")
                .body(PAYLOAD)
                .send()
                .await
                .expect("ghsync answers");
            assert_eq!(response.status().as_u16(), 202);
            started.elapsed()
        }
    };
    futures_util::stream::iter(0..500).map(send).buffer_unordered(32).collect::<Vec<_>>().await;
    let started = Instant::now();
    let mut times: Vec<Duration> =
        futures_util::stream::iter(0..BURST).map(send).buffer_unordered(CONCURRENCY).collect().await;
    let took = started.elapsed();
    times.sort();
    let at = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)].as_secs_f64() * 1e3;
    println!(
        "ingest {replicas} replica(s): {:>6.0} deliveries/s ({BURST} at concurrency {CONCURRENCY}, p50 {:.1} ms, p99 {:.1} ms)",
        BURST as f64 / took.as_secs_f64(),
        at(0.5),
        at(0.99)
    );
    drop(children);
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let users = args.iter().position(|a| a == "--users").and_then(|i| args.get(i + 1)?.parse().ok()).unwrap_or(100_000);
    let Some(admin) = std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
        println!("replicas skipped: set TEST_DATABASE_URL (PostgreSQL) to run them");
        return Ok(());
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        for replicas in 1..=3 {
            pass(&admin, users, replicas).await?;
        }
        for replicas in 1..=3 {
            ingest(&admin, replicas).await?;
        }
        Ok(())
    })
}
