//! The helpdesk's page frame (header, navigation, who is signed in) and its URLs.

use crate::startup::AppState;
use crate::store::CustomerSession;
use crate::tenants::Tenant;

/// What every helpdesk page shows around its content.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub asset_base: String,
    pub site_name: String,
    /// The help center: every portal of the tenant.
    pub home_url: String,
    /// The portal the page belongs to: its name, home and "my requests" URLs.
    pub portal: Option<PortalNav>,
    /// Who is signed in.
    pub who: Option<String>,
    pub logout_url: Option<String>,
    /// This page again (for "Try again"; GET pages only).
    pub retry_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PortalNav {
    pub name: String,
    pub url: String,
    pub requests_url: String,
}

/// The customer-facing URLs of a tenant (paths, with the base URL's prefix).
#[derive(Debug, Clone)]
pub struct Urls {
    tenant_root: String,
}

impl Urls {
    pub fn new(state: &AppState, tenant: &Tenant) -> Self {
        Urls { tenant_root: format!("{}/t/{}", state.settings.base_url.path_prefix(), tenant.public_id) }
    }
    pub fn help_center(&self) -> String {
        format!("{}/portals", self.tenant_root)
    }
    pub fn email_sign_in(&self) -> String {
        format!("{}/portals/sign-in", self.tenant_root)
    }
    pub fn logout(&self) -> String {
        format!("{}/logout", self.tenant_root)
    }
    pub fn portal(&self, portal_id: &str) -> String {
        format!("{}/portal/{portal_id}", self.tenant_root)
    }
    pub fn create(&self, portal_id: &str, request_type_id: &str) -> String {
        format!("{}/portal/{portal_id}/create/{request_type_id}", self.tenant_root)
    }
    pub fn requests(&self, portal_id: &str) -> String {
        format!("{}/portal/{portal_id}/requests", self.tenant_root)
    }
    pub fn request(&self, portal_id: &str, key: &str) -> String {
        format!("{}/portal/{portal_id}/requests/{key}", self.tenant_root)
    }
    pub fn comment(&self, portal_id: &str, key: &str) -> String {
        format!("{}/portal/{portal_id}/requests/{key}/comment", self.tenant_root)
    }
}

impl Chrome {
    pub fn new(state: &AppState, tenant: &Tenant) -> Self {
        Chrome {
            asset_base: state.settings.base_url.as_str().to_string(),
            site_name: tenant.site_name(),
            home_url: Urls::new(state, tenant).help_center(),
            portal: None,
            who: None,
            logout_url: None,
            retry_url: None,
        }
    }

    pub fn signed_in(mut self, state: &AppState, tenant: &Tenant, session: &CustomerSession) -> Self {
        self.who = Some(display_name(session));
        self.logout_url = Some(Urls::new(state, tenant).logout());
        self
    }

    pub fn in_portal(mut self, urls: &Urls, portal_id: &str, name: &str) -> Self {
        self.portal = Some(PortalNav {
            name: name.to_string(),
            url: urls.portal(portal_id),
            requests_url: urls.requests(portal_id),
        });
        self
    }

    pub fn retry(mut self, url: String) -> Self {
        self.retry_url = Some(url);
        self
    }
}

/// How a customer is named on pages and in comments: display name, else email, else NameID.
pub fn display_name(session: &CustomerSession) -> String {
    session
        .display_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .or_else(|| session.email.clone())
        .unwrap_or_else(|| session.name_id.clone())
}
