//! The `Store` contract, straight against each backend: leases on due users
//! and deliveries, one running pass at a time, failures and marks kept.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use std::collections::HashSet;
use std::sync::Arc;

use ghsync::domain::{
    Account, AccountKind, DeliveryId, DueKind, EventName, GitHubUserId, Lease, LeaseId, Login, NewDelivery, NodeId,
    ProfileHash, RunStart, UserOutcome,
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
        .claim_due_users(which, limit, now, &Lease::new(now, Duration::minutes(5)))
        .await
        .unwrap()
        .iter()
        .map(|u| u.github_id.get())
        .collect();
    ids.sort_unstable();
    ids
}

/// A pass's claim, due by `due_by`, in which nobody is stale by age: only marks, backoffs and the never synced.
fn all(due_by: DateTime<Utc>) -> DueKind {
    DueKind::All { due_by, synced_before: DateTime::<Utc>::UNIX_EPOCH }
}

fn unchanged(id: i64) -> UserOutcome {
    UserOutcome::Unchanged { id: uid(id), observed: ProfileHash::from_stored("seen".into()) }
}

both_backends! {
    async fn claiming_due_users_leases_them_until_the_lease_expires(backend: Backend) {
        let (_db, store) = store_for(backend).await;
        let t0 = t0();
        track(&store, &[11, 12, 13], t0).await;
        let now = t0 + Duration::seconds(1);

        let first = claim_ids(&store, all(now), 2, now).await;
        assert_eq!(first.len(), 2, "the limit is respected: {first:?}");
        let second = claim_ids(&store, all(now), 10, now).await;
        assert_eq!(second.len(), 1, "only the unclaimed user is left: {second:?}");
        assert!(!first.contains(&second[0]));

        // Leased: nobody gets them again, whichever kind of claim asks.
        assert!(claim_ids(&store, all(now + Duration::seconds(1)), 10, now + Duration::seconds(1)).await.is_empty());
        assert!(claim_ids(&store, DueKind::Marked, 10, now + Duration::seconds(1)).await.is_empty());
        assert!(claim_ids(&store, all(now + Duration::minutes(4)), 10, now + Duration::minutes(4)).await.is_empty(), "the lease still holds");

        // The claimer died: once the lease expires, the users are claimable again.
        let after = now + Duration::minutes(5) + Duration::seconds(1);
        assert_eq!(claim_ids(&store, all(after), 10, after).await, vec![11, 12, 13]);
    }

    async fn a_delivery_the_database_cannot_hold_is_refused_as_the_datas_fault_not_an_outage(backend: Backend) {
        let (_db, store) = store_for(backend).await;
        // A NUL in text: PostgreSQL's text type cannot hold it (SQLite's can). Not in the
        // payload, which is stored packed (bytes), but in the action read from it.
        let delivery = NewDelivery {
            id: DeliveryId::parse(&uuid::Uuid::new_v4().to_string()).unwrap(),
            event: EventName::parse("push").unwrap(),
            action: Some("created\u{0}".into()),
            payload: "{}".into(),
            packed: None,
            digest: None,
            ignore: None,
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

    async fn a_group_inserts_each_guid_once_and_every_claim_carries_its_own_payload(backend: Backend) {
        let (_db, store) = store_for(backend).await;
        let t0 = t0();
        // c is stored with a digest, which its claim carries instead of the payload; a and b
        // without. a comes packed already, as the request path's writer hands bodies in.
        let delivery = |guid: &str, payload: &str| NewDelivery {
            id: DeliveryId::parse(guid).unwrap(),
            event: EventName::parse("push").unwrap(),
            action: None,
            payload: payload.into(),
            packed: guid.starts_with('a').then(|| ghsync::store::pack(payload)),
            digest: guid.starts_with('c').then(|| r#"{"digest":"c"}"#.into()),
            ignore: None,
            received_at: t0,
        };
        let (a, b, c) = ("aaaaaaaa-0000-0000-0000-000000000000", "bbbbbbbb-0000-0000-0000-000000000000", "cccccccc-0000-0000-0000-000000000000");
        store.insert_deliveries(&[delivery(b, r#"{"n":"b"}"#)]).await.unwrap();

        // One group: c, a GUID already stored, a, and c again (GitHub retried while we committed).
        let group = [delivery(c, r#"{"n":"c"}"#), delivery(b, r#"{"n":"b2"}"#), delivery(a, r#"{"n":"a"}"#), delivery(c, r#"{"n":"c"}"#)];
        let outcomes = store.insert_deliveries(&group).await.unwrap();

        use ghsync::domain::InsertOutcome::{Duplicate, Inserted};
        assert_eq!(outcomes, vec![Inserted, Duplicate, Inserted, Duplicate], "answered in the caller's order");
        let now = t0 + Duration::seconds(1);
        let mut claimed: Vec<(String, String)> = store
            .claim_deliveries(10, now, &Lease::new(now, Duration::minutes(1)))
            .await
            .unwrap()
            .into_iter()
            .map(|d| (d.id.as_str().to_owned(), d.payload))
            .collect();
        claimed.sort();
        let expected = [(a, r#"{"n":"a"}"#), (b, r#"{"n":"b"}"#), (c, r#"{"digest":"c"}"#)];
        let expected: Vec<(String, String)> = expected.iter().map(|(g, p)| (g.to_string(), p.to_string())).collect();
        assert_eq!(claimed, expected, "three deliveries, each with the payload (or digest) it was first stored with");
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
                packed: None,
                digest: None,
                ignore: None,
                received_at: t0,
            })
            .collect();
        store.insert_deliveries(&deliveries).await.unwrap();
        let now = t0 + Duration::seconds(1);
        let lease = Lease::new(now, Duration::minutes(1));

        // Four workers claim at once: no delivery goes to two of them.
        let claims = futures_util::future::join_all((0..4).map(|_| store.claim_deliveries(3, now, &lease))).await;
        let mut seen: Vec<String> = Vec::new();
        for claim in claims {
            seen.extend(claim.unwrap().into_iter().map(|d| d.id.as_str().to_owned()));
        }
        let rest = store.claim_deliveries(10, now, &lease).await.unwrap();
        seen.extend(rest.iter().map(|d| d.id.as_str().to_owned()));
        let distinct: HashSet<&String> = seen.iter().collect();
        assert_eq!(distinct.len(), seen.len(), "a delivery was claimed twice: {seen:?}");
        assert_eq!(distinct.len(), 8, "every delivery was claimed once");

        assert!(store.claim_deliveries(10, now + Duration::seconds(30), &lease).await.unwrap().is_empty(), "leased");

        // The lease ran out (the worker died): they come back, one attempt more.
        let later = lease.until + Duration::seconds(1);
        let again = store.claim_deliveries(10, later, &Lease::new(later, Duration::minutes(2))).await.unwrap();
        assert_eq!(again.len(), 8);
        assert!(again.iter().all(|d| d.attempts == 2), "{:?}", again.iter().map(|d| d.attempts).collect::<Vec<_>>());
    }

    async fn a_second_pass_is_refused_while_one_runs_and_a_silent_ones_is_taken_over(backend: Backend) {
        let (_db, store) = store_for(backend).await;
        let t0 = t0();
        let silence = Duration::minutes(10);
        let (owner, other) = (LeaseId::new(), LeaseId::new());
        let RunStart::Started(first) = store.start_run("test", t0, &owner, t0, t0 - silence).await.unwrap() else {
            panic!("the first pass starts");
        };
        let at = t0 + Duration::minutes(1);
        assert_eq!(store.start_run("other", at, &other, at, at - silence).await.unwrap(), RunStart::AlreadyRunning(first));
        assert_eq!(store.running_run().await.unwrap(), Some(first));

        // The owner's heartbeat keeps it alive past the time its start alone would allow; a
        // joiner's counts do not.
        assert!(store.beat_run(first, &owner, t0 + Duration::minutes(2)).await.unwrap());
        assert!(!store.beat_run(first, &other, t0 + Duration::minutes(9)).await.unwrap(), "only the owner beats");
        store.add_to_run(first, &Default::default()).await.unwrap();
        let at = t0 + Duration::minutes(11);
        assert_eq!(store.start_run("other", at, &other, at, at - silence).await.unwrap(), RunStart::AlreadyRunning(first));
        assert!(!store.take_over_run(first, &other, at, at - silence).await.unwrap(), "its owner is alive");

        // Silent for longer than `silent_before` allows: its process died; the next starter takes
        // the same pass over, and it is the new owner's to finish.
        let at = t0 + Duration::minutes(13);
        assert_eq!(store.start_run("takeover", at, &other, at, at - silence).await.unwrap(), RunStart::TakenOver(first));
        assert_eq!(store.running_run().await.unwrap(), Some(first));
        assert!(!store.beat_run(first, &owner, at).await.unwrap(), "the old owner learns it lost the pass");
        store.finish_run(first, &owner, at).await.unwrap();
        assert_eq!(store.running_run().await.unwrap(), Some(first), "the old owner cannot finish it");
        store.fail_run(first, &owner, "late", at).await.unwrap();
        assert_eq!(store.running_run().await.unwrap(), Some(first), "nor fail it");

        store.finish_run(first, &other, t0 + Duration::minutes(14)).await.unwrap();
        assert_eq!(store.running_run().await.unwrap(), None);
        let last = store.last_finished_run().await.unwrap().expect("a finished run");
        assert_eq!((last.id, last.state.as_str()), (first, "finished"));
        assert!(last.errors.is_empty(), "{last:?}");
        let at = t0 + Duration::minutes(15);
        assert!(matches!(store.start_run("next", at, &owner, at, at - silence).await.unwrap(), RunStart::Started(id) if id != first));
    }

    async fn a_joiner_takes_over_a_pass_whose_owner_fell_silent(backend: Backend) {
        let (_db, store) = store_for(backend).await;
        let t0 = t0();
        let (owner, joiner) = (LeaseId::new(), LeaseId::new());
        let RunStart::Started(id) = store.start_run("test", t0, &owner, t0, t0).await.unwrap() else { panic!() };
        let at = t0 + Duration::minutes(2);
        assert!(store.take_over_run(id, &joiner, at, at - Duration::minutes(1)).await.unwrap());
        assert!(!store.take_over_run(id, &owner, at, at - Duration::minutes(1)).await.unwrap(), "once");
        store.finish_run(id, &joiner, at).await.unwrap();
        assert_eq!(store.run(id).await.unwrap().unwrap().state, "finished");
    }

    async fn a_write_under_a_lost_user_lease_changes_nothing(backend: Backend) {
        // Arrange: A claims a user; its lease runs out and B claims the user.
        let (_db, store) = store_for(backend).await;
        let t0 = t0();
        track(&store, &[51, 52], t0).await;
        let now = t0 + Duration::seconds(1);
        let a = Lease::new(now, Duration::seconds(30));
        assert_eq!(store.claim_due_users(all(now), 10, now, &a).await.unwrap().len(), 2);
        // A renews: still its own past the first expiry.
        assert_eq!(store.renew_users(&a.id, now + Duration::seconds(60)).await.unwrap(), 2);
        let at = now + Duration::seconds(45);
        assert!(store.claim_due_users(all(now), 10, at, &Lease::new(at, Duration::seconds(30))).await.unwrap().is_empty());
        let at = now + Duration::seconds(61);
        let b = Lease::new(at, Duration::seconds(30));
        let taken = store.claim_due_users(all(now), 1, at, &b).await.unwrap();
        assert_eq!(taken.len(), 1, "A's lease ran out");
        let (taken, left) = (taken[0].github_id.get(), if taken[0].github_id.get() == 51 { 52 } else { 51 });

        // Act: B records first, then A's older answers arrive.
        assert_eq!(store.record_outcomes(&[unchanged(taken)], Some(&b.id), at, at).await.unwrap(), vec![]);
        let synced = store.user_by_id(uid(taken)).await.unwrap().unwrap().last_synced_at;
        let failed = UserOutcome::Failed { id: uid(taken), error: "late".into(), retry_at: at + Duration::hours(1) };
        let late = at + Duration::seconds(1);
        let lost = store.record_outcomes(&[failed, unchanged(left)], Some(&a.id), now, late).await.unwrap();

        // Assert: A's write to B's user changed nothing and is reported; the other user (still
        // A's, expired but claimed by no one) is written.
        assert_eq!(lost, vec![uid(taken)]);
        let user = store.user_by_id(uid(taken)).await.unwrap().unwrap();
        assert_eq!((user.failures, user.last_synced_at), (0, synced), "{user:?}");
        assert!(store.user_by_id(uid(left)).await.unwrap().unwrap().last_synced_at.is_some());
        // B's claim is settled: its token no longer renews anything.
        assert_eq!(store.renew_users(&b.id, at + Duration::minutes(5)).await.unwrap(), 0);
    }

    async fn a_settlement_under_a_lost_delivery_lease_changes_nothing(backend: Backend) {
        let (_db, store) = store_for(backend).await;
        let t0 = t0();
        let delivery = NewDelivery {
            id: DeliveryId::parse(&uuid::Uuid::new_v4().to_string()).unwrap(),
            event: EventName::parse("push").unwrap(),
            action: None,
            payload: "{}".into(),
            packed: None,
            digest: None,
            ignore: None,
            received_at: t0,
        };
        store.insert_deliveries(std::slice::from_ref(&delivery)).await.unwrap();
        let a = Lease::new(t0, Duration::seconds(30));
        assert_eq!(store.claim_deliveries(10, t0, &a).await.unwrap().len(), 1);
        assert_eq!(store.renew_deliveries(&a.id, std::slice::from_ref(&delivery.id), t0 + Duration::seconds(60)).await.unwrap(), 1);
        let at = t0 + Duration::seconds(45);
        assert!(store.claim_deliveries(10, at, &Lease::new(at, Duration::seconds(30))).await.unwrap().is_empty(), "renewed");
        let at = t0 + Duration::seconds(61);
        let b = Lease::new(at, Duration::seconds(30));
        assert_eq!(store.claim_deliveries(10, at, &b).await.unwrap().len(), 1);
        let ids = std::slice::from_ref(&delivery.id);
        assert_eq!(store.renew_deliveries(&a.id, ids, at + Duration::seconds(60)).await.unwrap(), 0, "A's lease is lost");

        let done = |state| ghsync::domain::Settlement { id: delivery.id.clone(), state, note: None, retry_at: None };
        use ghsync::domain::DeliveryState;
        assert_eq!(store.settle_deliveries(&[done(DeliveryState::Done)], &b.id, at).await.unwrap(), vec![]);
        let lost = store.settle_deliveries(&[done(DeliveryState::Failed)], &a.id, at).await.unwrap();
        assert_eq!(lost, vec![delivery.id.clone()], "settled once, by the lease that holds it");
        let record = store.delivery(&delivery.id).await.unwrap().unwrap();
        assert_eq!((record.state, record.attempts), (DeliveryState::Done, 2));
    }

    async fn a_failed_fetch_counts_the_failure_and_pushes_the_next_sync(backend: Backend) {
        let (_db, store) = store_for(backend).await;
        let t0 = t0();
        track(&store, &[21], t0).await;
        let now = t0 + Duration::seconds(1);
        assert_eq!(claim_ids(&store, all(now), 10, now).await, vec![21]);
        let retry_at = t0 + Duration::hours(1);
        let failed = UserOutcome::Failed { id: uid(21), error: "GitHub answered 502".into(), retry_at };
        store.record_outcomes(std::slice::from_ref(&failed), None, now, now + Duration::seconds(1)).await.unwrap();

        let user = store.user_by_id(uid(21)).await.unwrap().unwrap();
        assert_eq!(user.failures, 1);
        assert_eq!(user.last_error.as_deref(), Some("GitHub answered 502"));
        assert_eq!(user.next_sync_at, Some(retry_at));
        assert!(claim_ids(&store, all(now + Duration::minutes(59)), 10, now + Duration::minutes(59)).await.is_empty(), "not before retry_at");

        // Due again at retry_at (and the lease was released, or this claim would wait for it).
        let later = retry_at + Duration::seconds(1);
        assert_eq!(claim_ids(&store, all(later), 10, later).await, vec![21]);
        let failed = UserOutcome::Failed { id: uid(21), error: "timeout".into(), retry_at: later + Duration::hours(2) };
        store.record_outcomes(&[failed], None, later, later).await.unwrap();
        let user = store.user_by_id(uid(21)).await.unwrap().unwrap();
        assert_eq!(user.failures, 2, "failures in a row add up");
        assert_eq!(user.next_sync_at, Some(later + Duration::hours(2)));

        // A success resets the count.
        let at = later + Duration::hours(2) + Duration::seconds(1);
        assert_eq!(claim_ids(&store, all(at), 10, at).await, vec![21]);
        store.record_outcomes(&[unchanged(21)], None, at, at).await.unwrap();
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
        store.record_outcomes(&[unchanged(31), unchanged(32)], None, claimed_at, recorded_at).await.unwrap();

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
        assert_eq!(claim_ids(&store, all(t0), 10, t0).await, vec![41, 42, 43, 44, 45], "never synced: due");
        for (id, ago) in [(41, 1), (42, 2), (43, 3), (44, 0)] {
            let at = t0 - Duration::hours(ago);
            store.record_outcomes(&[unchanged(id)], None, t0, at).await.unwrap();
        }
        let retry_at = t0 + Duration::hours(1);
        let failed = UserOutcome::Failed { id: uid(45), error: "GitHub answered 502".into(), retry_at };
        store.record_outcomes(&[failed], None, t0, t0).await.unwrap();
        let now = t0 + Duration::seconds(1);
        let older_than =
            |hours: i64| DueKind::All { due_by: now, synced_before: now - Duration::hours(hours) - Duration::seconds(1) };

        // Act + Assert: what is due follows the cutoff given now, not one fixed at sync time.
        let count = |hours: i64| {
            let store = store.clone();
            async move { store.count_due_users(now, now - Duration::hours(hours) - Duration::seconds(1)).await.unwrap() }
        };
        assert_eq!(count(12).await, 0);
        assert_eq!(count(2).await, 2, "43 and 42");
        let stalest = store.claim_due_users(older_than(1), 1, now, &Lease::new(now, Duration::minutes(5))).await.unwrap();
        assert_eq!(stalest.iter().map(|u| u.github_id.get()).collect::<Vec<_>>(), vec![43], "stalest first");
        assert_eq!(claim_ids(&store, older_than(1), 10, now).await, vec![41, 42], "the rest of those an hour old");
        // `--all`: everyone synced before the pass's start, but not the failed one before its retry.
        assert_eq!(claim_ids(&store, DueKind::All { due_by: now, synced_before: now }, 10, now).await, vec![44]);
        assert_eq!(claim_ids(&store, all(retry_at + Duration::seconds(1)), 10, retry_at + Duration::seconds(1)).await, vec![45], "due at its retry");
    }
}
