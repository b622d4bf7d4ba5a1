//! Server-sent events from the upstream, read event by event as the bytes arrive.
//!
//! Written here rather than taken from a crate because the gateway must bound every event
//! (`--max-event-bytes`): an upstream that never ends an event must not grow the gateway's memory.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use bytestring::ByteString;
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
    futures::stream::unfold(
        Parser::new(body, max_event_bytes),
        |mut parser| async move {
            let item = parser.next_event().await?;
            Some((item, parser))
        },
    )
}

struct Parser<S> {
    body: std::pin::Pin<Box<S>>,
    /// What is left to read of the last chunk.
    rest: Bytes,
    /// The line being read, as the pieces of the chunks it came in: a long `data:` line is
    /// copied once, into its event, however many chunks it took, and each byte is scanned once.
    line: Vec<Bytes>,
    /// Pieces too small to hold on their own, copied together: an upstream that sends a byte
    /// at a time must not make the gateway hold a `Bytes` (32 bytes) for each.
    small: BytesMut,
    line_bytes: usize,
    /// The last line ended with a CR: an LF right after it is the rest of a CRLF, not a line.
    after_cr: bool,
    pending: Pending,
    pending_bytes: usize,
    max_event_bytes: usize,
    done: bool,
}

impl<S, E> Parser<S>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    fn new(body: S, max_event_bytes: usize) -> Self {
        Self {
            body: Box::pin(body),
            rest: Bytes::new(),
            line: Vec::new(),
            small: BytesMut::new(),
            line_bytes: 0,
            after_cr: false,
            pending: Pending::default(),
            pending_bytes: 0,
            max_event_bytes,
            done: false,
        }
    }

    async fn next_event(&mut self) -> Option<Result<SseEvent, UpstreamError>> {
        loop {
            while !self.rest.is_empty() {
                if std::mem::take(&mut self.after_cr) && self.rest[0] == b'\n' {
                    self.rest.advance(1);
                    continue;
                }
                let Some(at) = memchr::memchr2(b'\n', b'\r', &self.rest) else {
                    let piece = std::mem::take(&mut self.rest);
                    self.add_to_line(piece);
                    if self.pending_bytes + self.line_bytes > self.max_event_bytes {
                        return self.fail(UpstreamError::EventTooLarge(self.max_event_bytes));
                    }
                    break;
                };
                self.after_cr = self.rest[at] == b'\r';
                let piece = self.rest.split_to(at);
                self.rest.advance(1);
                match self.end_line(piece) {
                    Ok(Some(event)) => return Some(Ok(event)),
                    Ok(None) => {}
                    Err(err) => return self.fail(err),
                }
            }
            if self.done {
                return None;
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.rest = chunk,
                Some(Err(err)) => {
                    return self.fail(UpstreamError::StreamBroken(err.to_string()));
                }
                None => {
                    // A stream that ends without a blank line still ends its last line and event.
                    self.done = true;
                    if self.line_bytes > 0 {
                        if let Err(err) = self.end_line(Bytes::new()) {
                            return self.fail(err);
                        }
                    }
                    return self.dispatch().transpose();
                }
            }
        }
    }

    /// Ends the stream with `err`: nothing still buffered is read after it, so the events that
    /// follow a failure are the same however the bytes were cut into chunks.
    fn fail(&mut self, err: UpstreamError) -> Option<Result<SseEvent, UpstreamError>> {
        self.done = true;
        self.rest = Bytes::new();
        self.line.clear();
        self.small.clear();
        self.line_bytes = 0;
        self.pending = Pending::default();
        Some(Err(err))
    }

    fn add_to_line(&mut self, piece: Bytes) {
        const SMALL: usize = 4096;
        self.line_bytes += piece.len();
        if piece.len() < SMALL {
            self.small.extend_from_slice(&piece);
            return;
        }
        if !self.small.is_empty() {
            self.line.push(self.small.split().freeze());
        }
        self.line.push(piece);
    }

    /// The line ends with `last`: a field of the pending event, or (empty) the event's end.
    fn end_line(&mut self, last: Bytes) -> Result<Option<SseEvent>, UpstreamError> {
        // A line that came whole in one chunk is held as a slice of that chunk, not copied.
        let pieces;
        let line = match self.line.is_empty() && self.small.is_empty() {
            true => std::slice::from_ref(&last),
            false => {
                self.add_to_line(last);
                if !self.small.is_empty() {
                    self.line.push(self.small.split().freeze());
                }
                pieces = std::mem::take(&mut self.line);
                &pieces[..]
            }
        };
        let length = line.iter().map(Bytes::len).sum();
        self.line_bytes = 0;
        if length == 0 {
            return self.dispatch();
        }
        self.pending_bytes += length;
        if self.pending_bytes > self.max_event_bytes {
            return Err(UpstreamError::EventTooLarge(self.max_event_bytes));
        }
        self.pending.field(line, length);
        Ok(None)
    }

    fn dispatch(&mut self) -> Result<Option<SseEvent>, UpstreamError> {
        self.pending_bytes = 0;
        let pending = std::mem::take(&mut self.pending);
        let data = pending.data.map(|lines| text(join(lines)));
        // Bytes that are not UTF-8 are read as U+FFFD, three bytes each: the data as read is
        // bounded too.
        if data
            .as_ref()
            .is_some_and(|data| data.len() > self.max_event_bytes)
        {
            return Err(UpstreamError::EventTooLarge(self.max_event_bytes));
        }
        let event = SseEvent {
            id: pending.id,
            event: pending.event,
            data,
            retry: pending.retry,
        };
        // An id-only event primes resumption (2025-11-25); relay it so the client keeps the id.
        Ok((event.data.is_some() || event.id.is_some()).then_some(event))
    }
}

/// The event being read: its data lines are read as text once, joined, when it ends.
#[derive(Default)]
struct Pending {
    id: Option<String>,
    event: Option<String>,
    /// `None` until a `data:` line comes.
    data: Option<Vec<Bytes>>,
    retry: Option<u64>,
}

/// A line's first bytes: the longest field name the gateway reads (`retry`, `event`), its colon
/// and the space that may follow.
const HEAD: usize = 7;

impl Pending {
    /// One field line, `length` bytes in `pieces`, into the event.
    fn field(&mut self, pieces: &[Bytes], length: usize) {
        let mut head = [0; HEAD];
        let bytes = pieces.iter().flat_map(|piece| piece.iter());
        for (slot, byte) in head.iter_mut().zip(bytes) {
            *slot = *byte;
        }
        let head = &head[..length.min(HEAD)];
        let (name, mut start) = match memchr::memchr(b':', head) {
            Some(0) => return, // a comment, used as keep-alive
            Some(colon) => (&head[..colon], colon + 1),
            None if length == head.len() => (head, length),
            None => return, // a field the gateway does not read
        };
        if head.get(start) == Some(&b' ') {
            start += 1;
        }
        let value = value_from(pieces, start, length);
        match name {
            b"data" => self.data.get_or_insert_with(Vec::new).push(value),
            b"event" => self.event = Some(text(value).into()),
            b"id" if !value.contains(&0) => self.id = Some(text(value).into()),
            b"retry" => self.retry = text(value).parse().ok(),
            _ => {}
        }
    }
}

/// The line's bytes from `start` on: a slice of the line when it came in one piece, else the
/// one copy a long `data:` line's bytes take.
fn value_from(pieces: &[Bytes], start: usize, length: usize) -> Bytes {
    if let [piece] = pieces {
        return piece.slice(start..);
    }
    let mut value = BytesMut::with_capacity(length.saturating_sub(start));
    let mut skip = start;
    for piece in pieces {
        let from = skip.min(piece.len());
        value.extend_from_slice(&piece[from..]);
        skip -= from;
    }
    value.freeze()
}

/// An event's data lines as one value, joined by LF.
fn join(mut lines: Vec<Bytes>) -> Bytes {
    if lines.len() == 1 {
        return lines.pop().unwrap_or_default();
    }
    let length = lines.iter().map(Bytes::len).sum::<usize>() + lines.len().saturating_sub(1);
    let mut joined = BytesMut::with_capacity(length);
    for (at, line) in lines.iter().enumerate() {
        if at > 0 {
            joined.put_u8(b'\n');
        }
        joined.put_slice(line);
    }
    joined.freeze()
}

/// Bytes as text; what is not UTF-8 is read with replacement characters, as the SSE
/// specification decodes a stream.
fn text(bytes: Bytes) -> ByteString {
    ByteString::try_from(bytes.clone())
        .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned().into())
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

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
    async fn data_that_outgrows_the_limit_when_read_as_utf8_is_too_large() {
        // Found by the upstream_answer fuzz target: 40 bytes that are not UTF-8 read as 120.
        let mut stream = b"data: ".to_vec();
        stream.extend([0xab; 40]);
        stream.extend(b"\n\n");
        let chunks = vec![Ok::<_, String>(Bytes::from(stream))];
        let got: Vec<_> = events(futures::stream::iter(chunks), 100).collect().await;
        assert!(
            matches!(got[..], [Err(UpstreamError::EventTooLarge(100))]),
            "{got:?}"
        );
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
    async fn events_are_the_same_however_the_stream_is_cut() {
        let stream = "event: message\r\nid: 7\ndata: {\"a\":\r\ndata:  \"\u{e9}\"}\r\r: keep\n\n\
            retry: 1500\nid: 8\n\ndata\nunknown-field: x\ndata:x\r\n\r\ndata: last"
            .as_bytes();
        let cut = |size: usize| {
            let chunks: Vec<Result<Bytes, String>> = stream
                .chunks(size)
                .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
                .collect();
            events(futures::stream::iter(chunks), 1024)
                .map(|event| event.map_err(|err| err.to_string()))
                .collect::<Vec<_>>()
        };
        let whole = cut(stream.len()).await;
        assert_eq!(whole.len(), 4, "{whole:?}");
        let first = whole[0].as_ref().unwrap();
        assert_eq!(first.text(), "{\"a\":\n \"\u{e9}\"}");
        assert_eq!(
            (first.id.as_deref(), first.event.as_deref()),
            (Some("7"), Some("message"))
        );
        assert_eq!(whole[1].as_ref().unwrap().retry, Some(1500));
        assert_eq!(whole[2].as_ref().unwrap().text(), "\nx");
        assert_eq!(whole[3].as_ref().unwrap().text(), "last");
        for size in 1..stream.len() {
            assert_eq!(cut(size).await, whole, "cut every {size} bytes");
        }
    }

    #[test]
    fn a_line_sent_a_byte_at_a_time_is_held_in_few_pieces() {
        let line = format!("data: {}", "x".repeat(100_000));
        let bytes = line
            .into_bytes()
            .into_iter()
            .map(|byte| Ok::<_, String>(Bytes::copy_from_slice(&[byte])));
        let mut parser = Parser::new(
            futures::stream::iter(bytes).chain(futures::stream::pending()),
            1 << 20,
        );
        // Every byte is ready: one poll reads them all, then waits for the line's end.
        assert!(parser.next_event().now_or_never().is_none());
        assert_eq!(parser.line_bytes, 100_006);
        assert!(parser.line.len() <= 1, "{} pieces", parser.line.len());
    }

    #[tokio::test]
    async fn data_that_came_in_one_chunk_is_that_chunk_not_a_copy() {
        let chunk = Bytes::from(format!("data: {}\n\n", "x".repeat(100_000)));
        let chunks = vec![Ok::<_, String>(chunk.clone())];
        let got: Vec<_> = events(futures::stream::iter(chunks), 1 << 20)
            .collect()
            .await;
        let data = got[0].as_ref().unwrap().data.as_ref().unwrap();
        assert_eq!(data.len(), 100_000);
        assert_eq!(data.as_ptr(), chunk[6..].as_ptr());
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
