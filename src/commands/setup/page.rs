//! The two routes `ghsync setup` serves while the flow runs. The page carries
//! the flow's `state`, and whoever holds the state can finish the flow with an
//! App of their own and have us write its credentials; so the page is shown
//! only to whoever has the token printed on the terminal, and the callback
//! takes only that state. Both are compared in constant time.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Mutex;
use subtle::ConstantTimeEq as _;
use tokio::sync::oneshot;
use url::Url;

use super::credentials;
use crate::github::{NewApp, convert_manifest};

pub struct Flow {
    /// The page, already built: the manifest and the state are in it.
    pub page: String,
    pub token: String,
    pub state: String,
    pub api: Url,
    pub dir: PathBuf,
    /// Taken by the first callback with the right state: the flow ends there.
    pub done: Mutex<Option<oneshot::Sender<anyhow::Result<NewApp>>>>,
}

pub fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn same_secret(given: Option<&str>, expected: &str) -> bool {
    given.is_some_and(|given| bool::from(given.as_bytes().ct_eq(expected.as_bytes())))
}

/// A small HTML answer that caches nowhere and leaks its address to nobody
/// (the address carries the token).
fn html(status: actix_web::http::StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("X-Frame-Options", "DENY"))
        .body(body)
}

fn refused(why: &str) -> HttpResponse {
    html(
        actix_web::http::StatusCode::FORBIDDEN,
        format!("<!doctype html><meta charset=\"utf-8\"><title>ghsync setup</title><p>403: {}</p>", escape_html(why)),
    )
}

#[derive(Deserialize)]
pub struct PageQuery {
    token: Option<String>,
}

pub async fn serve_page(flow: web::Data<Flow>, query: web::Query<PageQuery>) -> HttpResponse {
    if !same_secret(query.token.as_deref(), &flow.token) {
        return refused("open the address ghsync setup printed on its terminal; it carries the token (?token=…).");
    }
    html(actix_web::http::StatusCode::OK, flow.page.clone())
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
}

pub async fn callback(flow: web::Data<Flow>, query: web::Query<Callback>) -> HttpResponse {
    if !same_secret(query.state.as_deref(), &flow.state) {
        return refused("this callback does not belong to the setup that is running.");
    }
    let Some(code) = query.code.as_deref() else { return HttpResponse::BadRequest().body("no code") };
    let Some(done) = flow.done.lock().expect("setup state poisoned").take() else {
        return HttpResponse::Conflict().body("this setup has already finished");
    };
    let result = match convert_manifest(&flow.api, code).await {
        Ok(app) => credentials::save(&flow.dir, &app).map(|()| app),
        Err(e) => Err(anyhow::anyhow!("GitHub refused the manifest code: {e}")),
    };
    let response = match &result {
        Ok(app) => html(
            actix_web::http::StatusCode::OK,
            format!(
                "<!doctype html><meta charset=\"utf-8\"><p>GitHub App <b>{}</b> (id {}) created; its credentials are in .env.</p>\
                 <p>Install it: <a href=\"{url}/installations/new\">{url}/installations/new</a>, then run <code>ghsync serve</code>.</p>",
                escape_html(&app.slug),
                app.id,
                url = escape_html(&app.html_url)
            ),
        ),
        Err(e) => HttpResponse::BadGateway().body(e.to_string()),
    };
    let _ = done.send(result);
    response
}
