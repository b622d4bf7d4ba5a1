//! JSON-RPC methods of the simulated server: `initialize`, `ping`, `tools/list` and `tools/call`.
//!
//! Answers are built as bytes around the request's `id`, so precomputed results (the tool list)
//! are copied and tool results written once, never re-serialised.

use std::sync::atomic::Ordering;

use serde_json::{json, Value};

use super::arguments::Arguments;
use super::catalogue::{catalogue, index_of};
use super::error::SimulatorError;
use super::message::Params;
use super::outcome::ToolOutcome;
use super::sessions::Session;
use super::tools;
use super::Shared;

/// Protocol revisions this server speaks, oldest first.
pub const SUPPORTED_VERSIONS: [&str; 3] = ["2025-03-26", "2025-06-18", "2025-11-25"];
pub const LATEST_VERSION: &str = "2025-11-25";

pub const SERVER_NAME: &str = "binance-mcp-simulator";

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
pub fn initialize(params: &Params<'_>) -> Value {
    let requested = params.protocol_version.as_deref();
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
    params: &Params<'_>,
) -> Result<Reply, SimulatorError> {
    match method {
        "ping" => Ok(Reply::Message(result_message(id, b"{}"))),
        "tools/list" => {
            let page = shared.listing.page(params.cursor.as_ref())?;
            Ok(Reply::Message(result_message(id, page)))
        }
        "tools/call" => call_tool(shared, session, id, params),
        _ => Err(SimulatorError::MethodNotFound(method.to_owned())),
    }
}

fn call_tool(
    shared: &Shared,
    session: &Session,
    id: &Value,
    params: &Params<'_>,
) -> Result<Reply, SimulatorError> {
    let name = params
        .name
        .as_ref()
        .and_then(Value::as_str)
        .ok_or_else(|| SimulatorError::InvalidParams("tools/call needs a tool name".into()))?;
    // Tools spec: an unknown tool is a protocol error (-32602), not a tool error.
    let index = index_of(name)
        .ok_or_else(|| SimulatorError::InvalidParams(format!("Unknown tool: {name}")))?;
    shared.calls[index].fetch_add(1, Ordering::Relaxed);
    let tool = &catalogue()[index];
    let given = match &params.arguments {
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
    let response = response(id, |out| outcome.write_result(name, out));
    Ok(match params.progress_token() {
        Some(token) if tools::is_slow(name) => Reply::Progressive {
            token: token.clone(),
            response,
        },
        _ => Reply::Message(response),
    })
}

/// `{"jsonrpc":"2.0","id":<id>,"result":<result>}` around an already serialised result.
pub fn result_message(id: &Value, result: &[u8]) -> Vec<u8> {
    response(id, |out| out.extend_from_slice(result))
}

/// A response to `id` whose result `write_result` appends.
fn response(id: &Value, write_result: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut message = Vec::with_capacity(128);
    message.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    if serde_json::to_writer(&mut message, id).is_err() {
        message.extend_from_slice(b"null");
    }
    message.extend_from_slice(b",\"result\":");
    write_result(&mut message);
    message.push(b'}');
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_negotiation_echoes_supported_versions() {
        for version in SUPPORTED_VERSIONS {
            let params = Params {
                protocol_version: Some(version.into()),
                ..Params::default()
            };
            assert_eq!(initialize(&params)["protocolVersion"], version);
        }
        let old = Params {
            protocol_version: Some("2024-11-05".into()),
            ..Params::default()
        };
        assert_eq!(initialize(&old)["protocolVersion"], LATEST_VERSION);
        assert_eq!(
            initialize(&Params::default())["protocolVersion"],
            LATEST_VERSION
        );
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
