//! The exchanges that open, stream and end a session rather than carry one call.

use std::net::IpAddr;
use std::sync::Arc;

use futures::StreamExt;
use http::{HeaderValue, StatusCode};
use serde_json::Value;

use super::answers::{messages, Answers};
use super::forward::{observe_upstream, relay};
use super::{per_request, ExchangeError, Messages, Outcome};
use crate::gateway::Gateway;
use crate::protocol::{method, version, Message, SseEvent};
use crate::session::{Opening, Session};
use crate::upstream::{Placement, Reply, Revision, UpstreamError};

/// What initialize came to, and the session it opened when the upstream accepted it.
pub struct Opened {
    pub outcome: Outcome,
    pub session: Option<Arc<Session>>,
}

/// Lifecycle spec: initialize opens a session. The upstream's session is opened with it and kept
/// behind the gateway's own id.
pub async fn initialize(
    gateway: &Arc<Gateway>,
    agent: Option<Arc<str>>,
    scopes: Option<Arc<[String]>>,
    address: Option<IpAddr>,
    version: &'static str,
    message: Message,
) -> Opened {
    let full = |max| Opened {
        outcome: Outcome::Failed(ExchangeError::TooManySessions(max)),
        session: None,
    };
    // Checked before the upstream is asked too, so a full gateway opens no upstream session.
    let max_sessions = gateway.config.limits.max_sessions;
    if gateway.sessions.len() >= max_sessions {
        return full(max_sessions);
    }
    let placement = Placement {
        session_id: None,
        protocol_version: Some(version),
        routing: None,
    };
    let sent = std::time::Instant::now();
    let mut reply = gateway.upstream.post(message.to_bytes(), placement).await;
    if matches!(&reply, Ok(Reply::Json { status, .. }) if *status == StatusCode::NOT_FOUND) {
        // No session was named, so this is no unknown session: the URL is not an MCP endpoint.
        reply = Err(gateway.upstream.endpoint_not_found());
    }
    observe_upstream(gateway, &message, sent, &reply);
    if per_request::refused_initialize(&reply) {
        // Perhaps an upstream that dropped the handshake (2026-07-28 only): then the gateway
        // opens the session itself and speaks 2026-07-28 upstream for it.
        if let Ok(Revision::PerRequest(discovered)) = gateway.upstream.rediscover().await {
            return per_request::open_here(gateway, agent, scopes, address, &message, &discovered);
        }
    }
    let upstream_id = match &reply {
        Ok(Reply::Json {
            status, session_id, ..
        }) if status.is_success() => session_id.clone(),
        Ok(Reply::Stream { session_id, .. }) => session_id.clone(),
        Ok(_) | Err(_) => {
            if let Err(err) = &reply {
                tracing::warn!(agent = agent.as_deref(), method = method::INITIALIZE,
                    decision = "upstream_error", reason = %err, "upstream failed initialize");
            }
            return Opened {
                outcome: relay(gateway, None, &message, reply),
                session: None,
            };
        }
    };
    let opening = Opening {
        version: negotiated(&message, &reply),
        address,
        modern_upstream: false,
        scopes,
    };
    let session =
        match gateway
            .sessions
            .open(upstream_id, agent, message.declares_elicitation(), opening)
        {
            Ok(session) => session,
            Err(full_now) => return full(full_now.0),
        };
    gateway.record_lifecycle(&session, &message);
    Opened {
        outcome: relay(gateway, None, &message, reply),
        session: Some(session),
    }
}

/// The revision the session speaks (lifecycle spec: the server answers with the version it
/// agrees to): the upstream's answer when it is JSON, else what the client asked for; one
/// spoken here, or the transports spec's assumption.
fn negotiated(message: &Message, reply: &Result<Reply, UpstreamError>) -> &'static str {
    let answered = match reply {
        Ok(Reply::Json { body, .. }) => {
            serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|answer| {
                    answer["result"]["protocolVersion"]
                        .as_str()
                        .map(str::to_owned)
                })
        }
        _ => None,
    };
    let asked = || {
        message
            .params()
            .and_then(|params| params["protocolVersion"].as_str().map(str::to_owned))
    };
    answered
        .or_else(asked)
        .and_then(|v| version::spoken(v.as_bytes()))
        .unwrap_or(version::ASSUMED)
}

/// Why the upstream would not open a session's server-to-client stream.
pub enum StreamRefused {
    /// It offers none (405).
    NotOffered,
    /// It no longer knows the session (404): the gateway's is ended too.
    SessionGone,
    /// Another refusal, relayed as its status.
    Status(StatusCode),
    Failed(ExchangeError),
}

/// The session's server-to-client stream (GET), with the gateway's own
/// `notifications/tools/list_changed` added when a policy change alters what the session may
/// see. Ends when the upstream's stream ends.
pub async fn open_stream(
    gateway: &Arc<Gateway>,
    session: &Arc<Session>,
    version: &'static str,
    last_event_id: Option<&HeaderValue>,
) -> Result<Messages, StreamRefused> {
    if session.modern_upstream {
        // A 2026-07-28 upstream has no server-to-client stream to relay (transports spec:
        // `subscriptions/listen` replaces it).
        return Err(StreamRefused::NotOffered);
    }
    let placement = Placement {
        session_id: session.upstream_id.as_ref(),
        protocol_version: Some(version),
        routing: None,
    };
    let opened = gateway.upstream.open_stream(placement, last_event_id).await;
    let events = match opened {
        // Server-to-client requests and notifications on this stream are relayed (responses are
        // not: `answers.rs`); the client's answers come back by POST to the same upstream session.
        Ok(Ok(events)) => events,
        Ok(Err(StatusCode::METHOD_NOT_ALLOWED)) => return Err(StreamRefused::NotOffered),
        Ok(Err(StatusCode::NOT_FOUND)) => {
            if let Err(err) = gateway.end_session(session).await {
                tracing::warn!(error = %err, "could not revoke a session the upstream forgot");
            }
            return Err(StreamRefused::SessionGone);
        }
        Ok(Err(status)) => return Err(StreamRefused::Status(status)),
        Err(err) => return Err(StreamRefused::Failed(err.into())),
    };
    let resumed = last_event_id.is_some();
    // The upstream says its tools changed: check the pins now, not at the next list.
    let (watcher, watched) = (gateway.clone(), session.clone());
    let upstream = messages(events, Answers::session_stream(gateway, session, resumed))
        .inspect(move |event| {
            if let Ok(event) = event {
                if super::pins::is_list_changed(event.text()) {
                    super::pins::recheck(watcher.clone(), watched.clone());
                }
            }
        })
        .map(Some)
        .chain(futures::stream::once(async { None }));
    let list_changed = own_list_changed(session).map(|event| Some(Ok(event)));
    let merged = futures::stream::select(upstream, list_changed)
        .take_while(|event| futures::future::ready(event.is_some()))
        .filter_map(futures::future::ready);
    Ok(Box::pin(merged))
}

/// The gateway's own `notifications/tools/list_changed`, each time a policy change alters what
/// `session` may see (on every stream of the session). Never ends by itself.
pub(super) fn own_list_changed(
    session: &Arc<Session>,
) -> impl futures::Stream<Item = SseEvent> + Send + 'static {
    let changes = session.tools_changed.listen();
    futures::stream::unfold(
        (session.clone(), changes),
        |(session, mut changes)| async move {
            // The sender lives as long as the session this stream holds: no error while it runs.
            changes.changed().await.ok()?;
            let count = *changes.borrow_and_update();
            session.tools_changed.told(count);
            let note = format!(
                r#"{{"jsonrpc":"2.0","method":"{}"}}"#,
                method::TOOLS_LIST_CHANGED
            );
            Some((SseEvent::message(note), (session, changes)))
        },
    )
}

/// Ends the session here and, best effort, upstream (the upstream may have ended it already;
/// its session expires on its own).
pub async fn end_session(
    gateway: &Gateway,
    session: &Session,
    version: &'static str,
) -> Result<(), crate::state::StateError> {
    // Revoked first: once DELETE is answered, no replica serves the session.
    gateway.end_session(session).await?;
    if session.upstream_id.is_none() {
        return Ok(());
    }
    let placement = Placement {
        session_id: session.upstream_id.as_ref(),
        protocol_version: Some(version),
        routing: None,
    };
    if let Err(err) = gateway.upstream.end_session(placement).await {
        tracing::warn!(error = %err, "could not end the upstream session");
    }
    Ok(())
}
