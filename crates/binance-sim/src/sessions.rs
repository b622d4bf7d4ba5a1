//! MCP sessions: created by `initialize`, named by a random `Mcp-Session-Id`, ended by DELETE.
//!
//! The map is sharded so that concurrent calls on different sessions never wait on one lock;
//! a call only takes a shard's read lock, long enough to clone an `Arc`.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::streams::Subscriptions;

const SHARDS: usize = 16;

/// One client's session with the simulated server.
#[derive(Debug)]
pub struct Session {
    id: u128,
    /// The session's simulated WebSocket streams; they end with the session.
    pub streams: Mutex<Subscriptions>,
    next_event_id: AtomicU64,
}

impl Session {
    /// The `Mcp-Session-Id` value: 32 hex digits of a random 128-bit number, like FastMCP's
    /// `uuid4().hex` (visible ASCII, as transports require).
    pub fn header_value(&self) -> String {
        format!("{:032x}", self.id)
    }

    /// Reserves `count` SSE event ids, unique within the session (transports: event ids MUST
    /// be unique across all streams of a session).
    pub fn reserve_event_ids(&self, count: u64) -> u64 {
        self.next_event_id.fetch_add(count, Ordering::Relaxed)
    }
}

#[derive(Debug)]
pub struct Sessions {
    shards: Vec<RwLock<Shard>>,
    open: AtomicUsize,
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            open: AtomicUsize::new(0),
        }
    }
}

impl Sessions {
    pub fn open(&self) -> Arc<Session> {
        let session = Arc::new(Session {
            id: rand::random(),
            streams: Mutex::default(),
            next_event_id: AtomicU64::new(1),
        });
        let mut shard = write(self.shard(session.id));
        if shard.insert(session.id, session.clone()).is_none() {
            self.open.fetch_add(1, Ordering::Relaxed);
        }
        session
    }

    /// The live session named by an `Mcp-Session-Id` header value.
    pub fn get(&self, header: &str) -> Option<Arc<Session>> {
        let id = parse_id(header)?;
        read(self.shard(id)).get(&id).cloned()
    }

    /// Ends the session; false when there was none.
    pub fn close(&self, header: &str) -> bool {
        let Some(id) = parse_id(header) else {
            return false;
        };
        let removed = write(self.shard(id)).remove(&id).is_some();
        if removed {
            self.open.fetch_sub(1, Ordering::Relaxed);
        }
        removed
    }

    pub fn len(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    fn shard(&self, id: u128) -> &RwLock<Shard> {
        &self.shards[(id as usize) % SHARDS]
    }
}

type Shard = HashMap<u128, Arc<Session>, BuildHasherDefault<IdHasher>>;

/// Session ids are random and chosen by the server, so their bits already make a good hash and
/// nobody can aim collisions at a shard. The low bits pick the shard, so the map hashes the high.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u128(&mut self, id: u128) {
        self.0 = (id >> 64) as u64;
    }
}

/// Only the exact form we hand out (32 lowercase hex digits) names a session, so two spellings
/// can never reach the same one.
fn parse_id(header: &str) -> Option<u128> {
    if header.len() != 32 {
        return None;
    }
    header.bytes().try_fold(0u128, |id, byte| {
        let digit = match byte {
            b'0'..=b'9' => byte - b'0',
            b'a'..=b'f' => byte - b'a' + 10,
            _ => return None,
        };
        Some(id << 4 | u128::from(digit))
    })
}

// A poisoned lock only means another request panicked mid-update of a map insert/remove, which
// leaves the map consistent; keep serving rather than fail every later request.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_open_find_and_close() {
        let sessions = Sessions::default();
        let session = sessions.open();
        let header = session.header_value();
        assert_eq!(header.len(), 32);
        assert_eq!(sessions.len(), 1);
        assert!(sessions.get(&header).is_some());
        assert!(sessions.close(&header));
        assert!(sessions.get(&header).is_none());
        assert!(!sessions.close(&header));
        assert_eq!(sessions.len(), 0);
    }

    #[test]
    fn only_the_canonical_spelling_names_a_session() {
        let sessions = Sessions::default();
        let header = sessions.open().header_value();
        assert!(
            sessions.get(&header.to_uppercase()).is_none()
                || header.bytes().all(|b| b.is_ascii_digit())
        );
        assert!(sessions.get(&format!("+{}", &header[1..])).is_none());
        assert!(sessions.get("not-a-session").is_none());
        assert!(sessions.get("").is_none());
    }

    #[test]
    fn header_value_parses_back_to_the_id() {
        let sessions = Sessions::default();
        let session = sessions.open();
        assert_eq!(parse_id(&session.header_value()), Some(session.id));
        assert_eq!(parse_id("000000000000000000000000000000ff"), Some(255));
        assert_eq!(parse_id("000000000000000000000000000000FF"), None);
    }

    #[test]
    fn event_ids_are_unique_within_a_session() {
        let sessions = Sessions::default();
        let session = sessions.open();
        let first = session.reserve_event_ids(5);
        assert_eq!(session.reserve_event_ids(1), first + 5);
    }
}
