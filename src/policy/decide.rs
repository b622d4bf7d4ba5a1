//! Call → Decision. Pure and allocation-free when only names are involved: rule names and reasons
//! are borrowed from the compiled policy.

use std::borrow::Cow;
use std::time::Duration;

use serde_json::{Map, Value};

use super::rules::{ApprovalVia, Limits, ToolAction, ToolRule};
use super::{CompiledPolicy, DefaultAction, Section};
use crate::protocol::method;

/// What the policy is asked about: one JSON-RPC request, reduced to the fields a decision reads.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The authenticated agent, if any; `None` never matches an agent section.
    pub agent: Option<&'a str>,
    /// The JSON-RPC method.
    pub method: &'a str,
    /// `params.name`, for tools/call.
    pub tool: Option<&'a str>,
    /// `params.arguments`, for tools/call.
    pub arguments: Option<&'a Value>,
}

/// What to do with a call. `rule` is the deciding rule as users read it (`tools.get_price`,
/// `agents.bot.tools.get_price`, `methods.resources/read`, `default`).
#[derive(Debug, Clone, PartialEq)]
pub enum Decision<'p> {
    /// Lifecycle method: always passes, no limits.
    Lifecycle,
    Allow {
        rule: &'p str,
        limits: Limits<'p>,
    },
    Deny {
        rule: &'p str,
        reason: Cow<'p, str>,
    },
    /// tools/call of a tool that is hidden (`hide: true`) or has no rule under default deny: the
    /// agent is told "Unknown tool: NAME" (JSON-RPC -32602), so the policy does not reveal it exists.
    UnknownTool,
    /// The call's arguments miss the rule's `arguments` schema; `reason` names what failed.
    InvalidArguments {
        rule: &'p str,
        reason: String,
    },
    Approval {
        rule: &'p str,
        reason: Cow<'p, str>,
        timeout: Duration,
        via: ApprovalVia,
        limits: Limits<'p>,
    },
}

const DEFAULT_RULE: &str = "default";
const TOOL_DENIED: &str = "the policy denies this tool";
const METHOD_DENIED: &str = "the policy denies this method";
const METHOD_NOT_ALLOWED: &str = "this method is not allowed by the policy";
const APPROVAL_NEEDED: &str = "a person must approve this call";

/// An InvalidArguments reason quotes the agent's own values back; past this many bytes the rest
/// is cut, so that a megabyte argument does not become a megabyte audit record.
const MAX_REASON_BYTES: usize = 1024;

/// Requests every session needs to exist and to discover tools; no rule is consulted for them.
/// Exact and case-sensitive, like every name in the policy.
pub(super) fn is_lifecycle(method: &str) -> bool {
    matches!(
        method,
        method::INITIALIZE | method::PING | method::TOOLS_LIST
    )
}

impl CompiledPolicy {
    /// Decides a request (a message with an `id`). A request named like a notification
    /// (`notifications/…` with an `id`) is a request and is decided like any other method.
    pub fn decide<'p>(&'p self, call: &Call<'_>) -> Decision<'p> {
        if is_lifecycle(call.method) {
            return Decision::Lifecycle;
        }
        self.decide_rules(call)
    }

    /// Decides a notification (a message without an `id`): MCP's client notifications pass, any
    /// other is decided by the rules like a request of that method.
    pub fn decide_notification<'p>(&'p self, call: &Call<'_>) -> Decision<'p> {
        if method::is_client_notification(call.method) {
            return Decision::Lifecycle;
        }
        self.decide_rules(call)
    }

    fn decide_rules<'p>(&'p self, call: &Call<'_>) -> Decision<'p> {
        let section = self.section(call.agent);
        if call.method == method::TOOLS_CALL {
            self.decide_tool(section, call)
        } else {
            self.decide_method(section, call.method)
        }
    }

    /// Order: rule (agent section, then global) → hide → deny → arguments → allow | approval.
    fn decide_tool<'p>(&'p self, section: Option<&'p Section>, call: &Call<'_>) -> Decision<'p> {
        let overall = self.overall_limit(section);
        let Some(tool) = call.tool else {
            return Decision::UnknownTool;
        };
        let Some(rule) = self.tool_rule(section, tool) else {
            return match self.default_in(section) {
                DefaultAction::Allow => Decision::Allow {
                    rule: DEFAULT_RULE,
                    limits: Limits::new(None, overall),
                },
                DefaultAction::Deny => Decision::UnknownTool,
            };
        };
        if rule.hide {
            return Decision::UnknownTool;
        }
        if rule.action == ToolAction::Deny {
            return Decision::Deny {
                rule: &rule.rule,
                reason: reason(&rule.reason, TOOL_DENIED),
            };
        }
        if let Some(reason) = arguments_failure(rule, call.arguments) {
            return Decision::InvalidArguments {
                rule: &rule.rule,
                reason,
            };
        }
        let limits = Limits::new(rule.rate_limit.as_ref(), overall);
        match rule.action {
            ToolAction::Approval { timeout, via } => Decision::Approval {
                rule: &rule.rule,
                reason: reason(&rule.reason, APPROVAL_NEEDED),
                timeout,
                via,
                limits,
            },
            ToolAction::Allow | ToolAction::Deny => Decision::Allow {
                rule: &rule.rule,
                limits,
            },
        }
    }

    fn decide_method<'p>(&'p self, section: Option<&'p Section>, method: &str) -> Decision<'p> {
        let overall = self.overall_limit(section);
        match self.method_rule(section, method) {
            Some(rule) if rule.deny => Decision::Deny {
                rule: &rule.rule,
                reason: reason(&rule.reason, METHOD_DENIED),
            },
            Some(rule) => Decision::Allow {
                rule: &rule.rule,
                limits: Limits::new(rule.rate_limit.as_ref(), overall),
            },
            None => match self.default_in(section) {
                DefaultAction::Allow => Decision::Allow {
                    rule: DEFAULT_RULE,
                    limits: Limits::new(None, overall),
                },
                DefaultAction::Deny => Decision::Deny {
                    rule: DEFAULT_RULE,
                    reason: Cow::Borrowed(METHOD_NOT_ALLOWED),
                },
            },
        }
    }
}

fn reason<'p>(own: &'p Option<String>, otherwise: &'static str) -> Cow<'p, str> {
    Cow::Borrowed(own.as_deref().unwrap_or(otherwise))
}

/// `None` when the arguments satisfy the rule's schema (or it has none); else what failed, one
/// `/pointer: message` per failure, joined by "; ". Missing arguments are checked as `{}`, so a
/// schema with `required` still refuses a call that sends none.
fn arguments_failure(rule: &ToolRule, arguments: Option<&Value>) -> Option<String> {
    let schema = &rule.arguments.as_ref()?.compiled.0;
    let empty = Value::Object(Map::new());
    let arguments = arguments.unwrap_or(&empty);
    if schema.is_valid(arguments) {
        return None;
    }
    let mut reason = String::new();
    for error in schema.iter_errors(arguments) {
        if !reason.is_empty() {
            reason.push_str("; ");
        }
        let path = error.instance_path().as_str();
        if !path.is_empty() {
            reason.push_str(path);
            reason.push_str(": ");
        }
        reason.push_str(&error.to_string());
        if reason.len() > MAX_REASON_BYTES {
            let mut cut = MAX_REASON_BYTES;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
            reason.push('…');
            break;
        }
    }
    Some(reason)
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
