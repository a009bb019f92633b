//! The real binary as child processes: `ghsync serve` replicas and `ghsync
//! reconcile` runs on one database, against a fake GitHub with many users.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::{ADMIN_TOKEN, APP_ID, PATIENCE, SECRET, eventually};
use fake_github::{DEMO_APP_PUBLIC_KEY, FakeConfig, FakeGitHub, FakeUser, Faults};

/// A fake GitHub with `users` users, each with an installation of their own, answering after `latency`.
pub async fn fake_with_users(users: i64, latency: Duration) -> FakeGitHub {
    let fake =
        FakeGitHub::start(FakeConfig { app_id: APP_ID, app_public_key_pem: DEMO_APP_PUBLIC_KEY.into() }).await.unwrap();
    for id in 1..=users {
        fake.add_user(FakeUser::sample(id));
        fake.add_installation(id, id);
    }
    fake.set_faults(Faults { latency, ..Faults::default() });
    fake
}

/// A `ghsync reconcile` child process writing its output to `NAME.log`.
pub struct Reconcile {
    child: tokio::process::Child,
    log: PathBuf,
}

impl Reconcile {
    pub fn start(
        db_url: &str,
        fake: &FakeGitHub,
        dir: &Path,
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Reconcile {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("fake-github/fixtures/demo-app-key.pem");
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ghsync"))
            .arg("reconcile")
            .args(args)
            .env_clear()
            .current_dir(dir)
            .env("DATABASE_URL", db_url)
            .env("GITHUB_APP_ID", APP_ID.to_string())
            .env("GITHUB_APP_PRIVATE_KEY_PATH", key)
            .env("GITHUB_API_URL", fake.url())
            .env("GHSYNC_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .expect("the ghsync binary starts");
        Reconcile { child, log }
    }

    /// Waits for the exit; the exit code and the whole log.
    pub async fn finish(mut self) -> (i32, String) {
        let status =
            tokio::time::timeout(PATIENCE * 2, self.child.wait()).await.expect("ghsync reconcile finishes").unwrap();
        (status.code().unwrap_or(-1), std::fs::read_to_string(&self.log).unwrap_or_default())
    }
}

/// Lines that say the database refused something (what must never reach a process).
pub fn database_errors(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("deadlock") || l.contains("serializ") || l.contains("error returned from database"))
        .collect()
}

/// `ghsync serve` (the real binary) with its schedule on: a start-up pass runs at once.
pub struct Serve {
    child: tokio::process::Child,
    pub base: String,
    log: PathBuf,
}

impl Serve {
    pub fn start(db_url: &str, fake: &FakeGitHub, dir: &Path, name: &str) -> Serve {
        Self::start_with(db_url, fake, dir, name, &[])
    }

    /// Like `start`, with more variables (e.g. `GHSYNC_LEASE`).
    pub fn start_with(db_url: &str, fake: &FakeGitHub, dir: &Path, name: &str, env: &[(&str, &str)]) -> Serve {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("fake-github/fixtures/demo-app-key.pem");
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ghsync"))
            .arg("serve")
            .env_clear()
            .current_dir(dir)
            .env("DATABASE_URL", db_url)
            .env("GITHUB_APP_ID", APP_ID.to_string())
            .env("GITHUB_APP_PRIVATE_KEY_PATH", key)
            .env("GITHUB_WEBHOOK_SECRET", SECRET)
            .env("GITHUB_API_URL", fake.url())
            .env("GHSYNC_LISTEN", format!("127.0.0.1:{port}"))
            .env("GHSYNC_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("GHSYNC_SYNC_INTERVAL", "12h")
            .env("GHSYNC_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .expect("the ghsync binary starts");
        Serve { child, base: format!("http://127.0.0.1:{port}"), log }
    }

    /// Sends a signal (`STOP`, `CONT`, `KILL`) to the process.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().expect("the process has not been reaped").to_string();
        let status = std::process::Command::new("kill").args([&format!("-{name}"), &pid]).status().unwrap();
        assert!(status.success(), "kill -{name} {pid}");
    }

    /// SIGKILL, and reaped.
    pub async fn kill(&mut self) {
        self.child.kill().await.unwrap();
    }

    /// Waits until `/healthz` answers.
    pub async fn wait_up(&self, client: &reqwest::Client) {
        eventually("ghsync serve to answer /healthz", PATIENCE, || async {
            let response = client.get(format!("{}/healthz", self.base)).send().await.ok()?;
            response.status().is_success().then_some(())
        })
        .await;
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The passes as `/admin/runs` shows them (empty while the server is not up yet).
    pub async fn runs(&self, client: &reqwest::Client) -> Vec<serde_json::Value> {
        let Ok(response) = client.get(format!("{}/admin/runs", self.base)).bearer_auth(ADMIN_TOKEN).send().await else {
            return Vec::new();
        };
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        body.as_array().cloned().or_else(|| body["runs"].as_array().cloned()).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- {} ---\n{}", self.log.display(), self.log());
        }
    }
}

/// A one-shot subcommand (`migrate`) on the same database.
pub async fn run_command(command: &str, db_url: &str, dir: &Path) -> (i32, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_ghsync"))
        .arg(command)
        .env_clear()
        .current_dir(dir)
        .env("DATABASE_URL", db_url)
        .output()
        .await
        .unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.code().unwrap_or(-1), log)
}
