//! SAML 2.0 service provider: one SP per tenant, any number of IdPs per tenant.

pub mod idp;
pub mod metadata;
pub mod precheck;
pub mod redirect;
pub mod sp;
pub mod sp_keys;
pub mod state;
