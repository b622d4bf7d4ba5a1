//! Calls under an approval rule, held open while a person decides.
//!
//! A client that takes SSE gets a stream at once: keep-alives, progress notifications when it
//! gave a progressToken, the gateway's own `elicitation/create` when the rule asks the user
//! directly, and at the end the upstream's answer (approved) or an `isError` result that says
//! what happened. A JSON-only client gets the same outcomes as one JSON answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

use super::error::GatewayError;
use super::headers::AnswerFormat;
use super::message::{Kind, Message};
use super::post::{forward, log_audit_failure, refuse, relay_reply};
use super::relay;
use crate::approval::{Approval, Ask, Status, Ticket, UseError};
use crate::gateway::{Gateway, Hold, Verdict};
use crate::policy::ApprovalVia;
use crate::session::Session;
use crate::upstream::Reply;

/// Request ids of the gateway's own `elicitation/create`: an answer carrying one is consumed
/// here, never forwarded, and the prefix keeps them apart from the upstream's ids.
const ELICITATION_PREFIX: &str = "mcpgate-approval-";

/// Why a held call was not made (`wait` answers `Ok` when it may go through).
enum NotMade {
    Rejected(Approval),
    Expired(Approval),
    /// Approved, but an identical call made after the approval used it first.
    UsedElsewhere(Approval),
    StillPending(Approval),
}

pub async fn hold(
    gateway: &Arc<Gateway>,
    session: &Arc<Session>,
    version: &str,
    message: Message,
    format: AnswerFormat,
    hold: Hold,
) -> Response {
    let empty = Value::Object(Default::default());
    let ask = Ask {
        agent: session.agent.as_deref(),
        session: &session.id,
        tool: message.tool_name().unwrap_or_default(),
        arguments: message.tool_arguments().unwrap_or(&empty),
        rule: &hold.rule,
        reason: &hold.reason,
        timeout: hold.timeout,
    };
    match gateway.approvals.request(&ask, Instant::now()) {
        Ticket::Granted(approval) => {
            audit(gateway, session, &message, "approval_used", &approval);
            forward_approved(gateway, session, version, &message, format).await
        }
        Ticket::Waiting {
            approval,
            created,
            decided,
        } => {
            if created {
                audit(gateway, session, &message, "approval_pending", &approval);
                if let Some(webhook) = &gateway.webhook {
                    webhook.announce(&approval);
                }
            }
            match format {
                AnswerFormat::Json => match wait(gateway, &approval, decided, None).await {
                    Ok(()) => forward_approved(gateway, session, version, &message, format).await,
                    Err(not_made) => axum::Json(not_made.answer(&message)).into_response(),
                },
                AnswerFormat::Stream => {
                    let elicit = hold.via == ApprovalVia::Elicitation && session.elicits;
                    held_stream(
                        gateway, session, version, message, approval, decided, elicit,
                    )
                }
            }
        }
    }
}

fn held_stream(
    gateway: &Arc<Gateway>,
    session: &Arc<Session>,
    version: &str,
    message: Message,
    approval: Approval,
    decided: watch::Receiver<Status>,
    elicit: bool,
) -> Response {
    let (events, received) = mpsc::channel::<Event>(16);
    let gateway = gateway.clone();
    let session = session.clone();
    let version = version.to_owned();
    tokio::spawn(async move {
        if elicit {
            gateway.approvals.mark_elicited(&approval.id);
            let _ = events
                .send(message_event(&elicitation_request(&approval)))
                .await;
        }
        let progress = message.progress_token().map(|token| (&events, token));
        if let Err(not_made) = wait(&gateway, &approval, decided, progress).await {
            let _ = events.send(message_event(&not_made.answer(&message))).await;
            return;
        }
        let started = Instant::now();
        let pass = match gateway.police_approved(&session, &message) {
            Verdict::Pass(pass) => pass,
            Verdict::Refuse(refusal) => {
                let answer = refusal.answer.clone();
                refuse(&gateway, &session, &message, refusal, started);
                let _ = events.send(message_event(&answer)).await;
                return;
            }
            Verdict::Hold(_) => {
                let _ = events.send(message_event(&held_again(&message))).await;
                return;
            }
        };
        match forward(&gateway, &session, &version, &message, pass, started).await {
            Ok(reply) => relay_into(&events, reply, &message).await,
            Err(err) => {
                let _ = events.send(message_event(&err.answer(message.id()))).await;
            }
        }
    });
    relay::sse_response(tokio_stream::wrappers::ReceiverStream::new(received).map(Ok))
}

/// `police_approved` never holds; should it ever, the call is refused rather than forwarded.
fn held_again(message: &Message) -> Value {
    crate::gateway::error_answer(
        message.id(),
        super::error::code::INTERNAL_ERROR,
        "the approved call was held again; it was not made",
    )
}

/// Relays the upstream's answer to an approved call into the held stream.
async fn relay_into(events: &mpsc::Sender<Event>, reply: Reply, message: &Message) {
    match reply {
        Reply::Stream {
            events: mut upstream,
            ..
        } => {
            while let Some(event) = upstream.next().await {
                let event = match event {
                    Ok(event) => relay::to_client_event(event, None, None),
                    Err(err) => message_event(&GatewayError::Upstream(err).answer(message.id())),
                };
                if events.send(event).await.is_err() {
                    return;
                }
            }
        }
        Reply::Json { body, status, .. } if !body.is_empty() => {
            let text = String::from_utf8_lossy(&body).into_owned();
            let _ = events
                .send(Event::default().event("message").data(text))
                .await;
            if !status.is_success() {
                tracing::debug!(%status, "upstream refused an approved call");
            }
        }
        Reply::Json { status, .. } | Reply::Accepted { status } => {
            let answer = crate::gateway::error_answer(
                message.id(),
                super::error::code::UPSTREAM_UNAVAILABLE,
                &format!("upstream answered HTTP {status} with no message"),
            );
            let _ = events.send(message_event(&answer)).await;
        }
    }
}

async fn forward_approved(
    gateway: &Arc<Gateway>,
    session: &Arc<Session>,
    version: &str,
    message: &Message,
    format: AnswerFormat,
) -> Response {
    let started = Instant::now();
    match gateway.police_approved(session, message) {
        Verdict::Pass(pass) => {
            let reply = forward(gateway, session, version, message, pass, started).await;
            relay_reply(gateway, Some(session), message, reply, format).await
        }
        Verdict::Refuse(refusal) => refuse(gateway, session, message, refusal, started),
        Verdict::Hold(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(held_again(message)),
        )
            .into_response(),
    }
}

/// Waits for the decision (and uses a granted approval), up to `--approval-hold` or the approval's expiry, whichever is first.
async fn wait(
    gateway: &Gateway,
    approval: &Approval,
    mut decided: watch::Receiver<Status>,
    progress: Option<(&mpsc::Sender<Event>, Value)>,
) -> Result<(), NotMade> {
    let hold = gateway.config.approvals.hold;
    let expiry = gateway
        .approvals
        .time_left(&approval.id, Instant::now())
        .unwrap_or_default();
    let deadline = tokio::time::Instant::now() + hold.min(expiry);
    // tokio's interval refuses a zero period.
    let every = gateway
        .config
        .approvals
        .progress_every
        .max(Duration::from_millis(1));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut step = 0u64;
    loop {
        tokio::select! {
            // The borrow `wait_for` returns is not Send: drop it inside the branch's future.
            () = async { let _ = decided.wait_for(|s| *s != Status::Pending).await; } => break,
            () = tokio::time::sleep_until(deadline) => {
                gateway.expire_approvals();
                break;
            }
            _ = ticks.tick(), if progress.is_some() => {
                if let Some((events, token)) = &progress {
                    step += 1;
                    let note = json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {
                        "progressToken": token, "progress": step,
                        "message": format!("waiting for a person to approve ({})", approval.id)}});
                    let _ = events.send(message_event(&note)).await;
                }
            }
        }
    }
    let current = gateway
        .approvals
        .get(&approval.id)
        .unwrap_or_else(|| approval.clone());
    match current.status {
        Status::Approved => match gateway.approvals.use_granted(&approval.id, Instant::now()) {
            Ok(_) => Ok(()),
            Err(UseError::Expired(_)) => Err(NotMade::Expired(current)),
            Err(UseError::NotGranted(_)) => Err(NotMade::UsedElsewhere(current)),
        },
        Status::Rejected => Err(NotMade::Rejected(current)),
        Status::Expired => Err(NotMade::Expired(current)),
        Status::Used => Err(NotMade::UsedElsewhere(current)),
        Status::Pending => Err(NotMade::StillPending(current)),
    }
}

impl NotMade {
    /// The tool result the agent gets instead.
    fn answer(&self, message: &Message) -> Value {
        let text = match self {
            NotMade::Rejected(a) => format!(
                "Rejected by {} (approval {}, rule {}): {}. The call was not made.",
                a.decided_by.as_deref().unwrap_or("a reviewer"),
                a.id,
                a.rule,
                a.decision_reason.as_deref().unwrap_or("no reason given")
            ),
            NotMade::Expired(a) => format!(
                "Approval {} expired before it was used; the call was not made. Repeat the call to ask again.",
                a.id
            ),
            NotMade::UsedElsewhere(a) => format!(
                "Approval {} was used by an identical call; this one was not made. Repeat it to ask again.",
                a.id
            ),
            NotMade::StillPending(a) => format!(
                "Waiting for approval {} ({}: {}). The call was not made yet: once a person approves it, \
                 repeat exactly the same call and it will go through once. The approval expires at {}.",
                a.id, a.rule, a.reason, a.expires_at
            ),
        };
        crate::gateway::tool_error_answer(message.id(), &text)
    }
}

/// MCP elicitation (2025-06-18): a form of primitive fields; the user's answer comes back as a
/// JSON-RPC response carrying this request's id.
fn elicitation_request(approval: &Approval) -> Value {
    let arguments = serde_json::to_string_pretty(&approval.arguments).unwrap_or_default();
    json!({
        "jsonrpc": "2.0",
        "id": format!("{ELICITATION_PREFIX}{}", approval.id),
        "method": "elicitation/create",
        "params": {
            "message": format!(
                "The agent wants to call {} ({}). Rule {}: {}.\nArguments:\n{}",
                approval.tool, approval.id, approval.rule, approval.reason, arguments
            ),
            "requestedSchema": {
                "type": "object",
                "properties": {
                    "approve": { "type": "boolean", "title": "Approve this call?" },
                    "reason": { "type": "string", "title": "Reason (optional)" }
                },
                "required": ["approve"]
            }
        }
    })
}

pub fn is_elicitation_answer(message: &Message) -> bool {
    message.kind == Kind::Response
        && message
            .id()
            .and_then(Value::as_str)
            .is_some_and(|id| id.starts_with(ELICITATION_PREFIX))
}

/// Consumes the user's answer to the gateway's own elicitation: it decides the approval and is
/// never forwarded upstream.
pub fn take_elicitation_answer(
    gateway: &Gateway,
    session: &Session,
    message: &Message,
) -> Response {
    let id = message.id().and_then(Value::as_str).unwrap_or_default();
    let approval_id = &id[ELICITATION_PREFIX.len()..];
    let Some(result) = message.result() else {
        // The client could not ask its user (an error answer): the approval stays in the queue.
        return StatusCode::ACCEPTED.into_response();
    };
    let accepted = result.get("action").and_then(Value::as_str) == Some("accept");
    let content = result.get("content");
    let approve = accepted && content.and_then(|c| c.get("approve")) == Some(&Value::Bool(true));
    let reason = content
        .and_then(|c| c.get("reason"))
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .or_else(|| (!accepted).then(|| "the user declined".to_owned()));
    match gateway.approvals.decide_by_elicitation(
        approval_id,
        &session.id,
        approve,
        reason,
        Instant::now(),
    ) {
        Ok(approval) => {
            let decision = if approve { "approved" } else { "rejected" };
            audit(gateway, session, message, decision, &approval);
            StatusCode::ACCEPTED.into_response()
        }
        Err(err) => {
            GatewayError::UnknownElicitation(err.to_string()).into_response_for(message.id())
        }
    }
}

fn message_event(message: &Value) -> Event {
    Event::default().event("message").data(message.to_string())
}

fn audit(
    gateway: &Gateway,
    session: &Session,
    message: &Message,
    decision: &str,
    approval: &Approval,
) {
    let mut record = gateway.audit_record(
        session,
        message,
        decision,
        Some(&approval.rule),
        approval
            .decision_reason
            .as_deref()
            .or(Some(&approval.reason)),
    );
    record.approval = Some(&approval.id);
    record.reviewer = approval.decided_by.as_deref();
    log_audit_failure(gateway.record(&record));
}
