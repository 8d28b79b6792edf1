//! Every request Jira makes (or that claims to come from Jira) is authenticated.

use serde_json::json;

use crate::db_test;
use crate::helpers::*;

const ADMIN: &str = "557058:admin";
const AGENT: &str = "557058:agent";
const PAGE: &str = "/admin/identity-providers";

async fn installed_app(backend: Backend) -> (TestApp, Site) {
    let app = TestApp::spawn(backend).await;
    app.jira.make_admin(ADMIN);
    let site = app.jira.site("acme");
    app.installed(&site).await;
    (app, site)
}

async fn get_with_token(app: &TestApp, path_and_query: &str, token: &str) -> reqwest::Response {
    let sep = if path_and_query.contains('?') { '&' } else { '?' };
    app.get(&format!("{path_and_query}{sep}jwt={token}")).await
}

db_test!(a_genuine_page_load_is_served_with_the_tenant_framing_policy, async |backend| {
    let (app, site) = installed_app(backend).await;
    // Jira's standard context parameters are part of the signed query.
    let url = format!("{PAGE}?xdm_e={}&xdm_c=channel-1&cp=&lic=none&cv=1001.0.0", urlencode(&site.base_url));
    let r = app.load_page(&site, &url, ADMIN).await;
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("frame-ancestors http://127.0.0.1:"), "{csp}");
    assert!(csp.contains("https://*.atlassian.net"), "{csp}");
    assert!(!csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(r.headers().get("x-frame-options").is_none());
    let body = r.text().await.unwrap();
    assert!(body.contains("Identity providers"));
    assert!(body.contains("127.0.0.1"), "shows the site");
    assert!(body.contains("https://connect-cdn.atl-paas.net/all.js"));
});

db_test!(page_loads_with_bad_tokens_are_refused, async |backend| {
    let (app, site) = installed_app(backend).await;
    let now = chrono::Utc::now().timestamp();

    // Tampered qsh: signed for another URL.
    let token = page_token(&app, &site, "GET", "/admin/configure", Some(ADMIN));
    assert_eq!(get_with_token(&app, PAGE, &token).await.status(), 401, "qsh of another page");
    let token = page_token(&app, &site, "GET", &format!("{PAGE}?a=1"), Some(ADMIN));
    assert_eq!(get_with_token(&app, &format!("{PAGE}?a=2"), &token).await.status(), 401, "query changed");

    // Expired beyond the leeway.
    let mut claims = page_claims(&site, "GET", PAGE, Some(ADMIN));
    claims["exp"] = json!(now - 60);
    assert_eq!(get_with_token(&app, PAGE, &hs256(&claims, &site.shared_secret)).await.status(), 401, "expired");
    // Expired but within the leeway: accepted.
    claims["exp"] = json!(now - 10);
    assert_eq!(get_with_token(&app, PAGE, &hs256(&claims, &site.shared_secret)).await.status(), 200, "within leeway");

    // Wrong secret.
    let claims = page_claims(&site, "GET", PAGE, Some(ADMIN));
    assert_eq!(get_with_token(&app, PAGE, &hs256(&claims, "not-the-secret")).await.status(), 401, "wrong secret");

    // Unknown issuer.
    let stranger = app.jira.site("stranger");
    assert_eq!(app.load_page(&stranger, PAGE, ADMIN).await.status(), 401, "unknown iss");

    // No qsh at all.
    let mut claims = page_claims(&site, "GET", PAGE, Some(ADMIN));
    claims.as_object_mut().unwrap().remove("qsh");
    assert_eq!(get_with_token(&app, PAGE, &hs256(&claims, &site.shared_secret)).await.status(), 401, "no qsh");

    // A context token cannot open a page.
    assert_eq!(get_with_token(&app, PAGE, &context_token(&site, ADMIN)).await.status(), 401, "context-qsh on a page");

    // No token.
    assert_eq!(app.get(PAGE).await.status(), 401, "no token");

    // HS256 is pinned: an HS512 token with the right secret is refused.
    let hs512 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &page_claims(&site, "GET", PAGE, Some(ADMIN)),
        &jsonwebtoken::EncodingKey::from_secret(site.shared_secret.as_bytes()),
    )
    .unwrap();
    assert_eq!(get_with_token(&app, PAGE, &hs512).await.status(), 401, "HS512");

    // Two tokens (query and header).
    let good = page_token(&app, &site, "GET", PAGE, Some(ADMIN));
    let r = app
        .http
        .get(app.url(&format!("{PAGE}?jwt={good}")))
        .header("Authorization", format!("JWT {good}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "token in both query and header");

    // The genuine token works, so the refusals above are about the token.
    assert_eq!(get_with_token(&app, PAGE, &good).await.status(), 200);
});

db_test!(refusal_pages_are_specific_and_frameable_by_jira, async |backend| {
    let (app, site) = installed_app(backend).await;
    let mut claims = page_claims(&site, "GET", PAGE, Some(ADMIN));
    claims["exp"] = json!(chrono::Utc::now().timestamp() - 3600);
    let r = get_with_token(&app, PAGE, &hs256(&claims, &site.shared_secret)).await;
    assert_eq!(r.status(), 401);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("frame-ancestors https://*.atlassian.net"), "{csp}");
    let body = r.text().await.unwrap();
    assert!(body.contains("expired"), "{body}");
});

db_test!(non_admins_get_403_and_the_answer_is_cached, async |backend| {
    let (app, site) = installed_app(backend).await;
    let r = app.load_page(&site, PAGE, AGENT).await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("administrator"));
    assert_eq!(app.api_get(&site, "/api/v1/tenant", AGENT).await.status(), 403);
    // A token without a user is not an admin either.
    let token = page_token(&app, &site, "GET", PAGE, None);
    assert_eq!(get_with_token(&app, PAGE, &token).await.status(), 403);

    // The admin check was asked of Jira, as the app, and is cached for the next request.
    let before = app.jira.calls_to("/rest/api/3/permissions/check").len();
    assert_eq!(app.load_page(&site, PAGE, ADMIN).await.status(), 200);
    assert_eq!(app.load_page(&site, PAGE, ADMIN).await.status(), 200);
    let checks = app.jira.calls_to("/rest/api/3/permissions/check");
    assert_eq!(checks.len(), before + 1, "second admin page load uses the cache");
    let last = checks.last().unwrap();
    assert!(last.path.starts_with("/acme/"), "called on the tenant's own site: {}", last.path);
    assert!(last.authorization.as_deref().unwrap().starts_with("JWT "));
    assert!(last.body.contains(ADMIN));
});

db_test!(admin_api_accepts_context_tokens_and_is_tenant_scoped, async |backend| {
    let (app, acme) = installed_app(backend).await;
    let globex = app.jira.site("globex");
    app.installed(&globex).await;

    let r = app.api_get(&acme, "/api/v1/tenant", ADMIN).await;
    assert_eq!(r.status(), 200);
    let a: serde_json::Value = r.json().await.unwrap();
    let g: serde_json::Value = app.api_get(&globex, "/api/v1/tenant", ADMIN).await.json().await.unwrap();
    assert_eq!(a["site_url"], acme.base_url);
    assert_eq!(g["site_url"], globex.base_url);
    assert_ne!(a["public_id"], g["public_id"]);

    // A token that claims acme's client key but is signed with globex's secret opens nothing.
    let now = chrono::Utc::now().timestamp();
    let forged = hs256(
        &json!({"iss": acme.client_key, "sub": ADMIN, "qsh": "context-qsh", "iat": now, "exp": now + 60}),
        &globex.shared_secret,
    );
    let r =
        app.http.get(app.url("/api/v1/tenant")).header("Authorization", format!("JWT {forged}")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");

    // The API also accepts a token with the exact qsh, in the header.
    let token = page_token(&app, &acme, "GET", "/api/v1/tenant", Some(ADMIN));
    let r =
        app.http.get(app.url("/api/v1/tenant")).header("Authorization", format!("JWT {token}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
});

db_test!(a_base_url_with_a_path_prefix_serves_under_it_and_strips_it_for_the_qsh, async |backend| {
    let app = TestApp::spawn(backend).await;
    app.jira.make_admin(ADMIN);
    let site = app.jira.site("acme");
    app.installed(&site).await;
    // A second instance on the same database, deployed at https://host/sso behind a proxy that forwards
    // `/sso/...` unchanged.
    let prefixed = app
        .restart_with(|s| {
            s.base_url = jsm_sso::config::BaseUrl::parse(&format!("{}/sso", s.base_url.as_str())).unwrap()
        })
        .await;
    // Jira signs the module URL relative to the base URL: `/admin/identity-providers`.
    let token = page_token(&prefixed, &site, "GET", PAGE, Some(ADMIN));
    assert_eq!(prefixed.get(&format!("/sso{PAGE}?jwt={token}")).await.status(), 200);
    assert_eq!(prefixed.get(&format!("{PAGE}?jwt={token}")).await.status(), 404);
    // A token signed for the prefixed path (the prefix must not be part of the qsh) is refused.
    let wrong = page_token(&prefixed, &site, "GET", &format!("/sso{PAGE}"), Some(ADMIN));
    assert_eq!(prefixed.get(&format!("/sso{PAGE}?jwt={wrong}")).await.status(), 401);
});

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
