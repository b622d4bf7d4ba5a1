//! A simulated Binance MCP server: the 29 tools of tienan92it/binance-mcp over MCP streamable
//! HTTP, answering from a deterministic simulated market instead of Binance.
//!
//! The gateway's demo, tests and benchmarks run against it, so it must be faithful where a
//! client can tell (tool list, answer shapes, error texts, sessions, SSE, progress) and fast on
//! the call path. See the crate's `README.md` for what was chosen and why.
//!
//! The data path reads: `http` (headers, status, JSON or SSE) → `message` (the JSON-RPC
//! envelope) → `rpc` (methods) → `arguments` (schema check) → `tools` → `market` / `streams`,
//! and back through `outcome` (the result's text) and `sse`.

mod arguments;
mod catalogue;
mod error;
mod http;
mod listing;
mod market;
mod message;
mod outcome;
mod rpc;
mod sessions;
mod sse;
mod streams;
mod tools;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::serve::ListenerExt;
use serde_json::Value;

pub use catalogue::{catalogue, CatalogueTool, Category, Kind, Parameter, ParameterType, Risk};
pub use error::SimulatorError;
pub use rpc::{LATEST_VERSION, SERVER_NAME, SUPPORTED_VERSIONS};
pub use sse::PROGRESS_STEPS;

use listing::ToolListing;
use sessions::Sessions;

/// How the simulated server behaves.
#[derive(Debug, Clone)]
pub struct SimulatorOptions {
    /// Keep every received JSON-RPC message (for tests that assert what reached the upstream).
    pub record: bool,
    /// `tools/list` pages of this many tools (with `nextCursor`); all tools in one page when `None`.
    pub page_size: Option<usize>,
    /// Delay between the progress notifications of slow tools.
    pub progress_step: Duration,
    /// Answer every request with SSE when the client accepts it (FastMCP's default). When false,
    /// only slow tools called with a progress token answer with SSE.
    pub always_sse: bool,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        Self {
            record: false,
            page_size: None,
            progress_step: Duration::from_millis(50),
            always_sse: false,
        }
    }
}

/// The simulated server. Cheap to clone: clones share sessions, counters and recordings.
#[derive(Debug, Clone)]
pub struct Simulator {
    shared: Arc<Shared>,
}

/// State shared by every request.
#[derive(Debug)]
struct Shared {
    options: SimulatorOptions,
    sessions: Sessions,
    listing: ToolListing,
    /// `tools/call` count per catalogued tool, by catalogue position.
    calls: Vec<AtomicU64>,
    /// Every message received, when `options.record`; never locked otherwise.
    received: Mutex<Vec<Value>>,
}

impl Shared {
    /// Keeps a received body when recording. Only JSON is kept: what did not parse never
    /// reached the server as a message.
    fn record(&self, body: &[u8]) {
        if self.options.record {
            if let Ok(message) = serde_json::from_slice(body) {
                lock(&self.received).push(message);
            }
        }
    }
}

impl Simulator {
    pub fn new(options: SimulatorOptions) -> Self {
        let shared = Shared {
            listing: ToolListing::new(options.page_size),
            sessions: Sessions::default(),
            calls: catalogue().iter().map(|_| AtomicU64::new(0)).collect(),
            received: Mutex::default(),
            options,
        };
        Self {
            shared: Arc::new(shared),
        }
    }

    /// Serves `POST`, `GET` and `DELETE` on `/mcp`.
    pub fn router(&self) -> axum::Router {
        http::router(self.clone())
    }

    /// Serves the router on `listener` until the listener fails. Accepted sockets get
    /// TCP_NODELAY: answers are small and latency is what the benchmarks measure.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        let listener = listener.tap_io(|stream| {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "could not set TCP_NODELAY");
            }
        });
        axum::serve(listener, self.router()).await
    }

    /// Every JSON-RPC message received so far, in order (empty unless `record`).
    pub fn received(&self) -> Vec<Value> {
        lock(&self.shared.received).clone()
    }

    /// How many `tools/call` requests named `tool` (0 for a tool not in the catalogue).
    pub fn tool_calls(&self, tool: &str) -> usize {
        catalogue::index_of(tool)
            .map_or(0, |i| self.shared.calls[i].load(Ordering::Relaxed) as usize)
    }

    /// `tools/call` requests for any catalogued tool.
    pub fn total_tool_calls(&self) -> usize {
        self.shared
            .calls
            .iter()
            .map(|count| count.load(Ordering::Relaxed) as usize)
            .sum()
    }

    /// Sessions open now (initialized and not deleted).
    pub fn session_count(&self) -> usize {
        self.shared.sessions.len()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Recording is a plain push; a panic elsewhere cannot leave the vector inconsistent.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
