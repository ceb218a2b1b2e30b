use super::*;
use serde_json::json;
use MessageStatus::*;

#[test]
fn may_follow_matches_the_contract_table() {
    // Rows: the current status; columns: the candidate, in `MessageStatus::ALL` order
    // (queued, accepted, sent, delivered, read, failed).
    let table: [(MessageStatus, [bool; 6]); 6] = [
        (Queued, [false, true, true, true, true, true]),
        (Accepted, [false, false, true, true, true, true]),
        (Sent, [false, false, false, true, true, true]),
        (Delivered, [false, false, false, false, true, false]),
        (Read, [false, false, false, false, false, false]),
        (Failed, [false, false, false, false, false, false]),
    ];
    for (current, row) in table {
        for (next, allowed) in MessageStatus::ALL.into_iter().zip(row) {
            assert_eq!(next.may_follow(current), allowed, "{current} -> {next}");
        }
    }
}

#[test]
fn statuses_round_trip_through_their_names() {
    let names = ["queued", "accepted", "sent", "delivered", "read", "failed"];
    for (status, name) in MessageStatus::ALL.into_iter().zip(names) {
        assert_eq!(status.as_str(), name);
        assert_eq!(MessageStatus::parse(name), Some(status));
        assert_eq!(serde_json::to_value(status).unwrap(), json!(name));
        assert_eq!(
            serde_json::from_value::<MessageStatus>(json!(name)).unwrap(),
            status
        );
    }
    for unknown in ["", "SENT", "Sent", "played", "not-sent", " sent"] {
        assert_eq!(MessageStatus::parse(unknown), None, "{unknown:?}");
    }
}

#[test]
fn provider_words_name_only_the_statuses_webhooks_report() {
    for (word, status) in [
        ("sent", Some(Sent)),
        ("SENT", Some(Sent)),
        ("Delivered", Some(Delivered)),
        ("read", Some(Read)),
        ("FAILED", Some(Failed)),
        ("queued", None),
        ("accepted", None),
        ("played", None),
        ("not-sent", None),
        (" sent", None),
        ("", None),
    ] {
        assert_eq!(MessageStatus::from_provider_word(word), status, "{word:?}");
    }
}

fn status(ids: &[&str], message_ref: Option<&str>, status: MessageStatus) -> ProviderEvent {
    ProviderEvent::Status(StatusUpdate {
        provider_message_ids: ids.iter().map(|id| id.to_string()).collect(),
        message_ref: message_ref.map(str::to_string),
        status,
        occurred_at: Some(1),
        recipient: None,
        error: None,
    })
}

#[test]
fn status_dedup_key_uses_the_first_provider_id_else_the_reference() {
    assert_eq!(
        status(&["wamid.A", "kid-1"], Some("01J"), Delivered).dedup_key(),
        "status:wamid.A:delivered"
    );
    assert_eq!(
        status(&[], Some("01JD3W6Q8S3M1V2H7KX2F5N9ZC"), Read).dedup_key(),
        "status:01JD3W6Q8S3M1V2H7KX2F5N9ZC:read"
    );
    assert_eq!(status(&[], None, Failed).dedup_key(), "status::failed");
    // Same message, another status: another key.
    assert_ne!(
        status(&["wamid.A"], None, Sent).dedup_key(),
        status(&["wamid.A"], None, Delivered).dedup_key()
    );
}

#[test]
fn inbound_and_call_dedup_keys() {
    let inbound = ProviderEvent::Inbound(InboundMessage {
        provider_message_id: "wamid.IN".into(),
        from: "+16315551234".into(),
        to: None,
        occurred_at: None,
        context_id: None,
        inbound: json!({"type": "text", "text": "hi"}),
        profile_name: None,
    });
    assert_eq!(inbound.dedup_key(), "inbound:wamid.IN");

    let call = |event| {
        ProviderEvent::Call(CallEvent {
            call_id: "wacid.X".into(),
            event,
            from: None,
            to: None,
            occurred_at: None,
            call: json!({"id": "wacid.X"}),
            message_ref: None,
        })
    };
    assert_eq!(
        call(CallEventKind::Connect).dedup_key(),
        "call:wacid.X:connect"
    );
    assert_eq!(
        call(CallEventKind::Terminate).dedup_key(),
        "call:wacid.X:terminate"
    );
}

#[test]
fn event_error_serializes_like_an_attempt_error() {
    let mut error = EventError::new(ErrorCode::RecipientUnreachable);
    assert_eq!(
        serde_json::to_value(&error).unwrap(),
        json!({"code": "recipient_unreachable",
               "message": ErrorCode::RecipientUnreachable.default_message()})
    );
    error.words.code = Some("131026".into());
    error.words.message = Some("Message Undeliverable.".into());
    error.words.details = Some("old client".into());
    assert_eq!(
        serde_json::to_value(&error).unwrap(),
        json!({"code": "recipient_unreachable",
               "message": ErrorCode::RecipientUnreachable.default_message(),
               "provider_code": "131026",
               "provider_message": "Message Undeliverable.",
               "provider_details": "old client"})
    );
}

#[test]
fn call_event_kinds_have_snake_case_names() {
    for (kind, name) in [
        (CallEventKind::Connect, "connect"),
        (CallEventKind::Terminate, "terminate"),
    ] {
        assert_eq!(kind.as_str(), name);
        assert_eq!(CallEventKind::parse(name), Some(kind));
        assert_eq!(serde_json::to_value(kind).unwrap(), json!(name));
    }
    assert_eq!(CallEventKind::parse("CONNECT"), None);
}

#[test]
fn whole_seconds_reads_numbers_and_digit_strings() {
    assert_eq!(whole_seconds(&json!(1700000000)), Some(1700000000));
    assert_eq!(whole_seconds(&json!("1700000000")), Some(1700000000));
    assert_eq!(whole_seconds(&json!(" 1700000000 ")), Some(1700000000));
    for not_seconds in [
        json!(1.5),
        json!("soon"),
        json!(""),
        json!(null),
        json!([1]),
    ] {
        assert_eq!(whole_seconds(&not_seconds), None, "{not_seconds}");
    }
}

#[test]
fn text_field_reads_strings_and_numbers() {
    let object = json!({"id": "wamid.A", "wa_id": 14085551234u64, "empty": "", "flag": true});
    assert_eq!(text_field(&object, "id").as_deref(), Some("wamid.A"));
    assert_eq!(text_field(&object, "wa_id").as_deref(), Some("14085551234"));
    for absent in ["empty", "flag", "missing"] {
        assert_eq!(text_field(&object, absent), None, "{absent}");
    }
    assert_eq!(text_field(&json!("not an object"), "id"), None);
}
