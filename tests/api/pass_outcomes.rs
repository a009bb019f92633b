//! Pass outcomes are true: a pass that could not run is recorded `failed`
//! with its reason (never `finished`, so health sees it), and `ghsync
//! reconcile` exits 1 with the reason on its last line.

use chrono::Utc;

use crate::both_backends;
use crate::helpers::binary::{Reconcile, fake_with_users};
use crate::helpers::{TestDb, open_store};
use ghsync::domain::{Account, AccountKind, GitHubUserId, Login};

fn last_line(log: &str) -> String {
    log.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().to_owned()
}

both_backends! {
    async fn a_pass_that_cannot_list_installations_fails_and_reconcile_exits_1(backend: Backend) {
        // Arrange: GitHub is unreachable (nothing listens where its API should be).
        let fake = fake_with_users(0, std::time::Duration::ZERO).await;
        let db = TestDb::create(backend).await;
        let store = open_store(&db).await;
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let nowhere = format!("http://127.0.0.1:{port}");

        // Act
        let env = [("GITHUB_API_URL", nowhere.as_str())];
        let (code, log) = Reconcile::start(&db.url, &fake, dir.path(), "unreachable", &[], &env).finish().await;

        // Assert: exit 1, the reason last; the run is `failed` with it, and not a finished pass.
        assert_eq!(code, 1, "{log}");
        let last = last_line(&log);
        assert!(last.contains("the pass failed: listing installations failed"), "last line: {last}\n{log}");
        let runs = store.runs(10).await.unwrap();
        assert_eq!(runs.len(), 1, "{runs:?}");
        assert_eq!(runs[0].state, "failed", "{runs:?}");
        assert!(runs[0].errors.iter().any(|e| e.contains("listing installations failed")), "{runs:?}");
        assert!(store.last_finished_run().await.unwrap().is_none(), "a failed pass does not count as finished");
        assert_eq!(store.running_run().await.unwrap(), None, "the one-pass slot is free again");
    }

    async fn a_pass_with_due_users_and_no_token_at_all_fails_at_once(backend: Backend) {
        // Arrange: a user linked without installing, and no installation anywhere.
        let fake = fake_with_users(0, std::time::Duration::ZERO).await;
        let db = TestDb::create(backend).await;
        let store = open_store(&db).await;
        let account = Account {
            id: GitHubUserId::new(77).unwrap(),
            login: Login::from_github("linked-only").unwrap(),
            node_id: None,
            avatar_url: None,
            kind: AccountKind::User,
            installation_id: None,
        };
        store.track_user(&account, Utc::now()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();

        // Act
        let (code, log) = Reconcile::start(&db.url, &fake, dir.path(), "tokenless", &[], &[]).finish().await;

        // Assert: it does not wait for a token that cannot come; exit 1 with the reason.
        assert_eq!(code, 1, "{log}");
        let last = last_line(&log);
        assert!(last.contains("no active installation"), "last line: {last}\n{log}");
        let runs = store.runs(10).await.unwrap();
        assert_eq!(runs[0].state, "failed", "{runs:?}");
        assert_eq!(store.running_run().await.unwrap(), None);
    }

    async fn a_pass_that_ran_exits_0(backend: Backend) {
        let fake = fake_with_users(3, std::time::Duration::ZERO).await;
        let db = TestDb::create(backend).await;
        let store = open_store(&db).await;
        let dir = tempfile::tempdir().unwrap();

        let (code, log) = Reconcile::start(&db.url, &fake, dir.path(), "fine", &[], &[]).finish().await;

        assert_eq!(code, 0, "{log}");
        assert_eq!(store.runs(10).await.unwrap()[0].state, "finished");
        assert!(store.last_finished_run().await.unwrap().is_some());
    }
}
