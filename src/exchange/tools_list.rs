//! `tools/list` answers on their way back: every tool the agent may not see is removed, on
//! every page and in every shape (JSON or SSE, under any HTTP status). An answer that cannot be
//! read strictly is refused rather than relayed: it might list what the policy hides.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::gateway::Gateway;
use crate::protocol::from_upstream::ToolList;
use crate::protocol::modern::{self, Routing};
use crate::protocol::{method, Message};
use crate::session::Session;
use crate::upstream::{await_answer, Placement, Reply, UpstreamError};

/// A listing the gateway makes itself stops after this many pages.
const MAX_PAGES: usize = 100;

pub struct ToolsFilter {
    gateway: Arc<Gateway>,
    session: Option<Arc<Session>>,
}

impl ToolsFilter {
    pub fn new(gateway: &Arc<Gateway>, session: Option<&Arc<Session>>) -> Self {
        Self {
            gateway: gateway.clone(),
            session: session.cloned(),
        }
    }

    /// Removes from `answer` (the response to `tools/list`) every tool the agent may not see.
    pub fn apply(&self, answer: &mut Message) -> Result<(), UpstreamError> {
        let Some(mut list) = ToolList::of(answer).map_err(UpstreamError::Unrelayable)? else {
            return Ok(()); // an error response lists nothing
        };
        if let Some(session) = &self.session {
            session.remember_listed(list.names());
        }
        self.gateway.tool_headers.learn(list.tools());
        let policy = self.gateway.policy.load();
        let agent = self.session.as_ref().and_then(|s| s.agent.as_deref());
        let broken = super::pins::check(
            &self.gateway,
            self.session.as_deref(),
            &policy,
            list.tools(),
        );
        // The scopes of the token that opened the session: a tool whose rule requires more is
        // hidden, as a denied one is.
        let granted = self.session.as_ref().and_then(|s| s.scopes.as_deref());
        list.retain(|name| policy.tool_listed(agent, name, granted) && !broken.contains(name));
        if policy.advertises() {
            for tool in list.tools_mut() {
                policy.advertise(agent, tool);
            }
        }
        list.write_into(answer);
        Ok(())
    }
}

/// Every tool the upstream lists (all pages), asked by the gateway itself in `session`: in the
/// upstream session it keeps, or as a 2026-07-28 request of its own when the upstream keeps none.
pub(super) async fn list_all(gateway: &Gateway, session: &Session) -> Result<Vec<Value>, String> {
    let mut tools = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0..MAX_PAGES {
        let id = format!("mcpgate-tools-{page}");
        let params = match &cursor {
            Some(cursor) => json!({ "cursor": cursor }),
            None => json!({}),
        };
        let routing = Routing::bare(method::TOOLS_LIST);
        let (request, placement) = if session.modern_upstream {
            let request = modern::own_request(&id, method::TOOLS_LIST, params);
            let placement = Placement {
                session_id: None,
                protocol_version: Some(modern::VERSION),
                routing: Some(&routing),
            };
            (request, placement)
        } else {
            let request = json!({"jsonrpc": "2.0", "id": id, "method": method::TOOLS_LIST,
                "params": params});
            let placement = Placement {
                session_id: session.upstream_id.as_ref(),
                protocol_version: Some(session.version),
                routing: None,
            };
            (request, placement)
        };
        let body = serde_json::to_vec(&request).expect("a JSON value serialises");
        let within = gateway.config.limits.upstream_timeout;
        let text = match gateway.upstream.post(body.into(), placement).await {
            Ok(Reply::Json { body, .. }) => String::from_utf8_lossy(&body).into_owned(),
            Ok(Reply::Stream { events, .. }) => {
                await_answer::<UpstreamError>(events, &request["id"], within)
                    .await
                    .map_err(|err| err.to_string())?
            }
            Ok(Reply::Accepted { status }) => {
                return Err(format!("answered {status} with no list"))
            }
            Err(err) => return Err(err.to_string()),
        };
        let answer: Value = serde_json::from_str(&text)
            .map_err(|err| format!("the tools/list answer is not JSON: {err}"))?;
        let Some(page) = answer["result"]["tools"].as_array() else {
            return Err(format!("the tools/list answer lists no tools: {text:.200}"));
        };
        tools.extend(page.iter().cloned());
        match answer["result"]["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(tools),
        }
    }
    Err(format!(
        "the upstream's tool list ran past {MAX_PAGES} pages"
    ))
}
