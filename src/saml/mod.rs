//! SAML 2.0 service provider: one SP per tenant, any number of IdPs per tenant.

pub mod acs;
pub mod authn_request;
pub mod error;
pub mod idp;
pub mod idp_import;
pub mod login;
pub mod logout_xml;
pub mod metadata;
pub mod pages;
pub mod precheck;
pub mod redirect;
pub mod refresh;
pub mod routes;
pub mod session;
pub mod slo;
pub mod sp;
pub mod sp_keys;
pub mod state;
pub mod validate;
pub mod xml_sign;
