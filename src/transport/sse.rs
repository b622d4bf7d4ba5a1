//! Messages as server-sent events to the client, each flushed as it arrives.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde_json::Value;

use super::error::GatewayError;
use crate::exchange::Messages;
use crate::protocol::SseEvent;

/// Keeps idle streams open through proxies and load balancers that cut silent connections.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Streams `messages` to the client. A failure ends the stream with an error answer to request
/// `id` (`None` on a session's own stream), so the client can match it to what it asked.
pub fn messages_response(messages: Messages, id: Option<Value>) -> Response {
    sse_response(messages.map(move |item| {
        Ok(match item {
            Ok(event) => client_event(event),
            Err(err) => {
                let answer = GatewayError::from(err).answer(id.as_ref());
                Event::default().event("message").data(answer.to_string())
            }
        })
    }))
}

pub fn sse_response<S>(stream: S) -> Response
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

fn client_event(event: SseEvent) -> Event {
    let mut out = Event::default().data(event.data);
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
