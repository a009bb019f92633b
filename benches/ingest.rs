//! Webhook ingest benchmark, measured as an operator would: the release
//! `ghsync serve` runs as its own process (inbox worker running, SQLite with
//! `synchronous=FULL`, or PostgreSQL when `TEST_DATABASE_URL` is set), and the
//! load comes from outside it. The burst is `wrk -t2 -c32 -d8s` with
//! `benches/wrk-webhook.lua` (a real 6.8 KB `star` payload, a fresh GUID each
//! time) when wrk is installed, else this process at concurrency 32; the
//! steady 2,000/s comes from this process. Every 202 is a committed delivery.
//! After the burst, the inbox's backlog is timed until it is applied. The
//! payload's sender is nobody we sync, so each goes in settled as ignored; a
//! second burst, with the sender tracked, is all the inbox worker's.
//!
//! Run: `cargo bench --bench ingest` (`GHSYNC_BENCH_BURST_SECONDS=60` for a
//! longer burst than 8 s). Goals (issue 11): ≥ 15,000/s on SQLite,
//! ≥ 10,000/s on PostgreSQL, p99 < 10 ms at a steady 2,000/s, a backlog
//! applied within 10 s of the burst's end.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fake_github::sign_webhook;
use futures_util::{StreamExt, stream};

#[path = "support/tail.rs"]
mod tail;
use tail::{Tail, steal_ticks};

const SECRET: &str = "bench-secret";
const PAYLOAD_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/corpus/webhooks/star/created.json");
const WRK_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/wrk-webhook.lua");
/// The burst's length, unless `GHSYNC_BENCH_BURST_SECONDS` says (issue 11 asks about 60 s).
const BURST_SECONDS: u64 = 8;
const CONNECTIONS: usize = 32;
const RATE: u64 = 2_000;
const RATE_SECONDS: u64 = 5;

fn burst_seconds() -> u64 {
    std::env::var("GHSYNC_BENCH_BURST_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(BURST_SECONDS)
}

struct Serve {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Serve {
    fn start(database_url: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let key = dir.path().join("app.pem");
        std::fs::write(&key, fake_github::DEMO_APP_KEY)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(env!("CARGO_BIN_EXE_ghsync"))
            .arg("serve")
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", database_url)
            .env("GITHUB_APP_ID", "4242")
            .env("GITHUB_APP_PRIVATE_KEY_PATH", &key)
            .env("GITHUB_WEBHOOK_SECRET", SECRET)
            .env("GITHUB_API_URL", "http://127.0.0.1:9")
            .env("GHSYNC_LISTEN", format!("127.0.0.1:{port}"))
            .env("GHSYNC_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()?;
        Ok(Self { child, base: format!("http://127.0.0.1:{port}"), _dir: dir })
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

async fn send(client: &reqwest::Client, url: &str, body: &bytes::Bytes, signature: &str) -> Duration {
    let started = Instant::now();
    let response = client
        .post(url)
        .header("X-GitHub-Event", "star")
        .header("X-GitHub-Delivery", uuid::Uuid::new_v4().to_string())
        .header("X-Hub-Signature-256", signature)
        .header("Content-Type", "application/json")
        .body(body.clone())
        .send()
        .await
        .expect("ghsync answers");
    assert_eq!(response.status().as_u16(), 202, "every delivery is accepted");
    started.elapsed()
}

/// The burst: deliveries/s, p50 and p99, by wrk when installed.
async fn burst(
    client: &reqwest::Client,
    endpoint: &str,
    body: &bytes::Bytes,
    signature: &str,
) -> anyhow::Result<(String, f64, String, String)> {
    let wrk = Command::new("wrk")
        .args(["-t2", &format!("-c{CONNECTIONS}"), &format!("-d{}s", burst_seconds()), "--latency", "-s", WRK_SCRIPT])
        .arg(endpoint.trim_end_matches("/webhooks/github"))
        .env("BODY_FILE", PAYLOAD_PATH)
        .env("SIG", signature)
        .env("EVENT", "star")
        .output();
    if let Ok(out) = wrk {
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |prefix: &str| {
            text.lines()
                .find(|l| l.trim_start().starts_with(prefix))
                .and_then(|l| l.split_whitespace().nth(1))
                .map(str::to_owned)
        };
        if text.lines().any(|l| l.contains("Non-2xx")) {
            anyhow::bail!("wrk saw answers other than 2xx:\n{text}");
        }
        let rate = field("Requests/sec:").and_then(|r| r.parse().ok()).unwrap_or(0.0);
        return Ok(("wrk".into(), rate, field("50%").unwrap_or_default(), field("99%").unwrap_or_default()));
    }
    let started = Instant::now();
    let mut sent: Vec<Duration> = Vec::new();
    while started.elapsed() < Duration::from_secs(burst_seconds()) {
        let round: Vec<Duration> = stream::iter(0..CONNECTIONS * 50)
            .map(|_| send(client, endpoint, body, signature))
            .buffer_unordered(CONNECTIONS)
            .collect()
            .await;
        sent.extend(round);
    }
    let took = started.elapsed();
    sent.sort();
    let ms = |d: Duration| format!("{:.2}ms", d.as_secs_f64() * 1e3);
    Ok((
        "reqwest".into(),
        sent.len() as f64 / took.as_secs_f64(),
        ms(percentile(&sent, 0.5)),
        ms(percentile(&sent, 0.99)),
    ))
}

async fn bench(name: &str, url: String) -> anyhow::Result<()> {
    // The other half's writes reach the disk first, so that the kernel's writeback of them
    // cannot fall in this half's steady run, whose commits would wait behind it.
    Command::new("sync").status()?;
    let server = Serve::start(&url)?;
    let endpoint = format!("{}/webhooks/github", server.base);
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    for _ in 0..200 {
        if client.get(format!("{}/healthz", server.base)).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = bytes::Bytes::from(std::fs::read(PAYLOAD_PATH)?);
    let signature = sign_webhook(SECRET, &body);
    let db = Inbox::open(&url).await?;
    let pending = || db.pending();
    let drain = || async {
        let started = Instant::now();
        while pending().await? > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anyhow::Ok(started.elapsed())
    };

    // Steady load first, on a drained system; then the burst. The steady load runs twice:
    // its first seconds meet the server just started (its pool opening connections, its
    // first reconcile pass); the second is the steady state an operator's service is in.
    let steady_run = || async {
        let period = Duration::from_micros(1_000_000 / RATE);
        let mut ticker = tokio::time::interval(period);
        let mut tasks = tokio::task::JoinSet::new();
        let (steal, checkpoints) = (steal_ticks(), db.checkpoints().await);
        ticker.reset();
        let began = Instant::now();
        for _ in 0..RATE * RATE_SECONDS {
            ticker.tick().await;
            let (c, e, b, s) = (client.clone(), endpoint.clone(), body.clone(), signature.clone());
            tasks.spawn(async move { (began.elapsed(), send(&c, &e, &b, &s).await) });
        }
        let mut sent: Vec<(Duration, Duration)> = tasks.join_all().await;
        sent.sort(); // in the order sent (a `JoinSet` gives them as they finish)
        let tail = Tail::of(&sent, period, steal_ticks() - steal, db.checkpoints().await - checkpoints);
        let mut steady: Vec<Duration> = sent.into_iter().map(|(_, took)| took).collect();
        steady.sort();
        (steady, tail)
    };
    let (started, _) = steady_run().await;
    drain().await?;
    let (steady, tail) = steady_run().await;
    drain().await?;

    let (by, rate, p50, p99) = burst(&client, &endpoint, &body, &signature).await?;
    let backlog = pending().await?;
    let drained = drain().await?;
    // The same burst again, its sender now a user we sync: every delivery is the worker's
    // (a stranger's star goes in settled as ignored), and marks that one user due.
    track_sender(&url, &body).await?;
    let (_, tracked_rate, _, tracked_p99) = burst(&client, &endpoint, &body, &signature).await?;
    let (tracked_backlog, tracked_drained) = (pending().await?, drain().await?);
    println!(
        "{name:<9} burst ({by}, {CONNECTIONS} connections, {} s): {rate:>6.0} deliveries/s, p50 {p50}, p99 {p99} | \
         steady {RATE}/s: p50 {:.2} ms, p99 {:.2} ms (just started: p99 {:.2} ms) | \
         backlog at the burst's end {backlog}, applied in {:.1} s\n          \
         sender tracked: {tracked_rate:>6.0} deliveries/s, p99 {tracked_p99}, every one the worker's; \
         backlog at the burst's end {tracked_backlog}, applied in {:.1} s\n          steady's tail: {tail}",
        burst_seconds(),
        percentile(&steady, 0.50).as_secs_f64() * 1e3,
        percentile(&steady, 0.99).as_secs_f64() * 1e3,
        percentile(&started, 0.99).as_secs_f64() * 1e3,
        drained.as_secs_f64(),
        tracked_drained.as_secs_f64(),
    );
    Ok(())
}

/// Makes the payload's sender a user we sync, as signing up would.
async fn track_sender(url: &str, body: &[u8]) -> anyhow::Result<()> {
    use ghsync::domain::{Account, AccountKind, GitHubUserId, Login};
    let payload: serde_json::Value = serde_json::from_slice(body)?;
    let sender = &payload["sender"];
    let account = Account {
        id: GitHubUserId::new(sender["id"].as_i64().unwrap_or_default())?,
        login: Login::from_github(sender["login"].as_str().unwrap_or_default())?,
        node_id: None,
        avatar_url: None,
        kind: AccountKind::User,
        installation_id: None,
    };
    let settings = ghsync::config::DatabaseSettings { url: secrecy::SecretString::from(url.to_owned()) };
    ghsync::store::open(&settings).await?.track_user(&account, chrono::Utc::now()).await?;
    Ok(())
}

/// The inbox's backlog, read beside the server as an operator would.
enum Inbox {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Inbox {
    async fn open(url: &str) -> anyhow::Result<Self> {
        Ok(if url.starts_with("sqlite:") {
            Self::Sqlite(sqlx::SqlitePool::connect(url).await?)
        } else {
            Self::Postgres(sqlx::PgPool::connect(url).await?)
        })
    }

    async fn pending(&self) -> anyhow::Result<i64> {
        const SQL: &str = "SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'pending'";
        Ok(match self {
            Self::Sqlite(pool) => sqlx::query_scalar(SQL).fetch_one(pool).await?,
            Self::Postgres(pool) => sqlx::query_scalar(SQL).fetch_one(pool).await?,
        })
    }

    /// PostgreSQL's checkpoints so far, timed and requested (SQLite's WAL checkpoints, the
    /// committer's own, are not counted).
    async fn checkpoints(&self) -> i64 {
        const SQL: &str = "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter";
        match self {
            Self::Sqlite(_) => 0,
            Self::Postgres(pool) => sqlx::query_scalar(SQL).fetch_one(pool).await.unwrap_or(0),
        }
    }
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

/// The run's database goes when it ends: left behind, every run kept ~200 MB.
async fn drop_postgres_database(admin_url: &str, url: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let name = url::Url::parse(url)?.path().trim_start_matches('/').to_owned();
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&mut conn).await?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let dir = tempfile::tempdir()?;
        bench("sqlite", format!("sqlite://{}/bench.db", dir.path().display())).await?;
        match std::env::var("TEST_DATABASE_URL") {
            Ok(admin) if !admin.is_empty() => {
                let url = postgres_database(&admin).await?;
                let ran = bench("postgres", url.clone()).await;
                drop_postgres_database(&admin, &url).await?;
                ran?
            }
            _ => println!("postgres  skipped: set TEST_DATABASE_URL to include it"),
        }
        Ok(())
    })
}
