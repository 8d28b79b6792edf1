//! The customer helpdesk behind each service desk's substitute link, and the service account it acts
//! through.
//!
//! jsm-sso cannot put its own sign-in in front of Jira's customer portal (Atlassian gives third parties
//! no control over Cloud authentication), so, like the products it replaces, it serves a copy of the
//! portal: customers sign in through the tenant's IdP, and every Jira call is made by a service
//! account (a Jira administrator's API token, stored sealed) *for* the customer: customers are found
//! or created by email, requests are raised with `raiseOnBehalfOf`, and a customer only ever sees the
//! requests they reported or participate in.
//!
//! Customer routes (`/t/{tenant}/...`): `portals`, `portals/sign-in`, `portal/{id}`,
//! `portal/{id}/create/{request type}`, `portal/{id}/requests`, `portal/{id}/requests/{key}`,
//! `portal/{id}/requests/{key}/comment`. Admin pages: `/admin/api-token`, `/admin/substitute-links`.
//! Admin API: `/api/v1/api-token` (GET, PUT, DELETE; POST `/test`), `/api/v1/portals`.

mod admin;
mod api_token;
pub mod csrf;
mod error;
pub mod fields;
pub mod helpdesk;
pub mod jsm;
mod pages;
pub mod portals;
pub mod provision;
mod signin;

use actix_web::web;

pub use error::PortalError;
pub use provision::{ProvisionError, provision};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/t/{tenant}/portals", web::get().to(helpdesk::help_center))
        .route("/t/{tenant}/portals/sign-in", web::get().to(signin::by_email))
        .route("/t/{tenant}/portal/{portal_id}", web::get().to(helpdesk::portal_home))
        .route("/t/{tenant}/portal/{portal_id}/create/{request_type_id}", web::get().to(helpdesk::create_form))
        .route("/t/{tenant}/portal/{portal_id}/create/{request_type_id}", web::post().to(helpdesk::create_submit))
        .route("/t/{tenant}/portal/{portal_id}/requests", web::get().to(helpdesk::my_requests))
        .route("/t/{tenant}/portal/{portal_id}/requests/{key}", web::get().to(helpdesk::request))
        .route("/t/{tenant}/portal/{portal_id}/requests/{key}/comment", web::post().to(helpdesk::add_comment))
        .route("/admin/api-token", web::get().to(admin::api_token))
        .route("/admin/substitute-links", web::get().to(admin::substitute_links))
        .route("/static/portal/admin.js", web::get().to(admin::admin_js))
        .route("/api/v1/api-token", web::get().to(api_token::get))
        .route("/api/v1/api-token", web::put().to(api_token::put))
        .route("/api/v1/api-token", web::delete().to(api_token::delete))
        .route("/api/v1/api-token/test", web::post().to(api_token::test))
        .route("/api/v1/portals", web::get().to(portals::list));
}
