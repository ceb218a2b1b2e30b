//! Kaleyra WhatsApp API v2 adapter: pure rendering of `POST /v2/{sid}/whatsapp/{sender}/messages`
//! and classification of Kaleyra's answers (docs/providers.md). One adapter per pod, since an account
//! lives in one pod and failover across pods needs per-pod settings. [`webhook`] parses its v2
//! callbacks.

mod classify;
mod provider;
mod render;
pub mod webhook;

pub use provider::Kaleyra;

use secrecy::SecretString;
use switchboard_core::{
    Accepted, Adapter, OutboundMessage, ProviderFailure, ProviderRequest, ProviderResponse,
    RenderContext, Unsupported,
};

/// Kaleyra's documented `wa_source` values (any other value Kaleyra silently turns into "api").
pub const WA_SOURCES: &[&str] = &[
    "api",
    "clevertap",
    "zoho",
    "webengage",
    "shopify",
    "leadsquared",
    "responsys",
    "braze",
    "hubspot",
    "salesforce",
    "zapier",
    "eloqua",
    "moengage",
];

/// The pod names the configuration accepts, in documentation order.
pub const POD_NAMES: &[&str] = &["in", "sg", "eu"];

/// A pod's API base URL. Note the SG pod's domain is `api.ap…`, not `api.sg…`.
pub fn pod_base_url(pod: &str) -> Option<&'static str> {
    match pod {
        "in" => Some("https://api.in.kaleyra.io"),
        "sg" => Some("https://api.ap.kaleyra.io"),
        "eu" => Some("https://api.eu.kaleyra.io"),
        _ => None,
    }
}

/// The base URL of a configured pod: its `base_url` override if given, else the pod's
/// documented URL. An unknown pod name without an override, or an empty override, is an error
/// that says what is allowed.
pub fn resolve_pod(name: &str, base_url_override: Option<&str>) -> Result<String, String> {
    match base_url_override {
        Some(url) if url.trim().is_empty() => {
            Err(format!("pod \"{name}\": base_url must not be empty"))
        }
        Some(url) => Ok(url.to_string()),
        None => pod_base_url(name).map(str::to_string).ok_or_else(|| {
            format!(
                "unknown Kaleyra pod \"{name}\": expected one of {} (or give base_url)",
                POD_NAMES.join(", ")
            )
        }),
    }
}

/// One pod's endpoint settings. `Debug` shows the api key redacted (secrecy's own `Debug`).
#[derive(Debug, Clone)]
pub struct KaleyraSettings {
    pub base_url: String,
    pub sid: String,
    pub api_key: SecretString,
    pub wa_source: String,
}

/// The adapter for one Kaleyra pod.
#[derive(Debug, Clone)]
pub struct KaleyraAdapter {
    settings: KaleyraSettings,
}

impl KaleyraAdapter {
    pub fn new(settings: KaleyraSettings) -> Self {
        KaleyraAdapter { settings }
    }

    pub fn settings(&self) -> &KaleyraSettings {
        &self.settings
    }
}

impl Adapter for KaleyraAdapter {
    fn kind(&self) -> &'static str {
        "kaleyra"
    }

    fn render(
        &self,
        message: &OutboundMessage,
        context: &RenderContext<'_>,
    ) -> Result<ProviderRequest, Unsupported> {
        render::render(&self.settings, message, context)
    }

    fn classify(&self, response: &ProviderResponse<'_>) -> Result<Accepted, ProviderFailure> {
        classify::classify(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> KaleyraSettings {
        KaleyraSettings {
            base_url: "https://api.in.kaleyra.io".into(),
            sid: "HXAP16XXXXXX97IN".into(),
            api_key: "A-very-secret-key-123".into(),
            wa_source: "api".into(),
        }
    }

    #[test]
    fn debug_never_shows_the_api_key() {
        let adapter = KaleyraAdapter::new(settings());
        for shown in [
            format!("{adapter:?}"),
            format!("{adapter:#?}"),
            format!("{:?}", settings()),
        ] {
            assert!(!shown.contains("A-very-secret-key-123"), "{shown}");
            assert!(shown.contains("HXAP16XXXXXX97IN"), "{shown}");
        }
        assert_eq!(adapter.kind(), "kaleyra");
    }

    #[test]
    fn pods_map_to_their_documented_domains() {
        assert_eq!(pod_base_url("in"), Some("https://api.in.kaleyra.io"));
        assert_eq!(pod_base_url("sg"), Some("https://api.ap.kaleyra.io"));
        assert_eq!(pod_base_url("eu"), Some("https://api.eu.kaleyra.io"));
        for unknown in ["", "ap", "IN", "us", " in"] {
            assert_eq!(pod_base_url(unknown), None, "{unknown:?}");
        }
        for pod in POD_NAMES {
            assert!(pod_base_url(pod).is_some(), "{pod}");
        }
    }

    #[test]
    fn resolve_pod_prefers_the_override_and_names_allowed_pods() {
        assert_eq!(
            resolve_pod("sg", None).as_deref(),
            Ok("https://api.ap.kaleyra.io")
        );
        assert_eq!(
            resolve_pod("eu", Some("https://eu.proxy.internal")).as_deref(),
            Ok("https://eu.proxy.internal")
        );
        // A custom pod name is fine when it says where to go.
        assert_eq!(
            resolve_pod("staging", Some("http://127.0.0.1:9000")).as_deref(),
            Ok("http://127.0.0.1:9000")
        );
        let error = resolve_pod("us", None).unwrap_err();
        assert!(
            error.contains("\"us\"") && error.contains("in, sg, eu"),
            "{error}"
        );
        assert!(resolve_pod("in", Some("  ")).is_err());
    }

    #[test]
    fn wa_sources_are_the_documented_thirteen() {
        assert_eq!(WA_SOURCES.len(), 13);
        assert!(WA_SOURCES.contains(&"api") && WA_SOURCES.contains(&"moengage"));
    }
}
