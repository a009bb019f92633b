//! A pass lists every installation again. Those listed exactly as stored are
//! only marked seen (`store/sql/relisting.rs`); anything that differs must
//! still go the long way, with everything it implies for the user.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use std::sync::Arc;

use ghsync::domain::{
    Account, AccountKind, GitHubUserId, InstallationId, InstallationRecord, InstallationState, Login, NodeId,
    UserStatus,
};
use ghsync::store::Store;

use crate::both_backends;
use crate::helpers::{TestDb, open_store};

fn t0() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

/// Installation `id` on the account of user `id`, logged in as `login`.
fn listed(id: i64, login: &str) -> InstallationRecord {
    InstallationRecord {
        id: InstallationId::new(id).unwrap(),
        account: Some(Account {
            id: GitHubUserId::new(id).unwrap(),
            login: Login::from_github(login).unwrap(),
            node_id: Some(NodeId::parse(fake_github::FakeUser::sample(id).node_id).unwrap()),
            avatar_url: Some(format!("https://avatars.example/{id}")),
            kind: AccountKind::User,
            installation_id: None,
        }),
        state: InstallationState::Active,
    }
}

async fn user(store: &Arc<dyn Store>, id: i64) -> ghsync::domain::UserRecord {
    store.user_by_id(GitHubUserId::new(id).unwrap()).await.unwrap().expect("the user is tracked")
}

both_backends! {
    async fn a_first_listing_tracks_each_new_users_account_at_once_erased_or_not(backend: Backend) {
        // Arrange: user 6 disconnected earlier (a tombstone), user 7 linked through the API.
        let db = TestDb::create(backend).await;
        let store = open_store(&db).await;
        let now = t0();
        let linked = |id: i64| listed(id, &format!("user{id}")).account.unwrap();
        assert!(store.track_user(&linked(6), now).await.unwrap());
        assert!(store.erase_user(GitHubUserId::new(6).unwrap()).await.unwrap());
        assert!(store.track_user(&linked(7), now).await.unwrap());
        let mut org = listed(8, "acme");
        org.account.as_mut().unwrap().kind = AccountKind::Organization;

        // Act: all of them listed for the first time.
        let page = vec![listed(5, "user5"), listed(6, "user6"), listed(7, "user7"), org];
        let newly_active = store.upsert_installations(&page, now).await.unwrap();

        // Assert: every installation is news; each user is tracked, active and due now.
        assert_eq!(newly_active, 4);
        for id in [5, 6, 7] {
            let u = user(&store, id).await;
            assert_eq!((u.status, u.next_sync_at), (UserStatus::Active, Some(now)), "user {id}");
            assert_eq!(u.installation_id, Some(InstallationId::new(id).unwrap()), "user {id}");
            assert_eq!(u.avatar_url.as_deref(), Some(format!("https://avatars.example/{id}").as_str()), "user {id}");
        }
        // An organization is no user of ours.
        assert!(store.user_by_id(GitHubUserId::new(8).unwrap()).await.unwrap().is_none());
        assert!(store.unseen_installations(now, None, 10).await.unwrap().is_empty());
    }

    async fn a_relisting_marks_the_unchanged_seen_and_still_applies_every_change(backend: Backend) {
        // Arrange: four installations listed once; user 2 revoked us since; installation 3 suspended.
        let db = TestDb::create(backend).await;
        let store = open_store(&db).await;
        let (first, second) = (t0(), t0() + Duration::minutes(10));
        let page: Vec<_> = (1..=4).map(|id| listed(id, &format!("user{id}"))).collect();
        assert_eq!(store.upsert_installations(&page, first).await.unwrap(), 4);
        store.revoke_user(GitHubUserId::new(2).unwrap(), first).await.unwrap();
        store.set_installation_state(InstallationId::new(3).unwrap(), InstallationState::Suspended, first).await.unwrap();
        let before = user(&store, 1).await;

        // Act: listed again, 1 and 2 as stored, 3 active again, 4 renamed, 5 new.
        let mut again: Vec<_> = (1..=3).map(|id| listed(id, &format!("user{id}"))).collect();
        again.push(listed(4, "renamed4"));
        again.push(listed(5, "user5"));
        let newly_active = store.upsert_installations(&again, second).await.unwrap();

        // Assert: every one of them is seen now, so none is taken for gone.
        let unseen = store.unseen_installations(second, None, 10).await.unwrap();
        assert!(unseen.is_empty(), "all listed installations are seen: {unseen:?}");
        // 3 came back and 5 is new: those two are news.
        assert_eq!(newly_active, 2);
        // The unchanged user's row is as it was.
        let after = user(&store, 1).await;
        assert_eq!((after.status, after.login.clone(), after.next_sync_at), (before.status, before.login, before.next_sync_at));
        // A re-listing is no news for a user who revoked us.
        assert_eq!(user(&store, 2).await.status, UserStatus::Revoked);
        // The reactivated installation's user follows it, due now.
        let back = user(&store, 3).await;
        assert_eq!(back.status, UserStatus::Active);
        assert_eq!(back.next_sync_at, Some(second), "reactivated: due at once");
        // The rename reaches the user; the new one is tracked.
        assert_eq!(user(&store, 4).await.login.unwrap().as_str(), "renamed4");
        assert_eq!(user(&store, 5).await.status, UserStatus::Active);
    }
}
