//! The admin JSON API: the tenant's SP (info, metadata, certificate rollover), IdP import (XML, URL,
//! manual), edits, deletion, metadata refresh, login events; authentication and tenant isolation.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use jsm_sso::saml::idp::IdpId;
use jsm_sso::saml::idp_import::FetchPolicy;
use jsm_sso::saml::refresh::{self, RefreshError};
use jsm_sso::store::LoginEvent;
use jsm_sso::tenants::TenantId;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::db_test;
use crate::helpers::*;

const ADMIN: &str = "557058:admin";
const AGENT: &str = "557058:agent";
const WSO2_FINGERPRINT: &str =
    "1D:72:9F:B8:C4:68:EA:D8:20:A2:A0:BE:4A:DB:8F:BA:BE:D9:AB:1B:A1:26:C9:D2:14:66:C5:70:6E:8E:4D:30";
const OKTA_ENTITY: &str = "http://www.okta.com/exk9u78i8aMSxvkV70h7";
const ALLOW_PRIVATE: FetchPolicy = FetchPolicy { allow_private: true };

// ---------------------------------------------------------------------------------------------------
// Helpers

fn fixture(name: &str) -> String {
    let path = format!("{}/../shared/fixtures/idp-metadata/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn installed_app(backend: Backend) -> (TestApp, Site) {
    let app = TestApp::spawn(backend).await;
    app.jira.make_admin(ADMIN);
    let site = app.jira.site("acme");
    app.installed(&site).await;
    (app, site)
}

/// Calls the admin API as `account` (or without a token): status and JSON body (`Null` if none).
async fn call(
    app: &TestApp,
    site: &Site,
    method: Method,
    path: &str,
    body: Option<&Value>,
    account: Option<&str>,
) -> (u16, Value) {
    let mut req = app.http.request(method, app.url(path));
    if let Some(account) = account {
        req = req.header("Authorization", format!("JWT {}", context_token(site, account)));
    }
    if let Some(body) = body {
        req = req.json(body);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn admin(app: &TestApp, site: &Site, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
    call(app, site, method, path, body, Some(ADMIN)).await
}

async fn tenant_of(app: &TestApp, site: &Site) -> TenantId {
    app.store.find_connect_installation(&site.client_key).await.unwrap().unwrap().tenant.id
}

async fn public_id(app: &TestApp, site: &Site) -> String {
    let (status, t) = admin(app, site, Method::GET, "/api/v1/tenant", None).await;
    assert_eq!(status, 200, "{t}");
    t["public_id"].as_str().unwrap().to_string()
}

async fn idp_count(app: &TestApp) -> (i64, i64) {
    (app.db.scalar("SELECT COUNT(*) FROM idps").await, app.db.scalar("SELECT COUNT(*) FROM idp_certificates").await)
}

fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// A fresh self-signed RSA-2048 certificate: PEM, bare base64 DER, SHA-256 fingerprint.
fn generated_cert(cn: &str) -> (String, String, String) {
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::{X509Builder, X509NameBuilder};
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    let now = Utc::now().timestamp();
    b.set_not_before(&Asn1Time::from_unix(now - 86_400).unwrap()).unwrap();
    b.set_not_after(&Asn1Time::from_unix(now + 3 * 365 * 86_400).unwrap()).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = b.build();
    let der = cert.to_der().unwrap();
    (
        String::from_utf8(cert.to_pem().unwrap()).unwrap(),
        base64::engine::general_purpose::STANDARD.encode(&der),
        fingerprint(&der),
    )
}

fn key_descriptor(b64: &str) -> String {
    format!(
        "<md:KeyDescriptor use=\"signing\"><ds:KeyInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:X509Data>\
         <ds:X509Certificate>{b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
    )
}

/// Okta's metadata with another signing certificate added after its own.
fn okta_with_extra_cert(b64: &str) -> String {
    fixture("okta-idp-metadata.xml").replacen(
        "<md:NameIDFormat>",
        &format!("{}<md:NameIDFormat>", key_descriptor(b64)),
        1,
    )
}

/// Okta's metadata with its own certificate replaced by another one.
fn okta_with_only(b64: &str) -> String {
    let xml = fixture("okta-idp-metadata.xml");
    let start = xml.find("<md:KeyDescriptor").unwrap();
    let end = xml.find("</md:KeyDescriptor>").unwrap() + "</md:KeyDescriptor>".len();
    format!("{}{}{}", &xml[..start], key_descriptor(b64), &xml[end..])
}

fn rfc3339(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}"))).unwrap().to_utc()
}

fn codes(warnings: &Value) -> Vec<String> {
    warnings.as_array().unwrap().iter().map(|w| w["code"].as_str().unwrap().to_string()).collect()
}

/// What the metadata server answers on one path.
#[derive(Clone)]
enum Served {
    Doc(u16, String),
    Redirect(String),
    /// A body of this many bytes, streamed without a Content-Length.
    Streamed(usize),
}

/// An IdP's metadata endpoint on loopback (the tests run with `allow_private_urls`).
#[derive(Clone)]
struct MetadataServer {
    base: String,
    routes: Arc<Mutex<HashMap<String, Served>>>,
    hits: Arc<Mutex<Vec<String>>>,
}

async fn serve(server: web::Data<MetadataServer>, req: HttpRequest) -> HttpResponse {
    server.hits.lock().unwrap().push(req.path().to_string());
    let served = server.routes.lock().unwrap().get(req.path()).cloned();
    match served {
        None => HttpResponse::NotFound().body("no such metadata"),
        Some(Served::Doc(status, body)) => {
            let ct = if body.trim_start().starts_with("<html") { "text/html" } else { "application/samlmetadata+xml" };
            HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).content_type(ct).body(body)
        }
        Some(Served::Redirect(to)) => HttpResponse::Found().insert_header(("Location", to)).finish(),
        Some(Served::Streamed(size)) => {
            let chunk = web::Bytes::from(vec![b' '; 64 * 1024]);
            let chunks = (0..size.div_ceil(64 * 1024)).map(move |_| Ok::<_, actix_web::Error>(chunk.clone()));
            let head = futures_util::stream::iter([Ok(web::Bytes::from_static(b"<?xml version=\"1.0\"?>"))]);
            HttpResponse::Ok()
                .content_type("application/xml")
                .streaming(futures_util::StreamExt::chain(head, futures_util::stream::iter(chunks)))
        }
    }
}

impl MetadataServer {
    async fn start() -> MetadataServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let server = MetadataServer { base, routes: Default::default(), hits: Default::default() };
        let data = web::Data::new(server.clone());
        let http = HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(serve)))
            .workers(1)
            .listen(listener)
            .unwrap()
            .run();
        tokio::spawn(http);
        server
    }

    fn set(&self, path: &str, served: Served) {
        self.routes.lock().unwrap().insert(path.to_string(), served);
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().iter().filter(|p| *p == path).count()
    }
}

async fn import_xml(app: &TestApp, site: &Site, name: &str, xml: &str) -> Value {
    let (status, idp) =
        admin(app, site, Method::POST, "/api/v1/idps", Some(&json!({"name": name, "metadata_xml": xml}))).await;
    assert_eq!(status, 201, "{idp}");
    idp
}

// ---------------------------------------------------------------------------------------------------
// The SP

db_test!(sp_info_names_the_tenant_endpoints_and_certificate, async |backend| {
    let (app, site) = installed_app(backend).await;
    let pid = public_id(&app, &site).await;
    let (status, sp) = admin(&app, &site, Method::GET, "/api/v1/sp", None).await;
    assert_eq!(status, 200, "{sp}");
    let base = app.base_url();
    assert_eq!(sp["entity_id"], format!("{base}/t/{pid}/saml/metadata"));
    assert_eq!(sp["metadata_url"], format!("{base}/t/{pid}/saml/metadata"));
    assert_eq!(sp["acs_url"], format!("{base}/t/{pid}/saml/acs"));
    assert_eq!(sp["slo_url"], format!("{base}/t/{pid}/saml/slo"));
    assert_eq!(sp["login_url"], format!("{base}/t/{pid}/login"));
    assert_eq!(sp["audience"], sp["entity_id"]);
    assert_eq!(sp["recipient"], sp["acs_url"]);
    let cert = openssl::x509::X509::from_pem(sp["certificate_pem"].as_str().unwrap().as_bytes()).unwrap();
    assert_eq!(sp["certificate_fingerprint_sha256"], fingerprint(&cert.to_der().unwrap()));
    assert_eq!(cert.public_key().unwrap().bits(), 2048);
    assert!(rfc3339(&sp["certificate_not_after"]) > Utc::now() + Duration::days(365));
    assert!(sp["next_certificate_pem"].is_null() && sp["next_certificate_fingerprint_sha256"].is_null(), "{sp}");

    // Stable: the key is created once.
    let (_, again) = admin(&app, &site, Method::GET, "/api/v1/sp", None).await;
    assert_eq!(again["certificate_fingerprint_sha256"], sp["certificate_fingerprint_sha256"]);

    // The metadata document, as the admin downloads it.
    let r = app
        .http
        .get(app.url("/api/v1/sp/metadata"))
        .header("Authorization", format!("JWT {}", context_token(&site, ADMIN)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/samlmetadata+xml"));
    let xml = r.text().await.unwrap();
    assert!(xml.contains(&format!("entityID=\"{base}/t/{pid}/saml/metadata\"")), "{xml}");
    assert!(xml.contains(&format!("Location=\"{base}/t/{pid}/saml/acs\"")), "{xml}");
    assert_eq!(xml.matches("<ds:X509Certificate>").count(), 1);
});

db_test!(sp_certificate_rollover_publishes_the_next_then_retires_the_old, async |backend| {
    let (app, site) = installed_app(backend).await;
    let (status, err) = admin(&app, &site, Method::POST, "/api/v1/sp/certificate/promote", None).await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["error"]["code"], "no_next_certificate");

    let (_, before) = admin(&app, &site, Method::GET, "/api/v1/sp", None).await;
    let old_fp = before["certificate_fingerprint_sha256"].as_str().unwrap().to_string();
    let (status, next) = admin(&app, &site, Method::POST, "/api/v1/sp/certificate/next", None).await;
    assert_eq!(status, 200, "{next}");
    assert_eq!(next["certificate_fingerprint_sha256"], old_fp.as_str(), "the current key still signs");
    let next_fp = next["next_certificate_fingerprint_sha256"].as_str().unwrap().to_string();
    assert_ne!(next_fp, old_fp);
    let next_cert = openssl::x509::X509::from_pem(next["next_certificate_pem"].as_str().unwrap().as_bytes()).unwrap();
    assert_eq!(fingerprint(&next_cert.to_der().unwrap()), next_fp);

    // Idempotent.
    let (status, again) = admin(&app, &site, Method::POST, "/api/v1/sp/certificate/next", None).await;
    assert_eq!(status, 200);
    assert_eq!(again["next_certificate_fingerprint_sha256"], next_fp.as_str());

    let b64 = |pem: &Value| pem.as_str().unwrap().lines().filter(|l| !l.starts_with("-----")).collect::<String>();
    let (old_b64, next_b64) = (b64(&before["certificate_pem"]), b64(&next["next_certificate_pem"]));
    let metadata = async || {
        app.http
            .get(app.url("/api/v1/sp/metadata"))
            .header("Authorization", format!("JWT {}", context_token(&site, ADMIN)))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let xml = metadata().await;
    assert_eq!(xml.matches("<ds:X509Certificate>").count(), 2, "{xml}");
    assert!(xml.contains(&old_b64) && xml.contains(&next_b64));

    let (status, promoted) = admin(&app, &site, Method::POST, "/api/v1/sp/certificate/promote", None).await;
    assert_eq!(status, 200, "{promoted}");
    assert_eq!(promoted["certificate_fingerprint_sha256"], next_fp.as_str());
    assert!(promoted["next_certificate_pem"].is_null());
    let xml = metadata().await;
    assert_eq!(xml.matches("<ds:X509Certificate>").count(), 1, "{xml}");
    assert!(xml.contains(&next_b64) && !xml.contains(&old_b64), "the old certificate is retired");
    let (status, _) = admin(&app, &site, Method::POST, "/api/v1/sp/certificate/promote", None).await;
    assert_eq!(status, 409, "nothing left to promote");
});

// ---------------------------------------------------------------------------------------------------
// Import

db_test!(import_by_xml_keeps_what_metadata_says_and_warns_about_wso2_defaults, async |backend| {
    let (app, site) = installed_app(backend).await;
    let pid = public_id(&app, &site).await;
    let r = app
        .http
        .post(app.url("/api/v1/idps"))
        .header("Authorization", format!("JWT {}", context_token(&site, ADMIN)))
        .json(&json!({"name": "  WSO2 IS  ", "metadata_xml": fixture("wso2-is-resident-idp-localhost.xml")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let idp: Value = r.json().await.unwrap();
    let id = idp["id"].as_str().unwrap();
    assert!(IdpId::parse(id).is_some());
    assert_eq!(location, format!("{}/api/v1/idps/{id}", app.base_url()));
    assert_eq!(idp["name"], "WSO2 IS");
    assert_eq!(idp["enabled"], true);
    assert_eq!(idp["entity_id"], "localhost");
    assert_eq!(idp["sso_url"], "https://localhost:9443/samlsso");
    assert_eq!(idp["sso_binding"], "redirect");
    assert_eq!(idp["slo_url"], "https://localhost:9443/samlsso");
    assert_eq!(idp["source"], "metadata_file");
    assert!(idp["metadata_url"].is_null() && idp["last_refresh"].is_null() && idp["last_login_at"].is_null());
    let certs = idp["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0]["fingerprint_sha256"], WSO2_FINGERPRINT);
    assert_eq!(certs[0]["subject"], "CN=localhost, O=WSO2, L=Mountain View, ST=CA, C=US");
    assert_eq!(rfc3339(&certs[0]["not_after"]).format("%Y-%m-%d").to_string(), "2035-02-13");
    let w = codes(&idp["warnings"]);
    for code in ["wso2_default_certificate", "metadata_expired", "weak_rsa_key"] {
        assert!(w.contains(&code.to_string()), "{code} missing from {w:?}");
    }
    assert!(idp["warnings"][0]["message"].as_str().unwrap().len() > 20);
    assert_eq!(idp["settings"]["clock_skew_secs"], 180);
    assert_eq!(idp["settings"]["allow_sha1"], false);
    let login = format!("{}/t/{pid}/login?idp={id}", app.base_url());
    assert_eq!(idp["login_url"], login.as_str());
    assert_eq!(idp["test_url"], format!("{login}&test=1"));

    let (status, list) = admin(&app, &site, Method::GET, "/api/v1/idps", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["idps"].as_array().unwrap().len(), 1);
    assert_eq!(list["idps"][0], idp);
    let (status, one) = admin(&app, &site, Method::GET, &format!("/api/v1/idps/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(one, idp);
    assert_eq!(idp_count(&app).await, (1, 1));
});

db_test!(import_by_url_then_refresh_follows_a_certificate_rollover, async |backend| {
    let (app, site) = installed_app(backend).await;
    let meta = MetadataServer::start().await;
    meta.set("/okta", Served::Doc(200, fixture("okta-idp-metadata.xml")));
    let body = json!({"name": "Okta", "metadata_url": meta.url("/okta"), "settings": {"clock_skew_secs": 60}, "enabled": false});
    let (status, idp) = admin(&app, &site, Method::POST, "/api/v1/idps", Some(&body)).await;
    assert_eq!(status, 201, "{idp}");
    let id = idp["id"].as_str().unwrap().to_string();
    assert_eq!(idp["source"], "metadata_url");
    assert_eq!(idp["metadata_url"], meta.url("/okta").as_str());
    assert_eq!(idp["entity_id"], OKTA_ENTITY);
    assert_eq!(idp["last_refresh"]["status"], "ok");
    assert!(idp["last_refresh"]["error"].is_null());
    let next = rfc3339(&idp["next_refresh_at"]) - Utc::now();
    assert!(next > Duration::hours(11) && next <= Duration::hours(12), "default interval: {next}");
    let okta_fp = idp["certificates"][0]["fingerprint_sha256"].as_str().unwrap().to_string();
    assert_eq!(meta.hits("/okta"), 1);

    // The IdP publishes its next key beside the current one: trusted at the next refresh.
    let (_, new_b64, new_fp) = generated_cert("okta-next");
    meta.set("/okta", Served::Doc(200, okta_with_extra_cert(&new_b64)));
    let (status, r) = admin(&app, &site, Method::POST, &format!("/api/v1/idps/{id}/refresh"), None).await;
    assert_eq!(status, 200, "{r}");
    let added: Vec<&str> = r["changes"]["certificates_added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["fingerprint_sha256"].as_str().unwrap())
        .collect();
    assert_eq!(added, [new_fp.as_str()]);
    assert_eq!(r["changes"]["certificates_removed"], json!([]));
    let fps: Vec<&str> = r["idp"]["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["fingerprint_sha256"].as_str().unwrap())
        .collect();
    assert_eq!(fps, [okta_fp.as_str(), new_fp.as_str()]);
    // Name, enabled and settings never come from metadata.
    assert_eq!((&r["idp"]["name"], &r["idp"]["enabled"]), (&json!("Okta"), &json!(false)));
    assert_eq!(r["idp"]["settings"]["clock_skew_secs"], 60);

    // The old key is withdrawn: retired.
    meta.set("/okta", Served::Doc(200, okta_with_only(&new_b64)));
    let (status, r) = admin(&app, &site, Method::POST, &format!("/api/v1/idps/{id}/refresh"), None).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["changes"]["certificates_added"], json!([]));
    assert_eq!(r["changes"]["certificates_removed"][0]["fingerprint_sha256"], okta_fp.as_str());
    assert_eq!(r["idp"]["certificates"].as_array().unwrap().len(), 1);
    assert_eq!(r["idp"]["certificates"][0]["fingerprint_sha256"], new_fp.as_str());
    assert_eq!(idp_count(&app).await, (1, 1));
    let history = app.db.rows(&format!("SELECT status FROM idp_refreshes WHERE idp_id = '{id}'")).await;
    assert_eq!(history.len(), 3, "import + 2 refreshes: {history:?}");
    assert!(history.iter().all(|r| r[0] == "ok"));
});

db_test!(manual_import_accepts_pem_and_bare_base64, async |backend| {
    let (app, site) = installed_app(backend).await;
    let (pem, b64, fp) = generated_cert("idp.example.com");
    let body = json!({
        "name": "Hand-made",
        "entity_id": " https://idp.example.com/saml ",
        "sso_url": "https://idp.example.com/sso?tenant=1",
        "slo_url": "https://idp.example.com/slo",
        "certificate_pem": pem,
    });
    let (status, idp) = admin(&app, &site, Method::POST, "/api/v1/idps", Some(&body)).await;
    assert_eq!(status, 201, "{idp}");
    assert_eq!(idp["source"], "manual");
    assert_eq!(idp["entity_id"], "https://idp.example.com/saml");
    assert_eq!(idp["sso_url"], "https://idp.example.com/sso?tenant=1");
    assert_eq!(idp["sso_binding"], "redirect");
    assert_eq!(idp["slo_url"], "https://idp.example.com/slo");
    assert_eq!(idp["certificates"][0]["fingerprint_sha256"], fp.as_str());
    assert_eq!(idp["certificates"][0]["subject"], "CN=idp.example.com");
    assert_eq!(idp["warnings"], json!([]), "a sound configuration has no warnings");

    // Bare base64 (as in <X509Certificate>), plain http SSO (warned), no SLO.
    let (_, b64_2, fp2) = generated_cert("other");
    let wrapped: String =
        b64_2.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join("\n");
    let body = json!({"name": "Bare", "entity_id": "urn:other", "sso_url": "http://idp.internal/sso", "certificate_pem": wrapped});
    let (status, idp2) = admin(&app, &site, Method::POST, "/api/v1/idps", Some(&body)).await;
    assert_eq!(status, 201, "{idp2}");
    assert_eq!(idp2["certificates"][0]["fingerprint_sha256"], fp2.as_str());
    assert!(idp2["slo_url"].is_null());
    assert_eq!(codes(&idp2["warnings"]), ["sso_url_not_https"]);
    assert_eq!(idp_count(&app).await, (2, 2));

    // Refusals name the field, and nothing is saved.
    let cases = [
        (
            json!({"name": "x", "entity_id": "https://idp.example.com/saml", "sso_url": "https://a/sso", "certificate_pem": b64}),
            "entity_id_in_use",
            "entity_id",
        ),
        (
            json!({"name": "x", "entity_id": "urn:x", "sso_url": "https://a/sso"}),
            "certificate_empty",
            "certificate_pem",
        ),
        (
            json!({"name": "x", "entity_id": "urn:x", "sso_url": "https://a/sso", "certificate_pem": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"}),
            "private_key_pasted",
            "certificate_pem",
        ),
        (
            json!({"name": "x", "entity_id": "urn:x", "sso_url": "https://a/sso", "certificate_pem": "bm90IGEgY2VydA=="}),
            "certificate_invalid",
            "certificate_pem",
        ),
        (
            json!({"name": "x", "entity_id": "urn:x", "sso_url": "ftp://a/sso", "certificate_pem": b64}),
            "invalid_url",
            "sso_url",
        ),
        (
            json!({"name": "x", "entity_id": "urn:x", "sso_url": "/sso", "certificate_pem": b64}),
            "invalid_url",
            "sso_url",
        ),
        (
            json!({"name": "x", "entity_id": "urn:x", "sso_url": "https://a/sso#x", "certificate_pem": b64}),
            "invalid_url",
            "sso_url",
        ),
        (
            json!({"name": "x", "entity_id": "urn:x", "sso_url": "https://a/sso", "slo_url": "nope", "certificate_pem": b64}),
            "invalid_url",
            "slo_url",
        ),
        (
            json!({"name": "x", "entity_id": "  ", "sso_url": "https://a/sso", "certificate_pem": b64}),
            "invalid_entity_id",
            "entity_id",
        ),
        (
            json!({"name": "", "entity_id": "urn:x", "sso_url": "https://a/sso", "certificate_pem": b64}),
            "invalid_name",
            "name",
        ),
        (json!({"name": "x"}), "missing_field", "metadata_xml"),
        (
            json!({"name": "x", "entity_id": "urn:x", "sso_url": "https://a/sso", "certificate_pem": b64, "settings": {"clock_skew_secs": 9999}}),
            "invalid_settings",
            "settings.clock_skew_secs",
        ),
        (
            json!({"name": "x", "entity_id": "urn:x", "sso_url": "https://a/sso", "certificate_pem": b64, "settings": {"colour": "blue"}}),
            "invalid_settings",
            "settings.colour",
        ),
    ];
    for (body, code, field) in cases {
        let (status, err) = admin(&app, &site, Method::POST, "/api/v1/idps", Some(&body)).await;
        assert_eq!(status, 422, "{body}: {err}");
        assert_eq!(err["error"]["code"], code, "{body}: {err}");
        assert_eq!(err["error"]["field"], field, "{body}: {err}");
        assert!(err["error"]["message"].as_str().unwrap().len() > 10);
    }
    assert_eq!(idp_count(&app).await, (2, 2));
});

db_test!(aggregates_need_a_choice_of_entity, async |backend| {
    let (app, site) = installed_app(backend).await;
    let xml = fixture("simplesamlphp-aggregate-three-idps.xml");
    let (status, err) =
        admin(&app, &site, Method::POST, "/api/v1/idps", Some(&json!({"name": "Fed", "metadata_xml": xml}))).await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["code"], "entity_selection_required");
    assert_eq!(err["error"]["field"], "entity");
    let candidates: Vec<&str> =
        err["error"]["candidates"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(candidates.len(), 3, "{candidates:?}");
    let idp2 = "https://idp2.example.com/simplesaml/saml2/idp/metadata.php";
    assert!(candidates.contains(&idp2));
    assert!(err["error"]["message"].as_str().unwrap().contains(idp2));
    assert_eq!(idp_count(&app).await, (0, 0));

    let (status, err) = admin(
        &app,
        &site,
        Method::POST,
        "/api/v1/idps",
        Some(&json!({"name": "Fed", "metadata_xml": xml, "entity": "https://nobody.example.com/"})),
    )
    .await;
    assert_eq!(
        (status, &err["error"]["code"], &err["error"]["field"]),
        (422, &json!("entity_not_found"), &json!("entity"))
    );
    assert_eq!(err["error"]["candidates"].as_array().unwrap().len(), 3);

    let (status, idp) = admin(
        &app,
        &site,
        Method::POST,
        "/api/v1/idps",
        Some(&json!({"name": "Fed", "metadata_xml": xml, "entity": idp2})),
    )
    .await;
    assert_eq!(status, 201, "{idp}");
    assert_eq!(idp["entity_id"], idp2);
    assert_eq!(idp["sso_url"], "https://idp2.example.com/simplesaml/saml2/idp/SSOService.php");
    assert_eq!(idp["certificates"].as_array().unwrap().len(), 1);

    // An aggregate with one IdP and one SP: the IdP is chosen; the SP cannot be.
    let testshib = fixture("testshib-aggregate-idp-and-sp.xml");
    let (status, err) = admin(
        &app,
        &site,
        Method::POST,
        "/api/v1/idps",
        Some(&json!({"name": "SP", "metadata_xml": testshib, "entity": "https://sp.testshib.org/shibboleth-sp"})),
    )
    .await;
    assert_eq!((status, &err["error"]["code"], &err["error"]["field"]), (422, &json!("not_an_idp"), &json!("entity")));
    let idp = import_xml(&app, &site, "TestShib", &testshib).await;
    assert_eq!(idp["entity_id"], "https://idp.testshib.org/idp/shibboleth");
    assert_eq!(idp_count(&app).await, (2, 2));
});

db_test!(refused_metadata_saves_nothing_and_names_the_reason, async |backend| {
    let (app, site) = installed_app(backend).await;
    let okta = fixture("okta-idp-metadata.xml");
    let doctype = okta.replacen("?>", "?><!DOCTYPE md:EntityDescriptor [<!ENTITY x \"y\">]>", 1);
    let encryption_only =
        fixture("validuntil-cacheduration-expired.xml").replace("use=\"signing\"", "use=\"encryption\"");
    assert_ne!(encryption_only, fixture("validuntil-cacheduration-expired.xml"));
    let cases = [
        (fixture("sp-only-no-idpssodescriptor.xml"), "no_idp_descriptor"),
        (fixture("empty-entitiesdescriptor.xml"), "empty_aggregate"),
        (fixture("adfs-like-placeholder-certs.xml"), "invalid_signing_certificate"),
        (doctype, "doctype_not_allowed"),
        ("this is not XML at all".to_string(), "not_xml"),
        ("<html><body>Sign in</body></html>".to_string(), "html_not_metadata"),
        (encryption_only, "no_signing_certificate"),
        (String::new(), "metadata_empty"),
        (format!("{okta}{}", " ".repeat(1024 * 1024)), "metadata_too_large"),
    ];
    for (xml, code) in cases {
        let (status, err) =
            admin(&app, &site, Method::POST, "/api/v1/idps", Some(&json!({"name": "Bad", "metadata_xml": xml}))).await;
        assert_eq!(status, 422, "{code}: {err}");
        assert_eq!(err["error"]["code"], code, "{err}");
        assert_eq!(err["error"]["field"], "metadata_xml", "{err}");
        assert!(err["error"]["message"].as_str().unwrap().len() > 20, "{err}");
        assert_eq!(idp_count(&app).await, (0, 0), "{code}");
    }

    // Malformed bodies are 400s.
    let bad_bodies = [
        "{not json",
        "[]",
        r#"{"name": "x", "metadata_xml": 42}"#,
        r#"{"name": "x", "metadata_xml": "<x/>", "surprise": true}"#,
        "",
    ];
    for raw in bad_bodies {
        let r = app
            .http
            .post(app.url("/api/v1/idps"))
            .header("Authorization", format!("JWT {}", context_token(&site, ADMIN)))
            .header("Content-Type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{raw}");
        let err: Value = r.json().await.unwrap();
        assert_eq!(err["error"]["code"], "invalid_json", "{raw}: {err}");
    }
    let (status, err) = admin(
        &app,
        &site,
        Method::POST,
        "/api/v1/idps",
        Some(&json!({"name": "x", "metadata_xml": okta, "metadata_url": "https://idp.example.com/m"})),
    )
    .await;
    assert_eq!((status, &err["error"]["code"]), (422, &json!("conflicting_fields")));
    assert_eq!(idp_count(&app).await, (0, 0));
});

db_test!(metadata_urls_are_fetched_with_limits, async |backend| {
    let (app, site) = installed_app(backend).await;
    let meta = MetadataServer::start().await;
    let okta = fixture("okta-idp-metadata.xml");
    meta.set("/final", Served::Doc(200, okta.clone()));
    // hop0 → hop1 → hop2 → hop3 → final: four redirects from hop0, three from hop1.
    for i in 0..3 {
        meta.set(&format!("/hop{i}"), Served::Redirect(format!("/hop{}", i + 1)));
    }
    meta.set("/hop3", Served::Redirect(meta.url("/final")));
    meta.set("/loop", Served::Redirect("/loop".into()));
    meta.set("/streamed", Served::Streamed(2 * 1024 * 1024));
    meta.set("/huge", Served::Doc(200, format!("{okta}{}", " ".repeat(1024 * 1024))));
    meta.set("/broken", Served::Doc(500, "oops".into()));
    meta.set("/login-page", Served::Doc(200, "<html><body>Sign in</body></html>".into()));
    meta.set("/sp", Served::Doc(200, fixture("sp-only-no-idpssodescriptor.xml")));

    let cases = [
        ("/hop0", "too_many_redirects"),
        ("/loop", "too_many_redirects"),
        ("/streamed", "metadata_too_large"),
        ("/huge", "metadata_too_large"),
        ("/broken", "metadata_fetch_failed"),
        ("/nothing-here", "metadata_fetch_failed"),
        ("/login-page", "html_not_metadata"),
        ("/sp", "no_idp_descriptor"),
    ];
    for (path, code) in cases {
        let body = json!({"name": "x", "metadata_url": meta.url(path)});
        let (status, err) = admin(&app, &site, Method::POST, "/api/v1/idps", Some(&body)).await;
        assert_eq!(status, 422, "{path}: {err}");
        assert_eq!(err["error"]["code"], code, "{path}: {err}");
        assert_eq!(err["error"]["field"], "metadata_url", "{path}: {err}");
    }
    assert_eq!(meta.hits("/loop"), 4, "the first request and 3 redirects");
    assert_eq!(meta.hits("/final"), 0, "4 redirects are not followed");
    assert_eq!(meta.hits("/streamed"), 1);
    for url in ["file:///etc/passwd", "gopher://idp.example.com/", "https://", "metadata.xml"] {
        let (status, err) =
            admin(&app, &site, Method::POST, "/api/v1/idps", Some(&json!({"name": "x", "metadata_url": url}))).await;
        assert_eq!((status, &err["error"]["code"]), (422, &json!("invalid_url")), "{url}: {err}");
    }
    assert_eq!(idp_count(&app).await, (0, 0));

    // Three redirects are fine.
    let (status, idp) = admin(
        &app,
        &site,
        Method::POST,
        "/api/v1/idps",
        Some(&json!({"name": "x", "metadata_url": meta.url("/hop1")})),
    )
    .await;
    assert_eq!(status, 201, "{idp}");
    assert_eq!(idp["metadata_url"], meta.url("/hop1").as_str(), "the URL given is kept, not the redirect target");
    assert_eq!(meta.hits("/final"), 1);
});

// ---------------------------------------------------------------------------------------------------
// Edit and delete

db_test!(put_edits_and_validates_without_partial_saves, async |backend| {
    let (app, site) = installed_app(backend).await;
    let idp = import_xml(&app, &site, "Okta", &fixture("okta-idp-metadata.xml")).await;
    let path = format!("/api/v1/idps/{}", idp["id"].as_str().unwrap());

    let body = json!({"name": "Okta (prod)", "enabled": false, "settings": {"clock_skew_secs": 60, "email_domains": ["example.com"]}});
    let (status, edited) = admin(&app, &site, Method::PUT, &path, Some(&body)).await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["name"], "Okta (prod)");
    assert_eq!(edited["enabled"], false);
    assert_eq!(edited["settings"]["clock_skew_secs"], 60);
    assert_eq!(edited["settings"]["email_domains"], json!(["example.com"]));
    assert_eq!(edited["settings"]["session_hours"], 8, "members not given are kept");
    assert_eq!(edited["certificates"], idp["certificates"]);

    // Settings merge over the current ones.
    let (status, edited) =
        admin(&app, &site, Method::PUT, &path, Some(&json!({"settings": {"force_authn": true}}))).await;
    assert_eq!(status, 200);
    assert_eq!(
        (&edited["settings"]["clock_skew_secs"], &edited["settings"]["force_authn"]),
        (&json!(60), &json!(true))
    );

    let refusals = [
        (
            json!({"name": "renamed", "settings": {"clock_skew_secs": 601}}),
            "invalid_settings",
            "settings.clock_skew_secs",
        ),
        (json!({"settings": {"session_hours": 0}}), "invalid_settings", "settings.session_hours"),
        (json!({"settings": {"email_domains": ["not a domain"]}}), "invalid_settings", "settings.email_domains"),
        (json!({"settings": {"clock_skew_secs": -1}}), "invalid_settings", "settings.clock_skew_secs"),
        (json!({"settings": {"bogus": 1}}), "invalid_settings", "settings.bogus"),
        (json!({"name": " "}), "invalid_name", "name"),
        (json!({"entity_id": "urn:other"}), "not_applicable", "entity_id"),
        (json!({"certificate_pem": "MIIB"}), "not_applicable", "certificate_pem"),
        (
            json!({"metadata_xml": fixture("sp-only-no-idpssodescriptor.xml"), "name": "renamed"}),
            "no_idp_descriptor",
            "metadata_xml",
        ),
    ];
    for (body, code, field) in refusals {
        let (status, err) = admin(&app, &site, Method::PUT, &path, Some(&body)).await;
        assert_eq!(status, 422, "{body}: {err}");
        assert_eq!((&err["error"]["code"], &err["error"]["field"]), (&json!(code), &json!(field)), "{body}: {err}");
    }
    let (_, now) = admin(&app, &site, Method::GET, &path, None).await;
    assert_eq!(now["name"], "Okta (prod)", "nothing of a refused edit was saved");
    assert_eq!(now["settings"]["clock_skew_secs"], 60);

    // Replacing the document (a different IdP entirely) keeps name and settings.
    let (status, replaced) = admin(
        &app,
        &site,
        Method::PUT,
        &path,
        Some(&json!({"metadata_xml": fixture("google-workspace-two-signing-certs-query-sso.xml")})),
    )
    .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["entity_id"], "https://accounts.google.com/o/saml2?idpid=C023zw3x8");
    assert_eq!(replaced["sso_url"], "https://accounts.google.com/o/saml2/idp?idpid=C023zw3x8");
    assert_eq!(replaced["certificates"].as_array().unwrap().len(), 2);
    assert_eq!((&replaced["name"], &replaced["settings"]["clock_skew_secs"]), (&json!("Okta (prod)"), &json!(60)));
    assert_eq!(idp_count(&app).await, (1, 2), "the old certificate was retired");

    // A manual IdP: its fields can be edited.
    let (pem, _, _) = generated_cert("manual");
    let body = json!({"name": "Manual", "entity_id": "urn:manual", "sso_url": "https://m/sso", "slo_url": "https://m/slo", "certificate_pem": pem});
    let (_, manual) = admin(&app, &site, Method::POST, "/api/v1/idps", Some(&body)).await;
    let mpath = format!("/api/v1/idps/{}", manual["id"].as_str().unwrap());
    let (pem2, _, fp2) = generated_cert("manual-2");
    let (status, m) = admin(
        &app,
        &site,
        Method::PUT,
        &mpath,
        Some(&json!({"sso_url": "http://m/sso2", "slo_url": null, "certificate_pem": pem2})),
    )
    .await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(
        (&m["sso_url"], &m["slo_url"], &m["entity_id"]),
        (&json!("http://m/sso2"), &Value::Null, &json!("urn:manual"))
    );
    assert_eq!(m["certificates"].as_array().unwrap().len(), 1);
    assert_eq!(m["certificates"][0]["fingerprint_sha256"], fp2.as_str());
    assert_eq!(codes(&m["warnings"]), ["sso_url_not_https"]);
    // Entity IDs stay unique per site.
    let (status, err) = admin(
        &app,
        &site,
        Method::PUT,
        &mpath,
        Some(&json!({"entity_id": "https://accounts.google.com/o/saml2?idpid=C023zw3x8"})),
    )
    .await;
    assert_eq!((status, &err["error"]["code"]), (422, &json!("entity_id_in_use")), "{err}");
    let (status, err) =
        admin(&app, &site, Method::PUT, &mpath, Some(&json!({"metadata_xml": fixture("okta-idp-metadata.xml")}))).await;
    assert_eq!((status, &err["error"]["code"]), (422, &json!("not_applicable")), "{err}");
    let (status, err) = admin(&app, &site, Method::POST, &format!("{mpath}/refresh"), None).await;
    assert_eq!((status, &err["error"]["code"]), (409, &json!("not_refreshable")), "{err}");
});

db_test!(delete_removes_the_idp_and_its_certificates, async |backend| {
    let (app, site) = installed_app(backend).await;
    let idp = import_xml(&app, &site, "Keycloak", &fixture("keycloak-realm-two-signing-certs.xml")).await;
    let keep = import_xml(&app, &site, "Okta", &fixture("okta-idp-metadata.xml")).await;
    assert_eq!(idp_count(&app).await, (2, 3));
    let path = format!("/api/v1/idps/{}", idp["id"].as_str().unwrap());
    let r = app
        .http
        .delete(app.url(&path))
        .header("Authorization", format!("JWT {}", context_token(&site, ADMIN)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.text().await.unwrap(), "");
    assert_eq!(admin(&app, &site, Method::GET, &path, None).await.0, 404);
    assert_eq!(admin(&app, &site, Method::DELETE, &path, None).await.0, 404);
    assert_eq!(idp_count(&app).await, (1, 1));
    let (_, list) = admin(&app, &site, Method::GET, "/api/v1/idps", None).await;
    assert_eq!(list["idps"].as_array().unwrap().len(), 1);
    assert_eq!(list["idps"][0]["id"], keep["id"]);
});

// ---------------------------------------------------------------------------------------------------
// Access

db_test!(another_tenants_idps_are_not_found, async |backend| {
    let (app, acme) = installed_app(backend).await;
    let globex = app.jira.site("globex");
    app.installed(&globex).await;
    let meta = MetadataServer::start().await;
    meta.set("/okta", Served::Doc(200, fixture("okta-idp-metadata.xml")));
    let (_, idp) = admin(
        &app,
        &acme,
        Method::POST,
        "/api/v1/idps",
        Some(&json!({"name": "Acme", "metadata_url": meta.url("/okta")})),
    )
    .await;
    let id = idp["id"].as_str().unwrap();
    let unknown = uuid::Uuid::new_v4().to_string();

    for target in [id, unknown.as_str(), "not-a-uuid", "1"] {
        let path = format!("/api/v1/idps/{target}");
        let requests = [
            (Method::GET, path.clone(), None),
            (Method::PUT, path.clone(), Some(json!({"name": "pwned", "enabled": false}))),
            (Method::DELETE, path.clone(), None),
            (Method::POST, format!("{path}/refresh"), None),
        ];
        for (method, p, body) in requests {
            let (status, err) = admin(&app, &globex, method.clone(), &p, body.as_ref()).await;
            assert_eq!(status, 404, "{method} {p}: {err}");
            assert_eq!(err["error"]["code"], "not_found");
            assert_eq!(
                err["error"]["message"], "There is no such identity provider on this site.",
                "the same answer whether or not it exists elsewhere"
            );
        }
    }
    assert_eq!(meta.hits("/okta"), 1, "globex's refresh fetched nothing");
    let (_, list) = admin(&app, &globex, Method::GET, "/api/v1/idps", None).await;
    assert_eq!(list["idps"], json!([]));
    let (status, still) = admin(&app, &acme, Method::GET, &format!("/api/v1/idps/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!((&still["name"], &still["enabled"]), (&json!("Acme"), &json!(true)));
    // globex may use the same entity ID for its own IdP.
    let other = import_xml(&app, &globex, "Globex", &fixture("okta-idp-metadata.xml")).await;
    assert_eq!(other["entity_id"], OKTA_ENTITY);
});

db_test!(the_admin_api_needs_a_token_and_an_administrator, async |backend| {
    let (app, site) = installed_app(backend).await;
    let okta = json!({"name": "Okta", "metadata_xml": fixture("okta-idp-metadata.xml")});
    let idp = import_xml(&app, &site, "Okta", &fixture("okta-idp-metadata.xml")).await;
    let sp_keys = app.db.scalar("SELECT COUNT(*) FROM sp_keys").await;
    let one = format!("/api/v1/idps/{}", idp["id"].as_str().unwrap());
    let endpoints: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/api/v1/sp".into(), None),
        (Method::GET, "/api/v1/sp/metadata".into(), None),
        (Method::POST, "/api/v1/sp/certificate/next".into(), None),
        (Method::POST, "/api/v1/sp/certificate/promote".into(), None),
        (Method::GET, "/api/v1/idps".into(), None),
        (Method::POST, "/api/v1/idps".into(), Some(okta.clone())),
        (Method::GET, one.clone(), None),
        (Method::PUT, one.clone(), Some(json!({"name": "pwned"}))),
        (Method::DELETE, one.clone(), None),
        (Method::POST, format!("{one}/refresh"), None),
        (Method::GET, "/api/v1/login-events".into(), None),
    ];
    for (method, path, body) in &endpoints {
        let (status, err) = call(&app, &site, method.clone(), path, body.as_ref(), None).await;
        assert_eq!(status, 401, "{method} {path}: {err}");
        assert_eq!(err["error"]["code"], "unauthorized", "{method} {path}");
        let (status, err) = call(&app, &site, method.clone(), path, body.as_ref(), Some(AGENT)).await;
        assert_eq!(status, 403, "{method} {path}: {err}");
        assert_eq!(err["error"]["code"], "forbidden", "{method} {path}");
    }
    // A malformed body from someone without a token is still a 401, not a 400.
    let r = app.http.post(app.url("/api/v1/idps")).body("{oops").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(idp_count(&app).await, (1, 1));
    assert_eq!(app.db.scalar("SELECT COUNT(*) FROM sp_keys").await, sp_keys, "no key was created for a non-admin");
    let (_, still) = admin(&app, &site, Method::GET, &one, None).await;
    assert_eq!(still["name"], "Okta");
});

// ---------------------------------------------------------------------------------------------------
// Login events

db_test!(login_events_are_paged_newest_first_per_tenant, async |backend| {
    let (app, acme) = installed_app(backend).await;
    let globex = app.jira.site("globex");
    app.installed(&globex).await;
    let (acme_id, globex_id) = (tenant_of(&app, &acme).await, tenant_of(&app, &globex).await);
    let idp = import_xml(&app, &acme, "Okta", &fixture("okta-idp-metadata.xml")).await;
    let idp_id = IdpId::parse(idp["id"].as_str().unwrap()).unwrap();
    let t0 = Utc::now() - Duration::minutes(10);
    for i in 0..5i64 {
        let outcome = if i % 2 == 0 { "failure" } else { "success" };
        let mut e = LoginEvent::new(
            acme_id.clone(),
            Some(idp_id.clone()),
            outcome,
            format!("event {i}"),
            t0 + Duration::seconds(i),
        );
        e.seq = 1000 + i;
        e.reason_code = (outcome == "failure").then(|| "audience_mismatch".to_string());
        e.details = json!({"expected": "a", "received": format!("b{i}")});
        e.name_id = Some(format!("user{i}"));
        e.email = Some(format!("user{i}@example.com"));
        app.store.insert_login_event(&e).await.unwrap();
    }
    for i in 0..2i64 {
        let mut e = LoginEvent::new(globex_id.clone(), None, "success", format!("globex {i}"), t0);
        e.seq = 2000 + i;
        app.store.insert_login_event(&e).await.unwrap();
    }

    let (status, page) = admin(&app, &acme, Method::GET, "/api/v1/login-events?limit=2", None).await;
    assert_eq!(status, 200, "{page}");
    let seqs =
        |p: &Value| p["events"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect::<Vec<_>>();
    assert_eq!(seqs(&page), [1004, 1003]);
    assert_eq!(page["next_before"], 1003);
    let e = &page["events"][0];
    assert_eq!(e["outcome"], "failure");
    assert_eq!(e["reason_code"], "audience_mismatch");
    assert_eq!(e["message"], "event 4");
    assert_eq!(e["details"], json!({"expected": "a", "received": "b4"}));
    assert_eq!((&e["name_id"], &e["email"]), (&json!("user4"), &json!("user4@example.com")));
    assert_eq!(e["idp_id"], idp["id"]);
    assert_eq!(rfc3339(&e["occurred_at"]).timestamp(), (t0 + Duration::seconds(4)).timestamp());
    assert!(e["id"].as_str().is_some_and(|s| !s.is_empty()));

    let (_, page) = admin(&app, &acme, Method::GET, "/api/v1/login-events?limit=2&before=1003", None).await;
    assert_eq!((seqs(&page), &page["next_before"]), (vec![1002, 1001], &json!(1001)));
    let (_, page) = admin(&app, &acme, Method::GET, "/api/v1/login-events?limit=2&before=1001", None).await;
    assert_eq!((seqs(&page), &page["next_before"]), (vec![1000], &Value::Null));
    let (_, all) = admin(&app, &acme, Method::GET, "/api/v1/login-events", None).await;
    assert_eq!((seqs(&all), &all["next_before"]), (vec![1004, 1003, 1002, 1001, 1000], &Value::Null));
    let (_, failures) = admin(&app, &acme, Method::GET, "/api/v1/login-events?outcome=failure", None).await;
    assert_eq!(seqs(&failures), [1004, 1002, 1000]);
    let (_, by_idp) =
        admin(&app, &acme, Method::GET, &format!("/api/v1/login-events?idp={idp_id}&limit=1"), None).await;
    assert_eq!((seqs(&by_idp), &by_idp["next_before"]), (vec![1004], &json!(1004)));

    // Each site sees its own.
    let (_, theirs) = admin(&app, &globex, Method::GET, "/api/v1/login-events", None).await;
    assert_eq!(seqs(&theirs), [2001, 2000]);
    let (_, spy) = admin(&app, &globex, Method::GET, &format!("/api/v1/login-events?idp={idp_id}"), None).await;
    assert_eq!(spy["events"], json!([]));

    for query in ["limit=0", "limit=201", "limit=x", "before=soon", "idp=nope", "outcome=everything"] {
        let (status, err) = admin(&app, &acme, Method::GET, &format!("/api/v1/login-events?{query}"), None).await;
        assert_eq!(status, 400, "{query}: {err}");
        assert_eq!(err["error"]["code"], "invalid_parameter");
        assert_eq!(err["error"]["field"], query.split('=').next().unwrap());
    }
});

// ---------------------------------------------------------------------------------------------------
// Refresh failures

db_test!(a_failed_refresh_keeps_the_last_good_configuration, async |backend| {
    let (app, site) = installed_app(backend).await;
    let meta = MetadataServer::start().await;
    meta.set("/okta", Served::Doc(200, fixture("okta-idp-metadata.xml")));
    let (_, created) = admin(
        &app,
        &site,
        Method::POST,
        "/api/v1/idps",
        Some(&json!({"name": "Okta", "metadata_url": meta.url("/okta")})),
    )
    .await;
    let id = IdpId::parse(created["id"].as_str().unwrap()).unwrap();
    let tenant = tenant_of(&app, &site).await;
    let load = async || app.store.find_idp(&tenant, &id).await.unwrap().unwrap();
    let good = load().await;
    let due = good.next_refresh_at.unwrap() + Duration::seconds(1);

    // The scheduled pass picks it up when due, and the server is down.
    meta.set("/okta", Served::Doc(500, "down".into()));
    refresh::refresh_due(&app.store, ALLOW_PRIVATE, due - Duration::seconds(2)).await;
    assert_eq!(meta.hits("/okta"), 1, "not due yet: not fetched");
    refresh::refresh_due(&app.store, ALLOW_PRIVATE, due).await;
    assert_eq!(meta.hits("/okta"), 2);
    let after = load().await;
    assert_eq!(after.certificates, good.certificates);
    assert_eq!((&after.entity_id, &after.sso), (&good.entity_id, &good.sso));
    assert_eq!(after.last_refresh_status.as_deref(), Some("failed"));
    assert!(after.last_refresh_error.as_deref().unwrap().contains("HTTP 500"), "{:?}", after.last_refresh_error);
    assert_eq!(after.last_refresh_at.unwrap().timestamp(), due.timestamp());
    assert_eq!(
        after.next_refresh_at.unwrap().timestamp(),
        (due + Duration::hours(1)).timestamp(),
        "retried in an hour"
    );

    // The document now describes another entity: refused, recorded.
    let other = fixture("okta-idp-metadata.xml").replace(OKTA_ENTITY, "http://www.okta.com/someone-else");
    meta.set("/okta", Served::Doc(200, other));
    let now = Utc::now();
    match refresh::refresh_idp_with(&app.store, ALLOW_PRIVATE, &after, now).await {
        Err(RefreshError::Failed(e)) => assert_eq!(e.code, "entity_id_changed", "{e}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    let after = load().await;
    assert_eq!(after.entity_id, OKTA_ENTITY);
    assert_eq!(after.certificates, good.certificates);
    assert!(after.last_refresh_error.as_deref().unwrap().starts_with("entity_id_changed"));

    // Expired metadata is not used either.
    let expired = fixture("okta-idp-metadata.xml").replace(
        &format!("entityID=\"{OKTA_ENTITY}\""),
        &format!("entityID=\"{OKTA_ENTITY}\" validUntil=\"2020-01-01T00:00:00Z\""),
    );
    meta.set("/okta", Served::Doc(200, expired));
    match refresh::refresh_idp_with(&app.store, ALLOW_PRIVATE, &after, now).await {
        Err(RefreshError::Failed(e)) => assert_eq!(e.code, "metadata_expired", "{e}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    // Refused documents too; and an on-demand refresh says why.
    meta.set("/okta", Served::Doc(200, fixture("adfs-like-placeholder-certs.xml")));
    let (status, err) = admin(&app, &site, Method::POST, &format!("/api/v1/idps/{id}/refresh"), None).await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["code"], "entity_id_changed");
    let (_, shown) = admin(&app, &site, Method::GET, &format!("/api/v1/idps/{id}"), None).await;
    assert_eq!(shown["last_refresh"]["status"], "failed");
    assert!(shown["last_refresh"]["error"].as_str().unwrap().starts_with("entity_id_changed"));
    assert_eq!(shown["certificates"], created["certificates"]);
    assert_eq!(idp_count(&app).await, (1, 1));

    let history = app
        .db
        .rows(&format!("SELECT status, message FROM idp_refreshes WHERE idp_id = '{id}' ORDER BY occurred_at"))
        .await;
    let statuses: Vec<&str> = history.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(statuses, ["ok", "failed", "failed", "failed", "failed"], "{history:?}");
    assert!(history.iter().any(|r| r[0] == "failed" && r[1].contains("HTTP 500")), "{history:?}");

    // Back to normal: the next refresh succeeds and clears the error.
    meta.set("/okta", Served::Doc(200, fixture("okta-idp-metadata.xml")));
    let done = refresh::refresh_idp_with(&app.store, ALLOW_PRIVATE, &load().await, Utc::now()).await.unwrap();
    assert!(done.changes.is_empty());
    assert_eq!(done.idp.last_refresh_status.as_deref(), Some("ok"));
    assert_eq!(done.idp.last_refresh_error, None);

    // A deleted IdP is not brought back by a refresh that was already running.
    let stale = load().await;
    assert_eq!(admin(&app, &site, Method::DELETE, &format!("/api/v1/idps/{id}"), None).await.0, 204);
    assert!(matches!(
        refresh::refresh_idp_with(&app.store, ALLOW_PRIVATE, &stale, Utc::now()).await,
        Err(RefreshError::Superseded)
    ));
    assert_eq!(idp_count(&app).await, (0, 0));
});

// With several replicas, each due IdP is claimed (and so refreshed) by one of them only.
db_test!(a_due_refresh_is_claimed_by_one_replica, async |backend| {
    let s = crate::helpers::saml::SamlSetup::new(backend).await;
    let now = chrono::Utc::now();
    let mut idp = s.idp.clone();
    idp.source = jsm_sso::saml::idp::IdpSource::MetadataUrl;
    idp.metadata_url = Some("https://idp.example.test/metadata".into());
    idp.next_refresh_at = Some(now - chrono::Duration::minutes(1));
    s.app.store.save_idp(&idp, now).await.unwrap();

    let other_replica = jsm_sso::store::Store::connect(&s.app.db.url).await.unwrap();
    let first = s.app.store.idps_due_for_refresh(now).await.unwrap();
    let second = other_replica.idps_due_for_refresh(now).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].1, idp.id);
    assert!(second.is_empty(), "already claimed by the first replica");
    // If the claiming replica dies, the claim lapses and another one takes over.
    let later = now + chrono::Duration::minutes(11);
    assert_eq!(other_replica.idps_due_for_refresh(later).await.unwrap().len(), 1);
});
