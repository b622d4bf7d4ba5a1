//! The gateway's shared state: what every request on every worker reads (policy, sessions,
//! limits, approvals, the upstream client, the audit log), built once at start.
//!
//! [`verdict`] is the one decision every message goes through; `exchange` uses it.

mod log;
mod readiness;
pub mod rounds;
mod verdict;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;

pub use readiness::{NotReady, Phase, Readiness};
pub use verdict::{state_refusal, Hold, Pass, Refusal, Verdict};

use crate::admission::InFlight;
use crate::approval::webhook::Webhook;
use crate::approval::{Approval, QueueLimits, Status as ApprovalStatus};
use crate::audit::{AuditDecision, AuditLog, AuditRecord, RefusalBudget};
use crate::auth::AgentKeys;
use crate::config::GatewayConfig;
use crate::metrics::Metrics;
use crate::oauth::ResourceServer;
use crate::policy::pins::PinWatch;
use crate::policy::{CompiledPolicy, PolicyFileError};
use crate::protocol::method;
use crate::session::{Session, SessionStore};
use crate::session_token::SessionKeys;
use crate::state::{ApprovalQueue, SharedState, StateConfigError, StateError};
use crate::upstream::{
    upstream_headers, HttpUpstream, Placement, StdioUpstream, Upstream, UpstreamConfig,
};

/// Refusals at the edge audited a minute, at most.
pub const EDGE_REFUSALS_PER_MINUTE: u32 = 60;

pub struct Gateway {
    pub config: GatewayConfig,
    pub agents: AgentKeys,
    /// Present with `--oauth-issuer`: agents may present access tokens.
    pub oauth: Option<Arc<ResourceServer>>,
    pub in_flight: InFlight,
    /// Connections each worker loop serves (`server/balance.rs`).
    pub connections: crate::server::Connections,
    pub policy: ArcSwap<CompiledPolicy>,
    /// Rate-limit counters and session revocations: in process, or shared through Redis.
    pub state: SharedState,
    /// The definitions of pinned tools as the upstream last listed them.
    pub pins: PinWatch,
    /// The upstream's `x-mcp-header` annotations, as its lists said (`exchange/param_headers.rs`).
    pub tool_headers: crate::exchange::ToolHeaders,
    /// How many checks the upstream's `list_changed` started have finished, for tests to follow.
    pub pin_rechecks: tokio::sync::watch::Sender<u64>,
    pub sessions: SessionStore,
    pub upstream: Upstream,
    pub audit: Option<AuditLog>,
    pub approvals: ApprovalQueue,
    pub webhook: Option<Webhook>,
    /// How many refusals at the edge (401, 404) are still audited this minute.
    pub edge_refusals: RefusalBudget,
    /// Outcome of policy reloads, for logs, tests and probes to follow.
    pub reloads: tokio::sync::watch::Sender<ReloadStatus>,
    /// Present when something serves `/metrics` (`--metrics-listen`, `--admin-listen`).
    pub metrics: Option<Metrics>,
    /// `/readyz`, and where the gateway is in stopping.
    pub readiness: Readiness,
    /// Upstream sessions kept for MCP 2026-07-28 callers, who open none (`exchange/bridge.rs`).
    pub bridge: crate::session::BridgedSessions,
    /// Calls of a handshake-era upstream waiting on a 2026-07-28 client's answers
    /// (`exchange/rounds.rs`): in this process, since the upstream's stream is held here.
    pub rounds: rounds::Rounds,
    /// A 2026-07-28 upstream's questions put to handshake-era clients, awaiting their answers
    /// (`exchange/asked.rs`).
    pub asked: crate::exchange::Asked,
}

/// What the last reload attempt came to, published on [`Gateway::reloads`] by `reload.rs`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadStatus {
    /// How many policies were swapped in since start.
    pub applied: u64,
    /// How many reload attempts failed; the last good policy kept serving.
    pub rejected: u64,
    pub last_error: Option<String>,
}

/// Why a presented session token names no session the caller may use.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("unknown session")]
    Unknown,
    #[error("the gateway holds its maximum of {0} sessions")]
    Full(usize),
}

/// Why a gateway could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{}", policy_message(.0))]
    Policy(#[from] PolicyFileError),
    #[error("cannot open audit log {path}: {source}")]
    Audit {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--approval-webhook needs --approval-webhook-secret to sign what it sends")]
    WebhookSecret,
    #[error(transparent)]
    Agents(#[from] crate::auth::AuthConfigError),
    #[error("cannot build the OAuth discovery client: {0}")]
    OAuth(String),
    #[error("cannot build the upstream client: {0}")]
    Upstream(#[from] crate::upstream::UpstreamConfigError),
    #[error(transparent)]
    State(#[from] StateConfigError),
    #[error(transparent)]
    SessionKey(#[from] crate::session_token::BadKey),
}

/// At start a policy that does not load stops everything; say so.
fn policy_message(err: &PolicyFileError) -> String {
    match err {
        PolicyFileError::Invalid { path, errors } => format!(
            "policy file {} is invalid; nothing is served until it loads:\n{errors}",
            path.display()
        ),
        PolicyFileError::Unreadable { .. } => err.to_string(),
    }
}

/// Builds the gateway's state. Fails closed: no policy, no gateway.
pub fn build(config: GatewayConfig) -> Result<Arc<Gateway>, BuildError> {
    let policy = CompiledPolicy::from_file(&config.policy)?;
    let audit = match &config.audit {
        Some(path) => Some(
            AuditLog::open(path, config.audit_arguments, config.audit_fsync).map_err(|source| {
                BuildError::Audit {
                    path: path.clone(),
                    source,
                }
            })?,
        ),
        None => None,
    };
    let access = &config.upstream_access;
    let upstream = match &config.upstream_command {
        Some(command) => Upstream::Stdio(StdioUpstream::new(
            command.clone(),
            config.limits.max_event_bytes,
            config.limits.upstream_timeout,
        )),
        None => Upstream::Http(HttpUpstream::new(UpstreamConfig {
            url: config.upstream.clone(),
            connect_timeout: config.limits.upstream_connect_timeout,
            timeout: config.limits.upstream_timeout,
            max_body_bytes: config.limits.max_body_bytes,
            max_event_bytes: config.limits.max_event_bytes,
            headers: upstream_headers(&access.headers, |variable| std::env::var(variable).ok())?,
            ca: access.ca.clone(),
        })?),
    };
    let agents = AgentKeys::from_specs(&config.agents, config.require_auth, |variable| {
        std::env::var(variable).ok()
    })?;
    let webhook = match (&config.approvals.webhook, &config.approvals.webhook_secret) {
        (Some(url), Some(secret)) => Some(Webhook::new(url.clone(), secret.clone())),
        (Some(_), None) => return Err(BuildError::WebhookSecret),
        _ => None,
    };
    let admin_listener =
        config.approvals.admin_listen.is_some() && config.approvals.admin_token.is_some();
    let metrics = (config.metrics_listen.is_some() || admin_listener).then(|| {
        let metrics = Metrics::new(agents.names());
        metrics.policy_tools(policy.tool_rule_names());
        metrics
    });
    let oauth = match &config.oauth {
        Some(oauth) => {
            let http = reqwest::Client::builder()
                .connect_timeout(config.limits.upstream_connect_timeout)
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .map_err(|e| BuildError::OAuth(e.to_string()))?;
            Some(Arc::new(ResourceServer::new(oauth.clone(), http)))
        }
        None => None,
    };
    let (state, approvals) = SharedState::from_url(
        config.replicas.state.as_deref(),
        QueueLimits {
            max_pending_per_caller: config.approvals.max_pending_per_agent,
            max_held_call_bytes: config.approvals.max_held_call_bytes,
            ..QueueLimits::default()
        },
    )?;
    let keys = match &config.replicas.session_key {
        Some(key) => {
            SessionKeys::from_base64(key, config.replicas.session_key_previous.as_deref())?
        }
        None => SessionKeys::random(),
    };
    Ok(Arc::new(Gateway {
        oauth,
        approvals,
        state,
        webhook,
        edge_refusals: RefusalBudget::new(EDGE_REFUSALS_PER_MINUTE),
        agents,
        in_flight: InFlight::new(config.limits.max_in_flight_per_agent),
        connections: crate::server::Connections::new(config.workers),
        sessions: SessionStore::sealed_with(
            config.limits.max_sessions,
            config.limits.session_idle,
            keys,
            config.replicas.session_max_age,
        ),
        policy: ArcSwap::from_pointee(policy),
        pins: PinWatch::new(),
        tool_headers: Default::default(),
        pin_rechecks: tokio::sync::watch::Sender::new(0),
        upstream,
        audit,
        reloads: tokio::sync::watch::Sender::new(Default::default()),
        metrics,
        readiness: Readiness::default(),
        bridge: crate::session::BridgedSessions::default(),
        rounds: rounds::Rounds::default(),
        asked: Default::default(),
        config,
    }))
}

impl Gateway {
    /// Queues an audit record (a no-op without `--audit`); the answer it belongs to leaves once
    /// it is written (`transport::Dispatch` waits on the audit barrier).
    pub fn record(&self, record: &AuditRecord<'_>) {
        if let Some(log) = &self.audit {
            log.append(record);
        }
        if let Some(metrics) = &self.metrics {
            metrics.decision(record.tool, record.decision, record.agent);
        }
        log::log_decision(record);
    }

    /// Opens the audit file again at its path (SIGHUP, after logrotate renamed it).
    pub fn reopen_audit(&self) {
        let Some(log) = &self.audit else { return };
        let Some(path) = log.path() else { return };
        match log.reopen() {
            Ok(()) => tracing::info!(path = %path.display(), "audit log reopened"),
            Err(err) => tracing::error!(path = %path.display(), error = %err,
                "could not reopen the audit log; records still go to the file open before"),
        }
    }

    /// Audits a refusal at the HTTP edge (401, 404), at most [`EDGE_REFUSALS_PER_MINUTE`] a
    /// minute: each costs the sender one request and would cost the disk a line, so a flood
    /// must not fill it. The first record after refusals were left out says how many.
    pub fn record_edge_refusal(
        &self,
        decision: AuditDecision,
        agent: Option<&str>,
        session: Option<&str>,
        http_method: &str,
        reason: &str,
    ) {
        // Budgeted whether or not there is an audit file: the log line is a record too.
        let Some(left_out) = self.edge_refusals.admit(Instant::now()) else {
            return;
        };
        let reason = match left_out {
            0 => reason.to_owned(),
            n => format!("{reason} ({n} refusals at the edge before this one were not recorded: at most {EDGE_REFUSALS_PER_MINUTE} a minute are)"),
        };
        self.record(&AuditRecord {
            agent,
            session,
            reason: Some(&reason),
            ..AuditRecord::of(http_method, decision)
        });
    }

    /// Audits a decision on an approval (approved, rejected, expired) made outside any call.
    pub fn record_approval(&self, approval: &Approval) {
        let decision = match approval.status {
            ApprovalStatus::Approved => AuditDecision::Approved,
            ApprovalStatus::Rejected => AuditDecision::Rejected,
            ApprovalStatus::Expired => AuditDecision::Expired,
            ApprovalStatus::Used => AuditDecision::ApprovalUsed,
            ApprovalStatus::Pending => AuditDecision::ApprovalPending,
        };
        self.record(&AuditRecord {
            agent: approval.agent.as_deref(),
            session: Some(&approval.session),
            tool: Some(&approval.tool),
            rule: Some(&approval.rule),
            reason: approval.decision_reason.as_deref(),
            approval: Some(&approval.id),
            reviewer: approval.decided_by.as_deref(),
            arguments: Some(&approval.arguments),
            ..AuditRecord::of(method::TOOLS_CALL, decision)
        });
    }

    /// Expires the approvals whose time is up, and audits each (in process; Redis expires
    /// them by their time).
    pub fn expire_approvals(&self) {
        for approval in self.approvals.expire_due(Instant::now()) {
            self.record_approval(&approval);
        }
    }

    /// The caller's session named by the token it presented: it opens, is the caller's, and
    /// was not ended on any replica. While the shared store cannot say whether it was ended,
    /// the session is served: the token is authentic and bound to its agent, the rules that
    /// need the store refuse on their own, and a revocation made meanwhile could not have been
    /// recorded either (README, "Running several replicas").
    pub async fn resume_session(
        &self,
        token: &str,
        agent: Option<&Arc<str>>,
    ) -> Result<Arc<Session>, ResumeError> {
        use crate::session::Resumed;
        let held = self.sessions.held_for(token, agent);
        if held.is_none() && !self.sessions.opens(token) {
            return Err(ResumeError::Unknown);
        }
        match self.state.is_revoked(token).await {
            Ok(false) => {}
            Ok(true) => {
                self.sessions.end(token);
                return Err(ResumeError::Unknown);
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot check whether a session was ended elsewhere; serving it");
            }
        }
        if let Some(session) = held {
            return Ok(session);
        }
        match self.sessions.resume(token, agent) {
            Resumed::Live(session) => Ok(session),
            Resumed::Unknown => Err(ResumeError::Unknown),
            Resumed::Full(full) => Err(ResumeError::Full(full.0)),
        }
    }

    /// Ends a session on every replica: here, and in the shared revocation set for as long as
    /// its token could be presented.
    pub async fn end_session(&self, session: &Session) -> Result<(), StateError> {
        self.sessions.end(&session.id);
        self.state
            .revoke(&session.id, self.sessions.max_age())
            .await
    }

    /// Ends the sessions idle past `--session-idle-secs`. With one replica they are ended for
    /// good, here and upstream. With a shared store this replica only lets go of what it held
    /// for them: the session may be in use on another replica, and its token expires anyway.
    pub async fn end_idle_sessions(&self) {
        for session in self.sessions.end_idle() {
            if self.state.is_shared() {
                continue;
            }
            let _ = self
                .state
                .revoke(&session.id, self.sessions.max_age())
                .await;
            if session.upstream_id.is_none() {
                continue;
            }
            let placement = Placement {
                session_id: session.upstream_id.as_ref(),
                protocol_version: None,
                routing: None,
            };
            if let Err(err) = self.upstream.end_session(placement).await {
                tracing::debug!(error = %err, "could not end an idle upstream session");
            }
        }
    }
}
