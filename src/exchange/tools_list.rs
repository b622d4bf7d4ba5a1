//! `tools/list` answers on their way back: every tool the agent may not see is removed, on
//! every page and in every shape (JSON or SSE). An answer that cannot be read is refused rather
//! than relayed: it might list what the policy hides.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use crate::gateway::Gateway;
use crate::protocol::{peek, SseEvent};
use crate::session::Session;
use crate::upstream::UpstreamError;

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

    /// Filters the answer in `data` (a JSON-RPC response).
    pub fn apply(&self, data: &[u8]) -> Result<Bytes, UpstreamError> {
        let mut answer: Value = serde_json::from_slice(data)
            .map_err(|e| UpstreamError::UnreadableAnswer(e.to_string()))?;
        if let Some(tools) = answer
            .get_mut("result")
            .and_then(|r| r.get_mut("tools"))
            .and_then(Value::as_array_mut)
        {
            let names = tools
                .iter()
                .filter_map(|t| t.get("name").and_then(Value::as_str));
            if let Some(session) = &self.session {
                session.remember_listed(names);
            }
            let policy = self.gateway.policy.load();
            let agent = self.session.as_ref().and_then(|s| s.agent.as_deref());
            let broken = super::pins::check(&self.gateway, self.session.as_deref(), &policy, tools);
            tools.retain(|tool| {
                tool.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|name| policy.tool_visible(agent, name) && !broken.contains(name))
            });
            if policy.advertises() {
                tools
                    .iter_mut()
                    .for_each(|tool| policy.advertise(agent, tool));
            }
        } else if answer.get("error").is_none() {
            return Err(UpstreamError::NoToolList);
        }
        Ok(serde_json::to_vec(&answer)
            .expect("a serde_json::Value always serialises")
            .into())
    }

    /// In a tools/list exchange every message that is not a request or notification is
    /// filtered, not only the one whose id matches: an answer under another id must not carry
    /// hidden tools past the filter. Events without data (2025-11-25 resumption primers) carry
    /// no message.
    pub fn event(&self, mut event: SseEvent) -> Result<SseEvent, UpstreamError> {
        if !event.data.is_empty() && !peek::is_request_or_notification(&event.data) {
            let filtered = self.apply(event.data.as_bytes())?;
            event.data = String::from_utf8_lossy(&filtered).into_owned();
        }
        Ok(event)
    }
}
