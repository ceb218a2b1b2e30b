//! POST /v1/templates and POST /v1/call-links over real HTTP.

mod common;

use common::Gateway;
use serde_json::json;
use switchboard_sim::Behaviour;

fn voice_call_template(ttl_minutes: i64) -> serde_json::Value {
    json!({
        "name": "wa_voice_call", "category": "MARKETING", "language": "en",
        "components": [
            {"type": "BODY", "text": "You can call us on WhatsApp now for faster service!"},
            {"type": "BUTTONS", "buttons": [
                {"type": "voice_call", "text": "Call Now", "ttl_minutes": ttl_minutes},
                {"type": "URL", "text": "Contact Support", "url": "https://example.com/support"}]}]
    })
}

#[actix_web::test]
async fn templates_reach_metas_message_templates_with_the_token() {
    let gw = Gateway::start().await;
    let template = voice_call_template(1440);
    let reply = gw.post("/v1/templates?provider=meta", &template).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["status"], "PENDING");
    assert_eq!(reply.body["category"], "MARKETING");
    assert!(reply.body["id"].as_str().is_some_and(|id| !id.is_empty()));
    let received = gw.sim.requests_to("meta");
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].path,
        "/meta/v24.0/102290129340398/message_templates"
    );
    let auth = received[0]
        .headers
        .iter()
        .find(|(n, _)| n == "authorization")
        .map(|(_, v)| v.as_str());
    assert_eq!(auth, Some("Bearer sim-meta-token"));
    assert_eq!(received[0].body, template);

    // The only Meta provider is the default.
    let reply = gw.post("/v1/templates", &template).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    gw.stop().await;
}

#[actix_web::test]
async fn template_rules_are_checked_before_anything_is_sent() {
    let gw = Gateway::start().await;
    for (ttl, ok) in [(1439, false), (1440, true), (43200, true), (43201, false)] {
        let reply = gw
            .post("/v1/templates?provider=meta", &voice_call_template(ttl))
            .await;
        if ok {
            assert_eq!(reply.status, 201, "{ttl}: {}", reply.body);
        } else {
            assert_eq!(reply.status, 400, "{ttl}");
            assert_eq!(
                reply.body["error"]["field"],
                "components[1].buttons[0].ttl_minutes"
            );
        }
    }
    let mut long_text = voice_call_template(1440);
    long_text["components"][1]["buttons"][0]["text"] = json!("x".repeat(21));
    let reply = gw.post("/v1/templates?provider=meta", &long_text).await;
    assert_eq!(
        reply.body["error"]["field"],
        "components[1].buttons[0].text"
    );
    let reply = gw
        .post("/v1/templates?provider=kaleyra", &voice_call_template(1440))
        .await;
    assert_eq!(
        (reply.status, reply.body["error"]["field"].as_str()),
        (400, Some("provider"))
    );
    assert_eq!(
        gw.sim.requests_to("meta").len(),
        2,
        "only the two valid templates were sent"
    );
    gw.stop().await;
}

#[actix_web::test]
async fn template_errors_use_the_one_error_shape() {
    let gw = Gateway::start().await;
    gw.sim.set_behaviour("meta", Behaviour::Error("190".into()));
    let reply = gw
        .post("/v1/templates?provider=meta", &voice_call_template(1440))
        .await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.body["error"]["code"], "provider_auth_failed");
    assert_eq!(reply.body["error"]["provider_code"], "190");
    assert_eq!(reply.body["error"]["provider"], "meta");
    gw.stop().await;
}

#[actix_web::test]
async fn call_links_url_encode_the_payload() {
    let gw = Gateway::start().await;
    let reply = gw
        .post(
            "/v1/call-links",
            &json!({"number": "+15550783881", "payload": "campaign_winter_2026"}),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        json!({"url": "https://wa.me/call/15550783881?biz_payload=campaign_winter_2026"})
    );
    let reply = gw
        .post(
            "/v1/call-links",
            &json!({"number": "+15550783881", "payload": "winter sale & more=yes"}),
        )
        .await;
    assert_eq!(
        reply.body["url"],
        "https://wa.me/call/15550783881?biz_payload=winter%20sale%20%26%20more%3Dyes"
    );
    let reply = gw
        .post("/v1/call-links", &json!({"number": "15550783881"}))
        .await;
    assert_eq!(reply.body["url"], "https://wa.me/call/15550783881");
    let reply = gw
        .post(
            "/v1/call-links",
            &json!({"number": "+15550783881", "payload": "p".repeat(513)}),
        )
        .await;
    assert_eq!(
        (reply.status, reply.body["error"]["field"].as_str()),
        (400, Some("payload"))
    );
    let reply = gw.post("/v1/call-links", &json!({"payload": "x"})).await;
    assert_eq!(
        (reply.status, reply.body["error"]["field"].as_str()),
        (400, Some("number"))
    );
    let reply = gw.post_raw("/v1/call-links", b"{}".to_vec(), None).await;
    assert_eq!(reply.status, 401);
    gw.stop().await;
}
