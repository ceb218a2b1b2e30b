//! Kaleyra v2 callbacks (fixtures built from the documented shapes) → the exact events.

use serde_json::json;
use switchboard_core::ProviderWords;
use switchboard_core::{
    ErrorCode, EventError, InboundMessage, MessageStatus, ProviderEvent, StatusUpdate,
};
use switchboard_kaleyra::webhook::{kaleyra_status, parse};

/// The wamid Kaleyra puts at the top level and in `extra_info`.
const WAMID: &str = "wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgSQzVGNEQzQjJBMTkwOEU3RDZDAA==";
/// The `statuses[].id` inside, which may not be the wamid.
const INNER_ID: &str = "gBGGFlaCGg0xcvAdgmZ9plHrf2Mh-o";
const USER: &str = "+919876543210";
const BUSINESS: &str = "+919876500000";

/// The events of a fixture, which must parse.
fn events(body: &[u8]) -> Vec<ProviderEvent> {
    parse(body).expect("a fixture is a well-formed webhook")
}

/// What every status fixture says of its one message: the top-level wamid first, then the
/// `statuses[].id` inside.
fn about_the_message() -> StatusUpdate {
    StatusUpdate {
        provider_message_ids: vec![WAMID.into(), INNER_ID.into()],
        message_ref: None,
        status: MessageStatus::Queued,
        occurred_at: None,
        recipient: Some(USER.into()),
        error: None,
    }
}

/// What every inbound fixture says of its sender and the business.
fn from_asha() -> InboundMessage {
    InboundMessage {
        provider_message_id: String::new(),
        from: USER.into(),
        to: Some(BUSINESS.into()),
        occurred_at: None,
        context_id: None,
        inbound: json!({}),
        profile_name: Some("Asha Rao".into()),
    }
}

#[test]
fn status_sent_correlates_on_the_top_level_id_first() {
    assert_eq!(
        events(include_bytes!("fixtures/webhooks/status_sent.json")),
        [ProviderEvent::Status(StatusUpdate {
            status: MessageStatus::Sent,
            occurred_at: Some(1763719200),
            ..about_the_message()
        })]
    );
}

#[test]
fn status_delivered() {
    assert_eq!(
        events(include_bytes!("fixtures/webhooks/status_delivered.json")),
        [ProviderEvent::Status(StatusUpdate {
            status: MessageStatus::Delivered,
            occurred_at: Some(1763719205),
            ..about_the_message()
        })]
    );
}

#[test]
fn status_read() {
    assert_eq!(
        events(include_bytes!("fixtures/webhooks/status_read.json")),
        [ProviderEvent::Status(StatusUpdate {
            status: MessageStatus::Read,
            occurred_at: Some(1763719260),
            ..about_the_message()
        })]
    );
}

#[test]
fn status_failed_maps_metas_code() {
    let words = "Unable to deliver the message. This recipient has chosen to stop receiving \
                 marketing messages on WhatsApp from your business.";
    assert_eq!(
        events(include_bytes!("fixtures/webhooks/status_failed.json")),
        [ProviderEvent::Status(StatusUpdate {
            status: MessageStatus::Failed,
            occurred_at: Some(1763719201),
            error: Some(EventError {
                words: ProviderWords {
                    code: Some("131050".into()),
                    message: Some(words.into()),
                    details: Some(words.into()),
                    ..ProviderWords::default()
                },
                ..EventError::new(ErrorCode::RecipientUnreachable)
            }),
            ..about_the_message()
        })]
    );
}

#[test]
fn not_sent_at_the_top_level_alone_is_a_failure() {
    assert_eq!(
        events(include_bytes!(
            "fixtures/webhooks/status_not_sent_top_level_only.json"
        )),
        [ProviderEvent::Status(StatusUpdate {
            provider_message_ids: vec!["A2f7c9e1d3b54a6f8e0c".into()],
            status: MessageStatus::Failed,
            recipient: None,
            error: Some(EventError::new(ErrorCode::ProviderError)),
            ..about_the_message()
        })]
    );
}

#[test]
fn inbound_text_takes_reply_to_as_its_context() {
    assert_eq!(
        events(include_bytes!(
            "fixtures/webhooks/inbound_text_reply_to.json"
        )),
        [ProviderEvent::Inbound(InboundMessage {
            provider_message_id: "wamid.HBgMOTE5ODc2NTQzMjEwFQIAEhgUM0E5QjhDN0Q2RTVGNEEzQjJDMUQA"
                .into(),
            occurred_at: Some(1763719400),
            context_id: Some(WAMID.into()),
            inbound: json!({"type": "text", "text": "Yes, please deliver tomorrow"}),
            ..from_asha()
        })]
    );
}

#[test]
fn metas_context_wins_over_reply_to() {
    assert_eq!(
        events(include_bytes!(
            "fixtures/webhooks/inbound_button_reply_context.json"
        )),
        [ProviderEvent::Inbound(InboundMessage {
            provider_message_id: "wamid.HBgMOTE5ODc2NTQzMjEwFQIAEhgUM0M3QjZENUU0RjNBMkIxQzBEOUUA"
                .into(),
            occurred_at: Some(1763719420),
            context_id: Some("wamid.CONTEXT_FROM_META".into()),
            inbound: json!({"type": "button_reply", "reply": {"id": "confirm", "title": "Confirm"}}),
            ..from_asha()
        })]
    );
}

#[test]
fn inbound_media_carries_kaleyras_media_url() {
    assert_eq!(
        events(include_bytes!(
            "fixtures/webhooks/inbound_image_media_url.json"
        )),
        [ProviderEvent::Inbound(InboundMessage {
            provider_message_id: "wamid.HBgMOTE5ODc2NTQzMjEwFQIAEhgUM0I4QTdDNkQ1RTRGM0EyQjFDMEQA"
                .into(),
            occurred_at: Some(1763719440),
            inbound: json!({"type": "image",
                   "image": {"mime_type": "image/jpeg",
                             "sha256": "q2Xh0dJ8fQ1nT6kYvR3mW9pL5sA7cE4bG0uI2oZ8xK0=",
                             "id": "1476382916573829", "caption": "Invoice"},
                   "media_url": "https://api.in.kaleyra.io/v2/HXAP16XXXXXX97IN/whatsapp/media/1476382916573829"}),
            ..from_asha()
        })]
    );
}

#[test]
fn kaleyras_status_words_in_any_case() {
    for (word, status) in [
        ("SENT", Some(MessageStatus::Sent)),
        ("sent", Some(MessageStatus::Sent)),
        ("DELIVERED", Some(MessageStatus::Delivered)),
        ("Read", Some(MessageStatus::Read)),
        ("FAILED", Some(MessageStatus::Failed)),
        ("NOT-SENT", Some(MessageStatus::Failed)),
        ("not-sent", Some(MessageStatus::Failed)),
        ("NOT_SENT", Some(MessageStatus::Failed)),
        ("ACCEPTED", None),
        ("QUEUED", None),
        ("played", None),
        ("", None),
    ] {
        assert_eq!(kaleyra_status(word), status, "{word:?}");
    }
}

#[test]
fn not_sent_inside_metas_value_is_a_failure_too() {
    let body = json!({
        "meta_object": {"field": "messages", "value": {"statuses": [
            {"id": "kid-1", "status": "NOT-SENT", "recipient_id": "919876543210"}]}},
        "extra_info": {"message_id": "kid-1"},
        "message_id": "kid-1"
    });
    assert_eq!(
        parse(body.to_string().as_bytes()).unwrap(),
        [ProviderEvent::Status(StatusUpdate {
            provider_message_ids: vec!["kid-1".into()],
            status: MessageStatus::Failed,
            error: Some(EventError::new(ErrorCode::ProviderError)),
            ..about_the_message()
        })]
    );
}

/// The top-level ids could belong to any of several statuses, so none of them gets them.
#[test]
fn several_statuses_keep_their_own_ids() {
    let body = json!({
        "meta_object": {"field": "messages", "value": {"statuses": [
            {"id": "kid-1", "status": "delivered"}, {"id": "kid-2", "status": "read"}]}},
        "extra_info": {"message_id": WAMID},
        "status": "DELIVERED",
        "message_id": WAMID
    });
    let ids: Vec<Vec<String>> = parse(body.to_string().as_bytes())
        .unwrap()
        .into_iter()
        .map(|event| match event {
            ProviderEvent::Status(update) => update.provider_message_ids,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, [vec!["kid-1".to_string()], vec!["kid-2".to_string()]]);
}

#[test]
fn unknown_statuses_and_fields_are_ignored_not_refused() {
    let body = json!({
        "meta_object": {"field": "messages", "value": {"statuses": [
            {"id": "kid-1", "status": "played"}]}, "unknown": 1},
        "extra_info": {"message_id": WAMID, "something_new": {"a": 1}},
        "status": "PLAYED",
        "message_id": WAMID
    });
    assert_eq!(parse(body.to_string().as_bytes()).unwrap(), []);
}

#[test]
fn what_is_not_a_callback_is_malformed() {
    for body in [
        json!(null),
        json!([]),
        json!("meta_object"),
        json!({}),
        json!({"meta_object": "not an object"}),
        json!({"status": "SENT"}),
        json!({"message_id": WAMID}),
        json!({"status": "sent", "message_id": ""}),
        json!({"object": "whatsapp_business_account", "entry": []}),
    ] {
        assert!(
            parse(body.to_string().as_bytes()).is_err(),
            "{body} is not a callback"
        );
    }
    for bytes in [&b""[..], b"{", b"not json"] {
        assert!(parse(bytes).is_err());
    }
}
