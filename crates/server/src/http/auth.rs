//! Client authentication: `Authorization: Bearer <token>` against `[[clients]]`.

use super::error::ApiError;
use super::request_id::RequestId;
use crate::state::AppState;
use actix_web::{web, FromRequest, HttpRequest};
use secrecy::ExposeSecret;
use std::future::{ready, Ready};
use subtle::ConstantTimeEq;
use switchboard_core::ErrorCode;

/// The authenticated caller of a `/v1` route.
#[derive(Debug, Clone)]
pub struct ClientName(pub String);

impl FromRequest for ClientName {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(authenticate(request))
    }
}

fn authenticate(request: &HttpRequest) -> Result<ClientName, ApiError> {
    let request_id = RequestId::of(request);
    let unauthenticated = || ApiError::new(ErrorCode::Unauthenticated, &request_id);
    let presented = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(unauthenticated)?;
    let state = request
        .app_data::<web::Data<AppState>>()
        .ok_or_else(unauthenticated)?;
    let settings = state.settings();
    // Compare against every client in constant time so timing tells nothing about tokens.
    let mut found = None;
    for client in &settings.clients {
        if bool::from(
            client
                .token
                .expose_secret()
                .as_bytes()
                .ct_eq(presented.as_bytes()),
        ) {
            found = Some(client.name.clone());
        }
    }
    found.map(ClientName).ok_or_else(unauthenticated)
}
