//! A fake upstream MCP server for tests about what the gateway does with an upstream's answers
//! (failures, odd streams, slow calls), where the simulator would have to grow a switch per case.
//!
//! The test's handler sees every POSTed JSON-RPC message and answers the ones it cares about; it
//! returns `None` for the rest, which get what an ordinary server would say: `initialize` a
//! session and the tools capability, notifications and responses 202, other requests "method not
//! found".

use std::future::Future;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use super::{SESSION, VERSION};

/// The session id the fake upstream issues at `initialize`.
const UPSTREAM_SESSION: &str = "fake-upstream-1";

pub struct FakeUpstream;

impl FakeUpstream {
    /// Serves `handler` on an ephemeral port of 127.0.0.1 and returns the MCP endpoint's URL.
    pub async fn start<H, F>(handler: H) -> String
    where
        H: Fn(Value) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Option<Response>> + Send + 'static,
    {
        Self::start_with_headers(move |_, message| handler(message)).await
    }

    /// As [`FakeUpstream::start`], the handler seeing each request's headers too.
    pub async fn start_with_headers<H, F>(handler: H) -> String
    where
        H: Fn(HeaderMap, Value) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Option<Response>> + Send + 'static,
    {
        serve(axum::Router::new().route("/mcp", post_route(handler))).await
    }

    /// As [`FakeUpstream::start`], and a session's GET stream is answered by `stream`.
    pub async fn start_with_stream<H, F>(handler: H, stream: fn() -> Response) -> String
    where
        H: Fn(Value) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Option<Response>> + Send + 'static,
    {
        let post = post_route(move |_, message| handler(message));
        let route = post.get(move || async move { stream() });
        serve(axum::Router::new().route("/mcp", route)).await
    }
}

fn post_route<H, F>(handler: H) -> axum::routing::MethodRouter
where
    H: Fn(HeaderMap, Value) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Option<Response>> + Send + 'static,
{
    axum::routing::post(
        move |headers: HeaderMap, axum::Json(message): axum::Json<Value>| {
            let handler = handler.clone();
            async move {
                match handler(headers, message.clone()).await {
                    Some(answer) => answer,
                    None => ordinary_answer(&message),
                }
            }
        },
    )
}

async fn serve(app: axum::Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// What the fake upstream says to a message its handler left alone.
fn ordinary_answer(message: &Value) -> Response {
    match (message["method"].as_str(), message.get("id")) {
        (Some("initialize"), Some(_)) => {
            let answer = result(
                message,
                json!({"protocolVersion": VERSION, "capabilities": {"tools": {}},
                    "serverInfo": {"name": "fake-upstream", "version": "1"}}),
            );
            ([(SESSION, UPSTREAM_SESSION)], answer).into_response()
        }
        (Some(method), Some(id)) => axum::Json(json!({"jsonrpc": "2.0", "id": id,
            "error": {"code": -32601, "message": format!("Method not found: {method}")}}))
        .into_response(),
        // Notifications, and responses to requests the upstream never sent.
        _ => StatusCode::ACCEPTED.into_response(),
    }
}

/// A JSON answer to `request` carrying `result`.
pub fn result(request: &Value, result: Value) -> Response {
    axum::Json(json!({"jsonrpc": "2.0", "id": request["id"], "result": result})).into_response()
}

/// An SSE answer: each message as one `message` event, in order.
pub fn sse(messages: &[Value]) -> Response {
    let body: String = messages
        .iter()
        .map(|message| format!("event: message\ndata: {message}\n\n"))
        .collect();
    ([("content-type", "text/event-stream")], body).into_response()
}

/// A bare HTTP status with a plain-text body, as a failing server sends.
pub fn status(status: StatusCode, body: &'static str) -> Response {
    (status, body).into_response()
}

/// An SSE answer that stays open: each message sent on the channel is one `message` event, and
/// the stream ends when every sender is dropped (a call that asks its client something first).
pub fn open_sse(messages: tokio::sync::mpsc::UnboundedReceiver<Value>) -> Response {
    use futures::StreamExt;
    let events = tokio_stream::wrappers::UnboundedReceiverStream::new(messages).map(|message| {
        Ok::<_, std::convert::Infallible>(format!("event: message\ndata: {message}\n\n"))
    });
    (
        [("content-type", "text/event-stream")],
        axum::body::Body::from_stream(events),
    )
        .into_response()
}
