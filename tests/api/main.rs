//! The one integration test binary. Each scenario runs on SQLite, and on PostgreSQL when
//! `TEST_DATABASE_URL` is set (a fresh database per test).

mod helpers;

mod admin_ui;
mod commands;
mod connect_auth;
mod connect_lifecycle;
mod descriptor;
mod http_basics;
mod jira_client;
mod portal;
mod portal_e2e;
mod saml_acs;
mod saml_admin_api;
mod saml_e2e;
mod saml_slo;
