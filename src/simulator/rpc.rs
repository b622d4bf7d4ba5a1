//! JSON-RPC over the simulated server: sorting incoming messages, and answering `initialize`,
//! `ping`, `tools/list` and `tools/call`.
//!
//! Messages stay `serde_json::Value`; only the fields a decision needs are read. Answers are
//! built as bytes around the request's `id`, so precomputed results (the tool list) are copied,
//! not re-serialised.

use std::sync::atomic::Ordering;

use serde_json::{json, Value};

use super::arguments::Arguments;
use super::catalogue::{catalogue, index_of};
use super::error::SimulatorError;
use super::sessions::Session;
use super::tools::{self, ToolOutcome};
use super::Shared;

/// Protocol revisions this server speaks, oldest first.
pub const SUPPORTED_VERSIONS: [&str; 3] = ["2025-03-26", "2025-06-18", "2025-11-25"];
pub const LATEST_VERSION: &str = "2025-11-25";

pub const SERVER_NAME: &str = "binance-mcp-simulator";

/// One incoming JSON-RPC message, as far as the server needs to know it.
#[derive(Debug, Clone, Copy)]
pub enum Incoming<'a> {
    Request {
        id: &'a Value,
        method: &'a str,
        params: Option<&'a Value>,
    },
    /// Notifications and responses: accepted (202) and otherwise ignored.
    NoReply,
}

/// Sorts a parsed body into a request or something that needs no reply.
pub fn classify(message: &Value) -> Result<Incoming<'_>, SimulatorError> {
    let object = match message {
        Value::Object(object) => object,
        // 2025-06-18 removed JSON-RPC batching; FastMCP never accepted it over HTTP either.
        Value::Array(_) => return Err(SimulatorError::InvalidRequest("batches are not supported")),
        _ => {
            return Err(SimulatorError::InvalidRequest(
                "expected a JSON-RPC message object",
            ))
        }
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(SimulatorError::InvalidRequest("jsonrpc must be \"2.0\""));
    }
    let id = object.get("id");
    match (object.get("method"), id) {
        (Some(Value::String(method)), Some(id)) if id.is_string() || id.is_i64() || id.is_u64() => {
            Ok(Incoming::Request {
                id,
                method,
                params: object.get("params"),
            })
        }
        // Basic protocol: a request id MUST be a string or integer, never null.
        (Some(Value::String(_)), Some(_)) => Err(SimulatorError::InvalidRequest(
            "id must be a string or an integer",
        )),
        (Some(Value::String(_)), None) => Ok(Incoming::NoReply),
        (None, Some(_)) if object.contains_key("result") || object.contains_key("error") => {
            Ok(Incoming::NoReply)
        }
        _ => Err(SimulatorError::InvalidRequest(
            "not a JSON-RPC request, notification or response",
        )),
    }
}

/// What a request gets back.
#[derive(Debug)]
pub enum Reply {
    /// One JSON-RPC response.
    Message(Vec<u8>),
    /// A slow tool called with a progress token: progress notifications, then `response`.
    Progressive { token: Value, response: Vec<u8> },
}

/// The result for `initialize`. Lifecycle: the negotiated version is the client's when we
/// support it, else our latest.
pub fn initialize(params: Option<&Value>) -> Value {
    let requested = params
        .and_then(|p| p.get("protocolVersion"))
        .and_then(Value::as_str);
    let version = SUPPORTED_VERSIONS
        .into_iter()
        .find(|v| Some(*v) == requested)
        .unwrap_or(LATEST_VERSION);
    json!({
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": false}},
        "serverInfo": {"name": SERVER_NAME, "version": env!("CARGO_PKG_VERSION")},
        "instructions": "Simulated Binance spot market data (tienan92it/binance-mcp tools). \
                         Deterministic prices; no network, no orders, no account.",
    })
}

/// Answers a request on an established session.
pub fn respond(
    shared: &Shared,
    session: &Session,
    id: &Value,
    method: &str,
    params: Option<&Value>,
) -> Result<Reply, SimulatorError> {
    match method {
        "ping" => Ok(Reply::Message(result_message(id, b"{}"))),
        "tools/list" => Ok(Reply::Message(result_message(
            id,
            shared.listing.page(params)?,
        ))),
        "tools/call" => call_tool(shared, session, id, params),
        _ => Err(SimulatorError::MethodNotFound(method.to_owned())),
    }
}

fn call_tool(
    shared: &Shared,
    session: &Session,
    id: &Value,
    params: Option<&Value>,
) -> Result<Reply, SimulatorError> {
    let params = params.and_then(Value::as_object).ok_or_else(|| {
        SimulatorError::InvalidParams("tools/call needs params with a tool name".into())
    })?;
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| SimulatorError::InvalidParams("tools/call needs a tool name".into()))?;
    // Tools spec: an unknown tool is a protocol error (-32602), not a tool error.
    let index = index_of(name)
        .ok_or_else(|| SimulatorError::InvalidParams(format!("Unknown tool: {name}")))?;
    shared.calls[index].fetch_add(1, Ordering::Relaxed);
    let tool = &catalogue()[index];
    let given = match params.get("arguments") {
        None | Some(Value::Null) => None,
        Some(Value::Object(arguments)) => Some(arguments),
        Some(_) => {
            return Err(SimulatorError::InvalidParams(
                "tools/call arguments must be an object".into(),
            ))
        }
    };
    let outcome = match Arguments::parse(tool, given) {
        Ok(arguments) => tools::call(tool, &arguments, session),
        Err(validation) => ToolOutcome::Failure(validation),
    };
    let response = result_message(id, &outcome.to_result(name));
    // Progress utility: a progress token is a string or an integer.
    let token = params
        .get("_meta")
        .and_then(|meta| meta.get("progressToken"))
        .filter(|token| token.is_string() || token.is_i64() || token.is_u64());
    Ok(match token {
        Some(token) if tools::is_slow(name) => Reply::Progressive {
            token: token.clone(),
            response,
        },
        _ => Reply::Message(response),
    })
}

/// `{"jsonrpc":"2.0","id":<id>,"result":<result>}` around an already serialised result.
pub fn result_message(id: &Value, result: &[u8]) -> Vec<u8> {
    let id = serde_json::to_vec(id).unwrap_or_else(|_| b"null".to_vec());
    let mut message = Vec::with_capacity(result.len() + id.len() + 36);
    message.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    message.extend_from_slice(&id);
    message.extend_from_slice(b",\"result\":");
    message.extend_from_slice(result);
    message.push(b'}');
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_sorted_by_shape() {
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
        assert!(matches!(
            classify(&request),
            Ok(Incoming::Request { method: "ping", .. })
        ));
        let notification = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert!(matches!(classify(&notification), Ok(Incoming::NoReply)));
        let response = json!({"jsonrpc": "2.0", "id": "s-1", "result": {}});
        assert!(matches!(classify(&response), Ok(Incoming::NoReply)));
        for bad in [
            json!([request]),
            json!("ping"),
            json!({"id": 1, "method": "ping"}),
            json!({"jsonrpc": "2.0", "id": null, "method": "ping"}),
            json!({"jsonrpc": "2.0", "id": 1.5, "method": "ping"}),
            json!({"jsonrpc": "2.0"}),
        ] {
            assert!(
                matches!(classify(&bad), Err(SimulatorError::InvalidRequest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn version_negotiation_echoes_supported_versions() {
        for version in SUPPORTED_VERSIONS {
            let result = initialize(Some(&json!({"protocolVersion": version})));
            assert_eq!(result["protocolVersion"], version);
        }
        assert_eq!(
            initialize(Some(&json!({"protocolVersion": "2024-11-05"})))["protocolVersion"],
            LATEST_VERSION
        );
        assert_eq!(initialize(None)["protocolVersion"], LATEST_VERSION);
    }

    #[test]
    fn result_message_wraps_the_id() {
        let message: Value =
            serde_json::from_slice(&result_message(&json!("a\"b"), b"{\"x\":1}")).unwrap();
        assert_eq!(
            message,
            json!({"jsonrpc": "2.0", "id": "a\"b", "result": {"x": 1}})
        );
    }
}
