//! POST /mcp at MCP 2026-07-28: one request, no session. Its envelope and routing headers are
//! checked against its body first (`protocol::modern::check`): a mismatch is refused here,
//! before policy, and nothing reaches the upstream. The exchange then carries it
//! (`exchange::modern`) and its outcome is rendered like any other.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::HeaderMap;
use axum::response::Response;

use super::caller::Caller;
use super::error::GatewayError;
use super::headers::AnswerFormat;
use super::render;
use crate::exchange;
use crate::gateway::Gateway;
use crate::protocol::{modern, Kind, Message, MessageError};

pub async fn accept(
    gateway: &Arc<Gateway>,
    headers: &HeaderMap,
    caller: Caller,
    address: Option<IpAddr>,
    format: AnswerFormat,
    message: Message,
) -> Result<Response, GatewayError> {
    let id = message.id().cloned();
    // 2026-07-28 over HTTP has no client notifications or responses: cancelling is closing the
    // request's stream, and the server asks for input in a result, not a request.
    if message.kind != Kind::Request {
        let refused = MessageError::Invalid(format!(
            "MCP {} takes only requests over HTTP; this message has no id or no method",
            modern::VERSION
        ));
        return Ok(GatewayError::from(refused).into_response_for(id.as_ref()));
    }
    let params = message.params();
    let method = message.method().unwrap_or_default();
    let envelope = match modern::check(headers, method, params.as_ref()) {
        Ok(envelope) => envelope,
        Err(refused) => return Ok(GatewayError::from(refused).into_response_for(id.as_ref())),
    };
    // Transports spec 2026-07-28: a listen request's answer is always a stream (the Python
    // SDK's server answers 406 too); collected into JSON it would never end.
    if method == modern::SUBSCRIPTIONS_LISTEN && format != AnswerFormat::Stream {
        return Ok(GatewayError::ListenNeedsStream.into_response_for(id.as_ref()));
    }
    let within = gateway.config.limits.upstream_timeout;
    // No session carries the scopes: this request's token is the one its rules judge by.
    let outcome = exchange::modern(
        gateway,
        caller.agent,
        caller.scopes,
        address,
        &envelope,
        message,
    )
    .await;
    Ok(render::response(outcome, format, id, within).await)
}
