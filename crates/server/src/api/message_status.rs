//! `GET /v1/messages/{id}` (docs/api.md): the stored message with its status history. Only
//! the client that sent it may read it; to anyone else it does not exist.

use crate::clock;
use crate::http::{ApiError, ClientName, RequestId};
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use serde_json::json;
use switchboard_core::ErrorCode;
use switchboard_store::MessageRecord;

#[utoipa::path(get, path = "/v1/messages/{id}", tag = "messages", security(("client_token" = [])),
    params(("id" = String, Path, description = "Switchboard's message id")),
    responses(
        (status = 200, description = "The message and its status history", body = crate::api::openapi::MessageView),
        (status = 401, description = "No or wrong client token (`unauthenticated`)", body = crate::api::openapi::ErrorResponse),
        (status = 404, description = "No such message for this client", body = crate::api::openapi::ErrorResponse),
        (status = 503, description = "The store is unavailable, or (for a send) the provider is (`provider_unavailable`)", body = crate::api::openapi::ErrorResponse),
    ))]
pub async fn get_message(
    id: web::Path<String>,
    client: ClientName,
    request_id: RequestId,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request_id = request_id.0;
    let message = state
        .store
        .message(&id)
        .await
        .map_err(|e| ApiError::store_unavailable(&e, &request_id))?
        .filter(|m| m.client == client.0)
        .ok_or_else(|| {
            ApiError::new(ErrorCode::NotFound, &request_id)
                .message(format!("No message {id} for this client."))
        })?;
    Ok(HttpResponse::Ok().json(view(&message)))
}

pub(crate) fn view(m: &MessageRecord) -> serde_json::Value {
    let events: Vec<_> = m
        .events
        .iter()
        .map(|e| {
            let mut event = json!({"status": e.status, "at": clock::rfc3339(e.at_ms)});
            if let Some(error) = &e.error {
                event["error"] = error.clone();
            }
            event
        })
        .collect();
    let mut view = json!({
        "id": m.id,
        "status": m.status,
        "to": m.to,
        "from": m.from,
        "type": m.message_type,
        "provider": m.provider,
        "endpoint": m.endpoint,
        "provider_message_id": m.provider_message_id,
        "refs": m.refs,
        "created_at": clock::rfc3339(m.created_at_ms),
        "updated_at": clock::rfc3339(m.updated_at_ms),
        "events": events,
    });
    if let Some(error) = &m.error {
        view["error"] = error.clone();
    }
    view
}
