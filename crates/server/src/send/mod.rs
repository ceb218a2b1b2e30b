//! The send path: route → for each endpoint: render → send → classify → accepted, or the next
//! endpoint when the failure allows it (docs/failover.md). A library API: it takes what it
//! needs ([`Sending`]) and answers a [`SendResult`] or a [`SendFailure`]; the API layer alone
//! turns those into HTTP answers.

pub mod circuit;
pub mod executor;

use crate::config::{Endpoint, Resilience, Sender, Settings};
use crate::metrics::Metrics;
use circuit::{Admission, Circuits, Thresholds};
use executor::Executor;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_core::{
    Accepted, ErrorCode, OutboundMessage, ProviderFailure, ProviderRequest, ProviderWords,
    RenderContext, Unsupported,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Accepted,
    Failed,
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    Unsupported,
    CircuitOpen,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Unsupported => "unsupported",
            SkipReason::CircuitOpen => "circuit_open",
        }
    }
}

/// The error of one attempt, as listed in `attempts`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AttemptError {
    pub code: ErrorCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(flatten)]
    pub words: ProviderWords,
}

/// One endpoint's part in a send.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Attempt {
    pub endpoint: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<SkipReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<AttemptError>,
}

impl Attempt {
    fn unsupported(endpoint: &Endpoint, why: &Unsupported) -> Self {
        Attempt {
            endpoint: endpoint.id.clone(),
            outcome: Outcome::Skipped,
            reason: Some(SkipReason::Unsupported),
            duration_ms: None,
            error: Some(AttemptError {
                code: ErrorCode::UnsupportedByProvider,
                message: Some(why.message.clone()),
                words: ProviderWords::default(),
            }),
        }
    }

    fn circuit_open(endpoint: &Endpoint) -> Self {
        Attempt {
            endpoint: endpoint.id.clone(),
            outcome: Outcome::Skipped,
            reason: Some(SkipReason::CircuitOpen),
            duration_ms: None,
            error: None,
        }
    }

    /// The `code` label of the attempt metric: the error code, or the reason of a skip.
    fn metric_code(&self) -> &'static str {
        match (&self.reason, &self.error) {
            (Some(reason), _) => reason.as_str(),
            (None, Some(error)) => error.code.as_str(),
            (None, None) => "",
        }
    }

    fn finished(
        endpoint: &Endpoint,
        started: Instant,
        result: &Result<Accepted, ProviderFailure>,
    ) -> Self {
        let error = result.as_ref().err().map(|f| AttemptError {
            code: f.code,
            message: None,
            words: f.words.clone(),
        });
        Attempt {
            endpoint: endpoint.id.clone(),
            outcome: if result.is_ok() {
                Outcome::Accepted
            } else {
                Outcome::Failed
            },
            reason: None,
            duration_ms: Some(started.elapsed().as_millis() as u64),
            error,
        }
    }
}

/// The 202 body of an accepted send.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SendResult {
    pub id: String,
    /// Always `accepted` (what tells this answer from a queued one).
    #[schema(pattern = "^accepted$")]
    pub status: &'static str,
    pub provider: String,
    pub endpoint: String,
    pub provider_message_id: Option<String>,
    pub provider_status: String,
    pub attempts: Vec<Attempt>,
}

/// What a send needs besides the message: the one provider HTTP client, the circuits, the
/// metrics.
#[derive(Clone, Copy)]
pub struct Sending<'a> {
    pub executor: &'a Executor,
    pub circuits: &'a Circuits,
    pub metrics: &'a Metrics,
}

/// Why a send did not end in an acceptance. Each carries the attempts made.
#[derive(Debug, Clone)]
pub enum SendFailure {
    /// The last endpoint tried failed, and the failure was final or no endpoint was left.
    Provider {
        /// Boxed: failures travel through `Result`s and should stay small.
        failure: Box<ProviderFailure>,
        provider: String,
        endpoint: String,
        attempts: Vec<Attempt>,
    },
    /// Every endpoint that could carry the message was skipped: its circuit is open.
    CircuitsOpen { attempts: Vec<Attempt> },
    /// No endpoint of the route can carry the message; `message` says why, per endpoint.
    Unsupported {
        message: String,
        attempts: Vec<Attempt>,
    },
}

/// Why no route could be chosen for a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// No `from` and no `routing.default_sender`.
    NoSender,
    /// `from` is not a configured sender.
    UnknownSender { number: String },
    /// `provider` is not in the sender's route.
    NotInRoute {
        provider: String,
        number: String,
        route: Vec<String>,
    },
}

/// The sender and the endpoints a message may go to, in failover order.
pub struct Route {
    pub sender: Sender,
    pub endpoints: Vec<Arc<Endpoint>>,
}

/// Picks the sender (`from`, else the default) and its route (narrowed by `provider`).
pub fn resolve_route(settings: &Settings, message: &OutboundMessage) -> Result<Route, RouteError> {
    let number = match &message.envelope.from {
        Some(from) => switchboard_core::phone::with_plus(from),
        None => settings
            .default_sender
            .clone()
            .ok_or(RouteError::NoSender)?,
    };
    let Some(sender) = settings.senders.get(&number) else {
        return Err(RouteError::UnknownSender { number });
    };
    let route = match &message.envelope.provider {
        None => sender.route.clone(),
        Some(provider) if sender.route.contains(provider) => vec![provider.clone()],
        Some(provider) => {
            return Err(RouteError::NotInRoute {
                provider: provider.clone(),
                number,
                route: sender.route.clone(),
            })
        }
    };
    Ok(Route {
        sender: sender.clone(),
        endpoints: settings.route_endpoints(&route),
    })
}

fn render_context<'a>(sender: &'a Sender, message_id: &'a str) -> RenderContext<'a> {
    RenderContext {
        message_id,
        sender_number: &sender.number,
        phone_number_id: sender.phone_number_id.as_deref(),
    }
}

/// What a dry run shows: each endpoint's exact request (secrets masked) or why it is skipped.
pub fn plan(
    route: &Route,
    message: &OutboundMessage,
    message_id: &str,
) -> Result<Value, SendFailure> {
    let context = render_context(&route.sender, message_id);
    let mut plan = Vec::new();
    let mut skipped = Vec::new();
    let mut attempts = Vec::new();
    for endpoint in &route.endpoints {
        match endpoint.adapter.render(message, &context) {
            Ok(request) => plan.push(plan_entry(&endpoint.id, &request)),
            Err(why) => {
                skipped.push(serde_json::json!({
                    "endpoint": endpoint.id,
                    "error": {"code": ErrorCode::UnsupportedByProvider, "message": why.message, "field": why.field},
                }));
                attempts.push(Attempt::unsupported(endpoint, &why));
            }
        }
    }
    if plan.is_empty() {
        return Err(all_unsupported(attempts));
    }
    Ok(serde_json::json!({"dry_run": true, "plan": plan, "skipped": skipped}))
}

fn plan_entry(endpoint: &str, request: &ProviderRequest) -> Value {
    serde_json::json!({
        "endpoint": endpoint,
        "method": request.method.as_str(),
        "url": request.url,
        "headers": request.masked_headers(),
        "body": request.body,
    })
}

fn all_unsupported(attempts: Vec<Attempt>) -> SendFailure {
    let reasons: Vec<String> = attempts
        .iter()
        .filter_map(|a| {
            Some(format!(
                "{}: {}",
                a.endpoint,
                a.error.as_ref()?.message.as_deref()?
            ))
        })
        .collect();
    let message = if reasons.is_empty() {
        "The route has no endpoint.".to_string()
    } else {
        format!(
            "No endpoint of the route can carry this message. {}",
            reasons.join("; ")
        )
    };
    SendFailure::Unsupported { message, attempts }
}

/// Whether a failure at one endpoint lets the next one be tried.
fn may_fail_over(failure: &ProviderFailure, resilience: &Resilience) -> bool {
    if failure.code == ErrorCode::ProviderTimeout {
        // The first endpoint may have delivered: only an explicit opt-in risks a double send.
        return resilience.retry_on_timeout;
    }
    resilience.failover_on.contains(&failure.code)
}

/// Sends along the route until an endpoint accepts or a failure is final. Endpoints whose
/// circuit is open are skipped without a call.
pub async fn send(
    sending: Sending<'_>,
    resilience: &Resilience,
    route: &Route,
    message: &OutboundMessage,
    message_id: &str,
) -> Result<SendResult, SendFailure> {
    let context = render_context(&route.sender, message_id);
    let thresholds = Thresholds {
        failure_threshold: resilience.failure_threshold,
        open_for: Duration::from_secs(resilience.open_secs),
    };
    let mut attempts = Vec::new();
    let mut last_failure: Option<(ProviderFailure, Arc<Endpoint>)> = None;
    for endpoint in &route.endpoints {
        let request = match endpoint.adapter.render(message, &context) {
            Ok(request) => request,
            Err(why) => {
                attempts.push(counted(
                    sending.metrics,
                    Attempt::unsupported(endpoint, &why),
                    None,
                ));
                continue;
            }
        };
        let permit = match sending.circuits.admit(&endpoint.id, thresholds) {
            Admission::Call(permit) => permit,
            Admission::Skip => {
                tracing::debug!(endpoint = %endpoint.id, "circuit open: skipped");
                attempts.push(counted(
                    sending.metrics,
                    Attempt::circuit_open(endpoint),
                    None,
                ));
                continue;
            }
        };
        let started = Instant::now();
        let result = sending
            .executor
            .exchange(&request, endpoint.timeout, |response| {
                endpoint.adapter.classify(response)
            })
            .await;
        let attempt = Attempt::finished(endpoint, started, &result);
        permit.record(attempt.error.as_ref());
        attempts.push(counted(sending.metrics, attempt, Some(started.elapsed())));
        match result {
            Ok(accepted) => {
                tracing::debug!(endpoint = %endpoint.id, message_id, "provider accepted");
                return Ok(SendResult {
                    id: message_id.to_string(),
                    status: "accepted",
                    provider: endpoint.provider.clone(),
                    endpoint: endpoint.id.clone(),
                    provider_message_id: accepted.provider_message_id,
                    provider_status: accepted.provider_status,
                    attempts,
                });
            }
            Err(failure) => {
                tracing::warn!(message_id = %message_id, endpoint = %endpoint.id, code = %failure.code, provider_status = ?failure.words.status, provider_code = ?failure.words.code, "provider attempt failed");
                let go_on = may_fail_over(&failure, resilience);
                last_failure = Some((failure, endpoint.clone()));
                if !go_on {
                    break;
                }
            }
        }
    }
    match last_failure {
        Some((failure, endpoint)) => Err(SendFailure::Provider {
            failure: Box::new(failure),
            provider: endpoint.provider.clone(),
            endpoint: endpoint.id.clone(),
            attempts,
        }),
        None if attempts
            .iter()
            .any(|a| a.reason == Some(SkipReason::CircuitOpen)) =>
        {
            Err(SendFailure::CircuitsOpen { attempts })
        }
        None => Err(all_unsupported(attempts)),
    }
}

/// Counts an attempt in the metrics and hands it back.
fn counted(metrics: &Metrics, attempt: Attempt, took: Option<Duration>) -> Attempt {
    metrics.attempt(
        &attempt.endpoint,
        attempt.outcome.as_str(),
        attempt.metric_code(),
        took,
    );
    attempt
}
