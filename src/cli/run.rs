//! The long-running commands: serve, simulate, demo.

use std::future::Future;
use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use binance_sim::{Simulator, SimulatorOptions};
use tokio::net::TcpListener;

use tokio::sync::watch;

use super::{DemoArgs, GatewayOptions, LogFormat, ServeArgs, SimulateArgs};
use crate::gateway::{Gateway, Phase};
use crate::server;

/// The Binance policy, built in so that `mcpgate demo` runs from any directory (and after
/// `cargo install`); `serve` always reads `--policy`.
const BUILT_IN_POLICY: &str = include_str!("../../policies/binance.json");

/// How long the upstream check at start may take.
const START_CHECK_WITHIN: Duration = Duration::from_secs(5);

pub fn init_logging(format: LogFormat, filter: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour codes only for a person at a terminal, never into a file or a collector.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

/// Runs a command on a runtime of `threads` worker threads, or, without, on this thread only:
/// the gateway's requests are served by event loops of their own (`server/mod.rs`), so what
/// runs here is upkeep, signals and the admin API.
pub fn block_on(
    threads: Option<NonZeroUsize>,
    run: impl Future<Output = Result<(), String>>,
) -> ExitCode {
    let mut runtime = match threads {
        Some(threads) => {
            let mut runtime = tokio::runtime::Builder::new_multi_thread();
            runtime.worker_threads(threads.get());
            runtime
        }
        None => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = runtime
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    match runtime.block_on(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("mcpgate: {message}");
            ExitCode::FAILURE
        }
    }
}

pub async fn serve(args: ServeArgs, workers: NonZeroUsize) -> Result<(), String> {
    let command = match &args.upstream_command {
        Some(line) => Some(super::upstream::command(line, &args.upstream_env)?),
        None => None,
    };
    let upstream = match (args.upstream, &command) {
        (Some(url), _) => url,
        (None, Some(command)) => format!("stdio:{}", command.program).parse().map_err(|_| {
            format!(
                "--upstream-command {:?}: not a program name",
                command.program
            )
        })?,
        (None, None) => {
            return Err("give the upstream with --upstream or --upstream-command".into())
        }
    };
    let mut config = args
        .options
        .config(args.listen, upstream, args.policy, workers);
    config.upstream_access = crate::config::UpstreamAccess {
        headers: args.upstream_headers,
        ca: args.upstream_ca,
    };
    config.upstream_command = command;
    let gateway = crate::gateway::build(config).map_err(|e| e.to_string())?;
    if args.options.require_upstream {
        check_upstream(gateway.clone()).await.map_err(|err| {
            format!("the upstream does not answer MCP (--require-upstream): {err}")
        })?;
    }
    let listener = server::bind(args.listen).await.map_err(|e| e.to_string())?;
    // Watched before "serving" is logged: a supervisor that stops the gateway as soon as it
    // reads that line must find SIGTERM handled, not fatal.
    let signals = StopSignals::new();
    if !args.options.require_upstream {
        let check = check_upstream(gateway.clone());
        tokio::spawn(async move {
            if let Err(err) = check.await {
                tracing::warn!(error = %err, "the upstream does not answer MCP; /readyz stays not ready until it does");
            }
        });
    }
    tracing::info!(
        listen = %args.listen,
        upstream = %gateway.upstream.url(),
        policy = %gateway.config.policy.display(),
        "mcpgate serving MCP on /mcp"
    );
    warn_at_start(&gateway);
    serve_until_stopped(gateway, listener, StopTimes::of(&args.options), signals).await
}

/// Is the upstream an MCP server? An initialize that parses, not just an HTTP answer.
async fn check_upstream(gateway: Arc<Gateway>) -> Result<(), crate::upstream::UpstreamError> {
    gateway.upstream.check_mcp(START_CHECK_WITHIN).await
}

fn warn_at_start(gateway: &Gateway) {
    let policy = gateway.policy.load();
    for warning in super::warnings::at_start(&gateway.config, &policy) {
        tracing::warn!("{warning}");
    }
}

pub async fn simulate(args: SimulateArgs) -> Result<(), String> {
    let listener = server::bind(args.listen).await.map_err(|e| e.to_string())?;
    tracing::info!(listen = %args.listen, "simulated Binance MCP server on /mcp");
    let simulator = Simulator::new(SimulatorOptions::default());
    tokio::select! {
        result = simulator.serve(listener) => result.map_err(|e| e.to_string()),
        () = stop_signal() => Ok(()),
    }
}

pub async fn demo(args: DemoArgs, workers: NonZeroUsize) -> Result<(), String> {
    let simulator_listener = server::bind("127.0.0.1:0".parse().expect("a literal address"))
        .await
        .map_err(|e| e.to_string())?;
    let simulator_addr = simulator_listener.local_addr().map_err(|e| e.to_string())?;
    let simulator = Simulator::new(SimulatorOptions::default());
    tokio::spawn(simulator.serve(simulator_listener));

    let upstream = format!("http://{simulator_addr}/mcp")
        .parse()
        .expect("a well-formed URL");
    let (policy, built_in) = match args.policy {
        Some(path) => (path, None),
        None => {
            let dir = write_built_in_policy().map_err(|e| {
                format!("cannot write the built-in policy to a temporary file: {e}")
            })?;
            (dir.join("binance.json"), Some(dir))
        }
    };
    let config = args.options.config(args.listen, upstream, policy, workers);
    let gateway = crate::gateway::build(config).map_err(|e| e.to_string())?;
    warn_at_start(&gateway);
    let listener = server::bind(args.listen).await.map_err(|e| e.to_string())?;
    let signals = StopSignals::new();
    let shown = match &built_in {
        Some(_) => format!(
            "{} (the built-in Binance policy; edit it and it reloads)",
            gateway.config.policy.display()
        ),
        None => gateway.config.policy.display().to_string(),
    };
    println!("{}", demo_banner(&args.listen.to_string(), &shown));
    let times = StopTimes::of(&args.options);
    let served = serve_until_stopped(gateway, listener, times, signals).await;
    if let Some(dir) = built_in {
        let _ = std::fs::remove_dir_all(dir);
    }
    served
}

/// The built-in policy in a directory of this process's own, readable only by its user.
fn write_built_in_policy() -> std::io::Result<std::path::PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = std::env::temp_dir().join(format!("mcpgate-demo-{}", std::process::id()));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    std::fs::write(dir.join("binance.json"), BUILT_IN_POLICY)?;
    Ok(dir)
}

fn demo_banner(listen: &str, policy: &str) -> String {
    let url = format!("http://{listen}/mcp");
    format!(
        r#"mcpgate demo: the gateway at {url}
  in front of a simulated Binance MCP server (29 tools, fake market data), policy {policy}

Try it with curl (initialize prints the Mcp-Session-Id to reuse):
  curl -si {url} -H 'Content-Type: application/json' -H 'Accept: application/json' \
    -d '{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-06-18","capabilities":{{}},"clientInfo":{{"name":"curl","version":"1"}}}}}}'

Claude Code:
  claude mcp add --transport http binance {url}

Cursor (.cursor/mcp.json):
  {{ "mcpServers": {{ "binance": {{ "url": "{url}" }} }} }}

Ctrl-C stops it."#
    )
}

/// SIGTERM (how containers are stopped) and SIGINT (Ctrl-C), as many times as they come.
struct StopSignals {
    term: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn new() -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        Self {
            term: signal(SignalKind::terminate()).expect("SIGTERM can be watched"),
        }
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
    }
}

/// Resolves on the first SIGTERM or SIGINT.
async fn stop_signal() {
    StopSignals::new().next().await;
    tracing::info!("stopping");
}

/// `--drain-delay-secs` and `--shutdown-grace-secs`.
struct StopTimes {
    drain_delay: Duration,
    grace: Duration,
}

impl StopTimes {
    fn of(options: &GatewayOptions) -> Self {
        Self {
            drain_delay: Duration::from_secs(options.drain_delay_secs),
            grace: Duration::from_secs(options.shutdown_grace_secs),
        }
    }
}

/// Serves until SIGTERM or Ctrl-C; then `/readyz` fails at once while requests are still
/// served for the drain delay (the load balancer needs a few probes to take the replica out; a
/// second signal ends the delay), then the listener closes, held calls are answered, and
/// requests in flight get the grace period to finish.
async fn serve_until_stopped(
    gateway: Arc<Gateway>,
    listener: TcpListener,
    times: StopTimes,
    mut signals: StopSignals,
) -> Result<(), String> {
    let (stop, stopped) = watch::channel(false);
    let shutdown = async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let server = server::serve(gateway.clone(), listener, shutdown);
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result.map_err(|e| e.to_string()),
        () = signals.next() => {}
    }
    gateway.readiness.enter(Phase::Draining);
    tracing::info!(
        drain_delay_secs = times.drain_delay.as_secs(),
        "draining: /readyz fails, new requests are still served until the drain delay ends"
    );
    tokio::select! {
        result = &mut server => return result.map_err(|e| e.to_string()),
        () = tokio::time::sleep(times.drain_delay) => {}
        () = signals.next() => tracing::info!("a second signal: the drain ends now"),
    }
    tracing::info!(
        grace_secs = times.grace.as_secs(),
        "stopping: the listener closes, requests in flight get the grace period"
    );
    let _ = stop.send(true);
    match tokio::time::timeout(times.grace, server).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => {
            tracing::warn!("requests still open after the grace period were cut");
            Ok(())
        }
    }
}
