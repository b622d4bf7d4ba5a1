//! A handshake-era upstream's questions during a call, put to a 2026-07-28 client as
//! input-required rounds (multi round-trip requests, SEP-2322).
//!
//! A 2025-xx server asks its client during a call by sending a request on the call's stream
//! (`elicitation/create`, `sampling/createMessage`, `roots/list`) and waits for the response. A
//! 2026-07-28 client cannot answer a request: it reads a result. So when the bridged upstream
//! asks, the gateway ends the client's request with an `InputRequiredResult` carrying the
//! question in `inputRequests`, and holds the upstream's stream here, unread, under a fresh
//! `requestState`. The client retries the same call with its answer in `inputResponses`; the
//! retry is policed on its body like any call, the answer goes to the upstream as the JSON-RPC
//! response to its question, and the held stream is read on: the final result (under the
//! retry's id), or the next question as the next round.
//!
//! - **The state is a random name, not a sealed token** (`gateway/rounds.rs` holds the rounds).
//!   The round lives in this process (the upstream's open stream is held here), so a state
//!   that opened elsewhere could do nothing there; a lookup gives what a seal would
//!   (unforgeable, bound) without implying it. The round is bound to its caller's session
//!   (agent, or address for anonymous callers) and to the call as policed (method and params,
//!   without the envelope): any other retry is refused as an invalid `requestState`, and the
//!   round stays for its caller.
//! - **One call, once counted.** The retry is policed again (`police_continued`): a rule that
//!   now denies it, or arguments that no longer pass, refuse it and cancel the upstream call.
//!   Its rate limits are not taken again and an approval rule does not hold it again: the
//!   upstream call it continues was counted, and approved, when first made.
//! - **Bounded.** A round waits `--input-round-secs`, and a caller holds at most
//!   `--max-input-rounds-per-agent`; an abandoned round cancels the upstream call
//!   (`notifications/cancelled`) and closes its stream. Beyond the cap, the upstream's question
//!   is answered with an error and the call goes on (the upstream says what it lacked).
//! - **What the client cannot answer, the gateway does.** A question the client declared no
//!   capability for, or any other request, is answered "method not found"; `ping` is answered.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use serde_json::{json, Value};

use super::forward::refuse;
use super::{ExchangeError, Messages, Outcome};
use crate::audit::AuditDecision;
use crate::gateway::rounds::Round;
pub(super) use crate::gateway::rounds::{is_round, Call};
use crate::gateway::{Gateway, Verdict};
use crate::protocol::modern::{self, Envelope};
use crate::protocol::{code, method, Message, SseEvent};
use crate::session::Session;
use crate::upstream::{EventStream, Placement, Reply, UpstreamError};

/// The rule an invalid `requestState` is audited under.
const ROUND_RULE: &str = "input_round";

/// Holds the call's stream (`messages`, after the upstream's question `asked`) until the
/// client's retry or `--input-round-secs`, whichever is first: the round's name, or the stream
/// back when the caller holds the most rounds it may.
fn park(
    gateway: &Arc<Gateway>,
    call: &Call,
    asked: Value,
    messages: Messages,
) -> Result<String, Messages> {
    let limits = &gateway.config.limits;
    let round = Round {
        call: call.clone(),
        asked,
        events: held(messages),
    };
    let state = gateway
        .rounds
        .park(round, limits.max_input_rounds_per_caller)
        .map_err(relayed)?;
    let (gateway, key, wait) = (gateway.clone(), state.clone(), limits.input_round_timeout);
    tokio::spawn(async move {
        tokio::time::sleep(wait).await;
        if let Some(round) = gateway.rounds.take(&key, |_| true) {
            let why = format!(
                "the client did not answer within {} s (--input-round-secs)",
                wait.as_secs()
            );
            abandon(&gateway, round, &why).await;
        }
    });
    Ok(state)
}

/// A relayed stream as the gateway's shared state holds it. Its failures are the upstream's
/// (`answers.rs` and `results.rs` fail with nothing else); should another come, it still ends
/// the stream.
fn held(messages: Messages) -> EventStream {
    Box::pin(messages.map(|item| {
        item.map_err(|err| match err {
            ExchangeError::Upstream(err) => err,
            other => UpstreamError::StreamBroken(other.to_string()),
        })
    }))
}

fn relayed(events: EventStream) -> Messages {
    Box::pin(events.map(|item| item.map_err(ExchangeError::from)))
}

/// `outcome` of `call`, with the upstream's questions on its stream put to the client as rounds.
pub(super) fn watch(
    gateway: &Arc<Gateway>,
    envelope: &Envelope,
    call: Call,
    outcome: Outcome,
) -> Outcome {
    match outcome {
        Outcome::Streamed(messages) => {
            let answer_as = call.upstream_id.clone();
            Outcome::Streamed(watched(
                Watch {
                    gateway: gateway.clone(),
                    envelope: envelope.clone(),
                    call,
                    answer_as,
                },
                messages,
            ))
        }
        other => other,
    }
}

/// The retry of a round's call (`message`, its round fields taken off), carrying the client's
/// `answer` to the question of round `state`.
pub(super) async fn resume(
    gateway: &Arc<Gateway>,
    envelope: &Envelope,
    session: &Arc<Session>,
    message: Message,
    state: &str,
    answer: Option<Value>,
) -> Outcome {
    let started = Instant::now();
    let call = Call::of(session, &message);
    let fits = |round: &Round| round.call.is(&call);
    let round = match answer {
        Some(answer) => gateway
            .rounds
            .take(state, fits)
            .map(|round| (round, answer)),
        None => None,
    };
    let Some((round, answer)) = round else {
        return invalid_state(gateway, session, &message, started);
    };
    let rule = match gateway.police_continued(session, &message).await {
        Verdict::Pass(pass) => pass.rule,
        Verdict::Refuse(refusal) => {
            abandon(
                gateway,
                round,
                "the gateway's policy refused the call's retry",
            )
            .await;
            return refuse(gateway, session, &message, refusal, started);
        }
        Verdict::Hold(_) => {
            abandon(gateway, round, "the call's retry was held").await;
            return Outcome::Failed(ExchangeError::HeldAgain);
        }
    };
    let response = json!({"jsonrpc": "2.0", "id": round.asked, "result": answer});
    let sent = send(gateway, session, &response).await;
    let mut record = gateway.audit_record(
        session,
        &message,
        match sent {
            Ok(()) => AuditDecision::Allow,
            Err(_) => AuditDecision::UpstreamError,
        },
        rule.as_deref(),
        Some("the retry of an input-required round: the client's answer went to the upstream"),
    );
    record.latency = Some(started.elapsed());
    gateway.record(&record);
    if let Err(err) = sent {
        return Outcome::Failed(err.into());
    }
    let watch = Watch {
        gateway: gateway.clone(),
        envelope: envelope.clone(),
        call: round.call,
        answer_as: message.id().cloned().unwrap_or(Value::Null),
    };
    Outcome::Streamed(watched(watch, relayed(round.events)))
}

/// A retry whose `requestState` names no round of this caller and this call: refused, and
/// audited (it may be another caller's state).
fn invalid_state(
    gateway: &Gateway,
    session: &Session,
    message: &Message,
    started: Instant,
) -> Outcome {
    let reason = "the requestState names no open input round of this caller and this call";
    let mut record = gateway.audit_record(
        session,
        message,
        AuditDecision::Deny,
        Some(ROUND_RULE),
        Some(reason),
    );
    record.latency = Some(started.elapsed());
    gateway.record(&record);
    // As the Python SDK words it (`mcp/server/request_state.py`): the reason stays in the log.
    let answer = json!({"jsonrpc": "2.0", "id": message.id(), "error": {
        "code": code::INVALID_PARAMS, "message": "Invalid or expired requestState",
        "data": {"reason": "invalid_request_state"}}});
    Outcome::Refused {
        answer,
        kind: message.kind,
    }
}

/// One call's stream as it is read: what to answer and under which id.
struct Watch {
    gateway: Arc<Gateway>,
    envelope: Envelope,
    call: Call,
    /// The id of the client's request now open: the first call's, or the latest retry's.
    answer_as: Value,
}

/// What becomes of a question of the upstream.
enum Asked {
    /// The gateway answers it itself.
    Answer(Result<Value, (i64, String)>),
    /// The client is asked.
    Round,
}

impl Watch {
    fn asked(&self, asked: &str) -> Asked {
        let not_found = |text: String| Asked::Answer(Err((code::METHOD_NOT_FOUND, text)));
        if asked == method::PING {
            return Asked::Answer(Ok(json!({})));
        }
        let during = self.call.body["method"].as_str().unwrap_or_default();
        match modern::capability_for(asked) {
            None => not_found(format!("Method not found: {asked}")),
            Some(_) if !modern::takes_input(during) => not_found(format!(
                "the gateway cannot put {asked} to its MCP {} client during {during}",
                modern::VERSION
            )),
            Some(capability) if !self.envelope.declares(capability) => not_found(format!(
                "the client declared no {capability} capability, so it cannot be asked {asked}"
            )),
            Some(_) => Asked::Round,
        }
    }

    /// The final answer, under the id of the request now open.
    fn answer(&self, mut event: SseEvent, mut message: Value) -> SseEvent {
        if message["id"] != self.answer_as {
            message["id"] = self.answer_as.clone();
            event.data = Some(message.to_string().into());
        }
        event
    }
}

fn watched(watch: Watch, messages: Messages) -> Messages {
    let read = futures::stream::unfold(Some((messages, watch)), |state| async move {
        let (mut messages, watch) = state?;
        loop {
            let event = match messages.next().await? {
                Ok(event) => event,
                Err(err) => return Some((Err(err), None)),
            };
            let Ok(message) = serde_json::from_str::<Value>(event.text()) else {
                // A resumption primer (no data): as it is.
                return Some((Ok(event), Some((messages, watch))));
            };
            let asked = message.get("method").and_then(Value::as_str);
            match (asked, message.get("id").cloned()) {
                (Some(asked), Some(id)) => {
                    let reply = match watch.asked(asked) {
                        Asked::Answer(reply) => reply,
                        Asked::Round => {
                            let request = json!({"method": asked, "params": message.get("params")});
                            match park(&watch.gateway, &watch.call, id.clone(), messages) {
                                Ok(state) => {
                                    let answer = modern::input_required(
                                        Some(&watch.answer_as),
                                        &state,
                                        request,
                                        &state,
                                    );
                                    return Some((Ok(SseEvent::message(answer.to_string())), None));
                                }
                                Err(unparked) => {
                                    messages = unparked;
                                    let cap =
                                        watch.gateway.config.limits.max_input_rounds_per_caller;
                                    Err((code::OVERLOADED, format!("the client has {cap} questions open already (--max-input-rounds-per-agent)")))
                                }
                            }
                        }
                    };
                    let response = match reply {
                        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
                        Err((code, text)) => json!({"jsonrpc": "2.0", "id": id,
                            "error": {"code": code, "message": text}}),
                    };
                    if let Err(err) = send(&watch.gateway, &watch.call.session, &response).await {
                        return Some((Err(err.into()), None));
                    }
                }
                (None, Some(_)) => return Some((Ok(watch.answer(event, message)), None)),
                _ => return Some((Ok(event), Some((messages, watch)))),
            }
        }
    });
    Box::pin(read)
}

/// Ends a round nobody will answer: the upstream's call is cancelled, its stream closed.
async fn abandon(gateway: &Gateway, round: Round, why: &str) {
    let cancel = json!({"jsonrpc": "2.0", "method": method::CANCELLED,
        "params": {"requestId": round.call.upstream_id, "reason": why}});
    if let Err(err) = send(gateway, &round.call.session, &cancel).await {
        tracing::warn!(error = %err, "could not cancel the upstream call of an abandoned input round");
    }
    tracing::info!(session = %round.call.session.id, reason = why, "input round abandoned; the upstream call was cancelled");
    drop(round.events);
}

/// Sends the gateway's response or notification in `session`, which the upstream takes
/// without an answer.
pub(super) async fn send(
    gateway: &Gateway,
    session: &Session,
    message: &Value,
) -> Result<(), UpstreamError> {
    let placement = Placement {
        session_id: session.upstream_id.as_ref(),
        protocol_version: Some(session.version),
        routing: None,
    };
    match gateway
        .upstream
        .post(message.to_string().into(), placement)
        .await?
    {
        Reply::Accepted { status } | Reply::Json { status, .. } if status.is_success() => Ok(()),
        Reply::Accepted { status } | Reply::Json { status, .. } => Err(UpstreamError::Refused {
            method: "the client's answer",
            error: format!("HTTP {status}"),
        }),
        Reply::Stream { .. } => Ok(()),
    }
}
