//! Finding the answer to a request in a stream of messages, and asking the upstream things
//! outside any agent's session (`mcpgate policy check --upstream`).

use std::time::Duration;

use futures::{Stream, StreamExt};
use serde_json::{json, Value};

use super::{Placement, Reply, Revision, Upstream, UpstreamError};
use crate::protocol::modern::{self, Routing};
use crate::protocol::{method, peek, version, SseEvent};

/// A listing stops after this many pages: an upstream whose cursors never end is refused.
const MAX_PAGES: u64 = 1000;

/// Reads `events` until the answer to `id`; its JSON text.
pub async fn await_answer<E: From<UpstreamError>>(
    mut events: impl Stream<Item = Result<SseEvent, E>> + Unpin,
    id: &Value,
    within: Duration,
) -> Result<String, E> {
    let find = async {
        while let Some(event) = events.next().await {
            let event = event?;
            if peek::is_answer_to(event.text(), id) {
                return Ok(event.data.unwrap_or_default().into());
            }
        }
        Err(UpstreamError::StreamEndedEarly.into())
    };
    tokio::time::timeout(within, find)
        .await
        .unwrap_or_else(|_| Err(UpstreamError::StreamTimeout { timeout: within }.into()))
}

impl Upstream {
    /// Does the upstream answer MCP? An initialize whose answer parses as an initialize result,
    /// then a DELETE of the session it opened, or, when initialize is refused, a
    /// `server/discover` naming 2026-07-28: readiness, not the health of its tools. An HTTP
    /// answer that is not MCP (a 404 for a URL without its /mcp path, a web page) fails.
    pub async fn check_mcp(&self, within: Duration) -> Result<(), UpstreamError> {
        let check = async {
            let init = json!({"jsonrpc": "2.0", "id": "mcpgate-readiness", "method": method::INITIALIZE,
                "params": {"protocolVersion": version::LATEST, "capabilities": {},
                "clientInfo": {"name": "mcpgate-readiness", "version": env!("CARGO_PKG_VERSION")}}});
            let first = Placement {
                session_id: None,
                protocol_version: Some(version::LATEST),
                routing: None,
            };
            let (answer, session_id) = match self.ask(&init, first).await {
                Ok(asked) => asked,
                Err(err) => return self.speaks_modern_instead(err).await,
            };
            if session_id.is_some() {
                let placement = Placement {
                    session_id: session_id.as_ref(),
                    protocol_version: Some(version::LATEST),
                    routing: None,
                };
                let _ = self.end_session(placement).await;
            }
            match answer.pointer("/result/protocolVersion") {
                Some(Value::String(_)) => Ok(()),
                _ => {
                    let refused = UpstreamError::Refused {
                        method: method::INITIALIZE,
                        error: answer.to_string().chars().take(200).collect(),
                    };
                    self.speaks_modern_instead(refused).await
                }
            }
        };
        tokio::time::timeout(within, check)
            .await
            .unwrap_or(Err(UpstreamError::StreamTimeout { timeout: within }))
    }

    /// Initialize was refused: ready all the same if the upstream answers MCP 2026-07-28's
    /// `server/discover` (it dropped the handshake); else initialize's failure.
    async fn speaks_modern_instead(&self, refused: UpstreamError) -> Result<(), UpstreamError> {
        if refused.is_unheard() {
            return Err(refused);
        }
        match self.rediscover().await {
            Ok(super::Revision::PerRequest(_)) => Ok(()),
            _ => Err(refused),
        }
    }

    /// The names of every tool the upstream lists, all pages, in a session of the gateway's own.
    pub async fn list_tool_names(&self) -> Result<Vec<String>, UpstreamError> {
        let tools = self.list_tools().await?;
        Ok(tools
            .iter()
            .filter_map(|tool| tool.get("name").and_then(Value::as_str))
            .map(str::to_owned)
            .collect())
    }

    /// Every tool definition the upstream lists (`policy pin`): in a session of its own, or as
    /// 2026-07-28 requests of its own to an upstream that keeps none.
    pub async fn list_tools(&self) -> Result<Vec<Value>, UpstreamError> {
        if let Revision::PerRequest(_) = self.revision().await? {
            let routing = Routing::bare(method::TOOLS_LIST);
            let placement = Placement {
                session_id: None,
                protocol_version: Some(modern::VERSION),
                routing: Some(&routing),
            };
            let request = |page: u64, params: Value| {
                modern::own_request(&format!("mcpgate-list-{page}"), method::TOOLS_LIST, params)
            };
            return self.list_pages(request, placement).await;
        }
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": method::INITIALIZE, "params": {
            "protocolVersion": version::LATEST, "capabilities": {},
            "clientInfo": {"name": "mcpgate-policy-check", "version": env!("CARGO_PKG_VERSION")}}});
        let first = Placement {
            session_id: None,
            protocol_version: Some(version::LATEST),
            routing: None,
        };
        let (answer, session_id) = self.ask(&init, first).await?;
        if let Some(error) = answer.get("error") {
            return Err(UpstreamError::Refused {
                method: method::INITIALIZE,
                error: error.to_string(),
            });
        }
        let placement = Placement {
            session_id: session_id.as_ref(),
            protocol_version: Some(version::LATEST),
            routing: None,
        };
        let initialized = json!({"jsonrpc": "2.0", "method": method::INITIALIZED});
        self.post(
            serde_json::to_vec(&initialized).expect("serialises").into(),
            placement,
        )
        .await?;
        let request = |page: u64, params: Value| json!({"jsonrpc": "2.0", "id": page, "method": method::TOOLS_LIST, "params": params});
        let tools = self.list_pages(request, placement).await;
        if session_id.is_some() {
            let _ = self.end_session(placement).await;
        }
        tools
    }

    /// `tools/list`, page after page, each request written by `request` from its page number
    /// and params (the cursor).
    async fn list_pages(
        &self,
        request: impl Fn(u64, Value) -> Value,
        placement: Placement<'_>,
    ) -> Result<Vec<Value>, UpstreamError> {
        let mut tools = Vec::new();
        let mut params = json!({});
        for page in 1..=MAX_PAGES {
            let (answer, _) = self.ask(&request(page, params), placement).await?;
            let result = answer.get("result").ok_or_else(|| UpstreamError::Refused {
                method: method::TOOLS_LIST,
                error: answer.to_string(),
            })?;
            for tool in result
                .get("tools")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                tools.push(tool.clone());
            }
            match result.get("nextCursor") {
                Some(next) if !next.is_null() => params = json!({ "cursor": next }),
                _ => return Ok(tools),
            }
        }
        Err(UpstreamError::Refused {
            method: method::TOOLS_LIST,
            error: format!("its tool list ran past {MAX_PAGES} pages"),
        })
    }

    pub(super) async fn ask(
        &self,
        request: &Value,
        placement: Placement<'_>,
    ) -> Result<(Value, Option<http::HeaderValue>), UpstreamError> {
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let body = serde_json::to_vec(request).expect("serialises").into();
        let initialize = request.get("method") == Some(&json!(method::INITIALIZE));
        let (text, session_id) = match self.post(body, placement).await? {
            Reply::Json { status, .. } if initialize && status == http::StatusCode::NOT_FOUND => {
                return Err(self.endpoint_not_found())
            }
            Reply::Json { status, body, .. } if !status.is_success() && body.is_empty() => {
                return Err(UpstreamError::NoAnswer(status))
            }
            Reply::Json {
                body, session_id, ..
            } => (String::from_utf8_lossy(&body).into_owned(), session_id),
            Reply::Stream { events, session_id } => {
                (await_answer(events, &id, self.timeout()).await?, session_id)
            }
            Reply::Accepted { status } => return Err(UpstreamError::NoAnswer(status)),
        };
        let answer = serde_json::from_str(&text)
            .map_err(|e| UpstreamError::UnreadableAnswer(e.to_string()))?;
        Ok((answer, session_id))
    }
}
