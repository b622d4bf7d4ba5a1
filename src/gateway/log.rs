//! One log line per refused or failed call, and per approval queued or decided, carrying the
//! audit record's fields: an operator reading the logs (`kubectl logs`, journald) sees what the
//! audit file says without the file. Allowed calls that succeed are not logged: they are the
//! bulk of the traffic and the audit file has them. Arguments never go to the log.

use tracing::Level;

use crate::audit::{AuditDecision, AuditRecord};

pub(super) fn log_decision(record: &AuditRecord<'_>) {
    let (level, message) = match record.decision {
        AuditDecision::Allow if record.upstream_status.is_some_and(|s| s >= 500) => (
            Level::WARN,
            "upstream answered the call with an error status",
        ),
        AuditDecision::Allow => return,
        AuditDecision::Deny
        | AuditDecision::UnknownTool
        | AuditDecision::InvalidArguments
        | AuditDecision::RateLimited => (Level::INFO, "call refused"),
        AuditDecision::UpstreamError => (Level::WARN, "upstream failed the call"),
        AuditDecision::InternalError => (Level::WARN, "call refused: the gateway failed"),
        AuditDecision::StateUnavailable => (
            Level::WARN,
            "call refused: the shared state store is unreachable",
        ),
        AuditDecision::ApprovalLimited => (Level::INFO, "call refused: approval queue limits"),
        AuditDecision::Unauthorized => (Level::WARN, "request refused: agent key"),
        AuditDecision::UnknownSession => (Level::INFO, "request refused: unknown session"),
        AuditDecision::PinMismatch => (Level::WARN, "tool definition differs from its pin"),
        AuditDecision::Redacted => (Level::INFO, "result changed by result rules"),
        AuditDecision::ApprovalPending => (Level::INFO, "call held for approval"),
        AuditDecision::ApprovalUsed => (Level::INFO, "held call made on its approval"),
        AuditDecision::Approved | AuditDecision::Rejected | AuditDecision::Expired => {
            (Level::INFO, "approval decided")
        }
    };
    let latency_ms = record
        .latency
        .map(|d| (d.as_secs_f64() * 1e6).round() / 1e3);
    macro_rules! emit {
        ($level:ident) => {
            tracing::$level!(
                agent = record.agent,
                session = record.session,
                method = record.method,
                tool = record.tool,
                decision = record.decision.as_str(),
                rule = record.rule,
                reason = record.reason,
                upstream_status = record.upstream_status,
                approval = record.approval,
                reviewer = record.reviewer,
                latency_ms,
                "{message}"
            )
        };
    }
    if level == Level::WARN {
        emit!(warn);
    } else {
        emit!(info);
    }
}
