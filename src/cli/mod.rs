//! The command line. Every flag of `serve` can also come from the environment as
//! `MCPGATE_<FLAG>` (e.g. `MCPGATE_UPSTREAM`), so a container needs no arguments.

mod approvals;
mod oauth;
mod pin;
mod policy;
mod run;
mod upstream;
mod warnings;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::audit::Fsync;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{
    AnonymousLimits, ApprovalConfig, GatewayConfig, Limits, Reviewer, UpstreamAccess,
};

#[derive(Debug, Parser)]
#[command(
    name = "mcpgate",
    version,
    about = "A policy gateway for the Model Context Protocol",
    long_about = "A policy gateway for the Model Context Protocol.\n\n\
        Agents (Claude Code, Cursor, the MCP SDKs, curl) connect to the gateway's /mcp URL instead \
        of the MCP server's. Every message goes through a default-deny policy (allow, deny with a \
        reason, rate limits, argument rules); what is allowed is forwarded upstream over streamable \
        HTTP and the answer streamed back; tools/list hides what an agent may never call.",
    after_help = "Start here:\n  \
        mcpgate demo                                   gateway + simulated Binance server on 127.0.0.1:8080\n  \
        mcpgate serve --upstream http://127.0.0.1:9000/mcp --policy policies/binance.json\n  \
        mcpgate policy check policies/binance.json     validate a policy file\n  \
        MCPGATE_ADMIN_TOKEN=… mcpgate approvals list   the calls waiting for a person\n  \
        mcpgate policy explain policies/binance.json get_order_book '{\"symbol\":\"BTCUSDT\",\"depth\":500}'"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format: json (one object per line, for containers) or text (for people).
    #[arg(
        long,
        global = true,
        env = "MCPGATE_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
    /// Log filter, tracing's EnvFilter syntax (e.g. info, mcpgate=debug).
    #[arg(long, global = true, env = "MCPGATE_LOG", default_value = "info")]
    pub log: String,
    /// Threads serving requests (default: one per CPU). Like Envoy's --concurrency, each is an
    /// event loop of its own: a connection and the upstream connections its calls use stay on
    /// one thread, so a call never waits on another (bench/README.md).
    #[arg(long, global = true, env = "MCPGATE_WORKER_THREADS")]
    pub worker_threads: Option<std::num::NonZeroUsize>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway in front of an MCP server.
    Serve(ServeArgs),
    /// Run the simulated Binance MCP server (29 tools, fake deterministic market data).
    Simulate(SimulateArgs),
    /// Run the gateway on 127.0.0.1:8080 in front of an in-process simulator, with the built-in
    /// Binance policy (policies/binance.json), and print how to connect. Works from any directory.
    Demo(DemoArgs),
    /// Work the approval queue of a running gateway: list, approve, reject.
    Approvals(approvals::ApprovalsArgs),
    /// Make a new agent key: prints the key (give it to the agent) and the --agent value that
    /// holds only its SHA-256.
    AgentKey {
        /// The agent's name, as policies and audit records will call it.
        name: String,
    },
    /// Print a fresh key for --session-key (MCPGATE_SESSION_KEY): give every replica the same.
    SessionKey,
    /// Check, explain or describe policy files.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "MCPGATE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The upstream MCP server's streamable HTTP endpoint, e.g. http://127.0.0.1:9000/mcp.
    #[arg(
        long,
        env = "MCPGATE_UPSTREAM",
        required_unless_present = "upstream_command",
        conflicts_with = "upstream_command"
    )]
    pub upstream: Option<reqwest::Url>,
    /// Instead of --upstream: run the upstream MCP server as a program speaking stdio, one per
    /// session (started by initialize, stopped by DELETE, idle expiry or shutdown), e.g.
    /// 'python3 -m binance_mcp_server'. Split into words as a shell would; no shell runs it. Its
    /// environment is PATH and the --upstream-env variables only; its stderr goes to the log.
    #[arg(long, env = "MCPGATE_UPSTREAM_COMMAND")]
    pub upstream_command: Option<String>,
    /// An environment variable for the --upstream-command program: 'NAME=VALUE', or 'NAME' to
    /// pass on the gateway's own value. Repeatable; one per line in the environment.
    #[arg(
        long = "upstream-env",
        env = "MCPGATE_UPSTREAM_ENV",
        value_delimiter = '\n',
        hide_env_values = true
    )]
    pub upstream_env: Vec<String>,
    /// A header sent on every request to the upstream, as 'NAME: VALUE', or 'NAME: env:VARIABLE'
    /// to read the value from the environment at start: how the gateway presents its own
    /// credentials (agents' headers are never forwarded). Repeatable; one per line in the
    /// environment. Logs and errors show the upstream URL without credentials or query.
    #[arg(
        long = "upstream-header",
        env = "MCPGATE_UPSTREAM_HEADER",
        value_delimiter = '\n',
        hide_env_values = true
    )]
    pub upstream_headers: Vec<String>,
    /// A PEM file of CA certificates to trust for an https:// upstream, besides the public
    /// (webpki) roots: an internal CA.
    #[arg(long, env = "MCPGATE_UPSTREAM_CA")]
    pub upstream_ca: Option<PathBuf>,
    /// Policy file (JSON). Watched: a valid edit is applied at once, an invalid one is logged
    /// and the last good policy keeps serving. SIGHUP re-reads it too.
    #[arg(long, env = "MCPGATE_POLICY")]
    pub policy: PathBuf,
    #[command(flatten)]
    pub options: GatewayOptions,
}

/// Options shared by `serve` and `demo`.
#[derive(Debug, Args)]
pub struct GatewayOptions {
    /// A browser Origin allowed besides loopback ones (repeatable; comma-separated in the
    /// environment). Requests with any other Origin get 403.
    #[arg(
        long = "allowed-origin",
        env = "MCPGATE_ALLOWED_ORIGIN",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,
    /// An agent and its key, as NAME=sha256:HEX (the key's SHA-256) or NAME=env:VARIABLE (the key
    /// itself, read from the environment at start). Repeatable; comma-separated in the
    /// environment. Agents send `Authorization: Bearer <key>`; `mcpgate agent-key NAME` makes one.
    #[arg(long = "agent", env = "MCPGATE_AGENTS", value_delimiter = ',')]
    pub agents: Vec<String>,
    /// Refuse requests without a known agent key (401). Without it, requests with no key are
    /// anonymous (a presented key must still be known).
    #[arg(long, env = "MCPGATE_REQUIRE_AUTH")]
    pub require_auth: bool,
    /// Bearer token for the admin API and page (/admin): the approval queue. No token, no admin
    /// API. NAME=TOKEN gives a reviewer their own token, and their decisions are recorded under
    /// NAME (1-64 of A-Z a-z 0-9 . _ @ -); a plain TOKEN is reviewer "admin". Repeatable;
    /// comma-separated in the environment.
    #[arg(
        long = "admin-token",
        env = "MCPGATE_ADMIN_TOKEN",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub admin_tokens: Vec<String>,
    /// Serve /admin on this address instead of on --listen (e.g. an address only reviewers reach).
    #[arg(long, env = "MCPGATE_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Seconds a call under an approval rule is held open waiting for a decision; after that the
    /// agent is told to repeat the call once it is approved.
    #[arg(long, env = "MCPGATE_APPROVAL_HOLD", default_value_t = 60)]
    pub approval_hold: u64,
    /// Seconds between the progress notifications a held call sends to a client that gave a
    /// progressToken (keep-alive comments go to every stream client regardless).
    #[arg(long, env = "MCPGATE_APPROVAL_PROGRESS_SECS", default_value_t = 5)]
    pub approval_progress_secs: u64,
    /// POST each new pending approval as JSON to this URL, signed in the X-Mcpgate-Signature
    /// header (sha256=HMAC of the body under --approval-webhook-secret).
    #[arg(
        long,
        env = "MCPGATE_APPROVAL_WEBHOOK",
        requires = "approval_webhook_secret"
    )]
    pub approval_webhook: Option<reqwest::Url>,
    /// Calls one agent (or one anonymous session) may have waiting for approval at once; more
    /// are refused until one is decided or expires.
    #[arg(long, env = "MCPGATE_MAX_PENDING_APPROVALS", default_value_t = ApprovalConfig::default().max_pending_per_agent)]
    pub max_pending_approvals: usize,
    /// Largest call that may be held for approval (its arguments and other params as JSON
    /// text); larger ones are refused, not queued.
    #[arg(long, env = "MCPGATE_MAX_HELD_CALL_BYTES", default_value_t = ApprovalConfig::default().max_held_call_bytes)]
    pub max_held_call_bytes: usize,
    /// The shared secret the approval webhook's signature is made with.
    #[arg(long, env = "MCPGATE_APPROVAL_WEBHOOK_SECRET", hide_env_values = true)]
    pub approval_webhook_secret: Option<String>,
    /// Append one JSON line per decision to this file (created mode 0600; SIGHUP reopens it, for
    /// logrotate without copytruncate), or to standard output with `-`.
    #[arg(long, env = "MCPGATE_AUDIT")]
    pub audit: Option<PathBuf>,
    /// Include tool arguments in audit records (redacted by default).
    #[arg(long, env = "MCPGATE_AUDIT_ARGUMENTS")]
    pub audit_arguments: bool,
    /// When audit records are flushed to the disk: never (the kernel writes them back; they
    /// survive a crash of the gateway, not of the machine), interval (within a second; answers
    /// never wait for the disk), always (before the answers of each group of records leave).
    #[arg(long, env = "MCPGATE_AUDIT_FSYNC", value_enum, default_value_t = Fsync::Never)]
    pub audit_fsync: Fsync,
    /// Largest request body accepted (413 beyond), and largest upstream JSON answer relayed.
    #[arg(long, env = "MCPGATE_MAX_BODY_BYTES", default_value_t = Limits::default().max_body_bytes)]
    pub max_body_bytes: usize,
    /// Largest request head (request line and headers) accepted; 431 beyond.
    #[arg(long, env = "MCPGATE_MAX_HEADER_BYTES", default_value_t = Limits::default().max_header_bytes)]
    pub max_header_bytes: usize,
    /// Seconds a client has to send its request headers, and again its body (slow senders are cut).
    #[arg(long, env = "MCPGATE_REQUEST_READ_TIMEOUT_SECS", default_value_t = Limits::default().request_read_timeout.as_secs())]
    pub request_read_timeout_secs: u64,
    /// Requests one agent (or one anonymous session) may have in the gateway at once; 429 beyond.
    #[arg(long, env = "MCPGATE_MAX_IN_FLIGHT_PER_AGENT", default_value_t = Limits::default().max_in_flight_per_agent)]
    pub max_in_flight_per_agent: usize,
    /// Largest single SSE event accepted from the upstream.
    #[arg(long, env = "MCPGATE_MAX_EVENT_BYTES", default_value_t = Limits::default().max_event_bytes)]
    pub max_event_bytes: usize,
    /// Most sessions this process holds state for at once (503 beyond): opened here, or
    /// resumed here from another replica's token. With N replicas the fleet serves up to N times this.
    #[arg(long, env = "MCPGATE_MAX_SESSIONS", default_value_t = Limits::default().max_sessions)]
    pub max_sessions: usize,
    /// Seconds a session may stay unused before it is ended (here and upstream).
    #[arg(long, env = "MCPGATE_SESSION_IDLE_SECS", default_value_t = Limits::default().session_idle.as_secs())]
    pub session_idle_secs: u64,
    /// How anonymous callers are counted under rate limits of scope "agent": shared (one counter
    /// per rule for all of them) or per-address (one per rule and client IP). Never per session:
    /// a new session would reset the limit.
    #[arg(long, env = "MCPGATE_ANONYMOUS_RATE_LIMITS", value_enum, default_value_t = AnonymousLimits::Shared)]
    pub anonymous_rate_limits: AnonymousLimits,
    /// Seconds allowed to connect to the upstream.
    #[arg(long, env = "MCPGATE_UPSTREAM_CONNECT_TIMEOUT_SECS", default_value_t = Limits::default().upstream_connect_timeout.as_secs())]
    pub upstream_connect_timeout_secs: u64,
    /// Seconds allowed for the upstream's answer (its headers; all of it for JSON answers).
    #[arg(long, env = "MCPGATE_UPSTREAM_TIMEOUT_SECS", default_value_t = Limits::default().upstream_timeout.as_secs())]
    pub upstream_timeout_secs: u64,
    /// Seconds a 2026-07-28 client has to answer what a handshake-era upstream asked during a
    /// call (an input-required round) before that upstream call is cancelled.
    #[arg(long, env = "MCPGATE_INPUT_ROUND_SECS", default_value_t = Limits::default().input_round_timeout.as_secs())]
    pub input_round_secs: u64,
    /// Most input-required rounds one caller (agent, or anonymous address) may have open.
    #[arg(long, env = "MCPGATE_MAX_INPUT_ROUNDS_PER_AGENT", default_value_t = Limits::default().max_input_rounds_per_caller)]
    pub max_input_rounds_per_agent: usize,
    /// Serve Prometheus metrics on GET /metrics at this address (also on --admin-listen when set).
    #[arg(long, env = "MCPGATE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Refuse to start unless the upstream answers an MCP initialize (without it, a wrong
    /// upstream is a warning at start and /readyz stays not ready).
    #[arg(long, env = "MCPGATE_REQUIRE_UPSTREAM")]
    pub require_upstream: bool,
    /// After SIGTERM: seconds /readyz fails while new requests are still served, so the load
    /// balancer takes this replica out before its listener closes. A second signal ends it early.
    #[arg(long, env = "MCPGATE_DRAIN_DELAY_SECS", default_value_t = 5)]
    pub drain_delay_secs: u64,
    /// Seconds requests in flight get to finish once the listener has closed; then they are cut.
    /// Calls held for approval are answered at once, telling the agent to repeat them.
    #[arg(long, env = "MCPGATE_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,
    /// Key that seals session ids, 32 bytes in base64 (`mcpgate session-key` makes one). Give
    /// every replica the same key so any of them resumes any session; without it each process
    /// makes its own at start.
    #[arg(long, env = "MCPGATE_SESSION_KEY", hide_env_values = true)]
    pub session_key: Option<String>,
    /// The previous --session-key while rotating: sessions it sealed keep working; new ones are
    /// sealed with --session-key.
    #[arg(long, env = "MCPGATE_SESSION_KEY_PREVIOUS", hide_env_values = true)]
    pub session_key_previous: Option<String>,
    /// Seconds a session id is good for after initialize, on any replica.
    #[arg(long, env = "MCPGATE_SESSION_MAX_AGE_SECS", default_value_t = 24 * 3600)]
    pub session_max_age_secs: u64,
    /// Shared state for several replicas: redis://HOST:PORT/DB (rediss:// for TLS). Rate limits,
    /// the approval queue and session revocations then hold across the fleet. Without it they
    /// are kept in this process.
    #[arg(long, env = "MCPGATE_STATE")]
    pub state: Option<String>,
    #[command(flatten)]
    pub oauth: oauth::OAuthOptions,
}

impl GatewayOptions {
    pub fn config(
        &self,
        listen: SocketAddr,
        upstream: reqwest::Url,
        policy: PathBuf,
        workers: std::num::NonZeroUsize,
    ) -> GatewayConfig {
        GatewayConfig {
            listen,
            upstream,
            upstream_access: UpstreamAccess::default(),
            upstream_command: None,
            policy,
            allowed_origins: self.allowed_origins.clone(),
            audit: self.audit.clone(),
            audit_arguments: self.audit_arguments,
            audit_fsync: self.audit_fsync,
            agents: self.agents.clone(),
            require_auth: self.require_auth,
            workers,
            metrics_listen: self.metrics_listen,
            oauth: self.oauth.config(),
            approvals: ApprovalConfig {
                admin_token: None,
                reviewers: self
                    .admin_tokens
                    .iter()
                    .map(|spec| Reviewer::from_spec(spec))
                    .collect(),
                admin_listen: self.admin_listen,
                hold: Duration::from_secs(self.approval_hold),
                progress_every: Duration::from_secs(self.approval_progress_secs.max(1)),
                webhook: self.approval_webhook.clone(),
                webhook_secret: self.approval_webhook_secret.clone(),
                max_pending_per_agent: self.max_pending_approvals,
                max_held_call_bytes: self.max_held_call_bytes,
            },
            replicas: crate::config::ReplicaConfig {
                session_key: self.session_key.clone(),
                session_key_previous: self.session_key_previous.clone(),
                session_max_age: Duration::from_secs(self.session_max_age_secs),
                state: self.state.clone(),
            },
            limits: Limits {
                max_body_bytes: self.max_body_bytes,
                max_header_bytes: self.max_header_bytes,
                request_read_timeout: Duration::from_secs(self.request_read_timeout_secs),
                max_in_flight_per_agent: self.max_in_flight_per_agent,
                max_event_bytes: self.max_event_bytes,
                max_sessions: self.max_sessions,
                session_idle: Duration::from_secs(self.session_idle_secs),
                upstream_connect_timeout: Duration::from_secs(self.upstream_connect_timeout_secs),
                upstream_timeout: Duration::from_secs(self.upstream_timeout_secs),
                input_round_timeout: Duration::from_secs(self.input_round_secs),
                max_input_rounds_per_caller: self.max_input_rounds_per_agent,
                anonymous_rate_limits: self.anonymous_rate_limits,
            },
        }
    }
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Address to listen on; the MCP endpoint is /mcp.
    #[arg(
        long,
        env = "MCPGATE_SIMULATE_LISTEN",
        default_value = "127.0.0.1:9000"
    )]
    pub listen: SocketAddr,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address the gateway listens on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Policy file; without it, the Binance policy built into the binary (policies/binance.json),
    /// written to a private temporary file that can be edited while the demo runs.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    #[command(flatten)]
    pub options: GatewayOptions,
}

/// `--worker-threads`, or one per CPU this process may use (cgroup quotas included).
fn workers(asked: Option<std::num::NonZeroUsize>) -> std::num::NonZeroUsize {
    asked
        .or_else(|| std::thread::available_parallelism().ok())
        .unwrap_or(std::num::NonZeroUsize::MIN)
}

/// Runs the command; the process exit code.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    run::init_logging(cli.log_format, &cli.log);
    let workers = workers(cli.worker_threads);
    match cli.command {
        Command::Policy(command) => policy::run(command),
        Command::Approvals(args) => approvals::run(args),
        Command::AgentKey { name } => {
            let key = crate::auth::new_key();
            println!("key (give to the agent, shown once): {key}");
            println!(
                "--agent {name}=sha256:{}",
                hex::encode(crate::auth::digest_of(&key))
            );
            std::process::ExitCode::SUCCESS
        }
        Command::SessionKey => {
            println!("{}", crate::session_token::new_key());
            std::process::ExitCode::SUCCESS
        }
        Command::Serve(args) => run::block_on(None, run::serve(args, workers)),
        Command::Simulate(args) => run::block_on(Some(workers), run::simulate(args)),
        Command::Demo(args) => run::block_on(None, run::demo(args, workers)),
    }
}
