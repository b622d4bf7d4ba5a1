//! `subscriptions/listen` (MCP 2026-07-28, SEP-2575) for a 2026-07-28 client in front of a
//! handshake-era upstream. At 2026-07-28 a client opts in to change notifications with a listen
//! request whose answer is the stream; a 2025-xx upstream sends them on its session's GET
//! stream. So the listen stream here is the caller's bridged session's GET stream, with the
//! gateway's own `notifications/tools/list_changed` merged in as on a GET (`session.rs`), read
//! through the listen request's filter (`protocol::listen`).
//!
//! - **Policed like any request**: `subscriptions/listen` needs a rule under `methods` (as it
//!   does when passed through to a 2026-07-28 upstream), and each resource it subscribes to is
//!   a `resources/subscribe` of the caller's, policed, audited and sent in the bridged session:
//!   what the policy refuses (or the upstream does not take) is left out of the
//!   acknowledgment, and its updates out of the stream.
//! - **Only what was asked for, and only what can come**: the acknowledgment honours tools
//!   list changes always (the gateway sends its own), prompt and resource changes only when
//!   the upstream has a GET stream to send them on.
//! - **Not a GET stream's other traffic**: logging, progress and the upstream's requests ride
//!   no listen stream at 2026-07-28. A request the upstream sends there is answered by the
//!   gateway (`ping`, or "method not found": nothing could answer it) rather than left waiting.
//! - **Its end**: when the upstream ends its stream the listen request is answered (the
//!   graceful close: the client listens again and refetches); when it breaks, the request's
//!   answer is the error.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use serde_json::{json, Value};

use super::forward::refuse;
use super::session::{open_stream, own_list_changed, StreamRefused};
use super::{collect_answer, exchange, rounds, ExchangeError, Messages, Outcome};
use crate::audit::AuditDecision;
use crate::gateway::{Gateway, Verdict};
use crate::protocol::listen::{self, Subscription};
use crate::protocol::{code, method, parse_body, Body, Message, SseEvent};
use crate::session::Session;
use crate::upstream::UpstreamError;

/// At most this many resources per listen stream: each is a `resources/subscribe` upstream.
/// More are not honoured (the acknowledgment leaves them out), so a large body does not turn
/// into as many upstream requests.
const MAX_RESOURCE_SUBSCRIPTIONS: usize = 64;

/// The listen request `message` of a 2026-07-28 caller whose bridged session is `session`.
pub(super) async fn bridged(
    gateway: &Arc<Gateway>,
    session: &Arc<Session>,
    message: &Message,
) -> Outcome {
    let started = Instant::now();
    let pass = match gateway.police(session, message).await {
        Verdict::Pass(pass) => pass,
        Verdict::Refuse(refusal) => return refuse(gateway, session, message, refusal, started),
        // Method rules ask no person; should one ever, no stream is opened for it.
        Verdict::Hold(_) => return Outcome::Failed(ExchangeError::HeldAgain),
    };
    let opened = match open_stream(gateway, session, session.version, None).await {
        Ok(events) => Ok(Some(events)),
        // The upstream has no stream: only the gateway's own list changes can come.
        Err(StreamRefused::NotOffered) => Ok(None),
        Err(StreamRefused::SessionGone) => {
            Err(UpstreamError::NoAnswer(http::StatusCode::NOT_FOUND).into())
        }
        Err(StreamRefused::Status(status)) => Err(UpstreamError::NoAnswer(status).into()),
        Err(StreamRefused::Failed(err)) => Err(err),
    };
    let failure = opened.as_ref().err().map(ToString::to_string);
    let decision = match &opened {
        Ok(_) => AuditDecision::Allow,
        Err(_) => AuditDecision::UpstreamError,
    };
    let mut record = gateway.audit_record(
        session,
        message,
        decision,
        pass.rule.as_deref(),
        failure.as_deref(),
    );
    record.latency = Some(started.elapsed());
    gateway.record(&record);
    let upstream = match opened {
        Ok(upstream) => upstream,
        Err(err) => {
            gateway.refund(pass);
            return Outcome::Failed(err);
        }
    };
    let asked = Subscription::requested(message.params().as_ref());
    let mut honoured = Subscription {
        tools: asked.tools,
        prompts: asked.prompts && upstream.is_some(),
        resources: asked.resources && upstream.is_some(),
        uris: Vec::new(),
    };
    if upstream.is_some() {
        // Subscribed once the stream is open, so no update after the subscription is missed.
        for uri in asked.uris.iter().take(MAX_RESOURCE_SUBSCRIPTIONS) {
            if subscribe(gateway, session, uri).await {
                honoured.uris.push(uri.clone());
            }
        }
    }
    let id = message.id().cloned().unwrap_or(Value::Null);
    let ack = SseEvent::message(listen::acknowledged(&id, &honoured).to_string());
    let events: Messages = match upstream {
        Some(events) => events,
        None => Box::pin(own_list_changed(session).map(Ok)),
    };
    let relay = Relay {
        gateway: gateway.clone(),
        session: session.clone(),
        honoured,
        id,
    };
    Outcome::Streamed(Box::pin(
        futures::stream::once(async { Ok(ack) }).chain(frames(relay, events)),
    ))
}

/// One `resources/subscribe` of the caller's for `uri`, through the same exchange as any of
/// its requests: did the policy let it through and the upstream take it?
async fn subscribe(gateway: &Arc<Gateway>, session: &Arc<Session>, uri: &str) -> bool {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = json!(format!(
        "mcpgate-listen-{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let request = json!({"jsonrpc": "2.0", "id": id, "method": method::RESOURCES_SUBSCRIBE,
        "params": {"uri": uri}});
    let Ok(Body::Single(message)) = parse_body(request.to_string().as_bytes()) else {
        return false;
    };
    let body = match exchange(gateway, session, session.version, message).await {
        Outcome::Answered { status, body } if status.is_success() => body,
        Outcome::Streamed(messages) => {
            let within = gateway.config.limits.upstream_timeout;
            match collect_answer(messages, &id, within).await {
                Ok(body) => body,
                Err(_) => return false,
            }
        }
        _ => return false,
    };
    serde_json::from_slice::<Value>(&body).is_ok_and(|answer| answer.get("result").is_some())
}

/// What one listen stream relays, and to whom its frames belong.
struct Relay {
    gateway: Arc<Gateway>,
    session: Arc<Session>,
    honoured: Subscription,
    id: Value,
}

impl Relay {
    /// The frame an event of the session's stream becomes, if any.
    async fn frame(&self, event: &SseEvent) -> Option<SseEvent> {
        // A resumption primer: a listen stream is not resumed (the client listens again).
        let message = serde_json::from_str::<Value>(event.text()).ok()?;
        let method = message.get("method").and_then(Value::as_str)?;
        if let Some(asked) = message.get("id") {
            self.answer(method, asked).await;
            return None;
        }
        self.honoured
            .admits(method, message.get("params"))
            .then(|| SseEvent::message(listen::stamped(message.clone(), &self.id).to_string()))
    }

    /// The upstream asked something outside any call, where no 2026-07-28 client can answer.
    async fn answer(&self, method: &str, id: &Value) {
        let response = if method == method::PING {
            json!({"jsonrpc": "2.0", "id": id, "result": {}})
        } else {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": code::METHOD_NOT_FOUND,
                "message": format!("the gateway's MCP 2026-07-28 client cannot be asked {method} outside a call")}})
        };
        if let Err(err) = rounds::send(&self.gateway, &self.session, &response).await {
            tracing::warn!(error = %err, "could not answer the upstream's request on a listen stream");
        }
    }
}

/// The stream after the acknowledgment: the admitted notifications, stamped, then the listen
/// request's result when the upstream ends its stream, or the error when it breaks.
fn frames(relay: Relay, events: Messages) -> Messages {
    Box::pin(futures::stream::unfold(
        Some((relay, events)),
        |state| async move {
            let (relay, mut events) = state?;
            loop {
                match events.next().await {
                    None => {
                        let closed = listen::closed(&relay.id).to_string();
                        return Some((Ok(SseEvent::message(closed)), None));
                    }
                    Some(Err(err)) => return Some((Err(err), None)),
                    Some(Ok(event)) => {
                        if let Some(frame) = relay.frame(&event).await {
                            return Some((Ok(frame), Some((relay, events))));
                        }
                    }
                }
            }
        },
    ))
}
