//! The store's behaviour, written once and run against every backend (see `tests/store.rs`).

mod db;
mod queue;

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::json;
use switchboard_store::{
    Applied, KeyAnswer, KeyClaim, MessageRecord, NewDelivery, NewMessage, SendOutcome,
    StatusChange, Store, StoreError, StoredEvent, StoredResponse,
};

pub use db::TestDb;
pub use queue::*;

type Shared = Arc<dyn Store>;

const T0: i64 = 1_790_000_000_000;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;
const LEASE_MS: i64 = 30_000;

/// The rule the server passes: statuses only move forward.
fn forward_only(current: &str, new: &str) -> bool {
    const ORDER: [&str; 6] = ["queued", "accepted", "sent", "delivered", "read", "failed"];
    let rank = |s: &str| ORDER.iter().position(|o| *o == s);
    rank(new) > rank(current)
}

fn message(id: &str) -> NewMessage {
    NewMessage {
        id: id.to_owned(),
        client: "orders".to_owned(),
        to: "+14085551234".to_owned(),
        from: "+15550783881".to_owned(),
        message_type: "text".to_owned(),
        refs: Some(json!({"ref": "customer1", "ref1": "ü€"})),
        callback_url: Some("http://127.0.0.1:9000/events".to_owned()),
        route: vec!["kaleyra/in".to_owned(), "meta".to_owned()],
        status: "queued".to_owned(),
        created_at_ms: T0,
    }
}

fn accepted(provider_message_id: &str, at_ms: i64) -> SendOutcome {
    SendOutcome {
        status: "accepted".to_owned(),
        provider: Some("kaleyra".to_owned()),
        endpoint: Some("kaleyra/in".to_owned()),
        provider_message_id: Some(provider_message_id.to_owned()),
        error: None,
        at_ms,
    }
}

/// A status change whose dedup key is unique to (message, status, time).
fn change(id: &str, status: &str, at_ms: i64) -> StatusChange {
    StatusChange {
        status: status.to_owned(),
        at_ms,
        error: None,
        dedup_key: format!("{id}:{status}:{at_ms}"),
    }
}

fn event(status: &str, at_ms: i64) -> StoredEvent {
    StoredEvent {
        status: status.to_owned(),
        at_ms,
        error: None,
    }
}

fn recorded(status: &str, advanced: bool) -> Applied {
    Applied::Recorded {
        status: status.to_owned(),
        advanced,
    }
}

fn delivery(event_id: &str, next_attempt_at_ms: i64) -> NewDelivery {
    NewDelivery {
        event_id: event_id.to_owned(),
        event_type: "message.status".to_owned(),
        target_url: "http://events.internal/whatsapp".to_owned(),
        signer: "subscriber:0".to_owned(),
        body: format!(r#"{{"event_id":"{event_id}"}}"#),
        next_attempt_at_ms,
    }
}

fn response(body: &str) -> StoredResponse {
    StoredResponse {
        status: 202,
        body: body.as_bytes().to_vec(),
        retry_after_secs: None,
    }
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    assert!(
        matches!(result, Err(StoreError::NotFound { .. })),
        "{result:?}"
    );
}

// Store calls that must succeed, to keep the cases about what they check.

async fn insert(store: &Shared, id: &str) {
    store.insert_message(&message(id)).await.unwrap();
}

async fn accept(store: &Shared, id: &str, provider_message_id: &str, at_ms: i64) {
    let outcome = accepted(provider_message_id, at_ms);
    store.record_outcome(id, &outcome).await.unwrap();
}

async fn stored(store: &Shared, id: &str) -> MessageRecord {
    store.message(id).await.unwrap().expect("message stored")
}

async fn apply(store: &Shared, id: &str, change: &StatusChange) -> Applied {
    store.apply_status(id, change, forward_only).await.unwrap()
}

async fn claim(store: &Shared, client: &str, key: &str, fingerprint: &str, now: i64) -> KeyClaim {
    store
        .claim_key(client, key, fingerprint, now, DAY_MS, None)
        .await
        .unwrap()
}

/// A claim for a request that will record message `message_id`.
async fn claim_for(store: &Shared, key: &str, now: i64, message_id: &str) -> KeyClaim {
    store
        .claim_key("orders", key, "fp", now, DAY_MS, Some(message_id))
        .await
        .unwrap()
}

async fn complete(store: &Shared, client: &str, key: &str, body: &str) {
    store
        .complete_key(client, key, &response(body))
        .await
        .unwrap();
}

/// Event ids of the deliveries claimed at `now_ms`.
async fn due(store: &Shared, now_ms: i64, limit: u32) -> Vec<String> {
    let claimed = store.claim_due(now_ms, LEASE_MS, limit).await.unwrap();
    claimed.into_iter().map(|d| d.event_id).collect()
}

/// Runs `tasks` copies of `work(store, i)` at once, alternating between `stores`.
async fn race<T, F, Fut>(stores: &[Shared], tasks: usize, work: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Shared, usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let handles: Vec<_> = (0..tasks)
        .map(|i| tokio::spawn(work(Arc::clone(&stores[i % stores.len()]), i)))
        .collect();
    let mut results = Vec::with_capacity(tasks);
    for handle in handles {
        results.push(handle.await.expect("task"));
    }
    results
}

// --- messages ---

pub async fn ping_answers(db: &TestDb) {
    db.open().await.ping().await.expect("ping");
}

pub async fn message_round_trip_with_outcome(db: &TestDb) {
    let store = db.open().await;
    assert_eq!(store.message("01UNKNOWN").await.unwrap(), None);
    insert(&store, "01A").await;

    let queued = stored(&store, "01A").await;
    assert_eq!(queued.status, "queued");
    assert_eq!(queued.refs, Some(json!({"ref": "customer1", "ref1": "ü€"})));
    assert_eq!(queued.route, ["kaleyra/in", "meta"]);
    assert_eq!((queued.created_at_ms, queued.updated_at_ms), (T0, T0));
    assert_eq!(queued.provider_message_id, None);
    assert!(queued.events.is_empty());

    accept(&store, "01A", "wamid.1", T0 + 40).await;
    let sent = stored(&store, "01A").await;
    assert_eq!(sent.status, "accepted");
    assert_eq!(sent.provider.as_deref(), Some("kaleyra"));
    assert_eq!(sent.endpoint.as_deref(), Some("kaleyra/in"));
    assert_eq!(sent.provider_message_id.as_deref(), Some("wamid.1"));
    assert_eq!(sent.updated_at_ms, T0 + 40);
    assert_eq!(sent.events, [event("accepted", T0 + 40)]);
    assert_eq!(
        (sent.client.as_str(), sent.to.as_str(), sent.from.as_str()),
        ("orders", "+14085551234", "+15550783881")
    );
    assert_eq!(
        sent.callback_url.as_deref(),
        Some("http://127.0.0.1:9000/events")
    );
}

pub async fn failed_outcome_keeps_the_error(db: &TestDb) {
    let store = db.open().await;
    insert(&store, "01F").await;
    let error = json!({"code": "recipient_unreachable", "provider_status": 400});
    let outcome = SendOutcome {
        status: "failed".to_owned(),
        provider_message_id: None,
        error: Some(error.clone()),
        ..accepted("", T0 + 5)
    };
    store.record_outcome("01F", &outcome).await.unwrap();
    let failed = stored(&store, "01F").await;
    assert_eq!(failed.status, "failed");
    assert_eq!(failed.error, Some(error.clone()));
    assert_eq!(failed.events[0].error, Some(error));
}

/// `record_sent` leaves what `insert_message` then `record_outcome` leave, in one write.
pub async fn a_sent_message_recorded_in_one_write_equals_insert_then_outcome(db: &TestDb) {
    let store = db.open().await;
    let failure = SendOutcome {
        status: "failed".to_owned(),
        provider_message_id: None,
        error: Some(json!({"code": "recipient_unreachable", "provider_status": 400})),
        ..accepted("", T0 + 5)
    };
    for (one, two, outcome) in [
        ("01SA", "01TA", accepted("wamid.s", T0 + 40)),
        ("01SF", "01TF", failure),
    ] {
        store
            .record_sent(&message(one), &outcome, None)
            .await
            .unwrap();
        insert(&store, two).await;
        store.record_outcome(two, &outcome).await.unwrap();
        let (mut one, two) = (stored(&store, one).await, stored(&store, two).await);
        one.id.clone_from(&two.id);
        assert_eq!(one, two);
        assert_eq!(one.status, outcome.status);
        assert_eq!(one.events.len(), 1);
    }
    let found = store.message_by_provider_id("wamid.s").await.unwrap();
    assert_eq!(found.map(|m| m.id), Some("01SA".to_owned()));
    // An id on record already is refused, and nothing of the second write is kept.
    assert!(store
        .record_sent(&message("01SA"), &accepted("wamid.other", T0 + 90), None)
        .await
        .is_err());
    let kept = stored(&store, "01SA").await;
    assert_eq!(kept.provider_message_id.as_deref(), Some("wamid.s"));
    assert_eq!(kept.events.len(), 1);
}

/// `record_sent` with a key completes it in the same write: the record and the answer kept for
/// retries are committed together, or neither is.
pub async fn a_sent_message_completes_its_key_in_the_same_write(db: &TestDb) {
    let store = db.open().await;
    for key in ["k1", "k2", "k3", "alone", "kept"] {
        assert_eq!(
            claim(&store, "orders", key, "fp", T0).await,
            KeyClaim::Fresh
        );
    }
    // Sent together with a key completed on its own, so that they can share a batch.
    let mut writes = Vec::new();
    for (id, key) in [("01KA", "k1"), ("01KB", "k2"), ("01KC", "k3")] {
        let store = store.clone();
        writes.push(tokio::spawn(async move {
            let answer = response(&format!(r#"{{"id":"{id}"}}"#));
            let key = KeyAnswer {
                client: "orders",
                key,
                response: &answer,
                message_id: None,
            };
            let outcome = accepted(&format!("wamid.{id}"), T0 + 40);
            store.record_sent(&message(id), &outcome, Some(key)).await
        }));
    }
    complete(&store, "orders", "alone", "{}").await;
    for write in writes {
        write.await.unwrap().unwrap();
    }
    for (id, key) in [("01KA", "k1"), ("01KB", "k2"), ("01KC", "k3")] {
        assert_eq!(stored(&store, id).await.status, "accepted");
        let answer = response(&format!(r#"{{"id":"{id}"}}"#));
        assert_eq!(
            claim(&store, "orders", key, "fp", T0 + 50).await,
            KeyClaim::Replay(answer)
        );
    }
    assert_eq!(
        claim(&store, "orders", "alone", "fp", T0 + 50).await,
        KeyClaim::Replay(response("{}"))
    );
    // A key no longer there is left alone; the message is recorded all the same.
    let answer = response("{}");
    let gone = KeyAnswer {
        client: "orders",
        key: "gone",
        response: &answer,
        message_id: None,
    };
    store
        .record_sent(&message("01KD"), &accepted("wamid.d", T0 + 60), Some(gone))
        .await
        .unwrap();
    assert_eq!(stored(&store, "01KD").await.status, "accepted");
    assert_eq!(
        claim(&store, "orders", "gone", "fp", T0 + 70).await,
        KeyClaim::Fresh
    );
    // A record refused (its id exists) completes no key: it stays in flight.
    let kept = KeyAnswer {
        client: "orders",
        key: "kept",
        response: &answer,
        message_id: None,
    };
    assert!(store
        .record_sent(&message("01KA"), &accepted("wamid.x", T0 + 80), Some(kept))
        .await
        .is_err());
    assert_eq!(
        claim(&store, "orders", "kept", "fp", T0 + 90).await,
        KeyClaim::InFlight
    );
    assert_eq!(
        stored(&store, "01KA").await.provider_message_id.as_deref(),
        Some("wamid.01KA")
    );
}

/// A key claimed for the message its request records keeps its answer with that record (SQLite
/// keeps it in the message's row; PostgreSQL in its table of answers, as any other): it replays
/// every field, refuses another body, outlives a release, and goes with its key.
pub async fn a_key_claimed_for_its_message_keeps_its_answer_with_the_record(db: &TestDb) {
    let store = db.open().await;
    let sent = response(r#"{"id":"01RA"}"#);
    let timed_out = StoredResponse {
        status: 504,
        body: br#"{"error":{"code":"provider_timeout"}}"#.to_vec(),
        retry_after_secs: Some(30),
    };
    for (key, id, answer) in [
        ("ka", "01RA", &sent),
        ("kb", "01RB", &timed_out),
        ("kc", "01RE", &sent),
    ] {
        assert_eq!(claim_for(&store, key, T0, id).await, KeyClaim::Fresh);
        assert_eq!(
            claim(&store, "orders", key, "fp", T0 + 1).await,
            KeyClaim::InFlight
        );
        let kept = KeyAnswer {
            client: "orders",
            key,
            response: answer,
            message_id: Some(id),
        };
        store
            .record_sent(
                &message(id),
                &accepted(&format!("wamid.{id}"), T0 + 5),
                Some(kept),
            )
            .await
            .unwrap();
        assert_eq!(
            claim(&store, "orders", key, "fp", T0 + 10).await,
            KeyClaim::Replay(answer.clone())
        );
        assert_eq!(
            claim(&store, "orders", key, "other", T0 + 10).await,
            KeyClaim::BodyMismatch
        );
        // A release is for a key whose answer was not kept: a done key stays done.
        store.release_key("orders", key).await.unwrap();
        assert_eq!(
            claim(&store, "orders", key, "fp", T0 + 11).await,
            KeyClaim::Replay(answer.clone())
        );
    }
    let record = stored(&store, "01RA").await;
    assert_eq!(
        (
            record.status.as_str(),
            record.provider_message_id.as_deref()
        ),
        ("accepted", Some("wamid.01RA"))
    );
    let sqlite = matches!(db, TestDb::Sqlite { .. });
    let answers_in_records = "SELECT COUNT(*) FROM messages WHERE key_answer_body IS NOT NULL";
    if sqlite {
        assert_eq!(db.count(answers_in_records).await, 3);
        assert_eq!(
            db.count("SELECT COUNT(*) FROM idempotency_answers").await,
            0
        );
    }
    // Expired, a key is claimed anew (for another message), and its old answer is gone; so is
    // every expired key's, swept (`kc` is never claimed again).
    let later = T0 + DAY_MS + 1;
    assert_eq!(
        claim_for(&store, "ka", later, "01RC").await,
        KeyClaim::Fresh
    );
    assert_eq!(
        claim(&store, "orders", "ka", "fp", later + 1).await,
        KeyClaim::InFlight
    );
    assert_eq!(
        claim(&store, "orders", "kb", "fp", later + 1).await,
        KeyClaim::Fresh
    );
    if sqlite {
        assert_eq!(db.count(answers_in_records).await, 0);
    }
    // A record written for another message than the claim named keeps the answer apart.
    let other = KeyAnswer {
        client: "orders",
        key: "ka",
        response: &sent,
        message_id: Some("01RC"),
    };
    store
        .record_sent(
            &message("01RD"),
            &accepted("wamid.01RD", later + 2),
            Some(other),
        )
        .await
        .unwrap();
    assert_eq!(
        claim(&store, "orders", "ka", "fp", later + 3).await,
        KeyClaim::Replay(sent.clone())
    );
    if sqlite {
        assert_eq!(db.count(answers_in_records).await, 0);
        assert_eq!(
            db.count("SELECT COUNT(*) FROM idempotency_answers").await,
            1
        );
    }
}

/// Messages removed with SQL (retention, by hand) take their events with them, and only theirs.
pub async fn deleting_messages_deletes_their_events(db: &TestDb) {
    let store = db.open().await;
    for id in ["01OLD1", "01OLD2", "01NEW1"] {
        store
            .record_sent(&message(id), &accepted(&format!("wamid.{id}"), T0), None)
            .await
            .unwrap();
    }
    // Each message's first event is in its row; the later ones are rows of their own.
    for id in ["01OLD1", "01OLD2", "01NEW1"] {
        let change = StatusChange {
            status: "delivered".to_owned(),
            at_ms: T0 + 10,
            error: None,
            dedup_key: format!("meta:wamid.{id}:delivered"),
        };
        apply(&store, id, &change).await;
    }
    assert_eq!(db.count("SELECT COUNT(*) FROM message_events").await, 3);
    db.execute("DELETE FROM messages WHERE id LIKE '01OLD%'")
        .await;
    assert_eq!(db.count("SELECT COUNT(*) FROM messages").await, 1);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM message_events WHERE message_id = '01NEW1'")
            .await,
        1
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM message_events").await, 1);
    let kept = stored(&store, "01NEW1").await;
    let events: Vec<_> = kept.events.iter().map(|e| e.status.as_str()).collect();
    assert_eq!(events, ["accepted", "delivered"]);
}

pub async fn outcome_for_an_unknown_message_is_not_found(db: &TestDb) {
    let store = db.open().await;
    assert_not_found(store.record_outcome("01NOPE", &accepted("x", T0)).await);
}

pub async fn duplicate_message_id_is_refused(db: &TestDb) {
    let store = db.open().await;
    insert(&store, "01D").await;
    assert!(store.insert_message(&message("01D")).await.is_err());
}

/// Whether the acceptance is written with the message (`record_sent`: the first event kept in
/// the message's row) or after it (`record_outcome`: an event row of its own), the history is
/// the same.
pub async fn events_come_in_the_order_recorded(db: &TestDb) {
    let store = db.open().await;
    insert(&store, "01E").await;
    accept(&store, "01E", "wamid.e", T0 + 10).await;
    store
        .record_sent(&message("01S"), &accepted("wamid.s", T0 + 10), None)
        .await
        .unwrap();
    for id in ["01E", "01S"] {
        // Webhooks arrive out of order, one carries a time before the acceptance (the
        // provider's clock is behind), two carry the same time: the history is the order of
        // arrival, each event with the time its source gave.
        for (status, at) in [
            ("read", T0 + 300),
            ("sent", T0 - 5_000),
            ("delivered", T0 + 100),
            ("sent", T0 + 100),
        ] {
            apply(&store, id, &change(id, status, at)).await;
        }
        assert_eq!(
            stored(&store, id).await.events,
            [
                event("accepted", T0 + 10),
                event("read", T0 + 300),
                event("sent", T0 - 5_000),
                event("delivered", T0 + 100),
                event("sent", T0 + 100),
            ],
            "{id}"
        );
    }
}

/// A message written before first events were kept in the message's row has all its events as
/// rows of their own, and reads as it always did.
pub async fn a_message_with_every_event_apart_reads_as_before(db: &TestDb) {
    let store = db.open().await;
    insert(&store, "01OLD").await;
    db.execute(&format!(
        "INSERT INTO message_events (message_id, status, occurred_at, error) VALUES \
         ('01OLD', 'failed', {}, '{{\"code\":\"recipient_unreachable\"}}'), \
         ('01OLD', 'delivered', {}, NULL)",
        T0 + 1,
        T0 + 2
    ))
    .await;
    let old = stored(&store, "01OLD").await;
    assert_eq!(old.events.len(), 2);
    assert_eq!(
        (old.events[0].status.as_str(), old.events[0].at_ms),
        ("failed", T0 + 1)
    );
    assert_eq!(
        old.events[0].error,
        Some(json!({"code": "recipient_unreachable"}))
    );
    assert_eq!(old.events[1], event("delivered", T0 + 2));
}

pub async fn message_found_by_provider_id(db: &TestDb) {
    let store = db.open().await;
    insert(&store, "01P").await;
    insert(&store, "01Q").await;
    accept(&store, "01Q", "wamid.q", T0 + 1).await;
    let found = store.message_by_provider_id("wamid.q").await.unwrap();
    assert_eq!(found.map(|m| m.id).as_deref(), Some("01Q"));
    assert_eq!(store.message_by_provider_id("wamid.0").await.unwrap(), None);
}

// --- statuses from webhooks ---

pub async fn status_advances_and_never_moves_back(db: &TestDb) {
    let store = db.open().await;
    insert(&store, "01S").await;
    accept(&store, "01S", "wamid.s", T0 + 1).await;

    let read = change("01S", "read", T0 + 20);
    assert_eq!(apply(&store, "01S", &read).await, recorded("read", true));
    // A late `delivered` is recorded as an event, not as the status.
    let late = change("01S", "delivered", T0 + 30);
    assert_eq!(apply(&store, "01S", &late).await, recorded("read", false));

    let message = stored(&store, "01S").await;
    assert_eq!(message.status, "read");
    assert_eq!(message.updated_at_ms, T0 + 20);
    assert_eq!(message.events.len(), 3);
    assert_eq!(message.events[2], event("delivered", T0 + 30));
}

pub async fn failed_status_keeps_its_error(db: &TestDb) {
    let store = db.open().await;
    insert(&store, "01X").await;
    let error = json!({"code": "recipient_unreachable"});
    let failed = StatusChange {
        error: Some(error.clone()),
        ..change("01X", "failed", T0 + 9)
    };
    apply(&store, "01X", &failed).await;
    let message = stored(&store, "01X").await;
    assert_eq!(
        (message.status.as_str(), message.error),
        ("failed", Some(error))
    );
}

pub async fn redelivered_status_is_a_duplicate_and_writes_nothing(db: &TestDb) {
    let store = db.open().await;
    insert(&store, "01R").await;
    let sent = change("01R", "sent", T0 + 5);
    assert_eq!(apply(&store, "01R", &sent).await, recorded("sent", true));
    let before = stored(&store, "01R").await;
    // The same key, even with other content: nothing is written.
    let again = StatusChange {
        status: "delivered".to_owned(),
        ..sent
    };
    assert_eq!(apply(&store, "01R", &again).await, Applied::Duplicate);
    assert_eq!(stored(&store, "01R").await, before);
}

pub async fn status_for_an_unknown_message_consumes_no_key(db: &TestDb) {
    let store = db.open().await;
    let early = change("01LATER", "sent", T0);
    assert_not_found(store.apply_status("01LATER", &early, forward_only).await);
    // Once the message exists, the same event is applied, not taken for a duplicate.
    insert(&store, "01LATER").await;
    assert_eq!(
        apply(&store, "01LATER", &early).await,
        recorded("sent", true)
    );
}

pub async fn outcome_does_not_undo_a_faster_webhook(db: &TestDb) {
    let store = db.open().await;
    insert(&store, "01W").await;
    apply(&store, "01W", &change("01W", "delivered", T0 + 5)).await;
    accept(&store, "01W", "wamid.w", T0 + 9).await;
    let message = stored(&store, "01W").await;
    assert_eq!(message.status, "delivered");
    assert_eq!(message.provider_message_id.as_deref(), Some("wamid.w"));
    assert_eq!(message.events.len(), 2);
}

/// Webhooks for one message handled at once by two stores (two replicas): none decides on a
/// stale status, so the furthest one wins.
pub async fn concurrent_statuses_end_at_the_furthest(db: &TestDb) {
    let stores = [db.open().await, db.open().await];
    insert(&stores[0], "01C").await;
    let statuses = ["accepted", "sent", "delivered", "read"];
    race(&stores, 16, move |store, i| async move {
        let change = change("01C", statuses[i % statuses.len()], T0 + i as i64);
        apply(&store, "01C", &change).await
    })
    .await;
    let message = stored(&stores[0], "01C").await;
    assert_eq!(message.status, "read");
    assert_eq!(message.events.len(), 16);
}

pub async fn first_sighting_is_true_once(db: &TestDb) {
    let store = db.open().await;
    assert!(store.first_sighting("call:1:connect", T0).await.unwrap());
    assert!(!store
        .first_sighting("call:1:connect", T0 + 1)
        .await
        .unwrap());
    assert!(store
        .first_sighting("call:1:terminate", T0 + 2)
        .await
        .unwrap());
}

// --- idempotency keys ---

pub async fn key_fresh_then_in_flight_then_replayed(db: &TestDb) {
    let store = db.open().await;
    assert_eq!(
        claim(&store, "orders", "k", "fp", T0).await,
        KeyClaim::Fresh
    );
    assert_eq!(
        claim(&store, "orders", "k", "fp", T0 + 1).await,
        KeyClaim::InFlight
    );

    let unavailable = StoredResponse {
        status: 503,
        body: br#"{"error":{"code":"provider_unavailable"}}"#.to_vec(),
        retry_after_secs: Some(30),
    };
    store
        .complete_key("orders", "k", &unavailable)
        .await
        .unwrap();
    assert_eq!(
        claim(&store, "orders", "k", "fp", T0 + 2).await,
        KeyClaim::Replay(unavailable)
    );
}

pub async fn empty_response_body_is_replayed(db: &TestDb) {
    let store = db.open().await;
    claim(&store, "orders", "k", "fp", T0).await;
    complete(&store, "orders", "k", "").await;
    assert_eq!(
        claim(&store, "orders", "k", "fp", T0).await,
        KeyClaim::Replay(response(""))
    );
}

pub async fn key_with_another_body_is_a_mismatch(db: &TestDb) {
    let store = db.open().await;
    claim(&store, "orders", "k", "fp-a", T0).await;
    assert_eq!(
        claim(&store, "orders", "k", "fp-b", T0).await,
        KeyClaim::BodyMismatch
    );
    complete(&store, "orders", "k", "{}").await;
    assert_eq!(
        claim(&store, "orders", "k", "fp-b", T0).await,
        KeyClaim::BodyMismatch
    );
}

pub async fn expired_key_is_taken_over(db: &TestDb) {
    let store = db.open().await;
    claim(&store, "orders", "done", "fp-a", T0).await;
    complete(&store, "orders", "done", "old").await;
    claim(&store, "orders", "stuck", "fp-a", T0).await;

    // Exactly at the TTL the key still holds; past it, it counts as absent, whatever the body.
    let expiry = T0 + DAY_MS;
    assert_eq!(
        claim(&store, "orders", "done", "fp-b", expiry).await,
        KeyClaim::BodyMismatch
    );
    for key in ["done", "stuck"] {
        assert_eq!(
            claim(&store, "orders", key, "fp-b", expiry + 1).await,
            KeyClaim::Fresh
        );
        assert_eq!(
            claim(&store, "orders", key, "fp-b", expiry + 1).await,
            KeyClaim::InFlight
        );
    }
}

pub async fn expired_keys_are_swept(db: &TestDb) {
    let store = db.open().await;
    for key in ["a", "b", "c"] {
        claim(&store, "orders", key, "fp", T0).await;
    }
    claim(&store, "orders", "d", "fp", T0 + 2 * DAY_MS).await;
    assert_eq!(db.count("SELECT COUNT(*) FROM idempotency_keys").await, 1);
}

/// A swept key's answer goes with it: a key claimed afterwards (which may be given the swept
/// key's storage) is in flight, not a replay of the old answer.
pub async fn a_swept_keys_answer_is_not_inherited(db: &TestDb) {
    let store = db.open().await;
    claim(&store, "orders", "old", "fp", T0).await;
    complete(&store, "orders", "old", "old answer").await;
    let later = T0 + 2 * DAY_MS;
    assert_eq!(
        claim(&store, "orders", "new", "fp", later).await,
        KeyClaim::Fresh
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM idempotency_keys").await, 1);
    assert_eq!(
        claim(&store, "orders", "new", "fp", later).await,
        KeyClaim::InFlight
    );
    assert_eq!(
        claim(&store, "orders", "old", "fp", later).await,
        KeyClaim::Fresh
    );
}

/// A key completed twice (its first holder finishing after the key expired and was claimed
/// again) keeps the last answer.
pub async fn completing_a_key_again_keeps_the_last_answer(db: &TestDb) {
    let store = db.open().await;
    claim(&store, "orders", "k", "fp", T0).await;
    complete(&store, "orders", "k", "first").await;
    complete(&store, "orders", "k", "second").await;
    assert_eq!(
        claim(&store, "orders", "k", "fp", T0).await,
        KeyClaim::Replay(response("second"))
    );
}

pub async fn released_key_is_free_again(db: &TestDb) {
    let store = db.open().await;
    claim(&store, "orders", "k", "fp-a", T0).await;
    store.release_key("orders", "k").await.unwrap();
    assert_eq!(
        claim(&store, "orders", "k", "fp-b", T0).await,
        KeyClaim::Fresh
    );
    // A completed key is not released: its response stays.
    complete(&store, "orders", "k", "kept").await;
    store.release_key("orders", "k").await.unwrap();
    store.release_key("orders", "never-claimed").await.unwrap();
    assert_eq!(
        claim(&store, "orders", "k", "fp-b", T0).await,
        KeyClaim::Replay(response("kept"))
    );
}

pub async fn completing_an_unknown_key_is_not_found(db: &TestDb) {
    let store = db.open().await;
    assert_not_found(store.complete_key("orders", "k", &response("{}")).await);
}

pub async fn keys_are_per_client(db: &TestDb) {
    let store = db.open().await;
    assert_eq!(
        claim(&store, "orders", "k", "fp-a", T0).await,
        KeyClaim::Fresh
    );
    assert_eq!(
        claim(&store, "billing", "k", "fp-b", T0).await,
        KeyClaim::Fresh
    );
    complete(&store, "billing", "k", "billing").await;
    assert_eq!(
        claim(&store, "orders", "k", "fp-a", T0).await,
        KeyClaim::InFlight
    );
}

/// 20 claims of one key from two stores (two processes): exactly one is Fresh, the rest see it
/// in flight. Also when the key exists but has expired.
pub async fn racing_claims_of_one_key_give_one_fresh(db: &TestDb) {
    let stores = [db.open().await, db.open().await];
    claim(&stores[0], "orders", "expired", "fp", T0 - 2 * DAY_MS).await;
    for key in ["new", "expired"] {
        let claims = race(&stores, 20, |store, _| async move {
            claim(&store, "orders", key, "fp", T0).await
        })
        .await;
        let fresh = claims.iter().filter(|c| **c == KeyClaim::Fresh).count();
        let in_flight = claims.iter().filter(|c| **c == KeyClaim::InFlight).count();
        assert_eq!((fresh, in_flight), (1, 19), "{key}: {claims:?}");
    }
}

// --- outbox ---

pub async fn due_deliveries_are_claimed_and_leased(db: &TestDb) {
    let store = db.open().await;
    let later = delivery("ev-later", T0 + 5_000);
    store
        .enqueue(&[delivery("ev-1", T0), delivery("ev-2", T0), later])
        .await
        .unwrap();

    let first = store.claim_due(T0, LEASE_MS, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(
        (
            first[0].event_id.as_str(),
            first[0].attempts,
            first[0].signer.as_str()
        ),
        ("ev-1", 0, "subscriber:0")
    );
    assert_eq!(first[0].body, r#"{"event_id":"ev-1"}"#);
    assert_eq!(first[0].target_url, "http://events.internal/whatsapp");
    assert_eq!(due(&store, T0, 10).await, ["ev-2"]);
    // Leased rows are not handed out again, and the later one is not due yet.
    assert!(due(&store, T0 + 1_000, 10).await.is_empty());
    assert_eq!(due(&store, T0 + 5_000, 10).await, ["ev-later"]);
    // Until the lease runs out (the worker holding them died).
    assert!(due(&store, T0 + LEASE_MS - 1, 10).await.is_empty());
    assert_eq!(due(&store, T0 + LEASE_MS, 10).await, ["ev-1", "ev-2"]);
}

pub async fn rescheduled_delivery_returns_then_is_delivered_or_given_up(db: &TestDb) {
    let store = db.open().await;
    store
        .enqueue(&[delivery("ev-ok", T0), delivery("ev-dead", T0)])
        .await
        .unwrap();
    let claimed = store.claim_due(T0, LEASE_MS, 10).await.unwrap();
    let (ok, dead) = (claimed[0].id, claimed[1].id);

    // Rescheduling drops the lease: due again at the new time, not before.
    store
        .reschedule(ok, 1, T0 + 2_000, "HTTP 500")
        .await
        .unwrap();
    store
        .reschedule(dead, 1, T0 + 2_000, "timeout")
        .await
        .unwrap();
    assert!(due(&store, T0 + 1_999, 10).await.is_empty());
    let again = store.claim_due(T0 + 2_000, LEASE_MS, 10).await.unwrap();
    assert_eq!(
        again.iter().map(|d| (d.id, d.attempts)).collect::<Vec<_>>(),
        [(ok, 1), (dead, 1)]
    );

    store.mark_delivered(ok, T0 + 2_100).await.unwrap();
    store.give_up(dead, 8, "HTTP 410").await.unwrap();
    assert!(due(&store, T0 + 10 * DAY_MS, 10).await.is_empty());
    let dead_rows = "SELECT COUNT(*) FROM outbox WHERE state = 'dead' AND attempts = 8";
    assert_eq!(db.count(dead_rows).await, 1);
}

pub async fn unknown_delivery_is_not_found(db: &TestDb) {
    let store = db.open().await;
    assert_not_found(store.mark_delivered(404, T0).await);
    assert_not_found(store.reschedule(404, 1, T0, "x").await);
    assert_not_found(store.give_up(404, 1, "x").await);
    store.enqueue(&[]).await.unwrap();
}

/// Two stores (two processes) with three workers each: no delivery is handed out twice.
pub async fn racing_workers_never_share_a_delivery(db: &TestDb) {
    let stores = [db.open().await, db.open().await];
    let deliveries: Vec<_> = (0..60).map(|i| delivery(&format!("ev-{i}"), T0)).collect();
    stores[0].enqueue(&deliveries).await.unwrap();

    let per_worker = race(&stores, 6, |store, _| async move {
        let mut mine = Vec::new();
        loop {
            let batch = due(&store, T0, 4).await;
            if batch.is_empty() {
                return mine;
            }
            mine.extend(batch);
        }
    })
    .await;
    let mut seen = HashSet::new();
    for event_id in per_worker.into_iter().flatten() {
        assert!(seen.insert(event_id.clone()), "{event_id} handed out twice");
    }
    assert_eq!(seen.len(), 60);
}

// --- lifetime ---

pub async fn reopened_store_keeps_messages_and_pending_deliveries(db: &TestDb) {
    let store = db.open().await;
    insert(&store, "01K").await;
    accept(&store, "01K", "wamid.k", T0 + 1).await;
    store
        .enqueue(&[delivery("ev-leased", T0), delivery("ev-waiting", T0 + 10)])
        .await
        .unwrap();
    assert_eq!(due(&store, T0, 1).await, ["ev-leased"]);
    store.close().await;
    drop(store);

    let store = db.open().await;
    let message = stored(&store, "01K").await;
    assert_eq!(message.status, "accepted");
    assert_eq!(message.events, [event("accepted", T0 + 1)]);
    assert_eq!(due(&store, T0 + 10, 10).await, ["ev-waiting"]);
    // The delivery leased by the previous process comes back when its lease runs out.
    assert_eq!(due(&store, T0 + LEASE_MS, 10).await, ["ev-leased"]);
}

/// Replicas starting together against a new database both come up (the schema is created once).
pub async fn stores_opened_together_both_migrate(db: &TestDb) {
    let (a, b) = tokio::join!(
        switchboard_store::open(db.url()),
        switchboard_store::open(db.url())
    );
    let (a, b) = (a.expect("first"), b.expect("second"));
    a.insert_message(&message("01J")).await.unwrap();
    assert!(b.message("01J").await.unwrap().is_some());
}
