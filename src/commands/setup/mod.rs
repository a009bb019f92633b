//! `ghsync setup`: GitHub's App manifest flow. We serve a page that posts
//! `app-manifest.json` to GitHub; GitHub creates the App and redirects back
//! with a one-time code; we trade it for the App's id, key and webhook
//! secret, write them to `.env` (`credentials`), and stop. GitHub allows an
//! hour for the whole flow. The page answers only to the token printed on
//! the terminal, and listens on loopback unless told otherwise (`page`).

mod credentials;
mod page;

use actix_web::web;
use rand::Rng as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::oneshot;
use url::Url;

use crate::cli::{RawSettings, SetupArgs};
use crate::config::api_url;
use crate::github::NewApp;
use page::{Flow, escape_html};

/// GitHub: "You must complete all three steps … within one hour."
const FLOW_LIMIT: Duration = Duration::from_secs(3600);

/// The homepage `app-manifest.json` ships with; setup puts the public URL in
/// its place, and leaves any other homepage the operator chose alone.
pub const PLACEHOLDER_HOMEPAGE: &str = "https://ghsync.example.com";

pub struct SetupOptions {
    /// Where `app-manifest.json` is read and `.env` and the key are written.
    pub dir: PathBuf,
    pub api: Url,
    /// Where the page is served (`--listen`; loopback unless told otherwise).
    pub listen: SocketAddr,
    /// The address GitHub redirects the browser back to and sends webhooks to
    /// (`--public-url`; default `http://localhost:<port>`).
    pub public_url: Option<Url>,
    pub org: Option<String>,
}

/// The flow in progress: the page is served on `port`, to holders of `token`.
pub struct RunningSetup {
    pub port: u16,
    pub token: String,
    /// The page's address with the token in it: what the operator opens.
    pub page_url: Url,
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

/// 256 random bits, hex: not guessable, and safe in a URL as is.
fn random_secret() -> String {
    hex::encode(rand::rng().random::<[u8; 32]>())
}

/// Fills in the URLs only this run knows: where GitHub comes back to, where it
/// sends webhooks (unless the manifest says), and the homepage placeholder.
fn fill_manifest(manifest: &mut serde_json::Value, base: &str) {
    manifest["redirect_url"] = format!("{base}/setup/callback").into();
    if manifest.pointer("/hook_attributes/url").is_none() {
        manifest["hook_attributes"] = serde_json::json!({ "url": format!("{base}/webhooks/github"), "active": true });
    }
    let homepage = manifest.get("url").and_then(|u| u.as_str()).unwrap_or_default();
    if homepage.is_empty() || homepage.trim_end_matches('/') == PLACEHOLDER_HOMEPAGE {
        manifest["url"] = base.into();
    }
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
        .with_context(|| format!("--listen: cannot listen on {}", options.listen))?;
    let port = listener.local_addr()?.port();
    let public = match options.public_url {
        Some(url) => url,
        None => Url::parse(&format!("http://localhost:{port}"))?,
    };
    let base = public.as_str().trim_end_matches('/').to_owned();
    fill_manifest(&mut manifest, &base);
    let (token, state) = (random_secret(), random_secret());
    let page_url = Url::parse_with_params(&format!("{base}/"), [("token", &token)])?;
    let web = web_url(&options.api);
    let action = match &options.org {
        Some(org) => web.join(&format!("organizations/{org}/settings/apps/new"))?,
        None => web.join("settings/apps/new")?,
    };
    let page = format!(
        "<!doctype html><meta charset=\"utf-8\"><meta name=\"referrer\" content=\"no-referrer\"><title>ghsync setup</title>\
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
        token: token.clone(),
        state,
        api: options.api,
        dir: options.dir,
        done: Mutex::new(Some(done)),
    });
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(flow.clone())
            .route("/", web::get().to(page::serve_page))
            .route("/setup/callback", web::get().to(page::callback))
    })
    .listen(listener)?
    .workers(1)
    .disable_signals()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok(RunningSetup { port, token, page_url, done: finished, server: handle })
}

pub async fn setup(args: SetupArgs, raw: &RawSettings) -> anyhow::Result<()> {
    let public_url = match &args.public_url {
        Some(url) => Some(Url::parse(url).map_err(|e| anyhow::anyhow!("--public-url: {e}"))?),
        None => None,
    };
    let running = start_setup(SetupOptions {
        dir: std::env::current_dir()?,
        api: api_url(raw)?,
        listen: args.listen,
        public_url,
        org: args.org,
    })
    .await?;
    println!("Listening on {} (only for this setup).", args.listen);
    println!("Open this address in a browser signed in to GitHub; it creates the App from app-manifest.json:");
    println!("  {}", running.page_url);
    println!("It holds a one-time token: without it the page answers 403. Keep it to yourself.");
    let app = running.finished().await?;
    println!("Created GitHub App {} (id {}); credentials written to .env (mode 0600).", app.slug, app.id);
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

    #[test]
    fn the_placeholder_homepage_is_replaced_and_a_chosen_one_kept() {
        let mut shipped = serde_json::json!({ "url": PLACEHOLDER_HOMEPAGE });
        fill_manifest(&mut shipped, "https://sync.acme.dev");
        assert_eq!(shipped["url"], "https://sync.acme.dev");
        assert_eq!(shipped["redirect_url"], "https://sync.acme.dev/setup/callback");
        assert_eq!(shipped["hook_attributes"]["url"], "https://sync.acme.dev/webhooks/github");
        let mut chosen =
            serde_json::json!({ "url": "https://acme.dev", "hook_attributes": { "url": "https://hooks.acme.dev" } });
        fill_manifest(&mut chosen, "https://sync.acme.dev");
        assert_eq!(chosen["url"], "https://acme.dev");
        assert_eq!(chosen["hook_attributes"]["url"], "https://hooks.acme.dev");
    }

    #[test]
    fn secrets_are_long_and_new_each_time() {
        let (a, b) = (random_secret(), random_secret());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
