//! The OpenAPI 3.1 description of the API, generated from the handlers' annotations and the
//! types they answer with, served at `GET /openapi.json`; `GET /docs` browses it (Swagger UI,
//! its assets built into the binary). Shapes the handlers build as JSON on the spot are
//! described by the types below; CI checks live answers against them (schemathesis).

use crate::api::batch::{BatchAnswer, BatchResult};
use crate::api::messages::Answer;
use crate::http::error::ErrorBody;
use crate::queue::Queued;
use crate::send::circuit::{AttemptCounts, CircuitState};
use crate::send::{Attempt, AttemptError, Outcome, SendResult, SkipReason};
use serde_json::Value;
use std::collections::BTreeMap;
use switchboard_core::{ErrorCode, MessageType, ProviderWords};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard",
        description = "One REST API for sending WhatsApp messages through Meta's Cloud API, \
Kaleyra's v2 API or a generic from/to/body API, with failover, one normalized result or error, \
and provider webhooks turned into one signed event stream.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(
        super::health::index,
        super::health::healthz,
        super::health::readyz,
        super::providers::metrics,
        super::providers::list_providers,
        super::messages::send_message,
        super::batch::send_batch,
        super::message_status::get_message,
        super::cancel::cancel_message,
        super::call_links::create_call_link,
        super::templates::create_template,
        crate::webhooks::handshake,
        crate::webhooks::receive,
    ),
    components(schemas(
        ErrorCode, ProviderWords, ErrorBody, ErrorResponse, SendResult, Attempt, AttemptError,
        Outcome, SkipReason, CircuitState, AttemptCounts, MessageRequest, MessageType,
        DryRunPlan, MessageView, MessageEventView, ProviderList, EndpointView, CallLinkRequest,
        CallLink, TemplateCreated, ServiceIndex, Health, Readiness, WebhookAccepted, Queued,
        Answer, BatchRequestDoc, BatchAnswer, BatchResult, Priority,
    )),
    modifiers(&BearerToken),
    tags(
        (name = "messages", description = "Send messages and read their status"),
        (name = "providers", description = "Endpoints, circuits, templates, call links"),
        (name = "webhooks", description = "Provider callbacks into Switchboard"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

/// `Authorization: Bearer <client token>` on every `/v1` route.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "client_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every failure: `{"error": {…}}`.
#[derive(ToSchema)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

/// A message: WhatsApp's message object as Meta defines it (without `messaging_product`),
/// plus Switchboard's `from`, `provider`, `refs` and `callback_url`. The object named by `type`
/// carries the content (see docs/api.md for every type and its rules); fields Switchboard does
/// not know travel on to providers that can carry them.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct MessageRequest {
    /// The recipient, E.164 (`+14085551234`), or a group id with `recipient_type: group`.
    to: String,
    #[schema(rename = "type")]
    message_type: MessageType,
    /// The sending business number; `routing.default_sender` when left out.
    from: Option<String>,
    /// Restricts the route to this provider instance of the sender's route.
    provider: Option<String>,
    /// `individual` (default) or `group`.
    recipient_type: Option<String>,
    /// Caller's references (`ref`, `ref1` … `ref5`), kept with the message and in events.
    refs: Option<BTreeMap<String, String>>,
    /// Where this message's events are also POSTed (hosts in `webhooks.callback_hosts_allow`).
    callback_url: Option<String>,
    /// `{"message_id": "wamid…"}`: a reply to an earlier message.
    context: Option<Value>,
    /// RFC 3339, at most 35 days ahead (the past means now): queue the message until then.
    /// Makes the send asynchronous.
    send_at: Option<String>,
    /// 1 to 2592000: a queued message not accepted by a provider within this many seconds of
    /// its creation fails with `expired`, unsent.
    #[schema(minimum = 1, maximum = 2592000)]
    validity_secs: Option<u64>,
    /// The lane of a queued message: `bulk` goes only while none of the sender's `normal`
    /// messages is due.
    priority: Option<Priority>,
    text: Option<Value>,
    image: Option<Value>,
    audio: Option<Value>,
    video: Option<Value>,
    document: Option<Value>,
    sticker: Option<Value>,
    location: Option<Value>,
    contacts: Option<Vec<Value>>,
    interactive: Option<Value>,
    template: Option<Value>,
    reaction: Option<Value>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "lowercase")]
pub enum Priority {
    Normal,
    Bulk,
}

/// `POST /v1/messages/batch`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct BatchRequestDoc {
    /// 1 to 1000 messages, each as `POST /v1/messages` takes it.
    #[schema(min_items = 1, max_items = 1000)]
    messages: Vec<MessageRequest>,
}

/// `?dry_run=true`: what each endpoint of the route would receive, nothing sent.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DryRunPlan {
    dry_run: bool,
    /// One entry per endpoint that can carry the message: `{endpoint, method, url, headers
    /// (secrets as ****), body}`.
    plan: Vec<Value>,
    /// One entry per endpoint that cannot: `{endpoint, error: {code, message, field}}`.
    skipped: Vec<Value>,
}

/// A stored message and its status history.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct MessageView {
    id: String,
    /// `queued`, `accepted`, `sent`, `delivered`, `read`, `failed` or `canceled`; never moves
    /// backwards.
    status: String,
    to: String,
    from: String,
    #[schema(rename = "type")]
    message_type: String,
    provider: Option<String>,
    endpoint: Option<String>,
    provider_message_id: Option<String>,
    refs: Option<BTreeMap<String, String>>,
    /// RFC 3339, UTC.
    created_at: String,
    updated_at: String,
    /// In the order Switchboard recorded them.
    events: Vec<MessageEventView>,
    /// The error shape without `request_id` and `attempts`, when the message failed.
    error: Option<Value>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct MessageEventView {
    status: String,
    /// The time the event's source gave, RFC 3339.
    at: String,
    error: Option<Value>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ProviderList {
    /// Sorted by endpoint id.
    endpoints: Vec<EndpointView>,
}

/// One endpoint, its circuit and its attempt counts (per gateway process).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EndpointView {
    endpoint: String,
    provider: String,
    kind: String,
    circuit: CircuitState,
    consecutive_failures: u32,
    last_error: Option<AttemptError>,
    attempts: AttemptCounts,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CallLinkRequest {
    /// The business number to call, E.164.
    number: String,
    /// Up to 512 characters, returned as `deeplink_payload` on call webhooks.
    payload: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CallLink {
    /// `https://wa.me/call/<digits>?biz_payload=…`
    url: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TemplateCreated {
    id: String,
    /// `PENDING`, `APPROVED`, `REJECTED`, …
    status: String,
    category: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ServiceIndex {
    service: String,
    version: String,
    api: String,
    health: String,
    ready: String,
    metrics: String,
    openapi: String,
    docs: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Health {
    status: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Readiness {
    /// `ready`, or `store unavailable`.
    status: String,
    /// The number of configured endpoints, when ready.
    endpoints: Option<u32>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct WebhookAccepted {
    /// New events the webhook produced (redeliveries produce none).
    events: u32,
}
