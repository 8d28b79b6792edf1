//! Health checks and the security headers of every response.

use crate::db_test;
use crate::helpers::*;

db_test!(health_and_readiness, async |backend| {
    let app = TestApp::spawn(backend).await;
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"));
    assert_eq!(app.get("/readyz").await.status(), 200);
});

db_test!(security_headers_everywhere, async |backend| {
    let app = TestApp::spawn(backend).await;
    for path in ["/atlassian-connect.json", "/healthz", "/admin/get-started", "/no/such/route"] {
        let r = app.get(path).await;
        let h = r.headers();
        let cache = h["cache-control"].to_str().unwrap();
        assert!(cache.contains("no-store") && cache.contains("no-cache"), "{path}: {cache}");
        assert_eq!(h["referrer-policy"], "strict-origin-when-cross-origin", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert!(h.get("strict-transport-security").is_none(), "no HSTS on a plain-http base URL");
        if path != "/admin/get-started" {
            let csp = h["content-security-policy"].to_str().unwrap();
            assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        }
    }
    let r = app.get("/static/app.css").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["cache-control"].to_str().unwrap().contains("max-age"));
});

db_test!(hsts_when_the_base_url_is_https, async |backend| {
    let app = TestApp::spawn_with(backend, |s| {
        s.base_url = jsm_sso::config::BaseUrl::parse("https://sso.example.com").unwrap()
    })
    .await;
    let r = app.get("/healthz").await;
    let hsts = r.headers()["strict-transport-security"].to_str().unwrap();
    assert!(hsts.contains("max-age=31536000"), "{hsts}");
});
