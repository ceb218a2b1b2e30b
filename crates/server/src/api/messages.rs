//! `POST /v1/messages`: validate → route → (dry run: plan) → send with failover, with
//! `Idempotency-Key` replay.

use crate::api::answer_once::{answer_once, idempotency_key, HeldKey};
use crate::clock;
use crate::config::Settings;
use crate::http::body::read_limited;
use crate::http::{ApiError, ClientName, RequestId};
use crate::queue::{self, Queued};
use crate::send;
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use switchboard_core::event::MessageStatus;
use switchboard_core::message::RecipientType;
use switchboard_core::phone::with_plus;
use switchboard_core::{
    parse_message, schedule, validate, OutboundMessage, Schedule, ValidationError, ValidationPolicy,
};
use switchboard_store::{NewMessage, SendOutcome};

#[derive(Debug, Deserialize)]
pub struct SendQuery {
    #[serde(default)]
    dry_run: Option<String>,
}

#[utoipa::path(post, path = "/v1/messages", tag = "messages", security(("client_token" = [])),
    params(
        ("dry_run" = Option<bool>, Query, description = "Validate, route and translate without sending"),
        ("Idempotency-Key" = Option<String>, Header, description = "Up to 255 characters: the first final answer is kept 24 h and replayed"),
        ("Prefer" = Option<String>, Header, description = "`respond-async`: queue the message and answer 202 `queued` at once"),
    ),
    request_body(content = crate::api::openapi::MessageRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Dry run: each endpoint's exact request", body = crate::api::openapi::DryRunPlan),
        (status = 202, description = "A provider accepted the message, or (asynchronous) it is queued", body = Answer),
        (status = 400, description = "Invalid message; `field` names the JSON path (`invalid_request`)", body = crate::api::openapi::ErrorResponse),
        (status = 401, description = "No or wrong client token (`unauthenticated`)", body = crate::api::openapi::ErrorResponse),
        (status = 409, description = "Same Idempotency-Key, first request still in flight", body = crate::api::openapi::ErrorResponse),
        (status = 413, description = "Body over `server.max_body_bytes` (`payload_too_large`)", body = crate::api::openapi::ErrorResponse),
        (status = 422, description = "Unknown sender, unsupported by every endpoint, recipient or template refused, key reused with another body", body = crate::api::openapi::ErrorResponse),
        (status = 402, description = "Insufficient funds at the provider", body = crate::api::openapi::ErrorResponse),
        (status = 403, description = "Sender not permitted or account restricted", body = crate::api::openapi::ErrorResponse),
        (status = 429, description = "Rate limited; `Retry-After` says how long to wait", body = crate::api::openapi::ErrorResponse),
        (status = 502, description = "The provider refused the credentials or answered with an error", body = crate::api::openapi::ErrorResponse),
        (status = 503, description = "The store is unavailable, or (for a send) the provider is (`provider_unavailable`)", body = crate::api::openapi::ErrorResponse),
        (status = 504, description = "No answer within `timeout_ms`: the outcome is unknown", body = crate::api::openapi::ErrorResponse),
    ))]
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
    let respond_async = prefers_async(&request);
    let key = idempotency_key(&request, &request_id)?;
    let body = read_limited(
        &request,
        payload,
        settings.server.max_body_bytes,
        &request_id,
    )
    .await?;
    if dry_run {
        // A dry run sends and stores nothing, so there is nothing to make idempotent.
        return plan(&state, &body, &request_id);
    }
    // Named before the key is claimed: the key's answer can then be kept in its record.
    let message_id = ulid::Ulid::new().to_string();
    // Boxed: the send's state machine is kilobytes, and unboxed it was copied at every move
    // (into `answer_once`, into its task): memmove was 6% of the gateway's CPU.
    let work = {
        let state = state.clone();
        let client = client.clone();
        let body = body.clone();
        let request_id = request_id.clone();
        let message_id = message_id.clone();
        |key| {
            Box::pin(async move {
                let ids = Ids {
                    message: &message_id,
                    request: &request_id,
                };
                handle(&state, &client, key, &body, ids, respond_async).await
            })
        }
    };
    let message_id = Some(message_id.as_str());
    answer_once(state, client, key, &body, &request_id, message_id, work).await
}

/// A 202: sent (a provider accepted it), or queued (`Prefer: respond-async` or `send_at`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Answer {
    Sent(send::SendResult),
    Queued(Queued),
}

/// `Prefer: respond-async` (RFC 7240), among any other preferences.
fn prefers_async(request: &HttpRequest) -> bool {
    request
        .headers()
        .get_all("prefer")
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|preference| {
            let name = preference.split(';').next().unwrap_or_default();
            name.trim().eq_ignore_ascii_case("respond-async")
        })
}

/// A message ready to send or queue.
pub struct Prepared {
    pub message: OutboundMessage,
    pub route: send::Route,
    pub schedule: Schedule,
    /// When it was checked (unix ms): its creation time.
    pub at_ms: i64,
}

/// Parses, validates, schedules and routes.
pub fn prepare(settings: &Settings, body: &[u8], request_id: &str) -> Result<Prepared, ApiError> {
    let invalid = |e| ApiError::invalid(e, request_id);
    let message = parse_message(body).map_err(invalid)?;
    let policy = ValidationPolicy {
        callback_hosts_allow: settings.webhooks.callback_hosts_allow.clone(),
    };
    validate(&message, &policy).map_err(invalid)?;
    let at_ms = clock::now_ms();
    let schedule = schedule(&message.envelope, at_ms).map_err(invalid)?;
    let route =
        send::resolve_route(settings, &message).map_err(|e| ApiError::from_route(e, request_id))?;
    Ok(Prepared {
        message,
        route,
        schedule,
        at_ms,
    })
}

fn plan(state: &AppState, body: &[u8], request_id: &str) -> Result<HttpResponse, ApiError> {
    let Prepared { message, route, .. } = prepare(&state.settings(), body, request_id)?;
    let message_id = ulid::Ulid::new().to_string();
    let plan = send::plan(&route, &message, &message_id)
        .map_err(|failure| ApiError::from_send(failure, request_id))?;
    Ok(HttpResponse::Ok().json(plan))
}

/// A request's id and the id of the message it sends.
struct Ids<'a> {
    message: &'a str,
    request: &'a str,
}

/// Queues the message (asked for, or scheduled), or records it, sends it with failover and
/// records the outcome (with the answer kept under `key`, when there is one).
async fn handle(
    state: &AppState,
    client: &ClientName,
    key: Option<HeldKey>,
    body: &[u8],
    ids: Ids<'_>,
    respond_async: bool,
) -> Result<Answer, ApiError> {
    let Ids {
        message: message_id,
        request: request_id,
    } = ids;
    let settings = state.settings();
    let prepared = prepare(&settings, body, request_id)?;
    let record = new_message(&prepared, message_id, &client.0);
    if respond_async || prepared.schedule.send_at_ms.is_some() {
        let entry = queue::entry(record, body, &prepared.schedule);
        queue::enqueue(state, std::slice::from_ref(&entry))
            .await
            .map_err(|e| ApiError::store_unavailable(&e, request_id))?;
        return Ok(Answer::Queued(queue::queued(&entry, &prepared.schedule)));
    }
    let Prepared { message, route, .. } = prepared;
    tracing::debug!(client = %client.0, message_id, r#type = message.message_type().as_str(), "sending");
    // Recorded once, after the send, with its outcome; first only while store writes fail, so
    // that a store that cannot take the record answers 503 before anything is sent
    // (`recording.rs`).
    let record_first = state.store_health.failing();
    if record_first {
        let inserted = state.store.insert_message(&record).await;
        state.store_health.wrote(inserted.is_ok());
        inserted.map_err(|e| ApiError::store_unavailable(&e, request_id))?;
    }
    let in_flight = (!record_first).then(|| state.sends_in_flight.begin(message_id));
    // Not held back by pacing, but counted against the sender's budget.
    state.sync_pacing.count(
        &route.sender.number,
        queue::interval_us(route.sender.max_per_second),
    );
    let result = send::send(
        state.sending(),
        &settings.resilience,
        &route,
        &message,
        message_id,
    )
    .await
    .map_err(|failure| ApiError::from_send(failure, request_id));
    let outcome = outcome(&result);
    let answer = result.map(Answer::Sent);
    let mut late_key_answer = None;
    let recorded = if record_first {
        state.store.record_outcome(message_id, &outcome).await
    } else {
        // The answer kept under the key is committed with the record, in one write.
        let kept = key.as_ref().and_then(|key| key.answer(&answer));
        let key_answer = key.as_ref().zip(kept.as_ref());
        let recorded = state
            .store
            .record_sent(&record, &outcome, key_answer.map(|(k, r)| k.for_store(r)))
            .await;
        match (&recorded, &key, kept) {
            (Ok(()), Some(key), Some(kept)) => key.kept(kept),
            (Err(_), Some(key), Some(kept)) => late_key_answer = Some(key.late_answer(kept)),
            _ => {}
        }
        recorded
    };
    state.store_health.wrote(recorded.is_ok());
    drop(in_flight);
    if let Err(error) = recorded {
        // The provider has answered; the caller gets that answer even if the record is missing.
        // A message recorded first is on record (as queued); one that is not is kept and
        // written once the store takes writes again.
        let kept_for_later =
            !record_first && state.late_records.keep(record, outcome, late_key_answer);
        tracing::error!(%error, request_id = %request_id, message_id = %message_id, kept_for_later, "send outcome not recorded");
    }
    answer
}

pub fn new_message(prepared: &Prepared, id: &str, client: &str) -> NewMessage {
    let Prepared { message, route, .. } = prepared;
    let envelope = &message.envelope;
    NewMessage {
        id: id.to_string(),
        client: client.to_string(),
        to: match envelope.recipient_type {
            Some(RecipientType::Group) => envelope.to.clone(),
            _ => with_plus(&envelope.to),
        },
        from: route.sender.number.clone(),
        message_type: message.message_type().as_str().to_string(),
        refs: envelope
            .refs
            .as_ref()
            .and_then(|r| serde_json::to_value(r).ok()),
        callback_url: envelope.callback_url.clone(),
        route: route.endpoints.iter().map(|e| e.id.clone()).collect(),
        status: MessageStatus::Queued.as_str().to_string(),
        created_at_ms: prepared.at_ms,
    }
}

fn outcome(result: &Result<send::SendResult, ApiError>) -> SendOutcome {
    match result {
        Ok(accepted) => SendOutcome {
            status: MessageStatus::Accepted.as_str().to_string(),
            provider: Some(accepted.provider.clone()),
            endpoint: Some(accepted.endpoint.clone()),
            provider_message_id: accepted.provider_message_id.clone(),
            error: None,
            at_ms: clock::now_ms(),
        },
        Err(error) => SendOutcome {
            status: MessageStatus::Failed.as_str().to_string(),
            provider: error.body.provider.clone(),
            endpoint: error.body.endpoint.clone(),
            provider_message_id: None,
            error: Some(error.summary()),
            at_ms: clock::now_ms(),
        },
    }
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
