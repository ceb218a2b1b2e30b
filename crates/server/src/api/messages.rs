//! `POST /v1/messages`: validate → route → (dry run: plan) → send with failover, with
//! `Idempotency-Key` replay.

use crate::http::body::read_limited;
use crate::http::{ApiError, ClientName, RequestId};
use crate::idempotency::{Claim, StoredResponse, KEY_MAX_LEN};
use crate::send;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::Deserialize;
use switchboard_core::{parse_message, validate, ErrorCode, ValidationError, ValidationPolicy};

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
    let key = idempotency_key(&request, &request_id)?;
    let body = read_limited(
        &request,
        payload,
        settings.server.max_body_bytes,
        &request_id,
    )
    .await?;

    // A dry run sends nothing, so there is nothing to make idempotent.
    let (Some(key), false) = (key, dry_run) else {
        return handle(&state, &client, &body, dry_run, &request_id).await;
    };
    // Bodies that are not JSON compare by their bytes.
    let fingerprint = serde_json::from_slice(&body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into_owned()));
    let reservation = match state.idempotency.claim(&client.0, &key, fingerprint) {
        Claim::Fresh(reservation) => reservation,
        Claim::Replay(stored) => return Ok(replay(stored)),
        Claim::InFlight => return Err(ApiError::new(ErrorCode::IdempotencyKeyInUse, &request_id)),
        Claim::BodyMismatch => {
            return Err(ApiError::new(ErrorCode::IdempotencyKeyReused, &request_id))
        }
    };
    let stored = match handle(&state, &client, &body, false, &request_id).await {
        Ok(response) => stored_from(response).await,
        Err(error) => StoredResponse {
            status: error.status_code().as_u16(),
            body: error.to_json().to_string().into_bytes(),
            retry_after_secs: error.retry_after_header(),
        },
    };
    reservation.complete(stored.clone());
    Ok(respond(stored))
}

/// The request itself, once the body is read.
async fn handle(
    state: &AppState,
    client: &ClientName,
    body: &[u8],
    dry_run: bool,
    request_id: &str,
) -> Result<HttpResponse, ApiError> {
    let settings = state.settings();
    let invalid = |e| ApiError::invalid(e, request_id);
    let message = parse_message(body).map_err(invalid)?;
    let policy = ValidationPolicy {
        callback_hosts_allow: settings.webhooks.callback_hosts_allow.clone(),
    };
    validate(&message, &policy).map_err(invalid)?;
    let route = send::resolve_route(&settings, &message, request_id)?;
    let message_id = ulid::Ulid::new().to_string();
    if dry_run {
        let plan = send::plan(&route, &message, &message_id, request_id)?;
        return Ok(HttpResponse::Ok().json(plan));
    }
    tracing::info!(client = %client.0, message_id, r#type = message.message_type().as_str(), "sending");
    let result = send::send(
        state,
        &settings.resilience,
        &route,
        &message,
        &message_id,
        request_id,
    )
    .await?;
    Ok(HttpResponse::Accepted().json(result))
}

async fn stored_from(response: HttpResponse) -> StoredResponse {
    let status = response.status().as_u16();
    let body = actix_web::body::to_bytes(response.into_body())
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    StoredResponse {
        status,
        body,
        retry_after_secs: None,
    }
}

fn respond(stored: StoredResponse) -> HttpResponse {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    response.content_type("application/json");
    if let Some(secs) = stored.retry_after_secs {
        response.insert_header(("Retry-After", secs.to_string()));
    }
    response.body(stored.body)
}

fn replay(stored: StoredResponse) -> HttpResponse {
    let mut response = respond(stored);
    response.headers_mut().insert(
        actix_web::http::header::HeaderName::from_static("idempotent-replayed"),
        actix_web::http::header::HeaderValue::from_static("true"),
    );
    response
}

fn idempotency_key(request: &HttpRequest, request_id: &str) -> Result<Option<String>, ApiError> {
    let Some(value) = request.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let bad = |message: &str| {
        ApiError::invalid(ValidationError::new("Idempotency-Key", message), request_id)
    };
    let key = value.to_str().map_err(|_| bad("must be printable ASCII"))?;
    if key.is_empty() || key.len() > KEY_MAX_LEN {
        return Err(bad("must be 1 to 255 characters"));
    }
    Ok(Some(key.to_string()))
}

fn dry_run(request: &HttpRequest, request_id: &str) -> Result<bool, ApiError> {
    let bad = || {
        ApiError::invalid(
            ValidationError::new("dry_run", "must be true or false"),
            request_id,
        )
    };
    let query = web::Query::<SendQuery>::from_query(request.query_string()).map_err(|_| bad())?;
    match query.dry_run.as_deref() {
        None | Some("false") => Ok(false),
        Some("true") | Some("") => Ok(true),
        Some(_) => Err(bad()),
    }
}
