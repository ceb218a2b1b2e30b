//! Webhooks in (docs/webhooks-and-events.md): `GET /webhooks/{instance}` answers a provider's
//! subscription handshake; `POST /webhooks/{instance}` checks the provider's proof over the raw
//! bytes, parses the body — both the provider crate's work — and hands each event to
//! [`correlate`].

mod correlate;

use crate::http::body::read_limited;
use crate::http::{ApiError, RequestId};
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use switchboard_core::event::MalformedWebhook;
use switchboard_core::{ErrorCode, ValidationError};

/// Webhook bodies may batch many updates; they get more room than API requests.
pub const MAX_WEBHOOK_BYTES: usize = 1024 * 1024;

pub fn routes(config: &mut web::ServiceConfig) {
    config.service(
        web::resource("/webhooks/{instance}")
            .route(web::get().to(handshake))
            .route(web::post().to(receive)),
    );
}

/// The provider's subscription check (Meta's `hub.challenge`): 200 with the answer the
/// provider's crate gives, else 403.
#[utoipa::path(get, path = "/webhooks/{instance}", tag = "webhooks",
    params(("instance" = String, Path, description = "The provider instance (table key under [providers])")),
    responses(
        (status = 200, description = "The provider's challenge, echoed (Meta's hub.challenge)", body = String, content_type = "text/plain"),
        (status = 403, description = "No handshake for this instance, or a wrong verify token"),
    ))]
pub async fn handshake(
    instance: web::Path<String>,
    query: web::Query<Vec<(String, String)>>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let settings = state.settings();
    let answer = settings
        .providers
        .get(instance.as_str())
        .and_then(|provider| provider.webhooks.handshake(&query));
    match answer {
        Some(answer) => HttpResponse::Ok().content_type("text/plain").body(answer),
        None => HttpResponse::Forbidden().finish(),
    }
}

#[utoipa::path(post, path = "/webhooks/{instance}", tag = "webhooks",
    params(("instance" = String, Path, description = "The provider instance (table key under [providers])")),
    request_body(content = serde_json::Value, description = "The provider's webhook body, proven by its signature or callback token", content_type = "application/json"),
    responses(
        (status = 200, description = "Proven and handled", body = crate::api::openapi::WebhookAccepted),
        (status = 400, description = "Not the provider's envelope", body = crate::api::openapi::ErrorResponse),
        (status = 401, description = "Proof missing or wrong", body = crate::api::openapi::ErrorResponse),
        (status = 404, description = "No such provider instance", body = crate::api::openapi::ErrorResponse),
        (status = 413, description = "Body over 1 MiB", body = crate::api::openapi::ErrorResponse),
        (status = 503, description = "The store is unavailable", body = crate::api::openapi::ErrorResponse),
    ))]
pub async fn receive(
    request: HttpRequest,
    instance: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let request_id = request_id.0;
    let body = read_limited(&request, payload, MAX_WEBHOOK_BYTES, &request_id).await?;
    let settings = state.settings();
    let Some(provider) = settings.providers.get(instance.as_str()) else {
        return Err(ApiError::new(ErrorCode::NotFound, &request_id)
            .message(format!("No provider instance named {instance}.")));
    };
    let header = |name: &str| {
        let value = request.headers().get(name)?;
        value.to_str().ok().map(str::to_string)
    };
    if !provider.webhooks.is_proven(&header, &body) {
        tracing::warn!(instance = %instance, request_id = %request_id, "webhook refused: proof missing or wrong");
        return Err(ApiError::new(ErrorCode::Unauthenticated, &request_id)
            .message("The webhook's signature or callback token is missing or does not match."));
    }
    let events = provider
        .webhooks
        .parse(&body)
        .map_err(|MalformedWebhook(why)| {
            ApiError::invalid(ValidationError::new("$", why), &request_id)
        })?;
    let mut new_events = 0;
    for event in events {
        let published = correlate::handle(&state, &settings, &instance, event)
            .await
            .map_err(|e| ApiError::store_unavailable(&e, &request_id))?;
        if published {
            new_events += 1;
        }
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({"events": new_events})))
}
