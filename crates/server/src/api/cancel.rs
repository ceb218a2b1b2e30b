//! `POST /v1/messages/{id}/cancel` (docs/async.md): takes a queued message back. It wins only
//! while no worker is handing the message over; the store decides, atomically, so a cancel and
//! a hand-over never both happen.

use crate::api::message_status::view;
use crate::clock;
use crate::http::{ApiError, ClientName, RequestId};
use crate::queue;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use switchboard_core::ErrorCode;
use switchboard_store::Canceled;

#[utoipa::path(post, path = "/v1/messages/{id}/cancel", tag = "messages", security(("client_token" = [])),
    params(("id" = String, Path, description = "Switchboard's message id")),
    responses(
        (status = 200, description = "Canceled: the message, status `canceled`; it will never be handed to a provider", body = crate::api::openapi::MessageView),
        (status = 401, description = "No or wrong client token (`unauthenticated`)", body = crate::api::openapi::ErrorResponse),
        (status = 404, description = "No such message for this client", body = crate::api::openapi::ErrorResponse),
        (status = 409, description = "The message is no longer queued: a provider has it or it is final (`not_cancelable`)", body = crate::api::openapi::ErrorResponse),
        (status = 503, description = "The store is unavailable", body = crate::api::openapi::ErrorResponse),
    ))]
pub async fn cancel_message(
    id: web::Path<String>,
    client: ClientName,
    request_id: RequestId,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request_id = request_id.0;
    let canceled = state
        .store
        .cancel_queued(&id, &client.0, clock::now_ms())
        .await
        .map_err(|e| ApiError::store_unavailable(&e, &request_id))?;
    match canceled {
        Canceled::Canceled(message) => {
            let body = view(&message);
            queue::publish_status(&state, *message, None).await;
            Ok(HttpResponse::Ok().json(body))
        }
        Canceled::NotCancelable { status } => Err(ApiError::new(
            ErrorCode::NotCancelable,
            &request_id,
        )
        .message(format!(
            "Message {id} is no longer queued (status {status}, or a worker is handing it to a provider); it cannot be canceled."
        ))),
        Canceled::NotFound => Err(ApiError::new(ErrorCode::NotFound, &request_id)
            .message(format!("No message {id} for this client."))),
    }
}
