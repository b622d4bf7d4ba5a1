//! Upstream calls waiting on a 2026-07-28 client's answer to the upstream's question
//! (`exchange/rounds.rs` says what a round is and how it is answered). They are shared state:
//! the client's retry may arrive on any worker, and the upstream's open stream cannot leave
//! this process, so the round's name is a random one looked up here rather than a sealed token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rand::RngCore;
use serde_json::{json, Value};

use crate::protocol::Message;
use crate::session::Session;
use crate::upstream::EventStream;

/// `requestState` of the gateway's rounds of an upstream's questions.
const STATE_PREFIX: &str = "mcpgate-round-";

/// The rounds open in this process, by `requestState`.
#[derive(Default)]
pub struct Rounds {
    open: Mutex<HashMap<String, Round>>,
}

/// An upstream call waiting on the client's answer.
pub struct Round {
    pub call: Call,
    /// The id of the upstream's question: the client's answer goes back under it.
    pub asked: Value,
    /// The upstream's stream after the question, as the client would have read it.
    pub events: EventStream,
}

/// What a round is bound to: the caller's session, the call as policed, and the id it was sent
/// upstream under.
#[derive(Clone)]
pub struct Call {
    pub session: Arc<Session>,
    /// `method` and `params` without `_meta`: the envelope may change between rounds.
    pub body: Value,
    pub upstream_id: Value,
}

impl Call {
    /// `message` (its round fields already taken off) as sent in `session`.
    pub fn of(session: &Arc<Session>, message: &Message) -> Self {
        let mut params = message.params().unwrap_or(Value::Null);
        if let Some(fields) = params.as_object_mut() {
            fields.remove("_meta");
        }
        Self {
            session: session.clone(),
            body: json!({"method": message.method(), "params": params}),
            upstream_id: message.id().cloned().unwrap_or(Value::Null),
        }
    }

    /// The same call of the same caller: what a retry must be to answer a round.
    pub fn is(&self, other: &Call) -> bool {
        self.session.id == other.session.id && self.body == other.body
    }
}

/// Is this `requestState` one of the gateway's rounds of an upstream's questions?
pub fn is_round(state: &str) -> bool {
    state.starts_with(STATE_PREFIX)
}

impl Rounds {
    /// Holds `round` under a fresh name (128 random bits), unless its caller holds `cap`
    /// rounds already: then its stream comes back.
    pub fn park(&self, round: Round, cap: usize) -> Result<String, EventStream> {
        let mut random = [0u8; 16];
        rand::rng().fill_bytes(&mut random);
        let state = format!("{STATE_PREFIX}{}", hex::encode(random));
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let caller = &round.call.session.id;
        if open
            .values()
            .filter(|r| &r.call.session.id == caller)
            .count()
            >= cap
        {
            return Err(round.events);
        }
        open.insert(state.clone(), round);
        Ok(state)
    }

    /// The round named `state`, taken if `fits` says it may be; else it stays.
    pub fn take(&self, state: &str, fits: impl FnOnce(&Round) -> bool) -> Option<Round> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if !open.get(state).is_some_and(fits) {
            return None;
        }
        open.remove(state)
    }
}
