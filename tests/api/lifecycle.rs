//! Disconnect versus level-triggered passes: a pass re-listing a still-active
//! installation must not bring an erased user back; a new installation does.

use reqwest::Method;

use crate::both_backends;
use crate::helpers::{Backend, spawn_app};

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
