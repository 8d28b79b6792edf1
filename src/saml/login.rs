//! `GET /t/{tenant}/login?idp=&return_to=&test=1`: sends the customer to their IdP with an
//! AuthnRequest (HTTP-Redirect, signed; or an auto-submitted HTTP-POST form when the IdP only has POST).

use actix_web::http::StatusCode;
use actix_web::http::header::{ContentType, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{Duration, Utc};
use serde::Deserialize;

use super::authn_request::{AuthnRequest, new_request_id};
use super::idp::{Binding, Idp, IdpId};
use super::pages::{MessagePage, message, post_form};
use super::redirect::{MessageKind, encode_redirect_url};
use super::session::{BROWSER_COOKIE, browser_cookie, customer_tenant, new_token, token_hash};
use super::sp::{SpEndpoints, keys};
use crate::startup::AppState;
use crate::tenants::Tenant;
use crate::web::{ErrorFormat, WebError};

/// How long a started sign-in may take.
pub const PENDING_LIFETIME: Duration = Duration::minutes(10);

#[derive(Deserialize)]
pub struct LoginQuery {
    idp: Option<String>,
    return_to: Option<String>,
    test: Option<String>,
}

/// The tenant's home for customers (the portal, once signed in).
pub fn default_return_to(state: &AppState, tenant: &Tenant) -> String {
    format!("{}/t/{}/", state.settings.base_url.path_prefix(), tenant.public_id)
}

/// `return_to` must be a path of this tenant on this service: no scheme, no host, no `//`, no `\`.
pub fn safe_return_to(state: &AppState, tenant: &Tenant, raw: Option<&str>) -> Result<String, &'static str> {
    let Some(raw) = raw.filter(|s| !s.is_empty()) else { return Ok(default_return_to(state, tenant)) };
    let prefix = format!("{}/t/{}/", state.settings.base_url.path_prefix(), tenant.public_id);
    let ok = raw.starts_with(&prefix)
        && !raw.contains("//")
        && !raw.contains('\\')
        && !raw.contains("/../")
        && !raw.contains("/./")
        && !raw.chars().any(|c| c.is_control())
        && raw.len() <= 1024;
    if ok { Ok(raw.to_string()) } else { Err("return_to must be a page of this helpdesk") }
}

#[derive(Template)]
#[template(path = "saml/choose_idp.html")]
struct Chooser<'a> {
    asset_base: &'a str,
    site_name: String,
    choices: Vec<(String, String)>,
}

fn internal(e: impl Into<anyhow::Error>) -> WebError {
    WebError::internal(&e.into(), ErrorFormat::Html)
}

pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    tenant: web::Path<String>,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, WebError> {
    let tenant = customer_tenant(&state, &tenant).await?;
    let test_mode = query.test.as_deref().is_some_and(|t| t == "1" || t == "true");
    let return_to = match safe_return_to(&state, &tenant, query.return_to.as_deref()) {
        Ok(r) => r,
        Err(why) => {
            return Ok(message(
                &state,
                MessagePage {
                    status: StatusCode::BAD_REQUEST,
                    title: "This link is not valid",
                    message: why,
                    reference: None,
                    link: None,
                },
            ));
        }
    };
    let idps = state.store.list_idps(&tenant.id).await.map_err(internal)?;
    let idp = match query.idp.as_deref() {
        Some(raw) => {
            let id = IdpId::parse(raw);
            // Admins test IdPs before enabling them; customers only use enabled ones.
            idps.into_iter().find(|i| Some(&i.id) == id.as_ref() && (i.enabled || test_mode))
        }
        None => {
            let enabled: Vec<Idp> = idps.into_iter().filter(|i| i.enabled).collect();
            if enabled.len() > 1 {
                return Ok(choose(&state, &tenant, &enabled, &return_to));
            }
            enabled.into_iter().next()
        }
    };
    let Some(idp) = idp else {
        return Ok(message(
            &state,
            MessagePage {
                status: StatusCode::NOT_FOUND,
                title: "Sign-in is not available",
                message: "This helpdesk has no identity provider for signing in yet. Please contact its administrators.",
                reference: None,
                link: None,
            },
        ));
    };
    start(&state, &req, &tenant, &idp, &return_to, test_mode).await
}

fn choose(state: &AppState, tenant: &Tenant, idps: &[Idp], return_to: &str) -> HttpResponse {
    let sp = SpEndpoints::new(&state.settings.base_url, &tenant.public_id);
    let return_to: String = url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect();
    let choices =
        idps.iter().map(|i| (i.name.clone(), format!("{}?idp={}&return_to={return_to}", sp.login_url, i.id))).collect();
    let body = Chooser { asset_base: state.settings.base_url.as_str(), site_name: tenant.site_name(), choices }
        .render()
        .unwrap_or_default();
    HttpResponse::Ok().content_type(ContentType::html()).body(body)
}

/// Records the pending request for this browser and sends the AuthnRequest.
pub async fn start(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    idp: &Idp,
    return_to: &str,
    test_mode: bool,
) -> Result<HttpResponse, WebError> {
    let now = Utc::now();
    let sp = SpEndpoints::new(&state.settings.base_url, &tenant.public_id);
    let browser =
        req.cookie(BROWSER_COOKIE).map(|c| c.value().to_string()).filter(|v| v.len() >= 40).unwrap_or_else(new_token);
    let id = new_request_id();
    state
        .store
        .insert_authn_request(
            &id,
            &tenant.id,
            &idp.id,
            &token_hash(&browser),
            return_to,
            test_mode,
            now,
            now + PENDING_LIFETIME,
        )
        .await
        .map_err(internal)?;
    let xml = AuthnRequest {
        id: &id,
        issue_instant: now,
        destination: &idp.sso.location,
        acs_url: &sp.acs_url,
        issuer: &sp.entity_id,
        force_authn: idp.settings.force_authn || test_mode,
        name_id_format: idp.settings.name_id_format.as_deref(),
    }
    .to_xml();
    let sp_keys =
        if idp.settings.sign_authn_requests { Some(keys(state, tenant).await.map_err(internal)?) } else { None };
    // RelayState is opaque and carries nothing: the pending request decides where the customer goes.
    let relay_state = crate::crypto::random::token::<12>();
    let cookie = browser_cookie(state, &tenant.public_id, &browser);
    match idp.sso.binding {
        Binding::HttpRedirect => {
            let url = encode_redirect_url(
                &idp.sso.location,
                MessageKind::Request,
                &xml,
                Some(&relay_state),
                sp_keys.as_ref().map(|k| &k.current.private_key),
            )
            .map_err(internal)?;
            Ok(HttpResponse::SeeOther().cookie(cookie).insert_header((LOCATION, url)).finish())
        }
        Binding::HttpPost => {
            let xml = match &sp_keys {
                Some(k) => super::xml_sign::sign_root(&xml, &id, &k.current).map_err(internal)?,
                None => xml,
            };
            let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, xml.as_bytes());
            let mut response = post_form(
                state,
                &idp.sso.location,
                "SAMLRequest",
                &encoded,
                Some(&relay_state),
                "Taking you to your sign-in page…",
            );
            response.add_cookie(&cookie).map_err(internal)?;
            Ok(response)
        }
    }
}
