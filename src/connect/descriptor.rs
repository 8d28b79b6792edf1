//! `GET /atlassian-connect.json`: the descriptor at the repository root, with this deployment's base
//! URL, app key and name filled in.

use actix_web::{HttpResponse, web};
use serde_json::Value;

use crate::config::Settings;
use crate::startup::AppState;

const TEMPLATE: &str = include_str!("../../atlassian-connect.json");

pub fn render(settings: &Settings) -> Value {
    let mut doc: Value = serde_json::from_str(TEMPLATE).expect("atlassian-connect.json is valid JSON");
    fill(&mut doc, settings);
    doc
}

fn fill(v: &mut Value, s: &Settings) {
    match v {
        Value::String(text) => {
            *text = text
                .replace("{{baseUrl}}", s.base_url.as_str())
                .replace("{{appKey}}", &s.app_key)
                .replace("{{appName}}", &s.app_name);
        }
        Value::Array(items) => items.iter_mut().for_each(|i| fill(i, s)),
        Value::Object(map) => map.values_mut().for_each(|i| fill(i, s)),
        _ => {}
    }
}

pub async fn get(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(render(&state.settings))
}
