//! `POST /t/{tenant}/saml/acs`: the strict pipeline of shared/docs/saml-sp.md §8, then a customer
//! session (or, in test mode, a report). Every outcome is a login event with the precise reason.

use actix_web::http::StatusCode;
use actix_web::http::header::{ContentType, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Duration, Utc};
use futures_util::StreamExt;
use serde_json::json;

use super::error::LoginFailure;
use super::idp::Idp;
use super::pages::{MessagePage, message};
use super::precheck::{PrecheckPolicy, precheck_response};
use super::session::{BROWSER_COOKIE, customer_tenant, new_token, session_cookie, token_hash};
use super::sp::SpEndpoints;
use super::validate::{self, Decoded, ValidatedLogin};
use crate::startup::AppState;
use crate::store::{CustomerSession, LoginEvent, PendingRequest};
use crate::tenants::Tenant;
use crate::web::{ErrorFormat, WebError};

/// Largest ACS body accepted (real responses are a few KiB; signed aggregates of attributes maybe 100).
pub const MAX_BODY: usize = 512 * 1024;

fn internal(e: impl Into<anyhow::Error>) -> WebError {
    WebError::internal(&e.into(), ErrorFormat::Html)
}

/// Reads a request body with a hard limit (`max` bytes).
pub(crate) async fn read_body(mut payload: web::Payload, max: usize) -> Result<Vec<u8>, LoginFailure> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| LoginFailure::malformed("body", "the request body could not be read"))?;
        if body.len() + chunk.len() > max {
            return Err(LoginFailure::malformed("too_large", format!("the message is larger than {} KiB", max / 1024)));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The IdP and pending request a response belongs to, decided from unverified values, then checked.
struct Context {
    idp: Idp,
    pending: Option<PendingRequest>,
}

pub async fn acs(
    state: web::Data<AppState>,
    req: HttpRequest,
    tenant: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, WebError> {
    let tenant = customer_tenant(&state, &tenant).await?;
    let now = Utc::now();
    let browser = req.cookie(BROWSER_COOKIE).map(|c| token_hash(c.value()));
    let mut idp_for_event = None;
    let mut test_mode = false;
    let body = read_body(payload, MAX_BODY).await;
    if let Ok(b) = &body {
        let has = |name: &str| url::form_urlencoded::parse(b).any(|(k, _)| k == name);
        if has("SAMLRequest") && !has("SAMLResponse") {
            return super::slo::form_at_acs(&state, &req, &tenant, b).await;
        }
    }
    let outcome = async {
        let body = body?;
        let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
        let saml_response = form
            .iter()
            .find(|(k, _)| k == "SAMLResponse")
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| LoginFailure::malformed("empty", "the form has no SAMLResponse"))?;
        // Pre-check with SHA-1 tolerated only to read the unverified routing values; the IdP's own
        // policy is applied as soon as the IdP is known.
        let decoded = validate::decode(saml_response, true)?;
        let ctx = context(&state, &tenant, &decoded, browser.as_deref(), now).await?;
        idp_for_event = Some(ctx.idp.clone());
        test_mode = ctx.pending.as_ref().is_some_and(|p| p.test_mode);
        if !ctx.idp.settings.allow_sha1 {
            precheck_response(&decoded.xml, &PrecheckPolicy { allow_sha1: false })?;
        }
        let login = verify(&state, &tenant, &ctx, decoded, now).await?;
        if let Some(pending) = &ctx.pending {
            let consumed = state
                .store
                .consume_authn_request(&pending.id, browser.as_deref().unwrap_or_default(), now)
                .await
                .map_err(|e| LoginFailure::refused("internal", e.to_string()))?;
            if !consumed {
                return Err(LoginFailure::refused("replay", "this sign-in request was already answered"));
            }
        }
        if !state
            .store
            .mark_assertion_used(&ctx.idp.id, &login.assertion_id, login.replay_window_end)
            .await
            .map_err(|e| LoginFailure::refused("internal", e.to_string()))?
        {
            return Err(LoginFailure::refused("replay", "this assertion was already used to sign in")
                .with("assertion_id", login.assertion_id.clone()));
        }
        Ok((ctx, login))
    }
    .await;

    match outcome {
        Ok((ctx, login)) if ctx.pending.as_ref().is_some_and(|p| p.test_mode) => {
            let event = record(
                &state,
                &tenant,
                Some(&ctx.idp),
                "test_success",
                "test sign-in succeeded",
                Some(&login),
                None,
                now,
            )
            .await?;
            Ok(test_page(&state, &ctx.idp, Ok(&login), &event))
        }
        Ok((ctx, login)) => succeed(&state, &tenant, ctx, login, now).await,
        Err(failure) => {
            let outcome = if test_mode { "test_failure" } else { "failure" };
            let event =
                record(&state, &tenant, idp_for_event.as_ref(), outcome, &failure.message, None, Some(&failure), now)
                    .await?;
            tracing::info!(tenant = %tenant.id.as_str(), code = failure.code, reference = %event, "sign-in refused");
            if test_mode && let Some(idp) = &idp_for_event {
                return Ok(test_page(&state, idp, Err(&failure), &event));
            }
            let status = if failure.malformed { StatusCode::BAD_REQUEST } else { StatusCode::FORBIDDEN };
            Ok(message(
                &state,
                MessagePage {
                    status,
                    title: "Sign-in failed",
                    message: failure.public_message(),
                    reference: Some(&event),
                    link: Some((&SpEndpoints::new(&state.settings.base_url, &tenant.public_id).login_url, "Try again")),
                },
            ))
        }
    }
}

/// Picks the IdP: from this browser's pending request that the response answers, or (unsolicited) by
/// Issuer among this tenant's IdPs.
async fn context(
    state: &AppState,
    tenant: &Tenant,
    decoded: &Decoded,
    browser: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Context, LoginFailure> {
    let store_err = |e: crate::store::StoreError| LoginFailure::refused("internal", e.to_string());
    let idps = state.store.list_idps(&tenant.id).await.map_err(store_err)?;
    let issuer = decoded.prechecked.issuer.clone();
    let by_issuer = || idps.iter().find(|i| Some(&i.entity_id) == issuer.as_ref()).cloned();
    match &decoded.prechecked.in_response_to {
        Some(request_id) => {
            let pending = match browser {
                Some(b) => state.store.pending_requests(&tenant.id, b, now).await.map_err(store_err)?,
                None => vec![],
            };
            let Some(pending) = pending.into_iter().find(|p| &p.id == request_id) else {
                let failure = LoginFailure::refused(
                    "in_response_to_mismatch",
                    "the response answers a sign-in request this browser did not start here, or one that expired or was already used",
                )
                .with("in_response_to", request_id.clone());
                return Err(match by_issuer() {
                    Some(_) => failure,
                    None => failure.with("issuer", issuer.clone()),
                });
            };
            let idp = idps.into_iter().find(|i| i.id == pending.idp_id).ok_or_else(|| {
                LoginFailure::refused("unknown_idp", "the identity provider of this sign-in was removed meanwhile")
            })?;
            Ok(Context { idp, pending: Some(pending) })
        }
        None => {
            let idp = by_issuer().ok_or_else(|| {
                LoginFailure::refused("unknown_issuer", "no identity provider of this site has this entity ID")
                    .expected(idps.iter().map(|i| i.entity_id.clone()).collect::<Vec<_>>(), issuer.clone())
            })?;
            if !idp.enabled {
                return Err(LoginFailure::refused("idp_disabled", "this identity provider is disabled"));
            }
            if !idp.settings.allow_idp_initiated {
                return Err(LoginFailure::refused(
                    "unsolicited_not_allowed",
                    "the response answers no sign-in started here (IdP-initiated), and IdP-initiated sign-in is off for this IdP",
                ));
            }
            Ok(Context { idp, pending: None })
        }
    }
}

/// Signature and conditions, off the async threads (libxmlsec1 is CPU work).
async fn verify(
    state: &AppState,
    tenant: &Tenant,
    ctx: &Context,
    decoded: Decoded,
    now: DateTime<Utc>,
) -> Result<ValidatedLogin, LoginFailure> {
    let sp = SpEndpoints::new(&state.settings.base_url, &tenant.public_id);
    let verifiers = state
        .saml_verifiers
        .get_or_try_insert(&ctx.idp.id, ctx.idp.updated_at, || validate::verifiers(&sp, &ctx.idp))?;
    let idp = ctx.idp.clone();
    let request_id = ctx.pending.as_ref().map(|p| p.id.clone());
    let login = web::block(move || validate::verify(&decoded, &verifiers, &sp, &idp, request_id.as_deref(), now))
        .await
        .map_err(|_| LoginFailure::refused("internal", "the verification task failed"))??;
    if login.email.is_none() && !ctx.pending.as_ref().is_some_and(|p| p.test_mode) {
        let expected = match &ctx.idp.settings.email_attribute {
            Some(a) => a.clone(),
            None => super::idp::DEFAULT_EMAIL_ATTRIBUTES.join(", "),
        };
        return Err(LoginFailure::refused(
            "email_missing",
            format!(
                "the assertion carries no email address; expected the attribute {expected} (or an emailAddress NameID)"
            ),
        )
        .with("expected_attribute", expected)
        .with("attributes", login.attributes.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>())
        .with("name_id", login.name_id.clone()));
    }
    Ok(login)
}

async fn succeed(
    state: &AppState,
    tenant: &Tenant,
    ctx: Context,
    login: ValidatedLogin,
    now: DateTime<Utc>,
) -> Result<HttpResponse, WebError> {
    let mut expires_at = now + Duration::hours(i64::from(ctx.idp.settings.session_hours));
    if let Some(limit) = login.session_not_on_or_after {
        expires_at = expires_at.min(limit);
    }
    let token = new_token();
    let session = CustomerSession {
        tenant_id: tenant.id.clone(),
        idp_id: ctx.idp.id.clone(),
        email: login.email.clone(),
        display_name: login.display_name.clone(),
        name_id: login.name_id.clone(),
        name_id_format: login.name_id_format.clone(),
        session_index: login.session_index.clone(),
        attributes: json!(login.attributes),
        account_id: None,
        csrf_token: crate::crypto::random::token::<24>(),
        created_at: now,
        expires_at,
    };
    let session_hash = token_hash(&token);
    state.store.insert_session(&session_hash, &session).await.map_err(internal)?;
    state.store.touch_idp_login(&ctx.idp.id, now).await.map_err(internal)?;
    record(state, tenant, Some(&ctx.idp), "success", "signed in", Some(&login), None, now).await?;
    // Find or create the JSM customer now; a failure does not block the sign-in, because the helpdesk
    // provisions again on the first page that needs the account.
    if let Err(e) = crate::portal::provision(state, tenant, &session_hash, &session, &ctx.idp).await {
        tracing::warn!(tenant = %tenant.id.as_str(), error = %e, "customer provisioning at sign-in failed; retried by the helpdesk");
    }
    let return_to = ctx.pending.map(|p| p.return_to).unwrap_or_else(|| super::login::default_return_to(state, tenant));
    Ok(HttpResponse::SeeOther()
        .cookie(session_cookie(state, &tenant.public_id, &token, (expires_at - now).num_seconds()))
        .insert_header((LOCATION, return_to))
        .finish())
}

#[allow(clippy::too_many_arguments)]
async fn record(
    state: &AppState,
    tenant: &Tenant,
    idp: Option<&Idp>,
    outcome: &str,
    message: &str,
    login: Option<&ValidatedLogin>,
    failure: Option<&LoginFailure>,
    now: DateTime<Utc>,
) -> Result<String, WebError> {
    let mut event = LoginEvent::new(tenant.id.clone(), idp.map(|i| i.id.clone()), outcome, message, now);
    if let Some(l) = login {
        event.details = l.details();
        event.name_id = Some(l.name_id.clone());
        event.email = l.email.clone();
    }
    if let Some(f) = failure {
        event.reason_code = Some(f.code.to_string());
        event.details = f.details.clone();
    }
    state.store.insert_login_event(&event).await.map_err(internal)?;
    Ok(event.id)
}

#[derive(Template)]
#[template(path = "saml/test_result.html")]
struct TestResult<'a> {
    asset_base: &'a str,
    idp_name: &'a str,
    success: bool,
    code: &'a str,
    message: &'a str,
    facts: Vec<(String, String)>,
    attributes: Vec<(String, Vec<String>)>,
}

fn test_page(
    state: &AppState,
    idp: &Idp,
    result: Result<&ValidatedLogin, &LoginFailure>,
    reference: &str,
) -> HttpResponse {
    let mut facts = vec![("Reference".to_string(), reference.to_string())];
    let (success, code, message, attributes) = match result {
        Ok(l) => {
            facts.push(("NameID".into(), l.name_id.clone()));
            facts.push(("NameID format".into(), l.name_id_format.clone().unwrap_or_else(|| "(none)".into())));
            facts.push((
                "Email".into(),
                l.email.clone().unwrap_or_else(|| "(not found: customers could not sign in)".into()),
            ));
            facts.push(("Display name".into(), l.display_name.clone().unwrap_or_default()));
            facts.push(("SessionIndex".into(), l.session_index.clone().unwrap_or_default()));
            for (element, sig, digest) in &l.signatures {
                facts.push((format!("{element} signed with"), format!("{sig} / {digest}")));
            }
            facts.push(("Signing certificate (SHA-256)".into(), l.certificate_fingerprint.clone()));
            facts.push(("Clock difference".into(), format!("{} s (IdP minus this service)", l.clock_difference_secs)));
            (true, "", "", l.attributes.clone())
        }
        Err(f) => {
            if let Some(obj) = f.details.as_object() {
                for (k, v) in obj {
                    facts.push((k.clone(), v.to_string()));
                }
            }
            (false, f.code, f.message.as_str(), vec![])
        }
    };
    let body = TestResult {
        asset_base: state.settings.base_url.as_str(),
        idp_name: &idp.name,
        success,
        code,
        message,
        facts,
        attributes,
    }
    .render()
    .unwrap_or_default();
    HttpResponse::build(if success { StatusCode::OK } else { StatusCode::FORBIDDEN })
        .content_type(ContentType::html())
        .body(body)
}
