//! GET /mcp (the server-to-client stream) and DELETE /mcp (end the session).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::caller;
use super::error::GatewayError;
use super::headers::{self, LAST_EVENT_ID};
use super::relay;
use super::version;
use crate::gateway::Gateway;
use crate::upstream::Placement;

pub async fn open_stream(State(gateway): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let result = async {
        headers::check_origin(&headers, &gateway.config.allowed_origins)?;
        let agent = caller::identify(&gateway, &headers)?;
        headers::require_event_stream(&headers)?;
        let version = headers::protocol_version(&headers, version::ASSUMED_VERSION)?;
        let session = caller::session_of(&gateway, &headers, agent.as_ref())?;
        let placement = Placement {
            session_id: session.upstream_id.as_ref(),
            protocol_version: Some(version),
        };
        match gateway
            .upstream
            .open_stream(placement, headers.get(LAST_EVENT_ID))
            .await?
        {
            // Server-to-client requests on this stream are relayed as they are; the client's
            // answers come back by POST and are routed to the same upstream session.
            Ok(events) => Ok(relay::relay_session_stream(events, session.clone())),
            Err(StatusCode::METHOD_NOT_ALLOWED) => Err(GatewayError::GetNotSupported),
            Err(StatusCode::NOT_FOUND) => {
                gateway.sessions.end(&session.id);
                Err(GatewayError::UnknownSession)
            }
            Err(status) => Ok(status.into_response()),
        }
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

pub async fn end_session(State(gateway): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let result = async {
        headers::check_origin(&headers, &gateway.config.allowed_origins)?;
        let agent = caller::identify(&gateway, &headers)?;
        let version = headers::protocol_version(&headers, version::ASSUMED_VERSION)?;
        let session = caller::session_of(&gateway, &headers, agent.as_ref())?;
        gateway.sessions.end(&session.id);
        if session.upstream_id.is_some() {
            let placement = Placement {
                session_id: session.upstream_id.as_ref(),
                protocol_version: Some(version),
            };
            if let Err(err) = gateway.upstream.end_session(placement).await {
                // The gateway's session is over either way; the upstream's expires on its own.
                tracing::warn!(error = %err, "could not end the upstream session");
            }
        }
        Ok::<_, GatewayError>(StatusCode::NO_CONTENT.into_response())
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}
