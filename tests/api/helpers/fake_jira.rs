//! A fake Jira Cloud on loopback: Atlassian's install key server (`/keys/{kid}`) and the REST endpoints
//! the app calls, each site under its own path (`/{site}/rest/...`), verifying the app's JWTs the way
//! Jira does and recording every call.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::TcpListener;
use std::sync::{Arc, LazyLock, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use openssl::rsa::Rsa;
use sha2::{Digest, Sha256};

/// Atlassian's install-signing key (the private half signs installs in the tests).
pub struct InstallKey {
    pub kid: &'static str,
    pub private_pem: Vec<u8>,
    pub public_pem: Vec<u8>,
}

fn rsa_key(kid: &'static str) -> InstallKey {
    let rsa = Rsa::generate(2048).unwrap();
    InstallKey { kid, private_pem: rsa.private_key_to_pem().unwrap(), public_pem: rsa.public_key_to_pem().unwrap() }
}

pub static INSTALL_KEY: LazyLock<InstallKey> = LazyLock::new(|| rsa_key("0fc9f4f6-9b1b-4a8e-9f1a-test-install-key"));
/// A key the key server does not publish (forged installs).
pub static ATTACKER_KEY: LazyLock<InstallKey> = LazyLock::new(|| rsa_key("attacker-kid"));

#[derive(Debug, Clone)]
pub struct Call {
    pub path: String,
    pub authorization: Option<String>,
    pub body: String,
}

#[derive(Clone)]
pub struct Scripted {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

#[derive(Default)]
struct State {
    key_server_down: bool,
    /// client key → shared secret, for verifying the app's JWTs.
    secrets: HashMap<String, String>,
    admins: HashSet<String>,
    calls: Vec<Call>,
    scripted: HashMap<String, VecDeque<Scripted>>,
}

#[derive(Clone)]
pub struct FakeJira {
    port: u16,
    state: Arc<Mutex<State>>,
}

/// A Jira site the app gets installed in: its own client key, secret and base URL on the fake Jira.
#[derive(Debug, Clone)]
pub struct Site {
    pub client_key: String,
    pub shared_secret: String,
    pub base_url: String,
}

impl FakeJira {
    pub async fn start() -> FakeJira {
        let state = Arc::new(Mutex::new(State::default()));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/keys/{kid}", web::get().to(key))
                .route("/{site}/rest/api/3/permissions/check", web::post().to(permissions_check))
                .default_service(web::to(scripted))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        FakeJira { port, state }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A new site on this fake Jira; remember its secret so the app's calls can be verified.
    pub fn site(&self, name: &str) -> Site {
        let site = Site {
            client_key: format!("{name}-{}", uuid::Uuid::new_v4()),
            shared_secret: format!("secret-{}", uuid::Uuid::new_v4()),
            base_url: format!("{}/{name}", self.base_url()),
        };
        self.trust(&site);
        site
    }

    /// Makes the fake accept app JWTs signed with this site's (current) secret.
    pub fn trust(&self, site: &Site) {
        self.state.lock().unwrap().secrets.insert(site.client_key.clone(), site.shared_secret.clone());
    }

    pub fn make_admin(&self, account_id: &str) {
        self.state.lock().unwrap().admins.insert(account_id.to_string());
    }

    pub fn set_key_server_down(&self, down: bool) {
        self.state.lock().unwrap().key_server_down = down;
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    pub fn calls_to(&self, path_suffix: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.path.ends_with(path_suffix)).collect()
    }

    /// Answers the next requests to `path` with these responses, in order (then 404).
    pub fn script(&self, path: &str, responses: Vec<Scripted>) {
        self.state.lock().unwrap().scripted.insert(path.to_string(), responses.into());
    }

    pub fn install_token(&self, app: &super::TestApp, site: &Site, path: &str, tweaks: super::InstallTweaks) -> String {
        super::tokens::install_token(app, site, path, tweaks)
    }
}

fn record(state: &Mutex<State>, req: &HttpRequest, body: &str) {
    state.lock().unwrap().calls.push(Call {
        path: req.path().to_string(),
        authorization: req.headers().get("Authorization").and_then(|v| v.to_str().ok()).map(str::to_string),
        body: body.to_string(),
    });
}

async fn key(state: web::Data<Arc<Mutex<State>>>, req: HttpRequest, kid: web::Path<String>) -> HttpResponse {
    record(&state, &req, "");
    if state.lock().unwrap().key_server_down {
        return HttpResponse::BadGateway().body("down");
    }
    if kid.as_str() == INSTALL_KEY.kid {
        HttpResponse::Ok().content_type("application/x-pem-file").body(INSTALL_KEY.public_pem.clone())
    } else {
        HttpResponse::NotFound().body("no such key")
    }
}

/// Verifies the app's JWT like Jira: HS256 with one of the known shared secrets, `iss` = the app key, and
/// the qsh of `POST /rest/api/3/permissions/check` (computed here independently of the app's code).
fn app_jwt_ok(state: &State, req: &HttpRequest, canonical: &str) -> bool {
    let Some(token) =
        req.headers().get("Authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("JWT "))
    else {
        return false;
    };
    let expected_qsh = hex::encode(Sha256::digest(canonical.as_bytes()));
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_aud = false;
    state.secrets.values().any(|secret| {
        jsonwebtoken::decode::<serde_json::Value>(token, &DecodingKey::from_secret(secret.as_bytes()), &validation)
            .is_ok_and(|d| d.claims["iss"] == "jsm-sso-test" && d.claims["qsh"] == expected_qsh.as_str())
    })
}

async fn permissions_check(state: web::Data<Arc<Mutex<State>>>, req: HttpRequest, body: String) -> HttpResponse {
    record(&state, &req, &body);
    let s = state.lock().unwrap();
    if !app_jwt_ok(&s, &req, "POST&/rest/api/3/permissions/check&") {
        return HttpResponse::Unauthorized().json(serde_json::json!({"errorMessages": ["bad JWT"]}));
    }
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let account = v["accountId"].as_str().unwrap_or_default();
    let global: Vec<&str> = if s.admins.contains(account) { vec!["ADMINISTER"] } else { vec![] };
    HttpResponse::Ok().json(serde_json::json!({ "globalPermissions": global, "projectPermissions": [] }))
}

async fn scripted(state: web::Data<Arc<Mutex<State>>>, req: HttpRequest, body: String) -> HttpResponse {
    record(&state, &req, &body);
    let next = state.lock().unwrap().scripted.get_mut(req.path()).and_then(|q| q.pop_front());
    match next {
        Some(s) => {
            let mut r = HttpResponse::build(actix_web::http::StatusCode::from_u16(s.status).unwrap());
            for (k, v) in s.headers {
                r.insert_header((k, v));
            }
            r.content_type("application/json").body(s.body)
        }
        None => HttpResponse::NotFound().json(serde_json::json!({"errorMessages": ["not found"]})),
    }
}
