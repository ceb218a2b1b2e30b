//! `Idempotency-Key` around a request that sends or queues (docs/api.md): claim the key, run
//! the work to its end in its own task (even if the caller hangs up), keep or release its
//! answer, replay a kept one. Work that records what it did can keep its answer in that same
//! write ([`HeldKey`]).

use crate::clock;
use crate::http::{ApiError, ClientName};
use crate::idempotency::{self, KEY_MAX_LEN, RETENTION};
use crate::recording::LateKeyAnswer;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;
use std::future::Future;
use std::sync::{Arc, Mutex};
use switchboard_core::{ErrorCode, ValidationError};
use switchboard_store::{KeyAnswer, KeyClaim, StoredResponse};

/// A request's claimed `Idempotency-Key`, lent to its work. Work that records what it did can
/// keep its answer under the key in that same write: one write fewer, and no moment when the
/// record is committed while the key is still in flight.
pub struct HeldKey {
    client: String,
    key: String,
    /// The message the key was claimed for, if any.
    message_id: Option<String>,
    kept: Arc<Mutex<Option<StoredResponse>>>,
}

impl HeldKey {
    /// What to keep under the key for `result`; `None` when it is not kept (the key is then
    /// freed once the work ends).
    pub fn answer<T: Serialize>(&self, result: &Result<T, ApiError>) -> Option<StoredResponse> {
        answer_is_kept(result.as_ref().err()).then(|| stored_response(result))
    }

    /// `response` under this key, as the store writes it.
    pub fn for_store<'a>(&'a self, response: &'a StoredResponse) -> KeyAnswer<'a> {
        KeyAnswer {
            client: &self.client,
            key: &self.key,
            response,
            message_id: self.message_id.as_deref(),
        }
    }

    /// `response` under this key, owned: for a record written later (`recording.rs`).
    pub fn late_answer(&self, response: StoredResponse) -> LateKeyAnswer {
        LateKeyAnswer {
            client: self.client.clone(),
            key: self.key.clone(),
            response,
            message_id: self.message_id.clone(),
        }
    }

    /// `response` was committed under the key: nothing is left to write for it.
    pub fn kept(&self, response: StoredResponse) {
        *self.kept.lock().unwrap_or_else(|e| e.into_inner()) = Some(response);
    }
}

/// Runs `work` once per client and key: a repeat with the same `body` gets the kept answer
/// again, with another body 422, while the first runs 409. Without a key, just runs it.
/// `message_id` names the message the work records, when it sends one: the store may keep the
/// answer in that record.
pub async fn answer_once<T, W, F>(
    state: web::Data<AppState>,
    client: ClientName,
    key: Option<String>,
    body: &[u8],
    request_id: &str,
    message_id: Option<&str>,
    work: W,
) -> Result<HttpResponse, ApiError>
where
    T: Serialize,
    W: FnOnce(Option<HeldKey>) -> F,
    F: Future<Output = Result<T, ApiError>> + 'static,
{
    if let Some(key) = &key {
        let claim = state
            .store
            .claim_key(
                &client.0,
                key,
                &idempotency::fingerprint(body),
                clock::now_ms(),
                RETENTION.as_millis() as i64,
                message_id,
            )
            .await
            .map_err(|e| ApiError::store_unavailable(&e, request_id))?;
        match claim {
            KeyClaim::Fresh => {}
            KeyClaim::Replay(stored) => return Ok(replay(stored)),
            KeyClaim::InFlight => {
                return Err(ApiError::new(ErrorCode::IdempotencyKeyInUse, request_id))
            }
            KeyClaim::BodyMismatch => {
                return Err(ApiError::new(ErrorCode::IdempotencyKeyReused, request_id))
            }
        }
    }
    let kept = Arc::new(Mutex::new(None));
    let work = work(key.as_ref().map(|key| HeldKey {
        client: client.0.clone(),
        key: key.clone(),
        message_id: message_id.map(str::to_owned),
        kept: kept.clone(),
    }));
    // The work runs to its end in its own task, even if the caller hangs up: what it did is
    // recorded and the key completed, so a retry replays instead of sending again.
    let task = actix_web::rt::spawn(async move {
        let result = work.await;
        if let Some(stored) = kept.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return stored;
        }
        let stored = stored_response(&result);
        if let Some(key) = &key {
            let kept = if answer_is_kept(result.as_ref().err()) {
                state.store.complete_key(&client.0, key, &stored).await
            } else {
                state.store.release_key(&client.0, key).await
            };
            if let Err(error) = kept {
                tracing::error!(%error, "idempotency key not completed: it stays in flight");
            }
        }
        stored
    });
    match task.await {
        Ok(stored) => Ok(respond(stored)),
        // Only a bug (a panic in the work) ends here.
        Err(_) => Ok(HttpResponse::InternalServerError().finish()),
    }
}

fn stored_response<T: Serialize>(result: &Result<T, ApiError>) -> StoredResponse {
    match result {
        Ok(answer) => StoredResponse {
            status: StatusCode::ACCEPTED.as_u16(),
            body: serde_json::to_vec(answer).unwrap_or_default(),
            retry_after_secs: None,
        },
        Err(error) => StoredResponse {
            status: error.status_code().as_u16(),
            body: error.to_json().to_string().into_bytes(),
            retry_after_secs: error.retry_after_header(),
        },
    }
}

/// Whether the answer is kept under the request's `Idempotency-Key` and replayed to a retry.
/// An answer known not to have reached the recipient (`provider_unavailable`, `rate_limited`)
/// is not: the caller's retry with the same key sends again. Everything else is, a
/// `provider_timeout` above all (the provider may have taken the message).
fn answer_is_kept(error: Option<&ApiError>) -> bool {
    error.is_none_or(|error| {
        !matches!(
            error.body.code,
            ErrorCode::ProviderUnavailable | ErrorCode::RateLimited
        )
    })
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

/// The request's `Idempotency-Key`, checked.
pub fn idempotency_key(
    request: &HttpRequest,
    request_id: &str,
) -> Result<Option<String>, ApiError> {
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
