//! Static assets, compiled into the binary so it runs from any folder.

use actix_web::http::header::{CACHE_CONTROL, ContentType};
use actix_web::{HttpResponse, web};

const ASSETS: &[(&str, &str, &str)] = &[
    ("app.css", "text/css; charset=utf-8", include_str!("../../static/app.css")),
    ("admin.js", "text/javascript; charset=utf-8", include_str!("../../static/admin.js")),
    ("autosubmit.js", "text/javascript; charset=utf-8", include_str!("../../static/autosubmit.js")),
    ("portal.css", "text/css; charset=utf-8", include_str!("../../static/portal.css")),
];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/{name}", web::get().to(asset));
}

async fn asset(name: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|(n, ..)| *n == name.as_str()) {
        Some((_, mime, body)) => HttpResponse::Ok()
            .insert_header(ContentType(mime.parse().expect("valid mime")))
            .insert_header((CACHE_CONTROL, "public, max-age=3600"))
            .body(*body),
        None => HttpResponse::NotFound().finish(),
    }
}
