//! The missed-delivery sweep against the fake GitHub's deliveries API.

use chrono::Utc;
use fake_github::payloads;

use crate::both_backends;
use crate::helpers::{SECRET, spawn_app};

/// A port nothing listens on: GitHub's attempt fails to connect.
const NOWHERE: &str = "http://127.0.0.1:9/webhooks/github";

both_backends! {
    async fn a_delivery_that_never_reached_us_is_redelivered_once_and_applied(backend: Backend) {
        let app = spawn_app(backend).await;
        let user = app.github_user(8001);
        app.github.set_webhook_target(NOWHERE, SECRET);
        let payload = payloads::installation_event("created", &app.github.installation_payload(8001), &user);
        assert!(app.github.deliver("installation", &payload).await.is_err(), "the attempt must fail");
        app.github.set_webhook_target(&format!("{}/webhooks/github", app.address), SECRET);

        let first = app.redeliveries.sweep().await.unwrap();
        assert_eq!(first.requested, 1);
        app.drain_inbox().await;
        app.user_where(8001, "the redelivered installation applied", |u| u.last_synced_at.is_some()).await;

        let second = app.redeliveries.sweep().await.unwrap();
        assert_eq!(second.requested, 0, "the GUID is in the inbox now");
        assert_eq!(app.github.stats().requests.get("redeliver").copied().unwrap_or(0), 1);
    }

    async fn a_delivery_we_answered_is_never_redelivered(backend: Backend) {
        let app = spawn_app(backend).await;
        app.install(8002).await;
        app.drain_inbox().await;
        let report = app.redeliveries.sweep().await.unwrap();
        assert_eq!(report.requested, 0);
        assert!(report.attempts_seen >= 1);
    }

    async fn a_guid_is_asked_for_at_most_three_times(backend: Backend) {
        let app = spawn_app(backend).await;
        let now = Utc::now();
        let later = now + chrono::Duration::seconds(1);
        let booked: Vec<bool> = futures_util::future::join_all((0..4).map(|_| app.store().book_redelivery("guid-1", 3, later, now))).await
            .into_iter().map(Result::unwrap).collect();
        assert_eq!(booked.iter().filter(|b| **b).count(), 3, "{booked:?}");
        assert!(!app.store().book_redelivery("guid-1", 3, later, now).await.unwrap());
        // And not again while the last request may be in flight.
        assert!(app.store().book_redelivery("guid-2", 3, now - chrono::Duration::minutes(5), now).await.unwrap());
        assert!(!app.store().book_redelivery("guid-2", 3, now - chrono::Duration::minutes(5), now).await.unwrap());
    }
}
