//! `GET /v1/providers` and `GET /metrics`: every endpoint's circuit and counts.

use crate::http::ClientName;
use crate::metrics::CONTENT_TYPE;
use crate::send::circuit::CircuitState;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use serde_json::json;

/// Every endpoint of the running configuration, sorted by id.
#[utoipa::path(get, path = "/v1/providers", tag = "providers", security(("client_token" = [])),
    responses(
        (status = 200, description = "Every endpoint with its circuit and attempt counts", body = crate::api::openapi::ProviderList),
        (status = 401, description = "No or wrong client token (`unauthenticated`)", body = crate::api::openapi::ErrorResponse),
    ))]
pub async fn list_providers(state: web::Data<AppState>, _client: ClientName) -> HttpResponse {
    let settings = state.settings();
    let endpoints: Vec<_> = settings
        .endpoints
        .values()
        .map(|endpoint| {
            let snapshot = state.circuits.snapshot(&endpoint.id);
            json!({
                "endpoint": endpoint.id,
                "provider": endpoint.provider,
                "kind": endpoint.kind,
                "circuit": snapshot.circuit,
                "consecutive_failures": snapshot.consecutive_failures,
                "last_error": snapshot.last_error,
                "attempts": snapshot.attempts,
            })
        })
        .collect();
    HttpResponse::Ok().json(json!({ "endpoints": endpoints }))
}

/// Prometheus scrape. Circuit gauges are refreshed from the circuits at scrape time.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus/OpenMetrics text", body = String,
               content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8")))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let states = CircuitState::ALL.map(CircuitState::as_str);
    for endpoint in state.settings().endpoints.values() {
        let current = state.circuits.snapshot(&endpoint.id).circuit;
        state
            .metrics
            .circuit(&endpoint.id, current.as_str(), &states);
    }
    HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .body(state.metrics.render())
}
