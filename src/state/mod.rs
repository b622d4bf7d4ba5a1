//! State the replicas of a fleet share: rate-limit counters, the approval queue and its
//! wake-ups, and session revocations. One replica keeps it in process ([`SharedState::Local`],
//! the default); several share it through Redis (`--state redis://…`, [`SharedState::Redis`]).
//!
//! The policy engine stays pure: it says which limits a call takes; this module takes them.
//! What fails here is a [`StateError`]: the gateway refuses what needed the store (fail
//! closed) and serves everything else. See README.md beside this file.

mod approvals;
mod redis_store;

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use foldhash::fast::RandomState;

pub use approvals::{ApprovalQueue, QueueError};
pub use redis_store::RedisStore;

use crate::approval::QueueLimits;
use crate::policy::{LimitExceeded, Limits, RateLimiter, Subject};

/// Why the shared store could not answer. Shown to agents in refusals and in `/readyz`, so it
/// names the store and the cause.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StateError {
    #[error("the shared state store ({url}) is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the shared state store ({url}) answered something unexpected: {reason}")]
    Unexpected { url: String, reason: String },
}

/// `--state` that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("--state {url}: {reason} (expected redis://HOST:PORT/DB or rediss://HOST:PORT/DB)")]
pub struct StateConfigError {
    pub url: String,
    pub reason: String,
}

pub enum SharedState {
    Local(LocalState),
    Redis(RedisStore),
}

/// The in-process store: one replica's counters and revocations.
#[derive(Default)]
pub struct LocalState {
    pub limiter: RateLimiter,
    /// Ended sessions' ids, until their tokens would have expired anyway.
    revoked: DashMap<Arc<str>, Instant, RandomState>,
}

/// The units one successful acquire took, to give back if the call never happened.
#[derive(Debug)]
pub enum Permit {
    Local(crate::policy::Permit),
    Redis(redis_store::Taken),
}

impl SharedState {
    /// `--state`: absent means in process.
    pub fn from_url(
        url: Option<&str>,
        limits: QueueLimits,
    ) -> Result<(Self, ApprovalQueue), StateConfigError> {
        match url {
            None => Ok((
                SharedState::Local(LocalState::default()),
                ApprovalQueue::Local(crate::approval::Approvals::new(limits)),
            )),
            Some(url) => {
                let store = RedisStore::new(url, limits)?;
                Ok((
                    SharedState::Redis(store.clone()),
                    ApprovalQueue::Redis(store),
                ))
            }
        }
    }

    pub fn is_shared(&self) -> bool {
        matches!(self, SharedState::Redis(_))
    }

    /// Takes one unit from every limit, all or nothing (`Ok(Err)`: a limit refused).
    pub async fn acquire(
        &self,
        limits: &Limits<'_>,
        subject: &Subject,
    ) -> Result<Result<Permit, LimitExceeded>, StateError> {
        match self {
            SharedState::Local(local) => Ok(local
                .limiter
                .acquire(limits, subject, Instant::now())
                .map(Permit::Local)),
            SharedState::Redis(store) => {
                Ok(store.acquire(limits, subject).await?.map(Permit::Redis))
            }
        }
    }

    /// Gives a permit's units back. Redis refunds run on their own: the caller has an answer
    /// to send, and a refund that cannot reach Redis only errs on the strict side.
    pub fn refund(&self, permit: Permit) {
        match (self, permit) {
            (SharedState::Local(local), Permit::Local(permit)) => local.limiter.refund(permit),
            (SharedState::Redis(store), Permit::Redis(taken)) => {
                let store = store.clone();
                tokio::spawn(async move {
                    if let Err(err) = store.refund(taken).await {
                        tracing::warn!(error = %err, "could not refund a rate-limit permit");
                    }
                });
            }
            _ => {}
        }
    }

    /// Ends a session for the whole fleet, for as long as its token could be presented.
    pub async fn revoke(&self, session: &str, for_as_long_as: Duration) -> Result<(), StateError> {
        match self {
            SharedState::Local(local) => {
                local
                    .revoked
                    .insert(session.into(), Instant::now() + for_as_long_as);
                Ok(())
            }
            SharedState::Redis(store) => store.revoke(session, for_as_long_as).await,
        }
    }

    pub async fn is_revoked(&self, session: &str) -> Result<bool, StateError> {
        match self {
            SharedState::Local(local) => Ok(local
                .revoked
                .get(session)
                .is_some_and(|until| *until > Instant::now())),
            SharedState::Redis(store) => store.is_revoked(session).await,
        }
    }

    /// Drops what has fully recovered or expired (Redis does this itself, by TTL).
    pub fn sweep(&self, now: Instant) {
        if let SharedState::Local(local) = self {
            local.limiter.sweep(now);
            local.revoked.retain(|_, until| *until > now);
        }
    }

    /// For `/readyz`: can the store be reached?
    pub async fn check(&self) -> Result<(), StateError> {
        match self {
            SharedState::Local(_) => Ok(()),
            SharedState::Redis(store) => store.ping().await,
        }
    }
}
