//! Login events: every sign-in, failure and test, with the precise reason, for the tenant's admins.

use chrono::{DateTime, Utc};

use super::{Store, StoreError, from_unix, on_pool, unix};
use crate::saml::idp::IdpId;
use crate::tenants::TenantId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginEvent {
    pub id: String,
    /// Orders events; `before` cursors of the admin API are `seq` values.
    pub seq: i64,
    pub tenant_id: TenantId,
    pub idp_id: Option<IdpId>,
    pub occurred_at: DateTime<Utc>,
    /// `success`, `failure`, `test_success`, `test_failure`, `logout`, `warning`.
    pub outcome: String,
    pub reason_code: Option<String>,
    pub message: String,
    /// JSON: which check, expected vs received, clock difference, certificate fingerprint…
    pub details: serde_json::Value,
    pub name_id: Option<String>,
    pub email: Option<String>,
}

impl LoginEvent {
    pub fn new(
        tenant_id: TenantId,
        idp_id: Option<IdpId>,
        outcome: &str,
        message: impl Into<String>,
        now: DateTime<Utc>,
    ) -> Self {
        LoginEvent {
            id: uuid::Uuid::new_v4().to_string(),
            // Microseconds times four plus a random tail: ordered by time, two events of the same
            // microsecond (at a page boundary) almost surely differ, and the value stays below 2^53 so
            // JavaScript clients read the paging cursor exactly.
            seq: now.timestamp_micros() * 4 + i64::from(crate::crypto::random::bytes::<1>()[0] % 4),
            tenant_id,
            idp_id,
            occurred_at: now,
            outcome: outcome.to_string(),
            reason_code: None,
            message: message.into(),
            details: serde_json::Value::Object(Default::default()),
            name_id: None,
            email: None,
        }
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    seq: i64,
    tenant_id: String,
    idp_id: Option<String>,
    occurred_at: i64,
    outcome: String,
    reason_code: Option<String>,
    message: String,
    details: String,
    name_id: Option<String>,
    email: Option<String>,
}

/// Filters of the login activity list.
#[derive(Debug, Default, Clone)]
pub struct LoginEventFilter {
    pub before: Option<i64>,
    pub idp_id: Option<IdpId>,
    pub outcome: Option<String>,
    pub limit: u32,
}

impl Store {
    pub async fn insert_login_event(&self, e: &LoginEvent) -> Result<(), StoreError> {
        on_pool!(self, p => sqlx::query(
            "INSERT INTO login_events (id, seq, tenant_id, idp_id, occurred_at, outcome, reason_code, message, details, name_id, email) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&e.id)
        .bind(e.seq)
        .bind(e.tenant_id.as_str())
        .bind(e.idp_id.as_ref().map(|i| i.as_str().to_string()))
        .bind(unix(e.occurred_at))
        .bind(&e.outcome)
        .bind(e.reason_code.as_deref())
        .bind(&e.message)
        .bind(e.details.to_string())
        .bind(e.name_id.as_deref())
        .bind(e.email.as_deref())
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// The tenant's events, newest first.
    pub async fn list_login_events(
        &self,
        tenant: &TenantId,
        f: &LoginEventFilter,
    ) -> Result<Vec<LoginEvent>, StoreError> {
        let limit = i64::from(f.limit.clamp(1, 500));
        let rows: Vec<Row> = on_pool!(self, p => sqlx::query_as(
            "SELECT id, seq, tenant_id, idp_id, occurred_at, outcome, reason_code, message, details, name_id, email \
             FROM login_events WHERE tenant_id = $1 AND ($2 IS NULL OR seq < $2) AND ($3 IS NULL OR idp_id = $3) \
             AND ($4 IS NULL OR outcome = $4) ORDER BY seq DESC LIMIT $5",
        )
        .bind(tenant.as_str())
        .bind(f.before)
        .bind(f.idp_id.as_ref().map(|i| i.as_str().to_string()))
        .bind(f.outcome.as_deref())
        .bind(limit)
        .fetch_all(p)
        .await?);
        Ok(rows
            .into_iter()
            .map(|r| LoginEvent {
                id: r.id,
                seq: r.seq,
                tenant_id: TenantId::from_stored(r.tenant_id),
                idp_id: r.idp_id.map(IdpId::from_stored),
                occurred_at: from_unix(r.occurred_at),
                outcome: r.outcome,
                reason_code: r.reason_code,
                message: r.message,
                details: serde_json::from_str(&r.details).unwrap_or(serde_json::Value::Null),
                name_id: r.name_id,
                email: r.email,
            })
            .collect())
    }
}
