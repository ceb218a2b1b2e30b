//! Meta WhatsApp Cloud API under `/meta`: send messages and create templates.

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use crate::{errors, serve, unique_digits, unique_id, Shared};

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/meta/{version}/{phone_number_id}/messages",
        web::post().to(messages),
    )
    .route(
        "/meta/{version}/{waba_id}/message_templates",
        web::post().to(templates),
    );
}

async fn messages(shared: web::Data<Shared>, req: HttpRequest, body: Bytes) -> HttpResponse {
    serve(&shared, "meta", &req, &body, || send(&shared, &req, &body)).await
}

async fn templates(shared: web::Data<Shared>, req: HttpRequest, body: Bytes) -> HttpResponse {
    serve(&shared, "meta", &req, &body, || {
        create_template(&shared, &req, &body)
    })
    .await
}

fn send(shared: &Shared, req: &HttpRequest, body: &Bytes) -> HttpResponse {
    if let Some(refusal) = check_token(shared, req) {
        return refusal;
    }
    let Some(message) = json_object(body) else {
        return invalid("The request body must be a JSON object.");
    };
    if message.get("messaging_product").and_then(Value::as_str) != Some("whatsapp") {
        return invalid("The parameter messaging_product is required and must be \"whatsapp\".");
    }
    let to = match message.get("to").and_then(Value::as_str) {
        Some(to) if !to.is_empty() && !to.starts_with('+') => to,
        _ => {
            return invalid(
                "The parameter to is required: the recipient's number, digits without \"+\".",
            )
        }
    };
    if !message.get("type").is_some_and(Value::is_string) {
        return invalid("The parameter type is required.");
    }
    HttpResponse::Ok().json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": to}],
        "messages": [{"id": format!("wamid.HBgL{}", unique_id())}],
    }))
}

fn create_template(shared: &Shared, req: &HttpRequest, body: &Bytes) -> HttpResponse {
    if let Some(refusal) = check_token(shared, req) {
        return refusal;
    }
    let Some(template) = json_object(body) else {
        return invalid("The request body must be a JSON object.");
    };
    for field in ["name", "language", "category"] {
        if !template.get(field).is_some_and(Value::is_string) {
            return invalid(&format!("The parameter {field} is required."));
        }
    }
    HttpResponse::Ok().json(json!({
        "id": unique_digits(),
        "status": "PENDING",
        "category": template["category"],
    }))
}

/// Graph's refusal of a missing or wrong bearer token, if it is.
fn check_token(shared: &Shared, req: &HttpRequest) -> Option<HttpResponse> {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    (token != Some(shared.credentials.meta_access_token.as_str())).then(|| errors::meta(190, None))
}

fn json_object(body: &Bytes) -> Option<Map<String, Value>> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(object)) => Some(object),
        _ => None,
    }
}

/// Graph's answer to a malformed request: code 100.
fn invalid(details: &str) -> HttpResponse {
    errors::meta(100, Some(details))
}
