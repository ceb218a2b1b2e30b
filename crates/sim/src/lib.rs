//! A simulator of the three WhatsApp providers Switchboard talks to — Meta Cloud API, Kaleyra v2
//! (pods `in`, `sg`, `eu`) and the generic from/to/body API — on one loopback HTTP listener.
//!
//! It is written from the providers' documentation, independently of the Switchboard adapters,
//! so that tests against it check the adapters rather than echo them. Each endpoint ("meta",
//! "kaleyra/in", "kaleyra/sg", "kaleyra/eu", "generic") can be told to misbehave
//! ([`Behaviour`]), and every request reaching a provider route is recorded
//! ([`RecordedRequest`]). The same control is available over HTTP under `/_sim` for sandbox users.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use switchboard_sim::{Behaviour, SimCredentials, Simulator};
//! let sim = Simulator::start("127.0.0.1:0".parse().unwrap(), SimCredentials::sandbox()).await?;
//! sim.set_behaviour("kaleyra/in", Behaviour::Error("WA500".into()));
//! // … point the gateway at sim.kaleyra_pod_base_url("in"), send, then:
//! assert_eq!(sim.requests_to("kaleyra/in").len(), 1);
//! sim.stop().await;
//! # Ok(()) }
//! ```

mod control;
mod errors;
mod generic;
mod kaleyra;
mod meta;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};

/// The endpoint names accepted by [`Simulator::set_behaviour`] and [`Simulator::requests_to`].
pub const ENDPOINTS: [&str; 5] = ["meta", "kaleyra/in", "kaleyra/sg", "kaleyra/eu", "generic"];

/// The Kaleyra pods served under `/kaleyra/{pod}`.
pub const KALEYRA_PODS: [&str; 3] = ["in", "sg", "eu"];

/// Upper bound of every wait (`Slow`, `BlackHole`), so a forgotten behaviour cannot pin a
/// connection forever.
pub const MAX_WAIT: Duration = Duration::from_secs(600);

/// Request bodies above this are refused by actix (413) before reaching a provider route.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// How an endpoint answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Behaviour {
    /// Check the request as the provider documents it and answer success or the documented error.
    #[default]
    Normal,
    /// Answer a documented provider error by its code, whatever the request: Meta Graph codes as
    /// strings ("131026", "130429", "190", … any number; unlisted ones get a generic title and
    /// HTTP 400), Kaleyra codes ("RBC001", "WA401", "WA-401", "WA400", "WA500", "E110",
    /// "WAV2101"), generic HTTP statuses ("400", "401", "403", "422", "429", "500", any 400–599).
    Error(String),
    /// Any raw answer: status, headers, body (e.g. an HTML 502 page).
    Raw {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// HTTP 503 with an HTML page, as a load balancer in front of a dead backend answers.
    Down,
    /// Wait (at most [`MAX_WAIT`]), then behave as `Normal`.
    Slow(Duration),
    /// Accept the request and do not answer: after [`MAX_WAIT`] the connection gets a 504 and is
    /// closed. A client giving up earlier cancels the wait.
    BlackHole,
}

impl Behaviour {
    /// Why this behaviour cannot be set on `endpoint`, if it cannot.
    fn check(&self, endpoint: &str) -> Result<(), String> {
        let provider = Provider::of(endpoint).ok_or_else(|| {
            format!(
                "unknown endpoint {endpoint:?}; known: {}",
                ENDPOINTS.join(", ")
            )
        })?;
        match self {
            Behaviour::Error(code) if !errors::is_known(provider, code) => Err(format!(
                "no documented error {code:?} for endpoint {endpoint:?}"
            )),
            Behaviour::Raw {
                status, headers, ..
            } => {
                StatusCode::from_u16(*status)
                    .map_err(|_| format!("invalid HTTP status {status}"))?;
                for (name, value) in headers {
                    let valid = actix_web::http::header::HeaderName::try_from(name.as_str())
                        .is_ok()
                        && actix_web::http::header::HeaderValue::try_from(value.as_str()).is_ok();
                    if !valid {
                        return Err(format!("invalid header {name:?}: {value:?}"));
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// The secrets the simulated providers check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCredentials {
    /// Expected in `Authorization: Bearer <token>` by Meta.
    pub meta_access_token: String,
    /// Kaleyra `api-key` per pod (`in`, `sg`, `eu`); a pod without a key refuses every request.
    pub kaleyra_api_keys: BTreeMap<String, String>,
    /// Header the generic API expects (case-insensitive); empty means no auth check.
    pub generic_auth_header: String,
    pub generic_auth_value: String,
}

impl SimCredentials {
    /// Fixed, obviously fake values for the sandbox and tests.
    pub fn sandbox() -> Self {
        SimCredentials {
            meta_access_token: "sim-meta-token".into(),
            kaleyra_api_keys: KALEYRA_PODS
                .iter()
                .map(|pod| (pod.to_string(), format!("sim-kaleyra-key-{pod}")))
                .collect(),
            generic_auth_header: "x-api-key".into(),
            generic_auth_value: "sim-generic-key".into(),
        }
    }
}

/// One request that reached a provider route.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RecordedRequest {
    /// "meta", "kaleyra/in", "kaleyra/sg", "kaleyra/eu" or "generic".
    pub endpoint: String,
    pub method: String,
    /// The path as received (without the query), e.g. `/meta/v21.0/123/messages`.
    pub path: String,
    /// Lower-case names, sorted by name.
    pub headers: Vec<(String, String)>,
    /// The JSON body, or `Value::String` of the raw text when it is not JSON.
    pub body: serde_json::Value,
    /// `None` while unanswered (e.g. a `BlackHole`).
    pub answered_status: Option<u16>,
    /// When the request reached the route: unix time in microseconds, from the system clock
    /// (comparable across simulators and processes on one machine), taken before the
    /// endpoint's behaviour runs, so a `Slow` or `BlackHole` answer does not shift it.
    pub received_at_us: u64,
}

/// A running simulator. Cheap to clone; all clones control the same server.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

struct Inner {
    addr: SocketAddr,
    shared: web::Data<Shared>,
    handle: ServerHandle,
    task: Mutex<Option<tokio::task::JoinHandle<std::io::Result<()>>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // `stop` sends the command at once; the returned future only waits for completion.
        drop(self.handle.stop(false));
    }
}

impl Simulator {
    /// Binds `bind` (use port 0 for a free port) and serves on the current tokio runtime.
    pub async fn start(
        bind: SocketAddr,
        credentials: SimCredentials,
    ) -> std::io::Result<Simulator> {
        let listener = std::net::TcpListener::bind(bind)?;
        let addr = listener.local_addr()?;
        let shared = web::Data::new(Shared::new(credentials));
        let app_shared = shared.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_shared.clone())
                .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
                .configure(meta::routes)
                .configure(kaleyra::routes)
                .configure(generic::routes)
                .configure(control::routes)
        })
        // One worker is plenty: every wait is an async sleep, so nothing blocks it.
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)?
        .run();
        let handle = server.handle();
        let task = tokio::spawn(server);
        Ok(Simulator {
            inner: Arc::new(Inner {
                addr,
                shared,
                handle,
                task: Mutex::new(Some(task)),
            }),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// Meta's Graph base URL: append `/{version}/{phone_number_id}/messages`.
    pub fn meta_base_url(&self) -> String {
        format!("{}/meta", self.base_url())
    }

    /// A Kaleyra pod's base URL: append `/v2/{sid}/whatsapp/{+number}/messages`.
    pub fn kaleyra_pod_base_url(&self, pod: &str) -> String {
        format!("{}/kaleyra/{pod}", self.base_url())
    }

    /// The generic API's base URL: append `/whatsapp/messages`.
    pub fn generic_base_url(&self) -> String {
        format!("{}/generic", self.base_url())
    }

    /// Sets how `endpoint` answers from now on (requests already waiting keep their behaviour).
    ///
    /// # Panics
    /// On an endpoint not in [`ENDPOINTS`], an error code the endpoint's provider does not
    /// document, or a `Raw` with an invalid status or header: a typo in a test should fail loudly.
    pub fn set_behaviour(&self, endpoint: &str, behaviour: Behaviour) {
        if let Err(why) = self.inner.shared.set_behaviour(endpoint, behaviour) {
            panic!("switchboard-sim: {why}");
        }
    }

    /// Every endpoint back to `Normal`, recordings cleared.
    pub fn reset(&self) {
        self.inner.shared.reset();
    }

    /// Every recorded request, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner.shared.requests(None)
    }

    /// The recorded requests of one endpoint, in arrival order.
    pub fn requests_to(&self, endpoint: &str) -> Vec<RecordedRequest> {
        self.inner.shared.requests(Some(endpoint))
    }

    /// Stops the server at once (waiting requests are dropped) and waits for it to end.
    pub async fn stop(self) {
        self.inner.handle.stop(false).await;
        let task = lock(&self.inner.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// The provider behind an endpoint name; decides which error table applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provider {
    Meta,
    Kaleyra,
    Generic,
}

impl Provider {
    fn of(endpoint: &str) -> Option<Provider> {
        match endpoint {
            "meta" => Some(Provider::Meta),
            "generic" => Some(Provider::Generic),
            _ => endpoint
                .strip_prefix("kaleyra/")
                .filter(|pod| KALEYRA_PODS.contains(pod))
                .map(|_| Provider::Kaleyra),
        }
    }
}

/// State shared between the handlers and the [`Simulator`] handle.
pub(crate) struct Shared {
    credentials: SimCredentials,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    behaviours: HashMap<String, Behaviour>,
    /// Recordings with a sequence number, so an answer finds its record even after a `reset`.
    requests: Vec<(u64, RecordedRequest)>,
    next_seq: u64,
}

impl Shared {
    fn new(credentials: SimCredentials) -> Self {
        Shared {
            credentials,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub(crate) fn set_behaviour(&self, endpoint: &str, behaviour: Behaviour) -> Result<(), String> {
        behaviour.check(endpoint)?;
        self.state()
            .behaviours
            .insert(endpoint.to_owned(), behaviour);
        Ok(())
    }

    pub(crate) fn behaviours(&self) -> BTreeMap<String, Behaviour> {
        let state = self.state();
        ENDPOINTS
            .iter()
            .map(|e| {
                (
                    e.to_string(),
                    state.behaviours.get(*e).cloned().unwrap_or_default(),
                )
            })
            .collect()
    }

    fn behaviour(&self, endpoint: &str) -> Behaviour {
        self.state()
            .behaviours
            .get(endpoint)
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn reset(&self) {
        let mut state = self.state();
        state.behaviours.clear();
        state.requests.clear();
    }

    pub(crate) fn clear_requests(&self) {
        self.state().requests.clear();
    }

    pub(crate) fn requests(&self, endpoint: Option<&str>) -> Vec<RecordedRequest> {
        self.state()
            .requests
            .iter()
            .map(|(_, r)| r)
            .filter(|r| endpoint.is_none_or(|e| r.endpoint == e))
            .cloned()
            .collect()
    }

    fn record(&self, endpoint: &str, req: &HttpRequest, body: &Bytes) -> u64 {
        let received_at_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        let mut headers: Vec<(String, String)> = req
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_ascii_lowercase(), value)
            })
            .collect();
        headers.sort_by(|a, b| a.0.cmp(&b.0));
        let body = serde_json::from_slice(body).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(body).into_owned())
        });
        let record = RecordedRequest {
            endpoint: endpoint.to_owned(),
            method: req.method().to_string(),
            path: req.path().to_owned(),
            headers,
            body,
            answered_status: None,
            received_at_us,
        };
        let mut state = self.state();
        let seq = state.next_seq;
        state.next_seq += 1;
        state.requests.push((seq, record));
        seq
    }

    fn answered(&self, seq: u64, status: u16) {
        let mut state = self.state();
        if let Some((_, record)) = state.requests.iter_mut().rev().find(|(s, _)| *s == seq) {
            record.answered_status = Some(status);
        }
    }
}

/// Runs one provider request: records it, then answers per the endpoint's behaviour, `normal`
/// being the provider's documented checks and success.
pub(crate) async fn serve(
    shared: &Shared,
    endpoint: &str,
    req: &HttpRequest,
    body: &Bytes,
    normal: impl FnOnce() -> HttpResponse,
) -> HttpResponse {
    let seq = shared.record(endpoint, req, body);
    let response = match shared.behaviour(endpoint) {
        Behaviour::Normal => normal(),
        Behaviour::Error(code) => match Provider::of(endpoint) {
            Some(provider) => errors::reply(provider, &code),
            None => HttpResponse::NotFound().finish(),
        },
        Behaviour::Raw {
            status,
            headers,
            body,
        } => {
            let mut builder = HttpResponse::build(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            );
            for (name, value) in headers {
                builder.append_header((name, value));
            }
            builder.body(body)
        }
        Behaviour::Down => HttpResponse::ServiceUnavailable()
            .content_type("text/html")
            .body(DOWN_PAGE),
        Behaviour::Slow(delay) => {
            tokio::time::sleep(delay.min(MAX_WAIT)).await;
            normal()
        }
        Behaviour::BlackHole => {
            tokio::time::sleep(MAX_WAIT).await;
            HttpResponse::GatewayTimeout()
                .force_close()
                .content_type("text/html")
                .body(TIMEOUT_PAGE)
        }
    };
    shared.answered(seq, response.status().as_u16());
    response
}

const DOWN_PAGE: &str = "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

const TIMEOUT_PAGE: &str = "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

/// A process-unique upper-case alphanumeric id (19 chars): a per-process seed from the clock
/// and a counter, so ids differ across runs and never repeat within one.
pub(crate) fn unique_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = clock_seed();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:011X}{n:08X}", seed & 0xFFF_FFFF_FFFF)
}

/// A process-unique string of digits (for ids Meta gives as digits, e.g. template ids).
pub(crate) fn unique_digits() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // Fixed-width seed, so different counters never produce the same string.
    format!("1{:09}{n:06}", clock_seed() % 1_000_000_000)
}

fn clock_seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    })
}

/// Locks a mutex, recovering from poisoning: the data is plain bookkeeping that a panicking
/// test thread cannot leave half-updated in a way that matters.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
