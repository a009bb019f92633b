//! `Settings::load`: the only code that reads settings. Each value is parsed
//! into its type once, and a bad or missing one becomes a one-line error that
//! names the variable.

use std::net::SocketAddr;
use std::time::Duration;

use octocrab::jsonwebtoken::EncodingKey;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::cli::RawSettings;
use crate::github::{GitHubSettings, GovernorSettings, sign_test_jwt};

mod limits;

pub use limits::{BodyLimits, READ_TIME_PER_MIB};

/// A setting that stops startup: one line, naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

fn bad(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError { var, problem: problem.into() }
}

/// What a command needs beyond the database: `migrate` needs nothing else,
/// `reconcile` needs the App's credentials, `serve` needs the webhook secret too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    DatabaseOnly,
    GitHubApp,
    Everything,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub github: Option<GitHubSettings>,
    pub webhook: WebhookSettings,
    pub http: HttpSettings,
    pub sync: SyncSettings,
    pub log: LogSettings,
}

/// The database URL; its `Debug` hides the password.
#[derive(Clone)]
pub struct DatabaseSettings {
    pub url: SecretString,
}

impl DatabaseSettings {
    pub fn is_postgres(&self) -> bool {
        self.url.expose_secret().starts_with("postgres")
    }
    /// For logs: the URL with any password replaced.
    pub fn redacted(&self) -> String {
        match Url::parse(self.url.expose_secret()) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("***"));
                url.to_string()
            }
            Ok(url) => url.to_string(),
            Err(_) => "<unparsable url>".into(),
        }
    }
}

impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Webhook secrets, newest first; several during rotation.
#[derive(Clone, Default)]
pub struct WebhookSettings {
    pub secrets: Vec<SecretString>,
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookSettings {{ {} secret(s) }}", self.secrets.len())
    }
}

#[derive(Clone)]
pub struct HttpSettings {
    pub listen: SocketAddr,
    pub admin_token: Option<SecretString>,
    /// What webhook callers can make us hold (memory, time).
    pub body: BodyLimits,
}

impl std::fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSettings")
            .field("listen", &self.listen)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<redacted>"))
            .field("body", &self.body)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct SyncSettings {
    pub interval: Duration,
    pub stale_after: Duration,
    pub batch_size: usize,
    pub redeliver_interval: Duration,
    /// First wait after a user's fetch failed; doubles with each failure in a row.
    pub retry_base: Duration,
    /// How long claimed work (due users, deliveries, a pass) stays a process's
    /// without a renewal (`GHSYNC_LEASE`): how soon a dead process's work is taken over.
    pub lease: Duration,
    /// Run the scheduler (serve only; tests turn it off to drive passes themselves).
    pub schedule: bool,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub filter: String,
    pub json: bool,
}

fn duration(var: &'static str, value: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(value.trim())
        .map_err(|_| bad(var, format!("{value:?} is not a duration (examples: 30m, 12h)")))
}

fn number<T: std::str::FromStr>(var: &'static str, value: &str) -> Result<T, ConfigError> {
    value.trim().parse().map_err(|_| bad(var, format!("{value:?} is not a number")))
}

fn read_key(raw: &RawSettings) -> Result<EncodingKey, ConfigError> {
    let (var, pem) = match (&raw.github_app_private_key, &raw.github_app_private_key_path) {
        (Some(inline), _) if !inline.trim().is_empty() => {
            // `.env` files often carry the PEM on one line with literal `\n`s.
            let pem = if inline.contains('\n') { inline.clone() } else { inline.replace("\\n", "\n") };
            ("GITHUB_APP_PRIVATE_KEY", pem)
        }
        (_, Some(path)) if !path.trim().is_empty() => {
            let var = "GITHUB_APP_PRIVATE_KEY_PATH";
            let pem = std::fs::read_to_string(path).map_err(|e| bad(var, format!("cannot read {path}: {e}")))?;
            (var, pem)
        }
        _ => {
            return Err(bad(
                "GITHUB_APP_PRIVATE_KEY_PATH",
                "missing (set it, or GITHUB_APP_PRIVATE_KEY, to the App's PEM key)",
            ));
        }
    };
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| bad(var, "not an RSA private key in PEM form"))?;
    // Sign once now, so a key that parses but cannot sign stops startup, not the first request.
    sign_test_jwt(&key).map_err(|e| bad(var, format!("cannot sign with this key: {e}")))?;
    Ok(key)
}

/// `…/api/v3` (GitHub Enterprise Server) → `…/api/graphql`; else `<api>/graphql`.
pub fn derive_graphql_url(api: &Url) -> Url {
    let path = api.path().trim_end_matches('/');
    let mut url = api.clone();
    if let Some(prefix) = path.strip_suffix("/api/v3") {
        url.set_path(&format!("{prefix}/api/graphql"));
    } else {
        url.set_path(&format!("{path}/graphql"));
    }
    url
}

fn parse_url(var: &'static str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value.trim()).map_err(|e| bad(var, format!("{value:?} is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(var, format!("{value:?} must be an http or https URL")));
    }
    Ok(url)
}

/// `GITHUB_API_URL`, or github.com's.
pub fn api_url(raw: &RawSettings) -> Result<Url, ConfigError> {
    parse_url("GITHUB_API_URL", raw.github_api_url.as_deref().unwrap_or("https://api.github.com"))
}

fn github(raw: &RawSettings) -> Result<GitHubSettings, ConfigError> {
    let app_id = match raw.github_app_id.as_deref() {
        None | Some("") => return Err(bad("GITHUB_APP_ID", "missing (the App's numeric id)")),
        Some(v) => positive::<u64>("GITHUB_APP_ID", v)?,
    };
    let private_key = read_key(raw)?;
    let api_url = api_url(raw)?;
    let graphql_url = match raw.github_graphql_url.as_deref() {
        Some(v) if !v.is_empty() => parse_url("GITHUB_GRAPHQL_URL", v)?,
        _ => derive_graphql_url(&api_url),
    };
    let mut limits = GovernorSettings::default();
    if let Some(v) = &raw.ghsync_rate_reserve {
        let f: f64 = number("GHSYNC_RATE_RESERVE", v)?;
        if !(0.0..0.9).contains(&f) {
            return Err(bad("GHSYNC_RATE_RESERVE", format!("{v:?} must be a fraction from 0 to 0.9")));
        }
        limits.reserve_fraction = f;
    }
    if let Some(v) = &raw.ghsync_rest_points_per_minute {
        limits.rest_points_per_minute = positive("GHSYNC_REST_POINTS_PER_MINUTE", v)?;
    }
    if let Some(v) = &raw.ghsync_graphql_points_per_minute {
        limits.graphql_points_per_minute = positive("GHSYNC_GRAPHQL_POINTS_PER_MINUTE", v)?;
    }
    if let Some(v) = &raw.ghsync_max_concurrency_per_token {
        limits.max_concurrency_per_token = positive::<u32>("GHSYNC_MAX_CONCURRENCY_PER_TOKEN", v)? as usize;
    }
    Ok(GitHubSettings { app_id, private_key, api_url, graphql_url, limits })
}

fn positive<T: std::str::FromStr + PartialOrd + Default>(var: &'static str, v: &str) -> Result<T, ConfigError> {
    let n: T = number(var, v)?;
    if n <= T::default() {
        return Err(bad(var, format!("{v:?} must be greater than zero")));
    }
    Ok(n)
}

impl Settings {
    /// Parses everything once. `needs` says which credentials this command requires.
    pub fn load(raw: &RawSettings, needs: Needs) -> Result<Settings, ConfigError> {
        let db_url = raw.database_url.clone().unwrap_or_else(|| "sqlite://ghsync.db".into());
        if !(db_url.starts_with("sqlite:") || db_url.starts_with("postgres://") || db_url.starts_with("postgresql://"))
        {
            return Err(bad("DATABASE_URL", "must start with sqlite:// or postgres://"));
        }
        let github = match needs {
            Needs::DatabaseOnly => None,
            _ => Some(github(raw)?),
        };
        let secrets: Vec<SecretString> = raw
            .github_webhook_secret
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| SecretString::from(s.to_owned()))
            .collect();
        if needs == Needs::Everything && secrets.is_empty() {
            return Err(bad(
                "GITHUB_WEBHOOK_SECRET",
                "missing (the App's webhook secret; several comma-separated while rotating)",
            ));
        }
        let listen = raw.ghsync_listen.as_deref().unwrap_or("0.0.0.0:8080");
        let listen: SocketAddr = listen
            .trim()
            .parse()
            .map_err(|_| bad("GHSYNC_LISTEN", format!("{listen:?} is not an address like 0.0.0.0:8080")))?;
        let interval = limits::duration_within(
            "GHSYNC_SYNC_INTERVAL",
            raw.ghsync_sync_interval.as_deref().unwrap_or("12h"),
            limits::SYNC_INTERVAL,
        )?;
        let stale_after = match raw.ghsync_stale_after.as_deref() {
            Some(v) if !v.is_empty() => limits::duration_within("GHSYNC_STALE_AFTER", v, limits::STALE_AFTER)?,
            _ => interval,
        };
        let batch_size = match raw.ghsync_batch_size.as_deref() {
            Some(v) => limits::count_within("GHSYNC_BATCH_SIZE", v, limits::BATCH_SIZE)?,
            None => 100,
        };
        let redeliver_interval = limits::duration_within(
            "GHSYNC_REDELIVER_INTERVAL",
            raw.ghsync_redeliver_interval.as_deref().unwrap_or("10m"),
            limits::REDELIVER_INTERVAL,
        )?;
        let lease =
            limits::duration_within("GHSYNC_LEASE", raw.ghsync_lease.as_deref().unwrap_or("60s"), limits::LEASE)?;
        let body =
            limits::body_limits(raw.ghsync_webhook_memory.as_deref(), raw.ghsync_webhook_read_timeout.as_deref())?;
        let log_filter = limits::log_filter(raw.ghsync_log.as_deref().unwrap_or("info"))?;
        let json = match raw.ghsync_log_format.as_deref().unwrap_or("text") {
            "json" => true,
            "text" | "" => false,
            other => return Err(bad("GHSYNC_LOG_FORMAT", format!("{other:?} must be text or json"))),
        };
        let admin_token = raw
            .ghsync_admin_token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| SecretString::from(t.to_owned()));
        Ok(Settings {
            database: DatabaseSettings { url: SecretString::from(db_url) },
            github,
            webhook: WebhookSettings { secrets },
            http: HttpSettings { listen, admin_token, body },
            sync: SyncSettings {
                interval,
                stale_after,
                batch_size,
                redeliver_interval,
                lease,
                retry_base: Duration::from_secs(60),
                schedule: true,
            },
            log: LogSettings { filter: log_filter, json },
        })
    }
}

#[cfg(test)]
mod tests;
