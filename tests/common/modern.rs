//! Requests as an MCP 2026-07-28 client sends them: the envelope in `params._meta`, and the
//! routing headers mirroring the body.

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};

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
