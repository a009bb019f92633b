//! The demo's story, told against the fake GitHub and the running ghsync:
//! the users install the App; some edit their bios (GitHub sends no event
//! for that), one is renamed, one uninstalls, one revokes, one opts out; a
//! burst of webhooks arrives; a pass runs. Each act prints one line: what
//! happened, and how ghsync answered, read back from its store and from what
//! the fake saw (fetches, points).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::future::join_all;

use super::FIRST_ID;
use crate::domain::{GitHubUserId, UserRecord, UserStatus};
use crate::http::AppState;
use crate::sync::{Health, PassScope};
use fake_github::{FakeGitHub, FakeStats, payloads};

/// user1001 is left alone (the curl example); 1003..1006 have their parts; 1007..1011 talk; 1012 on edit.
pub const MIN_USERS: usize = 12;
const RENAMED: i64 = FIRST_ID + 3;
const UNINSTALLS: i64 = FIRST_ID + 4;
const REVOKES: i64 = FIRST_ID + 5;
const OPTS_OUT: i64 = FIRST_ID + 6;
const CHATTY: std::ops::RangeInclusive<i64> = FIRST_ID + 7..=FIRST_ID + 11;
const EVENTS_EACH: usize = 10;
/// How long any act may take before the demo says it is stuck.
const PATIENCE: Duration = Duration::from_secs(90);

/// Every tenth user from user1012 on edits their bio.
fn editors(users: usize) -> Vec<i64> {
    (FIRST_ID + 12..=FIRST_ID + users as i64).step_by(10).collect()
}

pub async fn tell(fake: &FakeGitHub, state: &AppState, users: usize) -> anyhow::Result<()> {
    let ids: Vec<i64> = (FIRST_ID + 1..=FIRST_ID + users as i64).collect();
    until("the start-up pass", || async { no_pass_running(state).await }).await?;

    // 1. Installs.
    let (before, clock) = (fake.stats(), Instant::now());
    let mut answers = Vec::new();
    for &id in &ids {
        fake.add_installation(id, id);
        let user = fake.user(id).context("the fake has every user")?;
        let event = payloads::installation_event("created", &fake.installation_payload(id), &user);
        answers.push(fake.deliver("installation", &event).await?.0);
    }
    until("every profile fetched", || async {
        every(state, &ids, |u| u.status == UserStatus::Active && u.last_synced_at.is_some()).await
    })
    .await?;
    println!(
        "1. {users} users installed the App: {} webhooks answered {}; ghsync fetched every profile ({}) in {:.1} s.",
        answers.len(),
        statuses(&answers),
        spent(&before, &fake.stats()),
        clock.elapsed().as_secs_f64()
    );

    // 2. Life goes on.
    let editors = editors(users);
    for &id in &editors {
        fake.edit_user(id, |u| u.bio = Some(format!("Edited bio of user {id}")));
    }
    let old_login = fake.user(RENAMED).context("renamed")?.login;
    let new_login = format!("{old_login}-renamed");
    fake.edit_user(RENAMED, |u| u.login = new_login.clone());
    let renamed = payloads::installation_target_renamed(RENAMED, &fake.user(RENAMED).context("renamed")?, &old_login);
    let uninstalled = payloads::installation_event(
        "deleted",
        &fake.installation_payload(UNINSTALLS),
        &fake.user(UNINSTALLS).context("uninstalls")?,
    );
    fake.remove_installation(UNINSTALLS);
    let revoked = payloads::github_app_authorization_revoked(&fake.user(REVOKES).context("revokes")?);
    let answers = vec![
        fake.deliver("installation_target", &renamed).await?.0,
        fake.deliver("installation", &uninstalled).await?.0,
        fake.deliver("github_app_authorization", &revoked).await?.0,
    ];
    state.users.set_sync_enabled(id(OPTS_OUT)?, false).await?;
    until("the three webhooks applied", || async {
        let renamed = user(state, RENAMED).await?.and_then(|u| u.login).is_some_and(|l| l.as_str() == new_login);
        let statuses = [(UNINSTALLS, UserStatus::Uninstalled), (REVOKES, UserStatus::Revoked)];
        let mut applied = renamed;
        for (who, status) in statuses {
            applied &= user(state, who).await?.is_some_and(|u| u.status == status);
        }
        Ok(applied)
    })
    .await?;
    println!(
        "2. Then {} users edited their bios (GitHub sends no webhook for that); user{RENAMED} was renamed {new_login}; \
         user{UNINSTALLS} uninstalled the App; user{REVOKES} revoked its authorization; user{OPTS_OUT} opted out through the API. \
         The 3 webhooks were answered {} and applied.",
        editors.len(),
        statuses(&answers)
    );

    // 3. A burst.
    let (before, clock, burst_at) = (fake.stats(), Instant::now(), chrono::Utc::now());
    let events: Vec<_> = CHATTY
        .flat_map(|id| (0..EVENTS_EACH).map(move |_| id))
        .filter_map(|id| fake.user(id).map(|u| payloads::simple_event_with_sender(&u)))
        .collect();
    let answers: Vec<u16> = join_all(events.iter().map(|e| fake.deliver("star", e)))
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    let answered_in = clock.elapsed();
    let chatty: Vec<i64> = CHATTY.collect();
    until("the burst's senders refreshed", || async {
        every(state, &chatty, |u| u.last_synced_at.is_some_and(|t| t > burst_at)).await
    })
    .await?;
    println!(
        "3. A burst of {} webhooks from {} users, answered {} in {:.2} s, made {} (debounced).",
        answers.len(),
        chatty.len(),
        statuses(&answers),
        answered_in.as_secs_f64(),
        spent(&before, &fake.stats())
    );

    // 4. A pass over everyone: it finds the bios no webhook told of.
    let passes = state.passes.as_ref().context("the demo configures GitHub")?;
    let report = passes.run_pass_of("demo", PassScope::Everyone, &state.shutdown).await?;
    let c = &report.counts;
    println!(
        "4. pass {} (every active user): {} checked, {} changed, {} unchanged, {} failed; points: core {}, graphql {}. \
         The changed: the {} edited bios no webhook told of, and {new_login}, whose profile GitHub stamped at the rename.",
        report.run_id,
        c.users_due,
        c.changed,
        c.unchanged,
        c.failed,
        c.points_core,
        c.points_graphql,
        editors.len()
    );

    // 5. Where everyone stands.
    let counts = match state.status.health().await? {
        Health::Up(h) => h.users,
        Health::DatabaseDown(e) => anyhow::bail!("the database does not answer: {e}"),
    };
    let shown: Vec<String> = counts.iter().filter(|(_, n)| **n > 0).map(|(s, n)| format!("{s} {n}")).collect();
    println!("5. users by status: {}.", shown.join(", "));
    Ok(())
}

fn id(raw: i64) -> anyhow::Result<GitHubUserId> {
    Ok(GitHubUserId::new(raw)?)
}

async fn user(state: &AppState, raw: i64) -> anyhow::Result<Option<UserRecord>> {
    Ok(state.store.user_by_id(id(raw)?).await?)
}

async fn every(state: &AppState, ids: &[i64], check: impl Fn(&UserRecord) -> bool) -> anyhow::Result<bool> {
    for &raw in ids {
        if !user(state, raw).await?.is_some_and(|u| check(&u)) {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn no_pass_running(state: &AppState) -> anyhow::Result<bool> {
    let ran = !state.store.runs(1).await?.is_empty();
    Ok(ran && matches!(state.status.health().await?, Health::Up(h) if h.running_run_id.is_none()))
}

/// "202" when every answer was, else each status with its count ("202 ×48, 503 ×2").
fn statuses(answers: &[u16]) -> String {
    let mut by = BTreeMap::new();
    for s in answers {
        *by.entry(s).or_insert(0) += 1;
    }
    match by.len() {
        1 => by.keys().map(|s| s.to_string()).collect(),
        _ => by.iter().map(|(s, n)| format!("{s} ×{n}")).collect::<Vec<_>>().join(", "),
    }
}

/// What the fake saw between two looks: fetches and points.
fn spent(before: &FakeStats, after: &FakeStats) -> String {
    format!(
        "{} REST user fetches, {} users read over GraphQL; points: core {}, graphql {}",
        after.rest_user_fetches - before.rest_user_fetches,
        after.graphql_nodes_requested - before.graphql_nodes_requested,
        after.points_core - before.points_core,
        after.points_graphql - before.points_graphql
    )
}

/// Polls `done` until it says yes, or gives up after `PATIENCE`.
async fn until<F, Fut>(what: &str, mut done: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + PATIENCE;
    while !done().await? {
        anyhow::ensure!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
