//! A fresh database per test: a temporary SQLite file, or a new PostgreSQL
//! database created from `TEST_DATABASE_URL` and dropped afterwards.

use sqlx::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

const PG_VAR: &str = "TEST_DATABASE_URL";
/// Set by `.ci/run`: a PostgreSQL variant that cannot run is then a failure, not a skip.
const REQUIRE_VAR: &str = "GHSYNC_TEST_REQUIRE_POSTGRES";

impl Backend {
    /// PostgreSQL tests run when `TEST_DATABASE_URL` is set (CI always sets it).
    /// A skip is reported on the terminal whatever libtest captures, so a green run
    /// without PostgreSQL never looks like a full one.
    pub fn postgres_available() -> bool {
        use std::io::Write as _;
        if std::env::var(PG_VAR).is_ok_and(|v| !v.is_empty()) {
            return true;
        }
        assert!(
            std::env::var(REQUIRE_VAR).is_err(),
            "{REQUIRE_VAR} is set but {PG_VAR} is not: the PostgreSQL half must run"
        );
        // Straight to the stream: libtest captures `eprintln!` of passing tests, not this.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED (PostgreSQL variant): set {PG_VAR}, e.g. postgres://postgres@127.0.0.1:5432/postgres"
        );
        false
    }
}

pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestDb {
    pub async fn create(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}/ghsync.db", dir.path().display());
                TestDb { url, _dir: Some(dir), pg: None }
            }
            Backend::Postgres => {
                let admin_url = std::env::var(PG_VAR).expect("checked by postgres_available");
                let name = format!("ghsync_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin_url).await.expect("TEST_DATABASE_URL answers");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.unwrap();
                let mut url = url::Url::parse(&admin_url).unwrap();
                url.set_path(&name);
                TestDb { url: url.to_string(), _dir: None, pg: Some((admin_url, name)) }
            }
        }
    }
}

impl TestDb {
    /// The same database, for a second app start while this one still owns it
    /// (dropping the copy drops nothing).
    pub fn borrowed(&self) -> TestDb {
        TestDb { url: self.url.clone(), _dir: None, pg: None }
    }

    /// Like `borrowed`, through another URL to the same database (other
    /// connection parameters).
    pub fn borrowed_as(&self, url: String) -> TestDb {
        TestDb { url, _dir: None, pg: None }
    }
}

impl TestDb {
    /// The one number `sql` (a `SELECT COUNT(*) …`) reads, straight from the
    /// database: for what no API shows, such as a row an erasure must remove.
    pub async fn count(&self, sql: &'static str) -> i64 {
        if self.url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
        }
    }
}

impl TestDb {
    /// Runs `sql` straight on the database: for a state no API can make, such
    /// as a migration from a newer build.
    pub async fn execute(&self, sql: &str) {
        if self.url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut conn).await.unwrap();
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut conn).await.unwrap();
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.pg.take() else { return };
        // Drop from a thread of its own: Drop cannot await, and the test's runtime may be ending.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}
