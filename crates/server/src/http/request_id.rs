//! `X-Request-Id`: the caller's if it sent a sensible one, a new ULID otherwise; on every
//! response, and available to handlers and extractors.

use crate::state::AppState;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, Error, FromRequest, HttpMessage, HttpRequest};
use std::future::{ready, Future, Ready};

pub const HEADER: &str = "x-request-id";

#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    pub fn of(request: &HttpRequest) -> String {
        request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_default()
    }
}

impl FromRequest for RequestId {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(Ok(RequestId(RequestId::of(request))))
    }
}

fn acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// Middleware body for `App::wrap_fn`: assigns the id, logs one line per request and counts
/// it in the metrics by route pattern (never by raw path, which would explode the label set).
pub fn middleware<S, B>(
    request: ServiceRequest,
    service: &S,
) -> impl Future<Output = Result<ServiceResponse<BoxBody>, Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody + 'static,
{
    let id = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map(str::to_string)
        .unwrap_or_else(|| ulid::Ulid::new().to_string());
    request.extensions_mut().insert(RequestId(id.clone()));
    let started = std::time::Instant::now();
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let future = service.call(request);
    async move {
        // Handler and extractor errors arrive here already rendered as responses.
        let mut response = future.await?.map_into_boxed_body();
        let status = response.status().as_u16();
        if let Ok(value) = HeaderValue::from_str(&id) {
            response
                .headers_mut()
                .insert(HeaderName::from_static(HEADER), value);
        }
        let request = response.request();
        if let Some(state) = state {
            let route = request
                .match_pattern()
                .unwrap_or_else(|| "unmatched".to_owned());
            state
                .metrics
                .request(route, request.method().as_str(), status);
        }
        // The request's fields on its line rather than in a span around it: a span costs a
        // formatted copy of its fields, an entry and exit at every poll and its closing, and
        // the work that sends runs in a task of its own, outside it. The lines logged on the
        // way that need it name the request id or message id themselves (docs/configuration.md
        // lists which).
        tracing::info!(
            request_id = %id,
            method = %request.method(),
            path = %request.path(),
            status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request done"
        );
        Ok(response)
    }
}
