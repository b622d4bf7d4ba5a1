//! Readiness and the stopping sequence: `/readyz` is ready while the upstream answers MCP and
//! the gateway is not shutting down.
//!
//! The upstream check (an initialize that parses, then a DELETE of its session) is cached for
//! [`CHECK_TTL`], and one check runs at a time: probes from every replica's kubelet and a load
//! balancer's health checks would otherwise open a session upstream each.

use std::time::{Duration, Instant};

use tokio::sync::{watch, Mutex};

use crate::upstream::Upstream;

/// How long one upstream check answers for.
pub const CHECK_TTL: Duration = Duration::from_secs(2);
/// How long an upstream check may take.
const CHECK_WITHIN: Duration = Duration::from_secs(3);

/// Where the gateway is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Serving,
    /// SIGTERM came: `/readyz` fails, requests are still served (`--drain-delay-secs`).
    Draining,
    /// The listener has closed: requests in flight finish, held calls are answered.
    Stopping,
}

pub struct Readiness {
    phase: watch::Sender<Phase>,
    last_check: Mutex<Option<(Instant, Result<(), String>)>>,
}

/// Why `/readyz` says no.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("shutting down")]
    ShuttingDown,
    #[error("upstream does not answer MCP: {0}")]
    Upstream(String),
    /// Rate-limited and approval-gated calls are refused until it is back.
    #[error("{0}; rate-limited and approval-gated calls are refused until it is back")]
    State(crate::state::StateError),
}

impl Default for Readiness {
    fn default() -> Self {
        Self {
            phase: watch::Sender::new(Phase::Serving),
            last_check: Mutex::new(None),
        }
    }
}

impl Readiness {
    pub fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    /// Moves on to `phase` (never back).
    pub fn enter(&self, phase: Phase) {
        self.phase.send_if_modified(|now| {
            let later = rank(phase) > rank(*now);
            if later {
                *now = phase;
            }
            later
        });
    }

    /// Resolves once the listener has closed (at once if it has).
    pub async fn stopping(&self) {
        let mut phase = self.phase.subscribe();
        let _ = phase.wait_for(|p| *p == Phase::Stopping).await;
    }

    /// Ready: serving, and the upstream answered MCP within the last [`CHECK_TTL`].
    pub async fn check(&self, upstream: &Upstream) -> Result<(), NotReady> {
        if self.phase() != Phase::Serving {
            return Err(NotReady::ShuttingDown);
        }
        let mut last = self.last_check.lock().await;
        let fresh = last
            .as_ref()
            .filter(|(at, _)| at.elapsed() < CHECK_TTL)
            .map(|(_, result)| result.clone());
        let result = match fresh {
            Some(result) => result,
            None => {
                let result = upstream
                    .check_mcp(CHECK_WITHIN)
                    .await
                    .map_err(|err| err.to_string());
                *last = Some((Instant::now(), result.clone()));
                result
            }
        };
        result.map_err(NotReady::Upstream)
    }
}

fn rank(phase: Phase) -> u8 {
    match phase {
        Phase::Serving => 0,
        Phase::Draining => 1,
        Phase::Stopping => 2,
    }
}
