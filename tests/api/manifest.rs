//! `app-manifest.json` against GitHub's documentation: only the fields the
//! manifest flow knows, a public App, events GitHub delivers with the
//! permissions the manifest asks for, and no permission no event needs.

use serde_json::Value;

/// "GitHub App Manifest parameters" and the `hook_attributes` keys, from
/// "Registering a GitHub App from a manifest":
/// https://docs.github.com/en/apps/sharing-github-apps/registering-a-github-app-from-a-manifest
const MANIFEST_FIELDS: [&str; 12] = [
    "name",
    "url",
    "hook_attributes",
    "redirect_url",
    "callback_urls",
    "setup_url",
    "description",
    "public",
    "default_events",
    "default_permissions",
    "request_oauth_on_install",
    "setup_on_update",
];
const HOOK_FIELDS: [&str; 2] = ["url", "active"];

/// Event → the permission a GitHub App needs to subscribe to it, from
/// "Webhook events and payloads" (https://docs.github.com/en/webhooks/webhook-events-and-payloads;
/// its data: github/docs `src/webhooks/data/fpt/<event>.json`), which says for each:
/// "To subscribe to this event, a GitHub App must have at least read-level access
/// for the "<Permission>" repository (or organization) permission". Every event
/// here is available to Apps ("availability" includes "app"). These are the
/// sender-activity events we weighed; `installation`, `installation_target` and
/// `github_app_authorization` need no subscription (GitHub always sends them).
const EVENT_PERMISSION: [(&str, &str); 9] = [
    ("public", "metadata"),
    ("repository", "metadata"),
    ("star", "metadata"),
    ("watch", "metadata"),
    ("label", "metadata"),
    ("fork", "contents"),
    ("push", "contents"),
    ("create", "contents"),
    ("member", "members"),
];

fn shipped() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/app-manifest.json")).unwrap();
    serde_json::from_str(&text).expect("app-manifest.json is JSON")
}

/// What is wrong with a manifest, as GitHub documents one (empty: nothing).
pub fn problems(manifest: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(fields) = manifest.as_object() else { return vec!["not a JSON object".into()] };
    for key in fields.keys().filter(|k| !MANIFEST_FIELDS.contains(&k.as_str())) {
        problems.push(format!("{key:?} is not a manifest field GitHub documents"));
    }
    match manifest["url"].as_str().map(url::Url::parse) {
        Some(Ok(url)) if matches!(url.scheme(), "http" | "https") => {}
        _ => problems.push("url (required) is not an http(s) URL".into()),
    }
    if let Some(hook) = manifest.get("hook_attributes") {
        let keys = hook.as_object().map(|h| h.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
        problems
            .extend(keys.iter().filter(|k| !HOOK_FIELDS.contains(&k.as_str())).map(|k| format!("hook_attributes.{k}")));
        if hook["url"].as_str().is_none() {
            problems.push("hook_attributes.url is required".into());
        }
    }
    let granted = manifest["default_permissions"].as_object().cloned().unwrap_or_default();
    let events: Vec<&str> =
        manifest["default_events"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    for event in &events {
        match EVENT_PERMISSION.iter().find(|(e, _)| e == event) {
            None => problems.push(format!("event {event:?}: not one whose permission we checked in GitHub's docs")),
            Some((_, needs)) if !matches!(granted.get(*needs).and_then(Value::as_str), Some("read" | "write")) => {
                problems.push(format!("event {event:?} needs {needs}: read, which the manifest does not ask for"))
            }
            Some(_) => {}
        }
    }
    for (permission, access) in &granted {
        let access = access.as_str().unwrap_or("(not a string)");
        if access != "read" {
            problems.push(format!("{permission}: {access}: ghsync only reads"));
        }
        if !events.iter().any(|e| EVENT_PERMISSION.iter().any(|(ev, p)| ev == e && p == permission)) {
            problems.push(format!("{permission}: no event in default_events needs it"));
        }
    }
    problems
}

#[test]
fn the_shipped_manifest_is_one_github_documents_for_a_public_app_that_only_reads() {
    let manifest = shipped();
    assert_eq!(problems(&manifest), Vec::<String>::new());
    assert_eq!(manifest["public"], true, "the platform's users install it on their own accounts");
    assert!(!manifest["default_events"].as_array().unwrap().is_empty(), "else sender activity never reaches us");
}

#[test]
fn the_check_catches_what_github_would_not_deliver_or_know() {
    let bad = serde_json::json!({
        "url": "https://ghsync.example.com",
        "permissions": {},
        "hook_attributes": { "url": "https://x/webhooks/github", "secret": "s" },
        "default_permissions": { "metadata": "read", "issues": "write" },
        "default_events": ["push", "star", "profile_edited"],
    });
    let found = problems(&bad).join("\n");
    for expected in [
        "\"permissions\" is not a manifest field",
        "hook_attributes.secret",
        "event \"push\" needs contents",
        "\"profile_edited\": not one whose permission",
        "issues: write",
        "issues: no event",
    ] {
        assert!(found.contains(expected), "{expected:?} not in:\n{found}");
    }
}
