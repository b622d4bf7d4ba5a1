//! A 2026-07-28 upstream's questions, put to a handshake-era client (the reverse of
//! `rounds.rs`). At 2026-07-28 a server asks for input in its result (`InputRequiredResult`:
//! `inputRequests`, `requestState`) and the client repeats the request with `inputResponses`;
//! a 2025-xx client is asked with a request of the server's on the call's SSE stream and answers
//! with a response it POSTs in its session.
//!
//! So, in front of a 2026-07-28 upstream, for a client that declared elicitation at initialize:
//! the gateway's envelope declares elicitation too; when the upstream's answer to a call is a
//! round, each `elicitation/create` in it goes to the client on the call's stream as a request
//! of the gateway's (`mcpgate-input-…`), its answer (taken in `exchange()`, never forwarded) is
//! kept under the round's key, and the gateway repeats the call upstream with the answers and the
//! upstream's `requestState`, until the result is complete. Chosen:
//! - *the call is policed once*: what the client answers to a question it was asked is its
//!   answer to that question, as when a 2025-xx upstream asks on a stream (client responses pass
//!   without a rule there too); the repeats are the same call, with the same id.
//! - *bounded*: at most [`MAX_ROUNDS`] rounds per call, each question answered within
//!   `--input-round-secs`; a question of another kind (sampling, roots: the client's capabilities
//!   for them are not kept), a refusal or no answer ends the call with an error saying which.
//! - *SSE only*: the question rides the call's stream. A client that takes only JSON cannot be
//!   asked: it waits until `--input-round-secs` and gets the error.
//! - *one process*: the answer is awaited here, so with several replicas it must reach this one
//!   (as a round's retry must, `rounds.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures::StreamExt;
use rand::RngCore;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

use super::{ExchangeError, Outcome};
use crate::gateway::Gateway;
use crate::protocol::modern::{self, Routing};
use crate::protocol::{answer, code, method, Kind, Message, SseEvent};
use crate::session::Session;
use crate::upstream::{Placement, Reply, UpstreamError};

/// Request ids of the questions the gateway puts to a client for its upstream.
const ID_PREFIX: &str = "mcpgate-input-";
/// At most this many rounds of questions per call.
const MAX_ROUNDS: usize = 8;

/// The questions waiting for a client's answer, by the id they were asked under.
#[derive(Default)]
pub struct Asked {
    waiting: Mutex<HashMap<String, Question>>,
}

struct Question {
    session: Arc<str>,
    answer: oneshot::Sender<Value>,
}

impl Asked {
    fn ask(&self, session: &Session) -> (String, oneshot::Receiver<Value>) {
        let mut bytes = [0u8; 12];
        rand::rng().fill_bytes(&mut bytes);
        let id = format!("{ID_PREFIX}{}", hex::encode(bytes));
        let (answer, answered) = oneshot::channel();
        let question = Question {
            session: session.id.clone(),
            answer,
        };
        self.lock().insert(id.clone(), question);
        (id, answered)
    }

    fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Question>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Is this the client's answer to a question the gateway put to it for its upstream?
pub(super) fn is_answer(message: &Message) -> bool {
    message.kind == Kind::Response
        && message
            .id()
            .and_then(Value::as_str)
            .is_some_and(|id| id.starts_with(ID_PREFIX))
}

/// Hands the client's answer to the call that asked; it goes no further.
pub(super) fn take_answer(gateway: &Gateway, session: &Session, message: &Message) -> Outcome {
    let id = message.id().and_then(Value::as_str).unwrap_or_default();
    let question = {
        let mut waiting = gateway.asked.lock();
        match waiting.get(id) {
            Some(question) if question.session == session.id => waiting.remove(id),
            _ => None,
        }
    };
    let Some(question) = question else {
        return Outcome::Failed(ExchangeError::UnknownElicitation(format!(
            "{id} is not a question this session was asked, or it was answered already"
        )));
    };
    let text = String::from_utf8_lossy(&message.to_bytes()).into_owned();
    let answer = serde_json::from_str(&text).unwrap_or(Value::Null);
    // The call may have stopped waiting (its time ran out): the answer is then dropped.
    let _ = question.answer.send(answer);
    Outcome::Accepted
}

/// Whether the gateway puts the upstream's questions about `message` to this session's client.
pub(super) fn asks_client(session: &Session, message: &Message) -> bool {
    session.elicits
        && session.version != modern::VERSION
        && message.kind == Kind::Request
        && message.method().is_some_and(modern::takes_input)
}

/// The client capabilities the gateway declares upstream for a client it asks.
pub(super) fn declared_capabilities() -> Value {
    json!({ "elicitation": {} })
}

/// Can this reply carry a round? A stream may; a JSON answer only if it is one.
pub(super) fn may_ask(reply: &Reply) -> bool {
    match reply {
        Reply::Stream { .. } => true,
        Reply::Json { body, .. } => {
            let text = String::from_utf8_lossy(body);
            text.contains(modern::RESULT_INPUT_REQUIRED)
                && serde_json::from_str::<Value>(&text).is_ok_and(|answer| {
                    answer["result"]["resultType"] == modern::RESULT_INPUT_REQUIRED
                })
        }
        Reply::Accepted { .. } => false,
    }
}

/// `reply` (the upstream's first answer to `request`), with each round of questions in it put
/// to the client and the call repeated until its result is complete.
pub(super) fn with_rounds(
    gateway: Arc<Gateway>,
    session: Arc<Session>,
    request: Value,
    routing: Routing,
    reply: Reply,
) -> Reply {
    let (events, received) = mpsc::channel(16);
    tokio::spawn(async move {
        let call = Call {
            gateway,
            session,
            request,
            routing,
            events,
        };
        call.run(reply).await;
    });
    Reply::Stream {
        events: Box::pin(ReceiverStream::new(received)),
        session_id: None,
    }
}

struct Call {
    gateway: Arc<Gateway>,
    session: Arc<Session>,
    /// The request as first sent (the gateway's envelope in `_meta`).
    request: Value,
    routing: Routing,
    events: mpsc::Sender<Result<SseEvent, UpstreamError>>,
}

impl Call {
    async fn run(mut self, mut reply: Reply) {
        for round in 0..=MAX_ROUNDS {
            let Some(asked) = self.relay_until_round(reply).await else {
                return;
            };
            if round == MAX_ROUNDS {
                let why = format!("the upstream asked for input more than {MAX_ROUNDS} times");
                return self.fail(code::INTERNAL_ERROR, &why).await;
            }
            let responses = match self.put_to_client(&asked).await {
                Ok(responses) => responses,
                Err((code, why)) => return self.fail(code, &why).await,
            };
            let params = self.request["params"].as_object_mut();
            if let Some(params) = params {
                params.insert(modern::INPUT_RESPONSES.into(), responses.into());
                match asked.get(modern::REQUEST_STATE) {
                    Some(state) => params.insert(modern::REQUEST_STATE.into(), state.clone()),
                    None => params.remove(modern::REQUEST_STATE),
                };
            }
            let placement = Placement {
                session_id: None,
                protocol_version: Some(modern::VERSION),
                routing: Some(&self.routing),
            };
            let body = serde_json::to_vec(&self.request).expect("a JSON value serialises");
            reply = match self.gateway.upstream.post(body.into(), placement).await {
                Ok(reply) => reply,
                Err(err) => {
                    let _ = self.events.send(Err(err)).await;
                    return;
                }
            };
        }
    }

    /// Relays `reply` to the client until the answer: `None` once a complete one (or an
    /// error) went on, the result when it is a round of questions.
    async fn relay_until_round(&self, reply: Reply) -> Option<Map<String, Value>> {
        let id = &self.request["id"];
        match reply {
            Reply::Json { body, .. } => {
                let text = String::from_utf8_lossy(&body).into_owned();
                if let Some(asked) = round_in(&text, id) {
                    return Some(asked);
                }
                let _ = self.events.send(Ok(SseEvent::message(text))).await;
                None
            }
            Reply::Stream { mut events, .. } => {
                while let Some(event) = events.next().await {
                    if let Ok(event) = &event {
                        if let Some(asked) = round_in(event.text(), id) {
                            return Some(asked);
                        }
                    }
                    if self.events.send(event).await.is_err() {
                        return None; // the client went away
                    }
                }
                None
            }
            Reply::Accepted { status } => {
                let _ = self.events.send(Err(UpstreamError::NoAnswer(status))).await;
                None
            }
        }
    }

    /// Asks the client each question of the round; their answers by the round's keys, or the
    /// error the call ends with.
    async fn put_to_client(
        &self,
        asked: &Map<String, Value>,
    ) -> Result<Map<String, Value>, (i64, String)> {
        let requests = asked
            .get(modern::INPUT_REQUESTS)
            .and_then(Value::as_object)
            .ok_or_else(|| {
                let why = "the upstream asked for input without inputRequests";
                (code::INTERNAL_ERROR, why.to_owned())
            })?;
        let within = self.gateway.config.limits.input_round_timeout;
        let mut responses = Map::new();
        for (key, request) in requests {
            let kind = request
                .get("method")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if kind != method::ELICITATION_CREATE {
                return Err((
                    code::MISSING_REQUIRED_CLIENT_CAPABILITY,
                    format!("the upstream asked for {kind:?}, which the gateway puts only to MCP 2026-07-28 clients"),
                ));
            }
            let (id, answered) = self.gateway.asked.ask(&self.session);
            let question = json!({"jsonrpc": "2.0", "id": id, "method": kind,
                "params": request.get("params").cloned().unwrap_or_else(|| json!({}))});
            if self
                .events
                .send(Ok(SseEvent::message(question.to_string())))
                .await
                .is_err()
            {
                self.gateway.asked.forget(&id);
                return Err((code::INTERNAL_ERROR, "the client went away".into()));
            }
            let answer = tokio::time::timeout(within, answered).await;
            self.gateway.asked.forget(&id);
            let answer = match answer {
                Ok(Ok(answer)) => answer,
                _ => {
                    let why = format!(
                        "the client did not answer the upstream's question within {} s (--input-round-secs)",
                        within.as_secs()
                    );
                    return Err((code::INTERNAL_ERROR, why));
                }
            };
            match answer.get("result") {
                Some(result) => responses.insert(key.clone(), result.clone()),
                None => {
                    let error = &answer["error"];
                    let why = format!(
                        "the client refused the upstream's question: {}",
                        error["message"]
                    );
                    return Err((error["code"].as_i64().unwrap_or(code::INTERNAL_ERROR), why));
                }
            };
        }
        Ok(responses)
    }

    /// Ends the call with an error answer saying why.
    async fn fail(&self, code: i64, why: &str) {
        tracing::info!(session = %self.session.id, reason = why, "the upstream's question could not be put to the client");
        let failed = answer::error(Some(&self.request["id"]), code, why);
        let _ = self
            .events
            .send(Ok(SseEvent::message(failed.to_string())))
            .await;
    }
}

/// The result of the answer to `id` in `text`, when it is an input-required round.
fn round_in(text: &str, id: &Value) -> Option<Map<String, Value>> {
    if !text.contains(modern::RESULT_INPUT_REQUIRED) {
        return None;
    }
    let message: Value = serde_json::from_str(text).ok()?;
    if message.get("id") != Some(id) {
        return None;
    }
    match message.get("result")? {
        Value::Object(result)
            if result.get("resultType") == Some(&json!(modern::RESULT_INPUT_REQUIRED)) =>
        {
            Some(result.clone())
        }
        _ => None,
    }
}
