//! The streamable HTTP edge: POST, GET and DELETE on `/mcp`, headers in, status and content
//! type out (transports, revisions 2025-03-26 to 2025-11-25).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::Value;

use super::error::SimulatorError;
use super::message::{Envelope, Incoming, Params};
use super::rpc::{self, Reply, SUPPORTED_VERSIONS};
use super::sessions::Session;
use super::{sse, Shared, Simulator};

const SESSION_HEADER: HeaderName = HeaderName::from_static("mcp-session-id");
const PROTOCOL_VERSION_HEADER: HeaderName = HeaderName::from_static("mcp-protocol-version");

pub fn router(simulator: Simulator) -> Router {
    Router::new()
        .route(
            "/mcp",
            post(post_message).get(get_stream).delete(delete_session),
        )
        .with_state(simulator)
}

/// Bodies above this are refused unread (the largest real MCP request is a few kilobytes).
const MAX_BODY: usize = 4 << 20;

/// One JSON-RPC message in, one answer out: JSON, SSE, or 202 for what needs no reply.
async fn post_message(State(simulator): State<Simulator>, request: Request) -> Response {
    let shared = &simulator.shared;
    // The request is split rather than extracted as a HeaderMap, which would clone the headers.
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    if !origin_is_local(headers) {
        return SimulatorError::ForbiddenOrigin.into_response();
    }
    if !content_is_json(headers) {
        return SimulatorError::UnsupportedMediaType.into_response();
    }
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return SimulatorError::InvalidRequest("unreadable or oversized body").into_response();
    };
    shared.record(&body);
    let envelope = match Envelope::parse(&body) {
        Ok(envelope) => envelope,
        Err(error) => return error.into_response(),
    };
    let incoming = match envelope.classify() {
        Ok(incoming) => incoming,
        Err(error) => return error.into_response_for(envelope.id()),
    };
    let accepts_sse = accepts_event_stream(headers);
    let (id, method, params) = match incoming {
        Incoming::Request { id, method, params } => (id, Some(method), params),
        Incoming::NoReply => (&Value::Null, None, &Params::default()),
    };
    if method == Some("initialize") {
        return initialize(shared, id, params, accepts_sse);
    }
    let session = match established_session(shared, headers) {
        Ok(session) => session,
        Err(error) => return error.into_response_for(id),
    };
    let Some(method) = method else {
        return StatusCode::ACCEPTED.into_response();
    };
    match rpc::respond(shared, &session, id, method, params) {
        Ok(reply) => render(shared, &session, reply, accepts_sse),
        // JSON-RPC errors are responses like any other: same status, same content type.
        Err(error) if error.status() == StatusCode::OK => render(
            shared,
            &session,
            Reply::Message(error.to_message(id)),
            accepts_sse,
        ),
        Err(error) => error.into_response_for(id),
    }
}

/// Lifecycle: `initialize` opens a session, named in the response's `Mcp-Session-Id`.
fn initialize(shared: &Shared, id: &Value, params: &Params<'_>, accepts_sse: bool) -> Response {
    let result = rpc::initialize(params);
    let session = shared.sessions.open();
    let message = rpc::result_message(id, &serde_json::to_vec(&result).unwrap_or_default());
    let mut response = render(shared, &session, Reply::Message(message), accepts_sse);
    if let Ok(value) = HeaderValue::try_from(session.header_value()) {
        response.headers_mut().insert(SESSION_HEADER, value);
    }
    response
}

/// The session a non-initialize message belongs to, and a protocol version header we speak.
fn established_session(
    shared: &Shared,
    headers: &HeaderMap,
) -> Result<Arc<Session>, SimulatorError> {
    let name = headers
        .get(SESSION_HEADER)
        .ok_or(SimulatorError::MissingSession)?;
    let session = name
        .to_str()
        .ok()
        .and_then(|name| shared.sessions.get(name))
        .ok_or(SimulatorError::UnknownSession)?;
    if let Some(version) = headers.get(PROTOCOL_VERSION_HEADER) {
        let version = version.to_str().unwrap_or_default();
        if !SUPPORTED_VERSIONS.contains(&version) {
            return Err(SimulatorError::UnsupportedProtocolVersion(
                version.to_owned(),
            ));
        }
    }
    Ok(session)
}

fn render(shared: &Shared, session: &Arc<Session>, reply: Reply, accepts_sse: bool) -> Response {
    match reply {
        Reply::Message(message) if accepts_sse && shared.options.always_sse => {
            event_stream(sse::single(session, message))
        }
        Reply::Message(message) => json(message),
        Reply::Progressive { token, response } if accepts_sse => event_stream(sse::with_progress(
            session,
            token,
            response,
            shared.options.progress_step,
        )),
        // A client that cannot read SSE gets the answer without progress.
        Reply::Progressive { response, .. } => json(response),
    }
}

fn json(message: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], message).into_response()
}

fn event_stream(body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// Transports: a server without a standalone stream answers GET with 405.
async fn get_stream(headers: HeaderMap) -> Response {
    if !origin_is_local(&headers) {
        return SimulatorError::ForbiddenOrigin.into_response();
    }
    SimulatorError::NoStandaloneStream.into_response()
}

/// Transports: DELETE with the session header ends the session (and its streams).
async fn delete_session(State(simulator): State<Simulator>, headers: HeaderMap) -> Response {
    if !origin_is_local(&headers) {
        return SimulatorError::ForbiddenOrigin.into_response();
    }
    let Some(name) = headers.get(SESSION_HEADER) else {
        return SimulatorError::MissingSession.into_response();
    };
    match name
        .to_str()
        .map(|name| simulator.shared.sessions.close(name))
    {
        Ok(true) => StatusCode::OK.into_response(),
        _ => SimulatorError::UnknownSession.into_response(),
    }
}

fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT).iter().any(|value| {
        value
            .as_bytes()
            .windows(17)
            .any(|w| w.eq_ignore_ascii_case(b"text/event-stream"))
    })
}

fn content_is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// Transports security warning: servers MUST validate Origin (DNS rebinding). Requests without
/// one (any non-browser client) pass; browsers are let in only from this machine.
fn origin_is_local(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let origin = origin.to_str().unwrap_or_default();
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = if rest.starts_with('[') {
        rest.split_inclusive(']').next().unwrap_or_default()
    } else {
        rest.split([':', '/']).next().unwrap_or_default()
    };
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (name.clone(), HeaderValue::from_str(value).unwrap()))
            .collect()
    }

    #[test]
    fn accept_and_content_type_are_read_leniently() {
        assert!(accepts_event_stream(&headers(&[(
            header::ACCEPT,
            "application/json, Text/Event-Stream"
        )])));
        assert!(!accepts_event_stream(&headers(&[(
            header::ACCEPT,
            "application/json"
        )])));
        assert!(content_is_json(&headers(&[(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8"
        )])));
        assert!(!content_is_json(&headers(&[(
            header::CONTENT_TYPE,
            "text/plain"
        )])));
        assert!(!content_is_json(&HeaderMap::new()));
    }

    #[test]
    fn only_local_origins_pass() {
        assert!(origin_is_local(&HeaderMap::new()));
        for local in [
            "http://localhost:6274",
            "http://127.0.0.1",
            "https://[::1]:8080/x",
        ] {
            assert!(
                origin_is_local(&headers(&[(header::ORIGIN, local)])),
                "{local}"
            );
        }
        for remote in [
            "https://evil.example",
            "http://localhost.evil.example",
            "null",
            "http://[::2]",
        ] {
            assert!(
                !origin_is_local(&headers(&[(header::ORIGIN, remote)])),
                "{remote}"
            );
        }
    }
}
