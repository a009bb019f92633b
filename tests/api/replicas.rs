//! Several ghsync processes on one database behave as one service: `ghsync
//! reconcile` processes (the real binary) started together share one pass
//! over thousands of users against a fake GitHub with latency, with no
//! database error, every user synced once, one run row; a pass that cannot
//! run is recorded `failed` and `reconcile` exits 1.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::helpers::{ADMIN_TOKEN, APP_ID, Backend, PATIENCE, SECRET, TestDb, eventually, open_store};
use fake_github::{DEMO_APP_PUBLIC_KEY, FakeConfig, FakeGitHub, FakeUser, Faults};

/// Users (each with an installation of their own) in the shared-pass tests.
const USERS: i64 = 4_000;

pub async fn fake_with_users(users: i64, latency: Duration) -> FakeGitHub {
    let fake =
        FakeGitHub::start(FakeConfig { app_id: APP_ID, app_public_key_pem: DEMO_APP_PUBLIC_KEY.into() }).await.unwrap();
    for id in 1..=users {
        fake.add_user(FakeUser::sample(id));
        fake.add_installation(id, id);
    }
    fake.set_faults(Faults { latency, ..Faults::default() });
    fake
}

/// A `ghsync reconcile` child process writing its output to `NAME.log`.
pub struct Reconcile {
    child: tokio::process::Child,
    log: PathBuf,
}

impl Reconcile {
    pub fn start(db_url: &str, fake: &FakeGitHub, dir: &Path, name: &str, env: &[(&str, &str)]) -> Reconcile {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("fake-github/fixtures/demo-app-key.pem");
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ghsync"))
            .arg("reconcile")
            .env_clear()
            .current_dir(dir)
            .env("DATABASE_URL", db_url)
            .env("GITHUB_APP_ID", APP_ID.to_string())
            .env("GITHUB_APP_PRIVATE_KEY_PATH", key)
            .env("GITHUB_API_URL", fake.url())
            .env("GHSYNC_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .expect("the ghsync binary starts");
        Reconcile { child, log }
    }

    /// Waits for the exit; the exit code and the whole log.
    pub async fn finish(mut self) -> (i32, String) {
        let status =
            tokio::time::timeout(PATIENCE * 2, self.child.wait()).await.expect("ghsync reconcile finishes").unwrap();
        (status.code().unwrap_or(-1), std::fs::read_to_string(&self.log).unwrap_or_default())
    }
}

fn database_errors(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("deadlock") || l.contains("serializ") || l.contains("error returned from database"))
        .collect()
}

async fn run_rows(db: &TestDb) -> Vec<ghsync::domain::RunRecord> {
    open_store(db).await.runs(100).await.unwrap()
}

/// Starts `n` `ghsync reconcile` processes together and waits for all;
/// each must exit 0 without a database error.
async fn reconciles_together(db: &TestDb, fake: &FakeGitHub, dir: &Path, round: &str, n: usize) {
    // Every user is due again as soon as a pass has synced them: the next round walks them all.
    let env = [("GHSYNC_STALE_AFTER", "1ms")];
    let children: Vec<Reconcile> =
        (0..n).map(|i| Reconcile::start(&db.url, fake, dir, &format!("{round}-{i}"), &env)).collect();
    let finished = futures_util::future::join_all(children.into_iter().map(Reconcile::finish)).await;
    for (code, log) in &finished {
        assert!(database_errors(log).is_empty(), "a database error reached the process:\n{log}");
        assert_eq!(*code, 0, "ghsync reconcile exits 0:\n{log}");
    }
}

/// Every user synced since `since` and nobody left due of this pass.
async fn assert_all_synced(db: &TestDb, since: chrono::DateTime<chrono::Utc>) {
    let store = open_store(db).await;
    assert_eq!(store.user_counts().await.unwrap(), vec![("active".to_owned(), USERS)], "every user active");
    for id in [1, USERS / 2, USERS] {
        let user = store.user_by_id(ghsync::domain::GitHubUserId::new(id).unwrap()).await.unwrap().unwrap();
        assert!(user.last_synced_at.is_some_and(|t| t >= since), "user {id} synced in this round: {user:?}");
    }
    let unsynced = store.count_due_users(since).await.unwrap();
    assert_eq!(unsynced, 0, "no user is left due of this round");
}

async fn two_reconciles_share_one_pass(backend: Backend) {
    // Arrange: thousands of users GitHub lists (one installation each), none known yet.
    let fake = fake_with_users(USERS, Duration::from_millis(20)).await;
    let db = TestDb::create(backend).await;
    open_store(&db).await;
    let dir = tempfile::tempdir().unwrap();

    // Act: two passes started together on a new database: the listing inserts, the joiner drains.
    let since = chrono::Utc::now();
    reconciles_together(&db, &fake, dir.path(), "new", 2).await;

    // Assert: one run row, every user fetched over REST exactly once.
    assert_all_synced(&db, since).await;
    let runs = run_rows(&db).await;
    assert_eq!(runs.len(), 1, "exactly one run row: {runs:?}");
    assert_eq!(runs[0].state, "finished", "{:?}", runs[0]);
    let stats = fake.stats();
    assert_eq!(stats.rest_user_fetches, USERS as u64, "each user's REST profile fetched once, by one process");
    assert_eq!(stats.on_exhausted + stats.on_paused + stats.on_expired, 0, "{stats:?}");

    // Act: again over known users: the listing updates the very rows the joiner records.
    let since = chrono::Utc::now();
    reconciles_together(&db, &fake, dir.path(), "known", 2).await;

    // Assert: one more run row, finished; nobody fetched whole again (nothing changed).
    assert_all_synced(&db, since).await;
    let runs = run_rows(&db).await;
    assert_eq!(runs.len(), 2, "one more run row: {runs:?}");
    assert!(runs.iter().all(|r| r.state == "finished"), "{runs:?}");
    assert_eq!(fake.stats().rest_user_fetches, USERS as u64, "unchanged users are not fetched again");
}

mod two_reconcile_processes_share_one_pass {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if Backend::postgres_available() {
            two_reconciles_share_one_pass(Backend::Postgres).await
        }
    }
}

/// `ghsync serve` (the real binary) with its schedule on: a start-up pass runs at once.
pub struct Serve {
    _child: tokio::process::Child,
    pub base: String,
    log: PathBuf,
}

impl Serve {
    pub fn start(db_url: &str, fake: &FakeGitHub, dir: &Path, name: &str) -> Serve {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("fake-github/fixtures/demo-app-key.pem");
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ghsync"))
            .arg("serve")
            .env_clear()
            .current_dir(dir)
            .env("DATABASE_URL", db_url)
            .env("GITHUB_APP_ID", APP_ID.to_string())
            .env("GITHUB_APP_PRIVATE_KEY_PATH", key)
            .env("GITHUB_WEBHOOK_SECRET", SECRET)
            .env("GITHUB_API_URL", fake.url())
            .env("GHSYNC_LISTEN", format!("127.0.0.1:{port}"))
            .env("GHSYNC_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("GHSYNC_SYNC_INTERVAL", "12h")
            .env("GHSYNC_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .expect("the ghsync binary starts");
        Serve { _child: child, base: format!("http://127.0.0.1:{port}"), log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The passes as `/admin/runs` shows them (empty while the server is not up yet).
    pub async fn runs(&self, client: &reqwest::Client) -> Vec<serde_json::Value> {
        let Ok(response) = client.get(format!("{}/admin/runs", self.base)).bearer_auth(ADMIN_TOKEN).send().await else {
            return Vec::new();
        };
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        body.as_array().cloned().or_else(|| body["runs"].as_array().cloned()).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- {} ---\n{}", self.log.display(), self.log());
        }
    }
}

/// A one-shot subcommand (`migrate`) on the same database.
async fn run_command(command: &str, db_url: &str, dir: &Path) -> (i32, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_ghsync"))
        .arg(command)
        .env_clear()
        .current_dir(dir)
        .env("DATABASE_URL", db_url)
        .output()
        .await
        .unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.code().unwrap_or(-1), log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_migrate_and_reconcile_beside_a_serve_pass_take_nothing_from_it() {
    // Arrange: `serve` on a SQLite file, its start-up pass under way over thousands of users.
    // Slow enough (100 ms an answer) that the pass is still under way when the others start.
    let fake = fake_with_users(USERS, Duration::from_millis(100)).await;
    let db = TestDb::create(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let serve = Serve::start(&db.url, &fake, dir.path(), "serve");
    eventually("serve's pass to be under way", PATIENCE, || async {
        let runs = serve.runs(&client).await;
        (runs.first().is_some_and(|r| r["state"] == "running" && r["fetched"].as_i64() > Some(200))).then_some(())
    })
    .await;

    // Act: a `migrate`, then a `reconcile`, beside it while it works.
    let (code, log) = run_command("migrate", &db.url, dir.path()).await;
    assert_eq!(code, 0, "{log}");
    let (code, log) = Reconcile::start(&db.url, &fake, dir.path(), "beside", &[]).finish().await;

    // Assert: the reconcile joined and helped; serve's pass finishes; no user fetched twice.
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("(joined)"), "the reconcile joined serve's pass:\n{log}");
    let runs = eventually("serve's pass to finish", PATIENCE, || async {
        let runs = serve.runs(&client).await;
        (runs.first().is_some_and(|r| r["state"] == "finished")).then_some(runs)
    })
    .await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    for log in [log, serve.log()] {
        assert!(database_errors(&log).is_empty(), "a database error:\n{log}");
    }
    let stats = fake.stats();
    assert_eq!(stats.rest_user_fetches, USERS as u64, "a user fetched twice: a live process's lease was taken");
    let store = open_store(&db).await;
    assert_eq!(store.count_due_users(chrono::Utc::now()).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_serve_replicas_and_a_reconcile_share_one_pass_on_postgres() {
    if !Backend::postgres_available() {
        return;
    }
    // Arrange: thousands of users, none known yet, one PostgreSQL database.
    let fake = fake_with_users(USERS, Duration::from_millis(20)).await;
    let db = TestDb::create(Backend::Postgres).await;
    open_store(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();

    // Act: three replicas start together (each wants a start-up pass), and a reconcile beside them.
    let replicas: Vec<Serve> =
        (0..3).map(|i| Serve::start(&db.url, &fake, dir.path(), &format!("serve-{i}"))).collect();
    let (code, log) = Reconcile::start(&db.url, &fake, dir.path(), "reconcile", &[]).finish().await;
    assert_eq!(code, 0, "{log}");
    let runs = eventually("the pass to finish", PATIENCE, || async {
        let runs = replicas[0].runs(&client).await;
        (runs.first().is_some_and(|r| r["state"] == "finished")).then_some(runs)
    })
    .await;

    // Assert: one pass, every user synced once, no database error anywhere.
    assert_eq!(runs.len(), 1, "exactly one run row: {runs:?}");
    let store = open_store(&db).await;
    assert_eq!(store.count_due_users(chrono::Utc::now()).await.unwrap(), 0, "every user synced");
    assert_eq!(fake.stats().rest_user_fetches, USERS as u64, "each user's REST profile fetched once");
    for log in replicas.iter().map(Serve::log).chain([log]) {
        assert!(database_errors(&log).is_empty(), "a database error:\n{log}");
    }
}
