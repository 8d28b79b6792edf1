//! The command-line operations besides `serve`.

use anyhow::Context;

use crate::config::{MasterKeySource, Settings};
use crate::crypto::{Keyring, MasterKey};
use crate::startup::resolve_keyring;
use crate::store::{SecretRotationReport, Store};

pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let store = Store::connect(&settings.database_url).await.context("cannot open the database")?;
    store.migrate().await.context("migration failed")?;
    store.close().await;
    Ok(())
}

/// Checks what can be checked without serving: the settings parse (already done by the caller), the
/// database answers, the master key opens.
pub async fn check_config(settings: &Settings) -> anyhow::Result<String> {
    let store = Store::connect(&settings.database_url).await.context("cannot open the database")?;
    anyhow::ensure!(store.ping().await, "the database does not answer");
    store.close().await;
    let keyring = resolve_keyring(settings)?;
    Ok(format!(
        "configuration is valid: base URL {}, listening on {}, database {}, master key {}",
        settings.base_url.as_str(),
        settings.listen,
        settings.database_url,
        keyring.current_id()
    ))
}

pub struct Rotation {
    pub new_key: MasterKey,
    pub report: SecretRotationReport,
    /// Where the new key was written, when the key lives in a file.
    pub written_to: Option<std::path::PathBuf>,
}

/// Re-seals every secret under `new_key` (a fresh one when `None`). With a key file, the file is
/// replaced only after the database has committed, and the old key is kept beside it as
/// `master.key.previous`; with `JSM_SSO_MASTER_KEY`, the operator sets the new key on every instance.
pub async fn rotate_master_key(settings: &Settings, new_key: Option<MasterKey>) -> anyhow::Result<Rotation> {
    let old = resolve_keyring(settings)?;
    let new_key = new_key.unwrap_or_else(MasterKey::generate);
    let mut previous = settings.previous_master_keys.clone();
    let current_old = match &settings.master_key {
        MasterKeySource::Explicit(k) => k.clone(),
        MasterKeySource::File(path) => crate::crypto::load_or_create_key_file(path).map_err(anyhow::Error::msg)?,
    };
    previous.push(current_old.clone());
    let keyring = Keyring::new(new_key.clone(), previous);
    anyhow::ensure!(old.current_id() != new_key.id(), "the new master key is the key in use");

    // Stage the new key file first, so a crash after the commit cannot lose the key.
    let staged = match &settings.master_key {
        MasterKeySource::File(path) => {
            let staged = path.with_extension("key.new");
            new_key.write_file(&staged).with_context(|| format!("cannot write {}", staged.display()))?;
            Some((path.clone(), staged))
        }
        MasterKeySource::Explicit(_) => None,
    };

    let store = Store::connect(&settings.database_url).await.context("cannot open the database")?;
    store.migrate().await?;
    let report = store.rotate_secrets(&keyring).await.context("re-sealing the secrets failed; nothing was changed")?;
    store.close().await;

    let written_to = match staged {
        Some((path, staged)) => {
            current_old.write_file(&path.with_extension("key.previous"))?;
            std::fs::rename(&staged, &path)
                .with_context(|| format!("cannot move the new key into {}", path.display()))?;
            Some(path)
        }
        None => None,
    };
    Ok(Rotation { new_key, report, written_to })
}
