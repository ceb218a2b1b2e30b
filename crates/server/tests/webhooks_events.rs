//! Webhooks in, message status, events out (docs/api.md, docs/webhooks-and-events.md), end to end over HTTP: the
//! gateway sends through the simulator, a provider webhook comes back, `GET /v1/messages/{id}`
//! shows it, and subscribers (wiremock) receive the signed event.

mod common;

use common::{Gateway, Reply, TOKEN};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::SecretString;
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::Duration;
use switchboard_server::config::{Client, Settings, Subscriber};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const APP_SECRET: &str = "sim-meta-app-secret";
const KALEYRA_TOKEN: &str = "sim-kaleyra-callback-token";
const GENERIC_TOKEN: &str = "sim-generic-callback-token";
const EVENTS_SECRET: &str = "events-secret";
const TO: &str = "+14085551234";

/// Provider timestamps far from today on both sides, so that no assertion depends on the date
/// the tests run: a provider's clock may be behind or ahead of the gateway's, and a message's
/// history is the order Switchboard recorded its events in either way.
const LONG_AGO: (&str, &str) = ("1000000000", "2001-09-09T01:46:40Z");
const FAR_AHEAD: (&str, &str) = ("4102444800", "2100-01-01T00:00:00Z");

fn subscribe(settings: &mut Settings, url: &str) {
    settings.webhooks.subscribers.push(Subscriber {
        url: url.to_string(),
        secret: SecretString::from(EVENTS_SECRET),
    });
    settings.webhooks.retry_base_ms = 50;
}

async fn subscriber_ok() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

fn hmac_hex(secret: &str, bytes: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(bytes);
    hex::encode(mac.finalize().into_bytes())
}

/// Waits until the subscriber has received `n` requests (deliveries are asynchronous).
async fn received(server: &MockServer, n: usize) -> Vec<Request> {
    for _ in 0..100 {
        let requests = server.received_requests().await.unwrap_or_default();
        if requests.len() >= n {
            return requests;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = server.received_requests().await.unwrap_or_default().len();
    panic!("expected {n} deliveries, got {got}");
}

/// Checks the docs/webhooks-and-events.md headers and signature, and returns the event.
fn verified_event(request: &Request, secret: &str) -> Value {
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
            .to_string()
    };
    let timestamp = header("x-switchboard-timestamp");
    let mut signed = timestamp.clone().into_bytes();
    signed.push(b'.');
    signed.extend_from_slice(&request.body);
    assert_eq!(
        header("x-switchboard-signature"),
        format!("sha256={}", hmac_hex(secret, &signed))
    );
    let event: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        header("x-switchboard-event"),
        event["type"].as_str().unwrap()
    );
    assert_eq!(
        header("x-switchboard-event-id"),
        event["event_id"].as_str().unwrap()
    );
    event
}

async fn send_via(gw: &Gateway, provider: &str, extra: Value) -> Reply {
    let mut message = json!({"to": TO, "type": "text", "text": {"body": "hi"}, "provider": provider,
                             "refs": {"ref": "customer1"}});
    if let (Some(m), Some(extra)) = (message.as_object_mut(), extra.as_object()) {
        m.extend(extra.clone());
    }
    let reply = gw.send(&message).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    reply
}

fn meta_status(wamid: &str, message_id: &str, status: &str, timestamp: &str) -> Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
        "field": "messages",
        "value": {"messaging_product": "whatsapp",
                  "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                  "statuses": [{"id": wamid, "status": status, "timestamp": timestamp,
                                "recipient_id": "14085551234", "biz_opaque_callback_data": message_id}]}}]}]})
}

async fn post_meta_webhook(gw: &Gateway, body: &Value) -> Reply {
    let bytes = serde_json::to_vec(body).unwrap();
    let signature = format!("sha256={}", hmac_hex(APP_SECRET, &bytes));
    post_webhook(gw, "meta", bytes, ("x-hub-signature-256", &signature)).await
}

async fn post_webhook(gw: &Gateway, instance: &str, body: Vec<u8>, proof: (&str, &str)) -> Reply {
    let response = gw
        .http
        .post(format!("{}/webhooks/{instance}", gw.url))
        .header("content-type", "application/json")
        .header(proof.0, proof.1)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    Reply {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

fn statuses(message: &Value) -> Vec<&str> {
    message["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect()
}

#[actix_web::test]
async fn meta_handshake_answers_the_challenge_only_with_the_verify_token() {
    let gw = Gateway::start().await;
    let get = |query: &'static str| {
        let url = format!("{}/webhooks/meta?{query}", gw.url);
        let http = gw.http.clone();
        async move {
            let response = http.get(url).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    assert_eq!(
        get("hub.mode=subscribe&hub.verify_token=sim-meta-verify-token&hub.challenge=1158201444")
            .await,
        (200, "1158201444".to_string())
    );
    assert_eq!(
        get("hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1")
            .await
            .0,
        403
    );
    assert_eq!(get("hub.challenge=1").await.0, 403);
    // A Kaleyra instance has no handshake, whatever token is offered.
    let kaleyra = gw
        .http
        .get(format!(
            "{}/webhooks/kaleyra?hub.mode=subscribe&hub.verify_token=sim-kaleyra-callback-token&hub.challenge=1",
            gw.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(kaleyra.status(), 403);
    gw.stop().await;
}

#[actix_web::test]
async fn send_then_status_webhook_updates_the_message_and_signs_the_event() {
    for provider_time in [LONG_AGO, FAR_AHEAD] {
        status_webhook_round_trip(provider_time).await;
    }
}

async fn status_webhook_round_trip((timestamp, at): (&str, &str)) {
    let subscriber = subscriber_ok().await;
    let gw = Gateway::start_with(|s| subscribe(s, &subscriber.uri())).await;
    let sent = send_via(&gw, "meta", json!({})).await;
    let id = sent.body["id"].as_str().unwrap();
    let wamid = sent.body["provider_message_id"].as_str().unwrap();

    let before = gw.get(&format!("/v1/messages/{id}")).await;
    assert_eq!(before.status, 200);
    assert_eq!(before.body["status"], "accepted");
    assert_eq!(statuses(&before.body), ["accepted"]);

    let reply = post_meta_webhook(&gw, &meta_status(wamid, id, "delivered", timestamp)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    let after = gw.get(&format!("/v1/messages/{id}")).await;
    let message = &after.body;
    assert_eq!(message["status"], "delivered");
    assert_eq!(statuses(message), ["accepted", "delivered"]);
    assert_eq!(message["events"][1]["at"], at);
    assert_eq!(message["id"], id);
    assert_eq!(message["to"], TO);
    assert_eq!(message["from"], "+15550783881");
    assert_eq!(message["type"], "text");
    assert_eq!(message["provider"], "meta");
    assert_eq!(message["endpoint"], "meta");
    assert_eq!(message["provider_message_id"], wamid);
    assert_eq!(message["refs"], json!({"ref": "customer1"}));
    assert!(message.get("error").is_none());

    let deliveries = received(&subscriber, 1).await;
    let event = verified_event(&deliveries[0], EVENTS_SECRET);
    let event_id = event["event_id"].as_str().unwrap().to_string();
    assert_eq!(event_id.len(), 26);
    assert_eq!(
        event,
        json!({"event_id": event_id, "type": "message.status", "occurred_at": at,
               "client": "sandbox", "provider": "meta", "endpoint": "meta",
               "message_id": id, "provider_message_id": wamid,
               "status": "delivered", "error": null, "refs": {"ref": "customer1"},
               "from": "+15550783881", "to": TO})
    );
    gw.stop().await;
}

/// A synchronous send is recorded once its send ends. A status webhook that overtakes the
/// provider's answer waits for that record, so it still moves the message and names it.
#[actix_web::test]
async fn a_status_webhook_that_overtakes_the_providers_answer_waits_for_the_record() {
    let subscriber = subscriber_ok().await;
    let gw = Gateway::start_with(|s| subscribe(s, &subscriber.uri())).await;
    gw.sim.set_behaviour(
        "meta",
        switchboard_sim::Behaviour::Slow(Duration::from_millis(800)),
    );
    let overtake = async {
        // The provider has the message (and reports on it) before it answers the send.
        let started = std::time::Instant::now();
        let request = loop {
            if let Some(request) = gw.sim.requests_to("meta").pop() {
                break request;
            }
            assert!(started.elapsed() < Duration::from_secs(5), "no send");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let id = request.body["biz_opaque_callback_data"]
            .as_str()
            .unwrap()
            .to_owned();
        let body = meta_status("wamid.overtaken", &id, "delivered", LONG_AGO.0);
        let reply = post_meta_webhook(&gw, &body).await;
        (id, reply, std::time::Instant::now())
    };
    let send = async {
        let reply = send_via(&gw, "meta", json!({})).await;
        (reply, std::time::Instant::now())
    };
    let ((id, webhook, webhook_done), (sent, send_done)) = tokio::join!(overtake, send);
    assert_eq!(webhook.status, 200, "{}", webhook.body);
    assert_eq!(sent.body["id"], id.as_str());
    assert!(
        webhook_done >= send_done - Duration::from_millis(50),
        "the webhook was answered before the send was recorded"
    );

    let message = gw.get(&format!("/v1/messages/{id}")).await.body;
    assert_eq!(message["status"], "delivered");
    assert_eq!(statuses(&message), ["accepted", "delivered"]);
    let deliveries = received(&subscriber, 1).await;
    let event = verified_event(&deliveries[0], EVENTS_SECRET);
    assert_eq!(event["message_id"], id.as_str(), "{event}");
    assert_eq!(event["status"], "delivered");
    gw.stop().await;
}

#[actix_web::test]
async fn a_wrong_signature_is_401_and_nothing_is_recorded() {
    let subscriber = subscriber_ok().await;
    let gw = Gateway::start_with(|s| subscribe(s, &subscriber.uri())).await;
    let sent = send_via(&gw, "meta", json!({})).await;
    let id = sent.body["id"].as_str().unwrap();
    let wamid = sent.body["provider_message_id"].as_str().unwrap();
    let body = serde_json::to_vec(&meta_status(wamid, id, "read", "1795255200")).unwrap();
    let wrong = format!("sha256={}", hmac_hex("not-the-secret", &body));
    for proof in [
        ("x-hub-signature-256", wrong.as_str()),
        ("x-hub-signature-256", "sha256=zz"),
        ("x-other", "none"),
    ] {
        let reply = post_webhook(&gw, "meta", body.clone(), proof).await;
        assert_eq!(reply.status, 401, "{proof:?}");
        assert_eq!(reply.error_code(), "unauthenticated");
    }
    // The signature covers the exact bytes: the same JSON re-serialized differently fails.
    let signature = format!("sha256={}", hmac_hex(APP_SECRET, &body));
    let mut reformatted = body.clone();
    reformatted.push(b'\n');
    let reply = post_webhook(
        &gw,
        "meta",
        reformatted,
        ("x-hub-signature-256", &signature),
    )
    .await;
    assert_eq!(reply.status, 401);

    let message = gw.get(&format!("/v1/messages/{id}")).await;
    assert_eq!(message.body["status"], "accepted");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(subscriber.received_requests().await.unwrap().is_empty());
    gw.stop().await;
}

#[actix_web::test]
async fn a_redelivered_webhook_yields_one_event_and_status_never_moves_back() {
    let subscriber = subscriber_ok().await;
    let gw = Gateway::start_with(|s| subscribe(s, &subscriber.uri())).await;
    let sent = send_via(&gw, "meta", json!({})).await;
    let id = sent.body["id"].as_str().unwrap();
    let wamid = sent.body["provider_message_id"].as_str().unwrap();

    let read = meta_status(wamid, id, "read", "1795255260");
    assert_eq!(
        post_meta_webhook(&gw, &read).await.body,
        json!({"events": 1})
    );
    assert_eq!(
        post_meta_webhook(&gw, &read).await.body,
        json!({"events": 0})
    );
    // A late `delivered` after `read` is recorded as an event, not as the status.
    let late = meta_status(wamid, id, "delivered", "1795255230");
    assert_eq!(post_meta_webhook(&gw, &late).await.status, 200);

    let message = gw.get(&format!("/v1/messages/{id}")).await.body;
    assert_eq!(message["status"], "read");
    assert_eq!(statuses(&message), ["accepted", "read", "delivered"]);

    let deliveries = received(&subscriber, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let deliveries_after = subscriber.received_requests().await.unwrap();
    assert_eq!(
        deliveries_after.len(),
        2,
        "one event per status, none for the redelivery"
    );
    let kinds: Vec<Value> = deliveries
        .iter()
        .map(|r| verified_event(r, EVENTS_SECRET)["status"].clone())
        .collect();
    assert_eq!(kinds, [json!("read"), json!("delivered")]);
    gw.stop().await;
}

#[actix_web::test]
async fn a_failed_status_carries_the_error_into_the_message_and_event() {
    let subscriber = subscriber_ok().await;
    let gw = Gateway::start_with(|s| subscribe(s, &subscriber.uri())).await;
    let sent = send_via(&gw, "meta", json!({})).await;
    let id = sent.body["id"].as_str().unwrap();
    let wamid = sent.body["provider_message_id"].as_str().unwrap();
    let mut failed = meta_status(wamid, id, "failed", LONG_AGO.0);
    failed["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"] = json!([{
        "code": 131026, "title": "Message undeliverable", "message": "Message undeliverable",
        "error_data": {"details": "Message Undeliverable."}}]);
    assert_eq!(post_meta_webhook(&gw, &failed).await.status, 200);
    let message = gw.get(&format!("/v1/messages/{id}")).await.body;
    assert_eq!(message["status"], "failed");
    let error = &message["events"][1]["error"];
    assert_eq!(error["code"], "recipient_unreachable");
    assert_eq!(error["provider_code"], "131026");
    let event = verified_event(&received(&subscriber, 1).await[0], EVENTS_SECRET);
    assert_eq!(event["status"], "failed");
    assert_eq!(event["error"]["code"], "recipient_unreachable");
    gw.stop().await;
}

#[actix_web::test]
async fn kaleyra_and_generic_callbacks_need_the_callback_token() {
    let subscriber = subscriber_ok().await;
    let gw = Gateway::start_with(|s| subscribe(s, &subscriber.uri())).await;

    let sent = send_via(&gw, "kaleyra", json!({})).await;
    let id = sent.body["id"].as_str().unwrap();
    let kaleyra_id = sent.body["provider_message_id"].as_str().unwrap();
    let callback = serde_json::to_vec(&json!({
        "meta_object": {"field": "messages", "value": {"statuses": [{"id": "other-id", "status": "delivered",
                        "timestamp": "1795255200", "recipient_id": "14085551234"}]}},
        "extra_info": {"message_id": kaleyra_id, "ref": "customer1"},
        "status": "DELIVERED", "message_id": kaleyra_id}))
    .unwrap();
    let reply = post_webhook(
        &gw,
        "kaleyra",
        callback.clone(),
        ("x-callback-token", "wrong"),
    )
    .await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        gw.get(&format!("/v1/messages/{id}")).await.body["status"],
        "accepted"
    );
    let reply = post_webhook(
        &gw,
        "kaleyra",
        callback,
        ("x-callback-token", KALEYRA_TOKEN),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        gw.get(&format!("/v1/messages/{id}")).await.body["status"],
        "delivered"
    );

    let sent = send_via(&gw, "legacy", json!({})).await;
    let id = sent.body["id"].as_str().unwrap();
    let callback =
        serde_json::to_vec(&json!({"externalId": id, "status": "read", "timestamp": 1795255200}))
            .unwrap();
    let reply = post_webhook(
        &gw,
        "legacy",
        callback.clone(),
        ("x-callback-token", KALEYRA_TOKEN),
    )
    .await;
    assert_eq!(reply.status, 401, "another instance's token");
    let reply = post_webhook(&gw, "legacy", callback, ("x-callback-token", GENERIC_TOKEN)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        gw.get(&format!("/v1/messages/{id}")).await.body["status"],
        "read"
    );

    let events: Vec<Value> = received(&subscriber, 2)
        .await
        .iter()
        .map(|r| verified_event(r, EVENTS_SECRET))
        .collect();
    assert_eq!(
        events
            .iter()
            .map(|e| (
                e["provider"].as_str().unwrap(),
                e["status"].as_str().unwrap()
            ))
            .collect::<Vec<_>>(),
        [("kaleyra", "delivered"), ("legacy", "read")]
    );
    assert_eq!(events[0]["endpoint"], "kaleyra/in");
    assert_eq!(events[0]["refs"], json!({"ref": "customer1"}));
    assert_eq!(
        post_webhook(&gw, "nosuch", b"{}".to_vec(), ("x-callback-token", "x"))
            .await
            .status,
        404
    );
    gw.stop().await;
}

#[actix_web::test]
async fn inbound_replies_and_calls_become_events() {
    let subscriber = subscriber_ok().await;
    let gw = Gateway::start_with(|s| subscribe(s, &subscriber.uri())).await;
    let inbound = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
        "field": "messages",
        "value": {"messaging_product": "whatsapp",
                  "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                  "contacts": [{"profile": {"name": "Ana"}, "wa_id": "14085551234"}],
                  "messages": [{"from": "14085551234", "id": "wamid.IN1", "timestamp": "1795255200",
                                "type": "interactive",
                                "interactive": {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}}}]}}]}]});
    assert_eq!(
        post_meta_webhook(&gw, &inbound).await.body,
        json!({"events": 1})
    );
    assert_eq!(
        post_meta_webhook(&gw, &inbound).await.body,
        json!({"events": 0})
    );
    let call = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
        "field": "calls",
        "value": {"messaging_product": "whatsapp",
                  "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                  "calls": [{"id": "wacid.C1", "from": "14085551234", "to": "15550783881", "event": "terminate",
                             "timestamp": "1795255300", "direction": "USER_INITIATED", "status": "COMPLETED",
                             "start_time": "1795255200", "end_time": "1795255300", "duration": 100,
                             "cta_payload": "campaign_winter_2026"}]}}]}]});
    assert_eq!(
        post_meta_webhook(&gw, &call).await.body,
        json!({"events": 1})
    );

    let events: Vec<Value> = received(&subscriber, 2)
        .await
        .iter()
        .map(|r| verified_event(r, EVENTS_SECRET))
        .collect();
    assert_eq!(events[0]["type"], "message.inbound");
    assert_eq!(events[0]["from"], "+14085551234");
    assert_eq!(events[0]["to"], "+15550783881");
    assert_eq!(events[0]["inbound"]["type"], "button_reply");
    assert_eq!(
        events[0]["inbound"]["reply"],
        json!({"id": "yes", "title": "Yes"})
    );
    assert_eq!(events[1]["type"], "call.terminate");
    assert_eq!(events[1]["call"]["id"], "wacid.C1");
    assert_eq!(events[1]["call"]["cta_payload"], "campaign_winter_2026");
    assert_eq!(events[1]["call"]["duration_secs"], 100);
    assert_eq!(events[1]["occurred_at"], "2026-11-21T10:01:40Z");
    gw.stop().await;
}

#[actix_web::test]
async fn a_failing_subscriber_gets_the_same_event_until_it_answers_2xx() {
    let subscriber = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&subscriber)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(&subscriber)
        .await;
    let gw = Gateway::start_with(|s| subscribe(s, &subscriber.uri())).await;
    let sent = send_via(&gw, "meta", json!({})).await;
    let id = sent.body["id"].as_str().unwrap();
    let wamid = sent.body["provider_message_id"].as_str().unwrap();
    post_meta_webhook(&gw, &meta_status(wamid, id, "sent", "1795255200")).await;

    let deliveries = received(&subscriber, 3).await;
    let ids: Vec<Value> = deliveries
        .iter()
        .map(|r| verified_event(r, EVENTS_SECRET)["event_id"].clone())
        .collect();
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[1], ids[2]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        subscriber.received_requests().await.unwrap().len(),
        3,
        "no delivery after the 2xx"
    );
    let metrics = gw
        .http
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"switchboard_webhook_events_total{provider="meta",type="message.status"} 1"#,
        r#"switchboard_event_deliveries_total{outcome="retry"} 2"#,
        r#"switchboard_event_deliveries_total{outcome="delivered"} 1"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line}\n{metrics}"
        );
    }
    gw.stop().await;
}

#[actix_web::test]
async fn the_callback_url_gets_the_event_signed_with_the_clients_token() {
    let callback = subscriber_ok().await;
    let gw = Gateway::start().await;
    let url = format!("{}/hooks/orders", callback.uri());
    let sent = send_via(&gw, "meta", json!({"callback_url": url})).await;
    let id = sent.body["id"].as_str().unwrap();
    let wamid = sent.body["provider_message_id"].as_str().unwrap();
    post_meta_webhook(&gw, &meta_status(wamid, id, "delivered", "1795255200")).await;
    let deliveries = received(&callback, 1).await;
    assert_eq!(deliveries[0].url.path(), "/hooks/orders");
    let event = verified_event(&deliveries[0], TOKEN);
    assert_eq!(event["message_id"], id);
    assert_eq!(event["refs"], json!({"ref": "customer1"}));
    gw.stop().await;
}

#[actix_web::test]
async fn another_clients_message_is_not_found() {
    let gw = Gateway::start_with(|s| {
        s.clients.push(Client {
            name: "support".into(),
            token: SecretString::from("support-token"),
        })
    })
    .await;
    let sent = send_via(&gw, "meta", json!({})).await;
    let id = sent.body["id"].as_str().unwrap();
    let other = gw
        .http
        .get(format!("{}/v1/messages/{id}", gw.url))
        .bearer_auth("support-token")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    let body: Value = other.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert_eq!(
        gw.get("/v1/messages/01JD3W6Q8S3M1V2H7KX2F5N9ZC")
            .await
            .status,
        404
    );
    assert_eq!(gw.get(&format!("/v1/messages/{id}")).await.status, 200);
    gw.stop().await;
}

#[actix_web::test]
async fn messages_and_undelivered_events_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store_url = common::sqlite_url(&dir.path().join("switchboard.db"));
    let subscriber = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&subscriber)
        .await;
    let settings = |s: &mut Settings| {
        subscribe(s, &subscriber.uri());
        s.webhooks.max_attempts = 1000;
        s.store_url = store_url.clone();
    };

    let first = Gateway::start_with(settings).await;
    let sent = send_via(&first, "meta", json!({})).await;
    let id = sent.body["id"].as_str().unwrap().to_string();
    let wamid = sent.body["provider_message_id"]
        .as_str()
        .unwrap()
        .to_string();
    post_meta_webhook(&first, &meta_status(&wamid, &id, "delivered", LONG_AGO.0)).await;
    let refused = received(&subscriber, 1).await;
    let event_id = verified_event(&refused[0], EVENTS_SECRET)["event_id"].clone();
    first.stop().await;
    // Long enough for the stopped gateway's delivery worker to notice and end.
    tokio::time::sleep(Duration::from_millis(800)).await;

    subscriber.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&subscriber)
        .await;
    let second = Gateway::start_with(settings).await;
    let message = second.get(&format!("/v1/messages/{id}")).await;
    assert_eq!(message.status, 200, "{}", message.body);
    assert_eq!(message.body["status"], "delivered");
    assert_eq!(statuses(&message.body), ["accepted", "delivered"]);
    assert_eq!(message.body["provider_message_id"], wamid.as_str());

    let delivered = received(&subscriber, 1).await;
    let event = verified_event(&delivered[0], EVENTS_SECRET);
    assert_eq!(event["event_id"], event_id, "the same event, redelivered");
    assert_eq!(event["message_id"], id.as_str());
    second.stop().await;
}

#[actix_web::test]
async fn a_subscriber_that_never_answers_does_not_hold_up_the_others() {
    // Accepts connections (the kernel's backlog) and never answers.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let black_hole_url = format!("http://{}", black_hole.local_addr().unwrap());
    let subscriber = subscriber_ok().await;
    let gw = Gateway::start_with(|s| {
        subscribe(s, &black_hole_url);
        subscribe(s, &subscriber.uri());
    })
    .await;
    for (n, status) in ["sent", "delivered", "read"].into_iter().enumerate() {
        let sent = send_via(&gw, "meta", json!({})).await;
        let id = sent.body["id"].as_str().unwrap();
        let wamid = sent.body["provider_message_id"].as_str().unwrap();
        post_meta_webhook(&gw, &meta_status(wamid, id, status, "1795255200")).await;
        // Each event reaches the healthy subscriber while the black hole still holds the
        // earlier ones (its deliveries time out only after 10 s).
        received(&subscriber, n + 1).await;
    }
    gw.stop().await;
    drop(black_hole);
}

#[actix_web::test]
async fn webhook_bodies_over_one_mebibyte_get_413_in_the_error_shape() {
    let gw = Gateway::start().await;
    let mut body = br#"{"externalId": "x", "status": "sent", "pad": ""#.to_vec();
    body.resize(1024 * 1024 + 1, b' ');
    let reply = post_webhook(&gw, "legacy", body, ("x-callback-token", GENERIC_TOKEN)).await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.error_code(), "payload_too_large");
    gw.stop().await;
}
