//! App-JWT webhook-delivery routes: `GET /app/hook/deliveries` (newest
//! first, cursor paging), `GET /app/hook/deliveries/{id}` and
//! `POST /app/hook/deliveries/{id}/attempts` (redelivery, same GUID).

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use crate::app_routes::paging;
use crate::auth::app_gate;
use crate::deliver::{Attempt, send};
use crate::respond::{json_resp, message, set_header};
use crate::state::{DeliveryRecord, SharedRef};
use crate::user::ts;

type Shared = web::Data<SharedRef>;
type Query = web::Query<HashMap<String, String>>;

const DOC: &str = "https://docs.github.com/rest/apps/webhooks";

/// The `hook-delivery-item` shape from the corpus.
fn item(d: &DeliveryRecord) -> Value {
    json!({
        "id": d.id,
        "guid": d.guid,
        "delivered_at": ts(d.delivered_at),
        "redelivery": d.redelivery,
        "duration": d.duration,
        "status": d.status,
        "status_code": d.status_code,
        "event": d.event,
        "action": d.action,
        "installation_id": d.installation_id,
        "repository_id": d.repository_id,
        "throttled_at": null,
    })
}

/// GitHub's `status` filter: success = 200..=399, failure = everything else.
fn status_matches(d: &DeliveryRecord, filter: Option<&str>) -> bool {
    let ok = (200..400).contains(&d.status_code);
    match filter {
        Some("success") => ok,
        Some("failure") => !ok,
        _ => true,
    }
}

/// `GET /app/hook/deliveries?per_page&cursor&status`. The cursor is opaque
/// to clients: here `v1_<id>` = "start at the delivery with this id".
pub async fn list(shared: Shared, req: HttpRequest, q: Query) -> HttpResponse {
    if let Err(resp) = app_gate(&shared, &req, "hook_deliveries").await {
        return resp;
    }
    let (per_page, _) = paging(&q);
    let start: Option<u64> = q.get("cursor").and_then(|c| c.strip_prefix("v1_")).and_then(|c| c.parse().ok());
    let filter = q.get("status").map(String::as_str);
    let page: Vec<DeliveryRecord> = {
        let st = shared.lock();
        st.deliveries
            .iter()
            .rev()
            .filter(|d| start.is_none_or(|s| d.id <= s) && status_matches(d, filter))
            .take(per_page + 1)
            .cloned()
            .collect()
    };
    let items: Vec<Value> = page.iter().take(per_page).map(item).collect();
    let mut resp = json_resp(200, &Value::Array(items));
    if let Some(next) = page.get(per_page) {
        let mut url = format!("{}/app/hook/deliveries?per_page={per_page}", shared.base_url);
        if let Some(f) = filter {
            url.push_str(&format!("&status={f}"));
        }
        let link = format!("<{url}&cursor=v1_{}>; rel=\"next\"", next.id);
        set_header(&mut resp, "link", &link);
    }
    resp
}

fn find(shared: &SharedRef, id: &str) -> Option<DeliveryRecord> {
    let id: u64 = id.parse().ok()?;
    shared.lock().deliveries.iter().find(|d| d.id == id).cloned()
}

/// `GET /app/hook/deliveries/{delivery_id}`: the item plus request details.
pub async fn get_one(shared: Shared, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    if let Err(resp) = app_gate(&shared, &req, "hook_deliveries").await {
        return resp;
    }
    let Some(d) = find(&shared, &path) else {
        return message(404, "Not Found", DOC);
    };
    let mut v = item(&d);
    let payload: Value = serde_json::from_slice(&d.body).unwrap_or(Value::Null);
    v["url"] = json!(d.url);
    v["request"] = json!({
        "headers": { "X-GitHub-Event": d.event, "X-GitHub-Delivery": d.guid },
        "payload": payload,
    });
    v["response"] = json!({ "headers": {}, "payload": null });
    json_resp(200, &v)
}

/// `POST /app/hook/deliveries/{delivery_id}/attempts`. GitHub answers 202
/// and delivers asynchronously; this fake re-sends before answering so a
/// test sees the new attempt as soon as the call returns.
pub async fn redeliver(shared: Shared, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    if let Err(resp) = app_gate(&shared, &req, "redeliver").await {
        return resp;
    }
    let Some(d) = find(&shared, &path) else {
        return message(404, "Not Found", DOC);
    };
    let attempt = Attempt { event: d.event, body: d.body, guid: d.guid, redelivery: true };
    // A failed re-send is recorded as a failed delivery; the API call itself
    // still succeeds, as on GitHub.
    let _ = send(&shared, attempt).await;
    json_resp(202, &json!({}))
}
