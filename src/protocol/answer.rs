//! The JSON-RPC answers the gateway writes itself (refusals, errors), rather than relays.

use serde_json::{json, Value};

/// A JSON-RPC error answering the request with this id (`null` when it could not be read).
pub fn error(id: Option<&Value>, code: i64, message: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id.cloned().unwrap_or(Value::Null),
        "error": { "code": code, "message": message },
    })
}

/// A `tools/call` result the model reads: the call was not made, and why. A JSON-RPC error would
/// reach the client library, not the model.
pub fn tool_error(id: Option<&Value>, text: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id.cloned().unwrap_or(Value::Null),
        "result": { "content": [{ "type": "text", "text": text }], "isError": true },
    })
}
