//! `POST /v1/templates?provider=NAME`: create a template through a provider that can (Meta).

use crate::http::body::read_limited;
use crate::http::{ApiError, ClientName, RequestId};
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use switchboard_core::ValidationError;

#[derive(Debug, Deserialize)]
pub struct TemplateQuery {
    provider: Option<String>,
}

#[utoipa::path(post, path = "/v1/templates", tag = "providers", security(("client_token" = [])),
    params(("provider" = Option<String>, Query, description = "The provider instance; optional when only one can create templates")),
    request_body(content = serde_json::Value, description = "Meta's template-creation object", content_type = "application/json"),
    responses(
        (status = 201, description = "Created; in review", body = crate::api::openapi::TemplateCreated),
        (status = 400, description = "Invalid template or provider (`invalid_request`)", body = crate::api::openapi::ErrorResponse),
        (status = 401, description = "No or wrong client token (`unauthenticated`)", body = crate::api::openapi::ErrorResponse),
        (status = 413, description = "Body over `server.max_body_bytes` (`payload_too_large`)", body = crate::api::openapi::ErrorResponse),
        (status = 422, description = "Template refused", body = crate::api::openapi::ErrorResponse),
        (status = 402, description = "Insufficient funds at the provider", body = crate::api::openapi::ErrorResponse),
        (status = 403, description = "Not permitted", body = crate::api::openapi::ErrorResponse),
        (status = 429, description = "Rate limited", body = crate::api::openapi::ErrorResponse),
        (status = 502, description = "Provider error or refused credentials", body = crate::api::openapi::ErrorResponse),
        (status = 503, description = "The store is unavailable, or (for a send) the provider is (`provider_unavailable`)", body = crate::api::openapi::ErrorResponse),
        (status = 504, description = "No answer in time", body = crate::api::openapi::ErrorResponse),
    ))]
pub async fn create_template(
    request: HttpRequest,
    payload: web::Payload,
    client: ClientName,
    request_id: RequestId,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request_id = request_id.0;
    let settings = state.settings();
    let invalid = |field: &str, message: String| {
        ApiError::invalid(ValidationError::new(field, message), &request_id)
    };
    let query = web::Query::<TemplateQuery>::from_query(request.query_string())
        .map_err(|_| invalid("provider", "must be a provider name".into()))?;
    let template_providers: Vec<&str> = settings
        .providers
        .values()
        .filter(|p| p.templates.is_some())
        .map(|p| p.name.as_str())
        .collect();
    let name = match (&query.provider, template_providers.as_slice()) {
        (Some(name), _) => name.as_str(),
        (None, [only]) => only,
        (None, _) => {
            return Err(invalid(
                "provider",
                format!("is required: one of {}", template_providers.join(", ")),
            ));
        }
    };
    let target = settings
        .providers
        .get(name)
        .and_then(|p| p.templates.as_ref())
        .ok_or_else(|| {
            invalid(
                "provider",
                format!(
                    "{name} cannot create templates (providers that can: {})",
                    template_providers.join(", ")
                ),
            )
        })?;
    let body = read_limited(
        &request,
        payload,
        settings.server.max_body_bytes,
        &request_id,
    )
    .await?;
    let template: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| invalid("$", format!("the body is not valid JSON: {e}")))?;
    let provider_request = target
        .render(&template)
        .map_err(|why| invalid("provider", format!("provider {name} {why}")))?;
    target
        .validate(&template)
        .map_err(|e| ApiError::invalid(e, &request_id))?;
    tracing::info!(client = %client.0, provider = name, request_id = %request_id, "creating template");
    let result = state
        .executor
        .exchange(&provider_request, target.timeout(), |response| {
            target.classify(response)
        })
        .await;
    match result {
        Ok(created) => Ok(HttpResponse::Created().json(created)),
        Err(failure) => Err(ApiError::from_provider(&failure, name, name, &request_id)),
    }
}
