//! The `Store` contract, straight against each backend: leases on due users
//! and deliveries, one running pass at a time, failures and marks kept.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use std::collections::HashSet;
use std::sync::Arc;

use ghsync::domain::{
    Account, AccountKind, DeliveryId, DueKind, EventName, GitHubUserId, Login, NewDelivery, NodeId, ProfileHash,
    RunStart, UserOutcome,
};
use ghsync::store::Store;

use crate::both_backends;
use crate::helpers::{Backend, TestDb, open_store};

async fn store_for(backend: Backend) -> (TestDb, Arc<dyn Store>) {
    let db = TestDb::create(backend).await;
    let store = open_store(&db).await;
    (db, store)
}

/// Whole milliseconds, so times survive either backend's precision unchanged.
fn t0() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

fn uid(id: i64) -> GitHubUserId {
    GitHubUserId::new(id).unwrap()
}

fn account(id: i64) -> Account {
    Account {
        id: uid(id),
        login: Login::from_github(&format!("user{id}")).unwrap(),
        node_id: Some(NodeId::parse(fake_github::FakeUser::sample(id).node_id).unwrap()),
        avatar_url: None,
        kind: AccountKind::User,
        installation_id: None,
    }
}

async fn track(store: &Arc<dyn Store>, ids: &[i64], now: DateTime<Utc>) {
    for id in ids {
        assert!(store.track_user(&account(*id), now).await.unwrap(), "user {id} is new");
    }
}

async fn claim_ids(store: &Arc<dyn Store>, which: DueKind, limit: usize, now: DateTime<Utc>) -> Vec<i64> {
    let mut ids: Vec<i64> = store
        .claim_due_users(which, limit, now, now + Duration::minutes(5))
        .await
        .unwrap()
        .iter()
        .map(|u| u.github_id.get())
        .collect();
    ids.sort_unstable();
    ids
}

/// A pass's claim in which nobody is stale by age: only marks, backoffs and the never synced.
const ALL: DueKind = DueKind::All { synced_before: DateTime::<Utc>::UNIX_EPOCH };

fn unchanged(id: i64) -> UserOutcome {
    UserOutcome::Unchanged { id: uid(id), observed: ProfileHash::from_stored("seen".into()) }
}

both_backends! {
    async fn claiming_due_users_leases_them_until_the_lease_expires(backend: Backend) {
        let (_db, store) = store_for(backend).await;
        let t0 = t0();
        track(&store, &[11, 12, 13], t0).await;
        let now = t0 + Duration::seconds(1);

        let first = claim_ids(&store, ALL, 2, now).await;
        assert_eq!(first.len(), 2, "the limit is respected: {first:?}");
        let second = claim_ids(&store, ALL, 10, now).await;
        assert_eq!(second.len(), 1, "only the unclaimed user is left: {second:?}");
        assert!(!first.contains(&second[0]));

        // Leased: nobody gets them again, whichever kind of claim asks.
        assert!(claim_ids(&store, ALL, 10, now + Duration::seconds(1)).await.is_empty());
        assert!(claim_ids(&store, DueKind::Marked, 10, now + Duration::seconds(1)).await.is_empty());
        assert!(claim_ids(&store, ALL, 10, now + Duration::minutes(4)).await.is_empty(), "the lease still holds");

        // The claimer died: once the lease expires, the users are claimable again.
        let after = now + Duration::minutes(5) + Duration::seconds(1);
        assert_eq!(claim_ids(&store, ALL, 10, after).await, vec![11, 12, 13]);
    }

    async fn a_delivery_the_database_cannot_hold_is_refused_as_the_datas_fault_not_an_outage(backend: Backend) {
        let (_db, store) = store_for(backend).await;
        // A NUL in text: PostgreSQL's text type cannot hold it (SQLite's can).
        let delivery = NewDelivery {
            id: DeliveryId::parse(&uuid::Uuid::new_v4().to_string()).unwrap(),
            event: EventName::parse("push").unwrap(),
            action: None,
            payload: "{\"x\": \"\u{0}\"}".into(),
            received_at: t0(),
        };
        let outcome = store.insert_deliveries(std::slice::from_ref(&delivery)).await;
        match backend {
            Backend::Postgres => {
                let e = outcome.expect_err("PostgreSQL refuses a NUL in text");
                assert!(matches!(e, ghsync::store::StoreError::Refused(_)), "{e:?}");
                assert!(!e.is_ours(), "the data's fault: worth no retry");
            }
            Backend::Sqlite => assert!(outcome.is_ok(), "{outcome:?}"),
        }
    }

    async fn claimed_deliveries_are_not_claimed_twice(backend: Backend) {
        let (_db, store) = store_for(backend).await;
        let t0 = t0();
        let deliveries: Vec<NewDelivery> = (0..8)
            .map(|_| NewDelivery {
                id: DeliveryId::parse(&uuid::Uuid::new_v4().to_string()).unwrap(),
                event: EventName::parse("push").unwrap(),
                action: None,
                payload: "{}".into(),
                received_at: t0,
            })
            .collect();
        store.insert_deliveries(&deliveries).await.unwrap();
        let now = t0 + Duration::seconds(1);
        let lease = now + Duration::minutes(1);

        // Four workers claim at once: no delivery goes to two of them.
        let claims = futures_util::future::join_all((0..4).map(|_| store.claim_deliveries(3, now, lease))).await;
        let mut seen: Vec<String> = Vec::new();
        for claim in claims {
            seen.extend(claim.unwrap().into_iter().map(|d| d.id.as_str().to_owned()));
        }
        let rest = store.claim_deliveries(10, now, lease).await.unwrap();
        seen.extend(rest.iter().map(|d| d.id.as_str().to_owned()));
        let distinct: HashSet<&String> = seen.iter().collect();
        assert_eq!(distinct.len(), seen.len(), "a delivery was claimed twice: {seen:?}");
        assert_eq!(distinct.len(), 8, "every delivery was claimed once");

        assert!(store.claim_deliveries(10, now + Duration::seconds(30), lease).await.unwrap().is_empty(), "leased");

        // The lease ran out (the worker died): they come back, one attempt more.
        let again = store.claim_deliveries(10, lease + Duration::seconds(1), lease + Duration::minutes(2)).await.unwrap();
        assert_eq!(again.len(), 8);
        assert!(again.iter().all(|d| d.attempts == 2), "{:?}", again.iter().map(|d| d.attempts).collect::<Vec<_>>());
    }

    async fn a_second_pass_is_refused_while_one_runs_and_an_abandoned_one_is_taken_over(backend: Backend) {
        let (_db, store) = store_for(backend).await;
        let t0 = t0();
        let abandon = Duration::minutes(10);
        let RunStart::Started(first) = store.start_run("test", t0, t0, t0 - abandon).await.unwrap() else {
            panic!("the first pass starts");
        };
        let at = t0 + Duration::minutes(1);
        assert_eq!(store.start_run("other", at, at, at - abandon).await.unwrap(), RunStart::AlreadyRunning(first));
        assert_eq!(store.running_run().await.unwrap(), Some(first));

        // A heartbeat keeps it alive past the time its start alone would allow.
        store.add_to_run(first, &Default::default(), t0 + Duration::minutes(2)).await.unwrap();
        let at = t0 + Duration::minutes(11);
        assert_eq!(store.start_run("other", at, at, at - abandon).await.unwrap(), RunStart::AlreadyRunning(first));

        // Silent for longer than `abandoned_before` allows: its process died, take over.
        let at = t0 + Duration::minutes(13);
        let RunStart::Started(second) = store.start_run("takeover", at, at, at - abandon).await.unwrap() else {
            panic!("an abandoned pass is taken over");
        };
        assert_ne!(second, first);
        let old = store.run(first).await.unwrap().expect("the old run is kept");
        assert_eq!(old.state, "abandoned");
        assert!(old.finished_at.is_some());
        assert_eq!(store.running_run().await.unwrap(), Some(second));

        store.finish_run(second, t0 + Duration::minutes(14)).await.unwrap();
        assert_eq!(store.running_run().await.unwrap(), None);
        let last = store.last_finished_run().await.unwrap().expect("a finished run");
        assert_eq!(last.id, second);
        let at = t0 + Duration::minutes(15);
        assert!(matches!(store.start_run("next", at, at, at - abandon).await.unwrap(), RunStart::Started(id) if id != second));
    }

    async fn a_failed_fetch_counts_the_failure_and_pushes_the_next_sync(backend: Backend) {
        let (_db, store) = store_for(backend).await;
        let t0 = t0();
        track(&store, &[21], t0).await;
        let now = t0 + Duration::seconds(1);
        assert_eq!(claim_ids(&store, ALL, 10, now).await, vec![21]);
        let retry_at = t0 + Duration::hours(1);
        let failed = UserOutcome::Failed { id: uid(21), error: "GitHub answered 502".into(), retry_at };
        store.record_outcomes(std::slice::from_ref(&failed), now, now + Duration::seconds(1)).await.unwrap();

        let user = store.user_by_id(uid(21)).await.unwrap().unwrap();
        assert_eq!(user.failures, 1);
        assert_eq!(user.last_error.as_deref(), Some("GitHub answered 502"));
        assert_eq!(user.next_sync_at, Some(retry_at));
        assert!(claim_ids(&store, ALL, 10, now + Duration::minutes(59)).await.is_empty(), "not before retry_at");

        // Due again at retry_at (and the lease was released, or this claim would wait for it).
        let later = retry_at + Duration::seconds(1);
        assert_eq!(claim_ids(&store, ALL, 10, later).await, vec![21]);
        let failed = UserOutcome::Failed { id: uid(21), error: "timeout".into(), retry_at: later + Duration::hours(2) };
        store.record_outcomes(&[failed], later, later).await.unwrap();
        let user = store.user_by_id(uid(21)).await.unwrap().unwrap();
        assert_eq!(user.failures, 2, "failures in a row add up");
        assert_eq!(user.next_sync_at, Some(later + Duration::hours(2)));

        // A success resets the count.
        let at = later + Duration::hours(2) + Duration::seconds(1);
        assert_eq!(claim_ids(&store, ALL, 10, at).await, vec![21]);
        store.record_outcomes(&[unchanged(21)], at, at).await.unwrap();
        let user = store.user_by_id(uid(21)).await.unwrap().unwrap();
        assert_eq!(user.failures, 0);
        assert_eq!(user.last_error, None);
    }

    async fn a_user_marked_due_while_being_fetched_keeps_the_mark(backend: Backend) {
        let (_db, store) = store_for(backend).await;
        let t0 = t0();
        track(&store, &[31, 32], t0).await;
        let claimed_at = t0 + Duration::seconds(1);
        assert_eq!(claim_ids(&store, DueKind::Marked, 10, claimed_at).await, vec![31, 32]);

        // While both are fetched, a webhook marks user 31 due (debounced, a little later).
        let due = t0 + Duration::seconds(5);
        store.mark_due(uid(31), due, t0 + Duration::seconds(2)).await.unwrap();
        let recorded_at = t0 + Duration::seconds(3);
        store.record_outcomes(&[unchanged(31), unchanged(32)], claimed_at, recorded_at).await.unwrap();

        // 31 keeps its mark: what we fetched may predate the change the webhook announced.
        assert_eq!(store.next_marked_due().await.unwrap(), Some(due));
        assert!(claim_ids(&store, DueKind::Marked, 10, t0 + Duration::seconds(4)).await.is_empty(), "not before the mark's time");
        // 32's mark (older than its fetch) was consumed by that fetch.
        assert_eq!(claim_ids(&store, DueKind::Marked, 10, due + Duration::seconds(1)).await, vec![31]);
    }

    async fn a_pass_claims_by_age_as_the_setting_says_now_stalest_first_and_failures_keep_their_backoff(backend: Backend) {
        // Arrange: four users synced an hour, two hours, three hours ago and just now; one more failed.
        let (_db, store) = store_for(backend).await;
        let t0 = t0();
        track(&store, &[41, 42, 43, 44, 45], t0).await;
        assert_eq!(claim_ids(&store, ALL, 10, t0).await, vec![41, 42, 43, 44, 45], "never synced: due");
        for (id, ago) in [(41, 1), (42, 2), (43, 3), (44, 0)] {
            let at = t0 - Duration::hours(ago);
            store.record_outcomes(&[unchanged(id)], t0, at).await.unwrap();
        }
        let retry_at = t0 + Duration::hours(1);
        let failed = UserOutcome::Failed { id: uid(45), error: "GitHub answered 502".into(), retry_at };
        store.record_outcomes(&[failed], t0, t0).await.unwrap();
        let now = t0 + Duration::seconds(1);
        let older_than = |hours: i64| DueKind::All { synced_before: now - Duration::hours(hours) - Duration::seconds(1) };

        // Act + Assert: what is due follows the cutoff given now, not one fixed at sync time.
        let count = |hours: i64| {
            let store = store.clone();
            async move { store.count_due_users(now, now - Duration::hours(hours) - Duration::seconds(1)).await.unwrap() }
        };
        assert_eq!(count(12).await, 0);
        assert_eq!(count(2).await, 2, "43 and 42");
        let stalest = store.claim_due_users(older_than(1), 1, now, now + Duration::minutes(5)).await.unwrap();
        assert_eq!(stalest.iter().map(|u| u.github_id.get()).collect::<Vec<_>>(), vec![43], "stalest first");
        assert_eq!(claim_ids(&store, older_than(1), 10, now).await, vec![41, 42], "the rest of those an hour old");
        // `--all`: everyone synced before the pass's start, but not the failed one before its retry.
        assert_eq!(claim_ids(&store, DueKind::All { synced_before: now }, 10, now).await, vec![44]);
        assert_eq!(claim_ids(&store, ALL, 10, retry_at + Duration::seconds(1)).await, vec![45], "due at its retry");
    }
}
