//! The JSON-RPC envelope: what the gateway reads of a message before it decides, and the
//! message as it is forwarded.
//!
//! What policy needs is held as values: `jsonrpc`, `id`, `method` and, for `tools/call`,
//! `params.name` and `params.arguments`. Every other member (a response's `result`, other
//! methods' `params`, `_meta`) is held as text that `read.rs` checked as strictly as the rest.
//!
//! What is forwarded is written from this: the fields policy evaluated are serialised from the
//! parsed values, the rest is the checked text. No member can mean one thing to the gateway and
//! another upstream: a duplicate key, the one thing JSON parsers disagree on, is refused anywhere.

use serde_json::value::RawValue;
use serde_json::Value;

/// One JSON-RPC message from a client, classified.
#[derive(Debug)]
pub struct Message {
    pub kind: Kind,
    pub(super) id: Option<Value>,
    pub(super) method: Option<String>,
    pub(super) params: Option<Params>,
    /// Members other than `jsonrpc`, `id`, `method` and `params` (a response's `result` or
    /// `error`), as they came.
    pub(super) others: Members,
}

#[derive(Debug)]
pub(super) enum Params {
    /// `tools/call`: what policy reads, parsed; the rest as it came.
    ToolCall {
        name: String,
        arguments: Option<Value>,
        others: Members,
    },
    /// Any other method's: policy reads only the method name.
    Other(Box<RawValue>),
}

pub(super) type Members = Vec<(String, Box<RawValue>)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Notification,
    /// The client's answer to a server-to-client request (elicitation, sampling, roots).
    Response,
}

/// What a POST body held.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one message is the common body: boxing it would cost an allocation per call"
)]
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
        self.id.as_ref()
    }

    pub fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }

    /// Is this a request or notification of method `name` (a `protocol::method` constant)?
    pub fn is(&self, name: &str) -> bool {
        self.method.as_deref() == Some(name)
    }

    /// `params.name` of a `tools/call`, checked to be a string when the message is classified.
    pub fn tool_name(&self) -> Option<&str> {
        match &self.params {
            Some(Params::ToolCall { name, .. }) => Some(name),
            _ => None,
        }
    }

    pub fn tool_arguments(&self) -> Option<&Value> {
        match &self.params {
            Some(Params::ToolCall { arguments, .. }) => arguments.as_ref(),
            _ => None,
        }
    }

    /// A `tools/call`'s params besides `name` and `arguments` (`_meta`, ...), as the JSON
    /// object's text they are forwarded as; `None` when there are none. Off the call path: an
    /// approval covers them.
    pub fn tool_call_other_params(&self) -> Option<String> {
        let Some(Params::ToolCall { others, .. }) = &self.params else {
            return None;
        };
        if others.is_empty() {
            return None;
        }
        let mut out = Vec::new();
        write_members(&mut out, others);
        out[0] = b'{';
        out.push(b'}');
        Some(String::from_utf8(out).expect("JSON text written from checked text is UTF-8"))
    }

    /// `params`, parsed (off the call path: initialize's capabilities).
    pub fn params(&self) -> Option<Value> {
        let mut text = Vec::new();
        self.params.as_ref()?.write(&mut text);
        serde_json::from_slice(&text).ok()
    }

    pub fn progress_token(&self) -> Option<Value> {
        let meta = match self.params.as_ref()? {
            Params::ToolCall { others, .. } => parse_checked(member(others, "_meta")?),
            Params::Other(raw) => parse_checked(raw).get_mut("_meta")?.take(),
        };
        meta.get("progressToken").cloned()
    }

    /// Lifecycle spec: the client lists its capabilities in initialize; elicitation is one.
    pub fn declares_elicitation(&self) -> bool {
        self.params().is_some_and(|params| {
            params
                .get("capabilities")
                .and_then(|c| c.get("elicitation"))
                .is_some_and(|e| !e.is_null())
        })
    }

    /// A response's `result`, parsed.
    pub fn result(&self) -> Option<Value> {
        member(&self.others, "result").map(parse_checked)
    }

    /// The message as the upstream reads it.
    pub fn to_bytes(&self) -> bytes::Bytes {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(br#"{"jsonrpc":"2.0""#);
        if let Some(id) = &self.id {
            write_member(&mut out, "id", id);
        }
        if let Some(method) = &self.method {
            write_member(&mut out, "method", method);
        }
        if let Some(params) = &self.params {
            out.extend_from_slice(br#","params":"#);
            params.write(&mut out);
        }
        write_members(&mut out, &self.others);
        out.push(b'}');
        out.into()
    }
}

impl Params {
    /// As forwarded: what policy read from its values, the rest as it came.
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Params::Other(raw) => out.extend_from_slice(raw.get().as_bytes()),
            Params::ToolCall {
                name,
                arguments,
                others,
            } => {
                out.extend_from_slice(br#"{"name":"#);
                write_json(out, name);
                if let Some(arguments) = arguments {
                    write_member(out, "arguments", arguments);
                }
                write_members(out, others);
                out.push(b'}');
            }
        }
    }
}

pub(super) fn member<'a>(members: &'a Members, key: &str) -> Option<&'a RawValue> {
    members
        .iter()
        .find(|(name, _)| name == key)
        .map(|(_, raw)| &**raw)
}

/// Text from a checked body parses; `Null` stands in only if that ever stopped being true.
fn parse_checked(raw: &RawValue) -> Value {
    serde_json::from_str(raw.get()).unwrap_or(Value::Null)
}

fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(out, value).expect("JSON values, strings and raw JSON serialise");
}

fn write_member<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, key: &str, value: &T) {
    out.push(b',');
    write_json(out, key);
    out.push(b':');
    write_json(out, value);
}

fn write_members(out: &mut Vec<u8>, members: &Members) {
    for (key, raw) in members {
        write_member(out, key, raw);
    }
}
