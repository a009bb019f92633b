//! The scaled backend: any number of ghsync replicas on one PostgreSQL.
//! Claims skip rows another replica holds (`FOR UPDATE SKIP LOCKED`), and the
//! leases they set expire, so a crashed replica's work is taken over.

use std::time::Duration;

use sqlx::Postgres;
use sqlx::postgres::{PgPool, PgPoolOptions};

pub struct PgStore {
    pool: PgPool,
    /// The same pool: PostgreSQL takes concurrent writers.
    writer: PgPool,
}

impl PgStore {
    /// Connects and migrates (sqlx holds an advisory lock while migrating, so
    /// replicas starting together are safe).
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .context("cannot connect to PostgreSQL")?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await.context("cannot migrate the PostgreSQL database")?;
        Ok(Self { writer: pool.clone(), pool })
    }
}

super::sql::portable_store!(PgStore, Postgres, begin_write = "BEGIN", skip_locked = " FOR UPDATE SKIP LOCKED");
