//! Real HTTP over loopback against a started simulator.

use std::time::{Duration, Instant};

use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use switchboard_sim::{Behaviour, SimCredentials, Simulator, ENDPOINTS};

const META_TOKEN: &str = "sim-meta-token";
const GENERIC_HEADER: &str = "x-api-key";
const GENERIC_KEY: &str = "sim-generic-key";

async fn sim() -> Simulator {
    Simulator::start("127.0.0.1:0".parse().unwrap(), SimCredentials::sandbox())
        .await
        .expect("simulator starts")
}

fn kaleyra_key(pod: &str) -> String {
    SimCredentials::sandbox().kaleyra_api_keys[pod].clone()
}

fn meta_text() -> Value {
    json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "14085551234",
           "type": "text", "text": {"body": "hi"}, "biz_opaque_callback_data": "01JD"})
}

fn kaleyra_text() -> Value {
    json!({"messaging_object": {"messaging_product": "whatsapp", "recipient_type": "individual",
           "to": "+14085551234", "type": "text", "text": {"body": "hi"}},
           "extra_info": {"ref": "customer1", "wa_source": "api"}})
}

fn generic_text() -> Value {
    json!({"from": "15550783881", "to": "+14085551234", "type": "text", "body": "hi",
           "externalId": "01JD", "callbacks": "http://localhost/webhooks/generic"})
}

async fn meta_send(sim: &Simulator, token: Option<&str>, body: &Value) -> Response {
    let mut req = Client::new()
        .post(format!("{}/v21.0/1234567890/messages", sim.meta_base_url()))
        .json(body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.unwrap()
}

async fn kaleyra_send(
    sim: &Simulator,
    pod: &str,
    key: &str,
    number: &str,
    body: &Value,
) -> Response {
    Client::new()
        .post(format!(
            "{}/v2/HXAP16XXXXXX97IN/whatsapp/{number}/messages",
            sim.kaleyra_pod_base_url(pod)
        ))
        .header("api-key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn generic_send(sim: &Simulator, key: &str, body: &Value) -> Response {
    Client::new()
        .post(format!("{}/whatsapp/messages", sim.generic_base_url()))
        .header("X-Api-Key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn status_json(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
    )
}

fn assert_graph_error(body: &Value, code: u64) {
    let error = &body["error"];
    assert_eq!(error["code"], code, "{body}");
    assert_eq!(error["type"], "OAuthException", "{body}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("(#{code}) ")),
        "{body}"
    );
    assert!(
        !error["error_data"]["details"].as_str().unwrap().is_empty(),
        "{body}"
    );
    assert!(!error["fbtrace_id"].as_str().unwrap().is_empty(), "{body}");
}

// ---------------------------------------------------------------- Meta

#[tokio::test]
async fn meta_send_success_body() {
    let sim = sim().await;
    let (status, body) = status_json(meta_send(&sim, Some(META_TOKEN), &meta_text()).await).await;
    assert_eq!(status, 200);
    assert_eq!(body["messaging_product"], "whatsapp");
    assert_eq!(
        body["contacts"],
        json!([{"input": "14085551234", "wa_id": "14085551234"}])
    );
    let id = body["messages"][0]["id"].as_str().unwrap();
    assert!(id.starts_with("wamid."), "{id}");

    let (_, again) = status_json(meta_send(&sim, Some(META_TOKEN), &meta_text()).await).await;
    assert_ne!(again["messages"][0]["id"], id, "message ids are unique");
    sim.stop().await;
}

#[tokio::test]
async fn meta_refuses_missing_or_wrong_token_with_190() {
    let sim = sim().await;
    for token in [None, Some("wrong")] {
        let (status, body) = status_json(meta_send(&sim, token, &meta_text()).await).await;
        assert_eq!(status, 401);
        assert_eq!(body["error"]["code"], 190);
        assert_eq!(body["error"]["type"], "OAuthException");
        assert_eq!(
            body["error"]["message"],
            "Invalid OAuth access token - Cannot parse access token"
        );
        assert!(body["error"]["fbtrace_id"].is_string());
    }
    // Recorded even though refused.
    let recorded = sim.requests_to("meta");
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].answered_status, Some(401));
}

#[tokio::test]
async fn meta_refuses_malformed_messages_with_100() {
    let sim = sim().await;
    let mut plus = meta_text();
    plus["to"] = json!("+14085551234");
    let mut no_type = meta_text();
    no_type.as_object_mut().unwrap().remove("type");
    let mut wrong_product = meta_text();
    wrong_product["messaging_product"] = json!("sms");
    for body in [plus, no_type, wrong_product, json!(["not", "an", "object"])] {
        let (status, answer) = status_json(meta_send(&sim, Some(META_TOKEN), &body).await).await;
        assert_eq!(status, 400, "{body}");
        assert_graph_error(&answer, 100);
    }
    let response = Client::new()
        .post(format!("{}/v21.0/1/messages", sim.meta_base_url()))
        .bearer_auth(META_TOKEN)
        .body("to=1")
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(response).await.1["error"]["code"], 100);
}

#[tokio::test]
async fn meta_creates_templates_pending() {
    let sim = sim().await;
    let template = json!({"name": "call_us", "category": "MARKETING", "language": "en_US",
        "components": [{"type": "BODY", "text": "Call us"},
                       {"type": "BUTTONS", "buttons": [{"type": "voice_call", "text": "Call Now", "ttl_minutes": 10080}]}]});
    let response = Client::new()
        .post(format!(
            "{}/v21.0/waba-901723/message_templates",
            sim.meta_base_url()
        ))
        .bearer_auth(META_TOKEN)
        .json(&template)
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(response).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "PENDING");
    assert_eq!(body["category"], "MARKETING");
    let id = body["id"].as_str().unwrap();
    assert!(
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()),
        "{id}"
    );

    let unauthorized = Client::new()
        .post(format!(
            "{}/v21.0/waba-901723/message_templates",
            sim.meta_base_url()
        ))
        .json(&template)
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
}

#[tokio::test]
async fn meta_documented_errors_carry_code_and_table_status() {
    let sim = sim().await;
    let table: &[(u64, u16)] = &[
        (0, 401),
        (1, 400),
        (2, 503),
        (3, 500),
        (4, 400),
        (10, 403),
        (33, 400),
        (100, 400),
        (200, 403),
        (250, 403),
        (368, 403),
        (80007, 400),
        (130403, 400),
        (130429, 400),
        (130472, 400),
        (130497, 403),
        (131000, 500),
        (131005, 403),
        (131008, 400),
        (131009, 400),
        (131016, 500),
        (131021, 400),
        (131026, 400),
        (131031, 403),
        (131042, 400),
        (131047, 400),
        (131048, 400),
        (131049, 400),
        (131050, 400),
        (131051, 400),
        (131053, 400),
        (131056, 400),
        (131057, 500),
        (132000, 400),
        (132001, 404),
        (132005, 400),
        (132007, 400),
        (132012, 400),
        (132015, 400),
        (132016, 400),
        (132068, 400),
        (132069, 400),
        (133004, 503),
        (133010, 400),
        (133016, 400),
        (135000, 400),
    ];
    for &(code, http) in table {
        sim.set_behaviour("meta", Behaviour::Error(code.to_string()));
        let (status, body) =
            status_json(meta_send(&sim, Some(META_TOKEN), &meta_text()).await).await;
        assert_eq!(status.as_u16(), http, "code {code}");
        assert_graph_error(&body, code);
    }
    sim.set_behaviour("meta", Behaviour::Error("131026".into()));
    let (_, body) = status_json(meta_send(&sim, Some(META_TOKEN), &meta_text()).await).await;
    assert_eq!(body["error"]["message"], "(#131026) Message Undeliverable");
    assert_eq!(body["error"]["error_data"]["messaging_product"], "whatsapp");

    sim.set_behaviour("meta", Behaviour::Error("190".into()));
    let (status, body) = status_json(meta_send(&sim, Some(META_TOKEN), &meta_text()).await).await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_u64()),
        (401, Some(190))
    );
}

// ---------------------------------------------------------------- Kaleyra

#[tokio::test]
async fn kaleyra_accepts_on_every_pod_with_its_key() {
    let sim = sim().await;
    for pod in ["in", "sg", "eu"] {
        let (status, body) = status_json(
            kaleyra_send(
                &sim,
                pod,
                &kaleyra_key(pod),
                "+919000000001",
                &kaleyra_text(),
            )
            .await,
        )
        .await;
        assert_eq!(status, 202, "{pod}");
        assert_eq!(body["code"], "WA202");
        assert_eq!(body["message"], "Request Accepted");
        assert_eq!(body["error"], json!({}));
        let id = body["data"]["message_id"].as_str().unwrap();
        assert!(
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()),
            "{id}"
        );
        assert_eq!(sim.requests_to(&format!("kaleyra/{pod}")).len(), 1);
    }
    // A percent-encoded "+" is the same number.
    let response = kaleyra_send(
        &sim,
        "in",
        &kaleyra_key("in"),
        "%2B919000000001",
        &kaleyra_text(),
    )
    .await;
    assert_eq!(response.status(), 202);
}

#[tokio::test]
async fn kaleyra_wrong_key_is_rbc001_verbatim() {
    let sim = sim().await;
    // The IN key is not valid on the SG pod.
    let response = kaleyra_send(
        &sim,
        "sg",
        &kaleyra_key("in"),
        "+919000000001",
        &kaleyra_text(),
    )
    .await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"code":"RBC001","message":"Incorrect SID or API key.","data":[],"error":{"error":"Incorrect SID or API key."}}"#
    );
    let no_key = Client::new()
        .post(format!(
            "{}/v2/SID/whatsapp/+919000000001/messages",
            sim.kaleyra_pod_base_url("eu")
        ))
        .json(&kaleyra_text())
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(no_key).await.1["code"], "RBC001");
}

#[tokio::test]
async fn kaleyra_checks_number_and_payload() {
    let sim = sim().await;
    let key = kaleyra_key("in");
    let (status, body) =
        status_json(kaleyra_send(&sim, "in", &key, "919000000001", &kaleyra_text()).await).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"code": "WA401", "message": "Phone number is not present or does not belong to the account.",
        "data": {}, "error": {"phone_number": "Phone number is not present or does not belong to the account."}})
    );

    let wa400 = json!({"code": "WA400", "message": "Refer to correct payload format", "data": {},
        "error": {"payload": "Incorrect payload format"}});
    for body in [
        json!({"to": "+14085551234"}),
        json!({"messaging_object": "text"}),
    ] {
        let (status, answer) =
            status_json(kaleyra_send(&sim, "in", &key, "+919000000001", &body).await).await;
        assert_eq!((status.as_u16(), &answer), (400, &wa400), "{body}");
    }
    let form = Client::new()
        .post(format!(
            "{}/v2/SID/whatsapp/+919000000001/messages",
            sim.kaleyra_pod_base_url("in")
        ))
        .header("api-key", &key)
        .header("content-type", "text/plain")
        .body(kaleyra_text().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(form).await, (StatusCode::BAD_REQUEST, wa400));
}

#[tokio::test]
async fn kaleyra_documented_errors() {
    let sim = sim().await;
    let key = kaleyra_key("in");
    sim.set_behaviour("kaleyra/in", Behaviour::Error("WA500".into()));
    let response = kaleyra_send(&sim, "in", &key, "+919000000001", &kaleyra_text()).await;
    assert_eq!(response.status(), 500);
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"code":"WA500","message":"Please try again later","data":{},"error":{"error":"Internal server error"}}"#
    );
    for (code, http) in [
        ("RBC001", 401),
        ("WA401", 401),
        ("WA-401", 401),
        ("WA400", 400),
        ("E110", 400),
        ("WAV2101", 400),
    ] {
        sim.set_behaviour("kaleyra/in", Behaviour::Error(code.into()));
        let (status, body) =
            status_json(kaleyra_send(&sim, "in", &key, "+919000000001", &kaleyra_text()).await)
                .await;
        assert_eq!((status.as_u16(), body["code"].as_str()), (http, Some(code)));
        assert!(
            body["message"].is_string() && body["error"].is_object(),
            "{body}"
        );
    }
    // Other pods are unaffected.
    let sg = kaleyra_send(
        &sim,
        "sg",
        &kaleyra_key("sg"),
        "+919000000001",
        &kaleyra_text(),
    )
    .await;
    assert_eq!(sg.status(), 202);
}

#[tokio::test]
async fn kaleyra_unknown_pod_is_404_and_not_recorded() {
    let sim = sim().await;
    let response = kaleyra_send(&sim, "us", "k", "+919000000001", &kaleyra_text()).await;
    assert_eq!(response.status(), 404);
    assert!(sim.requests().is_empty());
}

// ---------------------------------------------------------------- generic

#[tokio::test]
async fn generic_accepts_with_empty_object() {
    let sim = sim().await;
    let (status, body) = status_json(generic_send(&sim, GENERIC_KEY, &generic_text()).await).await;
    assert_eq!((status.as_u16(), body), (202, json!({})));
}

#[tokio::test]
async fn generic_checks_auth_and_numbers() {
    let sim = sim().await;
    let (status, body) = status_json(generic_send(&sim, "wrong", &generic_text()).await).await;
    assert_eq!(
        (status.as_u16(), body),
        (401, json!({"code": "401", "message": "unauthorized"}))
    );

    let mut from_plus = generic_text();
    from_plus["from"] = json!("+15550783881");
    let mut to_digits = generic_text();
    to_digits["to"] = json!("14085551234");
    for body in [from_plus, to_digits, json!("text")] {
        let (status, answer) = status_json(generic_send(&sim, GENERIC_KEY, &body).await).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(answer["code"], "400");
        assert!(answer["message"].is_string());
    }
}

#[tokio::test]
async fn generic_documented_errors() {
    let sim = sim().await;
    for code in ["400", "401", "403", "422", "429", "500"] {
        sim.set_behaviour("generic", Behaviour::Error(code.into()));
        let (status, body) =
            status_json(generic_send(&sim, GENERIC_KEY, &generic_text()).await).await;
        assert_eq!(status.as_str(), code);
        assert_eq!(body["code"], code);
        assert!(body["message"].is_string());
    }
}

#[tokio::test]
async fn generic_without_configured_auth_accepts_anyone() {
    let credentials = SimCredentials {
        generic_auth_header: String::new(),
        ..SimCredentials::sandbox()
    };
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap(), credentials)
        .await
        .unwrap();
    let response = Client::new()
        .post(format!("{}/whatsapp/messages", sim.generic_base_url()))
        .json(&generic_text())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
}

// ---------------------------------------------------------------- behaviours

#[tokio::test]
async fn down_answers_503_html() {
    let sim = sim().await;
    sim.set_behaviour("meta", Behaviour::Down);
    let response = meta_send(&sim, Some(META_TOKEN), &meta_text()).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let text = response.text().await.unwrap();
    assert!(text.contains("<html>") && text.contains("503"), "{text}");
    assert_eq!(sim.requests_to("meta")[0].answered_status, Some(503));
}

#[tokio::test]
async fn raw_answers_exactly() {
    let sim = sim().await;
    sim.set_behaviour(
        "kaleyra/eu",
        Behaviour::Raw {
            status: 502,
            headers: vec![
                ("Content-Type".into(), "text/html".into()),
                ("Retry-After".into(), "7".into()),
            ],
            body: "<html><body>Bad Gateway</body></html>".into(),
        },
    );
    let response = kaleyra_send(
        &sim,
        "eu",
        &kaleyra_key("eu"),
        "+919000000001",
        &kaleyra_text(),
    )
    .await;
    assert_eq!(response.status(), 502);
    assert_eq!(response.headers()["retry-after"], "7");
    assert_eq!(response.headers()["content-type"], "text/html");
    assert_eq!(
        response.text().await.unwrap(),
        "<html><body>Bad Gateway</body></html>"
    );
}

#[tokio::test]
async fn slow_delays_then_answers_normally() {
    let sim = sim().await;
    sim.set_behaviour("generic", Behaviour::Slow(Duration::from_millis(400)));
    let started = Instant::now();
    let response = generic_send(&sim, GENERIC_KEY, &generic_text()).await;
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(response.status(), 202);
    // Slow still checks the request.
    let refused = generic_send(&sim, "wrong", &generic_text()).await;
    assert_eq!(refused.status(), 401);
}

#[tokio::test]
async fn blackhole_never_answers_while_other_endpoints_do() {
    let sim = sim().await;
    sim.set_behaviour("kaleyra/in", Behaviour::BlackHole);
    let client = Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let url = format!(
        "{}/v2/SID/whatsapp/+919000000001/messages",
        sim.kaleyra_pod_base_url("in")
    );
    let hole = client
        .post(&url)
        .header("api-key", kaleyra_key("in"))
        .json(&kaleyra_text())
        .send();
    let other = async {
        // Sent while the black-holed request is waiting.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        let response = kaleyra_send(
            &sim,
            "sg",
            &kaleyra_key("sg"),
            "+919000000001",
            &kaleyra_text(),
        )
        .await;
        (response.status(), started.elapsed())
    };
    let (hole, (other_status, other_took)) = tokio::join!(hole, other);
    let error = hole.expect_err("a black hole does not answer");
    assert!(error.is_timeout(), "{error}");
    assert_eq!(other_status, 202);
    assert!(other_took < Duration::from_millis(400), "{other_took:?}");

    let recorded = sim.requests_to("kaleyra/in");
    assert_eq!(recorded.len(), 1, "recorded at arrival");
    assert_eq!(recorded[0].answered_status, None);
}

#[tokio::test]
async fn behaviour_back_to_normal() {
    let sim = sim().await;
    sim.set_behaviour("meta", Behaviour::Down);
    sim.set_behaviour("meta", Behaviour::Normal);
    assert_eq!(
        meta_send(&sim, Some(META_TOKEN), &meta_text())
            .await
            .status(),
        200
    );
    sim.set_behaviour("meta", Behaviour::Down);
    sim.reset();
    assert_eq!(
        meta_send(&sim, Some(META_TOKEN), &meta_text())
            .await
            .status(),
        200
    );
    assert_eq!(
        sim.requests().len(),
        1,
        "reset cleared the earlier recordings"
    );
}

#[tokio::test]
#[should_panic(expected = "unknown endpoint")]
async fn set_behaviour_refuses_unknown_endpoint() {
    sim().await.set_behaviour("kaleyra/us", Behaviour::Down);
}

#[tokio::test]
#[should_panic(expected = "no documented error")]
async fn set_behaviour_refuses_code_of_another_provider() {
    sim()
        .await
        .set_behaviour("kaleyra/in", Behaviour::Error("131026".into()));
}

// ---------------------------------------------------------------- recording

#[tokio::test]
async fn records_path_lowercased_headers_and_body_in_order() {
    let sim = sim().await;
    meta_send(&sim, Some(META_TOKEN), &meta_text()).await;
    kaleyra_send(
        &sim,
        "in",
        &kaleyra_key("in"),
        "+919000000001",
        &kaleyra_text(),
    )
    .await;
    generic_send(&sim, GENERIC_KEY, &generic_text()).await;
    Client::new()
        .post(format!("{}/whatsapp/messages", sim.generic_base_url()))
        .header("X-Api-Key", GENERIC_KEY)
        .body("not json")
        .send()
        .await
        .unwrap();

    let all = sim.requests();
    let endpoints: Vec<&str> = all.iter().map(|r| r.endpoint.as_str()).collect();
    assert_eq!(endpoints, ["meta", "kaleyra/in", "generic", "generic"]);

    let meta = &all[0];
    assert_eq!(meta.method, "POST");
    assert_eq!(meta.path, "/meta/v21.0/1234567890/messages");
    assert_eq!(meta.body, meta_text());
    assert_eq!(meta.answered_status, Some(200));
    assert!(meta
        .headers
        .contains(&("authorization".into(), format!("Bearer {META_TOKEN}"))));

    let kaleyra = &all[1];
    assert_eq!(
        kaleyra.path,
        "/kaleyra/in/v2/HXAP16XXXXXX97IN/whatsapp/+919000000001/messages"
    );
    assert!(kaleyra
        .headers
        .contains(&("api-key".into(), kaleyra_key("in"))));
    assert!(kaleyra
        .headers
        .contains(&("content-type".into(), "application/json".into())));
    assert_eq!(kaleyra.body["extra_info"]["ref"], "customer1");
    assert_eq!(kaleyra.answered_status, Some(202));

    assert!(all[2]
        .headers
        .contains(&(GENERIC_HEADER.into(), GENERIC_KEY.into())));
    assert!(all
        .iter()
        .all(|r| r.headers.iter().all(|(n, _)| *n == n.to_ascii_lowercase())));
    assert_eq!(all[3].body, json!("not json"));
    assert_eq!(all[3].answered_status, Some(400));

    assert_eq!(sim.requests_to("generic").len(), 2);
    assert!(sim.requests_to("kaleyra/sg").is_empty());
}

#[tokio::test]
async fn clones_share_the_server_and_stop_closes_it() {
    let sim = sim().await;
    let clone = sim.clone();
    clone.set_behaviour("meta", Behaviour::Down);
    assert_eq!(
        meta_send(&sim, Some(META_TOKEN), &meta_text())
            .await
            .status(),
        503
    );
    assert_eq!(clone.requests().len(), 1);
    let url = format!("{}/_sim/requests", sim.base_url());
    sim.stop().await;
    assert!(Client::new().get(&url).send().await.is_err(), "stopped");
}

// ---------------------------------------------------------------- HTTP control API

#[tokio::test]
async fn control_api_sets_behaviours_lists_and_clears() {
    let sim = sim().await;
    let client = Client::new();
    let control = format!("{}/_sim", sim.base_url());

    let set = client
        .put(format!("{control}/behaviour/kaleyra/in"))
        .json(&json!({"mode": "error", "code": "WA500"}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(set).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"endpoint": "kaleyra/in", "behaviour": {"mode": "error", "code": "WA500"}})
    );
    let answer = kaleyra_send(
        &sim,
        "in",
        &kaleyra_key("in"),
        "+919000000001",
        &kaleyra_text(),
    )
    .await;
    assert_eq!(status_json(answer).await.1["code"], "WA500");

    for (endpoint, spec, expect) in [
        ("meta", json!({"mode": "slow", "delay_ms": 10}), 200),
        ("generic", json!({"mode": "down"}), 503),
        (
            "kaleyra/sg",
            json!({"mode": "raw", "status": 502, "body": "<html>bad gateway</html>",
                               "headers": {"content-type": "text/html"}}),
            502,
        ),
    ] {
        let set = client
            .put(format!("{control}/behaviour/{endpoint}"))
            .json(&spec)
            .send()
            .await
            .unwrap();
        assert_eq!(set.status(), 200, "{endpoint}");
        let status = match endpoint {
            "meta" => meta_send(&sim, Some(META_TOKEN), &meta_text())
                .await
                .status(),
            "generic" => generic_send(&sim, GENERIC_KEY, &generic_text())
                .await
                .status(),
            _ => kaleyra_send(
                &sim,
                "sg",
                &kaleyra_key("sg"),
                "+919000000001",
                &kaleyra_text(),
            )
            .await
            .status(),
        };
        assert_eq!(status, expect, "{endpoint}");
    }
    let behaviours: Value = client
        .get(format!("{control}/behaviour"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(behaviours["kaleyra/eu"], json!({"mode": "normal"}));
    assert_eq!(behaviours["generic"], json!({"mode": "down"}));
    assert_eq!(behaviours.as_object().unwrap().len(), ENDPOINTS.len());

    let all: Vec<Value> = client
        .get(format!("{control}/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[0]["endpoint"], "kaleyra/in");
    assert_eq!(all[0]["answered_status"], 500);
    assert_eq!(all[0]["body"]["extra_info"]["ref"], "customer1");
    let only: Vec<Value> = client
        .get(format!("{control}/requests?endpoint=kaleyra/in"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(only.len(), 1);

    let cleared = client
        .delete(format!("{control}/requests"))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), 204);
    assert!(sim.requests().is_empty());
    assert_eq!(
        generic_send(&sim, GENERIC_KEY, &generic_text())
            .await
            .status(),
        503,
        "behaviours kept"
    );

    let reset = client
        .post(format!("{control}/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 204);
    assert!(sim.requests().is_empty());
    assert_eq!(
        generic_send(&sim, GENERIC_KEY, &generic_text())
            .await
            .status(),
        202
    );
}

#[tokio::test]
async fn control_api_refuses_bad_input() {
    let sim = sim().await;
    let client = Client::new();
    let control = format!("{}/_sim", sim.base_url());
    let put = |endpoint: &str, body: Value| {
        client
            .put(format!("{control}/behaviour/{endpoint}"))
            .json(&body)
            .send()
    };
    assert_eq!(
        put("kaleyra/us", json!({"mode": "down"}))
            .await
            .unwrap()
            .status(),
        404
    );
    for (endpoint, body) in [
        ("meta", json!({"mode": "sideways"})),
        ("meta", json!({"mode": "error"})),
        ("meta", json!({"mode": "error", "code": "WA500"})),
        ("kaleyra/in", json!({"mode": "error", "code": "131026"})),
        ("generic", json!({"mode": "error", "code": "200"})),
        ("generic", json!({"mode": "slow"})),
        ("generic", json!({"mode": "raw", "status": 1000})),
        ("generic", json!({"mode": "down", "colour": "red"})),
    ] {
        let response = put(endpoint, body.clone()).await.unwrap();
        let (status, answer) = status_json(response).await;
        assert_eq!(status, 400, "{endpoint} {body}");
        assert!(answer["error"].is_string());
    }
    let unknown = client
        .get(format!("{control}/requests?endpoint=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn stop_does_not_wait_for_black_holes() {
    let sim = sim().await;
    sim.set_behaviour("generic", Behaviour::BlackHole);
    let url = format!("{}/whatsapp/messages", sim.generic_base_url());
    let waiting = tokio::spawn(
        Client::new()
            .post(url)
            .header("x-api-key", GENERIC_KEY)
            .json(&generic_text())
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sim.requests_to("generic").len(), 1);
    tokio::time::timeout(Duration::from_secs(5), sim.stop())
        .await
        .expect("stop is prompt");
    let answer = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("connection closed");
    assert!(
        answer.unwrap().is_err(),
        "the waiting client sees the connection close"
    );
}
