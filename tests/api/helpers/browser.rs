//! Headless Chromium (Debian's `chromium`) for tests that check what a person
//! sees: the rendered DOM and a screenshot. Missing Chromium fails under CI
//! (`CI=true`) and skips visibly elsewhere.

use std::path::{Path, PathBuf};
use tokio::process::Command;

pub struct Chromium {
    binary: PathBuf,
}

impl Chromium {
    /// `None` (after saying so on the terminal) when Chromium is not installed
    /// outside CI; under CI a missing Chromium is a failure.
    pub fn find() -> Option<Chromium> {
        use std::io::Write as _;
        let found = ["chromium", "chromium-browser"].iter().find_map(|name| {
            let out = std::process::Command::new("which").arg(name).output().ok()?;
            out.status.success().then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        });
        if found.is_none() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but chromium is not installed (.ci/run installs it: apt-get install -y chromium)"
            );
            let _ = writeln!(std::io::stderr(), "SKIPPED (browser test): chromium is not installed");
        }
        found.map(|binary| Chromium { binary })
    }

    /// A browser to drive page by page (see `cdp.rs`); blocking.
    pub fn browser(&self) -> super::Browser {
        super::Browser::launch(&self.binary)
    }

    fn command(&self, profile: &Path) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .arg("--headless")
            .arg("--disable-gpu")
            .arg("--no-sandbox")
            .arg("--no-first-run")
            .arg(format!("--user-data-dir={}", profile.display()))
            .kill_on_drop(true);
        command
    }

    /// The DOM after the page loaded, serialized.
    pub async fn dump_dom(&self, url: &str) -> String {
        let profile = tempfile::tempdir().unwrap();
        let out = self.command(profile.path()).arg("--dump-dom").arg(url).output().await.expect("chromium runs");
        assert!(out.status.success(), "chromium --dump-dom failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("the DOM is UTF-8")
    }

    pub async fn screenshot(&self, url: &str, to: &Path) {
        let profile = tempfile::tempdir().unwrap();
        let _ = std::fs::remove_file(to);
        let out = self
            .command(profile.path())
            .arg(format!("--screenshot={}", to.display()))
            .arg("--window-size=1280,1600")
            .arg("--hide-scrollbars")
            .arg(url)
            .output()
            .await
            .expect("chromium runs");
        assert!(out.status.success(), "chromium --screenshot failed: {}", String::from_utf8_lossy(&out.stderr));
        assert!(std::fs::metadata(to).is_ok_and(|m| m.len() > 0), "no screenshot at {}", to.display());
    }
}

/// Cargo's target directory (wherever `CARGO_TARGET_DIR` put it): the
/// binary under test lives in `<target>/<profile>/`.
pub fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_ghsync")).parent().and_then(Path::parent).expect("target/<profile>/ghsync").into()
}
