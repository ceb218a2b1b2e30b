//! Properties: classification is total, and anything that validates renders to a Kaleyra body.

use proptest::prelude::*;
use serde_json::Value;
use serde_json::{json, Map};
use switchboard_core::arbitrary::{any_json, message_json, provider_body};
use switchboard_core::parse::message_from_value;
use switchboard_core::phone::e164_digits;
use switchboard_core::{
    validate, Adapter, ErrorCode, ProviderResponse, RenderContext, ValidationPolicy,
};
use switchboard_kaleyra::{KaleyraAdapter, KaleyraSettings};

/// Kaleyra codes with a mapping of their own (docs/errors.md).
const MAPPED: &[&str] = &[
    "RBC001", "WA401", "WA-401", "WA400", "E110", "WAV2101", "WA500",
];

fn adapter() -> KaleyraAdapter {
    KaleyraAdapter::new(KaleyraSettings {
        base_url: "https://api.ap.kaleyra.io/".into(),
        sid: "HXAP16XXXXXX97IN".into(),
        api_key: "key".into(),
        wa_source: "zoho".into(),
    })
}

/// A valid text message with any refs (up to the 255-character limit), any unknown top-level
/// field, sometimes to a group: reaches rendering every time, unlike the broad `message_json`.
fn valid_text_message() -> impl Strategy<Value = Value> {
    let refs = (
        proptest::option::of("\\PC{0,255}"),
        proptest::option::of("\\PC{0,255}"),
        proptest::option::of("\\PC{0,255}"),
    );
    (
        "\\+?[1-9][0-9]{6,14}",
        any::<bool>(),
        refs,
        proptest::option::of(("future_[a-z]{1,6}", any_json())),
        "\\PC{1,64}",
    )
        .prop_map(|(to, group, (r0, r1, r2), unknown, body)| {
            let mut refs = Map::new();
            for (name, value) in [("ref", r0), ("ref1", r1), ("ref2", r2)] {
                if let Some(value) = value {
                    refs.insert(name.into(), value.into());
                }
            }
            let mut message =
                json!({"to": to, "type": "text", "text": {"body": body}, "refs": refs});
            if group {
                message["recipient_type"] = json!("group");
                message["to"] = json!("120363025246125486@g.us");
            }
            if let Some((key, value)) = unknown {
                message[key] = value;
            }
            message
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn classify_is_total(status in 100u16..600, body in provider_body(), retry in proptest::option::of("[ -~]{0,8}")) {
        let headers: Vec<(String, String)> = retry.into_iter().map(|v| ("retry-after".to_string(), v)).collect();
        let response = ProviderResponse { status, headers: &headers, body: &body };
        let result = adapter().classify(&response);
        let code = response.json().and_then(|v| v.get("code").and_then(Value::as_str).map(str::to_string));
        match &result {
            Ok(accepted) => {
                prop_assert!(response.is_success());
                prop_assert!(accepted.provider_message_id.as_deref().is_some_and(|id| !id.is_empty()));
            }
            Err(failure) => {
                prop_assert_eq!(failure.words.status, Some(status));
                if response.is_success() {
                    prop_assert_eq!(failure.code, ErrorCode::ProviderError);
                }
                if status >= 500 && !code.as_deref().is_some_and(|c| MAPPED.contains(&c)) {
                    prop_assert_eq!(failure.code, ErrorCode::ProviderUnavailable);
                }
            }
        }
    }

    #[test]
    fn status_5xx_with_unmapped_code_is_unavailable(status in 500u16..600, code in "[A-Z0-9-]{0,8}", message in ".{0,20}") {
        prop_assume!(!MAPPED.contains(&code.as_str()));
        let body = serde_json::json!({"code": code, "message": message, "data": {}, "error": {}}).to_string();
        let failure = adapter()
            .classify(&ProviderResponse { status, headers: &[], body: body.as_bytes() })
            .unwrap_err();
        prop_assert_eq!(failure.code, ErrorCode::ProviderUnavailable);
        prop_assert_eq!(failure.words.code, Some(code));
        prop_assert_eq!(failure.words.message, Some(message));
    }

    #[test]
    fn messaging_object_is_metas_object_and_extra_info_the_refs(value in valid_text_message()) {
        let message = message_from_value(value).expect("parses");
        validate(&message, &ValidationPolicy::default()).expect("valid");
        let context = RenderContext { message_id: "m", sender_number: "+919000000001", phone_number_id: None };
        let result = adapter().render(&message, &context);
        if message.envelope.recipient_type.is_some() {
            prop_assert_eq!(result.unwrap_err().field, "recipient_type");
            return Ok(());
        }
        let request = result.expect("individual text renders");
        let mut expected = message.whatsapp_object();
        expected.insert("messaging_product".into(), "whatsapp".into());
        expected.insert("to".into(), format!("+{}", message.envelope.to.trim_start_matches('+')).into());
        let mut extra_info: Map<String, Value> = message
            .envelope
            .refs
            .iter()
            .flat_map(|refs| refs.entries())
            .map(|(name, value)| (name.to_string(), Value::from(value)))
            .collect();
        extra_info.insert("wa_source".into(), "zoho".into());
        prop_assert_eq!(request.body, json!({"messaging_object": expected, "extra_info": extra_info}));
    }
}

// Few of the broad strategy's messages pass validation (about 1 in 150), hence more cases (about a dozen reach render).
proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn valid_messages_render_to_kaleyra_bodies(value in message_json()) {
        let Ok(message) = message_from_value(value) else { return Ok(()) };
        if validate(&message, &ValidationPolicy::default()).is_err() {
            return Ok(());
        }
        let context = RenderContext { message_id: "01JD3W6Q8S3M1V2H7KX2F5N9ZC", sender_number: "+919000000001", phone_number_id: None };
        match adapter().render(&message, &context) {
            Ok(request) => {
                let object = &request.body["messaging_object"];
                prop_assert_eq!(&object["messaging_product"], "whatsapp");
                prop_assert_eq!(&request.body["extra_info"]["wa_source"], "zoho");
                let digits = e164_digits(&message.envelope.to).expect("validated individual number");
                prop_assert_eq!(&object["to"], &Value::from(format!("+{digits}")));
                prop_assert_eq!(&object[message.message_type().as_str()], &message.content.to_json());
                prop_assert_eq!(
                    request.url.as_str(),
                    "https://api.ap.kaleyra.io/v2/HXAP16XXXXXX97IN/whatsapp/+919000000001/messages"
                );
            }
            Err(unsupported) => prop_assert_eq!(unsupported.field, "recipient_type"),
        }
    }
}
