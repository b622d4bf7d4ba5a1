//! The JSON-RPC envelope: what the gateway reads of a message before it decides.
//!
//! A message stays a `serde_json::Value` (nothing is dropped); this module only classifies it and
//! pulls out the fields policy needs. The value classified here is the value later serialised and
//! forwarded, so what was evaluated is exactly what the upstream reads.

use serde_json::Value;

use crate::json::{self, StrictJsonError};

/// One JSON-RPC message from a client, classified.
#[derive(Debug)]
pub struct Message {
    pub value: Value,
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Notification,
    /// The client's answer to a server-to-client request (elicitation, sampling, roots).
    Response,
}

/// What a POST body held.
#[derive(Debug)]
pub enum Body {
    Single(Message),
    Batch(Vec<Message>),
}

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("parse error: {0}")]
    Parse(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("invalid params: {0}")]
    InvalidParams(String),
}

impl Message {
    pub fn id(&self) -> Option<&Value> {
        self.value.get("id")
    }

    pub fn method(&self) -> Option<&str> {
        match &self.kind {
            Kind::Request | Kind::Notification => self.value.get("method")?.as_str(),
            Kind::Response => None,
        }
    }

    pub fn params(&self) -> Option<&Value> {
        self.value.get("params")
    }

    /// `params.name` of a `tools/call`, checked to be a string when the message is classified.
    pub fn tool_name(&self) -> Option<&str> {
        self.params()?.get("name")?.as_str()
    }

    pub fn tool_arguments(&self) -> Option<&Value> {
        self.params()?.get("arguments")
    }

    pub fn progress_token(&self) -> Option<&Value> {
        self.params()?.get("_meta")?.get("progressToken")
    }

    pub fn to_bytes(&self) -> bytes::Bytes {
        serde_json::to_vec(&self.value)
            .expect("a serde_json::Value always serialises")
            .into()
    }
}

/// Parses a POST body: strict JSON, then the JSON-RPC 2.0 envelope of each message.
pub fn parse_body(bytes: &[u8]) -> Result<Body, MessageError> {
    let value = json::parse(bytes).map_err(|err| match err {
        StrictJsonError::Syntax(text) => MessageError::Parse(text),
        StrictJsonError::DuplicateKey(_) => MessageError::Invalid(err.to_string()),
    })?;
    match value {
        Value::Array(items) if items.is_empty() => Err(MessageError::Invalid(
            "an empty batch is not a request".into(),
        )),
        Value::Array(items) => items
            .into_iter()
            .map(classify)
            .collect::<Result<_, _>>()
            .map(Body::Batch),
        value => classify(value).map(Body::Single),
    }
}

fn classify(value: Value) -> Result<Message, MessageError> {
    let object = value
        .as_object()
        .ok_or_else(|| MessageError::Invalid("a JSON-RPC message is a JSON object".into()))?;
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(MessageError::Invalid(r#""jsonrpc" must be "2.0""#.into()));
    }
    let id = object.get("id");
    if let Some(id) = id {
        // JSON-RPC allows null ids only in error responses; MCP forbids them in requests.
        if !(id.is_string() || id.is_i64() || id.is_u64()) {
            return Err(MessageError::Invalid(
                r#""id" must be a string or an integer"#.into(),
            ));
        }
    }
    let kind = match (object.get("method"), id) {
        (Some(Value::String(_)), Some(_)) => Kind::Request,
        (Some(Value::String(_)), None) => Kind::Notification,
        (Some(_), _) => return Err(MessageError::Invalid(r#""method" must be a string"#.into())),
        (None, Some(_)) if object.contains_key("result") != object.contains_key("error") => {
            Kind::Response
        }
        (None, _) => {
            return Err(MessageError::Invalid(
                r#"a message needs a "method" (request, notification) or an "id" with "result" or "error" (response)"#.into(),
            ))
        }
    };
    if let Some(method) = object.get("method").and_then(Value::as_str) {
        check_method_name(method)?;
    }
    if let Some(params) = object.get("params") {
        if !(params.is_object() || params.is_array()) {
            return Err(MessageError::Invalid(
                r#""params" must be an object or an array"#.into(),
            ));
        }
    }
    let message = Message { value, kind };
    if message.method() == Some("tools/call") {
        check_tools_call(&message)?;
    }
    Ok(message)
}

/// Methods the gateway polices by name. A variant of one of them (other case) is refused rather
/// than passed on as some other method: an upstream that matched names loosely would run it
/// as the real one without the rule for it having been applied.
const POLICED_METHODS: [&str; 12] = [
    "initialize",
    "ping",
    "tools/call",
    "tools/list",
    "resources/read",
    "resources/list",
    "resources/templates/list",
    "resources/subscribe",
    "prompts/get",
    "prompts/list",
    "completion/complete",
    "logging/setLevel",
];

fn check_method_name(method: &str) -> Result<(), MessageError> {
    let plain = !method.is_empty()
        && method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_.-$".contains(&b));
    if !plain {
        return Err(MessageError::Invalid(format!(
            "method {method:?}: method names are ASCII letters, digits and / _ . - $"
        )));
    }
    if let Some(known) = POLICED_METHODS
        .iter()
        .find(|known| **known != method && known.eq_ignore_ascii_case(method))
    {
        return Err(MessageError::Invalid(format!(
            "method {method:?}: method names are case-sensitive; did you mean {known:?}?"
        )));
    }
    Ok(())
}

fn check_tools_call(message: &Message) -> Result<(), MessageError> {
    let params = message.params().and_then(Value::as_object).ok_or_else(|| {
        MessageError::InvalidParams(r#"tools/call needs "params" with a "name""#.into())
    })?;
    match params.get("name") {
        Some(Value::String(_)) => {}
        _ => {
            return Err(MessageError::InvalidParams(
                r#"tools/call needs "params.name", a string"#.into(),
            ))
        }
    }
    match params.get("arguments") {
        None | Some(Value::Object(_)) => Ok(()),
        Some(_) => Err(MessageError::InvalidParams(
            r#""params.arguments" must be an object"#.into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(text: &str) -> Result<Message, MessageError> {
        match parse_body(text.as_bytes())? {
            Body::Single(message) => Ok(message),
            Body::Batch(_) => panic!("expected one message"),
        }
    }

    #[test]
    fn classifies_requests_notifications_and_responses() {
        let request = single(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).unwrap();
        assert_eq!(request.kind, Kind::Request);
        assert_eq!(request.method(), Some("tools/list"));
        let note = single(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(note.kind, Kind::Notification);
        let response = single(r#"{"jsonrpc":"2.0","id":"e1","result":{}}"#).unwrap();
        assert_eq!(response.kind, Kind::Response);
    }

    #[test]
    fn refuses_what_is_not_json_rpc() {
        for text in [
            r#"{"id":1,"method":"x"}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":"p"}"#,
            r#""just a string""#,
            "[]",
        ] {
            assert!(
                matches!(single(text), Err(MessageError::Invalid(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn method_names_with_other_case_spaces_or_unicode_are_refused() {
        for method in [
            "Tools/Call",
            "TOOLS/CALL",
            "tools/call ",
            " tools/call",
            r"tools/\u200bcall",
            "ｔools/call",
            r"tools/list\n",
            "",
        ] {
            let text = format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{{"name":"x"}}}}"#
            );
            assert!(
                matches!(single(&text), Err(MessageError::Invalid(_))),
                "{method:?}"
            );
        }
        assert!(single(r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#).is_ok());
    }

    #[test]
    fn tools_call_needs_a_string_name_and_object_arguments() {
        for text in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":["get_price"]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":[1]}}"#,
        ] {
            assert!(
                matches!(single(text), Err(MessageError::InvalidParams(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn duplicate_keys_are_invalid_requests_and_syntax_errors_are_parse_errors() {
        let dup =
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}"#;
        assert!(matches!(single(dup), Err(MessageError::Invalid(_))));
        assert!(matches!(single("{"), Err(MessageError::Parse(_))));
    }

    #[test]
    fn forwarding_reproduces_numbers_exactly() {
        // Found by fuzzing: without serde_json's float_roundtrip, the last digit of some floats
        // changed between the value evaluated and the bytes forwarded.
        let text = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":9.223372036073708e+21,"b":0.1,"c":-1.7976931348623157e308}}}"#;
        let message = single(text).unwrap();
        let forwarded: Value = serde_json::from_slice(&message.to_bytes()).unwrap();
        assert_eq!(forwarded, message.value);
    }

    #[test]
    fn batches_are_classified_element_by_element() {
        let text = r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/x"}]"#;
        match parse_body(text.as_bytes()).unwrap() {
            Body::Batch(items) => assert_eq!(items.len(), 2),
            Body::Single(_) => panic!("expected a batch"),
        }
    }
}
