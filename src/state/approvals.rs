//! The approval queue, in process or in Redis. Both answer the same questions with the same
//! types (`Ticket`, `Approval`, `DecideError`, `UseError`); only Redis can also fail to answer
//! (`QueueError::State`), and then the call is refused, never let through.
//!
//! In Redis an approval is a hash `{mcpgate}:approval:<id>` (the reviewers' view as JSON, plus
//! its status, expiry and decision as fields the scripts change), found by its call's
//! fingerprint through `{mcpgate}:fingerprint:<hex>`, counted against its caller in a sorted
//! set of pending ids, and listed through `{mcpgate}:approvals`. Every transition is one script,
//! so of two replicas using one approval exactly one gets `ok`; each publishes the approval's id
//! on `{mcpgate}:approval-events`, which wakes the replica holding the call.

use std::time::{Duration, Instant};

use redis::Script;
use tokio::sync::{broadcast, watch};

use super::redis_store::{RedisStore, PREFIX};
use super::StateError;
use crate::approval::{
    self, Approval, Approvals, Ask, DecideError, NotQueued, Status, Ticket, UseError,
};

/// Why the queue could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(transparent)]
    Decide(#[from] DecideError),
    #[error(transparent)]
    Use(#[from] UseError),
    #[error(transparent)]
    State(#[from] StateError),
}

pub enum ApprovalQueue {
    Local(Approvals),
    Redis(RedisStore),
}

const NOW_MS: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
";

/// KEYS: fingerprint, caller's pending set, the list. ARGV: mode (lookup | queue), new id,
/// timeout ms, kept-after-expiry ms, max pending, reviewers' JSON, session.
const REQUEST: &str = r"
local found = redis.call('GET', KEYS[1])
if found then
  local key = '{mcpgate}:approval:' .. found
  local f = redis.call('HMGET', key, 'status', 'expires_ms')
  if f[1] and tonumber(f[2]) > now then
    if f[1] == 'approved' then
      redis.call('HSET', key, 'status', 'used')
      redis.call('DEL', KEYS[1])
      redis.call('PUBLISH', '{mcpgate}:approval-events', found)
      return {'granted', found}
    elseif f[1] == 'pending' then
      return {'waiting', found}
    end
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then return {'too_many', ''} end
if ARGV[1] == 'lookup' then return {'new', ''} end
local id = ARGV[2]
local key = '{mcpgate}:approval:' .. id
local expires = now + tonumber(ARGV[3])
redis.call('HSET', key, 'doc', ARGV[6], 'status', 'pending', 'expires_ms', expires,
  'session', ARGV[7], 'elicited', '0', 'pending_key', KEYS[2], 'fp_key', KEYS[1])
redis.call('PEXPIREAT', key, expires + tonumber(ARGV[4]))
redis.call('SET', KEYS[1], id, 'PXAT', expires)
redis.call('ZADD', KEYS[2], expires, id)
if redis.call('PTTL', KEYS[2]) < expires - now then redis.call('PEXPIREAT', KEYS[2], expires) end
redis.call('ZADD', KEYS[3], now, id)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - 86400000)
redis.call('PUBLISH', '{mcpgate}:approval-events', id)
return {'created', id}
";

/// KEYS: the approval. ARGV: id, new status, reviewer, reason, decided at, and the session the
/// user was asked in ('' for a reviewer).
const DECIDE: &str = r"
local f = redis.call('HMGET', KEYS[1], 'status', 'expires_ms', 'elicited', 'session', 'pending_key', 'fp_key')
if not f[1] then return {'not_found', ''} end
if ARGV[6] ~= '' and (f[3] ~= '1' or f[4] ~= ARGV[6]) then return {'not_asked', ''} end
local status = f[1]
if (status == 'pending' or status == 'approved') and tonumber(f[2]) <= now then status = 'expired' end
if status ~= 'pending' then return {'not_pending', status} end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'decided_by', ARGV[3], 'decided_at', ARGV[5],
  'decision_reason', ARGV[4])
redis.call('ZREM', f[5], ARGV[1])
if ARGV[2] == 'rejected' then redis.call('DEL', f[6]) end
redis.call('PUBLISH', '{mcpgate}:approval-events', ARGV[1])
return {'ok', ARGV[2]}
";

/// KEYS: the approval. ARGV: id. Exactly one caller gets 'ok' for an approved approval.
const USE: &str = r"
local f = redis.call('HMGET', KEYS[1], 'status', 'expires_ms', 'fp_key')
if f[1] ~= 'approved' then return 'not_granted' end
if tonumber(f[2]) <= now then
  redis.call('DEL', f[3])
  return 'expired'
end
redis.call('HSET', KEYS[1], 'status', 'used')
redis.call('DEL', f[3])
redis.call('PUBLISH', '{mcpgate}:approval-events', ARGV[1])
return 'ok'
";

const MARK_ELICITED: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'elicited', '1') end
return 0
";

pub(super) struct Scripts {
    request: Script,
    decide: Script,
    use_granted: Script,
    mark_elicited: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        let timed = |body: &str| Script::new(&format!("{NOW_MS}{body}"));
        Self {
            request: timed(REQUEST),
            decide: timed(DECIDE),
            use_granted: timed(USE),
            mark_elicited: Script::new(MARK_ELICITED),
        }
    }
}

fn approval_key(id: &str) -> String {
    format!("{PREFIX}:approval:{id}")
}

fn status_of(text: &str) -> Option<Status> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
}

fn status_text(status: Status) -> &'static str {
    match status {
        Status::Pending => "pending",
        Status::Approved => "approved",
        Status::Rejected => "rejected",
        Status::Expired => "expired",
        Status::Used => "used",
    }
}

impl ApprovalQueue {
    /// What asking would answer without queueing: `None` when it would queue a new approval
    /// (pay the rule's limits, then [`request`](Self::request)).
    pub async fn lookup(&self, ask: &Ask<'_>, now: Instant) -> Result<Option<Ticket>, QueueError> {
        match self {
            ApprovalQueue::Local(queue) => Ok(queue.lookup(ask, now)),
            ApprovalQueue::Redis(store) => store.ask(ask, None, |_| {}).await,
        }
    }

    /// Looks again and queues the call if nothing granted or pending covers it. `on_queued`
    /// sees a new approval (the gateway audits it there).
    pub async fn request(
        &self,
        ask: &Ask<'_>,
        now: Instant,
        on_queued: impl FnOnce(&Approval),
    ) -> Result<Ticket, QueueError> {
        match self {
            ApprovalQueue::Local(queue) => Ok(queue.request(ask, now, on_queued)),
            ApprovalQueue::Redis(store) => {
                let pending = Approval::pending(ask, now);
                let ticket = store.ask(ask, Some(pending), on_queued).await?;
                ticket.ok_or_else(|| {
                    QueueError::State(store.unexpected("the queue script did not queue the call"))
                })
            }
        }
    }

    pub async fn decide(
        &self,
        id: &str,
        approve: bool,
        by: &str,
        reason: Option<String>,
    ) -> Result<Approval, QueueError> {
        match self {
            ApprovalQueue::Local(queue) => {
                Ok(queue.decide(id, approve, by, reason, Instant::now())?)
            }
            ApprovalQueue::Redis(store) => store.decide(id, approve, by, reason, None).await,
        }
    }

    pub async fn decide_by_elicitation(
        &self,
        id: &str,
        session: &str,
        approve: bool,
        reason: Option<String>,
    ) -> Result<Approval, QueueError> {
        match self {
            ApprovalQueue::Local(queue) => {
                Ok(queue.decide_by_elicitation(id, session, approve, reason, Instant::now())?)
            }
            ApprovalQueue::Redis(store) => {
                store
                    .decide(id, approve, "elicitation", reason, Some(session))
                    .await
            }
        }
    }

    pub async fn mark_elicited(&self, id: &str) -> Result<(), QueueError> {
        match self {
            ApprovalQueue::Local(queue) => {
                queue.mark_elicited(id);
                Ok(())
            }
            ApprovalQueue::Redis(store) => {
                let mut connection = store.connection().await?;
                let _: i64 = store
                    .inner
                    .scripts
                    .mark_elicited
                    .key(approval_key(id))
                    .invoke_async(&mut connection)
                    .await
                    .map_err(|err| store.unreachable(err))?;
                Ok(())
            }
        }
    }

    /// Uses a granted approval for the call held waiting on it; one caller wins.
    pub async fn use_granted(&self, id: &str) -> Result<Approval, QueueError> {
        match self {
            ApprovalQueue::Local(queue) => Ok(queue.use_granted(id, Instant::now())?),
            ApprovalQueue::Redis(store) => {
                let mut connection = store.connection().await?;
                let used: String = store
                    .inner
                    .scripts
                    .use_granted
                    .key(approval_key(id))
                    .arg(id)
                    .invoke_async(&mut connection)
                    .await
                    .map_err(|err| store.unreachable(err))?;
                match used.as_str() {
                    "ok" => store
                        .get_approval(id)
                        .await?
                        .ok_or_else(|| QueueError::Use(UseError::NotGranted(id.to_owned()))),
                    "expired" => Err(UseError::Expired(id.to_owned()).into()),
                    _ => Err(UseError::NotGranted(id.to_owned()).into()),
                }
            }
        }
    }

    pub async fn get(&self, id: &str) -> Result<Option<Approval>, QueueError> {
        match self {
            ApprovalQueue::Local(queue) => Ok(queue.get(id)),
            ApprovalQueue::Redis(store) => Ok(store.get_approval(id).await?),
        }
    }

    pub async fn time_left(&self, id: &str, now: Instant) -> Option<Duration> {
        match self {
            ApprovalQueue::Local(queue) => queue.time_left(id, now),
            ApprovalQueue::Redis(store) => store
                .get_approval(id)
                .await
                .ok()
                .flatten()
                .map(|a| a.expires_in(now)),
        }
    }

    /// The whole queue (the fleet's, with Redis), in reviewing order.
    pub async fn list(&self) -> Result<Vec<Approval>, QueueError> {
        match self {
            ApprovalQueue::Local(queue) => Ok(queue.list()),
            ApprovalQueue::Redis(store) => Ok(store.list_approvals().await?),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Approval> {
        match self {
            ApprovalQueue::Local(queue) => queue.subscribe(),
            ApprovalQueue::Redis(store) => store.inner.changes.subscribe(),
        }
    }

    /// Expires what is due (in process; Redis expires by TTL and reads an approval past its
    /// time as expired) and forgets wake-ups no held call waits on any more.
    pub fn expire_due(&self, now: Instant) -> Vec<Approval> {
        match self {
            ApprovalQueue::Local(queue) => queue.expire_due(now),
            ApprovalQueue::Redis(store) => {
                store
                    .inner
                    .waiting
                    .retain(|_, sender| sender.receiver_count() > 0);
                Vec::new()
            }
        }
    }
}

impl RedisStore {
    /// Looks for (and with `queue`, queues) an approval of the asked call.
    async fn ask(
        &self,
        ask: &Ask<'_>,
        queue: Option<Approval>,
        on_queued: impl FnOnce(&Approval),
    ) -> Result<Option<Ticket>, QueueError> {
        let limits = self.inner.limits;
        let bytes = approval::held_bytes(ask);
        if bytes > limits.max_held_call_bytes {
            return Ok(Some(Ticket::Refused(NotQueued::TooLarge {
                bytes,
                max: limits.max_held_call_bytes,
            })));
        }
        let fingerprint = crate::approval::Fingerprint::of(
            ask.agent,
            ask.session,
            ask.tool,
            ask.arguments,
            ask.other_params,
        );
        let caller = match ask.agent {
            Some(agent) => format!("a:{agent}"),
            None => format!("s:{}", ask.session),
        };
        let (mode, id, doc) = match &queue {
            Some(approval) => (
                "queue",
                approval.id.clone(),
                serde_json::to_string(approval).map_err(|err| self.unexpected(err))?,
            ),
            None => ("lookup", String::new(), String::new()),
        };
        let mut connection = self.connection().await?;
        let (answer, found): (String, String) = self
            .inner
            .scripts
            .request
            .key(format!("{PREFIX}:fingerprint:{}", fingerprint.to_hex()))
            .key(format!("{PREFIX}:pending:{caller}"))
            .key(format!("{PREFIX}:approvals"))
            .arg(mode)
            .arg(&id)
            .arg(u64::try_from(ask.timeout.as_millis()).unwrap_or(u64::MAX))
            .arg(u64::try_from(limits.keep_finished_for.as_millis()).unwrap_or(u64::MAX))
            .arg(limits.max_pending_per_caller)
            .arg(doc)
            .arg(ask.session)
            .invoke_async(&mut connection)
            .await
            .map_err(|err| self.unreachable(err))?;
        let read = |id: String| async move {
            self.get_approval(&id).await?.ok_or_else(|| {
                QueueError::State(self.unexpected(format!("approval {id} vanished")))
            })
        };
        Ok(Some(match answer.as_str() {
            "new" => return Ok(None),
            "too_many" => Ticket::Refused(NotQueued::TooManyPending {
                max: limits.max_pending_per_caller,
            }),
            "granted" => Ticket::Granted(read(found).await?),
            "waiting" => {
                let approval = read(found).await?;
                let decided = self.wake_up_for(&approval);
                Ticket::Waiting {
                    approval,
                    created: false,
                    decided,
                }
            }
            "created" => {
                let approval = queue.ok_or_else(|| self.unexpected("queued without a call"))?;
                on_queued(&approval);
                let decided = self.wake_up_for(&approval);
                Ticket::Waiting {
                    approval,
                    created: true,
                    decided,
                }
            }
            other => {
                return Err(self
                    .unexpected(format!("the queue script said {other}"))
                    .into())
            }
        }))
    }

    /// The wake-up a held call on this replica waits on; events from any replica send to it.
    fn wake_up_for(&self, approval: &Approval) -> watch::Receiver<Status> {
        self.inner
            .waiting
            .entry(approval.id.clone())
            .or_insert_with(|| watch::Sender::new(approval.status))
            .subscribe()
    }

    async fn decide(
        &self,
        id: &str,
        approve: bool,
        by: &str,
        reason: Option<String>,
        asked_in: Option<&str>,
    ) -> Result<Approval, QueueError> {
        let status = if approve {
            Status::Approved
        } else {
            Status::Rejected
        };
        let decided_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        let mut connection = self.connection().await?;
        let (answer, was): (String, String) = self
            .inner
            .scripts
            .decide
            .key(approval_key(id))
            .arg(id)
            .arg(status_text(status))
            .arg(by)
            .arg(reason.as_deref().unwrap_or_default())
            .arg(decided_at.to_string())
            .arg(asked_in.unwrap_or_default())
            .invoke_async(&mut connection)
            .await
            .map_err(|err| self.unreachable(err))?;
        match answer.as_str() {
            "ok" => self
                .get_approval(id)
                .await?
                .ok_or_else(|| DecideError::NotFound(id.to_owned()).into()),
            "not_found" => Err(DecideError::NotFound(id.to_owned()).into()),
            "not_asked" => Err(DecideError::NotAsked(id.to_owned()).into()),
            _ => Err(DecideError::NotPending {
                id: id.to_owned(),
                status: status_of(&was).unwrap_or(Status::Expired),
            }
            .into()),
        }
    }

    /// One approval as reviewers see it, its status as of Redis's clock.
    pub(super) async fn get_approval(&self, id: &str) -> Result<Option<Approval>, StateError> {
        let mut connection = self.connection().await?;
        type Fields = (
            Option<String>,
            Option<String>,
            Option<u64>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let ((doc, status, expires_ms, elicited, by, reason, at), (secs, micros)): (
            Fields,
            (u64, u64),
        ) = redis::pipe()
            .cmd("HMGET")
            .arg(approval_key(id))
            .arg(&[
                "doc",
                "status",
                "expires_ms",
                "elicited",
                "decided_by",
                "decision_reason",
                "decided_at",
            ])
            .cmd("TIME")
            .query_async(&mut connection)
            .await
            .map_err(|err| self.unreachable(err))?;
        let (Some(doc), Some(status), Some(expires_ms)) = (doc, status, expires_ms) else {
            return Ok(None);
        };
        let now_ms = secs * 1000 + micros / 1000;
        let mut approval: Approval =
            serde_json::from_str(&doc).map_err(|err| self.unexpected(err))?;
        let mut status = status_of(&status).ok_or_else(|| self.unexpected(&status))?;
        if matches!(status, Status::Pending | Status::Approved) && expires_ms <= now_ms {
            status = Status::Expired;
        }
        approval.status = status;
        approval.decided_by = by.filter(|s| !s.is_empty());
        approval.decision_reason = reason.filter(|s| !s.is_empty());
        approval.decided_at = at.filter(|s| !s.is_empty());
        let left = Duration::from_millis(expires_ms.saturating_sub(now_ms));
        Ok(Some(approval.restored(
            left,
            elicited.as_deref() == Some("1"),
            Instant::now(),
        )))
    }

    pub(super) async fn list_approvals(&self) -> Result<Vec<Approval>, StateError> {
        let mut connection = self.connection().await?;
        let index = format!("{PREFIX}:approvals");
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(&index)
            .arg(0)
            .arg(-1)
            .query_async(&mut connection)
            .await
            .map_err(|err| self.unreachable(err))?;
        let mut all = Vec::with_capacity(ids.len());
        let mut gone = Vec::new();
        for id in ids {
            match self.get_approval(&id).await? {
                Some(approval) => all.push(approval),
                None => gone.push(id),
            }
        }
        if !gone.is_empty() {
            let _: Result<i64, _> = redis::cmd("ZREM")
                .arg(&index)
                .arg(&gone)
                .query_async(&mut connection)
                .await;
        }
        approval::queue_order(&mut all);
        let keep = self.inner.limits.keep_finished;
        let mut finished = 0;
        all.retain(|a| {
            let pending = a.status == Status::Pending;
            finished += usize::from(!pending);
            pending || finished <= keep
        });
        Ok(all)
    }
}
