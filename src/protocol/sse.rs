//! A server-sent event as MCP's HTTP transports carry messages in one, and its exact wire form.

use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    /// `None` when the event had no `data:` line at all; `Some("")` for an empty one. The two
    /// differ to a client: a resumption primer (2025-11-25, SEP-1699) is `id:` plus an empty
    /// `data:`, and SSE parsers drop an event with no data line, id and all. Held as `Bytes`
    /// text: an answer of megabytes is read, checked and relayed without being copied.
    pub data: Option<ByteString>,
    pub retry: Option<u64>,
}

/// Data this long without a line break is written as its own frame rather than copied behind
/// the event's other fields: past it, the copy costs more than the frame.
const DATA_FRAME_BYTES: usize = 8 * 1024;

impl SseEvent {
    /// A JSON-RPC message of the gateway's own, as the transports spec sends them (`event: message`).
    pub fn message(data: impl Into<ByteString>) -> Self {
        Self {
            event: Some("message".into()),
            data: Some(data.into()),
            ..Self::default()
        }
    }

    /// The event's data, or "" when it has none.
    pub fn text(&self) -> &str {
        self.data.as_deref().unwrap_or_default()
    }

    /// The event as written on the wire, in one to three frames: each field it has, one line
    /// each (data split at its line breaks), then the blank line that ends it. Long data that is
    /// one line is a frame of its own, shared with the event.
    pub fn encode(&self) -> impl Iterator<Item = Bytes> {
        let data = self.data.as_ref().map(ByteString::as_bytes);
        let shared = data.filter(|data| {
            data.len() >= DATA_FRAME_BYTES && memchr::memchr2(b'\r', b'\n', data).is_none()
        });
        let mut head = BytesMut::with_capacity(32 + shared.map_or(self.text().len(), |_| 0));
        if let Some(name) = &self.event {
            field(&mut head, "event", name);
        }
        if let Some(id) = &self.id {
            field(&mut head, "id", id);
        }
        if let Some(retry) = self.retry {
            field(&mut head, "retry", &retry.to_string());
        }
        match shared {
            Some(_) => head.put_slice(b"data: "),
            None => {
                if let Some(data) = &self.data {
                    field(&mut head, "data", data);
                }
                head.put_u8(b'\n');
            }
        }
        let tail = shared.map(|_| Bytes::from_static(b"\n\n"));
        [Some(head.freeze()), shared.cloned(), tail]
            .into_iter()
            .flatten()
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

    fn wire(event: &SseEvent) -> Vec<u8> {
        event.encode().flat_map(Vec::from).collect()
    }

    #[test]
    fn an_empty_data_line_stays_a_data_line_and_no_data_writes_none() {
        let primer = SseEvent {
            id: Some("7".into()),
            data: Some(ByteString::new()),
            retry: Some(1000),
            ..SseEvent::default()
        };
        assert_eq!(wire(&primer), b"id: 7\nretry: 1000\ndata: \n\n");
        let bare = SseEvent {
            id: Some("8".into()),
            ..SseEvent::default()
        };
        assert_eq!(wire(&bare), b"id: 8\n\n");
    }

    #[test]
    fn multi_line_data_is_one_data_line_each() {
        let event = SseEvent::message("a\nb\r\nc\rd\n");
        assert_eq!(
            wire(&event),
            b"event: message\ndata: a\ndata: b\ndata: cd\ndata: \n\n"
        );
        let named = SseEvent {
            id: Some("1\r\n2".into()),
            ..SseEvent::message("x")
        };
        assert_eq!(wire(&named), b"event: message\nid: 12\ndata: x\n\n");
    }

    #[test]
    fn long_data_of_one_line_is_its_own_frame_and_the_same_bytes() {
        let long = format!("{{\"a\":\"{}\"}}", "x".repeat(DATA_FRAME_BYTES));
        let event = SseEvent::message(long.clone());
        let frames: Vec<Bytes> = event.encode().collect();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[1].as_ptr(), event.data.as_ref().unwrap().as_ptr());
        assert_eq!(
            wire(&event),
            format!("event: message\ndata: {long}\n\n").into_bytes()
        );
        let lines = SseEvent::message(format!("{long}\n{long}"));
        assert_eq!(lines.encode().count(), 1);
        assert_eq!(
            wire(&lines),
            format!("event: message\ndata: {long}\ndata: {long}\n\n").into_bytes()
        );
    }
}
