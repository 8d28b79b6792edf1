//! Connect installations: which client key belongs to which tenant, and its shared secret (sealed).

use chrono::{DateTime, Utc};

use super::tenants::{TENANT_COLUMNS, TenantRow};
use super::{Store, StoreError, on_pool, unix};
use crate::crypto::Sealed;
use crate::tenants::{PublicTenantId, Tenant, TenantId, TenantStatus};

pub struct ConnectInstallation {
    pub tenant: Tenant,
    pub shared_secret: Sealed,
}

/// What a verified `installed` call tells us.
pub struct NewConnectInstallation<'a> {
    pub client_key: &'a str,
    pub shared_secret: Sealed,
    pub product_base_url: &'a str,
    pub display_url: Option<&'a str>,
    pub help_center_url: Option<&'a str>,
    pub product_type: Option<&'a str>,
    pub description: Option<&'a str>,
    pub installation_id: Option<&'a str>,
    pub cloud_id: Option<&'a str>,
}

#[derive(sqlx::FromRow)]
struct InstallationRow {
    #[sqlx(flatten)]
    tenant: TenantRow,
    shared_secret: String,
}

impl Store {
    pub async fn find_connect_installation(&self, client_key: &str) -> Result<Option<ConnectInstallation>, StoreError> {
        let sql = format!(
            "SELECT {TENANT_COLUMNS}, c.shared_secret FROM connect_installations c \
             JOIN tenants t ON t.id = c.tenant_id WHERE c.client_key = $1"
        );
        let row: Option<InstallationRow> =
            on_pool!(self, p => sqlx::query_as(&sql).bind(client_key).fetch_optional(p).await?);
        row.map(|r| {
            Ok(ConnectInstallation {
                tenant: Tenant::try_from(r.tenant)?,
                shared_secret: Sealed::from_stored(r.shared_secret),
            })
        })
        .transpose()
    }

    /// Creates the tenant of a new client key, or updates the existing one (a re-install, which brings a
    /// new shared secret and may bring a renamed site). One transaction: nothing is half-written.
    pub async fn upsert_connect_installation(
        &self,
        new: NewConnectInstallation<'_>,
        now: DateTime<Utc>,
    ) -> Result<TenantId, StoreError> {
        let now = unix(now);
        let tenant_id = on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let existing: Option<(String,)> =
                sqlx::query_as("SELECT tenant_id FROM connect_installations WHERE client_key = $1")
                    .bind(new.client_key)
                    .fetch_optional(&mut *tx)
                    .await?;
            let tenant_id = match existing {
                Some((id,)) => {
                    sqlx::query(
                        "UPDATE tenants SET status = $1, product_base_url = $2, display_url = $3, help_center_url = $4, \
                         product_type = $5, description = $6, updated_at = $7, uninstalled_at = NULL WHERE id = $8",
                    )
                    .bind(TenantStatus::Installed.as_str())
                    .bind(new.product_base_url)
                    .bind(new.display_url)
                    .bind(new.help_center_url)
                    .bind(new.product_type)
                    .bind(new.description)
                    .bind(now)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "UPDATE connect_installations SET shared_secret = $1, installation_id = $2, cloud_id = $3, \
                         updated_at = $4 WHERE tenant_id = $5",
                    )
                    .bind(new.shared_secret.as_stored())
                    .bind(new.installation_id)
                    .bind(new.cloud_id)
                    .bind(now)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                    id
                }
                None => {
                    let id = TenantId::generate();
                    sqlx::query(
                        "INSERT INTO tenants (id, public_id, status, product_base_url, display_url, help_center_url, \
                         product_type, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
                    )
                    .bind(id.as_str())
                    .bind(PublicTenantId::generate().as_str())
                    .bind(TenantStatus::Installed.as_str())
                    .bind(new.product_base_url)
                    .bind(new.display_url)
                    .bind(new.help_center_url)
                    .bind(new.product_type)
                    .bind(new.description)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO connect_installations (tenant_id, client_key, shared_secret, installation_id, \
                         cloud_id, installed_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
                    )
                    .bind(id.as_str())
                    .bind(new.client_key)
                    .bind(new.shared_secret.as_stored())
                    .bind(new.installation_id)
                    .bind(new.cloud_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    id.as_str().to_string()
                }
            };
            tx.commit().await?;
            tenant_id
        });
        Ok(TenantId::from_stored(tenant_id))
    }
}

impl Store {
    /// The client key and sealed shared secret of a tenant installed through Connect.
    pub async fn connect_secret_of(&self, tenant: &TenantId) -> Result<Option<(String, Sealed)>, StoreError> {
        let row: Option<(String, String)> = on_pool!(self, p => sqlx::query_as(
            "SELECT client_key, shared_secret FROM connect_installations WHERE tenant_id = $1",
        )
        .bind(tenant.as_str())
        .fetch_optional(p)
        .await?);
        Ok(row.map(|(k, s)| (k, Sealed::from_stored(s))))
    }
}
