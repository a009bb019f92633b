//! Webhook payload builders shaped like the octokit/webhooks corpus
//! (`installation.*`, `installation_target.renamed`,
//! `github_app_authorization.revoked`, `star.created`), and the
//! `installation` object shared by webhooks and `GET /app/installations`.

use chrono::Utc;
use serde_json::{Value, json};

pub use crate::user::simple_user;
use crate::user::{FakeUser, base64, ts};

/// The App's slug as it appears in `installation.app_slug`.
pub const APP_SLUG: &str = "ghsync";

/// Legacy-format node id of an installation ("023:IntegrationInstallation<id>").
pub fn installation_node_id(installation_id: i64) -> String {
    base64(format!("023:IntegrationInstallation{installation_id}").as_bytes(), false)
}

/// Inputs for one `installation` object (see `FakeGitHub::installation_payload`).
pub struct InstallationView<'a> {
    pub id: i64,
    pub account: &'a FakeUser,
    pub app_id: u64,
    pub api_base: &'a str,
    pub created_at: chrono::DateTime<Utc>,
    pub updated_at: chrono::DateTime<Utc>,
    pub suspended_at: Option<chrono::DateTime<Utc>>,
}

/// The `installation` object, as in the corpus's list/webhook examples.
pub fn installation_json(v: &InstallationView<'_>) -> Value {
    let suspended = v.suspended_at.is_some();
    json!({
        "id": v.id,
        "account": simple_user(v.account),
        "repository_selection": "all",
        "access_tokens_url": format!("{}/app/installations/{}/access_tokens", v.api_base, v.id),
        "repositories_url": format!("{}/installation/repositories", v.api_base),
        "html_url": format!("https://github.com/settings/installations/{}", v.id),
        "app_id": v.app_id,
        "app_slug": APP_SLUG,
        "target_id": v.account.id,
        "target_type": "User",
        "permissions": { "metadata": "read" },
        "events": [],
        "created_at": ts(v.created_at),
        "updated_at": ts(v.updated_at),
        "single_file_name": null,
        "has_multiple_single_files": false,
        "single_file_paths": [],
        "suspended_by": if suspended { simple_user(v.account) } else { Value::Null },
        "suspended_at": v.suspended_at.map(ts),
    })
}

/// `installation` event. `created`, `deleted` and `new_permissions_accepted`
/// carry a `repositories` list (empty here: the App needs no repositories);
/// `suspend`/`unsuspend` do not, as in the corpus.
pub fn installation_event(action: &str, installation: &Value, sender: &FakeUser) -> Value {
    let mut v = json!({
        "action": action,
        "installation": installation,
        "sender": simple_user(sender),
    });
    if matches!(action, "created" | "deleted" | "new_permissions_accepted") {
        v["repositories"] = json!([]);
    }
    v
}

/// `installation_target.renamed`: `account` is the account after the rename
/// (new login); `changes.login.from` is the old login.
pub fn installation_target_renamed(installation_id: i64, account: &FakeUser, old_login: &str) -> Value {
    let mut acct = simple_user(account);
    if let Some(map) = acct.as_object_mut() {
        // Extra keys the schema allows on `account` (additionalProperties: false).
        if let Some(name) = &account.name {
            map.insert("name".into(), json!(name));
        }
        map.insert("followers".into(), json!(account.followers));
        map.insert("following".into(), json!(account.following));
        map.insert("public_repos".into(), json!(account.public_repos));
        map.insert("public_gists".into(), json!(account.public_gists));
        map.insert("created_at".into(), json!(ts(account.created_at)));
        map.insert("updated_at".into(), json!(ts(account.updated_at)));
    }
    json!({
        "action": "renamed",
        "account": acct,
        "changes": { "login": { "from": old_login } },
        "installation": { "id": installation_id, "node_id": installation_node_id(installation_id) },
        "sender": simple_user(account),
        "target_type": "User",
    })
}

/// `github_app_authorization.revoked`: only `action` and `sender`.
pub fn github_app_authorization_revoked(sender: &FakeUser) -> Value {
    json!({ "action": "revoked", "sender": simple_user(sender) })
}

/// A `star.created` payload whose sender is `sender`: an event ghsync should
/// accept but that says nothing about the profile itself.
pub fn simple_event_with_sender(sender: &FakeUser) -> Value {
    let owner = FakeUser::sample(583231);
    let full = format!("{}/Hello-World", owner.login);
    json!({
        "action": "created",
        "starred_at": ts(Utc::now()),
        "repository": {
            "id": 186853002,
            "node_id": "MDEwOlJlcG9zaXRvcnkxODY4NTMwMDI=",
            "name": "Hello-World",
            "full_name": full,
            "private": false,
            "owner": simple_user(&owner),
            "html_url": format!("https://github.com/{full}"),
            "description": null,
            "fork": false,
            "url": format!("https://api.github.com/repos/{full}"),
            "stargazers_count": 1,
            "watchers_count": 1,
            "default_branch": "main",
        },
        "sender": simple_user(sender),
    })
}
