//! The long-running commands: serve, simulate, demo.

use std::future::Future;
use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use binance_sim::{Simulator, SimulatorOptions};
use tokio::net::TcpListener;

use tokio::sync::watch;

use super::{DemoArgs, LogFormat, ServeArgs, SimulateArgs};
use crate::gateway::Gateway;
use crate::server;

/// Requests in flight get this long to finish after SIGTERM; open streams are then cut.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub fn init_logging(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

/// Runs a command on a runtime of `threads` worker threads, or, without, on this thread only:
/// the gateway's requests are served by event loops of their own (server.rs), so what runs here
/// is upkeep, signals and the admin API.
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
    let mut config = args
        .options
        .config(args.listen, args.upstream, args.policy, workers);
    config.upstream_access = crate::config::UpstreamAccess {
        headers: args.upstream_headers,
        ca: args.upstream_ca,
    };
    let gateway = crate::gateway::build(config).map_err(|e| e.to_string())?;
    let listener = server::bind(args.listen).await.map_err(|e| e.to_string())?;
    tracing::info!(
        listen = %args.listen,
        upstream = %gateway.upstream.url(),
        policy = %gateway.config.policy.display(),
        "mcpgate serving MCP on /mcp"
    );
    serve_until_stopped(gateway, listener).await
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
    let config = args
        .options
        .config(args.listen, upstream, args.policy, workers);
    let gateway = crate::gateway::build(config).map_err(|e| e.to_string())?;
    let listener = server::bind(args.listen).await.map_err(|e| e.to_string())?;
    println!(
        "{}",
        demo_banner(
            &args.listen.to_string(),
            &gateway.config.policy.display().to_string()
        )
    );
    serve_until_stopped(gateway, listener).await
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

/// Resolves on SIGTERM (how containers are stopped) or SIGINT (Ctrl-C).
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM can be watched");
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    tracing::info!("stopping: finishing requests in flight");
}

/// Serves until SIGTERM or Ctrl-C, then gives requests in flight [`SHUTDOWN_GRACE`] to finish.
async fn serve_until_stopped(gateway: Arc<Gateway>, listener: TcpListener) -> Result<(), String> {
    let (stop, stopped) = watch::channel(false);
    let shutdown = async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let server = server::serve(gateway, listener, shutdown);
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result.map_err(|e| e.to_string()),
        () = stop_signal() => { let _ = stop.send(true); }
    }
    match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => {
            tracing::warn!("requests still open after the grace period were cut");
            Ok(())
        }
    }
}

/// The tool names the upstream lists, for `policy check --upstream`.
pub fn upstream_tools(url: reqwest::Url) -> Result<Vec<String>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    runtime.block_on(async {
        let defaults = crate::config::Limits::default();
        let upstream = crate::upstream::Upstream::new(crate::upstream::UpstreamConfig {
            url,
            connect_timeout: defaults.upstream_connect_timeout,
            timeout: defaults.upstream_timeout,
            max_body_bytes: defaults.max_body_bytes,
            max_event_bytes: defaults.max_event_bytes,
            headers: Vec::new(),
            ca: None,
        })
        .map_err(|e| e.to_string())?;
        upstream.list_tool_names().await.map_err(|e| e.to_string())
    })
}
