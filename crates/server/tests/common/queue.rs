//! Helpers of the queue's tests: queueing over HTTP, waiting for the provider and for a final
//! status.

use super::{Gateway, Reply};
use futures_util::future::join_all;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use switchboard_server::config::Settings;
use switchboard_sim::RecordedRequest;

/// The sandbox's default sender; its Meta `phone_number_id` is in every Meta request path.
pub const SENDER: &str = "+15550783881";
pub const ASYNC: (&str, &str) = ("prefer", "respond-async");

/// A text through Meta only, so that one hand-over is one provider request.
pub fn text_to(to: &str) -> Value {
    json!({"to": to, "type": "text", "text": {"body": "queued hello"}, "provider": "meta"})
}

/// Distinct recipients: `+14085551000`, `+14085551001`, …
pub fn recipient(i: usize) -> String {
    format!("+1408555{:04}", 1000 + i)
}

pub fn set_rate(settings: &mut Settings, sender: &str, per_second: u32) {
    settings
        .senders
        .get_mut(sender)
        .expect("a configured sender")
        .max_per_second = per_second;
}

/// Queues `message` asynchronously, checks the `202 {"id", "status": "queued"}` answer and
/// returns the id.
pub async fn queue(gw: &Gateway, message: &Value) -> String {
    let reply = gw
        .post_with_headers("/v1/messages", message, &[ASYNC])
        .await;
    queued_id(&reply)
}

pub fn queued_id(reply: &Reply) -> String {
    assert_eq!(reply.status, 202, "{}", reply.body);
    let id = reply.body["id"].as_str().expect("an id").to_string();
    assert_eq!(id.len(), 26, "a ULID: {id}");
    assert!(id.chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
    assert_eq!(reply.body["status"], "queued", "{}", reply.body);
    id
}

/// Queues every message at once (concurrent requests), ids in input order.
pub async fn queue_all(gw: &Gateway, messages: &[Value]) -> Vec<String> {
    join_all(messages.iter().map(|m| queue(gw, m))).await
}

/// Switchboard's message id, which Meta carries as `biz_opaque_callback_data`.
pub fn message_id(request: &RecordedRequest) -> &str {
    request.body["biz_opaque_callback_data"]
        .as_str()
        .unwrap_or_default()
}

/// Waits until `endpoint` has received at least `n` requests; returns them in arrival order.
pub async fn wait_for_requests(
    gw: &Gateway,
    endpoint: &str,
    n: usize,
    within: Duration,
) -> Vec<RecordedRequest> {
    let deadline = Instant::now() + within;
    loop {
        let requests = gw.sim.requests_to(endpoint);
        if requests.len() >= n {
            return requests;
        }
        if Instant::now() > deadline {
            panic!(
                "{endpoint}: expected {n} requests within {within:?}, got {}",
                requests.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Polls `GET /v1/messages/{id}` until the message is no longer `queued`; returns it.
pub async fn wait_final(gw: &Gateway, id: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let reply = gw.get(&format!("/v1/messages/{id}")).await;
        assert_eq!(reply.status, 200, "{id}: {}", reply.body);
        if reply.body["status"] != "queued" {
            return reply.body;
        }
        if Instant::now() > deadline {
            panic!("{id} still queued after {within:?}: {}", reply.body);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
