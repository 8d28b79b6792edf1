//! The customer helpdesk's storage: the service account's API token (sealed), the cached portal
//! directory, the customers added to service desks, and the JSM account id of a session.

use chrono::{DateTime, Utc};

use super::{Store, StoreError, from_unix, on_pool, unix};
use crate::crypto::Sealed;
use crate::tenants::TenantId;

/// The service account's API token as stored. The token itself stays sealed.
#[derive(Debug, Clone)]
pub struct StoredApiToken {
    pub email: String,
    pub api_token: Sealed,
    pub account_id: Option<String>,
    pub display_name: Option<String>,
    /// `ok` or `failing`.
    pub status: String,
    pub status_reason: Option<String>,
    pub failing_since: Option<DateTime<Utc>>,
    pub last_checked_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A token that Jira just accepted.
pub struct NewApiToken<'a> {
    pub email: &'a str,
    pub api_token: Sealed,
    pub account_id: Option<&'a str>,
    pub display_name: Option<&'a str>,
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    email: String,
    api_token: String,
    account_id: Option<String>,
    display_name: Option<String>,
    status: String,
    status_reason: Option<String>,
    failing_since: Option<i64>,
    last_checked_at: i64,
    created_at: i64,
    updated_at: i64,
}

impl Store {
    pub async fn portal_api_token(&self, tenant: &TenantId) -> Result<Option<StoredApiToken>, StoreError> {
        let row: Option<TokenRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT email, api_token, account_id, display_name, status, status_reason, failing_since, last_checked_at, \
             created_at, updated_at FROM portal_api_tokens WHERE tenant_id = $1",
        )
        .bind(tenant.as_str())
        .fetch_optional(p)
        .await?);
        Ok(row.map(|r| StoredApiToken {
            email: r.email,
            api_token: Sealed::from_stored(r.api_token),
            account_id: r.account_id,
            display_name: r.display_name,
            status: r.status,
            status_reason: r.status_reason,
            failing_since: r.failing_since.map(from_unix),
            last_checked_at: from_unix(r.last_checked_at),
            created_at: from_unix(r.created_at),
            updated_at: from_unix(r.updated_at),
        }))
    }

    /// Stores (or replaces) the tenant's token, as just checked: status `ok`.
    pub async fn save_portal_api_token(
        &self,
        tenant: &TenantId,
        t: &NewApiToken<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, p => sqlx::query(
            "INSERT INTO portal_api_tokens (tenant_id, email, api_token, account_id, display_name, status, status_reason, \
             failing_since, last_checked_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'ok', NULL, NULL, $6, $6, $6) \
             ON CONFLICT (tenant_id) DO UPDATE SET email = excluded.email, api_token = excluded.api_token, \
             account_id = excluded.account_id, display_name = excluded.display_name, status = 'ok', status_reason = NULL, \
             failing_since = NULL, last_checked_at = excluded.last_checked_at, updated_at = excluded.updated_at",
        )
        .bind(tenant.as_str())
        .bind(t.email)
        .bind(t.api_token.as_stored())
        .bind(t.account_id)
        .bind(t.display_name)
        .bind(unix(now))
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    pub async fn delete_portal_api_token(&self, tenant: &TenantId) -> Result<bool, StoreError> {
        let n = on_pool!(self, p => sqlx::query("DELETE FROM portal_api_tokens WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// The stored token (exactly this one: `sealed`) passed a check again.
    pub async fn mark_portal_api_token_ok(
        &self,
        tenant: &TenantId,
        sealed: &Sealed,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, p => sqlx::query(
            "UPDATE portal_api_tokens SET status = 'ok', status_reason = NULL, failing_since = NULL, last_checked_at = $1, \
             updated_at = $1 WHERE tenant_id = $2 AND api_token = $3",
        )
        .bind(unix(now))
        .bind(tenant.as_str())
        .bind(sealed.as_stored())
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// Marks the stored token (exactly this one: a token replaced meanwhile is left alone) as failing.
    /// `true` when this changed something (it was fine, or failed for another reason), so that the
    /// caller records the event once rather than on every page.
    pub async fn mark_portal_api_token_failing(
        &self,
        tenant: &TenantId,
        sealed: &Sealed,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE portal_api_tokens SET status = 'failing', status_reason = $1, failing_since = COALESCE(failing_since, $2), \
             updated_at = $2 WHERE tenant_id = $3 AND api_token = $4 \
             AND (status <> 'failing' OR status_reason IS NULL OR status_reason <> $1)",
        )
        .bind(reason)
        .bind(unix(now))
        .bind(tenant.as_str())
        .bind(sealed.as_stored())
        .execute(p)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// The cached portal directory (JSON) and when it was fetched.
    pub async fn portal_directory(&self, tenant: &TenantId) -> Result<Option<(DateTime<Utc>, String)>, StoreError> {
        let row: Option<(i64, String)> = on_pool!(self, p => sqlx::query_as(
            "SELECT fetched_at, body FROM portal_directories WHERE tenant_id = $1",
        )
        .bind(tenant.as_str())
        .fetch_optional(p)
        .await?);
        Ok(row.map(|(at, body)| (from_unix(at), body)))
    }

    pub async fn save_portal_directory(
        &self,
        tenant: &TenantId,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, p => sqlx::query(
            "INSERT INTO portal_directories (tenant_id, fetched_at, body) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id) DO UPDATE SET fetched_at = excluded.fetched_at, body = excluded.body",
        )
        .bind(tenant.as_str())
        .bind(unix(now))
        .bind(body)
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    pub async fn delete_portal_directory(&self, tenant: &TenantId) -> Result<(), StoreError> {
        on_pool!(self, p => sqlx::query("DELETE FROM portal_directories WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .execute(p)
            .await
            .map(|_| ())?);
        Ok(())
    }

    /// When this service last added the customer to the service desk, if ever.
    pub async fn desk_customer_added_at(
        &self,
        tenant: &TenantId,
        account_id: &str,
        service_desk_id: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<i64> = on_pool!(self, p => sqlx::query_scalar(
            "SELECT added_at FROM portal_desk_customers WHERE tenant_id = $1 AND account_id = $2 AND service_desk_id = $3",
        )
        .bind(tenant.as_str())
        .bind(account_id)
        .bind(service_desk_id)
        .fetch_optional(p)
        .await?);
        Ok(at.map(from_unix))
    }

    pub async fn record_desk_customer(
        &self,
        tenant: &TenantId,
        account_id: &str,
        service_desk_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, p => sqlx::query(
            "INSERT INTO portal_desk_customers (tenant_id, account_id, service_desk_id, added_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, account_id, service_desk_id) DO UPDATE SET added_at = excluded.added_at",
        )
        .bind(tenant.as_str())
        .bind(account_id)
        .bind(service_desk_id)
        .bind(unix(now))
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// Remembers the JSM account of a customer's session (this tenant's session only).
    pub async fn set_session_account_id(
        &self,
        tenant: &TenantId,
        token_hash: &str,
        account_id: &str,
    ) -> Result<bool, StoreError> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE customer_sessions SET account_id = $1 WHERE token_hash = $2 AND tenant_id = $3",
        )
        .bind(account_id)
        .bind(token_hash)
        .bind(tenant.as_str())
        .execute(p)
        .await?
        .rows_affected());
        Ok(n == 1)
    }
}
