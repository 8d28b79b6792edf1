use chrono::{DateTime, Utc};
use url::Url;

use super::{Store, StoreError, from_unix, on_pool, unix};
use crate::tenants::{PublicTenantId, Tenant, TenantId, TenantStatus};

pub(super) const TENANT_COLUMNS: &str = "t.id, t.public_id, t.status, t.product_base_url, t.display_url, \
     t.help_center_url, t.product_type, t.description, t.created_at, t.updated_at, t.uninstalled_at";

#[derive(sqlx::FromRow)]
pub(super) struct TenantRow {
    id: String,
    public_id: String,
    status: String,
    product_base_url: String,
    display_url: Option<String>,
    help_center_url: Option<String>,
    product_type: Option<String>,
    description: Option<String>,
    created_at: i64,
    updated_at: i64,
    uninstalled_at: Option<i64>,
}

impl TryFrom<TenantRow> for Tenant {
    type Error = StoreError;

    fn try_from(r: TenantRow) -> Result<Self, StoreError> {
        let url = |s: &str| Url::parse(s).map_err(|e| StoreError::Corrupt(format!("tenant {}: bad URL ({e})", r.id)));
        Ok(Tenant {
            public_id: PublicTenantId::parse(&r.public_id)
                .ok_or_else(|| StoreError::Corrupt(format!("tenant {}: bad public id", r.id)))?,
            status: TenantStatus::parse(&r.status)
                .ok_or_else(|| StoreError::Corrupt(format!("tenant {}: bad status", r.id)))?,
            product_base_url: url(&r.product_base_url)?,
            display_url: r.display_url.as_deref().map(url).transpose()?,
            help_center_url: r.help_center_url.as_deref().map(url).transpose()?,
            product_type: r.product_type,
            description: r.description,
            created_at: from_unix(r.created_at),
            updated_at: from_unix(r.updated_at),
            uninstalled_at: r.uninstalled_at.map(from_unix),
            id: TenantId::from_stored(r.id),
        })
    }
}

impl Store {
    pub async fn find_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants t WHERE t.id = $1");
        let row: Option<TenantRow> =
            on_pool!(self, p => sqlx::query_as(&sql).bind(id.as_str()).fetch_optional(p).await?);
        row.map(Tenant::try_from).transpose()
    }

    pub async fn find_tenant_by_public_id(&self, id: &PublicTenantId) -> Result<Option<Tenant>, StoreError> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants t WHERE t.public_id = $1");
        let row: Option<TenantRow> =
            on_pool!(self, p => sqlx::query_as(&sql).bind(id.as_str()).fetch_optional(p).await?);
        row.map(Tenant::try_from).transpose()
    }

    pub async fn set_tenant_status(
        &self,
        id: &TenantId,
        status: TenantStatus,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let uninstalled_at = (status == TenantStatus::Uninstalled).then(|| unix(now));
        on_pool!(self, p => sqlx::query(
            "UPDATE tenants SET status = $1, updated_at = $2, uninstalled_at = $3 WHERE id = $4",
        )
        .bind(status.as_str())
        .bind(unix(now))
        .bind(uninstalled_at)
        .bind(id.as_str())
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// Deletes tenants uninstalled before `cutoff`, with everything that belongs to them.
    pub async fn purge_uninstalled_tenants(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = on_pool!(self, p => sqlx::query(
            "DELETE FROM tenants WHERE status = 'uninstalled' AND uninstalled_at IS NOT NULL AND uninstalled_at < $1",
        )
        .bind(unix(cutoff))
        .execute(p)
        .await?
        .rows_affected());
        Ok(done)
    }
}
