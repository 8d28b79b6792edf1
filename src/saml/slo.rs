//! Single logout (saml-profiles §4.4).
//!
//! * `GET /t/{tenant}/logout` ([`logout`]): ends the local session, then, when the session's IdP has an
//!   SLO endpoint, sends it a LogoutRequest (HTTP-Redirect with a signed query, or an auto-submitted
//!   HTTP-POST form with an enveloped signature).
//! * `GET|POST /t/{tenant}/saml/slo` ([`slo_get`], [`slo_post`]): the IdP's LogoutResponse to that, or an
//!   IdP-initiated LogoutRequest over HTTP-Redirect, HTTP-POST or SOAP (back-channel: server to server,
//!   no cookies). WSO2 IS's "back-channel" logout is in fact a server-to-server form POST of
//!   `SAMLRequest=base64(LogoutRequest)` (optionally base64 of a SOAP envelope), so it arrives through
//!   the HTTP-POST path here.
//!
//! Trust: the unverified Issuer only picks which of the tenant's IdPs to verify against. Redirect
//! messages are verified over the raw query ([`decode_redirect_query`], always requiring a signature);
//! POST and SOAP messages pass the strict pre-check ([`logout_xml::precheck`]) and are then reduced by
//! libxmlsec1 to their signed content, which is the only thing read. samael's `LogoutRequest` type is
//! not used (it reads SessionIndex as an attribute and never reads NameID's Format).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, LOCATION};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use openssl::pkey::{PKey, Public};
use serde_json::{Value, json};

use super::authn_request::new_request_id;
use super::error::LoginFailure;
use super::idp::{Binding, Endpoint, Idp, IdpId, binding_name};
use super::login::default_return_to;
use super::logout_xml::{
    self, Envelope, LogoutKind, LogoutRequestData, LogoutRequestXml, LogoutResponseXml, Prechecked,
    STATUS_REQUEST_DENIED, STATUS_REQUESTER, STATUS_SUCCESS, SoapVersion,
};
use super::pages::{MessagePage, message, post_form};
use super::redirect::{MAX_RELAY_STATE_BYTES, MessageKind, RedirectError, decode_redirect_query, encode_redirect_url};
use super::session::{Customer, SESSION_COOKIE, customer_tenant, removal_cookie, token_hash};
use super::sp::{SpEndpoints, keys};
use super::xml_sign::sign_root;
use crate::startup::AppState;
use crate::store::LoginEvent;
use crate::tenants::{Tenant, TenantId};
use crate::web::{ErrorFormat, WebError};

/// Largest SLO request body (a signed LogoutRequest is 3–5 KiB).
pub const MAX_BODY: usize = 256 * 1024;
/// How long a LogoutRequest we sent stays answerable (and its `NotOnOrAfter`).
pub const PENDING_LIFETIME: Duration = Duration::minutes(10);
/// Bound on remembered LogoutRequests (memory).
const MAX_PENDING: usize = 100_000;

fn internal(e: impl Into<anyhow::Error>) -> WebError {
    WebError::internal(&e.into(), ErrorFormat::Html)
}

// ---------------------------------------------------------------------------------------------
// Pending LogoutRequests

/// A LogoutRequest we sent and whose answer we expect.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PendingLogout {
    tenant: TenantId,
    idp: IdpId,
    expires_at: DateTime<Utc>,
}

/// Pending LogoutRequests are kept in memory, not in the database (the `authn_requests` table is for
/// AuthnRequests, and a LogoutResponse has no security effect: the local session ended before the
/// request was sent). Consequence with several replicas: a LogoutResponse that lands on another
/// replica than the one that sent the request has an unknown `InResponseTo`; it is still accepted
/// when its signature verifies, and the customer sees "signed out" (which is true). A known ID that
/// belongs to another tenant or IdP is refused.
fn pending() -> &'static Mutex<HashMap<String, PendingLogout>> {
    static PENDING: OnceLock<Mutex<HashMap<String, PendingLogout>>> = OnceLock::new();
    PENDING.get_or_init(Mutex::default)
}

fn remember_pending(id: &str, tenant: &TenantId, idp: &IdpId, now: DateTime<Utc>) {
    let mut map = pending().lock().unwrap_or_else(|e| e.into_inner());
    map.retain(|_, p| p.expires_at > now);
    if map.len() < MAX_PENDING {
        map.insert(
            id.to_string(),
            PendingLogout { tenant: tenant.clone(), idp: idp.clone(), expires_at: now + PENDING_LIFETIME },
        );
    }
}

fn find_pending(id: &str, now: DateTime<Utc>) -> Option<PendingLogout> {
    let map = pending().lock().unwrap_or_else(|e| e.into_inner());
    map.get(id).filter(|p| p.expires_at > now).cloned()
}

fn forget_pending(id: &str) {
    pending().lock().unwrap_or_else(|e| e.into_inner()).remove(id);
}

// ---------------------------------------------------------------------------------------------
// Events and pages

#[allow(clippy::too_many_arguments)]
async fn record(
    state: &AppState,
    tenant: &Tenant,
    idp: Option<&IdpId>,
    outcome: &str,
    message: String,
    reason: Option<&str>,
    details: Value,
    name_id: Option<String>,
    email: Option<String>,
) -> Result<String, WebError> {
    let mut event = LoginEvent::new(tenant.id.clone(), idp.cloned(), outcome, message, Utc::now());
    event.reason_code = reason.map(str::to_string);
    event.details = details;
    event.name_id = name_id;
    event.email = email;
    state.store.insert_login_event(&event).await.map_err(internal)?;
    Ok(event.id)
}

fn page(
    state: &AppState,
    tenant: &Tenant,
    status: StatusCode,
    title: &str,
    text: &str,
    reference: Option<&str>,
) -> HttpResponse {
    let home = default_return_to(state, tenant);
    message(state, MessagePage { status, title, message: text, reference, link: Some((&home, "Go to the helpdesk")) })
}

/// Adds the session removal cookie when the browser's session no longer exists (it was just ended).
async fn clear_ended_session(state: &AppState, req: &HttpRequest, tenant: &Tenant, response: &mut HttpResponse) {
    let Some(cookie) = req.cookie(SESSION_COOKIE) else { return };
    let gone = matches!(state.store.find_session(&tenant.id, &token_hash(cookie.value()), Utc::now()).await, Ok(None));
    if gone {
        let _ = response.add_cookie(&removal_cookie(state, &tenant.public_id, SESSION_COOKIE));
    }
}

// ---------------------------------------------------------------------------------------------
// SP-initiated: GET /t/{tenant}/logout

/// `GET /t/{tenant}/logout`: ends the customer's session here, then asks their IdP to end its session
/// too when it has a single-logout endpoint. Without a session (or an SLO endpoint): the tenant home.
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    tenant: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let tenant = customer_tenant(&state, &tenant).await?;
    let removal = removal_cookie(&state, &tenant.public_id, SESSION_COOKIE);
    let home = default_return_to(&state, &tenant);
    let go_home = || HttpResponse::SeeOther().cookie(removal.clone()).insert_header((LOCATION, home.clone())).finish();
    let Some(customer) = Customer::find(&state, &req, tenant.clone()).await? else { return Ok(go_home()) };

    let now = Utc::now();
    state.store.delete_session(&customer.token_hash).await.map_err(internal)?;
    let session = &customer.session;
    let idp = state.store.find_idp(&tenant.id, &session.idp_id).await.map_err(internal)?;
    let slo = idp.as_ref().and_then(|i| i.slo.clone());
    record(
        &state,
        &tenant,
        Some(&session.idp_id),
        "logout",
        "signed out".into(),
        None,
        json!({
            "initiated_by": "customer",
            "single_logout": slo.as_ref().map(|e| binding_name(e.binding)),
            "session_index": session.session_index,
        }),
        Some(session.name_id.clone()),
        session.email.clone(),
    )
    .await?;

    let (Some(idp), Some(slo)) = (idp, slo) else { return Ok(go_home()) };
    match send_logout_request(&state, &tenant, &idp, &slo, &customer, now).await {
        Ok(mut response) => {
            response.add_cookie(&removal).map_err(internal)?;
            Ok(response)
        }
        Err(e) => {
            // The local session is gone either way; the IdP's session simply stays.
            tracing::warn!(tenant = %tenant.id.as_str(), idp = %idp.id, error = %e, "could not send the LogoutRequest");
            Ok(go_home())
        }
    }
}

async fn send_logout_request(
    state: &AppState,
    tenant: &Tenant,
    idp: &Idp,
    slo: &Endpoint,
    customer: &Customer,
    now: DateTime<Utc>,
) -> anyhow::Result<HttpResponse> {
    let sp = SpEndpoints::new(&state.settings.base_url, &tenant.public_id);
    let id = new_request_id();
    let s = &customer.session;
    let xml = LogoutRequestXml {
        id: &id,
        issue_instant: now,
        not_on_or_after: now + PENDING_LIFETIME,
        destination: &slo.location,
        issuer: &sp.entity_id,
        name_id: &s.name_id,
        name_id_format: s.name_id_format.as_deref(),
        session_index: s.session_index.as_deref(),
    }
    .to_xml();
    // saml-profiles §4.4.3.1 wants the request authenticated; the IdP setting "sign requests" (on by
    // default) covers AuthnRequests and LogoutRequests alike.
    let sp_keys = if idp.settings.sign_authn_requests { Some(keys(state, tenant).await?) } else { None };
    let response = match slo.binding {
        Binding::HttpRedirect => {
            let url = encode_redirect_url(
                &slo.location,
                MessageKind::Request,
                &xml,
                None,
                sp_keys.as_ref().map(|k| &k.current.private_key),
            )?;
            HttpResponse::SeeOther().insert_header((LOCATION, url)).finish()
        }
        Binding::HttpPost => {
            let xml = match &sp_keys {
                Some(k) => sign_root(&xml, &id, &k.current)?,
                None => xml,
            };
            post_form(state, &slo.location, "SAMLRequest", &STANDARD.encode(xml.as_bytes()), None, "Signing you out…")
        }
    };
    remember_pending(&id, &tenant.id, &idp.id, now);
    Ok(response)
}

// ---------------------------------------------------------------------------------------------
// Receiving: GET|POST /t/{tenant}/saml/slo

/// How a message arrived (and how an answer to it goes back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Redirect,
    Post,
    Soap(SoapVersion),
}

impl Channel {
    fn name(self) -> &'static str {
        match self {
            Channel::Redirect => "redirect",
            Channel::Post => "post",
            Channel::Soap(_) => "soap",
        }
    }

    /// Browser bindings: saml-bindings §3.4.5.2 / §3.5.5.2 require a signed message to carry its
    /// Destination.
    fn front_channel(self) -> bool {
        !matches!(self, Channel::Soap(_))
    }
}

/// A received message, pre-checked, not yet verified.
struct Inbound {
    channel: Channel,
    prechecked: Prechecked,
    /// POST/SOAP: the document to verify. Redirect: unused (the verified decode yields the XML).
    xml: String,
    raw_query: Option<String>,
    relay_state: Option<String>,
}

fn redirect_failure(e: &RedirectError) -> LoginFailure {
    let refused = matches!(
        e,
        RedirectError::SignatureRequired
            | RedirectError::InvalidSignature
            | RedirectError::Sha1Refused
            | RedirectError::UnsupportedSigAlg(_)
            | RedirectError::NoVerificationKeys
    );
    let f = if refused {
        LoginFailure::refused(e.code(), e.to_string())
    } else {
        LoginFailure::malformed(e.code(), e.to_string())
    };
    f.with("check", "redirect binding")
}

/// First, unverified pass over a Redirect query: which message, from whom. The query minus its
/// signature is decoded only to read the Issuer; the verified decode comes once the IdP is known.
fn receive_redirect(raw_query: &str) -> Result<Inbound, LoginFailure> {
    let unsigned: Vec<&str> = raw_query
        .trim_start_matches('?')
        .split('&')
        .filter(|seg| {
            let name = seg.split_once('=').map_or(*seg, |(n, _)| n);
            name != "Signature" && name != "SigAlg"
        })
        .collect();
    let message = decode_redirect_query(&unsigned.join("&"), &[], false, true).map_err(|e| redirect_failure(&e))?;
    let prechecked = logout_xml::precheck(&message.xml, Envelope::Redirect)?;
    let expected = match message.kind {
        MessageKind::Request => LogoutKind::Request,
        MessageKind::Response => LogoutKind::Response,
    };
    if prechecked.kind != expected {
        return Err(LoginFailure::malformed(
            "parameter_mismatch",
            format!("a {} was sent as {}", prechecked.kind.element(), message.kind.param_name()),
        ));
    }
    Ok(Inbound {
        channel: Channel::Redirect,
        prechecked,
        xml: message.xml,
        raw_query: Some(raw_query.to_string()),
        relay_state: message.relay_state,
    })
}

fn receive_form(body: &[u8]) -> Result<Inbound, LoginFailure> {
    let mut request = None;
    let mut response = None;
    let mut relay_state = None;
    for (k, v) in url::form_urlencoded::parse(body) {
        let slot = match k.as_ref() {
            "SAMLRequest" => &mut request,
            "SAMLResponse" => &mut response,
            "RelayState" => &mut relay_state,
            _ => continue,
        };
        if slot.is_some() {
            return Err(LoginFailure::malformed("duplicate_parameter", format!("{k} appears more than once")));
        }
        *slot = Some(v.into_owned());
    }
    let (param, value) = match (request, response) {
        (Some(v), None) => (MessageKind::Request, v),
        (None, Some(v)) => (MessageKind::Response, v),
        (Some(_), Some(_)) => {
            return Err(LoginFailure::malformed("ambiguous_message", "the form has both SAMLRequest and SAMLResponse"));
        }
        (None, None) => {
            return Err(LoginFailure::malformed("missing_message", "the form has no SAMLRequest or SAMLResponse"));
        }
    };
    let bytes = super::precheck::decode_saml_response_base64(&value).map_err(|e| {
        LoginFailure::malformed("bad_base64", format!("the {} value is not valid base64: {e}", param.param_name()))
    })?;
    let xml =
        String::from_utf8(bytes).map_err(|_| LoginFailure::malformed("not_utf8", "the message is not UTF-8 text"))?;
    let prechecked = logout_xml::precheck(&xml, Envelope::Post)?;
    let expected = if param == MessageKind::Request { LogoutKind::Request } else { LogoutKind::Response };
    if prechecked.kind != expected {
        return Err(LoginFailure::malformed(
            "parameter_mismatch",
            format!("a {} was sent as {}", prechecked.kind.element(), param.param_name()),
        ));
    }
    Ok(Inbound { channel: Channel::Post, prechecked, xml, raw_query: None, relay_state })
}

fn receive_soap(body: Vec<u8>, version: SoapVersion) -> Result<Inbound, LoginFailure> {
    let xml =
        String::from_utf8(body).map_err(|_| LoginFailure::malformed("not_utf8", "the SOAP body is not UTF-8 text"))?;
    let prechecked = logout_xml::precheck(&xml, Envelope::Soap)?;
    if prechecked.kind != LogoutKind::Request {
        return Err(LoginFailure::malformed("unexpected_message", "only a LogoutRequest is accepted over SOAP"));
    }
    let version = prechecked.soap.unwrap_or(version);
    Ok(Inbound { channel: Channel::Soap(version), prechecked, xml, raw_query: None, relay_state: None })
}

/// `GET /t/{tenant}/saml/slo`: HTTP-Redirect binding (LogoutResponse or IdP-initiated LogoutRequest).
pub async fn slo_get(
    state: web::Data<AppState>,
    req: HttpRequest,
    tenant: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let tenant = customer_tenant(&state, &tenant).await?;
    let inbound = receive_redirect(req.query_string());
    process(&state, &req, &tenant, Channel::Redirect, inbound).await
}

/// `POST /t/{tenant}/saml/slo`: HTTP-POST form (front channel, and WSO2's back channel) or a SOAP
/// envelope (`text/xml`, `application/soap+xml`).
pub async fn slo_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    tenant: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, WebError> {
    let tenant = customer_tenant(&state, &tenant).await?;
    let channel = match req.content_type().to_ascii_lowercase().as_str() {
        "application/x-www-form-urlencoded" => Channel::Post,
        "text/xml" => Channel::Soap(SoapVersion::V11),
        "application/soap+xml" => Channel::Soap(SoapVersion::V12),
        _ => {
            return Ok(page(
                &state,
                &tenant,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Sign-out failed",
                "This address accepts SAML logout messages as a form post or a SOAP envelope.",
                None,
            ));
        }
    };
    let inbound = match super::acs::read_body(payload, MAX_BODY).await {
        Err(f) => Err(f),
        Ok(body) => match channel {
            Channel::Post => receive_form(&body),
            Channel::Soap(version) => receive_soap(body, version),
            Channel::Redirect => Err(LoginFailure::malformed("binding", "the redirect binding uses GET")),
        },
    };
    process(&state, &req, &tenant, channel, inbound).await
}

/// A form-posted logout message that arrived at the ACS: WSO2 sends back-channel LogoutRequests to the ACS
/// URL when the admin left its SLO URL empty.
pub async fn form_at_acs(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    body: &[u8],
) -> Result<HttpResponse, WebError> {
    process(state, req, tenant, Channel::Post, receive_form(body)).await
}

async fn process(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    channel: Channel,
    inbound: Result<Inbound, LoginFailure>,
) -> Result<HttpResponse, WebError> {
    let inbound = match inbound {
        Ok(i) => i,
        Err(f) => return refuse(state, tenant, channel, None, None, f).await,
    };
    match inbound.prechecked.kind {
        LogoutKind::Request => idp_initiated(state, req, tenant, inbound).await,
        LogoutKind::Response => logout_response(state, req, tenant, inbound).await,
    }
}

fn public_keys(idp: &Idp) -> Vec<PKey<Public>> {
    idp.certificates
        .iter()
        .filter_map(|c| openssl::x509::X509::from_der(&c.der).and_then(|x| x.public_key()).ok())
        .collect()
}

/// Verifies the message with the IdP's certificates and returns the XML that may be read.
async fn verify(inbound: &Inbound, idp: &Idp) -> Result<String, LoginFailure> {
    let allow_sha1 = idp.settings.allow_sha1;
    match inbound.channel {
        Channel::Redirect => {
            let raw = inbound.raw_query.as_deref().unwrap_or_default();
            let message =
                decode_redirect_query(raw, &public_keys(idp), true, allow_sha1).map_err(|e| redirect_failure(&e))?;
            Ok(message.xml)
        }
        Channel::Post | Channel::Soap(_) => {
            logout_xml::refuse_sha1(&inbound.prechecked, allow_sha1)?;
            let xml = inbound.xml.clone();
            let certs: Vec<Vec<u8>> = idp.certificates.iter().map(|c| c.der.clone()).collect();
            web::block(move || logout_xml::verify_signed(&xml, &certs, allow_sha1))
                .await
                .map_err(|_| LoginFailure::refused("internal", "the verification task failed"))?
        }
    }
}

/// Destination: our SLO URL; required on the browser bindings (the message is signed), checked when
/// present on SOAP.
fn check_destination(destination: Option<&str>, sp: &SpEndpoints, channel: Channel) -> Result<(), LoginFailure> {
    match destination {
        Some(d) if d == sp.slo_url => Ok(()),
        None if !channel.front_channel() => Ok(()),
        found => {
            Err(LoginFailure::refused("destination_mismatch", "the message's Destination is not this site's SLO URL")
                .expected(sp.slo_url.clone(), found.map(str::to_string)))
        }
    }
}

fn check_request(
    data: &LogoutRequestData,
    idp: &Idp,
    sp: &SpEndpoints,
    channel: Channel,
    now: DateTime<Utc>,
) -> Result<(), LoginFailure> {
    match &data.issuer {
        Some(i) if *i == idp.entity_id => {}
        other => {
            return Err(LoginFailure::refused(
                "issuer_mismatch",
                "the signed Issuer is not this identity provider's entity ID",
            )
            .expected(idp.entity_id.clone(), other.clone()));
        }
    }
    check_destination(data.destination.as_deref(), sp, channel)?;
    let skew = Duration::seconds(i64::from(idp.settings.clock_skew_secs));
    if let Some(limit) = data.not_on_or_after
        && now >= limit + skew
    {
        return Err(LoginFailure::refused("expired", "the LogoutRequest has expired (NotOnOrAfter)")
            .with("not_on_or_after", limit.to_rfc3339())
            .with("now", now.to_rfc3339()));
    }
    if let Some(issued) = data.issue_instant
        && issued > now + skew
    {
        return Err(LoginFailure::refused(
            "not_yet_valid",
            "the LogoutRequest was issued in the future (IssueInstant)",
        )
        .with("issue_instant", issued.to_rfc3339())
        .with("now", now.to_rfc3339()));
    }
    Ok(())
}

/// An IdP-initiated LogoutRequest: verify, end the subject's sessions, answer a signed LogoutResponse.
async fn idp_initiated(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    inbound: Inbound,
) -> Result<HttpResponse, WebError> {
    let now = Utc::now();
    let channel = inbound.channel;
    let request_id = inbound.prechecked.id.clone();
    let idps = state.store.list_idps(&tenant.id).await.map_err(internal)?;
    let Some(idp) = idps.into_iter().find(|i| Some(&i.entity_id) == inbound.prechecked.issuer.as_ref()) else {
        let f = LoginFailure::refused("unknown_issuer", "no identity provider of this site has this entity ID")
            .with("issuer", inbound.prechecked.issuer.clone());
        return refuse(state, tenant, channel, None, Some(&request_id), f).await;
    };
    let sp = SpEndpoints::new(&state.settings.base_url, &tenant.public_id);
    let checked = async {
        let verified = verify(&inbound, &idp).await?;
        let data = logout_xml::parse_request(&verified, &request_id)?;
        check_request(&data, &idp, &sp, channel, now)?;
        Ok::<_, LoginFailure>(data)
    }
    .await;
    let data = match checked {
        Ok(d) => d,
        Err(f) => return refuse(state, tenant, channel, Some(&idp), Some(&request_id), f).await,
    };

    let ended = state
        .store
        .delete_sessions_of_subject(&tenant.id, &idp.id, &data.name_id, &data.session_indexes)
        .await
        .map_err(internal)?;
    record(
        state,
        tenant,
        Some(&idp.id),
        "logout",
        format!("signed out by the identity provider ({ended} session(s) ended)"),
        None,
        json!({
            "initiated_by": "identity_provider",
            "binding": channel.name(),
            "request_id": data.id,
            "name_id_format": data.name_id_format,
            "session_indexes": data.session_indexes,
            "sessions_ended": ended,
            "reason": data.reason,
        }),
        Some(data.name_id.clone()),
        None,
    )
    .await?;
    tracing::info!(tenant = %tenant.id.as_str(), idp = %idp.id, binding = channel.name(), ended, "IdP-initiated logout");

    let mut response =
        answer(state, tenant, &idp, channel, Some(&request_id), inbound.relay_state.as_deref(), Answer::Success)
            .await?;
    if channel.front_channel() {
        clear_ended_session(state, req, tenant, &mut response).await;
    }
    Ok(response)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Success,
    Denied,
}

/// Our signed LogoutResponse to an IdP's LogoutRequest. SOAP: the envelope (200 for success, 400 for a
/// denial). Browser bindings: sent to the IdP's SLO endpoint with the binding that endpoint has (the
/// endpoint we know accepts that binding); without an SLO endpoint, a page.
async fn answer(
    state: &AppState,
    tenant: &Tenant,
    idp: &Idp,
    channel: Channel,
    in_response_to: Option<&str>,
    relay_state: Option<&str>,
    answer: Answer,
) -> Result<HttpResponse, WebError> {
    let sp = SpEndpoints::new(&state.settings.base_url, &tenant.public_id);
    let front_endpoint = if channel.front_channel() { idp.slo.as_ref() } else { None };
    if channel.front_channel() && front_endpoint.is_none() {
        // (Denials on the browser bindings are answered with a page by `refuse`, never here.)
        return Ok(page(
            state,
            tenant,
            StatusCode::OK,
            "You are signed out",
            "You are signed out of the helpdesk.",
            None,
        ));
    }
    let id = new_request_id();
    let (status, sub_status) = match answer {
        Answer::Success => (STATUS_SUCCESS, None),
        Answer::Denied => (STATUS_REQUESTER, Some(STATUS_REQUEST_DENIED)),
    };
    let xml = LogoutResponseXml {
        id: &id,
        in_response_to,
        issue_instant: Utc::now(),
        destination: idp.slo.as_ref().map(|e| e.location.as_str()),
        issuer: &sp.entity_id,
        status,
        sub_status,
        status_message: None,
    }
    .to_xml();
    let sp_keys = keys(state, tenant).await.map_err(internal)?;
    // RelayState is echoed (saml-bindings §3.4.3) when it fits the binding's 80-byte limit.
    let relay_state = relay_state.filter(|r| r.len() <= MAX_RELAY_STATE_BYTES);
    match (channel, front_endpoint) {
        (Channel::Soap(version), _) => {
            let signed = sign_root(&xml, &id, &sp_keys.current).map_err(internal)?;
            let status = if answer == Answer::Success { StatusCode::OK } else { StatusCode::BAD_REQUEST };
            Ok(HttpResponse::build(status)
                .insert_header((CONTENT_TYPE, version.content_type()))
                .body(logout_xml::soap_envelope(version, &signed)))
        }
        (_, Some(endpoint)) if endpoint.binding == Binding::HttpRedirect => {
            match encode_redirect_url(
                &endpoint.location,
                MessageKind::Response,
                &xml,
                relay_state,
                Some(&sp_keys.current.private_key),
            ) {
                Ok(url) => Ok(HttpResponse::SeeOther().insert_header((LOCATION, url)).finish()),
                Err(e) => {
                    tracing::warn!(idp = %idp.id, error = %e, "cannot send the LogoutResponse to the IdP's SLO URL");
                    Ok(page(
                        state,
                        tenant,
                        StatusCode::OK,
                        "You are signed out",
                        "You are signed out of the helpdesk.",
                        None,
                    ))
                }
            }
        }
        (_, Some(endpoint)) => {
            let signed = sign_root(&xml, &id, &sp_keys.current).map_err(internal)?;
            Ok(post_form(
                state,
                &endpoint.location,
                "SAMLResponse",
                &STANDARD.encode(signed.as_bytes()),
                relay_state,
                "Finishing sign-out…",
            ))
        }
        (_, None) => {
            Ok(page(state, tenant, StatusCode::OK, "You are signed out", "You are signed out of the helpdesk.", None))
        }
    }
}

/// The IdP's LogoutResponse to our LogoutRequest. The local session already ended.
async fn logout_response(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    inbound: Inbound,
) -> Result<HttpResponse, WebError> {
    let now = Utc::now();
    let channel = inbound.channel;
    let p = &inbound.prechecked;
    let pending = p.in_response_to.as_deref().and_then(|id| find_pending(id, now));
    let idps = state.store.list_idps(&tenant.id).await.map_err(internal)?;
    let idp = match (&p.issuer, &pending) {
        (Some(issuer), _) => idps.into_iter().find(|i| &i.entity_id == issuer),
        // saml-profiles §4.4.4.2 makes Issuer mandatory; tolerate its absence when the request is known.
        (None, Some(pending)) if pending.tenant == tenant.id => idps.into_iter().find(|i| i.id == pending.idp),
        (None, _) => None,
    };
    let Some(idp) = idp else {
        let f = LoginFailure::refused("unknown_issuer", "no identity provider of this site has this entity ID")
            .with("issuer", p.issuer.clone());
        return refuse(state, tenant, channel, None, None, f).await;
    };
    let sp = SpEndpoints::new(&state.settings.base_url, &tenant.public_id);
    let checked = async {
        if let Some(pending) = &pending
            && (pending.tenant != tenant.id || pending.idp != idp.id)
        {
            return Err(LoginFailure::refused(
                "in_response_to_mismatch",
                "the LogoutResponse answers a sign-out request sent to another identity provider",
            ));
        }
        let verified = verify(&inbound, &idp).await?;
        let data = logout_xml::parse_response(&verified, &p.id)?;
        if let Some(issuer) = &data.issuer
            && *issuer != idp.entity_id
        {
            return Err(LoginFailure::refused(
                "issuer_mismatch",
                "the signed Issuer is not this identity provider's entity ID",
            )
            .expected(idp.entity_id.clone(), issuer.clone()));
        }
        check_destination(data.destination.as_deref(), &sp, channel)?;
        Ok(data)
    }
    .await;
    let data = match checked {
        Ok(d) => d,
        Err(f) => return refuse(state, tenant, channel, Some(&idp), None, f).await,
    };
    if let Some(id) = &data.in_response_to
        && pending.is_some()
    {
        forget_pending(id);
    }

    let mut response = if data.is_success() {
        page(
            state,
            tenant,
            StatusCode::OK,
            "You are signed out",
            "You are signed out of the helpdesk and of your organisation's account.",
            None,
        )
    } else {
        let reference = record(
            state,
            tenant,
            Some(&idp.id),
            "warning",
            "the identity provider could not end its session (the helpdesk session had ended)".into(),
            Some("idp_logout_failed"),
            json!({
                "status": data.status,
                "sub_status": data.sub_status,
                "status_message": data.status_message,
                "in_response_to": data.in_response_to,
                "in_response_to_known": pending.is_some(),
                "binding": channel.name(),
            }),
            None,
            None,
        )
        .await?;
        page(
            state,
            tenant,
            StatusCode::OK,
            "Signed out of the helpdesk only",
            "You are signed out of the helpdesk, but your identity provider could not end its own session. Close your \
             browser to end it, or sign out at your organisation's portal.",
            Some(&reference),
        )
    };
    clear_ended_session(state, req, tenant, &mut response).await;
    Ok(response)
}

/// A refused or unreadable message: a login event with the reason, then a page (browser bindings) or a
/// signed SOAP LogoutResponse with status Requester/RequestDenied (SOAP).
async fn refuse(
    state: &AppState,
    tenant: &Tenant,
    channel: Channel,
    idp: Option<&Idp>,
    request_id: Option<&str>,
    failure: LoginFailure,
) -> Result<HttpResponse, WebError> {
    let mut details = failure.details.clone();
    if !details.is_object() {
        details = json!({});
    }
    details["binding"] = json!(channel.name());
    if let Some(id) = request_id {
        details["request_id"] = json!(clip(id));
    }
    let reference = record(
        state,
        tenant,
        idp.map(|i| &i.id),
        "failure",
        format!("single logout refused: {}", failure.message),
        Some(failure.code),
        details,
        None,
        None,
    )
    .await?;
    tracing::info!(tenant = %tenant.id.as_str(), code = failure.code, binding = channel.name(), %reference, "logout message refused");
    let status = if failure.code == "too_large" {
        StatusCode::PAYLOAD_TOO_LARGE
    } else if failure.malformed {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::FORBIDDEN
    };
    if let Channel::Soap(version) = channel {
        // Echo the (unverified) request ID only when it looks like an ID; a denial reveals nothing.
        let in_response_to = request_id.filter(|id| looks_like_id(id));
        return match idp {
            Some(idp) => {
                let mut r = answer(state, tenant, idp, channel, in_response_to, None, Answer::Denied).await?;
                if status == StatusCode::PAYLOAD_TOO_LARGE {
                    *r.status_mut() = status;
                }
                Ok(r)
            }
            None => soap_denial_without_idp(state, tenant, version, in_response_to, status).await,
        };
    }
    let text = if failure.malformed {
        "The sign-out message could not be read."
    } else {
        "The sign-out message from your identity provider was not accepted."
    };
    Ok(page(state, tenant, status, "Sign-out failed", text, Some(&reference)))
}

/// A SOAP denial when the issuer is unknown: signed, without Destination.
async fn soap_denial_without_idp(
    state: &AppState,
    tenant: &Tenant,
    version: SoapVersion,
    in_response_to: Option<&str>,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let sp = SpEndpoints::new(&state.settings.base_url, &tenant.public_id);
    let id = new_request_id();
    let xml = LogoutResponseXml {
        id: &id,
        in_response_to,
        issue_instant: Utc::now(),
        destination: None,
        issuer: &sp.entity_id,
        status: STATUS_REQUESTER,
        sub_status: Some(STATUS_REQUEST_DENIED),
        status_message: None,
    }
    .to_xml();
    let sp_keys = keys(state, tenant).await.map_err(internal)?;
    let signed = sign_root(&xml, &id, &sp_keys.current).map_err(internal)?;
    let status = if status == StatusCode::PAYLOAD_TOO_LARGE { status } else { StatusCode::BAD_REQUEST };
    Ok(HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, version.content_type()))
        .body(logout_xml::soap_envelope(version, &signed)))
}

fn looks_like_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 256 && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn clip(s: &str) -> String {
    s.chars().take(256).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_requests_expire_and_are_scoped() {
        let now = Utc::now();
        let t = TenantId::from_stored("t1".into());
        let i = IdpId::from_stored("i1".into());
        let id = new_request_id();
        remember_pending(&id, &t, &i, now);
        assert_eq!(find_pending(&id, now).map(|p| (p.tenant, p.idp)), Some((t.clone(), i.clone())));
        assert!(find_pending(&id, now + PENDING_LIFETIME).is_none(), "expired");
        forget_pending(&id);
        assert!(find_pending(&id, now).is_none());
    }

    #[test]
    fn redirect_first_pass_ignores_the_signature_parameters() {
        let xml = r#"<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_x" Version="2.0"><saml:Issuer>https://idp</saml:Issuer></samlp:LogoutResponse>"#;
        let url = encode_redirect_url("https://sp.example/slo", MessageKind::Response, xml, Some("rs"), None).unwrap();
        let query = format!("{}&SigAlg=bogus&Signature=%%%", url.split_once('?').unwrap().1);
        let inbound = receive_redirect(&query).unwrap();
        assert_eq!(inbound.prechecked.kind, LogoutKind::Response);
        assert_eq!(inbound.prechecked.issuer.as_deref(), Some("https://idp"));
        assert_eq!(inbound.relay_state.as_deref(), Some("rs"));
        // A LogoutResponse sent as SAMLRequest is refused.
        let url = encode_redirect_url("https://sp.example/slo", MessageKind::Request, xml, None, None).unwrap();
        assert_eq!(receive_redirect(url.split_once('?').unwrap().1).err().unwrap().code, "parameter_mismatch");
    }

    #[test]
    fn only_id_like_values_are_echoed() {
        assert!(looks_like_id("_abc-1.2"));
        assert!(!looks_like_id("\"><x"));
        assert!(!looks_like_id(""));
    }
}
