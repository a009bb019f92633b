//! `Attacked`: `ghsync serve` as a child process on a fresh SQLite database
//! and a fake GitHub, with settings of the test's choosing; its resident
//! memory, its log, and a signed-or-not webhook sender.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use crate::helpers::{ADMIN_TOKEN, APP_ID, Backend, PATIENCE, SECRET, TestDb, eventually};
use fake_github::{DEMO_APP_PUBLIC_KEY, FakeConfig, FakeGitHub};

pub struct Attacked {
    child: Mutex<Child>,
    pub base: String,
    pub addr: String,
    log: PathBuf,
    _fake: FakeGitHub,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

impl Attacked {
    /// Starts the binary with `env` on top of a valid configuration; waits for `/healthz`.
    pub async fn start(env: &[(&str, &str)]) -> Attacked {
        let fake = FakeGitHub::start(FakeConfig { app_id: APP_ID, app_public_key_pem: DEMO_APP_PUBLIC_KEY.into() })
            .await
            .unwrap();
        let db = TestDb::create(Backend::Sqlite).await;
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = dir.path().join("serve.log");
        let out = File::create(&log).unwrap();
        let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("fake-github/fixtures/demo-app-key.pem");
        let mut command = Command::new(env!("CARGO_BIN_EXE_ghsync"));
        command
            .arg("serve")
            .env_clear()
            .current_dir(dir.path())
            .env("DATABASE_URL", &db.url)
            .env("GITHUB_APP_ID", APP_ID.to_string())
            .env("GITHUB_APP_PRIVATE_KEY_PATH", key)
            .env("GITHUB_WEBHOOK_SECRET", SECRET)
            .env("GITHUB_API_URL", fake.url())
            .env("GHSYNC_LISTEN", format!("127.0.0.1:{port}"))
            .env("GHSYNC_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("GHSYNC_LOG", "info");
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("the ghsync binary starts");
        let server = Attacked {
            child: Mutex::new(child),
            base: format!("http://127.0.0.1:{port}"),
            addr: format!("127.0.0.1:{port}"),
            log,
            _fake: fake,
            _db: db,
            _dir: dir,
        };
        let client = reqwest::Client::new();
        eventually("ghsync serve to answer /healthz", PATIENCE, || async {
            if let Ok(Some(status)) = server.child.lock().unwrap().try_wait() {
                panic!("ghsync serve exited with {status}; log:\n{}", server.log_text());
            }
            server.healthz(&client).await.then_some(())
        })
        .await;
        server
    }

    /// True when `/healthz` answers 200.
    pub async fn healthz(&self, client: &reqwest::Client) -> bool {
        let response = client.get(format!("{}/healthz", self.base)).timeout(PATIENCE).send().await;
        response.is_ok_and(|r| r.status().is_success())
    }

    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap().id()
    }

    /// Resident memory of the server process, in bytes.
    pub fn rss(&self) -> u64 {
        rss_of(self.pid())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The value of one series in `/metrics` (0 when absent).
    pub async fn metric(&self, client: &reqwest::Client, series: &str) -> u64 {
        let text = client.get(format!("{}/metrics", self.base)).send().await.unwrap().text().await.unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series).map(str::trim))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    }

    /// Posts `body` as a `star` event with the signature given (or none).
    pub fn webhook(
        &self,
        client: &reqwest::Client,
        body: bytes::Bytes,
        signature: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let request = client
            .post(format!("{}/webhooks/github", self.base))
            .header("content-type", "application/json")
            .header("X-GitHub-Event", "star")
            .header("X-GitHub-Delivery", uuid::Uuid::new_v4().to_string())
            .body(body);
        match signature {
            Some(signature) => request.header("X-Hub-Signature-256", signature),
            None => request,
        }
    }
}

impl Drop for Attacked {
    fn drop(&mut self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
        if std::thread::panicking() {
            eprintln!("--- ghsync serve log ---\n{}", self.log_text());
        }
    }
}

/// Resident memory of process `pid`, in bytes (0 once it is gone).
pub fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    kib * 1024
}
