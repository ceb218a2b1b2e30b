//! Switchboard's provider-neutral core.
//!
//! * [`message`]: the typed model of a message as callers send it (Meta's message object plus
//!   Switchboard's own fields), keeping every field it does not know so it can travel on.
//! * [`parse`] and [`validate`]: bytes → model, and the validation rules, each failure naming
//!   the JSON path of the offending field.
//! * [`error`]: the closed set of error codes with their HTTP status and retryability, and the
//!   failure value that carries a provider's answer verbatim.
//! * [`adapter`]: what every provider adapter does — render a request, classify a response —
//!   with no network, clock or store.
//! * [`provider`]: what a provider crate gives the server — its config section read, its
//!   endpoints built, its webhooks proven and parsed — and the secret reader it uses.
//! * [`event`]: what provider webhooks report (statuses, inbound messages, calls), before the
//!   server correlates it to stored messages.

pub mod adapter;
pub mod error;
pub mod event;
pub mod message;
pub mod parse;
pub mod phone;
pub mod provider;
pub mod schedule;
pub mod validate;

pub use adapter::{
    Accepted, Adapter, HeaderValue, HttpMethod, ProviderRequest, ProviderResponse, RenderContext,
    Unsupported,
};
pub use error::{ErrorCode, ProviderFailure, ProviderWords, ValidationError};
pub use event::{
    CallEvent, CallEventKind, EventError, InboundMessage, MalformedWebhook, MessageStatus,
    ProviderEvent, StatusUpdate,
};
pub use message::{Content, MessageType, OutboundMessage};
pub use parse::{deserialize_at, from_value_at, parse_message};
pub use schedule::{schedule, Schedule};
pub use validate::{validate, ValidationPolicy};

#[cfg(any(test, feature = "test-support"))]
pub mod arbitrary;
#[cfg(any(test, feature = "test-support"))]
pub mod arbitrary_webhook;
