//! `ghsync`: parse the command line, load settings, run the command, and say
//! in one line what went wrong if it did.

use clap::Parser;
use ghsync::cli::{Cli, Command, DEMO_DATABASE_URL};
use ghsync::commands;
use ghsync::config::{Needs, Settings};

fn needs(command: &Command) -> Needs {
    match command {
        Command::Migrate | Command::Setup(_) | Command::Demo(_) => Needs::DatabaseOnly,
        Command::Reconcile(_) => Needs::GitHubApp,
        Command::Serve => Needs::Everything,
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // `demo` must not touch real data: no `.env`, no `DATABASE_URL`, no GitHub
    // App from the environment, only its own flags and its own SQLite file.
    let mut cli = Cli::parse_without_real_data();
    if matches!(cli.command, Command::Demo(_)) {
        cli.settings.database_url.get_or_insert_with(|| DEMO_DATABASE_URL.to_owned());
    } else {
        // `.env` first, so its values reach clap's `env` lookups; real variables win.
        let _ = dotenvy::dotenv();
        cli = Cli::parse();
    }
    let settings = match Settings::load(&cli.settings, needs(&cli.command)) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("ghsync: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    ghsync::telemetry::init(&settings.log);
    let outcome = match cli.command {
        Command::Serve => commands::serve(settings).await,
        Command::Reconcile(args) => commands::reconcile(settings, args.all).await,
        Command::Migrate => commands::migrate(settings).await,
        Command::Setup(args) => commands::setup(args, &cli.settings).await,
        Command::Demo(args) => commands::demo(settings, args).await,
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ghsync: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
