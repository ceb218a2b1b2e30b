//! Campaign features on the queue (docs/async.md): cancel, batches, validity and the bulk lane,
//! checked over HTTP and at the provider (the simulator's request log).

mod common;

use common::queue::*;
use common::Gateway;
use futures_util::future::join_all;
use secrecy::SecretString;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use switchboard_server::config::Client;
use switchboard_sim::Behaviour;

/// `send_at` this many milliseconds from now, RFC 3339 with milliseconds.
fn send_at_in(ms: u64) -> String {
    let at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_millis(ms);
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(at.as_nanos() as i128).unwrap();
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn scheduled(to: &str, ms: u64) -> Value {
    let mut message = text_to(to);
    message["send_at"] = json!(send_at_in(ms));
    message
}

#[actix_web::test]
async fn a_queued_message_is_canceled_once_and_never_sent() {
    let gw = Gateway::start_with(|s| {
        s.clients.push(Client {
            name: "billing".into(),
            token: SecretString::from("billing-token"),
        })
    })
    .await;
    let reply = gw
        .post("/v1/messages", &scheduled("+14085551234", 1_500))
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert!(reply.body["send_at"].is_string(), "{}", reply.body);
    let id = reply.body["id"].as_str().unwrap().to_string();
    let path = format!("/v1/messages/{id}/cancel");

    // Another client does not see it.
    let other = gw.post_raw(&path, Vec::new(), Some("billing-token")).await;
    assert_eq!(other.status, 404, "{}", other.body);
    assert_eq!(other.error_code(), "not_found");

    let canceled = gw.post(&path, &json!({})).await;
    assert_eq!(canceled.status, 200, "{}", canceled.body);
    assert_eq!(canceled.body["status"], "canceled");
    let statuses: Vec<&str> = canceled.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["canceled"]);

    let again = gw.post(&path, &json!({})).await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(again.error_code(), "not_cancelable");
    assert_eq!(
        gw.post("/v1/messages/01JD0000000000000000000000/cancel", &json!({}))
            .await
            .status,
        404
    );

    // Past its send_at, still nothing reaches the provider.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert!(gw.sim.requests().is_empty(), "{:?}", gw.sim.requests());
    let stored = gw.get(&format!("/v1/messages/{id}")).await;
    assert_eq!(stored.body["status"], "canceled", "{}", stored.body);
}

#[actix_web::test]
async fn a_message_a_provider_has_is_not_cancelable() {
    let gw = Gateway::start().await;
    let id = queue(&gw, &text_to("+14085551234")).await;
    let message = wait_final(&gw, &id, Duration::from_secs(5)).await;
    assert_eq!(message["status"], "accepted", "{message}");
    let reply = gw
        .post(&format!("/v1/messages/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(reply.status, 409, "{}", reply.body);
    assert_eq!(reply.error_code(), "not_cancelable");
}

/// Many cancels fired while the worker drains: each message is either canceled (and never
/// reaches the provider) or refused as not cancelable (and reaches it exactly once).
#[actix_web::test]
async fn cancels_racing_hand_overs_never_let_a_canceled_message_through() {
    let gw = Gateway::start_with(|s| set_rate(s, SENDER, 40)).await;
    let messages: Vec<Value> = (0..40).map(|i| text_to(&recipient(i))).collect();
    let ids: Vec<String> = join_all(messages.iter().map(|m| queue(&gw, m))).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answers = join_all(ids.iter().map(|id| {
        let gw = &gw;
        async move {
            gw.post(&format!("/v1/messages/{id}/cancel"), &json!({}))
                .await
                .status
        }
    }))
    .await;
    let canceled: BTreeSet<&String> = ids
        .iter()
        .zip(&answers)
        .filter(|(_, status)| **status == 200)
        .map(|(id, _)| id)
        .collect();
    for (id, status) in ids.iter().zip(&answers) {
        assert!(*status == 200 || *status == 409, "{id}: {status}");
    }
    assert!(
        !canceled.is_empty(),
        "the race should cancel some: {answers:?}"
    );
    assert!(
        canceled.len() < ids.len(),
        "the race should lose some: {answers:?}"
    );
    for id in &ids {
        let message = wait_final(&gw, id, Duration::from_secs(5)).await;
        let expected = if canceled.contains(id) {
            "canceled"
        } else {
            "accepted"
        };
        assert_eq!(message["status"], expected, "{id}: {message}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received = gw.sim.requests_to("meta");
    for id in &ids {
        let times = received.iter().filter(|r| message_id(r) == id).count();
        let expected = usize::from(!canceled.contains(id));
        assert_eq!(times, expected, "{id} reached the provider {times} times");
    }
}

#[actix_web::test]
async fn a_message_retried_past_its_validity_expires_unsent() {
    let gw = Gateway::start_with(|s| {
        s.queue.retry_base_ms = 700;
        s.queue.max_attempts = 6;
    })
    .await;
    gw.sim.set_behaviour("meta", Behaviour::Down);
    let mut message = text_to("+14085551234");
    message["validity_secs"] = json!(1);
    let id = queue(&gw, &message).await;
    let message = wait_final(&gw, &id, Duration::from_secs(5)).await;
    assert_eq!(message["status"], "failed", "{message}");
    assert_eq!(message["error"]["code"], "expired", "{message}");
    // One attempt, its retry due 700 ms later, then nothing: the next retry (1.4 s later) would
    // be past the validity.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let attempts = gw.sim.requests_to("meta").len();
    assert!((1..=2).contains(&attempts), "{attempts} attempts");
}

/// Bulk messages go only while no normal message of the sender is due: with all due at the
/// same moment, the normal ones reach the provider first.
#[actix_web::test]
async fn normal_messages_go_before_the_senders_bulk_ones() {
    let gw = Gateway::start_with(|s| set_rate(s, SENDER, 10)).await;
    let due = send_at_in(800);
    let mut messages = Vec::new();
    for i in 0..4 {
        let mut bulk = text_to(&recipient(i));
        bulk["priority"] = json!("bulk");
        bulk["send_at"] = json!(due);
        messages.push(bulk);
    }
    for i in 4..6 {
        let mut normal = text_to(&recipient(i));
        normal["send_at"] = json!(due);
        messages.push(normal);
    }
    let ids: Vec<String> = join_all(messages.iter().map(|m| async {
        let reply = gw.post("/v1/messages", m).await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        reply.body["id"].as_str().unwrap().to_string()
    }))
    .await;
    let received = wait_for_requests(&gw, "meta", 6, Duration::from_secs(5)).await;
    let order: Vec<&str> = received.iter().map(message_id).collect();
    let normals: BTreeSet<&str> = ids[4..].iter().map(String::as_str).collect();
    let first_two: BTreeSet<&str> = order[..2].iter().copied().collect();
    assert_eq!(first_two, normals, "arrival order {order:?}");
}

#[actix_web::test]
async fn a_batch_answers_in_input_order_and_queues_only_the_valid_messages() {
    let gw = Gateway::start().await;
    let batch = json!({"messages": [
        text_to("+14085551001"),
        {"to": "not a number", "type": "text", "text": {"body": "x"}},
        text_to("+14085551002"),
        {"to": "+14085551003", "type": "text", "text": {"body": "x"}, "validity_secs": 0},
    ]});
    let reply = gw
        .post_with_headers(
            "/v1/messages/batch",
            &batch,
            &[("idempotency-key", "batch-1")],
        )
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let results = reply.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[0]["status"], "queued");
    assert_eq!(results[1]["error"]["code"], "invalid_request");
    assert_eq!(results[1]["error"]["field"], "to");
    assert_eq!(results[2]["status"], "queued");
    assert_eq!(results[3]["error"]["field"], "validity_secs");
    let ids = [
        results[0]["id"].as_str().unwrap(),
        results[2]["id"].as_str().unwrap(),
    ];
    for id in ids {
        let message = wait_final(&gw, id, Duration::from_secs(5)).await;
        assert_eq!(message["status"], "accepted", "{message}");
    }

    // The key covers the whole batch: the same results again, nothing queued again.
    let replay = gw
        .post_with_headers(
            "/v1/messages/batch",
            &batch,
            &[("idempotency-key", "batch-1")],
        )
        .await;
    assert_eq!(replay.status, 202);
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    assert_eq!(replay.body["results"], reply.body["results"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received = gw.sim.requests_to("meta");
    assert_eq!(received.len(), 2, "{received:?}");
}

#[actix_web::test]
async fn a_batch_must_hold_1_to_1000_messages_within_max_batch_bytes() {
    let gw = Gateway::start_with(|s| s.server.max_batch_bytes = 50_000).await;
    let empty = gw
        .post("/v1/messages/batch", &json!({"messages": []}))
        .await;
    assert_eq!(empty.status, 400, "{}", empty.body);
    assert_eq!(empty.body["error"]["field"], "messages");
    let too_many: Vec<Value> = (0..1001).map(|_| json!({})).collect();
    let reply = gw
        .post("/v1/messages/batch", &json!({"messages": too_many}))
        .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.body["error"]["field"], "messages");
    let large: Vec<Value> = (0..1000).map(|i| text_to(&recipient(i))).collect();
    let reply = gw
        .post("/v1/messages/batch", &json!({"messages": large}))
        .await;
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert_eq!(reply.error_code(), "payload_too_large");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(gw.sim.requests().is_empty());
}
