use crate::state::AppState;
use actix_web::{web, HttpResponse};

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Ready once a configuration is loaded (the state cannot exist without one).
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let settings = state.settings();
    HttpResponse::Ok()
        .json(serde_json::json!({"status": "ready", "endpoints": settings.endpoints.len()}))
}
