//! Bounded state at 1,000,000 users: `/metrics` has as many series with 3
//! installations as with 130 (no label takes an installation id), and
//! `/admin/health` lists the 50 budgets with least left, beside the count.

use chrono::{Duration, Utc};
use ghsync::domain::{InstallationId, RateLimitRecord, Resource};

use crate::both_backends;
use crate::helpers::{TestApp, spawn_app};

/// Budgets for installations `1..=n`: installation `i` has `5000 - i` left, so the
/// highest ids have least; installation 2 is paused.
async fn seed_budgets(app: &TestApp, n: i64) {
    let now = Utc::now();
    for i in 1..=n {
        let record = RateLimitRecord {
            installation_id: InstallationId::new(i).unwrap(),
            resource: Resource::Core,
            limit: 5000,
            remaining: 5000 - i,
            reset_at: now + Duration::minutes(30),
            paused_until: (i == 2).then(|| now + Duration::minutes(5)),
            updated_at: now,
        };
        app.store().save_rate_limit(&record).await.unwrap();
    }
}

/// The series (name and labels) of one scrape's gauges; counters are left out:
/// they count what the app did meanwhile (a start-up pass), not what it tracks.
fn gauges(series: &[String]) -> Vec<String> {
    let mut keys: Vec<String> = series
        .iter()
        .filter(|l| !l.split(['{', ' ']).next().unwrap_or_default().ends_with("_total"))
        .map(|l| l.rsplit_once(' ').map_or(l.as_str(), |(key, _)| key).to_owned())
        .collect();
    keys.sort();
    keys
}

/// The metric lines (series) of one scrape.
async fn series(app: &TestApp) -> Vec<String> {
    let text = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
    text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).map(str::to_owned).collect()
}

fn value_of(series: &[String], prefix: &str) -> String {
    let line = series.iter().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix} in {series:#?}"));
    line.rsplit(' ').next().unwrap().to_owned()
}

both_backends! {
    async fn metrics_have_as_many_series_for_130_installations_as_for_3(backend: Backend) {
        let few = spawn_app(backend).await;
        seed_budgets(&few, 3).await;
        let many = spawn_app(backend).await;
        seed_budgets(&many, 130).await;

        let (few, many) = (series(&few).await, series(&many).await);

        assert_eq!(gauges(&few), gauges(&many), "series grew with installations");
        assert!(many.iter().all(|l| !l.contains("installation_id") && !l.contains("user_id")), "{many:#?}");
        let tracked = r#"ghsync_rate_limit_installations_tracked{resource="core"}"#;
        assert_eq!((value_of(&few, tracked), value_of(&many, tracked)), ("3".into(), "130".into()));
        let least = r#"ghsync_rate_limit_least_remaining{resource="core"}"#;
        assert_eq!(value_of(&many, least), "4870");
        assert_eq!(value_of(&many, r#"ghsync_rate_limit_installations_paused{resource="core"}"#), "1");
    }

    async fn health_lists_the_50_budgets_with_least_left_lowest_first(backend: Backend) {
        let app = spawn_app(backend).await;
        seed_budgets(&app, 130).await;

        let (status, health) = app.get_json("/admin/health").await;

        assert_eq!(status, 200, "{health}");
        assert_eq!(health["rate_limits_tracked"], 130, "{health}");
        let shown = health["rate_limits"].as_array().expect("rate_limits is a list");
        assert_eq!(shown.len(), 50);
        let remaining: Vec<i64> = shown.iter().map(|r| r["remaining"].as_i64().unwrap()).collect();
        assert_eq!(remaining, (4870..4920).collect::<Vec<_>>(), "lowest first");
        assert_eq!(shown[0]["installation_id"], 130);
    }
}
