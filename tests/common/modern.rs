//! Requests as an MCP 2026-07-28 client sends them: the envelope in `params._meta`, and the
//! routing headers mirroring the body.

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};

use super::upstream::{result as result_of, FakeUpstream};
use super::{sse_messages, Answer, Client};

pub const MODERN: &str = "2026-07-28";

/// `client`'s headers at 2026-07-28, with `Mcp-Method` and (when given) `Mcp-Name`.
pub fn modern_headers(client: &Client, method: &str, name: Option<&str>) -> HeaderMap {
    let mut headers = client.headers();
    headers.insert("mcp-protocol-version", HeaderValue::from_static(MODERN));
    headers.insert("mcp-method", HeaderValue::from_str(method).unwrap());
    if let Some(name) = name {
        headers.insert("mcp-name", HeaderValue::from_str(name).unwrap());
    }
    headers
}

/// `method` with `params` sent as a 2026-07-28 client sends it: the envelope in `_meta`, the
/// routing headers agreeing with the body (`Mcp-Name` from `params.name` or `params.uri`).
pub async fn send(client: &Client, id: i64, method: &str, params: Value) -> Answer {
    let name = params
        .get("name")
        .or_else(|| params.get("uri"))
        .and_then(Value::as_str)
        .filter(|_| matches!(method, "tools/call" | "prompts/get" | "resources/read"));
    let headers = modern_headers(client, method, name);
    client.post_raw(headers, request(id, method, params)).await
}

/// A request of a client that declares no capabilities.
pub fn request(id: i64, method: &str, params: Value) -> String {
    request_declaring(id, method, params, json!({}))
}

/// A request whose envelope declares `capabilities`.
pub fn request_declaring(id: i64, method: &str, mut params: Value, capabilities: Value) -> String {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": capabilities,
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"}});
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

/// The one JSON-RPC answer in a JSON or SSE body.
pub fn sse_or_json(answer: &Answer) -> Value {
    if answer.body.is_object() {
        return answer.body.clone();
    }
    sse_messages(&answer.text)
        .into_iter()
        .find(|m| m.get("result").is_some() || m.get("error").is_some())
        .unwrap_or_else(|| panic!("no answer in {}", answer.text))
}

/// The one tool most tests list: `get_price`, which takes anything.
pub fn price_tool() -> Value {
    json!([{"name": "get_price", "inputSchema": {"type": "object"}}])
}

/// What a fake 2026-07-28 upstream received: each POST's headers and body.
pub type Received = Arc<Mutex<Vec<(HeaderMap, Value)>>>;

/// A fake upstream that speaks only 2026-07-28: `server/discover` names it, initialize is
/// refused (-32022), `tools/list` lists `tools`, `tools/call` echoes the name it was called with.
pub async fn modern_upstream(tools: Value) -> (String, Received) {
    let echo = |call: &Value| {
        json!({"content": [{"type": "text", "text": call["params"]["name"]}], "isError": false,
            "resultType": "complete"})
    };
    modern_upstream_calling(tools, echo).await
}

/// [`modern_upstream`] whose `tools/call` results are `call`'s.
pub async fn modern_upstream_calling(
    tools: Value,
    call: impl Fn(&Value) -> Value + Clone + Send + Sync + 'static,
) -> (String, Received) {
    let received = Received::default();
    let seen = received.clone();
    let url = FakeUpstream::start_with_headers(move |headers, message| {
        seen.lock().unwrap().push((headers, message.clone()));
        let tools = tools.clone();
        let call = call.clone();
        async move {
            let result = match message["method"].as_str() {
                Some("server/discover") => json!({"supportedVersions": [MODERN],
                    "capabilities": {"tools": {}}, "resultType": "complete",
                    "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "fake-modern", "version": "1"}}}),
                Some("tools/list") => json!({"tools": tools.clone(), "resultType": "complete",
                    "ttlMs": 60000, "cacheScope": "public"}),
                Some("tools/call") => call(&message),
                Some("initialize") => {
                    let refusal = json!({"jsonrpc": "2.0", "id": message["id"], "error": {
                        "code": -32022, "message": "Unsupported protocol version",
                        "data": {"supported": [MODERN]}}});
                    return Some((StatusCode::BAD_REQUEST, axum::Json(refusal)).into_response());
                }
                // As the Python SDK answers it at 2026-07-28: under 404.
                Some(method) if message.get("id").is_some() => {
                    let unknown = json!({"jsonrpc": "2.0", "id": message["id"], "error": {
                        "code": -32601, "message": format!("Method not found: {method}")}});
                    return Some((StatusCode::NOT_FOUND, axum::Json(unknown)).into_response());
                }
                _ => return None,
            };
            Some(result_of(&message, result))
        }
    })
    .await;
    (url, received)
}
