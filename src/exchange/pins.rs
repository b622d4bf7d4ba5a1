//! Pinned definitions on the data path: every `tools/list` page the upstream sends is compared
//! with the policy's pins (`policy::pins`), a change is audited when first seen, and the tools
//! that must not be offered are named for the filter to drop. The upstream's
//! `notifications/tools/list_changed` makes the gateway list the tools itself at once, so a swap
//! is caught before any agent lists again.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;

use crate::audit::{AuditDecision, AuditRecord};
use crate::gateway::Gateway;
use crate::policy::pins::{PinBreak, PinMode};
use crate::policy::CompiledPolicy;
use crate::protocol::{method, peek};
use crate::session::Session;

/// Records this page's definitions; audits what newly breaks a pin; returns the names to hide.
pub(super) fn check(
    gateway: &Gateway,
    session: Option<&Session>,
    policy: &CompiledPolicy,
    tools: &[Value],
) -> HashSet<String> {
    for (tool, problem) in gateway.pins.observe(policy, tools) {
        let reason = format!("tool {tool}: {problem}");
        gateway.record(&AuditRecord {
            agent: session.and_then(|s| s.agent.as_deref()),
            session: session.map(|s| &*s.id),
            tool: Some(&tool),
            rule: Some("pins"),
            reason: Some(&reason),
            ..AuditRecord::of(method::TOOLS_LIST, AuditDecision::PinMismatch)
        });
    }
    let enforce = policy.pin_mode() == PinMode::Enforce;
    tools
        .iter()
        .filter_map(|t| t.get("name").and_then(Value::as_str))
        .filter(|name| {
            gateway
                .pins
                .broken(policy, name)
                .is_some_and(|problem| enforce || problem == PinBreak::Duplicate)
        })
        .map(str::to_owned)
        .collect()
}

/// Whether an upstream message is its `notifications/tools/list_changed`.
pub(super) fn is_list_changed(data: &str) -> bool {
    peek::is_request_or_notification(data)
        && serde_json::from_str::<Value>(data).ok().is_some_and(|m| {
            m["method"] == "notifications/tools/list_changed" && m.get("id").is_none()
        })
}

/// Lists the upstream's tools in `session` (every page) and checks them against the pins. Run
/// when the upstream says its list changed; failures are logged, and the next list checks again.
pub fn recheck(gateway: Arc<Gateway>, session: Arc<Session>) {
    if !gateway.policy.load().has_pins() {
        return;
    }
    tokio::spawn(async move {
        list_and_check(&gateway, &session).await;
        gateway.pin_rechecks.send_modify(|n| *n += 1);
    });
}

async fn list_and_check(gateway: &Gateway, session: &Session) {
    match super::tools_list::list_all(gateway, session).await {
        Ok(tools) => {
            check(gateway, Some(session), &gateway.policy.load(), &tools);
        }
        Err(problem) => {
            tracing::warn!(%problem, "could not list the upstream's tools after it said they changed")
        }
    }
}
