//! The scaled backend: any number of ghsync replicas on one PostgreSQL.
//! Claims skip rows another replica holds (`FOR UPDATE SKIP LOCKED`), and the
//! leases they set expire, so a crashed replica's work is taken over.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgQueryResult, PgSslMode};
use sqlx::{Postgres, QueryBuilder};

use super::sql::packed::packed;
use super::sql::{Backend, SqlStore, ignored_sql};
use super::{GroupCommit, StoreResult};
use crate::domain::{NewDelivery, Settlement};

/// A transaction left idle this long is ended by the server (see `connect`).
const IDLE_IN_TRANSACTION: &str = "10s";

/// Connections this process opens at most (readers, writers and the webhook
/// path's `INBOX` together).
const POOL: u32 = 16;

/// Groups of webhook deliveries committing at once. Each statement and each
/// commit has a fixed cost on the server, so larger groups cost less CPU a
/// delivery; a second group in flight keeps the server busy between one
/// commit and the next, but halves the groups. While the worker claimed and
/// settled every delivery, two in flight did best (15-20 % less CPU a
/// delivery than four, ~8 % more deliveries a second than one). Since a
/// stranger's activity goes in settled, the request path's commits are most
/// of the server's work, and one at a time does best: 15,404-18,316/s against
/// 11,770-13,667/s with two (wrk, 3 interleaved rounds of 1, 2, 3 and 4).
const IN_FLIGHT: usize = 1;

/// The webhook path's own connections: one more than it uses at once, since
/// sqlx pings each connection that comes back before lending it again (with
/// one, each group waited for that round trip: 11,200/s against 12,362/s, 4
/// ABBA pairs).
const INBOX: u32 = IN_FLIGHT as u32 + 1;

/// Readers and writers share one pool: PostgreSQL takes concurrent writers.
pub type PgStore = SqlStore<Postgres>;

impl Backend for Postgres {
    const BEGIN_WRITE: &'static str = "BEGIN";
    const LOCK_CLAIMED: &'static str = " FOR UPDATE SKIP LOCKED";
    const LOCK_HELD: &'static str = " FOR UPDATE";
    const SCRIPTS: bool = false;
    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }
    fn group_commit(_: &PgStore) -> StoreResult<GroupCommit> {
        Ok(GroupCommit::Overlapping(IN_FLIGHT))
    }
    /// One statement, its own transaction: the group goes in as one array per
    /// column, so the statement's text is the same whatever the group's size
    /// (prepared once per connection, planned once), and its payloads follow
    /// only the rows that went in.
    fn group_insert(group: &[&NewDelivery]) -> QueryBuilder<Postgres> {
        let mut q = QueryBuilder::new("WITH v AS (SELECT *, ");
        q.push(ignored_sql("v.sender", "v.note"));
        q.push(" AS ignored FROM unnest(");
        let mut columns = q.separated(", ");
        columns.push_bind(group.iter().map(|d| d.id.as_str()).collect::<Vec<_>>());
        columns.push_bind(group.iter().map(|d| d.event.as_str()).collect::<Vec<_>>());
        columns.push_bind(group.iter().map(|d| d.action.as_deref()).collect::<Vec<_>>());
        columns.push_bind(group.iter().map(|d| d.received_at).collect::<Vec<_>>());
        columns.push_bind(group.iter().map(|d| packed(d).into_owned()).collect::<Vec<_>>());
        columns.push_bind(group.iter().map(|d| d.digest.as_deref()).collect::<Vec<_>>());
        let (senders, notes): (Vec<_>, Vec<_>) = group.iter().map(|d| d.ignore_columns()).unzip();
        columns.push_bind(senders);
        columns.push_bind(notes);
        // An ignored delivery goes in settled, without the digest only the worker reads.
        q.push(
            ") AS v (id, event, action, at, packed, digest, sender, note)), \
             fresh AS (INSERT INTO webhook_deliveries (delivery_id, event, action, state, attempts, received_at, \
             next_attempt_at, digest, last_error, completed_at) \
             SELECT id, event, action, CASE WHEN ignored THEN 'ignored' ELSE 'pending' END, 0, at, at, \
             CASE WHEN ignored THEN NULL ELSE digest END, CASE WHEN ignored THEN note END, \
             CASE WHEN ignored THEN at END FROM v \
             ON CONFLICT (delivery_id) DO NOTHING RETURNING delivery_id, state), \
             payloads AS (INSERT INTO webhook_payloads (delivery_id, payload, packed) \
             SELECT v.id, '', v.packed FROM v WHERE v.id IN (SELECT delivery_id FROM fresh)) \
             SELECT delivery_id, state FROM fresh",
        );
        q
    }
    /// One array per column, like `group_insert`: one statement text whatever
    /// the round's size. A list of `VALUES` made a statement per size, each
    /// parsed and planned anew (sqlx's cache holds 100 per connection).
    fn push_settlements(q: &mut QueryBuilder<Postgres>, settlements: &[Settlement]) {
        q.push("SELECT * FROM unnest(");
        let mut columns = q.separated(", ");
        columns.push_bind(settlements.iter().map(|s| s.id.as_str()).collect::<Vec<_>>());
        columns.push_bind(settlements.iter().map(|s| s.state.as_str()).collect::<Vec<_>>());
        columns.push_bind(settlements.iter().map(|s| s.note.as_deref()).collect::<Vec<_>>());
        columns.push_bind(settlements.iter().map(|s| s.retry_at).collect::<Vec<_>>());
        q.push(")");
    }
}

impl SqlStore<Postgres> {
    /// Connects and migrates (sqlx holds an advisory lock while migrating, so
    /// replicas starting together are safe).
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let options: PgConnectOptions = url.parse().context("DATABASE_URL is not a PostgreSQL URL")?;
        // Our transactions are a few statements with no wait inside: one idle for seconds
        // belongs to a process that froze (a stopped VM, a debugger) and holds rows every
        // other replica waits on. PostgreSQL ends it; the frozen process retries on waking.
        // No notices: the server's are about our own `IF NOT EXISTS` (sqlx's migrations table
        // at every start), and sqlx logs each at info, where they read like a problem.
        let options = options.options([
            ("idle_in_transaction_session_timeout", IDLE_IN_TRANSACTION),
            ("client_min_messages", "warning"),
        ]);
        let (pool, options) = if super::pg_tls::plain_first(url, &options) {
            let plain = options.clone().ssl_mode(PgSslMode::Disable);
            match open(plain.clone(), POOL - INBOX).await {
                Err(e) if super::pg_tls::refused(&e) => (open(options.clone(), POOL - INBOX).await, options),
                opened => (opened, plain),
            }
        } else {
            (open(options.clone(), POOL - INBOX).await, options)
        };
        let pool = pool.context("cannot connect to PostgreSQL")?;
        // The webhook path's group insert on connections of its own, which also spares the
        // request path a wait behind the worker and the passes for one of the pool's. Its
        // plan is the generic one: after a quiet spell of groups of one or two, PostgreSQL
        // kept planning the statement anew for every group (its custom plans looked cheaper
        // than the generic), and a burst then ran at 9,557-10,437/s against 12,040-12,363/s
        // from a cold start (wrk, 2 pairs); at 9,129/s with custom plans forced.
        // Opened at its first group: `reconcile` and `migrate` never send one.
        let inbox = options.options([("plan_cache_mode", "force_generic_plan")]);
        let inbox = pool_options(&inbox, INBOX).connect_lazy_with(inbox);
        super::migrations::migrator(super::migrations::POSTGRES)
            .run(&pool)
            .await
            .map_err(super::migrations::explain)
            .context("cannot migrate the PostgreSQL database")?;
        warn_if_short_of_connections(&pool).await;
        Ok(Self::new(pool.clone(), pool).with_inbox(inbox))
    }
}

/// A pool of `size` connections opened with `options` (and one of them open).
async fn open(options: PgConnectOptions, size: u32) -> Result<sqlx::PgPool, sqlx::Error> {
    pool_options(&options, size).connect_with(options).await
}

fn pool_options(options: &PgConnectOptions, size: u32) -> PgPoolOptions {
    let port = options.get_port();
    PgPoolOptions::new()
        .max_connections(size)
        // No ping before each use: sqlx already pings every connection that comes back to
        // the pool (and closes a broken one); a second ping before lending it was a round
        // trip more for every statement (~10 % of ghsync's CPU a webhook, and ~12 % more of
        // them a second under wrk). A connection the server ended while idle fails its next
        // statement instead, which `store/retry.rs` runs again.
        .test_before_acquire(false)
        .after_connect(move |_, _| {
            Box::pin(async move {
                super::nodelay::set_nodelay_towards(port);
                Ok(())
            })
        })
        .acquire_timeout(Duration::from_secs(10))
}

/// Says so at start-up when the server cannot give this process its whole
/// pool: with too few connections left, a pass or a webhook's commit waits
/// for one and fails after the pool's 10 s, which looks like an outage.
async fn warn_if_short_of_connections(pool: &sqlx::PgPool) {
    let counts: Result<(i32, i64), _> = sqlx::query_as(
        "SELECT current_setting('max_connections')::int \
         - current_setting('superuser_reserved_connections')::int, \
         (SELECT COUNT(*) FROM pg_stat_activity WHERE backend_type = 'client backend')",
    )
    .fetch_one(pool)
    .await;
    if let Ok((allowed, open)) = counts
        && let Some(message) = connections_short(allowed, open, pool.size())
    {
        tracing::warn!(max_connections = allowed, open, pool = POOL, "{message}");
    }
}

/// What to tell the operator when `allowed` client connections, `open` of them
/// already (`ours` of those this process's), leave less than a pool's worth.
fn connections_short(allowed: i32, open: i64, ours: u32) -> Option<String> {
    let free = i64::from(allowed) - open + i64::from(ours);
    (free < i64::from(POOL)).then(|| {
        format!(
            "PostgreSQL has {free} connections free for this process, which may open {POOL}: \
             under load, passes and webhook commits will wait for one and fail. Raise \
             max_connections (each replica, `reconcile` and `migrate` takes up to {POOL}) \
             or run fewer processes"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_with_room_for_the_pool_is_not_warned_about() {
        assert_eq!(connections_short(100, 3, 1), None);
        assert_eq!(connections_short(100, 16 + 84, 16), None, "exactly our pool free, counting ours");
    }

    #[test]
    fn a_server_short_of_connections_is_named_with_its_figures() {
        let message = connections_short(97, 90, 1).expect("8 free of 16");
        assert!(message.contains("8 connections free") && message.contains("max_connections"), "{message}");
    }
}
