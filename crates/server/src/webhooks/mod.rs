//! Webhooks in (docs/webhooks-and-events.md): `GET /webhooks/{instance}` answers Meta's subscription
//! handshake; `POST /webhooks/{instance}` checks the provider's proof over the raw bytes,
//! parses the body with the provider's adapter, and hands each event to [`correlate`].

mod correlate;

use crate::config::{ProviderKind, WebhookProof};
use crate::http::body::read_limited;
use crate::http::{ApiError, RequestId};
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use switchboard_core::event::{MalformedWebhook, ProviderEvent};
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

#[derive(Debug, Deserialize)]
pub struct Handshake {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// Meta's subscription check: the challenge back when the verify token matches, else 403.
async fn handshake(
    instance: web::Path<String>,
    query: web::Query<Handshake>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let settings = state.settings();
    let expected = match settings
        .providers
        .get(instance.as_str())
        .map(|p| &p.webhook_proof)
    {
        Some(WebhookProof::Meta {
            verify_token: Some(token),
            ..
        }) => token,
        _ => return HttpResponse::Forbidden().finish(),
    };
    let query = query.into_inner();
    match (query.mode.as_deref(), query.verify_token, query.challenge) {
        (Some("subscribe"), Some(token), Some(challenge)) if same(&token, expected) => {
            HttpResponse::Ok()
                .content_type("text/plain")
                .body(challenge)
        }
        _ => HttpResponse::Forbidden().finish(),
    }
}

async fn receive(
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
    if !proven(&request, &provider.webhook_proof, &body) {
        tracing::warn!(instance = %instance, "webhook refused: proof missing or wrong");
        return Err(ApiError::new(ErrorCode::Unauthenticated, &request_id)
            .message("The webhook's signature or callback token is missing or does not match."));
    }
    let events = parse(provider.kind, &body).map_err(|MalformedWebhook(why)| {
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

fn parse(kind: ProviderKind, body: &[u8]) -> Result<Vec<ProviderEvent>, MalformedWebhook> {
    match kind {
        ProviderKind::Meta => switchboard_meta::webhook::parse(body),
        ProviderKind::Kaleyra => switchboard_kaleyra::webhook::parse(body),
        ProviderKind::Generic => switchboard_generic::webhook::parse(body),
    }
}

/// Meta: `X-Hub-Signature-256` over the exact bytes. Kaleyra and generic: `X-Callback-Token`.
/// An instance without the secret configured accepts no webhook.
fn proven(request: &HttpRequest, proof: &WebhookProof, body: &[u8]) -> bool {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    match proof {
        WebhookProof::Meta {
            app_secret: Some(secret),
            ..
        } => switchboard_meta::webhook::verify_signature(
            secret.expose_secret().as_bytes(),
            body,
            header("x-hub-signature-256"),
        ),
        WebhookProof::CallbackToken(Some(token)) => {
            header("x-callback-token").is_some_and(|given| same(given, token))
        }
        _ => false,
    }
}

fn same(given: &str, expected: &SecretString) -> bool {
    given
        .as_bytes()
        .ct_eq(expected.expose_secret().as_bytes())
        .into()
}
