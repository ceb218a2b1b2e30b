//! The generic from/to/body WhatsApp API under `/generic`.

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Value};

use crate::{errors, serve, Shared};

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/generic/whatsapp/messages", web::post().to(messages));
}

async fn messages(shared: web::Data<Shared>, req: HttpRequest, body: Bytes) -> HttpResponse {
    serve(&shared, "generic", &req, &body, || {
        send(&shared, &req, &body)
    })
    .await
}

fn send(shared: &Shared, req: &HttpRequest, body: &Bytes) -> HttpResponse {
    let credentials = &shared.credentials;
    if !credentials.generic_auth_header.is_empty() {
        let name = credentials.generic_auth_header.to_ascii_lowercase();
        let given = req
            .headers()
            .get(name.as_str())
            .and_then(|v| v.to_str().ok());
        if given != Some(credentials.generic_auth_value.as_str()) {
            return errors::generic(401, None);
        }
    }
    let Ok(Value::Object(message)) = serde_json::from_slice::<Value>(body) else {
        return errors::generic(400, Some("body must be a JSON object"));
    };
    let is_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    // "Only accepts numeric characters. Do not include the "+" sign."
    if !message
        .get("from")
        .and_then(Value::as_str)
        .is_some_and(is_digits)
    {
        return errors::generic(
            400,
            Some("from must be the sender's number, digits without \"+\""),
        );
    }
    // "Numbers are specified in E.164 format → ('+' and a country code)."
    let to = message
        .get("to")
        .and_then(Value::as_str)
        .and_then(|to| to.strip_prefix('+'));
    if !to.is_some_and(is_digits) {
        return errors::generic(400, Some("to must be in E.164 format: \"+\" and digits"));
    }
    // The API documents no response body.
    HttpResponse::Accepted().json(json!({}))
}
