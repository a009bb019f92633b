//! Clock skew: a GitHub whose clock is two hours behind ours (its `Date`,
//! and tokens that arrive "expired" by our clock) is reported in
//! `/admin/health`, naming both times, and its tokens are still reused.

use chrono::{DateTime, Utc};
use std::time::Duration;

use fake_github::Faults;

use crate::both_backends;
use crate::helpers::{Options, PATIENCE, eventually, spawn_app_with};

both_backends! {
    async fn a_skewed_github_is_reported_in_health_and_its_tokens_are_reused(backend: Backend) {
        let app = spawn_app_with(backend, Options {
            edit: Box::new(|s| s.sync.stale_after = Duration::from_secs(2)),
            ..Default::default()
        })
        .await;
        let (_, before) = app.get_json("/admin/health").await;
        assert!(before["clock_skew"].is_null(), "no skew before GitHub answered: {before}");
        app.github.set_faults(Faults { clock_skew_secs: -7200, ..Faults::default() });
        for id in [1401, 1402] {
            app.github_user(id);
        }
        app.run_pass().await;
        let store = app.store().clone();
        eventually("both users to fall due", PATIENCE, || {
            let store = store.clone();
            async move { (store.count_due_users(Utc::now()).await.ok()? == 2).then_some(()) }
        })
        .await;
        app.run_pass().await;

        let (status, health) = app.get_json("/admin/health").await;
        assert_eq!(status, 200);
        let skew = &health["clock_skew"];
        let seconds = skew["seconds"].as_i64().unwrap_or_else(|| panic!("clock_skew reported: {health}"));
        assert!((7100..=7300).contains(&seconds), "{skew}");
        let github: DateTime<Utc> = skew["github_date"].as_str().unwrap().parse().unwrap();
        let ours: DateTime<Utc> = skew["our_time"].as_str().unwrap().parse().unwrap();
        assert!((ours - github).num_seconds() >= 7100, "{skew}");
        let minted = app.github.stats().tokens_minted;
        assert!(minted <= 2, "one token per installation, not one per call: {minted} minted");
        assert_eq!(app.github.stats().on_expired, 0);
    }
}
