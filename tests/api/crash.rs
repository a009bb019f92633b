//! Crash safety with the real binary: a delivery answered 2xx survives
//! `kill -9` one instruction later, is applied after a restart, and its GUID
//! is still known (a redelivery is answered 200).

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{StreamExt, stream};
use secrecy::SecretString;

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, APP_ID, PATIENCE, SECRET, TestDb, eventually};
use fake_github::sign_webhook;
use fake_github::{DEMO_APP_PUBLIC_KEY, FakeConfig, FakeGitHub, FakeUser, payloads};
use ghsync::config::DatabaseSettings;
use ghsync::domain::{DeliveryId, DeliveryState};

const DELIVERIES: usize = 400;
const CONCURRENCY: usize = 16;
/// The first process is killed when this many deliveries have been answered 2xx.
const KILL_AFTER: usize = 150;
/// The inbox worker's lease (60 s): deliveries the killed process had claimed
/// wait for it to lapse before the new process may take them.
const APPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// A `ghsync serve` child process; killed (SIGKILL) and reaped when dropped.
/// When the test is failing, its log is printed.
struct Server {
    child: Mutex<Child>,
    base: String,
    log: PathBuf,
}

impl Server {
    fn start(db_url: &str, fake: &FakeGitHub, dir: &Path, name: &str) -> Server {
        let port = free_port();
        let log = dir.join(format!("{name}.log"));
        let out = File::create(&log).unwrap();
        let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("fake-github/fixtures/demo-app-key.pem");
        let child = Command::new(env!("CARGO_BIN_EXE_ghsync"))
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
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("the ghsync binary starts");
        Server { child: Mutex::new(child), base: format!("http://127.0.0.1:{port}"), log }
    }

    async fn wait_healthy(&self, client: &reqwest::Client) {
        let url = format!("{}/healthz", self.base);
        eventually("ghsync serve to answer /healthz", PATIENCE, || async {
            if let Ok(Some(status)) = self.child.lock().unwrap().try_wait() {
                panic!(
                    "ghsync serve exited with {status}; log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            let response = client.get(&url).send().await.ok()?;
            response.status().is_success().then_some(())
        })
        .await;
    }

    /// SIGKILL (what `Child::kill` sends on Unix), then reap.
    fn kill(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- {} ---\n{}", self.log.display(), std::fs::read_to_string(&self.log).unwrap_or_default());
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn post(client: &reqwest::Client, base: &str, guid: &str, body: &[u8]) -> Option<u16> {
    client
        .post(format!("{base}/webhooks/github"))
        .header("content-type", "application/json")
        .header("X-GitHub-Event", "star")
        .header("X-GitHub-Delivery", guid)
        .header("X-Hub-Signature-256", sign_webhook(SECRET, body))
        .body(body.to_vec())
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

both_backends! {
    async fn every_delivery_answered_before_a_kill_9_is_applied_after_the_restart(backend: Backend) {
        // Arrange: a fake GitHub, a database, and the real binary serving on it.
        let fake = FakeGitHub::start(FakeConfig { app_id: APP_ID, app_public_key_pem: DEMO_APP_PUBLIC_KEY.into() }).await.unwrap();
        let db = TestDb::create(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let client = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap();
        let first = Arc::new(Server::start(&db.url, &fake, dir.path(), "first"));
        first.wait_healthy(&client).await;
        let deliveries: Vec<(String, Vec<u8>)> = (0..DELIVERIES)
            .map(|i| {
                let body = payloads::simple_event_with_sender(&FakeUser::sample(100_000 + i as i64));
                (uuid::Uuid::new_v4().to_string(), serde_json::to_vec(&body).unwrap())
            })
            .collect();

        // Act: a burst, and SIGKILL part-way through it.
        let answered = Arc::new(AtomicUsize::new(0));
        let results: Vec<(usize, Option<u16>)> = stream::iter(deliveries.iter().enumerate())
            .map(|(i, (guid, body))| {
                let (client, first, answered) = (client.clone(), first.clone(), answered.clone());
                async move {
                    let status = post(&client, &first.base, guid, body).await;
                    if status.is_some_and(|s| (200..300).contains(&s)) && answered.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER {
                        first.kill();
                    }
                    (i, status)
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        first.kill();
        let accepted: Vec<usize> = results.iter().filter(|(_, s)| s.is_some_and(|s| (200..300).contains(&s))).map(|(i, _)| *i).collect();
        assert!(
            results.iter().all(|(_, s)| s.is_none() || *s == Some(202)),
            "every answer to a new, well-signed delivery is 202: {:?}",
            results.iter().filter_map(|(_, s)| *s).filter(|s| *s != 202).collect::<Vec<_>>()
        );
        assert!(accepted.len() >= KILL_AFTER, "only {} answered before the kill", accepted.len());
        assert!(accepted.len() < DELIVERIES, "the process was killed part-way, so some deliveries went unanswered");

        // Act: restart on the same database.
        let second = Server::start(&db.url, &fake, dir.path(), "second");
        second.wait_healthy(&client).await;

        // Assert: every answered delivery is stored, and is applied (not left pending).
        let store = ghsync::store::open(&DatabaseSettings { url: SecretString::from(db.url.clone()) }).await.unwrap();
        for &i in &accepted {
            let id = DeliveryId::parse(&deliveries[i].0).unwrap();
            assert!(store.delivery(&id).await.unwrap().is_some(), "delivery {i} was answered 2xx but is lost");
        }
        let pending_left = eventually("every answered delivery to be applied", APPLY_TIMEOUT, || {
            let (store, accepted, deliveries) = (store.clone(), &accepted, &deliveries);
            async move {
                let mut states = Vec::with_capacity(accepted.len());
                for &i in accepted {
                    let id = DeliveryId::parse(&deliveries[i].0).unwrap();
                    states.push(store.delivery(&id).await.ok()??.state);
                }
                (!states.contains(&DeliveryState::Pending)).then_some(states)
            }
        })
        .await;
        assert!(
            pending_left.iter().all(|s| matches!(s, DeliveryState::Done | DeliveryState::Ignored)),
            "applied, never failed: {pending_left:?}"
        );
        assert_eq!(store.inbox_stats().await.unwrap().failed, 0);

        // Assert: GUIDs answered before the crash are still known to the new process.
        for &i in accepted.iter().take(5) {
            let (guid, body) = &deliveries[i];
            assert_eq!(post(&client, &second.base, guid, body).await, Some(200), "redelivery of {guid} across the restart");
        }
        drop(second);
        drop(first);
    }
}
