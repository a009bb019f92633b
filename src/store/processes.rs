//! Which processes have a SQLite file open, so that opening it takes back
//! only what a dead process held. Each process registers a row (a random id,
//! its host and pid) and refreshes its heartbeat every `BEAT`; a row whose
//! heartbeat is older than `STALE`, or whose pid is gone from this host, is a
//! dead process's and is removed.
//!
//! Leases carry no holder, so the rule is all-or-nothing, and safe: the
//! leases still set when a process opens the file are taken back at once only
//! if no other process is alive (every lease then belongs to the dead);
//! otherwise they are left to run out, as on PostgreSQL. A live `serve` thus
//! keeps its claimed users and deliveries while a `reconcile` or `migrate`
//! opens the file beside it, and after a `kill -9` a lone restart still takes
//! everything back at once.

use chrono::{DateTime, Duration, Utc};
use sqlx::SqlitePool;
use tokio::task::JoinHandle;

/// How often a live process says so.
const BEAT: std::time::Duration = std::time::Duration::from_secs(5);
/// A heartbeat older than this is a dead process's (several beats missed).
const STALE: Duration = Duration::seconds(30);

/// This process's row; dropped, the heartbeat stops and the row goes.
pub struct Registration {
    id: String,
    writer: SqlitePool,
    beat: JoinHandle<()>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.beat.abort();
        // Best effort: a process that closes the store cleanly is not waited for as a
        // live one. If this cannot run, the row goes stale in `STALE`.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (id, writer) = (self.id.clone(), self.writer.clone());
            runtime.spawn(async move {
                let _ = sqlx::query("DELETE FROM processes WHERE id = $1").bind(id).execute(&writer).await;
            });
        }
    }
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_default()
}

/// A process on this host whose pid no longer exists is dead whatever its
/// heartbeat says (a `kill -9` and a restart need not wait `STALE`).
fn gone_from_this_host(row_host: &str, pid: i64) -> bool {
    let proc_fs = std::path::Path::new("/proc/self").exists();
    !row_host.is_empty() && row_host == host() && proc_fs && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Registers this process and, if it is the only live one, takes back every
/// lease (their holders died). One write transaction, so two processes
/// opening together see each other.
pub async fn register(writer: &SqlitePool) -> Result<Registration, sqlx::Error> {
    let id = uuid::Uuid::new_v4().to_string();
    let now = Utc::now();
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let others: Vec<(String, String, i64, DateTime<Utc>)> =
        sqlx::query_as("SELECT id, host, pid, heartbeat_at FROM processes").fetch_all(&mut *tx).await?;
    let mut alive = 0;
    for (other, other_host, pid, heartbeat_at) in others {
        if heartbeat_at < now - STALE || gone_from_this_host(&other_host, pid) {
            sqlx::query("DELETE FROM processes WHERE id = $1").bind(other).execute(&mut *tx).await?;
        } else {
            alive += 1;
        }
    }
    if alive == 0 {
        sqlx::query(
            "UPDATE webhook_deliveries SET lease_until = NULL, lease_id = NULL \
             WHERE lease_until IS NOT NULL AND state = 'pending'",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE users SET claimed_until = NULL, lease_id = NULL WHERE claimed_until IS NOT NULL")
            .execute(&mut *tx)
            .await?;
    } else {
        tracing::info!(live_processes = alive, "another process has this database open: its leases stay its own");
    }
    sqlx::query("INSERT INTO processes (id, host, pid, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $4)")
        .bind(&id)
        .bind(host())
        .bind(i64::from(std::process::id()))
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let pool = writer.clone();
    let beat_id = id.clone();
    let beat = tokio::spawn(async move {
        let id = beat_id;
        loop {
            tokio::time::sleep(BEAT).await;
            // An upsert: a row another process removed while we stalled comes back.
            let beat = sqlx::query(
                "INSERT INTO processes (id, host, pid, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $4) \
                 ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
            )
            .bind(&id)
            .bind(host())
            .bind(i64::from(std::process::id()))
            .bind(Utc::now())
            .execute(&pool)
            .await;
            if let Err(e) = beat {
                tracing::warn!(error.message = %e, "cannot refresh this process's heartbeat");
            }
        }
    });
    Ok(Registration { id, writer: writer.clone(), beat })
}
