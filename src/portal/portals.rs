//! The directory of a tenant's service desks and their portals, as the service account sees them:
//! the paged service-desk list, and each desk's request types (which carry the `portalId`; a portal id is
//! never assumed to equal the service desk id). Cached per tenant in the database for five minutes.
//!
//! * `GET /api/v1/portals[?refresh=1]`: every desk with its substitute link.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Duration, Utc};
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::PortalError;
use super::jsm::{Jsm, RequestType, RequestTypeGroup, ServiceDesk, seg};
use crate::connect::auth::{AdminApi, JiraUser};
use crate::startup::AppState;
use crate::tenants::Tenant;
use crate::web::WebError;

/// How long a fetched directory is used without asking Jira again.
pub const CACHE_TTL: Duration = Duration::minutes(5);
/// An unknown portal id refreshes the directory, but not more often than this.
const MISS_REFRESH_AFTER: Duration = Duration::seconds(30);

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Directory {
    pub desks: Vec<Desk>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Desk {
    pub service_desk_id: String,
    pub project_id: String,
    pub project_key: String,
    pub project_name: String,
    /// From the desk's request types; `None` when it has none (then it has no customer portal to link).
    pub portal_id: Option<String>,
    pub request_types: Vec<RequestTypeInfo>,
    /// The portal's request type groups, in the portal's order.
    #[serde(default)]
    pub groups: Vec<GroupInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupInfo {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestTypeInfo {
    pub id: String,
    pub name: String,
    pub description: String,
    pub help_text: String,
    pub group_ids: Vec<String>,
}

impl Directory {
    pub fn by_portal(&self, portal_id: &str) -> Option<&Desk> {
        self.desks.iter().find(|d| d.portal_id.as_deref() == Some(portal_id))
    }
}

impl Desk {
    pub fn request_type(&self, id: &str) -> Option<&RequestTypeInfo> {
        self.request_types.iter().find(|r| r.id == id)
    }
}

/// Which copy is good enough.
#[derive(Debug, Clone, Copy)]
pub enum Freshness {
    /// The cache if younger than [`CACHE_TTL`].
    Cached,
    /// The cache if younger than this.
    YoungerThan(Duration),
    /// Ask Jira.
    Refresh,
}

/// The tenant's directory and when it was fetched.
pub async fn directory(
    state: &AppState,
    tenant: &Tenant,
    jsm: &Jsm<'_>,
    freshness: Freshness,
) -> Result<(Directory, DateTime<Utc>), PortalError> {
    let now = Utc::now();
    let max_age = match freshness {
        Freshness::Cached => Some(CACHE_TTL),
        Freshness::YoungerThan(d) => Some(d.min(CACHE_TTL)),
        Freshness::Refresh => None,
    };
    if let Some(max_age) = max_age
        && let Some((fetched_at, body)) = state.store.portal_directory(&tenant.id).await?
        && now - fetched_at < max_age
        && let Ok(dir) = serde_json::from_str::<Directory>(&body)
    {
        return Ok((dir, fetched_at));
    }
    let dir = fetch(jsm).await?;
    let body = serde_json::to_string(&dir).map_err(|e| PortalError::Unexpected(e.into()))?;
    state.store.save_portal_directory(&tenant.id, &body, now).await?;
    Ok((dir, now))
}

/// The desk behind a portal id: from the cache, and on a miss from a fresh copy (a desk created a
/// minute ago), at most every 30 seconds.
pub async fn desk_of_portal(
    state: &AppState,
    tenant: &Tenant,
    jsm: &Jsm<'_>,
    portal_id: &str,
) -> Result<Desk, PortalError> {
    let (dir, fetched_at) = directory(state, tenant, jsm, Freshness::Cached).await?;
    if let Some(desk) = dir.by_portal(portal_id) {
        return Ok(desk.clone());
    }
    if Utc::now() - fetched_at < MISS_REFRESH_AFTER {
        return Err(PortalError::NotFound("This helpdesk has no portal at this address."));
    }
    let (dir, _) = directory(state, tenant, jsm, Freshness::Refresh).await?;
    dir.by_portal(portal_id).cloned().ok_or(PortalError::NotFound("This helpdesk has no portal at this address."))
}

/// Desks whose request types are read at the same time (Jira's burst limits are per tenant).
const CONCURRENT_DESKS: usize = 4;

async fn fetch(jsm: &Jsm<'_>) -> Result<Directory, PortalError> {
    let desks: Vec<ServiceDesk> = jsm.get_all("/rest/servicedeskapi/servicedesk").await?;
    let out: Vec<Desk> = futures_util::stream::iter(desks.into_iter().map(|desk| fetch_desk(jsm, desk)))
        .buffered(CONCURRENT_DESKS)
        .try_collect()
        .await?;
    Ok(Directory { desks: out })
}

async fn fetch_desk(jsm: &Jsm<'_>, desk: ServiceDesk) -> Result<Desk, PortalError> {
    let types: Vec<RequestType> =
        jsm.get_all(&format!("/rest/servicedeskapi/servicedesk/{}/requesttype", seg(&desk.id))).await?;
    let portal_id = types.iter().find_map(|t| t.portal_id.clone().filter(|p| !p.is_empty()));
    let groups: Vec<RequestTypeGroup> = if types.is_empty() {
        vec![]
    } else {
        jsm.get_all(&format!("/rest/servicedeskapi/servicedesk/{}/requesttypegroup", seg(&desk.id))).await?
    };
    Ok(Desk {
        service_desk_id: desk.id,
        project_id: desk.project_id,
        project_key: desk.project_key,
        project_name: desk.project_name,
        portal_id,
        request_types: types
            .into_iter()
            .map(|t| RequestTypeInfo {
                id: t.id,
                name: t.name,
                description: t.description,
                help_text: t.help_text,
                group_ids: t.group_ids,
            })
            .collect(),
        groups: groups.into_iter().map(|g| GroupInfo { id: g.id, name: g.name }).collect(),
    })
}

// -------------------------------------------------------------------------------------------------
// Links

/// One desk as the admin API and page show it.
#[derive(Debug, Clone, Serialize)]
pub struct PortalLink {
    pub service_desk_id: String,
    pub project_key: String,
    pub project_name: String,
    pub portal_id: Option<String>,
    /// Where customers sign in through this service: `{base}/t/{tenant}/portal/{portal_id}`.
    pub substitute_link: Option<String>,
    /// Jira's own customer portal: `{help center or site}/servicedesk/customer/portal/{portal_id}`.
    pub native_portal_url: Option<String>,
}

/// The help center's root URL: the custom help-center domain when the site has one.
pub fn help_center_root(tenant: &Tenant) -> String {
    tenant
        .help_center_url
        .as_ref()
        .or(tenant.display_url.as_ref())
        .unwrap_or(&tenant.product_base_url)
        .as_str()
        .trim_end_matches('/')
        .to_string()
}

pub fn links(state: &AppState, tenant: &Tenant, dir: &Directory) -> Vec<PortalLink> {
    let native_root = help_center_root(tenant);
    dir.desks
        .iter()
        .map(|d| PortalLink {
            service_desk_id: d.service_desk_id.clone(),
            project_key: d.project_key.clone(),
            project_name: d.project_name.clone(),
            portal_id: d.portal_id.clone(),
            substitute_link: d
                .portal_id
                .as_ref()
                .map(|p| state.settings.base_url.join(&format!("/t/{}/portal/{p}", tenant.public_id))),
            native_portal_url: d.portal_id.as_ref().map(|p| format!("{native_root}/servicedesk/customer/portal/{p}")),
        })
        .collect()
}

/// Is `?refresh=1` (or `true`) in the query?
pub fn wants_refresh(req: &HttpRequest) -> bool {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .any(|(k, v)| k == "refresh" && (v == "1" || v.eq_ignore_ascii_case("true")))
}

/// `GET /api/v1/portals[?refresh=1]`
pub async fn list(
    user: JiraUser<AdminApi>,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, WebError> {
    let tenant = &user.tenant;
    let result = async {
        let jsm = Jsm::connect(&state, tenant).await?;
        let freshness = if wants_refresh(&req) { Freshness::Refresh } else { Freshness::Cached };
        directory(&state, tenant, &jsm, freshness).await
    }
    .await;
    let (dir, fetched_at) = result.map_err(|e| e.api())?;
    Ok(HttpResponse::Ok()
        .insert_header(("X-Fetched-At", fetched_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
        .json(links(&state, tenant, &dir)))
}
