//! What the fuzz targets share: the event names ghsync reads, JSON built
//! from fuzzer bytes (shaped like a webhook, so the parser's branches are
//! reached quickly), and GitHub's side of the signature.

use arbitrary::{Arbitrary, Result, Unstructured};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

/// The events ghsync acts on first, then others it sees (every folder of the
/// payload corpus): those are "activity" or ignored.
pub const EVENTS: &[&str] = &[
    "installation",
    "installation_target",
    "github_app_authorization",
    "check_suite",
    "commit_comment",
    "create",
    "delete",
    "fork",
    "installation_repositories",
    "issue_comment",
    "issues",
    "label",
    "marketplace_purchase",
    "member",
    "membership",
    "meta",
    "org_block",
    "organization",
    "ping",
    "public",
    "pull_request",
    "pull_request_review",
    "push",
    "release",
    "repository",
    "sponsorship",
    "star",
    "team",
    "watch",
];

/// Keys and string values the parser branches on.
const KEYS: &[&str] = &["action", "installation", "sender", "account", "id", "login", "type", "node_id", "changes"];
const WORDS: &[&str] = &[
    "created",
    "deleted",
    "suspend",
    "unsuspend",
    "new_permissions_accepted",
    "renamed",
    "revoked",
    "User",
    "Organization",
    "Bot",
    "octocat",
    "dependabot[bot]",
    "U_kgDOA",
];
/// serde_json refuses nesting past 128; a little past that is still worth trying.
const MAX_DEPTH: usize = 140;

/// `X-Hub-Signature-256` as GitHub computes it.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A JSON value drawn from fuzzer bytes, webhook-shaped more often than not.
pub fn json(u: &mut Unstructured<'_>) -> Result<Value> {
    value(u, 0)
}

fn value(u: &mut Unstructured<'_>, depth: usize) -> Result<Value> {
    let kinds = if depth >= MAX_DEPTH { 5 } else { 7 };
    Ok(match u.int_in_range(0..=kinds - 1)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::from(u.arbitrary::<i64>()?),
        3 => serde_json::Number::from_f64(u.arbitrary()?).map_or(Value::Null, Value::Number),
        4 => Value::String(text(u, WORDS)?),
        5 => Value::Array(many(u, |u| value(u, depth + 1))?),
        _ => Value::Object(many(u, |u| Ok((text(u, KEYS)?, value(u, depth + 1)?)))?.into_iter().collect::<Map<_, _>>()),
    })
}

/// One of `known`, or any string.
fn text(u: &mut Unstructured<'_>, known: &[&str]) -> Result<String> {
    if u.ratio(3, 4)? { Ok((*u.choose(known)?).to_owned()) } else { String::arbitrary(u) }
}

fn many<T>(u: &mut Unstructured<'_>, mut item: impl FnMut(&mut Unstructured<'_>) -> Result<T>) -> Result<Vec<T>> {
    let mut items = Vec::new();
    u.arbitrary_loop(None, Some(16), |u| {
        items.push(item(u)?);
        Ok(std::ops::ControlFlow::Continue(()))
    })?;
    Ok(items)
}
