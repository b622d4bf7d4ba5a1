//! A server-sent event as MCP's HTTP transports carry messages in one, and its exact wire form.

use bytes::{BufMut, Bytes, BytesMut};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    /// `None` when the event had no `data:` line at all; `Some("")` for an empty one. The two
    /// differ to a client: a resumption primer (2025-11-25, SEP-1699) is `id:` plus an empty
    /// `data:`, and SSE parsers drop an event with no data line, id and all.
    pub data: Option<String>,
    pub retry: Option<u64>,
}

impl SseEvent {
    /// A JSON-RPC message of the gateway's own, as the transports spec sends them (`event: message`).
    pub fn message(data: String) -> Self {
        Self {
            event: Some("message".into()),
            data: Some(data),
            ..Self::default()
        }
    }

    /// The event's data, or "" when it has none.
    pub fn text(&self) -> &str {
        self.data.as_deref().unwrap_or_default()
    }

    /// The event as written on the wire: each field it has, one line each (data split at its
    /// line breaks), then the blank line that ends it.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.text().len() + 32);
        if let Some(name) = &self.event {
            field(&mut out, "event", name);
        }
        if let Some(id) = &self.id {
            field(&mut out, "id", id);
        }
        if let Some(retry) = self.retry {
            field(&mut out, "retry", &retry.to_string());
        }
        if let Some(data) = &self.data {
            field(&mut out, "data", data);
        }
        out.put_u8(b'\n');
        out.freeze()
    }
}

/// One `name: value` line, or, for data, one line per line of the value (LF or CRLF ended).
/// Any other CR is dropped: a reader would take it for a line break. The gateway's own values
/// are JSON, which has line breaks only as whitespace, so nothing it means is lost.
fn field(out: &mut BytesMut, name: &str, value: &str) {
    let mut rest = value.as_bytes();
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    // memchr, not `str::split`: a long data line is scanned once, at memory speed.
    while let Some(at) = memchr::memchr2(b'\r', b'\n', rest) {
        out.put_slice(&rest[..at]);
        if rest[at] == b'\n' && name == "data" {
            out.put_slice(b"\ndata: ");
        }
        rest = &rest[at + 1..];
    }
    out.put_slice(rest);
    out.put_u8(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_data_line_stays_a_data_line_and_no_data_writes_none() {
        let primer = SseEvent {
            id: Some("7".into()),
            data: Some(String::new()),
            retry: Some(1000),
            ..SseEvent::default()
        };
        assert_eq!(&primer.encode()[..], b"id: 7\nretry: 1000\ndata: \n\n");
        let bare = SseEvent {
            id: Some("8".into()),
            ..SseEvent::default()
        };
        assert_eq!(&bare.encode()[..], b"id: 8\n\n");
    }

    #[test]
    fn multi_line_data_is_one_data_line_each() {
        let event = SseEvent::message("a\nb\r\nc\rd\n".into());
        assert_eq!(
            &event.encode()[..],
            b"event: message\ndata: a\ndata: b\ndata: cd\ndata: \n\n"
        );
        let named = SseEvent {
            id: Some("1\r\n2".into()),
            ..SseEvent::message("x".into())
        };
        assert_eq!(&named.encode()[..], b"event: message\nid: 12\ndata: x\n\n");
    }
}
