//! One span per request with an id, method and *path* (never the query: Jira puts JWTs there), and one
//! line when it ends. The id is returned in `X-Request-Id`.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

pub async fn request_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = crate::crypto::random::token::<9>();
    let span = tracing::info_span!("request", id = %request_id, method = %req.method(), path = %req.path());
    let started = Instant::now();
    async move {
        let mut res = next.call(req).await?;
        tracing::info!(status = res.status().as_u16(), ms = started.elapsed().as_millis() as u64, "done");
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            res.headers_mut().insert(HeaderName::from_static("x-request-id"), v);
        }
        Ok(res)
    }
    .instrument(span)
    .await
}
