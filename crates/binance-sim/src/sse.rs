//! Answers as Server-Sent Events: `event: message`, an `id:` unique within the session, and the
//! JSON-RPC message as `data:` (transports: streamable HTTP).
//!
//! No priming event (2025-11-25's empty-data event that lets a client resume): this server does
//! not offer resumption (GET is 405), so an id to resume from would promise what it cannot do.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use serde_json::{json, Value};

use super::market::SYMBOLS;
use super::sessions::Session;

/// Progress notifications a slow tool sends before its answer.
pub const PROGRESS_STEPS: u64 = 4;

/// One SSE event carrying one JSON-RPC message (which never contains a newline: serde_json's
/// compact form escapes them).
pub fn event(id: u64, data: &[u8]) -> Bytes {
    let mut event = Vec::with_capacity(data.len() + 40);
    event.extend_from_slice(b"event: message\nid: ");
    event.extend_from_slice(id.to_string().as_bytes());
    event.extend_from_slice(b"\ndata: ");
    event.extend_from_slice(data);
    event.extend_from_slice(b"\n\n");
    Bytes::from(event)
}

/// A stream holding only the response.
pub fn single(session: &Session, message: Vec<u8>) -> Body {
    Body::from(event(session.reserve_event_ids(1), &message))
}

/// `PROGRESS_STEPS` progress notifications, `step` apart, then the response. Each event is its
/// own body frame, produced only when the previous one has been written, so a client sees the
/// progress as it happens.
pub fn with_progress(
    session: &Arc<Session>,
    token: Value,
    response: Vec<u8>,
    step: Duration,
) -> Body {
    let first_id = session.reserve_event_ids(PROGRESS_STEPS + 1);
    let start = Pending {
        sent: 0,
        token,
        response: Some(response),
    };
    let events = futures::stream::unfold(start, move |mut pending| async move {
        let id = first_id + pending.sent;
        let bytes = if pending.sent < PROGRESS_STEPS {
            if pending.sent > 0 {
                tokio::time::sleep(step).await;
            }
            event(id, &progress(&pending.token, pending.sent + 1))
        } else {
            event(id, &pending.response.take()?)
        };
        pending.sent += 1;
        Some((Ok::<_, Infallible>(bytes), pending))
    });
    Body::from_stream(events)
}

/// Where a progress stream is: events sent so far, and the response still to send.
struct Pending {
    sent: u64,
    token: Value,
    response: Option<Vec<u8>>,
}

/// Progress utility: `notifications/progress` with the request's token, an increasing
/// `progress`, the `total` and a human-readable `message`.
fn progress(token: &Value, n: u64) -> Vec<u8> {
    let symbols = SYMBOLS.len() as u64;
    let fetched = (n * symbols).div_ceil(PROGRESS_STEPS);
    let notification = json!({
        "jsonrpc": "2.0",
        "method": "notifications/progress",
        "params": {
            "progressToken": token,
            "progress": n,
            "total": PROGRESS_STEPS,
            "message": format!("Fetched {fetched} of {symbols} symbols"),
        },
    });
    serde_json::to_vec(&notification).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::sessions::Sessions;
    use super::*;

    #[test]
    fn events_have_name_id_and_data() {
        assert_eq!(
            &event(7, b"{\"a\":1}")[..],
            b"event: message\nid: 7\ndata: {\"a\":1}\n\n"
        );
    }

    #[test]
    fn progress_counts_up_to_total() {
        let last: Value = serde_json::from_slice(&progress(&json!("tok"), PROGRESS_STEPS)).unwrap();
        assert_eq!(last["params"]["progress"], last["params"]["total"]);
        assert_eq!(last["params"]["progressToken"], "tok");
        assert_eq!(
            last["params"]["message"],
            format!("Fetched {0} of {0} symbols", SYMBOLS.len())
        );
    }

    #[tokio::test]
    async fn progress_stream_ends_with_the_response() {
        let sessions = Sessions::default();
        let session = sessions.open();
        let body = with_progress(
            &session,
            json!(1),
            b"{\"done\":true}".to_vec(),
            Duration::ZERO,
        );
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let text = std::str::from_utf8(&bytes).unwrap();
        let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(events.len() as u64, PROGRESS_STEPS + 1);
        assert!(events[0].contains("notifications/progress"));
        assert!(events.last().unwrap().ends_with("data: {\"done\":true}"));
    }
}
