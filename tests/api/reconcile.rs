//! The reconciler: discovery through the installations list, cheap change
//! detection, staying inside GitHub's limits under faults, the schedule, one
//! pass at a time, and what a pass leaves behind (run records, rate limits).

use chrono::{Duration as ChronoDuration, Utc};
use reqwest::Method;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

use fake_github::{FakeUser, Faults};
use ghsync::domain::{
    Account, AccountKind, GitHubUserId, InstallationId, InstallationRecord, InstallationState, Login, NodeId, Resource,
    RunRecord, RunStart, UserRecord,
};

use crate::both_backends;
use crate::helpers::{
    Backend, Options, PATIENCE, TestApp, TestDb, eventually, open_store, spawn_app, spawn_app_on, spawn_app_with,
};

/// Profiles go stale after 2 s, so a second pass finds every user due again
/// without marking them (a mark would also wake the webhook refresher).
const STALE_AFTER: Duration = Duration::from_secs(2);

fn stale_quickly() -> Options {
    Options { edit: Box::new(|s| s.sync.stale_after = STALE_AFTER), ..Default::default() }
}

fn scheduled() -> Options {
    Options { edit: Box::new(|s| s.sync.schedule = true), ..Default::default() }
}

fn uid(id: i64) -> GitHubUserId {
    GitHubUserId::new(id).unwrap()
}

/// Users on the fake only, each with an installation of their own: the database knows nothing.
fn seed(app: &TestApp, ids: impl IntoIterator<Item = i64>) -> Vec<i64> {
    ids.into_iter().inspect(|id| drop(app.github_user(*id))).collect()
}

async fn stored(app: &TestApp, id: i64) -> UserRecord {
    app.user(id).await.unwrap_or_else(|| panic!("user {id} is stored"))
}

async fn run_record(app: &TestApp, report: &ghsync::sync::PassReport) -> RunRecord {
    app.store().run(report.run_id).await.unwrap().expect("the pass is recorded")
}

/// Waits until every one of `ids` has a stored profile. A pass may end while the webhook
/// refresher, which shares the queue, still holds a few users it claimed: they land soon after.
async fn all_fetched(app: &TestApp, ids: &[i64]) {
    for id in ids {
        app.user_where(*id, "a stored profile", |u| u.github_profile.is_some()).await;
    }
}

/// Waits until `n` users are due (their profiles went stale).
async fn wait_until_due(app: &TestApp, n: i64) {
    let store = app.store().clone();
    eventually(&format!("{n} users to fall due"), PATIENCE, || {
        let store = store.clone();
        async move {
            let now = Utc::now();
            (store.count_due_users(now, now - ChronoDuration::from_std(STALE_AFTER).unwrap()).await.ok()? == n)
                .then_some(())
        }
    })
    .await;
}

async fn runs(app: &TestApp) -> Vec<Value> {
    let (status, body) = app.get_json("/admin/runs").await;
    assert_eq!(status, 200, "{body}");
    body["runs"].as_array().cloned().unwrap_or_default()
}

/// The value of one unlabelled series in a `/metrics` text.
fn metric(text: &str, series: &str) -> Option<i64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok()).map(|v| v as i64)
}

fn no_violations(app: &TestApp) {
    let stats = app.github.stats();
    assert_eq!(
        (stats.on_exhausted, stats.on_expired, stats.on_paused),
        (0, 0, 0),
        "requests on exhausted, expired or paused tokens: {stats:#?}"
    );
}

/// A database that already holds one finished pass, ended `ago` before now.
async fn db_with_finished_run(backend: Backend, ago: ChronoDuration) -> TestDb {
    let db = TestDb::create(backend).await;
    let store = open_store(&db).await;
    let at = Utc::now() - ago;
    let owner = ghsync::domain::LeaseId::new();
    let RunStart::Started(id) = store.start_run("test", at, &owner, at - ChronoDuration::minutes(1), at).await.unwrap()
    else {
        panic!("a fresh database has no running pass");
    };
    store.finish_run(id, &owner, at).await.unwrap();
    drop(store);
    db
}

both_backends! {
    async fn a_pass_discovers_installed_users_through_the_installations_list_alone(backend: Backend) {
        let app = spawn_app(backend).await;
        let ids = seed(&app, 401..=412);
        app.github.edit_user(405, |u| u.bio = Some("found without a webhook".into()));
        let report = app.run_pass().await;

        assert!(!report.joined);
        assert_eq!(report.counts.installations_added, 12, "{report:?}");
        let run = run_record(&app, &report).await;
        assert_eq!(run.state, "finished");
        assert_eq!(run.counts.installations_added, 12);
        assert_eq!(run.counts.failed, 0, "{run:?}");
        all_fetched(&app, &ids).await;
        for id in &ids {
            let user = stored(&app, *id).await;
            let fake = app.github.user(*id).unwrap();
            assert_eq!(user.status.as_str(), "active");
            assert_eq!(user.installation_id.map(|i| i.get()), Some(*id));
            assert_eq!(user.name, fake.name, "user {id}");
            assert_eq!(user.followers, Some(fake.followers), "user {id}");
            assert!(user.last_synced_at.is_some(), "user {id} was fetched");
            assert_eq!(user.github_profile.as_ref().map(|p| p["id"].clone()), Some(Value::from(*id)), "user {id}");
        }
        assert_eq!(stored(&app, 405).await.bio.as_deref(), Some("found without a webhook"));
        assert_eq!(app.github.stats().webhooks_sent, 0, "nothing came by webhook");

        // Listing again adds nothing: the installations are known now.
        let again = app.run_pass().await;
        assert_eq!(again.counts.installations_added, 0);
    }

    async fn a_second_pass_fetches_over_rest_only_the_users_that_changed(backend: Backend) {
        let app = spawn_app_with(backend, stale_quickly()).await;
        let ids = seed(&app, 1001..=1050);
        let first = app.run_pass().await;
        assert_eq!(first.counts.installations_added, 50);
        all_fetched(&app, &ids).await;

        // 10 % of the users change on GitHub; nobody tells us.
        let edited = [1003_i64, 1012, 1027, 1039, 1048];
        for id in edited {
            app.github.edit_user(id, |u| {
                u.bio = Some(format!("new bio of {id}"));
                u.followers += 1000;
            });
        }
        wait_until_due(&app, 50).await;
        app.github.reset_stats();
        let since = Utc::now();
        let report = app.run_pass().await;

        let run = run_record(&app, &report).await;
        assert_eq!(run.counts.users_due, 50, "{run:?}");
        assert_eq!((run.counts.changed, run.counts.unchanged), (5, 45), "{run:?}");
        assert_eq!((run.counts.failed, run.counts.gone), (0, 0), "{run:?}");
        let stats = app.github.stats();
        assert_eq!(stats.rest_user_fetches, 5, "only the changed users are fetched over REST: {stats:#?}");
        // 50 users, three connections each: ceil-ish(150 / 100) = 2 points for the whole check.
        assert!(stats.points_graphql <= 2, "GraphQL points: {}", stats.points_graphql);
        assert_eq!(run.counts.points_core, stats.points_core as i64, "the run counts what GitHub charged");
        assert_eq!(run.counts.points_graphql, stats.points_graphql as i64, "the run counts what GitHub charged");
        for id in &ids {
            let user = stored(&app, *id).await;
            let fake = app.github.user(*id).unwrap();
            assert!(user.last_synced_at.is_some_and(|t| t >= since), "user {id} was checked");
            assert_eq!(user.bio, fake.bio, "user {id}");
            assert_eq!(user.followers, Some(fake.followers), "user {id}");
            let profile = user.github_profile.unwrap();
            assert_eq!(profile["followers"], fake.followers, "the stored REST object of {id} is current");
        }
        assert_eq!(stored(&app, 1012).await.bio.as_deref(), Some("new bio of 1012"));
        no_violations(&app);
    }

    async fn under_faults_every_user_is_synced_within_two_passes_without_a_request_on_a_spent_expired_or_paused_token(backend: Backend) {
        let app = spawn_app(backend).await;
        // Faults first: the webhook refresher may pick up the tracked users (and mint) at any moment.
        app.github.set_faults(Faults {
            server_error_rate: 0.2,
            rate_limit: 30,
            rate_window: Duration::from_secs(2),
            token_lifetime: Duration::from_secs(3),
            concurrency_cap: Some((2, 1)),
            // Long enough for requests on one token to overlap, so the cap bites.
            latency: Duration::from_millis(40),
            ..Faults::default()
        });
        // Three installations; 45 more users linked without installing, read with their tokens.
        let installed = seed(&app, 501..=503);
        let linked: Vec<i64> = (601..=645).collect();
        let now = Utc::now();
        for id in &installed {
            // Known up front, so a listing that fails four times in a row cannot leave us tokenless.
            let account = Account {
                id: uid(*id),
                login: Login::from_github(&format!("user{id}")).unwrap(),
                node_id: Some(NodeId::parse(FakeUser::sample(*id).node_id).unwrap()),
                avatar_url: None,
                kind: AccountKind::User,
                installation_id: Some(InstallationId::new(*id).unwrap()),
            };
            let record = InstallationRecord { id: InstallationId::new(*id).unwrap(), state: InstallationState::Active, account: Some(account) };
            app.store().upsert_installation(&record, now).await.unwrap();
        }
        for id in &linked {
            let user = FakeUser::sample(*id);
            app.github.add_user(user.clone());
            let account = Account {
                id: uid(*id),
                login: Login::from_github(&user.login).unwrap(),
                node_id: Some(NodeId::parse(user.node_id).unwrap()),
                avatar_url: None,
                kind: AccountKind::User,
                installation_id: None,
            };
            app.store().track_user(&account, now).await.unwrap();
        }

        let started = std::time::Instant::now();
        // A pass that sits out a long pause is a failure here, not a hang; the bound is
        // generous because two busy cores can slow a healthy pass several times over.
        let limit = PATIENCE;
        let first = tokio::time::timeout(limit, app.run_pass()).await.unwrap_or_else(|_| panic!("first pass over {limit:?}: {:#?}", app.github.stats()));
        // A user the first pass (or the webhook refresher) failed is due again `retry_base`
        // later; the second pass takes users due at its start, so start it only once every
        // user still without a profile is due (a condition, not a sleep).
        let everyone: Vec<i64> = installed.iter().chain(&linked).copied().collect();
        let store = app.store().clone();
        eventually("every user not yet synced to fall due again", PATIENCE, || {
            let (app, store, everyone) = (&app, store.clone(), &everyone);
            async move {
                let mut unsynced = 0;
                for id in everyone {
                    unsynced += i64::from(app.user(*id).await?.github_profile.is_none());
                }
                (store.count_due_users(Utc::now(), Utc::now() - ChronoDuration::hours(12)).await.ok()? >= unsynced).then_some(())
            }
        })
        .await;
        let second = tokio::time::timeout(limit, app.run_pass()).await.unwrap_or_else(|_| panic!("second pass over {limit:?}: {:#?}", app.github.stats()));
        let took = started.elapsed();

        // Shown if the wait below times out: who failed, and why.
        for id in &everyone {
            let user = stored(&app, *id).await;
            if user.github_profile.is_none() {
                eprintln!("not synced after two passes (yet): {id} {:?} failures {} {:?}", user.status, user.failures, user.last_error);
            }
        }
        eprintln!("first: {first:?}\nsecond: {second:?}");
        // Every user is synced: by the two passes, or by the webhook refresher finishing a user
        // it had claimed (tracked users are marked due). One failed in both passes never is.
        all_fetched(&app, &everyone).await;
        for id in &everyone {
            assert_eq!(stored(&app, *id).await.status.as_str(), "active", "user {id}");
        }
        no_violations(&app);
        let stats = app.github.stats();
        eprintln!("faults: {took:?}, first {:?}, second {:?}, minted {}, statuses {:?}, core points {}", first.counts, second.counts, stats.tokens_minted, stats.statuses, stats.points_core);
        // The faults really happened: 5xx answers, secondary limits, several windows and tokens.
        assert!(stats.statuses.get(&502).copied().unwrap_or(0) > 0, "{stats:#?}");
        assert!(stats.statuses.get(&403).copied().unwrap_or(0) > 0, "the concurrency cap answered 403 + retry-after: {stats:#?}");
        assert!(stats.points_core >= 48, "every user cost a point at least: {stats:#?}");
        assert!(stats.tokens_minted > 3, "tokens expired and were replaced during the pass: {stats:#?}");
    }

    async fn the_scheduler_starts_a_pass_at_start_when_none_ever_ran(backend: Backend) {
        let app = spawn_app_with(backend, scheduled()).await;
        seed(&app, [801]);
        let run = eventually("a start-up pass", PATIENCE, || async {
            runs(&app).await.into_iter().find(|r| r["trigger"] == "startup")
        })
        .await;
        assert_eq!(runs(&app).await.len(), 1, "one pass, not one per trigger");
        let id = run["id"].as_i64().unwrap();
        let finished = eventually("the start-up pass to finish", PATIENCE, || async {
            let (_, run) = app.get_json(&format!("/admin/runs/{id}")).await;
            (run["state"] == "finished").then_some(run)
        })
        .await;
        assert_eq!(finished["installations_added"], 1);
        app.user_where(801, "the start-up pass fetched the user", |u| u.github_profile.is_some()).await;
    }

    async fn the_scheduler_starts_a_pass_at_start_when_the_last_one_is_older_than_the_interval(backend: Backend) {
        let db = db_with_finished_run(backend, ChronoDuration::hours(13)).await;
        let app = spawn_app_on(db, scheduled()).await;
        eventually("a start-up pass", PATIENCE, || async {
            runs(&app).await.into_iter().find(|r| r["trigger"] == "startup")
        })
        .await;
        assert_eq!(runs(&app).await.len(), 2);
    }

    async fn the_scheduler_starts_no_pass_at_start_when_the_last_one_is_fresh(backend: Backend) {
        let db = db_with_finished_run(backend, ChronoDuration::minutes(5)).await;
        let app = spawn_app_on(db, scheduled()).await;
        // The schedule says what it decided: when its next pass starts.
        let next = eventually("the schedule to decide", PATIENCE, || async {
            let text = app.client.get(format!("{}/metrics", app.address)).send().await.ok()?.text().await.ok()?;
            metric(&text, "ghsync_reconcile_next_pass_timestamp_seconds").filter(|at| *at > 0)
        })
        .await;
        assert!(next > Utc::now().timestamp() + 60, "the next pass is the scheduled one, not one now: {next}");
        assert_eq!(runs(&app).await.len(), 1, "no start-up pass after a fresh one");
        assert_eq!(app.store().running_run().await.unwrap(), None);
    }

    async fn asking_for_a_pass_while_one_runs_answers_409_with_the_running_pass(backend: Backend) {
        let app = spawn_app(backend).await;
        seed(&app, 901..=903);
        app.github.set_faults(Faults { latency: Duration::from_millis(300), ..Faults::default() });
        let started = app.admin(Method::POST, "/admin/reconcile").send().await.unwrap();
        assert_eq!(started.status().as_u16(), 202);
        let run_id = started.json::<Value>().await.unwrap()["run_id"].as_i64().expect("a run id");
        let refused = app.admin(Method::POST, "/admin/reconcile").send().await.unwrap();
        assert_eq!(refused.status().as_u16(), 409);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["run_id"], run_id, "{body}");
        assert!(body["error"].is_string(), "{body}");

        let finished = eventually("the pass to finish", PATIENCE, || async {
            let (_, run) = app.get_json(&format!("/admin/runs/{run_id}")).await;
            (run["state"] == "finished").then_some(run)
        })
        .await;
        assert_eq!(finished["trigger"], "admin");
        assert_eq!(finished["installations_added"], 3);
        // Once it is over, the next one may start.
        let next = app.admin(Method::POST, "/admin/reconcile").send().await.unwrap();
        assert_eq!(next.status().as_u16(), 202);
        assert_ne!(next.json::<Value>().await.unwrap()["run_id"], run_id);
    }

    async fn a_pass_started_while_another_lists_installations_joins_it_and_drains_the_due_users(backend: Backend) {
        // Arrange: ten known users, all stale again.
        let app = spawn_app_with(backend, stale_quickly()).await;
        let ids = seed(&app, 951..=960);
        app.run_pass().await;
        all_fetched(&app, &ids).await;
        wait_until_due(&app, 10).await;
        app.github.reset_stats();

        // Act: the starter is held in its installations listing (no clock: the fake waits
        // for the test); a second pass started meanwhile joins it and drains.
        let hold = app.github.hold_listings().await;
        let store = app.store().clone();
        let (starter, joiner) = tokio::join!(app.run_pass(), async {
            eventually("the first pass to be running", PATIENCE, || {
                let store = store.clone();
                async move { store.runs(5).await.ok()?.iter().any(|r| r.state == "running").then_some(()) }
            })
            .await;
            let joined = app.run_pass().await;
            drop(hold);
            joined
        });

        // Assert: one pass; the joiner checked every user while the starter listed, so the
        // starter found nobody left; nobody was read twice.
        assert_eq!(starter.run_id, joiner.run_id, "one pass");
        assert!(!starter.joined && joiner.joined, "{starter:?} {joiner:?}");
        let checked = |c: &ghsync::domain::RunCounts| c.fetched + c.unchanged;
        assert_eq!(checked(&joiner.counts), 10, "the joiner drained every due user: {joiner:?}");
        assert_eq!(checked(&starter.counts), 0, "nothing was left for the starter: {starter:?}");
        let runs = app.store().runs(10).await.unwrap();
        assert_eq!(runs.len(), 2, "{runs:?}");
        assert!(runs.iter().all(|r| r.state == "finished"), "{runs:?}");
        assert_eq!(app.github.stats().rest_user_fetches, 0, "unchanged users are checked, not read whole");
        assert!(app.github.stats().points_graphql >= 1, "they were checked over GraphQL");
        no_violations(&app);
    }

    async fn when_graphql_is_refused_a_pass_checks_known_users_over_rest_and_says_so(backend: Backend) {
        let app = spawn_app_with(backend, stale_quickly()).await;
        let ids = seed(&app, 1101..=1106);
        app.run_pass().await;
        all_fetched(&app, &ids).await;
        app.github.set_faults(Faults { graphql_forbidden: true, ..Faults::default() });
        app.github.edit_user(1104, |u| u.location = Some("Lisbon".into()));
        wait_until_due(&app, 6).await;
        app.github.reset_stats();
        let report = app.run_pass().await;

        let run = run_record(&app, &report).await;
        assert!(run.notes.iter().any(|n| n.contains("GraphQL refused")), "a note says why REST was used: {run:?}");
        assert_eq!(run.counts.failed, 0, "{run:?}");
        assert!(run.errors.is_empty(), "{run:?}");
        assert_eq!(app.github.stats().rest_user_fetches, 6, "every due user was read over REST instead");
        assert_eq!((run.counts.fetched, run.counts.changed, run.counts.unchanged), (6, 1, 5), "only 1104 changed: {run:?}");
        assert_eq!(stored(&app, 1104).await.location.as_deref(), Some("Lisbon"));
        for id in &ids {
            assert_eq!(stored(&app, *id).await.status.as_str(), "active");
        }
        let (_, shown) = app.get_json(&format!("/admin/runs/{}", report.run_id)).await;
        assert!(shown["notes"].as_array().is_some_and(|n| !n.is_empty()), "{shown}");
    }

    async fn what_a_pass_learns_about_rate_limits_is_kept_in_the_database(backend: Backend) {
        let app = spawn_app_with(backend, stale_quickly()).await;
        let ids = seed(&app, 1201..=1204);
        app.run_pass().await;
        all_fetched(&app, &ids).await;
        wait_until_due(&app, 4).await;
        app.run_pass().await; // a GraphQL check too

        let saved = app.store().rate_limits().await.unwrap();
        assert!(!saved.is_empty());
        let resources: BTreeSet<&str> = saved.iter().map(|r| r.resource.as_str()).collect();
        assert_eq!(resources, BTreeSet::from(["core", "graphql"]), "{saved:?}");
        let now = Utc::now();
        for r in &saved {
            assert!(ids.contains(&r.installation_id.get()), "{r:?}");
            assert_eq!(r.limit, 5000, "{r:?}");
            assert!(r.remaining < r.limit && r.remaining >= r.limit - 10, "{r:?}");
            assert!(r.reset_at > now, "{r:?}");
        }
        let spent: i64 = saved.iter().filter(|r| r.resource == Resource::Core).map(|r| r.limit - r.remaining).sum();
        // What GitHub charged, as its headers said, and what a process booked and has not spent
        // yet (`domain::book`: handed back when its booking expires), never less.
        let charged = app.github.stats().points_core as i64;
        assert!((charged..=charged + 64).contains(&spent), "saved {spent} spent, GitHub charged {charged}");

        let (status, health) = app.get_json("/admin/health").await;
        assert_eq!(status, 200);
        let shown = health["rate_limits"].as_array().expect("rate_limits in health").clone();
        assert_eq!(shown.len(), saved.len(), "{health}");
        for r in &saved {
            let entry = shown
                .iter()
                .find(|e| e["installation_id"] == r.installation_id.get() && e["resource"] == r.resource.as_str())
                .unwrap_or_else(|| panic!("{r:?} in {health}"));
            assert_eq!(entry["remaining"], r.remaining);
            assert_eq!(entry["limit"], r.limit);
            assert!(entry["reset_at"].is_string() && entry.get("paused_until").is_some(), "{entry}");
        }

        // Another process on this database (a later `ghsync reconcile`) starts from it.
        let settings = crate::helpers::settings_for(&app.db.url, &app.github, &Options::default());
        let core = ghsync::app::build_core(&settings, &ghsync::metrics::Metrics::new()).await.unwrap();
        let known = core.github.expect("GitHub configured").governor().snapshot(Utc::now());
        let pairs = |v: &[ghsync::domain::RateLimitRecord]| {
            v.iter().map(|r| (r.installation_id.get(), r.resource, r.remaining)).collect::<BTreeSet<_>>()
        };
        assert_eq!(pairs(&known), pairs(&saved));
    }

    async fn a_user_github_no_longer_knows_is_marked_gone_by_a_pass(backend: Backend) {
        let app = spawn_app_with(backend, stale_quickly()).await;
        let ids = seed(&app, 1301..=1303);
        app.run_pass().await;
        all_fetched(&app, &ids).await;
        app.github.remove_user(1302);
        wait_until_due(&app, 3).await;
        let report = app.run_pass().await;

        let run = run_record(&app, &report).await;
        assert_eq!(run.counts.gone, 1, "{run:?}");
        assert_eq!(run.counts.failed, 0, "a 404 is an answer, not a failure: {run:?}");
        assert_eq!(stored(&app, 1302).await.status.as_str(), "gone");
        for id in [1301, 1303] {
            assert_eq!(stored(&app, id).await.status.as_str(), "active");
        }
        let (_, user) = app.get_json("/api/users/by-id/1302").await;
        assert_eq!(user["status"], "gone");

        // Gone users are not fetched again.
        wait_until_due(&app, 2).await;
        app.github.reset_stats();
        let later = app.run_pass().await;
        assert_eq!(later.counts.gone, 0);
        assert_eq!(app.github.stats().requests.get("get_user").copied().unwrap_or(0), 0, "{later:?} {:#?}", app.github.stats());
    }
}
