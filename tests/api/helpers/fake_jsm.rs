//! A fake Jira Service Management site on loopback, stateful: service desks, request types and their
//! fields, users (customers and Atlassian accounts), desk customers, requests, participants and comments.
//! It answers with the response shapes of shared/docs/jsm-api.md, checks the service account's Basic
//! auth on every call (and the app's JWT on `permissions/check`), pages lists at a small page size so
//! paging is exercised, records every call, and can inject faults (429, 503, 401…).
//!
//! A site lives under `/{site}/…`; the first path segment is ignored (several tenants may share one
//! fake and see the same data).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value, json};

use super::Site;

pub const SERVICE_EMAIL: &str = "svc@example.com";
pub const SERVICE_TOKEN: &str = "ATATT3xFfGF0-service-token";
pub const SERVICE_ACCOUNT: &str = "557058:service-account";
pub const AGENT_EMAIL: &str = "agent@example.com";
pub const AGENT_TOKEN: &str = "ATATT3xFfGF0-agent-token";
pub const BOB: &str = "qm:0b0b0b0b-bob:5ad6d3581db05e2a66fa80b";
pub const CAROL: &str = "5b10ac8d82e05b22cc7d4ef5";

#[derive(Debug, Clone)]
pub struct JsmCall {
    pub method: String,
    /// Without the site segment: `/rest/...`.
    pub path: String,
    pub query: String,
    pub body: String,
    pub authorization: Option<String>,
}

impl JsmCall {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    pub fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }
}

#[derive(Debug, Clone)]
pub struct ServiceAccount {
    pub email: String,
    pub token: String,
    pub account_id: String,
    pub display_name: String,
    pub admin: bool,
}

#[derive(Debug, Clone)]
pub struct FakeDesk {
    pub id: String,
    pub project_id: String,
    pub key: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct FakeRequestType {
    pub id: String,
    pub desk_id: String,
    pub portal_id: String,
    pub name: String,
    pub description: String,
    pub group_ids: Vec<String>,
    pub fields: Vec<Value>,
}

#[derive(Debug, Clone)]
pub struct FakeUser {
    pub account_id: String,
    pub account_type: String,
    pub email: String,
    pub display_name: String,
    /// Profile privacy: an Atlassian account may hide its email from searches.
    pub email_visible: bool,
}

#[derive(Debug, Clone)]
pub struct FakeComment {
    pub id: String,
    pub body: String,
    pub public: bool,
    pub author: String,
}

#[derive(Debug, Clone)]
pub struct FakeRequest {
    pub issue_id: String,
    pub key: String,
    pub desk_id: String,
    pub request_type_id: String,
    pub reporter: String,
    pub participants: Vec<String>,
    pub values: Map<String, Value>,
    pub status: String,
    /// `new`, `indeterminate` or `done`.
    pub category: String,
    pub updated: i64,
    pub comments: Vec<FakeComment>,
}

#[derive(Debug, Clone)]
struct Fault {
    path_contains: String,
    method: Option<String>,
    status: u16,
    retry_after: Option<String>,
    remaining: usize,
}

pub struct JsmState {
    pub page_size: usize,
    pub accounts: Vec<ServiceAccount>,
    /// Jira users with ADMINISTER (answers to the app's `permissions/check`).
    pub app_admins: HashSet<String>,
    /// client key → shared secret (to verify the app's JWTs).
    pub secrets: HashMap<String, String>,
    pub desks: Vec<FakeDesk>,
    pub request_types: Vec<FakeRequestType>,
    /// (desk id, group id, name)
    pub groups: Vec<(String, String, String)>,
    pub users: Vec<FakeUser>,
    pub desk_customers: BTreeMap<String, Vec<String>>,
    pub requests: Vec<FakeRequest>,
    pub calls: Vec<JsmCall>,
    faults: Vec<Fault>,
    next_id: u64,
}

#[derive(Clone)]
pub struct FakeJsm {
    port: u16,
    pub state: Arc<Mutex<JsmState>>,
}

fn summary_field() -> Value {
    json!({"fieldId": "summary", "name": "Summary", "description": "A short title", "required": true,
        "defaultValues": [], "validValues": [], "presetValues": [], "visible": true,
        "jiraSchema": {"type": "string", "system": "summary"}})
}

fn description_field(required: bool) -> Value {
    json!({"fieldId": "description", "name": "Description", "description": "", "required": required,
        "defaultValues": [], "validValues": [], "visible": true,
        "jiraSchema": {"type": "string", "system": "description"}})
}

fn seed() -> JsmState {
    let desk = |id: &str, project_id: &str, key: &str, name: &str| FakeDesk {
        id: id.into(),
        project_id: project_id.into(),
        key: key.into(),
        name: name.into(),
    };
    let rt = |id: &str, desk: &str, portal: &str, name: &str, groups: &[&str], fields: Vec<Value>| FakeRequestType {
        id: id.into(),
        desk_id: desk.into(),
        portal_id: portal.into(),
        name: name.into(),
        description: format!("{name}: tell us what you need"),
        group_ids: groups.iter().map(|g| g.to_string()).collect(),
        fields,
    };
    let hardware_fields = vec![
        summary_field(),
        json!({"fieldId": "customfield_10010", "name": "Office", "description": "Where you work", "required": true,
            "defaultValues": [], "visible": true,
            "validValues": [{"value": "10100", "label": "Paris", "children": []}, {"value": "10101", "label": "Oslo", "children": []}],
            "jiraSchema": {"type": "option", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:select", "customId": 10010}}),
        json!({"fieldId": "customfield_10011", "name": "Accessories", "required": false, "defaultValues": [],
            "validValues": [{"value": "10200", "label": "Mouse", "children": []}, {"value": "10201", "label": "Keyboard", "children": []}],
            "jiraSchema": {"type": "array", "items": "option", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:multiselect", "customId": 10011}}),
        json!({"fieldId": "customfield_10012", "name": "Urgency", "required": false, "defaultValues": [{"value": "10301", "label": "Normal", "children": []}],
            "validValues": [{"value": "10300", "label": "High", "children": []}, {"value": "10301", "label": "Normal", "children": []}],
            "jiraSchema": {"type": "option", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:radiobuttons", "customId": 10012}}),
        json!({"fieldId": "customfield_10013", "name": "Operating systems", "required": false, "defaultValues": [],
            "validValues": [{"value": "10400", "label": "Linux", "children": []}, {"value": "10401", "label": "macOS", "children": []}],
            "jiraSchema": {"type": "array", "items": "option", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:multicheckboxes", "customId": 10013}}),
        json!({"fieldId": "duedate", "name": "Needed by", "required": false, "defaultValues": [], "validValues": [],
            "jiraSchema": {"type": "date", "system": "duedate"}}),
        json!({"fieldId": "customfield_10014", "name": "Quantity", "required": false, "defaultValues": [], "validValues": [],
            "jiraSchema": {"type": "number", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:float", "customId": 10014}}),
        description_field(false),
        json!({"fieldId": "attachment", "name": "Attachment", "required": false, "defaultValues": [], "validValues": [],
            "jiraSchema": {"type": "array", "items": "attachment", "system": "attachment"}}),
    ];
    let mut state = JsmState {
        page_size: 2,
        accounts: vec![
            ServiceAccount {
                email: SERVICE_EMAIL.into(),
                token: SERVICE_TOKEN.into(),
                account_id: SERVICE_ACCOUNT.into(),
                display_name: "Helpdesk service".into(),
                admin: true,
            },
            ServiceAccount {
                email: AGENT_EMAIL.into(),
                token: AGENT_TOKEN.into(),
                account_id: "557058:agent".into(),
                display_name: "An agent".into(),
                admin: false,
            },
        ],
        app_admins: HashSet::new(),
        secrets: HashMap::new(),
        desks: vec![
            desk("1", "10001", "ITH", "IT Help Desk"),
            desk("2", "10002", "HR", "Human Resources"),
            desk("5", "10005", "FAC", "Facilities"),
            desk("9", "10009", "EMPTY", "Not set up yet"),
        ],
        request_types: vec![
            rt("11", "1", "3", "Get IT help", &["21"], vec![summary_field(), description_field(true)]),
            rt("12", "1", "3", "Request new hardware", &["22"], hardware_fields),
            rt("13", "1", "3", "Report a security incident", &["21"], vec![summary_field(), description_field(false)]),
            rt("31", "2", "7", "Ask HR", &["51"], vec![summary_field()]),
            rt("41", "5", "4", "Fix something", &[], vec![summary_field()]),
        ],
        groups: vec![
            ("1".into(), "21".into(), "Common requests".into()),
            ("1".into(), "22".into(), "Hardware".into()),
            ("2".into(), "51".into(), "General".into()),
        ],
        users: vec![
            FakeUser {
                account_id: BOB.into(),
                account_type: "customer".into(),
                email: "bob@example.com".into(),
                display_name: "Bob Customer".into(),
                email_visible: true,
            },
            FakeUser {
                account_id: CAROL.into(),
                account_type: "atlassian".into(),
                email: "carol@example.com".into(),
                display_name: "Carol Staff".into(),
                email_visible: true,
            },
            // A prefix match that is not an exact match.
            FakeUser {
                account_id: "qm:alice-au".into(),
                account_type: "customer".into(),
                email: "alice@example.com.au".into(),
                display_name: "Alice Elsewhere".into(),
                email_visible: true,
            },
            FakeUser {
                account_id: SERVICE_ACCOUNT.into(),
                account_type: "atlassian".into(),
                email: SERVICE_EMAIL.into(),
                display_name: "Helpdesk service".into(),
                email_visible: true,
            },
        ],
        desk_customers: BTreeMap::new(),
        requests: vec![],
        calls: vec![],
        faults: vec![],
        next_id: 100,
    };
    // Bob's request on the IT desk, with a public and an internal comment.
    let mut values = Map::new();
    values.insert("summary".into(), json!("Bob's printer is on fire"));
    values.insert("description".into(), json!("Please hurry"));
    state.requests.push(FakeRequest {
        issue_id: "10050".into(),
        key: "ITH-1".into(),
        desk_id: "1".into(),
        request_type_id: "11".into(),
        reporter: BOB.into(),
        participants: vec![],
        values,
        status: "Waiting for support".into(),
        category: "new".into(),
        updated: 1_700_000_000,
        comments: vec![
            FakeComment { id: "900".into(), body: "We are on it".into(), public: true, author: "557058:agent".into() },
            FakeComment {
                id: "901".into(),
                body: "INTERNAL: bob is difficult".into(),
                public: false,
                author: "557058:agent".into(),
            },
        ],
    });
    state
}

impl FakeJsm {
    pub async fn start() -> FakeJsm {
        let state = Arc::new(Mutex::new(seed()));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(handle)))
            .workers(1)
            .listen(listener)
            .unwrap()
            .run();
        tokio::spawn(server);
        FakeJsm { port, state }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A Jira site served by this fake (install it with `app.installed(&site)`).
    pub fn site(&self, name: &str) -> Site {
        let site = Site {
            client_key: format!("{name}-{}", uuid::Uuid::new_v4()),
            shared_secret: format!("secret-{}", uuid::Uuid::new_v4()),
            base_url: format!("{}/{name}", self.base_url()),
        };
        self.state.lock().unwrap().secrets.insert(site.client_key.clone(), site.shared_secret.clone());
        site
    }

    pub fn make_app_admin(&self, account_id: &str) {
        self.state.lock().unwrap().app_admins.insert(account_id.to_string());
    }

    pub fn calls(&self) -> Vec<JsmCall> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Calls with this method whose path ends with `suffix`.
    pub fn calls_to(&self, method: &str, suffix: &str) -> Vec<JsmCall> {
        self.calls().into_iter().filter(|c| c.method == method && c.path.ends_with(suffix)).collect()
    }

    pub fn clear_calls(&self) {
        self.state.lock().unwrap().calls.clear();
    }

    /// The next `times` calls whose path contains `path_contains` (and with this method, if given) get
    /// `status`, with `Retry-After` if given.
    pub fn fail(
        &self,
        method: Option<&str>,
        path_contains: &str,
        status: u16,
        retry_after: Option<&str>,
        times: usize,
    ) {
        self.state.lock().unwrap().faults.push(Fault {
            path_contains: path_contains.into(),
            method: method.map(str::to_string),
            status,
            retry_after: retry_after.map(str::to_string),
            remaining: times,
        });
    }

    pub fn user_by_email(&self, email: &str) -> Option<FakeUser> {
        self.state.lock().unwrap().users.iter().find(|u| u.email.eq_ignore_ascii_case(email)).cloned()
    }

    pub fn desk_customers(&self, desk: &str) -> Vec<String> {
        self.state.lock().unwrap().desk_customers.get(desk).cloned().unwrap_or_default()
    }

    pub fn request(&self, key: &str) -> Option<FakeRequest> {
        self.state.lock().unwrap().requests.iter().find(|r| r.key == key).cloned()
    }

    /// Adds a request directly (as if raised elsewhere); returns its key.
    pub fn add_request(&self, desk_id: &str, reporter: &str, summary: &str, category: &str) -> String {
        let mut s = self.state.lock().unwrap();
        let key = next_key(&mut s, desk_id);
        s.next_id += 1;
        let mut values = Map::new();
        values.insert("summary".into(), json!(summary));
        let updated = 1_700_000_000 + s.next_id as i64;
        let issue_id = format!("{}", 20000 + s.next_id);
        let rt = s.request_types.iter().find(|t| t.desk_id == desk_id).map(|t| t.id.clone()).unwrap_or_default();
        s.requests.push(FakeRequest {
            issue_id,
            key: key.clone(),
            desk_id: desk_id.into(),
            request_type_id: rt,
            reporter: reporter.into(),
            participants: vec![],
            values,
            status: if category == "done" { "Resolved".into() } else { "Waiting for support".into() },
            category: category.into(),
            updated,
            comments: vec![],
        });
        key
    }

    pub fn add_participant(&self, key: &str, account_id: &str) {
        let mut s = self.state.lock().unwrap();
        let r = s.requests.iter_mut().find(|r| r.key == key).unwrap();
        r.participants.push(account_id.into());
    }

    pub fn hide_email(&self, email: &str) {
        let mut s = self.state.lock().unwrap();
        for u in s.users.iter_mut().filter(|u| u.email.eq_ignore_ascii_case(email)) {
            u.email_visible = false;
        }
    }

    /// Revokes a service account's token (its calls get 401 from now on).
    pub fn revoke_token(&self, token: &str) {
        let mut s = self.state.lock().unwrap();
        for a in s.accounts.iter_mut().filter(|a| a.token == token) {
            a.token = format!("revoked-{}", uuid::Uuid::new_v4());
        }
    }
}

fn next_key(s: &mut JsmState, desk_id: &str) -> String {
    let project = s.desks.iter().find(|d| d.id == desk_id).map(|d| d.key.clone()).unwrap_or_else(|| "X".into());
    let n = s.requests.iter().filter(|r| r.key.starts_with(&format!("{project}-"))).count() + 1;
    format!("{project}-{n}")
}

// -------------------------------------------------------------------------------------------------
// Serving

fn error(status: u16, message: &str) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap())
        .json(json!({ "errorMessage": message, "i18nErrorMessage": { "i18nKey": "sd.error", "parameters": [] } }))
}

fn jira_error(status: u16, message: &str) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap()).json(json!({ "errorMessages": [message], "errors": {} }))
}

fn query_map(query: &str) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        out.entry(k.into_owned()).or_default().push(v.into_owned());
    }
    out
}

fn param(q: &HashMap<String, Vec<String>>, name: &str) -> Option<String> {
    q.get(name).and_then(|v| v.first()).cloned()
}

fn user_json(base: &str, u: &FakeUser) -> Value {
    let mut v = json!({
        "self": format!("{base}/rest/api/3/user?accountId={}", u.account_id),
        "accountId": u.account_id,
        "accountType": u.account_type,
        "avatarUrls": {"48x48": "https://avatar.example/48.png", "24x24": "", "16x16": "", "32x32": ""},
        "displayName": u.display_name,
        "active": true,
        "timeZone": "Europe/Paris",
        "locale": "en_US",
    });
    if u.email_visible {
        v["emailAddress"] = json!(u.email);
    }
    v
}

fn sd_user_json(base: &str, u: &FakeUser) -> Value {
    json!({
        "accountId": u.account_id,
        "emailAddress": u.email,
        "displayName": u.display_name,
        "active": true,
        "timeZone": "Europe/Paris",
        "_links": {"jiraRest": format!("{base}/rest/api/2/user?accountId={}", u.account_id),
            "avatarUrls": {"48x48": "", "24x24": "", "16x16": "", "32x32": ""}, "self": ""},
    })
}

fn paged(base: &str, path: &str, q: &HashMap<String, Vec<String>>, page_size: usize, all: Vec<Value>) -> Value {
    let start: usize = param(q, "start").and_then(|s| s.parse().ok()).unwrap_or(0);
    let limit: usize = param(q, "limit").and_then(|s| s.parse().ok()).unwrap_or(50).min(page_size).max(1);
    let values: Vec<Value> = all.iter().skip(start).take(limit).cloned().collect();
    let is_last = start + values.len() >= all.len();
    let mut links = json!({ "base": format!("{base}/rest/servicedeskapi"), "context": "" });
    if !is_last {
        links["next"] = json!(format!("{base}{path}?start={}&limit={limit}", start + limit));
    }
    json!({ "_expands": [], "size": values.len(), "start": start, "limit": limit, "isLastPage": is_last,
        "_links": links, "values": values })
}

fn date_json(epoch: i64) -> Value {
    let t = chrono::DateTime::from_timestamp(epoch, 0).unwrap();
    json!({ "epochMillis": epoch * 1000, "friendly": "Today 10:00 AM",
        "iso8601": t.format("%Y-%m-%dT%H:%M:%S%z").to_string(), "jira": t.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string() })
}

fn request_json(s: &JsmState, base: &str, r: &FakeRequest) -> Value {
    let rt = s.request_types.iter().find(|t| t.id == r.request_type_id);
    let label = |field: &str| {
        rt.and_then(|t| t.fields.iter().find(|f| f["fieldId"] == field))
            .and_then(|f| f["name"].as_str())
            .unwrap_or(field)
            .to_string()
    };
    let reporter = s.users.iter().find(|u| u.account_id == r.reporter);
    let category = match r.category.as_str() {
        "done" => "DONE",
        "indeterminate" => "INDETERMINATE",
        _ => "NEW",
    };
    let portal = rt.map(|t| t.portal_id.clone()).unwrap_or_default();
    json!({
        "_expands": ["participant", "status", "sla", "requestType", "serviceDesk", "attachment", "action", "comment"],
        "issueId": r.issue_id,
        "issueKey": r.key,
        "requestTypeId": r.request_type_id,
        "serviceDeskId": r.desk_id,
        "createdDate": date_json(r.updated - 3600),
        "reporter": reporter.map(|u| sd_user_json(base, u)).unwrap_or(json!({"accountId": r.reporter})),
        "requestFieldValues": r.values.iter().map(|(k, v)| json!({"fieldId": k, "label": label(k), "value": v})).collect::<Vec<_>>(),
        "currentStatus": { "status": r.status, "statusCategory": category, "statusDate": date_json(r.updated) },
        "_links": {
            "jiraRest": format!("{base}/rest/api/2/issue/{}", r.issue_id),
            "web": format!("{base}/servicedesk/customer/portal/{portal}/{}", r.key),
            "agent": format!("{base}/browse/{}", r.key),
            "self": format!("{base}/rest/servicedeskapi/request/{}", r.issue_id),
        },
    })
}

fn comment_json(s: &JsmState, base: &str, c: &FakeComment) -> Value {
    let author = s.users.iter().find(|u| u.account_id == c.author).map(|u| sd_user_json(base, u)).unwrap_or_else(
        || json!({"accountId": c.author, "displayName": "An agent", "active": true, "emailAddress": "agent@example.com"}),
    );
    json!({ "id": c.id, "body": c.body, "public": c.public, "author": author, "created": date_json(1_700_000_100),
        "_links": {"self": format!("{base}/rest/servicedeskapi/request/x/comment/{}", c.id)} })
}

/// `project = "KEY" AND reporter = "id" [AND statusCategory != Done | = Done] ORDER BY …`
fn jql_value(jql: &str, field: &str) -> Option<String> {
    let at = jql.find(&format!("{field} = \""))? + field.len() + 4;
    let rest = &jql[at..];
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return Some(out),
            c => out.push(c),
        }
    }
    None
}

async fn handle(state: web::Data<Arc<Mutex<JsmState>>>, req: HttpRequest, body: String) -> HttpResponse {
    let full = req.path().to_string();
    let (site, path) = match full.trim_start_matches('/').split_once('/') {
        Some((site, rest)) => (site.to_string(), format!("/{rest}")),
        None => return HttpResponse::NotFound().finish(),
    };
    let base = format!("http://{}/{site}", req.connection_info().host());
    let method = req.method().as_str().to_string();
    let query = req.query_string().to_string();
    let authorization = req.headers().get("Authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut s = state.lock().unwrap();
    s.calls.push(JsmCall {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        body: body.clone(),
        authorization: authorization.clone(),
    });

    // Injected faults.
    if let Some(f) = s
        .faults
        .iter_mut()
        .find(|f| f.remaining > 0 && path.contains(&f.path_contains) && f.method.as_deref().is_none_or(|m| m == method))
    {
        f.remaining -= 1;
        let mut r = HttpResponse::build(StatusCode::from_u16(f.status).unwrap());
        if let Some(ra) = &f.retry_after {
            r.insert_header(("Retry-After", ra.clone()));
        }
        if f.status == 429 {
            r.insert_header(("X-RateLimit-Reset", "2030-01-01T00:00Z"))
                .insert_header(("RateLimit-Reason", "jira-burst-based"));
        }
        return r.json(json!({"errorMessages": [format!("injected {}", f.status)], "errors": {}}));
    }

    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let q = query_map(&query);

    // The app's own call (Connect JWT): is this user a Jira administrator?
    if segs == ["rest", "api", "3", "permissions", "check"] {
        let ok = authorization.as_deref().and_then(|a| a.strip_prefix("JWT ")).is_some_and(|token| {
            let mut v = Validation::new(Algorithm::HS256);
            v.required_spec_claims.clear();
            v.validate_aud = false;
            s.secrets.values().any(|secret| {
                jsonwebtoken::decode::<Value>(token, &DecodingKey::from_secret(secret.as_bytes()), &v)
                    .is_ok_and(|d| d.claims["iss"] == "jsm-sso-test")
            })
        });
        if !ok {
            return jira_error(401, "bad JWT");
        }
        let v: Value = serde_json::from_str(&body).unwrap_or_default();
        let account = v["accountId"].as_str().unwrap_or_default();
        let global: Vec<&str> = if s.app_admins.contains(account) { vec!["ADMINISTER"] } else { vec![] };
        return HttpResponse::Ok().json(json!({ "globalPermissions": global, "projectPermissions": [] }));
    }

    // Everything else: the service account's Basic auth.
    let account = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pair| {
            let (email, token) = pair.split_once(':')?;
            s.accounts.iter().find(|a| a.email == email && a.token == token).cloned()
        });
    let Some(account) = account else {
        return HttpResponse::Unauthorized()
            .content_type("text/plain")
            .body("Client must be authenticated to access this resource.");
    };
    let page_size = s.page_size;

    match (method.as_str(), segs.as_slice()) {
        ("GET", ["rest", "api", "3", "myself"]) => HttpResponse::Ok().json(json!({
            "self": format!("{base}/rest/api/3/user?accountId={}", account.account_id),
            "accountId": account.account_id, "accountType": "atlassian", "emailAddress": account.email,
            "avatarUrls": {}, "displayName": account.display_name, "active": true, "timeZone": "Europe/Paris",
            "locale": "en_US", "groups": {"size": 1, "items": []}, "applicationRoles": {"size": 1, "items": []},
            "expand": "groups,applicationRoles"})),
        ("GET", ["rest", "api", "3", "mypermissions"]) => {
            let asked = param(&q, "permissions").unwrap_or_default();
            let mut perms = Map::new();
            for key in asked.split(',').filter(|k| !k.is_empty()) {
                let have = key == "ADMINISTER" && account.admin;
                perms.insert(
                    key.into(),
                    json!({"id": "0", "key": key, "name": "Administer Jira", "type": "GLOBAL",
                    "description": "Create and administer projects, issue types, fields…", "havePermission": have}),
                );
            }
            HttpResponse::Ok().json(json!({ "permissions": perms }))
        }
        ("GET", ["rest", "api", "3", "user", "search"]) => {
            let query = param(&q, "query").unwrap_or_default().to_lowercase();
            let found: Vec<Value> = s
                .users
                .iter()
                .filter(|u| {
                    !query.is_empty()
                        && ((u.email_visible && u.email.to_lowercase().starts_with(&query))
                            || u.display_name.to_lowercase().split(' ').any(|w| w.starts_with(&query)))
                })
                .map(|u| user_json(&base, u))
                .collect();
            HttpResponse::Ok().json(found)
        }
        ("GET", ["rest", "api", "3", "search", "jql"]) => {
            let jql = param(&q, "jql").unwrap_or_default();
            let project = jql_value(&jql, "project");
            let reporter = jql_value(&jql, "reporter");
            let max: usize = param(&q, "maxResults").and_then(|m| m.parse().ok()).unwrap_or(50).min(page_size).max(1);
            let offset: usize = param(&q, "nextPageToken")
                .and_then(|t| t.strip_prefix("tok-").and_then(|n| n.parse().ok()))
                .unwrap_or(0);
            let mut matching: Vec<&FakeRequest> = s
                .requests
                .iter()
                .filter(|r| {
                    let key = s.desks.iter().find(|d| d.id == r.desk_id).map(|d| d.key.as_str()).unwrap_or("");
                    project.as_deref().is_none_or(|p| p == key)
                        && reporter.as_deref().is_none_or(|a| a == r.reporter)
                        && (!jql.contains("statusCategory != Done") || r.category != "done")
                        && (!jql.contains("statusCategory = Done") || r.category == "done")
                })
                .collect();
            matching.sort_by_key(|r| std::cmp::Reverse(r.updated));
            let page: Vec<Value> = matching
                .iter()
                .skip(offset)
                .take(max)
                .map(|r| {
                    let (cat_id, cat_key, cat_name) = match r.category.as_str() {
                        "done" => (3, "done", "Done"),
                        "indeterminate" => (4, "indeterminate", "In Progress"),
                        _ => (2, "new", "To Do"),
                    };
                    let updated = chrono::DateTime::from_timestamp(r.updated, 0).unwrap();
                    json!({"expand": "", "id": r.issue_id, "self": format!("{base}/rest/api/3/issue/{}", r.issue_id), "key": r.key,
                        "fields": {
                            "summary": r.values.get("summary").cloned().unwrap_or(Value::Null),
                            "status": {"self": "", "description": "", "iconUrl": "", "name": r.status, "id": "10001",
                                "statusCategory": {"self": "", "id": cat_id, "key": cat_key, "colorName": "blue-gray", "name": cat_name}},
                            "updated": updated.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string(),
                            "created": updated.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string()}})
                })
                .collect();
            let more = offset + page.len() < matching.len();
            let mut out = json!({ "issues": page, "isLast": !more });
            if more {
                out["nextPageToken"] = json!(format!("tok-{}", offset + max));
            }
            HttpResponse::Ok().json(out)
        }
        ("GET", ["rest", "servicedeskapi", "servicedesk"]) => {
            let all = s
                .desks
                .iter()
                .map(|d| {
                    json!({"id": d.id, "projectId": d.project_id, "projectName": d.name, "projectKey": d.key,
                    "_links": {"self": format!("{base}/rest/servicedeskapi/servicedesk/{}", d.id)}})
                })
                .collect();
            HttpResponse::Ok().json(paged(&base, &path, &q, page_size, all))
        }
        ("GET", ["rest", "servicedeskapi", "servicedesk", desk, "requesttype"]) => {
            if !s.desks.iter().any(|d| d.id == *desk) {
                return error(404, "The service desk does not exist");
            }
            let all = s
                .request_types
                .iter()
                .filter(|t| t.desk_id == *desk)
                .map(|t| {
                    json!({"_expands": [], "id": t.id, "name": t.name, "description": t.description,
                    "helpText": format!("Help for {}", t.name), "issueTypeId": "10100", "serviceDeskId": t.desk_id,
                    "portalId": t.portal_id, "groupIds": t.group_ids,
                    "icon": {"id": "10500", "_links": {"iconUrls": {"48x48": format!("{base}/icon.png")}}},
                    "_links": {"self": format!("{base}/rest/servicedeskapi/servicedesk/{desk}/requesttype/{}", t.id)}})
                })
                .collect();
            HttpResponse::Ok().json(paged(&base, &path, &q, page_size, all))
        }
        ("GET", ["rest", "servicedeskapi", "servicedesk", desk, "requesttypegroup"]) => {
            let all = s
                .groups
                .iter()
                .filter(|(d, ..)| d.as_str() == *desk)
                .map(|(_, id, name)| json!({"id": id, "name": name}))
                .collect();
            HttpResponse::Ok().json(paged(&base, &path, &q, page_size, all))
        }
        ("GET", ["rest", "servicedeskapi", "servicedesk", desk, "requesttype", rt, "field"]) => {
            match s.request_types.iter().find(|t| t.desk_id == *desk && t.id == *rt) {
                Some(t) => HttpResponse::Ok().json(json!({"requestTypeFields": t.fields, "canRaiseOnBehalfOf": true,
                    "canAddRequestParticipants": true})),
                None => error(404, "The request type does not exist"),
            }
        }
        ("POST", ["rest", "servicedeskapi", "customer"]) => {
            if !account.admin {
                return error(403, "You do not have permission to create customers");
            }
            let v: Value = serde_json::from_str(&body).unwrap_or_default();
            let email = v["email"].as_str().unwrap_or_default().to_string();
            let display = v["displayName"].as_str().unwrap_or_default().to_string();
            if email.is_empty() || display.is_empty() {
                return error(400, "email and displayName are required");
            }
            if s.users.iter().any(|u| u.email.eq_ignore_ascii_case(&email)) {
                return error(400, "An account already exists for this email");
            }
            s.next_id += 1;
            let user = FakeUser {
                account_id: format!("qm:{}:5ad6d3581db05e2a66fa80b", uuid::Uuid::new_v4()),
                account_type: "customer".into(),
                email: email.clone(),
                display_name: display,
                email_visible: true,
            };
            s.users.push(user.clone());
            let mut out = sd_user_json(&base, &user);
            out["name"] = json!(email);
            out["key"] = json!(email);
            HttpResponse::Created().json(out)
        }
        ("POST", ["rest", "servicedeskapi", "servicedesk", desk, "customer"]) => {
            if !account.admin {
                return error(403, "You are not a service desk administrator");
            }
            let v: Value = serde_json::from_str(&body).unwrap_or_default();
            let ids: Vec<String> = v["accountIds"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str())
                .map(str::to_string)
                .collect();
            if ids.is_empty() || ids.iter().any(|id| !s.users.iter().any(|u| &u.account_id == id)) {
                return error(400, "Unknown accountIds");
            }
            let members = s.desk_customers.entry(desk.to_string()).or_default();
            for id in ids {
                if !members.contains(&id) {
                    members.push(id);
                }
            }
            HttpResponse::NoContent().finish()
        }
        ("POST", ["rest", "servicedeskapi", "request"]) => {
            let v: Value = serde_json::from_str(&body).unwrap_or_default();
            let desk = v["serviceDeskId"].as_str().unwrap_or_default().to_string();
            let rt_id = v["requestTypeId"].as_str().unwrap_or_default().to_string();
            let Some(rt) = s.request_types.iter().find(|t| t.desk_id == desk && t.id == rt_id).cloned() else {
                return error(400, "The request type is not valid for this service desk");
            };
            let reporter = match v["raiseOnBehalfOf"].as_str() {
                Some(id) if s.users.iter().any(|u| u.account_id == id) => id.to_string(),
                Some(_) => return error(400, "The user to raise on behalf of does not exist"),
                None => account.account_id.clone(),
            };
            let values = v["requestFieldValues"].as_object().cloned().unwrap_or_default();
            for f in &rt.fields {
                let id = f["fieldId"].as_str().unwrap_or_default();
                if f["required"] == true && !values.contains_key(id) {
                    return HttpResponse::BadRequest()
                        .json(json!({"errorMessage": format!("{id}: This field is required"),
                        "i18nErrorMessage": {"i18nKey": "sd.request.create.field.required", "parameters": []}}));
                }
            }
            if values.get("summary").and_then(Value::as_str) == Some("REJECT ME") {
                return error(400, "Summary: Jira does not like this summary");
            }
            s.next_id += 1;
            let key = next_key(&mut s, &desk);
            let r = FakeRequest {
                issue_id: format!("{}", 30000 + s.next_id),
                key,
                desk_id: desk,
                request_type_id: rt_id,
                reporter,
                participants: vec![],
                values,
                status: "Waiting for support".into(),
                category: "new".into(),
                updated: 1_700_000_000 + s.next_id as i64,
                comments: vec![],
            };
            let out = request_json(&s, &base, &r);
            s.requests.push(r);
            HttpResponse::Created().json(out)
        }
        ("GET", ["rest", "servicedeskapi", "request", key]) => {
            match s.requests.iter().find(|r| r.key == *key || r.issue_id == *key) {
                Some(r) => HttpResponse::Ok().json(request_json(&s, &base, r)),
                None => error(404, "Issue does not exist or you do not have permission to see it."),
            }
        }
        ("GET", ["rest", "servicedeskapi", "request", key, "participant"]) => {
            let Some(r) = s.requests.iter().find(|r| r.key == *key) else {
                return error(404, "Issue does not exist or you do not have permission to see it.");
            };
            let all = r
                .participants
                .iter()
                .filter_map(|id| s.users.iter().find(|u| &u.account_id == id))
                .map(|u| sd_user_json(&base, u))
                .collect();
            HttpResponse::Ok().json(paged(&base, &path, &q, page_size, all))
        }
        ("GET", ["rest", "servicedeskapi", "request", key, "comment"]) => {
            let Some(r) = s.requests.iter().find(|r| r.key == *key) else {
                return error(404, "Issue does not exist or you do not have permission to see it.");
            };
            let public = param(&q, "public").is_none_or(|v| v == "true");
            let internal = param(&q, "internal").is_none_or(|v| v == "true");
            let all = r
                .comments
                .iter()
                .filter(|c| (c.public && public) || (!c.public && internal))
                .map(|c| comment_json(&s, &base, c))
                .collect();
            HttpResponse::Ok().json(paged(&base, &path, &q, page_size, all))
        }
        ("POST", ["rest", "servicedeskapi", "request", key, "comment"]) => {
            let v: Value = serde_json::from_str(&body).unwrap_or_default();
            s.next_id += 1;
            let comment = FakeComment {
                id: format!("{}", s.next_id),
                body: v["body"].as_str().unwrap_or_default().to_string(),
                public: v["public"].as_bool().unwrap_or(true),
                author: account.account_id.clone(),
            };
            let out = comment_json(&s, &base, &comment);
            let Some(r) = s.requests.iter_mut().find(|r| r.key == *key) else {
                return error(404, "Issue does not exist or you do not have permission to see it.");
            };
            r.comments.push(comment);
            HttpResponse::Created().json(out)
        }
        _ => jira_error(404, &format!("fake JSM has no {method} {path}")),
    }
}
