use crate::http::request_id::RequestId;
use crate::state::AppState;
use actix_web::{web, HttpResponse};

/// What a person (or a probe) opening the base URL finds: what this is and where to go next.
#[utoipa::path(get, path = "/", tag = "operations",
    responses((status = 200, description = "What this service is and where its routes are", body = crate::api::openapi::ServiceIndex)))]
pub async fn index() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "service": "switchboard",
        "version": env!("CARGO_PKG_VERSION"),
        "api": "/v1/messages",
        "health": "/healthz",
        "ready": "/readyz",
        "metrics": "/metrics",
        "openapi": "/openapi.json",
        "docs": "/docs/",
    }))
}

#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process runs", body = crate::api::openapi::Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Ready when a configuration is loaded (the state cannot exist without one) and the store
/// answers.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Configuration loaded and the store answers", body = crate::api::openapi::Readiness),
        (status = 503, description = "The store does not answer", body = crate::api::openapi::Readiness),
    ))]
pub async fn readyz(state: web::Data<AppState>, request_id: RequestId) -> HttpResponse {
    let settings = state.settings();
    match state.store.ping().await {
        Ok(()) => HttpResponse::Ok()
            .json(serde_json::json!({"status": "ready", "endpoints": settings.endpoints.len()})),
        Err(error) => {
            tracing::warn!(request_id = %request_id.0, %error, "not ready: store unavailable");
            HttpResponse::ServiceUnavailable()
                .json(serde_json::json!({"status": "store unavailable"}))
        }
    }
}
