//! Turning what an admin gives the API (metadata XML, a metadata URL, or hand-entered fields) into an
//! [`Idp`], the SSRF-safe metadata download, and the pure part of a metadata refresh.
//!
//! Nothing here saves anything: callers save the returned [`Idp`] with `Store::save_idp` (one
//! transaction), so a refusal never leaves a half-imported IdP behind.
//!
//! # Metadata URLs
//!
//! Downloaded server-side with [`crate::net::guarded_client`]: `https` only (plain `http` only when
//! `allow_private_urls` is set, for tests), [`FETCH_TIMEOUT`] for the whole download including
//! redirects, at most [`MAX_METADATA_BYTES`] read (the body is streamed and the download stopped as
//! soon as it grows past the limit), at most [`MAX_REDIRECTS`] redirects, each target checked again
//! with [`crate::net::check_target`] (loopback, private and link-local addresses are refused unless
//! `allow_private_urls`; names are checked again when they are resolved).
//!
//! # Refresh schedule
//!
//! A metadata-URL IdP is refreshed every [`DEFAULT_REFRESH_INTERVAL`], sooner when the metadata's
//! `cacheDuration` is shorter, and before its `validUntil` (half-way between now and `validUntil`),
//! never more often than every [`MIN_REFRESH_INTERVAL`]. After a failure it is retried after
//! [`RETRY_AFTER_FAILURE`] (sooner if the last good metadata expires before that).

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use url::Url;

use super::idp::{Binding, Endpoint, Idp, IdpCertificate, IdpId, IdpSettings, IdpSource, Warning};
use super::metadata::{
    ImportWarning, MAX_METADATA_BYTES, MetadataError, certificate_warnings, parse_certificate, parse_idp_metadata,
    warning_codes,
};
use crate::net::{TargetError, check_target, guarded_client};
use crate::tenants::TenantId;

/// The whole metadata download, redirects included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Redirects followed when downloading metadata.
pub const MAX_REDIRECTS: usize = 3;
/// Refresh interval when the metadata asks for nothing shorter.
pub const DEFAULT_REFRESH_INTERVAL: chrono::Duration = chrono::Duration::hours(12);
/// Never refresh one IdP more often than this.
pub const MIN_REFRESH_INTERVAL: chrono::Duration = chrono::Duration::minutes(5);
/// When a failed refresh is tried again.
pub const RETRY_AFTER_FAILURE: chrono::Duration = chrono::Duration::hours(1);
/// Longest IdP name.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest entity ID or URL accepted from the admin.
pub const MAX_URL_CHARS: usize = 2048;

/// Why an IdP could not be imported or updated. Always the admin's input (or what it points to):
/// the API answers 422 with `code`, `message`, `field` and, for an aggregate that needs a choice,
/// the `candidates` entity IDs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ImportError {
    pub code: &'static str,
    pub message: String,
    /// The request member to correct (`metadata_xml`, `metadata_url`, `entity`, `certificate_pem`,
    /// `settings.clock_skew_secs`, …).
    pub field: Option<String>,
    /// IdP entity IDs to choose from (aggregates).
    pub candidates: Option<Vec<String>>,
}

impl ImportError {
    pub fn new(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        ImportError { code, message: message.into(), field: Some(field.to_string()), candidates: None }
    }

    /// A refusal from the metadata parser. `document_field` is the member the document came from
    /// (`metadata_xml` or `metadata_url`); the entity choice is the `entity` member.
    pub fn metadata(e: MetadataError, document_field: &str) -> Self {
        let field = match e.field() {
            Some("metadata_xml") => Some(document_field.to_string()),
            Some("entity_id") if document_field != "entity_id" => Some("entity".to_string()),
            other => other.map(str::to_string),
        };
        ImportError {
            code: e.code(),
            message: e.to_string(),
            field,
            candidates: e.candidates().map(<[String]>::to_vec),
        }
    }
}

fn warning(w: ImportWarning) -> Warning {
    Warning { code: w.code.to_string(), message: w.message }
}

// -------------------------------------------------------------------------------------------------
// API input

/// Deserializes a member that may be absent (`None`), `null` (`Some(None)`) or a value.
fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// `POST /api/v1/idps`: one of metadata XML, a metadata URL, or the manual fields.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateIdp {
    pub name: Option<String>,
    pub metadata_xml: Option<String>,
    pub metadata_url: Option<String>,
    /// The entity to use in an aggregate (`EntitiesDescriptor`).
    pub entity: Option<String>,
    pub entity_id: Option<String>,
    pub sso_url: Option<String>,
    pub slo_url: Option<String>,
    pub certificate_pem: Option<String>,
    pub enabled: Option<bool>,
    /// Merged over the defaults; unknown members are refused.
    pub settings: Option<serde_json::Value>,
}

/// `PUT /api/v1/idps/{id}`: every member optional; absent members are left as they are.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateIdp {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    /// Merged over the current settings; unknown members are refused.
    pub settings: Option<serde_json::Value>,
    /// Metadata sources: replace the document (the IdP becomes a metadata-file IdP).
    pub metadata_xml: Option<String>,
    /// Metadata sources: download from this URL now and on schedule.
    pub metadata_url: Option<String>,
    pub entity: Option<String>,
    /// Manual IdPs only.
    pub entity_id: Option<String>,
    pub sso_url: Option<String>,
    /// `null` or `""` removes the logout URL.
    #[serde(default, deserialize_with = "nullable")]
    pub slo_url: Option<Option<String>>,
    pub certificate_pem: Option<String>,
}

/// Where outgoing metadata downloads may go.
#[derive(Debug, Clone, Copy)]
pub struct FetchPolicy {
    pub allow_private: bool,
}

fn name(raw: &str) -> Result<String, ImportError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(ImportError::new("invalid_name", "name", "Give the identity provider a name (shown to admins)."));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(ImportError::new(
            "invalid_name",
            "name",
            format!("The name is longer than {MAX_NAME_CHARS} characters."),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ImportError::new("invalid_name", "name", "The name contains control characters."));
    }
    Ok(name.to_string())
}

/// Applies the members of `given` (a JSON object) over `base`, refusing unknown members and values
/// of the wrong type (naming the member), then checks ranges with [`IdpSettings::validate`].
pub fn merge_settings(base: &IdpSettings, given: Option<&serde_json::Value>) -> Result<IdpSettings, ImportError> {
    let Some(given) = given else { return Ok(base.clone()) };
    let serde_json::Value::Object(given) = given else {
        return Err(ImportError::new("invalid_settings", "settings", "`settings` must be a JSON object."));
    };
    let serde_json::Value::Object(mut merged) = serde_json::to_value(base).expect("settings serialize") else {
        unreachable!("settings serialize to an object")
    };
    for (key, value) in given {
        if !merged.contains_key(key) {
            let mut known: Vec<&String> = merged.keys().collect();
            known.sort();
            let known: Vec<&str> = known.into_iter().map(String::as_str).collect();
            return Err(ImportError::new(
                "invalid_settings",
                &format!("settings.{key}"),
                format!("Unknown setting `{key}`. The settings are: {}.", known.join(", ")),
            ));
        }
        let mut trial = serde_json::Value::Object(merged.clone());
        trial[key] = value.clone();
        if let Err(e) = serde_json::from_value::<IdpSettings>(trial) {
            return Err(ImportError::new(
                "invalid_settings",
                &format!("settings.{key}"),
                format!("settings.{key}: {e}"),
            ));
        }
        merged.insert(key.clone(), value.clone());
    }
    let settings: IdpSettings = serde_json::from_value(serde_json::Value::Object(merged))
        .map_err(|e| ImportError::new("invalid_settings", "settings", e.to_string()))?;
    settings.validate().map_err(|(field, message)| ImportError::new("invalid_settings", field, message))?;
    Ok(settings)
}

/// The same location rules as imported metadata (absolute http(s), a host, no credentials, no
/// fragment), plus a length limit and a full URL parse. `Ok(true)` for https.
fn http_url(raw: &str, field: &str, what: &str) -> Result<(String, bool), ImportError> {
    let s = raw.trim();
    let bad = |why: &str| ImportError::new("invalid_url", field, format!("The {what} {s:?} cannot be used: {why}."));
    if s.is_empty() {
        return Err(ImportError::new("invalid_url", field, format!("The {what} is required.")));
    }
    if s.chars().count() > MAX_URL_CHARS {
        return Err(bad(&format!("it is longer than {MAX_URL_CHARS} characters")));
    }
    let https = super::metadata::check_http_url(s).map_err(bad)?;
    let url = Url::parse(s).map_err(|e| bad(&format!("it is not an absolute URL ({e})")))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host name"));
    }
    Ok((s.to_string(), https))
}

fn entity_id(raw: &str) -> Result<String, ImportError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(ImportError::new(
            "invalid_entity_id",
            "entity_id",
            "The IdP's entity ID is required: it is compared with the Issuer of every response.",
        ));
    }
    if s.chars().count() > MAX_URL_CHARS || s.chars().any(char::is_control) {
        return Err(ImportError::new(
            "invalid_entity_id",
            "entity_id",
            format!("The entity ID must be at most {MAX_URL_CHARS} characters without control characters."),
        ));
    }
    Ok(s.to_string())
}

/// Checks a metadata URL before anything is downloaded.
pub fn metadata_url(raw: &str, policy: FetchPolicy) -> Result<Url, ImportError> {
    let (s, https) = http_url(raw, "metadata_url", "metadata URL")?;
    if !https && !policy.allow_private {
        return Err(ImportError::new(
            "invalid_url",
            "metadata_url",
            "The metadata URL must use https: metadata decides which keys are trusted, so it must not travel unprotected.",
        ));
    }
    let url = Url::parse(&s).map_err(|e| ImportError::new("invalid_url", "metadata_url", e.to_string()))?;
    check_target(&url, policy.allow_private).map_err(|e| target_error(&e))?;
    Ok(url)
}

fn target_error(e: &TargetError) -> ImportError {
    match e {
        TargetError::Scheme(_) => ImportError::new("invalid_url", "metadata_url", format!("The metadata URL {e}.")),
        TargetError::Private(_) => ImportError::new(
            "metadata_url_refused",
            "metadata_url",
            format!("The metadata URL cannot be downloaded: {e}. Use the IdP's public metadata URL."),
        ),
    }
}

// -------------------------------------------------------------------------------------------------
// Download

/// Where a redirect leads, checked like the first URL. `hops` is the number of redirects followed
/// before this one.
pub fn redirect_target(current: &Url, location: &str, hops: usize, policy: FetchPolicy) -> Result<Url, ImportError> {
    if hops >= MAX_REDIRECTS {
        return Err(ImportError::new(
            "too_many_redirects",
            "metadata_url",
            format!(
                "The metadata URL redirected more than {MAX_REDIRECTS} times. Use the final URL of the metadata document."
            ),
        ));
    }
    let next = current.join(location.trim()).map_err(|e| {
        ImportError::new(
            "metadata_fetch_failed",
            "metadata_url",
            format!("The metadata URL redirected to an invalid location ({e})."),
        )
    })?;
    match next.scheme() {
        "https" => {}
        "http" if policy.allow_private => {}
        _ => {
            return Err(ImportError::new(
                "metadata_url_refused",
                "metadata_url",
                format!("The metadata URL redirected to {next}, which is not https; the redirect was not followed."),
            ));
        }
    }
    check_target(&next, policy.allow_private).map_err(|e| target_error(&e))?;
    Ok(next)
}

fn fetch_failed(message: String) -> ImportError {
    ImportError::new("metadata_fetch_failed", "metadata_url", message)
}

fn describe_reqwest_error(e: &reqwest::Error, url: &Url) -> ImportError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(t) = s.downcast_ref::<TargetError>() {
            return target_error(t);
        }
        source = s.source();
    }
    if format!("{e:?}").contains("Private(") {
        return ImportError::new(
            "metadata_url_refused",
            "metadata_url",
            format!(
                "The metadata URL cannot be downloaded: {} resolves to a private, loopback or link-local address. Use the IdP's public metadata URL.",
                url.host_str().unwrap_or("the host")
            ),
        );
    }
    if e.is_timeout() {
        return fetch_failed(format!("{url} did not answer within {} seconds.", FETCH_TIMEOUT.as_secs()));
    }
    if e.is_connect() {
        return fetch_failed(format!("Could not connect to {url}: {}.", root_cause(e)));
    }
    fetch_failed(format!("Downloading {url} failed: {}.", root_cause(e)))
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    last
}

fn too_large(size: usize) -> ImportError {
    ImportError::metadata(MetadataError::MetadataTooLarge { size, limit: MAX_METADATA_BYTES }, "metadata_url")
}

/// Downloads a metadata document (see the module docs for the rules).
pub async fn fetch_metadata(url: &Url, policy: FetchPolicy) -> Result<String, ImportError> {
    match tokio::time::timeout(FETCH_TIMEOUT, fetch_inner(url, policy)).await {
        Ok(result) => result,
        Err(_) => Err(fetch_failed(format!(
            "Downloading {url} took longer than {} seconds; the download was stopped.",
            FETCH_TIMEOUT.as_secs()
        ))),
    }
}

async fn fetch_inner(start: &Url, policy: FetchPolicy) -> Result<String, ImportError> {
    let client = guarded_client(policy.allow_private, FETCH_TIMEOUT);
    let mut url = start.clone();
    check_target(&url, policy.allow_private).map_err(|e| target_error(&e))?;
    let mut hops = 0;
    loop {
        let mut response = client
            .get(url.clone())
            .header(
                reqwest::header::ACCEPT,
                "application/samlmetadata+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1",
            )
            .send()
            .await
            .map_err(|e| describe_reqwest_error(&e, &url))?;
        let status = response.status();
        if status.is_redirection() && status != reqwest::StatusCode::NOT_MODIFIED {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| fetch_failed(format!("{url} answered HTTP {status} without a usable Location.")))?
                .to_string();
            url = redirect_target(&url, &location, hops, policy)?;
            hops += 1;
            continue;
        }
        if !status.is_success() {
            return Err(fetch_failed(format!(
                "{url} answered HTTP {}: the metadata could not be downloaded. Check the URL in the IdP's admin console.",
                status.as_u16()
            )));
        }
        if let Some(len) = response.content_length()
            && len > MAX_METADATA_BYTES as u64
        {
            return Err(too_large(usize::try_from(len).unwrap_or(usize::MAX)));
        }
        let mut body: Vec<u8> = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| describe_reqwest_error(&e, &url))? {
            if body.len() + chunk.len() > MAX_METADATA_BYTES {
                return Err(too_large(body.len() + chunk.len()));
            }
            body.extend_from_slice(&chunk);
        }
        return String::from_utf8(body).map_err(|_| {
            ImportError::new(
                "metadata_not_utf8",
                "metadata_url",
                format!("The document at {url} is not UTF-8 text, so it is not SAML metadata as published by IdPs."),
            )
        });
    }
}

// -------------------------------------------------------------------------------------------------
// Building IdPs

/// When a successfully refreshed (or imported) metadata URL is next downloaded.
pub fn next_refresh_after_success(
    now: DateTime<Utc>,
    valid_until: Option<DateTime<Utc>>,
    cache_duration: Option<Duration>,
) -> DateTime<Utc> {
    let mut interval = DEFAULT_REFRESH_INTERVAL;
    if let Some(c) = cache_duration.and_then(|c| chrono::Duration::from_std(c).ok()) {
        interval = interval.min(c);
    }
    if let Some(v) = valid_until
        && v > now
    {
        interval = interval.min((v - now) / 2);
    }
    now + interval.max(MIN_REFRESH_INTERVAL)
}

/// When a failed refresh is tried again.
pub fn next_refresh_after_failure(now: DateTime<Utc>, valid_until: Option<DateTime<Utc>>) -> DateTime<Utc> {
    let mut interval = RETRY_AFTER_FAILURE;
    if let Some(v) = valid_until
        && v > now
    {
        interval = interval.min((v - now) / 2);
    }
    now + interval.max(MIN_REFRESH_INTERVAL)
}

fn certificates(imported: &super::metadata::ImportedIdp) -> Vec<IdpCertificate> {
    imported.certificates.iter().map(IdpCertificate::from).collect()
}

/// Overwrites everything an IdP takes from metadata; keeps name, enabled, settings and history.
fn apply_metadata(idp: &mut Idp, imported: super::metadata::ImportedIdp) {
    idp.certificates = certificates(&imported);
    idp.entity_id = imported.entity_id;
    idp.sso = imported.sso;
    idp.slo = imported.slo;
    idp.metadata_valid_until = imported.valid_until;
    idp.warnings = imported.warnings.into_iter().map(warning).collect();
}

/// Parses a document for an IdP. Without an explicit `entity`, an aggregate that needs a choice
/// falls back to `current_entity` when it is one of the candidates (a replaced document).
fn parse_document(
    xml: &str,
    entity: Option<&str>,
    current_entity: Option<&str>,
    field: &str,
    now: DateTime<Utc>,
) -> Result<super::metadata::ImportedIdp, ImportError> {
    let entity = entity.map(str::trim).filter(|e| !e.is_empty());
    match parse_idp_metadata(xml, entity, now) {
        Err(MetadataError::EntitySelectionRequired { candidates })
            if entity.is_none() && current_entity.is_some_and(|c| candidates.iter().any(|x| x == c)) =>
        {
            parse_idp_metadata(xml, current_entity, now).map_err(|e| ImportError::metadata(e, field))
        }
        other => other.map_err(|e| ImportError::metadata(e, field)),
    }
}

fn blank_idp(tenant: &TenantId, name: String, enabled: bool, settings: IdpSettings, now: DateTime<Utc>) -> Idp {
    Idp {
        id: IdpId::generate(),
        tenant_id: tenant.clone(),
        name,
        enabled,
        entity_id: String::new(),
        sso: Endpoint { binding: Binding::HttpRedirect, location: String::new() },
        slo: None,
        source: IdpSource::Manual,
        metadata_url: None,
        settings,
        warnings: vec![],
        certificates: vec![],
        metadata_valid_until: None,
        next_refresh_at: None,
        last_refresh_at: None,
        last_refresh_status: None,
        last_refresh_error: None,
        last_login_at: None,
        created_at: now,
        updated_at: now,
    }
}

/// Switches an IdP to a downloaded metadata URL: the document replaces the metadata-derived fields
/// and the refresh bookkeeping starts.
fn use_metadata_url(
    idp: &mut Idp,
    url: &Url,
    raw_url: &str,
    imported: super::metadata::ImportedIdp,
    now: DateTime<Utc>,
) {
    idp.next_refresh_at = Some(next_refresh_after_success(now, imported.valid_until, imported.cache_duration));
    apply_metadata(idp, imported);
    idp.source = IdpSource::MetadataUrl;
    idp.metadata_url = Some(if raw_url.trim() == url.as_str() { url.to_string() } else { raw_url.trim().to_string() });
    idp.last_refresh_at = Some(now);
    idp.last_refresh_status = Some("ok".into());
    idp.last_refresh_error = None;
}

fn use_metadata_file(idp: &mut Idp, imported: super::metadata::ImportedIdp) {
    apply_metadata(idp, imported);
    idp.source = IdpSource::MetadataFile;
    idp.metadata_url = None;
    idp.next_refresh_at = None;
    idp.last_refresh_at = None;
    idp.last_refresh_status = None;
    idp.last_refresh_error = None;
}

/// The manual IdP fields, checked, with the warnings they deserve.
struct Manual {
    entity_id: String,
    sso_url: String,
    slo_url: Option<String>,
    certificate: Option<IdpCertificate>,
}

fn manual_warnings(idp: &Idp, now: DateTime<Utc>) -> Vec<Warning> {
    let mut out = Vec::new();
    if idp.entity_id.contains('{') || idp.entity_id.contains('}') {
        out.push(Warning {
            code: warning_codes::ENTITY_ID_TEMPLATE.into(),
            message: format!(
                "The entity ID {:?} looks like a template (it contains '{{…}}'); responses carry the real Issuer, so logins would fail. Enter your IdP's actual entity ID.",
                idp.entity_id
            ),
        });
    }
    if idp.sso.location.starts_with("http:") {
        out.push(Warning {
            code: warning_codes::SSO_URL_NOT_HTTPS.into(),
            message: format!(
                "The single sign-on URL {:?} uses plain http: login requests and the user's IdP session travel unencrypted. Use the IdP's https URL; plain http is only acceptable for local testing.",
                idp.sso.location
            ),
        });
    }
    if let Some(slo) = &idp.slo
        && slo.location.starts_with("http:")
    {
        out.push(Warning {
            code: warning_codes::SLO_URL_NOT_HTTPS.into(),
            message: format!("The single logout URL {:?} uses plain http; use the IdP's https URL.", slo.location),
        });
    }
    for c in &idp.certificates {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&c.der);
        if let Ok((cert, _)) = parse_certificate(&b64, now) {
            out.extend(certificate_warnings(&cert, now).into_iter().map(warning));
        }
    }
    out
}

fn apply_manual(idp: &mut Idp, m: Manual, now: DateTime<Utc>) {
    idp.entity_id = m.entity_id;
    idp.sso = Endpoint { binding: Binding::HttpRedirect, location: m.sso_url };
    idp.slo = m.slo_url.map(|location| Endpoint { binding: Binding::HttpRedirect, location });
    if let Some(c) = m.certificate {
        idp.certificates = vec![c];
    }
    idp.source = IdpSource::Manual;
    idp.metadata_url = None;
    idp.metadata_valid_until = None;
    idp.next_refresh_at = None;
    idp.warnings = manual_warnings(idp, now);
}

fn certificate(pem: &str, now: DateTime<Utc>) -> Result<IdpCertificate, ImportError> {
    let (cert, _) = parse_certificate(pem, now).map_err(|e| ImportError::metadata(e, "certificate_pem"))?;
    Ok(IdpCertificate::from(&cert))
}

fn optional_slo(raw: Option<&str>) -> Result<Option<String>, ImportError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => http_url(s, "slo_url", "single logout URL").map(|(u, _)| Some(u)),
    }
}

const MANUAL_FIELDS: [&str; 4] = ["entity_id", "sso_url", "slo_url", "certificate_pem"];

/// Builds a new IdP from a create request (downloading the metadata URL if one is given).
pub async fn create_idp(
    tenant: &TenantId,
    req: CreateIdp,
    policy: FetchPolicy,
    now: DateTime<Utc>,
) -> Result<Idp, ImportError> {
    let manual_given: Vec<&str> = [&req.entity_id, &req.sso_url, &req.slo_url, &req.certificate_pem]
        .iter()
        .zip(MANUAL_FIELDS)
        .filter(|(v, _)| v.is_some())
        .map(|(_, f)| f)
        .collect();
    let name = name(req.name.as_deref().unwrap_or(""))?;
    let settings = merge_settings(&IdpSettings::default(), req.settings.as_ref())?;
    let mut idp = blank_idp(tenant, name, req.enabled.unwrap_or(true), settings, now);
    match (&req.metadata_xml, &req.metadata_url) {
        (Some(_), Some(_)) => Err(ImportError::new(
            "conflicting_fields",
            "metadata_url",
            "Give either metadata_xml or metadata_url, not both.",
        )),
        (Some(_), None) | (None, Some(_)) if !manual_given.is_empty() => Err(ImportError::new(
            "conflicting_fields",
            manual_given[0],
            format!(
                "`{}` is for identity providers entered by hand; with metadata, everything comes from the document.",
                manual_given[0]
            ),
        )),
        (Some(xml), None) => {
            let imported = parse_document(xml, req.entity.as_deref(), None, "metadata_xml", now)?;
            use_metadata_file(&mut idp, imported);
            Ok(idp)
        }
        (None, Some(raw)) => {
            let url = metadata_url(raw, policy)?;
            let xml = fetch_metadata(&url, policy).await?;
            let imported = parse_document(&xml, req.entity.as_deref(), None, "metadata_url", now)?;
            use_metadata_url(&mut idp, &url, raw, imported, now);
            Ok(idp)
        }
        (None, None) => {
            if req.entity.is_some() {
                return Err(ImportError::new(
                    "conflicting_fields",
                    "entity",
                    "`entity` chooses an IdP in an aggregate metadata document; without metadata, give entity_id.",
                ));
            }
            if manual_given.is_empty() {
                return Err(ImportError::new(
                    "missing_field",
                    "metadata_xml",
                    "Give the IdP's metadata (metadata_xml or metadata_url), or enter it by hand (entity_id, sso_url, certificate_pem and optionally slo_url).",
                ));
            }
            let manual = Manual {
                entity_id: entity_id(req.entity_id.as_deref().unwrap_or(""))?,
                sso_url: http_url(req.sso_url.as_deref().unwrap_or(""), "sso_url", "single sign-on URL")?.0,
                slo_url: optional_slo(req.slo_url.as_deref())?,
                certificate: Some(certificate(req.certificate_pem.as_deref().unwrap_or(""), now)?),
            };
            apply_manual(&mut idp, manual, now);
            Ok(idp)
        }
    }
}

/// Applies an update request to an IdP (downloading a new metadata URL if one is given). Name,
/// enabled and settings apply to every IdP; the rest depends on its source.
pub async fn update_idp(
    current: &Idp,
    req: UpdateIdp,
    policy: FetchPolicy,
    now: DateTime<Utc>,
) -> Result<Idp, ImportError> {
    let mut idp = current.clone();
    if let Some(n) = &req.name {
        idp.name = name(n)?;
    }
    if let Some(e) = req.enabled {
        idp.enabled = e;
    }
    idp.settings = merge_settings(&current.settings, req.settings.as_ref())?;

    let manual_given: Vec<&str> =
        [req.entity_id.is_some(), req.sso_url.is_some(), req.slo_url.is_some(), req.certificate_pem.is_some()]
            .iter()
            .zip(MANUAL_FIELDS)
            .filter(|(given, _)| **given)
            .map(|(_, f)| f)
            .collect();
    let metadata_given: Vec<&str> = [
        (req.metadata_xml.is_some(), "metadata_xml"),
        (req.metadata_url.is_some(), "metadata_url"),
        (req.entity.is_some(), "entity"),
    ]
    .iter()
    .filter(|(given, _)| *given)
    .map(|(_, f)| *f)
    .collect();

    match current.source {
        IdpSource::Manual => {
            if let Some(f) = metadata_given.first() {
                return Err(ImportError::new(
                    "not_applicable",
                    f,
                    format!(
                        "`{f}` cannot be set on an identity provider entered by hand. To switch it to metadata, add a new identity provider from the metadata and delete this one."
                    ),
                ));
            }
            if !manual_given.is_empty() {
                let manual = Manual {
                    entity_id: match &req.entity_id {
                        Some(e) => entity_id(e)?,
                        None => current.entity_id.clone(),
                    },
                    sso_url: match &req.sso_url {
                        Some(u) => http_url(u, "sso_url", "single sign-on URL")?.0,
                        None => current.sso.location.clone(),
                    },
                    slo_url: match &req.slo_url {
                        Some(u) => optional_slo(u.as_deref())?,
                        None => current.slo.as_ref().map(|e| e.location.clone()),
                    },
                    certificate: match &req.certificate_pem {
                        Some(pem) => Some(certificate(pem, now)?),
                        None => None,
                    },
                };
                apply_manual(&mut idp, manual, now);
            }
        }
        IdpSource::MetadataFile | IdpSource::MetadataUrl => {
            if let Some(f) = manual_given.first() {
                return Err(ImportError::new(
                    "not_applicable",
                    f,
                    format!(
                        "`{f}` comes from this identity provider's metadata and cannot be edited; replace metadata_xml or metadata_url instead."
                    ),
                ));
            }
            match (&req.metadata_xml, &req.metadata_url) {
                (Some(_), Some(_)) => {
                    return Err(ImportError::new(
                        "conflicting_fields",
                        "metadata_url",
                        "Give either metadata_xml or metadata_url, not both.",
                    ));
                }
                (Some(xml), None) => {
                    let imported =
                        parse_document(xml, req.entity.as_deref(), Some(&current.entity_id), "metadata_xml", now)?;
                    use_metadata_file(&mut idp, imported);
                }
                (None, Some(raw)) => {
                    let url = metadata_url(raw, policy)?;
                    let xml = fetch_metadata(&url, policy).await?;
                    let imported =
                        parse_document(&xml, req.entity.as_deref(), Some(&current.entity_id), "metadata_url", now)?;
                    use_metadata_url(&mut idp, &url, raw, imported, now);
                }
                (None, None) => {
                    if req.entity.is_some() {
                        return Err(ImportError::new(
                            "conflicting_fields",
                            "entity",
                            "`entity` only applies together with a new metadata_xml or metadata_url.",
                        ));
                    }
                }
            }
        }
    }
    Ok(idp)
}

// -------------------------------------------------------------------------------------------------
// Refresh

/// What a successful refresh changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefreshChanges {
    /// Signing certificates newly trusted (a rollover in progress).
    pub certificates_added: Vec<IdpCertificate>,
    /// Signing certificates no longer published, hence no longer trusted.
    pub certificates_removed: Vec<IdpCertificate>,
    pub sso_url_changed: bool,
    pub slo_url_changed: bool,
}

impl RefreshChanges {
    pub fn is_empty(&self) -> bool {
        self.certificates_added.is_empty()
            && self.certificates_removed.is_empty()
            && !self.sso_url_changed
            && !self.slo_url_changed
    }

    /// One line for the refresh history.
    pub fn summary(&self) -> String {
        if self.is_empty() {
            return "Metadata refreshed; nothing changed.".into();
        }
        let mut parts = Vec::new();
        for c in &self.certificates_added {
            parts.push(format!("signing certificate {} ({}) added", c.fingerprint_sha256, c.subject));
        }
        for c in &self.certificates_removed {
            parts.push(format!("signing certificate {} ({}) removed", c.fingerprint_sha256, c.subject));
        }
        if self.sso_url_changed {
            parts.push("single sign-on URL changed".into());
        }
        if self.slo_url_changed {
            parts.push("single logout URL changed".into());
        }
        format!("Metadata refreshed: {}.", parts.join("; "))
    }
}

/// Applies a freshly downloaded document to a metadata-URL IdP. Refuses (and changes nothing) when
/// the document is refused by the metadata rules, no longer describes the IdP's entity ID, or has
/// expired. Name, enabled and settings are kept.
pub fn apply_refresh(idp: &Idp, xml: &str, now: DateTime<Utc>) -> Result<(Idp, RefreshChanges), ImportError> {
    let imported = match parse_idp_metadata(xml, Some(&idp.entity_id), now) {
        Ok(i) => i,
        Err(MetadataError::EntityNotFound { candidates, .. }) => {
            let found = if candidates.is_empty() {
                "no identity provider".to_string()
            } else {
                candidates.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>().join(", ")
            };
            return Err(ImportError {
                code: "entity_id_changed",
                message: format!(
                    "The metadata at this URL no longer describes the entity ID {:?} (it describes {found}). The entity ID is never changed by a refresh; if the IdP really changed, replace the metadata URL or add a new identity provider.",
                    idp.entity_id
                ),
                field: Some("metadata_url".into()),
                candidates: Some(candidates),
            });
        }
        Err(e) => return Err(ImportError::metadata(e, "metadata_url")),
    };
    if imported.is_expired(now) {
        return Err(ImportError::new(
            "metadata_expired",
            "metadata_url",
            format!(
                "The downloaded metadata expired on {} (validUntil); it was not used. The IdP keeps its last good configuration. Ask the IdP administrator to publish current metadata.",
                imported.valid_until.map(|v| v.to_rfc3339()).unwrap_or_default()
            ),
        ));
    }
    let mut next = idp.clone();
    next.next_refresh_at = Some(next_refresh_after_success(now, imported.valid_until, imported.cache_duration));
    apply_metadata(&mut next, imported);
    next.last_refresh_at = Some(now);
    next.last_refresh_status = Some("ok".into());
    next.last_refresh_error = None;
    let fps = |certs: &[IdpCertificate]| certs.iter().map(|c| c.fingerprint_sha256.clone()).collect::<Vec<_>>();
    let (old_fps, new_fps) = (fps(&idp.certificates), fps(&next.certificates));
    let changes = RefreshChanges {
        certificates_added: next
            .certificates
            .iter()
            .filter(|c| !old_fps.contains(&c.fingerprint_sha256))
            .cloned()
            .collect(),
        certificates_removed: idp
            .certificates
            .iter()
            .filter(|c| !new_fps.contains(&c.fingerprint_sha256))
            .cloned()
            .collect(),
        sso_url_changed: next.sso != idp.sso,
        slo_url_changed: next.slo != idp.slo,
    };
    Ok((next, changes))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    const PRIVATE_OFF: FetchPolicy = FetchPolicy { allow_private: false };
    const PRIVATE_ON: FetchPolicy = FetchPolicy { allow_private: true };

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
    }

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{}/../shared/fixtures/idp-metadata/{name}", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
    }

    fn tenant() -> TenantId {
        TenantId::from_stored("t".into())
    }

    #[tokio::test]
    async fn private_and_plain_http_metadata_urls_are_refused_without_allow_private() {
        for (url, code) in [
            ("https://127.0.0.1/metadata", "metadata_url_refused"),
            ("https://[::1]/metadata", "metadata_url_refused"),
            ("https://localhost/metadata", "metadata_url_refused"),
            ("https://169.254.169.254/latest/meta-data", "metadata_url_refused"),
            ("https://10.0.0.8/metadata", "metadata_url_refused"),
            ("http://idp.example.com/metadata", "invalid_url"),
            ("file:///etc/passwd", "invalid_url"),
            ("not a url", "invalid_url"),
        ] {
            let req = CreateIdp { name: Some("x".into()), metadata_url: Some(url.into()), ..Default::default() };
            let err = create_idp(&tenant(), req, PRIVATE_OFF, now()).await.unwrap_err();
            assert_eq!(err.code, code, "{url}: {err}");
            assert_eq!(err.field.as_deref(), Some("metadata_url"));
        }
        // A name that resolves inside is refused by the guarded resolver, and reported as such.
        let url = Url::parse("http://localhost:9/m").unwrap();
        let e = guarded_client(false, FETCH_TIMEOUT).get(url.clone()).send().await.unwrap_err();
        let err = describe_reqwest_error(&e, &url);
        assert_eq!(err.code, "metadata_url_refused", "{err}");
        assert!(err.message.contains("localhost"), "{err}");
    }

    #[test]
    fn redirects_are_checked_and_limited() {
        let here = Url::parse("https://idp.example.com/a/metadata").unwrap();
        assert_eq!(
            redirect_target(&here, "/b/metadata", 0, PRIVATE_OFF).unwrap().as_str(),
            "https://idp.example.com/b/metadata"
        );
        assert_eq!(
            redirect_target(&here, "https://other.example.org/m", 2, PRIVATE_OFF).unwrap().host_str(),
            Some("other.example.org")
        );
        for (loc, code) in [
            ("https://127.0.0.1/m", "metadata_url_refused"),
            ("https://169.254.169.254/m", "metadata_url_refused"),
            ("http://idp.example.com/m", "metadata_url_refused"),
            ("file:///etc/passwd", "metadata_url_refused"),
        ] {
            assert_eq!(redirect_target(&here, loc, 0, PRIVATE_OFF).unwrap_err().code, code, "{loc}");
        }
        assert!(redirect_target(&here, "http://127.0.0.1/m", 0, PRIVATE_ON).is_ok());
        assert_eq!(redirect_target(&here, "/c", MAX_REDIRECTS, PRIVATE_ON).unwrap_err().code, "too_many_redirects");
    }

    #[test]
    fn refresh_schedule() {
        let n = now();
        assert_eq!(next_refresh_after_success(n, None, None), n + chrono::Duration::hours(12));
        assert_eq!(
            next_refresh_after_success(n, None, Some(Duration::from_secs(7200))),
            n + chrono::Duration::hours(2)
        );
        assert_eq!(next_refresh_after_success(n, None, Some(Duration::from_secs(10))), n + MIN_REFRESH_INTERVAL);
        assert_eq!(
            next_refresh_after_success(n, Some(n + chrono::Duration::hours(6)), None),
            n + chrono::Duration::hours(3)
        );
        assert_eq!(
            next_refresh_after_success(n, Some(n + chrono::Duration::days(30)), Some(Duration::from_secs(86_400))),
            n + chrono::Duration::hours(12)
        );
        assert_eq!(
            next_refresh_after_success(n, Some(n - chrono::Duration::days(1)), None),
            n + chrono::Duration::hours(12)
        );
        assert_eq!(next_refresh_after_failure(n, None), n + RETRY_AFTER_FAILURE);
        assert_eq!(
            next_refresh_after_failure(n, Some(n + chrono::Duration::minutes(20))),
            n + chrono::Duration::minutes(10)
        );
        assert_eq!(next_refresh_after_failure(n, Some(n + chrono::Duration::minutes(2))), n + MIN_REFRESH_INTERVAL);
    }

    #[test]
    fn settings_are_merged_and_checked() {
        let base = IdpSettings::default();
        let s = merge_settings(&base, Some(&serde_json::json!({"clock_skew_secs": 60}))).unwrap();
        assert_eq!(s.clock_skew_secs, 60);
        assert_eq!(s.session_hours, base.session_hours);
        let s2 = merge_settings(&s, Some(&serde_json::json!({"force_authn": true}))).unwrap();
        assert_eq!((s2.clock_skew_secs, s2.force_authn), (60, true));
        for (given, field) in [
            (serde_json::json!({"clock_skew_secs": 601}), "settings.clock_skew_secs"),
            (serde_json::json!({"clock_skew_secs": "soon"}), "settings.clock_skew_secs"),
            (serde_json::json!({"nonsense": 1}), "settings.nonsense"),
            (serde_json::json!({"email_domains": ["not a domain"]}), "settings.email_domains"),
            (serde_json::json!([1]), "settings"),
        ] {
            let err = merge_settings(&base, Some(&given)).unwrap_err();
            assert_eq!((err.code, err.field.as_deref()), ("invalid_settings", Some(field)), "{given}: {err}");
        }
        assert_eq!(merge_settings(&s, None).unwrap(), s);
    }

    #[tokio::test]
    async fn refresh_keeps_admin_fields_and_refuses_a_changed_entity_id() {
        let req = CreateIdp {
            name: Some("Okta".into()),
            metadata_xml: Some(fixture("okta-idp-metadata.xml")),
            enabled: Some(false),
            settings: Some(serde_json::json!({"clock_skew_secs": 30})),
            ..Default::default()
        };
        let mut idp = create_idp(&tenant(), req, PRIVATE_OFF, now()).await.unwrap();
        idp.source = IdpSource::MetadataUrl;
        let (same, changes) = apply_refresh(&idp, &fixture("okta-idp-metadata.xml"), now()).unwrap();
        assert!(changes.is_empty(), "{changes:?}");
        assert_eq!((same.name.as_str(), same.enabled, same.settings.clock_skew_secs), ("Okta", false, 30));
        assert_eq!(same.last_refresh_status.as_deref(), Some("ok"));

        let other = fixture("okta-idp-metadata.xml").replace("exk9u78i8aMSxvkV70h7\"", "somebody-else\"");
        let err = apply_refresh(&idp, &other, now()).unwrap_err();
        assert_eq!(err.code, "entity_id_changed", "{err}");

        let err = apply_refresh(&idp, &fixture("adfs-like-placeholder-certs.xml"), now()).unwrap_err();
        assert_eq!(err.code, "entity_id_changed", "{err}");

        let expired = fixture("okta-idp-metadata.xml").replace(
            "entityID=\"http://www.okta.com/exk9u78i8aMSxvkV70h7\"",
            "entityID=\"http://www.okta.com/exk9u78i8aMSxvkV70h7\" validUntil=\"2026-01-01T00:00:00Z\"",
        );
        assert_eq!(apply_refresh(&idp, &expired, now()).unwrap_err().code, "metadata_expired");
    }

    #[tokio::test]
    async fn manual_and_metadata_fields_do_not_mix() {
        let req = CreateIdp {
            name: Some("x".into()),
            metadata_xml: Some(fixture("okta-idp-metadata.xml")),
            sso_url: Some("https://idp.example.com/sso".into()),
            ..Default::default()
        };
        let err = create_idp(&tenant(), req, PRIVATE_OFF, now()).await.unwrap_err();
        assert_eq!((err.code, err.field.as_deref()), ("conflicting_fields", Some("sso_url")));

        let okta = CreateIdp {
            name: Some("x".into()),
            metadata_xml: Some(fixture("okta-idp-metadata.xml")),
            ..Default::default()
        };
        let idp = create_idp(&tenant(), okta, PRIVATE_OFF, now()).await.unwrap();
        let err = update_idp(&idp, UpdateIdp { entity_id: Some("y".into()), ..Default::default() }, PRIVATE_OFF, now())
            .await
            .unwrap_err();
        assert_eq!((err.code, err.field.as_deref()), ("not_applicable", Some("entity_id")));
    }
}
