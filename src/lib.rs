//! jsm-sso: SAML single sign-on for the customers of Jira Service Management Cloud.

pub mod admin;
pub mod commands;
pub mod config;
pub mod connect;
pub mod crypto;
pub mod jira;
pub mod net;
pub mod portal;
pub mod saml;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tenants;
pub mod web;
