//! Adapter for the generic from/to/body WhatsApp API (docs/providers.md): pure rendering of
//! `POST {base_url}{path}` and classification of its answers. No network, clock or store.
//! [`webhook`] parses its status callbacks.

mod classify;
mod provider;
mod render;
pub mod webhook;

pub use provider::Generic;

use secrecy::SecretString;
use switchboard_core::{
    Accepted, Adapter, OutboundMessage, ProviderFailure, ProviderRequest, ProviderResponse,
    RenderContext, Unsupported,
};

/// The path the generic API documents (`POST /whatsapp/messages`).
pub const DEFAULT_PATH: &str = "/whatsapp/messages";

/// One generic provider instance, as configured.
#[derive(Debug, Clone)]
pub struct GenericSettings {
    pub base_url: String,
    pub path: String,
    /// Optional auth header name and its secret value.
    pub auth: Option<(String, SecretString)>,
    /// Where the provider should POST callbacks: `{server.public_url}/webhooks/{instance}`
    /// (computed by the server). `None` → no `callbacks` field.
    pub callbacks_url: Option<String>,
}

/// `Debug` is derived: the auth value is a `SecretString`, which prints redacted.
#[derive(Debug)]
pub struct GenericAdapter {
    url: String,
    auth: Option<(String, SecretString)>,
    callbacks_url: Option<String>,
}

impl GenericAdapter {
    pub fn new(settings: GenericSettings) -> Self {
        GenericAdapter {
            url: join_url(&settings.base_url, &settings.path),
            auth: settings.auth,
            callbacks_url: settings.callbacks_url,
        }
    }
}

/// `base_url` + `path` with exactly one `/` between them, whichever side has it.
fn join_url(base_url: &str, path: &str) -> String {
    let base = base_url.trim_end_matches('/');
    let path = path.trim_start_matches('/');
    if path.is_empty() {
        base.to_string()
    } else {
        format!("{base}/{path}")
    }
}

impl Adapter for GenericAdapter {
    fn kind(&self) -> &'static str {
        "generic"
    }

    fn render(
        &self,
        message: &OutboundMessage,
        context: &RenderContext<'_>,
    ) -> Result<ProviderRequest, Unsupported> {
        render::render(self, message, context)
    }

    fn classify(&self, response: &ProviderResponse<'_>) -> Result<Accepted, ProviderFailure> {
        classify::classify(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_join_with_exactly_one_slash() {
        for (base, path, url) in [
            (
                "https://bsp.example.com",
                "/whatsapp/messages",
                "https://bsp.example.com/whatsapp/messages",
            ),
            (
                "https://bsp.example.com/",
                "/whatsapp/messages",
                "https://bsp.example.com/whatsapp/messages",
            ),
            (
                "https://bsp.example.com/",
                "whatsapp/messages",
                "https://bsp.example.com/whatsapp/messages",
            ),
            (
                "https://bsp.example.com/api",
                "v1/send",
                "https://bsp.example.com/api/v1/send",
            ),
            ("https://bsp.example.com/", "", "https://bsp.example.com"),
        ] {
            assert_eq!(join_url(base, path), url, "{base} + {path}");
        }
    }
}
