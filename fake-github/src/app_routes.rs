//! App-JWT routes: `GET /app`, `GET /app/installations` (page-number
//! pagination with GitHub's absolute `link` header), `GET /app/installations/{id}`
//! and
//! `POST /app/installations/{id}/access_tokens`.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use rand::Rng;
use serde_json::{Value, json};

use crate::auth::app_gate;
use crate::payloads::{APP_SLUG, InstallationView, installation_json};
use crate::respond::{json_resp, message, set_header};
use crate::state::{Installation, SharedRef, State, TokenRec};
use crate::user::{FakeUser, base64, simple_user, ts};

type Shared = web::Data<SharedRef>;
type Query = web::Query<HashMap<String, String>>;

/// The `installation` object for one installation, from current state.
pub fn installation_value(shared: &SharedRef, st: &State, inst: &Installation) -> Value {
    let account = st.account_of(inst);
    installation_json(&InstallationView {
        id: inst.id,
        account: &account,
        app_id: shared.app_id,
        api_base: &shared.base_url,
        created_at: inst.created_at,
        updated_at: inst.updated_at,
        suspended_at: inst.suspended_at,
    })
}

/// `GET /app`: the `integration` object of the authenticated App.
pub async fn get_app(shared: Shared, req: HttpRequest) -> HttpResponse {
    if let Err(resp) = app_gate(&shared, &req, "app").await {
        return resp;
    }
    let owner = FakeUser::sample(1);
    let created = ts(owner.created_at);
    let count = shared.lock().installations.len();
    let body = json!({
        "id": shared.app_id,
        "slug": APP_SLUG,
        "client_id": format!("Iv1.{:016x}", shared.app_id),
        "node_id": base64(format!("011:Integration{}", shared.app_id).as_bytes(), false),
        "owner": simple_user(&owner),
        "name": APP_SLUG,
        "description": "Fake GitHub App served by ghsync's test server",
        "external_url": "https://example.com",
        "html_url": format!("https://github.com/apps/{APP_SLUG}"),
        "created_at": created,
        "updated_at": created,
        "permissions": { "metadata": "read" },
        "events": [],
        "installations_count": count,
    });
    json_resp(200, &body)
}

/// Clamp GitHub's `per_page` (default 30, max 100) and `page` (from 1).
pub fn paging(q: &HashMap<String, String>) -> (usize, usize) {
    let per_page = q.get("per_page").and_then(|v| v.parse().ok()).unwrap_or(30);
    let page = q.get("page").and_then(|v| v.parse().ok()).unwrap_or(1);
    (usize::clamp(per_page, 1, 100), usize::max(page, 1))
}

/// GitHub's page-number `link` header (prev, next, last, first), with
/// absolute URLs; `None` when everything fits on one page.
pub fn page_links(url: &str, per_page: usize, page: usize, total: usize) -> Option<String> {
    let last = total.div_ceil(per_page).max(1);
    if last == 1 && page == 1 {
        return None;
    }
    let link = |p: usize, rel: &str| format!("<{url}?per_page={per_page}&page={p}>; rel=\"{rel}\"");
    let mut parts = Vec::new();
    if page > 1 {
        parts.push(link((page - 1).min(last), "prev"));
    }
    if page < last {
        parts.push(link(page + 1, "next"));
        parts.push(link(last, "last"));
    }
    if page > 1 {
        parts.push(link(1, "first"));
    }
    Some(parts.join(", "))
}

/// `GET /app/installations?per_page&page`, ordered by id.
pub async fn list_installations(shared: Shared, req: HttpRequest, q: Query) -> HttpResponse {
    if let Err(resp) = app_gate(&shared, &req, "list_installations").await {
        return resp;
    }
    drop(shared.listing_gate.read().await);
    let (per_page, page) = paging(&q);
    let (items, total) = {
        let st = shared.lock();
        let omitted = |i: &&Installation| st.faults.listing_omits.contains(&i.id);
        let listed = st.installations.values().filter(|i| !omitted(i)).count();
        let items: Vec<Value> = st
            .installations
            .values()
            .filter(|i| !omitted(i))
            .skip((page - 1) * per_page)
            .take(per_page)
            .map(|i| installation_value(&shared, &st, i))
            .collect();
        (items, listed)
    };
    let mut resp = json_resp(200, &Value::Array(items));
    let url = format!("{}/app/installations", shared.base_url);
    if let Some(link) = page_links(&url, per_page, page, total) {
        set_header(&mut resp, "link", &link);
    }
    resp
}

/// `GET /app/installations/{id}`: one installation, 404 once it is gone.
pub async fn get_installation(shared: Shared, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    if let Err(resp) = app_gate(&shared, &req, "get_installation").await {
        return resp;
    }
    let st = shared.lock();
    match path.parse::<i64>().ok().and_then(|id| st.installations.get(&id)) {
        Some(inst) => json_resp(200, &installation_value(&shared, &st, inst)),
        None => message(
            404,
            "Not Found",
            "https://docs.github.com/rest/apps/apps#get-an-installation-for-the-authenticated-app",
        ),
    }
}

/// `ghs_` + 36 alphanumerics, the classic 40-character shape.
fn new_token() -> String {
    let tail: String = rand::rng().sample_iter(rand::distr::Alphanumeric).take(36).map(char::from).collect();
    format!("ghs_{tail}")
}

/// `POST /app/installations/{id}/access_tokens`.
pub async fn mint_token(shared: Shared, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    if let Err(resp) = app_gate(&shared, &req, "mint_token").await {
        return resp;
    }
    let id: Option<i64> = path.parse().ok();
    let mut st = shared.lock();
    let Some(inst) = id.and_then(|id| st.installations.get(&id)) else {
        return message(
            404,
            "Not Found",
            "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app",
        );
    };
    if inst.suspended_at.is_some() {
        return message(403, "This installation has been suspended", "https://docs.github.com/rest");
    }
    let installation_id = inst.id;
    let lifetime = chrono::Duration::from_std(st.faults.token_lifetime).unwrap_or_else(|_| chrono::Duration::hours(1));
    let expires_at = Utc::now() + lifetime;
    let token = new_token();
    st.tokens.insert(
        token.clone(),
        TokenRec { installation_id, expires_at, in_flight: 0, paused_from: None, paused_until: None },
    );
    st.stats.tokens_minted += 1;
    let body = json!({
        "token": token,
        "expires_at": ts(expires_at + chrono::Duration::seconds(st.faults.clock_skew_secs)),
        "permissions": { "metadata": "read" },
        "repository_selection": "all",
    });
    json_resp(201, &body)
}
