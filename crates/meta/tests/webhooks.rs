//! Meta webhook bodies (fixtures built from the documented payloads) → the exact events.

use serde_json::json;
use switchboard_core::ProviderWords;
use switchboard_core::{
    CallEvent, CallEventKind, ErrorCode, EventError, InboundMessage, MessageStatus, ProviderEvent,
    StatusUpdate,
};
use switchboard_meta::webhook::parse;

const WAMID: &str = "wamid.HBgLMTQwODU1NTEyMzQVAgARGBI3QjQ1RkE0NzI1RjYwMkE1NjkA";
const MESSAGE_REF: &str = "01JD3W6Q8S3M1V2H7KX2F5N9ZC";
const USER: &str = "+14085551234";
const BUSINESS: &str = "+15550783881";

/// The events of a fixture, which must parse.
fn events(body: &[u8]) -> Vec<ProviderEvent> {
    parse(body).expect("a fixture is a well-formed webhook")
}

/// The status every status fixture reports for the one message, at `at`.
fn status(status: MessageStatus, at: i64) -> ProviderEvent {
    ProviderEvent::Status(StatusUpdate {
        provider_message_ids: vec![WAMID.into()],
        message_ref: Some(MESSAGE_REF.into()),
        status,
        occurred_at: Some(at),
        recipient: Some(USER.into()),
        error: None,
    })
}

fn inbound(
    id: &str,
    at: i64,
    context_id: Option<&str>,
    object: serde_json::Value,
) -> ProviderEvent {
    ProviderEvent::Inbound(InboundMessage {
        provider_message_id: id.into(),
        from: USER.into(),
        to: Some(BUSINESS.into()),
        occurred_at: Some(at),
        context_id: context_id.map(str::to_string),
        inbound: object,
        profile_name: Some("Kerry Fisher".into()),
    })
}

#[test]
fn status_sent() {
    assert_eq!(
        events(include_bytes!("fixtures/webhooks/status_sent.json")),
        [status(MessageStatus::Sent, 1763719200)]
    );
}

#[test]
fn status_delivered() {
    assert_eq!(
        events(include_bytes!("fixtures/webhooks/status_delivered.json")),
        [status(MessageStatus::Delivered, 1763719205)]
    );
}

#[test]
fn status_read() {
    assert_eq!(
        events(include_bytes!("fixtures/webhooks/status_read.json")),
        [status(MessageStatus::Read, 1763719260)]
    );
}

#[test]
fn status_failed_maps_meta_codes_and_keeps_their_words() {
    let failed = |id: &str, recipient: &str, at: i64, message_ref: Option<&str>, error| {
        ProviderEvent::Status(StatusUpdate {
            provider_message_ids: vec![id.into()],
            message_ref: message_ref.map(str::to_string),
            status: MessageStatus::Failed,
            occurred_at: Some(at),
            recipient: Some(recipient.into()),
            error: Some(error),
        })
    };
    assert_eq!(
        events(include_bytes!("fixtures/webhooks/status_failed.json")),
        [
            failed(
                WAMID,
                USER,
                1763719201,
                Some(MESSAGE_REF),
                EventError {
                    words: ProviderWords {
                        code: Some("131026".into()),
                        message: Some("Message Undeliverable.".into()),
                        details: Some("Message Undeliverable.".into()),
                        status: None,
                    },
                    ..EventError::new(ErrorCode::RecipientUnreachable)
                }
            ),
            // Unmapped code, and only a title (older API versions): provider_error, title kept.
            failed(
                "wamid.HBgLMTQwODU1NTEyMzUVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA",
                "+14085551235",
                1763719202,
                None,
                EventError {
                    words: ProviderWords {
                        code: Some("131049".into()),
                        message: Some(
                            "This message was not delivered to maintain healthy ecosystem \
                             engagement."
                                .into()
                        ),
                        ..ProviderWords::default()
                    },
                    ..EventError::new(ErrorCode::ProviderError)
                }
            ),
            failed(
                "wamid.HBgLMTQwODU1NTEyMzYVAgARGBJBQkNERUYwMTIzNDU2Nzg5QUIA",
                "+14085551236",
                1763719203,
                None,
                EventError {
                    words: ProviderWords {
                        code: Some("131047".into()),
                        message: Some("Re-engagement message".into()),
                        details: Some(
                            "Message failed to send because more than 24 hours have passed \
                             since the customer last replied to this number."
                                .into()
                        ),
                        ..ProviderWords::default()
                    },
                    ..EventError::new(ErrorCode::OutsideServiceWindow)
                }
            ),
        ]
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
}

#[test]
fn inbound_text() {
    assert_eq!(
        events(include_bytes!("fixtures/webhooks/inbound_text.json")),
        [inbound(
            "wamid.HBgLMTQwODU1NTEyMzQVAgASGBQzQUY4QjRGNjE1RTJCNTQzMjNBNAA=",
            1763719400,
            None,
            json!({"type": "text", "text": "Where is my order?"}),
        )]
    );
}

#[test]
fn inbound_button_reply() {
    assert_eq!(
        events(include_bytes!(
            "fixtures/webhooks/inbound_button_reply.json"
        )),
        [inbound(
            "wamid.HBgLMTQwODU1NTEyMzQVAgASGBQzQkJDMTFEMjQ1RjQ0RDBFRkY0OQA=",
            1763719410,
            Some(WAMID),
            json!({"type": "button_reply", "reply": {"id": "change-date", "title": "Change date"}}),
        )]
    );
}

#[test]
fn inbound_list_reply() {
    assert_eq!(
        events(include_bytes!("fixtures/webhooks/inbound_list_reply.json")),
        [inbound(
            "wamid.HBgLMTQwODU1NTEyMzQVAgASGBQzQ0NDMjJFMzU2RjU1RTFGMDA1QgA=",
            1763719420,
            Some(WAMID),
            json!({"type": "list_reply",
                   "reply": {"id": "slot-0900", "title": "9:00", "description": "Tomorrow morning"}}),
        )]
    );
}

#[test]
fn inbound_template_quick_reply_button() {
    assert_eq!(
        events(include_bytes!(
            "fixtures/webhooks/inbound_template_button.json"
        )),
        [inbound(
            "wamid.HBgLMTQwODU1NTEyMzQVAgASGBQzRERENDNGNDY3MDY2RjJGMTE2QwA=",
            1763719430,
            Some(WAMID),
            json!({"type": "button",
                   "button": {"payload": "STOP_PROMOTIONS", "text": "Stop promotions"}}),
        )]
    );
}

#[test]
fn inbound_image_keeps_metas_media_object() {
    assert_eq!(
        events(include_bytes!("fixtures/webhooks/inbound_image.json")),
        [inbound(
            "wamid.HBgLMTQwODU1NTEyMzQVAgASGBQzRUVFNTRHNTc4MTc3RzNHMjI3RAA=",
            1763719440,
            None,
            json!({"type": "image", "image": {
                "caption": "The damaged parcel",
                "mime_type": "image/jpeg",
                "sha256": "LCFCqxR0N6d9dmuKgyvE2YpXB2ytdwCkhNO7XLxEfjg=",
                "id": "1003383421387256"}}),
        )]
    );
}

#[test]
fn call_connect_with_cta_payload() {
    let id = "wacid.HBgLMTQwODU1NTEyMzQVAgARGCA2Q0YyRjE1OEI0NjA3RjhBNEVCODdEQjQwRjQ3N0EA";
    assert_eq!(
        events(include_bytes!(
            "fixtures/webhooks/call_connect_cta_payload.json"
        )),
        [ProviderEvent::Call(CallEvent {
            call_id: id.into(),
            event: CallEventKind::Connect,
            from: Some(USER.into()),
            to: Some(BUSINESS.into()),
            occurred_at: Some(1763719500),
            call: json!({"id": id, "direction": "USER_INITIATED",
                         "cta_payload": "support_v2_button"}),
            message_ref: None,
        })]
    );
}

#[test]
fn call_terminate_with_deeplink_payload() {
    let id = "wacid.HBgLMTQwODU1NTEyMzQVAgARGCA3RDFHMkYyNjlDNTcxODlCNUZDOThFQzUxRzU4OEIA";
    assert_eq!(
        events(include_bytes!(
            "fixtures/webhooks/call_terminate_deeplink_payload.json"
        )),
        [ProviderEvent::Call(CallEvent {
            call_id: id.into(),
            event: CallEventKind::Terminate,
            from: Some(USER.into()),
            to: Some(BUSINESS.into()),
            occurred_at: Some(1763719690),
            call: json!({"id": id, "direction": "USER_INITIATED",
                         "deeplink_payload": "campaign_winter_2026",
                         "status": "COMPLETED", "duration_secs": 180}),
            message_ref: Some(MESSAGE_REF.into()),
        })]
    );
}

/// Broken entries, unknown change fields, items without ids, call statuses and unknown call
/// events are skipped; the rest of the body still parses.
#[test]
fn a_bad_part_never_spoils_the_rest() {
    let call_id = "wacid.HBgLMTQwODU1NTEyMzQVAgARGCA5RjNJNEg0OEJFNzkzMDFEN0hFMTBHRTczSTcwMEQA";
    assert_eq!(
        events(include_bytes!("fixtures/webhooks/lenient_batch.json")),
        [
            ProviderEvent::Status(StatusUpdate {
                provider_message_ids: vec![WAMID.into()],
                message_ref: None,
                status: MessageStatus::Delivered,
                occurred_at: Some(1763719205),
                recipient: Some(USER.into()),
                error: None,
            }),
            ProviderEvent::Inbound(InboundMessage {
                provider_message_id:
                    "wamid.HBgLMTQwODU1NTEyMzQVAgASGBQzRkZGNjVINjg5Mjg4SDRIMzM4RQA=".into(),
                from: USER.into(),
                to: Some(BUSINESS.into()),
                occurred_at: Some(1763719450),
                context_id: None,
                inbound: json!({"type": "location", "location":
                    {"latitude": 37.4847, "longitude": -122.1473, "name": "Warehouse"}}),
                profile_name: None,
            }),
            ProviderEvent::Call(CallEvent {
                call_id: call_id.into(),
                event: CallEventKind::Terminate,
                from: Some(BUSINESS.into()),
                to: Some(USER.into()),
                occurred_at: Some(1763719760),
                call: json!({"id": call_id, "direction": "BUSINESS_INITIATED", "status": "FAILED"}),
                message_ref: Some("01JD3W6Q8S3M1V2H7KX2F5N9ZD".into()),
            }),
        ]
    );
}

#[test]
fn other_interactive_and_unknown_types_keep_their_object() {
    let body = json!({"object": "whatsapp_business_account", "entry": [{"changes": [{
    "field": "messages",
    "value": {"messages": [
        {"from": "14085551234", "id": "wamid.FLOW", "type": "interactive",
         "interactive": {"type": "nfm_reply", "nfm_reply": {"name": "flow", "response_json": "{}"}}},
        {"from": "14085551234", "id": "wamid.UNSUPPORTED", "type": "unsupported",
         "errors": [{"code": 131051, "title": "Message type unknown"}]},
        {"from": "14085551234", "id": "wamid.NO_TYPE"}
    ]}}]}]});
    let inbound_objects: Vec<_> = parse(body.to_string().as_bytes())
        .unwrap()
        .into_iter()
        .map(|event| match event {
            ProviderEvent::Inbound(message) => message.inbound,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        inbound_objects,
        [
            json!({"type": "interactive", "interactive":
                {"type": "nfm_reply", "nfm_reply": {"name": "flow", "response_json": "{}"}}}),
            json!({"type": "unsupported",
                   "errors": [{"code": 131051, "title": "Message type unknown"}]}),
            json!({"type": "unknown"}),
        ]
    );
}

#[test]
fn a_failed_status_without_errors_still_carries_an_error() {
    let body = json!({"object": "whatsapp_business_account", "entry": [{"changes": [{
        "field": "messages",
        "value": {"statuses": [{"id": "wamid.X", "status": "failed"}]}}]}]});
    assert_eq!(
        parse(body.to_string().as_bytes()).unwrap(),
        [ProviderEvent::Status(StatusUpdate {
            provider_message_ids: vec!["wamid.X".into()],
            message_ref: None,
            status: MessageStatus::Failed,
            occurred_at: None,
            recipient: None,
            error: Some(EventError::new(ErrorCode::ProviderError)),
        })]
    );
}

#[test]
fn other_meta_products_are_ignored_not_refused() {
    let body = json!({"object": "instagram", "entry": [{"changes": [{
        "field": "messages",
        "value": {"statuses": [{"id": "wamid.X", "status": "read"}]}}]}]});
    assert_eq!(parse(body.to_string().as_bytes()).unwrap(), []);
}

#[test]
fn what_is_not_the_envelope_is_malformed() {
    for body in [
        &b""[..],
        b"not json",
        b"{\"object\": \"whatsapp_business_account\"",
        b"[]",
        b"null",
        b"42",
        b"\"entry\"",
        b"{}",
        b"{\"object\": \"whatsapp_business_account\"}",
        b"{\"object\": \"whatsapp_business_account\", \"entry\": {}}",
    ] {
        assert!(parse(body).is_err(), "{:?}", String::from_utf8_lossy(body));
    }
    assert_eq!(
        parse(br#"{"object": "whatsapp_business_account", "entry": []}"#).unwrap(),
        []
    );
}
