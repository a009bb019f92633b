//! Where `ghsync setup` puts what GitHub hands back: the private key in a file
//! of its own and the App's settings in `.env`, both readable by their owner
//! only — an existing `.env` too, since it now holds the webhook secret.

use anyhow::Context as _;
use secrecy::ExposeSecret;
use std::path::Path;

use crate::github::NewApp;

/// The lines we own in `.env`; every other line is kept as it was.
const OURS: [&str; 4] =
    ["GITHUB_APP_ID=", "GITHUB_APP_PRIVATE_KEY_PATH=", "GITHUB_APP_PRIVATE_KEY=", "GITHUB_WEBHOOK_SECRET="];

/// Writes the key and sets the App's settings in `dir/.env`.
pub fn save(dir: &Path, app: &NewApp) -> anyhow::Result<()> {
    let key_path = dir.join(format!("ghsync-app-{}.pem", app.id));
    write_private(&key_path, app.pem.expose_secret())
        .with_context(|| format!("cannot write {}", key_path.display()))?;
    let env_path = dir.join(".env");
    let existing = std::fs::read_to_string(&env_path).unwrap_or_default();
    let mut lines: Vec<String> =
        existing.lines().filter(|l| !OURS.iter().any(|k| l.trim_start().starts_with(k))).map(str::to_owned).collect();
    let quote = |v: &str| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
    lines.push(format!("GITHUB_APP_ID={}", app.id));
    lines.push(format!("GITHUB_APP_PRIVATE_KEY_PATH={}", quote(&key_path.display().to_string())));
    match &app.webhook_secret {
        Some(secret) => lines.push(format!("GITHUB_WEBHOOK_SECRET={}", quote(secret.expose_secret()))),
        None => eprintln!("GitHub sent no webhook secret: set one on the App's page and in GITHUB_WEBHOOK_SECRET"),
    }
    write_private(&env_path, &(lines.join("\n") + "\n")).with_context(|| format!("cannot write {}", env_path.display()))
}

/// Mode 0600 whether the file is new or not: `mode()` applies only when the
/// file is created, so an existing one (often 0644) is narrowed before the
/// secret goes in, never after.
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(content.as_bytes())?;
    file.sync_all()
}
