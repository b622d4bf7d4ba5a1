//! Which revision the upstream speaks: the handshake-era ones (initialize, sessions) or MCP
//! 2026-07-28 (per-request, no session). Asked once with a `server/discover` at 2026-07-28, as
//! the SDKs' clients probe, and remembered; asked again when the upstream refuses what it was
//! thought to speak (it was replaced), and by the readiness check when initialize is refused.
//!
//! Only a result naming 2026-07-28 in `supportedVersions` counts as speaking it: an error, a
//! refusal or a result without it is a handshake-era server (an old one answers "method not
//! found" or "no session"). A server that cannot be reached or does not answer in time says
//! nothing, and nothing is remembered. A stdio upstream is taken to be handshake-era without
//! asking: asking would start a process.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use serde_json::{json, Value};

use super::{Placement, Upstream, UpstreamError};
use crate::protocol::modern::{self, Routing};

/// What the upstream speaks.
#[derive(Debug, Clone)]
pub enum Revision {
    /// The handshake-era revisions only: the gateway keeps sessions with it.
    Handshake,
    /// MCP 2026-07-28; its `server/discover` result.
    PerRequest(Arc<Value>),
}

/// The remembered answer (`None` until asked).
#[derive(Default)]
pub struct Remembered(ArcSwapOption<Revision>);

impl Upstream {
    /// What the upstream speaks: remembered, or asked now.
    pub async fn revision(&self) -> Result<Revision, UpstreamError> {
        let remembered = match self {
            Self::Http(http) => &http.revision,
            Self::Stdio(_) => return Ok(Revision::Handshake),
        };
        if let Some(known) = remembered.0.load_full() {
            return Ok((*known).clone());
        }
        self.rediscover().await
    }

    /// Asks the upstream again what it speaks, and remembers the answer.
    pub async fn rediscover(&self) -> Result<Revision, UpstreamError> {
        let Self::Http(http) = self else {
            return Ok(Revision::Handshake);
        };
        let revision = self.discover().await?;
        http.revision.0.store(Some(Arc::new(revision.clone())));
        Ok(revision)
    }

    async fn discover(&self) -> Result<Revision, UpstreamError> {
        let request = modern::own_request("mcpgate-discover", modern::SERVER_DISCOVER, json!({}));
        let routing = Routing::bare(modern::SERVER_DISCOVER);
        let placement = Placement {
            session_id: None,
            protocol_version: Some(modern::VERSION),
            routing: Some(&routing),
        };
        match self.ask(&request, placement).await {
            Ok((answer, _)) => Ok(match answer.get("result") {
                Some(result) if modern::speaks_modern(result) => {
                    Revision::PerRequest(Arc::new(result.clone()))
                }
                _ => Revision::Handshake,
            }),
            Err(err) if err.is_unheard() => Err(err),
            Err(_) => Ok(Revision::Handshake),
        }
    }
}
