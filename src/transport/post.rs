//! POST /mcp: one JSON-RPC message (or a 2025-03-26 batch) from the client.
//!
//! Order matters: headers, then size, then strict parse, then session; then the exchange polices
//! and forwards, and its outcome is rendered for this client.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::Value;

use super::caller;
use super::error::GatewayError;
use super::headers;
use super::render;
use crate::exchange::{self, Opened};
use crate::gateway::Gateway;
use crate::protocol::headers::SESSION_ID;
use crate::protocol::{self, method, version, Message, MessageError};
use crate::session::Session;

/// Takes the request whole: the `HeaderMap` extractor would copy every header.
pub async fn post(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    answer(&gateway, request, address).await
}

/// Answers a POST that came from `address`.
pub async fn answer(gateway: &Arc<Gateway>, request: Request, address: Option<IpAddr>) -> Response {
    let (parts, body) = request.into_parts();
    match accept(gateway, &parts.headers, address, body).await {
        Ok(response) => response,
        Err(err) => {
            caller::audit_refusal(gateway, &parts.headers, &parts.method, &err);
            err.into_response()
        }
    }
}

async fn accept(
    gateway: &Arc<Gateway>,
    headers: &HeaderMap,
    address: Option<IpAddr>,
    body: Body,
) -> Result<Response, GatewayError> {
    headers::check_origin(headers, &gateway.config.allowed_origins)?;
    let caller = caller::identify_caller(gateway, headers).await?;
    let agent = caller.agent.clone();
    headers::require_json_content(headers)?;
    let format = headers::answer_format(headers)?;
    let limits = &gateway.config.limits;
    let bytes = read_body(body, limits.max_body_bytes, limits.request_read_timeout).await?;
    let body = protocol::parse_body(&bytes)?;
    let version = headers::declared_version(headers);
    let within = limits.upstream_timeout;
    match body {
        protocol::Body::Single(message) => {
            if protocol::modern::is_requested(headers, &message) {
                // Boxed, as initialize and batches are: off the call path, and their futures
                // would otherwise size (and be copied with) every call's.
                let modern =
                    super::modern::accept(gateway, headers, caller, address, format, message);
                return Box::pin(modern).await;
            }
            // Checked after parsing so the refusal carries the request's id: that is how a
            // 2026-07-28 `server/discover` probe learns to fall back to initialize.
            let version = match version {
                Ok(version) => version,
                Err(err) => return Ok(err.into_response_for(message.id())),
            };
            let id = message.id().cloned();
            if message.is(method::INITIALIZE) {
                let version = version.unwrap_or(version::ASSUMED);
                let opening =
                    exchange::initialize(gateway, agent, caller.scopes, address, version, message);
                let Opened { outcome, session } = Box::pin(opening).await;
                let mut response = render::response(outcome, format, id, within).await;
                if let Some(session) = session {
                    let value = HeaderValue::from_str(&session.id)
                        .expect("base64url session tokens are valid header values");
                    response.headers_mut().insert(SESSION_ID, value);
                }
                return Ok(response);
            }
            let session = caller::session_of(gateway, headers, agent.as_ref()).await?;
            caller::check_session_scopes(gateway, &session, &caller)?;
            let _admitted = caller::admit(gateway, &session)?;
            // A request without the header speaks the session's negotiated revision.
            let version = version.unwrap_or(session.version);
            let outcome = exchange::exchange(gateway, &session, version, message).await;
            Ok(render::response(outcome, format, id, within).await)
        }
        protocol::Body::Batch(messages) => {
            let version = version?;
            let session = caller::session_of(gateway, headers, agent.as_ref()).await?;
            caller::check_session_scopes(gateway, &session, &caller)?;
            let _admitted = caller::admit(gateway, &session)?;
            let version = version.unwrap_or(session.version);
            if !version::allows_batches(version) {
                return Err(GatewayError::BatchNotAllowed(version.to_owned()));
            }
            Ok(Box::pin(batch(gateway, &session, version, messages, within)).await)
        }
    }
}

pub(super) async fn read_body(
    body: Body,
    limit: usize,
    within: Duration,
) -> Result<Bytes, GatewayError> {
    tokio::time::timeout(within, collect(body, limit))
        .await
        .map_err(|_| GatewayError::BodyTimeout(within.as_secs()))?
}

/// What is read past `--max-body-bytes` and dropped before the 413 goes out.
const DISCARDED_BYTES: usize = 64 * 1024 * 1024;

/// The body, whole, up to `limit` bytes. Past it the rest is read and dropped (up to
/// [`DISCARDED_BYTES`], and within the read timeout) before refusing: a client still sending when
/// the connection closed on it would lose the 413 to a reset and learn nothing.
async fn collect(mut body: Body, limit: usize) -> Result<Bytes, GatewayError> {
    let mut chunks: Vec<Bytes> = Vec::with_capacity(1);
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| GatewayError::BodyRead(err.to_string()))?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(chunk.len());
        if total <= limit {
            chunks.push(chunk);
        } else if total > limit.saturating_add(DISCARDED_BYTES) {
            break;
        } else {
            chunks.clear();
        }
    }
    if total > limit {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    Ok(match chunks.len() {
        1 => chunks.swap_remove(0),
        _ => chunks.concat().into(),
    })
}

/// 2025-03-26 batches: each element goes through the exchange on its own, exactly as if sent
/// alone, and the answers are gathered into one array. Nothing in a batch skips the policy.
async fn batch(
    gateway: &Arc<Gateway>,
    session: &Arc<Session>,
    version: &'static str,
    messages: Vec<Message>,
    within: Duration,
) -> Response {
    let mut answers = Vec::new();
    for message in messages {
        let id = message.id().cloned();
        let body = if message.is(method::INITIALIZE) {
            let err = GatewayError::Message(MessageError::Invalid(
                "initialize must be sent alone, not in a batch".into(),
            ));
            Some(err.answer(id.as_ref()).to_string().into())
        } else {
            let outcome = exchange::exchange(gateway, session, version, message).await;
            render::settle(outcome, id.as_ref(), within).await.body
        };
        if let Some(answer) = body.and_then(|body| serde_json::from_slice::<Value>(&body).ok()) {
            answers.push(answer);
        }
    }
    if answers.is_empty() {
        StatusCode::ACCEPTED.into_response()
    } else {
        axum::Json(Value::Array(answers)).into_response()
    }
}
