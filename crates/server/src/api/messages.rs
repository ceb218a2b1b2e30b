//! `POST /v1/messages`: validate → route → (dry run: plan) → send with failover.

use crate::http::body::read_limited;
use crate::http::{ApiError, ClientName, RequestId};
use crate::send;
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use switchboard_core::{parse_message, validate, ValidationPolicy};

#[derive(Debug, Deserialize)]
pub struct SendQuery {
    #[serde(default)]
    dry_run: Option<String>,
}

pub async fn send_message(
    request: HttpRequest,
    payload: web::Payload,
    client: ClientName,
    request_id: RequestId,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request_id = request_id.0;
    let settings = state.settings();
    let dry_run = dry_run(&request, &request_id)?;
    let body = read_limited(
        &request,
        payload,
        settings.server.max_body_bytes,
        &request_id,
    )
    .await?;
    let invalid = |e| ApiError::invalid(e, &request_id);
    let message = parse_message(&body).map_err(invalid)?;
    let policy = ValidationPolicy {
        callback_hosts_allow: settings.webhooks.callback_hosts_allow.clone(),
    };
    validate(&message, &policy).map_err(invalid)?;
    let route = send::resolve_route(&settings, &message, &request_id)?;
    let message_id = ulid::Ulid::new().to_string();
    if dry_run {
        let plan = send::plan(&route, &message, &message_id, &request_id)?;
        return Ok(HttpResponse::Ok().json(plan));
    }
    tracing::info!(client = %client.0, message_id, r#type = message.message_type().as_str(), "sending");
    let result = send::send(
        &state.executor,
        &settings.resilience,
        &route,
        &message,
        &message_id,
        &request_id,
    )
    .await?;
    Ok(HttpResponse::Accepted().json(result))
}

fn dry_run(request: &HttpRequest, request_id: &str) -> Result<bool, ApiError> {
    let query = web::Query::<SendQuery>::from_query(request.query_string()).map_err(|_| {
        ApiError::invalid(
            switchboard_core::ValidationError::new("dry_run", "must be true or false"),
            request_id,
        )
    })?;
    match query.dry_run.as_deref() {
        None | Some("false") => Ok(false),
        Some("true") | Some("") => Ok(true),
        Some(_) => Err(ApiError::invalid(
            switchboard_core::ValidationError::new("dry_run", "must be true or false"),
            request_id,
        )),
    }
}
