//! Kaleyra WhatsApp API v2 pods under `/kaleyra/{pod}`.

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Value};

use crate::{errors, serve, unique_id, Shared, KALEYRA_PODS};

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/kaleyra/{pod}/v2/{sid}/whatsapp/{phone_number}/messages",
        web::post().to(messages),
    );
}

async fn messages(
    shared: web::Data<Shared>,
    req: HttpRequest,
    // Path decodes percent-escapes, so `%2B91…` and `+91…` both arrive as `+91…`.
    path: web::Path<(String, String, String)>,
    body: Bytes,
) -> HttpResponse {
    let (pod, _sid, phone_number) = path.into_inner();
    if !KALEYRA_PODS.contains(&pod.as_str()) {
        return HttpResponse::NotFound().finish();
    }
    let endpoint = format!("kaleyra/{pod}");
    serve(&shared, &endpoint, &req, &body, || {
        send(&shared, &pod, &phone_number, &req, &body)
    })
    .await
}

/// The documented checks, in the order the error list implies: credentials, sender number,
/// payload.
fn send(
    shared: &Shared,
    pod: &str,
    phone_number: &str,
    req: &HttpRequest,
    body: &Bytes,
) -> HttpResponse {
    let api_key = req.headers().get("api-key").and_then(|v| v.to_str().ok());
    if api_key.is_none()
        || api_key
            != shared
                .credentials
                .kaleyra_api_keys
                .get(pod)
                .map(String::as_str)
    {
        return errors::kaleyra("RBC001");
    }
    let digits = phone_number.strip_prefix('+').unwrap_or_default();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return errors::kaleyra("WA401");
    }
    // "The only allowed value is application/json."
    let json_content = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    let payload: Option<Value> = serde_json::from_slice(body).ok();
    let has_messaging_object = payload
        .as_ref()
        .and_then(|p| p.get("messaging_object"))
        .is_some_and(Value::is_object);
    if !json_content || !has_messaging_object {
        return errors::kaleyra("WA400");
    }
    HttpResponse::Accepted().json(json!({
        "code": "WA202",
        "message": "Request Accepted",
        "data": {"message_id": format!("A{}", unique_id())},
        "error": {},
    }))
}
