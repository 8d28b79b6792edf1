use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use jsm_sso::config::Settings;
use jsm_sso::crypto::MasterKey;
use jsm_sso::startup::Application;
use jsm_sso::{commands, telemetry};

#[derive(Parser)]
#[command(version, about = "SAML single sign-on for Jira Service Management customers")]
struct Cli {
    /// A TOML file with the same keys as the JSM_SSO_* variables (the environment wins).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve (the default).
    Serve,
    /// Run the database migrations and exit.
    Migrate,
    /// Check the configuration, the database and the master key, and exit.
    CheckConfig,
    /// Re-encrypt every stored secret under a new master key (JSM_SSO_NEW_MASTER_KEY, or a fresh one).
    RotateMasterKey,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("jsm-sso: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(settings.log_format);
    match run(cli.command.unwrap_or(Command::Serve), settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jsm-sso: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let app = Application::build(settings.clone()).await?;
            tracing::info!(url = settings.base_url.as_str(), port = app.port(), "jsm-sso serving");
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            commands::migrate(&settings).await?;
            println!("migrations applied");
        }
        Command::CheckConfig => println!("{}", commands::check_config(&settings).await?),
        Command::RotateMasterKey => {
            let new_key = std::env::var("JSM_SSO_NEW_MASTER_KEY")
                .ok()
                .map(|raw| MasterKey::from_base64(&raw).map_err(|m| anyhow::anyhow!("JSM_SSO_NEW_MASTER_KEY: {m}")))
                .transpose()?;
            let given = new_key.is_some();
            let rotation = commands::rotate_master_key(&settings, new_key).await?;
            println!(
                "re-encrypted {} secrets ({} were already under the new key); new master key id {}",
                rotation.report.resealed,
                rotation.report.already_current,
                rotation.new_key.id()
            );
            match rotation.written_to {
                Some(path) => println!("the new key is in {} (the old one in its .key.previous file)", path.display()),
                None if given => println!("now set JSM_SSO_MASTER_KEY to the new key on every instance"),
                None => println!(
                    "now set JSM_SSO_MASTER_KEY={} on every instance, and keep the old key in \
                     JSM_SSO_PREVIOUS_MASTER_KEYS until all have restarted",
                    rotation.new_key.to_base64()
                ),
            }
        }
    }
    Ok(())
}
