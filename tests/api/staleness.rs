//! `GHSYNC_STALE_AFTER` means what it says now: lowering it between two
//! starts makes the next pass check everyone older, and a pass over `all`
//! (`POST /admin/reconcile {"all": true}`) checks fresh users too.

use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

use crate::both_backends;
use crate::helpers::{Options, PATIENCE, TestApp, TestDb, eventually, spawn_app, spawn_app_on};

const USERS: [i64; 3] = [7701, 7702, 7703];

/// Installs `USERS` and syncs them (a pass, or the refresher it races with).
async fn synced_users(app: &TestApp) {
    for id in USERS {
        app.github_user(id);
    }
    app.run_pass().await;
    for id in USERS {
        app.user_where(id, "a synced user", |u| u.last_synced_at.is_some()).await;
    }
}

/// Starts a pass through the admin API with `body` and waits for it to finish.
async fn admin_pass(app: &TestApp, body: Option<Value>) -> Value {
    let mut request = app.admin(Method::POST, "/admin/reconcile");
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let run_id = response.json::<Value>().await.unwrap()["run_id"].clone();
    eventually("the admin pass to finish", PATIENCE, || async {
        let (_, run) = app.get_json(&format!("/admin/runs/{run_id}")).await;
        (run["state"] == "finished").then_some(run)
    })
    .await
}

fn checked(run: &Value) -> i64 {
    run["fetched"].as_i64().unwrap() + run["unchanged"].as_i64().unwrap()
}

both_backends! {
    async fn lowering_stale_after_between_two_starts_makes_the_next_pass_check_everyone_older(backend: Backend) {
        // Arrange: synced under the default (12 h): a second pass has nobody to check.
        let db = TestDb::create(backend).await;
        let first_start = spawn_app_on(db.borrowed(), Options::default()).await;
        synced_users(&first_start).await;
        let again = first_start.run_pass().await;
        assert_eq!(again.counts.fetched + again.counts.unchanged, 0, "nobody is stale after 12 h yet: {again:?}");
        drop(first_start);

        // Act: the same database, started again with GHSYNC_STALE_AFTER lowered to 1 ms.
        let lowered = Options { edit: Box::new(|s| s.sync.stale_after = Duration::from_millis(1)), ..Options::default() };
        let second_start = spawn_app_on(db.borrowed(), lowered).await;
        for id in USERS {
            second_start.github_user(id); // this start's fake GitHub knows them too
        }
        let report = second_start.run_pass().await;

        // Assert: everyone synced longer ago than the setting says now was checked.
        if report.counts.users_due != 3 || report.counts.fetched + report.counts.unchanged != 3 {
            // Seen once under load and not since: the rows say which user was left out, and why.
            let mut rows = Vec::new();
            for id in USERS {
                rows.push(format!("{:?}", second_start.user(id).await));
            }
            panic!("3 users due and checked, not {report:?}; the users now:\n{}", rows.join("\n"));
        }
        drop(second_start);
    }

    async fn a_pass_over_all_checks_fresh_users_too(backend: Backend) {
        // Arrange: everyone just synced; the default 12 h says nobody is due.
        let app = spawn_app(backend).await;
        synced_users(&app).await;

        // Act
        let due_only = admin_pass(&app, None).await;
        let empty_object = admin_pass(&app, Some(json!({}))).await;
        let all = admin_pass(&app, Some(json!({ "all": true }))).await;
        let bad = app.admin(Method::POST, "/admin/reconcile").json(&json!({ "all": "yes" })).send().await.unwrap();

        // Assert
        assert_eq!(checked(&due_only), 0, "{due_only}");
        assert_eq!(checked(&empty_object), 0, "{empty_object}");
        assert_eq!(checked(&all), 3, "every active user, whatever their age: {all}");
        assert_eq!(all["users_due"], 3, "{all}");
        assert_eq!(all["synced_before"], all["started_at"], "{all}");
        assert_eq!(bad.status().as_u16(), 400);
    }
}
