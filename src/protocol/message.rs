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

use bytes::Bytes;
use bytestring::ByteString;
use serde_json::Value;

use crate::json::scan::Scan;

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
    Other(Kept),
}

pub(super) type Members = Vec<(String, Kept)>;

/// A member's JSON text as it came, checked as strictly as what is parsed (`read.rs`), or as
/// serde_json wrote it: forwarded byte for byte. A large answer's `result` shares the body it
/// came in rather than being copied out of it.
#[derive(Debug, Clone)]
pub(super) struct Kept(Bytes);

impl Kept {
    pub(super) fn copied(text: &str) -> Self {
        Self(Bytes::copy_from_slice(text.as_bytes()))
    }

    /// `text`, which must lie within `body`, without copying it.
    pub(super) fn shared(body: &Bytes, text: &str) -> Self {
        Self(body.slice_ref(text.as_bytes()))
    }

    pub(super) fn written(text: String) -> Self {
        Self(text.into())
    }

    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
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

    /// The same message under another id (a request the gateway sends under an id of its own).
    pub fn with_id(mut self, id: Value) -> Self {
        self.id = Some(id);
        self
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
            Params::Other(kept) => parse_checked(kept).get_mut("_meta")?.take(),
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

    /// This message with `entries` set in `params._meta` (what else `_meta` held is kept, and
    /// `params` made if there were none): how the gateway writes the 2026-07-28 envelope into
    /// a handshake-era client's request. What policy read is unchanged.
    pub fn with_meta(&self, entries: serde_json::Map<String, Value>) -> Message {
        let merged = |meta: Option<&Kept>| {
            let mut meta = match meta.map(parse_checked) {
                Some(Value::Object(meta)) => meta,
                _ => serde_json::Map::new(),
            };
            meta.extend(entries);
            Kept::written(Value::Object(meta).to_string())
        };
        let params = match &self.params {
            Some(Params::ToolCall {
                name,
                arguments,
                others,
            }) => {
                let mut others = others.clone();
                let meta = merged(member(&others, "_meta"));
                others.retain(|(key, _)| key != "_meta");
                others.push(("_meta".into(), meta));
                Params::ToolCall {
                    name: name.clone(),
                    arguments: arguments.clone(),
                    others,
                }
            }
            other => {
                // Checked text without duplicate keys: read back as members, in their order.
                let mut members: Members = match other {
                    Some(Params::Other(kept)) => object_members(kept),
                    _ => Vec::new(),
                };
                let meta = merged(member(&members, "_meta"));
                members.retain(|(key, _)| key != "_meta");
                members.push(("_meta".into(), meta));
                let mut text = Vec::new();
                write_members(&mut text, &members);
                text[0] = b'{';
                text.push(b'}');
                let text = String::from_utf8(text).expect("JSON text is UTF-8");
                Params::Other(Kept::written(text))
            }
        };
        Message {
            kind: self.kind,
            id: self.id.clone(),
            method: self.method.clone(),
            params: Some(params),
            others: self.others.clone(),
        }
    }

    /// The message as the upstream reads it.
    pub fn to_bytes(&self) -> Bytes {
        // Sized for the members kept as they came (a result can be megabytes): one allocation.
        let kept: usize = self
            .others
            .iter()
            .map(|(key, kept)| key.len() + kept.as_bytes().len() + 4)
            .sum();
        let mut out = Vec::with_capacity(128 + kept);
        self.write(&mut out);
        out.into()
    }

    /// [`Self::to_bytes`] for a message read from `body`: `body` itself when it is, byte for
    /// byte, what would be written (an upstream that writes compact JSON in JSON-RPC's member
    /// order: a large answer is then relayed without being copied), else the message written.
    pub fn to_bytes_from(&self, body: &Bytes) -> Bytes {
        match self.written_as(body) {
            true => body.clone(),
            false => self.to_bytes(),
        }
    }

    /// [`Self::to_bytes_from`] as text (an SSE event's data).
    pub fn to_text_from(&self, text: &ByteString) -> ByteString {
        match self.written_as(text.as_bytes()) {
            true => text.clone(),
            false => {
                ByteString::try_from(self.to_bytes()).expect("the gateway writes JSON as UTF-8")
            }
        }
    }

    /// Would this message be written as exactly `body`?
    fn written_as(&self, body: &Bytes) -> bool {
        let mut same = SameAs {
            body,
            at: 0,
            same: true,
        };
        self.write(&mut same);
        same.same && same.at == body.len()
    }

    fn write(&self, out: &mut impl Sink) {
        out.bytes(br#"{"jsonrpc":"2.0""#);
        if let Some(id) = &self.id {
            write_member(out, br#","id":"#, id);
        }
        if let Some(method) = &self.method {
            write_member(out, br#","method":"#, method);
        }
        if let Some(params) = &self.params {
            out.bytes(br#","params":"#);
            params.write(out);
        }
        write_members(out, &self.others);
        out.bytes(b"}");
    }
}

/// Where a message is written: the bytes the gateway writes, and the members kept as they came.
trait Sink: std::io::Write {
    fn bytes(&mut self, bytes: &[u8]);
    fn kept(&mut self, kept: &Kept);
}

impl Sink for Vec<u8> {
    fn bytes(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    fn kept(&mut self, kept: &Kept) {
        self.extend_from_slice(kept.as_bytes());
    }
}

/// Compares what a message would be written as with the body it was read from, writing
/// nothing. A member kept as a slice of that body at the very place it would be written is the
/// same bytes without being compared.
struct SameAs<'b> {
    body: &'b Bytes,
    at: usize,
    same: bool,
}

impl Sink for SameAs<'_> {
    fn bytes(&mut self, bytes: &[u8]) {
        let end = self.at + bytes.len();
        self.same &= self.body.get(self.at..end) == Some(bytes);
        self.at = end;
    }

    fn kept(&mut self, kept: &Kept) {
        let kept = kept.as_bytes();
        let in_place = std::ptr::eq(kept.as_ptr(), self.body.as_ptr().wrapping_add(self.at))
            && self.at + kept.len() <= self.body.len();
        match in_place {
            true => self.at += kept.len(),
            false => self.bytes(kept),
        }
    }
}

impl std::io::Write for SameAs<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Params {
    /// As forwarded: what policy read from its values, the rest as it came.
    fn write(&self, out: &mut impl Sink) {
        match self {
            Params::Other(kept) => out.kept(kept),
            Params::ToolCall {
                name,
                arguments,
                others,
            } => {
                out.bytes(br#"{"name":"#);
                write_json(out, name);
                if let Some(arguments) = arguments {
                    write_member(out, br#","arguments":"#, arguments);
                }
                write_members(out, others);
                out.bytes(b"}");
            }
        }
    }
}

pub(super) fn member<'a>(members: &'a Members, key: &str) -> Option<&'a Kept> {
    members
        .iter()
        .find(|(name, _)| name == key)
        .map(|(_, kept)| kept)
}

/// The members of a checked JSON object's text, in order, each as its text.
fn object_members(object: &Kept) -> Members {
    let mut members = Vec::new();
    let Ok(text) = std::str::from_utf8(object.as_bytes()) else {
        return members;
    };
    let read = Scan::new(text).members(|key, scan| {
        members.push((key.into_owned(), Kept::copied(scan.value()?)));
        Ok(())
    });
    match read {
        Ok(_) => members,
        Err(_) => Vec::new(),
    }
}

/// Text from a checked body parses; `Null` stands in only if that ever stopped being true.
fn parse_checked(kept: &Kept) -> Value {
    serde_json::from_slice(kept.as_bytes()).unwrap_or(Value::Null)
}

fn write_json<T: serde::Serialize + ?Sized>(out: &mut impl Sink, value: &T) {
    serde_json::to_writer(out, value).expect("JSON values and strings serialise");
}

/// A member the gateway names: `comma_key_colon` is written as is (`,"id":`).
fn write_member<T>(out: &mut impl Sink, comma_key_colon: &[u8], value: &T)
where
    T: serde::Serialize + ?Sized,
{
    out.bytes(comma_key_colon);
    write_json(out, value);
}

fn write_members(out: &mut impl Sink, members: &Members) {
    for (key, kept) in members {
        write_key(out, key);
        out.kept(kept);
    }
}

fn write_key(out: &mut impl Sink, key: &str) {
    out.bytes(b",");
    write_json(out, key);
    out.bytes(b":");
}
