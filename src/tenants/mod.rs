//! Tenants: the Jira sites this service is installed in. How a tenant got installed (Connect today)
//! is not this module's business.

use chrono::{DateTime, Utc};
use url::Url;

use crate::crypto::random;

/// Internal tenant id (never shown to customers).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantId(String);

impl TenantId {
    pub fn generate() -> Self {
        TenantId(uuid::Uuid::new_v4().to_string())
    }
    pub fn from_stored(raw: String) -> Self {
        TenantId(raw)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The tenant id that appears in customer-facing URLs (`/t/{public id}/...`): 16 random URL-safe
/// characters, so it reveals nothing about the site.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PublicTenantId(String);

impl PublicTenantId {
    pub fn generate() -> Self {
        PublicTenantId(random::token::<12>())
    }

    pub fn parse(raw: &str) -> Option<Self> {
        (raw.len() == 16 && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
            .then(|| PublicTenantId(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PublicTenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantStatus {
    Installed,
    Enabled,
    Disabled,
    Uninstalled,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Installed => "installed",
            TenantStatus::Enabled => "enabled",
            TenantStatus::Disabled => "disabled",
            TenantStatus::Uninstalled => "uninstalled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "installed" => TenantStatus::Installed,
            "enabled" => TenantStatus::Enabled,
            "disabled" => TenantStatus::Disabled,
            "uninstalled" => TenantStatus::Uninstalled,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: TenantId,
    pub public_id: PublicTenantId,
    pub status: TenantStatus,
    /// The site's API base URL (`https://acme.atlassian.net`).
    pub product_base_url: Url,
    /// Where links for people should point (a custom domain when the site has one).
    pub display_url: Option<Url>,
    /// The JSM help center's URL (`displayUrlServicedeskHelpCenter`).
    pub help_center_url: Option<Url>,
    pub product_type: Option<String>,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub uninstalled_at: Option<DateTime<Utc>>,
}

impl Tenant {
    /// Uninstalled tenants are kept for a while but serve nothing.
    pub fn is_active(&self) -> bool {
        self.status != TenantStatus::Uninstalled
    }

    /// A short name for the site, for pages: its host name.
    pub fn site_name(&self) -> String {
        self.display_url.as_ref().unwrap_or(&self.product_base_url).host_str().unwrap_or("your Jira site").to_string()
    }

    /// The origin of the Jira site, for `frame-ancestors`.
    pub fn site_origins(&self) -> Vec<String> {
        let mut origins = vec![self.product_base_url.origin().ascii_serialization()];
        if let Some(d) = &self.display_url {
            let o = d.origin().ascii_serialization();
            if !origins.contains(&o) {
                origins.push(o);
            }
        }
        origins
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_ids_are_16_url_safe_chars_and_parse_back() {
        let id = PublicTenantId::generate();
        assert_eq!(id.as_str().len(), 16);
        assert_eq!(PublicTenantId::parse(id.as_str()), Some(id));
        assert_eq!(PublicTenantId::parse("short"), None);
        assert_eq!(PublicTenantId::parse("../../etc/passwd"), None);
        assert_eq!(PublicTenantId::parse("aaaaaaaaaaaaaaa!"), None);
    }
}
