//! Request authentication for everything Jira calls or frames: a verified tenant and account id, or a
//! refusal. Handlers take one of the extractors below and never see a token.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey};
use secrecy::ExposeSecret;

use super::error::ConnectError;
use super::jwt::{self, QshRule};
use super::shared_secret_context;
use crate::jira::JiraAuth;
use crate::startup::AppState;
use crate::tenants::Tenant;
use crate::web::{ErrorFormat, WebError};

/// An Atlassian account id (the `sub` of a verified token).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountId(String);

impl AccountId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A verified request from a tenant's Jira.
pub struct Verified {
    pub tenant: Tenant,
    pub account_id: Option<AccountId>,
    pub(super) app_auth: JiraAuth,
}

/// Verifies the request's Connect JWT (HS256 with the tenant's shared secret).
pub async fn verify_request(
    state: &AppState,
    req: &HttpRequest,
    rule: QshRule,
    now: DateTime<Utc>,
) -> Result<Verified, ConnectError> {
    let token = jwt::extract_token(req)?;
    let client_key = jwt::peek_issuer(&token)?;
    let installation = state.store.find_connect_installation(&client_key).await?.ok_or_else(|| {
        ConnectError::unauthorized("the Connect token comes from a site where this app is not installed")
    })?;
    if !installation.tenant.is_active() {
        return Err(ConnectError::unauthorized("this app has been uninstalled from the site"));
    }
    let secret = state
        .keyring
        .open(&installation.shared_secret, &shared_secret_context(&client_key))
        .map_err(|e| ConnectError::Unexpected(e.into()))?;
    let claims =
        jwt::verify_signature(&token, &DecodingKey::from_secret(secret.expose_secret().as_bytes()), Algorithm::HS256)?;
    jwt::check_qsh(&claims, &jwt::request_qsh(req, state.settings.base_url.path_prefix()), rule)?;
    jwt::check_times(&claims, now, state.settings.jwt_leeway.as_secs() as i64)?;
    Ok(Verified {
        tenant: installation.tenant,
        account_id: claims.sub.filter(|s| !s.is_empty()).map(AccountId),
        app_auth: JiraAuth::App { app_key: state.settings.app_key.clone(), shared_secret: secret },
    })
}

/// What a route requires.
pub trait Requirement {
    const QSH: QshRule;
    const ADMIN: bool;
    const FORMAT: ErrorFormat;
}

/// A page Jira loads in its iframe: the URL must be signed by Jira (real qsh).
pub struct Page;
/// The JSON API our iframe pages call with `AP.context.getToken()` (context-qsh accepted).
pub struct Api;
/// Like [`Page`], and the user must be a Jira administrator.
pub struct AdminPage;
/// Like [`Api`], and the user must be a Jira administrator.
pub struct AdminApi;

impl Requirement for Page {
    const QSH: QshRule = QshRule::Exact;
    const ADMIN: bool = false;
    const FORMAT: ErrorFormat = ErrorFormat::Html;
}
impl Requirement for Api {
    const QSH: QshRule = QshRule::ExactOrContext;
    const ADMIN: bool = false;
    const FORMAT: ErrorFormat = ErrorFormat::Json;
}
impl Requirement for AdminPage {
    const QSH: QshRule = QshRule::Exact;
    const ADMIN: bool = true;
    const FORMAT: ErrorFormat = ErrorFormat::Html;
}
impl Requirement for AdminApi {
    const QSH: QshRule = QshRule::ExactOrContext;
    const ADMIN: bool = true;
    const FORMAT: ErrorFormat = ErrorFormat::Json;
}

/// The verified user of a request from Jira; `R` says what was required.
pub struct JiraUser<R> {
    pub tenant: Tenant,
    pub account_id: Option<AccountId>,
    _requirement: PhantomData<R>,
}

impl<R: Requirement + 'static> FromRequest for JiraUser<R> {
    type Error = WebError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req.app_data::<web::Data<AppState>>().expect("AppState is registered").clone();
            let now = Utc::now();
            let result = async {
                let verified = verify_request(&state, &req, R::QSH, now).await?;
                if R::ADMIN {
                    let account = verified
                        .account_id
                        .as_ref()
                        .ok_or_else(|| ConnectError::Forbidden("only a signed-in Jira administrator can open this".into()))?;
                    if !state.admin_checker.is_admin(&state, &verified, account, now).await? {
                        return Err(ConnectError::Forbidden(
                            "only Jira administrators can configure SAML single sign-on; ask one of your site's administrators".into(),
                        ));
                    }
                }
                Ok(JiraUser { tenant: verified.tenant, account_id: verified.account_id, _requirement: PhantomData })
            }
            .await;
            result.map_err(|e: ConnectError| {
                tracing::info!(path = %req.path(), status = e.status().as_u16(), reason = %e, "Connect authentication refused");
                WebError::from_connect(e, R::FORMAT)
            })
        })
    }
}
