//! A real headless Chromium, driven over W3C WebDriver (`chromedriver`) with plain `reqwest`, and a
//! Jira stand-in that frames our admin pages the way Jira does.
//!
//! # How the pages get `AP` without Atlassian's CDN
//!
//! Our pages load `https://connect-cdn.atl-paas.net/all.js`, exactly as in production, and their CSP
//! allows scripts only from `'self'` and that origin. The tests do not touch either. Instead Chromium
//! is started with `--host-resolver-rules="MAP connect-cdn.atl-paas.net 127.0.0.1:<port>"`, so the
//! CDN's name resolves to a local TLS server ([`FakeCdn`]) with a certificate made for this process,
//! trusted through `--ignore-certificate-errors-spki-list=<its key hash>` (only that key, not any
//! certificate). That server answers `/all.js` with [`AP_STUB`], a small stand-in for Atlassian's
//! script that, like the real one, asks the host page over `postMessage`: for a context token (the
//! host page gets one minted by the test, per call), to resize the iframe, to navigate.
//!
//! # The host page
//!
//! [`JiraHost`] is an actix server on another loopback port playing the Jira site: the tenant is
//! installed with this server as its `baseUrl`, so the app's framing policy (`frame-ancestors` = the
//! site's origin) admits it, unchanged. It serves `/{site}/plugins/servlet/ac/{app key}/{module key}`
//! like Jira: it reads the module's URL from the app's descriptor and frames it, sandboxed as Jira
//! does, with a Jira-signed `?jwt=` for that exact URL (the real qsh). The admin check the app makes
//! (`POST /rest/api/3/permissions/check` on the site) is passed on to the [`FakeJira`].
//!
//! Chromium and chromedriver come from Debian's `chromium` and `chromium-driver` packages (override
//! with `CHROME_BIN` and `CHROMEDRIVER`). Without them these tests are skipped, except in CI (`CI`
//! set), where they fail.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::ssl::{SslAcceptor, SslMethod};
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509, X509NameBuilder};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{FakeJira, Site, context_token, hs256, page_claims};

/// The host Atlassian serves all.js from; mapped to [`FakeCdn`] inside the test browser only.
pub const CDN_HOST: &str = "connect-cdn.atl-paas.net";

/// WebDriver's key for element references.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long `wait_*` helpers wait before failing.
pub const WAIT: Duration = Duration::from_secs(15);

/// The test stand-in for Atlassian's `all.js`: the parts of `AP` our pages use, implemented like the
/// real script, by asking the host page (Jira) over `postMessage`.
pub const AP_STUB: &str = r#"// Test stand-in for https://connect-cdn.atl-paas.net/all.js (served only to the test browser).
(function () {
  if (window.parent === window) return;
  var seq = 0, pending = {};
  window.addEventListener("message", function (e) {
    if (e.source !== window.parent) return;
    var d = e.data;
    if (!d || d.apStubReply !== 1 || !pending[d.id]) return;
    var p = pending[d.id];
    delete pending[d.id];
    if (d.error) p.reject(new Error(d.error)); else p.resolve(d.result);
  });
  function call(method, args) {
    return new Promise(function (resolve, reject) {
      var id = ++seq;
      pending[id] = { resolve: resolve, reject: reject };
      window.parent.postMessage({ apStub: 1, id: id, method: method, args: args || [] }, "*");
    });
  }
  function contentHeight() {
    var c = document.querySelector(".ac-content") || document.body;
    return Math.ceil(c.getBoundingClientRect().bottom + window.scrollY);
  }
  window.AP = {
    context: {
      getToken: function (cb) { var p = call("getToken"); if (typeof cb === "function") { p.then(cb); return undefined; } return p; },
      getContext: function (cb) { var p = call("getContext"); if (typeof cb === "function") { p.then(cb); return undefined; } return p; }
    },
    resize: function (w, h) { call("resize", [w || "100%", h || contentHeight()]); },
    sizeToParent: function () { call("resize", ["100%", null]); },
    navigator: { go: function (target, context) { call("navigate", [target, context || {}]); } },
    flag: { create: function (o) { call("flag", [o]); return { close: function () {} }; } },
    events: { on: function () {}, once: function () {}, off: function () {}, emit: function () {} }
  };
})();
"#;

// -------------------------------------------------------------------------------------------------
// One browser at a time

static BROWSER_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// Browser tests run one at a time (each starts a Chromium; the CI machine has two cores). Hold the
/// permit for the whole test. (A semaphore, not a mutex: tests run on separate runtimes and the
/// permit is held across awaits; a failed test releases it when it unwinds.)
pub async fn browser_slot() -> tokio::sync::SemaphorePermit<'static> {
    BROWSER_SLOTS.acquire().await.expect("the semaphore is never closed")
}

/// Where screenshots go: `target/test-screenshots/` (or under `CARGO_TARGET_DIR`).
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("test-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// -------------------------------------------------------------------------------------------------
// The fake CDN (TLS, for all.js)

pub struct FakeCdn {
    pub port: u16,
    /// base64(SHA-256(SubjectPublicKeyInfo)) of its certificate, for `--ignore-certificate-errors-spki-list`.
    pub spki_sha256: String,
}

/// One per test process; it lives as long as the process.
pub static FAKE_CDN: LazyLock<FakeCdn> = LazyLock::new(start_fake_cdn);

fn start_fake_cdn() -> FakeCdn {
    let rsa = Rsa::generate(2048).unwrap();
    let key = PKey::from_rsa(rsa).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", CDN_HOST).unwrap();
    let name = name.build();
    let mut cert = X509::builder().unwrap();
    cert.set_version(2).unwrap();
    cert.set_subject_name(&name).unwrap();
    cert.set_issuer_name(&name).unwrap();
    cert.set_pubkey(&key).unwrap();
    cert.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
    cert.set_not_after(&Asn1Time::days_from_now(2).unwrap()).unwrap();
    let san = SubjectAlternativeName::new().dns(CDN_HOST).build(&cert.x509v3_context(None, None)).unwrap();
    cert.append_extension(san).unwrap();
    cert.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = cert.build();
    let spki_sha256 =
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(key.public_key_to_der().unwrap()));

    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
    acceptor.set_private_key(&key).unwrap();
    acceptor.set_certificate(&cert).unwrap();
    let acceptor = Arc::new(acceptor.build());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let acceptor = acceptor.clone();
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                if let Ok(mut tls) = acceptor.accept(stream) {
                    let head = read_head(&mut tls);
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                    let (status, body) = if path.split('?').next() == Some("/all.js") {
                        ("200 OK", AP_STUB)
                    } else {
                        ("404 Not Found", "")
                    };
                    let response = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: text/javascript; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(response.as_bytes());
                    let _ = tls.shutdown();
                }
            });
        }
    });
    FakeCdn { port, spki_sha256 }
}

/// Reads an HTTP request head (up to the blank line).
fn read_head(stream: &mut impl Read) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

// -------------------------------------------------------------------------------------------------
// The Jira stand-in that frames the pages

struct HostState {
    site: Site,
    site_name: String,
    account: String,
    app_base: String,
    app_key: String,
    /// Module key → module URL, from the app's descriptor.
    modules: Vec<(String, String)>,
    jira: String,
    tokens: AtomicUsize,
    http: reqwest::Client,
}

/// The Jira site our pages are framed by (see the module docs).
#[derive(Clone)]
pub struct JiraHost {
    pub site: Site,
    state: Arc<HostState>,
}

impl JiraHost {
    /// Starts a host for a new site named `name`, with pages opened as `account`. The site still has
    /// to be installed (`app.installed(&host.site)`); [`FakeJira`] trusts its secret.
    pub async fn start(jira: &FakeJira, app_base: &str, app_key: &str, name: &str, account: &str) -> JiraHost {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let origin = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let site = Site {
            client_key: format!("{name}-{}", uuid::Uuid::new_v4()),
            shared_secret: format!("secret-{}", uuid::Uuid::new_v4()),
            base_url: format!("{origin}/{name}"),
        };
        jira.trust(&site);
        let http = reqwest::Client::new();
        let descriptor: Value =
            http.get(format!("{app_base}/atlassian-connect.json")).send().await.unwrap().json().await.unwrap();
        let state = Arc::new(HostState {
            site: site.clone(),
            site_name: name.to_string(),
            account: account.to_string(),
            app_base: app_base.trim_end_matches('/').to_string(),
            app_key: app_key.to_string(),
            modules: page_modules(&descriptor),
            jira: jira.base_url(),
            tokens: AtomicUsize::new(0),
            http,
        });
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/favicon.ico", web::get().to(|| async { HttpResponse::NoContent().finish() }))
                .route("/{site}/plugins/servlet/ac/{app}/{module}", web::get().to(host_page))
                .route("/{site}/test/context-token", web::get().to(mint_context_token))
                .route("/{site}/test/page-url", web::get().to(page_url))
                .route("/{site}/rest/api/3/permissions/check", web::post().to(permissions_check))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        JiraHost { site, state }
    }

    /// The Jira URL of one of our page modules (e.g. `identity-providers`).
    pub fn module_url(&self, module_key: &str) -> String {
        format!("{}/plugins/servlet/ac/{}/{module_key}", self.site.base_url, self.state.app_key)
    }

    /// Context tokens handed to the page so far (one per `AP.context.getToken()`).
    pub fn tokens_issued(&self) -> usize {
        self.state.tokens.load(Ordering::SeqCst)
    }
}

/// Every module with a page (`postInstallPage`, `configurePage`, `adminPages`, `generalPages`).
fn page_modules(descriptor: &Value) -> Vec<(String, String)> {
    let modules = &descriptor["modules"];
    let mut found = Vec::new();
    for kind in ["postInstallPage", "configurePage", "adminPages", "generalPages"] {
        let entries = match &modules[kind] {
            Value::Array(a) => a.clone(),
            Value::Object(_) => vec![modules[kind].clone()],
            _ => vec![],
        };
        for m in entries {
            if let (Some(k), Some(u)) = (m["key"].as_str(), m["url"].as_str()) {
                found.push((k.to_string(), u.to_string()));
            }
        }
    }
    found
}

/// The iframe URL Jira builds for a module: the module URL with the standard context parameters,
/// signed for exactly that URL.
fn signed_page_url(state: &HostState, module_key: &str) -> Option<String> {
    let (_, url) = state.modules.iter().find(|(k, _)| k == module_key)?;
    let query = format!(
        "xdm_e={}&xdm_c=channel-{module_key}&cp=&lic=none&cv=1001.0.0-test",
        percent_encoding::utf8_percent_encode(&state.site.base_url, percent_encoding::NON_ALPHANUMERIC)
    );
    let path_and_query = if url.contains('?') { format!("{url}&{query}") } else { format!("{url}?{query}") };
    let token =
        hs256(&page_claims(&state.site, "GET", &path_and_query, Some(&state.account)), &state.site.shared_secret);
    Some(format!("{}{path_and_query}&jwt={token}", state.app_base))
}

const HOST_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Jira (test host)</title>
<style>
  body { margin: 0; font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Noto Sans", Ubuntu, sans-serif; color: #172b4d; background: #fff; }
  .topbar { height: 48px; display: flex; align-items: center; gap: 12px; padding: 0 16px; border-bottom: 1px solid #091e4224; font-size: 14px; }
  .topbar strong { color: #0c66e4; }
  .crumbs { padding: 16px 24px 0; font-size: 14px; color: #44546f; }
  iframe { display: block; width: 100%; height: 600px; border: 0; }
</style>
</head>
<body>
<div class="topbar"><strong>Jira</strong><span>Settings · Apps</span><span>__SITE__</span></div>
<div class="crumbs">Apps / __MODULE__</div>
<iframe id="app-frame" title="SAML SSO for customers" src="__SRC__"
  sandbox="allow-downloads allow-forms allow-modals allow-popups allow-popups-to-escape-sandbox allow-same-origin allow-scripts allow-top-navigation-by-user-activation allow-storage-access-by-user-activation"></iframe>
<script>
  // What Jira's host side of AP does, for the parts the stand-in all.js asks for.
  window.__host = { tokens: 0, resizes: 0, navigations: [], flags: [] };
  var frame = document.getElementById("app-frame");
  window.addEventListener("message", function (e) {
    if (e.source !== frame.contentWindow) return;
    var m = e.data;
    if (!m || m.apStub !== 1) return;
    var reply = function (result, error) {
      e.source.postMessage({ apStubReply: 1, id: m.id, result: result, error: error || null }, e.origin);
    };
    if (m.method === "getToken") {
      window.__host.tokens++;
      fetch("/__SITE__/test/context-token").then(function (r) { return r.text(); }).then(function (t) { reply(t); });
    } else if (m.method === "getContext") {
      reply({ jira: {} });
    } else if (m.method === "resize") {
      window.__host.resizes++;
      if (m.args[1]) frame.style.height = Math.max(200, Number(m.args[1])) + "px";
      reply(null);
    } else if (m.method === "navigate") {
      window.__host.navigations.push(m.args);
      var key = (m.args[1] || {}).moduleKey;
      fetch("/__SITE__/test/page-url?module=" + encodeURIComponent(key)).then(function (r) {
        if (!r.ok) { reply(null, "the app has no module " + key); return; }
        return r.text().then(function (u) { frame.src = u; reply(null); });
      });
    } else if (m.method === "flag") {
      window.__host.flags.push(m.args[0]);
      reply(null);
    } else {
      reply(null, "unknown AP method " + m.method);
    }
  });
</script>
</body>
</html>
"#;

async fn host_page(state: web::Data<Arc<HostState>>, path: web::Path<(String, String, String)>) -> HttpResponse {
    let (site, app, module) = path.into_inner();
    if site != state.site_name || app != state.app_key {
        return HttpResponse::NotFound().body("no such app on this site");
    }
    let Some(src) = signed_page_url(&state, &module) else {
        return HttpResponse::NotFound().body(format!("the app's descriptor has no page module {module:?}"));
    };
    let attr = src.replace('&', "&amp;").replace('"', "&quot;");
    let page = HOST_PAGE.replace("__SRC__", &attr).replace("__SITE__", &site).replace("__MODULE__", &module);
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(page)
}

async fn mint_context_token(state: web::Data<Arc<HostState>>) -> HttpResponse {
    state.tokens.fetch_add(1, Ordering::SeqCst);
    HttpResponse::Ok().content_type("text/plain").body(context_token(&state.site, &state.account))
}

async fn page_url(state: web::Data<Arc<HostState>>, req: HttpRequest) -> HttpResponse {
    let module = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "module")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    match signed_page_url(&state, &module) {
        Some(u) => HttpResponse::Ok().content_type("text/plain").body(u),
        None => HttpResponse::NotFound().body("no such module"),
    }
}

/// The app's admin check, passed on to the fake Jira (which verifies the app's JWT and answers).
async fn permissions_check(state: web::Data<Arc<HostState>>, req: HttpRequest, body: String) -> HttpResponse {
    let mut forward =
        state.http.post(format!("{}{}", state.jira, req.path())).header("Content-Type", "application/json").body(body);
    if let Some(auth) = req.headers().get("Authorization").and_then(|v| v.to_str().ok()) {
        forward = forward.header("Authorization", auth);
    }
    match forward.send().await {
        Ok(r) => {
            let status = actix_web::http::StatusCode::from_u16(r.status().as_u16()).unwrap();
            HttpResponse::build(status).content_type("application/json").body(r.text().await.unwrap_or_default())
        }
        Err(e) => HttpResponse::BadGateway().body(e.to_string()),
    }
}

// -------------------------------------------------------------------------------------------------
// WebDriver

#[derive(Debug)]
pub struct WebDriverError {
    pub error: String,
    pub message: String,
}

impl std::fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.message)
    }
}

/// A Chromium session behind its own chromedriver. Dropping it ends the session and chromedriver.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

/// An element of the current browsing context.
#[derive(Debug, Clone)]
pub struct Element(pub String);

fn find_program(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium (with the CDN mapped to [`FAKE_CDN`]). `None`
    /// when Chromium is not installed (outside CI).
    pub async fn start() -> Option<Browser> {
        let chromedriver = find_program("CHROMEDRIVER", &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]);
        let chrome =
            find_program("CHROME_BIN", &["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]);
        let (Some(chromedriver), Some(chrome)) = (chromedriver, chrome) else {
            if std::env::var_os("CI").is_some() {
                panic!("CI must install chromium and chromium-driver for the admin UI tests");
            }
            eprintln!("skipped: chromium / chromedriver not installed (apt-get install chromium chromium-driver)");
            return None;
        };
        let cdn = &*FAKE_CDN;
        let profile = tempfile::tempdir().unwrap();
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let mut browser = Browser { driver, port, session: String::new(), http, _profile: profile };
        let started = Instant::now();
        loop {
            let ready = browser.http.get(format!("http://127.0.0.1:{port}/status")).send().await;
            if let Ok(r) = ready
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-extensions".into(),
            "--disable-features=Translate,MediaRouter,OptimizationHints".into(),
            "--window-size=1280,1000".into(),
            format!("--user-data-dir={}", browser._profile.path().display()),
            format!("--host-resolver-rules=MAP {CDN_HOST} 127.0.0.1:{}", cdn.port),
            format!("--ignore-certificate-errors-spki-list={}", cdn.spki_sha256),
        ];
        let caps = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chrome.display().to_string(),
                    "args": args,
                    "prefs": {
                        "download.default_directory": browser._profile.path().join("downloads").display().to_string(),
                        "download.prompt_for_download": false
                    }
                },
                "goog:loggingPrefs": { "browser": "ALL" },
                "unhandledPromptBehavior": "ignore",
                "timeouts": { "script": 20000, "pageLoad": 30000, "implicit": 0 }
            }}
        });
        let r = browser.raw("POST", "/session", Some(caps)).await.unwrap_or_else(|e| panic!("new session: {e}"));
        browser.session = r["sessionId"].as_str().expect("session id").to_string();
        Some(browser)
    }

    /// The folder Chromium saves downloads to.
    pub fn downloads(&self) -> PathBuf {
        self._profile.path().join("downloads")
    }

    async fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, WebDriverError> {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let r = req.send().await.map_err(|e| WebDriverError { error: "transport".into(), message: e.to_string() })?;
        let v: Value = r.json().await.map_err(|e| WebDriverError { error: "decode".into(), message: e.to_string() })?;
        let value = v["value"].clone();
        if let Some(error) = value.get("error").and_then(Value::as_str) {
            return Err(WebDriverError {
                error: error.to_string(),
                message: value["message"].as_str().unwrap_or_default().lines().next().unwrap_or_default().to_string(),
            });
        }
        Ok(value)
    }

    /// A command of this session; panics on a WebDriver error.
    pub async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_cmd(method, path, body).await.unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
    }

    pub async fn try_cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, WebDriverError> {
        self.raw(method, &format!("/session/{}{path}", self.session), body).await
    }

    pub async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url }))).await;
    }

    /// Runs a script in the current browsing context (`arguments[i]` = `args[i]`; elements as
    /// references) and returns its value.
    pub async fn exec(&self, script: &str, args: Vec<Value>) -> Value {
        self.cmd("POST", "/execute/sync", Some(json!({ "script": script, "args": args }))).await
    }

    pub fn arg(el: &Element) -> Value {
        json!({ ELEMENT_KEY: el.0 })
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let v = self.cmd("POST", "/elements", Some(json!({ "using": "css selector", "value": css }))).await;
        v.as_array()
            .unwrap_or_else(|| panic!("{css}: {v}"))
            .iter()
            .map(|e| Element(e[ELEMENT_KEY].as_str().unwrap_or_else(|| panic!("{css}: {v}")).to_string()))
            .collect()
    }

    pub async fn find(&self, css: &str) -> Option<Element> {
        self.find_all(css).await.into_iter().next()
    }

    pub async fn is_displayed(&self, el: &Element) -> bool {
        self.try_cmd("GET", &format!("/element/{}/displayed", el.0), None).await.map(|v| v == true).unwrap_or(false)
    }

    /// Waits for a displayed element matching `css`.
    pub async fn wait_for(&self, css: &str) -> Element {
        let started = Instant::now();
        loop {
            for el in self.find_all(css).await {
                if self.is_displayed(&el).await {
                    return el;
                }
            }
            if started.elapsed() > WAIT {
                self.debug_dump(&format!("timeout waiting for {css}")).await;
                panic!("no visible element matches {css} after {WAIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `css` matches no displayed element.
    pub async fn wait_gone(&self, css: &str) {
        let started = Instant::now();
        loop {
            let mut visible = false;
            for el in self.find_all(css).await {
                visible |= self.is_displayed(&el).await;
            }
            if !visible {
                return;
            }
            if started.elapsed() > WAIT {
                self.debug_dump(&format!("timeout waiting for {css} to go")).await;
                panic!("{css} is still visible after {WAIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the script (a function body returning a value) returns something truthy; returns it.
    pub async fn wait_until(&self, what: &str, script: &str) -> Value {
        let started = Instant::now();
        loop {
            let v = self.exec(script, vec![]).await;
            let truthy = !matches!(&v, Value::Null | Value::Bool(false)) && v != json!("") && v != json!(0);
            if truthy {
                return v;
            }
            if started.elapsed() > WAIT {
                self.debug_dump(&format!("timeout waiting until {what}")).await;
                panic!("timed out waiting until {what}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the visible text of the first element matching `css` contains `needle`.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let started = Instant::now();
        loop {
            if let Some(el) = self.find(css).await {
                let text = self.text(&el).await;
                if text.contains(needle) {
                    return text;
                }
            }
            if started.elapsed() > WAIT {
                let now = match self.find(css).await {
                    Some(el) => self.text(&el).await,
                    None => "(no such element)".into(),
                };
                self.debug_dump(&format!("timeout waiting for {needle:?} in {css}")).await;
                panic!("{css} never contained {needle:?}; it shows: {now}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn click(&self, el: &Element) {
        self.cmd("POST", &format!("/element/{}/click", el.0), None).await;
    }

    /// Clicks the first displayed element matching `css` (waiting for it).
    pub async fn click_on(&self, css: &str) {
        let el = self.wait_for(css).await;
        self.click(&el).await;
    }

    pub async fn clear(&self, el: &Element) {
        self.cmd("POST", &format!("/element/{}/clear", el.0), None).await;
    }

    /// Types into an element (for `<input type=file>`: the absolute path of the file to choose).
    pub async fn send_keys(&self, el: &Element, text: &str) {
        self.cmd("POST", &format!("/element/{}/value", el.0), Some(json!({ "text": text }))).await;
    }

    /// Replaces the value of the field matching `css` by typing `text`.
    pub async fn fill(&self, css: &str, text: &str) {
        let el = self.wait_for(css).await;
        self.clear(&el).await;
        self.send_keys(&el, text).await;
    }

    pub async fn text(&self, el: &Element) -> String {
        self.try_cmd("GET", &format!("/element/{}/text", el.0), None)
            .await
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    }

    pub async fn text_of(&self, css: &str) -> String {
        let el = self.wait_for(css).await;
        self.text(&el).await
    }

    pub async fn property(&self, el: &Element, name: &str) -> Value {
        self.cmd("GET", &format!("/element/{}/property/{name}", el.0), None).await
    }

    pub async fn attribute(&self, el: &Element, name: &str) -> Option<String> {
        self.cmd("GET", &format!("/element/{}/attribute/{name}", el.0), None).await.as_str().map(str::to_string)
    }

    /// Focus moves into this iframe element.
    pub async fn enter_frame(&self, frame: &Element) {
        self.cmd("POST", "/frame", Some(json!({ "id": Self::arg(frame) }))).await;
    }

    /// Focus returns to the top-level page.
    pub async fn leave_frames(&self) {
        self.cmd("POST", "/frame", Some(json!({ "id": null }))).await;
    }

    /// The text of an open `alert`/`confirm`/`prompt`, if any.
    pub async fn open_dialog(&self) -> Option<String> {
        self.try_cmd("GET", "/alert/text", None).await.ok().map(|v| v.as_str().unwrap_or_default().to_string())
    }

    /// The browser console since the last call (level + message).
    pub async fn console(&self) -> Vec<(String, String)> {
        let v = self.cmd("POST", "/se/log", Some(json!({ "type": "browser" }))).await;
        v.as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|e| {
                (
                    e["level"].as_str().unwrap_or_default().to_string(),
                    e["message"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// Makes the window tall enough for the whole top-level page, then saves a PNG of it.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        self.leave_frames().await;
        // The window grows until the whole page fits (its chrome takes some of the outer height).
        for _ in 0..4 {
            let sizes = self
                .exec("return [document.documentElement.scrollHeight, window.innerHeight, window.outerHeight];", vec![])
                .await;
            let (page, inner, outer) =
                (sizes[0].as_i64().unwrap(), sizes[1].as_i64().unwrap(), sizes[2].as_i64().unwrap());
            if inner >= page && inner - page < 60 {
                break;
            }
            let height = (page + (outer - inner).max(0) + 16).clamp(600, 8000);
            self.cmd("POST", "/window/rect", Some(json!({ "width": 1280, "height": height }))).await;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        self.exec("window.scrollTo(0, 0);", vec![]).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let png = self.cmd("GET", "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG screenshot");
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// On a timeout: what the page shows, to the test output.
    async fn debug_dump(&self, why: &str) {
        let text = self
            .try_cmd(
                "POST",
                "/execute/sync",
                Some(json!({ "script": "return document.body ? document.body.innerText : '';", "args": [] })),
            )
            .await
            .map(|v| v.as_str().unwrap_or_default().chars().take(4000).collect::<String>())
            .unwrap_or_default();
        let console = self.try_cmd("POST", "/se/log", Some(json!({ "type": "browser" }))).await.ok();
        eprintln!("--- {why}; page text:\n{text}\n--- console: {console:?}");
    }

    /// Ends the session and chromedriver.
    pub async fn close(mut self) {
        let _ = self.try_cmd("DELETE", "", None).await;
        self.session.clear();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Synchronous on purpose (no runtime in Drop): a bare DELETE for the session, so Chromium
        // exits, then chromedriver is stopped.
        if !self.session.is_empty()
            && let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port))
        {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                s,
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session, self.port
            );
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
