//! TLS towards PostgreSQL: none on a loopback address unless `DATABASE_URL`
//! names an `sslmode` (`store/pg_tls.rs` says why), whatever it names obeyed.

use sqlx::Connection;

use crate::helpers::{Backend, TestDb, open_store};

/// Whether the connections `application_name` names on `db` use TLS, seen
/// from a connection of the test's own (without TLS, and left out).
async fn tls_of(db: &TestDb, application_name: &str) -> Vec<bool> {
    let mut conn = sqlx::PgConnection::connect(&with_query(&db.url, "sslmode=disable")).await.unwrap();
    sqlx::query_scalar(
        "SELECT s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
         WHERE a.datname = current_database() AND a.application_name = $1 AND a.pid <> pg_backend_pid()",
    )
    .bind(application_name)
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

fn with_query(url: &str, query: &str) -> String {
    let mut url = url::Url::parse(url).unwrap();
    let joined = url.query().map_or(query.to_owned(), |q| format!("{q}&{query}"));
    url.set_query(Some(&joined));
    url.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_on_this_machine_is_reached_without_tls_unless_the_url_names_an_sslmode() {
    if !Backend::postgres_available() {
        return;
    }
    let db = TestDb::create(Backend::Postgres).await;
    let host = url::Url::parse(&db.url).unwrap().host_str().map(str::to_owned);
    assert!(
        matches!(host.as_deref(), Some("127.0.0.1" | "localhost" | "[::1]")) && !db.url.contains("sslmode"),
        "this test needs TEST_DATABASE_URL on a loopback address, without sslmode: {}",
        db.url
    );

    let plain = db.borrowed_as(with_query(&db.url, "application_name=plain"));
    let _plain_store = open_store(&plain).await;
    let plain_tls = tls_of(&db, "plain").await;
    assert!(!plain_tls.is_empty() && plain_tls.iter().all(|tls| !tls), "no TLS on loopback by default: {plain_tls:?}");

    let server_has_tls: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(&mut sqlx::PgConnection::connect(&db.url).await.unwrap())
        .await
        .unwrap();
    if server_has_tls != "on" {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "SKIPPED (the named-sslmode half): this PostgreSQL has ssl = off");
        return;
    }
    let named = db.borrowed_as(with_query(&db.url, "application_name=named&sslmode=prefer"));
    let _named_store = open_store(&named).await;
    let named_tls = tls_of(&db, "named").await;
    assert!(!named_tls.is_empty() && named_tls.iter().all(|tls| *tls), "sslmode=prefer, as written: {named_tls:?}");
}
