//! Reads a request body up to `server.max_body_bytes`; larger → 413 `payload_too_large`.

use super::error::ApiError;
use actix_web::web::{Bytes, BytesMut, Payload};
use actix_web::HttpRequest;
use futures_util::StreamExt;
use switchboard_core::ErrorCode;

pub async fn read_limited(
    request: &HttpRequest,
    mut payload: Payload,
    limit: usize,
    request_id: &str,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(ErrorCode::PayloadTooLarge, request_id)
            .message(format!("The request body is larger than {limit} bytes."))
    };
    let declared = request
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(ErrorCode::InvalidRequest, request_id)
                .message(format!("The request body could not be read: {e}"))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
