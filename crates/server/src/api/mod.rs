//! The REST API (docs/api.md).

mod answer_once;
mod batch;
mod call_links;
mod cancel;
mod health;
mod message_status;
mod messages;
pub mod openapi;
mod providers;
mod templates;

use crate::http::{ApiError, RequestId};
use actix_web::{web, HttpRequest, HttpResponse};
use switchboard_core::ErrorCode;
use utoipa::OpenApi;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/", web::get().to(health::index))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(providers::metrics))
        .route("/v1/providers", web::get().to(providers::list_providers))
        .route("/v1/messages", web::post().to(messages::send_message))
        .route("/v1/messages/batch", web::post().to(batch::send_batch))
        .route(
            "/v1/messages/{id}",
            web::get().to(message_status::get_message),
        )
        .route(
            "/v1/messages/{id}/cancel",
            web::post().to(cancel::cancel_message),
        )
        .route(
            "/v1/call-links",
            web::post().to(call_links::create_call_link),
        )
        .route("/v1/templates", web::post().to(templates::create_template))
        .route("/openapi.json", web::get().to(openapi_json))
        .service(
            utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}")
                .url("/openapi.json", openapi::ApiDoc::openapi()),
        );
}

/// The OpenAPI document, generated from the handlers.
async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(openapi::ApiDoc::openapi())
}

/// Unknown paths and methods get the one error shape too.
pub async fn not_found(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(
        ApiError::new(ErrorCode::NotFound, &RequestId::of(&request)).message(format!(
            "No route for {} {}.",
            request.method(),
            request.path()
        )),
    )
}

/// Parses a JSON body into `T`, naming the offending field on failure.
fn parse_json<T: serde::de::DeserializeOwned>(
    body: &[u8],
    request_id: &str,
) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(
            switchboard_core::ValidationError::new("$", format!("the body is not valid JSON: {e}")),
            request_id,
        )
    })?;
    switchboard_core::from_value_at("", value).map_err(|e| ApiError::invalid(e, request_id))
}
