//! `ghsync setup`: GitHub's App manifest flow. We serve a page that posts
//! `app-manifest.json` to GitHub; GitHub creates the App and redirects back
//! with a one-time code; we trade it for the App's id, key and webhook
//! secret, write them to `.env` (the key to a file of its own, mode 0600),
//! and stop. GitHub allows an hour for the whole flow.

use actix_web::{HttpResponse, web};
use secrecy::ExposeSecret;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::oneshot;
use url::Url;

use crate::cli::{RawSettings, SetupArgs};
use crate::config::{Settings, api_url};
use crate::github::{NewApp, convert_manifest};

/// GitHub: "You must complete all three steps … within one hour."
const FLOW_LIMIT: Duration = Duration::from_secs(3600);

pub struct SetupOptions {
    /// Where `app-manifest.json` is read and `.env` and the key are written.
    pub dir: PathBuf,
    pub api: Url,
    pub listen: SocketAddr,
    /// The address GitHub redirects the browser back to (default: the listen address).
    pub public_url: Option<Url>,
    pub org: Option<String>,
}

/// The flow in progress: the page is served on `port`.
pub struct RunningSetup {
    pub port: u16,
    pub state: String,
    done: oneshot::Receiver<anyhow::Result<NewApp>>,
    server: actix_web::dev::ServerHandle,
}

impl RunningSetup {
    /// Waits for GitHub's redirect and the credentials being written.
    pub async fn finished(self) -> anyhow::Result<NewApp> {
        let outcome = tokio::time::timeout(FLOW_LIMIT, self.done).await;
        self.server.stop(true).await;
        match outcome {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => anyhow::bail!("the setup server stopped before GitHub called back"),
            Err(_) => anyhow::bail!("GitHub did not call back within an hour; run ghsync setup again"),
        }
    }
}

/// github.com for api.github.com, `https://HOST` for GHES's `https://HOST/api/v3`,
/// `SUB.ghe.com` for `api.SUB.ghe.com`; anything else is taken as is (a fake).
fn web_url(api: &Url) -> Url {
    let mut web = api.clone();
    let host = api.host_str().unwrap_or_default().to_owned();
    if let Some(rest) = host.strip_prefix("api.") {
        let _ = web.set_host(Some(rest));
        web.set_path("/");
    } else if let Some(prefix) = api.path().trim_end_matches('/').strip_suffix("/api/v3") {
        web.set_path(&format!("{prefix}/"));
    }
    web
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

struct Flow {
    page: String,
    state: String,
    api: Url,
    dir: PathBuf,
    done: Mutex<Option<oneshot::Sender<anyhow::Result<NewApp>>>>,
}

async fn serve_page(flow: web::Data<Flow>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(flow.page.clone())
}

#[derive(Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
}

async fn callback(flow: web::Data<Flow>, query: web::Query<Callback>) -> HttpResponse {
    if query.state.as_deref() != Some(flow.state.as_str()) {
        return HttpResponse::BadRequest().body("this callback does not belong to the setup that is running");
    }
    let Some(code) = query.code.as_deref() else { return HttpResponse::BadRequest().body("no code") };
    let result = match convert_manifest(&flow.api, code).await {
        Ok(app) => save(&flow.dir, &app).map(|()| app),
        Err(e) => Err(anyhow::anyhow!("GitHub refused the manifest code: {e}")),
    };
    let response = match &result {
        Ok(app) => HttpResponse::Ok().content_type("text/html; charset=utf-8").body(format!(
            "<!doctype html><meta charset=\"utf-8\"><p>GitHub App <b>{}</b> (id {}) created; its credentials are in .env.</p>\
             <p>Install it: <a href=\"{url}/installations/new\">{url}/installations/new</a>, then run <code>ghsync serve</code>.</p>",
            escape_html(&app.slug),
            app.id,
            url = escape_html(&app.html_url)
        )),
        Err(e) => HttpResponse::BadGateway().body(e.to_string()),
    };
    if let Some(done) = flow.done.lock().expect("setup state poisoned").take() {
        let _ = done.send(result);
    }
    response
}

/// Writes the key (0600) and sets the App's three settings in `.env`, keeping its other lines.
fn save(dir: &Path, app: &NewApp) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let key_path = dir.join(format!("ghsync-app-{}.pem", app.id));
    write_private(&key_path, app.pem.expose_secret())
        .with_context(|| format!("cannot write {}", key_path.display()))?;
    let env_path = dir.join(".env");
    let existing = std::fs::read_to_string(&env_path).unwrap_or_default();
    let ours = ["GITHUB_APP_ID=", "GITHUB_APP_PRIVATE_KEY_PATH=", "GITHUB_APP_PRIVATE_KEY=", "GITHUB_WEBHOOK_SECRET="];
    let mut lines: Vec<String> =
        existing.lines().filter(|l| !ours.iter().any(|k| l.trim_start().starts_with(k))).map(str::to_owned).collect();
    let quote = |v: &str| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
    lines.push(format!("GITHUB_APP_ID={}", app.id));
    lines.push(format!("GITHUB_APP_PRIVATE_KEY_PATH={}", quote(&key_path.display().to_string())));
    match &app.webhook_secret {
        Some(secret) => lines.push(format!("GITHUB_WEBHOOK_SECRET={}", quote(secret.expose_secret()))),
        None => eprintln!("GitHub sent no webhook secret: set one on the App's page and in GITHUB_WEBHOOK_SECRET"),
    }
    write_private(&env_path, &(lines.join("\n") + "\n")).with_context(|| format!("cannot write {}", env_path.display()))
}

fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(content.as_bytes())
}

/// Reads the manifest, starts the page, and returns while waiting for GitHub.
pub async fn start_setup(options: SetupOptions) -> anyhow::Result<RunningSetup> {
    use anyhow::Context as _;
    let manifest_path = options.dir.join("app-manifest.json");
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("{}: cannot read the App manifest", manifest_path.display()))?;
    let mut manifest: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", manifest_path.display()))?;
    let listener = std::net::TcpListener::bind(options.listen)
        .with_context(|| format!("GHSYNC_LISTEN: cannot listen on {}", options.listen))?;
    let port = listener.local_addr()?.port();
    let public = match options.public_url {
        Some(url) => url,
        None => Url::parse(&format!("http://localhost:{port}"))?,
    };
    let base = public.as_str().trim_end_matches('/');
    manifest["redirect_url"] = format!("{base}/setup/callback").into();
    if manifest.pointer("/hook_attributes/url").is_none() {
        manifest["hook_attributes"] = serde_json::json!({ "url": format!("{base}/webhooks/github"), "active": true });
    }
    let state = uuid::Uuid::new_v4().simple().to_string();
    let web = web_url(&options.api);
    let action = match &options.org {
        Some(org) => web.join(&format!("organizations/{org}/settings/apps/new"))?,
        None => web.join("settings/apps/new")?,
    };
    let page = format!(
        "<!doctype html><meta charset=\"utf-8\"><title>ghsync setup</title>\
         <form id=\"f\" method=\"post\" action=\"{action}?state={state}\">\
         <input type=\"hidden\" name=\"manifest\" value=\"{manifest}\">\
         <p>Creating the GitHub App on {web}…</p><button type=\"submit\">Create the GitHub App</button></form>\
         <script>document.getElementById('f').submit()</script>",
        action = escape_html(action.as_str()),
        manifest = escape_html(&manifest.to_string()),
        web = escape_html(web.as_str()),
    );
    let (done, finished) = oneshot::channel();
    let flow = web::Data::new(Flow {
        page,
        state: state.clone(),
        api: options.api,
        dir: options.dir,
        done: Mutex::new(Some(done)),
    });
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(flow.clone())
            .route("/", web::get().to(serve_page))
            .route("/setup/callback", web::get().to(callback))
    })
    .listen(listener)?
    .workers(1)
    .disable_signals()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok(RunningSetup { port, state, done: finished, server: handle })
}

pub async fn setup(settings: Settings, args: SetupArgs, raw: &RawSettings) -> anyhow::Result<()> {
    let public_url = Url::parse(&args.public_url).map_err(|e| anyhow::anyhow!("--public-url: {e}"))?;
    let listen = match (raw.ghsync_listen.as_deref(), public_url.port_or_known_default()) {
        (Some(_), _) | (None, None) => settings.http.listen,
        (None, Some(port)) => SocketAddr::from(([127, 0, 0, 1], port)),
    };
    let running = start_setup(SetupOptions {
        dir: std::env::current_dir()?,
        api: api_url(raw)?,
        listen,
        public_url: Some(public_url.clone()),
        org: args.org,
    })
    .await?;
    println!("Open {public_url} in a browser signed in to GitHub; it creates the App from app-manifest.json.");
    let app = running.finished().await?;
    println!("Created GitHub App {} (id {}); credentials written to .env.", app.slug, app.id);
    println!("Install it at {}/installations/new, then run: ghsync serve", app.html_url);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_web_host_is_derived_from_the_api_url() {
        let web = |api: &str| web_url(&Url::parse(api).unwrap()).to_string();
        assert_eq!(web("https://api.github.com"), "https://github.com/");
        assert_eq!(web("https://ghe.example.com/api/v3"), "https://ghe.example.com/");
        assert_eq!(web("https://api.acme.ghe.com"), "https://acme.ghe.com/");
    }
}
