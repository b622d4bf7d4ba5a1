//! The upstream's `x-mcp-header` annotations, known to the gateway (`protocol::param_headers`
//! reads and checks them). A 2026-07-28 client's `Mcp-Param-*` headers are checked against the
//! body with them, and a `tools/call` to a 2026-07-28 upstream carries the headers written from
//! the arguments forwarded.
//!
//! They are learnt from every `tools/list` answer that passes through (what a client mirrors
//! comes from a list it read, most often through this gateway). A call for a tool not learnt
//! yet (a replica that has served no list, a tool added since) makes the gateway list the
//! upstream's tools itself, as the Python SDK's server does for its own check; at most once a
//! second, so that calls naming tools the upstream does not have cannot turn into a listing
//! each. Within that second, or when the upstream lists no such tool, the tool declares no
//! headers: sent ones are then not checked here, and a 2026-07-28 upstream, which knows its
//! tools, refuses a call that lacks its headers (-32020), which reaches the client.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::tools_list;
use crate::gateway::Gateway;
use crate::protocol::param_headers::ParamHeaders;
use crate::session::Session;

/// At most this many tools are remembered: the upstream's list, not the agents', fills it.
const MAX_TOOLS: usize = 10_000;
/// The gateway lists the upstream's tools to learn a missing one at most this often.
const RELIST_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct ToolHeaders {
    known: RwLock<HashMap<String, Arc<ParamHeaders>>>,
    /// When the gateway last listed the tools itself; held while it lists, so that calls
    /// missing the same tool wait for one listing rather than each starting one.
    listed: tokio::sync::Mutex<Option<Instant>>,
}

impl ToolHeaders {
    /// Remembers the annotations of the tools on one `tools/list` page as the upstream sent it.
    /// A tool whose annotations are invalid declares nothing (conforming clients drop it and
    /// send no headers for it).
    pub fn learn(&self, tools: &[Value]) {
        let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
        for tool in tools {
            let Some(name) = tool.get("name").and_then(Value::as_str) else {
                continue;
            };
            if known.len() >= MAX_TOOLS && !known.contains_key(name) {
                break;
            }
            let schema = tool.get("inputSchema").unwrap_or(&Value::Null);
            let declared = ParamHeaders::of(schema).unwrap_or_else(|problem| {
                tracing::warn!(tool = name, %problem, "the upstream's tool has invalid x-mcp-header annotations; its Mcp-Param headers are neither checked nor written");
                ParamHeaders::default()
            });
            known.insert(name.to_owned(), Arc::new(declared));
        }
    }

    fn get(&self, tool: &str) -> Option<Arc<ParamHeaders>> {
        let known = self.known.read().unwrap_or_else(|e| e.into_inner());
        known.get(tool).cloned()
    }
}

/// The `Mcp-Param-*` headers `tool` declares, listing the upstream's tools in `session` first
/// when the tool is not known yet.
pub(super) async fn of_tool(gateway: &Gateway, session: &Session, tool: &str) -> Arc<ParamHeaders> {
    let catalogue = &gateway.tool_headers;
    if let Some(known) = catalogue.get(tool) {
        return known;
    }
    let mut listed = catalogue.listed.lock().await;
    if let Some(known) = catalogue.get(tool) {
        return known; // learnt by the listing this call waited for
    }
    if listed.is_none_or(|at| at.elapsed() >= RELIST_EVERY) {
        *listed = Some(Instant::now());
        match tools_list::list_all(gateway, session).await {
            Ok(tools) => catalogue.learn(&tools),
            Err(problem) => {
                tracing::warn!(%problem, "could not list the upstream's tools to learn their Mcp-Param headers")
            }
        }
    }
    catalogue.get(tool).unwrap_or_default()
}
