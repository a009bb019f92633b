//! The command line: one subcommand per job, and every setting as a flag that
//! mirrors its environment variable (clap's `env`), so `.env`, the environment
//! and flags all reach `Settings::load` by one road.

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

/// `ghsync demo`'s own database, unless `--database-url` says otherwise.
pub const DEMO_DATABASE_URL: &str = "sqlite://ghsync-demo.db";

#[derive(Debug, Parser)]
#[command(name = "ghsync", version, about = "Keeps GitHub user profiles in step with GitHub.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub settings: RawSettings,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// HTTP server, webhook inbox worker and scheduled reconciler, in one process.
    Serve,
    /// One reconcile pass now (or join the running one); prints a summary.
    Reconcile(ReconcileArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Create the GitHub App from app-manifest.json and write its credentials.
    Setup(SetupArgs),
    /// A self-contained run against the in-repo fake GitHub: no account, no network.
    // A production build (no `demo` feature) keeps the command, so the CLI is the
    // same everywhere, and says what it lacks.
    #[cfg_attr(not(feature = "demo"), command(about = "Not in this build: it needs the default `demo` feature."))]
    Demo(DemoArgs),
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Check every active user whatever their age, not only those due.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Register the App under this organization instead of your personal account.
    #[arg(long)]
    pub org: Option<String>,
    /// Where the setup page listens. Loopback by default: the page is for you,
    /// through a browser on this machine or a tunnel; GHSYNC_LISTEN is not used.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// The address your browser and GitHub reach this page at, e.g. https://HOST
    /// behind a proxy (default: http://localhost:<port of --listen>). GitHub
    /// redirects back to it and the App's webhook URL is made from it.
    #[arg(long)]
    pub public_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many users install the demo App.
    #[arg(long, default_value_t = 300)]
    pub users: usize,
    /// Stop after the users are synced instead of serving until Ctrl-C (for scripts).
    #[arg(long)]
    pub exit_when_synced: bool,
}

impl Cli {
    /// The command line with `DATABASE_URL` and every `GITHUB_*` variable
    /// unread: what `ghsync demo` runs on, so that run in a production
    /// directory it cannot pick up the real database or App (`main` does not
    /// load `.env` for it either). Only their flags count.
    pub fn parse_without_real_data() -> Cli {
        let matches = Self::command_without_real_data().get_matches();
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }

    fn command_without_real_data() -> clap::Command {
        Cli::command().mut_args(|arg| {
            let id = arg.get_id().as_str();
            if id == "database_url" || id.starts_with("github_") { arg.env(None) } else { arg }
        })
    }
}

/// Settings exactly as given; `config::Settings::load` parses and checks them.
#[derive(Debug, Clone, Default, Args)]
pub struct RawSettings {
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    #[arg(long, env = "GITHUB_APP_ID", global = true)]
    pub github_app_id: Option<String>,
    #[arg(long, env = "GITHUB_APP_PRIVATE_KEY_PATH", global = true)]
    pub github_app_private_key_path: Option<String>,
    #[arg(long, env = "GITHUB_APP_PRIVATE_KEY", global = true, hide_env_values = true)]
    pub github_app_private_key: Option<String>,
    #[arg(long, env = "GITHUB_WEBHOOK_SECRET", global = true, hide_env_values = true)]
    pub github_webhook_secret: Option<String>,
    #[arg(long, env = "GITHUB_API_URL", global = true)]
    pub github_api_url: Option<String>,
    #[arg(long, env = "GITHUB_GRAPHQL_URL", global = true)]
    pub github_graphql_url: Option<String>,
    #[arg(long, env = "GHSYNC_LISTEN", global = true)]
    pub ghsync_listen: Option<String>,
    #[arg(long, env = "GHSYNC_ADMIN_TOKEN", global = true, hide_env_values = true)]
    pub ghsync_admin_token: Option<String>,
    #[arg(long, env = "GHSYNC_SYNC_INTERVAL", global = true)]
    pub ghsync_sync_interval: Option<String>,
    #[arg(long, env = "GHSYNC_STALE_AFTER", global = true)]
    pub ghsync_stale_after: Option<String>,
    #[arg(long, env = "GHSYNC_BATCH_SIZE", global = true)]
    pub ghsync_batch_size: Option<String>,
    #[arg(long, env = "GHSYNC_REDELIVER_INTERVAL", global = true)]
    pub ghsync_redeliver_interval: Option<String>,
    /// How long claimed work stays a process's without renewal (default 60s): how soon a
    /// dead process's users, deliveries and pass are taken over by another.
    #[arg(long, env = "GHSYNC_LEASE", global = true)]
    pub ghsync_lease: Option<String>,
    /// Webhook body bytes held at once, all requests together (default 256MiB); over it, 503.
    #[arg(long, env = "GHSYNC_WEBHOOK_MEMORY", global = true)]
    pub ghsync_webhook_memory: Option<String>,
    /// Time allowed to read a webhook body, plus 2 s per MiB received (default 10s).
    #[arg(long, env = "GHSYNC_WEBHOOK_READ_TIMEOUT", global = true)]
    pub ghsync_webhook_read_timeout: Option<String>,
    #[arg(long, env = "GHSYNC_LOG", global = true)]
    pub ghsync_log: Option<String>,
    #[arg(long, env = "GHSYNC_LOG_FORMAT", global = true)]
    pub ghsync_log_format: Option<String>,
    /// Fraction of each installation's hourly budget kept for webhook-driven refreshes.
    #[arg(long, env = "GHSYNC_RATE_RESERVE", global = true)]
    pub ghsync_rate_reserve: Option<String>,
    /// REST points per minute one token may spend (GitHub's secondary limit: 900).
    #[arg(long, env = "GHSYNC_REST_POINTS_PER_MINUTE", global = true)]
    pub ghsync_rest_points_per_minute: Option<String>,
    /// GraphQL points per minute one token may spend (GitHub's secondary limit: 2,000).
    #[arg(long, env = "GHSYNC_GRAPHQL_POINTS_PER_MINUTE", global = true)]
    pub ghsync_graphql_points_per_minute: Option<String>,
    /// Requests in flight at once on one token (GitHub allows 100 in all).
    #[arg(long, env = "GHSYNC_MAX_CONCURRENCY_PER_TOKEN", global = true)]
    pub ghsync_max_concurrency_per_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn without_real_data_the_database_and_github_variables_are_not_read() {
        let command = Cli::command_without_real_data();
        let unread: Vec<String> =
            command.get_arguments().filter(|a| a.get_env().is_none()).map(|a| a.get_id().to_string()).collect();
        for id in ["database_url", "github_app_id", "github_app_private_key", "github_api_url", "github_webhook_secret"]
        {
            assert!(unread.iter().any(|u| u == id), "{id} is still read from the environment");
        }
    }

    #[test]
    fn flags_are_the_variables_in_kebab_case() {
        let cli = Cli::try_parse_from(["ghsync", "migrate", "--ghsync-batch-size", "50"]).unwrap();
        assert_eq!(cli.settings.ghsync_batch_size.as_deref(), Some("50"));
        assert!(matches!(cli.command, Command::Migrate));
    }
}
