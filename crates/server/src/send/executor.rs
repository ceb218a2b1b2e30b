//! The one place Switchboard speaks HTTP to providers: a pooled client per thread, a
//! per-endpoint timeout, and transport failures mapped to Switchboard's error codes.

use bytes::Bytes;
use foldhash::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard_core::adapter::CLASSIFIED_HEADERS;
use switchboard_core::{ErrorCode, HttpMethod, ProviderFailure, ProviderRequest, ProviderResponse};
use thread_local::ThreadLocal;

/// A provider's raw answer.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Only those of `CLASSIFIED_HEADERS`.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

#[derive(Debug, Clone, Default)]
pub struct Executor {
    clients: Arc<ThreadLocal<reqwest::Client>>,
    urls: Arc<UrlCache>,
}

/// Provider URLs, parsed once: an endpoint's URL is the same for every message of a sender, and
/// parsing it again for each one was 4% of the gateway's CPU.
#[derive(Default)]
struct UrlCache(Mutex<HashMap<String, reqwest::Url>>);

/// URLs name accounts (a SID, a phone number id): a debug print shows only how many there are.
impl std::fmt::Debug for UrlCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls = self.0.lock().map(|urls| urls.len()).unwrap_or_default();
        write!(f, "UrlCache({urls} URLs)")
    }
}

/// URLs kept at most; past this the cache starts over (URLs come from the configuration, so
/// this is only reached if an adapter puts per-message parts in them).
const URL_CACHE_MAX: usize = 1024;

impl UrlCache {
    /// `url` parsed, or `None` if it does not parse (reqwest then refuses it as it always did).
    fn parsed(&self, url: &str) -> Option<reqwest::Url> {
        let mut urls = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(parsed) = urls.get(url) {
            return Some(parsed.clone());
        }
        let parsed = reqwest::Url::parse(url).ok()?;
        if urls.len() >= URL_CACHE_MAX {
            urls.clear();
        }
        urls.insert(url.to_owned(), parsed.clone());
        Some(parsed)
    }
}

impl Executor {
    pub fn new() -> Self {
        Self::default()
    }

    /// This thread's client, built on its first send.
    ///
    /// One client (and so one connection pool) per thread: a pooled connection's task runs on
    /// the runtime of the thread that opened it, so a connection shared between HTTP workers
    /// woke the other worker's thread on every exchange it served for this one. The floor's
    /// A/B in bench/RESULTS.md measured what that cost. Each worker then keeps its own idle
    /// connections to a provider (`pool_max_idle_per_host` each).
    fn client(&self) -> &reqwest::Client {
        self.clients.get_or(build_client)
    }

    /// Sends `request`. `Err` is a failure before any response: connection refused or reset
    /// (`provider_unavailable`) or no answer within `timeout` (`provider_timeout`, outcome
    /// unknown).
    pub async fn send(
        &self,
        request: &ProviderRequest,
        timeout: Duration,
    ) -> Result<RawResponse, ProviderFailure> {
        let method = match request.method {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Post => reqwest::Method::POST,
        };
        let builder = match self.urls.parsed(&request.url) {
            Some(url) => self.client().request(method, url),
            None => self.client().request(method, &request.url),
        };
        let mut builder = builder.timeout(timeout);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.expose());
        }
        let body = serde_json::to_vec(&request.body).expect("a JSON value serializes");
        let response = builder.body(body).send().await.map_err(transport_failure)?;
        let status = response.status().as_u16();
        let headers = CLASSIFIED_HEADERS
            .iter()
            .flat_map(|name| {
                response
                    .headers()
                    .get_all(*name)
                    .iter()
                    .map(move |value| (name, value))
            })
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.to_string(), value)
            })
            .collect();
        let body = response.bytes().await.map_err(transport_failure)?;
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }
}

impl Executor {
    /// Sends `request` and lets `classify` judge the answer; a transport failure is the
    /// failure itself.
    pub async fn exchange<T>(
        &self,
        request: &ProviderRequest,
        timeout: Duration,
        classify: impl FnOnce(&ProviderResponse<'_>) -> Result<T, ProviderFailure>,
    ) -> Result<T, ProviderFailure> {
        let raw = self.send(request, timeout).await?;
        classify(&ProviderResponse {
            status: raw.status,
            headers: &raw.headers,
            body: &raw.body,
        })
    }
}

/// The environment variables that name a proxy for provider calls, as reqwest reads them
/// (`NO_PROXY` only narrows these). docs/configuration.md lists them.
const PROXY_VARIABLES: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Whether any of [`PROXY_VARIABLES`] is set (`is_set` looks one up), even to nothing.
fn names_a_proxy(is_set: impl Fn(&str) -> bool) -> bool {
    PROXY_VARIABLES.iter().any(|name| is_set(name))
}

/// The provider client's settings.
fn build_client() -> reqwest::Client {
    let builder = reqwest::Client::builder();
    // reqwest looks a plain-http request's destination up in the environment's proxy settings
    // twice per request (an https one once per connection), even when they name no proxy. With
    // none named, saying so skips that. This holds while reqwest reads proxies from the
    // environment only: its `system-proxy` feature (operating-system settings) is not enabled.
    let builder = if names_a_proxy(|name| std::env::var_os(name).is_some()) {
        builder
    } else {
        builder.no_proxy()
    };
    builder
        // A redirect is an answer to classify, never a reason to re-send the message (and
        // its credentials) somewhere that is not configured.
        .redirect(reqwest::redirect::Policy::none())
        // Nothing is sent again by the client itself (failover decides, docs/failover.md).
        // With no retry at all, the request is not copied for a retry on every send.
        .retry(reqwest::retry::never().max_retries_per_request(0))
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client builds with static settings")
}

fn transport_failure(error: reqwest::Error) -> ProviderFailure {
    // The URL is left out of the text: it names the account (SID, phone number id).
    let error = error.without_url();
    if error.is_timeout() {
        return ProviderFailure::new(ErrorCode::ProviderTimeout);
    }
    let detail = if error.is_connect() {
        "connection failed (refused, reset or unreachable) before a response"
    } else {
        "the connection failed before a complete response"
    };
    ProviderFailure::new(ErrorCode::ProviderUnavailable).with_message(format!(
        "The provider could not be reached: {detail}; retry later with the same Idempotency-Key."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_proxy_variable_alone_keeps_the_proxy_settings() {
        for name in [
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            assert!(names_a_proxy(|set| set == name), "{name}");
        }
        assert!(!names_a_proxy(|set| set == "NO_PROXY" || set == "no_proxy"));
        assert!(!names_a_proxy(|_| false));
    }

    #[test]
    fn urls_are_parsed_once_and_the_cache_stays_bounded() {
        let cache = UrlCache::default();
        let url = "http://127.0.0.1:9/v2/HXAP16XXXXXX97IN/messages";
        assert_eq!(cache.parsed(url).map(String::from), Some(url.to_owned()));
        assert_eq!(cache.parsed(url).map(String::from), Some(url.to_owned()));
        assert_eq!(cache.0.lock().unwrap().len(), 1);
        assert_eq!(cache.parsed("not a url"), None);
        for n in 0..URL_CACHE_MAX + 5 {
            cache.parsed(&format!("http://127.0.0.1:9/{n}"));
        }
        assert!(cache.0.lock().unwrap().len() <= URL_CACHE_MAX);
        assert!(!format!("{cache:?}").contains("127.0.0.1"));
    }
}
