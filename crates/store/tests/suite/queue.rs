//! The queue of messages to send: claims and their pacing, ordering, expiry, per-recipient
//! gaps, how hand-overs end, cancels, and claims racing across stores on one database.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::json;
use switchboard_store::{
    Canceled, Claimed, NewQueued, QueueClaim, QueueFinish, QueueStats, QueuedMessage, Slotted,
};

use super::{accepted, event, message, race, stored, Shared, TestDb, LEASE_MS, T0};

const SENDER: &str = "+15550783881";
const OTHER_SENDER: &str = "+15550000002";
const RECIPIENT: &str = "+14085551234";
const OTHER_RECIPIENT: &str = "+14085559999";
const OWNER: &str = "replica-a";

/// 1 ms between two hand-overs of one sender.
const MS_INTERVAL_US: i64 = 1_000;

fn us(ms: i64) -> i64 {
    ms * 1_000
}

/// A normal message from [`SENDER`] to [`RECIPIENT`], due at `due_at_ms`, never expiring.
fn queued(id: &str, due_at_ms: i64) -> NewQueued {
    NewQueued {
        message: message(id),
        body: format!(r#"{{"to":"{RECIPIENT}","type":"text","text":{{"body":"{id}"}}}}"#),
        bulk: false,
        due_at_ms,
        expires_at_ms: None,
    }
}

fn queued_from(id: &str, sender: &str, recipient: &str, due_at_ms: i64) -> NewQueued {
    let mut q = queued(id, due_at_ms);
    q.message.from = sender.to_owned();
    q.message.to = recipient.to_owned();
    q
}

/// What a claim of `q` hands out on its `attempts`th hand-over.
fn handed_over(q: &NewQueued, attempts: u32) -> QueuedMessage {
    QueuedMessage {
        id: q.message.id.clone(),
        client: q.message.client.clone(),
        sender: q.message.from.clone(),
        recipient: q.message.to.clone(),
        body: q.body.clone(),
        bulk: q.bulk,
        created_at_ms: q.message.created_at_ms,
        expires_at_ms: q.expires_at_ms,
        attempts,
    }
}

fn claim_of(sender: &str, now_us: i64, interval_us: i64) -> QueueClaim {
    QueueClaim {
        sender: sender.to_owned(),
        now_us,
        interval_us,
        recipient_gap_ms: 0,
        owner: OWNER.to_owned(),
        lease_until_ms: now_us.div_euclid(1_000) + LEASE_MS,
        limit: 1,
        horizon_us: 0,
    }
}

/// A claim of `q` alone, on its `attempts`th hand-over, for the slot at `slot_us`.
fn one(q: &NewQueued, attempts: u32, slot_us: i64) -> Claimed {
    Claimed::Messages(vec![Slotted {
        message: handed_over(q, attempts),
        slot_us,
    }])
}

async fn enqueue(store: &Shared, messages: &[NewQueued]) {
    store.enqueue_messages(messages).await.unwrap();
}

async fn claim_queued(store: &Shared, claim: &QueueClaim) -> Claimed {
    store.claim_queued(claim).await.unwrap()
}

/// Claims for [`SENDER`] at `now_ms`, 1 ms apart, by [`OWNER`].
async fn claim_at(store: &Shared, now_ms: i64) -> Claimed {
    claim_queued(store, &claim_of(SENDER, us(now_ms), MS_INTERVAL_US)).await
}

/// The id of the one message a claim handed out; panics on anything else.
fn claimed_id(claimed: Claimed) -> String {
    match claimed {
        Claimed::Messages(mut taken) if taken.len() == 1 => taken.remove(0).message.id,
        other => panic!("expected one message, got {other:?}"),
    }
}

/// (id, slot) of each message a claim handed out; panics on anything else.
fn slots(claimed: Claimed) -> Vec<(String, i64)> {
    match claimed {
        Claimed::Messages(taken) => taken
            .into_iter()
            .map(|s| (s.message.id, s.slot_us))
            .collect(),
        other => panic!("expected messages, got {other:?}"),
    }
}

async fn finish(store: &Shared, id: &str, owner: &str, finish: &QueueFinish) -> bool {
    store.finish_queued(id, owner, finish).await.unwrap()
}

async fn cancel(store: &Shared, id: &str, client: &str, at_ms: i64) -> Canceled {
    store.cancel_queued(id, client, at_ms).await.unwrap()
}

fn idle(next_due_ms: Option<i64>) -> Claimed {
    Claimed::Idle { next_due_ms }
}

const QUEUE_ROWS: &str = "SELECT COUNT(*) FROM queue";

pub async fn queued_message_is_claimed_then_paced_then_idle(db: &TestDb) {
    let store = db.open().await;
    let mut q = queued("01Q1", T0 + 5);
    q.bulk = true;
    q.expires_at_ms = Some(T0 + 60_000);
    q.message.created_at_ms = T0 - 20;
    enqueue(&store, std::slice::from_ref(&q)).await;

    let waiting = stored(&store, "01Q1").await;
    assert_eq!(waiting.status, "queued");
    assert!(waiting.events.is_empty());

    let now_us = us(T0 + 5) + 123;
    let interval_us = 12_500;
    let claimed = claim_queued(&store, &claim_of(SENDER, now_us, interval_us)).await;
    assert_eq!(claimed, one(&q, 1, now_us));
    // Being handed over, the message is still `queued`.
    let handing_over = stored(&store, "01Q1").await;
    assert_eq!(handing_over.status, "queued");
    assert!(handing_over.events.is_empty());

    assert_eq!(
        claim_queued(&store, &claim_of(SENDER, now_us, interval_us)).await,
        Claimed::Paced {
            until_us: now_us + interval_us
        }
    );
    assert_eq!(
        claim_queued(
            &store,
            &claim_of(SENDER, now_us + interval_us - 1, interval_us)
        )
        .await,
        Claimed::Paced {
            until_us: now_us + interval_us
        }
    );
    assert_eq!(
        claim_queued(&store, &claim_of(SENDER, now_us + interval_us, interval_us)).await,
        idle(None)
    );
}

pub async fn claims_take_normal_before_bulk_then_the_longest_due(db: &TestDb) {
    let store = db.open().await;
    let mut bulk = queued("01BULK", T0 - 1_000);
    bulk.bulk = true;
    let later = queued("01LATER", T0 + 5_000);
    let newer = queued("01NEWER", T0 - 10);
    let older = queued("01OLDER", T0 - 20);
    let other = queued_from("01OTHER", OTHER_SENDER, RECIPIENT, T0);
    enqueue(
        &store,
        &[
            bulk.clone(),
            later,
            newer.clone(),
            older.clone(),
            other.clone(),
        ],
    )
    .await;

    assert_eq!(claim_at(&store, T0).await, one(&older, 1, us(T0)));
    assert_eq!(claim_at(&store, T0 + 1).await, one(&newer, 1, us(T0 + 1)));
    assert_eq!(claim_at(&store, T0 + 2).await, one(&bulk, 1, us(T0 + 2)));
    // The one left is not due yet: not claimed, and the answer says when it will be.
    assert_eq!(claim_at(&store, T0 + 3).await, idle(Some(T0 + 5_000)));
    assert_eq!(claim_at(&store, T0 + 4_999).await, idle(Some(T0 + 5_000)));
    assert_eq!(claimed_id(claim_at(&store, T0 + 5_000).await), "01LATER");

    // Another sender has its own pacing: claimed at the very time SENDER was.
    let for_other = claim_of(OTHER_SENDER, us(T0 + 5_000), MS_INTERVAL_US);
    assert_eq!(
        claim_queued(&store, &for_other).await,
        one(&other, 1, us(T0 + 5_000))
    );
    assert_eq!(
        claim_at(&store, T0 + 5_000).await,
        Claimed::Paced {
            until_us: us(T0 + 5_001)
        }
    );
}

pub async fn expired_messages_are_not_claimed_and_fail(db: &TestDb) {
    let store = db.open().await;
    let mut held = queued("01HELD", T0 - 1);
    held.expires_at_ms = Some(T0 + 20);
    let mut first = queued("01EXP1", T0);
    first.expires_at_ms = Some(T0 + 10);
    let mut second = queued("01EXP2", T0);
    second.expires_at_ms = Some(T0 + 15);
    enqueue(&store, &[held.clone(), first, second]).await;

    assert_eq!(claim_at(&store, T0).await, one(&held, 1, us(T0)));
    // 01EXP1 would come first, but expires at T0 + 10; 01EXP2 only at T0 + 15.
    assert_eq!(claimed_id(claim_at(&store, T0 + 10).await), "01EXP2");
    // Handed back for a retry, 01EXP2 expires before it is claimed again.
    let retry = QueueFinish::Retry { due_at_ms: T0 };
    assert!(finish(&store, "01EXP2", OWNER, &retry).await);
    assert_eq!(claim_at(&store, T0 + 15).await, idle(None));

    let error = json!({"code": "expired", "message": "not accepted within its validity"});
    // 01HELD expired too, but it is being handed over: left alone.
    let mut expired = Vec::new();
    for _ in 0..2 {
        let ids = store.expire_queued(T0 + 30, &error, 1).await.unwrap();
        assert_eq!(ids.len(), 1, "{ids:?}");
        expired.extend(ids);
    }
    expired.sort();
    assert_eq!(expired, ["01EXP1", "01EXP2"]);
    assert!(store
        .expire_queued(T0 + 30, &error, 10)
        .await
        .unwrap()
        .is_empty());

    for id in ["01EXP1", "01EXP2"] {
        let failed = stored(&store, id).await;
        assert_eq!(failed.status, "failed", "{id}");
        assert_eq!(failed.error, Some(error.clone()), "{id}");
        assert_eq!(failed.updated_at_ms, T0 + 30, "{id}");
        let failed_event = switchboard_store::StoredEvent {
            error: Some(error.clone()),
            ..event("failed", T0 + 30)
        };
        assert_eq!(failed.events, [failed_event], "{id}");
    }
    let held_now = stored(&store, "01HELD").await;
    assert_eq!(held_now.status, "queued");
    assert!(held_now.events.is_empty());
    assert_eq!(db.count(QUEUE_ROWS).await, 1);
    assert_eq!(claim_at(&store, T0 + 40).await, idle(None));
}

pub async fn recipient_gap_holds_back_a_second_message_to_one_recipient(db: &TestDb) {
    let store = db.open().await;
    let first = queued_from("01R1", SENDER, RECIPIENT, T0 - 3);
    let second = queued_from("01R2", SENDER, RECIPIENT, T0 - 2);
    let elsewhere = queued_from("01S1", SENDER, OTHER_RECIPIENT, T0 - 1);
    enqueue(&store, &[first.clone(), second.clone(), elsewhere.clone()]).await;

    let interval_us = 100_000;
    let gapped = |now_ms: i64| QueueClaim {
        recipient_gap_ms: 5_000,
        ..claim_of(SENDER, us(now_ms), interval_us)
    };
    assert_eq!(
        claim_queued(&store, &gapped(T0)).await,
        one(&first, 1, us(T0))
    );
    // The pacing slot first, whatever the recipient.
    assert_eq!(
        claim_queued(&store, &gapped(T0 + 50)).await,
        Claimed::Paced {
            until_us: us(T0 + 100)
        }
    );
    // 01R2 is the longest due, but its recipient had a message 100 ms ago.
    assert_eq!(
        claim_queued(&store, &gapped(T0 + 100)).await,
        one(&elsewhere, 1, us(T0 + 100))
    );
    assert_eq!(
        claim_queued(&store, &gapped(T0 + 200)).await,
        idle(Some(T0 + 5_000))
    );
    assert_eq!(
        claim_queued(&store, &gapped(T0 + 4_999)).await,
        idle(Some(T0 + 5_000))
    );
    assert_eq!(
        claim_queued(&store, &gapped(T0 + 5_000)).await,
        one(&second, 1, us(T0 + 5_000))
    );

    // Within one claim, the gap counts from each message's slot.
    enqueue(
        &store,
        &[
            queued_from("01X1", OTHER_SENDER, RECIPIENT, T0 - 3),
            queued_from("01X2", OTHER_SENDER, RECIPIENT, T0 - 2),
            queued_from("01Y1", OTHER_SENDER, OTHER_RECIPIENT, T0 - 1),
        ],
    )
    .await;
    let ahead = |now_ms: i64| QueueClaim {
        recipient_gap_ms: 12,
        limit: 10,
        horizon_us: 20_000,
        ..claim_of(OTHER_SENDER, us(now_ms), 5_000)
    };
    assert_eq!(
        slots(claim_queued(&store, &ahead(T0)).await),
        [("01X1".to_owned(), us(T0)), ("01Y1".to_owned(), us(T0 + 5))]
    );
    assert_eq!(
        claim_queued(&store, &ahead(T0 + 10)).await,
        idle(Some(T0 + 12))
    );
    assert_eq!(
        slots(claim_queued(&store, &ahead(T0 + 12)).await),
        [("01X2".to_owned(), us(T0 + 12))]
    );
}

/// A claim with a horizon takes a message for each slot up to it, one interval apart: the
/// first at the sender's next free slot, which may still be to come.
pub async fn a_claim_takes_the_slots_within_its_horizon(db: &TestDb) {
    let store = db.open().await;
    let mut bulk = queued("01H0B", T0 - 10);
    bulk.bulk = true;
    let mut messages = vec![
        bulk,
        queued("01H1", T0 - 3),
        queued("01H2", T0 - 2),
        queued("01H3", T0 - 1),
        queued("01H9", T0 + 30),
    ];
    messages.extend((1..=3).map(|i| queued(&format!("01HL{i}"), T0)));
    enqueue(&store, &messages[..5]).await;
    let interval_us = 5_000;
    let claim = |now_ms: i64, limit: u32, horizon_us: i64| QueueClaim {
        limit,
        horizon_us,
        ..claim_of(SENDER, us(now_ms), interval_us)
    };
    let at = |id: &str, ms: i64| (id.to_owned(), us(ms));

    // Normal before bulk; 01H9 is not due yet, whatever its slot would be.
    assert_eq!(
        slots(claim_queued(&store, &claim(T0, 10, 20_000)).await),
        [
            at("01H1", T0),
            at("01H2", T0 + 5),
            at("01H3", T0 + 10),
            at("01H0B", T0 + 15),
        ]
    );
    assert_eq!(
        claim_queued(&store, &claim(T0, 10, 19_999)).await,
        Claimed::Paced {
            until_us: us(T0 + 20)
        }
    );
    assert_eq!(
        claim_queued(&store, &claim(T0, 10, 20_000)).await,
        idle(Some(T0 + 30))
    );

    // Slots still to come, up to the limit.
    enqueue(&store, &messages[5..]).await;
    assert_eq!(
        slots(claim_queued(&store, &claim(T0 + 10, 2, 20_000)).await),
        [at("01HL1", T0 + 20), at("01HL2", T0 + 25)]
    );
    // Without a horizon, one slot: the one that has come.
    assert_eq!(
        slots(claim_queued(&store, &claim(T0 + 30, 10, 0)).await),
        [at("01HL3", T0 + 30)]
    );
    assert_eq!(
        claim_queued(&store, &claim(T0 + 30, 10, 0)).await,
        Claimed::Paced {
            until_us: us(T0 + 35)
        }
    );
    // A claim long after the last slot starts from its own time.
    assert_eq!(
        slots(claim_queued(&store, &claim(T0 + 1_000, 10, 20_000)).await),
        [at("01H9", T0 + 1_000)]
    );
    assert_eq!(
        claim_queued(&store, &claim(T0 + 1_000, 10, 5_000)).await,
        idle(None)
    );
    assert_eq!(
        claim_queued(&store, &claim(T0 + 1_000, 10, 4_999)).await,
        Claimed::Paced {
            until_us: us(T0 + 1_005)
        }
    );
}

/// A message that would expire before its slot is not taken for it.
pub async fn a_claim_skips_messages_expiring_before_their_slot(db: &TestDb) {
    let store = db.open().await;
    let mut expiring = queued("01E2", T0 - 2);
    expiring.expires_at_ms = Some(T0 + 5);
    let mut lasting = queued("01E3", T0 - 1);
    lasting.expires_at_ms = Some(T0 + 6);
    let messages = [queued("01E1", T0 - 3), expiring, lasting.clone()];
    enqueue(&store, &messages).await;
    let claim = |now_ms: i64| QueueClaim {
        limit: 10,
        horizon_us: 20_000,
        ..claim_of(SENDER, us(now_ms), 5_000)
    };

    let Claimed::Messages(taken) = claim_queued(&store, &claim(T0)).await else {
        panic!("messages due");
    };
    assert_eq!(
        taken,
        [
            Slotted {
                message: handed_over(&messages[0], 1),
                slot_us: us(T0),
            },
            Slotted {
                message: handed_over(&lasting, 1),
                slot_us: us(T0 + 5),
            },
        ]
    );
    assert_eq!(claim_queued(&store, &claim(T0 + 10)).await, idle(None));
    let error = json!({"code": "expired"});
    assert_eq!(
        store.expire_queued(T0 + 5, &error, 10).await.unwrap(),
        ["01E2"]
    );
}

pub async fn finished_hand_over_leaves_the_queue_or_waits_for_its_retry(db: &TestDb) {
    let store = db.open().await;
    let done = queued("01DONE", T0 - 2);
    let again = queued("01AGAIN", T0 - 1);
    enqueue(&store, &[done.clone(), again.clone()]).await;
    assert_eq!(claimed_id(claim_at(&store, T0).await), "01DONE");
    assert_eq!(claimed_id(claim_at(&store, T0 + 1).await), "01AGAIN");

    // Only the owner ends a hand-over.
    let outcome = QueueFinish::Final(accepted("wamid.done", T0 + 40));
    assert!(!finish(&store, "01DONE", "replica-b", &outcome).await);
    let retry = QueueFinish::Retry {
        due_at_ms: T0 + 2_000,
    };
    assert!(!finish(&store, "01AGAIN", "replica-b", &retry).await);
    let untouched = stored(&store, "01DONE").await;
    assert_eq!(untouched.status, "queued");
    assert!(untouched.events.is_empty());
    assert_eq!(db.count(QUEUE_ROWS).await, 2);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM queue WHERE state = 'handing_over' AND owner = 'replica-a'")
            .await,
        2
    );

    assert!(finish(&store, "01DONE", OWNER, &outcome).await);
    let sent = stored(&store, "01DONE").await;
    assert_eq!(sent.status, "accepted");
    assert_eq!(sent.provider_message_id.as_deref(), Some("wamid.done"));
    assert_eq!(sent.provider.as_deref(), Some("kaleyra"));
    assert_eq!(sent.endpoint.as_deref(), Some("kaleyra/in"));
    assert_eq!(sent.updated_at_ms, T0 + 40);
    assert_eq!(sent.events, [event("accepted", T0 + 40)]);
    // Ended once: the second finish finds no hand-over.
    assert!(!finish(&store, "01DONE", OWNER, &outcome).await);

    assert!(finish(&store, "01AGAIN", OWNER, &retry).await);
    let waiting = stored(&store, "01AGAIN").await;
    assert_eq!(waiting.status, "queued");
    assert!(waiting.events.is_empty());
    assert_eq!(db.count(QUEUE_ROWS).await, 1);
    assert_eq!(claim_at(&store, T0 + 1_999).await, idle(Some(T0 + 2_000)));
    assert_eq!(
        claim_at(&store, T0 + 2_000).await,
        one(&again, 2, us(T0 + 2_000))
    );
    let failed = switchboard_store::SendOutcome {
        status: "failed".to_owned(),
        provider_message_id: None,
        error: Some(json!({"code": "provider_unavailable"})),
        ..accepted("", T0 + 2_100)
    };
    assert!(finish(&store, "01AGAIN", OWNER, &QueueFinish::Final(failed)).await);
    let given_up = stored(&store, "01AGAIN").await;
    assert_eq!(given_up.status, "failed");
    assert_eq!(
        given_up.error,
        Some(json!({"code": "provider_unavailable"}))
    );
    assert_eq!(db.count(QUEUE_ROWS).await, 0);
    assert_eq!(claim_at(&store, T0 + 3_000).await, idle(None));
}

pub async fn leases_are_renewed_and_lost_hand_overs_taken_over(db: &TestDb) {
    let store = db.open().await;
    let messages: Vec<_> = ["01L1", "01L2", "01L3"]
        .iter()
        .enumerate()
        .map(|(i, id)| queued(id, T0 - 10 + i as i64))
        .collect();
    enqueue(&store, &messages).await;
    for (i, owner) in ["replica-a", "replica-a", "replica-b"].iter().enumerate() {
        let claim = QueueClaim {
            owner: (*owner).to_owned(),
            lease_until_ms: T0 + LEASE_MS,
            ..claim_of(SENDER, us(T0 + i as i64), MS_INTERVAL_US)
        };
        assert_eq!(
            claimed_id(claim_queued(&store, &claim).await),
            messages[i].message.id
        );
    }

    assert_eq!(
        store
            .renew_leases("replica-a", T0 + 2 * LEASE_MS)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .renew_leases("replica-c", T0 + 2 * LEASE_MS)
            .await
            .unwrap(),
        0
    );

    // At the end of its lease a hand-over is still its owner's.
    let at_lease_end = store
        .take_over_lost(T0 + LEASE_MS, "replica-c", T0 + 3 * LEASE_MS, 10)
        .await
        .unwrap();
    assert!(at_lease_end.is_empty(), "{at_lease_end:?}");
    let lost = store
        .take_over_lost(T0 + LEASE_MS + 1, "replica-c", T0 + 3 * LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(lost, [handed_over(&messages[2], 1)]);
    // Taken over once.
    let again = store
        .take_over_lost(T0 + LEASE_MS + 1, "replica-d", T0 + 3 * LEASE_MS, 10)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(
        store
            .renew_leases("replica-c", T0 + 3 * LEASE_MS)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .renew_leases("replica-b", T0 + 3 * LEASE_MS)
            .await
            .unwrap(),
        0
    );

    let timeout = QueueFinish::Final(switchboard_store::SendOutcome {
        status: "failed".to_owned(),
        provider_message_id: None,
        error: Some(json!({"code": "provider_timeout"})),
        ..accepted("", T0 + LEASE_MS + 2)
    });
    assert!(!finish(&store, "01L3", "replica-b", &timeout).await);
    assert_eq!(stored(&store, "01L3").await.status, "queued");
    assert!(finish(&store, "01L3", "replica-c", &timeout).await);
    assert_eq!(stored(&store, "01L3").await.status, "failed");

    // The renewed ones are lost only after their new lease.
    let later = store
        .take_over_lost(T0 + 2 * LEASE_MS + 1, "replica-c", T0 + 3 * LEASE_MS, 1)
        .await
        .unwrap();
    assert_eq!(later.len(), 1, "{later:?}");
    assert!(
        ["01L1", "01L2"].contains(&later[0].id.as_str()),
        "{later:?}"
    );
}

pub async fn queued_message_is_canceled_once_and_never_claimed(db: &TestDb) {
    let store = db.open().await;
    let messages: Vec<_> = ["01C1", "01C2", "01C3"]
        .iter()
        .enumerate()
        .map(|(i, id)| queued(id, T0 + 10 * i as i64))
        .collect();
    enqueue(&store, &messages).await;

    // 01C1 goes out and is accepted; 01C2 is being handed over.
    assert_eq!(claimed_id(claim_at(&store, T0).await), "01C1");
    let outcome = QueueFinish::Final(accepted("wamid.c1", T0 + 5));
    assert!(finish(&store, "01C1", OWNER, &outcome).await);
    assert_eq!(claimed_id(claim_at(&store, T0 + 10).await), "01C2");

    let Canceled::Canceled(record) = cancel(&store, "01C3", "orders", T0 + 15).await else {
        panic!("01C3 is queued");
    };
    assert_eq!(record.id, "01C3");
    assert_eq!(record.status, "canceled");
    assert_eq!(record.updated_at_ms, T0 + 15);
    assert_eq!(record.events, [event("canceled", T0 + 15)]);
    assert_eq!(*record, stored(&store, "01C3").await);
    assert_eq!(
        cancel(&store, "01C3", "orders", T0 + 16).await,
        Canceled::NotCancelable {
            status: "canceled".to_owned()
        }
    );
    assert_eq!(claim_at(&store, T0 + 100).await, idle(None));
    assert_eq!(db.count(QUEUE_ROWS).await, 1);

    assert_eq!(
        cancel(&store, "01C2", "orders", T0 + 17).await,
        Canceled::NotCancelable {
            status: "queued".to_owned()
        }
    );
    assert_eq!(
        cancel(&store, "01C1", "orders", T0 + 18).await,
        Canceled::NotCancelable {
            status: "accepted".to_owned()
        }
    );
    assert_eq!(
        cancel(&store, "01C2", "billing", T0 + 19).await,
        Canceled::NotFound
    );
    assert_eq!(
        cancel(&store, "01NONE", "orders", T0 + 20).await,
        Canceled::NotFound
    );
    // Nothing of that changed the messages.
    assert_eq!(stored(&store, "01C1").await.status, "accepted");
    let handing_over = stored(&store, "01C2").await;
    assert_eq!(handing_over.status, "queued");
    assert!(handing_over.events.is_empty());
    assert!(
        finish(
            &store,
            "01C2",
            OWNER,
            &QueueFinish::Final(accepted("wamid.c2", T0 + 30))
        )
        .await
    );
}

pub async fn synchronous_sends_move_the_pacing_slot_by_at_most_a_second(db: &TestDb) {
    let store = db.open().await;
    let interval_us = 100_000;
    let now_us = us(T0) + 7;
    let messages: Vec<_> = (0..3)
        .flat_map(|i| {
            [
                queued_from(&format!("01A{i}"), SENDER, RECIPIENT, T0 - 10),
                queued_from(&format!("01B{i}"), OTHER_SENDER, RECIPIENT, T0 - 10),
            ]
        })
        .collect();
    enqueue(&store, &messages).await;
    let claim = |sender: &str, now_us: i64| claim_of(sender, now_us, interval_us);

    store
        .advance_pacing(SENDER, 3, interval_us, now_us)
        .await
        .unwrap();
    assert_eq!(
        claim_queued(&store, &claim(SENDER, now_us)).await,
        Claimed::Paced {
            until_us: now_us + 300_000
        }
    );
    assert_eq!(
        claim_queued(&store, &claim(SENDER, now_us + 299_999)).await,
        Claimed::Paced {
            until_us: now_us + 300_000
        }
    );
    // Three more, 100 ms later: they add on to the debt.
    store
        .advance_pacing(SENDER, 3, interval_us, now_us + 100_000)
        .await
        .unwrap();
    assert_eq!(
        claim_queued(&store, &claim(SENDER, now_us + 100_000)).await,
        Claimed::Paced {
            until_us: now_us + 600_000
        }
    );
    assert_eq!(
        claimed_id(claim_queued(&store, &claim(SENDER, now_us + 600_000)).await),
        "01A0"
    );
    // A slot long past counts from now, not from then.
    store
        .advance_pacing(SENDER, 2, interval_us, now_us + 10_000_000)
        .await
        .unwrap();
    assert_eq!(
        claim_queued(&store, &claim(SENDER, now_us + 10_000_000)).await,
        Claimed::Paced {
            until_us: now_us + 10_200_000
        }
    );

    // A burst: never more than one second of debt.
    store
        .advance_pacing(OTHER_SENDER, 50, interval_us, now_us)
        .await
        .unwrap();
    assert_eq!(
        claim_queued(&store, &claim(OTHER_SENDER, now_us)).await,
        Claimed::Paced {
            until_us: now_us + 1_000_000
        }
    );
    store
        .advance_pacing(OTHER_SENDER, 50, interval_us, now_us + 500_000)
        .await
        .unwrap();
    assert_eq!(
        claim_queued(&store, &claim(OTHER_SENDER, now_us + 500_000)).await,
        Claimed::Paced {
            until_us: now_us + 1_500_000
        }
    );
    assert_eq!(
        claimed_id(claim_queued(&store, &claim(OTHER_SENDER, now_us + 1_500_000)).await),
        "01B0"
    );
}

pub async fn queue_stats_count_waiting_messages_by_sender(db: &TestDb) {
    let store = db.open().await;
    assert_eq!(store.queue_stats(T0).await.unwrap(), QueueStats::default());
    enqueue(
        &store,
        &[
            queued_from("01S1", SENDER, RECIPIENT, T0 - 300),
            queued_from("01S2", SENDER, RECIPIENT, T0 - 200),
            queued_from("01S3", SENDER, OTHER_RECIPIENT, T0 - 100),
            queued_from("01S4", OTHER_SENDER, RECIPIENT, T0 + 5_000),
        ],
    )
    .await;
    let mut stats = store.queue_stats(T0).await.unwrap();
    stats.queued_by_sender.sort();
    assert_eq!(
        stats,
        QueueStats {
            queued_by_sender: vec![(OTHER_SENDER.to_owned(), 1), (SENDER.to_owned(), 3)],
            oldest_due_ms: Some(T0 - 300),
        }
    );

    // The one being handed over is not waiting.
    assert_eq!(claimed_id(claim_at(&store, T0).await), "01S1");
    let mut stats = store.queue_stats(T0).await.unwrap();
    stats.queued_by_sender.sort();
    assert_eq!(
        stats,
        QueueStats {
            queued_by_sender: vec![(OTHER_SENDER.to_owned(), 1), (SENDER.to_owned(), 2)],
            oldest_due_ms: Some(T0 - 200),
        }
    );
    // Not yet due counts as waiting, but not as due.
    assert_eq!(claimed_id(claim_at(&store, T0 + 1).await), "01S2");
    assert_eq!(claimed_id(claim_at(&store, T0 + 2).await), "01S3");
    assert_eq!(
        store.queue_stats(T0 + 2).await.unwrap(),
        QueueStats {
            queued_by_sender: vec![(OTHER_SENDER.to_owned(), 1)],
            oldest_due_ms: None,
        }
    );
    assert_eq!(
        store.queue_stats(T0 + 5_000).await.unwrap(),
        QueueStats {
            queued_by_sender: vec![(OTHER_SENDER.to_owned(), 1)],
            oldest_due_ms: Some(T0 + 5_000),
        }
    );
}

pub async fn enqueued_messages_are_stored_all_or_none(db: &TestDb) {
    let store = db.open().await;
    enqueue(&store, &[queued("01DUP", T0)]).await;
    let batch = [
        queued("01NEW1", T0),
        queued("01DUP", T0),
        queued("01NEW2", T0),
    ];
    assert!(store.enqueue_messages(&batch).await.is_err());
    // Twice the same new id in one call.
    let twice = [queued("01NEW3", T0), queued("01NEW3", T0)];
    assert!(store.enqueue_messages(&twice).await.is_err());
    for id in ["01NEW1", "01NEW2", "01NEW3"] {
        assert_eq!(store.message(id).await.unwrap(), None, "{id}");
    }
    assert_eq!(db.count(QUEUE_ROWS).await, 1);
    assert_eq!(db.count("SELECT COUNT(*) FROM messages").await, 1);
    assert_eq!(claimed_id(claim_at(&store, T0).await), "01DUP");
    assert_eq!(claim_at(&store, T0 + 1).await, idle(None));
    store.enqueue_messages(&[]).await.unwrap();
}

/// Claims for `sender` with a 1 µs interval until nothing is left, up to `limit` messages a
/// claim, for slots up to `horizon_us` ahead: the ids claimed, each with its slot. The clock
/// moves on by 1 µs a claim, or to the end of the pacing.
async fn claim_all(
    store: Shared,
    sender: String,
    owner: String,
    limit: u32,
    horizon_us: i64,
) -> Vec<(String, i64)> {
    let mut now_us = us(T0);
    let mut mine = Vec::new();
    loop {
        let claim = QueueClaim {
            owner: owner.clone(),
            limit,
            horizon_us,
            ..claim_of(&sender, now_us, 1)
        };
        match claim_queued(&store, &claim).await {
            Claimed::Messages(taken) => {
                assert!(!taken.is_empty() && taken.len() <= limit as usize);
                let first = taken[0].slot_us;
                assert!(
                    first >= now_us && first <= now_us + horizon_us,
                    "slot {first} for a claim at {now_us}"
                );
                for (i, slotted) in taken.into_iter().enumerate() {
                    assert_eq!(slotted.slot_us, first + i as i64, "{slotted:?}");
                    assert_eq!(slotted.message.attempts, 1, "{slotted:?}");
                    mine.push((slotted.message.id, slotted.slot_us));
                }
                now_us += 1;
            }
            Claimed::Paced { until_us } => {
                assert!(
                    until_us > now_us + horizon_us,
                    "paced at {now_us} until {until_us}"
                );
                now_us = until_us;
            }
            Claimed::Idle { next_due_ms: None } => return mine,
            other => panic!("{other:?}"),
        }
    }
}

/// Four workers on two stores (two replicas) claiming one sender's queue, one message a claim
/// or several: each message goes to exactly one, and each pacing slot to one.
pub async fn racing_claims_hand_each_message_out_once(db: &TestDb) {
    let stores = [db.open().await, db.open().await];
    let messages: Vec<_> = (0..200)
        .map(|i| queued(&format!("01M{i:03}"), T0 - 1))
        .collect();
    enqueue(&stores[0], &messages).await;

    // (limit, horizon) of each worker.
    let shapes = [(1, 0), (4, 3), (2, 1), (8, 10)];
    let per_worker = race(&stores, 4, |store, i| {
        let (limit, horizon_us) = shapes[i];
        claim_all(
            store,
            SENDER.to_owned(),
            format!("replica-{i}"),
            limit,
            horizon_us,
        )
    })
    .await;
    let mut ids = HashSet::new();
    let mut slots = HashSet::new();
    for (id, slot_us) in per_worker.iter().flatten() {
        assert!(ids.insert(id.clone()), "{id} handed out twice");
        assert!(
            slots.insert(*slot_us),
            "two hand-overs in the slot at {slot_us}"
        );
    }
    assert_eq!(ids.len(), 200);
    let handing_over = "SELECT COUNT(*) FROM queue WHERE state = 'handing_over' AND attempts = 1";
    assert_eq!(db.count(handing_over).await, 200);
    let busy = per_worker.iter().filter(|mine| !mine.is_empty()).count();
    eprintln!(
        "claims per worker: {:?} ({busy} of 4 claimed)",
        per_worker.iter().map(Vec::len).collect::<Vec<_>>()
    );
}

/// One store cancels every message while another claims them: each ends either canceled or
/// handed over, never both and never neither. Cancels in the claims' order, then against it.
pub async fn racing_cancels_and_claims_never_share_a_message(db: &TestDb) {
    let stores = [db.open().await, db.open().await];
    let mut handed_over_in_all = 0;
    for (round, sender) in [SENDER, OTHER_SENDER].into_iter().enumerate() {
        let ids: Vec<String> = (0..100).map(|i| format!("01X{round}{i:03}")).collect();
        let messages: Vec<_> = ids
            .iter()
            .map(|id| queued_from(id, sender, RECIPIENT, T0 - 1))
            .collect();
        enqueue(&stores[0], &messages).await;
        let mut cancel_order = ids.clone();
        if round == 1 {
            cancel_order.reverse();
        }

        let canceller = {
            let store = Arc::clone(&stores[0]);
            tokio::spawn(async move {
                let mut results = HashMap::new();
                for id in cancel_order {
                    let result = cancel(&store, &id, "orders", T0 + 1).await;
                    results.insert(id, result);
                }
                results
            })
        };
        let claimer = tokio::spawn(claim_all(
            Arc::clone(&stores[1]),
            sender.to_owned(),
            OWNER.to_owned(),
            4,
            3,
        ));
        let cancels = canceller.await.expect("canceller");
        let claimed: HashSet<String> = claimer
            .await
            .expect("claimer")
            .into_iter()
            .map(|(id, _)| id)
            .collect();

        let mut canceled = 0;
        for id in &ids {
            let is_claimed = claimed.contains(id);
            let status = stored(&stores[0], id).await.status;
            match &cancels[id] {
                Canceled::Canceled(record) => {
                    assert!(!is_claimed, "{id} canceled and handed over");
                    assert_eq!(record.status, "canceled", "{id}");
                    assert_eq!(status, "canceled", "{id}");
                    canceled += 1;
                }
                Canceled::NotCancelable { status: seen } => {
                    assert!(is_claimed, "{id} neither canceled nor handed over");
                    assert_eq!(seen, "queued", "{id}");
                    assert_eq!(status, "queued", "{id}");
                }
                Canceled::NotFound => panic!("{id} not found"),
            }
        }
        eprintln!(
            "round {round}: {canceled} canceled, {} handed over",
            claimed.len()
        );
        assert_eq!(canceled + claimed.len(), 100);
        handed_over_in_all += claimed.len();
    }
    // What was canceled left the queue; what was claimed is being handed over.
    let handing_over = "SELECT COUNT(*) FROM queue WHERE state = 'handing_over'";
    assert_eq!(db.count(handing_over).await, handed_over_in_all as i64);
    assert_eq!(db.count(QUEUE_ROWS).await, handed_over_in_all as i64);
}

/// Four workers on two stores claim one sender's messages for the slots of the next 20 ms,
/// each stepping its own clock through one second by 2 ms: every slot goes to one claim, one
/// interval after the one before, whoever makes it. With 100 ms between slots a claim takes at
/// most one; with 10 ms, up to three.
pub async fn pacing_holds_across_stores(db: &TestDb) {
    let stores = [db.open().await, db.open().await];
    let horizon_us = 20_000;
    let step_us = 2_000;
    let rounds = [(SENDER, 100_000, 20), (OTHER_SENDER, 10_000, 120)];
    for (round, (sender, interval_us, messages)) in rounds.into_iter().enumerate() {
        let queued: Vec<_> = (0..messages)
            .map(|i| queued_from(&format!("01P{round}{i:03}"), sender, RECIPIENT, T0 - 1))
            .collect();
        enqueue(&stores[0], &queued).await;

        let per_worker = race(&stores, 4, |store, i| async move {
            let mut mine = Vec::new();
            for k in 0..(1_000_000 / step_us) {
                let now_us = us(T0) + k * step_us;
                let claim = QueueClaim {
                    owner: format!("replica-{i}"),
                    limit: 5,
                    horizon_us,
                    ..claim_of(sender, now_us, interval_us)
                };
                if let Claimed::Messages(taken) = claim_queued(&store, &claim).await {
                    for slotted in taken {
                        let slot = slotted.slot_us;
                        assert!(
                            slot >= now_us && slot <= now_us + horizon_us,
                            "slot {slot} for a claim at {now_us}"
                        );
                        mine.push((slot, slotted.message.id));
                    }
                }
            }
            mine
        })
        .await;
        let mut claims: Vec<(i64, String)> = per_worker.into_iter().flatten().collect();
        claims.sort();
        for pair in claims.windows(2) {
            assert!(
                pair[1].0 - pair[0].0 >= interval_us,
                "hand-overs {} µs apart: {pair:?}",
                pair[1].0 - pair[0].0
            );
        }
        // The last claim, at T0 + 998 ms, reaches T0 + 1,018 ms.
        let last = (1_000_000 - step_us + horizon_us) / interval_us;
        let offsets: Vec<i64> = claims.iter().map(|(slot, _)| slot - us(T0)).collect();
        assert_eq!(
            offsets,
            (0..=last).map(|i| i * interval_us).collect::<Vec<_>>(),
            "{sender}"
        );
        let ids: HashSet<&String> = claims.iter().map(|(_, id)| id).collect();
        assert_eq!(ids.len(), claims.len());
    }
}

/// Two stores (two replicas) with three workers each take over the hand-overs of a replica
/// that died: each goes to exactly one of them.
pub async fn racing_take_overs_never_share_a_hand_over(db: &TestDb) {
    let stores = [db.open().await, db.open().await];
    let messages: Vec<_> = (0..60)
        .map(|i| queued(&format!("01T{i:02}"), T0 - 1))
        .collect();
    enqueue(&stores[0], &messages).await;
    let dead = claim_all(
        Arc::clone(&stores[0]),
        SENDER.to_owned(),
        "replica-dead".into(),
        10,
        100,
    )
    .await;
    assert_eq!(dead.len(), 60);

    let lost_at = T0 + LEASE_MS + 1;
    let per_worker = race(&stores, 6, |store, i| async move {
        let owner = format!("replica-{i}");
        let mut mine = Vec::new();
        loop {
            let batch = store
                .take_over_lost(lost_at, &owner, lost_at + LEASE_MS, 4)
                .await
                .unwrap();
            if batch.is_empty() {
                return (owner, mine);
            }
            mine.extend(batch.into_iter().map(|m| m.id));
        }
    })
    .await;
    let mut seen = HashSet::new();
    for (owner, ids) in &per_worker {
        for id in ids {
            assert!(seen.insert(id.clone()), "{id} taken over twice");
        }
        // Each now holds what it took over, and only that.
        let held = stores[0]
            .renew_leases(owner, lost_at + LEASE_MS)
            .await
            .unwrap();
        assert_eq!(held, ids.len() as u64, "{owner}");
    }
    assert_eq!(seen.len(), 60);
    assert_eq!(stores[1].renew_leases("replica-dead", T0).await.unwrap(), 0);
}
