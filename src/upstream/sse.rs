//! Server-sent events from the upstream, read event by event as the bytes arrive.
//!
//! Written here rather than taken from a crate because the gateway must bound every event
//! (`--max-event-bytes`): an upstream that never ends an event must not grow the gateway's memory.

use bytes::{Buf, Bytes, BytesMut};
use futures::{Stream, StreamExt};

use super::UpstreamError;
use crate::protocol::SseEvent;

/// Splits a byte stream into events; each yielded event is complete.
pub fn events<S, E>(
    body: S,
    max_event_bytes: usize,
) -> impl Stream<Item = Result<SseEvent, UpstreamError>>
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: std::fmt::Display,
{
    let state = Parser {
        body: Box::pin(body),
        buffer: BytesMut::new(),
        scanned: 0,
        pending: SseEvent::default(),
        pending_bytes: 0,
        max_event_bytes,
        done: false,
    };
    futures::stream::unfold(state, |mut parser| async move {
        let item = parser.next_event().await?;
        Some((item, parser))
    })
}

struct Parser<S> {
    body: std::pin::Pin<Box<S>>,
    buffer: BytesMut,
    /// How much of `buffer` is known to hold no line ending: each byte is scanned once, however
    /// many chunks a long line arrives in.
    scanned: usize,
    pending: SseEvent,
    pending_bytes: usize,
    max_event_bytes: usize,
    done: bool,
}

impl<S, E> Parser<S>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    async fn next_event(&mut self) -> Option<Result<SseEvent, UpstreamError>> {
        loop {
            while let Some((end, ending)) = self.next_line() {
                if end == 0 {
                    self.buffer.advance(ending);
                    if let Some(event) = self.dispatch() {
                        return Some(Ok(event));
                    }
                    continue;
                }
                self.pending_bytes += end;
                if self.pending_bytes > self.max_event_bytes {
                    return self.fail(UpstreamError::EventTooLarge(self.max_event_bytes));
                }
                field(&mut self.pending, &self.buffer[..end]);
                self.buffer.advance(end + ending);
            }
            if self.done {
                return None;
            }
            if self.buffer.len() > self.max_event_bytes {
                return self.fail(UpstreamError::EventTooLarge(self.max_event_bytes));
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buffer.extend_from_slice(&chunk),
                Some(Err(err)) => {
                    return self.fail(UpstreamError::StreamBroken(err.to_string()));
                }
                None => {
                    // A stream that ends without a blank line still ends its last event.
                    self.done = true;
                    if !self.buffer.is_empty() {
                        self.buffer.extend_from_slice(b"\n");
                    }
                    self.buffer.extend_from_slice(b"\n");
                }
            }
        }
    }

    /// Ends the stream with `err`: nothing still buffered is read after it, so the events that
    /// follow a failure are the same however the bytes were cut into chunks.
    fn fail(&mut self, err: UpstreamError) -> Option<Result<SseEvent, UpstreamError>> {
        self.done = true;
        self.buffer.clear();
        self.scanned = 0;
        self.pending = SseEvent::default();
        Some(Err(err))
    }

    /// Where the next complete line (CRLF, LF or CR ended) ends in `buffer`, and how long its
    /// ending is. The line is read in place, then advanced past: a long `data:` line is copied
    /// once, into the event.
    fn next_line(&mut self) -> Option<(usize, usize)> {
        let Some(found) = memchr::memchr2(b'\n', b'\r', &self.buffer[self.scanned..]) else {
            self.scanned = self.buffer.len();
            return None;
        };
        let end = self.scanned + found;
        // A CR at the very end of the buffer may be the first half of a CRLF: look again when
        // the next chunk arrives.
        if self.buffer[end] == b'\r' && end + 1 == self.buffer.len() && !self.done {
            self.scanned = end;
            return None;
        }
        let ending = if self.buffer[end] == b'\r' && self.buffer.get(end + 1) == Some(&b'\n') {
            2
        } else {
            1
        };
        self.scanned = 0;
        Some((end, ending))
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        self.pending_bytes = 0;
        let event = std::mem::take(&mut self.pending);
        // An id-only event primes resumption (2025-11-25); relay it so the client keeps the id.
        (event.data.is_some() || event.id.is_some()).then_some(event)
    }
}

/// One field line into the event being read. Text that is not UTF-8 is read with replacement
/// characters, as the SSE specification decodes a stream.
fn field(pending: &mut SseEvent, line: &[u8]) {
    if line.starts_with(b":") {
        return; // a comment, used as keep-alive
    }
    let (name, value) = match memchr::memchr(b':', line) {
        Some(colon) => {
            let value = &line[colon + 1..];
            (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
        }
        None => (line, &b""[..]),
    };
    let value = match std::str::from_utf8(value) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(value),
    };
    match name {
        b"data" => match &mut pending.data {
            Some(data) => {
                data.push('\n');
                data.push_str(&value);
            }
            None => pending.data = Some(value.into_owned()),
        },
        b"event" => pending.event = Some(value.into_owned()),
        b"id" if !value.contains('\0') => pending.id = Some(value.into_owned()),
        b"retry" => pending.retry = value.parse().ok(),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(chunks: &[&str], max: usize) -> Vec<Result<SseEvent, String>> {
        let owned: Vec<Result<Bytes, String>> = chunks
            .iter()
            .map(|c| Ok(Bytes::from(c.to_string())))
            .collect();
        events(futures::stream::iter(owned), max)
            .map(|r| r.map_err(|e| e.to_string()))
            .collect()
            .await
    }

    #[tokio::test]
    async fn reads_events_split_across_chunks() {
        let got = parse(
            &[
                "event: message\nid: 7\nda",
                "ta: {\"a\":1}\n",
                "\n: keep-alive\n\ndata: x\r\n\r\n",
            ],
            1024,
        )
        .await;
        assert_eq!(
            got,
            vec![
                Ok(SseEvent {
                    id: Some("7".into()),
                    event: Some("message".into()),
                    data: Some("{\"a\":1}".into()),
                    retry: None
                }),
                Ok(SseEvent {
                    data: Some("x".into()),
                    ..Default::default()
                }),
            ]
        );
    }

    #[tokio::test]
    async fn joins_multi_line_data_and_ends_the_last_event_at_eof() {
        let got = parse(&["data: a\ndata: b"], 1024).await;
        assert_eq!(got[0].as_ref().unwrap().text(), "a\nb");
    }

    #[tokio::test]
    async fn refuses_an_event_larger_than_the_limit() {
        let big = format!("data: {}\n\n", "x".repeat(100));
        let got = parse(&[&big], 50).await;
        assert_eq!(got[0], Err(UpstreamError::EventTooLarge(50).to_string()));
        assert_eq!(got.len(), 1);
        let endless = "x".repeat(100);
        let got = parse(&[&endless, &endless], 50).await;
        assert_eq!(got[0], Err(UpstreamError::EventTooLarge(50).to_string()));
    }

    #[tokio::test]
    async fn nothing_is_read_after_an_event_that_is_too_large() {
        // Found by the upstream_answer fuzz target: in one chunk, the event after the refused
        // one was still read from the buffer; in small chunks it was not.
        let text = format!(
            "data: {}

data: after

",
            "x".repeat(100)
        );
        let whole = parse(&[&text], 50).await;
        assert_eq!(
            whole,
            vec![Err(UpstreamError::EventTooLarge(50).to_string())]
        );
    }

    #[tokio::test]
    async fn a_long_line_in_small_chunks_is_scanned_once() {
        // 4 MiB in 32-byte chunks: rescanning the buffer on every chunk would read ~256 GiB and
        // never finish within the test's time; one scan per byte reads 4 MiB.
        let line = format!("data: {}\n\n", "x".repeat(4 << 20));
        let chunks: Vec<Result<Bytes, String>> = line
            .as_bytes()
            .chunks(32)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let got: Vec<_> = events(futures::stream::iter(chunks), 8 << 20)
            .collect()
            .await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].as_ref().unwrap().text().len(), 4 << 20);
    }

    #[tokio::test]
    async fn a_crlf_split_across_chunks_ends_one_line() {
        let got = parse(&["data: a\r", "\ndata: b\r\n\r\n"], 1024).await;
        assert_eq!(
            got,
            vec![Ok(SseEvent {
                data: Some("a\nb".into()),
                ..Default::default()
            })]
        );
    }
}
