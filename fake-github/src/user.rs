//! The fake's user model (`FakeUser`) and the three JSON shapes GitHub uses
//! for a user: the full REST `public-user`, the webhook/installation
//! `simple-user`, and the GraphQL `User` node.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde_json::{Value, json};

/// One GitHub account as the fake knows it. Tests edit these fields freely;
/// every answer is derived from them at request time.
#[derive(Clone, Debug)]
pub struct FakeUser {
    pub id: i64,
    pub login: String,
    pub node_id: String,
    pub name: Option<String>,
    pub avatar_url: String,
    pub bio: Option<String>,
    pub company: Option<String>,
    pub blog: Option<String>,
    pub location: Option<String>,
    pub email: Option<String>,
    pub twitter_username: Option<String>,
    pub public_repos: i64,
    pub public_gists: i64,
    pub followers: i64,
    pub following: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl FakeUser {
    /// A deterministic, plausible user: the same id always yields the same
    /// profile, so tests and benchmarks can compare against expectations.
    pub fn sample(id: i64) -> FakeUser {
        let n = id.unsigned_abs();
        // Spread creation dates over 2008..2023 without randomness.
        let created = Utc.timestamp_opt(1_200_000_000 + (n % 470_000_000) as i64, 0);
        let created_at = created.single().unwrap_or_else(Utc::now);
        let login = format!("user{id}");
        FakeUser {
            id,
            node_id: user_node_id(id),
            name: Some(format!("User {id}")),
            avatar_url: format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
            bio: (!n.is_multiple_of(3)).then(|| format!("Bio of user {id}")),
            company: (n % 4 == 1).then(|| "@github".to_string()),
            blog: n.is_multiple_of(2).then(|| format!("https://{login}.example.com")),
            location: (!n.is_multiple_of(5)).then(|| "Berlin".to_string()),
            email: n.is_multiple_of(6).then(|| format!("{login}@example.com")),
            twitter_username: n.is_multiple_of(7).then(|| login.clone()),
            public_repos: (n % 50) as i64,
            public_gists: (n % 9) as i64,
            followers: (n % 1000) as i64,
            following: (n % 77) as i64,
            created_at,
            updated_at: created_at + chrono::Duration::days(30),
            login,
        }
    }
}

/// GitHub's "next" global id for a user: `U_` + base64url(msgpack `[0, id]`).
/// msgpack of `[0, u32]` starts 0x92 0x00 0xCE, which is why real ids begin
/// `U_kgDO`; ids above u32 use 0xCF (u64) and begin `U_kgDP`.
pub fn user_node_id(id: i64) -> String {
    let mut bytes = vec![0x92, 0x00];
    match u32::try_from(id) {
        Ok(small) => {
            bytes.push(0xCE);
            bytes.extend_from_slice(&small.to_be_bytes());
        }
        Err(_) => {
            bytes.push(0xCF);
            bytes.extend_from_slice(&(id as u64).to_be_bytes());
        }
    }
    format!("U_{}", base64(&bytes, true))
}

/// Minimal base64 (standard or url-safe alphabet). Url-safe output is
/// unpadded, matching GitHub's next-format node ids; standard is padded,
/// matching the legacy `MDQ6...=` ids.
pub fn base64(input: &[u8], url_safe: bool) -> String {
    let alphabet: &[u8; 64] = if url_safe {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
        if !url_safe {
            out.push_str(&"=".repeat(3 - chunk.len()));
        }
    }
    out
}

/// RFC 3339 with a `Z` suffix and whole seconds, as GitHub prints times.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The `simple-user` object (webhook `sender`, installation `account`).
pub fn simple_user(user: &FakeUser) -> Value {
    let api = format!("https://api.github.com/users/{}", user.login);
    json!({
        "login": user.login,
        "id": user.id,
        "node_id": user.node_id,
        "avatar_url": user.avatar_url,
        "gravatar_id": "",
        "url": api,
        "html_url": format!("https://github.com/{}", user.login),
        "followers_url": format!("{api}/followers"),
        "following_url": format!("{api}/following{{/other_user}}"),
        "gists_url": format!("{api}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/subscriptions"),
        "organizations_url": format!("{api}/orgs"),
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events{{/privacy}}"),
        "received_events_url": format!("{api}/received_events"),
        "type": "User",
        "site_admin": false,
    })
}

/// The full REST `public-user` object, with exactly the corpus example's keys.
pub fn rest_user(user: &FakeUser) -> Value {
    let mut v = simple_user(user);
    let extra = json!({
        "name": user.name,
        "company": user.company,
        "blog": user.blog,
        "location": user.location,
        "email": user.email,
        "hireable": null,
        "bio": user.bio,
        "twitter_username": user.twitter_username,
        "public_repos": user.public_repos,
        "public_gists": user.public_gists,
        "followers": user.followers,
        "following": user.following,
        "created_at": ts(user.created_at),
        "updated_at": ts(user.updated_at),
    });
    if let (Some(map), Value::Object(more)) = (v.as_object_mut(), extra) {
        map.extend(more);
    }
    v
}

/// The GraphQL `User` node. GitHub returns `bio` and `email` as "" (non-null
/// schema types) when unset, but `websiteUrl` etc. as null.
pub fn graphql_user(user: &FakeUser) -> Value {
    json!({
        "__typename": "User",
        "id": user.node_id,
        "databaseId": user.id,
        "login": user.login,
        "name": user.name,
        "avatarUrl": user.avatar_url,
        "bio": user.bio.clone().unwrap_or_default(),
        "company": user.company,
        "websiteUrl": user.blog.clone().filter(|b| !b.is_empty()),
        "location": user.location,
        "email": user.email.clone().unwrap_or_default(),
        "twitterUsername": user.twitter_username,
        "followers": { "totalCount": user.followers },
        "following": { "totalCount": user.following },
        "repositories": { "totalCount": user.public_repos },
    })
}
