//! The 2024-11-05 HTTP+SSE transport, for older clients and bridges (`mcp-remote`, the SDKs'
//! `sse_client`): `GET /sse` opens a stream whose first event names the message endpoint, and
//! each `POST /message?sessionId=…` is answered 202 while its answer comes on that stream.
//!
//! The messages go through the same exchange as streamable HTTP, so they are policed, audited
//! and forwarded alike; the gateway's session behind a stream is bound to the agent that opened
//! the stream, as `Mcp-Session-Id` is, and keeps the OAuth scopes of the token that opened it:
//! rules requiring scopes judge it by them, and every message must come with a token granting
//! at least them.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use dashmap::DashMap;
use futures::StreamExt;
use rand::RngCore;
use serde_json::Value;
use tokio::sync::mpsc;

use super::caller;
use super::error::GatewayError;
use super::headers;
use super::post::read_body;
use super::render;
use super::sse;
use crate::exchange::{self, Messages, Opened, Outcome};
use crate::gateway::Gateway;
use crate::protocol::{self, answer, code, method, version, Message, SseEvent};
use crate::session::Session;

pub const SSE_PATH: &str = "/sse";
pub const MESSAGE_PATH: &str = "/message";

/// Messages waiting for a slow client before the exchanges that produce them wait too.
const BACKLOG: usize = 64;

/// The open legacy streams. One map for every worker: a client's POST may reach another worker
/// than its stream.
#[derive(Clone)]
pub struct Streams {
    gateway: Arc<Gateway>,
    open: Arc<DashMap<Arc<str>, Arc<Stream>>>,
}

/// One client's stream and what its messages are exchanged in.
struct Stream {
    agent: Option<Arc<str>>,
    /// The scopes of the access token that opened the stream (`None` for keys and anonymous
    /// callers): the session initialize opens on it is judged by them.
    scopes: Option<Arc<[String]>>,
    /// The client's address when it opened the stream (anonymous limits may count by it).
    address: Option<IpAddr>,
    events: mpsc::Sender<SseEvent>,
    /// The gateway's session, once initialize opened one, and the revision it negotiated.
    session: Mutex<Option<(Arc<Session>, &'static str)>>,
}

#[derive(serde::Deserialize)]
pub struct Endpoint {
    #[serde(rename = "sessionId")]
    session_id: String,
}

impl Streams {
    pub fn new(gateway: Arc<Gateway>) -> Self {
        Self {
            gateway,
            open: Arc::default(),
        }
    }
}

/// `GET /sse`: a stream that first names the endpoint for this client's messages.
pub async fn open(State(streams): State<Streams>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let headers = parts.headers;
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>();
    let gateway = streams.gateway.clone();
    let opened = async {
        headers::check_origin(&headers, &gateway.config.allowed_origins)?;
        let caller = caller::identify_caller(&gateway, &headers).await?;
        headers::require_event_stream(&headers)?;
        let max = gateway.config.limits.max_sessions;
        if streams.open.len() >= max {
            return Err(GatewayError::from(
                exchange::ExchangeError::TooManySessions(max),
            ));
        }
        Ok(caller)
    }
    .await;
    let caller = match opened {
        Ok(caller) => caller,
        Err(err) => {
            caller::audit_refusal(&gateway, &headers, &parts.method, &err);
            return err.into_response();
        }
    };
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let id: Arc<str> = hex::encode(bytes).into();
    let (events, received) = mpsc::channel(BACKLOG);
    let stream = Arc::new(Stream {
        agent: caller.agent,
        scopes: caller.scopes,
        address: peer.map(|ConnectInfo(peer)| peer.ip()),
        events,
        session: Mutex::default(),
    });
    streams.open.insert(id.clone(), stream);
    let endpoint = SseEvent {
        event: Some("endpoint".into()),
        data: Some(format!("{MESSAGE_PATH}?sessionId={id}").into()),
        ..SseEvent::default()
    };
    let closed = Closed { streams, id };
    let messages = futures::stream::once(async { endpoint })
        .chain(tokio_stream::wrappers::ReceiverStream::new(received))
        .map(move |event| {
            let _open_while_read = &closed;
            Ok(event)
        });
    sse::messages_response(Box::pin(messages), None)
}

/// Ends the gateway's session (and the upstream's) when its client's stream goes away.
struct Closed {
    streams: Streams,
    id: Arc<str>,
}

impl Drop for Closed {
    fn drop(&mut self) {
        let Some((_, stream)) = self.streams.open.remove(&self.id) else {
            return;
        };
        let taken = stream
            .session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let runtime = tokio::runtime::Handle::try_current();
        if let (Some((session, version)), Ok(runtime)) = (taken, runtime) {
            let gateway = self.streams.gateway.clone();
            runtime.spawn(async move {
                if let Err(err) = exchange::end_session(&gateway, &session, version).await {
                    tracing::warn!(error = %err, "could not revoke an ended legacy session");
                }
            });
        }
    }
}

/// `POST /message?sessionId=…`: 202 at once; the answer comes on the client's stream.
pub async fn message(
    State(streams): State<Streams>,
    Query(endpoint): Query<Endpoint>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    match accept(&streams, &endpoint.session_id, &parts.headers, body).await {
        Ok(()) => (StatusCode::ACCEPTED, "Accepted").into_response(),
        Err(err) => {
            caller::audit_refusal(&streams.gateway, &parts.headers, &parts.method, &err);
            err.into_response()
        }
    }
}

async fn accept(
    streams: &Streams,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<(), GatewayError> {
    let gateway = &streams.gateway;
    headers::check_origin(headers, &gateway.config.allowed_origins)?;
    let caller = caller::identify_caller(gateway, headers).await?;
    let stream = streams
        .open
        .get(id)
        .map(|entry| entry.value().clone())
        .filter(|stream| stream.agent == caller.agent)
        .ok_or(GatewayError::UnknownSession)?;
    caller::check_scopes(gateway, stream.scopes.as_deref(), &caller)?;
    headers::require_json_content(headers)?;
    let limits = &gateway.config.limits;
    let bytes = read_body(body, limits.max_body_bytes, limits.request_read_timeout).await?;
    let messages = match protocol::parse_body(&bytes)? {
        protocol::Body::Single(message) => vec![message],
        protocol::Body::Batch(messages) => messages,
    };
    let gateway = gateway.clone();
    tokio::spawn(async move {
        for message in messages {
            exchange_onto(&gateway, &stream, message).await;
        }
    });
    Ok(())
}

/// Exchanges one message and sends what it came to down the client's stream.
async fn exchange_onto(gateway: &Arc<Gateway>, stream: &Arc<Stream>, message: Message) {
    let id = message.id().cloned();
    let within = gateway.config.limits.upstream_timeout;
    if message.is(method::INITIALIZE) {
        let Opened { outcome, session } = exchange::initialize(
            gateway,
            stream.agent.clone(),
            stream.scopes.clone(),
            stream.address,
            version::ASSUMED,
            message,
        )
        .await;
        let answer = render::settle(outcome, id.as_ref(), within).await;
        let negotiated = answer.body.as_deref().and_then(negotiated_version);
        if let Some(session) = session {
            let version = negotiated.unwrap_or(version::ASSUMED);
            *stream.session.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((session.clone(), version));
            tokio::spawn(relay_session_stream(
                gateway.clone(),
                stream.clone(),
                session,
                version,
            ));
        }
        send_answer(stream, answer.status, answer.body, id.as_ref()).await;
        return;
    }
    let current = stream
        .session
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let Some((session, version)) = current else {
        let err = GatewayError::MissingSession;
        send_answer(
            stream,
            err.status(),
            Some(err.answer(id.as_ref()).to_string().into()),
            id.as_ref(),
        )
        .await;
        return;
    };
    let _admitted = match caller::admit(gateway, &session) {
        Ok(admitted) => admitted,
        Err(err) => {
            let body = Some(err.answer(id.as_ref()).to_string().into());
            return send_answer(stream, err.status(), body, id.as_ref()).await;
        }
    };
    match exchange::exchange(gateway, &session, version, message).await {
        Outcome::Streamed(messages) => forward(stream, messages, id).await,
        Outcome::Held(held) => forward(stream, held.into_messages(), id).await,
        outcome => {
            let answer = render::settle(outcome, id.as_ref(), within).await;
            send_answer(stream, answer.status, answer.body, id.as_ref()).await;
        }
    }
}

/// Sends an answer as a `message` event; a status with no message becomes an error the
/// client can match to its request (it has no other way to see the status).
async fn send_answer(
    stream: &Stream,
    status: StatusCode,
    body: Option<bytes::Bytes>,
    id: Option<&Value>,
) {
    let data = match body {
        Some(body) => String::from_utf8_lossy(&body).into_owned(),
        None if status.is_success() || id.is_none() => return,
        None => {
            let text = format!("upstream answered HTTP {status} with no message");
            answer::error(id, code::UPSTREAM_UNAVAILABLE, &text).to_string()
        }
    };
    let _ = stream.events.send(SseEvent::message(data)).await;
}

/// Relays `messages` onto the client's stream; a failure ends them with an error answer.
async fn forward(stream: &Stream, mut messages: Messages, id: Option<Value>) {
    while let Some(item) = messages.next().await {
        let event = match item {
            Ok(event) => event,
            Err(err) => {
                let answer = GatewayError::from(err).answer(id.as_ref());
                SseEvent::message(answer.to_string())
            }
        };
        if stream.events.send(event).await.is_err() {
            return;
        }
    }
}

/// The upstream's own server-to-client stream, merged into the client's one stream (this
/// transport has no second).
async fn relay_session_stream(
    gateway: Arc<Gateway>,
    stream: Arc<Stream>,
    session: Arc<Session>,
    version: &'static str,
) {
    if let Ok(messages) = exchange::open_stream(&gateway, &session, version, None).await {
        forward(&stream, messages, None).await;
    }
}

/// The revision the upstream agreed to in its initialize answer, when the gateway speaks it.
fn negotiated_version(answer: &[u8]) -> Option<&'static str> {
    let answer: Value = serde_json::from_slice(answer).ok()?;
    let agreed = answer.pointer("/result/protocolVersion")?.as_str()?;
    version::spoken(agreed.as_bytes())
}
