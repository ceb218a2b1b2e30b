//! Asynchronous sending (`Prefer: respond-async`, `send_at`), pacing, retries and their events,
//! measured where it matters: at the provider. Every timing assertion reads the simulator's
//! `received_at_us`, the moment each hand-over reached the provider route.
//!
//! Timing lower bounds allow `JITTER_US` for loopback and scheduling jitter: a request is stamped
//! when the simulator's handler runs, which may be a little later than when the gateway wrote it,
//! so two stamps can come out closer together than the gateway spaced them.

mod common;

use common::queue::*;
use common::{Gateway, Reply};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use switchboard_server::config::{Settings, Subscriber};
use switchboard_sim::{Behaviour, RecordedRequest};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const SENDER_PHONE_NUMBER_ID: &str = "106540352242922";
const TO: &str = "+14085551234";
/// Loopback jitter allowed on every lower bound between two arrivals (see the module docs).
const JITTER_US: u64 = 20_000;
const META_RATE_LIMIT: &str = r#"{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException","code":130429,"error_subcode":2494055,"fbtrace_id":"AbCdEf"}}"#;

// ---------------------------------------------------------------------------------------------
// helpers

fn statuses(message: &Value) -> Vec<&str> {
    message["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["status"].as_str().expect("an event status"))
        .collect()
}

/// The history of a message that was queued and then reached `last`: `last` alone, or
/// `queued` then `last`.
fn assert_history_ends_in(message: &Value, last: &str) {
    let history = statuses(message);
    assert!(
        history == [last] || history == ["queued", last],
        "events {history:?}, expected [{last}] or [queued, {last}]: {message}"
    );
    for event in message["events"].as_array().unwrap() {
        assert!(event["at"].is_string(), "every event has `at`: {event}");
    }
}

fn arrival_times(requests: &[RecordedRequest]) -> Vec<u64> {
    let mut times: Vec<u64> = requests.iter().map(|r| r.received_at_us).collect();
    times.sort_unstable();
    times
}

/// The largest number of arrivals within any window of `window_us` (sorted times).
fn max_in_window(times: &[u64], window_us: u64) -> usize {
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= window_us {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

/// At most `per_second` arrivals in any window of 980 ms (one second less `JITTER_US`).
fn assert_paced(times: &[u64], per_second: usize, context: &str) {
    let most = max_in_window(times, 1_000_000 - JITTER_US);
    assert!(
        most <= per_second,
        "{context}: {most} arrivals within 980 ms, budget {per_second}/s; gaps (ms): {:?}",
        gaps_ms(times)
    );
}

fn gaps_ms(times: &[u64]) -> Vec<u64> {
    times.windows(2).map(|w| (w[1] - w[0]) / 1000).collect()
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// Every message id in `ids` reached the provider exactly once, and nothing else did.
fn assert_each_once(requests: &[RecordedRequest], ids: &[String]) {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for request in requests {
        *seen.entry(message_id(request)).or_default() += 1;
    }
    let expected: BTreeMap<&str, usize> = ids.iter().map(|id| (id.as_str(), 1)).collect();
    assert_eq!(
        seen, expected,
        "each queued message handed over exactly once"
    );
}

fn subscribe(settings: &mut Settings, url: &str) {
    settings.webhooks.subscribers.push(Subscriber {
        url: url.to_string(),
        secret: SecretString::from("events-secret"),
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

/// Waits for the subscriber to receive the `message.status` event `status` of message `id`.
async fn wait_for_event(server: &MockServer, id: &str, status: &str) -> Value {
    for _ in 0..200 {
        let requests = server.received_requests().await.unwrap_or_default();
        let found = requests
            .iter()
            .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .find(|e| {
                e["type"] == "message.status" && e["message_id"] == id && e["status"] == status
            });
        if let Some(event) = found {
            return event;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let got: Vec<Value> = server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(|r| serde_json::from_slice(&r.body).ok())
        .collect();
    panic!("no message.status {status} event for {id}; received: {got:?}");
}

// ---------------------------------------------------------------------------------------------
// 1. the happy path

#[actix_web::test]
async fn respond_async_answers_queued_then_hands_over_once_and_reports_accepted() {
    let subscriber = subscriber_ok().await;
    let gw = Gateway::start_with(|s| subscribe(s, &subscriber.uri())).await;
    // A slow provider keeps the hand-over open, so the message is seen `queued` meanwhile.
    gw.sim
        .set_behaviour("meta", Behaviour::Slow(Duration::from_millis(600)));
    let reply = gw
        .post_with_headers("/v1/messages", &text_to(TO), &[ASYNC])
        .await;
    let id = queued_id(&reply);
    assert_eq!(reply.body, json!({"id": id, "status": "queued"}));

    let queued = gw.get(&format!("/v1/messages/{id}")).await;
    assert_eq!(queued.status, 200, "stored before the 202: {}", queued.body);
    assert_eq!(queued.body["status"], "queued");
    assert_eq!(queued.body["to"], TO);
    assert_eq!(queued.body["from"], SENDER);
    assert_eq!(queued.body["type"], "text");
    assert!(queued.body.get("error").is_none());

    let message = wait_final(&gw, &id, Duration::from_secs(5)).await;
    assert_eq!(message["status"], "accepted", "{message}");
    assert_history_ends_in(&message, "accepted");
    assert_eq!(message["provider"], "meta");
    assert_eq!(message["endpoint"], "meta");
    let wamid = message["provider_message_id"].as_str().expect("a wamid");
    assert!(wamid.starts_with("wamid."), "{wamid}");
    assert!(message.get("error").is_none(), "{message}");

    let received = gw.sim.requests_to("meta");
    assert_eq!(received.len(), 1, "handed over exactly once");
    assert_eq!(message_id(&received[0]), id);
    assert_eq!(received[0].body["to"], "14085551234");
    assert_eq!(received[0].body["text"]["body"], "queued hello");
    assert_eq!(received[0].answered_status, Some(200));

    let event = wait_for_event(&subscriber, &id, "accepted").await;
    assert_eq!(event["provider"], "meta");
    assert_eq!(event["endpoint"], "meta");
    assert_eq!(event["provider_message_id"], wamid);
    assert_eq!(event["client"], "sandbox");
    assert_eq!((&event["from"], &event["to"]), (&json!(SENDER), &json!(TO)));
    assert_eq!(event["error"], Value::Null);

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gw.sim.requests().len(), 1, "and never again");
    gw.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 2. validation is the synchronous one

#[actix_web::test]
async fn an_invalid_async_message_gets_the_synchronous_answer_and_nothing_is_queued() {
    let gw = Gateway::start().await;
    let cases = [
        (
            json!({"to": TO, "type": "text", "text": {"body": ""}}),
            400,
            "invalid_request",
            "text.body",
        ),
        (
            json!({"to": TO, "type": "text", "text": {"body": "hi"}, "from": "+15559999999"}),
            422,
            "unknown_sender",
            "from",
        ),
        (
            json!({"to": TO, "type": "text", "text": {"body": "hi"}, "provider": "nowhere"}),
            422,
            "unknown_sender",
            "provider",
        ),
        (
            json!({"to": "not-a-number", "type": "text", "text": {"body": "hi"}}),
            400,
            "invalid_request",
            "to",
        ),
    ];
    let without_request_id = |reply: &Reply| {
        let mut body = reply.body.clone();
        if let Some(error) = body["error"].as_object_mut() {
            error.remove("request_id");
        }
        body
    };
    for (message, status, code, field) in cases {
        let sync = gw.send(&message).await;
        let queued = gw
            .post_with_headers("/v1/messages", &message, &[ASYNC])
            .await;
        for (how, reply) in [("sync", &sync), ("async", &queued)] {
            assert_eq!(
                (
                    reply.status,
                    reply.error_code(),
                    reply.body["error"]["field"].as_str()
                ),
                (status, code, Some(field)),
                "{how}: {message} → {}",
                reply.body
            );
        }
        assert_eq!(
            without_request_id(&queued),
            without_request_id(&sync),
            "{message}"
        );
    }
    // `send_at` makes a send asynchronous, and is validated like every other field.
    for send_at in [json!("tomorrow"), json!(12)] {
        let message = json!({"to": TO, "type": "text", "text": {"body": "hi"}, "send_at": send_at});
        for headers in [&[][..], &[ASYNC][..]] {
            let reply = gw
                .post_with_headers("/v1/messages", &message, headers)
                .await;
            assert_eq!(
                (
                    reply.status,
                    reply.error_code(),
                    reply.body["error"]["field"].as_str()
                ),
                (400, "invalid_request", Some("send_at")),
                "{message} {headers:?} → {}",
                reply.body
            );
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        gw.sim.requests().is_empty(),
        "nothing reaches a provider: {:?}",
        gw.sim.requests()
    );
    gw.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 3. pacing

#[actix_web::test]
async fn queued_messages_are_handed_over_at_the_senders_max_per_second() {
    let gw = Gateway::start_with(|s| set_rate(s, SENDER, 10)).await;
    let messages: Vec<Value> = (0..25).map(|i| text_to(&recipient(i))).collect();
    let ids = queue_all(&gw, &messages).await;
    let received = wait_for_requests(&gw, "meta", 25, Duration::from_secs(10)).await;
    let times = arrival_times(&received);
    assert_paced(&times, 10, "one sender at 10/s");
    // 25 hand-overs spaced 100 ms apart (no initial burst) span 2.4 s.
    let span = times[24] - times[0];
    assert!(
        span >= 2_400_000 * 98 / 100,
        "span {} ms: faster than 10/s; gaps (ms): {:?}",
        span / 1000,
        gaps_ms(&times)
    );
    assert!(
        span <= 2_400_000 + 1_500_000,
        "span {} ms: far slower than 10/s; gaps (ms): {:?}",
        span / 1000,
        gaps_ms(&times)
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_each_once(&gw.sim.requests_to("meta"), &ids);
    gw.stop().await;
}

#[actix_web::test]
async fn pacing_is_per_sender() {
    const OTHER: &str = "+15550783882";
    const OTHER_PHONE_NUMBER_ID: &str = "106540352242923";
    let gw = Gateway::start_with(|s| {
        set_rate(s, SENDER, 10);
        let mut other = s.senders[SENDER].clone();
        other.number = OTHER.into();
        other.route = vec!["meta".into()];
        other.phone_number_id = Some(OTHER_PHONE_NUMBER_ID.into());
        other.max_per_second = 10;
        s.senders.insert(OTHER.into(), other);
    })
    .await;
    let mut messages = Vec::new();
    for i in 0..12 {
        for from in [SENDER, OTHER] {
            let mut message = text_to(&recipient(i));
            message["from"] = json!(from);
            messages.push(message);
        }
    }
    let ids = queue_all(&gw, &messages).await;
    let received = wait_for_requests(&gw, "meta", 24, Duration::from_secs(10)).await;
    let of = |phone_number_id: &str| -> Vec<RecordedRequest> {
        received
            .iter()
            .filter(|r| r.path.contains(&format!("/{phone_number_id}/")))
            .cloned()
            .collect()
    };
    for (sender, phone_number_id) in [
        (SENDER, SENDER_PHONE_NUMBER_ID),
        (OTHER, OTHER_PHONE_NUMBER_ID),
    ] {
        let mine = of(phone_number_id);
        assert_eq!(mine.len(), 12, "{sender}");
        let times = arrival_times(&mine);
        assert_paced(&times, 10, sender);
        assert!(
            times[11] - times[0] >= 1_100_000 * 98 / 100,
            "{sender}: 12 hand-overs at 10/s span 1.1 s; gaps (ms): {:?}",
            gaps_ms(&times)
        );
    }
    // Two budgets of 10/s together: more than one budget's worth in some second.
    let all = arrival_times(&received);
    let most = max_in_window(&all, 1_000_000);
    assert!(
        most >= 15,
        "two senders at 10/s each handed over at most {most} in a second: pacing is not per sender; gaps (ms): {:?}",
        gaps_ms(&all)
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_each_once(&gw.sim.requests_to("meta"), &ids);
    gw.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 4. per-recipient gap

#[actix_web::test]
async fn the_per_recipient_gap_spaces_one_recipient_and_holds_back_no_one_else() {
    let gw = Gateway::start_with(|s| {
        s.queue.per_recipient_gap_ms = 400;
        set_rate(s, SENDER, 100);
    })
    .await;
    let same = recipient(0);
    let others: Vec<String> = (1..=4).map(recipient).collect();
    // One after the other: first four to one recipient, then four to others, so that a queue
    // that waits for the recipient's gap in line would hold the others behind it.
    let mut ids = Vec::new();
    let mut queued_at = BTreeMap::new();
    for to in std::iter::repeat_n(&same, 4).chain(others.iter()) {
        let id = queue(&gw, &text_to(to)).await;
        queued_at.insert(id.clone(), now_us());
        ids.push(id);
    }
    let received = wait_for_requests(&gw, "meta", 8, Duration::from_secs(6)).await;
    let digits = |to: &str| to.trim_start_matches('+').to_string();
    let to_same: Vec<RecordedRequest> = received
        .iter()
        .filter(|r| r.body["to"] == digits(&same))
        .cloned()
        .collect();
    assert_eq!(to_same.len(), 4);
    let times = arrival_times(&to_same);
    for gap in times.windows(2).map(|w| w[1] - w[0]) {
        assert!(
            gap >= 400_000 - JITTER_US,
            "two hand-overs to one recipient {} ms apart, gap 400 ms; gaps (ms): {:?}",
            gap / 1000,
            gaps_ms(&times)
        );
    }
    assert!(
        times[3] - times[0] <= 3 * 400_000 + 1_000_000,
        "the gap holds far longer than 400 ms; gaps (ms): {:?}",
        gaps_ms(&times)
    );
    for request in received.iter().filter(|r| r.body["to"] != digits(&same)) {
        let id = message_id(request);
        let waited = request.received_at_us.saturating_sub(queued_at[id]);
        assert!(
            waited <= 300_000,
            "a message to {} waited {} ms after its 202: held back by another recipient's gap",
            request.body["to"],
            waited / 1000
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_each_once(&gw.sim.requests_to("meta"), &ids);
    gw.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 5.–8. retries

#[actix_web::test]
async fn a_rate_limited_hand_over_is_retried_no_sooner_than_retry_after() {
    let gw = Gateway::start_with(|s| s.queue.retry_base_ms = 100).await;
    gw.sim.set_behaviour(
        "meta",
        Behaviour::Raw {
            status: 429,
            headers: vec![
                ("retry-after".into(), "2".into()),
                ("content-type".into(), "application/json".into()),
            ],
            body: META_RATE_LIMIT.into(),
        },
    );
    let id = queue(&gw, &text_to(TO)).await;
    let first = wait_for_requests(&gw, "meta", 1, Duration::from_secs(5)).await;
    gw.sim.set_behaviour("meta", Behaviour::Normal);
    assert_eq!(message_id(&first[0]), id);

    let message = wait_final(&gw, &id, Duration::from_secs(8)).await;
    assert_eq!(message["status"], "accepted", "{message}");
    assert_history_ends_in(&message, "accepted");
    let received = gw.sim.requests_to("meta");
    assert_eq!(received.len(), 2, "one rate-limited try, one success");
    assert_eq!(received[0].answered_status, Some(429));
    assert_eq!(received[1].answered_status, Some(200));
    let gap = received[1].received_at_us - received[0].received_at_us;
    assert!(
        gap >= 2_000_000 - JITTER_US,
        "retried {} ms after a 429 with Retry-After: 2",
        gap / 1000
    );
    // Not much later either (a loose bound: the test binaries may run on a loaded machine).
    assert!(
        gap <= 2_000_000 + 3_000_000,
        "retried {} ms after a 429 with Retry-After: 2",
        gap / 1000
    );
    gw.stop().await;
}

#[actix_web::test]
async fn retryable_failures_back_off_exponentially_then_fail_after_max_attempts() {
    let subscriber = subscriber_ok().await;
    let gw = Gateway::start_with(|s| {
        subscribe(s, &subscriber.uri());
        s.queue.retry_base_ms = 100;
        s.queue.max_attempts = 3;
    })
    .await;
    gw.sim.set_behaviour("meta", Behaviour::Down);
    let id = queue(&gw, &text_to(TO)).await;
    let message = wait_final(&gw, &id, Duration::from_secs(5)).await;
    assert_eq!(message["status"], "failed", "{message}");
    assert_eq!(
        message["error"]["code"], "provider_unavailable",
        "{message}"
    );
    assert_history_ends_in(&message, "failed");

    let received = gw.sim.requests_to("meta");
    assert_eq!(received.len(), 3, "max_attempts hand-overs");
    assert!(received.iter().all(|r| message_id(r) == id));
    assert!(received.iter().all(|r| r.answered_status == Some(503)));
    let times = arrival_times(&received);
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // retry_base_ms · 2^(n-1): 100 ms after the first, 200 ms after the second.
    assert!(
        gaps[0] >= 100_000 - JITTER_US && gaps[1] >= 200_000 - JITTER_US,
        "backoff gaps (ms) {:?}, expected ≥ 100 then ≥ 200",
        gaps_ms(&times)
    );
    assert!(
        gaps[0] <= 1_100_000 && gaps[1] <= 1_200_000,
        "backoff gaps (ms) {:?}, expected about 100 then 200",
        gaps_ms(&times)
    );

    let event = wait_for_event(&subscriber, &id, "failed").await;
    assert_eq!(event["error"]["code"], "provider_unavailable", "{event}");
    // A fourth try would come 400 ms after the third.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        gw.sim.requests().len(),
        3,
        "nothing after the final failure"
    );
    gw.stop().await;
}

#[actix_web::test]
async fn a_final_provider_error_is_not_retried() {
    let gw = Gateway::start_with(|s| s.queue.retry_base_ms = 100).await;
    gw.sim
        .set_behaviour("meta", Behaviour::Error("131026".into()));
    let id = queue(&gw, &text_to(TO)).await;
    let message = wait_final(&gw, &id, Duration::from_secs(5)).await;
    assert_eq!(message["status"], "failed", "{message}");
    assert_eq!(
        message["error"]["code"], "recipient_unreachable",
        "{message}"
    );
    assert_eq!(message["error"]["provider_code"], "131026", "{message}");
    assert_history_ends_in(&message, "failed");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(gw.sim.requests_to("meta").len(), 1, "one hand-over only");
    gw.stop().await;
}

#[actix_web::test]
async fn a_timeout_is_final_without_retry_on_timeout() {
    let gw = Gateway::start_with(|s| {
        common::shorten_timeouts(s, Duration::from_millis(300));
        s.queue.retry_base_ms = 100;
    })
    .await;
    gw.sim.set_behaviour("meta", Behaviour::BlackHole);
    let id = queue(&gw, &text_to(TO)).await;
    let message = wait_final(&gw, &id, Duration::from_secs(5)).await;
    assert_eq!(message["status"], "failed", "{message}");
    assert_eq!(message["error"]["code"], "provider_timeout", "{message}");
    assert_history_ends_in(&message, "failed");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        gw.sim.requests_to("meta").len(),
        1,
        "the provider may have the message: not sent again"
    );
    gw.stop().await;
}

#[actix_web::test]
async fn a_timeout_is_retried_with_retry_on_timeout() {
    let gw = Gateway::start_with(|s| {
        common::shorten_timeouts(s, Duration::from_millis(300));
        s.resilience.retry_on_timeout = true;
        s.queue.retry_base_ms = 100;
        s.queue.max_attempts = 2;
    })
    .await;
    gw.sim.set_behaviour("meta", Behaviour::BlackHole);
    let id = queue(&gw, &text_to(TO)).await;
    let message = wait_final(&gw, &id, Duration::from_secs(5)).await;
    assert_eq!(message["status"], "failed", "{message}");
    assert_eq!(message["error"]["code"], "provider_timeout", "{message}");
    let received = gw.sim.requests_to("meta");
    assert_eq!(received.len(), 2, "max_attempts = 2 hand-overs");
    assert!(
        received[1].received_at_us - received[0].received_at_us >= 100_000 - JITTER_US,
        "the retry waits at least retry_base_ms"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(gw.sim.requests_to("meta").len(), 2);
    gw.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 9. idempotency

#[actix_web::test]
async fn an_idempotency_key_replays_the_queued_answer_and_hands_over_once() {
    let gw = Gateway::start().await;
    let headers = [ASYNC, ("idempotency-key", "async-once")];
    let message = text_to(TO);
    let first = gw
        .post_with_headers("/v1/messages", &message, &headers)
        .await;
    let id = queued_id(&first);
    assert!(!first.headers.contains_key("idempotent-replayed"));

    // At once (the 202 is the request's final answer) and after the message was accepted.
    let again = gw
        .post_with_headers("/v1/messages", &message, &headers)
        .await;
    assert_eq!((again.status, &again.body), (202, &first.body));
    assert_eq!(again.headers["idempotent-replayed"], "true");
    let accepted = wait_final(&gw, &id, Duration::from_secs(5)).await;
    assert_eq!(accepted["status"], "accepted", "{accepted}");
    let later = gw
        .post_with_headers("/v1/messages", &message, &headers)
        .await;
    assert_eq!((later.status, &later.body), (202, &first.body));
    assert_eq!(later.headers["idempotent-replayed"], "true");

    let other = gw
        .post_with_headers("/v1/messages", &text_to(&recipient(7)), &headers)
        .await;
    assert_eq!(
        (other.status, other.error_code()),
        (422, "idempotency_key_reused")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received = gw.sim.requests_to("meta");
    assert_eq!(received.len(), 1, "one hand-over for one key");
    assert_eq!(message_id(&received[0]), id);
    gw.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 10. synchronous sends and the budget

#[actix_web::test]
async fn synchronous_sends_are_not_delayed_but_count_against_the_budget() {
    let gw = Gateway::start_with(|s| set_rate(s, SENDER, 5)).await;
    let started = Instant::now();
    for i in 0..5 {
        let reply = gw.send(&text_to(&recipient(i))).await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        assert_eq!(reply.body["status"], "accepted");
    }
    let burst = started.elapsed();
    // Paced at 5/s, five sends would need at least 800 ms.
    assert!(
        burst < Duration::from_millis(700),
        "five synchronous sends took {burst:?}: delayed by pacing"
    );
    let id = queue(&gw, &text_to(&recipient(5))).await;
    let received = wait_for_requests(&gw, "meta", 6, Duration::from_secs(5)).await;
    let burst_started = received[0].received_at_us;
    let queued = received
        .iter()
        .find(|r| message_id(r) == id)
        .expect("the queued message arrived");
    let after = queued.received_at_us - burst_started;
    assert!(
        after >= 900_000,
        "the queued message arrived {} ms after five synchronous sends used the second's budget of 5",
        after / 1000
    );
    assert!(
        after <= 2_000_000,
        "the queued message arrived {} ms after the burst: pushed back more than a second's worth",
        after / 1000
    );
    gw.stop().await;
}

// ---------------------------------------------------------------------------------------------
// scheduling

#[actix_web::test]
async fn send_at_queues_the_message_and_holds_it_until_then() {
    let gw = Gateway::start().await;
    // Whole seconds, at least 1.5 s ahead.
    let at_secs = (now_us() + 1_500_000).div_ceil(1_000_000);
    let send_at = time::OffsetDateTime::from_unix_timestamp(at_secs as i64)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let mut message = text_to(TO);
    message["send_at"] = json!(send_at);
    // No `Prefer` header: `send_at` alone makes the send asynchronous.
    let reply = gw.send(&message).await;
    let id = queued_id(&reply);
    let echoed = reply.body["send_at"]
        .as_str()
        .expect("send_at in the answer");
    assert_eq!(
        echoed.get(..19),
        send_at.get(..19),
        "the same instant: {echoed} for {send_at}"
    );
    assert_eq!(
        gw.get(&format!("/v1/messages/{id}")).await.body["status"],
        "queued"
    );
    let received = wait_for_requests(&gw, "meta", 1, Duration::from_secs(6)).await;
    let at_us = at_secs * 1_000_000;
    assert!(
        received[0].received_at_us + JITTER_US >= at_us,
        "handed over {} ms before send_at",
        (at_us - received[0].received_at_us) / 1000
    );
    assert!(
        received[0].received_at_us <= at_us + 1_500_000,
        "handed over {} ms after send_at",
        (received[0].received_at_us - at_us) / 1000
    );
    let message = wait_final(&gw, &id, Duration::from_secs(5)).await;
    assert_eq!(message["status"], "accepted", "{message}");
    assert_eq!(gw.sim.requests().len(), 1);
    gw.stop().await;
}
