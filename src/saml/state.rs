//! SAML state shared by requests: the parsed IdP signing configuration, cached per IdP version so
//! certificates are decoded once, not on every response.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::idp::IdpId;

/// A cached value and the IdP version (`updated_at`) it was derived from.
type Versioned<T> = (DateTime<Utc>, Arc<T>);

/// A value derived from an IdP's configuration, valid while the IdP's `updated_at` is unchanged.
pub struct PerIdpCache<T> {
    entries: Mutex<HashMap<IdpId, Versioned<T>>>,
}

impl<T> Default for PerIdpCache<T> {
    fn default() -> Self {
        PerIdpCache { entries: Mutex::new(HashMap::new()) }
    }
}

impl<T> PerIdpCache<T> {
    pub fn get_or_try_insert<E>(
        &self,
        id: &IdpId,
        version: DateTime<Utc>,
        build: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        if let Some((v, value)) = self.entries.lock().expect("cache lock").get(id)
            && *v == version
        {
            return Ok(value.clone());
        }
        let value = Arc::new(build()?);
        let mut entries = self.entries.lock().expect("cache lock");
        if entries.len() > 10_000 {
            entries.clear();
        }
        entries.insert(id.clone(), (version, value.clone()));
        Ok(value)
    }
}
