//! IdP configurations. Every query is scoped by tenant: an id from another tenant is simply not found.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};

use super::{Store, StoreError, from_unix, on_pool, unix};
use crate::saml::idp::{Endpoint, Idp, IdpCertificate, IdpId, IdpSource, parse_binding};
use crate::tenants::TenantId;

const IDP_COLUMNS: &str = "id, tenant_id, name, enabled, entity_id, sso_url, sso_binding, slo_url, slo_binding, source, \
     metadata_url, settings, warnings, metadata_valid_until, next_refresh_at, last_refresh_at, last_refresh_status, \
     last_refresh_error, last_login_at, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct IdpRow {
    id: String,
    tenant_id: String,
    name: String,
    enabled: bool,
    entity_id: String,
    sso_url: String,
    sso_binding: String,
    slo_url: Option<String>,
    slo_binding: Option<String>,
    source: String,
    metadata_url: Option<String>,
    settings: String,
    warnings: String,
    metadata_valid_until: Option<i64>,
    next_refresh_at: Option<i64>,
    last_refresh_at: Option<i64>,
    last_refresh_status: Option<String>,
    last_refresh_error: Option<String>,
    last_login_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct CertRow {
    idp_id: String,
    fingerprint_sha256: String,
    der_base64: String,
    subject: String,
    not_after: i64,
    key_bits: i64,
}

fn corrupt(id: &str, what: &str) -> StoreError {
    StoreError::Corrupt(format!("IdP {id}: {what}"))
}

fn to_idp(r: IdpRow, certs: Vec<CertRow>) -> Result<Idp, StoreError> {
    let binding = |raw: &str| parse_binding(raw).ok_or_else(|| corrupt(&r.id, "bad binding"));
    let certificates = certs
        .into_iter()
        .map(|c| {
            Ok(IdpCertificate {
                der: STANDARD.decode(&c.der_base64).map_err(|_| corrupt(&c.idp_id, "bad certificate"))?,
                fingerprint_sha256: c.fingerprint_sha256,
                subject: c.subject,
                not_after: from_unix(c.not_after),
                key_bits: c.key_bits as u32,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Idp {
        sso: Endpoint { binding: binding(&r.sso_binding)?, location: r.sso_url.clone() },
        slo: match (&r.slo_url, &r.slo_binding) {
            (Some(url), Some(b)) => Some(Endpoint { binding: binding(b)?, location: url.clone() }),
            _ => None,
        },
        source: IdpSource::parse(&r.source).ok_or_else(|| corrupt(&r.id, "bad source"))?,
        settings: serde_json::from_str(&r.settings).map_err(|e| corrupt(&r.id, &format!("bad settings ({e})")))?,
        warnings: serde_json::from_str(&r.warnings).map_err(|e| corrupt(&r.id, &format!("bad warnings ({e})")))?,
        certificates,
        tenant_id: TenantId::from_stored(r.tenant_id),
        name: r.name,
        enabled: r.enabled,
        entity_id: r.entity_id,
        metadata_url: r.metadata_url,
        metadata_valid_until: r.metadata_valid_until.map(from_unix),
        next_refresh_at: r.next_refresh_at.map(from_unix),
        last_refresh_at: r.last_refresh_at.map(from_unix),
        last_refresh_status: r.last_refresh_status,
        last_refresh_error: r.last_refresh_error,
        last_login_at: r.last_login_at.map(from_unix),
        created_at: from_unix(r.created_at),
        updated_at: from_unix(r.updated_at),
        id: IdpId::from_stored(r.id),
    })
}

/// Why an IdP could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum SaveIdpError {
    #[error("this site already has an identity provider with entity ID `{0}`")]
    DuplicateEntityId(String),
    #[error("an identity provider needs at least one signing certificate")]
    NoCertificate,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    pub async fn list_idps(&self, tenant: &TenantId) -> Result<Vec<Idp>, StoreError> {
        let sql = format!("SELECT {IDP_COLUMNS} FROM idps WHERE tenant_id = $1 ORDER BY created_at, id");
        let rows: Vec<IdpRow> = on_pool!(self, p => sqlx::query_as(&sql).bind(tenant.as_str()).fetch_all(p).await?);
        let certs: Vec<CertRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT c.idp_id, c.fingerprint_sha256, c.der_base64, c.subject, c.not_after, c.key_bits \
             FROM idp_certificates c JOIN idps i ON i.id = c.idp_id WHERE i.tenant_id = $1 ORDER BY c.added_at, c.fingerprint_sha256",
        )
        .bind(tenant.as_str())
        .fetch_all(p)
        .await?);
        let mut certs_by_idp: std::collections::HashMap<String, Vec<CertRow>> = std::collections::HashMap::new();
        for c in certs {
            certs_by_idp.entry(c.idp_id.clone()).or_default().push(c);
        }
        rows.into_iter()
            .map(|r| {
                let certs = certs_by_idp.remove(&r.id).unwrap_or_default();
                to_idp(r, certs)
            })
            .collect()
    }

    pub async fn find_idp(&self, tenant: &TenantId, id: &IdpId) -> Result<Option<Idp>, StoreError> {
        let sql = format!("SELECT {IDP_COLUMNS} FROM idps WHERE tenant_id = $1 AND id = $2");
        let row: Option<IdpRow> =
            on_pool!(self, p => sqlx::query_as(&sql).bind(tenant.as_str()).bind(id.as_str()).fetch_optional(p).await?);
        let Some(row) = row else { return Ok(None) };
        let certs: Vec<CertRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT idp_id, fingerprint_sha256, der_base64, subject, not_after, key_bits FROM idp_certificates \
             WHERE idp_id = $1 ORDER BY added_at, fingerprint_sha256",
        )
        .bind(id.as_str())
        .fetch_all(p)
        .await?);
        to_idp(row, certs).map(Some)
    }

    /// Inserts or replaces an IdP and its certificates in one transaction. Certificates that stay keep
    /// their `added_at`; removed ones are deleted (retired).
    pub async fn save_idp(&self, idp: &Idp, now: DateTime<Utc>) -> Result<(), SaveIdpError> {
        if idp.certificates.is_empty() {
            return Err(SaveIdpError::NoCertificate);
        }
        let settings = serde_json::to_string(&idp.settings).expect("settings serialize");
        let warnings = serde_json::to_string(&idp.warnings).expect("warnings serialize");
        let now = unix(now);
        let result: Result<(), sqlx::Error> = on_pool!(self, p => async {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO idps (id, tenant_id, name, enabled, entity_id, sso_url, sso_binding, slo_url, slo_binding, \
                 source, metadata_url, settings, warnings, metadata_valid_until, next_refresh_at, last_refresh_at, \
                 last_refresh_status, last_refresh_error, last_login_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) \
                 ON CONFLICT (id) DO UPDATE SET name = $3, enabled = $4, entity_id = $5, sso_url = $6, sso_binding = $7, \
                 slo_url = $8, slo_binding = $9, source = $10, metadata_url = $11, settings = $12, warnings = $13, \
                 metadata_valid_until = $14, next_refresh_at = $15, last_refresh_at = $16, last_refresh_status = $17, \
                 last_refresh_error = $18, last_login_at = $19, updated_at = $21 WHERE idps.tenant_id = $2",
            )
            .bind(idp.id.as_str())
            .bind(idp.tenant_id.as_str())
            .bind(&idp.name)
            .bind(idp.enabled)
            .bind(&idp.entity_id)
            .bind(&idp.sso.location)
            .bind(crate::saml::idp::binding_name(idp.sso.binding))
            .bind(idp.slo.as_ref().map(|e| e.location.clone()))
            .bind(idp.slo.as_ref().map(|e| crate::saml::idp::binding_name(e.binding)))
            .bind(idp.source.as_str())
            .bind(idp.metadata_url.as_deref())
            .bind(&settings)
            .bind(&warnings)
            .bind(idp.metadata_valid_until.map(unix))
            .bind(idp.next_refresh_at.map(unix))
            .bind(idp.last_refresh_at.map(unix))
            .bind(idp.last_refresh_status.as_deref())
            .bind(idp.last_refresh_error.as_deref())
            .bind(idp.last_login_at.map(unix))
            .bind(unix(idp.created_at))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let keep: Vec<&str> = idp.certificates.iter().map(|c| c.fingerprint_sha256.as_str()).collect();
            let existing: Vec<(String,)> = sqlx::query_as("SELECT fingerprint_sha256 FROM idp_certificates WHERE idp_id = $1")
                .bind(idp.id.as_str())
                .fetch_all(&mut *tx)
                .await?;
            for (fp,) in &existing {
                if !keep.contains(&fp.as_str()) {
                    sqlx::query("DELETE FROM idp_certificates WHERE idp_id = $1 AND fingerprint_sha256 = $2")
                        .bind(idp.id.as_str())
                        .bind(fp)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            for (i, c) in idp.certificates.iter().enumerate() {
                if existing.iter().any(|(fp,)| *fp == c.fingerprint_sha256) {
                    continue;
                }
                sqlx::query(
                    "INSERT INTO idp_certificates (idp_id, fingerprint_sha256, der_base64, subject, not_after, key_bits, added_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(idp.id.as_str())
                .bind(&c.fingerprint_sha256)
                .bind(STANDARD.encode(&c.der))
                .bind(&c.subject)
                .bind(unix(c.not_after))
                .bind(i64::from(c.key_bits))
                .bind(now + i as i64)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        }.await);
        match result {
            Ok(()) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(SaveIdpError::DuplicateEntityId(idp.entity_id.clone()))
            }
            Err(e) => Err(SaveIdpError::Store(e.into())),
        }
    }

    /// Deletes an IdP of this tenant; `false` when there is none with this id.
    pub async fn delete_idp(&self, tenant: &TenantId, id: &IdpId) -> Result<bool, StoreError> {
        let n = on_pool!(self, p => sqlx::query("DELETE FROM idps WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Claims the IdPs whose metadata URL is due for a refresh, across tenants (the refresh task). Each
    /// due row is claimed by moving its `next_refresh_at` ten minutes on, only if nobody moved it
    /// first: with several replicas, each IdP is refreshed by one of them. The refresh then sets the
    /// real next time.
    pub async fn idps_due_for_refresh(&self, now: DateTime<Utc>) -> Result<Vec<(TenantId, IdpId)>, StoreError> {
        let rows: Vec<(String, String, i64)> = on_pool!(self, p => sqlx::query_as(
            "SELECT i.tenant_id, i.id, i.next_refresh_at FROM idps i JOIN tenants t ON t.id = i.tenant_id \
             WHERE i.source = 'metadata_url' AND i.next_refresh_at IS NOT NULL AND i.next_refresh_at <= $1 \
             AND t.status <> 'uninstalled' ORDER BY i.next_refresh_at LIMIT 50",
        )
        .bind(unix(now))
        .fetch_all(p)
        .await?);
        let lease = unix(now) + 600;
        let mut claimed = Vec::new();
        for (tenant, id, due) in rows {
            let won = on_pool!(self, p => sqlx::query(
                "UPDATE idps SET next_refresh_at = $1 WHERE id = $2 AND next_refresh_at = $3",
            )
            .bind(lease)
            .bind(&id)
            .bind(due)
            .execute(p)
            .await?
            .rows_affected());
            if won == 1 {
                claimed.push((TenantId::from_stored(tenant), IdpId::from_stored(id)));
            }
        }
        Ok(claimed)
    }

    /// Records a metadata refresh's outcome.
    pub async fn record_idp_refresh(
        &self,
        idp: &IdpId,
        status: &str,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, p => sqlx::query(
            "INSERT INTO idp_refreshes (id, idp_id, occurred_at, status, message) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(idp.as_str())
        .bind(unix(now))
        .bind(status)
        .bind(message)
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    pub async fn touch_idp_login(&self, idp: &IdpId, now: DateTime<Utc>) -> Result<(), StoreError> {
        on_pool!(self, p => sqlx::query("UPDATE idps SET last_login_at = $1 WHERE id = $2")
            .bind(unix(now))
            .bind(idp.as_str())
            .execute(p)
            .await
            .map(|_| ())?);
        Ok(())
    }
}
