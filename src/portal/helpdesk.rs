//! The customer helpdesk, server-rendered (no JavaScript needed), shaped like JSM's own portal:
//!
//! * `GET /t/{tenant}/portals`: the help center (every portal).
//! * `GET /t/{tenant}/portal/{portal_id}[?q=]`: a portal's request types, by group, with a filter.
//! * `GET|POST /t/{tenant}/portal/{portal_id}/create/{request_type_id}`: raise a request.
//! * `GET /t/{tenant}/portal/{portal_id}/requests[?status=open|closed|all&next=]`: my requests.
//! * `GET /t/{tenant}/portal/{portal_id}/requests/{key}`: a request (reporter or participant only).
//! * `POST /t/{tenant}/portal/{portal_id}/requests/{key}/comment`: add a public comment.
//!
//! Every page needs a customer session of this tenant (none: the IdP choice), and every call to Jira
//! is made by the service account, for the customer: requests are raised with `raiseOnBehalfOf`, and
//! a customer sees only requests they reported or participate in (anything else is "not found").

use actix_web::http::StatusCode;
use actix_web::http::header::{ContentType, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::PortalError;
use super::csrf;
use super::fields::{self, FormField};
use super::jsm::{Comment, CustomerRequest, JiraDate, Jsm, RequestTypeFields, SearchResults, User, q, seg};
use super::pages::{Chrome, Urls, display_name};
use super::portals::{Desk, Freshness, desk_of_portal, directory};
use super::provision::{ensure_desk_customer, link_account};
use super::signin::{return_to_here, sign_in};
use crate::saml::session::{Customer, customer_tenant};
use crate::startup::AppState;
use crate::tenants::Tenant;
use crate::web::WebError;

/// Requests per page of "my requests".
const PAGE_SIZE: u32 = 20;
/// Longest comment a customer may write.
const MAX_COMMENT: usize = 30_000;

// -------------------------------------------------------------------------------------------------
// Shared steps

/// The tenant, its URLs and the page frame, for a customer-facing URL.
async fn open(state: &AppState, req: &HttpRequest, raw_tenant: &str) -> Result<(Tenant, Urls, Chrome), WebError> {
    let tenant = customer_tenant(state, raw_tenant).await?;
    let urls = Urls::new(state, &tenant);
    let mut chrome = Chrome::new(state, &tenant);
    if req.method() == actix_web::http::Method::GET {
        chrome = chrome.retry(req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default());
    }
    Ok((tenant, urls, chrome))
}

async fn find_customer(state: &AppState, req: &HttpRequest, tenant: &Tenant) -> Result<Option<Customer>, PortalError> {
    Customer::find(state, req, tenant.clone()).await.map_err(|e| PortalError::Unexpected(anyhow::anyhow!("{e}")))
}

/// The signed-in customer, or the way to sign in (for GET pages).
async fn customer_or_sign_in(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    chrome: &mut Chrome,
) -> Result<Result<Customer, HttpResponse>, PortalError> {
    match find_customer(state, req, tenant).await? {
        Some(c) => {
            *chrome = chrome.clone().signed_in(state, tenant, &c.session);
            Ok(Ok(c))
        }
        None => Ok(Err(sign_in(state, tenant, chrome, &return_to_here(state, tenant, req)).await?)),
    }
}

/// The signed-in customer of a form post; none is a refusal (the form cannot be trusted or kept).
async fn customer_for_post(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    chrome: &mut Chrome,
) -> Result<Customer, PortalError> {
    let customer = find_customer(state, req, tenant).await?.ok_or(PortalError::Forbidden(
        "You are not signed in (your session may have ended). Sign in again, then send the form again.",
    ))?;
    *chrome = chrome.clone().signed_in(state, tenant, &customer.session);
    Ok(customer)
}

/// The customer's JSM account id: from the session, or provisioned now (sign-in could not).
async fn account_id(
    state: &AppState,
    tenant: &Tenant,
    jsm: &Jsm<'_>,
    customer: &Customer,
) -> Result<String, PortalError> {
    if let Some(id) = customer.session.account_id.as_deref().filter(|a| !a.is_empty()) {
        return Ok(id.to_string());
    }
    let idp = state.store.find_idp(&tenant.id, &customer.session.idp_id).await?.ok_or_else(|| {
        PortalError::NotACustomer("The sign-in option you used was removed. Please sign in again.".into())
    })?;
    Ok(link_account(state, tenant, jsm, &customer.token_hash, &customer.session, &idp).await?)
}

/// A portal id is a number.
fn check_portal_id(raw: &str) -> Result<(), PortalError> {
    if (1..=18).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(PortalError::NotFound("This helpdesk has no portal at this address."))
    }
}

/// An issue key: `ABC-123`.
fn check_issue_key(raw: &str) -> Result<String, PortalError> {
    let not_found = PortalError::NotFound("There is no such request, or it is not yours to see.");
    let (project, number) = raw.rsplit_once('-').ok_or(not_found)?;
    let ok = raw.len() <= 64
        && project.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && project.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(raw.to_ascii_uppercase())
    } else {
        Err(PortalError::NotFound("There is no such request, or it is not yours to see."))
    }
}

/// Everything a signed-in portal page starts with.
struct PortalCtx<'a> {
    jsm: Jsm<'a>,
    desk: Desk,
    account_id: String,
    customer: Customer,
}

async fn enter_portal<'a>(
    state: &'a AppState,
    tenant: &'a Tenant,
    urls: &Urls,
    chrome: &mut Chrome,
    customer: Customer,
    portal_id: &str,
) -> Result<PortalCtx<'a>, PortalError> {
    let jsm = Jsm::connect(state, tenant).await?;
    let desk = desk_of_portal(state, tenant, &jsm, portal_id).await?;
    *chrome = chrome.clone().in_portal(urls, portal_id, &desk.project_name);
    let account_id = account_id(state, tenant, &jsm, &customer).await?;
    ensure_desk_customer(state, tenant, &jsm, &account_id, &desk.service_desk_id).await?;
    Ok(PortalCtx { jsm, desk, account_id, customer })
}

fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status).content_type(ContentType::html()).body(body)
}

fn see_other(location: String) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((LOCATION, location)).finish()
}

fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

// -------------------------------------------------------------------------------------------------
// Dates, statuses and values as shown

/// `2024-05-01T10:00:00.000+0000` or `…+07:00` → `2024-05-01 10:00 UTC`.
pub fn format_time(raw: &str) -> String {
    ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M:%S%:z"]
        .iter()
        .find_map(|f| DateTime::parse_from_str(raw, f).ok())
        .map(|t| t.with_timezone(&Utc).format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| raw.to_string())
}

fn format_date(d: Option<&JiraDate>) -> String {
    let Some(d) = d else { return String::new() };
    if let Some(t) = d.epoch_millis.and_then(DateTime::from_timestamp_millis) {
        return t.format("%Y-%m-%d %H:%M UTC").to_string();
    }
    d.iso8601.as_deref().map(format_time).or_else(|| d.friendly.clone()).unwrap_or_default()
}

/// The lozenge class of a status category (servicedeskapi `NEW`/`INDETERMINATE`/`DONE`, or the
/// platform's `new`/`indeterminate`/`done`).
fn status_class(category: Option<&str>) -> &'static str {
    match category.map(str::to_ascii_lowercase).as_deref() {
        Some("done") => "done",
        Some("indeterminate") => "progress",
        _ => "new",
    }
}

/// A request field's value as text (strings, options, users, lists, Atlassian documents).
pub fn display_value(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "Yes" } else { "No" }.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => items.iter().map(display_value).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(", "),
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("doc") => {
            let mut out = String::new();
            adf_text(v, &mut out);
            out.trim().to_string()
        }
        Value::Object(o) => ["value", "name", "displayName", "label", "text", "key"]
            .iter()
            .find_map(|k| o.get(*k).map(display_value).filter(|s| !s.is_empty()))
            .unwrap_or_default(),
    }
}

fn adf_text(node: &Value, out: &mut String) {
    if let Some(t) = node.get("text").and_then(Value::as_str) {
        out.push_str(t);
    }
    if node.get("type").and_then(Value::as_str) == Some("hardBreak") {
        out.push('\n');
    }
    if let Some(children) = node.get("content").and_then(Value::as_array) {
        for c in children {
            adf_text(c, out);
        }
    }
    if matches!(node.get("type").and_then(Value::as_str), Some("paragraph" | "heading" | "listItem" | "codeBlock")) {
        out.push('\n');
    }
}

// -------------------------------------------------------------------------------------------------
// Help center

#[derive(Template)]
#[template(path = "portal/help_center.html")]
struct HelpCenterPage<'a> {
    chrome: &'a Chrome,
    portals: Vec<(String, String)>,
}

/// `GET /t/{tenant}/portals` (and the tenant's home, `/t/{tenant}/`).
pub async fn help_center(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let (tenant, urls, mut chrome) = open(&state, &req, &path).await?;
    let result = async {
        let _customer = match customer_or_sign_in(&state, &req, &tenant, &mut chrome).await? {
            Ok(c) => c,
            Err(sign_in) => return Ok(sign_in),
        };
        let jsm = Jsm::connect(&state, &tenant).await?;
        let (dir, _) = directory(&state, &tenant, &jsm, Freshness::Cached).await?;
        let portals = dir
            .desks
            .iter()
            .filter_map(|d| d.portal_id.as_ref().map(|p| (d.project_name.clone(), urls.portal(p))))
            .collect();
        Ok(html(StatusCode::OK, HelpCenterPage { chrome: &chrome, portals }.render()?))
    }
    .await;
    Ok(result.unwrap_or_else(|e: PortalError| e.page(&chrome)))
}

// -------------------------------------------------------------------------------------------------
// Portal home

#[derive(Deserialize)]
pub struct HomeQuery {
    q: Option<String>,
}

pub struct Item {
    pub name: String,
    pub description: String,
    pub url: String,
}

pub struct Section {
    pub title: Option<String>,
    pub items: Vec<Item>,
}

#[derive(Template)]
#[template(path = "portal/home.html")]
struct HomePage<'a> {
    chrome: &'a Chrome,
    desk_name: &'a str,
    action: String,
    q: &'a str,
    filtered: bool,
    sections: Vec<Section>,
}

/// Request types by group (in the portal's group order; ungrouped ones last), or filtered by `q`.
fn sections(desk: &Desk, urls: &Urls, portal_id: &str, filter: &str) -> Vec<Section> {
    let item = |t: &super::portals::RequestTypeInfo| Item {
        name: t.name.clone(),
        description: if t.description.is_empty() { t.help_text.clone() } else { t.description.clone() },
        url: urls.create(portal_id, &t.id),
    };
    if !filter.is_empty() {
        let needle = filter.to_lowercase();
        let items = desk
            .request_types
            .iter()
            .filter(|t| {
                t.name.to_lowercase().contains(&needle)
                    || t.description.to_lowercase().contains(&needle)
                    || t.help_text.to_lowercase().contains(&needle)
            })
            .map(item)
            .collect();
        return vec![Section { title: None, items }];
    }
    let mut out: Vec<Section> = desk
        .groups
        .iter()
        .map(|g| Section {
            title: Some(g.name.clone()),
            items: desk.request_types.iter().filter(|t| t.group_ids.contains(&g.id)).map(item).collect(),
        })
        .filter(|s| !s.items.is_empty())
        .collect();
    let grouped: Vec<&str> = desk.groups.iter().map(|g| g.id.as_str()).collect();
    let rest: Vec<Item> = desk
        .request_types
        .iter()
        .filter(|t| !t.group_ids.iter().any(|g| grouped.contains(&g.as_str())))
        .map(item)
        .collect();
    if !rest.is_empty() {
        let title = if out.is_empty() { None } else { Some("Other requests".to_string()) };
        out.push(Section { title, items: rest });
    }
    if out.len() == 1 {
        out[0].title = None;
    }
    out
}

/// `GET /t/{tenant}/portal/{portal_id}`: the substitute link's target.
pub async fn portal_home(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: web::Query<HomeQuery>,
) -> Result<HttpResponse, WebError> {
    let (raw_tenant, portal_id) = path.into_inner();
    let (tenant, urls, mut chrome) = open(&state, &req, &raw_tenant).await?;
    let result = async {
        check_portal_id(&portal_id)?;
        let customer = match customer_or_sign_in(&state, &req, &tenant, &mut chrome).await? {
            Ok(c) => c,
            Err(sign_in) => return Ok(sign_in),
        };
        let ctx = enter_portal(&state, &tenant, &urls, &mut chrome, customer, &portal_id).await?;
        let filter = query.q.as_deref().unwrap_or("").trim();
        let page = HomePage {
            chrome: &chrome,
            desk_name: &ctx.desk.project_name,
            action: urls.portal(&portal_id),
            q: filter,
            filtered: !filter.is_empty(),
            sections: sections(&ctx.desk, &urls, &portal_id, filter),
        };
        Ok(html(StatusCode::OK, page.render()?))
    }
    .await;
    Ok(result.unwrap_or_else(|e: PortalError| e.page(&chrome)))
}

// -------------------------------------------------------------------------------------------------
// Raise a request

#[derive(Template)]
#[template(path = "portal/create.html")]
struct CreatePage<'a> {
    chrome: &'a Chrome,
    desk_name: &'a str,
    type_name: &'a str,
    help_text: &'a str,
    action: String,
    csrf_token: &'a str,
    fields: &'a [FormField],
    blocking: Vec<String>,
    error: Option<String>,
    native_url: String,
}

async fn request_type_fields(
    ctx: &PortalCtx<'_>,
    request_type_id: &str,
) -> Result<(super::portals::RequestTypeInfo, Vec<FormField>), PortalError> {
    let info = ctx
        .desk
        .request_type(request_type_id)
        .cloned()
        .ok_or(PortalError::NotFound("This portal has no such request type."))?;
    let raw: RequestTypeFields = ctx
        .jsm
        .get(&format!(
            "/rest/servicedeskapi/servicedesk/{}/requesttype/{}/field",
            seg(&ctx.desk.service_desk_id),
            seg(request_type_id)
        ))
        .await
        .map_err(|e| match e {
            PortalError::JiraNotFound => PortalError::NotFound("This portal has no such request type."),
            e => e,
        })?;
    Ok((info, fields::form_fields(&raw.request_type_fields)))
}

#[allow(clippy::too_many_arguments)]
fn render_create(
    tenant: &Tenant,
    urls: &Urls,
    chrome: &Chrome,
    ctx: &PortalCtx<'_>,
    portal_id: &str,
    info: &super::portals::RequestTypeInfo,
    form: &[FormField],
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, PortalError> {
    let page = CreatePage {
        chrome,
        desk_name: &ctx.desk.project_name,
        type_name: &info.name,
        help_text: &info.help_text,
        action: urls.create(portal_id, &info.id),
        csrf_token: &ctx.customer.session.csrf_token,
        fields: form,
        blocking: fields::blocking_fields(form),
        error,
        native_url: format!(
            "{}/servicedesk/customer/portal/{portal_id}/create/{}",
            super::portals::help_center_root(tenant),
            info.id
        ),
    };
    Ok(html(status, page.render()?))
}

/// `GET /t/{tenant}/portal/{portal_id}/create/{request_type_id}`
pub async fn create_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, WebError> {
    let (raw_tenant, portal_id, request_type_id) = path.into_inner();
    let (tenant, urls, mut chrome) = open(&state, &req, &raw_tenant).await?;
    let result = async {
        check_portal_id(&portal_id)?;
        let customer = match customer_or_sign_in(&state, &req, &tenant, &mut chrome).await? {
            Ok(c) => c,
            Err(sign_in) => return Ok(sign_in),
        };
        let ctx = enter_portal(&state, &tenant, &urls, &mut chrome, customer, &portal_id).await?;
        let (info, form) = request_type_fields(&ctx, &request_type_id).await?;
        render_create(&tenant, &urls, &chrome, &ctx, &portal_id, &info, &form, None, StatusCode::OK)
    }
    .await;
    Ok(result.unwrap_or_else(|e: PortalError| e.page(&chrome)))
}

/// `POST /t/{tenant}/portal/{portal_id}/create/{request_type_id}`
pub async fn create_submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (raw_tenant, portal_id, request_type_id) = path.into_inner();
    let (tenant, urls, mut chrome) = open(&state, &req, &raw_tenant).await?;
    let result = async {
        check_portal_id(&portal_id)?;
        let customer = customer_for_post(&state, &req, &tenant, &mut chrome).await?;
        let submitted = parse_form(&body);
        csrf::check(&req, &state.settings.base_url, &customer.session.csrf_token, &submitted)?;
        let ctx = enter_portal(&state, &tenant, &urls, &mut chrome, customer, &portal_id).await?;
        let (info, mut form) = request_type_fields(&ctx, &request_type_id).await?;
        fields::apply(&mut form, &submitted);
        let values = match fields::validate(&mut form) {
            Ok(v) => v,
            Err(n) => {
                let error = Some(if n == 1 {
                    "Please correct the field marked below.".to_string()
                } else {
                    format!("Please correct the {n} fields marked below.")
                });
                return render_create(
                    &tenant,
                    &urls,
                    &chrome,
                    &ctx,
                    &portal_id,
                    &info,
                    &form,
                    error,
                    StatusCode::UNPROCESSABLE_ENTITY,
                );
            }
        };
        let body = json!({
            "serviceDeskId": ctx.desk.service_desk_id,
            "requestTypeId": info.id,
            "requestFieldValues": values,
            "raiseOnBehalfOf": ctx.account_id,
        });
        match ctx.jsm.post::<CustomerRequest>("/rest/servicedeskapi/request", &body).await {
            Ok(created) => {
                tracing::info!(tenant = %tenant.id.as_str(), key = %created.issue_key, "request raised for a customer");
                Ok(see_other(format!("{}?created=1", urls.request(&portal_id, &created.issue_key))))
            }
            Err(PortalError::JiraRejected(message)) => {
                let error = Some(format!("Jira Service Management did not accept the request: {message}"));
                render_create(
                    &tenant,
                    &urls,
                    &chrome,
                    &ctx,
                    &portal_id,
                    &info,
                    &form,
                    error,
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
            }
            Err(PortalError::Busy { .. }) => {
                let error = Some(
                    "The helpdesk is busy and your request was not sent yet. Please wait a minute and send it again."
                        .to_string(),
                );
                render_create(
                    &tenant,
                    &urls,
                    &chrome,
                    &ctx,
                    &portal_id,
                    &info,
                    &form,
                    error,
                    StatusCode::SERVICE_UNAVAILABLE,
                )
            }
            Err(e) => Err(e),
        }
    }
    .await;
    Ok(result.unwrap_or_else(|e: PortalError| e.page(&chrome)))
}

// -------------------------------------------------------------------------------------------------
// My requests

#[derive(Deserialize)]
pub struct RequestsQuery {
    status: Option<String>,
    next: Option<String>,
}

pub struct Row {
    pub key: String,
    pub url: String,
    pub summary: String,
    pub status: String,
    pub status_class: &'static str,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "portal/requests.html")]
struct RequestsPage<'a> {
    chrome: &'a Chrome,
    desk_name: &'a str,
    filter: &'a str,
    filters: Vec<(&'static str, &'static str, String)>,
    rows: Vec<Row>,
    next_url: Option<String>,
    first_url: Option<String>,
}

/// JQL string literal.
fn jql_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn my_requests_jql(desk: &Desk, account_id: &str, filter: &str) -> String {
    let project = if desk.project_key.is_empty() { &desk.project_id } else { &desk.project_key };
    let status = match filter {
        "closed" => " AND statusCategory = Done",
        "all" => "",
        _ => " AND statusCategory != Done",
    };
    format!("project = {} AND reporter = {}{status} ORDER BY updated DESC", jql_string(project), jql_string(account_id))
}

/// `GET /t/{tenant}/portal/{portal_id}/requests`
pub async fn my_requests(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: web::Query<RequestsQuery>,
) -> Result<HttpResponse, WebError> {
    let (raw_tenant, portal_id) = path.into_inner();
    let (tenant, urls, mut chrome) = open(&state, &req, &raw_tenant).await?;
    let result = async {
        check_portal_id(&portal_id)?;
        let customer = match customer_or_sign_in(&state, &req, &tenant, &mut chrome).await? {
            Ok(c) => c,
            Err(sign_in) => return Ok(sign_in),
        };
        let ctx = enter_portal(&state, &tenant, &urls, &mut chrome, customer, &portal_id).await?;
        let filter = match query.status.as_deref() {
            Some("closed") => "closed",
            Some("all") => "all",
            _ => "open",
        };
        let next = query.next.as_deref().filter(|t| !t.is_empty() && t.len() <= 2048);
        let mut path = format!(
            "/rest/api/3/search/jql?jql={}&fields=summary,status,updated,created&maxResults={PAGE_SIZE}",
            q(&my_requests_jql(&ctx.desk, &ctx.account_id, filter))
        );
        if let Some(token) = next {
            path.push_str(&format!("&nextPageToken={}", q(token)));
        }
        let found: SearchResults = ctx.jsm.get(&path).await?;
        let base = urls.requests(&portal_id);
        let rows = found
            .issues
            .into_iter()
            .map(|i| {
                let status = i.fields.status.as_ref();
                Row {
                    url: urls.request(&portal_id, &i.key),
                    key: i.key,
                    summary: i.fields.summary.clone().unwrap_or_default(),
                    status: status.map(|s| s.name.clone()).unwrap_or_default(),
                    status_class: status_class(status.and_then(|s| s.status_category.as_ref()).map(|c| c.key.as_str())),
                    updated: i.fields.updated.as_deref().map(format_time).unwrap_or_default(),
                }
            })
            .collect();
        let next_url = found
            .next_page_token
            .filter(|t| !t.is_empty() && found.is_last != Some(true))
            .map(|t| format!("{base}?status={filter}&next={}", q(&t)));
        let page = RequestsPage {
            chrome: &chrome,
            desk_name: &ctx.desk.project_name,
            filter,
            filters: [("open", "Open requests"), ("closed", "Closed requests"), ("all", "All requests")]
                .into_iter()
                .map(|(k, label)| (k, label, format!("{base}?status={k}")))
                .collect(),
            rows,
            next_url,
            first_url: next.map(|_| format!("{base}?status={filter}")),
        };
        Ok(html(StatusCode::OK, page.render()?))
    }
    .await;
    Ok(result.unwrap_or_else(|e: PortalError| e.page(&chrome)))
}

// -------------------------------------------------------------------------------------------------
// A request

pub struct FieldRow {
    pub label: String,
    pub value: String,
}

pub struct CommentRow {
    pub author: String,
    pub created: String,
    pub body: String,
}

#[derive(Template)]
#[template(path = "portal/request.html")]
struct RequestPage<'a> {
    chrome: &'a Chrome,
    key: &'a str,
    summary: String,
    status: String,
    status_class: &'static str,
    request_type: String,
    created: String,
    reporter: String,
    fields: Vec<FieldRow>,
    comments: Vec<CommentRow>,
    comment_action: String,
    csrf_token: &'a str,
    comment_text: &'a str,
    comment_error: Option<&'a str>,
    created_banner: bool,
}

/// The request, if this customer may see it in this portal: the reporter or a participant. Anything
/// else, including another desk's request, is "not found".
async fn load_request(ctx: &PortalCtx<'_>, key: &str) -> Result<CustomerRequest, PortalError> {
    let not_found = || PortalError::NotFound("There is no such request, or it is not yours to see.");
    let request: CustomerRequest =
        ctx.jsm.get(&format!("/rest/servicedeskapi/request/{}", seg(key))).await.map_err(|e| match e {
            PortalError::JiraNotFound => not_found(),
            e => e,
        })?;
    if request.service_desk_id != ctx.desk.service_desk_id {
        return Err(not_found());
    }
    if request.reporter.as_ref().is_some_and(|r| r.account_id == ctx.account_id) {
        return Ok(request);
    }
    let participants: Vec<User> =
        ctx.jsm.get_all(&format!("/rest/servicedeskapi/request/{}/participant", seg(key))).await.map_err(
            |e| match e {
                PortalError::JiraNotFound => not_found(),
                e => e,
            },
        )?;
    if participants.iter().any(|p| p.account_id == ctx.account_id) { Ok(request) } else { Err(not_found()) }
}

#[allow(clippy::too_many_arguments)]
async fn render_request(
    urls: &Urls,
    chrome: &Chrome,
    ctx: &PortalCtx<'_>,
    portal_id: &str,
    request: &CustomerRequest,
    comment_text: &str,
    comment_error: Option<&str>,
    created_banner: bool,
    status: StatusCode,
) -> Result<HttpResponse, PortalError> {
    let key = request.issue_key.as_str();
    let comments: Vec<Comment> = ctx
        .jsm
        .get_all(&format!("/rest/servicedeskapi/request/{}/comment?public=true&internal=false", seg(key)))
        .await?;
    let summary = request
        .request_field_values
        .iter()
        .find(|f| f.field_id == "summary")
        .map(|f| display_value(&f.value))
        .unwrap_or_else(|| key.to_string());
    let fields = request
        .request_field_values
        .iter()
        .filter(|f| f.field_id != "summary")
        .map(|f| FieldRow {
            label: if f.label.is_empty() { f.field_id.clone() } else { f.label.clone() },
            value: display_value(&f.value),
        })
        .filter(|f| !f.value.is_empty())
        .collect();
    let current = request.current_status.as_ref();
    let page = RequestPage {
        chrome,
        key,
        summary,
        status: current.map(|s| s.status.clone()).unwrap_or_default(),
        status_class: status_class(current.and_then(|s| s.status_category.as_deref())),
        request_type: ctx.desk.request_type(&request.request_type_id).map(|t| t.name.clone()).unwrap_or_default(),
        created: format_date(request.created_date.as_ref()),
        reporter: request.reporter.as_ref().and_then(|r| r.display_name.clone()).unwrap_or_default(),
        fields,
        comments: comments
            .into_iter()
            .filter(|c| c.public)
            .map(|c| CommentRow {
                author: c.author.and_then(|a| a.display_name).unwrap_or_default(),
                created: format_date(c.created.as_ref()),
                body: c.body,
            })
            .collect(),
        comment_action: urls.comment(portal_id, key),
        csrf_token: &ctx.customer.session.csrf_token,
        comment_text,
        comment_error,
        created_banner,
    };
    Ok(html(status, page.render()?))
}

#[derive(Deserialize)]
pub struct RequestQuery {
    created: Option<String>,
}

/// `GET /t/{tenant}/portal/{portal_id}/requests/{key}`
pub async fn request(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    query: web::Query<RequestQuery>,
) -> Result<HttpResponse, WebError> {
    let (raw_tenant, portal_id, raw_key) = path.into_inner();
    let (tenant, urls, mut chrome) = open(&state, &req, &raw_tenant).await?;
    let result = async {
        check_portal_id(&portal_id)?;
        let key = check_issue_key(&raw_key)?;
        let customer = match customer_or_sign_in(&state, &req, &tenant, &mut chrome).await? {
            Ok(c) => c,
            Err(sign_in) => return Ok(sign_in),
        };
        let ctx = enter_portal(&state, &tenant, &urls, &mut chrome, customer, &portal_id).await?;
        let request = load_request(&ctx, &key).await?;
        let created = query.created.as_deref() == Some("1");
        render_request(&urls, &chrome, &ctx, &portal_id, &request, "", None, created, StatusCode::OK).await
    }
    .await;
    Ok(result.unwrap_or_else(|e: PortalError| e.page(&chrome)))
}

/// The comment as posted by the service account: attributed to the customer by name.
pub fn attributed_comment(session: &crate::store::CustomerSession, text: &str) -> String {
    let name = display_name(session);
    let who = match session.email.as_deref() {
        Some(email) if email != name => format!("{name} ({email})"),
        _ => name,
    };
    format!("On behalf of {who}:\n\n{}", text.replace("\r\n", "\n"))
}

/// `POST /t/{tenant}/portal/{portal_id}/requests/{key}/comment`
pub async fn add_comment(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (raw_tenant, portal_id, raw_key) = path.into_inner();
    let (tenant, urls, mut chrome) = open(&state, &req, &raw_tenant).await?;
    let result = async {
        check_portal_id(&portal_id)?;
        let key = check_issue_key(&raw_key)?;
        let customer = customer_for_post(&state, &req, &tenant, &mut chrome).await?;
        let form = parse_form(&body);
        csrf::check(&req, &state.settings.base_url, &customer.session.csrf_token, &form)?;
        let ctx = enter_portal(&state, &tenant, &urls, &mut chrome, customer, &portal_id).await?;
        let request = load_request(&ctx, &key).await?;
        let text = form.iter().find(|(k, _)| k == "body").map(|(_, v)| v.as_str()).unwrap_or("");
        let problem = if text.trim().is_empty() {
            Some("Write a comment first.")
        } else if text.chars().count() > MAX_COMMENT {
            Some("This comment is too long.")
        } else {
            None
        };
        if let Some(problem) = problem {
            return render_request(
                &urls,
                &chrome,
                &ctx,
                &portal_id,
                &request,
                text,
                Some(problem),
                false,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
        let comment = json!({ "body": attributed_comment(&ctx.customer.session, text.trim_end()), "public": true });
        match ctx
            .jsm
            .post::<Value>(&format!("/rest/servicedeskapi/request/{}/comment", seg(&request.issue_key)), &comment)
            .await
        {
            Ok(_) => Ok(see_other(format!("{}#comments", urls.request(&portal_id, &request.issue_key)))),
            Err(PortalError::Busy { .. }) => {
                let problem =
                    "The helpdesk is busy and your comment was not sent yet. Please wait a minute and send it again.";
                render_request(
                    &urls,
                    &chrome,
                    &ctx,
                    &portal_id,
                    &request,
                    text,
                    Some(problem),
                    false,
                    StatusCode::SERVICE_UNAVAILABLE,
                )
                .await
            }
            Err(e) => Err(e),
        }
    }
    .await;
    Ok(result.unwrap_or_else(|e: PortalError| e.page(&chrome)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_shown_as_text() {
        assert_eq!(display_value(&json!("x")), "x");
        assert_eq!(display_value(&json!({"id": "1", "value": "Paris"})), "Paris");
        assert_eq!(display_value(&json!([{"name": "Mail"}, {"name": "VPN"}])), "Mail, VPN");
        assert_eq!(display_value(&json!({"displayName": "Alice", "accountId": "a"})), "Alice");
        let adf = json!({"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "Hello"}]},
            {"type": "paragraph", "content": [{"type": "text", "text": "World"}]}]});
        assert_eq!(display_value(&adf), "Hello\nWorld");
        assert_eq!(display_value(&Value::Null), "");
    }

    #[test]
    fn comments_are_attributed_and_use_lf_line_breaks() {
        let session = crate::store::CustomerSession {
            tenant_id: crate::tenants::TenantId::from_stored("t".into()),
            idp_id: crate::saml::idp::IdpId::from_stored("i".into()),
            email: Some("alice@example.com".into()),
            display_name: Some("Alice Liddell".into()),
            name_id: "alice".into(),
            name_id_format: None,
            session_index: None,
            attributes: Value::Null,
            account_id: None,
            csrf_token: "c".into(),
            created_at: chrono::Utc::now(),
            expires_at: chrono::Utc::now(),
        };
        assert_eq!(
            attributed_comment(&session, "line 1\r\nline 2"),
            "On behalf of Alice Liddell (alice@example.com):\n\nline 1\nline 2"
        );
    }

    #[test]
    fn times_are_shown_in_utc() {
        assert_eq!(format_time("2024-05-01T10:00:00.000+0000"), "2024-05-01 10:00 UTC");
        assert_eq!(format_time("2015-10-08T14:42:00+0700"), "2015-10-08 07:42 UTC");
        assert_eq!(format_time("garbage"), "garbage");
    }

    #[test]
    fn issue_keys_and_portal_ids_are_checked() {
        assert_eq!(check_issue_key("ith-12").unwrap(), "ITH-12");
        assert!(check_issue_key("ITH-").is_err());
        assert!(check_issue_key("../x-1").is_err());
        assert!(check_issue_key("1TH-1").is_err());
        assert!(check_portal_id("12").is_ok());
        assert!(check_portal_id("1a").is_err());
        assert!(check_portal_id("").is_err());
    }

    #[test]
    fn jql_quotes_values() {
        let desk = Desk {
            service_desk_id: "1".into(),
            project_id: "10".into(),
            project_key: "ITH".into(),
            project_name: "IT".into(),
            portal_id: Some("3".into()),
            request_types: vec![],
            groups: vec![],
        };
        assert_eq!(
            my_requests_jql(&desk, "qm:1\"x", "open"),
            r#"project = "ITH" AND reporter = "qm:1\"x" AND statusCategory != Done ORDER BY updated DESC"#
        );
        assert!(my_requests_jql(&desk, "a", "closed").contains("statusCategory = Done"));
        assert!(!my_requests_jql(&desk, "a", "all").contains("statusCategory"));
    }
}
