//! One exchange: a message from an agent, policed, then forwarded, held for approval or refused,
//! and what it came to as an [`Outcome`]. Each transport renders outcomes once, in its own
//! framing (JSON, SSE, a batch); none of them polices or forwards anything itself.
//!
//! Rooms for what comes next: a transport adds a renderer of [`Outcome`] and calls
//! [`exchange`]; an upstream transport (stdio) adds a way to send what [`forward`] sends.

mod answers;
mod asked;
mod bridge;
mod forward;
mod held;
mod listen;
mod param_headers;
mod per_request;
mod pins;
mod results;
mod rounds;
mod session;
mod tools_list;

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::Stream;
use http::StatusCode;
use serde_json::Value;

pub use asked::Asked;
pub use bridge::modern;
pub use held::HeldCall;
pub use param_headers::ToolHeaders;
pub use session::{end_session, initialize, open_stream, Opened, StreamRefused};

use crate::gateway::{Gateway, Verdict};
use crate::protocol::{Kind, Message, SseEvent};
use crate::session::Session;
use crate::upstream::UpstreamError;
use forward::{forward, refuse, relay};

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
    /// A 2026-07-28 client's `Mcp-Param-*` headers say something else than its arguments.
    #[error("{0}")]
    ParamHeaderMismatch(String),
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
    if asked::is_answer(&message) {
        return asked::take_answer(gateway, session, &message);
    }
    if held::is_elicitation_answer(&message) {
        return Box::pin(held::take_elicitation_answer(gateway, session, &message)).await;
    }
    match gateway.police(session, &message).await {
        Verdict::Pass(pass) => {
            let reply = forward(gateway, session, version, &message, pass, started).await;
            let outcome = relay(gateway, Some(session), &message, reply);
            results::apply(gateway, session, &message, outcome)
        }
        Verdict::Refuse(refusal) => refuse(gateway, session, &message, refusal, started),
        // Boxed, as the answer to an approval question is: rare, and their futures would size
        // every call's, which is moved whole several times per call.
        Verdict::Hold(hold) => Box::pin(held::hold(gateway, session, version, message, hold)).await,
    }
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
