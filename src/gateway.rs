//! The gateway's shared state and the one decision every message goes through.
//!
//! `police` turns the policy's [`Decision`] plus the rate limiter into either permission to
//! forward or the exact answer the agent gets instead; the transport only moves bytes.

use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use serde_json::{json, Value};

use crate::admission::InFlight;
use crate::approval::webhook::Webhook;
use crate::approval::{Approval, Approvals, Status as ApprovalStatus};
use crate::audit::{AuditLog, AuditRecord};
use crate::auth::AgentKeys;
use crate::config::GatewayConfig;
use crate::policy::{
    ApprovalVia, Call, CompiledPolicy, Decision, Limits, Permit, RateLimiter, Subject,
};
use crate::reload::ReloadStatus;
use crate::session::{Session, SessionStore};
use crate::transport::error::code;
use crate::transport::message::Message;
use crate::upstream::Upstream;

pub struct Gateway {
    pub config: GatewayConfig,
    pub agents: AgentKeys,
    pub in_flight: InFlight,
    pub policy: ArcSwap<CompiledPolicy>,
    pub limiter: RateLimiter,
    pub sessions: SessionStore,
    pub upstream: Upstream,
    pub audit: Option<AuditLog>,
    pub approvals: Approvals,
    pub webhook: Option<Webhook>,
    /// Outcome of policy reloads, for logs, tests and probes to follow.
    pub reloads: tokio::sync::watch::Sender<ReloadStatus>,
}

/// What the policy and the rate limiter made of one message.
pub enum Verdict {
    Pass(Pass),
    Refuse(Refusal),
    /// A person must approve the call first.
    Hold(Hold),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Approved {
    Yes,
    No,
}

/// A call under an approval rule.
pub struct Hold {
    pub rule: String,
    pub reason: String,
    /// How long an approval of this call stays valid.
    pub timeout: Duration,
    pub via: ApprovalVia,
}

/// The policy let the message through.
pub struct Pass {
    /// Rate-limit units taken for this call, given back if the upstream fails.
    pub permit: Option<Permit>,
    pub rule: Option<String>,
}

/// The policy refused the message: `answer` is what the agent gets instead.
pub struct Refusal {
    pub answer: Value,
    pub decision: &'static str,
    pub rule: Option<String>,
    pub reason: String,
}

impl Gateway {
    /// Decides one message, failing closed: should deciding ever panic, the message is refused.
    pub fn police(&self, session: &Session, message: &Message) -> Verdict {
        self.police_as(session, message, Approved::No)
    }

    /// Decides a call a person has just approved: the policy is consulted again (it may have
    /// changed while the call was held) and the rule's rate limits are taken now.
    pub fn police_approved(&self, session: &Session, message: &Message) -> Verdict {
        self.police_as(session, message, Approved::Yes)
    }

    fn police_as(&self, session: &Session, message: &Message, approved: Approved) -> Verdict {
        let decided = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.decide(session, message, approved)
        }));
        decided.unwrap_or_else(|_| {
            tracing::error!(
                method = message.method(),
                "deciding a message panicked; refused it"
            );
            let reason = "the gateway could not decide this message, so it was not forwarded";
            Verdict::Refuse(Refusal {
                answer: error_answer(message.id(), code::INTERNAL_ERROR, reason),
                decision: "internal_error",
                rule: None,
                reason: reason.to_owned(),
            })
        })
    }

    /// Responses from the client (to server-to-client requests) carry no method and pass: what
    /// they answer was already policed when the request went out.
    fn decide(&self, session: &Session, message: &Message, approved: Approved) -> Verdict {
        let Some(method) = message.method() else {
            return Verdict::Pass(Pass {
                permit: None,
                rule: None,
            });
        };
        let policy = self.policy.load();
        let call = Call {
            agent: session.agent.as_deref(),
            method,
            tool: message.tool_name(),
            arguments: message.tool_arguments(),
        };
        let id = message.id();
        match policy.decide(&call) {
            Decision::Lifecycle => Verdict::Pass(Pass {
                permit: None,
                rule: None,
            }),
            Decision::Allow { rule, limits } => self.take_limits(session, message, rule, &limits),
            Decision::Approval { rule, limits, .. } if approved == Approved::Yes => {
                self.take_limits(session, message, rule, &limits)
            }
            Decision::Approval {
                rule,
                reason,
                timeout,
                via,
                ..
            } => Verdict::Hold(Hold {
                rule: rule.to_owned(),
                reason: reason.into_owned(),
                timeout,
                via,
            }),
            Decision::Deny { rule, reason } => {
                let text = format!("Denied by gateway policy ({rule}): {reason}");
                Verdict::Refuse(Refusal {
                    answer: refusal_answer(id, method, &text),
                    decision: "deny",
                    rule: Some(rule.to_owned()),
                    reason: reason.into_owned(),
                })
            }
            Decision::InvalidArguments { rule, reason } => {
                let text =
                    format!("Denied by gateway policy ({rule}): arguments refused: {reason}");
                Verdict::Refuse(Refusal {
                    answer: refusal_answer(id, method, &text),
                    decision: "invalid_arguments",
                    rule: Some(rule.to_owned()),
                    reason,
                })
            }
            Decision::UnknownTool => {
                let name = call.tool.unwrap_or_default();
                let reason = format!("Unknown tool: {name}");
                Verdict::Refuse(Refusal {
                    answer: error_answer(id, code::INVALID_PARAMS, &reason),
                    decision: "unknown_tool",
                    rule: None,
                    reason,
                })
            }
        }
    }

    fn take_limits(
        &self,
        session: &Session,
        message: &Message,
        rule: &str,
        limits: &Limits<'_>,
    ) -> Verdict {
        let subject = Subject {
            agent: session.agent.clone(),
            session: session.id.clone(),
        };
        match self.limiter.acquire(limits, &subject, Instant::now()) {
            Ok(permit) => Verdict::Pass(Pass {
                permit: Some(permit),
                rule: Some(rule.to_owned()),
            }),
            Err(exceeded) => {
                let reason = format!(
                    "at most {} calls per {} s; retry in {} s",
                    exceeded.max,
                    exceeded.window.as_secs(),
                    exceeded.retry_after_secs()
                );
                let text = format!(
                    "Rate limited by gateway policy ({}): {reason}",
                    exceeded.rule
                );
                Verdict::Refuse(Refusal {
                    answer: refusal_answer(
                        message.id(),
                        message.method().unwrap_or_default(),
                        &text,
                    ),
                    decision: "rate_limited",
                    rule: Some(exceeded.rule),
                    reason,
                })
            }
        }
    }

    /// Gives back the rate-limit units of a call that never happened upstream.
    pub fn refund(&self, pass: Pass) {
        if let Some(permit) = pass.permit {
            self.limiter.refund(permit);
        }
    }

    /// Appends an audit record (a no-op without `--audit`). A forwarded call is recorded once the
    /// upstream has answered, with its status, so a failed write is reported to the caller to
    /// log: the call has happened and refusing its answer would not undo it.
    pub fn record(&self, record: &AuditRecord<'_>) -> std::io::Result<()> {
        match &self.audit {
            Some(log) => log.write(record),
            None => Ok(()),
        }
    }

    /// Audits a decision on an approval (approved, rejected, expired) made outside any call.
    pub fn record_approval(&self, approval: &Approval) {
        let decision = match approval.status {
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Rejected => "rejected",
            ApprovalStatus::Expired => "expired",
            ApprovalStatus::Used => "approval_used",
            ApprovalStatus::Pending => "approval_pending",
        };
        let record = AuditRecord {
            agent: approval.agent.as_deref(),
            session: Some(&approval.session),
            method: "tools/call",
            tool: Some(&approval.tool),
            decision,
            rule: Some(&approval.rule),
            reason: approval.decision_reason.as_deref(),
            upstream_status: None,
            latency: None,
            approval: Some(&approval.id),
            reviewer: approval.decided_by.as_deref(),
            arguments: Some(&approval.arguments),
        };
        if let Err(err) = self.record(&record) {
            tracing::error!(error = %err, "could not write the audit log");
        }
    }

    /// Expires the approvals whose time is up, and audits each.
    pub fn expire_approvals(&self) {
        for approval in self.approvals.expire_due(Instant::now()) {
            self.record_approval(&approval);
        }
    }

    pub fn audit_record<'a>(
        &self,
        session: &'a Session,
        message: &'a Message,
        decision: &'a str,
        rule: Option<&'a str>,
        reason: Option<&'a str>,
    ) -> AuditRecord<'a> {
        AuditRecord {
            agent: session.agent.as_deref(),
            session: Some(&session.id),
            method: message.method().unwrap_or("response"),
            tool: message.tool_name(),
            decision,
            rule,
            reason,
            upstream_status: None,
            latency: None,
            approval: None,
            reviewer: None,
            arguments: message.tool_arguments(),
        }
    }
}

/// A refused `tools/call` is a tool result with `isError` so the model can read why and adapt
/// (a JSON-RPC error would reach the client library, not the model); other methods get an error.
fn refusal_answer(id: Option<&Value>, method: &str, text: &str) -> Value {
    if method == "tools/call" {
        tool_error_answer(id, text)
    } else {
        error_answer(id, code::POLICY_DENIED, text)
    }
}

/// A `tools/call` result the model reads: the call was not made, and why.
pub fn tool_error_answer(id: Option<&Value>, text: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id.cloned().unwrap_or(Value::Null),
        "result": { "content": [{ "type": "text", "text": text }], "isError": true },
    })
}

pub fn error_answer(id: Option<&Value>, code: i64, message: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id.cloned().unwrap_or(Value::Null),
        "error": { "code": code, "message": message },
    })
}
