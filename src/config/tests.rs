//! `Settings::load` against good and bad input: every bad setting is one
//! line naming its variable.

use super::*;

fn raw() -> RawSettings {
    RawSettings {
        github_app_id: Some("42".into()),
        github_app_private_key_path: Some(
            concat!(env!("CARGO_MANIFEST_DIR"), "/fake-github/fixtures/demo-app-key.pem").into(),
        ),
        github_webhook_secret: Some("one, two".into()),
        ..RawSettings::default()
    }
}

fn error_of(raw: RawSettings) -> String {
    Settings::load(&raw, Needs::Everything).unwrap_err().to_string()
}

#[test]
fn defaults_match_the_contract() {
    let s = Settings::load(&raw(), Needs::Everything).unwrap();
    assert_eq!(s.sync.interval, Duration::from_secs(12 * 3600));
    assert_eq!(s.sync.stale_after, s.sync.interval);
    assert_eq!(s.sync.batch_size, 100);
    assert_eq!(s.http.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(s.webhook.secrets.len(), 2);
    let gh = s.github.unwrap();
    assert_eq!(gh.graphql_url.as_str(), "https://api.github.com/graphql");
    assert!(!format!("{:?}", gh).contains("PRIVATE"));
}

#[test]
fn each_bad_setting_is_named_in_one_line() {
    type Edit = fn(&mut RawSettings);
    let cases: Vec<(Edit, &str)> = vec![
        (|r| r.github_app_id = Some("abc".into()), "GITHUB_APP_ID: \"abc\" is not a number"),
        (|r| r.github_app_id = None, "GITHUB_APP_ID: missing"),
        (
            |r| r.github_app_private_key_path = Some("/nope.pem".into()),
            "GITHUB_APP_PRIVATE_KEY_PATH: cannot read /nope.pem",
        ),
        (|r| r.github_app_private_key = Some("hello".into()), "GITHUB_APP_PRIVATE_KEY: not an RSA private key"),
        (|r| r.ghsync_sync_interval = Some("12x".into()), "GHSYNC_SYNC_INTERVAL: \"12x\" is not a duration"),
        (|r| r.ghsync_batch_size = Some("0".into()), "GHSYNC_BATCH_SIZE: \"0\" must be from 1 to 100"),
        (|r| r.ghsync_batch_size = Some("101".into()), "GHSYNC_BATCH_SIZE: \"101\" must be from 1 to 100"),
        (|r| r.github_app_id = Some("0".into()), "GITHUB_APP_ID: \"0\" must be greater than zero"),
        (|r| r.ghsync_redeliver_interval = Some("0s".into()), "GHSYNC_REDELIVER_INTERVAL: \"0s\" must be between"),
        (|r| r.ghsync_redeliver_interval = Some("1ns".into()), "GHSYNC_REDELIVER_INTERVAL: \"1ns\" must be between"),
        (|r| r.ghsync_redeliver_interval = Some("2days".into()), "GHSYNC_REDELIVER_INTERVAL: \"2days\" must be"),
        (|r| r.ghsync_sync_interval = Some("30s".into()), "GHSYNC_SYNC_INTERVAL: \"30s\" must be between 1m and"),
        (
            |r| r.ghsync_sync_interval = Some("300000years".into()),
            "GHSYNC_SYNC_INTERVAL: \"300000years\" must be between",
        ),
        (|r| r.ghsync_stale_after = Some("31days".into()), "GHSYNC_STALE_AFTER: \"31days\" must be between"),
        (|r| r.ghsync_stale_after = Some("1s".into()), "GHSYNC_STALE_AFTER: \"1s\" must be between"),
        (|r| r.ghsync_lease = Some("1s".into()), "GHSYNC_LEASE: \"1s\" must be between 2s and 1h"),
        (|r| r.ghsync_lease = Some("2h".into()), "GHSYNC_LEASE: \"2h\" must be between"),
        (|r| r.ghsync_log = Some("nonsense[".into()), "GHSYNC_LOG: \"nonsense[\" is not a log filter"),
        (|r| r.ghsync_listen = Some("here".into()), "GHSYNC_LISTEN"),
        (|r| r.github_webhook_secret = Some(" , ".into()), "GITHUB_WEBHOOK_SECRET: missing"),
        (|r| r.database_url = Some("mysql://x".into()), "DATABASE_URL"),
        (|r| r.github_api_url = Some("ftp://x".into()), "GITHUB_API_URL"),
    ];
    for (edit, expected) in cases {
        let mut r = raw();
        edit(&mut r);
        let message = error_of(r);
        assert!(message.starts_with(expected), "{message:?} should start with {expected:?}");
        assert!(!message.contains('\n'));
    }
}

#[test]
fn the_bounds_themselves_are_accepted() {
    let mut r = raw();
    r.ghsync_sync_interval = Some("30days".into());
    r.ghsync_stale_after = Some("1m".into());
    r.ghsync_redeliver_interval = Some("1m".into());
    r.ghsync_batch_size = Some("1".into());
    r.ghsync_log = Some("warn,ghsync=debug".into());
    let s = Settings::load(&r, Needs::Everything).unwrap();
    assert_eq!(s.sync.redeliver_interval, Duration::from_secs(60));
    assert_eq!(s.sync.batch_size, 1);
    assert_eq!(s.log.filter, "warn,ghsync=debug");
}

#[test]
fn enterprise_server_graphql_url_is_derived() {
    let ghes = Url::parse("https://ghe.example.com/api/v3").unwrap();
    assert_eq!(derive_graphql_url(&ghes).as_str(), "https://ghe.example.com/api/graphql");
    let fake = Url::parse("http://127.0.0.1:9999").unwrap();
    assert_eq!(derive_graphql_url(&fake).as_str(), "http://127.0.0.1:9999/graphql");
}

#[test]
fn migrate_needs_no_github_credentials() {
    assert!(Settings::load(&RawSettings::default(), Needs::DatabaseOnly).is_ok());
}

#[test]
fn the_database_password_never_reaches_debug_output() {
    let mut r = raw();
    r.database_url = Some("postgres://app:hunter2@db:5432/ghsync".into());
    let s = Settings::load(&r, Needs::DatabaseOnly).unwrap();
    assert!(!format!("{:?}", s).contains("hunter2"));
}
