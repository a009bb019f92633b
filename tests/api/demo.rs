//! `ghsync demo` cannot touch real data: run with the real binary in a
//! directory whose `.env` (and environment) name another database and a
//! GitHub App, it uses its own SQLite file and leaves theirs alone.

use std::path::Path;
use std::process::{Command, Stdio};

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
        .args(["demo", "--exit-when-synced", "--users", "3", "--ghsync-listen", "127.0.0.1:0"])
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
    assert!(said.contains("3/3 profiles synced"), "the demo synced its own users:\n{said}");
    assert!(dir.path().join("ghsync-demo.db").exists(), "the demo used its own file:\n{said}");
    assert_eq!(std::fs::read(&real_db).unwrap(), REAL_DATA, "the .env database was touched");
    assert!(!env_db.exists(), "the DATABASE_URL database was created");
}
