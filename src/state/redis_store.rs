//! The Redis store: one connection manager (multiplexed, reconnecting by itself) for commands,
//! one pub/sub connection for approval events. Every key carries the hash tag `{mcpgate}`, so
//! each script's keys sit in one slot and the scripts run unchanged on Redis Cluster.
//!
//! Each operation is one round trip: a Lua script (GCRA over several counters, all or nothing;
//! approval transitions) or a single command. Time in scripts is Redis's own (`TIME`), so
//! replicas with skewed clocks still count the same windows.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use dashmap::DashMap;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use tokio::sync::{broadcast, watch};

use super::{StateConfigError, StateError};
use crate::approval::{Approval, QueueLimits, Status};
use crate::policy::{counter_name, LimitExceeded, Limits, Subject};

/// Prefix (and Cluster hash tag) of every key.
pub(super) const PREFIX: &str = "{mcpgate}";
/// Approval events: the id of an approval whose state changed.
pub(super) const EVENTS: &str = "{mcpgate}:approval-events";
/// How long one command may take before the store counts as unreachable for it.
const ANSWER_WITHIN: Duration = Duration::from_millis(1500);

/// GCRA over every counter: KEYS are the counters; ARGV holds each one's emission interval and
/// window, in microseconds. Either every counter advances or none does; a refusal names the
/// counter with the longest wait.
const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local worst, worst_at = 0, 0
local next_tat = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local window = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local ahead = tat + interval - now
  if ahead > window then
    if ahead - window > worst then worst, worst_at = ahead - window, i end
  else
    next_tat[i] = tat + interval
  end
end
if worst_at > 0 then return {worst_at, string.format('%d', worst)} end
for i, key in ipairs(KEYS) do
  local ttl = math.floor((next_tat[i] - now) / 1000) + 1
  redis.call('SET', key, string.format('%d', next_tat[i]), 'PX', ttl)
end
return {0, '0'}
";

/// Moves each counter back by its interval (the call never happened).
const REFUND: &str = r"
for i, key in ipairs(KEYS) do
  local tat = redis.call('GET', key)
  if tat then
    redis.call('SET', key, string.format('%d', tonumber(tat) - tonumber(ARGV[i])), 'KEEPTTL')
  end
end
return 0
";

/// The counters one acquire advanced, and by how much.
#[derive(Debug)]
pub struct Taken {
    counters: Vec<(String, u64)>,
}

#[derive(Clone)]
pub struct RedisStore {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    /// The URL without its password, for messages.
    pub(super) shown: String,
    client: redis::Client,
    connection: ArcSwapOption<ConnectionManager>,
    connecting: tokio::sync::Mutex<()>,
    acquire: Script,
    refund: Script,
    pub(super) scripts: super::approvals::Scripts,
    pub(super) limits: QueueLimits,
    /// Held calls on this replica, by approval id: woken when an event names their approval.
    pub(super) waiting: DashMap<String, watch::Sender<Status>>,
    /// Every approval event, for the admin page's live view.
    pub(super) changes: broadcast::Sender<Approval>,
    listening: OnceLock<()>,
}

impl RedisStore {
    pub fn new(url: &str, limits: QueueLimits) -> Result<Self, StateConfigError> {
        let bad = |reason: String| StateConfigError {
            url: shown(url),
            reason,
        };
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(bad("not a redis:// or rediss:// URL".into()));
        }
        let client = redis::Client::open(url).map_err(|err| bad(err.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                shown: shown(url),
                client,
                connection: ArcSwapOption::empty(),
                connecting: tokio::sync::Mutex::new(()),
                acquire: Script::new(ACQUIRE),
                refund: Script::new(REFUND),
                scripts: super::approvals::Scripts::new(),
                limits,
                waiting: DashMap::new(),
                changes: broadcast::Sender::new(256),
                listening: OnceLock::new(),
            }),
        })
    }

    pub(super) fn unreachable(&self, err: impl std::fmt::Display) -> StateError {
        StateError::Unreachable {
            url: self.inner.shown.clone(),
            reason: err.to_string(),
        }
    }

    pub(super) fn unexpected(&self, err: impl std::fmt::Display) -> StateError {
        StateError::Unexpected {
            url: self.inner.shown.clone(),
            reason: err.to_string(),
        }
    }

    /// The connection, made on first use and remade by the manager itself after Redis comes
    /// back. Starts the approval event listener too.
    pub(super) async fn connection(&self) -> Result<ConnectionManager, StateError> {
        self.listen();
        if let Some(connection) = self.inner.connection.load_full() {
            return Ok((*connection).clone());
        }
        let _one_at_a_time = self.inner.connecting.lock().await;
        if let Some(connection) = self.inner.connection.load_full() {
            return Ok((*connection).clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(ANSWER_WITHIN))
            .set_response_timeout(Some(ANSWER_WITHIN))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let connection = tokio::time::timeout(
            ANSWER_WITHIN * 2,
            self.inner.client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| self.unreachable("no connection within 3 s"))?
        .map_err(|err| self.unreachable(err))?;
        self.inner
            .connection
            .store(Some(Arc::new(connection.clone())));
        tracing::info!(store = %self.inner.shown, "connected to the shared state store");
        Ok(connection)
    }

    pub async fn ping(&self) -> Result<(), StateError> {
        let mut connection = self.connection().await?;
        let pong: String = redis::cmd("PING")
            .query_async(&mut connection)
            .await
            .map_err(|err| self.unreachable(err))?;
        if pong != "PONG" {
            return Err(self.unexpected(format!("PING answered {pong}")));
        }
        Ok(())
    }

    pub async fn acquire(
        &self,
        limits: &Limits<'_>,
        subject: &Subject,
    ) -> Result<Result<Taken, LimitExceeded>, StateError> {
        let all: Vec<_> = limits.iter().collect();
        if all.is_empty() {
            return Ok(Ok(Taken {
                counters: Vec::new(),
            }));
        }
        let mut invocation = self.inner.acquire.prepare_invoke();
        let mut counters = Vec::with_capacity(all.len());
        for limit in &all {
            let key = format!("{PREFIX}:limit:{}", counter_name(limit, subject));
            let interval = micros(limit.window() / limit.max());
            invocation
                .key(&key)
                .arg(interval)
                .arg(micros(limit.window()));
            counters.push((key, interval));
        }
        let mut connection = self.connection().await?;
        let (refused, wait): (usize, String) = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(|err| self.unreachable(err))?;
        if refused == 0 {
            return Ok(Ok(Taken { counters }));
        }
        let limit = all
            .get(refused - 1)
            .ok_or_else(|| self.unexpected("the limit script named no limit"))?;
        let wait: u64 = wait.parse().map_err(|err| self.unexpected(err))?;
        Ok(Err(LimitExceeded {
            rule: limit.rule().to_owned(),
            max: limit.max(),
            window: limit.window(),
            retry_after: Duration::from_micros(wait),
        }))
    }

    pub async fn refund(&self, taken: Taken) -> Result<(), StateError> {
        if taken.counters.is_empty() {
            return Ok(());
        }
        let mut invocation = self.inner.refund.prepare_invoke();
        for (key, interval) in &taken.counters {
            invocation.key(key).arg(*interval);
        }
        let mut connection = self.connection().await?;
        let _: i64 = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(|err| self.unreachable(err))?;
        Ok(())
    }

    pub async fn revoke(&self, session: &str, for_as_long_as: Duration) -> Result<(), StateError> {
        let mut connection = self.connection().await?;
        let key = format!("{PREFIX}:revoked:{session}");
        let _: () = connection
            .set_ex(key, 1, for_as_long_as.as_secs().max(1))
            .await
            .map_err(|err| self.unreachable(err))?;
        Ok(())
    }

    pub async fn is_revoked(&self, session: &str) -> Result<bool, StateError> {
        let mut connection = self.connection().await?;
        connection
            .exists(format!("{PREFIX}:revoked:{session}"))
            .await
            .map_err(|err| self.unreachable(err))
    }

    /// Starts (once) the task that follows approval events: each names an approval; held
    /// calls here waiting on it are woken with its new status, and the admin page is told.
    /// After a lost connection it resubscribes and looks again at every call held here, so a
    /// decision made while it was away is not missed.
    fn listen(&self) {
        if self.inner.listening.set(()).is_err() {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            let mut quiet = Duration::from_millis(100);
            loop {
                match store.follow_events().await {
                    Ok(()) => quiet = Duration::from_millis(100),
                    Err(err) => {
                        tracing::warn!(error = %err, "approval events from the shared state store stopped; reconnecting");
                    }
                }
                // Backing off between attempts to reach a store that is down, not waiting for an event.
                tokio::time::sleep(quiet).await;
                quiet = (quiet * 2).min(Duration::from_secs(2));
            }
        });
    }

    async fn follow_events(&self) -> Result<(), StateError> {
        use futures::StreamExt;
        let mut pubsub = tokio::time::timeout(ANSWER_WITHIN, self.inner.client.get_async_pubsub())
            .await
            .map_err(|_| self.unreachable("no pub/sub connection within 1.5 s"))?
            .map_err(|err| self.unreachable(err))?;
        pubsub
            .subscribe(EVENTS)
            .await
            .map_err(|err| self.unreachable(err))?;
        // Anything decided while no one was listening.
        let held: Vec<String> = self.inner.waiting.iter().map(|e| e.key().clone()).collect();
        for id in held {
            self.announce(&id).await;
        }
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let Ok(id) = message.get_payload::<String>() else {
                continue;
            };
            self.announce(&id).await;
        }
        Err(self.unreachable("the pub/sub connection closed"))
    }

    async fn announce(&self, id: &str) {
        let approval = match self.get_approval(id).await {
            Ok(Some(approval)) => approval,
            Ok(None) => return,
            Err(err) => {
                tracing::debug!(error = %err, approval = id, "could not read an approval after its event");
                return;
            }
        };
        if let Some(waiting) = self.inner.waiting.get(id) {
            waiting.send_replace(approval.status);
        }
        let _ = self.inner.changes.send(approval);
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// The URL as it may be shown: without a password.
fn shown(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "(an unreadable URL)".to_owned(),
    }
}
