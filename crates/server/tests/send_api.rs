//! POST /v1/messages over real HTTP against the provider simulator: exact provider requests,
//! validation, errors, failover order, dry run, auth.

mod common;

use common::{Gateway, TOKEN};
use serde_json::{json, Value};
use switchboard_sim::Behaviour;

fn text(body: &str) -> Value {
    json!({"to": "+14085551234", "type": "text", "text": {"body": body}})
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[actix_web::test]
async fn text_goes_to_the_first_kaleyra_pod_exactly_as_documented() {
    let gw = Gateway::start().await;
    let mut message = text("Hello");
    message["refs"] = json!({"ref": "customer1", "ref1": "marketing", "ref2": "dictionary"});
    let reply = gw.send(&message).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["status"], "accepted");
    assert_eq!(reply.body["provider"], "kaleyra");
    assert_eq!(reply.body["endpoint"], "kaleyra/in");
    let id = reply.body["id"].as_str().unwrap();
    assert_eq!(id.len(), 26);
    assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
    assert!(reply.body["provider_message_id"]
        .as_str()
        .unwrap()
        .starts_with('A'));
    assert_eq!(reply.body["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(reply.body["attempts"][0]["outcome"], "accepted");
    assert!(reply.headers.contains_key("x-request-id"));

    let received = gw.sim.requests();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.endpoint, "kaleyra/in");
    assert_eq!(
        request.path,
        "/kaleyra/in/v2/HXAP16XXXXXX97IN/whatsapp/+15550783881/messages"
    );
    assert_eq!(
        header(&request.headers, "api-key"),
        Some("sim-kaleyra-key-in")
    );
    assert_eq!(
        header(&request.headers, "content-type"),
        Some("application/json")
    );
    assert_eq!(
        request.body,
        json!({
            "messaging_object": {"messaging_product": "whatsapp", "recipient_type": "individual",
                "to": "+14085551234", "type": "text", "text": {"body": "Hello"}},
            "extra_info": {"ref": "customer1", "ref1": "marketing", "ref2": "dictionary", "wa_source": "api"}
        })
    );
    gw.stop().await;
}

#[actix_web::test]
async fn voice_call_goes_to_meta_with_the_callback_id() {
    let gw = Gateway::start().await;
    let message = json!({
        "to": "12015550123", "provider": "meta", "type": "interactive",
        "interactive": {"type": "voice_call",
            "body": {"text": "You can call us on WhatsApp now for faster service!"},
            "action": {"name": "voice_call", "parameters": {"display_text": "Call on WhatsApp", "ttl_minutes": 100, "payload": "support_v2_button"}}}
    });
    let reply = gw.send(&message).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["endpoint"], "meta");
    assert!(reply.body["provider_message_id"]
        .as_str()
        .unwrap()
        .starts_with("wamid."));
    let request = &gw.sim.requests_to("meta")[0];
    assert_eq!(request.path, "/meta/v24.0/106540352242922/messages");
    assert_eq!(
        header(&request.headers, "authorization"),
        Some("Bearer sim-meta-token")
    );
    assert_eq!(
        request.body,
        json!({
            "messaging_product": "whatsapp", "recipient_type": "individual", "to": "12015550123",
            "type": "interactive",
            "interactive": {"type": "voice_call",
                "body": {"text": "You can call us on WhatsApp now for faster service!"},
                "action": {"name": "voice_call", "parameters": {"display_text": "Call on WhatsApp", "ttl_minutes": 100, "payload": "support_v2_button"}}},
            "biz_opaque_callback_data": reply.body["id"]
        })
    );
    gw.stop().await;
}

#[actix_web::test]
async fn image_by_link_goes_to_the_generic_api() {
    let gw = Gateway::start().await;
    let message = json!({"to": "+1000000002", "provider": "legacy", "type": "image", "image": {"link": "http://domain.com/image"}});
    let reply = gw.send(&message).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let request = &gw.sim.requests_to("generic")[0];
    assert_eq!(request.path, "/generic/whatsapp/messages");
    assert_eq!(
        header(&request.headers, "x-api-key"),
        Some("sim-generic-key")
    );
    assert_eq!(
        request.body,
        json!({"from": "15550783881", "to": "+1000000002", "type": "image", "body": "http://domain.com/image",
               "externalId": reply.body["id"], "callbacks": format!("{}/webhooks/legacy", gw.url)})
    );
    gw.stop().await;
}

#[actix_web::test]
async fn a_failing_pod_fails_over_in_route_order() {
    let gw = Gateway::start().await;
    gw.sim
        .set_behaviour("kaleyra/in", Behaviour::Error("WA500".into()));
    gw.sim.set_behaviour("kaleyra/sg", Behaviour::Down);
    let reply = gw.send(&text("x")).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["endpoint"], "kaleyra/eu");
    let attempts = reply.body["attempts"].as_array().unwrap();
    let summary: Vec<(&str, &str)> = attempts
        .iter()
        .map(|a| {
            (
                a["endpoint"].as_str().unwrap(),
                a["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("kaleyra/in", "failed"),
            ("kaleyra/sg", "failed"),
            ("kaleyra/eu", "accepted")
        ]
    );
    assert_eq!(
        attempts[0]["error"],
        json!({"code": "provider_unavailable", "provider_status": 500, "provider_code": "WA500",
               "provider_message": "Please try again later",
               "provider_details": "{\"error\":\"Internal server error\"}"})
    );
    assert_eq!(attempts[1]["error"]["code"], "provider_unavailable");
    assert_eq!(attempts[1]["error"]["provider_status"], 503);
    let order: Vec<String> = gw
        .sim
        .requests()
        .iter()
        .map(|r| r.endpoint.clone())
        .collect();
    assert_eq!(order, ["kaleyra/in", "kaleyra/sg", "kaleyra/eu"]);
    gw.stop().await;
}

#[actix_web::test]
async fn a_final_failure_is_not_failed_over() {
    let gw = Gateway::start().await;
    gw.sim
        .set_behaviour("kaleyra/in", Behaviour::Error("WA400".into()));
    let reply = gw.send(&text("x")).await;
    assert_eq!(reply.status, 400);
    let error = &reply.body["error"];
    assert_eq!(error["code"], "invalid_request");
    assert_eq!(error["provider"], "kaleyra");
    assert_eq!(error["endpoint"], "kaleyra/in");
    assert_eq!(error["provider_code"], "WA400");
    assert_eq!(error["provider_status"], 400);
    assert_eq!(error["provider_message"], "Refer to correct payload format");
    assert_eq!(error["retryable"], false);
    assert_eq!(error["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(gw.sim.requests().len(), 1, "exactly one provider request");
    gw.stop().await;
}

#[actix_web::test]
async fn all_endpoints_failing_answers_the_last_failure() {
    let gw = Gateway::start().await;
    for endpoint in ["kaleyra/in", "kaleyra/sg", "kaleyra/eu", "meta", "generic"] {
        gw.sim.set_behaviour(
            endpoint,
            Behaviour::Raw {
                status: 502,
                headers: vec![],
                body: "<html>bad gateway</html>".into(),
            },
        );
    }
    let reply = gw.send(&text("x")).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.error_code(), "provider_unavailable");
    assert_eq!(reply.body["error"]["retryable"], true);
    assert_eq!(reply.body["error"]["endpoint"], "legacy");
    assert_eq!(
        reply.body["error"]["provider_message"],
        "<html>bad gateway</html>"
    );
    assert_eq!(reply.body["error"]["attempts"].as_array().unwrap().len(), 5);
    gw.stop().await;
}

#[actix_web::test]
async fn rate_limits_carry_retry_after() {
    let gw = Gateway::start().await;
    gw.sim.set_behaviour("meta", Behaviour::Raw {
        status: 429,
        headers: vec![("Retry-After".into(), "42".into())],
        body: r#"{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException","code":130429,"fbtrace_id":"x"}}"#.into(),
    });
    let mut message = text("x");
    message["provider"] = json!("meta");
    let reply = gw.send(&message).await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.error_code(), "rate_limited");
    assert_eq!(reply.headers["retry-after"], "42");
    assert_eq!(reply.body["error"]["provider_code"], "130429");

    gw.sim
        .set_behaviour("meta", Behaviour::Error("131056".into()));
    let reply = gw.send(&message).await;
    assert_eq!(reply.status, 429);
    assert_eq!(
        reply.headers["retry-after"], "30",
        "a default when the provider names none"
    );
    gw.stop().await;
}

#[actix_web::test]
async fn unsupported_endpoints_are_skipped_and_named() {
    let gw = Gateway::start().await;
    let sticker = json!({"to": "+14085551234", "provider": "legacy", "type": "sticker", "sticker": {"id": "st1"}});
    let reply = gw.send(&sticker).await;
    assert_eq!(reply.status, 422);
    assert_eq!(reply.error_code(), "unsupported_by_provider");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("legacy"),
        "{}",
        reply.body
    );
    assert_eq!(reply.body["error"]["attempts"][0]["reason"], "unsupported");
    assert!(gw.sim.requests().is_empty());

    // A group message: Kaleyra cannot send to groups, Meta can.
    let group = json!({"to": "120363025246125486@g.us", "recipient_type": "group", "type": "text", "text": {"body": "x"}});
    let reply = gw.send(&group).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["endpoint"], "meta");
    let reasons: Vec<&str> = reply.body["attempts"].as_array().unwrap()[..3]
        .iter()
        .map(|a| a["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["unsupported"; 3]);
    assert_eq!(gw.sim.requests().len(), 1);
    gw.stop().await;
}

#[actix_web::test]
async fn validation_failures_name_the_field_and_send_nothing() {
    let gw = Gateway::start().await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"to": "+14085551234", "type": "fax"}), "type"),
        (json!({"to": "+14085551234", "type": "image"}), "image"),
        (
            json!({"to": "+14085551234", "type": "text", "text": {"body": 5}}),
            "text.body",
        ),
        (
            json!({"to": "not-a-number", "type": "text", "text": {"body": "x"}}),
            "to",
        ),
        (
            json!({"to": "+14085551234", "type": "text", "text": {"body": "x"}, "refs": {"ref": "r".repeat(256)}}),
            "refs.ref",
        ),
        (text(""), "text.body"),
        (text(&"a".repeat(4097)), "text.body"),
        (
            json!({"to": "+14085551234", "type": "image", "image": {"id": "1", "link": "https://x.example/a"}}),
            "image",
        ),
        (
            json!({"to": "+14085551234", "type": "interactive", "interactive": {"type": "voice_call", "action": {"name": "voice_call", "parameters": {"display_text": "x".repeat(21)}}}}),
            "interactive.action.parameters.display_text",
        ),
        (
            json!({"to": "+14085551234", "type": "interactive", "interactive": {"type": "voice_call", "action": {"name": "voice_call", "parameters": {"ttl_minutes": 43201}}}}),
            "interactive.action.parameters.ttl_minutes",
        ),
        (
            json!({"to": "+14085551234", "type": "interactive", "interactive": {"type": "cta_url", "action": {"name": "cta_url", "parameters": {"display_text": "See", "url": "ftp://x"}}}}),
            "interactive.action.parameters.url",
        ),
        (
            json!({"to": "+14085551234", "type": "interactive", "interactive": {"type": "button", "body": {"text": "x"}, "action": {"buttons": [
            {"type": "reply", "reply": {"id": "1", "title": "Same"}}, {"type": "reply", "reply": {"id": "2", "title": "Same"}}]}}}),
            "interactive.action.buttons[1].reply.title",
        ),
        (
            json!({"to": "+14085551234", "type": "template", "template": {"name": "t", "language": {"code": "en"}, "components": [
            {"type": "button", "sub_type": "voice_call", "parameters": [{"type": "payload", "payload": "p".repeat(513)}]}]}}),
            "template.components[0].parameters[0].payload",
        ),
        (
            json!({"to": "+14085551234", "type": "text", "text": {"body": "x"}, "callback_url": "http://169.254.169.254/"}),
            "callback_url",
        ),
    ];
    for (message, field) in cases {
        let reply = gw.send(&message).await;
        assert_eq!(reply.status, 400, "{message}: {}", reply.body);
        assert_eq!(reply.error_code(), "invalid_request");
        assert_eq!(reply.body["error"]["field"], field, "{message}");
        assert!(reply.body["error"]["request_id"].is_string());
    }
    let reply = gw
        .post_raw("/v1/messages", b"{\"to\": ".to_vec(), Some(TOKEN))
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["error"]["field"], "$");
    assert!(gw.sim.requests().is_empty(), "nothing may reach a provider");
    gw.stop().await;
}

#[actix_web::test]
async fn unknown_sender_and_provider_outside_the_route() {
    let gw = Gateway::start().await;
    let mut message = text("x");
    message["from"] = json!("+15559999999");
    let reply = gw.send(&message).await;
    assert_eq!((reply.status, reply.error_code()), (422, "unknown_sender"));
    let mut message = text("x");
    message["provider"] = json!("twilio");
    let reply = gw.send(&message).await;
    assert_eq!((reply.status, reply.error_code()), (422, "unknown_sender"));
    assert_eq!(reply.body["error"]["field"], "provider");
    assert!(gw.sim.requests().is_empty());
    gw.stop().await;
}

#[actix_web::test]
async fn authentication_is_required_on_v1() {
    let gw = Gateway::start().await;
    let body = serde_json::to_vec(&text("x")).unwrap();
    for token in [None, Some("wrong"), Some("sandbox-token-but-longer")] {
        let reply = gw.post_raw("/v1/messages", body.clone(), token).await;
        assert_eq!(reply.status, 401);
        assert_eq!(reply.error_code(), "unauthenticated");
    }
    assert!(gw.sim.requests().is_empty());
    let health = gw
        .http
        .get(format!("{}/healthz", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    gw.stop().await;
}

#[actix_web::test]
async fn request_ids_are_echoed_or_generated() {
    let gw = Gateway::start().await;
    let response = gw
        .http
        .get(format!("{}/healthz", gw.url))
        .header("x-request-id", "trace-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-123");
    let reply = gw.post_raw("/v1/messages", b"{}".to_vec(), None).await;
    let generated = reply.headers["x-request-id"].to_str().unwrap();
    assert_eq!(reply.body["error"]["request_id"], generated);
    let reply = gw.get("/v1/nothing-here").await;
    assert_eq!((reply.status, reply.error_code()), (404, "not_found"));
    gw.stop().await;
}

#[actix_web::test]
async fn the_api_describes_itself() {
    let gw = Gateway::start().await;
    // The base URL says what this is and where to look.
    let reply = gw.get("/").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["service"], "switchboard");
    assert_eq!(reply.body["api"], "/v1/messages");
    assert_eq!(reply.body["docs"], "/docs/");
    // The OpenAPI document describes every route, and /docs serves its page.
    let spec = gw.get("/openapi.json").await;
    assert_eq!(spec.status, 200);
    assert_eq!(spec.body["openapi"], "3.1.0");
    for path in [
        "/v1/messages",
        "/v1/messages/{id}",
        "/v1/providers",
        "/v1/call-links",
        "/v1/templates",
        "/webhooks/{instance}",
        "/healthz",
        "/readyz",
        "/metrics",
        "/",
    ] {
        assert!(
            spec.body["paths"].get(path).is_some(),
            "{path} is not described"
        );
    }
    let codes = &spec.body["components"]["schemas"]["ErrorCode"]["enum"];
    assert_eq!(
        codes.as_array().map(Vec::len),
        Some(switchboard_core::ErrorCode::ALL.len())
    );
    let page = gw
        .http
        .get(format!("{}/docs/", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("swagger-ui"));
    gw.stop().await;
}

#[actix_web::test]
async fn bodies_over_the_limit_get_413() {
    let gw = Gateway::start_with(|s| s.server.max_body_bytes = 1024).await;
    let reply = gw.send(&text(&"a".repeat(2000))).await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (413, "payload_too_large")
    );
    assert!(gw.sim.requests().is_empty());
    gw.stop().await;
}

#[actix_web::test]
async fn dry_run_plans_every_endpoint_masks_secrets_and_sends_nothing() {
    let gw = Gateway::start().await;
    let reply = gw.post("/v1/messages?dry_run=true", &text("plan me")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["dry_run"], true);
    let plan = reply.body["plan"].as_array().unwrap();
    let endpoints: Vec<&str> = plan
        .iter()
        .map(|p| p["endpoint"].as_str().unwrap())
        .collect();
    assert_eq!(
        endpoints,
        ["kaleyra/in", "kaleyra/sg", "kaleyra/eu", "meta", "legacy"]
    );
    assert_eq!(plan[0]["headers"]["api-key"], "****");
    assert_eq!(plan[3]["headers"]["authorization"], "****");
    assert_eq!(plan[4]["headers"]["x-api-key"], "****");
    assert_eq!(plan[0]["method"], "POST");
    assert_eq!(
        plan[0]["body"]["messaging_object"]["text"]["body"],
        "plan me"
    );
    let printed = reply.body.to_string();
    for secret in [
        "sim-kaleyra-key-in",
        "sim-kaleyra-key-sg",
        "sim-kaleyra-key-eu",
        "sim-meta-token",
        "sim-generic-key",
        "sandbox-token",
    ] {
        assert!(
            !printed.contains(secret),
            "{secret} leaked into the dry run"
        );
    }
    // An endpoint that cannot carry the message is listed as skipped.
    let sticker = json!({"to": "+14085551234", "type": "sticker", "sticker": {"link": "https://x.example/s.webp"}});
    let reply = gw.post("/v1/messages?dry_run=true", &sticker).await;
    assert_eq!(reply.body["plan"].as_array().unwrap().len(), 4);
    assert_eq!(reply.body["skipped"][0]["endpoint"], "legacy");
    assert_eq!(
        reply.body["skipped"][0]["error"]["code"],
        "unsupported_by_provider"
    );
    assert!(gw.sim.requests().is_empty(), "a dry run sends nothing");
    gw.stop().await;
}

async fn send_with_key(
    gw: &Gateway,
    key: &str,
    token: &str,
    message: &Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = gw
        .http
        .post(format!("{}/v1/messages", gw.url))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(message)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap())
}

#[actix_web::test]
async fn idempotency_keys_replay_refuse_other_bodies_and_scope_per_client() {
    let gw = Gateway::start_with(|s| {
        s.clients.push(switchboard_server::config::Client {
            name: "support".into(),
            token: "support-token".to_string().into(),
        })
    })
    .await;
    let (status, headers, first) = send_with_key(&gw, "order-42", TOKEN, &text("once")).await;
    assert_eq!(status, 202, "{first}");
    assert!(!headers.contains_key("idempotent-replayed"));
    let (status, headers, again) = send_with_key(&gw, "order-42", TOKEN, &text("once")).await;
    assert_eq!(status, 202);
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(again, first, "the same body, id included");
    assert_eq!(gw.sim.requests().len(), 1, "nothing sent again");

    let (status, _, body) = send_with_key(&gw, "order-42", TOKEN, &text("different")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );

    let (status, _, body) = send_with_key(&gw, "order-42", "support-token", &text("once")).await;
    assert_eq!(status, 202, "another client's key space: {body}");
    assert_ne!(body["id"], first["id"]);
    assert_eq!(gw.sim.requests().len(), 2);

    // Errors are final responses too, and are replayed.
    gw.sim
        .set_behaviour("kaleyra/in", Behaviour::Error("WA400".into()));
    let (status, _, failed) = send_with_key(&gw, "bad-1", TOKEN, &text("x")).await;
    assert_eq!(status, 400);
    gw.sim.set_behaviour("kaleyra/in", Behaviour::Normal);
    let (status, headers, replayed) = send_with_key(&gw, "bad-1", TOKEN, &text("x")).await;
    assert_eq!((status, &replayed), (400, &failed));
    assert_eq!(headers["idempotent-replayed"], "true");

    let (status, _, body) = send_with_key(&gw, &"k".repeat(256), TOKEN, &text("x")).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("Idempotency-Key"))
    );
    gw.stop().await;
}

#[actix_web::test]
async fn an_answer_that_did_not_reach_the_recipient_is_not_kept_under_the_key() {
    let gw =
        Gateway::start_with(|s| common::shorten_timeouts(s, std::time::Duration::from_millis(300)))
            .await;
    let via_meta = |body: &str| json!({"to": "+14085551234", "type": "text", "text": {"body": body}, "provider": "meta"});
    // provider_unavailable and rate_limited: nothing was delivered, so the same key sends again.
    for (behaviour, status, code) in [
        (Behaviour::Down, 503, "provider_unavailable"),
        (Behaviour::Error("130429".into()), 429, "rate_limited"),
    ] {
        gw.sim.reset();
        gw.sim.set_behaviour("meta", behaviour);
        let (first, _, body) = send_with_key(&gw, code, TOKEN, &via_meta(code)).await;
        assert_eq!(
            (first, body["error"]["code"].as_str()),
            (status, Some(code))
        );
        gw.sim.set_behaviour("meta", Behaviour::Normal);
        let (again, headers, body) = send_with_key(&gw, code, TOKEN, &via_meta(code)).await;
        assert_eq!(again, 202, "{code}: sent again: {body}");
        assert!(!headers.contains_key("idempotent-replayed"));
        assert_eq!(gw.sim.requests_to("meta").len(), 2, "{code}");
        // From now on the acceptance is what the key replays.
        let (third, headers, replayed) = send_with_key(&gw, code, TOKEN, &via_meta(code)).await;
        assert_eq!((third, &replayed), (202, &body));
        assert_eq!(headers["idempotent-replayed"], "true");
        assert_eq!(gw.sim.requests_to("meta").len(), 2, "{code}");
    }
    // provider_timeout: the provider may have taken it; the answer is kept and nothing is resent.
    gw.sim.reset();
    gw.sim.set_behaviour("meta", Behaviour::BlackHole);
    let (first, _, timed_out) = send_with_key(&gw, "timeout", TOKEN, &via_meta("t")).await;
    assert_eq!(
        (first, timed_out["error"]["code"].as_str()),
        (504, Some("provider_timeout"))
    );
    gw.sim.set_behaviour("meta", Behaviour::Normal);
    let (again, headers, replayed) = send_with_key(&gw, "timeout", TOKEN, &via_meta("t")).await;
    assert_eq!((again, &replayed), (504, &timed_out));
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(gw.sim.requests_to("meta").len(), 1);
    gw.stop().await;
}

#[actix_web::test]
async fn an_idempotency_key_in_flight_gets_409() {
    let gw = Gateway::start().await;
    gw.sim.set_behaviour(
        "kaleyra/in",
        Behaviour::Slow(std::time::Duration::from_millis(800)),
    );
    let message = text("slow");
    let first = send_with_key(&gw, "slow-1", TOKEN, &message);
    let second = async {
        for _ in 0..100 {
            if !gw.sim.requests().is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        send_with_key(&gw, "slow-1", TOKEN, &message).await
    };
    let ((first_status, _, _), (second_status, _, body)) = tokio::join!(first, second);
    assert_eq!(first_status, 202);
    assert_eq!(second_status, 409);
    assert_eq!(body["error"]["code"], "idempotency_key_in_use");
    assert_eq!(body["error"]["retryable"], true);
    assert_eq!(gw.sim.requests().len(), 1);
    gw.stop().await;
}

/// A synchronous send is recorded after its send (one write). Once a store write has failed,
/// messages are recorded before their send again: a store that cannot take the message answers
/// 503 and the provider gets nothing.
#[actix_web::test]
async fn after_a_failed_store_write_the_store_is_asked_first_and_nothing_is_sent() {
    let gw = Gateway::start().await;
    let message = json!({"to": "+14085551234", "type": "text", "text": {"body": "hi"},
                         "provider": "meta"});
    let first = gw.send(&message).await;
    assert_eq!(first.status, 202, "{}", first.body);
    assert_eq!(gw.sim.requests_to("meta").len(), 1);

    // Every write fails from now on.
    gw.state.store.close().await;
    // Sent, then not recorded: the caller still gets the provider's answer.
    let second = gw.send(&message).await;
    assert_eq!(second.status, 202, "{}", second.body);
    assert_eq!(gw.sim.requests_to("meta").len(), 2);
    // Now the store is asked first, refuses, and nothing is sent.
    for _ in 0..2 {
        let refused = gw.send(&message).await;
        assert_eq!(refused.status, 503, "{}", refused.body);
        assert_eq!(refused.body["error"]["code"], "provider_unavailable");
    }
    assert_eq!(
        gw.sim.requests_to("meta").len(),
        2,
        "sent while the store was down"
    );
    gw.stop().await;
}
