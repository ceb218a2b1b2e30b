//! Writes committed together (group commit): many callers at once, on SQLite and PostgreSQL,
//! get what each would have got alone, and one caller's failure is not the others'.

#[path = "suite/db.rs"]
#[allow(dead_code)]
mod db;

use std::collections::HashSet;
use std::sync::Arc;

use db::TestDb;
use switchboard_store::{KeyClaim, NewMessage, SendOutcome, Store, StoreError, StoredResponse};

const T0: i64 = 1_790_000_000_000;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

fn message(id: &str) -> NewMessage {
    NewMessage {
        id: id.to_owned(),
        client: "orders".to_owned(),
        to: "+14085551234".to_owned(),
        from: "+15550783881".to_owned(),
        message_type: "text".to_owned(),
        refs: None,
        callback_url: None,
        route: vec!["meta".to_owned()],
        status: "queued".to_owned(),
        created_at_ms: T0,
    }
}

fn accepted(provider_message_id: &str, at_ms: i64) -> SendOutcome {
    SendOutcome {
        status: "accepted".to_owned(),
        provider: Some("meta".to_owned()),
        endpoint: Some("meta".to_owned()),
        provider_message_id: Some(provider_message_id.to_owned()),
        error: None,
        at_ms,
    }
}

/// One test per case and backend, as in `tests/store.rs`.
macro_rules! on_every_backend {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let db = crate::TestDb::sqlite();
                    crate::$case(&db).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(db) = crate::TestDb::postgres().await else {
                        return;
                    };
                    crate::$case(&db).await;
                    db.remove().await;
                }
            )*
        }
    };
}

on_every_backend!(
    concurrent_writes_each_get_their_own_answer,
    a_failing_write_leaves_the_others_in_its_batch,
    outcomes_for_one_message_at_once_are_all_recorded,
    claims_and_completions_at_once,
    writes_are_counted_in_batches,
    batch_parameters_in_the_url_are_accepted,
    calls_after_close_fail,
);

/// PostgreSQL: a batch whose connection broke fails, and its writes run again on the pool. A
/// message sent that way is stored as the batch stores it: its first event in its row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_message_written_on_the_pool_keeps_its_first_event_in_its_row() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let store = db.open().await;
    store.insert_message(&message("01BEFORE")).await.unwrap();
    // Every other connection to the database goes, the writer's among them.
    db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .await;
    let error = serde_json::json!({"code": "recipient_unreachable"});
    let failed = SendOutcome {
        status: "failed".to_owned(),
        provider_message_id: None,
        error: Some(error.clone()),
        ..accepted("", T0 + 7)
    };
    store
        .record_sent(&message("01POOL"), &failed, None)
        .await
        .unwrap();
    let stored = store.message("01POOL").await.unwrap().unwrap();
    assert_eq!(stored.status, "failed");
    assert_eq!(stored.error, Some(error.clone()));
    assert_eq!(stored.events.len(), 1);
    assert_eq!(
        (stored.events[0].status.as_str(), stored.events[0].at_ms),
        ("failed", T0 + 7)
    );
    assert_eq!(stored.events[0].error, Some(error));
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM messages WHERE id = '01POOL' AND first_event_status = 'failed'"
        )
        .await,
        1
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM message_events").await, 0);
    db.remove().await;
}

/// Runs `n` copies of `work(i)` at once.
async fn all_at_once<T, Fut>(n: usize, work: impl Fn(usize) -> Fut) -> Vec<T>
where
    T: Send + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(work(i))).collect();
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    results
}

/// 200 messages stored and sent at once, then read back: each with its own outcome.
async fn concurrent_writes_each_get_their_own_answer(db: &TestDb) {
    let store = db.open().await;
    let results = all_at_once(200, |i| {
        let store = Arc::clone(&store);
        async move {
            let id = format!("01M{i:04}");
            store.insert_message(&message(&id)).await?;
            store
                .record_outcome(&id, &accepted(&format!("wamid.{i}"), T0 + i as i64))
                .await
        }
    })
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    for i in [0, 77, 199] {
        let stored = store.message(&format!("01M{i:04}")).await.unwrap().unwrap();
        assert_eq!(stored.status, "accepted");
        assert_eq!(
            stored.provider_message_id.as_deref(),
            Some(format!("wamid.{i}").as_str())
        );
        assert_eq!(stored.events.len(), 1);
        assert_eq!(stored.updated_at_ms, T0 + i);
    }
    let found = store.message_by_provider_id("wamid.42").await.unwrap();
    assert_eq!(found.map(|m| m.id).as_deref(), Some("01M0042"));
}

/// Duplicate ids and outcomes for unknown messages, mixed with good writes at once: only the
/// bad ones fail, each with its own error. Sent messages (`record_sent`, whose writes run
/// without a savepoint of their own) among them too.
async fn a_failing_write_leaves_the_others_in_its_batch(db: &TestDb) {
    let store = db.open().await;
    for i in 0..10 {
        store
            .insert_message(&message(&format!("01OLD{i}")))
            .await
            .unwrap();
    }
    let results = all_at_once(100, |i| {
        let store = Arc::clone(&store);
        async move {
            let sent = accepted(&format!("wamid.{i}"), T0);
            match i % 5 {
                // Existing ids: refused.
                0 => {
                    let id = format!("01OLD{}", i % 10);
                    store.insert_message(&message(&id)).await
                }
                // Unknown message: not found.
                1 => {
                    let id = format!("01NONE{i}");
                    store.record_outcome(&id, &accepted("x", T0)).await
                }
                2 => store.insert_message(&message(&format!("01NEW{i}"))).await,
                // Existing ids, with an outcome: refused.
                3 => {
                    let id = format!("01OLD{}", i % 10);
                    store.record_sent(&message(&id), &sent, None).await
                }
                _ => {
                    let id = format!("01SENT{i}");
                    store.record_sent(&message(&id), &sent, None).await
                }
            }
        }
    })
    .await;
    for (i, result) in results.iter().enumerate() {
        let expected = match (i % 5, result) {
            (0 | 3, Err(StoreError::Query(e))) => e
                .as_database_error()
                .is_some_and(|e| e.is_unique_violation()),
            (1, Err(StoreError::NotFound { .. })) => true,
            (2 | 4, Ok(())) => true,
            _ => false,
        };
        assert!(expected, "write {i}: {result:?}");
    }
    assert_eq!(db.count("SELECT COUNT(*) FROM messages").await, 50);
    // Each message sent has its one event, kept in its row; a refused write left none.
    assert_eq!(
        db.count("SELECT COUNT(*) FROM messages WHERE first_event_status IS NOT NULL")
            .await,
        20
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM message_events").await, 0);
    for i in (4..100).step_by(5) {
        let sent = store.message(&format!("01SENT{i}")).await.unwrap().unwrap();
        let events: Vec<_> = sent.events.iter().map(|e| e.status.as_str()).collect();
        assert_eq!(events, ["accepted"], "01SENT{i}");
    }
    for id in ["01OLD3", "01OLD8"] {
        let old = store.message(id).await.unwrap().unwrap();
        assert_eq!(
            (old.status.as_str(), old.events.len()),
            ("queued", 0),
            "{id}"
        );
    }
}

/// Two outcomes for one message at once (they may share a batch): both events are kept.
async fn outcomes_for_one_message_at_once_are_all_recorded(db: &TestDb) {
    let store = db.open().await;
    for i in 0..20 {
        store
            .insert_message(&message(&format!("01TWICE{i}")))
            .await
            .unwrap();
    }
    let results = all_at_once(40, |i| {
        let store = Arc::clone(&store);
        async move {
            let outcome = accepted(&format!("wamid.{i}"), T0 + i as i64);
            store
                .record_outcome(&format!("01TWICE{}", i % 20), &outcome)
                .await
        }
    })
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(db.count("SELECT COUNT(*) FROM message_events").await, 40);
    for i in 0..20 {
        let stored = store
            .message(&format!("01TWICE{i}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.events.len(), 2, "{stored:?}");
    }
}

/// Many keys claimed at once, some of them twice, some completed meanwhile: one Fresh per key,
/// and every completion lands.
async fn claims_and_completions_at_once(db: &TestDb) {
    let store = db.open().await;
    let claims = all_at_once(100, |i| {
        let store = Arc::clone(&store);
        async move {
            let key = format!("k{}", i % 50);
            store
                .claim_key("orders", &key, "fp", T0, DAY_MS, None)
                .await
                .map(|claim| (key, claim))
        }
    })
    .await;
    let mut fresh = HashSet::new();
    for claim in claims {
        let (key, claim) = claim.unwrap();
        match claim {
            KeyClaim::Fresh => assert!(fresh.insert(key.clone()), "{key} fresh twice"),
            KeyClaim::InFlight => {}
            other => panic!("{key}: {other:?}"),
        }
    }
    assert_eq!(fresh.len(), 50);
    let completions = all_at_once(60, |i| {
        let store = Arc::clone(&store);
        async move {
            let response = StoredResponse {
                status: 202,
                body: format!("body {i}").into_bytes(),
                retry_after_secs: Some(i as u64),
            };
            // k0..k49 exist; k50..k59 were never claimed.
            store
                .complete_key("orders", &format!("k{i}"), &response)
                .await
        }
    })
    .await;
    for (i, result) in completions.iter().enumerate() {
        if i < 50 {
            assert!(result.is_ok(), "k{i}: {result:?}");
        } else {
            assert!(
                matches!(result, Err(StoreError::NotFound { .. })),
                "k{i}: {result:?}"
            );
        }
    }
    let replay = store
        .claim_key("orders", "k7", "fp", T0 + 1, DAY_MS, None)
        .await
        .unwrap();
    assert_eq!(
        replay,
        KeyClaim::Replay(StoredResponse {
            status: 202,
            body: b"body 7".to_vec(),
            retry_after_secs: Some(7),
        })
    );
}

async fn writes_are_counted_in_batches(db: &TestDb) {
    let store = db.open().await;
    all_at_once(50, |i| {
        let store = Arc::clone(&store);
        async move { store.insert_message(&message(&format!("01S{i}"))).await }
    })
    .await;
    let stats = store.write_stats().expect("the store has a writer");
    assert_eq!(stats.writes, 50);
    assert!(stats.batches >= 1 && stats.batches <= 50, "{stats:?}");
    assert_eq!(stats.batch_size.count, stats.batches);
    assert_eq!(stats.batch_size.sum, 50.0);
    assert_eq!(stats.commit_seconds.count, stats.batches);
    assert!(stats.commit_seconds.sum > 0.0);
    assert_eq!(stats.failed_batches, 0);
}

async fn batch_parameters_in_the_url_are_accepted(db: &TestDb) {
    let separator = if db.url().contains('?') { '&' } else { '?' };
    let url = format!("{}{separator}batch_max=4&linger_us=100", db.url());
    let store = switchboard_store::open(&url).await.expect("open");
    all_at_once(20, |i| {
        let store = Arc::clone(&store);
        async move { store.insert_message(&message(&format!("01B{i}"))).await }
    })
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()
    .unwrap();
    let stats = store.write_stats().unwrap();
    assert_eq!(stats.writes, 20);
    assert!(stats.batches >= 5, "at most 4 writes a batch: {stats:?}");
    assert_eq!(db.count("SELECT COUNT(*) FROM messages").await, 20);
}

async fn calls_after_close_fail(db: &TestDb) {
    let store = db.open().await;
    store.insert_message(&message("01CLOSE")).await.unwrap();
    store.close().await;
    assert!(store.insert_message(&message("01LATE")).await.is_err());
    assert!(store.message("01CLOSE").await.is_err());
    drop(store);
    let store: Arc<dyn Store> = db.open().await;
    assert!(store.message("01CLOSE").await.unwrap().is_some());
    assert!(store.message("01LATE").await.unwrap().is_none());
}
