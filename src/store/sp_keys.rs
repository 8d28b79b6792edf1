//! SP key pairs, sealed, per tenant.

use chrono::{DateTime, Utc};

use super::{Store, StoreError, from_unix, on_pool, unix};
use crate::crypto::Sealed;
use crate::saml::sp_keys::KeyState;
use crate::tenants::TenantId;

pub struct StoredSpKey {
    pub id: String,
    pub state: KeyState,
    pub private_key: Sealed,
    pub certificate_pem: String,
    pub fingerprint_sha256: String,
    pub not_after: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    state: String,
    private_key: String,
    certificate_pem: String,
    fingerprint_sha256: String,
    not_after: i64,
}

pub struct NewSpKey<'a> {
    pub id: &'a str,
    pub state: KeyState,
    pub private_key: Sealed,
    pub certificate_pem: &'a str,
    pub fingerprint_sha256: &'a str,
    pub not_after: DateTime<Utc>,
}

impl Store {
    /// The tenant's `current` and `next` keys (retired ones are not returned).
    pub async fn sp_keys(&self, tenant: &TenantId) -> Result<Vec<StoredSpKey>, StoreError> {
        let rows: Vec<Row> = on_pool!(self, p => sqlx::query_as(
            "SELECT id, state, private_key, certificate_pem, fingerprint_sha256, not_after FROM sp_keys \
             WHERE tenant_id = $1 AND state IN ('current', 'next') ORDER BY state",
        )
        .bind(tenant.as_str())
        .fetch_all(p)
        .await?);
        rows.into_iter()
            .map(|r| {
                Ok(StoredSpKey {
                    state: KeyState::parse(&r.state)
                        .ok_or_else(|| StoreError::Corrupt(format!("SP key {}: bad state", r.id)))?,
                    private_key: Sealed::from_stored(r.private_key),
                    id: r.id,
                    certificate_pem: r.certificate_pem,
                    fingerprint_sha256: r.fingerprint_sha256,
                    not_after: from_unix(r.not_after),
                })
            })
            .collect()
    }

    /// Adds a `current` or `next` key. Returns `false` (and stores nothing) when the tenant already has a
    /// key in that state: two requests racing to create one cannot both win.
    pub async fn insert_sp_key(
        &self,
        tenant: &TenantId,
        key: NewSpKey<'_>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = on_pool!(self, p => sqlx::query(
            "INSERT INTO sp_keys (id, tenant_id, state, private_key, certificate_pem, fingerprint_sha256, not_after, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(key.id)
        .bind(tenant.as_str())
        .bind(key.state.as_str())
        .bind(key.private_key.as_stored())
        .bind(key.certificate_pem)
        .bind(key.fingerprint_sha256)
        .bind(unix(key.not_after))
        .bind(unix(now))
        .execute(p)
        .await
        .map(|_| ()));
        match result {
            Ok(()) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Makes the `next` key `current` and retires the old one, atomically. `false` when there is no
    /// `next` key.
    pub async fn promote_next_sp_key(&self, tenant: &TenantId, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let promoted = on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let next: Option<(String,)> =
                sqlx::query_as("SELECT id FROM sp_keys WHERE tenant_id = $1 AND state = 'next'")
                    .bind(tenant.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
            match next {
                None => false,
                Some((next_id,)) => {
                    sqlx::query("UPDATE sp_keys SET state = 'retired', retired_at = $1 WHERE tenant_id = $2 AND state = 'current'")
                        .bind(unix(now))
                        .bind(tenant.as_str())
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("UPDATE sp_keys SET state = 'current' WHERE id = $1")
                        .bind(&next_id)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    true
                }
            }
        });
        Ok(promoted)
    }
}
