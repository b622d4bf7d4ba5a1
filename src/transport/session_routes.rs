//! GET /mcp (the server-to-client stream) and DELETE /mcp (end the session).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::caller;
use super::error::GatewayError;
use super::headers;
use super::sse;
use crate::exchange::{self, StreamRefused};
use crate::gateway::Gateway;
use crate::protocol::headers::LAST_EVENT_ID;

pub async fn open_stream(State(gateway): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let result = async {
        headers::check_origin(&headers, &gateway.config.allowed_origins)?;
        let caller = caller::identify_caller(&gateway, &headers).await?;
        headers::require_event_stream(&headers)?;
        let version = headers::declared_version(&headers)?;
        let session = caller::session_of(&gateway, &headers, caller.agent.as_ref()).await?;
        // The stream carries what the session's requests set off: as narrow a token as POST may.
        caller::check_session_scopes(&gateway, &session, &caller)?;
        let version = version.unwrap_or(session.version);
        let last_event_id = headers.get(LAST_EVENT_ID);
        match exchange::open_stream(&gateway, &session, version, last_event_id).await {
            Ok(messages) => Ok(sse::messages_response(messages, None)),
            Err(StreamRefused::NotOffered) => Err(GatewayError::GetNotSupported),
            Err(StreamRefused::SessionGone) => Err(GatewayError::UnknownSession),
            Err(StreamRefused::Status(status)) => Ok(status.into_response()),
            Err(StreamRefused::Failed(err)) => Err(err.into()),
        }
    };
    result.await.unwrap_or_else(|err| {
        caller::audit_refusal(&gateway, &headers, &Method::GET, &err);
        err.into_response()
    })
}

pub async fn end_session(State(gateway): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let result = async {
        headers::check_origin(&headers, &gateway.config.allowed_origins)?;
        let caller = caller::identify_caller(&gateway, &headers).await?;
        let version = headers::declared_version(&headers)?;
        let session = caller::session_of(&gateway, &headers, caller.agent.as_ref()).await?;
        caller::check_session_scopes(&gateway, &session, &caller)?;
        let version = version.unwrap_or(session.version);
        exchange::end_session(&gateway, &session, version)
            .await
            .map_err(GatewayError::StateUnavailable)?;
        Ok::<_, GatewayError>(StatusCode::NO_CONTENT.into_response())
    };
    result.await.unwrap_or_else(|err| {
        caller::audit_refusal(&gateway, &headers, &Method::DELETE, &err);
        err.into_response()
    })
}
