//! Replicas share the rate governor while they run. Three `serve` replicas
//! and a `ghsync reconcile` (the real binary) on one PostgreSQL database
//! sync users through two installations whose budgets are tight — 300 points
//! a 3-second window each, a concurrency cap answered with `retry-after`,
//! tokens that expire in 20 s — with no reserve kept, so the processes spend
//! each budget to its last point: a point more, from any of them, would be
//! a request on a spent token. Together they send none on a spent, paused
//! or expired token, and the pass finishes.

use chrono::Utc;
use std::time::Duration;

use crate::helpers::binary::{Reconcile, Serve, database_errors};
use crate::helpers::{APP_ID, Backend, PATIENCE, TestDb, eventually, open_store};
use fake_github::{DEMO_APP_PUBLIC_KEY, FakeConfig, FakeGitHub, FakeUser, Faults};
use ghsync::domain::{Account, AccountKind, GitHubUserId, Login, NodeId};

/// Users linked without installing: every one is read with the two installations' tokens.
const LINKED: i64 = 1_200;
/// Points in each installation's window: four windows' worth of work for both together.
const BUDGET: u32 = 300;

async fn tight_fake() -> FakeGitHub {
    let fake =
        FakeGitHub::start(FakeConfig { app_id: APP_ID, app_public_key_pem: DEMO_APP_PUBLIC_KEY.into() }).await.unwrap();
    for id in 1..=2 {
        fake.add_user(FakeUser::sample(id));
        fake.add_installation(id, id);
    }
    for id in 11..11 + LINKED {
        fake.add_user(FakeUser::sample(id));
    }
    fake.set_faults(Faults {
        rate_limit: BUDGET,
        rate_window: Duration::from_secs(3),
        concurrency_cap: Some((4, 1)),
        token_lifetime: Duration::from_secs(20),
        latency: Duration::from_millis(20),
        ..Faults::default()
    });
    fake
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_together_never_send_on_a_spent_paused_or_expired_token() {
    if !Backend::postgres_available() {
        return;
    }
    // Arrange: the linked users known and due; nothing learnt of any budget yet.
    let fake = tight_fake().await;
    let db = TestDb::create(Backend::Postgres).await;
    let store = open_store(&db).await;
    let now = Utc::now();
    for id in 11..11 + LINKED {
        let user = FakeUser::sample(id);
        let account = Account {
            id: GitHubUserId::new(id).unwrap(),
            login: Login::from_github(&user.login).unwrap(),
            node_id: Some(NodeId::parse(user.node_id).unwrap()),
            avatar_url: None,
            kind: AccountKind::User,
            installation_id: None,
        };
        store.track_user(&account, now).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    // No reserve: the whole budget is the background's, to the last point. The per-minute
    // pace is raised to what the windows allow, so the windows are what binds.
    let env = [("GHSYNC_RATE_RESERVE", "0"), ("GHSYNC_REST_POINTS_PER_MINUTE", "12000")];

    // Act: three replicas start together (each wants the start-up pass) and a reconcile joins.
    let replicas: Vec<Serve> =
        (0..3).map(|i| Serve::start_with(&db.url, &fake, dir.path(), &format!("serve-{i}"), &env)).collect();
    let (code, log) = Reconcile::start(&db.url, &fake, dir.path(), "reconcile", &[], &env).finish().await;
    assert_eq!(code, 0, "{log}");
    let runs = eventually("the pass to finish", PATIENCE, || async {
        let runs = replicas[0].runs(&client).await;
        (runs.first().is_some_and(|r| r["state"] == "finished")).then_some(runs)
    })
    .await;

    // Assert: every user synced in one pass, no violation by any process, no database error.
    assert_eq!(runs.len(), 1, "exactly one run row: {runs:?}");
    let stats = fake.stats();
    assert_eq!(
        (stats.on_exhausted, stats.on_paused, stats.on_expired),
        (0, 0, 0),
        "requests on spent, paused or expired tokens, all processes together: {stats:#?}"
    );
    let now = Utc::now();
    assert_eq!(store.count_due_users(now, now - chrono::Duration::hours(12)).await.unwrap(), 0, "every user synced");
    assert!(stats.rest_user_fetches >= LINKED as u64, "{stats:#?}");
    for log in replicas.iter().map(Serve::log).chain([log]) {
        assert!(database_errors(&log).is_empty(), "a database error:\n{log}");
    }
}
