//! POST /mcp: one JSON-RPC message (or a 2025-03-26 batch) from the client.
//!
//! Order matters: headers, then size, then strict parse, then session, then policy. The message
//! that policy evaluates is the one serialised and forwarded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::Value;

use super::caller;
use super::error::GatewayError;
use super::headers::{self, AnswerFormat, SESSION_ID};
use super::held;
use super::message::{self, Kind, Message};
use super::relay::{self, ToolsFilter};
use super::version;
use crate::gateway::{Gateway, Pass, Refusal, Verdict};
use crate::session::Session;
use crate::upstream::{Placement, Reply};

/// Takes the request whole: the `HeaderMap` extractor would copy every header.
pub async fn post(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    match accept(&gateway, &parts.headers, body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn accept(
    gateway: &Arc<Gateway>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, GatewayError> {
    headers::check_origin(headers, &gateway.config.allowed_origins)?;
    let agent = caller::identify(gateway, headers)?;
    headers::require_json_content(headers)?;
    let format = headers::answer_format(headers)?;
    let limits = &gateway.config.limits;
    let bytes = read_body(body, limits.max_body_bytes, limits.request_read_timeout).await?;
    let body = message::parse_body(&bytes)?;
    let version = headers::protocol_version(headers, version::ASSUMED_VERSION);
    match body {
        message::Body::Single(message) => {
            // Checked after parsing so the refusal carries the request's id: that is how a
            // 2026-07-28 `server/discover` probe learns to fall back to initialize.
            let version = match version {
                Ok(version) => version,
                Err(err) => return Ok(err.into_response_for(message.id())),
            };
            if message.method() == Some("initialize") {
                return initialize(gateway, agent, version, message, format).await;
            }
            let session = caller::session_of(gateway, headers, agent.as_ref())?;
            let _admitted = caller::admit(gateway, &session)?;
            Ok(exchange(gateway, &session, version, message, format).await)
        }
        message::Body::Batch(messages) => {
            let version = version?;
            let session = caller::session_of(gateway, headers, agent.as_ref())?;
            let _admitted = caller::admit(gateway, &session)?;
            if !version::allows_batches(version) {
                return Err(GatewayError::BatchNotAllowed(version.to_owned()));
            }
            Ok(batch(gateway, &session, version, messages).await)
        }
    }
}

async fn read_body(body: Body, limit: usize, within: Duration) -> Result<Bytes, GatewayError> {
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

/// Lifecycle spec: initialize opens a session. The upstream's session is opened with it and
/// kept behind the gateway's own id.
async fn initialize(
    gateway: &Arc<Gateway>,
    agent: Option<Arc<str>>,
    version: &str,
    message: Message,
    format: AnswerFormat,
) -> Result<Response, GatewayError> {
    // Checked before the upstream is asked too, so a full gateway opens no upstream session.
    if gateway.sessions.len() >= gateway.config.limits.max_sessions {
        return Err(GatewayError::TooManySessions(
            gateway.config.limits.max_sessions,
        ));
    }
    let placement = Placement {
        session_id: None,
        protocol_version: Some(version),
    };
    let reply = gateway.upstream.post(message.to_bytes(), placement).await;
    let reply = reply.map_err(GatewayError::Upstream);
    let upstream_id = match &reply {
        Ok(Reply::Json {
            status, session_id, ..
        }) if status.is_success() => session_id.clone(),
        Ok(Reply::Stream { session_id, .. }) => session_id.clone(),
        Ok(_) | Err(_) => return Ok(relay_reply(gateway, None, &message, reply, format).await),
    };
    let session = gateway
        .sessions
        .open(upstream_id, agent, declares_elicitation(&message))
        .map_err(|full| GatewayError::TooManySessions(full.0))?;
    let record = gateway.audit_record(&session, &message, "allow", Some("lifecycle"), None);
    log_audit_failure(gateway.record(&record));
    let mut response = relay_reply(gateway, None, &message, reply, format).await;
    let id = HeaderValue::from_str(&session.id).expect("hex session ids are valid header values");
    response.headers_mut().insert(SESSION_ID, id);
    Ok(response)
}

/// Lifecycle spec: the client lists its capabilities in initialize; elicitation is one.
fn declares_elicitation(initialize: &Message) -> bool {
    initialize.params().is_some_and(|params| {
        params
            .get("capabilities")
            .and_then(|c| c.get("elicitation"))
            .is_some_and(|e| !e.is_null())
    })
}

/// What one message came to: a response to send, or (in a batch) a JSON value to gather.
async fn exchange(
    gateway: &Arc<Gateway>,
    session: &Arc<Session>,
    version: &str,
    message: Message,
    format: AnswerFormat,
) -> Response {
    let started = Instant::now();
    if held::is_elicitation_answer(&message) {
        return held::take_elicitation_answer(gateway, session, &message);
    }
    match gateway.police(session, &message) {
        Verdict::Pass(pass) => {
            let reply = forward(gateway, session, version, &message, pass, started).await;
            relay_reply(gateway, Some(session), &message, reply, format).await
        }
        Verdict::Refuse(refusal) => refuse(gateway, session, &message, refusal, started),
        Verdict::Hold(hold) => held::hold(gateway, session, version, message, format, hold).await,
    }
}

pub(super) fn refuse(
    gateway: &Gateway,
    session: &Session,
    message: &Message,
    refusal: Refusal,
    started: Instant,
) -> Response {
    let mut record = gateway.audit_record(
        session,
        message,
        refusal.decision,
        refusal.rule.as_deref(),
        Some(&refusal.reason),
    );
    record.latency = Some(started.elapsed());
    log_audit_failure(gateway.record(&record));
    match message.kind {
        // Transports spec: input the server cannot accept gets an HTTP error status.
        Kind::Notification | Kind::Response => {
            (StatusCode::FORBIDDEN, axum::Json(refusal.answer)).into_response()
        }
        Kind::Request => (StatusCode::OK, axum::Json(refusal.answer)).into_response(),
    }
}

/// Sends a message the policy let through, audits the outcome, and gives the rate-limit units
/// back if the upstream failed to take it.
pub(super) async fn forward(
    gateway: &Gateway,
    session: &Session,
    version: &str,
    message: &Message,
    pass: Pass,
    started: Instant,
) -> Result<Reply, GatewayError> {
    let placement = Placement {
        session_id: session.upstream_id.as_ref(),
        protocol_version: Some(version),
    };
    let reply = gateway.upstream.post(message.to_bytes(), placement).await;
    let (status, decision) = match &reply {
        Ok(Reply::Json { status, .. } | Reply::Accepted { status }) => {
            (Some(status.as_u16()), "allow")
        }
        Ok(Reply::Stream { .. }) => (Some(200), "allow"),
        Err(_) => (None, "upstream_error"),
    };
    let mut record = gateway.audit_record(session, message, decision, pass.rule.as_deref(), None);
    record.upstream_status = status;
    record.latency = Some(started.elapsed());
    log_audit_failure(gateway.record(&record));
    if reply.is_err() || status.is_some_and(|s| s >= 500) {
        gateway.refund(pass);
    }
    if let Ok(Reply::Json { status, .. }) = &reply {
        if *status == StatusCode::NOT_FOUND {
            // The upstream forgot the session: so must we, so the client starts a new one.
            gateway.sessions.end(&session.id);
        }
    }
    reply.map_err(GatewayError::Upstream)
}

pub(super) async fn relay_reply(
    gateway: &Arc<Gateway>,
    session: Option<&Arc<Session>>,
    message: &Message,
    reply: Result<Reply, GatewayError>,
    format: AnswerFormat,
) -> Response {
    let id = message.id().cloned();
    let filter = (message.method() == Some("tools/list")).then(|| ToolsFilter {
        gateway: gateway.clone(),
        session: session.cloned(),
    });
    match reply {
        Err(err) => err.into_response_for(id.as_ref()),
        Ok(Reply::Accepted { status }) => status.into_response(),
        Ok(Reply::Json { status, body, .. }) => match &filter {
            Some(filter) if status.is_success() => match filter.apply(&body) {
                Ok(body) => relay::json_response(status, body),
                Err(err) => GatewayError::Upstream(err).into_response_for(id.as_ref()),
            },
            _ if body.is_empty() => status.into_response(),
            _ => relay::json_response(status, body),
        },
        Ok(Reply::Stream { events, .. }) => match (format, id) {
            (AnswerFormat::Stream, id) => relay::relay_stream(events, id, filter),
            (AnswerFormat::Json, None) => StatusCode::ACCEPTED.into_response(),
            (AnswerFormat::Json, Some(id)) => {
                let within = gateway.config.limits.upstream_timeout;
                match relay::collect_answer(events, &id, filter.as_ref(), within).await {
                    Ok(body) => relay::json_response(StatusCode::OK, body),
                    Err(err) => GatewayError::Upstream(err).into_response_for(Some(&id)),
                }
            }
        },
    }
}

/// 2025-03-26 batches: each element is policed and forwarded on its own, as if sent alone, and
/// the answers gathered into one array. Nothing in a batch skips the policy.
async fn batch(
    gateway: &Arc<Gateway>,
    session: &Arc<Session>,
    version: &str,
    messages: Vec<Message>,
) -> Response {
    let mut answers = Vec::new();
    for message in messages {
        if message.method() == Some("initialize") {
            let err = GatewayError::Message(message::MessageError::Invalid(
                "initialize must be sent alone, not in a batch".into(),
            ));
            answers.push(err.answer(message.id()));
            continue;
        }
        // Each element takes the single-message path, so a batch is policed exactly as the
        // same messages sent one by one; batches are rare (2025-03-26 only), so re-reading the
        // answer body here costs nothing that matters.
        let response = exchange(gateway, session, version, message, AnswerFormat::Json).await;
        let body =
            axum::body::to_bytes(response.into_body(), gateway.config.limits.max_body_bytes).await;
        if let Ok(body) = body {
            if let Ok(answer) = serde_json::from_slice::<Value>(&body) {
                answers.push(answer);
            }
        }
    }
    if answers.is_empty() {
        StatusCode::ACCEPTED.into_response()
    } else {
        axum::Json(Value::Array(answers)).into_response()
    }
}

pub(super) fn log_audit_failure(result: std::io::Result<()>) {
    if let Err(err) = result {
        tracing::error!(error = %err, "could not write the audit log");
    }
}
