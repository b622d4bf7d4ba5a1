//! Rate-limit state, kept apart from `CompiledPolicy` so that a reload does not reset counters:
//! counters are keyed by `RateLimit::key`, which stays the same while a rule does.
//!
//! The algorithm is GCRA (the generic cell rate algorithm): each counter is one instant, the
//! "theoretical arrival time" (TAT) at which it will have fully recovered. A limit of `max` per
//! `window` earns back one call every `window / max`; a call is allowed while taking it keeps the
//! TAT within `window` of now, so `max` calls pass in a burst and then one per `window / max`.
//! One instant per counter, O(1) per call, and a refund is simply moving the instant back.
//!
//! The clock is handed in (`now`), so tests drive time without sleeping.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use foldhash::fast::RandomState;

use super::rules::{LimitScope, Limits, RateLimit};

/// Counters for every (limit, subject) pair in use. Sharded (`DashMap`): calls for different
/// counters do not wait for each other, and no lock is held across two counters.
#[derive(Debug, Default)]
pub struct RateLimiter {
    counters: DashMap<CounterKey, Instant, RandomState>,
}

/// Who is calling, as far as the limiter cares. Shared strings, so that building counter keys
/// on the call path copies no text.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The authenticated agent, if any.
    pub agent: Option<Arc<str>>,
    /// The gateway session id.
    pub session: Arc<str>,
    /// For an anonymous caller: the client address it is counted by under scope "agent", or
    /// `None` for the one counter all anonymous callers share.
    pub address: Option<IpAddr>,
}

/// The units one successful `acquire` took; hand it to `refund` if the call never happened.
#[derive(Debug, Default)]
pub struct Permit {
    taken: Vec<(CounterKey, Duration)>,
}

/// A call refused by a rate limit. When several limits refuse, this is the one with the longest wait.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rate limit {rule} ({max} per {}s) exceeded; retry after {}s", .window.as_secs(), retry_after_secs(.retry_after))]
pub struct LimitExceeded {
    /// The limit's rule, e.g. "tools.get_price" or "rate_limit".
    pub rule: String,
    pub max: u32,
    pub window: Duration,
    /// How long until one call would pass.
    pub retry_after: Duration,
}

impl LimitExceeded {
    /// `retry_after` in whole seconds, rounded up (for a Retry-After header: never too early).
    pub fn retry_after_secs(&self) -> u64 {
        retry_after_secs(&self.retry_after)
    }
}

fn retry_after_secs(retry_after: &Duration) -> u64 {
    retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0)
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CounterKey {
    limit: Arc<str>,
    subject: SubjectKey,
}

/// Kept as an enum, not a formatted string, so that no agent name can pose as a session id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum SubjectKey {
    Agent(Arc<str>),
    /// Anonymous callers: all together, or by client address.
    Anonymous(Option<IpAddr>),
    Session(Arc<str>),
    Global,
}

impl SubjectKey {
    /// Scope "agent" counts per agent when it is known, so a known agent cannot reset its limit
    /// by opening a new session. Anonymous callers cannot be told apart across sessions, so they
    /// share one counter (or one per client address): counted per session, re-initializing
    /// would reset their limits. Scope "session" counts each session, as it says.
    fn new(per: LimitScope, subject: &Subject) -> Self {
        match (per, &subject.agent) {
            (LimitScope::Global, _) => SubjectKey::Global,
            (LimitScope::Agent, Some(agent)) => SubjectKey::Agent(agent.clone()),
            (LimitScope::Agent, None) => SubjectKey::Anonymous(subject.address),
            (LimitScope::Session, _) => SubjectKey::Session(subject.session.clone()),
        }
    }
}

/// The name of a limit's counter for a subject, as a shared store keys it: the same counter as
/// this limiter's, spelled so that no agent name can pose as a session id or another limit
/// (the limit's key is length-prefixed, the subject's kind is one letter).
pub fn counter_name(limit: &RateLimit, subject: &Subject) -> String {
    let key = limit.shared_key();
    let subject = match SubjectKey::new(limit.per(), subject) {
        SubjectKey::Agent(agent) => format!("a:{agent}"),
        SubjectKey::Anonymous(Some(address)) => format!("n:{address}"),
        SubjectKey::Anonymous(None) => "n:".to_owned(),
        SubjectKey::Session(session) => format!("s:{session}"),
        SubjectKey::Global => "g:".to_owned(),
    };
    format!("{}:{key}:{subject}", key.len())
}

impl RateLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one unit from every limit, all or nothing.
    pub fn acquire(
        &self,
        limits: &Limits<'_>,
        subject: &Subject,
        now: Instant,
    ) -> Result<Permit, LimitExceeded> {
        let mut permit = Permit::default();
        let mut refused: Option<LimitExceeded> = None;
        for limit in limits.iter() {
            let key = CounterKey {
                limit: limit.shared_key().clone(),
                subject: SubjectKey::new(limit.per(), subject),
            };
            // Once one limit refuses, the others are only looked at (for the longest wait), not
            // taken: a refused call must not use up anyone's allowance, even for a moment.
            let commit = refused.is_none();
            match self.take(&key, limit, now, commit) {
                Ok(interval) if commit => permit.taken.push((key, interval)),
                Ok(_) => {}
                Err(retry_after) => {
                    if refused.as_ref().is_none_or(|r| r.retry_after < retry_after) {
                        refused = Some(LimitExceeded {
                            rule: limit.rule().to_owned(),
                            max: limit.max(),
                            window: limit.window(),
                            retry_after,
                        });
                    }
                }
            }
        }
        match refused {
            Some(refused) => {
                self.refund(permit);
                Err(refused)
            }
            None => Ok(permit),
        }
    }

    /// Gives a permit's units back (the upstream failed, the call never happened).
    pub fn refund(&self, permit: Permit) {
        for (key, interval) in permit.taken {
            if let Some(mut tat) = self.counters.get_mut(&key) {
                // A TAT moved into the past means "fully recovered", same as a swept counter.
                *tat = tat.checked_sub(interval).unwrap_or(*tat);
            }
        }
    }

    /// Drops the counters that have fully recovered: they hold nothing a fresh one would not.
    pub fn sweep(&self, now: Instant) {
        self.counters.retain(|_, tat| *tat > now);
    }

    /// How many counters are held (for metrics, and to see `sweep` work).
    pub fn counter_count(&self) -> usize {
        self.counters.len()
    }

    /// GCRA step for one counter, under its shard's lock. `Ok(interval)`: the unit is available
    /// (and taken when `commit`); `Err(retry_after)`: it is not.
    fn take(
        &self,
        key: &CounterKey,
        limit: &RateLimit,
        now: Instant,
        commit: bool,
    ) -> Result<Duration, Duration> {
        let interval = limit.window() / limit.max();
        let mut tat = self.counters.entry(key.clone()).or_insert(now);
        let next = (*tat).max(now) + interval;
        let ahead = next - now;
        if ahead > limit.window() {
            return Err(ahead - limit.window());
        }
        if commit {
            *tat = next;
        }
        Ok(interval)
    }
}

#[cfg(test)]
#[path = "rate_limit_tests.rs"]
mod tests;
