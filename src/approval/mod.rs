//! Human approval: the queue of calls waiting for a person's yes or no.
//!
//! An approval is bound to a fingerprint of exactly one call (who asks, which tool, the canonical
//! arguments), is used at most once, and expires. A yes therefore authorises that call and
//! nothing else: other arguments, another agent or a second identical call each need their own.
//! See README.md beside this file for the flow through the gateway.

pub mod fingerprint;
pub mod webhook;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{broadcast, watch};

pub use fingerprint::Fingerprint;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Approved,
    Rejected,
    Expired,
    /// Approved, and the call it authorised has been made.
    Used,
}

/// One call waiting for (or given) a decision, as reviewers and the admin API see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Approval {
    pub id: String,
    pub status: Status,
    pub agent: Option<String>,
    pub session: String,
    pub tool: String,
    pub arguments: Value,
    /// The arguments exactly as they are forwarded (JSON text). A reader that parses JSON
    /// numbers as doubles (a browser) would show `9007199254740993` as `...992`: reviewers are
    /// shown this text. `None` once the approval is finished (the audit log keeps the call).
    pub arguments_json: Option<String>,
    /// The call's other params (`_meta`, ...) as forwarded, as a JSON object's text; `None`
    /// when it has none. Covered by the approval like the arguments.
    pub other_params: Option<String>,
    pub rule: String,
    pub reason: String,
    pub created_at: String,
    pub expires_at: String,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
    pub decided_at: Option<String>,
    #[serde(skip, default = "Fingerprint::unknown")]
    fingerprint: Fingerprint,
    #[serde(skip, default = "Instant::now")]
    expires: Instant,
    /// The call's user was asked with `elicitation/create` on the held stream.
    #[serde(skip)]
    elicited: bool,
}

/// What a call under an approval rule asks for.
pub struct Ask<'a> {
    pub agent: Option<&'a str>,
    pub session: &'a str,
    pub tool: &'a str,
    pub arguments: &'a Value,
    /// The call's params besides `name` and `arguments`, as forwarded (see [`Approval::other_params`]).
    pub other_params: Option<&'a str>,
    pub rule: &'a str,
    pub reason: &'a str,
    pub timeout: Duration,
}

/// The answer to an [`Ask`].
pub enum Ticket {
    /// An approval for exactly this call was granted earlier and is now used up by it.
    Granted(Approval),
    /// Waiting for a decision; `created` is false when an identical call was already pending.
    Waiting {
        approval: Approval,
        created: bool,
        decided: watch::Receiver<Status>,
    },
    /// Not queued: the queue's limits refuse it.
    Refused(NotQueued),
}

/// Why a call was not queued. Held calls cost memory until they are decided or expire, so what
/// one caller may hold is bounded (`--max-pending-approvals`, `--max-held-call-bytes`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotQueued {
    #[error("{max} calls of this caller already wait for approval (--max-pending-approvals); wait for a decision before asking for more")]
    TooManyPending { max: usize },
    #[error("the call's arguments and params are {bytes} bytes; a call held for approval may have at most {max} (--max-held-call-bytes)")]
    TooLarge { bytes: usize, max: usize },
}

/// Bounds on what the queue holds.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    /// Pending approvals one caller (an agent, or an anonymous session) may have at once.
    pub max_pending_per_caller: usize,
    /// Largest held call: its arguments' and other params' JSON text together.
    pub max_held_call_bytes: usize,
    /// Finished approvals (rejected, expired, used) kept for reviewers to see, newest first.
    pub keep_finished: usize,
    /// ... and for at most this long.
    pub keep_finished_for: Duration,
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self {
            max_pending_per_caller: 16,
            max_held_call_bytes: 64 * 1024,
            keep_finished: 256,
            keep_finished_for: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecideError {
    #[error("no approval {0}")]
    NotFound(String),
    #[error("approval {id} is already {status:?}; only pending approvals can be decided")]
    NotPending { id: String, status: Status },
    #[error("approval {0} was not asked of this session")]
    NotAsked(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UseError {
    #[error("approval {0} was not granted")]
    NotGranted(String),
    #[error("approval {0} expired before it was used")]
    Expired(String),
}

impl Approval {
    /// A new pending approval for `ask` (its id and fingerprint made here), expiring `timeout`
    /// after `now`.
    pub fn pending(ask: &Ask<'_>, now: Instant) -> Self {
        Approval {
            id: new_id(),
            status: Status::Pending,
            agent: ask.agent.map(str::to_owned),
            session: ask.session.to_owned(),
            tool: ask.tool.to_owned(),
            arguments: ask.arguments.clone(),
            arguments_json: Some(ask.arguments.to_string()),
            other_params: ask.other_params.map(str::to_owned),
            rule: ask.rule.to_owned(),
            reason: ask.reason.to_owned(),
            created_at: timestamp(SystemTime::now()),
            expires_at: timestamp(SystemTime::now() + ask.timeout),
            decided_by: None,
            decision_reason: None,
            decided_at: None,
            fingerprint: Fingerprint::of(
                ask.agent,
                ask.session,
                ask.tool,
                ask.arguments,
                ask.other_params,
            ),
            expires: now + ask.timeout,
            elicited: false,
        }
    }

    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// As a shared store gives it back: its expiry is `left` from now. A finished approval
    /// keeps what reviewers read about it, not the call's text.
    pub fn restored(mut self, left: Duration, elicited: bool, now: Instant) -> Self {
        self.expires = now + left;
        self.elicited = elicited;
        if !matches!(self.status, Status::Pending | Status::Approved) {
            self.arguments = Value::Null;
            self.arguments_json = None;
            self.other_params = None;
        }
        self
    }

    /// How long until it expires.
    pub fn expires_in(&self, now: Instant) -> Duration {
        self.expires.saturating_duration_since(now)
    }

    pub fn elicited(&self) -> bool {
        self.elicited
    }
}

/// The bytes a held call keeps: its arguments' and other params' text.
pub fn held_bytes(ask: &Ask<'_>) -> usize {
    ask.arguments.to_string().len() + ask.other_params.map_or(0, str::len)
}

struct Entry {
    approval: Approval,
    decided: watch::Sender<Status>,
}

pub struct Approvals {
    entries: Mutex<HashMap<String, Entry>>,
    changes: broadcast::Sender<Approval>,
    limits: QueueLimits,
}

impl Default for Approvals {
    fn default() -> Self {
        Self::new(QueueLimits::default())
    }
}

impl Approvals {
    pub fn new(limits: QueueLimits) -> Self {
        Self {
            entries: Mutex::default(),
            changes: broadcast::Sender::new(256),
            limits,
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue changes (created, decided, used, expired), for the admin page's live view.
    pub fn subscribe(&self) -> broadcast::Receiver<Approval> {
        self.changes.subscribe()
    }

    fn publish(&self, approval: &Approval) {
        let _ = self.changes.send(approval.clone());
    }

    /// Looks for a granted or pending approval of exactly this call; queues one if there is none.
    /// `on_queued` sees a new approval before any reviewer can (the gateway audits it there, so
    /// its pending record always comes before the decision's).
    pub fn request(
        &self,
        ask: &Ask<'_>,
        now: Instant,
        on_queued: impl FnOnce(&Approval),
    ) -> Ticket {
        match self.request_admitted(ask, now, || Ok::<(), Infallible>(()), on_queued) {
            Ok(ticket) => ticket,
            Err(never) => match never {},
        }
    }

    /// [`request`](Self::request), where a call that would queue a new approval (within the
    /// queue's own limits) must first pass `admit` (the rule's rate limits); its refusal is
    /// returned as it is.
    pub fn request_admitted<E>(
        &self,
        ask: &Ask<'_>,
        now: Instant,
        admit: impl FnOnce() -> Result<(), E>,
        on_queued: impl FnOnce(&Approval),
    ) -> Result<Ticket, E> {
        let fingerprint = Fingerprint::of(
            ask.agent,
            ask.session,
            ask.tool,
            ask.arguments,
            ask.other_params,
        );
        let mut entries = self.entries();
        let mut found: Option<String> = None;
        for entry in entries.values() {
            let a = &entry.approval;
            if a.fingerprint == fingerprint
                && a.expires > now
                && matches!(a.status, Status::Approved | Status::Pending)
            {
                found = Some(a.id.clone());
                if a.status == Status::Approved {
                    break;
                }
            }
        }
        if let Some(entry) = found.and_then(|id| entries.get_mut(&id)) {
            if entry.approval.status == Status::Approved {
                entry.approval.status = Status::Used;
                entry.decided.send_replace(Status::Used);
                let approval = entry.approval.clone();
                finish(entry);
                drop(entries);
                self.publish(&approval);
                return Ok(Ticket::Granted(approval));
            }
            return Ok(Ticket::Waiting {
                approval: entry.approval.clone(),
                created: false,
                decided: entry.decided.subscribe(),
            });
        }
        let arguments_json = ask.arguments.to_string();
        let bytes = arguments_json.len() + ask.other_params.map_or(0, str::len);
        let max = self.limits.max_held_call_bytes;
        if bytes > max {
            return Ok(Ticket::Refused(NotQueued::TooLarge { bytes, max }));
        }
        let is_caller = |a: &Approval| match ask.agent {
            Some(agent) => a.agent.as_deref() == Some(agent),
            None => a.agent.is_none() && a.session == ask.session,
        };
        let pending = entries
            .values()
            .filter(|e| e.approval.status == Status::Pending && is_caller(&e.approval))
            .count();
        let max = self.limits.max_pending_per_caller;
        if pending >= max {
            return Ok(Ticket::Refused(NotQueued::TooManyPending { max }));
        }
        admit()?;
        let approval = Approval {
            id: new_id(),
            status: Status::Pending,
            agent: ask.agent.map(str::to_owned),
            session: ask.session.to_owned(),
            tool: ask.tool.to_owned(),
            arguments: ask.arguments.clone(),
            arguments_json: Some(arguments_json),
            other_params: ask.other_params.map(str::to_owned),
            rule: ask.rule.to_owned(),
            reason: ask.reason.to_owned(),
            created_at: timestamp(SystemTime::now()),
            expires_at: timestamp(SystemTime::now() + ask.timeout),
            decided_by: None,
            decision_reason: None,
            decided_at: None,
            fingerprint,
            expires: now + ask.timeout,
            elicited: false,
        };
        on_queued(&approval);
        let (decided, receiver) = watch::channel(Status::Pending);
        entries.insert(
            approval.id.clone(),
            Entry {
                approval: approval.clone(),
                decided,
            },
        );
        drop(entries);
        self.publish(&approval);
        Ok(Ticket::Waiting {
            approval,
            created: true,
            decided: receiver,
        })
    }

    /// What [`request`](Self::request) would answer for `ask` without queueing anything:
    /// `None` when it would queue a new approval (the caller pays the rule's rate limits
    /// first, then calls `request`, which looks again under the lock).
    pub fn lookup(&self, ask: &Ask<'_>, now: Instant) -> Option<Ticket> {
        let mut would_queue = false;
        let ticket = self.request_admitted(
            ask,
            now,
            || {
                would_queue = true;
                Err(())
            },
            |_| {},
        );
        debug_assert!(ticket.is_ok() || would_queue);
        ticket.ok()
    }

    /// A reviewer's yes or no.
    pub fn decide(
        &self,
        id: &str,
        approve: bool,
        by: &str,
        reason: Option<String>,
        now: Instant,
    ) -> Result<Approval, DecideError> {
        let mut entries = self.entries();
        let entry = entries
            .get_mut(id)
            .ok_or_else(|| DecideError::NotFound(id.to_owned()))?;
        if entry.approval.status == Status::Pending && entry.approval.expires <= now {
            expire(entry);
            finish(entry);
        }
        if entry.approval.status != Status::Pending {
            return Err(DecideError::NotPending {
                id: id.to_owned(),
                status: entry.approval.status,
            });
        }
        let status = if approve {
            Status::Approved
        } else {
            Status::Rejected
        };
        entry.approval.status = status;
        entry.approval.decided_by = Some(by.to_owned());
        entry.approval.decision_reason = reason;
        entry.approval.decided_at = Some(timestamp(SystemTime::now()));
        entry.decided.send_replace(status);
        let approval = entry.approval.clone();
        if status == Status::Rejected {
            finish(entry);
        }
        drop(entries);
        self.publish(&approval);
        Ok(approval)
    }

    /// Records that the call's user was asked directly, so that only an answer from that
    /// session can decide it.
    pub fn mark_elicited(&self, id: &str) {
        if let Some(entry) = self.entries().get_mut(id) {
            entry.approval.elicited = true;
        }
    }

    /// The user's answer to the gateway's `elicitation/create`, accepted only from the session
    /// it was sent to.
    pub fn decide_by_elicitation(
        &self,
        id: &str,
        session: &str,
        approve: bool,
        reason: Option<String>,
        now: Instant,
    ) -> Result<Approval, DecideError> {
        let asked = self
            .entries()
            .get(id)
            .is_some_and(|e| e.approval.elicited && e.approval.session == session);
        if !asked {
            return Err(DecideError::NotAsked(id.to_owned()));
        }
        self.decide(id, approve, "elicitation", reason, now)
    }

    /// Uses a granted approval for the call that was held waiting for it.
    pub fn use_granted(&self, id: &str, now: Instant) -> Result<Approval, UseError> {
        let mut entries = self.entries();
        let entry = entries
            .get_mut(id)
            .ok_or_else(|| UseError::NotGranted(id.to_owned()))?;
        if entry.approval.status != Status::Approved {
            return Err(UseError::NotGranted(id.to_owned()));
        }
        if entry.approval.expires <= now {
            expire(entry);
            finish(entry);
            return Err(UseError::Expired(id.to_owned()));
        }
        entry.approval.status = Status::Used;
        entry.decided.send_replace(Status::Used);
        let approval = entry.approval.clone();
        finish(entry);
        drop(entries);
        self.publish(&approval);
        Ok(approval)
    }

    /// How long until the approval expires.
    pub fn time_left(&self, id: &str, now: Instant) -> Option<Duration> {
        self.entries()
            .get(id)
            .map(|e| e.approval.expires.saturating_duration_since(now))
    }

    pub fn get(&self, id: &str) -> Option<Approval> {
        self.entries().get(id).map(|e| e.approval.clone())
    }

    /// Pending first (oldest first, as a queue is worked), then the rest, newest first.
    pub fn list(&self) -> Vec<Approval> {
        let mut all: Vec<Approval> = self
            .entries()
            .values()
            .map(|e| e.approval.clone())
            .collect();
        queue_order(&mut all);
        all
    }

    /// Marks pending and granted approvals past their expiry as expired (their calls' text is
    /// let go at once), and forgets finished ones beyond the newest `keep_finished` or older than
    /// `keep_finished_for`; returns the ones that expired now (for the audit log).
    pub fn expire_due(&self, now: Instant) -> Vec<Approval> {
        let mut expired = Vec::new();
        let mut entries = self.entries();
        for entry in entries.values_mut() {
            let a = &entry.approval;
            if matches!(a.status, Status::Pending | Status::Approved) && a.expires <= now {
                expire(entry);
                expired.push(entry.approval.clone());
                finish(entry);
            }
        }
        let QueueLimits {
            keep_finished,
            keep_finished_for,
            ..
        } = self.limits;
        let is_finished =
            |a: &Approval| matches!(a.status, Status::Rejected | Status::Expired | Status::Used);
        entries.retain(|_, e| {
            !is_finished(&e.approval) || e.approval.expires + keep_finished_for > now
        });
        let mut finished: Vec<(Instant, String)> = entries
            .values()
            .filter(|e| is_finished(&e.approval))
            .map(|e| (e.approval.expires, e.approval.id.clone()))
            .collect();
        if finished.len() > keep_finished {
            finished.sort_unstable();
            for (_, id) in &finished[..finished.len() - keep_finished] {
                entries.remove(id);
            }
        }
        drop(entries);
        for approval in &expired {
            self.publish(approval);
        }
        expired
    }
}

/// Pending first (oldest first, as a queue is worked), then the rest, newest first.
pub fn queue_order(all: &mut [Approval]) {
    all.sort_by(|a, b| {
        let pending = |x: &Approval| x.status != Status::Pending;
        pending(a)
            .cmp(&pending(b))
            .then_with(|| match a.status {
                Status::Pending => a.created_at.cmp(&b.created_at),
                _ => b.created_at.cmp(&a.created_at),
            })
            .then_with(|| a.id.cmp(&b.id))
    });
}

fn expire(entry: &mut Entry) {
    entry.approval.status = Status::Expired;
    entry.decided.send_replace(Status::Expired);
}

/// A finished approval keeps what reviewers read about it, not the call's text: that is what
/// could be large, and the audit log has the call.
fn finish(entry: &mut Entry) {
    entry.approval.arguments = Value::Null;
    entry.approval.arguments_json = None;
    entry.approval.other_params = None;
}

fn new_id() -> String {
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    format!("apr_{}", hex::encode(bytes))
}

fn timestamp(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests;
