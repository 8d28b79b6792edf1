//! Customer-facing pages of the sign-in flow.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_SECURITY_POLICY, ContentType};
use askama::Template;

use crate::startup::AppState;

#[derive(Template)]
#[template(path = "saml/message.html")]
struct Message<'a> {
    asset_base: &'a str,
    title: &'a str,
    message: &'a str,
    failed: bool,
    reference: Option<&'a str>,
    link: Option<&'a str>,
    link_text: &'a str,
}

pub struct MessagePage<'a> {
    pub status: StatusCode,
    pub title: &'a str,
    pub message: &'a str,
    pub reference: Option<&'a str>,
    pub link: Option<(&'a str, &'a str)>,
}

pub fn message(state: &AppState, p: MessagePage<'_>) -> HttpResponse {
    let body = Message {
        asset_base: state.settings.base_url.as_str(),
        title: p.title,
        message: p.message,
        failed: !p.status.is_success(),
        reference: p.reference,
        link: p.link.map(|(l, _)| l),
        link_text: p.link.map(|(_, t)| t).unwrap_or_default(),
    }
    .render()
    .unwrap_or_else(|_| p.message.to_string());
    HttpResponse::build(p.status).content_type(ContentType::html()).body(body)
}

#[derive(Template)]
#[template(path = "saml/post_form.html")]
struct PostForm<'a> {
    asset_base: &'a str,
    action: &'a str,
    field: &'a str,
    value: &'a str,
    relay_state: Option<&'a str>,
    message: &'a str,
}

/// An auto-submitting form (HTTP-POST binding). Its CSP allows posting only to `action`'s origin.
/// `message` tells the person what is happening while the form submits ("Signing you out…").
pub fn post_form(
    state: &AppState,
    action: &str,
    field: &str,
    value: &str,
    relay_state: Option<&str>,
    message: &str,
) -> HttpResponse {
    let origin = url::Url::parse(action).map(|u| u.origin().ascii_serialization()).unwrap_or_else(|_| "'none'".into());
    let body = PostForm { asset_base: state.settings.base_url.as_str(), action, field, value, relay_state, message }
        .render()
        .unwrap_or_default();
    HttpResponse::Ok()
        .insert_header((
            CONTENT_SECURITY_POLICY,
            format!(
                "default-src 'self'; form-action {origin}; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
            ),
        ))
        .content_type(ContentType::html())
        .body(body)
}
