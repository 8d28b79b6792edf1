//! An identity provider configured for a tenant.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use super::metadata::{Binding, Endpoint};
use crate::tenants::TenantId;

/// An IdP's id: a UUID, parsed from paths and forms (anything else is simply not found).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdpId(String);

impl IdpId {
    pub fn generate() -> Self {
        IdpId(uuid::Uuid::new_v4().to_string())
    }
    pub fn parse(raw: &str) -> Option<Self> {
        uuid::Uuid::parse_str(raw).ok().map(|u| IdpId(u.to_string()))
    }
    pub fn from_stored(raw: String) -> Self {
        IdpId(raw)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for IdpId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdpSource {
    MetadataUrl,
    MetadataFile,
    Manual,
}

impl IdpSource {
    pub fn as_str(self) -> &'static str {
        match self {
            IdpSource::MetadataUrl => "metadata_url",
            IdpSource::MetadataFile => "metadata_file",
            IdpSource::Manual => "manual",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "metadata_url" => IdpSource::MetadataUrl,
            "metadata_file" => IdpSource::MetadataFile,
            "manual" => IdpSource::Manual,
            _ => return None,
        })
    }
}

pub fn binding_name(b: Binding) -> &'static str {
    match b {
        Binding::HttpRedirect => "redirect",
        Binding::HttpPost => "post",
    }
}

pub fn parse_binding(raw: &str) -> Option<Binding> {
    match raw {
        "redirect" => Some(Binding::HttpRedirect),
        "post" => Some(Binding::HttpPost),
        _ => None,
    }
}

/// The attributes tried, in order, when no email attribute is configured.
pub const DEFAULT_EMAIL_ATTRIBUTES: &[&str] = &[
    "http://wso2.org/claims/emailaddress",
    "email",
    "mail",
    "emailaddress",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    "urn:oid:0.9.2342.19200300.100.1.3",
];

/// Per-IdP sign-in settings. Stored as JSON; unknown keys are refused by the API, missing ones default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdpSettings {
    /// The attribute holding the email address; `None` = the first present of
    /// [`DEFAULT_EMAIL_ATTRIBUTES`], then an emailAddress-format NameID.
    pub email_attribute: Option<String>,
    /// Attributes for the given name, family name and display name.
    pub given_name_attribute: Option<String>,
    pub family_name_attribute: Option<String>,
    pub display_name_attribute: Option<String>,
    /// Accept RSA-SHA1 / SHA-1 signatures (old WSO2 defaults). Off by default.
    pub allow_sha1: bool,
    /// Sign AuthnRequests and LogoutRequests.
    pub sign_authn_requests: bool,
    /// Clock difference tolerated on the assertion's time conditions.
    pub clock_skew_secs: u32,
    /// Ask the IdP to re-authenticate the user (`ForceAuthn`).
    pub force_authn: bool,
    /// The NameID format to request (`None`: let the IdP choose).
    pub name_id_format: Option<String>,
    /// Email domains whose users sign in through this IdP (routing when a tenant has several).
    pub email_domains: Vec<String>,
    /// Accept unsolicited (IdP-initiated) responses.
    pub allow_idp_initiated: bool,
    /// Customer session length.
    pub session_hours: u32,
    /// Create a JSM customer for a first-time user.
    pub create_customers: bool,
}

impl Default for IdpSettings {
    fn default() -> Self {
        IdpSettings {
            email_attribute: None,
            given_name_attribute: None,
            family_name_attribute: None,
            display_name_attribute: None,
            allow_sha1: false,
            sign_authn_requests: true,
            clock_skew_secs: 180,
            force_authn: false,
            name_id_format: None,
            email_domains: vec![],
            allow_idp_initiated: false,
            session_hours: 8,
            create_customers: true,
        }
    }
}

impl IdpSettings {
    /// Checks ranges and shapes; the message names the field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.clock_skew_secs > 600 {
            return Err(("settings.clock_skew_secs", "must be between 0 and 600 seconds".into()));
        }
        if !(1..=24 * 30).contains(&self.session_hours) {
            return Err(("settings.session_hours", "must be between 1 and 720 hours".into()));
        }
        for d in &self.email_domains {
            let ok = !d.is_empty()
                && d.len() <= 253
                && d.contains('.')
                && d.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
            if !ok {
                return Err(("settings.email_domains", format!("`{d}` is not a domain name like example.com")));
            }
        }
        for (field, v) in [
            ("settings.email_attribute", &self.email_attribute),
            ("settings.given_name_attribute", &self.given_name_attribute),
            ("settings.family_name_attribute", &self.family_name_attribute),
            ("settings.display_name_attribute", &self.display_name_attribute),
            ("settings.name_id_format", &self.name_id_format),
        ] {
            if v.as_deref().is_some_and(|s| s.trim().is_empty() || s.len() > 512) {
                return Err((field, "must be a non-empty attribute name of at most 512 characters".into()));
            }
        }
        Ok(())
    }
}

/// A problem worth showing to the admin that does not stop the IdP from working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub code: String,
    pub message: String,
}

/// A trusted signing certificate of an IdP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpCertificate {
    pub fingerprint_sha256: String,
    pub der: Vec<u8>,
    pub subject: String,
    pub not_after: DateTime<Utc>,
    pub key_bits: u32,
}

impl From<&super::metadata::SigningCertificate> for IdpCertificate {
    fn from(c: &super::metadata::SigningCertificate) -> Self {
        IdpCertificate {
            fingerprint_sha256: c.fingerprint_sha256.clone(),
            der: c.der.clone(),
            subject: c.subject.clone(),
            not_after: c.not_after,
            key_bits: c.key_bits,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Idp {
    pub id: IdpId,
    pub tenant_id: TenantId,
    pub name: String,
    pub enabled: bool,
    pub entity_id: String,
    pub sso: Endpoint,
    pub slo: Option<Endpoint>,
    pub source: IdpSource,
    pub metadata_url: Option<String>,
    pub settings: IdpSettings,
    pub warnings: Vec<Warning>,
    /// Never empty: an IdP without a signing certificate is never saved (samael would skip
    /// verification).
    pub certificates: Vec<IdpCertificate>,
    pub metadata_valid_until: Option<DateTime<Utc>>,
    pub next_refresh_at: Option<DateTime<Utc>>,
    pub last_refresh_at: Option<DateTime<Utc>>,
    pub last_refresh_status: Option<String>,
    pub last_refresh_error: Option<String>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Idp {
    /// Does an email address belong to one of this IdP's domains?
    pub fn serves_email(&self, email: &str) -> bool {
        let Some((_, domain)) = email.rsplit_once('@') else { return false };
        self.settings.email_domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
    }
}
