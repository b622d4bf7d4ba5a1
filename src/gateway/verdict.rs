//! The verdict: what the policy and the rate limiter make of one message, in the words the agent
//! and the audit log will read. The engine decides; this turns its [`Decision`] into permission
//! to forward, a hold for approval, or the exact answer the agent gets instead.

use std::borrow::Cow;
use std::time::Duration;

use serde_json::Value;

use super::Gateway;
use crate::audit::{AuditDecision, AuditRecord};
use crate::config::AnonymousLimits;
use crate::policy::pins::{PinBreak, PinMode};
use crate::policy::{ApprovalVia, Call, CompiledPolicy, Decision, Limits, Subject};
use crate::protocol::{answer, code, method, Kind, Message};
use crate::session::Session;
use crate::state::{Permit, StateError};

/// What the policy and the rate limiter made of one message.
pub enum Verdict {
    Pass(Pass),
    Refuse(Refusal),
    /// A person must approve the call first.
    Hold(Hold),
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
    pub decision: AuditDecision,
    pub rule: Option<String>,
    pub reason: String,
}

/// A call under an approval rule. Its rate limits are taken when it queues a new approval
/// ([`Gateway::take_hold_limits`]), not when it is decided.
pub struct Hold {
    pub rule: String,
    pub reason: String,
    /// How long an approval of this call stays valid.
    pub timeout: Duration,
    pub via: ApprovalVia,
}

/// The engine's word, before the rate limits are taken (which may need the shared store).
enum Decided<'p> {
    Final(Verdict),
    Limited { rule: &'p str, limits: Limits<'p> },
}

/// What stands behind a call besides its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// Nothing: a new call.
    New,
    /// A person approved it.
    Approved,
    /// It is the retry of a call the upstream asked the client something about (a 2026-07-28
    /// input-required round, `exchange/rounds.rs`): the same call, already counted and (under
    /// an approval rule) approved when it was first made.
    Continued,
}

impl Gateway {
    /// Decides one message, failing closed: should deciding ever panic, the message is refused.
    pub async fn police(&self, session: &Session, message: &Message) -> Verdict {
        self.police_as(session, message, Standing::New).await
    }

    /// Decides a call a person has just approved: the policy is consulted again (it may have
    /// changed while the call was held). Its rate limits were taken when it was queued; a rule
    /// that now allows it without approval takes them as any allowed call does.
    pub async fn police_approved(&self, session: &Session, message: &Message) -> Verdict {
        self.police_as(session, message, Standing::Approved).await
    }

    /// Decides the retry of a call that is waiting on the client's answers to the upstream's
    /// questions. The policy decides on the retry's body as on any call (a rule may now deny
    /// it, its arguments must still pass), but it is one call: its rate limits are not taken
    /// again, and an approval rule does not hold it again.
    pub async fn police_continued(&self, session: &Session, message: &Message) -> Verdict {
        self.police_as(session, message, Standing::Continued).await
    }

    async fn police_as(&self, session: &Session, message: &Message, standing: Standing) -> Verdict {
        let policy = self.policy.load_full();
        let decided = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.decide(&policy, session, message, standing)
        }));
        let decided = match decided {
            Ok(Decided::Final(verdict)) => Ok(verdict),
            Ok(Decided::Limited { rule, limits }) => {
                Ok(self.take_limits(session, message, rule, &limits).await)
            }
            Err(panicked) => Err(panicked),
        };
        decided.unwrap_or_else(|_| {
            tracing::error!(
                method = message.method(),
                "deciding a message panicked; refused it"
            );
            let reason = "the gateway could not decide this message, so it was not forwarded";
            Verdict::Refuse(Refusal {
                answer: answer::error(message.id(), code::INTERNAL_ERROR, reason),
                decision: AuditDecision::InternalError,
                rule: None,
                reason: reason.to_owned(),
            })
        })
    }

    /// Responses from the client (to server-to-client requests) carry no method and pass: what
    /// they answer was already policed when the request went out.
    fn decide<'p>(
        &self,
        policy: &'p CompiledPolicy,
        session: &Session,
        message: &Message,
        standing: Standing,
    ) -> Decided<'p> {
        let Some(method) = message.method() else {
            return Decided::Final(Verdict::Pass(Pass {
                permit: None,
                rule: None,
            }));
        };
        let call = Call {
            agent: session.agent.as_deref(),
            method,
            tool: message.tool_name(),
            arguments: message.tool_arguments(),
        };
        let refuse = |decision, rule: &str, reason: Cow<'_, str>, text: String| {
            Verdict::Refuse(Refusal {
                answer: refusal_answer(message, &text),
                decision,
                rule: Some(rule.to_owned()),
                reason: reason.into_owned(),
            })
        };
        // JSON-RPC: a message without an id is a notification, one with an id a request,
        // whatever its method is called.
        let decision = match message.kind {
            Kind::Notification => policy.decide_notification(&call),
            Kind::Request | Kind::Response => policy.decide(&call),
        };
        if let (Decision::Allow { .. } | Decision::Approval { .. }, Some(tool)) =
            (&decision, message.tool_name())
        {
            if let Some(problem) = self.pins.broken(policy, tool) {
                // Warn mode lets a changed definition through (it was audited when seen); two
                // tools of one name are refused in either mode: no one reviewed "which one".
                if policy.pin_mode() == PinMode::Enforce || problem == PinBreak::Duplicate {
                    let rule = format!("tools.{tool}.pin");
                    let reason = format!("this is not the tool that was reviewed: {problem}");
                    let text = format!("Refused by gateway policy ({rule}): {reason}. An operator must review it and pin it again (mcpgate policy pin).");
                    return Decided::Final(refuse(
                        AuditDecision::PinMismatch,
                        &rule,
                        reason.into(),
                        text,
                    ));
                }
            }
        }
        if let (Decision::Allow { rule, .. } | Decision::Approval { rule, .. }, Some(tool)) =
            (&decision, message.tool_name())
        {
            let granted = session.scopes.as_deref();
            let missing = policy.missing_scopes(session.agent.as_deref(), tool, granted);
            if !missing.is_empty() {
                let reason = format!(
                    "the caller's access token lacks the scope {}",
                    missing.join(" ")
                );
                let text = format!("Denied by gateway policy ({rule}): {reason}");
                return Decided::Final(refuse(AuditDecision::Deny, rule, reason.into(), text));
            }
        }
        let verdict = match decision {
            Decision::Lifecycle => Verdict::Pass(Pass {
                permit: None,
                rule: None,
            }),
            Decision::Allow { rule, .. } if standing == Standing::Continued => {
                Verdict::Pass(Pass {
                    permit: None,
                    rule: Some(rule.to_owned()),
                })
            }
            Decision::Allow { rule, limits } => return Decided::Limited { rule, limits },
            Decision::Approval { rule, .. } if standing != Standing::New => Verdict::Pass(Pass {
                permit: None,
                rule: Some(rule.to_owned()),
            }),
            // JSON-RPC: a notification gets no answer, so it cannot wait for a person, and
            // queueing it would let a caller fill the queue with calls nobody waits for.
            Decision::Approval { rule, .. } if message.kind != Kind::Request => {
                let reason = "a call under an approval rule must be a request (with an id); a notification cannot be held for approval";
                let text = format!("Denied by gateway policy ({rule}): {reason}");
                refuse(AuditDecision::Deny, rule, reason.into(), text)
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
                refuse(AuditDecision::Deny, rule, reason, text)
            }
            Decision::InvalidArguments { rule, reason } => {
                let text =
                    format!("Denied by gateway policy ({rule}): arguments refused: {reason}");
                refuse(AuditDecision::InvalidArguments, rule, reason.into(), text)
            }
            Decision::UnknownTool => {
                let name = call.tool.unwrap_or_default();
                let reason = format!("Unknown tool: {name}");
                Verdict::Refuse(Refusal {
                    answer: answer::error(message.id(), code::INVALID_PARAMS, &reason),
                    decision: AuditDecision::UnknownTool,
                    rule: None,
                    reason,
                })
            }
        };
        Decided::Final(verdict)
    }

    async fn take_limits(
        &self,
        session: &Session,
        message: &Message,
        rule: &str,
        limits: &Limits<'_>,
    ) -> Verdict {
        let subject = Subject {
            agent: session.agent.clone(),
            session: session.id.clone(),
            address: match self.config.limits.anonymous_rate_limits {
                AnonymousLimits::Shared => None,
                AnonymousLimits::PerAddress => session.address,
            },
        };
        match self.state.acquire(limits, &subject).await {
            Ok(Ok(permit)) => Verdict::Pass(Pass {
                permit: Some(permit),
                rule: Some(rule.to_owned()),
            }),
            // Fail closed: a limit that cannot be counted is not a limit that passed.
            Err(err) => Verdict::Refuse(state_refusal(message, rule, &err)),
            Ok(Err(exceeded)) => {
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
                    answer: refusal_answer(message, &text),
                    decision: AuditDecision::RateLimited,
                    rule: Some(exceeded.rule),
                    reason,
                })
            }
        }
    }

    /// Gives back the rate-limit units of a call that never happened upstream.
    pub fn refund(&self, pass: Pass) {
        if let Some(permit) = pass.permit {
            self.state.refund(permit);
        }
    }

    /// Takes the rate limits of a held call that is about to queue a new approval: a held call
    /// costs memory and a reviewer's attention, so it counts when it asks. (A call that joins
    /// or uses an approval another call asked for takes nothing: that call paid.) Should the
    /// policy no longer hold the call, nothing is taken here; it is policed again before it is
    /// forwarded.
    pub async fn take_hold_limits(
        &self,
        session: &Session,
        message: &Message,
    ) -> Result<Option<Permit>, Box<Refusal>> {
        let policy = self.policy.load_full();
        let call = Call {
            agent: session.agent.as_deref(),
            method: message.method().unwrap_or_default(),
            tool: message.tool_name(),
            arguments: message.tool_arguments(),
        };
        let Decision::Approval { rule, limits, .. } = policy.decide(&call) else {
            return Ok(None);
        };
        match self.take_limits(session, message, rule, &limits).await {
            Verdict::Refuse(refusal) => Err(Box::new(refusal)),
            Verdict::Pass(pass) => Ok(pass.permit),
            Verdict::Hold(_) => Ok(None),
        }
    }

    /// Audits a lifecycle message (initialize, `server/discover`): it passes without a rule.
    pub fn record_lifecycle(&self, session: &Session, message: &Message) {
        let record = self.audit_record(
            session,
            message,
            AuditDecision::Allow,
            Some("lifecycle"),
            None,
        );
        self.record(&record);
    }

    /// The audit record of `message` in `session`, to be completed by the caller.
    pub fn audit_record<'a>(
        &self,
        session: &'a Session,
        message: &'a Message,
        decision: AuditDecision,
        rule: Option<&'a str>,
        reason: Option<&'a str>,
    ) -> AuditRecord<'a> {
        AuditRecord {
            agent: session.agent.as_deref(),
            session: Some(&session.id),
            tool: message.tool_name(),
            rule,
            reason,
            arguments: message.tool_arguments(),
            ..AuditRecord::of(message.method().unwrap_or("response"), decision)
        }
    }
}

/// The refusal of a call whose rule needs the shared store while it cannot be reached: the
/// agent reads which rule and why, and may retry.
pub fn state_refusal(message: &Message, rule: &str, err: &StateError) -> Refusal {
    let reason = format!("{err}; calls under this rule are refused until it is back");
    let text = format!("Refused by the gateway ({rule}): {reason}");
    Refusal {
        answer: refusal_answer(message, &text),
        decision: AuditDecision::StateUnavailable,
        rule: Some(rule.to_owned()),
        reason,
    }
}

/// A refused `tools/call` is a tool result with `isError` so the model can read why and adapt;
/// other methods get a JSON-RPC error.
fn refusal_answer(message: &Message, text: &str) -> Value {
    if message.is(method::TOOLS_CALL) {
        answer::tool_error(message.id(), text)
    } else {
        answer::error(message.id(), code::POLICY_DENIED, text)
    }
}
