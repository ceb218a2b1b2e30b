//! `POST /v1/messages/batch` (docs/async.md): up to [`BATCH_MAX`] messages, always queued. Each
//! is validated on its own; the valid ones are queued in one store transaction, even when others
//! are not; the answer lists each one's id or error, in input order.

use crate::api::answer_once::{answer_once, idempotency_key};
use crate::api::messages::{new_message, prepare};
use crate::api::parse_json;
use crate::http::body::read_limited;
use crate::http::error::ErrorBody;
use crate::http::{ApiError, ClientName, RequestId};
use crate::queue::{self, Queued};
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_core::ValidationError;

/// Most messages in one batch.
pub const BATCH_MAX: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchRequest {
    messages: Vec<Value>,
}

/// The 202 body of a batch.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchAnswer {
    /// One per message, in input order.
    pub results: Vec<BatchResult>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum BatchResult {
    Queued(Queued),
    Refused { error: Box<ErrorBody> },
}

#[utoipa::path(post, path = "/v1/messages/batch", tag = "messages", security(("client_token" = [])),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Up to 255 characters: applies to the whole batch"),
    ),
    request_body(content = crate::api::openapi::BatchRequestDoc, content_type = "application/json"),
    responses(
        (status = 202, description = "Each message queued or refused, in input order", body = BatchAnswer),
        (status = 400, description = "Not a batch: `messages` missing, empty or over 1000 (`invalid_request`)", body = crate::api::openapi::ErrorResponse),
        (status = 401, description = "No or wrong client token (`unauthenticated`)", body = crate::api::openapi::ErrorResponse),
        (status = 409, description = "Same Idempotency-Key, first batch still in flight", body = crate::api::openapi::ErrorResponse),
        (status = 413, description = "Body over `server.max_batch_bytes` (`payload_too_large`)", body = crate::api::openapi::ErrorResponse),
        (status = 422, description = "Idempotency-Key reused with another body", body = crate::api::openapi::ErrorResponse),
        (status = 503, description = "The store is unavailable: nothing was queued", body = crate::api::openapi::ErrorResponse),
    ))]
pub async fn send_batch(
    request: HttpRequest,
    payload: web::Payload,
    client: ClientName,
    request_id: RequestId,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request_id = request_id.0;
    let key = idempotency_key(&request, &request_id)?;
    let limit = state.settings().server.max_batch_bytes;
    let body = read_limited(&request, payload, limit, &request_id).await?;
    let work = {
        let state = state.clone();
        let client = client.clone();
        let body = body.clone();
        let request_id = request_id.clone();
        // The batch's key is completed on its own, after the batch is queued.
        |_key| async move { queue_batch(&state, &client, &body, &request_id).await }
    };
    answer_once(state, client, key, &body, &request_id, None, work).await
}

async fn queue_batch(
    state: &AppState,
    client: &ClientName,
    body: &[u8],
    request_id: &str,
) -> Result<BatchAnswer, ApiError> {
    let batch: BatchRequest = parse_json(body, request_id)?;
    if batch.messages.is_empty() || batch.messages.len() > BATCH_MAX {
        return Err(ApiError::invalid(
            ValidationError::new("messages", format!("must hold 1 to {BATCH_MAX} messages")),
            request_id,
        ));
    }
    let settings = state.settings();
    let mut entries = Vec::with_capacity(batch.messages.len());
    let mut results = Vec::with_capacity(batch.messages.len());
    for message in &batch.messages {
        let bytes = serde_json::to_vec(message).unwrap_or_default();
        match prepare(&settings, &bytes, request_id) {
            Ok(prepared) => {
                let id = ulid::Ulid::new().to_string();
                let entry = queue::entry(
                    new_message(&prepared, &id, &client.0),
                    &bytes,
                    &prepared.schedule,
                );
                results.push(BatchResult::Queued(queue::queued(
                    &entry,
                    &prepared.schedule,
                )));
                entries.push(entry);
            }
            Err(error) => results.push(BatchResult::Refused { error: error.body }),
        }
    }
    if !entries.is_empty() {
        queue::enqueue(state, &entries)
            .await
            .map_err(|e| ApiError::store_unavailable(&e, request_id))?;
    }
    Ok(BatchAnswer { results })
}
