//! Calls under an approval rule, held while a person decides.
//!
//! A held call is an [`Outcome::Held`]: a client that takes SSE gets its messages at once
//! (progress notifications when it gave a progressToken, the gateway's own `elicitation/create`
//! when the rule asks the user directly) and at the end the upstream's answer (approved) or an
//! `isError` result that says what happened; a JSON-only client waits for the same outcome.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

use super::forward::{forward, refuse, relay};
use super::{ExchangeError, Messages, Outcome};
use crate::approval::{Approval, Ask, Status, Ticket, UseError};
use crate::audit::AuditDecision;
use crate::gateway::{state_refusal, Gateway, Hold, Refusal, Verdict};
use crate::policy::ApprovalVia;
use crate::protocol::{answer, code, method, Kind, Message, SseEvent};
use crate::session::Session;
use crate::state::QueueError;

/// Request ids of the gateway's own `elicitation/create`: an answer carrying one is consumed
/// here, never forwarded, and the prefix keeps them apart from the upstream's ids.
const ELICITATION_PREFIX: &str = "mcpgate-approval-";

/// A call waiting for a person's decision.
pub struct HeldCall {
    gateway: Arc<Gateway>,
    session: Arc<Session>,
    version: &'static str,
    message: Message,
    approval: Approval,
    decided: watch::Receiver<Status>,
    via: ApprovalVia,
}

/// Why a held call was not made (`wait` answers `Ok` when it may go through).
enum NotMade {
    Rejected(Approval),
    Expired(Approval),
    /// Approved, but an identical call made after the approval used it first.
    UsedElsewhere(Approval),
    StillPending(Approval),
    /// The gateway is shutting down: the call is answered, not cut, so the agent repeats it
    /// (on another replica, or on this one once it is back).
    ShuttingDown(Approval),
    /// The shared queue could not be read or the approval not used: the call is not made.
    Unavailable(Approval, String),
}

pub(super) async fn hold(
    gateway: &Arc<Gateway>,
    session: &Arc<Session>,
    version: &'static str,
    message: Message,
    hold: Hold,
) -> Outcome {
    let empty = Value::Object(Default::default());
    let other_params = message.tool_call_other_params();
    let ask = Ask {
        agent: session.agent.as_deref(),
        session: &session.id,
        tool: message.tool_name().unwrap_or_default(),
        arguments: message.tool_arguments().unwrap_or(&empty),
        other_params: other_params.as_deref(),
        rule: &hold.rule,
        reason: &hold.reason,
        timeout: hold.timeout,
    };
    let queued = |approval: &Approval| {
        audit(
            gateway,
            session,
            &message,
            AuditDecision::ApprovalPending,
            approval,
        );
    };
    let started = Instant::now();
    let ticket = match ask_for_approval(gateway, session, &message, &ask, queued).await {
        Ok(ticket) => ticket,
        Err(refusal) => return refuse(gateway, session, &message, *refusal, started),
    };
    match ticket {
        Ticket::Refused(not_queued) => {
            let reason = not_queued.to_string();
            let record = gateway.audit_record(
                session,
                &message,
                AuditDecision::ApprovalLimited,
                Some(&hold.rule),
                Some(&reason),
            );
            gateway.record(&record);
            let text = format!("Not queued for approval ({}): {reason}", hold.rule);
            Outcome::Refused {
                answer: answer::tool_error(message.id(), &text),
                kind: message.kind,
            }
        }
        Ticket::Granted(approval) => {
            audit(
                gateway,
                session,
                &message,
                AuditDecision::ApprovalUsed,
                &approval,
            );
            forward_approved(gateway, session, version, &message).await
        }
        Ticket::Waiting {
            approval,
            created,
            decided,
        } => {
            if created {
                if let Some(webhook) = &gateway.webhook {
                    webhook.announce(&approval);
                }
            }
            Outcome::Held(Box::new(HeldCall {
                gateway: gateway.clone(),
                session: session.clone(),
                version,
                message,
                approval,
                decided,
                via: hold.via,
            }))
        }
    }
}

/// Looks for an approval of this call; if it would queue a new one, takes the rule's rate
/// limits first (given back should another replica or request queue the same call meanwhile).
async fn ask_for_approval(
    gateway: &Gateway,
    session: &Session,
    message: &Message,
    ask: &Ask<'_>,
    queued: impl FnOnce(&Approval),
) -> Result<Ticket, Box<Refusal>> {
    let unavailable = |err: QueueError| match err {
        QueueError::State(err) => Box::new(state_refusal(message, ask.rule, &err)),
        other => Box::new(state_refusal(
            message,
            ask.rule,
            &crate::state::StateError::Unexpected {
                url: "approval queue".into(),
                reason: other.to_string(),
            },
        )),
    };
    if let Some(ticket) = gateway
        .approvals
        .lookup(ask, Instant::now())
        .await
        .map_err(unavailable)?
    {
        return Ok(ticket);
    }
    let permit = gateway.take_hold_limits(session, message).await?;
    let ticket = gateway.approvals.request(ask, Instant::now(), queued).await;
    let created = matches!(ticket, Ok(Ticket::Waiting { created: true, .. }));
    if let (false, Some(permit)) = (created, permit) {
        gateway.state.refund(permit);
    }
    ticket.map_err(unavailable)
}

impl HeldCall {
    /// Waits for the decision; then the call's outcome (never `Held` again).
    pub async fn settle(self: Box<Self>) -> Outcome {
        let call = *self;
        match wait(&call.gateway, &call.approval, call.decided, None).await {
            Ok(()) => {
                forward_approved(&call.gateway, &call.session, call.version, &call.message).await
            }
            Err(not_made) => Outcome::Refused {
                answer: not_made.answer(&call.message),
                kind: Kind::Request,
            },
        }
    }

    /// The call's messages as they happen: the gateway's elicitation (when the rule asks the
    /// user and the client can be asked), progress while it waits, then the answer.
    pub fn into_messages(self: Box<Self>) -> Messages {
        let (sender, received) = mpsc::channel(16);
        tokio::spawn(self.run(sender));
        Box::pin(tokio_stream::wrappers::ReceiverStream::new(received))
    }

    async fn run(self: Box<Self>, events: mpsc::Sender<Result<SseEvent, ExchangeError>>) {
        let call = *self;
        let (gateway, session, message, approval) =
            (&call.gateway, &call.session, &call.message, &call.approval);
        let send = |value: Value| {
            let events = events.clone();
            async move {
                let _ = events.send(Ok(SseEvent::message(value.to_string()))).await;
            }
        };
        if call.via == ApprovalVia::Elicitation && session.elicits {
            match gateway.approvals.mark_elicited(&approval.id).await {
                Ok(()) => send(elicitation_request(approval)).await,
                Err(err) => {
                    tracing::warn!(error = %err, approval = %approval.id, "could not ask the user; the approval stays in the queue")
                }
            }
        }
        let progress = message.progress_token().map(|token| (&events, token));
        if let Err(not_made) = wait(gateway, approval, call.decided, progress).await {
            send(not_made.answer(message)).await;
            return;
        }
        let outcome = forward_approved(gateway, session, call.version, message).await;
        let no_message = |status| {
            let text = format!("upstream answered HTTP {status} with no message");
            answer::error(message.id(), code::UPSTREAM_UNAVAILABLE, &text)
        };
        let mut messages = match outcome {
            Outcome::Streamed(messages) => messages,
            Outcome::Answered { body, .. } if !body.is_empty() => {
                let text = String::from_utf8_lossy(&body).into_owned();
                let _ = events.send(Ok(SseEvent::message(text))).await;
                return;
            }
            Outcome::Answered { status, .. } => return send(no_message(status)).await,
            Outcome::Accepted => return send(no_message(http::StatusCode::ACCEPTED)).await,
            Outcome::Refused { answer, .. } => return send(answer).await,
            Outcome::Failed(err) => {
                let _ = events.send(Err(err)).await;
                return;
            }
            Outcome::Held(_) => {
                let _ = events.send(Err(ExchangeError::HeldAgain)).await;
                return;
            }
        };
        while let Some(item) = messages.next().await {
            if events.send(item).await.is_err() {
                return;
            }
        }
    }
}

/// MCP 2026-07-28 has no server-to-client requests: a rule that asks the user is put to a
/// 2026-07-28 client as an input-required round, the gateway's elicitation embedded in the result
/// under `requestState`, and the client repeats the call with the user's answer
/// ([`answer_round`]).
impl HeldCall {
    /// The key and embedded request of the round, when the rule asks the user; the approval is
    /// then marked as asked, exactly as when the question goes on an SSE stream.
    pub(super) async fn input_request(&self) -> Option<(String, Value)> {
        if self.via != ApprovalVia::Elicitation {
            return None;
        }
        if let Err(err) = self
            .gateway
            .approvals
            .mark_elicited(&self.approval.id)
            .await
        {
            // Asked anyway: an answer the queue cannot match is refused, and the call stays held.
            tracing::warn!(error = %err, approval = %self.approval.id, "could not mark the approval as asked");
        }
        let mut asked = elicitation_request(&self.approval);
        let key = asked["id"].as_str().unwrap_or_default().to_owned();
        let request = json!({"method": asked["method"].take(), "params": asked["params"].take()});
        Some((key, request))
    }
}

/// A 2026-07-28 call repeated with the user's answer to its approval round (`state` is the
/// round's `requestState`, `result` the client's elicitation result): the answer decides the
/// approval like an SSE client's response would. `None` when it approved, and the repeated call
/// goes on to be policed and finds the approval granted; else what the agent gets instead.
pub(super) async fn answer_round(
    gateway: &Gateway,
    session: &Session,
    message: &Message,
    state: &str,
    result: &Value,
) -> Option<Outcome> {
    let approval_id = state.strip_prefix(ELICITATION_PREFIX)?;
    match decide(gateway, session, message, approval_id, result).await {
        Ok(approval) if approval.status == Status::Approved => None,
        Ok(approval) => Some(Outcome::Refused {
            answer: NotMade::Rejected(approval).answer(message),
            kind: message.kind,
        }),
        Err(err) => Some(Outcome::Failed(err)),
    }
}

/// Polices an approved call again (the policy may have changed while it was held), takes its
/// rate limits and forwards it.
async fn forward_approved(
    gateway: &Arc<Gateway>,
    session: &Arc<Session>,
    version: &'static str,
    message: &Message,
) -> Outcome {
    let started = Instant::now();
    match gateway.police_approved(session, message).await {
        Verdict::Pass(pass) => {
            let reply = forward(gateway, session, version, message, pass, started).await;
            let outcome = relay(gateway, Some(session), message, reply);
            super::results::apply(gateway, session, message, outcome)
        }
        Verdict::Refuse(refusal) => refuse(gateway, session, message, refusal, started),
        Verdict::Hold(_) => Outcome::Failed(ExchangeError::HeldAgain),
    }
}

/// Waits for the decision (and uses a granted approval), up to `--approval-hold` or the
/// approval's expiry, whichever is first.
async fn wait(
    gateway: &Gateway,
    approval: &Approval,
    mut decided: watch::Receiver<Status>,
    progress: Option<(&mpsc::Sender<Result<SseEvent, ExchangeError>>, Value)>,
) -> Result<(), NotMade> {
    let hold = gateway.config.approvals.hold;
    let expiry = gateway
        .approvals
        .time_left(&approval.id, Instant::now())
        .await
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
            () = gateway.readiness.stopping() => {
                let current = gateway.approvals.get(&approval.id).await.ok().flatten().unwrap_or_else(|| approval.clone());
                if current.status == Status::Pending {
                    return Err(NotMade::ShuttingDown(current));
                }
                break;
            }
            // The borrow `wait_for` returns is not Send: drop it inside the branch's future.
            () = async { let _ = decided.wait_for(|s| *s != Status::Pending).await; } => break,
            () = tokio::time::sleep_until(deadline) => {
                gateway.expire_approvals();
                break;
            }
            _ = ticks.tick(), if progress.is_some() => {
                if let Some((events, token)) = &progress {
                    step += 1;
                    let note = json!({"jsonrpc": "2.0", "method": method::PROGRESS, "params": {
                        "progressToken": token, "progress": step,
                        "message": format!("waiting for a person to approve ({})", approval.id)}});
                    let _ = events.send(Ok(SseEvent::message(note.to_string()))).await;
                }
            }
        }
    }
    let current = match gateway.approvals.get(&approval.id).await {
        Ok(current) => current.unwrap_or_else(|| approval.clone()),
        Err(err) => return Err(NotMade::Unavailable(approval.clone(), err.to_string())),
    };
    match current.status {
        Status::Approved => match gateway.approvals.use_granted(&approval.id).await {
            Ok(_) => Ok(()),
            Err(QueueError::Use(UseError::Expired(_))) => Err(NotMade::Expired(current)),
            Err(QueueError::State(err)) => Err(NotMade::Unavailable(current, err.to_string())),
            Err(_) => Err(NotMade::UsedElsewhere(current)),
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
            NotMade::Unavailable(a, why) => format!(
                "Approval {} could not be checked ({why}); the call was not made. Repeat exactly \
                 the same call once the gateway's state store is back.",
                a.id
            ),
            NotMade::ShuttingDown(a) => format!(
                "The gateway is shutting down and approval {} ({}: {}) was not decided; the call was \
                 not made. Repeat exactly the same call to ask for approval again.",
                a.id, a.rule, a.reason
            ),
        };
        answer::tool_error(message.id(), &text)
    }
}

/// MCP elicitation (2025-06-18): a form of primitive fields; the user's answer comes back as a
/// JSON-RPC response carrying this request's id.
fn elicitation_request(approval: &Approval) -> Value {
    let arguments = serde_json::to_string_pretty(&approval.arguments).unwrap_or_default();
    json!({
        "jsonrpc": "2.0",
        "id": format!("{ELICITATION_PREFIX}{}", approval.id),
        "method": method::ELICITATION_CREATE,
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

/// Is this `requestState` one of the gateway's own approval rounds (2026-07-28)?
pub(super) fn is_own_round(state: &str) -> bool {
    state.starts_with(ELICITATION_PREFIX)
}

pub(super) fn is_elicitation_answer(message: &Message) -> bool {
    message.kind == Kind::Response
        && message
            .id()
            .and_then(Value::as_str)
            .is_some_and(|id| id.starts_with(ELICITATION_PREFIX))
}

/// Consumes the user's answer to the gateway's own elicitation: it decides the approval and is
/// never forwarded upstream.
pub(super) async fn take_elicitation_answer(
    gateway: &Gateway,
    session: &Session,
    message: &Message,
) -> Outcome {
    let id = message.id().and_then(Value::as_str).unwrap_or_default();
    let approval_id = &id[ELICITATION_PREFIX.len()..];
    let Some(result) = message.result() else {
        // The client could not ask its user (an error answer): the approval stays in the queue.
        return Outcome::Accepted;
    };
    match decide(gateway, session, message, approval_id, &result).await {
        Ok(_) => Outcome::Accepted,
        Err(err) => Outcome::Failed(err),
    }
}

/// Decides an approval by the user's elicitation result, and audits the decision.
async fn decide(
    gateway: &Gateway,
    session: &Session,
    message: &Message,
    approval_id: &str,
    result: &Value,
) -> Result<Approval, ExchangeError> {
    let accepted = result.get("action").and_then(Value::as_str) == Some("accept");
    let content = result.get("content");
    let approve = accepted && content.and_then(|c| c.get("approve")) == Some(&Value::Bool(true));
    let reason = content
        .and_then(|c| c.get("reason"))
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .or_else(|| (!accepted).then(|| "the user declined".to_owned()));
    match gateway
        .approvals
        .decide_by_elicitation(approval_id, &session.id, approve, reason)
        .await
    {
        Ok(approval) => {
            let decision = if approve {
                AuditDecision::Approved
            } else {
                AuditDecision::Rejected
            };
            audit(gateway, session, message, decision, &approval);
            Ok(approval)
        }
        Err(err) => Err(ExchangeError::UnknownElicitation(err.to_string())),
    }
}

fn audit(
    gateway: &Gateway,
    session: &Session,
    message: &Message,
    decision: AuditDecision,
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
    gateway.record(&record);
}
