//! The moving parts of a sign-in: pending AuthnRequests, the replay cache, customer sessions.

use chrono::{DateTime, Utc};

use super::{Store, StoreError, from_unix, on_pool, unix};
use crate::saml::idp::IdpId;
use crate::tenants::TenantId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRequest {
    pub id: String,
    pub tenant_id: TenantId,
    pub idp_id: IdpId,
    pub return_to: String,
    pub test_mode: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct PendingRow {
    id: String,
    tenant_id: String,
    idp_id: String,
    return_to: String,
    test_mode: bool,
    created_at: i64,
}

impl From<PendingRow> for PendingRequest {
    fn from(r: PendingRow) -> Self {
        PendingRequest {
            id: r.id,
            tenant_id: TenantId::from_stored(r.tenant_id),
            idp_id: IdpId::from_stored(r.idp_id),
            return_to: r.return_to,
            test_mode: r.test_mode,
            created_at: from_unix(r.created_at),
        }
    }
}

/// A customer's session as stored (the token itself is never stored, only its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerSession {
    pub tenant_id: TenantId,
    pub idp_id: IdpId,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub name_id: String,
    pub name_id_format: Option<String>,
    pub session_index: Option<String>,
    pub attributes: serde_json::Value,
    pub account_id: Option<String>,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    tenant_id: String,
    idp_id: String,
    email: Option<String>,
    display_name: Option<String>,
    name_id: String,
    name_id_format: Option<String>,
    session_index: Option<String>,
    attributes: String,
    account_id: Option<String>,
    csrf_token: String,
    created_at: i64,
    expires_at: i64,
}

const PENDING_COLUMNS: &str = "id, tenant_id, idp_id, return_to, test_mode, created_at";

impl Store {
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_authn_request(
        &self,
        id: &str,
        tenant: &TenantId,
        idp: &IdpId,
        browser_handle: &str,
        return_to: &str,
        test_mode: bool,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, p => sqlx::query(
            "INSERT INTO authn_requests (id, tenant_id, idp_id, browser_handle, return_to, test_mode, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(tenant.as_str())
        .bind(idp.as_str())
        .bind(browser_handle)
        .bind(return_to)
        .bind(test_mode)
        .bind(unix(now))
        .bind(unix(expires_at))
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// The unexpired requests this browser has pending at this tenant.
    pub async fn pending_requests(
        &self,
        tenant: &TenantId,
        browser_handle: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<PendingRequest>, StoreError> {
        let sql = format!(
            "SELECT {PENDING_COLUMNS} FROM authn_requests WHERE tenant_id = $1 AND browser_handle = $2 AND expires_at > $3 \
             ORDER BY created_at DESC LIMIT 20"
        );
        let rows: Vec<PendingRow> = on_pool!(self, p => sqlx::query_as(&sql)
            .bind(tenant.as_str())
            .bind(browser_handle)
            .bind(unix(now))
            .fetch_all(p)
            .await?);
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Consumes a pending request: `true` for the one caller that deleted it.
    pub async fn consume_authn_request(
        &self,
        id: &str,
        browser_handle: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = on_pool!(self, p => sqlx::query(
            "DELETE FROM authn_requests WHERE id = $1 AND browser_handle = $2 AND expires_at > $3",
        )
        .bind(id)
        .bind(browser_handle)
        .bind(unix(now))
        .execute(p)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Records an assertion ID as used; `false` if it already was (a replay), across every instance
    /// sharing this database.
    pub async fn mark_assertion_used(
        &self,
        idp: &IdpId,
        assertion_id: &str,
        keep_until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = on_pool!(self, p => sqlx::query(
            "INSERT INTO used_assertions (idp_id, assertion_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(idp.as_str())
        .bind(assertion_id)
        .bind(unix(keep_until))
        .execute(p)
        .await
        .map(|_| ()));
        match result {
            Ok(()) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn insert_session(&self, token_hash: &str, s: &CustomerSession) -> Result<(), StoreError> {
        on_pool!(self, p => sqlx::query(
            "INSERT INTO customer_sessions (token_hash, tenant_id, idp_id, email, display_name, name_id, name_id_format, \
             session_index, attributes, account_id, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(token_hash)
        .bind(s.tenant_id.as_str())
        .bind(s.idp_id.as_str())
        .bind(s.email.as_deref())
        .bind(s.display_name.as_deref())
        .bind(&s.name_id)
        .bind(s.name_id_format.as_deref())
        .bind(s.session_index.as_deref())
        .bind(s.attributes.to_string())
        .bind(s.account_id.as_deref())
        .bind(&s.csrf_token)
        .bind(unix(s.created_at))
        .bind(unix(s.expires_at))
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// A live session of this tenant.
    pub async fn find_session(
        &self,
        tenant: &TenantId,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<CustomerSession>, StoreError> {
        let row: Option<SessionRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT tenant_id, idp_id, email, display_name, name_id, name_id_format, session_index, attributes, account_id, \
             csrf_token, created_at, expires_at FROM customer_sessions WHERE token_hash = $1 AND tenant_id = $2 AND expires_at > $3",
        )
        .bind(token_hash)
        .bind(tenant.as_str())
        .bind(unix(now))
        .fetch_optional(p)
        .await?);
        Ok(row.map(|r| CustomerSession {
            tenant_id: TenantId::from_stored(r.tenant_id),
            idp_id: IdpId::from_stored(r.idp_id),
            email: r.email,
            display_name: r.display_name,
            name_id: r.name_id,
            name_id_format: r.name_id_format,
            session_index: r.session_index,
            attributes: serde_json::from_str(&r.attributes).unwrap_or(serde_json::Value::Null),
            account_id: r.account_id,
            csrf_token: r.csrf_token,
            created_at: from_unix(r.created_at),
            expires_at: from_unix(r.expires_at),
        }))
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        on_pool!(self, p => sqlx::query("DELETE FROM customer_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(p)
            .await
            .map(|_| ())?);
        Ok(())
    }

    /// Ends the sessions of a subject (single logout from the IdP): by NameID, and by SessionIndex
    /// when the IdP names one. Returns how many ended.
    pub async fn delete_sessions_of_subject(
        &self,
        tenant: &TenantId,
        idp: &IdpId,
        name_id: &str,
        session_indexes: &[String],
    ) -> Result<u64, StoreError> {
        let mut total = 0;
        if session_indexes.is_empty() {
            total = on_pool!(self, p => sqlx::query(
                "DELETE FROM customer_sessions WHERE tenant_id = $1 AND idp_id = $2 AND name_id = $3",
            )
            .bind(tenant.as_str())
            .bind(idp.as_str())
            .bind(name_id)
            .execute(p)
            .await?
            .rows_affected());
        }
        for index in session_indexes {
            total += on_pool!(self, p => sqlx::query(
                "DELETE FROM customer_sessions WHERE tenant_id = $1 AND idp_id = $2 AND name_id = $3 AND session_index = $4",
            )
            .bind(tenant.as_str())
            .bind(idp.as_str())
            .bind(name_id)
            .bind(index)
            .execute(p)
            .await?
            .rows_affected());
        }
        Ok(total)
    }

    /// Deletes expired pending requests, replay-cache entries and sessions.
    pub async fn purge_expired_saml_state(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut total = 0;
        for table in ["authn_requests", "used_assertions", "customer_sessions"] {
            let sql = format!("DELETE FROM {table} WHERE expires_at <= $1");
            total += on_pool!(self, p => sqlx::query(&sql).bind(unix(now)).execute(p).await?.rows_affected());
        }
        Ok(total)
    }
}
