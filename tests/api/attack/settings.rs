//! Each bad setting stops the real binary at start, non-zero, with one line
//! on stderr naming the variable.

use std::process::{Command, Stdio};

use crate::helpers::{APP_ID, SECRET};

/// (variable, bad value): each one out of its bounds or unparsable.
const BAD: &[(&str, &str)] = &[
    ("GHSYNC_REDELIVER_INTERVAL", "0s"),
    ("GHSYNC_REDELIVER_INTERVAL", "1ns"),
    ("GHSYNC_SYNC_INTERVAL", "300000years"),
    ("GHSYNC_STALE_AFTER", "31days"),
    ("GHSYNC_BATCH_SIZE", "101"),
    ("GHSYNC_BATCH_SIZE", "0"),
    ("GITHUB_APP_ID", "0"),
    ("GHSYNC_LOG", "nonsense["),
    ("GHSYNC_WEBHOOK_MEMORY", "0"),
    ("GHSYNC_WEBHOOK_MEMORY", "lots"),
    ("GHSYNC_WEBHOOK_READ_TIMEOUT", "0s"),
];

#[test]
fn each_bad_setting_stops_the_binary_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fake-github/fixtures/demo-app-key.pem");
    for (var, value) in BAD {
        // Arrange: a valid configuration but for this one variable.
        let mut command = Command::new(env!("CARGO_BIN_EXE_ghsync"));
        command
            .arg("serve")
            .env_clear()
            .current_dir(dir.path())
            .env("DATABASE_URL", format!("sqlite://{}/never.db", dir.path().display()))
            .env("GITHUB_APP_ID", APP_ID.to_string())
            .env("GITHUB_APP_PRIVATE_KEY_PATH", &key)
            .env("GITHUB_WEBHOOK_SECRET", SECRET)
            .env("GHSYNC_LISTEN", "127.0.0.1:0")
            .env(var, value)
            .stdin(Stdio::null());

        // Act
        let output = command.output().expect("the ghsync binary runs");

        // Assert
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{var}={value:?} was accepted; stderr: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{var}={value:?}: one line expected, got {stderr:?}");
        assert!(lines[0].contains(var), "{var}={value:?}: the line does not name it: {stderr:?}");
        assert!(!dir.path().join("never.db").exists(), "{var}={value:?}: the database was opened");
    }
}
