//! TLS towards a PostgreSQL server on this machine.
//!
//! sqlx's default, like libpq's, is `sslmode=prefer`: TLS whenever the server
//! offers it, and Debian's and Ubuntu's packages offer it out of the box (a
//! self-signed certificate, which `prefer` does not check). On a loopback
//! address the bytes never leave the machine: the encryption guards nothing
//! a Unix socket (never TLS) would leave open, and it is the server's work on
//! every webhook group's ~30 KB. Without it, wrk's rate was 4.6 % higher
//! (16 runs against the build before, in ABBA order).
//!
//! So when `DATABASE_URL` names a loopback host and neither it nor
//! `PGSSLMODE` says anything of `sslmode`, ghsync connects as libpq's
//! `sslmode=allow` does: without TLS, and with it when the server refuses a
//! connection without (`hostssl` lines only in `pg_hba.conf`). sqlx parses
//! `allow` but treats it as `disable`, hence this. Any `sslmode` the operator
//! writes is obeyed as written.

use std::net::IpAddr;

use sqlx::postgres::PgConnectOptions;

/// Whether to connect without TLS first (see the module's comment).
pub(super) fn plain_first(url: &str, options: &PgConnectOptions) -> bool {
    !names_sslmode(url) && std::env::var_os("PGSSLMODE").is_none() && is_loopback(options.get_host())
}

/// The URL says which `sslmode` it wants (sqlx reads either spelling).
fn names_sslmode(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|url| url.query_pairs().any(|(key, _)| key == "sslmode" || key == "ssl-mode"))
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The server turned a connection away before any password was asked for
/// (SQLSTATE 28000: no `pg_hba.conf` line takes it, as for a connection
/// without TLS where only `hostssl` lines match). The attempt with TLS then
/// decides, and reports its own error if it fails too.
pub(super) fn refused(error: &sqlx::Error) -> bool {
    error.as_database_error().and_then(|e| e.code()).is_some_and(|code| code == "28000")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(url: &str) -> bool {
        plain_first(url, &url.parse().unwrap())
    }

    #[test]
    fn a_loopback_server_without_a_named_sslmode_is_tried_without_tls_first() {
        if std::env::var_os("PGSSLMODE").is_some() {
            return assert!(!plain("postgres://u@127.0.0.1/db"), "PGSSLMODE is the operator's word");
        }
        for url in ["postgres://u@127.0.0.1:5432/db", "postgres://u@localhost/db", "postgres://u@[::1]:5432/db"] {
            assert!(plain(url), "{url}");
        }
        assert!(plain("postgres://u@127.0.0.2/db?application_name=x"), "all of 127/8 is loopback");
    }

    #[test]
    fn a_named_sslmode_or_another_host_keeps_sqlxs_choice() {
        for url in [
            "postgres://u@127.0.0.1/db?sslmode=prefer",
            "postgres://u@127.0.0.1/db?sslmode=require",
            "postgres://u@localhost/db?ssl-mode=disable",
            "postgres://u@db.internal:5432/db",
            "postgres://u@10.0.0.5/db",
        ] {
            assert!(!plain(url), "{url}");
        }
    }
}
