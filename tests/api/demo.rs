//! `ghsync demo`, run as the real binary. It cannot touch real data: in a
//! directory whose `.env` (and environment) name another database and a
//! GitHub App, it uses its own SQLite file and leaves theirs alone. And the
//! story it prints is what its store holds afterwards.

use std::path::Path;
use std::process::{Command, Stdio};

use secrecy::SecretString;

use crate::helpers::{PATIENCE, eventually};

/// Bytes no SQLite open would leave as they are: a "real" database stand-in.
const REAL_DATA: &[u8] = b"production data: hands off\n";

#[tokio::test]
async fn a_demo_in_a_production_directory_leaves_its_database_untouched() {
    // Arrange: a directory set up as `ghsync setup` leaves one, plus a DATABASE_URL in the environment.
    let dir = tempfile::tempdir().unwrap();
    let real_db = dir.path().join("real.db");
    std::fs::write(&real_db, REAL_DATA).unwrap();
    let env_db = dir.path().join("from-env.db");
    let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("fake-github/fixtures/demo-app-key.pem");
    std::fs::write(
        dir.path().join(".env"),
        format!(
            "DATABASE_URL=sqlite://{}\nGITHUB_APP_ID=424242\nGITHUB_APP_PRIVATE_KEY_PATH={}\n\
             GITHUB_API_URL=http://127.0.0.1:9/unreachable\nGITHUB_WEBHOOK_SECRET=real-secret\n",
            real_db.display(),
            key.display()
        ),
    )
    .unwrap();

    // Act
    let mut child = Command::new(env!("CARGO_BIN_EXE_ghsync"))
        .args(["demo", "--exit-when-synced", "--users", "12", "--ghsync-listen", "127.0.0.1:0"])
        .env_clear()
        .env("DATABASE_URL", format!("sqlite://{}", env_db.display()))
        .env("GITHUB_API_URL", "http://127.0.0.1:9/unreachable")
        .env("GHSYNC_LOG", "warn")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the ghsync binary starts");
    let status = eventually("ghsync demo to exit", PATIENCE, || {
        let status = child.try_wait().unwrap();
        async move { status }
    })
    .await;
    let output = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));

    // Assert
    assert!(status.success(), "demo failed ({status}):\n{said}");
    assert!(
        said.contains("1. 12 users installed the App: 12 webhooks answered 202"),
        "the demo synced its own users:\n{said}"
    );
    assert!(dir.path().join("ghsync-demo.db").exists(), "the demo used its own file:\n{said}");
    assert_eq!(std::fs::read(&real_db).unwrap(), REAL_DATA, "the .env database was touched");
    assert!(!env_db.exists(), "the DATABASE_URL database was created");
}

/// Runs `ghsync demo --exit-when-synced` in `dir`; its stdout (it must succeed).
async fn run_demo(dir: &Path, users: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ghsync"))
        .args(["demo", "--exit-when-synced", "--users", users, "--ghsync-listen", "127.0.0.1:0"])
        .env("GHSYNC_LOG", "warn")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the ghsync binary starts");
    let status = eventually("ghsync demo to exit", PATIENCE * 2, || {
        let status = child.try_wait().unwrap();
        async move { status }
    })
    .await;
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(status.success(), "demo failed ({status}):\n{stdout}{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// The numbers in `line` after each of `labels` (`"checked"` in "40 checked" is the number before it).
fn number_before(line: &str, label: &str) -> i64 {
    let at = line.find(&format!(" {label}")).unwrap_or_else(|| panic!("no {label:?} in {line:?}"));
    line[..at].rsplit([' ', '(', ',']).next().unwrap().parse().unwrap_or_else(|_| panic!("{label} in {line:?}"))
}

fn line<'a>(said: &'a str, start: &str) -> &'a str {
    said.lines().find(|l| l.starts_with(start)).unwrap_or_else(|| panic!("no line {start:?} in:\n{said}"))
}

#[tokio::test]
async fn the_demo_tells_the_story_its_store_holds() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();

    // Act: 32 users, so three of them (1012, 1022, 1032) edit their bios.
    let said = run_demo(dir.path(), "32").await;

    // Assert: what it printed…
    let edited = number_before(line(&said, "2. "), "users edited their bios");
    assert_eq!(edited, 3, "{said}");
    let pass = line(&said, "4. pass ");
    let run_id: i64 = pass["4. pass ".len()..].split(' ').next().unwrap().parse().unwrap();
    let statuses = line(&said, "5. users by status: ");
    // …against what the demo's own database holds.
    let settings = ghsync::config::DatabaseSettings {
        url: SecretString::from(format!("sqlite://{}", dir.path().join("ghsync-demo.db").display())),
    };
    let store = ghsync::store::open(&settings).await.unwrap();
    let run = store.run(ghsync::domain::RunId::new(run_id).unwrap()).await.unwrap().expect("the printed pass");
    assert_eq!(run.state, "finished");
    assert_eq!(number_before(pass, "checked"), run.counts.users_due, "{pass}");
    assert_eq!(number_before(pass, "changed"), run.counts.changed, "{pass}");
    assert_eq!(number_before(pass, "unchanged"), run.counts.unchanged, "{pass}");
    assert_eq!(run.counts.users_due, 32 - 3, "every active user checked (not the uninstalled, revoked, opted out)");
    // The edited bios, and the renamed user: GitHub stamps `updated_at` at a rename, which its webhook does not carry.
    assert_eq!(run.counts.changed, edited + 1, "the pass found exactly the edited bios and the rename: {pass}");
    for id in [1012, 1022, 1032] {
        let user = store.user_by_id(ghsync::domain::GitHubUserId::new(id).unwrap()).await.unwrap().unwrap();
        assert_eq!(
            user.bio.as_deref(),
            Some(format!("Edited bio of user {id}").as_str()),
            "user{id}'s new bio is stored"
        );
    }
    let renamed = ghsync::domain::Login::parse("user1003-renamed").unwrap();
    assert!(said.contains("user1003 was renamed user1003-renamed"), "{said}");
    let renamed = store.user_by_login(&renamed).await.unwrap().expect("the new login is stored");
    assert_eq!(renamed.github_id.get(), 1003);
    assert!(
        renamed.github_updated_at.unwrap() > run.started_at - chrono::Duration::minutes(5),
        "stamped at the rename"
    );
    let mut by_status = store.user_counts().await.unwrap();
    by_status.sort();
    let expected: Vec<String> =
        by_status.iter().filter(|(_, n)| *n > 0).map(|(status, n)| format!("{status} {n}")).collect();
    assert_eq!(statuses, format!("5. users by status: {}.", expected.join(", ")));
    assert_eq!(statuses, "5. users by status: active 29, opted_out 1, revoked 1, uninstalled 1.");
    // The admin page comes first among the URLs, with how to sign in.
    let open = said.split("Open:").nth(1).expect("the URLs");
    assert!(
        open.trim_start().starts_with("http://127.0.0.1:") && open.lines().nth(1).unwrap().contains("/admin "),
        "{open}"
    );
    assert!(open.contains("sign in with the admin token"), "{open}");
}
