//! Every case of `suite` on SQLite (a temporary file each) and on PostgreSQL (a new database
//! each, when `SWITCHBOARD_TEST_POSTGRES_URL` names a server; skipped otherwise).

mod suite;

/// One test per case and backend: `sqlite::case` and `postgres::case`.
macro_rules! on_every_backend {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let db = crate::suite::TestDb::sqlite();
                    crate::suite::$case(&db).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(db) = crate::suite::TestDb::postgres().await else {
                        return;
                    };
                    crate::suite::$case(&db).await;
                    db.remove().await;
                }
            )*
        }
    };
}

on_every_backend!(
    ping_answers,
    message_round_trip_with_outcome,
    failed_outcome_keeps_the_error,
    a_sent_message_recorded_in_one_write_equals_insert_then_outcome,
    a_sent_message_completes_its_key_in_the_same_write,
    a_key_claimed_for_its_message_keeps_its_answer_with_the_record,
    deleting_messages_deletes_their_events,
    outcome_for_an_unknown_message_is_not_found,
    duplicate_message_id_is_refused,
    events_come_in_the_order_recorded,
    a_message_with_every_event_apart_reads_as_before,
    message_found_by_provider_id,
    status_advances_and_never_moves_back,
    failed_status_keeps_its_error,
    redelivered_status_is_a_duplicate_and_writes_nothing,
    status_for_an_unknown_message_consumes_no_key,
    outcome_does_not_undo_a_faster_webhook,
    concurrent_statuses_end_at_the_furthest,
    first_sighting_is_true_once,
    key_fresh_then_in_flight_then_replayed,
    empty_response_body_is_replayed,
    key_with_another_body_is_a_mismatch,
    expired_key_is_taken_over,
    expired_keys_are_swept,
    a_swept_keys_answer_is_not_inherited,
    completing_a_key_again_keeps_the_last_answer,
    released_key_is_free_again,
    completing_an_unknown_key_is_not_found,
    keys_are_per_client,
    racing_claims_of_one_key_give_one_fresh,
    due_deliveries_are_claimed_and_leased,
    rescheduled_delivery_returns_then_is_delivered_or_given_up,
    unknown_delivery_is_not_found,
    racing_workers_never_share_a_delivery,
    reopened_store_keeps_messages_and_pending_deliveries,
    stores_opened_together_both_migrate,
    queued_message_is_claimed_then_paced_then_idle,
    claims_take_normal_before_bulk_then_the_longest_due,
    expired_messages_are_not_claimed_and_fail,
    recipient_gap_holds_back_a_second_message_to_one_recipient,
    a_claim_takes_the_slots_within_its_horizon,
    a_claim_skips_messages_expiring_before_their_slot,
    finished_hand_over_leaves_the_queue_or_waits_for_its_retry,
    leases_are_renewed_and_lost_hand_overs_taken_over,
    queued_message_is_canceled_once_and_never_claimed,
    synchronous_sends_move_the_pacing_slot_by_at_most_a_second,
    queue_stats_count_waiting_messages_by_sender,
    enqueued_messages_are_stored_all_or_none,
    racing_claims_hand_each_message_out_once,
    racing_cancels_and_claims_never_share_a_message,
    pacing_holds_across_stores,
    racing_take_overs_never_share_a_hand_over,
);
