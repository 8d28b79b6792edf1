use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::connect::auth::{AdminApi, JiraUser};
use crate::startup::AppState;

#[derive(Serialize)]
struct TenantInfo {
    site_name: String,
    site_url: String,
    help_center_url: Option<String>,
    public_id: String,
    customer_base_url: String,
    status: &'static str,
}

/// `GET /api/v1/tenant`: the site this admin is configuring.
pub async fn get(state: web::Data<AppState>, user: JiraUser<AdminApi>) -> HttpResponse {
    let t = &user.tenant;
    HttpResponse::Ok().json(TenantInfo {
        site_name: t.site_name(),
        site_url: t.product_base_url.as_str().trim_end_matches('/').to_string(),
        help_center_url: t.help_center_url.as_ref().map(|u| u.as_str().trim_end_matches('/').to_string()),
        public_id: t.public_id.to_string(),
        customer_base_url: state.settings.base_url.join(&format!("/t/{}", t.public_id)),
        status: t.status.as_str(),
    })
}
