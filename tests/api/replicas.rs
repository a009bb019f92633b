//! Several ghsync processes on one database behave as one service: `ghsync
//! reconcile` processes (the real binary) started together share one pass
//! over thousands of users against a fake GitHub with latency, with no
//! database error, every user synced once, one run row; a pass that cannot
//! run is recorded `failed` and `reconcile` exits 1.

use std::path::Path;
use std::time::Duration;

use crate::helpers::binary::{Reconcile, Serve, database_errors, fake_with_users, run_command};
use crate::helpers::{Backend, PATIENCE, TestDb, eventually, open_store};
use fake_github::FakeGitHub;

/// Users (each with an installation of their own) in the shared-pass tests.
const USERS: i64 = 5_000;

async fn run_rows(db: &TestDb) -> Vec<ghsync::domain::RunRecord> {
    open_store(db).await.runs(100).await.unwrap()
}

/// Starts `n` `ghsync reconcile` processes together and waits for all;
/// each must exit 0 without a database error.
async fn reconciles_together(db: &TestDb, fake: &FakeGitHub, dir: &Path, round: &str, n: usize) {
    // Every active user whatever their age: the next round walks them all again.
    let children: Vec<Reconcile> =
        (0..n).map(|i| Reconcile::start(&db.url, fake, dir, &format!("{round}-{i}"), &["--all"], &[])).collect();
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
    let unsynced = store.count_due_users(since, since).await.unwrap();
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
    let (code, log) = Reconcile::start(&db.url, &fake, dir.path(), "beside", &[], &[]).finish().await;

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
    let now = chrono::Utc::now();
    assert_eq!(store.count_due_users(now, now - chrono::Duration::hours(12)).await.unwrap(), 0);
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
    let (code, log) = Reconcile::start(&db.url, &fake, dir.path(), "reconcile", &[], &[]).finish().await;
    assert_eq!(code, 0, "{log}");
    let runs = eventually("the pass to finish", PATIENCE, || async {
        let runs = replicas[0].runs(&client).await;
        (runs.first().is_some_and(|r| r["state"] == "finished")).then_some(runs)
    })
    .await;

    // Assert: one pass, every user synced once, no database error anywhere.
    assert_eq!(runs.len(), 1, "exactly one run row: {runs:?}");
    let store = open_store(&db).await;
    let now = chrono::Utc::now();
    assert_eq!(store.count_due_users(now, now - chrono::Duration::hours(12)).await.unwrap(), 0, "every user synced");
    let stats = fake.stats();
    if stats.rest_user_fetches != USERS as u64 {
        // Seen once in a busy full run and not since: which users, and what the processes said of leases.
        let twice: Vec<_> = stats.rest_fetches_by_user.iter().filter(|(_, n)| **n > 1).take(10).collect();
        let said: Vec<String> = replicas
            .iter()
            .map(Serve::log)
            .chain([log.clone()])
            .flat_map(|l| {
                l.lines()
                    .filter(|l| l.contains("lease") || l.contains("WARN"))
                    .take(20)
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .collect();
        panic!(
            "each user's REST profile fetched once: {} fetches for {USERS} users; fetched more than once (id, times): \
             {twice:?}; the processes' lease lines and warnings:\n{}",
            stats.rest_user_fetches,
            said.join("\n")
        );
    }
    for log in replicas.iter().map(Serve::log).chain([log]) {
        assert!(database_errors(&log).is_empty(), "a database error:\n{log}");
    }
}
