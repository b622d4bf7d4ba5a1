//! The HTTP edge: MCP's streamable HTTP transport on `/mcp` (2026-07-28 requests in `modern.rs`), the legacy HTTP+SSE transport on
//! `/sse` (`legacy.rs`), plus health and readiness probes.
//!
//! Reads what HTTP carries (headers, bodies, sessions), hands each message to the exchange and
//! renders its outcome (`render.rs`); it polices and forwards nothing itself.

mod audited;
mod caller;
pub mod error;
mod headers;
mod legacy;
mod modern;
mod post;
mod render;
mod session_routes;
pub mod sse;

use futures::future::Either;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{Method, Request, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use hyper::body::Incoming;
use tower::ServiceExt;

use crate::audit::{AuditBarrier, AuditLog};
use crate::gateway::Gateway;

/// Where agents talk MCP.
const MCP_PATH: &str = "/mcp";

const HEALTH_PATH: &str = "/healthz";
const READY_PATH: &str = "/readyz";
const METRICS_PATH: &str = "/metrics";
/// What probes and scrapers ask: no agent's answer among them.
const PROBE_PATHS: [&str; 3] = [HEALTH_PATH, READY_PATH, METRICS_PATH];

/// Hands each request to its handler. `POST /mcp`, which carries every call, goes to it
/// directly; the rest through axum's router. Routing the POSTs too cost about 5k instructions a
/// call (matched-path bookkeeping, boxed futures and bodies), a sixth of what the gateway adds
/// to a call (bench/README.md).
///
/// Every answer leaves after the audit records queued before it are written (`audited.rs`).
#[derive(Clone)]
pub struct Dispatch {
    /// `None` on a listener that serves no MCP (the admin API on its own address).
    gateway: Option<Arc<Gateway>>,
    router: Router,
    /// `None` without `--audit`.
    audit: Option<AuditBarrier>,
}

impl Dispatch {
    /// The main listener: MCP, health and readiness, and `beside` (the admin API, unless it
    /// has a listener of its own).
    pub fn gateway(gateway: Arc<Gateway>, beside: Option<Router>) -> Self {
        let router = router(gateway.clone());
        Self {
            router: match beside {
                Some(beside) => router.merge(beside),
                None => router,
            },
            audit: gateway.audit.as_ref().map(AuditLog::barrier),
            gateway: Some(gateway),
        }
    }

    /// A listener for `router` alone (whose answers wait for the records they queued in `audit`).
    pub fn router(router: Router, audit: Option<&AuditLog>) -> Self {
        Self {
            gateway: None,
            router,
            audit: audit.map(AuditLog::barrier),
        }
    }

    /// Answers `request`, which came from `peer`.
    pub async fn serve(mut self, request: Request<Incoming>, peer: SocketAddr) -> Response {
        // Probes answer for the process, not for a decision: they never wait for the audit
        // (a stalled audit disk holds the answers to agents, not the liveness probe).
        let audit = self
            .audit
            .take()
            .filter(|_| !PROBE_PATHS.contains(&request.uri().path()));
        // One route future in an `Either`: awaited in two arms, it would be held twice (rustc
        // does not overlap them), and every answer copies this future several times.
        let route = self.route(request, peer);
        let handled = match &audit {
            Some(_) => Either::Left(crate::audit::answering(route)),
            None => Either::Right(route),
        };
        let response = handled.await;
        match &audit {
            Some(barrier) => audited::after_records(barrier, response).await,
            None => response,
        }
    }

    async fn route(self, request: Request<Incoming>, peer: SocketAddr) -> Response {
        let mut request = request.map(Body::new);
        match self.gateway {
            Some(gateway)
                if request.method() == Method::POST && request.uri().path() == MCP_PATH =>
            {
                let started = gateway.metrics.is_some().then(Instant::now);
                let response = post::answer(&gateway, request, Some(peer.ip())).await;
                if let (Some(metrics), Some(started)) = (&gateway.metrics, started) {
                    metrics.request(started.elapsed());
                }
                response
            }
            _ => {
                // What axum's `ConnectInfo` extractor reads. Only here: inserting an extension
                // allocates its map, ~450 instructions a call on the POST path.
                request.extensions_mut().insert(ConnectInfo(peer));
                match self.router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            }
        }
    }
}

fn router(gateway: Arc<Gateway>) -> Router {
    // `Dispatch` answers POST before asking the router; the route keeps it so that a 405 for
    // another method names all three.
    Router::new()
        .route(
            MCP_PATH,
            post(post::post)
                .get(session_routes::open_stream)
                .delete(session_routes::end_session),
        )
        .route(HEALTH_PATH, get(|| async { "ok\n" }))
        .route(READY_PATH, get(ready))
        .with_state(gateway.clone())
        .merge(
            gateway
                .oauth
                .clone()
                .map(crate::oauth::metadata::router)
                .unwrap_or_default(),
        )
        .merge(
            Router::new()
                .route(legacy::SSE_PATH, get(legacy::open))
                .route(legacy::MESSAGE_PATH, post(legacy::message))
                .with_state(legacy::Streams::new(gateway)),
        )
}

/// Ready while the upstream answers MCP and the gateway is not stopping: an ingress stops
/// routing to a replica that cannot forward anything, or is about to close its listener.
async fn ready(State(gateway): State<Arc<Gateway>>) -> (StatusCode, String) {
    let ready = match gateway.readiness.check(&gateway.upstream).await {
        Ok(()) => gateway
            .state
            .check()
            .await
            .map_err(crate::gateway::NotReady::State),
        Err(not_ready) => Err(not_ready),
    };
    match ready {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(not_ready) => (StatusCode::SERVICE_UNAVAILABLE, format!("{not_ready}\n")),
    }
}

/// `GET /metrics`, on the metrics listener and the admin one; `None` when metrics are off.
pub fn metrics_router(gateway: Arc<Gateway>) -> Option<Router> {
    gateway.metrics.as_ref()?;
    Some(
        Router::new()
            .route(METRICS_PATH, get(scrape))
            .with_state(gateway),
    )
}

async fn scrape(State(gateway): State<Arc<Gateway>>) -> Response {
    use axum::response::IntoResponse;
    let Some(metrics) = &gateway.metrics else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let gauges = crate::metrics::Gauges {
        sessions: gateway.sessions.len(),
        // The fleet's queue with a shared store; 0 while it cannot be read.
        approvals_pending: gateway
            .approvals
            .list()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|a| a.status == crate::approval::Status::Pending)
            .count(),
        in_flight: gateway.in_flight.total(),
        worker_connections: gateway.connections.per_worker(),
    };
    let text = metrics.encode(gauges);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        text,
    )
        .into_response()
}
