//! A fake upstream MCP server for tests about what the gateway does with an upstream's answers
//! (failures, odd streams, slow calls), where the simulator would have to grow a switch per case.
//!
//! The test's handler sees every POSTed JSON-RPC message and answers the ones it cares about; it
//! returns `None` for the rest, which get what an ordinary server would say: `initialize` a
//! session and the tools capability, notifications and responses 202, other requests "method not
//! found".

use std::future::Future;

use axum::http::StatusCode;
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
        let app = axum::Router::new().route(
            "/mcp",
            axum::routing::post(move |axum::Json(message): axum::Json<Value>| {
                let handler = handler.clone();
                async move {
                    match handler(message.clone()).await {
                        Some(answer) => answer,
                        None => ordinary_answer(&message),
                    }
                }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }
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
