//! One exchange: a message from an agent, policed, then forwarded, held for approval or refused,
//! and what it came to as an [`Outcome`]. Each transport renders outcomes once, in its own
//! framing (JSON, SSE, a batch); none of them polices or forwards anything itself.
//!
//! Rooms for what comes next: a transport adds a renderer of [`Outcome`] and calls
//! [`exchange`]; an upstream transport (stdio) adds a way to send what [`forward`] sends.

mod held;
mod session;
mod tools_list;

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::StatusCode;
use serde_json::Value;

pub use held::HeldCall;
pub use session::{end_session, initialize, open_stream, Opened, StreamRefused};

use crate::audit::AuditDecision;
use crate::gateway::{Gateway, Pass, Refusal, Verdict};
use crate::protocol::{method, Kind, Message, SseEvent};
use crate::session::Session;
use crate::upstream::{EventStream, Placement, Reply, UpstreamError};
use tools_list::ToolsFilter;

/// Messages streamed to the agent as they come: progress, server-to-client requests, and last
/// the answer. An error ends the stream; the transport renders it as the request's answer.
pub type Messages = Pin<Box<dyn Stream<Item = Result<SseEvent, ExchangeError>> + Send>>;

/// What one message came to.
pub enum Outcome {
    /// Nothing answers it: a notification or a client's response was taken.
    Accepted,
    /// The upstream answered with JSON under this status (an empty body when it sent only the
    /// status).
    Answered {
        status: StatusCode,
        body: Bytes,
    },
    /// The upstream streams its answer.
    Streamed(Messages),
    /// Held until a person decides.
    Held(Box<HeldCall>),
    /// The gateway answers itself: the policy or a reviewer refused. `kind` is what was refused.
    Refused {
        answer: Value,
        kind: Kind,
    },
    Failed(ExchangeError),
}

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("the gateway holds its maximum of {0} sessions (--max-sessions); end unused sessions with DELETE or retry later")]
    TooManySessions(usize),
    #[error("this answer matches no approval question this session was asked: {0}")]
    UnknownElicitation(String),
    /// `police_approved` never holds; should it ever, the call is refused rather than forwarded.
    #[error("the approved call was held again; it was not made")]
    HeldAgain,
}

/// Polices `message` and carries it as far as the policy allows.
pub async fn exchange(
    gateway: &Arc<Gateway>,
    session: &Arc<Session>,
    version: &'static str,
    message: Message,
) -> Outcome {
    let started = Instant::now();
    if held::is_elicitation_answer(&message) {
        return held::take_elicitation_answer(gateway, session, &message);
    }
    match gateway.police(session, &message) {
        Verdict::Pass(pass) => {
            let reply = forward(gateway, session, version, &message, pass, started).await;
            relay(gateway, Some(session), &message, reply)
        }
        Verdict::Refuse(refusal) => refuse(gateway, session, &message, refusal, started),
        Verdict::Hold(hold) => held::hold(gateway, session, version, message, hold).await,
    }
}

/// Audits a refusal; the agent gets the refusal's answer.
fn refuse(
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
async fn forward(
    gateway: &Gateway,
    session: &Session,
    version: &str,
    message: &Message,
    pass: Pass,
    started: Instant,
) -> Result<Reply, UpstreamError> {
    let placement = Placement {
        session_id: session.upstream_id.as_ref(),
        protocol_version: Some(version),
    };
    let reply = gateway.upstream.post(message.to_bytes(), placement).await;
    let (status, decision) = match &reply {
        Ok(Reply::Json { status, .. } | Reply::Accepted { status }) => {
            (Some(status.as_u16()), AuditDecision::Allow)
        }
        Ok(Reply::Stream { .. }) => (Some(200), AuditDecision::Allow),
        Err(_) => (None, AuditDecision::UpstreamError),
    };
    let mut record = gateway.audit_record(session, message, decision, pass.rule.as_deref(), None);
    record.upstream_status = status;
    record.latency = Some(started.elapsed());
    gateway.record(&record);
    if reply.is_err() || status.is_some_and(|s| s >= 500) {
        gateway.refund(pass);
    }
    if let Ok(Reply::Json { status, .. }) = &reply {
        if *status == StatusCode::NOT_FOUND {
            // The upstream forgot the session: so must we, so the client starts a new one.
            gateway.sessions.end(&session.id);
        }
    }
    reply
}

/// The upstream's reply as an outcome; a `tools/list` answer is filtered on the way, whichever
/// shape it comes in.
fn relay(
    gateway: &Arc<Gateway>,
    session: Option<&Arc<Session>>,
    message: &Message,
    reply: Result<Reply, UpstreamError>,
) -> Outcome {
    let filter = message
        .is(method::TOOLS_LIST)
        .then(|| ToolsFilter::new(gateway, session));
    match reply {
        Err(err) => Outcome::Failed(err.into()),
        Ok(Reply::Accepted { .. }) => Outcome::Accepted,
        Ok(Reply::Json { status, body, .. }) => match &filter {
            Some(filter) if status.is_success() => match filter.apply(&body) {
                Ok(body) => Outcome::Answered { status, body },
                Err(err) => Outcome::Failed(err.into()),
            },
            _ => Outcome::Answered { status, body },
        },
        Ok(Reply::Stream { events, .. }) => Outcome::Streamed(messages(events, filter)),
    }
}

/// The upstream's events as messages for the agent, filtered when they answer `tools/list`.
fn messages(events: EventStream, filter: Option<ToolsFilter>) -> Messages {
    Box::pin(events.map(move |event| {
        let event = event?;
        match &filter {
            Some(filter) => filter.event(event).map_err(ExchangeError::from),
            None => Ok(event),
        }
    }))
}

/// Reads `messages` until the answer to `id`, for clients that take only JSON: what else the
/// stream carries (progress, server requests) has no way to reach them.
pub async fn collect_answer(
    messages: Messages,
    id: &Value,
    within: Duration,
) -> Result<Bytes, ExchangeError> {
    let answer = crate::upstream::await_answer(messages, id, within).await?;
    Ok(Bytes::from(answer))
}
