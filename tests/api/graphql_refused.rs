//! GitHub's other answers to GraphQL: a 404, 403 or 502 from the endpoint,
//! or a server with no GraphQL at all, still sync every user (over REST),
//! and the run says why once, not once per batch.

use chrono::Utc;
use std::time::Duration;

use fake_github::Faults;

use crate::both_backends;
use crate::helpers::{Options, PATIENCE, TestApp, eventually, spawn_app_with};

/// Stale after 2 s, and batches of 2: six users make three batches a pass.
fn small_batches() -> Options {
    Options {
        edit: Box::new(|s| {
            s.sync.stale_after = Duration::from_secs(2);
            s.sync.batch_size = 2;
        }),
        ..Default::default()
    }
}

async fn wait_until_due(app: &TestApp, n: i64) {
    let store = app.store().clone();
    eventually(&format!("{n} users to fall due"), PATIENCE, || {
        let store = store.clone();
        async move { (store.count_due_users(Utc::now()).await.ok()? == n).then_some(()) }
    })
    .await;
}

both_backends! {
    async fn graphql_404_403_502_or_none_at_all_still_syncs_everyone_over_rest_noted_once(backend: Backend) {
        let app = spawn_app_with(backend, small_batches()).await;
        let ids: Vec<i64> = (1301..=1306).collect();
        for id in &ids {
            app.github_user(*id);
        }
        app.run_pass().await;
        let faults = [
            ("404", Faults { graphql_status: Some(404), ..Faults::default() }),
            ("403", Faults { graphql_status: Some(403), ..Faults::default() }),
            ("502", Faults { graphql_status: Some(502), ..Faults::default() }),
            ("no GraphQL", Faults { graphql_absent: true, ..Faults::default() }),
        ];
        for (round, (name, fault)) in faults.into_iter().enumerate() {
            wait_until_due(&app, ids.len() as i64).await;
            app.github.set_faults(fault);
            let location = format!("City {round}");
            app.github.edit_user(1303, |u| u.location = Some(location.clone()));
            app.github.reset_stats();

            let report = app.run_pass().await;

            let run = app.store().run(report.run_id).await.unwrap().expect("recorded");
            assert_eq!(run.counts.failed, 0, "GraphQL {name}: {run:?}");
            assert!(run.errors.is_empty(), "GraphQL {name}: {run:?}");
            assert_eq!(run.counts.fetched, 6, "GraphQL {name}: every user over REST: {run:?}");
            let fallbacks: Vec<&String> = run.notes.iter().filter(|n| n.contains("over REST")).collect();
            assert_eq!(fallbacks.len(), 1, "GraphQL {name}: noted once, not per batch: {run:?}");
            assert!(!fallbacks[0].trim().is_empty());
            let user = app.user(1303).await.unwrap();
            assert_eq!(user.status.as_str(), "active");
            assert_eq!(user.github_profile.as_ref().and_then(|p| p["location"].as_str()), Some(location.as_str()), "GraphQL {name}");
        }
    }
}
