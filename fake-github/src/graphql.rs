//! `POST /graphql`: the `nodes(ids: $ids)` batch lookup with GitHub's cost
//! rule, the optional `rateLimit { ... }` selection, and GitHub's in-band
//! (HTTP 200) errors: ARGUMENT_LIMIT, RATE_LIMITED, FORBIDDEN, NOT_FOUND.

use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use chrono::Utc;
use serde_json::{Value, json};

use crate::auth::{TokenCtx, token_gate};
use crate::faults::{BucketView, Charge, Resource};
use crate::respond::{json_resp, message, rate_headers};
use crate::user::{graphql_user, ts};

use crate::state::{SharedRef, State};

type Shared = web::Data<SharedRef>;

/// GitHub's undocumented-but-observed cap on `nodes(ids:)`.
const MAX_IDS: usize = 100;

/// What the fake understood of a GraphQL request.
struct Parsed {
    ids: Vec<String>,
    wants_nodes: bool,
    wants_rate_limit: bool,
    connections: usize,
}

fn parse(body: &[u8]) -> Result<Parsed, &'static str> {
    let v: Value = serde_json::from_slice(body).map_err(|_| "Problems parsing JSON")?;
    let query = v["query"].as_str().ok_or("A query attribute must be specified and must be a string.")?;
    let wants_nodes = query.contains("nodes");
    let ids = match &v["variables"]["ids"] {
        Value::Array(a) => a.iter().map(|x| x.as_str().unwrap_or_default().to_string()).collect(),
        _ if wants_nodes => return Err("Variable $ids of type [ID!]! was provided invalid value"),
        _ => Vec::new(),
    };
    Ok(Parsed {
        ids,
        wants_nodes,
        wants_rate_limit: query.contains("rateLimit"),
        // Each `totalCount` is one connection evaluated per node.
        connections: query.matches("totalCount").count(),
    })
}

/// GitHub's rule: connections × nodes / 100, rounded, minimum 1.
fn cost(p: &Parsed) -> u32 {
    if !p.wants_nodes {
        return 1;
    }
    let raw = (p.ids.len() * p.connections) as f64 / 100.0;
    (raw.round() as u32).max(1)
}

fn with_rate(body: &Value, view: &BucketView) -> HttpResponse {
    let mut resp = json_resp(200, body);
    rate_headers(&mut resp, view);
    resp
}

pub async fn handle(shared: Shared, req: HttpRequest, body: Bytes) -> HttpResponse {
    // A server without GraphQL (an old GHES, a proxy) answers as for any unknown path;
    // one that refuses it, or fails, answers with that status before looking at the token.
    let (absent, status) = {
        let st = shared.lock();
        (st.faults.graphql_absent, st.faults.graphql_status)
    };
    if absent {
        return message(404, "Not Found", "https://docs.github.com/rest");
    }
    if let Some(status) = status {
        shared.lock().count_request("graphql_refused");
        return message(status, "GraphQL is not available", "https://docs.github.com/graphql");
    }
    let ctx = match token_gate(&shared, &req, "graphql", Resource::Graphql).await {
        Ok(ctx) => ctx,
        Err(resp) => return resp,
    };
    let parsed = match parse(&body) {
        Ok(p) => p,
        Err(msg) if msg.starts_with("Problems") => {
            return message(400, msg, "https://docs.github.com/graphql");
        }
        Err(msg) => {
            let view = ctx.shared.lock().peek(ctx.installation_id, Resource::Graphql, Utc::now());
            return with_rate(&json!({ "errors": [{ "message": msg }] }), &view);
        }
    };
    if parsed.ids.len() > MAX_IDS {
        // Rejected at validation: nothing is charged.
        let view = ctx.shared.lock().peek(ctx.installation_id, Resource::Graphql, Utc::now());
        let msg = format!("You may not provide more than {MAX_IDS} node ids; you provided {}.", parsed.ids.len());
        return with_rate(&json!({ "errors": [{ "type": "ARGUMENT_LIMIT", "message": msg }] }), &view);
    }
    execute(&ctx, &parsed)
}

/// Charge, then resolve. Runs under the state lock (no awaits).
fn execute(ctx: &TokenCtx, p: &Parsed) -> HttpResponse {
    let inst = ctx.installation_id;
    let cost = cost(p);
    let mut st = ctx.shared.lock();
    let view = match st.charge(inst, Resource::Graphql, cost, Utc::now()) {
        Charge::Ok(view) => view,
        Charge::Limited(view) => {
            let msg = format!("API rate limit exceeded for installation ID {inst}.");
            return with_rate(&json!({ "errors": [{ "type": "RATE_LIMITED", "message": msg }] }), &view);
        }
    };
    if st.faults.graphql_forbidden {
        let body = json!({
            "data": null,
            "errors": [{ "type": "FORBIDDEN", "message": "Resource not accessible by integration" }],
        });
        return with_rate(&body, &view);
    }
    let mut data = serde_json::Map::new();
    let mut errors = Vec::new();
    if p.wants_nodes {
        st.stats.graphql_nodes_requested += p.ids.len() as u64;
        let nodes = resolve_nodes(&st, &p.ids, &mut errors);
        data.insert("nodes".into(), Value::Array(nodes));
    }
    if p.wants_rate_limit {
        let reset = chrono::DateTime::from_timestamp(view.reset, 0).unwrap_or_else(Utc::now);
        let rl = json!({
            "cost": cost, "remaining": view.remaining, "resetAt": ts(reset),
            "limit": view.limit, "used": view.used, "nodeCount": p.ids.len(),
        });
        data.insert("rateLimit".into(), rl);
    }
    let mut body = json!({ "data": data });
    if !errors.is_empty() {
        body["errors"] = Value::Array(errors);
    }
    with_rate(&body, &view)
}

/// Look up each id; unknown ids become `null` plus a NOT_FOUND error at
/// `["nodes", i]`, as GitHub reports them.
fn resolve_nodes(st: &State, ids: &[String], errors: &mut Vec<Value>) -> Vec<Value> {
    let mut nodes = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        match st.user_by_node_id(id) {
            Some(user) => nodes.push(graphql_user(user)),
            None => {
                errors.push(json!({
                    "type": "NOT_FOUND",
                    "path": ["nodes", i],
                    "locations": [{ "line": 2, "column": 3 }],
                    "message": format!("Could not resolve to a node with the global id of '{id}'"),
                }));
                nodes.push(Value::Null);
            }
        }
    }
    nodes
}
