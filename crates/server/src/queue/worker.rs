//! The queue's worker, one per replica: claims the next message of each sender whose pacing
//! slot has come (the store decides, so the budget holds summed over replicas), hands it over
//! on its own task, and records how it ended. Beside it, [`maintain`] renews this replica's
//! leases, ends the hand-overs of replicas that died, expires what outlived its validity, and
//! counts the queue for the metrics.

use super::{interval_us, publish_stored, Unfinished};
use crate::clock;
use crate::config::{QueueSettings, Settings};
use crate::http::ApiError;
use crate::send;
use crate::state::AppState;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use switchboard_core::event::MessageStatus;
use switchboard_core::{parse_message, validate, ErrorCode, ValidationPolicy};
use switchboard_store::{Claimed, QueueClaim, QueueFinish, QueuedMessage, SendOutcome, Slotted};
use tokio::sync::OwnedSemaphorePermit;

/// With nothing to claim, the queue is looked at again after at most this long (messages
/// queued through another replica).
const IDLE_POLL_US: i64 = 500_000;
/// A claim takes messages for the slots of this coming window, so that one transaction serves
/// a burst of slots (at 1,000 per second, 10) while each hand-over waits for its own slot.
const HORIZON_US: i64 = 10_000;
/// A hand-over starting this much after its slot (or a quarter interval, if more) is late.
const LATE_US: i64 = 2_000;
/// Most messages one claim takes.
const CLAIM_MAX: u32 = 64;
/// After the store failed, wait this long before asking again.
const STORE_BACKOFF_US: i64 = 1_000_000;
/// Rows handled per maintenance pass and kind (lost hand-overs, expirations).
const SWEEP_LIMIT: u32 = 500;
/// Per-recipient gaps are forgotten this long after they ended.
const GAP_MEMORY_MS: i64 = 60_000;
/// How often a recorded outcome that the store refused is written again, at most.
const FINISH_ATTEMPTS: u32 = 10;
/// Counting the queue for its gauges reads an index entry per queued message: on a long queue
/// that is tens of milliseconds of the store's time (PostgreSQL, 460,000 queued: 37 ms;
/// bench/RESULTS.md), just when the store is busiest. A count is followed by this many times
/// its duration without one (counting takes at most 1% of the time) …
const COUNT_SPACING: u32 = 100;
/// … and the gauges are never older than this.
const COUNT_AT_LEAST_EVERY: Duration = Duration::from_secs(60);

/// Until the gateway's state is dropped or the queue is told to stop.
pub async fn run(state: Weak<AppState>) {
    let Some(owner) = state.upgrade().map(|s| s.queue.owner.clone()) else {
        return;
    };
    actix_web::rt::spawn(maintain(state.clone(), owner.clone()));
    // When each sender is next worth asking, and whether that time is the store's pacing
    // (kept when a message is queued) or a guess (dropped then).
    let mut next_ask: HashMap<String, (i64, bool)> = HashMap::new();
    loop {
        let Some(strong) = state.upgrade() else {
            return;
        };
        if strong.queue.stopping.load(Ordering::Acquire) {
            return;
        }
        // This replica's synchronous sends are in the budget its claims see.
        strong.sync_pacing.flush(&strong).await;
        let settings = strong.settings();
        let mut wake_at = clock::now_us() + IDLE_POLL_US;
        let mut starved = false;
        for sender in settings.senders.values() {
            let now_us = clock::now_us();
            if let Some((at, _)) = next_ask.get(&sender.number).filter(|(at, _)| *at > now_us) {
                wake_at = wake_at.min(*at);
                continue;
            }
            let free = strong.queue.in_flight.available_permits() as u32;
            if free == 0 {
                starved = true;
                break;
            }
            let claim = QueueClaim {
                sender: sender.number.clone(),
                now_us,
                interval_us: interval_us(sender.max_per_second),
                recipient_gap_ms: settings.queue.per_recipient_gap_ms as i64,
                owner: owner.clone(),
                lease_until_ms: now_us / 1000 + lease_ms(&settings.queue),
                limit: free.min(CLAIM_MAX),
                horizon_us: HORIZON_US,
            };
            let (at, paced) = match strong.store.claim_queued(&claim).await {
                Ok(Claimed::Messages(slotted)) => {
                    let next_slot =
                        slotted.last().map_or(now_us, |s| s.slot_us) + claim.interval_us;
                    for Slotted { message, slot_us } in slotted {
                        // Only this loop takes permits, and it asked for no more than were free.
                        let Ok(permit) = strong.queue.in_flight.clone().try_acquire_owned() else {
                            return;
                        };
                        let unfinished = strong.queue.begin();
                        actix_web::rt::spawn(hand_over(
                            strong.clone(),
                            owner.clone(),
                            message,
                            (slot_us, claim.interval_us),
                            (permit, unfinished),
                        ));
                    }
                    // Claim the next slots ahead of their time.
                    (next_slot - HORIZON_US, true)
                }
                Ok(Claimed::Paced { until_us }) => (until_us - HORIZON_US, true),
                // Another replica may queue a message due sooner: look again within the poll.
                Ok(Claimed::Idle { next_due_ms }) => (
                    next_due_ms.map_or(now_us + IDLE_POLL_US, |ms| {
                        (ms * 1000).min(now_us + IDLE_POLL_US)
                    }),
                    false,
                ),
                Err(error) => {
                    tracing::warn!(%error, sender = %sender.number, "queue unavailable");
                    (now_us + STORE_BACKOFF_US, false)
                }
            };
            next_ask.insert(sender.number.clone(), (at, paced));
            wake_at = wake_at.min(at);
        }
        let queue = strong.queue.clone();
        drop(strong);
        if starved {
            // Every worker is busy: go on when one is free.
            match queue.in_flight.clone().acquire_owned().await {
                Ok(permit) => drop(permit),
                Err(_) => return,
            }
            continue;
        }
        let sleep = Duration::from_micros((wake_at - clock::now_us()).max(0) as u64);
        if tokio::time::timeout(sleep, queue.ready.notified())
            .await
            .is_ok()
        {
            // Something was queued (or queued again): ask every sender whose pacing allows.
            next_ask.retain(|_, (_, paced)| *paced);
        }
    }
}

/// How long a claimed hand-over stays this replica's without a renewal.
fn lease_ms(queue: &QueueSettings) -> i64 {
    (queue.lease_secs as i64).saturating_mul(1000)
}

/// Sends one claimed message at its slot and records how it ended. The worker (`permit`) is
/// busy until the provider has answered; recording the outcome does not hold it, but shutdown
/// waits for it (`unfinished`).
async fn hand_over(
    state: Arc<AppState>,
    owner: String,
    message: QueuedMessage,
    (slot_us, interval_us): (i64, i64),
    (permit, _unfinished): (OwnedSemaphorePermit, Unfinished),
) {
    let settings = state.settings();
    let result = match prepare_queued(&settings, &message) {
        Ok((message_to_send, route)) => {
            let gap_us = settings.queue.per_recipient_gap_ms as i64 * 1000;
            wait_for_turn(&state, &message, slot_us, interval_us, gap_us).await;
            state.metrics.hand_over(&message.sender);
            send::send(
                state.sending(),
                &settings.resilience,
                &route,
                &message_to_send,
                &message.id,
            )
            .await
            .map_err(|failure| ApiError::from_send(failure, ""))
        }
        Err(error) => Err(error),
    };
    drop(permit);
    let finish = match &result {
        Ok(sent) => QueueFinish::Final(SendOutcome {
            status: MessageStatus::Accepted.as_str().to_owned(),
            provider: Some(sent.provider.clone()),
            endpoint: Some(sent.endpoint.clone()),
            provider_message_id: sent.provider_message_id.clone(),
            error: None,
            at_ms: clock::now_ms(),
        }),
        Err(error) if worth_retrying(error, &settings, message.attempts) => {
            let delay = retry_delay_ms(&settings.queue, message.attempts, error.retry_after_secs);
            state.metrics.retry(&message.sender);
            tracing::info!(message_id = %message.id, attempt = message.attempts, code = %error.body.code, delay_ms = delay, "hand-over failed; will retry");
            QueueFinish::Retry {
                due_at_ms: clock::now_ms() + delay,
            }
        }
        Err(error) => failed(error),
    };
    finish_hand_over(&state, &owner, &message.id, &finish).await;
}

/// Waits for the hand-over's slot (or one interval after this replica's previous hand-over of
/// the sender, if that started late). A start well behind its slot moves the sender's next slot
/// in the store too, so that other replicas keep their distance from it as well.
///
/// With a per-recipient gap (`gap_us` > 0), the same holds for the message's recipient: the
/// store planned the slot one gap after the slot of the previous hand-over to it, and this keeps
/// the gap from that hand-over's real start.
async fn wait_for_turn(
    state: &AppState,
    message: &QueuedMessage,
    slot_us: i64,
    interval_us: i64,
    gap_us: i64,
) {
    let sender = message.sender.as_str();
    let recipients = &state.queue.recipient_pacing;
    let recipient = (gap_us > 0).then(|| format!("{sender} {}", message.recipient));
    let planned_us = match &recipient {
        Some(recipient) => recipients.start_at(recipient, slot_us, gap_us),
        None => slot_us,
    };
    let pacing = &state.queue.local_pacing;
    let start_us = pacing.start_at(sender, planned_us, interval_us);
    let wait_us = start_us - clock::now_us();
    if wait_us > 0 {
        tokio::time::sleep(Duration::from_micros(wait_us as u64)).await;
    }
    let started_us = clock::now_us();
    pacing.started(sender, start_us, started_us);
    if let Some(recipient) = &recipient {
        recipients.started(recipient, planned_us, started_us);
    }
    if started_us - slot_us > (interval_us / 4).max(LATE_US) {
        // Beside the send, not before it: this one is late already.
        let (store, sender) = (state.store.clone(), sender.to_owned());
        actix_web::rt::spawn(async move {
            if let Err(error) = store.push_pacing(&sender, started_us + interval_us).await {
                tracing::warn!(%error, sender, "late hand-over not made known to other replicas");
            }
        });
    }
}

/// Parses and checks the stored request again (the configuration may have changed since it
/// was queued) and routes it from the sender it was queued for.
fn prepare_queued(
    settings: &Settings,
    queued: &QueuedMessage,
) -> Result<(switchboard_core::OutboundMessage, send::Route), ApiError> {
    let invalid = |e| ApiError::invalid(e, "");
    let mut message = parse_message(queued.body.as_bytes()).map_err(invalid)?;
    let policy = ValidationPolicy {
        callback_hosts_allow: settings.webhooks.callback_hosts_allow.clone(),
    };
    validate(&message, &policy).map_err(invalid)?;
    message.envelope.from = Some(queued.sender.clone());
    let route = send::resolve_route(settings, &message).map_err(|e| ApiError::from_route(e, ""))?;
    Ok((message, route))
}

/// Whether a failed hand-over is tried again: the outcome is known not to have reached the
/// recipient (`provider_unavailable`, `rate_limited`), or is unknown and the operator allows
/// the risk (`provider_timeout` with `retry_on_timeout`); and attempts are left.
fn worth_retrying(error: &ApiError, settings: &Settings, attempts: u32) -> bool {
    let code = error.body.code;
    let retryable = matches!(
        code,
        ErrorCode::ProviderUnavailable | ErrorCode::RateLimited
    ) || (code == ErrorCode::ProviderTimeout
        && settings.resilience.retry_on_timeout);
    retryable && attempts < settings.queue.max_attempts
}

/// `retry_base_ms` doubling with each failed attempt, never sooner than the provider's
/// `Retry-After`.
fn retry_delay_ms(
    queue: &QueueSettings,
    failed_attempts: u32,
    retry_after_secs: Option<u64>,
) -> i64 {
    let factor = 1u64 << failed_attempts.saturating_sub(1).min(20);
    let backoff = queue.retry_base_ms.saturating_mul(factor);
    let asked = retry_after_secs.unwrap_or(0).saturating_mul(1000);
    backoff.max(asked).min(i64::MAX as u64) as i64
}

fn failed(error: &ApiError) -> QueueFinish {
    QueueFinish::Final(SendOutcome {
        status: MessageStatus::Failed.as_str().to_owned(),
        provider: error.body.provider.clone(),
        endpoint: error.body.endpoint.clone(),
        provider_message_id: None,
        error: Some(error.summary()),
        at_ms: clock::now_ms(),
    })
}

/// Records the end of a hand-over; a final one publishes the message's status event. A store
/// that refuses is asked again (the outcome exists only here until it is written).
async fn finish_hand_over(state: &AppState, owner: &str, id: &str, finish: &QueueFinish) {
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=FINISH_ATTEMPTS {
        match state.store.finish_queued(id, owner, finish).await {
            Ok(true) => {
                match finish {
                    QueueFinish::Final(_) => publish_stored(state, id).await,
                    QueueFinish::Retry { .. } => state.queue.ready.notify_one(),
                }
                return;
            }
            Ok(false) => {
                tracing::warn!(message_id = id, "hand-over ended after its lease was taken over (this replica stalled); the outcome is not recorded");
                return;
            }
            Err(error) if attempt < FINISH_ATTEMPTS => {
                tracing::warn!(%error, message_id = id, "hand-over outcome not recorded yet; trying again");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(error) => {
                tracing::error!(%error, message_id = id, "hand-over outcome not recorded; the message will end provider_timeout when its lease runs out");
            }
        }
    }
}

/// Every tick: renews this replica's leases, ends lost hand-overs, expires messages, counts the
/// queue (less often when counting is slow, [`count_pause`]); now and then forgets old
/// per-recipient gaps.
async fn maintain(state: Weak<AppState>, owner: String) {
    let mut ticks: u64 = 0;
    let mut next_count = Instant::now();
    loop {
        let Some(tick) = state.upgrade().map(|s| {
            Duration::from_millis((lease_ms(&s.settings().queue) / 3).clamp(1, 1000) as u64)
        }) else {
            return;
        };
        tokio::time::sleep(tick).await;
        let Some(state) = state.upgrade() else { return };
        let settings = state.settings();
        let now = clock::now_ms();
        let lease_until = now + lease_ms(&settings.queue);
        if let Err(error) = state.store.renew_leases(&owner, lease_until).await {
            tracing::warn!(%error, "queue leases not renewed");
        }
        end_lost_hand_overs(&state, &settings, &owner, now, lease_until).await;
        expire(&state, now).await;
        ticks += 1;
        if ticks.is_multiple_of(60) {
            if let Err(error) = state.store.forget_recipient_gaps(now - GAP_MEMORY_MS).await {
                tracing::warn!(%error, "old per-recipient gaps not forgotten");
            }
            state
                .queue
                .recipient_pacing
                .forget_before((now - GAP_MEMORY_MS) * 1000);
        }
        if Instant::now() >= next_count {
            let started = Instant::now();
            match state.store.queue_stats(now).await {
                Ok(stats) => state.metrics.queue_depth(
                    settings.senders.keys().map(String::as_str),
                    &stats.queued_by_sender,
                    stats
                        .oldest_due_ms
                        .map_or(0.0, |due| (now - due).max(0) as f64 / 1000.0),
                ),
                Err(error) => tracing::warn!(%error, "queue not counted"),
            }
            next_count = started + count_pause(started.elapsed());
        }
    }
}

/// How long after a count that took `took` the queue is counted again: at the next tick while
/// counting is quick, and later when the queue is so long that counting is not.
fn count_pause(took: Duration) -> Duration {
    took.saturating_mul(COUNT_SPACING).min(COUNT_AT_LEAST_EVERY)
}

/// Hand-overs whose replica stopped renewing them died with it mid-send: the provider may or
/// may not have the message. They end `failed` with `provider_timeout`, unless
/// `retry_on_timeout` allows another attempt.
async fn end_lost_hand_overs(
    state: &AppState,
    settings: &Settings,
    owner: &str,
    now: i64,
    lease_until: i64,
) {
    let lost = match state
        .store
        .take_over_lost(now, owner, lease_until, SWEEP_LIMIT)
        .await
    {
        Ok(lost) => lost,
        Err(error) => {
            tracing::warn!(%error, "lost hand-overs not looked for");
            return;
        }
    };
    for message in lost {
        let error = ApiError::new(ErrorCode::ProviderTimeout, "").message(
            "The replica handing this message over stopped before the provider answered: \
             whether the provider has it is unknown, so it is not sent again.",
        );
        tracing::warn!(message_id = %message.id, "hand-over lost with its replica: outcome unknown");
        let finish = if worth_retrying(&error, settings, message.attempts) {
            QueueFinish::Retry { due_at_ms: now }
        } else {
            failed(&error)
        };
        finish_hand_over(state, owner, &message.id, &finish).await;
    }
}

async fn expire(state: &AppState, now: i64) {
    let error = ApiError::new(ErrorCode::Expired, "").summary();
    match state.store.expire_queued(now, &error, SWEEP_LIMIT).await {
        Ok(ids) => {
            state.metrics.expirations(ids.len() as u64);
            for id in ids {
                publish_stored(state, &id).await;
            }
        }
        Err(error) => tracing::warn!(%error, "queued messages not expired"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quick_count_is_repeated_at_the_next_tick_a_slow_one_later_and_at_least_every_minute() {
        // 5 ms: the next count is due within the second, that is at the next tick.
        assert_eq!(
            count_pause(Duration::from_millis(5)),
            Duration::from_millis(500)
        );
        // 37 ms (460,000 queued on PostgreSQL): 3.7 s without counting.
        assert_eq!(
            count_pause(Duration::from_millis(37)),
            Duration::from_millis(3700)
        );
        // However slow, the gauges are at most a minute old.
        assert_eq!(count_pause(Duration::from_secs(2)), COUNT_AT_LEAST_EVERY);
        assert_eq!(count_pause(Duration::MAX), COUNT_AT_LEAST_EVERY);
    }
}
