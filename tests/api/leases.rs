//! Leases with the real binary: work a process claimed is renewed while it
//! lasts and taken over when the process dies; a write under a lease that was
//! lost changes nothing. Replicas run with `GHSYNC_LEASE=2s`, so a dead
//! one's work is taken over within seconds.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use futures_util::{StreamExt, stream};
use sqlx::{Connection, PgConnection};

use crate::helpers::binary::{Reconcile, Serve, database_errors, fake_with_users};
use crate::helpers::{Backend, PATIENCE, SECRET, TestDb, eventually, open_store};
use fake_github::{FakeGitHub, FakeUser, Faults, payloads, sign_webhook};
use ghsync::domain::{DeliveryId, DeliveryState, GitHubUserId};

const LEASE: [(&str, &str); 1] = [("GHSYNC_LEASE", "2s")];

async fn pg(db: &TestDb) -> PgConnection {
    PgConnection::connect(&db.url).await.unwrap()
}

/// Posts a signed `star` event from `sender`; the status, or none if no answer came.
async fn post_star(client: &reqwest::Client, base: &str, sender: i64) -> (String, Option<u16>) {
    let guid = uuid::Uuid::new_v4().to_string();
    let body = serde_json::to_vec(&payloads::simple_event_with_sender(&FakeUser::sample(sender))).unwrap();
    let status = client
        .post(format!("{base}/webhooks/github"))
        .header("content-type", "application/json")
        .header("X-GitHub-Event", "star")
        .header("X-GitHub-Delivery", &guid)
        .header("X-Hub-Signature-256", sign_webhook(SECRET, &body))
        .body(body)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16());
    (guid, status)
}

/// The deliveries and users whose lease has not run out (by the database's clock).
async fn held(db: &TestDb) -> (Vec<String>, Vec<i64>) {
    let mut conn = pg(db).await;
    let deliveries = sqlx::query_scalar(
        "SELECT delivery_id FROM webhook_deliveries WHERE state = 'pending' AND lease_until > now()",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let users = sqlx::query_scalar("SELECT github_id FROM users WHERE claimed_until > now()")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    (deliveries, users)
}

async fn first_run(serve: &Serve, client: &reqwest::Client) -> Option<serde_json::Value> {
    serve.runs(client).await.into_iter().next()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_pass_has_its_users_and_deliveries_done_by_the_others_and_the_pass_finishes() {
    if !Backend::postgres_available() {
        return;
    }
    // Arrange: replica A alone, its start-up pass under way over slow answers, webhooks
    // streaming in to it.
    const USERS: i64 = 1_500;
    let fake = fake_with_users(USERS, Duration::from_millis(100)).await;
    let db = TestDb::create(Backend::Postgres).await;
    open_store(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let mut a = Serve::start_with(&db.url, &fake, dir.path(), "a", &LEASE);
    eventually("A's pass to be under way", PATIENCE, || async {
        first_run(&a, &client).await.filter(|r| r["state"] == "running" && r["fetched"].as_i64() > Some(50))
    })
    .await;
    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let posting = Arc::new(AtomicBool::new(true));
    let poster = tokio::spawn({
        let (client, base, accepted, posting) = (client.clone(), a.base.clone(), accepted.clone(), posting.clone());
        async move {
            let mut sender = 0;
            while posting.load(Ordering::Relaxed) {
                let batch = stream::iter(0..8).map(|i| post_star(&client, &base, (sender + i) % USERS + 1));
                for (guid, status) in batch.buffer_unordered(8).collect::<Vec<_>>().await {
                    if status == Some(202) {
                        accepted.lock().unwrap().push(guid);
                    }
                }
                sender += 8;
            }
        }
    });

    // Act: freeze A at a moment it holds both users and deliveries, then kill it.
    let (held_deliveries, held_users) = eventually("A frozen while holding users and deliveries", PATIENCE, || async {
        a.signal("STOP");
        let (deliveries, users) = held(&db).await;
        if !deliveries.is_empty() && !users.is_empty() {
            return Some((deliveries, users));
        }
        a.signal("CONT");
        None
    })
    .await;
    a.kill().await;
    let killed_at = Utc::now();
    posting.store(false, Ordering::Relaxed);
    poster.await.unwrap();
    let others: Vec<Serve> =
        ["b", "c"].iter().map(|name| Serve::start_with(&db.url, &fake, dir.path(), name, &LEASE)).collect();

    // Assert: the pass (the one A started) ends finished, with every user synced.
    let run = eventually("the pass to finish", PATIENCE, || async {
        first_run(&others[0], &client).await.filter(|r| r["state"] != "running")
    })
    .await;
    assert_eq!(run["state"], "finished", "{run}");
    let runs = others[0].runs(&client).await;
    assert_eq!(runs.len(), 1, "A's pass was finished, not replaced: {runs:?}");
    let store = open_store(&db).await;
    // Users the stars mark due after the pass began are the webhook refresher's (a star
    // A held is applied by another replica once A's lease runs out): waited for, not raced.
    eventually("every user synced", PATIENCE, || async {
        let now = Utc::now();
        (store.count_due_users(now, now - chrono::Duration::hours(12)).await.ok()? == 0).then_some(())
    })
    .await;
    for id in &held_users {
        let user = store.user_by_id(GitHubUserId::new(*id).unwrap()).await.unwrap().unwrap();
        assert!(
            user.last_synced_at.is_some_and(|t| t > killed_at),
            "user {id}, A's when killed, synced after: {user:?}"
        );
    }

    // Assert: every delivery A accepted is applied, those it held by another process.
    let accepted = accepted.lock().unwrap().clone();
    eventually("every accepted delivery to be applied", PATIENCE, || async {
        (store.inbox_stats().await.ok()?.pending == 0).then_some(())
    })
    .await;
    for guid in accepted.iter().chain(&held_deliveries) {
        let record = store.delivery(&DeliveryId::parse(guid).unwrap()).await.unwrap().expect("stored");
        assert_eq!(record.state, DeliveryState::Done, "{record:?}");
    }
    for guid in &held_deliveries {
        let record = store.delivery(&DeliveryId::parse(guid).unwrap()).await.unwrap().unwrap();
        assert!(record.attempts >= 2, "held by A when killed, so claimed again by another: {record:?}");
    }
    for serve in &others {
        assert!(database_errors(&serve.log()).is_empty(), "a database error:\n{}", serve.log());
    }
}

/// Records every change of a user's bio, in order, in `bio_log` (a test-only trigger).
async fn log_bio_changes(db: &TestDb) {
    let mut conn = pg(db).await;
    for statement in [
        "CREATE TABLE bio_log (n BIGSERIAL PRIMARY KEY, github_id BIGINT NOT NULL, bio TEXT)",
        "CREATE FUNCTION log_bio() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN INSERT INTO bio_log (github_id, bio) VALUES (NEW.github_id, NEW.bio); RETURN NEW; END $$",
        "CREATE TRIGGER users_bio AFTER UPDATE OF bio ON users FOR EACH ROW \
         WHEN (NEW.bio IS DISTINCT FROM OLD.bio) EXECUTE FUNCTION log_bio()",
    ] {
        sqlx::query(statement).execute(&mut conn).await.unwrap();
    }
}

/// Per user, the versions ghsync stored, in the order it stored them.
async fn stored_versions(db: &TestDb) -> BTreeMap<i64, Vec<u64>> {
    let rows: Vec<(i64, Option<String>)> =
        sqlx::query_as("SELECT github_id, bio FROM bio_log ORDER BY n").fetch_all(&mut pg(db).await).await.unwrap();
    let mut versions: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
    for (id, bio) in rows {
        let version = bio.as_deref().and_then(|b| b.strip_prefix("version ")).and_then(|v| v.parse().ok());
        versions.entry(id).or_default().push(version.unwrap_or(0));
    }
    versions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_that_come_back_after_the_lease_was_lost_never_overwrite_newer_ones() {
    if !Backend::postgres_available() {
        return;
    }
    // Arrange: a slow GitHub (answers 3 s after the request, longer than the 2 s lease) whose
    // every answer is a new version of the profile; replica A alone, its pass waiting on answers.
    const USERS: i64 = 60;
    let fake = fake_with_users(USERS, Duration::ZERO).await;
    fake.set_faults(Faults { user_answer_delay: Duration::from_secs(3), profile_versions: true, ..Faults::default() });
    let db = TestDb::create(Backend::Postgres).await;
    open_store(&db).await;
    log_bio_changes(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let a = Serve::start_with(&db.url, &fake, dir.path(), "a", &LEASE);
    eventually("A to wait on GitHub's answers", PATIENCE, || async {
        (fake.stats().user_answers_waiting > 0).then_some(())
    })
    .await;

    // Act: A freezes with answers on their way (a long GC pause, a stalled VM); its leases run
    // out and a `reconcile` takes its users and its pass over; then A wakes up to its old answers.
    a.signal("STOP");
    let b = Reconcile::start(&db.url, &fake, dir.path(), "b", &[], &LEASE);
    eventually("B to store every user", PATIENCE, || async {
        (stored_versions(&db).await.len() == USERS as usize).then_some(())
    })
    .await;
    // Woken well within its HTTP timeout, so its old answers are read, not timed out.
    a.signal("CONT");
    let (code, log) = b.finish().await;

    // Assert: the reconcile finished the pass; A's late answers were refused as a lost lease.
    assert_eq!(code, 0, "{log}");
    assert!(database_errors(&log).is_empty(), "{log}");
    // A ends its part either way: it still owns the pass if it woke before B took it over (and
    // then ends it, `failed` if its own database calls timed out across the freeze).
    eventually("A to end its part of the pass", PATIENCE, || async {
        let log = a.log();
        ["pass finished", "pass failed", "the pass was taken over by another process"]
            .iter()
            .any(|line| log.contains(line))
            .then_some(())
    })
    .await;
    let runs = open_store(&db).await.runs(10).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");

    // Assert: no user was ever written with an older version than one stored before it.
    let versions = stored_versions(&db).await;
    assert_eq!(versions.len(), USERS as usize, "every user stored: {versions:?}");
    for (id, written) in &versions {
        assert!(written.windows(2).all(|w| w[0] < w[1]), "user {id} went back to an older answer: {written:?}");
    }
    assert!(a.log().contains("lease lost: users taken over"), "A's answers were refused:\n{}", a.log());
    assert!(database_errors(&a.log()).is_empty(), "{}", a.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_posted_round_robin_to_three_replicas_are_each_applied_once() {
    if !Backend::postgres_available() {
        return;
    }
    // Arrange: three replicas on one database (short leases, renewed while applied), 20 users.
    const USERS: i64 = 20;
    const DELIVERIES: usize = 600;
    let fake = fake_with_users(USERS, Duration::ZERO).await;
    let db = TestDb::create(Backend::Postgres).await;
    open_store(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let replicas: Vec<Serve> =
        ["r0", "r1", "r2"].iter().map(|name| Serve::start_with(&db.url, &fake, dir.path(), name, &LEASE)).collect();
    for replica in &replicas {
        replica.wait_up(&client).await;
    }
    // The 20 are tracked before their activity comes: a star by anyone else would go in
    // settled as ignored, and no worker would claim it.
    let store = open_store(&db).await;
    eventually("the 20 users to be tracked", PATIENCE, || async {
        for id in 1..=USERS {
            store.user_by_id(GitHubUserId::new(id).unwrap()).await.ok()??;
        }
        Some(())
    })
    .await;

    // Act: a burst, each delivery to the next replica in turn.
    let answers: Vec<(String, Option<u16>)> = stream::iter(0..DELIVERIES)
        .map(|i| post_star(&client, &replicas[i % 3].base, i as i64 % USERS + 1))
        .buffer_unordered(16)
        .collect()
        .await;

    // Assert: every one accepted, applied, and claimed by exactly one worker exactly once.
    assert!(answers.iter().all(|(_, s)| *s == Some(202)), "{:?}", answers.iter().map(|a| a.1).collect::<Vec<_>>());
    eventually("the inbox to drain", PATIENCE, || async {
        (store.inbox_stats().await.ok()?.pending == 0).then_some(())
    })
    .await;
    let guids: HashSet<&String> = answers.iter().map(|(g, _)| g).collect();
    assert_eq!(guids.len(), DELIVERIES);
    for guid in guids {
        let record = store.delivery(&DeliveryId::parse(guid).unwrap()).await.unwrap().expect("stored");
        assert_eq!(record.state, DeliveryState::Done, "{record:?}");
        assert_eq!(record.attempts, 1, "applied more than once: {record:?}");
    }
    assert_eq!(store.inbox_stats().await.unwrap().failed, 0);
    for replica in &replicas {
        assert!(database_errors(&replica.log()).is_empty(), "a database error:\n{}", replica.log());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_reconcile_beside_a_serve_pass_over_a_slow_github_fetches_no_user_twice() {
    // Arrange: `serve` on a SQLite file; GitHub answers after 7 s, longer than the 5 s lease,
    // so only renewals keep a batch's users from being claimed again by the other process.
    // Not the file's 2 s: a renewal is a write, and under the whole suite's load a SQLite
    // commit (its fsync) has stalled past the two renewals a 2 s lease may miss, which is
    // a lease lost (once in the full suite, never alone or beside busy CPUs).
    const USERS: i64 = 300;
    const LEASE: [(&str, &str); 1] = [("GHSYNC_LEASE", "5s")];
    let fake: FakeGitHub = fake_with_users(USERS, Duration::ZERO).await;
    fake.set_faults(Faults { user_answer_delay: Duration::from_secs(7), ..Faults::default() });
    let db = TestDb::create(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let serve = Serve::start_with(&db.url, &fake, dir.path(), "serve", &LEASE);
    eventually("serve's pass to be under way", PATIENCE, || async {
        (fake.stats().user_answers_waiting > 0).then_some(())
    })
    .await;

    // Act: a reconcile joins while serve waits on GitHub.
    let (code, log) = Reconcile::start(&db.url, &fake, dir.path(), "beside", &[], &LEASE).finish().await;

    // Assert: it joined and exited 0; the pass finished; each user fetched exactly once.
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("(joined)"), "the reconcile joined serve's pass:\n{log}");
    let run = eventually("the pass to finish", PATIENCE, || async {
        first_run(&serve, &client).await.filter(|r| r["state"] != "running")
    })
    .await;
    assert_eq!(run["state"], "finished", "{run}");
    let fetches = fake.stats().rest_fetches_by_user;
    assert_eq!(fetches.len(), USERS as usize, "every user fetched: {fetches:?}");
    let twice: Vec<(&i64, &u64)> = fetches.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "fetched more than once (a live lease was lost): {twice:?}");
    for log in [log, serve.log()] {
        assert!(database_errors(&log).is_empty(), "a database error:\n{log}");
        assert!(!log.contains("lease lost"), "no process here stalled:\n{log}");
    }
}
