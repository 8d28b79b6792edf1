//! Server-side admin check. Connect conditions run in the browser, so they protect nothing: every admin
//! page and admin API call asks Jira whether the user holds the ADMINISTER global permission (cached
//! for a minute).

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::auth::{AccountId, Verified};
use super::error::ConnectError;
use crate::startup::AppState;
use crate::tenants::TenantId;

const CACHE_SECONDS: i64 = 60;

#[derive(Default)]
pub struct AdminChecker {
    cache: Mutex<HashMap<(TenantId, AccountId), (bool, i64)>>,
}

impl AdminChecker {
    pub(super) async fn is_admin(
        &self,
        state: &AppState,
        verified: &Verified,
        account: &AccountId,
        now: DateTime<Utc>,
    ) -> Result<bool, ConnectError> {
        let key = (verified.tenant.id.clone(), account.clone());
        if let Some((answer, until)) = self.cache.lock().expect("cache lock").get(&key)
            && *until > now.timestamp()
        {
            return Ok(*answer);
        }
        #[derive(Deserialize)]
        struct Check {
            #[serde(default, rename = "globalPermissions")]
            global: Vec<String>,
        }
        let body = serde_json::json!({ "accountId": account.as_str(), "globalPermissions": ["ADMINISTER"] });
        let check: Check = state
            .jira
            .post_json(&verified.tenant.product_base_url, &verified.app_auth, "/rest/api/3/permissions/check", &body)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "admin permission check failed");
                ConnectError::Unavailable(
                    "Jira could not confirm your administrator rights just now; reload the page to try again".into(),
                )
            })?;
        let answer = check.global.iter().any(|p| p == "ADMINISTER");
        let mut cache = self.cache.lock().expect("cache lock");
        cache.retain(|_, (_, until)| *until > now.timestamp());
        cache.insert(key, (answer, now.timestamp() + CACHE_SECONDS));
        Ok(answer)
    }
}
