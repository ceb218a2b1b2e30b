//! The one error shape (docs/errors.md) every failure is answered with.

use crate::send::{Attempt, RouteError, SendFailure};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use std::fmt;
use switchboard_core::{ErrorCode, ProviderFailure, ProviderWords, ValidationError};

/// Seconds a 429 asks the caller to wait when the provider named no delay.
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 30;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    pub retryable: bool,
    pub request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(flatten)]
    pub words: ProviderWords,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<Vec<Attempt>>,
}

/// An error on its way to the caller.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// Boxed: errors travel through many `Result`s and should stay small.
    pub body: Box<ErrorBody>,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, request_id: &str) -> Self {
        ApiError {
            body: Box::new(ErrorBody {
                code,
                message: code.default_message().to_string(),
                retryable: code.retryable(),
                request_id: request_id.to_string(),
                field: None,
                provider: None,
                endpoint: None,
                words: ProviderWords::default(),
                attempts: None,
            }),
            retry_after_secs: None,
        }
    }

    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.body.message = message.into();
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.body.field = Some(field.into());
        self
    }

    pub fn invalid(error: ValidationError, request_id: &str) -> Self {
        ApiError::new(ErrorCode::InvalidRequest, request_id)
            .message(format!("{}: {}", error.field, error.message))
            .field(error.field)
    }

    /// The store did not answer: nothing was decided, the caller may retry. (The closed set of
    /// codes has no internal-error code; this is an availability problem, hence 503.)
    pub fn store_unavailable(error: &switchboard_store::StoreError, request_id: &str) -> Self {
        tracing::error!(%error, request_id = %request_id, "store unavailable");
        ApiError::new(ErrorCode::ProviderUnavailable, request_id)
            .message("Switchboard's message store is unavailable; retry later.")
    }

    /// A provider's failure, with its words carried verbatim.
    pub fn from_provider(
        failure: &ProviderFailure,
        provider: &str,
        endpoint: &str,
        request_id: &str,
    ) -> Self {
        let mut error = ApiError::new(failure.code, request_id).message(failure.message.clone());
        error.body.provider = Some(provider.to_string());
        error.body.endpoint = Some(endpoint.to_string());
        error.body.words = failure.words.clone();
        error.retry_after_secs = failure.retry_after_secs;
        error
    }

    /// A send that did not end in an acceptance, with its attempts.
    pub fn from_send(failure: SendFailure, request_id: &str) -> Self {
        match failure {
            SendFailure::Provider {
                failure,
                provider,
                endpoint,
                attempts,
            } => ApiError::from_provider(&failure, &provider, &endpoint, request_id)
                .attempts(attempts),
            SendFailure::CircuitsOpen { attempts } => {
                ApiError::new(ErrorCode::ProviderUnavailable, request_id)
                    .message(
                        "Every endpoint that can carry this message is skipped: its circuit is \
open after repeated failures. Retry later.",
                    )
                    .attempts(attempts)
            }
            SendFailure::Unsupported { message, attempts } => {
                ApiError::new(ErrorCode::UnsupportedByProvider, request_id)
                    .message(message)
                    .attempts(attempts)
            }
        }
    }

    /// No route for the message: `from` or `provider` names what is wrong.
    pub fn from_route(error: RouteError, request_id: &str) -> Self {
        let unknown = |message: String, field: &str| {
            ApiError::new(ErrorCode::UnknownSender, request_id)
                .message(message)
                .field(field)
        };
        match error {
            RouteError::NoSender => ApiError::invalid(
                ValidationError::new(
                    "from",
                    "is required: no routing.default_sender is configured",
                ),
                request_id,
            ),
            RouteError::UnknownSender { number } => {
                unknown(format!("{number} is not a configured sender."), "from")
            }
            RouteError::NotInRoute {
                provider,
                number,
                route,
            } => unknown(
                format!(
                    "Provider {provider} is not in the route of {number} ({}).",
                    route.join(", ")
                ),
                "provider",
            ),
        }
    }

    /// The `Retry-After` a 429 carries: the provider's, or a default.
    pub fn retry_after_header(&self) -> Option<u64> {
        (self.body.code == ErrorCode::RateLimited)
            .then(|| self.retry_after_secs.unwrap_or(DEFAULT_RETRY_AFTER_SECS))
    }

    /// What a stored message keeps of its failure: the error without the request's id and
    /// the attempts.
    pub fn summary(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(&self.body).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.remove("request_id");
            object.remove("attempts");
        }
        value
    }

    /// The response body: `{"error": {…}}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.body })
    }

    pub fn attempts(mut self, attempts: Vec<Attempt>) -> Self {
        self.body.attempts = Some(attempts);
        self
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.body.code, self.body.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.body.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Some(secs) = self.retry_after_header() {
            response.insert_header(("Retry-After", secs.to_string()));
        }
        response.json(self.to_json())
    }
}
