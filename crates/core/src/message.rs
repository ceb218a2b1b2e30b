//! The provider-neutral message: WhatsApp's message object as Meta defines it, plus
//! Switchboard's own fields (`from`, `refs`, `callback_url`, `provider`).
//!
//! Every object keeps the fields it does not know in `extra`, so that a field Meta adds
//! tomorrow travels to Meta and Kaleyra unchanged. Adapters that cannot carry such a field
//! must call the message unsupported rather than drop it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Fields a model does not know, kept verbatim.
pub type Extra = Map<String, Value>;

/// A message as a caller asked to send it, after parsing.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundMessage {
    pub envelope: Envelope,
    pub content: Content,
}

/// Everything outside the object named by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_type: Option<RecipientType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Context>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refs: Option<Refs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// When a queued message may be handed over (RFC 3339); makes the send asynchronous.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_at: Option<String>,
    /// Seconds after its creation within which a queued message must be accepted, or it fails
    /// `expired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity_secs: Option<u64>,
    /// The lane of a queued message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// Top-level fields of Meta's message object that Switchboard does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecipientType {
    Individual,
    Group,
}

impl RecipientType {
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientType::Individual => "individual",
            RecipientType::Group => "group",
        }
    }
}

/// `priority`: a sender's `bulk` messages are handed over only while none of its `normal`
/// ones is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    #[default]
    Normal,
    Bulk,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Normal => "normal",
            Priority::Bulk => "bulk",
        }
    }
}

/// `context`: this message replies to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Context {
    pub message_id: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Caller's tracking strings, echoed on every event of the message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refs {
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub r#ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ref1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ref2: Option<String>,
}

impl Refs {
    /// `(name, value)` for each ref that is set, in contract order.
    pub fn entries(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("ref", &self.r#ref),
            ("ref1", &self.ref1),
            ("ref2", &self.ref2),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
    }
}

/// The `type` of a message: the name is also the key of the object that carries the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum MessageType {
    Text,
    Image,
    Audio,
    Video,
    Document,
    Sticker,
    Location,
    Contacts,
    Interactive,
    Template,
    Reaction,
}

impl MessageType {
    pub const ALL: [MessageType; 11] = [
        MessageType::Text,
        MessageType::Image,
        MessageType::Audio,
        MessageType::Video,
        MessageType::Document,
        MessageType::Sticker,
        MessageType::Location,
        MessageType::Contacts,
        MessageType::Interactive,
        MessageType::Template,
        MessageType::Reaction,
    ];

    /// The type name, which is also the key of the object that carries the content.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Text => "text",
            MessageType::Image => "image",
            MessageType::Audio => "audio",
            MessageType::Video => "video",
            MessageType::Document => "document",
            MessageType::Sticker => "sticker",
            MessageType::Location => "location",
            MessageType::Contacts => "contacts",
            MessageType::Interactive => "interactive",
            MessageType::Template => "template",
            MessageType::Reaction => "reaction",
        }
    }

    pub fn from_name(name: &str) -> Option<MessageType> {
        MessageType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// The object named by `type`.
// One value per request: the size spread between variants costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    Text(Text),
    Image(Media),
    Audio(Media),
    Video(Media),
    Document(Media),
    Sticker(Media),
    Location(Location),
    Contacts(Vec<Contact>),
    Interactive(Interactive),
    Template(Template),
    Reaction(Reaction),
}

impl Content {
    pub fn message_type(&self) -> MessageType {
        match self {
            Content::Text(_) => MessageType::Text,
            Content::Image(_) => MessageType::Image,
            Content::Audio(_) => MessageType::Audio,
            Content::Video(_) => MessageType::Video,
            Content::Document(_) => MessageType::Document,
            Content::Sticker(_) => MessageType::Sticker,
            Content::Location(_) => MessageType::Location,
            Content::Contacts(_) => MessageType::Contacts,
            Content::Interactive(_) => MessageType::Interactive,
            Content::Template(_) => MessageType::Template,
            Content::Reaction(_) => MessageType::Reaction,
        }
    }

    /// The media object, for the five media types.
    pub fn media(&self) -> Option<&Media> {
        match self {
            Content::Image(m)
            | Content::Audio(m)
            | Content::Video(m)
            | Content::Document(m)
            | Content::Sticker(m) => Some(m),
            _ => None,
        }
    }

    /// The content as Meta's JSON (the value under the `type` key).
    pub fn to_json(&self) -> Value {
        let result = match self {
            Content::Text(v) => serde_json::to_value(v),
            Content::Image(v)
            | Content::Audio(v)
            | Content::Video(v)
            | Content::Document(v)
            | Content::Sticker(v) => serde_json::to_value(v),
            Content::Location(v) => serde_json::to_value(v),
            Content::Contacts(v) => serde_json::to_value(v),
            Content::Interactive(v) => serde_json::to_value(v),
            Content::Template(v) => serde_json::to_value(v),
            Content::Reaction(v) => serde_json::to_value(v),
        };
        // Serializing plain data with string keys cannot fail.
        result.expect("message content serializes to JSON")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Text {
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_url: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// image, audio, video, document, sticker: by uploaded `id` or by `link`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Media {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A latitude or longitude: Meta documents strings, its examples use numbers; both are kept
/// exactly as given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Coordinate {
    Number(serde_json::Number),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub latitude: Coordinate,
    pub longitude: Coordinate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<ContactAddress>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birthday: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emails: Option<Vec<ContactEmail>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<ContactName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<ContactOrg>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phones: Option<Vec<ContactPhone>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<ContactUrl>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Declares a struct whose fields are all optional strings, plus `extra`.
macro_rules! optional_string_object {
    ($(#[$meta:meta])* $name:ident { $($field:ident $(= $rename:literal)?),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            $(
                $(#[serde(rename = $rename)])?
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<String>,
            )*
            #[serde(flatten)]
            pub extra: Extra,
        }
    };
}

optional_string_object!(ContactAddress { street, city, state, zip, country, country_code, r#type = "type" });
optional_string_object!(ContactEmail { email, r#type = "type" });
optional_string_object!(ContactName {
    formatted_name,
    first_name,
    last_name,
    middle_name,
    prefix,
    suffix
});
optional_string_object!(ContactOrg {
    company,
    department,
    title
});
optional_string_object!(ContactPhone { phone, wa_id, r#type = "type" });
optional_string_object!(ContactUrl { url, r#type = "type" });

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reaction {
    pub message_id: String,
    /// An empty string removes a reaction.
    pub emoji: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `interactive.type`: the kinds Meta defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InteractiveType {
    Button,
    List,
    CtaUrl,
    VoiceCall,
    Flow,
    Product,
    ProductList,
    CatalogMessage,
    LocationRequestMessage,
    AddressMessage,
    CallPermissionRequest,
    Carousel,
}

impl InteractiveType {
    pub fn as_str(self) -> &'static str {
        match self {
            InteractiveType::Button => "button",
            InteractiveType::List => "list",
            InteractiveType::CtaUrl => "cta_url",
            InteractiveType::VoiceCall => "voice_call",
            InteractiveType::Flow => "flow",
            InteractiveType::Product => "product",
            InteractiveType::ProductList => "product_list",
            InteractiveType::CatalogMessage => "catalog_message",
            InteractiveType::LocationRequestMessage => "location_request_message",
            InteractiveType::AddressMessage => "address_message",
            InteractiveType::CallPermissionRequest => "call_permission_request",
            InteractiveType::Carousel => "carousel",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interactive {
    #[serde(rename = "type")]
    pub kind: InteractiveType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<InteractiveHeader>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<InteractiveText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<InteractiveText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `interactive.header`: text, or a media object named by its type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InteractiveHeader {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Media>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<Media>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<Media>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `interactive.body` and `interactive.footer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InteractiveText {
    pub text: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// `cta_url`, `voice_call`, `flow`, `send_location`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// List messages: the label of the button that opens the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button: Option<String>,
    /// Reply-button messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buttons: Option<Vec<ReplyButton>>,
    /// List and product-list messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sections: Option<Vec<Section>>,
    /// `cta_url`, `voice_call`, `flow` parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<ActionParameters>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplyButton {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Reply>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub id: String,
    pub title: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Section {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<Row>>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `action.parameters` of `cta_url` (`display_text`, `url`) and `voice_call`
/// (`display_text`, `ttl_minutes`, `payload`); flow parameters stay in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActionParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_minutes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    pub name: String,
    pub language: TemplateLanguage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<TemplateComponent>>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateLanguage {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `header`, `body`, `button` (with `sub_type` and `index`), … components.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateComponent {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Vec<TemplateParameter>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A template parameter: `text`, `payload`, `ttl_minutes`, media, currency, … by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateParameter {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_minutes: Option<i64>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl OutboundMessage {
    pub fn message_type(&self) -> MessageType {
        self.content.message_type()
    }

    pub fn recipient_type(&self) -> RecipientType {
        self.envelope
            .recipient_type
            .unwrap_or(RecipientType::Individual)
    }

    /// Meta's message object for this message, without `messaging_product`: the unknown
    /// top-level fields, `recipient_type` (default `individual`), `to` as given, `context`,
    /// `type` and the content. Switchboard's own fields are left out. Adapters adjust `to`.
    pub fn whatsapp_object(&self) -> Map<String, Value> {
        let mut object = self.envelope.extra.clone();
        object.insert(
            "recipient_type".into(),
            self.recipient_type().as_str().into(),
        );
        object.insert("to".into(), self.envelope.to.clone().into());
        if let Some(context) = &self.envelope.context {
            object.insert(
                "context".into(),
                serde_json::to_value(context).expect("context serializes"),
            );
        }
        let kind = self.message_type().as_str();
        object.insert("type".into(), kind.into());
        object.insert(kind.into(), self.content.to_json());
        object
    }
}
