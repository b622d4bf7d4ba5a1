//! The gateway's settings, gathered from flags and `MCPGATE_*` environment variables by the CLI.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    /// The upstream's URL; `stdio:PROGRAM` (shown in logs only) with `upstream_command`.
    pub upstream: reqwest::Url,
    pub upstream_access: UpstreamAccess,
    /// Run the upstream as a program per session on stdio instead of reaching it over HTTP.
    pub upstream_command: Option<crate::upstream::UpstreamCommand>,
    pub policy: PathBuf,
    pub allowed_origins: Vec<String>,
    /// `-` writes the records to standard output.
    pub audit: Option<PathBuf>,
    pub audit_arguments: bool,
    pub audit_fsync: crate::audit::Fsync,
    /// `NAME=sha256:HEX` or `NAME=env:VARIABLE`, one per agent.
    pub agents: Vec<String>,
    /// Refuse requests without a known agent key (401).
    pub require_auth: bool,
    pub approvals: ApprovalConfig,
    pub limits: Limits,
    /// Event loops serving requests, one thread each (`server/mod.rs`).
    pub workers: NonZeroUsize,
    /// Serve `GET /metrics` (Prometheus) on this address.
    pub metrics_listen: Option<SocketAddr>,
    /// Accept OAuth 2.1 access tokens (`--oauth-issuer`, `--public-url`).
    pub oauth: Option<crate::oauth::OAuthConfig>,
    /// What several replicas share: the session key and the state store.
    pub replicas: ReplicaConfig,
}

/// Running several replicas behind one address (README, "Running several replicas").
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// Seals session ids (32 bytes, base64); `None` makes a random key at start (sessions are
    /// then good on this process only).
    pub session_key: Option<String>,
    /// The key before the current one: tokens it sealed are still accepted (rotation).
    pub session_key_previous: Option<String>,
    /// How long a session token is good for after initialize.
    pub session_max_age: Duration,
    /// `redis://HOST:PORT/DB` or `rediss://…`; `None` keeps state in process.
    pub state: Option<String>,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        Self {
            session_key: None,
            session_key_previous: None,
            session_max_age: Duration::from_secs(24 * 3600),
            state: None,
        }
    }
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
    /// Bearer token for `/admin`, recorded as reviewer "admin"; with no token and no
    /// `reviewers`, there is no admin API.
    pub admin_token: Option<String>,
    /// Named reviewers, each with a token of their own: decisions are recorded under the name.
    pub reviewers: Vec<Reviewer>,
    /// Serve the admin API and page on this address instead of the main listener.
    pub admin_listen: Option<SocketAddr>,
    /// How long a call under an approval rule is held open waiting for a decision.
    pub hold: Duration,
    /// How often a held call tells a client that sent a progressToken that it still waits.
    pub progress_every: Duration,
    pub webhook: Option<reqwest::Url>,
    pub webhook_secret: Option<String>,
    /// Calls one agent (or one anonymous session) may have waiting for approval at once.
    pub max_pending_per_agent: usize,
    /// Largest call held for approval: its arguments and other params, as JSON text.
    pub max_held_call_bytes: usize,
}

impl Default for ApprovalConfig {
    fn default() -> Self {
        Self {
            admin_token: None,
            reviewers: Vec::new(),
            admin_listen: None,
            hold: Duration::from_secs(60),
            progress_every: Duration::from_secs(5),
            webhook: None,
            webhook_secret: None,
            max_pending_per_agent: 16,
            max_held_call_bytes: 64 * 1024,
        }
    }
}

impl ApprovalConfig {
    /// Every admin token and the reviewer it names.
    pub fn admin_tokens(&self) -> impl Iterator<Item = (&str, &str)> {
        let plain = self
            .admin_token
            .iter()
            .map(|token| ("admin", token.as_str()));
        plain.chain(
            self.reviewers
                .iter()
                .map(|r| (r.name.as_str(), r.token.as_str())),
        )
    }
}

/// A person who works the approval queue, and the token they sign in with.
#[derive(Clone, PartialEq, Eq)]
pub struct Reviewer {
    pub name: String,
    pub token: String,
}

impl std::fmt::Debug for Reviewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reviewer")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Reviewer {
    /// `--admin-token` as given: `NAME=TOKEN` names the reviewer; a plain `TOKEN` is reviewer
    /// "admin". NAME is 1 to 64 of `A-Z a-z 0-9 . _ @ -`; a value that does not read as
    /// NAME=TOKEN (base64 padding such as `abc==`) is a plain token.
    pub fn from_spec(spec: &str) -> Self {
        let named = spec.split_once('=').filter(|(name, token)| {
            (1..=64).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-_@".contains(&b))
                && !token.is_empty()
                && !token.starts_with('=')
        });
        let (name, token) = named.unwrap_or(("admin", spec));
        Self {
            name: name.to_owned(),
            token: token.to_owned(),
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
    /// How long a handshake-era upstream's question to a 2026-07-28 client (an input-required
    /// round) waits for the client's retry before the upstream's call is cancelled.
    pub input_round_timeout: Duration,
    /// How many such rounds one caller may have open at once.
    pub max_input_rounds_per_caller: usize,
    /// How anonymous callers are counted under rate limits of scope "agent".
    pub anonymous_rate_limits: AnonymousLimits,
}

/// Anonymous callers have no name to count them by, and a new session is free: counted per
/// session, an anonymous caller would reset its limits by initializing again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AnonymousLimits {
    /// All anonymous callers share one counter per rule.
    #[default]
    Shared,
    /// One counter per rule and client IP address (the address that opened the session).
    /// Behind a proxy every caller has the proxy's address: use `shared` or agent keys there.
    PerAddress,
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
            input_round_timeout: Duration::from_secs(300),
            max_input_rounds_per_caller: 16,
            anonymous_rate_limits: AnonymousLimits::Shared,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admin_token_may_name_its_reviewer_and_a_plain_one_is_admin() {
        let read = |spec: &str| {
            let r = Reviewer::from_spec(spec);
            (r.name, r.token)
        };
        assert_eq!(read("alice=s3cret"), ("alice".into(), "s3cret".into()));
        assert_eq!(read("bob@ops=a=b"), ("bob@ops".into(), "a=b".into()));
        assert_eq!(read("s3cret"), ("admin".into(), "s3cret".into()));
        assert_eq!(read("dG9rZW4="), ("admin".into(), "dG9rZW4=".into()));
        assert_eq!(read("dG9rZW4x=="), ("admin".into(), "dG9rZW4x==".into()));
        assert_eq!(
            read("not a name=x"),
            ("admin".into(), "not a name=x".into())
        );
        let config = ApprovalConfig {
            admin_token: Some("plain".into()),
            reviewers: vec![Reviewer::from_spec("alice=s3cret")],
            ..ApprovalConfig::default()
        };
        let tokens: Vec<_> = config.admin_tokens().collect();
        assert_eq!(tokens, [("admin", "plain"), ("alice", "s3cret")]);
        assert!(
            !format!("{config:?}").contains("s3cret"),
            "tokens stay out of logs"
        );
    }
}
