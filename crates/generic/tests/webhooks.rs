//! Generic status callbacks (fixtures of the documented shape) → the exact events.

use serde_json::json;
use switchboard_core::ProviderWords;
use switchboard_core::{ErrorCode, EventError, MessageStatus, ProviderEvent, StatusUpdate};
use switchboard_generic::webhook::parse;

const MESSAGE_REF: &str = "01JD3W6Q8S3M1V2H7KX2F5N9ZC";

/// The events of a fixture, which must parse.
fn events(body: &[u8]) -> Vec<ProviderEvent> {
    parse(body).expect("a fixture is a well-formed webhook")
}

fn status(
    message_ref: &str,
    status: MessageStatus,
    occurred_at: Option<i64>,
    error: Option<EventError>,
) -> ProviderEvent {
    ProviderEvent::Status(StatusUpdate {
        provider_message_ids: Vec::new(),
        message_ref: Some(message_ref.into()),
        status,
        occurred_at,
        recipient: None,
        error,
    })
}

#[test]
fn status_sent_with_unix_seconds() {
    assert_eq!(
        events(include_bytes!("fixtures/webhooks/status_sent.json")),
        [status(
            MESSAGE_REF,
            MessageStatus::Sent,
            Some(1763719200),
            None
        )]
    );
}

#[test]
fn status_delivered_with_seconds_as_text() {
    assert_eq!(
        events(include_bytes!("fixtures/webhooks/status_delivered.json")),
        [status(
            MESSAGE_REF,
            MessageStatus::Delivered,
            Some(1763719205),
            None
        )]
    );
}

#[test]
fn status_read_with_an_rfc3339_offset() {
    assert_eq!(
        events(include_bytes!("fixtures/webhooks/status_read.json")),
        [status(
            MESSAGE_REF,
            MessageStatus::Read,
            Some(1763719260),
            None
        )]
    );
}

#[test]
fn status_failed_keeps_the_providers_code_and_message() {
    assert_eq!(
        events(include_bytes!("fixtures/webhooks/status_failed.json")),
        [status(
            MESSAGE_REF,
            MessageStatus::Failed,
            Some(1763719201),
            Some(EventError {
                words: ProviderWords {
                    code: Some("WA-1013".into()),
                    message: Some("Recipient is not a valid WhatsApp user".into()),
                    ..ProviderWords::default()
                },
                ..EventError::new(ErrorCode::ProviderError)
            })
        )]
    );
}

#[test]
fn status_failed_with_a_numeric_code_and_milliseconds() {
    assert_eq!(
        events(include_bytes!(
            "fixtures/webhooks/status_failed_numeric_code.json"
        )),
        [status(
            "01JD3W6Q8S3M1V2H7KX2F5N9ZD",
            MessageStatus::Failed,
            Some(1763719201),
            Some(EventError {
                words: ProviderWords {
                    code: Some("470".into()),
                    message: Some(
                        "Message failed to send because more than 24 hours have passed since \
                         the customer last replied"
                            .into()
                    ),
                    ..ProviderWords::default()
                },
                ..EventError::new(ErrorCode::ProviderError)
            })
        )]
    );
}

#[test]
fn statuses_switchboard_does_not_report_are_ignored() {
    assert_eq!(
        events(include_bytes!(
            "fixtures/webhooks/status_unknown_ignored.json"
        )),
        []
    );
    for word in ["queued", "accepted", "played", ""] {
        let body = json!({"externalId": MESSAGE_REF, "status": word});
        assert_eq!(parse(body.to_string().as_bytes()).unwrap(), [], "{word:?}");
    }
}

#[test]
fn a_failure_without_an_error_object_still_carries_an_error() {
    let body = json!({"externalId": MESSAGE_REF, "status": "failed", "error": "oops"});
    assert_eq!(
        parse(body.to_string().as_bytes()).unwrap(),
        [status(
            MESSAGE_REF,
            MessageStatus::Failed,
            None,
            Some(EventError::new(ErrorCode::ProviderError))
        )]
    );
}

#[test]
fn an_error_beside_a_success_is_not_a_failure() {
    let body = json!({"externalId": MESSAGE_REF, "status": "delivered",
                      "error": {"code": "X", "message": "stale"}});
    assert_eq!(
        parse(body.to_string().as_bytes()).unwrap(),
        [status(MESSAGE_REF, MessageStatus::Delivered, None, None)]
    );
}

#[test]
fn unreadable_timestamps_are_left_unknown() {
    for timestamp in [
        json!("yesterday"),
        json!("2025-11-21"),
        json!(1.5),
        json!(null),
        json!({"seconds": 1}),
    ] {
        let body = json!({"externalId": MESSAGE_REF, "status": "sent", "timestamp": timestamp});
        assert_eq!(
            parse(body.to_string().as_bytes()).unwrap(),
            [status(MESSAGE_REF, MessageStatus::Sent, None, None)],
            "{timestamp}"
        );
    }
}

#[test]
fn what_is_not_a_status_callback_is_malformed() {
    for body in [
        json!(null),
        json!([]),
        json!({}),
        json!({"status": "sent"}),
        json!({"externalId": MESSAGE_REF}),
        json!({"externalId": "", "status": "sent"}),
        json!({"externalId": MESSAGE_REF, "status": 3}),
        json!([{"externalId": MESSAGE_REF, "status": "sent"}]),
    ] {
        assert!(parse(body.to_string().as_bytes()).is_err(), "{body}");
    }
    for bytes in [&b""[..], b"{", b"externalId=1&status=sent"] {
        assert!(parse(bytes).is_err());
    }
}
