//! Carrying a message the policy let through to the upstream and its reply back as an
//! [`Outcome`], or recording a refusal: the steps every exchange (single, held, session) shares.

use std::sync::Arc;
use std::time::Instant;

use http::StatusCode;

use super::answers::{messages, Answers};
use super::Outcome;
use crate::audit::AuditDecision;
use crate::gateway::{Gateway, Pass, Refusal};
use crate::metrics::UpstreamOutcome;
use crate::protocol::Message;
use crate::session::Session;
use crate::upstream::{Placement, Reply, UpstreamError};

/// Audits a refusal; the agent gets the refusal's answer.
pub(super) fn refuse(
    gateway: &Gateway,
    session: &Session,
    message: &Message,
    refusal: Refusal,
    started: Instant,
) -> Outcome {
    let mut record = gateway.audit_record(
        session,
        message,
        refusal.decision,
        refusal.rule.as_deref(),
        Some(&refusal.reason),
    );
    record.latency = Some(started.elapsed());
    gateway.record(&record);
    Outcome::Refused {
        answer: refusal.answer,
        kind: message.kind,
    }
}

/// Sends a message the policy let through, audits the outcome, and gives the rate-limit units
/// back if the upstream failed to take it.
pub(super) async fn forward(
    gateway: &Arc<Gateway>,
    session: &Arc<Session>,
    version: &'static str,
    message: &Message,
    pass: Pass,
    started: Instant,
) -> Result<Reply, UpstreamError> {
    let sent = Instant::now();
    let reply = if session.modern_upstream {
        super::per_request::send(gateway, session, message).await
    } else {
        let placement = Placement {
            session_id: session.upstream_id.as_ref(),
            protocol_version: Some(version),
            routing: None,
        };
        gateway.upstream.post(message.to_bytes(), placement).await
    };
    observe_upstream(gateway, message, sent, &reply);
    let (status, decision) = match &reply {
        Ok(Reply::Json { status, .. } | Reply::Accepted { status }) => {
            (Some(status.as_u16()), AuditDecision::Allow)
        }
        Ok(Reply::Stream { .. }) => (Some(200), AuditDecision::Allow),
        Err(_) => (None, AuditDecision::UpstreamError),
    };
    // A failure's text is its reason: the operator reading the record needs it.
    let error = reply.as_ref().err().map(ToString::to_string);
    let mut record = gateway.audit_record(
        session,
        message,
        decision,
        pass.rule.as_deref(),
        error.as_deref(),
    );
    record.upstream_status = status;
    record.latency = Some(started.elapsed());
    gateway.record(&record);
    if reply.is_err() || status.is_some_and(|s| s >= 500) {
        gateway.refund(pass);
    }
    if let Ok(Reply::Json { status, .. }) = &reply {
        // A 2026-07-28 upstream keeps no session to forget: its 404 is "method not found".
        if *status == StatusCode::NOT_FOUND && !session.modern_upstream {
            // The upstream forgot the session: so must every replica, so the client starts a
            // new one.
            if let Err(err) = gateway.end_session(session).await {
                tracing::warn!(error = %err, "could not revoke a session the upstream forgot");
            }
        }
    }
    reply
}

/// Counts one exchange with the upstream in the metrics, when they are on.
pub(super) fn observe_upstream(
    gateway: &Gateway,
    message: &Message,
    sent: Instant,
    reply: &Result<Reply, UpstreamError>,
) {
    let Some(metrics) = &gateway.metrics else {
        return;
    };
    let outcome = match reply {
        Ok(Reply::Json { status, .. } | Reply::Accepted { status }) if !status.is_success() => {
            UpstreamOutcome::Refused
        }
        Ok(_) => UpstreamOutcome::Answered,
        Err(err) if err.is_timeout() => UpstreamOutcome::TimedOut,
        Err(_) => UpstreamOutcome::Failed,
    };
    let kind = match reply {
        Err(err) => Some(err.kind()),
        Ok(Reply::Json { status, .. }) if status.is_server_error() => Some("error_status"),
        Ok(_) => None,
    };
    metrics.upstream(message.method(), outcome, sent.elapsed(), kind);
}

/// The upstream's reply as an outcome, by the rules of `answers.rs`: only the answer to this
/// message is relayed, and a `tools/list` answer is filtered whichever shape it comes in.
pub(super) fn relay(
    gateway: &Arc<Gateway>,
    session: Option<&Arc<Session>>,
    message: &Message,
    reply: Result<Reply, UpstreamError>,
) -> Outcome {
    let answers = Answers::to(gateway, session, message);
    match reply {
        Err(err) => Outcome::Failed(err.into()),
        Ok(Reply::Accepted { .. }) => Outcome::Accepted,
        Ok(Reply::Json { status, body, .. }) => match answers.body(status, body) {
            Ok(body) => Outcome::Answered { status, body },
            Err(err) => Outcome::Failed(err.into()),
        },
        Ok(Reply::Stream { events, .. }) => Outcome::Streamed(messages(events, answers)),
    }
}
