//! The admin pages Jira shows in its iframe, and the admin JSON API they call.

mod idp_api;
mod pages;
mod sp_api;
mod tenant_api;

use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/get-started", web::get().to(pages::get_started))
        .route("/admin/configure", web::get().to(pages::configure))
        .route("/admin/identity-providers", web::get().to(pages::identity_providers))
        .route("/admin/service-provider", web::get().to(pages::service_provider))
        .route("/admin/login-activity", web::get().to(pages::login_activity))
        .route("/api/v1/tenant", web::get().to(tenant_api::get))
        .configure(sp_api::routes)
        .configure(idp_api::routes);
}
