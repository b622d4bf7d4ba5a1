//! Result rules on the way back (`policy::results`): a `tools/call` answer is redacted and
//! capped before the agent sees it, whether it comes as one JSON body or as a stream, where each
//! answer event is treated on its own as it passes (progress and server requests are not
//! results). Each changed answer is audited (decision `redacted`, with the count) before it is
//! relayed. An answer that cannot be read while rules apply is refused, not relayed: it might
//! carry what the rules would have removed.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;

use super::{ExchangeError, Outcome};
use crate::audit::{AuditDecision, AuditRecord};
use crate::gateway::Gateway;
use crate::policy::results::{Applied, ResultRules};
use crate::protocol::{method, peek, Message};
use crate::session::Session;
use crate::upstream::UpstreamError;

/// `outcome` with the result rules for this call applied; unchanged for other messages and for
/// tools without rules.
pub(super) fn apply(
    gateway: &Arc<Gateway>,
    session: &Arc<Session>,
    message: &Message,
    outcome: Outcome,
) -> Outcome {
    if !message.is(method::TOOLS_CALL) {
        return outcome;
    }
    let Some(tool) = message.tool_name() else {
        return outcome;
    };
    let policy = gateway.policy.load();
    let Some(rules) = policy.result_rules(session.agent.as_deref(), tool) else {
        return outcome;
    };
    let rules = rules.clone();
    let audit = Audit {
        gateway: gateway.clone(),
        session: session.clone(),
        tool: tool.to_owned(),
    };
    match outcome {
        Outcome::Answered { status, body } if status.is_success() && !body.is_empty() => {
            match treat(&rules, &body, &audit) {
                Ok(body) => Outcome::Answered { status, body },
                Err(err) => Outcome::Failed(err.into()),
            }
        }
        Outcome::Streamed(messages) => Outcome::Streamed(Box::pin(messages.map(move |event| {
            let mut event = event?;
            if !event.text().is_empty() && !peek::is_request_or_notification(event.text()) {
                let treated = treat(&rules, event.text().as_bytes(), &audit)?;
                event.data = Some(String::from_utf8_lossy(&treated).into_owned().into());
            }
            Ok::<_, ExchangeError>(event)
        }))),
        other => other,
    }
}

struct Audit {
    gateway: Arc<Gateway>,
    session: Arc<Session>,
    tool: String,
}

impl Audit {
    fn record(&self, applied: &Applied) {
        let reason = match applied.withheld {
            Some(size) => format!("result of {size} bytes withheld (results.max_bytes)"),
            None => format!("redacted: {}", applied.matched.join(", ")),
        };
        self.gateway.record(&AuditRecord {
            agent: self.session.agent.as_deref(),
            session: Some(&self.session.id),
            tool: Some(&self.tool),
            rule: Some("results"),
            reason: Some(&reason),
            redactions: Some(applied.redactions),
            ..AuditRecord::of(method::TOOLS_CALL, AuditDecision::Redacted)
        });
    }
}

fn treat(rules: &ResultRules, data: &[u8], audit: &Audit) -> Result<Bytes, UpstreamError> {
    let mut answer: Value =
        serde_json::from_slice(data).map_err(|e| UpstreamError::UnreadableAnswer(e.to_string()))?;
    let applied = rules.apply(&mut answer);
    if !applied.changed() {
        return Ok(Bytes::copy_from_slice(data));
    }
    audit.record(&applied);
    Ok(serde_json::to_vec(&answer)
        .expect("a serde_json::Value always serialises")
        .into())
}
