//! Messages as server-sent events to the client, each flushed as it arrives.
//!
//! Written here rather than with axum's `Sse`: an event is relayed exactly as the upstream sent
//! it (`SseEvent::encode`), and axum's writer drops an empty `data:` line, which turns a
//! resumption primer into an event SSE clients discard, id and all.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde_json::Value;
use tokio::time::{Instant, Sleep};

use super::error::GatewayError;
use crate::exchange::Messages;
use crate::protocol::SseEvent;

/// Keeps idle streams open through proxies and load balancers that cut silent connections.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// An SSE comment: ignored by clients, enough for a proxy to see the stream is alive.
const KEEP_ALIVE_COMMENT: &[u8] = b":\n\n";

/// Streams `messages` to the client. A failure ends the stream with an error answer to request
/// `id` (`None` on a session's own stream), so the client can match it to what it asked.
pub fn messages_response(messages: Messages, id: Option<Value>) -> Response {
    events_response(messages.map(move |item| match item {
        Ok(event) => event,
        Err(err) => {
            let answer = GatewayError::from(err).answer(id.as_ref());
            SseEvent::message(answer.to_string())
        }
    }))
}

/// An `text/event-stream` response of `events`, with keep-alive comments while they are quiet.
pub fn events_response<S>(events: S) -> Response
where
    S: Stream<Item = SseEvent> + Send + 'static,
{
    let body = KeepAlive {
        events: Box::pin(events.flat_map(|event| futures::stream::iter(event.encode()))),
        idle: Box::pin(tokio::time::sleep(KEEP_ALIVE)),
    };
    let mut response = Response::new(Body::from_stream(body.map(Ok::<_, Infallible>)));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Encoded events, with a keep-alive comment whenever none came for [`KEEP_ALIVE`]. One timer
/// per stream, reset as events pass, not one per event.
struct KeepAlive {
    events: Pin<Box<dyn Stream<Item = Bytes> + Send>>,
    idle: Pin<Box<Sleep>>,
}

impl Stream for KeepAlive {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        match self.events.poll_next_unpin(cx) {
            Poll::Ready(Some(bytes)) => {
                self.idle.as_mut().reset(Instant::now() + KEEP_ALIVE);
                Poll::Ready(Some(bytes))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.idle.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.idle.as_mut().reset(Instant::now() + KEEP_ALIVE);
                    Poll::Ready(Some(Bytes::from_static(KEEP_ALIVE_COMMENT)))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}
