//! The service provider of a tenant: its URLs, its keys, its metadata.

use askama::Template;
use chrono::{DateTime, Utc};

use super::sp_keys::{self, KeyState, SpKey};
use crate::config::BaseUrl;
use crate::startup::AppState;
use crate::store::{NewSpKey, StoreError, sealing_context};
use crate::tenants::{PublicTenantId, Tenant};

/// The URLs an IdP needs to know about this tenant's SP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpEndpoints {
    /// Entity ID = issuer = audience: the metadata URL.
    pub entity_id: String,
    pub acs_url: String,
    pub slo_url: String,
    pub metadata_url: String,
    pub login_url: String,
}

impl SpEndpoints {
    pub fn new(base: &BaseUrl, tenant: &PublicTenantId) -> Self {
        let t = |path: &str| base.join(&format!("/t/{tenant}{path}"));
        SpEndpoints {
            entity_id: t("/saml/metadata"),
            metadata_url: t("/saml/metadata"),
            acs_url: t("/saml/acs"),
            slo_url: t("/saml/slo"),
            login_url: t("/login"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpKeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot open the SP key: {0}")]
    Crypto(#[from] crate::crypto::CryptoError),
    #[error("cannot use the SP key: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    #[error("key generation failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// The keys in use: the current one signs; the next one (during a rollover) is published too.
#[derive(Debug, Clone)]
pub struct SpKeys {
    pub current: SpKey,
    pub next: Option<SpKey>,
}

pub fn sp_key_context(id: &str) -> String {
    sealing_context("sp_keys", "private_key", id)
}

async fn load(state: &AppState, tenant: &Tenant) -> Result<(Option<SpKey>, Option<SpKey>), SpKeyError> {
    let mut current = None;
    let mut next = None;
    for k in state.store.sp_keys(&tenant.id).await? {
        let pem = state.keyring.open(&k.private_key, &sp_key_context(&k.id))?;
        let key = SpKey::open(k.id, k.state, &pem, k.certificate_pem, k.fingerprint_sha256, k.not_after)?;
        match key.state {
            KeyState::Current => current = Some(key),
            KeyState::Next => next = Some(key),
            KeyState::Retired => {}
        }
    }
    Ok((current, next))
}

/// Generates and stores a key in `state` for the tenant; `false` when one already existed.
async fn create(
    state: &AppState,
    tenant: &Tenant,
    key_state: KeyState,
    now: DateTime<Utc>,
) -> Result<bool, SpKeyError> {
    let cn = state.settings.base_url.as_str().trim_start_matches("https://").trim_start_matches("http://").to_string();
    let generated = tokio::task::spawn_blocking(move || sp_keys::generate(&cn, now)).await??;
    let id = uuid::Uuid::new_v4().to_string();
    let sealed =
        state.keyring.seal(secrecy::ExposeSecret::expose_secret(&generated.private_key_pem), &sp_key_context(&id));
    Ok(state
        .store
        .insert_sp_key(
            &tenant.id,
            NewSpKey {
                id: &id,
                state: key_state,
                private_key: sealed,
                certificate_pem: &generated.certificate_pem,
                fingerprint_sha256: &generated.fingerprint_sha256,
                not_after: generated.not_after,
            },
            now,
        )
        .await?)
}

/// The tenant's keys, creating the current one on first use.
pub async fn keys(state: &AppState, tenant: &Tenant) -> Result<SpKeys, SpKeyError> {
    let (current, next) = load(state, tenant).await?;
    if let Some(current) = current {
        return Ok(SpKeys { current, next });
    }
    create(state, tenant, KeyState::Current, Utc::now()).await?;
    let (current, next) = load(state, tenant).await?;
    Ok(SpKeys { current: current.ok_or_else(|| StoreError::Corrupt("SP key vanished".into()))?, next })
}

/// Creates the `next` key (idempotent: an existing one is kept).
pub async fn create_next_key(state: &AppState, tenant: &Tenant) -> Result<SpKeys, SpKeyError> {
    keys(state, tenant).await?;
    create(state, tenant, KeyState::Next, Utc::now()).await?;
    keys(state, tenant).await
}

#[derive(Template)]
#[template(path = "saml/sp_metadata.xml")]
struct SpMetadata<'a> {
    endpoints: &'a SpEndpoints,
    certificates: Vec<String>,
    authn_requests_signed: bool,
}

/// The SP metadata document (our own template: samael's expires after 48 h and lies about signing).
pub fn metadata_xml(endpoints: &SpEndpoints, keys: &SpKeys) -> String {
    let mut certificates = vec![keys.current.certificate_base64()];
    if let Some(next) = &keys.next {
        certificates.push(next.certificate_base64());
    }
    SpMetadata { endpoints, certificates, authn_requests_signed: true }.render().expect("metadata template renders")
}
