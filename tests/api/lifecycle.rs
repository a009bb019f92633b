//! Disconnect versus level-triggered passes: a pass re-listing a still-active
//! installation must not bring an erased user back; a new installation does.

use reqwest::Method;

use crate::both_backends;
use crate::helpers::spawn_app;

both_backends! {
    async fn a_disconnected_user_stays_erased_through_passes_until_they_install_again(backend: Backend) {
        let app = spawn_app(backend).await;
        app.install(8101).await;
        app.user_where(8101, "the first fetch", |u| u.last_synced_at.is_some()).await;

        let erased = app.admin(Method::DELETE, "/api/users/8101").send().await.unwrap();
        assert_eq!(erased.status().as_u16(), 204);
        app.run_pass().await;
        assert!(app.user(8101).await.is_none(), "a pass must not resurrect a disconnected user");

        // Uninstall, then install again: that is the user coming back.
        app.send_installation("deleted", 8101).await;
        app.drain_inbox().await;
        app.send_installation("created", 8101).await;
        app.user_where(8101, "the user back after a new installation", |u| u.last_synced_at.is_some()).await;
    }
}

mod retention {
    use chrono::{Duration, Utc};
    use ghsync::domain::{DeliveryId, EventName};
    use ghsync::domain::{DeliveryState, NewDelivery};

    use crate::both_backends;
    use crate::helpers::TestDb;

    fn delivery(n: u32) -> NewDelivery {
        NewDelivery {
            id: DeliveryId::parse(&format!("guid-{n}")).unwrap(),
            event: EventName::parse("star").unwrap(),
            action: Some("created".into()),
            payload: "{}".into(),
            packed: None,
            digest: None,
            ignore: None,
            received_at: Utc::now(),
        }
    }

    both_backends! {
        async fn finished_deliveries_are_pruned_after_retention_but_parked_and_pending_ones_stay(backend: Backend) {
            let db = TestDb::create(backend).await;
            let store = ghsync::store::open(&ghsync::config::DatabaseSettings { url: db.url.clone().into() }).await.unwrap();
            store.insert_deliveries(&[delivery(1), delivery(2), delivery(3), delivery(4)]).await.unwrap();
            let old = Utc::now() - Duration::days(8);
            store.finish_delivery(&delivery(1).id, DeliveryState::Done, None, old).await.unwrap();
            store.finish_delivery(&delivery(2).id, DeliveryState::Failed, Some("parked"), old).await.unwrap();
            store.finish_delivery(&delivery(3).id, DeliveryState::Ignored, None, Utc::now()).await.unwrap();

            let pruned = store.prune_deliveries(Utc::now() - Duration::days(7), 100).await.unwrap();

            assert_eq!(pruned, 1);
            assert!(store.delivery(&delivery(1).id).await.unwrap().is_none());
            // Its payload with it (PostgreSQL has no foreign key to cascade: the prune does it).
            assert_eq!(db.count("SELECT COUNT(*) FROM webhook_payloads WHERE delivery_id = 'guid-1'").await, 0);
            assert_eq!(db.count("SELECT COUNT(*) FROM webhook_payloads").await, 3);
            for kept in [2, 3, 4] {
                assert!(store.delivery(&delivery(kept).id).await.unwrap().is_some(), "guid-{kept} must stay");
            }
        }
    }
}

mod overdue {
    use chrono::{Duration, Utc};

    use crate::both_backends;
    use crate::helpers::spawn_app;

    both_backends! {
        async fn health_is_degraded_when_no_pass_has_finished_for_two_intervals(backend: Backend) {
            let app = spawn_app(backend).await;
            let (_, fresh) = app.get_json("/admin/health").await;
            assert_eq!(fresh["status"], "ok", "{fresh}");

            let long_ago = Utc::now() - Duration::hours(25);
            let owner = ghsync::domain::LeaseId::new();
            let ghsync::domain::RunStart::Started(id) = app.store().start_run("test", long_ago, &owner, long_ago, long_ago).await.unwrap() else {
                panic!("no pass should be running");
            };
            app.store().finish_run(id, &owner, long_ago).await.unwrap();

            let (_, stale) = app.get_json("/admin/health").await;
            assert_eq!(stale["status"], "degraded", "{stale}");
            assert!(stale["last_finished_at"].is_string(), "{stale}");
        }
    }
}

mod rollback {
    use crate::both_backends;
    use crate::helpers::TestDb;
    use crate::helpers::binary::run_command;

    both_backends! {
        async fn an_older_build_on_a_database_a_newer_one_migrated_says_so_and_changes_nothing(backend: Backend) {
            let db = TestDb::create(backend).await;
            let dir = tempfile::tempdir().unwrap();
            let (code, log) = run_command("migrate", &db.url, dir.path()).await;
            assert_eq!(code, 0, "{log}");
            let (code, log) = run_command("migrate", &db.url, dir.path()).await;
            assert_eq!(code, 0, "{log}");
            assert!(!log.contains("already exists"), "an up-to-date database is no news:\n{log}");
            // What a newer build leaves: a migration this one has never heard of.
            let checksum = if db.url.starts_with("sqlite:") { "X'00'" } else { "'\\x00'::bytea" };
            db.execute(&format!(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                 VALUES (20991231000001, 'from a newer build', TRUE, {checksum}, 1)"
            ))
            .await;
            let migrations = db.count("SELECT COUNT(*) FROM _sqlx_migrations").await;

            let (code, log) = run_command("migrate", &db.url, dir.path()).await;

            assert_ne!(code, 0, "an older build must not run on a newer schema:\n{log}");
            assert!(log.contains("migrated by a newer ghsync"), "the operator is told why:\n{log}");
            assert!(log.contains("20991231000001"), "and which migration:\n{log}");
            assert_eq!(db.count("SELECT COUNT(*) FROM _sqlx_migrations").await, migrations);
        }
    }
}
