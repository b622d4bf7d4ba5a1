//! Bringing the upstream's answer back: JSON as JSON, SSE event by event as it arrives, or a
//! stream collected into one JSON answer for clients that take only JSON. `tools/list` answers
//! are filtered on the way, whichever shape they come in.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde_json::Value;

use crate::gateway::Gateway;
use crate::session::Session;
use crate::upstream::answer;
use crate::upstream::{EventStream, SseEvent, UpstreamError};

/// Keeps idle streams open through proxies and load balancers that cut silent connections.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Removes from a `tools/list` answer every tool the agent may not see.
#[derive(Clone)]
pub struct ToolsFilter {
    pub gateway: Arc<Gateway>,
    pub session: Option<Arc<Session>>,
}

impl ToolsFilter {
    /// Filters the answer in `data` (a JSON-RPC response). A `tools/list` answer that cannot be
    /// read is refused rather than relayed: it might list what the policy hides.
    pub fn apply(&self, data: &[u8]) -> Result<Bytes, UpstreamError> {
        let mut answer: Value = serde_json::from_slice(data)
            .map_err(|e| UpstreamError::Stream(format!("unreadable tools/list answer: {e}")))?;
        if let Some(tools) = answer
            .get_mut("result")
            .and_then(|r| r.get_mut("tools"))
            .and_then(Value::as_array_mut)
        {
            let names = tools
                .iter()
                .filter_map(|t| t.get("name").and_then(Value::as_str));
            if let Some(session) = &self.session {
                session.remember_listed(names);
            }
            let policy = self.gateway.policy.load();
            let agent = self.session.as_ref().and_then(|s| s.agent.as_deref());
            tools.retain(|tool| {
                tool.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|name| policy.tool_visible(agent, name))
            });
        } else if answer.get("error").is_none() {
            return Err(UpstreamError::Stream(
                "tools/list answer has no result.tools array".into(),
            ));
        }
        Ok(serde_json::to_vec(&answer)
            .expect("a serde_json::Value always serialises")
            .into())
    }
}

pub fn json_response(status: StatusCode, body: Bytes) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Relays the upstream's stream to the client event by event, each flushed as it arrives.
pub fn relay_stream(
    events: EventStream,
    id: Option<Value>,
    filter: Option<ToolsFilter>,
) -> Response {
    let stream = events.map(move |item| -> Result<Event, Infallible> {
        match item {
            Ok(event) => Ok(to_client_event(event, id.as_ref(), filter.as_ref())),
            Err(err) => Ok(error_event(id.as_ref(), &err)),
        }
    });
    sse_response(stream)
}

/// Relays the session's server-to-client stream (GET), adding the gateway's own
/// `notifications/tools/list_changed` when a policy change alters what the session may see.
/// Ends when the upstream's stream ends.
pub fn relay_session_stream(events: EventStream, session: Arc<Session>) -> Response {
    let upstream = events
        .map(|item| {
            Some(match item {
                Ok(event) => to_client_event(event, None, None),
                Err(err) => error_event(None, &err),
            })
        })
        .chain(futures::stream::once(async { None }));
    let list_changed = futures::stream::unfold(session, |session| async move {
        session.tools_changed.notified().await;
        let note = r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#;
        Some((Some(Event::default().event("message").data(note)), session))
    });
    let merged = futures::stream::select(upstream, list_changed)
        .take_while(|event| futures::future::ready(event.is_some()))
        .filter_map(|event| futures::future::ready(event.map(Ok::<_, Infallible>)));
    sse_response(merged)
}

pub fn sse_response<S>(stream: S) -> Response
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

pub(super) fn to_client_event(
    event: SseEvent,
    id: Option<&Value>,
    filter: Option<&ToolsFilter>,
) -> Event {
    // In a tools/list exchange every message that is not a request or notification is filtered,
    // not only the one whose id matches: an answer under another id must not carry hidden tools
    // past the filter. Events without data (2025-11-25 resumption primers) carry no message.
    let data = match filter {
        Some(filter)
            if !event.data.is_empty() && !answer::is_request_or_notification(&event.data) =>
        {
            match filter.apply(event.data.as_bytes()) {
                Ok(filtered) => String::from_utf8_lossy(&filtered).into_owned(),
                Err(err) => return error_event(id, &err),
            }
        }
        _ => event.data,
    };
    let mut out = Event::default().data(data);
    if let Some(name) = event.event {
        out = out.event(name);
    }
    if let Some(event_id) = event.id {
        out = out.id(event_id);
    }
    if let Some(retry) = event.retry {
        out = out.retry(Duration::from_millis(retry));
    }
    out
}

/// A broken upstream stream still ends with an answer the client can match to its request.
fn error_event(id: Option<&Value>, err: &UpstreamError) -> Event {
    let answer = crate::gateway::error_answer(
        id,
        super::error::code::UPSTREAM_UNAVAILABLE,
        &err.to_string(),
    );
    Event::default().event("message").data(answer.to_string())
}

/// Reads the upstream's stream until the answer to `id` arrives, for clients that take only
/// JSON. What else the stream carries (progress, server requests) has no way to reach them.
pub async fn collect_answer(
    events: EventStream,
    id: &Value,
    filter: Option<&ToolsFilter>,
    within: Duration,
) -> Result<Bytes, UpstreamError> {
    let answer = answer::await_answer(events, id, within).await?;
    match filter {
        Some(filter) => filter.apply(answer.as_bytes()),
        None => Ok(Bytes::from(answer)),
    }
}
