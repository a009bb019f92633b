//! The inbox worker applies a claimed round at once (`inbox/apply.rs`): a
//! run of activity is one read and one write. What it must still do is what
//! applying the round one delivery at a time did, in the order claimed.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use std::sync::Arc;
use tokio::sync::Notify;

use fake_github::{FakeUser, payloads};
use ghsync::domain::{
    ClaimedDelivery, DeliveryId, DueKind, EventName, GitHubUserId, Login, ProfileHash, UserOutcome, UserStatus,
};
use ghsync::inbox::{ApplyOutcome, apply};
use ghsync::store::Store;

use crate::both_backends;
use crate::helpers::{TestDb, open_store};

fn delivery(n: usize, event: &str, payload: serde_json::Value) -> ClaimedDelivery {
    ClaimedDelivery {
        id: DeliveryId::parse(&format!("round-{n}")).unwrap(),
        event: EventName::parse(event).unwrap(),
        payload: payload.to_string(),
        attempts: 1,
    }
}

/// A star by user `id`, whose payload calls them `login`.
fn star(n: usize, id: i64, login: &str) -> ClaimedDelivery {
    let mut sender = FakeUser::sample(id);
    sender.login = login.into();
    delivery(n, "star", payloads::simple_event_with_sender(&sender))
}

fn account(id: i64) -> ghsync::domain::Account {
    ghsync::domain::Account {
        id: GitHubUserId::new(id).unwrap(),
        login: Login::from_github(&format!("user{id}")).unwrap(),
        node_id: None,
        avatar_url: None,
        kind: ghsync::domain::AccountKind::User,
        installation_id: None,
    }
}

async fn user(store: &Arc<dyn Store>, id: i64) -> ghsync::domain::UserRecord {
    store.user_by_id(GitHubUserId::new(id).unwrap()).await.unwrap().expect("tracked")
}

fn applied<E>(outcome: &Result<ApplyOutcome, E>) -> bool {
    matches!(outcome, Ok(ApplyOutcome::Applied(_)))
}

/// Tracks `ids` and records a fetch for each at `synced`, so that none is due.
async fn tracked_and_synced(store: &Arc<dyn Store>, ids: &[i64], synced: DateTime<Utc>) {
    for &id in ids {
        assert!(store.track_user(&account(id), synced).await.unwrap());
    }
    let lease = ghsync::domain::Lease::new(synced, Duration::minutes(5));
    let claimed = store
        .claim_due_users(DueKind::All { due_by: synced, synced_before: synced }, ids.len(), synced, &lease)
        .await
        .unwrap();
    assert_eq!(claimed.len(), ids.len());
    let fetched: Vec<_> = claimed
        .iter()
        .map(|u| UserOutcome::Unchanged { id: u.github_id, observed: ProfileHash::from_stored("seen".into()) })
        .collect();
    assert_eq!(store.record_outcomes(&fetched, Some(&lease.id), synced, synced).await.unwrap(), vec![]);
}

both_backends! {
    async fn a_round_marks_each_synced_sender_due_ignores_the_rest_and_keeps_its_order(backend: Backend) {
        // Arrange: two synced users (7001, 7002), neither due; 7003 is not tracked.
        let db = TestDb::create(backend).await;
        let store = open_store(&db).await;
        let synced = Utc::now().trunc_subsecs(3) - Duration::hours(1);
        tracked_and_synced(&store, &[7001, 7002], synced).await;
        assert!(user(&store, 7001).await.next_sync_at.is_none(), "a fetched user is not due");
        let revoker = FakeUser::sample(7002);
        let round = vec![
            star(1, 7001, "first-name"),
            star(2, 7003, "stranger"),
            star(3, 7002, "user7002"),
            star(4, 7001, "second-name"),
            // 7002 revokes the App: activity after it, in the same round, is not theirs to sync.
            delivery(5, "github_app_authorization", payloads::github_app_authorization_revoked(&revoker)),
            star(6, 7002, "user7002"),
        ];

        // Act
        let before = Utc::now();
        let outcomes = apply(&store, &Notify::new(), &round).await;

        // Assert
        let got: Vec<bool> = outcomes.iter().map(applied).collect();
        assert_eq!(got, [true, false, true, true, true, false], "{outcomes:?}");
        let first = user(&store, 7001).await;
        assert_eq!(first.login.as_ref().map(Login::as_str).unwrap(), "second-name", "the round's last payload names the user");
        let due = first.next_sync_at.expect("activity makes a synced user due");
        assert!(due > before && due < before + Duration::minutes(5), "debounced, not now and not much later: {due}");
        assert_eq!(user(&store, 7002).await.status, UserStatus::Revoked);
    }

    async fn a_round_of_activity_by_senders_we_do_not_sync_writes_nothing_to_users(backend: Backend) {
        // Arrange
        let db = TestDb::create(backend).await;
        let store = open_store(&db).await;
        let synced = Utc::now().trunc_subsecs(3) - Duration::hours(1);
        tracked_and_synced(&store, &[7101], synced).await;
        let before = user(&store, 7101).await;
        let round: Vec<_> = (0..50).map(|n| star(n, 7200 + n as i64, &format!("someone{n}"))).collect();

        // Act
        let outcomes = apply(&store, &Notify::new(), &round).await;

        // Assert
        assert!(outcomes.iter().all(|o| matches!(o, Ok(ApplyOutcome::Ignored(_)))), "{outcomes:?}");
        assert_eq!(db.count("SELECT COUNT(*) FROM users").await, 1, "no sender became a user");
        let after = user(&store, 7101).await;
        assert_eq!((after.login, after.next_sync_at), (before.login, before.next_sync_at));
    }
}
