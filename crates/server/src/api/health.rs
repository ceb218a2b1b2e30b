use crate::state::AppState;
use actix_web::{web, HttpResponse};

/// What a person (or a probe) opening the base URL finds: what this is and where to go next.
pub async fn index() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "service": "switchboard",
        "version": env!("CARGO_PKG_VERSION"),
        "api": "/v1/messages",
        "health": "/healthz",
        "ready": "/readyz",
        "metrics": "/metrics",
        "documentation": "README.md and docs/ in Switchboard's source repository",
    }))
}

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Ready when a configuration is loaded (the state cannot exist without one) and the store
/// answers.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let settings = state.settings();
    match state.store.ping().await {
        Ok(()) => HttpResponse::Ok()
            .json(serde_json::json!({"status": "ready", "endpoints": settings.endpoints.len()})),
        Err(error) => {
            tracing::warn!(%error, "not ready: store unavailable");
            HttpResponse::ServiceUnavailable()
                .json(serde_json::json!({"status": "store unavailable"}))
        }
    }
}
