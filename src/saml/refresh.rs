//! Metadata-URL IdPs: scheduled and on-demand refresh.
//!
//! A refresh downloads the metadata again and applies it with [`idp_import::apply_refresh`]: new
//! signing certificates are trusted as soon as they are published (key rollover), certificates no
//! longer published are retired, the SSO/SLO endpoints and warnings follow the document. Name,
//! enabled and settings never come from metadata. A refresh that fails (download error, refused
//! document, expired `validUntil`, a different entity ID) keeps the last good configuration and
//! records why. Every outcome goes to the refresh history (`record_idp_refresh`) and to the IdP's
//! `last_refresh_*` fields; `next_refresh_at` is rescheduled either way.

use std::time::Duration;

use actix_web::web;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use super::idp::{Idp, IdpSource};
use super::idp_import::{self, FetchPolicy, ImportError, RefreshChanges};
use crate::startup::AppState;
use crate::store::{SaveIdpError, Store, StoreError};

/// How often the background task looks for IdPs due for a refresh.
pub const TICK: Duration = Duration::from_secs(60);
/// IdPs refreshed at the same time by the background task.
const CONCURRENCY: usize = 4;

/// A successful refresh: the IdP as saved and what changed.
#[derive(Debug, Clone)]
pub struct Refreshed {
    pub idp: Idp,
    pub changes: RefreshChanges,
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// Only IdPs imported from a metadata URL can be refreshed.
    #[error("only identity providers imported from a metadata URL can be refreshed")]
    NotRefreshable,
    /// The IdP was deleted, or its metadata URL replaced, while the refresh ran; nothing was saved.
    #[error("the identity provider was changed or deleted while its metadata was being refreshed")]
    Superseded,
    /// The refresh failed; the last good configuration is kept and the failure recorded.
    #[error("{0}")]
    Failed(ImportError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<SaveIdpError> for RefreshError {
    fn from(e: SaveIdpError) -> Self {
        match e {
            SaveIdpError::Store(e) => RefreshError::Store(e),
            other => RefreshError::Store(StoreError::Corrupt(other.to_string())),
        }
    }
}

/// Refreshes one IdP now (the scheduled task and `POST /api/v1/idps/{id}/refresh`).
pub async fn refresh_idp(state: &AppState, idp: &Idp, now: DateTime<Utc>) -> Result<Refreshed, RefreshError> {
    refresh_idp_with(&state.store, FetchPolicy { allow_private: state.settings.allow_private_urls }, idp, now).await
}

/// [`refresh_idp`] with its dependencies spelled out.
pub async fn refresh_idp_with(
    store: &Store,
    policy: FetchPolicy,
    idp: &Idp,
    now: DateTime<Utc>,
) -> Result<Refreshed, RefreshError> {
    let (IdpSource::MetadataUrl, Some(raw_url)) = (idp.source, idp.metadata_url.as_deref()) else {
        return Err(RefreshError::NotRefreshable);
    };
    let outcome = async {
        let url = idp_import::metadata_url(raw_url, policy)?;
        let xml = idp_import::fetch_metadata(&url, policy).await?;
        idp_import::apply_refresh(idp, &xml, now)
    }
    .await;

    // Save onto the IdP as it is now: an admin may have renamed it or changed its settings meanwhile,
    // and a deleted IdP must not come back.
    let Some(fresh) = store.find_idp(&idp.tenant_id, &idp.id).await? else {
        return Err(RefreshError::Superseded);
    };
    if fresh.source != IdpSource::MetadataUrl || fresh.metadata_url != idp.metadata_url {
        return Err(RefreshError::Superseded);
    }

    match outcome {
        Ok((mut refreshed, changes)) => {
            refreshed.name = fresh.name;
            refreshed.enabled = fresh.enabled;
            refreshed.settings = fresh.settings;
            refreshed.last_login_at = fresh.last_login_at;
            store.save_idp(&refreshed, now).await?;
            store.record_idp_refresh(&refreshed.id, "ok", &changes.summary(), now).await?;
            if !changes.is_empty() {
                tracing::info!(idp = %refreshed.id, changes = %changes.summary(), "IdP metadata refreshed");
            }
            let saved = store.find_idp(&idp.tenant_id, &idp.id).await?.ok_or(RefreshError::Superseded)?;
            Ok(Refreshed { idp: saved, changes })
        }
        Err(failure) => {
            let mut kept = fresh;
            kept.last_refresh_at = Some(now);
            kept.last_refresh_status = Some("failed".into());
            kept.last_refresh_error = Some(format!("{}: {}", failure.code, failure.message));
            kept.next_refresh_at = Some(idp_import::next_refresh_after_failure(now, kept.metadata_valid_until));
            store.save_idp(&kept, now).await?;
            store
                .record_idp_refresh(&kept.id, "failed", &format!("{}: {}", failure.code, failure.message), now)
                .await?;
            tracing::warn!(idp = %kept.id, code = failure.code, error = %failure.message, "IdP metadata refresh failed; the last good configuration is kept");
            Err(RefreshError::Failed(failure))
        }
    }
}

/// Refreshes whatever is due, then sleeps [`TICK`]; forever.
pub async fn run(state: web::Data<AppState>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let policy = FetchPolicy { allow_private: state.settings.allow_private_urls };
        refresh_due(&state.store, policy, Utc::now()).await;
    }
}

/// One pass of the background task: refreshes every IdP whose `next_refresh_at` has come (of
/// installed tenants, at most 50 per pass, a few at a time).
pub async fn refresh_due(store: &Store, policy: FetchPolicy, now: DateTime<Utc>) {
    let due = match store.idps_due_for_refresh(now).await {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the IdPs due for a metadata refresh");
            return;
        }
    };
    futures_util::stream::iter(due)
        .for_each_concurrent(CONCURRENCY, |(tenant, id)| async move {
            let idp = match store.find_idp(&tenant, &id).await {
                Ok(Some(idp)) => idp,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(idp = %id, error = %e, "cannot load an IdP for its metadata refresh");
                    return;
                }
            };
            match refresh_idp_with(store, policy, &idp, now).await {
                Ok(_) | Err(RefreshError::Failed(_)) | Err(RefreshError::Superseded) => {}
                Err(e) => tracing::warn!(idp = %id, error = %e, "IdP metadata refresh could not be completed"),
            }
        })
        .await;
}
