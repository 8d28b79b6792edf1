//! Single logout: SP-initiated (`/logout` → LogoutRequest → LogoutResponse) and IdP-initiated (Redirect,
//! POST, SOAP back-channel), with the IdP's messages signed for real (libxmlsec1 / RSA over the query)
//! and ours verified with the SP certificate from the published metadata.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use jsm_sso::saml::idp::{Binding, Endpoint};
use jsm_sso::saml::redirect::{MessageKind, decode_redirect_query, encode_redirect_url};
use jsm_sso::saml::session::token_hash;
use jsm_sso::store::CustomerSession;
use jsm_sso::tenants::TenantId;
use openssl::hash::MessageDigest;
use openssl::sign::Signer;
use samael::crypto::{CertificateDer, CryptoProvider, ReduceMode, XmlSec};

use crate::db_test;
use crate::helpers::saml::*;
use crate::helpers::saml_signer::*;
use crate::helpers::*;

const IDP_SLO: &str = "https://idp.example.test/slo";
const STATUS_REQUESTER: &str = "urn:oasis:names:tc:SAML:2.0:status:Requester";
const STATUS_REQUEST_DENIED: &str = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied";
const SIG_ALG_RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";

// ------------------------------------------------------------------------------------------------
// Setup

/// A tenant whose IdP has an SLO endpoint with `binding` (None: no SLO endpoint).
async fn setup(backend: Backend, binding: Option<Binding>) -> SamlSetup {
    let mut s = SamlSetup::new(backend).await;
    s.idp.slo = binding.map(|binding| Endpoint { binding, location: IDP_SLO.into() });
    s.app.store.save_idp(&s.idp, Utc::now()).await.unwrap();
    s
}

/// Inserts a live session of `tenant` at `idp` and returns its cookie token.
async fn add_session(
    app: &TestApp,
    tenant: &TenantId,
    idp: &jsm_sso::saml::idp::IdpId,
    name_id: &str,
    session_index: Option<&str>,
) -> String {
    let token = format!("tok-{}", uuid::Uuid::new_v4().simple());
    let now = Utc::now();
    let session = CustomerSession {
        tenant_id: tenant.clone(),
        idp_id: idp.clone(),
        email: Some(format!("{name_id}@example.com")),
        display_name: None,
        name_id: name_id.into(),
        name_id_format: Some(NAMEID_EMAIL.into()),
        session_index: session_index.map(str::to_string),
        attributes: serde_json::json!([]),
        account_id: None,
        csrf_token: "csrf".into(),
        created_at: now,
        expires_at: now + Duration::hours(8),
    };
    app.store.insert_session(&token_hash(&token), &session).await.unwrap();
    token
}

async fn session(s: &SamlSetup, name_id: &str, session_index: Option<&str>) -> String {
    add_session(&s.app, &s.tenant_id, &s.idp.id, name_id, session_index).await
}

/// `GET /t/{public_id}/session` with the session cookie: is it still signed in?
async fn alive(app: &TestApp, public_id: &str, token: &str) -> bool {
    let r = app
        .http
        .get(app.url(&format!("/t/{public_id}/session")))
        .header("Cookie", format!("jsm_sso_session={token}"))
        .send()
        .await
        .unwrap();
    match r.status().as_u16() {
        200 => true,
        401 => false,
        other => panic!("unexpected status {other} from /session"),
    }
}

fn slo_url(s: &SamlSetup) -> String {
    format!("{}/t/{}/saml/slo", s.app.base_url(), s.public_id)
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn new_id() -> String {
    format!("_{}", uuid::Uuid::new_v4().simple())
}

// ------------------------------------------------------------------------------------------------
// The IdP's messages (WSO2-shaped: saml2p/saml2 prefixes declared where used)

struct Req {
    id: String,
    issuer: String,
    destination: Option<String>,
    name_id: String,
    session_index: Option<String>,
    not_on_or_after: DateTime<Utc>,
}

impl Req {
    fn new(s: &SamlSetup, name_id: &str, session_index: Option<&str>) -> Req {
        Req {
            id: new_id(),
            issuer: IDP_ENTITY.into(),
            destination: Some(slo_url(s)),
            name_id: name_id.into(),
            session_index: session_index.map(str::to_string),
            not_on_or_after: Utc::now() + Duration::minutes(5),
        }
    }

    fn xml(&self) -> String {
        let destination = self.destination.as_deref().map(|d| format!(r#" Destination="{d}""#)).unwrap_or_default();
        let index = self
            .session_index
            .as_deref()
            .map(|i| format!("<saml2p:SessionIndex>{i}</saml2p:SessionIndex>"))
            .unwrap_or_default();
        format!(
            r#"<saml2p:LogoutRequest xmlns:saml2p="{NS_SAML2P}"{destination} ID="{}" IssueInstant="{}" NotOnOrAfter="{}" Reason="urn:oasis:names:tc:SAML:2.0:logout:user" Version="2.0"><saml2:Issuer xmlns:saml2="{NS_SAML2}" Format="urn:oasis:names:tc:SAML:2.0:nameid-format:entity">{}</saml2:Issuer><saml2:NameID xmlns:saml2="{NS_SAML2}" Format="{NAMEID_EMAIL}">{}</saml2:NameID>{index}</saml2p:LogoutRequest>"#,
            self.id,
            ts(Utc::now()),
            ts(self.not_on_or_after),
            self.issuer,
            self.name_id,
        )
    }

    fn signed(&self, key: &TestKey) -> String {
        sign_element(&self.xml(), &self.id, key, SigAlg::RsaSha256)
    }
}

fn response_xml(s: &SamlSetup, id: &str, in_response_to: &str, status: &str) -> String {
    format!(
        r#"<saml2p:LogoutResponse xmlns:saml2p="{NS_SAML2P}" Destination="{}" ID="{id}" InResponseTo="{in_response_to}" IssueInstant="{}" Version="2.0"><saml2:Issuer xmlns:saml2="{NS_SAML2}">{IDP_ENTITY}</saml2:Issuer><saml2p:Status><saml2p:StatusCode Value="{status}"/></saml2p:Status></saml2p:LogoutResponse>"#,
        slo_url(s),
        ts(Utc::now()),
    )
}

/// The query of an HTTP-Redirect message signed (RSA-SHA256) by `key`, or unsigned.
fn redirect_query(kind: MessageKind, xml: &str, relay_state: Option<&str>, key: Option<&TestKey>) -> String {
    let private = key.map(|k| k.private_key());
    let url = encode_redirect_url(&slo_base(), kind, xml, relay_state, private.as_ref()).unwrap();
    url.split_once('?').unwrap().1.to_string()
}

fn slo_base() -> String {
    "https://sp.invalid/slo".into()
}

fn remove_param(query: &str, name: &str) -> String {
    query.split('&').filter(|p| !p.starts_with(&format!("{name}="))).collect::<Vec<_>>().join("&")
}

async fn get_slo(s: &SamlSetup, query: &str) -> reqwest::Response {
    s.app.http.get(format!("{}?{query}", s.t("/saml/slo"))).send().await.unwrap()
}

async fn post_form(s: &SamlSetup, field: &str, xml: &str) -> reqwest::Response {
    s.app
        .http
        .post(s.t("/saml/slo"))
        .form(&[(field.to_string(), STANDARD.encode(xml)), ("RelayState".to_string(), "rs-1".to_string())])
        .send()
        .await
        .unwrap()
}

fn strip_declaration(xml: &str) -> &str {
    match xml.trim_start().strip_prefix("<?xml") {
        Some(rest) => rest[rest.find("?>").unwrap() + 2..].trim_start(),
        None => xml,
    }
}

/// A SOAP 1.1 envelope around a message (its XML declaration dropped, as IdPs do).
fn soap(xml: &str) -> String {
    format!(
        r#"<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"><soap-env:Body>{}</soap-env:Body></soap-env:Envelope>"#,
        strip_declaration(xml)
    )
}

async fn post_soap(s: &SamlSetup, body: String) -> reqwest::Response {
    s.app
        .http
        .post(s.t("/saml/slo"))
        .header("Content-Type", "text/xml; charset=utf-8")
        .header("SOAPAction", "http://www.oasis-open.org/committees/security")
        .body(body)
        .send()
        .await
        .unwrap()
}

// ------------------------------------------------------------------------------------------------
// Reading and verifying our messages

/// The SP certificate (DER) from the published metadata.
async fn sp_certificate(s: &SamlSetup) -> Vec<u8> {
    let md = s.app.http.get(s.t("/saml/metadata")).send().await.unwrap().text().await.unwrap();
    let b64 = md.split("<ds:X509Certificate>").nth(1).unwrap().split('<').next().unwrap();
    STANDARD.decode(b64.trim()).unwrap()
}

/// Verifies an XML signature with the SP certificate (libxmlsec1) and returns only the signed content.
async fn verified_by_sp(s: &SamlSetup, xml: &str) -> String {
    let cert = CertificateDer::from(sp_certificate(s).await);
    XmlSec::reduce_xml_to_signed(xml, &[cert], ReduceMode::ValidateAndMarkNoAncestors).expect("signed by the SP key")
}

/// Decodes a Location to the IdP, requiring and verifying the SP's query signature.
async fn redirect_message(s: &SamlSetup, location: &str) -> (String, Option<String>) {
    let (base, query) = location.split_once('?').expect("a query");
    assert_eq!(base, IDP_SLO);
    let m = decode_redirect_query(query, &[s.sp_public_key().await], true, false).expect("signed by the SP key");
    (m.xml, m.relay_state)
}

fn html_unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let end = rest[at..].find(';').map(|e| at + e).expect("entity end");
        let entity = &rest[at + 1..end];
        let c = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            e if e.starts_with("#x") => char::from_u32(u32::from_str_radix(&e[2..], 16).unwrap()).unwrap(),
            e if e.starts_with('#') => char::from_u32(e[1..].parse().unwrap()).unwrap(),
            e => panic!("unknown entity {e}"),
        };
        out.push(c);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The value of a hidden input of an auto-submit form.
fn form_value(html: &str, name: &str) -> Option<String> {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html_unescape(&html[start..end]))
}

fn form_action(html: &str) -> String {
    let start = html.find(r#"action=""#).unwrap() + 8;
    html_unescape(&html[start..start + html[start..].find('"').unwrap()])
}

fn doc(xml: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse(xml).unwrap()
}

fn child_text(root: roxmltree::Node, name: &str) -> Option<String> {
    root.children().find(|n| n.tag_name().name() == name).and_then(|n| n.text()).map(str::to_string)
}

fn status_of(root: roxmltree::Node) -> Vec<String> {
    root.descendants()
        .filter(|n| n.tag_name().name() == "StatusCode")
        .filter_map(|n| n.attribute("Value"))
        .map(str::to_string)
        .collect()
}

/// Checks our LogoutResponse (already verified): it answers `request_id` with `status`.
fn assert_our_response(s: &SamlSetup, xml: &str, request_id: &str, status: &[&str], destination: Option<&str>) {
    let d = doc(xml);
    let root = d.root_element();
    assert_eq!(root.tag_name().name(), "LogoutResponse", "{xml}");
    assert_eq!(root.attribute("InResponseTo"), Some(request_id), "{xml}");
    assert_eq!(root.attribute("Destination"), destination, "{xml}");
    assert!(root.attribute("ID").unwrap().len() >= 33, "≥128 random bits: {xml}");
    assert_eq!(child_text(root, "Issuer").as_deref(), Some(s.entity_id().as_str()));
    assert_eq!(status_of(root), status, "{xml}");
}

async fn assert_event(s: &SamlSetup, outcome: &str, reason: &str) -> String {
    let (o, r, details) = s.last_event().await;
    assert_eq!((o.as_str(), r.as_str()), (outcome, reason), "event details: {details}");
    details
}

async fn page(r: reqwest::Response, status: u16) -> String {
    let got = r.status().as_u16();
    let body = r.text().await.unwrap();
    assert_eq!(got, status, "{body}");
    body
}

// ------------------------------------------------------------------------------------------------
// SP-initiated

db_test!(sp_initiated_logout_sends_a_signed_redirect_logout_request, async |backend| {
    let s = setup(backend, Some(Binding::HttpRedirect)).await;
    let b = browser();
    assert_eq!(s.sign_in(&b).await.status(), 303);
    assert_eq!(b.get(s.t("/session")).send().await.unwrap().status(), 200);

    let before = Utc::now();
    let r = b.get(s.t("/logout")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("jsm_sso_session=;") && cookie.contains("Max-Age=0"), "{cookie}");
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&format!("{IDP_SLO}?SAMLRequest=")), "{location}");
    assert!(location.contains("&SigAlg=") && location.contains("&Signature="), "{location}");

    let (xml, relay_state) = redirect_message(&s, &location).await;
    assert_eq!(relay_state, None);
    let d = doc(&xml);
    let root = d.root_element();
    assert_eq!(root.tag_name().name(), "LogoutRequest");
    assert_eq!(root.tag_name().namespace(), Some(NS_SAML2P));
    let id = root.attribute("ID").unwrap();
    assert!(id.len() >= 33, "≥128 random bits: {id}");
    assert_eq!(root.attribute("Destination"), Some(IDP_SLO));
    let not_on_or_after = DateTime::parse_from_rfc3339(root.attribute("NotOnOrAfter").unwrap()).unwrap();
    assert!(not_on_or_after > before && not_on_or_after < before + Duration::minutes(30));
    let order: Vec<_> = root.children().filter(|n| n.is_element()).map(|n| n.tag_name().name()).collect();
    assert_eq!(order, ["Issuer", "NameID", "SessionIndex"]);
    assert_eq!(child_text(root, "Issuer").as_deref(), Some(s.entity_id().as_str()));
    let name_id = root.children().find(|n| n.tag_name().name() == "NameID").unwrap();
    assert_eq!(name_id.text(), Some("alice"));
    assert_eq!(name_id.attribute("Format"), Some(NAMEID_EMAIL));
    assert_eq!(
        child_text(root, "SessionIndex").as_deref(),
        Some(ResponseParams::sample(Utc::now()).session_index.as_str())
    );

    // The local session is gone at once, the browser's cookie too.
    assert_eq!(b.get(s.t("/session")).send().await.unwrap().status(), 401);
    assert_eq!(s.app.db.scalar("SELECT COUNT(*) FROM customer_sessions").await, 0);
    let details = assert_event(&s, "logout", "").await;
    assert!(details.contains("customer"), "{details}");

    // The IdP's signed LogoutResponse completes it.
    let answer = response_xml(&s, &new_id(), id, STATUS_SUCCESS);
    let body =
        page(get_slo(&s, &redirect_query(MessageKind::Response, &answer, None, Some(idp_key()))).await, 200).await;
    assert!(body.contains("You are signed out"), "{body}");
});

db_test!(sp_initiated_logout_over_post_is_signed_xml, async |backend| {
    let s = setup(backend, Some(Binding::HttpPost)).await;
    let token = session(&s, "carol", Some("_s-carol")).await;
    let r = s.app.http.get(s.t("/logout")).header("Cookie", format!("jsm_sso_session={token}")).send().await.unwrap();
    let html = page(r, 200).await;
    assert_eq!(form_action(&html), IDP_SLO);
    let xml = String::from_utf8(STANDARD.decode(form_value(&html, "SAMLRequest").unwrap()).unwrap()).unwrap();
    let signed = verified_by_sp(&s, &xml).await;
    let d = doc(&signed);
    let root = d.root_element();
    assert_eq!(root.tag_name().name(), "LogoutRequest");
    let order: Vec<_> = root.children().filter(|n| n.is_element()).map(|n| n.tag_name().name()).collect();
    assert_eq!(order, ["Issuer", "NameID", "SessionIndex"], "signed content: {signed}");
    // Tampering breaks it.
    let tampered = xml.replace(">carol<", ">mallory<");
    let cert = CertificateDer::from(sp_certificate(&s).await);
    assert!(XmlSec::reduce_xml_to_signed(&tampered, &[cert], ReduceMode::ValidateAndMarkNoAncestors).is_err());
    assert!(!alive(&s.app, &s.public_id, &token).await);
});

db_test!(logout_without_slo_endpoint_or_session_goes_home, async |backend| {
    let s = setup(backend, None).await;
    let token = session(&s, "dave", None).await;
    assert!(alive(&s.app, &s.public_id, &token).await);
    let r = s.app.http.get(s.t("/logout")).header("Cookie", format!("jsm_sso_session={token}")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], format!("/t/{}/", s.public_id));
    assert!(r.headers()["set-cookie"].to_str().unwrap().starts_with("jsm_sso_session=;"));
    assert!(!alive(&s.app, &s.public_id, &token).await);
    assert_event(&s, "logout", "").await;

    // Without a session: just home, nothing recorded.
    let events = s.app.db.scalar("SELECT COUNT(*) FROM login_events").await;
    let r = s.app.http.get(s.t("/logout")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], format!("/t/{}/", s.public_id));
    assert_eq!(s.app.db.scalar("SELECT COUNT(*) FROM login_events").await, events);
});

// ------------------------------------------------------------------------------------------------
// LogoutResponse

db_test!(logout_response_success_via_redirect_and_post, async |backend| {
    let s = setup(backend, Some(Binding::HttpRedirect)).await;
    // Redirect, signed over the query by the IdP key (InResponseTo unknown here: still "signed out").
    let xml = response_xml(&s, &new_id(), "_unknown-request", STATUS_SUCCESS);
    let body =
        page(get_slo(&s, &redirect_query(MessageKind::Response, &xml, Some("rs"), Some(idp_key()))).await, 200).await;
    assert!(body.contains("You are signed out"), "{body}");

    // POST, XML-signed.
    let id = new_id();
    let signed =
        sign_element(&response_xml(&s, &id, "_unknown-request", STATUS_SUCCESS), &id, idp_key(), SigAlg::RsaSha256);
    let body = page(post_form(&s, "SAMLResponse", &signed).await, 200).await;
    assert!(body.contains("You are signed out"), "{body}");

    // Lowercase percent-encoding (ADFS style), signed over the octets as sent.
    let unsigned = redirect_query(MessageKind::Response, &xml, None, None);
    let lower = |q: &str| q.replace("%2B", "%2b").replace("%2F", "%2f").replace("%3D", "%3d").replace("%3A", "%3a");
    let mut q = format!(
        "{}&SigAlg={}",
        lower(&unsigned),
        lower(&url::form_urlencoded::byte_serialize(SIG_ALG_RSA_SHA256.as_bytes()).collect::<String>())
    );
    assert!(q.contains("%3a%2f%2f"), "{q}");
    let mut signer = Signer::new(MessageDigest::sha256(), &idp_key().private_key()).unwrap();
    signer.update(q.as_bytes()).unwrap();
    let sig = STANDARD.encode(signer.sign_to_vec().unwrap());
    q.push_str(&format!(
        "&Signature={}",
        lower(&url::form_urlencoded::byte_serialize(sig.as_bytes()).collect::<String>())
    ));
    let body = page(get_slo(&s, &q).await, 200).await;
    assert!(body.contains("You are signed out"), "{body}");
});

db_test!(logout_response_failure_status_is_reported, async |backend| {
    let s = setup(backend, Some(Binding::HttpRedirect)).await;
    let xml = response_xml(&s, &new_id(), "_req", STATUS_REQUESTER);
    let body = page(get_slo(&s, &redirect_query(MessageKind::Response, &xml, None, Some(idp_key()))).await, 200).await;
    assert!(body.contains("could not end its own session"), "{body}");
    let details = assert_event(&s, "warning", "idp_logout_failed").await;
    assert!(details.contains(STATUS_REQUESTER), "{details}");
});

db_test!(hostile_logout_responses_are_refused_without_panics, async |backend| {
    let s = setup(backend, Some(Binding::HttpRedirect)).await;
    let xml = response_xml(&s, &new_id(), "_req", STATUS_SUCCESS);
    let signed = redirect_query(MessageKind::Response, &xml, None, Some(idp_key()));

    page(get_slo(&s, &redirect_query(MessageKind::Response, &xml, None, None)).await, 403).await;
    assert_event(&s, "failure", "redirect_signature_required").await;
    page(get_slo(&s, &redirect_query(MessageKind::Response, &xml, None, Some(attacker_key()))).await, 403).await;
    assert_event(&s, "failure", "redirect_invalid_signature").await;
    page(get_slo(&s, &remove_param(&signed, "SigAlg")).await, 400).await;
    assert_event(&s, "failure", "redirect_missing_sigalg").await;
    page(get_slo(&s, &remove_param(&signed, "Signature")).await, 400).await;
    assert_event(&s, "failure", "redirect_missing_signature").await;
    page(get_slo(&s, "").await, 400).await;
    assert_event(&s, "failure", "redirect_missing_message").await;

    // Wrong Destination, signed.
    let wrong = xml.replace(&slo_url(&s), "https://evil.example/slo");
    page(get_slo(&s, &redirect_query(MessageKind::Response, &wrong, None, Some(idp_key()))).await, 403).await;
    assert_event(&s, "failure", "destination_mismatch").await;

    // POST: unsigned.
    page(post_form(&s, "SAMLResponse", &xml).await, 403).await;
    assert_event(&s, "failure", "unsigned").await;
});

// ------------------------------------------------------------------------------------------------
// IdP-initiated

db_test!(idp_initiated_redirect_ends_exactly_the_matching_session, async |backend| {
    let s = setup(backend, Some(Binding::HttpRedirect)).await;
    let alice1 = session(&s, "alice", Some("_s1")).await;
    let alice2 = session(&s, "alice", Some("_s2")).await;
    let bob = session(&s, "bob", Some("_s1")).await;

    let req = Req::new(&s, "alice", Some("_s1"));
    let r = get_slo(&s, &redirect_query(MessageKind::Request, &req.xml(), Some("idp-state"), Some(idp_key()))).await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&format!("{IDP_SLO}?SAMLResponse=")), "{location}");
    let (xml, relay_state) = redirect_message(&s, &location).await;
    assert_eq!(relay_state.as_deref(), Some("idp-state"));
    assert_our_response(&s, &xml, &req.id, &[STATUS_SUCCESS], Some(IDP_SLO));

    assert!(!alive(&s.app, &s.public_id, &alice1).await);
    assert!(alive(&s.app, &s.public_id, &alice2).await, "another session of alice (other SessionIndex) stays");
    assert!(alive(&s.app, &s.public_id, &bob).await, "another customer's session stays");
    let details = assert_event(&s, "logout", "").await;
    assert!(details.contains("\"sessions_ended\":1") && details.contains("_s1"), "{details}");
});

db_test!(idp_initiated_post_without_session_index_ends_all_sessions_of_the_name_id, async |backend| {
    let s = setup(backend, Some(Binding::HttpPost)).await;
    let alice1 = session(&s, "alice", Some("_s1")).await;
    let alice2 = session(&s, "alice", Some("_s2")).await;
    let bob = session(&s, "bob", None).await;

    // Server to server (WSO2's back channel is this form POST), no cookies.
    let req = Req::new(&s, "alice", None);
    let html = page(post_form(&s, "SAMLRequest", &req.signed(idp_key())).await, 200).await;
    assert_eq!(form_action(&html), IDP_SLO);
    assert_eq!(form_value(&html, "RelayState").as_deref(), Some("rs-1"));
    let answer = String::from_utf8(STANDARD.decode(form_value(&html, "SAMLResponse").unwrap()).unwrap()).unwrap();
    let verified = verified_by_sp(&s, &answer).await;
    assert_our_response(&s, &verified, &req.id, &[STATUS_SUCCESS], Some(IDP_SLO));

    assert!(!alive(&s.app, &s.public_id, &alice1).await);
    assert!(!alive(&s.app, &s.public_id, &alice2).await);
    assert!(alive(&s.app, &s.public_id, &bob).await);
});

db_test!(idp_initiated_soap_back_channel, async |backend| {
    let s = setup(backend, Some(Binding::HttpRedirect)).await;
    let alice = session(&s, "alice", Some("_s1")).await;
    let bob = session(&s, "bob", Some("_s1")).await;

    let req = Req::new(&s, "alice", Some("_s1"));
    let r = post_soap(&s, soap(&req.signed(idp_key()))).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/xml"));
    let envelope = r.text().await.unwrap();
    let d = doc(&envelope);
    assert_eq!(d.root_element().tag_name().name(), "Envelope");
    assert_eq!(d.root_element().tag_name().namespace(), Some("http://schemas.xmlsoap.org/soap/envelope/"));
    let verified = verified_by_sp(&s, &envelope).await;
    assert_our_response(&s, &verified, &req.id, &[STATUS_SUCCESS], Some(IDP_SLO));

    assert!(!alive(&s.app, &s.public_id, &alice).await);
    assert!(alive(&s.app, &s.public_id, &bob).await);
    let details = assert_event(&s, "logout", "").await;
    assert!(details.contains("\"binding\":\"soap\""), "{details}");

    // The SOAP envelope inside a form value (WSO2 IS with its SOAP SLO option) works too.
    let carol = session(&s, "carol", None).await;
    let req = Req::new(&s, "carol", None);
    let r = post_form(&s, "SAMLRequest", &soap(&req.signed(idp_key()))).await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    assert!(!alive(&s.app, &s.public_id, &carol).await);
});

db_test!(hostile_idp_initiated_requests_end_no_session, async |backend| {
    let s = setup(backend, Some(Binding::HttpRedirect)).await;
    let alice = session(&s, "alice", Some("_s1")).await;
    let bob = session(&s, "bob", Some("_s1")).await;
    let req = Req::new(&s, "alice", Some("_s1"));

    // Unsigned (POST and Redirect).
    page(post_form(&s, "SAMLRequest", &req.xml()).await, 403).await;
    assert_event(&s, "failure", "unsigned").await;
    page(get_slo(&s, &redirect_query(MessageKind::Request, &req.xml(), None, None)).await, 403).await;
    assert_event(&s, "failure", "redirect_signature_required").await;
    // Signed with another key (POST and Redirect).
    page(post_form(&s, "SAMLRequest", &req.signed(attacker_key())).await, 403).await;
    assert_event(&s, "failure", "signature_invalid").await;
    page(get_slo(&s, &redirect_query(MessageKind::Request, &req.xml(), None, Some(attacker_key()))).await, 403).await;
    assert_event(&s, "failure", "redirect_invalid_signature").await;
    // NameID changed after signing: alice's genuine request turned against bob.
    let tampered = req.signed(idp_key()).replace(">alice<", ">bob<");
    assert!(tampered.contains(">bob<"));
    page(post_form(&s, "SAMLRequest", &tampered).await, 403).await;
    assert_event(&s, "failure", "signature_invalid").await;
    // Missing SigAlg / Signature on Redirect: 400, never a panic.
    let signed_query = redirect_query(MessageKind::Request, &req.xml(), None, Some(idp_key()));
    page(get_slo(&s, &remove_param(&signed_query, "SigAlg")).await, 400).await;
    assert_event(&s, "failure", "redirect_missing_sigalg").await;
    page(get_slo(&s, &remove_param(&signed_query, "Signature")).await, 400).await;
    assert_event(&s, "failure", "redirect_missing_signature").await;
    // Unknown issuer (signed by a key we do not know either).
    let mut other = Req::new(&s, "alice", Some("_s1"));
    other.issuer = "https://unknown-idp.example".into();
    page(post_form(&s, "SAMLRequest", &other.signed(idp_key())).await, 403).await;
    assert_event(&s, "failure", "unknown_issuer").await;
    // Wrong Destination, missing Destination on a browser binding, expired.
    let mut wrong = Req::new(&s, "alice", Some("_s1"));
    wrong.destination = Some("https://other-sp.example/slo".into());
    page(post_form(&s, "SAMLRequest", &wrong.signed(idp_key())).await, 403).await;
    assert_event(&s, "failure", "destination_mismatch").await;
    let mut missing = Req::new(&s, "alice", Some("_s1"));
    missing.destination = None;
    page(get_slo(&s, &redirect_query(MessageKind::Request, &missing.xml(), None, Some(idp_key()))).await, 403).await;
    assert_event(&s, "failure", "destination_mismatch").await;
    let mut expired = Req::new(&s, "alice", Some("_s1"));
    expired.not_on_or_after = Utc::now() - Duration::minutes(10);
    page(post_form(&s, "SAMLRequest", &expired.signed(idp_key())).await, 403).await;
    assert_event(&s, "failure", "expired").await;
    // Signature wrapping: an evil request for bob next to the genuine signed one in a SOAP Body.
    let genuine = req.signed(idp_key());
    let evil = Req { id: new_id(), ..Req::new(&s, "bob", None) };
    let wrapped = soap(&format!("{}{}", evil.xml(), strip_declaration(&genuine)));
    assert_eq!(post_soap(&s, wrapped).await.status(), 400);
    assert_event(&s, "failure", "soap_structure").await;
    // An external Reference URI (SSRF / file read in libxmlsec1) never reaches libxmlsec1.
    let external = genuine.replace(&format!("URI=\"#{}\"", req.id), "URI=\"http://127.0.0.1:9/x\"");
    page(post_form(&s, "SAMLRequest", &external).await, 403).await;
    assert_event(&s, "failure", "external_uri").await;

    assert!(alive(&s.app, &s.public_id, &alice).await);
    assert!(alive(&s.app, &s.public_id, &bob).await);
    assert_eq!(s.app.db.scalar("SELECT COUNT(*) FROM login_events WHERE outcome = 'logout'").await, 0);
});

db_test!(hostile_soap_requests_get_a_signed_denial, async |backend| {
    let s = setup(backend, Some(Binding::HttpRedirect)).await;
    let alice = session(&s, "alice", Some("_s1")).await;
    let req = Req::new(&s, "alice", Some("_s1"));

    // Wrong key: 400 with our signed LogoutResponse Requester/RequestDenied.
    let r = post_soap(&s, soap(&req.signed(attacker_key()))).await;
    assert_eq!(r.status(), 400);
    let envelope = r.text().await.unwrap();
    let verified = verified_by_sp(&s, &envelope).await;
    assert_our_response(&s, &verified, &req.id, &[STATUS_REQUESTER, STATUS_REQUEST_DENIED], Some(IDP_SLO));
    assert_event(&s, "failure", "signature_invalid").await;

    // DOCTYPE in the body (entity expansion / external DTD): refused before any XML library resolves it.
    let doctype = format!(
        r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/hostname">]>{}"#,
        soap(&req.signed(idp_key()))
    );
    let r = post_soap(&s, doctype).await;
    assert_eq!(r.status(), 400);
    let envelope = r.text().await.unwrap();
    let verified = verified_by_sp(&s, &envelope).await;
    let d = doc(&verified);
    assert_eq!(status_of(d.root_element()), [STATUS_REQUESTER, STATUS_REQUEST_DENIED]);
    assert_event(&s, "failure", "doctype").await;

    // Not an envelope, and oversize.
    assert_eq!(post_soap(&s, req.signed(idp_key())).await.status(), 400);
    assert_event(&s, "failure", "not_soap").await;
    let huge = soap(&format!("{}<!--{}-->", req.signed(idp_key()), "x".repeat(300 * 1024)));
    assert_eq!(post_soap(&s, huge).await.status(), 413);
    assert_event(&s, "failure", "too_large").await;
    let huge_form = "A".repeat(300 * 1024);
    page(s.app.http.post(s.t("/saml/slo")).form(&[("SAMLRequest", huge_form)]).send().await.unwrap(), 413).await;

    assert!(alive(&s.app, &s.public_id, &alice).await);
});

db_test!(idp_initiated_logout_does_not_touch_another_tenant, async |backend| {
    let s = setup(backend, Some(Binding::HttpRedirect)).await;
    // A second site with an IdP of the same entity ID and key, and a session of the same NameID.
    let other_site = s.app.jira.site("globex");
    s.app.installed(&other_site).await;
    let row = s
        .app
        .db
        .rows(&format!("SELECT t.id, t.public_id FROM tenants t JOIN connect_installations c ON c.tenant_id = t.id WHERE c.client_key = '{}'", other_site.client_key))
        .await;
    let (other_tenant, other_public) = (TenantId::from_stored(row[0][0].clone()), row[0][1].clone());
    let other_idp = new_idp(&other_tenant, IDP_ENTITY, &[idp_key()], Default::default());
    s.app.store.save_idp(&other_idp, Utc::now()).await.unwrap();
    let theirs = add_session(&s.app, &other_tenant, &other_idp.id, "alice", Some("_s1")).await;
    let ours = session(&s, "alice", Some("_s1")).await;

    let req = Req::new(&s, "alice", Some("_s1"));
    assert_eq!(post_soap(&s, soap(&req.signed(idp_key()))).await.status(), 200);
    assert!(!alive(&s.app, &s.public_id, &ours).await);
    assert!(alive(&s.app, &other_public, &theirs).await, "the other tenant's session stays");

    // The other tenant's cookie sent to our logout ends nothing there either.
    let r = s.app.http.get(s.t("/logout")).header("Cookie", format!("jsm_sso_session={theirs}")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(alive(&s.app, &other_public, &theirs).await);
});

// WSO2 posts back-channel LogoutRequests to the ACS URL when its SLO URL field is left empty.
db_test!(a_logout_request_posted_to_the_acs_is_handled_as_single_logout, async |backend| {
    let s = setup(backend, Some(Binding::HttpPost)).await;
    let alice = session(&s, "alice", Some("_s1")).await;
    let bob = session(&s, "bob", None).await;
    let req = Req::new(&s, "alice", Some("_s1"));
    let r = s
        .app
        .http
        .post(s.t("/saml/acs"))
        .form(&[("SAMLRequest", STANDARD.encode(req.signed(idp_key()).as_bytes()))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert!(!alive(&s.app, &s.public_id, &alice).await);
    assert!(alive(&s.app, &s.public_id, &bob).await);
    // An unsigned one is refused there too.
    let carol = session(&s, "carol", None).await;
    let unsigned = Req::new(&s, "carol", None);
    let r = s
        .app
        .http
        .post(s.t("/saml/acs"))
        .form(&[("SAMLRequest", STANDARD.encode(unsigned.xml().as_bytes()))])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    assert!(alive(&s.app, &s.public_id, &carol).await);
});
