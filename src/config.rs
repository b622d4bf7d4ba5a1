//! The gateway's settings, gathered from flags and `MCPGATE_*` environment variables by the CLI.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    pub upstream: reqwest::Url,
    pub upstream_access: UpstreamAccess,
    pub policy: PathBuf,
    pub allowed_origins: Vec<String>,
    pub audit: Option<PathBuf>,
    pub audit_arguments: bool,
    /// `NAME=sha256:HEX` or `NAME=env:VARIABLE`, one per agent.
    pub agents: Vec<String>,
    /// Refuse requests without a known agent key (401).
    pub require_auth: bool,
    pub approvals: ApprovalConfig,
    pub limits: Limits,
    /// Event loops serving requests, one thread each (server.rs).
    pub workers: NonZeroUsize,
}

/// What the gateway presents to the upstream and which of its certificates it trusts.
#[derive(Clone, Default)]
pub struct UpstreamAccess {
    /// `NAME: VALUE` or `NAME: env:VARIABLE`, sent on every upstream request.
    pub headers: Vec<String>,
    /// A PEM file of CA certificates trusted besides the webpki roots.
    pub ca: Option<PathBuf>,
}

/// Header values are credentials: only the names are shown.
impl std::fmt::Debug for UpstreamAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self
            .headers
            .iter()
            .map(|spec| spec.split(':').next().unwrap_or_default().trim())
            .collect();
        f.debug_struct("UpstreamAccess")
            .field("headers", &names)
            .field("ca", &self.ca)
            .finish()
    }
}

/// Human approval and the admin API it is worked from.
#[derive(Debug, Clone)]
pub struct ApprovalConfig {
    /// Bearer token for `/admin`; no token, no admin API.
    pub admin_token: Option<String>,
    /// Serve the admin API and page on this address instead of the main listener.
    pub admin_listen: Option<SocketAddr>,
    /// How long a call under an approval rule is held open waiting for a decision.
    pub hold: Duration,
    /// How often a held call tells a client that sent a progressToken that it still waits.
    pub progress_every: Duration,
    pub webhook: Option<reqwest::Url>,
    pub webhook_secret: Option<String>,
}

impl Default for ApprovalConfig {
    fn default() -> Self {
        Self {
            admin_token: None,
            admin_listen: None,
            hold: Duration::from_secs(60),
            progress_every: Duration::from_secs(5),
            webhook: None,
            webhook_secret: None,
        }
    }
}

/// Every bound the gateway puts on what a client or the upstream may make it hold.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    /// Time a client has to send its request headers, and then its body (no slowloris).
    pub request_read_timeout: Duration,
    pub max_in_flight_per_agent: usize,
    pub max_event_bytes: usize,
    pub max_sessions: usize,
    pub session_idle: Duration,
    pub upstream_connect_timeout: Duration,
    pub upstream_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 4 * 1024 * 1024,
            max_header_bytes: 64 * 1024,
            request_read_timeout: Duration::from_secs(10),
            max_in_flight_per_agent: 64,
            max_event_bytes: 4 * 1024 * 1024,
            max_sessions: 10_000,
            session_idle: Duration::from_secs(30 * 60),
            upstream_connect_timeout: Duration::from_secs(5),
            upstream_timeout: Duration::from_secs(60),
        }
    }
}
