//! The request path's storage. SQLite's webhook committer
//! (`store/sqlite_group.rs`) has a connection and a thread of its own, so it
//! must store exactly what `insert_deliveries` does, and write only in the
//! process's write turn, so it must not starve the store's other writers.
//! Payloads are stored packed (`store/sql/packed.rs`); those stored as text
//! before are still read.

use chrono::{SubsecRound, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use ghsync::domain::{DeliveryId, DeliveryState, EventName, GitHubUserId, Ignore, InsertOutcome, Lease, NewDelivery};
use ghsync::store::{GroupCommit, GroupCommitter, Store, pack};
use sqlx::Connection;

use crate::helpers::{Backend, TestDb, open_store};

fn delivery(guid: &str, payload: &str, at: chrono::DateTime<Utc>) -> NewDelivery {
    NewDelivery {
        id: DeliveryId::parse(guid).unwrap(),
        event: EventName::parse("star").unwrap(),
        action: Some("created".into()),
        payload: payload.into(),
        packed: None,
        digest: None,
        ignore: None,
        received_at: at,
    }
}

async fn committer(store: &Arc<dyn Store>) -> Box<dyn GroupCommitter> {
    match store.group_commit().expect("the committer opens") {
        GroupCommit::Dedicated(committer) => committer,
        other => panic!("a SQLite file gets a committer of its own, not {other:?}"),
    }
}

/// Runs blocking committer calls off the runtime, as the writer's thread does.
async fn off_runtime<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// Claims what is due at `now`: (GUID, payload) pairs, by GUID.
async fn claim_payloads(store: &Arc<dyn Store>, now: chrono::DateTime<Utc>) -> Vec<(String, String)> {
    let lease = Lease::new(now, chrono::Duration::minutes(5));
    let claimed = store.claim_deliveries(10, now, &lease).await.unwrap();
    let mut pairs: Vec<(String, String)> = claimed.into_iter().map(|d| (d.id.to_string(), d.payload)).collect();
    pairs.sort();
    pairs
}

async fn raw_text(db: &TestDb, sql: &str) -> Vec<String> {
    let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_all(&mut conn).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_committer_stores_a_group_exactly_as_insert_deliveries_does() {
    let db = TestDb::create(Backend::Sqlite).await;
    let store = open_store(&db).await;
    let at = Utc::now().round_subsecs(6);
    let (a, b, c) = (
        "aaaaaaaa-1111-0000-0000-000000000000",
        "bbbbbbbb-1111-0000-0000-000000000000",
        "cccccccc-1111-0000-0000-000000000000",
    );
    // `b` went in through the store (sqlx) before.
    store.insert_deliveries(&[delivery(b, r#"{"n":"b"}"#, at)]).await.unwrap();

    let mut committer = committer(&store).await;
    let group = vec![
        NewDelivery { digest: Some(r#"{"digest":"a"}"#.into()), ..delivery(a, r#"{"n":"a"}"#, at) },
        delivery(b, r#"{"n":"b2"}"#, at),
        delivery(a, r#"{"n":"a2"}"#, at),
        // Packed already, as the request path's writer hands bodies in.
        NewDelivery { packed: Some(pack("{\"x\": \"\u{0}\"}")), ..delivery(c, "{\"x\": \"\u{0}\"}", at) },
    ];
    let outcomes = off_runtime(move || {
        let outcomes = committer.commit(&group);
        committer.pause();
        outcomes
    })
    .await;
    let outcomes: Vec<InsertOutcome> = outcomes.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        outcomes,
        [InsertOutcome::Inserted, InsertOutcome::Duplicate, InsertOutcome::Duplicate, InsertOutcome::Inserted]
    );

    // Each GUID once, packed by either writer (`sql/packed.rs`).
    let stored = raw_text(
        &db,
        "SELECT delivery_id || ' ' || (packed IS NOT NULL) || ' ' || length(payload) FROM webhook_payloads ORDER BY delivery_id",
    )
    .await;
    assert_eq!(stored, [format!("{a} 1 0"), format!("{b} 1 0"), format!("{c} 1 0")]);
    // Timestamps in the very text sqlx writes: SQLite compares them as text.
    let times =
        raw_text(&db, "SELECT DISTINCT received_at || ' ' || next_attempt_at || ' ' || state FROM webhook_deliveries")
            .await;
    assert_eq!(times.len(), 1, "one format for both writers: {times:?}");
    // And they compare as times: all three are due a moment later, none a moment before.
    assert!(claim_payloads(&store, at - chrono::Duration::milliseconds(1)).await.is_empty());
    let claimed = claim_payloads(&store, at + chrono::Duration::milliseconds(1)).await;
    // Each claim carries the first copy's digest, or else its payload exactly as it came, packed or not.
    let expected = [(a, r#"{"digest":"a"}"#), (b, r#"{"n":"b"}"#), (c, "{\"x\": \"\u{0}\"}")];
    assert_eq!(claimed, expected.map(|(id, p)| (id.to_owned(), p.to_owned())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_stream_of_groups_leaves_the_stores_other_writers_their_turn() {
    let db = TestDb::create(Backend::Sqlite).await;
    let store = open_store(&db).await;
    let mut committer = committer(&store).await;
    // Groups back to back, never pausing: the request path under a flood.
    let (stop, groups) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let flood = {
        let (stop, groups) = (stop.clone(), groups.clone());
        tokio::task::spawn_blocking(move || {
            while !stop.load(Ordering::Relaxed) {
                let n = groups.fetch_add(1, Ordering::Relaxed);
                let group: Vec<NewDelivery> =
                    (0..8).map(|i| delivery(&format!("flood-{n}-{i}"), "{}", Utc::now())).collect();
                for outcome in committer.commit(&group) {
                    assert_eq!(outcome.unwrap(), InsertOutcome::Inserted);
                }
            }
            committer.pause();
        })
    };
    let started = groups.load(Ordering::Relaxed);
    // Another writer (the inbox worker's, the reconciler's) gets in while the flood goes on.
    let other = tokio::time::timeout(
        Duration::from_secs(5),
        store.insert_deliveries(&[delivery("dddddddd-1111-0000-0000-000000000000", "{}", Utc::now())]),
    )
    .await;
    let during = groups.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    flood.await.unwrap();
    assert!(other.is_ok(), "the other writer waited over 5 s behind the committer");
    assert_eq!(other.unwrap().unwrap(), [InsertOutcome::Inserted]);
    assert!(during > started, "the committer kept going meanwhile ({started} → {during} groups)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_committer_writes_in_the_write_turn_and_hands_it_back_when_paused() {
    let db = TestDb::create(Backend::Sqlite).await;
    let store = open_store(&db).await;
    let mut committer = committer(&store).await;
    let guid = |n: u32| format!("eeeeeeee-{n:04}-0000-0000-000000000000");
    let (mut committer, outcome) = off_runtime(move || {
        let outcome = committer.commit(&[delivery(&guid(1), "{}", Utc::now())]);
        (committer, outcome)
    })
    .await;
    assert_eq!(outcome[0].as_ref().unwrap(), &InsertOutcome::Inserted);
    // Not paused yet: it holds the turn, so the store's writer waits for it
    // (in our queue, not in SQLite's busy handler)…
    let other = {
        let store = store.clone();
        tokio::spawn(async move { store.insert_deliveries(&[delivery(&guid(2), "{}", Utc::now())]).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!other.is_finished(), "another writer got in while the committer held the turn");
    // …and gets in as soon as it pauses.
    off_runtime(move || committer.pause()).await;
    assert_eq!(other.await.unwrap().unwrap(), [InsertOutcome::Inserted]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_memory_database_commits_through_its_own_pool() {
    let settings = ghsync::config::DatabaseSettings { url: secrecy::SecretString::from("sqlite::memory:") };
    let store = ghsync::store::open(&settings).await.expect("an in-memory database opens");
    // A second connection would open another, empty, database: the pool's one connection commits.
    assert!(matches!(store.group_commit().unwrap(), GroupCommit::Overlapping(1)));
    let stored = store.insert_deliveries(&[delivery("ffffffff-1111-0000-0000-000000000000", "{}", Utc::now())]).await;
    assert_eq!(stored.unwrap(), [InsertOutcome::Inserted]);
}

/// Writes a delivery as the store did before payloads were packed: text in `payload`.
async fn insert_as_text(db: &TestDb, guid: &str, payload: &str, at: chrono::DateTime<Utc>) {
    const ROW: &str = "INSERT INTO webhook_deliveries (delivery_id, event, action, state, attempts, received_at, \
         next_attempt_at) VALUES ($1, 'star', 'created', 'pending', 0, $2, $2)";
    const PAYLOAD: &str = "INSERT INTO webhook_payloads (delivery_id, payload) VALUES ($1, $2)";
    if db.url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query(ROW).bind(guid).bind(at).execute(&mut conn).await.unwrap();
        sqlx::query(PAYLOAD).bind(guid).bind(payload).execute(&mut conn).await.unwrap();
    } else {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query(ROW).bind(guid).bind(at).execute(&mut conn).await.unwrap();
        sqlx::query(PAYLOAD).bind(guid).bind(payload).execute(&mut conn).await.unwrap();
    }
}

crate::both_backends! {
    async fn a_payload_stored_as_text_before_packing_is_claimed_as_it_was(backend: Backend) {
        let db = TestDb::create(backend).await;
        let store = open_store(&db).await;
        let at = Utc::now().round_subsecs(3);
        let (old, new) = ("abababab-1111-0000-0000-000000000000", "cdcdcdcd-1111-0000-0000-000000000000");
        insert_as_text(&db, old, r#"{"stored":"as text"}"#, at).await;
        store.insert_deliveries(&[delivery(new, r#"{"stored":"packed"}"#, at)]).await.unwrap();
        let now = at + chrono::Duration::seconds(1);
        assert_eq!(claim_payloads(&store, now).await, [(old.to_owned(), r#"{"stored":"as text"}"#.to_owned()), (new.to_owned(), r#"{"stored":"packed"}"#.to_owned())]);
    }
}

/// A group of six, each marked as ingest marks it: activity by a synced user,
/// by one with syncing off, by a revoked one, by a stranger; an event nobody
/// acts on; and one the worker must read. GUIDs begin with `prefix`.
fn mixed_group(prefix: char, at: chrono::DateTime<Utc>) -> Vec<NewDelivery> {
    let ignore = |sender: Option<i64>| Ignore {
        note: format!("about {sender:?}"),
        unless_synced: sender.map(|id| GitHubUserId::new(id).unwrap()),
    };
    let marks = [
        Some(ignore(Some(77))),
        Some(ignore(Some(78))),
        Some(ignore(Some(79))),
        Some(ignore(Some(80))),
        Some(ignore(None)),
        None,
    ];
    marks
        .into_iter()
        .enumerate()
        .map(|(n, ignore)| NewDelivery {
            ignore,
            ..delivery(
                &format!("{prefix}{n}{prefix}{prefix}{prefix}{prefix}{prefix}{prefix}-2222-0000-0000-000000000000"),
                "{}",
                at,
            )
        })
        .collect()
}

crate::both_backends! {
    async fn what_the_worker_would_only_ignore_goes_in_settled_unless_its_sender_is_a_user_we_sync(backend: Backend) {
        // Arrange: user 77 is synced, 78 has syncing turned off, 79 revoked; 80 is nobody.
        let db = TestDb::create(backend).await;
        let store = open_store(&db).await;
        let at = Utc::now().round_subsecs(3);
        for id in [77, 78, 79] {
            let login = ghsync::domain::Login::from_github(&format!("user{id}")).unwrap();
            let account = ghsync::domain::Account {
                id: GitHubUserId::new(id).unwrap(),
                login,
                node_id: None,
                avatar_url: None,
                kind: ghsync::domain::AccountKind::User,
                installation_id: None,
            };
            store.track_user(&account, at).await.unwrap();
        }
        db.execute("UPDATE users SET sync_enabled = false WHERE github_id = 78").await;
        db.execute("UPDATE users SET status = 'revoked' WHERE github_id = 79").await;

        // Act: the group through the store, and (SQLite) again through the request path's committer.
        let mut runs = vec![store.insert_deliveries(&mixed_group('a', at)).await.unwrap()];
        if backend == Backend::Sqlite {
            let mut committer = committer(&store).await;
            let outcomes = off_runtime(move || {
                let outcomes = committer.commit(&mixed_group('b', at));
                committer.pause();
                outcomes
            })
            .await;
            runs.push(outcomes.into_iter().map(Result::unwrap).collect());
        }
        let again = store.insert_deliveries(&mixed_group('a', at)).await.unwrap();

        // Assert: only the synced user's activity and the unmarked one are left for the worker.
        use InsertOutcome::{Duplicate, Ignored, Inserted};
        for outcomes in &runs {
            assert_eq!(outcomes, &[Inserted, Ignored, Ignored, Ignored, Ignored, Inserted]);
        }
        assert_eq!(again, [Duplicate; 6], "a redelivery of a settled one is still a duplicate");
        let claimed = claim_payloads(&store, at + chrono::Duration::seconds(1)).await;
        let claimed: Vec<&str> = claimed.iter().map(|(guid, _)| &guid[..2]).collect();
        let expected: &[&str] = if backend == Backend::Sqlite { &["a0", "a5", "b0", "b5"] } else { &["a0", "a5"] };
        assert_eq!(claimed, expected);
        let stray = store.delivery(&mixed_group('a', at)[3].id).await.unwrap().unwrap();
        assert_eq!((stray.state, stray.attempts), (DeliveryState::Ignored, 0));
        assert_eq!(stray.last_error.as_deref(), Some("about Some(80)"), "settled with its note");
        let finished = "SELECT COUNT(*) FROM webhook_deliveries WHERE completed_at IS NOT NULL AND digest IS NULL";
        assert_eq!(db.count(finished).await, 4 * runs.len() as i64, "each ignored one is stamped complete");
        assert_eq!(db.count("SELECT COUNT(*) FROM webhook_payloads").await, 6 * runs.len() as i64, "every body kept");
    }
}
