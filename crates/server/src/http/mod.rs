//! HTTP plumbing shared by the API handlers.

pub mod auth;
pub mod body;
pub mod error;
pub mod request_id;

pub use auth::ClientName;
pub use error::ApiError;
pub use request_id::RequestId;
