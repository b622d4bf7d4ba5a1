//! `tools/list` answers on their way back: every tool the agent may not see is removed, on
//! every page and in every shape (JSON or SSE, under any HTTP status). An answer that cannot be
//! read strictly is refused rather than relayed: it might list what the policy hides.

use std::sync::Arc;

use crate::gateway::Gateway;
use crate::protocol::from_upstream::ToolList;
use crate::protocol::Message;
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

    /// Removes from `answer` (the response to `tools/list`) every tool the agent may not see.
    pub fn apply(&self, answer: &mut Message) -> Result<(), UpstreamError> {
        let Some(mut list) = ToolList::of(answer).map_err(UpstreamError::Unrelayable)? else {
            return Ok(()); // an error response lists nothing
        };
        if let Some(session) = &self.session {
            session.remember_listed(list.names());
        }
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
