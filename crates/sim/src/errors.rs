//! The documented provider error answers, one place per provider.
//!
//! Meta: the code table of `provider-docs/facts.md` with titles and details in the words of Meta's
//! Cloud API error-code page. Kaleyra: the failure bodies of the v2 send API page, verbatim.
//! Generic: the API documents no error body, so a minimal `{"code","message"}`.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde_json::json;

use crate::{unique_id, Provider};

/// Meta Graph errors: (code, HTTP status from the "older table" column or 400, title, details).
#[rustfmt::skip]
const META: &[(u32, u16, &str, &str)] = &[
    (0, 401, "AuthException", "We were unable to authenticate the app user."),
    (1, 400, "API Unknown", "Invalid request or possible server error."),
    (2, 503, "API Service", "Temporary due to downtime or due to being overloaded."),
    (3, 500, "API Method", "Capability or permissions issue."),
    // The table gives "400/429"; 400 is what Graph answered for app-level throttling.
    (4, 400, "Too many calls", "The app has reached its API call rate limit."),
    (10, 403, "Permission Denied", "Permission is either not granted or has been removed."),
    (33, 400, "Parameter value is not valid", "The business phone number has been deleted."),
    (100, 400, "Invalid parameter", "The request included one or more unsupported or misspelled parameters."),
    (190, 401, "Access token has expired", "Your access token has expired."),
    (368, 403, "Temporarily blocked for policies violations", "The WhatsApp Business Account associated with the app has been restricted or disabled for violating a platform policy."),
    (80007, 400, "Rate limit issues", "The WhatsApp Business Account has reached its rate limit."),
    (130403, 400, "Recipient blocked", "Message failed to send because the business has blocked this user."),
    (130429, 400, "Rate limit hit", "Cloud API message throughput has been reached."),
    (130472, 400, "User's number is part of an experiment", "Failed to send message because this user's phone number is part of an experiment."),
    (130497, 403, "Business account is restricted from messaging users in this country", "The business is restricted from sending messages to users in this country."),
    (131000, 500, "Something went wrong", "Message failed to send due to an unknown error."),
    (131005, 403, "Access denied", "Permission is either not granted or has been removed."),
    (131008, 400, "Required parameter is missing", "The request is missing a required parameter."),
    (131009, 400, "Parameter value is not valid", "One or more parameter values are invalid."),
    (131016, 500, "Service unavailable", "A service is temporarily unavailable."),
    (131021, 400, "Recipient cannot be sender", "Sender and recipient phone number is the same."),
    (131026, 400, "Message Undeliverable", "Unable to deliver message. Reasons can include: the recipient phone number is not a WhatsApp phone number; the recipient has not accepted the new Terms of Service; the recipient is using an old WhatsApp version."),
    (131031, 403, "Account has been locked", "Business Account was restricted or disabled for violating a platform policy."),
    (131042, 400, "Business eligibility payment issue", "There was an error related to your payment method."),
    (131047, 400, "Re-engagement message", "Message failed to send because more than 24 hours have passed since the customer last replied to this number."),
    (131048, 400, "Spam rate limit hit", "Message failed to send because there are restrictions on how many messages can be sent from this phone number."),
    (131049, 400, "Meta chose not to deliver.", "This message was not delivered to maintain healthy ecosystem engagement."),
    (131050, 400, "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business.", "The user has stopped marketing messages from this business."),
    (131051, 400, "Unsupported message type", "Message type is not currently supported."),
    (131053, 400, "Media upload error", "Unable to upload the media used in the message."),
    (131056, 400, "(Business Account, Consumer Account) pair rate limit hit", "Too many messages sent from the sender phone number to the same recipient phone number in a short period of time."),
    (131057, 500, "Account in maintenance mode", "Business Account is in maintenance mode."),
    (132000, 400, "Number of parameters does not match the expected number of params", "The number of variable parameter values included in the request did not match the number of variable parameters defined in the template."),
    (132001, 404, "Template name does not exist in the translation", "Template name does not exist in the translation or it has not been approved."),
    (132005, 400, "Translated text too long", "Translated text is too long."),
    (132007, 400, "Template Format Character Policy Violated", "Template content violates a WhatsApp policy."),
    (132012, 400, "Parameter format does not match format in the created template", "Variable parameter values formatted incorrectly."),
    (132015, 400, "Template is Paused", "Template is paused due to low quality so it cannot be sent in a template message."),
    (132016, 400, "Template is Disabled", "Template has been paused too many times due to low quality and is now permanently disabled."),
    (132068, 400, "Flow is in blocked state", "Flow is in blocked state."),
    (132069, 400, "Flow is in throttled state", "Flow is in throttled state and 10 messages using this flow were already sent in the last hour."),
    (133004, 503, "Server Temporarily Unavailable", "Server is temporarily unavailable."),
    (133010, 400, "Account not registered", "Phone number not registered on the Whatsapp Business Platform."),
    (133016, 400, "Account register deregister rate limit exceeded", "Registration or deregistration failed because there were too many attempts for this phone number in a short period of time."),
    (135000, 400, "Generic user error", "Message failed to send because of an unknown error with your request parameters."),
];

/// Kaleyra v2 failure bodies: (code, HTTP status, body). All but WAV2101 are copied from the
/// documentation; WAV2101 is undocumented beyond "account daily limit reached", so it follows
/// the E110 shape.
#[rustfmt::skip]
const KALEYRA: &[(&str, u16, &str)] = &[
    ("RBC001", 401, r#"{"code":"RBC001","message":"Incorrect SID or API key.","data":[],"error":{"error":"Incorrect SID or API key."}}"#),
    ("WA401", 401, r#"{"code":"WA401","message":"Phone number is not present or does not belong to the account.","data":{},"error":{"phone_number":"Phone number is not present or does not belong to the account."}}"#),
    ("WA-401", 401, r#"{"code":"WA-401","message":"API is not available for given customer.Please contact support for more info","data":{},"error":{"account":"API is not available for given customer.Please contact support for more info"}}"#),
    ("WA400", 400, r#"{"code":"WA400","message":"Refer to correct payload format","data":{},"error":{"payload":"Incorrect payload format"}}"#),
    ("WA500", 500, r#"{"code":"WA500","message":"Please try again later","data":{},"error":{"error":"Internal server error"}}"#),
    ("E110", 400, r#"{"code":"E110","message":"Please check your balance, You have a low balance!","data":{},"error":{"balance":"Please check your balance, You have a low balance!"}}"#),
    ("WAV2101", 400, r#"{"code":"WAV2101","message":"Account daily limit reached. Please try again tomorrow or contact support.","data":{},"error":{"account":"Account daily limit reached. Please try again tomorrow or contact support."}}"#),
];

/// Whether `code` can be answered for `provider` (checked when a behaviour is set).
pub(crate) fn is_known(provider: Provider, code: &str) -> bool {
    match provider {
        // Any Graph code works: unlisted ones get a generic title, so tests can try unknown codes.
        Provider::Meta => code.parse::<u32>().is_ok(),
        Provider::Kaleyra => KALEYRA.iter().any(|(c, _, _)| *c == code),
        Provider::Generic => code.parse::<u16>().is_ok_and(|s| (400..=599).contains(&s)),
    }
}

/// The answer for a `Behaviour::Error(code)`.
pub(crate) fn reply(provider: Provider, code: &str) -> HttpResponse {
    match provider {
        Provider::Meta => match code.parse::<u32>() {
            Ok(code) => meta(code, None),
            Err(_) => unknown_code(code),
        },
        Provider::Kaleyra => kaleyra(code),
        Provider::Generic => match code.parse::<u16>() {
            Ok(status) if (400..=599).contains(&status) => generic(status, None),
            _ => unknown_code(code),
        },
    }
}

/// A Graph error for `code`; `details` overrides the table's `error_data.details`.
pub(crate) fn meta(code: u32, details: Option<&str>) -> HttpResponse {
    if code == 190 {
        // What Graph answers for a token it cannot parse: a Graph-level error, no error_data.
        let body = json!({"error": {
            "message": "Invalid OAuth access token - Cannot parse access token",
            "type": "OAuthException",
            "code": 190,
            "fbtrace_id": fbtrace_id(),
        }});
        return HttpResponse::Unauthorized()
            .insert_header((
                "www-authenticate",
                r#"OAuth "Facebook Platform" "invalid_token" "Invalid OAuth access token - Cannot parse access token""#,
            ))
            .json(body);
    }
    let (status, title, table_details) = META
        .iter()
        .find(|(c, ..)| *c == code)
        .map(|(_, s, t, d)| (*s, *t, *d))
        .unwrap_or(match code {
            200..=299 => (
                403,
                "API Permission",
                "Permission is either not granted or has been removed.",
            ),
            _ => (
                400,
                "Simulated error",
                "An error code the simulator has no title for.",
            ),
        });
    let body = json!({"error": {
        "message": format!("(#{code}) {title}"),
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details.unwrap_or(table_details)},
        "fbtrace_id": fbtrace_id(),
    }});
    HttpResponse::build(status_code(status)).json(body)
}

/// A documented Kaleyra failure, body verbatim.
pub(crate) fn kaleyra(code: &str) -> HttpResponse {
    match KALEYRA.iter().find(|(c, ..)| *c == code) {
        Some((_, status, body)) => HttpResponse::build(status_code(*status))
            .content_type("application/json")
            .body(*body),
        None => unknown_code(code),
    }
}

/// The generic API's error: `{"code": "<status>", "message": …}` with that HTTP status.
pub(crate) fn generic(status: u16, message: Option<&str>) -> HttpResponse {
    let default = match status {
        400 => "bad request",
        401 => "unauthorized",
        403 => "forbidden",
        422 => "unprocessable entity",
        429 => "too many requests",
        500 => "internal server error",
        _ => "simulated error",
    };
    HttpResponse::build(status_code(status))
        .json(json!({"code": status.to_string(), "message": message.unwrap_or(default)}))
}

fn unknown_code(code: &str) -> HttpResponse {
    // Unreachable through the public API, which validates codes when they are set.
    HttpResponse::InternalServerError()
        .body(format!("switchboard-sim: no error body for code {code:?}"))
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn fbtrace_id() -> String {
    format!("A{}", unique_id())
}
