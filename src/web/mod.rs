//! HTTP plumbing shared by every capability: errors, security headers, request logging, health checks,
//! static assets.

mod assets;
mod error;
mod headers;
mod health;
mod request_log;

pub use assets::routes as asset_routes;
pub use error::{ErrorFormat, WebError};
pub use headers::{iframe_csp, security_headers};
pub use health::routes as health_routes;
pub use request_log::request_log;
