//! An incoming JSON-RPC message, read into a small envelope: only the fields the server acts on
//! are parsed (method, id, and the few params the methods use); the rest is skipped unbuilt.
//! This is the request path's biggest saving over a full `serde_json::Value` (no map per object).

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::error::SimulatorError;

/// The parts of a message the server reads.
#[derive(Debug, Deserialize)]
pub struct Envelope<'a> {
    #[serde(borrow, default)]
    jsonrpc: Option<Cow<'a, str>>,
    /// `None` when absent, `Some(Value::Null)` when `null`.
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<Params<'a>>,
    #[serde(default, deserialize_with = "present")]
    result: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    error: Option<IgnoredAny>,
}

/// The params fields any supported method reads. Their types are checked by the methods, so a
/// wrong type gets the method's own error rather than a parse failure.
#[derive(Debug, Default, Deserialize)]
pub struct Params<'a> {
    /// `initialize`
    #[serde(rename = "protocolVersion", borrow, default)]
    pub protocol_version: Option<Cow<'a, str>>,
    /// `tools/list`
    #[serde(default)]
    pub cursor: Option<Value>,
    /// `tools/call`
    #[serde(default)]
    pub name: Option<Value>,
    #[serde(default)]
    pub arguments: Option<Value>,
    #[serde(rename = "_meta", default)]
    pub meta: Option<Value>,
}

impl Params<'_> {
    /// Progress utility: the request's `_meta.progressToken`, when it is a string or an integer.
    pub fn progress_token(&self) -> Option<&Value> {
        let token = self.meta.as_ref()?.get("progressToken")?;
        (token.is_string() || token.is_i64() || token.is_u64()).then_some(token)
    }
}

const NO_PARAMS: Params<'static> = Params {
    protocol_version: None,
    cursor: None,
    name: None,
    arguments: None,
    meta: None,
};

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// One incoming message, as far as the server needs to know it.
#[derive(Debug, Clone, Copy)]
pub enum Incoming<'a> {
    Request {
        id: &'a Value,
        method: &'a str,
        params: &'a Params<'a>,
    },
    /// Notifications and responses: accepted (202) and otherwise ignored.
    NoReply,
}

impl<'a> Envelope<'a> {
    /// Reads a POST body. Anything that is not a single JSON-RPC message object is refused, with
    /// -32700 when it is not JSON at all.
    pub fn parse(body: &'a [u8]) -> Result<Self, SimulatorError> {
        serde_json::from_slice(body).map_err(|error| {
            match serde_json::from_slice::<Value>(body) {
                Err(_) => SimulatorError::Parse(error.to_string()),
                // 2025-06-18 removed JSON-RPC batching; FastMCP never accepted it over HTTP either.
                Ok(Value::Array(_)) => SimulatorError::InvalidRequest("batches are not supported"),
                Ok(Value::Object(_)) => {
                    SimulatorError::InvalidRequest("malformed JSON-RPC message")
                }
                Ok(_) => SimulatorError::InvalidRequest("expected a JSON-RPC message object"),
            }
        })
    }

    /// The request id, when there is a usable one (to answer refusals with).
    pub fn id(&self) -> &Value {
        match &self.id {
            Some(id) if id.is_string() || id.is_i64() || id.is_u64() => id,
            _ => &Value::Null,
        }
    }

    /// Sorts the message into a request or something that needs no reply.
    pub fn classify(&'a self) -> Result<Incoming<'a>, SimulatorError> {
        if self.jsonrpc.as_deref() != Some("2.0") {
            return Err(SimulatorError::InvalidRequest("jsonrpc must be \"2.0\""));
        }
        match (&self.method, &self.id) {
            (Some(method), Some(id)) if id.is_string() || id.is_i64() || id.is_u64() => {
                Ok(Incoming::Request {
                    id,
                    method,
                    params: self.params.as_ref().unwrap_or(&NO_PARAMS),
                })
            }
            // Basic protocol: a request id MUST be a string or integer, never null.
            (Some(_), Some(_)) => Err(SimulatorError::InvalidRequest(
                "id must be a string or an integer",
            )),
            (Some(_), None) => Ok(Incoming::NoReply),
            (None, Some(_)) if self.result.is_some() || self.error.is_some() => {
                Ok(Incoming::NoReply)
            }
            _ => Err(SimulatorError::InvalidRequest(
                "not a JSON-RPC request, notification or response",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn classify(message: &Value) -> Result<&'static str, SimulatorError> {
        let body = serde_json::to_vec(message).unwrap();
        let envelope = Envelope::parse(&body)?;
        Ok(match envelope.classify()? {
            Incoming::Request { method: "ping", .. } => "ping",
            Incoming::Request { .. } => "request",
            Incoming::NoReply => "no reply",
        })
    }

    #[test]
    fn messages_are_sorted_by_shape() {
        assert_eq!(
            classify(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})),
            Ok("ping")
        );
        assert_eq!(
            classify(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"})),
            Ok("no reply")
        );
        assert_eq!(
            classify(&json!({"jsonrpc": "2.0", "id": "s-1", "result": {}})),
            Ok("no reply")
        );
        assert_eq!(
            classify(&json!({"jsonrpc": "2.0", "id": 2, "error": {"code": 1, "message": "x"}})),
            Ok("no reply")
        );
    }

    #[test]
    fn malformed_messages_are_refused() {
        for bad in [
            json!([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]),
            json!("ping"),
            json!({"id": 1, "method": "ping"}),
            json!({"jsonrpc": "2.0", "id": null, "method": "ping"}),
            json!({"jsonrpc": "2.0", "id": 1.5, "method": "ping"}),
            json!({"jsonrpc": "2.0", "id": 1, "method": 7}),
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": [1]}),
            json!({"jsonrpc": "2.0"}),
        ] {
            assert!(
                matches!(classify(&bad), Err(SimulatorError::InvalidRequest(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            Envelope::parse(b"{\"jsonrpc\":"),
            Err(SimulatorError::Parse(_))
        ));
    }

    #[test]
    fn params_are_read_without_judging_their_types() {
        let body = br#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":
            {"name":"get_price","arguments":{"symbol":"BTCUSDT"},"_meta":{"progressToken":5},"extra":[1,{"x":2}]}}"#;
        let envelope = Envelope::parse(body).unwrap();
        let Ok(Incoming::Request { id, params, .. }) = envelope.classify() else {
            panic!("not a request")
        };
        assert_eq!(id, "a");
        assert_eq!(params.name, Some(json!("get_price")));
        assert_eq!(params.arguments, Some(json!({"symbol": "BTCUSDT"})));
        assert_eq!(params.progress_token(), Some(&json!(5)));

        let odd = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5,"_meta":{"progressToken":null}}}"#;
        let envelope = Envelope::parse(odd).unwrap();
        let Ok(Incoming::Request { params, .. }) = envelope.classify() else {
            panic!("not a request")
        };
        assert_eq!(params.name, Some(json!(5)));
        assert_eq!(params.progress_token(), None);

        let null = br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":null}"#;
        assert!(matches!(
            Envelope::parse(null).unwrap().classify(),
            Ok(Incoming::Request { .. })
        ));
    }

    #[test]
    fn escaped_strings_are_read_too() {
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools\/list"}"#;
        let envelope = Envelope::parse(body).unwrap();
        assert!(matches!(
            envelope.classify(),
            Ok(Incoming::Request {
                method: "tools/list",
                ..
            })
        ));
    }
}
