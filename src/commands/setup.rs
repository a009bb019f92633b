//! `ghsync setup`: not built yet (see the README's "Not yet" section).

use crate::cli::SetupArgs;
use crate::config::Settings;

pub async fn setup(_settings: Settings, _args: SetupArgs) -> anyhow::Result<()> {
    anyhow::bail!(
        "setup (the GitHub App manifest flow) is not implemented yet: create the App by hand \
         (see README, \"Installing on GitHub\") and set GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY_PATH \
         and GITHUB_WEBHOOK_SECRET"
    )
}
