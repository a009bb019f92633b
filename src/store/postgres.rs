//! The scaled backend: any number of ghsync replicas on one PostgreSQL.
//! Claims skip rows another replica holds (`FOR UPDATE SKIP LOCKED`), and the
//! leases they set expire, so a crashed replica's work is taken over.

use std::time::Duration;

use sqlx::Postgres;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgQueryResult};

use super::sql::{Backend, SqlStore};

/// A transaction left idle this long is ended by the server (see `connect`).
const IDLE_IN_TRANSACTION: &str = "10s";

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
        let options = options.options([("idle_in_transaction_session_timeout", IDLE_IN_TRANSACTION)]);
        let port = options.get_port();
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .after_connect(move |_, _| {
                Box::pin(async move {
                    super::nodelay::set_nodelay_towards(port);
                    Ok(())
                })
            })
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .context("cannot connect to PostgreSQL")?;
        super::migrations::migrator(super::migrations::POSTGRES)
            .run(&pool)
            .await
            .context("cannot migrate the PostgreSQL database")?;
        Ok(Self::new(pool.clone(), pool))
    }
}
