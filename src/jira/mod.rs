//! Calls to a tenant's Jira site, as the app (Connect JWT) or as a service account (API token).

mod client;

pub use client::{JiraAuth, JiraClient, JiraError, JiraResponse};
