//! The HTTP control API under `/_sim`, for sandbox users (no auth: the listener is loopback).
//!
//! - `GET /_sim/requests[?endpoint=kaleyra/in]` → JSON array of recorded requests
//! - `DELETE /_sim/requests` → 204
//! - `GET /_sim/behaviour` → `{endpoint: spec}` for every endpoint
//! - `PUT /_sim/behaviour/{endpoint}` with a spec → 200 `{"endpoint", "behaviour": spec}`
//! - `POST /_sim/reset` → 204
//!
//! A spec is `{"mode": "normal"|"error"|"down"|"slow"|"blackhole"|"raw", "code"?, "delay_ms"?,
//! "status"?, "body"?, "headers"?: {name: value}}`.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{Behaviour, Provider, Shared, ENDPOINTS};

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/_sim")
            .route("/requests", web::get().to(list_requests))
            .route("/requests", web::delete().to(clear_requests))
            .route("/behaviour", web::get().to(list_behaviours))
            // `.*` because endpoint names contain a slash ("kaleyra/in").
            .route("/behaviour/{endpoint:.*}", web::put().to(set_behaviour))
            .route("/reset", web::post().to(reset)),
    );
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    headers: Option<BTreeMap<String, String>>,
}

impl Spec {
    fn into_behaviour(self) -> Result<Behaviour, String> {
        let missing = |field: &str| format!("mode {:?} needs {field:?}", self.mode);
        Ok(match self.mode.as_str() {
            "normal" => Behaviour::Normal,
            "error" => Behaviour::Error(self.code.clone().ok_or_else(|| missing("code"))?),
            "down" => Behaviour::Down,
            "slow" => Behaviour::Slow(Duration::from_millis(
                self.delay_ms.ok_or_else(|| missing("delay_ms"))?,
            )),
            "blackhole" => Behaviour::BlackHole,
            "raw" => Behaviour::Raw {
                status: self.status.ok_or_else(|| missing("status"))?,
                headers: self.headers.unwrap_or_default().into_iter().collect(),
                body: self.body.unwrap_or_default(),
            },
            other => {
                return Err(format!(
                    "unknown mode {other:?}; one of normal, error, down, slow, blackhole, raw"
                ))
            }
        })
    }

    fn of(behaviour: &Behaviour) -> Spec {
        let mode = |m: &str| Spec {
            mode: m.into(),
            ..Spec::default()
        };
        match behaviour {
            Behaviour::Normal => mode("normal"),
            Behaviour::Error(code) => Spec {
                code: Some(code.clone()),
                ..mode("error")
            },
            Behaviour::Down => mode("down"),
            Behaviour::Slow(delay) => Spec {
                delay_ms: Some(delay.as_millis().try_into().unwrap_or(u64::MAX)),
                ..mode("slow")
            },
            Behaviour::BlackHole => mode("blackhole"),
            Behaviour::Raw {
                status,
                headers,
                body,
            } => Spec {
                status: Some(*status),
                headers: Some(headers.iter().cloned().collect()),
                body: Some(body.clone()),
                ..mode("raw")
            },
        }
    }
}

#[derive(Deserialize)]
struct Filter {
    endpoint: Option<String>,
}

async fn list_requests(shared: web::Data<Shared>, filter: web::Query<Filter>) -> HttpResponse {
    if let Some(endpoint) = &filter.endpoint {
        if Provider::of(endpoint).is_none() {
            return unknown_endpoint(endpoint);
        }
    }
    HttpResponse::Ok().json(shared.requests(filter.endpoint.as_deref()))
}

async fn clear_requests(shared: web::Data<Shared>) -> HttpResponse {
    shared.clear_requests();
    HttpResponse::NoContent().finish()
}

async fn list_behaviours(shared: web::Data<Shared>) -> HttpResponse {
    let specs: BTreeMap<String, Spec> = shared
        .behaviours()
        .iter()
        .map(|(endpoint, behaviour)| (endpoint.clone(), Spec::of(behaviour)))
        .collect();
    HttpResponse::Ok().json(specs)
}

async fn set_behaviour(
    shared: web::Data<Shared>,
    endpoint: web::Path<String>,
    body: Bytes,
) -> HttpResponse {
    let endpoint = endpoint.into_inner();
    if Provider::of(&endpoint).is_none() {
        return unknown_endpoint(&endpoint);
    }
    let behaviour = match serde_json::from_slice::<Spec>(&body)
        .map_err(|e| format!("invalid behaviour: {e}"))
        .and_then(Spec::into_behaviour)
    {
        Ok(behaviour) => behaviour,
        Err(why) => return bad_request(&why),
    };
    let spec = Spec::of(&behaviour);
    match shared.set_behaviour(&endpoint, behaviour) {
        Ok(()) => HttpResponse::Ok().json(json!({"endpoint": endpoint, "behaviour": spec})),
        Err(why) => bad_request(&why),
    }
}

async fn reset(shared: web::Data<Shared>) -> HttpResponse {
    shared.reset();
    HttpResponse::NoContent().finish()
}

fn unknown_endpoint(endpoint: &str) -> HttpResponse {
    HttpResponse::NotFound().json(json!({
        "error": format!("unknown endpoint {endpoint:?}; known: {}", ENDPOINTS.join(", "))
    }))
}

fn bad_request(why: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({ "error": why }))
}
