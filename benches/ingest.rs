//! Webhook ingest benchmark: signed deliveries per second accepted and durably
//! stored (committed before the 2xx), with client-side p50/p99 latency, on
//! SQLite and (when `TEST_DATABASE_URL` is set) PostgreSQL. The load generator
//! is reqwest on loopback in the same process, sharing the machine's 2 cores
//! with the server, as a co-located sender would.
//!
//! Run: `cargo bench --bench ingest` (release build). Goal: ≥ 5,000/s on
//! SQLite, and p99 < 10 ms at a steady 2,000/s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_github::sign_webhook;
use futures_util::{StreamExt, stream};
use ghsync::app::App;
use ghsync::cli::RawSettings;
use ghsync::config::{Needs, Settings};
use secrecy::SecretString;

const SECRET: &str = "bench-secret";
/// A real GitHub payload (octokit's `star.created` example, 6.8 KB).
const PAYLOAD: &[u8] = include_bytes!("../tests/fixtures/corpus/webhooks/star/created.json");
const BURST: usize = 20_000;
const BURST_CONCURRENCY: usize = 64;
const RATE: u64 = 2_000;
const RATE_SECONDS: u64 = 5;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

async fn send(client: &reqwest::Client, url: &str, signature: &str) -> Duration {
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
    assert_eq!(response.status().as_u16(), 202, "every delivery is accepted");
    started.elapsed()
}

async fn bench(name: &str, url: String) -> anyhow::Result<()> {
    let raw = RawSettings {
        database_url: Some(url.clone()),
        ghsync_listen: Some("127.0.0.1:0".into()),
        ..Default::default()
    };
    let mut settings = Settings::load(&raw, Needs::DatabaseOnly)?;
    settings.webhook.secrets = vec![SecretString::from(SECRET.to_owned())];
    let app = App::build(settings).await?;
    let endpoint = format!("http://127.0.0.1:{}/webhooks/github", app.port());
    let store = app.state().store.clone();
    let shutdown = app.shutdown_token();
    let running = tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let signature: Arc<str> = sign_webhook(SECRET, PAYLOAD).into();

    // Warm-up: connections, page cache, prepared statements.
    stream::iter(0..500)
        .for_each_concurrent(32, |_| {
            let (c, e, s) = (&client, &endpoint, &signature);
            async move {
                send(c, e, s).await;
            }
        })
        .await;

    // Steady load first, on a drained system; then the burst.
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..RATE * RATE_SECONDS {
        ticker.tick().await;
        let (c, e, s) = (client.clone(), endpoint.clone(), signature.clone());
        tasks.spawn(async move { send(&c, &e, &s).await });
    }
    let mut steady: Vec<Duration> = tasks.join_all().await;
    steady.sort();

    let started = Instant::now();
    let mut burst: Vec<Duration> = stream::iter(0..BURST)
        .map(|_| {
            let (c, e, s) = (&client, &endpoint, &signature);
            async move { send(c, e, s).await }
        })
        .buffer_unordered(BURST_CONCURRENCY)
        .collect()
        .await;
    let took = started.elapsed();
    burst.sort();

    let stats = store.inbox_stats().await?;
    let drain_started = Instant::now();
    while store.inbox_stats().await?.pending > 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained = drain_started.elapsed();
    shutdown.cancel();
    let _ = running.await;
    println!(
        "{name:<10} burst: {:>6.0} deliveries/s ({BURST} at concurrency {BURST_CONCURRENCY}, p50 {:>5.1} ms, p99 {:>5.1} ms) | steady {RATE}/s: p50 {:>5.2} ms, p99 {:>5.2} ms, max {:>6.1} ms | pending after the burst {} (applied in {:.1} s more)",
        BURST as f64 / took.as_secs_f64(),
        percentile(&burst, 0.50).as_secs_f64() * 1e3,
        percentile(&burst, 0.99).as_secs_f64() * 1e3,
        percentile(&steady, 0.50).as_secs_f64() * 1e3,
        percentile(&steady, 0.99).as_secs_f64() * 1e3,
        steady.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        stats.pending,
        drained.as_secs_f64(),
    );
    Ok(())
}

async fn postgres_database(admin_url: &str) -> anyhow::Result<String> {
    use sqlx::Connection;
    let name = format!("ghsync_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await?;
    let mut url = url::Url::parse(admin_url)?;
    url.set_path(&name);
    Ok(url.to_string())
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let dir = tempfile::tempdir()?;
        bench("sqlite", format!("sqlite://{}/bench.db", dir.path().display())).await?;
        match std::env::var("TEST_DATABASE_URL") {
            Ok(admin) if !admin.is_empty() => bench("postgres", postgres_database(&admin).await?).await?,
            _ => println!("postgres   skipped: set TEST_DATABASE_URL to include it"),
        }
        Ok(())
    })
}
