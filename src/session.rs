//! Gateway sessions: the `Mcp-Session-Id` the gateway issues, mapped to the upstream's.
//!
//! The gateway never hands the upstream's session id to the agent: the id it hands out is a
//! sealed token (`session_token.rs`) carrying the session's state, so any replica with the key
//! resumes it; 128 random bits inside make each session's token its own.
//!
//! What stays per process is held here: the tools listed to the session (for `list_changed`),
//! when it was last used, and the wake-up for its GET stream. A replica that has not seen a
//! session rebuilds this from the token on its first request; `--max-sessions` bounds how many
//! sessions one process holds this for, not how many the fleet serves.

use std::collections::{HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use axum::http::HeaderValue;
use dashmap::DashMap;
use foldhash::fast::RandomState;
use rand::RngCore;
use serde_json::Value;
use tokio::sync::watch;

use crate::policy::CompiledPolicy;
use crate::protocol::version;
use crate::session_token::{self, SealedSession, SessionKeys};

#[derive(Debug)]
pub struct Session {
    /// The sealed `Mcp-Session-Id` handed to the client, sealed once at initialize: what audit
    /// records, approvals, limits and revocations know the session by, on every replica.
    pub id: Arc<str>,
    /// The upstream's `Mcp-Session-Id`, if it issued one (stateless upstreams do not).
    pub upstream_id: Option<HeaderValue>,
    /// The authenticated agent that opened the session; `None` when agents are anonymous.
    pub agent: Option<Arc<str>>,
    /// The client declared the elicitation capability at initialize.
    pub elicits: bool,
    /// The protocol revision negotiated at initialize: requests without `MCP-Protocol-Version`
    /// are judged by it.
    pub version: &'static str,
    /// The client address that opened the session (anonymous callers may be counted by it).
    pub address: Option<IpAddr>,
    /// The upstream speaks MCP 2026-07-28 and keeps no session: each message is sent to it as
    /// a per-request one (`exchange/per_request.rs`).
    pub modern_upstream: bool,
    /// Unix seconds after which its token opens no session (sealed in it too).
    expires: u64,
    last_seen_ms: AtomicU64,
    /// Every tool name the upstream has listed to this session, before filtering: what a policy
    /// change is compared against to tell whether the session's view changed.
    listed_tools: Mutex<HashSet<String>>,
    /// Tells the session's streams to send `notifications/tools/list_changed`.
    pub tools_changed: ToolsChanged,
    /// Requests whose POST stream ended before their answer (2025-11-25 resumption): the id as
    /// JSON text, and whether it was a `tools/list`. Only these answers may come on a GET that
    /// resumes a stream.
    unanswered: Mutex<VecDeque<(String, bool)>>,
    /// The OAuth scopes of the token that opened the session (`None` for keys and anonymous
    /// callers). Rules that require scopes are judged by these; every later request of the
    /// session must present a token granting at least these. Sealed in its token, so every
    /// replica judges the session by the same scopes.
    pub scopes: Option<Arc<[String]>>,
}

/// Unanswered requests remembered per session; past this the oldest is forgotten.
const MAX_UNANSWERED: usize = 64;

impl Session {
    /// Notes that the answer to request `id` may come on a resumed stream.
    pub fn await_resumed_answer(&self, id: &Value, tools_list: bool) {
        let mut unanswered = self.unanswered.lock().unwrap_or_else(|e| e.into_inner());
        if unanswered.len() == MAX_UNANSWERED {
            unanswered.pop_front();
        }
        unanswered.push_back((id.to_string(), tools_list));
    }

    /// Takes request `id` off the unanswered list: `Some(was it tools/list)` if it was on it.
    pub fn take_resumed_answer(&self, id: &Value) -> Option<bool> {
        let id = id.to_string();
        let mut unanswered = self.unanswered.lock().unwrap_or_else(|e| e.into_inner());
        let at = unanswered.iter().position(|(waiting, _)| *waiting == id)?;
        unanswered.remove(at).map(|(_, tools_list)| tools_list)
    }

    pub fn remember_listed<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        let mut listed = self.listed_tools.lock().unwrap_or_else(|e| e.into_inner());
        for name in names {
            if !listed.contains(name) {
                listed.insert(name.to_owned());
            }
        }
    }

    /// Does any tool this session was shown (or had hidden) change visibility between policies?
    pub fn view_changed(&self, before: &CompiledPolicy, after: &CompiledPolicy) -> bool {
        let agent = self.agent.as_deref();
        let granted = self.scopes.as_deref();
        let listed = self.listed_tools.lock().unwrap_or_else(|e| e.into_inner());
        listed.iter().any(|name| {
            before.tool_listed(agent, name, granted) != after.tool_listed(agent, name, granted)
        })
    }

    fn touch(&self, now_ms: u64) {
        self.last_seen_ms.store(now_ms, Ordering::Relaxed);
    }
}

/// What initialize settled besides the session's owner.
#[derive(Debug, Clone)]
pub struct Opening {
    pub version: &'static str,
    pub address: Option<IpAddr>,
    pub modern_upstream: bool,
    /// The scopes of the access token that opened it (`Caller::scopes`).
    pub scopes: Option<Arc<[String]>>,
}

impl Default for Opening {
    fn default() -> Self {
        Self {
            version: crate::protocol::version::ASSUMED,
            address: None,
            modern_upstream: false,
            scopes: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the gateway holds its maximum of {0} sessions")]
pub struct SessionsFull(pub usize);

/// What a presented token comes to on this replica.
pub enum Resumed {
    Live(Arc<Session>),
    /// Does not open, has expired, or is another agent's: no such session (404).
    Unknown,
    /// A good token, but this process holds its maximum of sessions.
    Full(SessionsFull),
}

pub struct SessionStore {
    sessions: DashMap<Arc<str>, Arc<Session>, RandomState>,
    max_sessions: usize,
    idle_timeout: Duration,
    epoch: Instant,
    keys: SessionKeys,
    max_age: Duration,
}

impl SessionStore {
    pub fn new(max_sessions: usize, idle_timeout: Duration) -> Self {
        Self::sealed_with(
            max_sessions,
            idle_timeout,
            SessionKeys::random(),
            Duration::from_secs(24 * 3600),
        )
    }

    /// Sessions sealed with `keys`, good for `max_age` from initialize.
    pub fn sealed_with(
        max_sessions: usize,
        idle_timeout: Duration,
        keys: SessionKeys,
        max_age: Duration,
    ) -> Self {
        Self {
            sessions: DashMap::default(),
            max_sessions,
            idle_timeout,
            epoch: Instant::now(),
            keys,
            max_age,
        }
    }

    /// How long a token is good for: what a revocation must outlive.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub fn open(
        &self,
        upstream_id: Option<HeaderValue>,
        agent: Option<Arc<str>>,
        elicits: bool,
        opened: Opening,
    ) -> Result<Arc<Session>, SessionsFull> {
        if self.sessions.len() >= self.max_sessions {
            return Err(SessionsFull(self.max_sessions));
        }
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        let sealed = SealedSession {
            id: hex::encode(bytes),
            agent: agent.as_deref().map(str::to_owned),
            upstream_id: upstream_id
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            version: opened.version.to_owned(),
            elicits,
            address: opened.address,
            modern_upstream: opened.modern_upstream,
            scopes: opened.scopes.as_deref().map(<[String]>::to_vec),
            expires: session_token::expiry(SystemTime::now(), self.max_age),
        };
        let token = self.keys.seal(&sealed);
        let session = self.held(&sealed, upstream_id, agent, opened.version, token);
        self.sessions.insert(session.id.clone(), session.clone());
        Ok(session)
    }

    fn held(
        &self,
        sealed: &SealedSession,
        upstream_id: Option<HeaderValue>,
        agent: Option<Arc<str>>,
        version: &'static str,
        token: String,
    ) -> Arc<Session> {
        Arc::new(Session {
            expires: sealed.expires,
            id: token.into(),
            upstream_id,
            agent,
            elicits: sealed.elicits,
            version,
            address: sealed.address,
            modern_upstream: sealed.modern_upstream,
            last_seen_ms: AtomicU64::new(self.now_ms()),
            listed_tools: Mutex::default(),
            unanswered: Mutex::default(),
            tools_changed: ToolsChanged::default(),
            // A token sealed before scopes were resumes granting none (`SealedSession::scopes`).
            scopes: sealed.scopes.clone().map(Arc::from),
        })
    }

    /// The session a client's token names, for this agent: held here already, or rebuilt from
    /// the token (it was opened on another replica, or this one restarted). Revocation is the
    /// caller's to check, in the shared store.
    pub fn resume(&self, token: &str, agent: Option<&Arc<str>>) -> Resumed {
        let Some(sealed) = self.keys.open(token) else {
            return Resumed::Unknown;
        };
        // 2025-06-18 transports: a session the server no longer knows MUST get 404; one of
        // another agent is not the caller's to know about.
        if sealed.expired(SystemTime::now()) || sealed.agent.as_deref() != agent.map(|a| &**a) {
            return Resumed::Unknown;
        }
        if let Some(session) = self.get(token) {
            return Resumed::Live(session);
        }
        if self.sessions.len() >= self.max_sessions {
            return Resumed::Full(SessionsFull(self.max_sessions));
        }
        let upstream_id = match sealed.upstream_id.as_deref().map(HeaderValue::from_str) {
            Some(Ok(value)) => Some(value),
            Some(Err(_)) => return Resumed::Unknown,
            None => None,
        };
        let version = version::spoken(sealed.version.as_bytes()).unwrap_or(version::ASSUMED);
        let session = self.held(
            &sealed,
            upstream_id,
            agent.cloned(),
            version,
            token.to_owned(),
        );
        // Two requests resuming at once keep whichever was held first.
        let session = self
            .sessions
            .entry(session.id.clone())
            .or_insert(session)
            .value()
            .clone();
        Resumed::Live(session)
    }

    /// The session held here under exactly this token, if it is still the caller's and has not
    /// expired: the token opened when the session was first held, so it needs no opening again
    /// (decrypting it cost ~45k instructions a call, more than the rest of the gateway).
    pub fn held_for(&self, token: &str, agent: Option<&Arc<str>>) -> Option<Arc<Session>> {
        let session = self.sessions.get(token)?.value().clone();
        let current = session.agent.as_ref() == agent
            && session_token::unix_secs(SystemTime::now()) < session.expires;
        current.then(|| {
            session.touch(self.now_ms());
            session
        })
    }

    /// Whether a token opens under the session keys (a forged one costs no store lookup).
    pub fn opens(&self, token: &str) -> bool {
        self.keys.open(token).is_some()
    }

    /// The live session with this id, marked as used now.
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        let session = self.sessions.get(id)?.value().clone();
        session.touch(self.now_ms());
        Some(session)
    }

    pub fn end(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions.remove(id).map(|(_, session)| session)
    }

    /// Removes and returns the sessions idle for longer than the idle timeout.
    pub fn end_idle(&self) -> Vec<Arc<Session>> {
        let cutoff = self
            .now_ms()
            .saturating_sub(self.idle_timeout.as_millis() as u64);
        let idle: Vec<Arc<str>> = self
            .sessions
            .iter()
            .filter(|s| s.last_seen_ms.load(Ordering::Relaxed) < cutoff)
            .map(|s| s.key().clone())
            .collect();
        idle.iter().filter_map(|id| self.end(id)).collect()
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    pub fn all(&self) -> Vec<Arc<Session>> {
        self.sessions.iter().map(|s| s.value().clone()).collect()
    }
}

/// The upstream sessions kept for MCP 2026-07-28 callers, who open none of their own
/// (`exchange/bridge.rs`): one per agent and set of scopes, or per address for anonymous
/// callers.
#[derive(Default)]
pub struct BridgedSessions {
    pub by_caller: DashMap<BridgeCaller, BridgedSession>,
    requests: std::sync::atomic::AtomicU64,
}

impl BridgedSessions {
    /// The caller's session with the upstream's description, while it is open and of the kind
    /// the upstream now needs (a session of its own for a 2026-07-28 upstream, or not).
    pub fn of(
        &self,
        sessions: &SessionStore,
        caller: &BridgeCaller,
        modern_upstream: bool,
    ) -> Option<(Arc<Session>, Value)> {
        let known = self.by_caller.get(caller).map(|b| b.clone())?;
        let session = sessions.get(&known.session)?;
        (session.modern_upstream == modern_upstream).then_some((session, known.server))
    }

    /// Opens the caller's session and keeps it for the caller's next requests, with `server`
    /// (what `server/discover` answers with).
    pub fn open(
        &self,
        sessions: &SessionStore,
        caller: BridgeCaller,
        upstream_id: Option<HeaderValue>,
        opening: Opening,
        server: Value,
    ) -> Result<Arc<Session>, SessionsFull> {
        let session = sessions.open(upstream_id, caller.0.clone(), false, opening)?;
        let bridged = BridgedSession {
            session: session.id.clone(),
            server,
        };
        self.by_caller.insert(caller, bridged);
        Ok(session)
    }

    /// An id for a request sent in a bridged session, unique among this process's: its
    /// callers' own ids may clash (`exchange/bridge.rs`).
    pub fn request_id(&self) -> serde_json::Value {
        let n = self
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("mcpgate-bridged-{n}").into()
    }
}

/// Who shares a bridged upstream session: one agent (or one anonymous address), and the
/// scopes its access token grants (sorted: `oauth::scopes`). The session is judged by the
/// scopes it opened with, so two tokens of one agent granting different scopes must not share
/// one: the narrower would ride on the wider's decisions, or the wider be refused.
pub type BridgeCaller = (Option<Arc<str>>, Option<IpAddr>, Option<Arc<[String]>>);

#[derive(Clone)]
pub struct BridgedSession {
    /// The gateway's id of the session; looked up each time, since it may have ended.
    pub session: Arc<str>,
    /// The upstream's initialize result: what `server/discover` answers with.
    pub server: Value,
}

/// Policy changes that altered what a session may see. Every stream of the session open at the
/// time hears each (a GET stream and `subscriptions/listen` streams alike); a change made while
/// none was open is told to the next one that opens.
#[derive(Debug, Default)]
pub struct ToolsChanged {
    /// How many changes were announced.
    count: AtomicU64,
    /// Made when the session's first stream opens: a watch channel is about 400 bytes, and
    /// most sessions never open a stream (100,000 sessions must fit in 500 MB).
    changes: OnceLock<watch::Sender<u64>>,
    /// The latest change some stream has told its client.
    told: AtomicU64,
}

impl ToolsChanged {
    pub fn announce(&self) {
        let count = self.count.fetch_add(1, Ordering::AcqRel) + 1;
        if let Some(changes) = self.changes.get() {
            changes.send_modify(|latest| *latest = (*latest).max(count));
        }
    }

    /// For a stream opening now: changes from now on, and the last one if no stream told it.
    pub fn listen(&self) -> watch::Receiver<u64> {
        let changes = self
            .changes
            .get_or_init(|| watch::Sender::new(self.count.load(Ordering::Acquire)));
        let mut listening = changes.subscribe();
        // A change announced before the channel existed, or between its making and this
        // subscription, is marked here: the count is ahead of what any stream told.
        let count = self.count.load(Ordering::Acquire);
        if count > self.told.load(Ordering::Acquire) {
            // Streams already listening hear it too only if it is news to the channel.
            changes.send_if_modified(|latest| {
                let behind = *latest < count;
                *latest = (*latest).max(count);
                behind
            });
            listening.mark_changed();
        }
        listening
    }

    /// A stream told its client of change `count`.
    pub fn told(&self, count: u64) {
        self.told.fetch_max(count, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_reaches_every_stream_and_one_made_before_any_reaches_the_next() {
        let changed = ToolsChanged::default();
        changed.announce();
        assert!(
            changed.changes.get().is_none(),
            "no channel before a stream"
        );
        let mut first = changed.listen();
        assert!(first.has_changed().unwrap(), "the change made before it");
        changed.told(*first.borrow_and_update());
        let mut second = changed.listen();
        assert!(!second.has_changed().unwrap(), "told already");
        changed.announce();
        assert!(first.has_changed().unwrap() && second.has_changed().unwrap());
        assert_eq!(*first.borrow_and_update(), 2);
        assert_eq!(*second.borrow_and_update(), 2);
    }

    #[test]
    fn a_resumed_answer_is_taken_once_and_only_the_newest_are_remembered() {
        let store = SessionStore::new(1, Duration::from_secs(60));
        let session = store.open(None, None, false, Opening::default()).unwrap();
        session.await_resumed_answer(&serde_json::json!(7), true);
        assert_eq!(session.take_resumed_answer(&serde_json::json!("7")), None);
        assert_eq!(
            session.take_resumed_answer(&serde_json::json!(7)),
            Some(true)
        );
        assert_eq!(session.take_resumed_answer(&serde_json::json!(7)), None);
        for id in 0..=MAX_UNANSWERED {
            session.await_resumed_answer(&serde_json::json!(id), false);
        }
        assert_eq!(session.take_resumed_answer(&serde_json::json!(0)), None);
        assert_eq!(
            session.take_resumed_answer(&serde_json::json!(MAX_UNANSWERED)),
            Some(false)
        );
    }

    #[test]
    fn ids_are_unique_and_unguessable_length() {
        let store = SessionStore::new(10, Duration::from_secs(60));
        let a = store.open(None, None, false, Opening::default()).unwrap();
        let b = store.open(None, None, false, Opening::default()).unwrap();
        assert_ne!(a.id, b.id);
        assert!(
            a.id.len() > 100,
            "a sealed token, longer than the 32 hex characters before"
        );
        assert!(store.get(&a.id).is_some());
    }

    #[test]
    fn refuses_sessions_past_the_maximum() {
        let store = SessionStore::new(1, Duration::from_secs(60));
        store.open(None, None, false, Opening::default()).unwrap();
        assert!(matches!(
            store.open(None, None, false, Opening::default()),
            Err(SessionsFull(1))
        ));
    }

    #[test]
    fn ended_sessions_are_gone() {
        let store = SessionStore::new(2, Duration::from_secs(60));
        let a = store.open(None, None, false, Opening::default()).unwrap();
        assert!(store.end(&a.id).is_some());
        assert!(store.get(&a.id).is_none());
    }

    #[test]
    fn idle_sessions_are_ended_and_fresh_ones_kept() {
        // A store whose clock has run for a minute, so a session can have been seen long ago.
        let store = SessionStore {
            epoch: Instant::now() - Duration::from_secs(60),
            ..SessionStore::new(2, Duration::from_secs(10))
        };
        let idle = store.open(None, None, false, Opening::default()).unwrap();
        idle.last_seen_ms.store(0, Ordering::Relaxed);
        let fresh = store.open(None, None, false, Opening::default()).unwrap();

        let ended = store.end_idle();
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].id, idle.id);
        assert!(store.get(&idle.id).is_none());
        assert!(store.get(&fresh.id).is_some());
        assert_eq!(store.len(), 1);
    }
}
