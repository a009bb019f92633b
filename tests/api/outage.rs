//! Our own outages are not the payload's fault: a delivery that failed
//! because the database failed is retried until it applies, never parked;
//! and `POST /admin/deliveries/{guid}/retry` sends a parked one back.
//!
//! The outage is simulated deterministically on both backends: a trigger
//! makes every write to `installations` fail (claims and settlements of the
//! inbox still work), and is dropped when "the database is back".

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::json;
use sqlx::Connection;

use crate::both_backends;
use crate::helpers::{Backend, PATIENCE, TestApp, eventually, spawn_app};
use fake_github::{FakeUser, payloads};
use ghsync::domain::{DeliveryId, DeliveryRecord, DeliveryState};
use ghsync::inbox::MAX_ATTEMPTS;

async fn sql(app: &TestApp, statements: &[&str]) {
    if app.db.url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
        for s in statements {
            sqlx::query(sqlx::AssertSqlSafe(s.to_string())).execute(&mut conn).await.unwrap();
        }
    } else {
        let mut conn = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
        for s in statements {
            sqlx::query(sqlx::AssertSqlSafe(s.to_string())).execute(&mut conn).await.unwrap();
        }
    }
}

async fn outage_begins(app: &TestApp) {
    if app.db.url.starts_with("sqlite") {
        sql(app, &["CREATE TRIGGER outage BEFORE INSERT ON installations BEGIN SELECT RAISE(ABORT, 'simulated outage'); END"]).await;
    } else {
        sql(app, &[
            "CREATE FUNCTION outage() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'simulated outage'; END $$",
            "CREATE TRIGGER outage BEFORE INSERT OR UPDATE ON installations FOR EACH ROW EXECUTE FUNCTION outage()",
        ])
        .await;
    }
}

async fn outage_ends(app: &TestApp) {
    let on = if app.db.url.starts_with("sqlite") { "" } else { " ON installations" };
    sql(app, &[&format!("DROP TRIGGER outage{on}")]).await;
}

async fn delivery(app: &TestApp, guid: &str) -> DeliveryRecord {
    app.store().delivery(&DeliveryId::parse(guid).unwrap()).await.unwrap().expect("the delivery is stored")
}

async fn delivery_where(
    app: &TestApp,
    guid: &str,
    what: &str,
    check: impl Fn(&DeliveryRecord) -> bool,
) -> DeliveryRecord {
    eventually(what, PATIENCE, || async { Some(delivery(app, guid).await).filter(|d| check(d)) }).await
}

both_backends! {
    async fn a_database_outage_longer_than_the_retry_window_parks_nothing(backend: Backend) {
        let app = spawn_app(backend).await;
        app.github_user(6501);
        outage_begins(&app).await;
        let guid = app.send_installation("created", 6501).await;
        delivery_where(&app, &guid, "a first failed try", |d| d.attempts >= 1 && d.last_error.is_some()).await;

        // As if the outage had lasted past every try the old window allowed: due again now.
        sql(&app, &[&format!(
            "UPDATE webhook_deliveries SET attempts = {}, next_attempt_at = CURRENT_TIMESTAMP WHERE delivery_id = '{guid}'",
            MAX_ATTEMPTS * 2
        )])
        .await;
        let during = delivery_where(&app, &guid, "a try past the old window", |d| d.attempts > MAX_ATTEMPTS * 2).await;
        assert_eq!(during.state, DeliveryState::Pending, "not parked: {during:?}");
        assert!(during.last_error.as_deref().is_some_and(|e| e.contains("simulated outage")), "{during:?}");

        outage_ends(&app).await;
        let after = delivery_where(&app, &guid, "the delivery to apply once the database is back", |d| {
            d.state != DeliveryState::Pending
        })
        .await;
        assert_eq!(after.state, DeliveryState::Done, "{after:?}");
        assert_eq!(app.user(6501).await.expect("tracked").status.as_str(), "active");
        assert_eq!(app.store().inbox_stats().await.unwrap().failed, 0);
    }

    async fn a_parked_delivery_can_be_retried_and_only_a_parked_one(backend: Backend) {
        let app = spawn_app(backend).await;
        let sender = FakeUser::sample(6502);
        let broken = json!({"action": "created", "sender": payloads::simple_user(&sender)});
        let parked = app.deliver("installation", &broken).await;
        let ignored = app.deliver("star", &payloads::simple_event_with_sender(&sender)).await;
        app.drain_inbox().await;
        assert_eq!(delivery(&app, &parked).await.state, DeliveryState::Failed);
        let retry = |guid: String| app.admin(Method::POST, &format!("/admin/deliveries/{guid}/retry")).send();

        let unknown = retry("no-such-delivery".into()).await.unwrap();
        assert_eq!(unknown.status().as_u16(), 404);
        let not_parked = retry(ignored.clone()).await.unwrap();
        assert_eq!(not_parked.status().as_u16(), 409);
        let unauthenticated =
            app.client.post(format!("{}/admin/deliveries/{parked}/retry", app.address)).send().await.unwrap();
        assert_eq!(unauthenticated.status().as_u16(), 401);

        let retried = retry(parked.clone()).await.unwrap();
        assert_eq!(retried.status().as_u16(), 202);
        let body: serde_json::Value = retried.json().await.unwrap();
        assert_eq!((body["guid"].as_str(), body["state"].as_str(), body["attempts"].as_i64()), (Some(parked.as_str()), Some("pending"), Some(0)), "{body}");
        // Still broken: the worker tries it again and parks it again.
        let again = delivery_where(&app, &parked, "the retried delivery to be tried", |d| d.attempts >= 1 && d.state != DeliveryState::Pending).await;
        assert_eq!(again.state, DeliveryState::Failed);
    }
}

/// The server ends every connection the service holds while they sit idle in
/// its pool (a restart, a failover, an operator's `pg_terminate_backend`):
/// the webhooks that come next are answered 202 and stored all the same. The
/// pool does not test a connection before lending it, so each dead one fails
/// its next statement, and the store runs that statement again on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_right_after_the_server_ended_every_connection_are_stored() {
    if !Backend::postgres_available() {
        return;
    }
    let app = spawn_app(Backend::Postgres).await;
    let payload = payloads::simple_event_with_sender(&app.github_user(1));
    // Arrange: several connections open in the pool, idle.
    join_all((0..16).map(|_| app.deliver("star", &payload))).await;
    app.drain_inbox().await;

    // Act: the server ends them all, then webhooks arrive, at once.
    let mut admin = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
    let ended: i64 = sqlx::query_scalar(
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(ended >= 2, "the pool held {ended} connection(s): the test needs several");
    // `deliver` asserts each is answered 202.
    let guids = join_all((0..16).map(|_| app.deliver("star", &payload))).await;

    // Assert: each is stored, and applied.
    app.drain_inbox().await;
    for guid in guids {
        let stored = delivery(&app, &guid).await;
        assert_eq!(stored.state, DeliveryState::Ignored, "{stored:?}");
    }
}
