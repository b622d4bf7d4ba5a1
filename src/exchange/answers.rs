//! What the upstream may send back on one exchange, and how it is relayed.
//!
//! Every message is read as strictly as an agent's (`protocol::from_upstream`) and relayed as
//! the gateway writes it from what it read, never as the raw text. Responses go only to the
//! request they answer: on a request's POST, only the response under that request's id, which
//! ends the exchange; on a session's GET stream, or the POST of a notification or a client's
//! response, none at all. An answer to `tools/list` is filtered under any HTTP status. What
//! breaks these rules is not relayed (fail closed): a client matches responses by id, so a
//! response under another id would become the answer to whatever else it has asked, a
//! `tools/list` included.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http::StatusCode;
use serde_json::Value;

use super::tools_list::ToolsFilter;
use super::{ExchangeError, Messages};
use crate::gateway::Gateway;
use crate::protocol::from_upstream::{read_message, read_message_text};
use crate::protocol::{method, Kind, Message, SseEvent};
use crate::session::Session;
use crate::upstream::{EventStream, UpstreamError};

/// The rules for one exchange's answers.
pub(super) struct Answers {
    /// The id of the request sent; `None` when nothing may be answered.
    id: Option<Value>,
    filter: Option<ToolsFilter>,
    /// On a request's POST, where to note that its stream ended before the answer; on a GET
    /// that resumes a stream (`Last-Event-ID`), whose unanswered requests may be answered.
    session: Option<(Arc<Gateway>, Arc<Session>)>,
    resumed: bool,
}

/// What becomes of one event.
enum Relayed {
    Message(SseEvent),
    /// The answer: relayed, and the exchange is over.
    Answer(SseEvent),
    /// A response on a stream that carries none: not relayed.
    Dropped,
}

impl Answers {
    /// The answers to `message`, sent upstream on its own POST.
    pub(super) fn to(
        gateway: &Arc<Gateway>,
        session: Option<&Arc<Session>>,
        message: &Message,
    ) -> Self {
        Self {
            id: (message.kind == Kind::Request)
                .then(|| message.id().cloned())
                .flatten(),
            filter: message
                .is(method::TOOLS_LIST)
                .then(|| ToolsFilter::new(gateway, session)),
            session: session.map(|session| (gateway.clone(), session.clone())),
            resumed: false,
        }
    }

    /// A session's server-to-client stream (GET): requests and notifications only; when it
    /// resumes a stream (2025-11-25), also the answers to the session's requests whose POST
    /// stream ended before them, each once.
    pub(super) fn session_stream(
        gateway: &Arc<Gateway>,
        session: &Arc<Session>,
        resumed: bool,
    ) -> Self {
        Self {
            id: None,
            filter: None,
            session: Some((gateway.clone(), session.clone())),
            resumed,
        }
    }

    /// The stream ended: a request it did not answer may be answered on a resumed one.
    fn ended(&self) {
        if let (Some(id), Some((_, session))) = (&self.id, &self.session) {
            session.await_resumed_answer(id, self.filter.is_some());
        }
    }

    /// A response on a session stream: the answer to a request awaiting one on a resumed
    /// stream (filtered if it was a `tools/list`), or nothing.
    fn resumed_answer(&self, message: &mut Message) -> Result<bool, UpstreamError> {
        let (Some((gateway, session)), true) = (&self.session, self.resumed) else {
            return Ok(false);
        };
        let Some(tools_list) = message.id().and_then(|id| session.take_resumed_answer(id)) else {
            return Ok(false);
        };
        if tools_list {
            ToolsFilter::new(gateway, Some(session)).apply(message)?;
        }
        Ok(true)
    }

    /// What is relayed of a JSON body the upstream answered with `status`: the answer as the
    /// gateway writes it, or an empty body (the status alone).
    pub(super) fn body(&self, status: StatusCode, body: Bytes) -> Result<Bytes, UpstreamError> {
        let Some(id) = &self.id else {
            // A notification or a client's response is answered by a status; a body would
            // answer nothing the client asked, so none is relayed.
            return Ok(Bytes::new());
        };
        if body.is_empty() {
            return Ok(body);
        }
        match self.answer(id, &body) {
            Ok(answer) => Ok(answer),
            // A refusal (4xx, 5xx) whose body is not this request's answer, such as an error
            // page or an error under another id: the status alone says it.
            Err(_) if !status.is_success() => Ok(Bytes::new()),
            Err(err) => Err(err),
        }
    }

    fn answer(&self, id: &Value, data: &Bytes) -> Result<Bytes, UpstreamError> {
        let mut message = read_message(data).map_err(UpstreamError::Unrelayable)?;
        if !message.answers(id) {
            return Err(UpstreamError::NotTheAnswer);
        }
        if let Some(filter) = &self.filter {
            filter.apply(&mut message)?;
        }
        Ok(message.to_bytes_from(data))
    }

    fn event(&self, mut event: SseEvent) -> Result<Relayed, UpstreamError> {
        let data = match &event.data {
            Some(data) if !data.is_empty() => data,
            _ => return Ok(Relayed::Message(event)), // a resumption primer (2025-11-25)
        };
        let mut message = read_message_text(data).map_err(UpstreamError::Unrelayable)?;
        let is_answer = message.kind == Kind::Response;
        if is_answer {
            match &self.id {
                Some(id) if message.answers(id) => {
                    if let Some(filter) = &self.filter {
                        filter.apply(&mut message)?;
                    }
                }
                Some(_) => return Err(UpstreamError::NotTheAnswer),
                None if self.resumed_answer(&mut message)? => {}
                None => {
                    tracing::warn!("the upstream sent a response on a stream that carries none; it was not relayed");
                    return Ok(Relayed::Dropped);
                }
            }
        }
        event.data = Some(message.to_text_from(data));
        // A resumed answer does not end the session's stream.
        Ok(match is_answer && self.id.is_some() {
            true => Relayed::Answer(event),
            false => Relayed::Message(event),
        })
    }
}

/// The upstream's events as messages for the agent, by `answers`' rules. The stream ends with
/// the answer, or with the first failure.
pub(super) fn messages(events: EventStream, answers: Answers) -> Messages {
    let relayed = futures::stream::unfold(Some((events, answers)), |state| async move {
        let (mut events, answers) = state?;
        loop {
            let Some(next) = events.next().await else {
                answers.ended();
                return None;
            };
            let relayed = match next {
                Ok(event) => answers.event(event),
                Err(err) => Err(err),
            };
            return match relayed {
                Ok(Relayed::Message(event)) => Some((Ok(event), Some((events, answers)))),
                Ok(Relayed::Answer(event)) => Some((Ok(event), None)),
                Ok(Relayed::Dropped) => continue,
                Err(err) => Some((Err(ExchangeError::from(err)), None)),
            };
        }
    });
    Box::pin(relayed)
}
