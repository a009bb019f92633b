//! No false uninstalls: an installation a listing misses (its pages shifted)
//! is asked about by id, and retired only when GitHub answers 404.

use fake_github::Faults;

use crate::both_backends;
use crate::helpers::spawn_app;

both_backends! {
    async fn an_installation_a_listing_skips_keeps_its_users_and_a_deleted_one_is_retired(backend: Backend) {
        let app = spawn_app(backend).await;
        for id in [7001, 7002, 7003] {
            app.github_user(id);
        }
        app.run_pass().await;
        for id in [7001, 7002, 7003] {
            assert_eq!(app.user(id).await.expect("tracked from the listing").status.as_str(), "active");
        }

        // 7001 still exists but the listing skips it (a page shift); 7002 is really gone.
        app.github.set_faults(Faults { listing_omits: vec![7001], ..Faults::default() });
        app.github.remove_installation(7002);
        app.github.reset_stats();
        let report = app.run_pass().await;

        assert_eq!(app.user(7001).await.unwrap().status.as_str(), "active", "a skipped installation keeps its users");
        assert_eq!(app.user(7002).await.unwrap().status.as_str(), "uninstalled", "a deleted one is retired");
        assert_eq!(app.user(7003).await.unwrap().status.as_str(), "active");
        assert_eq!(report.counts.installations_removed, 1, "{report:?}");
        let asked = app.github.stats().requests.get("get_installation").copied().unwrap_or(0);
        assert_eq!(asked, 2, "each missing installation was asked about by id, no other");

        // Next pass, listed again: nothing is asked about.
        app.github.set_faults(Faults::default());
        app.github.reset_stats();
        app.run_pass().await;
        assert_eq!(app.github.stats().requests.get("get_installation"), None);
        assert_eq!(app.user(7001).await.unwrap().status.as_str(), "active");
    }
}
