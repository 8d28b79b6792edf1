//! A real SAML 2.0 IdP on loopback for end-to-end logins: `tests/idp/idp.py` (pysaml2, signing through the
//! xmlsec1 CLI), one process per `RealIdp`, killed on drop. See `tests/idp/README.md`.
//!
//! Needs Debian's `python3-pysaml2` and `xmlsec1`. The script runs under `/usr/bin/python3` (Debian's
//! interpreter is the one that sees python3-pysaml2); `JSM_SSO_TEST_PYTHON` overrides that.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long the IdP may take to print `READY` (it usually takes about 1 s; CI runs many tests at once).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// One RSA key for every IdP of this test process, so that each start skips key generation. Tests that
/// need an IdP with a different key set `RealIdpOptions::fresh_key`.
static SHARED_KEY_PEM: LazyLock<Vec<u8>> =
    LazyLock::new(|| openssl::rsa::Rsa::generate(2048).unwrap().private_key_to_pem().unwrap());

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignAlg {
    /// RSA-SHA256 with SHA-256 digests (the default; recent WSO2 IS).
    RsaSha256,
    /// RSA-SHA1 with SHA-1 digests (WSO2 IS 5.x default).
    RsaSha1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameIdFormat {
    /// `urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified` (the default).
    Unspecified,
    /// `urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress`, still with the username as value (WSO2).
    EmailAddress,
}

#[derive(Debug, Clone)]
pub struct RealIdpOptions {
    pub sign_alg: SignAlg,
    pub sign_response: bool,
    pub sign_assertion: bool,
    pub name_id_format: NameIdFormat,
    /// Extra users, `name:password[:email[:givenname[:lastname]]]` (alice/alice-pw and bob/bob-pw exist).
    pub extra_users: Vec<String>,
    /// Generate a key for this IdP instead of using the process-wide shared one.
    pub fresh_key: bool,
}

impl Default for RealIdpOptions {
    fn default() -> Self {
        RealIdpOptions {
            sign_alg: SignAlg::RsaSha256,
            sign_response: true,
            sign_assertion: true,
            name_id_format: NameIdFormat::Unspecified,
            extra_users: vec![],
            fresh_key: false,
        }
    }
}

/// Back-channel binding for `RealIdp::idp_initiated_logout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackChannel {
    /// SAML SOAP binding: `text/xml` SOAP envelope with the signed LogoutRequest.
    Soap,
    /// What WSO2 IS sends: `application/x-www-form-urlencoded`, `SAMLRequest=base64(LogoutRequest)`.
    Wso2Form,
}

/// An HTML form: its absolute action URL and its `<input>` fields, in order.
#[derive(Debug, Clone)]
pub struct HtmlForm {
    pub action: String,
    pub fields: Vec<(String, String)>,
}

impl HtmlForm {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn set(&mut self, name: &str, value: &str) {
        match self.fields.iter_mut().find(|(n, _)| n == name) {
            Some(field) => field.1 = value.to_string(),
            None => self.fields.push((name.to_string(), value.to_string())),
        }
    }
}

pub struct RealIdp {
    pub port: u16,
    /// `http://127.0.0.1:{port}`
    pub base_url: String,
    /// `{base_url}/idp`
    pub entity_id: String,
    /// The IdP's metadata (entityID, SSO Redirect+POST at `/sso`, SLO Redirect at `/slo`, signing cert).
    pub metadata_xml: String,
    /// The IdP's signing certificate, PEM.
    pub cert_pem: String,
    http: reqwest::Client,
    workdir: tempfile::TempDir,
    child: Child,
    /// Held open: the IdP exits by itself when this closes (also when the test process dies).
    stdin: Option<ChildStdin>,
}

impl RealIdp {
    /// Starts an IdP that trusts the SP described by `sp_metadata_xml` (what the SP serves at
    /// `{base}/t/{tenant}/saml/metadata`). Panics if it is not ready within `STARTUP_TIMEOUT`.
    pub async fn start(sp_metadata_xml: &str, options: RealIdpOptions) -> RealIdp {
        let workdir = tempfile::Builder::new().prefix("jsm-sso-idp-").tempdir().unwrap();
        let dir = workdir.path().to_path_buf();
        let sp_metadata = dir.join("sp-metadata.xml");
        std::fs::write(&sp_metadata, sp_metadata_xml).unwrap();
        let log_path = dir.join("idp.log");
        let log_file = std::fs::File::create(&log_path).unwrap();

        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/idp/idp.py");
        let mut cmd = Command::new(python());
        cmd.arg(&script)
            .args(["--port", "0", "--exit-on-stdin-eof"])
            .arg("--sp-metadata")
            .arg(&sp_metadata)
            .arg("--workdir")
            .arg(&dir)
            .args([
                "--sign-alg",
                match options.sign_alg {
                    SignAlg::RsaSha256 => "rsa-sha256",
                    SignAlg::RsaSha1 => "rsa-sha1",
                },
            ])
            .args(["--sign-response", yes_no(options.sign_response)])
            .args(["--sign-assertion", yes_no(options.sign_assertion)])
            .args([
                "--name-id-format",
                match options.name_id_format {
                    NameIdFormat::Unspecified => "unspecified",
                    NameIdFormat::EmailAddress => "emailAddress",
                },
            ]);
        for user in &options.extra_users {
            cmd.arg("--user").arg(user);
        }
        if !options.fresh_key {
            let key_path = dir.join("shared-idp.key");
            std::fs::write(&key_path, &*SHARED_KEY_PEM).unwrap();
            cmd.arg("--key-file").arg(&key_path);
        }
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::from(log_file));

        let started = Instant::now();
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {}: {e}", python().display()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let ready = tokio::time::timeout(
            STARTUP_TIMEOUT,
            tokio::task::spawn_blocking(move || {
                let mut line = String::new();
                BufReader::new(stdout).read_line(&mut line).map(|_| line)
            }),
        )
        .await;
        let line = match ready {
            Ok(Ok(Ok(line))) => line,
            Ok(Ok(Err(e))) => startup_failed(&mut child, &log_path, &format!("reading its stdout: {e}")),
            Ok(Err(e)) => startup_failed(&mut child, &log_path, &format!("reader task: {e}")),
            Err(_) => startup_failed(&mut child, &log_path, &format!("no READY line after {STARTUP_TIMEOUT:?}")),
        };
        let port: u16 = match line.trim().strip_prefix("READY ").and_then(|p| p.parse().ok()) {
            Some(port) => port,
            None => startup_failed(&mut child, &log_path, &format!("expected `READY <port>`, got {line:?}")),
        };
        tracing::debug!("test IdP on port {port} ready in {:?}", started.elapsed());

        let metadata_xml = std::fs::read_to_string(dir.join("idp-metadata.xml")).unwrap();
        let cert_pem = std::fs::read_to_string(dir.join("idp.crt")).unwrap();
        let base_url = format!("http://127.0.0.1:{port}");
        RealIdp {
            port,
            entity_id: format!("{base_url}/idp"),
            base_url,
            metadata_xml,
            cert_pem,
            http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
            workdir,
            child,
            stdin,
        }
    }

    pub fn workdir(&self) -> &Path {
        self.workdir.path()
    }

    /// The IdP's stderr so far (requests, events, pysaml2 errors).
    pub fn stderr_log(&self) -> String {
        std::fs::read_to_string(self.workdir.path().join("idp.log")).unwrap_or_default()
    }

    /// Everything that happened, oldest first: objects with `seq`, `time`, `event` and per-event fields.
    /// Events: `authn_request`, `authn_request_rejected`, `login`, `login_failed`, `login_rejected`,
    /// `logout`, `logout_request_rejected`, `logout_response_received`, `idp_initiated_logout`, `error`.
    pub async fn log(&self) -> Value {
        let resp = self.http.get(format!("{}/log", self.base_url)).send().await.unwrap();
        assert!(resp.status().is_success(), "GET /log: {}", resp.status());
        resp.json().await.unwrap()
    }

    /// The logged events named `event`.
    pub async fn events(&self, event: &str) -> Vec<Value> {
        let log = self.log().await;
        log.as_array().unwrap().iter().filter(|e| e["event"] == event).cloned().collect()
    }

    /// `(name_id, session_index)` of the latest login of `username`.
    pub async fn last_session(&self, username: &str) -> Option<(String, String)> {
        self.events("login").await.iter().rev().find(|e| e["username"] == username).map(|e| {
            (e["name_id"].as_str().unwrap().to_string(), e["session_index"].as_str().unwrap_or_default().to_string())
        })
    }

    /// GETs `idp_redirect_url` (the Location the SP answered with: `{base_url}/sso?SAMLRequest=...`) and
    /// returns the login form, or the IdP's status and page when it refused the AuthnRequest (400).
    pub async fn login_form(&self, idp_redirect_url: &str) -> Result<HtmlForm, (u16, String)> {
        self.assert_mine(idp_redirect_url);
        let resp = self.http.get(idp_redirect_url).send().await.unwrap();
        let status = resp.status().as_u16();
        let page = resp.text().await.unwrap();
        if status != 200 {
            return Err((status, page));
        }
        Ok(parse_form(&page, idp_redirect_url).unwrap_or_else(|| panic!("no form in the IdP's page:\n{page}")))
    }

    /// Submits the login form. `Ok` is the auto-submit form aimed at the SP's ACS (fields `SAMLResponse`
    /// and, when the request had one, `RelayState`); `Err` is the status and page (401 for a wrong password).
    pub async fn submit_login(
        &self,
        mut form: HtmlForm,
        username: &str,
        password: &str,
    ) -> Result<HtmlForm, (u16, String)> {
        form.set("username", username);
        form.set("password", password);
        let resp = self.http.post(&form.action).form(&form.fields).send().await.unwrap();
        let status = resp.status().as_u16();
        let page = resp.text().await.unwrap();
        if status != 200 {
            return Err((status, page));
        }
        Ok(parse_form(&page, &form.action).unwrap_or_else(|| panic!("no auto-submit form in the IdP's page:\n{page}")))
    }

    /// The whole login at the IdP: GET the redirect URL, fill the form, submit it, and return what the browser
    /// would POST to the SP: `(acs_url, saml_response, relay_state)`. Panics if the IdP refuses anything.
    pub async fn sso_login_form_submit(
        &self,
        idp_redirect_url: &str,
        username: &str,
        password: &str,
    ) -> (String, String, Option<String>) {
        let form = match self.login_form(idp_redirect_url).await {
            Ok(form) => form,
            Err((status, page)) => {
                panic!("the IdP refused the AuthnRequest ({status}):\n{page}\nIdP log:\n{}", self.stderr_log())
            }
        };
        let post = match self.submit_login(form, username, password).await {
            Ok(post) => post,
            Err((status, page)) => panic!("the IdP refused the login of {username} ({status}):\n{page}"),
        };
        let saml_response = post.field("SAMLResponse").expect("no SAMLResponse in the IdP's form").to_string();
        let relay_state = post.field("RelayState").map(str::to_string);
        (post.action, saml_response, relay_state)
    }

    /// Follows an SP-initiated logout: GETs `idp_slo_url` (`{base_url}/slo?SAMLRequest=...`, the Location the
    /// SP answered with) and returns the IdP's redirect back to the SP (`...?SAMLResponse=...&RelayState=...
    /// &SigAlg=...&Signature=...`), or the status and page when the IdP refused the LogoutRequest.
    pub async fn sp_initiated_logout(&self, idp_slo_url: &str) -> Result<String, (u16, String)> {
        self.assert_mine(idp_slo_url);
        let resp = self.http.get(idp_slo_url).send().await.unwrap();
        let status = resp.status().as_u16();
        if status == 302 {
            let location = resp.headers()["location"].to_str().unwrap().to_string();
            return Ok(location);
        }
        Err((status, resp.text().await.unwrap()))
    }

    /// Makes the IdP send a signed back-channel LogoutRequest (NameID `name_id`, SessionIndex `session_index`)
    /// to the SP's SLO URL (its HTTP-POST one, else its HTTP-Redirect one). Returns the IdP's report:
    /// `status` and `body` of the SP's answer (status 0: no connection), `request_id`, `request_xml`, ...
    pub async fn idp_initiated_logout(
        &self,
        name_id: &str,
        session_index: Option<&str>,
        binding: BackChannel,
    ) -> Value {
        self.idp_initiated_logout_with(name_id, session_index, binding, true).await
    }

    /// Like `idp_initiated_logout`, optionally with an unsigned LogoutRequest (`signed = false`).
    pub async fn idp_initiated_logout_with(
        &self,
        name_id: &str,
        session_index: Option<&str>,
        binding: BackChannel,
        signed: bool,
    ) -> Value {
        let mut query = vec![
            ("name_id", name_id),
            (
                "binding",
                match binding {
                    BackChannel::Soap => "soap",
                    BackChannel::Wso2Form => "wso2-form",
                },
            ),
            ("sign", yes_no(signed)),
        ];
        if let Some(si) = session_index {
            query.push(("session_index", si));
        }
        let resp =
            self.http.post(format!("{}/idp-initiated-logout", self.base_url)).query(&query).send().await.unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap();
        assert!(status.is_success(), "POST /idp-initiated-logout: {status}\n{body}");
        serde_json::from_str(&body).unwrap()
    }

    fn assert_mine(&self, url: &str) {
        assert!(
            url.starts_with(&format!("{}/", self.base_url)),
            "expected a URL on the test IdP ({}), got {url}",
            self.base_url
        );
    }
}

impl Drop for RealIdp {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- test IdP log ({}) ----\n{}", self.base_url, self.stderr_log());
        }
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("JSM_SSO_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let debian = Path::new("/usr/bin/python3");
    if debian.exists() { debian.to_path_buf() } else { PathBuf::from("python3") }
}

fn startup_failed(child: &mut Child, log_path: &Path, what: &str) -> ! {
    let _ = child.kill();
    let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
    let log = std::fs::read_to_string(log_path).unwrap_or_default();
    panic!(
        "the test IdP (tests/idp/idp.py) did not start: {what} (process: {status}).\n\
         It needs Debian's python3-pysaml2 and xmlsec1 (apt-get install python3-pysaml2 xmlsec1).\n\
         Its stderr:\n{log}"
    )
}

/// Parses the first `<form ... action="...">` of a page the test IdP wrote, with its `<input>` fields. The
/// IdP always double-quotes attributes and HTML-escapes values, so plain string search is enough.
pub fn parse_form(html: &str, page_url: &str) -> Option<HtmlForm> {
    let start = html.find("<form")?;
    let tag_end = start + html[start..].find('>')?;
    let action = attr(&html[start..tag_end], "action")?;
    let end = tag_end + html[tag_end..].find("</form>")?;
    let mut fields = vec![];
    let mut rest = &html[tag_end..end];
    while let Some(i) = rest.find("<input") {
        let tag_len = rest[i..].find('>')?;
        let tag = &rest[i..i + tag_len];
        if let Some(name) = attr(tag, "name") {
            fields.push((name, attr(tag, "value").unwrap_or_default()));
        }
        rest = &rest[i + tag_len..];
    }
    let action = url::Url::parse(page_url).ok()?.join(&action).ok()?.to_string();
    Some(HtmlForm { action, fields })
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let pattern = format!(" {name}=\"");
    let start = tag.find(&pattern)? + pattern.len();
    let len = tag[start..].find('"')?;
    Some(html_unescape(&tag[start..start + len]))
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"").replace("&#x27;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}
