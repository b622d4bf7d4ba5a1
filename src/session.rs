//! Gateway sessions: the `Mcp-Session-Id` the gateway issues, mapped to the upstream's.
//!
//! The gateway never hands the upstream's session id to the agent: ids are its own, unguessable
//! (128 random bits), bound to the agent that opened them, and removed when ended or idle.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use dashmap::DashMap;
use foldhash::fast::RandomState;
use rand::RngCore;
use tokio::sync::Notify;

use crate::policy::CompiledPolicy;

#[derive(Debug)]
pub struct Session {
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
    last_seen_ms: AtomicU64,
    /// Every tool name the upstream has listed to this session, before filtering: what a policy
    /// change is compared against to tell whether the session's view changed.
    listed_tools: Mutex<HashSet<String>>,
    /// Wakes the session's GET stream to send `notifications/tools/list_changed`.
    pub tools_changed: Notify,
    /// The OAuth scopes of the token that opened the session (unset for keys and anonymous
    /// callers). Rules that require scopes are judged by these; every later request of the
    /// session must present a token granting at least these.
    pub scopes: std::sync::OnceLock<Arc<[String]>>,
}

impl Session {
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
        let listed = self.listed_tools.lock().unwrap_or_else(|e| e.into_inner());
        listed
            .iter()
            .any(|name| before.tool_visible(agent, name) != after.tool_visible(agent, name))
    }

    fn touch(&self, now_ms: u64) {
        self.last_seen_ms.store(now_ms, Ordering::Relaxed);
    }
}

/// What initialize settled besides the session's owner.
#[derive(Debug, Clone, Copy)]
pub struct Opening {
    pub version: &'static str,
    pub address: Option<IpAddr>,
}

impl Default for Opening {
    fn default() -> Self {
        Self {
            version: crate::protocol::version::ASSUMED,
            address: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the gateway holds its maximum of {0} sessions")]
pub struct SessionsFull(pub usize);

pub struct SessionStore {
    sessions: DashMap<Arc<str>, Arc<Session>, RandomState>,
    max_sessions: usize,
    idle_timeout: Duration,
    epoch: Instant,
}

impl SessionStore {
    pub fn new(max_sessions: usize, idle_timeout: Duration) -> Self {
        Self {
            sessions: DashMap::default(),
            max_sessions,
            idle_timeout,
            epoch: Instant::now(),
        }
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
        let session = Arc::new(Session {
            id: hex::encode(bytes).into(),
            upstream_id,
            agent,
            elicits,
            version: opened.version,
            address: opened.address,
            last_seen_ms: AtomicU64::new(self.now_ms()),
            listed_tools: Mutex::default(),
            tools_changed: Notify::new(),
            scopes: std::sync::OnceLock::new(),
        });
        self.sessions.insert(session.id.clone(), session.clone());
        Ok(session)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_unguessable_length() {
        let store = SessionStore::new(10, Duration::from_secs(60));
        let a = store.open(None, None, false, Opening::default()).unwrap();
        let b = store.open(None, None, false, Opening::default()).unwrap();
        assert_ne!(a.id, b.id);
        assert_eq!(a.id.len(), 32);
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
