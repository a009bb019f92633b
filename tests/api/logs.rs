//! The logs of a full run of the real binary at debug level (installations
//! discovered, webhooks applied and parked, a pass, the admin page and API):
//! in JSON, one object per line, each line of a request carrying its request
//! id, of a delivery its GUID, of a pass its run id; in text and JSON alike,
//! no secret — the webhook secret, the admin token, installation tokens, the
//! App's JWTs or its private key.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, APP_ID, PATIENCE, SECRET, TestDb, eventually};
use fake_github::{DEMO_APP_PUBLIC_KEY, FakeConfig, FakeGitHub, FakeUser, payloads};

const REQUEST_ID: &str = "logs-test-request-1";

/// A `ghsync serve` at debug level; killed when dropped.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn key_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fake-github/fixtures/demo-app-key.pem")
}

/// Runs the whole story once and returns the log.
async fn full_run(db_url: &str, format: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let fake =
        FakeGitHub::start(FakeConfig { app_id: APP_ID, app_public_key_pem: DEMO_APP_PUBLIC_KEY.into() }).await.unwrap();
    for id in 7101..=7103 {
        fake.add_user(FakeUser::sample(id));
        fake.add_installation(id, id);
    }
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let log = dir.path().join("ghsync.log");
    let out = File::create(&log).unwrap();
    let _serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_ghsync"))
            .arg("serve")
            .env_clear()
            .current_dir(dir.path())
            .env("DATABASE_URL", db_url)
            .env("GITHUB_APP_ID", APP_ID.to_string())
            .env("GITHUB_APP_PRIVATE_KEY_PATH", key_path())
            .env("GITHUB_WEBHOOK_SECRET", SECRET)
            .env("GITHUB_API_URL", fake.url())
            .env("GHSYNC_LISTEN", format!("127.0.0.1:{port}"))
            .env("GHSYNC_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("GHSYNC_SYNC_INTERVAL", "12h")
            .env("GHSYNC_LOG", "debug")
            .env("GHSYNC_LOG_FORMAT", format)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("the ghsync binary starts"),
    );
    let client = reqwest::Client::new();
    let admin = |method: reqwest::Method, path: &str| {
        client.request(method, format!("{base}{path}")).bearer_auth(ADMIN_TOKEN).header("X-Request-Id", REQUEST_ID)
    };
    eventually("ghsync serve to answer", PATIENCE, || async {
        client.get(format!("{base}/healthz")).send().await.ok().filter(|r| r.status().is_success())
    })
    .await;

    // A pass (the startup one, or ours): discovers the installations, mints
    // their tokens, fetches the users.
    let started = admin(reqwest::Method::POST, "/admin/reconcile").send().await.unwrap().status().as_u16();
    assert!(matches!(started, 202 | 409), "a pass starts or is running: {started}");
    eventually("the pass to finish", PATIENCE, || async {
        let runs: Value = admin(reqwest::Method::GET, "/admin/runs").send().await.ok()?.json().await.ok()?;
        (runs["runs"][0]["state"] != "running" && runs["runs"][0]["state"].is_string()).then_some(())
    })
    .await;
    // Webhooks: one applied (a suspension, with its token work), one parked.
    fake.set_webhook_target(&format!("{base}/webhooks/github"), SECRET);
    let suspend = payloads::installation_event("suspend", &fake.installation_payload(7102), &FakeUser::sample(7102));
    assert_eq!(fake.deliver("installation", &suspend).await.unwrap().0, 202);
    let broken = json!({"action": "created", "sender": payloads::simple_user(&FakeUser::sample(7109))});
    assert_eq!(fake.deliver("installation", &broken).await.unwrap().0, 202);
    eventually("the inbox to drain", PATIENCE, || async {
        let health: Value = admin(reqwest::Method::GET, "/admin/health").send().await.ok()?.json().await.ok()?;
        (health["inbox"]["pending"] == 0 && health["inbox"]["failed"] == 1).then_some(())
    })
    .await;
    // The admin page, a refused call, and the request id echoed.
    let page = admin(reqwest::Method::GET, "/admin").send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["x-request-id"], REQUEST_ID, "a sane incoming id is echoed");
    let refused = client.get(format!("{base}/admin/health")).header("X-Request-Id", "bad id\"").send().await.unwrap();
    let fresh = refused.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(fresh).is_ok(), "an insane id is replaced by a new one: {fresh}");
    fake.stop();
    drop(_serve);
    std::fs::read_to_string(&log).unwrap()
}

/// Every secret the run handled, and none of it in the log.
fn assert_no_secrets(log: &str) {
    assert!(!log.contains(SECRET), "the webhook secret is in the log");
    assert!(!log.contains(ADMIN_TOKEN), "the admin token is in the log");
    assert!(!log.contains("PRIVATE KEY"), "PEM material is in the log");
    let pem = std::fs::read_to_string(key_path()).unwrap();
    for line in pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!log.contains(line), "a line of the App's private key is in the log: {line}");
    }
    // The fake mints `ghs_` + 36 alphanumerics, as GitHub does.
    for (at, _) in log.match_indices("ghs_") {
        let tail = &log[at + 4..];
        let run = tail.bytes().take_while(u8::is_ascii_alphanumeric).count();
        assert!(run < 36, "an installation token is in the log: {}", &log[at..at + 4 + run]);
    }
    // App JWTs: a base64url JSON header `{"alg":` or `{"typ":`.
    assert!(!log.contains("eyJhbGci") && !log.contains("eyJ0eXAi"), "a JWT is in the log");
}

both_backends! {
    async fn a_full_runs_logs_carry_ids_on_every_line_and_no_secret(backend: Backend) {
        // Arrange + Act: the same story, logged as text and as JSON.
        let text = full_run(&TestDb::create(backend).await.url, "text").await;
        let json_log = full_run(&TestDb::create(backend).await.url, "json").await;

        // Assert: nothing secret in either.
        assert_no_secrets(&text);
        assert_no_secrets(&json_log);
        // JSON: one object per line.
        let lines: Vec<Value> = json_log
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
            .collect();
        assert!(lines.iter().all(Value::is_object));
        // Every line inside a span names its request, delivery or pass.
        let in_span = |name: &'static str| {
            lines.iter().filter(move |l| l["spans"].as_array().is_some_and(|s| s.iter().any(|s| s["name"] == name)))
        };
        let span_field = |l: &Value, name: &str, field: &str| {
            l["spans"].as_array().and_then(|s| s.iter().find(|s| s["name"] == name)).map(|s| s[field].clone())
        };
        for (span, field) in [("request", "request_id"), ("inbox.apply", "delivery_id"), ("sync.pass", "run_id")] {
            assert!(in_span(span).count() > 0, "some lines were logged inside a {span} span:\n{json_log}");
            for line in in_span(span) {
                assert!(span_field(line, span, field).is_some_and(|v| v.is_string() && v != ""), "{field} on {line}");
            }
        }
        assert!(in_span("request").any(|l| span_field(l, "request", "request_id") == Some(REQUEST_ID.into())),
            "the incoming request id is logged:\n{json_log}");
    }
}
