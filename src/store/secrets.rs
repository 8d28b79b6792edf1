//! Master-key rotation: every sealed column, re-sealed under the current key in one transaction.

use super::{Store, StoreError, on_pool};
use crate::crypto::{Keyring, Sealed};

/// A column holding sealed secrets: its table, the column that names the row (and is the sealing
/// context), and the secret column. Later features add their columns here.
struct SealedColumn {
    table: &'static str,
    key: &'static str,
    secret: &'static str,
}

const SEALED_COLUMNS: &[SealedColumn] = &[
    SealedColumn { table: "connect_installations", key: "client_key", secret: "shared_secret" },
    SealedColumn { table: "sp_keys", key: "id", secret: "private_key" },
    SealedColumn { table: "portal_api_tokens", key: "tenant_id", secret: "api_token" },
];

/// The sealing context of a secret: which column of which row it belongs to.
pub fn sealing_context(table: &str, secret: &str, key_value: &str) -> String {
    format!("{table}.{secret}:{key_value}")
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct SecretRotationReport {
    pub resealed: u64,
    pub already_current: u64,
}

impl Store {
    /// Re-seals every stored secret under `keyring`'s current key. Either all are re-sealed or none is.
    pub async fn rotate_secrets(&self, keyring: &Keyring) -> Result<SecretRotationReport, StoreError> {
        let mut report = SecretRotationReport::default();
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            for col in SEALED_COLUMNS {
                let select = format!("SELECT {}, {} FROM {}", col.key, col.secret, col.table);
                let rows: Vec<(String, String)> = sqlx::query_as(&select).fetch_all(&mut *tx).await?;
                let update = format!("UPDATE {} SET {} = $1 WHERE {} = $2", col.table, col.secret, col.key);
                for (key, stored) in rows {
                    let sealed = Sealed::from_stored(stored);
                    if sealed.key_id() == Some(keyring.current_id()) {
                        report.already_current += 1;
                        continue;
                    }
                    let fresh = keyring.reseal(&sealed, &sealing_context(col.table, col.secret, &key))?;
                    sqlx::query(&update).bind(fresh.as_stored()).bind(&key).execute(&mut *tx).await?;
                    report.resealed += 1;
                }
            }
            tx.commit().await?;
        });
        Ok(report)
    }
}
