//! The HTTP edge: MCP's streamable HTTP transport on `/mcp`, plus health and readiness probes.

mod caller;
pub mod error;
pub mod headers;
mod held;
pub mod message;
mod post;
pub mod relay;
mod session_routes;
pub mod version;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;

use crate::gateway::Gateway;

pub fn router(gateway: Arc<Gateway>) -> Router {
    let admin = match gateway.config.approvals.admin_listen {
        None => crate::admin::router(gateway.clone()),
        Some(_) => None,
    };
    let mcp = Router::new()
        .route(
            "/mcp",
            post(post::post)
                .get(session_routes::open_stream)
                .delete(session_routes::end_session),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(gateway);
    match admin {
        Some(admin) => mcp.merge(admin),
        None => mcp,
    }
}

/// Ready while the upstream answers HTTP: an ingress stops routing to a replica that cannot
/// forward anything.
async fn ready(State(gateway): State<Arc<Gateway>>) -> (StatusCode, String) {
    if gateway.upstream.answers(Duration::from_secs(2)).await {
        (StatusCode::OK, "ready\n".into())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("upstream {} does not answer\n", gateway.upstream.url()),
        )
    }
}
